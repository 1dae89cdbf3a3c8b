/**
 * `chimney conformance [DIR]`: runs a packetdrill suite against our stack, prints the pass / fail /
 * known-failure table per folder and exits 1 on a failure the known-failures list does not name, or on a listed script that passed.
 * With `--offload` every connection runs offloaded once established; the expected failures are
 * then known-failures.txt plus known-failures-offload.txt (the chimney contract's differences).
 *
 * With `--against kernel` (and `--profile linux`) the scripts run against the running Linux kernel
 * instead (root only; runner/kernel.ts), one line per script and a total line; the expected
 * failures are known-failures-kernel.txt. DIR may then also be one script.
 *
 * With `--against both` (`--profile linux`, root) each script runs on the kernel and on our stack
 * under the Linux profile, and the differential report (runner/differential.ts) says per script
 * which passed and, where only one did, the other's first difference. A report: it exits 0
 * unless it cannot run.
 *
 * Without DIR the suite is the FreeBSD one that src/conformance/peer-suite.ts finds
 * (`$CHIMNEY_PEER_SUITE`, else ../shared/peer-tests beside the repository). A missing suite is a
 * usage error (exit 2) with a hint on where the suite comes from and how to point us at it.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { kernelModeUnavailable } from "../../conformance/runner/kernel.js";
import { formatDifferential, runDifferential } from "../../conformance/runner/differential.js";
import {
  FREEBSD_SUITE_ORIGIN,
  findPeerSuite,
  PEER_SUITE_ENV,
  PEER_SUITE_FOLDERS,
} from "../../conformance/peer-suite.js";
import type { DutMode } from "../../conformance/runner/device.js";
import { PROFILE_NAMES, type ProfileName } from "../../conformance/runner/profile.js";
import type { ScriptResult } from "../../conformance/runner/dut.js";
import {
  applyingToKernel,
  checkKnownFailures,
  type KnownFailure,
  parseKnownFailures,
  type ScriptOutcome,
} from "../../conformance/runner/known-failures.js";
import {
  type ConformanceResult,
  type ConformanceRun,
  formatByFolder,
  DUT_KINDS,
  type DutKind,
  formatPerScript,
  formatSummary,
  listScripts,
  suiteFolders,
  runConformance,
  summarize,
} from "../../conformance/runner/run.js";
import { CliUsageError, EXIT } from "../errors.js";
import { checkOutputDir } from "../output.js";
import { packageRoot } from "../package.js";

/** Options of `chimney conformance`. */
export interface ConformanceCommandOptions {
  /** Write a pcap of every failing script under this directory. */
  readonly pcap?: string | undefined;
  /** Only scripts whose path (relative to the suite) matches this regular expression. */
  readonly filter?: string | undefined;
  /** Only scripts under these top-level folders of the suite. */
  readonly folder?: readonly string[] | undefined;
  readonly seed?: number | undefined;
  /** Offloaded mode (see `RunScriptOptions.mode`). */
  readonly offload?: boolean | undefined;
  /** Offloaded mode: the target's state-operation delay in microseconds (default 0). */
  readonly offloadDelay?: number | undefined;
  /** Print the per-folder table split by failure kind (`formatByFolder`). */
  readonly byFolder?: boolean | undefined;
  /** Whose environment the scripts were written for (default freebsd). */
  readonly profile?: string | undefined;
  /** The device under test: stack (default) or kernel (the running Linux kernel, root only). */
  readonly against?: string | undefined;
}

/**
 * The folders of the FreeBSD suite that hold scripts: all of them (snippets/ holds runnable
 * scripts too; fast-open/ and tcp-over-udp/ run, and are classified unsupported until those
 * features exist). Without `--folder` the command runs every folder of its suite.
 */
export const DEFAULT_FOLDERS: readonly string[] = [
  "fast-open",
  "rcv-data-segments",
  "rcv-icmp",
  "snd-syn",
  "snippets",
  "socket-api",
  "state-event-engine",
  "tcp-over-udp",
];

/** Where the suite lives unless given: see `findPeerSuite` (`$CHIMNEY_PEER_SUITE`, else ../shared). */
export function defaultSuiteDir(): string {
  return findPeerSuite("freebsd").dir;
}

/** What to do when the suite is missing: where it comes from and how to point us at it. */
export const MISSING_SUITE_HINT =
  `hint: the suite is ${FREEBSD_SUITE_ORIGIN}; pass its checkout as DIR, or set ${PEER_SUITE_ENV} ` +
  `to a folder holding ${PEER_SUITE_FOLDERS.freebsd}/ (default ../shared/peer-tests beside the repository)`;

/** The known-failures files of a mode, relative to the repository root. */
export function knownFailureFiles(mode: DutMode | "kernel"): string[] {
  if (mode === "kernel") return [join("src", "conformance", "known-failures-kernel.txt")];
  const host = join("src", "conformance", "known-failures.txt");
  return mode === "offload" ? [host, join("src", "conformance", "known-failures-offload.txt")] : [host];
}

