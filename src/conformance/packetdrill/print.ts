/**
 * Prints the syntax tree back as packetdrill text, one statement per line, in a normalised
 * layout (single spaces, times with six decimals). Parsing the output gives back the same tree
 * except for source positions; the runner uses it to show expected and actual events.
 */
import type {
  PdEvent,
  PdExpr,
  PdIpInfo,
  PdItem,
  PdPacket,
  PdScript,
  PdTcpOption,
  PdTcpSeq,
  PdTime,
  PdUdpEncaps,
} from "./ast.js";

/** Microseconds as seconds with six decimals: `100000` is `0.100000`. */
export function printSeconds(usecs: number): string {
  return `${Math.floor(usecs / 1_000_000)}.${String(usecs % 1_000_000).padStart(6, "0")}`;
}

/** An event time: `0.100000`, `+0.100000`, `*`, `0.1~0.2`, `+0.1~+0.2`. */
export function printTime(t: PdTime): string {
  switch (t.kind) {
    case "absolute":
      return printSeconds(t.usecs);
    case "relative":
      return `+${printSeconds(t.usecs)}`;
    case "absolute-range":
      return `${printSeconds(t.usecs)}~${printSeconds(t.endUsecs)}`;
    case "relative-range":
      return `+${printSeconds(t.usecs)}~+${printSeconds(t.endUsecs)}`;
    case "any":
      return "*";
  }
}

/** A system call argument or result. */
export function printExpr(e: PdExpr): string {
  switch (e.kind) {
    case "ellipsis":
      return "...";
    case "int":
      if (!e.hex) return String(e.value);
      return e.value < 0 ? `-0x${(-e.value).toString(16)}` : `0x${e.value.toString(16)}`;
    case "word":
      return e.name;
    case "string":
      return `"${e.value}"${e.truncated ? "..." : ""}`;
    case "binary":
      return `${printExpr(e.left)} ${e.op} ${printExpr(e.right)}`;
    case "assign":
      return `${e.name}${e.nameArgs === undefined ? "" : `(${e.nameArgs.map(printExpr).join(", ")})`}=${printExpr(e.value)}`;
    case "call":
      return `${e.name}(${e.args.map(printExpr).join(", ")})`;
    case "list":
      return `[${e.items.map(printExpr).join(", ")}]`;
    case "struct":
      return `{${e.items.map(printExpr).join(", ")}}`;
  }
}

function printIp(ip: PdIpInfo | undefined): string {
  if (ip === undefined) return "";
  const parts: string[] = [];
  if (ip.ecn !== undefined) parts.push(ip.ecn);
  if (ip.tos !== undefined) parts.push(`tos 0x${ip.tos.toString(16)}`);
  if (ip.flowLabel !== undefined) parts.push(`flowlabel 0x${ip.flowLabel.toString(16)}`);
  if (ip.ttl !== undefined) parts.push(`ttl ${ip.ttl}`);
  if (ip.dscp !== undefined)
    parts.push(`dscp ${typeof ip.dscp === "number" ? `0x${ip.dscp.toString(16)}` : ip.dscp}`);
  return ` [${parts.join(", ")}]`;
}

function printSeq(s: PdTcpSeq): string {
  return s.kind === "any" ? `...(${s.len})` : `${s.start}:${s.end}(${s.len})${s.absolute ? "!" : ""}`;
}

function printTcpOption(o: PdTcpOption): string {
  switch (o.kind) {
    case "nop":
    case "eol":
    case "sackOK":
      return o.kind;
    case "mss":
    case "wscale":
      return `${o.kind} ${o.value}`;
    case "sack":
      return `sack ${o.blocks.map((b) => `${b.left}:${b.right}`).join(" ")}`;
    case "timestamp":
      return `TS val ${o.val ?? "..."} ecr ${o.ecr}${o.ecrAbsolute ? "!" : ""}`;
    case "md5":
      return `md5 ${o.digest}`;
    case "fastopen":
      return `${o.experimental ? "FOEXP" : "FO"}${o.cookie === "" ? "" : ` ${o.cookie}`}`;
  }
}

