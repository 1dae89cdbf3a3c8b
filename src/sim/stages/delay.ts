/** Fixed latency and random jitter: the propagation part of a link. */
import { Duration, Instant } from "../../time/instant.js";
import { ConfigError } from "../../util/errors.js";
import type { FrameSink, LinkStage, StageStats } from "../frame-sink.js";
import type { Prng } from "../prng.js";
import type { Scheduler } from "../scheduler.js";

/** Configuration of `DelayStage`. */
export interface DelayConfig {
  /** One-way latency added to every frame, in microseconds. */
  readonly delayUs: number;
  /** Scheduler label prefix (default `delay`). */
  readonly label?: string | undefined;
}

/** Delays every frame by the same latency, so order is kept. */
export class DelayStage implements LinkStage {
  readonly kind = "delay";
  readonly stats: StageStats = { received: 0, forwarded: 0, dropped: 0 };
  readonly #next: FrameSink;
  readonly #sched: Scheduler;
  readonly #delay: Duration = 0 as Duration;
  readonly #label: string;

  constructor(next: FrameSink, scheduler: Scheduler, config: DelayConfig) {
    this.#next = next;
    this.#sched = scheduler;
    this.#delay = durationUs(config.delayUs, "delayUs");
    this.#label = config.label ?? "delay";
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    this.#sched.at(Instant.add(now, this.#delay), this.#label, () => {
      this.stats.forwarded++;
      this.#next.deliver(this.#sched.now, frame);
    });
  }
}

/** Configuration of `JitterStage`. */
export interface JitterConfig {
  /** Each frame gets an extra delay uniform in [0, jitterUs] microseconds. */
  readonly jitterUs: number;
  /**
   * If true, frames may overtake each other (each delay is independent). If false (default), a
   * frame is never delivered before the frame ahead of it: its delay is raised to keep order.
   */
  readonly reorder?: boolean | undefined;
  /** Scheduler label prefix (default `jitter`). */
  readonly label?: string | undefined;
}

/** Counters of `JitterStage`. */
export interface JitterStats extends StageStats {
  /** Total extra delay applied, in microseconds (order-keeping raises included). */
  extraUs: number;
}

/** Adds a random extra delay per frame, keeping order or not. */
export class JitterStage implements LinkStage {
  readonly kind = "jitter";
  readonly stats: JitterStats = { received: 0, forwarded: 0, dropped: 0, extraUs: 0 };
  readonly #next: FrameSink;
  readonly #sched: Scheduler;
  readonly #prng: Prng;
  readonly #jitterUs: number = 0;
  readonly #reorder: boolean;
  readonly #label: string;
  /** Delivery time of the last frame accepted, for order keeping. */
  #lastAt = 0;

  constructor(next: FrameSink, scheduler: Scheduler, prng: Prng, config: JitterConfig) {
    this.#next = next;
    this.#sched = scheduler;
    this.#prng = prng;
    this.#jitterUs = durationUs(config.jitterUs, "jitterUs");
    this.#reorder = config.reorder ?? false;
    this.#label = config.label ?? "jitter";
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    let at = now + this.#prng.between(0, this.#jitterUs);
    if (!this.#reorder) {
      // Same-instant events run in insertion order, so `at === lastAt` keeps order too.
      at = Math.max(at, this.#lastAt);
      this.#lastAt = at;
    }
    this.stats.extraUs += at - now;
    this.#sched.at(Instant.fromMicros(at), this.#label, () => {
      this.stats.forwarded++;
      this.#next.deliver(this.#sched.now, frame);
    });
  }
}

/** Validates a microsecond count from a config. */
export function durationUs(us: number, what: string): Duration {
  if (!(Number.isSafeInteger(us) && us >= 0))
    throw new ConfigError(`${what} must be a non-negative integer, got ${us}`);
  return Duration.fromMicros(us);
}
