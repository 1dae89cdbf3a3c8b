/**
 * Undo of spurious congestion responses and the adaptive DupThresh of one `TcpConnection`
 * (RFC 2883 / 3708 D-SACK, RFC 3522 Eifel detection, RFC 4015 response, RFC 4653 spirit,
 * as Linux's undo and tcp_reordering).
 *
 * Theory of operation
 * - Reordering: `reordering` is the sender's DupThresh in segments. It starts at
 *   `dupAckThreshold` and only grows, bounded by `maxReordering`: when the cumulative ACK
 *   covers a hole below SACKed data that was never retransmitted (the original arrived late,
 *   `reorderedHole`), to the span from the hole to the highest SACKed byte; and when a fast
 *   recovery is undone, to its degree + 1 (the SACKed segments above SND.UNA, or the
 *   duplicate ACKs counted, when it began).
 * - Episodes: a fast recovery, or the first timeout of a loss episode, `begin`s an undoable
 *   episode: SND.UNA, cwnd and ssthresh before the reduction are remembered. A timeout during
 *   a fast recovery continues its episode. Each retransmission of the episode is remembered
 *   by its range (`onRetransmit`, at most `MAX_EPISODE_RETRANSMISSIONS`), and the first one's
 *   TSval kept.
 * - Detection: the episode was spurious when D-SACKs report every one of its retransmissions
 *   duplicate, each one whole (`dsack`: outside fast recovery the connection undoes at once,
 *   inside at the full ACK). A D-SACK of part of a retransmission proves nothing: the
 *   retransmission may have filled the rest of a real hole (a retransmission cut differently
 *   from the original, whose tail the peer already held, draws exactly that). Or when the echoed timestamp is older than the first retransmission's TSval,
 *   so an original transmission drew the ACK (Eifel): for a recovery at its full ACK
 *   (`recoverySpurious`), for a timeout at the first ACK after it (`timeoutSpurious`; a
 *   later ACK no longer decides).
 * - Response: the connection restores cwnd and ssthresh to at least `priorCwnd` /
 *   `priorSsthresh` (and after a timeout resumes with new data), then calls `finish`.
 * - Nothing here travels in a snapshot: an importer starts with DupThresh = `dupAckThreshold`
 *   and nothing to undo (safe: it can only miss an undo).
 *
 * The connection owns cwnd, ssthresh and the sequence space and passes what is needed as
 * arguments; nothing here allocates.
 */
import type { TcpConfig } from "./config.js";
import type { SackScoreboard } from "./sack-scoreboard.js";
import type { TcpStats } from "./types.js";
import type { SackBlock, TcpRepr } from "../wire/tcp-repr.js";
import { Seq, type SeqNum } from "../wire/seq.js";

/**
 * RFC 2883 4: the segment's first SACK block is a D-SACK: it lies at or below the cumulative
 * ACK, or inside the second block.
 */
export function carriesDsack(seg: TcpRepr): boolean {
  const first = seg.sack[0];
  if (first === undefined || !Seq.lt(first.left, first.right)) return false;
  const second = seg.sack[1];
  return (
    Seq.le(first.right, seg.ack) ||
    (second !== undefined && Seq.ge(first.left, second.left) && Seq.le(first.right, second.right))
  );
}

/**
 * Retransmissions of one episode remembered for D-SACK detection; an episode with more cannot
 * be proven spurious by D-SACKs (the timestamps still may).
 */
export const MAX_EPISODE_RETRANSMISSIONS = 64;

/** DupThresh and the current undoable episode of one sending connection. */
export class SpuriousUndo {
  #enabled!: boolean;
  /** Upper bound of `reordering`. */
  #maxReordering: number = 0;
  /** The sender's DupThresh in segments. */
  #reordering: number = 0;
  /**
   * SND.UNA when the current undoable episode began; `undefined` when there is nothing to
   * undo. Cleared by an undo or when a new episode starts.
   */
  #marker!: SeqNum | undefined;
  /**
   * Data ranges retransmitted in the episode and not yet reported duplicate by a D-SACK, as
   * [left, right, left, right, ...] sequence numbers (reused, so nothing is allocated per ACK).
   */
  readonly #rtx: number[] = [];
  /** A retransmission of the episode could not be remembered (no data, or too many). */
  #unprovable!: boolean;
  /** cwnd and ssthresh before the episode's reduction. */
  #priorCwnd: number = 0;
  #priorSsthresh: number = 0;
  /** Our TSval on the episode's first retransmission (set only with timestamps). */
  #tsVal!: number | undefined;
  /** The episode has retransmitted something. */
  #retransmitted!: boolean;
  /** The episode is a retransmission timeout (else a fast recovery). */
  #timeout!: boolean;
  /** SACKed segments above SND.UNA when the fast recovery began: its reordering degree. */
  #degree: number = 0;

