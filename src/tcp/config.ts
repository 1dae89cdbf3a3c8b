/**
 * Per-connection TCP configuration: every tunable and every resource bound of the engine as a
 * named, validated value (RFC 9293, RFC 6298, RFC 5681, RFC 7323, RFC 5961, RFC 1122).
 */
import { Duration } from "../time/instant.js";
import { ConfigError } from "../util/errors.js";

/** Tunables and resource limits of one connection. Build with `tcpConfig(overrides)`. */
export interface TcpConfig {
  /** MSS we advertise and the largest payload we send before path clamping (RFC 9293 3.7.1). */
  readonly mss: number;
  /** Send buffer limit in bytes: unsent plus unacknowledged data (the retransmission queue). */
  readonly sendBufferSize: number;
  /** Receive buffer limit in bytes: undelivered plus out-of-order data; bounds the window. */
  readonly recvBufferSize: number;
  /** Offer the window scale option (RFC 7323 2); used only when both SYNs carry it. */
  readonly windowScaling: boolean;
  /** Offer timestamps (RFC 7323 3); used only when both SYNs carry them. */
  readonly timestamps: boolean;
  /** Offer SACK-permitted (RFC 2018); used only when both SYNs carry it. */
  readonly sack: boolean;
  /** RFC 5961 challenge ACKs and ACK range check. `false` gives RFC 793 behaviour. */
  readonly rfc5961: boolean;
  /**
   * RFC 5961 3 (RST: only RST at RCV.NXT resets, others draw a challenge ACK) on its own;
   * `undefined` follows `rfc5961`. `false` gives RFC 793 RST handling (FreeBSD insecure_rst).
   */
  readonly rfc5961Rst: boolean | undefined;
  /**
   * RFC 5961 4 (a SYN in a synchronized state draws a challenge ACK) on its own; `undefined`
   * follows `rfc5961`. `false` resets the connection as RFC 793 did (FreeBSD insecure_syn).
   */
  readonly rfc5961Syn: boolean | undefined;
  /**
   * Drop a segment with both SYN and FIN set, in SYN-SENT and in a listener (FreeBSD
   * net.inet.tcp.drop_synfin; RFC 9293 does not forbid the combination). Default true: SYN+FIN
   * is a scan pattern, and Linux never answers it on a listener.
   */
  readonly dropSynFin: boolean;
  /**
   * Send SYNs without any option (FreeBSD TCP_NOOPT): no MSS, window scale, SACK-permitted or
   * timestamps, so none of them is negotiated.
   */
  readonly noOptions: boolean;
  /**
   * From the third SYN retransmission on, offer no option but the MSS (FreeBSD
   * net.inet.tcp.rexmit_drop_options), in case a middlebox drops SYNs with options.
   */
  readonly synRetransmitDropOptions: boolean;
  /**
   * Added to every retransmission timeout after backoff (FreeBSD net.inet.tcp.rexmit_slop;
   * 0 by default). With it, the n-th SYN retransmission waits RTO * 2^n + slop.
   */
  readonly rtoSlop: Duration;
  /**
   * Connection-establishment timeout (FreeBSD net.inet.tcp.keepinit / TCP_KEEPINIT): a
   * connection still in SYN-SENT or SYN-RECEIVED this long after it started fails with
   * ETIMEDOUT, whatever `synRetries` allows. `undefined`: only `synRetries` bounds it.
   */
  readonly connectTimeout: Duration | undefined;
  /** At most this many challenge ACKs per second (RFC 5961 7; Linux default 1000). */
  readonly challengeAckLimit: number;
  /**
   * Chimney 17.11 blind in-window attack mitigation (a MUST for offload targets): after a
   * challenge ACK, probe the peer with keep-alives (first after 5 minutes, then every
   * `keepAliveInterval`, at most `keepAliveProbes`) until an acceptable segment arrives, and
   * fail with ETIMEDOUT when none does.
   */
  readonly blindAttackProbing: boolean;
  /** Disable Nagle's algorithm (RFC 9293 3.7.4). */
  readonly noDelay: boolean;
  /** Delayed-ACK timeout (RFC 9293 3.8.6.3: at most 500 ms). Zero acknowledges every segment. */
  readonly delayedAck: Duration;
  /**
   * Acknowledge every second in-order data segment whatever its size, as BSD stacks do (an
   * arriving segment while an ACK is delayed is ACKed at once). `false` (default) counts bytes:
   * an ACK once two full-sized segments' worth arrived (RFC 5681 4.2), as Linux does for
   * full-sized segments; smaller ones wait for the delayed-ACK timer.
   */
  readonly ackEverySecondSegment: boolean;
  /**
   * In-order bytes one ACK may cover when several segments arrive before the owner polls (a
   * driver's batch): the run is acknowledged as Linux acknowledges what its GRO merged, one
   * ACK per at most this many bytes (default 64 KiB, GRO's limit). 0 sends every ACK the
   * segments call for, one per second full-sized segment (RFC 5681 4.2's SHOULD, which a GRO
   * receiver stretches). Out-of-order segments are always acknowledged one by one, with their
   * SACK blocks, and across polls the every-second-segment rule holds either way.
   */
  readonly batchAckBytes: number;
  /** Initial retransmission timeout (RFC 6298 2.1: 1 s). */
  readonly initialRto: Duration;
  /** Lower bound of the RTO (RFC 6298 2.4 says 1 s; Linux uses 200 ms, the default here). */
  readonly minRto: Duration;
  /** Upper bound of the RTO, also of backed-off RTOs and persist intervals (RFC 6298 2.5). */
  readonly maxRto: Duration;
  /** Retransmissions of one segment before the connection fails with ETIMEDOUT (R2). */
  readonly maxRetransmissions: number;
  /** SYN retransmissions before a connect fails with ETIMEDOUT. */
  readonly synRetries: number;
  /** If set, fail with ETIMEDOUT once data has been unacknowledged this long (RFC 5482). */
  readonly userTimeout: Duration | undefined;
  /** Maximum segment lifetime; TIME-WAIT lasts 2*MSL (RFC 9293 3.4.2). */
  readonly msl: Duration;
  /** FIN-WAIT-2 timeout after the application closed (Chimney 17.3: 120 s; Linux 60 s). */
  readonly finWait2Timeout: Duration;
  /** Keep-alive on (RFC 9293 3.8.4; off by default, as RFC 1122 4.2.3.6 requires). */
  readonly keepAlive: boolean;
  /** Idle time before the first keep-alive probe (RFC 1122: at least 2 hours by default). */
  readonly keepAliveIdle: Duration;
  /** Interval between unanswered keep-alive probes. */
  readonly keepAliveInterval: Duration;
  /** Unanswered keep-alive probes before the connection fails with ETIMEDOUT. */
  readonly keepAliveProbes: number;
  /** Initial congestion window in segments (RFC 5681 3.1 allows up to 4; RFC 6928 10). */
  readonly initialCwndSegments: number;
  /**
   * Congestion avoidance and the response to congestion: "cubic" (RFC 9438, the default, as
   * Linux's and FreeBSD's: the window follows a cubic curve around the window of the last
   * congestion event, and a loss takes it to 0.7 of itself) or "newreno" (RFC 5681 / 6582:
   * one segment per window in congestion avoidance, half the flight at a loss). Per
   * connection: `TcpConnection.setCongestionControl` (TCP_CONGESTION).
   */
  readonly congestionControl: CongestionControl;
  /**
   * HyStart++ (RFC 9406) in the initial slow start: a rise in the round's minimum RTT (a queue
   * building) ends slow start for Conservative Slow Start, then congestion avoidance, before
   * the queue overflows. On by default (as Linux's CUBIC runs HyStart). Needs timestamps to see
   * enough samples per round.
   */
  readonly hystart: boolean;
  /**
   * RFC 6937 proportional rate reduction in SACK fast recovery: what is sent follows what is
   * delivered (ssthresh / RecoverFS of it), instead of waiting until pipe falls below
   * cwnd = ssthresh and then sending a segment per ACK. On by default (Linux runs PRR in every
   * recovery).
   */
  readonly prr: boolean;
  /**
   * RACK (RFC 8985 6) on SACK connections: a segment is lost when one sent after it was
   * delivered and a reordering window (a quarter of the minimum RTT, widened by D-SACKs) has
   * passed, instead of when DupThresh segments above it are SACKed. Finds a lost
   * retransmission and a loss at the tail as it finds any other, and tolerates reordering by
   * time rather than by count. The tail loss probe (`tailLossProbe`) completes RACK-TLP. Off
   * by default.
   */
  readonly rack: boolean;
  /**
   * Appropriate Byte Counting limit L in slow start, in segments (RFC 3465 2.2: an ACK grows
   * cwnd by min(bytes acked, L * SMSS); L = 2 is the RFC's and FreeBSD's net.inet.tcp.abc_l_var
   * default). 1 grows by at most one segment per ACK (RFC 5681 3.1's minimum); 0 removes the
   * limit (Linux grows by every byte acknowledged).
   */
  readonly abcLimit: number;
  /** Duplicate ACKs that trigger fast retransmit (RFC 5681 3.2). */
  readonly dupAckThreshold: number;
  /**
   * Largest DupThresh the sender's reordering estimate may reach, in segments. The sender starts
   * at `dupAckThreshold` and raises it when it sees reordering (a hole acknowledged without a
   * retransmission, or a D-SACK proving a retransmission spurious), as Linux's tcp_reordering
   * does (RFC 4653, RFC 8985 6.2 reordering window). A value at or below `dupAckThreshold`
   * disables the adaptation.
   */
  readonly maxReordering: number;
  /**
   * RFC 2883 D-SACK: as a receiver, report a duplicate segment in the first SACK block; as a
   * sender, use the peer's D-SACKs to detect spurious retransmissions (RFC 3708).
   */
  readonly dsack: boolean;
  /**
   * Undo spurious congestion responses: when D-SACK (RFC 3708) or timestamps (RFC 3522 Eifel
   * detection) prove a fast recovery or a retransmission timeout spurious, restore cwnd and
   * ssthresh (RFC 4015 response; Linux's undo).
   */
  readonly undoSpurious: boolean;
  /**
   * RFC 8985 tail loss probe on SACK connections: after 2 * SRTT without an ACK, send one
   * segment (new, or the last again) so a tail loss is repaired by SACK recovery instead of
   * the RTO. The probe timer is not part of a snapshot (like the delayed-ACK timer).
   */
  readonly tailLossProbe: boolean;
  /**
   * ECN (RFC 3168): "on" asks for it in our SYN and accepts it; "passive" (the default, as
   * Linux's tcp_ecn=2 and FreeBSD's net.inet.tcp.ecn.enable=2) only accepts a peer's ECN-setup
   * SYN; "off" never uses it. With ECN, new data goes out ECT(0), a CE mark is echoed with ECE
   * until the peer's CWR, and an ECE halves the congestion window once per window of data.
   */
  readonly ecn: EcnMode;
  /**
   * Retransmissions of our SYN that still ask for ECN before it is dropped from the SYN
   * (RFC 3168 6.1.1.1: a middlebox may drop ECN-setup SYNs). FreeBSD's
   * net.inet.tcp.ecn.maxretries (default 1); Linux drops it at the first retransmission (0).
   */
  readonly ecnSynRetries: number;
  /** Bound on bytes held in the out-of-order queue. */
  readonly maxOooBytes: number;
  /** Bound on disjoint ranges (holes) in the out-of-order queue. */
  readonly maxOooRanges: number;
}

