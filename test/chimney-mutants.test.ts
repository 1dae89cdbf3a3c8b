// Checks that bite (issue #17): every entry of the mutant catalogue (test/mutants/catalogue.ts)
// is a source patch of the compiled target that breaks one chimney rule, and the test named with
// that rule must fail under it while passing on the unpatched tree. A check that cannot fail is
// no check. Each entry runs in a hard-linked copy of dist under the repository (so node_modules
// resolves), two at a time; the patched file is unlinked first, so the original stays intact.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { MUTANTS, NO_MUTANT } from "./mutants/catalogue.js";
import {
  applyEdits,
  editsByFile,
  linkTree,
  literalPattern,
  type Mutant,
  namesRule,
  parseTap,
  replaceLinked,
  restoreLinked,
  type RunResult,
  runTests,
} from "./support/mutants.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DIST = join(ROOT, "dist");
/** Copies of dist live here, inside the repository (git-ignored). */
const SCRATCH = join(ROOT, ".mutants-tmp");
/** Entries run at once (each in its own copy). */
const SLOTS = 2;
/** A run of one test file, patched or not, longer than this is a failure of the entry. */
const RUN_TIMEOUT_MS = 90_000;

const RULE_ROWS = [
  ...readFileSync(join(ROOT, "docs", "spec-rules.md"), "utf8").matchAll(
    /^\| ([A-Z][A-Z0-9]*-\d+[a-z]?) \| ([^|]+) \|/gm,
  ),
].map((m) => ({ id: m[1] ?? "", level: m[2] ?? "" }));

/**
 * The MUST rules of the sections the catalogue covers (ids TM-, RR-, RI-, RC-, DA-, IO-, C-),
 * read from docs/spec-rules.md; a mixed level such as `MUST / SHOULD` counts as MUST.
 */
function mustRules(): string[] {
  const out: string[] = [];
  for (const r of RULE_ROWS) {
    if (/^(TM|RR|RI|RC|DA|IO|C)-\d+$/.test(r.id) && /\bMUST\b/.test(r.level)) out.push(r.id);
  }
  return out;
}

void describe("the mutant catalogue", () => {
  void test("applyEdits fails, naming the entry, when a find occurs twice or not at all", () => {
    assert.equal(applyEdits("e", "f.js", "a b c", [{ find: "b", replace: "x" }]), "a x c");
    assert.throws(() => applyEdits("twice", "f.js", "a b b", [{ find: "b", replace: "x" }]), /twice.*2 time/);
    assert.throws(() => applyEdits("never", "f.js", "a b c", [{ find: "z", replace: "x" }]), /never.*0 time/);
    assert.throws(() => applyEdits("empty", "f.js", "a", [{ find: "", replace: "x" }]), /empty/);
  });

  void test("the TAP reader tells passed, failed and skipped tests apart at any depth", () => {
    const tap = [
      "    ok 1 - TM-9: inner # SKIP test name does not match pattern",
      "    not ok 2 - TM-11: owed ACK",
      "not ok 1 - terminate (spec 11)",
      "ok 2 - RI-3: refused",
    ].join("\n");
    assert.deepEqual(parseTap(tap), {
      passed: ["RI-3: refused"],
      failed: ["TM-11: owed ACK", "terminate (spec 11)"],
    });
  });

  void test("rule ids match whole, or inside an explicit range", () => {
    assert.ok(namesRule("TM-9 / TM-14..TM-16: x", "TM-15"));
    assert.ok(namesRule("C-8 / RC-1", "C-8"));
    assert.ok(!namesRule("TM-11: x", "TM-1"));
    assert.ok(!namesRule("RC-1: x", "C-1"));
  });

  void test("entries are well formed: unique ids, a compiled test named with the entry's rule", () => {
    const ids = new Set<string>();
    for (const m of MUTANTS) {
      assert.ok(!ids.has(m.id), `duplicate id ${m.id}`);
      ids.add(m.id);
      assert.match(m.id, /^[a-z0-9]+(-[a-z0-9]+)*$/, `${m.id}: kebab-case id`);
      assert.ok(
        namesRule(m.test.name, m.rule),
        `${m.id}: test name ${JSON.stringify(m.test.name)} lacks ${m.rule}`,
      );
      assert.ok(existsSync(join(DIST, m.test.file)), `${m.id}: no dist/${m.test.file}`);
      for (const f of editsByFile(m).keys())
        assert.ok(existsSync(join(DIST, "src", f)), `${m.id}: no dist/src/${f}`);
      assert.ok(m.why.length > 0 && !m.why.includes("\n"), `${m.id}: one line of why`);
      assert.ok(
        RULE_ROWS.some((r) => r.id === m.rule),
        `${m.id}: ${m.rule} is not a rule of docs/spec-rules.md`,
      );
    }
  });
  void test("every MUST rule of TM, RR, RI, RC, DA, IO and C has a mutant or a reason it cannot have one", () => {
    const rules = mustRules();
    assert.ok(rules.length >= 30, `only ${rules.length} MUST rules found in docs/spec-rules.md`);
    const covered = new Set(MUTANTS.map((m) => m.rule));
    const excused = new Map(NO_MUTANT.map((n) => [n.rule, n.reason]));
    for (const r of rules) {
      assert.ok(!(covered.has(r) && excused.has(r)), `${r} has a mutant and is listed in NO_MUTANT`);
      assert.ok(covered.has(r) || excused.has(r), `${r}: no mutant, and no reason in NO_MUTANT`);
    }
    for (const [r, reason] of excused) {
      assert.ok(rules.includes(r), `NO_MUTANT lists ${r}, not a MUST rule of these sections`);
      assert.ok(reason.length > 0, `${r}: empty reason`);
    }
  });
});

