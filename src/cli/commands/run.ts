/**
 * `chimney run SCENARIO`: loads a scenario file (YAML or JSON), runs it on the simulator with a
 * seed and prints the verification; `--pcap`, `--trace`, `--report`, `--timeline` and `--json`
 * write what the run saw. `--timeline` saves the `Timeline` as JSON, the input of
 * `chimney report` (which renders the same page as `--report`). File problems are one line
 * naming the file and the field (exit 2); a failed verification exits 1 with the seed in the
 * message.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { extname } from "node:path";
import { parseDocument } from "yaml";
import { renderTimelineHtml } from "../../report/html.js";
import { runScenario, type ScenarioResult, tcpDefaults } from "../../scenario/run.js";
import { formatScenarioError, type Scenario, validateScenario } from "../../scenario/schema.js";
import { PcapLinkType, PcapWriter } from "../../wire/pcap.js";
import { CliUsageError, EXIT } from "../errors.js";
import { checkOutputFile } from "../output.js";

/** The largest scenario file read (the shipped ones are a few KiB). */
export const MAX_SCENARIO_BYTES = 1 << 20;

/** Options of `chimney run`. */
export interface RunCommandOptions {
  readonly seed: number;
  readonly pcap?: string | undefined;
  readonly trace?: string | undefined;
  readonly report?: string | undefined;
  /** Write the timeline as JSON here (what `chimney report` reads). */
  readonly timeline?: string | undefined;
  readonly json?: boolean | undefined;
  /** Draw a progress bar on stderr (the CLI passes `process.stderr.isTTY`). */
  readonly progress?: boolean | undefined;
  readonly color?: boolean | undefined;
}

/** Reads, parses and validates a scenario file; every problem is a `CliUsageError` naming the file. */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    // A scenario is a small text file: not a device, a FIFO (which would block) or a huge file.
    const st = statSync(path);
    if (!st.isFile()) throw new CliUsageError(`${path}: not a regular file`);
    if (st.size > MAX_SCENARIO_BYTES)
      throw new CliUsageError(`${path}: ${st.size} bytes; a scenario file is at most ${MAX_SCENARIO_BYTES}`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof CliUsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliUsageError(
      `${path}: cannot read (${code === "ENOENT" ? "no such file" : (code ?? String(e))})`,
    );
  }
  return parseScenarioText(text, path);
}

