import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { UsageError } from "../util/errors.js";
import {
  advance,
  type BufferChain,
  chainLength,
  concat,
  copyOut,
  forEachSegment,
  fromArrays,
  linkNbls,
  nblArray,
  segments,
  split,
  toBytes,
} from "./chain.js";
import { BufferLedger } from "./ledger.js";
import { type Mdl, mdl, type NetBuffer, netBuffer } from "./nbl.js";

// Fixed by default so runs are reproducible; `FC_SEED=random` explores. fast-check prints the seed
// and the shrunk counterexample path when a property fails.
const seedEnv = process.env["FC_SEED"];
const SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x5eed);
const RUNS = { seed: SEED, numRuns: 300 };

/** A generated chain together with its flat-array model and the arrays it was built on. */
interface Sample {
  readonly chain: BufferChain;
  readonly model: number[];
  readonly sources: ReadonlySet<ArrayBufferLike>;
}

/** One MDL: a window [off, off + len) of a random array (so MDL offsets are not always 0). */
const mdlArb = fc
  .record({ bytes: fc.uint8Array({ maxLength: 12 }), a: fc.nat(), b: fc.nat() }, { noNullPrototype: true })
  .map(({ bytes, a, b }) => {
    const off = a % (bytes.length + 1);
    return { bytes, off, len: b % (bytes.length - off + 1) };
  });

/** One NB: an MDL chain and a data window [a, a + b) inside it. */
const nbArb = fc
  .record({ mdls: fc.array(mdlArb, { maxLength: 4 }), a: fc.nat(), b: fc.nat() }, { noNullPrototype: true })
  .map(({ mdls, a, b }) => {
    let head: Mdl | null = null;
    for (let i = mdls.length - 1; i >= 0; i--) {
      const d = mdls[i]!;
      head = mdl(d.bytes, d.off, d.len, head);
    }
    // The model: every MDL window's bytes, flattened, then the NB window of that.
    const flat = mdls.flatMap((d) => Array.from(d.bytes.subarray(d.off, d.off + d.len)));
    const off = a % (flat.length + 1);
    const len = b % (flat.length - off + 1);
    return {
      nb: netBuffer(head, off, len),
      model: flat.slice(off, off + len),
      buffers: mdls.map((d) => d.bytes.buffer),
    };
  });

const sampleArb: fc.Arbitrary<Sample> = fc.array(nbArb, { maxLength: 4 }).map((nbs) => ({
  chain: nbs.map((x) => x.nb),
  model: nbs.flatMap((x) => x.model),
  sources: new Set(nbs.flatMap((x) => x.buffers)),
}));

/** A sample and a range [offset, offset + length) inside it. */
const rangeArb = sampleArb.chain((s) =>
  fc
    .nat({ max: s.model.length })
    .chain((offset) => fc.nat({ max: s.model.length - offset }).map((length) => ({ s, offset, length }))),
);

/** Each NB's descriptor fields, to show an operation left its input alone. */
function snapshot(chain: BufferChain): unknown[] {
  return chain.map((nb) => [nb.currentMdl, nb.currentMdlOffset, nb.dataOffset, nb.dataLength]);
}

/** Re-derives the cached current MDL from `dataOffset` and compares (the NetBuffer invariant). */
function assertNbInvariant(nb: NetBuffer): void {
  let m = nb.mdlChain;
  let off = nb.dataOffset;
  while (m !== null && off >= m.length) {
    off -= m.length;
    m = m.next;
  }
  assert.equal(nb.currentMdl, m);
  assert.equal(nb.currentMdlOffset, m === null ? 0 : off);
}

