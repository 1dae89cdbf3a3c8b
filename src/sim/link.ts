/**
 * Link builder: turns a declarative fault profile into a chain of middleware stages, one chain
 * per direction. Stages that a profile does not configure are not inserted, so a clean link
 * costs nothing per frame.
 *
 * Order of a chain, sender to receiver:
 *   tx taps -> mtu -> rate -> loss -> burst loss -> duplicate -> corrupt -> reorder -> delay
 *   -> jitter -> rx taps -> receiver
 * so oversize frames die at the sender's interface, the bottleneck queue sees every frame the
 * sender emits, and faults act on frames in flight.
 *
 * Randomness: each chain forks its own stream from the builder's `prng` and then one stream per
 * random stage kind, ALWAYS in the same order and whether or not the stage is configured.
 * Enabling loss therefore never changes which frames get corrupted.
 */
import type { Instant } from "../time/instant.js";
import type { PcapWriter } from "../wire/pcap.js";
import type { FrameSink, LinkStage, StageStats } from "./frame-sink.js";
import type { Prng } from "./prng.js";
import type { Scheduler } from "./scheduler.js";
import { type CorruptConfig, CorruptStage } from "./stages/corrupt.js";
import { DelayStage, JitterStage } from "./stages/delay.js";
import { DuplicateStage } from "./stages/duplicate.js";
import { type GilbertElliottConfig, GilbertElliottStage, LossStage } from "./stages/loss.js";
import { MtuStage } from "./stages/mtu.js";
import { RateLimitStage } from "./stages/rate-limit.js";
import { ReorderStage } from "./stages/reorder.js";
import { type FrameTraceFn, PcapTapStage, TraceStage } from "./stages/tap.js";

/** What can go wrong on one direction of a link. Every field is optional; absent means "clean". */
export interface FaultProfile {
  /** Fixed one-way latency, microseconds. */
  readonly delayUs?: number | undefined;
  /** Random extra latency, uniform in [0, jitterUs] microseconds. */
  readonly jitterUs?: number | undefined;
  /** Whether jitter may reorder frames (default false: order kept). */
  readonly jitterReorders?: boolean | undefined;
  /** Independent loss probability per frame. */
  readonly loss?: number | undefined;
  /** Gilbert-Elliott burst loss. */
  readonly burstLoss?: GilbertElliottConfig | undefined;
  /** Probability that a frame is delivered twice. */
  readonly duplicate?: number | undefined;
  /** Hold some frames back so later ones overtake them. */
  readonly reorder?:
    | {
        readonly rate: number;
        readonly holdFrames?: number | undefined;
        readonly holdUs?: number | undefined;
      }
    | undefined;
  /** Corruption probability per frame, or the full corruption config. */
  readonly corrupt?: number | CorruptConfig | undefined;
  /** Bottleneck line rate, bits per second. */
  readonly rateBps?: number | undefined;
  /** Bottleneck queue bound in bytes (default 65536); only with `rateBps`. */
  readonly queueBytes?: number | undefined;
  /** Bottleneck queue bound in frames; only with `rateBps`. */
  readonly queueFrames?: number | undefined;
  /** The bottleneck marks ECT packets CE above this many queued bytes (RFC 3168); only with `rateBps`. */
  readonly ceMarkBytes?: number | undefined;
  /** Largest link payload; larger frames are dropped and counted. */
  readonly mtu?: number | undefined;
  /** Link header bytes not counted against the MTU (14 for Ethernet; default 0). */
  readonly linkHeaderBytes?: number | undefined;
}

/** Where on a chain a tap sits: as sent (`tx`, before any fault) or as received (`rx`). */
export type TapPoint = "tx" | "rx";

