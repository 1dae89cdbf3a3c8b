import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Seq } from "./seq.js";
import { UsageError } from "../util/errors.js";
import { hex, toHex } from "./hex.js";
import { ip } from "./ip-addr.js";
import { LINUX_SAMPLES } from "./samples.js";
import {
  emitTcp,
  parseTcp,
  TCP_HEADER_LEN,
  TcpView,
  tcpBufferLen,
  tcpChecksumOk,
  tcpOptionsLen,
} from "./tcp.js";
import { TcpFlag, type TcpRepr } from "./tcp-repr.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 300 });

const A4 = { src: ip("192.0.2.1"), dst: ip("192.0.2.2") };
const A6 = { src: ip("2001:db8::1"), dst: ip("2001:db8::2") };

/** The TCP segment of a sample frame (after Ethernet and IP headers). */
const segment = (frame: string, ipHeaderLen: number) => hex(frame).subarray(14 + ipHeaderLen);

function decode(bytes: Uint8Array, pseudo?: { src: Uint8Array; dst: Uint8Array }) {
  const v = TcpView.checked(bytes);
  if (!v.ok) return v;
  return parseTcp(v.value, pseudo);
}

/** A segment template; tests override what they are about. */
const BASE: TcpRepr = {
  srcPort: 49152,
  dstPort: 80,
  seq: Seq.of(100),
  ack: Seq.of(0),
  flags: TcpFlag.SYN,
  window: 65535,
  urgent: 0,
  mss: undefined,
  windowScale: undefined,
  sackPermitted: false,
  sack: [],
  timestamps: undefined,
  unknownOptions: [],
  payload: new Uint8Array(0),
};

void describe("Linux captures", () => {
  void test("the IPv4 SYN decodes to every option and verifies", () => {
    const seg = segment(LINUX_SAMPLES.syn4, 20);
    const r = decode(seg, A4);
    assert.ok(r.ok);
    assert.deepEqual(r.value, {
      ...BASE,
      srcPort: 46172,
      dstPort: 47123,
      seq: Seq.of(0x53b06fe2),
      ack: Seq.of(0),
      flags: TcpFlag.SYN,
      window: 64240,
      mss: 1460,
      windowScale: 10,
      sackPermitted: true,
      timestamps: { tsVal: 0xa11ed4a1, tsEcr: 0 },
      payload: new Uint8Array(0),
    });
  });

  void test("re-emitting each captured segment gives the captured bytes, checksum included", () => {
    const cases: [string, number, { src: Uint8Array; dst: Uint8Array }][] = [
      [LINUX_SAMPLES.syn4, 20, A4],
      [LINUX_SAMPLES.synAck4, 20, { src: A4.dst, dst: A4.src }],
      [LINUX_SAMPLES.data4, 20, A4],
      [LINUX_SAMPLES.syn6, 40, A6],
      [LINUX_SAMPLES.data6, 40, A6],
    ];
    for (const [frame, ipLen, pseudo] of cases) {
      const seg = segment(frame, ipLen);
      const r = decode(seg, pseudo);
      assert.ok(r.ok, frame);
      const out = new Uint8Array(tcpBufferLen(r.value));
      emitTcp(r.value, out, pseudo);
      assert.equal(toHex(out), toHex(seg));
    }
  });

  void test("the data segment's payload is a view into the packet, not a copy", () => {
    const seg = segment(LINUX_SAMPLES.data4, 20);
    const r = decode(seg);
    assert.ok(r.ok);
    assert.equal(new TextDecoder().decode(r.value.payload), "hello");
    assert.equal(r.value.payload.buffer, seg.buffer);
    assert.equal(r.value.payload.byteOffset, seg.byteOffset + 32);
  });
});

