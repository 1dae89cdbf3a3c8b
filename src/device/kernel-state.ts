/**
 * Translation between the Linux kernel's TCP_REPAIR record of a connection (`KernelTcpRecord`,
 * read and written by src/device/repair.ts) and our engine's snapshot (`TcpSnapshot`,
 * src/tcp/types.ts). Pure: no I/O, no clock; sequence numbers are compared modulo 2^32.
 *
 * Kernel record to snapshot (`snapshotFromKernel`) - what is lost or guessed:
 * - ISS and IRS: the kernel keeps neither; they become SND.UNA - 1 and RCV.NXT - 1 (as in
 *   chimney/tcp-state.ts).
 * - TS.Recent: the kernel does not export it. It becomes 0 with an age past the 24-day PAWS
 *   limit (RFC 7323 5.5), so the first segment from the peer sets it again; until then no PAWS.
 * - Timers: TCP_INFO has no remaining retransmit, persist, delayed-ACK or keep-alive time;
 *   the snapshot carries none, and the importer starts a fresh RTO for outstanding data.
 * - SACK scoreboard, out-of-order queue, recovery point, undo state, DSACK and ECN state: not
 *   readable; the peer retransmits what was not acknowledged.
 * - SND.WL2: not kept by the kernel; SND.UNA stands in.
 * - The advertised right edge RCV.WUP + RCV.WND may lag RCV.NXT in the kernel; our RCV.ADV is
 *   never below RCV.NXT, so it is raised to RCV.NXT (a zero window).
 * - cwnd and ssthresh come from TCP_INFO in segments and are carried in bytes (times the send
 *   MSS); SRTT, RTTVAR and RTO come across (TCP_INFO, microseconds).
 * - Keep-alive, Nagle and buffer settings (the cached state) are not in the record: the caller
 *   passes its own.
 *
 * Snapshot to kernel record (`kernelFromSnapshot`) - what is lost:
 * - cwnd, ssthresh, SRTT, RTTVAR, RTO, every timer, TS.Recent, the SACK scoreboard, dupACK
 *   count, recovery point, keep-alive and window-probe counts: the kernel takes none of them
 *   and starts with cwnd 10 and its initial RTO; sent-but-unacknowledged data waits for that RTO.
 * - FIN: the kernel cannot be given a FIN through TCP_REPAIR. RCV.NXT and SND.MAX count a FIN in
 *   our snapshot; the record does not (RCV.NXT one less, the sent part of the send queue without
 *   it), and `fin` says what a later step must forge (received) or send again (queued).
 * - The advertised window's right edge is kept (RCV.WUP = RCV.NXT, RCV.WND = RCV.ADV - RCV.NXT,
 *   never negative); MAX.SND.WND is raised to SND.WND if lower (the kernel refuses less).
 * - Timestamps: the kernel's clock continues from our `tsTime` (TCP_TIMESTAMP sets its offset),
 *   so its next TSval is not below the last one we sent and the peer's PAWS keeps accepting.
 *   Both sides count milliseconds; a kernel using microsecond TSvals would need scaling.
 */
import type { SeqNum } from "../wire/seq.js";
import { Seq } from "../wire/seq.js";
import { Duration } from "../time/instant.js";
import type { TcpSnapshot, TcpSnapshotCached, TcpState } from "../tcp/types.js";
import { UsageError } from "../util/errors.js";

/** `{ snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup }` of TCP_REPAIR_WINDOW. */
export interface RepairWindow {
  readonly sndWl1: number;
  readonly sndWnd: number;
  readonly maxWindow: number;
  readonly rcvWnd: number;
  readonly rcvWup: number;
}

/** The fields of the kernel's `struct tcp_info` the hand-off reads (times in microseconds). */
export interface KernelTcpInfo {
  readonly state: number;
  readonly options: number;
  readonly sndWscale: number;
  readonly rcvWscale: number;
  readonly rto: number;
  readonly ato: number;
  readonly sndMss: number;
  readonly rcvMss: number;
  readonly unacked: number;
  readonly retransmits: number;
  readonly lost: number;
  readonly rtt: number;
  readonly rttvar: number;
  readonly sndSsthresh: number;
  readonly sndCwnd: number;
  readonly advmss: number;
  readonly rcvSpace: number;
  /** Bytes of data transmitted, retransmissions included (`tcpi_bytes_sent`). */
  readonly bytesSent: number;
  /** Bytes retransmitted (`tcpi_bytes_retrans`). */
  readonly bytesRetrans: number;
}

export interface SocketAddress {
  readonly address: string;
  readonly port: number;
}