/** Options shared by `buildLinkChain` and `buildDuplexLink`. */
export interface LinkTapOptions {
  /** Capture every frame of the chain into this writer. */
  readonly pcap?: PcapWriter | undefined;
  /** Where the pcap tap sits (default `tx`). */
  readonly pcapAt?: TapPoint | undefined;
  /** Call this for every frame, e.g. to print tcpdump-style lines. */
  readonly onFrame?: FrameTraceFn | undefined;
  /** Where the tracer sits (default `rx`). */
  readonly traceAt?: TapPoint | undefined;
  /** Call this for every frame a stage discards (loss, burst loss, MTU, bottleneck tail drop). */
  readonly onDrop?: ((now: Instant, direction: string, frame: Uint8Array, stage: string) => void) | undefined;
}

/** Options of `buildLinkChain`. */
export interface LinkChainOptions extends LinkTapOptions {
  readonly scheduler: Scheduler;
  /** The chain forks its streams from this one (exactly one fork). */
  readonly prng: Prng;
  readonly profile: FaultProfile;
  /** Direction label, e.g. `a>b`; used in traces and scheduler labels. */
  readonly direction: string;
}

/** A snapshot of a chain's counters, keyed by stage kind. */
export type ChainStats = Record<string, StageStats>;

/** One direction of a link: the entry sink plus its stages. */
export class LinkChain implements FrameSink {
  /** Direction label. */
  readonly direction: string;
  /** Stages in the order frames pass them. */
  readonly stages: readonly LinkStage[];
  readonly #entry: FrameSink;

  constructor(direction: string, entry: FrameSink, stages: readonly LinkStage[]) {
    this.direction = direction;
    this.#entry = entry;
    this.stages = stages;
  }

  deliver(now: Instant, frame: Uint8Array): void {
    this.#entry.deliver(now, frame);
  }

  /** A copy of every stage's counters (safe to keep and compare). */
  stats(): ChainStats {
    const out: ChainStats = {};
    for (const s of this.stages) out[s.kind] = { ...s.stats };
    return out;
  }

  /** The stage of this kind, if the chain has one. */
  stage(kind: string): LinkStage | undefined {
    return this.stages.find((s) => s.kind === kind);
  }

  /** Releases frames held by a reorder stage (they still pass the stages after it). */
  flush(now: Instant): void {
    for (const s of this.stages) if (s instanceof ReorderStage) s.flush(now);
  }
}

/** Builds one direction: frames given to the result reach `dest` after the profile's faults. */
export function buildLinkChain(dest: FrameSink, options: LinkChainOptions): LinkChain {
  const { scheduler, profile: p, direction } = options;
  const root = options.prng.fork();
  // Fixed fork order, one stream per random stage kind, whether configured or not.
  const rngLoss = root.fork();
  const rngBurst = root.fork();
  const rngDup = root.fork();
  const rngCorrupt = root.fork();
  const rngReorder = root.fork();
  const rngJitter = root.fork();

  // Built back to front; `stages` collects them front to back.
  const stages: LinkStage[] = [];
  let next: FrameSink = dest;
  const add = (s: LinkStage): void => {
    stages.unshift(s);
    next = s;
  };
  const taps = (at: TapPoint): void => {
    // The tracer is outermost at tx and innermost at rx, so it sees exactly what crosses.
    if (options.pcap !== undefined && (options.pcapAt ?? "tx") === at)
      add(new PcapTapStage(next, options.pcap));
    if (options.onFrame !== undefined && (options.traceAt ?? "rx") === at) {
      add(new TraceStage(next, { direction, onFrame: options.onFrame }));
    }
  };

  taps("rx");
  if (p.jitterUs !== undefined && p.jitterUs > 0) {
    add(
      new JitterStage(next, scheduler, rngJitter, {
        jitterUs: p.jitterUs,
        reorder: p.jitterReorders,
        label: `${direction} jitter`,
      }),
    );
  }
  if (p.delayUs !== undefined && p.delayUs > 0) {
    add(new DelayStage(next, scheduler, { delayUs: p.delayUs, label: `${direction} delay` }));
  }
  if (p.reorder !== undefined && p.reorder.rate > 0) {
    add(new ReorderStage(next, scheduler, rngReorder, { ...p.reorder, label: `${direction} reorder` }));
  }
  if (p.corrupt !== undefined) {
    const cfg = typeof p.corrupt === "number" ? { rate: p.corrupt } : p.corrupt;
    if (cfg.rate > 0) add(new CorruptStage(next, rngCorrupt, cfg));
  }
  if (p.duplicate !== undefined && p.duplicate > 0)
    add(new DuplicateStage(next, rngDup, { rate: p.duplicate }));
  if (p.burstLoss !== undefined) add(new GilbertElliottStage(next, rngBurst, p.burstLoss));
  if (p.loss !== undefined && p.loss > 0) add(new LossStage(next, rngLoss, { rate: p.loss }));
  if (p.rateBps !== undefined) {
    add(
      new RateLimitStage(next, scheduler, {
        bitsPerSecond: p.rateBps,
        queueBytes: p.queueBytes,
        queueFrames: p.queueFrames,
        ceMarkBytes: p.ceMarkBytes,
        linkHeaderBytes: p.linkHeaderBytes,
        label: `${direction} rate`,
      }),
    );
  }
  if (p.mtu !== undefined) add(new MtuStage(next, { mtu: p.mtu, linkHeaderBytes: p.linkHeaderBytes }));
  taps("tx");
  const onDrop = options.onDrop;
  if (onDrop !== undefined) {
    for (const s of stages) s.onDrop = (now, frame, stage) => onDrop(now, direction, frame, stage);
  }
  return new LinkChain(direction, next, stages);
}

