/**
 * ICMPv6 (RFC 4443) and the neighbor discovery messages built on it (RFC 4861): echo,
 * destination unreachable, packet too big (the MTU for PMTU discovery, RFC 8201), time exceeded,
 * parameter problem, router solicitation and advertisement, neighbor solicitation and
 * advertisement with their link-layer address, prefix and MTU options. Other types decode as
 * `other`. The checksum covers the IPv6 pseudo-header (RFC 4443 section 2.3), so verifying or
 * computing it needs the addresses.
 *
 * The NDP validity rules that depend on the IP header (hop limit 255, RFC 4861 section 7.1)
 * belong to the neighbor-discovery code; this codec checks the ICMP-level ones (code 0, minimum
 * lengths, option lengths).
 */
import { ok, type Result, UsageError } from "../util/errors.js";
import { addSums, type IpPseudoHeader, internetChecksum, pseudoHeaderSum, sumBytes } from "./checksum.js";
import { setU16, setU32, u16, u32, u8 } from "./bytes.js";
import { type DecodeError, decodeErr } from "./decode.js";
import type { MacAddr } from "./ethernet.js";
import type { IpAddr } from "./ip-addr.js";

/** Why an ICMPv6 message did not decode. */
export type Icmpv6DecodeCode = "truncated" | "bad-checksum" | "bad-code" | "bad-option-len";
/** An ICMPv6 decoding failure; `offset` counts from the start of the ICMPv6 message. */
export type Icmpv6DecodeError = DecodeError<Icmpv6DecodeCode>;

/** Bytes in the ICMPv6 header (type, code, checksum, 4 type-specific bytes). */
export const ICMPV6_HEADER_LEN = 8;
/** The IPv6 next-header value of ICMPv6. */
export const ICMPV6_PROTOCOL = 58;

/** Message types this codec interprets. */
export const Icmpv6Type = {
  DST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
} as const;

/** NDP option types this codec interprets (RFC 4861 section 4.6). */
export const NdpOptionType = {
  SOURCE_LINK_ADDR: 1,
  TARGET_LINK_ADDR: 2,
  PREFIX_INFO: 3,
  MTU: 5,
} as const;

/**
 * Zero-copy accessors over an ICMPv6 message. `bytes` must be exactly the message (the upper
 * layer's data). After `checked`, the 8-byte header is present.
 */
export class Icmpv6View {
  /** The message's bytes (a view of the caller's buffer). */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** For emission only: the caller sized `bytes` with `icmpv6BufferLen`. */
  static unchecked(bytes: Uint8Array): Icmpv6View {
    return new Icmpv6View(bytes);
  }

  /** For untrusted input: checks that the header is present. */
  static checked(bytes: Uint8Array): Result<Icmpv6View, Icmpv6DecodeError> {
    if (bytes.length < ICMPV6_HEADER_LEN) return decodeErr("truncated", bytes.length);
    return ok(new Icmpv6View(bytes));
  }

  /** Message type. */
  get type(): number {
    return u8(this.bytes, 0);
  }
  set type(v: number) {
    this.bytes[0] = v;
  }
  /** Message code. */
  get code(): number {
    return u8(this.bytes, 1);
  }
  set code(v: number) {
    this.bytes[1] = v;
  }
  /** Checksum field. */
  get checksum(): number {
    return u16(this.bytes, 2);
  }
  set checksum(v: number) {
    setU16(this.bytes, 2, v);
  }
  /** The 4 type-specific bytes after the checksum, as one 32-bit word (the MTU, pointer, flags...). */
  get word(): number {
    return u32(this.bytes, 4);
  }
  set word(v: number) {
    setU32(this.bytes, 4, v >>> 0);
  }
  /** Everything after the first 8 bytes: a view. */
  get body(): Uint8Array {
    return this.bytes.subarray(ICMPV6_HEADER_LEN);
  }
  /** True when the checksum verifies with this pseudo-header. */
  checksumOk(pseudo: IpPseudoHeader): boolean {
    const b = this.bytes;
    return (
      addSums(sumBytes(b), pseudoHeaderSum(pseudo.src, pseudo.dst, ICMPV6_PROTOCOL, b.length)) === 0xffff
    );
  }
}

