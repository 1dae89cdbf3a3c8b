/**
 * One TCP connection's protocol logic (RFC 9293), shared by the host stack and the offload
 * target. Sans-I/O: time is the `now` argument, randomness arrives as values (ISS, timestamp
 * offset), output is pulled.
 *
 * Parts. The connection keeps segment arrival (the RFC 9293 state machine with RFC 5961 and
 * RFC 7323 checks), congestion control (RFC 5681 / 6582 / 3465), output (Nagle, SWS, delayed
 * and batch ACKs, SACK blocks as a receiver), the timers and the user calls. Parts that own
 * their own state live in their own modules, owned by the connection and fed with what they
 * need as arguments (no callbacks, no allocation per segment):
 * - sack-scoreboard.ts: the sender's SACK scoreboard, HighRxt, IsLost / pipe / NextSeg and
 *   lost-retransmission detection (RFC 6675);
 * - spurious-undo.ts: the adaptive DupThresh and the undo of spurious recoveries and timeouts
 *   (RFC 2883 / 3522 / 3708 / 4015);
 * - rtt-estimator.ts: SRTT, RTTVAR, RTO and its backoff, Karn / timestamp samples (RFC 6298);
 * - snapshot.ts: what crosses between engines in `exportState` / `importState` and how.
 * Size: this file stays above 1,200 lines because what is left reads and writes one TCB: segment
 * arrival, output, timers and user calls all move SND.UNA / SND.NXT / SND.MAX, RCV.NXT, the
 * send and receive queues, cwnd and the timers, and splitting them further would mean
 * getters and setters (or a shared mutable record) on the per-segment path for no state of
 * their own.
 *
 * Theory of operation
 * - Inputs: `handleSegment(now, seg)` (a segment for this 4-tuple), `handleTimeout(now)` (at or
 *   after `pollTimeout()`), and user calls `send`, `recv`/`recvInto`, `close`, `shutdownRead`,
 *   `abort`, option setters.
 * - Outputs: after any input the owner drains `pollTransmit(now)` until `undefined`, then reads
 *   `pollTimeout()`, then drains `pollEvent()` (see `drain`). No method calls the owner back.
 * - States follow RFC 9293 3.3.2. LISTEN is the listener's business (listener.ts): a connection
 *   starts in SYN-SENT (`connect`) or SYN-RECEIVED (`accept`), or in the state of a snapshot
 *   (`importState`).
 * - Send side: the owner's chunks sit in a SendQueue from the first unacknowledged data byte
 *   on (zero-copy). SND.UNA <= SND.NXT <= SND.MAX; after an RTO SND.NXT goes back to SND.UNA
 *   (go-back-N, RFC 6298 5.4), and bytes below SND.MAX sent again count as retransmissions.
 *   The FIN, once `close` is called, sits at the sequence number right after the last data byte.
 * - Receive side: in-order payloads go to a RecvBuffer as views of the received segment;
 *   out-of-order ones to a bounded Reassembler. RCV.ADV is the right edge we advertised; we
 *   never shrink it (RFC 9293 3.8.6.2.2), and the receiver's SWS rule decides when it moves.
 * - Timers: retransmit (also SYN), delayed ACK, persist (also sender SWS override), keep-alive,
 *   and the close timer (TIME-WAIT 2*MSL, FIN-WAIT-2). Each is one `Instant | undefined` field.
 * - Invariants (`checkInvariants`): SND.UNA <= SND.NXT <= SND.MAX <= end of data (+ FIN),
 *   the send queue starts exactly at the send head, RCV.NXT <= RCV.ADV, data in flight has a
 *   retransmit or persist timer, TIME-WAIT has its timer, the reassembler is consistent.
 * - Export / import: `exportState` yields the const / cached / delegated split (types.ts);
 *   `importState` continues the connection on another engine with the same sequence numbers,
 *   windows, RTT, cwnd, timers (as remaining time) and timestamp clock (snapshot.ts). Out-of-order
 *   data is not exported (the peer retransmits it, as with a chimney target).
 *
 * Choices where the RFCs leave room (mostly as Linux does):
 * - Pure ACKs carry SEQ = SND.MAX, so a peer never sees one left of its window after our
 *   go-back-N timeout pulled SND.NXT back.
 * - Zero-window probes and keep-alives are SEQ = SND.UNA - 1 without data (no new byte).
 * - After timestamps are negotiated, a segment without them is still accepted (RFC 7323 3.2
 *   says SHOULD drop).
 * - Data or FIN on a SYN is not accepted: it is not acknowledged, so the peer resends it.
 * - On RTO sending restarts at SND.UNA (go-back-N) but the SACK scoreboard is kept and the
 *   resend skips SACKed ranges (RFC 6675 5.1); a second timeout in a row discards it (the
 *   peer may have reneged, RFC 2018 8). SACK recovery (RFC 6675) works per range and hole,
 *   and resends a retransmission that was itself lost without waiting for the RTO
 *   (sack-scoreboard.ts). An ACK with new SACK information counts as a duplicate even when it
 *   carries data or moves SND.UNA (RFC 6675 2): a peer that is sending too reports losses on
 *   its data. No retransmission resends SACKed bytes. No rescue retransmission. RFC 5827 early retransmit lowers
 *   DupThresh when fewer segments are outstanding and nothing new can be sent; an RFC 8985
 *   tail loss probe (`tailLossProbe`, SACK only) sends one segment after 2 * SRTT without an
 *   ACK, so a loss at the tail of a flight is repaired by SACK recovery instead of a 200 ms+
 *   RTO.
 * - Reordering (measured in the simulator with the live link's fault profile: it halved cwnd
 *   for nothing about once per 100 segments): DupThresh adapts as Linux's tcp_reordering, and
 *   a fast recovery or timeout that D-SACKs or timestamps prove spurious is undone
 *   (spurious-undo.ts). As a receiver we send a D-SACK for a duplicate (`dsack`); a pending
 *   one is not part of a snapshot, like other ACK details.
 * - Slow start counts bytes (RFC 3465, L = `abcLimit` SMSS, 1 SMSS while resending after a
 *   timeout), so the stretch ACKs of a receiver behind GRO/TSO grow cwnd as per-segment ACKs
 *   would. As a receiver, segments the owner hands in before it polls (a driver's batch) still
 *   draw an ACK for every second full-sized segment and one per out-of-order segment (RFC 5681
 *   4.2): an ACK still owed when the next data segment arrives is built then and queued
 *   (`batchAckBytes` may coalesce in-order ones into stretch ACKs, as Linux's GRO does).
 * - The RTO in a Chimney snapshot: see rtt-estimator.ts (Karn's rule is the one case where
 *   Chimney's SRtt, RttVar and Retransmit.Count do not rebuild our RTO exactly).
 * - Offload-target hooks: `flushAck` / `ackOwed` (owed delayed ACK), `send(data, { push })`
 *   (PSH at chunk boundaries), `setInitialRcvWnd`, `resetTotalRt`, `peekChunks` / `consume`,
 *   `setUrgentHold` / `takeUrgentSegment`, and `exportState` in CLOSED.
 * - A RST in TIME-WAIT is ignored (RFC 1337), not obeyed (RFC 9293).
 * - After a reset, data already received stays readable.
 */
import { Duration, Instant } from "../time/instant.js";
import { assert, assertNever, UsageError } from "../util/errors.js";
import { ECN_ECT0, type SackBlock, TcpFlag, type TcpRepr, type TcpTimestamps } from "../wire/tcp-repr.js";
import type { ChunkPool } from "../storage/chunk-pool.js";
import { RecvBuffer } from "../storage/recv-buffer.js";
import { Reassembler } from "../storage/reassembler.js";
import { SendQueue } from "../storage/send-queue.js";
import { CLOCK_G_US, RttEstimator } from "./rtt-estimator.js";
import { SackScoreboard } from "./sack-scoreboard.js";
import {
  checkExportable,
  checkImportable,
  frozenChunks,
  frozenSnapshot,
  importedTimes,
  relativeTimes,
} from "./snapshot.js";
import { carriesDsack, SpuriousUndo } from "./spurious-undo.js";
import {
  FAST_OPEN_OPTION,
  type FastOpenOutcome,
  type FastOpenRequest,
  validFastOpenCookie,
} from "./fast-open.js";
import { Cubic } from "./cubic.js";
import { CSS_GROWTH_DIVISOR, HyStartPlusPlus } from "./hystart.js";
import { Rack } from "./rack.js";
import { CONGESTION_CONTROLS, type CongestionControl, type TcpConfig } from "./config.js";
import { Seq, type SeqNum } from "../wire/seq.js";
import type {
  CloseReason,
  IcmpErrorCode,
  ConnEvent,
  TcpSnapshotCached,
  TcpSnapshotConst,
  TcpSnapshotDelegated,
  TcpErrorCode,
  TcpSnapshot,
  TcpState,
  TcpStats,
  UserCallError,
} from "./types.js";

export type * from "./types.js";

/** Identity and injected randomness of a new connection. */
export interface TcpOpenParams {
  /** Our port. */
  readonly localPort: number;
  /** The peer's port. */
  readonly remotePort: number;
  /** Initial send sequence number (RFC 6528: see `isn.ts`). */
  readonly iss: SeqNum;
  /** Added to the millisecond clock to form TSval (RFC 7323 5.4: random per connection). */
  readonly tsOffset: number;
  /**
   * The largest MSS the path allows (interface MTU minus IP and TCP headers); our SYN
   * advertises min(config.mss, pathMss). Defaults to config.mss.
   */
  readonly pathMss?: number | undefined;
  /**
   * The send MSS to assume when the peer's SYN has no MSS option (RFC 9293 3.7.1): 536 for
   * IPv4 (the default), 1220 for IPv6.
   */
  readonly defaultPeerMss?: number | undefined;
  /**
   * TCP Fast Open (RFC 7413), active opens only: the SYN carries the Fast Open option, with
   * the cookie and the first queued data when there is a cookie.
   */
  readonly fastOpen?: FastOpenRequest | undefined;
}

/** Options of one `send` call. */
export interface SendOptions {
  /**
   * Set PSH on the segment that carries the last byte of this data (RFC 9293 3.9.1; Chimney
   * SD-4: a push at each NBL boundary). Applies only when `send` takes all of `data`.
   */
  readonly push?: boolean | undefined;
}

/** The result of `status()`. */
export interface TcpStatus {
  readonly state: TcpState;
  readonly sndUna: SeqNum;
  readonly sndNxt: SeqNum;
  readonly sndMax: SeqNum;
  readonly sndWnd: number;
  readonly rcvNxt: SeqNum;
  readonly rcvWnd: number;
  readonly cwnd: number;
  readonly ssthresh: number;
  readonly srtt: Duration | undefined;
  readonly rto: Duration;
  readonly readable: number;
  readonly sendQueued: number;
  readonly oooBytes: number;
  readonly error: TcpErrorCode | undefined;
}

/** What a listener remembers of a SYN (also what a SYN cookie encodes). */
export interface PeerSyn {
  /** The peer's initial sequence number. */
  readonly irs: SeqNum;
  /** MSS option, or undefined when absent. */
  readonly mss: number | undefined;
  /** Window scale option, or undefined when absent. */
  readonly windowScale: number | undefined;
  readonly sackPermitted: boolean;
  /** The SYN's TSval, or undefined when it carried no timestamps. */
  readonly tsVal: number | undefined;
  /** The SYN's window field (never scaled, RFC 7323 2.2). */
  readonly window: number;
  /** The SYN's ECE and CWR bits (RFC 3168 6.1.1: both set is an ECN-setup SYN); absent: none. */
  readonly ecnFlags?: number | undefined;
}

/** Extracts the `PeerSyn` record from a received SYN. */
export function peerSynOf(seg: TcpRepr): PeerSyn {
  return {
    irs: seg.seq,
    mss: seg.mss,
    windowScale: seg.windowScale,
    sackPermitted: seg.sackPermitted,
    tsVal: seg.timestamps?.tsVal,
    window: seg.window,
    ecnFlags: seg.flags & ECN_SETUP,
  };
}

/** RFC 3168 6.1.1: the flags of an ECN-setup SYN (a SYN-ACK that agrees carries ECE alone). */
const ECN_SETUP = TcpFlag.ECE | TcpFlag.CWR;

/** A connection's ECN state once negotiated (RFC 3168 6.1; exported as `TcpEcnState`). */
class EcnState {
  echoEce = false;
  cwrPending = false;
  reducedUntil: SeqNum | undefined = undefined;
}

const EMPTY = new Uint8Array(0);
/** The out-of-order queue of every connection that has held none yet (never inserted into). */
const NO_OOO = new Reassembler(0, 0);

const NO_SACK: readonly SackBlock[] = Object.freeze([]);
const NO_OPTS: readonly never[] = Object.freeze([]);
/** ssthresh before any congestion event: arbitrarily high (RFC 5681 3.1). */
const INITIAL_SSTHRESH = 0x7fff_ffff;
/** RFC 9293 3.7.1: the MSS to assume when the peer sent none. */
const DEFAULT_PEER_MSS = 536;
/** RFC 7323 5.5: TS.Recent is invalid after 24 days of idleness. */
const PAWS_IDLE_US = 24 * 24 * 3600 * 1_000_000;
/**
 * Bound on pure ACKs queued for one batch of segments that arrived before the owner polled
 * (see `#ackQueue`); beyond it the owed ACKs merge into one, as a stretch ACK.
 */
export const MAX_QUEUED_ACKS = 128;
const SECOND_US = 1_000_000;
/** RFC 8985 WCDelAckT: worst-case delayed-ACK time added to a one-segment probe timeout. */
const TLP_DELACK_US = 200_000;
/** Bytes of the timestamps option with its padding. */
const TS_OPT_BYTES = 12;

/** A fresh set of counters, all zero. */
export function newTcpStats(): TcpStats {
  return {
    segmentsIn: 0,
    segmentsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    retransmits: 0,
    timeouts: 0,
    fastRetransmits: 0,
    dupAcksIn: 0,
    challengeAcks: 0,
    challengeAcksSuppressed: 0,
    resetsOut: 0,
    dropsOutOfWindow: 0,
    dropsPaws: 0,
    dropsBadAck: 0,
    dropsOooFull: 0,
    dropsOther: 0,
    oooSegmentsIn: 0,
    zeroWindowProbes: 0,
    keepAliveProbes: 0,
    sackRecoveries: 0,
    dsacksIn: 0,
    dsacksOut: 0,
    spuriousUndos: 0,
    reorderingRaised: 0,
    tsClockCatchUps: 0,
    ecnCeIn: 0,
    ecnReductions: 0,
    hystartExits: 0,
    rackLostBytes: 0,
    rackTimeouts: 0,
  };
}

/**
 * When an adopted connection with data in flight and no SRTT probes its tail (`probeTail`, us):
 * long enough for ACKs already on their way to land, short beside an initial RTO of 1 s.
 */
const ADOPTED_PROBE_US = 10_000;

/** The largest lead of an echoed TSval over our clock that `#catchUpTsClock` follows (ms). */
const MAX_TS_CATCH_UP = 60_000;

/** The constructor's parameters of an engine imported from `snap`. */
function importParams(snap: TcpSnapshot): TcpOpenParams {
  const k = snap.constState;
  return {
    localPort: k.localPort,
    remotePort: k.remotePort,
    iss: k.iss,
    tsOffset: 0,
    pathMss: snap.cachedState.effectiveMss,
  };
}

/**
 * One TCP connection. Create with `TcpConnection.connect`, `TcpConnection.accept`,
 * `TcpConnection.acceptEstablished` (SYN cookie) or `TcpConnection.importState`.
 */
export class TcpConnection {
  #cfg!: TcpConfig;
  #state!: TcpState;
  /** Our port (the segments' source port). */
  readonly localPort: number = 0;
  /** The peer's port. */
  readonly remotePort: number = 0;
  #iss: SeqNum = 0 as SeqNum;
  #irs: SeqNum = 0 as SeqNum;
  #activeOpen!: boolean;

  // Options (negotiated on the SYNs; fixed afterwards).
  #wsOk!: boolean;
  #sndWscale: number = 0;
  #rcvWscale: number = 0;
  #tsOk!: boolean;
  #sackOk!: boolean;
  #peerMss: number = 0;
  #defaultPeerMss: number = 0;
  /** A SYN was retransmitted: RFC 6298 5.7 applies once established. */
  #synRetransmitted!: boolean;
  /** The Fast Open request of our SYN (active opens), its data bytes, and the SYN-ACK's answer. */
  #foRequest!: FastOpenRequest | undefined;
  #foSynData: number = 0;
  #foOutcome!: FastOpenOutcome | undefined;
  /** ECN (RFC 3168) once negotiated; undefined when the connection does not use it. */
  #ecn!: EcnState | undefined;
  /** Our last SYN asked for ECN (ECE and CWR). */
  #ecnOffered!: boolean;
  #pathMss: number = 0;
  /** The MSS our SYN advertises: the interface's, never lowered by path MTU (RFC 1191 3). */
  #synMss: number = 0;
  /** When the connection was opened, for `connectTimeout`. */
  #openedAt: Instant = 0 as Instant;
  #tsOffset: number = 0;

  // Send sequence space.
  #sndUna: SeqNum = 0 as SeqNum;
  #sndNxt: SeqNum = 0 as SeqNum;
  #sndMax: SeqNum = 0 as SeqNum;
  #sndWnd: number = 0;
  #maxSndWnd: number = 0;
  #sndWl1: SeqNum = 0 as SeqNum;
  #sndWl2: SeqNum = 0 as SeqNum;
  #sendQ!: SendQueue;
  /** Sequence number of the send queue's first byte. */
  #sendHead: SeqNum = 0 as SeqNum;
  /** Send-stream offset (data bytes acknowledged so far) of the send queue's first byte. */
  #sendHeadOff: number = 0;
  #finQueued!: boolean;
  #sendBufferSize: number = 0;
  /** Send-stream offsets (exclusive ends) of chunks sent with `push`: their segment gets PSH. */
  #pushMarks!: number[];

  // Receive sequence space.
  #rcvNxt: SeqNum = 0 as SeqNum;
  #rcvAdv: SeqNum = 0 as SeqNum;
  /** Receive-stream offset of RCV.NXT (data bytes only), for the reassembler. */
  #rcvNxtOff: number = 0;
  #rcvBuf!: RecvBuffer;
  /**
   * Out-of-order segments. Until the first one arrives this is the shared empty `NO_OOO` (reads
   * only: an idle or imported connection allocates no queue); `#oooQueue` makes a real one.
   */
  #ooo!: Reassembler;
  #finReceived!: boolean;
  /** Receive-stream offset of an out-of-order FIN, if one arrived. */
  #oooFinOff!: number | undefined;
  #readShut!: boolean;
  #initialRcvWnd: number = 0;
  /** Hold segments carrying URG instead of processing them (see `setUrgentHold`). */
  #urgentHold!: boolean;
  #urgentSegment!: TcpRepr | undefined;
  /** Stream offsets of the most recent out-of-order arrivals, newest first (RFC 2018 4). */
  #sackRecent!: number[];

  // Timestamps (RFC 7323).
  #tsRecent: number = 0;
  #tsRecentAt: Instant = 0 as Instant;
  /**
   * TS.Recent is unknown (an import whose TS.Recent was older than the PAWS limit, as the kernel
   * hand-off gives): no PAWS check, and the next timestamp sets it whatever its value. Needed
   * because a clock younger than 24 days cannot date TS.Recent that far back.
   */
  #tsRecentStale!: boolean;
  #lastAckSent: SeqNum = 0 as SeqNum;

  // RTT and RTO (RFC 6298).
  #rtt!: RttEstimator;

