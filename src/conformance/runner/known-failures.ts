/**
 * The checked-in list of scripts expected to fail, and how each one fails. An entry is a script
 * path (relative to the suite), then `# reason`, then on the next line, indented, `= ` and the
 * script's expected first failure, normalised (`normaliseFailure`):
 *
 *     snd-syn/snd-syn-with-ecn-ipv4.pkt  # ECN (RFC 3168) is not implemented ...
 *       = 56: expected > SEW 0:0(0) win 65535 <mss 1460,...> got … [flags want SEW]
 *
 * Blank lines and lines starting with `#` are comments. A run fails on a new failure, on an
 * unexpected pass, and on a listed script that fails for another reason than the one recorded:
 * the list always says exactly what fails, and how. A reason that starts with `sometimes:`
 * marks a script that fails in some runs and passes in others (the kernel mode runs on real
 * time): its pass is said, not failed (`passedSometimes`). A reason that starts with
 * `packetdrill too:` (after `sometimes:`, if both) marks a script that packetdrill itself fails
 * against the running kernel as well (the kernel list): it was written for another kernel, so
 * it does not count among the scripts that apply to this one (`applyingToKernel`).
 */
import { err, ok, type Result } from "../../util/errors.js";

/** One entry of the list. */
export interface KnownFailure {
  readonly path: string;
  readonly reason: string;
  /** The reason starts with `sometimes:`: the script may pass too. */
  readonly sometimes: boolean;
  /** The reason starts with `packetdrill too:`: packetdrill itself fails it on this kernel. */
  readonly referenceFails: boolean;
  /** The expected first failure, normalised (`normaliseFailure`). */
  readonly expect: string;
  readonly line: number;
}

/**
 * A failure message in the form the lists record: without the `file:` prefix (the line number
 * stays), and without the packet we sent in place of the expected one (`got 192.168.0.1.8080 >
 * ...: Flags [S.], seq 2702166590, ...`), whose absolute numbers depend on the seed: what was
 * expected, at which line, and the differences found (`[flags want SEW]`) identify the failure.
 */
export function normaliseFailure(message: string, file?: string): string {
  let m = message.trim();
  if (file !== undefined && m.startsWith(`${file}:`)) m = m.slice(file.length + 1);
  else m = m.replace(/^[^\s:]+\.pkt:/, "");
  // The packet dump after "got", up to the bracketed differences, " at TIME" or the end.
  m = m.replace(
    / got (?:[0-9a-f.:]+ > [0-9a-f.:]+: Flags \[[^\]]*\].*?)(?=( \[[^\]]*\]$)| at \d| \(timing\)|$)/,
    " got …",
  );
  return m.replace(/\s+/g, " ");
}

/** Parses the list; an entry without a reason or an expected failure, or listed twice, is an error. */
export function parseKnownFailures(
  text: string,
  file = "known-failures.txt",
): Result<Map<string, KnownFailure>, string> {
  const out = new Map<string, KnownFailure>();
  const lines = text.split(/\r?\n/);
  let last: { path: string; reason: string; line: number } | undefined;
  const close = (at: number): string | undefined => {
    if (last === undefined) return undefined;
    const l = last;
    last = undefined;
    return `${file}:${l.line}: ${l.path} has no '= expected failure' line after it (line ${at})`;
  };
  for (let i = 0; i < lines.length; i++) {
    const rawLine = lines[i] ?? "";
    const raw = rawLine.trim();
    if (raw.startsWith("= ") || raw === "=") {
      if (last === undefined || !/^\s/.test(rawLine))
        return err(`${file}:${i + 1}: '= expected failure' must follow an entry, indented`);
      const expect = raw.slice(1).trim();
      if (expect === "") return err(`${file}:${i + 1}: ${last.path}: the expected failure is empty`);
      const sometimes = last.reason.startsWith("sometimes:");
      const referenceFails = last.reason.replace(/^sometimes:\s*/, "").startsWith("packetdrill too:");
      out.set(last.path, { ...last, sometimes, referenceFails, expect });
      last = undefined;
      continue;
    }
    if (raw === "" || raw.startsWith("#")) continue;
    const pending = close(i + 1);
    if (pending !== undefined) return err(pending);
    const hash = raw.indexOf("#");
    const path = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    const reason = hash < 0 ? "" : raw.slice(hash + 1).trim();
    if (reason === "") return err(`${file}:${i + 1}: ${path} has no '# reason'`);
    if (out.has(path)) return err(`${file}:${i + 1}: ${path} is listed twice`);
    last = { path, reason, line: i + 1 };
  }
  const pending = close(lines.length);
  if (pending !== undefined) return err(pending);
  return ok(out);
}

