/**
 * Time in the core: integer microseconds, branded so an instant is never confused with a span.
 * The core never reads a clock; every time-dependent call takes `now: Instant` (2^53 us is
 * about 285 years, so plain numbers are exact).
 */
import type { Brand } from "../util/brand.js";
import { assert } from "../util/errors.js";

/** Microseconds on a monotonic clock. Zero is the start of the run. */
export type Instant = Brand<number, "Instant">;
/** A non-negative span of microseconds. */
export type Duration = Brand<number, "Duration">;

export const Instant = {
  ZERO: 0 as Instant,
  fromMicros(us: number): Instant {
    assert(Number.isSafeInteger(us) && us >= 0, () => `bad instant ${us}`);
    return us as Instant;
  },
  fromMillis(ms: number): Instant {
    return Instant.fromMicros(ms * 1000);
  },
  add: (t: Instant, d: Duration): Instant => (t + d) as Instant,
  /** `later - earlier`; asserting time never runs backwards. */
  since(later: Instant, earlier: Instant): Duration {
    assert(later >= earlier, () => `time went backwards: ${later} < ${earlier}`);
    return (later - earlier) as Duration;
  },
  /** The earlier of two optional deadlines; `undefined` means "never". */
  earliest(a: Instant | undefined, b: Instant | undefined): Instant | undefined {
    if (a === undefined) return b;
    if (b === undefined) return a;
    return a <= b ? a : b;
  },
} as const;

export const Duration = {
  ZERO: 0 as Duration,
  fromMicros(us: number): Duration {
    assert(Number.isSafeInteger(us) && us >= 0, () => `bad duration ${us}us`);
    return us as Duration;
  },
  fromMillis(ms: number): Duration {
    return Duration.fromMicros(Math.round(ms * 1000));
  },
  fromSeconds(s: number): Duration {
    return Duration.fromMicros(Math.round(s * 1_000_000));
  },
  min: (a: Duration, b: Duration): Duration => (a <= b ? a : b),
  max: (a: Duration, b: Duration): Duration => (a >= b ? a : b),
} as const;
