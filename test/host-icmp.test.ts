// ICMP errors reach the TCP connection they quote (RFC 1122 4.2.3.9, RFC 5461), only when the
// quoted sequence number lies in [SND.UNA, SND.MAX) (RFC 5927 4.1). Hard errors abort a
// connection in SYN-SENT; soft ones, and any error in a synchronized state, are only recorded.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type HostConn, HostStack, type StackEvent } from "../src/host/stack.js";
import { Prng } from "../src/sim/prng.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Seq, type SeqNum } from "../src/wire/seq.js";
import { Instant } from "../src/time/instant.js";
import type { Icmpv4Repr } from "../src/wire/icmpv4.js";
import type { Icmpv6Repr } from "../src/wire/icmpv6.js";
import { type IpAddr, ip } from "../src/wire/ip-addr.js";
import { decodeIpPacket, emitIcmpv4Packet, emitIcmpv6Packet, emitTcpPacket } from "../src/wire/packet.js";
import { TcpFlag, type TcpRepr } from "../src/wire/tcp-repr.js";

const at = (ms: number) => Instant.fromMillis(ms);

interface Family {
  readonly name: string;
  readonly local: IpAddr;
  readonly peer: IpAddr;
  readonly router: IpAddr;
  readonly prefixLen: number;
  /** Bytes of the original packet an ICMP error quotes (RFC 792: IP header + 8). */
  readonly quoteLen: number;
}

const V4: Family = {
  name: "IPv4",
  local: ip("192.0.2.2"),
  peer: ip("192.0.2.80"),
  router: ip("192.0.2.1"),
  prefixLen: 24,
  quoteLen: 28,
};
const V6: Family = {
  name: "IPv6",
  local: ip("2001:db8::2"),
  peer: ip("2001:db8::80"),
  router: ip("2001:db8::1"),
  prefixLen: 64,
  quoteLen: 48,
};

function host(f: Family, icmpMayAbort?: boolean): HostStack {
  return new HostStack({
    interfaces: [
      {
        name: "tun0",
        link: "ip",
        mac: new Uint8Array(6),
        mtu: 1500,
        addresses: [{ addr: f.local, prefixLen: f.prefixLen }],
      },
    ],
    tcp: tcpConfig({}),
    random: new Prng(9),
    icmpMayAbort,
  });
}

/** The TCP segments sent, with the raw IP packet each came in. */
function drain(stack: HostStack, now: Instant): { tcp: TcpRepr; bytes: Uint8Array }[] {
  const out: { tcp: TcpRepr; bytes: Uint8Array }[] = [];
  for (let fr = stack.pollTransmit(now); fr !== undefined; fr = stack.pollTransmit(now)) {
    const p = decodeIpPacket(fr.frame);
    if (p.transport?.kind === "tcp") out.push({ tcp: p.transport.tcp, bytes: fr.frame });
  }
  return out;
}

function events(stack: HostStack): StackEvent[] {
  const out: StackEvent[] = [];
  for (let e = stack.pollEvent(); e !== undefined; e = stack.pollEvent()) out.push(e);
  return out;
}

function closedEvents(stack: HostStack): unknown[] {
  return events(stack)
    .filter((e) => e.kind === "conn" && e.event.kind === "closed")
    .map((e) => (e.kind === "conn" ? e.event : undefined));
}

/** The original packet with its TCP sequence number replaced, cut to the quote length. */
function quoteWithSeq(f: Family, original: Uint8Array, seq: SeqNum): Uint8Array {
  const q = original.slice(0, f.quoteLen);
  const at = f.quoteLen - 4; // the sequence number is TCP bytes 4..7
  new DataView(q.buffer, q.byteOffset).setUint32(at, seq >>> 0);
  return q;
}

type Kind = "port-unreachable" | "net-unreachable" | "ttl-exceeded";

function icmpFrame(f: Family, kind: Kind, quoted: Uint8Array): Uint8Array {
  const spec = { src: f.router, dst: f.local };
  if (f.local.length === 4) {
    const icmp: Icmpv4Repr =
      kind === "ttl-exceeded"
        ? { type: "time-exceeded", code: "ttl-exceeded", quoted }
        : { type: "dst-unreachable", code: kind, nextHopMtu: undefined, quoted };
    return emitIcmpv4Packet({ ip: spec, icmp });
  }
  const icmp: Icmpv6Repr =
    kind === "ttl-exceeded"
      ? { type: "time-exceeded", code: "hop-limit-exceeded", quoted }
      : { type: "dst-unreachable", code: kind === "net-unreachable" ? "no-route" : kind, quoted };
  return emitIcmpv6Packet({ ip: spec, icmp });
}

/** A host with one connection in SYN-SENT, and its SYN as sent. */
function synSent(f: Family, icmpMayAbort?: boolean) {
  const stack = host(f, icmpMayAbort);
  const conn = stack.connect(at(0), f.peer, 80);
  const sent = drain(stack, at(0));
  assert.equal(sent.length, 1);
  const syn = sent[0]!;
  assert.equal(syn.tcp.flags, TcpFlag.SYN);
  events(stack);
  return { stack, conn, syn };
}

function stateOf(c: HostConn): string | undefined {
  return c.tcp?.state;
}

