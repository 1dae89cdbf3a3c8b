import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { UsageError } from "../util/errors.js";
import { hex, toHex } from "./hex.js";
import { ip } from "./ip-addr.js";
import {
  emitIpv6,
  IPV6_MAX_EXT_HEADERS,
  Ipv6View,
  type Ipv6ExtHeader,
  type Ipv6Repr,
  ipv6BufferLen,
  ipv6FragmentHeader,
  parseIpv6,
} from "./ipv6.js";
import { LINUX_SAMPLES } from "./samples.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 300 });

function decode(bytes: Uint8Array) {
  const v = Ipv6View.checked(bytes);
  return v.ok ? parseIpv6(v.value) : v;
}

const SYN_IP: Ipv6Repr = {
  src: ip("2001:db8::1"),
  dst: ip("2001:db8::2"),
  dscp: 0,
  ecn: 0,
  flowLabel: 0xbcc0b,
  hopLimit: 64,
  extHeaders: [],
  protocol: "tcp",
  payloadLen: 40,
  fragment: undefined,
  isFragment: false,
};

/** A generic extension header (hop-by-hop, routing, destination options) of 8 * (n + 1) bytes. */
function ext(type: "hop-by-hop" | "ipv6-route" | "ipv6-opts", n = 0, fill = 0): Ipv6ExtHeader {
  const bytes = new Uint8Array(8 * (n + 1)).fill(fill);
  bytes[0] = 0;
  bytes[1] = n;
  return { type, bytes };
}

/** Emits `repr` with a zero-filled upper layer. */
function emit(repr: Ipv6Repr): Uint8Array {
  const out = new Uint8Array(ipv6BufferLen(repr));
  emitIpv6(repr, out);
  return out;
}

