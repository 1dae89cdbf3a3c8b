/**
 * A windowed minimum: the least sample of the last `window` microseconds, in constant space
 * (Kathleen Nichols' three-sample estimator, the one Linux keeps RTT minima with).
 *
 * RFC 8985 6.2 step 1 asks RACK for "a windowed min-filtered estimate of recent RTT measurements
 * that can adapt when migrating to significantly longer paths rather than tracking a simple
 * global minimum". A connection whose path got slower keeps the old minimum for at most one
 * window, then follows the new path.
 *
 * The estimator holds three candidates, oldest first: the best sample of the window, the best
 * since a quarter of the window after it, and the best since half. A new sample at or below the
 * best (or a window with no sample at all) restarts all three; one below a later candidate
 * replaces it and those after it. When the best ages out, the next candidate moves up; a
 * candidate that has not been refreshed for its share of the window takes the newest sample, so
 * the estimate is never older than one window.
 */
export class WindowedMin {
  readonly #window: number = 0;
  // The three candidates: time (us) and value, oldest (best) first.
  #t0 = 0;
  #v0 = Number.POSITIVE_INFINITY;
  #t1 = 0;
  #v1 = Number.POSITIVE_INFINITY;
  #t2 = 0;
  #v2 = Number.POSITIVE_INFINITY;

  /** `window`: how long a sample stays a candidate (us). */
  constructor(window: number) {
    this.#window = window;
  }

  /** The least sample of the window; Infinity before the first. */
  get value(): number {
    return this.#v0;
  }

  /** Forgets every sample. */
  reset(): void {
    this.#v0 = this.#v1 = this.#v2 = Number.POSITIVE_INFINITY;
    this.#t0 = this.#t1 = this.#t2 = 0;
  }

  /** Takes sample `v` at `now` (us; not before earlier samples) and returns the minimum. */
  update(now: number, v: number): number {
    const w = this.#window;
    if (v <= this.#v0 || now - this.#t2 > w) {
      this.#restart(now, v);
      return v;
    }
    if (v <= this.#v1) {
      this.#t1 = this.#t2 = now;
      this.#v1 = this.#v2 = v;
    } else if (v <= this.#v2) {
      this.#t2 = now;
      this.#v2 = v;
    }
    const age = now - this.#t0;
    if (age > w) {
      // The best aged out: the later candidates move up, the sample becomes the last (twice
      // when the second is too old as well).
      this.#shift(now, v);
      if (now - this.#t0 > w) this.#shift(now, v);
    } else if (this.#t1 === this.#t0 && age > w / 4) {
      // No second candidate since a quarter of the window: take this sample as one.
      this.#t1 = this.#t2 = now;
      this.#v1 = this.#v2 = v;
    } else if (this.#t2 === this.#t1 && age > w / 2) {
      this.#t2 = now;
      this.#v2 = v;
    }
    return this.#v0;
  }

  #restart(now: number, v: number): void {
    this.#t0 = this.#t1 = this.#t2 = now;
    this.#v0 = this.#v1 = this.#v2 = v;
  }

  #shift(now: number, v: number): void {
    this.#t0 = this.#t1;
    this.#v0 = this.#v1;
    this.#t1 = this.#t2;
    this.#v1 = this.#v2;
    this.#t2 = now;
    this.#v2 = v;
  }
}
