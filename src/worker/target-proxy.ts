/**
 * The host thread's side of an offload target that runs on a worker thread: `WorkerTarget`
 * implements the target contract (`NicTarget`) by sending every call to the worker, and turns the
 * worker's completions, indications and events back into calls on the host (the offload manager).
 *
 * Theory of operation
 * - Asynchronous both ways, as in the WDK: a call down appends a record to the outgoing batch and
 *   returns (state operations record, data calls are pending); the batch is posted at the end of
 *   the host's turn (`process`, or a microtask). Upcalls arrive in batches (`message` events), are
 *   queued, and are dispatched to the host from `process`, in order; `onWake` tells the driver
 *   there is something to dispatch. Calls so cross in flight: the host may terminate while the
 *   target is indicating, post receives during a terminate, or return NBLs after the connection
 *   has moved, and the contract's in-progress rules must hold.
 * - The receive indication and the reachability query are synchronous in the contract: the
 *   worker waits for the host's answer in a shared cell (protocol.ts), which `process` writes as
 *   soon as it dispatches the upcall.
 * - NBLs. The host's NBLs that go down (`h`) are kept by id until they come back; the proxy acts
 *   for the target on the host's ledger (it reads them as the target, and makes the target's
 *   hand-offs when they return). The worker's NBLs that come up (`w`) get a mirror in the host's
 *   ledger, freed when the host hands them back (`MiniportTcpOffloadReceiveReturn`). A return of an
 *   NBL the proxy does not know (never indicated, or already returned) is an `OwnershipError`
 *   raised on the host thread, before anything crosses.
 * - Frames. In relay mode the host's driver hands wire frames to `handleFrame` and takes the
 *   target's frames from `pollTransmit`; they cross in shared memory.
 */
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import { forEachInTree, type OffloadBlockList, type MiniportOffloadContext } from "../chimney/block-list.js";
import type { TcpConnectionOffloadCapabilities } from "../chimney/capabilities.js";
import type { DisconnectFlags, OffloadHost } from "../chimney/contract.js";
import { mapNbls, nblCount } from "../nbl/chain.js";
import { BufferLedger } from "../nbl/ledger.js";
import { OffloadManager, type OffloadPolicy, type ReceiveKnobs } from "../host/offload-manager.js";
import type { HostStack } from "../host/stack.js";
import { advanceNetBuffer, type Mdl, mdlChainLength, type NblId, type NetBufferList } from "../nbl/nbl.js";
import type { SoftwareTargetOptions } from "../offload-target/software-target.js";
import type { TcpConfig } from "../tcp/config.js";
import type { Instant } from "../time/instant.js";
import { InvariantViolation, OwnershipError, StackError, UsageError } from "../util/errors.js";
import type { MacAddr } from "../wire/ethernet.js";
import type { TapHandle } from "../device/tap.js";
import { type OffloadWorkers, startOffloadWorkers } from "./rss-targets.js";
import {
  type Batch,
  type BlockDesc,
  type TreeDesc,
  CELL_BELL_DOWN,
  CELL_BELL_UP,
  CELL_STOP,
  completeStateOp,
  CELL_STOPPED,
  copyBack,
  type CrossingDelegatedState,
  resolveDelegated,
  DATA_CALL_OP,
  DATA_COMPLETE_OP,
  type DataCall,
  decodeNb,
  decodeTree,
  type DownRecord,
  forEachDesc,
  nblDesc,
  MdlEncoder,
  type NblDesc,
  type NblRef,
  SharedSlab,
  STATE_COMPLETE_OP,
  STATE_OP,
  type StateOp,
  Doorbell,
  SYNC_CELL_WORDS,
  type TreeDecoder,
  type TreeEncoder,
  type UpRecord,
  type WorkerAudit,
  type WorkerReady,
} from "./protocol.js";
import { packBlocks, unpackTree } from "./tree-pack.js";
import { IntMap } from "../util/int-map.js";

/** Options of the SoftwareTarget in the worker that can cross threads (plain data only). */
export type WorkerSoftwareTargetOptions = Omit<
  Partial<SoftwareTargetOptions>,
  "host" | "ledger" | "mac" | "tcpConfig" | "memory"
>;

/** What the worker is started with (`workerData`). */
export interface WorkerTargetInit {
  readonly mac: MacAddr;
  readonly tcpConfig: TcpConfig;
  readonly target: WorkerSoftwareTargetOptions;
  /** The answer cell of the synchronous upcalls (protocol.ts). */
  readonly cell: SharedArrayBuffer;
  /** The TAP device the worker reads and writes itself (the wire goes to the target first). */
  readonly wire?: TapHandle | undefined;
  /** The port the worker posts its batches on (the host thread can also poll it). */
  readonly up: MessagePort;
}

