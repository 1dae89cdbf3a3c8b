// docs/spec-coverage.md is generated from the spec digest and the rule ids cited in code and
// tests; this keeps it current (regenerate with `node scripts/spec-coverage.mjs`).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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
