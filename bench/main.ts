/**
 * `npm run bench`: runs every micro-benchmark module in turn. Optional arguments are regular
 * expressions; a case runs when its name matches any of them (`npm run bench -- checksum tcp/parse`),
 * and every case of a module runs when the module's name matches (`npm run bench -- '^wire$'`).
 *
 * A bench module exports `run(filter)`; add it to `MODULES` below.
 */
import { arch, cpus, platform } from "node:os";

/** A benchmark module: runs its cases whose names match `filter` (all when undefined) and prints a table. */
export interface BenchModule {
  run(filter: RegExp | undefined): Promise<void>;
}

const MODULES: readonly { readonly name: string; readonly load: () => Promise<BenchModule> }[] = [
  { name: "wire", load: () => import("./wire.bench.js") },
  { name: "nbl", load: () => import("./nbl.bench.js") },
  { name: "stack", load: () => import("./stack.bench.js") },
  { name: "live", load: () => import("./live.bench.js") },
  { name: "chimney", load: () => import("./chimney.bench.js") },
  { name: "recovery", load: () => import("./recovery.bench.js") },
  { name: "loss-grid", load: () => import("./loss-grid.bench.js") },
  { name: "worker", load: () => import("./worker.bench.js") },
  { name: "handoff", load: () => import("./handoff.bench.js") },
];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const filter = args.length === 0 ? undefined : new RegExp(args.join("|"));
  const cpu = cpus();
  console.log(
    `chimney benchmarks: node ${process.version}, ${platform()}/${arch()}, ${cpu.length} cpus (${cpu[0]?.model ?? "unknown"})`,
  );
  if (filter !== undefined) console.log(`cases matching ${String(filter)}`);
  for (const m of MODULES) {
    console.log(`\n== ${m.name}`);
    const mod = await m.load();
    await mod.run(filter?.test(m.name) === true ? undefined : filter);
  }
}

await main();
