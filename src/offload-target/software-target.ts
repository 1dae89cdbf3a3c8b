/**
 * A software offload target: the NIC side of the chimney (spec digest 2, 5-7, 9-17), sans-I/O.
 *
 * Theory of operation
 * - Every frame from the wire enters `handleFrame(now, frame)`. TCP segments of offloaded
 *   connections are processed by the shared `TcpConnection` engine (receive.ts); everything else
 *   goes up the non-offload path (`host.indicateReceive`). Frames go out through
 *   `pollTransmit(now)`: the host's own frames first (`sendFrame`, the miniport's ordinary send
 *   path), then the segments of the offloaded connections (transmit.ts). Timers: `pollTimeout()`
 *   / `handleTimeout(now)`, over one lazily deleted deadline heap (transmit.ts).
 * - State operations (initiate, terminate, update, invalidate, query) only record their tree
 *   (OP-1); `process(now)` completes them, in arrival order (state-operations.ts). `hasWork()` /
 *   `pollAt(now)` tell a driver when `process` has something to do. Data calls return PENDING
 *   and complete from `process`, `handleFrame` or `handleTimeout` (connection-service.ts for
 *   sends, disconnects and forwards; receive.ts for posted receives and indications).
 * - Objects: neighbors, paths and TCP connections linked downwards (IT-1: TCP -> path ->
 *   neighbor; connection-record.ts). A context is a small integer handed out in the host's slot
 *   (CTX-3).
 * - IO-7: from `initiateOffload` until its completion has returned, no indication or TCP event
 *   goes up for any connection (target-context.ts holds them back, state-operations.ts releases
 *   them in order).
 *
 * This class is the handler front end: it implements the `OffloadTarget` contract, checks each
 * call's arguments and dispatches to the parts above, which share one `TargetContext`
 * (target-context.ts). Options, limits, counters and the test hooks are in options.ts.
 */
