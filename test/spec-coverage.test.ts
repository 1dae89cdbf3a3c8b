// docs/spec-coverage.md is generated from the rule catalogue docs/spec-rules.md and the rule ids
// cited in code and tests; this keeps it current (regenerate with `node scripts/spec-coverage.mjs`),
// checks that every rule that is not enforced + tested has a reason in docs/spec-reasons.md (and no
// other does), and checks the catalogue against the chimney spec digest when that digest is beside
// the repository (../shared/spec/chimney.md, or env CHIMNEY_SPEC_DIGEST).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCRIPT = join(ROOT, "scripts", "spec-coverage.mjs");

/** A digest path that does not exist, to show which runs do without the digest. */
const NO_DIGEST = join(tmpdir(), "chimney-no-such-dir", "chimney.md");

/** Runs the script with `args`; returns its exit status and everything it printed. */
function run(args: readonly string[], env: NodeJS.ProcessEnv = {}): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Calls `body` with a fresh temporary directory, removed afterwards. */
function withTempDir<T>(body: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "spec-coverage-"));
  try {
    return body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void test("docs/spec-coverage.md matches the code and tests (node scripts/spec-coverage.mjs)", () => {
  // The digest is never read for coverage: a missing one changes nothing.
  const r = run(["--check"], { CHIMNEY_SPEC_DIGEST: NO_DIGEST });
  assert.equal(r.status, 0, r.out);
});

const CATALOGUE = readFileSync(join(ROOT, "docs", "spec-rules.md"), "utf8");

/** The catalogue's rows, read here independently of the script. */
const catalogueRows = [
  ...CATALOGUE.matchAll(/^\| ([A-Z][A-Z0-9]*-\d+[a-z]?) \| ([^|]+) \| ([^|]+) \|$/gm),
].map((m) => ({ id: m[1] ?? "", level: m[2] ?? "", statement: m[3] ?? "" }));

void test("docs/spec-coverage.md shows each rule's level and statement from docs/spec-rules.md", () => {
  assert.ok(catalogueRows.length >= 200, `${String(catalogueRows.length)} catalogue rows`);
  assert.equal(new Set(catalogueRows.map((r) => r.id)).size, catalogueRows.length, "ids are unique");
  const coverage = readFileSync(join(ROOT, "docs", "spec-coverage.md"), "utf8");
  for (const r of catalogueRows) {
    assert.ok(
      coverage.includes(`\n| ${r.id} | ${r.level} | ${r.statement} |`),
      `${r.id}: its catalogue row is not in docs/spec-coverage.md`,
    );
  }
});

void test("--check fails on a malformed catalogue: duplicate id, unknown level, empty statement", () => {
  const first = catalogueRows[0];
  assert.ok(first !== undefined);
  const broken = [
    CATALOGUE,
    "## 99. Broken",
    "",
    "| id | level | rule |",
    "|---|---|---|",
    `| ${first.id} | ${first.level} | the same id again |`,
    "| ZZ-1 | PERHAPS | a level that is none of the five |",
    "| ZZ-2 | MUST |  |",
    "| ZZ-3 | MUST | a row with | four cells |",
    "",
  ].join("\n");
  const r = withTempDir((dir) => {
    const file = join(dir, "rules.md");
    writeFileSync(file, broken);
    return run(["--check", "--catalogue", file]);
  });
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, new RegExp(`${first.id}: listed twice`));
  assert.match(r.out, /ZZ-1: level "PERHAPS" does not start with one of MUST, SHOULD/);
  assert.match(r.out, /ZZ-2: no statement/);
  assert.match(r.out, /ZZ-3: a rule row has three cells/);
});

/** Runs the script with `--check` and another reasons file; returns its exit status and output. */
function checkWithReasons(text: string): { status: number | null; out: string } {
  return withTempDir((dir) => {
    const file = join(dir, "reasons.md");
    writeFileSync(file, text);
    return run(["--check", "--reasons", file]);
  });
}

