/**
 * The receive buffer: in-order bytes not yet read by the application, kept as zero-copy views
 * of received payloads. Reading returns views too; `readInto` copies for callers that want
 * their own buffer.
 *
 * Some chunks may lie in memory of a `ChunkPool` (`pushPooled`: bytes the host copied in, such
 * as a terminate's BufferedData). Such a chunk goes back to its pool once its bytes are consumed
 * by `readInto`, `consume` or `clear` (copied out or discarded). When `read` hands out a view of
 * it, the chunk instead leaves the pool (`detach`): the application may keep the view, so the
 * memory is never reused under it. `peek` and `chunks` views stay valid until their bytes are
 * consumed.
 *
 * Compaction (`compact`): a receive buffer that holds bytes for long (an offload target whose
 * host does not take them) can copy its received-segment views into whole chunks of a pool, as a
 * NIC keeps received payload in its own receive pages. Only bytes pushed since the last
 * compaction (the "tail") are copied, each byte at most once, in whole chunks: the remainder
 * below one chunk stays as views until more arrives. Compacted chunks are pooled chunks (as with
 * `pushPooled`). Views handed out earlier stay valid: the segments they show are only dropped.
 */
import { assert, UsageError } from "../util/errors.js";
import type { ChunkPool } from "./chunk-pool.js";

const EMPTY = new Uint8Array(0);

/** A FIFO of received byte chunks. */
export class RecvBuffer {
  #chunks: Uint8Array[] = [];
  /** Per chunk, whether it lies in `#pool` memory; undefined until a pooled chunk arrives. */
  #pooled!: boolean[] | undefined;
  #pool!: ChunkPool | undefined;
  #head: number = 0;
  #length: number = 0;
  /** Index of the first chunk not yet compacted (every chunk from it on is a plain push). */
  #tail: number = 0;
  /** Readable bytes in chunks at index `#tail` or later. */
  #tailBytes: number = 0;

  constructor() {
    this.reinit();
  }

