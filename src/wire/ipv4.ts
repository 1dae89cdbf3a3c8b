/**
 * The IPv4 header (RFC 791; DSCP/ECN per RFC 2474 and RFC 3168). Options are carried as raw
 * bytes, not interpreted. Fragments are detected and reported (`isFragment`), never reassembled:
 * this stack sets DF and relies on PMTU discovery (RFC 1191).
 */
import { ok, type Result, UsageError } from "../util/errors.js";
import { internetChecksum, verifyChecksum } from "./checksum.js";
import { setU16, u16, u8 } from "./bytes.js";
import { type DecodeError, decodeErr } from "./decode.js";
import type { IpAddr } from "./ip-addr.js";
import { type IpProtocol, ipProtocolFromNumber, ipProtocolToNumber } from "./ip-protocol.js";

/** Why an IPv4 header did not decode. */
export type Ipv4DecodeCode =
  | "truncated"
  | "bad-version"
  | "bad-header-len"
  | "bad-total-len"
  | "bad-checksum";
/** An IPv4 decoding failure. */
export type Ipv4DecodeError = DecodeError<Ipv4DecodeCode>;

/** Bytes in a header without options. */
export const IPV4_MIN_HEADER_LEN = 20;
/** Bytes of options at most (IHL is 4 bits: 15 * 4 - 20). */
export const IPV4_MAX_OPTIONS_LEN = 40;

// Field offsets (RFC 791 section 3.1).
const VER_IHL = 0;
const TOS = 1;
const TOTAL_LEN = 2;
const IDENT = 4;
const FLAGS_FRAG = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC = 12;
const DST = 16;

const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;

/**
 * Zero-copy accessors over an IPv4 packet. After `checked`, the header (with options) and the
 * total length fit in the bytes; `payload` ends at the total length, so Ethernet padding after
 * the packet is excluded. Setting `headerLen` or `totalLen` invalidates what `checked` proved.
 */
export class Ipv4View {
  /** The packet's bytes (a view of the caller's buffer, possibly with trailing padding). */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** For emission only: the caller sized `bytes` with `ipv4BufferLen`. */
  static unchecked(bytes: Uint8Array): Ipv4View {
    return new Ipv4View(bytes);
  }

  /** For untrusted input: checks version, header length and total length against the bytes. */
  static checked(bytes: Uint8Array): Result<Ipv4View, Ipv4DecodeError> {
    if (bytes.length < IPV4_MIN_HEADER_LEN) return decodeErr("truncated", bytes.length);
    const view = new Ipv4View(bytes);
    if (view.version !== 4) return decodeErr("bad-version", VER_IHL);
    const hl = view.headerLen;
    if (hl < IPV4_MIN_HEADER_LEN) return decodeErr("bad-header-len", VER_IHL);
    if (hl > bytes.length) return decodeErr("truncated", bytes.length);
    const total = view.totalLen;
    if (total < hl) return decodeErr("bad-total-len", TOTAL_LEN);
    if (total > bytes.length) return decodeErr("truncated", bytes.length);
    return ok(view);
  }

