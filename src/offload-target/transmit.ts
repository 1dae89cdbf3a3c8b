/**
 * The wire side of the offloaded connections, and their timers.
 *
 * Cost per event is independent of how many connections are offloaded: anything that touches a
 * connection puts it on the dirty list (`TargetContext.touch`); `flush`, run from `pollTransmit`
 * and `pollTimeout`, drains only that list: the connection's segments become frames, then its
 * deadline (the earliest of its engine timers, its push timer and its send-backlog recheck) goes
 * into one min-heap with lazy deletion: an entry is `live` only while it equals the connection's
 * current deadline, so `handleTimeout` pops only expired entries.
 *
 * Frames are built here (SD-7..SD-9, NB-1, spec 15.5: never fragmented), counted for SS-1, and
 * preceded by the neighbor reachability test (NR-3) when both sides' reachability is stale.
 */
import { Duration, Instant } from "../time/instant.js";
import { Seq } from "../wire/seq.js";
import { emitTcpPacket } from "../wire/packet.js";
import { macEquals, MAC_ZERO } from "../wire/ethernet.js";
import { ipVersion } from "../wire/ip-addr.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { type NeighborBlock, newBlock } from "../chimney/block-list.js";
import type { Conn } from "./connection-record.js";
import type { TargetContext, TimerEntry } from "./target-context.js";

/**
 * The earliest timer deadline (engine timers and push timers), or undefined. O(log n) per
 * superseded heap entry: deadlines live in a min-heap with lazy deletion.
 */
export function nextDeadline(t: TargetContext): Instant | undefined {
  if (t.dirty.length > 0) flush(t, t.now);
  for (let top = t.timers.peek(); top !== undefined; top = t.timers.peek()) {
    if (live(t, top)) return top.at;
    t.timers.pop(); // superseded or gone (lazy deletion)
  }
  return undefined;
}

/** Takes the expired heap entries: the connections whose deadline passed, deadline cleared. */
export function expired(t: TargetContext, now: Instant): Conn[] {
  if (t.dirty.length > 0) flush(t, now);
  const due: Conn[] = [];
  for (let top = t.timers.peek(); top !== undefined && top.at <= now; top = t.timers.peek()) {
    t.timers.pop();
    if (!live(t, top)) continue;
    top.c.deadline = undefined;
    due.push(top.c);
  }
  return due;
}

/** A heap entry is live while it is its connection's current deadline. */
function live(t: TargetContext, e: TimerEntry): boolean {
  const c = e.c;
  return c.deadline === e.at && c.phase !== "terminating" && t.conns.get(c.ctx) === c;
}

/** Drains the dirty connections' segments into frames and re-files their deadlines. */
export function flush(t: TargetContext, now: Instant): void {
  while (t.dirty.length > 0) {
    const batch = t.dirty;
    t.dirty = [];
    for (const c of batch) {
      c.dirty = false;
      if (t.conns.get(c.ctx) !== c || c.phase === "terminating") continue;
      emit(t, now, c);
      const d = Instant.earliest(Instant.earliest(c.engine.pollTimeout(), c.pushAt), c.backlogRecheck);
      if (d !== c.deadline) {
        c.deadline = d;
        if (d !== undefined) t.timers.push({ at: d, c });
      }
    }
  }
}

/** Drains the engine's segments into frames (IV-3: none for invalidated state). */
export function emit(t: TargetContext, now: Instant, c: Conn, force = false): void {
  if (c.phase === "terminating" && !force) return;
  if (!force && (c.invalid || c.path.invalid || c.path.neighbor.invalid)) return;
  for (let seg = c.engine.pollTransmit(now); seg !== undefined; seg = c.engine.pollTransmit(now)) {
    if (c.urgent && !(seg.flags & TcpFlag.RST)) continue; // spec 15.3 step 3: ACK nothing more
    reachability(t, now, c);
    pushFrame(t, c, seg);
  }
}

