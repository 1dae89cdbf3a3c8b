// TupleTable against a reference model (a Map keyed by the tuple's text), including tuples
// whose hashes collide, which a random run almost never produces. fast-check with a fixed
// seed (printed on failure); FC_SEED=random explores.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { IpAddr } from "../wire/ip-addr.js";
import { TupleTable, tupleHash } from "./tuple-table.js";

const seedEnv = process.env["FC_SEED"];
const SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x7ab1e);

type Tuple = [IpAddr, IpAddr, number, number];

const text = ([l, r, lp, rp]: Tuple): string => `${l.join(".")}|${r.join(".")}|${lp}|${rp}`;

/** Two different tuples with the same hash, found by the birthday bound (~2^15 tries). */
function collidingPair(): [Tuple, Tuple] {
  const seen = new Map<number, Tuple>();
  const local = new Uint8Array([10, 0, 0, 1]) as IpAddr;
  for (let i = 0; ; i++) {
    const t: Tuple = [local, new Uint8Array([10, 1, (i >> 8) & 255, i & 255]), 80, 1024 + (i >> 16)];
    const h = tupleHash(...t);
    const other = seen.get(h);
    if (other !== undefined) return [other, t];
    seen.set(h, t);
  }
}

const addr = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }),
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
) as fc.Arbitrary<IpAddr>;

void test("TupleTable behaves as a map keyed by the whole tuple (random operations, colliding tuples mixed in)", () => {
  const [c1, c2] = collidingPair();
  assert.equal(tupleHash(...c1), tupleHash(...c2));
  const tuple = fc.oneof(
    fc.tuple(addr, addr, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
    fc.constant(c1),
    fc.constant(c2),
  ) as fc.Arbitrary<Tuple>;
  const op = fc.record({ kind: fc.constantFrom("set", "delete", "get"), t: tuple, v: fc.integer() });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const table = new TupleTable<number>();
      const model = new Map<string, number>();
      const tuples: Tuple[] = [];
      for (const { kind, t, v } of ops) {
        tuples.push(t);
        if (kind === "set") {
          table.set(...t, v);
          model.set(text(t), v);
        } else if (kind === "delete") {
          assert.equal(table.delete(...t), model.delete(text(t)));
        }
        assert.equal(table.size, model.size);
        for (const u of tuples) {
          assert.equal(table.get(...u), model.get(text(u)));
          assert.equal(table.has(...u), model.has(text(u)));
        }
      }
    }),
    { seed: SEED, numRuns: 300 },
  );
});

void test("colliding tuples are told apart by their fields, whichever went in first", () => {
  const [a, b] = collidingPair();
  for (const [first, second] of [
    [a, b],
    [b, a],
  ] as const) {
    const table = new TupleTable<string>();
    table.set(...first, "first");
    table.set(...second, "second");
    assert.equal(table.get(...first), "first");
    assert.equal(table.get(...second), "second");
    assert.ok(table.delete(...first));
    assert.equal(table.get(...first), undefined);
    assert.equal(table.get(...second), "second");
    assert.ok(!table.delete(...first));
    assert.equal(table.size, 1);
  }
});

void test("deleteValue removes exactly the entry holding that value (by identity), colliding tuples mixed in", () => {
  const [c1, c2] = collidingPair();
  const tuple = fc.oneof(
    fc.tuple(addr, addr, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
    fc.constant(c1),
    fc.constant(c2),
  ) as fc.Arbitrary<Tuple>;
  const op = fc.record({ kind: fc.constantFrom("set", "deleteValue", "deleteStale"), t: tuple });
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const table = new TupleTable<{ readonly n: number }>();
      const model = new Map<string, { readonly n: number }>();
      const tuples: Tuple[] = [];
      let n = 0;
      for (const { kind, t } of ops) {
        tuples.push(t);
        const h = tupleHash(...t);
        if (kind === "set") {
          const v = { n: n++ };
          table.setHashed(h, ...t, v);
          model.set(text(t), v);
        } else if (kind === "deleteValue") {
          const v = model.get(text(t));
          assert.equal(table.deleteValue(h, v ?? { n: -1 }), v !== undefined);
          model.delete(text(t));
        } else {
          // an object equal in content but not the one stored: nothing goes
          assert.equal(table.deleteValue(h, { n: model.get(text(t))?.n ?? -1 }), false);
        }
        assert.equal(table.size, model.size);
        for (const u of tuples) assert.equal(table.get(...u), model.get(text(u)));
      }
    }),
    { seed: SEED, numRuns: 300 },
  );
});