/** `/udp(src > dst)` for a TCP segment carried in UDP; empty for a plain one. */
function printUdpEncaps(e: PdUdpEncaps | undefined): string {
  return e === undefined ? "" : `/udp(${e.src} > ${e.dst})`;
}

/** A packet: `> S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>`. */
export function printPacket(p: PdPacket): string {
  const outer = p.outer.map((h) => ` ipv${h.version}${printIp(h.ip)} ${h.src} > ${h.dst}:`).join("");
  const head = `${p.direction === "inbound" ? "<" : ">"}${outer}${printIp(p.ip)}`;
  switch (p.protocol) {
    case "tcp": {
      const parts = [head];
      if (p.ports !== undefined) parts.push(`${p.ports.src}>${p.ports.dst}`);
      parts.push(p.flags.text === "" ? "-" : p.flags.text, printSeq(p.seq));
      if (p.ack !== undefined) parts.push(`ack ${p.ack}`);
      if (p.win !== undefined) parts.push(`win ${p.win}`);
      if (p.urg !== undefined) parts.push(`urg ${p.urg}`);
      if (p.options === "any") parts.push("<...>");
      else if (p.options.length > 0) parts.push(`<${p.options.map(printTcpOption).join(",")}>`);
      return parts.join(" ") + printUdpEncaps(p.udpEncaps);
    }
    case "icmp": {
      const parts = [head, "icmp", p.type];
      if (p.code !== undefined) parts.push(p.code);
      if (p.mtu !== undefined) parts.push(`mtu ${p.mtu}`);
      if (p.id !== undefined) parts.push(`id ${p.id}`);
      if (p.echoed !== undefined) {
        parts.push(
          p.echoed.protocol === "tcp"
            ? `[${printSeq(p.echoed.seq)}${printUdpEncaps(p.echoed.udpEncaps)}]`
            : `[${p.echoed.protocol}(${p.echoed.len})]`,
        );
      }
      return parts.join(" ");
    }
    case "udp":
      return `${head} udp${p.ports === undefined ? "" : ` ${p.ports.src}>${p.ports.dst}`} (${p.len})`;
  }
}

/** One event on one line. */
export function printEvent(e: PdEvent): string {
  const time = printTime(e.time);
  switch (e.kind) {
    case "packet":
      return `${time} ${printPacket(e.packet)}`;
    case "command":
      return `${time} \`${e.command}\``;
    case "code":
      return `${time} %{ ${e.code} }%`;
    case "syscall": {
      const end = e.endUsecs === undefined ? "" : `...${printSeconds(e.endUsecs)}`;
      let line = `${time}${end} ${e.name}(${e.args.map(printExpr).join(", ")}) = ${printExpr(e.result)}`;
      if (e.errno !== undefined) line += ` ${e.errno}`;
      if (e.note !== undefined) line += ` (${e.note})`;
      return line;
    }
  }
}

function printItems(items: readonly PdItem[], out: string[]): void {
  for (const item of items) {
    if (item.kind !== "conditional") {
      out.push(printEvent(item));
      continue;
    }
    out.push(`#${item.negated ? "ifndef" : "ifdef"} ${item.symbol}`);
    printItems(item.then, out);
    if (item.otherwise.length > 0) {
      out.push("#else");
      printItems(item.otherwise, out);
    }
    out.push("#endif");
  }
}

/** A whole script, one statement per line, ending with a newline. */
export function printScript(s: PdScript): string {
  const out: string[] = s.options.map((o) => {
    if (o.value === undefined) return `--${o.name}`;
    return /\s/.test(o.value) ? `--${o.name}="${o.value}"` : `--${o.name}=${o.value}`;
  });
  if (s.initCommand !== undefined) out.push(`\`${s.initCommand.command}\``);
  printItems(s.body, out);
  if (s.cleanupCommand !== undefined) out.push(`\`${s.cleanupCommand.command}\``);
  return `${out.join("\n")}\n`;
}
