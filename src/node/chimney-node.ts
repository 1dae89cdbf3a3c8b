/**
 * The chimney node: one host stack, optionally with an offload manager and an offload target in
 * front of it, and the one loop that drives them. Every driver (the simulator's scheduler, the
 * real-time TAP driver, the socket layer's drivers, the packetdrill device) is a thin clock and
 * I/O adapter around a `ChimneyNode`; none of them writes this loop again.
 *
 * Theory of operation
 * - Topology. The target is the NIC: frames from the wire enter the target (`input`), which runs
 *   offloaded connections itself and indicates everything else up to the stack; the stack's
 *   frames leave through `target.sendFrame` (the non-offload send path) and the target's
 *   `pollTransmit` feeds the wire. Without a target the node is a plain host: wire <-> stack, on
 *   any number of interfaces.
 * - The host's clock first. The target's upcalls (completions, indications, events) carry no time
 *   of their own: the host stamps them with its clock. So before the target is driven (a frame,
 *   its recorded work, its timers) the stack is advanced to `now` (`HostStack.advanceTo`). This
 *   rule lives here only.
 * - Settle. `settle()` runs rounds until nothing moves: the target's recorded work
 *   (`process`: state-operation completions, data completions), the stack's events to the
 *   application, the stack's frames into the target (or onto the wire), the events building
 *   them raised, the target's frames onto the wire. Events go before frames: an application that
 *   reads on `readable` frees receive window before the ACK is built, which then advertises it
 *   (ACKed first, a 32 KiB buffer advertised one segment less on every ACK of a bulk transfer).
 *   A round that moved nothing ends the loop unless the target has work due (`hasWork()`: a
 *   state operation recorded during the round; a timer due now is not work, `fire` runs it).
 *   The application's event
 *   handler may call the stack or the manager back; such a call while settling is absorbed by the
 *   running loop (it goes round again), never recursion. A loop that has not settled after
 *   `MAX_SETTLE_ROUNDS` rounds is a bug: it throws `InvariantViolation`.
 * - Time. `now()` is read at the start of every round and again after any callback that may
 *   have called the stack at a later instant (a real clock moves while handlers run; a virtual
 *   one does not); the stack refuses time that goes backwards. `deadline()` is the earliest of the stack's and the target's; `fire()`
 *   runs the timers that are due, then the driver calls `settle()`.
 *
 * `createChimney` is the one factory of "host + manager + target": a ledger, the manager over the
 * stack, the software target over the manager, attached.
 */
import type { OffloadHost, OffloadTarget } from "../chimney/contract.js";
import { OffloadManager, type OffloadPolicy, type ReceiveKnobs } from "../host/offload-manager.js";
import type { HostStack, StackEvent } from "../host/stack.js";
import { BufferLedger } from "../nbl/ledger.js";
import { SoftwareTarget, type SoftwareTargetOptions } from "../offload-target/software-target.js";
import { Instant } from "../time/instant.js";
import { InvariantViolation } from "../util/errors.js";
import type { MacAddr } from "../wire/ethernet.js";

/** A target that is also the NIC: what a chimney node drives (src/offload-target's SoftwareTarget). */
export interface NicTarget extends OffloadTarget {
  /** A frame from the wire; `verified`: the device verified its IP and TCP checksums. */
  handleFrame(now: Instant, frame: Uint8Array, verified?: boolean): void;
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
  /** When the driver should call in next: `now` when `process` has work, else `pollTimeout`. */
  pollAt(now: Instant): Instant | undefined;
  /** True when `process` has work due (a state operation recorded, data completions). */
  hasWork(): boolean;
}

/** Where a node's output goes: the driver's I/O adapter. */
export interface NodeIo {
  /** A frame for the wire on interface `ifIndex` (always 0 behind a target). */
  transmit(ifIndex: number, frame: Uint8Array): void;
  /** A socket-level event of the stack, in the order the stack produced it. */
  event(ev: StackEvent): void;
}

