/**
 * A bottleneck: frames are serialised one at a time at a fixed bit rate through a bounded FIFO
 * queue with tail drop. A frame is forwarded when its last bit has been sent (store and
 * forward), so back-to-back frames leave spaced by `bytes * 8 / rate` seconds. With
 * `ceMarkBytes` it is also an ECN router (RFC 3168 5): an ECN-capable packet that arrives while
 * the queue holds more than that many bytes leaves marked CE instead of waiting to be dropped.
 */
import { Instant } from "../../time/instant.js";
import { ConfigError } from "../../util/errors.js";
import { Ipv4View } from "../../wire/ipv4.js";
import { Ipv6View } from "../../wire/ipv6.js";
import { ECN_CE } from "../../wire/tcp-repr.js";
import type { DropFn, FrameSink, LinkStage, StageStats } from "../frame-sink.js";
import type { Scheduler } from "../scheduler.js";

/** Configuration of `RateLimitStage`. */
export interface RateLimitConfig {
  /** Line rate in bits per second (an integer). */
  readonly bitsPerSecond: number;
  /**
   * Bound on the bytes accepted but not yet forwarded, the frame being sent included (default
   * 65536). A frame that would exceed it is dropped, unless the queue is empty.
   */
  readonly queueBytes?: number | undefined;
  /** Optional bound on the number of such frames. */
  readonly queueFrames?: number | undefined;
  /**
   * Mark CE on an ECT packet (RFC 3168 5) that arrives while more than this many bytes are
   * queued (a step threshold, as DCTCP's routers mark); not-ECT packets are never marked.
   * Default: no marking.
   */
  readonly ceMarkBytes?: number | undefined;
  /** Where the IP header starts in a frame: 0 for bare IP (default), 14 behind Ethernet. */
  readonly linkHeaderBytes?: number | undefined;
  /** Scheduler label (default `rate`). */
  readonly label?: string | undefined;
}

/** Counters of `RateLimitStage`. */
export interface RateLimitStats extends StageStats {
  /** Bytes now queued or being sent. */
  backlogBytes: number;
  /** Largest `backlogBytes` seen. */
  maxBacklogBytes: number;
  /** Bytes forwarded. */
  bytesForwarded: number;
  /** Packets marked CE (`ceMarkBytes`). */
  ceMarked: number;
}

/** Default `queueBytes`. */
export const DEFAULT_QUEUE_BYTES = 65536;

/**
 * Serialises frames at a bit rate. Time is kept exactly: the transmitter is busy until
 * `busyUs + busyFrac / bitsPerSecond` microseconds, with `0 <= busyFrac < bitsPerSecond`, and
 * a frame is forwarded at the first whole microsecond at or after its last bit, so rounding
 * never accumulates.
 */
export class RateLimitStage implements LinkStage {
  readonly kind = "rate";
  onDrop: DropFn | undefined;
  readonly stats: RateLimitStats = {
    received: 0,
    forwarded: 0,
    dropped: 0,
    backlogBytes: 0,
    maxBacklogBytes: 0,
    bytesForwarded: 0,
    ceMarked: 0,
  };
  readonly #next: FrameSink;
  readonly #sched: Scheduler;
  readonly #bps: number = 0;
  readonly #queueBytes: number = 0;
  readonly #queueFrames: number = 0;
  readonly #label: string;
  readonly #ceMarkBytes: number = 0;
  readonly #ipAt: number = 0;
  #busyUs = 0;
  #busyFrac = 0;
  #backlogFrames = 0;

  constructor(next: FrameSink, scheduler: Scheduler, config: RateLimitConfig) {
    this.#next = next;
    this.#sched = scheduler;
    const bps = config.bitsPerSecond;
    if (!(Number.isSafeInteger(bps) && bps > 0 && bps <= 1e13)) {
      throw new ConfigError(`bitsPerSecond must be a positive integer up to 1e13, got ${bps}`);
    }
    this.#bps = bps;
    this.#queueBytes = config.queueBytes ?? DEFAULT_QUEUE_BYTES;
    this.#queueFrames = config.queueFrames ?? Number.POSITIVE_INFINITY;
    if (!(this.#queueBytes > 0 && this.#queueFrames > 0)) {
      throw new ConfigError("queueBytes and queueFrames must be positive");
    }
    this.#label = config.label ?? "rate";
    this.#ceMarkBytes = config.ceMarkBytes ?? Number.POSITIVE_INFINITY;
    this.#ipAt = config.linkHeaderBytes ?? 0;
    if (!(this.#ceMarkBytes >= 0)) throw new ConfigError("ceMarkBytes must not be negative");
  }

  deliver(now: Instant, arrived: Uint8Array): void {
    this.stats.received++;
    let frame = arrived;
    const len = frame.length;
    const st = this.stats;
    if (st.backlogBytes > this.#ceMarkBytes) {
      const marked = markedCe(frame, this.#ipAt);
      if (marked !== undefined) {
        frame = marked;
        st.ceMarked++;
      }
    }
    if (
      this.#backlogFrames > 0 &&
      (st.backlogBytes + len > this.#queueBytes || this.#backlogFrames + 1 > this.#queueFrames)
    ) {
      st.dropped++; // tail drop
      this.onDrop?.(now, frame, this.kind);
      return;
    }
    // An idle transmitter starts now; a busy one starts when the previous frame's last bit left.
    if (now > this.#busyUs || (now === this.#busyUs && this.#busyFrac === 0)) {
      this.#busyUs = now;
      this.#busyFrac = 0;
    }
    // Serialisation time in units of 1/bps microseconds: len * 8 bits * 1e6 us/s (exact: < 2^53).
    const frac = this.#busyFrac + len * 8_000_000;
    this.#busyUs += Math.floor(frac / this.#bps);
    this.#busyFrac = frac % this.#bps;
    const doneAt = this.#busyUs + (this.#busyFrac > 0 ? 1 : 0);
    st.backlogBytes += len;
    this.#backlogFrames++;
    if (st.backlogBytes > st.maxBacklogBytes) st.maxBacklogBytes = st.backlogBytes;
    this.#sched.at(Instant.fromMicros(doneAt), this.#label, () => {
      st.backlogBytes -= len;
      this.#backlogFrames--;
      st.forwarded++;
      st.bytesForwarded += len;
      this.#next.deliver(this.#sched.now, frame);
    });
  }
}

/**
 * `frame` with its ECT codepoint turned into CE (RFC 3168 5), as a copy (taps before this stage
 * keep the frame as sent); undefined when it is not ECT (not-ECT is never marked, CE already
 * is) or carries no IP header at `at`.
 */
function markedCe(frame: Uint8Array, at: number): Uint8Array | undefined {
  const version = (frame[at] ?? 0) >>> 4;
  if (version === 4 && frame.length >= at + 20) {
    const ecn = Ipv4View.unchecked(frame.subarray(at)).ecn;
    if (ecn === 0 || ecn === ECN_CE) return undefined;
    const out = frame.slice();
    const ip = Ipv4View.unchecked(out.subarray(at));
    ip.ecn = ECN_CE;
    ip.fillChecksum();
    return out;
  }
  if (version === 6 && frame.length >= at + 40) {
    const tc = Ipv6View.unchecked(frame.subarray(at)).trafficClass;
    if ((tc & 3) === 0 || (tc & 3) === ECN_CE) return undefined;
    const out = frame.slice();
    const ip = Ipv6View.unchecked(out.subarray(at));
    ip.setFirstWord(tc | ECN_CE, ip.flowLabel);
    return out;
  }
  return undefined;
}