  // Congestion control (RFC 5681, 6582, 6675, 3042).
  #cwnd: number = 0;
  #ssthresh: number = 0;
  #caAcc: number = 0;
  /** RFC 6937 PRR: the flight at recovery start, data delivered and sent since, SACKed bytes at the last ACK. */
  #recoverFs: number = 0;
  #prrDelivered: number = 0;
  #prrOut: number = 0;
  #prrSacked: number = 0;
  /** HyStart++ (RFC 9406) while the initial slow start lasts; undefined when off. */
  #hystart!: HyStartPlusPlus | undefined;
  /** CUBIC's state (RFC 9438) when the configuration selects it; NewReno otherwise. */
  #cubic!: Cubic | undefined;
  /** CUBIC's W_max before the last congestion event (restored when that event was spurious). */
  #cubicPriorWMax!: number | undefined;
  #dupAcks: number = 0;
  #inRecovery!: boolean;
  #recover!: SeqNum | undefined;
  /** A retransmission to emit next (fast retransmit / partial ACK). */
  #rtxNext!: SeqNum | undefined;
  /** SACK scoreboard (RFC 6675): SACKed ranges, HighRxt, recovery retransmissions. */
  #sb!: SackScoreboard;
  /** RFC 8985 6 RACK when the configuration turns it on (it acts on SACK connections only). */
  #rack!: Rack | undefined;
  /** RFC 8985 6.2 step 5: the reordering timer. */
  #rackAt!: Instant | undefined;
  /** RFC 8985 tail loss probe: when the probe timer fires (SACK connections only). */
  #tlpAt!: Instant | undefined;
  /** A probe is out and not yet answered by an ACK of new data (one probe per episode). */
  #tlpOut!: boolean;
  /** The next `#pollData` may send one new segment beyond cwnd (the probe). */
  #tlpSendNew!: boolean;
  /** The armed probe is an adopted connection's (`probeTail`): it does not wait for Nagle. */
  #adoptedProbe!: boolean;

  /** Adaptive DupThresh and undo of spurious recoveries (RFC 2883, 3522, 3708, 4015, 4653). */
  #spurious!: SpuriousUndo;
  /** Receiver: a D-SACK block (RFC 2883) for the next outgoing segment. */
  #dsack!: SackBlock | undefined;

  // Timers.
  #rtxAt!: Instant | undefined;
  #delackAt!: Instant | undefined;
  #persistAt!: Instant | undefined;
  #keepAliveAt!: Instant | undefined;
  #closeAt!: Instant | undefined;
  #rtxCount: number = 0;
  /** TSval of the current timeout episode's latest retransmission (see the RTT sample in #ack). */
  #rtoTsVal!: number | undefined;
  #rtxStart!: Instant | undefined;
  /** Persist round (Chimney SndWndProbeCount): the backoff exponent of the persist timer. */
  #probeCount: number = 0;
  /** Chimney 17.11 probing after a challenge ACK is running. */
  #mitigating!: boolean;
  /** Window probes sent since the peer last answered anything. */
  #probesUnanswered: number = 0;
  #kaCount: number = 0;
  /** The latest `now` seen. */
  #now: number = 0;
  /** When the peer was last heard from, in microseconds (may be negative after an import). */
  #lastRecvAt: number = 0;
  #noDelay!: boolean;
  #keepAlive!: boolean;
  #kaIdle: Duration = 0 as Duration;
  #kaInterval: Duration = 0 as Duration;
  #kaProbes: number = 0;
  #maxRtx: number = 0;
  #userTimeout!: Duration | undefined;

  // Pending output.
  #ackNow!: boolean;
  /**
   * Pure ACKs owed to segments of a batch: when a data segment arrives while an ACK is still
   * owed (the owner handed us several segments before polling), the owed ACK is built then,
   * as it would have left had the owner polled in between, so a batching driver does not turn
   * "ACK every second segment" and "ACK each out-of-order segment" (RFC 5681 4.2) into one
   * ACK per batch. `pollTransmit` sends these first. Not part of a snapshot.
   */
  #ackQueue!: TcpRepr[];
  #bytesSinceAck: number = 0;
  #rst!: TcpRepr | undefined;
  #probePending!: boolean;
  #swsOverride!: boolean;
  #chWindowStart: Instant = 0 as Instant;
  #chCount: number = 0;

  // Pending events.
  #evConnected!: boolean;
  #evAcked: number = 0;
  #evWritable!: boolean;
  #evReadable!: boolean;
  #evPeerFin!: boolean;
  #evClosed:
    | { readonly kind: "closed"; readonly reason: CloseReason; readonly error: TcpErrorCode | undefined }
    | undefined;
  #error!: TcpErrorCode | undefined;
  /** The last soft ICMP error (RFC 1122 4.2.3.9), reported if the connection times out. */
  #softError!: IcmpErrorCode | undefined;

  /**
   * `hibernate` left every field at a new connection's value and nothing has run since: a
   * `reimport` with the same configuration sets only what the snapshot's parameters and the
   * clock decide (`#wake`).
   */
  #asleep = false;

  /** The counters, made on first use (an idle connection, such as a fresh upload, has none). */
  #stats: TcpStats | undefined;

  /** Counters; read-only to the owner. */
  get stats(): TcpStats {
    this.#stats ??= newTcpStats();
    return this.#stats;
  }

  private constructor(cfg: TcpConfig, p: TcpOpenParams, state: TcpState, active: boolean, now: Instant) {
    this.localPort = p.localPort;
    this.remotePort = p.remotePort;
    this.#init(cfg, p, state, active, now, false);
  }

