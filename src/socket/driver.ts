/**
 * Drivers: what runs a sans-I/O `HostStack` against a clock and a network, so the socket layer
 * above never needs to know whether time is virtual (the simulator) or real.
 *
 * Theory of operation
 * - A `StackDriver` owns one `HostStack`. The socket layer calls the stack's user calls with
 *   `driver.now()` and then `driver.flush()`, which drains the stack's frames to the network
 *   and its events to the one event handler, and re-arms the stack's deadline. Events are
 *   delivered synchronously from inside `flush()` (and from inside frame and timer delivery);
 *   a handler's own stack calls are drained by the same loop, never recursively.
 * - `SimDriver` runs a simulator `Scheduler` inside Node's event loop. One turn runs every
 *   scheduler event of the next virtual instant; if any of them reached application code
 *   (a stack event was delivered, or a driver timer fired) the turn ends and the next one is
 *   queued with `setImmediate`, so stream internals (`process.nextTick`), promise reactions and
 *   the application's callbacks all run "at the same virtual time" before the clock moves on.
 *   When no event is pending the loop sleeps until the application does something (any
 *   `flush()` wakes it). `stop()` ends the loop.
 * - `RealTimeDriver` uses `performance.now()` and `setTimeout`, and exchanges frames through
 *   a `FrameIo` callback (a TAP device, a UDP tunnel, or another in-process driver); with an
 *   offload target in front of the stack it is the live chimney's driver too.
 * - Both run a `ChimneyNode` (src/node): the loop that drains a node is written there once.
 */
