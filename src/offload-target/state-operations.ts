/**
 * The state operations: initiate (spec 7), terminate (spec 11), update, invalidate and query
 * (spec 8-10), and the hardware-failure procedure (spec 11.9).
 *
 * - The front end only records each operation's tree (OP-1, `record`); `process(now)` completes
 *   them here, in arrival order (C-2 / C-3), after the operation delay. Every block gets a status
 *   before the completion (OP-2 / BL-1).
 * - Initiate: the lent BufferedData is copied during the call itself (IO-19, `recordInitiate`);
 *   the completion creates the records (IT-1) and hands each object's context to the host's slot
 *   (CTX-3). Handed-over BufferedData becomes the head of the engine's receive buffer (IO-23).
 *   IO-6 / IO-7: nothing goes up for a new connection until the completion has returned, and
 *   nothing for any connection while an initiate is in progress; `releaseHeld` sends what waited.
 * - Terminate: outstanding requests complete (TM-9, TM-27), the engine's state goes back as the
 *   delegated state (ST-5, TM-14..TM-21), with undelivered received bytes as BufferedData from the
 *   target's pool; a connection whose engine already closed reports TcpConnectionClosed.
 * - Update replaces cached state (ST-2, UP-2..UP-5); invalidate marks objects and asks for their
 *   upload (IV-2..IV-7); query reports current values (QY-1).
 */
