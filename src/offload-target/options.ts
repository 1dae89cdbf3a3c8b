/**
 * The public face of the software offload target besides its class: the options a
 * `SoftwareTarget` is made with (resource limits, timers, capabilities, test faults),
 * the counters it keeps, the error its halt can raise, and the constants and pure rules of the
 * send-backlog feature (EV-4) and of receive compaction (`HELD_CHUNK_BYTES`).
 *
 * The defaults of the options are applied once, by `TargetContext`'s constructor
 * (target-context.ts).
 */
import { Duration, type Instant } from "../time/instant.js";
import { StackError } from "../util/errors.js";
import type { TcpConfig } from "../tcp/config.js";
import type { BufferLedger } from "../nbl/ledger.js";
import type { MacAddr } from "../wire/ethernet.js";
import type { MiniportOffloadContext } from "../chimney/block-list.js";
import type { OffloadHost } from "../chimney/contract.js";
import type { TcpConnectionOffloadCapabilities } from "../chimney/capabilities.js";

/** Resource limits of the target (so tests can exercise every failure status). */
export interface TargetLimits {
  /** Offloaded TCP connections at most (else NDIS_STATUS_OFFLOAD_TCP_ENTRIES). */
  readonly tcp: number;
  /** Offloaded paths at most (else NDIS_STATUS_OFFLOAD_PATH_ENTRIES). */
  readonly path: number;
  /** Offloaded neighbors at most (else NDIS_STATUS_OFFLOAD_NEIGHBOR_ENTRIES). */
  readonly neighbor: number;
  /** Bytes of BufferedData the target can copy at initiate, in total (IO-20: else FAILURE). */
  readonly bufferBytes: number;
  /**
   * Distinct source IP addresses of offloaded paths at most (PA-2: a path with a new one fails
   * with NDIS_STATUS_OFFLOAD_IP_ADDRESS_ENTRIES).
   */
  readonly ipAddresses: number;
  /** Largest path MTU supported (PA-2: else NDIS_STATUS_OFFLOAD_PATH_MTU). */
  readonly maxPathMtu: number;
  /** Largest InitialRcvWnd supported (else NDIS_STATUS_OFFLOAD_TCP_RCV_WINDOW). */
  readonly maxRcvWnd: number;
}

/** The defaults of `TargetLimits`: plenty, so only a test that sets one reaches it. */
export const DEFAULT_TARGET_LIMITS: TargetLimits = Object.freeze({
  tcp: 1 << 20,
  path: 1 << 20,
  neighbor: 1 << 20,
  ipAddresses: 1 << 20,
  bufferBytes: 2 ** 40,
  maxPathMtu: 9000,
  maxRcvWnd: 1 << 30,
});

/** Options of a `SoftwareTarget`. */
export interface SoftwareTargetOptions {
  /** The NDIS side this target completes and indicates to. */
  readonly host: OffloadHost;
  /** The buffer ledger shared with the host. */
  readonly ledger: BufferLedger;
  /** The interface's MAC (used when a neighbor's DlSourceAddress is zero, NB-1). */
  readonly mac: MacAddr;
  /** Engine configuration for offloaded connections (RTO bounds, delayed ACK, MSS cap). */
  readonly tcpConfig?: TcpConfig | undefined;
  /**
   * FW2-1: the FIN_WAIT_2 timeout of offloaded connections (replaces `tcpConfig.finWait2Timeout`).
   * Default 120 s, the spec's initial value.
   */
  readonly finWait2Timeout?: Duration | undefined;
  /** Push timer (TcpPushTicks; PT-1). Default 500 ms. */
  readonly pushTimeout?: Duration | undefined;
  /** NceStaleTicks for the neighbor reachability test (NR-3). Default 30 s. */
  readonly nceStale?: Duration | undefined;
  /** The global TcpMaximumRetransmissions. Default the engine config's. */
  readonly maxRetransmissions?: number | undefined;
  /** Whether non-zero DlSourceAddress values are supported (NB-2). Default true. */
  readonly configurableMacs?: boolean | undefined;
  /** VLAN ids configured on the interface (VL-2); default [] = VLAN 0 only (never mismatch). */
  readonly interfaceVlans?: readonly number[] | undefined;
  /** The SupportSack capability (CFG-4): generate and consume SACK. Default true. */
  readonly supportSack?: boolean | undefined;
  /** Resource limits; each defaults to "plenty". */
  readonly limits?: Partial<TargetLimits> | undefined;
  /**
   * How long a recorded state operation waits before `process` completes it (OP-1 allows any
   * delay; tests use it to keep operations in flight while data moves). Default zero.
   */
  readonly operationDelay?: Duration | undefined;
  /**
   * NDIS_TCP_CONNECTION_OFFLOAD this target reports (spec 3.3); default: everything supported.
   * `supportSack` defaults to the `supportSack` option.
   */
  readonly capabilities?: Partial<TcpConnectionOffloadCapabilities> | undefined;
  /**
   * Receive compaction: the data an offloaded connection holds (the host refused it or has not
   * posted) is copied, once it reaches a whole chunk, into `HELD_CHUNK_BYTES` chunks of the
   * target's own pool, as a NIC keeps payload in its receive pages; indications and BufferedData
   * then carry a few large MDLs instead of one per segment. Default true.
   */
  readonly compactHeldData?: boolean | undefined;
  /** Idle bytes the held-data chunk pool keeps for reuse. Default max(1 MiB, receive buffer size). */
  readonly heldPoolBytes?: number | undefined;
  /**
   * Makes the arrays the target holds received data in, each over a buffer of its own (default:
   * plain memory). A target on its own thread gives shared memory, so indications and
   * BufferedData cross to the host by reference.
   */
  readonly memory?: ((n: number) => Uint8Array) | undefined;
  /**
   * Receive moderation, as a NIC's interrupt moderation: data that arrives with a frame is not
   * indicated at once but from the next `process`, once per connection for all the frames the
   * driver handed in meanwhile (default false: at once, frame by frame). A target on its own
   * thread turns it on, so a batch of frames costs one indication per connection.
   */
  readonly receiveModeration?: boolean | undefined;
  /** The target's own timer resolution in ticks per second (CFG-6). Default 1000. */
  readonly timerTicksPerSecond?: number | undefined;
  /**
   * Whether the target supports the send-backlog feature (EV-4, ST-4): it indicates
   * TcpIndicateSendBacklogChange and reports the value as SendBacklogSize. Default true; false
   * reports SendBacklogSize 0xFFFFFFFF (ST-7) and never indicates.
   */
  readonly sendBacklog?: boolean | undefined;
}

