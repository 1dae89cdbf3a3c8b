/**
 * What a script needs that our stack does not have. A script that uses a missing feature is not
 * run to its first mismatch: it is classified "unsupported: <feature>" with the feature's reason,
 * so that a missing feature is never mistaken for a runner error or a stack bug. Two ways in:
 *
 * - `detectUnsupported` looks at the script before it runs (options, sysctls, socket options,
 *   packet options, `sendto` flags), for the features that change a script from its first line
 *   (TCP Fast Open, TCP over UDP, TCP-MD5);
 * - the runner raises the same classification when it meets an option or a call that has no
 *   meaning for us (`unsupportedOption`), at the point it meets it.
 *
 * A script that does not parse is looked at as text (`detectUnsupportedText`), so that a fast-open
 * script with a stray character still counts as fast-open, with its parse error kept in the
 * message.
 */
import type { PdEvent, PdExpr, PdScript } from "../packetdrill/ast.js";
import { TcpFlag } from "../../wire/tcp-repr.js";

/** The features we lack, each with why a script using it cannot pass. */
export const UNSUPPORTED_FEATURES = {
  "fast-open": "TCP Fast Open (RFC 7413) is not implemented: no cookies, no data on SYN",
  "tcp-over-udp":
    "TCP over UDP encapsulation (FreeBSD net.inet.tcp.udp_tunneling_port, TCP_REMOTE_UDP_ENCAPS_PORT) is not implemented",
  "tcp-md5": "TCP-MD5 signatures (RFC 2385, TCP_MD5SIG) are not implemented (nor TCP-AO, RFC 5925)",
  "ipv4-mapped-ipv6": "IPv4-mapped IPv6 sockets are not part of our socket layer",
  "socket-option":
    "a socket option with no meaning for our stack (another congestion or pacing module, zero-copy, ...)",
  "system-call": "a system call with no meaning for our socket layer (capabilities, PSP)",
} as const;

/** The name of a missing feature. */
export type UnsupportedFeature = keyof typeof UNSUPPORTED_FEATURES;

const FASTOPEN_SYSCTL = /fastopen/;
const UDP_TUNNEL_SYSCTL = /udp_tunneling_port$/;

function words(e: PdExpr | undefined, out: string[] = []): string[] {
  if (e === undefined) return out;
  switch (e.kind) {
    case "word":
      out.push(e.name);
      break;
    case "binary":
      words(e.left, out);
      words(e.right, out);
      break;
    case "list":
    case "struct":
      for (const i of e.items) words(i, out);
      break;
    case "assign":
      words(e.value, out);
      break;
    case "call":
      for (const a of e.args) words(a, out);
      break;
    default:
      break;
  }
  return out;
}