/** The expected failures of a mode: the host list, plus the offload list in offload mode. */
export function loadKnownFailures(mode: DutMode | "kernel"): Map<string, KnownFailure> {
  const out = new Map<string, KnownFailure>();
  for (const rel of knownFailureFiles(mode)) {
    const parsed = parseKnownFailures(readFileSync(join(packageRoot(), rel), "utf8"), rel);
    if (!parsed.ok) throw new CliUsageError(parsed.error);
    for (const [path, k] of parsed.value) {
      if (out.has(path))
        throw new CliUsageError(`${rel}:${k.line}: ${path} is already listed in another list`);
      out.set(path, k);
    }
  }
  return out;
}

/** Totals of the chimney's activity over a run (offload mode). */
export interface OffloadSummary {
  readonly initiates: number;
  readonly initiateFailures: number;
  readonly terminates: number;
  /** Scripts in which at least one connection ran offloaded. */
  readonly scriptsOffloaded: number;
}

/** Sums the per-script offload activity of `results`. */
export function offloadSummary(results: readonly ScriptResult[]): OffloadSummary {
  let initiates = 0;
  let initiateFailures = 0;
  let terminates = 0;
  let scriptsOffloaded = 0;
  for (const r of results) {
    const a = r.offload;
    if (a === undefined) continue;
    initiates += a.initiates;
    initiateFailures += a.initiateFailures;
    terminates += a.terminates;
    if (a.offloadedConnections > 0) scriptsOffloaded++;
  }
  return { initiates, initiateFailures, terminates, scriptsOffloaded };
}

/** The outcomes a known-failures list is checked against, by script. */
export function outcomesOf(results: readonly ScriptResult[]): Map<string, ScriptOutcome> {
  return new Map(
    results.map((r) => [
      r.file,
      { passed: r.passed, message: r.message, unsupported: r.failure === "unsupported" },
    ]),
  );
}