/** Destination-unreachable codes (RFC 4443 section 3.1); other values stay numbers. */
export type Icmpv6UnreachableCode =
  | "no-route"
  | "admin-prohibited"
  | "beyond-scope"
  | "address-unreachable"
  | "port-unreachable"
  | "source-policy"
  | "reject-route"
  | number;

/** Time-exceeded codes (RFC 4443 section 3.3); other values stay numbers. */
export type Icmpv6TimeExceededCode = "hop-limit-exceeded" | "reassembly-exceeded" | number;

/** A prefix information option (RFC 4861 section 4.6.2). */
export interface NdpPrefixInfo {
  readonly prefixLen: number;
  /** L: the prefix is on-link. */
  readonly onLink: boolean;
  /** A: the prefix may be used for address autoconfiguration. */
  readonly autonomous: boolean;
  /** Seconds; 0xffffffff is infinity. */
  readonly validLifetime: number;
  /** Seconds; 0xffffffff is infinity. */
  readonly preferredLifetime: number;
  /** 16 bytes: a view on parse. */
  readonly prefix: IpAddr;
}

/**
 * An NDP option this codec did not interpret for the message it came in, kept verbatim. Its
 * encoded size (2 + data) must be a multiple of 8.
 */
export interface NdpRawOption {
  readonly type: number;
  /** The option after its type and length bytes: a view on parse. */
  readonly data: Uint8Array;
}

/** An ICMPv6 message, discriminated by `type`. */
export type Icmpv6Repr =
  | {
      readonly type: "echo-request" | "echo-reply";
      readonly ident: number;
      readonly seqNo: number;
      /** The echo data: a view on parse. */
      readonly data: Uint8Array;
    }
  | {
      readonly type: "dst-unreachable";
      readonly code: Icmpv6UnreachableCode;
      /** As much of the offending packet as fits: a view. See `parseIcmpQuote`. */
      readonly quoted: Uint8Array;
    }
  | {
      readonly type: "packet-too-big";
      /** The MTU of the next-hop link (RFC 8201). */
      readonly mtu: number;
      readonly quoted: Uint8Array;
    }
  | {
      readonly type: "time-exceeded";
      readonly code: Icmpv6TimeExceededCode;
      readonly quoted: Uint8Array;
    }
  | {
      readonly type: "parameter-problem";
      readonly code: number;
      /** Offset in the quoted packet where the problem was found. */
      readonly pointer: number;
      readonly quoted: Uint8Array;
    }
  | {
      readonly type: "router-solicitation";
      readonly sourceLinkAddr: MacAddr | undefined;
      readonly otherOptions: readonly NdpRawOption[];
    }
  | {
      readonly type: "router-advertisement";
      /** Hop limit hosts should use; 0 means unspecified. */
      readonly curHopLimit: number;
      /** M: addresses via DHCPv6. */
      readonly managed: boolean;
      /** O: other configuration via DHCPv6. */
      readonly otherConfig: boolean;
      /** Seconds; 0 means not a default router. */
      readonly routerLifetime: number;
      /** Milliseconds; 0 means unspecified. */
      readonly reachableTime: number;
      /** Milliseconds; 0 means unspecified. */
      readonly retransTimer: number;
      readonly sourceLinkAddr: MacAddr | undefined;
      /** The MTU option (RFC 4861 section 4.6.4), when present. */
      readonly mtu: number | undefined;
      readonly prefixes: readonly NdpPrefixInfo[];
      readonly otherOptions: readonly NdpRawOption[];
    }
  | {
      readonly type: "neighbor-solicitation";
      /** The address being resolved (or checked, in duplicate address detection): a view on parse. */
      readonly target: IpAddr;
      readonly sourceLinkAddr: MacAddr | undefined;
      readonly otherOptions: readonly NdpRawOption[];
    }
  | {
      readonly type: "neighbor-advertisement";
      /** R: the sender is a router. */
      readonly router: boolean;
      /** S: sent in response to a solicitation. */
      readonly solicited: boolean;
      /** O: override an existing cache entry. */
      readonly override: boolean;
      /** A view on parse. */
      readonly target: IpAddr;
      readonly targetLinkAddr: MacAddr | undefined;
      readonly otherOptions: readonly NdpRawOption[];
    }
  | {
      /** Any other type, kept as bytes. Do not use it for the types above. */
      readonly type: "other";
      readonly rawType: number;
      readonly code: number;
      /** The 4 bytes after the checksum, as a 32-bit word. */
      readonly word: number;
      /** Everything after the first 8 bytes: a view on parse. */
      readonly body: Uint8Array;
    };

