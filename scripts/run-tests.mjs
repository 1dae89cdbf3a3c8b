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
// Tests whose goals are timings against the wall clock (the soak's slowdown ratios, the kernel
// hand-off sessions' stall limits) run after the rest, one at a time, so that no other test
// file shares the two cores with them. Everything else runs two files at a time. (A hand-off
// session beside the worker race stress once stalled for 30 s after a move into our stack,
// having read 40 frames from its TAP device: not reproduced alone or under a CPU burner.
// kernel-adopt has failed four times in about forty runs beside another file, never alone: a
// RST frame crossed the link during the move while neither kernel counted one out; a race
// still to find, see the closing notes.)
const SOLO = [
  "soak.test.js",
  "kernel-adopt.test.js",
  "kernel-move.test.js",
  "kernel-roundtrip.test.js",
  "kernel-target.test.js",
  "cli-handoff.test.js",
  "conformance-kernel.test.js",
  "cli-conformance-kernel.test.js",
];
const solo = chosen.filter((f) => SOLO.some((s) => f.endsWith(s)));
const shared = chosen.filter((f) => !solo.includes(f));
// CHIMNEY_POISON=1: the buffer ledger's loans are revocable (a borrower that kept views of lent
// bytes reads poison afterwards; see LedgerOptions.poisonLoans).
function run(files, concurrency) {
  if (files.length === 0) return 0;
  const r = spawnSync(process.execPath, ["--test", `--test-concurrency=${concurrency}`, ...files], {
    stdio: "inherit",
    env: { ...process.env, CHIMNEY_POISON: "1" },
  });
  return r.status ?? 1;
}
const first = run(shared, 2);
const second = run(solo, 1);
if (solo.length > 0 && shared.length > 0) {
  console.log(
    `# ${shared.length} files two at a time: ${first === 0 ? "pass" : "FAIL"}; ` +
      `${solo.length} timing-sensitive files alone: ${second === 0 ? "pass" : "FAIL"}`,
  );
}
process.exit(first !== 0 ? first : second);