void describe("decode errors", () => {
  const syn = () => segment(LINUX_SAMPLES.syn4, 20).slice();
  const cases: [string, (b: Uint8Array) => Uint8Array, string, number][] = [
    ["shorter than 20 bytes", (b) => b.subarray(0, 19), "truncated", 19],
    ["data offset below 5", (b) => ((b[12] = 0x40), b), "bad-header-len", 12],
    ["header longer than the bytes", (b) => b.subarray(0, 39), "truncated", 39],
    ["MSS with length 3", (b) => ((b[21] = 3), b), "bad-option-len", 21],
    ["option length 1", (b) => ((b[21] = 1), b), "bad-option-len", 21],
    ["option running past the header", (b) => ((b[38] = 9), b), "bad-option-len", 38],
    [
      "unknown option ending one byte past the header",
      (b) => ((b[37] = 30), (b[38] = 4), b),
      "bad-option-len",
      38,
    ],
    ["timestamps with length 8", (b) => ((b[27] = 8), b), "bad-option-len", 27],
    ["window scale with length 2", (b) => ((b[38] = 2), b), "bad-option-len", 38],
    ["SACK-permitted with length 3", (b) => ((b[25] = 3), b), "bad-option-len", 25],
    [
      "a kind as the last header byte",
      (b) => ((b[36] = 1), (b[37] = 1), (b[38] = 1), (b[39] = 30), b),
      "bad-option-len",
      40,
    ],
  ];
  for (const [what, mutate, code, offset] of cases) {
    void test(`${what}: ${code} at ${offset}`, () => {
      assert.deepEqual(decode(mutate(syn())), { ok: false, error: { code, offset } });
    });
  }

  void test("SACK with a partial block: bad-option-len at its length byte", () => {
    const opts = hex("0101050c 0000000100000002 00000000");
    const b = new Uint8Array(20 + opts.length);
    b.set(opts, 20);
    b[12] = ((20 + opts.length) / 4) << 4;
    assert.deepEqual(decode(b), { ok: false, error: { code: "bad-option-len", offset: 23 } });
  });

  void test("a flipped bit fails the checksum: bad-checksum at 16", () => {
    const b = syn();
    b[30] = (b[30] ?? 0) ^ 0x10;
    assert.deepEqual(decode(b, A4), { ok: false, error: { code: "bad-checksum", offset: 16 } });
    assert.ok(decode(b).ok, "without a pseudo-header the checksum is not checked");
  });
});

