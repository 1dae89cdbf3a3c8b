import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Instant } from "../time/instant.js";
import {
  emitPcapRecord,
  PCAP_FILE_HEADER_LEN,
  PCAP_RECORD_HEADER_LEN,
  type PcapErrorCode,
  PcapLinkType,
  PcapWriter,
  parsePcap,
} from "./pcap.js";

const seedEnv = process.env["FC_SEED"];
const FC_SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x5eed);

/** Builds a file header by hand, independently of the writer. */
function fileHeader(
  magic: number,
  le: boolean,
  opts: { major?: number; snaplen?: number; link?: number } = {},
) {
  const out = new Uint8Array(24);
  const v = new DataView(out.buffer);
  v.setUint32(0, magic, le);
  v.setUint16(4, opts.major ?? 2, le);
  v.setUint16(6, 4, le);
  v.setUint32(16, opts.snaplen ?? 65535, le);
  v.setUint32(20, opts.link ?? 1, le);
  return out;
}
function recordHeader(le: boolean, sec: number, frac: number, incl: number, orig: number): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setUint32(0, sec, le);
  v.setUint32(4, frac, le);
  v.setUint32(8, incl, le);
  v.setUint32(12, orig, le);
  return out;
}
const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
function expectError(bytes: Uint8Array, code: PcapErrorCode, offset: number): void {
  const r = parsePcap(bytes);
  assert.deepEqual(r, { ok: false, error: { code, offset } });
}

