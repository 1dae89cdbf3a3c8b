/**
 * What crosses between the host thread and an offload target's worker thread: the records of
 * the chimney calls (both directions), the descriptors of the NBLs they carry, and the codec of
 * NET_BUFFERs over shared memory.
 *
 * Theory of operation
 * - Memory. Every byte an NBL describes across threads lies in a `SharedArrayBuffer`: an MDL
 *   crosses as (buffer, offset, length), a reference, never a copy of the bytes. Memory that is
 *   not shared (a caller's plain `Uint8Array`) is copied once into shared memory by the sender
 *   (`MdlEncoder.copied` counts those bytes; the hot paths allocate from shared slabs so they
 *   never take this path).
 * - Identity. An NBL keeps its identity on its home side (the ledger that allocated it): the
 *   other side works on a *mirror*, an NBL of its own ledger over the same bytes, made when the
 *   NBL arrives and freed when it goes back. A descriptor names its NBL by home and id: `h` for
 *   the host's NBLs (sends, posted receives, disconnects, forwards), `w` for the worker's
 *   (indications, BufferedData). Each side's ledger so sees every hand-off the single-threaded
 *   chimney makes, and both must be quiescent at the end.
 * - Calls are batched: each side appends records to one outgoing batch and posts it once per
 *   turn of its loop. The two synchronous upcalls of the contract (the receive indication, and
 *   the neighbor reachability query) post the batch and wait for the host's answer in a shared
 *   cell (`SyncCell`).
 */
import type {
  DisconnectFlags,
  IndicationAnswer,
  OffloadHost,
  OffloadTarget,
  TcpOffloadEvent,
} from "../chimney/contract.js";
import type {
  MiniportOffloadContext,
  NdisOffloadHandle,
  OffloadBlockList,
  OffloadLayer,
  OffloadStateType,
} from "../chimney/block-list.js";
import type { TcpDelegatedState } from "../chimney/state.js";
import type { TcpConnectionOffloadCapabilities } from "../chimney/capabilities.js";
import type { NdisStatus, OffloadStatusIndication } from "../chimney/status.js";
import { type Mdl, type NblStatus, type NetBuffer, netBuffer } from "../nbl/nbl.js";
import type { NblId, NetBufferList } from "../nbl/nbl.js";
import { type MessagePort, receiveMessageOnPort } from "node:worker_threads";
import { InvariantViolation, OwnershipError, type OwnershipReason } from "../util/errors.js";
import type { PackedTree } from "./tree-pack.js";

/**
 * A NET_BUFFER across threads: its whole MDL chain, as windows of shared memory, and its data
 * window. The MDLs are numbers in one typed array, three per MDL (the index of its buffer in
 * `bufs`, its byte offset there, its length), and each buffer is listed once. A terminate's
 * BufferedData of 4 MiB is ~2,900 MDLs (one per received segment) over a few slabs: as one
 * object per MDL, each holding its SharedArrayBuffer, the structured clone cost more than the
 * host's copy of the bytes; as one typed array it is a memcpy.
 */
export interface NbDesc {
  readonly bufs: readonly SharedArrayBuffer[];
  /**
   * A typed array when it crosses by the structured clone; a plain array when a packed tree
   * (tree-pack.ts) brings it, where the numbers crossed already: a few numbers per NB, and a
   * typed array of its own per NB cost a terminate storm's host ~200 bytes a connection.
   */
  readonly mdls: Uint32Array | readonly number[];
  readonly dataOffset: number;
  readonly dataLength: number;
}

/** Numbers per MDL in `NbDesc.mdls`. */
const MDL_WORDS = 3;

/** Where an NBL was allocated: `h` the host thread's ledger, `w` the worker's. */
export type NblHome = "h" | "w";

/** An NBL across threads: its home and id there, its header, and its NBs. */
export interface NblDesc {
  readonly home: NblHome;
  readonly id: NblId;
  /**
   * For a host NBL going up: true when the target handed it back with this call (its worker
   * ledger owner is the host again); false when the target still holds it (a successful
   * initiate's send data named in the tree).
   */
  readonly back: boolean;
  readonly status: NblStatus;
  readonly bytesTransferred: number;
  readonly receiveNoPush: boolean;
  readonly receiveBytesTransferred: number;
  readonly nbs: readonly NbDesc[];
}

/** A reference to an NBL already described in the same record (delegated state pointers). */
export interface NblRef {
  readonly home: NblHome;
  readonly id: NblId;
}

