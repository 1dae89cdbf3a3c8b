/**
 * How the FreeBSD test suite's environment maps onto our stack: the sysctl table (what each
 * `sysctl -w` a script runs means for our `TcpConfig`), and the named leniency rules (the
 * differences that are FreeBSD policy rather than TCP, each with its reason). The scripts are
 * never edited: every difference between FreeBSD and us that a script would trip on is either
 * mapped here, or the script is listed in `known-failures.txt` with its reason.
 */
import type { TcpConfig } from "../../tcp/config.js";
import { Duration } from "../../time/instant.js";

/** The TCP settings a script's sysctls and socket options produce, before the stack exists. */
export interface DutSettings {
  /** Overrides of the engine's defaults (applied with `tcpConfig`). */
  tcp: Partial<{ -readonly [K in keyof TcpConfig]: TcpConfig[K] }>;
  /** Sysctls set to a value our stack cannot honour (name=value), for the report. */
  readonly unmapped: string[];
  /** `kern.ipc.maxsockbuf`: FreeBSD's cap on socket buffers (chooses its window shift). */
  maxSockBuf: number;
  /** `net.inet.tcp.insecure_rst` / `insecure_syn`: RFC 5961 off for RST / SYN. */
  insecureRst: boolean;
  insecureSyn: boolean;
  /** `net.inet.tcp.icmp_may_rst` -> `HostStack.icmpMayAbort` (FreeBSD default 1). */
  icmpMayRst: boolean;
  /**
   * `net.inet.tcp.fastopen.client_enable` -> `HostStack.fastOpen.enabled` (FreeBSD default 1):
   * client TCP Fast Open; turning it off empties the cookie cache.
   */
  fastOpenClient: boolean;
}

/** Fresh settings with FreeBSD's defaults where they differ from the engine's. */
export function defaultSettings(): DutSettings {
  return {
    // FreeBSD defaults: recvspace 64 KiB, sendspace 32 KiB, initial RTO 1 s, rexmit_slop
    // 200 ms; no delayed-ACK effects at the time scale of these scripts are relied upon.
    // SYNs: FreeBSD retransmits a SYN up to 10 times (TCP_MAXRXTSHIFT less its SYN margin),
    // RTOs capped at TCPTV_REXMTMAX = 64 s.
    // Delayed ACKs after net.inet.tcp.delacktime (100 ms); keep-alive after keepidle (2 h),
    // keepintvl (75 s) and keepcnt (8); connections not established within keepinit (75 s) fail.
    tcp: {
      recvBufferSize: 65536,
      sendBufferSize: 32768,
      rtoSlop: Duration.fromMillis(200),
      synRetries: 10,
      maxRto: Duration.fromSeconds(64),
      dropSynFin: false, // net.inet.tcp.drop_synfin defaults to 0
      delayedAck: Duration.fromMillis(100),
      ackEverySecondSegment: true, // tcp_input: a second segment while an ACK is delayed is ACKed
      keepAliveIdle: Duration.fromSeconds(7200),
      keepAliveInterval: Duration.fromSeconds(75),
      keepAliveProbes: 8,
      connectTimeout: Duration.fromSeconds(75),
    },
    unmapped: [],
    maxSockBuf: 2097152,
    insecureRst: false,
    insecureSyn: false,
    icmpMayRst: true,
    fastOpenClient: true,
  };
}

/** One row of the sysctl table. */
export interface SysctlRule {
  /** What the sysctl means, and which knob of ours it maps to (or why none). */
  readonly meaning: string;
  /**
   * Applies `value`; returns `false` when the value cannot be honoured by our stack (recorded
   * in `DutSettings.unmapped`; the script may still pass if it does not depend on it).
   */
  readonly apply: (s: DutSettings, value: number) => boolean;
  /** For a sysctl whose value is not one integer: applies the text instead of `apply`. */
  readonly applyText?: ((s: DutSettings, value: string) => boolean) | undefined;
}