const UNREACHABLE_CODES: readonly Extract<Icmpv6UnreachableCode, string>[] = [
  "no-route",
  "admin-prohibited",
  "beyond-scope",
  "address-unreachable",
  "port-unreachable",
  "source-policy",
  "reject-route",
];

/**
 * Decodes a checked view. With `pseudo`, a checksum that does not verify is `bad-checksum`. NDP
 * messages with a nonzero code are `bad-code`, shorter than their fixed part `truncated`, and
 * an option of length 0 or past the end `bad-option-len` (RFC 4861 section 7.1.1).
 */
export function parseIcmpv6(
  view: Icmpv6View,
  pseudo?: IpPseudoHeader,
): Result<Icmpv6Repr, Icmpv6DecodeError> {
  if (pseudo !== undefined && !view.checksumOk(pseudo)) return decodeErr("bad-checksum", 2);
  const b = view.bytes;
  const type = view.type;
  const code = view.code;
  const word = view.word;
  switch (type) {
    case Icmpv6Type.ECHO_REQUEST:
    case Icmpv6Type.ECHO_REPLY:
      return ok({
        type: type === Icmpv6Type.ECHO_REQUEST ? "echo-request" : "echo-reply",
        ident: word >>> 16,
        seqNo: word & 0xffff,
        data: view.body,
      });
    case Icmpv6Type.DST_UNREACHABLE:
      return ok({ type: "dst-unreachable", code: UNREACHABLE_CODES[code] ?? code, quoted: view.body });
    case Icmpv6Type.PACKET_TOO_BIG:
      return ok({ type: "packet-too-big", mtu: word, quoted: view.body });
    case Icmpv6Type.TIME_EXCEEDED:
      return ok({
        type: "time-exceeded",
        code: code === 0 ? "hop-limit-exceeded" : code === 1 ? "reassembly-exceeded" : code,
        quoted: view.body,
      });
    case Icmpv6Type.PARAMETER_PROBLEM:
      return ok({ type: "parameter-problem", code, pointer: word, quoted: view.body });
    case Icmpv6Type.ROUTER_SOLICITATION: {
      if (code !== 0) return decodeErr("bad-code", 1);
      const opts = parseNdpOptions(b, 8);
      if (!opts.ok) return opts;
      const o = opts.value;
      return ok({ type: "router-solicitation", sourceLinkAddr: o.source, otherOptions: o.other });
    }
    case Icmpv6Type.ROUTER_ADVERTISEMENT: {
      if (code !== 0) return decodeErr("bad-code", 1);
      if (b.length < 16) return decodeErr("truncated", b.length);
      const opts = parseNdpOptions(b, 16);
      if (!opts.ok) return opts;
      const o = opts.value;
      return ok({
        type: "router-advertisement",
        curHopLimit: word >>> 24,
        managed: (word & 0x800000) !== 0,
        otherConfig: (word & 0x400000) !== 0,
        routerLifetime: word & 0xffff,
        reachableTime: u32(b, 8),
        retransTimer: u32(b, 12),
        sourceLinkAddr: o.source,
        mtu: o.mtu,
        prefixes: o.prefixes,
        otherOptions: o.other,
      });
    }
    case Icmpv6Type.NEIGHBOR_SOLICITATION: {
      if (code !== 0) return decodeErr("bad-code", 1);
      if (b.length < 24) return decodeErr("truncated", b.length);
      const opts = parseNdpOptions(b, 24);
      if (!opts.ok) return opts;
      const o = opts.value;
      return ok({
        type: "neighbor-solicitation",
        target: b.subarray(8, 24),
        sourceLinkAddr: o.source,
        otherOptions: o.other,
      });
    }
    case Icmpv6Type.NEIGHBOR_ADVERTISEMENT: {
      if (code !== 0) return decodeErr("bad-code", 1);
      if (b.length < 24) return decodeErr("truncated", b.length);
      const opts = parseNdpOptions(b, 24);
      if (!opts.ok) return opts;
      const o = opts.value;
      return ok({
        type: "neighbor-advertisement",
        router: (word & 0x80000000) !== 0,
        solicited: (word & 0x40000000) !== 0,
        override: (word & 0x20000000) !== 0,
        target: b.subarray(8, 24),
        targetLinkAddr: o.target,
        otherOptions: o.other,
      });
    }
    default:
      return ok({ type: "other", rawType: type, code, word, body: view.body });
  }
}

