/**
 * Runs a folder of packetdrill scripts in-process against our stack and summarises the
 * outcome per folder. This is what the CLI's conformance command calls.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { PcapLinkType, PcapWriter } from "../../wire/pcap.js";
import type { TcpConfig } from "../../tcp/config.js";
import type { DutMode } from "./device.js";
import { type FailureKind, runScript, type ScriptResult } from "./dut.js";
import { runScriptOnKernel } from "./kernel.js";
import type { KnownFailure } from "./known-failures.js";
import type { ProfileName } from "./profile.js";

/** Options of `runConformance`. */
export interface ConformanceOptions {
  /** Only scripts whose path (relative to `dir`) starts with one of these folders. */
  readonly folders?: readonly string[] | undefined;
  /** Only scripts whose path contains this text. */
  readonly filter?: string | undefined;
  /** Seed of each script's stack (default 1). */
  readonly seed?: number | undefined;
  /** Overrides of the TCP defaults, under each script's sysctls. */
  readonly tcp?: Partial<TcpConfig> | undefined;
  /** When set, a pcap (raw IP) of every failing script is written under this directory. */
  readonly pcapDir?: string | undefined;
  /** The known-failures list, to classify results (see `known-failures.ts`). */
  readonly known?: ReadonlyMap<string, KnownFailure> | undefined;
  /** Host stack alone (default) or offloaded connections (see `RunScriptOptions.mode`). */
  readonly mode?: DutMode | undefined;
  /** Offload mode: the target's state-operation delay (see `RunScriptOptions.offloadDelayUs`). */
  readonly offloadDelayUs?: number | undefined;
  /** Whose environment the scripts were written for (default `freebsd`, see `profile.ts`). */
  readonly profile?: ProfileName | undefined;
  /**
   * The device under test: `stack` (default), ours on virtual time; `kernel`, the running Linux
   * kernel on real time (`kernel.ts`; the Linux profile's scripts, root only).
   */
  readonly against?: DutKind | undefined;
}

/** The devices under test there are: our stack, or the running Linux kernel. */
export const DUT_KINDS = ["stack", "kernel"] as const;

/** A device under test (`ConformanceOptions.against`). */
export type DutKind = (typeof DUT_KINDS)[number];

/**
 * How one script ended, relative to the known-failures list. `unsupported`: it needs a feature we
 * lack (`features.ts`), whether listed or not; it is not run past that point.
 */
export type Verdict = "pass" | "fail" | "known-failure" | "unexpected-pass" | "unsupported";

/** One script's result and verdict. */
export interface ConformanceResult extends ScriptResult {
  readonly verdict: Verdict;
  /** The pcap written for it, if any. */
  readonly pcap: string | undefined;
}

/** Counts for one folder. */
export interface FolderSummary {
  readonly folder: string;
  readonly total: number;
  readonly pass: number;
  readonly fail: number;
  readonly knownFailure: number;
  readonly unexpectedPass: number;
  readonly unsupported: number;
  /** Scripts that did not pass, by the kind of their first failure (unsupported ones included). */
  readonly byKind: Readonly<Partial<Record<FailureKind, number>>>;
}

/** Everything a run produced. */
export interface ConformanceRun {
  readonly results: readonly ConformanceResult[];
  readonly folders: readonly FolderSummary[];
  readonly elapsedMs: number;
}

/** Every `*.pkt` under `dir`, as sorted paths relative to it with `/` separators. */
export function listScripts(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".pkt"))
    .map((f) => f.split(sep).join("/"))
    .sort();
}

/** Runs the scripts under `dir` (a packetdrill suite checkout) and classifies each result. */
export function runConformance(dir: string, options: ConformanceOptions = {}): ConformanceRun {
  const started = performance.now();
  const folders = options.folders;
  const scripts = listScripts(dir).filter(
    (p) =>
      (folders === undefined || folders.some((f) => p.startsWith(`${f}/`))) &&
      (options.filter === undefined || p.includes(options.filter)),
  );
  const results: ConformanceResult[] = [];
  for (const path of scripts) {
    const text = readFileSync(join(dir, path), "utf8");
    const wantPcap = options.pcapDir !== undefined;
    const r =
      options.against === "kernel"
        ? runScriptOnKernel(text, { file: path, dir: dirname(join(dir, path)) })
        : runScript(text, {
            file: path,
            seed: options.seed,
            tcp: options.tcp,
            capture: wantPcap,
            mode: options.mode,
            offloadDelayUs: options.offloadDelayUs,
            profile: options.profile,
          });
    const listed = options.known?.has(path) ?? false;
    const verdict: Verdict = r.passed
      ? listed
        ? "unexpected-pass"
        : "pass"
      : r.failure === "unsupported"
        ? "unsupported"
        : listed
          ? "known-failure"
          : "fail";
    let pcap: string | undefined;
    if (!r.passed && options.pcapDir !== undefined) {
      pcap = join(options.pcapDir, path.replace(/\.pkt$/, ".pcap"));
      const w = new PcapWriter({ linkType: PcapLinkType.RAW });
      for (const f of r.frames) w.append(f.time, f.bytes);
      mkdirSync(dirname(pcap), { recursive: true });
      writeFileSync(pcap, w.toBytes());
    }
    results.push({ ...r, frames: [], verdict, pcap });
  }
  return summarize(results, performance.now() - started);
}

