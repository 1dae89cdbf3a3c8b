/**
 * The NDIS buffer model as the chimney uses it (chimney digest §13.1, §3.4): an MDL is a window
 * onto bytes, a NET_BUFFER (NB) is a data window over a chain of MDLs, and a NET_BUFFER_LIST
 * (NBL) holds a list of NBs plus per-NBL information, and is chained to further NBLs by `next`.
 *
 * Nothing here copies bytes: every constructor wraps the caller's `Uint8Array` as a view, so a
 * write to the underlying bytes is visible through every MDL that covers them. The NBL itself is
 * only ever created by `BufferLedger.alloc` (ledger.ts), which also keeps its data private: a party
 * reaches the bytes of an NBL only through `ledger.view(chain, who, op)`, which checks ownership.
 */
import type { Brand } from "../util/brand.js";
import { UsageError } from "../util/errors.js";

/** Identity of one NET_BUFFER_LIST, unique within its ledger and never reused. */
export type NblId = Brand<number, "NblId">;

/**
 * The NBL `Status` values the chimney writes on completion (digest §13.5, §14.3, §13.7, SC-3, §19.1),
 * in the NDIS spelling so traces read like the documentation.
 */
export type NblStatus =
  | "NDIS_STATUS_SUCCESS"
  | "NDIS_STATUS_PENDING"
  | "NDIS_STATUS_FAILURE"
  | "NDIS_STATUS_REQUEST_ABORTED"
  | "NDIS_STATUS_UPLOAD_IN_PROGRESS"
  | "NDIS_STATUS_INVALID_STATE"
  | "NDIS_STATUS_REQUEST_UPLOAD"
  | "NDIS_STATUS_UPLOAD_REQUESTED";

/**
 * A memory descriptor: the window `bytes[offset, offset + length)` and the next MDL of the chain.
 * MDLs are immutable, so chains can share tails safely; `length` may be 0.
 */
export interface Mdl {
  /** The memory this MDL describes (a view; never copied). */
  readonly bytes: Uint8Array;
  /** Index of the first described byte within `bytes`. */
  readonly offset: number;
  /** Number of described bytes. */
  readonly length: number;
  /**
   * The described bytes as one view, `bytes.subarray(offset, offset + length)`, made once when the
   * MDL is built so copying a whole MDL allocates nothing (it is `bytes` itself for a whole array).
   */
  readonly view: Uint8Array;
  /** The next MDL of the chain, or `null` at its end. */
  readonly next: Mdl | null;
}

/**
 * A NET_BUFFER: the data window `[dataOffset, dataOffset + dataLength)` of the bytes described by
 * the MDL chain starting at `mdlChain`. `currentMdl`/`currentMdlOffset` cache where the first data
 * byte is (NDIS `CurrentMdl`, `CurrentMdlOffset`).
 *
 * Invariant: walking `dataOffset` bytes from the start of `mdlChain` lands on byte
 * `currentMdlOffset` of `currentMdl`, and either `currentMdl` is `null` (the window starts at the
 * end of the chain, so `dataLength` is 0) or `currentMdlOffset < currentMdl.length`.
 * Mutated only by `advanceNetBuffer` (NdisAdvanceNetBufferDataStart).
 */
export interface NetBuffer {
  /** First MDL of the chain (NDIS `MdlChain`). */
  readonly mdlChain: Mdl | null;
  /** The MDL holding the first data byte (NDIS `CurrentMdl`). */
  currentMdl: Mdl | null;
  /** Offset of the first data byte within `currentMdl`'s window (NDIS `CurrentMdlOffset`). */
  currentMdlOffset: number;
  /** Offset of the first data byte from the start of the MDL chain (NDIS `DataOffset`). */
  dataOffset: number;
  /** Number of data bytes (NDIS `DataLength`). */
  dataLength: number;
  /** The next NB of the same NBL, or `null`. */
  next: NetBuffer | null;
}

/**
 * A NET_BUFFER_LIST as the chimney sees it. The list of NBs is held by the ledger and reached
 * through `ledger.view`; the fields here are the NBL's header and `NET_BUFFER_LIST_INFO` values.
 * Only the current owner may write them (call `ledger.check(nbl, who, op)` first).
 */
