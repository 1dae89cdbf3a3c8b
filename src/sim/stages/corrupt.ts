/** Bit corruption. */
import type { Instant } from "../../time/instant.js";
import { ConfigError } from "../../util/errors.js";
import type { FrameSink, LinkStage, StageStats } from "../frame-sink.js";
import type { Prng } from "../prng.js";
import { probability } from "./loss.js";

/** Configuration of `CorruptStage`. */
export interface CorruptConfig {
  /** Probability that a frame is corrupted. */
  readonly rate: number;
  /** Bits flipped per corrupted frame, at random positions (default 1; may hit the same bit). */
  readonly bits?: number | undefined;
  /** Leading bytes never touched, e.g. 14 to spare the Ethernet header (default 0). */
  readonly skipBytes?: number | undefined;
}

/** Counters of `CorruptStage`. */
export interface CorruptStats extends StageStats {
  /** Frames forwarded with flipped bits. */
  corrupted: number;
}

/**
 * Flips random bits in some frames. The frame is COPIED first: the sender may still own the
 * original (for example in its retransmission queue), and a link must never write into it.
 * Frames no longer than `skipBytes` pass unchanged.
 */
export class CorruptStage implements LinkStage {
  readonly kind = "corrupt";
  readonly stats: CorruptStats = { received: 0, forwarded: 0, dropped: 0, corrupted: 0 };
  readonly #next: FrameSink;
  readonly #prng: Prng;
  readonly #rate: number = 0;
  readonly #bits: number = 0;
  readonly #skip: number = 0;

  constructor(next: FrameSink, prng: Prng, config: CorruptConfig) {
    this.#next = next;
    this.#prng = prng;
    this.#rate = probability(config.rate, "corrupt rate");
    this.#bits = config.bits ?? 1;
    this.#skip = config.skipBytes ?? 0;
    if (!(Number.isSafeInteger(this.#bits) && this.#bits >= 1)) {
      throw new ConfigError(`corrupt bits must be a positive integer, got ${this.#bits}`);
    }
    if (!(Number.isSafeInteger(this.#skip) && this.#skip >= 0)) {
      throw new ConfigError(`corrupt skipBytes must be a non-negative integer, got ${this.#skip}`);
    }
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    this.stats.forwarded++;
    if (!this.#prng.chance(this.#rate) || frame.length <= this.#skip) {
      this.#next.deliver(now, frame);
      return;
    }
    const copy = frame.slice();
    const span = (copy.length - this.#skip) * 8;
    for (let i = 0; i < this.#bits; i++) {
      const bit = this.#skip * 8 + this.#prng.below(span);
      copy[bit >>> 3] = (copy[bit >>> 3] ?? 0) ^ (0x80 >>> (bit & 7));
    }
    this.stats.corrupted++;
    this.#next.deliver(now, copy);
  }
}
