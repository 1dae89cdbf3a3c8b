/**
 * The host's offload manager: the host half of TCP Chimney (spec digest 12.1). It decides which
 * connections to hand to the offload target, builds the neighbor -> path -> TCP state trees,
 * runs initiate / terminate / update / invalidate / query end to end, and keeps the socket-level
 * calls of `HostStack` working whatever phase a connection is in ("sockets don't notice").
 *
 * Theory of operation
 * - Objects. Each offloaded neighbor and path is a `NeighborObject` / `PathObject` with the
 *   context slot the target writes (CTX-3), a phase, and a count of offloaded dependents (TM-4).
 *   A connection off the host is an `OffloadedTcp` bound to its `HostConn`.
 * - Initiate (spec 7). Only ST-9 states; the stack first drains the engine (owed ACKs go out),
 *   then the engine is exported and the connection enters "offloading": its engine is parked,
 *   segments that reach the host are held (IO-4) and the application's sends are queued (IO-3).
 *   The tree reuses offloaded neighbor/path objects through linker blocks (TR-6); objects still
 *   in flight make the request wait (C-1). Send data crosses as NBLs in the TCP block's
 *   NetBufferListChain (spec 7.6); undelivered receive data is lent as BufferedData and copied
 *   by the target during the call (IO-19). On success the parked engine is emptied and kept
 *   dormant for the upload (its buffers are the host's again, IO-21) and held segments are
 *   forwarded (FW-1); on failure the parked engine runs again (IO-10).
 * - Data while offloaded. `send` becomes MiniportTcpOffloadSend of an NBL over the caller's
 *   bytes (zero-copy), bounded by the send buffer size; completions produce `acked` and
 *   `writable`. Received data reaches a host-side queue either by accepting indications or by
 *   completing posted receive requests; `recv` reads that queue. How the host consumes
 *   indications and whether it posts requests is a seeded `ReceiveKnobs` policy, so tests can
 *   exercise every branch of the delivery algorithm (spec 14.6). `close` is a graceful
 *   disconnect, `abort` an abortive one; TcpIndicateDisconnect becomes `peer-fin` and
 *   TcpIndicateAbort a `closed` event with ECONNRESET.
 * - Terminate (spec 11). Host-initiated, or on a mandatory TcpIndicateRetrieve, on
 *   TcpIndicateAbort (RST-2), or when the connection has finished both directions. A connection
 *   that is the last on its path takes the path (and a last path its neighbor) into the same tree
 *   (C-6, TM-5); `terminateNeighbor` uploads every connection of a neighbor in one tree (a
 *   "storm"). On completion the host rebuilds the send queue from the NBLs it still tracks
 *   (returned in NetBufferListChain or completed with UPLOAD_IN_PROGRESS, in their original
 *   order), rebuilds the receive buffer as (host queue, then BufferedData) so the application
 *   reads everything in order, returns the BufferedData NBLs (TM-20), imports the delegated
 *   state into the dormant engine (timers resume from their deltas), and then processes segments held during
 *   the upload (TM-24).
 * - Re-entrancy. Upcalls from the target only record work; anything that calls the target again
 *   (receive returns, re-posting, forwarding, starting a terminate) runs from `flush`, which the
 *   stack calls before producing output. So no call into the target nests inside another.
 *
 * Size: the manager is the host half of the contract: every NDIS upcall (completions,
 *   indications, events), every socket call in every phase and the trees of the five state
 *   operations share its object tables; the records, policy and knobs live in offloaded-tcp.ts
 *   and offload-policy.ts. Carving the data path out over a shared context is the next step.
 */
import {
  forEachInTree,
  type MiniportOffloadContext,
  type NdisOffloadHandle,
  type NeighborBlock,
  newBlock,
  type OffloadBlockList,
  type OffloadContextSlot,
  type PathBlock,
  type TcpBlock,
  treeBlocks,
} from "../chimney/block-list.js";
import {
  MANDATORY_UPLOAD_REASONS,
  type OffloadHost,
  type OffloadTarget,
  type ReceiveIndicateResult,
  type TcpOffloadEvent,
  type TcpUploadReason,
} from "../chimney/contract.js";
import { OFFLOADABLE_STATES, type TcpCachedState, type TcpDelegatedState } from "../chimney/state.js";
import type { OffloadStatusIndication } from "../chimney/status.js";
import {
  droppedFamilies,
  FULL_CAPABILITIES,
  supportsFamily,
  type TcpConnectionOffloadCapabilities,
} from "../chimney/capabilities.js";
import {
  type BufferChain,
  chainLength,
  copyOut,
  forEachSegment,
  fromArrays,
  linkNbls,
  nblArray,
  segments,
} from "../nbl/chain.js";
import type { BufferLedger } from "../nbl/ledger.js";
import { mdl, type NetBufferList, netBuffer } from "../nbl/nbl.js";
import { ChunkFiller, ChunkPool, idlePoolBytes } from "../storage/chunk-pool.js";
import { type ConnEvent, TcpConnection } from "../tcp/connection.js";
import type { TcpSnapshotCached, TcpSnapshot } from "../tcp/types.js";
import { Duration, Instant } from "../time/instant.js";
import { assert, UsageError } from "../util/errors.js";
import { MAC_ZERO } from "../wire/ethernet.js";
import { type IpAddr, ipEquals, ipKey, ipToString } from "../wire/ip-addr.js";
import { emitTcp, tcpBufferLen } from "../wire/tcp.js";
import type { TcpRepr } from "../wire/tcp-repr.js";
import type { HostConn, HostStack, OffloadHooks } from "./stack.js";
import {
  cachedStateFromEngine,
  delegatedStateFromEngine,
  snapshotFromOffloadState,
  blankSnapshot,
  releaseSnapshotData,
  toOffloadConnectionState,
} from "../chimney/tcp-state.js";
import {
  type NeighborObject,
  OffloadedTcp,
  type OffloadLogEntry,
  type OffloadStats,
  type PathObject,
  type PostedRecv,
  type QueryHandle,
  type SendEntry,
  TcpSlot,
  UploadLogEntry,
} from "./offloaded-tcp.js";
import { acceptAllKnobs, type OffloadPolicy, type ReceiveKnobs, RECV_CHUNK_BYTES } from "./offload-policy.js";
import { IntMap } from "../util/int-map.js";

export type { OffloadLogEntry, OffloadStats, QueryHandle } from "./offloaded-tcp.js";
export { acceptAllKnobs, RECV_CHUNK_BYTES } from "./offload-policy.js";
export type { OffloadPolicy, ReceiveKnobs } from "./offload-policy.js";

const OP_SEND = "MiniportTcpOffloadSend";
const OP_RECV = "MiniportTcpOffloadReceive";
const OP_RETURN = "MiniportTcpOffloadReceiveReturn";
const OP_DISC = "MiniportTcpOffloadDisconnect";
const OP_FWD = "MiniportTcpOffloadForward";
const OP_INIT = "MiniportInitiateOffload";
/**
 * Connections in one TerminateOffload call at most when several are ready in one turn (a
 * storm): enough to make the cost per call vanish, few enough that the target completes one
 * batch while the host works on the next.
 */
export const TERMINATE_BATCH = 32;

/**
 * TerminateOffload calls out at the target at once; a storm issues the rest as completions come
 * back. Enough to keep a target thread busy while the host takes completions in; few enough
 * that a terminate's tree, and the BufferedData the target hands up for it, are done with before
 * the garbage collector sees them twice (issued all at once, 100,000 trees waited for their
 * completions and were promoted, and so were the target's NBLs out at the host meanwhile).
 */
export const TERMINATE_CALLS_IN_FLIGHT = 32;

/** Default bound on `OffloadManager.log` entries (`logLimit`). */
export const DEFAULT_OFFLOAD_LOG_LIMIT = 10_000;

/**
 * The offload manager (`OffloadHost` for the target). Create it over a stack and a ledger,
 * construct the target with it, then `attachTarget`.
 */
export class OffloadManager implements OffloadHost {
  readonly stack: HostStack;
  readonly ledger: BufferLedger;
  readonly stats: OffloadStats = {
    initiates: 0,
    initiateSuccesses: 0,
    initiateFailures: 0,
    terminates: 0,
    terminateCalls: 0,
    updates: 0,
    invalidates: 0,
    queries: 0,
    sends: 0,
    sendBytesCompleted: 0,
    indications: 0,
    indicatedBytesAccepted: 0,
    refusals: 0,
    posts: 0,
    zeroBytePosts: 0,
    postedBytesCompleted: 0,
    forwards: 0,
    heldSegments: 0,
    bufferedDataIn: 0,
    bufferedDataOut: 0,
    reachabilityQueries: 0,
    uploadsBufferedBothSides: 0,
    prefilledPosts: 0,
  };
  /** Every step, oldest first (bounded by `logLimit`). */
  readonly log: OffloadLogEntry[] = [];
  /**
   * Warm memory for the host's copies of BufferedData (TM-20): chunks go back to the pool when
   * the application consumes their bytes by copy (a zero-copy `recv` view takes its chunk out).
   */
  readonly recvPool: ChunkPool;
  logLimit = DEFAULT_OFFLOAD_LOG_LIMIT;
  knobs: ReceiveKnobs;
  policy: OffloadPolicy;

  #target: OffloadTarget | undefined;
  readonly #neighbors = new Map<string, NeighborObject>();
  readonly #paths = new Map<string, PathObject>();
  /** By connection id (`IntMap`s: a storm adds and drops 100,000 entries). */
  readonly #tcps = IntMap.sequential<OffloadedTcp>();
  readonly #byHandle = IntMap.sequential<OffloadedTcp>();
  /** The snapshot each upload's engine is woken from (`#adoptUploaded`), written anew each time. */
  readonly #uploadSnapshot = blankSnapshot();
  /** Connections that ended while off the host, kept so `recv` can drain them. */
  readonly #retired = new WeakMap<HostConn, OffloadedTcp>();
  readonly #neighborByHandle = new Map<number, NeighborObject>();
  /**
   * Paths and neighbors by the context slot the host passed in their block, so a completion
   * finds its object in O(1) (a connection's record is reached from its `TcpSlot`).
   */
  readonly #bySlot = new Map<OffloadContextSlot, PathObject | NeighborObject>();
  /** Connections whose offload waits for an object in flight (C-1), in request order. */
  readonly #waiting = new Set<HostConn>();
  /**
   * Work to run outside target upcalls, in order: a function, or a connection whose terminate
   * starts (`#startTerminate`; a storm queues 100,000 of them at once, and a closure each cost
   * about 60 bytes the garbage collector copied and promoted while they waited).
   */
  #deferred: (OffloadedTcp | (() => void))[] = [];
  /** NBLs to give back with MiniportTcpOffloadReceiveReturn. */
  #toReturn: NetBufferList[] = [];
  #nextHandle = 1;
  /** Whether returns of indicated NBLs are logged (BufferedData returns always are). */
  #logReturns = false;
  #paused = false;
  /** The target's NDIS_TCP_CONNECTION_OFFLOAD as last read (spec 3.3, CFG-5). */
  #caps: TcpConnectionOffloadCapabilities = FULL_CAPABILITIES;
  /** IP families the host has disabled for chimney offload (CFG-1). */
  readonly #disabledFamilies = new Set<4 | 6>();
  /** NDIS_STATUS_UPLOAD_ALL is being carried out: every offloaded connection goes (spec 16.6). */
  #uploadAll = false;
  /** Connections of a disabled or dropped family may still be off the host (CFG-1). */
  #familySweep = false;
  #flushing = false;
  /** Query results by root block. */
  readonly #queries = new Map<OffloadBlockList, QueryHandle>();

