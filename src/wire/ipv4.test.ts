import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { UsageError } from "../util/errors.js";
import { hex, toHex } from "./hex.js";
import { ip } from "./ip-addr.js";
import { emitIpv4, Ipv4View, type Ipv4Repr, ipv4BufferLen, parseIpv4 } from "./ipv4.js";
import { LINUX_SAMPLES } from "./samples.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 300 });

function decode(bytes: Uint8Array, verify = true) {
  const v = Ipv4View.checked(bytes);
  return v.ok ? parseIpv4(v.value, verify) : v;
}

const SYN_IP: Ipv4Repr = {
  src: ip("192.0.2.1"),
  dst: ip("192.0.2.2"),
  protocol: "tcp",
  ttl: 64,
  dscp: 0,
  ecn: 0,
  ident: 0x72c7,
  dontFragment: true,
  moreFragments: false,
  fragmentOffset: 0,
  isFragment: false,
  options: new Uint8Array(0),
  payloadLen: 40,
};

void describe("IPv4", () => {
  void test("the captured SYN's header decodes, verifies (0x43f1) and re-emits byte for byte", () => {
    const pkt = hex(LINUX_SAMPLES.syn4).subarray(14);
    assert.deepEqual(decode(pkt), { ok: true, value: SYN_IP });
    const out = new Uint8Array(ipv4BufferLen(SYN_IP));
    emitIpv4(SYN_IP, out);
    out.set(pkt.subarray(20), 20);
    assert.equal(toHex(out), toHex(pkt));
  });

  void test("trailing Ethernet padding is trimmed from the payload", () => {
    const cut = hex(LINUX_SAMPLES.syn4).subarray(14, 14 + 50); // total length 60, 50 bytes present
    const short = hex(LINUX_SAMPLES.syn4).subarray(14);
    const padded = new Uint8Array(short.length + 6);
    padded.set(short);
    const v = Ipv4View.checked(padded);
    assert.ok(v.ok);
    assert.equal(v.value.payload.length, 40);
    assert.deepEqual(decode(cut), { ok: false, error: { code: "truncated", offset: 50 } });
  });

  void test("options are kept as a view and counted in the header length", () => {
    const repr: Ipv4Repr = { ...SYN_IP, options: hex("01010100"), payloadLen: 0 };
    const out = new Uint8Array(ipv4BufferLen(repr));
    emitIpv4(repr, out);
    assert.equal(out[0], 0x46);
    const r = decode(out);
    assert.ok(r.ok);
    assert.equal(toHex(r.value.options), "01010100");
  });

  void test("fragments are detected: MF, or a nonzero offset", () => {
    const first: Ipv4Repr = {
      ...SYN_IP,
      dontFragment: false,
      moreFragments: true,
      isFragment: true,
      payloadLen: 8,
    };
    const last: Ipv4Repr = { ...first, moreFragments: false, fragmentOffset: 1480 };
    for (const repr of [first, last]) {
      const out = new Uint8Array(ipv4BufferLen(repr));
      emitIpv4(repr, out);
      const r = decode(out);
      assert.ok(r.ok);
      assert.equal(r.value.isFragment, true);
      assert.equal(r.value.fragmentOffset, repr.fragmentOffset);
    }
  });

  void test("errors with their codes and offsets", () => {
    const pkt = () => hex(LINUX_SAMPLES.syn4).slice(14);
    const cases: [Uint8Array, string, number][] = [
      [pkt().subarray(0, 19), "truncated", 19],
      [Object.assign(pkt(), { 0: 0x65 }), "bad-version", 0],
      [Object.assign(pkt(), { 0: 0x44 }), "bad-header-len", 0],
      [Object.assign(pkt().subarray(0, 40), { 0: 0x4f }), "truncated", 40],
      [Object.assign(pkt(), { 2: 0, 3: 19 }), "bad-total-len", 2],
      [Object.assign(pkt(), { 3: 61 }), "truncated", 60],
      [Object.assign(pkt(), { 8: 63 }), "bad-checksum", 10],
    ];
    for (const [bytes, code, offset] of cases)
      assert.deepEqual(decode(bytes), { ok: false, error: { code, offset } });
    assert.ok(decode(Object.assign(pkt(), { 8: 63 }), false).ok, "verification can be turned off");
  });

  void test("emit checks its inputs", () => {
    assert.throws(() => emitIpv4(SYN_IP, new Uint8Array(59)), UsageError);
    assert.throws(() => emitIpv4({ ...SYN_IP, options: new Uint8Array(3) }, new Uint8Array(63)), UsageError);
    assert.throws(() => emitIpv4({ ...SYN_IP, payloadLen: 65516 }, new Uint8Array(65536)), UsageError);
  });

  const reprArb: fc.Arbitrary<Ipv4Repr> = fc
    .record(
      {
        src: fc.uint8Array({ minLength: 4, maxLength: 4 }),
        dst: fc.uint8Array({ minLength: 4, maxLength: 4 }),
        protocol: fc.oneof(
          fc.constantFrom("tcp" as const, "icmp" as const, "udp" as const),
          fc
            .integer({ min: 0, max: 255 })
            .filter((n) => ![0, 1, 6, 17, 43, 44, 50, 51, 58, 59, 60].includes(n)),
        ),
        ttl: fc.integer({ min: 0, max: 255 }),
        dscp: fc.integer({ min: 0, max: 63 }),
        ecn: fc.integer({ min: 0, max: 3 }),
        ident: fc.integer({ min: 0, max: 0xffff }),
        dontFragment: fc.boolean(),
        moreFragments: fc.boolean(),
        fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((n) => n * 8),
        isFragment: fc.constant(false),
        options: fc
          .integer({ min: 0, max: 10 })
          .chain((n) => fc.uint8Array({ minLength: 4 * n, maxLength: 4 * n })),
        payloadLen: fc.integer({ min: 0, max: 100 }),
      },
      { noNullPrototype: true },
    )
    .map((r) => ({ ...r, isFragment: r.moreFragments || r.fragmentOffset !== 0 }));

  void test("property: emit then parse gives back the record; the checksum verifies", () => {
    fc.assert(
      fc.property(reprArb, (repr) => {
        const out = new Uint8Array(ipv4BufferLen(repr));
        emitIpv4(repr, out);
        assert.deepEqual(decode(out), { ok: true, value: repr });
      }),
    );
  });

  void test("property: the decoder is total", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        decode(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});
