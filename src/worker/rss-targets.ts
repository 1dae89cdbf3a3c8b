/**
 * Several offload targets, each on its own worker thread, behind one target contract: the
 * host's offload manager sees one NIC with N receive queues (spec 15.4), and connections are
 * spread across the workers by the RSS hash of their 4-tuple.
 *
 * Theory of operation
 * - Steering. A TCP connection lives on one worker: the one the indirection table gives for the
 *   connection's HashValue (TCP_OFFLOAD_STATE_CONST, supplied by the host, RS-1). Every frame is
 *   hashed the same way (`frameRssHash`: received frames by their 4-tuple, frames the host sends
 *   by the reversed one), so a connection's frames, its state and its NBLs meet on one worker,
 *   in order. Frames that do not hash (ARP, ICMP, fragments) go to worker 0, which hands them up.
 * - Neighbor and path objects are shared by connections on different workers: each worker that
 *   needs one holds a *copy*, made the first time a connection on it depends on the object
 *   (from the state the host gave at its initiate, as updated since). The host sees one object
 *   with one context; an update, invalidate, query or terminate of it goes to every copy, and
 *   completes once all have (statuses: the first failure; delegated state: the freshest
 *   reachability).
 * - State operations are split per worker: each worker gets the projection of the host's tree
 *   onto the blocks it holds (placeholders keep the shape), and the host's tree completes when
 *   the last part has, with contexts of the dispatcher's own.
 * - NBLs keep their owners: the host's chains go to the worker of their connection; an NBL a
 *   worker indicates or hands back as BufferedData is remembered with its worker until the host
 *   returns it (a returned chain is split by worker, checked whole first).
 */
import { availableParallelism } from "node:os";
import {
  forEachInTree,
  type MiniportOffloadContext,
  type NdisOffloadHandle,
  type OffloadBlockList,
  type OffloadContextSlot,
  roleOf,
} from "../chimney/block-list.js";
import type { TcpConnectionOffloadCapabilities } from "../chimney/capabilities.js";
import type {
  DisconnectFlags,
  OffloadHost,
  ReceiveIndicateResult,
  TcpOffloadEvent,
} from "../chimney/contract.js";
import type { NdisStatus, OffloadStatusIndication } from "../chimney/status.js";
import type { BufferLedger } from "../nbl/ledger.js";
import type { NetBufferList } from "../nbl/nbl.js";
import type { NicTarget } from "../node/chimney-node.js";
import type { Instant } from "../time/instant.js";
import { InvariantViolation, OwnershipError, UsageError } from "../util/errors.js";
import { frameRssHash } from "../wire/rss-hash.js";
import { callStateOp, completeStateOp, type StateOp, type WorkerAudit } from "./protocol.js";
import {
  recordLatency,
  type WorkerTargetOptions,
  WorkerTarget,
  type WorkerTargetStats,
} from "./target-proxy.js";
import type { TapHandle } from "../device/tap.js";

/** What the chimney and its driver use of a target on worker threads (one worker or several). */
export interface OffloadWorkers extends NicTarget {
  /** Called when upcalls are waiting: the driver should run `process`. */
  onWake: () => void;
  /** Called once with the chimney's first error. */
  onError: (e: unknown) => void;
  readonly stats: WorkerTargetStats;
  readonly failure: unknown;
  /** Host NBLs at the targets and target NBLs the host holds (both 0 when quiescent). */
  readonly outstanding: { readonly atTarget: number; readonly heldFromTarget: number };
  /** True when the workers own the wire (the TAP device). */
  readonly ownsWire: boolean;
  attach(host: OffloadHost, ledger: BufferLedger): void;
  /** What the workers' side holds, after everything posted before it was applied there. */
  audit(): Promise<WorkerAudit>;
  /** Resolves after an empty round trip to every worker. */
  ping(): Promise<void>;
  stopWire(timeoutMs?: number): boolean;
  close(): Promise<void>;
}

/** The default number of target workers: the cores but one (the host's), at least 1. */
export function defaultWorkerCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** The status of the blocks of an operation on objects no worker holds. */
const NO_WORKER_STATUS: NdisStatus = "NDIS_STATUS_FAILURE";

/**
 * Starts the target workers: one `WorkerTarget` (which may own the wire), or `workers` of them
 * behind the RSS dispatcher.
 */
export async function startOffloadWorkers(o: OffloadWorkersOptions): Promise<OffloadWorkers> {
  if (o.workers === 1 && o.wires === undefined) return WorkerTarget.start(o);
  return RssWorkerTargets.start(o);
}

