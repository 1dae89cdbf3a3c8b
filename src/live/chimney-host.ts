/**
 * A live chimney host: our `HostStack` with an `OffloadManager` and a `SoftwareTarget` in front
 * of it, on real time, attached through a TAP device to the real Linux kernel in a namespace,
 * with `NetStack` sockets on top.
 *
 * The topology is the chimney's (as `src/sim/offload-node.ts` on virtual time): the target is the
 * NIC, so frames flow kernel -> TAP -> target -> (non-offload path) stack, and stack -> target
 * (`sendFrame`) -> TAP. Offloaded connections are run by the target itself. `LiveChimneyDriver`
 * is the real-time driver loop: every wake-up (frames read, a timer, a socket call) runs the
 * target's recorded work (`process`), drains the stack's frames into the target and its events
 * to the socket layer, drains the target's frames to the TAP, and re-arms one Node timer at the
 * earliest of the stack's and the target's deadlines. Frames to the TAP leave in one write at
 * the end of the current job.
 */
import { acceptAllKnobs, OffloadManager, type ReceiveKnobs } from "../host/offload-manager.js";
import { HostStack } from "../host/stack.js";
import { BufferLedger } from "../nbl/ledger.js";
import { Prng } from "../sim/prng.js";
import {
  type DriverTimer,
  RealTimeClock,
  type StackDriver,
  type StackEventHandler,
} from "../socket/driver.js";
import { NetStack } from "../socket/net-stack.js";
import { SoftwareTarget } from "../offload-target/software-target.js";
import { tcpConfig, type TcpConfig } from "../tcp/config.js";
import { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { mac } from "../wire/ethernet.js";
import { ip } from "../wire/ip-addr.js";
import { createTapNamespace, LIVE_ADDRS, type TapNamespace } from "./netns.js";
import type { TapMode } from "./tap.js";

/** Options of `startLiveChimneyHost`. */
export interface LiveChimneyHostOptions {
  /** Part of the namespace name. */
  readonly tag?: string | undefined;
  /** Seed of the stack's randomness and of the receive knobs (default 1). */
  readonly seed?: number | undefined;
  /** TCP configuration overrides (our stack and the target's engines). */
  readonly tcp?: Partial<TcpConfig> | undefined;
  /** MTU of both sides (default 1500). */
  readonly mtu?: number | undefined;
  /** TAP attachment (default `addon`). */
  readonly mode?: TapMode | undefined;
  /** How the host consumes offloaded receive data (default: accept every indication). */
  readonly knobs?: ((random: Prng) => ReceiveKnobs) | undefined;
}

/** A running live chimney host. */
export interface LiveChimneyHost {
  /** The namespace with the kernel peer in it. */
  readonly netns: TapNamespace;
  /** The seed in use (print it in failures). */
  readonly seed: number;
  /** Our sockets. */
  readonly net: NetStack;
  /** The driver running stack and target. */
  readonly driver: LiveChimneyDriver;
  /** Our stack. */
  readonly stack: HostStack;
  /** The host half of the chimney. */
  readonly manager: OffloadManager;
  /** The NIC half of the chimney. */
  readonly target: SoftwareTarget;
  /** The buffer ledger shared by manager and target (check `assertQuiescent()` at the end). */
  readonly ledger: BufferLedger;
  /** A one-line description for failure messages: namespace and seed. */
  readonly label: string;
  /** Stops the driver and removes the namespace (idempotent). */
  close(): void;
}

/** Where the driver's frames go. */
export interface ChimneyFrameIo {
  /** A frame from the target for the wire. */
  transmit(frame: Uint8Array): void;
}

/** The real-time driver of a stack with an offload target in front of it (a `StackDriver`). */
export class LiveChimneyDriver implements StackDriver {
  readonly stack: HostStack;
  readonly target: SoftwareTarget;
  readonly #io: ChimneyFrameIo;
  readonly #time = new RealTimeClock();
  #handler: StackEventHandler = () => undefined;
  #pumping = false;
  #again = false;
  /** Runs the deadlines of stack and target; made once, not per flush. */
  readonly #onWake = (): void => {
    const now = this.now();
    this.stack.advanceTo(now);
    const tt = this.target.pollTimeout();
    if (tt !== undefined && tt <= now) this.target.handleTimeout(now);
    this.flush();
  };

  constructor(stack: HostStack, target: SoftwareTarget, io: ChimneyFrameIo) {
    this.stack = stack;
    this.target = target;
    this.#io = io;
  }

  /** Microseconds since the driver started, as a monotonic `Instant`. */
  now(): Instant {
    return this.#time.now();
  }

  /** Frames from the wire: they enter the target (the NIC) first. */
  receive(frames: readonly Uint8Array[]): void {
    if (this.#time.stopped) return;
    const now = this.now();
    this.stack.advanceTo(now); // the target's upcalls use the host's clock
    for (const f of frames) this.target.handleFrame(now, f);
    this.flush();
  }

  /**
   * Runs target and stack until neither has anything to do, then re-arms the timer. Call after
   * every user call (socket calls do) and after chimney operations (`offload`, `terminate`).
   */
  flush(): void {
    if (this.#time.stopped) return;
    if (this.#pumping) {
      this.#again = true; // an event handler made a call: the running loop goes round again
      return;
    }
    this.#pumping = true;
    try {
      const target = this.target;
      for (let round = 0; ; round++) {
        this.#again = false;
        let progressed = false;
        const now = this.now();
        this.stack.advanceTo(now);
        target.process(now);
        for (let f = this.stack.pollTransmit(now); f !== undefined; f = this.stack.pollTransmit(now)) {
          progressed = true;
          target.sendFrame(f.frame);
        }
        for (let ev = this.stack.pollEvent(); ev !== undefined; ev = this.stack.pollEvent()) {
          progressed = true;
          this.#handler(ev);
        }
        for (let f = target.pollTransmit(now); f !== undefined; f = target.pollTransmit(now)) {
          progressed = true;
          this.#io.transmit(f);
        }
        if (!progressed && !this.#again && !target.hasWork()) break;
        if (round > 1_000_000) throw new UsageError("the chimney driver loop does not settle");
      }
      const st = this.stack.pollTimeout();
      const tt = target.pollTimeout();
      this.#time.wakeAt(Instant.earliest(st, tt), this.#onWake);
    } finally {
      this.#pumping = false;
    }
  }

  /** Installs the socket layer's event handler. */
  setEventHandler(fn: StackEventHandler): void {
    this.#handler = fn;
  }

  /** Runs `fn` at `at` on the driver's clock. */
  timer(at: Instant, fn: () => void): DriverTimer {
    return this.#time.timer(at, fn);
  }

  /** Cancels every timer; the driver ignores frames and calls afterwards. */
  stop(): void {
    this.#time.stop();
  }
}

/** Creates the namespace and the TAP device, and starts stack + target on it. Needs root. */
export function startLiveChimneyHost(options: LiveChimneyHostOptions = {}): LiveChimneyHost {
  const seed = options.seed ?? 1;
  const mtu = options.mtu ?? 1500;
  const netns = createTapNamespace({ tag: options.tag, mode: options.mode, mtu });
  try {
    return build(netns, seed, mtu, options);
  } catch (e) {
    netns.close();
    throw e;
  }
}

function build(
  netns: TapNamespace,
  seed: number,
  mtu: number,
  options: LiveChimneyHostOptions,
): LiveChimneyHost {
  const root = new Prng(seed);
  const ourMac = mac("02:00:00:00:00:02");
  const tcp = tcpConfig({ ...options.tcp });
  const stack = new HostStack({
    interfaces: [
      {
        name: "tap0",
        link: "ethernet",
        mac: ourMac,
        mtu,
        addresses: [
          { addr: ip(LIVE_ADDRS.ours4), prefixLen: 24 },
          { addr: ip(LIVE_ADDRS.ours6), prefixLen: 64 },
        ],
      },
    ],
    tcp,
    random: root.fork(),
  });
  const knobRng = root.fork();
  const ledger = new BufferLedger();
  const knobs = options.knobs?.(knobRng) ?? acceptAllKnobs({ nextU32: () => knobRng.nextU32() });
  const manager = new OffloadManager(stack, ledger, {}, knobs);
  const target = new SoftwareTarget({ host: manager, ledger, mac: ourMac, tcpConfig: tcp });
  manager.attachTarget(target);

  const tap = netns.tap;
  let closed = false;
  let txq: Uint8Array[] = [];
  let txQueued = false;
  const writeOut = (): void => {
    txQueued = false;
    if (closed || txq.length === 0) return;
    const batch = txq;
    txq = [];
    tap.write(batch);
  };
  const driver = new LiveChimneyDriver(stack, target, {
    transmit(frame) {
      txq.push(frame);
      if (!txQueued) {
        txQueued = true;
        queueMicrotask(writeOut);
      }
    },
  });
  tap.start(
    (frames) => {
      if (!closed) driver.receive(frames);
    },
    (code) => {
      if (!closed) process.emitWarning(`TAP read failed: ${code}`);
    },
  );
  const net = new NetStack(driver, { hosts: { kernel: LIVE_ADDRS.kernel4, kernel6: LIVE_ADDRS.kernel6 } });
  return {
    netns,
    seed,
    net,
    driver,
    stack,
    manager,
    target,
    ledger,
    label: `namespace ${netns.ns}, seed ${seed}`,
    close() {
      if (closed) return;
      writeOut();
      closed = true;
      driver.stop();
      netns.close();
    },
  };
}
