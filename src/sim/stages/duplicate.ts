/** Frame duplication. */
import type { Instant } from "../../time/instant.js";
import type { FrameSink, LinkStage, StageStats } from "../frame-sink.js";
import type { Prng } from "../prng.js";
import { probability } from "./loss.js";

/** Configuration of `DuplicateStage`. */
export interface DuplicateConfig {
  /** Probability that a frame is delivered twice. */
  readonly rate: number;
}

/** Counters of `DuplicateStage`. */
export interface DuplicateStats extends StageStats {
  /** Extra copies sent. */
  duplicated: number;
}

/**
 * Delivers some frames twice, back to back at the same instant. The second delivery is a copy,
 * so a receiver that writes into one does not change the other.
 */
export class DuplicateStage implements LinkStage {
  readonly kind = "duplicate";
  readonly stats: DuplicateStats = { received: 0, forwarded: 0, dropped: 0, duplicated: 0 };
  readonly #next: FrameSink;
  readonly #prng: Prng;
  readonly #rate: number = 0;

  constructor(next: FrameSink, prng: Prng, config: DuplicateConfig) {
    this.#next = next;
    this.#prng = prng;
    this.#rate = probability(config.rate, "duplicate rate");
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    const twice = this.#prng.chance(this.#rate);
    this.stats.forwarded++;
    this.#next.deliver(now, frame);
    if (twice) {
      this.stats.duplicated++;
      this.stats.forwarded++;
      this.#next.deliver(now, frame.slice());
    }
  }
}
