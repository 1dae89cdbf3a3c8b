/**
 * The simulator's virtual clock: a priority queue of events ordered by (time, insertion order).
 *
 * Theory of operation. `now` only moves forward, and only when an event runs (`step`) or when
 * `runUntil(t)` reaches `t`. Events scheduled for the same instant run in the order they were
 * scheduled (FIFO), including events scheduled *at* `now` by a running event: they run after
 * everything already queued for `now`. Scheduling before `now` is a caller bug (`UsageError`).
 *
 * Cancellation is lazy: a cancelled event stays in the heap, marked, and is skipped when it
 * reaches the top. So `cancel()` is O(1); when cancelled entries outnumber live ones the heap is
 * rebuilt, which keeps memory bounded and costs O(log n) amortised per cancellation.
 */
import { type Duration, Instant } from "../time/instant.js";
import { assert, StackError, UsageError } from "../util/errors.js";
import { MinHeap } from "../util/heap.js";

/** Where a scheduled event is in its life. */
export type SimTimerState = "pending" | "fired" | "cancelled";

/** The handle `Scheduler.at` and `Scheduler.after` return. */
export interface SimTimer {
  /** The instant the event runs at. */
  readonly at: Instant;
  /** The caller's label, passed to the trace callback. */
  readonly label: string;
  /** `pending` until it runs (`fired`) or is cancelled. */
  readonly state: SimTimerState;
  /** Stops a pending event from running; returns false if it already ran or was cancelled. */
  cancel(): boolean;
}

/** Called just before each event runs, with the event's time and label. */
export type SchedulerTrace = (at: Instant, label: string) => void;

/**
 * The explorer's hook (test/support/explorer.ts): which events may run in another order than
 * FIFO (`among`, by label), and which of those due at the same instant runs next (`pick`, given
 * their labels oldest first; an index into them).
 */
export interface SchedulerChooser {
  among(label: string): boolean;
  pick(ready: readonly string[]): number;
}

/** Options for `new Scheduler`. */
export interface SchedulerOptions {
  /** Called before every event runs. */
  readonly trace?: SchedulerTrace | undefined;
  /**
   * When set, and several of the events it chooses `among` are due at the earliest instant, one
   * after the other in FIFO order, it picks the one to run (default: the oldest). Other events
   * keep their FIFO places: a choosable event queued behind one of them waits for it.
   */
  readonly choose?: SchedulerChooser | undefined;
  /** The initial `now` (default zero). */
  readonly start?: Instant | undefined;
}

/** The event budget ran out before the simulation reached its goal: most likely a livelock. */
export class LivelockError extends StackError {
  readonly code = "ERR_SIM_LIVELOCK";
}

/** A deterministic discrete-event scheduler over virtual time. */
export class Scheduler {
  #now: Instant = 0 as Instant;
  #heap = new MinHeap<SimEvent>(before);
  #order = 0;
  #executed = 0;
  readonly #counts: Counts = { live: 0, cancelledInHeap: 0 };
  readonly #trace: SchedulerTrace | undefined;
  readonly #choose: SchedulerChooser | undefined;

  constructor(options: SchedulerOptions = {}) {
    this.#now = options.start ?? Instant.ZERO;
    this.#trace = options.trace;
    this.#choose = options.choose;
  }

  /** The current virtual time. */
  get now(): Instant {
    return this.#now;
  }

  /** Number of events scheduled and neither run nor cancelled. */
  get pending(): number {
    return this.#counts.live;
  }

  /**
   * Heap entries, cancelled ones not yet discarded included (a diagnostic: it stays within
   * about twice `pending` plus a small constant).
   */
  get queuedEntries(): number {
    return this.#heap.size;
  }

  /** Number of events run so far. */
  get executed(): number {
    return this.#executed;
  }

  /** The time of the earliest pending event, or undefined when there is none. */
  nextAt(): Instant | undefined {
    return this.#top()?.at;
  }

