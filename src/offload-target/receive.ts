/**
 * Receive processing and the delivery algorithm (spec 14).
 *
 * - Segments of offloaded connections (from the wire or forwarded, FW-4) go to the shared
 *   `TcpConnection` engine after the checks only the target makes: an in-order SYN asks for the
 *   upload as CLOSED (NS-2), urgent data asks for the upload and is not acknowledged (spec 15.3).
 *   The engine acknowledges on arrival, whatever delivery does (RI-4).
 * - Receive data stays in the engine's receive buffer (acknowledged, window shrinking) until it
 *   is delivered: posted requests are filled straight from it (`recvInto`, one copy per MDL
 *   piece), indications carry views of it (`peekChunks`, zero-copy), and the engine consumes
 *   only what the host accepted, so refused bytes stay at the head of the buffer, before
 *   anything newer.
 * - The delivery algorithm (spec 14.6) is `deliver`, with the entries E1 (new data), E2 (posted
 *   request) and E3 (push timer), connectors A (`connA`, fill requests) and B (`connB`,
 *   indicate), `busy` for the in-progress upcall (DA-2, C-8) and re-runs for work that arrived
 *   during an upcall (C-9, spec 20 item 28). The push timer (PT-1, PT-2) completes a partly
 *   filled push-mode request.
 * - Compaction: what delivery leaves behind is copied, once it fills a whole chunk, into
 *   `HELD_CHUNK_BYTES` chunks of the target's own pool (`compactHeldData`), so indications and
 *   BufferedData carry a few large MDLs. An NBL handed up holds its chunks until it comes back
 *   (`holdChunks` / `releaseChunks`), so a chunk is never reused under the host.
 */
import { Instant } from "../time/instant.js";
import { assert } from "../util/errors.js";
import type { ChunkPool } from "../storage/chunk-pool.js";
import { Seq } from "../wire/seq.js";
import type { NetBufferList } from "../nbl/nbl.js";
import { advance, chainLength, forEachSegment, linkNbls, nblArray } from "../nbl/chain.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import type { NdisStatus } from "../chimney/status.js";
import { viewOne } from "../chimney/tcp-state.js";
import type { Conn, InFlightIndication, RecvReq } from "./connection-record.js";
import type { IndicationAnswer } from "../chimney/contract.js";
import { OP_INDICATE, OP_RECV, OP_RECV_COMPLETE, OP_RETURN, type TargetContext } from "./target-context.js";
import { checkFin, onReset, requestUpload, service } from "./connection-service.js";

// ---------------------------------------------------------------------------------------------
// Receive processing

/**
 * A TCP segment of an offloaded connection, from the wire or forwarded (FW-4; `forwarded`: the
 * host held it, so PAWS does not apply, see `TcpConnection.handleSegment`).
 */
export function segmentIn(
  t: TargetContext,
  now: Instant,
  c: Conn,
  seg: TcpRepr,
  frame: Uint8Array,
  forwarded = false,
): void {
  if (c.aborted) return; // DC-6: nothing more is processed or acknowledged
  const e = c.engine;
  const f = seg.flags;
  if (f & TcpFlag.SYN && e.state !== "TIME-WAIT" && seg.seq === e.rcvNxt && !(f & TcpFlag.RST)) {
    // BR-0 (spec 17.11): every SYN draws a challenge ACK, whatever its sequence number (RFC
    // 5961 4.2; the engine runs it, throttled, and takes nothing of the SYN). NS-2: this one,
    // in order, also uploads the connection in the CLOSED state.
    e.handleSegment(now, seg, forwarded);
    t.touch(c);
    c.closedOnUpload = true;
    requestUpload(t, c, "UploadRequested");
    return;
  }
  if (f & TcpFlag.SYN && e.state === "TIME-WAIT") {
    t.up(frame); // NS-1
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
      requestUpload(t, c, "ReceivedUrgentData");
    }
    return;
  }
  const una = e.sndUna;
  const before = e.readable;
  // RI-4: the engine acknowledges on arrival (or per its delayed-ACK policy), whatever delivery does.
  e.handleSegment(now, seg, forwarded);
  // NR-2: forward progress (new data acknowledged, or in-order data accepted).
  if (Seq.gt(e.sndUna, una) || e.readable > before) c.path.neighbor.nrt = now;
  if (e.readable > before && f & TcpFlag.PSH) c.pshPending = true;
  if (e.readable > before && c.pushAt !== undefined) c.pushAt = Instant.add(now, t.pushTimeout); // PT-2
  service(t, now, c, e.readable > before);
}

