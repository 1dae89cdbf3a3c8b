/**
 * Errors, assertions and `Result`.
 *
 * Blame is explicit: malformed input is a value (`Result` with a `DecodeError`), a caller's
 * contract breach throws `UsageError`, a bug throws `InvariantViolation`, a buffer touched by a
 * party that does not own it throws `OwnershipError`. Every error has a stable `code`; tests
 * assert on codes, never on message text.
 */

/** Stable codes of every error class this package throws. */
export type ErrorCode =
  | "ERR_USAGE"
  | "ERR_INVARIANT"
  | "ERR_OWNERSHIP"
  | "ERR_CONFIG"
  | "ERR_SIM_LIVELOCK";

/** Base of every error this package throws. `code` is stable; `message` may change. */
export abstract class StackError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The caller asked for something the contract forbids in the current state. */
export class UsageError extends StackError {
  readonly code = "ERR_USAGE";
}

/** A configuration value is out of range or inconsistent. */
export class ConfigError extends StackError {
  readonly code = "ERR_CONFIG";
}

/** A bug in this package: an internal invariant did not hold. Never caught in src/. */
export class InvariantViolation extends StackError {
  readonly code = "ERR_INVARIANT";
}

/** Throws `InvariantViolation` unless `cond`. Pass a lazy message on hot paths. */
export function assert(cond: boolean, msg: string | (() => string)): asserts cond {
  if (!cond) throw new InvariantViolation(typeof msg === "string" ? msg : msg());
}

/** The default branch of every exhaustive `switch`. */
export function assertNever(value: never, what: string): never {
  throw new InvariantViolation(`unhandled ${what}: ${JSON.stringify(value)}`);
}

/** Either a value or an error, for outcomes that are expected (bad input, refusals). */
export type Result<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };
export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });
