// The host's listening sockets (RFC 9293 3.10.7.2) and SYN-flood resistance (RFC 4987 3.6):
// a bounded SYN queue, then stateless SYN cookies, so memory stays bounded whatever arrives.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HostStack, type StackEvent } from "../src/host/stack.js";
import { DEFAULT_MAX_ESTABLISHED } from "../src/tcp/listener.js";
import { Prng } from "../src/sim/prng.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Seq } from "../src/wire/seq.js";
import { Instant } from "../src/time/instant.js";
import { ip } from "../src/wire/ip-addr.js";
import { decodeIpPacket, emitTcpPacket } from "../src/wire/packet.js";
import { TcpFlag, type TcpRepr } from "../src/wire/tcp-repr.js";

const LOCAL = ip("192.0.2.2");
const at = (ms: number) => Instant.fromMillis(ms);

function server(synQueueLimit: number, tcp = tcpConfig({})) {
  const stack = new HostStack({
    interfaces: [
      {
        name: "tun0",
        link: "ip",
        mac: new Uint8Array(6),
        mtu: 1500,
        addresses: [{ addr: LOCAL, prefixLen: 24 }],
      },
    ],
    routes: [{ prefix: ip("0.0.0.0"), prefixLen: 0, gateway: ip("192.0.2.1"), ifIndex: 0 }],
    tcp,
    random: new Prng(5),
    synQueueLimit,
  });
  const listener = stack.listen(80);
  return { stack, listener };
}

function seg(over: Partial<TcpRepr>): TcpRepr {
  return {
    srcPort: 40000,
    dstPort: 80,
    seq: Seq.of(1000),
    ack: Seq.of(0),
    flags: TcpFlag.SYN,
    window: 65535,
    urgent: 0,
    mss: 1460,
    windowScale: 7,
    sackPermitted: true,
    sack: [],
    timestamps: { tsVal: 100, tsEcr: 0 },
    unknownOptions: [],
    payload: new Uint8Array(0),
    ...over,
  };
}

function inject(stack: HostStack, now: Instant, src: string, tcp: TcpRepr): void {
  stack.handleFrame(now, 0, emitTcpPacket({ ip: { src: ip(src), dst: LOCAL }, tcp }));
}

function drain(stack: HostStack, now: Instant): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let f = stack.pollTransmit(now); f !== undefined; f = stack.pollTransmit(now)) {
    const p = decodeIpPacket(f.frame);
    if (p.transport?.kind === "tcp") out.push(p.transport.tcp);
  }
  return out;
}

function events(stack: HostStack): StackEvent[] {
  const out: StackEvent[] = [];
  for (let e = stack.pollEvent(); e !== undefined; e = stack.pollEvent()) out.push(e);
  return out;
}

void describe("LISTEN (RFC 9293 3.10.7.2)", () => {
  void test("a RST is ignored; an ACK draws <SEQ=SEG.ACK><CTL=RST>; a FIN without ACK is dropped", () => {
    const { stack } = server(8);
    inject(stack, at(0), "198.51.100.1", seg({ flags: TcpFlag.RST }));
    assert.deepEqual(drain(stack, at(0)), []);
    inject(stack, at(1), "198.51.100.1", seg({ flags: TcpFlag.ACK, ack: Seq.of(777), mss: undefined }));
    const rst = drain(stack, at(1));
    assert.equal(rst.length, 1);
    assert.equal(rst[0]!.flags, TcpFlag.RST);
    assert.equal(rst[0]!.seq, 777);
    inject(stack, at(2), "198.51.100.1", seg({ flags: TcpFlag.FIN, mss: undefined }));
    assert.deepEqual(drain(stack, at(2)), []);
    assert.equal(stack.connectionCount, 0);
  });
  void test("a SYN+FIN is dropped by default, as Linux does; dropSynFin off answers it as a SYN", () => {
    const { stack } = server(8);
    inject(stack, at(0), "198.51.100.1", seg({ flags: TcpFlag.SYN | TcpFlag.FIN }));
    assert.deepEqual(drain(stack, at(0)), [], "no SYN-ACK to a scan pattern");
    assert.equal(stack.connectionCount, 0);
    const open = server(8, tcpConfig({ dropSynFin: false })).stack;
    inject(open, at(0), "198.51.100.1", seg({ flags: TcpFlag.SYN | TcpFlag.FIN }));
    assert.deepEqual(
      drain(open, at(0)).map((t) => t.flags),
      [TcpFlag.SYN | TcpFlag.ACK],
    );
  });
  void test("a SYN creates a half-open connection answered with a SYN-ACK", () => {
    const { stack } = server(8);
    inject(stack, at(0), "198.51.100.1", seg({}));
    const out = drain(stack, at(0));
    assert.equal(out.length, 1);
    assert.equal(out[0]!.flags, TcpFlag.SYN | TcpFlag.ACK);
    assert.equal(out[0]!.ack, 1001);
    assert.equal(stack.connectionCount, 1);
  });
});

