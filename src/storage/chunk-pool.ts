/**
 * A pool of equal-sized byte chunks for receive buffers: memory the host copies received data
 * into (the BufferedData of a terminate, TM-20) and gets back once the application has consumed
 * the bytes, so the next copy lands in pages that are already mapped and warm instead of freshly
 * allocated ones (whose first touch faults every page).
 *
 * Ownership: `take` hands a chunk out; exactly one of `give` (the bytes were consumed by copy or
 * discarded: the chunk is reused) or `detach` (a zero-copy view of it went to the application,
 * which may keep it: the chunk leaves the pool for good) ends the loan. A chunk whose holder is
 * dropped without either is reclaimed by the garbage collector and never reused. Handing the
 * same chunk back twice, or a chunk of another pool, is a `UsageError`. Each chunk's bookkeeping
 * (loan, holds, a deferred give) is a record attached to its backing buffer, found in O(1) from
 * any view of it: no per-chunk hash-table operation on the data path.
 *
 * Memory bound: at most `maxBytes / chunkSize` idle chunks are kept; chunks given back beyond
 * that are let go. Chunks in use are bounded by what the receive buffers hold (their windows),
 * not by the pool.
 *
 * Small pieces (`piece`, at most `SMALL_PIECE_BYTES`) are carved from shared slabs rather than
 * allocated one by one (each separately allocated array costs an external allocation and GC
 * bookkeeping: a terminate storm makes thousands). They are not pool chunks: a slab is freed by
 * the garbage collector once no piece of it is referenced, so a live piece pins at most one slab.
 *
 * Holds: a chunk handed out may also be referenced by someone other than its holder (a target
 * lends views of it to the host in an NBL). `hold` records such a reference; a `give` while holds
 * remain is deferred: the chunk goes back to the idle list when the last hold is `release`d.
 *
 * `ChunkFiller` copies a sequence of byte ranges into chunks of one pool, one `set` per range
 * (two when a range straddles chunks), and yields the filled chunks as views, in order.
 */
import { UsageError } from "../util/errors.js";

/** Pieces up to this many bytes are carved from a shared slab (`ChunkPool.piece`). */
export const SMALL_PIECE_BYTES = 4096;
/** The least idle memory a receive pool keeps by default (`idlePoolBytes`). */
export const MIN_IDLE_POOL_BYTES = 1 << 20;

/**
 * Default idle bytes of a pool that holds received data (the offload manager's receive pool,
 * the target's held-data pool): one receive buffer's worth, at least `MIN_IDLE_POOL_BYTES`.
 */
export function idlePoolBytes(recvBufferSize: number): number {
  return Math.max(MIN_IDLE_POOL_BYTES, recvBufferSize);
}

/** Bytes per slab of small pieces. */
const SLAB_BYTES = 16384;

/** Counters of a pool (all only grow). */
export interface ChunkPoolStats {
  /** Chunks created (pool misses). */
  allocated: number;
  /** Takes served from the idle list (pool hits). */
  reused: number;
  /** Chunks given back and kept for reuse. */
  returned: number;
  /** Chunks given back while the idle list was full (let go). */
  dropped: number;
  /** Chunks that left the pool with a view handed to the application. */
  detached: number;
  /** Slabs created for small pieces. */
  slabs: number;
  /** Gives deferred because the chunk was held (counted again in `returned` or `dropped`). */
  deferred: number;
}

/**
 * The bookkeeping of one chunk, reachable from its backing buffer in O(1) (a property under
 * `STATE` on the ArrayBuffer, set when the chunk is created): no hash-table lookup per chunk,
 * and the record lives and dies with the chunk's memory (a chunk lost by its holder is still
 * reclaimed by the garbage collector).
 */
interface ChunkState {
  /** The pool that created the chunk. */
  readonly pool: ChunkPool;
  /** Handed out: taken and neither given back nor detached since. */
  out: boolean;
  /** Holds outstanding (references besides the holder). */
  holds: number;
  /** Given back while held: goes to the idle list with the last `release`. */
  given: Uint8Array | undefined;
}

/** The key of a chunk's `ChunkState` on its ArrayBuffer. */
const STATE: unique symbol = Symbol("chunk-pool.state");

/** A backing buffer that may carry a chunk's state. */
type Tagged = ArrayBufferLike & { [STATE]?: ChunkState };

/** The state of the chunk `view` lies in, when it lies in a chunk of any pool. */
const stateOf = (view: Uint8Array): ChunkState | undefined => (view.buffer as Tagged)[STATE];

/** Plain memory: a new array over a buffer of its own. */
function plainMemory(n: number): Uint8Array {
  return new Uint8Array(n);
}

