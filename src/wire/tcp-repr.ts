/**
 * The TCP segment as the stack acts on it (RFC 9293 section 3.1, RFC 7323, RFC 2018): a plain
 * record with every field present. The codec (`tcp.ts`) turns bytes into this and back; the
 * TCP engine consumes and produces it. Flags are kept as the raw bit set so that any
 * combination a peer sends (SYN+FIN, no ACK with data, ...) can be represented and judged
 * by the engine per RFC 9293 section 3.10.7, not silently rejected by the decoder.
 */
import type { SeqNum } from "./seq.js";

/** Flag bits of the TCP header's flags byte (RFC 9293 figure 1, RFC 3168). */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** One SACK block (RFC 2018 section 3): bytes [left, right) were received. */
export interface SackBlock {
  readonly left: SeqNum;
  readonly right: SeqNum;
}

/** The timestamps option (RFC 7323 section 3). */
export interface TcpTimestamps {
  readonly tsVal: number;
  readonly tsEcr: number;
}

/** An option kind this stack does not interpret, kept verbatim so it survives and prints. */
export interface TcpUnknownOption {
  readonly kind: number;
  /** The option's data after kind and length: a view into the segment. */
  readonly data: Uint8Array;
}

/** A TCP segment. */
export interface TcpRepr {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: SeqNum;
  /** Meaningful only when `flags & TcpFlag.ACK`; emitted as-is either way. */
  readonly ack: SeqNum;
  /** Raw flag bits, see `TcpFlag`. */
  readonly flags: number;
  /** The window field as sent (unscaled). */
  readonly window: number;
  /** Meaningful only when `flags & TcpFlag.URG`. */
  readonly urgent: number;
  /** MSS option (kind 2), or undefined when absent. */
  readonly mss: number | undefined;
  /** Window scale option (kind 3) shift count as sent (the engine clamps to 14, RFC 7323 2.3). */
  readonly windowScale: number | undefined;
  /** SACK-permitted option (kind 4) present. */
  readonly sackPermitted: boolean;
  /** SACK option (kind 5) blocks, empty when absent. At most 4 fit in the option space. */
  readonly sack: readonly SackBlock[];
  /** Timestamps option (kind 8), or undefined when absent. */
  readonly timestamps: TcpTimestamps | undefined;
  /** Options of other kinds, in the order they appeared. */
  readonly unknownOptions: readonly TcpUnknownOption[];
  /** The segment's data: a view into the packet on parse, caller's bytes on emit. */
  readonly payload: Uint8Array;
  /**
   * The IP header's ECN codepoint to send the segment with (RFC 3168 5: 2 is ECT(0)); absent or
   * 0 is not-ECT. Set by the engine on the new data of an ECN connection; never set on parse
   * (a received CE mark reaches the engine through `handleSegment`'s `ce`).
   */
  readonly ecn?: number | undefined;
}

/** RFC 3168 5: the ECT(0) codepoint of the IP header's ECN field. */
export const ECN_ECT0 = 2;
/** RFC 3168 5: the CE (congestion experienced) codepoint. */
export const ECN_CE = 3;

/**
 * A segment with every field at its zero: no flags, no options, no data. Spread it and set what
 * matters (`{ ...BLANK_TCP, flags: TcpFlag.ACK, ack }`).
 */
export const BLANK_TCP: TcpRepr = Object.freeze({
  srcPort: 0,
  dstPort: 0,
  seq: 0 as SeqNum,
  ack: 0 as SeqNum,
  flags: 0,
  window: 0,
  urgent: 0,
  mss: undefined,
  windowScale: undefined,
  sackPermitted: false,
  sack: Object.freeze([]),
  timestamps: undefined,
  unknownOptions: Object.freeze([]),
  payload: new Uint8Array(0),
});

/** True when every bit of `mask` is set in the segment's flags. */
export function hasFlags(seg: { readonly flags: number }, mask: number): boolean {
  return (seg.flags & mask) === mask;
}

/** The segment's length in sequence space: payload plus one each for SYN and FIN. */
export function segLen(seg: TcpRepr): number {
  return seg.payload.length + (seg.flags & TcpFlag.SYN ? 1 : 0) + (seg.flags & TcpFlag.FIN ? 1 : 0);
}
