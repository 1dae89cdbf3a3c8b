/**
 * RACK loss detection (RFC 8985 6) for one sending connection, owned by a `TcpConnection` that
 * negotiated SACK and has `TcpConfig.rack` on. Its tail loss probe (RFC 8985 7) is the
 * connection's own TLP timer.
 *
 * Theory of operation
 * - The transmit log holds every byte sent and not yet delivered (cumulatively acknowledged or
 *   SACKed), each in exactly one entry: the range of its latest transmission, with that
 *   transmission's time and whether it was a retransmission (RFC 8985 6.1's per-segment
 *   `xmit_ts`, `retransmitted` and `lost`). Entries are in the order they were sent; positions
 *   are send-stream offsets, as in the SACK scoreboard. A retransmission takes its bytes out of
 *   older entries (splitting them) and appends a new one; a delivery takes them out for good.
 * - On every ACK (6.2) the bytes it delivered update RACK.xmit_ts / end_seq / rtt from their
 *   entries (step 2; a retransmission delivered sooner than min_RTT after it left is ambiguous
 *   and skipped), and note reordering when one below RACK.fack arrives without having been
 *   retransmitted (step 3). Then every entry sent before the most recently delivered one is
 *   lost once RACK.rtt + reo_wnd has passed since it left (step 5); for the others the
 *   connection arms the reordering timer (`detectLoss` returns how long).
 * - reo_wnd (6.2 step 4): zero while no reordering was seen and the connection is in
 *   recovery or DupThresh segments are SACKed; otherwise min_RTT / 4 times a multiplier that
 *   each D-SACK round raises and 16 recoveries without one bring back to 1, at most SRTT.
 * - pipe (RFC 6675 with RACK's losses): the bytes of entries not marked lost.
 * - Nothing here is exported in a snapshot: an importer seeds the log with one entry for
 *   everything in flight, sent "now" (`seed`), and learns the rest from the next ACKs.
 *
 * The log is a flat array of `SLOT` numbers per entry from index `#first`, so the per-segment
 * and per-ACK paths allocate nothing until a loss episode splits entries.
 */
import { WindowedMin } from "./minmax.js";

/**
 * Numbers per log entry: start, end, transmit time (us), flags, and the transmission's number
 * (each send counts one). The number orders transmissions that left at the same instant:
 * RFC 8985 breaks a tie of `xmit_ts` by sequence, which takes a retransmission sent in the same
 * microsecond as new data, but after it, for the earlier of the two (a simulator's clock ticks
 * in whole microseconds, and a burst leaves at one instant).
 */
const SLOT = 5;
/** Entry flag: the range was sent before (a retransmission; RFC 8985 Segment.retransmitted). */
const F_RTX = 1;
/** Entry flag: RACK (or a timeout) deemed it lost, and it has not been sent again since. */
const F_LOST = 2;
/** Entry flag: a retransmission of bytes deemed lost (Linux still counts them in `lost_out`). */
const F_WAS_LOST = 4;
/** RFC 8985 6.2 step 4: recoveries a raised reo_wnd multiplier persists without a new D-SACK. */
export const REO_WND_PERSIST = 16;
/** Dead entries at the front after which the log is compacted. */
const COMPACT_AT = 256;
/**
 * How long an RTT sample counts toward min_RTT (us): 300 s, Linux's `tcp_min_rtt_wlen` default.
 * A path that got slower is followed after this long (RFC 8985 6.2 step 1).
 */
export const MIN_RTT_WINDOW_US = 300_000_000;

/** RACK's state and transmit log. */
export class Rack {
  #log: number[] = [];
  #first = 0;
  /** Bytes in the log, and those marked lost. */
  #bytes = 0;
  #lostBytes = 0;
  /** Bytes deemed lost, sent again or not (Linux's lost_out), and bytes of retransmissions. */
  #lostOutBytes = 0;
  #rtxBytes = 0;
  /** Entries flagged F_RTX in the log (none: the fast path of `onAck`). */
  #rtxEntries = 0;
  /**
   * RACK.xmit_ts / RACK.end_seq (as an offset) of the most recently sent delivered byte, with
   * its transmission's number; -1: none yet.
   */
  #xmitTs = -1;
  #endOff = 0;
  #xmitOrder = -1;
  /** Transmissions so far (the next entry's number). */
  #sends = 0;
  /** RACK.rtt: the RTT of that delivery (us). */
  #rtt = 0;
  /** RACK.fack: the highest end of a delivered range (offset). */
  #fack = 0;
  /** RACK.min_RTT (us): the least RTT sample of the last `MIN_RTT_WINDOW_US`; Infinity before the first. */
  readonly #minRtt = new WindowedMin(MIN_RTT_WINDOW_US);
  /** RACK.reordering_seen. */
  reorderingSeen = false;
  #reoWndMult = 1;
  #reoWndPersist = 0;
  /** RACK.dsack_round as an offset (SND.NXT when the round began); -1: none. */
  #dsackRound = -1;
  /** Bytes marked lost, ever (a counter for stats). */
  markedLost = 0;
  /** The start of the range `nextLost` chose. */
  nextStart = 0;

