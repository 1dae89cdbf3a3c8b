/**
 * Whole-packet helpers: decode an Ethernet frame or a bare IP packet into a layered record,
 * and emit a TCP segment (or an ICMP message, or an ARP packet) as a complete packet or frame
 * with every length and checksum filled in.
 *
 * Decoding never throws. The first layer that fails to decode is reported in `error`, with the
 * offset counted from the start of the bytes handed in; the layers above it are `undefined`.
 * A checksum that does not verify leaves the layer decoded (so tools can print it) and is also
 * reported in `error` as `bad-checksum`, so a stack that only checks `error` drops it.
 *
 * Emitting a TCP packet costs one buffer allocation: the headers are written straight into it
 * and the payload is copied once, with the checksum summed over the result.
 */
import { UsageError } from "../util/errors.js";
import { type ArpDecodeCode, ARP_LEN, type ArpRepr, ArpView, parseArp, writeArp } from "./arp.js";
import {
  type ChecksumCapabilities,
  ChecksumCapabilities as Caps,
  mustCompute,
  mustVerify,
  pseudoHeaderSum,
} from "./checksum.js";
import type { DecodeError } from "./decode.js";
import {
  type EtherType,
  type EthernetDecodeCode,
  type EthernetRepr,
  EthernetView,
  type MacAddr,
  parseEthernet,
  type VlanTag,
  writeEthernet,
} from "./ethernet.js";
import {
  type Icmpv4DecodeCode,
  type Icmpv4Repr,
  Icmpv4View,
  icmpv4BufferLen,
  parseIcmpv4,
  writeIcmpv4,
} from "./icmpv4.js";
import {
  ICMPV6_PROTOCOL,
  type Icmpv6DecodeCode,
  type Icmpv6Repr,
  Icmpv6View,
  icmpv6BufferLen,
  parseIcmpv6,
  writeIcmpv6,
} from "./icmpv6.js";
import type { IpAddr } from "./ip-addr.js";
import type { IpProtocol } from "./ip-protocol.js";
import { type Ipv4DecodeCode, type Ipv4Repr, Ipv4View, parseIpv4 } from "./ipv4.js";
import { type Ipv6DecodeCode, type Ipv6Repr, Ipv6View, ipv6HeaderLen, parseIpv6 } from "./ipv6.js";
import {
  parseTcp,
  TCP_PROTOCOL,
  type TcpDecodeCode,
  TcpView,
  tcpBufferLen,
  tcpChecksumOk,
  writeTcp,
} from "./tcp.js";
import type { TcpRepr } from "./tcp-repr.js";

// ---------------------------------------------------------------------------------------------
// Decoding

/** Whether a checksum was verified: `"unchecked"` when the capabilities leave it to hardware. */
export type ChecksumStatus = "good" | "bad" | "unchecked";

/** The network layer of a decoded packet. */
export type NetworkLayer =
  | { readonly kind: "arp"; readonly arp: ArpRepr }
  | { readonly kind: "ipv4"; readonly ipv4: Ipv4Repr; readonly checksum: ChecksumStatus }
  | { readonly kind: "ipv6"; readonly ipv6: Ipv6Repr }
  | {
      /** An EtherType this stack does not speak. */
      readonly kind: "other";
      readonly etherType: EtherType;
      /** The frame's payload: a view. */
      readonly payload: Uint8Array;
    };

/** The transport layer of a decoded IP packet. */
export type TransportLayer =
  | { readonly kind: "tcp"; readonly tcp: TcpRepr; readonly checksum: ChecksumStatus }
  | { readonly kind: "icmpv4"; readonly icmp: Icmpv4Repr; readonly checksum: ChecksumStatus }
  | { readonly kind: "icmpv6"; readonly icmp: Icmpv6Repr; readonly checksum: ChecksumStatus }
  | {
      /** A fragment (not reassembled) of a packet of this protocol. */
      readonly kind: "fragment";
      readonly protocol: IpProtocol;
      /** The fragment's data: a view. */
      readonly payload: Uint8Array;
    }
  | {
      /** A protocol this stack does not speak (UDP included). */
      readonly kind: "other";
      readonly protocol: IpProtocol;
      /** The upper-layer data: a view. */
      readonly payload: Uint8Array;
    };

