/**
 * Public types of the TCP engine: states, events, user-call errors, statistics, and the
 * exportable connection snapshot (Chimney 4.6: const / cached / delegated state). The
 * snapshot's parts are `TcpSnapshotConst` / `TcpSnapshotCached` / `TcpSnapshotDelegated`; the
 * NDIS structures they convert to (chimney/tcp-state.ts) keep their NDIS names
 * (`TcpConstState` ... in chimney/state.ts, where buffered data is an NBL chain).
 */
import type { Duration } from "../time/instant.js";
import type { SeqNum } from "../wire/seq.js";

/** RFC 9293 connection states, in the RFC's spelling. */
export type TcpState =
  | "CLOSED"
  | "LISTEN"
  | "SYN-SENT"
  | "SYN-RECEIVED"
  | "ESTABLISHED"
  | "FIN-WAIT-1"
  | "FIN-WAIT-2"
  | "CLOSE-WAIT"
  | "CLOSING"
  | "LAST-ACK"
  | "TIME-WAIT";

/** Why a connection reached CLOSED. */
export type CloseReason = "fin" | "reset" | "timeout" | "aborted" | "refused" | "unreachable";

/**
 * What an ICMP error means for TCP (RFC 1122 4.2.3.9, RFC 5461): ECONNREFUSED for port or
 * protocol unreachable and administratively prohibited, EHOSTUNREACH / ENETUNREACH for the rest.
 */
export type IcmpErrorCode = "ECONNREFUSED" | "EHOSTUNREACH" | "ENETUNREACH";

/** Error codes for the socket layer, POSIX-named. */
export type TcpErrorCode = "ECONNRESET" | "ECONNREFUSED" | "ETIMEDOUT" | "EHOSTUNREACH" | "ENETUNREACH";

/**
 * What the owner learns from `pollEvent()`. Events are coalesced: at most one of each kind is
 * pending, and they come out in the order of this union (connected, acked, writable,
 * readable, peer-fin, closed).
 */
export type ConnEvent =
  /** The three-way handshake completed (ESTABLISHED reached). */
  | { readonly kind: "connected" }
  /**
   * `bytes` more bytes of send data were acknowledged since the last such event, counted
   * from the first byte passed to `send` (SYN and FIN excluded). An owner holding its send
   * requests in order completes them from this count.
   */
  | { readonly kind: "acked"; readonly bytes: number }
  /** Send buffer space was freed; `space` bytes can be passed to `send` now. */
  | { readonly kind: "writable"; readonly space: number }
  /** New in-order data arrived; `bytes` is the total now readable. */
  | { readonly kind: "readable"; readonly bytes: number }
  /** The peer's FIN arrived: after the readable bytes, the stream ends. */
  | { readonly kind: "peer-fin" }
  /** The connection reached CLOSED (or was dropped); `error` is set unless it closed cleanly. */
  | { readonly kind: "closed"; readonly reason: CloseReason; readonly error: TcpErrorCode | undefined };

/** RFC 9293 3.10 user-call errors, returned (not thrown) from `send` and `close`. */
export type UserCallError =
  /** "connection does not exist": CLOSED, or the connection failed. */
  | "connection-does-not-exist"
  /** "connection closing": `close` was already called, or the peer reset. */
  | "connection-closing";

/** Counters of one connection. Plain numbers, monotonically increasing. */
export interface TcpStats {
  segmentsIn: number;
  segmentsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Segments retransmitted (RTO, fast retransmit, SACK recovery). */
  retransmits: number;
  /** Retransmission timeouts that fired. */
  timeouts: number;
  fastRetransmits: number;
  dupAcksIn: number;
  challengeAcks: number;
  challengeAcksSuppressed: number;
  resetsOut: number;
  /** Segments dropped as unacceptable (RFC 9293 3.10.7.4 first check). */
  dropsOutOfWindow: number;
  /** Segments dropped by PAWS (RFC 7323 5). */
  dropsPaws: number;
  /** Segments dropped for a bad ACK (above SND.NXT, or too old per RFC 5961 5.2). */
  dropsBadAck: number;
  /** Out-of-order segments dropped for lack of queue space (bytes or ranges). */
  dropsOooFull: number;
  /** Segments dropped for other reasons (no ACK bit, RST not in window, ...). */
  dropsOther: number;
  oooSegmentsIn: number;
  zeroWindowProbes: number;
  keepAliveProbes: number;
  sackRecoveries: number;
  /** D-SACK blocks received that reported a duplicate of our data (RFC 2883). */
  dsacksIn: number;
  /** D-SACK blocks we sent, each reporting a duplicate segment the peer sent us (RFC 2883). */
  dsacksOut: number;
  /**
   * Fast recoveries and retransmission timeouts found spurious (RFC 3708 D-SACK, RFC 3522
   * Eifel timestamps) and undone: cwnd and ssthresh restored (RFC 4015).
   */
  spuriousUndos: number;
  /** Times the reordering estimate (the adaptive DupThresh) grew. */
  reorderingRaised: number;
  /**
   * Times our timestamp clock jumped ahead to a TSecr that was ahead of it (a TSval an earlier
   * owner of the connection sent, such as the Linux kernel before a hand-off).
   */
  tsClockCatchUps: number;
  /** Data segments that arrived CE-marked on an ECN connection (RFC 3168 6.1.3). */
  ecnCeIn: number;
  /** Congestion window reductions for an ECE (RFC 3168 6.1.2). */
  ecnReductions: number;
  /** Times HyStart++ ended slow start on a rise in RTT (RFC 9406 4.3). */
  hystartExits: number;
  /** Bytes RACK deemed lost (RFC 8985 6.2 step 5, and 6.3 at a timeout). */
  rackLostBytes: number;
  /** Times the RACK reordering timer fired (RFC 8985 6.2 step 5). */
  rackTimeouts: number;
}

