// A flood of ARP requests / neighbor solicitations from spoofed senders must neither grow the
// neighbor cache past its cap nor make every poll slower (pollTimeout used to scan all entries),
// and a real neighbor must still be resolved afterwards.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DEFAULT_NEIGHBOR_CONFIG,
  DEFAULT_NEIGHBOR_MAX_ENTRIES,
  NeighborCache,
} from "../src/host/neighbor.js";
import { HostStack } from "../src/host/stack.js";
import { Prng } from "../src/sim/prng.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Instant } from "../src/time/instant.js";
import { MAC_BROADCAST, mac } from "../src/wire/ethernet.js";
import { type IpAddr, ip, ipEquals } from "../src/wire/ip-addr.js";
import type { Icmpv6Repr } from "../src/wire/icmpv6.js";
import {
  decodeFrame,
  emitArpFrame,
  emitIcmpv4Packet,
  emitIcmpv6Packet,
  emitTcpPacket,
} from "../src/wire/packet.js";
import { Seq } from "../src/wire/seq.js";
import { TcpFlag, type TcpRepr } from "../src/wire/tcp-repr.js";

const MAC_A = mac("02:00:00:00:00:02");
const MAC_B = mac("02:00:00:00:00:01");
const A4 = ip("192.0.2.2");
const B4 = ip("192.0.2.1");
const A6 = ip("2001:db8::2");
const B6 = ip("2001:db8::1");
const FLOOD = 200_000;
const at = (ms: number) => Instant.fromMillis(ms);

function hostA(): HostStack {
  return new HostStack({
    interfaces: [
      {
        name: "eth0",
        link: "ethernet",
        mac: MAC_A,
        mtu: 1500,
        addresses: [
          { addr: A4, prefixLen: 24 },
          { addr: A6, prefixLen: 64 },
        ],
      },
    ],
    routes: [],
    tcp: tcpConfig(),
    random: new Prng(3),
  });
}

function drain(stack: HostStack, now: Instant): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let f = stack.pollTransmit(now); f !== undefined; f = stack.pollTransmit(now)) out.push(f.frame);
  return out;
}

function randomMac(r: Prng): Uint8Array {
  const m = new Uint8Array(6);
  for (let i = 0; i < 6; i++) m[i] = r.nextU32() & 0xff;
  m[0] = ((m[0] ?? 0) & 0xfe) | 0x02; // unicast, locally administered
  return m;
}

function randomV4(r: Prng): IpAddr {
  const a = new Uint8Array(4);
  new DataView(a.buffer).setUint32(0, r.nextU32());
  a[0] = 10;
  return a;
}

function randomV6(r: Prng): IpAddr {
  const a = ip("2001:db8::");
  for (let i = 8; i < 16; i++) a[i] = r.nextU32() & 0xff;
  return a;
}

function arpRequest(sender: IpAddr, senderMac: Uint8Array, target: IpAddr): Uint8Array {
  return emitArpFrame({
    ethernet: { src: senderMac, dst: MAC_BROADCAST },
    arp: {
      operation: "request",
      senderHardwareAddr: senderMac,
      senderProtocolAddr: sender,
      targetHardwareAddr: new Uint8Array(6),
      targetProtocolAddr: target,
    },
  });
}

