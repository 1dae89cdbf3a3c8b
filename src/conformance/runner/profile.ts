/**
 * Profiles: which operating system's environment a script was written for. A profile selects
 *
 * - the sysctl table (`net.inet.tcp.*` for FreeBSD, `net.ipv4.tcp_*` for Linux), each entry a
 *   named knob of `TcpConfig` or the reason there is none;
 * - the defaults the stack starts from (the OS's, where they differ from the engine's);
 * - the numeric values of the symbols scripts compare with (`symbols.ts`);
 * - the policy: the `#ifdef` symbol the OS defines, and what `getsockopt` reports for buffers.
 *
 * `chimney conformance --profile freebsd|linux` picks one; FreeBSD is the default (the FreeBSD
 * suite). Every difference between the two is a field here, never a special case in the runner.
 */
import { Duration } from "../../time/instant.js";
import {
  countKnob,
  defaultOnly,
  defaultSettings,
  durationKnob,
  type DutSettings,
  flagKnob,
  noEffect,
  ecnModeKnob,
  SYSCTL_TABLE,
  type SysctlRule,
} from "./policy.js";
import { FREEBSD_SYMBOLS, LINUX_SYMBOLS } from "./symbols.js";

/** The profiles there are. */
export const PROFILE_NAMES = ["freebsd", "linux"] as const;

/** A profile's name. */
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** One profile. */
export interface DutProfile {
  readonly name: ProfileName;
  /** The sysctls scripts may set, by full name. */
  readonly sysctls: Readonly<Record<string, SysctlRule>>;
  /** Fresh settings: the OS's defaults. */
  readonly defaults: () => DutSettings;
  /** Symbol values (`O_NONBLOCK`, `MSG_DONTWAIT`, `POLLOUT`...). */
  readonly symbols: Readonly<Record<string, number>>;
  /** The `#ifdef` symbol of the OS (`FreeBSD`, `Linux`). */
  readonly defineSymbol: string;
  /**
   * `getsockopt(SO_SNDBUF / SO_RCVBUF)` reports twice the size set (Linux keeps room for its
   * bookkeeping and says so); FreeBSD reports the size.
   */
  readonly sockBufReportedDoubled: boolean;
  /** `epoll_*` exist (Linux); on FreeBSD they are not system calls (ENOSYS). */
  readonly epoll: boolean;
  /**
   * The scripts expect TSO-sized segments: packetdrill's tun device offers TCP segmentation
   * offload to Linux, so a burst leaves as one segment of up to 64 KB (`tso-coalescing`).
   */
  readonly tso: boolean;
}

/** `"4096 131072 6291456"`: Linux's min / default / max triple; the default is what a socket gets. */
function tripleDefault(text: string): number | undefined {
  const parts = text.split(/\s+/).map(Number);
  const d = parts[1];
  return parts.length === 3 && parts.every((p) => Number.isSafeInteger(p) && p > 0) ? d : undefined;
}

/**
 * Linux's `net.ipv4.tcp_*` sysctls (Documentation/networking/ip-sysctl.rst), as the google
 * packetdrill scripts set them: through `sysctl -q`, `echo V > /proc/sys/...` and their
 * `defaults.sh` / `set_sysctls.py` helpers.
 */