/** Options of `startOffloadWorkers`. */
export type OffloadWorkersOptions = WorkerTargetOptions & {
  readonly workers: number;
  /**
   * A queue of a multi-queue TAP device per worker (`OpenTapOptions.queues`): each worker reads
   * and writes its own, and the host stack's frames leave through the queue of their
   * connection's worker, so the kernel sends the connection's frames back there. Frames that
   * reach another worker go up the non-offload path (the host forwards those of offloaded
   * connections, spec 13.7).
   */
  readonly wires?: readonly TapHandle[] | undefined;
};

/** Entries of the indirection table (a power of two: hash bits select the entry). */
export const RSS_TABLE_ENTRIES = 128;

/** A neighbor or path object as the host sees it, and its copy on each worker. */
interface SharedObject {
  readonly layer: "neighbor" | "path";
  readonly ctx: MiniportOffloadContext;
  /** The block the host offloaded it with (states as updated since): the source of new copies. */
  model: OffloadBlockList;
  /** The worker's context of its copy, by worker. */
  readonly copies: Map<number, MiniportOffloadContext>;
  /** A path's neighbor (a new copy of the path needs one of the neighbor on the same worker). */
  readonly parent: SharedObject | undefined;
}

/** An offloaded connection: its worker, its context there, and its indirection-table entry. */
interface TcpPlace {
  readonly worker: number;
  readonly inner: MiniportOffloadContext;
  readonly entry: number;
}

/** One block of a part sent to a worker, and what it stands for. */
interface Projected {
  readonly clone: OffloadBlockList;
  /** The host's block; null for a neighbor block the dispatcher added above a path's new copy. */
  readonly host: OffloadBlockList | null;
  /** The host's block above `host` in its tree (null at the root). */
  readonly parent: OffloadBlockList | null;
  /** For an added neighbor block: its object. */
  readonly object?: SharedObject | undefined;
  readonly worker: number;
}

/** A state operation split across workers, until its last part completes. */
interface SplitOp {
  readonly op: StateOp;
  readonly root: OffloadBlockList;
  readonly at: number;
  readonly blocks: Projected[];
  parts: number;
  /** First copies of shared objects this initiate makes: (object, worker). */
  readonly creates: [SharedObject, number][];
}

/** The offload target as N workers spread by RSS (see the file comment). */
export class RssWorkerTargets implements OffloadWorkers {
  readonly #parts: readonly WorkerTarget[];
  readonly #table: Uint8Array;
  /** Connections offloaded (or being offloaded) through each table entry, and on each worker. */
  readonly #entryUse = new Uint32Array(RSS_TABLE_ENTRIES);
  readonly #load: number[];
  /** Connections an initiate being split places: counted only once it goes (it may wait). */
  readonly #placing: [number, number][] = [];
  #host: OffloadHost | undefined;
  #nextCtx = 1;
  readonly #objects = new Map<MiniportOffloadContext, SharedObject>();
  readonly #tcps = new Map<MiniportOffloadContext, TcpPlace>();
  /** Part roots in flight -> their split operation. */
  readonly #split = new Map<OffloadBlockList, SplitOp>();
  /** NBLs a worker handed to the host (indications, BufferedData) -> that worker. */
  readonly #origin = new Map<NetBufferList, number>();
  /** Workers on which a first copy of an object is being made, by object. */
  readonly #creating = new Map<SharedObject, Set<number>>();
  /** Initiates waiting for such a copy, in the order the host called them. */
  #deferred: { readonly op: StateOp; readonly root: OffloadBlockList; readonly at: number }[] = [];
  #rr = 0;
  #failed = false;
  #failure: unknown;
  readonly #latency: number[] = [];
  readonly #handled: number[] = [];
  onWake: () => void = () => undefined;
  onError: (e: unknown) => void = (e) => {
    throw e;
  };

  constructor(parts: readonly WorkerTarget[], ownsWire = false) {
    if (parts.length < 1 || parts.length > 255)
      throw new UsageError(`${parts.length} workers: must be 1..255`);
    this.#parts = parts;
    this.ownsWire = ownsWire;
    this.#table = Uint8Array.from({ length: RSS_TABLE_ENTRIES }, (_, i) => i % parts.length);
    this.#load = parts.map(() => 0);
    parts.forEach((p) => {
      p.onWake = () => this.onWake();
      p.onError = (e) => this.#fail(e);
    });
  }

