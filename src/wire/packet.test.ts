import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Seq } from "./seq.js";
import { UsageError } from "../util/errors.js";
import { ChecksumCapabilities } from "./checksum.js";
import { mac } from "./ethernet.js";
import { hex, toHex } from "./hex.js";
import { ip } from "./ip-addr.js";
import {
  type DecodedPacket,
  decodeFrame,
  decodeIpPacket,
  emitArpFrame,
  emitIcmpv4Packet,
  emitIcmpv6Packet,
  emitTcpPacket,
} from "./packet.js";
import { LINUX_SAMPLES } from "./samples.js";
import { tcpOptionsLen } from "./tcp.js";
import { TcpFlag, type TcpRepr } from "./tcp-repr.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 300 });

const MAC_A = mac("42:18:7a:9c:47:2a");
const MAC_B = mac("b6:51:ee:05:e3:27");

function tcpOf(p: DecodedPacket): TcpRepr {
  assert.ok(p.transport?.kind === "tcp", `not TCP: ${JSON.stringify(p.error)}`);
  return p.transport.tcp;
}

void describe("decoding captured frames", () => {
  void test("every sample decodes with no error and every checksum good", () => {
    for (const [name, frame] of Object.entries(LINUX_SAMPLES)) {
      const p = decodeFrame(hex(frame));
      assert.equal(p.error, undefined, name);
      assert.ok(p.ethernet !== undefined && p.network !== undefined, name);
      if (p.network.kind === "ipv4") assert.equal(p.network.checksum, "good", name);
      if (p.transport !== undefined && "checksum" in p.transport)
        assert.equal(p.transport.checksum, "good", name);
    }
  });

  void test("the layers of the IPv4 SYN", () => {
    const p = decodeFrame(hex(LINUX_SAMPLES.syn4));
    assert.equal(p.ethernet?.etherType, "ipv4");
    assert.ok(p.network?.kind === "ipv4");
    assert.equal(p.network.ipv4.ident, 0x72c7);
    const tcp = tcpOf(p);
    assert.equal(tcp.flags, TcpFlag.SYN);
    assert.equal(tcp.mss, 1460);
  });

  void test("decodeIpPacket takes the bare packet (as from a TUN device), either family", () => {
    const p4 = decodeIpPacket(hex(LINUX_SAMPLES.data4).subarray(14));
    assert.equal(p4.ethernet, undefined);
    assert.equal(new TextDecoder().decode(tcpOf(p4).payload), "hello");
    const p6 = decodeIpPacket(hex(LINUX_SAMPLES.data6).subarray(14));
    assert.equal(p6.network?.kind, "ipv6");
    assert.equal(new TextDecoder().decode(tcpOf(p6).payload), "hello");
  });

  void test("NDP and ARP frames reach their codecs", () => {
    const ns = decodeFrame(hex(LINUX_SAMPLES.neighborSolicitation));
    assert.ok(ns.transport?.kind === "icmpv6");
    assert.equal(ns.transport.icmp.type, "neighbor-solicitation");
    const arp = decodeFrame(hex(LINUX_SAMPLES.arpReply));
    assert.ok(arp.network?.kind === "arp");
    assert.equal(arp.network.arp.operation, "reply");
    assert.equal(arp.transport, undefined);
  });
});

void describe("decoding errors carry the layer and the offset in the whole frame", () => {
  const frame = () => hex(LINUX_SAMPLES.syn4).slice();

  void test("a short frame, a bad IP version, a TCP data offset below 5", () => {
    assert.deepEqual(decodeFrame(frame().subarray(0, 10)).error, {
      layer: "ethernet",
      code: "truncated",
      offset: 10,
    });
    assert.deepEqual(decodeFrame(Object.assign(frame(), { 14: 0x55 })).error, {
      layer: "ipv4",
      code: "bad-version",
      offset: 14,
    });
    // Breaking the data offset breaks the TCP checksum too, but decoding stops at the header.
    const p = decodeFrame(Object.assign(frame(), { 46: 0x40 }));
    assert.deepEqual(p.error, { layer: "tcp", code: "bad-header-len", offset: 46 });
    assert.equal(p.network?.kind, "ipv4");
    assert.equal(p.transport, undefined);
  });

  void test("a bad IPv4 header checksum: reported at the field, nothing above decoded", () => {
    const p = decodeFrame(Object.assign(frame(), { 22: 63 }));
    assert.deepEqual(p.error, { layer: "ipv4", code: "bad-checksum", offset: 24 });
    assert.ok(p.network?.kind === "ipv4" && p.network.checksum === "bad");
    assert.equal(p.transport, undefined);
  });

  void test("a bad TCP checksum: the segment still decodes (for printing), the error says drop", () => {
    const p = decodeFrame(Object.assign(frame(), { 60: 0 }));
    assert.deepEqual(p.error, { layer: "tcp", code: "bad-checksum", offset: 50 });
    assert.ok(p.transport?.kind === "tcp" && p.transport.checksum === "bad");
  });

  void test("with checksum offload advertised, nothing is verified", () => {
    const p = decodeFrame(Object.assign(frame(), { 60: 0, 22: 63 }), ChecksumCapabilities.NONE);
    assert.equal(p.error, undefined);
    assert.ok(p.network?.kind === "ipv4" && p.network.checksum === "unchecked");
    assert.ok(p.transport?.kind === "tcp" && p.transport.checksum === "unchecked");
  });

  void test("fragments are reported, not decoded", () => {
    const f = emitTcpPacket({
      ip: { src: ip("192.0.2.1"), dst: ip("192.0.2.2") },
      tcp: tcpOf(decodeFrame(hex(LINUX_SAMPLES.syn4))),
    });
    f[6] = 0x20; // MF set, DF clear
    f[10] = 0;
    f[11] = 0;
    const p = decodeIpPacket(f, { ...ChecksumCapabilities.ALL, ipv4: "none" });
    assert.ok(p.transport?.kind === "fragment");
    assert.equal(p.transport.protocol, "tcp");
  });

  void test("an unknown EtherType and an unknown protocol are passed through as views", () => {
    const f = Object.assign(frame(), { 12: 0x88, 13: 0xcc });
    assert.deepEqual(decodeFrame(f).network, { kind: "other", etherType: 0x88cc, payload: f.subarray(14) });
    const udp = Object.assign(frame(), { 23: 17 });
    const p = decodeFrame(udp, ChecksumCapabilities.NONE);
    assert.ok(p.transport?.kind === "other");
    assert.equal(p.transport.protocol, "udp");
  });
});