/**
 * The body of MiniportTcpOffloadReceive (RQ-1..RQ-6): the requests queue FIFO, then the delivery
 * algorithm runs (E2). Requests the connection can no longer fill complete at once.
 */
export function postReceives(t: TargetContext, c: Conn, nbl: NetBufferList): void {
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
    const size = chainLength(viewOne(t.ledger, n, "target", OP_RECV));
    c.reqs.push({ nbl: n, size, placed: 0, push: !n.receiveNoPush });
    // Push mode with host-placed bytes starts the push timer at posting (spec 14.2).
    if (!n.receiveNoPush && n.receiveBytesTransferred > 0 && c.pushAt === undefined) {
      c.pushAt = Instant.add(t.now, t.pushTimeout);
    }
  }
  c.refused = false; // RI-3: a posted request re-enables indications
  t.touch(c);
  for (const n of nblArray(nbl)) n.next = null;
  if (late.length > 0) completeRecvs(t, c, late);
  deliver(t, t.now, c, "E2");
}

/** The body of MiniportTcpOffloadReceiveReturn (RR-1): indicated / BufferedData NBLs come back. */
export function receiveReturned(t: TargetContext, nbl: NetBufferList): void {
  for (const n of nblArray(nbl)) {
    // RR-3: one fewer outstanding
    assert(t.recvPool.takeBack(n), () => `NBL #${n.id} returned but never indicated`);
    releaseChunks(t, n);
  }
  t.ledger.free(nbl, "target", OP_RETURN);
}

// ---------------------------------------------------------------------------------------------
// The delivery algorithm (spec 14.6)

/** Undelivered bytes: the engine's receive buffer. */
function undelivered(c: Conn): number {
  return c.engine.readable;
}

/**
 * DA-1 / RX-2: every delivery decision (E1 new data, E2 posted request, E3 push timer) runs
 * this algorithm. C-12: a run goes to completion; work arriving during an upcall re-runs it
 * afterwards instead of interrupting it.
 */
export function deliver(t: TargetContext, now: Instant, c: Conn, entry: "E1" | "E2" | "E3"): void {
  if (c.phase !== "offloaded" || c.aborted || c.urgentBuffered) return; // IO-24: nothing delivered
  t.touch(c); // reading opens the window; the push timer may move
  if (c.busy) {
    // E1.1 / E2.1: queue; processed when the in-progress upcall finishes.
    if (entry === "E1") c.rerunE1 = true;
    else if (entry === "E2") c.rerunE2 = true;
    return;
  }
  finishDelivery(t, now, c, entry);
}

/**
 * Runs the algorithm from `entry`, then from the entries that queued up meanwhile (C-12). An
 * indication left in flight stops it: the queued entries wait for the answer.
 */
function finishDelivery(
  t: TargetContext,
  now: Instant,
  c: Conn,
  entry: "E1" | "E2" | "E3" | undefined,
): void {
  let next = entry;
  for (;;) {
    if (next === undefined) {
      next = c.rerunE2 ? "E2" : c.rerunE1 ? "E1" : undefined;
      c.rerunE2 = false;
      c.rerunE1 = false;
      if (next === undefined) break;
    }
    run(t, now, c, next);
    next = undefined;
    if (c.inFlight !== undefined) return; // the rest follows the host's answer
  }
  c.known = undelivered(c);
  checkFin(t, c);
}

