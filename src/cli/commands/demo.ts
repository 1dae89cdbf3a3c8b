/**
 * `chimney demo`: the main job on the embedded simulator, as the shipped seed scenario
 * (scenarios/seed.yaml) tells it. A client and a server exchange data; the server's connection is
 * offloaded; data arrives that the target holds undelivered; the host terminates the offload; the
 * data comes back as BufferedData, is copied, delivered in order ahead of newer data and its NBLs
 * returned. Prints the run's narration, then the scenario's checks: one run, one verdict, the
 * same as `chimney run scenarios/seed.yaml`.
 */
import { join } from "node:path";
import { runScenario, type ScenarioResult } from "../../scenario/run.js";
import type { Scenario } from "../../scenario/schema.js";
import { tcpConfig } from "../../tcp/config.js";
import { CliUsageError } from "../errors.js";
import { packageRoot } from "../package.js";
import { loadScenarioFile } from "./run.js";

/** Options of the demo. */
export interface DemoOptions {
  readonly seed: number;
  /** Bytes the target holds undelivered at the upload (at most `demoHeldMax()`). */
  readonly held?: number | undefined;
  /** Colour output (on a TTY). */
  readonly color?: boolean | undefined;
}

/** What the demo prints and whether everything held. */
export interface DemoOutput {
  readonly lines: string[];
  readonly ok: boolean;
  readonly result: ScenarioResult;
}

/** The scenario the demo runs. */
export function demoScenarioPath(): string {
  return join(packageRoot(), "scenarios", "seed.yaml");
}

/**
 * The most bytes the target can hold undelivered: its receive window, the TCP receive buffer.
 * Beyond it the client cannot send them all while the host refuses them.
 */
export function demoHeldMax(): number {
  return tcpConfig().recvBufferSize;
}

/** The seed scenario with `held` bytes in its held phase (the client's second write phase). */
function withHeld(s: Scenario, held: number): Scenario {
  const [conn, ...rest] = s.connections;
  const phases = conn?.clientWrites ?? [];
  const heldPhase = phases[1];
  if (conn === undefined || heldPhase === undefined)
    throw new CliUsageError(`${demoScenarioPath()}: the demo needs a connection with a held write phase`);
  const clientWrites = phases.map((p, i) => (i === 1 ? { ...p, bytes: held } : p));
  return {
    ...s,
    connections: [
      { ...conn, clientWrites, clientBytes: clientWrites.reduce((n, p) => n + p.bytes, 0) },
      ...rest,
    ],
    expect: { ...s.expect, bufferedDataBytesAtLeast: held },
  };
}

function fmtTime(us: number): string {
  return `${(us / 1000).toFixed(3).padStart(9)} ms`;
}

/** Runs the seed scenario and renders its story. */
export function runDemo(o: DemoOptions): DemoOutput {
  const max = demoHeldMax();
  if (o.held !== undefined && !(Number.isSafeInteger(o.held) && o.held >= 1 && o.held <= max))
    throw new CliUsageError(
      `--held ${o.held}: at most ${max} bytes (the target's receive window: it cannot hold more undelivered)`,
    );
  const loaded = loadScenarioFile(demoScenarioPath());
  const scenario = o.held === undefined ? loaded : withHeld(loaded, o.held);
  const started = performance.now();
  const r = runScenario(scenario, o.seed);
  const elapsed = performance.now() - started;
  const paint = (code: string, s: string) => (o.color === true ? `\x1b[${code}m${s}\x1b[0m` : s);
  const lines: string[] = [];
  lines.push(`chimney demo  seed ${r.seed}  (replay: chimney demo --seed ${r.seed})`);
  lines.push(`${scenario.name}: ${scenario.description} (scenarios/seed.yaml)`);
  lines.push("");
  for (const n of r.timeline.narration) {
    const tag = /^[ab]: /.test(n.text)
      ? paint("36", "chimney")
      : n.text.startsWith("schedule:")
        ? paint("35", "host   ")
        : paint("33", "app    ");
    lines.push(`${fmtTime(n.atUs)}  ${tag}  ${n.text}`);
  }
  lines.push("");
  for (const c of r.checks) {
    lines.push(`  ${c.ok ? paint("32", "ok  ") : paint("31", "FAIL")}  ${c.name.padEnd(34)} ${c.detail}`);
  }
  lines.push("");
  lines.push(
    r.passed
      ? paint(
          "32",
          `verified: no byte lost, duplicated or reordered; all ${r.checks.length} checks hold (${elapsed.toFixed(0)} ms wall clock)`,
        )
      : paint("31", `FAILED (seed ${r.seed}): see the checks above`),
  );
  return { lines, ok: r.passed, result: r };
}