/** Options of `WorkerTarget.start`. */
export interface WorkerTargetOptions {
  readonly mac: MacAddr;
  readonly tcpConfig: TcpConfig;
  readonly target?: WorkerSoftwareTargetOptions | undefined;
  /**
   * Frames from the wire (and from the host stack) in flight to the worker at most, as a NIC's
   * receive (and send) ring: beyond it a frame is dropped and counted (default 1024 each way).
   */
  readonly ringFrames?: number | undefined;
  /**
   * The TAP device for the worker to own: it reads and writes the wire itself, so frames of
   * offloaded connections never reach the host thread; the rest goes up the non-offload path.
   * Without it the host's driver relays wire frames through `handleFrame` / `pollTransmit`.
   */
  readonly wire?: TapHandle | undefined;
}

/** Records after which the outgoing batch is posted at once, not at the end of the turn. */
const PIPELINE_RECORDS = 256;

/**
 * How long the host thread polls for the worker's answer after posting a state operation (ms):
 * a completion taken while polling saves the ~20 us wake-up of a sleeping thread, as a driver
 * polls its completion queue after a request it expects back soon. Bounded per turn.
 */
const POLL_AFTER_OP_MS = 0.1;

/**
 * Most operations posted without a poll after polls that found nothing: 1 after one such poll,
 * doubling with each one in a row up to this (a poll that worked starts over). A fixed 16 after
 * any miss left most of a steady run of terminates unpolled, paying a wake-up each, for one
 * slow answer (a GC, a descheduled worker).
 */
const POLL_BACKOFF_MAX = 16;

/** Default size of the frame rings to the worker. */
export const DEFAULT_RING_FRAMES = 1024;

/** An error the worker raised, carried to the host thread. */
export class WorkerTargetError extends StackError {
  readonly code = "ERR_WORKER_TARGET";
  /** The worker's error code, when it had one. */
  readonly workerCode: string | undefined;
  constructor(message: string, workerCode: string | undefined) {
    super(message);
    this.workerCode = workerCode;
  }
}

/** Counters of the proxy. */
export interface WorkerTargetStats {
  batchesOut: number;
  batchesIn: number;
  recordsOut: number;
  recordsIn: number;
  /** Bytes the host copied into shared memory because they were not there yet. */
  bytesCopied: number;
  indications: number;
  /** Wire frames dropped because the receive ring to the worker was full. */
  rxDropped: number;
  /** Batches taken by polling after a state operation (not by a wake-up), and polls made. */
  polled: number;
  polls: number;
  /** Host stack frames dropped because the send ring to the worker was full. */
  txDropped: number;
  /** Call-to-completion times of the latest state operations (us; at most 4096). */
  readonly opLatencyUs: number[];
  /**
   * Call to the end of the host's completion handler, of the same operations (us; at most
   * 4096): a terminate's includes the host taking up its BufferedData.
   */
  readonly opHandledUs: number[];
}

/** Appends `us` to a bounded list of the latest latencies. */
export function recordLatency(list: number[], us: number): void {
  if (list.length >= 4096) list.shift();
  list.push(Math.round(us));
}

/** A host NBL at the target: the original, and whether its bytes crossed as a copy. */
interface Lent {
  readonly nbl: NetBufferList;
  readonly copied: boolean;
}

/** The host thread's proxy of a SoftwareTarget on a worker thread. */
export class WorkerTarget implements OffloadWorkers {
  readonly #worker: Worker;
  #hostRef: OffloadHost | undefined;
  #ledgerRef: BufferLedger | undefined;
  readonly #cell: Int32Array;
  readonly #bellDown: Doorbell;
  readonly #bellUp: Doorbell;
  readonly #slab = new SharedSlab();
  readonly #enc: MdlEncoder;
  #caps: TcpConnectionOffloadCapabilities | undefined;
  #out: DownRecord[] = [];
  #flushQueued = false;
  readonly #inbox: UpRecord[] = [];
  readonly #tx: Uint8Array[] = [];
  /** Host NBLs at the target, by id. */
  readonly #atTarget = IntMap.sequential<Lent>();
  /** Mirrors of the worker's NBLs the host holds, by the worker's id. */
  readonly #mirrors = IntMap.sequential<NetBufferList>();
  /** The worker's id of each mirror. */
  readonly #mirrorOf = IntMap.sequential<NblId>();
  /** State operations in flight, by id: the host's own tree and when it was called (ms). */
  readonly #ops = new Map<number, { readonly root: OffloadBlockList; readonly at: number }>();
  #nextOp = 1;
  #pings = new Map<number, () => void>();
  readonly #audits = new Map<number, (a: WorkerAudit) => void>();
  #nextPing = 1;
  #connections = 0;
  readonly #ring: number = 0;
  /** Frames posted to the worker (wire and host stack) and how many it has taken in. */
  #framesPosted = 0;
  #framesTaken = 0;
  #failure: unknown;
  #failed = false;
  #closed = false;
  readonly #ownsWire: boolean;
  /** The worker's batches arrive here (events, or polled after a state operation). */
  readonly #up: MessagePort;
  /** A state operation was posted since the last poll. */
  #opPosted = false;
  /** Operations to post without polling after them (see `#pollAfterOp`). */
  #pollSkip = 0;
  /** Polls in a row that found nothing. */
  #pollMisses = 0;
  /** Called when upcalls are waiting: the driver should run `process` (its `flush`). */
  onWake: () => void = () => undefined;
  /**
   * Called with the first error of the chimney once it has failed (an ownership violation on
   * either side, an error of the worker, or one the host's handlers threw while dispatching from
   * a message of the worker); every later call throws it again. Default: thrown, uncaught.
   */
  onError: (e: unknown) => void = (e) => {
    throw e;
  };
  readonly stats: WorkerTargetStats = {
    batchesOut: 0,
    batchesIn: 0,
    recordsOut: 0,
    recordsIn: 0,
    bytesCopied: 0,
    indications: 0,
    rxDropped: 0,
    txDropped: 0,
    polled: 0,
    polls: 0,
    opLatencyUs: [],
    opHandledUs: [],
  };

