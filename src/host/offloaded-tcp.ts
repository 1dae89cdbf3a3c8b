/**
 * The records the offload manager keeps: one per offloaded (or in-flight) neighbor, path and TCP
 * connection, with the state each phase needs (held segments, held sends, send NBLs in order,
 * the host-side receive queue, posted requests), the manager's counters and its log entries.
 * The manager (offload-manager.ts) owns every instance; nothing else mutates them.
 */
import type { MiniportOffloadContext, NdisOffloadHandle, OffloadContextSlot } from "../chimney/block-list.js";
import type { TcpCachedState, TcpConstState, TcpDelegatedState } from "../chimney/state.js";
import { constStateFromEngine } from "../chimney/tcp-state.js";
import { rssTupleHash } from "../wire/rss-hash.js";
import type { NetBufferList } from "../nbl/nbl.js";
import type { TcpConnection } from "../tcp/connection.js";
import { Seq } from "../wire/seq.js";
import type { TcpSnapshotCached, TcpSnapshotConst, TcpSnapshot } from "../tcp/types.js";
import type { Instant } from "../time/instant.js";
import type { IpAddr } from "../wire/ip-addr.js";
import type { TcpRepr } from "../wire/tcp-repr.js";
import type { HostConn } from "./stack.js";

/** One step of the manager's log (for traces, the CLI demo and failure messages). */
export interface OffloadLogEntry {
  readonly at: Instant;
  readonly conn: number | undefined;
  readonly op: string;
  readonly detail: string;
}

/** The result of a QueryOffload for one connection, once complete. */
export interface QueryHandle {
  done: boolean;
  status: string | undefined;
  delegated: TcpDelegatedState | undefined;
}

/** Counters of the manager. */
export interface OffloadStats {
  initiates: number;
  /** Initiates the target completed with success: connections that did run offloaded. */
  initiateSuccesses: number;
  initiateFailures: number;
  /** TCP connections sent to the target in TerminateOffload calls. */
  terminates: number;
  /** TerminateOffload calls (one tree may carry many connections: a storm is one call). */
  terminateCalls: number;
  updates: number;
  invalidates: number;
  queries: number;
  sends: number;
  sendBytesCompleted: number;
  indications: number;
  indicatedBytesAccepted: number;
  refusals: number;
  posts: number;
  zeroBytePosts: number;
  postedBytesCompleted: number;
  forwards: number;
  heldSegments: number;
  bufferedDataIn: number;
  bufferedDataOut: number;
  reachabilityQueries: number;
  /** Uploads where the host queue and BufferedData both held bytes (ordering matters). */
  uploadsBufferedBothSides: number;
  /** Receive requests posted partly pre-filled by the host. */
  prefilledPosts: number;
}

export type ObjPhase = "offloading" | "offloaded" | "terminating";

/** An offloaded (or in-flight) neighbor object. */
export interface NeighborObject {
  readonly key: string;
  readonly ifIndex: number;
  readonly ip: IpAddr;
  readonly slot: OffloadContextSlot;
  readonly handle: NdisOffloadHandle;
  phase: ObjPhase;
  /** Offloaded or offloading paths that depend on it (TM-4). */
  refs: number;
  mac: Uint8Array;
  /** Invalidated (spec 10): never updated again (UP-9); its uploads follow (IV-8). */
  invalidated?: boolean;
}

/** An offloaded (or in-flight) path object. */
export interface PathObject {
  readonly key: string;
  readonly src: IpAddr;
  readonly dst: IpAddr;
  readonly neighbor: NeighborObject;
  readonly slot: OffloadContextSlot;
  phase: ObjPhase;
  /** Offloaded or offloading connections that depend on it (TM-4). */
  refs: number;
  pmtu: number;
}

export interface SendEntry {
  readonly nbl: NetBufferList;
  /** Still with the target (false once completed with a non-success status). */
  atTarget: boolean;
}

export interface PostedRecv {
  readonly nbl: NetBufferList;
  readonly buf: Uint8Array;
  readonly prefill: number;
}

/**
 * The context slot of an offloaded connection (CTX-3): the target writes `context`; the host
 * finds the connection's record from the slot a completion names without a table lookup (a
 * storm's completions would otherwise probe a hash table of every offloaded connection). The
 * record is private: a target sees only `context`.
 */
