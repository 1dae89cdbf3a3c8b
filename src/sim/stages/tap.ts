/** Observation stages: a pcap tap and a tracer. Neither changes, delays or drops a frame. */
import type { Instant } from "../../time/instant.js";
import type { PcapWriter } from "../../wire/pcap.js";
import type { FrameSink, LinkStage, StageStats } from "../frame-sink.js";

/** Appends every frame to a pcap writer, stamped with the virtual time, then forwards it. */
export class PcapTapStage implements LinkStage {
  readonly kind = "pcap";
  readonly stats: StageStats = { received: 0, forwarded: 0, dropped: 0 };
  readonly #next: FrameSink;
  readonly #writer: PcapWriter;

  constructor(next: FrameSink, writer: PcapWriter) {
    this.#next = next;
    this.#writer = writer;
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    this.#writer.append(now, frame);
    this.stats.forwarded++;
    this.#next.deliver(now, frame);
  }
}

/** Receives each frame a `TraceStage` sees, with the stage's direction label. */
export type FrameTraceFn = (now: Instant, direction: string, frame: Uint8Array) => void;

/** Configuration of `TraceStage`. */
export interface TraceConfig {
  /** Direction label passed to the callback, e.g. `a>b`. */
  readonly direction: string;
  /** Called for every frame before it is forwarded. Must not keep or modify the frame. */
  readonly onFrame: FrameTraceFn;
}

/** Calls a callback with (now, direction, frame) for every frame, e.g. to print tcpdump-style lines. */
export class TraceStage implements LinkStage {
  readonly kind = "trace";
  readonly stats: StageStats = { received: 0, forwarded: 0, dropped: 0 };
  readonly #next: FrameSink;
  readonly #config: TraceConfig;

  constructor(next: FrameSink, config: TraceConfig) {
    this.#next = next;
    this.#config = config;
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    this.#config.onFrame(now, this.#config.direction, frame);
    this.stats.forwarded++;
    this.#next.deliver(now, frame);
  }
}