  /** A new connection's state (an engine woken by `TcpConnection.reimport`). */
  reinit(): void {
    this.#clearLog();
    this.#xmitTs = -1;
    this.#endOff = 0;
    this.#xmitOrder = -1;
    this.#sends = 0;
    this.#rtt = 0;
    this.#fack = 0;
    this.#minRtt.reset();
    this.reorderingSeen = false;
    this.#reoWndMult = 1;
    this.#reoWndPersist = 0;
    this.#dsackRound = -1;
    this.markedLost = 0;
    this.nextStart = 0;
  }

  /** An imported connection: everything in flight, [headOff, endOff), as sent at `now`. */
  seed(headOff: number, endOff: number, now: number): void {
    this.reinit();
    this.#fack = headOff;
    if (endOff > headOff) this.#push(headOff, endOff, now, 0);
  }

  /** Bytes in flight by RACK: sent, not delivered, not deemed lost (RFC 6675 pipe). */
  get pipe(): number {
    return this.#bytes - this.#lostBytes;
  }

  /** Bytes sent and not delivered. */
  get outstanding(): number {
    return this.#bytes;
  }

  /** Bytes deemed lost and not sent again yet. */
  get lost(): number {
    return this.#lostBytes;
  }

  /** Bytes deemed lost and not delivered since, resent or not (Linux's `lost_out`, in bytes). */
  get lostOut(): number {
    return this.#lostOutBytes;
  }

  /** Bytes of retransmissions not delivered yet (Linux's `retrans_out`, in bytes). */
  get retransOut(): number {
    return this.#rtxBytes;
  }

  /** A sample of the path's RTT (us) taken at `now`: min_RTT (RFC 8985 6.2 step 1, windowed). */
  noteRtt(now: number, us: number): void {
    if (us >= 0) this.#minRtt.update(now, us);
  }

  /**
   * [s, e) left at `now`; `rtx` when any of it was sent before. Its bytes leave the older
   * entries (which keep their own times), then it is appended.
   */
  onSend(s: number, e: number, now: number, rtx: boolean): void {
    if (e <= s) return;
    const wasLost = rtx && this.#cut(s, e);
    this.#push(s, e, now, rtx ? F_RTX | (wasLost ? F_WAS_LOST : 0) : 0);
  }

  /**
   * The ACK's deliveries (RFC 8985 6.2 steps 2 and 3): everything below `headOff` and inside
   * the scoreboard's SACKed `ranges` ([s0, e0, s1, e1, ...], sorted) leaves the log. `now` is
   * the ACK's arrival.
   */
  onAck(headOff: number, ranges: readonly number[], now: number): void {
    const log = this.#log;
    // Fast path: nothing SACKed and no retransmission outstanding, so the log is in sequence
    // order and the cumulative ACK takes entries from its front.
    if (ranges.length === 0 && this.#rtxEntries === 0) {
      let i = this.#first;
      while (i < log.length && (log[i] as number) < headOff) {
        const s = log[i] as number;
        const e = log[i + 1] as number;
        const ts = log[i + 2] as number;
        const f = log[i + 3] as number;
        const end = Math.min(e, headOff);
        this.#delivered(end, ts, f, log[i + 4] as number, now);
        this.#drop(end - s, f);
        if (end < e) {
          log[i] = end; // partly acknowledged: the rest stays
          break;
        }
        i += SLOT;
      }
      this.#first = i;
      this.#compact();
      return;
    }
    // General path: every entry against the cumulative ACK and the SACKed ranges.
    const out: number[] = [];
    for (let i = this.#first; i < log.length; i += SLOT) {
      const s = log[i] as number;
      const e = log[i + 1] as number;
      const ts = log[i + 2] as number;
      const f = log[i + 3] as number;
      const n = log[i + 4] as number;
      let at = s;
      if (at < headOff) {
        const end = Math.min(e, headOff);
        this.#delivered(end, ts, f, n, now);
        this.#drop(end - at, f);
        at = end;
      }
      for (let r = 0; r < ranges.length && at < e; r += 2) {
        const rs = ranges[r] as number;
        const re = ranges[r + 1] as number;
        if (re <= at) continue;
        if (rs >= e) break;
        if (rs > at) {
          out.push(at, rs, ts, f, n); // the part below this SACKed range stays
          at = rs;
        }
        const end = Math.min(e, re);
        this.#delivered(end, ts, f, n, now);
        this.#drop(end - at, f);
        at = end;
      }
      if (at < e) out.push(at, e, ts, f, n);
    }
    this.#log = out;
    this.#first = 0;
    this.#rtxEntries = 0;
    for (let i = 3; i < out.length; i += SLOT) if ((out[i] as number) & F_RTX) this.#rtxEntries++;
  }

