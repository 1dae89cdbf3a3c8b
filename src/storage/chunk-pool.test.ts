// The receive chunk pool and the pooled receive buffer: a model-based test (fast-check, fixed
// seed) against a plain byte queue, plus the pool's ownership rules and the filler's layout.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { UsageError } from "../util/errors.js";
import { ChunkFiller, ChunkPool, SMALL_PIECE_BYTES } from "./chunk-pool.js";
import { RecvBuffer } from "./recv-buffer.js";

const SEED = Number(process.env["FC_SEED"] ?? 0x5eed);

/** Byte i of the stream. */
const val = (i: number): number => (i * 13 + 5) & 0xff;
const slab = (start: number, len: number): Uint8Array =>
  Uint8Array.from({ length: len }, (_, k) => val(start + k));

/** Splits `bytes` into pieces of the given lengths (cycled), as views of separate arrays. */
function pieces(bytes: Uint8Array, lens: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = Math.min(bytes.length - at, Math.max(1, lens[i % lens.length] ?? 1));
    // A piece inside a bigger frame, as a received segment's payload sits in its frame.
    const frame = new Uint8Array(n + 7);
    frame.set(bytes.subarray(at, at + n), 3);
    out.push(frame.subarray(3, 3 + n));
    at += n;
  }
  return out;
}

/** Copies `srcs` into pool chunks through a filler. */
function fill(pool: ChunkPool, srcs: readonly Uint8Array[]): Uint8Array[] {
  const total = srcs.reduce((s, x) => s + x.length, 0);
  const f = new ChunkFiller(pool, total);
  for (const s of srcs) f.writeView(s);
  return f.finish();
}

const concat = (xs: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(xs.reduce((s, x) => s + x.length, 0));
  let at = 0;
  for (const x of xs) {
    out.set(x, at);
    at += x.length;
  }
  return out;
};

void describe("ChunkPool", () => {
  void test("a chunk given back is the next one taken (reuse), and the idle list is capped", () => {
    const pool = new ChunkPool(16, 32); // at most 2 idle chunks
    const a = pool.take();
    const b = pool.take();
    const c = pool.take();
    assert.equal(pool.stats.allocated, 3);
    pool.give(a.subarray(3, 9)); // any view of the chunk gives it back
    assert.equal(pool.take().buffer, a.buffer);
    assert.equal(pool.stats.reused, 1);
    pool.give(a);
    pool.give(b);
    pool.give(c); // beyond the cap: let go
    assert.equal(pool.freeChunks, 2);
    assert.equal(pool.retainedBytes, 32);
    assert.equal(pool.stats.dropped, 1);
  });
  void test("giving a chunk back twice, or one it did not hand out, throws", () => {
    const pool = new ChunkPool(8, 64);
    const a = pool.take();
    pool.give(a);
    assert.throws(() => {
      pool.give(a);
    }, UsageError);
    assert.throws(() => {
      pool.give(new Uint8Array(8));
    }, UsageError);
    const b = pool.take();
    pool.detach(b);
    assert.equal(pool.owns(b), false);
    assert.throws(() => {
      pool.give(b);
    }, UsageError);
  });
  void test("warm fills the idle list up to the cap with written chunks", () => {
    const pool = new ChunkPool(4096, 3 * 4096);
    pool.warm(1 << 20);
    assert.equal(pool.freeChunks, 3);
    const c = pool.take();
    assert.equal(c[0], 1);
    assert.equal(pool.stats.reused, 1);
  });
  void test("small pieces share slabs; larger ones are allocated alone; neither is a pool chunk", () => {
    const pool = new ChunkPool(1 << 16, 1 << 20);
    const a = pool.piece(1000);
    const b = pool.piece(1000);
    assert.equal(a.buffer, b.buffer);
    assert.equal(b.byteOffset, 1008, "16-byte aligned after the first piece");
    a.fill(1);
    assert.ok(
      b.every((x) => x !== 1),
      "pieces do not overlap",
    );
    const big = pool.piece(SMALL_PIECE_BYTES + 1);
    assert.equal(big.buffer.byteLength, SMALL_PIECE_BYTES + 1);
    for (let i = 0; i < 20; i++) pool.piece(SMALL_PIECE_BYTES);
    assert.ok(pool.stats.slabs > 1);
    assert.equal(pool.owns(a) || pool.owns(big), false);
    assert.equal(pool.stats.allocated, 0);
  });
  void test("bad sizes are refused", () => {
    assert.throws(() => new ChunkPool(0, 10), UsageError);
    assert.throws(() => new ChunkPool(8, -1), UsageError);
  });
});