/** One run of the algorithm from an entry to an EXIT (DA-4). */
function run(t: TargetContext, now: Instant, c: Conn, entry: "E1" | "E2" | "E3"): void {
  switch (entry) {
    case "E2":
      // E2.2: any buffered data? yes -> A; no -> E2.3 (the requests wait in the queue).
      if (undelivered(c) > 0 || hasZeroByteReq(c)) connA(t, now, c);
      return;
    case "E1":
      if (c.reqs.length > 0)
        connA(t, now, c); // E1.2 (RX-1: posted requests are used first)
      else if (c.known > 0 || c.refused)
        return; // E1.3: appended to the buffered data
      else connB(t, now, c);
      return;
    case "E3": {
      // P1 / P2
      const r = c.reqs[0];
      if (r === undefined || r.placed === 0 || !r.push) return;
      completeHead(t, c, 1);
      return;
    }
  }
}

function hasZeroByteReq(c: Conn): boolean {
  return c.reqs.some((r) => r.size === 0);
}

/** Connector A: place data into the requests (FIFO) and complete what is filled. */
function connA(t: TargetContext, now: Instant, c: Conn): void {
  for (;;) {
    if (c.phase !== "offloaded") return; // a terminate arrived during the last upcall
    place(t, c); // A1
    let filled = 0;
    while (filled < c.reqs.length && (c.reqs[filled] as RecvReq).placed === (c.reqs[filled] as RecvReq).size)
      filled++;
    if (filled > 0) {
      completeHead(t, c, filled); // A2, A3 (stops the push timer)
    }
    if (undelivered(c) > 0) {
      // A4 -> B: requests ran out (B5 sends us back here if more were posted meanwhile).
      if (c.reqs.length > 0) continue;
      connB(t, now, c);
      return;
    }
    const r = c.reqs[0];
    if (r === undefined || r.placed === 0) return; // A5
    if (!r.push) return; // A6: non-push mode waits to be filled
    if (c.pshPending) {
      // A7: PSH -> complete the partial request now.
      completeHead(t, c, 1);
      return;
    }
    if (c.pushAt === undefined) c.pushAt = Instant.add(now, t.pushTimeout);
    return;
  }
}

/** A1: copies undelivered bytes into the queued requests, one copy per MDL piece. */
function place(t: TargetContext, c: Conn): void {
  for (const r of c.reqs) {
    if (r.placed === r.size) continue;
    if (undelivered(c) === 0) return;
    const view = viewOne(t.ledger, r.nbl, "target", OP_RECV);
    forEachSegment(view, r.placed, r.size - r.placed, (bytes, s, e) => {
      const got = c.engine.recvInto(bytes.subarray(s, e));
      r.placed += got;
      t.stats.bytesCopied += got;
    });
    if (r.placed < r.size) return; // out of data
  }
  if (undelivered(c) === 0) c.pshPending = false;
}

/** Completes the first `n` requests with SUCCESS in one call (A2 / A7 / P2), serialized. */
function completeHead(t: TargetContext, c: Conn, n: number): void {
  const done = c.reqs.splice(0, n);
  for (const r of done) finishReq(t, r, "NDIS_STATUS_SUCCESS");
  c.pushAt = undefined; // A3 / A7: a request completed
  if (undelivered(c) === 0) c.pshPending = false;
  completeRecvs(
    t,
    c,
    done.map((r) => r.nbl),
  );
}

/** Writes status, bytes and NdisAdvanceNetBufferDataStart into a request. */
export function finishReq(
  t: TargetContext,
  r: RecvReq,
  status: NdisStatus &
    ("NDIS_STATUS_SUCCESS" | "NDIS_STATUS_UPLOAD_IN_PROGRESS" | "NDIS_STATUS_REQUEST_ABORTED"),
): void {
  r.nbl.status = status;
  r.nbl.bytesTransferred = r.placed;
  if (r.placed > 0) advance(viewOne(t.ledger, r.nbl, "target", OP_RECV_COMPLETE), r.placed);
}

