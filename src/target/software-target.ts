/**
 * A software offload target: the NIC side of the chimney (spec digest 2, 5-7, 9-17), sans-I/O.
 *
 * Theory of operation
 * - Every frame from the wire enters `handleFrame(now, frame)`. TCP segments of offloaded
 *   connections are processed here by the shared `TcpConnection` engine; everything else goes up
 *   the non-offload path (`host.indicateReceive`). Frames go out through `pollTransmit(now)`: the
 *   host's own frames first (`sendFrame`, the miniport's ordinary send path), then the segments
 *   of the offloaded connections. Timers: `pollTimeout()` / `handleTimeout(now)`.
 * - Cost per event is independent of how many connections are offloaded: anything that touches
 *   a connection puts it on a dirty list; `pollTransmit` / `pollTimeout` drain only that list
 *   (segments into frames, then the connection's deadline, the earlier of its engine timers and
 *   its push timer, goes into one min-heap with lazy deletion: an entry is live only while it
 *   equals the connection's current deadline). `handleTimeout` pops only expired entries.
 * - Closing: TIME-WAIT (EV-3) and CLOSED after our FIN was acknowledged (LAST-ACK or CLOSING)
 *   ask for the upload with the mandatory UploadRequested, the only way EV-0 leaves to tell the
 *   host that the connection is done; the terminate then reports TcpConnectionClosed with any
 *   received data still undelivered as BufferedData. An abortive disconnect's RST is queued for
 *   the wire before the disconnect completes (DC-4).
 * - State operations (initiate, terminate, update, invalidate, query) only record their tree
 *   (OP-1); `process(now)` completes them, in arrival order. `hasWork()` / `pollAt(now)` tell a
 *   driver when `process` has something to do. Data calls return PENDING and complete from
 *   `process`, `handleFrame` or `handleTimeout`.
 * - Objects: neighbors, paths and TCP connections linked downwards (IT-1: TCP -> path ->
 *   neighbor). A context is a small integer handed out in the host's slot (CTX-3).
 * - Receive data stays in the engine's receive buffer (acknowledged, window shrinking) until it
 *   is delivered: posted requests are filled straight from it (`recvInto`, one copy per MDL
 *   piece), indications carry views of it (`recv`, zero-copy). Bytes taken out for an indication
 *   that the host refused go to `held`, which is delivered before anything newer.
 * - The delivery algorithm (spec 14.6) is `#deliver`, with the entries E1, E2, E3, connectors
 *   A and B, `busy` for the in-progress upcall (DA-2, C-8) and re-runs for work that arrived
 *   during an upcall (C-9, spec 20 item 28).
 * - IO-7: from `initiateOffload` until its completion has returned, no indication or TCP event
 *   goes up for any connection: events wait in a queue, a blocked indication (or FIN indication)
 *   waits as a re-run of the delivery algorithm; all of it follows the last completion in order.
 */
import { Duration, Instant } from "../time/instant.js";
import { assert, UsageError } from "../util/errors.js";
import { MinHeap } from "../util/heap.js";
import { Seq } from "../wire/seq.js";
import { type TcpConfig, tcpConfig } from "../tcp/config.js";
import { ChunkPool, type ChunkPoolStats } from "../storage/chunk-pool.js";
import { TcpConnection } from "../tcp/connection.js";
import type { CloseReason, TcpSnapshot } from "../tcp/types.js";
import { type BufferLedger } from "../nbl/ledger.js";
import { type NblStatus, type NetBufferList } from "../nbl/nbl.js";
import { advance, chainLength, forEachSegment, linkNbls, nblArray, segments } from "../nbl/chain.js";
import { decodeFrame, emitTcpPacket } from "../wire/packet.js";
import { type MacAddr, macEquals, MAC_ZERO } from "../wire/ethernet.js";
import { type IpAddr, ipKey, ipVersion } from "../wire/ip-addr.js";
import { parseTcp, TcpView } from "../wire/tcp.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import {
  forEachInTree,
  type MiniportOffloadContext,
  type NdisOffloadHandle,
  type NeighborBlock,
  newBlock,
  type OffloadBlockList,
  roleOf,
  type TcpBlock,
  visitTree,
} from "../chimney/block-list.js";
import type { DisconnectFlags, OffloadHost, OffloadTarget, TcpUploadReason } from "../chimney/contract.js";
import {
  BACKLOG_UNSUPPORTED,
  type NeighborCachedState,
  type NeighborConstState,
  type PathCachedState,
  type PathConstState,
  type TcpCachedState,
  type TcpConstState,
  type TcpDelegatedState,
} from "../chimney/state.js";
import type { NdisStatus } from "../chimney/status.js";
import {
  delegatedStateFromEngine,
  importOffloadState,
  isImportableState,
  nblRange,
  tcpIpHeaderBytes,
  viewOne,
} from "../chimney/tcp-state.js";
import {
  engineKeepAlive,
  frozenCached,
  offloadEngineConfig,
  offloadSackEnabled,
  receiveFilter,
} from "./tcp-rules.js";
import {
  capabilities as makeCapabilities,
  scaleTicks,
  supportsFamily,
  type TcpConnectionOffloadCapabilities,
  type TcpConnectionOffloadParameters,
  ticksToDuration,
} from "../chimney/capabilities.js";
import { assertStatusWritten } from "../chimney/block-list.js";
import type { MiniportChimneyNdis, TcpOffloadEventHandlers } from "../chimney/registration.js";
import type { OffloadStatusIndication } from "../chimney/status.js";
import { NblPool } from "./pools.js";
import { getChimneyHandlers, setChimneyOptions } from "./registration.js";
import {
  type IpOffloadStats,
  OffloadStatistics,
  type OffloadStatsOid,
  type TcpOffloadStats,
} from "./stats.js";
import { ethernetBufferLen } from "../wire/ethernet.js";
import type { SeqNum } from "../wire/seq.js";
import { StackError } from "../util/errors.js";

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
  /** Largest path MTU supported (PA-2: else NDIS_STATUS_OFFLOAD_PATH_MTU). */
  readonly maxPathMtu: number;
  /** Largest InitialRcvWnd supported (else NDIS_STATUS_OFFLOAD_TCP_RCV_WINDOW). */
  readonly maxRcvWnd: number;
}

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
   * Test-only: a deliberately broken behaviour, so the test suite can show that it catches it.
   * Never set outside tests.
   */
  readonly testMutant?: TargetMutant | undefined;
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
  readonly outstanding: number;
  constructor(outstanding: number) {
    super(`RR-3: ${outstanding} indicated NBL(s) not yet returned; the adapter cannot close`);
    this.outstanding = outstanding;
  }
}

/**
 * Deliberate contract violations for the mutant tests: (a) drop BufferedData at terminate,
 * (b) write into BufferedData after handing it up, (c) deliver handed-over BufferedData after
 * newer data, (d) re-indicate refused data before a request is posted, (e) complete a posted
 * receive twice.
 */
export type TargetMutant =
  | "drop-buffered-at-terminate"
  | "write-after-return"
  | "buffered-after-newer"
  | "reindicate-refused"
  | "double-complete";

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

// ---------------------------------------------------------------------------------------------
// Internal objects (IT-1)

interface NeighborObj {
  readonly ctx: MiniportOffloadContext;
  readonly handle: NdisOffloadHandle | undefined;
  readonly constState: NeighborConstState;
  cachedState: NeighborCachedState;
  /** NIC reachability time (NRT) and host reachability time (HRT), microseconds (may be < 0). */
  nrt: number;
  hrt: number;
  readonly paths: Set<PathObj>;
  invalid: boolean;
}

interface PathObj {
  readonly ctx: MiniportOffloadContext;
  readonly handle: NdisOffloadHandle | undefined;
  readonly constState: PathConstState;
  cachedState: PathCachedState;
  neighbor: NeighborObj;
  readonly conns: Set<Conn>;
  invalid: boolean;
}

/** A send NBL (or the disconnect NBL's data) waiting to be acknowledged, in send order. */
interface SendEntry {
  readonly nbl: NetBufferList;
  /** Bytes of the NBL's data window not yet acknowledged. */
  left: number;
  /** Bytes acknowledged while at the target. */
  acked: number;
  /** True for the data of a graceful disconnect (completed by the disconnect completion). */
  readonly disconnect: boolean;
}

/** A posted receive request. */
/** A request waiting in the send inbox (C-11): a send, or a disconnect posted after one. */
type InboxItem =
  | { readonly kind: "send"; readonly nbl: NetBufferList }
  | { readonly kind: "disconnect"; readonly nbl: NetBufferList; readonly flags: DisconnectFlags };

interface RecvReq {
  readonly nbl: NetBufferList;
  /** Capacity: the NB's data length at posting. */
  readonly size: number;
  /** Bytes the target placed. */
  placed: number;
  readonly push: boolean;
}

type Phase = "offloading" | "offloaded" | "terminating";

interface Conn {
  readonly ctx: MiniportOffloadContext;
  readonly handle: NdisOffloadHandle;
  readonly key: string;
  readonly constState: TcpConstState;
  cachedState: TcpCachedState;
  path: PathObj;
  engine: TcpConnection;
  phase: Phase;
  readonly sends: SendEntry[];
  readonly reqs: RecvReq[];
  /** Bytes taken out of the engine for an indication the host did not consume, in order. */
  readonly held: Uint8Array[];
  heldBytes: number;
  /** Undelivered bytes at the end of the last delivery run ("is there buffered data", E1.3). */
  known: number;
  busy: boolean;
  /** Work that arrived while `busy` (C-9): re-run the algorithm after the upcall. */
  rerunE2: boolean;
  rerunE1: boolean;
  /** PSH seen on data not yet delivered (spec 20 item 27). */
  pshPending: boolean;
  pushAt: Instant | undefined;
  /** RI-3: indicated data was refused; no indication until a request is posted. */
  refused: boolean;
  finIndicated: boolean;
  aborted: boolean;
  abortIndicated: boolean;
  uploadRequested: boolean;
  /** NS-2: report the connection as CLOSED at upload. */
  closedOnUpload: boolean;
  /** URG received: frames are queued for the non-offload path (spec 15.3). */
  urgent: boolean;
  /** IO-24 / NS-7: the handed-over BufferedData holds urgent data: nothing is delivered. */
  urgentBuffered: boolean;
  readonly urgentFrames: Uint8Array[];
  invalid: boolean;
  disconnect:
    | { readonly nbl: NetBufferList; readonly flags: DisconnectFlags; readonly bytes: number }
    | undefined;
  readonly forwards: NetBufferList[];
  /** Why the engine reached CLOSED, until `#service` acts on it. */
  closedReason: CloseReason | undefined;
  /** The deadline currently in the timer heap (lazy deletion compares against it). */
  deadline: Instant | undefined;
  /** On the dirty list: output to drain and the deadline to recompute. */
  dirty: boolean;
  /** On the data-work list: forwards or an abortive disconnect for `process`. */
  dataWork: boolean;
  /** EV-4: the last TcpIndicateSendBacklogChange value (undefined: none yet) and its time. */
  backlog: number | undefined;
  backlogAt: Instant;
  /** EV-4: a change held back by the throttle's interval is looked at again then. */
  backlogRecheck: Instant | undefined;
}

/** One timer heap entry: live only while `at` equals the connection's `deadline`. */
interface TimerEntry {
  readonly at: Instant;
  readonly c: Conn;
}

interface PendingOp {
  readonly kind: "initiate" | "terminate" | "update" | "invalidate" | "query";
  readonly root: OffloadBlockList;
  /** When `process` may complete it (recording time plus the operation delay). */
  readonly due: Instant;
}

/** The event argument of NdisTcpOffloadEventHandler. */
type TcpEventArg = Parameters<OffloadHost["tcpOffloadEvent"]>[1];

/**
 * IO-7: an upcall held back while an initiate is in progress. Events wait as they are; a receive
 * indication (or the FIN indication that must follow the data) waits as "run the delivery
 * algorithm again for this connection", which then indicates whatever is undelivered by then.
 */
type HeldUpcall =
  | { readonly kind: "event"; readonly c: Conn; readonly event: TcpEventArg }
  | { readonly kind: "deliver"; readonly c: Conn };

/** Per-block result of the IO-19 copy done inside `initiateOffload` (the buffers are lent). */
type BufferedCopy = Uint8Array | "no-memory";

const OPTIONAL_REASONS: ReadonlySet<TcpUploadReason> = new Set<TcpUploadReason>([
  "LowActivity",
  "HighDropRate",
  "SmallIO",
  "NoBufferPreposting",
  "HighFragmentation",
  "HighOutOfOrderPackets",
]);

const OP_SEND = "MiniportTcpOffloadSend";
const OP_RECV = "MiniportTcpOffloadReceive";
const OP_RETURN = "MiniportTcpOffloadReceiveReturn";
const OP_DISC = "MiniportTcpOffloadDisconnect";
const OP_FWD = "MiniportTcpOffloadForward";
const OP_INIT = "MiniportInitiateOffload";
const OP_SEND_COMPLETE = "NdisTcpOffloadSendComplete";
const OP_RECV_COMPLETE = "NdisTcpOffloadReceiveComplete";
const OP_INDICATE = "NdisTcpOffloadReceiveHandler";
const OP_DISC_COMPLETE = "NdisTcpOffloadDisconnectComplete";
const OP_FWD_COMPLETE = "NdisTcpOffloadForwardComplete";
const OP_INIT_COMPLETE = "NdisMInitiateOffloadComplete";
const OP_TERM_COMPLETE = "NdisMTerminateOffloadComplete";

/** The software offload target: implements the miniport handlers of the chimney. */
export class SoftwareTarget implements OffloadTarget {
  readonly #host: OffloadHost;
  readonly #ledger: BufferLedger;
  readonly #mac: MacAddr;
  readonly #cfg: TcpConfig;
  #pushTimeout: Duration;
  #nceStale: Duration;
  #maxRtx: number;
  readonly #configurableMacs: boolean;
  readonly #vlans: readonly number[];
  readonly #supportSack: boolean;
  readonly #limits: TargetLimits;
  readonly #mutant: TargetMutant | undefined;
  readonly #opDelay: Duration;
  readonly #backlogSupported: boolean;