void describe("IPv6", () => {
  void test("the captured SYN's header decodes and re-emits byte for byte", () => {
    const pkt = hex(LINUX_SAMPLES.syn6).subarray(14);
    assert.deepEqual(decode(pkt), { ok: true, value: SYN_IP });
    const out = emit(SYN_IP);
    out.set(pkt.subarray(40), 40);
    assert.equal(toHex(out), toHex(pkt));
  });

  void test("the chain is walked: hop-by-hop, destination options, routing, AH, then TCP", () => {
    const ah: Ipv6ExtHeader = { type: "ah", bytes: Object.assign(new Uint8Array(16), { 1: 2 }) };
    const repr: Ipv6Repr = {
      ...SYN_IP,
      extHeaders: [ext("hop-by-hop"), ext("ipv6-opts", 1, 7), ext("ipv6-route"), ah],
      payloadLen: 20,
    };
    const out = emit(repr);
    assert.equal(out[6], 0, "first next-header is hop-by-hop");
    const r = decode(out);
    assert.ok(r.ok);
    assert.equal(r.value.protocol, "tcp");
    assert.equal(r.value.payloadLen, 20);
    assert.deepEqual(
      r.value.extHeaders.map((h) => [h.type, h.bytes.length, h.bytes[0]]),
      [
        ["hop-by-hop", 8, 60],
        ["ipv6-opts", 16, 43],
        ["ipv6-route", 8, 51],
        ["ah", 16, 6],
      ],
    );
  });

  void test("fragments: a first fragment walks on to the upper layer, a later one stops", () => {
    const first = decode(
      emit({ ...SYN_IP, extHeaders: [ipv6FragmentHeader({ offset: 0, moreFragments: true, ident: 7 })] }),
    );
    assert.ok(first.ok);
    assert.deepEqual(
      [first.value.isFragment, first.value.fragment, first.value.protocol],
      [true, { offset: 0, moreFragments: true, ident: 7 }, "tcp"],
    );
    const later = decode(
      emit({
        ...SYN_IP,
        protocol: "ipv6-opts", // what the fragment header names; the header itself is in fragment 1
        extHeaders: [ipv6FragmentHeader({ offset: 1232, moreFragments: false, ident: 0xdeadbeef })],
      }),
    );
    assert.ok(later.ok);
    assert.equal(later.value.protocol, "ipv6-opts");
    assert.equal(later.value.payloadLen, 40);
    assert.deepEqual(later.value.fragment, { offset: 1232, moreFragments: false, ident: 0xdeadbeef });
  });

  void test("errors with their codes and offsets", () => {
    const pkt = () => hex(LINUX_SAMPLES.syn6).slice(14);
    const hbh = emit({ ...SYN_IP, extHeaders: [ext("hop-by-hop")], payloadLen: 0 });
    const cases: [Uint8Array, string, number][] = [
      [pkt().subarray(0, 39), "truncated", 39],
      [Object.assign(pkt(), { 0: 0x40 }), "bad-version", 0],
      [Object.assign(pkt(), { 5: 41 }), "truncated", 80],
      // Hop-by-hop whose length byte claims 16 bytes in an 8-byte payload.
      [Object.assign(hbh.slice(), { 41: 1 }), "bad-ext-header-len", 41],
      // Hop-by-hop pointing at another hop-by-hop.
      [
        emit({ ...SYN_IP, extHeaders: [ext("hop-by-hop"), ext("hop-by-hop")], payloadLen: 0 }),
        "misplaced-hop-by-hop",
        40,
      ],
      // A chain that ends (payload length) before the next header's length byte.
      [
        Object.assign(emit({ ...SYN_IP, extHeaders: [ext("ipv6-opts")], payloadLen: 0 }), { 40: 60 }),
        "truncated",
        48,
      ],
    ];
    for (const [bytes, code, offset] of cases)
      assert.deepEqual(decode(bytes), { ok: false, error: { code, offset } });
  });

  void test("a chain longer than the bound is refused, however well-formed", () => {
    const headers = Array.from({ length: IPV6_MAX_EXT_HEADERS + 1 }, () => ext("ipv6-opts"));
    const r = decode(emit({ ...SYN_IP, extHeaders: headers, payloadLen: 0 }));
    assert.deepEqual(r, {
      ok: false,
      error: { code: "too-many-ext-headers", offset: 40 + 8 * (IPV6_MAX_EXT_HEADERS - 1) },
    });
  });

  void test("emit rejects an extension header whose length byte disagrees with its bytes", () => {
    const bad: Ipv6ExtHeader = { type: "ipv6-opts", bytes: new Uint8Array(16) };
    assert.throws(() => emit({ ...SYN_IP, extHeaders: [bad] }), UsageError);
  });

  const extArb: fc.Arbitrary<Ipv6ExtHeader> = fc.oneof(
    fc
      .tuple(
        fc.constantFrom("ipv6-route" as const, "ipv6-opts" as const),
        fc.integer({ min: 0, max: 2 }),
        fc.nat(255),
      )
      .map(([t, n, f]) => ext(t, n, f)),
    fc
      .integer({ min: 0, max: 3 })
      .map(
        (n): Ipv6ExtHeader => ({ type: "ah", bytes: Object.assign(new Uint8Array(4 * (n + 2)), { 1: n }) }),
      ),
  );
  const reprArb: fc.Arbitrary<Ipv6Repr> = fc
    .record(
      {
        src: fc.uint8Array({ minLength: 16, maxLength: 16 }),
        dst: fc.uint8Array({ minLength: 16, maxLength: 16 }),
        dscp: fc.integer({ min: 0, max: 63 }),
        ecn: fc.integer({ min: 0, max: 3 }),
        flowLabel: fc.integer({ min: 0, max: 0xfffff }),
        hopLimit: fc.integer({ min: 0, max: 255 }),
        hbh: fc.boolean(),
        middle: fc.array(extArb, { maxLength: 4 }),
        frag: fc.option(
          fc.record(
            {
              offset: fc.integer({ min: 0, max: 0x1fff }).map((n) => n * 8),
              moreFragments: fc.boolean(),
              ident: fc.nat(),
            },
            { noNullPrototype: true },
          ),
          { nil: undefined },
        ),
        protocol: fc.constantFrom("tcp" as const, "icmpv6" as const, "udp" as const, 253),
        payloadLen: fc.integer({ min: 0, max: 64 }),
      },
      { noNullPrototype: true },
    )
    .map(({ hbh, middle, frag, ...rest }) => {
      const extHeaders = [...(hbh ? [ext("hop-by-hop")] : []), ...middle];
      if (frag !== undefined) extHeaders.push(ipv6FragmentHeader(frag));
      return { ...rest, extHeaders, fragment: frag, isFragment: frag !== undefined };
    });

  void test("property: emit then parse gives back the record", () => {
    fc.assert(
      fc.property(reprArb, (repr) => {
        const out = emit(repr);
        const r = decode(out);
        assert.ok(r.ok);
        assert.deepEqual(
          { ...r.value, extHeaders: r.value.extHeaders.map((h) => [h.type, toHex(h.bytes.subarray(1))]) },
          { ...repr, extHeaders: repr.extHeaders.map((h) => [h.type, toHex(h.bytes.subarray(1))]) },
        );
      }),
    );
  });

  void test("property: the decoder is total", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 40, maxLength: 140 }), fc.nat(100), (bytes, pl) => {
        bytes[0] = 0x60;
        bytes[4] = 0;
        bytes[5] = pl;
        decode(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