/** Builds and queues the frame of one segment (SD-7, SD-8, SD-9, 15.5, NB-1): never fragmented. */
export function pushFrame(t: TargetContext, c: Conn, seg: TcpRepr): void {
  const p = c.path;
  const n = p.neighbor;
  const ca = c.cachedState;
  const v4 = ipVersion(p.constState.sourceAddress) === 4;
  const vlanId = n.constState.vlanId;
  const prio = ca.userPriority;
  const frame = emitTcpPacket({
    ip: {
      src: p.constState.sourceAddress,
      dst: p.constState.destinationAddress,
      ttl: ca.ttlOrHopLimit,
      dscp: ca.tosOrTrafficClass >> 2,
      ecn: 0,
      ident: v4 ? nextIdent(t) : undefined,
      dontFragment: true,
      flowLabel: v4 ? undefined : ca.flowLabel,
    },
    tcp: seg,
    ethernet: {
      src: macEquals(n.constState.dlSourceAddress, MAC_ZERO) ? t.mac : n.constState.dlSourceAddress,
      dst: n.cachedState.dlDestinationAddress,
      vlan: vlanId === 0 && prio === 0 ? undefined : { id: vlanId, priority: prio, dropEligible: false },
    },
  });
  countSent(t, c, seg, frame, vlanId === 0 && prio === 0 ? 14 : 18);
  t.wireFrames.push(frame);
}

/** SS-1: a segment sent for an offloaded connection (pure retransmissions counted apart). */
function countSent(t: TargetContext, c: Conn, seg: TcpRepr, frame: Uint8Array, ethBytes: number): void {
  const v = ipVersion(c.path.constState.sourceAddress);
  const len = seg.payload.length + (seg.flags & TcpFlag.SYN ? 1 : 0) + (seg.flags & TcpFlag.FIN ? 1 : 0);
  const end = Seq.add(seg.seq, len);
  const max = t.sentMax.get(c);
  const retransmission = len > 0 && max !== undefined && Seq.le(end, max);
  if (max === undefined || Seq.gt(end, max)) t.sentMax.set(c, end);
  t.offloadStats.sent(v, frame.length - ethBytes, retransmission, (seg.flags & TcpFlag.RST) !== 0);
}

/** SD-8: IPv4 identification from the upper half, 0x8000-0xFFFF. */
function nextIdent(t: TargetContext): number {
  const id = 0x8000 | (t.ipIdent & 0x7fff);
  t.ipIdent = (t.ipIdent + 1) & 0x7fff;
  return id;
}

/** NR-3: before sending, ask the host about a neighbor that looks stale on both sides. */
function reachability(t: TargetContext, now: Instant, c: Conn): void {
  const n = c.path.neighbor;
  if (now - n.nrt <= t.nceStale || now - n.hrt <= t.nceStale) return;
  // IO-7: no NdisMOffloadEventIndicate while an initiate is in progress; a later send asks.
  if (t.initiating > 0) return;
  const nrd = Duration.fromMicros(Math.max(0, now - n.nrt));
  const block = newBlock<NeighborBlock>({
    layer: "neighbor",
    stateType: "NeighborOffloadState",
    miniportOffloadContext: null,
    ndisOffloadHandle: n.handle,
    constState: n.constState,
    cachedState: { ...n.cachedState, hostReachabilityDelta: Duration.fromMicros(Math.max(0, now - n.hrt)) },
    delegatedState: { nicReachabilityDelta: nrd },
  });
  block.status = "NDIS_STATUS_SUCCESS";
  t.upcalls++; // TM-10: NdisMOffloadEventIndicate is an upcall too
  let hrd: number;
  try {
    hrd = t.host.neighborReachabilityQuery(block);
  } finally {
    t.upcalls--;
  }
  n.hrt = now - hrd; // HRD 0 (stale NCE) -> HRT = now: no new query for NceStaleTicks
}