/** One block of a state tree across threads (`OffloadBlockList`), with its links. */
export interface BlockDesc {
  readonly stateType: OffloadStateType;
  readonly layer: OffloadLayer;
  readonly status: NdisStatus | undefined;
  /** null: placeholder; else the slot's context (null = new offload). */
  readonly slot: { readonly context: MiniportOffloadContext | null } | null;
  readonly handle: NdisOffloadHandle | undefined;
  readonly constState: unknown;
  readonly cachedState: unknown;
  /** The delegated state with its NBL fields as `NblRef`s (see `DelegatedNbls`). */
  readonly delegatedState: unknown;
  readonly chain: readonly NblDesc[] | null;
  /** BufferedData of the delegated state, described (its refs name these). */
  readonly buffered: readonly NblDesc[] | null;
  /** Its dependent block list (empty: none). */
  readonly dependents: TreeDesc;
}

/**
 * A block list as it crosses: the blocks of one level as an array (their `NextBlock` links),
 * each with its dependents. Arrays, not links: a storm's tree has thousands of siblings, and a
 * linked chain that deep overflows the stack of a recursive walk and of the structured clone.
 */
export type TreeDesc = readonly BlockDesc[];

/** A tree of no blocks (a block without dependents), shared. */
export const NO_BLOCKS: TreeDesc = Object.freeze([]);

/** The NBL-valued fields of a TCP delegated state, as refs. */
export interface DelegatedNbls {
  readonly sendDataHead: NblRef | null;
  readonly sendDataTail: NblRef | null;
  readonly bufferedData: NblRef | null;
}

/** A state operation of the contract. */
export type StateOp = "initiate" | "terminate" | "update" | "invalidate" | "query";

/** A data call of the host carrying an NBL chain. */
export type DataCall = "send" | "recv" | "fwd";

/** Host thread -> worker. */
export type DownRecord =
  | { readonly k: "frame"; readonly frame: Uint8Array }
  | { readonly k: "sendFrame"; readonly frame: Uint8Array }
  | { readonly k: "op"; readonly op: StateOp; readonly id: number; readonly tree: PackedTree }
  | {
      readonly k: "data";
      readonly call: DataCall;
      readonly ctx: MiniportOffloadContext;
      readonly chain: readonly NblDesc[];
    }
  | {
      readonly k: "disc";
      readonly ctx: MiniportOffloadContext;
      readonly chain: readonly NblDesc[];
      readonly flags: DisconnectFlags;
    }
  | { readonly k: "ret"; readonly ids: readonly NblId[] }
  | { readonly k: "ping"; readonly id: number }
  | { readonly k: "audit"; readonly id: number }
  | { readonly k: "stop" }
  | {
      readonly k: "answer";
      /** The worker's id of the indicated NBL. */
      readonly id: NblId;
      readonly status: IndicationAnswer["status"];
      readonly bytesConsumed: number;
    };

/** What the worker's side holds (`WorkerTarget.audit`). */
export interface WorkerAudit {
  /** NBLs live in the worker's ledger (mirrors of host NBLs and the target's own). */
  readonly live: number;
  /** The worker ledger's quiescence check: undefined when quiescent, else its message. */
  readonly leak: string | undefined;
  /** Host NBLs the target holds (mirrors) and target NBLs out at the host. */
  readonly hostNbls: number;
  readonly outAtHost: number;
  /** Offloaded connections, neighbors and paths. */
  readonly connections: number;
  /** Handles the worker takes for live (indications on any other are after a terminate). */
  readonly handles: number;
  readonly neighbors: number;
  readonly paths: number;
  /** Bytes the worker copied into shared memory because they were not there yet. */
  readonly bytesCopied: number;
  /** Chunks of held receive data the target compacted (copied out of frame memory). */
  readonly compactedChunks: number;
  /** Frames the worker read from and wrote to the wire itself (when it owns the TAP device). */
  readonly wireIn: number;
  readonly wireOut: number;
  /** Time the worker spent waiting for the host's answers to synchronous upcalls (us), and how often. */
  readonly waitedUs: number;
  readonly waits: number;
}