  constructor(cfg: TcpConfig) {
    this.reinit(cfg);
  }

  /** A new undo state under `cfg` (an engine woken by `TcpConnection.reimport`). */
  reinit(cfg: TcpConfig): void {
    this.#enabled = cfg.undoSpurious;
    this.#maxReordering = Math.max(cfg.maxReordering, cfg.dupAckThreshold);
    this.#reordering = cfg.dupAckThreshold;
    this.#marker = undefined;
    if (this.#rtx.length !== 0) this.#rtx.length = 0;
    this.#unprovable = false;
    this.#priorCwnd = 0;
    this.#priorSsthresh = 0;
    this.#tsVal = undefined;
    this.#retransmitted = false;
    this.#timeout = false;
    this.#degree = 0;
  }

  /** DupThresh in segments. */
  get reordering(): number {
    return this.#reordering;
  }

  /** An undoable episode is running. */
  get active(): boolean {
    return this.#marker !== undefined;
  }

  /** The episode being undone was a timeout (the sender resumes with new data). */
  get afterTimeout(): boolean {
    return this.#timeout;
  }

  /** cwnd before the episode's reduction. */
  get priorCwnd(): number {
    return this.#priorCwnd;
  }

  /** ssthresh before the episode's reduction. */
  get priorSsthresh(): number {
    return this.#priorSsthresh;
  }

  /**
   * A fast recovery or a first timeout (`timeout`) begins, before cwnd and ssthresh are
   * reduced. With `continuing` and an episode running, it continues that episode: a timeout
   * during a fast recovery, or a fast recovery begun while a timeout's loss episode runs. Such
   * an episode counts as a timeout's: an undo restores what was before the first reduction
   * and teaches no DupThresh (a fast recovery begun from the one segment a timeout leaves
   * would restore that, and its degree, the SACKed data the timeout's go-back-N resend is
   * still walking through, is no measure of reordering: at 1% loss both ways, DupThresh went
   * from 5 to 17 in a 22-segment window that way, and retransmission timeouts tripled).
   */
  begin(timeout: boolean, continuing: boolean, sndUna: SeqNum, cwnd: number, ssthresh: number): void {
    if (!this.#enabled) {
      this.#marker = undefined;
      return;
    }
    if (continuing && this.#marker !== undefined) {
      this.#timeout ||= timeout;
      return;
    }
    this.#marker = sndUna;
    this.#priorCwnd = cwnd;
    this.#priorSsthresh = ssthresh;
    if (this.#rtx.length !== 0) this.#rtx.length = 0;
    this.#unprovable = false;
    this.#retransmitted = false;
    this.#tsVal = undefined;
    this.#timeout = timeout;
  }

  /** The reordering a fast recovery would prove if it turns out spurious, in segments. */
  setDegree(segments: number): void {
    this.#degree = segments;
  }

  /**
   * Data [left, right) of the running episode was retransmitted (an empty range: a FIN or a
   * probe without data); `tsVal` is its TSval, if any.
   */
  onRetransmit(tsVal: number | undefined, left: SeqNum, right: SeqNum): void {
    if (left === right || this.#rtx.length >= 2 * MAX_EPISODE_RETRANSMISSIONS) this.#unprovable = true;
    else this.#rtx.push(left, right);
    if (!this.#retransmitted) {
      this.#retransmitted = true;
      this.#tsVal = tsVal;
    }
  }

  /**
   * RFC 3522 / 4015 after a timeout: `seg` is the first ACK of new data since the episode's
   * timeout `retransmitted`. True when it proves the timeout spurious; otherwise the TSval is
   * forgotten (only the first ACK decides; D-SACKs still may).
   */
  timeoutSpurious(seg: TcpRepr, retransmitted: boolean): boolean {
    if (!this.#timeout || this.#marker === undefined || !retransmitted) return false;
    if (this.#eifel(seg)) return true;
    this.#tsVal = undefined;
    return false;
  }

  /**
   * At a fast recovery's full ACK `seg`: true when D-SACKs or the echoed timestamp prove it
   * spurious, or when it retransmitted nothing at all (every segment deemed lost arrived before
   * its retransmission left: reordering, as Linux's tcp_packet_delayed also concludes).
   */
  recoverySpurious(seg: TcpRepr): boolean {
    if (this.#marker === undefined || this.#timeout) return false;
    return !this.#retransmitted || this.#allReported() || this.#eifel(seg);
  }

  /**
   * RFC 2883 / 3708 on the sender: a first SACK block of `seg` at or below its cumulative ACK,
   * or inside its second block, reports a duplicate (counted in `stats`). Returns true when
   * this D-SACK reports the last retransmission of the running episode not yet reported so:
   * the episode was spurious. A block reports each distinct retransmitted range it covers
   * whole once (the same range retransmitted twice needs two reports).
   */
  dsack(seg: TcpRepr, sndMax: SeqNum, stats: TcpStats): boolean {
    if (!carriesDsack(seg)) return false;
    const first = seg.sack[0] as SackBlock; // carriesDsack saw it
    stats.dsacksIn++;
    const marker = this.#marker;
    if (marker === undefined || !this.#retransmitted) return false;
    if (Seq.lt(first.left, marker) || Seq.gt(first.right, sndMax)) return false;
    // Pass 1 marks the reported ranges (left stored as -1 - left), pass 2 drops them.
    const r = this.#rtx;
    let reported = false;
    for (let i = 0; i < r.length; i += 2) {
      const left = r[i] as SeqNum;
      const right = r[i + 1] as SeqNum;
      if (!(Seq.ge(left, first.left) && Seq.le(right, first.right))) continue;
      let again = false; // this block already reported the same range
      for (let j = 0; j < i && !again; j += 2) again = r[j] === -1 - left && r[j + 1] === right;
      if (again) continue;
      r[i] = -1 - left;
      reported = true;
    }
    if (!reported) return false;
    let k = 0;
    for (let i = 0; i < r.length; i += 2) {
      if ((r[i] as number) < 0) continue;
      r[k++] = r[i] as number;
      r[k++] = r[i + 1] as number;
    }
    r.length = k;
    return this.#allReported();
  }

  /**
   * Reordering seen without a retransmission (Linux tcp_check_sack_reordering): the cumulative
   * ACK moves from send offset `headOff` to `newOff` over a hole below SACKed data (in `sb`)
   * that was never retransmitted, so the original arrived late. DupThresh grows to the span
   * from the hole to the highest SACKed byte. The caller checks that no retransmission of any
   * kind is running; `sb` is not empty.
   */
  reorderedHole(sb: SackScoreboard, headOff: number, newOff: number, smss: number, stats: TcpStats): void {
    const hole = sb.firstUnsacked(headOff, newOff);
    const high = sb.highest;
    if (hole >= newOff || hole < sb.highRxt || high <= hole) return;
    this.#raise(Math.ceil((high - hole) / smss), stats);
  }

  /**
   * Reordering seen in a SACK (Linux tcp_check_sack_reordering on the SACK path): newly SACKed
   * data starting at send offset `left`, never retransmitted (at or above HighRxt), lies below
   * `fack`, the highest byte SACKed before this ACK: it arrived after data sent later. DupThresh
   * grows to the span from it to `fack`, in segments.
   */
  sackedBelowFack(left: number, fack: number, highRxt: number, smss: number, stats: TcpStats): void {
    if (left >= fack || left < highRxt) return;
    this.#raise(Math.ceil((fack - left) / smss), stats);
  }

  /**
   * The connection has undone the episode (restored cwnd and ssthresh): a fast recovery
   * teaches its degree + 1 as DupThresh; the episode ends.
   */
  finish(stats: TcpStats): void {
    stats.spuriousUndos++;
    if (!this.#timeout) this.#raise(this.#degree + 1, stats);
    this.#marker = undefined;
    this.#tsVal = undefined;
    if (this.#rtx.length !== 0) this.#rtx.length = 0;
    this.#unprovable = false;
    this.#retransmitted = false;
  }

  /**
   * RFC 3522 Eifel detection: `seg` echoes a timestamp older than the episode's first
   * retransmission, so an original transmission, not the retransmission, drew it.
   */
  #eifel(seg: TcpRepr): boolean {
    const ts = seg.timestamps;
    const sent = this.#tsVal;
    if (ts === undefined || ts.tsEcr === 0 || sent === undefined) return false;
    return ((ts.tsEcr - sent) | 0) < 0;
  }

  /** Every retransmission of the episode was reported duplicate, whole, by D-SACKs. */
  #allReported(): boolean {
    return this.#retransmitted && !this.#unprovable && this.#rtx.length === 0;
  }

  /** Raises DupThresh to `degree` segments, within the bound. */
  #raise(degree: number, stats: TcpStats): void {
    const r = Math.min(this.#maxReordering, degree);
    if (r > this.#reordering) {
      this.#reordering = r;
      stats.reorderingRaised++;
    }
  }
}
