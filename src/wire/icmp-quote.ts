/**
 * The "original datagram" an ICMP error quotes (RFC 792: the IP header and the first 64 bits
 * of its data; RFC 4443 section 2.4(c): as much of the IPv6 packet as fits in 1280 bytes). PMTU
 * discovery (RFC 1191, RFC 8201) and the TCP engine's ICMP handling (RFC 5927) use it to find
 * the connection the error is about.
 */
import { type SeqNum, Seq } from "./seq.js";
import { ok, type Result } from "../util/errors.js";
import { type DecodeError, decodeErr } from "./decode.js";
import type { IpAddr } from "./ip-addr.js";
import { type IpProtocol, ipProtocolFromNumber } from "./ip-protocol.js";
import { IPV6_HEADER_LEN, IPV6_MAX_EXT_HEADERS, ipv6ExtHeaderLen } from "./ipv6.js";

/** Why a quote did not decode. */
export type IcmpQuoteDecodeCode = "truncated" | "bad-version" | "bad-header-len" | "too-many-ext-headers";
/** A quote decoding failure; `offset` counts from the start of the quote. */
export type IcmpQuoteDecodeError = DecodeError<IcmpQuoteDecodeCode>;

/** What the quoted packet tells about the flow it belonged to. */
export interface IcmpQuote {
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** The quoted packet's source: normally this host. A view. */
  readonly src: IpAddr;
  /** The quoted packet's destination: normally the peer. A view. */
  readonly dst: IpAddr;
  /** Its upper-layer protocol (after IPv6 extension headers). */
  readonly protocol: IpProtocol;
  /** The quoted upper-layer bytes (at least 8 when the sender followed the RFCs): a view. */
  readonly transport: Uint8Array;
  /** Source port, when the protocol is TCP or UDP and 2 bytes are quoted. */
  readonly srcPort: number | undefined;
  /** Destination port, when the protocol is TCP or UDP and 4 bytes are quoted. */
  readonly dstPort: number | undefined;
  /** The TCP sequence number, when the protocol is TCP and 8 bytes are quoted (RFC 5927 section 4.1). */
  readonly tcpSeq: SeqNum | undefined;
}

/**
 * Decodes the quoted packet of an ICMPv4 or ICMPv6 error (chosen by its version nibble). The
 * quote may be cut anywhere after the headers; the quoted lengths are not checked against it.
 */
export function parseIcmpQuote(quoted: Uint8Array): Result<IcmpQuote, IcmpQuoteDecodeError> {
  if (quoted.length < 1) return decodeErr("truncated", 0);
  // length >= 1, so quoted[0] is defined; every later read is bounds-checked before it happens.
  const version = quoted[0]! >>> 4;
  let src: IpAddr;
  let dst: IpAddr;
  let nh: number;
  let pos: number;
  if (version === 4) {
    if (quoted.length < 20) return decodeErr("truncated", quoted.length);
    const hl = (quoted[0]! & 0x0f) * 4;
    if (hl < 20) return decodeErr("bad-header-len", 0);
    if (hl > quoted.length) return decodeErr("truncated", quoted.length);
    src = quoted.subarray(12, 16);
    dst = quoted.subarray(16, 20);
    nh = quoted[9]!;
    pos = hl;
  } else if (version === 6) {
    if (quoted.length < IPV6_HEADER_LEN) return decodeErr("truncated", quoted.length);
    src = quoted.subarray(8, 24);
    dst = quoted.subarray(24, 40);
    nh = quoted[6]!;
    pos = IPV6_HEADER_LEN;
    for (let n = 0; ; n++) {
      if (pos + 2 > quoted.length) break; // the quote ends inside the chain: report what we have
      const len = ipv6ExtHeaderLen(nh, quoted[pos + 1]!);
      if (len === undefined) break;
      if (n === IPV6_MAX_EXT_HEADERS) return decodeErr("too-many-ext-headers", pos);
      if (pos + len > quoted.length) return decodeErr("truncated", quoted.length);
      nh = quoted[pos]!;
      pos += len;
    }
  } else {
    return decodeErr("bad-version", 0);
  }
  const transport = quoted.subarray(pos);
  const t = transport;
  const ported = nh === 6 || nh === 17;
  return ok({
    version,
    src,
    dst,
    protocol: ipProtocolFromNumber(nh),
    transport,
    srcPort: ported && t.length >= 2 ? (t[0]! << 8) | t[1]! : undefined,
    dstPort: ported && t.length >= 4 ? (t[2]! << 8) | t[3]! : undefined,
    tcpSeq:
      nh === 6 && t.length >= 8 ? Seq.of((t[4]! << 24) | (t[5]! << 16) | (t[6]! << 8) | t[7]!) : undefined,
  });
}