/** The per-folder counts of `results` (a run, or a subset of one the CLI ran itself). */
export function summarize(results: readonly ConformanceResult[], elapsedMs: number): ConformanceRun {
  const byFolder = new Map<string, ConformanceResult[]>();
  for (const r of results) {
    const folder = r.file.split("/")[0] ?? "";
    const list = byFolder.get(folder) ?? [];
    list.push(r);
    byFolder.set(folder, list);
  }
  const folders = [...byFolder].map(([folder, rs]) => ({
    folder,
    total: rs.length,
    pass: rs.filter((r) => r.verdict === "pass").length,
    fail: rs.filter((r) => r.verdict === "fail").length,
    knownFailure: rs.filter((r) => r.verdict === "known-failure").length,
    unexpectedPass: rs.filter((r) => r.verdict === "unexpected-pass").length,
    unsupported: rs.filter((r) => r.verdict === "unsupported").length,
    byKind: countKinds(rs),
  }));
  return { results, folders, elapsedMs };
}

function countKinds(rs: readonly ConformanceResult[]): Partial<Record<FailureKind, number>> {
  const out: Partial<Record<FailureKind, number>> = {};
  for (const r of rs) if (r.failure !== undefined) out[r.failure] = (out[r.failure] ?? 0) + 1;
  return out;
}

/** The failure kinds, in the order the by-folder table shows them. */
export const FAILURE_KINDS: readonly FailureKind[] = [
  "unsupported",
  "runner",
  "packet",
  "timing",
  "syscall",
  "assert",
  "stack",
  "parse",
];

/** Every top-level folder of a suite that holds scripts, sorted. */
export function suiteFolders(dir: string): string[] {
  return [...new Set(listScripts(dir).map((p) => p.split("/")[0] ?? ""))].filter((f) => f !== "").sort();
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * The per-folder table of a run with the scripts that did not pass split by the kind of their
 * first failure (`FailureKind`), a total row, and the unsupported scripts by feature.
 */
export function formatByFolder(run: ConformanceRun): string {
  const head = ["folder", "scripts", "pass", "known", ...FAILURE_KINDS.map((k) => `x-${k}`), "pass%"];
  const rows: string[][] = [head];
  const total = { scripts: 0, pass: 0, known: 0, kinds: {} as Partial<Record<FailureKind, number>> };
  for (const f of run.folders) {
    const passed = f.pass + f.unexpectedPass;
    total.scripts += f.total;
    total.pass += passed;
    total.known += f.knownFailure;
    for (const k of FAILURE_KINDS) total.kinds[k] = (total.kinds[k] ?? 0) + (f.byKind[k] ?? 0);
    rows.push([
      f.folder,
      String(f.total),
      String(passed),
      String(f.knownFailure),
      ...FAILURE_KINDS.map((k) => String(f.byKind[k] ?? 0)),
      ((100 * passed) / Math.max(1, f.total)).toFixed(1),
    ]);
  }
  rows.push([
    "all",
    String(total.scripts),
    String(total.pass),
    String(total.known),
    ...FAILURE_KINDS.map((k) => String(total.kinds[k] ?? 0)),
    ((100 * total.pass) / Math.max(1, total.scripts)).toFixed(1),
  ]);
  const features = new Map<string, number>();
  for (const r of run.results) {
    if (r.unsupported !== undefined) features.set(r.unsupported, (features.get(r.unsupported) ?? 0) + 1);
  }
  const lines = [
    table(rows),
    "(x-KIND: scripts whose first failure is of that kind; known: of those, listed in a known-failures file)",
  ];
  if (features.size > 0) {
    lines.push(
      `unsupported: ${[...features]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .map(([f, n]) => `${f} ${n}`)
        .join(", ")}`,
    );
  }
  return lines.join("\n");
}

/** A fixed-width table of the per-folder counts, for logs. */
export function formatSummary(run: ConformanceRun): string {
  const rows = [["folder", "scripts", "pass", "fail", "known", "unsupported", "unexpected-pass", "pass%"]];
  for (const f of run.folders) {
    const passed = f.pass + f.unexpectedPass;
    rows.push([
      f.folder,
      String(f.total),
      String(f.pass),
      String(f.fail),
      String(f.knownFailure),
      String(f.unsupported),
      String(f.unexpectedPass),
      ((100 * passed) / Math.max(1, f.total)).toFixed(1),
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")).join("\n");
}

/**
 * One line per script (`pass`, `FAIL: message`, `known failure`, `unsupported: what`...) and a
 * total line, for runs short enough to read script by script (the kernel mode's).
 */
export function formatPerScript(run: ConformanceRun): string {
  const lines = run.results.map((r) => {
    switch (r.verdict) {
      case "pass":
        return `pass ${r.file}`;
      case "unsupported":
        return `unsupported ${r.file}: ${r.unsupported ?? ""}`;
      default:
        return `${r.verdict === "fail" ? "FAIL" : r.verdict} ${r.file}: ${r.message ?? ""}`;
    }
  });
  const n = (v: Verdict): number => run.results.filter((r) => r.verdict === v).length;
  const applicable = run.results.length - n("unsupported");
  const passed = n("pass") + n("unexpected-pass");
  lines.push(
    `total: ${run.results.length} scripts, ${passed} pass, ${n("fail")} fail, ${n("known-failure")} known failure(s), ` +
      `${n("unsupported")} unsupported; ${passed} of ${applicable} applicable pass ` +
      `(${((100 * passed) / Math.max(1, applicable)).toFixed(1)}%)`,
  );
  return lines.join("\n");
}

/** A path for messages: `p` relative to `base` when inside it. */
export function displayPath(base: string, p: string): string {
  const r = relative(base, p);
  return r.startsWith("..") ? p : r;
}
