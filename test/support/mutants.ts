// The mutant runner's machinery (test/chimney-mutants.test.ts; the entries are in
// test/mutants/catalogue.ts): patch compiled files by exact text, run a test file of a patched
// copy of dist with a name pattern, and read node's TAP output to tell a killed mutant from one
// that survived or a pattern that matched nothing.
import { spawn } from "node:child_process";
import { linkSync, mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** One replacement: `find` must occur exactly once in the file. */
export interface Edit {
  readonly find: string;
  readonly replace: string;
}

/** An edit of another compiled file than the entry's own (relative to dist/src). */
export interface FileEdit extends Edit {
  readonly file: string;
}

/** A hand-written mutant: a source patch of the compiled target that breaks one rule. */
export interface Mutant extends Edit {
  /** Unique, kebab-case. */
  readonly id: string;
  /** The rule it breaks (`docs/spec-rules.md`). */
  readonly rule: string;
  /** The compiled file the edit applies to, relative to dist/src. */
  readonly file: string;
  /** Further edits the same mutant needs (same file unless `file` says otherwise). */
  readonly also?: readonly (Edit & { readonly file?: string })[];
  /** The test that must kill it: a compiled test file relative to dist, and a name. */
  readonly test: {
    readonly file: string;
    /** A literal part of the test's (or its suite's) name; it carries the rule id. */
    readonly name: string;
  };
  /** Text the killing failure's output must contain: the check that catches it. */
  readonly caughtBy?: string;
  /** One line: what the mutant breaks. */
  readonly why: string;
}

/** A MUST rule without a mutant, and why no source patch can break it. */
export interface NoMutant {
  readonly rule: string;
  readonly reason: string;
}

/** Occurrences of `find` in `text`. */
function occurrences(text: string, find: string): number {
  if (find.length === 0) return Number.POSITIVE_INFINITY;
  let n = 0;
  for (let i = text.indexOf(find); i >= 0; i = text.indexOf(find, i + find.length)) n++;
  return n;
}

/** `text` with `edits` applied in order; throws, naming `entry`, unless each find occurs once. */
export function applyEdits(entry: string, file: string, text: string, edits: readonly Edit[]): string {
  let out = text;
  for (const e of edits) {
    const n = occurrences(out, e.find);
    if (n !== 1) {
      throw new Error(
        `mutant ${entry}: ${JSON.stringify(e.find)} occurs ${n === Number.POSITIVE_INFINITY ? "everywhere (empty)" : n} time(s) in ${file}, expected exactly once`,
      );
    }
    out = out.replace(e.find, () => e.replace);
  }
  return out;
}

/** The edits of `m`, per compiled file (relative to dist/src), in order. */
export function editsByFile(m: Mutant): Map<string, Edit[]> {
  const by = new Map<string, Edit[]>([[m.file, [{ find: m.find, replace: m.replace }]]]);
  for (const e of m.also ?? []) {
    const f = e.file ?? m.file;
    const list = by.get(f) ?? [];
    list.push({ find: e.find, replace: e.replace });
    by.set(f, list);
  }
  return by;
}

/** Escapes `s` for a regular expression. */
export function literalPattern(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Whether `text` names `rule` as a whole id (or inside an explicit range `A-1..A-4`). */
export function namesRule(text: string, rule: string): boolean {
  const m = /^([A-Z]+)-(\d+)$/.exec(rule);
  if (m === null) return false;
  const [, prefix, num] = m;
  if (new RegExp(`(?<![A-Za-z0-9])${literalPattern(rule)}(?![0-9a-z])`).test(text)) return true;
  for (const r of text.matchAll(new RegExp(`\\b${prefix}-(\\d+)\\.\\.${prefix}-(\\d+)\\b`, "g"))) {
    if (Number(r[1]) <= Number(num) && Number(num) <= Number(r[2])) return true;
  }
  return false;
}

/** Hard-links every file of `from` into `to` (a fresh tree of directories). */
export function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const a = join(from, e.name);
    const b = join(to, e.name);
    if (e.isDirectory()) linkTree(a, b);
    else if (e.isFile()) linkSync(a, b);
  }
}

/**
 * Replaces `file` in a hard-linked copy with `text`. The link is removed first: writing through
 * it would change the original as well.
 */
export function replaceLinked(file: string, text: string): void {
  unlinkSync(file);
  writeFileSync(file, text);
}

/** Puts the original back into a hard-linked copy (undoing `replaceLinked`). */
export function restoreLinked(original: string, file: string): void {
  rmSync(file, { force: true });
  linkSync(original, file);
}

/** What one run of a test file told. */
export interface RunResult {
  /** Exit status (null when killed). */
  readonly status: number | null;
  readonly timedOut: boolean;
  /** Names of the passed and failed tests and suites (TAP `ok` / `not ok` lines, any depth). */
  readonly passed: readonly string[];
  readonly failed: readonly string[];
  readonly output: string;
}

/** Reads node's TAP output. */
export function parseTap(output: string): { passed: string[]; failed: string[] } {
  const passed: string[] = [];
  const failed: string[] = [];
  for (const m of output.matchAll(/^\s*(not ok|ok) \d+ - (.*?)( # (?:SKIP|TODO)\b.*)?$/gm)) {
    const name = (m[2] ?? "").replace(/\\#/g, "#");
    if (m[3] !== undefined) continue; // skipped: its name did not match
    if (m[1] === "ok") passed.push(name);
    else failed.push(name);
  }
  return { passed, failed };
}

/** Runs `node --test` on `file` with a name pattern; never rejects. */
export function runTests(
  file: string,
  pattern: string,
  opts: { readonly cwd: string; readonly timeoutMs: number },
): Promise<RunResult> {
  // NODE_TEST_CONTEXT (set when this runs under node --test) would make the child report to a
  // parent runner instead of printing TAP.
  const env: NodeJS.ProcessEnv = { ...process.env, CHIMNEY_POISON: "1" };
  delete env["NODE_TEST_CONTEXT"];
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--test", "--test-reporter=tap", `--test-name-pattern=${pattern}`, file],
      { cwd: opts.cwd, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (output += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (output += s));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, timedOut, ...parseTap(output), output });
    });
  });
}