export class TcpSlot implements OffloadContextSlot {
  context: MiniportOffloadContext | null = null;
  readonly #owner: OffloadedTcp;
  /** Set while the record is the manager's (from the initiate until the upload or a failure). */
  live = false;

  constructor(owner: OffloadedTcp) {
    this.#owner = owner;
  }

  /** The live record whose slot `slot` is, if it is one. */
  static liveOwner(slot: OffloadContextSlot): OffloadedTcp | undefined {
    return slot instanceof TcpSlot && slot.live ? slot.#owner : undefined;
  }
}

/** A connection that is not on the host. */
export class OffloadedTcp {
  readonly conn: HostConn;
  readonly path: PathObject;
  readonly slot: TcpSlot = new TcpSlot(this);
  readonly handle: NdisOffloadHandle = 0 as NdisOffloadHandle;
  phase: ObjPhase = "offloading";
  readonly engineConst: TcpSnapshotConst;
  engineCached: TcpSnapshotCached;
  chimConst: TcpConstState;
  cached: TcpCachedState;
  /** The exported engine, parked while the initiate is in flight (IO-10). */
  parked: TcpConnection | undefined;
  /**
   * The same engine once the initiate succeeded, emptied (`hibernate`: the state is the
   * target's now) and kept for the upload, which wakes it (`reimport`) instead of building a new
   * one: a terminate storm then allocates no engines.
   */
  dormant: TcpConnection | undefined;
  /** InvalidateOffload was issued for it: no update follows (UP-9), its upload does (IV-8). */
  invalidated = false;
  /** Segments held while offloading (to forward) or terminating (to process, TM-24). */
  readonly held: TcpRepr[] = [];
  /**
   * Application sends accepted but not posted: while no I/O may go to the target, or (EV-4)
   * while the bytes posted at the target reach its preferred send backlog.
   */
  readonly heldSends: Uint8Array[] = [];
  /** Bytes in `heldSends` (kept while offloaded; the upload path may empty the list directly). */
  heldSendBytes = 0;
  /**
   * EV-4 / ST-4: the target's preferred send backlog from its last TcpIndicateSendBacklogChange:
   * how many unacknowledged send bytes the host keeps posted. Undefined: no indication yet, so
   * everything accepted is posted at once.
   */
  sendBacklog: number | undefined;
  /** Send NBLs given to the target, in order (the initiate's send data first). */
  readonly sends: SendEntry[] = [];
  /** Bytes of `sends` not yet acknowledged plus `heldSends`. */
  sendOutstanding = 0;
  readonly sendLimit: number = 0;
  /** Host-side receive queue (copies), read by `recv`. */
  readonly recvQ: Uint8Array[] = [];
  recvBytes = 0;
  /** Receive requests posted and not completed, FIFO. */
  readonly posted: PostedRecv[] = [];
  /** The target holds data the host refused; it indicates again only after a post (RI-3). */
  refused = false;
  /** BufferedData went over at initiate: the target holds it until the host posts (IO-22). */
  mustPost = false;
  /** TcpIndicateDisconnect arrived. */
  peerFin = false;
  /** The reason of the last TcpIndicateRetrieve (how a CLOSED upload ended, see `#onTcpUploaded`). */
  retrieveReason: string | undefined;
  /**
   * Bytes handed to the target as BufferedData after the peer's FIN had already reached the
   * application, not yet delivered back: they still count as readable, so the application does
   * not take the end of the stream for reached while the target holds data sent before the FIN.
   */
  heldAtTarget = 0;
  /** The application called close (FIN owed after the data). */
  closeRequested = false;
  /** The FIN was queued before the offload (it travels in the delegated state). */
  finBeforeOffload = false;
  /** The graceful disconnect went to the target; its NBL while pending. */
  disconnect: NetBufferList | undefined;
  disconnectDone = false;
  /** The application aborted, or the target indicated an abort. */
  aborted: "local" | "reset" | undefined;
  closedDelivered = false;
  /** A terminate is wanted (reason), started from `flush`. */
  wantTerminate: string | undefined;
  /** A query or update is outstanding (C-5: terminate waits). */
  busyOps = 0;
  /** Forwarded segments outstanding, by NBL id. */
  readonly forwarded = new Map<number, TcpRepr>();
  readonly forwardBack: TcpRepr[] = [];
  /** A shadow engine carrying option changes made while off the host (`configure`). */
  shadow: TcpSnapshot;
  bytesMoved = 0;