for (const f of [V4, V6]) {
  void describe(`ICMP errors in SYN-SENT (${f.name})`, () => {
    void test("a port unreachable quoting the SYN aborts the connect with ECONNREFUSED", () => {
      const { stack, conn, syn } = synSent(f);
      stack.handleFrame(at(10), 0, icmpFrame(f, "port-unreachable", syn.bytes.slice(0, f.quoteLen)));
      assert.deepEqual(closedEvents(stack), [
        { kind: "closed", reason: "unreachable", error: "ECONNREFUSED" },
      ]);
      assert.equal(conn.tcp?.error, "ECONNREFUSED");
      assert.equal(stateOf(conn), "CLOSED");
    });

    void test("one quoting a sequence number outside [SND.UNA, SND.MAX) is ignored", () => {
      const { stack, conn, syn } = synSent(f);
      const iss = syn.tcp.seq;
      for (const seq of [Seq.sub(iss, 1), Seq.add(iss, 1), Seq.add(iss, 0x8000_0000)]) {
        stack.handleFrame(at(10), 0, icmpFrame(f, "port-unreachable", quoteWithSeq(f, syn.bytes, seq)));
        assert.deepEqual(closedEvents(stack), [], `quoted seq ISS${seq === Seq.sub(iss, 1) ? "-1" : "+n"}`);
        assert.equal(stateOf(conn), "SYN-SENT");
        assert.equal(conn.tcp?.softError, undefined);
      }
      // The same message quoting ISS itself is accepted: the rewrite above is not what hid it.
      stack.handleFrame(at(20), 0, icmpFrame(f, "port-unreachable", quoteWithSeq(f, syn.bytes, iss)));
      assert.equal(stateOf(conn), "CLOSED");
    });

    void test("TTL / hop limit exceeded is a hard error reported as EHOSTUNREACH", () => {
      const { stack, conn, syn } = synSent(f);
      stack.handleFrame(at(10), 0, icmpFrame(f, "ttl-exceeded", syn.bytes.slice(0, f.quoteLen)));
      assert.equal(conn.tcp?.error, "EHOSTUNREACH");
      assert.equal(stateOf(conn), "CLOSED");
    });

    void test("a net unreachable is soft: recorded, the SYN keeps being retransmitted", () => {
      const { stack, conn, syn } = synSent(f);
      stack.handleFrame(at(10), 0, icmpFrame(f, "net-unreachable", syn.bytes.slice(0, f.quoteLen)));
      assert.deepEqual(closedEvents(stack), []);
      assert.equal(stateOf(conn), "SYN-SENT");
      assert.equal(conn.tcp?.softError, "ENETUNREACH");
      assert.equal(conn.tcp?.error, undefined);
      const later = at(5000);
      stack.handleTimeout(later);
      const again = drain(stack, later);
      assert.ok(again.some((s) => s.tcp.flags === TcpFlag.SYN && s.tcp.seq === syn.tcp.seq));
    });

    void test("with icmpMayAbort off a port unreachable is only a soft error", () => {
      const { stack, conn, syn } = synSent(f, false);
      stack.handleFrame(at(10), 0, icmpFrame(f, "port-unreachable", syn.bytes.slice(0, f.quoteLen)));
      assert.deepEqual(closedEvents(stack), []);
      assert.equal(stateOf(conn), "SYN-SENT");
      assert.equal(conn.tcp?.softError, "ECONNREFUSED");
      // Switched on later (a live knob), the next one aborts.
      stack.icmpMayAbort = true;
      stack.handleFrame(at(20), 0, icmpFrame(f, "port-unreachable", syn.bytes.slice(0, f.quoteLen)));
      assert.equal(conn.tcp?.error, "ECONNREFUSED");
    });
  });

  void describe(`ICMP errors in ESTABLISHED (${f.name})`, () => {
    void test("a hard error quoting outstanding data is recorded as soft, the connection lives", () => {
      const { stack, conn, syn } = synSent(f);
      const synAck: TcpRepr = {
        srcPort: 80,
        dstPort: syn.tcp.srcPort,
        seq: Seq.of(5000),
        ack: Seq.add(syn.tcp.seq, 1),
        flags: TcpFlag.SYN | TcpFlag.ACK,
        window: 65535,
        urgent: 0,
        mss: 1460,
        windowScale: undefined,
        sackPermitted: false,
        sack: [],
        timestamps: undefined,
        unknownOptions: [],
        payload: new Uint8Array(0),
      };
      stack.handleFrame(at(5), 0, emitTcpPacket({ ip: { src: f.peer, dst: f.local }, tcp: synAck }));
      drain(stack, at(5));
      assert.equal(stateOf(conn), "ESTABLISHED");
      assert.equal(stack.send(at(6), conn, new Uint8Array(100)), 100);
      const data = drain(stack, at(6)).find((s) => s.tcp.payload.length > 0);
      assert.ok(data !== undefined, "data went out");
      events(stack);
      stack.handleFrame(at(10), 0, icmpFrame(f, "port-unreachable", data.bytes.slice(0, f.quoteLen)));
      assert.deepEqual(closedEvents(stack), []);
      assert.equal(stateOf(conn), "ESTABLISHED");
      assert.equal(conn.tcp?.softError, "ECONNREFUSED");
      assert.equal(conn.tcp?.error, undefined);
    });
  });
}
