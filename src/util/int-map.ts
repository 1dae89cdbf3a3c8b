/**
 * A hash map from integer keys (ids, handles, hashes: safe integers) to values, for the tables a
 * terminate storm grows to 100,000 entries and drains again.
 *
 * Why not `Map`: V8's `Map` is an ordered hash table. It rehashes into a new table each time it
 * doubles and each time it falls below a quarter full, and a table that size lives in its own
 * freshly mapped pages; in a storm of 100,000 terminates, the inserts, deletes, rehashes and page
 * faults of a handful of such maps took a fifth of each thread's time.
 *
 * Here: open addressing with linear probing in Robin Hood order over a `Float64Array` of keys and
 * an array of values; deletion shifts the following entries back (no tombstones, so probes stay
 * short after any mix of inserts and deletes). The table doubles at half full and never shrinks:
 * it keeps the size of its peak, which the caller's own cap bounds.
 */

import { InvariantViolation, UsageError } from "./errors.js";

/** Marks an empty slot (keys are safe integers, never NaN). */
const EMPTY = Number.NaN;

const INITIAL_CAPACITY = 16;

/**
 * How keys spread over the table.
 * - `"hashed"` (the default): Fibonacci hashing over both 32-bit halves, for keys from anywhere
 *   (hashes, handles, ports).
 * - `"sequential"`: the key's low bits are its slot, for ids a counter hands out. Ids made one
 *   after another then sit side by side, and a storm that walks them in order walks the table in
 *   order (a hash scattered 100,000 lookups over a 4 MB table: a cache miss each). Only for keys
 *   the caller makes itself: a key the network can choose could pile up on one slot.
 */
export type IntMapKeys = "hashed" | "sequential";

/** The home slot of `key` in a table of `mask + 1` slots, hashed. */
function hashedSlot(key: number, mask: number): number {
  const lo = key | 0;
  const hi = (key / 4294967296) | 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1);
  h ^= h >>> 15;
  return h & mask;
}

/** The home slot of `key` in a table of `mask + 1` slots, by its low bits. */
function sequentialSlot(key: number, mask: number): number {
  return ((key | 0) ^ Math.imul((key / 4294967296) | 0, 0x9e3779b1)) & mask;
}

/**
 * A map from safe-integer keys to `V` (see the module comment).
 *
 * Robin Hood ordering: along a run of occupied slots, an entry never sits farther from its home
 * slot than the entry after it would have to move back. So a lookup stops at the first entry
 * closer to home than the probe, and a deletion shifts back only the entries displaced from
 * their homes, stopping at the first one at home (with plain linear probing a deletion scanned
 * to the end of the run, which for sequential keys is the whole table).
 */
export class IntMap<V> {
  #keys: Float64Array;
  #values: (V | undefined)[];
  #mask: number = 0;
  #size = 0;
  /** Bumped by every insert and delete: an iterator that sees it change stops with an error. */
  #version = 0;
  readonly #slot: (key: number, mask: number) => number;

  constructor(capacity = INITIAL_CAPACITY, keys: IntMapKeys = "hashed") {
    let cap = INITIAL_CAPACITY;
    while (cap < capacity * 2) cap *= 2;
    this.#keys = new Float64Array(cap).fill(EMPTY);
    this.#values = new Array<V | undefined>(cap).fill(undefined);
    this.#mask = cap - 1;
    if (keys !== "hashed" && keys !== "sequential")
      throw new UsageError(`IntMap keys ${String(keys)}: must be "hashed" or "sequential"`);
    this.#slot = keys === "sequential" ? sequentialSlot : hashedSlot;
  }

  /** A map for ids a counter of the caller's hands out (`"sequential"` keys). */
  static sequential<V>(capacity = INITIAL_CAPACITY): IntMap<V> {
    return new IntMap<V>(capacity, "sequential");
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** The slot holding `key`, or -1. */
  #find(key: number): number {
    const keys = this.#keys;
    const mask = this.#mask;
    const slot = this.#slot;
    let i = slot(key, mask);
    for (let dist = 0; ; dist++, i = (i + 1) & mask) {
      const k = keys[i] as number;
      if (k === key) return i;
      // Empty (NaN), or an entry nearer its home than we are to ours: `key` would have taken
      // its place.
      if (k !== k || ((i - slot(k, mask)) & mask) < dist) return -1;
    }
  }

  get(key: number): V | undefined {
    const i = this.#find(key);
    return i < 0 ? undefined : this.#values[i];
  }

  has(key: number): boolean {
    return this.#find(key) >= 0;
  }

  /** Adds or replaces `key`'s value. */
  set(key: number, value: V): this {
    if (!Number.isSafeInteger(key)) throw new UsageError(`IntMap key ${String(key)}: must be a safe integer`);
    const found = this.#find(key);
    if (found >= 0) {
      this.#values[found] = value;
      return this;
    }
    this.#place(key, value);
    this.#version++;
    if (++this.#size * 2 > this.#mask + 1) this.#grow();
    return this;
  }

  /** Inserts `key`, known absent, taking the slot of any entry nearer its home (Robin Hood). */
  #place(key: number, value: V | undefined): void {
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    const slot = this.#slot;
    let i = slot(key, mask);
    for (let dist = 0; ; dist++, i = (i + 1) & mask) {
      const k = keys[i] as number;
      if (k !== k) {
        keys[i] = key;
        values[i] = value;
        return;
      }
      const theirs = (i - slot(k, mask)) & mask;
      if (theirs < dist) {
        const v = values[i];
        keys[i] = key;
        values[i] = value;
        key = k;
        value = v;
        dist = theirs;
      }
    }
  }

  /** Removes `key`; false when it was not there. */
  delete(key: number): boolean {
    let i = this.#find(key);
    if (i < 0) return false;
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    const slot = this.#slot;
    // Shift back the entries after it that sit away from home, up to the first at home or empty.
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const k = keys[j] as number;
      if (k !== k || slot(k, mask) === j) break;
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
    this.#keys = new Float64Array(cap).fill(EMPTY);
    this.#values = new Array<V | undefined>(cap).fill(undefined);
    this.#mask = cap - 1;
    for (let j = 0; j < oldKeys.length; j++) {
      const k = oldKeys[j] as number;
      if (k === k) this.#place(k, oldValues[j]);
    }
  }
}
