/**
 * A hash map from integer keys (ids, handles, hashes: safe integers) to values, for the tables a
 * terminate storm grows to 100,000 entries and drains again.
 *
 * Why not `Map`: V8's `Map` is an ordered hash table. It rehashes into a new table each time it
 * doubles and each time it falls below a quarter full, and a table that size lives in its own
 * freshly mapped pages; in a storm of 100,000 terminates, the inserts, deletes, rehashes and page
 * faults of a handful of such maps took a fifth of each thread's time.
 *
 * Here: open addressing with linear probing over a `Float64Array` of keys and an array of values;
 * deletion shifts the following entries back (no tombstones, so probes stay short after any mix of
 * inserts and deletes). The table doubles at half full and never shrinks: it keeps the size of its
 * peak, which the caller's own cap bounds.
 */

import { InvariantViolation, UsageError } from "./errors.js";

/** Marks an empty slot (keys are safe integers, never NaN). */
const EMPTY = Number.NaN;

const INITIAL_CAPACITY = 16;

/** The slot index of `key` in a table of `mask + 1` slots (Fibonacci hashing over both halves). */
function slotOf(key: number, mask: number): number {
  const lo = key | 0;
  const hi = (key / 4294967296) | 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
  h ^= h >>> 15;
  return h & mask;
}

/** A map from safe-integer keys to `V` (see the module comment). */
export class IntMap<V> {
  #keys: Float64Array;
  #values: (V | undefined)[];
  #mask: number;
  #size = 0;
  /** Bumped by every insert and delete: an iterator that sees it change stops with an error. */
  #version = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    let cap = INITIAL_CAPACITY;
    while (cap < capacity * 2) cap *= 2;
    this.#keys = new Float64Array(cap).fill(EMPTY);
    this.#values = new Array<V | undefined>(cap).fill(undefined);
    this.#mask = cap - 1;
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  get(key: number): V | undefined {
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = slotOf(key, mask); ; i = (i + 1) & mask) {
      const k = keys[i] as number;
      if (k === key) return this.#values[i];
      if (k !== k) return undefined; // NaN: empty
    }
  }

  has(key: number): boolean {
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = slotOf(key, mask); ; i = (i + 1) & mask) {
      const k = keys[i] as number;
      if (k === key) return true;
      if (k !== k) return false;
    }
  }

  /** Adds or replaces `key`'s value. */
  set(key: number, value: V): this {
    if (!Number.isSafeInteger(key)) throw new UsageError(`IntMap key ${String(key)}: must be a safe integer`);
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = slotOf(key, mask); ; i = (i + 1) & mask) {
      const k = keys[i] as number;
      if (k === key) {
        this.#values[i] = value;
        return this;
      }
      if (k !== k) {
        keys[i] = key;
        this.#values[i] = value;
        this.#version++;
        if (++this.#size * 2 > mask + 1) this.#grow();
        return this;
      }
    }
  }

  /** Removes `key`; false when it was not there. */
  delete(key: number): boolean {
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = slotOf(key, mask);
    for (;;) {
      const k = keys[i] as number;
      if (k === key) break;
      if (k !== k) return false;
      i = (i + 1) & mask;
    }
    // Shift back every following entry of the run that may sit at `i` (its home slot is not in
    // the cyclic range (i, j]), so that no probe meets a hole before its key.
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const k = keys[j] as number;
      if (k !== k) break;
      const home = slotOf(k, mask);
      if (i <= j ? home > i && home <= j : home > i || home <= j) continue;
      keys[i] = k;
      values[i] = values[j];
      i = j;
    }
    keys[i] = EMPTY;
    values[i] = undefined;
    this.#size--;
    this.#version++;
    return true;
  }

  /**
   * The occupied slots, in no particular order. Adding or deleting keys meanwhile moves entries,
   * so the iterator throws `InvariantViolation` if the table changed under it (a `Map` would not).
   */
  *#slots(): Generator<number> {
    const keys = this.#keys;
    const version = this.#version;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as number;
      if (k !== k) continue;
      yield i;
      if (this.#version !== version) throw new InvariantViolation("an IntMap changed while it was iterated");
    }
  }

  /** Every entry (see `#slots`). */
  *entries(): IterableIterator<[number, V]> {
    for (const i of this.#slots()) yield [this.#keys[i] as number, this.#values[i] as V];
  }

  *values(): IterableIterator<V> {
    for (const i of this.#slots()) yield this.#values[i] as V;
  }

  *keys(): IterableIterator<number> {
    for (const i of this.#slots()) yield this.#keys[i] as number;
  }

  /** Removes every entry (the table keeps its size). */
  clear(): void {
    this.#keys.fill(EMPTY);
    this.#values.fill(undefined);
    this.#size = 0;
    this.#version++;
  }

  #grow(): void {
    const oldKeys = this.#keys;
    const oldValues = this.#values;
    const cap = oldKeys.length * 2;
    const keys = new Float64Array(cap).fill(EMPTY);
    const values = new Array<V | undefined>(cap).fill(undefined);
    const mask = cap - 1;
    for (let j = 0; j < oldKeys.length; j++) {
      const k = oldKeys[j] as number;
      if (k !== k) continue;
      let i = slotOf(k, mask);
      while ((keys[i] as number) === (keys[i] as number)) i = (i + 1) & mask;
      keys[i] = k;
      values[i] = oldValues[j];
    }
    this.#keys = keys;
    this.#values = values;
    this.#mask = mask;
  }
}
