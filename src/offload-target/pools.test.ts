/**
 * The target's NBL pools (pools.ts): each NBL's place (out, lent up to the host, back) is kept
 * on the NBL itself; these tests check the counts and the refusals that the target's TM-22 /
 * RR-3 checks rely on.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BufferLedger } from "../nbl/ledger.js";
import { InvariantViolation } from "../util/errors.js";
import { NblPool } from "./pools.js";

const bytes = (n: number): Uint8Array => new Uint8Array(n).fill(7);

void describe("NblPool", () => {
  void test("INIT-4: an NBL from the pool carries one NB over the non-empty chunks, counted out until released", () => {
    const ledger = new BufferLedger();
    const pool = new NblPool("chimney-receive", ledger);
    const a = pool.alloc([bytes(3), bytes(0), bytes(5)], "test");
    const b = pool.alloc([bytes(1)], "test");
    assert.equal(ledger.view(a, "target", "test").length, 1);
    assert.equal(pool.outstanding, 2);
    assert.equal(pool.lent, 0);
    assert.equal(pool.allocated, 2);
    assert.ok(pool.has(a) && pool.has(b));
    assert.ok(pool.release(a));
    assert.equal(pool.release(a), false, "a second release finds nothing");
    assert.ok(!pool.has(a));
    assert.equal(pool.outstanding, 1);
    assert.equal(pool.allocated, 2, "allocations only grow");
  });

  void test("RR-3: a lent NBL counts as out and as lent until the host returns it; only a lent NBL can be taken back", () => {
    const ledger = new BufferLedger();
    const pool = new NblPool("chimney-receive", ledger);
    const n = pool.alloc([bytes(4)], "test");
    assert.equal(pool.takeBack(n), false, "never lent: not a return");
    assert.equal(pool.outstanding, 1);
    pool.lend(n);
    assert.equal(pool.lent, 1);
    assert.equal(pool.outstanding, 1);
    assert.throws(
      () => {
        pool.lend(n);
      },
      InvariantViolation,
      "lent twice",
    );
    assert.ok(pool.takeBack(n));
    assert.equal(pool.lent, 0);
    assert.equal(pool.outstanding, 0);
    assert.equal(pool.takeBack(n), false, "a double return finds nothing");
  });

  void test("an NBL of another pool is neither released, taken back nor lent by this one", () => {
    const ledger = new BufferLedger();
    const chimney = new NblPool("chimney-receive", ledger);
    const other = new NblPool("non-offload-receive", ledger);
    const n = other.alloc([bytes(2)], "test");
    assert.equal(chimney.has(n), false);
    assert.equal(chimney.release(n), false);
    assert.throws(() => {
      chimney.lend(n);
    }, InvariantViolation);
    assert.equal(other.outstanding, 1);
    other.lend(n);
    assert.equal(chimney.takeBack(n), false);
    assert.equal(other.lent, 1);
    assert.ok(other.release(n), "a refused or freed NBL goes back lent or not");
    assert.equal(other.lent, 0);
    assert.equal(other.outstanding, 0);
  });
});
