/**
 * Runs a host with an offload target on the simulator. The topology is the chimney's: the
 * target is the NIC, so frames flow wire <-> target <-> host stack. Frames from the link enter
 * the target, which runs offloaded connections itself and passes everything else up
 * (`indicateReceive`); the stack's frames leave through `target.sendFrame`; the target's
 * `pollTransmit` feeds the link. Without a target the node is a plain host (wire <-> stack).
 *
 * One scheduler timer covers the earliest of the stack's and the target's deadlines.
 *
 * The node has one interface (index 0); `attach` and `port` take the index anyway, so the node
 * is what the socket layer's simulator driver runs (`SimDriver.addNode`), as a plain `SimHost`.
 */
import type { OffloadTarget } from "../chimney/contract.js";
import type { OffloadManager } from "../host/offload-manager.js";
import type { HostStack, StackEvent } from "../host/stack.js";
import type { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import type { FrameSink } from "./frame-sink.js";
import type { Scheduler, SimTimer } from "./scheduler.js";

/** A target that is also the NIC: what the simulator glue drives (src/target's SoftwareTarget). */
export interface NicTarget extends OffloadTarget {
  /** A frame from the wire. */
  handleFrame(now: Instant, frame: Uint8Array): void;
  /** A frame the host stack sends (NdisSendNetBufferLists on the non-offload path). */
  sendFrame(frame: Uint8Array): void;
  /** Runs recorded work: completions, indications, events. */
  process(now: Instant): void;
  /** The next frame for the wire. */
  pollTransmit(now: Instant): Uint8Array | undefined;
  /** The earliest timer deadline. */
  pollTimeout(): Instant | undefined;
  /** Runs expired timers. */
  handleTimeout(now: Instant): void;
  /** Offloaded connections. */
  readonly connectionCount: number;
  /** When the driver should call in next (`now` when `process` has work); else `pollTimeout`. */
  pollAt?(now: Instant): Instant | undefined;
}

/** One host (with or without an offload target) on the simulated network; interface 0 only. */
export class SimChimneyHost {
  readonly name: string;
  readonly stack: HostStack;
  readonly manager: OffloadManager | undefined;
  readonly target: NicTarget | undefined;
  readonly #sched: Scheduler;
  #link: FrameSink | undefined;
  #timer: SimTimer | undefined;
  #timerAt: Instant | undefined;
  #pumping = false;
  /** Receives every socket-level event; set by the application. */
  onEvent: (ev: StackEvent) => void = () => undefined;

  constructor(
    name: string,
    stack: HostStack,
    sched: Scheduler,
    offload?: { readonly manager: OffloadManager; readonly target: NicTarget },
  ) {
    this.name = name;
    this.stack = stack;
    this.#sched = sched;
    this.manager = offload?.manager;
    this.target = offload?.target;
  }

  /** Connects interface `ifIndex` (only 0 exists) to the entry of a link direction. */
  attach(ifIndex: number, out: FrameSink): void {
    this.#only(ifIndex);
    this.#link = out;
  }

  /**
   * A sink for frames from the wire on interface `ifIndex` (only 0 exists): they enter the
   * target (the NIC), or the stack without one.
   */
  port(ifIndex = 0): FrameSink {
    this.#only(ifIndex);
    return {
      deliver: (now, frame) => {
        if (this.target !== undefined) {
          this.stack.advanceTo(now); // the target's upcalls use the host's clock
          this.target.handleFrame(now, frame);
        } else this.stack.handleFrame(now, 0, frame);
        this.pump();
      },
    };
  }

  /** Drains stack and target output and events, then re-arms the timer. Call after user calls. */
  pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      const now = this.#sched.now;
      const target = this.target;
      if (target !== undefined) this.stack.advanceTo(now);
      for (let round = 0; ; round++) {
        let progressed = false;
        target?.process(now);
        for (let f = this.stack.pollTransmit(now); f !== undefined; f = this.stack.pollTransmit(now)) {
          progressed = true;
          if (target !== undefined) target.sendFrame(f.frame);
          else this.#link?.deliver(now, f.frame);
        }
        for (let ev = this.stack.pollEvent(); ev !== undefined; ev = this.stack.pollEvent()) {
          progressed = true;
          this.onEvent(ev);
        }
        if (target !== undefined) {
          for (let f = target.pollTransmit(now); f !== undefined; f = target.pollTransmit(now)) {
            progressed = true;
            this.#link?.deliver(now, f);
          }
        }
        // A target may have recorded work (a state operation) during this round.
        const due = target?.pollAt?.(now);
        if ((!progressed && (due === undefined || due > now)) || round > 100_000) break;
      }
      const t = this.stack.pollTimeout();
      const tt = target?.pollAt?.(now) ?? target?.pollTimeout();
      this.#rearm(t === undefined ? tt : tt === undefined || t <= tt ? t : tt);
    } finally {
      this.#pumping = false;
    }
  }

  #only(ifIndex: number): void {
    if (ifIndex !== 0)
      throw new UsageError(`${this.name}: a chimney host has interface 0 only, not ${ifIndex}`);
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
      const now = this.#sched.now;
      this.stack.advanceTo(now);
      const tt = this.target?.pollTimeout();
      if (tt !== undefined && tt <= now) this.target?.handleTimeout(now);
      this.pump();
    });
  }
}
