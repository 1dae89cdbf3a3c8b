/**
 * tcpdump-style one-line printers (the format of tcpdump's print-tcp.c, print-arp.c,
 * print-icmp.c and print-icmp6.c, without the timestamp and the `IP`/`IP6` prefix), used by the
 * tracer and the CLI's decode command. Sequence numbers are absolute (tcpdump -S): a single line
 * has no connection state to make them relative.
 *
 *   192.0.2.1.80 > 192.0.2.2.49152: Flags [S.], seq 100, ack 1, win 65535, options [mss 1460], length 0
 */
import { macToString, type MacAddr } from "./ethernet.js";
import type { ArpRepr } from "./arp.js";
import { type Icmpv4Repr, icmpv4BufferLen } from "./icmpv4.js";
import { type Icmpv6Repr, icmpv6BufferLen, type NdpRawOption } from "./icmpv6.js";
import { parseIcmpQuote } from "./icmp-quote.js";
import { type IpAddr, ipToString } from "./ip-addr.js";
import type { IpProtocol } from "./ip-protocol.js";
import type { DecodedPacket, TransportLayer } from "./packet.js";
import { TcpOptionKind, tcpOptionsLen, writeTcpOptions } from "./tcp.js";
import { TcpFlag, type TcpRepr } from "./tcp-repr.js";

/** tcpdump's flag letters in its order: F S R P . U E W; `none` when no flag is set. */
export function formatTcpFlags(flags: number): string {
  let s = "";
  if (flags & TcpFlag.FIN) s += "F";
  if (flags & TcpFlag.SYN) s += "S";
  if (flags & TcpFlag.RST) s += "R";
  if (flags & TcpFlag.PSH) s += "P";
  if (flags & TcpFlag.ACK) s += ".";
  if (flags & TcpFlag.URG) s += "U";
  if (flags & TcpFlag.ECE) s += "E";
  if (flags & TcpFlag.CWR) s += "W";
  return s === "" ? "none" : s;
}

/**
 * The option list as it is on the wire, comma-separated: `mss 1460,sackOK,TS val 1 ecr 0,nop,
 * wscale 7`, `sack 1 {100:200}`, `eol`, unknown kinds as `opt-N:hex`, and `[bad opt]` where a
 * length is broken (printing stops there).
 */
export function formatTcpOptions(opts: Uint8Array): string {
  const out: string[] = [];
  let i = 0;
  while (i < opts.length) {
    const kind = opts[i]!; // i < length
    if (kind === TcpOptionKind.EOL) {
      out.push("eol");
      break;
    }
    if (kind === TcpOptionKind.NOP) {
      out.push("nop");
      i++;
      continue;
    }
    const len = opts[i + 1];
    if (len === undefined || len < 2 || i + len > opts.length) {
      out.push("[bad opt]");
      break;
    }
    const body = opts.subarray(i + 2, i + len);
    out.push(formatOption(kind, body));
    i += len;
  }
  return out.join(",");
}

/**
 * One TCP segment: `src.port > dst.port: Flags [..], seq s[:e], ack a, win w, options [..],
 * length n`. The options are printed in the canonical layout `emitTcp` would send.
 */
export function formatTcp(src: IpAddr, dst: IpAddr, tcp: TcpRepr): string {
  const len = tcp.payload.length;
  let s = `${ipToString(src)}.${tcp.srcPort} > ${ipToString(dst)}.${tcp.dstPort}: Flags [${formatTcpFlags(tcp.flags)}]`;
  if (len > 0 || tcp.flags & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) {
    s += `, seq ${tcp.seq}`;
    if (len > 0) s += `:${(tcp.seq + len) >>> 0}`;
  }
  if (tcp.flags & TcpFlag.ACK) s += `, ack ${tcp.ack}`;
  s += `, win ${tcp.window}`;
  if (tcp.flags & TcpFlag.URG) s += `, urg ${tcp.urgent}`;
  const optLen = safeOptionsLen(tcp);
  if (optLen > 0) {
    const buf = new Uint8Array(optLen);
    writeTcpOptions(tcp, buf, 0);
    s += `, options [${formatTcpOptions(buf)}]`;
  }
  return `${s}, length ${len}`;
}

/** `ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28` / `ARP, Reply 192.0.2.2 is-at 02:..., length 28`. */
export function formatArp(arp: ArpRepr): string {
  const tpa = ipToString(arp.targetProtocolAddr);
  const spa = ipToString(arp.senderProtocolAddr);
  switch (arp.operation) {
    case "request": {
      const known = arp.targetHardwareAddr.some((b) => b !== 0);
      return `ARP, Request who-has ${tpa}${known ? ` (${macToString(arp.targetHardwareAddr)})` : ""} tell ${spa}, length 28`;
    }
    case "reply":
      return `ARP, Reply ${spa} is-at ${macToString(arp.senderHardwareAddr)}, length 28`;
    default:
      return `ARP, op ${arp.operation} ${spa} > ${tpa}, length 28`;
  }
}

