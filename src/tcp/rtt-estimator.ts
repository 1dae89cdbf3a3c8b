/**
 * The round-trip time estimator and retransmission timeout of one `TcpConnection` (RFC 6298,
 * with RFC 7323 4.1 timestamp samples).
 *
 * Theory of operation
 * - State: SRTT and RTTVAR (`undefined` before the first sample, RFC 6298 2.1) and the RTO,
 *   all integer microseconds. The RTO includes the exponential backoff: `backoff` doubles it
 *   on a retransmission timeout (5.5) and the next sample recomputes it from SRTT and RTTVAR
 *   (2.2 / 2.3, clock granularity G = 1 ms), clamped to [minRto, maxRto].
 * - Samples: with timestamps every ACK of new data is one (the connection passes the age of
 *   the echoed TSval); without, one segment at a time is timed (`time`), and Karn's rule
 *   (`karn`) drops the measurement when anything is retransmitted, so an ambiguous ACK is
 *   never a sample and the backed-off RTO stays until a segment sent once is acknowledged.
 * - RFC 6298 5.7: `fallback` starts data transmission with a 3 s RTO when the SYN had to be
 *   retransmitted and no sample exists (Linux's TCP_TIMEOUT_FALLBACK).
 * - Snapshots carry SRTT, RTTVAR and the RTO itself (`restore`); the timed segment is not
 *   carried.
 * - The RTO and a Chimney snapshot: while retransmitting, RTO = (SRTT + max(G, 4 RTTVAR))
 *   << retransmission count (clamped to [minRto, maxRto]), which Chimney's SRtt, RttVar and
 *   Retransmit.Count rebuild exactly (chimney/tcp-state.ts deriveRto). One case differs:
 *   without timestamps, once a retransmitted segment is acknowledged, Karn's rule (RFC 6298
 *   5, "the backed-off RTO is kept until an ACK for a segment that was not retransmitted")
 *   keeps the backed-off RTO while Retransmit.Count is already 0. A Chimney importer then
 *   starts from the un-backed-off RTO until the next RTT sample; our own snapshot carries
 *   `rto` itself, so export/import between two of our engines keeps it exactly. With
 *   timestamps every ACK of new data is a sample (RFC 7323 4.1) and the two always agree.
 *
 * The timers themselves (retransmit, persist, probe) belong to the connection; it asks this
 * estimator for their durations. Nothing here allocates.
 */
import type { TcpConfig } from "./config.js";
import { Duration, Instant } from "../time/instant.js";
import { Seq, type SeqNum } from "../wire/seq.js";

/** RFC 6298 clock granularity G used in the RTO formula (microseconds). */
export const CLOCK_G_US = 1000;
/** RFC 6298 5.7: the RTO after a retransmitted SYN without an RTT sample (microseconds). */
const FALLBACK_RTO_US = 3_000_000;
/** The persist timer's backoff exponent stops growing here. */
const MAX_PERSIST_SHIFT = 20;

/** SRTT, RTTVAR, RTO and the Karn-guarded timing of one segment. */
export class RttEstimator {
  #minRto: number = 0;
  #maxRto: number = 0;
  #srtt!: number | undefined;
  #rttVar!: number | undefined;
  #rto: number = 0;
  /** The sequence number whose acknowledgment ends the running measurement. */
  #timedSeq!: SeqNum | undefined;
  #timedAt: Instant = 0 as Instant;

  constructor(cfg: TcpConfig) {
    this.reinit(cfg);
  }

  /** A new estimator's state under `cfg` (an engine woken by `TcpConnection.reimport`). */
  reinit(cfg: TcpConfig): void {
    this.#minRto = cfg.minRto;
    this.#maxRto = cfg.maxRto;
    this.#srtt = undefined;
    this.#rttVar = undefined;
    this.#rto = cfg.initialRto;
    this.#timedSeq = undefined;
    this.#timedAt = Instant.ZERO;
  }

  /** Smoothed RTT, once sampled. */
  get srtt(): Duration | undefined {
    return this.#srtt as Duration | undefined; // integer microseconds
  }