/** The layer a decoding error belongs to. */
export type PacketLayer = "ethernet" | "arp" | "ipv4" | "ipv6" | "tcp" | "icmpv4" | "icmpv6";

/** Every code a layer can report. */
export type PacketDecodeCode =
  | EthernetDecodeCode
  | ArpDecodeCode
  | Ipv4DecodeCode
  | Ipv6DecodeCode
  | TcpDecodeCode
  | Icmpv4DecodeCode
  | Icmpv6DecodeCode;

/** A decoding failure with its layer; `offset` counts from the start of the decoded bytes. */
export interface PacketError extends DecodeError<PacketDecodeCode> {
  readonly layer: PacketLayer;
}

/** A decoded packet, layer by layer. Byte fields are views into the decoded bytes. */
export interface DecodedPacket {
  /** The Ethernet header; `undefined` for `decodeIpPacket` or when it did not decode. */
  readonly ethernet: EthernetRepr | undefined;
  readonly network: NetworkLayer | undefined;
  /** `undefined` for ARP and other EtherTypes, and when a lower layer failed. */
  readonly transport: TransportLayer | undefined;
  /** The first failure, or a bad checksum; `undefined` when everything decoded and verified. */
  readonly error: PacketError | undefined;
}

/**
 * Decodes an Ethernet II frame and what it carries. Checksums are verified where `caps` says
 * software verifies them (all, by default).
 */
export function decodeFrame(bytes: Uint8Array, caps: ChecksumCapabilities = Caps.ALL): DecodedPacket {
  const ev = EthernetView.checked(bytes);
  if (!ev.ok) return failed(undefined, undefined, "ethernet", ev.error, 0);
  const view = ev.value;
  const eth = parseEthernet(view);
  // parseEthernet cannot fail on a checked view.
  if (!eth.ok) return failed(undefined, undefined, "ethernet", eth.error, 0);
  const ethernet = eth.value;
  const hl = view.headerLen;
  const payload = bytes.subarray(hl);
  switch (ethernet.etherType) {
    case "ipv4":
      return decodeIpv4(payload, hl, ethernet, caps);
    case "ipv6":
      return decodeIpv6(payload, hl, ethernet, caps);
    case "arp": {
      const av = ArpView.checked(payload);
      if (!av.ok) return failed(ethernet, undefined, "arp", av.error, hl);
      const arp = parseArp(av.value);
      if (!arp.ok) return failed(ethernet, undefined, "arp", arp.error, hl);
      return { ethernet, network: { kind: "arp", arp: arp.value }, transport: undefined, error: undefined };
    }
    default:
      return {
        ethernet,
        network: { kind: "other", etherType: ethernet.etherType, payload },
        transport: undefined,
        error: undefined,
      };
  }
}

/** Decodes a bare IPv4 or IPv6 packet (chosen by the version nibble), as from a TUN device. */
export function decodeIpPacket(bytes: Uint8Array, caps: ChecksumCapabilities = Caps.ALL): DecodedPacket {
  const version = (bytes[0] ?? 0) >>> 4;
  return version === 6 ? decodeIpv6(bytes, 0, undefined, caps) : decodeIpv4(bytes, 0, undefined, caps);
}

