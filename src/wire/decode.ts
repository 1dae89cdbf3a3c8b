/**
 * What every codec in this folder returns for bad input: a stable code and the byte offset, in
 * the bytes handed to that codec, where the problem was found (smoltcp's unit error made useful).
 * Decoders never throw on input; they return `err(DecodeError)`.
 */
import { err, type Result } from "../util/errors.js";

/** A decoding failure: `code` is a codec's string-literal union, `offset` a byte position. */
export interface DecodeError<C extends string = string> {
  readonly code: C;
  readonly offset: number;
}

/** Shorthand for `err({ code, offset })`. */
export function decodeErr<C extends string>(code: C, offset: number): Result<never, DecodeError<C>> {
  return err({ code, offset });
}
