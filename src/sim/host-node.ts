/**
 * Runs a `HostStack` on the simulator: frames from a link go into the stack, frames out of
 * the stack go to a link, and the stack's deadline is kept as one scheduler timer. Events go
 * to the node's application callback, in the order the stack produced them.
 */
import type { HostStack, StackEvent } from "../host/stack.js";
import type { Instant } from "../time/instant.js";
import type { FrameSink } from "./frame-sink.js";
import type { Scheduler, SimTimer } from "./scheduler.js";

/** One host on the simulated network. */
export class SimHost {
  readonly name: string;
  readonly stack: HostStack;
  readonly #sched: Scheduler;
  readonly #links: (FrameSink | undefined)[] = [];
  #timer: SimTimer | undefined;
  #timerAt: Instant | undefined;
  #pumping = false;
  /** Receives every socket-level event; set by the application. */
  onEvent: (ev: StackEvent) => void = () => undefined;

  constructor(name: string, stack: HostStack, sched: Scheduler) {
    this.name = name;
    this.stack = stack;
    this.#sched = sched;
  }

  /** Connects interface `ifIndex` to the entry of a link direction. */
  attach(ifIndex: number, out: FrameSink): void {
    this.#links[ifIndex] = out;
  }

  /** A sink that hands frames to interface `ifIndex` of this host. */
  port(ifIndex: number): FrameSink {
    return {
      deliver: (now, frame) => {
        this.stack.handleFrame(now, ifIndex, frame);
        this.pump();
      },
    };
  }

  /**
   * Drains the stack's output and events and re-arms its timer. Call after every user call on
   * the stack (the application does, through `SimHost`-aware helpers).
   */
  pump(): void {
    if (this.#pumping) return; // an event handler's own calls are drained by the outer loop
    this.#pumping = true;
    try {
      const now = this.#sched.now;
      for (;;) {
        let progressed = false;
        for (let f = this.stack.pollTransmit(now); f !== undefined; f = this.stack.pollTransmit(now)) {
          progressed = true;
          this.#links[f.ifIndex]?.deliver(now, f.frame);
        }
        for (let ev = this.stack.pollEvent(); ev !== undefined; ev = this.stack.pollEvent()) {
          progressed = true;
          this.onEvent(ev);
        }
        if (!progressed) break;
      }
      this.#rearm(this.stack.pollTimeout());
    } finally {
      this.#pumping = false;
    }
  }

  #rearm(at: Instant | undefined): void {
    if (at === this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    if (at === undefined) {
      this.#timer = undefined;
      return;
    }
    const when = at < this.#sched.now ? this.#sched.now : at;
    this.#timer = this.#sched.at(when, `${this.name} timer`, () => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.stack.handleTimeout(this.#sched.now);
      this.pump();
    });
  }
}
