/**
 * Linux's `struct tcp_info` as a packetdrill script's `%{ }%` snippets see it: the `tcpi_*`
 * values getsockopt(TCP_INFO) returns, and the names packetdrill defines beside them for its
 * Python (TCP states, congestion-avoidance states, `tcpi_options` bits). The kernel mode
 * (`kernel.ts`) reads the socket under test's with these.
 */

/** getsockopt(IPPROTO_TCP, TCP_INFO), and room for the whole struct as Linux 6.x fills it. */
export const TCP_INFO = 11;
export const TCP_INFO_BYTES = 256;

/** The names packetdrill defines for a Linux script's Python (tcpi_state, tcpi_ca_state, tcpi_options values). */
export const LINUX_PY_SYMBOLS: Readonly<Record<string, number>> = {
  TCP_ESTABLISHED: 1,
  TCP_SYN_SENT: 2,
  TCP_SYN_RECV: 3,
  TCP_FIN_WAIT1: 4,
  TCP_FIN_WAIT2: 5,
  TCP_TIME_WAIT: 6,
  TCP_CLOSE: 7,
  TCP_CLOSE_WAIT: 8,
  TCP_LAST_ACK: 9,
  TCP_LISTEN: 10,
  TCP_CLOSING: 11,
  TCP_CA_Open: 0,
  TCP_CA_Disorder: 1,
  TCP_CA_CWR: 2,
  TCP_CA_Recovery: 3,
  TCP_CA_Loss: 4,
  TCPI_OPT_TIMESTAMPS: 1,
  TCPI_OPT_SACK: 2,
  TCPI_OPT_WSCALE: 4,
  TCPI_OPT_ECN: 8,
  TCPI_OPT_SYN_DATA: 32,
};

/**
 * Linux's `struct tcp_info` (include/uapi/linux/tcp.h) as the `tcpi_*` names packetdrill
 * writes for its Python: one entry per field, u8 / u32 / u64 at their offsets. A field past the
 * end of what the kernel returned is left out.
 */
const TCP_INFO_LAYOUT: readonly (readonly [name: string, offset: number, bytes: 1 | 4 | 8])[] = [
  ["tcpi_state", 0, 1],
  ["tcpi_ca_state", 1, 1],
  ["tcpi_retransmits", 2, 1],
  ["tcpi_probes", 3, 1],
  ["tcpi_backoff", 4, 1],
  ["tcpi_options", 5, 1],
  ["tcpi_rto", 8, 4],
  ["tcpi_ato", 12, 4],
  ["tcpi_snd_mss", 16, 4],
  ["tcpi_rcv_mss", 20, 4],
  ["tcpi_unacked", 24, 4],
  ["tcpi_sacked", 28, 4],
  ["tcpi_lost", 32, 4],
  ["tcpi_retrans", 36, 4],
  ["tcpi_fackets", 40, 4],
  ["tcpi_last_data_sent", 44, 4],
  ["tcpi_last_ack_sent", 48, 4],
  ["tcpi_last_data_recv", 52, 4],
  ["tcpi_last_ack_recv", 56, 4],
  ["tcpi_pmtu", 60, 4],
  ["tcpi_rcv_ssthresh", 64, 4],
  ["tcpi_rtt", 68, 4],
  ["tcpi_rttvar", 72, 4],
  ["tcpi_snd_ssthresh", 76, 4],
  ["tcpi_snd_cwnd", 80, 4],
  ["tcpi_advmss", 84, 4],
  ["tcpi_reordering", 88, 4],
  ["tcpi_rcv_rtt", 92, 4],
  ["tcpi_rcv_space", 96, 4],
  ["tcpi_total_retrans", 100, 4],
  ["tcpi_pacing_rate", 104, 8],
  ["tcpi_max_pacing_rate", 112, 8],
  ["tcpi_bytes_acked", 120, 8],
  ["tcpi_bytes_received", 128, 8],
  ["tcpi_segs_out", 136, 4],
  ["tcpi_segs_in", 140, 4],
  ["tcpi_notsent_bytes", 144, 4],
  ["tcpi_min_rtt", 148, 4],
  ["tcpi_data_segs_in", 152, 4],
  ["tcpi_data_segs_out", 156, 4],
  ["tcpi_delivery_rate", 160, 8],
  ["tcpi_busy_time", 168, 8],
  ["tcpi_rwnd_limited", 176, 8],
  ["tcpi_sndbuf_limited", 184, 8],
  ["tcpi_delivered", 192, 4],
  ["tcpi_delivered_ce", 196, 4],
  ["tcpi_bytes_sent", 200, 8],
  ["tcpi_bytes_retrans", 208, 8],
  ["tcpi_dsack_dups", 216, 4],
  ["tcpi_reord_seen", 220, 4],
  ["tcpi_rcv_ooopack", 224, 4],
  ["tcpi_snd_wnd", 228, 4],
  ["tcpi_rcv_wnd", 232, 4],
];

/** The `tcpi_*` values of a Linux `struct tcp_info` as getsockopt returned it. */
export function linuxTcpInfo(raw: Uint8Array): Record<string, number> {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: Record<string, number> = {};
  for (const [name, at, bytes] of TCP_INFO_LAYOUT) {
    if (at + bytes > raw.byteLength) continue;
    out[name] =
      bytes === 1 ? v.getUint8(at) : bytes === 4 ? v.getUint32(at, true) : Number(v.getBigUint64(at, true));
  }
  if (raw.byteLength > 7) {
    const b = v.getUint8(6);
    out["tcpi_snd_wscale"] = b & 0x0f;
    out["tcpi_rcv_wscale"] = b >> 4;
    out["tcpi_delivery_rate_app_limited"] = v.getUint8(7) & 1;
  }
  return out;
}
