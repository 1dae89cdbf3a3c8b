/**
 * TCP sequence space (RFC 9293 section 3.4): uint32 numbers compared modulo 2^32.
 * `SeqNum` and `SeqLen` are separate brands: a number in the space is not a distance in it.
 * Never compare two `SeqNum`s with `<`; use `Seq.lt` and friends.
 */
import type { Brand } from "../util/brand.js";
import { assert } from "../util/errors.js";

/** A TCP sequence number: a uint32 compared modulo 2^32. */
export type SeqNum = Brand<number, "SeqNum">;
/** A distance in sequence space, 0 <= len < 2^31. Not interchangeable with SeqNum. */
export type SeqLen = Brand<number, "SeqLen">;

export const Seq = {
  of: (n: number): SeqNum => (n >>> 0) as SeqNum,
  len(n: number): SeqLen {
    assert(Number.isInteger(n) && n >= 0 && n < 2 ** 31, () => `bad seq length ${n}`);
    return n as SeqLen;
  },
  add: (a: SeqNum, n: number): SeqNum => ((a + n) >>> 0) as SeqNum,
  sub: (a: SeqNum, n: number): SeqNum => ((a - n) >>> 0) as SeqNum,
  /** `a - b`, which must not be negative in sequence space. */
  diff(a: SeqNum, b: SeqNum): SeqLen {
    const d = (a - b) | 0;
    assert(d >= 0, () => `seq underflow: ${a} - ${b}`);
    return d as SeqLen;
  },
  /** `a - b` as a signed distance (negative when `a` is before `b`). */
  delta: (a: SeqNum, b: SeqNum): number => (a - b) | 0,
  lt: (a: SeqNum, b: SeqNum): boolean => ((a - b) | 0) < 0,
  le: (a: SeqNum, b: SeqNum): boolean => ((a - b) | 0) <= 0,
  gt: (a: SeqNum, b: SeqNum): boolean => ((a - b) | 0) > 0,
  ge: (a: SeqNum, b: SeqNum): boolean => ((a - b) | 0) >= 0,
  max: (a: SeqNum, b: SeqNum): SeqNum => (((a - b) | 0) >= 0 ? a : b),
  min: (a: SeqNum, b: SeqNum): SeqNum => (((a - b) | 0) <= 0 ? a : b),
  /** start <= x < start + len, modulo 2^32. */
  inWindow: (x: SeqNum, start: SeqNum, len: number): boolean => (x - start) >>> 0 < len,
} as const;