/** Options of `buildDuplexLink`. */
export interface DuplexLinkOptions extends LinkTapOptions {
  readonly scheduler: Scheduler;
  /** Forked twice: first for a->b, then for b->a. */
  readonly prng: Prng;
  /** Faults from a to b, and from b to a unless `reverse` is given. */
  readonly profile: FaultProfile;
  /** Faults from b to a, if different. */
  readonly reverse?: FaultProfile | undefined;
  /** Names of the two ends (default `a`, `b`); directions are labelled `a>b` and `b>a`. */
  readonly names?: readonly [string, string] | undefined;
}

/** A link between two ends, one chain per direction. */
export class DuplexLink {
  /** Give frames sent by end a here; they reach end b. */
  readonly aToB: LinkChain;
  /** Give frames sent by end b here; they reach end a. */
  readonly bToA: LinkChain;

  constructor(aToB: LinkChain, bToA: LinkChain) {
    this.aToB = aToB;
    this.bToA = bToA;
  }

  /** Counter snapshots keyed by direction label. */
  stats(): Record<string, ChainStats> {
    return { [this.aToB.direction]: this.aToB.stats(), [this.bToA.direction]: this.bToA.stats() };
  }

  /** Releases frames held by reorder stages in both directions. */
  flush(now: Instant): void {
    this.aToB.flush(now);
    this.bToA.flush(now);
  }
}

/**
 * Builds a duplex link. `toA` and `toB` receive the frames that reach each end; they are
 * usually small closures over nodes created afterwards.
 */
export function buildDuplexLink(toA: FrameSink, toB: FrameSink, options: DuplexLinkOptions): DuplexLink {
  const [a, b] = options.names ?? ["a", "b"];
  const common = {
    scheduler: options.scheduler,
    prng: options.prng,
    pcap: options.pcap,
    pcapAt: options.pcapAt,
    onFrame: options.onFrame,
    traceAt: options.traceAt,
    onDrop: options.onDrop,
  };
  const aToB = buildLinkChain(toB, { ...common, profile: options.profile, direction: `${a}>${b}` });
  const bToA = buildLinkChain(toA, {
    ...common,
    profile: options.reverse ?? options.profile,
    direction: `${b}>${a}`,
  });
  return new DuplexLink(aToB, bToA);
}
