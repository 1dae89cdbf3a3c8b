import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  EthernetView,
  type EthernetRepr,
  emitEthernet,
  ethernetBufferLen,
  etherTypeFromNumber,
  etherTypeToNumber,
  ipv6MulticastMac,
  isBroadcastMac,
  isMulticastMac,
  MAC_BROADCAST,
  mac,
  macToString,
  parseEthernet,
  parseMac,
} from "./ethernet.js";
import { hex, toHex } from "./hex.js";
import { ip } from "./ip-addr.js";
import { LINUX_SAMPLES } from "./samples.js";
import { UsageError } from "../util/errors.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 300 });

function decode(bytes: Uint8Array) {
  const v = EthernetView.checked(bytes);
  return v.ok ? parseEthernet(v.value) : v;
}

void describe("MAC addresses", () => {
  void test("print and parse", () => {
    assert.equal(macToString(hex("42187a9c472a")), "42:18:7a:9c:47:2a");
    const r = parseMac("42-18-7A-9C-47-2A");
    assert.ok(r.ok);
    assert.equal(toHex(r.value), "42187a9c472a");
    for (const bad of [
      "",
      "42:18:7a:9c:47",
      "42:18:7a:9c:47:2a:00",
      "42:18:7a:9c:47:zz",
      "4:18:7a:9c:47:2a",
    ]) {
      assert.equal(parseMac(bad).ok, false, bad);
    }
    assert.throws(() => mac("nope"), UsageError);
  });

  void test("group bits and the IPv6 multicast mapping (RFC 2464 section 7)", () => {
    assert.ok(isBroadcastMac(MAC_BROADCAST) && isMulticastMac(MAC_BROADCAST));
    assert.ok(!isMulticastMac(mac("42:18:7a:9c:47:2a")));
    assert.equal(macToString(ipv6MulticastMac(ip("ff02::1:ff00:2"))), "33:33:ff:00:00:02");
  });

  void test("EtherType open enum: known names, unknown numbers survive", () => {
    assert.equal(etherTypeFromNumber(0x0800), "ipv4");
    assert.equal(etherTypeFromNumber(0x86dd), "ipv6");
    assert.equal(etherTypeFromNumber(0x88cc), 0x88cc);
    assert.equal(etherTypeToNumber("arp"), 0x0806);
    assert.equal(etherTypeToNumber(0x88cc), 0x88cc);
  });
});

void describe("frames", () => {
  void test("the captured ARP request: broadcast destination, ARP EtherType, no tag", () => {
    const r = decode(hex(LINUX_SAMPLES.arpRequest));
    assert.ok(r.ok);
    assert.equal(macToString(r.value.dst), "ff:ff:ff:ff:ff:ff");
    assert.equal(macToString(r.value.src), "42:18:7a:9c:47:2a");
    assert.equal(r.value.etherType, "arp");
    assert.equal(r.value.vlan, undefined);
  });

  void test("an 802.1Q tag is recognised: VLAN id, priority, DEI, inner EtherType, payload start", () => {
    const f = hex("ffffffffffff 020000000001 8100 b07b 86dd 6000");
    const v = EthernetView.checked(f);
    assert.ok(v.ok);
    assert.equal(v.value.headerLen, 18);
    assert.equal(toHex(v.value.payload), "6000");
    assert.deepEqual(parseEthernet(v.value), {
      ok: true,
      value: {
        dst: f.subarray(0, 6),
        src: f.subarray(6, 12),
        etherType: "ipv6",
        vlan: { id: 0x07b, priority: 5, dropEligible: true },
      },
    });
  });

  void test("truncation: 13 bytes, and a tag without its inner EtherType", () => {
    assert.deepEqual(decode(new Uint8Array(13)), { ok: false, error: { code: "truncated", offset: 13 } });
    assert.deepEqual(decode(hex("ffffffffffff0200000000018100b07b")), {
      ok: false,
      error: { code: "truncated", offset: 16 },
    });
  });

  void test("emit asserts the exact header length", () => {
    const repr: EthernetRepr = { dst: MAC_BROADCAST, src: MAC_BROADCAST, etherType: "ipv4", vlan: undefined };
    assert.throws(() => emitEthernet(repr, new Uint8Array(15)), UsageError);
  });

  const macArb = fc.uint8Array({ minLength: 6, maxLength: 6 });
  const reprArb: fc.Arbitrary<EthernetRepr> = fc.record(
    {
      dst: macArb,
      src: macArb,
      etherType: fc.oneof(
        fc.constantFrom("ipv4" as const, "arp" as const, "ipv6" as const),
        fc.integer({ min: 0, max: 0xffff }).filter((n) => ![0x0800, 0x0806, 0x86dd, 0x8100].includes(n)),
      ),
      vlan: fc.option(
        fc.record(
          {
            id: fc.integer({ min: 0, max: 4095 }),
            priority: fc.integer({ min: 0, max: 7 }),
            dropEligible: fc.boolean(),
          },
          { noNullPrototype: true },
        ),
        { nil: undefined },
      ),
    },
    { noNullPrototype: true },
  );

  void test("property: emit then parse gives back the record", () => {
    fc.assert(
      fc.property(reprArb, (repr) => {
        const out = new Uint8Array(ethernetBufferLen(repr));
        emitEthernet(repr, out);
        assert.deepEqual(decode(out), { ok: true, value: repr });
      }),
    );
  });

  void test("property: the decoder is total", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
        decode(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});
