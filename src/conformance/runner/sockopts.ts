/**
 * Every socket option packetdrill knows (its symbols_freebsd.c and symbols_linux.c), with the
 * level it belongs to and what it means for our stack: the knob it sets, or why it has none.
 * The runner's get/setsockopt (dut.ts) dispatch on the option's name; this table is what they
 * check first:
 *
 * - an option the table does not know is a runner gap (`unknown socket option`);
 * - an option at another level than its own is `ENOPROTOOPT`, as both kernels answer;
 * - an option with `unsupported` set classifies the script "unsupported: <OPTION>" with that
 *   reason when the script sets it (or reads it), never a runner error;
 * - an option that is read-only (`set: false`) is `ENOPROTOOPT` on set (Linux's and FreeBSD's
 *   answer for SO_ERROR, TCP_INFO...); one that is write-only is `ENOPROTOOPT` on get.
 */

/** The protocol level of an option. */
export type SockOptLevel = "socket" | "ip" | "ipv6" | "tcp";

/** One option. */
export interface SockOpt {
  readonly level: SockOptLevel;
  /** What it maps to in our stack. */
  readonly meaning: string;
  /** Why a script using it cannot run against us (undefined when it is mapped). */
  readonly unsupported?: string | undefined;
  /** Can be set (default true). */
  readonly set?: boolean | undefined;
  /** Can be read (default true). */
  readonly get?: boolean | undefined;
}

/** The level words scripts write, by level. */
export const SOCKOPT_LEVELS: Readonly<Record<string, SockOptLevel>> = {
  SOL_SOCKET: "socket",
  IPPROTO_IP: "ip",
  SOL_IP: "ip",
  IPPROTO_IPV6: "ipv6",
  SOL_IPV6: "ipv6",
  IPPROTO_TCP: "tcp",
  SOL_TCP: "tcp",
};

const none = (what: string): string => `no effect on the TCP behaviour a script observes (${what})`;
const PACING = "pacing and alternative TCP stacks (FreeBSD RACK/BBR modules) are not implemented";
const TIMESTAMPING = "socket timestamping (SO_TIMESTAMPING, error queue reports) is not implemented";
const ZEROCOPY = "zero-copy send and receive (MSG_ZEROCOPY, TCP_ZEROCOPY_RECEIVE) are not implemented";
const IP_FIELDS_REASON =
  "per-socket IP header fields (TTL, TOS, traffic class, hop limit) are not part of our socket layer";

/** An option with no meaning for our stack: setting or reading it classifies the script. */
function lacking(level: SockOptLevel, reason: string): SockOpt {
  return { level, meaning: "", unsupported: reason };
}