  constructor(stack: HostStack, ledger: BufferLedger, policy: OffloadPolicy = {}, knobs?: ReceiveKnobs) {
    this.stack = stack;
    this.ledger = ledger;
    const w = policy.terminateCallsInFlight;
    if (w !== undefined && (!Number.isSafeInteger(w) || w < 1))
      throw new UsageError(`terminateCallsInFlight must be a positive integer, not ${w}`);
    this.policy = policy;
    this.knobs = knobs ?? acceptAllKnobs({ nextU32: () => 0 });
    this.recvPool = new ChunkPool(
      RECV_CHUNK_BYTES,
      policy.recvPoolBytes ?? idlePoolBytes(stack.tcpConfig.recvBufferSize),
    );
    stack.attachOffload(this.#hooks());
    // The neighbor cache never evicts nor collects the neighbor of an offloaded connection.
    stack.neighbors.setInUse((ifIndex, ip) => this.#neighbors.has(`${ifIndex}|${ipKey(ip)}`));
  }

  /** Connects the target (the NIC) this manager offloads to. */
  attachTarget(target: OffloadTarget): void {
    if (this.#target !== undefined) throw new UsageError("an offload target is already attached");
    this.#target = target;
    this.#readCapabilities();
  }

  /** The target's context of an offloaded connection (the slot the target wrote, CTX-3). */
  contextOf(c: HostConn): MiniportOffloadContext | undefined {
    const ctx = this.#tcps.get(c.id)?.slot.context;
    return ctx === null || ctx === undefined ? undefined : ctx;
  }

  /** The capabilities the host currently offloads against (the target's, read at attach / resume). */
  get capabilities(): TcpConnectionOffloadCapabilities {
    return this.#caps;
  }

  /**
   * CFG-1: disables chimney offload of IP version `v`. Every connection using it is uploaded
   * first (terminates start now; `offload` refuses the family from this call on). Returns how many
   * connections were asked to upload.
   */
  disableFamily(v: 4 | 6): number {
    this.#disabledFamilies.add(v);
    return this.#uploadFamily(v, "capability-disabled");
  }

  /** Re-enables chimney offload of IP version `v` (if the target supports it). */
  enableFamily(v: 4 | 6): void {
    this.#disabledFamilies.delete(v);
  }

  /** Whether a connection of IP version `v` may be offloaded now (capabilities, CFG-1). */
  #familyOk(v: 4 | 6): boolean {
    return supportsFamily(this.#caps, v) && !this.#disabledFamilies.has(v);
  }

  /** Reads the target's capabilities; CFG-1: connections of a family it dropped are uploaded. */
  #readCapabilities(): void {
    const before = this.#caps;
    this.#caps = this.#target?.connectionOffloadCapabilities?.() ?? FULL_CAPABILITIES;
    for (const v of droppedFamilies(before, this.#caps)) this.#uploadFamily(v, "capability-dropped");
  }

  /**
   * Asks every connection of IP version `v` off the host to upload; one still being offloaded is
   * caught by a later flush (`#continueUploads`) once it is offloaded. Returns how many there were.
   */
  #uploadFamily(v: 4 | 6, why: string): number {
    let n = 0;
    for (const t of this.#tcps.values()) {
      if ((t.conn.remoteAddr.length === 4 ? 4 : 6) !== v || t.phase === "terminating") continue;
      if (t.phase === "offloaded") this.#wantTerminate(t, why);
      n++;
    }
    if (n > 0) this.#familySweep = true;
    return n;
  }

  /**
   * From every flush while needed: NDIS_STATUS_UPLOAD_ALL uploads every connection still off the
   * host (spec 16.6), and a disabled or dropped family uploads its connections (CFG-1), including
   * those whose offload was in flight when it started.
   */
  #continueUploads(): void {
    if (!this.#uploadAll && !this.#familySweep) return;
    let left = 0;
    for (const t of this.#tcps.values()) {
      const go = this.#uploadAll || !this.#familyOk(t.conn.remoteAddr.length === 4 ? 4 : 6);
      if (!go) continue;
      left++;
      if (t.phase === "offloaded") this.#wantTerminate(t, this.#uploadAll ? "upload-all" : "capability");
    }
    if (left === 0) {
      if (this.#uploadAll) this.#log(undefined, "UploadAll", "done");
      this.#uploadAll = false;
      this.#familySweep = false;
    }
  }

  /** Where `c` lives. */
  phaseOf(c: HostConn): HostConn["phase"] {
    return c.phase;
  }

  /** Connections currently off the host (offloading, offloaded or terminating). */
  get offloadedCount(): number {
    return this.#tcps.size;
  }

  /** Offloaded neighbor and path objects, for tests (TM-4 reference counts). */
  objects(): {
    neighbors: { ip: string; refs: number; phase: string; handle: NdisOffloadHandle }[];
    paths: { dst: string; refs: number; phase: string }[];
  } {
    return {
      neighbors: [...this.#neighbors.values()].map((n) => ({
        ip: ipToString(n.ip),
        refs: n.refs,
        phase: n.phase,
        handle: n.handle,
      })),
      paths: [...this.#paths.values()].map((p) => ({ dst: ipToString(p.dst), refs: p.refs, phase: p.phase })),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Policy: explicit operations

  /**
   * Starts offloading `c` (spec 7). Returns false, doing nothing, when it cannot be offloaded now:
   * not on the host, not in an ST-9 state (LAST-ACK and CLOSING included: the target asks for
   * the upload with UploadRequested once the connection reaches CLOSED or TIME-WAIT), no
   * target, or offloads paused (spec 16.6). When a neighbor or path it needs is in flight, or
   * the neighbor was invalidated and is not terminated yet, the request waits and true is returned.
   */
  offload(c: HostConn): boolean {
    if (this.#target === undefined || this.#paused) return false;
    // IO-2: a connection already off the host (offloading included) is never offloaded again.
    if (c.phase !== "host" || c.tcp === undefined || !c.announced) return false;
    // CFG-2 / CFG-1: never a family the target does not support or the host disabled; never
    // more connections than TcpConnectionOffloadCapacity.
    if (!this.#familyOk(c.remoteAddr.length === 4 ? 4 : 6)) return false;
    if (this.#tcps.size >= this.#caps.tcpConnectionOffloadCapacity) return false;
    if (!OFFLOADABLE_STATES.includes(toOffloadConnectionState(c.tcp.state))) return false;
    // Chimney's delegated state has no ECN fields (RFC 3168 state: the ECE echo, a CWR owed,
    // the reduction point): a target would drop them, so an ECN connection stays on the host.
    if (c.tcp.ecnNegotiated) return false;
    if (this.#waiting.has(c)) return true;
    const nkey = `${c.ifIndex}|${ipKey(c.nextHop)}`;
    const pkey = `${ipKey(c.localAddr)}|${ipKey(c.remoteAddr)}`;
    const n = this.#neighbors.get(nkey);
    const p = this.#paths.get(pkey);
    // An invalidated neighbor is not linked to again either: the target sends nothing for a
    // connection on it (IV-3) and asked for the uploads of those it had (IV-4), not of one linked
    // later, so that one would sit offloaded and silent, and keep the neighbor from being
    // terminated with its last connection (IV-8). It waits for a fresh neighbor object.
    if (
      (n !== undefined && (n.phase !== "offloaded" || n.invalidated === true)) ||
      (p !== undefined && p.phase !== "offloaded")
    ) {
      this.#waiting.add(c);
      return true;
    }
    const mac = this.stack.neighbors.get(c.ifIndex, c.nextHop)?.mac;
    if (mac === undefined) {
      // No resolved neighbor to offload. Resolution starts now: left to the connection's next
      // frame, it waited for that frame, and a connection just adopted from the Linux kernel
      // facing a closed window sends none until its persist timer (an offload refused for 1 s).
      this.stack.neighbors.resolve(this.stack.now, c.ifIndex, c.nextHop);
      return false;
    }
    this.#initiate(c, nkey, pkey, n, p, mac);
    return true;
  }

  /** Starts uploading `c` (host-initiated terminate, spec 11.3). Returns false if it is not offloaded. */
  terminate(c: HostConn, why = "host"): boolean {
    const t = this.#tcps.get(c.id);
    if (t === undefined || t.phase !== "offloaded") return false;
    this.#wantTerminate(t, why);
    return true;
  }

  /**
   * Uploads every connection through the neighbor `ip` (interface `ifIndex`), the paths and the
   * neighbor itself, in one TerminateOffload tree (a terminate storm, C-6 / TM-5). Paths whose
   * connections have all gone (their terminates crossed, so none took the path along) go in the
   * same tree, and so does the neighbor when it has no path left. Connections not yet offloaded
   * are left alone.
   */
  terminateNeighbor(ifIndex: number, ip: IpAddr): number {
    const n = this.#neighbors.get(`${ifIndex}|${ipKey(ip)}`);
    if (n === undefined || n.phase !== "offloaded") return 0;
    const tcps: OffloadedTcp[] = [];
    for (const t of this.#tcps.values()) {
      if (t.path.neighbor !== n) continue;
      if (t.phase !== "offloaded" || t.busyOps > 0) return 0; // C-5: retry later
      tcps.push(t);
    }
    const idle = [...this.#paths.values()].filter(
      (p) => p.neighbor === n && p.refs === 0 && p.phase === "offloaded",
    );
    this.#terminateTree(tcps, "storm", idle, n);
    return tcps.length;
  }

  /** Uploads everything (NDIS_STATUS_UPLOAD_ALL, or before the host shuts the target down). */
  terminateAll(): void {
    for (const n of [...this.#neighbors.values()]) {
      if (n.phase === "offloaded") this.terminateNeighbor(n.ifIndex, n.ip);
    }
  }

  /** Invalidates the neighbor `ip` (spec 10); the target asks for uploads, which follow. */
  invalidateNeighbor(ifIndex: number, ip: IpAddr): boolean {
    const n = this.#neighbors.get(`${ifIndex}|${ipKey(ip)}`);
    if (n === undefined || n.phase !== "offloaded") return false;
    // UP-9: no update reaches it from now on. IV-8: the target asks for the upload of every
    // connection on it (InvalidState, mandatory); the last one's terminate takes the neighbor too.
    n.invalidated = true;
    const b = newBlock<NeighborBlock>({
      layer: "neighbor",
      stateType: "NeighborOffloadState",
      miniportOffloadContext: n.slot,
      ndisOffloadHandle: n.handle,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
    });
    this.stats.invalidates++;
    this.#log(undefined, "InvalidateOffload", `neighbor ${ipToString(n.ip)}`);
    this.#requireTarget().invalidateOffload(b);
    return true;
  }

  /** Invalidates one connection's TCP object (the target should ask for its upload, IV-4). */
  invalidate(c: HostConn): boolean {
    const t = this.#tcps.get(c.id);
    if (t === undefined || t.phase !== "offloaded") return false;
    const b = this.#tcpRef(t, "TcpOffloadState");
    t.invalidated = true; // UP-9 / IV-8: never updated again; the InvalidState request uploads it
    t.busyOps++;
    this.stats.invalidates++;
    this.#log(c.id, "InvalidateOffload", `tcp ${c.toString()}`);
    this.#requireTarget().invalidateOffload(b);
    return true;
  }

  /**
   * Queries `c`'s delegated state (spec 8); the handle fills in on completion. QY-4: a query may
   * be issued while an earlier query of the same connection is still outstanding (they overlap).
   */
  query(c: HostConn): QueryHandle | undefined {
    const t = this.#tcps.get(c.id);
    if (t === undefined || t.phase !== "offloaded") return undefined;
    const b = this.#tcpRef(t, "TcpOffloadDelegatedState");
    const q: QueryHandle = { done: false, status: undefined, delegated: undefined };
    this.#queries.set(b, q);
    t.busyOps++;
    this.stats.queries++;
    this.#log(c.id, "QueryOffload", c.toString());
    this.#requireTarget().queryOffload(b);
    return q;
  }

  /**
   * Pushes changed cached TCP state (keep-alive, Nagle, TTL, receive window...) with an
   * UpdateOffload (ST-3, spec 9). `change` edits a copy of the current cached state.
   */
  updateTcp(c: HostConn, change: (cur: TcpCachedState) => Partial<TcpCachedState>): boolean {
    const t = this.#tcps.get(c.id);
    if (t === undefined || t.phase !== "offloaded" || t.busyOps > 0) return false; // C-4 / UP-7 / UP-8
    if (t.invalidated) return false; // UP-9: an invalidated object is never updated
    const next: TcpCachedState = Object.freeze({ ...t.cached, ...change(t.cached) });
    t.cached = Object.freeze({ ...next, keepAliveRestart: false, maxRtRestart: false, updateRcvWnd: false });
    const b = this.#tcpRef(t, "TcpOffloadCachedState");
    b.cachedState = next;
    t.busyOps++;
    this.stats.updates++;
    this.#log(c.id, "UpdateOffload", `tcp cached ${describeCached(next)}`);
    this.#requireTarget().updateOffload(b);
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // OffloadHost: completions

  /** NdisMInitiateOffloadComplete. */
  initiateOffloadComplete(root: OffloadBlockList): void {
    forEachInTree(root, (b) => {
      const ok = b.status === "NDIS_STATUS_SUCCESS" || b.status === "NDIS_STATUS_OFFLOAD_PARTIAL_SUCCESS";
      const slot = b.miniportOffloadContext;
      if (slot === null) return;
      if (b.layer === "neighbor") {
        const n = this.#neighborBySlot(slot);
        if (n === undefined || n.phase !== "offloading") return; // a linker
        if (ok && slot.context !== null) n.phase = "offloaded";
        else this.#dropNeighbor(n);
      } else if (b.layer === "path") {
        const p = this.#pathBySlot(slot);
        if (p === undefined || p.phase !== "offloading") return;
        if (ok && slot.context !== null) p.phase = "offloaded";
        else this.#dropPath(p);
      } else {
        const t = this.#tcpBySlot(slot);
        if (t === undefined) return;
        this.#onTcpInitiated(t, b, ok && slot.context !== null);
      }
    });
    this.#defer(() => {
      this.#retryWaiting();
    });
  }

  /** NdisMTerminateOffloadComplete. */
  terminateOffloadComplete(root: OffloadBlockList): void {
    if (this.#terminateCallsOut > 0) this.#terminateCallsOut--;
    if (this.#readyHead < this.#readyTerminates.length) this.#scheduleTerminates();
    const blocks = treeBlocks(root);
    // TCP blocks first (they reference their path), then paths, then neighbors. Indexed loops: a
    // storm's tree holds thousands of blocks, walked once, mostly before the code is optimized.
    const n = blocks.length;
    for (let i = 0; i < n; i++) {
      const b = blocks[i] as OffloadBlockList; // i < n
      if (b.layer !== "tcp" || b.miniportOffloadContext === null) continue;
      const t = this.#tcpBySlot(b.miniportOffloadContext);
      if (t !== undefined) this.#onTcpUploaded(t, b);
    }
    for (let i = 0; i < n; i++) {
      const b = blocks[i] as OffloadBlockList; // i < n
      if (b.layer === "path" && b.miniportOffloadContext !== null) {
        const p = this.#pathBySlot(b.miniportOffloadContext);
        if (p !== undefined) this.#dropPath(p);
      }
    }
    for (let i = 0; i < n; i++) {
      const b = blocks[i] as OffloadBlockList; // i < n
      if (b.layer === "neighbor" && b.miniportOffloadContext !== null) {
        const nb = this.#neighborBySlot(b.miniportOffloadContext);
        if (nb !== undefined) this.#dropNeighbor(nb);
      }
    }
    // The tree is the host's again and has been read: what the target wrote into it goes. A
    // storm's blocks were made long before their completion (old in the garbage collector's
    // eyes), and a dead old block still keeps the young states and NBLs written into it alive
    // through every minor collection until the next full one: about 1 KB a connection copied
    // and promoted for nothing.
    for (let i = 0; i < n; i++) {
      const b = blocks[i] as OffloadBlockList; // i < n
      b.constState = undefined;
      b.cachedState = undefined;
      b.delegatedState = undefined;
      b.netBufferListChain = null;
    }
    this.#defer(() => {
      this.#retryWaiting();
    });
  }

  /** NdisMUpdateOffloadComplete. */
  updateOffloadComplete(root: OffloadBlockList): void {
    this.#opDone(root, "UpdateOffload");
  }

  /** NdisMInvalidateOffloadComplete. */
  invalidateOffloadComplete(root: OffloadBlockList): void {
    this.#opDone(root, "InvalidateOffload");
  }

  /** NdisMQueryOffloadStateComplete. */
  queryOffloadComplete(root: OffloadBlockList): void {
    const q = this.#queries.get(root);
    if (q !== undefined) {
      this.#queries.delete(root);
      q.done = true;
      q.status = root.status;
      q.delegated = root.layer === "tcp" ? root.delegatedState : undefined;
    }
    this.#opDone(root, "QueryOffload");
  }

  /** NdisTcpOffloadSendComplete. */
  tcpOffloadSendComplete(chain: NetBufferList): void {
    const nbls = unlink(chain);
    const refill = new Set<OffloadedTcp>();
    for (const nbl of nbls) {
      const t = nbl.context as OffloadedTcp | undefined;
      assert(t instanceof OffloadedTcp, `send completion of NBL #${nbl.id} that the host did not send`);
      const i = t.sends.findIndex((e) => e.nbl === nbl);
      assert(i >= 0, `send completion of NBL #${nbl.id}, which is not outstanding`);
      const e = t.sends[i] as SendEntry; // i >= 0
      e.atTarget = false;
      const acked = nbl.bytesTransferred;
      this.stats.sendBytesCompleted += acked;
      t.bytesMoved += acked;
      if (acked > 0) {
        t.sendOutstanding -= acked;
        this.#event(t, { kind: "acked", bytes: acked });
      }
      if (nbl.status === "NDIS_STATUS_SUCCESS") {
        t.sends.splice(i, 1);
        nbl.next = null;
        this.ledger.free(nbl, "host", "NdisTcpOffloadSendComplete");
        if (!t.closeRequested)
          this.#event(t, { kind: "writable", space: Math.max(0, t.sendLimit - t.sendOutstanding) });
      } else if (nbl.status === "NDIS_STATUS_REQUEST_ABORTED") {
        // RST or abortive close: the data is not processed (spec 13.5).
        t.sends.splice(i, 1);
        t.sendOutstanding -= this.#nblBytes(nbl);
        nbl.next = null;
        this.ledger.free(nbl, "host", "NdisTcpOffloadSendComplete");
      }
      // UPLOAD_IN_PROGRESS: kept (host-owned) and re-queued on the host after the upload.
      refill.add(t);
    }
    // EV-4: room under the send backlog again: post held sends (C-9 / RQ-5: from the completion).
    for (const t of refill) this.#postHeldSends(t);
  }

  /** NdisTcpOffloadReceiveComplete. */
  tcpOffloadReceiveComplete(chain: NetBufferList): void {
    for (const nbl of unlink(chain)) {
      const t = nbl.context as OffloadedTcp | undefined;
      assert(t instanceof OffloadedTcp, `receive completion of NBL #${nbl.id} the host did not post`);
      const i = t.posted.findIndex((p) => p.nbl === nbl);
      assert(i === 0, `receive completion of NBL #${nbl.id} out of FIFO order (RQ-3)`);
      const p = t.posted.shift() as PostedRecv; // i === 0
      const n = p.prefill + nbl.bytesTransferred;
      this.stats.postedBytesCompleted += nbl.bytesTransferred;
      nbl.next = null;
      this.ledger.free(nbl, "host", "NdisTcpOffloadReceiveComplete");
      if (n > 0) this.#enqueueRecv(t, p.buf.subarray(0, n));
      if (nbl.bytesTransferred > 0) t.refused = false;
    }
  }

  /** NdisTcpOffloadReceiveHandler: consume all, a prefix or nothing, per the receive knobs. */
  tcpOffloadReceiveIndicate(handle: NdisOffloadHandle, nbl: NetBufferList): ReceiveIndicateResult {
    const t = this.#byHandle.get(handle);
    assert(t !== undefined, `indication on unknown handle ${handle}`);
    assert(nbl.next === null, "an indication is a single NBL (RI-1)");
    this.stats.indications++;
    const data = this.ledger.view(nbl, "host", "NdisTcpOffloadReceiveHandler");
    const len = chainLength(data);
    let take: number;
    const k = this.knobs;
    if (t.recvBytes >= k.queueLimit || t.aborted !== undefined) take = 0;
    else {
      const total = k.acceptAll + k.acceptPrefix + k.refuse;
      const r = total <= 0 ? 0 : (k.random.nextU32() / 2 ** 32) * total;
      if (r < k.acceptAll) take = len;
      else if (r < k.acceptAll + k.acceptPrefix) take = len <= 1 ? 0 : 1 + (k.random.nextU32() % (len - 1));
      else take = 0;
      take = Math.min(take, Math.max(0, k.queueLimit - t.recvBytes));
    }
    const tdi = k.terminateDuringIndication ?? 0;
    if (tdi > 0 && k.random.nextU32() / 2 ** 32 < tdi) this.terminate(t.conn, "mid-indication");
    if (take > 0) {
      if (this.policy.zeroCopyIndications === true) {
        // The target never reuses this memory: the application gets views of it.
        forEachSegment(data, 0, take, (bytes, s, e) => {
          this.#enqueueRecv(t, s === 0 && e === bytes.length ? bytes : bytes.subarray(s, e));
        });
      } else {
        const copy = new Uint8Array(take);
        copyOut(data, 0, copy, 0, take);
        this.#enqueueRecv(t, copy);
      }
      this.stats.indicatedBytesAccepted += take;
    }
    if (take === len) {
      this.#toReturn.push(nbl); // returned from flush (MiniportTcpOffloadReceiveReturn)
      this.#log(t.conn.id, "ReceiveIndicate", `${len} bytes accepted`);
      return { status: "NDIS_STATUS_SUCCESS", bytesConsumed: len };
    }
    // Refused (all or the rest): the target owns the NBL again at once (spec 14.4).
    this.ledger.return(nbl, "host", "NdisTcpOffloadReceiveHandler");
    this.stats.refusals++;
    t.refused = true;
    this.#log(t.conn.id, "ReceiveIndicate", `${len} bytes, ${take} accepted`);
    // RI-3: indications stay off until the host posts; it does so from `flush` (or after a read).
    this.#defer(() => {
      this.#maybePost(t);
    });
    if (take === 0) return { status: "NDIS_STATUS_OFFLOAD_DATA_NOT_ACCEPTED", bytesConsumed: 0 };
    return { status: "NDIS_STATUS_OFFLOAD_DATA_PARTIALLY_ACCEPTED", bytesConsumed: take };
  }

  /** NdisTcpOffloadDisconnectComplete. */
  tcpOffloadDisconnectComplete(nbl: NetBufferList): void {
    const t = nbl.context as OffloadedTcp | undefined;
    assert(t instanceof OffloadedTcp, `disconnect completion of NBL #${nbl.id} the host did not send`);
    const status = nbl.status;
    nbl.next = null;
    this.ledger.free(nbl, "host", "NdisTcpOffloadDisconnectComplete");
    if (t.disconnect === nbl) t.disconnect = undefined;
    this.#log(t.conn.id, "DisconnectComplete", status);
    if (t.aborted !== undefined) {
      this.#wantTerminate(t, "aborted");
      return;
    }
    if (status === "NDIS_STATUS_SUCCESS") {
      t.disconnectDone = true;
      if (t.peerFin) this.#wantTerminate(t, "closed");
    } else {
      // Not completed (upload in progress, or aborted): the host sends the FIN after the upload.
      t.disconnectDone = false;
    }
  }

  /** NdisTcpOffloadForwardComplete. */
  tcpOffloadForwardComplete(chain: NetBufferList): void {
    for (const nbl of unlink(chain)) {
      const t = nbl.context as OffloadedTcp | undefined;
      assert(t instanceof OffloadedTcp, `forward completion of NBL #${nbl.id} the host did not send`);
      const seg = t.forwarded.get(nbl.id);
      t.forwarded.delete(nbl.id);
      // Upload in progress: the host queues the segments and processes them itself (FW-5).
      if (nbl.status === "NDIS_STATUS_UPLOAD_IN_PROGRESS" && seg !== undefined) t.forwardBack.push(seg);
      nbl.next = null;
      this.ledger.free(nbl, "host", "NdisTcpOffloadForwardComplete");
    }
  }

  /** NdisTcpOffloadEventHandler. */
  tcpOffloadEvent(handle: NdisOffloadHandle, event: TcpOffloadEvent): void {
    const t = this.#byHandle.get(handle);
    if (t === undefined) return;
    this.#log(t.conn.id, event.type, event.type === "TcpIndicateRetrieve" ? event.reason : "");
    switch (event.type) {
      case "TcpIndicateSendBacklogChange":
        // EV-4 / ST-4: keep this many send bytes posted from now on; a larger value posts more.
        t.sendBacklog = event.sendBacklog;
        this.#postHeldSends(t);
        return;
      case "TcpIndicateDisconnect":
        if (!t.peerFin) this.#event(t, { kind: "peer-fin" });
        t.peerFin = true;
        if (t.disconnectDone) this.#wantTerminate(t, "closed");
        return;
      case "TcpIndicateRetrieve":
        // IV-8: InvalidState is mandatory, so every invalidated connection is terminated.
        t.retrieveReason = event.reason;
        if (MANDATORY_UPLOAD_REASONS.includes(event.reason) || this.policy.honorOptionalRetrieve === true) {
          this.#wantTerminate(t, event.reason);
        }
        return;
      case "TcpIndicateAbort":
        this.#dropHeldSends(t); // the peer reset: nothing more is sent (spec 13.5)
        if (t.aborted === undefined) {
          t.aborted = "reset";
          this.#closed(t, { kind: "closed", reason: "reset", error: "ECONNRESET" });
        }
        this.#wantTerminate(t, "abort"); // RST-2
        return;
    }
  }

  /** NdisMOffloadEventIndicate(NeighborReachabilityQuery): answer with HRD (spec 16.5). */
  neighborReachabilityQuery(root: OffloadBlockList): number {
    this.stats.reachabilityQueries++;
    const slot = root.miniportOffloadContext;
    const n = slot === null ? undefined : this.#neighborBySlot(slot);
    const byHandle =
      root.ndisOffloadHandle === undefined ? undefined : this.#neighborByHandle.get(root.ndisOffloadHandle);
    const obj = n ?? byHandle;
    if (obj === undefined) return 0;
    const e = this.stack.neighbors.get(obj.ifIndex, obj.ip);
    if (e === undefined || e.state !== "REACHABLE") return 0; // stale: HRD 0 (spec 16.5)
    return Math.max(1, this.stack.now - e.confirmedAt);
  }

  /** NdisMIndicateStatusEx (spec 16.6). */
  indicateStatus(status: OffloadStatusIndication): void {
    this.#log(undefined, "IndicateStatus", status);
    switch (status) {
      case "NDIS_STATUS_OFFLOAD_PAUSE":
        this.#paused = true;
        return;
      case "NDIS_STATUS_OFFLOAD_RESUME":
        // CFG-5: the target may report new capabilities; re-read them before offloading again.
        this.#paused = false;
        this.#uploadAll = false;
        this.#readCapabilities();
        return;
      case "NDIS_STATUS_UPLOAD_ALL":
        // Spec 16.6: stop offloading, terminate everything (now, and any connection still being
        // offloaded once it is; `#continueUploadAll` runs from every flush until none is left).
        this.#paused = true;
        this.#uploadAll = true;
        this.#defer(() => {
          this.terminateAll();
        });
        return;
    }
  }

  /** NdisMIndicateReceiveNetBufferLists: a frame up the non-offload path. */
  indicateReceive(frame: Uint8Array): void {
    this.stack.handleFrame(this.stack.now, 0, frame);
  }

  // -------------------------------------------------------------------------------------------
  // Initiate

  /**
   * InitiateOffload of `c` (spec 7): drain and export the engine, build the tree (reusing
   * offloaded neighbor and path objects through linkers), record the connection, and call the
   * target with the send data transferred and BufferedData lent.
   */
  #initiate(
    c: HostConn,
    nkey: string,
    pkey: string,
    n0: NeighborObject | undefined,
    p0: PathObject | undefined,
    mac: Uint8Array,
  ): void {
    const target = this.#requireTarget();
    const engine = c.engine;
    const snap = this.#exportForOffload(c, engine);
    if (snap === undefined) return;
    const { n, nBlock } = this.#neighborForInitiate(c, nkey, n0, p0, mac);
    const { p, pBlock } = this.#pathForInitiate(c, pkey, n, p0);
    const t = this.#recordOffloading(c, p, snap, engine);
    const { tBlock, sendChain, bufChain, bufLen } = this.#tcpBlockForInitiate(t, snap);
    pBlock.dependentBlockList = tBlock;
    let root: OffloadBlockList = pBlock;
    if (nBlock !== undefined) {
      nBlock.dependentBlockList = pBlock;
      root = nBlock;
    }
    this.stats.initiates++;
    this.stats.bufferedDataOut += bufLen;
    const dl = snap.delegated;
    this.#log(
      c.id,
      "InitiateOffload",
      `${c.toString()} ${dl.state} sndUna=${dl.sndUna} sndNxt=${dl.sndNxt} ` +
        `sndMax=${dl.sndMax} rcvNxt=${dl.rcvNxt} sendData=${t.sendOutstanding}B ` +
        `bufferedData=${bufLen}B tree=${treeBlocks(root)
          .map((b) => `${b.layer}:${b.miniportOffloadContext?.context === null ? "new" : "linker"}`)
          .join(",")}`,
    );
    if (sendChain !== null) this.ledger.transfer(sendChain, "host", "target", OP_INIT);
    const call = () => {
      target.initiateOffload(root);
    };
    if (bufChain !== null) {
      this.ledger.lend(bufChain, "host", "target", OP_INIT, call); // IO-19: the target copies now
      this.ledger.free(bufChain, "host", OP_INIT); // IO-21 (on failure the parked engine still has it)
    } else {
      call();
    }
  }

  /**
   * Initiate, step 1: drain the engine (owed segments go out and events reach the application
   * first, spec 7.2), then export it and take it off the stack. Undefined when draining left
   * the connection in a state that cannot be offloaded.
   */
  #exportForOffload(c: HostConn, engine: TcpConnection): TcpSnapshot | undefined {
    const now = this.stack.now;
    for (let seg = engine.pollTransmit(now); seg !== undefined; seg = engine.pollTransmit(now)) {
      this.#sendRaw(c, seg);
    }
    // TM-11 on the host side: a delayed ACK the engine still owes goes out now, not with the target.
    const owed = engine.flushAck(now);
    if (owed !== undefined) this.#sendRaw(c, owed);
    for (let ev = engine.pollEvent(); ev !== undefined; ev = engine.pollEvent())
      this.stack.deliverEvent(c, ev);
    if (!OFFLOADABLE_STATES.includes(toOffloadConnectionState(engine.state))) return undefined;
    const snap = engine.exportState(now);
    this.stack.releaseEngine(c, "offloading");
    return snap;
  }

  /**
   * Initiate, step 2: the neighbor object (new, with a full block; already offloaded, with a
   * linker block when the path is new, TR-6; no block when the path is reused too).
   */
  #neighborForInitiate(
    c: HostConn,
    nkey: string,
    n0: NeighborObject | undefined,
    p0: PathObject | undefined,
    mac: Uint8Array,
  ): { n: NeighborObject; nBlock: NeighborBlock | undefined } {
    if (n0 !== undefined) return { n: n0, nBlock: p0 === undefined ? neighborLinker(n0) : undefined };
    const n: NeighborObject = {
      key: nkey,
      ifIndex: c.ifIndex,
      ip: c.nextHop,
      slot: { context: null },
      handle: this.#newHandle(),
      phase: "offloading",
      refs: 0,
      mac,
    };
    this.#neighbors.set(nkey, n);
    this.#neighborByHandle.set(n.handle, n);
    this.#bySlot.set(n.slot, n);
    const e = this.stack.neighbors.get(c.ifIndex, c.nextHop);
    const hrd = Duration.fromMicros(e === undefined ? 0 : Math.max(0, this.stack.now - e.confirmedAt));
    const nBlock = newBlock<NeighborBlock>({
      layer: "neighbor",
      stateType: "NeighborOffloadState",
      miniportOffloadContext: n.slot,
      ndisOffloadHandle: n.handle,
      constState: { dlSourceAddress: MAC_ZERO, vlanId: 0 },
      cachedState: { dlDestinationAddress: mac, hostReachabilityDelta: hrd },
      delegatedState: { nicReachabilityDelta: hrd },
    });
    return { n, nBlock };
  }

  /** Initiate, step 3: the path object (new, with a full block, or reused through a linker). */
  #pathForInitiate(
    c: HostConn,
    pkey: string,
    n: NeighborObject,
    p0: PathObject | undefined,
  ): { p: PathObject; pBlock: PathBlock } {
    const stateType = c.remoteAddr.length === 4 ? "Ip4OffloadState" : "Ip6OffloadState";
    if (p0 !== undefined) {
      p0.refs++;
      return { p: p0, pBlock: pathLinker(p0, stateType) };
    }
    const p: PathObject = {
      key: pkey,
      src: c.localAddr,
      dst: c.remoteAddr,
      neighbor: n,
      slot: { context: null },
      phase: "offloading",
      refs: 1,
      pmtu: this.stack.pathMtuOf(c),
    };
    this.#paths.set(pkey, p);
    this.#bySlot.set(p.slot, p);
    n.refs++;
    const pBlock = newBlock<PathBlock>({
      layer: "path",
      stateType,
      miniportOffloadContext: p.slot,
      ndisOffloadHandle: undefined,
      constState: { sourceAddress: c.localAddr, destinationAddress: c.remoteAddr },
      cachedState: { pathMtu: p.pmtu },
      delegatedState: { headerOnly: true },
    });
    return { p, pBlock };
  }