void describe("PcapWriter", () => {
  void test("writes the classic little-endian microsecond header", () => {
    const bytes = new PcapWriter({ linkType: PcapLinkType.ETHERNET }).toBytes();
    assert.deepEqual(
      [...bytes],
      // magic d4c3b2a1, v2.4, zone 0, sigfigs 0, snaplen 262144, linktype 1
      [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0],
    );
    const be = new PcapWriter({ linkType: PcapLinkType.RAW, byteOrder: "big", snaplen: 65535 }).toBytes();
    assert.deepEqual([...be.subarray(0, 8)], [0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4]);
    assert.deepEqual([...be.subarray(16)], [0, 0, 0xff, 0xff, 0, 0, 0, 101]);
  });

  void test("a record splits virtual microseconds into seconds and microseconds", () => {
    const rec = emitPcapRecord(Instant.fromMicros(1_234_567_890), Uint8Array.of(9, 8, 7), 262144, true);
    assert.deepEqual([...rec], [...recordHeader(true, 1234, 567_890, 3, 3), 9, 8, 7]);
    assert.throws(() => emitPcapRecord(Instant.fromMicros(2 ** 32 * 1e6), Uint8Array.of(1), 100, true), {
      code: "ERR_USAGE",
    });
  });

  void test("write then read gives back every record (both byte orders)", () => {
    for (const byteOrder of ["little", "big"] as const) {
      const w = new PcapWriter({ linkType: PcapLinkType.RAW, byteOrder });
      const frames = [Uint8Array.of(0x45, 1, 2), new Uint8Array(1500).fill(0xab), new Uint8Array(0)];
      const times = [0, 999_999, 1_000_000];
      frames.forEach((f, i) => {
        w.append(Instant.fromMicros(times[i]!), f);
      });
      assert.equal(w.recordCount, 3);
      const bytes = w.toBytes();
      assert.equal(w.byteLength, bytes.length);
      const r = parsePcap(bytes);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.value.header.byteOrder, byteOrder);
      assert.equal(r.value.header.precision, "us");
      assert.equal(r.value.header.linkType, 101);
      assert.equal(r.value.header.snaplen, 262144);
      assert.deepEqual(
        r.value.records.map((x) => [x.time, x.origLen, [...x.data]]),
        frames.map((f, i) => [times[i], f.length, [...f]]),
      );
      assert.equal(r.value.records[1]?.tsSec, 0);
      assert.equal(r.value.records[1]?.tsFrac, 999_999);
    }
  });

  void test("the writer copies the frame and truncates to snaplen", () => {
    const w = new PcapWriter({ linkType: PcapLinkType.ETHERNET, snaplen: 64 });
    const f = new Uint8Array(100).map((_, i) => i);
    w.append(Instant.ZERO, f);
    f.fill(0); // the caller reuses its buffer
    const r = parsePcap(w.toBytes());
    assert.ok(r.ok);
    const rec = r.value.records[0]!;
    assert.equal(rec.origLen, 100);
    assert.equal(rec.data.length, 64);
    assert.deepEqual([...rec.data], [...Array(64).keys()]);
  });

  void test("taking chunks streams the same bytes as one toBytes", () => {
    const make = () => new PcapWriter({ linkType: PcapLinkType.RAW });
    const a = make();
    const b = make();
    const taken: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      a.append(Instant.fromMicros(i * 10), Uint8Array.of(i, i));
      b.append(Instant.fromMicros(i * 10), Uint8Array.of(i, i));
      if (i % 2 === 0) taken.push(...b.takeChunks());
    }
    taken.push(...b.takeChunks());
    assert.deepEqual(cat(...taken), a.toBytes());
    assert.equal(b.toBytes().length, 0);
    assert.equal(b.byteLength, a.byteLength);
  });

  void test("refuses an unknown link type or a bad snaplen", () => {
    assert.throws(() => new PcapWriter({ linkType: 113 as 1 }), { code: "ERR_USAGE" });
    assert.throws(() => new PcapWriter({ linkType: 1, snaplen: 0 }), { code: "ERR_USAGE" });
  });

  void test("round trip holds for any records", () => {
    const recArb = fc.record(
      { time: fc.nat({ max: 4_000_000_000 * 1e6 }), data: fc.uint8Array({ maxLength: 300 }) },
      { noNullPrototype: true },
    );
    fc.assert(
      fc.property(
        fc.array(recArb, { maxLength: 20 }),
        fc.constantFrom("little" as const, "big" as const),
        fc.integer({ min: 1, max: 400 }),
        (recs, byteOrder, snaplen) => {
          const w = new PcapWriter({ linkType: PcapLinkType.ETHERNET, byteOrder, snaplen });
          for (const r of recs) w.append(Instant.fromMicros(r.time), r.data);
          const back = parsePcap(w.toBytes());
          assert.ok(back.ok);
          assert.deepEqual(
            back.value.records.map((r) => ({ time: r.time, origLen: r.origLen, data: [...r.data] })),
            recs.map((r) => ({
              time: r.time,
              origLen: r.data.length,
              data: [...r.data.subarray(0, snaplen)],
            })),
          );
        },
      ),
      { seed: FC_SEED, numRuns: 300 },
    );
  });
});

