/**
 * The typed syntax tree of a packetdrill script.
 *
 * A script is a list of `--name=value` options, an optional untimed init command, a body of
 * timed events (possibly inside `#ifdef SYMBOL` ... `#endif` blocks), and an optional untimed
 * cleanup command. Each event is a packet to inject (`<`) or expect (`>`), a system call with
 * its expected result, a backquoted shell command, or a `%{ python }%` code snippet.
 *
 * Every node that stands for a piece of source text carries `line` and `column` (both 1-based)
 * of its first character. Sub-records that are part of a single token run (time, flags,
 * sequence range, IP info) share the position of the node that holds them.
 *
 * Numbers are plain `number`s: times are integer microseconds, sequence numbers and the like
 * are unsigned integers checked against their field width (u16, u32) by the parser.
 */
import { TcpFlag } from "../../wire/tcp-repr.js";

/** Source position of a node: 1-based line and column. */
export interface PdPos {
  readonly line: number;
  readonly column: number;
}

// ---------------------------------------------------------------------------------------------
// Script level

/** A `--name` or `--name=value` line (packetdrill command-line options embedded in the script). */
export interface PdOption extends PdPos {
  readonly kind: "option";
  readonly name: string;
  /** The text after `=` (quotes removed for a quoted value), or undefined for a bare flag. */
  readonly value: string | undefined;
}

/** A whole script. */
export interface PdScript {
  /** The file name given to the parser, used in error messages. */
  readonly file: string;
  readonly options: readonly PdOption[];
  /** A backquoted command before the first event, without a time: run before the test. */
  readonly initCommand: PdUntimedCommand | undefined;
  /** Events and conditional blocks in source order. */
  readonly body: readonly PdItem[];
  /** A backquoted command after the last event, without a time: run after the test. */
  readonly cleanupCommand: PdUntimedCommand | undefined;
}

/** A backquoted shell command without a time (init or cleanup command). */
export interface PdUntimedCommand extends PdPos {
  readonly kind: "untimed-command";
  readonly command: string;
}

/** One entry of a script body. */
export type PdItem = PdEvent | PdConditional;

/**
 * `#ifdef SYMBOL` / `#ifndef SYMBOL` ... [`#else` ...] `#endif`. The FreeBSD suite uses
 * `#ifdef FreeBSD` (what FreeBSD does) and `#ifdef STANDARD` (what the RFCs require).
 */
export interface PdConditional extends PdPos {
  readonly kind: "conditional";
  readonly symbol: string;
  /** True for `#ifndef`. */
  readonly negated: boolean;
  readonly then: readonly PdItem[];
  /** The `#else` branch; empty when there is none. */
  readonly otherwise: readonly PdItem[];
}

// ---------------------------------------------------------------------------------------------
// Time

/**
 * When an event happens, in integer microseconds. `relative` is measured from the previous
 * event's time; ranges and `any` (`*`) are only allowed on outbound packets.
 */
export type PdTime =
  | { readonly kind: "absolute"; readonly usecs: number }
  | { readonly kind: "relative"; readonly usecs: number }
  | { readonly kind: "absolute-range"; readonly usecs: number; readonly endUsecs: number }
  | { readonly kind: "relative-range"; readonly usecs: number; readonly endUsecs: number }
  | { readonly kind: "any" };

// ---------------------------------------------------------------------------------------------
// Events

/** A timed event. */
export type PdEvent = PdPacketEvent | PdSyscallEvent | PdCommandEvent | PdCodeEvent;

/** Fields every event has. The position is that of the event's time. */
export interface PdEventBase extends PdPos {
  readonly time: PdTime;
}

/** `<` (inject) or `>` (expect) a packet. */
export interface PdPacketEvent extends PdEventBase {
  readonly kind: "packet";
  readonly packet: PdPacket;
}

/**
 * A system call and its expected outcome:
 * `connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)`.
 */
export interface PdSyscallEvent extends PdEventBase {
  readonly kind: "syscall";
  /** For a blocking call written `start...end name(...)`: the time it returns, in µs. */
  readonly endUsecs: number | undefined;
  readonly name: string;
  readonly nameLine: number;
  readonly nameColumn: number;
  readonly args: readonly PdExpr[];
  readonly result: PdExpr;
  /** The expected errno name (`EINPROGRESS`), when the result is an error. */
  readonly errno: string | undefined;
  /** The parenthesised text after the result or errno, whitespace collapsed. */
  readonly note: string | undefined;
}

