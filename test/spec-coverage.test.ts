// docs/spec-coverage.md is generated from the spec digest and the rule ids cited in code and
// tests; this keeps it current (regenerate with `node scripts/spec-coverage.mjs`), and checks that
// every rule that is not enforced + tested has a reason in docs/spec-reasons.md (and no other does).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

void test("docs/spec-coverage.md matches the code and tests (node scripts/spec-coverage.mjs)", () => {
  const r = spawnSync(process.execPath, [join(ROOT, "scripts", "spec-coverage.mjs"), "--check"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

/** Runs the script with `--check` and another reasons file; returns its exit status and output. */
function checkWithReasons(text: string): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), "spec-reasons-"));
  try {
    const file = join(dir, "reasons.md");
    writeFileSync(file, text);
    const r = spawnSync(
      process.execPath,
      [join(ROOT, "scripts", "spec-coverage.mjs"), "--check", "--reasons", file],
      { cwd: ROOT, encoding: "utf8" },
    );
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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