function syn(srcPort: number, dstPort: number, seq: number): TcpRepr {
  return {
    srcPort: Math.max(1024, srcPort),
    dstPort,
    seq: Seq.of(seq),
    ack: Seq.of(0),
    flags: TcpFlag.SYN,
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
}

function ndFrame(src: IpAddr, srcMac: Uint8Array, icmp: Icmpv6Repr): Uint8Array {
  return emitIcmpv6Packet({ ip: { src, dst: A6, ttl: 255 }, icmp, ethernet: { src: srcMac, dst: MAC_A } });
}

function solicitation(src: IpAddr, srcMac: Uint8Array, target: IpAddr): Uint8Array {
  return ndFrame(src, srcMac, {
    type: "neighbor-solicitation",
    target,
    sourceLinkAddr: srcMac,
    otherOptions: [],
  });
}

/**
 * B pings A; A answers, resolving B first if it has no usable entry (B answers A's ARP request or
 * neighbor solicitation). True when the echo reply reaches B.
 */
function ping(stack: HostStack, now: Instant, v6: boolean, seqNo: number): boolean {
  const req = v6
    ? emitIcmpv6Packet({
        ip: { src: B6, dst: A6 },
        icmp: { type: "echo-request", ident: 7, seqNo, data: Uint8Array.of(1, 2, 3) },
        ethernet: { src: MAC_B, dst: MAC_A },
      })
    : emitIcmpv4Packet({
        ip: { src: B4, dst: A4 },
        icmp: { type: "echo-request", ident: 7, seqNo, data: Uint8Array.of(1, 2, 3) },
        ethernet: { src: MAC_B, dst: MAC_A },
      });
  stack.handleFrame(now, 0, req);
  for (let round = 0; round < 3; round++) {
    for (const f of drain(stack, now)) {
      const d = decodeFrame(f);
      const t = d.transport;
      if ((t?.kind === "icmpv4" || t?.kind === "icmpv6") && t.icmp.type === "echo-reply") {
        return t.icmp.seqNo === seqNo;
      }
      if (d.network?.kind === "arp" && d.network.arp.operation === "request") {
        stack.handleFrame(
          now,
          0,
          emitArpFrame({
            ethernet: { src: MAC_B, dst: MAC_A },
            arp: {
              operation: "reply",
              senderHardwareAddr: MAC_B,
              senderProtocolAddr: B4,
              targetHardwareAddr: MAC_A,
              targetProtocolAddr: A4,
            },
          }),
        );
      }
      if (t?.kind === "icmpv6" && t.icmp.type === "neighbor-solicitation") {
        stack.handleFrame(
          now,
          0,
          ndFrame(B6, MAC_B, {
            type: "neighbor-advertisement",
            router: false,
            solicited: true,
            override: true,
            target: B6,
            targetLinkAddr: MAC_B,
            otherOptions: [],
          }),
        );
      }
    }
  }
  return false;
}

/**
 * Heap operations of `n` stack polls: what a poll costs, counted rather than timed (a scan of
 * every entry, as before, would show as work growing with the table).
 */
function pollCost(stack: HostStack, n: number): { ops: number } {
  const ops0 = stack.neighbors.stats.timerOps;
  for (let i = 0; i < n; i++) stack.pollTimeout();
  return { ops: stack.neighbors.stats.timerOps - ops0 };
}

function floodTest(v6: boolean): void {
  const stack = hostA();
  const r = new Prng(v6 ? 66 : 44);
  assert.ok(ping(stack, at(0), v6, 1), "B answers before the flood");
  // A pending resolution keeps a timer armed, so the polls below look at the heap.
  stack.neighbors.resolve(at(0), 0, v6 ? ip("2001:db8::99") : ip("192.0.2.99"), Uint8Array.of(0));
  const before = pollCost(stack, 20_000);
  let now = 0;
  for (let i = 0; i < FLOOD; i++) {
    const ours = (i & 1) === 0;
    const sender = v6 ? randomV6(r) : randomV4(r);
    const target = ours ? (v6 ? A6 : A4) : v6 ? randomV6(r) : randomV4(r);
    const m = randomMac(r);
    stack.handleFrame(at(now), 0, v6 ? solicitation(sender, m, target) : arpRequest(sender, m, target));
    if (i % 64 === 0) {
      now += 1;
      drain(stack, at(now));
    }
    assert.ok(stack.neighbors.size <= DEFAULT_NEIGHBOR_MAX_ENTRIES);
  }
  drain(stack, at(now));
  const n = stack.neighbors;
  assert.equal(n.size, DEFAULT_NEIGHBOR_MAX_ENTRIES, "the flood filled the table up to its cap only");
  assert.ok(
    n.stats.evictions >= FLOOD / 2 - DEFAULT_NEIGHBOR_MAX_ENTRIES - 100,
    `evictions ${n.stats.evictions}`,
  );
  assert.ok(n.timerCount <= 2 * n.size + 64, `timer heap ${n.timerCount}`);
  stack.neighbors.resolve(at(now), 0, v6 ? ip("2001:db8::98") : ip("192.0.2.98"), Uint8Array.of(0));
  const after = pollCost(stack, 20_000);
  assert.ok(
    after.ops <= before.ops + 1,
    `heap operations of the polls: ${after.ops} after, ${before.ops} before`,
  );
  assert.ok(ping(stack, at(now + 10), v6, 2), "B still gets an answer after the flood");
}

void describe("neighbor cache under a flood of spoofed senders", () => {
  void test(`${FLOOD} ARP requests: the table stays capped, polls stay cheap, B is still answered`, () => {
    floodTest(false);
  });
  void test(`${FLOOD} neighbor solicitations: the same for IPv6`, () => {
    floodTest(true);
  });
  void test("requests for other hosts create no entry but update an existing one (RFC 826 merge)", () => {
    const stack = hostA();
    const r = new Prng(9);
    for (let i = 0; i < 1000; i++)
      stack.handleFrame(at(0), 0, arpRequest(randomV4(r), randomMac(r), ip("192.0.2.77")));
    assert.equal(stack.neighbors.size, 0);
    assert.ok(ping(stack, at(1), false, 1));
    const other = mac("02:00:00:00:00:42");
    stack.handleFrame(at(2), 0, arpRequest(B4, other, ip("192.0.2.77")));
    assert.deepEqual(stack.neighbors.get(0, B4)?.mac, other);
    assert.equal(stack.neighbors.size, 1);
  });
  void test("an entry in use is never evicted; others go least recently used first, queued ones too; unused ones age out after 60 s", () => {
    const c = new NeighborCache({ ...DEFAULT_NEIGHBOR_CONFIG, maxEntries: 4, gcThreshold: 2 });
    const pinned = ip("192.0.2.10");
    const queued = ip("192.0.2.11");
    c.setInUse((_i, a) => ipEquals(a, pinned));
    c.confirm(at(0), 0, pinned, MAC_B, true);
    c.resolve(at(0), 0, queued, Uint8Array.of(1));
    c.confirm(at(1), 0, ip("198.51.100.1"), MAC_B, false);
    c.confirm(at(1), 0, ip("198.51.100.2"), MAC_B, false);
    assert.equal(c.size, 4);
    // The next arrival evicts the least recently used entry not in use: the queued one, whose
    // packet is dropped with it.
    const drops = c.stats.queueDrops;
    c.confirm(at(2), 0, ip("198.51.100.3"), MAC_B, false);
    assert.equal(c.get(0, queued), undefined);
    assert.equal(c.stats.queueDrops, drops + 1);
    assert.equal(c.pollRelease(), undefined, "the dropped packet is never released");
    for (let i = 4; i < 100; i++) c.confirm(at(3), 0, ip(`198.51.100.${i}`), MAC_B, false);
    assert.equal(c.size, 4);
    assert.ok(c.get(0, pinned) !== undefined, "the entry in use stays");
    // 60 s later, new arrivals collect the unused entries, not the pinned one.
    c.confirm(at(62_000), 0, ip("203.0.113.1"), MAC_B, false);
    assert.equal(c.size, 2);
    assert.ok(c.get(0, pinned) !== undefined);
    assert.ok(c.stats.staleCollected >= 2);
  });
  void test("a table full of entries in use refuses a new one", () => {
    const c = new NeighborCache({ ...DEFAULT_NEIGHBOR_CONFIG, maxEntries: 2 });
    c.setInUse(() => true);
    c.confirm(at(0), 0, ip("192.0.2.10"), MAC_B, true);
    c.confirm(at(0), 0, ip("192.0.2.11"), MAC_B, true);
    assert.equal(c.resolve(at(1), 0, ip("192.0.2.12"), Uint8Array.of(1)), undefined);
    assert.equal(c.size, 2);
    assert.equal(c.stats.tableFull, 1);
  });
  void test(`${FLOOD / 4} SYNs from spoofed on-link senders: their unanswered resolutions do not lock B out`, () => {
    // Each SYN-ACK to a spoofed sender starts a resolution that never completes, with the
    // SYN-ACK queued. They used to pin their entries: the table filled with them and B, whose
    // entry had been evicted, could not be resolved again until the flood stopped.
    const stack = hostA();
    stack.listen(80);
    const r = new Prng(31);
    assert.ok(ping(stack, at(0), false, 1), "B answers before the flood");
    let now = 0;
    for (let i = 0; i < FLOOD / 4; i++) {
      const src = randomV6(r);
      stack.handleFrame(
        at(now),
        0,
        emitTcpPacket({
          ip: { src, dst: A6 },
          tcp: syn(r.nextU32() & 0xffff, 80, r.nextU32()),
          ethernet: { src: randomMac(r), dst: MAC_A },
        }),
      );
      if (i % 64 === 0) {
        now += 1;
        drain(stack, at(now));
      }
    }
    drain(stack, at(now));
    const n = stack.neighbors;
    assert.equal(n.size, DEFAULT_NEIGHBOR_MAX_ENTRIES, "the flood filled the table");
    const incomplete = [...n.entries()].filter((e) => e.state === "INCOMPLETE").length;
    assert.ok(incomplete >= DEFAULT_NEIGHBOR_MAX_ENTRIES - 2, `${incomplete} unanswered resolutions`);
    // B's entry was evicted long ago (B was idle); B is resolved again and answered at once.
    assert.equal(n.get(0, B4), undefined);
    assert.equal(n.stats.tableFull, 0, "no entry was ever refused");
    assert.ok(ping(stack, at(now), false, 2), "B is resolved and answered during the flood");
  });
});
