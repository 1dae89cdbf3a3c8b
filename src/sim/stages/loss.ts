/** Frame loss: independent (Bernoulli) and bursty (Gilbert-Elliott). */
import type { Instant } from "../../time/instant.js";
import { ConfigError } from "../../util/errors.js";
import type { DropFn, FrameSink, LinkStage, StageStats } from "../frame-sink.js";
import type { Prng } from "../prng.js";

/** Configuration of `LossStage`. */
export interface LossConfig {
  /** Probability that a frame is dropped, independently of all others. */
  readonly rate: number;
}

/** Drops each frame with a fixed probability. One draw per frame. */
export class LossStage implements LinkStage {
  readonly kind = "loss";
  onDrop: DropFn | undefined;
  readonly stats: StageStats = { received: 0, forwarded: 0, dropped: 0 };
  readonly #next: FrameSink;
  readonly #prng: Prng;
  readonly #rate: number = 0;

  constructor(next: FrameSink, prng: Prng, config: LossConfig) {
    this.#next = next;
    this.#prng = prng;
    this.#rate = probability(config.rate, "loss rate");
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    if (this.#prng.chance(this.#rate)) {
      this.stats.dropped++;
      this.onDrop?.(now, frame, this.kind);
      return;
    }
    this.stats.forwarded++;
    this.#next.deliver(now, frame);
  }
}

/**
 * The Gilbert-Elliott two-state loss model. The channel is either Good or Bad; before each
 * frame it moves Good->Bad with probability `p` and Bad->Good with probability `r`, then drops
 * the frame with the current state's loss probability. Mean burst length is 1/r frames and the
 * long-run share of time in Bad is p/(p+r). With `lossGood` 0 and `lossBad` 1 this is the
 * simple Gilbert model (Linux netem `loss gemodel p r 100 0`).
 */
export interface GilbertElliottConfig {
  /** Probability of moving Good -> Bad before a frame. */
  readonly p: number;
  /** Probability of moving Bad -> Good before a frame. */
  readonly r: number;
  /** Loss probability in Good (default 0). */
  readonly lossGood?: number | undefined;
  /** Loss probability in Bad (default 1). */
  readonly lossBad?: number | undefined;
}

/** Counters of `GilbertElliottStage`. */
export interface GilbertElliottStats extends StageStats {
  /** Frames that met the channel in Bad. */
  badFrames: number;
  /** Good -> Bad transitions. */
  bursts: number;
}

/** Burst loss by the Gilbert-Elliott model. Two draws per frame (transition, loss). */
export class GilbertElliottStage implements LinkStage {
  readonly kind = "burst-loss";
  onDrop: DropFn | undefined;
  readonly stats: GilbertElliottStats = { received: 0, forwarded: 0, dropped: 0, badFrames: 0, bursts: 0 };
  readonly #next: FrameSink;
  readonly #prng: Prng;
  readonly #p: number = 0;
  readonly #r: number = 0;
  readonly #lossGood: number = 0;
  readonly #lossBad: number = 0;
  #bad = false;

  constructor(next: FrameSink, prng: Prng, config: GilbertElliottConfig) {
    this.#next = next;
    this.#prng = prng;
    this.#p = probability(config.p, "burst loss p");
    this.#r = probability(config.r, "burst loss r");
    this.#lossGood = probability(config.lossGood ?? 0, "burst loss lossGood");
    this.#lossBad = probability(config.lossBad ?? 1, "burst loss lossBad");
  }

  /** True while the channel is in the Bad state. */
  get inBadState(): boolean {
    return this.#bad;
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    const flip = this.#prng.chance(this.#bad ? this.#r : this.#p);
    if (flip) {
      this.#bad = !this.#bad;
      if (this.#bad) this.stats.bursts++;
    }
    if (this.#bad) this.stats.badFrames++;
    if (this.#prng.chance(this.#bad ? this.#lossBad : this.#lossGood)) {
      this.stats.dropped++;
      this.onDrop?.(now, frame, this.kind);
      return;
    }
    this.stats.forwarded++;
    this.#next.deliver(now, frame);
  }
}

/** Validates a probability from a config. */
export function probability(p: number, what: string): number {
  if (!(p >= 0 && p <= 1)) throw new ConfigError(`${what} must be in [0, 1], got ${p}`);
  return p;
}