  private constructor(
    worker: Worker,
    up: MessagePort,
    o: WorkerTargetOptions,
    cell: SharedArrayBuffer,
    ready: WorkerReady,
  ) {
    this.#worker = worker;
    this.#up = up;
    this.#cell = new Int32Array(cell);
    this.#bellDown = new Doorbell(this.#cell, CELL_BELL_DOWN);
    this.#bellUp = new Doorbell(this.#cell, CELL_BELL_UP);
    this.#enc = new MdlEncoder(this.#slab.alloc);
    this.#caps = ready.caps;
    this.#ownsWire = o.wire !== undefined;
    this.#ring = o.ringFrames ?? DEFAULT_RING_FRAMES;
    if (!Number.isSafeInteger(this.#ring) || this.#ring < 1)
      throw new UsageError(`ringFrames ${o.ringFrames}: must be a positive integer`);
    up.on("message", (b: Batch<UpRecord>) => {
      this.#take(b);
      if (this.#inbox.length > 0) this.#wake();
    });
    worker.on("error", (e) => {
      this.#fail(new WorkerTargetError(`the target's worker failed: ${e.stack ?? e.message}`, undefined));
    });
    worker.on("exit", (code) => {
      if (!this.#closed) this.#fail(new WorkerTargetError(`the target's worker exited (${code})`, undefined));
    });
  }

  /** A batch of the worker's: counted, its records queued for `process`. */
  #take(b: Batch<UpRecord>): void {
    this.stats.batchesIn++;
    this.stats.recordsIn += b.records.length;
    if (b.connections !== undefined) this.#connections = b.connections;
    if (b.framesIn !== undefined) this.#framesTaken = b.framesIn;
    for (const r of b.records) {
      if (r.k === "pong") this.#pings.get(r.id)?.();
      else if (r.k === "audited") this.#audits.get(r.id)?.(r.audit);
      else this.#inbox.push(r);
    }
  }

  /** Starts the worker and waits until its target runs. */
  static async start(o: WorkerTargetOptions): Promise<WorkerTarget> {
    const cell = new SharedArrayBuffer(SYNC_CELL_WORDS * 4);
    const { port1, port2 } = new MessageChannel();
    const init: WorkerTargetInit = {
      mac: o.mac,
      tcpConfig: o.tcpConfig,
      target: o.target ?? {},
      cell,
      wire: o.wire,
      up: port2,
    };
    const worker = new Worker(new URL("./target-worker.js", import.meta.url), {
      workerData: init,
      transferList: [port2],
    });
    const ready = await new Promise<WorkerReady>((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      worker.once("error", onError);
      worker.once("message", (m: WorkerReady) => {
        worker.off("error", onError);
        resolve(m);
      });
    });
    return new WorkerTarget(worker, port1, o, cell, ready);
  }

  /**
   * The host the target's upcalls go to (the offload manager) and its ledger: once, before any
   * call (`createWorkerChimney` does it).
   */
  attach(host: OffloadHost, ledger: BufferLedger): void {
    if (this.#hostRef !== undefined) throw new UsageError("the worker target is attached to a host already");
    this.#hostRef = host;
    this.#ledgerRef = ledger;
  }

  get #host(): OffloadHost {
    if (this.#hostRef === undefined) throw new UsageError("the worker target is not attached to a host");
    return this.#hostRef;
  }

  get #ledger(): BufferLedger {
    if (this.#ledgerRef === undefined) throw new UsageError("the worker target is not attached to a host");
    return this.#ledgerRef;
  }

  // -------------------------------------------------------------------------------------------
  // The driver's side (NicTarget)

  handleFrame(_now: Instant, frame: Uint8Array): void {
    if (this.#framesPosted - this.#framesTaken >= this.#ring) {
      this.stats.rxDropped++; // the receive ring is full: the NIC drops
      return;
    }
    this.#framesPosted++;
    this.#post({ k: "frame", frame: this.#shared(frame) });
  }

  sendFrame(frame: Uint8Array): void {
    if (this.#framesPosted - this.#framesTaken >= this.#ring) {
      this.stats.txDropped++; // the send ring is full
      return;
    }
    this.#framesPosted++;
    this.#post({ k: "sendFrame", frame: this.#shared(frame) });
  }

  /**
   * Dispatches the upcalls that arrived, in order, then posts what the host called meanwhile.
   * After posting a state operation it polls the worker's port briefly (POLL_AFTER_OP_MS) and
   * dispatches what comes back in the same turn.
   */
  process(): void {
    this.#throwIfFailed();
    for (;;) {
      for (let r = this.#inbox.shift(); r !== undefined; r = this.#inbox.shift()) this.#dispatch(r);
      this.#flush();
      if (!this.#pollAfterOp()) return;
    }
  }

  /**
   * Polls for the worker's answer to a state operation just posted; true if a batch came. Polls
   * that found nothing make the next operations go without one (the worker is busy, or has no
   * core: spinning would only take the host's; see `POLL_BACKOFF_MAX`).
   */
  #pollAfterOp(): boolean {
    if (!this.#opPosted || this.#ops.size === 0) return false;
    this.#opPosted = false;
    if (this.#pollSkip > 0) {
      this.#pollSkip--;
      return false;
    }
    this.stats.polls++;
    const until = performance.now() + POLL_AFTER_OP_MS;
    do {
      const m = this.#bellUp.poll(this.#up);
      if (m !== undefined) {
        this.stats.polled++;
        this.#pollMisses = 0;
        this.#take(m as Batch<UpRecord>);
        // later batches (the rest of a pipelined storm) arrive as events
        return this.#inbox.length > 0;
      }
    } while (performance.now() < until);
    this.#pollSkip = Math.min(POLL_BACKOFF_MAX, 1 << this.#pollMisses);
    this.#pollMisses++;
    return false;
  }

  pollTransmit(): Uint8Array | undefined {
    return this.#tx.shift();
  }

  pollTimeout(): Instant | undefined {
    return undefined; // the worker runs its own timers
  }

  handleTimeout(): void {
    // the worker runs its own timers
  }

  get connectionCount(): number {
    return this.#connections;
  }

  pollAt(now: Instant): Instant | undefined {
    return this.hasWork() ? now : undefined;
  }

  hasWork(): boolean {
    return this.#inbox.length > 0 || this.#out.length > 0;
  }

  // -------------------------------------------------------------------------------------------
  // The target contract (OffloadTarget)

  initiateOffload(blockList: OffloadBlockList): void {
    this.#op("initiate", blockList);
  }

  terminateOffload(blockList: OffloadBlockList): void {
    this.#op("terminate", blockList);
  }

  updateOffload(blockList: OffloadBlockList): void {
    this.#op("update", blockList);
  }

  invalidateOffload(blockList: OffloadBlockList): void {
    this.#op("invalidate", blockList);
  }

  queryOffload(blockList: OffloadBlockList): void {
    this.#op("query", blockList);
  }

  tcpOffloadSend(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    this.#data("send", context, nbl);
    return "NDIS_STATUS_PENDING";
  }

  tcpOffloadReceive(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    this.#data("recv", context, nbl);
    return "NDIS_STATUS_PENDING";
  }

  tcpOffloadForward(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    this.#data("fwd", context, nbl);
    return "NDIS_STATUS_PENDING";
  }

  tcpOffloadDisconnect(
    context: MiniportOffloadContext,
    nbl: NetBufferList,
    flags: DisconnectFlags,
  ): "NDIS_STATUS_PENDING" {
    this.#post({
      k: "disc",
      ctx: context,
      chain: this.#lendDown(nbl, DATA_CALL_OP.disc),
      flags,
    });
    return "NDIS_STATUS_PENDING";
  }

  tcpOffloadReceiveReturn(nbl: NetBufferList): "NDIS_STATUS_SUCCESS" {
    // Every NBL must be a mirror the host holds, or nothing crosses (the chain moves whole).
    // (A set finds a cycle: a storm returns thousands of NBLs in one chain.)
    const ids: NblId[] = [];
    const seen = new Set<NblId>();
    for (let n: NetBufferList | null = nbl; n !== null; n = n.next) {
      const id = this.#mirrorOf.get(n.id);
      // (by id, then the object: an NBL of another ledger may carry a mirror's number)
      if (id === undefined || this.#mirrors.get(id) !== n || seen.has(id)) {
        throw new OwnershipError(
          id !== undefined && seen.has(id) ? "cycle" : "double-return",
          n.id,
          `MiniportTcpOffloadReceiveReturn: NBL #${n.id} is not an indicated NBL the host holds (never indicated, or returned already)`,
        );
      }
      ids.push(id);
      seen.add(id);
    }
    for (const id of ids) {
      const m = this.#mirrors.get(id) as NetBufferList; // every id was found above
      this.#mirrors.delete(id);
      this.#mirrorOf.delete(m.id);
      m.next = null;
      this.#ledger.free(m, "target", "MiniportTcpOffloadReceiveReturn"); // the host returned it
    }
    this.#post({ k: "ret", ids });
    return "NDIS_STATUS_SUCCESS";
  }

  connectionOffloadCapabilities(): TcpConnectionOffloadCapabilities {
    if (this.#caps === undefined) throw new InvariantViolation("the worker target reported no capabilities");
    return this.#caps;
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle and diagnostics

  /** Resolves after one empty round trip to the worker and back (its cost, for the bench). */
  ping(): Promise<void> {
    const id = this.#nextPing++;
    return new Promise((resolve) => {
      this.#pings.set(id, () => {
        this.#pings.delete(id);
        resolve();
      });
      this.#post({ k: "ping", id });
      this.#flush();
    });
  }

  /** What the worker's side holds, after everything posted before it was applied there. */
  audit(): Promise<WorkerAudit> {
    const id = this.#nextPing++;
    return new Promise((resolve) => {
      this.#audits.set(id, (a) => {
        this.#audits.delete(id);
        resolve(a);
      });
      this.#post({ k: "audit", id });
      this.#flush();
    });
  }

  /** Host NBLs at the target and worker NBLs the host holds (both 0 when quiescent). */
  get outstanding(): { readonly atTarget: number; readonly heldFromTarget: number } {
    return { atTarget: this.#atTarget.size, heldFromTarget: this.#mirrors.size };
  }

  /** True when the worker owns the wire (the TAP device). */
  get ownsWire(): boolean {
    return this.#ownsWire;
  }

  /**
   * Makes the worker let go of the wire before its device is closed: asks it to stop (also when
   * it is waiting for an answer) and waits, at most `timeoutMs`, until it has. True if it did.
   */
  stopWire(timeoutMs = 2000): boolean {
    if (!this.#ownsWire) return true;
    const c = this.#cell;
    Atomics.store(c, CELL_STOP, 1);
    Atomics.notify(c, 0);
    if (!this.#closed) this.#worker.postMessage({ records: [{ k: "stop" }] } satisfies Batch<DownRecord>);
    return Atomics.wait(c, CELL_STOPPED, 0, timeoutMs) !== "timed-out";
  }

  /** Stops the worker (after it let go of the wire). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.stopWire();
    this.#closed = true;
    this.#up.close();
    await this.#worker.terminate();
  }

  // -------------------------------------------------------------------------------------------

  #throwIfFailed(): void {
    if (this.#failed) throw this.#failure;
  }

  /** The first error of the chimney, if it has failed. */
  get failure(): unknown {
    return this.#failure;
  }

  #fail(e: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#failure = e;
    this.onError(e);
  }

  /** Runs the driver for the upcalls that arrived; an error there fails the chimney. */
  #wake(): void {
    try {
      this.onWake();
    } catch (e) {
      this.#fail(e);
    }
  }

  /** The bytes of an MDL chain, copied once into one window of shared memory. */
  #sharedCopyOf(chain: Mdl | null): Uint8Array {
    const out = this.#slab.alloc(mdlChainLength(chain));
    let at = 0;
    for (let m = chain; m !== null; m = m.next) {
      out.set(m.view, at);
      at += m.length;
    }
    return out;
  }

  /** A frame in shared memory (one copy when it is not there yet). */
  #shared(frame: Uint8Array): Uint8Array {
    return frame.buffer instanceof SharedArrayBuffer ? frame : this.#slab.copy(frame);
  }

  #post(r: DownRecord): void {
    if (this.#closed) throw new UsageError("the worker target is closed");
    this.#out.push(r);
    // A long run of calls (a terminate storm) goes in slices, so the worker starts on the first
    // while the host is still making the rest.
    if (this.#out.length >= PIPELINE_RECORDS) {
      this.#flush();
      return;
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flush();
      });
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#out.length === 0 || this.#closed) return;
    const records = this.#out;
    this.#out = [];
    for (const r of records) if (r.k === "op") this.#opPosted = true;
    this.stats.batchesOut++;
    this.stats.recordsOut += records.length;
    this.#worker.postMessage({ records } satisfies Batch<DownRecord>);
    this.#bellDown.ring();
  }

