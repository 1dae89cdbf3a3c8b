/**
 * Runs a chimney node (src/node: a host stack, optionally with an offload manager and a target in
 * front of it) on the simulator: frames from a link enter the node, frames out of the node go to
 * the link of their interface, and the node's deadline is kept as one scheduler timer. Events go
 * to the application callback, in the order the stack produced them. The loop itself is the
 * node's (`ChimneyNode.settle`); this is only the clock and the links.
 */
import type { OffloadManager } from "../host/offload-manager.js";
import type { HostStack, StackEvent } from "../host/stack.js";
import type { BufferLedger } from "../nbl/ledger.js";
import { ChimneyNode, type NicTarget } from "../node/chimney-node.js";
import type { Instant } from "../time/instant.js";
import type { FrameSink } from "./frame-sink.js";
import type { Scheduler, SimTimer } from "./scheduler.js";

/** One host on the simulated network (with an offload target: interface 0 only). */
export class SimHost {
  readonly name: string;
  readonly node: ChimneyNode;
  readonly #sched: Scheduler;
  readonly #links: (FrameSink | undefined)[] = [];
  #timer: SimTimer | undefined;
  #timerAt: Instant | undefined;
  /** Receives every socket-level event; set by the application. */
  onEvent: (ev: StackEvent) => void = () => undefined;

  constructor(
    name: string,
    stack: HostStack,
    sched: Scheduler,
    chimney?: {
      readonly manager: OffloadManager;
      readonly target: NicTarget;
      readonly ledger?: BufferLedger;
    },
  ) {
    this.name = name;
    this.#sched = sched;
    this.node = new ChimneyNode(
      stack,
      () => sched.now,
      {
        transmit: (ifIndex, frame) => this.#links[ifIndex]?.deliver(sched.now, frame),
        event: (ev) => this.onEvent(ev),
      },
      chimney,
    );
  }

  /** The stack. */
  get stack(): HostStack {
    return this.node.stack;
  }

  /** The offload manager, when the host has a target. */
  get manager(): OffloadManager | undefined {
    return this.node.manager;
  }

  /** The offload target (the NIC), when the host has one. */
  get target(): NicTarget | undefined {
    return this.node.target;
  }

  /** Connects interface `ifIndex` to the entry of a link direction. */
  attach(ifIndex: number, out: FrameSink): void {
    this.#links[ifIndex] = out;
  }

  /** A sink that hands frames to interface `ifIndex` of this host. */
  port(ifIndex: number): FrameSink {
    return {
      deliver: (_now, frame) => {
        this.node.input(ifIndex, frame);
        this.pump();
      },
    };
  }

  /**
   * Drains the node's output and events and re-arms its timer. Call after every user call on
   * the stack or the manager (the socket layer's driver does).
   */
  pump(): void {
    if (this.node.settling) {
      this.node.settle(); // absorbed by the running loop, which re-arms when it ends
      return;
    }
    this.node.settle();
    this.#rearm(this.node.deadline());
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
      this.node.fire();
      this.pump();
    });
  }
}
