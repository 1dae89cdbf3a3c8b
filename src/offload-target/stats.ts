/**
 * Chimney statistics of one interface (spec digest 18.1, SS-1): separate IPv4 and IPv6 sets of
 * `IP_OFFLOAD_STATS` and `TCP_OFFLOAD_STATS`, for offloaded connections only. The target counts
 * a frame here only when it processes it for an offloaded connection or sends it for one; frames
 * it passes up the non-offload path are the host's and never count.
 *
 * Wrapping: the U32 counters wrap to zero on overflow (`>>> 0`); the U64 counters are JavaScript
 * numbers, exact up to 2^53 (centuries at line rate), so they are kept without a wrap.
 * A set of the OID resets the matching set to zero (`reset`).
 */

/** IP_OFFLOAD_STATS. */
export interface IpOffloadStats {
  inReceives: number;
  inOctets: number;
  inDelivers: number;
  outRequests: number;
  outOctets: number;
  inHeaderErrors: number;
  inTruncatedPackets: number;
  inDiscards: number;
  outDiscards: number;
  outNoRoutes: number;
}

/** TCP_OFFLOAD_STATS. */
export interface TcpOffloadStats {
  inSegments: number;
  outSegments: number;
  /** Offloaded connections in ESTABLISHED or CLOSE-WAIT (a gauge, filled in at query time). */
  currentlyEstablished: number;
  resetEstablished: number;
  retransmittedSegments: number;
  inErrors: number;
  outResets: number;
}

/** The four statistics OIDs. */
export type OffloadStatsOid =
  | "OID_IP4_OFFLOAD_STATS"
  | "OID_IP6_OFFLOAD_STATS"
  | "OID_TCP4_OFFLOAD_STATS"
  | "OID_TCP6_OFFLOAD_STATS";

function zeroIp(): IpOffloadStats {
  return {
    inReceives: 0,
    inOctets: 0,
    inDelivers: 0,
    outRequests: 0,
    outOctets: 0,
    inHeaderErrors: 0,
    inTruncatedPackets: 0,
    inDiscards: 0,
    outDiscards: 0,
    outNoRoutes: 0,
  };
}

function zeroTcp(): TcpOffloadStats {
  return {
    inSegments: 0,
    outSegments: 0,
    currentlyEstablished: 0,
    resetEstablished: 0,
    retransmittedSegments: 0,
    inErrors: 0,
    outResets: 0,
  };
}

const u32 = (n: number): number => n >>> 0;

/** SS-1: per-interface chimney counters, one IPv4 and one IPv6 set of IP and TCP statistics. */
export class OffloadStatistics {
  readonly #ip: Record<4 | 6, IpOffloadStats> = { 4: zeroIp(), 6: zeroIp() };
  readonly #tcp: Record<4 | 6, TcpOffloadStats> = { 4: zeroTcp(), 6: zeroTcp() };

  /** A datagram received for an offloaded connection and processed by the target. */
  received(v: 4 | 6, ipBytes: number, delivered: boolean): void {
    const ip = this.#ip[v];
    ip.inReceives++;
    ip.inOctets += ipBytes;
    if (delivered) ip.inDelivers++;
    else ip.inDiscards = u32(ip.inDiscards + 1);
    this.#tcp[v].inSegments++;
  }

  /** A segment of an offloaded connection that failed its checks (bad checksum, etc.). */
  receiveError(v: 4 | 6): void {
    this.#tcp[v].inErrors = u32(this.#tcp[v].inErrors + 1);
  }

  /** A segment sent for an offloaded connection; `retransmission` = it carries only old bytes. */
  sent(v: 4 | 6, ipBytes: number, retransmission: boolean, rst: boolean): void {
    const ip = this.#ip[v];
    ip.outRequests++;
    ip.outOctets += ipBytes;
    const t = this.#tcp[v];
    if (retransmission) t.retransmittedSegments = u32(t.retransmittedSegments + 1);
    else t.outSegments++; // spec 20 item 46: every segment except pure retransmissions
    if (rst) t.outResets = u32(t.outResets + 1);
  }

  /** An offloaded connection went straight from ESTABLISHED or CLOSE-WAIT to CLOSED. */
  resetEstablished(v: 4 | 6): void {
    this.#tcp[v].resetEstablished = u32(this.#tcp[v].resetEstablished + 1);
  }

  /**
   * A query of `oid` (a copy). `established` gives CurrentlyEstablished for the TCP sets, which
   * is a gauge over the offloaded connections rather than a counter.
   */
  query(oid: "OID_IP4_OFFLOAD_STATS" | "OID_IP6_OFFLOAD_STATS"): IpOffloadStats;
  query(oid: "OID_TCP4_OFFLOAD_STATS" | "OID_TCP6_OFFLOAD_STATS", established: number): TcpOffloadStats;
  query(oid: OffloadStatsOid, established = 0): IpOffloadStats | TcpOffloadStats {
    switch (oid) {
      case "OID_IP4_OFFLOAD_STATS":
        return { ...this.#ip[4] };
      case "OID_IP6_OFFLOAD_STATS":
        return { ...this.#ip[6] };
      case "OID_TCP4_OFFLOAD_STATS":
        return { ...this.#tcp[4], currentlyEstablished: u32(established) };
      case "OID_TCP6_OFFLOAD_STATS":
        return { ...this.#tcp[6], currentlyEstablished: u32(established) };
    }
  }

  /** A set of `oid`: the matching counters go back to zero (the structure's contents are ignored). */
  reset(oid: OffloadStatsOid): void {
    switch (oid) {
      case "OID_IP4_OFFLOAD_STATS":
        this.#ip[4] = zeroIp();
        return;
      case "OID_IP6_OFFLOAD_STATS":
        this.#ip[6] = zeroIp();
        return;
      case "OID_TCP4_OFFLOAD_STATS":
        this.#tcp[4] = zeroTcp();
        return;
      case "OID_TCP6_OFFLOAD_STATS":
        this.#tcp[6] = zeroTcp();
        return;
    }
  }
}