void describe("options", () => {
  function withOptions(optHex: string, payload = ""): Uint8Array {
    const opts = hex(optHex);
    const p = hex(payload);
    const b = new Uint8Array(20 + opts.length + p.length);
    b[12] = ((20 + opts.length) / 4) << 4;
    b.set(opts, 20);
    b.set(p, 20 + opts.length);
    return b;
  }

  void test("EOL ends the list: what follows is padding, not options", () => {
    const r = decode(withOptions("02040218 00 ff ff ff"));
    assert.ok(r.ok);
    assert.equal(r.value.mss, 536);
    assert.deepEqual(r.value.unknownOptions, []);
  });

  void test("unknown kinds survive verbatim and re-emit after the known ones", () => {
    const r = decode(withOptions("1e06 aabbccdd 0101 0402 0101"));
    assert.ok(r.ok);
    assert.equal(r.value.sackPermitted, true);
    assert.deepEqual(
      r.value.unknownOptions.map((o) => ({ kind: o.kind, data: toHex(o.data) })),
      [{ kind: 30, data: "aabbccdd" }],
    );
    const out = new Uint8Array(tcpBufferLen(r.value));
    emitTcp(r.value, out);
    assert.equal(toHex(out.subarray(20)), "01010402" + "0101" + "1e06aabbccdd");
  });

  void test("SACK blocks decode in order and emit as NOP, NOP, SACK after NOP, NOP, TS", () => {
    const r = decode(withOptions("0101080a0000000100000002 01010512 0000006400000c8000000d0000001000"));
    assert.ok(r.ok);
    assert.deepEqual(r.value.sack, [
      { left: Seq.of(100), right: Seq.of(3200) },
      { left: Seq.of(3328), right: Seq.of(4096) },
    ]);
    const out = new Uint8Array(tcpBufferLen(r.value));
    emitTcp(r.value, out);
    assert.equal(toHex(out.subarray(20)), "0101080a0000000100000002010105120000006400000c8000000d0000001000");
  });

  void test("a repeated option overrides the earlier one", () => {
    const r = decode(withOptions("02040218 020405b4"));
    assert.ok(r.ok);
    assert.equal(r.value.mss, 1460);
  });

  void test("canonical layouts: Linux SYN, SYN without timestamps, timestamps without SACK-permitted", () => {
    const layout = (repr: Partial<TcpRepr>) => {
      const r = { ...BASE, ...repr };
      const out = new Uint8Array(tcpBufferLen(r));
      emitTcp(r, out);
      return toHex(out.subarray(TCP_HEADER_LEN));
    };
    const ts = { tsVal: 1, tsEcr: 0 };
    assert.equal(
      layout({ mss: 1460, sackPermitted: true, timestamps: ts, windowScale: 7 }),
      "020405b4" + "0402080a0000000100000000" + "01030307",
    );
    assert.equal(
      layout({ mss: 1460, sackPermitted: true, windowScale: 7 }),
      "020405b4" + "01010402" + "01030307",
    );
    assert.equal(layout({ mss: 1460, timestamps: ts }), "020405b4" + "0101080a0000000100000000");
    assert.equal(layout({}), "");
  });

  void test("more than 40 bytes of options, or 5 SACK blocks, is a usage error", () => {
    const blk = { left: Seq.of(1), right: Seq.of(2) };
    const tooMany = { ...BASE, timestamps: { tsVal: 1, tsEcr: 2 }, sack: [blk, blk, blk, blk] };
    assert.throws(() => tcpOptionsLen(tooMany), UsageError);
    assert.throws(() => tcpOptionsLen({ ...BASE, sack: [blk, blk, blk, blk, blk] }), UsageError);
    assert.equal(tcpOptionsLen({ ...BASE, timestamps: { tsVal: 1, tsEcr: 2 }, sack: [blk, blk, blk] }), 40);
  });

  void test("options that do not fit aligned go packed, EOL-padded, and parse back the same", () => {
    // A SYN-ACK with a 31-byte Fast Open cookie: aligned it needs 44 bytes, packed 39 + 1 EOL.
    const cookie = Uint8Array.from({ length: 31 }, (_, i) => i + 1);
    const r: TcpRepr = {
      ...BASE,
      flags: TcpFlag.SYN | TcpFlag.ACK,
      mss: 1460,
      sackPermitted: true,
      unknownOptions: [{ kind: 34, data: cookie }],
    };
    assert.equal(tcpOptionsLen(r), 40);
    const out = new Uint8Array(tcpBufferLen(r));
    emitTcp(r, out, A4);
    assert.equal(
      toHex(out.subarray(TCP_HEADER_LEN)),
      `020405b4 0402 2221${toHex(cookie)} 00`.replace(/ /g, ""),
    );
    const back = decode(out, A4);
    assert.ok(back.ok);
    assert.equal(back.value.mss, 1460);
    assert.equal(back.value.sackPermitted, true);
    assert.deepEqual(
      back.value.unknownOptions.map((o) => [o.kind, toHex(o.data)]),
      [[34, toHex(cookie)]],
    );
    // Every kind packed: window scale and timestamps lose their NOPs too.
    const all: TcpRepr = {
      ...r,
      windowScale: 7,
      timestamps: { tsVal: 5, tsEcr: 6 },
      unknownOptions: [{ kind: 34, data: cookie.subarray(0, 16) }],
    };
    assert.equal(tcpOptionsLen(all), 40); // aligned: 4 + 12 + 4 + 20 = 40 still fits
    // No unknown option at all: MSS, timestamps and 3 SACK blocks need 44 aligned, 40 packed.
    const blk = { left: Seq.of(1), right: Seq.of(2) };
    const sacks: TcpRepr = {
      ...BASE,
      flags: TcpFlag.ACK,
      mss: 1460,
      timestamps: { tsVal: 1, tsEcr: 2 },
      sack: [blk, blk, blk],
    };
    assert.equal(tcpOptionsLen(sacks), 40);
    const sacksOut = new Uint8Array(tcpBufferLen(sacks));
    emitTcp(sacks, sacksOut, A4);
    const sacksBack = decode(sacksOut, A4);
    assert.ok(sacksBack.ok);
    assert.deepEqual([sacksBack.value.mss, sacksBack.value.sack.length], [1460, 3]);
    const big: TcpRepr = { ...all, unknownOptions: [{ kind: 34, data: cookie.subarray(0, 17) }] };
    assert.equal(tcpOptionsLen(big), 40); // aligned 44; packed 4 + 2 + 10 + 3 + 19 = 38, + 2 EOL
    const bigOut = new Uint8Array(tcpBufferLen(big));
    emitTcp(big, bigOut, A4);
    const parsed = decode(bigOut, A4);
    assert.ok(parsed.ok);
    assert.deepEqual(
      [
        parsed.value.windowScale,
        parsed.value.timestamps,
        toHex(parsed.value.unknownOptions[0]?.data ?? new Uint8Array()),
      ],
      [7, { tsVal: 5, tsEcr: 6 }, toHex(cookie.subarray(0, 17))],
    );
  });

  void test("emit asserts the buffer length and the field ranges", () => {
    assert.throws(() => emitTcp(BASE, new Uint8Array(21)), UsageError);
    assert.throws(() => emitTcp({ ...BASE, srcPort: 65536 }, new Uint8Array(20)), UsageError);
    assert.throws(
      () => emitTcp({ ...BASE, unknownOptions: [{ kind: 2, data: new Uint8Array(2) }] }, new Uint8Array(24)),
      UsageError,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const u32 = fc.nat({ max: 0xffffffff });
const seqArb = u32.map(Seq.of);
const sackArb = fc.array(fc.record({ left: seqArb, right: seqArb }, { noNullPrototype: true }), {
  maxLength: 4,
});
const unknownArb = fc.array(
  fc.record(
    {
      kind: fc.integer({ min: 6, max: 255 }).filter((k) => k !== 8),
      data: fc.uint8Array({ maxLength: 6 }),
    },
    { noNullPrototype: true },
  ),
  { maxLength: 2 },
);

/** Any segment whose options fit in 40 bytes. */
const tcpReprArb: fc.Arbitrary<TcpRepr> = fc
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
      windowScale: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
      sackPermitted: fc.boolean(),
      sack: sackArb,
      timestamps: fc.option(fc.record({ tsVal: u32, tsEcr: u32 }, { noNullPrototype: true }), {
        nil: undefined,
      }),
      unknownOptions: unknownArb,
      payload: fc.uint8Array({ maxLength: 64 }),
    },
    { noNullPrototype: true },
  )
  .filter((r) => {
    try {
      tcpOptionsLen(r);
      return true;
    } catch {
      return false;
    }
  });

void describe("properties", () => {
  void test("emit then parse gives back the record, with the checksum verifying (IPv4 and IPv6)", () => {
    fc.assert(
      fc.property(tcpReprArb, fc.boolean(), (repr, v6) => {
        const pseudo = v6 ? A6 : A4;
        const out = new Uint8Array(tcpBufferLen(repr));
        emitTcp(repr, out, pseudo);
        assert.ok(tcpChecksumOk(out, pseudo));
        assert.deepEqual(decode(out, pseudo), { ok: true, value: repr });
      }),
    );
  });

  void test("the decoder is total: arbitrary bytes give a value or a DecodeError, never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const r = decode(bytes, A4);
        if (!r.ok) assert.ok(r.error.offset >= 0 && r.error.offset <= bytes.length);
      }),
      { numRuns: 2000 },
    );
  });

  void test("the decoder is total on mutated real segments (options are where it gets interesting)", () => {
    const seg = segment(LINUX_SAMPLES.syn4, 20);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: seg.length - 1 }), fc.nat({ max: 255 })), { maxLength: 4 }),
        (edits) => {
          const b = seg.slice();
          for (const [i, v] of edits) b[i] = v;
          const r = decode(b);
          if (r.ok) {
            // Whatever decodes must re-emit (when its options fit) and decode the same again.
            let len: number;
            try {
              len = tcpBufferLen(r.value);
            } catch {
              return;
            }
            const out = new Uint8Array(len);
            emitTcp(r.value, out);
            assert.deepEqual(decode(out), { ok: true, value: r.value });
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
