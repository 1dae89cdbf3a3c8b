// Mutation testing with StrykerJS, one folder at a time (stryker.config.mjs holds the setup).
//
//   npm run mutate                      every folder
//   npm run mutate -- nbl chimney       the folders named
//   CHIMNEY_MUTATE=nbl npm run mutate   the same, from the environment
//   npm run mutate -- --concurrency 1 nbl
//
// Each folder keeps its own incremental file (reports/stryker-incremental-<folder>.json), so a
// second run tests only the mutants whose code or tests changed, and its own report
// (reports/mutation/<folder>.html). The scores per folder are printed at the end.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Stryker } from "@stryker-mutator/core";
import config, { folders } from "../stryker.config.mjs";

const args = process.argv.slice(2);
let concurrency;
const named = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--concurrency") concurrency = Number(args[++i]);
  else named.push(args[i]);
}
if (named.length === 0 && process.env.CHIMNEY_MUTATE) named.push(...process.env.CHIMNEY_MUTATE.split(","));
const chosen = named.length === 0 ? Object.keys(folders) : named;
const unknown = chosen.filter((f) => !(f in folders));
if (unknown.length > 0) {
  console.error(`unknown folder ${unknown.join(", ")}; known: ${Object.keys(folders).join(", ")}`);
  process.exit(2);
}

// The tests run as under `npm test` (scripts/run-tests.mjs): the ledger's loans are revocable.
process.env.CHIMNEY_POISON = "1";

// Surviving mutants that no test can kill (they change nothing observable), each with a reason.
// An entry matches every survivor with its file, mutator, replacement and source line. The list
// only shrinks: an entry that matches no survivor of a folder that ran fails the run.
const equivalents = JSON.parse(readFileSync("stryker-equivalent.json", "utf8")).mutants;
const key = (e) => `${e.file}|${e.mutator}|${e.replacement}|${e.code}`;

/**
 * Stryker's mutation score from a JSON report (mutation-testing-report-schema: lines count from 1):
 * detected (killed or timed out) over every mutant that ran or had no test; and the same without
 * the survivors stryker-equivalent.json lists.
 */
export function score(report) {
  const all = Object.entries(report.files).flatMap(([file, f]) => {
    const lines = f.source.split("\n");
    return f.mutants.map((m) => ({ ...m, file, code: (lines[m.location.start.line - 1] ?? "").trim() }));
  });
  const count = (...statuses) => all.filter((m) => statuses.includes(m.status)).length;
  const detected = count("Killed", "Timeout");
  const valid = detected + count("Survived", "NoCoverage");
  const listed = new Set(equivalents.map(key));
  const used = new Set();
  const unlisted = [];
  let equivalent = 0;
  for (const m of all.filter((m) => m.status === "Survived" || m.status === "NoCoverage")) {
    const k = key({ file: m.file, mutator: m.mutatorName, replacement: m.replacement, code: m.code });
    if (listed.has(k)) {
      used.add(k);
      equivalent++;
    } else {
      unlisted.push(
        `${m.file}:${m.location.start.line} ${m.status} ${m.mutatorName}: \`${m.code}\` -> ${m.replacement}`,
      );
    }
  }
  const percent = (d, v) => (v === 0 ? 100 : (100 * d) / v);
  return {
    detected,
    valid,
    survived: count("Survived"),
    noCoverage: count("NoCoverage"),
    percent: percent(detected, valid),
    equivalent,
    adjusted: percent(detected, valid - equivalent),
    unlisted,
    used,
  };
}

// Each folder runs in a process of its own: Stryker merges its options into the config module's
// exported object in place, so a second run in the same process starts from the first run's
// options (and fails while merging them).
const one = process.env.CHIMNEY_MUTATE_ONE;
if (one !== undefined) {
  const folder = folders[one];
  await new Stryker({
    ...config,
    configFile: "stryker.config.mjs",
    mutate: folder.mutate,
    tap: { ...config.tap, testFiles: folder.tests },
    incrementalFile: `reports/stryker-incremental-${one}.json`,
    tempDirName: `.stryker-tmp/${one}`,
    htmlReporter: { fileName: `reports/mutation/${one}.html` },
    jsonReporter: { fileName: `reports/mutation/${one}.json` },
    ...(concurrency === undefined ? {} : { concurrency }),
  }).runMutationTest();
  process.exit(0);
}

const scores = [];
for (const name of chosen) {
  console.log(`\n== mutate ${name} ==`);
  const r = spawnSync(
    process.execPath,
    [process.argv[1], ...(concurrency === undefined ? [] : ["--concurrency", String(concurrency)])],
    {
      stdio: "inherit",
      env: { ...process.env, CHIMNEY_MUTATE_ONE: name },
    },
  );
  if (r.status !== 0) {
    console.error(`mutate ${name}: stryker failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
  const report = JSON.parse(readFileSync(`reports/mutation/${name}.json`, "utf8"));
  scores.push({ name, ...score(report) });
}

for (const s of scores) {
  if (s.unlisted.length === 0) continue;
  console.log(`\n${s.name}: ${s.unlisted.length} surviving mutant(s) not listed as equivalent:`);
  for (const u of s.unlisted) console.log(`  ${u}`);
}
console.log("\nmutation score per folder (killed + timeout) / (killed + timeout + survived + no coverage):");
for (const s of scores) {
  console.log(
    `  ${s.name.padEnd(16)} ${s.percent.toFixed(2).padStart(6)}%  ${s.detected}/${s.valid}  survived ${s.survived}, no coverage ${s.noCoverage};` +
      ` without the ${s.equivalent} listed equivalent(s): ${s.adjusted.toFixed(2)}%`,
  );
}
const ran = new Set(chosen.flatMap((name) => folders[name].mutate.filter((g) => !g.startsWith("!"))));
const stale = equivalents.filter(
  (e) => [...ran].some((g) => e.file.startsWith(g.split("*")[0])) && !scores.some((s) => s.used.has(key(e))),
);
if (stale.length > 0) {
  console.error("\nstryker-equivalent.json lists mutants that no longer survive; remove them:");
  for (const e of stale) console.error(`  ${e.file} ${e.mutator}: ${e.replacement} in \`${e.code}\``);
  process.exitCode = 1;
}
