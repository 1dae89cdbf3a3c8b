/**
 * Receive queues with an RSS indirection table in front of the software target (spec 15.4).
 *
 * Theory of operation
 * - A frame enters `enqueue(frame)`; its connection key and RSS hash come from the caller's
 *   `classify` (the target uses the host-supplied HashValue of TCP_OFFLOAD_STATE_CONST, RS-1),
 *   and the indirection table picks the queue (hash modulo the table length).
 * - The driver (one simulated CPU per queue) drains queues in any order with `drain(q)`; the
 *   frames it returns go to `SoftwareTarget.handleFrame` in that order.
 * - RS-2: data must reach the host in the order it was received even when
 *   `setIndirectionTable` moves a connection to another queue mid-stream. Every frame gets a
 *   per-connection arrival number; a drained frame is released only when every earlier frame of
 *   its connection has been released, otherwise it is parked and released by the drain that
 *   releases its predecessor. Frames without a connection key are not ordered.
 * - Sans-I/O: no callbacks, no clocks; cost per frame O(1) amortized.
 */
import { UsageError } from "../util/errors.js";

/** How a frame is classified: its connection (undefined = not ordered) and its RSS hash. */
export interface RssClass {
  readonly key: string | undefined;
  readonly hash: number;
}

interface Queued {
  readonly frame: Uint8Array;
  readonly key: string | undefined;
  /** Arrival number within the connection. */
  readonly n: number;
}

interface Order {
  /** Next arrival number to hand out. */
  next: number;
  /** Next arrival number to release. */
  release: number;
  /** Drained frames waiting for an earlier one, by arrival number. */
  readonly parked: Map<number, Uint8Array>;
}

/** Receive queues selected by an RSS indirection table, releasing frames per connection in arrival order (RS-2). */
export class RssReceiveQueues {
  readonly #classify: (frame: Uint8Array) => RssClass;
  readonly #queues: Queued[][];
  #table: readonly number[];
  readonly #order = new Map<string, Order>();

  /** `queues` receive queues; the indirection table starts as 0, 1, ..., queues - 1. */
  constructor(queues: number, classify: (frame: Uint8Array) => RssClass) {
    if (!Number.isSafeInteger(queues) || queues < 1) throw new UsageError(`queues = ${queues}`);
    this.#classify = classify;
    this.#queues = Array.from({ length: queues }, () => []);
    this.#table = Array.from({ length: queues }, (_, i) => i);
  }

  /** OID_GEN_RECEIVE_SCALE_PARAMETERS: a new indirection table (entries are queue numbers). */
  setIndirectionTable(table: readonly number[]): void {
    if (
      table.length === 0 ||
      table.some((q) => !Number.isSafeInteger(q) || q < 0 || q >= this.#queues.length)
    )
      throw new UsageError("indirection table entries must name existing queues");
    this.#table = [...table];
  }

  /** The queue a hash maps to under the current table. */
  queueOf(hash: number): number {
    return this.#table[(hash >>> 0) % this.#table.length] as number; // non-empty table
  }

  /** A received frame; returns the queue it went to. */
  enqueue(frame: Uint8Array): number {
    const { key, hash } = this.#classify(frame);
    let n = 0;
    if (key !== undefined) {
      let o = this.#order.get(key);
      if (o === undefined) {
        o = { next: 0, release: 0, parked: new Map() };
        this.#order.set(key, o);
      }
      n = o.next++;
    }
    const q = this.queueOf(hash);
    (this.#queues[q] as Queued[]).push({ frame, key, n }); // q < queues
    return q;
  }

  /** Frames waiting in queue `q`. */
  depth(q: number): number {
    return this.#queues[q]?.length ?? 0;
  }

  /**
   * Drains queue `q` (one CPU's turn): the frames that may go to the target now, in the order
   * they must be processed. RS-2: a frame whose connection has an earlier frame still queued
   * elsewhere is parked, and comes out right after that frame in a later drain.
   */
  drain(q: number): Uint8Array[] {
    const queue = this.#queues[q];
    if (queue === undefined) throw new UsageError(`no queue ${q}`);
    const items = queue.splice(0);
    const out: Uint8Array[] = [];
    for (const it of items) {
      if (it.key === undefined) {
        out.push(it.frame);
        continue;
      }
      const o = this.#order.get(it.key) as Order; // created at enqueue, removed only when idle
      if (it.n !== o.release) {
        o.parked.set(it.n, it.frame); // RS-2: an earlier frame is still in another queue
        continue;
      }
      out.push(it.frame);
      o.release++;
      for (let f = o.parked.get(o.release); f !== undefined; f = o.parked.get(o.release)) {
        o.parked.delete(o.release);
        out.push(f);
        o.release++;
      }
      if (o.release === o.next) this.#order.delete(it.key); // nothing outstanding
    }
    return out;
  }
}
