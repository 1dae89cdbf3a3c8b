/**
 * Two hosts on real time, joined by an in-process link: host A with its offload target on a
 * worker thread (src/worker), host B host-only. Node-style sockets on both. Frames cross the
 * link in batches at the end of each turn of the event loop (`setImmediate`), optionally with
 * seeded loss. Real threads: the order of events differs from run to run; the seed fixes only
 * the traffic, the loss and the schedule of offloads and terminates.
 */
import type { ReceiveKnobs } from "../../src/host/offload-manager.js";
import type { HostStack } from "../../src/host/stack.js";
import { segmentHost, segmentMac } from "../../src/sim/segment-host.js";
import { Prng } from "../../src/sim/prng.js";
import { RealTimeDriver } from "../../src/socket/driver.js";
import { NetStack } from "../../src/socket/net-stack.js";
import { tcpConfig, type TcpConfig } from "../../src/tcp/config.js";
import {
  startWorkerChimney,
  type WorkerChimney,
  type WorkerSoftwareTargetOptions,
} from "../../src/worker/target-proxy.js";

export interface WorkerPairOptions {
  readonly seed: number;
  /** Frame loss on the link, both ways (default 0). */
  readonly loss?: number | undefined;
  readonly knobs?: ((rng: Prng) => ReceiveKnobs) | undefined;
  readonly tcp?: Partial<TcpConfig> | undefined;
  readonly target?: WorkerSoftwareTargetOptions | undefined;
}

export interface WorkerPair {
  readonly a: { readonly stack: HostStack; readonly driver: RealTimeDriver; readonly net: NetStack };
  readonly b: { readonly stack: HostStack; readonly driver: RealTimeDriver; readonly net: NetStack };
  readonly chimney: WorkerChimney;
  /** Frames dropped by the link. */
  readonly dropped: () => number;
  close(): Promise<void>;
}

/** A's address and B's. */
export const PAIR_A = "192.0.2.1";
export const PAIR_B = "192.0.2.2";

/** Starts the pair (the worker first). */
export async function startWorkerPair(o: WorkerPairOptions): Promise<WorkerPair> {
  const root = new Prng(o.seed);
  const cfg = tcpConfig({ ...o.tcp });
  const sa = segmentHost(1, { tcp: cfg, random: root.fork() });
  const sb = segmentHost(2, { tcp: cfg, random: root.fork() });
  const knobRng = root.fork();
  const chimney = await startWorkerChimney(sa, {
    mac: segmentMac(1),
    knobs: o.knobs?.(knobRng),
    target: o.target,
  });
  const linkRng = root.fork();
  const loss = o.loss ?? 0;
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
  chimney.target.onWake = () => da.flush();
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
      await chimney.target.close();
    },
  };
}