const on = (v: number): boolean => v !== 0;

type Tcp = DutSettings["tcp"];
/** The `TcpConfig` keys of each value type, for the knob constructors below. */
type KeyOf<T> = {
  [K in keyof Tcp]-?: NonNullable<Tcp[K]> extends T ? (T extends NonNullable<Tcp[K]> ? K : never) : never;
}[keyof Tcp];

function set<K extends keyof Tcp>(s: DutSettings, key: K, value: Tcp[K]): void {
  s.tcp[key] = value;
}

/** A sysctl that turns a boolean knob on (non-zero) or off (0). */
export function flagKnob(meaning: string, key: KeyOf<boolean>): SysctlRule {
  return {
    meaning,
    apply: (s, v) => {
      set(s, key, v !== 0);
      return true;
    },
  };
}

/**
 * A sysctl that sets a time knob, in `unit`s; a value outside [min, max] cannot be honoured.
 */
export function durationKnob(
  meaning: string,
  key: KeyOf<Duration>,
  unit: "ms" | "s",
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): SysctlRule {
  return {
    meaning,
    apply: (s, v) => {
      if (v < min || v > max) return false;
      set(s, key, unit === "ms" ? Duration.fromMillis(v) : Duration.fromSeconds(v));
      return true;
    },
  };
}

/** A sysctl that sets a count or size knob; a value outside [min, max] cannot be honoured. */
export function countKnob(
  meaning: string,
  key: KeyOf<number>,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): SysctlRule {
  return {
    meaning,
    apply: (s, v) => {
      if (v < min || v > max) return false;
      set(s, key, v);
      return true;
    },
  };
}

/** A sysctl whose only value we honour is `value` (the OS's default, what we do). */
export function defaultOnly(meaning: string, value: number): SysctlRule {
  return { meaning, apply: (_s, v) => v === value };
}

/** A sysctl with no effect on what a script observes of our stack, whatever its value. */
export function noEffect(meaning: string): SysctlRule {
  return { meaning, apply: () => true, applyText: () => true };
}

/** The ECN sysctl of FreeBSD and Linux alike: 0 off, 1 on (ask and accept), 2 passive (accept only). */
export function ecnModeKnob(meaning: string): SysctlRule {
  return {
    meaning,
    apply: (s, v) => {
      const mode = v === 0 ? "off" : v === 1 ? "on" : v === 2 ? "passive" : undefined;
      if (mode === undefined) return false;
      s.tcp.ecn = mode;
      return true;
    },
  };
}

/** A sysctl with no knob of ours: the values `ok` accepts are what we do; others are recorded. */
export function onlyValue(meaning: string, ok: (v: number) => boolean): SysctlRule {
  return { meaning, apply: (_s, v) => ok(v) };
}

/**
 * FreeBSD sysctls the suite sets, mapped to `TcpConfig`. Knobs marked "no knob" are ones
 * TcpConfig lacks (listed for the TCP engine's owner); setting them to FreeBSD's default is
 * accepted silently, any other value is recorded as unmapped.
 */
