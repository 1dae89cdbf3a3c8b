// IP reassembly in the host stack (RFC 791 3.2, RFC 8200 4.5): a SYN that arrives in fragments,
// in any order, reaches the listener and is answered; an overlapping fragment (RFC 5722) makes
// the datagram disappear, counted, and the stack keeps serving. IPv4 and IPv6.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HostStack } from "../src/host/stack.js";
import { Prng } from "../src/sim/prng.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Instant } from "../src/time/instant.js";
import { type IpAddr, ip } from "../src/wire/ip-addr.js";
import { Ipv4View } from "../src/wire/ipv4.js";
import { decodeIpPacket, emitTcpPacket } from "../src/wire/packet.js";
import { Seq } from "../src/wire/seq.js";
import { BLANK_TCP, TcpFlag } from "../src/wire/tcp-repr.js";

const at = (ms: number) => Instant.fromMillis(ms);

function host(local: IpAddr, prefixLen: number): HostStack {
  const s = new HostStack({
    interfaces: [
      {
        name: "tun0",
        link: "ip",
        mac: new Uint8Array(6),
        mtu: 1500,
        addresses: [{ addr: local, prefixLen }],
      },
    ],
    tcp: tcpConfig({}),
    random: new Prng(11),
  });
  s.listen(80);
  return s;
}

/** A SYN with the MSS and SACK-permitted options: 28 bytes of TCP, cut into 8, 8 and 12. */
function syn(src: IpAddr, dst: IpAddr): Uint8Array {
  return emitTcpPacket({
    ip: { src, dst, dontFragment: false, ident: 0x4242 },
    tcp: {
      ...BLANK_TCP,
      srcPort: 40000,
      dstPort: 80,
      seq: Seq.of(1000),
      flags: TcpFlag.SYN,
      window: 65535,
      mss: 1400,
      sackPermitted: true,
    },
  });
}

/** IPv4 fragments of `packet` cut at `cuts` (offsets in its payload, multiples of 8). */
function fragments4(packet: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const hl = (packet[0]! & 0x0f) * 4;
  const payload = packet.subarray(hl);
  const edges = [0, ...cuts, payload.length];
  return edges.slice(0, -1).map((from, i) => {
    const to = edges[i + 1]!;
    const f = new Uint8Array(hl + to - from);
    f.set(packet.subarray(0, hl));
    f.set(payload.subarray(from, to), hl);
    const v = Ipv4View.unchecked(f);
    v.totalLen = f.length;
    v.flagsAndFragment = (to < payload.length ? 0x2000 : 0) | (from / 8);
    v.fillChecksum();
    return f;
  });
}

/** IPv6 fragments of `packet` (fixed header only) cut at `cuts`, each with a fragment header. */
function fragments6(packet: Uint8Array, cuts: readonly number[], ident = 0x77): Uint8Array[] {
  const payload = packet.subarray(40);
  const nh = packet[6]!;
  const edges = [0, ...cuts, payload.length];
  return edges.slice(0, -1).map((from, i) => {
    const to = edges[i + 1]!;
    const f = new Uint8Array(48 + to - from);
    f.set(packet.subarray(0, 40));
    const plen = 8 + to - from;
    f[4] = plen >>> 8;
    f[5] = plen & 0xff;
    f[6] = 44;
    f[40] = nh;
    const word = from | (to < payload.length ? 1 : 0);
    f[42] = word >>> 8;
    f[43] = word & 0xff;
    new DataView(f.buffer).setUint32(44, ident);
    f.set(payload.subarray(from, to), 48);
    return f;
  });
}

function synAcks(s: HostStack, now: Instant): number {
  let n = 0;
  for (let fr = s.pollTransmit(now); fr !== undefined; fr = s.pollTransmit(now)) {
    const p = decodeIpPacket(fr.frame);
    if (p.transport?.kind === "tcp" && p.transport.tcp.flags === (TcpFlag.SYN | TcpFlag.ACK)) n++;
  }
  return n;
}

const FAMILIES = [
  { name: "IPv4", local: ip("192.0.2.2"), peer: ip("192.0.2.80"), prefix: 24, cut: fragments4 },
  { name: "IPv6", local: ip("2001:db8::2"), peer: ip("2001:db8::80"), prefix: 64, cut: fragments6 },
] as const;

void describe("IP reassembly in the host stack", () => {
  for (const f of FAMILIES) {
    void test(`${f.name}: a SYN in three fragments, last first, is reassembled and answered`, () => {
      const s = host(f.local, f.prefix);
      const parts = f.cut(syn(f.peer, f.local), [8, 16]);
      assert.equal(parts.length, 3);
      for (const p of [parts[2], parts[0], parts[1]]) s.handleFrame(at(1), 0, p as Uint8Array);
      assert.equal(synAcks(s, at(1)), 1, "the listener answered the reassembled SYN");
      assert.equal(s.reassemblyStats.reassembled, 1);
      assert.equal(s.stats.dropFragment, 0);
    });

    void test(`${f.name}: RFC 5722: an overlapping fragment discards the datagram, counted; the stack keeps serving`, () => {
      const s = host(f.local, f.prefix);
      const packet = syn(f.peer, f.local);
      const parts = f.cut(packet, [8, 16]);
      const overlapping = f.cut(packet, [8, 24])[1]; // offset 8, 16 bytes: overlaps [16, ...)
      s.handleFrame(at(1), 0, parts[0] as Uint8Array);
      s.handleFrame(at(1), 0, parts[2] as Uint8Array);
      s.handleFrame(at(1), 0, overlapping as Uint8Array);
      s.handleFrame(at(1), 0, parts[1] as Uint8Array);
      assert.equal(synAcks(s, at(1)), 0, "nothing reassembled");
      assert.equal(s.reassemblyStats.overlaps, 2, "the overlap, then the late fragment");
      assert.equal(s.stats.dropFragment, 2);
      // An unfragmented SYN from another port is still served.
      const other = emitTcpPacket({
        ip: { src: f.peer, dst: f.local },
        tcp: { ...BLANK_TCP, srcPort: 40001, dstPort: 80, seq: Seq.of(5), flags: TcpFlag.SYN, window: 65535 },
      });
      s.handleFrame(at(2), 0, other);
      assert.equal(synAcks(s, at(2)), 1);
    });
  }
});