/** A backquoted shell command with a time: `+0 \`sysctl -w net.inet.tcp.sack.enable=1\``. */
export interface PdCommandEvent extends PdEventBase {
  readonly kind: "command";
  /** The text between the backquotes, verbatim. */
  readonly command: string;
}

/** A `%{ ... }%` code snippet (Python in packetdrill), spaces and tabs trimmed at both ends. */
export interface PdCodeEvent extends PdEventBase {
  readonly kind: "code";
  readonly code: string;
}

// ---------------------------------------------------------------------------------------------
// Packets

/** `<` is inbound (the script injects it), `>` is outbound (the stack must send it). */
export type PdDirection = "inbound" | "outbound";

/** A packet of any supported protocol. */
export type PdPacket = PdTcpPacket | PdIcmpPacket | PdUdpPacket;

/** ECN codepoint names used in `[noecn]`, `[ect0]`, `[ect1]`, `[ce]`, `[ect01]` (ect0 or ect1). */
export type PdEcn = "noecn" | "ect0" | "ect1" | "ce" | "ect01";

/** The bracketed IP-level annotation after the direction: `[noecn]`, `(tos 0x10)`, `[ttl 64]`. */
export interface PdIpInfo {
  readonly ecn: PdEcn | undefined;
  readonly tos: number | undefined;
  readonly flowLabel: number | undefined;
  /** `ttl` (IPv4) or `hlim` (IPv6). */
  readonly ttl: number | undefined;
  /** DSCP as a number (`dscp 0x2e`) or a class name (`dscp ef`). */
  readonly dscp: number | string | undefined;
}

/** Fields every packet has. The position is that of the direction character. */
export interface PdPacketBase extends PdPos {
  readonly direction: PdDirection;
  /**
   * Outer IP headers written explicitly before the packet, outermost first
   * (`< ipv4 192.0.2.1 > 192.0.2.2: [ect0] . 1:1(0) ...`); empty when none is written.
   */
  readonly outer: readonly PdIpHeader[];
  readonly ip: PdIpInfo | undefined;
}

/** An explicit IP header before a packet: `ipv4 SRC > DST:` or `ipv6 SRC > DST:` (packetdrill's packet_prefix). */
export interface PdIpHeader {
  readonly version: 4 | 6;
  /** Its own annotation (`ipv4 [ttl 2] A > B:`), if written. */
  readonly ip: PdIpInfo | undefined;
  /** The addresses as written. */
  readonly src: string;
  readonly dst: string;
}

/** TCP flags as written, decoded. `.` is ACK; `-` means no flags. */
export interface PdTcpFlags {
  /** The flags text as written (`S.`, `F.`, `SEW`, `.`, or `` for `-`). */
  readonly text: string;
  /** The flag bits, see `TcpFlag` in wire/tcp-repr. */
  readonly bits: number;
}

/**
 * Sequence space of a TCP segment. `relative`: `start:end(len)` where the numbers are relative
 * to the initial sequence number unless `absolute` (`start:end(len)!`). `any`: `...(len)`, the
 * sequence number is not checked.
 */
export type PdTcpSeq =
  | {
      readonly kind: "range";
      readonly start: number;
      readonly end: number;
      readonly len: number;
      readonly absolute: boolean;
    }
  | { readonly kind: "any"; readonly len: number };

/** A TCP segment. */
export interface PdTcpPacket extends PdPacketBase {
  readonly protocol: "tcp";
  /** `src>dst` ports written before the flags, if any. */
  readonly ports: { readonly src: number; readonly dst: number } | undefined;
  readonly flags: PdTcpFlags;
  readonly seq: PdTcpSeq;
  /** `ack N`, or undefined when not written. */
  readonly ack: number | undefined;
  /** `win N`, or undefined when not written (not checked on outbound packets). */
  readonly win: number | undefined;
  /** `urg N`, or undefined when not written. */
  readonly urg: number | undefined;
  /**
   * The option list. `[]` when none is written (the packet carries no options); `"any"` for
   * `<...>` (outbound only: options are not checked).
   */
  readonly options: readonly PdTcpOption[] | "any";
  /** `/udp(src > dst)` after the segment: it travels inside UDP (TCP over UDP, nplab). */
  readonly udpEncaps: PdUdpEncaps | undefined;
}