/** Rounds after which a loop that still moves is taken for a livelock. */
export const MAX_SETTLE_ROUNDS = 1_000_000;

/** One host, with or without an offload target, and the loop that drives it. */
export class ChimneyNode {
  readonly stack: HostStack;
  readonly manager: OffloadManager | undefined;
  readonly target: NicTarget | undefined;
  readonly ledger: BufferLedger | undefined;
  /** The driver's clock. */
  readonly now: () => Instant;
  /** The driver's output; replaceable (a driver may install it after construction). */
  io: NodeIo;
  #settling = false;
  #again = false;

  constructor(
    stack: HostStack,
    now: () => Instant,
    io: NodeIo,
    chimney?: {
      readonly manager: OffloadManager;
      readonly target: NicTarget;
      readonly ledger?: BufferLedger;
    },
  ) {
    this.stack = stack;
    this.now = now;
    this.io = io;
    this.manager = chimney?.manager;
    this.target = chimney?.target;
    this.ledger = chimney?.ledger ?? chimney?.manager.ledger;
  }

  /** True while `settle` runs (a call from inside an event handler). */
  get settling(): boolean {
    return this.#settling;
  }

  /**
   * A frame from the wire on interface `ifIndex`: into the target (the NIC), or the stack.
   * `verified`: the device verified its IP and TCP checksums (receive checksum offload).
   */
  input(ifIndex: number, frame: Uint8Array, verified = false): void {
    const now = this.now();
    const target = this.target;
    if (target !== undefined) {
      this.stack.advanceTo(now); // the target's upcalls use the host's clock
      target.handleFrame(now, frame, verified);
    } else this.stack.handleFrame(now, ifIndex, frame, verified);
  }

