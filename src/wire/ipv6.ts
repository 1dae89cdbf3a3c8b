/**
 * The IPv6 header (RFC 8200 section 3) and its extension-header chain (section 4): hop-by-hop
 * options, routing, fragment, destination options and authentication (RFC 4302) headers are
 * walked to find the upper-layer protocol and where its data starts. The walk is bounded
 * (`IPV6_MAX_EXT_HEADERS`) so a crafted chain cannot make it spin. Fragments are detected and
 * reported, never reassembled. Jumbograms (RFC 2675, payload length 0) are not supported.
 */
import { ok, type Result, UsageError } from "../util/errors.js";
import { setU16, setU32, u16, u32, u8 } from "./bytes.js";
import { type DecodeError, decodeErr } from "./decode.js";
import type { IpAddr } from "./ip-addr.js";
import { type IpProtocol, ipProtocolFromNumber, ipProtocolToNumber } from "./ip-protocol.js";

/** Why an IPv6 packet did not decode. */
export type Ipv6DecodeCode =
  | "truncated"
  | "bad-version"
  | "bad-ext-header-len"
  | "misplaced-hop-by-hop"
  | "too-many-ext-headers";
/** An IPv6 decoding failure. */
export type Ipv6DecodeError = DecodeError<Ipv6DecodeCode>;

/** Bytes in the fixed header. */
export const IPV6_HEADER_LEN = 40;
/** The most extension headers the decoder walks before giving up (`too-many-ext-headers`). */
export const IPV6_MAX_EXT_HEADERS = 12;

// Next-header values of the extension headers the walk understands.
const NH_HOP_BY_HOP = 0;
const NH_ROUTING = 43;
const NH_FRAGMENT = 44;
const NH_AUTH = 51;
const NH_DEST_OPTS = 60;
const NH_MOBILITY = 135;
const NH_HIP = 139;
const NH_SHIM6 = 140;

/**
 * Zero-copy accessors over an IPv6 packet. After `checked`, the fixed header and the payload
 * length fit; `payload` (extension headers included) ends at the payload length, so link-layer
 * padding is excluded.
 */
export class Ipv6View {
  /** The packet's bytes (a view of the caller's buffer, possibly with trailing padding). */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** For emission only: the caller sized `bytes` with `ipv6BufferLen`. */
  static unchecked(bytes: Uint8Array): Ipv6View {
    return new Ipv6View(bytes);
  }

  /** For untrusted input: checks the version and that the payload length fits in the bytes. */
  static checked(bytes: Uint8Array): Result<Ipv6View, Ipv6DecodeError> {
    if (bytes.length < IPV6_HEADER_LEN) return decodeErr("truncated", bytes.length);
    const view = new Ipv6View(bytes);
    if (view.version !== 6) return decodeErr("bad-version", 0);
    if (IPV6_HEADER_LEN + view.payloadLength > bytes.length) return decodeErr("truncated", bytes.length);
    return ok(view);
  }

  /** Version (4 bits). */
  get version(): number {
    return u8(this.bytes, 0) >>> 4;
  }
  /** Traffic class: DSCP (6 bits) and ECN (2 bits). */
  get trafficClass(): number {
    return (u16(this.bytes, 0) >>> 4) & 0xff;
  }
  /** Flow label (20 bits). */
  get flowLabel(): number {
    return u32(this.bytes, 0) & 0xfffff;
  }
  /** Writes version 6, the traffic class and the flow label (the first 32 bits). */
  setFirstWord(trafficClass: number, flowLabel: number): void {
    setU32(this.bytes, 0, ((0x60000000 | ((trafficClass & 0xff) << 20)) >>> 0) + (flowLabel & 0xfffff));
  }
  /** Payload length: bytes after the fixed header, extension headers included. */
  get payloadLength(): number {
    return u16(this.bytes, 4);
  }
  set payloadLength(v: number) {
    setU16(this.bytes, 4, v);
  }
  /** The type of the first header after the fixed header. */
  get nextHeader(): number {
    return u8(this.bytes, 6);
  }
  set nextHeader(v: number) {
    this.bytes[6] = v;
  }
  /** Hop limit. */
  get hopLimit(): number {
    return u8(this.bytes, 7);
  }
  set hopLimit(v: number) {
    this.bytes[7] = v;
  }
  /** Source address: a view. */
  get src(): IpAddr {
    return this.bytes.subarray(8, 24);
  }
  set src(a: IpAddr) {
    this.bytes.set(a, 8);
  }
  /** Destination address: a view. */
  get dst(): IpAddr {
    return this.bytes.subarray(24, 40);
  }
  set dst(a: IpAddr) {
    this.bytes.set(a, 24);
  }
  /** Everything after the fixed header up to the payload length (extension headers included): a view. */
  get payload(): Uint8Array {
    return this.bytes.subarray(IPV6_HEADER_LEN, IPV6_HEADER_LEN + this.payloadLength);
  }
}

