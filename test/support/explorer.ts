/**
 * An exhaustive explorer of event orders (issue "explorer", first slice): it runs a simulated
 * scenario on the real host and target code again and again, each time with another order of
 * the events that are due at the same instant, until every order has run (depth-first, the run
 * replayed from the start for each branch: stateless model checking, no state caching yet).
 *
 * A scenario is a pure function of its parameters and of the choices, so a path is its list of
 * choices: a violation comes back with it, and `replayChoices` runs that one path again.
 *
 * Which events take part is the caller's `among` (by scheduler label): frames arriving at the
 * host with the target, its timer (target completions, the push and delayed-ACK timers), the
 * application's reads and the scenario's terminate. Everything else keeps its FIFO place.
 */
import type { SchedulerChooser } from "../../src/sim/scheduler.js";

/** One run under a chooser: what went wrong on that path, or undefined. */
export type Scenario = (choose: SchedulerChooser) => string | undefined;

/** What an exploration did. */
export interface Exploration {
  /** Complete runs (paths through the choice tree). */
  readonly paths: number;
  /** Points where more than one event could run, summed over the paths. */
  readonly choicePoints: number;
  /** Events chosen at those points, summed over the paths (the transitions explored). */
  readonly transitions: number;
  /** The most choice points on one path. */
  readonly maxDepth: number;
  /** Every order ran (false: `maxPaths` stopped it). */
  readonly exhausted: boolean;
  readonly ms: number;
  /** The first violation: what, and the choices that lead to it. */
  readonly violation: { readonly what: string; readonly choices: readonly number[] } | undefined;
}

/** A chooser that follows `prefix`, then takes the oldest event, and records the tree's shape. */
class Follower implements SchedulerChooser {
  readonly choices: number[] = [];
  readonly widths: number[] = [];
  readonly #prefix: readonly number[];
  readonly #among: (label: string) => boolean;

  constructor(prefix: readonly number[], among: (label: string) => boolean) {
    this.#prefix = prefix;
    this.#among = among;
  }

  among(label: string): boolean {
    return this.#among(label);
  }

  pick(ready: readonly string[]): number {
    const d = this.choices.length;
    const i = this.#prefix[d] ?? 0;
    if (i >= ready.length)
      throw new Error(
        `explorer: the run is not deterministic: choice ${d} had ${ready.length} events, the replayed path wants #${i}`,
      );
    this.choices.push(i);
    this.widths.push(ready.length);
    return i;
  }
}

/** Runs `scenario` under every order of the events `among` picks, at most `maxPaths` runs. */
export function explore(
  scenario: Scenario,
  among: (label: string) => boolean,
  maxPaths: number,
): Exploration {
  const t0 = performance.now();
  let prefix: number[] = [];
  let paths = 0;
  let choicePoints = 0;
  let transitions = 0;
  let maxDepth = 0;
  for (;;) {
    const f = new Follower(prefix, among);
    const bad = scenario(f);
    paths++;
    choicePoints += f.choices.length;
    transitions += f.widths.reduce((s, w) => s + w, 0);
    maxDepth = Math.max(maxDepth, f.choices.length);
    const done = (exhausted: boolean, violation: Exploration["violation"]): Exploration => ({
      paths,
      choicePoints,
      transitions,
      maxDepth,
      exhausted,
      ms: performance.now() - t0,
      violation,
    });
    if (bad !== undefined) return done(false, { what: bad, choices: f.choices });
    // The next path: the deepest choice with an untried sibling, tried next.
    let d = f.choices.length - 1;
    while (d >= 0 && (f.choices[d] as number) + 1 >= (f.widths[d] as number)) d--;
    if (d < 0) return done(true, undefined);
    if (paths >= maxPaths) return done(false, undefined);
    prefix = [...f.choices.slice(0, d), (f.choices[d] as number) + 1];
  }
}

/** Runs the one path `choices` names (a counterexample, as a unit test would). */
export function replayChoices(
  scenario: Scenario,
  among: (label: string) => boolean,
  choices: readonly number[],
): string | undefined {
  return scenario(new Follower(choices, among));
}
