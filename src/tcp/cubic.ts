/**
 * CUBIC congestion control (RFC 9438) for the congestion-avoidance phase and the response to
 * congestion; slow start, recovery and the retransmission timer stay the engine's (RFC 5681,
 * 6582, 6675, 6298). Pure: the engine calls in with its clock and windows, in bytes.
 *
 * Theory of operation
 * - Windows are tracked in segments (floating point) as the RFC writes them; the engine keeps
 *   cwnd in bytes and converts with its SMSS.
 * - A congestion event (fast retransmit, or the first timeout of a loss episode) records
 *   W_max, the window where it happened, applies fast convergence (4.7) and gives ssthresh =
 *   cwnd * beta (4.6). The next ACK in congestion avoidance starts an epoch (4.2).
 * - During an epoch the window follows W_cubic(t) = C * (t - K)^3 + W_max (eq. 1, 2): concave
 *   up to W_max, convex beyond. Each ACK moves cwnd toward the target W_cubic(t + RTT), at most
 *   halfway beyond the current window (4.4, 4.5). The Reno-friendly estimate W_est (4.3) grows
 *   as Reno with alpha_cubic would; when it is above W_cubic the window follows it.
 * - Across offload and terminate only cwnd and ssthresh travel (NDIS's delegated state has no
 *   room for the epoch): after an import the next epoch starts with W_max = cwnd and K = 0, as
 *   after slow start without a congestion event (4.2: "W_max is set to cwnd").
 */
import type { Instant } from "../time/instant.js";

/** RFC 9438 4.1: C, in segments per second cubed. */
export const CUBIC_C = 0.4;
/** RFC 9438 4.6: the multiplicative decrease factor. */
export const CUBIC_BETA = 0.7;
/** RFC 9438 4.3: alpha_cubic = 3 * (1 - beta) / (1 + beta), Reno-friendly additive increase. */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

/** K (eq. 2): seconds for W_cubic to grow from cwnd_epoch back to W_max. */
export function cubicK(wMax: number, cwndEpoch: number): number {
  return Math.cbrt(Math.max(0, wMax - cwndEpoch) / CUBIC_C);
}

/** W_cubic(t) (eq. 1), in segments, `t` seconds into the epoch. */
export function wCubic(t: number, k: number, wMax: number): number {
  return CUBIC_C * (t - k) ** 3 + wMax;
}

/** The state of one connection's CUBIC controller. */
export class Cubic {
  /** W_max: the window (segments) at the last congestion event; undefined before one. */
  #wMax!: number | undefined;
  /** Start of the current congestion-avoidance epoch (undefined: none running). */
  #epochStart!: Instant | undefined;
  #k: number = 0;
  #epochWMax: number = 0;
  /** The Reno-friendly estimate W_est (segments). */
  #wEst: number = 0;
  /** cwnd at the last ACK, in segments with a fraction (the engine's bytes lose it). */
  #cwnd: number = 0;

  constructor() {
    this.reinit();
  }

  /** A new controller's state (an engine woken by `TcpConnection.reimport`). */
  reinit(): void {
    this.#wMax = undefined;
    this.#epochStart = undefined;
    this.#k = 0;
    this.#epochWMax = 0;
    this.#wEst = 0;
    this.#cwnd = 0;
  }

  /** W_max (segments), for tests and diagnostics. */
  get wMax(): number | undefined {
    return this.#wMax;
  }

  /** K of the running epoch (seconds); 0 when none runs. */
  get k(): number {
    return this.#epochStart === undefined ? 0 : this.#k;
  }

  /**
   * A congestion event with `cwndBytes` in use: W_max with fast convergence (4.7), the epoch
   * ends, and the new ssthresh (bytes) is returned: cwnd * beta, at least 2 segments (4.6).
   */
  onCongestion(cwndBytes: number, smss: number): number {
    const cwnd = cwndBytes / smss;
    const prev = this.#wMax;
    this.#wMax = prev !== undefined && cwnd < prev ? (cwnd * (1 + CUBIC_BETA)) / 2 : cwnd;
    this.#epochStart = undefined;
    return Math.max(Math.floor(cwndBytes * CUBIC_BETA), 2 * smss);
  }

  /** A spurious congestion event was undone: W_max goes back to what it was (RFC 9438 4.9). */
  restore(wMax: number | undefined): void {
    this.#wMax = wMax;
    this.#epochStart = undefined;
  }

  /** Slow start or recovery ran (a timeout, an import): the next avoidance ACK starts an epoch. */
  reset(): void {
    this.#epochStart = undefined;
  }

  /**
   * An ACK of `ackedBytes` new bytes in congestion avoidance at `now` with smoothed RTT `rttSec`:
   * the new cwnd in bytes (never below the current one).
   */
  onAck(now: Instant, cwndBytes: number, ackedBytes: number, smss: number, rttSec: number): number {
    const cwnd = Math.max(cwndBytes / smss, this.#epochStart === undefined ? 0 : this.#cwnd);
    if (this.#epochStart === undefined) {
      // 4.2: a new epoch. Without a congestion event yet, W_max is the current window.
      this.#epochStart = now;
      this.#epochWMax = this.#wMax ?? cwnd;
      if (this.#epochWMax < cwnd) this.#epochWMax = cwnd;
      this.#k = cubicK(this.#epochWMax, cwnd);
      this.#wEst = cwnd;
    }
    const t = (now - this.#epochStart) / 1e6;
    const acked = ackedBytes / smss;
    // 4.3: the Reno-friendly estimate (alpha_cubic until W_est reaches W_max, then 1).
    this.#wEst += ((this.#wEst < this.#epochWMax ? CUBIC_ALPHA : 1) * acked) / cwnd;
    let next: number;
    const cubic = wCubic(t, this.#k, this.#epochWMax);
    if (cubic < this.#wEst) {
      next = this.#wEst; // the Reno-friendly region
    } else {
      // 4.4 / 4.5: toward W_cubic(t + RTT), clamped to [cwnd, 1.5 cwnd], per ACKed segment.
      const target = Math.min(Math.max(wCubic(t + rttSec, this.#k, this.#epochWMax), cwnd), 1.5 * cwnd);
      next = cwnd + ((target - cwnd) / cwnd) * acked;
    }
    this.#cwnd = Math.max(cwnd, next);
    return Math.max(cwndBytes, Math.floor(this.#cwnd * smss));
  }
}