export interface NetBufferList {
  /** Identity for the ledger and for diagnostics (`NBL #7`). */
  readonly id: NblId;
  /** The next NBL of the same call's chain (NDIS `Next`), or `null`. */
  next: NetBufferList | null;
  /** Completion status, written by the completer (NDIS `Status`). */
  status: NblStatus;
  /** One slot for the current owner's bookkeeping (NDIS `MiniportReserved`/`ProtocolReserved`). */
  context: unknown;
  /**
   * One slot for the allocator's bookkeeping for the NBL's whole life, whoever owns it (NDIS
   * `NdisPoolHandle`): the pool it came from marks it here, so finding an NBL's place needs no
   * table that grows with every NBL out. No other party reads or writes it.
   */
  allocatorReserved: unknown;
  /** `TcpOffloadBytesTransferred`: bytes a completed send, receive or disconnect moved. */
  bytesTransferred: number;
  /** `TcpReceiveNoPush`: a posted receive request is in non-push mode. */
  receiveNoPush: boolean;
  /** `TcpReceiveBytesTransferred`: bytes the host already placed in a posted receive buffer. */
  receiveBytesTransferred: number;
}

/** Wraps `bytes[offset, offset + length)` as one MDL (a view; no copy), optionally chained to `next`. */
export function mdl(
  bytes: Uint8Array,
  offset = 0,
  length = bytes.length - offset,
  next: Mdl | null = null,
): Mdl {
  if (!isWindow(offset, length, bytes.length)) {
    throw new UsageError(`MDL window [${offset}, +${length}) outside ${bytes.length} bytes`);
  }
  const view = offset === 0 && length === bytes.length ? bytes : bytes.subarray(offset, offset + length);
  return { bytes, offset, length, view, next };
}

/** One MDL per array, in order (views; no copy). Returns `null` for an empty list. */
export function mdlChain(arrays: readonly Uint8Array[]): Mdl | null {
  let head: Mdl | null = null;
  for (let i = arrays.length - 1; i >= 0; i--) {
    const bytes = arrays[i] as Uint8Array; // 0 <= i < length
    head = { bytes, offset: 0, length: bytes.length, view: bytes, next: head };
  }
  return head;
}

/** Total bytes described by an MDL chain (ignores any NB window). */
export function mdlChainLength(chain: Mdl | null): number {
  let total = 0;
  for (let m = chain; m !== null; m = m.next) total += m.length;
  return total;
}

/**
 * A NET_BUFFER over `chain` whose data window is `[dataOffset, dataOffset + dataLength)`; by default
 * the whole chain. Throws `UsageError` if the window does not fit in the chain.
 */
export function netBuffer(chain: Mdl | null, dataOffset = 0, dataLength?: number): NetBuffer {
  const total = mdlChainLength(chain);
  const length = dataLength ?? total - dataOffset;
  if (!isWindow(dataOffset, length, total)) {
    throw new UsageError(`NB window [${dataOffset}, +${length}) outside an MDL chain of ${total} bytes`);
  }
  const nb: NetBuffer = {
    mdlChain: chain,
    currentMdl: chain,
    currentMdlOffset: 0,
    dataOffset: 0,
    dataLength: total,
    next: null,
  };
  advanceNetBuffer(nb, dataOffset);
  nb.dataLength = length;
  return nb;
}

/** A NET_BUFFER with one MDL per array, covering all of them (views; no copy). */
export function netBufferOf(...arrays: Uint8Array[]): NetBuffer {
  return netBuffer(mdlChain(arrays));
}

/**
 * NdisAdvanceNetBufferDataStart: drops `n` bytes from the front of `nb`'s data window, in place
 * (`dataOffset` grows, `dataLength` shrinks, the current MDL moves forward). Send completion uses
 * it to retire acknowledged bytes; receive completion to report bytes placed.
 */
export function advanceNetBuffer(nb: NetBuffer, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > nb.dataLength) {
    throw new UsageError(`cannot advance a NET_BUFFER of ${nb.dataLength} bytes by ${n}`);
  }
  let m = nb.currentMdl;
  let off = nb.currentMdlOffset + n;
  // Skip whole MDLs (including empty ones) so the invariant `off < m.length` holds again.
  while (m !== null && off >= m.length) {
    off -= m.length;
    m = m.next;
  }
  nb.currentMdl = m;
  nb.currentMdlOffset = m === null ? 0 : off;
  nb.dataOffset += n;
  nb.dataLength -= n;
}

/** A fresh descriptor for the same data window (shares the MDLs and bytes; `next` is `null`). */
export function cloneNetBuffer(nb: NetBuffer): NetBuffer {
  return {
    mdlChain: nb.mdlChain,
    currentMdl: nb.currentMdl,
    currentMdlOffset: nb.currentMdlOffset,
    dataOffset: nb.dataOffset,
    dataLength: nb.dataLength,
    next: null,
  };
}

function isWindow(offset: number, length: number, size: number): boolean {
  return (
    Number.isSafeInteger(offset) &&
    Number.isSafeInteger(length) &&
    offset >= 0 &&
    length >= 0 &&
    offset + length <= size
  );
}