/** One extension header, kept as raw bytes. */
export interface Ipv6ExtHeader {
  /** Its type (the previous header's next-header value): `hop-by-hop`, `ipv6-route`, ... */
  readonly type: IpProtocol;
  /**
   * The whole header, its own next-header and length bytes included: a view on parse. On emit
   * the next-header byte (byte 0) is rewritten to the type of what follows.
   */
  readonly bytes: Uint8Array;
}

/** What the fragment header says (RFC 8200 section 4.5). */
export interface Ipv6Fragment {
  /** Offset of this fragment's data in the original packet, in bytes (a multiple of 8). */
  readonly offset: number;
  readonly moreFragments: boolean;
  readonly ident: number;
}

/** An IPv6 header with its extension headers. The upper-layer data is not part of it. */
export interface Ipv6Repr {
  readonly src: IpAddr;
  readonly dst: IpAddr;
  /** Differentiated services code point, 0..63 (high 6 bits of the traffic class). */
  readonly dscp: number;
  /** ECN codepoint, 0..3 (low 2 bits of the traffic class). */
  readonly ecn: number;
  readonly flowLabel: number;
  readonly hopLimit: number;
  /** The extension headers in order; empty when the upper layer follows the fixed header. */
  readonly extHeaders: readonly Ipv6ExtHeader[];
  /**
   * The upper-layer protocol: the next-header value that ends the chain. For a non-first
   * fragment it is what the fragment header names, but its header is not in this packet.
   */
  readonly protocol: IpProtocol;
  /** Bytes of upper-layer data after the extension headers. */
  readonly payloadLen: number;
  /** The fragment header's contents, when there is one. Derived on parse; ignored on emit. */
  readonly fragment: Ipv6Fragment | undefined;
  /** True when a fragment header is present. Derived on parse; ignored on emit. */
  readonly isFragment: boolean;
}

/**
 * Decodes a checked view and walks its extension-header chain. A non-first fragment ends the
 * walk at its fragment header (what follows is the middle of the original packet). Addresses and
 * extension headers are views into the packet.
 */
export function parseIpv6(view: Ipv6View): Result<Ipv6Repr, Ipv6DecodeError> {
  const bytes = view.bytes;
  const end = IPV6_HEADER_LEN + view.payloadLength;
  const extHeaders: Ipv6ExtHeader[] = [];
  let nh = view.nextHeader;
  let nhAt = 6; // where the current next-header value was read, for error offsets
  let pos = IPV6_HEADER_LEN;
  let fragment: Ipv6Fragment | undefined;
  for (;;) {
    if (!isExtHeader(nh)) break;
    if (extHeaders.length === IPV6_MAX_EXT_HEADERS) return decodeErr("too-many-ext-headers", nhAt);
    // RFC 8200 section 4.1: hop-by-hop options only right after the fixed header.
    if (nh === NH_HOP_BY_HOP && pos !== IPV6_HEADER_LEN) return decodeErr("misplaced-hop-by-hop", nhAt);
    if (pos + 2 > end) return decodeErr("truncated", end);
    // pos + 1 < end <= bytes.length, so both reads are defined.
    const len = extHeaderLen(nh, bytes[pos + 1]!);
    if (pos + len > end) return decodeErr("bad-ext-header-len", pos + 1);
    const type = nh;
    extHeaders.push({ type: ipProtocolFromNumber(type), bytes: bytes.subarray(pos, pos + len) });
    nh = bytes[pos]!;
    nhAt = pos;
    pos += len;
    if (type === NH_FRAGMENT) {
      const word = (bytes[pos - 6]! << 8) | bytes[pos - 5]!;
      const ident =
        ((bytes[pos - 4]! << 24) | (bytes[pos - 3]! << 16) | (bytes[pos - 2]! << 8) | bytes[pos - 1]!) >>> 0;
      fragment = { offset: word & 0xfff8, moreFragments: (word & 1) !== 0, ident };
      if (fragment.offset !== 0) break;
    }
  }
  const tc = view.trafficClass;
  return ok({
    src: view.src,
    dst: view.dst,
    dscp: tc >>> 2,
    ecn: tc & 3,
    flowLabel: view.flowLabel,
    hopLimit: view.hopLimit,
    extHeaders,
    protocol: ipProtocolFromNumber(nh),
    payloadLen: end - pos,
    fragment,
    isFragment: fragment !== undefined,
  });
}

/** Bytes of the fixed header plus the extension headers. */
export function ipv6HeaderLen(repr: Ipv6Repr): number {
  let len = IPV6_HEADER_LEN;
  for (const h of repr.extHeaders) len += h.bytes.length;
  return len;
}

/** Bytes of the whole packet: headers plus `payloadLen`. */
export function ipv6BufferLen(repr: Ipv6Repr): number {
  return ipv6HeaderLen(repr) + repr.payloadLen;
}