  /**
   * Gives every field a new connection's value: the constructor's work, and `reimport`'s on an
   * engine kept across an offload: the one place that sets them (number fields are declared
   * `= 0` only so that V8 keeps their values unboxed: see the lint rule number-field-init).
   * `reuse`: the objects the engine owns are emptied in place, not made anew (no allocation).
   */
  #init(
    cfg: TcpConfig,
    p: TcpOpenParams,
    state: TcpState,
    active: boolean,
    now: Instant,
    reuse: boolean,
  ): void {
    this.#cfg = cfg;
    this.#irs = Seq.of(0);
    this.#activeOpen = active;
    this.#foRequest = active ? p.fastOpen : undefined;
    this.#foSynData = 0;
    this.#foOutcome = undefined;
    this.#ecn = undefined;
    this.#ecnOffered = false;
    // Options
    this.#wsOk = false;
    this.#sndWscale = 0;
    // RFC 7323 2.3: the smallest shift that lets the window field cover the buffer.
    let ws = 0;
    while (ws < 14 && cfg.recvBufferSize >>> ws > 0xffff) ws++;
    this.#rcvWscale = cfg.windowScaling ? ws : 0;
    this.#tsOk = false;
    this.#sackOk = false;
    this.#peerMss = DEFAULT_PEER_MSS;
    this.#synRetransmitted = false;
    // Send sequence space (SND.UNA, SND.NXT, SND.MAX from the ISS: `#wake`)
    this.#sndWnd = 0;
    this.#maxSndWnd = 0;
    this.#sndWl1 = Seq.of(0);
    this.#sndWl2 = Seq.of(0);
    if (reuse) this.#sendQ.reinit();
    else this.#sendQ = new SendQueue();
    this.#sendHeadOff = 0;
    this.#finQueued = false;
    this.#sendBufferSize = cfg.sendBufferSize;
    if (!reuse) this.#pushMarks = [];
    else if (this.#pushMarks.length !== 0) this.#pushMarks.length = 0;
    // Receive sequence space
    this.#rcvNxt = Seq.of(0);
    this.#rcvAdv = Seq.of(0);
    this.#rcvNxtOff = 0;
    if (reuse)
      this.#rcvBuf.reinit(); // pooled chunks go back to their pool
    else this.#rcvBuf = new RecvBuffer();
    this.#ooo = NO_OOO;
    this.#finReceived = false;
    this.#oooFinOff = undefined;
    this.#readShut = false;
    this.#initialRcvWnd = cfg.recvBufferSize;
    this.#urgentHold = false;
    this.#urgentSegment = undefined;
    if (!reuse) this.#sackRecent = [];
    else if (this.#sackRecent.length !== 0) this.#sackRecent.length = 0;
    // Timestamps, RTT, congestion control
    this.#tsRecent = 0;
    this.#tsRecentAt = Instant.ZERO;
    this.#tsRecentStale = false;
    this.#lastAckSent = Seq.of(0);
    if (reuse) this.#rtt.reinit(cfg);
    else this.#rtt = new RttEstimator(cfg);
    this.#cwnd = cfg.initialCwndSegments * cfg.mss;
    this.#ssthresh = INITIAL_SSTHRESH;
    this.#caAcc = 0;
    this.#recoverFs = 0;
    this.#prrDelivered = 0;
    this.#prrOut = 0;
    this.#prrSacked = 0;
    if (!cfg.hystart) this.#hystart = undefined;
    else if (reuse && this.#hystart !== undefined) this.#hystart.reset();
    else this.#hystart = new HyStartPlusPlus();
    if (cfg.congestionControl !== "cubic") this.#cubic = undefined;
    else if (reuse && this.#cubic !== undefined) this.#cubic.reinit();
    else this.#cubic = new Cubic();
    this.#cubicPriorWMax = undefined;
    this.#dupAcks = 0;
    this.#inRecovery = false;
    this.#recover = undefined;
    this.#rtxNext = undefined;
    if (reuse) this.#sb.reinit();
    else this.#sb = new SackScoreboard();
    if (!cfg.rack) this.#rack = undefined;
    else if (reuse && this.#rack !== undefined) this.#rack.reinit();
    else this.#rack = new Rack();
    this.#rackAt = undefined;
    this.#tlpAt = undefined;
    this.#tlpOut = false;
    this.#tlpSendNew = false;
    this.#adoptedProbe = false;
    if (reuse) this.#spurious.reinit(cfg);
    else this.#spurious = new SpuriousUndo(cfg);
    this.#dsack = undefined;
    // Timers
    this.#rtxAt = undefined;
    this.#delackAt = undefined;
    this.#persistAt = undefined;
    this.#keepAliveAt = undefined;
    this.#closeAt = undefined;
    this.#rtxCount = 0;
    this.#rtoTsVal = undefined;
    this.#rtxStart = undefined;
    this.#probeCount = 0;
    this.#mitigating = false;
    this.#probesUnanswered = 0;
    this.#kaCount = 0;
    this.#noDelay = cfg.noDelay;
    this.#keepAlive = cfg.keepAlive;
    this.#kaIdle = cfg.keepAliveIdle;
    this.#kaInterval = cfg.keepAliveInterval;
    this.#kaProbes = cfg.keepAliveProbes;
    this.#maxRtx = cfg.maxRetransmissions;
    this.#userTimeout = cfg.userTimeout;
    // Pending output and events
    this.#ackNow = false;
    if (!reuse) this.#ackQueue = [];
    else if (this.#ackQueue.length !== 0) this.#ackQueue.length = 0;
    this.#bytesSinceAck = 0;
    this.#rst = undefined;
    this.#probePending = false;
    this.#swsOverride = false;
    this.#chWindowStart = Instant.ZERO;
    this.#chCount = 0;
    this.#evConnected = false;
    this.#evAcked = 0;
    this.#evWritable = false;
    this.#evReadable = false;
    this.#evPeerFin = false;
    this.#evClosed = undefined;
    this.#error = undefined;
    this.#softError = undefined;
    this.#stats = undefined;
    this.#wake(p, state, now);
  }

  /** ECN (RFC 3168) is in use: negotiated at the handshake. */
  get ecnNegotiated(): boolean {
    return this.#ecn !== undefined;
  }

  /** Active open (RFC 9293 3.10.1): the connection starts in SYN-SENT with a SYN queued. */
  static connect(cfg: TcpConfig, params: TcpOpenParams, now: Instant): TcpConnection {
    const fo = params.fastOpen;
    if (fo !== undefined) {
      if (!Number.isSafeInteger(fo.maxData) || fo.maxData < 0)
        throw new UsageError(`fastOpen.maxData must be a non-negative integer, not ${fo.maxData}`);
      if (fo.cookie !== undefined && !validFastOpenCookie(fo.cookie))
        throw new UsageError(`a fast open cookie has 4 to 16 bytes, an even number, not ${fo.cookie.length}`);
    }
    return new TcpConnection(cfg, params, "SYN-SENT", true, now);
  }

  /**
   * Passive open from a SYN a listener received (RFC 9293 3.10.7.2): the connection starts in
   * SYN-RECEIVED with a SYN-ACK queued.
   */
  static accept(cfg: TcpConfig, params: TcpOpenParams, syn: TcpRepr | PeerSyn, now: Instant): TcpConnection {
    const c = new TcpConnection(cfg, params, "SYN-RECEIVED", false, now);
    const peer = "flags" in syn ? peerSynOf(syn) : syn;
    c.#takeSyn(peer, now);
    c.#acceptEcn(peer);
    return c;
  }

  /**
   * Completes a passive open without a SYN-RECEIVED phase: the listener validated a SYN
   * cookie in `ack` (the third segment of the handshake) and recovered `syn` from it. The
   * connection is ESTABLISHED and processes `ack` (it may carry data).
   */
  static acceptEstablished(
    cfg: TcpConfig,
    params: TcpOpenParams,
    syn: PeerSyn,
    ack: TcpRepr,
    now: Instant,
  ): TcpConnection {
    const c = new TcpConnection(cfg, params, "SYN-RECEIVED", false, now);
    c.#takeSyn(syn, now);
    // Our SYN-ACK (sent statelessly by the listener) occupied ISS.
    c.#sndNxt = Seq.add(c.#iss, 1);
    c.#sndMax = c.#sndNxt;
    c.#rcvAdv = Seq.add(c.#rcvNxt, Math.min(cfg.recvBufferSize, 0xffff));
    c.#ackNow = false;
    c.handleSegment(now, ack);
    return c;
  }

  /**
   * Rebuilds a connection from `exportState`'s snapshot on this engine (the chimney's
   * offload or upload). `now` is this engine's clock; every timer restarts from its remaining
   * delta and the timestamp clock continues from `tsTime` (Chimney 17.9). Buffered chunks
   * handed out by `pool` are given back to it as the application consumes them.
   */
  static importState(snap: TcpSnapshot, now: Instant, cfg: TcpConfig, pool?: ChunkPool): TcpConnection {
    checkImportable(snap.delegated.state);
    const c = new TcpConnection(cfg, importParams(snap), snap.delegated.state, false, now);
    c.#restore(snap, now, cfg, pool);
    return c;
  }

  /**
   * Makes this engine the one `importState(snap, now, cfg, pool)` would build, without a new
   * object: the host keeps a connection's engine (emptied by `hibernate`) while the connection is
   * offloaded and wakes it at the upload. A terminate storm then allocates no engines, so the
   * young generation holds nothing that survives. `snap` must be of this connection (its ports).
   */
  reimport(snap: TcpSnapshot, now: Instant, cfg: TcpConfig, pool?: ChunkPool): void {
    checkImportable(snap.delegated.state);
    const k = snap.constState;
    if (k.localPort !== this.localPort || k.remotePort !== this.remotePort)
      throw new UsageError(
        `reimport: a snapshot of ports ${k.localPort}/${k.remotePort} into the engine of ${this.localPort}/${this.remotePort}`,
      );
    const p = importParams(snap);
    if (this.#asleep && cfg === this.#cfg) this.#wake(p, snap.delegated.state, now);
    else this.#init(cfg, p, snap.delegated.state, false, now, true);
    this.#restore(snap, now, cfg, pool);
  }

  /**
   * The part of `#init` that depends on the parameters, the state and the clock; alone, it
   * wakes an engine `hibernate` left asleep (`#init` gave every other field the value it would
   * give again with the same configuration). A terminate storm wakes 100,000 engines: their
   * 130 fields each, written again, were a tenth of the host's time. A pair test holds a woken
   * engine equal to `importState`'s, field by field.
   */
  #wake(p: TcpOpenParams, state: TcpState, now: Instant): void {
    this.#asleep = false;
    this.#state = state;
    this.#iss = p.iss;
    this.#defaultPeerMss = p.defaultPeerMss ?? DEFAULT_PEER_MSS;
    this.#pathMss = Math.min(this.#cfg.mss, p.pathMss ?? this.#cfg.mss);
    this.#synMss = this.#pathMss;
    this.#openedAt = now;
    this.#tsOffset = p.tsOffset >>> 0;
    this.#sndUna = p.iss;
    this.#sndNxt = p.iss;
    this.#sndMax = p.iss;
    this.#sendHead = Seq.add(p.iss, 1);
    this.#now = now;
    this.#lastRecvAt = now;
  }

  /**
   * Lets go of what this engine holds while its connection runs elsewhere (offloaded): queued
   * and out-of-order bytes, owed segments. Pooled receive chunks go back to their pool (their
   * bytes went to the target during the initiate, IO-19). `reimport` wakes the engine; nothing
   * else may be called before it.
   */
  hibernate(): void {
    this.#init(
      this.#cfg,
      { localPort: this.localPort, remotePort: this.remotePort, iss: this.#iss, tsOffset: 0 },
      "CLOSED",
      false,
      Instant.fromMicros(this.#now),
      true,
    );
    this.#asleep = true;
  }

  /** `importState`'s work after the constructor: every field the snapshot gives. */
  #restore(snap: TcpSnapshot, now: Instant, cfg: TcpConfig, pool: ChunkPool | undefined): void {
    const k = snap.constState;
    const ca = snap.cachedState;
    const d = snap.delegated;
    this.#irs = k.irs;
    this.#wsOk = k.windowScalingEnabled;
    this.#sndWscale = k.sndWindScale;
    this.#rcvWscale = k.rcvWindScale;
    this.#tsOk = k.timestampsEnabled;
    this.#sackOk = k.sackEnabled;
    this.#peerMss = k.remoteMss;
    this.#pathMss = ca.effectiveMss;
    this.#initialRcvWnd = ca.initialRcvWnd;
    this.#sendBufferSize = ca.sendBufferSize;
    this.#noDelay = ca.noDelay;
    this.#keepAlive = ca.keepAlive;
    this.#kaIdle = ca.keepAliveIdle;
    this.#kaInterval = ca.keepAliveInterval;
    this.#kaProbes = ca.keepAliveProbes;
    this.#maxRtx = ca.maxRetransmissions;
    this.#userTimeout = ca.userTimeout;
    this.#sndUna = d.sndUna;
    this.#sndNxt = d.sndNxt;
    this.#sndMax = d.sndMax;
    this.#sndWnd = d.sndWnd;
    this.#maxSndWnd = d.maxSndWnd;
    this.#sndWl1 = d.sndWl1;
    this.#sndWl2 = d.sndWl2;
    this.#finQueued = d.finQueued;
    for (const chunk of d.sendData) this.#sendQ.push(chunk);
    this.#rcvNxt = d.rcvNxt;
    this.#rcvAdv = d.rcvAdv;
    this.#finReceived = d.finReceived;
    // Chunks lying in `pool` memory go back to it once read by copy or consumed.
    for (const chunk of d.bufferedData) {
      if (pool?.owns(chunk) === true) this.#rcvBuf.pushPooled(chunk, pool);
      else this.#rcvBuf.push(chunk);
    }
    this.#evReadable = this.#rcvBuf.length > 0;
    this.#evPeerFin = d.finReceived;
    this.#evAcked = d.unreportedAcked;
    this.#cwnd = d.cwnd;
    this.#ssthresh = d.ssthresh;
    this.#rtt.restore(d.srtt, d.rttVar, d.rto);
    this.#tsRecent = d.tsRecent;
    this.#lastAckSent = d.rcvNxt;
    this.#dupAcks = d.dupAckCount;
    this.#recover = d.recover;
    this.#probeCount = d.sndWndProbeCount;
    this.#kaCount = d.keepAliveProbeCount;
    this.#rtxCount = d.retransmitCount;
    // Clocks and timers restart on this engine's clock (snapshot.ts).
    const t = importedTimes(snap, now, this.#rtt.cappedRto, cfg.msl);
    this.#sendHead = t.sendHead;
    this.#inRecovery = t.inRecovery;
    this.#tsRecentAt = t.tsRecentAt;
    this.#tsRecentStale = d.tsRecentAge >= PAWS_IDLE_US;
    this.#tsOffset = t.tsOffset;
    this.#lastRecvAt = t.lastRecvAt ?? now;
    this.#rtxStart = t.rtxStart;
    this.#rtxAt = t.rtxAt;
    this.#persistAt = t.persistAt;
    this.#closeAt = t.closeAt;
    this.#keepAliveAt = t.keepAliveAt;
    this.#ackNow = d.ackPending === true;
    this.#ecn = d.ecn === undefined ? undefined : Object.assign(new EcnState(), d.ecn);
    // RACK's log is not in the state: what is in flight counts as sent now (rack.ts).
    this.#rack?.seed(this.#sendHeadOff, this.#offsetOf(this.#sentDataEnd()), now);
    this.checkInvariants();
  }

  /**
   * The ACKs of the data in flight may have been lost on the way to this engine (an adoption
   * from another TCP implementation: what reached the old owner after its export is gone, and a
   * peer whose receive window we hold closed sends nothing else). Arms the tail loss probe (RFC
   * 8985 7) now, so the peer's answer comes after 2 SRTT instead of the RTO (a hand-off from
   * the Linux kernel waited 3 s for it). Without an SRTT (the kernel exports none before its
   * first sample) or SACK, the probe goes after `ADOPTED_PROBE_US`.
   */
  probeTail(now: Instant): void {
    this.#armTlp(now);
    if (this.#tlpAt === undefined && this.#cfg.tailLossProbe && !this.#inRecovery && !this.#tlpOut) {
      const at = now + ADOPTED_PROBE_US;
      if (this.#rtxAt !== undefined && this.#flight() > 0 && at < this.#rtxAt)
        this.#tlpAt = Instant.fromMicros(at);
    }
    this.#adoptedProbe = this.#tlpAt !== undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Read-only views.

  /** The RFC 9293 state. */
  get state(): TcpState {
    return this.#state;
  }
  /** SND.UNA */
  get sndUna(): SeqNum {
    return this.#sndUna;
  }
  /** SND.NXT */
  get sndNxt(): SeqNum {
    return this.#sndNxt;
  }
  /** RCV.NXT */
  get rcvNxt(): SeqNum {
    return this.#rcvNxt;
  }
  /** Bytes readable now. */
  get readable(): number {
    return this.#rcvBuf.length;
  }
  /** Bytes `send` would accept now. */
  get sendSpace(): number {
    return this.#maySend() ? Math.max(0, this.#sendBufferSize - this.#sendQ.length) : 0;
  }
  /** Send data not yet acknowledged (queued + in flight). */
  get sendQueued(): number {
    return this.#sendQ.length;
  }
  /** True once the peer's FIN has been received and every byte before it read: end of stream. */
  get atEof(): boolean {
    return this.#finReceived && this.#rcvBuf.length === 0;
  }
  /** The error the connection failed with, if any. */
  get error(): TcpErrorCode | undefined {
    return this.#error;
  }
  /** The last soft error an ICMP message reported (RFC 1122 4.2.3.9), if any. */
  get softError(): IcmpErrorCode | undefined {
    return this.#softError;
  }
  /** Congestion window in bytes. */
  get cwnd(): number {
    return this.#cwnd;
  }
  /** Slow-start threshold in bytes. */
  get ssthresh(): number {
    return this.#ssthresh;
  }
  /** Current retransmission timeout. */
  get rto(): Duration {
    return this.#rtt.rto;
  }
  /** Smoothed RTT, once sampled. */
  get srtt(): Duration | undefined {
    return this.#rtt.srtt;
  }
  /** The effective send MSS: payload bytes per full-sized segment (options excluded). */
  get mss(): number {
    return this.#smss();
  }
  /** SND.WND in bytes. */
  get sndWnd(): number {
    return this.#sndWnd;
  }
  /** The current receive window RCV.WND in bytes (RCV.ADV - RCV.NXT). */
  get rcvWnd(): number {
    return Seq.delta(this.#rcvAdv, this.#rcvNxt);
  }
  /** Timestamps negotiated. */
  get timestampsEnabled(): boolean {
    return this.#tsOk;
  }
  /** SACK negotiated. */
  get sackEnabled(): boolean {
    return this.#sackOk;
  }
  /** Window scale shifts (send, receive); both 0 when not negotiated. */
  get windowScales(): { readonly snd: number; readonly rcv: number } {
    return { snd: this.#sndWscale, rcv: this.#wsOk ? this.#rcvWscale : 0 };
  }

  /**
   * Where the sender's loss recovery stands, in Linux's terms (`tcpi_ca_state`): "loss" during a
   * timeout's resend, "recovery" in fast recovery, "cwr" after an ECN reduction until SND.UNA
   * passes its point, "disorder" with duplicate ACKs or SACKed data outstanding, else "open".
   */
  get recoveryState(): "open" | "disorder" | "cwr" | "recovery" | "loss" {
    if (this.#rtxCount > 0 || Seq.lt(this.#sndNxt, this.#sndMax)) return "loss";
    if (this.#inRecovery) return "recovery";
    const ecn = this.#ecn;
    if (ecn?.reducedUntil !== undefined && Seq.lt(this.#sndUna, ecn.reducedUntil)) return "cwr";
    if (this.#dupAcks > 0 || !this.#sb.isEmpty) return "disorder";
    return "open";
  }

  /**
   * The sender's loss accounting in bytes, as Linux counts it in segments (`tcpi_sacked`,
   * `tcpi_lost`, `tcpi_retrans`): SACKed above SND.UNA, deemed lost by RACK and not delivered
   * since (resent or not; undefined without RACK), and retransmitted and not delivered (RACK's
   * log; undefined without RACK). `reordering` is DupThresh in segments (`tcpi_reordering`).
   */
  get lossAccounting(): {
    readonly sacked: number;
    readonly lost: number | undefined;
    readonly retrans: number | undefined;
    readonly reordering: number;
  } {
    const rack = this.#sackOk ? this.#rack : undefined;
    return {
      sacked: this.#sb.isEmpty ? 0 : this.#sb.sackedAbove(this.#sendHeadOff),
      lost: rack?.lostOut,
      retrans: rack?.retransOut,
      reordering: this.#spurious.reordering,
    };
  }

  /** STATUS (RFC 9293 3.10.6): a snapshot of the main TCB variables, for diagnostics. */
  status(): TcpStatus {
    return {
      state: this.#state,
      sndUna: this.#sndUna,
      sndNxt: this.#sndNxt,
      sndMax: this.#sndMax,
      sndWnd: this.#sndWnd,
      rcvNxt: this.#rcvNxt,
      rcvWnd: this.rcvWnd,
      cwnd: this.#cwnd,
      ssthresh: this.#ssthresh,
      srtt: this.srtt,
      rto: this.rto,
      readable: this.#rcvBuf.length,
      sendQueued: this.#sendQ.length,
      oooBytes: this.#ooo.bytes,
      error: this.#error,
    };
  }

  // ---------------------------------------------------------------------------------------
  // User calls (RFC 9293 3.10.1 - 3.10.6).

  /**
   * Queues `data` for sending without copying (the caller must not modify it afterwards).
   * Returns how many bytes were accepted (fewer than `data.length` when the send buffer is
   * full; the rest can be offered again after a `writable` event), or an RFC 9293 error.
   * Data queued in SYN-SENT / SYN-RECEIVED goes out once ESTABLISHED.
   */
  send(data: Uint8Array, opts?: SendOptions): number | UserCallError {
    if (this.#state === "CLOSED" || this.#state === "LISTEN") return "connection-does-not-exist";
    if (!this.#maySend()) return "connection-closing";
    const n = Math.min(data.length, Math.max(0, this.#sendBufferSize - this.#sendQ.length));
    if (n > 0) this.#sendQ.push(n === data.length ? data : data.subarray(0, n));
    // A push applies to the end of what was taken only when all of it was taken.
    if (opts?.push === true && n > 0 && n === data.length) {
      const end = this.#sendHeadOff + this.#sendQ.length;
      if (this.#pushMarks.length < 4096) this.#pushMarks.push(end);
    }
    return n;
  }

  /**
   * Takes up to `max` readable bytes as a view of one received chunk (zero-copy), or
   * `undefined` when nothing is readable (see `atEof` for end of stream).
   */
  recv(max?: number): Uint8Array | undefined {
    const out = this.#rcvBuf.read(max);
    if (out !== undefined) this.#afterRead();
    return out;
  }

  /** Copies up to `dst.length` readable bytes into `dst`; returns the count. */
  recvInto(dst: Uint8Array): number {
    const n = this.#rcvBuf.readInto(dst);
    if (n > 0) this.#afterRead();
    return n;
  }

  /** The first readable chunk without consuming it. */
  peek(): Uint8Array | undefined {
    return this.#rcvBuf.peek();
  }

  /**
   * Every readable byte as views of the received chunks, in order, without consuming them
   * (the window stays closed by them until `consume`). The views stay valid until consumed.
   */
  peekChunks(): readonly Uint8Array[] {
    return this.#rcvBuf.chunks();
  }

  /**
   * Consumes exactly `n` readable bytes (as if read) and opens the window accordingly.
   * Throws UsageError when fewer than `n` bytes are readable.
   */
  consume(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.#rcvBuf.length)
      throw new UsageError(`consume(${n}) with ${this.#rcvBuf.length} bytes readable`);
    if (n === 0) return;
    this.#rcvBuf.consume(n);
    this.#afterRead();
  }

  /**
   * Copies readable bytes received since the last compaction into whole chunks of `pool`
   * (`RecvBuffer.compact`: for a receiver that holds data, such as an offload target whose host
   * takes none); returns the bytes copied. Nothing is read: the window does not move.
   */
  compactReceived(pool: ChunkPool): number {
    return this.#rcvBuf.compact(pool);
  }

  /**
   * CLOSE (RFC 9293 3.10.4): a FIN follows the queued data. In SYN-SENT the connection just
   * closes. Returns an error if already closing or closed.
   */
  close(): UserCallError | undefined {
    switch (this.#state) {
      case "CLOSED":
      case "LISTEN":
        return "connection-does-not-exist";
      case "SYN-SENT":
        this.#terminate("aborted", undefined);
        return undefined;
      case "SYN-RECEIVED":
        // RFC 9293 3.10.4: queue the FIN until ESTABLISHED (which then becomes FIN-WAIT-1).
        if (this.#finQueued) return "connection-closing";
        this.#finQueued = true;
        return undefined;
      case "ESTABLISHED":
        this.#finQueued = true;
        this.#state = "FIN-WAIT-1";
        return undefined;
      case "CLOSE-WAIT":
        this.#finQueued = true;
        this.#state = "LAST-ACK";
        return undefined;
      case "FIN-WAIT-1":
      case "FIN-WAIT-2":
      case "CLOSING":
      case "LAST-ACK":
      case "TIME-WAIT":
        return "connection-closing";
      default:
        return assertNever(this.#state, "TcpState");
    }
  }

  /**
   * The application will read no more: buffered and future data is discarded (and still
   * acknowledged). Also arms the FIN-WAIT-2 timer once our FIN is acknowledged.
   */
  shutdownRead(now: Instant): void {
    this.#readShut = true;
    this.#rcvBuf.clear();
    this.#afterRead();
    if (this.#state === "FIN-WAIT-2" && this.#closeAt === undefined)
      this.#closeAt = Instant.add(now, this.#cfg.finWait2Timeout);
  }

  /**
   * Starts the FIN-WAIT-2 timer (cfg.finWait2Timeout) if the connection is in FIN-WAIT-2 and it
   * is not running, without shutting the read side (Chimney FW2-3: an offload target times out
   * FIN-WAIT-2 even when the host may still receive). Returns true when it is running.
   */
  armFinWait2Timer(now: Instant): boolean {
    if (this.#state !== "FIN-WAIT-2") return false;
    this.#closeAt ??= Instant.add(now, this.#cfg.finWait2Timeout);
    return true;
  }

  /** ABORT (RFC 9293 3.10.5): a RST goes out in synchronized states; queues are dropped. */
  abort(): void {
    switch (this.#state) {
      case "CLOSED":
      case "LISTEN":
      case "TIME-WAIT":
      case "SYN-SENT":
        break;
      case "SYN-RECEIVED":
      case "ESTABLISHED":
      case "FIN-WAIT-1":
      case "FIN-WAIT-2":
      case "CLOSE-WAIT":
      case "CLOSING":
      case "LAST-ACK":
        this.#rst = this.#makeRst(this.#sndMax, this.#rcvNxt, true);
    }
    if (this.#state !== "CLOSED") this.#terminate("aborted", undefined);
  }

  /**
   * Whether an ICMP message quoting sequence number `seq` can be about a segment of this
   * connection: the connection is live (not CLOSED, LISTEN or TIME-WAIT) and `seq` lies in
   * [SND.UNA, SND.MAX) (RFC 5927 4.1). Errors and path-MTU messages are both checked with it.
   */
  icmpQuoteInWindow(seq: SeqNum): boolean {
    if (this.#state === "CLOSED" || this.#state === "LISTEN" || this.#state === "TIME-WAIT") return false;
    return !Seq.lt(seq, this.#sndUna) && Seq.lt(seq, this.#sndMax);
  }

  /**
   * An ICMP error quoting one of our segments arrived (RFC 1122 4.2.3.9, RFC 5461, RFC 5927).
   * `seq` is the quoted sequence number; the message is ignored unless it lies in
   * [SND.UNA, SND.MAX) (RFC 5927 4.1). A `hard` error aborts a connection in SYN-SENT with
   * `code`; otherwise, and in every other state, `code` is kept as the soft error, which a later
   * retransmission timeout reports instead of ETIMEDOUT. Returns whether the message was accepted.
   */
  handleIcmpError(now: Instant, seq: SeqNum, code: IcmpErrorCode, hard: boolean): boolean {
    this.#clock(now);
    if (!this.icmpQuoteInWindow(seq)) return false;
    if (hard && this.#state === "SYN-SENT") {
      this.#terminate("unreachable", code);
      return true;
    }
    this.#softError = code;
    return true;
  }

  /** Sets TCP_NODELAY (disables Nagle). */
  setNoDelay(on: boolean): void {
    this.#noDelay = on;
  }

  /**
   * Switches the congestion control (Linux's TCP_CONGESTION). cwnd and ssthresh stay; CUBIC
   * starts a new epoch with W_max = cwnd at the next congestion-avoidance ACK, as after an
   * import (RFC 9438 4.2). A recovery under way finishes under the new module's arithmetic.
   */
  setCongestionControl(cc: CongestionControl): void {
    if (!CONGESTION_CONTROLS.includes(cc))
      throw new UsageError(`congestion control ${cc} is not one of ${CONGESTION_CONTROLS.join(", ")}`);
    if (cc === "cubic") this.#cubic ??= new Cubic();
    else this.#cubic = undefined;
    this.#cubicPriorWMax = undefined;
    this.#caAcc = 0;
  }

  /** The congestion control in use. */
  get congestionControl(): CongestionControl {
    return this.#cubic === undefined ? "newreno" : "cubic";
  }

  /** Configures keep-alive (RFC 9293 3.8.4); `now` restarts its idle timer. */
  setKeepAlive(now: Instant, on: boolean, idle?: Duration, interval?: Duration, probes?: number): void {
    this.#keepAlive = on;
    if (idle !== undefined) this.#kaIdle = idle;
    if (interval !== undefined) this.#kaInterval = interval;
    if (probes !== undefined) this.#kaProbes = probes;
    this.#kaCount = 0;
    this.#lastRecvAt = now;
    this.#armKeepAlive();
  }

  /**
   * Sets the retransmission limit and the optional user timeout (RFC 5482); the time spent
   * retransmitting so far restarts from zero (Chimney TCP_FLAG_MAX_RT_RESTART).
   */
  setRetransmitLimits(maxRetransmissions: number, userTimeout: Duration | undefined): void {
    this.#maxRtx = maxRetransmissions;
    this.#userTimeout = userTimeout;
    this.#rtxStart = undefined;
  }

  /**
   * Resizes the receive buffer (Chimney InitialRcvWnd / TCP_FLAG_UPDATE_RCV_WND). A larger
   * window is advertised at once; a smaller one takes effect as the right edge is reached (the
   * window never shrinks, RFC 9293 3.8.6.2.2). The window scale negotiated on the SYNs caps it.
   */
  setRecvBufferSize(bytes: number): void {
    const grew = bytes > this.#initialRcvWnd;
    this.#initialRcvWnd = bytes;
    const synced = this.#state !== "SYN-SENT" && this.#state !== "CLOSED" && this.#state !== "LISTEN";
    if (grew && synced && !this.#finReceived) this.#ackNow = true;
  }

  /**
   * Chimney TCP_FLAG_UPDATE_RCV_WND: sets InitialRcvWnd and, when the window we would now
   * advertise differs from the one last advertised (RCV.ADV - RCV.NXT), sends a window
   * update at once. As with `setRecvBufferSize`, the advertised right edge never moves left.
   * Returns true when an update was queued.
   */
  setInitialRcvWnd(bytes: number): boolean {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new UsageError(`bad receive window ${bytes}`);
    this.#initialRcvWnd = bytes;
    const synced = this.#state !== "SYN-SENT" && this.#state !== "CLOSED" && this.#state !== "LISTEN";
    if (!synced || this.#finReceived || this.#state === "TIME-WAIT") return false;
    const ws = this.#wsOk ? this.#rcvWscale : 0;
    const wanted = Math.min(0xffff * 2 ** ws, Math.max(0, bytes - this.#rcvBuf.length));
    const advertised = Seq.delta(this.#rcvAdv, this.#rcvNxt);
    if (Math.ceil(wanted / 2 ** ws) === Math.ceil(advertised / 2 ** ws)) return false;
    this.#ackNow = true;
    return true;
  }

  /**
   * Chimney TCP_FLAG_MAX_RT_RESTART: the time spent retransmitting the current segment
   * (delegated TotalRT) restarts from zero; the retransmission count is kept.
   */
  resetTotalRt(): void {
    this.#rtxStart = undefined;
  }

  /**
   * Urgent data policy for an offload target (Chimney: a segment with URG makes the target
   * request an upload with ReceivedUrgentData and not acknowledge it). When on, a segment
   * with URG set that arrives in a synchronized state is not processed at all: it is kept
   * for `takeUrgentSegment` (the newest one wins) and nothing is acknowledged.
   */
  setUrgentHold(on: boolean): void {
    this.#urgentHold = on;
  }

  /** True when a URG segment was held (see `setUrgentHold`) and not yet taken. */
  get urgentPending(): boolean {
    return this.#urgentSegment !== undefined;
  }

  /** The held URG segment, once; `undefined` if none. The owner hands it to the host. */
  takeUrgentSegment(): TcpRepr | undefined {
    const s = this.#urgentSegment;
    this.#urgentSegment = undefined;
    return s;
  }

  /**
   * True when an ACK is owed: immediate, or a delayed ACK whose timer is running (Chimney
   * TM-11: the owner sends it before handing the connection over, see `flushAck`).
   */
  get ackOwed(): boolean {
    return this.#ackNow || this.#delackAt !== undefined || this.#ackQueue.length > 0;
  }

  /**
   * Sends an owed ACK now (stopping the delayed-ACK timer), or returns `undefined` when none
   * is owed. The segment is the same pure ACK `pollTransmit` would send when the timer fired.
   */
  flushAck(now: Instant): TcpRepr | undefined {
    this.#clock(now);
    if (!this.ackOwed) return undefined;
    this.#ackQueue = []; // the ACK below covers every queued one
    switch (this.#state) {
      case "CLOSED":
      case "LISTEN":
      case "SYN-SENT":
        this.#delackAt = undefined;
        this.#ackNow = false;
        return undefined;
      case "SYN-RECEIVED":
      case "ESTABLISHED":
      case "FIN-WAIT-1":
      case "FIN-WAIT-2":
      case "CLOSE-WAIT":
      case "CLOSING":
      case "LAST-ACK":
      case "TIME-WAIT":
        return this.#emit(now, this.#sndMax, TcpFlag.ACK, EMPTY);
    }
  }

  /** Resizes the send buffer; data already queued stays. */
  setSendBufferSize(bytes: number): void {
    this.#sendBufferSize = bytes;
  }

  /**
   * Clamps the send MSS to a path MTU (e.g. after ICMP "fragmentation needed" / "packet too
   * big"): `mtu` minus `headerBytes` (IP + base TCP header, 40 for IPv4, 60 for IPv6).
   */
  setPathMtu(mtu: number, headerBytes: number): void {
    this.setMss(mtu - headerBytes);
  }

  /** Clamps the send MSS (payload per segment including TCP options) to `mss`. */
  setMss(mss: number): void {
    const before = this.#smss();
    this.#pathMss = Math.max(64, Math.min(mss, this.#cfg.mss));
    const synced = this.#state !== "SYN-SENT" && this.#state !== "SYN-RECEIVED" && this.#state !== "CLOSED";
    if (synced && this.#smss() < before && this.#flight() > 0) {
      // The segments in flight were too big for the path and are lost: send them again at
      // the new size without a congestion response (RFC 1191 6.5; Linux tcp_simple_retransmit).
      this.#sndNxt = this.#sndUna;
      this.#rtt.karn();
      this.#rtxNext = undefined;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Input.

  /**
   * A segment for this connection arrived (the owner already verified the checksum). `held`: a
   * hand-off held it while later segments went ahead (forwarded to an offload target, or given
   * back with an upload), so PAWS does not apply to it (see the PAWS check).
   */
  handleSegment(now: Instant, seg: TcpRepr, held = false, ce = false): void {
    this.#clock(now);
    this.stats.segmentsIn++;
    switch (this.#state) {
      case "CLOSED":
      case "LISTEN":
        this.#rst = replyToUnexpected(seg);
        return;
      case "SYN-SENT":
        this.#onSynSent(now, seg);
        return;
      case "SYN-RECEIVED":
      case "ESTABLISHED":
      case "FIN-WAIT-1":
      case "FIN-WAIT-2":
      case "CLOSE-WAIT":
      case "CLOSING":
      case "LAST-ACK":
      case "TIME-WAIT":
        if (this.#urgentHold && seg.flags & TcpFlag.URG && !(seg.flags & TcpFlag.RST)) {
          this.#urgentSegment = seg;
          return;
        }
        this.#queueOwedAck(now, seg);
        this.#onSynchronized(now, seg, held, ce);
    }
  }

  /**
   * True when this connection is in TIME-WAIT and `syn` (a SYN without ACK for the same
   * 4-tuple) may open a new incarnation: its sequence number is beyond RCV.NXT, or, with
   * timestamps, its TSval is newer than TS.Recent (RFC 9293 3.10.7.4 note; RFC 6191 2). The
   * owner then drops this connection and passes the SYN to its listener.
   */
  mayReuseForSyn(syn: TcpRepr): boolean {
    if (
      this.#state !== "TIME-WAIT" ||
      (syn.flags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) !== TcpFlag.SYN
    )
      return false;
    const ts = syn.timestamps;
    if (this.#tsOk && ts !== undefined) return ((ts.tsVal - this.#tsRecent) | 0) > 0;
    return Seq.gt(syn.seq, this.#rcvNxt);
  }

  /** A deadline from `pollTimeout()` passed. Calling it early is harmless. */
  handleTimeout(now: Instant): void {
    this.#clock(now);
    if (this.#closeAt !== undefined && this.#closeAt <= now) {
      this.#closeAt = undefined;
      this.#terminate(
        this.#state === "TIME-WAIT" ? "fin" : "timeout",
        this.#state === "TIME-WAIT" ? undefined : "ETIMEDOUT",
      );
      return;
    }
    if (this.#tlpAt !== undefined && this.#tlpAt <= now) this.#onTlpTimer(now);
    if (this.#rackAt !== undefined && this.#rackAt <= now) this.#onRackTimer(now);
    if (this.#rtxAt !== undefined && this.#rtxAt <= now) this.#onRetransmitTimer(now);
    if (this.#persistAt !== undefined && this.#persistAt <= now) this.#onPersistTimer(now);
    if (this.#keepAliveAt !== undefined && this.#keepAliveAt <= now) this.#onKeepAliveTimer(now);
    if (this.#delackAt !== undefined && this.#delackAt <= now) {
      this.#delackAt = undefined;
      this.#ackNow = true;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Output.

  /** The next segment to send, or `undefined` when there is nothing to send now. */
  pollTransmit(now: Instant): TcpRepr | undefined {
    this.#clock(now);
    const rst = this.#rst;
    if (rst !== undefined) {
      this.#rst = undefined;
      this.#ackQueue = [];
      this.stats.resetsOut++;
      this.stats.segmentsOut++;
      return rst;
    }
    const queued = this.#ackQueue.shift();
    if (queued !== undefined) return queued;
    switch (this.#state) {
      case "CLOSED":
      case "LISTEN":
        return undefined;
      case "SYN-SENT":
      case "SYN-RECEIVED":
        if (this.#sndNxt === this.#iss) return this.#emitSyn(now);
        break;
      case "TIME-WAIT":
        break;
      case "ESTABLISHED":
      case "FIN-WAIT-1":
      case "FIN-WAIT-2":
      case "CLOSE-WAIT":
      case "CLOSING":
      case "LAST-ACK": {
        const seg = this.#pollData(now);
        if (seg !== undefined) return seg;
        break;
      }
      default:
        return assertNever(this.#state, "TcpState");
    }
    if (this.#probePending) {
      this.#probePending = false;
      // A probe with an old sequence number (as Linux does) draws an ACK carrying the
      // window, without consuming sequence space (RFC 9293 3.8.6.1, 3.8.4).
      return this.#emit(now, Seq.sub(this.#sndUna, 1), TcpFlag.ACK, EMPTY);
    }
    // A pure ACK carries SND.MAX, not a pulled-back SND.NXT: the peer's RCV.NXT may already be
    // beyond SND.NXT after a go-back-N timeout, and it would drop an ACK left of its window.
    if (this.#ackNow) return this.#emit(now, this.#sndMax, TcpFlag.ACK, EMPTY);
    return undefined;
  }

  /** The earliest deadline at which `handleTimeout` must be called, or `undefined`. */
  pollTimeout(): Instant | undefined {
    let t = Instant.earliest(this.#rtxAt, this.#tlpAt);
    t = Instant.earliest(t, this.#rackAt);
    t = Instant.earliest(t, this.#delackAt);
    t = Instant.earliest(t, this.#persistAt);
    t = Instant.earliest(t, this.#keepAliveAt);
    return Instant.earliest(t, this.#closeAt);
  }

  /** The next pending event, or `undefined`. */
  pollEvent(): ConnEvent | undefined {
    if (this.#evConnected) {
      this.#evConnected = false;
      return { kind: "connected" };
    }
    if (this.#evAcked > 0) {
      const bytes = this.#evAcked;
      this.#evAcked = 0;
      return { kind: "acked", bytes };
    }
    if (this.#evWritable) {
      this.#evWritable = false;
      const space = this.sendSpace;
      if (space > 0) return { kind: "writable", space };
    }
    if (this.#evReadable) {
      this.#evReadable = false;
      if (this.#rcvBuf.length > 0) return { kind: "readable", bytes: this.#rcvBuf.length };
    }
    if (this.#evPeerFin) {
      this.#evPeerFin = false;
      return { kind: "peer-fin" };
    }
    const closed = this.#evClosed;
    if (closed !== undefined) {
      this.#evClosed = undefined;
      return closed;
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Export (Chimney: the const / cached / delegated split, 4.6).

  /**
   * A frozen snapshot of the connection for `importState` on another engine. Allowed in the
   * offloadable states (Chimney ST-9: ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT,
   * CLOSING, LAST-ACK) plus TIME-WAIT; throws UsageError otherwise. Drain `pollTransmit`
   * first so no ACK is owed. Non-destructive: the owner discards this instance afterwards.
   */
  exportState(now: Instant): TcpSnapshot {
    checkExportable(this.#state);
    const constState: TcpSnapshotConst = {
      localPort: this.localPort,
      remotePort: this.remotePort,
      timestampsEnabled: this.#tsOk,
      sackEnabled: this.#sackOk,
      windowScalingEnabled: this.#wsOk,
      sndWindScale: this.#sndWscale,
      rcvWindScale: this.#wsOk ? this.#rcvWscale : 0,
      remoteMss: this.#peerMss,
      iss: this.#iss,
      irs: this.#irs,
    };
    const cachedState: TcpSnapshotCached = {
      initialRcvWnd: this.#initialRcvWnd,
      sendBufferSize: this.#sendBufferSize,
      noDelay: this.#noDelay,
      keepAlive: this.#keepAlive,
      keepAliveIdle: this.#kaIdle,
      keepAliveInterval: this.#kaInterval,
      keepAliveProbes: this.#kaProbes,
      maxRetransmissions: this.#maxRtx,
      userTimeout: this.#userTimeout,
      effectiveMss: this.#pathMss,
    };
    return frozenSnapshot(constState, cachedState, this.exportDelegated(now));
  }

  /**
   * The delegated part of `exportState(now)` (frozen as well), without building the const and
   * cached parts: what a terminate hands back (Chimney ST-5: the target returns only the
   * delegated state), once per connection of a storm.
   */
  exportDelegated(now: Instant): TcpSnapshotDelegated {
    checkExportable(this.#state);
    const rel = relativeTimes(now, {
      rtxAt: this.#rtxAt,
      persistAt: this.#persistAt,
      closeAt: this.#closeAt,
      keepAliveAt: this.#keepAliveAt,
      rtxStart: this.#rtxStart,
      tsRecentAt: this.#tsRecentAt,
    });
    let delegated: TcpSnapshotDelegated = {
      state: this.#state,
      rcvNxt: this.#rcvNxt,
      rcvAdv: this.#rcvAdv,
      sndUna: this.#sndUna,
      sndNxt: this.#sndNxt,
      sndMax: this.#sndMax,
      sndWnd: this.#sndWnd,
      maxSndWnd: this.#maxSndWnd,
      sndWl1: this.#sndWl1,
      sndWl2: this.#sndWl2,
      cwnd: this.#cwnd,
      ssthresh: this.#ssthresh,
      srtt: this.#rtt.srtt,
      rttVar: this.#rtt.rttVar,
      rto: this.#rtt.rto,
      tsRecent: this.#tsRecent,
      tsRecentAge: this.#tsRecentStale
        ? Duration.max(rel.tsRecentAge, Duration.fromMicros(PAWS_IDLE_US))
        : rel.tsRecentAge,
      tsTime: this.#tsNow(now),
      dupAckCount: this.#dupAcks,
      recover: this.#inRecovery ? this.#recover : undefined,
      sndWndProbeCount: this.#probeCount,
      keepAliveProbeCount: this.#kaCount,
      keepAliveDelta: rel.keepAliveDelta,
      retransmitCount: this.#rtxCount,
      retransmitDelta: rel.retransmitDelta,
      totalRt: rel.totalRt,
      finQueued: this.#finQueued,
      finReceived: this.#finReceived,
      sendData: frozenChunks(this.#sendQ.chunks()),
      bufferedData: frozenChunks(this.#rcvBuf.chunks()),
      unreportedAcked: this.#evAcked,
      ackPending: this.ackOwed,
    };
    const ecn = this.#ecn;
    if (ecn !== undefined) {
      const { echoEce, cwrPending, reducedUntil } = ecn;
      delegated = { ...delegated, ecn: { echoEce, cwrPending, reducedUntil } };
    }
    return Object.freeze(delegated);
  }

  /** The out-of-order queue to insert into: a queue of this connection's own on first use. */
  #oooQueue(): Reassembler {
    if (this.#ooo === NO_OOO) this.#ooo = new Reassembler(this.#cfg.maxOooBytes, this.#cfg.maxOooRanges);
    return this.#ooo;
  }

  /** Throws InvariantViolation if the TCB is inconsistent. Cheap enough for every test step. */
  checkInvariants(): void {
    if (this.#state === "CLOSED") return;
    assert(Seq.le(this.#sndUna, this.#sndNxt), () => `SND.UNA ${this.#sndUna} > SND.NXT ${this.#sndNxt}`);
    assert(Seq.le(this.#sndNxt, this.#sndMax), () => `SND.NXT ${this.#sndNxt} > SND.MAX ${this.#sndMax}`);
    const synAcked = this.#sndUna !== this.#iss;
    if (synAcked) {
      const finInFlight = this.#finQueued && Seq.gt(this.#sndUna, this.#finSeq());
      const head = finInFlight ? Seq.sub(this.#sndUna, 1) : this.#sndUna;
      assert(this.#sendHead === head, () => `send head ${this.#sendHead} != ${head}`);
    } else {
      assert(this.#sendHead === Seq.add(this.#iss, 1), "send head before SYN acked");
    }
    const end = this.#finQueued ? Seq.add(this.#finSeq(), 1) : this.#dataEnd();
    assert(Seq.le(this.#sndMax, end), () => `SND.MAX ${this.#sndMax} beyond data end ${end}`);
    if (this.#state !== "SYN-SENT") {
      assert(Seq.le(this.#rcvNxt, this.#rcvAdv), () => `RCV.NXT ${this.#rcvNxt} > RCV.ADV ${this.#rcvAdv}`);
    }
    assert(this.#cwnd > 0, "cwnd must be positive");
    const synced = this.#state !== "SYN-SENT" && this.#state !== "SYN-RECEIVED";
    if (synced && this.#flight() > 0 && this.#state !== "TIME-WAIT") {
      assert(
        this.#rtxAt !== undefined || this.#persistAt !== undefined,
        "data in flight without a retransmit timer",
      );
    }
    if (this.#state === "TIME-WAIT") assert(this.#closeAt !== undefined, "TIME-WAIT without its timer");
    const rack = this.#rack;
    if (rack !== undefined && this.#sackOk && synAcked) {
      const sent = this.#offsetOf(this.#sentDataEnd()) - this.#sendHeadOff;
      assert(
        rack.outstanding <= sent && rack.lost <= rack.outstanding,
        () => `RACK holds ${rack.outstanding} B (${rack.lost} lost) of ${sent} B sent`,
      );
    }
    this.#ooo.checkInvariants();
  }

  // ---------------------------------------------------------------------------------------
  // Segment arrival: SYN-SENT (RFC 9293 3.10.7.3).

  #onSynSent(now: Instant, seg: TcpRepr): void {
    const f = seg.flags;
    if (f & TcpFlag.ACK) {
      // Unacceptable ACK: RST unless it is a RST.
      if (Seq.le(seg.ack, this.#iss) || Seq.gt(seg.ack, this.#sndMax)) {
        if (!(f & TcpFlag.RST)) this.#rst = this.#makeRst(seg.ack, Seq.of(0), false);
        this.stats.dropsBadAck++;
        return;
      }
    }
    if (f & TcpFlag.RST) {
      // RFC 5961 3.2 / RFC 9293: only a RST that acknowledges our SYN is believed.
      if (f & TcpFlag.ACK) this.#terminate("refused", "ECONNREFUSED");
      else this.stats.dropsOther++;
      return;
    }
    if (!(f & TcpFlag.SYN)) {
      this.stats.dropsOther++;
      return;
    }
    if (f & TcpFlag.FIN && this.#cfg.dropSynFin) {
      this.stats.dropsOther++;
      return;
    }
    const peer = peerSynOf(seg);
    this.#takeSyn(peer, now);
    // RFC 3168 6.1.1: a SYN-ACK agrees to the ECN our SYN asked for with ECE alone; a SYN of a
    // simultaneous open is answered as a listener answers it.
    if (!(f & TcpFlag.ACK)) this.#acceptEcn(peer);
    else if (this.#ecnOffered && (f & ECN_SETUP) === TcpFlag.ECE) this.#ecn = new EcnState();
    // The peer may use the (unscaled) window our SYN offered (RFC 7323 2.2).
    this.#rcvAdv = Seq.add(this.#rcvNxt, Math.min(this.#initialRcvWnd, 0xffff));
    if (f & TcpFlag.ACK) {
      this.#takeFastOpenAnswer(seg);
      this.#sndUna = seg.ack;
      // Sending goes on from what the SYN-ACK acknowledged: data of a fast open SYN it left
      // out goes again at once (RFC 7413 3); data it took is past, even after a retransmitted
      // SYN without it.
      this.#sndNxt = this.#sndUna;
      this.#sndWnd = seg.window; // SYN-ACK window is never scaled (RFC 7323 2.2)
      this.#maxSndWnd = this.#sndWnd;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = seg.ack;
      this.#rtxAt = undefined;
      this.#rtxCount = 0;
      this.#rtxStart = undefined;
      this.#rtt.onSynAcked(now);
      this.#rtoFallback();
      if (this.#tsOk && seg.timestamps !== undefined) this.#tsRecentAt = now;
      this.#state = this.#finQueued ? "FIN-WAIT-1" : "ESTABLISHED";
      this.#evConnected = true;
      this.#evWritable = true;
      this.#ackNow = true;
      this.#armKeepAlive();
      // Data on the SYN-ACK is taken as text (RFC 9293 3.10.7.3: "continue processing at the
      // sixth step"); a FIN on it is ignored, so the peer sends it again.
      if (seg.payload.length > 0) {
        const wnd = Math.max(0, Seq.delta(this.#rcvAdv, this.#rcvNxt));
        this.#onText(now, { ...seg, seq: Seq.add(seg.seq, 1) }, 0, wnd);
        this.#ackNow = true;
      }
    } else {
      // Simultaneous open (RFC 9293 figure 8): SYN-RECEIVED, send SYN-ACK on ISS.
      this.#state = "SYN-RECEIVED";
      this.#sndNxt = this.#iss;
      this.#rtxAt = undefined;
      this.#rtt.karn();
      // Data on the SYN is queued for delivery once ESTABLISHED (RFC 9293 3.10.7.3), not
      // acknowledged before that; a FIN on it is ignored.
      const wnd = Math.max(0, Seq.delta(this.#rcvAdv, this.#rcvNxt));
      const take = Math.min(seg.payload.length, wnd);
      if (take > 0) this.#oooQueue().insert(this.#rcvNxtOff, seg.payload.subarray(0, take));
    }
  }

  /**
   * A SYN-ACK to a fast open SYN: the data it acknowledged leaves the send queue, and what it
   * said (its cookie, whether the data got in) is kept for `fastOpenOutcome`.
   */
  #takeFastOpenAnswer(seg: TcpRepr): void {
    const fo = this.#foRequest;
    if (fo === undefined) return;
    const acked = Seq.gt(seg.ack, this.#sendHead) ? Seq.diff(seg.ack, this.#sendHead) : 0;
    if (acked > 0) this.#dropAcked(seg.ack, acked);
    let cookie: Uint8Array | undefined;
    for (const o of seg.unknownOptions) if (o.kind === FAST_OPEN_OPTION) cookie = o.data.slice();
    this.#foOutcome = {
      sentCookie: fo.cookie !== undefined,
      synData: this.#foSynData,
      synDataAcked: acked >= this.#foSynData,
      cookie,
      peerMss: this.#peerMss,
    };
  }

  /** What the SYN-ACK answered to our fast open SYN, once it came (RFC 7413). */
  fastOpenOutcome(): FastOpenOutcome | undefined {
    return this.#foOutcome;
  }

  /** Records the peer's SYN and negotiates options (RFC 7323 1.3, 2.2; RFC 2018 2). */
  #takeSyn(syn: PeerSyn, now: Instant): void {
    this.#irs = syn.irs;
    this.#rcvNxt = Seq.add(syn.irs, 1);
    this.#rcvAdv = this.#rcvNxt;
    this.#lastAckSent = this.#rcvNxt;
    this.#peerMss = syn.mss ?? this.#defaultPeerMss;
    // Only what our own SYN (or SYN-ACK: noOptions holds for it too) offered can be negotiated.
    const offers = this.#synOffers();
    this.#wsOk = offers.ws && syn.windowScale !== undefined;
    this.#sndWscale = this.#wsOk ? Math.min(14, syn.windowScale ?? 0) : 0;
    this.#tsOk = offers.ts && syn.tsVal !== undefined;
    if (this.#tsOk) {
      this.#tsRecent = syn.tsVal ?? 0;
      this.#tsRecentAt = now;
    }
    this.#sackOk = offers.sack && syn.sackPermitted;
    this.#sndWnd = syn.window;
    this.#maxSndWnd = syn.window;
    this.#sndWl1 = syn.irs;
    this.#cwnd = this.#cfg.initialCwndSegments * this.#smss();
  }

  /** RFC 3168 6.1.1: a peer's ECN-setup SYN (ECE and CWR) gets ECN unless it is off here. */
  #acceptEcn(syn: PeerSyn): void {
    this.#ecn = this.#cfg.ecn !== "off" && syn.ecnFlags === ECN_SETUP ? new EcnState() : undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Segment arrival: synchronized states and SYN-RECEIVED (RFC 9293 3.10.7.4).

  #onSynchronized(now: Instant, seg: TcpRepr, held: boolean, ce: boolean): void {
    const f = seg.flags;
    // TIME-WAIT (as FreeBSD tcp_twcheck): a segment with neither ACK nor SYN is dropped
    // without a reply (every segment of the peer's after its SYN carries ACK, RFC 9293 3.1),
    // and a RST is ignored (RFC 1337).
    if (this.#state === "TIME-WAIT" && !(f & (TcpFlag.ACK | TcpFlag.SYN))) {
      this.stats.dropsOther++;
      return;
    }
    // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost, send it again.
    if (this.#state === "SYN-RECEIVED" && f & TcpFlag.SYN && !(f & TcpFlag.ACK) && seg.seq === this.#irs) {
      this.#sndNxt = this.#iss;
      return;
    }
    // RFC 7323 5.3 PAWS, before the sequence check (except on RST). Not for a segment a
    // hand-off held (`held`: forwarded to the offload target, or given back to the host with an
    // upload): it arrived before segments this engine has already seen, so a retransmission
    // processed first may have moved TS.Recent past its TSval, and PAWS would drop new data as
    // an old duplicate. PAWS guards against duplicates from an earlier wrap of the sequence
    // space; a segment held for milliseconds is not one, and the sequence check still applies.
    const ts = seg.timestamps;
    if (this.#tsOk && ts !== undefined && !(f & TcpFlag.RST) && !held) {
      if (
        !this.#tsRecentStale &&
        ((ts.tsVal - this.#tsRecent) | 0) < 0 &&
        now - this.#tsRecentAt < PAWS_IDLE_US
      ) {
        this.stats.dropsPaws++;
        this.#ackNow = true;
        return;
      }
    }
    // First: acceptability (RFC 9293 3.10.7.4 table).
    const payloadLen = seg.payload.length;
    const len = payloadLen + (f & TcpFlag.SYN ? 1 : 0) + (f & TcpFlag.FIN ? 1 : 0);
    let wnd = this.#acceptWindow();
    let off = Seq.delta(seg.seq, this.#rcvNxt); // position of the segment relative to RCV.NXT
    let acceptable: boolean;
    if (len === 0) acceptable = wnd === 0 ? off === 0 : off >= 0 && off < wnd;
    else if (wnd === 0) acceptable = false;
    else acceptable = (off >= 0 && off < wnd) || (off + len - 1 >= 0 && off + len - 1 < wnd);
    // RFC 9293 3.10.7.4: with a zero window, still process the ACK and RST of a segment at
    // RCV.NXT (its text is dropped below).
    const zeroWindowAtEdge = !acceptable && wnd === 0 && off === 0;
    if (!acceptable && !zeroWindowAtEdge) {
      this.stats.dropsOutOfWindow++;
      if (!(f & TcpFlag.RST)) this.#ackNow = true;
      // RFC 2883: a segment wholly below RCV.NXT is a duplicate; report it.
      if (payloadLen > 0 && off < 0 && !(f & TcpFlag.RST)) {
        this.#noteDuplicate(seg.seq, Seq.add(seg.seq, Math.min(payloadLen, -off)));
      }
      if (
        this.#state === "TIME-WAIT" &&
        f & TcpFlag.FIN &&
        !(f & TcpFlag.RST) &&
        Seq.add(seg.seq, len) === this.#rcvNxt
      ) {
        // A retransmitted FIN: acknowledge and restart 2*MSL (RFC 9293 3.10.7.4 eighth; Linux).
        this.#closeAt = Instant.add(now, Duration.fromMicros(2 * this.#cfg.msl));
      }
      return;
    }
    this.#lastRecvAt = now;
    this.#kaCount = 0;
    // Chimney FW2-2: an acceptable segment that arrives before the FIN-WAIT-2 timer expires
    // restarts it (as FreeBSD's idle check does), so a peer still sending is not cut off.
    if (this.#state === "FIN-WAIT-2" && this.#closeAt !== undefined)
      this.#closeAt = Instant.add(now, this.#cfg.finWait2Timeout);
    if (this.#mitigating) {
      // Chimney 17.11: an acceptable segment ends the mitigation's probing.
      this.#mitigating = false;
      this.#armKeepAlive();
    }
    // RFC 1122 4.2.2.17: probing continues as long as the peer answers.
    this.#probesUnanswered = 0;
    // Second: RST (RFC 5961 3.2). In TIME-WAIT it is ignored (RFC 1337 TIME-WAIT
    // assassination hazards; FreeBSD and Linux do so): the 2*MSL quiet time runs out.
    if (f & TcpFlag.RST && this.#state === "TIME-WAIT") {
      this.stats.dropsOther++;
      return;
    }
    if (f & TcpFlag.RST) {
      if ((this.#cfg.rfc5961Rst ?? this.#cfg.rfc5961) && off !== 0) {
        this.#challengeAck(now);
        return;
      }
      this.#onReset();
      return;
    }
    // Fourth: SYN in a synchronized state (RFC 5961 4.2; RFC 793 sent a RST).
    if (f & TcpFlag.SYN) {
      const secureSyn = this.#cfg.rfc5961Syn ?? this.#cfg.rfc5961;
      if (this.#state === "SYN-RECEIVED" && !this.#activeOpen && !secureSyn) {
        this.#terminate("reset", "ECONNRESET");
        return;
      }
      // A SYN left of RCV.NXT is an old duplicate that trimming to the window removes
      // (RFC 9293 3.10.7.4 first check, as BSD's trimming does): it only draws an ACK.
      if (off < 0) {
        this.stats.dropsOutOfWindow++;
        this.#ackNow = true;
        return;
      }
      if (secureSyn) {
        this.#challengeAck(now);
        return;
      }
      this.#rst = this.#makeRst(this.#sndMax, this.#rcvNxt, true);
      this.#terminate("reset", "ECONNRESET");
      return;
    }
    // RFC 3168 6.1.3: the peer's CWR ends our ECE; a CE mark on its data starts it (again), and
    // is acknowledged at once so the sender hears of the congestion within a round trip.
    const ecn = this.#ecn;
    if (ecn !== undefined) {
      if (f & TcpFlag.CWR) ecn.echoEce = false;
      if (ce && payloadLen > 0) {
        ecn.echoEce = true;
        this.#ackNow = true;
        this.stats.ecnCeIn++;
      }
    }
    // TS.Recent update (RFC 7323 4.3): only for a segment covering Last.ACK.sent.
    if (
      this.#tsOk &&
      ts !== undefined &&
      Seq.le(seg.seq, this.#lastAckSent) &&
      (this.#tsRecentStale || ((ts.tsVal - this.#tsRecent) | 0) >= 0)
    ) {
      this.#tsRecentStale = false;
      this.#tsRecent = ts.tsVal;
      this.#tsRecentAt = now;
    }
    if (this.#tsOk && ts !== undefined && ts.tsEcr !== 0) this.#catchUpTsClock(now, ts.tsEcr);
    // Fifth: ACK.
    if (!(f & TcpFlag.ACK)) {
      this.stats.dropsOther++;
      return;
    }
    const wasSynReceived = this.#state === "SYN-RECEIVED";
    if (wasSynReceived) {
      if (Seq.le(seg.ack, this.#sndUna) || Seq.gt(seg.ack, this.#sndMax)) {
        this.#rst = this.#makeRst(seg.ack, Seq.of(0), false);
        this.stats.dropsBadAck++;
        return;
      }
      this.#state = this.#finQueued ? "FIN-WAIT-1" : "ESTABLISHED";
      this.#sndWnd = seg.window << this.#sndWscale;
      this.#maxSndWnd = Math.max(this.#maxSndWnd, this.#sndWnd);
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = seg.ack;
      this.#evConnected = true;
      this.#evWritable = true;
      this.#armKeepAlive();
      // Data that came on a SYN in SYN-SENT (simultaneous open) is now in order.
      for (let ch = this.#ooo.pop(this.#rcvNxtOff); ch !== undefined; ch = this.#ooo.pop(this.#rcvNxtOff)) {
        this.#rcvBuf.push(ch);
        this.#advanceRcv(ch.length);
        this.#evReadable = true;
        wnd = this.#acceptWindow();
        off = Seq.delta(seg.seq, this.#rcvNxt);
      }
    }
    if (!this.#onAckField(now, seg, payloadLen)) return;
    if (wasSynReceived) this.#rtoFallback();
    // Sixth: URG is treated as inline data (RFC 6093): nothing to do.
    // Seventh: text.
    let finOk = (f & TcpFlag.FIN) !== 0;
    if (payloadLen > 0) {
      // In CLOSE-WAIT, CLOSING, LAST-ACK and TIME-WAIT the peer already sent its FIN: ignore.
      const st: TcpState = this.#state;
      if (st === "ESTABLISHED" || st === "FIN-WAIT-1" || st === "FIN-WAIT-2")
        finOk = this.#onText(now, seg, off, wnd) && finOk;
    }
    // Eighth: FIN, when it is the next thing in sequence.
    if (finOk && !zeroWindowAtEdge) {
      if (Seq.add(seg.seq, payloadLen) === this.#rcvNxt) this.#onFin(now);
      else if (Seq.gt(Seq.add(seg.seq, payloadLen), this.#rcvNxt) && !this.#finReceived) {
        this.#oooFinOff = this.#rcvNxtOff + off + payloadLen;
        this.#ackNow = true;
      }
    } else if (zeroWindowAtEdge && len > 0) {
      this.stats.dropsOutOfWindow++;
      this.#ackNow = true;
    }
    if (
      this.#state === "TIME-WAIT" &&
      (f !== TcpFlag.ACK || payloadLen !== 0 || seg.seq !== this.#rcvNxt || seg.ack !== this.#sndMax)
    ) {
      // Only the retransmitted FIN is expected here; anything but a plain duplicate ACK draws
      // an ACK so the peer learns where we are (FreeBSD tcp_twcheck).
      this.#ackNow = true;
    }
    if (this.#state === "TIME-WAIT" && finOk) {
      // A retransmitted FIN: acknowledge and restart 2*MSL (RFC 9293 3.10.7.4 eighth).
      this.#ackNow = true;
      this.#closeAt = Instant.add(now, Duration.fromMicros(2 * this.#cfg.msl));
    }
  }

  /** The ACK field of an acceptable segment (fifth check). Returns false to drop the rest. */
  #onAckField(now: Instant, seg: TcpRepr, payloadLen: number): boolean {
    const ack = seg.ack;
    // RFC 5961 5.2: an ACK older than SND.UNA - MAX.SND.WND draws a challenge ACK.
    if (this.#cfg.rfc5961 && Seq.lt(ack, Seq.sub(this.#sndUna, Math.max(this.#maxSndWnd, 1)))) {
      this.stats.dropsBadAck++;
      this.#challengeAck(now);
      return false;
    }
    if (Seq.gt(ack, this.#sndMax)) {
      // Acknowledges something not yet sent: ACK and drop (RFC 9293 3.10.7.4 fifth).
      this.stats.dropsBadAck++;
      this.#ackNow = true;
      return false;
    }
    const win = seg.window << this.#sndWscale;
    const unaBefore = this.#sndUna;
    // RFC 5681 2: a duplicate ACK carries no data, no SYN or FIN, repeats SND.UNA and the window.
    const plainDup =
      ack === this.#sndUna &&
      payloadLen === 0 &&
      !(seg.flags & (TcpFlag.SYN | TcpFlag.FIN)) &&
      this.#sndMax !== this.#sndUna &&
      (win === this.#sndWnd || seg.sack.length > 0);
    if (Seq.gt(ack, this.#sndUna)) this.#onNewAck(now, seg, ack);
    if (this.#ecn !== undefined && seg.flags & TcpFlag.ECE) this.#onEce(this.#ecn);
    let newSack = false;
    if (this.#sackOk && seg.sack.length > 0) {
      const spurious = this.#cfg.dsack && this.#spurious.dsack(seg, this.#sndMax, this.stats);
      // Outside fast recovery the episode is undone at once, inside at its full ACK.
      if (spurious && !this.#inRecovery) this.#undo();
      if (!this.#sb.isEmpty) this.#sackReordering(seg);
      newSack = this.#sb.update(
        seg.sack,
        this.#sndUna,
        this.#sndMax,
        this.#dataEnd(),
        this.#sendHead,
        this.#sendHeadOff,
        this.#cfg.maxOooRanges,
      );
    }
    const lostBefore = this.#rack?.markedLost ?? 0;
    if (this.#rack !== undefined && this.#sackOk) this.#rackOnAck(now, seg);
    // RFC 6675 2 and 5: with SACK, an ACK that SACKs new data counts as a duplicate even when it
    // carries data, changes the window or moves the cumulative ACK, and the scoreboard is
    // updated before the duplicate is counted, so IsLost sees it. A peer that is sending too
    // (an echo, any bidirectional flow) reports losses on its data segments: Linux sends few
    // pure ACKs then, and without this every loss waited for the retransmission timeout.
    if (plainDup || (newSack && this.#sndMax !== this.#sndUna)) this.#onDupAck(now, seg);
    if (this.#cfg.prr && this.#sackOk) {
      // An ACK that reports a new loss: RACK marked one, or (without RACK) new SACK information.
      const newLoss = this.#rack === undefined ? newSack : this.#rack.markedLost !== lostBefore;
      this.#prrOnAck(Seq.gt(ack, unaBefore) ? Seq.diff(ack, unaBefore) : 0, newLoss);
    }
    // Window update (RFC 9293 3.10.7.4: only for SND.UNA =< SEG.ACK, then the WL1 / WL2 rule).
    const fresh = Seq.lt(this.#sndWl1, seg.seq) || (this.#sndWl1 === seg.seq && Seq.le(this.#sndWl2, ack));
    if (Seq.ge(ack, this.#sndUna) && fresh) {
      const opened = this.#sndWnd === 0 && win > 0;
      this.#sndWnd = win;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = ack;
      if (win > this.#maxSndWnd) this.#maxSndWnd = win;
      if (win > 0) {
        this.#persistAt = undefined;
        this.#probeCount = 0;
        if (opened && this.#flight() > 0 && this.#rtxAt === undefined)
          this.#rtxAt = Instant.add(now, this.#rtt.cappedRto);
      }
    }
    if (this.#persistAt !== undefined && this.#flight() > 0 && this.#rtxAt === undefined) {
      this.#rtxAt = Instant.add(now, this.#rtt.cappedRto);
    }
    // State transitions driven by the acknowledgment of our FIN.
    const finAcked = this.#finQueued && Seq.gt(this.#sndUna, this.#finSeq());
    switch (this.#state) {
      case "FIN-WAIT-1":
        if (finAcked) {
          this.#state = "FIN-WAIT-2";
          if (this.#readShut) this.#closeAt = Instant.add(now, this.#cfg.finWait2Timeout);
        }
        break;
      case "CLOSING":
        if (finAcked) this.#enterTimeWait(now);
        break;
      case "LAST-ACK":
        if (finAcked) {
          this.#terminate("fin", undefined);
          return false;
        }
        break;
      case "CLOSED":
      case "LISTEN":
      case "SYN-SENT":
      case "SYN-RECEIVED":
      case "ESTABLISHED":
      case "FIN-WAIT-2":
      case "CLOSE-WAIT":
      case "TIME-WAIT":
        break;
    }
    return true;
  }

  /** `bytes` of data up to `newHead` are acknowledged: they leave the send queue (and its push marks). */
  #dropAcked(newHead: SeqNum, bytes: number): void {
    this.#sendQ.drop(bytes);
    this.#sendHead = newHead;
    this.#sendHeadOff += bytes;
    this.#evAcked += bytes;
    while (this.#pushMarks.length > 0 && (this.#pushMarks[0] as number) <= this.#sendHeadOff)
      this.#pushMarks.shift();
    this.#evWritable = true;
  }

  /** SND.UNA < ack <= SND.MAX: data (and maybe SYN / FIN) acknowledged. */
  #onNewAck(now: Instant, seg: TcpRepr, ack: SeqNum): void {
    const acked = Seq.diff(ack, this.#sndUna);
    const smss = this.#smss();
    // Bytes of data acknowledged: exclude the SYN and the FIN.
    const dataEnd = this.#dataEnd();
    const newHead = Seq.lt(ack, dataEnd) ? ack : dataEnd;
    const dataAcked = Seq.gt(newHead, this.#sendHead) ? Seq.diff(newHead, this.#sendHead) : 0;
    if (dataAcked > 0 && !this.#sb.isEmpty) this.#detectReordering(this.#sendHeadOff + dataAcked);
    if (dataAcked > 0) this.#dropAcked(newHead, dataAcked);
    // Resending after a timeout (go-back-N): slow start counts 1 SMSS per ACK (RFC 3465 2.3).
    const resending = Seq.lt(this.#sndNxt, this.#sndMax);
    this.#sndUna = ack;
    if (Seq.lt(this.#sndNxt, ack)) this.#sndNxt = ack;
    this.#sb.trim(this.#sendHeadOff);
    // RTT sample (RFC 7323 4.1 with timestamps, else RFC 6298 with Karn's rule).
    const ts = seg.timestamps;
    // Not a sample: during a timeout episode, an echo older than the latest retransmission.
    // Either that retransmission arrived as a duplicate and the receiver echoed the TS.Recent
    // of an earlier copy (RFC 7323 4.3), or an earlier copy's ACK was late: the age would count
    // the timeouts as round-trip time either way (under heavy ACK loss SRTT grew to 40x the
    // path's RTT and every RTO hit its cap). Karn's rule for timestamps: ambiguous, no sample.
    const stale =
      this.#rtxCount > 0 &&
      this.#rtoTsVal !== undefined &&
      ts !== undefined &&
      ((ts.tsEcr - this.#rtoTsVal) | 0) < 0;
    const echoed = this.#tsOk && ts !== undefined && ts.tsEcr !== 0 && !stale;
    const rttSample = this.#rtt.onAck(now, ack, echoed ? (this.#tsNow(now) - ts.tsEcr) | 0 : undefined);
    if (rttSample !== undefined) this.#rack?.noteRtt(now, rttSample); // RFC 8985 6.2 step 1
    if (this.#rtxCount > 0) this.#rtoTsVal = undefined;
    // RFC 3522 / 4015: the first ACK past a timeout's retransmission decides whether the
    // timeout was spurious (the ACK echoes a TSval older than the retransmission's).
    const rtoSpurious = this.#spurious.timeoutSpurious(seg, this.#rtxCount > 0);
    this.#rtxCount = 0;
    this.#rtxStart = undefined;
    if (rtoSpurious) this.#undo();
    // Congestion control.
    if (this.#inRecovery) {
      const recover = this.#recover ?? ack;
      if (Seq.ge(ack, recover)) {
        // Full ACK (RFC 6582 3.2 step 3): deflate to min(ssthresh, FlightSize + SMSS), but
        // to no less than two segments: the flight is often almost empty at the full ACK, and
        // a lone segment that is lost draws no duplicate ACK at all (only a timeout), while of
        // two, one can still trigger early retransmit (RFC 5827).
        this.#leaveRecovery();
        this.#cwnd = Math.max(smss, Math.min(this.#ssthresh, Math.max(2 * smss, this.#flight() + smss)));
        // Undo a recovery that D-SACKs or the echoed timestamp prove spurious.
        if (this.#spurious.recoverySpurious(seg)) this.#undo();
      } else if (this.#sackOk) {
        // RFC 6675: keep sending by pipe; nothing to deflate.
        if (Seq.lt(this.#sndNxt, this.#sndUna)) this.#sndNxt = this.#sndUna;
      } else {
        // Partial ACK (RFC 6582 3.2 step 4): retransmit the next hole, partial deflation.
        this.#rtxNext = this.#sndUna;
        this.#cwnd = Math.max(smss, this.#cwnd - acked + (acked >= smss ? smss : 0));
      }
    } else {
      this.#dupAcks = 0;
      if (dataAcked === 0) {
        // The ACK of a SYN or FIN alone does not grow cwnd.
      } else if (this.#cwnd < this.#ssthresh) {
        // Slow start with Appropriate Byte Counting (RFC 3465 2.2): grow by the bytes this ACK
        // covers, at most L = abcLimit * SMSS, so a stretch ACK (a receiver behind GRO or a
        // batching driver acknowledges many segments at once) grows cwnd as the per-segment
        // ACKs it replaces would. While resending after a timeout (SND.NXT was below SND.MAX)
        // L is 1 SMSS (RFC 3465 2.3; FreeBSD does the same), and abcLimit = 0 lifts the limit
        // (Linux grows by all bytes acked).
        const l = this.#cfg.abcLimit;
        const limit = resending ? smss : l === 0 ? dataAcked : l * smss;
        let grow = Math.min(dataAcked, limit);
        // RFC 9406: only the initial slow start (ssthresh untouched), never while resending.
        const hs = this.#hystart;
        if (hs !== undefined && this.#ssthresh === INITIAL_SSTHRESH && !resending) {
          const wasCss = hs.inCss;
          const phase = hs.onAck(ack, this.#sndNxt, rttSample);
          if (phase === "css") {
            if (!wasCss) this.stats.hystartExits++;
            grow = Math.floor(grow / CSS_GROWTH_DIVISOR);
          } else if (phase === "congestion-avoidance") {
            this.#ssthresh = this.#cwnd;
            grow = 0;
          }
        }
        this.#cwnd += grow;
      } else if (this.#cubic !== undefined) {
        // RFC 9438 4.2-4.5: toward W_cubic(t + RTT), or the Reno-friendly estimate.
        const srtt = this.#rtt.srtt;
        const rttSec = srtt === undefined ? 0.1 : srtt / 1e6;
        this.#cwnd = this.#cubic.onAck(now, this.#cwnd, dataAcked, smss, rttSec);
      } else {
        this.#caAcc += dataAcked; // congestion avoidance by byte counting (RFC 5681 3.1)
        if (this.#caAcc >= this.#cwnd) {
          this.#caAcc -= this.#cwnd;
          this.#cwnd += smss;
        }
      }
    }
    // RFC 6298 5.2 / 5.3: stop the timer when all is acknowledged, else restart it.
    if (this.#sndUna === this.#sndMax) this.#rtxAt = undefined;
    else this.#rtxAt = Instant.add(now, this.#rtt.rto); // integer microseconds
    this.#tlpOut = false;
    this.#armTlp(now);
  }

  /** A fast recovery ends (its full ACK, or the undo of its episode). */
  #leaveRecovery(): void {
    this.#inRecovery = false;
    this.#dupAcks = 0;
    this.#rack?.onRecoveryEnd();
  }

  /**
   * RFC 4015-style response to a spurious fast recovery or timeout (see SpuriousUndo):
   * restore cwnd and ssthresh, end a recovery still running, and after a timeout resume with
   * new data instead of resending what is in flight.
   */
  #undo(): void {
    const u = this.#spurious;
    // A fast recovery that continued a timeout's episode (SpuriousUndo.begin) ends with it:
    // its full-ACK deflation would take back the window just restored.
    if (this.#inRecovery) this.#leaveRecovery();
    this.#cwnd = Math.max(this.#cwnd, u.priorCwnd);
    this.#ssthresh = Math.max(this.#ssthresh, u.priorSsthresh);
    this.#caAcc = 0;
    this.#cubic?.restore(this.#cubicPriorWMax); // RFC 9438 4.9
    if (u.afterTimeout && Seq.lt(this.#sndNxt, this.#sndMax)) this.#sndNxt = this.#sndMax;
    u.finish(this.stats);
  }

  /**
   * A congestion event (fast retransmit, or the first timeout of a loss episode): the new
   * ssthresh. NewReno: half the flight (RFC 5681 eq. 4); CUBIC: beta times cwnd, and W_max
   * (RFC 9438 4.6, 4.7; a timeout also starts slow start again, 4.8).
   */
  #onCongestion(flight: number, smss: number): number {
    const cubic = this.#cubic;
    if (cubic === undefined) return Math.max(Math.floor(flight / 2), 2 * smss);
    this.#cubicPriorWMax = cubic.wMax;
    return cubic.onCongestion(this.#cwnd, smss);
  }

  /**
   * RFC 3168 6.1.2: an ECE is a congestion event without a loss: ssthresh and cwnd go down as
   * for a fast retransmit, at most once per window of data (until SND.UNA passes what was sent
   * at the reduction) and not inside a loss recovery (that already reduced them); the next new
   * data segment carries CWR.
   */
  #onEce(ecn: EcnState): void {
    if (this.#inRecovery || this.#rtxCount > 0) return;
    if (ecn.reducedUntil !== undefined && Seq.lt(this.#sndUna, ecn.reducedUntil)) return;
    const smss = this.#smss();
    this.#ssthresh = this.#onCongestion(this.#flight(), smss);
    this.#cwnd = Math.max(this.#ssthresh, smss);
    this.#caAcc = 0;
    ecn.reducedUntil = this.#sndMax;
    ecn.cwrPending = true;
    this.stats.ecnReductions++;
  }

  /**
   * RFC 6937 proportional rate reduction, on every ACK of a SACK connection (`acked`: how far
   * SND.UNA moved). DeliveredData is that plus the change in SACKed bytes above SND.UNA. During
   * fast recovery cwnd becomes pipe + sndcnt: while pipe is above ssthresh, sending follows
   * delivery in the ratio ssthresh / RecoverFS (no silence, then a burst); below it, the slow
   * start reduction bound (PRR-SSRB) brings pipe back up to ssthresh at most one segment ahead
   * of what is delivered.
   */
  #prrOnAck(acked: number, newLoss: boolean): void {
    const sacked = this.#sb.isEmpty ? 0 : this.#sb.sackedAbove(this.#sendHeadOff);
    const delivered = acked + sacked - this.#prrSacked;
    this.#prrSacked = sacked;
    this.#prrSend(delivered, acked > 0 && !newLoss);
  }

  /**
   * PRR's step for `delivered` bytes: cwnd = pipe + sndcnt. The slow start reduction bound's
   * extra segment is taken only on a `safe` ACK, one that advances SND.UNA and reports no new
   * loss (RFC 9937's SafeACK, which obsoletes RFC 6937's unconditional + MSS; Linux's
   * tcp_cwnd_reduction does the same): a SACK that reveals a hole does not also buy a segment
   * ahead of delivery.
   */
  #prrSend(delivered: number, safe: boolean): void {
    // Not in recovery, or in one this engine did not start (imported mid-recovery): RFC 6675 alone.
    if (!this.#inRecovery || this.#recoverFs === 0) return;
    this.#prrDelivered += Math.max(0, delivered);
    const smss = this.#smss();
    const pipe = this.#pipe();
    let sndcnt: number;
    if (pipe > this.#ssthresh) {
      sndcnt = Math.ceil((this.#prrDelivered * this.#ssthresh) / Math.max(1, this.#recoverFs)) - this.#prrOut;
    } else {
      const limit = Math.max(this.#prrDelivered - this.#prrOut, delivered) + (safe ? smss : 0);
      sndcnt = Math.min(this.#ssthresh - pipe, limit);
    }
    // The fast retransmission always goes (RFC 9937: one segment while prr_out is 0), and cwnd
    // never falls below one segment: with nothing in flight no ACK would come to raise it.
    if (this.#prrOut === 0) sndcnt = Math.max(sndcnt, smss);
    this.#cwnd = Math.max(pipe + Math.max(0, sndcnt), smss);
  }

  /**
   * RFC 8985 6.2 on an ACK of a SACK connection (after the scoreboard took its blocks): the
   * deliveries update RACK, a D-SACK widens the reordering window, then the loss check; a loss
   * found outside any recovery starts fast recovery (a timeout's go-back-N resends anyway).
   */
  #rackOnAck(now: Instant, seg: TcpRepr): void {
    const rack = this.#rack as Rack; // the caller checked
    rack.onUna(this.#sendHeadOff);
    if (this.#cfg.dsack && carriesDsack(seg)) rack.onDsack(this.#offsetOf(this.#sndNxt));
    rack.onAck(this.#sendHeadOff, this.#sb.ranges, now);
    this.#rackDetectLoss(now);
  }

  /** RFC 8985 6.2 step 5, and the reordering timer for what may still arrive. */
  #rackDetectLoss(now: Instant): void {
    const rack = this.#rack as Rack; // the callers checked
    const smss = this.#smss();
    const recovering = this.#inRecovery || this.#rtxCount > 0;
    const dupThreshSacked = this.#sb.sackedAbove(this.#sendHeadOff) >= this.#cfg.dupAckThreshold * smss;
    const before = rack.markedLost;
    const wait = rack.detectLoss(now, rack.reoWnd(recovering, dupThreshSacked, this.#rtt.srtt));
    this.#rackAt = wait > 0 ? Instant.fromMicros(now + wait) : undefined;
    this.stats.rackLostBytes += rack.markedLost - before;
    // Not inside a timeout's loss episode (SND.UNA below the RTO's recovery point, RFC 6582 4;
    // Linux's CA_Loss): its go-back-N resends what RACK marks, and a fast recovery there would
    // cut cwnd and ssthresh a second time for the same losses.
    const afterTimeout = this.#recover !== undefined && Seq.lt(this.#sndUna, this.#recover);
    if (rack.lost > 0 && !this.#inRecovery && this.#rtxCount === 0 && !afterTimeout && this.#flight() > 0) {
      this.#dupAcks = Math.max(this.#dupAcks, 1);
      this.#enterRecovery(now, this.#spurious.reordering);
    }
  }

  /** RFC 8985 6.2 step 5: the reordering timer fired. */
  #onRackTimer(now: Instant): void {
    this.#rackAt = undefined;
    if (this.#rack === undefined || !this.#sackOk || this.#flight() === 0) return;
    this.stats.rackTimeouts++;
    this.#rackDetectLoss(now);
    // The delivery that armed the timer counts for PRR now (as Linux's tcp_rack_reo_timeout
    // does): one segment's worth, so the recovery opens with one retransmission, not a burst.
    if (this.#cfg.prr && this.#inRecovery) this.#prrSend(this.#smss(), false);
  }

  /**
   * Before the scoreboard takes `seg`'s blocks: a block that SACKs new data below the highest
   * SACKed byte, data never retransmitted, shows reordering (see SpuriousUndo.sackedBelowFack).
   */
  #sackReordering(seg: TcpRepr): void {
    const sb = this.#sb;
    const fack = sb.highest;
    const una = this.#sendHeadOff;
    for (const b of seg.sack) {
      if (!Seq.lt(b.left, b.right) || !Seq.gt(b.left, this.#sndUna)) continue; // a D-SACK or bogus
      const left = this.#offsetOf(b.left);
      const right = this.#offsetOf(b.right);
      if (left < una || right > fack || sb.sackedBetween(left, right) === right - left) continue;
      this.#spurious.sackedBelowFack(
        sb.firstUnsacked(left, right),
        fack,
        sb.highRxt,
        this.#smss(),
        this.stats,
      );
    }
  }

  /** The cumulative ACK reaches send offset `newOff` over SACKed data: was it reordering? */
  #detectReordering(newOff: number): void {
    if (this.#inRecovery || this.#rtxCount > 0 || Seq.lt(this.#sndNxt, this.#sndMax)) return;
    this.#spurious.reorderedHole(this.#sb, this.#sendHeadOff, newOff, this.#smss(), this.stats);
  }

  /** A duplicate ACK (RFC 5681 2, or RFC 6675 2: one with new SACK information). */
  #onDupAck(now: Instant, seg: TcpRepr): void {
    this.stats.dupAcksIn++;
    this.#dupAcks++;
    const smss = this.#smss();
    if (this.#inRecovery) {
      if (!this.#sackOk) this.#cwnd += smss; // RFC 6582 3.2 step 3: inflate
      return;
    }
    // RFC 8985 6: RACK decides losses by time (`#rackOnAck`), not by counting.
    if (this.#rack !== undefined && this.#sackOk) return;
    let thresh = this.#spurious.reordering;
    // RFC 5827 early retransmit: with fewer than DupThresh + 1 segments outstanding and no
    // new data to send, DupThresh duplicate ACKs can never arrive; use outstanding - 1.
    const oseg = Math.ceil(this.#flight() / smss);
    if (oseg <= thresh && this.#unsent() === 0) thresh = Math.max(1, oseg - 1);
    const sackLost =
      this.#sackOk &&
      seg.sack.length > 0 &&
      this.#sb.sackedAbove(this.#sendHeadOff) >= (thresh - 1) * smss + 1;
    if (this.#dupAcks < thresh && !sackLost) return; // limited transmit territory (RFC 3042)
    // RFC 6582 3.2 step 2 / RFC 6675 5: enter recovery unless this is an old loss.
    if (this.#recover !== undefined && Seq.le(Seq.sub(this.#sndUna, 1), this.#recover) && !this.#sackOk) {
      if (Seq.lt(this.#sndUna, this.#recover)) return;
    }
    this.#enterRecovery(now, thresh);
  }

  /**
   * Fast recovery begins (RFC 6582 3.2 step 2 / RFC 6675 5, or RFC 8985 6 when RACK found a
   * loss): ssthresh and cwnd go down, and the first retransmission is set up.
   */
  #enterRecovery(now: Instant, thresh: number): void {
    const smss = this.#smss();
    const flight = this.#flight();
    // A timeout's loss episode still running (go-back-N resend): this recovery continues it.
    const afterTimeout = this.#rtxCount > 0 || Seq.lt(this.#sndNxt, this.#sndMax);
    this.#spurious.begin(false, afterTimeout, this.#sndUna, this.#cwnd, this.#ssthresh);
    // The reordering this recovery would prove if it turns out spurious: the span from SND.UNA
    // to the highest SACKed byte, or the duplicate ACKs counted.
    const span = this.#sb.isEmpty ? 0 : this.#sb.highest - this.#sendHeadOff;
    this.#spurious.setDegree(Math.max(this.#dupAcks, Math.ceil(span / smss)));
    this.#ssthresh = this.#onCongestion(flight, smss);
    this.#recover = this.#sndMax;
    this.#inRecovery = true;
    // RFC 6937: RecoverFS is the flight when recovery starts; both counters start at zero.
    this.#recoverFs = flight;
    this.#prrDelivered = 0;
    this.#prrOut = 0;
    this.#tlpAt = undefined;
    this.stats.fastRetransmits++;
    if (this.#sackOk) {
      this.stats.sackRecoveries++;
      this.#cwnd = this.#ssthresh;
      // The first segment goes out at the next poll (RFC 6675 5 step 4.2, `#rtxNext`), up to
      // the next SACKed byte; HighRxt and the scoreboard's marks follow it when it leaves.
      this.#sb.beginRecovery(this.#sendHeadOff);
    } else {
      this.#cwnd = this.#ssthresh + thresh * smss;
    }
    // The fast retransmission goes whatever pipe says (RFC 6675 5 step 4.2). Under RACK it is
    // the lowest range deemed lost (SND.UNA may not be), and the rest follow by pipe.
    const rack = this.#rack;
    if (rack === undefined || !this.#sackOk) this.#rtxNext = this.#sndUna;
    else if (rack.nextLost(this.#maxPayload()) > 0) this.#rtxNext = this.#seqOf(rack.nextStart);
    this.#rtt.karn();
    this.#rtxAt = Instant.add(now, this.#rtt.rto); // integer microseconds
  }

  /** A RST that passed the checks (RFC 9293 3.10.7.4 second). */
  #onReset(): void {
    switch (this.#state) {
      case "SYN-RECEIVED":
        if (this.#activeOpen) this.#terminate("refused", "ECONNREFUSED");
        else this.#terminate("reset", "ECONNRESET");
        return;
      case "ESTABLISHED":
      case "FIN-WAIT-1":
      case "FIN-WAIT-2":
      case "CLOSE-WAIT":
        this.#terminate("reset", "ECONNRESET");
        return;
      case "CLOSED":
      case "LISTEN":
      case "SYN-SENT":
      case "CLOSING":
      case "LAST-ACK":
      case "TIME-WAIT":
        // CLOSING, LAST-ACK, TIME-WAIT: the application already closed; no error.
        this.#terminate("reset", undefined);
    }
  }

  /** Seventh check: segment text. Returns true when the whole segment was taken (FIN may follow). */
  #onText(now: Instant, seg: TcpRepr, off: number, wnd: number): boolean {
    const p = seg.payload;
    // Trim to the window [RCV.NXT, RCV.ADV).
    const start = off < 0 ? -off : 0;
    // RFC 2883: the part below RCV.NXT was received before; report it in a D-SACK.
    if (start > 0) this.#noteDuplicate(seg.seq, Seq.add(seg.seq, Math.min(start, p.length)));
    const end = Math.min(p.length, wnd - off);
    if (start >= end) {
      this.#ackNow = true;
      return start >= p.length && end >= p.length;
    }
    const whole = end === p.length;
    const data = start === 0 && whole ? p : p.subarray(start, end);
    this.stats.bytesIn += data.length;
    if (this.#readShut) {
      // Nobody will read: take in-order bytes without keeping them, and acknowledge.
      this.#ackNow = true;
      if (off + start !== 0) return false;
      this.#advanceRcv(data.length);
      return whole;
    }
    // RFC 2883 4: data we already hold out of order is a duplicate too; its D-SACK block goes
    // first, followed by the SACK block that holds it (or below the new ACK, once in order).
    if (start === 0 && !this.#ooo.isEmpty) this.#noteOooDuplicate(this.#rcvNxtOff + off, data.length);
    if (off + start === 0) {
      // In order: the fast path.
      const hadOoo = !this.#ooo.isEmpty;
      this.#rcvBuf.push(data);
      this.#advanceRcv(data.length);
      if (hadOoo) {
        for (let c = this.#ooo.pop(this.#rcvNxtOff); c !== undefined; c = this.#ooo.pop(this.#rcvNxtOff)) {
          this.#rcvBuf.push(c);
          this.#advanceRcv(c.length);
        }
        this.#ackNow = true; // RFC 5681 4.2: ACK at once when a hole is filled
        if (this.#oooFinOff !== undefined && this.#oooFinOff === this.#rcvNxtOff) {
          this.#oooFinOff = undefined;
          this.#onFin(now);
        }
      } else {
        this.#bytesSinceAck += data.length;
        // RFC 9293 3.8.6.3 / RFC 5681 4.2: ACK at least every second full-size segment; with
        // `ackEverySecondSegment` every second segment of any size (an ACK was already delayed).
        if (
          this.#cfg.delayedAck === 0 ||
          this.#bytesSinceAck >= 2 * this.#smss() ||
          (this.#cfg.ackEverySecondSegment && this.#delackAt !== undefined)
        )
          this.#ackNow = true;
        else if (this.#delackAt === undefined) this.#delackAt = Instant.add(now, this.#cfg.delayedAck);
      }
      this.#evReadable = true;
      return whole;
    }
    // Out of order: queue if there is room; ACK at once either way (RFC 5681 4.2).
    this.stats.oooSegmentsIn++;
    this.#ackNow = true;
    const at = this.#rcvNxtOff + off + start;
    const r = this.#oooQueue().insert(at, data);
    if (r === "full") {
      this.stats.dropsOooFull++;
      return false;
    }
    if (this.#sackOk) {
      this.#sackRecent.unshift(at);
      if (this.#sackRecent.length > 4) this.#sackRecent.length = 4;
    }
    return whole;
  }

  /**
   * RCV.WND for the acceptability test: the window we advertised (RCV.ADV - RCV.NXT), or the
   * free receive-buffer space when that is larger. The advertised window is a promise of at
   * least that much (RFC 9293 3.8.6); a receiver that has room may accept beyond it, as BSD
   * does (tcp_input uses max(sbspace, RCV.ADV - RCV.NXT)). The scripts of the FreeBSD suite
   * probe exactly that edge. A passive open in SYN-RECEIVED has no buffer yet (a listener's
   * SYN cache entry in BSD), and TIME-WAIT has none any more: the advertised window only.
   */
  #acceptWindow(): number {
    const adv = Math.max(0, Seq.delta(this.#rcvAdv, this.#rcvNxt));
    if ((this.#state === "SYN-RECEIVED" && !this.#activeOpen) || this.#state === "TIME-WAIT") return adv;
    const space = this.#readShut ? 0 : this.#initialRcvWnd - this.#rcvBuf.length;
    return Math.min(Math.max(adv, space), 0x7fff_ffff);
  }

  #advanceRcv(n: number): void {
    this.#rcvNxt = Seq.add(this.#rcvNxt, n);
    this.#rcvNxtOff += n;
    // Data accepted beyond the advertised edge (see `#acceptWindow`) moves the edge along.
    if (Seq.gt(this.#rcvNxt, this.#rcvAdv)) this.#rcvAdv = this.#rcvNxt;
  }

  /** Eighth check: the FIN is next in sequence. */
  #onFin(now: Instant): void {
    if (this.#finReceived) {
      this.#ackNow = true;
      return;
    }
    this.#finReceived = true;
    this.#rcvNxt = Seq.add(this.#rcvNxt, 1);
    // The FIN takes a sequence number but no buffer space: keep the window's size.
    this.#rcvAdv = Seq.add(this.#rcvAdv, 1);
    this.#ackNow = true;
    this.#evPeerFin = true;
    this.#ooo.clear();
    switch (this.#state) {
      case "SYN-RECEIVED":
      case "ESTABLISHED":
        this.#state = "CLOSE-WAIT";
        break;
      case "FIN-WAIT-1":
        // Our FIN acknowledged by this very segment would have moved us to FIN-WAIT-2.
        this.#state = "CLOSING";
        break;
      case "FIN-WAIT-2":
        this.#enterTimeWait(now);
        break;
      case "CLOSED":
      case "LISTEN":
      case "SYN-SENT":
      case "CLOSE-WAIT":
      case "CLOSING":
      case "LAST-ACK":
      case "TIME-WAIT":
        break;
    }
  }

  #enterTimeWait(now: Instant): void {
    this.#state = "TIME-WAIT";
    this.#rtxAt = undefined;
    this.#persistAt = undefined;
    this.#keepAliveAt = undefined;
    this.#delackAt = undefined;
    this.#closeAt = Instant.add(now, Duration.fromMicros(2 * this.#cfg.msl));
  }

  /** RFC 5961 7: a rate-limited challenge ACK. */
  #challengeAck(now: Instant): void {
    if (now - this.#chWindowStart >= SECOND_US) {
      this.#chWindowStart = now;
      this.#chCount = 0;
    }
    if (this.#chCount >= this.#cfg.challengeAckLimit) {
      this.stats.challengeAcksSuppressed++;
      return;
    }
    this.#chCount++;
    this.stats.challengeAcks++;
    this.#ackNow = true;
    if (this.#cfg.blindAttackProbing) {
      // Chimney 17.11: start (or shorten to) a 5-minute keep-alive timer.
      this.#mitigating = true;
      this.#keepAliveAt = Instant.earliest(this.#keepAliveAt, Instant.add(now, Duration.fromSeconds(300)));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Timers.

  #onRetransmitTimer(now: Instant): void {
    this.#rtxAt = undefined;
    this.#tlpAt = undefined;
    this.#tlpOut = false;
    const syn = this.#state === "SYN-SENT" || this.#state === "SYN-RECEIVED";
    // Outstanding = SND.MAX - SND.UNA (SND.NXT may already be pulled back by an earlier RTO).
    const outstanding = Seq.delta(this.#sndMax, this.#sndUna);
    if (!syn && outstanding === 0) return;
    this.stats.timeouts++;
    // The unacknowledged segment was (re)armed one RTO ago: it has been outstanding since then.
    this.#rtxStart ??= Instant.fromMicros(Math.max(0, now - this.#rtt.rto));
    const limit = syn ? this.#cfg.synRetries : this.#maxRtx;
    const ut = this.#userTimeout;
    const ct = this.#cfg.connectTimeout;
    if (
      this.#rtxCount >= limit ||
      (ut !== undefined && now - this.#rtxStart >= ut) ||
      (syn && ct !== undefined && now - this.#openedAt >= ct)
    ) {
      if (syn && !this.#activeOpen) this.#rst = this.#makeRst(this.#sndMax, this.#rcvNxt, true);
      // RFC 1122 4.2.3.9: a soft ICMP error explains the timeout better than ETIMEDOUT.
      this.#terminate("timeout", this.#softError ?? "ETIMEDOUT");
      return;
    }
    this.#rtxCount++;
    if (this.#tsOk) this.#rtoTsVal = this.#tsNow(now);
    // RFC 6298 5.5: back off; 5.4 retransmit the earliest unacknowledged segment.
    this.#rtt.backoff();
    const smss = this.#smss();
    if (!syn) {
      if (this.#rtxCount === 1)
        this.#spurious.begin(true, this.#inRecovery, this.#sndUna, this.#cwnd, this.#ssthresh);
      // RFC 5681 eq. 4 (only on the first timeout of a loss episode), then one segment.
      if (this.#rtxCount === 1) this.#ssthresh = this.#onCongestion(outstanding, smss);
      this.#cwnd = smss;
      this.#caAcc = 0;
      this.#inRecovery = false;
      this.#dupAcks = 0;
      this.#recover = this.#sndMax; // RFC 6582 4: no fast retransmit for the old window
      // RFC 6675 5.1: keep the scoreboard so the go-back-N resend skips SACKed data. Only a
      // second timeout in a row suggests the peer reneged (RFC 2018 8): then start over.
      this.#sb.onTimeout(this.#sendHeadOff, this.#rtxCount > 1);
      if (this.#rack !== undefined && this.#sackOk) {
        // RFC 8985 6.3: what left long enough ago, and SND.UNA's segment, are lost.
        const rack = this.#rack;
        const before = rack.markedLost;
        const reo = rack.reoWnd(true, false, this.#rtt.srtt);
        const high = this.#offsetOf(this.#sentDataEnd());
        rack.onTimeout(now, reo, this.#sendHeadOff, this.#rtxCount > 1, high);
        this.stats.rackLostBytes += rack.markedLost - before;
        this.#rackAt = undefined;
      }
    }
    this.#rtxNext = undefined;
    this.#rtt.karn();
    this.#sndNxt = this.#sndUna;
    // FreeBSD's rexmit_slop is added to every backed-off timeout (0 by default).
    let next = now + Math.min(this.#cfg.maxRto, this.#rtt.rto + this.#cfg.rtoSlop);
    if (ut !== undefined) next = Math.min(next, this.#rtxStart + ut); // RFC 5482: fire at the deadline
    this.#rtxAt = Instant.fromMicros(next);
    if (syn) this.#rtxAt = this.#clampToConnectDeadline(this.#rtxAt);
  }

  #onPersistTimer(now: Instant): void {
    this.#persistAt = undefined;
    if (this.#sndWnd > 0) {
      // Sender SWS override (RFC 9293 3.8.6.2.1): send what the window allows.
      this.#swsOverride = true;
      return;
    }
    if (this.#probesUnanswered >= this.#maxRtx) {
      this.#terminate("timeout", "ETIMEDOUT");
      return;
    }
    this.#probeCount++;
    this.#probesUnanswered++;
    this.#probePending = true;
    this.stats.zeroWindowProbes++;
    this.#persistAt = Instant.add(now, this.#rtt.persistTimeout(this.#probeCount));
  }

  #onKeepAliveTimer(now: Instant): void {
    this.#keepAliveAt = undefined;
    if (this.#mitigating) {
      // Chimney 17.11: probes every interval, however busy the connection looks.
      if (this.#kaCount >= this.#kaProbes) {
        this.#terminate("timeout", "ETIMEDOUT");
        return;
      }
      this.#kaCount++;
      this.#probePending = true;
      this.stats.keepAliveProbes++;
      this.#keepAliveAt = Instant.add(now, this.#kaInterval);
      return;
    }
    if (!this.#keepAlive || !(this.#state === "ESTABLISHED" || this.#state === "CLOSE-WAIT")) return;
    const idleUntil = this.#lastRecvAt + this.#kaIdle;
    if (this.#kaCount === 0 && now < idleUntil) {
      this.#keepAliveAt = Instant.fromMicros(idleUntil);
      return;
    }
    if (this.#kaCount >= this.#kaProbes) {
      this.#terminate("timeout", "ETIMEDOUT");
      return;
    }
    if (this.#flight() === 0 && this.#unsent() === 0) {
      this.#kaCount++;
      this.#probePending = true;
      this.stats.keepAliveProbes++;
    }
    this.#keepAliveAt = Instant.add(now, this.#kaInterval);
  }

  #armKeepAlive(): void {
    this.#keepAliveAt = this.#keepAlive
      ? Instant.fromMicros(Math.max(0, this.#lastRecvAt + this.#kaIdle))
      : undefined;
  }

  /**
   * RFC 6298 5.7: if a SYN had to be retransmitted and no RTT sample exists yet, data
   * transmission starts with a 3 s RTO (Linux's TCP_TIMEOUT_FALLBACK).
   */
  #rtoFallback(): void {
    if (this.#synRetransmitted) this.#rtt.fallback();
  }

  /**
   * The options our (next) SYN offers: none with `noOptions`; only the MSS from the third
   * SYN retransmission on with `synRetransmitDropOptions` (FreeBSD rexmit_drop_options: a
   * middlebox may drop SYNs with unknown options). The SYN that drew the SYN-ACK was the
   * last one sent, so these are also what may be negotiated.
   */
  #synOffers(): { ws: boolean; ts: boolean; sack: boolean } {
    const c = this.#cfg;
    const bare = c.noOptions || (c.synRetransmitDropOptions && this.#rtxCount >= 3);
    return { ws: c.windowScaling && !bare, ts: c.timestamps && !bare, sack: c.sack && !bare };
  }

  /**
   * RFC 8985 7.2: (re)arms the probe timeout after new data or an ACK of new data, in the
   * open state of a SACK connection with an RTT sample: PTO = 2 * SRTT, plus the worst-case
   * delayed-ACK time when one segment is in flight; never later than the RTO.
   */
  #armTlp(now: Instant): void {
    this.#tlpAt = undefined;
    this.#adoptedProbe = false;
    const srtt = this.#rtt.srtt;
    if (!this.#cfg.tailLossProbe || !this.#sackOk || srtt === undefined || this.#inRecovery) return;
    if (this.#tlpOut || this.#rtxAt === undefined || this.#flight() === 0) return;
    const oneSegment = this.#flight() <= this.#smss();
    const pto = 2 * srtt + (oneSegment ? TLP_DELACK_US : 0);
    const at = now + Math.max(pto, 2 * CLOCK_G_US);
    if (at < this.#rtxAt) this.#tlpAt = Instant.fromMicros(at);
  }

  /**
   * RFC 8985 7.3: the probe. One new segment if there is any and the peer's window allows,
   * else the last segment sent again; the ACK it draws (with SACK) starts fast recovery
   * instead of waiting for the RTO.
   */
  #onTlpTimer(now: Instant): void {
    this.#tlpAt = undefined;
    if (this.#flight() === 0 || this.#inRecovery || this.#tlpOut) return;
    if (Seq.lt(this.#sndNxt, this.#sndMax)) return; // a go-back-N resend is running
    this.#tlpOut = true;
    const wndRoom = Seq.delta(Seq.add(this.#sndUna, this.#sndWnd), this.#sndNxt);
    if (this.#unsent() > 0 && wndRoom > 0) {
      this.#tlpSendNew = true;
    } else {
      const last = this.#sentDataEnd();
      const len = Math.min(this.#smss(), Math.max(0, Seq.delta(last, this.#sndUna)));
      if (len > 0) this.#rtxNext = Seq.sub(last, len);
    }
    this.#rtxAt = Instant.add(now, this.#rtt.cappedRto); // RFC 8985 7.3: re-arm the RTO
  }

  /** `at`, or the connection-establishment deadline (`connectTimeout`) if that is earlier. */
  #clampToConnectDeadline(at: Instant): Instant {
    const ct = this.#cfg.connectTimeout;
    return ct === undefined ? at : Instant.fromMicros(Math.min(at, this.#openedAt + ct));
  }

  // ---------------------------------------------------------------------------------------
  // Transmission.

  /** Data, FIN and retransmissions in synchronized states. */
  #pollData(now: Instant): TcpRepr | undefined {
    const smss = this.#smss();
    const maxPayload = this.#maxPayload();
    // 1. A pending fast retransmission or SACK NextSeg. It stops at the next SACKed byte (RFC
    // 6675 NextSeg never resends SACKed data): the original may have been cut shorter (our own
    // SACK blocks take room), and a retransmission running into data the peer holds draws a
    // D-SACK for that part.
    const rtx = this.#rtxNext;
    if (rtx !== undefined) {
      this.#rtxNext = undefined;
      if (Seq.ge(rtx, this.#sndUna) && Seq.lt(rtx, this.#sndMax)) {
        const seg = this.#emitRange(now, rtx, Math.min(maxPayload, this.#holeFrom(rtx)), true);
        if (this.#sackOk && this.#inRecovery) {
          const off = this.#offsetOf(rtx);
          this.#sb.markRecoveryRetransmission(off, off + seg.payload.length, this.#offsetOf(this.#sndMax));
        }
        return seg;
      }
    }
    if (this.#sackOk && this.#inRecovery) {
      const seg = this.#sackNextSeg(now, maxPayload);
      if (seg !== undefined) return seg;
    }
    if (this.#state === "SYN-RECEIVED") return undefined;
    // 2. New data (or go-back-N retransmission below SND.MAX), then the FIN. After a timeout
    // the resend skips what the scoreboard says the peer holds (RFC 6675 5.1).
    let sackedLimit = Number.MAX_SAFE_INTEGER;
    if (!this.#sb.isEmpty && !this.#inRecovery && Seq.lt(this.#sndNxt, this.#sndMax)) {
      sackedLimit = this.#skipSacked();
    }
    const unsent = this.#unsent();
    const finPending = this.#finQueued && Seq.le(this.#sndNxt, this.#finSeq());
    if (unsent === 0 && !finPending) return undefined;
    const retransmitting = Seq.lt(this.#sndNxt, this.#sndMax);
    const flight = this.#flight();
    const wndRoom = Seq.delta(Seq.add(this.#sndUna, this.#sndWnd), this.#sndNxt);
    let cw = this.#cwnd;
    const probe = this.#tlpSendNew;
    this.#tlpSendNew = false;
    // RFC 3042 limited transmit: the first two duplicate ACKs each allow one new segment.
    if (!this.#inRecovery && this.#dupAcks > 0 && this.#dupAcks < this.#spurious.reordering)
      cw += this.#dupAcks * smss;
    const inFlight =
      this.#sackOk && this.#inRecovery
        ? this.#pipe()
        : retransmitting
          ? flight - this.#sb.sackedBetween(this.#sendHeadOff, this.#offsetOf(this.#sndNxt))
          : flight;
    const cwRoom = probe ? Math.max(cw - inFlight, smss) : cw - inFlight;
    const len = Math.max(0, Math.min(unsent, maxPayload, wndRoom, cwRoom, sackedLimit));
    if (len === 0) {
      if (unsent === 0 && finPending && (cwRoom > 0 || retransmitting))
        return this.#emitRange(now, this.#sndNxt, 0, retransmitting);
      if (unsent > 0 && this.#sndWnd === 0 && flight === 0 && this.#persistAt === undefined) {
        this.#persistAt = Instant.add(now, this.#rtt.persistTimeout(this.#probeCount)); // RFC 9293 3.8.6.1
      }
      return undefined;
    }
    // The probe of an adopted connection (`probeTail`) goes whatever its size, as Linux sends a
    // probe with Nagle off: held back behind the very flight whose ACKs it is to draw, it left
    // the RTO in charge. (Other probes still wait for Nagle: letting them go too would make a
    // connection migrated through the chimney state, which has no TLP timer, differ on the wire
    // from one that was not.)
    const adoptedProbe = probe && this.#adoptedProbe;
    if (probe) this.#adoptedProbe = false;
    if (!retransmitting && len < maxPayload && !adoptedProbe) {
      // Nagle (RFC 9293 3.7.4) and sender SWS avoidance (3.8.6.2.1).
      const allQueued = len === unsent;
      const idle = flight === 0 || this.#noDelay;
      const ok =
        (allQueued && (idle || this.#finQueued)) || (idle && len >= this.#maxSndWnd / 2) || this.#swsOverride;
      if (!ok) {
        if (!allQueued && idle && this.#persistAt === undefined)
          this.#persistAt = Instant.add(now, this.#rtt.rto); // SWS override timer
        return undefined;
      }
    }
    this.#swsOverride = false;
    return this.#emitRange(now, this.#sndNxt, len, retransmitting);
  }

  /** The most payload a segment may carry now: SMSS less the room our SACK blocks take. */
  #maxPayload(): number {
    const sacking = this.#sackOk && (!this.#ooo.isEmpty || this.#dsack !== undefined);
    return this.#smss() - (sacking ? this.#sackOptionBytes() : 0);
  }

  /** Bytes from `seq` (in flight) to the next byte the peer SACKed (unbounded when none). */
  #holeFrom(seq: SeqNum): number {
    if (this.#sb.isEmpty) return Number.MAX_SAFE_INTEGER;
    const off = this.#offsetOf(seq);
    return this.#sb.nextSackedStart(off) - off;
  }

  /**
   * Emits [seq, seq + len) of send data (plus the FIN if it is next), advancing SND.NXT when
   * `seq` is SND.NXT. `isRtx` marks retransmissions for Karn's rule and the counters.
   */
  #emitRange(now: Instant, seq: SeqNum, maxLen: number, isRtx: boolean): TcpRepr {
    const dataEnd = this.#dataEnd();
    const avail = Seq.lt(seq, dataEnd) ? Seq.diff(dataEnd, seq) : 0;
    const len = Math.min(maxLen, avail);
    const off = Seq.diff(seq, this.#sendHead);
    const payload = this.#sendQ.slice(off, len);
    let flags = TcpFlag.ACK;
    const end = Seq.add(seq, len);
    let consumed = len;
    if (this.#finQueued && end === this.#finSeq() && this.#state !== "SYN-RECEIVED") {
      if (seq === this.#sndNxt || Seq.gt(this.#sndMax, end)) {
        flags |= TcpFlag.FIN;
        consumed++;
      }
    }
    if (len > 0 && (len === avail || this.#noDelay || this.#pushInside(off, len))) flags |= TcpFlag.PSH;
    // RFC 3168 6.1.2 / 6.1.5: new data of an ECN connection goes out ECT(0), the first after a
    // reduction with CWR; retransmissions never are ECT.
    let ect = 0;
    const ecn = this.#ecn;
    if (ecn !== undefined && len > 0 && !isRtx && !Seq.lt(seq, this.#sndMax)) {
      ect = ECN_ECT0;
      if (ecn.cwrPending) {
        flags |= TcpFlag.CWR;
        ecn.cwrPending = false;
      }
    }
    const segEnd = Seq.add(seq, consumed);
    if (len > 0 && this.#rack !== undefined && this.#sackOk) {
      const s0 = this.#sendHeadOff + off;
      this.#rack.onSend(s0, s0 + len, now, isRtx || Seq.lt(seq, this.#sndMax));
    }
    if (isRtx || Seq.lt(seq, this.#sndMax)) {
      this.stats.retransmits++;
      // HighRxt covers every retransmission (also go-back-N and probes), so a hole filled by
      // one is never taken for reordering (`#detectReordering`).
      this.#sb.noteRetransmitted(this.#offsetOf(segEnd));
      if (this.#spurious.active)
        this.#spurious.onRetransmit(this.#tsOk ? this.#tsNow(now) : undefined, seq, Seq.add(seq, len));
      this.#rtt.karn();
    } else if (!this.#rtt.timing && !this.#tsOk && consumed > 0) {
      this.#rtt.time(segEnd, now);
    }
    if (seq === this.#sndNxt) this.#sndNxt = segEnd;
    if (Seq.gt(segEnd, this.#sndMax)) this.#sndMax = segEnd;
    if (consumed > 0 && this.#rtxAt === undefined) this.#rtxAt = Instant.add(now, this.#rtt.rto); // integer microseconds
    if (consumed > 0) this.#persistAt = undefined;
    if (consumed > 0 && !isRtx && !this.#tlpOut) this.#armTlp(now);
    this.stats.bytesOut += len;
    if (this.#inRecovery) this.#prrOut += len; // RFC 6937 prr_out
    const seg = this.#emit(now, seq, flags, payload);
    return ect === 0 ? seg : { ...seg, ecn: ect };
  }

  /** True when a push mark lies in (off, off + len] (offsets relative to the send head). */
  #pushInside(off: number, len: number): boolean {
    const lo = this.#sendHeadOff + off;
    for (const m of this.#pushMarks) if (m > lo && m <= lo + len) return true;
    return false;
  }

  /** RFC 6675 NextSeg during SACK recovery, while pipe is below cwnd (see SackScoreboard). */
  #sackNextSeg(now: Instant, maxPayload: number): TcpRepr | undefined {
    const sb = this.#sb;
    const rack = this.#rack;
    if (rack !== undefined) {
      // RFC 8985 6 with RFC 6675's NextSeg rule 1: the lowest range RACK deemed lost.
      if (this.#pipe() >= this.#cwnd) return undefined;
      const n = rack.nextLost(maxPayload);
      return n > 0 ? this.#emitRange(now, this.#seqOf(rack.nextStart), n, true) : undefined;
    }
    if (sb.isEmpty || this.#pipe() >= this.#cwnd) return undefined;
    const sentHigh = this.#offsetOf(this.#sndMax);
    const len = sb.nextRetransmission(
      this.#sendHeadOff,
      maxPayload,
      this.#spurious.reordering,
      this.#smss(),
      sentHigh,
    );
    return len > 0 ? this.#emitRange(now, this.#seqOf(sb.nextStart), len, true) : undefined;
  }

  /**
   * Go-back-N after a timeout: moves SND.NXT past a SACKed range it points into and returns
   * how many bytes may go before the next SACKed range.
   */
  #skipSacked(): number {
    const off = this.#offsetOf(this.#sndNxt);
    const maxOff = this.#offsetOf(this.#sentDataEnd());
    const at = Math.min(this.#sb.firstUnsacked(off, maxOff), maxOff);
    if (at > off) this.#sndNxt = this.#seqOf(at);
    return this.#sb.nextSackedStart(at) - at;
  }

  /** Send-stream offset of sequence number `seq` (at or after the send head). */
  #offsetOf(seq: SeqNum): number {
    return this.#sendHeadOff + Seq.delta(seq, this.#sendHead);
  }

  /** Sequence number of send-stream offset `off`. */
  #seqOf(off: number): SeqNum {
    return Seq.add(this.#sendHead, off - this.#sendHeadOff);
  }

  /** RFC 6675 pipe (see SackScoreboard.pipe). */
  #pipe(): number {
    if (this.#rack !== undefined && this.#sackOk) return this.#rack.pipe;
    return this.#sb.pipe(this.#flight(), this.#sendHeadOff, this.#spurious.reordering, this.#smss());
  }

  #emitSyn(now: Instant): TcpRepr {
    const synAck = this.#state === "SYN-RECEIVED";
    const isRtx = this.#sndMax !== this.#iss;
    // RFC 7413 3: a fast open SYN with a cookie carries the first data; its retransmissions do
    // not (the data goes again once the connection is established).
    const fo = synAck ? undefined : this.#foRequest;
    const synData =
      fo?.cookie !== undefined && !isRtx ? Math.min(this.#sendQ.length, fo.maxData, this.#synMss) : 0;
    if (!isRtx) this.#foSynData = synData;
    this.#sndNxt = Seq.add(this.#iss, 1 + synData);
    // A retransmission without the data leaves SND.MAX where the first SYN's data put it.
    if (Seq.gt(this.#sndNxt, this.#sndMax)) this.#sndMax = this.#sndNxt;
    if (isRtx) {
      this.stats.retransmits++;
      this.#synRetransmitted = true;
    } else {
      this.#rtt.time(this.#sndNxt, now);
    }
    if (isRtx) this.#rtt.karn();
    this.#rtxAt ??= this.#clampToConnectDeadline(Instant.add(now, this.#rtt.rto)); // integer microseconds
    const c = this.#cfg;
    const offers = this.#synOffers();
    const offerWs = synAck ? this.#wsOk : offers.ws;
    const offerTs = synAck ? this.#tsOk : offers.ts;
    const offerSack = synAck ? this.#sackOk : offers.sack;
    const window = Math.min(this.#initialRcvWnd, 0xffff);
    if (synAck) this.#rcvAdv = Seq.add(this.#rcvNxt, window);
    this.stats.segmentsOut++;
    const ts: TcpTimestamps | undefined = offerTs
      ? { tsVal: this.#tsNow(now), tsEcr: synAck ? this.#tsRecent : 0 }
      : undefined;
    // RFC 3168 6.1.1: a SYN-ACK agrees to ECN with ECE; our SYN asks for it with ECE and CWR
    // while `ecnSynRetries` allows (6.1.1.1). Neither is ECT.
    let flags = synAck ? TcpFlag.SYN | TcpFlag.ACK : TcpFlag.SYN;
    if (synAck) {
      if (this.#ecn !== undefined) flags |= TcpFlag.ECE;
    } else {
      this.#ecnOffered = c.ecn === "on" && this.#rtxCount <= c.ecnSynRetries;
      if (this.#ecnOffered) flags |= ECN_SETUP;
    }
    return {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq: this.#iss,
      ack: synAck ? this.#rcvNxt : Seq.of(0),
      flags,
      window,
      urgent: 0,
      mss: c.noOptions ? undefined : this.#synMss,
      windowScale: offerWs ? this.#rcvWscale : undefined,
      sackPermitted: offerSack,
      sack: NO_SACK,
      timestamps: ts,
      unknownOptions: fo === undefined ? NO_OPTS : [{ kind: FAST_OPEN_OPTION, data: fo.cookie ?? EMPTY }],
      payload: synData > 0 ? this.#sendQ.slice(0, synData) : EMPTY,
    };
  }

  /**
   * Before taking a data segment: if an ACK is still owed for earlier ones (they arrived in
   * the same batch, with no poll in between), build it now so it carries the ACK number, SACK
   * blocks and timestamps of this moment (RFC 5681 4.2: at least every second full-sized
   * segment, and one per out-of-order segment). Only in the states that take data, and only
   * an ACK that tells the peer something: new data acknowledged or SACK information.
   */
  #queueOwedAck(now: Instant, seg: TcpRepr): void {
    if (!this.#ackNow || seg.payload.length === 0 || this.#rst !== undefined) return;
    if (this.#ackQueue.length >= MAX_QUEUED_ACKS) return;
    // Only an ACK with news for the peer's sender: new data acknowledged, or (D-)SACK blocks;
    // in-order data alone may be coalesced up to `batchAckBytes` (a GRO-like stretch ACK).
    if (this.#ooo.isEmpty && this.#dsack === undefined) {
      const news = Seq.diff(this.#rcvNxt, this.#lastAckSent);
      if (news === 0 || news < this.#cfg.batchAckBytes) return;
    }
    const s = this.#state;
    if (s !== "ESTABLISHED" && s !== "FIN-WAIT-1" && s !== "FIN-WAIT-2") return;
    this.#ackQueue.push(this.#emit(now, this.#sndMax, TcpFlag.ACK, EMPTY));
  }

  /**
   * Builds a segment carrying ACK = RCV.NXT and the current window (and ECE while a CE mark is
   * unanswered, RFC 3168 6.1.3); clears owed ACKs.
   */
  #emit(now: Instant, seq: SeqNum, flags: number, payload: Uint8Array): TcpRepr {
    this.#ackNow = false;
    this.#delackAt = undefined;
    this.#bytesSinceAck = 0;
    this.#lastAckSent = this.#rcvNxt;
    this.stats.segmentsOut++;
    return {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq,
      ack: this.#rcvNxt,
      flags: this.#ecn?.echoEce === true ? flags | TcpFlag.ECE : flags,
      window: this.#windowField(),
      urgent: 0,
      mss: undefined,
      windowScale: undefined,
      sackPermitted: false,
      sack: this.#sackOk && (!this.#ooo.isEmpty || this.#dsack !== undefined) ? this.#sackBlocks() : NO_SACK,
      timestamps: this.#tsOk ? { tsVal: this.#tsNow(now), tsEcr: this.#tsRecent } : undefined,
      unknownOptions: NO_OPTS,
      payload,
    };
  }

  /** The window field to send, applying receiver SWS avoidance (RFC 9293 3.8.6.2.2). */
  #windowField(): number {
    const space = Math.max(0, this.#initialRcvWnd - this.#rcvBuf.length);
    const cand = Seq.add(this.#rcvNxt, this.#readShut ? this.#initialRcvWnd : space);
    const threshold = Math.min(Math.floor(this.#initialRcvWnd / 2), this.#smss());
    let edge = this.#rcvAdv;
    if (Seq.gt(cand, edge) && Seq.diff(cand, edge) >= threshold) edge = cand;
    if (Seq.lt(edge, this.#rcvNxt)) edge = this.#rcvNxt;
    const ws = this.#wsOk ? this.#rcvWscale : 0;
    const wnd = Seq.diff(edge, this.#rcvNxt);
    const field = Math.min(0xffff, Math.ceil(wnd / 2 ** ws));
    const adv = Seq.add(this.#rcvNxt, field * 2 ** ws);
    if (Seq.gt(adv, this.#rcvAdv)) this.#rcvAdv = adv;
    return field;
  }

  /** Up to 3 (with timestamps) or 4 SACK blocks, most recent first (RFC 2018 4). */
  #sackBlocks(): SackBlock[] {
    const max = this.#tsOk ? 3 : 4;
    const out: SackBlock[] = [];
    const dsack = this.#dsack;
    if (dsack !== undefined) {
      // RFC 2883 4: the D-SACK block goes first, in one ACK only.
      this.#dsack = undefined;
      this.stats.dsacksOut++;
      out.push(dsack);
    }
    const toSeq = (o: number): SeqNum => Seq.add(this.#rcvNxt, o - this.#rcvNxtOff);
    for (const at of this.#sackRecent) {
      const r = this.#ooo.rangeContaining(at);
      if (r === undefined) continue;
      const left = toSeq(r[0]);
      if (out.some((b, i) => b.left === left && (i > 0 || dsack === undefined))) continue;
      out.push({ left, right: toSeq(r[1]) });
      if (out.length === max) return out;
    }
    for (const [s, e] of this.#ooo.ranges()) {
      const left = toSeq(s);
      if (out.some((b, i) => b.left === left && (i > 0 || dsack === undefined))) continue;
      out.push({ left, right: toSeq(e) });
      if (out.length === max) break;
    }
    return out;
  }

  /**
   * Notes the lowest part of [at, at + len) (receive offsets) that the out-of-order queue
   * already holds as a D-SACK block (RFC 2883 4: one block per duplicate sequence; FreeBSD
   * reports the first). Must run before the segment is queued or delivered.
   */
  #noteOooDuplicate(at: number, len: number): void {
    for (const [s, e] of this.#ooo.ranges()) {
      const lo = Math.max(s, at);
      const hi = Math.min(e, at + len);
      if (lo < hi) {
        const toSeq = (o: number): SeqNum => Seq.add(this.#rcvNxt, o - this.#rcvNxtOff);
        this.#noteDuplicate(toSeq(lo), toSeq(hi));
        return;
      }
    }
  }

  #sackOptionBytes(): number {
    const n = this.#tsOk ? 3 : 4;
    return Math.min(n, this.#ooo.rangeCount + (this.#dsack === undefined ? 0 : 1)) * 8 + 4;
  }

  /**
   * Receiver side of RFC 2883: remembers [left, right) as the D-SACK block of the next
   * segment we send (the latest duplicate wins), and makes sure an ACK goes out.
   */
  #noteDuplicate(left: SeqNum, right: SeqNum): void {
    if (!this.#sackOk || !this.#cfg.dsack || !Seq.lt(left, right)) return;
    this.#dsack = { left, right };
    this.#ackNow = true;
  }

  #makeRst(seq: SeqNum, ack: SeqNum, withAck: boolean): TcpRepr {
    return {
      srcPort: this.localPort,
      dstPort: this.remotePort,
      seq,
      ack,
      flags: withAck ? TcpFlag.RST | TcpFlag.ACK : TcpFlag.RST,
      window: 0,
      urgent: 0,
      mss: undefined,
      windowScale: undefined,
      sackPermitted: false,
      sack: NO_SACK,
      timestamps: undefined,
      unknownOptions: NO_OPTS,
      payload: EMPTY,
    };
  }

  // ---------------------------------------------------------------------------------------
  // Helpers.

  /** Sender MSS: payload bytes per full segment, after the timestamps option (RFC 9293 3.7.1). */
  #smss(): number {
    return Math.max(1, Math.min(this.#peerMss, this.#pathMss) - (this.#tsOk ? TS_OPT_BYTES : 0));
  }

  /**
   * An acceptable segment echoes a TSval ahead of our clock: an earlier owner of the connection
   * sent it (after a hand-off from the Linux kernel, which stamps a pure ACK with its pacing
   * departure time, measured up to 56 ms ahead of its clock), and the peer's PAWS drops every
   * segment of ours below it until our clock gets there (a hand-off whose new owner sent its
   * first flight that way lost it all, and stalled 3 s in retransmission timeouts). The clock
   * jumps to the echo: TSvals only must never go backwards (RFC 7323 5.4). A lead beyond
   * `MAX_TS_CATCH_UP` is no clock of this connection's: ignored.
   */
  #catchUpTsClock(now: Instant, tsEcr: number): void {
    const lead = (tsEcr - this.#tsNow(now)) | 0;
    if (lead <= 0 || lead > MAX_TS_CATCH_UP) return;
    this.#tsOffset = (this.#tsOffset + lead) >>> 0;
    this.stats.tsClockCatchUps++;
  }

  #tsNow(now: Instant): number {
    return (Math.floor(now / 1000) + this.#tsOffset) >>> 0;
  }

  /** The end of the data sent so far (SND.MAX less a FIN). */
  #sentDataEnd(): SeqNum {
    const dataEnd = this.#dataEnd();
    return Seq.lt(this.#sndMax, dataEnd) ? this.#sndMax : dataEnd;
  }

  /** Sequence number after the last queued data byte. */
  #dataEnd(): SeqNum {
    return Seq.add(this.#sendHead, this.#sendQ.length);
  }

  /** The FIN's sequence number (meaningful once `close` was called). */
  #finSeq(): SeqNum {
    return this.#dataEnd();
  }

  #flight(): number {
    return Seq.delta(this.#sndNxt, this.#sndUna);
  }

  #unsent(): number {
    const d = Seq.delta(this.#dataEnd(), this.#sndNxt);
    return d > 0 ? d : 0;
  }

  #maySend(): boolean {
    switch (this.#state) {
      case "SYN-SENT":
      case "SYN-RECEIVED":
      case "ESTABLISHED":
      case "CLOSE-WAIT":
        return !this.#finQueued;
      case "CLOSED":
      case "LISTEN":
      case "FIN-WAIT-1":
      case "FIN-WAIT-2":
      case "CLOSING":
      case "LAST-ACK":
      case "TIME-WAIT":
        return false;
    }
  }

  #afterRead(): void {
    // Send a window update when the window grew a lot and the advertised one is small.
    if (this.#state === "CLOSED" || this.#state === "SYN-SENT" || this.#finReceived) return;
    const space = this.#initialRcvWnd - this.#rcvBuf.length;
    const adv = Seq.delta(this.#rcvAdv, this.#rcvNxt);
    const threshold = Math.min(Math.floor(this.#initialRcvWnd / 2), this.#smss());
    if (space - adv >= threshold && adv < this.#initialRcvWnd / 2) this.#ackNow = true;
  }

  /** The contract: `now` never decreases (STYLE 3.7: a caller's breach is a UsageError). */
  #clock(now: Instant): void {
    if (now < this.#now) throw new UsageError(`time went backwards: ${now} < ${this.#now}`);
    this.#now = now;
  }

  /** Enters CLOSED, reporting `reason`, and drops every queue and timer. */
  #terminate(reason: CloseReason, error: TcpErrorCode | undefined): void {
    this.#state = "CLOSED";
    this.#error = error;
    this.#rtxAt = undefined;
    this.#tlpAt = undefined;
    this.#rackAt = undefined;
    this.#delackAt = undefined;
    this.#persistAt = undefined;
    this.#keepAliveAt = undefined;
    this.#closeAt = undefined;
    this.#ackNow = false;
    this.#ackQueue = [];
    this.#probePending = false;
    this.#rtxNext = undefined;
    this.#ooo.clear();
    this.#evClosed = { kind: "closed", reason, error };
  }
}

/**
 * The reply to a segment that matches no connection (RFC 9293 3.10.7.1, CLOSED state): a RST
 * for anything but a RST. `undefined` means send nothing.
 */
export function replyToUnexpected(seg: TcpRepr): TcpRepr | undefined {
  if (seg.flags & TcpFlag.RST) return undefined;
  const base = {
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    window: 0,
    urgent: 0,
    mss: undefined,
    windowScale: undefined,
    sackPermitted: false,
    sack: NO_SACK,
    timestamps: undefined,
    unknownOptions: NO_OPTS,
    payload: EMPTY,
  };
  if (seg.flags & TcpFlag.ACK) return { ...base, seq: seg.ack, ack: Seq.of(0), flags: TcpFlag.RST };
  const len = seg.payload.length + (seg.flags & TcpFlag.SYN ? 1 : 0) + (seg.flags & TcpFlag.FIN ? 1 : 0);
  return { ...base, seq: Seq.of(0), ack: Seq.add(seg.seq, len), flags: TcpFlag.RST | TcpFlag.ACK };
}

/**
 * The owner's drain loop (STYLE snippet 4): transmit every segment, read the next deadline,
 * deliver every event. Returns the deadline.
 */
export function drain(
  conn: TcpConnection,
  now: Instant,
  transmit: (seg: TcpRepr) => void,
  notify: (ev: ConnEvent) => void,
): Instant | undefined {
  for (let seg = conn.pollTransmit(now); seg !== undefined; seg = conn.pollTransmit(now)) transmit(seg);
  const wakeAt = conn.pollTimeout();
  for (let ev = conn.pollEvent(); ev !== undefined; ev = conn.pollEvent()) notify(ev);
  return wakeAt;
}