/** A pool of `chunkSize`-byte chunks keeping at most `maxBytes` of idle chunks. */
export class ChunkPool {
  /** Bytes per chunk. */
  readonly chunkSize: number = 0;
  /** Idle chunks kept at most. */
  readonly maxFree: number = 0;
  /** Counters. */
  readonly stats: ChunkPoolStats = {
    allocated: 0,
    reused: 0,
    returned: 0,
    dropped: 0,
    detached: 0,
    slabs: 0,
    deferred: 0,
  };
  readonly #free: Uint8Array[] = [];
  /** Chunks with holds (handed out, or given back and waiting for the last `release`). */
  #held = 0;
  #slab: Uint8Array | undefined;
  #slabUsed = 0;
  readonly #memory: (n: number) => Uint8Array;

  /**
   * `memory` makes the pool's arrays, each over a buffer of its own (default: plain memory; a
   * target on its own thread gives shared memory, so what it holds crosses threads by reference).
   */
  constructor(chunkSize: number, maxBytes: number, memory: (n: number) => Uint8Array = plainMemory) {
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1)
      throw new UsageError(`chunk size ${chunkSize} is not a positive integer`);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
      throw new UsageError(`pool cap ${maxBytes} is not a non-negative integer`);
    this.chunkSize = chunkSize;
    this.maxFree = Math.floor(maxBytes / chunkSize);
    this.#memory = memory;
  }

  /** Idle chunks ready for reuse. */
  get freeChunks(): number {
    return this.#free.length;
  }

  /** Bytes held by idle chunks (at most `maxFree * chunkSize`). */
  get retainedBytes(): number {
    return this.#free.length * this.chunkSize;
  }

  /** A whole chunk (`chunkSize` bytes, contents unspecified): a reused one when any is idle. */
  take(): Uint8Array {
    let c = this.#free.pop();
    if (c === undefined) {
      c = this.#create();
      this.stats.allocated++;
    } else {
      this.stats.reused++;
    }
    (stateOf(c) as ChunkState).out = true; // every chunk of the pool has its state
    return c;
  }

  /**
   * A new `n`-byte array that is not a pool chunk (nothing to give back): carved from a shared
   * slab when `n <= SMALL_PIECE_BYTES`, else allocated alone. Contents unspecified.
   */
  piece(n: number): Uint8Array {
    if (n > SMALL_PIECE_BYTES) return this.#memory(n);
    let slab = this.#slab;
    if (slab === undefined || this.#slabUsed + n > slab.length) {
      slab = this.#memory(SLAB_BYTES);
      this.#slab = slab;
      this.#slabUsed = 0;
      this.stats.slabs++;
    }
    const at = this.#slabUsed;
    this.#slabUsed = (at + n + 15) & ~15; // pieces start 16-byte aligned
    return slab.subarray(at, at + n);
  }

  /** Whether `view` lies in a chunk of this pool that is handed out. */
  owns(view: Uint8Array): boolean {
    const s = stateOf(view);
    return s !== undefined && s.pool === this && s.out;
  }

  /** Gives back the chunk `view` lies in (any view of it): its bytes are no longer needed. */
  give(view: Uint8Array): void {
    const s = this.#end(view, "give");
    if (s.holds > 0) {
      s.given = view;
      this.stats.deferred++;
      return;
    }
    this.#reuse(view);
  }

  /**
   * Records one more reference to the handed-out chunk `view` lies in (e.g. an NBL lent to the
   * host): a `give` before the matching `release` is deferred until then.
   */
  hold(view: Uint8Array): void {
    const s = stateOf(view);
    if (s === undefined || s.pool !== this || !s.out)
      throw new UsageError("hold of a chunk that is not handed out by this pool");
    if (s.holds++ === 0) this.#held++;
  }

  /**
   * `hold` then `give` in one step, when `view` lies in a handed-out chunk of this pool: the loan
   * ends and the chunk goes back to the idle list with the matching `release`. Returns false
   * (nothing changes) for memory that is not such a chunk. For a holder that hands its chunks
   * to someone else for good (a terminate's BufferedData): one state lookup per chunk instead of
   * three (`owns`, `hold`, `give`), which counts with hundreds of chunks whose bookkeeping the
   * caches no longer hold.
   */
  holdAndGive(view: Uint8Array): boolean {
    const s = stateOf(view);
    if (s === undefined || s.pool !== this || !s.out) return false;
    s.out = false;
    if (s.holds++ === 0) this.#held++;
    s.given = view;
    this.stats.deferred++;
    return true;
  }

  /** Drops one `hold` of the chunk `view` lies in; a deferred `give` completes with the last. */
  release(view: Uint8Array): void {
    const s = stateOf(view);
    if (s === undefined || s.pool !== this || s.holds === 0)
      throw new UsageError("release of a chunk that is not held");
    if (--s.holds > 0) return;
    this.#held--;
    const given = s.given;
    if (given !== undefined) {
      s.given = undefined;
      this.#reuse(given);
    }
  }

  /** Holds outstanding (chunks referenced besides their holder). */
  get heldChunks(): number {
    return this.#held;
  }

  /** A new chunk (not handed out) with its state. */
  #create(): Uint8Array {
    const c = this.#memory(this.chunkSize);
    const s: ChunkState = { pool: this, out: false, holds: 0, given: undefined };
    (c.buffer as Tagged)[STATE] = s;
    return c;
  }

  /** The idle list takes the chunk back, or lets it go when full. */
  #reuse(view: Uint8Array): void {
    if (this.#free.length >= this.maxFree) {
      this.stats.dropped++;
      return;
    }
    this.#free.push(
      view.byteOffset === 0 && view.length === this.chunkSize ? view : new Uint8Array(view.buffer),
    );
    this.stats.returned++;
  }

  /** The chunk `view` lies in leaves the pool: whoever holds views of it keeps them valid. */
  detach(view: Uint8Array): void {
    // Holds on it stay balanced (`release` still works); with no `give` pending, none brings it back.
    this.#end(view, "detach");
    this.stats.detached++;
  }

  /**
   * Creates idle chunks until `bytes` (capped at `maxFree` chunks) are idle, writing every page
   * so later copies find them mapped. For callers that prefer paying the first-touch cost up front.
   */
  warm(bytes: number): void {
    const want = Math.min(this.maxFree, Math.ceil(bytes / this.chunkSize));
    while (this.#free.length < want) {
      const c = this.#create();
      for (let i = 0; i < c.length; i += 4096) c[i] = 1;
      this.stats.allocated++;
      this.#free.push(c);
    }
  }

  /** Ends the loan of the chunk `view` lies in; throws unless it is handed out by this pool. */
  #end(view: Uint8Array, op: string): ChunkState {
    const s = stateOf(view);
    if (s === undefined || s.pool !== this || !s.out) {
      throw new UsageError(`${op} of a chunk that is not handed out by this pool`);
    }
    s.out = false;
    return s;
  }
}