void describe("SYN flood (RFC 4987)", () => {
  void test("1,000 spoofed SYNs keep at most the SYN queue's worth of state; the rest get cookies", () => {
    const { stack } = server(8);
    let synAcks = 0;
    for (let i = 0; i < 1000; i++) {
      inject(
        stack,
        at(1),
        `198.51.${100 + (i >> 8)}.${i & 0xff}`,
        seg({ srcPort: 1024 + i, seq: Seq.of(i * 7919) }),
      );
      synAcks += drain(stack, at(1)).filter((s) => s.flags === (TcpFlag.SYN | TcpFlag.ACK)).length;
    }
    assert.equal(stack.connectionCount, 8, "only the SYN queue holds state");
    assert.equal(synAcks, 1000, "every SYN was answered");
    assert.equal(stack.stats.dropSynQueueFull, 992);
  });
  void test("a client whose SYN got a cookie completes the handshake and is accepted", () => {
    const { stack, listener } = server(2);
    for (let i = 0; i < 2; i++) inject(stack, at(0), `198.51.100.${i + 1}`, seg({ srcPort: 2000 + i }));
    drain(stack, at(0));
    const syn = seg({ srcPort: 3000, seq: Seq.of(5000), timestamps: { tsVal: 42, tsEcr: 0 } });
    inject(stack, at(10), "203.0.113.9", syn);
    const [cookieSynAck] = drain(stack, at(10));
    assert.ok(cookieSynAck !== undefined && cookieSynAck.flags === (TcpFlag.SYN | TcpFlag.ACK));
    assert.equal(stack.connectionCount, 2, "the cookie kept no state");
    inject(
      stack,
      at(20),
      "203.0.113.9",
      seg({
        srcPort: 3000,
        seq: Seq.of(5001),
        ack: Seq.add(cookieSynAck.seq, 1),
        flags: TcpFlag.ACK,
        mss: undefined,
        windowScale: undefined,
        sackPermitted: false,
        timestamps: { tsVal: 43, tsEcr: cookieSynAck.timestamps?.tsVal ?? 0 },
      }),
    );
    drain(stack, at(20));
    const ev = events(stack);
    assert.ok(
      ev.some((e) => e.kind === "accept"),
      `accept event expected, got ${JSON.stringify(ev.map((e) => e.kind))}`,
    );
    const conn = stack.accept(listener);
    assert.ok(conn !== undefined);
    assert.equal(conn.remotePort, 3000);
    assert.equal(conn.tcp?.state, "ESTABLISHED");
    assert.ok(conn.tcp.windowScales.snd > 0, "window scale carried by the cookie's timestamp bits");
  });
  void test("an ACK with a forged cookie is answered with a RST and creates nothing", () => {
    const { stack } = server(1);
    inject(stack, at(0), "198.51.100.1", seg({ srcPort: 2000 }));
    drain(stack, at(0));
    inject(
      stack,
      at(5),
      "203.0.113.9",
      seg({ srcPort: 3000, seq: Seq.of(5001), ack: Seq.of(123456), flags: TcpFlag.ACK, mss: undefined }),
    );
    const out = drain(stack, at(5));
    assert.deepEqual(
      out.map((s) => s.flags),
      [TcpFlag.RST],
    );
    assert.equal(stack.connectionCount, 1);
  });
});

void describe("established cap (maxEstablished)", () => {
  void test("defaults to DEFAULT_MAX_ESTABLISHED; a bad value is a usage error", () => {
    const { stack, listener } = server(8);
    assert.equal(listener.maxEstablished, DEFAULT_MAX_ESTABLISHED);
    assert.equal(stack.listen(81, undefined, 4, { maxEstablished: 3 }).maxEstablished, 3);
    assert.equal(stack.listen(82, undefined, 4, { maxEstablished: Infinity }).maxEstablished, Infinity);
    for (const bad of [0, -1, 1.5, Number.NaN])
      assert.throws(() => stack.listen(83, undefined, 4, { maxEstablished: bad }), /maxEstablished/);
  });
  void test("at the cap a SYN is dropped; an abort frees the slot for the next one", () => {
    const { stack } = server(8);
    const l = stack.listen(81, undefined, 8, { maxEstablished: 1 });
    const open = (src: string, ms: number): TcpRepr[] => {
      inject(stack, at(ms), src, seg({ dstPort: 81 }));
      const synAck = drain(stack, at(ms));
      if (synAck.length === 0) return [];
      const s = synAck[0]!;
      const ack = seg({
        dstPort: 81,
        seq: Seq.of(1001),
        ack: Seq.add(s.seq, 1),
        flags: TcpFlag.ACK,
        mss: undefined,
      });
      inject(stack, at(ms), src, { ...ack, timestamps: { tsVal: 101, tsEcr: s.timestamps?.tsVal ?? 0 } });
      drain(stack, at(ms));
      return synAck;
    };
    assert.equal(open("198.51.100.1", 0).length, 1);
    assert.equal(l.established, 1);
    assert.deepEqual(open("198.51.100.2", 1), [], "no SYN-ACK at the cap");
    assert.equal(stack.stats.dropEstablishedCap, 1);
    assert.equal(stack.connectionCount, 1, "the refused SYN left no state");
    events(stack);
    const c = stack.accept(l);
    assert.ok(c !== undefined);
    assert.equal(l.established, 1, "accepted, it still counts");
    stack.abort(at(2), c);
    drain(stack, at(2));
    assert.equal(l.established, 0, "freed");
    assert.equal(stack.connectionCount, 0);
    assert.equal(open("198.51.100.2", 3).length, 1);
    assert.equal(l.established, 1);
  });
});