/** A hard-linked copy of dist per slot, handed to one entry at a time. */
class Slots {
  readonly #free: string[] = [];
  readonly #waiting: ((dir: string) => void)[] = [];
  readonly dirs: string[] = [];

  create(n: number): void {
    for (let i = 0; i < n; i++) {
      const dir = join(SCRATCH, `${process.pid}-${i}`);
      rmSync(dir, { recursive: true, force: true });
      linkTree(DIST, join(dir, "dist"));
      this.dirs.push(dir);
      this.#free.push(dir);
    }
  }

  async use<T>(body: (dir: string) => Promise<T>): Promise<T> {
    const dir = this.#free.pop() ?? (await new Promise<string>((r) => this.#waiting.push(r)));
    try {
      return await body(dir);
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next(dir);
      else this.#free.push(dir);
    }
  }
}

/** Runs `m`'s test in a slot with `m` applied; the slot is restored afterwards. */
async function runMutated(slots: Slots, m: Mutant): Promise<RunResult> {
  const patched = [...editsByFile(m)].map(([file, edits]) => ({
    file,
    text: applyEdits(m.id, file, readFileSync(join(DIST, "src", file), "utf8"), edits),
  }));
  return slots.use(async (dir) => {
    try {
      for (const p of patched) replaceLinked(join(dir, "dist", "src", p.file), p.text);
      return await runTests(join(dir, "dist", m.test.file), literalPattern(m.test.name), {
        cwd: ROOT,
        timeoutMs: RUN_TIMEOUT_MS,
      });
    } finally {
      for (const p of patched) restoreLinked(join(DIST, "src", p.file), join(dir, "dist", "src", p.file));
    }
  });
}

/** Once per test file: the catalogue's tests of that file, on the unpatched tree. */
const baselines = new Map<string, Promise<RunResult>>();
function baseline(file: string): Promise<RunResult> {
  let p = baselines.get(file);
  if (p === undefined) {
    const names = [...new Set(MUTANTS.filter((m) => m.test.file === file).map((m) => m.test.name))];
    p = runTests(join(DIST, file), names.map(literalPattern).join("|"), {
      cwd: ROOT,
      timeoutMs: RUN_TIMEOUT_MS,
    });
    baselines.set(file, p);
  }
  return p;
}

/** The end of a run's output (what survived shows there). */
const tail = (r: RunResult): string => r.output.split("\n").slice(-40).join("\n");

/** The error lines of a run's output (which check failed). */
const errors = (r: RunResult): string =>
  r.output
    .split("\n")
    .filter((l) => /^\s*error:/.test(l))
    .slice(0, 10)
    .join("\n");

void describe("each mutant is killed by the test named with its rule", { concurrency: SLOTS }, () => {
  const slots = new Slots();
  before(() => {
    mkdirSync(SCRATCH, { recursive: true });
    slots.create(SLOTS);
  });
  after(() => {
    for (const d of slots.dirs) rmSync(d, { recursive: true, force: true });
    try {
      rmdirSync(SCRATCH); // only when no other run's copies are left in it
    } catch {
      // another run is using it
    }
  });

  for (const m of MUTANTS) {
    void test(`${m.rule} ${m.id}: ${m.why}`, async (t) => {
      const clean = await baseline(m.test.file);
      assert.ok(
        clean.status === 0 && clean.failed.length === 0,
        `the unpatched tree fails ${m.test.file}:\n${tail(clean)}`,
      );
      assert.ok(
        clean.passed.some((n) => n.includes(m.test.name)),
        `no test of ${m.test.file} is named ${JSON.stringify(m.test.name)}`,
      );
      const r = await runMutated(slots, m);
      assert.ok(!r.timedOut, `${m.id}: ${m.test.file} ran over ${RUN_TIMEOUT_MS} ms`);
      const killers = r.failed.filter((n) => n.includes(m.test.name));
      assert.ok(
        r.status !== 0 && killers.length > 0,
        `${m.id} survived: "${m.test.name}" in ${m.test.file} passed under it\n${tail(r)}`,
      );
      if (m.caughtBy !== undefined) {
        assert.ok(
          r.output.includes(m.caughtBy),
          `${m.id} was killed, but not by the check that should catch it (${JSON.stringify(m.caughtBy)}):\n${errors(r)}`,
        );
      }
      t.diagnostic(`${m.rule} ${m.id}: killed by "${killers[0] ?? ""}"`);
    });
  }
});
