#!/usr/bin/env node
/**
 * Summarizes a V8 CPU profile (`node --cpu-prof` writes *.cpuprofile): self time aggregated by
 * function and file, highest first, with each row's share of the sampled time.
 *
 *   node scripts/cpuprofile-top.mjs <file.cpuprofile> [rows=30]
 */
import { readFileSync } from "node:fs";

const [file, rowsArg] = process.argv.slice(2);
if (file === undefined) {
  console.error("usage: node scripts/cpuprofile-top.mjs <file.cpuprofile> [rows]");
  process.exit(2);
}
const rows = Number(rowsArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map();
for (const n of profile.nodes) byId.set(n.id, n);

// Sample counts per node, weighted by the time delta that follows each sample.
const selfUs = new Map();
const { samples, timeDeltas } = profile;
for (let i = 0; i < samples.length; i++) {
  const dt = timeDeltas[i + 1] ?? 0;
  selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + dt);
}

const agg = new Map();
let total = 0;
let idle = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  const cf = n.callFrame;
  const fileName =
    cf.url === "" ? "" : cf.url.replace(/^.*\/(dist|node_modules)\//, "$1/").replace(/^node:/, "node:");
  const key = `${cf.functionName || "(anonymous)"}  ${fileName}${cf.url === "" ? "" : `:${cf.lineNumber + 1}`}`;
  total += us;
  if (cf.functionName === "(idle)") idle += us;
  agg.set(key, (agg.get(key) ?? 0) + us);
}
const busy = total - idle;
console.log(
  `total ${(total / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms`,
);
console.log("self ms   % busy  function  file:line   (idle excluded)");
for (const [key, us] of [...agg]
  .filter(([key]) => !key.startsWith("(idle)"))
  .sort((a, b) => b[1] - a[1])
  .slice(0, rows)) {
  console.log(`${(us / 1000).toFixed(1).padStart(8)}  ${((us / busy) * 100).toFixed(1).padStart(6)}  ${key}`);
}