/** What the kernel takes back through TCP_REPAIR: an ESTABLISHED connection. */
export interface KernelTcpRecord {
  readonly family: 4 | 6;
  readonly local: SocketAddress;
  readonly remote: SocketAddress;
  /** RCV.NXT: the next byte expected from the peer (no FIN counted). */
  readonly rcvNxt: number;
  /** Bytes received and acknowledged that the application has not read: RCV.NXT - len .. RCV.NXT. */
  readonly recvQueue: Uint8Array;
  /** SND.UNA: the oldest unacknowledged byte, the first byte of `sendQueue`. */
  readonly sndUna: number;
  /** Bytes written by the application and not yet acknowledged: SND.UNA .. SND.UNA + len. */
  readonly sendQueue: Uint8Array;
  /** How many of `sendQueue`'s last bytes were never sent (SIOCOUTQNSD). */
  readonly unsent: number;
  /** The peer's MSS (TCP_MAXSEG in repair mode: mss_clamp). */
  readonly mss: number;
  readonly sack: boolean;
  readonly timestamps: boolean;
  /** Window scales, or undefined when the handshake did not agree on window scaling. */
  readonly windowScale: { readonly snd: number; readonly rcv: number } | undefined;
  /** The TSval clock (TCP_TIMESTAMP, ms) at export: the importer continues from it. */
  readonly timestamp: number;
  readonly window: RepairWindow;
  /** Socket buffer sizes as the kernel reports them (twice what was asked). */
  readonly rcvbuf: number;
  readonly sndbuf: number;
  /**
   * FINs the record cannot express (only from `kernelFromSnapshot`): `received`, the peer's FIN
   * (after RCV.NXT); `queued`, ours (after the send queue). `importKernelTcp` refuses either.
   */
  readonly fin?: { readonly received: boolean; readonly queued: boolean };
}

/** The kernel's export, with what it knew and cannot take back (cwnd, RTT, ...). */
export interface KernelTcpExport extends KernelTcpRecord {
  readonly info: KernelTcpInfo;
}

/** TCP_INFO's "no ssthresh yet" (TCP_INFINITE_SSTHRESH). */
const KERNEL_INFINITE_SSTHRESH = 0x7fff_ffff;
/** Past RFC 7323's 24 days: TS.Recent is stale and PAWS is off until the peer's next TSval. */
const STALE_TS_RECENT_AGE = Duration.fromMicros(25 * 24 * 3600 * 1_000_000);

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * The snapshot of a connection the kernel exported (ESTABLISHED). `cached` is the importer's
 * own cached state (keep-alive, Nagle, buffer sizes); its `effectiveMss` is replaced by the
 * kernel's send MSS.
 */
export function snapshotFromKernel(k: KernelTcpExport, cached: TcpSnapshotCached): TcpSnapshot {
  if (k.unsent < 0 || k.unsent > k.sendQueue.length) {
    throw new UsageError(`unsent ${k.unsent} is not within the send queue's ${k.sendQueue.length} bytes`);
  }
  const sndUna = Seq.of(k.sndUna);
  const rcvNxt = Seq.of(k.rcvNxt);
  const sndNxt = Seq.add(sndUna, k.sendQueue.length - k.unsent);
  const smss = k.info.sndMss > 0 ? k.info.sndMss : k.mss;
  const hasRtt = k.info.rtt > 0;
  const state: TcpState = "ESTABLISHED";
  return {
    constState: {
      localPort: k.local.port,
      remotePort: k.remote.port,
      timestampsEnabled: k.timestamps,
      sackEnabled: k.sack,
      windowScalingEnabled: k.windowScale !== undefined,
      sndWindScale: k.windowScale?.snd ?? 0,
      rcvWindScale: k.windowScale?.rcv ?? 0,
      remoteMss: k.mss,
      iss: Seq.sub(sndUna, 1),
      irs: Seq.sub(rcvNxt, 1),
    },
    cachedState: { ...cached, effectiveMss: smss },
    delegated: {
      state,
      rcvNxt,
      // The kernel's right edge may lag RCV.NXT (its tcp_receive_window() clamps at 0); ours may not.
      rcvAdv: Seq.max(rcvNxt, Seq.add(Seq.of(k.window.rcvWup), k.window.rcvWnd)),
      sndUna,
      sndNxt,
      sndMax: sndNxt,
      sndWnd: k.window.sndWnd,
      maxSndWnd: k.window.maxWindow,
      sndWl1: Seq.of(k.window.sndWl1),
      sndWl2: sndUna,
      cwnd: k.info.sndCwnd * smss,
      ssthresh:
        k.info.sndSsthresh >= KERNEL_INFINITE_SSTHRESH ? KERNEL_INFINITE_SSTHRESH : k.info.sndSsthresh * smss,
      srtt: hasRtt ? Duration.fromMicros(k.info.rtt) : undefined,
      rttVar: hasRtt ? Duration.fromMicros(k.info.rttvar) : undefined,
      rto: Duration.fromMicros(k.info.rto),
      tsRecent: 0,
      tsRecentAge: STALE_TS_RECENT_AGE,
      tsTime: k.timestamp >>> 0,
      dupAckCount: 0,
      recover: undefined,
      sndWndProbeCount: 0,
      keepAliveProbeCount: 0,
      keepAliveDelta: undefined,
      retransmitCount: k.info.retransmits,
      retransmitDelta: undefined,
      totalRt: Duration.ZERO,
      finQueued: false,
      finReceived: false,
      sendData: Object.freeze([k.sendQueue]),
      bufferedData: Object.freeze([k.recvQueue]),
      unreportedAcked: 0,
    },
  };
}