  /**
   * Starts `workers` targets: each on a queue of its own of the TAP device (`wires`), or with no
   * wire (the host's driver relays frames to them).
   */
  static async start(o: OffloadWorkersOptions): Promise<RssWorkerTargets> {
    if (!Number.isSafeInteger(o.workers) || o.workers < 1)
      throw new UsageError(`workers ${String(o.workers)}: must be a positive integer`);
    if (o.wire !== undefined)
      throw new UsageError("several target workers do not share one wire: give each a queue (wires)");
    const wires = o.wires;
    if (wires !== undefined && wires.length !== o.workers)
      throw new UsageError(`${wires.length} TAP queues for ${o.workers} workers: one each`);
    const parts = await Promise.all(
      Array.from({ length: o.workers }, (_, k) => WorkerTarget.start({ ...o, wire: wires?.[k] })),
    );
    return new RssWorkerTargets(parts, wires !== undefined);
  }

  /** The worker of an RSS hash. */
  workerOf(hash: number): number {
    return this.#table[hash & (RSS_TABLE_ENTRIES - 1)] ?? 0;
  }

  /**
   * The worker of a connection being offloaded with RSS hash `hash`. An indirection-table entry
   * no offloaded connection uses is first pointed at the worker with the fewest connections (as
   * a host rebalances its table, OID_GEN_RECEIVE_SCALE_PARAMETERS); an entry in use never moves,
   * so a connection's data never changes queue mid-stream (RS-2). With few connections (4
   * downloads, 2 workers) a fixed table would put them all on one worker as often as not.
   */
  #choose(hash: number): number {
    const e = hash & (RSS_TABLE_ENTRIES - 1);
    if ((this.#entryUse[e] ?? 0) === 0) {
      let best = 0;
      for (let k = 1; k < this.#load.length; k++)
        if ((this.#load[k] ?? 0) < (this.#load[best] ?? 0)) best = k;
      this.#table[e] = best;
    }
    return this.#table[e] ?? 0;
  }

  /** The connections `#choose` placed are on their way to their workers: counted. */
  #commitPlacing(): void {
    for (const [hash, k] of this.#placing) {
      const e = hash & (RSS_TABLE_ENTRIES - 1);
      this.#entryUse[e] = (this.#entryUse[e] ?? 0) + 1;
      this.#load[k] = (this.#load[k] ?? 0) + 1;
    }
    this.#placing.length = 0;
  }

  /** A connection placed by `#choose` left its worker (terminated, or its initiate failed). */
  #unplace(worker: number, hash: number): void {
    const e = hash & (RSS_TABLE_ENTRIES - 1);
    this.#entryUse[e] = Math.max(0, (this.#entryUse[e] ?? 0) - 1);
    this.#load[worker] = Math.max(0, (this.#load[worker] ?? 0) - 1);
  }

  /** Offloaded connections on each worker. */
  get connectionsPerWorker(): number[] {
    return this.#parts.map((p) => p.connectionCount);
  }

  /** Shared neighbor and path objects, and their copies on the workers (diagnostics). */
  get sharedObjects(): { readonly objects: number; readonly copies: number } {
    let copies = 0;
    for (const o of this.#objects.values()) copies += o.copies.size;
    return { objects: this.#objects.size, copies };
  }

  /** The workers' targets (diagnostics). */
  get parts(): readonly WorkerTarget[] {
    return this.#parts;
  }

  attach(host: OffloadHost, ledger: BufferLedger): void {
    if (this.#host !== undefined) throw new UsageError("the worker targets are attached to a host already");
    this.#host = host;
    this.#parts.forEach((p, k) => p.attach(new PartHost(this, k, host), ledger));
  }

  // -------------------------------------------------------------------------------------------
  // The driver's side

  handleFrame(now: Instant, frame: Uint8Array): void {
    const h = frameRssHash(frame);
    (this.#parts[h < 0 ? 0 : this.workerOf(h)] as WorkerTarget).handleFrame(now, frame);
  }

  sendFrame(frame: Uint8Array): void {
    // By the reversed 4-tuple: the connection's worker, so its frames leave in order.
    const h = frameRssHash(frame, undefined, true);
    (this.#parts[h < 0 ? 0 : this.workerOf(h)] as WorkerTarget).sendFrame(frame);
  }

  process(): void {
    if (this.#failed) throw this.#failure;
    for (const p of this.#parts) p.process();
  }

  pollTransmit(): Uint8Array | undefined {
    const n = this.#parts.length;
    for (let i = 0; i < n; i++) {
      const k = (this.#rr + i) % n;
      const f = (this.#parts[k] as WorkerTarget).pollTransmit();
      if (f !== undefined) {
        this.#rr = (k + 1) % n;
        return f;
      }
    }
    return undefined;
  }

  pollTimeout(): Instant | undefined {
    return undefined; // the workers run their own timers
  }

  handleTimeout(): void {
    // the workers run their own timers
  }

  get connectionCount(): number {
    let n = 0;
    for (const p of this.#parts) n += p.connectionCount;
    return n;
  }

  pollAt(now: Instant): Instant | undefined {
    return this.hasWork() ? now : undefined;
  }

  hasWork(): boolean {
    return this.#parts.some((p) => p.hasWork());
  }

  // -------------------------------------------------------------------------------------------
  // State operations

  initiateOffload(blockList: OffloadBlockList): void {
    this.#splitOp("initiate", blockList);
  }

  terminateOffload(blockList: OffloadBlockList): void {
    this.#splitOp("terminate", blockList);
  }

  updateOffload(blockList: OffloadBlockList): void {
    this.#splitOp("update", blockList);
  }

  invalidateOffload(blockList: OffloadBlockList): void {
    this.#splitOp("invalidate", blockList);
  }

  queryOffload(blockList: OffloadBlockList): void {
    this.#splitOp("query", blockList);
  }

  /** Projects the host's tree onto each worker that holds part of it, and calls those workers. */
  #splitOp(op: StateOp, root: OffloadBlockList, at = performance.now()): void {
    if (this.#failed) throw this.#failure;
    const sets = new Map<OffloadBlockList, Set<number>>();
    this.#placing.length = 0;
    this.#workersOfChain(op, root, sets);
    const split: SplitOp = { op, root, at, blocks: [], parts: 0, creates: [] };
    const calls: [WorkerTarget, OffloadBlockList][] = [];
    for (let k = 0; k < this.#parts.length; k++) {
      let part = this.#project(op, root, k, sets, split.blocks, null);
      if (part === null) continue;
      if (op === "initiate" && part.layer === "path") part = this.#underNeighbors(part, k, split.blocks);
      split.parts++;
      calls.push([this.#parts[k] as WorkerTarget, part]);
    }
    if (op === "initiate") {
      // A worker's first copy of a shared object is made by one initiate at a time: another
      // that needs the same copy waits for it, then links to it (else the worker would hold two).
      for (const p of split.blocks) {
        const o = p.object ?? this.#objectOf(p.host);
        if (o === undefined || p.clone.miniportOffloadContext?.context !== null) continue;
        if (this.#creating.get(o)?.has(p.worker)) {
          this.#deferred.push({ op, root, at });
          return;
        }
        split.creates.push([o, p.worker]);
      }
      for (const [o, k] of split.creates) {
        const c = this.#creating.get(o);
        if (c === undefined) this.#creating.set(o, new Set([k]));
        else c.add(k);
      }
    }
    this.#commitPlacing();
    for (const [, part] of calls) this.#split.set(part, split);
    if (calls.length === 0) {
      // Nothing any worker holds (an operation on objects already gone): complete here, each block failed.
      forEachInTree(root, (b) => {
        b.status = NO_WORKER_STATUS;
      });
      queueMicrotask(() => this.#complete(split));
      return;
    }
    for (const [p, part] of calls) callStateOp(p, op, part);
  }

  /** The shared object a host's neighbor or path block names (undefined: new, or not one). */
  #objectOf(b: OffloadBlockList | null): SharedObject | undefined {
    const ctx = b === null || b.layer === "tcp" ? null : (b.miniportOffloadContext?.context ?? null);
    return ctx === null ? undefined : this.#objects.get(ctx);
  }

  /** The workers each block of a chain (and its dependents) goes to, into `sets`. */
  #workersOfChain(
    op: StateOp,
    first: OffloadBlockList,
    sets: Map<OffloadBlockList, Set<number>>,
  ): Set<number> {
    const all = new Set<number>();
    for (let b: OffloadBlockList | null = first; b !== null; b = b.nextBlock) {
      const s = new Set<number>();
      if (b.dependentBlockList !== null)
        for (const k of this.#workersOfChain(op, b.dependentBlockList, sets)) s.add(k);
      const ctx = b.miniportOffloadContext?.context ?? null;
      if (b.layer === "tcp") {
        if (ctx !== null) {
          const t = this.#tcps.get(ctx);
          if (t !== undefined) s.add(t.worker);
        } else if (b.miniportOffloadContext !== null) {
          const hash = b.constState?.hashValue ?? 0;
          const k = this.#choose(hash);
          this.#placing.push([hash, k]);
          s.add(k);
        }
      } else if (ctx !== null && op !== "initiate") {
        // Every copy of a shared object takes part in its own update, invalidate, query, terminate.
        const o = this.#objects.get(ctx);
        if (o !== undefined) for (const k of o.copies.keys()) s.add(k);
      } else if (ctx === null && roleOf(b) === "new-offload" && s.size === 0) {
        s.add(0); // a neighbor or path offloaded with no connection: worker 0 holds it
      }
      sets.set(b, s);
      for (const k of s) all.add(k);
    }
    return all;
  }

  /** The part of the chain from `first` that worker `k` holds (null: none), recorded in `out`. */
  #project(
    op: StateOp,
    first: OffloadBlockList,
    k: number,
    sets: Map<OffloadBlockList, Set<number>>,
    out: Projected[],
    parent: OffloadBlockList | null,
  ): OffloadBlockList | null {
    let head: OffloadBlockList | null = null;
    let prev: OffloadBlockList | null = null;
    for (let b: OffloadBlockList | null = first; b !== null; b = b.nextBlock) {
      if (!sets.get(b)?.has(k)) continue;
      const clone = this.#clone(op, b, k);
      out.push({ clone, host: b, parent, worker: k });
      clone.dependentBlockList =
        b.dependentBlockList === null ? null : this.#project(op, b.dependentBlockList, k, sets, out, b);
      if (prev === null) head = clone;
      else prev.nextBlock = clone;
      prev = clone;
    }
    return head;
  }

  /**
   * An initiate part whose root is a chain of paths (the host's tree starts at a path linker: its
   * neighbor is offloaded): each path goes under a block of its neighbor, a linker to the
   * worker's copy or, where the worker has none yet, a new copy (a new path needs its neighbor).
   */
  #underNeighbors(first: OffloadBlockList, k: number, out: Projected[]): OffloadBlockList {
    const groups = new Map<SharedObject, OffloadBlockList[]>();
    for (let b: OffloadBlockList | null = first; b !== null; b = b.nextBlock) {
      const host = out.find((p) => p.clone === b)?.host ?? null;
      const ctx = host?.miniportOffloadContext?.context ?? null;
      const n = ctx === null ? undefined : this.#objects.get(ctx)?.parent;
      if (n === undefined) return first; // not a path the dispatcher knows: the worker judges it
      const g = groups.get(n);
      if (g === undefined) groups.set(n, [b]);
      else g.push(b);
    }
    let head: OffloadBlockList | null = null;
    let prev: OffloadBlockList | null = null;
    for (const [n, paths] of groups) {
      paths.forEach((b, i) => {
        b.nextBlock = paths[i + 1] ?? null;
      });
      const copy = n.copies.get(k);
      const nb = {
        ...n.model,
        miniportOffloadContext: { context: copy ?? null },
        nextBlock: null,
        dependentBlockList: paths[0] ?? null,
        netBufferListChain: null,
        status: undefined,
      } as OffloadBlockList;
      out.push({ clone: nb, host: null, parent: null, object: n, worker: k });
      if (prev === null) head = nb;
      else prev.nextBlock = nb;
      prev = nb;
    }
    return head ?? first;
  }

  /** Worker `k`'s block for the host's block `b`. */
  #clone(op: StateOp, b: OffloadBlockList, k: number): OffloadBlockList {
    const slot = b.miniportOffloadContext;
    let mine: OffloadContextSlot | null = null;
    let model: OffloadBlockList = b;
    if (slot !== null) {
      if (slot.context === null) {
        mine = { context: null };
      } else if (b.layer === "tcp") {
        mine = { context: this.#tcps.get(slot.context)?.inner ?? slot.context };
      } else {
        const o = this.#objects.get(slot.context);
        const copy = o?.copies.get(k);
        if (copy !== undefined) mine = { context: copy };
        else if (o !== undefined && op === "initiate") {
          // A linker to an object this worker has no copy of yet: the copy is offloaded now.
          mine = { context: null };
          model = o.model;
        } else mine = { context: slot.context };
      }
    }
    return {
      ...b,
      constState: model.constState,
      cachedState: model.cachedState,
      delegatedState: model.delegatedState,
      stateType: model.stateType,
      miniportOffloadContext: mine,
      nextBlock: null,
      dependentBlockList: null,
      status: undefined,
    } as OffloadBlockList;
  }

  /** A worker completed its part of a state operation. */
  partDone(k: number, op: StateOp, part: OffloadBlockList): void {
    const split = this.#split.get(part);
    if (split === undefined || split.op !== op)
      throw new InvariantViolation(`worker ${k} completed a ${op} the dispatcher never sent`);
    this.#split.delete(part);
    split.parts--;
    if (split.parts === 0) this.#complete(split);
  }

  /** The host's tree, once every part completed: statuses, contexts and states merged into it. */
  #complete(split: SplitOp): void {
    const byHost = new Map<OffloadBlockList, Projected[]>();
    for (const p of split.blocks) {
      if (p.host === null) {
        // A neighbor block the dispatcher added: a new copy of the neighbor, when it succeeded.
        const inner = p.clone.miniportOffloadContext?.context ?? null;
        if (p.clone.status === "NDIS_STATUS_SUCCESS" && inner !== null) p.object?.copies.set(p.worker, inner);
        continue;
      }
      const arr = byHost.get(p.host);
      if (arr === undefined) byHost.set(p.host, [p]);
      else arr.push(p);
    }
    for (const [host, parts] of byHost) this.#merge(split.op, host, parts);
    recordLatency(this.#latency, (performance.now() - split.at) * 1000);
    if (split.creates.length > 0) {
      for (const [o, k] of split.creates) {
        const c = this.#creating.get(o);
        c?.delete(k);
        if (c?.size === 0) this.#creating.delete(o);
      }
      // The copies exist now (or failed): the initiates that waited for them go, in order.
      const waiting = this.#deferred;
      this.#deferred = [];
      for (const d of waiting) this.#splitOp(d.op, d.root, d.at);
    }
    completeStateOp(this.#requireHost(), split.op, split.root);
    recordLatency(this.#handled, (performance.now() - split.at) * 1000);
  }

  /** One host block from its workers' copies. */
  #merge(op: StateOp, host: OffloadBlockList, parts: readonly Projected[]): void {
    const ok = parts.filter((p) => p.clone.status === "NDIS_STATUS_SUCCESS");
    const failed = parts.find((p) => p.clone.status !== "NDIS_STATUS_SUCCESS");
    const ctx = host.miniportOffloadContext?.context ?? null;
    if (host.layer === "tcp") {
      const p = parts[0] as Projected; // a connection lives on one worker
      const c = p.clone;
      host.status = c.status;
      if (op === "initiate") {
        const inner = c.miniportOffloadContext?.context ?? null;
        const hash = host.constState?.hashValue ?? 0;
        if (c.status === "NDIS_STATUS_SUCCESS" && inner !== null && host.miniportOffloadContext !== null) {
          const mine = this.#newCtx();
          this.#tcps.set(mine, { worker: p.worker, inner, entry: hash });
          host.miniportOffloadContext.context = mine;
        } else {
          this.#unplace(p.worker, hash);
        }
        return;
      }
      if (op === "terminate" || op === "query") {
        host.constState = c.constState as never;
        host.cachedState = c.cachedState as never;
        host.delegatedState = c.delegatedState as never;
        host.netBufferListChain = c.netBufferListChain;
        const buffered = c.layer === "tcp" ? (c.delegatedState?.bufferedData ?? null) : null;
        for (let n = buffered; n !== null; n = n.next) this.#origin.set(n, p.worker);
      }
      if (op === "terminate" && ctx !== null) {
        const t = this.#tcps.get(ctx);
        if (t !== undefined) this.#unplace(t.worker, t.entry);
        this.#tcps.delete(ctx);
      }
      return;
    }
    // A neighbor or path (or a placeholder): every copy took part. At initiate the object is
    // offloaded while one copy is; a copy that failed fails its worker's connections (their own
    // status says so), and a linker's object stays offloaded on the workers that hold it.
    host.status =
      failed === undefined || (op === "initiate" && (ok.length > 0 || roleOf(host) === "linker"))
        ? "NDIS_STATUS_SUCCESS"
        : failed.clone.status;
    if (roleOf(host) === "placeholder") return;
    if (op === "initiate") {
      let o = ctx === null ? undefined : this.#objects.get(ctx);
      for (const p of ok) {
        const inner = p.clone.miniportOffloadContext?.context ?? null;
        if (inner === null || (o !== undefined && o.copies.has(p.worker))) continue;
        if (o === undefined) {
          const pctx = parts[0]?.parent?.miniportOffloadContext?.context ?? null;
          const parent = host.layer === "path" && pctx !== null ? this.#objects.get(pctx) : undefined;
          o = { layer: host.layer, ctx: this.#newCtx(), model: host, copies: new Map(), parent };
          this.#objects.set(o.ctx, o);
          if (host.miniportOffloadContext !== null) host.miniportOffloadContext.context = o.ctx;
        }
        o.copies.set(p.worker, inner);
      }
      return;
    }
    const first = (ok[0] ?? parts[0]) as Projected;
    if (op === "update" && ctx !== null) {
      const o = this.#objects.get(ctx);
      if (o !== undefined) o.model = { ...o.model, cachedState: host.cachedState } as OffloadBlockList;
    }
    if (op === "terminate" || op === "query") {
      host.constState = first.clone.constState as never;
      host.cachedState = first.clone.cachedState as never;
      host.delegatedState = freshest(parts.map((p) => p.clone)) as never;
    }
    if (op === "terminate" && ctx !== null) this.#objects.delete(ctx);
  }

  #newCtx(): MiniportOffloadContext {
    return this.#nextCtx++ as MiniportOffloadContext;
  }

  #requireHost(): OffloadHost {
    if (this.#host === undefined) throw new UsageError("the worker targets are not attached to a host");
    return this.#host;
  }

  // -------------------------------------------------------------------------------------------
  // Data calls

  #place(ctx: MiniportOffloadContext, op: string): TcpPlace {
    const t = this.#tcps.get(ctx);
    if (t === undefined) throw new UsageError(`${op}: no offloaded connection with context ${ctx}`);
    return t;
  }

  #partOf(t: TcpPlace): WorkerTarget {
    return this.#parts[t.worker] as WorkerTarget;
  }

  tcpOffloadSend(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const t = this.#place(context, "MiniportTcpOffloadSend");
    return this.#partOf(t).tcpOffloadSend(t.inner, nbl);
  }

  tcpOffloadReceive(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const t = this.#place(context, "MiniportTcpOffloadReceive");
    return this.#partOf(t).tcpOffloadReceive(t.inner, nbl);
  }

  tcpOffloadForward(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const t = this.#place(context, "MiniportTcpOffloadForward");
    return this.#partOf(t).tcpOffloadForward(t.inner, nbl);
  }

  tcpOffloadDisconnect(
    context: MiniportOffloadContext,
    nbl: NetBufferList,
    flags: DisconnectFlags,
  ): "NDIS_STATUS_PENDING" {
    const t = this.#place(context, "MiniportTcpOffloadDisconnect");
    return this.#partOf(t).tcpOffloadDisconnect(t.inner, nbl, flags);
  }

  /** Splits the chain by the worker each NBL came from (checked whole before anything moves). */
  tcpOffloadReceiveReturn(nbl: NetBufferList): "NDIS_STATUS_SUCCESS" {
    const groups = new Map<number, NetBufferList[]>();
    const seen = new Set<NetBufferList>();
    for (let n: NetBufferList | null = nbl; n !== null; n = n.next) {
      const k = this.#origin.get(n);
      if (k === undefined || seen.has(n)) {
        throw new OwnershipError(
          seen.has(n) ? "cycle" : "double-return",
          n.id,
          `MiniportTcpOffloadReceiveReturn: NBL #${n.id} is not an indicated NBL the host holds (never indicated, or returned already)`,
        );
      }
      seen.add(n);
      const g = groups.get(k);
      if (g === undefined) groups.set(k, [n]);
      else g.push(n);
    }
    for (const [k, g] of groups) {
      for (let i = 0; i < g.length; i++) {
        const n = g[i] as NetBufferList;
        n.next = g[i + 1] ?? null;
        this.#origin.delete(n);
      }
      (this.#parts[k] as WorkerTarget).tcpOffloadReceiveReturn(g[0] as NetBufferList);
    }
    return "NDIS_STATUS_SUCCESS";
  }

  /** Worker `k` handed `nbl` up (an indication the host may keep). */
  handedUp(nbl: NetBufferList, k: number): void {
    this.#origin.set(nbl, k);
  }

  /** The host refused an indication: the NBL is its worker's again. */
  takenBack(nbl: NetBufferList): void {
    this.#origin.delete(nbl);
  }

  connectionOffloadCapabilities(): TcpConnectionOffloadCapabilities {
    return (this.#parts[0] as WorkerTarget).connectionOffloadCapabilities();
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle and diagnostics

  get stats(): WorkerTargetStats {
    const s: WorkerTargetStats = {
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
      opLatencyUs: this.#latency,
      opHandledUs: this.#handled,
    };
    const counters = [
      "batchesOut",
      "batchesIn",
      "recordsOut",
      "recordsIn",
      "bytesCopied",
      "indications",
      "rxDropped",
      "txDropped",
      "polled",
      "polls",
    ] as const;
    for (const p of this.#parts) {
      const q = p.stats;
      for (const k of counters) s[k] += q[k];
    }
    return s;
  }

  get failure(): unknown {
    return this.#failure;
  }

  get outstanding(): { readonly atTarget: number; readonly heldFromTarget: number } {
    let atTarget = 0;
    let heldFromTarget = 0;
    for (const p of this.#parts) {
      atTarget += p.outstanding.atTarget;
      heldFromTarget += p.outstanding.heldFromTarget;
    }
    return { atTarget, heldFromTarget };
  }

  /** True when each worker owns a queue of the TAP device. */
  readonly ownsWire: boolean;

  async audit(): Promise<WorkerAudit> {
    const all = await Promise.all(this.#parts.map((p) => p.audit()));
    const sum = (f: (a: WorkerAudit) => number): number => all.reduce((s, a) => s + f(a), 0);
    const leaks = all.flatMap((a, k) => (a.leak === undefined ? [] : [`worker ${k}: ${a.leak}`]));
    return {
      live: sum((a) => a.live),
      leak: leaks.length === 0 ? undefined : leaks.join("\n"),
      hostNbls: sum((a) => a.hostNbls),
      outAtHost: sum((a) => a.outAtHost),
      connections: sum((a) => a.connections),
      handles: sum((a) => a.handles),
      neighbors: sum((a) => a.neighbors),
      paths: sum((a) => a.paths),
      bytesCopied: sum((a) => a.bytesCopied),
      compactedChunks: sum((a) => a.compactedChunks),
      wireIn: sum((a) => a.wireIn),
      wireOut: sum((a) => a.wireOut),
      waitedUs: sum((a) => a.waitedUs),
      waits: sum((a) => a.waits),
    };
  }

  async ping(): Promise<void> {
    await Promise.all(this.#parts.map((p) => p.ping()));
  }

  stopWire(timeoutMs?: number): boolean {
    return this.#parts.every((p) => p.stopWire(timeoutMs));
  }

  async close(): Promise<void> {
    await Promise.all(this.#parts.map((p) => p.close()));
  }

  #fail(e: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#failure = e;
    this.onError(e);
  }
}

/** The delegated state of a shared object from its copies: a neighbor's freshest reachability. */
function freshest(copies: readonly OffloadBlockList[]): unknown {
  let best: OffloadBlockList | undefined;
  for (const c of copies) {
    if (c.status !== "NDIS_STATUS_SUCCESS" || c.delegatedState === undefined) continue;
    if (
      best === undefined ||
      (c.layer === "neighbor" &&
        best.layer === "neighbor" &&
        (c.delegatedState?.nicReachabilityDelta ?? Infinity) <
          (best.delegatedState?.nicReachabilityDelta ?? Infinity))
    )
      best = c;
  }
  return (best ?? copies[0])?.delegatedState;
}

/** The host as one worker's target sees it: completions of parts go to the dispatcher. */
class PartHost implements OffloadHost {
  readonly #d: RssWorkerTargets;
  readonly #k: number = 0;
  readonly #h: OffloadHost;

  constructor(d: RssWorkerTargets, k: number, h: OffloadHost) {
    this.#d = d;
    this.#k = k;
    this.#h = h;
  }

  initiateOffloadComplete(b: OffloadBlockList): void {
    this.#d.partDone(this.#k, "initiate", b);
  }
  terminateOffloadComplete(b: OffloadBlockList): void {
    this.#d.partDone(this.#k, "terminate", b);
  }
  updateOffloadComplete(b: OffloadBlockList): void {
    this.#d.partDone(this.#k, "update", b);
  }
  invalidateOffloadComplete(b: OffloadBlockList): void {
    this.#d.partDone(this.#k, "invalidate", b);
  }
  queryOffloadComplete(b: OffloadBlockList): void {
    this.#d.partDone(this.#k, "query", b);
  }
  tcpOffloadSendComplete(nbl: NetBufferList): void {
    this.#h.tcpOffloadSendComplete(nbl);
  }
  tcpOffloadReceiveComplete(nbl: NetBufferList): void {
    this.#h.tcpOffloadReceiveComplete(nbl);
  }
  tcpOffloadReceiveIndicate(
    handle: NdisOffloadHandle,
    nbl: NetBufferList,
    status: "NDIS_STATUS_SUCCESS",
  ): ReceiveIndicateResult {
    // Known before the host sees it: the host may return it from inside the handler.
    for (let n: NetBufferList | null = nbl; n !== null; n = n.next) this.#d.handedUp(n, this.#k);
    const res = this.#h.tcpOffloadReceiveIndicate(handle, nbl, status);
    if (res.status !== "NDIS_STATUS_SUCCESS")
      for (let n: NetBufferList | null = nbl; n !== null; n = n.next) this.#d.takenBack(n);
    return res;
  }
  tcpOffloadDisconnectComplete(nbl: NetBufferList): void {
    this.#h.tcpOffloadDisconnectComplete(nbl);
  }
  tcpOffloadForwardComplete(nbl: NetBufferList): void {
    this.#h.tcpOffloadForwardComplete(nbl);
  }
  tcpOffloadEvent(handle: NdisOffloadHandle, event: TcpOffloadEvent): void {
    this.#h.tcpOffloadEvent(handle, event);
  }
  neighborReachabilityQuery(blockList: OffloadBlockList): number {
    return this.#h.neighborReachabilityQuery(blockList);
  }
  indicateStatus(status: OffloadStatusIndication): void {
    this.#h.indicateStatus(status);
  }
  indicateReceive(frame: Uint8Array): void {
    this.#h.indicateReceive(frame);
  }
}