/**
 * Fixed for the connection's life (Chimney TCP_OFFLOAD_STATE_CONST). Window scales are shift
 * counts; both are zero when scaling was not negotiated.
 */
export interface TcpSnapshotConst {
  readonly localPort: number;
  readonly remotePort: number;
  readonly timestampsEnabled: boolean;
  readonly sackEnabled: boolean;
  readonly windowScalingEnabled: boolean;
  /** Shift applied to the peer's window field. */
  readonly sndWindScale: number;
  /** Shift applied to the window we advertise. */
  readonly rcvWindScale: number;
  /** MSS the peer advertised in its SYN (536 if absent, RFC 9293 3.7.1). */
  readonly remoteMss: number;
  /** Our initial send sequence number and the peer's. */
  readonly iss: SeqNum;
  readonly irs: SeqNum;
}

/** Owned by the host; may change via setters (Chimney TCP_OFFLOAD_STATE_CACHED). */
export interface TcpSnapshotCached {
  readonly initialRcvWnd: number;
  readonly sendBufferSize: number;
  readonly noDelay: boolean;
  readonly keepAlive: boolean;
  readonly keepAliveIdle: Duration;
  readonly keepAliveInterval: Duration;
  readonly keepAliveProbes: number;
  readonly maxRetransmissions: number;
  readonly userTimeout: Duration | undefined;
  /** The current effective send MSS (peer MSS clamped by path MTU and our config). */
  readonly effectiveMss: number;
}

/**
 * Owned by whichever engine runs the connection (Chimney TCP_OFFLOAD_STATE_DELEGATED), as a
 * frozen snapshot. Timers are remaining time (`undefined` = not running), never absolute
 * instants, so the importer's clock may have any origin. Out-of-order data is deliberately
 * absent: the exporter drops it, exactly as a chimney target does, and the peer retransmits
 * it (it was never acknowledged, so nothing is lost). Delayed-ACK, SWS and push timers are
 * not carried (Chimney 17.1): the exporter should drain `pollTransmit` first.
 */
export interface TcpSnapshotDelegated {
  readonly state: TcpState;
  readonly rcvNxt: SeqNum;
  /** Right edge of the window last advertised (RCV.NXT + RCV.WND at that time). */
  readonly rcvAdv: SeqNum;
  readonly sndUna: SeqNum;
  readonly sndNxt: SeqNum;
  readonly sndMax: SeqNum;
  /** SND.WND in bytes (already scaled). */
  readonly sndWnd: number;
  readonly maxSndWnd: number;
  readonly sndWl1: SeqNum;
  readonly sndWl2: SeqNum;
  readonly cwnd: number;
  readonly ssthresh: number;
  /** Smoothed RTT and variance; `undefined` before the first sample (RFC 6298 2.1). */
  readonly srtt: Duration | undefined;
  readonly rttVar: Duration | undefined;
  readonly rto: Duration;
  readonly tsRecent: number;
  /** Time since TS.Recent was set (RFC 7323 5.5 24-day rule). */
  readonly tsRecentAge: Duration;
  /** Our timestamp clock value at export (Chimney 17.9 TsTime), in milliseconds. */
  readonly tsTime: number;
  readonly dupAckCount: number;
  /** NewReno/SACK recovery point, or undefined outside fast recovery. */
  readonly recover: SeqNum | undefined;
  readonly sndWndProbeCount: number;
  readonly keepAliveProbeCount: number;
  readonly keepAliveDelta: Duration | undefined;
  readonly retransmitCount: number;
  /** Retransmit timer (also persist and FIN-WAIT-2/TIME-WAIT timers, as in Chimney 17.1). */
  readonly retransmitDelta: Duration | undefined;
  /** Time spent retransmitting the current segment (Chimney TotalRT). */
  readonly totalRt: Duration;
  /** The application called close: a FIN follows the send data. */
  readonly finQueued: boolean;
  /** The peer's FIN was received (RCV.NXT counts it). */
  readonly finReceived: boolean;
  /** Send data from SND.UNA on (unacknowledged, then unsent), as the owner's chunks. */
  readonly sendData: readonly Uint8Array[];
  /** Received, acknowledged, undelivered bytes ending at RCV.NXT (minus FIN). */
  readonly bufferedData: readonly Uint8Array[];
  /** Bytes acknowledged but not yet reported in an `acked` event. */
  readonly unreportedAcked: number;
  /**
   * An ACK was owed (immediate or delayed) at export. Chimney has no such field: its owner
   * sends owed ACKs before handing over (Chimney 17.2). Absent means false; when true, the
   * importer sends the ACK at once.
   */
  readonly ackPending?: boolean;
  /**
   * ECN (RFC 3168) as negotiated: absent when the connection does not use it. Chimney's
   * delegated state has no ECN fields, so the offload manager keeps ECN connections on the host.
   */
  readonly ecn?: TcpEcnState | undefined;
}

/** A connection's ECN state (RFC 3168 6.1), present once ECN is negotiated. */
export interface TcpEcnState {
  /** A CE mark arrived: every segment we send carries ECE until the peer's CWR (6.1.3). */
  readonly echoEce: boolean;
  /** The window was reduced for an ECE: the next new data segment carries CWR (6.1.2). */
  readonly cwrPending: boolean;
  /** No further reduction for ECE until SND.UNA passes this (once per window of data). */
  readonly reducedUntil: SeqNum | undefined;
}

/** A whole connection as exported by `exportState`. */
export interface TcpSnapshot {
  readonly constState: TcpSnapshotConst;
  readonly cachedState: TcpSnapshotCached;
  readonly delegated: TcpSnapshotDelegated;
}
