/**
 * What the CLI writes outside itself. Output files: every file or folder option is checked
 * before a run starts (its folder exists and is writable), so a typo costs nothing instead of a
 * finished run. Standard output: a reader that goes away early (`chimney decode x.pcap | head`)
 * ends the command quietly with exit 0, as `cat` and tcpdump do, instead of an EPIPE stack.
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CliUsageError } from "./errors.js";

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** The nearest existing ancestor of `path` (the path itself if it exists). */
function nearestExisting(path: string): string {
  let p = resolve(path);
  for (;;) {
    try {
      statSync(p);
      return p;
    } catch {
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}

function checkWritableDir(dir: string, option: string, shown: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    throw new CliUsageError(`${option} ${shown}: folder ${dir} does not exist (${errnoOf(e)})`);
  }
  if (!isDir) throw new CliUsageError(`${option} ${shown}: ${dir} is not a folder`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new CliUsageError(`${option} ${shown}: folder ${dir} is not writable (${errnoOf(e)})`);
  }
}

/**
 * Checks that `path` can be created or overwritten as a file: its folder exists and is writable
 * and the path is not a folder. Throws `CliUsageError` naming the option otherwise.
 */
export function checkOutputFile(path: string, option: string): void {
  let existing: ReturnType<typeof statSync> | undefined;
  try {
    existing = statSync(path);
  } catch {
    existing = undefined;
  }
  if (existing?.isDirectory() === true) throw new CliUsageError(`${option} ${path}: is a folder, not a file`);
  checkWritableDir(dirname(resolve(path)), option, path);
  if (existing !== undefined) {
    try {
      accessSync(path, constants.W_OK);
    } catch (e) {
      throw new CliUsageError(`${option} ${path}: not writable (${errnoOf(e)})`);
    }
  }
}

/**
 * Checks that `path` is a writable folder or can be created as one (its nearest existing
 * ancestor is a writable folder). Throws `CliUsageError` naming the option otherwise.
 */
export function checkOutputDir(path: string, option: string): void {
  checkWritableDir(nearestExisting(path), option, path);
}

let stdoutClosed = false;
let hooked = false;

/**
 * From now on, a closed standard output (EPIPE) ends the process with exit 0 and no message.
 * Idempotent. Other write errors are reported as usual.
 */
export function exitQuietlyOnClosedStdout(): void {
  if (hooked) return;
  hooked = true;
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    stdoutClosed = true;
    // The reader has what it wanted; nothing more to say. Exit hooks (cleanups) still run.
    process.exit(0);
  });
}

/** True once standard output was found closed (long writers stop early). */
export function isStdoutClosed(): boolean {
  return stdoutClosed || process.stdout.destroyed;
}