/** Worker -> host thread. */
export type UpRecord =
  | { readonly k: "tx"; readonly frame: Uint8Array }
  | { readonly k: "up"; readonly frame: Uint8Array }
  | { readonly k: "opDone"; readonly op: StateOp; readonly id: number; readonly tree: PackedTree }
  | {
      readonly k: "dataDone";
      readonly call: DataCall | "disc";
      readonly chain: readonly NblDesc[];
    }
  | {
      readonly k: "indicate";
      readonly handle: NdisOffloadHandle;
      readonly nbl: NblDesc;
    }
  | { readonly k: "event"; readonly handle: NdisOffloadHandle; readonly event: TcpOffloadEvent }
  | { readonly k: "reach"; readonly seq: number; readonly tree: PackedTree }
  | {
      readonly k: "status";
      readonly status: OffloadStatusIndication;
      readonly caps: TcpConnectionOffloadCapabilities | undefined;
    }
  | { readonly k: "pong"; readonly id: number }
  | { readonly k: "audited"; readonly id: number; readonly audit: WorkerAudit }
  | {
      readonly k: "error";
      readonly message: string;
      readonly code: string | undefined;
      /** An ownership violation's reason and NBL (`OwnershipError`), raised again on the host. */
      readonly reason: OwnershipReason | undefined;
      readonly nblId: number;
    };

/** A batch of records, with the worker's count of offloaded connections on the way up. */
export interface Batch<R> {
  readonly records: readonly R[];
  readonly connections?: number | undefined;
  /** On the way up: wire frames the worker has taken in so far (the host bounds the backlog). */
  readonly framesIn?: number | undefined;
}

/** The worker's first message: it runs, and what it offers. */
export interface WorkerReady {
  readonly k: "ready";
  readonly caps: TcpConnectionOffloadCapabilities | undefined;
}

// ---------------------------------------------------------------------------------------------
// The answer cell of the synchronous upcalls

/**
 * One shared cell for the answer of a synchronous upcall: the worker writes a request's
 * sequence number into the record and waits until the host has stored the same number here.
 * Layout (Int32): [0] answered sequence, [1] status code, [2] value, [3] stop requested (the
 * host is closing: a worker waiting for an answer gives up), [4] stop done (the worker no longer
 * touches the wire), [5] and [6] the doorbells of the batches posted down and up (`Doorbell`).
 */
export const SYNC_CELL_WORDS = 7;
export const CELL_STOP = 3;
export const CELL_STOPPED = 4;
export const CELL_BELL_DOWN = 5;
export const CELL_BELL_UP = 6;

/**
 * A doorbell beside a message port: the sender rings it after each `postMessage`, and a side
 * that polls the port while it expects a batch (after a state operation) looks at the bell and
 * takes the port's lock only when it rang since the port was last found empty. Polling the port
 * itself in a loop (`receiveMessageOnPort`) contends for the lock the sender needs to queue the
 * message: measured, a round trip with both sides polling took 21 us that way and 14 us with
 * the bell. A missed ring costs only time: the batch still arrives as a message event.
 */
export class Doorbell {
  readonly #cell: Int32Array;
  readonly #index: number = 0;
  #seen = 0;

  constructor(cell: Int32Array, index: number) {
    this.#cell = cell;
    this.#index = index;
  }

