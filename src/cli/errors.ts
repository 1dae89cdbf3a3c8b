/**
 * How the CLI fails: one clear line on stderr (`chimney: ...`), the detail only with --verbose,
 * and exit codes that mean something.
 */
import { StackError } from "../util/errors.js";

/** Exit codes of every command. */
export const EXIT = {
  /** Done, and every verification held. */
  OK: 0,
  /** The run finished but a verification failed (bytes differ, ledger not quiescent, ...). */
  FAILED: 1,
  /** Bad arguments or input files: nothing ran. */
  USAGE: 2,
  /** An internal error: a bug in chimney. */
  INTERNAL: 3,
} as const;

/** A problem with what the user gave us: a bad file, a bad value. */
export class CliUsageError extends Error {
  readonly exitCode = EXIT.USAGE;
}

/** Prints an error as one line (plus the stack with `verbose`) and returns its exit code. */
export function reportError(e: unknown, verbose: boolean): number {
  const line = (msg: string) => process.stderr.write(`chimney: ${msg}\n`);
  if (e instanceof CliUsageError) {
    line(e.message);
    return EXIT.USAGE;
  }
  if (e instanceof StackError) {
    line(`${e.code}: ${e.message}`);
  } else if (e instanceof Error) {
    line(e.message);
  } else {
    line(String(e));
  }
  if (verbose && e instanceof Error && e.stack !== undefined) process.stderr.write(`${e.stack}\n`);
  else process.stderr.write("chimney: run with --verbose for details\n");
  return EXIT.INTERNAL;
}