/** `192.0.2.1 > 192.0.2.2: ICMP echo request, id 1, seq 1, length 64`, and the error messages. */
export function formatIcmpv4(src: IpAddr, dst: IpAddr, icmp: Icmpv4Repr, length: number): string {
  const head = `${ipToString(src)} > ${ipToString(dst)}: ICMP `;
  let body: string;
  switch (icmp.type) {
    case "echo-request":
    case "echo-reply":
      body = `echo ${icmp.type === "echo-request" ? "request" : "reply"}, id ${icmp.ident}, seq ${icmp.seqNo}`;
      break;
    case "dst-unreachable": {
      const q = parseIcmpQuote(icmp.quoted);
      const to = q.ok ? ipToString(q.value.dst) : "?";
      switch (icmp.code) {
        case "net-unreachable":
          body = `net ${to} unreachable`;
          break;
        case "host-unreachable":
          body = `host ${to} unreachable`;
          break;
        case "protocol-unreachable":
          body = `${to} protocol ${q.ok ? protocolName(q.value.protocol) : "?"} unreachable`;
          break;
        case "port-unreachable":
          body = `${to} ${q.ok ? `${protocolName(q.value.protocol)} port ${q.value.dstPort ?? "?"}` : "port"} unreachable`;
          break;
        case "frag-needed":
          body = `${to} unreachable - need to frag (mtu ${icmp.nextHopMtu ?? 0})`;
          break;
        case "source-route-failed":
          body = `${to} unreachable - source route failed`;
          break;
        case "admin-prohibited":
          body = `host ${to} unreachable - admin prohibited filter`;
          break;
        default:
          body = `${to} unreachable - code ${icmp.code}`;
      }
      break;
    }
    case "time-exceeded":
      body =
        icmp.code === "ttl-exceeded"
          ? "time exceeded in-transit"
          : icmp.code === "reassembly-exceeded"
            ? "ip reassembly time exceeded"
            : `time exceeded, code ${icmp.code}`;
      break;
    case "other":
      body = `type ${icmp.rawType}, code ${icmp.code}`;
      break;
  }
  return `${head}${body}, length ${length}`;
}

/** `2001:db8::1 > 2001:db8::2: ICMP6, neighbor solicitation, who has 2001:db8::2, length 32`, and friends. */
export function formatIcmpv6(src: IpAddr, dst: IpAddr, icmp: Icmpv6Repr, length: number): string {
  const head = `${ipToString(src)} > ${ipToString(dst)}: ICMP6, `;
  let body: string;
  switch (icmp.type) {
    case "echo-request":
    case "echo-reply":
      body = `echo ${icmp.type === "echo-request" ? "request" : "reply"}, id ${icmp.ident}, seq ${icmp.seqNo}`;
      break;
    case "dst-unreachable": {
      const q = parseIcmpQuote(icmp.quoted);
      const to = q.ok ? ipToString(q.value.dst) : "?";
      body =
        icmp.code === "port-unreachable" && q.ok
          ? `destination unreachable, unreachable port ${to} ${protocolName(q.value.protocol)} port ${q.value.dstPort ?? "?"}`
          : `destination unreachable, ${typeof icmp.code === "number" ? `code ${icmp.code}` : icmp.code} ${to}`;
      break;
    }
    case "packet-too-big":
      body = `packet too big, mtu ${icmp.mtu}`;
      break;
    case "time-exceeded":
      body =
        icmp.code === "hop-limit-exceeded"
          ? "time exceeded in-transit"
          : icmp.code === "reassembly-exceeded"
            ? "time exceeded reassembly"
            : `time exceeded, code ${icmp.code}`;
      break;
    case "parameter-problem":
      body = `parameter problem, code ${icmp.code}, pointer ${icmp.pointer}`;
      break;
    case "router-solicitation":
      body = `router solicitation${lla("source", icmp.sourceLinkAddr)}${rawOpts(icmp.otherOptions)}`;
      break;
    case "router-advertisement": {
      let s = `router advertisement, hop limit ${icmp.curHopLimit}, Flags [${icmp.managed ? "managed" : ""}${
        icmp.managed && icmp.otherConfig ? ", " : ""
      }${icmp.otherConfig ? "other stateful" : ""}${!icmp.managed && !icmp.otherConfig ? "none" : ""}], router lifetime ${
        icmp.routerLifetime
      }s, reachable time ${icmp.reachableTime}ms, retrans timer ${icmp.retransTimer}ms`;
      s += lla("source", icmp.sourceLinkAddr);
      if (icmp.mtu !== undefined) s += `, mtu ${icmp.mtu}`;
      for (const p of icmp.prefixes) s += `, prefix ${ipToString(p.prefix)}/${p.prefixLen}`;
      body = s + rawOpts(icmp.otherOptions);
      break;
    }
    case "neighbor-solicitation":
      body = `neighbor solicitation, who has ${ipToString(icmp.target)}${lla("source", icmp.sourceLinkAddr)}${rawOpts(
        icmp.otherOptions,
      )}`;
      break;
    case "neighbor-advertisement": {
      const f = [
        icmp.router ? "router" : "",
        icmp.solicited ? "solicited" : "",
        icmp.override ? "override" : "",
      ]
        .filter((x) => x !== "")
        .join(", ");
      body = `neighbor advertisement, tgt is ${ipToString(icmp.target)}, Flags [${f === "" ? "none" : f}]${lla(
        "target",
        icmp.targetLinkAddr,
      )}${rawOpts(icmp.otherOptions)}`;
      break;
    }
    case "other":
      body = `type ${icmp.rawType}, code ${icmp.code}`;
      break;
  }
  return `${head}${body}, length ${length}`;
}

