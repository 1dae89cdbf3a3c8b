/**
 * IP fragment reassembly for the host stack: IPv4 (RFC 791 3.2) and IPv6 (RFC 8200 4.5).
 *
 * A datagram is keyed by (source, destination, protocol, identification) for IPv4 and by
 * (source, destination, identification) for IPv6. Its fragments are kept by offset until the
 * last one (More Fragments clear) has fixed the length and every byte up to it has arrived; then
 * the upper-layer data is handed back whole, in one new array.
 *
 * Rules, each counted in `ReassemblyStats`:
 * - Overlap (RFC 5722, for IPv6; applied to IPv4 too, as Linux does since 4.19): a fragment
 *   that overlaps another of the same datagram, other than an exact duplicate, discards the whole
 *   datagram, and its later fragments are discarded until it times out (the datagram's slot stays
 *   as a tombstone). An exact duplicate (same offset and length) is ignored.
 * - A datagram past 65,535 bytes of upper-layer data, a non-last fragment whose length is not a
 *   multiple of 8 (RFC 8200 4.5), or a fragment past a known end is malformed: the datagram goes.
 * - Memory: at most `maxBytes` of fragment data and `maxDatagrams` datagrams are held; making room
 *   evicts the oldest datagram (as Linux's frag queues do), so a flood of incomplete datagrams can
 *   delay reassembly but never grow the table or starve it forever.
 * - Time: a datagram not complete `timeoutUs` after its first fragment is dropped (RFC 791
 *   suggests 15 s, Linux waits 30 s for IPv4; RFC 8200 says 60 s for IPv6). Expiry is checked on
 *   every fragment (no timer of its own: the memory bound holds without one). No ICMP Time
 *   Exceeded is sent.
 */
import type { Instant } from "../time/instant.js";
import { ConfigError } from "../util/errors.js";

/** Largest upper-layer datagram: the 16-bit length fields (no IPv6 jumbograms). */
export const MAX_DATAGRAM_BYTES = 65535;
/** Default bound on fragment data held (Linux's ipfrag_high_thresh). */
export const DEFAULT_REASSEMBLY_BYTES = 4 << 20;
/** Default bound on datagrams in reassembly. */
export const DEFAULT_REASSEMBLY_DATAGRAMS = 1024;
/** How long an IPv4 datagram may take (Linux's ipfrag_time; RFC 791 suggests 15 s). */
export const REASSEMBLY_TIMEOUT_V4_US = 30_000_000;
/** How long an IPv6 datagram may take (RFC 8200 4.5: 60 s). */
export const REASSEMBLY_TIMEOUT_V6_US = 60_000_000;

/** Limits of a `FragmentReassembler`. */
export interface ReassemblyLimits {
  /** Fragment data held at most, in bytes (default 4 MiB, Linux's ipfrag_high_thresh). */
  readonly maxBytes?: number | undefined;
  /** Datagrams in reassembly at most (default 1024). */
  readonly maxDatagrams?: number | undefined;
  /** Microseconds a datagram may take (default 30 s; the stack gives IPv6 its own 60 s). */
  readonly timeoutUs?: number | undefined;
}

/** Counters of a reassembler (they only grow). */
export interface ReassemblyStats {
  fragmentsIn: number;
  /** Datagrams completed and handed on. */
  reassembled: number;
  /** Exact duplicate fragments, ignored. */
  duplicates: number;
  /** Datagrams discarded for an overlap (RFC 5722), and fragments of them that came later. */
  overlaps: number;
  /** Datagrams discarded as malformed (too long, a ragged middle fragment, past the end). */
  malformed: number;
  /** Datagrams dropped unfinished after the timeout. */
  timeouts: number;
  /** Datagrams evicted to stay within the memory bounds. */
  evicted: number;
}

/** One fragment as the stack hands it over. */
export interface Fragment {
  /** The datagram's key (addresses, protocol, identification), built by the caller. */
  readonly key: string;
  /** Offset of `data` in the upper-layer datagram, in bytes. */
  readonly offset: number;
  /** More Fragments: this is not the last one. */
  readonly more: boolean;
  /** The fragment's data (a view; copied when kept). */
  readonly data: Uint8Array;
}

interface Datagram {
  readonly first: Instant;
  /** Pieces sorted by offset, never overlapping. */
  readonly pieces: { readonly offset: number; readonly data: Uint8Array }[];
  /** Length of the whole datagram, once the last fragment came. */
  total: number | undefined;
  bytes: number;
  /** Discarded for an overlap: later fragments go too, until the timeout. */
  dead: boolean;
}

/** Reassembles fragmented IP datagrams within fixed memory and time bounds. */
export class FragmentReassembler {
  readonly stats: ReassemblyStats = {
    fragmentsIn: 0,
    reassembled: 0,
    duplicates: 0,
    overlaps: 0,
    malformed: 0,
    timeouts: 0,
    evicted: 0,
  };
  readonly #maxBytes: number = 0;
  readonly #maxDatagrams: number = 0;
  readonly #timeoutUs: number = 0;
  /** In arrival order of each datagram's first fragment (a Map keeps insertion order). */
  readonly #datagrams = new Map<string, Datagram>();
  #bytes = 0;