  /** Version (4 bits). */
  get version(): number {
    return u8(this.bytes, VER_IHL) >>> 4;
  }
  /** Header length in bytes (IHL * 4). */
  get headerLen(): number {
    return (u8(this.bytes, VER_IHL) & 0x0f) * 4;
  }
  /** Sets version 4 and the IHL for a header of `len` bytes (a multiple of 4, 20..60). */
  set headerLen(len: number) {
    this.bytes[VER_IHL] = 0x40 | (len >>> 2);
  }
  /** Differentiated services code point (the high 6 bits of the old TOS byte). */
  get dscp(): number {
    return u8(this.bytes, TOS) >>> 2;
  }
  set dscp(v: number) {
    this.bytes[TOS] = ((v & 0x3f) << 2) | (u8(this.bytes, TOS) & 3);
  }
  /** Explicit congestion notification codepoint (the low 2 bits). */
  get ecn(): number {
    return u8(this.bytes, TOS) & 3;
  }
  set ecn(v: number) {
    this.bytes[TOS] = (u8(this.bytes, TOS) & 0xfc) | (v & 3);
  }
  /** Total length: header plus data, in bytes. */
  get totalLen(): number {
    return u16(this.bytes, TOTAL_LEN);
  }
  set totalLen(v: number) {
    setU16(this.bytes, TOTAL_LEN, v);
  }
  /** Identification. */
  get ident(): number {
    return u16(this.bytes, IDENT);
  }
  set ident(v: number) {
    setU16(this.bytes, IDENT, v);
  }
  /** The 3 flag bits and the 13-bit fragment offset, as one 16-bit word. */
  get flagsAndFragment(): number {
    return u16(this.bytes, FLAGS_FRAG);
  }
  set flagsAndFragment(v: number) {
    setU16(this.bytes, FLAGS_FRAG, v);
  }
  /** The don't-fragment flag. */
  get dontFragment(): boolean {
    return (this.flagsAndFragment & FLAG_DF) !== 0;
  }
  /** The more-fragments flag. */
  get moreFragments(): boolean {
    return (this.flagsAndFragment & FLAG_MF) !== 0;
  }
  /** The fragment offset in bytes (the field counts 8-byte units). */
  get fragmentOffset(): number {
    return (this.flagsAndFragment & 0x1fff) * 8;
  }
  /** Time to live. */
  get ttl(): number {
    return u8(this.bytes, TTL);
  }
  set ttl(v: number) {
    this.bytes[TTL] = v;
  }
  /** Protocol number of the payload. */
  get protocol(): number {
    return u8(this.bytes, PROTOCOL);
  }
  set protocol(v: number) {
    this.bytes[PROTOCOL] = v;
  }
  /** Header checksum field. */
  get checksum(): number {
    return u16(this.bytes, CHECKSUM);
  }
  set checksum(v: number) {
    setU16(this.bytes, CHECKSUM, v);
  }
  /** Source address: a view. */
  get src(): IpAddr {
    return this.bytes.subarray(SRC, SRC + 4);
  }
  set src(a: IpAddr) {
    this.bytes.set(a, SRC);
  }
  /** Destination address: a view. */
  get dst(): IpAddr {
    return this.bytes.subarray(DST, DST + 4);
  }
  set dst(a: IpAddr) {
    this.bytes.set(a, DST);
  }
  /** The option bytes between the fixed header and the payload: a view, not interpreted. */
  get options(): Uint8Array {
    return this.bytes.subarray(IPV4_MIN_HEADER_LEN, this.headerLen);
  }
  /** The data up to the total length (trailing link-layer padding excluded): a view. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLen, this.totalLen);
  }
  /** True when the header checksum verifies. */
  get checksumOk(): boolean {
    return verifyChecksum(this.bytes, 0, this.headerLen);
  }
  /** Computes the header checksum and stores it. */
  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.bytes, 0, this.headerLen);
  }
}

/** An IPv4 header. The payload itself is not part of it; `payloadLen` gives its size. */
export interface Ipv4Repr {
  readonly src: IpAddr;
  readonly dst: IpAddr;
  readonly protocol: IpProtocol;
  readonly ttl: number;
  /** Differentiated services code point, 0..63. */
  readonly dscp: number;
  /** ECN codepoint, 0..3 (RFC 3168: 0 not-ECT, 1 ECT(1), 2 ECT(0), 3 CE). */
  readonly ecn: number;
  readonly ident: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** Offset of this fragment's data in the original datagram, in bytes (a multiple of 8). */
  readonly fragmentOffset: number;
  /**
   * True when this packet is a fragment (MF set or a nonzero offset). Derived on parse from the
   * two fields above; ignored on emit.
   */
  readonly isFragment: boolean;
  /** Raw option bytes (a multiple of 4, at most 40): a view on parse. */
  readonly options: Uint8Array;
  /** Bytes of data after the header (total length minus header length). */
  readonly payloadLen: number;
}

/**
 * Decodes a checked view. With `verifyChecksum` (the default), a header whose checksum does not
 * verify is a `bad-checksum` error. Addresses and options are views into the packet.
 */
export function parseIpv4(view: Ipv4View, verifyChecksum = true): Result<Ipv4Repr, Ipv4DecodeError> {
  if (verifyChecksum && !view.checksumOk) return decodeErr("bad-checksum", CHECKSUM);
  const ff = view.flagsAndFragment;
  const fragmentOffset = (ff & 0x1fff) * 8;
  const moreFragments = (ff & FLAG_MF) !== 0;
  return ok({
    src: view.src,
    dst: view.dst,
    protocol: ipProtocolFromNumber(view.protocol),
    ttl: view.ttl,
    dscp: view.dscp,
    ecn: view.ecn,
    ident: view.ident,
    dontFragment: (ff & FLAG_DF) !== 0,
    moreFragments,
    fragmentOffset,
    isFragment: moreFragments || fragmentOffset !== 0,
    options: view.options,
    payloadLen: view.totalLen - view.headerLen,
  });
}

/** Header bytes for `repr`: 20 plus its options. */
export function ipv4HeaderLen(repr: Ipv4Repr): number {
  return IPV4_MIN_HEADER_LEN + repr.options.length;
}

/** Bytes of the whole packet: header plus `payloadLen`. */
export function ipv4BufferLen(repr: Ipv4Repr): number {
  return ipv4HeaderLen(repr) + repr.payloadLen;
}

/**
 * Writes the header into the start of `out`, which must be exactly `ipv4BufferLen(repr)` bytes;
 * the payload area after it is left for the caller. The checksum is computed when
 * `computeChecksum` (the default), else left zero for hardware to fill.
 */
export function emitIpv4(repr: Ipv4Repr, out: Uint8Array, computeChecksum = true): void {
  const len = ipv4BufferLen(repr);
  if (out.length !== len) throw new UsageError(`IPv4 packet needs ${len} bytes, got ${out.length}`);
  writeIpv4Header(repr, out, 0, computeChecksum);
}

/**
 * Writes the header at `out[at..]` and returns the offset after it. For emitters in this folder;
 * checks the repr's ranges (a caller's contract) but not `out`'s size.
 */
export function writeIpv4Header(
  repr: Ipv4Repr,
  out: Uint8Array,
  at: number,
  computeChecksum: boolean,
): number {
  const optLen = repr.options.length;
  if (optLen > IPV4_MAX_OPTIONS_LEN || optLen % 4 !== 0) {
    throw new UsageError(`IPv4 options must be a multiple of 4 up to 40 bytes, got ${optLen}`);
  }
  if (repr.src.length !== 4 || repr.dst.length !== 4) throw new UsageError("IPv4 addresses must be 4 bytes");
  if (repr.fragmentOffset % 8 !== 0 || repr.fragmentOffset > 0x1fff * 8) {
    throw new UsageError(`bad IPv4 fragment offset ${repr.fragmentOffset}`);
  }
  const hl = IPV4_MIN_HEADER_LEN + optLen;
  const total = hl + repr.payloadLen;
  if (total > 0xffff) throw new UsageError(`IPv4 packet too long: ${total}`);
  const ff =
    (repr.dontFragment ? FLAG_DF : 0) | (repr.moreFragments ? FLAG_MF : 0) | (repr.fragmentOffset >>> 3);
  const proto = ipProtocolToNumber(repr.protocol);
  out[at] = 0x40 | (hl >>> 2);
  out[at + 1] = ((repr.dscp & 0x3f) << 2) | (repr.ecn & 3);
  out[at + 2] = total >>> 8;
  out[at + 3] = total & 0xff;
  out[at + 4] = (repr.ident >>> 8) & 0xff;
  out[at + 5] = repr.ident & 0xff;
  out[at + 6] = ff >>> 8;
  out[at + 7] = ff & 0xff;
  out[at + 8] = repr.ttl;
  out[at + 9] = proto;
  out[at + 10] = 0;
  out[at + 11] = 0;
  out.set(repr.src, at + SRC);
  out.set(repr.dst, at + DST);
  if (optLen > 0) out.set(repr.options, at + IPV4_MIN_HEADER_LEN);
  if (computeChecksum) {
    const c = internetChecksum(out, at, at + hl);
    out[at + 10] = c >>> 8;
    out[at + 11] = c & 0xff;
  }
  return at + hl;
}