  #data(call: DataCall, ctx: MiniportOffloadContext, nbl: NetBufferList): void {
    this.#post({ k: "data", call, ctx, chain: this.#lendDown(nbl, DATA_CALL_OP[call]) });
  }

  /** Describes a chain the host transferred to the target and keeps its NBLs until they return. */
  #lendDown(head: NetBufferList, op: string): NblDesc[] {
    // A loop, not mapNbls: a closure over `op` per data call would sit on the send path.
    const out = new Array<NblDesc>(nblCount(head));
    let i = 0;
    for (let n: NetBufferList | null = head; n !== null; n = n.next) {
      const before = this.#enc.copied;
      out[i++] = this.#describe(n, "h", op);
      this.#atTarget.set(n.id, { nbl: n, copied: this.#enc.copied > before });
    }
    this.stats.bytesCopied = this.#enc.copied;
    return out;
  }

  /** An NBL the target owns on the host's ledger, described (its bytes by reference). */
  #describe(n: NetBufferList, home: "h" | "w", op: string): NblDesc {
    const nbs = this.#ledger.viewOne(n, "target", op).map((nb) => this.#enc.nb(nb));
    return nblDesc(n, home, n.id, false, nbs);
  }

  #op(op: StateOp, root: OffloadBlockList): void {
    const id = this.#nextOp++;
    this.#ops.set(id, { root, at: performance.now() });
    // BufferedData at initiate is lent for the duration of the call only (IO-19): it crosses
    // as a copy, made now.
    this.#post({ k: "op", op, id, tree: packBlocks(root, this.#treeEncoder(op)) });
  }

  /** The host's side of a tree going down: its chains lent, BufferedData copied (IO-19). */
  #treeEncoder(op: StateOp): TreeEncoder {
    const opName = STATE_OP[op];
    // Lent for the call only: the target copies it during the call, so it crosses as a copy.
    const copied = (n: NetBufferList): NblDesc => {
      const nbs = this.#ledger
        .viewOne(n, "target", opName)
        .map((nb) => this.#enc.one(this.#sharedCopyOf(nb.mdlChain), nb.dataOffset, nb.dataLength));
      return nblDesc(n, "h", n.id, false, nbs);
    };
    return {
      chain: (head) => this.#lendDown(head, opName),
      buffered: (head) => mapNbls(head, copied),
      ref: (n) => ({ home: "h", id: n.id }),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Upcalls

  #dispatch(r: UpRecord): void {
    const host = this.#host;
    switch (r.k) {
      case "tx":
        this.#tx.push(r.frame);
        return;
      case "up":
        host.indicateReceive(r.frame);
        return;
      case "opDone":
        this.#opDone(r.op, r.id, unpackTree(r.tree));
        return;
      case "dataDone": {
        const op = DATA_COMPLETE_OP[r.call];
        const head = this.#takeBack(r.chain, op);
        if (head === null) return;
        if (r.call === "send") host.tcpOffloadSendComplete(head);
        else if (r.call === "recv") host.tcpOffloadReceiveComplete(head);
        else if (r.call === "fwd") host.tcpOffloadForwardComplete(head);
        else host.tcpOffloadDisconnectComplete(head);
        return;
      }
      case "indicate": {
        this.stats.indications++;
        const nbl = this.#mirror(r.nbl, "NdisTcpOffloadReceiveHandler");
        const res = host.tcpOffloadReceiveIndicate(r.handle, nbl, "NDIS_STATUS_SUCCESS");
        if (res.status === "NDIS_STATUS_PENDING")
          throw new InvariantViolation("the host answered an indication with NDIS_STATUS_PENDING");
        if (res.status !== "NDIS_STATUS_SUCCESS") {
          // Refused (all or a suffix): the NBL is the target's again at once (spec 14.4).
          this.#dropMirror(nbl, "NdisTcpOffloadReceiveHandler");
        }
        // The answer goes back as a record: the worker never waits for it.
        this.#post({ k: "answer", id: r.nbl.id, status: res.status, bytesConsumed: res.bytesConsumed });
        return;
      }
      case "event":
        host.tcpOffloadEvent(r.handle, r.event);
        return;
      case "reach": {
        const tree = decodeTree(unpackTree(r.tree), NO_NBLS); // a neighbor block: no NBLs
        let hrd = 0;
        try {
          hrd = host.neighborReachabilityQuery(tree);
        } finally {
          this.#answer(r.seq, 0, hrd);
        }
        return;
      }
      case "status":
        if (r.caps !== undefined) this.#caps = r.caps;
        host.indicateStatus(r.status);
        return;
      case "pong":
      case "audited":
        return;
      case "error":
        // An ownership violation the target's side caught is raised as one here too.
        this.#fail(
          r.reason !== undefined
            ? new OwnershipError(r.reason, r.nblId, `in the target's worker: ${r.message}`)
            : new WorkerTargetError(`the target's worker failed: ${r.message}`, r.code),
        );
        this.#throwIfFailed();
        return;
    }
  }

  #answer(seq: number, status: number, value: number): void {
    const c = this.#cell;
    Atomics.store(c, 1, status);
    Atomics.store(c, 2, value);
    Atomics.store(c, 0, seq);
    Atomics.notify(c, 0);
  }

  /** The host's NBLs a completion hands back: updated from the target's view, on the host again. */
  #takeBack(chain: readonly NblDesc[], op: string): NetBufferList | null {
    let head: NetBufferList | null = null;
    let prev: NetBufferList | null = null;
    for (const d of chain) {
      const n = this.#returned(d, op);
      if (prev === null) head = n;
      else prev.next = n;
      prev = n;
    }
    if (prev !== null) prev.next = null;
    if (head !== null) this.#ledger.transfer(head, "target", "host", op);
    return head;
  }

  /** One of the host's NBLs back from the target: header and NB windows as the target left them. */
  #returned(d: NblDesc, op: string): NetBufferList {
    const lent = this.#atTarget.get(d.id);
    if (d.home !== "h" || lent === undefined)
      throw new OwnershipError(
        "unknown-nbl",
        d.id,
        `${op}: the target completed NBL #${d.id}, which it does not hold`,
      );
    this.#atTarget.delete(d.id);
    const n = lent.nbl;
    const nbs = this.#ledger.viewOne(n, "target", op);
    d.nbs.forEach((nd, i) => {
      const nb = nbs[i];
      if (nb === undefined) throw new InvariantViolation(`${op}: NBL #${d.id} came back with more NBs`);
      if (lent.copied) copyBack(nd, nb);
      const delta = nd.dataOffset - nb.dataOffset;
      if (delta > 0) advanceNetBuffer(nb, delta);
      nb.dataLength = nd.dataLength;
    });
    n.status = d.status;
    n.bytesTransferred = d.bytesTransferred;
    n.receiveNoPush = d.receiveNoPush;
    n.receiveBytesTransferred = d.receiveBytesTransferred;
    return n;
  }

  /** A mirror of a worker NBL handed to the host (target -> host on the host's ledger). */
  #mirror(d: NblDesc, op: string): NetBufferList {
    if (d.home !== "w" || this.#mirrors.has(d.id))
      throw new OwnershipError("use-after-transfer", d.id, `${op}: worker NBL #${d.id} handed up twice`);
    const m = this.#ledger.allocOwn("target", d.nbs.map(decodeNb), op); // fresh NBs, none kept
    m.status = d.status;
    m.bytesTransferred = d.bytesTransferred;
    this.#ledger.transfer(m, "target", "host", op);
    this.#mirrors.set(d.id, m);
    this.#mirrorOf.set(m.id, d.id);
    return m;
  }

  /** A refused indication's mirror: the target's again, so it goes. */
  #dropMirror(m: NetBufferList, op: string): void {
    const id = this.#mirrorOf.get(m.id);
    if (id === undefined || this.#mirrors.get(id) !== m) return;
    this.#mirrorOf.delete(m.id);
    this.#mirrors.delete(id);
    this.#ledger.free(m, "target", op);
  }

  #opDone(op: StateOp, id: number, desc: TreeDesc): void {
    const pending = this.#ops.get(id);
    if (pending === undefined) throw new InvariantViolation(`completion of unknown ${op} #${id}`);
    this.#ops.delete(id);
    const root = pending.root;
    recordLatency(this.stats.opLatencyUs, (performance.now() - pending.at) * 1000);
    const opName = STATE_COMPLETE_OP[op];
    // Apply the target's writes to the host's own tree, block by block (same shape: BL-3).
    const blocks: OffloadBlockList[] = [];
    forEachInTree(root, (b) => blocks.push(b));
    const descs: BlockDesc[] = [];
    forEachDesc(desc, (d) => descs.push(d));
    if (blocks.length !== descs.length)
      throw new InvariantViolation(`${op} #${id} came back with another tree`);
    const back = new Map<NblId, NetBufferList>();
    // Host NBLs named by a block: those handed back are updated; those the target keeps stay.
    const resolve = (r: NblRef | null): NetBufferList | null => {
      if (r === null) return null;
      if (r.home === "h") {
        const n = back.get(r.id) ?? this.#atTarget.get(r.id)?.nbl;
        if (n === undefined)
          throw new OwnershipError("unknown-nbl", r.id, `${opName}: unknown host NBL #${r.id}`);
        return n;
      }
      const m = this.#mirrors.get(r.id);
      if (m === undefined)
        throw new OwnershipError("unknown-nbl", r.id, `${opName}: unknown target NBL #${r.id}`);
      return m;
    };
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i] as OffloadBlockList; // i < length
      const d = descs[i] as BlockDesc; // same length
      b.status = d.status;
      if (b.miniportOffloadContext !== null && d.slot !== null)
        b.miniportOffloadContext.context = d.slot.context;
      this.#applyChains(b, d, op, opName, back, resolve);
    }
    if (back.size > 0) {
      // The target's hand-back of the host's send NBLs, made once per chain head.
      for (const b of blocks) {
        const h = b.netBufferListChain;
        if (h !== null && back.has(h.id)) this.#ledger.transfer(h, "target", "host", opName);
      }
    }
    completeStateOp(this.#host, op, root);
    recordLatency(this.stats.opHandledUs, (performance.now() - pending.at) * 1000);
  }

  /** The NBLs and states the target wrote into one block. */
  #applyChains(
    b: OffloadBlockList,
    d: BlockDesc,
    op: StateOp,
    opName: string,
    back: Map<NblId, NetBufferList>,
    resolve: (r: NblRef | null) => NetBufferList | null,
  ): void {
    let chainHead: NetBufferList | null = null;
    if (d.chain !== null) {
      let prev: NetBufferList | null = null;
      for (const nd of d.chain) {
        let n: NetBufferList;
        if (nd.back) {
          n = this.#returned(nd, opName);
          back.set(nd.id, n);
        } else {
          const lent = this.#atTarget.get(nd.id);
          if (lent === undefined)
            throw new OwnershipError("unknown-nbl", nd.id, `${opName}: unknown host NBL #${nd.id}`);
          n = lent.nbl;
        }
        if (prev === null) chainHead = n;
        else prev.next = n;
        prev = n;
      }
      if (prev !== null) prev.next = null;
    }
    if (d.buffered !== null && op !== "initiate") {
      let prev: NetBufferList | null = null;
      for (const nd of d.buffered) {
        const m = this.#mirror(nd, opName);
        if (prev !== null) prev.next = m;
        prev = m;
      }
    }
    if (op === "terminate" || op === "query") {
      b.netBufferListChain = chainHead;
      b.constState = d.constState as never;
      b.cachedState = d.cachedState as never;
      if (b.layer === "tcp" && d.delegatedState !== undefined) {
        b.delegatedState = resolveDelegated(d.delegatedState as CrossingDelegatedState, resolve);
      } else {
        b.delegatedState = d.delegatedState as never;
      }
    }
  }
}

