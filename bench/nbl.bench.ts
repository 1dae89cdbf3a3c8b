/**
 * Micro-benchmarks for src/nbl: ledger transfers (the per-send / per-completion cost on the data
 * path) and `copyOut` over 1460-byte MDLs, reported as a ratio to one contiguous
 * `Uint8Array.prototype.set` of the same bytes measured in the same run.
 *
 * Case names follow `area/op size`; `run(filter)` runs the cases whose name matches `filter` (all if
 * `undefined`), and a selected `copyOut` case always brings its `set` baseline along.
 */
import { Bench } from "tinybench";
import { copyOut, fromArrays, linkNbls } from "../src/nbl/chain.js";
import { BufferLedger } from "../src/nbl/ledger.js";
import type { NetBufferList } from "../src/nbl/nbl.js";

/** Ledger operations per tinybench iteration, so the timer's own cost does not dominate. */
const BATCH = 200;
/** The MSS-sized MDLs a receive path would chain. */
const MDL_BYTES = 1460;

interface Case {
  readonly name: string;
  /** Operations per call of `fn` (the reported time is per operation). */
  readonly ops: number;
  readonly fn: () => void;
  /** Name of the case this one is reported as a ratio to. */
  readonly baseline?: string;
}

/** Runs the selected cases and prints one line per case (time per operation, and ratios). */
export async function run(filter: RegExp | undefined): Promise<void> {
  const cases = [...transferCases(), ...copyCases()];
  const wanted = new Set(cases.filter((c) => filter === undefined || filter.test(c.name)).map((c) => c.name));
  for (const c of cases) if (wanted.has(c.name) && c.baseline !== undefined) wanted.add(c.baseline);
  const chosen = cases.filter((c) => wanted.has(c.name));
  if (chosen.length === 0) return;

  const bench = new Bench({ name: "nbl", time: 400, warmupTime: 100 });
  for (const c of chosen) bench.add(c.name, c.fn);
  await bench.run();

  const perOp = new Map<string, number>();
  const rme = new Map<string, number>();
  for (const c of chosen) {
    const r = bench.getTask(c.name)?.result;
    if (r === undefined || !("latency" in r)) {
      console.log(
        `${c.name.padEnd(34)} failed: ${r !== undefined && "error" in r ? String(r.error) : "no result"}`,
      );
      continue;
    }
    perOp.set(c.name, (r.latency.mean * 1e6) / c.ops);
    rme.set(c.name, r.latency.rme);
  }
  for (const c of chosen) {
    const ns = perOp.get(c.name);
    if (ns === undefined) continue;
    const base = c.baseline === undefined ? undefined : perOp.get(c.baseline);
    const ratio = base === undefined ? "" : `  ${(ns / base).toFixed(2)}x ${c.baseline ?? ""}`;
    const spread = `±${(rme.get(c.name) ?? 0).toFixed(1)}%`;
    console.log(`${c.name.padEnd(34)} ${formatNs(ns).padStart(12)}/op ${spread.padStart(7)}${ratio}`);
  }
}

/** One send plus its completion per pair: `transfer` host->target, then `return` target->host. */
function transferCases(): Case[] {
  return [1, 16].map((links) => {
    const ledger = new BufferLedger();
    const nbls: NetBufferList[] = [];
    for (let i = 0; i < links; i++) nbls.push(ledger.alloc("host", fromArrays([new Uint8Array(MDL_BYTES)])));
    const chain = linkNbls(nbls) as NetBufferList; // links >= 1
    return {
      name: `nbl/transfer ${links}-NBL chain`,
      ops: BATCH,
      fn: () => {
        for (let i = 0; i < BATCH / 2; i++) {
          ledger.transfer(chain, "host", "target", "MiniportTcpOffloadSend");
          ledger.return(chain, "target", "NdisTcpOffloadSendComplete");
        }
      },
    };
  });
}

/** `copyOut` of a chain of 1460-byte MDLs versus one `set` of a contiguous copy of the same bytes. */
function copyCases(): Case[] {
  return [
    ["64KiB", 64 * 1024],
    ["1MiB", 1024 * 1024],
  ].flatMap(([label, size]) => {
    const bytes = size as number;
    const source = new Uint8Array(bytes).map((_, i) => i & 0xff);
    const pieces: Uint8Array[] = [];
    for (let off = 0; off < bytes; off += MDL_BYTES)
      pieces.push(source.subarray(off, Math.min(off + MDL_BYTES, bytes)));
    const chain = fromArrays(pieces);
    const dest = new Uint8Array(bytes);
    const set = `nbl/set ${String(label)} contiguous`;
    return [
      { name: set, ops: 1, fn: () => dest.set(source) },
      {
        name: `nbl/copyOut ${String(label)} (1460B MDLs)`,
        ops: 1,
        fn: () => copyOut(chain, 0, dest, 0, bytes),
        baseline: set,
      },
    ];
  });
}

function formatNs(ns: number): string {
  return ns >= 1e6
    ? `${(ns / 1e6).toFixed(2)} ms`
    : ns >= 1e3
      ? `${(ns / 1e3).toFixed(2)} us`
      : `${ns.toFixed(1)} ns`;
}