  readonly #ops: PendingOp[] = [];
  readonly #copies = new Map<OffloadBlockList, BufferedCopy>();
  #bufferBytesUsed = 0;
  readonly #neighbors = new Map<number, NeighborObj>();
  readonly #paths = new Map<number, PathObj>();
  readonly #conns = new Map<number, Conn>();
  readonly #byKey = new Map<string, Conn>();
  #nextCtx = 1;
  #ipIdent = 0;
  /** NBLs the target allocated and handed up (indications, BufferedData at terminate), TM-21. */
  readonly #lentUp = new Set<NetBufferList>();
  /** Chunks held receive data is compacted into; undefined when compaction is off. */
  readonly #heldPool: ChunkPool | undefined;
  /** Per NBL lent up, the held-pool chunks its MDLs show (each holds one `hold`). */
  readonly #lentChunks = new Map<NetBufferList, Uint8Array[]>();
  readonly #hostFrames: Uint8Array[] = [];
  readonly #wireFrames: Uint8Array[] = [];
  /** Connections with data-call completions to do in `process` (forward, abortive disconnect). */
  #dataConns: Conn[] = [];
  /** Connections touched since the last flush: output to drain, deadline to recompute. */
  #dirty: Conn[] = [];
  /** Every connection's deadline (engine timers and the push timer), lazily deleted. */
  readonly #timers = new MinHeap<TimerEntry>((a, b) => a.at < b.at);
  #now: Instant = Instant.ZERO;
  /** Capabilities reported to the host; changed only by a pause / resume pair (CFG-5). */
  #caps: TcpConnectionOffloadCapabilities;
  #paused = false;
  /** CFG-6: the target's timer resolution. */
  readonly #tps: number;
  /** INIT-3: the two pools (INIT-4: one NB per NBL). */
  readonly #recvPool: NblPool;
  readonly #upPool: NblPool;
  /** SS-1: statistics of offloaded connections only. */
  readonly #offloadStats = new OffloadStatistics();
  /** Highest sequence number sent per connection (to tell retransmissions apart, SS-1). */
  readonly #sentMax = new WeakMap<Conn, SeqNum>();
  /** Upcalls (indications, events, completions) in progress: TM-10, C-11. */
  #upcalls = 0;
  /**
   * C-11: sends posted from inside an upcall, run from `process` in order; a disconnect posted
   * while sends wait here waits behind them (its FIN or RST must follow their data).
   */
  readonly #sendInbox = new Map<Conn, InboxItem[]>();
  /** IO-7: initiates recorded whose NdisMInitiateOffloadComplete has not returned yet. */
  #initiating = 0;
  /** IO-7: upcalls held back while `#initiating > 0`, released in order once it is 0. */
  readonly #heldUpcalls: HeldUpcall[] = [];
  /** IO-7: connections with a "deliver" entry in `#heldUpcalls`. */
  readonly #heldDelivery = new Set<Conn>();
  /** Contexts whose hardware state is corrupt, and those whose failure was indicated (spec 11.9). */
  readonly #corrupt = new Set<number>();
  #handlers: TcpOffloadEventHandlers | undefined;
  #closed = false;

  /** Counters. */
  readonly stats: TargetStats = {
    framesIn: 0,
    framesOut: 0,
    framesUp: 0,
    indications: 0,
    receiveCompletions: 0,
    sendCompletions: 0,
    bytesCopied: 0,
    bytesIndicated: 0,
  };

