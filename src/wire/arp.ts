/**
 * ARP for IPv4 over Ethernet (RFC 826): requests and replies. Other hardware or protocol types
 * are reported as decode errors; the view still reads them.
 */
import { ok, type Result, UsageError } from "../util/errors.js";
import { setU16, u16, u8 } from "./bytes.js";
import { type DecodeError, decodeErr } from "./decode.js";
import type { MacAddr } from "./ethernet.js";
import type { IpAddr } from "./ip-addr.js";

/** Why an ARP packet did not decode. */
export type ArpDecodeCode = "truncated" | "unsupported-hardware" | "unsupported-protocol" | "bad-address-len";
/** An ARP decoding failure. */
export type ArpDecodeError = DecodeError<ArpDecodeCode>;

/** Bytes in an Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;
/** Hardware type 1: Ethernet. */
export const ARP_HTYPE_ETHERNET = 1;
/** Protocol type: IPv4's EtherType. */
export const ARP_PTYPE_IPV4 = 0x0800;

/**
 * Zero-copy accessors over an ARP packet (RFC 826 field names). `checked` guarantees the fixed
 * part and both addresses of the stated lengths are present.
 */
export class ArpView {
  /** The packet's bytes (a view of the caller's buffer). */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** For emission only: the caller sized `bytes` with `arpBufferLen`. */
  static unchecked(bytes: Uint8Array): ArpView {
    return new ArpView(bytes);
  }

  /** For untrusted input: checks the fixed part and the address fields the lengths announce. */
  static checked(bytes: Uint8Array): Result<ArpView, ArpDecodeError> {
    if (bytes.length < 8) return decodeErr("truncated", bytes.length);
    const view = new ArpView(bytes);
    if (bytes.length < 8 + 2 * (view.hardwareLen + view.protocolLen))
      return decodeErr("truncated", bytes.length);
    return ok(view);
  }

  /** ar$hrd: hardware address space (1 = Ethernet). */
  get hardwareType(): number {
    return u16(this.bytes, 0);
  }
  set hardwareType(v: number) {
    setU16(this.bytes, 0, v);
  }
  /** ar$pro: protocol address space (an EtherType; 0x0800 = IPv4). */
  get protocolType(): number {
    return u16(this.bytes, 2);
  }
  set protocolType(v: number) {
    setU16(this.bytes, 2, v);
  }
  /** ar$hln: bytes in a hardware address. */
  get hardwareLen(): number {
    return u8(this.bytes, 4);
  }
  set hardwareLen(v: number) {
    this.bytes[4] = v;
  }
  /** ar$pln: bytes in a protocol address. */
  get protocolLen(): number {
    return u8(this.bytes, 5);
  }
  set protocolLen(v: number) {
    this.bytes[5] = v;
  }
  /** ar$op: 1 request, 2 reply. */
  get operation(): number {
    return u16(this.bytes, 6);
  }
  set operation(v: number) {
    setU16(this.bytes, 6, v);
  }
  /** ar$sha: a view. */
  get senderHardwareAddr(): Uint8Array {
    return this.bytes.subarray(8, 8 + this.hardwareLen);
  }
  /** ar$spa: a view. */
  get senderProtocolAddr(): Uint8Array {
    const at = 8 + this.hardwareLen;
    return this.bytes.subarray(at, at + this.protocolLen);
  }
  /** ar$tha: a view. */
  get targetHardwareAddr(): Uint8Array {
    const at = 8 + this.hardwareLen + this.protocolLen;
    return this.bytes.subarray(at, at + this.hardwareLen);
  }
  /** ar$tpa: a view. */
  get targetProtocolAddr(): Uint8Array {
    const at = 8 + 2 * this.hardwareLen + this.protocolLen;
    return this.bytes.subarray(at, at + this.protocolLen);
  }
}

/** ARP operation: an open enum (RFC 826 request/reply; other codes stay numbers). */
export type ArpOperation = "request" | "reply" | number;

/** An Ethernet/IPv4 ARP packet. */
export interface ArpRepr {
  readonly operation: ArpOperation;
  readonly senderHardwareAddr: MacAddr;
  readonly senderProtocolAddr: IpAddr;
  /** All zeros in a request (the address being asked for is unknown). */
  readonly targetHardwareAddr: MacAddr;
  readonly targetProtocolAddr: IpAddr;
}

/** Decodes a checked view; only Ethernet hardware with IPv4 protocol addresses is supported. */
export function parseArp(view: ArpView): Result<ArpRepr, ArpDecodeError> {
  if (view.hardwareType !== ARP_HTYPE_ETHERNET) return decodeErr("unsupported-hardware", 0);
  if (view.protocolType !== ARP_PTYPE_IPV4) return decodeErr("unsupported-protocol", 2);
  if (view.hardwareLen !== 6) return decodeErr("bad-address-len", 4);
  if (view.protocolLen !== 4) return decodeErr("bad-address-len", 5);
  const op = view.operation;
  return ok({
    operation: op === 1 ? "request" : op === 2 ? "reply" : op,
    senderHardwareAddr: view.senderHardwareAddr,
    senderProtocolAddr: view.senderProtocolAddr,
    targetHardwareAddr: view.targetHardwareAddr,
    targetProtocolAddr: view.targetProtocolAddr,
  });
}

/** Bytes of the packet: 8 plus both address pairs (28 for Ethernet/IPv4, the only kind emitted). */
export function arpBufferLen(repr: ArpRepr): number {
  return 8 + 2 * (repr.senderHardwareAddr.length + repr.senderProtocolAddr.length);
}

/** Writes the packet into `out`, which must be exactly `arpBufferLen(repr)` bytes. */
export function emitArp(repr: ArpRepr, out: Uint8Array): void {
  const len = arpBufferLen(repr);
  if (out.length !== len) throw new UsageError(`ARP packet needs ${len} bytes, got ${out.length}`);
  writeArp(repr, out, 0);
}

/** Writes the packet at `out[at..]` and returns the offset after it (unchecked; for this folder). */
export function writeArp(repr: ArpRepr, out: Uint8Array, at: number): number {
  if (repr.senderHardwareAddr.length !== 6 || repr.targetHardwareAddr.length !== 6) {
    throw new UsageError("ARP hardware addresses must be 6 bytes");
  }
  if (repr.senderProtocolAddr.length !== 4 || repr.targetProtocolAddr.length !== 4) {
    throw new UsageError("ARP protocol addresses must be IPv4");
  }
  const op = repr.operation === "request" ? 1 : repr.operation === "reply" ? 2 : repr.operation;
  out[at] = 0;
  out[at + 1] = ARP_HTYPE_ETHERNET;
  out[at + 2] = ARP_PTYPE_IPV4 >>> 8;
  out[at + 3] = ARP_PTYPE_IPV4 & 0xff;
  out[at + 4] = 6;
  out[at + 5] = 4;
  out[at + 6] = (op >>> 8) & 0xff;
  out[at + 7] = op & 0xff;
  out.set(repr.senderHardwareAddr, at + 8);
  out.set(repr.senderProtocolAddr, at + 14);
  out.set(repr.targetHardwareAddr, at + 18);
  out.set(repr.targetProtocolAddr, at + 24);
  return at + ARP_LEN;
}