/** Defaults: Linux-like values where the RFCs leave a choice. */
export const DEFAULT_TCP_CONFIG: TcpConfig = Object.freeze({
  mss: 1460,
  sendBufferSize: 1 << 20,
  recvBufferSize: 1 << 20,
  windowScaling: true,
  timestamps: true,
  sack: true,
  rfc5961: true,
  rfc5961Rst: undefined,
  rfc5961Syn: undefined,
  dropSynFin: true,
  noOptions: false,
  synRetransmitDropOptions: false,
  rtoSlop: Duration.ZERO,
  connectTimeout: undefined,
  challengeAckLimit: 1000,
  blindAttackProbing: false,
  noDelay: false,
  delayedAck: Duration.fromMillis(40),
  ackEverySecondSegment: false,
  batchAckBytes: 65536,
  initialRto: Duration.fromSeconds(1),
  minRto: Duration.fromMillis(200),
  maxRto: Duration.fromSeconds(120),
  maxRetransmissions: 15,
  synRetries: 6,
  userTimeout: undefined,
  msl: Duration.fromSeconds(30),
  finWait2Timeout: Duration.fromSeconds(60),
  keepAlive: false,
  keepAliveIdle: Duration.fromSeconds(7200),
  keepAliveInterval: Duration.fromSeconds(75),
  keepAliveProbes: 9,
  initialCwndSegments: 10,
  congestionControl: "cubic",
  hystart: true,
  prr: true,
  rack: false,
  abcLimit: 2,
  dupAckThreshold: 3,
  maxReordering: 64,
  dsack: true,
  undoSpurious: true,
  tailLossProbe: true,
  ecn: "passive",
  ecnSynRetries: 1,
  maxOooBytes: 1 << 20,
  maxOooRanges: 32,
});