/** Bytes of the whole message. */
export function icmpv6BufferLen(repr: Icmpv6Repr): number {
  switch (repr.type) {
    case "echo-request":
    case "echo-reply":
      return ICMPV6_HEADER_LEN + repr.data.length;
    case "dst-unreachable":
    case "packet-too-big":
    case "time-exceeded":
    case "parameter-problem":
      return ICMPV6_HEADER_LEN + repr.quoted.length;
    case "router-solicitation":
      return 8 + linkAddrLen(repr.sourceLinkAddr) + rawOptionsLen(repr.otherOptions);
    case "router-advertisement":
      return (
        16 +
        linkAddrLen(repr.sourceLinkAddr) +
        (repr.mtu === undefined ? 0 : 8) +
        32 * repr.prefixes.length +
        rawOptionsLen(repr.otherOptions)
      );
    case "neighbor-solicitation":
      return 24 + linkAddrLen(repr.sourceLinkAddr) + rawOptionsLen(repr.otherOptions);
    case "neighbor-advertisement":
      return 24 + linkAddrLen(repr.targetLinkAddr) + rawOptionsLen(repr.otherOptions);
    case "other":
      return ICMPV6_HEADER_LEN + repr.body.length;
  }
}

/**
 * Writes the message into `out`, which must be exactly `icmpv6BufferLen(repr)` bytes. With
 * `pseudo`, the checksum is computed; without, it is left zero (checksum offload).
 */
export function emitIcmpv6(repr: Icmpv6Repr, out: Uint8Array, pseudo?: IpPseudoHeader): void {
  const len = icmpv6BufferLen(repr);
  if (out.length !== len) throw new UsageError(`ICMPv6 message needs ${len} bytes, got ${out.length}`);
  const sum =
    pseudo === undefined ? undefined : pseudoHeaderSum(pseudo.src, pseudo.dst, ICMPV6_PROTOCOL, len);
  writeIcmpv6(repr, out, 0, len, sum);
}

/**
 * Writes the message at `out[at, at + len)` and the checksum when `pseudoSum` is given; for
 * emitters in this folder that sized `out`.
 */