void describe("chain helpers agree with a flat array", () => {
  void test("chainLength and toBytes give the model", () => {
    fc.assert(
      fc.property(sampleArb, ({ chain, model }) => {
        assert.equal(chainLength(chain), model.length);
        assert.deepEqual(Array.from(toBytes(chain)), model);
      }),
      RUNS,
    );
  });

  void test("copyOut copies exactly the range, at the destination offset, and nothing else", () => {
    fc.assert(
      fc.property(
        rangeArb,
        fc.nat({ max: 8 }),
        fc.nat({ max: 8 }),
        ({ s, offset, length }, before, after) => {
          const dest = new Uint8Array(before + length + after).fill(0xee);
          copyOut(s.chain, offset, dest, before, length);
          const want = [
            ...new Array<number>(before).fill(0xee),
            ...s.model.slice(offset, offset + length),
            ...new Array<number>(after).fill(0xee),
          ];
          assert.deepEqual(Array.from(dest), want);
        },
      ),
      RUNS,
    );
  });

  void test("segments and forEachSegment yield the range as views of the original bytes", () => {
    fc.assert(
      fc.property(rangeArb, ({ s, offset, length }) => {
        const views = [...segments(s.chain, offset, length)];
        assert.deepEqual(
          views.flatMap((v) => Array.from(v)),
          s.model.slice(offset, offset + length),
        );
        for (const v of views) {
          assert.ok(v.length > 0, "no empty pieces");
          assert.ok(s.sources.has(v.buffer), "a piece is a view of a source array, not a copy");
        }
        const pieces: number[] = [];
        forEachSegment(s.chain, offset, length, (bytes, start, end) => {
          assert.ok(start < end);
          pieces.push(...bytes.subarray(start, end));
        });
        assert.deepEqual(pieces, s.model.slice(offset, offset + length));
      }),
      RUNS,
    );
  });

  void test("split gives the two slices, shares the bytes and leaves the input alone", () => {
    fc.assert(
      fc.property(rangeArb, ({ s, offset: at }) => {
        const before = snapshot(s.chain);
        const [left, right] = split(s.chain, at);
        assert.deepEqual(Array.from(toBytes(left)), s.model.slice(0, at));
        assert.deepEqual(Array.from(toBytes(right)), s.model.slice(at));
        assert.deepEqual(snapshot(s.chain), before);
        for (const nb of [...left, ...right]) {
          assertNbInvariant(nb);
          assert.ok(!s.chain.includes(nb), "split returns new descriptors");
        }
        for (const v of [...segments(left), ...segments(right)]) assert.ok(s.sources.has(v.buffer));
        // Linked like an NBL's NBs.
        for (const part of [left, right]) part.forEach((nb, i) => assert.equal(nb.next, part[i + 1] ?? null));
      }),
      RUNS,
    );
  });

  void test("concat gives the concatenation and leaves its inputs alone", () => {
    fc.assert(
      fc.property(sampleArb, sampleArb, (a, b) => {
        const before = [snapshot(a.chain), snapshot(b.chain)];
        const ab = concat(a.chain, b.chain);
        assert.deepEqual(Array.from(toBytes(ab)), [...a.model, ...b.model]);
        assert.deepEqual([snapshot(a.chain), snapshot(b.chain)], before);
        advance(ab, chainLength(ab));
        assert.deepEqual(
          Array.from(toBytes(a.chain)),
          a.model,
          "advancing the result does not touch the inputs",
        );
      }),
      RUNS,
    );
  });

  void test("advance drops a prefix in place, step by step, keeping each NB consistent", () => {
    fc.assert(
      fc.property(sampleArb, fc.array(fc.nat(), { maxLength: 5 }), ({ chain, model }, steps) => {
        let dropped = 0;
        for (const step of steps) {
          const n = step % (model.length - dropped + 1);
          advance(chain, n);
          dropped += n;
          assert.equal(chainLength(chain), model.length - dropped);
          assert.deepEqual(Array.from(toBytes(chain)), model.slice(dropped));
          for (const nb of chain) assertNbInvariant(nb);
        }
      }),
      RUNS,
    );
  });

  void test("split then concat is the identity on bytes, at any cut", () => {
    fc.assert(
      fc.property(rangeArb, ({ s, offset: at }) => {
        const [l, r] = split(s.chain, at);
        assert.deepEqual(Array.from(toBytes(concat(l, r))), s.model);
      }),
      RUNS,
    );
  });
});