/** The congestion controls the engine implements (`TcpConfig.congestionControl`). */
export const CONGESTION_CONTROLS = ["newreno", "cubic"] as const;
export type CongestionControl = (typeof CONGESTION_CONTROLS)[number];

/** The ECN modes (`TcpConfig.ecn`). */
export const ECN_MODES = ["off", "passive", "on"] as const;
export type EcnMode = (typeof ECN_MODES)[number];

/** The defaults with `overrides` applied, validated; throws `ConfigError` when out of range. */
export function tcpConfig(overrides: Partial<TcpConfig> = {}): TcpConfig {
  const c: TcpConfig = { ...DEFAULT_TCP_CONFIG, ...overrides };
  const int = (name: keyof TcpConfig, v: number, lo: number, hi: number): void => {
    if (!Number.isSafeInteger(v) || v < lo || v > hi)
      throw new ConfigError(`${name} = ${v} is outside [${lo}, ${hi}]`);
  };
  int("mss", c.mss, 64, 65495);
  int("sendBufferSize", c.sendBufferSize, 1, 2 ** 30);
  int("recvBufferSize", c.recvBufferSize, 1, 2 ** 30);
  int("challengeAckLimit", c.challengeAckLimit, 1, 1e9);
  int("delayedAck", c.delayedAck, 0, 500_000);
  int("batchAckBytes", c.batchAckBytes, 0, 2 ** 30);
  int("initialRto", c.initialRto, 1, 2 ** 40);
  int("minRto", c.minRto, 1, c.maxRto);
  int("rtoSlop", c.rtoSlop, 0, 2 ** 40);
  if (c.connectTimeout !== undefined) int("connectTimeout", c.connectTimeout, 1, 2 ** 45);
  int("maxRto", c.maxRto, 1, 2 ** 40);
  int("maxRetransmissions", c.maxRetransmissions, 1, 255);
  int("synRetries", c.synRetries, 0, 255);
  if (c.userTimeout !== undefined) int("userTimeout", c.userTimeout, 1, 2 ** 45);
  int("msl", c.msl, 0, 2 ** 40);
  int("finWait2Timeout", c.finWait2Timeout, 0, 2 ** 40);
  int("keepAliveIdle", c.keepAliveIdle, 1, 2 ** 45);
  int("keepAliveInterval", c.keepAliveInterval, 1, 2 ** 45);
  int("keepAliveProbes", c.keepAliveProbes, 1, 255);
  int("initialCwndSegments", c.initialCwndSegments, 1, 1000);
  int("abcLimit", c.abcLimit, 0, 1000);
  if (!CONGESTION_CONTROLS.includes(c.congestionControl))
    throw new ConfigError(
      `congestionControl = ${c.congestionControl} is not one of ${CONGESTION_CONTROLS.join(", ")}`,
    );
  if (!ECN_MODES.includes(c.ecn))
    throw new ConfigError(`ecn = ${c.ecn} is not one of ${ECN_MODES.join(", ")}`);
  int("ecnSynRetries", c.ecnSynRetries, 0, 255);
  int("dupAckThreshold", c.dupAckThreshold, 1, 100);
  int("maxReordering", c.maxReordering, 1, 1000);
  int("maxOooBytes", c.maxOooBytes, 0, 2 ** 30);
  int("maxOooRanges", c.maxOooRanges, 0, 1 << 16);
  // Every switch is a boolean (undefined reads as off): a string "false" from a configuration
  // file would read as on.
  for (const [k, v] of Object.entries(DEFAULT_TCP_CONFIG)) {
    const got = (c as unknown as Record<string, unknown>)[k];
    if (typeof v === "boolean" && got !== undefined && typeof got !== "boolean")
      throw new ConfigError(`${k} = ${JSON.stringify(got) ?? typeof got} is not a boolean`);
  }
  return Object.freeze(c);
}
