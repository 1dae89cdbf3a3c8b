/**
 * The sender's SACK scoreboard (RFC 2018, RFC 6675), owned by one `TcpConnection`.
 *
 * Theory of operation
 * - Positions are send-stream offsets (data bytes from the first byte passed to `send`), plain
 *   non-negative integers that never wrap; the connection converts sequence numbers with its
 *   send head (`head` / `headOff` in the arguments: the sequence number and offset of the
 *   first unacknowledged data byte), whose offset only grows.
 * - `ranges` holds the SACKed ranges as [s0, e0, s1, e1, ...]: merged, sorted, all above the
 *   send head (`trim` drops what the cumulative ACK covered), bounded in count. It is per
 *   range, not per segment, so IsLost and pipe are computed per hole (RFC 6675 4).
 * - `highRxt` is RFC 6675 HighRxt as an offset: every retransmission moves it (also go-back-N
 *   and probes, so a hole filled by one is never taken for reordering).
 * - Retransmission marks: each recovery retransmission [s, e) is remembered with the offset of
 *   SND.MAX when it left. When more than (DupThresh - 1) * SMSS bytes sent after it are SACKed
 *   while [s, e) is neither acknowledged nor SACKed, the retransmission itself was lost and
 *   goes out again (as Linux did before RACK) instead of waiting for the RTO.
 * - After a timeout the ranges are kept (the go-back-N resend skips them, RFC 6675 5.1); a
 *   second timeout in a row discards them (the peer may have reneged, RFC 2018 8).
 * - Nothing here is exported in a snapshot: an importer starts with an empty scoreboard.
 *
 * The connection passes what it owns (send head offset, DupThresh, SMSS, flight) as
 * arguments, so no call allocates: the per-ACK and per-segment paths stay allocation-free
 * (`nextRetransmission` returns a length and leaves the start in `nextStart`).
 */
import type { SackBlock } from "../wire/tcp-repr.js";
import { Seq, type SeqNum } from "../wire/seq.js";

/** Bound on remembered recovery retransmissions; the oldest is forgotten beyond it. */
export const MAX_RTX_MARKS = 64;

/** SACKed ranges, HighRxt and the recovery retransmissions of one sending connection. */
export class SackScoreboard {
  /** SACKed ranges [s, e) of send-stream offsets, merged and sorted. */
  readonly #ranges: number[] = [];
  /** RFC 6675 HighRxt as a send-stream offset. */
  #highRxt: number = 0;
  /** Recovery retransmissions as [start, end, sent-high] send offsets (see the header). */
  readonly #rtxMarks: number[] = [];
  /** The start offset of the range `nextRetransmission` chose. */
  nextStart: number = 0;

  constructor() {
    this.reinit();
  }

