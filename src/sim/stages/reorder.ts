/** Reordering: hold some frames back while later ones overtake them. */
import type { Duration, Instant } from "../../time/instant.js";
import { ConfigError } from "../../util/errors.js";
import type { FrameSink, LinkStage, StageStats } from "../frame-sink.js";
import type { Prng } from "../prng.js";
import type { Scheduler, SimTimer } from "../scheduler.js";
import { durationUs } from "./delay.js";
import { probability } from "./loss.js";

/** Configuration of `ReorderStage`. Give `holdFrames`, `holdUs`, or both (first one wins). */
export interface ReorderConfig {
  /** Probability that a frame is held back. */
  readonly rate: number;
  /** Release a held frame right after this many later frames have passed it. */
  readonly holdFrames?: number | undefined;
  /**
   * Release a held frame after this many microseconds. Without it, a frame held by count
   * waits until enough traffic follows (or `flush`).
   */
  readonly holdUs?: number | undefined;
  /** Scheduler label (default `reorder`). */
  readonly label?: string | undefined;
}

/** Counters of `ReorderStage`. */
export interface ReorderStats extends StageStats {
  /** Frames held back. */
  held: number;
  /** Held frames released because enough frames overtook them. */
  releasedByCount: number;
  /** Held frames released because their hold time ran out. */
  releasedByTime: number;
}

/** A held frame and what releases it. */
interface Held {
  readonly frame: Uint8Array;
  /** Later frames still to pass before release. */
  remaining: number;
  timer: SimTimer | undefined;
}

/**
 * With probability `rate`, holds a frame back until `holdFrames` later frames have been
 * forwarded or `holdUs` has passed, whichever comes first; then forwards it. Only fresh frames
 * count as overtaking. One draw per fresh frame.
 */
export class ReorderStage implements LinkStage {
  readonly kind = "reorder";
  readonly stats: ReorderStats = {
    received: 0,
    forwarded: 0,
    dropped: 0,
    held: 0,
    releasedByCount: 0,
    releasedByTime: 0,
  };
  readonly #next: FrameSink;
  readonly #sched: Scheduler;
  readonly #prng: Prng;
  readonly #rate: number = 0;
  readonly #holdFrames: number = 0;
  readonly #holdUs: Duration | undefined;
  readonly #label: string;
  readonly #held: Held[] = [];

  constructor(next: FrameSink, scheduler: Scheduler, prng: Prng, config: ReorderConfig) {
    this.#next = next;
    this.#sched = scheduler;
    this.#prng = prng;
    this.#rate = probability(config.rate, "reorder rate");
    if (config.holdFrames === undefined && config.holdUs === undefined) {
      throw new ConfigError("reorder needs holdFrames, holdUs or both");
    }
    const hf = config.holdFrames ?? Number.POSITIVE_INFINITY;
    if (!(hf === Number.POSITIVE_INFINITY || (Number.isSafeInteger(hf) && hf >= 1))) {
      throw new ConfigError(`reorder holdFrames must be a positive integer, got ${hf}`);
    }
    this.#holdFrames = hf;
    this.#holdUs = config.holdUs === undefined ? undefined : durationUs(config.holdUs, "reorder holdUs");
    this.#label = config.label ?? "reorder";
  }

  /** Frames currently held. */
  get heldCount(): number {
    return this.#held.length;
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    if (this.#prng.chance(this.#rate)) {
      this.stats.held++;
      const entry: Held = { frame, remaining: this.#holdFrames, timer: undefined };
      if (this.#holdUs !== undefined) {
        entry.timer = this.#sched.after(this.#holdUs, this.#label, () => {
          this.stats.releasedByTime++;
          this.#release(entry, this.#sched.now);
        });
      }
      this.#held.push(entry);
      return;
    }
    this.stats.forwarded++;
    this.#next.deliver(now, frame);
    // The fresh frame overtook every held one; release those whose count ran out, oldest first.
    const due: Held[] = [];
    for (const h of this.#held) if (--h.remaining <= 0) due.push(h);
    for (const h of due) {
      h.timer?.cancel();
      this.stats.releasedByCount++;
      this.#release(h, now);
    }
  }

  /** Forwards every held frame now, oldest first (e.g. at the end of a scenario). */
  flush(now: Instant): void {
    for (const h of [...this.#held]) {
      h.timer?.cancel();
      this.#release(h, now);
    }
  }

  #release(h: Held, now: Instant): void {
    const i = this.#held.indexOf(h);
    if (i < 0) return;
    this.#held.splice(i, 1);
    this.stats.forwarded++;
    this.#next.deliver(now, h.frame);
  }
}
