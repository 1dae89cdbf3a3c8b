// A flood of forged ICMP "fragmentation needed" / "packet too big" messages (RFC 1191, RFC 8201)
// must neither grow the path-MTU cache past its cap nor lower a live connection's PMTU: only a
// message quoting a live connection with a sequence number in [SND.UNA, SND.MAX) counts
// (RFC 5927 4.1). A genuine one still lowers the PMTU, and data still flows afterwards.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type HostConn, HostStack } from "../src/host/stack.js";
import { DEFAULT_PMTU_CACHE_SIZE } from "../src/host/path.js";
import { Prng } from "../src/sim/prng.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Duration, Instant } from "../src/time/instant.js";
import type { Icmpv4Repr } from "../src/wire/icmpv4.js";
import type { Icmpv6Repr } from "../src/wire/icmpv6.js";
import { type IpAddr, ip } from "../src/wire/ip-addr.js";
import { decodeIpPacket, emitIcmpv4Packet, emitIcmpv6Packet } from "../src/wire/packet.js";

const A4 = ip("192.0.2.2");
const B4 = ip("192.0.2.80");
const R4 = ip("192.0.2.1");
const A6 = ip("2001:db8::2");
const B6 = ip("2001:db8::80");
const R6 = ip("2001:db8::1");
const FORGED = 200_000;

function host(addrs: readonly [IpAddr, IpAddr], seed: number): HostStack {
  return new HostStack({
    interfaces: [
      {
        name: "tun0",
        link: "ip",
        mac: new Uint8Array(6),
        mtu: 1500,
        addresses: [
          { addr: addrs[0], prefixLen: 24 },
          { addr: addrs[1], prefixLen: 64 },
        ],
      },
    ],
    tcp: tcpConfig({}),
    random: new Prng(seed),
  });
}

/** Frames `from` sends now. */
function take(from: HostStack, now: Instant): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = from.pollTransmit(now); f !== undefined; f = from.pollTransmit(now)) out.push(f.frame);
  return out;
}

/** Moves frames both ways until both sides are quiet. */
function exchange(a: HostStack, b: HostStack, now: Instant): void {
  for (let i = 0; i < 10_000; i++) {
    const ab = take(a, now);
    const ba = take(b, now);
    if (ab.length === 0 && ba.length === 0) return;
    for (const f of ab) b.handleFrame(now, 0, f);
    for (const f of ba) a.handleFrame(now, 0, f);
  }
  assert.fail("the hosts never went quiet");
}

function drainEvents(s: HostStack): void {
  while (s.pollEvent() !== undefined);
}

/** The IP packet quoted by an ICMP error: the header and the first 8 bytes of TCP. */
function quoteOf(frame: Uint8Array): Uint8Array {
  return frame.slice(0, (frame[0]! >>> 4 === 4 ? 20 : 40) + 8);
}

function withSeq(quote: Uint8Array, seq: number): Uint8Array {
  const q = quote.slice();
  new DataView(q.buffer).setUint32(q.length - 4, seq >>> 0);
  return q;
}

function withDst(quote: Uint8Array, rnd: Prng): Uint8Array {
  const q = quote.slice();
  const [at, len] = q[0]! >>> 4 === 4 ? [16, 4] : [24, 16];
  for (let i = 0; i < len; i++) q[at + i] = rnd.nextU32() & 0xff;
  return q;
}

function tooBig(quote: Uint8Array, mtu: number): Uint8Array {
  if (quote[0]! >>> 4 === 4) {
    const icmp: Icmpv4Repr = { type: "dst-unreachable", code: "frag-needed", nextHopMtu: mtu, quoted: quote };
    return emitIcmpv4Packet({ ip: { src: R4, dst: A4 }, icmp });
  }
  const icmp: Icmpv6Repr = { type: "packet-too-big", mtu, quoted: quote };
  return emitIcmpv6Packet({ ip: { src: R6, dst: A6 }, icmp });
}

interface Live {
  readonly conn: HostConn;
  readonly peer: HostConn;
  /** The first data segment in flight, as sent (not delivered). */
  readonly quote: Uint8Array;
  readonly mss: number;
}

