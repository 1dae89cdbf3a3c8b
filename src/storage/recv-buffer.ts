/**
 * The receive buffer: in-order bytes not yet read by the application, kept as zero-copy views
 * of received payloads. Reading returns views too; `readInto` copies for callers that want
 * their own buffer.
 */
import { assert } from "../util/errors.js";

const EMPTY = new Uint8Array(0);

/** A FIFO of received byte chunks. */
export class RecvBuffer {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #length = 0;

  /** Bytes readable. */
  get length(): number {
    return this.#length;
  }

  /** Appends a chunk by reference. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Up to `max` bytes from the head, as a view of one received chunk; `undefined` if empty. */
  read(max: number = Number.MAX_SAFE_INTEGER): Uint8Array | undefined {
    if (this.#length === 0 || max <= 0) return undefined;
    const c = this.#chunks[this.#head] as Uint8Array; // length > 0, so a chunk exists
    if (c.length <= max) {
      this.#chunks[this.#head] = EMPTY;
      this.#head++;
      this.#compact();
      this.#length -= c.length;
      return c;
    }
    this.#chunks[this.#head] = c.subarray(max);
    this.#length -= max;
    return c.subarray(0, max);
  }

  /** Copies up to `dst.length` bytes into `dst`; returns the count. */
  readInto(dst: Uint8Array): number {
    let n = 0;
    while (n < dst.length) {
      const c = this.read(dst.length - n);
      if (c === undefined) break;
      dst.set(c, n);
      n += c.length;
    }
    return n;
  }

  /** Drops exactly `n` bytes from the head (`n` must not exceed `length`). */
  consume(n: number): void {
    assert(n >= 0 && n <= this.#length, () => `consume ${n} of ${this.#length}`);
    let left = n;
    while (left > 0) {
      const c = this.read(left);
      if (c === undefined) break;
      left -= c.length;
    }
  }

  /** The first chunk without consuming it. */
  peek(): Uint8Array | undefined {
    return this.#length === 0 ? undefined : this.#chunks[this.#head];
  }

  /** All chunks as views (for export). */
  chunks(): Uint8Array[] {
    return this.#chunks.slice(this.#head);
  }

  #compact(): void {
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    assert(this.#head <= this.#chunks.length, "recv buffer head past end");
  }
}