  /** Initiate, step 4: the connection's record, with the engine parked until completion (IO-10). */
  #recordOffloading(c: HostConn, p: PathObject, snap: TcpSnapshot, engine: TcpConnection): OffloadedTcp {
    const cached = cachedStateFromEngine(snap.cachedState, {
      ttlOrHopLimit: this.stack.ttl,
      rcvIndicationSize: this.policy.rcvIndicationSize ?? 0,
    });
    const t = new OffloadedTcp(c, p, this.#newHandle(), snap, cached);
    const dl = snap.delegated;
    t.parked = engine;
    t.mustPost = dl.bufferedData.length > 0;
    t.peerFin = dl.finReceived; // the application already heard of it
    if (t.peerFin) t.heldAtTarget = dl.bufferedData.reduce((n, b) => n + b.length, 0);
    // A FIN already queued on the host goes with the state: no disconnect request for it; the
    // target asks for the upload once the connection is done (EV-3).
    if (dl.finQueued) {
      t.closeRequested = true;
      t.finBeforeOffload = true;
      t.disconnectDone = dl.state === "FIN-WAIT-2";
    }
    this.#tcps.set(c.id, t);
    this.#byHandle.set(t.handle, t);
    t.slot.live = true;
    return t;
  }

  /**
   * Initiate, step 5: the TCP block. Send data from SndUna on becomes one NBL per chunk,
   * host-owned until the call (spec 7.6); undelivered receive data becomes BufferedData NBLs.
   */
  #tcpBlockForInitiate(
    t: OffloadedTcp,
    snap: TcpSnapshot,
  ): { tBlock: TcpBlock; sendChain: NetBufferList | null; bufChain: NetBufferList | null; bufLen: number } {
    const sendNbls = snap.delegated.sendData.map((chunk) => {
      const nbl = this.ledger.alloc("host", fromArrays([chunk]), OP_INIT);
      nbl.context = t;
      return nbl;
    });
    for (const nbl of sendNbls) {
      t.sends.push({ nbl, atTarget: true });
      t.sendOutstanding += chunk0(nbl, this.ledger);
    }
    const sendChain = linkNbls(sendNbls);
    const buffered = snap.delegated.bufferedData;
    const bufChain =
      buffered.length === 0
        ? null
        : linkNbls(buffered.map((b) => this.ledger.alloc("host", fromArrays([b]), OP_INIT)));
    const delegated: TcpDelegatedState = Object.freeze(
      delegatedStateFromEngine(snap.delegated, {
        sendDataHead: sendChain,
        sendDataTail: sendNbls[sendNbls.length - 1] ?? null,
        bufferedData: bufChain,
      }),
    );
    const tBlock = newBlock<TcpBlock>({
      layer: "tcp",
      stateType: "TcpOffloadState",
      miniportOffloadContext: t.slot,
      ndisOffloadHandle: t.handle,
      constState: t.chimConst,
      cachedState: t.cached,
      delegatedState: delegated,
      netBufferListChain: sendChain,
    });
    return { tBlock, sendChain, bufChain, bufLen: buffered.reduce((s, b) => s + b.length, 0) };
  }

  #onTcpInitiated(t: OffloadedTcp, b: OffloadBlockList, ok: boolean): void {
    const c = t.conn;
    if (ok) {
      this.stats.initiateSuccesses++;
      t.phase = "offloaded";
      t.dormant = t.parked;
      t.parked = undefined;
      t.dormant?.hibernate();
      this.stack.setPhase(c, "offloaded");
      this.#log(c.id, "InitiateOffloadComplete", `success context=${String(t.slot.context)}`);
      // Held segments go to the target (IO-4); held sends and a held close follow.
      this.#defer(() => {
        this.#afterOffloaded(t);
      });
      return;
    }
    this.stats.initiateFailures++;
    this.#log(c.id, "InitiateOffloadComplete", `failed ${String(b.status)}`);
    // IO-10: the send data is still the host's; the parked engine runs on.
    for (const e of t.sends) {
      const owner = this.ledger.ownerOf(e.nbl);
      if (owner === "target") this.ledger.return(e.nbl, "target", "InitiateOffloadFailed");
      e.nbl.next = null;
      this.ledger.free(e.nbl, "host", "InitiateOffloadFailed");
    }
    t.sends.length = 0;
    this.#unlinkTcp(t);
    const engine = t.parked;
    assert(engine !== undefined, "a failed offload has its parked engine");
    this.stack.adoptEngine(c, engine);
    const now = this.stack.now;
    for (const seg of t.held) this.stack.deliverSegment(now, c, seg);
    for (const d of t.heldSends) this.#engineSend(c, d);
    if (t.closeRequested) engine.close();
    if (t.aborted === "local") engine.abort();
    this.stack.touch(c);
  }

  #afterOffloaded(t: OffloadedTcp): void {
    if (t.phase !== "offloaded") return;
    const target = this.#requireTarget();
    const ctx = this.#ctx(t);
    if (t.held.length > 0) {
      const nbls = t.held.map((seg) => {
        const nbl = this.ledger.alloc("host", fromArrays([this.#segmentBytes(t, seg)]), OP_FWD);
        nbl.context = t;
        t.forwarded.set(nbl.id, seg);
        return nbl;
      });
      t.held.length = 0;
      const chain = linkNbls(nbls) as NetBufferList; // at least one
      this.stats.forwards += nbls.length;
      this.ledger.transfer(chain, "host", "target", OP_FWD);
      target.tcpOffloadForward(ctx, chain);
    }
    if (t.aborted === "local") {
      this.#dropHeldSends(t);
      this.#sendDisconnect(t, "abortive");
    } else this.#postHeldSends(t); // and the graceful disconnect after them
    this.#maybePost(t);
  }

  // -------------------------------------------------------------------------------------------
  // Terminate

  #wantTerminate(t: OffloadedTcp, why: string): void {
    if (t.wantTerminate !== undefined || t.phase === "terminating") return;
    t.wantTerminate = why;
    this.#deferred.push(t);
  }

  #startTerminate(t: OffloadedTcp): void {
    if (t.phase !== "offloaded") return; // still offloading: retried after its completion
    // C-5 / TM-7: wait for outstanding query/update/invalidate requests, and for a graceful
    // disconnect to complete (its FIN is on its way), except on a connection the target asked to
    // upload for InvalidState: it sends nothing more (IV-3), so a FIN not sent yet never goes
    // and the disconnect would never complete. The terminate completes it (TM-9, with
    // UPLOAD_IN_PROGRESS) and the host sends the FIN after the upload.
    const disconnecting = t.disconnect !== undefined && t.retrieveReason !== "InvalidState";
    if (t.busyOps > 0 || disconnecting) {
      this.#deferred.push(t); // tried again next round
      return;
    }
    // Connections ready in one turn go in one TerminateOffload tree, up to TERMINATE_BATCH
    // (a storm makes a call per batch, not per connection, and the target works on one batch
    // while the host takes the previous one in); their paths and neighbors go with them where
    // no dependent stays (C-6).
    this.#readyTerminates.push(t);
    this.#scheduleTerminates();
  }

  /** Issues the ready terminates in the next deferred turn (once however many are ready). */
  #scheduleTerminates(): void {
    if (this.#terminatesScheduled) return;
    this.#terminatesScheduled = true;
    this.#defer(() => {
      this.#terminatesScheduled = false;
      this.#issueTerminates();
    });
  }

  /**
   * Ready terminates, `TERMINATE_BATCH` to a call, while fewer than `TERMINATE_CALLS_IN_FLIGHT`
   * calls are out; the rest wait for completions (`terminateOffloadComplete` schedules more).
   * A connection no longer offloaded by then (closed, uploaded another way) is skipped.
   */
  #issueTerminates(): void {
    const ready = this.#readyTerminates;
    let i = this.#readyHead;
    const window = this.policy.terminateCallsInFlight ?? TERMINATE_CALLS_IN_FLIGHT;
    while (i < ready.length && this.#terminateCallsOut < window) {
      const batch: OffloadedTcp[] = [];
      while (i < ready.length && batch.length < TERMINATE_BATCH) {
        const r = ready[i++] as OffloadedTcp; // i < length
        if (r.phase === "offloaded") batch.push(r);
      }
      if (batch.length > 0) this.#terminateTree(batch, batch[0]?.wantTerminate ?? "host");
    }
    if (i >= ready.length) {
      this.#readyTerminates = [];
      this.#readyHead = 0;
    } else if (i > 4096 && i * 2 > ready.length) {
      this.#readyTerminates = ready.slice(i);
      this.#readyHead = 0;
    } else this.#readyHead = i;
  }

  /** One TerminateOffload tree for `tcps`, including each path and neighbor left without dependents. */
  /**
   * One TerminateOffload of `tcps`, with their paths and neighbors where every dependent goes
   * (C-6); `idlePaths` (no connection left) go too, and neighbor `idle` when it has no path left.
   */
  #terminateTree(
    tcps: OffloadedTcp[],
    why: string,
    idlePaths: readonly PathObject[] = [],
    idle?: NeighborObject,
  ): void {
    const target = this.#requireTarget();
    const byPath = new Map<PathObject, OffloadedTcp[]>();
    for (const p of idlePaths) byPath.set(p, []);
    for (const t of tcps) {
      t.phase = "terminating";
      t.wantTerminate ??= why;
      this.stack.setPhase(t.conn, "terminating");
      const list = byPath.get(t.path) ?? [];
      list.push(t);
      byPath.set(t.path, list);
    }
    const byNeighbor = new Map<NeighborObject, PathBlock[]>();
    const roots: OffloadBlockList[] = [];
    for (const [p, list] of byPath) {
      const tBlocks = list.map((t) => this.#tcpRef(t, "TcpOffloadDelegatedState"));
      linkBlocks(tBlocks);
      const livePaths = list.length === p.refs; // every dependent goes: the path goes too (C-6)
      if (!livePaths) {
        for (const tb of tBlocks) roots.push(tb); // a loop: a storm's spread could overflow the stack
        continue;
      }
      p.phase = "terminating";
      const pb = newBlock<PathBlock>({
        layer: "path",
        stateType: p.dst.length === 4 ? "Ip4OffloadDelegatedState" : "Ip6OffloadDelegatedState",
        miniportOffloadContext: p.slot,
        ndisOffloadHandle: undefined,
        constState: undefined,
        cachedState: undefined,
        delegatedState: undefined,
        dependentBlockList: tBlocks[0] ?? null,
      });
      const arr = byNeighbor.get(p.neighbor) ?? [];
      arr.push(pb);
      byNeighbor.set(p.neighbor, arr);
    }
    for (const [n, pbs] of byNeighbor) {
      linkBlocks(pbs);
      if (pbs.length === n.refs) {
        n.phase = "terminating";
        roots.push(
          newBlock<NeighborBlock>({
            layer: "neighbor",
            stateType: "NeighborOffloadDelegatedState",
            miniportOffloadContext: n.slot,
            ndisOffloadHandle: n.handle,
            constState: undefined,
            cachedState: undefined,
            delegatedState: undefined,
            dependentBlockList: pbs[0] ?? null,
          }),
        );
      } else {
        // The neighbor stays: a placeholder carries its paths (TR-3).
        roots.push(
          newBlock<NeighborBlock>({
            layer: "neighbor",
            stateType: "NeighborOffloadState",
            miniportOffloadContext: null,
            ndisOffloadHandle: undefined,
            constState: undefined,
            cachedState: undefined,
            delegatedState: undefined,
            dependentBlockList: pbs[0] ?? null,
          }),
        );
      }
    }
    if (idle !== undefined && idle.refs === 0 && idle.phase === "offloaded") {
      // A neighbor no path uses any more: it goes alone.
      idle.phase = "terminating";
      roots.push(
        newBlock<NeighborBlock>({
          layer: "neighbor",
          stateType: "NeighborOffloadDelegatedState",
          miniportOffloadContext: idle.slot,
          ndisOffloadHandle: idle.handle,
          constState: undefined,
          cachedState: undefined,
          delegatedState: undefined,
          dependentBlockList: null,
        }),
      );
    }
    if (roots.length === 0) return;
    // Several roots of one layer chain through nextBlock; mixed layers go in separate calls.
    const groups = new Map<string, OffloadBlockList[]>();
    for (const r of roots) {
      const g = groups.get(r.layer) ?? [];
      g.push(r);
      groups.set(r.layer, g);
    }
    this.stats.terminates += tcps.length;
    for (const g of groups.values()) {
      this.stats.terminateCalls++;
      linkBlocks(g);
      const root = g[0] as OffloadBlockList; // groups are non-empty
      this.#log(
        tcps.length === 1 ? tcps[0]?.conn.id : undefined,
        "TerminateOffload",
        `${why}: ${treeBlocks(root)
          .map((b) => b.layer)
          .join(",")}`,
      );
      this.#terminateCallsOut++;
      target.terminateOffload(root);
    }
  }

  /**
   * TerminateOffloadComplete for one connection (spec 11): reclaim the send data, absorb the
   * BufferedData behind the host's own queue, then either retire the connection (state lost, or
   * nothing left to run) or adopt a new engine built from the delegated state.
   */
  #onTcpUploaded(t: OffloadedTcp, b: OffloadBlockList): void {
    assert(b.layer === "tcp", "a TCP block");
    const c = t.conn;
    const d = b.delegatedState;
    this.#unlinkTcp(t);
    const { sendData, sendBytes } = this.#reclaimSends(t, b.netBufferListChain);
    const { buffered, bufferedIn } = this.#absorbBufferedData(t, d?.bufferedData ?? null);
    assert(t.posted.length === 0, "receive requests outstanding after terminate (TM-9)");
    const ok = b.status === "NDIS_STATUS_SUCCESS" && d !== undefined;
    if (ok) this.#logEntry(new UploadLogEntry(this.stack.now, c.id, d, sendBytes, bufferedIn));
    else this.#log(c.id, "TerminateOffloadComplete", `failed ${String(b.status)}`);
    if (!ok || d.state === "TcpConnectionClosed" || t.aborted !== undefined) this.#retire(t, ok, buffered);
    else this.#adoptUploaded(t, d, sendData, buffered);
  }

  /**
   * Upload, step 1: every send NBL the host still tracks, in order, from its current data start
   * (returned in the chain, or completed with UPLOAD_IN_PROGRESS). The host's own bytes come
   * back as views, no copy; the NBLs are freed.
   */
  #reclaimSends(
    t: OffloadedTcp,
    returned: NetBufferList | null,
  ): { sendData: Uint8Array[]; sendBytes: number } {
    if (returned !== null) {
      for (const nbl of unlink(returned)) {
        const e = t.sends.find((s) => s.nbl === nbl);
        assert(e !== undefined, `terminate returned NBL #${nbl.id}, which the host did not send`);
        e.atTarget = false;
      }
    }
    const sendData: Uint8Array[] = [];
    let sendBytes = 0;
    for (const e of t.sends) {
      assert(!e.atTarget, `NBL #${e.nbl.id} neither completed nor returned at terminate (TM-9)`);
      for (const piece of segments(this.ledger.view(e.nbl, "host", "TerminateOffload"))) {
        sendData.push(piece);
        sendBytes += piece.length;
      }
      e.nbl.next = null;
      this.ledger.free(e.nbl, "host", "TerminateOffload");
    }
    t.sends.length = 0;
    return { sendData, sendBytes };
  }

  /**
   * Upload, step 2: the receive data in order, the host queue first, then BufferedData (TM-20):
   * one copy, one `set` per MDL piece, into warm pool chunks (fresh memory would fault every page
   * on first touch; the chunks return to the pool as the bytes are read). The BufferedData NBLs
   * are queued for MiniportTcpOffloadReceiveReturn.
   */
  #absorbBufferedData(
    t: OffloadedTcp,
    chain: NetBufferList | null,
  ): { buffered: Uint8Array[]; bufferedIn: number } {
    let buffered: Uint8Array[] = t.recvQ.length === 0 ? [] : t.recvQ.slice();
    t.recvQ.length = 0;
    t.recvBytes = 0;
    if (chain === null) return { buffered, bufferedIn: 0 };
    const view = this.ledger.view(chain, "host", "TerminateOffload");
    const bufferedIn = chainLength(view);
    if (bufferedIn > 0) {
      if (buffered.length > 0) this.stats.uploadsBufferedBothSides++;
      if (this.policy.zeroCopyIndications === true) {
        // The target never reuses this memory: the application gets views of it, and the NBLs
        // still go back at once.
        const pieces = segments(view);
        if (buffered.length === 0) buffered = pieces;
        else for (const piece of pieces) buffered.push(piece);
      } else {
        const filler = new ChunkFiller(this.recvPool, bufferedIn);
        copyChainInto(view, filler);
        const copied = filler.finish(); // the filler's own list, discarded with it
        if (buffered.length === 0) buffered = copied;
        else for (const x of copied) buffered.push(x);
      }
    }
    this.stats.bufferedDataIn += bufferedIn;
    this.#toReturn.push(chain);
    this.#logReturns = true;
    return { buffered, bufferedIn };
  }

  /**
   * Upload, step 3a: state lost, or nothing left to run: the connection ends here. What the
   * application has not read stays readable (as on a closed host socket).
   */
  #retire(t: OffloadedTcp, ok: boolean, buffered: Uint8Array[]): void {
    const c = t.conn;
    this.#retired.set(c, t);
    t.closeRequested = true;
    // The manager's queue hands out views: pool chunks leave the pool.
    for (const x of buffered) if (this.recvPool.owns(x)) this.recvPool.detach(x);
    if (t.aborted === undefined) {
      for (const x of buffered) t.recvQ.push(x);
      t.recvBytes = buffered.reduce((s, x) => s + x.length, 0);
      t.heldAtTarget = 0;
      if (t.recvBytes > 0) this.#event(t, { kind: "readable", bytes: t.recvBytes });
      // CLOSED after both FINs is an orderly close. CLOSED otherwise means the target ended the
      // connection: its timers gave up (TimeoutExpiration: ETIMEDOUT), or something else killed
      // it, such as an in-order SYN (NS-2), which RFC 9293 3.10.7.4 reports as a reset.
      const orderly = ok && t.peerFin && (t.disconnectDone || t.finBeforeOffload);
      if (orderly) this.#closed(t, { kind: "closed", reason: "fin", error: undefined });
      else if (ok && t.retrieveReason === "TimeoutExpiration")
        this.#closed(t, { kind: "closed", reason: "timeout", error: "ETIMEDOUT" });
      else this.#closed(t, { kind: "closed", reason: "aborted", error: "ECONNRESET" });
    }
    this.stack.forget(c);
  }

  /**
   * Upload, step 3b: a new engine from the delegated state (the shared conversion,
   * src/chimney/tcp-state.ts, plus what the host knows itself), options changed meanwhile,
   * then segments and sends held during the upload (TM-24) and a close still owed.
   */
  #adoptUploaded(
    t: OffloadedTcp,
    d: TcpDelegatedState,
    sendData: readonly Uint8Array[],
    buffered: readonly Uint8Array[],
  ): void {
    const c = t.conn;
    const now = this.stack.now;
    // One snapshot serves every upload: the engine reads it at once and keeps none of it.
    const snap = snapshotFromOffloadState(
      { constState: t.chimConst, cachedState: t.cached, delegatedState: d },
      sendData,
      buffered,
      {
        cfg: this.stack.tcpConfig,
        pathMtu: t.path.pmtu,
        ipVersion: c.remoteAddr.length === 4 ? 4 : 6,
        sendBufferSize: t.engineCached.sendBufferSize,
        maxRetransmissions: t.engineCached.maxRetransmissions,
        iss: t.engineConst.iss,
        irs: t.engineConst.irs,
      },
      this.#uploadSnapshot,
    );
    // The engine kept since the initiate wakes with the uploaded state (a new one otherwise).
    const cfg = this.stack.tcpConfig;
    let engine = t.dormant;
    t.dormant = undefined;
    if (engine !== undefined) engine.reimport(snap, now, cfg, this.recvPool);
    else engine = TcpConnection.importState(snap, now, cfg, this.recvPool);
    const noDelay = snap.cachedState.noDelay;
    const keepAlive = snap.cachedState.keepAlive;
    releaseSnapshotData(snap);
    // Options changed while no update could carry them (`configure` during a transition).
    const want = t.shadow.cachedState;
    if (want.noDelay !== noDelay) engine.setNoDelay(want.noDelay);
    if (want.keepAlive !== keepAlive) {
      engine.setKeepAlive(
        now,
        want.keepAlive,
        want.keepAliveIdle,
        want.keepAliveInterval,
        want.keepAliveProbes,
      );
    }
    this.stack.adoptEngine(c, engine);
    // Segments the target indicated up during the upload, and forwards it bounced (TM-24).
    if (t.forwardBack.length > 0 || t.held.length > 0) {
      for (const seg of [...t.forwardBack.splice(0), ...t.held.splice(0)])
        this.stack.deliverSegment(now, c, seg);
    }
    if (t.heldSends.length > 0) for (const data of t.heldSends.splice(0)) this.#engineSend(c, data);
    const closeOwed = t.closeRequested && !t.finBeforeOffload && !t.disconnectDone;
    if (closeOwed && (engine.state === "ESTABLISHED" || engine.state === "CLOSE-WAIT")) engine.close();
    if (buffered.length > 0) this.stack.deliverEvent(c, { kind: "readable", bytes: engine.readable });
    this.stack.touch(c);
  }

  // -------------------------------------------------------------------------------------------
  // Data path while off the host

  #hooks(): OffloadHooks {
    return {
      send: (_now, c, data) => this.#send(c, data),
      recv: (_now, c, max) => this.#recv(c, max),
      readable: (c) => {
        const t = this.#tcps.get(c.id) ?? this.#retired.get(c);
        return t === undefined ? 0 : t.recvBytes + t.heldAtTarget;
      },
      close: (_now, c) => {
        this.#close(c);
      },
      abort: (_now, c) => {
        this.#abort(c);
      },
      configure: (now, c, change) => {
        this.#configure(now, c, change);
      },
      segment: (_now, c, seg) => {
        this.#onSegment(c, seg);
      },
      pathMtuChanged: () => undefined, // handled from the path cache's change queue
      flush: () => {
        this.#flush();
      },
      pollTimeout: () => undefined,
      handleTimeout: () => undefined,
    };
  }

  #tcp(c: HostConn): OffloadedTcp {
    const t = this.#tcps.get(c.id) ?? this.#retired.get(c);
    if (t === undefined)
      throw new UsageError(`connection ${c.id} is ${c.phase} but unknown to the offload manager`);
    return t;
  }

  #send(c: HostConn, data: Uint8Array): number {
    const t = this.#tcp(c);
    if (t.closeRequested || t.aborted !== undefined)
      throw new UsageError(`send on ${c.toString()}: connection-closing`);
    const n = Math.min(data.length, Math.max(0, t.sendLimit - t.sendOutstanding));
    if (n === 0) return 0;
    const chunk = n === data.length ? data : data.subarray(0, n);
    // IO-3 / TM-8: no sends to the target while offloading or terminating; EV-4: and none beyond
    // the target's preferred send backlog (`#postHeldSends` keeps order: held bytes go first).
    t.heldSends.push(chunk);
    t.heldSendBytes += n;
    t.sendOutstanding += n;
    if (t.phase === "offloaded") this.#postHeldSends(t);
    return n;
  }

  /**
   * EV-4 / ST-4 host side: posts held application sends while the unacknowledged bytes at the
   * target stay under its preferred send backlog (no limit before the first indication). Pieces
   * are at most a quarter of the backlog, so completions (one per NBL, when all of it is
   * acknowledged) keep the target fed, and a piece waits until a quarter of the backlog (or the
   * whole rest) fits, to avoid trickles of tiny NBLs. The graceful disconnect goes after the last
   * held byte.
   */
  #postHeldSends(t: OffloadedTcp): void {
    if (t.phase !== "offloaded" || t.aborted !== undefined) return;
    const backlog = t.sendBacklog;
    const piece = backlog === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.ceil(backlog / 4));
    for (let d = t.heldSends[0]; d !== undefined; d = t.heldSends[0]) {
      const room =
        backlog === undefined ? Number.POSITIVE_INFINITY : backlog - (t.sendOutstanding - t.heldSendBytes);
      const n = Math.min(d.length, piece);
      if (room < n) break;
      if (n === d.length) t.heldSends.shift();
      else t.heldSends[0] = d.subarray(n);
      t.heldSendBytes -= n;
      t.sendOutstanding -= n;
      this.#offloadSend(t, n === d.length ? d : d.subarray(0, n));
    }
    if (
      t.heldSends.length === 0 &&
      t.closeRequested &&
      !t.finBeforeOffload &&
      t.disconnect === undefined &&
      !t.disconnectDone
    )
      this.#sendDisconnect(t, "graceful");
  }

  /** An abortive close discards the sends not yet posted (as the target discards posted ones). */
  #dropHeldSends(t: OffloadedTcp): void {
    t.heldSends.length = 0;
    t.sendOutstanding -= t.heldSendBytes;
    t.heldSendBytes = 0;
  }

  #offloadSend(t: OffloadedTcp, chunk: Uint8Array): void {
    const nbl = this.ledger.alloc("host", fromArrays([chunk]), OP_SEND);
    nbl.context = t;
    t.sends.push({ nbl, atTarget: true });
    t.sendOutstanding += chunk.length;
    this.stats.sends++;
    this.ledger.transfer(nbl, "host", "target", OP_SEND);
    this.#requireTarget().tcpOffloadSend(this.#ctx(t), nbl);
  }

  #recv(c: HostConn, max: number | undefined): Uint8Array | undefined {
    const t = this.#tcp(c);
    const head = t.recvQ[0];
    if (head === undefined) return undefined;
    let out: Uint8Array;
    if (max === undefined || max >= head.length) {
      out = head;
      t.recvQ.shift();
    } else {
      out = head.subarray(0, max);
      t.recvQ[0] = head.subarray(max);
    }
    t.recvBytes -= out.length;
    t.bytesMoved += out.length;
    // Room again: re-enable the target's indications if they were refused (RI-3).
    this.#defer(() => {
      this.#maybePost(t);
    });
    return out;
  }

  #close(c: HostConn): void {
    const t = this.#tcp(c);
    if (t.closeRequested || this.#retired.has(c)) return;
    t.closeRequested = true;
    if (t.phase === "offloaded") this.#postHeldSends(t); // the disconnect follows the held sends
  }

  #abort(c: HostConn): void {
    const t = this.#tcp(c);
    if (t.aborted !== undefined || this.#retired.has(c)) return;
    t.aborted = "local";
    this.#closed(t, { kind: "closed", reason: "aborted", error: undefined });
    if (t.phase === "offloaded") {
      this.#dropHeldSends(t);
      if (t.disconnect !== undefined)
        this.#wantTerminate(t, "aborted"); // DC-2: cannot re-issue
      else this.#sendDisconnect(t, "abortive");
    }
  }

  #configure(now: Instant, c: HostConn, change: (tcp: TcpConnection) => void): void {
    const t = this.#tcp(c);
    // Apply the change to a throw-away engine built from the last snapshot; cached-state
    // differences become an UpdateOffload (ST-3).
    const shadow = TcpConnection.importState(t.shadow, now, this.stack.tcpConfig);
    change(shadow);
    let next: TcpSnapshot;
    try {
      next = shadow.exportState(now);
    } catch {
      return; // the change closed the shadow (e.g. abort): nothing cached to push
    }
    t.shadow = next;
    const k = next.cachedState;
    const cur = t.cached;
    const changed =
      k.keepAlive !== cur.keepAliveEnabled ||
      k.noDelay === cur.naglingEnabled ||
      k.keepAliveIdle !== cur.kaTimeout ||
      k.keepAliveInterval !== cur.kaInterval ||
      k.keepAliveProbes !== cur.kaProbeCount ||
      k.userTimeout !== cur.maxRt ||
      k.initialRcvWnd !== cur.initialRcvWnd;
    if (!changed) return;
    if (
      t.phase !== "offloaded" ||
      !this.updateTcp(c, () => ({
        keepAliveEnabled: k.keepAlive,
        naglingEnabled: !k.noDelay,
        keepAliveRestart: k.keepAlive,
        kaTimeout: k.keepAliveIdle,
        kaInterval: k.keepAliveInterval,
        kaProbeCount: k.keepAliveProbes,
        maxRt: k.userTimeout,
        maxRtRestart: k.userTimeout !== cur.maxRt,
        initialRcvWnd: k.initialRcvWnd,
        updateRcvWnd: k.initialRcvWnd !== cur.initialRcvWnd,
      }))
    ) {
      // Not now (in flight, or an update outstanding): the host applies it at upload.
      t.engineCached = { ...t.engineCached, ...pickCached(k) };
    }
  }

  #onSegment(c: HostConn, seg: TcpRepr): void {
    const t = this.#tcps.get(c.id);
    if (t === undefined) return;
    this.stats.heldSegments++;
    if (t.phase === "offloaded") {
      // Reached the host while offloaded (e.g. another interface): forward it (spec 13.7).
      t.held.push(seg);
      this.#defer(() => {
        this.#afterOffloaded(t);
      });
      return;
    }
    // Offloading: forwarded after completion (IO-4); terminating: TM-24. C-14: never forwarded now.
    t.held.push(seg);
  }

  #sendDisconnect(t: OffloadedTcp, flags: "graceful" | "abortive"): void {
    const nbl = this.ledger.alloc("host", fromArrays([]), OP_DISC);
    nbl.context = t;
    if (flags === "graceful") t.disconnect = nbl;
    this.#log(t.conn.id, "TcpOffloadDisconnect", flags);
    this.ledger.transfer(nbl, "host", "target", OP_DISC);
    this.#requireTarget().tcpOffloadDisconnect(this.#ctx(t), nbl, flags);
  }

  /** Posts a receive request if the knobs say so, or a re-enabling one after a refusal (RI-3). */
  #maybePost(t: OffloadedTcp): void {
    if (t.phase !== "offloaded" || t.aborted !== undefined) return;
    if (t.peerFin && !t.mustPost) return; // after the FIN a post would fail (FN-2)
    const k = this.knobs;
    if (t.recvBytes >= k.queueLimit) return;
    const roll = (p: number) => p > 0 && k.random.nextU32() / 2 ** 32 < p;
    if (t.posted.length === 0 && (t.refused || t.mustPost || roll(k.post))) {
      const zero = (t.refused || t.mustPost) && roll(k.zeroByte);
      t.mustPost = false;
      const size = zero ? 0 : (k.postSizes[k.random.nextU32() % Math.max(1, k.postSizes.length)] ?? 4096);
      const nonPush = !zero && roll(k.nonPush);
      let prefill = 0;
      const buf = new Uint8Array(size);
      // Pre-fill (non-push only) with everything the host holds, so order is kept.
      if (nonPush && t.recvBytes > 0 && t.recvBytes < size && roll(k.prefill)) {
        for (const chunk of t.recvQ) {
          buf.set(chunk, prefill);
          prefill += chunk.length;
        }
        t.recvQ.length = 0;
        t.recvBytes = 0;
        this.stats.prefilledPosts++;
      }
      // The NB describes the free part of the buffer; the host's bytes sit before it (spec 14.2).
      const nbl = this.ledger.alloc("host", [netBuffer(size === 0 ? null : mdl(buf), prefill)], OP_RECV);
      nbl.context = t;
      nbl.receiveNoPush = nonPush;
      nbl.receiveBytesTransferred = prefill;
      t.posted.push({ nbl, buf, prefill });
      this.stats.posts++;
      if (size === 0) this.stats.zeroBytePosts++;
      t.refused = false;
      this.#log(
        t.conn.id,
        "TcpOffloadReceive",
        `${size}B ${nonPush ? "non-push" : "push"} prefill=${prefill}`,
      );
      this.ledger.transfer(nbl, "host", "target", OP_RECV);
      this.#requireTarget().tcpOffloadReceive(this.#ctx(t), nbl);
    }
  }

  #enqueueRecv(t: OffloadedTcp, bytes: Uint8Array): void {
    t.recvQ.push(bytes);
    t.recvBytes += bytes.length;
    t.heldAtTarget = Math.max(0, t.heldAtTarget - bytes.length);
    this.#event(t, { kind: "readable", bytes: t.recvBytes });
  }

  #event(t: OffloadedTcp, ev: ConnEvent): void {
    if (t.closedDelivered) return;
    this.stack.deliverEvent(t.conn, ev);
  }

  #closed(t: OffloadedTcp, ev: ConnEvent): void {
    if (t.closedDelivered) return;
    this.stack.deliverEvent(t.conn, ev);
    t.closedDelivered = true;
  }

  #engineSend(c: HostConn, data: Uint8Array): void {
    const r = c.engine.send(data);
    assert(r === data.length, `the host engine took ${String(r)} of ${data.length} held bytes`);
  }

  // -------------------------------------------------------------------------------------------
  // Deferred work, updates from the neighbor and path caches, automatic policy

  /** Connections #startTerminate found ready, from `#readyHead` on (`#issueTerminates`). */
  #readyTerminates: OffloadedTcp[] = [];
  #readyHead = 0;
  #terminatesScheduled = false;
  /** TerminateOffload calls made and not completed yet. */
  #terminateCallsOut = 0;

  #defer(fn: () => void): void {
    this.#deferred.push(fn);
  }

  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      this.#continueUploads();
      for (let round = 0; round < 1000; round++) {
        if (this.#toReturn.length > 0 && this.#target !== undefined) {
          // Every NBL of every queued chain, in order (one array: an upload storm queues thousands).
          const nbls: NetBufferList[] = [];
          for (const head of this.#toReturn)
            for (let n: NetBufferList | null = head; n !== null; n = n.next) nbls.push(n);
          this.#toReturn = [];
          const chain = linkNbls(nbls) as NetBufferList; // non-empty
          this.ledger.return(chain, "host", OP_RETURN);
          if (this.#logReturns) {
            this.#log(undefined, OP_RETURN, `${nbls.length} NBL(s)`);
            this.#logReturns = false;
          }
          this.#target.tcpOffloadReceiveReturn(chain);
        }
        const work = this.#deferred;
        if (work.length === 0) break;
        this.#deferred = [];
        for (const w of work) {
          if (typeof w === "function") w();
          else this.#startTerminate(w);
        }
      }
      this.#cacheChanges();
      this.#autoPolicy();
    } finally {
      this.#flushing = false;
    }
  }

  /** Propagates neighbor MAC and path MTU changes to offloaded objects (spec 9.1). */
  #cacheChanges(): void {
    for (
      let ch = this.stack.neighbors.pollChange();
      ch !== undefined;
      ch = this.stack.neighbors.pollChange()
    ) {
      const n = this.#neighbors.get(`${ch.ifIndex}|${ipKey(ch.ip)}`);
      if (n === undefined || n.phase !== "offloaded" || n.invalidated === true) continue; // UP-9
      if (ch.mac === undefined) {
        this.invalidateNeighbor(n.ifIndex, n.ip); // lost: stop sending (spec 10)
        continue;
      }
      n.mac = ch.mac;
      const b = newBlock<NeighborBlock>({
        layer: "neighbor",
        stateType: "NeighborOffloadCachedState",
        miniportOffloadContext: n.slot,
        ndisOffloadHandle: n.handle,
        constState: undefined,
        cachedState: { dlDestinationAddress: ch.mac, hostReachabilityDelta: Duration.fromMicros(0) },
        delegatedState: undefined,
      });
      this.stats.updates++;
      this.#log(undefined, "UpdateOffload", `neighbor ${ipToString(n.ip)} mac changed`);
      this.#requireTarget().updateOffload(b);
    }
    for (let ch = this.stack.paths.pollChange(); ch !== undefined; ch = this.stack.paths.pollChange()) {
      for (const p of this.#paths.values()) {
        if (p.phase !== "offloaded" || !ipEquals(p.dst, ch.dst) || p.pmtu === ch.pmtu) continue;
        p.pmtu = ch.pmtu;
        const b = newBlock<PathBlock>({
          layer: "path",
          stateType: p.dst.length === 4 ? "Ip4OffloadCachedState" : "Ip6OffloadCachedState",
          miniportOffloadContext: p.slot,
          ndisOffloadHandle: undefined,
          constState: undefined,
          cachedState: { pathMtu: ch.pmtu },
          delegatedState: undefined,
        });
        this.stats.updates++;
        this.#log(undefined, "UpdateOffload", `path ${ipToString(p.dst)} pmtu=${ch.pmtu}`);
        this.#requireTarget().updateOffload(b);
      }
    }
  }

  #autoPolicy(): void {
    const after = this.policy.autoOffloadAfterBytes;
    if (after === undefined || this.#target === undefined || this.#paused) return;
    for (const c of this.stack.connections()) {
      const tcp = c.tcp;
      if (c.phase !== "host" || tcp === undefined || tcp.state !== "ESTABLISHED") continue;
      if (tcp.stats.bytesIn + tcp.stats.bytesOut >= after) this.offload(c);
    }
  }

  #retryWaiting(): void {
    const w = [...this.#waiting];
    this.#waiting.clear();
    for (const c of w) this.offload(c);
  }

  #opDone(root: OffloadBlockList, what: string): void {
    forEachInTree(root, (b) => {
      if (b.layer !== "tcp" || b.miniportOffloadContext === null) return;
      const t = this.#tcpBySlot(b.miniportOffloadContext);
      if (t === undefined) return;
      t.busyOps = Math.max(0, t.busyOps - 1);
      // UP-6 / QY-2: an object that could not be updated or queried is uploaded.
      if (b.status !== "NDIS_STATUS_SUCCESS") this.#wantTerminate(t, `${what} failed`);
    });
    this.#log(undefined, `${what}Complete`, String(root.status));
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  #tcpRef(t: OffloadedTcp, stateType: TcpBlock["stateType"]): TcpBlock {
    return newBlock<TcpBlock>({
      layer: "tcp",
      stateType,
      miniportOffloadContext: t.slot,
      ndisOffloadHandle: t.handle,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
    });
  }

  #unlinkTcp(t: OffloadedTcp): void {
    this.#tcps.delete(t.conn.id);
    this.#byHandle.delete(t.handle);
    t.slot.live = false;
    t.path.refs--;
    if (t.path.refs === 0 && t.path.phase === "offloading") this.#dropPath(t.path);
  }

  #dropPath(p: PathObject): void {
    if (this.#paths.get(p.key) !== p) return;
    this.#paths.delete(p.key);
    this.#bySlot.delete(p.slot);
    p.neighbor.refs--;
    if (p.neighbor.refs === 0 && p.neighbor.phase === "offloading") this.#dropNeighbor(p.neighbor);
  }

  #dropNeighbor(n: NeighborObject): void {
    if (this.#neighbors.get(n.key) !== n) return;
    this.#neighbors.delete(n.key);
    this.#neighborByHandle.delete(n.handle);
    this.#bySlot.delete(n.slot);
  }

  #neighborBySlot(slot: OffloadContextSlot): NeighborObject | undefined {
    const n = this.#bySlot.get(slot);
    return n !== undefined && "ifIndex" in n ? n : undefined;
  }

  #pathBySlot(slot: OffloadContextSlot): PathObject | undefined {
    const p = this.#bySlot.get(slot);
    return p !== undefined && "pmtu" in p ? p : undefined;
  }

  #tcpBySlot(slot: OffloadContextSlot): OffloadedTcp | undefined {
    return TcpSlot.liveOwner(slot);
  }

  #ctx(t: OffloadedTcp): MiniportOffloadContext {
    const ctx = t.slot.context;
    assert(ctx !== null, "an offloaded connection has a target context");
    return ctx;
  }

  #newHandle(): NdisOffloadHandle {
    return this.#nextHandle++ as NdisOffloadHandle;
  }

  #requireTarget(): OffloadTarget {
    const t = this.#target;
    if (t === undefined) throw new UsageError("no offload target attached");
    return t;
  }

  #nblBytes(nbl: NetBufferList): number {
    return chainLength(this.ledger.view(nbl, "host", "bytes"));
  }

  /** A TCP segment as bytes, header first, checksum over the pseudo-header (FW-2). */
  #segmentBytes(t: OffloadedTcp, seg: TcpRepr): Uint8Array {
    const out = new Uint8Array(tcpBufferLen(seg));
    emitTcp(seg, out, { src: t.conn.remoteAddr, dst: t.conn.localAddr });
    return out;
  }

  /** Sends an engine segment directly through the stack (the engine is drained before export). */
  #sendRaw(c: HostConn, seg: TcpRepr): void {
    this.stack.sendSegmentFor(c, seg);
  }

  #log(conn: number | undefined, op: string, detail: string): void {
    this.#logEntry({ at: this.stack.now, conn, op, detail });
  }

  #logEntry(e: OffloadLogEntry): void {
    // Full: drop the oldest quarter at once (a shift per entry costs the whole log's length; a
    // sixteenth at a time, a storm's 100,000 entries moved 15 others each, 19 ms of the window).
    if (this.log.length >= this.logLimit)
      this.log.splice(0, this.log.length - this.logLimit + Math.max(1, this.logLimit >> 2));
    this.log.push(e);
  }
}

