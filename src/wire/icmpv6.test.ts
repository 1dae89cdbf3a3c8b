import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { mac, macToString } from "./ethernet.js";
import { hex, toHex } from "./hex.js";
import { parseIcmpQuote } from "./icmp-quote.js";
import {
  emitIcmpv6,
  Icmpv6View,
  type Icmpv6Repr,
  icmpv6BufferLen,
  type NdpRawOption,
  parseIcmpv6,
  solicitedNodeMulticast,
} from "./icmpv6.js";
import { ip, ipToString } from "./ip-addr.js";
import { LINUX_SAMPLES } from "./samples.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 300 });

interface Pseudo {
  src: Uint8Array;
  dst: Uint8Array;
}

function decode(bytes: Uint8Array, pseudo?: Pseudo) {
  const v = Icmpv6View.checked(bytes);
  return v.ok ? parseIcmpv6(v.value, pseudo) : v;
}

/** The ICMPv6 message of a captured frame and its addresses. */
function sample(frame: string): { msg: Uint8Array; pseudo: Pseudo } {
  const f = hex(frame);
  return { msg: f.subarray(54), pseudo: { src: f.subarray(22, 38), dst: f.subarray(38, 54) } };
}

function emit(repr: Icmpv6Repr, pseudo?: Pseudo): Uint8Array {
  const out = new Uint8Array(icmpv6BufferLen(repr));
  emitIcmpv6(repr, out, pseudo);
  return out;
}

void describe("ICMPv6 and NDP from Linux captures", () => {
  const cases: [string, string, Icmpv6Repr][] = [
    [
      "router solicitation",
      LINUX_SAMPLES.routerSolicitation,
      { type: "router-solicitation", sourceLinkAddr: mac("b6:51:ee:05:e3:27"), otherOptions: [] },
    ],
    [
      "neighbor solicitation",
      LINUX_SAMPLES.neighborSolicitation,
      {
        type: "neighbor-solicitation",
        target: ip("2001:db8::2"),
        sourceLinkAddr: mac("42:18:7a:9c:47:2a"),
        otherOptions: [],
      },
    ],
    [
      "neighbor advertisement",
      LINUX_SAMPLES.neighborAdvertisement,
      {
        type: "neighbor-advertisement",
        router: false,
        solicited: true,
        override: true,
        target: ip("2001:db8::2"),
        targetLinkAddr: mac("b6:51:ee:05:e3:27"),
        otherOptions: [],
      },
    ],
    [
      "neighbor advertisement without options",
      LINUX_SAMPLES.neighborAdvertisementBare,
      {
        type: "neighbor-advertisement",
        router: false,
        solicited: true,
        override: false,
        target: ip("2001:db8::1"),
        targetLinkAddr: undefined,
        otherOptions: [],
      },
    ],
  ];
  for (const [what, frame, want] of cases) {
    void test(`${what}: decodes, verifies with the pseudo-header, re-emits byte for byte`, () => {
      const { msg, pseudo } = sample(frame);
      assert.deepEqual(decode(msg, pseudo), { ok: true, value: want });
      assert.equal(toHex(emit(want, pseudo)), toHex(msg));
    });
  }

  void test("a flipped bit fails the checksum; the wrong addresses fail it too", () => {
    const { msg, pseudo } = sample(LINUX_SAMPLES.neighborSolicitation);
    const bad = Object.assign(msg.slice(), { 23: 3 });
    assert.deepEqual(decode(bad, pseudo), { ok: false, error: { code: "bad-checksum", offset: 2 } });
    assert.deepEqual(decode(msg, { src: pseudo.dst, dst: ip("ff02::1") }), {
      ok: false,
      error: { code: "bad-checksum", offset: 2 },
    });
  });

  void test("solicited-node multicast of 2001:db8::2 is ff02::1:ff00:2 (where the NS was sent)", () => {
    assert.equal(ipToString(solicitedNodeMulticast(ip("2001:db8::2"))), "ff02::1:ff00:2");
    const { pseudo } = sample(LINUX_SAMPLES.neighborSolicitation);
    assert.equal(ipToString(pseudo.dst), "ff02::1:ff00:2");
  });
});

