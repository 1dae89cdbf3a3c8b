/**
 * What the host's offload manager is told to do: when it offloads on its own (`OffloadPolicy`)
 * and how it consumes received data of offloaded connections (`ReceiveKnobs`, spec 14). The
 * knobs draw from a seeded `RandomSource`, so a run that uses them is a pure function of its
 * seed and tests can reach every branch of the target's delivery algorithm.
 */
import type { RandomSource } from "./stack.js";

/** When the manager offloads on its own (explicit `offload` calls always work). */
export interface OffloadPolicy {
  /** Offload an established connection once it has moved this many bytes; undefined = never. */
  readonly autoOffloadAfterBytes?: number | undefined;
  /** Also upload on optional TcpIndicateRetrieve reasons (spec 16.4); default false. */
  readonly honorOptionalRetrieve?: boolean | undefined;
  /** Preferred bytes per indication, passed as RcvIndicationSize (0 = unspecified). */
  readonly rcvIndicationSize?: number | undefined;
  /**
   * Idle bytes the receive chunk pool keeps for reuse (BufferedData copied at terminate lands in
   * pool chunks; see `OffloadManager.recvPool`). Default: the stack's receive buffer size, at
   * least 1 MiB. Read once, at construction.
   */
  readonly recvPoolBytes?: number | undefined;
  /**
   * The target never reuses memory it hands up (a target on its own thread: its shared memory
   * is garbage collected, never recycled): accepted indication data, and the BufferedData a
   * terminate hands back, go to the application as views of it, not as copies, and the NBLs
   * still go back at once. Default false (a target that recycles its buffers after
   * MiniportTcpOffloadReceiveReturn).
   */
  readonly zeroCopyIndications?: boolean | undefined;
  /**
   * TerminateOffload calls out at the target at once before further ready terminates wait for
   * completions (a storm; default `TERMINATE_CALLS_IN_FLIGHT` of offload-manager.ts). At least 1.
   */
  readonly terminateCallsInFlight?: number | undefined;
}

/** Bytes per receive pool chunk. */
export const RECV_CHUNK_BYTES = 64 << 10;

/**
 * How the host consumes received data of offloaded connections (spec 14). Weights and
 * probabilities are drawn from `random`, so a run is a pure function of its seed.
 */
export interface ReceiveKnobs {
  readonly random: RandomSource;
  /** Relative weights of the three answers to an indication. */
  readonly acceptAll: number;
  readonly acceptPrefix: number;
  readonly refuse: number;
  /** Probability of posting a receive request when the host has no request outstanding. */
  readonly post: number;
  /** Sizes of posted requests (one is drawn per post). */
  readonly postSizes: readonly number[];
  /** Probability that a posted request is in non-push mode. */
  readonly nonPush: number;
  /** Probability that a post is pre-filled with bytes the host already holds (non-push only). */
  readonly prefill: number;
  /** Probability that the post re-enabling indications after a refusal is zero-byte (RI-3). */
  readonly zeroByte: number;
  /** Host-side receive queue limit in bytes: indications beyond it are refused. */
  readonly queueLimit: number;
  /** Probability of asking for an upload from inside an indication (tests: mid-indication). */
  readonly terminateDuringIndication?: number | undefined;
}

/** Accept every indication, post nothing: the simplest consumer. */
export function acceptAllKnobs(random: RandomSource): ReceiveKnobs {
  return {
    random,
    acceptAll: 1,
    acceptPrefix: 0,
    refuse: 0,
    post: 0,
    postSizes: [4096],
    nonPush: 0,
    prefill: 0,
    zeroByte: 1,
    queueLimit: 1 << 30,
  };
}

/**
 * Knobs that refuse every indication and post nothing: what arrives stays at the target until
 * the host terminates (it comes back as BufferedData). The demo's and the benchmarks' way to
 * make the target hold data.
 */
export function refuseAllKnobs(random: RandomSource): ReceiveKnobs {
  return { ...acceptAllKnobs(random), zeroByte: 0, queueLimit: 0 };
}
