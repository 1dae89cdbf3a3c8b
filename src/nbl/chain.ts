/**
 * Helpers over buffer chains: the data of one or more NBLs, as their NET_BUFFERs in order.
 *
 * A `BufferChain` is what `ledger.view(chain, who, op)` returns: the NB descriptors of every NBL of
 * the chain, first to last. Its bytes are the concatenation of each NB's data window. All helpers
 * are zero-copy (they return views or new descriptors over the same bytes) unless the name says
 * "copy" (`copyOut`, `toBytes`). `advance` mutates the NB descriptors in place, as
 * NdisAdvanceNetBufferDataStart does; `split` and `concat` leave their inputs untouched.
 *
 * Chimney digest §7.6 (SndUna/SndNxt/SndMax map to byte offsets into the send chain), §11.7/TM-20
 * (the host copies BufferedData into its own buffers), §13.5 (send completion advances NBs).
 */
import { assert, UsageError } from "../util/errors.js";
import {
  advanceNetBuffer,
  cloneNetBuffer,
  mdlChain,
  netBuffer,
  type NetBuffer,
  type NetBufferList,
} from "./nbl.js";

/** The NBs of a chain of NBLs, in order. Their `next` links are not followed; array order rules. */
export type BufferChain = readonly NetBuffer[];

/** Total data bytes of the chain (sum of every NB's `dataLength`). */
export function chainLength(chain: BufferChain): number {
  let total = 0;
  for (const nb of chain) total += nb.dataLength;
  return total;
}

/**
 * Calls `fn(bytes, start, end)` for each contiguous piece of the chain's bytes
 * `[offset, offset + length)`, in order, without allocating: the piece is `bytes[start, end)`.
 * Empty pieces are skipped. Throws `UsageError` if the range is outside the chain.
 */
export function forEachSegment(
  chain: BufferChain,
  offset: number,
  length: number,
  fn: (bytes: Uint8Array, start: number, end: number) => void,
): void {
  checkRange(chain, offset, length);
  let skip = offset;
  let left = length;
  for (let i = 0; i < chain.length && left > 0; i++) {
    const nb = chain[i] as NetBuffer; // i < length
    if (skip >= nb.dataLength) {
      skip -= nb.dataLength;
      continue;
    }
    let nbLeft = nb.dataLength - skip;
    let m = nb.currentMdl;
    let off = nb.currentMdlOffset + skip;
    skip = 0;
    while (m !== null && off >= m.length) {
      off -= m.length;
      m = m.next;
    }
    while (left > 0 && nbLeft > 0 && m !== null) {
      const avail = Math.min(m.length - off, nbLeft, left);
      if (avail > 0) {
        const start = m.offset + off;
        fn(m.bytes, start, start + avail);
      }
      left -= avail;
      nbLeft -= avail;
      off = 0;
      m = m.next;
    }
  }
  assert(left === 0, NB_OVERRUN);
}

/**
 * The chain's bytes `[offset, offset + length)` as views (`subarray`), one per MDL piece, in an
 * array (a generator cost a terminate storm's host 300 bytes of garbage per connection).
 */
export function segments(chain: BufferChain, offset = 0, length?: number): Uint8Array[] {
  // Most chains are one piece: an array of exactly one (a first push reserves 17 slots).
  let first: Uint8Array | undefined;
  let out: Uint8Array[] | undefined;
  let left = length ?? chainLength(chain) - offset;
  checkRange(chain, offset, left);
  let skip = offset;
  for (let i = 0; i < chain.length && left > 0; i++) {
    const nb = chain[i] as NetBuffer; // i < length
    if (skip >= nb.dataLength) {
      skip -= nb.dataLength;
      continue;
    }
    let nbLeft = nb.dataLength - skip;
    let m = nb.currentMdl;
    let off = nb.currentMdlOffset + skip;
    skip = 0;
    while (m !== null && off >= m.length) {
      off -= m.length;
      m = m.next;
    }
    while (left > 0 && nbLeft > 0 && m !== null) {
      const avail = Math.min(m.length - off, nbLeft, left);
      if (avail > 0) {
        const piece = avail === m.length ? m.view : m.view.subarray(off, off + avail);
        if (first === undefined) first = piece;
        else if (out === undefined) out = [first, piece];
        else out.push(piece);
      }
      left -= avail;
      nbLeft -= avail;
      off = 0;
      m = m.next;
    }
  }
  assert(left === 0, NB_OVERRUN);
  return out ?? (first === undefined ? [] : [first]);
}