export const SYSCTL_TABLE: Readonly<Record<string, SysctlRule>> = {
  "net.inet.tcp.rfc1323": {
    meaning: "RFC 1323/7323 timestamps and window scaling -> timestamps, windowScaling",
    apply: (s, v) => {
      // FreeBSD: 1 = both, 2 = window scaling only, 3 = timestamps only.
      s.tcp.windowScaling = v === 1 || v === 2;
      s.tcp.timestamps = v === 1 || v === 3;
      return true;
    },
  },
  "net.inet.tcp.sack.enable": flagKnob("RFC 2018 SACK -> sack", "sack"),
  "net.inet.tcp.ecn.enable": ecnModeKnob(
    "RFC 3168 ECN -> ecn: 0 off, 1 ask and accept (on), 2 accept only (passive, the default)",
  ),
  "net.inet.tcp.ecn.maxretries": countKnob(
    "SYN retransmissions that still ask for ECN -> ecnSynRetries",
    "ecnSynRetries",
    0,
    255,
  ),
  "kern.ipc.maxsockbuf": {
    meaning:
      "cap on socket buffers; FreeBSD derives its window shift from it (no knob: our shift follows recvBufferSize)",
    apply: (s, v) => {
      s.maxSockBuf = v;
      return true;
    },
  },
  "net.inet.tcp.recvspace": countKnob("default receive buffer -> recvBufferSize", "recvBufferSize", 1),
  "net.inet.tcp.sendspace": countKnob("default send buffer -> sendBufferSize", "sendBufferSize", 1),
  "net.inet.tcp.hostcache.purgenow": noEffect(
    "flush the host cache (RTT, MSS): each script gets a fresh stack, so nothing to do",
  ),
  "net.inet.tcp.blackhole": defaultOnly(
    "no RST to closed ports: a host-stack policy (the suite only sets 0, the default: answer, RFC 9293 3.10.7.1)",
    0,
  ),
  "net.inet.tcp.insecure_rst": {
    meaning: "RFC 5961 section 3 off for RST -> rfc5961Rst = !value",
    apply: (s, v) => {
      s.insecureRst = on(v);
      s.tcp.rfc5961Rst = !on(v);
      return true;
    },
  },
  "net.inet.tcp.insecure_syn": {
    meaning: "RFC 5961 section 4 off for SYN -> rfc5961Syn = !value",
    apply: (s, v) => {
      s.insecureSyn = on(v);
      s.tcp.rfc5961Syn = !on(v);
      return true;
    },
  },
  "net.inet.tcp.drop_synfin": flagKnob(
    "drop segments with SYN and FIN -> dropSynFin (the engine, for SYN-SENT; a listener's SYN+FIN is the host stack's)",
    "dropSynFin",
  ),
  "net.inet.tcp.rexmit_initial": durationKnob(
    "initial retransmission timeout in ms -> initialRto",
    "initialRto",
    "ms",
    1,
  ),
  "net.inet.tcp.rexmit_min": durationKnob("minimum RTO in ms -> minRto", "minRto", "ms", 1),
  "net.inet.tcp.rexmit_slop": durationKnob(
    "ms added to every backed-off RTO -> rtoSlop (FreeBSD default 200)",
    "rtoSlop",
    "ms",
    0,
  ),
  "net.inet.tcp.rexmit_drop_options": flagKnob(
    "send the third and later SYN retransmissions without options -> synRetransmitDropOptions",
    "synRetransmitDropOptions",
  ),
  "net.inet.tcp.keepinit": durationKnob(
    "connection-establishment timeout in ms -> connectTimeout",
    "connectTimeout",
    "ms",
    1,
  ),
  "net.inet.tcp.delacktime": durationKnob(
    "delayed-ACK timeout in ms -> delayedAck (FreeBSD default 100)",
    "delayedAck",
    "ms",
    0,
    500,
  ),
  "net.inet.tcp.keepidle": durationKnob(
    "idle time before the first keep-alive in ms -> keepAliveIdle (FreeBSD default 7200000)",
    "keepAliveIdle",
    "ms",
    1,
  ),
  "net.inet.tcp.keepintvl": durationKnob(
    "interval between keep-alive probes in ms -> keepAliveInterval (FreeBSD default 75000)",
    "keepAliveInterval",
    "ms",
    1,
  ),
  "net.inet.tcp.keepcnt": countKnob(
    "unanswered keep-alive probes before the connection drops -> keepAliveProbes (FreeBSD default 8)",
    "keepAliveProbes",
    1,
    255,
  ),
  "net.inet.tcp.mssdflt": defaultOnly(
    "the send MSS assumed when the peer's SYN has no MSS option: 536 for IPv4 in our engine (RFC 9293 3.7.1), no other value",
    536,
  ),
  "net.inet.tcp.v6mssdflt": defaultOnly(
    "the same for IPv6: 1220 in our engine (RFC 8200's minimum MTU less headers), no other value",
    1220,
  ),
  "net.inet.tcp.minmss": onlyValue(
    "the smallest MSS accepted from a peer: our engine's floor (64) is fixed; 216 (FreeBSD's default) and below are accepted",
    (v) => v <= 216,
  ),
  "net.inet.tcp.syncookies": defaultOnly(
    "SYN cookies when the SYN queue is full: the host stack always does (RFC 4987 3.6); 1 is the default",
    1,
  ),
  "net.inet.tcp.syncookies_only": defaultOnly(
    "SYN cookies only, no SYN cache: not a knob of ours (0 is the default)",
    0,
  ),
  "net.inet.tcp.path_mtu_discovery": defaultOnly(
    "path MTU discovery (DF set, RFC 1191 / 8201): always on here; 1 is the default",
    1,
  ),
  "net.inet.tcp.pmtud_blackhole_detection": defaultOnly(
    "PMTU black-hole detection (RFC 4821-style MSS lowering after timeouts): not implemented; 0 is the default",
    0,
  ),
  "net.inet.tcp.pmtud_blackhole_mss": noEffect(
    "the MSS black-hole detection falls back to: no effect while detection is off",
  ),
  "net.inet.tcp.v6pmtud_blackhole_mss": noEffect("the same for IPv6: no effect while detection is off"),
  "net.inet.tcp.tolerate_missing_ts": defaultOnly(
    "accept segments without timestamps on a timestamp connection (RFC 7323 3.2 says drop them): we accept them, as FreeBSD's default 1 does; 0 is not a knob of ours",
    1,
  ),
  "net.inet.tcp.udp_tunneling_overhead": noEffect(
    "bytes of UDP encapsulation to leave room for: no effect without TCP over UDP",
  ),
  "net.inet.tcp.udp_tunneling_port": defaultOnly(
    "TCP over UDP's port: 0 (off) is the default; any other value is the tcp-over-udp feature",
    0,
  ),
  "net.inet.tcp.fastopen.client_enable": {
    meaning:
      "TCP Fast Open for active opens (RFC 7413) -> HostStack.fastOpen.enabled; 0 also empties the cookie cache",
    apply: (s, v) => {
      s.fastOpenClient = v !== 0;
      return true;
    },
  },
  "net.inet.tcp.fastopen.server_enable": defaultOnly(
    "TCP Fast Open for passive opens: 0 (off) is what we do; 1 is the fast-open feature",
    0,
  ),
  "net.inet.tcp.icmp_may_rst": {
    meaning:
      "ICMP hard errors may abort a connection in SYN-SENT -> HostStack.icmpMayAbort (may change live)",
    apply: (s, v) => {
      s.icmpMayRst = on(v);
      return true;
    },
  },
};

