/**
 * Ethernet II framing (IEEE 802.3 with an EtherType) and one IEEE 802.1Q VLAN tag, plus the
 * 48-bit MAC address type. The frame check sequence is not part of the bytes here (capture
 * files and TAP devices carry frames without it).
 */
import { err, ok, type Result, UsageError } from "../util/errors.js";
import { setU16, u16 } from "./bytes.js";
import { type DecodeError, decodeErr } from "./decode.js";
import type { IpAddr } from "./ip-addr.js";

// ---------------------------------------------------------------------------------------------
// MAC addresses

/** A 48-bit MAC address: a 6-byte `Uint8Array`. Treat as immutable. */
export type MacAddr = Uint8Array;

/** ff:ff:ff:ff:ff:ff. */
export const MAC_BROADCAST: MacAddr = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
/** 00:00:00:00:00:00 (the ARP request's unknown target hardware address). */
export const MAC_ZERO: MacAddr = new Uint8Array(6);

/** Lower-case, colon-separated text: `02:00:00:00:00:01`. */
export function macToString(m: MacAddr): string {
  let s = "";
  for (let i = 0; i < m.length; i++) s += (i === 0 ? "" : ":") + (m[i] ?? 0).toString(16).padStart(2, "0");
  return s;
}

/** Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (hex digits in either case). */
export function parseMac(text: string): Result<MacAddr, string> {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    return err(`not a MAC address: ${JSON.stringify(text)}`);
  }
  return ok(Uint8Array.from(parts, (p) => parseInt(p, 16)));
}

/** Parses or throws `UsageError`: for constants in code and tests, never for input. */
export function mac(text: string): MacAddr {
  const r = parseMac(text);
  if (!r.ok) throw new UsageError(r.error);
  return r.value;
}

/** Byte-wise equality. */
export function macEquals(a: MacAddr, b: MacAddr): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True for a group address (the I/G bit, the low bit of the first byte); broadcast included. */
export function isMulticastMac(m: MacAddr): boolean {
  return ((m[0] ?? 0) & 1) === 1;
}

/** True for ff:ff:ff:ff:ff:ff. */
export function isBroadcastMac(m: MacAddr): boolean {
  return macEquals(m, MAC_BROADCAST);
}

/** The MAC address an IPv6 multicast address maps to: 33:33 and its last 32 bits (RFC 2464 section 7). */
export function ipv6MulticastMac(group: IpAddr): MacAddr {
  return Uint8Array.of(0x33, 0x33, group[12] ?? 0, group[13] ?? 0, group[14] ?? 0, group[15] ?? 0);
}

// ---------------------------------------------------------------------------------------------
// EtherType

/** Known EtherType names (IEEE registry); any other value stays a number. */
export type EtherTypeName = "ipv4" | "arp" | "ipv6";

/** An EtherType: a known name, or the raw 16-bit number when unknown (an open enum). */
export type EtherType = EtherTypeName | number;

/** The number of every known name. */
export const ETHER_TYPE_NUMBERS: { readonly [K in EtherTypeName]: number } = {
  ipv4: 0x0800,
  arp: 0x0806,
  ipv6: 0x86dd,
};

/** The 802.1Q tag protocol identifier, which takes the EtherType's place in a tagged frame. */
export const ETHER_TYPE_VLAN = 0x8100;

/** The canonical form of an EtherType number: its name when known, else the number. */
export function etherTypeFromNumber(n: number): EtherType {
  switch (n) {
    case 0x0800:
      return "ipv4";
    case 0x0806:
      return "arp";
    case 0x86dd:
      return "ipv6";
    default:
      return n;
  }
}

/** The wire value of an EtherType. */
export function etherTypeToNumber(t: EtherType): number {
  return typeof t === "number" ? t : ETHER_TYPE_NUMBERS[t];
}

// ---------------------------------------------------------------------------------------------
// View

/** Why an Ethernet header did not decode. */
export type EthernetDecodeCode = "truncated";
/** An Ethernet decoding failure. */
export type EthernetDecodeError = DecodeError<EthernetDecodeCode>;

/** Bytes in an untagged Ethernet II header. */
export const ETHERNET_HEADER_LEN = 14;
/** Bytes in a header with one 802.1Q tag. */
export const ETHERNET_VLAN_HEADER_LEN = 18;
/** The smallest frame on the wire without its FCS (senders pad shorter frames with zeros). */
export const ETHERNET_MIN_FRAME_LEN = 60;

/**
 * Zero-copy accessors over an Ethernet II frame (header and payload). After `checked`, every
 * getter is in bounds. Setting `etherType` to or from 0x8100 moves the payload's start, so a
 * view from `checked` must not be used for reading after that.
 */
export class EthernetView {
  /** The frame's bytes (a view of the caller's buffer). */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** For emission only: the caller sized `bytes` with `ethernetBufferLen`. */
  static unchecked(bytes: Uint8Array): EthernetView {
    return new EthernetView(bytes);
  }

