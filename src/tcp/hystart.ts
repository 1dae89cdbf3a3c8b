/**
 * HyStart++ (RFC 9406): leaving slow start on a rise in round-trip time, before the queue it
 * is filling overflows.
 *
 * Slow start is cut into rounds (a round ends when an ACK passes what was sent when it began,
 * 4.2). Each round keeps its smallest RTT sample. Once a round has `N_RTT_SAMPLE` samples and
 * its minimum has risen by `RttThresh` over the last round's (a queue is building), slow start
 * gives way to Conservative Slow Start (CSS): cwnd grows by a quarter as fast. If a CSS round's
 * minimum falls back under the baseline that ended slow start, the exit was spurious and slow
 * start resumes; after `CSS_ROUNDS` rounds of CSS the connection enters congestion avoidance
 * (ssthresh = cwnd). A loss or an ECE ends slow start and CSS as ever (the engine's response).
 *
 * The engine feeds it every ACK taken in slow start with the RTT sample that ACK gave (with
 * timestamps, every ACK gives one; without, one per round at most, so the delay test rarely
 * runs and slow start behaves as without HyStart++).
 */
import { Seq, type SeqNum } from "../wire/seq.js";

/** RFC 9406 4.3 constants (times in microseconds). */
export const MIN_RTT_THRESH_US = 4_000;
export const MAX_RTT_THRESH_US = 16_000;
export const MIN_RTT_DIVISOR = 8;
export const N_RTT_SAMPLE = 8;
export const CSS_GROWTH_DIVISOR = 4;
export const CSS_ROUNDS = 5;

/** What the engine does with this ACK's growth. */
export type HyStartPhase = "slow-start" | "css" | "congestion-avoidance";

/** One connection's HyStart++ state. */
export class HyStartPlusPlus {
  #windowEnd: SeqNum | undefined = undefined;
  #lastRoundMinRtt = Number.POSITIVE_INFINITY;
  #currentRoundMinRtt = Number.POSITIVE_INFINITY;
  #rttSampleCount = 0;
  #css = false;
  #cssBaselineMinRtt = Number.POSITIVE_INFINITY;
  #cssRounds = 0;
  /** Times slow start ended on a delay rise (the engine counts its own, `stats.hystartExits`). */
  exits = 0;
  /** Times CSS found the exit spurious and went back to slow start. */
  resumes = 0;

  /** In Conservative Slow Start now. */
  get inCss(): boolean {
    return this.#css;
  }

  /**
   * One ACK in slow start: `ack` the cumulative ACK, `sndNxt` what has been sent, `rttUs` the
   * sample it gave. Says how this ACK's growth is to be taken.
   */
  onAck(ack: SeqNum, sndNxt: SeqNum, rttUs: number | undefined): HyStartPhase {
    // 4.2: a new round when the ACK passes the end of the last one.
    if (this.#windowEnd === undefined || Seq.gt(ack, this.#windowEnd)) {
      this.#windowEnd = sndNxt;
      this.#lastRoundMinRtt = this.#currentRoundMinRtt;
      this.#currentRoundMinRtt = Number.POSITIVE_INFINITY;
      this.#rttSampleCount = 0;
      if (this.#css) {
        this.#cssRounds++;
        if (this.#cssRounds >= CSS_ROUNDS) {
          this.#css = false;
          return "congestion-avoidance";
        }
      }
    }
    if (rttUs !== undefined) {
      if (rttUs < this.#currentRoundMinRtt) this.#currentRoundMinRtt = rttUs;
      this.#rttSampleCount++;
    }
    const enough = this.#rttSampleCount >= N_RTT_SAMPLE;
    if (!this.#css) {
      if (
        enough &&
        this.#currentRoundMinRtt !== Number.POSITIVE_INFINITY &&
        this.#lastRoundMinRtt !== Number.POSITIVE_INFINITY
      ) {
        const thresh = Math.max(
          MIN_RTT_THRESH_US,
          Math.min(this.#lastRoundMinRtt / MIN_RTT_DIVISOR, MAX_RTT_THRESH_US),
        );
        if (this.#currentRoundMinRtt >= this.#lastRoundMinRtt + thresh) {
          this.#cssBaselineMinRtt = this.#currentRoundMinRtt;
          this.#css = true;
          this.#cssRounds = 0;
          this.exits++;
          return "css";
        }
      }
      return "slow-start";
    }
    // 4.3: in CSS, a round whose minimum is back under the baseline means the exit was spurious.
    if (enough && this.#currentRoundMinRtt < this.#cssBaselineMinRtt) {
      this.#cssBaselineMinRtt = Number.POSITIVE_INFINITY;
      this.#css = false;
      this.resumes++;
      return "slow-start";
    }
    return "css";
  }

  /** A new connection's slow start (an engine woken by `reimport`): forget the rounds. */
  reset(): void {
    this.#windowEnd = undefined;
    this.#lastRoundMinRtt = Number.POSITIVE_INFINITY;
    this.#currentRoundMinRtt = Number.POSITIVE_INFINITY;
    this.#rttSampleCount = 0;
    this.#css = false;
    this.#cssBaselineMinRtt = Number.POSITIVE_INFINITY;
    this.#cssRounds = 0;
  }
}