/** The sysctls the suite sets that TcpConfig has no knob for (for the report). */
export const SYSCTLS_WITHOUT_KNOB: readonly string[] = [
  "net.inet.tcp.blackhole (host stack)",
  "kern.ipc.maxsockbuf",
  "net.inet.tcp.mssdflt / v6mssdflt other than 536 / 1220",
  "net.inet.tcp.syncookies_only=1",
  "net.inet.tcp.pmtud_blackhole_detection=1",
  "net.inet.tcp.tolerate_missing_ts=0",
];

/**
 * Applies `sysctl -w name=value` with a profile's table (FreeBSD's by default). Returns an error
 * text for an unknown sysctl or a value that is not a number, `undefined` otherwise (an
 * unhonoured value is recorded in `s.unmapped`). A table may hold rules that take the text
 * (`SysctlRule.applyText`, for Linux's `tcp_rmem="4096 131072 6291456"` and names like `cubic`).
 */
export function applySysctl(
  s: DutSettings,
  name: string,
  value: string,
  table: Readonly<Record<string, SysctlRule>> = SYSCTL_TABLE,
): string | undefined {
  const rule = table[name];
  if (rule === undefined) return `unknown sysctl ${name}`;
  if (rule.applyText !== undefined) {
    if (!rule.applyText(s, value.trim())) {
      const entry = `${name}=${value}`;
      if (!s.unmapped.includes(entry)) s.unmapped.push(entry);
    }
    return undefined;
  }
  const v = Number(value);
  if (!Number.isSafeInteger(v)) return `sysctl ${name}: value ${value} is not an integer`;
  if (!rule.apply(s, v)) {
    const entry = `${name}=${value}`;
    if (!s.unmapped.includes(entry)) s.unmapped.push(entry);
  }
  return undefined;
}

