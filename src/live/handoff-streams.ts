/**
 * The byte streams of a hand-off session (handoff-session.ts): `Source` produces a seeded
 * stream chunk by chunk and hashes what it hands out; `Sink` counts and hashes what arrives and
 * keeps the arrival times, from which the stall around a move is read.
 */
import { createHash, type Hash } from "node:crypto";

/** A seeded byte stream produced chunk by chunk (xorshift32 words), hashed as it is handed out. */
/**
 * Fills `words` with xorshift32 values continuing from state `x` (non-zero) and returns the
 * state to continue from. `Source` and the tests' `payload` make the same bytes from a seed.
 */
export function xorshiftFill(words: Uint32Array, x: number): number {
  let s = x >>> 0;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    words[i] = s;
  }
  return s;
}

export class Source {
  #x: number = 0;
  #left: number = 0;
  readonly hash: Hash = createHash("sha256");
  constructor(bytes: number, seed: number) {
    this.#x = seed >>> 0 || 1;
    this.#left = bytes;
  }
  get left(): number {
    return this.#left;
  }
  next(max: number): Buffer | undefined {
    const n = Math.min(max, this.#left) & ~3 || Math.min(max, this.#left);
    if (n <= 0) return undefined;
    const words = new Uint32Array(Math.ceil(n / 4));
    this.#x = xorshiftFill(words, this.#x);
    this.#left -= n;
    const b = Buffer.from(words.buffer, 0, n);
    this.hash.update(b);
    return b;
  }
}

/** Received bytes: count, hash and arrival times (for stalls). */
export class Sink {
  bytes = 0;
  readonly hash: Hash = createHash("sha256");
  readonly arrivals: number[] = [];
  take(b: Uint8Array): void {
    if (b.length === 0) return;
    this.bytes += b.length;
    this.hash.update(b);
    this.arrivals.push(performance.now());
  }
  /** Longest gap between arrivals from the last one before `start` to the first after `end`. */
  stall(start: number, end: number): number | undefined {
    const a = this.arrivals;
    let i = a.length - 1;
    while (i > 0 && (a[i] ?? 0) >= start) i--;
    let worst = 0;
    for (let k = Math.max(i, 0); k + 1 < a.length; k++) {
      worst = Math.max(worst, (a[k + 1] ?? 0) - (a[k] ?? 0));
      if ((a[k + 1] ?? 0) > end) return worst;
    }
    return undefined; // nothing arrived after the move yet
  }
}
