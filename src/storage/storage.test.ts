// Storage: the reassembler against a bitmap reference model (fast-check, fixed seed), the
// send queue's slicing, and the receive buffer's zero-copy reads.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Reassembler } from "./reassembler.js";
import { RecvBuffer } from "./recv-buffer.js";
import { SendQueue } from "./send-queue.js";

const SEED = Number(process.env["FC_SEED"] ?? 0x5eed);

/** Byte i of the stream: any deterministic pattern works. */
const val = (i: number): number => (i * 7 + 3) & 0xff;
const slab = (start: number, len: number): Uint8Array =>
  Uint8Array.from({ length: len }, (_, k) => val(start + k));

void describe("Reassembler", () => {
  void test("matches a bitmap model: ranges, bytes and data (fast-check)", () => {
    const SPACE = 200;
    const op = fc.record(
      { start: fc.integer({ min: 0, max: SPACE - 1 }), len: fc.integer({ min: 0, max: 40 }) },
      { noNullPrototype: true },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), (ops, maxRanges) => {
        const r = new Reassembler(1 << 20, maxRanges);
        const have = new Array<boolean>(SPACE + 64).fill(false);
        for (const { start, len } of ops) {
          const before = have.slice();
          const res = r.insert(start, slab(start, len));
          for (let i = start; i < start + len; i++) have[i] = true;
          // Model range count after insertion; a refused insertion leaves the model unchanged.
          let ranges = 0;
          for (let i = 0; i < have.length; i++) if (have[i] && (i === 0 || !have[i - 1])) ranges++;
          if (ranges > maxRanges) {
            assert.equal(res, "full");
            for (let i = 0; i < have.length; i++) have[i] = before[i] as boolean;
          } else {
            assert.notEqual(res, "full");
          }
          r.checkInvariants();
          const want: [number, number][] = [];
          for (let i = 0; i < have.length; i++) {
            if (have[i] && (i === 0 || !have[i - 1])) want.push([i, i]);
            if (have[i]) (want[want.length - 1] as [number, number])[1] = i + 1;
          }
          assert.deepEqual(r.ranges(), want);
          assert.equal(r.bytes, have.filter(Boolean).length);
        }
        // Drain from 0 while contiguous: the data must be the stream's bytes.
        let at = 0;
        for (let c = r.pop(at); c !== undefined; c = r.pop(at)) {
          for (let k = 0; k < c.length; k++) assert.equal(c[k], val(at + k));
          at += c.length;
        }
        let expectAt = 0;
        while (have[expectAt]) expectAt++;
        assert.equal(at, expectAt);
        r.checkInvariants();
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
  void test("refuses insertions beyond the byte bound", () => {
    const r = new Reassembler(10, 8);
    assert.equal(r.insert(5, new Uint8Array(8)), "stored");
    assert.equal(r.insert(20, new Uint8Array(3)), "full");
    assert.equal(r.insert(5, new Uint8Array(8)), "duplicate");
    assert.equal(r.bytes, 8);
  });
  void test("pop trims data already consumed in order", () => {
    const r = new Reassembler(100, 8);
    r.insert(10, slab(10, 10));
    assert.equal(r.pop(0), undefined);
    assert.deepEqual(r.pop(15), slab(15, 5));
    assert.equal(r.isEmpty, true);
  });
});

void describe("SendQueue", () => {
  void test("slice returns views within a chunk and one copy across chunks", () => {
    const q = new SendQueue();
    const a = slab(0, 10);
    const b = slab(10, 10);
    q.push(a);
    q.push(b);
    const v = q.slice(2, 5);
    assert.equal(v.buffer, a.buffer);
    assert.deepEqual(q.slice(8, 6), slab(8, 6));
    q.drop(9);
    assert.deepEqual(q.slice(0, 3), slab(9, 3));
    assert.equal(q.length, 11);
    assert.deepEqual(q.chunks(), [slab(9, 1), b]);
  });
  void test("random pushes, drops and slices agree with a flat model (fast-check)", () => {
    const cmd = fc.oneof(
      fc.record(
        { k: fc.constant("push" as const), n: fc.integer({ min: 0, max: 30 }) },
        { noNullPrototype: true },
      ),
      fc.record(
        { k: fc.constant("drop" as const), n: fc.integer({ min: 0, max: 40 }) },
        { noNullPrototype: true },
      ),
      fc.record(
        {
          k: fc.constant("slice" as const),
          n: fc.integer({ min: 0, max: 60 }),
          off: fc.integer({ min: 0, max: 60 }),
        },
        { noNullPrototype: true },
      ),
    );
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 60 }), (cmds) => {
        const q = new SendQueue();
        let head = 0;
        let tail = 0;
        for (const c of cmds) {
          if (c.k === "push") {
            q.push(slab(tail, c.n));
            tail += c.n;
          } else if (c.k === "drop") {
            const n = Math.min(c.n, tail - head);
            q.drop(n);
            head += n;
          } else {
            const off = Math.min(c.off, tail - head);
            const n = Math.min(c.n, tail - head - off);
            assert.deepEqual(q.slice(off, n), slab(head + off, n));
          }
          assert.equal(q.length, tail - head);
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

void describe("RecvBuffer", () => {
  void test("read returns views of the pushed chunks; readInto copies across them", () => {
    const b = new RecvBuffer();
    const a = slab(0, 5);
    b.push(a);
    b.push(slab(5, 5));
    const first = b.read(3);
    assert.equal(first?.buffer, a.buffer);
    assert.deepEqual(first, slab(0, 3));
    const dst = new Uint8Array(10);
    assert.equal(b.readInto(dst), 7);
    assert.deepEqual(dst.subarray(0, 7), slab(3, 7));
    assert.equal(b.read(), undefined);
    assert.equal(b.length, 0);
  });
});
