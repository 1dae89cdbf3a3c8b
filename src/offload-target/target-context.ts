/**
 * The shared state of one software offload target, and the few primitives every part of it uses.
 *
 * `SoftwareTarget` (software-target.ts) is the handler front end; the work is done by free
 * functions over one `TargetContext`, grouped by part: state operations (state-operations.ts),
 * receive processing and delivery (receive.ts), the per-connection service after input, the send
 * path and the TCP events (connection-service.ts), and the wire side with the timers
 * (transmit.ts). This class holds what they share, grouped below by who writes it:
 * - the settings, fixed at construction (the few the host can change are noted);
 * - the object tables (IT-1: TCP -> path -> neighbor), written by the state operations;
 * - the state-operation queue (OP-1), written by the front end and the state operations;
 * - the scheduling lists (dirty connections, timer heap, frame queues), written by transmit.ts;
 * - the receive pools and the NBLs lent up (INIT-3, TM-21), written by receive.ts;
 * - the upcall bookkeeping (TM-10, C-11, IO-7), written through the methods here.
 *
 * Upcalls: every call into the host from inside the target (indication, event, completion) is
 * counted in `upcalls`; while it is above zero, `process` completes nothing (TM-10) and sends
 * posted re-entrantly wait in `sendInbox` (C-11). IO-7: from `initiateOffload` until its
 * completion has returned (`initiating` > 0), no indication or TCP event goes up for any
 * connection: events wait in `heldUpcalls` as they are, a blocked indication (or FIN indication)
 * waits as a re-run of the delivery algorithm; `releaseHeld` (state-operations.ts) sends all of
 * it after the last completion, in order.
 */