void describe("chain helpers: edges", () => {
  void test("fromArrays wraps without copying: a later write shows through", () => {
    const a = Uint8Array.of(1, 2);
    const b = Uint8Array.of(3);
    const chain = fromArrays([a, b]);
    assert.equal(chain.length, 1);
    a[1] = 9;
    assert.deepEqual(Array.from(toBytes(chain)), [1, 9, 3]);
    assert.deepEqual(Array.from(toBytes(fromArrays([]))), []);
  });

  void test("copyOut uses one set() per MDL piece for large pieces and handles small ones", () => {
    const big = new Uint8Array(100).map((_, i) => i);
    const small = Uint8Array.of(200, 201, 202);
    const chain = fromArrays([small, big, small]);
    const out = new Uint8Array(106);
    copyOut(chain, 0, out, 0, 106);
    assert.deepEqual(Array.from(out), [200, 201, 202, ...Array.from(big), 200, 201, 202]);
  });

  void test("ranges outside the chain or the destination are usage errors", () => {
    const chain = fromArrays([Uint8Array.of(1, 2, 3)]);
    const dest = new Uint8Array(3);
    assert.throws(() => copyOut(chain, 1, dest, 0, 3), UsageError);
    assert.throws(() => copyOut(chain, 0, dest, 1, 3), UsageError);
    assert.throws(() => copyOut(chain, -1, dest, 0, 1), UsageError);
    assert.throws(() => split(chain, 4), UsageError);
    assert.throws(() => advance(chain, 4), UsageError);
    assert.throws(() => [...segments(chain, 2, 2)], UsageError);
    assert.throws(() => forEachSegment(chain, 0, 4, () => undefined), UsageError);
    assert.equal(chainLength(chain), 3, "refused operations change nothing");
  });

  void test("the send-data mapping walks SndNxt - SndUna bytes into the chain (digest 7.6)", () => {
    // The digest's figure: NBL1 has MDLs of 200 and 400 bytes, NBL2 400 and 400, NBL3 400 and 200.
    const ledger = new BufferLedger();
    const mdls = [200, 400, 400, 400, 400, 200].map((n, i) => new Uint8Array(n).fill(i));
    const nbls = [0, 2, 4].map((i) => ledger.alloc("host", fromArrays([mdls[i]!, mdls[i + 1]!])));
    const chain = linkNbls(nbls)!;
    assert.deepEqual(nblArray(chain), nbls);
    const data = ledger.view(chain, "host", "MiniportInitiateOffload");
    assert.equal(chainLength(data), 2000);
    const at = (off: number) => [...segments(data, off, 1)][0]!;
    assert.equal(at(0).buffer, mdls[0]!.buffer, "SndUna is the first byte of NBL1");
    assert.equal(at(1000).buffer, mdls[3]!.buffer, "SndNxt - SndUna = 1000 lands in NBL2's second MDL");
    assert.equal(at(1600).buffer, mdls[4]!.buffer, "SndMax - SndUna = 1600 lands in NBL3's first MDL");
    // Send completion of the first 700 bytes retires NBL1 and 100 bytes of NBL2, in place.
    advance(data, 700);
    const again = ledger.view(chain, "host", "check");
    assert.deepEqual(
      again.map((nb) => nb.dataLength),
      [0, 700, 600],
    );
    assert.equal(
      chainLength(ledger.view(nbls[2]!, "host", "check")),
      600,
      "a view from NBL3 covers NBL3 only",
    );
    ledger.free(chain, "host");
    ledger.assertQuiescent();
  });

  void test("nblArray stops at its limit on a looping chain; linkNbls of nothing is null", () => {
    const ledger = new BufferLedger();
    const a = ledger.alloc("host", []);
    a.next = a;
    assert.equal(nblArray(a, 3).length, 3);
    a.next = null;
    assert.equal(linkNbls([]), null);
    ledger.free(a, "host");
    ledger.assertQuiescent();
  });
});