import { tupleHash } from "./tuple-table.js";
import { Duration, Instant } from "../time/instant.js";
import { assert } from "../util/errors.js";
import { IntMap } from "../util/int-map.js";
import { TcpConnection } from "../tcp/connection.js";
import type { TcpSnapshot } from "../tcp/types.js";
import { advance, type BufferChain, chainLength, forEachSegment, linkNbls } from "../nbl/chain.js";
import type { NetBufferList } from "../nbl/nbl.js";
import { macEquals, MAC_ZERO } from "../wire/ethernet.js";
import { type IpAddr, ipEquals, ipKey, ipVersion } from "../wire/ip-addr.js";
import {
  assertStatusWritten,
  forEachInTree,
  type NeighborBlock,
  type OffloadBlockList,
  roleOf,
  type TcpBlock,
  visitTree,
} from "../chimney/block-list.js";
import {
  BACKLOG_UNSUPPORTED,
  type NeighborCachedState,
  type NeighborConstState,
  type TcpCachedState,
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
import { supportsFamily } from "../chimney/capabilities.js";
import { engineKeepAlive, frozenCached, offloadSackEnabled } from "./tcp-rules.js";
import {
  type Conn,
  ctxOf,
  type NeighborObj,
  type PathObj,
  type SendEntry,
  toChimneyState,
} from "./connection-record.js";
import {
  OP_INIT,
  OP_INIT_COMPLETE,
  OP_TERM_COMPLETE,
  type PendingOp,
  type TargetContext,
} from "./target-context.js";
import { allocUp, completeRecvs, deliver, finishReq } from "./receive.js";
import {
  completeDisconnect,
  drainSendInbox,
  failForwards,
  failSends,
  preferredBacklog,
  requestUpload,
  service,
  takeAcks,
} from "./connection-service.js";
import { emit, pushFrame } from "./transmit.js";

/**
 * C-2 / C-3: any number of operations may be outstanding, several initiates of different
 * objects and overlapping queries of one object included; each is completed in arrival order.
 */
export function record(t: TargetContext, kind: PendingOp["kind"], root: OffloadBlockList): void {
  t.ops.push({ kind, root, due: Instant.add(t.now, t.opDelay) });
}

/**
 * The part of MiniportInitiateOffload done inside the call: the host lends BufferedData only for
 * its duration (IO-1 / IO-19), so it is copied now (IO-20: within the `bufferBytes` limit); the
 * offload itself is recorded and completes later from `process`.
 */
export function recordInitiate(t: TargetContext, blockList: OffloadBlockList): void {
  forEachInTree(blockList, (b) => {
    if (b.layer !== "tcp" || roleOf(b) !== "new-offload") return;
    const d = b.delegatedState;
    if (d === undefined || d.bufferedData === null) return;
    const view = t.ledger.view(d.bufferedData, "target", OP_INIT);
    const n = chainLength(view);
    if (t.bufferBytesUsed + n > t.limits.bufferBytes) {
      t.copies.set(b, "no-memory");
      return;
    }
    t.bufferBytesUsed += n;
    t.copies.set(b, copyOfChain(view, n));
  });
  t.initiating++; // IO-7: until its completion has returned
  record(t, "initiate", blockList);
}

// ---------------------------------------------------------------------------------------------
// Initiate (spec 7)

/**
 * Completes a recorded initiate: offloads (or links) every block, writes the statuses that
 * depend on the dependent blocks (spec 7.4), completes, then lets the new connections run.
 */
export function doInitiate(t: TargetContext, now: Instant, root: OffloadBlockList): void {
  const ok = new Map<OffloadBlockList, boolean>();
  const parent = parentsOf(root);
  const created: Conn[] = [];
  visitTree(
    root,
    (b) => {
      const status = offloadBlock(t, now, b, parent.get(b), created);
      b.status = status;
      const good = status === "NDIS_STATUS_SUCCESS";
      ok.set(b, good);
      return good;
    },
    (b) => {
      b.status = "NDIS_STATUS_FAILURE"; // IO-9, IO-11
      ok.set(b, false);
      failedTcpBlock(t, b);
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
  for (const b of t.copies.keys()) if (isInTree(root, b)) t.copies.delete(b);
  assertStatusWritten(root, "initiate"); // OP-2 / BL-1
  t.host.initiateOffloadComplete(root);
  // IO-6 / C-10: indications only now that the completion has returned.
  for (const c of created) {
    if (c.phase === "offloading") c.phase = "offloaded";
  }
  // IO-7: upcalls held while this (and every other) initiate was in progress go out first.
  t.initiating--;
  releaseHeld(t, now);
  for (const c of created) {
    if (c.urgentBuffered) {
      // IO-24 / NS-7: urgent data in BufferedData is urgent data from the wire (spec 15.3,
      // 20 item 39): ask for the upload, ACK and deliver nothing more, queue what follows;
      // the buffered bytes go back as BufferedData at terminate.
      c.urgent = true;
      requestUpload(t, c, "ReceivedUrgentData");
    }
    service(t, now, c);
  }
}

/** Offloads (or links) one block; returns its own status. */
function offloadBlock(
  t: TargetContext,
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
      b.layer === "neighbor" ? t.neighbors.get(ctx) : b.layer === "path" ? t.paths.get(ctx) : undefined;
    return found === undefined ? "NDIS_STATUS_FAILURE" : "NDIS_STATUS_SUCCESS";
  }
  const slot = b.miniportOffloadContext;
  assert(slot !== null, "new-offload block has a slot");
  switch (b.layer) {
    case "neighbor": {
      const st = neighborStatus(t, b);
      if (st !== "NDIS_STATUS_SUCCESS") return st;
      const k = b.constState as NeighborConstState; // checked by #neighborStatus
      const ca = b.cachedState as NeighborCachedState;
      const nrd = b.delegatedState?.nicReachabilityDelta ?? ca.hostReachabilityDelta;
      const n: NeighborObj = {
        ctx: t.newContext(),
        handle: b.ndisOffloadHandle,
        constState: k,
        cachedState: frozenCached(ca), // ST-2
        nrt: now - nrd,
        hrt: now - ca.hostReachabilityDelta,
        paths: new Set(),
        invalid: false,
      };
      t.neighbors.set(n.ctx, n);
      slot.context = n.ctx; // CTX-3
      return "NDIS_STATUS_SUCCESS";
    }
    case "path": {
      const nb = parent === undefined ? undefined : t.neighborOfBlock(parent);
      if (nb === undefined || b.constState === undefined || b.cachedState === undefined)
        return "NDIS_STATUS_FAILURE";
      // CFG-2: a family this target does not report is refused (the host should not ask).
      if (!supportsFamily(t.caps, ipVersion(b.constState.sourceAddress))) return "NDIS_STATUS_FAILURE";
      if (t.paths.size >= t.limits.path) return "NDIS_STATUS_OFFLOAD_PATH_ENTRIES";
      if (!roomForAddress(t, b.constState.sourceAddress)) return "NDIS_STATUS_OFFLOAD_IP_ADDRESS_ENTRIES";
      if (b.cachedState.pathMtu > t.limits.maxPathMtu) return "NDIS_STATUS_OFFLOAD_PATH_MTU";
      const p: PathObj = {
        ctx: t.newContext(),
        handle: b.ndisOffloadHandle,
        constState: b.constState,
        cachedState: frozenCached(b.cachedState), // ST-2
        neighbor: nb,
        conns: IntMap.sequential(),
        invalid: false,
      };
      nb.paths.add(p);
      t.paths.set(p.ctx, p);
      slot.context = p.ctx;
      return "NDIS_STATUS_SUCCESS";
    }
    case "tcp": {
      const st = offloadTcp(t, now, b, parent, created);
      if (st !== "NDIS_STATUS_SUCCESS") failedTcpBlock(t, b);
      return st;
    }
  }
}

function neighborStatus(t: TargetContext, b: NeighborBlock): NdisStatus {
  const k = b.constState;
  if (k === undefined || b.cachedState === undefined) return "NDIS_STATUS_FAILURE";
  if (t.neighbors.size >= t.limits.neighbor) return "NDIS_STATUS_OFFLOAD_NEIGHBOR_ENTRIES";
  if (!macEquals(k.dlSourceAddress, MAC_ZERO) && !t.configurableMacs)
    return "NDIS_STATUS_OFFLOAD_HW_ADDRESS_ENTRIES";
  if (k.vlanId !== 0 && t.vlans.length > 0 && !t.vlans.includes(k.vlanId))
    return "NDIS_STATUS_OFFLOAD_VLAN_MISMATCH";
  return "NDIS_STATUS_SUCCESS";
}

function offloadTcp(
  t: TargetContext,
  now: Instant,
  b: TcpBlock,
  parent: OffloadBlockList | undefined,
  created: Conn[],
): NdisStatus {
  const path = parent === undefined ? undefined : t.pathOfBlock(parent);
  const k = b.constState;
  const ca = b.cachedState;
  const d = b.delegatedState;
  if (path === undefined || k === undefined || ca === undefined || d === undefined)
    return "NDIS_STATUS_FAILURE";
  if (t.conns.size >= Math.min(t.limits.tcp, t.caps.tcpConnectionOffloadCapacity))
    return "NDIS_STATUS_OFFLOAD_TCP_ENTRIES"; // TcpConnectionOffloadCapacity (spec 3.3)
  if (ca.initialRcvWnd > t.limits.maxRcvWnd) return "NDIS_STATUS_OFFLOAD_TCP_RCV_WINDOW";
  if (!isImportableState(d.state)) return "NDIS_STATUS_FAILURE";
  const copy = t.copies.get(b);
  if (copy === "no-memory") return "NDIS_STATUS_FAILURE"; // IO-20
  const chain = b.netBufferListChain;
  if (chain !== null) t.ledger.check(chain, "target", OP_INIT);
  const local = path.constState.sourceAddress;
  const remote = path.constState.destinationAddress;
  if (t.byTuple.has(local, remote, k.localPort, k.remotePort)) return "NDIS_STATUS_FAILURE";
  // The send data is read zero-copy; the BufferedData was copied in `initiateOffload`.
  // CFG-4: without SupportSack the engine neither generates nor consumes SACK.
  const engineK = { ...k, sackEnabled: offloadSackEnabled(t.caps.supportSack, k.sackEnabled) };
  const ka = engineKeepAlive(ca); // BR-0: 0 -> the spec 17.11 defaults (the cached record is kept)
  const engineCa = { ...ca, kaInterval: ka.interval, kaProbeCount: ka.probes };
  const noBuffered = {
    constState: engineK,
    cachedState: engineCa,
    delegatedState: { ...d, bufferedData: null },
  };
  const snap: TcpSnapshot = importOffloadState(noBuffered, t.ledger, "target", OP_INIT, {
    cfg: t.cfg,
    pathMtu: path.cachedState.pathMtu,
    ipVersion: ipVersion(local),
    sendBufferSize: 2 ** 30,
    maxRetransmissions: t.maxRtx,
  });
  // IO-23: the handed-over BufferedData is the head of the engine's receive buffer, so it is
  // delivered before anything received later.
  const full: TcpSnapshot =
    copy === undefined || copy.length === 0
      ? snap
      : { ...snap, delegated: { ...snap.delegated, bufferedData: [copy] } };
  // TS-1: the engine's timestamp clock continues from TsTime (NicDelta = TsTime - NicTime), so
  // TSvals keep increasing (modulo 2^32) whatever this target's clock reads.
  const engine = TcpConnection.importState(full, now, t.cfg);
  drainEvents(engine);
  const handle = b.ndisOffloadHandle;
  if (handle === undefined) return "NDIS_STATUS_FAILURE";
  const c: Conn = {
    ctx: t.newContext(),
    handle,
    local,
    remote,
    tupleKey: tupleHash(local, remote, k.localPort, k.remotePort),
    constState: k,
    cachedState: frozenCached(ca), // ST-2: replaced only by an update
    path,
    engine,
    phase: "offloading",
    sends: [],
    reqs: [],
    // IO-22: handed-over data is buffered data: held until requests are posted.
    known: engine.readable,
    busy: false,
    inFlight: undefined,
    resetAfterAnswer: false,
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
    deliverPending: false,
    backlog: undefined,
    backlogAt: Instant.ZERO,
    backlogRecheck: undefined,
  };
  // IO-13..IO-15: the handed-over NBLs are the first send entries, in order; IO-17: `takeAcks`
  // completes each through NdisTcpOffloadSendComplete (or the terminate passes it back).
  for (const n of nblRange(d.sendDataHead, d.sendDataTail)) {
    const len = chainLength(viewOne(t.ledger, n, "target", OP_INIT));
    c.sends.push({ nbl: n, left: len, acked: 0, disconnect: false });
  }
  // Send NBLs of the chain beyond SendDataTail carry no data: nothing to track.
  path.conns.set(c.ctx, c);
  t.conns.set(c.ctx, c);
  t.byTuple.setHashed(c.tupleKey, local, remote, k.localPort, k.remotePort, c);
  const slot = b.miniportOffloadContext;
  assert(slot !== null, "new-offload block has a slot");
  slot.context = c.ctx; // CTX-3
  created.push(c);
  return "NDIS_STATUS_SUCCESS";
}

/** IO-10: a failed TCP block's send data stays the host's, status untouched. */
function failedTcpBlock(t: TargetContext, b: OffloadBlockList): void {
  if (b.layer !== "tcp") return;
  if (b.delegatedState !== undefined) bufferBytesUsedRelease(t, b);
  const chain = b.netBufferListChain;
  if (chain !== null && t.ledger.ownerOf(chain) === "target") {
    t.ledger.transfer(chain, "target", "host", OP_INIT_COMPLETE);
  }
}

function bufferBytesUsedRelease(t: TargetContext, b: OffloadBlockList): void {
  const copy = t.copies.get(b);
  if (copy instanceof Uint8Array) t.bufferBytesUsed -= copy.length;
  t.copies.delete(b);
}

/**
 * IO-7: the upcalls held while initiates were in progress, in the order they arose, now that
 * the last completion has returned. Those of connections no longer offloaded (terminated or
 * being terminated meanwhile) are dropped: the terminate's delegated state reports their state.
 * An upcall that starts another initiate stops the release; the rest waits for that one.
 */
function releaseHeld(t: TargetContext, now: Instant): void {
  while (t.initiating === 0) {
    const h = t.heldUpcalls.shift();
    if (h === undefined) return;
    const c = h.c;
    if (h.kind === "deliver") t.heldDelivery.delete(c);
    if (t.conns.get(c.ctx) !== c || c.phase !== "offloaded") continue;
    if (h.kind === "event") {
      t.indicateEvent(c, h.event);
      continue;
    }
    // The held data is not "buffered" in the E1.3 sense (nothing refused it): indicate it now.
    c.known = 0;
    deliver(t, now, c, "E1");
    t.touch(c);
  }
}

/**
 * PA-2: whether a path with source address `src` fits the target's IP address entries (an
 * address an offloaded path already uses always does).
 */
function roomForAddress(t: TargetContext, src: IpAddr): boolean {
  if (t.paths.size < t.limits.ipAddresses) return true; // fewer paths than entries: fewer addresses
  const held = new Set<string>();
  for (const p of t.paths.values()) {
    if (ipEquals(p.constState.sourceAddress, src)) return true;
    held.add(ipKey(p.constState.sourceAddress));
  }
  return held.size < t.limits.ipAddresses;
}

// ---------------------------------------------------------------------------------------------
// Terminate (spec 11)

// IO-8: doTerminate, doUpdate, doInvalidate and doQuery (and the helpers they call) write
// NDIS_STATUS_SUCCESS or NDIS_STATUS_FAILURE into their blocks, never another status.

/** TM-3 / ST-10: completes whatever the connection's state (only a corrupt one fails). */
export function doTerminate(t: TargetContext, now: Instant, root: OffloadBlockList): void {
  // TM-10: no indication or event of ours is in flight when a terminate completes.
  assert(t.upcalls === 0, "TM-10: terminate completing inside an upcall");
  const after: Uint8Array[] = [];
  forEachInTree(root, (b) => {
    if (b.layer === "tcp") {
      const c = t.connOf(b);
      if (c === undefined) {
        b.status = "NDIS_STATUS_FAILURE";
        b.netBufferListChain = null;
        return;
      }
      if (t.corrupt.has(c.ctx)) {
        terminateCorrupt(t, c, b); // spec 11.9 steps 4-5
        return;
      }
      terminateConn(t, now, c, b);
      for (const f of c.urgentFrames) after.push(f);
      b.status = "NDIS_STATUS_SUCCESS";
    } else if (b.layer === "path") {
      const p = t.paths.get(ctxOf(b));
      if (p === undefined) {
        b.status = "NDIS_STATUS_FAILURE";
        return;
      }
      p.neighbor.paths.delete(p);
      t.paths.delete(p.ctx);
      if (b.delegatedState !== undefined || b.stateType.endsWith("DelegatedState"))
        b.delegatedState = { headerOnly: true };
      b.netBufferListChain = null;
      b.status = "NDIS_STATUS_SUCCESS";
    } else {
      const n = t.neighbors.get(ctxOf(b));
      if (n === undefined) {
        b.status = "NDIS_STATUS_FAILURE";
        return;
      }
      t.neighbors.delete(n.ctx);
      b.delegatedState = { nicReachabilityDelta: Duration.fromMicros(Math.max(0, now - n.nrt)) };
      b.netBufferListChain = null;
      b.status = "NDIS_STATUS_SUCCESS";
    }
  });
  assertStatusWritten(root, "terminate"); // OP-2 / BL-1
  t.host.terminateOffloadComplete(root);
  // Spec 15.3 step 6: urgent data and what followed go up the non-offload path.
  for (const f of after) t.up(f);
}

const NO_SENDS: readonly SendEntry[] = Object.freeze([]);
const NO_NBLS: readonly NetBufferList[] = Object.freeze([]);

function terminateConn(t: TargetContext, now: Instant, c: Conn, b: TcpBlock): void {
  c.phase = "terminating";
  drainSendInbox(t, c); // C-11: queued sends complete with UPLOAD_IN_PROGRESS (TM-27)
  c.pushAt = undefined; // TM-12
  // TM-9: posted receives; spec 20 item 21.
  if (c.reqs.length > 0) {
    const reqs = c.reqs.splice(0);
    for (const r of reqs)
      finishReq(t, r, r.placed > 0 ? "NDIS_STATUS_SUCCESS" : "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    completeRecvs(
      t,
      c,
      reqs.map((r) => r.nbl),
    );
  }
  const disc = c.disconnect;
  if (disc !== undefined) {
    c.disconnect = undefined;
    if (disc.bytes > 0) {
      const i = c.sends.findIndex((e) => e.disconnect);
      if (i >= 0) c.sends.splice(i, 1);
    }
    disc.nbl.status = "NDIS_STATUS_UPLOAD_IN_PROGRESS";
    disc.nbl.bytesTransferred = 0;
    completeDisconnect(t, disc.nbl);
  }
  failForwards(t, c, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
  // Fully acknowledged sends complete now.
  takeAcks(t, c);
  const engine = c.engine;
  const live = isImportableState(toChimneyState(engine));
  let delegated: TcpDelegatedState;
  if (live) {
    // TM-11: drain what the engine has queued, then send an owed (delayed) ACK now.
    emit(t, now, c, true);
    const ack = engine.flushAck(now);
    if (ack !== undefined) pushFrame(t, c, ack);
    // PS-2 (and TM-F): persist state goes back as SndWndProbeCount, Retransmit.Count and
    // Retransmit.TimeoutDelta (undefined = -1, not running; 0 = fires at once on the host);
    // TS-1: TsTime = NicTime + NicDelta.
    const exported = engine.exportDelegated(now);
    // TM-14..TM-16: the unacknowledged send NBLs go back in their original order.
    // (most connections of a storm have none: no arrays then)
    const left = c.sends.length === 0 ? NO_SENDS : c.sends.splice(0).filter((e) => !e.disconnect);
    for (const e of left) {
      if (e.acked > 0) advance(viewOne(t.ledger, e.nbl, "target", OP_TERM_COMPLETE), e.acked);
    }
    const nbls = left.length === 0 ? NO_NBLS : left.map((e) => e.nbl);
    const head = linkNbls(nbls);
    if (head !== null) t.ledger.transfer(head, "target", "host", OP_TERM_COMPLETE);
    b.netBufferListChain = head; // BL-2 / TM-17: null when nothing is returned
    // TM-19..TM-21: undelivered bytes as BufferedData from the target's pool. TM-26: only the
    // in-order bytes the engine acknowledged cumulatively; SACKed-only data stays behind.
    const chunks = exported.bufferedData;
    const buffered = chunks.length === 0 ? null : allocUp(t, chunks, OP_TERM_COMPLETE, true);
    delegated = delegatedStateFromEngine(exported, {
      sendDataHead: head,
      sendDataTail: nbls[nbls.length - 1] ?? null,
      bufferedData: buffered,
    });
    if (c.closedOnUpload) delegated = { ...delegated, state: "TcpConnectionClosed" };
  } else {
    // The engine closed (RST, timeout, abort): a RST of an abortive disconnect still goes out
    // (DC-4); outstanding sends are completed, nothing returned.
    emit(t, now, c, true);
    failSends(t, c, c.aborted ? "NDIS_STATUS_REQUEST_ABORTED" : "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    b.netBufferListChain = null;
    // TM-19..TM-21: received data the host has not taken still goes up (a FIN-closed
    // connection keeps it).
    const chunks = engine.exportDelegated(now).bufferedData;
    const buffered = chunks.length === 0 ? null : allocUp(t, chunks, OP_TERM_COMPLETE, true);
    delegated = closedDelegated(now, c, buffered);
  }
  // ST-5: the current delegated values go into the host's block; const and cached are not returned.
  b.delegatedState = delegated;
  t.removeConn(c);
}

/** A delegated state for an engine that already reached CLOSED (the engine exports it). */
function closedDelegated(now: Instant, c: Conn, buffered: NetBufferList | null): TcpDelegatedState {
  const d = delegatedStateFromEngine(c.engine.exportDelegated(now), {
    sendDataHead: null,
    sendDataTail: null,
    bufferedData: buffered,
  });
  return { ...d, state: "TcpConnectionClosed" };
}

// ---------------------------------------------------------------------------------------------
// Update, invalidate, query (spec 8-10)

/** Completes a recorded update: new cached state for every block, then the affected connections run. */
export function doUpdate(t: TargetContext, now: Instant, root: OffloadBlockList): void {
  const parent = parentsOf(root);
  const affected = new Set<Conn>();
  forEachInTree(root, (b) => {
    if (roleOf(b) === "placeholder") {
      b.status = "NDIS_STATUS_SUCCESS";
      return;
    }
    b.status = updateBlock(t, now, b, parent.get(b), affected)
      ? "NDIS_STATUS_SUCCESS"
      : "NDIS_STATUS_FAILURE";
  });
  assertStatusWritten(root, "update"); // OP-2 / BL-1
  t.host.updateOffloadComplete(root);
  for (const c of affected) if (t.conns.get(c.ctx) === c) service(t, now, c);
}

function updateBlock(
  t: TargetContext,
  now: Instant,
  b: OffloadBlockList,
  parent: OffloadBlockList | undefined,
  affected: Set<Conn>,
): boolean {
  switch (b.layer) {
    case "neighbor": {
      const n = t.neighbors.get(ctxOf(b));
      if (n === undefined) return false;
      if (b.cachedState !== undefined) {
        n.cachedState = frozenCached(b.cachedState); // ST-2: only an update replaces it
        n.hrt = now - b.cachedState.hostReachabilityDelta;
      }
      for (const p of n.paths) for (const c of p.conns.values()) affected.add(c);
      return true;
    }
    case "path": {
      const p = t.paths.get(ctxOf(b));
      if (p === undefined) return false;
      // UP-4 / spec 9.3: a path under a neighbor block is re-linked to that neighbor.
      const nb = parent === undefined ? undefined : t.neighborOfBlock(parent);
      if (nb !== undefined && nb !== p.neighbor) {
        p.neighbor.paths.delete(p);
        nb.paths.add(p);
        p.neighbor = nb;
      }
      if (b.cachedState !== undefined) {
        p.cachedState = frozenCached(b.cachedState); // ST-2
        const hdr = tcpIpHeaderBytes(ipVersion(p.constState.sourceAddress));
        for (const c of p.conns.values()) c.engine.setPathMtu(b.cachedState.pathMtu, hdr);
      }
      for (const c of p.conns.values()) affected.add(c);
      return true;
    }
    case "tcp": {
      const c = t.connOf(b);
      if (c === undefined) return false;
      const ca = b.cachedState;
      if (ca !== undefined) applyTcpCached(t, now, c, ca);
      affected.add(c);
      return true;
    }
  }
}

/** UP-2, UP-3, UP-5: cached TCP variables and their one-shot flags. */
function applyTcpCached(t: TargetContext, now: Instant, c: Conn, ca: TcpCachedState): void {
  const old = c.cachedState;
  c.cachedState = frozenCached(ca); // ST-2: the one place a TCP cached state changes
  const e = c.engine;
  e.setNoDelay(!ca.naglingEnabled);
  if (ca.maxRt !== old.maxRt) e.setRetransmitLimits(t.maxRtx, ca.maxRt);
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
  t.touch(c);
}

/** Completes a recorded invalidate, then asks for the upload of every affected connection (IV-4). */
export function doInvalidate(t: TargetContext, root: OffloadBlockList): void {
  const affected = new Set<Conn>();
  const broken: Conn[] = [];
  forEachInTree(root, (b) => {
    if (roleOf(b) === "placeholder") {
      b.status = "NDIS_STATUS_SUCCESS";
      return;
    }
    let ok = true;
    if (b.layer === "tcp") {
      const c = t.connOf(b);
      if (c === undefined) ok = false;
      else if (t.corrupt.has(c.ctx)) {
        ok = false; // IV-7 failure path: spec 11.9 step 1
        broken.push(c);
      } else {
        c.invalid = true; // IV-2; IV-5: kept (not freed) until the host terminates it
        affected.add(c);
      }
    } else if (b.layer === "path") {
      const p = t.paths.get(ctxOf(b));
      if (p === undefined) ok = false;
      else {
        p.invalid = true;
        for (const c of p.conns.values()) affected.add(c);
      }
    } else {
      const n = t.neighbors.get(ctxOf(b));
      if (n === undefined) ok = false;
      else {
        n.invalid = true;
        for (const p of n.paths) for (const c of p.conns.values()) affected.add(c);
      }
    }
    b.status = ok ? "NDIS_STATUS_SUCCESS" : "NDIS_STATUS_FAILURE"; // IV-7
  });
  assertStatusWritten(root, "invalidate"); // OP-2 / BL-1
  t.host.invalidateOffloadComplete(root);
  for (const c of broken) hardwareFailure(t, c); // spec 11.9 steps 2-3
  for (const c of affected) requestUpload(t, c, "InvalidState"); // IV-4
}

/** Completes a recorded query with the current state of every block (QY-1). */
export function doQuery(t: TargetContext, now: Instant, root: OffloadBlockList): void {
  const broken: Conn[] = [];
  forEachInTree(root, (b) => {
    if (roleOf(b) === "placeholder") {
      b.status = "NDIS_STATUS_SUCCESS";
      return;
    }
    let ok = true;
    if (b.layer === "tcp") {
      const c = t.connOf(b);
      if (c === undefined) ok = false;
      else if (t.corrupt.has(c.ctx)) {
        ok = false; // QY-3: spec 11.9 step 1, NdisMQueryOffloadStateComplete with FAILURE
        broken.push(c);
      } else {
        b.constState = c.constState;
        b.cachedState = c.cachedState;
        b.delegatedState = queryDelegated(t, now, c);
      }
    } else if (b.layer === "path") {
      const p = t.paths.get(ctxOf(b));
      if (p === undefined) ok = false;
      else {
        b.constState = p.constState;
        b.cachedState = p.cachedState;
        b.delegatedState = { headerOnly: true };
      }
    } else {
      const n = t.neighbors.get(ctxOf(b));
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
  t.host.queryOffloadComplete(root);
  for (const c of broken) hardwareFailure(t, c); // QY-3: spec 11.9 steps 2-3
}

/**
 * QY-1 current values; ReceiveBacklogSize = bytes buffered. SendBacklogSize: ST-4, the value
 * last indicated with TcpIndicateSendBacklogChange (the current preference before the first);
 * ST-7: 0xFFFFFFFF when the feature is off.
 */
function queryDelegated(t: TargetContext, now: Instant, c: Conn): TcpDelegatedState {
  const base = isImportableState(toChimneyState(c.engine))
    ? delegatedStateFromEngine(c.engine.exportDelegated(now), {
        sendDataHead: null,
        sendDataTail: null,
        bufferedData: null,
      })
    : closedDelegated(now, c, null);
  return {
    ...base,
    sendBacklogSize: t.backlogSupported ? (c.backlog ?? preferredBacklog(c)) : BACKLOG_UNSUPPORTED,
    receiveBacklogSize: c.engine.readable,
  };
}

// ---------------------------------------------------------------------------------------------
// Hardware failure (spec 11.9)

/**
 * Spec 11.9 steps 1-3, after the query or invalidate that found the corrupt state completed
 * with NDIS_STATUS_FAILURE (step 1): ask for the upload (HardwareFailure), then indicate the
 * abort. New I/O now completes with REQUEST_ABORTED; the terminate does steps 4 and 5.
 */
function hardwareFailure(t: TargetContext, c: Conn): void {
  if (c.uploadRequested && c.aborted) return; // already indicated
  c.uploadRequested = true;
  c.aborted = true;
  c.abortIndicated = true;
  c.pushAt = undefined;
  t.indicateEvent(c, { type: "TcpIndicateRetrieve", reason: "HardwareFailure" });
  t.indicateEvent(c, { type: "TcpIndicateAbort" });
}

/**
 * Spec 11.9 steps 4-5 for a connection whose hardware state is corrupt: every outstanding send,
 * receive, disconnect and forward completes with NDIS_STATUS_REQUEST_ABORTED; the block reports
 * NDIS_STATUS_FAILURE (the state is lost: nothing is returned). A terminate that is the first to
 * find the corruption does the same (its step 1 is this completion; no event follows for a
 * connection that is no longer offloaded).
 */
function terminateCorrupt(t: TargetContext, c: Conn, b: TcpBlock): void {
  c.phase = "terminating";
  c.pushAt = undefined;
  drainSendInbox(t, c);
  failSends(t, c, "NDIS_STATUS_REQUEST_ABORTED");
  const reqs = c.reqs.splice(0);
  for (const r of reqs) finishReq(t, r, "NDIS_STATUS_REQUEST_ABORTED");
  if (reqs.length > 0)
    completeRecvs(
      t,
      c,
      reqs.map((r) => r.nbl),
    );
  const d = c.disconnect;
  if (d !== undefined) {
    c.disconnect = undefined;
    d.nbl.status = "NDIS_STATUS_REQUEST_ABORTED";
    d.nbl.bytesTransferred = 0;
    completeDisconnect(t, d.nbl);
  }
  failForwards(t, c, "NDIS_STATUS_REQUEST_ABORTED");
  b.netBufferListChain = null;
  b.status = "NDIS_STATUS_FAILURE";
  t.corrupt.delete(c.ctx);
  t.removeConn(c);
}

// ---------------------------------------------------------------------------------------------
// Helpers

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

/** The `n` data bytes of `chain`, copied into one array. */
function copyOfChain(chain: BufferChain, n: number): Uint8Array {
  const copy = new Uint8Array(n);
  let at = 0;
  forEachSegment(chain, 0, n, (bytes, s, e) => {
    copy.set(bytes.subarray(s, e), at);
    at += e - s;
  });
  return copy;
}
