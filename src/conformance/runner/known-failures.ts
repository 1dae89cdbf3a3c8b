/**
 * The checked-in list of scripts expected to fail: one script path per line (relative to the
 * suite), then `# reason`. Blank lines and lines starting with `#` are comments. A run fails
 * on a new failure and on an unexpected pass, so the list always says exactly what fails.
 */
import { err, ok, type Result } from "../../util/errors.js";

/** One entry of the list. */
export interface KnownFailure {
  readonly path: string;
  readonly reason: string;
  readonly line: number;
}

/** Parses the list; an entry without a reason, or listed twice, is an error. */
export function parseKnownFailures(
  text: string,
  file = "known-failures.txt",
): Result<Map<string, KnownFailure>, string> {
  const out = new Map<string, KnownFailure>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? "").trim();
    if (raw === "" || raw.startsWith("#")) continue;
    const hash = raw.indexOf("#");
    const path = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    const reason = hash < 0 ? "" : raw.slice(hash + 1).trim();
    if (reason === "") return err(`${file}:${i + 1}: ${path} has no '# reason'`);
    if (out.has(path)) return err(`${file}:${i + 1}: ${path} is listed twice`);
    out.set(path, { path, reason, line: i + 1 });
  }
  return ok(out);
}

/** What a run's outcomes say about the list. */
export interface KnownFailureCheck {
  /** Scripts that failed and are not listed. */
  readonly newFailures: readonly string[];
  /** Listed scripts that passed. */
  readonly unexpectedPasses: readonly string[];
  /** Listed scripts that were not run at all (stale entries). */
  readonly stale: readonly string[];
}

/** Compares outcomes (path -> passed) with the list. */
export function checkKnownFailures(
  outcomes: ReadonlyMap<string, boolean>,
  known: ReadonlyMap<string, KnownFailure>,
): KnownFailureCheck {
  const newFailures: string[] = [];
  const unexpectedPasses: string[] = [];
  for (const [path, passed] of outcomes) {
    const listed = known.has(path);
    if (!passed && !listed) newFailures.push(path);
    if (passed && listed) unexpectedPasses.push(path);
  }
  const stale = [...known.keys()].filter((p) => !outcomes.has(p));
  return { newFailures: newFailures.sort(), unexpectedPasses: unexpectedPasses.sort(), stale: stale.sort() };
}
