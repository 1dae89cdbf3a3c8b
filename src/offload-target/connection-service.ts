/**
 * A connection's life between the state operations: what runs after any input (`service`),
 * the TCP events it raises, and the send path.
 *
 * - `service` runs after every segment, data call, timer and state operation that touched a
 *   connection: send completions from the engine's ACK events (SD-6), delivery of new data,
 *   the reaction to the engine closing (RST-1 abort, FW2-3 / PS-1 timeouts), disconnect
 *   completions (DC-4, DC-8), the FIN indication (FN-1), the send backlog (EV-4) and upload
 *   requests (spec 16.4).
 * - Closing: TIME-WAIT (EV-3) and CLOSED after our FIN was acknowledged (LAST-ACK or CLOSING)
 *   ask for the upload with the mandatory UploadRequested, the only way EV-0 leaves to tell the
 *   host that the connection is done; the terminate then reports TcpConnectionClosed with any
 *   received data still undelivered as BufferedData. An abortive disconnect's RST is queued for
 *   the wire before the disconnect completes (DC-4).
 * - Sends (spec 13.4, 13.5) queue zero-copy views of the NBLs in the engine and complete when
 *   acknowledged, in order; sends posted from inside an upcall wait in the send inbox (C-11).
 *   Forwarded segments (FW-2..FW-5) are processed like received ones, from `process`.
 */
import { Duration, Instant } from "../time/instant.js";
import { assert } from "../util/errors.js";
import type { NblStatus, NetBufferList } from "../nbl/nbl.js";
import { advance, chainLength, linkNbls, nblArray, segments } from "../nbl/chain.js";
import { parseTcp, TcpView } from "../wire/tcp.js";
import type { DisconnectFlags, TcpUploadReason } from "../chimney/contract.js";
import type { NdisStatus } from "../chimney/status.js";
import { viewOne } from "../chimney/tcp-state.js";
import { backlogChangeDue, preferredSendBacklog, SEND_BACKLOG_INTERVAL } from "./options.js";
import type { Conn, SendEntry } from "./connection-record.js";
import {
  OP_DISC,
  OP_DISC_COMPLETE,
  OP_FWD,
  OP_FWD_COMPLETE,
  OP_SEND,
  OP_SEND_COMPLETE,
  type TargetContext,
} from "./target-context.js";
import { compactHeld, completeRecvs, deliver, finishReq, segmentIn } from "./receive.js";
import { emit } from "./transmit.js";

/** Upload reasons the target does not use while the connection is closing (EV-2). */
const OPTIONAL_REASONS: ReadonlySet<TcpUploadReason> = new Set<TcpUploadReason>([
  "LowActivity",
  "HighDropRate",
  "SmallIO",
  "NoBufferPreposting",
  "HighFragmentation",
  "HighOutOfOrderPackets",
]);

// ---------------------------------------------------------------------------------------------
// After input: completions, events, upload requests

/** Delivery of newly arrived data (E1); what delivery left behind is held in pool chunks. */
export function deliverNew(t: TargetContext, now: Instant, c: Conn): void {
  c.deliverPending = false;
  deliver(t, now, c, "E1");
  compactHeld(t, c);
}

/** After any input: send completions, engine events, delivery, FIN/RST/timeouts. */
export function service(t: TargetContext, now: Instant, c: Conn, newData = false): void {
  if (c.phase === "terminating") return;
  t.touch(c);
  takeAcks(t, c);
  const e = c.engine;
  if (c.phase === "offloading") return; // IO-6
  if (newData) {
    if (t.moderation) {
      c.deliverPending = true;
      t.addDataWork(c);
    } else deliverNew(t, now, c);
  }
  const closed = c.closedReason;
  if (closed !== undefined) {
    c.closedReason = undefined;
    if (closed === "reset" && !c.aborted) onReset(t, c);
    else if (closed === "timeout") requestUpload(t, c, "TimeoutExpiration"); // FW2-3, spec 20 item 17
    // PS-1: also when the engine gave up on zero-window probes (more than TcpMaximumRetransmissions).
  }
  if (c.disconnect !== undefined && c.disconnect.flags === "graceful") checkGracefulDone(t, c);
  if (c.disconnect !== undefined && c.disconnect.flags === "abortive") {
    // DC-4: the RST reaches the wire queue before the disconnect completes (a terminate
    // that follows the completion must not drop it).
    emit(t, now, c, true);
    const d = c.disconnect;
    c.disconnect = undefined;
    d.nbl.status = "NDIS_STATUS_SUCCESS";
    d.nbl.bytesTransferred = 0;
    completeDisconnect(t, d.nbl);
  }
  checkFin(t, c);
  sendBacklogChange(t, now, c);
  // FW2-3 (spec 17.3): the FIN_WAIT_2 timer runs from entering FIN-WAIT-2 (read side open or
  // not); its expiry closes the engine with "timeout" -> TcpIndicateRetrieve(TimeoutExpiration)
  // above, and the terminate then reports CLOSED. Its value travels in Retransmit.TimeoutDelta.
  e.armFinWait2Timer(now);
  if (e.state === "TIME-WAIT") requestUpload(t, c, "UploadRequested"); // EV-3
  // LAST-ACK -> CLOSED (our FIN acknowledged after the peer's) or CLOSING -> CLOSED: the
  // connection is done and EV-0 has no event for it, so the target asks for the upload with
  // the mandatory UploadRequested (spec 16.4, as EV-3 does for TIME-WAIT); the host then
  // terminates the offload and finishes the connection (DC-3 / FN-3: nothing is freed before).
  if (closed === "fin" && !c.aborted) requestUpload(t, c, "UploadRequested");
}