/** Options for `formatPacket`. */
export interface FormatOptions {
  /** Prefix the line with `src-mac > dst-mac, ` when the packet came in an Ethernet frame (tcpdump -e). */
  readonly link?: boolean | undefined;
}

/** One line for any decoded packet, with the decoding error or bad checksum at the end. */
export function formatPacket(p: DecodedPacket, options: FormatOptions = {}): string {
  let prefix = "";
  if (options.link === true && p.ethernet !== undefined) {
    const e = p.ethernet;
    prefix = `${macToString(e.src)} > ${macToString(e.dst)}${e.vlan === undefined ? "" : `, vlan ${e.vlan.id}, p ${e.vlan.priority}`}, `;
  }
  const err = p.error === undefined ? "" : ` [${p.error.layer} ${p.error.code} at ${p.error.offset}]`;
  const n = p.network;
  if (n === undefined) return `${prefix}undecodable${err}`;
  switch (n.kind) {
    case "arp":
      return `${prefix}${formatArp(n.arp)}${err}`;
    case "other":
      return `${prefix}ethertype 0x${n.etherType.toString(16).padStart(4, "0")}, length ${n.payload.length}${err}`;
    case "ipv4":
      return prefix + formatTransport(n.ipv4.src, n.ipv4.dst, n.ipv4.protocol, p.transport) + err;
    case "ipv6":
      return prefix + formatTransport(n.ipv6.src, n.ipv6.dst, n.ipv6.protocol, p.transport) + err;
  }
}

function formatTransport(
  src: IpAddr,
  dst: IpAddr,
  protocol: IpProtocol,
  t: TransportLayer | undefined,
): string {
  if (t === undefined) return `${ipToString(src)} > ${ipToString(dst)}: ${protocolName(protocol)}`;
  switch (t.kind) {
    case "tcp":
      return formatTcp(src, dst, t.tcp);
    case "icmpv4":
      return formatIcmpv4(src, dst, t.icmp, icmpv4BufferLen(t.icmp));
    case "icmpv6":
      return formatIcmpv6(src, dst, t.icmp, icmpv6BufferLen(t.icmp));
    case "fragment":
      return `${ipToString(src)} > ${ipToString(dst)}: ${protocolName(t.protocol)} fragment, length ${t.payload.length}`;
    case "other":
      return `${ipToString(src)} > ${ipToString(dst)}: ${protocolName(t.protocol)}, length ${t.payload.length}`;
  }
}

function formatOption(kind: number, body: Uint8Array): string {
  const u32 = (i: number) =>
    (((body[i] ?? 0) << 24) | ((body[i + 1] ?? 0) << 16) | ((body[i + 2] ?? 0) << 8) | (body[i + 3] ?? 0)) >>>
    0;
  switch (kind) {
    case TcpOptionKind.MSS:
      if (body.length === 2) return `mss ${((body[0] ?? 0) << 8) | (body[1] ?? 0)}`;
      break;
    case TcpOptionKind.WINDOW_SCALE:
      if (body.length === 1) return `wscale ${body[0] ?? 0}`;
      break;
    case TcpOptionKind.SACK_PERMITTED:
      if (body.length === 0) return "sackOK";
      break;
    case TcpOptionKind.SACK:
      if (body.length % 8 === 0) {
        let s = `sack ${body.length / 8} `;
        for (let i = 0; i < body.length; i += 8) s += `{${u32(i)}:${u32(i + 4)}}`;
        return s;
      }
      break;
    case TcpOptionKind.TIMESTAMPS:
      if (body.length === 8) return `TS val ${u32(0)} ecr ${u32(4)}`;
      break;
    default:
      return `opt-${kind}:${hex(body)}`;
  }
  return `opt-${kind}:${hex(body)} [bad length]`;
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** The options length, or 0 when the repr could not be emitted (printing must not throw). */
function safeOptionsLen(tcp: TcpRepr): number {
  try {
    return tcpOptionsLen(tcp);
  } catch {
    return 0;
  }
}

function protocolName(p: IpProtocol): string {
  return typeof p === "number" ? `ip-proto-${p}` : p;
}

function lla(which: string, a: MacAddr | undefined): string {
  return a === undefined ? "" : `, ${which} link-address ${macToString(a)}`;
}

function rawOpts(opts: readonly NdpRawOption[]): string {
  return opts.map((o) => `, option ${o.type} (${o.data.length + 2} bytes)`).join("");
}