/** One entry in the list's format (for writing or updating a list). */
export function formatKnownFailure(path: string, reason: string, message: string): string {
  return `${path}  # ${reason}\n  = ${normaliseFailure(message, path)}`;
}

/** How one script ended, as the list is checked against it. */
export interface ScriptOutcome {
  readonly passed: boolean;
  /** The failure message (undefined when it passed). */
  readonly message?: string | undefined;
  /** Classified unsupported (`features.ts`): not a failure the list speaks about. */
  readonly unsupported?: boolean | undefined;
}

/** A listed script that failed for another reason than the recorded one. */
export interface ChangedFailure {
  readonly path: string;
  readonly expected: string;
  readonly got: string;
}

/** What a run's outcomes say about the list. */
export interface KnownFailureCheck {
  /** Scripts that failed and are not listed. */
  readonly newFailures: readonly string[];
  /** Listed scripts that passed. */
  readonly unexpectedPasses: readonly string[];
  /** Listed scripts marked `sometimes:` that passed this time (not an error). */
  readonly passedSometimes: readonly string[];
  /** Listed scripts that failed differently from their entry. */
  readonly changed: readonly ChangedFailure[];
  /** Listed scripts that were not run at all, or are now classified unsupported (stale entries). */
  readonly stale: readonly string[];
}

/** Compares outcomes (path -> outcome) with the list. */
export function checkKnownFailures(
  outcomes: ReadonlyMap<string, ScriptOutcome>,
  known: ReadonlyMap<string, KnownFailure>,
): KnownFailureCheck {
  const newFailures: string[] = [];
  const unexpectedPasses: string[] = [];
  const passedSometimes: string[] = [];
  const changed: ChangedFailure[] = [];
  const stale: string[] = [];
  for (const [path, o] of outcomes) {
    const k = known.get(path);
    if (o.unsupported === true) {
      if (k !== undefined) stale.push(path);
      continue;
    }
    if (!o.passed && k === undefined) newFailures.push(path);
    if (o.passed && k !== undefined) (k.sometimes ? passedSometimes : unexpectedPasses).push(path);
    if (!o.passed && k !== undefined) {
      const got = normaliseFailure(o.message ?? "", path);
      if (got !== k.expect) changed.push({ path, expected: k.expect, got });
    }
  }
  for (const p of known.keys()) if (!outcomes.has(p)) stale.push(p);
  return {
    newFailures: newFailures.sort(),
    unexpectedPasses: unexpectedPasses.sort(),
    passedSometimes: passedSometimes.sort(),
    changed: changed.sort((a, b) => a.path.localeCompare(b.path)),
    stale: stale.sort(),
  };
}

/**
 * The kernel mode's figure over the scripts that apply to the running kernel: `results` less the
 * unsupported ones and those the list marks `packetdrill too:` (whatever they did this time).
 */
export function applyingToKernel(
  results: readonly { readonly file: string; readonly verdict: string }[],
  known: ReadonlyMap<string, KnownFailure>,
): { readonly applicable: number; readonly passed: number; readonly excluded: number } {
  let applicable = 0;
  let passed = 0;
  let excluded = 0;
  for (const r of results) {
    if (r.verdict === "unsupported") continue;
    if (known.get(r.file)?.referenceFails === true) {
      excluded++;
      continue;
    }
    applicable++;
    if (r.verdict === "pass" || r.verdict === "unexpected-pass") passed++;
  }
  return { applicable, passed, excluded };
}