function decodeIpv4(
  bytes: Uint8Array,
  base: number,
  ethernet: EthernetRepr | undefined,
  caps: ChecksumCapabilities,
): DecodedPacket {
  const iv = Ipv4View.checked(bytes);
  if (!iv.ok) return failed(ethernet, undefined, "ipv4", iv.error, base);
  const view = iv.value;
  const parsed = parseIpv4(view, false);
  if (!parsed.ok) return failed(ethernet, undefined, "ipv4", parsed.error, base);
  const ipv4 = parsed.value;
  const checksum: ChecksumStatus = mustVerify(caps.ipv4) ? (view.checksumOk ? "good" : "bad") : "unchecked";
  const network: NetworkLayer = { kind: "ipv4", ipv4, checksum };
  if (checksum === "bad") {
    return {
      ethernet,
      network,
      transport: undefined,
      error: { layer: "ipv4", code: "bad-checksum", offset: base + 10 },
    };
  }
  const payload = view.payload;
  if (ipv4.isFragment) {
    return {
      ethernet,
      network,
      transport: { kind: "fragment", protocol: ipv4.protocol, payload },
      error: undefined,
    };
  }
  return decodeTransport(ethernet, network, ipv4.protocol, payload, base + view.headerLen, ipv4, caps);
}

function decodeIpv6(
  bytes: Uint8Array,
  base: number,
  ethernet: EthernetRepr | undefined,
  caps: ChecksumCapabilities,
): DecodedPacket {
  const iv = Ipv6View.checked(bytes);
  if (!iv.ok) return failed(ethernet, undefined, "ipv6", iv.error, base);
  const parsed = parseIpv6(iv.value);
  if (!parsed.ok) return failed(ethernet, undefined, "ipv6", parsed.error, base);
  const ipv6 = parsed.value;
  const network: NetworkLayer = { kind: "ipv6", ipv6 };
  const start = ipv6HeaderLen(ipv6);
  const payload = bytes.subarray(start, start + ipv6.payloadLen);
  if (ipv6.isFragment) {
    return {
      ethernet,
      network,
      transport: { kind: "fragment", protocol: ipv6.protocol, payload },
      error: undefined,
    };
  }
  return decodeTransport(ethernet, network, ipv6.protocol, payload, base + start, ipv6, caps);
}

/**
 * The transport layer of a datagram reassembled from fragments (`network`: its first
 * fragment's header, `ip` the addresses in it; `payload`: the whole upper-layer data).
 * Checksums are verified in software: no device checks a datagram it saw in pieces.
 */
export function decodeReassembled(
  ethernet: EthernetRepr | undefined,
  network: NetworkLayer,
  ip: { readonly src: IpAddr; readonly dst: IpAddr },
  protocol: IpProtocol,
  payload: Uint8Array,
): DecodedPacket {
  return decodeTransport(ethernet, network, protocol, payload, 0, ip, Caps.ALL);
}

function decodeTransport(
  ethernet: EthernetRepr | undefined,
  network: NetworkLayer,
  protocol: IpProtocol,
  payload: Uint8Array,
  base: number,
  ip: { readonly src: IpAddr; readonly dst: IpAddr },
  caps: ChecksumCapabilities,
): DecodedPacket {
  if (protocol === "tcp") {
    const tv = TcpView.checked(payload);
    if (!tv.ok) return failed(ethernet, network, "tcp", tv.error, base);
    const tcp = parseTcp(tv.value);
    if (!tcp.ok) return failed(ethernet, network, "tcp", tcp.error, base);
    const checksum = status(mustVerify(caps.tcp), () => tcpChecksumOk(payload, ip));
    return withChecksum(ethernet, network, { kind: "tcp", tcp: tcp.value, checksum }, "tcp", base + 16);
  }
  if (protocol === "icmp") {
    const v = Icmpv4View.checked(payload);
    if (!v.ok) return failed(ethernet, network, "icmpv4", v.error, base);
    const icmp = parseIcmpv4(v.value, false);
    if (!icmp.ok) return failed(ethernet, network, "icmpv4", icmp.error, base);
    const checksum = status(mustVerify(caps.icmpv4), () => v.value.checksumOk);
    return withChecksum(
      ethernet,
      network,
      { kind: "icmpv4", icmp: icmp.value, checksum },
      "icmpv4",
      base + 2,
    );
  }
  if (protocol === "icmpv6") {
    const v = Icmpv6View.checked(payload);
    if (!v.ok) return failed(ethernet, network, "icmpv6", v.error, base);
    const icmp = parseIcmpv6(v.value);
    if (!icmp.ok) return failed(ethernet, network, "icmpv6", icmp.error, base);
    const checksum = status(mustVerify(caps.icmpv6), () => v.value.checksumOk(ip));
    return withChecksum(
      ethernet,
      network,
      { kind: "icmpv6", icmp: icmp.value, checksum },
      "icmpv6",
      base + 2,
    );
  }
  return { ethernet, network, transport: { kind: "other", protocol, payload }, error: undefined };
}

