/**
 * The link abstraction: anything that accepts a frame at a virtual instant. Link faults, taps
 * and tracers are middleware stages that implement `FrameSink` and forward to the next sink,
 * so a link direction is a chain `stage -> stage -> ... -> receiver`.
 *
 * Ownership: a stage may keep a reference to a frame until it forwards it (delay, reorder, rate
 * limit), but never writes into a frame it was given. A stage that changes bytes (corruption) or
 * emits an extra copy (duplication) forwards a fresh copy.
 */
import type { Instant } from "../time/instant.js";

/** Accepts a frame at virtual time `now`. */
export interface FrameSink {
  deliver(now: Instant, frame: Uint8Array): void;
}

/** Counters every stage keeps: frames in, frames forwarded, frames dropped. */
export interface StageStats {
  /** Frames handed to this stage. */
  received: number;
  /** Frames this stage passed on (duplicates count once each). */
  forwarded: number;
  /** Frames this stage discarded. */
  dropped: number;
}

/** Told about each frame a stage discards, with the stage's kind (`loss`, `mtu`, ...). */
export type DropFn = (now: Instant, frame: Uint8Array, stage: string) => void;

/** A middleware stage of a link: a sink with a name and counters. */
export interface LinkStage extends FrameSink {
  /** Short kind name (`delay`, `loss`, ...), used as a key in stats tables. */
  readonly kind: string;
  /** Counters; the object is live (updated in place). */
  readonly stats: Readonly<StageStats>;
  /** Stages that discard frames call this for each one (set by the link builder). */
  onDrop?: DropFn | undefined;
}

/** A sink that discards everything (and counts it). */
export class NullSink implements FrameSink {
  /** Frames discarded. */
  count = 0;
  deliver(): void {
    this.count++;
  }
}

/** A frame a `CollectingSink` received, with its arrival time. */
export interface CollectedFrame {
  readonly at: Instant;
  readonly frame: Uint8Array;
}

/** A sink that keeps every frame with its arrival time, for tests and small scenarios. */
export class CollectingSink implements FrameSink {
  /** Frames in arrival order. */
  readonly frames: CollectedFrame[] = [];
  deliver(now: Instant, frame: Uint8Array): void {
    this.frames.push({ at: now, frame });
  }
}

/** Fresh zeroed counters. */
export function newStageStats(): StageStats {
  return { received: 0, forwarded: 0, dropped: 0 };
}