/** Runs the command and returns its exit code. */
export function conformanceCommand(dirArg: string | undefined, o: ConformanceCommandOptions): number {
  // The arguments first (an output folder that cannot be written), then the suite they run on.
  if (o.pcap !== undefined) checkOutputDir(o.pcap, "--pcap");
  let dir: string;
  let single: string | undefined;
  if (dirArg === undefined) {
    const found = findPeerSuite("freebsd");
    if (!found.found) throw new CliUsageError(`${found.reason}\nchimney: ${MISSING_SUITE_HINT}`);
    dir = found.dir;
  } else if (existsSync(dirArg) && statSync(dirArg).isFile() && dirArg.endsWith(".pkt")) {
    // One script: its folder is the suite, its name the filter.
    dir = dirname(dirArg);
    single = basename(dirArg);
  } else {
    dir = dirArg;
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new CliUsageError(
        `${dir}: no such directory (a packetdrill suite checkout)\nchimney: ${MISSING_SUITE_HINT}`,
      );
    }
  }
  let re: RegExp | undefined;
  if (o.filter !== undefined) {
    try {
      re = new RegExp(o.filter);
    } catch (e) {
      throw new CliUsageError(
        `--filter: not a regular expression (${e instanceof Error ? e.message : String(e)})`,
      );
    }
  }
  const mode = o.offload === true ? "offload" : "host";
  const profileName = o.profile ?? "freebsd";
  if (!(PROFILE_NAMES as readonly string[]).includes(profileName))
    throw new CliUsageError(`--profile: expected one of ${PROFILE_NAMES.join(", ")}, not ${profileName}`);
  const profile = profileName as ProfileName;
  if (o.offloadDelay !== undefined && mode !== "offload")
    throw new CliUsageError("--offload-delay needs --offload");
  const offloadDelayUs = o.offloadDelay;
  const against = o.against ?? "stack";
  if (!([...DUT_KINDS, "both"] as readonly string[]).includes(against))
    throw new CliUsageError(
      `--against: expected one of ${[...DUT_KINDS, "both"].join(", ")}, not ${against}`,
    );
  const kernel = against === "kernel" || against === "both";
  if (kernel) {
    if (profile !== "linux") throw new CliUsageError(`--against ${against} needs --profile linux`);
    if (mode === "offload") throw new CliUsageError(`--against ${against} and --offload exclude each other`);
    const why = kernelModeUnavailable();
    if (why !== undefined) throw new CliUsageError(`--against ${against}: ${why}`);
  }
  const known = loadKnownFailures(kernel ? "kernel" : mode);
  const started = performance.now();
  let run: ConformanceRun;
  // The suite's test folders; snippets/ holds fragments the other scripts include, not tests.
  // Against the kernel every script under DIR runs, also those directly in it.
  const folders = o.folder ?? (kernel ? undefined : suiteFolders(dir));
  const inFolders = (p: string) => folders === undefined || folders.some((f) => p.startsWith(`${f}/`));
  if (against === "both") {
    const scripts =
      single !== undefined
        ? [single]
        : listScripts(dir).filter((p) => (re === undefined || re.test(p)) && inFolders(p));
    if (scripts.length === 0) throw new CliUsageError(`no script under ${dir} matches`);
    const rows = runDifferential(dir, scripts, { seed: o.seed });
    process.stdout.write(`${formatDifferential(rows)}\n`);
    process.stdout.write(`(${rows.length} scripts in ${(performance.now() - started).toFixed(0)} ms)\n`);
    return EXIT.OK;
  }
  if (single !== undefined) {
    const one = runConformance(dir, { known, filter: single, profile, against: against as DutKind });
    run = summarize(
      one.results.filter((r) => r.file === single),
      performance.now() - started,
    );
  } else if (re === undefined) {
    run = runConformance(dir, {
      known,
      pcapDir: o.pcap,
      seed: o.seed,
      folders,
      mode,
      offloadDelayUs,
      profile,
      against: against as DutKind,
    });
    if (run.results.length === 0)
      throw new CliUsageError(`--folder ${folders?.join(" ") ?? ""}: no script under ${dir}`);
  } else {
    const wanted = listScripts(dir).filter((p) => re.test(p) && inFolders(p));
    if (wanted.length === 0) throw new CliUsageError(`--filter ${o.filter}: matches no script under ${dir}`);
    const results: ConformanceResult[] = [];
    for (const path of wanted) {
      const one = runConformance(dir, {
        known,
        pcapDir: o.pcap,
        seed: o.seed,
        filter: path,
        mode,
        offloadDelayUs,
        profile,
        against: against as DutKind,
      });
      results.push(...one.results.filter((r) => r.file === path));
    }
    run = summarize(results, performance.now() - started);
  }
  if (kernel) {
    process.stdout.write(`${formatPerScript(run)}\n`);
    const k = applyingToKernel(run.results, known);
    if (k.excluded > 0)
      process.stdout.write(
        `${k.excluded} applicable script(s) fail under packetdrill itself on this kernel too ` +
          `('packetdrill too:' in known-failures-kernel.txt); of the ${k.applicable} that apply to this kernel, ` +
          `${k.passed} pass (${((100 * k.passed) / Math.max(1, k.applicable)).toFixed(1)}%)\n`,
      );
  } else process.stdout.write(`${o.byFolder === true ? formatByFolder(run) : formatSummary(run)}\n`);
  process.stdout.write(`(${run.results.length} scripts in ${run.elapsedMs.toFixed(0)} ms)\n`);
  if (mode === "offload") {
    const a = offloadSummary(run.results);
    process.stdout.write(
      `offload: ${a.initiates} initiate(s), ${a.initiateFailures} failed, ${a.terminates} terminate(s); ` +
        `${a.scriptsOffloaded} of ${run.results.length} scripts ran a connection offloaded\n`,
    );
  }
  // Only the scripts that ran are compared: a filtered run says nothing about the others.
  const check = checkKnownFailures(outcomesOf(run.results), known);
  const byFile = new Map(run.results.map((r) => [r.file, r]));
  for (const f of check.newFailures) {
    const r = byFile.get(f);
    process.stdout.write(
      `new failure: ${f}: ${r?.message ?? ""}${r?.pcap === undefined ? "" : ` (pcap ${r.pcap})`}\n`,
    );
  }
  for (const f of check.unexpectedPasses) {
    const where = known.get(f)?.line;
    const list = kernel
      ? "known-failures-kernel.txt"
      : mode === "offload"
        ? "known-failures.txt or known-failures-offload.txt"
        : "known-failures.txt";
    process.stdout.write(
      `unexpected pass (remove it from ${list}${where === undefined ? "" : `, line ${where}`}): ${f}\n`,
    );
  }
  for (const f of check.passedSometimes)
    process.stdout.write(`passed this time (listed as failing sometimes): ${f}\n`);
  // Against the kernel (real time) a listed script may fail another way from run to run: said, not failed.
  const changed = kernel ? [] : check.changed;
  for (const c of check.changed) {
    const where = known.get(c.path)?.line;
    process.stdout.write(
      `changed failure (line ${String(where)}): ${c.path}\n  expected: ${c.expected}\n  got:      ${c.got}\n`,
    );
  }
  for (const f of check.stale) {
    if (run.results.some((r) => r.file === f)) process.stdout.write(`listed but unsupported: ${f}\n`);
  }
  const staleRun = check.stale.filter((f) => run.results.some((r) => r.file === f));
  if (
    check.newFailures.length > 0 ||
    check.unexpectedPasses.length > 0 ||
    changed.length > 0 ||
    staleRun.length > 0
  ) {
    process.stderr.write(
      `chimney: conformance: ${check.newFailures.length} new failure(s), ${check.unexpectedPasses.length} unexpected pass(es), ${changed.length} changed failure(s)\n`,
    );
    return EXIT.FAILED;
  }
  return EXIT.OK;
}