/**
 * Copies every byte of `chain` into `filler`, in order: one `set` per MDL piece, whole MDLs by
 * their cached view (no allocation per piece).
 */
function copyChainInto(chain: BufferChain, filler: ChunkFiller): void {
  for (const nb of chain) {
    let left = nb.dataLength;
    let m = nb.currentMdl;
    let off = nb.currentMdlOffset;
    while (m !== null && off >= m.length) {
      off -= m.length;
      m = m.next;
    }
    while (left > 0 && m !== null) {
      const avail = Math.min(m.length - off, left);
      filler.writeView(off === 0 && avail === m.length ? m.view : m.view.subarray(off, off + avail));
      left -= avail;
      off = 0;
      m = m.next;
    }
    assert(left === 0, "an NB's data runs past its MDL chain");
  }
}

/** The NBLs of a chain, each unlinked so it can be viewed, moved or freed alone. */
function unlink(chain: NetBufferList): NetBufferList[] {
  const nbls = nblArray(chain);
  for (const n of nbls) n.next = null;
  return nbls;
}

function chunk0(nbl: NetBufferList, ledger: BufferLedger): number {
  return chainLength(ledger.view(nbl, "host", OP_INIT));
}

/** A neighbor linker block (TR-6): names a neighbor already offloaded, carries no state. */
function neighborLinker(n: NeighborObject): NeighborBlock {
  return newBlock<NeighborBlock>({
    layer: "neighbor",
    stateType: "NeighborOffloadState",
    miniportOffloadContext: n.slot,
    ndisOffloadHandle: n.handle,
    constState: undefined,
    cachedState: undefined,
    delegatedState: undefined,
  });
}

