/**
 * The differential report: every script of a Linux suite against the running kernel and against
 * our stack under the Linux profile, side by side. Where exactly one of them passes, the other's
 * first failure is the first place the two differ on the script's terms: the packet (or call)
 * that the passing side produced as written and the failing side did not.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { runScript, type ScriptResult } from "./dut.js";
import { runScriptOnKernel } from "./kernel.js";

/** How one side ended: passed, failed, or could not run the script (a feature it lacks). */
export type SideOutcome = "pass" | "fail" | "unsupported";

/** One script's two outcomes. */
export interface DifferentialRow {
  readonly file: string;
  readonly linux: SideOutcome;
  readonly ours: SideOutcome;
  /** Each side's first failure (or what it lacks), when it did not pass. */
  readonly linuxMessage: string | undefined;
  readonly oursMessage: string | undefined;
  /**
   * Where exactly one side passed: the other side and its first failure (for a packet, the
   * script line, the packet expected and the one that came).
   */
  readonly firstDifference: { readonly side: "linux" | "ours"; readonly message: string } | undefined;
}

/** The outcome of one side's result. */
export function sideOutcome(r: ScriptResult): SideOutcome {
  if (r.passed) return "pass";
  return r.failure === "unsupported" ? "unsupported" : "fail";
}

/** What a side that did not pass says: its message, or the feature it lacks. */
function sideMessage(r: ScriptResult): string | undefined {
  if (r.passed) return undefined;
  if (r.failure === "unsupported") return `unsupported: ${r.unsupported ?? r.message ?? ""}`;
  return r.message ?? "";
}

/** Puts one script's two results side by side. */
export function compareResults(file: string, linux: ScriptResult, ours: ScriptResult): DifferentialRow {
  const l = sideOutcome(linux);
  const o = sideOutcome(ours);
  const linuxMessage = sideMessage(linux);
  const oursMessage = sideMessage(ours);
  let firstDifference: DifferentialRow["firstDifference"];
  if (l === "pass" && o !== "pass") firstDifference = { side: "ours", message: oursMessage ?? "" };
  else if (o === "pass" && l !== "pass") firstDifference = { side: "linux", message: linuxMessage ?? "" };
  return { file, linux: l, ours: o, linuxMessage, oursMessage, firstDifference };
}

/** Options of `runDifferential`. */
export interface DifferentialOptions {
  /** Seed of our stack's run of each script (default 1). */
  readonly seed?: number | undefined;
  /** Called after each script (progress). */
  readonly onRow?: ((row: DifferentialRow) => void) | undefined;
}

/**
 * Runs each of `scripts` (paths relative to `dir`) on the kernel, then on our stack under the
 * Linux profile. Root only (the kernel side; see `kernelModeUnavailable`).
 */
export function runDifferential(
  dir: string,
  scripts: readonly string[],
  o: DifferentialOptions = {},
): DifferentialRow[] {
  const rows: DifferentialRow[] = [];
  for (const file of scripts) {
    const text = readFileSync(join(dir, file), "utf8");
    const linux = runScriptOnKernel(text, { file, dir: dirname(join(dir, file)) });
    const ours = runScript(text, { file, seed: o.seed, profile: "linux" });
    const row = compareResults(file, linux, ours);
    rows.push(row);
    o.onRow?.(row);
  }
  return rows;
}

/** Counts of a differential run. */
export interface DifferentialTotals {
  readonly scripts: number;
  readonly bothPass: number;
  readonly linuxOnly: number;
  readonly oursOnly: number;
  readonly bothFail: number;
  /** Scripts one side (or both) could not run. */
  readonly unsupported: number;
}

export function differentialTotals(rows: readonly DifferentialRow[]): DifferentialTotals {
  const count = (f: (r: DifferentialRow) => boolean): number => rows.filter(f).length;
  return {
    scripts: rows.length,
    bothPass: count((r) => r.linux === "pass" && r.ours === "pass"),
    linuxOnly: count((r) => r.linux === "pass" && r.ours !== "pass"),
    oursOnly: count((r) => r.ours === "pass" && r.linux !== "pass"),
    bothFail: count((r) => r.linux === "fail" && r.ours === "fail"),
    unsupported: count((r) => r.linux === "unsupported" || r.ours === "unsupported"),
  };
}

/** One line per script (`linux=... ours=... file`, then the first difference), and the totals. */
export function formatDifferential(rows: readonly DifferentialRow[]): string {
  const lines: string[] = [];
  for (const r of rows) {
    let line = `linux=${r.linux.padEnd(11)} ours=${r.ours.padEnd(11)} ${r.file}`;
    if (r.firstDifference !== undefined)
      line += `\n    first difference (${r.firstDifference.side}): ${r.firstDifference.message}`;
    else if (r.linux !== "pass" && r.ours !== "pass")
      line += `\n    linux: ${r.linuxMessage ?? ""}\n    ours:  ${r.oursMessage ?? ""}`;
    lines.push(line);
  }
  const t = differentialTotals(rows);
  lines.push(
    `differential: ${t.scripts} scripts; both pass ${t.bothPass}, only Linux passes ${t.linuxOnly}, ` +
      `only ours passes ${t.oursOnly}, both fail ${t.bothFail}; ${t.unsupported} unsupported on one side or both`,
  );
  return lines.join("\n");
}