void describe("parsePcap", () => {
  void test("reads nanosecond files in both byte orders, truncating to microseconds", () => {
    for (const le of [true, false]) {
      const bytes = cat(
        fileHeader(0xa1b23c4d, le),
        recordHeader(le, 7, 123_456_789, 2, 2),
        Uint8Array.of(1, 2),
      );
      const r = parsePcap(bytes);
      assert.ok(r.ok);
      assert.equal(r.value.header.precision, "ns");
      assert.equal(r.value.records[0]?.time, 7_123_456);
      assert.equal(r.value.records[0]?.tsFrac, 123_456_789);
    }
  });

  void test("accepts link types 1, 101, 228, 229 and refuses others", () => {
    for (const link of [1, 101, 228, 229]) assert.ok(parsePcap(fileHeader(0xa1b2c3d4, true, { link })).ok);
    // The FCS bits above the low 16 do not change the link type.
    const withFcs = parsePcap(fileHeader(0xa1b2c3d4, true, { link: 0x1400_0001 }));
    assert.ok(withFcs.ok && withFcs.value.header.linkType === 1);
    expectError(fileHeader(0xa1b2c3d4, true, { link: 113 }), "unsupported-link-type", 20);
  });

  void test("every kind of damage has its own code and offset", () => {
    const hdr = fileHeader(0xa1b2c3d4, true);
    const good = cat(hdr, recordHeader(true, 1, 2, 4, 4), Uint8Array.of(1, 2, 3, 4));
    assert.ok(parsePcap(good).ok);
    expectError(new Uint8Array(0), "truncated-file-header", 0);
    expectError(hdr.subarray(0, 23), "truncated-file-header", 23);
    expectError(cat(Uint8Array.of(0xde, 0xad, 0xbe, 0xef), hdr.subarray(4)), "bad-magic", 0);
    expectError(fileHeader(0xa1b2c3d4, true, { major: 3 }), "bad-version", 4);
    expectError(good.subarray(0, 24 + 10), "truncated-record-header", 24);
    expectError(good.subarray(0, good.length - 1), "truncated-record", 40);
    expectError(cat(hdr, recordHeader(true, 1, 2, 5, 4), new Uint8Array(5)), "bad-record-length", 32);
    expectError(cat(hdr, recordHeader(true, 1, 2, 300_000, 300_000)), "bad-record-length", 32);
    expectError(cat(hdr, recordHeader(true, 1, 1_000_000, 0, 0)), "bad-timestamp", 28);
    const second = cat(good, recordHeader(true, 1, 2, 4, 4), Uint8Array.of(1));
    expectError(second, "truncated-record", good.length + 16);
  });

  void test("a header-only file has no records; record data are views with offsets", () => {
    const w = new PcapWriter({ linkType: PcapLinkType.RAW });
    const empty = parsePcap(w.toBytes());
    assert.ok(empty.ok && empty.value.records.length === 0);
    w.append(Instant.ZERO, Uint8Array.of(1));
    w.append(Instant.ZERO, Uint8Array.of(2));
    const bytes = w.toBytes();
    const r = parsePcap(bytes);
    assert.ok(r.ok);
    assert.deepEqual(
      r.value.records.map((x) => x.offset),
      [PCAP_FILE_HEADER_LEN, PCAP_FILE_HEADER_LEN + PCAP_RECORD_HEADER_LEN + 1],
    );
    assert.equal(r.value.records[0]!.data.buffer, bytes.buffer, "a view, not a copy");
  });

  void test("is total: any bytes give a value or an error, never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const r = parsePcap(bytes);
        if (!r.ok) assert.ok(r.error.offset >= 0 && r.error.offset <= bytes.length);
      }),
      { seed: FC_SEED, numRuns: 1000 },
    );
  });

  void test("is total on damaged real files: truncation errors unless cut at a record boundary", () => {
    const w = new PcapWriter({ linkType: PcapLinkType.ETHERNET });
    for (let i = 0; i < 6; i++) w.append(Instant.fromMicros(i * 1000), new Uint8Array(10 + i * 7).fill(i));
    const bytes = w.toBytes();
    const full = parsePcap(bytes);
    assert.ok(full.ok);
    const boundaries = new Set([...full.value.records.map((r) => r.offset), bytes.length]);
    fc.assert(
      fc.property(
        fc.nat({ max: bytes.length }),
        fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.nat({ max: 255 })), { maxLength: 4 }),
        (cut, flips) => {
          const r = parsePcap(bytes.subarray(0, cut));
          if (cut >= PCAP_FILE_HEADER_LEN) assert.equal(r.ok, boundaries.has(cut), `cut at ${cut}`);
          else assert.equal(r.ok, false);
          const damaged = bytes.slice();
          for (const [at, x] of flips) damaged[at] = x;
          parsePcap(damaged); // must return, whatever it says
        },
      ),
      { seed: FC_SEED, numRuns: 500 },
    );
  });
});