export function writeIcmpv6(
  repr: Icmpv6Repr,
  out: Uint8Array,
  at: number,
  len: number,
  pseudoSum: number | undefined,
): void {
  out.fill(0, at, at + ICMPV6_HEADER_LEN);
  let o = at + ICMPV6_HEADER_LEN;
  const put = (body: Uint8Array) => {
    out.set(body, o);
    o += body.length;
  };
  switch (repr.type) {
    case "echo-request":
    case "echo-reply":
      out[at] = repr.type === "echo-request" ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY;
      setU32(out, at + 4, ((repr.ident & 0xffff) << 16) | (repr.seqNo & 0xffff));
      put(repr.data);
      break;
    case "dst-unreachable": {
      out[at] = Icmpv6Type.DST_UNREACHABLE;
      const c = repr.code;
      out[at + 1] = typeof c === "number" ? c : UNREACHABLE_CODES.indexOf(c);
      put(repr.quoted);
      break;
    }
    case "packet-too-big":
      out[at] = Icmpv6Type.PACKET_TOO_BIG;
      setU32(out, at + 4, repr.mtu);
      put(repr.quoted);
      break;
    case "time-exceeded": {
      out[at] = Icmpv6Type.TIME_EXCEEDED;
      const c = repr.code;
      out[at + 1] = c === "hop-limit-exceeded" ? 0 : c === "reassembly-exceeded" ? 1 : c;
      put(repr.quoted);
      break;
    }
    case "parameter-problem":
      out[at] = Icmpv6Type.PARAMETER_PROBLEM;
      out[at + 1] = repr.code;
      setU32(out, at + 4, repr.pointer);
      put(repr.quoted);
      break;
    case "router-solicitation":
      out[at] = Icmpv6Type.ROUTER_SOLICITATION;
      o = writeLinkAddr(out, o, NdpOptionType.SOURCE_LINK_ADDR, repr.sourceLinkAddr);
      o = writeRawOptions(out, o, repr.otherOptions);
      break;
    case "router-advertisement":
      out[at] = Icmpv6Type.ROUTER_ADVERTISEMENT;
      out[at + 4] = repr.curHopLimit;
      out[at + 5] = (repr.managed ? 0x80 : 0) | (repr.otherConfig ? 0x40 : 0);
      out[at + 6] = (repr.routerLifetime >>> 8) & 0xff;
      out[at + 7] = repr.routerLifetime & 0xff;
      setU32(out, o, repr.reachableTime);
      setU32(out, o + 4, repr.retransTimer);
      o += 8;
      o = writeLinkAddr(out, o, NdpOptionType.SOURCE_LINK_ADDR, repr.sourceLinkAddr);
      if (repr.mtu !== undefined) {
        out[o] = NdpOptionType.MTU;
        out[o + 1] = 1;
        out[o + 2] = 0;
        out[o + 3] = 0;
        setU32(out, o + 4, repr.mtu);
        o += 8;
      }
      for (const p of repr.prefixes) {
        if (p.prefix.length !== 16) throw new UsageError("an NDP prefix must be 16 bytes");
        out[o] = NdpOptionType.PREFIX_INFO;
        out[o + 1] = 4;
        out[o + 2] = p.prefixLen;
        out[o + 3] = (p.onLink ? 0x80 : 0) | (p.autonomous ? 0x40 : 0);
        setU32(out, o + 4, p.validLifetime);
        setU32(out, o + 8, p.preferredLifetime);
        setU32(out, o + 12, 0);
        out.set(p.prefix, o + 16);
        o += 32;
      }
      o = writeRawOptions(out, o, repr.otherOptions);
      break;
    case "neighbor-solicitation":
      out[at] = Icmpv6Type.NEIGHBOR_SOLICITATION;
      if (repr.target.length !== 16) throw new UsageError("an NDP target must be an IPv6 address");
      put(repr.target);
      o = writeLinkAddr(out, o, NdpOptionType.SOURCE_LINK_ADDR, repr.sourceLinkAddr);
      o = writeRawOptions(out, o, repr.otherOptions);
      break;
    case "neighbor-advertisement":
      out[at] = Icmpv6Type.NEIGHBOR_ADVERTISEMENT;
      out[at + 4] = (repr.router ? 0x80 : 0) | (repr.solicited ? 0x40 : 0) | (repr.override ? 0x20 : 0);
      if (repr.target.length !== 16) throw new UsageError("an NDP target must be an IPv6 address");
      put(repr.target);
      o = writeLinkAddr(out, o, NdpOptionType.TARGET_LINK_ADDR, repr.targetLinkAddr);
      o = writeRawOptions(out, o, repr.otherOptions);
      break;
    case "other":
      out[at] = repr.rawType;
      out[at + 1] = repr.code;
      setU32(out, at + 4, repr.word);
      put(repr.body);
      break;
  }
  if (o !== at + len) throw new UsageError(`ICMPv6 message wrote ${o - at} bytes, sized ${len}`);
  if (pseudoSum !== undefined) {
    const c = internetChecksum(out, at, at + len, pseudoSum);
    out[at + 2] = c >>> 8;
    out[at + 3] = c & 0xff;
  }
}

/** The solicited-node multicast group of an address: ff02::1:ffXX:XXXX (RFC 4291 section 2.7.1). */
export function solicitedNodeMulticast(addr: IpAddr): IpAddr {
  const g = new Uint8Array(16);
  g[0] = 0xff;
  g[1] = 0x02;
  g[11] = 0x01;
  g[12] = 0xff;
  g[13] = addr[13] ?? 0;
  g[14] = addr[14] ?? 0;
  g[15] = addr[15] ?? 0;
  return g;
}