void describe("path-MTU cache under a forged ICMP flood", () => {
  void test(`${FORGED} forged too-big messages change nothing; a genuine one still counts`, () => {
    const a = host([A4, A6], 1);
    const b = host([B4, B6], 2);
    let now = Instant.fromMillis(1);
    const l = b.listen(80);
    const conns = [a.connect(now, B4, 80), a.connect(now, B6, 80)];
    exchange(a, b, now);
    drainEvents(a);
    const peers = [b.accept(l), b.accept(l)];
    drainEvents(b);
    // Data in flight on both connections (sent, held back), so [SND.UNA, SND.MAX) is not empty.
    for (const c of conns) assert.equal(a.send(now, c, new Uint8Array(20_000)), 20_000);
    const held = take(a, now);
    const lives: Live[] = conns.map((conn, i) => {
      const fam = conn.remoteAddr.length;
      const frame = held.find((f) => {
        const p = decodeIpPacket(f);
        return (
          f[0]! >>> 4 === (fam === 4 ? 4 : 6) &&
          p.transport?.kind === "tcp" &&
          p.transport.tcp.payload.length > 0
        );
      });
      assert.ok(frame !== undefined, "a data segment in flight");
      const peer = peers.find((p) => p?.remoteAddr.length === fam);
      assert.ok(peer !== undefined && peers[i] !== undefined);
      return { conn, peer, quote: quoteOf(frame), mss: conn.engine.mss };
    });

    const rnd = new Prng(7);
    for (let i = 0; i < FORGED; i++) {
      const live = lives[i % 2]!;
      const mtu = 600 + (rnd.nextU32() % 800);
      let quote: Uint8Array;
      if (i % 4 < 2) {
        quote = withDst(live.quote, rnd); // a random destination: no connection of ours
      } else {
        // The live connection's 4-tuple, a sequence number outside [SND.UNA, SND.MAX).
        const una = live.conn.engine.sndUna;
        const off = 0x10_0000 + (rnd.nextU32() % 0x4000_0000);
        quote = withSeq(live.quote, i % 4 === 2 ? una + off : una - 1 - (off & 0xffff));
      }
      a.handleFrame(now, 0, tooBig(quote, mtu));
    }
    assert.ok(a.paths.size <= a.paths.capacity, `path cache holds ${a.paths.size} entries`);
    assert.equal(a.paths.capacity, DEFAULT_PMTU_CACHE_SIZE);
    assert.equal(a.paths.size, 0, "no forged message was learned");
    assert.equal(a.stats.dropIcmpTooBig, FORGED);
    for (const live of lives) {
      assert.equal(live.conn.engine.mss, live.mss, "MSS unchanged by forged messages");
      assert.equal(a.pathMtuOf(live.conn), 1500, "PMTU unchanged by forged messages");
    }

    // A genuine too-big for each live connection, quoting the segment in flight.
    for (const live of lives) a.handleFrame(now, 0, tooBig(live.quote, 1280));
    assert.equal(a.paths.size, 2);
    for (const live of lives) {
      assert.equal(a.pathMtuOf(live.conn), 1280);
      assert.ok(live.conn.engine.mss < live.mss, `MSS lowered from ${live.mss} to ${live.conn.engine.mss}`);
    }

    // The held segments were "lost" at the small hop; everything is sent again and arrives.
    const got = [0, 0];
    for (let step = 0; step < 20_000 && (got[0]! < 20_000 || got[1]! < 20_000); step++) {
      now = Instant.add(now, Duration.fromMillis(1));
      const t = a.pollTimeout();
      if (t !== undefined && t <= now) a.handleTimeout(now);
      const tb = b.pollTimeout();
      if (tb !== undefined && tb <= now) b.handleTimeout(now);
      for (const f of take(a, now)) {
        const p = decodeIpPacket(f);
        if (p.transport?.kind === "tcp") {
          assert.ok(f.length <= 1280, `a ${f.length}-byte packet after the PMTU dropped to 1280`);
        }
        b.handleFrame(now, 0, f);
      }
      for (const f of take(b, now)) a.handleFrame(now, 0, f);
      lives.forEach((live, i) => {
        for (let d = b.recv(now, live.peer); d !== undefined; d = b.recv(now, live.peer)) got[i]! += d.length;
      });
      drainEvents(a);
      drainEvents(b);
    }
    assert.deepEqual(got, [20_000, 20_000], "both connections still move data");
  });

  void test("learned paths stay within a configured cap", () => {
    const a = new HostStack({
      interfaces: [
        {
          name: "tun0",
          link: "ip",
          mac: new Uint8Array(6),
          mtu: 1500,
          addresses: [{ addr: A4, prefixLen: 24 }],
        },
      ],
      tcp: tcpConfig({}),
      random: new Prng(3),
      pmtuCacheSize: 3,
    });
    assert.equal(a.paths.capacity, 3);
    for (let i = 0; i < 10; i++)
      a.paths.handleTooBig(Instant.fromMillis(i), ip(`198.51.100.${i}`), 1400, 1500);
    assert.equal(a.paths.size, 3);
    assert.equal(a.paths.pmtu(ip("198.51.100.0"), 1500), 1500, "the oldest was evicted");
    assert.equal(a.paths.pmtu(ip("198.51.100.9"), 1500), 1400);
  });
});