/** A named leniency: a FreeBSD policy difference the comparison does not count as a failure. */
export interface LenientRule {
  readonly name: LenientRuleName;
  readonly reason: string;
}

/** The names of the leniency rules. */
export type LenientRuleName =
  | "window-size-policy"
  | "window-scale-shift-policy"
  | "option-layout"
  | "ts-val-unchecked"
  | "rst-window-ignored"
  | "bsd-fin-on-ack"
  | "tso-coalescing";

/**
 * Every leniency, with its reason. Each is applied only where its reason holds, and the runner
 * records which rules a script needed.
 */
export const LENIENT_RULES: Readonly<Record<LenientRuleName, LenientRule>> = {
  "window-size-policy": {
    name: "window-size-policy",
    reason:
      "The advertised window is receive-buffer policy (FreeBSD rounds its buffer to MSS multiples " +
      "and grows it automatically); RFC 9293 3.8.6 fixes only its meaning. A zero window must " +
      "still be zero, a non-zero one non-zero, and ours may not offer more than our receive " +
      "buffer at the shift both SYNs agreed (unscaled on a SYN).",
  },
  "window-scale-shift-policy": {
    name: "window-scale-shift-policy",
    reason:
      "RFC 7323 2.3 lets the receiver pick its shift; FreeBSD derives it from kern.ipc.maxsockbuf, " +
      "we from the receive buffer. The option's presence is still checked.",
  },
  "option-layout": {
    name: "option-layout",
    reason:
      "Option order and NOP/EOL padding are the sender's choice (RFC 9293 3.1); the options " +
      "present and their values are compared, not their layout.",
  },
  "ts-val-unchecked": {
    name: "ts-val-unchecked",
    reason:
      "packetdrill does not check outbound TS val unless --tcp_ts_tick_usecs is set (its default " +
      "is 0); the clock's origin and rate are the sender's (RFC 7323 5.4). TS ecr is checked.",
  },
  "rst-window-ignored": {
    name: "rst-window-ignored",
    reason: "The window of a RST carries no meaning (RFC 9293 3.10.7.1 does not set it).",
  },
  "tso-coalescing": {
    name: "tso-coalescing",
    reason:
      "Linux profile: packetdrill's tun device offers TSO to Linux, so a burst the kernel sends " +
      "reaches the script as one segment of up to 64 KB; we segment at the MSS ourselves. Our " +
      "segments sent at once that continue each other (next sequence number, same ACK) are " +
      "compared as the one the script expects; every byte and flag is still checked.",
  },
  "bsd-fin-on-ack": {
    name: "bsd-fin-on-ack",
    reason:
      "When a BSD stack must acknowledge while its own FIN is still unacknowledged (CLOSING, " +
      "LAST-ACK), tcp_output resends the FIN with the ACK (seq = FIN's seq). RFC 9293 3.10.7.4 " +
      "asks only for an ACK; we send a bare ACK at SND.NXT (seq = FIN's seq + 1). The " +
      "acknowledgment the peer receives is the same.",
  },
};
