import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ArpView, type ArpRepr, arpBufferLen, emitArp, parseArp } from "./arp.js";
import { hex, toHex } from "./hex.js";
import { ip } from "./ip-addr.js";
import { LINUX_SAMPLES } from "./samples.js";
import { MAC_ZERO, mac } from "./ethernet.js";
import { UsageError } from "../util/errors.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 300 });

function decode(bytes: Uint8Array) {
  const v = ArpView.checked(bytes);
  return v.ok ? parseArp(v.value) : v;
}

const REQUEST: ArpRepr = {
  operation: "request",
  senderHardwareAddr: mac("42:18:7a:9c:47:2a"),
  senderProtocolAddr: ip("192.0.2.1"),
  targetHardwareAddr: MAC_ZERO,
  targetProtocolAddr: ip("192.0.2.2"),
};

void describe("ARP", () => {
  void test("the captured request and reply decode, and re-emit byte for byte", () => {
    const req = hex(LINUX_SAMPLES.arpRequest).subarray(14);
    assert.deepEqual(decode(req), { ok: true, value: REQUEST });
    const rep = hex(LINUX_SAMPLES.arpReply).subarray(14);
    const r = decode(rep);
    assert.ok(r.ok);
    assert.deepEqual(r.value, {
      operation: "reply",
      senderHardwareAddr: mac("b6:51:ee:05:e3:27"),
      senderProtocolAddr: ip("192.0.2.2"),
      targetHardwareAddr: mac("42:18:7a:9c:47:2a"),
      targetProtocolAddr: ip("192.0.2.1"),
    });
    for (const [repr, bytes] of [
      [REQUEST, req],
      [r.value, rep],
    ] as const) {
      const out = new Uint8Array(arpBufferLen(repr));
      emitArp(repr, out);
      assert.equal(toHex(out), toHex(bytes));
    }
  });

  void test("Ethernet padding after the 28 bytes is ignored", () => {
    const padded = new Uint8Array(46);
    padded.set(hex(LINUX_SAMPLES.arpRequest).subarray(14));
    assert.deepEqual(decode(padded), { ok: true, value: REQUEST });
  });

  void test("errors: truncated, other hardware, other protocol, odd address lengths", () => {
    const req = () => hex(LINUX_SAMPLES.arpRequest).slice(14);
    const cases: [Uint8Array, string, number][] = [
      [req().subarray(0, 7), "truncated", 7],
      [req().subarray(0, 27), "truncated", 27],
      [Object.assign(req(), { 1: 6 }), "unsupported-hardware", 0],
      [Object.assign(req(), { 2: 0x86 }), "unsupported-protocol", 2],
      [Object.assign(req(), { 5: 3 }), "bad-address-len", 5],
    ];
    for (const [bytes, code, offset] of cases)
      assert.deepEqual(decode(bytes), { ok: false, error: { code, offset } });
  });

  void test("emit rejects non-IPv4 addresses", () => {
    assert.throws(
      () => emitArp({ ...REQUEST, targetProtocolAddr: ip("2001:db8::1") }, new Uint8Array(40)),
      UsageError,
    );
  });

  const reprArb: fc.Arbitrary<ArpRepr> = fc.record(
    {
      operation: fc.oneof(
        fc.constantFrom("request" as const, "reply" as const),
        fc.integer({ min: 3, max: 0xffff }),
        fc.constant(0),
      ),
      senderHardwareAddr: fc.uint8Array({ minLength: 6, maxLength: 6 }),
      senderProtocolAddr: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      targetHardwareAddr: fc.uint8Array({ minLength: 6, maxLength: 6 }),
      targetProtocolAddr: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    },
    { noNullPrototype: true },
  );

  void test("property: emit then parse gives back the record", () => {
    fc.assert(
      fc.property(reprArb, (repr) => {
        const out = new Uint8Array(arpBufferLen(repr));
        emitArp(repr, out);
        assert.deepEqual(decode(out), { ok: true, value: repr });
      }),
    );
  });

  void test("property: the decoder is total", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        decode(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});