void describe("ChunkFiller", () => {
  void test("any split of the input gives the same bytes; full chunks come from the pool (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 }),
        fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 8 }),
        (total, lens) => {
          const pool = new ChunkPool(32, 1 << 20);
          const bytes = slab(0, total);
          const out = fill(pool, pieces(bytes, lens));
          assert.deepEqual(concat(out), bytes);
          // Every chunk but the last is a whole pool chunk; the last is pooled only when at
          // least half used, else an array of exactly its size.
          out.forEach((x, i) => {
            if (i < out.length - 1) {
              assert.equal(x.length, 32);
              assert.ok(pool.owns(x));
            } else if (x.length * 2 >= 32) {
              assert.ok(pool.owns(x));
            } else {
              assert.equal(pool.owns(x), false);
            }
          });
          assert.equal(pool.stats.allocated, out.filter((x) => pool.owns(x)).length);
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });
  void test("writing more or fewer bytes than announced throws", () => {
    const pool = new ChunkPool(8, 64);
    const f = new ChunkFiller(pool, 4);
    assert.throws(() => {
      f.writeView(new Uint8Array(5));
    }, UsageError);
    f.write(new Uint8Array(10), 2, 5);
    assert.throws(() => f.finish(), UsageError);
  });
});

/** One step against the pooled receive buffer. */
type Op =
  | { readonly k: "push"; readonly n: number; readonly pooled: boolean; readonly split: number }
  | { readonly k: "read"; readonly n: number }
  | { readonly k: "readInto"; readonly n: number }
  | { readonly k: "consume"; readonly n: number }
  | { readonly k: "peek" }
  | { readonly k: "clear" }
  | { readonly k: "reinit" }
  | { readonly k: "compact" }
  | { readonly k: "lend" }
  | { readonly k: "return" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record(
      {
        k: fc.constant("push" as const),
        n: fc.integer({ min: 0, max: 120 }),
        pooled: fc.boolean(),
        split: fc.integer({ min: 1, max: 50 }),
      },
      { noNullPrototype: true },
    ),
    weight: 4,
  },
  {
    arbitrary: fc.record(
      { k: fc.constant("read" as const), n: fc.integer({ min: 0, max: 80 }) },
      { noNullPrototype: true },
    ),
    weight: 2,
  },
  {
    arbitrary: fc.record(
      { k: fc.constant("readInto" as const), n: fc.integer({ min: 0, max: 100 }) },
      { noNullPrototype: true },
    ),
    weight: 3,
  },
  {
    arbitrary: fc.record(
      { k: fc.constant("consume" as const), n: fc.integer({ min: 0, max: 100 }) },
      { noNullPrototype: true },
    ),
    weight: 2,
  },
  { arbitrary: fc.record({ k: fc.constant("peek" as const) }, { noNullPrototype: true }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("clear" as const) }, { noNullPrototype: true }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("reinit" as const) }, { noNullPrototype: true }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("compact" as const) }, { noNullPrototype: true }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant("lend" as const) }, { noNullPrototype: true }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant("return" as const) }, { noNullPrototype: true }), weight: 1 },
);