export const LINUX_SYSCTL_TABLE: Readonly<Record<string, SysctlRule>> = {
  "net.ipv4.tcp_timestamps": flagKnob(
    "RFC 7323 timestamps -> timestamps (1 and 2 offer them; 0 does not)",
    "timestamps",
  ),
  "net.ipv4.tcp_window_scaling": flagKnob("RFC 7323 window scaling -> windowScaling", "windowScaling"),
  "net.ipv4.tcp_sack": flagKnob("RFC 2018 SACK -> sack", "sack"),
  "net.ipv4.tcp_dsack": flagKnob("RFC 2883 D-SACK -> dsack", "dsack"),
  "net.ipv4.tcp_syn_retries": countKnob("SYN retransmissions -> synRetries", "synRetries", 1, 127),
  "net.ipv4.tcp_synack_retries": defaultOnly(
    "SYN-ACK retransmissions: the listener's SYN-RECEIVED follows synRetries; 5 (Linux's default) is accepted",
    5,
  ),
  "net.ipv4.tcp_retries2": countKnob(
    "retransmissions of one segment before the connection fails -> maxRetransmissions",
    "maxRetransmissions",
    1,
    255,
  ),
  "net.ipv4.tcp_rmem": {
    meaning: "min / default / max receive buffer: the default -> recvBufferSize",
    apply: () => false,
    applyText: (s, text) => {
      const d = tripleDefault(text);
      if (d === undefined) return false;
      s.tcp.recvBufferSize = d;
      return true;
    },
  },
  "net.ipv4.tcp_wmem": {
    meaning: "min / default / max send buffer: the default -> sendBufferSize",
    apply: () => false,
    applyText: (s, text) => {
      const d = tripleDefault(text);
      if (d === undefined) return false;
      s.tcp.sendBufferSize = d;
      return true;
    },
  },
  "net.ipv4.tcp_reordering": countKnob(
    "initial reordering degree (DupThresh) -> dupAckThreshold",
    "dupAckThreshold",
    1,
    100,
  ),
  "net.ipv4.tcp_max_reordering": countKnob(
    "largest reordering degree -> maxReordering",
    "maxReordering",
    1,
    1000,
  ),
  "net.ipv4.tcp_early_retrans": {
    meaning:
      "tail loss probes (RFC 8985 7): 3 and 4 -> tailLossProbe on, 0 -> off; 1 and 2 (early retransmit alone) are not a knob",
    apply: (s, v) => {
      if (v === 0 || v >= 3) {
        s.tcp.tailLossProbe = v !== 0;
        return true;
      }
      return false;
    },
  },
  "net.ipv4.tcp_keepalive_time": durationKnob(
    "seconds before the first keep-alive -> keepAliveIdle",
    "keepAliveIdle",
    "s",
    1,
  ),
  "net.ipv4.tcp_keepalive_intvl": durationKnob(
    "seconds between keep-alive probes -> keepAliveInterval",
    "keepAliveInterval",
    "s",
    1,
  ),
  "net.ipv4.tcp_keepalive_probes": countKnob(
    "unanswered probes before the connection drops -> keepAliveProbes",
    "keepAliveProbes",
    1,
    255,
  ),
  "net.ipv4.tcp_fin_timeout": durationKnob(
    "seconds in FIN-WAIT-2 after close -> finWait2Timeout",
    "finWait2Timeout",
    "s",
    0,
  ),
  "net.ipv4.tcp_challenge_ack_limit": countKnob(
    "challenge ACKs per second (RFC 5961 7) -> challengeAckLimit",
    "challengeAckLimit",
    1,
  ),
  "net.ipv4.tcp_ecn": ecnModeKnob(
    "RFC 3168 ECN -> ecn: 0 off, 1 ask and accept (on), 2 accept only (passive, the default)",
  ),
  "net.ipv4.tcp_ecn_fallback": {
    meaning: "a retransmitted SYN stops asking for ECN (1, the default) -> ecnSynRetries 0; 0 keeps asking",
    apply: (s, v) => {
      s.tcp.ecnSynRetries = v === 0 ? 255 : 0;
      return true;
    },
  },
  "net.ipv4.tcp_ecn_option": noEffect("the AccECN option (RFC 9768): classic ECN (RFC 3168) only"),
  "net.ipv4.tcp_fastopen": noEffect(
    "TCP Fast Open enable bits: without a script using it (TCP_FASTOPEN, MSG_FASTOPEN, the FO option: the fast-open feature) they change nothing",
  ),
  "net.ipv4.tcp_fastopen_key": noEffect("the Fast Open key: fast open is not implemented"),
  "net.ipv4.tcp_syncookies": defaultOnly(
    "SYN cookies when the SYN queue is full: always on here; 1 is accepted",
    1,
  ),
  "net.ipv4.tcp_congestion_control": {
    meaning:
      "the congestion control module -> congestionControl: cubic (RFC 9438, Linux's default) or reno (NewReno, RFC 5681, 6582); others are not implemented",
    apply: () => false,
    applyText: (s, text) => {
      if (text !== "reno" && text !== "cubic") return false;
      s.tcp.congestionControl = text === "reno" ? "newreno" : "cubic";
      return true;
    },
  },
  "net.ipv4.tcp_frto": defaultOnly(
    "F-RTO (RFC 5682): spurious timeouts are undone by timestamps and D-SACK (undoSpurious); 2 is accepted",
    2,
  ),
  "net.ipv4.tcp_fack": defaultOnly("FACK was removed from Linux; 0 is accepted", 0),
  "net.ipv4.tcp_recovery": {
    meaning:
      "RACK loss detection (RFC 8985) -> rack: 1 on (Linux's default), 0 off (RFC 6675 DupThresh); the static-window and no-DupThresh bits have no knob",
    apply: (s, v) => {
      if (v !== 0 && v !== 1) return false;
      s.tcp.rack = v === 1;
      return true;
    },
  },
  "net.ipv4.tcp_slow_start_after_idle": defaultOnly(
    "restart cwnd after idle (RFC 5681 4.1): 0 is accepted",
    0,
  ),
  "net.ipv4.tcp_mtu_probing": defaultOnly(
    "packetization-layer PMTU probing (RFC 4821) is not implemented; 0 is accepted",
    0,
  ),
  "net.ipv4.tcp_tso_win_divisor": noEffect("TSO deferral: no TSO here"),
  "net.ipv4.tcp_min_tso_segs": noEffect("TSO sizing: no TSO here"),
  "net.ipv4.tcp_pacing_ss_ratio": noEffect("pacing rates: no pacing here"),
  "net.ipv4.tcp_pacing_ca_ratio": noEffect("pacing rates: no pacing here"),
  "net.ipv4.tcp_notsent_lowat": noEffect("TCP_NOTSENT_LOWAT's default: the largest value is no limit"),
  "net.ipv4.tcp_min_rtt_wlen": noEffect("the min-RTT filter window (for BBR and RACK)"),
  "net.ipv4.tcp_no_metrics_save": noEffect("each script has a fresh stack: nothing is saved"),
  "net.ipv4.tcp_moderate_rcvbuf": noEffect("receive buffer auto-tuning: the window follows recvBufferSize"),
  "net.ipv4.tcp_autocorking": defaultOnly("automatic corking is not implemented; 0 is accepted", 0),
  "net.ipv4.tcp_tw_reuse": noEffect("TIME-WAIT reuse for active opens: scripts use one connection per port"),
  "net.ipv4.tcp_limit_output_bytes": noEffect("TSQ (bytes queued below TCP): no qdisc here"),
  "net.ipv4.tcp_invalid_ratelimit": noEffect("rate limit of duplicate ACKs for invalid segments"),
};