void describe("ICMPv6 errors and router advertisements", () => {
  const quote = hex(LINUX_SAMPLES.syn6).subarray(14, 14 + 48);

  void test("packet too big carries the MTU and a quote that leads back to the flow", () => {
    const r = decode(emit({ type: "packet-too-big", mtu: 1280, quoted: quote }));
    assert.ok(r.ok && r.value.type === "packet-too-big");
    assert.equal(r.value.mtu, 1280);
    const q = parseIcmpQuote(r.value.quoted);
    assert.ok(q.ok);
    assert.deepEqual(
      [q.value.version, q.value.protocol, q.value.srcPort, q.value.dstPort],
      [6, "tcp", 48380, 47123],
    );
  });

  void test("an IPv6 quote with extension headers: the walk finds TCP behind them", () => {
    const pkt = hex(LINUX_SAMPLES.syn6).slice(14);
    // Insert an 8-byte destination-options header between the fixed header and TCP.
    const q = new Uint8Array(48 + 8);
    q.set(pkt.subarray(0, 40));
    q[6] = 60;
    q.set(hex("0600010400000000"), 40);
    q.set(pkt.subarray(40, 48), 48);
    const r = parseIcmpQuote(q);
    assert.ok(r.ok);
    assert.deepEqual([r.value.protocol, r.value.srcPort, r.value.dstPort], ["tcp", 48380, 47123]);
    assert.deepEqual(parseIcmpQuote(q.subarray(0, 45)), {
      ok: false,
      error: { code: "truncated", offset: 45 },
    });
    assert.deepEqual(parseIcmpQuote(q.subarray(0, 39)), {
      ok: false,
      error: { code: "truncated", offset: 39 },
    });
  });

  void test("a router advertisement with MTU and prefix options", () => {
    const ra: Icmpv6Repr = {
      type: "router-advertisement",
      curHopLimit: 64,
      managed: false,
      otherConfig: true,
      routerLifetime: 1800,
      reachableTime: 0,
      retransTimer: 0,
      sourceLinkAddr: mac("02:00:00:00:00:01"),
      mtu: 1500,
      prefixes: [
        {
          prefixLen: 64,
          onLink: true,
          autonomous: true,
          validLifetime: 86400,
          preferredLifetime: 14400,
          prefix: ip("2001:db8::"),
        },
      ],
      otherOptions: [],
    };
    const pseudo = { src: ip("fe80::1"), dst: ip("ff02::1") };
    const bytes = emit(ra, pseudo);
    assert.equal(bytes.length, 16 + 8 + 8 + 32);
    assert.deepEqual(decode(bytes, pseudo), { ok: true, value: ra });
  });

  void test("NDP errors: nonzero code, short message, zero-length and overlong options", () => {
    const { msg } = sample(LINUX_SAMPLES.neighborSolicitation);
    const cases: [Uint8Array, string, number][] = [
      [Object.assign(msg.slice(), { 1: 1 }), "bad-code", 1],
      [msg.subarray(0, 23), "truncated", 23],
      [Object.assign(msg.slice(), { 25: 0 }), "bad-option-len", 25],
      [Object.assign(msg.slice(), { 25: 2 }), "bad-option-len", 25],
      [hex("85000000 00000000 01"), "bad-option-len", 9],
      [hex("8600000040000000"), "truncated", 8],
      [hex("86000000400000000000000000000000 0502000000000578 0000000000000000"), "bad-option-len", 17],
    ];
    for (const [bytes, code, offset] of cases)
      assert.deepEqual(decode(bytes), { ok: false, error: { code, offset } });
  });

  void test("options a message does not use are kept raw: a target address in a solicitation", () => {
    const { msg } = sample(LINUX_SAMPLES.neighborSolicitation);
    const withTarget = new Uint8Array(msg.length + 8);
    withTarget.set(msg);
    withTarget.set(hex("0201020000000002"), msg.length);
    const r = decode(withTarget);
    assert.ok(r.ok && r.value.type === "neighbor-solicitation");
    assert.equal(macToString(r.value.sourceLinkAddr ?? new Uint8Array(0)), "42:18:7a:9c:47:2a");
    assert.deepEqual(
      r.value.otherOptions.map((o) => [o.type, toHex(o.data)]),
      [[2, "020000000002"]],
    );
  });

  const bytesArb = fc.uint8Array({ maxLength: 40 });
  const macArb = fc.option(fc.uint8Array({ minLength: 6, maxLength: 6 }), { nil: undefined });
  const addrArb = fc.uint8Array({ minLength: 16, maxLength: 16 });
  const rawArb: fc.Arbitrary<NdpRawOption[]> = fc.array(
    fc.record(
      {
        type: fc.integer({ min: 4, max: 255 }).filter((t) => t !== 5),
        data: fc
          .integer({ min: 0, max: 2 })
          .chain((n) => fc.uint8Array({ minLength: 6 + 8 * n, maxLength: 6 + 8 * n })),
      },
      { noNullPrototype: true },
    ),
    { maxLength: 2 },
  );
  const r = <T>(m: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record<T>(m, { noNullPrototype: true });
  const reprArb: fc.Arbitrary<Icmpv6Repr> = fc.oneof(
    r({
      type: fc.constantFrom("echo-request" as const, "echo-reply" as const),
      ident: fc.integer({ min: 0, max: 0xffff }),
      seqNo: fc.integer({ min: 0, max: 0xffff }),
      data: bytesArb,
    }),
    r({
      type: fc.constant("dst-unreachable" as const),
      code: fc.constantFrom("no-route" as const, "port-unreachable" as const, "reject-route" as const, 9),
      quoted: bytesArb,
    }),
    r({ type: fc.constant("packet-too-big" as const), mtu: fc.nat({ max: 0xffffffff }), quoted: bytesArb }),
    r({
      type: fc.constant("time-exceeded" as const),
      code: fc.constantFrom("hop-limit-exceeded" as const, "reassembly-exceeded" as const, 5),
      quoted: bytesArb,
    }),
    r({
      type: fc.constant("parameter-problem" as const),
      code: fc.nat(255),
      pointer: fc.nat({ max: 0xffffffff }),
      quoted: bytesArb,
    }),
    r({ type: fc.constant("router-solicitation" as const), sourceLinkAddr: macArb, otherOptions: rawArb }),
    r({
      type: fc.constant("router-advertisement" as const),
      curHopLimit: fc.nat(255),
      managed: fc.boolean(),
      otherConfig: fc.boolean(),
      routerLifetime: fc.nat(0xffff),
      reachableTime: fc.nat({ max: 0xffffffff }),
      retransTimer: fc.nat({ max: 0xffffffff }),
      sourceLinkAddr: macArb,
      mtu: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
      prefixes: fc.array(
        r({
          prefixLen: fc.nat(128),
          onLink: fc.boolean(),
          autonomous: fc.boolean(),
          validLifetime: fc.nat({ max: 0xffffffff }),
          preferredLifetime: fc.nat({ max: 0xffffffff }),
          prefix: addrArb,
        }),
        { maxLength: 2 },
      ),
      otherOptions: rawArb,
    }),
    r({
      type: fc.constant("neighbor-solicitation" as const),
      target: addrArb,
      sourceLinkAddr: macArb,
      otherOptions: rawArb,
    }),
    r({
      type: fc.constant("neighbor-advertisement" as const),
      router: fc.boolean(),
      solicited: fc.boolean(),
      override: fc.boolean(),
      target: addrArb,
      targetLinkAddr: macArb,
      otherOptions: rawArb,
    }),
    r({
      type: fc.constant("other" as const),
      rawType: fc.nat(255).filter((t) => ![1, 2, 3, 4, 128, 129, 133, 134, 135, 136].includes(t)),
      code: fc.nat(255),
      word: fc.nat({ max: 0xffffffff }),
      body: bytesArb,
    }),
  );

  void test("property: emit then parse gives back the record, the checksum verifying", () => {
    const pseudo = { src: ip("2001:db8::1"), dst: ip("2001:db8::2") };
    fc.assert(
      fc.property(reprArb, (repr) => {
        assert.deepEqual(decode(emit(repr, pseudo), pseudo), { ok: true, value: repr });
      }),
    );
  });

  void test("property: the decoder is total (random bytes, and NDP types with random bodies)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.constantFrom(133, 134, 135, 136, 2, 1), (bytes, t) => {
        decode(bytes);
        if (bytes.length > 1) {
          bytes[0] = t;
          bytes[1] = 0;
          decode(bytes);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
