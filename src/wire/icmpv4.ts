/**
 * ICMP for IPv4 (RFC 792), the messages PMTU discovery and diagnostics need: echo request and
 * reply, destination unreachable (with the next-hop MTU of "fragmentation needed", RFC 1191
 * section 4) and time exceeded. Other types decode as `other` and keep their bytes.
 */
import { ok, type Result, UsageError } from "../util/errors.js";
import { internetChecksum, verifyChecksum } from "./checksum.js";
import { setU16, setU32, u16, u32, u8 } from "./bytes.js";
import { type DecodeError, decodeErr } from "./decode.js";

/** Why an ICMPv4 message did not decode. */
export type Icmpv4DecodeCode = "truncated" | "bad-checksum";
/** An ICMPv4 decoding failure. */
export type Icmpv4DecodeError = DecodeError<Icmpv4DecodeCode>;

/** Bytes in the ICMP header (type, code, checksum and the 4-byte rest of header). */
export const ICMPV4_HEADER_LEN = 8;

/** Message types this codec interprets. */
export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DST_UNREACHABLE: 3,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
} as const;

/**
 * Zero-copy accessors over an ICMPv4 message. `bytes` must be exactly the message (the IP
 * payload), as the checksum covers all of it. After `checked`, the 8-byte header is present.
 */
export class Icmpv4View {
  /** The message's bytes (a view of the caller's buffer). */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** For emission only: the caller sized `bytes` with `icmpv4BufferLen`. */
  static unchecked(bytes: Uint8Array): Icmpv4View {
    return new Icmpv4View(bytes);
  }