import { TupleTable } from "./tuple-table.js";
import { Duration, Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { IntMap } from "../util/int-map.js";
import { MinHeap } from "../util/heap.js";
import type { SeqNum } from "../wire/seq.js";
import { type TcpConfig, tcpConfig } from "../tcp/config.js";
import { ChunkPool, idlePoolBytes } from "../storage/chunk-pool.js";
import type { BufferLedger } from "../nbl/ledger.js";
import type { MacAddr } from "../wire/ethernet.js";
import type { MiniportOffloadContext, OffloadBlockList } from "../chimney/block-list.js";
import type { OffloadHost } from "../chimney/contract.js";
import type { OffloadStatusIndication } from "../chimney/status.js";
import {
  capabilities as makeCapabilities,
  type TcpConnectionOffloadCapabilities,
} from "../chimney/capabilities.js";
import { offloadEngineConfig } from "./tcp-rules.js";
import { NblPool } from "./pools.js";
import { OffloadStatistics } from "./stats.js";
import {
  DEFAULT_TARGET_LIMITS,
  HELD_CHUNK_BYTES,
  type SoftwareTargetOptions,
  type TargetLimits,
  type TargetStats,
} from "./options.js";
import { type Conn, ctxOf, type InboxItem, type NeighborObj, type PathObj } from "./connection-record.js";

/** Ledger operation names: the NDIS call each buffer check or transfer is made for. */
export const OP_SEND = "MiniportTcpOffloadSend";
export const OP_RECV = "MiniportTcpOffloadReceive";
export const OP_RETURN = "MiniportTcpOffloadReceiveReturn";
export const OP_DISC = "MiniportTcpOffloadDisconnect";
export const OP_FWD = "MiniportTcpOffloadForward";
export const OP_INIT = "MiniportInitiateOffload";
export const OP_SEND_COMPLETE = "NdisTcpOffloadSendComplete";
export const OP_RECV_COMPLETE = "NdisTcpOffloadReceiveComplete";
export const OP_INDICATE = "NdisTcpOffloadReceiveHandler";
export const OP_DISC_COMPLETE = "NdisTcpOffloadDisconnectComplete";
export const OP_FWD_COMPLETE = "NdisTcpOffloadForwardComplete";
export const OP_INIT_COMPLETE = "NdisMInitiateOffloadComplete";
export const OP_TERM_COMPLETE = "NdisMTerminateOffloadComplete";

/** One timer heap entry: live only while `at` equals the connection's `deadline`. */
export interface TimerEntry {
  readonly at: Instant;
  readonly c: Conn;
}

/** A recorded state operation (OP-1), completed by `process` in arrival order. */
export interface PendingOp {
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

/** The shared state of one `SoftwareTarget` (see the module comment for who writes what). */
export class TargetContext {
  // Settings.
  readonly host: OffloadHost;
  readonly ledger: BufferLedger;
  readonly mac: MacAddr;
  readonly cfg: TcpConfig;
  /** Push timer, NceStaleTicks and TcpMaximumRetransmissions: the host can set them (CFG-6). */
  pushTimeout: Duration = 0 as Duration;
  nceStale: Duration = 0 as Duration;
  maxRtx: number = 0;
  readonly configurableMacs: boolean;
  readonly vlans: readonly number[];
  readonly supportSack: boolean;
  readonly limits: TargetLimits;
  readonly opDelay: Duration = 0 as Duration;
  readonly backlogSupported: boolean;
  /** Receive moderation: new data is delivered from `process`, once per connection per batch. */
  readonly moderation: boolean;
  /** Capabilities reported to the host; changed only by a pause / resume pair (CFG-5). */
  caps: TcpConnectionOffloadCapabilities;
  /** CFG-6: the target's timer resolution. */
  readonly tps: number = 0;
  /** The time of the latest call from the driver. */
  now: Instant = Instant.ZERO;

  // Counters.
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
  /** SS-1: statistics of offloaded connections only. */
  readonly offloadStats = new OffloadStatistics();

  // Object tables (IT-1). A context is a small integer handed out in the host's slot (CTX-3).
  readonly neighbors = new Map<number, NeighborObj>();
  readonly paths = new Map<number, PathObj>();
  readonly conns = IntMap.sequential<Conn>();
  /** Offloaded connections by their 4-tuple, for the receive path. */
  readonly byTuple = new TupleTable<Conn>();
  #nextCtx = 1;
  /** Contexts whose hardware state is corrupt, and those whose failure was indicated (spec 11.9). */
  readonly corrupt = new Set<number>();

  // State operations (OP-1).
  readonly ops: PendingOp[] = [];
  readonly copies = new Map<OffloadBlockList, BufferedCopy>();
  bufferBytesUsed = 0;

  // Scheduling and the wire.
  readonly hostFrames: Uint8Array[] = [];
  readonly wireFrames: Uint8Array[] = [];
  /** Connections with data-call completions to do in `process` (forward, abortive disconnect). */
  dataConns: Conn[] = [];
  /** Connections touched since the last flush: output to drain, deadline to recompute. */
  dirty: Conn[] = [];
  /** Every connection's deadline (engine timers and the push timer), lazily deleted. */
  readonly timers = new MinHeap<TimerEntry>((a, b) => a.at < b.at);
  /** Highest sequence number sent per connection (to tell retransmissions apart, SS-1). */
  readonly sentMax = new WeakMap<Conn, SeqNum>();
  ipIdent = 0;

  // Receive pools and lent NBLs.
  /**
   * INIT-3: the two pools (INIT-4: one NB per NBL). `recvPool` also knows which of its NBLs are
   * handed up and not yet returned (indications, BufferedData at terminate, TM-21).
   */
  readonly recvPool: NblPool;
  readonly upPool: NblPool;
  /** Indications in flight (a host that answers later), by NBL id. */
  readonly inFlight = IntMap.sequential<Conn>();
  /** Chunks held receive data is compacted into; undefined when compaction is off. */
  readonly heldPool: ChunkPool | undefined;
  /** Per NBL lent up (by id), the held-pool chunks its MDLs show (each holds one `hold`). */
  readonly lentChunks = IntMap.sequential<Uint8Array[]>();

  // Upcalls (TM-10, C-11, IO-7).
  /** Upcalls (indications, events, completions) in progress: TM-10, C-11. */
  upcalls = 0;
  /**
   * C-11: sends posted from inside an upcall, run from `process` in order; a disconnect posted
   * while sends wait here waits behind them (its FIN or RST must follow their data).
   */
  readonly sendInbox = new Map<Conn, InboxItem[]>();
  /** IO-7: initiates recorded whose NdisMInitiateOffloadComplete has not returned yet. */
  initiating = 0;
  /** IO-7: upcalls held back while `initiating > 0`, released in order once it is 0. */
  readonly heldUpcalls: HeldUpcall[] = [];
  /** IO-7: connections with a "deliver" entry in `heldUpcalls`. */
  readonly heldDelivery = new Set<Conn>();

  constructor(opts: SoftwareTargetOptions) {
    this.host = opts.host;
    this.ledger = opts.ledger;
    this.mac = opts.mac;
    // NS-3 / BR-0: offloaded connections always run RFC 5961 sections 3-5 (blind-reset mitigation).
    // FW2-1: the FIN_WAIT_2 timer starts at 120 s unless the target is configured otherwise.
    const base = opts.tcpConfig ?? tcpConfig({ sendBufferSize: 2 ** 30 });
    this.cfg = offloadEngineConfig(
      tcpConfig({ ...base, finWait2Timeout: opts.finWait2Timeout ?? Duration.fromSeconds(120) }),
    );
    this.pushTimeout = opts.pushTimeout ?? Duration.fromMillis(500);
    this.nceStale = opts.nceStale ?? Duration.fromSeconds(30);
    this.maxRtx = opts.maxRetransmissions ?? this.cfg.maxRetransmissions;
    this.configurableMacs = opts.configurableMacs ?? true;
    this.vlans = opts.interfaceVlans ?? [];
    this.supportSack = opts.supportSack ?? true;
    this.opDelay = opts.operationDelay ?? Duration.ZERO;
    this.backlogSupported = opts.sendBacklog ?? true;
    this.moderation = opts.receiveModeration ?? false;
    this.caps = makeCapabilities({ supportSack: this.supportSack, ...opts.capabilities });
    this.tps = opts.timerTicksPerSecond ?? 1000;
    if (!Number.isSafeInteger(this.tps) || this.tps <= 0)
      throw new UsageError(`bad timerTicksPerSecond ${this.tps}`);
    this.recvPool = new NblPool("chimney-receive", opts.ledger);
    this.upPool = new NblPool("non-offload-receive", opts.ledger);
    this.heldPool =
      opts.compactHeldData === false
        ? undefined
        : new ChunkPool(
            HELD_CHUNK_BYTES,
            opts.heldPoolBytes ?? idlePoolBytes(this.cfg.recvBufferSize),
            opts.memory,
          );
    const l = opts.limits ?? {};
    const d = DEFAULT_TARGET_LIMITS;
    this.limits = {
      tcp: l.tcp ?? d.tcp,
      path: l.path ?? d.path,
      neighbor: l.neighbor ?? d.neighbor,
      ipAddresses: l.ipAddresses ?? d.ipAddresses,
      bufferBytes: l.bufferBytes ?? d.bufferBytes,
      maxPathMtu: l.maxPathMtu ?? d.maxPathMtu,
      maxRcvWnd: l.maxRcvWnd ?? d.maxRcvWnd,
    };
  }

  /** Marks a connection for `flush` (transmit.ts): its engine may have output or a new deadline. */
  touch(c: Conn): void {
    if (c.dirty) return;
    c.dirty = true;
    this.dirty.push(c);
  }

  /**
   * NdisMIndicateStatusEx, counted as an upcall (TM-10). Not held back by IO-7: the only statuses
   * are OFFLOAD_PAUSE / RESUME / UPLOAD_ALL, raised by the driver's own calls, and C-13 expects a
   * pause while an initiate is in flight (holding it behind the initiates it is to stop would
   * defeat it).
   */
  indicateStatus(status: OffloadStatusIndication): void {
    this.upcalls++;
    try {
      this.host.indicateStatus(status);
    } finally {
      this.upcalls--;
    }
  }

  /**
   * NdisTcpOffloadEventHandler, counted as an upcall (TM-10, C-11). IO-7: held back while an
   * initiate is in progress.
   */
  indicateEvent(c: Conn, event: TcpEventArg): void {
    if (this.initiating > 0) {
      this.heldUpcalls.push({ kind: "event", c, event });
      return;
    }
    this.upcalls++;
    try {
      this.host.tcpOffloadEvent(c.handle, event);
    } finally {
      this.upcalls--;
    }
  }

  /** IO-7: the delivery algorithm runs again for `c` once no initiate is in progress. */
  holdDelivery(c: Conn): void {
    if (this.heldDelivery.has(c)) return;
    this.heldDelivery.add(c);
    this.heldUpcalls.push({ kind: "deliver", c });
  }

  addDataWork(c: Conn): void {
    if (c.dataWork) return;
    c.dataWork = true;
    this.dataConns.push(c);
  }

  removeConn(c: Conn): void {
    c.path.conns.delete(c.ctx);
    this.conns.delete(c.ctx);
    this.byTuple.deleteValue(c.tupleKey, c);
  }

  up(frame: Uint8Array): void {
    this.stats.framesUp++;
    this.host.indicateReceive(frame);
  }

  newContext(): MiniportOffloadContext {
    return this.#nextCtx++ as MiniportOffloadContext;
  }

  connOf(b: OffloadBlockList): Conn | undefined {
    return this.conns.get(ctxOf(b));
  }

  mustConn(ctx: MiniportOffloadContext, op: string): Conn {
    const c = this.conns.get(ctx);
    if (c === undefined) throw new UsageError(`${op}: no offloaded connection with context ${ctx}`);
    return c;
  }

  /** The neighbor a block refers to (new or linked), once processed. */
  neighborOfBlock(b: OffloadBlockList): NeighborObj | undefined {
    return b.layer === "neighbor" ? this.neighbors.get(ctxOf(b)) : undefined;
  }

  pathOfBlock(b: OffloadBlockList): PathObj | undefined {
    return b.layer === "path" ? this.paths.get(ctxOf(b)) : undefined;
  }
}
