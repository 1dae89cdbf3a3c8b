/**
 * The simulator's `Scheduler` on real time, so the link fault stages (delay, jitter, loss,
 * reorder, ...) written for virtual time run unchanged on live frames.
 *
 * The scheduler's clock is the driver's clock: before a frame enters a stage chain the owner
 * calls `sync()`, which runs every event due by now and moves the scheduler's `now` to the
 * present; one `setTimeout` is kept armed at the earliest pending event. After events ran
 * (frames released into the stack), `afterRun` lets the owner flush the stack.
 */
import { Scheduler } from "../sim/scheduler.js";
import type { Instant } from "../time/instant.js";

/** A `Scheduler` whose time follows `clock` and whose events fire on Node's timers. */
export class RealTimeScheduler {
  /** The scheduler to give to stages. */
  readonly scheduler: Scheduler;
  readonly #clock: () => Instant;
  readonly #afterRun: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt: Instant | undefined;
  #stopped = false;

  constructor(clock: () => Instant, afterRun: () => void) {
    this.#clock = clock;
    this.#afterRun = afterRun;
    this.scheduler = new Scheduler({ start: clock() });
  }

  /** Runs every event due by now and sets the scheduler's time to now; re-arms the timer. */
  sync(): number {
    if (this.#stopped) return 0;
    const now = this.#clock();
    const n = now >= this.scheduler.now ? this.scheduler.runUntil(now) : 0;
    this.#rearm();
    return n;
  }

  /** Call after putting frames into stages: arms the timer for what they scheduled. */
  rearm(): void {
    this.#rearm();
  }

  /** Cancels the timer; pending events never run. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #rearm(): void {
    if (this.#stopped) return;
    const at = this.scheduler.nextAt();
    if (at === this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === undefined) return;
    const waitMs = Math.max(0, (at - this.#clock()) / 1000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      if (this.sync() > 0) this.#afterRun();
    }, waitMs);
  }
}
