/**
 * `chimney demo`: the main job on the embedded simulator. A client and a server exchange data;
 * the server's connection is offloaded; data arrives that the target holds undelivered; the host
 * terminates the offload; the data comes back as BufferedData, is copied, delivered in order and
 * its NBLs returned. Prints a narrated timeline, then the verification.
 */
import { createHash } from "node:crypto";
import {
  runSeedScenario,
  type SeedCheck,
  type SeedScenarioResult,
  seedHeldMax,
} from "../../scenario/seed.js";
import { CliUsageError } from "../errors.js";

/** Options of the demo. */
export interface DemoOptions {
  readonly seed: number;
  /** Bytes the target holds undelivered at the upload (at most `seedHeldMax()`). */
  readonly held?: number | undefined;
  /** Colour output (on a TTY). */
  readonly color?: boolean | undefined;
}

/** What the demo prints and whether everything held. */
export interface DemoOutput {
  readonly lines: string[];
  readonly ok: boolean;
  readonly result: SeedScenarioResult;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function fmtTime(us: number): string {
  return `${(us / 1000).toFixed(3).padStart(9)} ms`;
}

/** Runs the seed scenario and renders its story. */
export function runDemo(o: DemoOptions): DemoOutput {
  const max = seedHeldMax();
  if (o.held !== undefined && !(Number.isSafeInteger(o.held) && o.held >= 1 && o.held <= max))
    throw new CliUsageError(
      `--held ${o.held}: at most ${max} bytes (the target's receive window: it cannot hold more undelivered)`,
    );
  const started = performance.now();
  const r = runSeedScenario({ seed: o.seed, held: o.held });
  const elapsed = performance.now() - started;
  const paint = (code: string, s: string) => (o.color === true ? `\x1b[${code}m${s}\x1b[0m` : s);
  const lines: string[] = [];
  lines.push(`chimney demo  seed ${r.seed}  (replay: chimney demo --seed ${r.seed})`);
  lines.push("");
  for (const s of r.timeline) {
    const tag =
      s.kind === "chimney"
        ? paint("36", "chimney")
        : s.kind === "app"
          ? paint("33", "app    ")
          : paint("35", "check  ");
    lines.push(`${fmtTime(s.atUs)}  ${tag}  ${s.step}${s.detail === "" ? "" : `: ${s.detail}`}`);
  }
  lines.push("");
  // The verdicts are the scenario's own checks; the demo only adds the streams' hashes.
  const hashes: Partial<Record<SeedCheck["id"], string>> = {
    "client-stream": `sha256 ${sha(r.clientWrote).slice(0, 16)} written / ${sha(r.serverRead).slice(0, 16)} read`,
    "server-stream": `sha256 ${sha(r.serverWrote).slice(0, 16)} written / ${sha(r.clientRead).slice(0, 16)} read`,
  };
  for (const c of r.checks) {
    const detail = hashes[c.id] === undefined ? c.detail : `${c.detail}, ${hashes[c.id]}`;
    lines.push(`  ${c.ok ? paint("32", "ok  ") : paint("31", "FAIL")}  ${c.name.padEnd(31)} ${detail}`);
  }
  const ok = r.ok;
  lines.push("");
  lines.push(
    ok
      ? paint("32", `verified: no byte lost, duplicated or reordered (${elapsed.toFixed(0)} ms wall clock)`)
      : paint("31", `FAILED (seed ${r.seed}): see the checks above`),
  );
  return { lines, ok, result: r };
}