  /**
   * A D-SACK arrived (RFC 8985 6.2 step 4): the first in a round raises the reo_wnd multiplier
   * and makes it persist for 16 recoveries. `sndNxtOff` ends the round when SND.UNA passes it.
   */
  onDsack(sndNxtOff: number): void {
    if (this.#dsackRound >= 0) return;
    this.#dsackRound = sndNxtOff;
    this.#reoWndMult++;
    this.#reoWndPersist = REO_WND_PERSIST;
  }

  /** SND.UNA reached `headOff`: a D-SACK round that ended below it is over. */
  onUna(headOff: number): void {
    if (this.#dsackRound >= 0 && headOff >= this.#dsackRound) this.#dsackRound = -1;
  }

  /** A loss recovery ended (RFC 8985 6.2 step 4): the multiplier decays after 16 without a D-SACK. */
  onRecoveryEnd(): void {
    if (this.#reoWndPersist > 0) this.#reoWndPersist--;
    if (this.#reoWndPersist === 0) this.#reoWndMult = 1;
  }

  /**
   * RACK.reo_wnd (RFC 8985 6.2 step 4): 0 while no reordering was seen and `recovering` (in
   * fast or timeout recovery) or `dupThreshSacked` (DupThresh segments SACKed); otherwise
   * min_RTT / 4 times the multiplier, at most `srtt` (us; undefined before the first sample).
   */
  reoWnd(recovering: boolean, dupThreshSacked: boolean, srtt: number | undefined): number {
    if (!this.reorderingSeen && (recovering || dupThreshSacked)) return 0;
    const min = this.#minRtt.value;
    const base = Number.isFinite(min) ? min : (srtt ?? 0);
    const w = Math.floor((this.#reoWndMult * base) / 4);
    return srtt === undefined ? w : Math.min(w, srtt);
  }

  /**
   * RFC 8985 6.2 step 5: marks lost every entry sent before the most recently delivered byte
   * once RACK.rtt + `reoWnd` has passed since it left. Returns the time (us) until the next
   * such entry would be lost (the reordering timer), 0 for none.
   */
  detectLoss(now: number, reoWnd: number): number {
    if (this.#xmitTs < 0) return 0;
    const log = this.#log;
    let timeout = 0;
    for (let i = this.#first; i < log.length; i += SLOT) {
      const n = log[i + 4] as number;
      if (n > this.#xmitOrder) break; // sent after the latest delivery: so is the rest
      const f = log[i + 3] as number;
      if (f & F_LOST) continue;
      if (n === this.#xmitOrder && (log[i + 1] as number) > this.#endOff) continue; // same segment, above it
      const remaining = (log[i + 2] as number) + this.#rtt + reoWnd - now;
      if (remaining <= 0) this.#markLost(i);
      else if (remaining > timeout) timeout = remaining;
    }
    return timeout;
  }

  /**
   * The retransmission timer fired (RFC 8985 6.3): the first unacknowledged entry, and every
   * entry that left more than RACK.rtt + `reoWnd` ago, are lost. With `discard` (the SACK
   * scoreboard was dropped: the peer may have reneged) the log restarts as one lost range
   * [headOff, sentHigh).
   */
  onTimeout(now: number, reoWnd: number, headOff: number, discard: boolean, sentHigh: number): void {
    if (discard) {
      const stamp = this.#xmitTs;
      this.#clearLog();
      if (sentHigh > headOff) {
        this.#push(headOff, sentHigh, Math.min(stamp, now), 0);
        this.#markLost(0);
      }
      return;
    }
    const log = this.#log;
    for (let i = this.#first; i < log.length; i += SLOT) {
      if ((log[i + 3] as number) & F_LOST) continue;
      const first = (log[i] as number) <= headOff;
      if (first || (log[i + 2] as number) + this.#rtt + reoWnd - now <= 0) this.#markLost(i);
    }
  }

  /**
   * The lowest lost range not sent again, at most `maxPayload` bytes: returns its length (0 for
   * none) and sets `nextStart`. Sending it (`onSend` with `rtx`) takes it out of the lost.
   */
  nextLost(maxPayload: number): number {
    if (this.#lostBytes === 0) return 0;
    const log = this.#log;
    let best = -1;
    for (let i = this.#first; i < log.length; i += SLOT) {
      if (!((log[i + 3] as number) & F_LOST)) continue;
      if (best < 0 || (log[i] as number) < (log[best] as number)) best = i;
    }
    if (best < 0) return 0;
    const s = log[best] as number;
    this.nextStart = s;
    return Math.min(maxPayload, (log[best + 1] as number) - s);
  }

  /** An empty log and its counters. */
  #clearLog(): void {
    this.#log.length = 0;
    this.#first = 0;
    this.#bytes = 0;
    this.#lostBytes = 0;
    this.#lostOutBytes = 0;
    this.#rtxBytes = 0;
    this.#rtxEntries = 0;
  }

  #push(s: number, e: number, ts: number, f: number): void {
    this.#log.push(s, e, ts, f, this.#sends++);
    this.#count(e - s, f);
    if (f & F_RTX) this.#rtxEntries++;
  }

  #markLost(i: number): void {
    const log = this.#log;
    const n = (log[i + 1] as number) - (log[i] as number);
    const f = log[i + 3] as number;
    this.#count(-n, f);
    log[i + 3] = f | F_LOST;
    this.#count(n, f | F_LOST);
    this.markedLost += n;
  }

  /** `n` bytes of an entry with flags `f` left the log. */
  #drop(n: number, f: number): void {
    this.#count(-n, f);
  }

  /** The byte counters for `n` bytes (negative: removed) of an entry with flags `f`. */
  #count(n: number, f: number): void {
    this.#bytes += n;
    if (f & F_LOST) this.#lostBytes += n;
    if (f & (F_LOST | F_WAS_LOST)) this.#lostOutBytes += n;
    if (f & F_RTX) this.#rtxBytes += n;
  }

  /** RFC 8985 6.2 steps 2 and 3 for a delivered range ending at `end`, sent at `ts` as transmission `n`. */
  #delivered(end: number, ts: number, f: number, n: number, now: number): void {
    const rtt = now - ts;
    if (end > this.#fack) this.#fack = end;
    else if (end < this.#fack && !(f & F_RTX)) this.reorderingSeen = true;
    // A retransmission acknowledged sooner than the path allows: the original's delivery.
    if (f & F_RTX && rtt < this.#minRtt.value) return;
    if (n > this.#xmitOrder || (n === this.#xmitOrder && end > this.#endOff)) {
      this.#xmitTs = ts;
      this.#xmitOrder = n;
      this.#endOff = end;
      this.#rtt = rtt;
    }
  }

  /**
   * Takes [s, e) out of every entry (a retransmission of it is about to be appended); true when
   * some of it had been deemed lost.
   */
  #cut(s: number, e: number): boolean {
    const log = this.#log;
    let overlap = false;
    for (let i = this.#first; i < log.length && !overlap; i += SLOT)
      overlap = (log[i] as number) < e && (log[i + 1] as number) > s;
    if (!overlap) return false;
    let wasLost = false;
    const out: number[] = [];
    for (let i = this.#first; i < log.length; i += SLOT) {
      const es = log[i] as number;
      const ee = log[i + 1] as number;
      const ts = log[i + 2] as number;
      const f = log[i + 3] as number;
      const n = log[i + 4] as number;
      if (ee <= s || es >= e) {
        out.push(es, ee, ts, f, n);
        continue;
      }
      this.#drop(Math.min(ee, e) - Math.max(es, s), f);
      if (f & (F_LOST | F_WAS_LOST)) wasLost = true;
      if (es < s) out.push(es, s, ts, f, n);
      if (ee > e) out.push(e, ee, ts, f, n);
    }
    this.#log = out;
    this.#first = 0;
    this.#rtxEntries = 0;
    for (let i = 3; i < out.length; i += SLOT) if ((out[i] as number) & F_RTX) this.#rtxEntries++;
    return wasLost;
  }

  #compact(): void {
    if (this.#first === this.#log.length) {
      this.#log.length = 0;
      this.#first = 0;
      return;
    }
    if (this.#first < COMPACT_AT || this.#first * 2 < this.#log.length) return;
    this.#log.splice(0, this.#first);
    this.#first = 0;
  }
}