/**
 * RST-1: abort indication; sends, disconnect and receives complete with REQUEST_ABORTED. With an
 * indication in flight the receive path is busy (RC-1): all of it follows the host's answer.
 */
export function onReset(t: TargetContext, c: Conn): void {
  if (c.inFlight !== undefined) {
    c.resetAfterAnswer = true;
    return;
  }
  c.aborted = true;
  c.pushAt = undefined;
  failSends(t, c, "NDIS_STATUS_REQUEST_ABORTED");
  const d = c.disconnect;
  if (d !== undefined) {
    c.disconnect = undefined;
    d.nbl.status = "NDIS_STATUS_REQUEST_ABORTED";
    d.nbl.bytesTransferred = 0;
    completeDisconnect(t, d.nbl);
  }
  const reqs = c.reqs.splice(0);
  for (const r of reqs) finishReq(t, r, "NDIS_STATUS_REQUEST_ABORTED");
  if (reqs.length > 0)
    completeRecvs(
      t,
      c,
      reqs.map((r) => r.nbl),
    );
  failForwards(t, c, "NDIS_STATUS_REQUEST_ABORTED");
  if (!c.abortIndicated) {
    c.abortIndicated = true;
    t.indicateEvent(c, { type: "TcpIndicateAbort" });
  }
}

/** FN-1: TcpIndicateDisconnect once the peer's FIN arrived and every byte before it was delivered. */
export function checkFin(t: TargetContext, c: Conn): void {
  if (c.finIndicated || c.aborted || c.busy || c.phase !== "offloaded") return;
  if (!c.engine.atEof) return;
  if (t.initiating > 0) {
    t.holdDelivery(c); // IO-7: the FIN indication waits (after any held data)
    return;
  }
  // Requests still queued get what they hold (0 bytes = end of stream), then the event.
  const reqs = c.reqs.splice(0);
  for (const r of reqs) finishReq(t, r, "NDIS_STATUS_SUCCESS");
  if (reqs.length > 0)
    completeRecvs(
      t,
      c,
      reqs.map((r) => r.nbl),
    );
  c.pushAt = undefined;
  c.finIndicated = true;
  t.indicateEvent(c, { type: "TcpIndicateDisconnect" });
}

/** DC-8: a graceful disconnect completes once its data and FIN are acknowledged. */
function checkGracefulDone(t: TargetContext, c: Conn): void {
  const d = c.disconnect;
  if (d === undefined) return;
  const s = c.engine.status();
  const finAcked = s.sndUna === s.sndMax && c.sends.length === 0;
  const st = c.engine.state;
  if (!finAcked || !(st === "FIN-WAIT-2" || st === "TIME-WAIT" || st === "CLOSED")) return;
  c.disconnect = undefined;
  d.nbl.status = "NDIS_STATUS_SUCCESS";
  d.nbl.bytesTransferred = d.bytes;
  if (d.bytes > 0) advance(viewOne(t.ledger, d.nbl, "target", OP_DISC_COMPLETE), d.bytes);
  completeDisconnect(t, d.nbl);
}

/** EV-4: the connection's preferred send backlog now (`preferredSendBacklog`). */
export function preferredBacklog(c: Conn): number {
  const e = c.engine;
  return preferredSendBacklog(e.cwnd, e.sndWnd, e.mss);
}

/**
 * EV-4 / ST-4: indicates TcpIndicateSendBacklogChange when the preferred backlog moved enough
 * (a quarter of the last value) and the last indication is at least SEND_BACKLOG_INTERVAL (or
 * one srtt) old; the first one right after the offload completes. Not once an upload is asked
 * for, nor after the connection closed for sending.
 */
