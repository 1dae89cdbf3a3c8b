/**
 * Big-endian field access on a `Uint8Array`, for the views in this folder. Plain indexed reads
 * and writes: unlike a `DataView`, they need no per-packet allocation, which dominates the cost
 * of decoding a header. The caller has checked the bounds (a view's `checked` constructor);
 * an out-of-range read yields 0 bits, never a throw.
 */

/** The byte at `i`. */
export function u8(b: Uint8Array, i: number): number {
  return b[i]! | 0; // in bounds per the caller; `| 0` turns a stray undefined into 0
}

/** The big-endian 16-bit value at `i`. */
export function u16(b: Uint8Array, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}

/** The big-endian 32-bit unsigned value at `i`. */
export function u32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

/** Stores the low 16 bits of `v` big-endian at `i`. */
export function setU16(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 8;
  b[i + 1] = v;
}

/** Stores `v` as a big-endian 32-bit value at `i`. */
export function setU32(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = v >>> 16;
  b[i + 2] = v >>> 8;
  b[i + 3] = v;
}
