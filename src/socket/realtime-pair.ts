/**
 * Two hosts on real time in this process, joined by an in-process link: host A with an offload
 * target of the chosen kind (on a worker thread, on this thread, or none), host B host-only.
 * Node-style sockets on both. Frames cross the link in batches at the end of each turn of the
 * event loop (`setImmediate`), optionally with seeded loss. With the worker target the order of
 * events differs from run to run: the seed fixes the traffic and the loss, not the threads.
 * Used by `chimney demo --target worker` and by the worker target's tests.
 */
import { acceptAllKnobs, type ReceiveKnobs } from "../host/offload-manager.js";
import type { HostStack } from "../host/stack.js";
import { type Chimney, createChimney } from "../node/chimney-node.js";
import { segmentHost, segmentMac } from "../sim/segment-host.js";
import { Prng } from "../sim/prng.js";
import { tcpConfig, type TcpConfig } from "../tcp/config.js";
import {
  startWorkerChimney,
  type WorkerChimney,
  type WorkerSoftwareTargetOptions,
} from "../worker/target-proxy.js";
import { UsageError } from "../util/errors.js";
import { RealTimeDriver } from "./driver.js";
import { NetStack } from "./net-stack.js";

/** Where host A's offload target runs. */
export type PairTarget = "worker" | "inline" | "none";

/** Options of `startRealTimePair`. */
export interface RealTimePairOptions {
  readonly seed: number;
  /** Host A's target (default `worker`). */
  readonly target?: PairTarget | undefined;
  /** Frame loss on the link, both ways (default 0). */
  readonly loss?: number | undefined;
  /** How A's host consumes offloaded data (default: accept every indication). */
  readonly knobs?: ((rng: Prng) => ReceiveKnobs) | undefined;
  readonly tcp?: Partial<TcpConfig> | undefined;
  /** Further options of the worker's SoftwareTarget. */
  readonly workerTarget?: WorkerSoftwareTargetOptions | undefined;
  /** Target workers, connections spread across them by RSS (default 1). */
  readonly workers?: number | undefined;
  /** Frames in flight to each worker at most (`WorkerTargetOptions.ringFrames`). */
  readonly ringFrames?: number | undefined;
}

/** One host of the pair. */
export interface PairHost {
  readonly stack: HostStack;
  readonly driver: RealTimeDriver;
  readonly net: NetStack;
}

/** A running pair. */
export interface RealTimePair {
  readonly a: PairHost;
  readonly b: PairHost;
  /** A's chimney (undefined for target `none`). */
  readonly chimney: WorkerChimney | Chimney | undefined;
  /** Frames the link dropped. */
  dropped(): number;
  /** Stops both drivers and the worker. */
  close(): Promise<void>;
}

/** A's address and B's. */
export const PAIR_A = "192.0.2.1";
export const PAIR_B = "192.0.2.2";

/** Starts the pair (the worker first). */
export async function startRealTimePair(o: RealTimePairOptions): Promise<RealTimePair> {
  const loss = o.loss ?? 0;
  if (!(loss >= 0 && loss <= 1)) throw new UsageError(`loss ${String(o.loss)}: must be in [0, 1]`);
  if (!Number.isSafeInteger(o.seed)) throw new UsageError(`seed ${String(o.seed)}: must be an integer`);
  const root = new Prng(o.seed);
  const cfg = tcpConfig({ ...o.tcp });
  const sa = segmentHost(1, { tcp: cfg, random: root.fork() });
  const sb = segmentHost(2, { tcp: cfg, random: root.fork() });
  const knobRng = root.fork();
  const knobs = o.knobs?.(knobRng) ?? acceptAllKnobs({ nextU32: () => knobRng.nextU32() });
  const target = o.target ?? "worker";
  let chimney: WorkerChimney | Chimney | undefined;
  if (target === "worker") {
    chimney = await startWorkerChimney(sa, {
      mac: segmentMac(1),
      knobs,
      target: o.workerTarget,
      workers: o.workers,
      ringFrames: o.ringFrames,
    });
  } else if (target === "inline") {
    chimney = createChimney(sa, { mac: segmentMac(1), knobs });
  }
  const linkRng = root.fork();
  let dropped = 0;
  let closed = false;
  const queues: [Uint8Array[], Uint8Array[]] = [[], []];
  let scheduled = false;
  const deliverAll = (): void => {
    scheduled = false;
    if (closed) return;
    const [toA, toB] = queues;
    queues[0] = [];
    queues[1] = [];
    if (toB.length > 0) db.receiveBatch(0, toB);
    if (toA.length > 0) da.receiveBatch(0, toA);
  };
  const put = (side: 0 | 1, frame: Uint8Array): void => {
    if (loss > 0 && linkRng.nextU32() / 2 ** 32 < loss) {
      dropped++;
      return;
    }
    queues[side].push(frame);
    if (!scheduled) {
      scheduled = true;
      setImmediate(deliverAll);
    }
  };
  const da: RealTimeDriver = new RealTimeDriver(sa, { transmit: (_i, f) => put(1, f) }, { chimney });
  const db: RealTimeDriver = new RealTimeDriver(sb, { transmit: (_i, f) => put(0, f) });
  if (chimney !== undefined && "onWake" in chimney.target) {
    const w = chimney.target;
    w.onWake = () => da.flush();
  }
  const hosts = { a: PAIR_A, b: PAIR_B };
  return {
    a: { stack: sa, driver: da, net: new NetStack(da, { hosts }) },
    b: { stack: sb, driver: db, net: new NetStack(db, { hosts }) },
    chimney,
    dropped: () => dropped,
    async close() {
      if (closed) return;
      closed = true;
      da.stop();
      db.stop();
      if (chimney !== undefined && "onWake" in chimney.target) await chimney.target.close();
    },
  };
}
