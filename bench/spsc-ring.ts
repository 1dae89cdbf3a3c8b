/**
 * A single-producer / single-consumer ring of fixed 4-word records in a SharedArrayBuffer, for the
 * transport measurement of worker.bench.ts. Header (Int32): [0] head (next slot to read),
 * [1] tail (next slot to write); then `slots` records. The consumer sleeps with `Atomics.wait`
 * (or `Atomics.waitAsync` on the host thread) on the tail; the producer notifies after a batch.
 */
/** `Atomics.waitAsync` (ES2024; in Node since 16), typed here: the project's lib is ES2022. */
const waitAsync = (
  Atomics as unknown as {
    readonly waitAsync: (
      a: Int32Array,
      i: number,
      v: number,
    ) => { async: boolean; value: Promise<string> | string };
  }
).waitAsync;

const HEADER = 2;
const WORDS = 4;

export class SpscRing {
  readonly #i: Int32Array;
  readonly #slots: number = 0;

  constructor(sab: SharedArrayBuffer) {
    this.#i = new Int32Array(sab);
    this.#slots = (this.#i.length - HEADER) / WORDS;
  }

  /** A buffer for a ring of `slots` records. */
  static buffer(slots: number): SharedArrayBuffer {
    return new SharedArrayBuffer((HEADER + slots * WORDS) * 4);
  }

  /** Appends a record; false when the ring is full. */
  push(rec: Int32Array): boolean {
    const i = this.#i;
    const tail = Atomics.load(i, 1);
    const head = Atomics.load(i, 0);
    if (tail - head >= this.#slots) return false;
    const at = HEADER + (tail % this.#slots) * WORDS;
    for (let w = 0; w < WORDS; w++) i[at + w] = rec[w] ?? 0;
    Atomics.store(i, 1, tail + 1);
    return true;
  }

  /** Wakes a consumer sleeping on the ring. */
  notify(): void {
    Atomics.notify(this.#i, 1);
  }

  /** Takes the next record into `rec`; false when the ring is empty. */
  pop(rec: Int32Array): boolean {
    const i = this.#i;
    const head = Atomics.load(i, 0);
    if (head === Atomics.load(i, 1)) return false;
    const at = HEADER + (head % this.#slots) * WORDS;
    for (let w = 0; w < WORDS; w++) rec[w] = i[at + w] ?? 0;
    Atomics.store(i, 0, head + 1);
    return true;
  }

  /** Blocks (worker thread) until a record is there. */
  waitForData(): void {
    const i = this.#i;
    for (let t = Atomics.load(i, 1); t === Atomics.load(i, 0); t = Atomics.load(i, 1)) Atomics.wait(i, 1, t);
  }

  /** Resolves (host thread) once a record is there. */
  async whenData(): Promise<void> {
    const i = this.#i;
    for (let t = Atomics.load(i, 1); t === Atomics.load(i, 0); t = Atomics.load(i, 1)) {
      const w = waitAsync(i, 1, t);
      if (w.async) await w.value;
    }
  }
}
