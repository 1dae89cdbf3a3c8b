/** MTU enforcement. */
import type { Instant } from "../../time/instant.js";
import { ConfigError } from "../../util/errors.js";
import type { DropFn, FrameSink, LinkStage, StageStats } from "../frame-sink.js";

/** Configuration of `MtuStage`. */
export interface MtuConfig {
  /** Largest packet (link payload) the link carries, in bytes. */
  readonly mtu: number;
  /** Link header bytes not counted against the MTU, e.g. 14 for Ethernet (default 0). */
  readonly linkHeaderBytes?: number | undefined;
}

/** Drops (and counts) frames whose payload exceeds the MTU, as a real link would. */
export class MtuStage implements LinkStage {
  readonly kind = "mtu";
  onDrop: DropFn | undefined;
  readonly stats: StageStats = { received: 0, forwarded: 0, dropped: 0 };
  readonly #next: FrameSink;
  /** Largest whole frame accepted: mtu plus the link header. */
  readonly #maxFrame: number = 0;

  constructor(next: FrameSink, config: MtuConfig) {
    this.#next = next;
    const hdr = config.linkHeaderBytes ?? 0;
    if (!(Number.isSafeInteger(config.mtu) && config.mtu > 0)) {
      throw new ConfigError(`mtu must be a positive integer, got ${config.mtu}`);
    }
    if (!(Number.isSafeInteger(hdr) && hdr >= 0)) {
      throw new ConfigError(`linkHeaderBytes must be a non-negative integer, got ${hdr}`);
    }
    this.#maxFrame = config.mtu + hdr;
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.stats.received++;
    if (frame.length > this.#maxFrame) {
      this.stats.dropped++;
      this.onDrop?.(now, frame, this.kind);
      return;
    }
    this.stats.forwarded++;
    this.#next.deliver(now, frame);
  }
}
