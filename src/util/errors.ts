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
  | "ERR_SIM_LIVELOCK"
  | "ERR_SOCKET"
  | "ERR_TARGET_BUSY"
  | "ERR_NATIVE_ADDON_MISSING"
  | "ERR_SIM_TIMEOUT"
  | "ERR_WORKER_TARGET"
  | "ERR_REPAIR"
  | "ERR_KERNEL_MODE";

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

/**
 * Why the `BufferLedger` refused an operation. Stable sub-codes of `ERR_OWNERSHIP`:
 * - `use-after-transfer`: the caller once owned the NBL but has since given it away;
 * - `not-owner`: the caller never owned the NBL;
 * - `on-loan`: the NBL is lent out, so neither side may move or free it (and the lender may not touch it);
 * - `double-return`: the NBL is already back with the party that allocated it;
 * - `double-free`: the NBL was already freed;
 * - `use-after-free`: any other operation on a freed NBL;
 * - `unknown-nbl`: this ledger did not allocate the NBL;
 * - `cycle`: the chain's `next` links loop;
 * - `leak`: NBLs are still live when the run should be quiescent.
 */
export type OwnershipReason =
  | "use-after-transfer"
  | "not-owner"
  | "on-loan"
  | "double-return"
  | "double-free"
  | "use-after-free"
  | "unknown-nbl"
  | "cycle"
  | "leak"
  | "indicate-after-terminate";

/**
 * A buffer was touched, moved, returned or freed by a party that does not own it, or leaked.
 * `nblId` names the first offending NBL (-1 if none); the message carries its history.
 */
export class OwnershipError extends StackError {
  readonly code = "ERR_OWNERSHIP";
  /** Stable sub-code; tests assert on it. */
  readonly reason: OwnershipReason;
  /** The offending NBL's id, or -1 when the error is not about one NBL. */
  readonly nblId: number = 0;
  constructor(reason: OwnershipReason, nblId: number, message: string) {
    super(message);
    this.reason = reason;
    this.nblId = nblId;
  }
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
export type Result<T, E> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };
export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });
