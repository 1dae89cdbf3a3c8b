/**
 * The TCP header codec (RFC 9293 section 3.1) with every option RFC 9293, RFC 7323 and RFC 2018
 * define: end of list, no-operation, MSS, window scale, SACK-permitted, SACK and timestamps.
 * Options of other kinds are kept verbatim. Decoding gives the `TcpRepr` of `tcp-repr.ts`, the
 * record the TCP engine consumes; the payload stays a view of the packet (no copy).
 *
 * Options are emitted in one canonical order, Linux's (`tcp_options_write`): MSS; timestamps
 * (preceded by SACK-permitted when both are present, else by two NOPs); SACK-permitted alone
 * (NOP, NOP, kind 4); NOP and window scale; NOP, NOP and SACK blocks; then unknown kinds, NOP
 * padded to a 4-byte boundary. A Linux SYN therefore comes out byte for byte as Linux sends it.
 *
 * Checksums use the pseudo-header (RFC 9293 section 3.1): pass the IP source and destination to
 * verify on parse or compute on emit; leave them out when checksums are offloaded.
 */
import { Seq, type SeqNum } from "./seq.js";
import { ok, type Result, UsageError } from "../util/errors.js";
import { addSums, type IpPseudoHeader, internetChecksum, pseudoHeaderSum, sumBytes } from "./checksum.js";
import { setU16, setU32, u16, u32, u8 } from "./bytes.js";
import { type DecodeError, decodeErr } from "./decode.js";
import type { SackBlock, TcpRepr, TcpTimestamps, TcpUnknownOption } from "./tcp-repr.js";

/** Why a TCP segment did not decode. */
export type TcpDecodeCode = "truncated" | "bad-header-len" | "bad-option-len" | "bad-checksum";
/** A TCP decoding failure; `offset` counts from the start of the TCP header. */
export type TcpDecodeError = DecodeError<TcpDecodeCode>;

/** Bytes in a header without options. */
export const TCP_HEADER_LEN = 20;
/** Bytes of options at most (the data offset is 4 bits: 15 * 4 - 20). */
export const TCP_MAX_OPTIONS_LEN = 40;
/** The IP protocol number of TCP. */
export const TCP_PROTOCOL = 6;

/** Option kinds this codec interprets (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

// Field offsets (RFC 9293 figure 1).
const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ = 4;
const ACK = 8;
const DATA_OFF = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;

/**
 * Zero-copy accessors over a TCP segment. `bytes` must be exactly the segment (the IP payload):
 * the payload and the checksum extend to its end. After `checked`, the data offset is sane and
 * the header fits, so no getter reads out of bounds. Setting `headerLen` invalidates that.
 */
export class TcpView {
  /** The segment's bytes (a view of the caller's buffer). */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** For emission only: the caller sized `bytes` with `tcpBufferLen`. */
  static unchecked(bytes: Uint8Array): TcpView {
    return new TcpView(bytes);
  }

  /** For untrusted input: validates the data offset against the bytes. */
  static checked(bytes: Uint8Array): Result<TcpView, TcpDecodeError> {
    if (bytes.length < TCP_HEADER_LEN) return decodeErr("truncated", bytes.length);
    const view = new TcpView(bytes);
    const hl = view.headerLen;
    if (hl < TCP_HEADER_LEN) return decodeErr("bad-header-len", DATA_OFF);
    if (hl > bytes.length) return decodeErr("truncated", bytes.length);
    return ok(view);
  }

  /** Source port. */
  get srcPort(): number {
    return u16(this.bytes, SRC_PORT);
  }
  set srcPort(v: number) {
    setU16(this.bytes, SRC_PORT, v);
  }
  /** Destination port. */
  get dstPort(): number {
    return u16(this.bytes, DST_PORT);
  }
  set dstPort(v: number) {
    setU16(this.bytes, DST_PORT, v);
  }
  /** Sequence number. */
  get seqNumber(): number {
    return u32(this.bytes, SEQ);
  }
  set seqNumber(v: number) {
    setU32(this.bytes, SEQ, v >>> 0);
  }
  /** Acknowledgment number. */
  get ackNumber(): number {
    return u32(this.bytes, ACK);
  }
  set ackNumber(v: number) {
    setU32(this.bytes, ACK, v >>> 0);
  }
  /** Header length in bytes (data offset * 4). */
  get headerLen(): number {
    return (u8(this.bytes, DATA_OFF) >>> 4) * 4;
  }
  /** Sets the data offset for a header of `len` bytes (a multiple of 4, 20..60); clears the reserved bits. */
  set headerLen(len: number) {
    this.bytes[DATA_OFF] = (len >>> 2) << 4;
  }
  /** The flags byte (CWR ECE URG ACK PSH RST SYN FIN; see `TcpFlag`). */
  get flags(): number {
    return u8(this.bytes, FLAGS);
  }
  set flags(v: number) {
    this.bytes[FLAGS] = v;
  }
  /** Window (unscaled). */
  get window(): number {
    return u16(this.bytes, WINDOW);
  }
  set window(v: number) {
    setU16(this.bytes, WINDOW, v);
  }
  /** Checksum field. */
  get checksum(): number {
    return u16(this.bytes, CHECKSUM);
  }
  set checksum(v: number) {
    setU16(this.bytes, CHECKSUM, v);
  }
  /** Urgent pointer. */
  get urgentPointer(): number {
    return u16(this.bytes, URGENT);
  }
  set urgentPointer(v: number) {
    setU16(this.bytes, URGENT, v);
  }
  /** The option bytes: a view. */
  get options(): Uint8Array {
    return this.bytes.subarray(TCP_HEADER_LEN, this.headerLen);
  }
  /** The data after the header: a view. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLen);
  }
  /** True when the checksum verifies with this pseudo-header. */
  checksumOk(pseudo: IpPseudoHeader): boolean {
    const b = this.bytes;
    return addSums(sumBytes(b), pseudoHeaderSum(pseudo.src, pseudo.dst, TCP_PROTOCOL, b.length)) === 0xffff;
  }
  /** Computes the checksum with this pseudo-header and stores it. */
  fillChecksum(pseudo: IpPseudoHeader): void {
    const b = this.bytes;
    this.checksum = 0;
    this.checksum = internetChecksum(
      b,
      0,
      b.length,
      pseudoHeaderSum(pseudo.src, pseudo.dst, TCP_PROTOCOL, b.length),
    );
  }
}

/**
 * Decodes a checked view. Options: EOL ends the list; NOP is skipped; a repeated option
 * overrides the earlier one (as Linux does); a known kind with the wrong length, or any option
 * whose length is missing, below 2 or past the header, is `bad-option-len` at the length byte.
 * With `pseudo`, a checksum that does not verify is `bad-checksum`. The payload and the data of
 * unknown options are views into the segment.
 */
export function parseTcp(view: TcpView, pseudo?: IpPseudoHeader): Result<TcpRepr, TcpDecodeError> {
  if (pseudo !== undefined && !view.checksumOk(pseudo)) return decodeErr("bad-checksum", CHECKSUM);
  const b = view.bytes;
  const hl = view.headerLen;
  let mss: number | undefined;
  let windowScale: number | undefined;
  let sackPermitted = false;
  let sack: readonly SackBlock[] = NO_SACK;
  let timestamps: TcpTimestamps | undefined;
  let unknownOptions: TcpUnknownOption[] | undefined;
  // Every read below is at an index < hl <= b.length (checked by TcpView.checked), so the `!`
  // reads are defined.
  let i = TCP_HEADER_LEN;
  while (i < hl) {
    const kind = b[i]!;
    if (kind === 0 /* EOL */) break;
    if (kind === 1 /* NOP */) {
      i++;
      continue;
    }
    if (i + 1 >= hl) return decodeErr("bad-option-len", i + 1);
    const len = b[i + 1]!;
    if (len < 2 || i + len > hl) return decodeErr("bad-option-len", i + 1);
    switch (kind) {
      case 2 /* MSS */:
        if (len !== 4) return decodeErr("bad-option-len", i + 1);
        mss = (b[i + 2]! << 8) | b[i + 3]!;
        break;
      case 3 /* WINDOW_SCALE */:
        if (len !== 3) return decodeErr("bad-option-len", i + 1);
        windowScale = b[i + 2]!;
        break;
      case 4 /* SACK_PERMITTED */:
        if (len !== 2) return decodeErr("bad-option-len", i + 1);
        sackPermitted = true;
        break;
      case 5 /* SACK */:
        {
          if (len < 10 || (len - 2) % 8 !== 0) return decodeErr("bad-option-len", i + 1);
          const blocks: SackBlock[] = [];
          for (let j = i + 2; j < i + len; j += 8)
            blocks.push({ left: Seq.of(u32(b, j)), right: Seq.of(u32(b, j + 4)) });
          sack = blocks;
          break;
        }
      case 8 /* TIMESTAMPS */:
        if (len !== 10) return decodeErr("bad-option-len", i + 1);
        timestamps = { tsVal: u32(b, i + 2), tsEcr: u32(b, i + 6) };
        break;
      default:
        (unknownOptions ??= []).push({ kind, data: b.subarray(i + 2, i + len) });
    }
    i += len;
  }
  // Literal kinds in the switch (not TcpOptionKind.X) and direct reads below keep this loop
  // free of property loads on the hot path.
  return ok({
    srcPort: u16(b, SRC_PORT),
    dstPort: u16(b, DST_PORT),
    seq: u32(b, SEQ) as SeqNum,
    ack: u32(b, ACK) as SeqNum,
    flags: b[FLAGS]!,
    window: u16(b, WINDOW),
    urgent: u16(b, URGENT),
    mss,
    windowScale,
    sackPermitted,
    sack,
    timestamps,
    unknownOptions: unknownOptions ?? NO_UNKNOWN,
    // A header-only segment (a pure ACK) shares one empty array instead of allocating a view.
    payload: hl === b.length ? NO_PAYLOAD : b.subarray(hl),
  });
}

/**
 * Bytes the options of `repr` take: in canonical layout (each option aligned on 4 bytes with
 * NOPs), or, when that does not fit in the 40 bytes a header holds, packed back to back and
 * ended with EOL padding (alignment is the sender's choice, RFC 9293 3.1). A multiple of 4.
 */
export function tcpOptionsLen(repr: TcpRepr): number {
  const aligned = alignedOptionsLen(repr);
  if (aligned <= TCP_MAX_OPTIONS_LEN) return aligned;
  const packed = (packedOptionsLen(repr) + 3) & ~3;
  if (packed > TCP_MAX_OPTIONS_LEN) {
    throw new UsageError(
      `TCP options need ${packed} bytes, more than the ${TCP_MAX_OPTIONS_LEN} a header holds`,
    );
  }
  return packed;
}

/** The canonical layout's length (may exceed 40). */
function alignedOptionsLen(repr: TcpRepr): number {
  let len = 0;
  if (repr.mss !== undefined) len += 4;
  if (repr.timestamps !== undefined) len += 12;
  else if (repr.sackPermitted) len += 4;
  if (repr.windowScale !== undefined) len += 4;
  const nSack = repr.sack.length;
  if (nSack > 0) {
    if (nSack > 4) throw new UsageError(`at most 4 SACK blocks fit in a TCP header, got ${nSack}`);
    len += 4 + 8 * nSack;
  }
  const unknown = repr.unknownOptions;
  if (unknown.length > 0) {
    let u = 0;
    for (const o of unknown) u += 2 + o.data.length;
    len += (u + 3) & ~3;
  }
  return len;
}

/** The options' bytes with no padding at all. */
function packedOptionsLen(repr: TcpRepr): number {
  let len = 0;
  if (repr.mss !== undefined) len += 4;
  if (repr.timestamps !== undefined) len += 10;
  if (repr.sackPermitted) len += 2;
  if (repr.windowScale !== undefined) len += 3;
  if (repr.sack.length > 0) len += 2 + 8 * repr.sack.length;
  for (const o of repr.unknownOptions) len += 2 + o.data.length;
  return len;
}

/** Header bytes for `repr`: 20 plus its options. */
export function tcpHeaderLen(repr: TcpRepr): number {
  return TCP_HEADER_LEN + tcpOptionsLen(repr);
}

/** Bytes of the whole segment: header, options and payload. */
export function tcpBufferLen(repr: TcpRepr): number {
  return TCP_HEADER_LEN + tcpOptionsLen(repr) + repr.payload.length;
}

/**
 * Writes the segment (header, options, a copy of the payload) into `out`, which must be exactly
 * `tcpBufferLen(repr)` bytes. With `pseudo`, the checksum is computed over the pseudo-header and
 * the segment; without, it is left zero (checksum offload).
 */
export function emitTcp(repr: TcpRepr, out: Uint8Array, pseudo?: IpPseudoHeader): void {
  const len = tcpBufferLen(repr);
  if (out.length !== len) throw new UsageError(`TCP segment needs ${len} bytes, got ${out.length}`);
  const pseudoSum =
    pseudo === undefined ? undefined : pseudoHeaderSum(pseudo.src, pseudo.dst, TCP_PROTOCOL, len);
  writeTcp(repr, out, 0, len, pseudoSum);
}

/**
 * Writes the segment at `out[at, at + segLen)`, where `segLen` is `tcpBufferLen(repr)`, and
 * computes the checksum when `pseudoSum` (a pseudo-header sum) is given. For emitters in this
 * folder that sized the buffer already.
 */
export function writeTcp(
  repr: TcpRepr,
  out: Uint8Array,
  at: number,
  segLen: number,
  pseudoSum: number | undefined,
): void {
  const hl = segLen - repr.payload.length;
  const src = repr.srcPort;
  const dst = repr.dstPort;
  const seq = repr.seq;
  const ack = repr.ack;
  const win = repr.window;
  const urg = repr.urgent;
  if ((src | dst | win | urg) >>> 16 !== 0)
    throw new UsageError("TCP port, window or urgent pointer out of range");
  out[at] = src >>> 8;
  out[at + 1] = src & 0xff;
  out[at + 2] = dst >>> 8;
  out[at + 3] = dst & 0xff;
  out[at + 4] = seq >>> 24;
  out[at + 5] = (seq >>> 16) & 0xff;
  out[at + 6] = (seq >>> 8) & 0xff;
  out[at + 7] = seq & 0xff;
  out[at + 8] = ack >>> 24;
  out[at + 9] = (ack >>> 16) & 0xff;
  out[at + 10] = (ack >>> 8) & 0xff;
  out[at + 11] = ack & 0xff;
  out[at + 12] = (hl >>> 2) << 4;
  out[at + 13] = repr.flags & 0xff;
  out[at + 14] = win >>> 8;
  out[at + 15] = win & 0xff;
  out[at + 16] = 0;
  out[at + 17] = 0;
  out[at + 18] = urg >>> 8;
  out[at + 19] = urg & 0xff;
  if (hl > TCP_HEADER_LEN) writeTcpOptions(repr, out, at + TCP_HEADER_LEN);
  if (repr.payload.length > 0) out.set(repr.payload, at + hl);
  if (pseudoSum !== undefined) {
    const c = internetChecksum(out, at, at + segLen, pseudoSum);
    out[at + 16] = c >>> 8;
    out[at + 17] = c & 0xff;
  }
}

/**
 * Writes the options of `repr` in canonical layout at `out[at..]` and returns the offset after
 * them (`tcpOptionsLen(repr)` bytes). The caller sized `out`.
 */
export function writeTcpOptions(repr: TcpRepr, out: Uint8Array, at: number): number {
  // Without SACK blocks or unknown options the aligned layout takes at most 24 bytes.
  const mayOverflow = repr.sack.length > 0 || repr.unknownOptions.length > 0;
  if (mayOverflow && alignedOptionsLen(repr) > TCP_MAX_OPTIONS_LEN) return writePackedOptions(repr, out, at);
  let o = at;
  const mss = repr.mss;
  if (mss !== undefined) {
    if (mss >>> 16 !== 0) throw new UsageError(`MSS out of range: ${mss}`);
    out[o] = 2; // MSS
    out[o + 1] = 4;
    out[o + 2] = mss >>> 8;
    out[o + 3] = mss & 0xff;
    o += 4;
  }
  const ts = repr.timestamps;
  if (ts !== undefined) {
    if (repr.sackPermitted) {
      out[o] = 4; // SACK_PERMITTED
      out[o + 1] = 2;
    } else {
      out[o] = 1; // NOP
      out[o + 1] = 1; // NOP
    }
    out[o + 2] = 8; // TIMESTAMPS
    out[o + 3] = 10;
    setU32(out, o + 4, ts.tsVal);
    setU32(out, o + 8, ts.tsEcr);
    o += 12;
  } else if (repr.sackPermitted) {
    out[o] = 1; // NOP
    out[o + 1] = 1; // NOP
    out[o + 2] = 4; // SACK_PERMITTED
    out[o + 3] = 2;
    o += 4;
  }
  const ws = repr.windowScale;
  if (ws !== undefined) {
    if (ws >>> 8 !== 0) throw new UsageError(`window scale out of range: ${ws}`);
    out[o] = 1; // NOP
    out[o + 1] = 3; // WINDOW_SCALE
    out[o + 2] = 3;
    out[o + 3] = ws;
    o += 4;
  }
  const sack = repr.sack;
  if (sack.length > 0) {
    out[o] = 1; // NOP
    out[o + 1] = 1; // NOP
    o = writeSackOption(sack, out, o + 2);
  }
  const unknown = repr.unknownOptions;
  if (unknown.length > 0) {
    let u = 0;
    for (const opt of unknown) u += 2 + opt.data.length;
    for (let pad = ((u + 3) & ~3) - u; pad > 0; pad--) out[o++] = 1; // NOP
    o = writeUnknownOptions(unknown, out, o);
  }
  return o;
}

/** Writes a SACK option (kind, length, blocks); returns the offset after it. */
function writeSackOption(sack: readonly SackBlock[], out: Uint8Array, at: number): number {
  out[at] = 5; // SACK
  out[at + 1] = 2 + 8 * sack.length;
  let o = at + 2;
  for (const blk of sack) {
    setU32(out, o, blk.left);
    setU32(out, o + 4, blk.right);
    o += 8;
  }
  return o;
}

/** Writes the options of kinds `TcpRepr` has no field for, back to back; returns the offset after them. */
function writeUnknownOptions(unknown: readonly TcpUnknownOption[], out: Uint8Array, at: number): number {
  let o = at;
  for (const opt of unknown) {
    if (isInterpretedKind(opt.kind) || opt.kind >>> 8 !== 0) {
      throw new UsageError(`option kind ${opt.kind} cannot be emitted as an unknown option`);
    }
    out[o] = opt.kind;
    out[o + 1] = 2 + opt.data.length;
    out.set(opt.data, o + 2);
    o += 2 + opt.data.length;
  }
  return o;
}

/** The packed layout (`tcpOptionsLen`): options back to back, then EOL bytes to a multiple of 4. */
function writePackedOptions(repr: TcpRepr, out: Uint8Array, at: number): number {
  let o = at;
  const mss = repr.mss;
  if (mss !== undefined) {
    if (mss >>> 16 !== 0) throw new UsageError(`MSS out of range: ${mss}`);
    out[o] = 2;
    out[o + 1] = 4;
    out[o + 2] = mss >>> 8;
    out[o + 3] = mss & 0xff;
    o += 4;
  }
  if (repr.sackPermitted) {
    out[o] = 4;
    out[o + 1] = 2;
    o += 2;
  }
  const ts = repr.timestamps;
  if (ts !== undefined) {
    out[o] = 8;
    out[o + 1] = 10;
    setU32(out, o + 2, ts.tsVal);
    setU32(out, o + 6, ts.tsEcr);
    o += 10;
  }
  const ws = repr.windowScale;
  if (ws !== undefined) {
    if (ws >>> 8 !== 0) throw new UsageError(`window scale out of range: ${ws}`);
    out[o] = 3;
    out[o + 1] = 3;
    out[o + 2] = ws;
    o += 3;
  }
  if (repr.sack.length > 0) o = writeSackOption(repr.sack, out, o);
  o = writeUnknownOptions(repr.unknownOptions, out, o);
  const end = at + ((o - at + 3) & ~3);
  out.fill(0, o, end); // EOL
  return end;
}

/** True when the segment's checksum verifies; `bytes` is exactly the segment. */
export function tcpChecksumOk(bytes: Uint8Array, pseudo: IpPseudoHeader): boolean {
  return (
    addSums(sumBytes(bytes), pseudoHeaderSum(pseudo.src, pseudo.dst, TCP_PROTOCOL, bytes.length)) === 0xffff
  );
}

const NO_SACK: readonly SackBlock[] = Object.freeze([]);
/** Zero bytes: nothing can be written into it, so sharing it is safe. */
const NO_PAYLOAD = new Uint8Array(0);
const NO_UNKNOWN: readonly TcpUnknownOption[] = Object.freeze([]);

/** Kinds with a field of their own in `TcpRepr` (and EOL/NOP), which `unknownOptions` must not hold. */
function isInterpretedKind(kind: number): boolean {
  return kind <= 5 || kind === TcpOptionKind.TIMESTAMPS;
}