function sendBacklogChange(t: TargetContext, now: Instant, c: Conn): void {
  // A recheck is good for one look: left set on a connection that no longer indicates (closing,
  // upload asked for), it would stay due for ever and its driver would spin.
  c.backlogRecheck = undefined;
  if (!t.backlogSupported || c.phase !== "offloaded" || c.aborted || c.uploadRequested) return;
  const st = c.engine.state;
  if (st !== "ESTABLISHED" && st !== "CLOSE-WAIT") return;
  const next = preferredBacklog(c);
  const srtt = c.engine.srtt ?? Duration.ZERO;
  const interval = srtt > SEND_BACKLOG_INTERVAL ? srtt : SEND_BACKLOG_INTERVAL;
  if (next === c.backlog) return;
  if (!backlogChangeDue(c.backlog, c.backlogAt, next, now, interval)) {
    // Big enough but too soon: look again when the interval has passed (a timer, `flush`).
    if (backlogChangeDue(c.backlog, Instant.ZERO, next, now, Duration.ZERO))
      c.backlogRecheck = Instant.add(c.backlogAt, interval);
    return;
  }
  c.backlog = next;
  c.backlogAt = now;
  t.indicateEvent(c, { type: "TcpIndicateSendBacklogChange", sendBacklog: next });
}

/** Upload requests (spec 16.4): EV-2 for optional reasons; once per connection; not during offload. */
export function requestUpload(t: TargetContext, c: Conn, reason: TcpUploadReason): void {
  if (c.uploadRequested || c.phase !== "offloaded") return;
  const st = c.engine.state;
  if (OPTIONAL_REASONS.has(reason) && (st === "FIN-WAIT-1" || st === "FIN-WAIT-2" || st === "CLOSE-WAIT"))
    return;
  c.uploadRequested = true; // TM-27: new sends now complete with UPLOAD_IN_PROGRESS
  t.indicateEvent(c, { type: "TcpIndicateRetrieve", reason });
}

// ---------------------------------------------------------------------------------------------
// Send path (spec 13.4, 13.5), disconnect and forward

/** C-11: the sends posted during an upcall, in order, now that no upcall is in progress. */
export function drainSendInbox(t: TargetContext, c: Conn): void {
  const inbox = t.sendInbox.get(c);
  if (inbox === undefined) return;
  t.sendInbox.delete(c);
  for (const item of inbox) {
    if (item.kind === "send") send(t, c, item.nbl);
    else disconnect(t, c, item.nbl, item.flags);
  }
}

/** The body of MiniportTcpOffloadSend, outside any upcall. */
export function send(t: TargetContext, c: Conn, nbl: NetBufferList): void {
  const fail = sendRefusal(c);
  const refused: NetBufferList[] = [];
  for (const n of nblArray(nbl)) {
    if (fail !== undefined) {
      n.status = fail;
      n.bytesTransferred = 0;
      refused.push(n);
      continue;
    }
    const bytes = sendNbl(t, c, n, OP_SEND);
    c.sends.push({ nbl: n, left: bytes, acked: 0, disconnect: false });
  }
  if (refused.length > 0) {
    // TM-27 / TM-28 / RST-1: refused at once is still a later completion for the host.
    completeSends(t, refused);
  }
  service(t, t.now, c);
}

/** The body of MiniportTcpOffloadDisconnect, after every send posted before it. */
export function disconnect(t: TargetContext, c: Conn, nbl: NetBufferList, flags: DisconnectFlags): void {
  if (c.aborted || c.phase === "terminating" || c.uploadRequested || c.disconnect !== undefined) {
    // DC-2: fail only when the connection is being uploaded or was aborted.
    nbl.status = c.aborted ? "NDIS_STATUS_REQUEST_ABORTED" : "NDIS_STATUS_UPLOAD_IN_PROGRESS";
    nbl.bytesTransferred = 0;
    completeDisconnect(t, nbl);
    return;
  }
  if (flags === "abortive") {
    // DC-5: outstanding sends are aborted; DC-4: one RST; DC-6: stop processing input.
    failSends(t, c, "NDIS_STATUS_REQUEST_ABORTED");
    c.engine.abort();
    c.aborted = true;
    c.disconnect = { nbl, flags, bytes: 0 };
    t.addDataWork(c);
    return;
  }
  const bytes = sendNbl(t, c, nbl, OP_DISC);
  if (bytes > 0) c.sends.push({ nbl, left: bytes, acked: 0, disconnect: true });
  c.engine.close();
  c.disconnect = { nbl, flags, bytes };
  service(t, t.now, c);
}