  /** RTT variation, once sampled. */
  get rttVar(): Duration | undefined {
    return this.#rttVar as Duration | undefined; // integer microseconds
  }

  /** The current retransmission timeout, backoff included. */
  get rto(): Duration {
    return this.#rto as Duration; // always a non-negative integer of microseconds
  }

  /** The RTO capped at maxRto (an initial or restored RTO may exceed it). */
  get cappedRto(): Duration {
    return Duration.fromMicros(Math.min(this.#maxRto, this.#rto));
  }

  /** The persist timeout of persist round `probeCount`: the RTO doubled per round, capped. */
  persistTimeout(probeCount: number): Duration {
    return Duration.fromMicros(
      Math.min(this.#maxRto, this.#rto * 2 ** Math.min(probeCount, MAX_PERSIST_SHIFT)),
    );
  }

  /** Continues from a snapshot's SRTT, RTTVAR and RTO. */
  restore(srtt: Duration | undefined, rttVar: Duration | undefined, rto: Duration): void {
    this.#srtt = srtt;
    this.#rttVar = rttVar;
    this.#rto = rto;
  }

  /** RFC 6298 2.2 / 2.3: one RTT measurement `r` (microseconds; a negative one is ignored). */
  sample(r: number): void {
    if (r < 0) return;
    if (this.#srtt === undefined || this.#rttVar === undefined) {
      this.#srtt = r;
      this.#rttVar = Math.floor(r / 2);
    } else {
      this.#rttVar = Math.floor((3 * this.#rttVar + Math.abs(this.#srtt - r)) / 4);
      this.#srtt = Math.floor((7 * this.#srtt + r) / 8);
    }
    const rto = this.#srtt + Math.max(CLOCK_G_US, 4 * this.#rttVar);
    this.#rto = Math.min(this.#maxRto, Math.max(this.#minRto, rto));
  }

  /** RFC 6298 5.5: a retransmission timeout doubles the RTO (up to maxRto). */
  backoff(): void {
    this.#rto = Math.min(this.#maxRto, this.#rto * 2);
  }

  /** RFC 6298 5.7: without a sample yet, the RTO becomes 3 s (the caller saw a SYN retransmitted). */
  fallback(): void {
    if (this.#srtt === undefined) this.#rto = Math.min(this.#maxRto, FALLBACK_RTO_US);
  }

  /** True while a segment is being timed. */
  get timing(): boolean {
    return this.#timedSeq !== undefined;
  }

  /** Times the segment whose acknowledgment reaches `endSeq`, sent at `now`. */
  time(endSeq: SeqNum, now: Instant): void {
    this.#timedSeq = endSeq;
    this.#timedAt = now;
  }

  /** Karn's rule: something was retransmitted, so the running measurement is void. */
  karn(): void {
    this.#timedSeq = undefined;
  }

  /** Our SYN was acknowledged: the timed SYN, if any, gives a sample; timing stops. */
  onSynAcked(now: Instant): void {
    if (this.#timedSeq !== undefined) this.sample(now - this.#timedAt);
    this.#timedSeq = undefined;
  }

  /**
   * An ACK of new data up to `ack`. `echoAgeMs` is the age of the TSval it echoes (our
   * timestamp clock now minus TSecr, RFC 7323 4.1), or `undefined` when it echoes none: then
   * the timed segment, if this ACK covers it, gives the sample. Returns the sample taken, in
   * microseconds (HyStart++ watches them), if any.
   */
  onAck(now: Instant, ack: SeqNum, echoAgeMs: number | undefined): number | undefined {
    if (echoAgeMs !== undefined) {
      if (echoAgeMs < 0) return undefined;
      this.sample(echoAgeMs * 1000);
      return echoAgeMs * 1000;
    }
    if (this.#timedSeq !== undefined && Seq.ge(ack, this.#timedSeq)) {
      const us = now - this.#timedAt;
      this.sample(us);
      this.#timedSeq = undefined;
      return us;
    }
    return undefined;
  }
}