/** Every option, by name. */
export const SOCKET_OPTIONS: Readonly<Record<string, SockOpt>> = {
  // --- SOL_SOCKET
  SO_REUSEADDR: {
    level: "socket",
    meaning: none("each script has a fresh stack; the value is kept for get"),
  },
  SO_REUSEPORT: { level: "socket", meaning: none("one socket per port in a script; the value is kept") },
  SO_KEEPALIVE: { level: "socket", meaning: "keep-alive on -> keepAlive (live)" },
  SO_SNDBUF: { level: "socket", meaning: "send buffer -> sendBufferSize (live)" },
  SO_RCVBUF: { level: "socket", meaning: "receive buffer -> recvBufferSize (live)" },
  SO_LINGER: {
    level: "socket",
    meaning: "struct linger; l_onoff=1 with l_linger=0 makes close() abort with RST (RFC 9293 3.10.4 ABORT)",
  },
  SO_ERROR: { level: "socket", meaning: "the pending error, cleared when read", set: false },
  SO_TYPE: { level: "socket", meaning: "SOCK_STREAM", set: false },
  SO_ACCEPTCONN: { level: "socket", meaning: "1 on a listening socket", set: false },
  SO_DEBUG: { level: "socket", meaning: none("debug tracing") },
  SO_DONTROUTE: { level: "socket", meaning: none("the peer is always on-link or behind the gateway") },
  SO_BROADCAST: { level: "socket", meaning: none("UDP only") },
  SO_OOBINLINE: { level: "socket", meaning: none("urgent data is always delivered inline") },
  SO_RCVLOWAT: { level: "socket", meaning: none("reads return what is there; kept for get") },
  SO_SNDLOWAT: { level: "socket", meaning: none("kept for get") },
  SO_RCVTIMEO: { level: "socket", meaning: none("blocking calls follow the script's times") },
  SO_SNDTIMEO: { level: "socket", meaning: none("blocking calls follow the script's times") },
  SO_NOSIGPIPE: { level: "socket", meaning: none("writes after a reset fail with EPIPE; no signal") },
  SO_TIMESTAMP: lacking("socket", TIMESTAMPING),
  SO_TIMESTAMPING: lacking("socket", TIMESTAMPING),
  SO_ZEROCOPY: lacking("socket", ZEROCOPY),
  SO_MARK: lacking("socket", "packet marks (netfilter, routing) do not exist here"),
  SO_PRIORITY: lacking("socket", "queueing disciplines do not exist here"),
  SO_MAX_PACING_RATE: lacking("socket", PACING),
  SO_BINDTODEVICE: lacking("socket", "the stack has one interface per script"),
  SO_SETFIB: lacking("socket", "FreeBSD routing tables (FIBs) do not exist here"),
  SO_ACCEPTFILTER: lacking("socket", "FreeBSD accept filters are not implemented"),
  SO_LISTENQLIMIT: { level: "socket", meaning: "the listen backlog", set: false },
  SO_LISTENQLEN: { level: "socket", meaning: "connections waiting for accept()", set: false },
  SO_LISTENINCQLEN: { level: "socket", meaning: "connections in SYN-RECEIVED", set: false },
  SO_NO_OFFLOAD: { level: "socket", meaning: none("offload is chosen by the runner's mode") },
  SO_NO_DDP: { level: "socket", meaning: none("no direct data placement") },
  SO_USER_COOKIE: { level: "socket", meaning: none("a label for the application") },
  // --- IPPROTO_IP / IPPROTO_IPV6
  IP_TTL: lacking("ip", IP_FIELDS_REASON),
  IP_TOS: lacking("ip", IP_FIELDS_REASON),
  IPV6_TCLASS: lacking("ipv6", IP_FIELDS_REASON),
  IPV6_UNICAST_HOPS: lacking("ipv6", IP_FIELDS_REASON),
  IPV6_HOPLIMIT: lacking("ipv6", IP_FIELDS_REASON),
  IP_MTU_DISCOVER: {
    level: "ip",
    meaning: "path MTU discovery is always on (DF set, RFC 1191): IP_PMTUDISC_DO and _WANT are accepted",
  },
  IPV6_MTU_DISCOVER: { level: "ipv6", meaning: "as IP_MTU_DISCOVER" },
  IP_MTU: { level: "ip", meaning: "the path MTU of the connection", set: false },
  IPV6_MTU: { level: "ipv6", meaning: "the path MTU of the connection", set: false },
  IP_FREEBIND: { level: "ip", meaning: none("the script binds the stack's own address") },
  IPV6_USE_MIN_MTU: lacking("ipv6", "sending at the IPv6 minimum MTU (RFC 3542 11.1) is not implemented"),
  // --- IPPROTO_TCP
  TCP_NODELAY: { level: "tcp", meaning: "Nagle off -> noDelay (live)" },
  TCP_MAXSEG: {
    level: "tcp",
    meaning:
      "before the stack exists: the MSS we advertise and send with -> mss; after: the connection's MSS (live)",
  },
  TCP_NOOPT: { level: "tcp", meaning: "FreeBSD TF_NOOPT: SYNs without options -> noOptions" },
  TCP_INFO: {
    level: "tcp",
    meaning: "struct tcp_info (state, options, window scales, MSS, RTT)",
    set: false,
  },
  TCP_KEEPIDLE: { level: "tcp", meaning: "seconds -> keepAliveIdle (live)" },
  TCP_KEEPINTVL: { level: "tcp", meaning: "seconds -> keepAliveInterval (live)" },
  TCP_KEEPCNT: { level: "tcp", meaning: "probes -> keepAliveProbes (live)" },
  TCP_KEEPINIT: { level: "tcp", meaning: "seconds -> connectTimeout (0: none)" },
  TCP_SYNCNT: { level: "tcp", meaning: "SYN retransmissions -> synRetries" },
  TCP_USER_TIMEOUT: { level: "tcp", meaning: "milliseconds -> userTimeout (RFC 5482; 0: none)" },
  TCP_LINGER2: { level: "tcp", meaning: "seconds -> finWait2Timeout" },
  TCP_CONGESTION: {
    level: "tcp",
    meaning:
      "the congestion control module -> congestionControl: cubic (RFC 9438) or reno / newreno (RFC 5681, 6582); others are not implemented",
  },
  TCP_CORK: {
    level: "tcp",
    meaning: "0 is accepted (the default)",
    unsupported: "corking (holding partial segments until uncorked) is not implemented",
  },
  TCP_NOPUSH: {
    level: "tcp",
    meaning: "0 is accepted (the default)",
    unsupported: "FreeBSD TCP_NOPUSH (hold partial segments) is not implemented",
  },
  TCP_QUICKACK: lacking("tcp", "Linux quick-ack mode is not a knob of ours"),
  TCP_DEFER_ACCEPT: lacking("tcp", "deferred accept is not implemented"),
  TCP_WINDOW_CLAMP: lacking("tcp", "a window clamp is not a knob of ours"),
  TCP_THIN_LINEAR_TIMEOUTS: lacking("tcp", "thin-stream timeouts are not implemented"),
  TCP_THIN_DUPACK: lacking("tcp", "thin-stream fast retransmit is not implemented"),
  TCP_TIMESTAMP: lacking("tcp", "setting the TS clock offset is not implemented"),
  TCP_NOTSENT_LOWAT: lacking("tcp", "TCP_NOTSENT_LOWAT is not implemented"),
  TCP_INQ: lacking("tcp", "TCP_INQ control messages are not implemented"),
  TCP_ZEROCOPY_RECEIVE: lacking("tcp", ZEROCOPY),
  TCP_SAVE_SYN: lacking("tcp", "saving the SYN's headers is not implemented"),
  TCP_SAVED_SYN: lacking("tcp", "saving the SYN's headers is not implemented"),
  TCP_REPAIR: lacking("tcp", "TCP repair mode is not implemented"),
  TCP_ULP: lacking("tcp", "upper-layer protocols (kTLS) are not implemented"),
  TCP_TX_DELAY: lacking("tcp", PACING),
  TCP_COOKIE_TRANSACTIONS: lacking("tcp", "TCP cookie transactions are not implemented"),
  TCP_MD5SIG: lacking("tcp", "TCP-MD5 signatures (RFC 2385) are not implemented"),
  TCP_MD5SIG_EXT: lacking("tcp", "TCP-MD5 signatures (RFC 2385) are not implemented"),
  TCP_FASTOPEN: {
    level: "tcp",
    meaning:
      "client fast open (RFC 7413), FreeBSD's way: a later sendto connects with the Fast Open option on the SYN (HostStack.connect fastOpen); a listener's fast open is not implemented",
  },
  TCP_FASTOPEN_CONNECT: lacking("tcp", "TCP Fast Open (RFC 7413) is not implemented"),
  TCP_FASTOPEN_KEY: lacking("tcp", "TCP Fast Open (RFC 7413) is not implemented"),
  TCP_FASTOPEN_NO_COOKIE: lacking("tcp", "TCP Fast Open (RFC 7413) is not implemented"),
  TCP_REMOTE_UDP_ENCAPS_PORT: lacking("tcp", "TCP over UDP is not implemented"),
  TCP_FUNCTION_BLK: lacking("tcp", PACING),
  TCP_RACK_PACE_ALWAYS: lacking("tcp", PACING),
  TCP_RACK_PACE_MAX_SEG: lacking("tcp", PACING),
  TCP_RACK_PACE_RATE_SS: lacking("tcp", PACING),
  TCP_RACK_PACE_RATE_CA: lacking("tcp", PACING),
  TCP_RACK_PACE_RATE_REC: lacking("tcp", PACING),
};