  /** For untrusted input: checks that the header (with its VLAN tag, if any) fits. */
  static checked(bytes: Uint8Array): Result<EthernetView, EthernetDecodeError> {
    if (bytes.length < ETHERNET_HEADER_LEN) return decodeErr("truncated", bytes.length);
    const view = new EthernetView(bytes);
    if (view.etherType === ETHER_TYPE_VLAN && bytes.length < ETHERNET_VLAN_HEADER_LEN) {
      return decodeErr("truncated", bytes.length);
    }
    return ok(view);
  }

  /** Destination address: a view of bytes 0..5. */
  get dst(): MacAddr {
    return this.bytes.subarray(0, 6);
  }
  set dst(m: MacAddr) {
    this.bytes.set(m, 0);
  }
  /** Source address: a view of bytes 6..11. */
  get src(): MacAddr {
    return this.bytes.subarray(6, 12);
  }
  set src(m: MacAddr) {
    this.bytes.set(m, 6);
  }
  /** The EtherType field at offset 12, which is 0x8100 (TPID) in a tagged frame. */
  get etherType(): number {
    return u16(this.bytes, 12);
  }
  set etherType(v: number) {
    setU16(this.bytes, 12, v);
  }
  /** True when an 802.1Q tag follows the source address. */
  get isTagged(): boolean {
    return this.etherType === ETHER_TYPE_VLAN;
  }
  /** The tag control information (PCP:3, DEI:1, VID:12); only when `isTagged`. */
  get vlanTci(): number {
    return u16(this.bytes, 14);
  }
  set vlanTci(v: number) {
    setU16(this.bytes, 14, v);
  }
  /** The EtherType of the payload: after the tag when tagged. */
  get payloadType(): number {
    return this.isTagged ? u16(this.bytes, 16) : this.etherType;
  }
  set payloadType(v: number) {
    setU16(this.bytes, this.isTagged ? 16 : 12, v);
  }
  /** 14, or 18 with a VLAN tag. */
  get headerLen(): number {
    return this.isTagged ? ETHERNET_VLAN_HEADER_LEN : ETHERNET_HEADER_LEN;
  }
  /** Everything after the header, including any padding: a view. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLen);
  }
}

// ---------------------------------------------------------------------------------------------
// Repr

/** An IEEE 802.1Q tag. */
export interface VlanTag {
  /** VLAN identifier, 0..4095 (0: priority tag only). */
  readonly id: number;
  /** Priority code point, 0..7. */
  readonly priority: number;
  /** Drop eligible indicator. */
  readonly dropEligible: boolean;
}

/** An Ethernet II header. The payload is not part of it; it follows in the frame. */
export interface EthernetRepr {
  readonly dst: MacAddr;
  readonly src: MacAddr;
  /** The payload's EtherType (inside the tag when there is one). */
  readonly etherType: EtherType;
  readonly vlan: VlanTag | undefined;
}

/** Decodes a checked view. The addresses are views into the frame. Cannot fail. */
export function parseEthernet(view: EthernetView): Result<EthernetRepr, EthernetDecodeError> {
  let vlan: VlanTag | undefined;
  if (view.isTagged) {
    const tci = view.vlanTci;
    vlan = { id: tci & 0x0fff, priority: tci >>> 13, dropEligible: (tci & 0x1000) !== 0 };
  }
  return ok({ dst: view.dst, src: view.src, etherType: etherTypeFromNumber(view.payloadType), vlan });
}

/** Bytes the header takes: 14, or 18 with a VLAN tag. The payload is extra. */
export function ethernetBufferLen(repr: EthernetRepr): number {
  return repr.vlan === undefined ? ETHERNET_HEADER_LEN : ETHERNET_VLAN_HEADER_LEN;
}

/** Writes the header into `out`, which must be exactly `ethernetBufferLen(repr)` bytes. */
export function emitEthernet(repr: EthernetRepr, out: Uint8Array): void {
  const len = ethernetBufferLen(repr);
  if (out.length !== len) throw new UsageError(`ethernet header needs ${len} bytes, got ${out.length}`);
  writeEthernet(repr, out, 0);
}

/**
 * Writes the header at `out[at..]` and returns the offset after it. Unchecked: for emitters in
 * this folder that have sized `out` already.
 */
export function writeEthernet(repr: EthernetRepr, out: Uint8Array, at: number): number {
  out.set(repr.dst, at);
  out.set(repr.src, at + 6);
  const type = etherTypeToNumber(repr.etherType);
  let o = at + 12;
  if (repr.vlan !== undefined) {
    const v = repr.vlan;
    const tci = ((v.priority & 7) << 13) | (v.dropEligible ? 0x1000 : 0) | (v.id & 0x0fff);
    out[o] = ETHER_TYPE_VLAN >>> 8;
    out[o + 1] = ETHER_TYPE_VLAN & 0xff;
    out[o + 2] = tci >>> 8;
    out[o + 3] = tci & 0xff;
    o += 4;
  }
  out[o] = type >>> 8;
  out[o + 1] = type & 0xff;
  return o + 2;
}