/**
 * The UDP ports of a TCP segment encapsulated in UDP (`/udp(9811 > 1)`, RFC 8095-style TCP over
 * UDP as the nplab packetdrill and FreeBSD's `TCP_REMOTE_UDP_ENCAPS_PORT` do it).
 */
export interface PdUdpEncaps {
  readonly src: number;
  readonly dst: number;
}

/** One TCP option inside `<...>`. */
export type PdTcpOption =
  | (PdPos & { readonly kind: "nop" })
  | (PdPos & { readonly kind: "eol" })
  | (PdPos & { readonly kind: "mss"; readonly value: number })
  | (PdPos & { readonly kind: "wscale"; readonly value: number })
  | (PdPos & { readonly kind: "sackOK" })
  | (PdPos & { readonly kind: "sack"; readonly blocks: readonly PdSackBlock[] })
  | (PdPos & {
      readonly kind: "timestamp";
      /** undefined for `val ...` (not checked). */
      readonly val: number | undefined;
      readonly ecr: number;
      /** `ecr N!`: the echo reply is absolute, not relative to the peer's first TSval. */
      readonly ecrAbsolute: boolean;
    })
  | (PdPos & { readonly kind: "md5"; readonly digest: string })
  | (PdPos & {
      readonly kind: "fastopen";
      /**
       * The cookie as written: even-length hex digits (`FO 0123abcd`), empty for a cookie
       * request (`FO`), or a symbol the packetdrill command line defines (`FO TFO_COOKIE`, given
       * as `-D TFO_COOKIE=...`); `symbolic` tells the last apart.
       */
      readonly cookie: string;
      readonly symbolic: boolean;
      readonly experimental: boolean;
    });

/** A SACK block `left:right`. */
export interface PdSackBlock {
  readonly left: number;
  readonly right: number;
}

/**
 * An ICMP (or ICMPv6) message: `< icmp unreachable port_unreachable [1:101(100)]`. Type and code
 * are kept as the names written; the runner maps them per IP version.
 */
export interface PdIcmpPacket extends PdPacketBase {
  readonly protocol: "icmp";
  readonly type: string;
  readonly code: string | undefined;
  /** `mtu N` (fragmentation needed / packet too big). */
  readonly mtu: number | undefined;
  /** `id N` (echo). */
  readonly id: number | undefined;
  /** The quoted packet in `[...]`, if written. */
  readonly echoed: PdIcmpEchoed | undefined;
}

/** The offending packet an ICMP error quotes. */
export type PdIcmpEchoed =
  | { readonly protocol: "tcp"; readonly seq: PdTcpSeq; readonly udpEncaps: PdUdpEncaps | undefined }
  | { readonly protocol: "udp"; readonly len: number }
  | { readonly protocol: "raw"; readonly len: number };

/** A UDP datagram: `< udp 8080>53 (100)` or `> udp (100)`. */
export interface PdUdpPacket extends PdPacketBase {
  readonly protocol: "udp";
  readonly ports: { readonly src: number; readonly dst: number } | undefined;
  readonly len: number;
}

// ---------------------------------------------------------------------------------------------
// Expressions (system call arguments and results)

/** A system call argument or result. */
export type PdExpr =
  | PdEllipsisExpr
  | PdIntExpr
  | PdWordExpr
  | PdStringExpr
  | PdBinaryExpr
  | PdAssignExpr
  | PdCallExpr
  | PdListExpr
  | PdStructExpr;

/** `...`: any value (an address, a buffer) the runner fills in or does not check. */
export interface PdEllipsisExpr extends PdPos {
  readonly kind: "ellipsis";
}

/** An integer literal, decimal or `0x` hex. */
export interface PdIntExpr extends PdPos {
  readonly kind: "int";
  readonly value: number;
  readonly hex: boolean;
}

/** A symbolic name: `SOCK_STREAM`, `O_NONBLOCK`, `ECONNRESET`. */
export interface PdWordExpr extends PdPos {
  readonly kind: "word";
  readonly name: string;
}

