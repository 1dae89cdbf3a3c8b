// Runs every compiled test file with node's test runner. Node 20 has no glob for --test,
// so the files are listed here (helpers under test/support are not tests).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const roots = ["dist/src", "dist/test"];
const files = [];
for (const root of roots) {
  let entries = [];
  try {
    entries = readdirSync(root, { recursive: true, encoding: "utf8" });
  } catch {
    continue;
  }
  for (const f of entries) if (f.endsWith(".test.js")) files.push(join(root, f));
}
files.sort();
const filter = process.argv.slice(2);
const chosen = filter.length === 0 ? files : files.filter((f) => filter.some((p) => f.includes(p)));
if (chosen.length === 0) {
  console.error(`no test files match ${filter.join(" ")}`);
  process.exit(1);
}
// CHIMNEY_POISON=1: the buffer ledger's loans are revocable (a borrower that kept views of lent
// bytes reads poison afterwards; see LedgerOptions.poisonLoans).
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=2", ...chosen], {
  stdio: "inherit",
  env: { ...process.env, CHIMNEY_POISON: "1" },
});
process.exit(r.status ?? 1);