function status(verify: boolean, check: () => boolean): ChecksumStatus {
  if (!verify) return "unchecked";
  return check() ? "good" : "bad";
}

function withChecksum(
  ethernet: EthernetRepr | undefined,
  network: NetworkLayer,
  transport: TransportLayer & { readonly checksum: ChecksumStatus },
  layer: PacketLayer,
  checksumAt: number,
): DecodedPacket {
  const error: PacketError | undefined =
    transport.checksum === "bad" ? { layer, code: "bad-checksum", offset: checksumAt } : undefined;
  return { ethernet, network, transport, error };
}

function failed(
  ethernet: EthernetRepr | undefined,
  network: NetworkLayer | undefined,
  layer: PacketLayer,
  e: DecodeError<PacketDecodeCode>,
  base: number,
): DecodedPacket {
  return { ethernet, network, transport: undefined, error: { layer, code: e.code, offset: base + e.offset } };
}

// ---------------------------------------------------------------------------------------------
// Emitting

/** The IP header fields a sender chooses; the family follows the address length (4 or 16). */
export interface IpHeaderSpec {
  readonly src: IpAddr;
  readonly dst: IpAddr;
  /** IPv4 TTL or IPv6 hop limit; default 64. */
  readonly ttl?: number | undefined;
  /** Default 0. */
  readonly dscp?: number | undefined;
  /** Default 0 (not ECN-capable). */
  readonly ecn?: number | undefined;
  /** IPv4 identification; default 0 (RFC 6864 allows any value on atomic datagrams). */
  readonly ident?: number | undefined;
  /** IPv4 DF; default true (PMTU discovery, RFC 1191). */
  readonly dontFragment?: boolean | undefined;
  /** IPv6 flow label; default 0. */
  readonly flowLabel?: number | undefined;
}

/** The Ethernet header fields a sender chooses; the EtherType follows the IP family. */
export interface EthernetSpec {
  readonly src: MacAddr;
  readonly dst: MacAddr;
  readonly vlan?: VlanTag | undefined;
}

/** Everything `emitTcpPacket` needs. */
export interface TcpPacketSpec {
  readonly ip: IpHeaderSpec;
  readonly tcp: TcpRepr;
  /** When present, the result is an Ethernet frame; else a bare IP packet. */
  readonly ethernet?: EthernetSpec | undefined;
  /** Which checksums software computes; default all. */
  readonly checksum?: ChecksumCapabilities | undefined;
}

/** Everything `emitIcmpv4Packet` needs (the addresses must be IPv4). */
export interface Icmpv4PacketSpec {
  readonly ip: IpHeaderSpec;
  readonly icmp: Icmpv4Repr;
  readonly ethernet?: EthernetSpec | undefined;
  readonly checksum?: ChecksumCapabilities | undefined;
}

/** Everything `emitIcmpv6Packet` needs (the addresses must be IPv6). */
export interface Icmpv6PacketSpec {
  readonly ip: IpHeaderSpec;
  readonly icmp: Icmpv6Repr;
  readonly ethernet?: EthernetSpec | undefined;
  readonly checksum?: ChecksumCapabilities | undefined;
}

/**
 * A fresh view holding the whole TCP packet (or frame, with `ethernet`): IPv4 or IPv6 by the
 * address length, lengths and checksums filled in, the payload copied once. Its bytes are its
 * own, but its `ArrayBuffer` may hold other frames too (see `allocFrame`): use the view, not
 * `.buffer`.
 */