  constructor(
    conn: HostConn,
    path: PathObject,
    handle: NdisOffloadHandle,
    snap: TcpSnapshot,
    cached: TcpCachedState,
  ) {
    this.conn = conn;
    this.path = path;
    this.handle = handle;
    this.engineConst = snap.constState;
    this.engineCached = snap.cachedState;
    // RS-1: the RSS hash of the connection's received direction, for a target with several queues.
    this.chimConst = constStateFromEngine(
      snap.constState,
      rssTupleHash(conn.remoteAddr, conn.localAddr, conn.remotePort, conn.localPort),
    );
    this.cached = cached;
    this.sendLimit = snap.cachedState.sendBufferSize;
    this.shadow = withoutData(snap);
  }
}

/**
 * The log entry of a successful TerminateOffloadComplete, one per uploaded connection: the
 * numbers are kept and the detail text is formatted when first read (a storm uploads thousands
 * of connections at once; formatting every entry eagerly took about a tenth of a 10,000-connection
 * storm's CPU time). Holds no reference to the delegated state or its NBLs.
 */
export class UploadLogEntry implements OffloadLogEntry {
  readonly at: Instant = 0 as Instant;
  readonly conn: number = 0;
  readonly op = "TerminateOffloadComplete";
  readonly #state: string;
  readonly #sndUna: number = 0;
  readonly #sndNxt: number = 0;
  readonly #sndMax: number = 0;
  readonly #rcvNxt: number = 0;
  readonly #sendBytes: number = 0;
  readonly #bufferedIn: number = 0;
  #detail: string | undefined;

  constructor(at: Instant, conn: number, d: TcpDelegatedState, sendBytes: number, bufferedIn: number) {
    this.at = at;
    this.conn = conn;
    this.#state = d.state;
    // Sequence numbers as int32 (`| 0`, read back with `>>> 0`): V8 keeps those in the object,
    // while a uint32 above 2^31 is a heap number of its own, 16 bytes per field and entry, and a
    // storm's entries live long enough to be promoted.
    this.#sndUna = d.sndUna | 0;
    this.#sndNxt = d.sndNxt | 0;
    this.#sndMax = d.sndMax | 0;
    this.#rcvNxt = d.rcvNxt | 0;
    this.#sendBytes = sendBytes;
    this.#bufferedIn = bufferedIn;
  }

  get detail(): string {
    this.#detail ??=
      `${this.#state} sndUna=${this.#sndUna >>> 0} sndNxt=${this.#sndNxt >>> 0} sndMax=${this.#sndMax >>> 0} ` +
      `rcvNxt=${this.#rcvNxt >>> 0} sendData=${this.#sendBytes}B bufferedData=${this.#bufferedIn}B`;
    return this.#detail;
  }

  /** The plain entry (as every other log entry is), for JSON. */
  toJSON(): OffloadLogEntry {
    return { at: this.at, conn: this.conn, op: this.op, detail: this.detail };
  }
}

/**
 * `snap` without its byte queues: the shadow only carries options (`configure`), and keeping the
 * queues would pin a second copy of the connection's data for as long as it is offloaded.
 */
function withoutData(snap: TcpSnapshot): TcpSnapshot {
  const d = snap.delegated;
  // Without the send data the sequence space must shrink with it (the engine checks that
  // SND.MAX does not run past its data): nothing in flight but a FIN already sent.
  const finQueued = d.state === "FIN-WAIT-1" || d.state === "CLOSING" || d.state === "LAST-ACK";
  const cap = finQueued && d.sndMax !== d.sndUna ? Seq.add(d.sndUna, 1) : d.sndUna;
  const sndMax = Seq.gt(d.sndMax, cap) ? cap : d.sndMax;
  const sndNxt = Seq.gt(d.sndNxt, sndMax) ? sndMax : d.sndNxt;
  return { ...snap, delegated: { ...d, sndMax, sndNxt, sendData: [], bufferedData: [] } };
}