  constructor(opts: SoftwareTargetOptions) {
    this.#host = opts.host;
    this.#ledger = opts.ledger;
    this.#mac = opts.mac;
    // NS-3 / BR-0: offloaded connections always run RFC 5961 sections 3-5 (blind-reset mitigation).
    // FW2-1: the FIN_WAIT_2 timer starts at 120 s unless the target is configured otherwise.
    const base = opts.tcpConfig ?? tcpConfig({ sendBufferSize: 2 ** 30 });
    this.#cfg = offloadEngineConfig(
      tcpConfig({ ...base, finWait2Timeout: opts.finWait2Timeout ?? Duration.fromSeconds(120) }),
    );
    this.#pushTimeout = opts.pushTimeout ?? Duration.fromMillis(500);
    this.#nceStale = opts.nceStale ?? Duration.fromSeconds(30);
    this.#maxRtx = opts.maxRetransmissions ?? this.#cfg.maxRetransmissions;
    this.#configurableMacs = opts.configurableMacs ?? true;
    this.#vlans = opts.interfaceVlans ?? [];
    this.#supportSack = opts.supportSack ?? true;
    this.#mutant = opts.testMutant;
    this.#opDelay = opts.operationDelay ?? Duration.ZERO;
    this.#backlogSupported = opts.sendBacklog ?? true;
    this.#caps = makeCapabilities({ supportSack: this.#supportSack, ...opts.capabilities });
    this.#tps = opts.timerTicksPerSecond ?? 1000;
    if (!Number.isSafeInteger(this.#tps) || this.#tps <= 0)
      throw new UsageError(`bad timerTicksPerSecond ${this.#tps}`);
    this.#recvPool = new NblPool("chimney-receive", opts.ledger);
    this.#upPool = new NblPool("non-offload-receive", opts.ledger);
    this.#heldPool =
      opts.compactHeldData === false
        ? undefined
        : new ChunkPool(HELD_CHUNK_BYTES, opts.heldPoolBytes ?? Math.max(1 << 20, this.#cfg.recvBufferSize));
    const l = opts.limits ?? {};
    this.#limits = {
      tcp: l.tcp ?? 1 << 20,
      path: l.path ?? 1 << 20,
      neighbor: l.neighbor ?? 1 << 20,
      bufferBytes: l.bufferBytes ?? 2 ** 40,
      maxPathMtu: l.maxPathMtu ?? 9000,
      maxRcvWnd: l.maxRcvWnd ?? 1 << 30,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Driver side

  /** True when `process(now)` has work due (recorded state operations or data completions). */
  hasWork(): boolean {
    const op = this.#ops[0];
    return this.#dataConns.length > 0 || (op !== undefined && op.due <= this.#now);
  }

  /**
   * When the driver should call in next: `now` if `process` has work, else the earlier of the
   * next state operation's due time and the next timer.
   */
  pollAt(now: Instant): Instant | undefined {
    if (this.#dataConns.length > 0) return now;
    const op = this.#ops[0];
    if (op !== undefined && op.due <= now) return now;
    return Instant.earliest(op?.due, this.pollTimeout());
  }

  /** Completes recorded state operations (OP-1) and pending data completions, in order. */
  process(now: Instant): void {
    this.#now = now;
    // TM-10 / C-11: called from inside one of our own upcalls, nothing completes now (no
    // terminate completes while an indication or event is still in flight); the work waits for
    // the next call.
    if (this.#upcalls > 0) return;
    for (let op = this.#ops[0]; op !== undefined && op.due <= now; op = this.#ops[0]) {
      this.#ops.shift();
      switch (op.kind) {
        case "initiate":
          this.#doInitiate(now, op.root);
          break;
        case "terminate":
          this.#doTerminate(now, op.root);
          break;
        case "update":
          this.#doUpdate(now, op.root);
          break;
        case "invalidate":
          this.#doInvalidate(op.root);
          break;
        case "query":
          this.#doQuery(now, op.root);
          break;
      }
    }
    while (this.#dataConns.length > 0) {
      const batch = this.#dataConns;
      this.#dataConns = [];
      for (const c of batch) {
        c.dataWork = false;
        if (this.#conns.get(c.ctx) !== c) continue; // terminated meanwhile
        this.#drainSendInbox(c);
        this.#processForwards(now, c);
        this.#service(now, c);
      }
    }
  }

  /** The miniport's ordinary send path: a frame from the host stack, queued for the wire. */
  sendFrame(frame: Uint8Array): void {
    this.#hostFrames.push(frame);
  }

  /** A frame from the wire. */
  handleFrame(now: Instant, frame: Uint8Array): void {
    this.#now = now;
    this.stats.framesIn++;
    const pkt = decodeFrame(frame);
    const net = pkt.network;
    const tr = pkt.transport;
    if (pkt.error !== undefined || net === undefined || tr === undefined || tr.kind !== "tcp") {
      // NS-4: ARP, ICMP (path-MTU discovery included) and anything else not TCP is the host's;
      // NS-6: so are IP fragments (decoded as "fragment", never reassembled here).
      this.#up(frame);
      return;
    }
    let local: IpAddr;
    let remote: IpAddr;
    if (net.kind === "ipv4") {
      // NS-5 / CFG-3: IPv4 options (not supported) go up the non-offload path.
      if (net.ipv4.options.length > 0) {
        this.#up(frame);
        return;
      }
      local = net.ipv4.dst;
      remote = net.ipv4.src;
    } else if (net.kind === "ipv6") {
      local = net.ipv6.dst;
      remote = net.ipv6.src;
    } else {
      this.#up(frame);
      return;
    }
    const seg = tr.tcp;
    const c = this.#byKey.get(connKey(local, remote, seg.dstPort, seg.srcPort));
    // TM-23 / TM-25: not offloaded, or being uploaded: the host handles it.
    if (c === undefined || c.phase === "terminating") {
      this.#up(frame);
      return;
    }
    // VL-1 / NB-3: the connection's VLAN and MAC receive filter (spec 15.5).
    const verdict = receiveFilter(pkt.ethernet, c.path.neighbor.constState, this.#mac);
    if (verdict === "drop") return;
    if (verdict === "up") {
      this.#up(frame);
      return;
    }
    if (c.urgent) {
      c.urgentFrames.push(frame); // spec 15.3 step 4: queue everything after the urgent data
      return;
    }
    if (c.engine.state === "CLOSED" && !c.aborted && c.uploadRequested) {
      // NS-8: the connection reached CLOSED and asked for its upload: what arrives now is the
      // host's (the engine has nothing left to do with it). DC-6 / RST-1: aborted ones drop it.
      this.#up(frame);
      return;
    }
    // SS-1: counted only here, for segments of offloaded connections the target processes.
    const eth = pkt.ethernet === undefined ? 0 : ethernetBufferLen(pkt.ethernet);
    this.#offloadStats.received(net.kind === "ipv4" ? 4 : 6, frame.length - eth, true);
    this.#segmentIn(now, c, seg, frame);
  }

  /** The next frame for the wire, or undefined. */
  pollTransmit(now: Instant): Uint8Array | undefined {
    this.#now = now;
    const h = this.#hostFrames.shift();
    if (h !== undefined) {
      this.stats.framesOut++;
      return h;
    }
    if (this.#wireFrames.length === 0) this.#flush(now);
    const f = this.#wireFrames.shift();
    if (f !== undefined) this.stats.framesOut++;
    return f;
  }

  /**
   * The earliest timer deadline (engine timers and push timers), or undefined. O(log n) per
   * superseded heap entry: deadlines live in a min-heap with lazy deletion.
   */
  pollTimeout(): Instant | undefined {
    if (this.#dirty.length > 0) this.#flush(this.#now);
    for (let top = this.#timers.peek(); top !== undefined; top = this.#timers.peek()) {
      if (this.#live(top)) return top.at;
      this.#timers.pop(); // superseded or gone (lazy deletion)
    }
    return undefined;
  }

  /** Runs expired timers (only the connections whose deadline passed). */
  handleTimeout(now: Instant): void {
    this.#now = now;
    if (this.#dirty.length > 0) this.#flush(now);
    const due: Conn[] = [];
    for (let top = this.#timers.peek(); top !== undefined && top.at <= now; top = this.#timers.peek()) {
      this.#timers.pop();
      if (!this.#live(top)) continue;
      top.c.deadline = undefined;
      due.push(top.c);
    }
    for (const c of due) {
      if (c.phase === "terminating" || this.#conns.get(c.ctx) !== c) continue;
      this.#touch(c);
      const t = c.engine.pollTimeout();
      if (t !== undefined && t <= now) c.engine.handleTimeout(now);
      if (c.pushAt !== undefined && c.pushAt <= now) {
        c.pushAt = undefined;
        this.#deliver(now, c, "E3");
      }
      this.#service(now, c);
    }
  }

  /** A heap entry is live while it is its connection's current deadline. */
  #live(e: TimerEntry): boolean {
    const c = e.c;
    return c.deadline === e.at && c.phase !== "terminating" && this.#conns.get(c.ctx) === c;
  }

  /** Marks a connection for `#flush`: its engine may have output or a new deadline. */
  #touch(c: Conn): void {
    if (c.dirty) return;
    c.dirty = true;
    this.#dirty.push(c);
  }

  /** Drains the dirty connections' segments into frames and re-files their deadlines. */
  #flush(now: Instant): void {
    while (this.#dirty.length > 0) {
      const batch = this.#dirty;
      this.#dirty = [];
      for (const c of batch) {
        c.dirty = false;
        if (this.#conns.get(c.ctx) !== c || c.phase === "terminating") continue;
        this.#emit(now, c);
        const d = Instant.earliest(Instant.earliest(c.engine.pollTimeout(), c.pushAt), c.backlogRecheck);
        if (d !== c.deadline) {
          c.deadline = d;
          if (d !== undefined) this.#timers.push({ at: d, c });
        }
      }
    }
  }

  /** Offloaded connections (for tests and diagnostics). */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** The engine of an offloaded connection (read-only diagnostics for tests). */
  engineOf(ctx: MiniportOffloadContext): TcpConnection | undefined {
    return this.#conns.get(ctx)?.engine;
  }

  /**
   * Read-only diagnostics (benchmarks, tests): views of the received bytes an offloaded connection
   * holds and has not delivered, in order, exactly the memory a terminate now would hand up as
   * BufferedData (bytes taken out for a refused indication, then the engine's receive buffer:
   * compacted chunks of the target's pool and uncompacted segment views). The views alias the
   * target's memory: never write through them, and do not use them after the next call into the
   * target. Undefined for an unknown context or an engine that can no longer export its state.
   */
  heldDataOf(ctx: MiniportOffloadContext): readonly Uint8Array[] | undefined {
    const c = this.#conns.get(ctx);
    if (c === undefined || !isImportableState(toChimneyState(c.engine))) return undefined;
    return [...c.held, ...c.engine.exportState(this.#now).delegated.bufferedData];
  }

  /** NBLs handed up and not yet returned (TM-22: the adapter must not close before this is 0). */
  get outstandingReturns(): number {
    return this.#lentUp.size;
  }

  /** Counters of the chunk pool held receive data is compacted into; undefined when off. */
  get heldPoolStats(): Readonly<ChunkPoolStats> | undefined {
    return this.#heldPool?.stats;
  }

  // -------------------------------------------------------------------------------------------
  // Registration, capabilities, pause / resume, statistics, faults (spec 3, 16.6, 18.1, 11.9)

  /**
   * MiniportSetOptions + MiniportInitializeEx: INIT-1 (both handler tables registered through
   * `NdisSetOptionalHandlers`) and INIT-2 (`NdisMGetOffloadHandlers` once per chimney type; the
   * returned table is copied into the target). INIT-3: the pools were made by the constructor.
   */
  initialize(ndis: MiniportChimneyNdis): void {
    if (this.#handlers !== undefined) throw new UsageError("the target is already initialized");
    setChimneyOptions(this, ndis);
    this.#handlers = getChimneyHandlers(ndis);
  }

  /** The NDIS entry points copied at `initialize` (INIT-2), or undefined before. */
  get offloadHandlers(): TcpOffloadEventHandlers | undefined {
    return this.#handlers;
  }

  /** NDIS_TCP_CONNECTION_OFFLOAD (OID_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES). */
  connectionOffloadCapabilities(): TcpConnectionOffloadCapabilities {
    return this.#caps;
  }

  /** Whether the target has asked the host to stop offloading (spec 16.6). */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * NDIS_STATUS_OFFLOAD_PAUSE: asks the host to stop offloading new state. Offloaded connections
   * run on; C-13: initiates already in flight are still accepted, queued and processed.
   */
  pause(): void {
    if (this.#paused) throw new UsageError("the target is already paused");
    this.#paused = true;
    this.#indicateStatus("NDIS_STATUS_OFFLOAD_PAUSE");
  }

  /**
   * NDIS_STATUS_OFFLOAD_RESUME, reporting `caps` as the new NDIS_TCP_CONNECTION_OFFLOAD. CFG-5:
   * this is the only way the capabilities change, and only after a pause (UsageError otherwise).
   */
  resume(caps: Partial<TcpConnectionOffloadCapabilities> = {}): void {
    if (!this.#paused) throw new UsageError("CFG-5: new capabilities need a pause first");
    this.#caps = makeCapabilities({ ...this.#caps, ...caps });
    this.#paused = false;
    this.#indicateStatus("NDIS_STATUS_OFFLOAD_RESUME");
  }

  /** NDIS_STATUS_UPLOAD_ALL: asks the host to upload every offloaded connection (spec 16.6). */
  requestUploadAll(): void {
    this.#indicateStatus("NDIS_STATUS_UPLOAD_ALL");
  }

  /**
   * OID_TCP_CONNECTION_OFFLOAD_PARAMETERS (spec 3.3). CFG-6: the host's tick values are scaled
   * from its TicksPerSecond to this target's timer resolution (rounding up) before use: the push
   * timer, the neighbor staleness time and the retransmission limit of new offloads.
   */
  setOffloadParameters(p: TcpConnectionOffloadParameters): void {
    const toTarget = (ticks: number): Duration =>
      ticksToDuration(scaleTicks(ticks, p.ticksPerSecond, this.#tps), this.#tps);
    this.#pushTimeout = toTarget(p.tcpPushTicks);
    this.#nceStale = toTarget(p.nceStaleTicks);
    this.#maxRtx = p.tcpMaximumRetransmissions;
  }

  /** The push timeout in use (TcpPushTicks at this target's resolution; CFG-6). */
  get pushTimeout(): Duration {
    return this.#pushTimeout;
  }

  /** SS-1: a query of one statistics OID (this interface, offloaded connections only). */
  queryStatistics(oid: "OID_IP4_OFFLOAD_STATS" | "OID_IP6_OFFLOAD_STATS"): IpOffloadStats;
  queryStatistics(oid: "OID_TCP4_OFFLOAD_STATS" | "OID_TCP6_OFFLOAD_STATS"): TcpOffloadStats;
  queryStatistics(oid: OffloadStatsOid): IpOffloadStats | TcpOffloadStats {
    if (oid === "OID_IP4_OFFLOAD_STATS" || oid === "OID_IP6_OFFLOAD_STATS")
      return this.#offloadStats.query(oid);
    const v = oid === "OID_TCP4_OFFLOAD_STATS" ? 4 : 6;
    let established = 0;
    for (const c of this.#conns.values()) {
      const st = c.engine.state;
      if (ipVersion(c.path.constState.sourceAddress) === v && (st === "ESTABLISHED" || st === "CLOSE-WAIT"))
        established++;
    }
    return this.#offloadStats.query(oid, established);
  }

  /** SS-1: a set of a statistics OID resets those counters. */
  setStatistics(oid: OffloadStatsOid): void {
    this.#offloadStats.reset(oid);
  }

  /** Test hook: puts the target into a fault state (spec 11.9). */
  injectFault(fault: TargetFault): void {
    if (!this.#conns.has(fault.context))
      throw new UsageError(`no offloaded connection with context ${fault.context}`);
    this.#corrupt.add(fault.context);
  }

  /**
   * MiniportHaltEx. RR-3 / TM-22: refused with `TargetBusyError` while indicated or BufferedData
   * NBLs are still with the host; afterwards no chimney call is accepted.
   */
  close(): void {
    const out = this.#recvPool.outstanding;
    if (out > 0) throw new TargetBusyError(out);
    this.#closed = true;
  }

  /** NBLs from the two pools (INIT-3) handed out since creation. */
  get poolAllocations(): { readonly chimneyReceive: number; readonly nonOffloadReceive: number } {
    return { chimneyReceive: this.#recvPool.allocated, nonOffloadReceive: this.#upPool.allocated };
  }

  /**
   * NdisMIndicateStatusEx, counted as an upcall (TM-10). Not held back by IO-7: the only statuses
   * are OFFLOAD_PAUSE / RESUME / UPLOAD_ALL, raised by the driver's own calls, and C-13 expects a
   * pause while an initiate is in flight (holding it behind the initiates it is to stop would
   * defeat it).
   */
  #indicateStatus(status: OffloadStatusIndication): void {
    this.#upcalls++;
    try {
      this.#host.indicateStatus(status);
    } finally {
      this.#upcalls--;
    }
  }

  /**
   * NdisTcpOffloadEventHandler, counted as an upcall (TM-10, C-11). IO-7: held back while an
   * initiate is in progress.
   */
  #indicateEvent(c: Conn, event: TcpEventArg): void {
    if (this.#initiating > 0) {
      this.#heldUpcalls.push({ kind: "event", c, event });
      return;
    }
    this.#upcalls++;
    try {
      this.#host.tcpOffloadEvent(c.handle, event);
    } finally {
      this.#upcalls--;
    }
  }

  /** IO-7: the delivery algorithm runs again for `c` once no initiate is in progress. */
  #holdDelivery(c: Conn): void {
    if (this.#heldDelivery.has(c)) return;
    this.#heldDelivery.add(c);
    this.#heldUpcalls.push({ kind: "deliver", c });
  }

  /**
   * IO-7: the upcalls held while initiates were in progress, in the order they arose, now that
   * the last completion has returned. Those of connections no longer offloaded (terminated or
   * being terminated meanwhile) are dropped: the terminate's delegated state reports their state.
   * An upcall that starts another initiate stops the release; the rest waits for that one.
   */
  #releaseHeld(now: Instant): void {
    while (this.#initiating === 0) {
      const h = this.#heldUpcalls.shift();
      if (h === undefined) return;
      const c = h.c;
      if (h.kind === "deliver") this.#heldDelivery.delete(c);
      if (this.#conns.get(c.ctx) !== c || c.phase !== "offloaded") continue;
      if (h.kind === "event") {
        this.#indicateEvent(c, h.event);
        continue;
      }
      // The held data is not "buffered" in the E1.3 sense (nothing refused it): indicate it now.
      c.known = 0;
      this.#deliver(now, c, "E1");
      this.#touch(c);
    }
  }

  /** C-11: the sends posted during an upcall, in order, now that no upcall is in progress. */
  #drainSendInbox(c: Conn): void {
    const inbox = this.#sendInbox.get(c);
    if (inbox === undefined) return;
    this.#sendInbox.delete(c);
    for (const item of inbox) {
      if (item.kind === "send") this.#send(c, item.nbl);
      else this.#disconnect(c, item.nbl, item.flags);
    }
  }

  /**
   * Spec 11.9 steps 1-3, after the query or invalidate that found the corrupt state completed
   * with NDIS_STATUS_FAILURE (step 1): ask for the upload (HardwareFailure), then indicate the
   * abort. New I/O now completes with REQUEST_ABORTED; the terminate does steps 4 and 5.
   */
  #hardwareFailure(c: Conn): void {
    if (c.uploadRequested && c.aborted) return; // already indicated
    c.uploadRequested = true;
    c.aborted = true;
    c.abortIndicated = true;
    c.pushAt = undefined;
    this.#indicateEvent(c, { type: "TcpIndicateRetrieve", reason: "HardwareFailure" });
    this.#indicateEvent(c, { type: "TcpIndicateAbort" });
  }

  /**
   * Spec 11.9 steps 4-5 for a connection whose hardware state is corrupt: every outstanding send,
   * receive, disconnect and forward completes with NDIS_STATUS_REQUEST_ABORTED; the block reports
   * NDIS_STATUS_FAILURE (the state is lost: nothing is returned). A terminate that is the first to
   * find the corruption does the same (its step 1 is this completion; no event follows for a
   * connection that is no longer offloaded).
   */
  #terminateCorrupt(c: Conn, b: TcpBlock): void {
    c.phase = "terminating";
    c.pushAt = undefined;
    this.#drainSendInbox(c);
    this.#failSends(c, "NDIS_STATUS_REQUEST_ABORTED");
    const reqs = c.reqs.splice(0);
    for (const r of reqs) this.#finishReq(r, "NDIS_STATUS_REQUEST_ABORTED");
    if (reqs.length > 0)
      this.#completeRecvs(
        c,
        reqs.map((r) => r.nbl),
      );
    const d = c.disconnect;
    if (d !== undefined) {
      c.disconnect = undefined;
      d.nbl.status = "NDIS_STATUS_REQUEST_ABORTED";
      d.nbl.bytesTransferred = 0;
      this.#completeDisconnect(d.nbl);
    }
    this.#failForwards(c, "NDIS_STATUS_REQUEST_ABORTED");
    b.netBufferListChain = null;
    b.status = "NDIS_STATUS_FAILURE";
    this.#corrupt.delete(c.ctx);
    this.#removeConn(c);
  }

  // -------------------------------------------------------------------------------------------
  // State operations: record only (OP-1)

  /** MiniportInitiateOffload: records the tree; copies lent BufferedData now (IO-19). */
  initiateOffload(blockList: OffloadBlockList): void {
    if (this.#closed) throw new UsageError("MiniportInitiateOffload on a closed adapter");
    // C-13: accepted even while paused (an initiate can be in flight when the pause is
    // indicated); like every state operation it is queued and processed later by `process`.
    // IO-1 / IO-19: the host lends BufferedData for the duration of this call, so the copy
    // happens here; the offload itself completes later from `process`.
    forEachInTree(blockList, (b) => {
      if (b.layer !== "tcp" || roleOf(b) !== "new-offload") return;
      const d = b.delegatedState;
      if (d === undefined || d.bufferedData === null) return;
      const view = this.#ledger.view(d.bufferedData, "target", OP_INIT);
      const n = chainLength(view);
      if (this.#bufferBytesUsed + n > this.#limits.bufferBytes) {
        this.#copies.set(b, "no-memory");
        return;
      }
      const copy = new Uint8Array(n);
      let at = 0;
      forEachSegment(view, 0, n, (bytes, s, e) => {
        copy.set(bytes.subarray(s, e), at);
        at += e - s;
      });
      this.#bufferBytesUsed += n;
      this.#copies.set(b, copy);
    });
    this.#initiating++; // IO-7: until its completion has returned
    this.#record("initiate", blockList);
  }

  /** MiniportTerminateOffload: records the tree; segments now go up the non-offload path (TM-23). */
  terminateOffload(blockList: OffloadBlockList): void {
    forEachInTree(blockList, (b) => {
      if (b.layer !== "tcp") return;
      const c = this.#connOf(b);
      if (c !== undefined) {
        c.phase = "terminating";
        c.pushAt = undefined; // TM-12
      }
    });
    this.#record("terminate", blockList);
  }

  /** MiniportUpdateOffload. */
  updateOffload(blockList: OffloadBlockList): void {
    this.#record("update", blockList);
  }

  /** MiniportInvalidateOffload. */
  invalidateOffload(blockList: OffloadBlockList): void {
    this.#record("invalidate", blockList);
  }

  /** MiniportQueryOffload. */
  queryOffload(blockList: OffloadBlockList): void {
    this.#record("query", blockList);
  }

  /**
   * C-2 / C-3: any number of operations may be outstanding, several initiates of different
   * objects and overlapping queries of one object included; each is completed in arrival order.
   */
  #record(kind: PendingOp["kind"], root: OffloadBlockList): void {
    this.#ops.push({ kind, root, due: Instant.add(this.#now, this.#opDelay) });
  }

  // -------------------------------------------------------------------------------------------
  // Data calls

  /** MiniportTcpOffloadSend (SD-1..SD-3): queued in order, completed when ACKed. */
  tcpOffloadSend(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const c = this.#mustConn(context, OP_SEND);
    this.#ledger.check(nbl, "target", OP_SEND);
    const inbox = this.#sendInbox.get(c);
    if (this.#upcalls > 0 || inbox !== undefined) {
      // C-11: the send queue is not touched from inside an upcall (the single-threaded analogue
      // of the spin lock): the request waits in the inbox, in order, and runs from `process`.
      if (inbox === undefined) this.#sendInbox.set(c, [{ kind: "send", nbl }]);
      else inbox.push({ kind: "send", nbl });
      this.#addDataWork(c);
      return "NDIS_STATUS_PENDING";
    }
    this.#send(c, nbl);
    return "NDIS_STATUS_PENDING";
  }

  /** The body of MiniportTcpOffloadSend, outside any upcall. */
  #send(c: Conn, nbl: NetBufferList): void {
    const fail = this.#sendRefusal(c);
    const refused: NetBufferList[] = [];
    for (const n of nblArray(nbl)) {
      if (fail !== undefined) {
        n.status = fail;
        n.bytesTransferred = 0;
        refused.push(n);
        continue;
      }
      const bytes = this.#sendNbl(c, n, OP_SEND);
      c.sends.push({ nbl: n, left: bytes, acked: 0, disconnect: false });
    }
    if (refused.length > 0) {
      // TM-27 / TM-28 / RST-1: refused at once is still a later completion for the host.
      this.#completeSends(refused);
    }
    this.#service(this.#now, c);
  }

  /** MiniportTcpOffloadReceive (RQ-1..RQ-6): FIFO; runs the delivery algorithm (E2). */
  tcpOffloadReceive(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const c = this.#mustConn(context, OP_RECV);
    this.#ledger.check(nbl, "target", OP_RECV);
    const late: NetBufferList[] = [];
    for (const n of nblArray(nbl)) {
      if (c.finIndicated || c.phase === "terminating" || c.aborted || c.uploadRequested) {
        // FN-2: after TcpIndicateDisconnect; RST-1; spec 20 item 41.
        n.status = c.finIndicated
          ? "NDIS_STATUS_INVALID_STATE"
          : c.aborted
            ? "NDIS_STATUS_REQUEST_ABORTED"
            : "NDIS_STATUS_UPLOAD_IN_PROGRESS";
        n.bytesTransferred = 0;
        late.push(n);
        continue;
      }
      const size = chainLength(viewOne(this.#ledger, n, "target", OP_RECV));
      c.reqs.push({ nbl: n, size, placed: 0, push: !n.receiveNoPush });
      // Push mode with host-placed bytes starts the push timer at posting (spec 14.2).
      if (!n.receiveNoPush && n.receiveBytesTransferred > 0 && c.pushAt === undefined) {
        c.pushAt = Instant.add(this.#now, this.#pushTimeout);
      }
    }
    c.refused = false; // RI-3: a posted request re-enables indications
    this.#touch(c);
    for (const n of nblArray(nbl)) n.next = null;
    if (late.length > 0) this.#completeRecvs(c, late);
    this.#deliver(this.#now, c, "E2");
    return "NDIS_STATUS_PENDING";
  }

  /** MiniportTcpOffloadReceiveReturn (RR-1): indicated / BufferedData NBLs come back. */
  tcpOffloadReceiveReturn(nbl: NetBufferList): "NDIS_STATUS_SUCCESS" {
    for (const n of nblArray(nbl)) {
      assert(this.#lentUp.delete(n), () => `NBL #${n.id} returned but never indicated`);
      this.#recvPool.release(n); // RR-3: one fewer outstanding
      this.#releaseChunks(n);
    }
    this.#ledger.free(nbl, "target", OP_RETURN);
    return "NDIS_STATUS_SUCCESS";
  }

  /** MiniportTcpOffloadDisconnect (DC-1..DC-8). */
  tcpOffloadDisconnect(
    context: MiniportOffloadContext,
    nbl: NetBufferList,
    flags: DisconnectFlags,
  ): "NDIS_STATUS_PENDING" {
    const c = this.#mustConn(context, OP_DISC);
    this.#ledger.check(nbl, "target", OP_DISC);
    if (nbl.next !== null) throw new UsageError("MiniportTcpOffloadDisconnect takes exactly one NBL");
    const inbox = this.#sendInbox.get(c);
    if (inbox !== undefined) {
      // C-11 / RQ-5: sends posted re-entrantly still wait in the inbox: the disconnect follows them.
      inbox.push({ kind: "disconnect", nbl, flags });
      this.#addDataWork(c);
      return "NDIS_STATUS_PENDING";
    }
    this.#disconnect(c, nbl, flags);
    return "NDIS_STATUS_PENDING";
  }

  /** The body of MiniportTcpOffloadDisconnect, after every send posted before it. */
  #disconnect(c: Conn, nbl: NetBufferList, flags: DisconnectFlags): void {
    if (c.aborted || c.phase === "terminating" || c.uploadRequested || c.disconnect !== undefined) {
      // DC-2: fail only when the connection is being uploaded or was aborted.
      nbl.status = c.aborted ? "NDIS_STATUS_REQUEST_ABORTED" : "NDIS_STATUS_UPLOAD_IN_PROGRESS";
      nbl.bytesTransferred = 0;
      this.#completeDisconnect(nbl);
      return;
    }
    if (flags === "abortive") {
      // DC-5: outstanding sends are aborted; DC-4: one RST; DC-6: stop processing input.
      this.#failSends(c, "NDIS_STATUS_REQUEST_ABORTED");
      c.engine.abort();
      c.aborted = true;
      c.disconnect = { nbl, flags, bytes: 0 };
      this.#addDataWork(c);
      return;
    }
    const bytes = this.#sendNbl(c, nbl, OP_DISC);
    if (bytes > 0) c.sends.push({ nbl, left: bytes, acked: 0, disconnect: true });
    c.engine.close();
    c.disconnect = { nbl, flags, bytes };
    this.#service(this.#now, c);
  }

  /** MiniportTcpOffloadForward (FW-2..FW-5): segments processed like received ones, later. */
  tcpOffloadForward(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const c = this.#mustConn(context, OP_FWD);
    this.#ledger.check(nbl, "target", OP_FWD);
    for (const n of nblArray(nbl)) c.forwards.push(n); // FW-4: queued until `process`
    this.#addDataWork(c);
    return "NDIS_STATUS_PENDING";
  }

  /**
   * Queues an NBL's data in the engine (zero-copy views, IO-16), PSH at its end (SD-4); its length.
   * SW-1: the engine's sender SWS avoidance holds back a segment when it is shorter than the
   * MSS, does not reach the end of the queued data and is under half the largest window seen,
   * until its SWS override timer sends what the window allows.
   */
  #sendNbl(c: Conn, n: NetBufferList, op: string): number {
    const pieces = [...segments(viewOne(this.#ledger, n, "target", op))];
    let bytes = 0;
    pieces.forEach((piece, i) => {
      const r = c.engine.send(piece, { push: i === pieces.length - 1 });
      assert(r === piece.length, () => `engine refused ${op} data (${String(r)})`);
      bytes += piece.length;
    });
    return bytes;
  }

  #addDataWork(c: Conn): void {
    if (c.dataWork) return;
    c.dataWork = true;
    this.#dataConns.push(c);
  }

  // -------------------------------------------------------------------------------------------
  // Initiate (spec 7)

  #doInitiate(now: Instant, root: OffloadBlockList): void {
    const ok = new Map<OffloadBlockList, boolean>();
    const parent = parentsOf(root);
    const created: Conn[] = [];
    visitTree(
      root,
      (b) => {
        const status = this.#offloadBlock(now, b, parent.get(b), created);
        b.status = status;
        const good = status === "NDIS_STATUS_SUCCESS";
        ok.set(b, good);
        return good;
      },
      (b) => {
        b.status = "NDIS_STATUS_FAILURE"; // IO-9, IO-11
        ok.set(b, false);
        this.#failedTcpBlock(b);
      },
      true, // IO-12
    );
    // Statuses that depend on the immediately dependent blocks (spec 7.4, 20 item 38).
    forEachInTree(root, (b) => {
      if (ok.get(b) !== true) return;
      const role = roleOf(b);
      if (role === "placeholder") return; // TR-4: always success
      const kids = nblessChildren(b);
      if (kids.length === 0) return;
      const failed = kids.filter((k) => ok.get(k) !== true).length;
      if (failed === 0) return;
      b.status =
        role === "linker" && failed === kids.length
          ? "NDIS_STATUS_FAILURE"
          : "NDIS_STATUS_OFFLOAD_PARTIAL_SUCCESS";
    });
    for (const b of this.#copies.keys()) if (isInTree(root, b)) this.#copies.delete(b);
    assertStatusWritten(root, "initiate"); // OP-2 / BL-1
    this.#host.initiateOffloadComplete(root);
    // IO-6 / C-10: indications only now that the completion has returned.
    for (const c of created) {
      if (c.phase === "offloading") c.phase = "offloaded";
    }
    // IO-7: upcalls held while this (and every other) initiate was in progress go out first.
    this.#initiating--;
    this.#releaseHeld(now);
    for (const c of created) {
      if (c.urgentBuffered) {
        // IO-24 / NS-7: urgent data in BufferedData is urgent data from the wire (spec 15.3,
        // 20 item 39): ask for the upload, ACK and deliver nothing more, queue what follows;
        // the buffered bytes go back as BufferedData at terminate.
        c.urgent = true;
        this.#requestUpload(c, "ReceivedUrgentData");
      }
      this.#service(now, c);
    }
  }

  /** Offloads (or links) one block; returns its own status. */
  #offloadBlock(
    now: Instant,
    b: OffloadBlockList,
    parent: OffloadBlockList | undefined,
    created: Conn[],
  ): NdisStatus {
    const role = roleOf(b);
    // TR-5: a placeholder only carries links; `visitTree` follows its dependents like any block.
    if (role === "placeholder") return "NDIS_STATUS_SUCCESS";
    if (role === "linker") {
      const ctx = (b.miniportOffloadContext?.context ?? 0) as number;
      const found =
        b.layer === "neighbor"
          ? this.#neighbors.get(ctx)
          : b.layer === "path"
            ? this.#paths.get(ctx)
            : undefined;
      return found === undefined ? "NDIS_STATUS_FAILURE" : "NDIS_STATUS_SUCCESS";
    }
    const slot = b.miniportOffloadContext;
    assert(slot !== null, "new-offload block has a slot");
    switch (b.layer) {
      case "neighbor": {
        const st = this.#neighborStatus(b);
        if (st !== "NDIS_STATUS_SUCCESS") return st;
        const k = b.constState as NeighborConstState; // checked by #neighborStatus
        const ca = b.cachedState as NeighborCachedState;
        const nrd = b.delegatedState?.nicReachabilityDelta ?? ca.hostReachabilityDelta;
        const n: NeighborObj = {
          ctx: this.#ctx(),
          handle: b.ndisOffloadHandle,
          constState: k,
          cachedState: frozenCached(ca), // ST-2
          nrt: now - nrd,
          hrt: now - ca.hostReachabilityDelta,
          paths: new Set(),
          invalid: false,
        };
        this.#neighbors.set(n.ctx, n);
        slot.context = n.ctx; // CTX-3
        return "NDIS_STATUS_SUCCESS";
      }
      case "path": {
        const nb = parent === undefined ? undefined : this.#neighborOfBlock(parent);
        if (nb === undefined || b.constState === undefined || b.cachedState === undefined)
          return "NDIS_STATUS_FAILURE";
        // CFG-2: a family this target does not report is refused (the host should not ask).
        if (!supportsFamily(this.#caps, ipVersion(b.constState.sourceAddress))) return "NDIS_STATUS_FAILURE";
        if (this.#paths.size >= this.#limits.path) return "NDIS_STATUS_OFFLOAD_PATH_ENTRIES";
        if (b.cachedState.pathMtu > this.#limits.maxPathMtu) return "NDIS_STATUS_OFFLOAD_PATH_MTU";
        const p: PathObj = {
          ctx: this.#ctx(),
          handle: b.ndisOffloadHandle,
          constState: b.constState,
          cachedState: frozenCached(b.cachedState), // ST-2
          neighbor: nb,
          conns: new Set(),
          invalid: false,
        };
        nb.paths.add(p);
        this.#paths.set(p.ctx, p);
        slot.context = p.ctx;
        return "NDIS_STATUS_SUCCESS";
      }
      case "tcp": {
        const st = this.#offloadTcp(now, b, parent, created);
        if (st !== "NDIS_STATUS_SUCCESS") this.#failedTcpBlock(b);
        return st;
      }
    }
  }

  #neighborStatus(b: NeighborBlock): NdisStatus {
    const k = b.constState;
    if (k === undefined || b.cachedState === undefined) return "NDIS_STATUS_FAILURE";
    if (this.#neighbors.size >= this.#limits.neighbor) return "NDIS_STATUS_OFFLOAD_NEIGHBOR_ENTRIES";
    if (!macEquals(k.dlSourceAddress, MAC_ZERO) && !this.#configurableMacs)
      return "NDIS_STATUS_OFFLOAD_HW_ADDRESS_ENTRIES";
    if (k.vlanId !== 0 && this.#vlans.length > 0 && !this.#vlans.includes(k.vlanId))
      return "NDIS_STATUS_OFFLOAD_VLAN_MISMATCH";
    return "NDIS_STATUS_SUCCESS";
  }

  #offloadTcp(now: Instant, b: TcpBlock, parent: OffloadBlockList | undefined, created: Conn[]): NdisStatus {
    const path = parent === undefined ? undefined : this.#pathOfBlock(parent);
    const k = b.constState;
    const ca = b.cachedState;
    const d = b.delegatedState;
    if (path === undefined || k === undefined || ca === undefined || d === undefined)
      return "NDIS_STATUS_FAILURE";
    if (this.#conns.size >= Math.min(this.#limits.tcp, this.#caps.tcpConnectionOffloadCapacity))
      return "NDIS_STATUS_OFFLOAD_TCP_ENTRIES"; // TcpConnectionOffloadCapacity (spec 3.3)
    if (ca.initialRcvWnd > this.#limits.maxRcvWnd) return "NDIS_STATUS_OFFLOAD_TCP_RCV_WINDOW";
    if (!isImportableState(d.state)) return "NDIS_STATUS_FAILURE";
    const copy = this.#copies.get(b);
    if (copy === "no-memory") return "NDIS_STATUS_FAILURE"; // IO-20
    const chain = b.netBufferListChain;
    if (chain !== null) this.#ledger.check(chain, "target", OP_INIT);
    const local = path.constState.sourceAddress;
    const remote = path.constState.destinationAddress;
    const key = connKey(local, remote, k.localPort, k.remotePort);
    if (this.#byKey.has(key)) return "NDIS_STATUS_FAILURE";
    // The send data is read zero-copy; the BufferedData was copied in `initiateOffload`.
    // CFG-4: without SupportSack the engine neither generates nor consumes SACK.
    const engineK = { ...k, sackEnabled: offloadSackEnabled(this.#caps.supportSack, k.sackEnabled) };
    const ka = engineKeepAlive(ca); // BR-0: 0 -> the spec 17.11 defaults (the cached record is kept)
    const engineCa = { ...ca, kaInterval: ka.interval, kaProbeCount: ka.probes };
    const noBuffered = {
      constState: engineK,
      cachedState: engineCa,
      delegatedState: { ...d, bufferedData: null },
    };
    const snap: TcpSnapshot = importOffloadState(noBuffered, this.#ledger, "target", OP_INIT, {
      cfg: this.#cfg,
      pathMtu: path.cachedState.pathMtu,
      ipVersion: ipVersion(local),
      sendBufferSize: 2 ** 30,
      maxRetransmissions: this.#maxRtx,
    });
    // IO-23: the handed-over BufferedData is the head of the engine's receive buffer, so it is
    // delivered before anything received later (the mutant breaks exactly this).
    const late = this.#mutant === "buffered-after-newer";
    const full: TcpSnapshot =
      copy === undefined || copy.length === 0 || late
        ? snap
        : { ...snap, delegated: { ...snap.delegated, bufferedData: [copy] } };
    // TS-1: the engine's timestamp clock continues from TsTime (NicDelta = TsTime - NicTime), so
    // TSvals keep increasing (modulo 2^32) whatever this target's clock reads.
    const engine = TcpConnection.importState(full, now, this.#cfg);
    drainEvents(engine);
    const handle = b.ndisOffloadHandle;
    if (handle === undefined) return "NDIS_STATUS_FAILURE";
    const c: Conn = {
      ctx: this.#ctx(),
      handle,
      key,
      constState: k,
      cachedState: frozenCached(ca), // ST-2: replaced only by an update
      path,
      engine,
      phase: "offloading",
      sends: [],
      reqs: [],
      held: [],
      heldBytes: 0,
      // IO-22: handed-over data is buffered data: held until requests are posted.
      known: engine.readable,
      busy: false,
      rerunE1: false,
      rerunE2: false,
      pshPending: false,
      pushAt: undefined,
      refused: false,
      // Spec 20 item 20: a FIN the host already received is not indicated again.
      finIndicated:
        d.state === "TcpConnectionCloseWait" ||
        d.state === "TcpConnectionLastAck" ||
        d.state === "TcpConnectionClosing" ||
        d.state === "TcpConnectionTimeWait",
      aborted: false,
      abortIndicated: false,
      uploadRequested: false,
      closedOnUpload: false,
      urgent: false,
      urgentBuffered: d.bufferedDataUrgent === true && copy !== undefined && copy.length > 0,
      urgentFrames: [],
      invalid: false,
      disconnect: undefined,
      forwards: [],
      closedReason: undefined,
      deadline: undefined,
      dirty: false,
      dataWork: false,
      backlog: undefined,
      backlogAt: Instant.ZERO,
      backlogRecheck: undefined,
    };
    if (late && copy !== undefined && copy.length > 0) {
      c.held.push(copy);
      c.heldBytes += copy.length;
      c.known += copy.length;
    }
    // IO-13..IO-15: the handed-over NBLs are the first send entries, in order; IO-17: `#takeAcks`
    // completes each through NdisTcpOffloadSendComplete (or the terminate passes it back).
    for (const n of nblRange(d.sendDataHead, d.sendDataTail)) {
      const len = chainLength(viewOne(this.#ledger, n, "target", OP_INIT));
      c.sends.push({ nbl: n, left: len, acked: 0, disconnect: false });
    }
    // Send NBLs of the chain beyond SendDataTail carry no data: nothing to track.
    path.conns.add(c);
    this.#conns.set(c.ctx, c);
    this.#byKey.set(key, c);
    const slot = b.miniportOffloadContext;
    assert(slot !== null, "new-offload block has a slot");
    slot.context = c.ctx; // CTX-3
    created.push(c);
    return "NDIS_STATUS_SUCCESS";
  }

  /** IO-10: a failed TCP block's send data stays the host's, status untouched. */
  #failedTcpBlock(b: OffloadBlockList): void {
    if (b.layer !== "tcp") return;
    if (b.delegatedState !== undefined) this.#bufferBytesUsedRelease(b);
    const chain = b.netBufferListChain;
    if (chain !== null && this.#ledger.ownerOf(chain) === "target") {
      this.#ledger.transfer(chain, "target", "host", OP_INIT_COMPLETE);
    }
  }

  #bufferBytesUsedRelease(b: OffloadBlockList): void {
    const copy = this.#copies.get(b);
    if (copy instanceof Uint8Array) this.#bufferBytesUsed -= copy.length;
    this.#copies.delete(b);
  }

  // -------------------------------------------------------------------------------------------
  // Terminate (spec 11)

  /** TM-3 / ST-10: completes whatever the connection's state (only a corrupt one fails). */
  #doTerminate(now: Instant, root: OffloadBlockList): void {
    // TM-10: no indication or event of ours is in flight when a terminate completes.
    assert(this.#upcalls === 0, "TM-10: terminate completing inside an upcall");
    const after: Uint8Array[] = [];
    forEachInTree(root, (b) => {
      if (b.layer === "tcp") {
        const c = this.#connOf(b);
        if (c === undefined) {
          b.status = "NDIS_STATUS_FAILURE";
          b.netBufferListChain = null;
          return;
        }
        if (this.#corrupt.has(c.ctx)) {
          this.#terminateCorrupt(c, b); // spec 11.9 steps 4-5
          return;
        }
        this.#terminateConn(now, c, b);
        for (const f of c.urgentFrames) after.push(f);
        b.status = "NDIS_STATUS_SUCCESS";
      } else if (b.layer === "path") {
        const p = this.#paths.get(ctxOf(b));
        if (p === undefined) {
          b.status = "NDIS_STATUS_FAILURE";
          return;
        }
        p.neighbor.paths.delete(p);
        this.#paths.delete(p.ctx);
        if (b.delegatedState !== undefined || b.stateType.endsWith("DelegatedState"))
          b.delegatedState = { headerOnly: true };
        b.netBufferListChain = null;
        b.status = "NDIS_STATUS_SUCCESS";
      } else {
        const n = this.#neighbors.get(ctxOf(b));
        if (n === undefined) {
          b.status = "NDIS_STATUS_FAILURE";
          return;
        }
        this.#neighbors.delete(n.ctx);
        b.delegatedState = { nicReachabilityDelta: Duration.fromMicros(Math.max(0, now - n.nrt)) };
        b.netBufferListChain = null;
        b.status = "NDIS_STATUS_SUCCESS";
      }
    });
    assertStatusWritten(root, "terminate"); // OP-2 / BL-1
    this.#host.terminateOffloadComplete(root);
    // Spec 15.3 step 6: urgent data and what followed go up the non-offload path.
    for (const f of after) this.#up(f);
  }

  #terminateConn(now: Instant, c: Conn, b: TcpBlock): void {
    c.phase = "terminating";
    this.#drainSendInbox(c); // C-11: queued sends complete with UPLOAD_IN_PROGRESS (TM-27)
    c.pushAt = undefined; // TM-12
    // TM-9: posted receives; spec 20 item 21.
    const reqs = c.reqs.splice(0);
    for (const r of reqs)
      this.#finishReq(r, r.placed > 0 ? "NDIS_STATUS_SUCCESS" : "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    if (reqs.length > 0)
      this.#completeRecvs(
        c,
        reqs.map((r) => r.nbl),
      );
    const disc = c.disconnect;
    if (disc !== undefined) {
      c.disconnect = undefined;
      if (disc.bytes > 0) {
        const i = c.sends.findIndex((e) => e.disconnect);
        if (i >= 0) c.sends.splice(i, 1);
      }
      disc.nbl.status = "NDIS_STATUS_UPLOAD_IN_PROGRESS";
      disc.nbl.bytesTransferred = 0;
      this.#completeDisconnect(disc.nbl);
    }
    this.#failForwards(c, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    // Fully acknowledged sends complete now.
    this.#takeAcks(c);
    const engine = c.engine;
    const live = isImportableState(toChimneyState(engine));
    let delegated: TcpDelegatedState;
    if (live) {
      // TM-11: drain what the engine has queued, then send an owed (delayed) ACK now.
      this.#emit(now, c, true);
      const ack = engine.flushAck(now);
      if (ack !== undefined) this.#pushFrame(c, ack);
      // PS-2 (and TM-F): persist state goes back as SndWndProbeCount, Retransmit.Count and
      // Retransmit.TimeoutDelta (undefined = -1, not running; 0 = fires at once on the host);
      // TS-1: TsTime = NicTime + NicDelta.
      const snap = engine.exportState(now);
      // TM-14..TM-16: the unacknowledged send NBLs go back in their original order.
      const left = c.sends.splice(0).filter((e) => !e.disconnect);
      for (const e of left) {
        if (e.acked > 0) advance(viewOne(this.#ledger, e.nbl, "target", OP_TERM_COMPLETE), e.acked);
      }
      const nbls = left.map((e) => e.nbl);
      const head = linkNbls(nbls);
      if (head !== null) this.#ledger.transfer(head, "target", "host", OP_TERM_COMPLETE);
      b.netBufferListChain = head; // BL-2 / TM-17: null when nothing is returned
      // TM-19..TM-21: undelivered bytes as BufferedData from the target's pool. TM-26: only the
      // in-order bytes the engine acknowledged cumulatively; SACKed-only data stays behind.
      const chunks =
        this.#mutant === "drop-buffered-at-terminate" ? [] : [...c.held, ...snap.delegated.bufferedData];
      const buffered = chunks.length === 0 ? null : this.#allocUp(chunks, OP_TERM_COMPLETE, true);
      if (buffered !== null && this.#mutant === "write-after-return") {
        forEachSegment(this.#ledger.view(buffered, "target", "mutant: write after return"), 0, 1, (x, st) => {
          x[st] = 0;
        });
      }
      delegated = delegatedStateFromEngine(snap.delegated, {
        sendDataHead: head,
        sendDataTail: nbls[nbls.length - 1] ?? null,
        bufferedData: buffered,
      });
      if (c.closedOnUpload) delegated = { ...delegated, state: "TcpConnectionClosed" };
    } else {
      // The engine closed (RST, timeout, abort): a RST of an abortive disconnect still goes out
      // (DC-4); outstanding sends are completed, nothing returned.
      this.#emit(now, c, true);
      this.#failSends(c, c.aborted ? "NDIS_STATUS_REQUEST_ABORTED" : "NDIS_STATUS_UPLOAD_IN_PROGRESS");
      b.netBufferListChain = null;
      // Received data the host has not taken still goes up (a FIN-closed connection keeps it).
      const chunks = [...c.held, ...engine.exportState(now).delegated.bufferedData];
      const buffered = chunks.length === 0 ? null : this.#allocUp(chunks, OP_TERM_COMPLETE, true);
      delegated = this.#closedDelegated(now, c, buffered);
    }
    // ST-5: the current delegated values go into the host's block; const and cached are not returned.
    b.delegatedState = delegated;
    this.#removeConn(c);
  }

  /** A delegated state for an engine that already reached CLOSED (the engine exports it). */
  #closedDelegated(now: Instant, c: Conn, buffered: NetBufferList | null): TcpDelegatedState {
    const d = delegatedStateFromEngine(c.engine.exportState(now).delegated, {
      sendDataHead: null,
      sendDataTail: null,
      bufferedData: buffered,
    });
    return { ...d, state: "TcpConnectionClosed" };
  }

  #removeConn(c: Conn): void {
    c.path.conns.delete(c);
    this.#conns.delete(c.ctx);
    this.#byKey.delete(c.key);
  }

  /**
   * NBLs from the target's pool over `chunks` (views), handed up to the host (TM-21). `final`:
   * the engine holding them is dropped, so its held-pool chunks are given back now (the give
   * completes when the host returns the NBL).
   */
  #allocUp(chunks: readonly Uint8Array[], op: string, final: boolean): NetBufferList {
    const nbl = this.#recvPool.alloc(chunks, op); // INIT-4: one NB
    this.#holdChunks(nbl, chunks, final);
    this.#ledger.transfer(nbl, "target", "host", op);
    this.#lentUp.add(nbl);
    return nbl;
  }

  /**
   * The held-pool chunks among `chunks` get a hold for `nbl` (released when it comes back, so
   * a chunk consumed meanwhile is not reused under the host); `give`: also end their loan.
   */
  #holdChunks(nbl: NetBufferList, chunks: readonly Uint8Array[], give: boolean): void {
    const pool = this.#heldPool;
    if (pool === undefined) return;
    let mine: Uint8Array[] | undefined;
    for (const x of chunks) {
      if (give) {
        if (!pool.holdAndGive(x)) continue; // one step: a terminate hands hundreds of chunks up
      } else {
        if (!pool.owns(x)) continue;
        pool.hold(x);
      }
      (mine ??= []).push(x);
    }
    if (mine !== undefined) this.#lentChunks.set(nbl, mine);
  }

  /** `nbl` is back: its holds on held-pool chunks end. */
  #releaseChunks(nbl: NetBufferList): void {
    const mine = this.#lentChunks.get(nbl);
    if (mine === undefined) return;
    this.#lentChunks.delete(nbl);
    const pool = this.#heldPool as ChunkPool; // chunks are recorded only with a pool
    for (const x of mine) pool.release(x);
  }

  // -------------------------------------------------------------------------------------------
  // Update, invalidate, query (spec 8-10)

  #doUpdate(now: Instant, root: OffloadBlockList): void {
    const parent = parentsOf(root);
    const affected = new Set<Conn>();
    forEachInTree(root, (b) => {
      if (roleOf(b) === "placeholder") {
        b.status = "NDIS_STATUS_SUCCESS";
        return;
      }
      b.status = this.#updateBlock(now, b, parent.get(b), affected)
        ? "NDIS_STATUS_SUCCESS"
        : "NDIS_STATUS_FAILURE";
    });
    assertStatusWritten(root, "update"); // OP-2 / BL-1
    this.#host.updateOffloadComplete(root);
    for (const c of affected) if (this.#conns.get(c.ctx) === c) this.#service(now, c);
  }

  #updateBlock(
    now: Instant,
    b: OffloadBlockList,
    parent: OffloadBlockList | undefined,
    affected: Set<Conn>,
  ): boolean {
    switch (b.layer) {
      case "neighbor": {
        const n = this.#neighbors.get(ctxOf(b));
        if (n === undefined) return false;
        if (b.cachedState !== undefined) {
          n.cachedState = frozenCached(b.cachedState); // ST-2: only an update replaces it
          n.hrt = now - b.cachedState.hostReachabilityDelta;
        }
        for (const p of n.paths) for (const c of p.conns) affected.add(c);
        return true;
      }
      case "path": {
        const p = this.#paths.get(ctxOf(b));
        if (p === undefined) return false;
        // UP-4 / spec 9.3: a path under a neighbor block is re-linked to that neighbor.
        const nb = parent === undefined ? undefined : this.#neighborOfBlock(parent);
        if (nb !== undefined && nb !== p.neighbor) {
          p.neighbor.paths.delete(p);
          nb.paths.add(p);
          p.neighbor = nb;
        }
        if (b.cachedState !== undefined) {
          p.cachedState = frozenCached(b.cachedState); // ST-2
          const hdr = tcpIpHeaderBytes(ipVersion(p.constState.sourceAddress));
          for (const c of p.conns) c.engine.setPathMtu(b.cachedState.pathMtu, hdr);
        }
        for (const c of p.conns) affected.add(c);
        return true;
      }
      case "tcp": {
        const c = this.#connOf(b);
        if (c === undefined) return false;
        const ca = b.cachedState;
        if (ca !== undefined) this.#applyTcpCached(now, c, ca);
        affected.add(c);
        return true;
      }
    }
  }

  /** UP-2, UP-3, UP-5: cached TCP variables and their one-shot flags. */
  #applyTcpCached(now: Instant, c: Conn, ca: TcpCachedState): void {
    const old = c.cachedState;
    c.cachedState = frozenCached(ca); // ST-2: the one place a TCP cached state changes
    const e = c.engine;
    e.setNoDelay(!ca.naglingEnabled);
    if (ca.maxRt !== old.maxRt) e.setRetransmitLimits(this.#maxRtx, ca.maxRt);
    const kaChanged =
      old.keepAliveEnabled !== ca.keepAliveEnabled ||
      old.kaTimeout !== ca.kaTimeout ||
      old.kaInterval !== ca.kaInterval ||
      old.kaProbeCount !== ca.kaProbeCount;
    if (kaChanged || ca.keepAliveRestart) {
      const ka = engineKeepAlive(ca); // BR-0
      e.setKeepAlive(now, ca.keepAliveEnabled, ca.kaTimeout, ka.interval, ka.probes);
    }
    if (ca.maxRtRestart) e.resetTotalRt(); // UP-3: TotalRT restarts; the count is kept
    // UP-2: the new InitialRcvWnd; the engine sends the window update at once if it changed.
    if (ca.updateRcvWnd) e.setInitialRcvWnd(ca.initialRcvWnd);
    this.#touch(c);
  }

  #doInvalidate(root: OffloadBlockList): void {
    const affected = new Set<Conn>();
    const broken: Conn[] = [];
    forEachInTree(root, (b) => {
      if (roleOf(b) === "placeholder") {
        b.status = "NDIS_STATUS_SUCCESS";
        return;
      }
      let ok = true;
      if (b.layer === "tcp") {
        const c = this.#connOf(b);
        if (c === undefined) ok = false;
        else if (this.#corrupt.has(c.ctx)) {
          ok = false; // IV-7 failure path: spec 11.9 step 1
          broken.push(c);
        } else {
          c.invalid = true; // IV-2; IV-5: kept (not freed) until the host terminates it
          affected.add(c);
        }
      } else if (b.layer === "path") {
        const p = this.#paths.get(ctxOf(b));
        if (p === undefined) ok = false;
        else {
          p.invalid = true;
          for (const c of p.conns) affected.add(c);
        }
      } else {
        const n = this.#neighbors.get(ctxOf(b));
        if (n === undefined) ok = false;
        else {
          n.invalid = true;
          for (const p of n.paths) for (const c of p.conns) affected.add(c);
        }
      }
      b.status = ok ? "NDIS_STATUS_SUCCESS" : "NDIS_STATUS_FAILURE"; // IV-7
    });
    assertStatusWritten(root, "invalidate"); // OP-2 / BL-1
    this.#host.invalidateOffloadComplete(root);
    for (const c of broken) this.#hardwareFailure(c); // spec 11.9 steps 2-3
    for (const c of affected) this.#requestUpload(c, "InvalidState"); // IV-4
  }

  #doQuery(now: Instant, root: OffloadBlockList): void {
    const broken: Conn[] = [];
    forEachInTree(root, (b) => {
      if (roleOf(b) === "placeholder") {
        b.status = "NDIS_STATUS_SUCCESS";
        return;
      }
      let ok = true;
      if (b.layer === "tcp") {
        const c = this.#connOf(b);
        if (c === undefined) ok = false;
        else if (this.#corrupt.has(c.ctx)) {
          ok = false; // QY-3: spec 11.9 step 1, NdisMQueryOffloadStateComplete with FAILURE
          broken.push(c);
        } else {
          b.constState = c.constState;
          b.cachedState = c.cachedState;
          b.delegatedState = this.#queryDelegated(now, c);
        }
      } else if (b.layer === "path") {
        const p = this.#paths.get(ctxOf(b));
        if (p === undefined) ok = false;
        else {
          b.constState = p.constState;
          b.cachedState = p.cachedState;
          b.delegatedState = { headerOnly: true };
        }
      } else {
        const n = this.#neighbors.get(ctxOf(b));
        if (n === undefined) ok = false;
        else {
          b.constState = n.constState;
          b.cachedState = n.cachedState;
          b.delegatedState = { nicReachabilityDelta: Duration.fromMicros(Math.max(0, now - n.nrt)) };
        }
      }
      b.status = ok ? "NDIS_STATUS_SUCCESS" : "NDIS_STATUS_FAILURE";
    });
    assertStatusWritten(root, "query"); // OP-2 / BL-1
    this.#host.queryOffloadComplete(root);
    for (const c of broken) this.#hardwareFailure(c); // QY-3: spec 11.9 steps 2-3
  }

  /**
   * QY-1 current values; ReceiveBacklogSize = bytes buffered. SendBacklogSize: ST-4, the value
   * last indicated with TcpIndicateSendBacklogChange (the current preference before the first);
   * ST-7: 0xFFFFFFFF when the feature is off.
   */
  #queryDelegated(now: Instant, c: Conn): TcpDelegatedState {
    const base = isImportableState(toChimneyState(c.engine))
      ? delegatedStateFromEngine(c.engine.exportState(now).delegated, {
          sendDataHead: null,
          sendDataTail: null,
          bufferedData: null,
        })
      : this.#closedDelegated(now, c, null);
    return {
      ...base,
      sendBacklogSize: this.#backlogSupported
        ? (c.backlog ?? this.#preferredBacklog(c))
        : BACKLOG_UNSUPPORTED,
      receiveBacklogSize: c.heldBytes + c.engine.readable,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Receive processing

  #segmentIn(now: Instant, c: Conn, seg: TcpRepr, frame: Uint8Array): void {
    if (c.aborted) return; // DC-6: nothing more is processed or acknowledged
    const e = c.engine;
    const f = seg.flags;
    if (f & TcpFlag.SYN && e.state !== "TIME-WAIT" && seg.seq === e.rcvNxt && !(f & TcpFlag.RST)) {
      // NS-2: an in-order SYN: upload the connection in the CLOSED state.
      c.closedOnUpload = true;
      this.#requestUpload(c, "UploadRequested");
      return;
    }
    if (f & TcpFlag.SYN && e.state === "TIME-WAIT") {
      this.#up(frame); // NS-1
      return;
    }
    // NS-3 / BR-0: any other SYN, an in-window RST not at RCV.NXT and an unacceptable ACK go to
    // the engine, which runs RFC 5961 (forced on by `offloadEngineConfig`): challenge ACK, discard.
    // NR-1: every sequence and timestamp comparison here and in the engine is modular (`Seq`).
    if (f & TcpFlag.URG) {
      // Spec 15.3: valid urgent data -> upload; nothing of it (or later) is acknowledged.
      const inWindow = Seq.inWindow(seg.seq, e.rcvNxt, Math.max(1, e.rcvWnd));
      const ackOk = !(f & TcpFlag.ACK) || Seq.le(seg.ack, e.status().sndMax);
      if (inWindow && ackOk) {
        c.urgent = true;
        c.urgentFrames.push(frame);
        this.#requestUpload(c, "ReceivedUrgentData");
      }
      return;
    }
    const una = e.sndUna;
    const before = e.readable;
    // RI-4: the engine acknowledges on arrival (or per its delayed-ACK policy), whatever delivery does.
    e.handleSegment(now, seg);
    // NR-2: forward progress (new data acknowledged, or in-order data accepted).
    if (Seq.gt(e.sndUna, una) || e.readable > before) c.path.neighbor.nrt = now;
    if (e.readable > before && f & TcpFlag.PSH) c.pshPending = true;
    if (e.readable > before && c.pushAt !== undefined) c.pushAt = Instant.add(now, this.#pushTimeout); // PT-2
    this.#service(now, c, e.readable > before);
  }

  /** After any input: send completions, engine events, delivery, FIN/RST/timeouts. */
  #service(now: Instant, c: Conn, newData = false): void {
    if (c.phase === "terminating") return;
    this.#touch(c);
    this.#takeAcks(c);
    const e = c.engine;
    if (c.phase === "offloading") return; // IO-6
    if (newData) {
      this.#deliver(now, c, "E1");
      // What delivery left behind is held: copied into whole pool chunks once it fills one.
      if (this.#heldPool !== undefined && c.phase === "offloaded") c.engine.compactReceived(this.#heldPool);
    }
    const closed = c.closedReason;
    if (closed !== undefined) {
      c.closedReason = undefined;
      if (closed === "reset" && !c.aborted) this.#onReset(c);
      else if (closed === "timeout") this.#requestUpload(c, "TimeoutExpiration"); // FW2-3, spec 20 item 17
      // PS-1: also when the engine gave up on zero-window probes (more than TcpMaximumRetransmissions).
    }
    if (c.disconnect !== undefined && c.disconnect.flags === "graceful") this.#checkGracefulDone(c);
    if (c.disconnect !== undefined && c.disconnect.flags === "abortive") {
      // DC-4: the RST reaches the wire queue before the disconnect completes (a terminate
      // that follows the completion must not drop it).
      this.#emit(now, c, true);
      const d = c.disconnect;
      c.disconnect = undefined;
      d.nbl.status = "NDIS_STATUS_SUCCESS";
      d.nbl.bytesTransferred = 0;
      this.#completeDisconnect(d.nbl);
    }
    this.#checkFin(c);
    this.#sendBacklogChange(now, c);
    // FW2-3 (spec 17.3): the FIN_WAIT_2 timer runs from entering FIN-WAIT-2 (read side open or
    // not); its expiry closes the engine with "timeout" -> TcpIndicateRetrieve(TimeoutExpiration)
    // above, and the terminate then reports CLOSED. Its value travels in Retransmit.TimeoutDelta.
    e.armFinWait2Timer(now);
    if (e.state === "TIME-WAIT") this.#requestUpload(c, "UploadRequested"); // EV-3
    // LAST-ACK -> CLOSED (our FIN acknowledged after the peer's) or CLOSING -> CLOSED: the
    // connection is done and EV-0 has no event for it, so the target asks for the upload with
    // the mandatory UploadRequested (spec 16.4, as EV-3 does for TIME-WAIT); the host then
    // terminates the offload and finishes the connection (DC-3 / FN-3: nothing is freed before).
    if (closed === "fin" && !c.aborted) this.#requestUpload(c, "UploadRequested");
  }

  /** RST-1: abort indication; sends, disconnect and receives complete with REQUEST_ABORTED. */
  #onReset(c: Conn): void {
    c.aborted = true;
    c.pushAt = undefined;
    this.#failSends(c, "NDIS_STATUS_REQUEST_ABORTED");
    const d = c.disconnect;
    if (d !== undefined) {
      c.disconnect = undefined;
      d.nbl.status = "NDIS_STATUS_REQUEST_ABORTED";
      d.nbl.bytesTransferred = 0;
      this.#completeDisconnect(d.nbl);
    }
    const reqs = c.reqs.splice(0);
    for (const r of reqs) this.#finishReq(r, "NDIS_STATUS_REQUEST_ABORTED");
    if (reqs.length > 0)
      this.#completeRecvs(
        c,
        reqs.map((r) => r.nbl),
      );
    this.#failForwards(c, "NDIS_STATUS_REQUEST_ABORTED");
    if (!c.abortIndicated) {
      c.abortIndicated = true;
      this.#indicateEvent(c, { type: "TcpIndicateAbort" });
    }
  }

  /** FN-1: TcpIndicateDisconnect once the peer's FIN arrived and every byte before it was delivered. */
  #checkFin(c: Conn): void {
    if (c.finIndicated || c.aborted || c.busy || c.phase !== "offloaded") return;
    if (!c.engine.atEof || c.heldBytes > 0) return;
    if (this.#initiating > 0) {
      this.#holdDelivery(c); // IO-7: the FIN indication waits (after any held data)
      return;
    }
    // Requests still queued get what they hold (0 bytes = end of stream), then the event.
    const reqs = c.reqs.splice(0);
    for (const r of reqs) this.#finishReq(r, "NDIS_STATUS_SUCCESS");
    if (reqs.length > 0)
      this.#completeRecvs(
        c,
        reqs.map((r) => r.nbl),
      );
    c.pushAt = undefined;
    c.finIndicated = true;
    this.#indicateEvent(c, { type: "TcpIndicateDisconnect" });
  }

  /** DC-8: a graceful disconnect completes once its data and FIN are acknowledged. */
  #checkGracefulDone(c: Conn): void {
    const d = c.disconnect;
    if (d === undefined) return;
    const s = c.engine.status();
    const finAcked = s.sndUna === s.sndMax && c.sends.length === 0;
    const st = c.engine.state;
    if (!finAcked || !(st === "FIN-WAIT-2" || st === "TIME-WAIT" || st === "CLOSED")) return;
    c.disconnect = undefined;
    d.nbl.status = "NDIS_STATUS_SUCCESS";
    d.nbl.bytesTransferred = d.bytes;
    if (d.bytes > 0) advance(viewOne(this.#ledger, d.nbl, "target", OP_DISC_COMPLETE), d.bytes);
    this.#completeDisconnect(d.nbl);
  }

  /** EV-4: the connection's preferred send backlog now (`preferredSendBacklog`). */
  #preferredBacklog(c: Conn): number {
    const e = c.engine;
    return preferredSendBacklog(e.cwnd, e.sndWnd, e.mss);
  }

  /**
   * EV-4 / ST-4: indicates TcpIndicateSendBacklogChange when the preferred backlog moved enough
   * (a quarter of the last value) and the last indication is at least SEND_BACKLOG_INTERVAL (or
   * one srtt) old; the first one right after the offload completes. Not once an upload is asked
   * for, nor after the connection closed for sending.
   */
  #sendBacklogChange(now: Instant, c: Conn): void {
    if (!this.#backlogSupported || c.phase !== "offloaded" || c.aborted || c.uploadRequested) return;
    const st = c.engine.state;
    if (st !== "ESTABLISHED" && st !== "CLOSE-WAIT") return;
    const next = this.#preferredBacklog(c);
    const srtt = c.engine.srtt ?? Duration.ZERO;
    const interval = srtt > SEND_BACKLOG_INTERVAL ? srtt : SEND_BACKLOG_INTERVAL;
    c.backlogRecheck = undefined;
    if (next === c.backlog) return;
    if (!backlogChangeDue(c.backlog, c.backlogAt, next, now, interval)) {
      // Big enough but too soon: look again when the interval has passed (a timer, `#flush`).
      if (backlogChangeDue(c.backlog, Instant.ZERO, next, now, Duration.ZERO))
        c.backlogRecheck = Instant.add(c.backlogAt, interval);
      return;
    }
    c.backlog = next;
    c.backlogAt = now;
    this.#indicateEvent(c, { type: "TcpIndicateSendBacklogChange", sendBacklog: next });
  }

  /** Upload requests (spec 16.4): EV-2 for optional reasons; once per connection; not during offload. */
  #requestUpload(c: Conn, reason: TcpUploadReason): void {
    if (c.uploadRequested || c.phase !== "offloaded") return;
    const st = c.engine.state;
    if (OPTIONAL_REASONS.has(reason) && (st === "FIN-WAIT-1" || st === "FIN-WAIT-2" || st === "CLOSE-WAIT"))
      return;
    c.uploadRequested = true; // TM-27: new sends now complete with UPLOAD_IN_PROGRESS
    this.#indicateEvent(c, { type: "TcpIndicateRetrieve", reason });
  }

  // -------------------------------------------------------------------------------------------
  // The delivery algorithm (spec 14.6)

  /** Undelivered bytes: held (refused indication data) plus the engine's receive buffer. */
  #undelivered(c: Conn): number {
    return c.heldBytes + c.engine.readable;
  }

  /**
   * DA-1 / RX-2: every delivery decision (E1 new data, E2 posted request, E3 push timer) runs
   * this algorithm. C-12: a run goes to completion; work arriving during an upcall re-runs it
   * afterwards instead of interrupting it.
   */
  #deliver(now: Instant, c: Conn, entry: "E1" | "E2" | "E3"): void {
    if (c.phase !== "offloaded" || c.aborted || c.urgentBuffered) return; // IO-24: nothing delivered
    this.#touch(c); // reading opens the window; the push timer may move
    if (c.busy) {
      // E1.1 / E2.1: queue; processed when the in-progress upcall finishes.
      if (entry === "E1") c.rerunE1 = true;
      else if (entry === "E2") c.rerunE2 = true;
      return;
    }
    let next: "E1" | "E2" | "E3" | undefined = entry;
    while (next !== undefined) {
      this.#run(now, c, next);
      next = c.rerunE2 ? "E2" : c.rerunE1 ? "E1" : undefined;
      c.rerunE2 = false;
      c.rerunE1 = false;
    }
    c.known = this.#undelivered(c);
    this.#checkFin(c);
  }

  /** One run of the algorithm from an entry to an EXIT (DA-4). */
  #run(now: Instant, c: Conn, entry: "E1" | "E2" | "E3"): void {
    switch (entry) {
      case "E2":
        // E2.2: any buffered data? yes -> A; no -> E2.3 (the requests wait in the queue).
        if (this.#undelivered(c) > 0 || this.#hasZeroByteReq(c)) this.#connA(now, c);
        return;
      case "E1":
        if (c.reqs.length > 0)
          this.#connA(now, c); // E1.2 (RX-1: posted requests are used first)
        else if ((c.known > 0 || c.refused) && this.#mutant !== "reindicate-refused")
          return; // E1.3: appended to the buffered data
        else this.#connB(now, c);
        return;
      case "E3": {
        // P1 / P2
        const r = c.reqs[0];
        if (r === undefined || r.placed === 0 || !r.push) return;
        this.#completeHead(c, 1);
        return;
      }
    }
  }

  #hasZeroByteReq(c: Conn): boolean {
    return c.reqs.some((r) => r.size === 0);
  }

  /** Connector A: place data into the requests (FIFO) and complete what is filled. */
  #connA(now: Instant, c: Conn): void {
    for (;;) {
      if (c.phase !== "offloaded") return; // a terminate arrived during the last upcall
      this.#place(c); // A1
      let filled = 0;
      while (
        filled < c.reqs.length &&
        (c.reqs[filled] as RecvReq).placed === (c.reqs[filled] as RecvReq).size
      )
        filled++;
      if (filled > 0) {
        this.#completeHead(c, filled); // A2, A3 (stops the push timer)
      }
      if (this.#undelivered(c) > 0) {
        // A4 -> B: requests ran out (B5 sends us back here if more were posted meanwhile).
        if (c.reqs.length > 0) continue;
        this.#connB(now, c);
        return;
      }
      const r = c.reqs[0];
      if (r === undefined || r.placed === 0) return; // A5
      if (!r.push) return; // A6: non-push mode waits to be filled
      if (c.pshPending) {
        // A7: PSH -> complete the partial request now.
        this.#completeHead(c, 1);
        return;
      }
      if (c.pushAt === undefined) c.pushAt = Instant.add(now, this.#pushTimeout);
      return;
    }
  }

  /** A1: copies undelivered bytes into the queued requests, one copy per MDL piece. */
  #place(c: Conn): void {
    for (const r of c.reqs) {
      if (r.placed === r.size) continue;
      if (this.#undelivered(c) === 0) return;
      const view = viewOne(this.#ledger, r.nbl, "target", OP_RECV);
      forEachSegment(view, r.placed, r.size - r.placed, (bytes, s, e) => {
        let at = s;
        if (this.#mutant === "buffered-after-newer") at += c.engine.recvInto(bytes.subarray(at, e));
        while (at < e && c.heldBytes > 0) {
          const h = c.held[0] as Uint8Array; // heldBytes > 0
          const n = Math.min(h.length, e - at);
          bytes.set(n === h.length ? h : h.subarray(0, n), at);
          at += n;
          c.heldBytes -= n;
          if (n === h.length) c.held.shift();
          else c.held[0] = h.subarray(n);
        }
        if (at < e) at += c.engine.recvInto(bytes.subarray(at, e));
        const got = at - s;
        r.placed += got;
        this.stats.bytesCopied += got;
      });
      if (r.placed < r.size) return; // out of data
    }
    if (this.#undelivered(c) === 0) c.pshPending = false;
  }

  /** Completes the first `n` requests with SUCCESS in one call (A2 / A7 / P2), serialized. */
  #completeHead(c: Conn, n: number): void {
    const done = c.reqs.splice(0, n);
    for (const r of done) this.#finishReq(r, "NDIS_STATUS_SUCCESS");
    c.pushAt = undefined; // A3 / A7: a request completed
    if (this.#undelivered(c) === 0) c.pshPending = false;
    this.#completeRecvs(
      c,
      done.map((r) => r.nbl),
    );
  }

  /** Writes status, bytes and NdisAdvanceNetBufferDataStart into a request. */
  #finishReq(
    r: RecvReq,
    status: NdisStatus &
      ("NDIS_STATUS_SUCCESS" | "NDIS_STATUS_UPLOAD_IN_PROGRESS" | "NDIS_STATUS_REQUEST_ABORTED"),
  ): void {
    r.nbl.status = status;
    r.nbl.bytesTransferred = r.placed;
    if (r.placed > 0) advance(viewOne(this.#ledger, r.nbl, "target", OP_RECV_COMPLETE), r.placed);
  }

  /** NdisTcpOffloadReceiveComplete for `nbls` (FIFO), with `busy` held (DA-2, C-8, C-9, RC-1). */
  #completeRecvs(c: Conn, nbls: NetBufferList[]): void {
    const head = linkNbls(nbls);
    if (head === null) return;
    this.#ledger.transfer(head, "target", "host", OP_RECV_COMPLETE);
    this.stats.receiveCompletions += nbls.length;
    const was = c.busy;
    c.busy = true;
    this.#upcalls++; // C-11
    try {
      this.#host.tcpOffloadReceiveComplete(head);
      if (this.#mutant === "double-complete") this.#host.tcpOffloadReceiveComplete(head);
    } finally {
      c.busy = was;
      this.#upcalls--;
    }
  }

  /** Connector B: indicate (B1-B6). */
  #connB(now: Instant, c: Conn): void {
    for (;;) {
      if (c.phase !== "offloaded") return; // a terminate arrived during the last upcall
      if (c.busy || (c.refused && this.#mutant !== "reindicate-refused")) return; // B1; RI-3
      if (this.#initiating > 0) {
        // IO-7: no indication while an initiate is in progress; the data stays undelivered
        // (acknowledged, the window shrinking) and is indicated once the last one completes.
        this.#holdDelivery(c);
        return;
      }
      const { chunks, taken } = this.#takeForIndication(c);
      if (chunks.length === 0) return;
      let total = 0;
      for (const x of chunks) total += x.length;
      const nbl = this.#recvPool.alloc(chunks, OP_INDICATE); // INIT-3 / INIT-4: one NB per NBL
      this.#holdChunks(nbl, chunks, false);
      this.#ledger.transfer(nbl, "target", "host", OP_INDICATE);
      this.stats.indications++;
      c.busy = true;
      this.#upcalls++; // TM-10 / C-11
      let res;
      try {
        res = this.#host.tcpOffloadReceiveIndicate(c.handle, nbl, "NDIS_STATUS_SUCCESS"); // RI-2
      } finally {
        c.busy = false;
        this.#upcalls--;
      }
      if (res.status === "NDIS_STATUS_SUCCESS") {
        // B3 yes: the host keeps the NBL until MiniportTcpOffloadReceiveReturn.
        this.#lentUp.add(nbl);
        c.engine.consume(total - taken); // the engine's part is delivered: the window opens
        this.stats.bytesIndicated += total;
        if (this.#undelivered(c) === 0) {
          c.pshPending = false;
          return; // B4
        }
        if (c.reqs.length > 0 || c.rerunE2) {
          c.rerunE2 = false;
          this.#connA(now, c); // B5
          return;
        }
        continue; // B1 again
      }
      // Not (fully) accepted: the NBL is the target's again at once; keep the remainder.
      if (this.#ledger.ownerOf(nbl) === "host") this.#ledger.transfer(nbl, "host", "target", OP_INDICATE);
      this.#recvPool.release(nbl);
      this.#ledger.free(nbl, "target", OP_INDICATE);
      this.#releaseChunks(nbl);
      const consumed = res.status === "NDIS_STATUS_OFFLOAD_DATA_PARTIALLY_ACCEPTED" ? res.bytesConsumed : 0;
      assert(
        consumed >= 0 && consumed < total,
        () => `bytesConsumed ${consumed} of ${total} with ${res.status}`,
      );
      this.stats.bytesIndicated += consumed;
      if (consumed >= taken) c.engine.consume(consumed - taken);
      else this.#unshiftHeld(c, chunks.slice(0, chunksOf(chunks, taken)), consumed);
      if (c.reqs.length > 0 || c.rerunE2) {
        c.rerunE2 = false;
        this.#connA(now, c); // B6 -> A
        return;
      }
      c.refused = true; // RI-3
      return;
    }
  }

  /**
   * The bytes for one indication, up to RcvIndicationSize: held bytes first (taken out of
   * `held`; `taken` counts them), then views of the engine's receive buffer, not consumed: the
   * engine consumes what the host accepts, so refused data keeps the window closed (RI-3).
   */
  #takeForIndication(c: Conn): { readonly chunks: Uint8Array[]; readonly taken: number } {
    const limit =
      c.cachedState.rcvIndicationSize > 0 ? c.cachedState.rcvIndicationSize : Number.MAX_SAFE_INTEGER;
    const out: Uint8Array[] = [];
    let n = 0;
    if (this.#mutant === "buffered-after-newer") {
      for (let v = c.engine.recv(limit); v !== undefined && n < limit; v = c.engine.recv(limit - n)) {
        out.push(v);
        n += v.length;
      }
    }
    while (n < limit && c.heldBytes > 0) {
      const h = c.held.shift() as Uint8Array; // heldBytes > 0
      const take = Math.min(h.length, limit - n);
      out.push(take === h.length ? h : h.subarray(0, take));
      if (take < h.length) c.held.unshift(h.subarray(take));
      c.heldBytes -= take;
      n += take;
    }
    const taken = n;
    for (const v of c.engine.peekChunks()) {
      if (n >= limit) break;
      const take = Math.min(v.length, limit - n);
      out.push(take === v.length ? v : v.subarray(0, take));
      n += take;
    }
    return { chunks: out, taken };
  }

  /** Puts the unconsumed part of an indication back at the front of `held`. */
  #unshiftHeld(c: Conn, chunks: Uint8Array[], consumed: number): void {
    const keep: Uint8Array[] = [];
    let skip = consumed;
    for (const x of chunks) {
      if (skip >= x.length) {
        skip -= x.length;
        continue;
      }
      keep.push(skip > 0 ? x.subarray(skip) : x);
      skip = 0;
    }
    let bytes = 0;
    for (const x of keep) bytes += x.length;
    c.held.unshift(...keep);
    c.heldBytes += bytes;
  }

  // -------------------------------------------------------------------------------------------
  // Send path (spec 13.4, 13.5)

  /** The status a new send request gets at once, or undefined to accept it. */
  #sendRefusal(c: Conn): NblStatus | undefined {
    if (c.aborted) return "NDIS_STATUS_REQUEST_ABORTED";
    // TM-27; SD-10: also while paused after UPLOAD_ALL (this target never completes with PAUSED).
    if (c.phase === "terminating" || c.uploadRequested) return "NDIS_STATUS_UPLOAD_IN_PROGRESS";
    const st = c.engine.state;
    if (st === "CLOSED" || c.disconnect !== undefined || c.engine.sendSpace === 0)
      return "NDIS_STATUS_REQUEST_ABORTED";
    return undefined;
  }

  /** Turns engine `acked` counts into send completions (SD-6: one call for all that finished). */
  #takeAcks(c: Conn): void {
    let acked = 0;
    for (let ev = c.engine.pollEvent(); ev !== undefined; ev = c.engine.pollEvent()) {
      if (ev.kind === "acked") acked += ev.bytes;
      else if (ev.kind === "closed") c.closedReason = ev.reason;
    }
    if (acked === 0) return;
    const done: NetBufferList[] = [];
    while (acked > 0 && c.sends.length > 0) {
      const e = c.sends[0] as SendEntry; // length > 0
      const n = Math.min(acked, e.left);
      e.left -= n;
      e.acked += n;
      acked -= n;
      if (e.left > 0) break;
      c.sends.shift();
      if (e.disconnect) continue; // completed with the disconnect (DC-1)
      e.nbl.status = "NDIS_STATUS_SUCCESS";
      e.nbl.bytesTransferred = e.acked;
      if (e.acked > 0) advance(viewOne(this.#ledger, e.nbl, "target", OP_SEND_COMPLETE), e.acked);
      done.push(e.nbl);
    }
    if (done.length > 0) this.#completeSends(done);
  }

  /** SC-1 / SC-2: completes every outstanding send with `status` (partial bytes reported). */
  #failSends(c: Conn, status: NdisStatus): void {
    const done: NetBufferList[] = [];
    for (const e of c.sends.splice(0)) {
      if (e.disconnect) continue;
      e.nbl.status = status as NetBufferList["status"];
      e.nbl.bytesTransferred = e.acked;
      if (e.acked > 0) advance(viewOne(this.#ledger, e.nbl, "target", OP_SEND_COMPLETE), e.acked);
      done.push(e.nbl);
    }
    if (done.length > 0) this.#completeSends(done);
  }

  #completeSends(nbls: NetBufferList[]): void {
    const head = linkNbls(nbls);
    if (head === null) return;
    this.#ledger.transfer(head, "target", "host", OP_SEND_COMPLETE);
    this.stats.sendCompletions += nbls.length;
    this.#upcalls++; // C-11: a send posted from the completion waits for `process`
    try {
      this.#host.tcpOffloadSendComplete(head);
    } finally {
      this.#upcalls--;
    }
  }

  #completeDisconnect(nbl: NetBufferList): void {
    nbl.next = null;
    this.#ledger.transfer(nbl, "target", "host", OP_DISC_COMPLETE);
    this.#host.tcpOffloadDisconnectComplete(nbl);
  }

  #processForwards(now: Instant, c: Conn): void {
    if (c.forwards.length === 0) return;
    const fw = c.forwards.splice(0);
    for (const n of fw) {
      if (c.aborted) {
        n.status = "NDIS_STATUS_REQUEST_ABORTED";
        continue;
      }
      if (c.uploadRequested) {
        n.status = "NDIS_STATUS_UPLOAD_IN_PROGRESS"; // TM-28 / FW-5: the host processes it after the upload
        continue;
      }
      const bytes = new Uint8Array(chainLength(viewOne(this.#ledger, n, "target", OP_FWD)));
      let at = 0;
      for (const piece of segments(viewOne(this.#ledger, n, "target", OP_FWD))) {
        bytes.set(piece, at);
        at += piece.length;
      }
      const v = TcpView.checked(bytes);
      const seg = v.ok ? parseTcp(v.value) : undefined;
      if (seg === undefined || !seg.ok) {
        n.status = "NDIS_STATUS_FAILURE";
        continue;
      }
      this.#segmentIn(now, c, seg.value, bytes);
      n.status = c.aborted ? "NDIS_STATUS_REQUEST_ABORTED" : "NDIS_STATUS_SUCCESS";
    }
    const head = linkNbls(fw);
    if (head !== null) {
      this.#ledger.transfer(head, "target", "host", OP_FWD_COMPLETE);
      this.#host.tcpOffloadForwardComplete(head);
    }
  }

  #failForwards(c: Conn, status: NdisStatus): void {
    const fw = c.forwards.splice(0);
    for (const n of fw) n.status = status as NetBufferList["status"];
    const head = linkNbls(fw);
    if (head !== null) {
      this.#ledger.transfer(head, "target", "host", OP_FWD_COMPLETE);
      this.#host.tcpOffloadForwardComplete(head);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Transmit

  /** Drains the engine's segments into frames (IV-3: none for invalidated state). */
  #emit(now: Instant, c: Conn, force = false): void {
    if (c.phase === "terminating" && !force) return;
    if (!force && (c.invalid || c.path.invalid || c.path.neighbor.invalid)) return;
    for (let seg = c.engine.pollTransmit(now); seg !== undefined; seg = c.engine.pollTransmit(now)) {
      if (c.urgent && !(seg.flags & TcpFlag.RST)) continue; // spec 15.3 step 3: ACK nothing more
      this.#reachability(now, c);
      this.#pushFrame(c, seg);
    }
  }

  /** Builds and queues the frame of one segment (SD-7, SD-8, SD-9, 15.5, NB-1): never fragmented. */
  #pushFrame(c: Conn, seg: TcpRepr): void {
    const p = c.path;
    const n = p.neighbor;
    const ca = c.cachedState;
    const v4 = ipVersion(p.constState.sourceAddress) === 4;
    const vlanId = n.constState.vlanId;
    const prio = ca.userPriority;
    const frame = emitTcpPacket({
      ip: {
        src: p.constState.sourceAddress,
        dst: p.constState.destinationAddress,
        ttl: ca.ttlOrHopLimit,
        dscp: ca.tosOrTrafficClass >> 2,
        ecn: 0,
        ident: v4 ? this.#nextIdent() : undefined,
        dontFragment: true,
        flowLabel: v4 ? undefined : ca.flowLabel,
      },
      tcp: seg,
      ethernet: {
        src: macEquals(n.constState.dlSourceAddress, MAC_ZERO) ? this.#mac : n.constState.dlSourceAddress,
        dst: n.cachedState.dlDestinationAddress,
        vlan: vlanId === 0 && prio === 0 ? undefined : { id: vlanId, priority: prio, dropEligible: false },
      },
    });
    this.#countSent(c, seg, frame, vlanId === 0 && prio === 0 ? 14 : 18);
    this.#wireFrames.push(frame);
  }

  /** SS-1: a segment sent for an offloaded connection (pure retransmissions counted apart). */
  #countSent(c: Conn, seg: TcpRepr, frame: Uint8Array, ethBytes: number): void {
    const v = ipVersion(c.path.constState.sourceAddress);
    const len = seg.payload.length + (seg.flags & TcpFlag.SYN ? 1 : 0) + (seg.flags & TcpFlag.FIN ? 1 : 0);
    const end = Seq.add(seg.seq, len);
    const max = this.#sentMax.get(c);
    const retransmission = len > 0 && max !== undefined && Seq.le(end, max);
    if (max === undefined || Seq.gt(end, max)) this.#sentMax.set(c, end);
    this.#offloadStats.sent(v, frame.length - ethBytes, retransmission, (seg.flags & TcpFlag.RST) !== 0);
  }

  /** SD-8: IPv4 identification from the upper half, 0x8000-0xFFFF. */
  #nextIdent(): number {
    const id = 0x8000 | (this.#ipIdent & 0x7fff);
    this.#ipIdent = (this.#ipIdent + 1) & 0x7fff;
    return id;
  }

  /** NR-3: before sending, ask the host about a neighbor that looks stale on both sides. */
  #reachability(now: Instant, c: Conn): void {
    const n = c.path.neighbor;
    if (now - n.nrt <= this.#nceStale || now - n.hrt <= this.#nceStale) return;
    // IO-7: no NdisMOffloadEventIndicate while an initiate is in progress; a later send asks.
    if (this.#initiating > 0) return;
    const nrd = Duration.fromMicros(Math.max(0, now - n.nrt));
    const block = newBlock<NeighborBlock>({
      layer: "neighbor",
      stateType: "NeighborOffloadState",
      miniportOffloadContext: null,
      ndisOffloadHandle: n.handle,
      constState: n.constState,
      cachedState: { ...n.cachedState, hostReachabilityDelta: Duration.fromMicros(Math.max(0, now - n.hrt)) },
      delegatedState: { nicReachabilityDelta: nrd },
    });
    block.status = "NDIS_STATUS_SUCCESS";
    this.#upcalls++; // TM-10: NdisMOffloadEventIndicate is an upcall too
    let hrd: number;
    try {
      hrd = this.#host.neighborReachabilityQuery(block);
    } finally {
      this.#upcalls--;
    }
    n.hrt = now - hrd; // HRD 0 (stale NCE) -> HRT = now: no new query for NceStaleTicks
  }

  #up(frame: Uint8Array): void {
    this.stats.framesUp++;
    this.#host.indicateReceive(frame);
  }

  // -------------------------------------------------------------------------------------------
  // Lookups

  #ctx(): MiniportOffloadContext {
    return this.#nextCtx++ as MiniportOffloadContext;
  }

  #connOf(b: OffloadBlockList): Conn | undefined {
    return this.#conns.get(ctxOf(b));
  }

  #mustConn(ctx: MiniportOffloadContext, op: string): Conn {
    const c = this.#conns.get(ctx);
    if (c === undefined) throw new UsageError(`${op}: no offloaded connection with context ${ctx}`);
    return c;
  }

  /** The neighbor a block refers to (new or linked), once processed. */
  #neighborOfBlock(b: OffloadBlockList): NeighborObj | undefined {
    return b.layer === "neighbor" ? this.#neighbors.get(ctxOf(b)) : undefined;
  }

  #pathOfBlock(b: OffloadBlockList): PathObj | undefined {
    return b.layer === "path" ? this.#paths.get(ctxOf(b)) : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function ctxOf(b: OffloadBlockList): number {
  return b.miniportOffloadContext?.context ?? 0;
}

function connKey(local: IpAddr, remote: IpAddr, lport: number, rport: number): string {
  return `${ipKey(local)}|${ipKey(remote)}|${lport}|${rport}`;
}

function toChimneyState(e: TcpConnection): TcpDelegatedState["state"] {
  switch (e.state) {
    case "ESTABLISHED":
      return "TcpConnectionEstablished";
    case "FIN-WAIT-1":
      return "TcpConnectionFinWait1";
    case "FIN-WAIT-2":
      return "TcpConnectionFinWait2";
    case "CLOSE-WAIT":
      return "TcpConnectionCloseWait";
    case "CLOSING":
      return "TcpConnectionClosing";
    case "LAST-ACK":
      return "TcpConnectionLastAck";
    case "TIME-WAIT":
      return "TcpConnectionTimeWait";
    default:
      return "TcpConnectionClosed";
  }
}

function drainEvents(e: TcpConnection): void {
  while (e.pollEvent() !== undefined);
}

/** Every block's parent (the block whose dependent chain holds it). */
function parentsOf(root: OffloadBlockList): Map<OffloadBlockList, OffloadBlockList> {
  const m = new Map<OffloadBlockList, OffloadBlockList>();
  forEachInTree(root, (b) => {
    for (let k = b.dependentBlockList; k !== null; k = k.nextBlock) m.set(k, b);
  });
  return m;
}

/** The immediately dependent blocks (spec 7.4). */
function nblessChildren(b: OffloadBlockList): OffloadBlockList[] {
  const out: OffloadBlockList[] = [];
  for (let k = b.dependentBlockList; k !== null; k = k.nextBlock) out.push(k);
  return out;
}

function isInTree(root: OffloadBlockList, x: OffloadBlockList): boolean {
  let found = false;
  forEachInTree(root, (b) => {
    if (b === x) found = true;
  });
  return found;
}

/** How many leading chunks hold the first `bytes` bytes (chunk boundaries line up with it). */
function chunksOf(chunks: readonly Uint8Array[], bytes: number): number {
  let k = 0;
  for (let n = 0; n < bytes && k < chunks.length; k++) n += (chunks[k] as Uint8Array).length;
  return k;
}