/** A path linker block (TR-6). */
function pathLinker(p: PathObject, stateType: PathBlock["stateType"]): PathBlock {
  return newBlock<PathBlock>({
    layer: "path",
    stateType,
    miniportOffloadContext: p.slot,
    ndisOffloadHandle: undefined,
    constState: undefined,
    cachedState: undefined,
    delegatedState: undefined,
  });
}

function linkBlocks(blocks: OffloadBlockList[]): void {
  for (let i = 0; i < blocks.length; i++) (blocks[i] as OffloadBlockList).nextBlock = blocks[i + 1] ?? null; // i < length
}

function pickCached(k: TcpSnapshotCached): Partial<TcpSnapshotCached> {
  return {
    noDelay: k.noDelay,
    keepAlive: k.keepAlive,
    keepAliveIdle: k.keepAliveIdle,
    keepAliveInterval: k.keepAliveInterval,
    keepAliveProbes: k.keepAliveProbes,
    userTimeout: k.userTimeout,
    initialRcvWnd: k.initialRcvWnd,
    sendBufferSize: k.sendBufferSize,
    maxRetransmissions: k.maxRetransmissions,
  };
}

function describeCached(c: TcpCachedState): string {
  return `keepAlive=${c.keepAliveEnabled} nagle=${c.naglingEnabled} ttl=${c.ttlOrHopLimit} rcvWnd=${c.initialRcvWnd}`;
}

/** The upload reasons the host must honor (re-exported for policy code and tests). */
export const MANDATORY_REASONS: readonly TcpUploadReason[] = MANDATORY_UPLOAD_REASONS;
