/**
 * The simulator's only source of randomness: a seeded xoshiro128** generator (Blackman and
 * Vigna, 2018). A run is a pure function of its seed, so nothing else may draw random numbers.
 *
 * Streams: one root `Prng(seed)` per run. Each component calls `fork()` once, at construction,
 * in a fixed order, and draws only from its own stream; an extra draw in one component then
 * never shifts another component's numbers.
 */
import { UsageError } from "../util/errors.js";

/** A deterministic pseudo-random stream. Not cryptographic. */
export class Prng {
  #s0: number = 0;
  #s1: number = 0;
  #s2: number = 0;
  #s3: number = 0;

  /** A stream seeded from any safe integer (all 53 bits of it count). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new UsageError(`Prng seed must be a safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    // Expand the seed through a finaliser so that nearby seeds give unrelated states.
    this.#s0 = mix32((lo + 0x9e3779b9) ^ mix32(hi));
    this.#s1 = mix32((lo + 0x3c6ef372) ^ mix32(hi + 1));
    this.#s2 = mix32((lo + 0xdaa66d2b) ^ mix32(hi + 2));
    this.#s3 = mix32((lo + 0x78dde6e4) ^ mix32(hi + 3));
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1; // the one forbidden state
  }

  /**
   * A stream with exactly this internal state, for reproducing reference vectors. The state must
   * not be all zero.
   */
  static fromState(s0: number, s1: number, s2: number, s3: number): Prng {
    const p = new Prng(0);
    p.#s0 = s0 >>> 0;
    p.#s1 = s1 >>> 0;
    p.#s2 = s2 >>> 0;
    p.#s3 = s3 >>> 0;
    if ((p.#s0 | p.#s1 | p.#s2 | p.#s3) === 0)
      throw new UsageError("xoshiro128** state must not be all zero");
    return p;
  }

  /** The next uniformly distributed 32-bit unsigned integer. */
  nextU32(): number {
    const s1 = this.#s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A float uniform in [0, 1), with 32 bits of precision (one draw). */
  float(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  /** True with probability `p` (0 <= p <= 1). Always consumes exactly one draw. */
  chance(p: number): boolean {
    if (!(p >= 0 && p <= 1)) throw new UsageError(`chance(p) needs 0 <= p <= 1, got ${p}`);
    return this.float() < p;
  }

  /**
   * An integer uniform in [0, n), without modulo bias (rejection sampling), for
   * 1 <= n <= 2^32. Usually one draw; at most a few more for n close to 2^32.
   */
  below(n: number): number {
    if (!(Number.isInteger(n) && n >= 1 && n <= 0x1_0000_0000)) {
      throw new UsageError(`below(n) needs an integer 1 <= n <= 2^32, got ${n}`);
    }
    // Accept only draws under the largest multiple of n that fits in 2^32.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** An integer uniform in [min, max], both inclusive (max - min < 2^32). */
  between(min: number, max: number): number {
    if (!(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max)) {
      throw new UsageError(`between(min, max) needs integers min <= max, got ${min}, ${max}`);
    }
    return min + this.below(max - min + 1);
  }

  /**
   * A new, independent stream seeded from four draws of this one. Drawing from either stream
   * afterwards does not change the other's numbers.
   */
  fork(): Prng {
    const a = this.nextU32();
    const b = this.nextU32();
    const c = this.nextU32();
    const d = this.nextU32();
    // Re-mix so the child's state is not the parent's raw output sequence.
    const child = Prng.fromState(
      mix32(a ^ 0x243f6a88),
      mix32(b ^ 0x85a308d3),
      mix32(c ^ 0x13198a2e),
      mix32(d ^ 0x03707344) | 1,
    ); // | 1: never all zero
    return child;
  }
}

/** 32-bit left rotation. */
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** MurmurHash3's 32-bit finaliser: a bijective avalanche mix of a uint32. */
function mix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