/** A string literal (adjacent literals concatenated); `"abc"...` sets `truncated`. */
export interface PdStringExpr extends PdPos {
  readonly kind: "string";
  /** The text between the quotes, escapes kept verbatim. */
  readonly value: string;
  readonly truncated: boolean;
}

/** `a | b` (bitwise or of flags). */
export interface PdBinaryExpr extends PdPos {
  readonly kind: "binary";
  readonly op: "|";
  readonly left: PdExpr;
  readonly right: PdExpr;
}

/** `name = value` inside a struct literal (`l_onoff=1`), or `name(args) = value` (`msg_iov(1)=[...]`). */
export interface PdAssignExpr extends PdPos {
  readonly kind: "assign";
  readonly name: string;
  /** The parenthesised arguments after the name, for `msg_iov(1)=...`; else undefined. */
  readonly nameArgs: readonly PdExpr[] | undefined;
  readonly value: PdExpr;
}

/** `name(args)`: `htons(8080)`, `inet_addr("192.0.2.1")`. */
export interface PdCallExpr extends PdPos {
  readonly kind: "call";
  readonly name: string;
  readonly args: readonly PdExpr[];
}

/** `[a, b]`: an array, or a pointer to a value (`[1]` for an int option value). */
export interface PdListExpr extends PdPos {
  readonly kind: "list";
  readonly items: readonly PdExpr[];
}

/** `{a=1, b=2}` or `{..., 10}`: a struct literal. */
export interface PdStructExpr extends PdPos {
  readonly kind: "struct";
  readonly items: readonly PdExpr[];
}

// ---------------------------------------------------------------------------------------------
// Helpers over the tree

/** The TCP flag letters packetdrill knows and the bit each sets; `.` is ACK. */
export const TCP_FLAG_LETTERS: Readonly<Record<string, number>> = {
  F: TcpFlag.FIN,
  S: TcpFlag.SYN,
  R: TcpFlag.RST,
  P: TcpFlag.PSH,
  ".": TcpFlag.ACK,
  U: TcpFlag.URG,
  E: TcpFlag.ECE,
  W: TcpFlag.CWR,
};

/**
 * The events of `script` with every conditional resolved against `defines`: `#ifdef X` keeps
 * its first branch when X is defined, else its `#else` branch (`#ifndef` the opposite).
 */
export function selectEvents(script: PdScript, defines: Iterable<string> = []): PdEvent[] {
  const set = new Set(defines);
  const out: PdEvent[] = [];
  const walk = (items: readonly PdItem[]): void => {
    for (const item of items) {
      if (item.kind === "conditional") {
        walk(set.has(item.symbol) !== item.negated ? item.then : item.otherwise);
      } else {
        out.push(item);
      }
    }
  };
  walk(script.body);
  return out;
}

/**
 * The events a run goes through: the script's init command first (packetdrill runs it before
 * the first event, once its tun device is up: the google scripts set their sysctls there), as a
 * command at relative time 0, then the body's events under `defines`.
 */
export function runEvents(script: PdScript, defines: Iterable<string> = []): PdEvent[] {
  const body = selectEvents(script, defines);
  const init = script.initCommand;
  if (init === undefined) return body;
  const first: PdCommandEvent = {
    kind: "command",
    line: init.line,
    column: init.column,
    time: { kind: "relative", usecs: 0 },
    command: init.command,
  };
  return [first, ...body];
}

/** Every event in every branch of every conditional, in source order (for statistics). */
export function allEvents(script: PdScript): PdEvent[] {
  const out: PdEvent[] = [];
  const walk = (items: readonly PdItem[]): void => {
    for (const item of items) {
      if (item.kind === "conditional") {
        walk(item.then);
        walk(item.otherwise);
      } else {
        out.push(item);
      }
    }
  };
  walk(script.body);
  return out;
}

/** The value of option `--name`, or undefined when absent (the last one wins if repeated). */
export function optionValue(script: PdScript, name: string): string | undefined {
  let value: string | undefined;
  for (const o of script.options) if (o.name === name) value = o.value;
  return value;
}

/** The named field of a struct literal (`structField({l_onoff=1}, "l_onoff")` is the `1` node). */
export function structField(expr: PdExpr, name: string): PdExpr | undefined {
  if (expr.kind !== "struct") return undefined;
  for (const item of expr.items) if (item.kind === "assign" && item.name === name) return item.value;
  return undefined;
}