void describe("emitting", () => {
  void test("emitTcpPacket rebuilds the captured IPv4 and IPv6 frames byte for byte", () => {
    const syn4 = hex(LINUX_SAMPLES.syn4);
    const out4 = emitTcpPacket({
      ip: { src: ip("192.0.2.1"), dst: ip("192.0.2.2"), ttl: 64, ident: 0x72c7 },
      tcp: tcpOf(decodeFrame(syn4)),
      ethernet: { src: MAC_A, dst: MAC_B },
    });
    assert.equal(toHex(out4), toHex(syn4));
    const data6 = hex(LINUX_SAMPLES.data6);
    const out6 = emitTcpPacket({
      ip: { src: ip("2001:db8::1"), dst: ip("2001:db8::2"), ttl: 64, flowLabel: 0xbcc0b },
      tcp: tcpOf(decodeFrame(data6)),
      ethernet: { src: MAC_A, dst: MAC_B },
    });
    assert.equal(toHex(out6), toHex(data6));
  });

  void test("emitted frames never share bytes, whatever their sizes", () => {
    // Frames are cut from shared slabs (large ones get a buffer of their own): filling each
    // frame with its own value must leave every frame holding only that value.
    const base = tcpOf(decodeFrame(hex(LINUX_SAMPLES.data6)));
    const sizes = [0, 1, 7, 100, 1448, 9000, 20000, 3, 1460, 64000];
    const frames = Array.from({ length: 300 }, (_, i) =>
      emitTcpPacket({
        ip: { src: ip("192.0.2.1"), dst: ip("192.0.2.2") },
        tcp: { ...base, seq: Seq.of(i), payload: new Uint8Array(sizes[i % sizes.length] ?? 0).fill(i) },
        ethernet: { src: MAC_A, dst: MAC_B },
      }),
    );
    for (const [i, f] of frames.entries()) {
      const p = decodeFrame(f);
      assert.equal(p.error, undefined, `frame ${i}`);
      assert.equal(tcpOf(p).seq, Seq.of(i));
      assert.equal(tcpOf(p).payload.length, sizes[i % sizes.length]);
    }
    frames.forEach((f, i) => f.fill((i % 255) + 1));
    for (const [i, f] of frames.entries()) {
      assert.ok(
        f.every((b) => b === (i % 255) + 1),
        `frame ${i} shares bytes with another frame`,
      );
    }
  });

  void test("emitArpFrame rebuilds the captured ARP request", () => {
    const f = hex(LINUX_SAMPLES.arpRequest);
    const p = decodeFrame(f);
    assert.ok(p.network?.kind === "arp");
    assert.equal(
      toHex(emitArpFrame({ ethernet: { src: MAC_A, dst: mac("ff:ff:ff:ff:ff:ff") }, arp: p.network.arp })),
      toHex(f),
    );
  });

  void test("emitIcmpv6Packet rebuilds the captured neighbor advertisement", () => {
    const f = hex(LINUX_SAMPLES.neighborAdvertisement);
    const p = decodeFrame(f);
    assert.ok(p.transport?.kind === "icmpv6");
    const out = emitIcmpv6Packet({
      ip: { src: ip("2001:db8::2"), dst: ip("2001:db8::1"), ttl: 255 },
      icmp: p.transport.icmp,
      ethernet: { src: MAC_B, dst: MAC_A },
    });
    assert.equal(toHex(out), toHex(f));
  });

  void test("an ICMPv4 echo in a VLAN-tagged frame decodes back", () => {
    const out = emitIcmpv4Packet({
      ip: { src: ip("192.0.2.1"), dst: ip("192.0.2.2") },
      icmp: { type: "echo-request", ident: 7, seqNo: 9, data: hex("00112233") },
      ethernet: { src: MAC_A, dst: MAC_B, vlan: { id: 100, priority: 3, dropEligible: false } },
    });
    const p = decodeFrame(out);
    assert.equal(p.error, undefined);
    assert.deepEqual(p.ethernet?.vlan, { id: 100, priority: 3, dropEligible: false });
    assert.ok(p.transport?.kind === "icmpv4" && p.transport.checksum === "good");
    assert.deepEqual(p.transport.icmp, { type: "echo-request", ident: 7, seqNo: 9, data: hex("00112233") });
  });

  void test("checksum offload leaves the fields zero; mixed families are a usage error", () => {
    const tcp = tcpOf(decodeFrame(hex(LINUX_SAMPLES.syn4)));
    const out = emitTcpPacket({
      ip: { src: ip("192.0.2.1"), dst: ip("192.0.2.2") },
      tcp,
      checksum: ChecksumCapabilities.NONE,
    });
    assert.deepEqual([out[10], out[11], out[36], out[37]], [0, 0, 0, 0]);
    assert.throws(
      () => emitTcpPacket({ ip: { src: ip("192.0.2.1"), dst: ip("2001:db8::2") }, tcp }),
      UsageError,
    );
  });

  const seqArb = fc.nat({ max: 0xffffffff }).map(Seq.of);
  const tcpArb: fc.Arbitrary<TcpRepr> = fc
    .record(
      {
        srcPort: fc.integer({ min: 0, max: 0xffff }),
        dstPort: fc.integer({ min: 0, max: 0xffff }),
        seq: seqArb,
        ack: seqArb,
        flags: fc.integer({ min: 0, max: 0xff }),
        window: fc.integer({ min: 0, max: 0xffff }),
        urgent: fc.integer({ min: 0, max: 0xffff }),
        mss: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
        windowScale: fc.option(fc.integer({ min: 0, max: 14 }), { nil: undefined }),
        sackPermitted: fc.boolean(),
        sack: fc.array(fc.record({ left: seqArb, right: seqArb }, { noNullPrototype: true }), {
          maxLength: 3,
        }),
        timestamps: fc.option(
          fc.record(
            { tsVal: fc.nat({ max: 0xffffffff }), tsEcr: fc.nat({ max: 0xffffffff }) },
            { noNullPrototype: true },
          ),
          { nil: undefined },
        ),
        unknownOptions: fc.constant([]),
        payload: fc.uint8Array({ maxLength: 100 }),
      },
      { noNullPrototype: true },
    )
    .filter((r) => {
      try {
        return tcpOptionsLen(r) >= 0;
      } catch {
        return false;
      }
    });

  void test("property: emitTcpPacket then decode gives back the segment and the IP fields", () => {
    fc.assert(
      fc.property(
        tcpArb,
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: 0, max: 63 }),
        (tcp, v6, framed, ttl, dscp) => {
          const addrs = v6
            ? { src: ip("2001:db8::1"), dst: ip("2001:db8::2") }
            : { src: ip("192.0.2.1"), dst: ip("192.0.2.2") };
          const out = emitTcpPacket({
            ip: { ...addrs, ttl, dscp, ecn: 2 },
            tcp,
            ethernet: framed ? { src: MAC_A, dst: MAC_B } : undefined,
          });
          const p = framed ? decodeFrame(out) : decodeIpPacket(out);
          assert.equal(p.error, undefined);
          assert.deepEqual(tcpOf(p), tcp);
          const n = p.network;
          assert.ok(n?.kind === "ipv4" || n?.kind === "ipv6");
          const h = n.kind === "ipv4" ? n.ipv4 : n.ipv6;
          assert.deepEqual([h.src, h.dst, h.dscp, h.ecn], [addrs.src, addrs.dst, dscp, 2]);
          assert.equal(n.kind === "ipv4" ? n.ipv4.ttl : n.ipv6.hopLimit, ttl);
        },
      ),
    );
  });

  void test("property: decodeFrame is total on random bytes and on mutated real frames", () => {
    const frames = Object.values(LINUX_SAMPLES).map((f) => hex(f));
    fc.assert(
      fc.property(
        fc.nat(frames.length - 1),
        fc.array(fc.tuple(fc.nat(200), fc.nat(255)), { maxLength: 3 }),
        fc.nat(120),
        fc.uint8Array({ maxLength: 120 }),
        (which, edits, cut, noise) => {
          const f = frames[which]!.slice();
          for (const [i, v] of edits) f[i % f.length] = v;
          const p = decodeFrame(f.subarray(0, Math.min(f.length, 14 + cut)));
          if (p.error !== undefined) assert.ok(p.error.offset >= 0 && p.error.offset <= f.length);
          decodeFrame(noise);
          decodeIpPacket(noise);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
