import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Instant } from "../time/instant.js";
import {
  type CaptureItem,
  type CapturePacket,
  CaptureReader,
  PcapngBlock,
  tsresolUnitsPerSecond,
} from "./capture-reader.js";
import { PcapLinkType, PcapWriter } from "./pcap.js";

/** A pcapng block: type, total length, body padded to 4, total length again. */
function block(type: number, body: Uint8Array, le: boolean): Uint8Array {
  const padded = body.length + ((4 - (body.length % 4)) % 4);
  const out = new Uint8Array(12 + padded);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, le);
  v.setUint32(4, out.length, le);
  out.set(body, 8);
  v.setUint32(8 + padded, out.length, le);
  return out;
}

function bytesOf(
  le: boolean,
  fields: [number, 1 | 2 | 4][],
  tail: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const n = fields.reduce((s, [, w]) => s + w, 0);
  const out = new Uint8Array(n + tail.length);
  const v = new DataView(out.buffer);
  let off = 0;
  for (const [x, w] of fields) {
    if (w === 1) v.setUint8(off, x);
    else if (w === 2) v.setUint16(off, x, le);
    else v.setUint32(off, x, le);
    off += w;
  }
  out.set(tail, n);
  return out;
}

const shb = (le: boolean) =>
  block(
    PcapngBlock.SHB,
    bytesOf(le, [
      [0x1a2b3c4d, 4],
      [1, 2],
      [0, 2],
      [0xffffffff, 4],
      [0xffffffff, 4],
    ]),
    le,
  );
/** An IDB; `tsresol` adds an if_tsresol option. */
const idb = (le: boolean, linkType: number, tsresol?: number) =>
  block(
    PcapngBlock.IDB,
    bytesOf(
      le,
      [
        [linkType, 2],
        [0, 2],
        [262144, 4],
      ],
      tsresol === undefined
        ? new Uint8Array(0)
        : bytesOf(le, [
            [9, 2],
            [1, 2],
            [tsresol, 1],
            [0, 1],
            [0, 1],
            [0, 1],
            [0, 2],
            [0, 2],
          ]),
    ),
    le,
  );
const epb = (le: boolean, ifId: number, units: bigint, data: Uint8Array) =>
  block(
    PcapngBlock.EPB,
    bytesOf(
      le,
      [
        [ifId, 4],
        [Number(units >> 32n), 4],
        [Number(units & 0xffffffffn), 4],
        [data.length, 4],
        [data.length, 4],
      ],
      data,
    ),
    le,
  );
const spb = (le: boolean, data: Uint8Array) =>
  block(PcapngBlock.SPB, bytesOf(le, [[data.length, 4]], data), le);

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Feeds `bytes` in pieces of `step` bytes and collects everything. */
function readAll(bytes: Uint8Array, step = bytes.length): CaptureItem[] {
  const r = new CaptureReader();
  const out: CaptureItem[] = [];
  for (let i = 0; i < bytes.length; i += step) out.push(...r.push(bytes.slice(i, i + step)));
  out.push(...r.end());
  return out;
}

const packets = (items: CaptureItem[]): CapturePacket[] =>
  items.flatMap((i) => (i.kind === "packet" ? [i.packet] : []));
const problems = (items: CaptureItem[]) => items.flatMap((i) => (i.kind === "problem" ? [i.problem] : []));

const ETH = Uint8Array.of(2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x06);
const RAW = Uint8Array.of(0x45, 0, 0, 20);

void describe("CaptureReader", () => {
  for (const le of [true, false]) {
    void test(`pcapng (${le ? "little" : "big"}-endian): two interfaces with their own link type and if_tsresol, SPB, any chunking`, () => {
      const file = cat(
        shb(le),
        idb(le, PcapLinkType.ETHERNET), // microseconds (default)
        idb(le, PcapLinkType.RAW, 9), // nanoseconds
        epb(le, 0, 1_700_000_000_123_456n, ETH),
        epb(le, 1, 1_700_000_000_123_456_789n, RAW),
        block(5, new Uint8Array(8), le), // an interface statistics block: skipped
        spb(le, ETH),
      );
      for (const step of [file.length, 7, 1]) {
        const items = readAll(file, step);
        assert.deepEqual(problems(items), [], `step ${step}`);
        const ps = packets(items);
        assert.deepEqual(
          ps.map((p) => [p.number, p.interfaceId, p.linkType, p.time, p.data.length]),
          [
            [1, 0, PcapLinkType.ETHERNET, 1_700_000_000_123_456, ETH.length],
            [2, 1, PcapLinkType.RAW, 1_700_000_000_123_456, RAW.length],
            [3, 0, PcapLinkType.ETHERNET, undefined, ETH.length],
          ],
          `step ${step}`,
        );
        assert.deepEqual([...(ps[1]?.data ?? [])], [...RAW]);
      }
    });
  }
  void test("if_tsresol: 10^-n and 2^-n units", () => {
    assert.equal(tsresolUnitsPerSecond(6), 1_000_000n);
    assert.equal(tsresolUnitsPerSecond(9), 1_000_000_000n);
    assert.equal(tsresolUnitsPerSecond(0x80 | 10), 1024n);
  });
  void test("a bad block with a sound length is skipped with one problem; the rest is read", () => {
    const before = cat(shb(true), idb(true, 1), epb(true, 0, 1n, ETH));
    const file = cat(before, epb(true, 5, 2n, ETH), epb(true, 0, 3n, ETH));
    const items = readAll(file);
    assert.deepEqual(
      problems(items).map((p) => [p.code, p.offset, p.fatal]),
      [["unknown-interface", before.length + 8, false]],
    );
    assert.deepEqual(
      packets(items).map((p) => p.time),
      [1, 3],
    );
  });
  void test("a broken block length stops the reading there (fatal), after the packets before it", () => {
    const bad = epb(true, 0, 2n, ETH);
    new DataView(bad.buffer).setUint32(4, 13, true);
    const items = readAll(cat(shb(true), idb(true, 1), epb(true, 0, 1n, ETH), bad, epb(true, 0, 3n, ETH)));
    assert.deepEqual(
      problems(items).map((p) => [p.code, p.fatal]),
      [["bad-block-length", true]],
    );
    assert.equal(packets(items).length, 1);
  });
  void test("classic pcap: truncated inside a record reads up to the cut; a bad timestamp is read with a problem", () => {
    const w = new PcapWriter({ linkType: PcapLinkType.ETHERNET });
    for (let i = 0; i < 3; i++) w.append(Instant.fromMicros(i), ETH);
    const whole = w.toBytes();
    const cut = readAll(whole.slice(0, whole.length - 5), 10);
    assert.equal(packets(cut).length, 2);
    assert.deepEqual(
      problems(cut).map((p) => [p.code, p.offset]),
      [["truncated", 24 + 2 * (16 + ETH.length)]],
    );
    const badTs = whole.slice();
    new DataView(badTs.buffer).setUint32(24 + 4, 2_000_000, true);
    const items = readAll(badTs, 3);
    assert.equal(packets(items).length, 3);
    assert.deepEqual(
      problems(items).map((p) => [p.code, p.fatal]),
      [["bad-timestamp", false]],
    );
  });
  void test("no magic number at the start is one fatal not-a-capture, whatever follows", () => {
    const items = readAll(new Uint8Array(1 << 16));
    assert.deepEqual(
      problems(items).map((p) => [p.code, p.fatal]),
      [["not-a-capture", true]],
    );
    assert.equal(packets(items).length, 0);
  });
});
