/**
 * The real-time pair (src/socket/realtime-pair.ts) with host A's target on a worker thread, as
 * the worker target's tests and benchmarks use it.
 */
import type { ReceiveKnobs } from "../../src/host/offload-manager.js";
import type { Prng } from "../../src/sim/prng.js";
import { type PairHost, startRealTimePair } from "../../src/socket/realtime-pair.js";
import type { TcpConfig } from "../../src/tcp/config.js";
import type { WorkerChimney, WorkerSoftwareTargetOptions } from "../../src/worker/target-proxy.js";

export { PAIR_A, PAIR_B } from "../../src/socket/realtime-pair.js";

export interface WorkerPairOptions {
  readonly seed: number;
  /** Frame loss on the link, both ways (default 0). */
  readonly loss?: number | undefined;
  readonly knobs?: ((rng: Prng) => ReceiveKnobs) | undefined;
  readonly tcp?: Partial<TcpConfig> | undefined;
  readonly target?: WorkerSoftwareTargetOptions | undefined;
  /** Target workers, spread by RSS (default 1). */
  readonly workers?: number | undefined;
  readonly ringFrames?: number | undefined;
}

export interface WorkerPair {
  readonly a: PairHost;
  readonly b: PairHost;
  readonly chimney: WorkerChimney;
  readonly dropped: () => number;
  close(): Promise<void>;
}

/** Starts the pair (the worker first). */
export async function startWorkerPair(o: WorkerPairOptions): Promise<WorkerPair> {
  const pair = await startRealTimePair({
    seed: o.seed,
    target: "worker",
    loss: o.loss,
    knobs: o.knobs,
    tcp: o.tcp,
    workerTarget: o.target,
    workers: o.workers,
    ringFrames: o.ringFrames,
  });
  return { ...pair, chimney: pair.chimney as WorkerChimney }; // target "worker" builds one
}