void test("a rule counts as tested only through the name of a test or suite citing its id, never a comment or helper", () => {
  const coverage = readFileSync(join(ROOT, "docs", "spec-coverage.md"), "utf8");
  const names = new Map<string, string>();
  /** The test and suite names of `file`, with ranges such as TM-14..TM-16 written out. */
  const namesOf = (file: string): string => {
    const known = names.get(file);
    if (known !== undefined) return known;
    const text = readFileSync(join(ROOT, file), "utf8");
    const found: string[] = [];
    for (const m of text.matchAll(/\b(?:test|it|describe)\(\s*(["'`])((?:(?!\1)[^\\]|\\.)*)\1/g)) {
      const name = m[2] ?? "";
      found.push(name);
      for (const r of name.matchAll(/([A-Z][A-Z0-9]*)-(\d+)\.\.([A-Z][A-Z0-9]*)-(\d+)/g)) {
        for (let n = Number(r[2]) + 1; n < Number(r[4]); n++) found.push(`${r[1] ?? ""}-${n}`);
      }
    }
    const all = found.join("\n");
    names.set(file, all);
    return all;
  };
  let checked = 0;
  for (const m of coverage.matchAll(
    /^\| ([A-Z][A-Z0-9]*-\d+[a-z]?) \|(?:[^|]|\\\|)*\|(?:[^|]|\\\|)*\|[^|]*\| ([^|]*) \|/gm,
  )) {
    const id = m[1] ?? "";
    const tested = [...(m[2] ?? "").matchAll(/`([^`]+)`/g)].map((f) => f[1] ?? "");
    for (const file of tested) {
      const cites = new RegExp(`(?<![A-Za-z0-9_-])${id}(?![A-Za-z0-9_])`).test(namesOf(file));
      assert.ok(cites, `${id} is listed as tested in ${file}, but no test or suite name there cites it`);
      checked++;
    }
  }
  assert.ok(checked >= 200, `${String(checked)} (rule, test file) pairs checked`);
});

/** What scripts/test-assertions.mjs reports for one file. */
interface ReadTests {
  readonly file: string;
  readonly tests: readonly { readonly name: string; readonly asserts: boolean }[];
  readonly directives: readonly string[];
}

/** scripts/test-assertions.mjs's reading of `files` (name -> text), written to a temporary directory. */
async function readTestsOf(files: Record<string, string>): Promise<ReadTests[]> {
  const url = pathToFileURL(join(ROOT, "scripts", "test-assertions.mjs")).href;
  const mod = (await import(url)) as { readTests: (files: readonly string[]) => ReadTests[] };
  const dir = mkdtempSync(join(tmpdir(), "spec-coverage-"));
  try {
    const paths = Object.entries(files).map(([name, text]) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    });
    return mod.readTests(paths);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void test("a test name counts only when that test asserts: directly, by a throw, or through a helper that does", async () => {
  const [a, b] = await readTestsOf({
    "a.test.ts": [
      'import assert from "node:assert/strict";',
      'import { describe, test } from "node:test";',
      'import { checkAll } from "./support.js";',
      'void test("XX-1 asserts directly", () => { assert.equal(1, 1); });',
      'void test("XX-2 only computes", () => { const x = [1, 2].map((n) => n * 2); void x; });',
      'void test("XX-3 throws on a mismatch", () => { if (Math.random() > 2) throw new Error("no"); });',
      'void test("XX-4 through a helper two calls deep", () => { checkAll([1]); });',
      'void test("XX-5 a todo", { todo: true });',
      'void describe("XX-6 suite", () => { void test("inner, silent", () => { void 0; }); void test("inner, checked", async () => { await ledger.assertQuiescent(); }); });',
      'void test("XX-7 expected is not expect", () => { const expected = [1]; expected.push(2); });',
      "// @ts-expect-error XX-8: a number is not a string",
      "const s: string = 5;",
    ].join("\n"),
    "support.ts": [
      "function checkOne(n: number): void { if (n !== 1) throw new Error(`bad ${n}`); }",
      "export function checkAll(xs: number[]): void { for (const x of xs) checkOne(x); }",
    ].join("\n"),
  });
  assert.ok(a !== undefined && b !== undefined);
  assert.deepEqual(
    a.tests.map((t) => [t.name, t.asserts]),
    [
      ["XX-1 asserts directly", true],
      ["XX-2 only computes", false],
      ["XX-3 throws on a mismatch", true],
      ["XX-4 through a helper two calls deep", true],
      ["XX-5 a todo", false],
      ["XX-6 suite inner, silent", false],
      ["XX-6 suite inner, checked", true],
      ["XX-7 expected is not expect", false],
    ],
  );
  assert.deepEqual(a.directives, [" XX-8: a number is not a string"]);
  assert.deepEqual(b.tests, []);
});

const REASONS = readFileSync(join(ROOT, "docs", "spec-reasons.md"), "utf8");

void test("--check fails when a rule that is not enforced + tested has no reason", () => {
  const first = /^([A-Z][A-Z0-9]*-\d+[a-z]?): /m.exec(REASONS)?.[1];
  assert.ok(first !== undefined, "the reasons file has entries");
  const without = REASONS.split("\n")
    .filter((l) => !l.startsWith(`${first}: `))
    .join("\n");
  const r = checkWithReasons(without);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, new RegExp(`${first}: .*no reason`));
});

void test("--check fails on a reason left for an enforced + tested rule, a duplicate or an unknown id", () => {
  // IO-6 (the target indicates nothing before the initiate completes) is enforced and tested.
  const stale = checkWithReasons(`${REASONS}\nIO-6: stale\n`);
  assert.equal(stale.status, 1, stale.out);
  assert.match(stale.out, /IO-6: enforced \+ tested now/);
  const line = REASONS.split("\n").find((l) => /^[A-Z][A-Z0-9]*-\d+[a-z]?: /.test(l)) ?? "";
  const dup = checkWithReasons(`${REASONS}\n${line}\n`);
  assert.equal(dup.status, 1, dup.out);
  assert.match(dup.out, /two reasons/);
  const unknown = checkWithReasons(`${REASONS}\nZZ-999: no such rule\n`);
  assert.equal(unknown.status, 1, unknown.out);
  assert.match(unknown.out, /ZZ-999: has a reason but is not a rule/);
  assert.equal(checkWithReasons(REASONS).status, 0);
});

// A made-up digest in the digest's format (bullet rules and a table rule) and catalogues to
// compare with it, so that the cross-check is exercised without the real digest.
const TOY_DIGEST = [
  "# Toy digest",
  "",
  "## 2. Widgets *(src: widgets.md)*",
  "",
  "* **WG-1** (MUST, OT) The widget is painted blue on every weekday of the year. *(src: paint.md)*",
  "* **WG-2** (SHOULD NOT, HS) flip the widget over. **WG-3** (FACT) Widgets have two sides.",
  "",
  "## 3. Gadgets",
  "",
  "| # | Rule | Strength | Source |",
  "|---|---|---|---|",
  "| GD-1 | A gadget is never wound while it sleeps. | HOST-GUARANTEE (OT must cope) | gadgets.md |",
  "",
].join("\n");

const toyCatalogue = (rows: readonly string[]): string =>
  [
    "# Toy rules",
    "",
    ...rows.flatMap((r) =>
      r.startsWith("## ") ? ["", r, "", "| id | level | rule |", "|---|---|---|"] : [r],
    ),
    "",
  ].join("\n");

const TOY_MATCHING = [
  "## 2. Widgets",
  "| WG-1 | MUST, OT | Widgets get blue paint, weekends included. |",
  "| WG-2 | SHOULD NOT, HS | The host leaves widgets the right way up. |",
  "| WG-3 | FACT | A widget has a front and a back. |",
  "## 3. Gadgets",
  "| GD-1 | HOST-GUARANTEE (OT must cope) | Sleeping gadgets are not wound. |",
];

/** Runs `--cross-check` on the toy digest and a toy catalogue made of `rows`. */
function crossCheckToy(rows: readonly string[]): { status: number | null; out: string } {
  return withTempDir((dir) => {
    const digest = join(dir, "digest.md");
    const catalogue = join(dir, "rules.md");
    writeFileSync(digest, TOY_DIGEST);
    writeFileSync(catalogue, toyCatalogue(rows));
    return run(["--cross-check", "--spec", digest, "--catalogue", catalogue]);
  });
}

void test("--cross-check passes when the catalogue has the digest's ids, levels and sections", () => {
  const r = crossCheckToy(TOY_MATCHING);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /matches the spec digest .*: 4 rules/);
});

void test("--cross-check reports a missing or extra id, another level or section, and copied wording", () => {
  const r = crossCheckToy([
    "## 2. Widgets",
    "| WG-1 | MUST, OT | The widget is painted blue on every weekday of the year. |",
    "| WG-2 | SHOULD, HS | The host leaves widgets the right way up. |",
    "| WG-9 | FACT | A rule the digest does not have. |",
    "## 3. Gizmos",
    "| GD-1 | HOST-GUARANTEE (OT must cope) | Sleeping gadgets are not wound. |",
  ]);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /WG-1: the statement copies the digest's words/);
  assert.match(r.out, /WG-2: level "SHOULD, HS" here, "SHOULD NOT, HS" in the digest/);
  assert.match(r.out, /WG-3 \(FACT; 2\. Widgets\): a rule of the digest missing from/);
  assert.match(r.out, /WG-9: in .* but not a rule of the digest/);
  assert.match(r.out, /GD-1: in section "3\. Gizmos" here, "3\. Gadgets" in the digest/);
  assert.match(r.out, /5 problem\(s\)/);
});

void test("--cross-check without the digest explains where it is looked for instead of failing on ENOENT", () => {
  for (const r of [
    run(["--cross-check", "--spec", NO_DIGEST]),
    run(["--cross-check"], { CHIMNEY_SPEC_DIGEST: NO_DIGEST }),
  ]) {
    assert.equal(r.status, 2, r.out);
    assert.ok(r.out.includes(`spec digest not found: ${NO_DIGEST}`), r.out);
    assert.match(
      r.out,
      /\.\.\/shared\/spec\/chimney\.md beside it, or from --spec <path> or env CHIMNEY_SPEC_DIGEST/,
    );
    assert.doesNotMatch(r.out, /ENOENT|node:internal/);
  }
});

void test("docs/spec-rules.md matches the spec digest beside the repository (ids, levels, sections)", (t) => {
  const fromEnv = process.env["CHIMNEY_SPEC_DIGEST"];
  const digest =
    fromEnv !== undefined && fromEnv !== "" ? fromEnv : join(ROOT, "..", "shared", "spec", "chimney.md");
  if (!existsSync(digest)) {
    const missing = `spec digest not found at ${digest} (../shared/spec/chimney.md beside the repository, or env CHIMNEY_SPEC_DIGEST)`;
    if (process.env["CHIMNEY_REQUIRE_PEER_SUITE"] === "1")
      assert.fail(`${missing}; CHIMNEY_REQUIRE_PEER_SUITE=1 requires it`);
    t.skip(`${missing}: the rule catalogue was not cross-checked`);
    return;
  }
  const r = run(["--cross-check", "--spec", digest]);
  assert.equal(r.status, 0, r.out);
});