void describe("RecvBuffer with pooled chunks", () => {
  void test("behaves as a byte queue; chunks are reused, never lost, duplicated or overwritten under a view; the cap holds (fast-check)", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), fc.integer({ min: 0, max: 6 }), (ops, capChunks) => {
        const CHUNK = 32;
        const pool = new ChunkPool(CHUNK, capChunks * CHUNK);
        const buf = new RecvBuffer();
        // Model: the stream offsets [head, tail) are readable; byte i is val(i).
        let head = 0;
        let tail = 0;
        /** Views handed out by `read`, with the stream offset of their first byte. */
        const held: { view: Uint8Array; at: number }[] = [];
        /** Views lent out (as an NBL to the host) with pool holds, until "return". */
        const lent: { view: Uint8Array; at: number; hold: boolean }[][] = [];
        const giveBack = (views: readonly { view: Uint8Array; at: number; hold: boolean }[]) => {
          for (const h of views) {
            // Intact until returned, even if the buffer consumed (and gave back) the chunk.
            assert.deepEqual(h.view, slab(h.at, h.view.length));
            if (h.hold) pool.release(h.view);
          }
        };
        for (const op of ops) {
          switch (op.k) {
            case "push": {
              const bytes = slab(tail, op.n);
              if (op.pooled) {
                for (const x of fill(pool, pieces(bytes, [op.split]))) {
                  if (pool.owns(x)) buf.pushPooled(x, pool);
                  else buf.push(x);
                }
              } else {
                for (const x of pieces(bytes, [op.split])) buf.push(x);
              }
              tail += op.n;
              break;
            }
            case "read": {
              const v = buf.read(op.n);
              if (op.n === 0 || head === tail) {
                assert.equal(v, undefined);
                break;
              }
              assert.ok(v !== undefined && v.length > 0 && v.length <= op.n);
              assert.deepEqual(v, slab(head, v.length));
              assert.equal(pool.owns(v), false, "a view handed to the reader left the pool");
              held.push({ view: v, at: head });
              head += v.length;
              break;
            }
            case "readInto": {
              const dst = new Uint8Array(op.n);
              const n = buf.readInto(dst);
              assert.equal(n, Math.min(op.n, tail - head));
              assert.deepEqual(dst.subarray(0, n), slab(head, n));
              head += n;
              break;
            }
            case "consume": {
              const n = Math.min(op.n, tail - head);
              buf.consume(n);
              head += n;
              break;
            }
            case "peek": {
              const v = buf.peek();
              if (head === tail) assert.equal(v, undefined);
              else assert.deepEqual(v, slab(head, v?.length ?? 0));
              break;
            }
            case "clear":
              buf.clear();
              head = tail;
              break;
            case "reinit": // an engine woken again: a new buffer's state, storage kept
              buf.reinit();
              head = tail;
              break;
            case "compact": {
              const before = buf.uncompacted;
              const n = buf.compact(pool);
              assert.equal(n % CHUNK, 0, "compaction copies whole chunks");
              assert.equal(n, before - (before % CHUNK));
              assert.equal(buf.uncompacted, before - n);
              break;
            }
            case "lend": {
              // The chunks as an indication's MDLs: pool chunks among them are held.
              const views: { view: Uint8Array; at: number; hold: boolean }[] = [];
              let at = head;
              for (const v of buf.chunks()) {
                const hold = pool.owns(v);
                if (hold) pool.hold(v);
                views.push({ view: v, at, hold });
                at += v.length;
              }
              lent.push(views);
              break;
            }
            case "return": {
              giveBack(lent.shift() ?? []);
              break;
            }
          }
          assert.equal(buf.length, tail - head);
          assert.ok(pool.freeChunks <= pool.maxFree, "the pool cap holds");
          // Every readable byte is still right (no chunk was reused under the buffer).
          const all = concat(buf.chunks());
          assert.deepEqual(all, slab(head, tail - head));
        }
        // Views handed out earlier were never overwritten by reuse.
        for (const h of held) assert.deepEqual(h.view, slab(h.at, h.view.length));
        for (const views of lent.splice(0)) giveBack(views);
        assert.equal(pool.heldChunks, 0);
        // Consuming the rest by copy gives every pooled chunk still in the buffer back: all
        // chunks are accounted for (idle, dropped over the cap, or detached with a view).
        buf.clear();
        const s = pool.stats;
        assert.equal(s.allocated, pool.freeChunks + s.dropped + s.detached);
        assert.equal(s.reused + s.allocated, s.returned + s.dropped + s.detached);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });
  void test("consumed chunks are reused by the next copy; a chunk under a read view is not", () => {
    const pool = new ChunkPool(64, 1024);
    const buf = new RecvBuffer();
    for (const x of fill(pool, [slab(0, 128)])) buf.pushPooled(x, pool);
    assert.equal(pool.stats.allocated, 2);
    const first = buf.read(10); // the first chunk leaves the pool
    assert.ok(first !== undefined);
    assert.equal(buf.readInto(new Uint8Array(118)), 118); // the second goes back
    assert.equal(pool.freeChunks, 1);
    for (const x of fill(pool, [slab(500, 64)])) buf.pushPooled(x, pool);
    assert.equal(pool.stats.reused, 1);
    assert.equal(pool.stats.allocated, 2, "no new chunk for the second copy");
    assert.deepEqual(first, slab(0, 10), "the reader's view is intact");
    assert.equal(pool.stats.detached, 1);
  });
  void test("compaction: whole chunks only, remainder stays as views, earlier views stay valid", () => {
    const pool = new ChunkPool(64, 1024);
    const buf = new RecvBuffer();
    const segs = pieces(slab(0, 150), [20]); // 8 segments: 7 x 20 + 10
    for (const x of segs) buf.push(x);
    const peeked = buf.chunks();
    assert.equal(buf.uncompacted, 150);
    assert.equal(buf.compact(pool), 128);
    assert.equal(buf.uncompacted, 22);
    const now = buf.chunks();
    assert.equal(now.length, 4, "two chunks, the rest of the 7th segment, the 8th");
    assert.ok(pool.owns(now[0] as Uint8Array) && pool.owns(now[1] as Uint8Array));
    assert.deepEqual(concat(now), slab(0, 150));
    assert.deepEqual(concat(peeked), slab(0, 150), "views taken before compaction are intact");
    assert.equal(buf.compact(pool), 0, "less than a chunk uncompacted: nothing copied");
    for (const x of pieces(slab(150, 50), [25])) buf.push(x);
    assert.equal(buf.compact(pool), 64, "only bytes not compacted before are copied");
    assert.deepEqual(concat(buf.chunks()), slab(0, 200));
    assert.equal(buf.readInto(new Uint8Array(200)), 200);
    assert.equal(pool.freeChunks, 3, "consumed by copy: every chunk back in the pool");
  });
  void test("a give while held waits for the last release", () => {
    const pool = new ChunkPool(16, 1024);
    const c = pool.take();
    pool.hold(c);
    pool.hold(c.subarray(2, 4));
    pool.give(c);
    assert.equal(pool.freeChunks, 0, "still lent out");
    assert.equal(pool.owns(c), false);
    pool.release(c);
    assert.equal(pool.freeChunks, 0);
    pool.release(c);
    assert.equal(pool.freeChunks, 1, "back with the last release");
    assert.equal(pool.take(), c);
    assert.throws(() => {
      pool.release(c);
    }, UsageError);
    const d = pool.take();
    pool.hold(d);
    pool.detach(d);
    pool.release(d);
    assert.equal(pool.freeChunks, 0, "a detached chunk never comes back");
    assert.throws(() => {
      pool.hold(d);
    }, UsageError);
  });
  void test("holdAndGive is hold then give: back with the matching release, false for foreign memory", () => {
    const pool = new ChunkPool(16, 1024);
    const other = new ChunkPool(16, 1024);
    const c = pool.take();
    const e = pool.take();
    pool.hold(e); // an earlier hold: the combined one adds to it
    assert.equal(pool.holdAndGive(new Uint8Array(16)), false, "not a pool chunk");
    assert.equal(pool.holdAndGive(other.take()), false, "a chunk of another pool");
    assert.equal(pool.holdAndGive(c.subarray(4, 8)), true);
    assert.equal(pool.holdAndGive(e), true);
    assert.equal(pool.owns(c), false, "the loan ended");
    assert.equal(pool.holdAndGive(c), false, "a second time: the loan already ended");
    assert.throws(() => {
      pool.give(c);
    }, UsageError);
    assert.equal(pool.freeChunks, 0, "held: not reusable yet");
    pool.release(c);
    assert.equal(pool.freeChunks, 1, "back with the release");
    const again = pool.take();
    assert.equal(again.buffer, c.buffer, "the same chunk");
    assert.equal(again.length, 16, "whole again, though given back by a view");
    pool.release(e);
    assert.equal(pool.freeChunks, 0, "e still has the earlier hold");
    pool.release(e);
    assert.equal(pool.freeChunks, 1);
    assert.equal(pool.stats.deferred, 2);
  });
  void test("a deferred give completes once: a reused chunk's later holds do not free it again", () => {
    const pool = new ChunkPool(16, 1024);
    const c = pool.take();
    pool.hold(c);
    pool.give(c); // deferred
    pool.release(c); // back in the idle list
    const again = pool.take();
    assert.equal(again.buffer, c.buffer);
    pool.hold(again);
    pool.release(again); // a hold without a give: the chunk stays with its holder
    assert.equal(pool.freeChunks, 0, "not idle while handed out");
    assert.ok(pool.owns(again));
    assert.notEqual(pool.take().buffer, again.buffer, "never handed out twice");
    assert.equal(pool.heldChunks, 0);
  });
  void test("a buffer takes chunks of one pool only", () => {
    const p1 = new ChunkPool(8, 64);
    const p2 = new ChunkPool(8, 64);
    const buf = new RecvBuffer();
    buf.pushPooled(p1.take(), p1);
    assert.throws(() => {
      buf.pushPooled(p2.take(), p2);
    }, UsageError);
  });
});
