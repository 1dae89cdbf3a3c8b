/**
 * Where the chimney package lives and what it is called, found from this module's own location
 * (not the working directory): the nearest folder above it with a package.json is the package
 * root, in a checkout (`dist/src/cli/` is under it) and when installed under node_modules alike.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../conformance/peer-suite.js";

/** The package root: the nearest folder above the modules with a package.json. */
export const packageRoot = repoRoot;

/** The `version` field of the package's package.json. */
export function packageVersion(): string {
  const json: unknown = JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8"));
  const v = typeof json === "object" && json !== null ? (json as { version?: unknown }).version : undefined;
  if (typeof v !== "string") throw new Error("the package's package.json has no version");
  return v;
}