/**
 * Writes the fixed header and the extension headers into the start of `out`, which must be
 * exactly `ipv6BufferLen(repr)` bytes; the upper-layer area after them is left for the caller.
 */
export function emitIpv6(repr: Ipv6Repr, out: Uint8Array): void {
  const len = ipv6BufferLen(repr);
  if (out.length !== len) throw new UsageError(`IPv6 packet needs ${len} bytes, got ${out.length}`);
  writeIpv6Header(repr, out, 0);
}

/**
 * Writes the headers at `out[at..]` and returns the offset of the upper-layer data. For
 * emitters in this folder; checks the repr (a caller's contract) but not `out`'s size.
 */
export function writeIpv6Header(repr: Ipv6Repr, out: Uint8Array, at: number): number {
  if (repr.src.length !== 16 || repr.dst.length !== 16)
    throw new UsageError("IPv6 addresses must be 16 bytes");
  const headerLen = ipv6HeaderLen(repr);
  const payloadLength = headerLen - IPV6_HEADER_LEN + repr.payloadLen;
  if (payloadLength > 0xffff) throw new UsageError(`IPv6 payload too long: ${payloadLength}`);
  const tc = ((repr.dscp & 0x3f) << 2) | (repr.ecn & 3);
  const fl = repr.flowLabel & 0xfffff;
  const first = repr.extHeaders[0];
  out[at] = 0x60 | (tc >>> 4);
  out[at + 1] = ((tc & 0x0f) << 4) | (fl >>> 16);
  out[at + 2] = (fl >>> 8) & 0xff;
  out[at + 3] = fl & 0xff;
  out[at + 4] = payloadLength >>> 8;
  out[at + 5] = payloadLength & 0xff;
  out[at + 6] = ipProtocolToNumber(first === undefined ? repr.protocol : first.type);
  out[at + 7] = repr.hopLimit;
  out.set(repr.src, at + 8);
  out.set(repr.dst, at + 24);
  let pos = at + IPV6_HEADER_LEN;
  const n = repr.extHeaders.length;
  for (let i = 0; i < n; i++) {
    const h = repr.extHeaders[i]!; // i < n
    const type = ipProtocolToNumber(h.type);
    const b = h.bytes;
    if (!isExtHeader(type) || b.length < 2 || b.length !== extHeaderLen(type, b[1]!)) {
      throw new UsageError(`IPv6 extension header ${String(h.type)} has inconsistent length ${b.length}`);
    }
    out.set(b, pos);
    const next = repr.extHeaders[i + 1];
    out[pos] = ipProtocolToNumber(next === undefined ? repr.protocol : next.type);
    pos += b.length;
  }
  return pos;
}

/**
 * Builds a fragment extension header (RFC 8200 section 4.5) for `Ipv6Repr.extHeaders`; its
 * next-header byte is filled in on emit.
 */
export function ipv6FragmentHeader(f: Ipv6Fragment): Ipv6ExtHeader {
  if (f.offset % 8 !== 0 || f.offset > 0xfff8) throw new UsageError(`bad IPv6 fragment offset ${f.offset}`);
  const word = f.offset | (f.moreFragments ? 1 : 0);
  const id = f.ident >>> 0;
  return {
    type: "ipv6-frag",
    bytes: Uint8Array.of(
      0,
      0,
      word >>> 8,
      word & 0xff,
      id >>> 24,
      (id >>> 16) & 0xff,
      (id >>> 8) & 0xff,
      id & 0xff,
    ),
  };
}

/**
 * The length in bytes of an extension header of type `nh` whose length byte is `lenByte`, or
 * `undefined` when `nh` is not an extension header the walk steps over (an upper layer, ESP, or
 * no-next-header).
 */
export function ipv6ExtHeaderLen(nh: number, lenByte: number): number | undefined {
  return isExtHeader(nh) ? extHeaderLen(nh, lenByte) : undefined;
}

/** True for next-header values whose header the walk steps over. */
function isExtHeader(nh: number): boolean {
  switch (nh) {
    case NH_HOP_BY_HOP:
    case NH_ROUTING:
    case NH_FRAGMENT:
    case NH_AUTH:
    case NH_DEST_OPTS:
    case NH_MOBILITY:
    case NH_HIP:
    case NH_SHIM6:
      return true;
    default:
      return false;
  }
}

/** An extension header's length in bytes from its type and length byte. */
function extHeaderLen(nh: number, lenByte: number): number {
  if (nh === NH_FRAGMENT) return 8;
  // RFC 4302 section 2.2: the AH length counts 32-bit words, minus 2.
  if (nh === NH_AUTH) return (lenByte + 2) * 4;
  // RFC 8200 section 4.3 and friends: 8-byte units, not counting the first 8 bytes.
  return (lenByte + 1) * 8;
}