  /** After a `postMessage` on the port this bell stands beside. */
  ring(): void {
    Atomics.add(this.#cell, this.#index, 1);
  }

  /** The next message of `port` if the bell rang since the port was last found empty. */
  poll(port: MessagePort): unknown {
    const rung = Atomics.load(this.#cell, this.#index);
    if (rung === this.#seen) return undefined;
    const m = receiveMessageOnPort(port);
    if (m === undefined) {
      this.#seen = rung;
      return undefined;
    }
    return m.message;
  }
}

// ---------------------------------------------------------------------------------------------
// NET_BUFFERs over shared memory

/** Chooses where bytes that are not shared yet are copied to (a shared slab). */
export type SharedAlloc = (n: number) => Uint8Array;

/** True when `u8` lies in shared memory (it can cross by reference). */
export function isShared(u8: Uint8Array): boolean {
  return u8.buffer instanceof SharedArrayBuffer;
}

/** Encodes NBs for the other thread, copying what is not in shared memory yet. */
export class MdlEncoder {
  readonly #alloc: SharedAlloc;
  /** Bytes copied because they were not in shared memory. */
  copied = 0;

  constructor(alloc: SharedAlloc) {
    this.#alloc = alloc;
  }

  /** One NB: every MDL of its chain (by reference when shared), its window. */
  nb(nb: NetBuffer): NbDesc {
    let n = 0;
    for (let m: Mdl | null = nb.mdlChain; m !== null; m = m.next) n++;
    const mdls = new Uint32Array(n * MDL_WORDS);
    let bufs: SharedArrayBuffer[] | undefined;
    let i = 0;
    for (let m: Mdl | null = nb.mdlChain; m !== null; m = m.next, i += MDL_WORDS) {
      const v = this.#sharedView(m.view);
      const buf = v.buffer as SharedArrayBuffer;
      // The first buffer starts a list of one (the usual NB), not an empty list grown by `push`.
      if (bufs === undefined) bufs = [buf];
      else mdls[i] = bufferIndex(bufs, buf);
      mdls[i + 1] = v.byteOffset;
      mdls[i + 2] = v.length;
    }
    return { bufs: bufs ?? [], mdls, dataOffset: nb.dataOffset, dataLength: nb.dataLength };
  }

  /** An NB of one MDL over `view` (by reference when shared, else copied once). */
  one(view: Uint8Array, dataOffset: number, dataLength: number): NbDesc {
    const v = this.#sharedView(view);
    return {
      bufs: [v.buffer as SharedArrayBuffer],
      mdls: Uint32Array.of(0, v.byteOffset, v.length),
      dataOffset,
      dataLength,
    };
  }

  #sharedView(view: Uint8Array): Uint8Array {
    if (view.buffer instanceof SharedArrayBuffer) return view;
    const copy = this.#alloc(view.length);
    copy.set(view);
    this.copied += view.length;
    return copy;
  }
}

/** The index of `buf` in `bufs`, appended if new (MDLs in a row mostly share the last one). */
function bufferIndex(bufs: SharedArrayBuffer[], buf: SharedArrayBuffer): number {
  const n = bufs.length;
  if (n > 0 && bufs[n - 1] === buf) return n - 1;
  const at = bufs.indexOf(buf);
  if (at >= 0) return at;
  bufs.push(buf);
  return n;
}

/** The view MDL `i` of `d` describes. */
function mdlView(d: NbDesc, i: number): Uint8Array {
  const k = i * MDL_WORDS;
  return new Uint8Array(d.bufs[d.mdls[k] as number] as SharedArrayBuffer, d.mdls[k + 1], d.mdls[k + 2]);
}

/** The NB a descriptor describes, as a fresh descriptor over the shared bytes (no copy). */
export function decodeNb(d: NbDesc): NetBuffer {
  let chain: Mdl | null = null;
  for (let i = d.mdls.length / MDL_WORDS - 1; i >= 0; i--) {
    const view = mdlView(d, i);
    chain = { bytes: view, offset: 0, length: view.length, view, next: chain };
  }
  return netBuffer(chain, d.dataOffset, d.dataLength);
}

/**
 * Copies the bytes of `d`'s MDLs back into `nb`'s (same chain shape): a posted receive whose
 * buffer was copied into shared memory gets what the target placed in the copy.
 */
export function copyBack(d: NbDesc, nb: NetBuffer): void {
  let m: Mdl | null = nb.mdlChain;
  const count = d.mdls.length / MDL_WORDS;
  for (let i = 0; i < count && m !== null; i++, m = m.next) {
    const s = mdlView(d, i);
    if (s.buffer !== m.view.buffer || s.byteOffset !== m.view.byteOffset)
      m.view.set(s.length > m.length ? s.subarray(0, m.length) : s);
  }
}

/**
 * Sizes of shared slabs: small allocations share one; larger ones get their own buffer. A slab
 * lives while any view of it does (a few header bytes an application keeps pin all of it), so
 * slabs are small: 64 KiB, as the host's own frame slabs (wire/packet.ts).
 */
const SLAB_BYTES = 64 << 10;
const OWN_BUFFER_BYTES = SLAB_BYTES >> 2;

/**
 * A bump allocator of shared memory: windows of 64 KiB slabs, never reused (a slab is reclaimed
 * by the garbage collector once no view of it is left on either thread). Frames and chunks that
 * cross threads are allocated here, so they cross by reference.
 */
export class SharedSlab {
  #slab: Uint8Array = new Uint8Array(0);
  #used = 0;
  /** Bytes handed out. */
  allocated = 0;

  /** `n` fresh bytes of shared memory (zeroed). */
  alloc = (n: number): Uint8Array => {
    this.allocated += n;
    if (n >= OWN_BUFFER_BYTES) return new Uint8Array(new SharedArrayBuffer(Math.max(n, 1)), 0, n);
    if (this.#used + n > this.#slab.length) {
      this.#slab = new Uint8Array(new SharedArrayBuffer(SLAB_BYTES));
      this.#used = 0;
    }
    const at = this.#used;
    this.#used = (at + n + 7) & ~7; // 8-byte aligned windows
    return this.#slab.subarray(at, at + n);
  };

  /** A shared copy of `bytes`. */
  copy(bytes: Uint8Array): Uint8Array {
    const out = this.alloc(bytes.length);
    out.set(bytes);
    return out;
  }
}

/** An Error as a record (what crosses when the worker fails). */
export function errorRecord(e: unknown): UpRecord {
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  const own = e instanceof OwnershipError;
  return {
    k: "error",
    message,
    code: typeof code === "string" ? code : undefined,
    reason: own ? e.reason : undefined,
    nblId: own ? e.nblId : -1,
  };
}

// ---------------------------------------------------------------------------------------------
// State trees

/** How one side describes the NBLs a tree names (each side knows which NBLs are whose). */
export interface TreeEncoder {
  /** A block's `NetBufferListChain`. */
  chain(head: NetBufferList): NblDesc[];
  /** A TCP block's BufferedData, described; null when it crosses as a reference only. */
  buffered(head: NetBufferList): NblDesc[] | null;
  /** Any NBL the delegated state points at (SendDataHead/Tail, BufferedData). */
  ref(n: NetBufferList): NblRef;
}

/** A tree as it crosses: its blocks in the same shape, NBLs described by `e`. */
export function encodeTree(first: OffloadBlockList, e: TreeEncoder): TreeDesc {
  let count = 0;
  for (let b: OffloadBlockList | null = first; b !== null; b = b.nextBlock) count++;
  const out = new Array<BlockDesc>(count); // at its final size (see mapNbls)
  let i = 0;
  for (let b: OffloadBlockList | null = first; b !== null; b = b.nextBlock) out[i++] = encodeBlock(b, e);
  return out;
}

function encodeBlock(b: OffloadBlockList, e: TreeEncoder): BlockDesc {
  let buffered: NblDesc[] | null = null;
  let delegated: unknown = b.delegatedState;
  if (b.layer === "tcp" && b.delegatedState !== undefined) {
    const d = b.delegatedState;
    if (d.bufferedData !== null) buffered = e.buffered(d.bufferedData);
    const ref = (n: NetBufferList | null): NblRef | null => (n === null ? null : e.ref(n));
    delegated = {
      ...d,
      sendDataHead: ref(d.sendDataHead),
      sendDataTail: ref(d.sendDataTail),
      bufferedData: ref(d.bufferedData),
    } satisfies CrossingDelegatedState;
  }
  return {
    stateType: b.stateType,
    layer: b.layer,
    status: b.status,
    slot: b.miniportOffloadContext === null ? null : { context: b.miniportOffloadContext.context },
    handle: b.ndisOffloadHandle,
    constState: b.constState,
    cachedState: b.cachedState,
    delegatedState: delegated,
    chain: b.netBufferListChain === null ? null : e.chain(b.netBufferListChain),
    buffered,
    dependents: b.dependentBlockList === null ? NO_BLOCKS : encodeTree(b.dependentBlockList, e),
  };
}

/** A TCP delegated state as it crosses: its NBL fields as references. */
export type CrossingDelegatedState = Omit<TcpDelegatedState, keyof DelegatedNbls> & DelegatedNbls;

/**
 * A TCP delegated state that arrived, its NBL references resolved by `ref`: the same object,
 * rewritten in place (it is the receiver's own, fresh from the crossing; a copy of its ~30
 * fields cost the host 0.5 KiB per connection in a terminate storm).
 */
export function resolveDelegated(
  ds: CrossingDelegatedState,
  ref: (r: NblRef | null) => NetBufferList | null,
): TcpDelegatedState {
  const out = ds as unknown as { -readonly [K in keyof TcpDelegatedState]: TcpDelegatedState[K] };
  out.sendDataHead = ref(ds.sendDataHead);
  out.sendDataTail = ref(ds.sendDataTail);
  out.bufferedData = ref(ds.bufferedData);
  return out;
}

/** How one side builds its NBLs for a block of a tree that arrived. */
export interface TreeDecoder {
  /** The block's chain (mirrors or originals) and how its delegated state's refs resolve. */
  block(d: BlockDesc): { readonly chain: NetBufferList | null; ref(r: NblRef): NetBufferList | null };
}

/** This side's copy of a tree that arrived: fresh blocks and slots, NBLs from `dec`. */
export function decodeTree(tree: TreeDesc, dec: TreeDecoder): OffloadBlockList {
  let first: OffloadBlockList | null = null;
  let prev: OffloadBlockList | null = null;
  for (const d of tree) {
    const b = decodeBlock(d, dec);
    if (prev === null) first = b;
    else prev.nextBlock = b;
    prev = b;
  }
  if (first === null) throw new InvariantViolation("an empty block list crossed");
  return first;
}

function decodeBlock(d: BlockDesc, dec: TreeDecoder): OffloadBlockList {
  const here = dec.block(d);
  let delegated: unknown = d.delegatedState;
  if (d.layer === "tcp" && d.delegatedState !== undefined) {
    delegated = resolveDelegated(d.delegatedState as CrossingDelegatedState, (r) =>
      r === null ? null : here.ref(r),
    );
  }
  return {
    stateType: d.stateType,
    layer: d.layer,
    status: d.status,
    miniportOffloadContext: d.slot === null ? null : { context: d.slot.context },
    ndisOffloadHandle: d.handle,
    constState: d.constState,
    cachedState: d.cachedState,
    delegatedState: delegated,
    netBufferListChain: here.chain,
    nextBlock: null,
    dependentBlockList: d.dependents.length === 0 ? null : decodeTree(d.dependents, dec),
  } as OffloadBlockList; // the layer's own state types: they crossed as they were
}

/** Every block descriptor of a tree in traversal order (as `forEachInTree`). */
export function forEachDesc(tree: TreeDesc, fn: (d: BlockDesc) => void): void {
  for (const d of tree) {
    fn(d);
    forEachDesc(d.dependents, fn);
  }
}

// ---------------------------------------------------------------------------------------------
// Call names (the ledger's `op` on each side)

/** The host's data calls, by record. */
export const DATA_CALL_OP: Readonly<Record<DataCall | "disc", string>> = {
  send: "MiniportTcpOffloadSend",
  recv: "MiniportTcpOffloadReceive",
  fwd: "MiniportTcpOffloadForward",
  disc: "MiniportTcpOffloadDisconnect",
};

/** Their completions. */
export const DATA_COMPLETE_OP: Readonly<Record<DataCall | "disc", string>> = {
  send: "NdisTcpOffloadSendComplete",
  recv: "NdisTcpOffloadReceiveComplete",
  fwd: "NdisTcpOffloadForwardComplete",
  disc: "NdisTcpOffloadDisconnectComplete",
};

/** The state operations. */
export const STATE_OP: Readonly<Record<StateOp, string>> = {
  initiate: "MiniportInitiateOffload",
  terminate: "MiniportTerminateOffload",
  update: "MiniportUpdateOffload",
  invalidate: "MiniportInvalidateOffload",
  query: "MiniportQueryOffload",
};

/** Their completions. */
export const STATE_COMPLETE_OP: Readonly<Record<StateOp, string>> = {
  initiate: "NdisMInitiateOffloadComplete",
  terminate: "NdisMTerminateOffloadComplete",
  update: "NdisMUpdateOffloadComplete",
  invalidate: "NdisMInvalidateOffloadComplete",
  query: "NdisMQueryOffloadStateComplete",
};

/** Calls state operation `op` on a target. */
export function callStateOp(target: OffloadTarget, op: StateOp, b: OffloadBlockList): void {
  switch (op) {
    case "initiate":
      target.initiateOffload(b);
      return;
    case "terminate":
      target.terminateOffload(b);
      return;
    case "update":
      target.updateOffload(b);
      return;
    case "invalidate":
      target.invalidateOffload(b);
      return;
    case "query":
      target.queryOffload(b);
      return;
  }
}

/** Completes state operation `op` to a host. */
export function completeStateOp(host: OffloadHost, op: StateOp, b: OffloadBlockList): void {
  switch (op) {
    case "initiate":
      host.initiateOffloadComplete(b);
      return;
    case "terminate":
      host.terminateOffloadComplete(b);
      return;
    case "update":
      host.updateOffloadComplete(b);
      return;
    case "invalidate":
      host.invalidateOffloadComplete(b);
      return;
    case "query":
      host.queryOffloadComplete(b);
      return;
  }
}

/**
 * An NBL's descriptor: its header fields, home, id and NBs, built as one literal (a spread of a
 * header object was the worker's costliest line in a terminate storm).
 */
export function nblDesc(
  n: NetBufferList,
  home: NblHome,
  id: NblId,
  back: boolean,
  nbs: readonly NbDesc[],
): NblDesc {
  return {
    home,
    id,
    back,
    status: n.status,
    bytesTransferred: n.bytesTransferred,
    receiveNoPush: n.receiveNoPush,
    receiveBytesTransferred: n.receiveBytesTransferred,
    nbs,
  };
}