/**
 * Copies byte ranges, in order, into chunks taken from `pool` (full chunks, then the rest),
 * and collects the filled parts as views. The last chunk is a pool chunk only when at least
 * half of it gets used; a shorter remainder goes into a `piece` of exactly its size, so a few
 * bytes never pin a whole chunk.
 */
export class ChunkFiller {
  readonly #pool: ChunkPool;
  readonly #out: Uint8Array[] = [];
  /** Bytes still to write in total (decides the size of the last chunk). */
  #left: number = 0;
  #cur: Uint8Array | undefined;
  #used = 0;

  /** A filler for exactly `total` bytes. */
  constructor(pool: ChunkPool, total: number) {
    this.#pool = pool;
    this.#left = total;
  }

  /** Copies `src[start, end)` after the bytes written so far. */
  write(src: Uint8Array, start: number, end: number): void {
    this.writeView(start === 0 && end === src.length ? src : src.subarray(start, end));
  }

  /** Copies all of `src` after the bytes written so far: one `set`, two across a chunk boundary. */
  writeView(src: Uint8Array): void {
    const len = src.length;
    if (len > this.#left) throw new UsageError(`filler overrun: ${len} > ${this.#left}`);
    this.#left -= len;
    let start = 0;
    while (start < len) {
      const cur = this.#cur ?? this.#next(len - start);
      const n = Math.min(len - start, cur.length - this.#used);
      cur.set(start === 0 && n === len ? src : src.subarray(start, start + n), this.#used);
      this.#used += n;
      start += n;
      if (this.#used === cur.length) this.#close();
    }
  }

  /** The filled views, in order (call once, after exactly `total` bytes were written). */
  finish(): Uint8Array[] {
    if (this.#left !== 0) throw new UsageError(`filler finished with ${this.#left} bytes missing`);
    this.#close();
    return this.#out;
  }

  /** A new current chunk; `pending` bytes of the current write are not yet in `#left`. */
  #next(pending: number): Uint8Array {
    const size = this.#pool.chunkSize;
    const rest = this.#left + pending;
    const c = rest * 2 >= size ? this.#pool.take() : this.#pool.piece(rest);
    this.#cur = c;
    this.#used = 0;
    return c;
  }

  /** Moves the current chunk (its used part) to the output. */
  #close(): void {
    const c = this.#cur;
    if (c === undefined || this.#used === 0) return;
    this.#out.push(this.#used === c.length ? c : c.subarray(0, this.#used));
    this.#cur = undefined;
  }
}