/**
 * Copies the chain's bytes `[offset, offset + length)` into `dest` at `destOffset` (a copy), with one
 * `Uint8Array.prototype.set` per MDL piece. This is how the host copies `BufferedData` or an
 * indication into its own buffer, and how the target gathers a segment's payload.
 */
export function copyOut(
  chain: BufferChain,
  offset: number,
  dest: Uint8Array,
  destOffset: number,
  length: number,
): void {
  if (!Number.isSafeInteger(destOffset) || destOffset < 0 || destOffset + length > dest.length) {
    throw new UsageError(
      `copyOut of ${length} bytes at ${destOffset} overruns a ${dest.length}-byte destination`,
    );
  }
  checkRange(chain, offset, length);
  let skip = offset;
  let left = length;
  let to = destOffset;
  for (let i = 0; i < chain.length && left > 0; i++) {
    const nb = chain[i] as NetBuffer; // i < length
    if (skip >= nb.dataLength) {
      skip -= nb.dataLength;
      continue;
    }
    let nbLeft = nb.dataLength - skip;
    let m = nb.currentMdl;
    let off = nb.currentMdlOffset + skip;
    skip = 0;
    while (m !== null && off >= m.length) {
      off -= m.length;
      m = m.next;
    }
    while (left > 0 && nbLeft > 0 && m !== null) {
      let avail = m.length - off;
      if (avail > nbLeft) avail = nbLeft;
      if (avail > left) avail = left;
      if (avail === m.length) {
        dest.set(m.view, to); // a whole MDL: its cached view, no allocation
      } else if (avail <= SMALL_COPY) {
        // A short piece is cheaper to copy by hand than to wrap in a subarray for `set`.
        const src = m.view;
        for (let k = 0; k < avail; k++) dest[to + k] = src[off + k] as number; // off + k < m.length
      } else {
        dest.set(m.view.subarray(off, off + avail), to);
      }
      to += avail;
      left -= avail;
      nbLeft -= avail;
      off = 0;
      m = m.next;
    }
  }
  assert(left === 0, NB_OVERRUN);
}

/** The chain's bytes as one new array (a copy). */
export function toBytes(chain: BufferChain): Uint8Array {
  const out = new Uint8Array(chainLength(chain));
  copyOut(chain, 0, out, 0, out.length);
  return out;
}

/**
 * Splits the chain at byte `at` into the bytes before and from `at`, as two chains of new NB
 * descriptors sharing the original MDLs and bytes (no copy). The input is not modified.
 * Empty NBs before `at` go left; an NB straddling `at` is cut in two.
 */
export function split(chain: BufferChain, at: number): [BufferChain, BufferChain] {
  checkRange(chain, 0, at);
  const left: NetBuffer[] = [];
  const right: NetBuffer[] = [];
  let pos = 0;
  for (const nb of chain) {
    const end = pos + nb.dataLength;
    if (pos >= at) {
      right.push(cloneNetBuffer(nb));
    } else if (end <= at) {
      left.push(cloneNetBuffer(nb));
    } else {
      const head = cloneNetBuffer(nb);
      head.dataLength = at - pos;
      const tail = cloneNetBuffer(nb);
      advanceNetBuffer(tail, at - pos);
      left.push(head);
      right.push(tail);
    }
    pos = end;
  }
  return [linkNetBuffers(left), linkNetBuffers(right)];
}