/** Parses scenario text (JSON for `.json`, YAML otherwise) and validates it. */
export function parseScenarioText(text: string, path: string): Scenario {
  let doc: unknown;
  if (extname(path).toLowerCase() === ".json") {
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new CliUsageError(`${path}: not JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  } else {
    const d = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    const first = d.errors[0];
    if (first !== undefined) {
      const pos = first.linePos?.[0];
      const where = pos === undefined ? "" : `line ${pos.line}, column ${pos.col}: `;
      const msg = (first.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
      throw new CliUsageError(`${path}: ${where}YAML syntax error: ${msg}`);
    }
    try {
      doc = d.toJS({ maxAliasCount: 100 }); // an alias "bomb" expands exponentially: refused
    } catch (e) {
      throw new CliUsageError(`${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const v = validateScenario(doc, { tcpDefaults: tcpDefaults() });
  if (!v.ok) throw new CliUsageError(`${path}: ${formatScenarioError(v.error)}`);
  return v.value;
}

/** A progress bar on stderr that shows up only once a run has taken more than a second. */
function progressBar(enabled: boolean): {
  update: (done: number, total: number, nowUs: number) => void;
  done: () => void;
} {
  const started = performance.now();
  let drawn = false;
  let last = 0;
  return {
    update: (done, total, nowUs) => {
      if (!enabled) return;
      const t = performance.now();
      if (t - started < 1000 || t - last < 100) return;
      last = t;
      const frac = Math.min(1, total <= 0 ? 1 : done / total);
      const width = 30;
      const fill = Math.round(frac * width);
      const bar = `${"#".repeat(fill)}${".".repeat(width - fill)}`;
      process.stderr.write(
        `\r[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% of the bytes  ${(nowUs / 1e6).toFixed(3)} s virtual  ${((t - started) / 1000).toFixed(1)} s`,
      );
      drawn = true;
    },
    done: () => {
      if (drawn) process.stderr.write("\r\x1b[2K");
    },
  };
}

function writeOut(path: string, data: string | Uint8Array): void {
  try {
    writeFileSync(path, data);
  } catch (e) {
    throw new CliUsageError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/** The machine-readable result printed by `--json`. */
export function resultJson(file: string, r: ScenarioResult): unknown {
  return {
    scenario: file,
    seed: r.seed,
    verdict: r.passed ? "pass" : "fail",
    checks: r.checks,
    counters: r.counters,
  };
}

/**
 * The summary's count of offloads: initiates the target completed with success (a refused or
 * failed initiate offloaded nothing), with the failures named when there were any.
 */
export function offloadsLine(counters: Readonly<Record<string, number>>): string {
  const done = counters["initiateSuccesses"] ?? 0;
  const failed = counters["initiateFailures"] ?? 0;
  return `${done} offload${done === 1 ? "" : "s"}${failed === 0 ? "" : ` (${failed} initiate${failed === 1 ? "" : "s"} failed)`}`;
}

/** Runs the command; returns the exit code (and writes output to stdout/stderr). */
export function runScenarioCommand(file: string, o: RunCommandOptions): number {
  const scenario = loadScenarioFile(file);
  // Every output file is checked before the run, not found unwritable after it.
  if (o.pcap !== undefined) checkOutputFile(o.pcap, "--pcap");
  if (o.trace !== undefined) checkOutputFile(o.trace, "--trace");
  if (o.report !== undefined) checkOutputFile(o.report, "--report");
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const head = `chimney run ${file}  seed ${o.seed}  (replay: chimney run ${file} --seed ${o.seed})`;
  if (o.json === true) process.stderr.write(`${head}\n`);
  else out(head);
  const pcap = o.pcap === undefined ? undefined : new PcapWriter({ linkType: PcapLinkType.ETHERNET });
  const trace: string[] | undefined = o.trace === undefined ? undefined : [];
  const bar = progressBar(o.progress === true);
  const started = performance.now();
  let r: ScenarioResult;
  try {
    r = runScenario(scenario, o.seed, {
      pcap,
      onTrace: trace === undefined ? undefined : (line) => trace.push(line),
      onProgress: bar.update,
      label: file,
    });
  } finally {
    bar.done();
  }
  const elapsed = performance.now() - started;
  if (pcap !== undefined && o.pcap !== undefined) writeOut(o.pcap, pcap.toBytes());
  if (trace !== undefined && o.trace !== undefined)
    writeOut(o.trace, trace.length === 0 ? "" : `${trace.join("\n")}\n`);
  if (o.report !== undefined) writeOut(o.report, renderTimelineHtml(r.timeline));
  if (o.timeline !== undefined) writeOut(o.timeline, `${JSON.stringify(r.timeline)}\n`);
  const paint = (code: string, s: string) => (o.color === true ? `\x1b[${code}m${s}\x1b[0m` : s);
  if (o.json === true) {
    out(JSON.stringify(resultJson(file, r), null, 2));
  } else {
    out(`${scenario.name}: ${scenario.description}`);
    out("");
    for (const c of r.checks)
      out(`  ${c.ok ? paint("32", "ok  ") : paint("31", "FAIL")}  ${c.name.padEnd(34)} ${c.detail}`);
    out("");
    const ctr = r.counters;
    out(
      `  ${offloadsLine(ctr)}, ${ctr["terminates"] ?? 0} terminates, ${ctr["bufferedDataIn"] ?? 0} bytes of BufferedData in, ${ctr["bufferedDataOut"] ?? 0} out; ${ctr["frames"] ?? 0} frames, ${((ctr["endUs"] ?? 0) / 1000).toFixed(1)} ms virtual, ${elapsed.toFixed(0)} ms wall clock`,
    );
    if (r.passed) out(paint("32", "verified"));
  }
  if (!r.passed) {
    const failed = r.checks.filter((c) => !c.ok).map((c) => c.name);
    process.stderr.write(
      `chimney: verification failed (seed ${o.seed}): ${failed.join(", ")}; replay: chimney run ${file} --seed ${o.seed}\n`,
    );
    return EXIT.FAILED;
  }
  return EXIT.OK;
}
