/**
 * A live host: our `HostStack` on real time, attached through a TAP device to the real Linux
 * kernel in a network namespace, with `NetStack` sockets on top.
 *
 * Frame path (our fault stages sit on both directions; a clean profile inserts no stage):
 *   kernel -> TAP -> reader batch -> [fromKernel stages] -> stack.handleFrame ... one flush
 *   stack.pollTransmit -> [toKernel stages] -> transmit queue -> one TAP write per batch
 * Frames read in one wake-up are all handed to the stack before one `flush()`, so the
 * stack's replies to a whole batch leave in one write call. The transmit queue is written at
 * the end of the current job (a microtask), which also batches what socket calls produce.
 *
 * The pcap option captures at our side of the link: frames as the stack received them (after
 * the fromKernel faults) and as it sent them (before the toKernel faults).
 */
import { acceptAllKnobs, type ReceiveKnobs } from "../host/offload-manager.js";
import { HostStack } from "../host/stack.js";
import { type Chimney, createChimney } from "../node/chimney-node.js";
import { createWorkerChimney, type WorkerChimney } from "../worker/target-proxy.js";
import { type OffloadWorkers, startOffloadWorkers } from "../worker/rss-targets.js";
import { buildLinkChain, type FaultProfile, type LinkChain } from "../sim/link.js";
import { Prng } from "../sim/prng.js";
import { RealTimeDriver } from "../socket/driver.js";
import { NetStack } from "../socket/net-stack.js";
import { tcpConfig, type TcpConfig } from "../tcp/config.js";
import { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { mac } from "../wire/ethernet.js";
import { ip } from "../wire/ip-addr.js";
import { createTapNamespace, LIVE_ADDRS, type TapNamespace } from "./netns.js";
import { RealTimeScheduler } from "./rt-scheduler.js";
import type { TapMode, TapOffload, TapStats } from "../device/tap.js";

/** Our interface's MAC, as text (a steered namespace gives its outer device the same one). */
export const LIVE_OUR_MAC = "02:00:00:00:00:02";
const OUR_MAC = mac(LIVE_OUR_MAC);

/** Receives every frame crossing our side of the link, stamped in wall-clock microseconds. */
export type FrameCapture = (wallUs: number, frame: Uint8Array) => void;

/** Options of `startLiveHost`. */
export interface LiveHostOptions {
  /** Part of the namespace name. */
  readonly tag?: string | undefined;
  /** Seed of the stack's randomness and of the fault stages (default 1). */
  readonly seed?: number | undefined;
  /** Faults on frames from our stack to the kernel. */
  readonly toKernel?: FaultProfile | undefined;
  /** Faults on frames from the kernel to our stack. */
  readonly fromKernel?: FaultProfile | undefined;
  /** TCP configuration overrides for our stack. */
  readonly tcp?: Partial<TcpConfig> | undefined;
  /** MTU of both sides (default 1500). */
  readonly mtu?: number | undefined;
  /** TAP attachment (default `addon`). */
  readonly mode?: TapMode | undefined;
  /** Frames per read wake-up (default 256). */
  readonly readBatch?: number | undefined;
  /**
   * Offloads of the TAP device (addon mode; default `tso`; the `fs` mode has none): `gso`
   * writes runs of contiguous segments as one GSO frame, `tso` also lets the kernel send us TSO
   * frames (see `TapOffload`); `off` gives wire-sized frames both ways, as a 1500-byte link.
   * The stack, the fault stages and the capture still see our segments one by one; with `tso`
   * they see the kernel's segments as it cut them (up to 64 KiB), except that `tso` becomes
   * `gso` when `fromKernel` has fault stages (they work on wire-sized frames).
   */
  readonly offload?: TapOffload | undefined;
  /** Capture at our side of the link. */
  readonly capture?: FrameCapture | undefined;
  /** See `TapNamespaceOptions.kernelAddresses` (default true). */
  readonly kernelAddresses?: boolean | undefined;
  /**
   * Put the chimney in front of the stack: an offload manager and the software target (the NIC),
   * so frames from the kernel enter the target first (see chimney-host.ts). `knobs`: how the
   * host consumes offloaded receive data (default: accept every indication).
   */
  readonly chimney?:
    | {
        readonly knobs?: ((random: Prng) => ReceiveKnobs) | undefined;
        /**
         * The target on its own thread (started with `startOffloadWorkers`, or use
         * `startLiveWorkerHost`); default: the software target on this thread.
         */
        readonly worker?: OffloadWorkers | undefined;
      }
    | undefined;
}

/** Traffic counters of a live host (the TAP device's, see `TapStats`). */
export interface LiveStats extends Readonly<TapStats> {
  /** Per-direction fault stage counters, keyed by stage kind. */
  readonly faults: Record<string, Record<string, { received: number; forwarded: number; dropped: number }>>;
}

/** A running live host. */
export interface LiveHost {
  /** The namespace with the kernel peer in it. */
  readonly netns: TapNamespace;
  /** The seed in use (print it in failures). */
  readonly seed: number;
  /** Our sockets. */
  readonly net: NetStack;
  /** The driver running our stack. */
  readonly driver: RealTimeDriver;
  /** Our stack. */
  readonly stack: HostStack;
  /** The chimney in front of the stack, when `chimney` was asked for. */
  readonly chimney: Chimney | WorkerChimney | undefined;
  /** A one-line description for failure messages: namespace and seed. */
  readonly label: string;
  /** Counters. */
  stats(): LiveStats;
  /**
   * Frames read from the TAP device for which `take` returns true go to `take` alone, not to our
   * stack or target (a connection handed to the namespace's kernel: its frames still queued at
   * the device go there too). `undefined` ends it. Not with a worker that owns the device.
   */
  divert(take: ((frame: Uint8Array) => boolean) | undefined): void;
  /** Stops the driver and removes the namespace (idempotent). */
  close(): void;
}

/** Creates the namespace and the TAP device, and starts our stack on it. Needs root. */
export function startLiveHost(options: LiveHostOptions = {}): LiveHost {
  const seed = options.seed ?? 1;
  const mtu = options.mtu ?? 1500;
  // Fault stages from the kernel work on wire frames: no TSO frames through them.
  const fromKernelFaults = options.fromKernel !== undefined && Object.keys(options.fromKernel).length > 0;
  // The chimney's target takes wire-sized frames unless asked otherwise.
  const requested = options.offload ?? (options.chimney === undefined ? "tso" : "off");
  const offload = requested === "tso" && fromKernelFaults ? "gso" : requested;
  const netns = createTapNamespace({
    tag: options.tag,
    mode: options.mode,
    readBatch: options.readBatch,
    offload,
    mtu,
    kernelAddresses: options.kernelAddresses,
  });
  try {
    return build(netns, seed, mtu, options);
  } catch (e) {
    netns.close();
    throw e;
  }
}

function build(netns: TapNamespace, seed: number, mtu: number, options: LiveHostOptions): LiveHost {
  const root = new Prng(seed);
  const stack = new HostStack({
    interfaces: [
      {
        name: "tap0",
        link: "ethernet",
        mac: OUR_MAC,
        mtu,
        addresses: [
          { addr: ip(LIVE_ADDRS.ours4), prefixLen: 24 },
          { addr: ip(LIVE_ADDRS.ours6), prefixLen: 64 },
        ],
      },
    ],
    tcp: tcpConfig({ ...options.tcp }),
    random: root.fork(),
  });
  let chimney: Chimney | WorkerChimney | undefined;
  const worker = options.chimney?.worker;
  if (options.chimney !== undefined) {
    const knobRng = root.fork();
    const knobs = options.chimney.knobs?.(knobRng) ?? acceptAllKnobs({ nextU32: () => knobRng.nextU32() });
    chimney =
      worker === undefined
        ? createChimney(stack, { mac: OUR_MAC, knobs })
        : createWorkerChimney(stack, worker, { knobs });
  }
  const tap = netns.tap;
  const capture = options.capture;
  const wallOrigin = Date.now() * 1000;
  let closed = false;

  // Transmit side: frames queue here and leave in one write at the end of the current job.
  let txq: Uint8Array[] = [];
  let txQueued = false;
  const writeOut = (): void => {
    txQueued = false;
    if (closed || txq.length === 0) return;
    const batch = txq;
    txq = [];
    tap.write(batch);
  };
  const toWire = {
    deliver(_now: Instant, frame: Uint8Array): void {
      txq.push(frame);
      if (!txQueued) {
        txQueued = true;
        queueMicrotask(writeOut);
      }
    },
  };

  // The driver is created after the chains exist; the closures below read it lazily.
  const ref: { driver: RealTimeDriver | undefined } = { driver: undefined };
  const clock = (): Instant => ref.driver?.now() ?? Instant.ZERO;
  const intoStack = {
    // Stage events run at or after their scheduled instant: the stack gets the present, which
    // keeps its clock monotonic.
    deliver(_at: Instant, frame: Uint8Array, verified = false): void {
      const now = clock();
      if (capture !== undefined) capture(wallOrigin + now, frame);
      ref.driver?.node.input(0, frame, verified); // into the target first when there is one
    },
  };
  const faulty = (p: FaultProfile | undefined): boolean => p !== undefined && Object.keys(p).length > 0;
  const rt = new RealTimeScheduler(clock, () => ref.driver?.flush());
  const linkRng = root.fork();
  const toKernel: LinkChain | undefined = faulty(options.toKernel)
    ? buildLinkChain(toWire, {
        scheduler: rt.scheduler,
        prng: linkRng,
        profile: options.toKernel ?? {},
        direction: "ours>kernel",
      })
    : undefined;
  const fromKernel: LinkChain | undefined = faulty(options.fromKernel)
    ? buildLinkChain(intoStack, {
        scheduler: rt.scheduler,
        prng: linkRng,
        profile: options.fromKernel ?? {},
        direction: "kernel>ours",
      })
    : undefined;

  const driver = new RealTimeDriver(
    stack,
    {
      transmit(_ifIndex: number, frame: Uint8Array): void {
        const now = driver.now();
        if (capture !== undefined) capture(wallOrigin + now, frame);
        if (toKernel === undefined) {
          toWire.deliver(now, frame);
          return;
        }
        rt.sync();
        toKernel.deliver(rt.scheduler.now, frame);
        rt.rearm();
      },
    },
    { chimney },
  );
  ref.driver = driver;
  if (worker !== undefined) worker.onWake = () => driver.flush();
  // The origin of the driver's clock is now; the scheduler started at ZERO, which is <= now.

  // A worker target that owns the wire reads and writes the device itself.
  if (worker?.ownsWire !== true)
    tap.start(
      (frames, verified) => {
        if (closed) return;
        const now = driver.now();
        const take = diverted;
        if (fromKernel === undefined) {
          for (let i = 0; i < frames.length; i++) {
            const f = frames[i] as Uint8Array;
            if (take === undefined || !take(f)) intoStack.deliver(now, f, verified[i] === 1);
          }
        } else {
          rt.sync();
          for (const f of frames) if (take === undefined || !take(f)) fromKernel.deliver(rt.scheduler.now, f);
          rt.rearm();
        }
        driver.flush();
      },
      (code) => {
        if (!closed) process.emitWarning(`TAP read failed: ${code}`);
      },
    );

  let diverted: ((frame: Uint8Array) => boolean) | undefined;
  const net = new NetStack(driver, {
    hosts: { kernel: LIVE_ADDRS.kernel4, kernel6: LIVE_ADDRS.kernel6 },
  });
  return {
    netns,
    seed,
    net,
    driver,
    stack,
    chimney,
    label: `namespace ${netns.ns}, seed ${seed}`,
    divert(take) {
      if (worker?.ownsWire === true) throw new UsageError("divert: the worker target reads the device");
      diverted = take;
    },
    stats() {
      const faults: LiveStats["faults"] = {};
      if (toKernel !== undefined) faults[toKernel.direction] = toKernel.stats();
      if (fromKernel !== undefined) faults[fromKernel.direction] = fromKernel.stats();
      return { ...tap.stats, faults };
    },
    close() {
      if (closed) return;
      writeOut();
      closed = true;
      rt.stop();
      driver.stop();
      if (worker !== undefined) {
        worker.stopWire(); // it lets go of the device before the device is closed
        void worker.close();
      }
      netns.close();
    },
  };
}

/**
 * `startLiveHost` with the offload target on its own thread (src/worker): the worker starts
 * first, then the namespace and the stack. Needs root.
 */
export async function startLiveWorkerHost(
  options: Omit<LiveHostOptions, "chimney"> & {
    readonly knobs?: ((random: Prng) => ReceiveKnobs) | undefined;
    /**
     * Target workers (default 1). They own the wire (a queue of the TAP device each) unless this
     * thread must see every frame; then it relays the wire to them.
     */
    readonly workers?: number | undefined;
  } = {},
): Promise<LiveHost & { readonly chimney: WorkerChimney }> {
  // The worker owns the device unless our fault stages or the capture (on this thread) must see
  // every frame; then this thread relays the wire to it.
  const relay =
    Object.keys(options.toKernel ?? {}).length > 0 ||
    Object.keys(options.fromKernel ?? {}).length > 0 ||
    options.capture !== undefined;
  const offload = options.offload ?? "off";
  const workers = options.workers ?? 1;
  const netns = createTapNamespace({
    // Several workers owning the wire: a queue of the device each.
    queues: relay ? 1 : workers,
    tag: options.tag,
    mode: options.mode,
    readBatch: options.readBatch,
    offload: relay && offload === "tso" && Object.keys(options.fromKernel ?? {}).length > 0 ? "gso" : offload,
    mtu: options.mtu ?? 1500,
  });
  try {
    const worker = await startOffloadWorkers({
      mac: OUR_MAC,
      tcpConfig: tcpConfig({ ...options.tcp }),
      wire: relay || workers > 1 ? undefined : netns.tap.handle,
      wires: relay || workers === 1 ? undefined : netns.tap.queues,
      workers,
    });
    try {
      const host = build(netns, options.seed ?? 1, options.mtu ?? 1500, {
        ...options,
        chimney: { knobs: options.knobs, worker },
      });
      return { ...host, chimney: host.chimney as WorkerChimney }; // built with the worker above
    } catch (e) {
      await worker.close();
      throw e;
    }
  } catch (e) {
    netns.close();
    throw e;
  }
}
