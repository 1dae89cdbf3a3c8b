/**
 * A machine without a compiler, for install tests: a temporary directory to use as PATH with
 * node, sh and the basic tools npm and native/build.sh need, but no python3, make or g++.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The directory (use it as the whole PATH) and its removal. */
export interface BarePath {
  readonly dir: string;
  remove(): void;
}

/** Creates the directory. */
export function barePath(): BarePath {
  const dir = mkdtempSync(join(tmpdir(), "chimney-bare-"));
  for (const tool of ["sh", "uname", "dirname", "mktemp", "cat", "rm"]) {
    const found = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim();
    if (found !== "") symlinkSync(found, join(dir, tool));
  }
  symlinkSync(process.execPath, join(dir, "node"));
  return {
    dir,
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