void describe("chain helpers: every range of a chain with hidden bytes", () => {
  // Two NBs whose windows start inside an MDL and end before the MDL chain does (the bytes outside
  // the windows, 90+, must never show), an empty MDL and an empty NB between them.
  const mdls1 = mdl(
    Uint8Array.of(90, 91, 1, 2, 3),
    0,
    5,
    mdl(new Uint8Array(0), 0, 0, mdl(Uint8Array.of(4, 5, 92))),
  );
  const mdls2 = mdl(Uint8Array.of(93, 6, 7), 1, 2, mdl(Uint8Array.of(8, 94, 95)));
  const chain: BufferChain = [netBuffer(mdls1, 2, 5), netBuffer(null), netBuffer(mdls2, 1, 2)];
  const model = [1, 2, 3, 4, 5, 7, 8];

  void test("segments, forEachSegment and copyOut give exactly the model's bytes for every range", () => {
    for (let offset = 0; offset <= model.length; offset++) {
      for (let length = 0; offset + length <= model.length; length++) {
        const want = model.slice(offset, offset + length);
        const where = `[${offset}, +${length})`;
        assert.deepEqual(
          [...segments(chain, offset, length)].flatMap((v) => Array.from(v)),
          want,
          `segments ${where}`,
        );
        const pieces: number[] = [];
        forEachSegment(chain, offset, length, (bytes, start, end) => {
          assert.ok(end > start, `forEachSegment ${where} skips empty pieces`);
          pieces.push(...bytes.subarray(start, end));
        });
        assert.deepEqual(pieces, want, `forEachSegment ${where}`);
        const dest = new Uint8Array(length + 2).fill(0xee);
        copyOut(chain, offset, dest, 1, length);
        assert.deepEqual(Array.from(dest), [0xee, ...want, 0xee], `copyOut ${where}`);
      }
    }
    assert.deepEqual(
      [...segments(chain, 3)].flatMap((v) => Array.from(v)),
      model.slice(3),
    );
  });

  void test("copyOut copies a long piece from the middle of an MDL", () => {
    const big = new Uint8Array(100).map((_, i) => i);
    const out = new Uint8Array(30);
    copyOut(fromArrays([big]), 5, out, 0, 30);
    assert.deepEqual(Array.from(out), Array.from(big.subarray(5, 35)));
  });

  void test("split at an NB boundary cuts nothing: no empty NB on either side", () => {
    const two = [...fromArrays([Uint8Array.of(1, 2)]), ...fromArrays([Uint8Array.of(3)])];
    const [left, right] = split(two, 2);
    assert.deepEqual(
      left.map((nb) => nb.dataLength),
      [2],
    );
    assert.deepEqual(
      right.map((nb) => nb.dataLength),
      [1],
    );
  });

  void test("range errors say which range and which destination", () => {
    const three = fromArrays([Uint8Array.of(1, 2, 3)]);
    const dest = new Uint8Array(3);
    assert.throws(() => copyOut(three, 0, dest, -1, 1), {
      message: "copyOut of 1 bytes at -1 overruns a 3-byte destination",
    });
    assert.throws(() => copyOut(three, 0, dest, 0.5, 1), UsageError);
    assert.throws(() => copyOut(three, -1, dest, 0, 1), { message: "bad chain range [-1, +1)" });
    assert.throws(() => forEachSegment(three, 0, -1, () => undefined), {
      message: "bad chain range [0, +-1)",
    });
    assert.throws(() => forEachSegment(three, 0.5, 1, () => undefined), UsageError);
    assert.throws(() => forEachSegment(three, 0, 0.5, () => undefined), UsageError);
    assert.throws(() => [...segments(three, 2, 2)], { message: "chain range [2, +2) outside 3 bytes" });
    assert.throws(() => mdl(Uint8Array.of(1), 0, -1), { message: "MDL window [0, +-1) outside 1 bytes" });
    assert.throws(() => netBuffer(mdl(Uint8Array.of(1)), 1, 1), {
      message: "NB window [1, +1) outside an MDL chain of 1 bytes",
    });
    assert.throws(() => advance(three, 4), { message: "chain range [0, +4) outside 3 bytes" });
  });

  void test("an MDL over part of its array is a view of that part only", () => {
    const bytes = Uint8Array.of(1, 2, 3, 4);
    const m = mdl(bytes, 1, 2);
    assert.deepEqual(Array.from(m.view), [2, 3]);
    assert.deepEqual(Array.from(mdl(bytes, 0, 2).view), [1, 2]);
    assert.equal(m.view.buffer, bytes.buffer);
    assert.equal(mdl(bytes).view, bytes, "a whole array is its own view");
  });
});
