/**
 * Canonical simulation traces: one line per event, `<us> <node> <event> <detail>`, with the
 * time in integer virtual microseconds. Two runs are the same run exactly when their traces
 * are byte-identical, so tests compare digests instead of whole traces.
 *
 * The digest is 64-bit FNV-1a over the UTF-8 bytes of the lines, each terminated by `\n`. It is
 * not cryptographic; it only has to make accidental equality unlikely. (The core may not use
 * `node:crypto`.)
 */
import type { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";

/** Options of `TraceLog`. */
export interface TraceLogOptions {
  /**
   * How many of the latest lines to keep in memory (default: all). The digest always covers
   * every line ever recorded.
   */
  readonly keepLines?: number | undefined;
}

/** Collects canonical trace lines and keeps a running digest of them. */
export class TraceLog {
  readonly #lines: string[] = [];
  readonly #keep: number = 0;
  readonly #hash = new Fnv1a64();
  #count = 0;

  constructor(options: TraceLogOptions = {}) {
    const keep = options.keepLines ?? Number.POSITIVE_INFINITY;
    if (!(keep >= 0)) throw new UsageError(`keepLines must be >= 0, got ${keep}`);
    this.#keep = keep;
  }

  /** Records `<us> <node> <event> <detail>` (no trailing space when `detail` is empty). */
  record(now: Instant, node: string, event: string, detail = ""): void {
    this.add(detail === "" ? `${now} ${node} ${event}` : `${now} ${node} ${event} ${detail}`);
  }

  /** Records an already formatted line. It must not contain a newline. */
  add(line: string): void {
    if (line.includes("\n")) throw new UsageError("a trace line must not contain a newline");
    this.#hash.update(line);
    this.#hash.update("\n");
    this.#count++;
    this.#lines.push(line);
    // Trim in batches so a bounded log costs O(1) amortised per line.
    if (this.#lines.length >= 2 * this.#keep + 16) this.#lines.splice(0, this.#lines.length - this.#keep);
  }

  /** Number of lines recorded (including ones no longer kept). */
  get count(): number {
    return this.#count;
  }

  /** The kept lines, oldest first. */
  get lines(): readonly string[] {
    if (this.#keep === 0) return [];
    return this.#lines.length > this.#keep ? this.#lines.slice(-this.#keep) : this.#lines;
  }

  /** The last `n` kept lines, for failure messages. */
  tail(n: number): string[] {
    return n <= 0 ? [] : this.lines.slice(-n);
  }

  /** The kept lines as one text, each line ending in `\n`. */
  text(): string {
    return this.lines.map((l) => `${l}\n`).join("");
  }

  /** FNV-1a 64 of every line recorded so far, as 16 hex digits. */
  digest(): string {
    return this.#hash.hex();
  }
}

/**
 * Incremental 64-bit FNV-1a over UTF-8, computed in four 16-bit limbs so every intermediate is
 * an exact double (no bigint on the hot path).
 */
export class Fnv1a64 {
  // Offset basis 0xcbf29ce484222325, least significant limb first.
  #h0 = 0x2325;
  #h1 = 0x8422;
  #h2 = 0x9ce4;
  #h3 = 0xcbf2;

  /** Feeds the UTF-8 encoding of `text`. */
  update(text: string): this {
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      if (c < 0x80) {
        this.#byte(c);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate: U+FFFD, as TextEncoder does
      if (c < 0x800) {
        this.#byte(0xc0 | (c >> 6));
      } else if (c < 0x10000) {
        this.#byte(0xe0 | (c >> 12));
        this.#byte(0x80 | ((c >> 6) & 0x3f));
      } else {
        this.#byte(0xf0 | (c >> 18));
        this.#byte(0x80 | ((c >> 12) & 0x3f));
        this.#byte(0x80 | ((c >> 6) & 0x3f));
      }
      this.#byte(0x80 | (c & 0x3f));
    }
    return this;
  }

  /** Feeds raw bytes. */
  updateBytes(bytes: Uint8Array): this {
    for (const b of bytes) this.#byte(b);
    return this;
  }

  /** The hash so far as 16 lower-case hex digits. */
  hex(): string {
    const h = (x: number) => x.toString(16).padStart(4, "0");
    return h(this.#h3) + h(this.#h2) + h(this.#h1) + h(this.#h0);
  }

  /** h = (h ^ b) * 0x100000001b3 mod 2^64; the prime is 2^40 + 0x1b3. */
  #byte(b: number): void {
    const h0 = this.#h0 ^ b;
    const h1 = this.#h1;
    const h2 = this.#h2;
    const h3 = this.#h3;
    // Limb products: 0x1b3 * h_i, plus 2^40 = limb 2 shifted by 8 bits, times h0 and h1.
    const r0 = h0 * 0x1b3;
    const r1 = h1 * 0x1b3 + (r0 >>> 16);
    const r2 = h2 * 0x1b3 + (h0 << 8) + (r1 >>> 16);
    const r3 = h3 * 0x1b3 + (h1 << 8) + (r2 >>> 16);
    this.#h0 = r0 & 0xffff;
    this.#h1 = r1 & 0xffff;
    this.#h2 = r2 & 0xffff;
    this.#h3 = r3 & 0xffff;
  }
}

/** FNV-1a 64 of a string's UTF-8 bytes, as 16 hex digits. */
export function fnv1a64(text: string): string {
  return new Fnv1a64().update(text).hex();
}