/** The chains one after another, as new NB descriptors over the same bytes (no copy). */
export function concat(...chains: BufferChain[]): BufferChain {
  const out: NetBuffer[] = [];
  for (const chain of chains) for (const nb of chain) out.push(cloneNetBuffer(nb));
  return linkNetBuffers(out);
}

/** A chain of one NB whose MDL chain has one MDL per array, in order (views; no copy). */
export function fromArrays(arrays: readonly Uint8Array[]): BufferChain {
  return [netBuffer(mdlChain(arrays))];
}

/**
 * Drops `n` bytes from the front of the chain in place (NdisAdvanceNetBufferDataStart on each NB in
 * turn), as send completion retires acknowledged data. Fully consumed NBs stay, with `dataLength` 0.
 */
export function advance(chain: BufferChain, n: number): void {
  checkRange(chain, 0, n);
  let left = n;
  for (let i = 0; i < chain.length && left > 0; i++) {
    const nb = chain[i] as NetBuffer; // i < length
    const take = nb.dataLength < left ? nb.dataLength : left;
    advanceNetBuffer(nb, take);
    left -= take;
  }
}

/** Sets each NB's `next` to the following one (the last gets `null`) and returns the same array. */
export function linkNetBuffers(nbs: NetBuffer[]): NetBuffer[] {
  for (let i = 0; i < nbs.length; i++) (nbs[i] as NetBuffer).next = nbs[i + 1] ?? null; // i < length
  return nbs;
}

/** The NBLs of a chain, following `next` (stops at `limit` links, to survive a looping chain). */
export function nblArray(chain: NetBufferList | null, limit = Number.MAX_SAFE_INTEGER): NetBufferList[] {
  const out: NetBufferList[] = [];
  for (let n = chain; n !== null && out.length < limit; n = n.next) out.push(n);
  return out;
}

/** How many NBLs a chain links (no loop check: for chains the caller built or verified). */
export function nblCount(chain: NetBufferList | null): number {
  let count = 0;
  for (let n = chain; n !== null; n = n.next) count++;
  return count;
}

/**
 * `f` of each NBL of a chain, in order, in a list made at its final size (an empty list grown by
 * `push` takes room for 16 items at once; the chains that cross threads are mostly one NBL).
 */
export function mapNbls<T>(chain: NetBufferList | null, f: (n: NetBufferList) => T): T[] {
  const out = new Array<T>(nblCount(chain));
  let i = 0;
  for (let n = chain; n !== null; n = n.next) out[i++] = f(n);
  return out;
}

/**
 * Links NBLs into one chain in the given order (each `next` to the following one, the last to
 * `null`) and returns its head, or `null` for none. This is how an offload target gathers NBLs from
 * several calls into one completion (SD-6) or returns send NBLs at terminate in order (TM-14).
 * It writes `next`, so the caller must own every NBL.
 */
export function linkNbls(nbls: readonly NetBufferList[]): NetBufferList | null {
  for (let i = 0; i < nbls.length; i++) (nbls[i] as NetBufferList).next = nbls[i + 1] ?? null; // i < length
  return nbls[0] ?? null;
}

/** Throws `UsageError` unless `[offset, offset + length)` lies inside the chain's data. */
function checkRange(chain: BufferChain, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new UsageError(`bad chain range [${offset}, +${length})`);
  }
  const total = chainLength(chain);
  if (offset + length > total) {
    throw new UsageError(`chain range [${offset}, +${length}) outside ${total} bytes`);
  }
}

/** Every NB window lies inside its MDL chain (see `netBuffer`), so a walk never runs out of MDLs. */
const NB_OVERRUN = "a NET_BUFFER's data window runs past the end of its MDL chain";

/** Pieces at most this long are copied byte by byte (see `copyOut`). */
const SMALL_COPY = 16;