export function emitTcpPacket(spec: TcpPacketSpec): Uint8Array {
  const caps = spec.checksum ?? Caps.ALL;
  const ip = spec.ip;
  const segLen = tcpBufferLen(spec.tcp);
  const at = linkLen(spec.ethernet);
  const ipLen = ipHeaderLen(ip);
  const out = allocFrame(at + ipLen + segLen);
  if (spec.ethernet !== undefined) writeLink(spec.ethernet, ip, out);
  writeIpHeader(ip, TCP_PROTOCOL, segLen, mustCompute(caps.ipv4), out, at);
  const pseudo = mustCompute(caps.tcp) ? pseudoHeaderSum(ip.src, ip.dst, TCP_PROTOCOL, segLen) : undefined;
  writeTcp(spec.tcp, out, at + ipLen, segLen, pseudo);
  return out;
}

/**
 * Frames are cut from slabs of this many bytes: one `ArrayBuffer` per slab instead of one per
 * frame, which keeps allocation and garbage collection off the per-segment path.
 */
const SLAB_BYTES = 1 << 16;
let slab = new ArrayBuffer(0);
let slabUsed = 0;

/**
 * A zeroed view of `n` bytes that no other view shares (slab space is never handed out twice;
 * a slab is freed once every frame cut from it is). Large frames get a buffer of their own.
 */