  /**
   * Drops every byte (pooled chunks go back to their pool, as `clear`) and forgets the pool: a
   * new buffer's state (an engine woken by `TcpConnection.reimport`).
   */
  reinit(): void {
    if (this.#chunks.length > 0) this.clear();
    if (this.#chunks.length !== 0) this.#chunks.length = 0;
    this.#pooled = undefined;
    this.#pool = undefined;
    this.#head = 0;
    this.#length = 0;
    this.#tail = 0;
    this.#tailBytes = 0;
  }

  /** Bytes readable. */
  get length(): number {
    return this.#length;
  }

  /** Appends a chunk by reference. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#append(chunk);
    this.#pooled?.push(false);
    this.#length += chunk.length;
    this.#tailBytes += chunk.length;
  }

  /** Bytes pushed (by reference) since the last compaction and still readable. */
  get uncompacted(): number {
    return this.#tailBytes;
  }

  /**
   * Appends a chunk lying in memory handed out by `pool` (`pool.owns(chunk)`); the buffer gives
   * it back when its bytes are consumed. An empty chunk is given back at once.
   */
  pushPooled(chunk: Uint8Array, pool: ChunkPool): void {
    if (this.#pool !== undefined && this.#pool !== pool)
      throw new UsageError("a receive buffer takes chunks of one pool only");
    if (chunk.length === 0) {
      pool.give(chunk);
      return;
    }
    this.#pool = pool;
    let pooled = this.#pooled;
    if (pooled === undefined) {
      pooled = new Array<boolean>(this.#chunks.length).fill(false);
      this.#pooled = pooled;
    }
    this.#append(chunk);
    pooled.push(true);
    this.#length += chunk.length;
    // A compaction boundary: only later pushes are compacted (plain chunks before it stay views).
    this.#tail = this.#chunks.length;
    this.#tailBytes = 0;
  }

  /**
   * Copies the uncompacted bytes, in whole `pool.chunkSize` blocks, into chunks taken from
   * `pool` (one `set` per received chunk, two where it straddles a block); a remainder below one
   * block stays as views. Returns the bytes copied (0 while fewer than a block are uncompacted).
   * The buffer then holds the pool's chunks as `pushPooled` ones (one pool per buffer).
   */
  compact(pool: ChunkPool): number {
    const size = pool.chunkSize;
    if (this.#tailBytes < size) return 0;
    if (this.#pool !== undefined && this.#pool !== pool)
      throw new UsageError("a receive buffer takes chunks of one pool only");
    this.#pool = pool;
    const chunks = this.#chunks;
    let pooled = this.#pooled;
    if (pooled === undefined) {
      pooled = new Array<boolean>(chunks.length).fill(false);
      this.#pooled = pooled;
    }
    const start = Math.max(this.#tail, this.#head);
    const bytes = this.#tailBytes - (this.#tailBytes % size);
    const out: Uint8Array[] = [];
    let cur: Uint8Array | undefined;
    let used = 0;
    let left = bytes;
    let i = start;
    let rest: Uint8Array | undefined;
    while (left > 0) {
      const src = chunks[i] as Uint8Array; // left <= tail bytes, which lie in chunks[start..]
      const n = Math.min(src.length, left);
      let at = 0;
      while (at < n) {
        if (cur === undefined) {
          cur = pool.take();
          used = 0;
        }
        const k = Math.min(n - at, size - used);
        cur.set(at === 0 && k === src.length ? src : src.subarray(at, at + k), used);
        used += k;
        at += k;
        if (used === size) {
          out.push(cur);
          cur = undefined;
        }
      }
      left -= n;
      if (n < src.length) rest = src.subarray(n);
      i++;
    }
    // chunks[start, i) -> the filled blocks, then the uncopied rest of the last source.
    const after = chunks.splice(i);
    chunks.length = start;
    pooled.length = start;
    for (const o of out) {
      chunks.push(o);
      pooled.push(true);
    }
    this.#tail = chunks.length;
    if (rest !== undefined) {
      chunks.push(rest);
      pooled.push(false);
    }
    for (const a of after) {
      chunks.push(a);
      pooled.push(false);
    }
    this.#tailBytes -= bytes;
    return bytes;
  }

  /** Up to `max` bytes from the head, as a view of one received chunk; `undefined` if empty. */
  read(max: number = Number.MAX_SAFE_INTEGER): Uint8Array | undefined {
    if (this.#length === 0 || max <= 0) return undefined;
    const h = this.#head;
    const c = this.#chunks[h] as Uint8Array; // length > 0, so a chunk exists
    const pooled = this.#pooled;
    if (pooled?.[h] === true) {
      // The view outlives this call: the chunk can no longer be reused.
      pooled[h] = false;
      this.#pool?.detach(c);
    }
    if (c.length <= max) {
      this.#chunks[h] = EMPTY;
      if (h >= this.#tail) this.#tailBytes -= c.length;
      this.#head++;
      this.#length -= c.length;
      this.#compact();
      return c;
    }
    this.#chunks[h] = c.subarray(max);
    if (h >= this.#tail) this.#tailBytes -= max;
    this.#length -= max;
    return c.subarray(0, max);
  }

  /** Copies up to `dst.length` bytes into `dst`; returns the count. */
  readInto(dst: Uint8Array): number {
    return this.#take(Math.min(dst.length, this.#length), dst);
  }

  /** Drops exactly `n` bytes from the head (`n` must not exceed `length`). */
  consume(n: number): void {
    assert(n >= 0 && n <= this.#length, () => `consume ${n} of ${this.#length}`);
    this.#take(n, undefined);
  }

  /** Drops every byte (pooled chunks go back to their pool). */
  clear(): void {
    this.#take(this.#length, undefined);
  }

  /** The first chunk without consuming it. */
  peek(): Uint8Array | undefined {
    return this.#length === 0 ? undefined : this.#chunks[this.#head];
  }

  /** All chunks as views (for export). */
  chunks(): Uint8Array[] {
    return this.#chunks.slice(this.#head);
  }

  /** Takes `n` bytes (n <= length) from the head, copying them into `dst` when given. */
  #take(n: number, dst: Uint8Array | undefined): number {
    let done = 0;
    const pooled = this.#pooled;
    while (done < n) {
      const h = this.#head;
      const c = this.#chunks[h] as Uint8Array; // done < n <= length, so a chunk exists
      const k = Math.min(c.length, n - done);
      if (dst !== undefined) dst.set(k === c.length ? c : c.subarray(0, k), done);
      done += k;
      if (h >= this.#tail) this.#tailBytes -= k;
      if (k < c.length) {
        this.#chunks[h] = c.subarray(k);
        break;
      }
      this.#chunks[h] = EMPTY;
      if (pooled?.[h] === true) {
        pooled[h] = false;
        this.#pool?.give(c);
      }
      this.#head++;
    }
    this.#length -= done;
    this.#compact();
    return done;
  }

  /**
   * Adds `chunk` at the end. Into an empty list, as a list of exactly one: a first push reserves
   * 17 slots, and an engine woken at an upload (`reinit`, then its BufferedData, often one
   * chunk) kept those 152 bytes for as long as it lived (a terminate storm promoted 15 MB of them).
   */
  #append(chunk: Uint8Array): void {
    if (this.#chunks.length === 0) this.#chunks = [chunk];
    else this.#chunks.push(chunk);
  }

  #compact(): void {
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      if (this.#pooled !== undefined) this.#pooled = this.#pooled.slice(this.#head);
      this.#tail = Math.max(0, this.#tail - this.#head);
      this.#head = 0;
    }
    assert(this.#head <= this.#chunks.length, "recv buffer head past end");
  }
}