  /** For untrusted input: checks that the header is present. */
  static checked(bytes: Uint8Array): Result<Icmpv4View, Icmpv4DecodeError> {
    if (bytes.length < ICMPV4_HEADER_LEN) return decodeErr("truncated", bytes.length);
    return ok(new Icmpv4View(bytes));
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
  /** The 4 type-specific bytes after the checksum, as one 32-bit word. */
  get restOfHeader(): number {
    return u32(this.bytes, 4);
  }
  set restOfHeader(v: number) {
    setU32(this.bytes, 4, v >>> 0);
  }
  /** Echo identifier (bytes 4..5). */
  get ident(): number {
    return u16(this.bytes, 4);
  }
  /** Echo sequence number (bytes 6..7). */
  get seqNo(): number {
    return u16(this.bytes, 6);
  }
  /** Next-hop MTU of a fragmentation-needed message (bytes 6..7, RFC 1191 section 4). */
  get nextHopMtu(): number {
    return u16(this.bytes, 6);
  }
  /** Everything after the 8-byte header (echo data, or the quoted packet): a view. */
  get data(): Uint8Array {
    return this.bytes.subarray(ICMPV4_HEADER_LEN);
  }
  /** True when the checksum verifies. */
  get checksumOk(): boolean {
    return verifyChecksum(this.bytes);
  }
}

/** Destination-unreachable codes (RFC 792, RFC 1122, RFC 1812); other values stay numbers. */
export type Icmpv4UnreachableCode =
  | "net-unreachable"
  | "host-unreachable"
  | "protocol-unreachable"
  | "port-unreachable"
  | "frag-needed"
  | "source-route-failed"
  | "admin-prohibited"
  | number;

/** Time-exceeded codes (RFC 792); other values stay numbers. */
export type Icmpv4TimeExceededCode = "ttl-exceeded" | "reassembly-exceeded" | number;

/** An ICMPv4 message, discriminated by `type`. */
export type Icmpv4Repr =
  | {
      readonly type: "echo-request" | "echo-reply";
      readonly ident: number;
      readonly seqNo: number;
      /** The echo data: a view on parse. */
      readonly data: Uint8Array;
    }
  | {
      readonly type: "dst-unreachable";
      readonly code: Icmpv4UnreachableCode;
      /** The next-hop MTU for `frag-needed` (0 from routers older than RFC 1191); else undefined. */
      readonly nextHopMtu: number | undefined;
      /** The original IP header and at least 8 bytes of its data: a view. See `parseIcmpQuote`. */
      readonly quoted: Uint8Array;
    }
  | {
      readonly type: "time-exceeded";
      readonly code: Icmpv4TimeExceededCode;
      /** The original IP header and at least 8 bytes of its data: a view. */
      readonly quoted: Uint8Array;
    }
  | {
      /** Any other type, kept as bytes. Do not use it for the types above. */
      readonly type: "other";
      readonly rawType: number;
      readonly code: number;
      /** The 4 bytes after the checksum, as a 32-bit word. */
      readonly rest: number;
      /** Everything after the 8-byte header: a view on parse. */
      readonly data: Uint8Array;
    };

const UNREACHABLE_CODES: readonly Extract<Icmpv4UnreachableCode, string>[] = [
  "net-unreachable",
  "host-unreachable",
  "protocol-unreachable",
  "port-unreachable",
  "frag-needed",
  "source-route-failed",
];

/** Decodes a checked view; with `verifyChecksum` (the default) a bad checksum is an error. */
export function parseIcmpv4(view: Icmpv4View, verifyChecksum = true): Result<Icmpv4Repr, Icmpv4DecodeError> {
  if (verifyChecksum && !view.checksumOk) return decodeErr("bad-checksum", 2);
  const type = view.type;
  const code = view.code;
  switch (type) {
    case Icmpv4Type.ECHO_REQUEST:
    case Icmpv4Type.ECHO_REPLY:
      return ok({
        type: type === Icmpv4Type.ECHO_REQUEST ? "echo-request" : "echo-reply",
        ident: view.ident,
        seqNo: view.seqNo,
        data: view.data,
      });
    case Icmpv4Type.DST_UNREACHABLE: {
      const name = code === 13 ? "admin-prohibited" : UNREACHABLE_CODES[code];
      return ok({
        type: "dst-unreachable",
        code: name ?? code,
        nextHopMtu: code === 4 ? view.nextHopMtu : undefined,
        quoted: view.data,
      });
    }
    case Icmpv4Type.TIME_EXCEEDED:
      return ok({
        type: "time-exceeded",
        code: code === 0 ? "ttl-exceeded" : code === 1 ? "reassembly-exceeded" : code,
        quoted: view.data,
      });
    default:
      return ok({ type: "other", rawType: type, code, rest: view.restOfHeader, data: view.data });
  }
}

/** Bytes of the whole message: the 8-byte header plus data or quote. */
export function icmpv4BufferLen(repr: Icmpv4Repr): number {
  switch (repr.type) {
    case "echo-request":
    case "echo-reply":
    case "other":
      return ICMPV4_HEADER_LEN + repr.data.length;
    case "dst-unreachable":
    case "time-exceeded":
      return ICMPV4_HEADER_LEN + repr.quoted.length;
  }
}

/**
 * Writes the message into `out`, which must be exactly `icmpv4BufferLen(repr)` bytes, and the
 * checksum when `computeChecksum` (the default).
 */
export function emitIcmpv4(repr: Icmpv4Repr, out: Uint8Array, computeChecksum = true): void {
  const len = icmpv4BufferLen(repr);
  if (out.length !== len) throw new UsageError(`ICMPv4 message needs ${len} bytes, got ${out.length}`);
  writeIcmpv4(repr, out, 0, len, computeChecksum);
}

/** Writes the message at `out[at, at + len)`; for emitters in this folder that sized `out`. */
export function writeIcmpv4(
  repr: Icmpv4Repr,
  out: Uint8Array,
  at: number,
  len: number,
  computeChecksum: boolean,
): void {
  let type: number;
  let code: number;
  let rest: number;
  let body: Uint8Array;
  switch (repr.type) {
    case "echo-request":
    case "echo-reply":
      type = repr.type === "echo-request" ? Icmpv4Type.ECHO_REQUEST : Icmpv4Type.ECHO_REPLY;
      code = 0;
      rest = (((repr.ident & 0xffff) << 16) | (repr.seqNo & 0xffff)) >>> 0;
      body = repr.data;
      break;
    case "dst-unreachable":
      type = Icmpv4Type.DST_UNREACHABLE;
      code = unreachableCodeNumber(repr.code);
      rest = code === 4 ? (repr.nextHopMtu ?? 0) & 0xffff : 0;
      body = repr.quoted;
      break;
    case "time-exceeded":
      type = Icmpv4Type.TIME_EXCEEDED;
      code = repr.code === "ttl-exceeded" ? 0 : repr.code === "reassembly-exceeded" ? 1 : repr.code;
      rest = 0;
      body = repr.quoted;
      break;
    case "other":
      type = repr.rawType;
      code = repr.code;
      rest = repr.rest >>> 0;
      body = repr.data;
      break;
  }
  out[at] = type;
  out[at + 1] = code;
  out[at + 2] = 0;
  out[at + 3] = 0;
  out[at + 4] = rest >>> 24;
  out[at + 5] = (rest >>> 16) & 0xff;
  out[at + 6] = (rest >>> 8) & 0xff;
  out[at + 7] = rest & 0xff;
  out.set(body, at + ICMPV4_HEADER_LEN);
  if (computeChecksum) {
    const c = internetChecksum(out, at, at + len);
    out[at + 2] = c >>> 8;
    out[at + 3] = c & 0xff;
  }
}

/** The wire value of a destination-unreachable code. */
function unreachableCodeNumber(code: Icmpv4UnreachableCode): number {
  if (typeof code === "number") return code;
  if (code === "admin-prohibited") return 13;
  return UNREACHABLE_CODES.indexOf(code);
}