  /** A new scoreboard's state (an engine woken by `TcpConnection.reimport`). */
  reinit(): void {
    if (this.#ranges.length !== 0) this.#ranges.length = 0;
    this.#highRxt = 0;
    if (this.#rtxMarks.length !== 0) this.#rtxMarks.length = 0;
    this.nextStart = 0;
  }

  /** True when the peer reported nothing above the send head. */
  get isEmpty(): boolean {
    return this.#ranges.length === 0;
  }

  /** The end of the highest SACKed range; only meaningful when not `isEmpty`. */
  get highest(): number {
    return this.#ranges[this.#ranges.length - 1] as number;
  }

  /** The SACKed ranges [s0, e0, s1, e1, ...] of send offsets, sorted (read-only: RACK's deliveries). */
  get ranges(): readonly number[] {
    return this.#ranges;
  }

  /** RFC 6675 HighRxt (send offset). */
  get highRxt(): number {
    return this.#highRxt;
  }

  /**
   * Merges the peer's SACK blocks. Blocks outside (`una`, `sndMax`] are ignored (RFC 2018 /
   * 6675: a D-SACK or bogus); the part beyond `dataEnd` (a FIN) is cut. `head` / `headOff` are
   * the send head's sequence number and offset; `maxRanges` bounds the scoreboard. Returns
   * true when the blocks SACKed bytes that were not SACKed before (RFC 6675's "new SACK
   * information").
   */
  update(
    blocks: readonly SackBlock[],
    una: SeqNum,
    sndMax: SeqNum,
    dataEnd: SeqNum,
    head: SeqNum,
    headOff: number,
    maxRanges: number,
  ): boolean {
    const r = this.#ranges;
    let fresh = false;
    for (const b of blocks) {
      if (!Seq.lt(b.left, b.right) || Seq.le(b.left, una) || Seq.gt(b.right, sndMax)) continue;
      const right = Seq.gt(b.right, dataEnd) ? dataEnd : b.right;
      if (!Seq.lt(b.left, right)) continue;
      const s = headOff + Seq.diff(b.left, head);
      const e = headOff + Seq.diff(right, head);
      let lo = 0;
      while (lo < r.length && (r[lo + 1] as number) < s) lo += 2;
      let hi = lo;
      while (hi < r.length && (r[hi] as number) <= e) hi += 2;
      const ns = hi > lo ? Math.min(s, r[lo] as number) : s;
      const ne = hi > lo ? Math.max(e, r[hi - 1] as number) : e;
      // New bytes unless [s, e) lies inside one range already held.
      if (!(hi - lo === 2 && (r[lo] as number) <= s && e <= (r[lo + 1] as number))) fresh = true;
      r.splice(lo, hi - lo, ns, ne);
      if (r.length > 2 * maxRanges + 8) r.splice(0, 2); // bound the scoreboard
    }
    return fresh;
  }

  /** The cumulative ACK reached send offset `headOff`: drops what it covers. */
  trim(headOff: number): void {
    const r = this.#ranges;
    while (r.length > 0 && (r[1] as number) <= headOff) r.splice(0, 2);
    if (r.length > 0 && (r[0] as number) < headOff) r[0] = headOff;
    if (this.#highRxt < headOff) this.#highRxt = headOff;
  }

  /**
   * A retransmission timeout: HighRxt and the marks restart at the send head; the ranges are
   * kept unless `discard` (a second timeout in a row, RFC 2018 8).
   */
  onTimeout(headOff: number, discard: boolean): void {
    if (discard) this.#ranges.length = 0;
    this.#highRxt = headOff;
    if (this.#rtxMarks.length !== 0) this.#rtxMarks.length = 0;
  }

  /**
   * Fast recovery begins (RFC 6675 5 step 4.2): HighRxt restarts at the send head, and the
   * first retransmission, from the send head, is marked when it leaves
   * (`markRecoveryRetransmission`).
   */
  beginRecovery(headOff: number): void {
    this.#highRxt = headOff;
    if (this.#rtxMarks.length !== 0) this.#rtxMarks.length = 0;
  }

  /**
   * The recovery's first retransmission [s, e) left (chosen by the connection, not by
   * `nextRetransmission`): remembered for lost-retransmission detection. `sentHigh` is SND.MAX's
   * offset.
   */
  markRecoveryRetransmission(s: number, e: number, sentHigh: number): void {
    if (e > s) this.#markRetransmission(s, e, sentHigh);
  }

  /** A retransmission ending at send offset `endOff` left: HighRxt covers it. */
  noteRetransmitted(endOff: number): void {
    if (endOff > this.#highRxt) this.#highRxt = endOff;
  }

  /**
   * RFC 6675 NextSeg during recovery: first a retransmission that was itself lost (see the
   * header), then rule 1, the first lost hole not yet retransmitted. Returns the length to
   * send (0 for none) and sets `nextStart`; the choice is marked as retransmitted.
   * `sentHigh` is SND.MAX's offset, `thresh` DupThresh.
   */
  nextRetransmission(
    headOff: number,
    maxPayload: number,
    thresh: number,
    smss: number,
    sentHigh: number,
  ): number {
    const sb = this.#ranges;
    if (sb.length === 0) return 0;
    const again = this.#lostRetransmission(headOff, maxPayload, thresh, smss, sentHigh);
    if (again > 0) return again;
    const highSacked = sb[sb.length - 1] as number; // non-empty
    let from = Math.max(this.#highRxt, headOff);
    for (let i = 0; i < sb.length && from < highSacked; i += 2) {
      const s = sb[i] as number;
      const e = sb[i + 1] as number;
      if (from < s) {
        // Holes further right have less SACKed data above them: stop at the first not lost.
        if (!this.isLost(from, thresh, smss)) break;
        const len = Math.min(maxPayload, s - from);
        this.#highRxt = from + len;
        this.#markRetransmission(from, from + len, sentHigh);
        this.nextStart = from;
        return len;
      }
      if (from < e) from = e;
    }
    return 0;
  }

  /** Remembers a recovery retransmission of [s, e) for lost-retransmission detection. */
  #markRetransmission(s: number, e: number, sentHigh: number): void {
    const m = this.#rtxMarks;
    if (m.length >= 3 * MAX_RTX_MARKS) m.splice(0, 3); // bounded: the oldest mark is forgotten
    m.push(s, e, sentHigh);
  }

  /**
   * A retransmission is deemed lost when more than (DupThresh - 1) * SMSS bytes sent after it
   * were SACKed while its own range is still neither acknowledged nor SACKed; it is chosen
   * again (returns the length, sets `nextStart`; 0 for none).
   */
  #lostRetransmission(
    headOff: number,
    maxPayload: number,
    thresh: number,
    smss: number,
    sentHigh: number,
  ): number {
    const m = this.#rtxMarks;
    const limit = (thresh - 1) * smss;
    for (let i = 0; i < m.length; ) {
      const e = m[i + 1] as number;
      let s = Math.max(m[i] as number, headOff);
      s = this.firstUnsacked(s, e);
      if (s >= e) {
        m.splice(i, 3);
        continue;
      }
      if (this.sackedAbove(m[i + 2] as number) > limit) {
        const len = Math.min(maxPayload, e - s, this.nextSackedStart(s) - s);
        m.splice(i, 3);
        this.#markRetransmission(s, s + len, sentHigh);
        this.nextStart = s;
        return len;
      }
      i += 3;
    }
    return 0;
  }

  /**
   * RFC 6675 IsLost: the byte at send offset `off` is deemed lost when `thresh` (DupThresh)
   * discontiguous SACKed ranges, or more than (DupThresh - 1) * SMSS SACKed bytes, lie above it.
   */
  isLost(off: number, thresh: number, smss: number): boolean {
    const sb = this.#ranges;
    let ranges = 0;
    let bytes = 0;
    for (let i = 0; i < sb.length; i += 2) {
      const e = sb[i + 1] as number; // ranges come in pairs
      if (e <= off) continue;
      ranges++;
      bytes += e - Math.max(sb[i] as number, off);
    }
    return ranges >= thresh || bytes > (thresh - 1) * smss;
  }

  /**
   * RFC 6675 pipe, per hole rather than per segment: the `flight` (outstanding bytes from
   * send offset `headOff`) minus SACKed ones and minus lost holes not yet retransmitted
   * (those are no longer in the network).
   */
  pipe(flight: number, headOff: number, thresh: number, smss: number): number {
    const sb = this.#ranges;
    if (sb.length === 0) return flight;
    let sacked = 0;
    let lostNotRtx = 0;
    let prevEnd = headOff;
    for (let i = 0; i < sb.length; i += 2) {
      const s = sb[i] as number;
      const e = sb[i + 1] as number;
      sacked += e - s;
      // The part of the hole [prevEnd, s) above HighRxt is not retransmitted yet; if it is
      // lost, it is not in the network.
      const lo = Math.max(prevEnd, this.#highRxt);
      if (s > lo && this.isLost(lo, thresh, smss)) lostNotRtx += s - lo;
      prevEnd = e;
    }
    return Math.max(0, flight - sacked - lostNotRtx);
  }

  /** SACKed bytes above send offset `off`. */
  sackedAbove(off: number): number {
    const sb = this.#ranges;
    let n = 0;
    for (let i = 0; i < sb.length; i += 2) {
      const s = sb[i] as number;
      const e = sb[i + 1] as number;
      if (e > off) n += e - Math.max(s, off);
    }
    return n;
  }

  /** SACKed bytes in [lo, hi). */
  sackedBetween(lo: number, hi: number): number {
    const sb = this.#ranges;
    let n = 0;
    for (let i = 0; i < sb.length; i += 2) {
      const s = Math.max(lo, sb[i] as number);
      const e = Math.min(hi, sb[i + 1] as number);
      if (e > s) n += e - s;
    }
    return n;
  }

  /** The first offset in [s, e) not covered by the scoreboard (e if none). */
  firstUnsacked(s: number, e: number): number {
    const sb = this.#ranges;
    let at = s;
    for (let i = 0; i < sb.length && at < e; i += 2) {
      const bs = sb[i] as number;
      const be = sb[i + 1] as number;
      if (bs <= at && at < be) at = be;
    }
    return Math.min(at, e);
  }

  /** The start of the first SACKed range above `off` (MAX_SAFE_INTEGER if none). */
  nextSackedStart(off: number): number {
    const sb = this.#ranges;
    for (let i = 0; i < sb.length; i += 2) if ((sb[i] as number) > off) return sb[i] as number;
    return Number.MAX_SAFE_INTEGER;
  }
}
