/**
 * The send queue: the owner's chunks, kept by reference (zero-copy), from SND.UNA onwards.
 * `slice(offset, len)` yields a segment's payload: a subarray when the range lies in one
 * chunk, else one copy into a fresh array. Sequential slicing is O(1) amortised thanks to a
 * cursor that remembers the last chunk found.
 */
import { assert } from "../util/errors.js";

const EMPTY = new Uint8Array(0);

/** A FIFO of byte chunks addressed by offset from its head. */
export class SendQueue {
  #chunks: Uint8Array[] = [];
  /** Index of the first live chunk in `#chunks`. */
  #head: number = 0;
  /** Bytes already dropped from the first live chunk. */
  #headSkip: number = 0;
  #length: number = 0;
  /** Cursor: chunk index and the queue offset at which that chunk's live bytes start. */
  #curIdx: number = 0;
  #curOff: number = 0;

  constructor() {
    this.reinit();
  }

  /** Empties the queue: a new queue's state (an engine woken by `TcpConnection.reimport`). */
  reinit(): void {
    if (this.#chunks.length !== 0) this.#chunks.length = 0;
    this.#head = 0;
    this.#headSkip = 0;
    this.#length = 0;
    this.#curIdx = 0;
    this.#curOff = 0;
  }

  /** Bytes queued. */
  get length(): number {
    return this.#length;
  }

  /** Appends `chunk` by reference; the caller must not modify it afterwards. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Drops `n` bytes from the head (they were acknowledged). */
  drop(n: number): void {
    assert(n >= 0 && n <= this.#length, () => `drop ${n} of ${this.#length}`);
    this.#length -= n;
    while (n > 0) {
      const c = this.#chunks[this.#head] as Uint8Array; // n <= length, so a chunk exists
      const live = c.length - this.#headSkip;
      if (n < live) {
        this.#headSkip += n;
        break;
      }
      n -= live;
      this.#chunks[this.#head] = EMPTY;
      this.#head++;
      this.#headSkip = 0;
    }
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    this.#curIdx = this.#head;
    this.#curOff = 0;
  }

  /** The bytes [offset, offset + len) of the queue; a view when possible, else a copy. */
  slice(offset: number, len: number): Uint8Array {
    assert(
      offset >= 0 && len >= 0 && offset + len <= this.#length,
      () => `slice ${offset}+${len} of ${this.#length}`,
    );
    if (len === 0) return EMPTY;
    this.#seek(offset);
    let idx = this.#curIdx;
    let start = offset - this.#curOff + (idx === this.#head ? this.#headSkip : 0);
    let c = this.#chunks[idx] as Uint8Array; // #seek leaves a valid chunk index
    if (start + len <= c.length) return c.subarray(start, start + len);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = Math.min(c.length - start, len - done);
      out.set(c.subarray(start, start + n), done);
      done += n;
      idx++;
      start = 0;
      if (done < len) c = this.#chunks[idx] as Uint8Array; // bytes remain, so a chunk remains
    }
    return out;
  }

  /** The live chunks, first one trimmed, as views (for export). */
  chunks(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const c = this.#chunks[i] as Uint8Array; // i < length
      out.push(i === this.#head ? c.subarray(this.#headSkip) : c);
    }
    return out;
  }

  /** Moves the cursor to the chunk holding byte `offset`. */
  #seek(offset: number): void {
    if (offset < this.#curOff) {
      this.#curIdx = this.#head;
      this.#curOff = 0;
    }
    for (;;) {
      const c = this.#chunks[this.#curIdx] as Uint8Array; // offset < length keeps the index valid
      const live = c.length - (this.#curIdx === this.#head ? this.#headSkip : 0);
      if (offset < this.#curOff + live) return;
      this.#curOff += live;
      this.#curIdx++;
    }
  }
}
