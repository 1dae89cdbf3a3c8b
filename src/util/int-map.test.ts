// IntMap against a reference model (a Map), with random inserts, deletes and lookups over key
// sets small enough to collide and wrap around the table, and keys beyond 32 bits. fast-check
// with a fixed seed (printed on failure); FC_SEED=random explores.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { UsageError } from "./errors.js";
import { IntMap } from "./int-map.js";

const seedEnv = process.env["FC_SEED"];
const SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x1a7a9);

const key = fc.oneof(
  fc.integer({ min: 0, max: 40 }),
  // the same low bits, a table apart: they share a home slot in "sequential" mode
  fc.integer({ min: 0, max: 6 }).map((k) => 5 + k * 64),
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 40 + 16),
);

for (const mode of ["hashed", "sequential"] as const)
  void test(`IntMap (${mode} keys) behaves as a Map of safe integers (random operations through growth and deletion)`, () => {
    const op = fc.record({
      kind: fc.constantFrom("set", "delete", "delete", "get"),
      k: key,
      v: fc.integer(),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 0, max: 40 }), (ops, capacity) => {
        const m = new IntMap<number>(capacity, mode);
        const model = new Map<number, number>();
        const seen = new Set<number>();
        for (const { kind, k, v } of ops) {
          seen.add(k);
          if (kind === "set") {
            m.set(k, v);
            model.set(k, v);
          } else if (kind === "delete") {
            assert.equal(m.delete(k), model.delete(k));
          }
          assert.equal(m.size, model.size);
          for (const u of seen) {
            assert.equal(m.get(u), model.get(u));
            assert.equal(m.has(u), model.has(u));
          }
        }
        assert.deepEqual(
          [...m.entries()].sort((a, b) => a[0] - b[0]),
          [...model.entries()].sort((a, b) => a[0] - b[0]),
        );
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

for (const mode of ["hashed", "sequential"] as const)
  void test(`IntMap (${mode} keys): a storm's pattern (100,000 ids in, all out in another order) leaves it empty and usable`, () => {
    const m = new IntMap<number>(16, mode);
    const n = 100_000;
    for (let i = 0; i < n; i++) m.set(1_000_000 + i * 3, i);
    assert.equal(m.size, n);
    for (let i = 0; i < n; i += 2) assert.ok(m.delete(1_000_000 + i * 3));
    for (let i = 1; i < n; i += 2) assert.equal(m.get(1_000_000 + i * 3), i);
    for (let i = 1; i < n; i += 2) assert.ok(m.delete(1_000_000 + i * 3));
    assert.equal(m.size, 0);
    assert.equal(m.get(1_000_003), undefined);
    m.set(7, 7);
    assert.equal(m.get(7), 7);
    m.clear();
    assert.equal(m.size, 0);
    assert.equal(m.has(7), false);
  });

void test("IntMap refuses a key that is not a safe integer (it would read as an empty slot)", () => {
  const m = new IntMap<string>();
  for (const bad of [Number.NaN, 1.5, 2 ** 53, Number.POSITIVE_INFINITY]) {
    assert.throws(
      () => m.set(bad, "x"),
      (e: unknown) => e instanceof UsageError && e.code === "ERR_USAGE",
      `key ${bad}`,
    );
  }
  assert.equal(m.size, 0);
});

void test("IntMap refuses a key layout it does not know", () => {
  assert.throws(
    () => new IntMap<number>(16, "linear" as never),
    (e: unknown) => e instanceof UsageError && e.code === "ERR_USAGE",
  );
});

void test("IntMap: changing the table while iterating it throws (entries would move under the iterator)", () => {
  const m = new IntMap<number>();
  for (let i = 0; i < 10; i++) m.set(i, i);
  assert.throws(() => {
    for (const k of m.keys()) m.delete(k);
  }, /changed while it was iterated/);
  // replacing a value is not a change of the table
  for (const k of m.keys()) m.set(k, -k);
  assert.equal(m.get(9), -9);
});
