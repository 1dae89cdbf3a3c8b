import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Seq } from "./seq.js";
import { hex, toHex } from "./hex.js";
import { parseIcmpQuote } from "./icmp-quote.js";
import { emitIcmpv4, Icmpv4View, type Icmpv4Repr, icmpv4BufferLen, parseIcmpv4 } from "./icmpv4.js";
import { ip } from "./ip-addr.js";
import { LINUX_SAMPLES } from "./samples.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 300 });

function decode(bytes: Uint8Array, verify = true) {
  const v = Icmpv4View.checked(bytes);
  return v.ok ? parseIcmpv4(v.value, verify) : v;
}

function emit(repr: Icmpv4Repr): Uint8Array {
  const out = new Uint8Array(icmpv4BufferLen(repr));
  emitIcmpv4(repr, out);
  return out;
}

/** The IPv4 header and first 8 TCP bytes of the captured SYN, as a router would quote them. */
const QUOTE = hex(LINUX_SAMPLES.syn4).subarray(14, 14 + 28);

void describe("ICMPv4", () => {
  void test("an echo request with a hand-computed checksum (0x3337)", () => {
    const bytes = hex("0800 3337 0001 0001 61626364");
    assert.deepEqual(decode(bytes), {
      ok: true,
      value: { type: "echo-request", ident: 1, seqNo: 1, data: hex("61626364") },
    });
    assert.equal(
      toHex(emit({ type: "echo-request", ident: 1, seqNo: 1, data: hex("61626364") })),
      toHex(bytes),
    );
  });

  void test("fragmentation needed carries the next-hop MTU (RFC 1191) and the quoted flow", () => {
    const bytes = emit({ type: "dst-unreachable", code: "frag-needed", nextHopMtu: 1400, quoted: QUOTE });
    assert.equal(toHex(bytes.subarray(0, 8)).replace(/^(....)..../, "$1xxxx"), "0304xxxx00000578");
    const r = decode(bytes);
    assert.ok(r.ok && r.value.type === "dst-unreachable");
    assert.equal(r.value.nextHopMtu, 1400);
    const q = parseIcmpQuote(r.value.quoted);
    assert.ok(q.ok);
    assert.deepEqual(
      { ...q.value, transport: toHex(q.value.transport) },
      {
        version: 4,
        src: ip("192.0.2.1"),
        dst: ip("192.0.2.2"),
        protocol: "tcp",
        transport: "b45cb81353b06fe2",
        srcPort: 46172,
        dstPort: 47123,
        tcpSeq: Seq.of(0x53b06fe2),
      },
    );
  });

  void test("other unreachable codes have no MTU; time exceeded has names for codes 0 and 1", () => {
    const port = decode(
      emit({ type: "dst-unreachable", code: "port-unreachable", nextHopMtu: undefined, quoted: QUOTE }),
    );
    assert.ok(port.ok && port.value.type === "dst-unreachable");
    assert.equal(port.value.nextHopMtu, undefined);
    const te = decode(emit({ type: "time-exceeded", code: "reassembly-exceeded", quoted: QUOTE }));
    assert.ok(te.ok && te.value.type === "time-exceeded");
    assert.equal(te.value.code, "reassembly-exceeded");
  });

  void test("errors: truncated header, bad checksum", () => {
    assert.deepEqual(decode(hex("08000000 0001")), { ok: false, error: { code: "truncated", offset: 6 } });
    assert.deepEqual(decode(hex("0800 3338 0001 0001 61626364")), {
      ok: false,
      error: { code: "bad-checksum", offset: 2 },
    });
    assert.ok(decode(hex("0800 3338 0001 0001 61626364"), false).ok);
  });

  void test("quotes: truncated, bad version, bad header length", () => {
    assert.deepEqual(parseIcmpQuote(QUOTE.subarray(0, 10)), {
      ok: false,
      error: { code: "truncated", offset: 10 },
    });
    assert.deepEqual(parseIcmpQuote(hex("50")), { ok: false, error: { code: "bad-version", offset: 0 } });
    assert.deepEqual(parseIcmpQuote(Object.assign(QUOTE.slice(), { 0: 0x44 })), {
      ok: false,
      error: { code: "bad-header-len", offset: 0 },
    });
    const short = parseIcmpQuote(QUOTE.subarray(0, 23));
    assert.ok(short.ok);
    assert.deepEqual(
      [short.value.srcPort, short.value.dstPort, short.value.tcpSeq],
      [46172, undefined, undefined],
    );
  });

  const bytesArb = fc.uint8Array({ maxLength: 40 });
  const reprArb: fc.Arbitrary<Icmpv4Repr> = fc.oneof(
    fc.record(
      {
        type: fc.constantFrom("echo-request" as const, "echo-reply" as const),
        ident: fc.integer({ min: 0, max: 0xffff }),
        seqNo: fc.integer({ min: 0, max: 0xffff }),
        data: bytesArb,
      },
      { noNullPrototype: true },
    ),
    fc.record(
      {
        type: fc.constant("dst-unreachable" as const),
        code: fc.constantFrom(
          "net-unreachable" as const,
          "host-unreachable" as const,
          "port-unreachable" as const,
          "admin-prohibited" as const,
          9,
        ),
        nextHopMtu: fc.constant(undefined),
        quoted: bytesArb,
      },
      { noNullPrototype: true },
    ),
    fc.record(
      {
        type: fc.constant("dst-unreachable" as const),
        code: fc.constant("frag-needed" as const),
        nextHopMtu: fc.integer({ min: 0, max: 0xffff }),
        quoted: bytesArb,
      },
      { noNullPrototype: true },
    ),
    fc.record(
      {
        type: fc.constant("time-exceeded" as const),
        code: fc.constantFrom("ttl-exceeded" as const, "reassembly-exceeded" as const, 7),
        quoted: bytesArb,
      },
      { noNullPrototype: true },
    ),
    fc.record(
      {
        type: fc.constant("other" as const),
        rawType: fc.integer({ min: 0, max: 255 }).filter((t) => ![0, 3, 8, 11].includes(t)),
        code: fc.integer({ min: 0, max: 255 }),
        rest: fc.nat({ max: 0xffffffff }),
        data: bytesArb,
      },
      { noNullPrototype: true },
    ),
  );

  void test("property: emit then parse gives back the record", () => {
    fc.assert(
      fc.property(reprArb, (repr) => {
        assert.deepEqual(decode(emit(repr)), { ok: true, value: repr });
      }),
    );
  });

  void test("property: the decoder and the quote parser are total", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        decode(bytes);
        parseIcmpQuote(bytes);
        if (bytes.length > 0) {
          bytes[0] = 0x60 | (bytes[0]! & 0x0f);
          parseIcmpQuote(bytes);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