/** NdisTcpOffloadReceiveComplete for `nbls` (FIFO), with `busy` held (DA-2, C-8, C-9, RC-1). */
export function completeRecvs(t: TargetContext, c: Conn, nbls: NetBufferList[]): void {
  const head = linkNbls(nbls);
  if (head === null) return;
  t.ledger.transfer(head, "target", "host", OP_RECV_COMPLETE);
  t.stats.receiveCompletions += nbls.length;
  const was = c.busy;
  c.busy = true;
  t.upcalls++; // C-11
  try {
    t.host.tcpOffloadReceiveComplete(head);
  } finally {
    c.busy = was;
    t.upcalls--;
  }
}

/** Connector B: indicate (B1-B6). */
function connB(t: TargetContext, now: Instant, c: Conn): void {
  for (;;) {
    if (c.phase !== "offloaded") return; // a terminate arrived during the last upcall
    if (c.busy || c.refused) return; // B1; RI-3
    if (t.initiating > 0) {
      // IO-7: no indication while an initiate is in progress; the data stays undelivered
      // (acknowledged, the window shrinking) and is indicated once the last one completes.
      t.holdDelivery(c);
      return;
    }
    const chunks = takeForIndication(c);
    if (chunks.length === 0) return;
    let total = 0;
    for (const x of chunks) total += x.length;
    const nbl = t.recvPool.alloc(chunks, OP_INDICATE); // INIT-3 / INIT-4: one NB per NBL
    holdChunks(t, nbl, chunks, false);
    t.ledger.transfer(nbl, "target", "host", OP_INDICATE);
    t.stats.indications++;
    c.busy = true;
    t.upcalls++; // TM-10 / C-11
    let res;
    try {
      res = t.host.tcpOffloadReceiveIndicate(c.handle, nbl, "NDIS_STATUS_SUCCESS"); // RI-2
    } finally {
      c.busy = false;
      t.upcalls--;
    }
    const f: InFlightIndication = { nbl, total };
    if (res.status === "NDIS_STATUS_PENDING") {
      // A host on another thread answers later (`indicationAnswered`): until then the
      // connection's receive path stays busy (RC-1) and its terminate waits (TM-10).
      c.busy = true;
      c.inFlight = f;
      t.inFlight.set(nbl.id, c);
      return;
    }
    if (!afterIndication(t, now, c, f, res as IndicationAnswer)) return; // not pending (above)
  }
}

/**
 * B3-B6: what the host's answer to an indication means for `c`. True to go round connector B
 * again (B1); false when the algorithm went on elsewhere or stops here.
 */
function afterIndication(
  t: TargetContext,
  now: Instant,
  c: Conn,
  f: InFlightIndication,
  res: IndicationAnswer,
): boolean {
  const { nbl, total } = f;
  if (res.status === "NDIS_STATUS_SUCCESS") {
    // B3 yes: the host keeps the NBL until MiniportTcpOffloadReceiveReturn.
    t.recvPool.lend(nbl);
    c.engine.consume(total); // delivered: the window opens
    t.stats.bytesIndicated += total;
    if (undelivered(c) === 0) {
      c.pshPending = false;
      return false; // B4
    }
    if (c.reqs.length > 0 || c.rerunE2) {
      c.rerunE2 = false;
      connA(t, now, c); // B5
      return false;
    }
    return true; // B1 again
  }
  // Not (fully) accepted: the NBL is the target's again at once; keep the remainder.
  if (t.ledger.ownerOf(nbl) === "host") t.ledger.transfer(nbl, "host", "target", OP_INDICATE);
  t.recvPool.release(nbl);
  t.ledger.free(nbl, "target", OP_INDICATE);
  releaseChunks(t, nbl);
  const consumed = res.status === "NDIS_STATUS_OFFLOAD_DATA_PARTIALLY_ACCEPTED" ? res.bytesConsumed : 0;
  assert(consumed >= 0 && consumed < total, () => `bytesConsumed ${consumed} of ${total} with ${res.status}`);
  t.stats.bytesIndicated += consumed;
  c.engine.consume(consumed);
  if (c.reqs.length > 0 || c.rerunE2) {
    c.rerunE2 = false;
    connA(t, now, c); // B6 -> A
    return false;
  }
  c.refused = true; // RI-3
  return false;
}