/** ff02::1, all nodes on the link. */
export const ALL_NODES_MULTICAST: IpAddr = Uint8Array.of(0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
/** ff02::2, all routers on the link. */
export const ALL_ROUTERS_MULTICAST: IpAddr = Uint8Array.of(0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2);

// ---------------------------------------------------------------------------------------------
// Helpers

interface NdpOptions {
  source: MacAddr | undefined;
  target: MacAddr | undefined;
  mtu: number | undefined;
  prefixes: NdpPrefixInfo[];
  other: NdpRawOption[];
}

/**
 * Walks the options from `b[start..]`. Which ones a message interprets is decided by its type:
 * link-layer addresses of 6 bytes, prefix information and MTU are decoded here, and each caller
 * takes the fields it uses; an option a message does not use is kept in `other`.
 */
function parseNdpOptions(b: Uint8Array, start: number): Result<NdpOptions, Icmpv6DecodeError> {
  const type = b[0];
  const res: NdpOptions = { source: undefined, target: undefined, mtu: undefined, prefixes: [], other: [] };
  let i = start;
  // Reads are at indices < i + len <= b.length, checked before each option is decoded.
  while (i < b.length) {
    if (i + 2 > b.length) return decodeErr("bad-option-len", i + 1);
    const optType = b[i]!;
    const len = b[i + 1]! * 8;
    if (len === 0 || i + len > b.length) return decodeErr("bad-option-len", i + 1);
    const raw: NdpRawOption = { type: optType, data: b.subarray(i + 2, i + len) };
    const uses = usedOptions(type);
    if (optType === NdpOptionType.SOURCE_LINK_ADDR && len === 8 && uses.source) {
      res.source = b.subarray(i + 2, i + 8);
    } else if (optType === NdpOptionType.TARGET_LINK_ADDR && len === 8 && uses.target) {
      res.target = b.subarray(i + 2, i + 8);
    } else if (optType === NdpOptionType.MTU && uses.router) {
      if (len !== 8) return decodeErr("bad-option-len", i + 1);
      res.mtu = u32(b, i + 4);
    } else if (optType === NdpOptionType.PREFIX_INFO && uses.router) {
      if (len !== 32) return decodeErr("bad-option-len", i + 1);
      const flags = b[i + 3]!;
      res.prefixes.push({
        prefixLen: b[i + 2]!,
        onLink: (flags & 0x80) !== 0,
        autonomous: (flags & 0x40) !== 0,
        validLifetime: u32(b, i + 4),
        preferredLifetime: u32(b, i + 8),
        prefix: b.subarray(i + 16, i + 32),
      });
    } else {
      res.other.push(raw);
    }
    i += len;
  }
  return ok(res);
}

/** Which options each NDP message interprets (RFC 4861 sections 4.1 to 4.4). */
function usedOptions(type: number | undefined): { source: boolean; target: boolean; router: boolean } {
  if (type === Icmpv6Type.ROUTER_ADVERTISEMENT) return { source: true, target: false, router: true };
  if (type === Icmpv6Type.NEIGHBOR_ADVERTISEMENT) return { source: false, target: true, router: false };
  return { source: true, target: false, router: false };
}

function linkAddrLen(a: MacAddr | undefined): number {
  return a === undefined ? 0 : 8;
}

function rawOptionsLen(opts: readonly NdpRawOption[]): number {
  let n = 0;
  for (const o of opts) n += 2 + o.data.length;
  return n;
}

function writeLinkAddr(out: Uint8Array, o: number, type: number, a: MacAddr | undefined): number {
  if (a === undefined) return o;
  if (a.length !== 6) throw new UsageError("an NDP link-layer address must be 6 bytes");
  out[o] = type;
  out[o + 1] = 1;
  out.set(a, o + 2);
  return o + 8;
}

function writeRawOptions(out: Uint8Array, o: number, opts: readonly NdpRawOption[]): number {
  for (const opt of opts) {
    const len = 2 + opt.data.length;
    if (len % 8 !== 0 || len > 255 * 8)
      throw new UsageError(`NDP option of ${len} bytes is not a multiple of 8`);
    out[o] = opt.type;
    out[o + 1] = len / 8;
    out.set(opt.data, o + 2);
    o += len;
  }
  return o;
}