import { setImmediate as immediate } from "node:timers";
import { performance } from "node:perf_hooks";
import type { OffloadManager } from "../host/offload-manager.js";
import type { HostStack, StackEvent } from "../host/stack.js";
import { ChimneyNode, type NicTarget } from "../node/chimney-node.js";
import { SimHost } from "../sim/host-node.js";
import type { FrameSink } from "../sim/frame-sink.js";
import { Scheduler, type SimTimer } from "../sim/scheduler.js";
import { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";

/** A one-shot timer on a driver's clock. */
export interface DriverTimer {
  /** Stops the timer if it has not fired. */
  cancel(): void;
}

/** Receives the stack's socket-level events, in the order the stack produced them. */
export type StackEventHandler = (ev: StackEvent) => void;

/** Whatever runs a `HostStack`: a clock, a network, and an event pump. */
export interface StackDriver {
  /** The stack this driver runs. */
  readonly stack: HostStack;
  /** The driver's current time. Pass it to every stack call. */
  now(): Instant;
  /**
   * Call after every user call on the stack: drains frames to the network and events to the
   * handler, and re-arms the stack's timer. Reentrant calls (from an event handler) are
   * absorbed by the outer drain loop.
   */
  flush(): void;
  /** Installs the event handler (one per driver; `NetStack` installs it). */
  setEventHandler(fn: StackEventHandler): void;
  /** Runs `fn` at `at` (or as soon as possible when `at` has passed) on the driver's clock. */
  timer(at: Instant, fn: () => void): DriverTimer;
}

// ---------------------------------------------------------------------------------------------
// Simulator

/** Options of `new SimDriver`. */
export interface SimDriverOptions {
  /** The scheduler to run (default: a fresh one starting at zero). */
  readonly scheduler?: Scheduler | undefined;
  /**
   * Scheduler events run per event-loop turn at most, even when none reached the application
   * (keeps Node's event loop responsive while virtual time races ahead). Default 2000.
   */
  readonly maxEventsPerTurn?: number | undefined;
}

/**
 * The simulator's virtual clock inside Node's event loop. Hosts added with `addHost` share
 * the clock; links between them are built by the caller on `scheduler`.
 */
export class SimDriver {
  /** The virtual clock and event queue. */
  readonly scheduler: Scheduler;
  readonly #maxPerTurn: number = 0;
  #running = true;
  #turnQueued = false;
  #touched = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: SimDriverOptions = {}) {
    this.scheduler = options.scheduler ?? new Scheduler();
    this.#maxPerTurn = options.maxEventsPerTurn ?? 2000;
  }

  /** The current virtual time. */
  get now(): Instant {
    return this.scheduler.now;
  }

  /** False once `stop()` was called. */
  get running(): boolean {
    return this.#running;
  }

  /** Runs `stack` on this clock as host `name`. Attach its interfaces with `attach`/`port`. */
  addHost(name: string, stack: HostStack): SimStackDriver {
    return new SimStackDriver(this, new SimHost(name, stack, this.scheduler));
  }

  /**
   * Runs an already built node on this clock (it must use `scheduler`), e.g. a host with an
   * offload target: the sockets above cannot tell the difference.
   */
  addNode(node: SimNode): SimStackDriver {
    return new SimStackDriver(this, node);
  }

  /** Runs `fn` at virtual time `at` as application code (the loop yields after it). */
  timer(at: Instant, fn: () => void): DriverTimer {
    const t: SimTimer = this.scheduler.at(
      at < this.scheduler.now ? this.scheduler.now : at,
      "app timer",
      () => {
        this.#touched = true;
        fn();
      },
    );
    this.wake();
    return { cancel: () => void t.cancel() };
  }

  /** Resolves once no scheduler event is pending (the network and every timer are quiet). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.wake();
    });
  }

  /** Ends the loop: no more virtual time passes. Pending `idle()` promises stay pending. */
  stop(): void {
    this.#running = false;
  }

  /** Marks that application code was reached in this instant (the loop yields after it). */
  touch(): void {
    this.#touched = true;
  }

  /** Makes sure a loop turn is queued (the application did something). */
  wake(): void {
    if (!this.#running || this.#turnQueued) return;
    this.#turnQueued = true;
    immediate(this.#turn);
  }

  readonly #turn = (): void => {
    this.#turnQueued = false;
    if (!this.#running) return;
    const sched = this.scheduler;
    let budget = this.#maxPerTurn;
    for (;;) {
      const next = sched.nextAt();
      if (next === undefined) {
        const waiters = this.#idleWaiters;
        this.#idleWaiters = [];
        for (const w of waiters) w();
        return; // asleep until wake()
      }
      this.#touched = false;
      while (sched.nextAt() === next) {
        sched.step();
        budget--;
      }
      if (this.#touched || budget <= 0) {
        this.wake();
        return;
      }
    }
  };
}

/** What a `SimStackDriver` drives: a simulator host (`SimHost`, or one with an offload target). */
export interface SimNode {
  readonly name: string;
  readonly stack: HostStack;
  /** Receives the stack's events; the driver installs it. */
  onEvent: (ev: StackEvent) => void;
  /** Connects interface `ifIndex` to the entry of a link direction. */
  attach(ifIndex: number, out: FrameSink): void;
  /** A sink that hands frames to interface `ifIndex`. */
  port(ifIndex: number): FrameSink;
  /** Drains output and events and re-arms the node's timer. */
  pump(): void;
}

/** One host of a `SimDriver`: a `StackDriver` on virtual time. */
export class SimStackDriver implements StackDriver {
  readonly #sim: SimDriver;
  readonly #host: SimNode;
  #handler: StackEventHandler = () => undefined;

  constructor(sim: SimDriver, host: SimNode) {
    this.#sim = sim;
    this.#host = host;
    host.onEvent = (ev) => {
      sim.touch();
      this.#handler(ev);
    };
  }

  /** The host's name. */
  get name(): string {
    return this.#host.name;
  }

  /** The stack. */
  get stack(): HostStack {
    return this.#host.stack;
  }

  /** Connects interface `ifIndex` to the entry of a link direction. */
  attach(ifIndex: number, out: FrameSink): void {
    this.#host.attach(ifIndex, out);
  }

  /** A sink that hands frames to interface `ifIndex` of this host. */
  port(ifIndex: number): FrameSink {
    return this.#host.port(ifIndex);
  }

  now(): Instant {
    return this.#sim.scheduler.now;
  }

  flush(): void {
    this.#host.pump();
    this.#sim.wake();
  }

  setEventHandler(fn: StackEventHandler): void {
    this.#handler = fn;
  }

  timer(at: Instant, fn: () => void): DriverTimer {
    return this.#sim.timer(at, fn);
  }
}

// ---------------------------------------------------------------------------------------------
// Real time

/** Where a `RealTimeDriver` sends frames. */
export interface FrameIo {
  /** Puts `frame` on interface `ifIndex`. The driver never touches the frame again. */
  transmit(ifIndex: number, frame: Uint8Array): void;
}

/**
 * Real time for a driver: a monotonic microsecond clock from `clock` (milliseconds), the
 * driver's one wake-up timer, and the application's timers. Shared by every real-time driver.
 */
export class RealTimeClock {
  readonly #clock: () => number;
  readonly #origin: number = 0;
  #last: Instant = Instant.ZERO;
  #wake: ReturnType<typeof setTimeout> | undefined;
  #wakeAt: Instant | undefined;
  #stopped = false;
  readonly #appTimers = new Set<ReturnType<typeof setTimeout>>();

  constructor(clock: () => number = () => performance.now()) {
    this.#clock = clock;
    this.#origin = clock();
  }

  /** Microseconds since construction, never decreasing even if the clock does. */
  now(): Instant {
    const t = Math.floor((this.#clock() - this.#origin) * 1000);
    if (t > this.#last) this.#last = Instant.fromMicros(t);
    return this.#last;
  }

  /** True once `stop` ran. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Arms the one wake-up for `at` (undefined: none), replacing the previous one; `fire` runs then. */
  wakeAt(at: Instant | undefined, fire: () => void): void {
    if (at === this.#wakeAt) return;
    if (this.#wake !== undefined) clearTimeout(this.#wake);
    this.#wake = undefined;
    this.#wakeAt = at;
    if (at === undefined) return;
    this.#wake = setTimeout(() => {
      this.#wake = undefined;
      this.#wakeAt = undefined;
      if (!this.#stopped) fire();
    }, this.#delayMs(at));
  }

  /** An application timer at `at`. */
  timer(at: Instant, fn: () => void): DriverTimer {
    if (this.#stopped) throw new UsageError("timer on a stopped driver");
    const h = setTimeout(() => {
      this.#appTimers.delete(h);
      fn();
    }, this.#delayMs(at));
    this.#appTimers.add(h);
    return {
      cancel: () => {
        clearTimeout(h);
        this.#appTimers.delete(h);
      },
    };
  }

  /** Cancels every timer; `stopped` is true afterwards. */
  stop(): void {
    this.#stopped = true;
    if (this.#wake !== undefined) clearTimeout(this.#wake);
    this.#wake = undefined;
    for (const h of this.#appTimers) clearTimeout(h);
    this.#appTimers.clear();
  }

  #delayMs(at: Instant): number {
    return Math.max(0, Math.ceil((at - this.now()) / 1000));
  }
}

/** Options of `new RealTimeDriver`. */
export interface RealTimeDriverOptions {
  /** Milliseconds on a monotonic clock (default `performance.now`). */
  readonly clock?: (() => number) | undefined;
  /**
   * An offload manager and target in front of the stack (src/node's `createChimney`): frames
   * from the wire then enter the target, and the stack's frames leave through it.
   */
  readonly chimney?: { readonly manager: OffloadManager; readonly target: NicTarget } | undefined;
}

/**
 * Runs a chimney node (a `HostStack`, with or without an offload target) on real time. Frames
 * arrive through `receive` and leave through `io.transmit`; the node's deadline is one
 * `setTimeout`. The loop is the node's (`ChimneyNode.settle`).
 */
export class RealTimeDriver implements StackDriver {
  readonly node: ChimneyNode;
  readonly #time: RealTimeClock;
  #handler: StackEventHandler = () => undefined;
  /** Runs the node's deadlines; made once, not per flush. */
  readonly #onWake = (): void => {
    this.node.fire();
    this.flush();
  };

  constructor(stack: HostStack, io: FrameIo, options: RealTimeDriverOptions = {}) {
    const time = new RealTimeClock(options.clock);
    this.#time = time;
    this.node = new ChimneyNode(
      stack,
      () => time.now(),
      { transmit: (ifIndex, frame) => io.transmit(ifIndex, frame), event: (ev) => this.#handler(ev) },
      options.chimney,
    );
  }

  /** The stack. */
  get stack(): HostStack {
    return this.node.stack;
  }

  now(): Instant {
    return this.#time.now();
  }

  /** A frame arrived on interface `ifIndex`. */
  receive(ifIndex: number, frame: Uint8Array): void {
    if (this.#time.stopped) return;
    this.node.input(ifIndex, frame);
    this.flush();
  }

  /** Frames arrived on interface `ifIndex` together (one read of a device): one flush after all. */
  receiveBatch(ifIndex: number, frames: readonly Uint8Array[]): void {
    if (this.#time.stopped) return;
    for (const f of frames) this.node.input(ifIndex, f);
    this.flush();
  }

  /**
   * Runs the node until it settles, then re-arms the timer. Call after every user call (socket
   * calls do) and after chimney operations (`offload`, `terminate`).
   */
  flush(): void {
    if (this.#time.stopped) return;
    this.node.settle();
    if (!this.node.settling) this.#time.wakeAt(this.node.deadline(), this.#onWake);
  }

  setEventHandler(fn: StackEventHandler): void {
    this.#handler = fn;
  }

  timer(at: Instant, fn: () => void): DriverTimer {
    return this.#time.timer(at, fn);
  }

  /** Cancels every timer; the driver ignores frames and calls afterwards. */
  stop(): void {
    this.#time.stop();
  }
}