/**
 * The host's answer to an indication that was in flight (`NDIS_STATUS_PENDING`): the rest of
 * connector B, then the delivery runs that queued up meanwhile (C-12), then what waited for the
 * connection's receive path to be free (a RST's completions). Returns the connection, or
 * undefined if `nbl` is not an indication in flight.
 */
export function indicationAnswered(
  t: TargetContext,
  now: Instant,
  nbl: NetBufferList,
  res: IndicationAnswer,
): Conn | undefined {
  const c = t.inFlight.get(nbl.id);
  if (c === undefined || c.inFlight?.nbl !== nbl) return undefined;
  t.inFlight.delete(nbl.id);
  const f = c.inFlight;
  c.inFlight = undefined;
  c.busy = false;
  t.touch(c);
  if (afterIndication(t, now, c, f, res) && c.phase === "offloaded") connB(t, now, c);
  if (c.inFlight === undefined) finishDelivery(t, now, c, undefined);
  if (c.inFlight === undefined && c.resetAfterAnswer) {
    c.resetAfterAnswer = false;
    onReset(t, c);
  }
  compactHeld(t, c);
  return c;
}

/**
 * What delivery left behind goes into whole chunks of the held pool (the frames' memory is let
 * go). Not while an indication is in flight: the host's answer usually takes what arrived
 * meanwhile, from the frames' own memory, and compacting it first would copy most of a stream
 * once more; what the answer leaves is compacted then.
 */
export function compactHeld(t: TargetContext, c: Conn): void {
  if (t.heldPool !== undefined && c.phase === "offloaded" && c.inFlight === undefined)
    c.engine.compactReceived(t.heldPool);
}

/**
 * The bytes for one indication, up to RcvIndicationSize: views of the engine's receive buffer,
 * not consumed: the engine consumes what the host accepts, so refused data keeps the window
 * closed (RI-3).
 */
function takeForIndication(c: Conn): Uint8Array[] {
  const limit =
    c.cachedState.rcvIndicationSize > 0 ? c.cachedState.rcvIndicationSize : Number.MAX_SAFE_INTEGER;
  const out: Uint8Array[] = [];
  let n = 0;
  for (const v of c.engine.peekChunks()) {
    if (n >= limit) break;
    const take = Math.min(v.length, limit - n);
    out.push(take === v.length ? v : v.subarray(0, take));
    n += take;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Held receive data in pool chunks, lent up to the host

/**
 * NBLs from the target's pool over `chunks` (views), handed up to the host (TM-21). `final`:
 * the engine holding them is dropped, so its held-pool chunks are given back now (the give
 * completes when the host returns the NBL).
 */
export function allocUp(
  t: TargetContext,
  chunks: readonly Uint8Array[],
  op: string,
  final: boolean,
): NetBufferList {
  const nbl = t.recvPool.alloc(chunks, op); // INIT-4: one NB
  holdChunks(t, nbl, chunks, final);
  t.ledger.transfer(nbl, "target", "host", op);
  t.recvPool.lend(nbl);
  return nbl;
}

/**
 * The held-pool chunks among `chunks` get a hold for `nbl` (released when it comes back, so
 * a chunk consumed meanwhile is not reused under the host); `give`: also end their loan.
 */
function holdChunks(
  t: TargetContext,
  nbl: NetBufferList,
  chunks: readonly Uint8Array[],
  give: boolean,
): void {
  const pool = t.heldPool;
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
  if (mine !== undefined) t.lentChunks.set(nbl.id, mine);
}

/** `nbl` is back: its holds on held-pool chunks end. */
function releaseChunks(t: TargetContext, nbl: NetBufferList): void {
  const mine = t.lentChunks.get(nbl.id);
  if (mine === undefined) return;
  t.lentChunks.delete(nbl.id);
  const pool = t.heldPool as ChunkPool; // chunks are recorded only with a pool
  for (const x of mine) pool.release(x);
}