/** Linux's defaults where they differ from the engine's (ip-sysctl.rst, include/net/tcp.h). */
function linuxDefaults(): DutSettings {
  return {
    // tcp_rmem / tcp_wmem defaults (131072 / 16384), initial window 10 (RFC 6928), min RTO
    // 200 ms, delayed ACK 40 ms, initial RTO 1 s, TLP on, 6 SYN retries, FIN-WAIT-2 60 s:
    // most are the engine's own defaults, which follow Linux.
    tcp: {
      recvBufferSize: 131072,
      sendBufferSize: 16384,
      initialCwndSegments: 10,
      minRto: Duration.fromMillis(200),
      delayedAck: Duration.fromMillis(40),
      synRetries: 6,
      tailLossProbe: true,
      abcLimit: 0, // Linux grows cwnd by every byte acknowledged in slow start
      dropSynFin: true,
      ecnSynRetries: 0, // tcp_ecn_fallback: a retransmitted SYN no longer asks for ECN
      rack: true, // tcp_recovery = 1
      congestionControl: "cubic", // tcp_congestion_control
      prr: true, // Linux reduces cwnd by PRR in every recovery (since 3.2)
    },
    unmapped: [],
    maxSockBuf: 6291456,
    insecureRst: false,
    insecureSyn: false,
    icmpMayRst: true,
    fastOpenClient: true,
  };
}

/** The FreeBSD profile: the FreeBSD suite's environment (`policy.ts`). */
export const FREEBSD_PROFILE: DutProfile = {
  name: "freebsd",
  sysctls: SYSCTL_TABLE,
  defaults: defaultSettings,
  symbols: FREEBSD_SYMBOLS,
  defineSymbol: "FreeBSD",
  sockBufReportedDoubled: false,
  epoll: false,
  tso: false,
};

/** The Linux profile: google/packetdrill's scripts' environment. */
export const LINUX_PROFILE: DutProfile = {
  name: "linux",
  sysctls: LINUX_SYSCTL_TABLE,
  defaults: linuxDefaults,
  symbols: LINUX_SYMBOLS,
  defineSymbol: "Linux",
  sockBufReportedDoubled: true,
  epoll: true,
  tso: true,
};

/** The profile of a name. */
export function profileOf(name: ProfileName): DutProfile {
  return name === "linux" ? LINUX_PROFILE : FREEBSD_PROFILE;
}

/**
 * The settings Linux's `defaults.sh` (the google scripts' common setup) leaves: the production
 * values it sets, as `sysctl` assignments our table maps.
 */
export const LINUX_DEFAULTS_SH: readonly (readonly [string, string])[] = [
  ["net.ipv4.tcp_rmem", "4096 540000 15728640"],
  ["net.ipv4.tcp_wmem", "4096 262144 4194304"],
  ["net.ipv4.tcp_timestamps", "1"],
  ["net.ipv4.tcp_syn_retries", "5"],
  ["net.ipv4.tcp_synack_retries", "5"],
  ["net.ipv4.tcp_frto", "2"],
  ["net.ipv4.tcp_sack", "1"],
  ["net.ipv4.tcp_dsack", "1"],
  ["net.ipv4.tcp_fack", "0"],
  ["net.ipv4.tcp_reordering", "3"],
  ["net.ipv4.tcp_congestion_control", "cubic"],
  ["net.ipv4.tcp_slow_start_after_idle", "0"],
  ["net.ipv4.tcp_early_retrans", "4"],
  ["net.ipv4.tcp_recovery", "1"],
  ["net.ipv4.tcp_tso_win_divisor", "3"],
  ["net.ipv4.tcp_ecn", "0"],
  ["net.ipv4.tcp_ecn_option", "2"],
  ["net.ipv4.tcp_pacing_ss_ratio", "200"],
  ["net.ipv4.tcp_pacing_ca_ratio", "120"],
  ["net.ipv4.tcp_notsent_lowat", "4294967295"],
  ["net.ipv4.tcp_syncookies", "1"],
];