  /** Schedules `fn` to run at `when`, which must not be before `now`. */
  at(when: Instant, label: string, fn: () => void): SimTimer {
    if (!Number.isSafeInteger(when)) throw new UsageError(`event ${label}: bad instant ${when}`);
    if (when < this.#now) {
      throw new UsageError(`event ${label} scheduled in the past: ${when} < now ${this.#now}`);
    }
    const ev = new SimEvent(when, this.#order++, label, fn, this.#counts);
    this.#heap.push(ev);
    this.#counts.live++;
    return ev;
  }

  /** Schedules `fn` to run `delay` after `now`. */
  after(delay: Duration, label: string, fn: () => void): SimTimer {
    if (!(Number.isSafeInteger(delay) && delay >= 0))
      throw new UsageError(`event ${label}: bad delay ${delay}`);
    return this.at(Instant.add(this.#now, delay), label, fn);
  }

  /** Runs the next pending event, advancing `now` to its time. Returns false if there is none. */
  step(): boolean {
    const top = this.#top();
    if (top === undefined) return false;
    let ev = top;
    if (this.#choose?.among(top.label) === true) ev = this.#chosen(top, this.#choose);
    else this.#heap.pop();
    this.#counts.live--;
    this.#now = ev.at;
    this.#executed++;
    const fn = ev.fire();
    this.#trace?.(ev.at, ev.label);
    fn();
    return true;
  }

  /**
   * Runs every event at or before `t`, then sets `now` to `t`. Returns the number of events
   * run. Throws `LivelockError` if more than `maxEvents` would be needed.
   */
  runUntil(t: Instant, maxEvents = Number.POSITIVE_INFINITY): number {
    if (t < this.#now) throw new UsageError(`runUntil(${t}) is before now ${this.#now}`);
    let n = 0;
    for (let next = this.nextAt(); next !== undefined && next <= t; next = this.nextAt()) {
      if (n >= maxEvents) {
        throw new LivelockError(`runUntil(${t}): ${maxEvents} events ran and now is only ${this.#now}`);
      }
      this.step();
      n++;
    }
    this.#now = t;
    return n;
  }

  /**
   * Runs events until none is pending, at most `maxEvents` of them. Returns true when the
   * queue drained, false when the budget ran out first (treat as a livelock).
   */
  runUntilIdle(maxEvents: number): boolean {
    for (let n = 0; this.#counts.live > 0; n++) {
      if (n >= maxEvents) return false;
      this.step();
    }
    return true;
  }

  /**
   * The event the chooser picks among the choosable ones due at `top`'s instant (`top` is one of
   * them, the oldest). The others go back in the heap with their places.
   */
  #chosen(top: SimEvent, c: SchedulerChooser): SimEvent {
    const ready: SimEvent[] = [];
    for (let ev = this.#top(); ev !== undefined && ev.at === top.at && c.among(ev.label); ev = this.#top()) {
      this.#heap.pop();
      ready.push(ev);
    }
    let pick = 0;
    if (ready.length > 1) {
      pick = c.pick(ready.map((e) => e.label));
      if (!Number.isSafeInteger(pick) || pick < 0 || pick >= ready.length)
        throw new UsageError(`the chooser picked ${pick} of ${ready.length} events`);
    }
    for (let i = 0; i < ready.length; i++) if (i !== pick) this.#heap.push(ready[i] as SimEvent);
    return ready[pick] as SimEvent;
  }

  /** The earliest live event, discarding cancelled ones on the way. */
  #top(): SimEvent | undefined {
    this.#compactIfSparse();
    for (;;) {
      const ev = this.#heap.peek();
      if (ev === undefined || ev.state === "pending") return ev;
      this.#heap.pop();
      this.#counts.cancelledInHeap--;
    }
  }

  /** Rebuilds the heap without cancelled entries once they outnumber the live ones. */
  #compactIfSparse(): void {
    const c = this.#counts;
    if (c.cancelledInHeap < 64 || c.cancelledInHeap <= c.live) return;
    const old = this.#heap;
    const fresh = new MinHeap<SimEvent>(before);
    for (let ev = old.pop(); ev !== undefined; ev = old.pop()) if (ev.state === "pending") fresh.push(ev);
    this.#heap = fresh;
    c.cancelledInHeap = 0;
  }
}

/** Live and cancelled-but-still-queued counts, shared by a scheduler and its events. */
interface Counts {
  live: number;
  cancelledInHeap: number;
}

/** A queued event; also its own handle. */
class SimEvent implements SimTimer {
  readonly at: Instant = 0 as Instant;
  /** Insertion counter: the tie-break for events at the same instant. */
  readonly order: number = 0;
  readonly label: string;
  #state: SimTimerState = "pending";
  #fn: (() => void) | undefined;
  readonly #counts: Counts;

  constructor(at: Instant, order: number, label: string, fn: () => void, counts: Counts) {
    this.at = at;
    this.order = order;
    this.label = label;
    this.#fn = fn;
    this.#counts = counts;
  }

  get state(): SimTimerState {
    return this.#state;
  }

  cancel(): boolean {
    if (this.#state !== "pending") return false;
    this.#state = "cancelled";
    this.#fn = undefined; // release whatever the closure holds
    this.#counts.live--;
    this.#counts.cancelledInHeap++;
    return true;
  }

  /** Marks the event as run and hands over its function. */
  fire(): () => void {
    const fn = this.#fn;
    assert(fn !== undefined && this.#state === "pending", () => `event ${this.label} fired twice`);
    this.#state = "fired";
    this.#fn = undefined;
    return fn;
  }
}

/** Heap order: earlier time first, then earlier insertion. */
function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}
