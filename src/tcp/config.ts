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
  /** Duplicate ACKs that trigger fast retransmit (RFC 5681 3.2). */
  readonly dupAckThreshold: number;
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
  challengeAckLimit: 1000,
  blindAttackProbing: false,
  noDelay: false,
  delayedAck: Duration.fromMillis(40),
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
  dupAckThreshold: 3,
  maxOooBytes: 1 << 20,
  maxOooRanges: 32,
});

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
  int("initialRto", c.initialRto, 1, 2 ** 40);
  int("minRto", c.minRto, 1, c.maxRto);
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
  int("dupAckThreshold", c.dupAckThreshold, 1, 100);
  int("maxOooBytes", c.maxOooBytes, 0, 2 ** 30);
  int("maxOooRanges", c.maxOooRanges, 0, 1 << 16);
  return Object.freeze(c);
}