/** EV-4: the smallest preferred send backlog the target indicates (bytes). */
export const SEND_BACKLOG_MIN = 64 * 1024;
/** EV-4: the largest preferred send backlog the target indicates (bytes). */
export const SEND_BACKLOG_MAX = 16 * 1024 * 1024;
/** EV-4: at most one TcpIndicateSendBacklogChange per connection in this time (or one srtt if longer). */
export const SEND_BACKLOG_INTERVAL = Duration.fromMillis(50);

/**
 * EV-4: the preferred send backlog of a connection: twice the bandwidth-delay product estimate,
 * clamped to [SEND_BACKLOG_MIN, SEND_BACKLOG_MAX]. The estimate is the rate the engine sends at
 * (cwnd per srtt) times srtt, i.e. cwnd, bounded by the peer's advertised window (at least one
 * segment, so a zero window does not collapse it); it never depends on the bytes posted. Twice,
 * because the host refills only on send completions: cwnd can grow (doubling per round trip in
 * slow start) before the next indication, and the posted bytes include those in flight.
 */
export function preferredSendBacklog(cwnd: number, peerWindow: number, mss: number): number {
  const bdp = Math.min(cwnd, Math.max(peerWindow, mss));
  return Math.min(SEND_BACKLOG_MAX, Math.max(SEND_BACKLOG_MIN, 2 * bdp));
}

/**
 * EV-4 throttle: whether a change from the last indicated backlog `last` (indicated at `lastAt`)
 * to `next` is worth an indication at `now`: never twice within `interval`, and only for a change
 * of at least a quarter of the last value.
 */
export function backlogChangeDue(
  last: number | undefined,
  lastAt: Instant,
  next: number,
  now: Instant,
  interval: Duration,
): boolean {
  if (last === undefined) return true;
  if (now - lastAt < interval) return false;
  return Math.abs(next - last) * 4 >= last;
}

/** Bytes per chunk of held receive data (`SoftwareTargetOptions.compactHeldData`). */
export const HELD_CHUNK_BYTES = 64 << 10;

/** A fault the tests can put the target into (a typed hook, not a mock). */
export type TargetFault = {
  /**
   * The hardware state of one offloaded connection is corrupt: the next query, invalidate or
   * terminate of it runs the hardware-failure procedure (spec 11.9, QY-3).
   */
  readonly kind: "corrupt-hardware-state";
  readonly context: MiniportOffloadContext;
};

/**
 * RR-3 / TM-22: the adapter cannot close (halt) while NBLs it indicated are still with the host.
 * Stable code `ERR_TARGET_BUSY`.
 */
export class TargetBusyError extends StackError {
  readonly code = "ERR_TARGET_BUSY";
  /** Indicated (or BufferedData) NBLs not yet returned. */
  readonly outstanding: number = 0;
  constructor(outstanding: number) {
    super(`RR-3: ${outstanding} indicated NBL(s) not yet returned; the adapter cannot close`);
    this.outstanding = outstanding;
  }
}

/** Counters, for tests and benchmarks. */
export interface TargetStats {
  framesIn: number;
  framesOut: number;
  /** Frames sent up the non-offload path. */
  framesUp: number;
  indications: number;
  receiveCompletions: number;
  sendCompletions: number;
  /** Bytes copied into posted receive requests. */
  bytesCopied: number;
  /** Bytes indicated (zero-copy). */
  bytesIndicated: number;
}