/** States whose snapshot has a kernel record (possibly with a FIN still to forge or send). */
const TRANSLATABLE: ReadonlySet<TcpState> = new Set<TcpState>([
  "ESTABLISHED",
  "CLOSE-WAIT",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSING",
  "LAST-ACK",
]);

/** Where the connection lives: the snapshot has ports only. */
export interface KernelEndpoints {
  readonly family: 4 | 6;
  readonly localAddress: string;
  readonly remoteAddress: string;
}

/**
 * The kernel record of a snapshot. Throws `UsageError` for a state the kernel cannot hold
 * (SYN states, TIME-WAIT, CLOSED) or an inconsistent snapshot (SND.MAX outside the send data).
 */
export function kernelFromSnapshot(s: TcpSnapshot, at: KernelEndpoints): KernelTcpRecord {
  const d = s.delegated;
  const c = s.constState;
  if (!TRANSLATABLE.has(d.state)) throw new UsageError(`the kernel cannot take a connection in ${d.state}`);
  // TCP_REPAIR restores no ECN state: the kernel would neither echo CE nor answer ECE, hiding
  // congestion from both senders (RFC 3168 6.1). An ECN connection stays.
  if (d.ecn !== undefined)
    throw new UsageError("the kernel cannot take an ECN connection: TCP_REPAIR restores no ECN state");
  const sendQueue = concat(d.sendData);
  const recvQueue = concat(d.bufferedData);
  // SND.MAX - SND.UNA counts the sent bytes, plus our FIN once it was sent.
  const inFlight = Seq.delta(d.sndMax, d.sndUna);
  const finSent = d.finQueued && inFlight === sendQueue.length + 1;
  const sent = finSent ? sendQueue.length : inFlight;
  if (sent < 0 || sent > sendQueue.length) {
    throw new UsageError(
      `SND.MAX - SND.UNA = ${inFlight} does not fit the ${sendQueue.length} bytes of send data` +
        (d.finQueued ? " and a FIN" : ""),
    );
  }
  const rcvNxt: SeqNum = d.finReceived ? Seq.sub(d.rcvNxt, 1) : d.rcvNxt;
  const rcvWnd = Math.max(0, Seq.delta(d.rcvAdv, rcvNxt));
  const record: KernelTcpRecord = {
    family: at.family,
    local: { address: at.localAddress, port: c.localPort },
    remote: { address: at.remoteAddress, port: c.remotePort },
    rcvNxt,
    recvQueue,
    sndUna: d.sndUna,
    sendQueue,
    unsent: sendQueue.length - sent,
    mss: c.remoteMss,
    sack: c.sackEnabled,
    timestamps: c.timestampsEnabled,
    windowScale: c.windowScalingEnabled ? { snd: c.sndWindScale, rcv: c.rcvWindScale } : undefined,
    timestamp: d.tsTime >>> 0,
    window: {
      sndWl1: d.sndWl1,
      sndWnd: d.sndWnd,
      maxWindow: Math.max(d.maxSndWnd, d.sndWnd),
      rcvWnd,
      rcvWup: rcvNxt,
    },
    rcvbuf: 2 * Math.max(recvQueue.length + rcvWnd, 65536),
    sndbuf: 2 * Math.max(s.cachedState.sendBufferSize, sendQueue.length, 65536),
  };
  return d.finReceived || d.finQueued
    ? { ...record, fin: { received: d.finReceived, queued: d.finQueued } }
    : record;
}