/** A tree without NBLs (what a reachability query carries). */
const NO_NBLS: TreeDecoder = { block: () => ({ chain: null, ref: () => null }) };

/** How `createWorkerChimney` builds the manager. */
export interface WorkerChimneyOptions {
  readonly policy?: OffloadPolicy | undefined;
  readonly knobs?: ReceiveKnobs | undefined;
  readonly ledger?: BufferLedger | undefined;
}

/** The chimney half of a node whose target runs on worker threads (one, or several by RSS). */
export interface WorkerChimney {
  readonly manager: OffloadManager;
  readonly target: OffloadWorkers;
  readonly ledger: BufferLedger;
}

/**
 * Host + manager + a target already started on its own thread (`WorkerTarget.start`): the
 * counterpart of `createChimney` (src/node). Set `target.onWake` to the driver's flush before
 * traffic flows.
 */
export function createWorkerChimney(
  stack: HostStack,
  target: OffloadWorkers,
  o: WorkerChimneyOptions = {},
): WorkerChimney {
  const ledger = o.ledger ?? new BufferLedger();
  // The worker never recycles memory it indicated: the application may keep views of it.
  const manager = new OffloadManager(stack, ledger, { zeroCopyIndications: true, ...o.policy }, o.knobs);
  target.attach(manager, ledger);
  manager.attachTarget(target);
  return { manager, target, ledger };
}

/**
 * Starts the target workers for `stack` (its MAC and TCP configuration) and builds the chimney:
 * one `WorkerTarget`, or with `workers` > 1 that many behind an RSS dispatcher (rss-targets.ts).
 */
export async function startWorkerChimney(
  stack: HostStack,
  o: WorkerChimneyOptions & {
    readonly mac: MacAddr;
    readonly target?: WorkerSoftwareTargetOptions | undefined;
    readonly ringFrames?: number | undefined;
    /** Target workers (default 1). */
    readonly workers?: number | undefined;
  },
): Promise<WorkerChimney> {
  const target = await startOffloadWorkers({
    mac: o.mac,
    tcpConfig: stack.tcpConfig,
    target: o.target,
    ringFrames: o.ringFrames,
    workers: o.workers ?? 1,
  });
  return createWorkerChimney(stack, target, o);
}