  constructor(limits: ReassemblyLimits = {}) {
    this.#maxBytes = limits.maxBytes ?? DEFAULT_REASSEMBLY_BYTES;
    this.#maxDatagrams = limits.maxDatagrams ?? DEFAULT_REASSEMBLY_DATAGRAMS;
    this.#timeoutUs = limits.timeoutUs ?? REASSEMBLY_TIMEOUT_V4_US;
    if (!(this.#maxBytes >= MAX_DATAGRAM_BYTES && this.#maxDatagrams >= 1 && this.#timeoutUs > 0))
      throw new ConfigError(
        "reassembly limits: maxBytes at least 65535, maxDatagrams at least 1, a positive timeout",
      );
  }

  /** Fragment data held now, in bytes. */
  get heldBytes(): number {
    return this.#bytes;
  }

  /** Datagrams in reassembly now (tombstones included). */
  get datagrams(): number {
    return this.#datagrams.size;
  }

  /** Takes one fragment; returns the whole upper-layer datagram when this one completed it. */
  add(now: Instant, f: Fragment): Uint8Array | undefined {
    this.stats.fragmentsIn++;
    this.#expire(now);
    const end = f.offset + f.data.length;
    let d = this.#datagrams.get(f.key);
    if (d?.dead === true) {
      this.stats.overlaps++;
      return undefined;
    }
    if (end > MAX_DATAGRAM_BYTES || (f.more && f.data.length % 8 !== 0) || (f.more && f.data.length === 0)) {
      if (d !== undefined) this.#drop(f.key, d);
      this.stats.malformed++;
      return undefined;
    }
    if (d === undefined) {
      this.#makeRoom(f.data.length);
      d = { first: now, pieces: [], total: undefined, bytes: 0, dead: false };
      this.#datagrams.set(f.key, d);
    } else {
      this.#makeRoom(f.data.length, f.key);
    }
    // The last fragment fixes the length; anything past it, or a second different end, is malformed.
    if (!f.more) {
      if (
        (d.total !== undefined && d.total !== end) ||
        d.pieces.some((p) => p.offset + p.data.length > end)
      ) {
        this.#drop(f.key, d);
        this.stats.malformed++;
        return undefined;
      }
      d.total = end;
    } else if (d.total !== undefined && end > d.total) {
      this.#drop(f.key, d);
      this.stats.malformed++;
      return undefined;
    }
    // Sorted insert with the RFC 5722 overlap rule.
    let at = d.pieces.length;
    for (let i = 0; i < d.pieces.length; i++) {
      const p = d.pieces[i] as (typeof d.pieces)[number]; // i < length
      const pEnd = p.offset + p.data.length;
      if (p.offset === f.offset && pEnd === end) {
        this.stats.duplicates++;
        return undefined;
      }
      if (f.offset < pEnd && p.offset < end) {
        this.#kill(d);
        return undefined;
      }
      if (p.offset > f.offset) {
        at = i;
        break;
      }
    }
    d.pieces.splice(at, 0, { offset: f.offset, data: f.data.slice() });
    d.bytes += f.data.length;
    this.#bytes += f.data.length;
    return this.#complete(f.key, d);
  }

  /** The datagram when it has every byte up to its known end. */
  #complete(key: string, d: Datagram): Uint8Array | undefined {
    if (d.total === undefined) return undefined;
    let next = 0;
    for (const p of d.pieces) {
      if (p.offset !== next) return undefined;
      next += p.data.length;
    }
    if (next !== d.total) return undefined;
    const out = new Uint8Array(d.total);
    for (const p of d.pieces) out.set(p.data, p.offset);
    this.#drop(key, d);
    this.stats.reassembled++;
    return out;
  }

  /** RFC 5722: the datagram goes, and stays gone (a tombstone holding no data) until it times out. */
  #kill(d: Datagram): void {
    this.stats.overlaps++;
    this.#bytes -= d.bytes;
    d.bytes = 0;
    d.pieces.length = 0;
    d.dead = true;
  }

  #drop(key: string, d: Datagram): void {
    this.#bytes -= d.bytes;
    this.#datagrams.delete(key);
  }

  /** Drops datagrams older than the timeout (the oldest come first in the map). */
  #expire(now: Instant): void {
    for (const [key, d] of this.#datagrams) {
      if (now - d.first < this.#timeoutUs) return;
      this.#drop(key, d);
      if (!d.dead) this.stats.timeouts++;
    }
  }

  /** Evicts the oldest datagrams (never `keep`) until `bytes` more and one more datagram fit. */
  #makeRoom(bytes: number, keep?: string): void {
    for (const [key, d] of this.#datagrams) {
      const fits =
        this.#bytes + bytes <= this.#maxBytes &&
        (keep !== undefined || this.#datagrams.size < this.#maxDatagrams);
      if (fits) return;
      if (key === keep) continue;
      this.#drop(key, d);
      this.stats.evicted++;
    }
  }
}
