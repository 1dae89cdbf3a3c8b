/**
 * The out-of-order queue (smoltcp's assembler idea, with the data kept as zero-copy views).
 * Positions are stream offsets (plain non-negative integers, no wrap). It holds
 * non-overlapping segments sorted by offset plus the merged list of covered ranges, and it
 * refuses an insertion that would exceed its byte or range bound, so a peer cannot make it
 * grow without limit.
 */
import { assert } from "../util/errors.js";

/** Result of `Reassembler.insert`. */
export type InsertResult = "stored" | "duplicate" | "full";

/** Bounded store of out-of-order byte ranges. */
export class Reassembler {
  readonly #maxBytes: number = 0;
  readonly #maxRanges: number = 0;
  /** Segments: parallel arrays of start offsets and data, sorted, non-overlapping. */
  #starts: number[] = [];
  #datas: Uint8Array[] = [];
  /** Covered ranges as [start0, end0, start1, end1, ...], merged, sorted. */
  #ranges: number[] = [];
  #bytes = 0;

  constructor(maxBytes: number, maxRanges: number) {
    this.#maxBytes = maxBytes;
    this.#maxRanges = maxRanges;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of disjoint ranges held. */
  get rangeCount(): number {
    return this.#ranges.length >> 1;
  }

  /** True when nothing is held. */
  get isEmpty(): boolean {
    return this.#starts.length === 0;
  }

  /** The covered ranges as [start, end) pairs, ascending. */
  ranges(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.#ranges.length; i += 2)
      out.push([this.#ranges[i] as number, this.#ranges[i + 1] as number]);
    return out;
  }

  /** The covered range containing offset `at`, or undefined. */
  rangeContaining(at: number): [number, number] | undefined {
    for (let i = 0; i < this.#ranges.length; i += 2) {
      const s = this.#ranges[i] as number; // i < length
      const e = this.#ranges[i + 1] as number; // ranges come in pairs
      if (s <= at && at < e) return [s, e];
      if (s > at) break;
    }
    return undefined;
  }

  /** Stores the parts of [start, start + data.length) not already held. */
  insert(start: number, data: Uint8Array): InsertResult {
    const end = start + data.length;
    if (data.length === 0) return "duplicate";
    // Range bookkeeping first: how many existing ranges touch [start, end)?
    const r = this.#ranges;
    let lo = 0;
    while (lo < r.length && (r[lo + 1] as number) < start) lo += 2; // first range with end >= start
    let hi = lo;
    while (hi < r.length && (r[hi] as number) <= end) hi += 2; // ranges [lo, hi) touch
    const touching = (hi - lo) >> 1;
    if (touching === 1 && (r[lo] as number) <= start && (r[lo + 1] as number) >= end) return "duplicate";
    // New bytes = the length of [start, end) minus what the touching ranges cover inside it.
    let covered = 0;
    for (let i = lo; i < hi; i += 2) {
      covered += Math.max(0, Math.min(end, r[i + 1] as number) - Math.max(start, r[i] as number));
    }
    const added = end - start - covered;
    if (this.#bytes + added > this.#maxBytes) return "full";
    if (this.rangeCount + 1 - touching > this.#maxRanges) return "full";
    const ns = touching > 0 ? Math.min(start, r[lo] as number) : start;
    const ne = touching > 0 ? Math.max(end, r[hi - 1] as number) : end;
    r.splice(lo, hi - lo, ns, ne);
    this.#bytes += added;
    // Now the segments: insert the gaps of [start, end) between existing segments.
    const st = this.#starts;
    let a = 0;
    let b = st.length;
    while (a < b) {
      const m = (a + b) >> 1;
      const ms = st[m] as number;
      if (ms + (this.#datas[m] as Uint8Array).length <= start) a = m + 1;
      else b = m;
    }
    let i = a; // first segment ending after `start`
    let cur = start;
    while (cur < end) {
      const segStart = i < st.length ? (st[i] as number) : Infinity;
      if (cur < segStart) {
        const pieceEnd = Math.min(end, segStart);
        st.splice(i, 0, cur);
        this.#datas.splice(i, 0, data.subarray(cur - start, pieceEnd - start));
        i++;
        cur = pieceEnd;
      } else {
        cur = Math.max(cur, segStart + (this.#datas[i] as Uint8Array).length);
        i++;
      }
    }
    return "stored";
  }

  /**
   * Removes everything before `at` and returns the next chunk starting exactly at `at`, if
   * held. Call repeatedly, advancing `at` by the returned length, to drain contiguous data.
   */
  pop(at: number): Uint8Array | undefined {
    const st = this.#starts;
    while (st.length > 0) {
      const s = st[0] as number;
      const d = this.#datas[0] as Uint8Array; // parallel arrays
      if (s > at) break;
      st.shift();
      this.#datas.shift();
      this.#bytes -= d.length;
      if (s + d.length > at) {
        this.#trimRanges(s + d.length);
        return d.subarray(at - s);
      }
    }
    this.#trimRanges(at);
    return undefined;
  }

  /** Drops everything (export drops the out-of-order queue, see TcpSnapshotDelegated). */
  clear(): void {
    this.#starts = [];
    this.#datas = [];
    this.#ranges = [];
    this.#bytes = 0;
  }

  /** Throws InvariantViolation when the segments and ranges disagree. */
  checkInvariants(): void {
    let total = 0;
    let prevEnd = -1;
    for (let i = 0; i < this.#starts.length; i++) {
      const s = this.#starts[i] as number;
      const len = (this.#datas[i] as Uint8Array).length;
      assert(len > 0 && s >= prevEnd, "reassembler segments overlap or are empty");
      prevEnd = s + len;
      total += len;
    }
    let rangeTotal = 0;
    for (let i = 0; i < this.#ranges.length; i += 2) {
      const s = this.#ranges[i] as number;
      const e = this.#ranges[i + 1] as number;
      assert(e > s && (i === 0 || s > (this.#ranges[i - 1] as number)), "reassembler ranges not merged");
      rangeTotal += e - s;
    }
    assert(
      total === this.#bytes && rangeTotal === total,
      () => `reassembler bytes ${total} ${rangeTotal} ${this.#bytes}`,
    );
  }

  /** Removes range coverage below `at`. */
  #trimRanges(at: number): void {
    const r = this.#ranges;
    while (r.length > 0 && (r[1] as number) <= at) r.splice(0, 2);
    if (r.length > 0 && (r[0] as number) < at) r[0] = at;
  }
}