/**
 * Queues an NBL's data in the engine (zero-copy views, IO-16), PSH at its end (SD-4); its length.
 * SW-1: the engine's sender SWS avoidance holds back a segment when it is shorter than the
 * MSS, does not reach the end of the queued data and is under half the largest window seen,
 * until its SWS override timer sends what the window allows.
 */
function sendNbl(t: TargetContext, c: Conn, n: NetBufferList, op: string): number {
  const pieces = segments(viewOne(t.ledger, n, "target", op));
  let bytes = 0;
  pieces.forEach((piece, i) => {
    const r = c.engine.send(piece, { push: i === pieces.length - 1 });
    assert(r === piece.length, () => `engine refused ${op} data (${String(r)})`);
    bytes += piece.length;
  });
  return bytes;
}

/** The status a new send request gets at once, or undefined to accept it. */
function sendRefusal(c: Conn): NblStatus | undefined {
  if (c.aborted) return "NDIS_STATUS_REQUEST_ABORTED";
  // TM-27; SD-10: also while paused after UPLOAD_ALL (this target never completes with PAUSED).
  if (c.phase === "terminating" || c.uploadRequested) return "NDIS_STATUS_UPLOAD_IN_PROGRESS";
  const st = c.engine.state;
  if (st === "CLOSED" || c.disconnect !== undefined || c.engine.sendSpace === 0)
    return "NDIS_STATUS_REQUEST_ABORTED";
  return undefined;
}

/** Turns engine `acked` counts into send completions (SD-6: one call for all that finished). */
export function takeAcks(t: TargetContext, c: Conn): void {
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
    if (e.acked > 0) advance(viewOne(t.ledger, e.nbl, "target", OP_SEND_COMPLETE), e.acked);
    done.push(e.nbl);
  }
  if (done.length > 0) completeSends(t, done);
}

/** SC-1 / SC-2: completes every outstanding send with `status` (partial bytes reported). */
export function failSends(t: TargetContext, c: Conn, status: NdisStatus): void {
  const done: NetBufferList[] = [];
  for (const e of c.sends.splice(0)) {
    if (e.disconnect) continue;
    e.nbl.status = status as NetBufferList["status"];
    e.nbl.bytesTransferred = e.acked;
    if (e.acked > 0) advance(viewOne(t.ledger, e.nbl, "target", OP_SEND_COMPLETE), e.acked);
    done.push(e.nbl);
  }
  if (done.length > 0) completeSends(t, done);
}

function completeSends(t: TargetContext, nbls: NetBufferList[]): void {
  const head = linkNbls(nbls);
  if (head === null) return;
  t.ledger.transfer(head, "target", "host", OP_SEND_COMPLETE);
  t.stats.sendCompletions += nbls.length;
  t.upcalls++; // C-11: a send posted from the completion waits for `process`
  try {
    t.host.tcpOffloadSendComplete(head);
  } finally {
    t.upcalls--;
  }
}

export function completeDisconnect(t: TargetContext, nbl: NetBufferList): void {
  nbl.next = null;
  t.ledger.transfer(nbl, "target", "host", OP_DISC_COMPLETE);
  t.host.tcpOffloadDisconnectComplete(nbl);
}

export function processForwards(t: TargetContext, now: Instant, c: Conn): void {
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
    const bytes = new Uint8Array(chainLength(viewOne(t.ledger, n, "target", OP_FWD)));
    let at = 0;
    for (const piece of segments(viewOne(t.ledger, n, "target", OP_FWD))) {
      bytes.set(piece, at);
      at += piece.length;
    }
    const v = TcpView.checked(bytes);
    const seg = v.ok ? parseTcp(v.value) : undefined;
    if (seg === undefined || !seg.ok) {
      n.status = "NDIS_STATUS_FAILURE";
      continue;
    }
    segmentIn(t, now, c, seg.value, bytes, true);
    n.status = c.aborted ? "NDIS_STATUS_REQUEST_ABORTED" : "NDIS_STATUS_SUCCESS";
  }
  const head = linkNbls(fw);
  if (head !== null) {
    t.ledger.transfer(head, "target", "host", OP_FWD_COMPLETE);
    t.host.tcpOffloadForwardComplete(head);
  }
}

export function failForwards(t: TargetContext, c: Conn, status: NdisStatus): void {
  const fw = c.forwards.splice(0);
  for (const n of fw) n.status = status as NetBufferList["status"];
  const head = linkNbls(fw);
  if (head !== null) {
    t.ledger.transfer(head, "target", "host", OP_FWD_COMPLETE);
    t.host.tcpOffloadForwardComplete(head);
  }
}