function allocFrame(n: number): Uint8Array {
  if (n > SLAB_BYTES >>> 2) return new Uint8Array(n);
  if (slabUsed + n > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed += (n + 7) & ~7;
  return out;
}

/** A fresh buffer holding an ICMPv4 message in an IPv4 packet (or frame, with `ethernet`). */
export function emitIcmpv4Packet(spec: Icmpv4PacketSpec): Uint8Array {
  if (spec.ip.src.length !== 4) throw new UsageError("ICMPv4 needs IPv4 addresses");
  const caps = spec.checksum ?? Caps.ALL;
  const len = icmpv4BufferLen(spec.icmp);
  const at = linkLen(spec.ethernet);
  const out = new Uint8Array(at + 20 + len);
  if (spec.ethernet !== undefined) writeLink(spec.ethernet, spec.ip, out);
  writeIpHeader(spec.ip, 1, len, mustCompute(caps.ipv4), out, at);
  writeIcmpv4(spec.icmp, out, at + 20, len, mustCompute(caps.icmpv4));
  return out;
}

/** A fresh buffer holding an ICMPv6 message in an IPv6 packet (or frame, with `ethernet`). */
export function emitIcmpv6Packet(spec: Icmpv6PacketSpec): Uint8Array {
  if (spec.ip.src.length !== 16) throw new UsageError("ICMPv6 needs IPv6 addresses");
  const caps = spec.checksum ?? Caps.ALL;
  const len = icmpv6BufferLen(spec.icmp);
  const at = linkLen(spec.ethernet);
  const out = new Uint8Array(at + 40 + len);
  if (spec.ethernet !== undefined) writeLink(spec.ethernet, spec.ip, out);
  writeIpHeader(spec.ip, ICMPV6_PROTOCOL, len, false, out, at);
  const pseudo = mustCompute(caps.icmpv6)
    ? pseudoHeaderSum(spec.ip.src, spec.ip.dst, ICMPV6_PROTOCOL, len)
    : undefined;
  writeIcmpv6(spec.icmp, out, at + 40, len, pseudo);
  return out;
}

/** A fresh buffer holding an ARP packet in an Ethernet frame (not padded to 60 bytes). */
export function emitArpFrame(spec: { readonly ethernet: EthernetSpec; readonly arp: ArpRepr }): Uint8Array {
  const e = spec.ethernet;
  const repr: EthernetRepr = { dst: e.dst, src: e.src, etherType: "arp", vlan: e.vlan };
  const at = linkLen(e);
  const out = new Uint8Array(at + ARP_LEN);
  writeEthernet(repr, out, 0);
  writeArp(spec.arp, out, at);
  return out;
}

function linkLen(e: EthernetSpec | undefined): number {
  if (e === undefined) return 0;
  return e.vlan === undefined ? 14 : 18;
}

function ipHeaderLen(ip: IpHeaderSpec): number {
  const n = ip.src.length;
  if (n !== ip.dst.length || (n !== 4 && n !== 16)) {
    throw new UsageError(`IP addresses must both be 4 or both be 16 bytes, got ${n} and ${ip.dst.length}`);
  }
  return n === 4 ? 20 : 40;
}

function writeLink(e: EthernetSpec, ip: IpHeaderSpec, out: Uint8Array): void {
  out.set(e.dst, 0);
  out.set(e.src, 6);
  let o = 12;
  const v = e.vlan;
  if (v !== undefined) {
    const tci = ((v.priority & 7) << 13) | (v.dropEligible ? 0x1000 : 0) | (v.id & 0x0fff);
    out[12] = 0x81;
    out[13] = 0x00;
    out[14] = tci >>> 8;
    out[15] = tci & 0xff;
    o = 16;
  }
  const v4 = ip.src.length === 4;
  out[o] = v4 ? 0x08 : 0x86;
  out[o + 1] = v4 ? 0x00 : 0xdd;
}

/**
 * Writes a 20-byte IPv4 header (no options) or a 40-byte IPv6 header (no extension headers) at
 * `out[at..]` straight from the spec, with no intermediate repr. The tests hold it to
 * `parseIpv4` / `parseIpv6`.
 */
function writeIpHeader(
  ip: IpHeaderSpec,
  protocol: number,
  payloadLen: number,
  ipv4Checksum: boolean,
  out: Uint8Array,
  at: number,
): void {
  const tc = (((ip.dscp ?? 0) & 0x3f) << 2) | ((ip.ecn ?? 0) & 3);
  const ttl = ip.ttl ?? 64;
  if (ip.src.length === 4) {
    const total = 20 + payloadLen;
    if (total > 0xffff) throw new UsageError(`IPv4 packet too long: ${total}`);
    const ident = ip.ident ?? 0;
    out[at] = 0x45;
    out[at + 1] = tc;
    out[at + 2] = total >>> 8;
    out[at + 3] = total & 0xff;
    out[at + 4] = (ident >>> 8) & 0xff;
    out[at + 5] = ident & 0xff;
    out[at + 6] = ip.dontFragment === false ? 0 : 0x40;
    out[at + 7] = 0;
    out[at + 8] = ttl;
    out[at + 9] = protocol;
    out.set(ip.src, at + 12);
    out.set(ip.dst, at + 16);
    if (ipv4Checksum) {
      // Ten 16-bit words; the checksum field (word 5) is still zero.
      let s = 0;
      for (let i = at; i < at + 20; i += 2) s += (out[i]! << 8) | out[i + 1]!; // in bounds: out holds the header
      s = (s & 0xffff) + (s >>> 16);
      s = (s & 0xffff) + (s >>> 16);
      const c = ~s & 0xffff;
      out[at + 10] = c >>> 8;
      out[at + 11] = c & 0xff;
    }
    return;
  }
  if (payloadLen > 0xffff) throw new UsageError(`IPv6 payload too long: ${payloadLen}`);
  const fl = (ip.flowLabel ?? 0) & 0xfffff;
  out[at] = 0x60 | (tc >>> 4);
  out[at + 1] = ((tc & 0x0f) << 4) | (fl >>> 16);
  out[at + 2] = (fl >>> 8) & 0xff;
  out[at + 3] = fl & 0xff;
  out[at + 4] = payloadLen >>> 8;
  out[at + 5] = payloadLen & 0xff;
  out[at + 6] = protocol;
  out[at + 7] = ttl;
  out.set(ip.src, at + 8);
  out.set(ip.dst, at + 24);
}