  /**
   * Runs target and stack until nothing moves (see the header). True if anything moved (a frame,
   * an event, target work); false also for a call absorbed by a running loop.
   */
  settle(): boolean {
    if (this.#settling) {
      this.#again = true; // a handler's own call: the running loop goes round again
      return false;
    }
    this.#settling = true;
    try {
      const { stack, target } = this;
      for (let round = 0; ; round++) {
        this.#again = false;
        let moved = false;
        if (target !== undefined) {
          const now = this.now();
          stack.advanceTo(now);
          target.process(now);
        }
        // The application hears first: what it reads on a `readable` event is window the ACKs
        // built next advertise (the stack collects events before it builds segments).
        for (let ev = stack.pollConnEvent(); ev !== undefined; ev = stack.pollConnEvent()) {
          moved = true;
          this.io.event(ev);
        }
        const now = this.now(); // event handlers ran in between
        if (target !== undefined) {
          for (let f = stack.pollTransmit(now); f !== undefined; f = stack.pollTransmit(now)) {
            moved = true;
            target.sendFrame(f.frame);
          }
        } else {
          // A fresh reading per frame: the output callback may feed the stack (a real-time
          // link stage delivering inbound frames) at a later instant.
          for (let f = stack.pollTransmit(now); f !== undefined; f = stack.pollTransmit(this.now())) {
            moved = true;
            this.io.transmit(f.ifIndex, f.frame);
          }
        }
        for (let ev = stack.pollEvent(); ev !== undefined; ev = stack.pollEvent()) {
          moved = true;
          this.io.event(ev);
        }
        if (target !== undefined) {
          const later = this.now(); // event handlers ran in between
          for (let f = target.pollTransmit(later); f !== undefined; f = target.pollTransmit(later)) {
            moved = true;
            this.io.transmit(0, f);
          }
        }
        if (!moved && !this.#again && target?.hasWork() !== true) return round > 0;
        if (round >= MAX_SETTLE_ROUNDS) {
          throw new InvariantViolation(`the chimney node did not settle in ${MAX_SETTLE_ROUNDS} rounds`);
        }
      }
    } finally {
      this.#settling = false;
    }
  }

  /** The earliest deadline of stack and target (`now` when the target has work due). */
  deadline(): Instant | undefined {
    const st = this.stack.pollTimeout();
    const target = this.target;
    return target === undefined ? st : Instant.earliest(st, target.pollAt(this.now()));
  }

  /** Runs the stack's and the target's timers that are due; call `settle()` after. */
  fire(): void {
    const now = this.now();
    this.stack.handleTimeout(now); // brings the host's clock to now before the target runs
    const target = this.target;
    if (target === undefined) return;
    const tt = target.pollTimeout();
    if (tt !== undefined && tt <= now) target.handleTimeout(now);
  }
}

/** Observers of some methods of an interface: same arguments, nothing returned. */
type Observers<T> = {
  readonly [K in keyof T]?: T[K] extends (...args: infer A) => unknown ? (...args: A) => void : never;
};

/** What `ChimneyOptions.observe` watches: calls down to the target and up to the host. */
export interface ChimneyCallObserver {
  readonly toTarget?: Observers<OffloadTarget> | undefined;
  readonly toHost?: Observers<OffloadHost> | undefined;
}

/**
 * `o` seen through a proxy whose methods run on `o` itself (its private fields stay reachable),
 * those named in `seen` after calling that observer with the same arguments.
 */
function observed<T extends object>(o: T, seen: Observers<T> | undefined): T {
  if (seen === undefined) return o;
  const observers = seen as Readonly<Record<PropertyKey, ((...a: unknown[]) => void) | undefined>>;
  const methods = new Map<PropertyKey, unknown>();
  return new Proxy(o, {
    get(target, key) {
      const v: unknown = Reflect.get(target, key);
      if (typeof v !== "function") return v;
      let m = methods.get(key);
      if (m === undefined) {
        const method = v as (...a: unknown[]) => unknown;
        const see = observers[key];
        m =
          see === undefined
            ? method.bind(target)
            : (...args: unknown[]) => {
                see(...args);
                return method.apply(target, args);
              };
        methods.set(key, m);
      }
      return m;
    },
  });
}

/** How `createChimney` builds the manager and the target. */
export interface ChimneyOptions {
  /** The interface's MAC (the target stamps it on frames). */
  readonly mac: MacAddr;
  /** The host's offload policy. */
  readonly policy?: OffloadPolicy | undefined;
  /** How the host consumes offloaded receive data (default: accept every indication). */
  readonly knobs?: ReceiveKnobs | undefined;
  /** Further options of the SoftwareTarget (its engine configuration defaults to the stack's). */
  readonly target?: Partial<Omit<SoftwareTargetOptions, "host" | "ledger" | "mac">> | undefined;
  /** The ledger to share (default: a new one). */
  readonly ledger?: BufferLedger | undefined;
  /**
   * Sees the chimney calls between manager and target (both interfaces of
   * src/chimney/contract.ts) with their arguments, just before each runs; must not call back.
   * Without it nothing is interposed.
   */
  readonly observe?: ChimneyCallObserver | undefined;
}

/** The chimney half of a node: manager and target sharing one ledger. */
export interface Chimney {
  readonly manager: OffloadManager;
  readonly target: SoftwareTarget;
  readonly ledger: BufferLedger;
}

/** Host + manager + target: the one place they are wired together. */
export function createChimney(stack: HostStack, o: ChimneyOptions): Chimney {
  const ledger = o.ledger ?? new BufferLedger();
  const manager = new OffloadManager(
    stack,
    ledger,
    o.policy ?? {},
    o.knobs, // the manager's default: accept every indication
  );
  const target = new SoftwareTarget({
    tcpConfig: stack.tcpConfig,
    ...o.target,
    host: observed<OffloadHost>(manager, o.observe?.toHost),
    ledger,
    mac: o.mac,
  });
  manager.attachTarget(observed<OffloadTarget>(target, o.observe?.toTarget));
  return { manager, target, ledger };
}