/** The `name=value` pairs a shell command sets with sysctl (`-w`, `-q` or plain). */
export function sysctlAssignments(command: string): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  const m = /^\s*sysctl\s+(.*)$/.exec(command);
  if (m?.[1] === undefined) return out;
  for (const w of m[1].trim().split(/\s+/)) {
    const eq = /^([\w.]+)=(.*)$/.exec(w);
    if (eq?.[1] !== undefined && eq[2] !== undefined)
      out.push({ name: eq[1], value: eq[2].replace(/"/g, "") });
  }
  return out;
}

/** The lines of a backquoted command, a backslash-newline joining two (as the shell reads them), trimmed, blank ones left out. */
export function commandLines(cmd: string): string[] {
  return cmd
    .replace(/\\\r?\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/**
 * The words of a shell command line: split at blanks outside quotes, quotes removed (what
 * `set_sysctls.py /proc/sys/...="4096 50000 4194304"` gets as its arguments).
 */
export function shellWords(line: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else word = (word ?? "") + ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= "";
    } else if (/\s/.test(ch)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else word = (word ?? "") + ch;
  }
  if (word !== undefined) out.push(word);
  return out;
}

/**
 * The assignments of a google `set_sysctls.py /proc/sys/PATH=VALUE...` line, as sysctl names
 * (`net.ipv4.tcp_wmem`) and values; undefined when the line is not one; a string naming the
 * first argument that is not such an assignment.
 */
export function setSysctlsArgs(
  line: string,
): { name: string; value: string; path: string }[] | string | undefined {
  const m = /^(?:\S*\/)?set_sysctls\.py\s+(.*)$/.exec(line);
  if (m?.[1] === undefined) return undefined;
  const out: { name: string; value: string; path: string }[] = [];
  for (const w of shellWords(m[1])) {
    const a = /^(\/proc\/sys\/(\S+?))=(.*)$/s.exec(w);
    if (a?.[1] === undefined || a[2] === undefined || a[3] === undefined) return w;
    out.push({ path: a[1], name: a[2].split("/").join("."), value: a[3] });
  }
  return out;
}

const nonZero = (v: string): boolean => v !== "" && Number(v) !== 0;

/** What the device under test can do of the features `UNSUPPORTED_FEATURES` names. */
export interface DutCapabilities {
  /**
   * Client TCP Fast Open (RFC 7413) as FreeBSD drives it: `TCP_FASTOPEN` on the connecting
   * socket, `fastopen.client_enable`, the option on our SYN and on the peer's SYN-ACK. The
   * server side (a listener's cookies, the option on an incoming SYN) stays unsupported.
   */
  readonly clientFastOpen?: boolean | undefined;
}

/** Whether a fast open sysctl is one a client fast open stack honours. */
const clientFastOpenSysctl = (name: string): boolean => /fastopen\.client_enable$/.test(name);

/** The missing feature one event uses, if any. */
function eventFeature(ev: PdEvent, caps: DutCapabilities): UnsupportedFeature | undefined {
  const client = caps.clientFastOpen === true;
  switch (ev.kind) {
    case "command":
      for (const a of sysctlAssignments(ev.command)) {
        if (client && clientFastOpenSysctl(a.name)) continue;
        if (FASTOPEN_SYSCTL.test(a.name) && !a.name.endsWith("_key") && nonZero(a.value)) return "fast-open";
        if (UDP_TUNNEL_SYSCTL.test(a.name) && nonZero(a.value)) return "tcp-over-udp";
      }
      if (/set_sysctls\.py.*tcp_fastopen=(?!0\b)/.test(ev.command)) return "fast-open";
      return undefined;
    case "syscall": {
      const ws = ev.args.flatMap((a) => words(a));
      if (
        (ws.includes("TCP_FASTOPEN") && !client) ||
        ws.includes("TCP_FASTOPEN_CONNECT") ||
        ws.includes("MSG_FASTOPEN")
      )
        return "fast-open";
      if (ws.includes("TCP_REMOTE_UDP_ENCAPS_PORT")) return "tcp-over-udp";
      if (ws.includes("TCP_MD5SIG") || ws.includes("TCP_MD5SIG_EXT")) return "tcp-md5";
      return undefined;
    }
    case "packet": {
      const p = ev.packet;
      if (p.protocol !== "tcp") return undefined;
      if (p.udpEncaps !== undefined) return "tcp-over-udp";
      if (p.options === "any") return undefined;
      // A client's SYN and the SYN-ACK it gets may carry the option; a SYN coming in with it
      // asks us to be a fast open server.
      const incomingSyn =
        p.direction === "inbound" && (p.flags.bits & TcpFlag.SYN) !== 0 && (p.flags.bits & TcpFlag.ACK) === 0;
      for (const o of p.options) {
        if (o.kind === "fastopen" && (!client || o.experimental || incomingSyn)) return "fast-open";
        if (o.kind === "md5") return "tcp-md5";
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** A missing feature a script uses, and the line of its first use. */
export interface FeatureUse {
  readonly feature: UnsupportedFeature;
  readonly line: number;
}

/** The first missing feature `events` (the script's selected events) use, if any. */
export function detectUnsupported(
  script: PdScript,
  events: readonly PdEvent[],
  caps: DutCapabilities = {},
): FeatureUse | undefined {
  for (const o of script.options) {
    const line = o.line;
    if (o.name === "udp_encapsulation") return { feature: "tcp-over-udp", line };
    if (o.name === "tcp_md5_secret") return { feature: "tcp-md5", line };
    if (o.name === "ip_version" && o.value === "ipv4-mapped-ipv6")
      return { feature: "ipv4-mapped-ipv6", line };
  }
  for (const ev of events) {
    const feature = eventFeature(ev, caps);
    if (feature !== undefined) return { feature, line: ev.line };
  }
  return undefined;
}

/** The same look at a script that does not parse: its text, less comments. */
export function detectUnsupportedText(
  text: string,
  caps: DutCapabilities = {},
): UnsupportedFeature | undefined {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
  // A fast open client reads as fast open too; with one, only the server side and Linux's
  // client calls are missing.
  const fastOpen =
    caps.clientFastOpen === true
      ? /MSG_FASTOPEN|TCP_FASTOPEN_CONNECT|\bFOEXP\b|server_enable\s*=\s*[1-9]|tcp_fastopen\s*=\s*[1-9]/
      : /TCP_FASTOPEN|MSG_FASTOPEN|\bFO\s|fastopen[\w.]*=\s*[1-9]/;
  if (fastOpen.test(code)) return "fast-open";
  if (/udp_encapsulation|TCP_REMOTE_UDP_ENCAPS_PORT|\/udp\(|udp_tunneling_port=\s*[1-9]/.test(code))
    return "tcp-over-udp";
  if (/TCP_MD5SIG|tcp_md5_secret|\bmd5\s/.test(code)) return "tcp-md5";
  return undefined;
}