import { type Duration, Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import type { ChunkPoolStats } from "../storage/chunk-pool.js";
import type { TcpConnection } from "../tcp/connection.js";
import type { NetBufferList } from "../nbl/nbl.js";
import { nblArray } from "../nbl/chain.js";
import { decodeFrame } from "../wire/packet.js";
import { ChecksumCapabilities, rxVerified } from "../wire/checksum.js";
import { ethernetBufferLen } from "../wire/ethernet.js";
import { type IpAddr, ipVersion } from "../wire/ip-addr.js";
import { forEachInTree, type MiniportOffloadContext, type OffloadBlockList } from "../chimney/block-list.js";
import type {
  DisconnectFlags,
  IndicationAnswer,
  OffloadTarget,
  TcpUploadReason,
} from "../chimney/contract.js";
import { isImportableState } from "../chimney/tcp-state.js";
import {
  capabilities as makeCapabilities,
  scaleTicks,
  type TcpConnectionOffloadCapabilities,
  type TcpConnectionOffloadParameters,
  ticksToDuration,
} from "../chimney/capabilities.js";
import type { MiniportChimneyNdis, TcpOffloadEventHandlers } from "../chimney/registration.js";
import { receiveFilter } from "./tcp-rules.js";
import { getChimneyHandlers, setChimneyOptions } from "./registration.js";
import type { IpOffloadStats, OffloadStatsOid, TcpOffloadStats } from "./stats.js";
import {
  type SoftwareTargetOptions,
  type TargetFault,
  TargetBusyError,
  type TargetStats,
} from "./options.js";
import { toChimneyState } from "./connection-record.js";
import { OP_DISC, OP_FWD, OP_RECV, OP_SEND, TargetContext } from "./target-context.js";
import {
  doInitiate,
  doInvalidate,
  doQuery,
  doTerminate,
  doUpdate,
  record,
  recordInitiate,
} from "./state-operations.js";
import { deliver, indicationAnswered, postReceives, receiveReturned, segmentIn } from "./receive.js";
import {
  deliverNew,
  disconnect,
  drainSendInbox,
  processForwards,
  requestUpload,
  send,
  service,
} from "./connection-service.js";
import { expired, flush, nextDeadline } from "./transmit.js";

export {
  backlogChangeDue,
  HELD_CHUNK_BYTES,
  preferredSendBacklog,
  SEND_BACKLOG_INTERVAL,
  SEND_BACKLOG_MAX,
  SEND_BACKLOG_MIN,
  type SoftwareTargetOptions,
  TargetBusyError,
  type TargetFault,
  type TargetLimits,
  type TargetStats,
} from "./options.js";

/** Decoding a frame whose checksums the device verified. */
const RX_VERIFIED = rxVerified(ChecksumCapabilities.ALL);

/** The software offload target: implements the miniport handlers of the chimney. */
export class SoftwareTarget implements OffloadTarget {
  /** The state shared with the parts that do the work (target-context.ts). */
  readonly #t: TargetContext;
  #handlers: TcpOffloadEventHandlers | undefined;
  #paused = false;
  #closed = false;

  /** Counters. */
  readonly stats: TargetStats;

  constructor(opts: SoftwareTargetOptions) {
    this.#t = new TargetContext(opts);
    this.stats = this.#t.stats;
  }

  // -------------------------------------------------------------------------------------------
  // Driver side

  /** True when `process(now)` has work due (recorded state operations or data completions). */
  hasWork(): boolean {
    const op = this.#t.ops[0];
    return this.#t.dataConns.length > 0 || (op !== undefined && op.due <= this.#t.now && !this.#waits(op));
  }

  /**
   * TM-10: a terminate does not complete while an indication on one of its connections is in
   * flight (a host that answers later); it, and what was recorded after it, wait for the answer.
   */
  #waits(op: { readonly kind: string; readonly root: OffloadBlockList }): boolean {
    if (op.kind !== "terminate" || this.#t.inFlight.size === 0) return false;
    let waits = false;
    forEachInTree(op.root, (b) => {
      if (b.layer === "tcp" && this.#t.connOf(b)?.inFlight !== undefined) waits = true;
    });
    return waits;
  }

  /**
   * The answer of a host that answered an indication with `NDIS_STATUS_PENDING` (a host on
   * another thread): the NBL is the target's again unless it was accepted whole. Throws
   * `UsageError` if `nbl` is not an indication in flight.
   */
  indicationAnswered(now: Instant, nbl: NetBufferList, res: IndicationAnswer): void {
    this.#t.now = now;
    if (indicationAnswered(this.#t, now, nbl, res) === undefined)
      throw new UsageError(`NBL #${nbl.id} is not an indication in flight`);
  }

  /**
   * When the driver should call in next: `now` if `process` has work, else the earlier of the
   * next state operation's due time and the next timer.
   */
  pollAt(now: Instant): Instant | undefined {
    if (this.#t.dataConns.length > 0) return now;
    const op = this.#t.ops[0];
    if (op !== undefined && this.#waits(op)) return this.pollTimeout(); // the answer wakes it
    if (op !== undefined && op.due <= now) return now;
    return Instant.earliest(op?.due, this.pollTimeout());
  }

  /** Completes recorded state operations (OP-1) and pending data completions, in order. */
  process(now: Instant): void {
    this.#t.now = now;
    // TM-10 / C-11: called from inside one of our own upcalls, nothing completes now (no
    // terminate completes while an indication or event is still in flight); the work waits for
    // the next call.
    if (this.#t.upcalls > 0) return;
    for (
      let op = this.#t.ops[0];
      op !== undefined && op.due <= now && !this.#waits(op);
      op = this.#t.ops[0]
    ) {
      this.#t.ops.shift();
      switch (op.kind) {
        case "initiate":
          doInitiate(this.#t, now, op.root);
          break;
        case "terminate":
          doTerminate(this.#t, now, op.root);
          break;
        case "update":
          doUpdate(this.#t, now, op.root);
          break;
        case "invalidate":
          doInvalidate(this.#t, op.root);
          break;
        case "query":
          doQuery(this.#t, now, op.root);
          break;
      }
    }
    while (this.#t.dataConns.length > 0) {
      const batch = this.#t.dataConns;
      this.#t.dataConns = [];
      for (const c of batch) {
        c.dataWork = false;
        if (this.#t.conns.get(c.ctx) !== c) continue; // terminated meanwhile
        if (c.deliverPending && c.phase === "offloaded") deliverNew(this.#t, now, c);
        drainSendInbox(this.#t, c);
        processForwards(this.#t, now, c);
        service(this.#t, now, c);
      }
    }
  }

  /** The miniport's ordinary send path: a frame from the host stack, queued for the wire. */
  sendFrame(frame: Uint8Array): void {
    this.#t.hostFrames.push(frame);
  }

  /**
   * A frame from the wire. `verified`: the device verified its IP header and TCP checksums as it
   * read the frame (receive checksum offload), so they are not verified again here.
   */
  handleFrame(now: Instant, frame: Uint8Array, verified = false): void {
    this.#t.now = now;
    this.stats.framesIn++;
    const pkt = decodeFrame(frame, verified ? RX_VERIFIED : ChecksumCapabilities.ALL);
    const net = pkt.network;
    const tr = pkt.transport;
    if (pkt.error !== undefined || net === undefined || tr === undefined || tr.kind !== "tcp") {
      // NS-4: ARP, ICMP (path-MTU discovery included) and anything else not TCP is the host's;
      // NS-6: so are IP fragments (decoded as "fragment", never reassembled here).
      this.#t.up(frame);
      return;
    }
    let local: IpAddr;
    let remote: IpAddr;
    if (net.kind === "ipv4") {
      // NS-5 / CFG-3: IPv4 options (not supported) go up the non-offload path.
      if (net.ipv4.options.length > 0) {
        this.#t.up(frame);
        return;
      }
      local = net.ipv4.dst;
      remote = net.ipv4.src;
    } else if (net.kind === "ipv6") {
      local = net.ipv6.dst;
      remote = net.ipv6.src;
    } else {
      this.#t.up(frame);
      return;
    }
    const seg = tr.tcp;
    const c = this.#t.byTuple.get(local, remote, seg.dstPort, seg.srcPort);
    // TM-23 / TM-25: not offloaded, or being uploaded: the host handles it.
    if (c === undefined || c.phase === "terminating") {
      this.#t.up(frame);
      return;
    }
    // VL-1 / NB-3: the connection's VLAN and MAC receive filter (spec 15.5).
    const verdict = receiveFilter(pkt.ethernet, c.path.neighbor.constState, this.#t.mac);
    if (verdict === "drop") return;
    if (verdict === "up") {
      this.#t.up(frame);
      return;
    }
    if (c.urgent) {
      c.urgentFrames.push(frame); // spec 15.3 step 4: queue everything after the urgent data
      return;
    }
    if (c.engine.state === "CLOSED" && !c.aborted && c.uploadRequested) {
      // NS-8: the connection reached CLOSED and asked for its upload: what arrives now is the
      // host's (the engine has nothing left to do with it). DC-6 / RST-1: aborted ones drop it.
      this.#t.up(frame);
      return;
    }
    // SS-1: counted only here, for segments of offloaded connections the target processes.
    const eth = pkt.ethernet === undefined ? 0 : ethernetBufferLen(pkt.ethernet);
    this.#t.offloadStats.received(net.kind === "ipv4" ? 4 : 6, frame.length - eth, true);
    segmentIn(this.#t, now, c, seg, frame);
  }

  /** The next frame for the wire, or undefined. */
  pollTransmit(now: Instant): Uint8Array | undefined {
    this.#t.now = now;
    const h = this.#t.hostFrames.shift();
    if (h !== undefined) {
      this.stats.framesOut++;
      return h;
    }
    if (this.#t.wireFrames.length === 0) flush(this.#t, now);
    const f = this.#t.wireFrames.shift();
    if (f !== undefined) this.stats.framesOut++;
    return f;
  }

  /**
   * The earliest timer deadline (engine timers and push timers), or undefined. O(log n) per
   * superseded heap entry: deadlines live in a min-heap with lazy deletion.
   */
  pollTimeout(): Instant | undefined {
    return nextDeadline(this.#t);
  }

  /** Runs expired timers (only the connections whose deadline passed). */
  handleTimeout(now: Instant): void {
    this.#t.now = now;
    const due = expired(this.#t, now);
    for (const c of due) {
      if (c.phase === "terminating" || this.#t.conns.get(c.ctx) !== c) continue;
      this.#t.touch(c);
      const t = c.engine.pollTimeout();
      if (t !== undefined && t <= now) c.engine.handleTimeout(now);
      if (c.pushAt !== undefined && c.pushAt <= now) {
        c.pushAt = undefined;
        deliver(this.#t, now, c, "E3");
      }
      service(this.#t, now, c);
    }
  }

  /** Offloaded connections (for tests and diagnostics). */
  get connectionCount(): number {
    return this.#t.conns.size;
  }

  /** Offloaded neighbor and path objects (for tests and diagnostics). */
  get objectCount(): { readonly neighbors: number; readonly paths: number } {
    return { neighbors: this.#t.neighbors.size, paths: this.#t.paths.size };
  }

  /** The engine of an offloaded connection (read-only diagnostics for tests). */
  engineOf(ctx: MiniportOffloadContext): TcpConnection | undefined {
    return this.#t.conns.get(ctx)?.engine;
  }

  /**
   * Read-only diagnostics (benchmarks, tests): views of the received bytes an offloaded connection
   * holds and has not delivered, in order, exactly the memory a terminate now would hand up as
   * BufferedData (the engine's receive buffer: compacted chunks of the target's pool and
   * uncompacted segment views). The views alias the
   * target's memory: never write through them, and do not use them after the next call into the
   * target. Undefined for an unknown context or an engine that can no longer export its state.
   */
  heldDataOf(ctx: MiniportOffloadContext): readonly Uint8Array[] | undefined {
    const c = this.#t.conns.get(ctx);
    if (c === undefined || !isImportableState(toChimneyState(c.engine))) return undefined;
    return c.engine.exportDelegated(this.#t.now).bufferedData;
  }

  /** NBLs handed up and not yet returned (TM-22: the adapter must not close before this is 0). */
  get outstandingReturns(): number {
    return this.#t.recvPool.lent;
  }

  /**
   * Frames queued for the wire that `pollTransmit` has not yet handed out, oldest first (for
   * tests and diagnostics: what a completion found already sent, TM-11).
   */
  get queuedFrames(): readonly Uint8Array[] {
    return [...this.#t.hostFrames, ...this.#t.wireFrames];
  }

  /** Counters of the chunk pool held receive data is compacted into; undefined when off. */
  get heldPoolStats(): Readonly<ChunkPoolStats> | undefined {
    return this.#t.heldPool?.stats;
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
    return this.#t.caps;
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
    this.#t.indicateStatus("NDIS_STATUS_OFFLOAD_PAUSE");
  }

  /**
   * NDIS_STATUS_OFFLOAD_RESUME, reporting `caps` as the new NDIS_TCP_CONNECTION_OFFLOAD. CFG-5:
   * this is the only way the capabilities change, and only after a pause (UsageError otherwise).
   */
  resume(caps: Partial<TcpConnectionOffloadCapabilities> = {}): void {
    if (!this.#paused) throw new UsageError("CFG-5: new capabilities need a pause first");
    this.#t.caps = makeCapabilities({ ...this.#t.caps, ...caps });
    this.#paused = false;
    this.#t.indicateStatus("NDIS_STATUS_OFFLOAD_RESUME");
  }

  /**
   * A policy of the driver asks the host to upload one connection (TcpIndicateRetrieve, spec
   * 16.4): at most once per connection, never while it is being offloaded or uploaded, and an
   * optional reason (LowActivity, SmallIO, ...) not while the connection is half-closed in
   * FIN-WAIT-1, FIN-WAIT-2 or CLOSE-WAIT (EV-2). Returns whether the request was made (indicated
   * now, or held back until the initiates in progress have completed, IO-7); from then on new
   * sends complete with NDIS_STATUS_UPLOAD_IN_PROGRESS (TM-27).
   */
  requestUpload(ctx: MiniportOffloadContext, reason: TcpUploadReason): boolean {
    const c = this.#t.conns.get(ctx);
    if (c === undefined) throw new UsageError(`no offloaded connection with context ${ctx}`);
    const before = c.uploadRequested;
    requestUpload(this.#t, c, reason);
    return !before && c.uploadRequested;
  }

  /** NDIS_STATUS_UPLOAD_ALL: asks the host to upload every offloaded connection (spec 16.6). */
  requestUploadAll(): void {
    this.#t.indicateStatus("NDIS_STATUS_UPLOAD_ALL");
  }

  /**
   * OID_TCP_CONNECTION_OFFLOAD_PARAMETERS (spec 3.3). CFG-6: the host's tick values are scaled
   * from its TicksPerSecond to this target's timer resolution (rounding up) before use: the push
   * timer, the neighbor staleness time and the retransmission limit of new offloads.
   */
  setOffloadParameters(p: TcpConnectionOffloadParameters): void {
    const toTarget = (ticks: number): Duration =>
      ticksToDuration(scaleTicks(ticks, p.ticksPerSecond, this.#t.tps), this.#t.tps);
    this.#t.pushTimeout = toTarget(p.tcpPushTicks);
    this.#t.nceStale = toTarget(p.nceStaleTicks);
    this.#t.maxRtx = p.tcpMaximumRetransmissions;
  }

  /** The push timeout in use (TcpPushTicks at this target's resolution; CFG-6). */
  get pushTimeout(): Duration {
    return this.#t.pushTimeout;
  }

  /** SS-1: a query of one statistics OID (this interface, offloaded connections only). */
  queryStatistics(oid: "OID_IP4_OFFLOAD_STATS" | "OID_IP6_OFFLOAD_STATS"): IpOffloadStats;
  queryStatistics(oid: "OID_TCP4_OFFLOAD_STATS" | "OID_TCP6_OFFLOAD_STATS"): TcpOffloadStats;
  queryStatistics(oid: OffloadStatsOid): IpOffloadStats | TcpOffloadStats {
    if (oid === "OID_IP4_OFFLOAD_STATS" || oid === "OID_IP6_OFFLOAD_STATS")
      return this.#t.offloadStats.query(oid);
    const v = oid === "OID_TCP4_OFFLOAD_STATS" ? 4 : 6;
    let established = 0;
    for (const c of this.#t.conns.values()) {
      const st = c.engine.state;
      if (ipVersion(c.path.constState.sourceAddress) === v && (st === "ESTABLISHED" || st === "CLOSE-WAIT"))
        established++;
    }
    return this.#t.offloadStats.query(oid, established);
  }

  /** SS-1: a set of a statistics OID resets those counters. */
  setStatistics(oid: OffloadStatsOid): void {
    this.#t.offloadStats.reset(oid);
  }

  /** Test hook: puts the target into a fault state (spec 11.9). */
  injectFault(fault: TargetFault): void {
    if (!this.#t.conns.has(fault.context))
      throw new UsageError(`no offloaded connection with context ${fault.context}`);
    this.#t.corrupt.add(fault.context);
  }

  /**
   * MiniportHaltEx. RR-3 / TM-22: refused with `TargetBusyError` while indicated or BufferedData
   * NBLs are still with the host; afterwards no chimney call is accepted.
   */
  close(): void {
    const out = this.#t.recvPool.outstanding;
    if (out > 0) throw new TargetBusyError(out);
    this.#closed = true;
  }

  /** NBLs from the two pools (INIT-3) handed out since creation. */
  get poolAllocations(): { readonly chimneyReceive: number; readonly nonOffloadReceive: number } {
    return { chimneyReceive: this.#t.recvPool.allocated, nonOffloadReceive: this.#t.upPool.allocated };
  }

  // -------------------------------------------------------------------------------------------
  // State operations: record only (OP-1); completed in state-operations.ts

  /** MiniportInitiateOffload: records the tree; copies lent BufferedData now (IO-19). */
  initiateOffload(blockList: OffloadBlockList): void {
    if (this.#closed) throw new UsageError("MiniportInitiateOffload on a closed adapter");
    // C-13: accepted even while paused (an initiate can be in flight when the pause is
    // indicated); like every state operation it is queued and processed later by `process`.
    recordInitiate(this.#t, blockList);
  }

  /** MiniportTerminateOffload: records the tree; segments now go up the non-offload path (TM-23). */
  terminateOffload(blockList: OffloadBlockList): void {
    forEachInTree(blockList, (b) => {
      if (b.layer !== "tcp") return;
      const c = this.#t.connOf(b);
      if (c !== undefined) {
        c.phase = "terminating";
        c.pushAt = undefined; // TM-12
      }
    });
    record(this.#t, "terminate", blockList);
  }

  /** MiniportUpdateOffload. */
  updateOffload(blockList: OffloadBlockList): void {
    record(this.#t, "update", blockList);
  }

  /** MiniportInvalidateOffload. */
  invalidateOffload(blockList: OffloadBlockList): void {
    record(this.#t, "invalidate", blockList);
  }

  /** MiniportQueryOffload. */
  queryOffload(blockList: OffloadBlockList): void {
    record(this.#t, "query", blockList);
  }

  // -------------------------------------------------------------------------------------------
  // Data calls

  /** MiniportTcpOffloadSend (SD-1..SD-3): queued in order, completed when ACKed. */
  tcpOffloadSend(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const c = this.#t.mustConn(context, OP_SEND);
    this.#t.ledger.check(nbl, "target", OP_SEND);
    const inbox = this.#t.sendInbox.get(c);
    if (this.#t.upcalls > 0 || inbox !== undefined) {
      // C-11: the send queue is not touched from inside an upcall (the single-threaded analogue
      // of the spin lock): the request waits in the inbox, in order, and runs from `process`.
      if (inbox === undefined) this.#t.sendInbox.set(c, [{ kind: "send", nbl }]);
      else inbox.push({ kind: "send", nbl });
      this.#t.addDataWork(c);
      return "NDIS_STATUS_PENDING";
    }
    send(this.#t, c, nbl);
    return "NDIS_STATUS_PENDING";
  }

  /** MiniportTcpOffloadReceive (RQ-1..RQ-6): FIFO; runs the delivery algorithm (E2). */
  tcpOffloadReceive(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const c = this.#t.mustConn(context, OP_RECV);
    this.#t.ledger.check(nbl, "target", OP_RECV);
    postReceives(this.#t, c, nbl);
    return "NDIS_STATUS_PENDING";
  }

  /** MiniportTcpOffloadReceiveReturn (RR-1): indicated / BufferedData NBLs come back. */
  tcpOffloadReceiveReturn(nbl: NetBufferList): "NDIS_STATUS_SUCCESS" {
    receiveReturned(this.#t, nbl);
    return "NDIS_STATUS_SUCCESS";
  }

  /** MiniportTcpOffloadDisconnect (DC-1..DC-8). */
  tcpOffloadDisconnect(
    context: MiniportOffloadContext,
    nbl: NetBufferList,
    flags: DisconnectFlags,
  ): "NDIS_STATUS_PENDING" {
    const c = this.#t.mustConn(context, OP_DISC);
    this.#t.ledger.check(nbl, "target", OP_DISC);
    if (nbl.next !== null) throw new UsageError("MiniportTcpOffloadDisconnect takes exactly one NBL");
    const inbox = this.#t.sendInbox.get(c);
    if (inbox !== undefined) {
      // C-11 / RQ-5: sends posted re-entrantly still wait in the inbox: the disconnect follows them.
      inbox.push({ kind: "disconnect", nbl, flags });
      this.#t.addDataWork(c);
      return "NDIS_STATUS_PENDING";
    }
    disconnect(this.#t, c, nbl, flags);
    return "NDIS_STATUS_PENDING";
  }

  /** MiniportTcpOffloadForward (FW-2..FW-5): segments processed like received ones, later. */
  tcpOffloadForward(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const c = this.#t.mustConn(context, OP_FWD);
    this.#t.ledger.check(nbl, "target", OP_FWD);
    for (const n of nblArray(nbl)) c.forwards.push(n); // FW-4: queued until `process`
    this.#t.addDataWork(c);
    return "NDIS_STATUS_PENDING";
  }
}
