/**
 * A recursive-descent parser for packetdrill scripts (google/packetdrill's grammar, with the
 * nplab extensions the FreeBSD TCP test suite uses: `SEW`-style ECN flags, `...(len)` sequence
 * wildcards, `start...end` blocking system calls, and `#ifdef` blocks).
 *
 * Theory of operation: the tokenizer turns the whole script into tokens first. The parser then
 * reads, in order, `--options`, an optional untimed init command, timed events and
 * conditional blocks, and an optional untimed cleanup command. An event is a time followed by
 * an action; the action's first token decides its kind (`<`/`>` packet, word system call,
 * backquote command, `%{` code). After each action the next token must be able to start a new
 * statement, which catches trailing junk on a line. Semantic rules packetdrill enforces at
 * parse time are enforced here too (field ranges, `start:end(len)` consistency, `*` and time
 * ranges and `<...>` only on outbound packets).
 *
 * `parsePacketdrill` never throws on input: every problem is a `PacketdrillParseError` in the
 * returned `Result`. Internally the parser throws that error and catches it at the top; any
 * other exception is a bug and propagates.
 */
import type { Result } from "../../util/errors.js";
import { err, ok } from "../../util/errors.js";
import type {
  PdConditional,
  PdDirection,
  PdEcn,
  PdEvent,
  PdExpr,
  PdIcmpEchoed,
  PdIcmpPacket,
  PdIpHeader,
  PdIpInfo,
  PdItem,
  PdOption,
  PdPacket,
  PdPacketBase,
  PdSackBlock,
  PdScript,
  PdTcpFlags,
  PdTcpOption,
  PdTcpPacket,
  PdTcpSeq,
  PdTime,
  PdUdpEncaps,
  PdUdpPacket,
  PdUntimedCommand,
} from "./ast.js";
import { TCP_FLAG_LETTERS } from "./ast.js";
import type { PdErrorCode } from "./errors.js";
import { PacketdrillParseError } from "./errors.js";
import type { Token } from "./lexer.js";
import { tokenize } from "./lexer.js";

/** Options for `parsePacketdrill`. */
export interface ParseOptions {
  /** The name used in error messages (`rcv-ack-listen.pkt`). Defaults to `<script>`. */
  readonly file?: string;
}

/** Parses a packetdrill script. Never throws on input. */
export function parsePacketdrill(
  source: string,
  options: ParseOptions = {},
): Result<PdScript, PacketdrillParseError> {
  const file = options.file ?? "<script>";
  try {
    const parser = new Parser(source, file, tokenize(source, file));
    return ok(parser.script());
  } catch (e) {
    if (e instanceof PacketdrillParseError) return err(e);
    throw e;
  }
}

const ECN_NAMES: ReadonlySet<string> = new Set(["noecn", "ect0", "ect1", "ce", "ect01"]);
/** Characters the grammar uses; any other punct token is reported as a bad character. */
const KNOWN_PUNCT = "()[]{}<>,=|:+*~.!/-;";

/** What a number is checked against. */
interface Width {
  readonly max: number;
  readonly what: string;
}
const U8 = 0xff;
const U16 = 0xffff;
const U20 = 0xfffff;
const U32 = 0xffff_ffff;

class Parser {
  private pos = 0;
  private sawEvent = false;
  private readonly options: PdOption[] = [];
  private initCommand: PdUntimedCommand | undefined;
  private cleanupCommand: PdUntimedCommand | undefined;

  private readonly src: string;
  private readonly file: string;
  private readonly toks: readonly Token[];

  constructor(src: string, file: string, toks: readonly Token[]) {
    this.src = src;
    this.file = file;
    this.toks = toks;
  }

  // -------------------------------------------------------------------------------------------
  // Token helpers

  private peek(ahead = 0): Token {
    return this.toks[Math.min(this.pos + ahead, this.toks.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== "eof") this.pos++;
    return t;
  }

  private isPunct(ch: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.type === "punct" && t.text === ch;
  }

  private isWord(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.type === "word" && t.text === text;
  }

  private fail(t: Token, code: PdErrorCode, detail: string): never {
    throw new PacketdrillParseError(code, this.file, t.line, t.column, detail);
  }

  /** A `PD_EXPECTED` error at the current token, naming what was found. */
  private expected(what: string): never {
    const t = this.peek();
    if (t.type === "punct" && !KNOWN_PUNCT.includes(t.text)) {
      this.fail(t, "PD_BAD_CHAR", `unexpected character '${shorten(t.text)}' (${what})`);
    }
    this.fail(t, "PD_EXPECTED", `${what}, found ${describe(t)}`);
  }

  private expectPunct(ch: string, what: string): Token {
    if (!this.isPunct(ch)) this.expected(what);
    return this.next();
  }

  private expectWord(text: string, what: string): Token {
    if (!this.isWord(text)) this.expected(what);
    return this.next();
  }

  /** An unsigned integer token no larger than `width.max`. */
  private uint(width: Width): number {
    const t = this.peek();
    if (t.type !== "int") this.expected(`expected ${width.what}`);
    this.next();
    if (t.value < 0 || t.value > width.max || !Number.isSafeInteger(t.value)) {
      this.fail(t, "PD_OUT_OF_RANGE", `${width.what} ${t.text} out of range (0..${width.max})`);
    }
    return t.value;
  }

  // -------------------------------------------------------------------------------------------
  // Script structure

  script(): PdScript {
    const body = this.items(undefined);
    return {
      file: this.file,
      options: this.options,
      initCommand: this.initCommand,
      body,
      cleanupCommand: this.cleanupCommand,
    };
  }

  /**
   * Statements up to end of input (`open` undefined) or up to the `#else`/`#endif` that closes
   * the conditional opened by `open` (left unconsumed for the caller).
   */
  private items(open: Token | undefined): PdItem[] {
    const items: PdItem[] = [];
    for (;;) {
      const t = this.peek();
      switch (t.type) {
        case "eof":
          if (open !== undefined) this.fail(open, "PD_DIRECTIVE", `#${open.text} without matching #endif`);
          return items;
        case "option":
          if (open !== undefined || this.sawEvent || this.initCommand !== undefined) {
            this.fail(t, "PD_MISPLACED_OPTION", `option --${t.text} must come before the first event`);
          }
          this.next();
          this.options.push({ kind: "option", line: t.line, column: t.column, name: t.text, value: t.extra });
          break;
        case "directive":
          if (t.text === "else" || t.text === "endif") {
            if (open === undefined) this.fail(t, "PD_DIRECTIVE", `#${t.text} without #ifdef`);
            return items;
          }
          items.push(this.conditional());
          break;
        case "backquote":
          this.untimedCommand(open);
          break;
        case "int":
        case "float":
        case "word":
        case "string":
        case "code":
        case "ellipsis":
        case "ipv4":
        case "ipv6":
        case "punct":
          items.push(this.event());
          this.sawEvent = true;
      }
    }
  }

  private conditional(): PdConditional {
    const open = this.next();
    if (open.text !== "ifdef" && open.text !== "ifndef") {
      this.fail(
        open,
        "PD_DIRECTIVE",
        `unknown directive #${open.text} (expected #ifdef, #ifndef, #else or #endif)`,
      );
    }
    if (open.extra === undefined) this.fail(open, "PD_DIRECTIVE", `#${open.text} needs a symbol`);
    const then = this.items(open);
    let otherwise: PdItem[] = [];
    const mid = this.next(); // #else or #endif, guaranteed by items()
    if (mid.extra !== undefined) this.fail(mid, "PD_DIRECTIVE", `#${mid.text} takes no argument`);
    if (mid.text === "else") {
      otherwise = this.items(open);
      const end = this.next();
      if (end.text !== "endif") this.fail(end, "PD_DIRECTIVE", "expected #endif after #else branch");
      if (end.extra !== undefined) this.fail(end, "PD_DIRECTIVE", "#endif takes no argument");
    }
    return {
      kind: "conditional",
      line: open.line,
      column: open.column,
      symbol: open.extra,
      negated: open.text === "ifndef",
      then,
      otherwise,
    };
  }

  /** A backquoted command with no time: the init command or the cleanup command. */
  private untimedCommand(open: Token | undefined): void {
    const t = this.next();
    const cmd: PdUntimedCommand = {
      kind: "untimed-command",
      line: t.line,
      column: t.column,
      command: t.text,
    };
    if (open === undefined && !this.sawEvent && this.initCommand === undefined) {
      this.initCommand = cmd;
    } else if (open === undefined && this.peek().type === "eof") {
      this.cleanupCommand = cmd;
    } else {
      this.fail(
        t,
        "PD_EXPECTED",
        "a command without a time is only allowed before the first event or as the last line",
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // Events

  private event(): PdEvent {
    const start = this.peek();
    const time = this.time();
    const base = { line: start.line, column: start.column, time };
    const t = this.peek();
    let ev: PdEvent;
    let what: string;
    if (t.type === "ellipsis" || t.type === "word") {
      ev = { kind: "syscall", ...base, ...this.syscall(time) };
      what = "the system call";
    } else if (t.type === "punct" && (t.text === "<" || t.text === ">")) {
      ev = { kind: "packet", ...base, packet: this.packet() };
      what = "the packet";
    } else if (t.type === "backquote") {
      this.next();
      ev = { kind: "command", ...base, command: t.text };
      what = "the command";
    } else if (t.type === "code") {
      this.next();
      ev = { kind: "code", ...base, code: t.text };
      what = "the code snippet";
    } else {
      this.expected("expected a packet, system call, command or code snippet after the event time");
    }
    if (
      (time.kind === "any" || time.kind === "absolute-range" || time.kind === "relative-range") &&
      !(ev.kind === "packet" && ev.packet.direction === "outbound")
    ) {
      const form = time.kind === "any" ? "event time *" : "an event time range";
      this.fail(start, "PD_OUTBOUND_ONLY", `${form} can only be used with outbound packets`);
    }
    this.endOfStatement(what);
    return ev;
  }

  /** The next token must be able to start a statement. */
  private endOfStatement(after: string): void {
    const t = this.peek();
    switch (t.type) {
      case "eof":
      case "int":
      case "float":
      case "directive":
      case "option":
      case "backquote":
        return;
      case "punct":
        if (t.text === "+" || t.text === "*") return;
        break;
      case "word":
      case "string":
      case "code":
      case "ellipsis":
      case "ipv4":
      case "ipv6":
        break;
    }
    this.expected(`expected the next event after ${after}`);
  }

  private time(): PdTime {
    if (this.isPunct("*")) {
      this.next();
      return { kind: "any" };
    }
    if (this.isPunct("+")) {
      this.next();
      const usecs = this.seconds();
      if (!this.isPunct("~")) return { kind: "relative", usecs };
      const tilde = this.next();
      this.expectPunct("+", "expected '+' after '~' in a relative time range");
      const endUsecs = this.seconds();
      if (endUsecs < usecs) this.fail(tilde, "PD_BAD_TIME", "time range is backwards");
      return { kind: "relative-range", usecs, endUsecs };
    }
    const t = this.peek();
    if (t.type !== "int" && t.type !== "float") {
      this.expected("expected an event time (like 0.100, +0.1 or *)");
    }
    const usecs = this.seconds();
    if (!this.isPunct("~")) return { kind: "absolute", usecs };
    const tilde = this.next();
    const endUsecs = this.seconds();
    if (endUsecs < usecs) this.fail(tilde, "PD_BAD_TIME", "time range is backwards");
    return { kind: "absolute-range", usecs, endUsecs };
  }

  /** A time in seconds (`1`, `0.100`, `.5`) as integer microseconds, exactly. */
  private seconds(): number {
    const t = this.peek();
    if ((t.type !== "int" || t.hex) && t.type !== "float") this.expected("expected a time in seconds");
    this.next();
    if (t.text.startsWith("-")) this.fail(t, "PD_BAD_TIME", `negative time ${t.text}`);
    const [whole = "", frac = ""] = t.text.split(".");
    const usecs = Number(whole === "" ? "0" : whole) * 1_000_000 + Number(frac.padEnd(6, "0").slice(0, 6));
    if (!Number.isSafeInteger(usecs)) this.fail(t, "PD_OUT_OF_RANGE", `time ${t.text} is too large`);
    return usecs;
  }

  // -------------------------------------------------------------------------------------------
  // System calls

  private syscall(time: PdTime): {
    endUsecs: number | undefined;
    name: string;
    nameLine: number;
    nameColumn: number;
    args: PdExpr[];
    result: PdExpr;
    errno: string | undefined;
    note: string | undefined;
  } {
    let endUsecs: number | undefined;
    if (this.peek().type === "ellipsis") {
      const dots = this.next();
      endUsecs = this.seconds();
      if (time.kind === "absolute" && endUsecs < time.usecs) {
        this.fail(dots, "PD_BAD_TIME", "blocking system call ends before it starts");
      }
      if (this.peek().type !== "word") this.expected("expected a system call after the end time");
    }
    const name = this.next();
    this.expectPunct("(", `expected '(' after system call name '${name.text}'`);
    const args = this.isPunct(")") ? [] : this.exprList();
    this.expectPunct(")", "expected ')' after arguments");
    this.expectPunct("=", `expected '=' and the expected result after ${name.text}(...)`);
    const result = this.expr(true);
    let errno: string | undefined;
    if (this.peek().type === "word") errno = this.next().text;
    const note = this.isPunct("(") ? this.note() : undefined;
    return {
      endUsecs,
      name: name.text,
      nameLine: name.line,
      nameColumn: name.column,
      args,
      result,
      errno,
      note,
    };
  }

  /** `( free text )` after a result: the raw text with whitespace collapsed. */
  private note(): string {
    const open = this.next();
    let depth = 1;
    for (;;) {
      const t = this.next();
      if (t.type === "eof") this.fail(open, "PD_UNTERMINATED", "unterminated '(' note after the result");
      if (t.type === "punct" && t.text === "(") depth++;
      if (t.type === "punct" && t.text === ")" && --depth === 0) {
        return this.src.slice(open.end, t.start).replace(/\s+/g, " ").trim();
      }
    }
  }

  private exprList(): PdExpr[] {
    const list = [this.expr(false)];
    while (this.isPunct(",")) {
      this.next();
      list.push(this.expr(false));
    }
    return list;
  }

  /** An expression; `result` disables calls and assignments (a `(` after a result is a note). */
  private expr(result: boolean): PdExpr {
    let left = this.primary(result);
    while (this.isPunct("|")) {
      this.next();
      const right = this.primary(result);
      left = { kind: "binary", line: left.line, column: left.column, op: "|", left, right };
    }
    return left;
  }

  private primary(result: boolean): PdExpr {
    const t = this.peek();
    const at = { line: t.line, column: t.column };
    switch (t.type) {
      case "ellipsis":
        this.next();
        return { kind: "ellipsis", ...at };
      case "int":
        this.next();
        if (!Number.isSafeInteger(t.value)) this.fail(t, "PD_OUT_OF_RANGE", `integer ${t.text} is too large`);
        return { kind: "int", ...at, value: t.value, hex: t.hex };
      case "string": {
        let value = "";
        while (this.peek().type === "string") value += this.next().text;
        const truncated = this.peek().type === "ellipsis";
        if (truncated) this.next();
        return { kind: "string", ...at, value, truncated };
      }
      case "word": {
        this.next();
        if (!result && this.isPunct("(")) {
          this.next();
          const args = this.isPunct(")") ? [] : this.exprList();
          this.expectPunct(")", `expected ')' after arguments of ${t.text}(...)`);
          if (this.isPunct("=")) {
            this.next();
            return { kind: "assign", ...at, name: t.text, nameArgs: args, value: this.expr(false) };
          }
          return { kind: "call", ...at, name: t.text, args };
        }
        if (!result && this.isPunct("=")) {
          this.next();
          return { kind: "assign", ...at, name: t.text, nameArgs: undefined, value: this.expr(false) };
        }
        return { kind: "word", ...at, name: t.text };
      }
      case "punct":
        if (t.text === "[" || t.text === "{") {
          this.next();
          const close = t.text === "[" ? "]" : "}";
          const items = this.isPunct(close) ? [] : this.exprList();
          this.expectPunct(close, `expected '${close}' to close the ${t.text === "[" ? "list" : "struct"}`);
          return t.text === "[" ? { kind: "list", ...at, items } : { kind: "struct", ...at, items };
        }
        break;
      case "float":
      case "backquote":
      case "code":
      case "option":
      case "directive":
      case "ipv4":
      case "ipv6":
      case "eof":
        break;
    }
    return this.expected("expected an expression");
  }

  // -------------------------------------------------------------------------------------------
  // Packets

  private packet(): PdPacket {
    const dirTok = this.next();
    const direction: PdDirection = dirTok.text === "<" ? "inbound" : "outbound";
    const outer: PdIpHeader[] = [];
    for (;;) {
      const v = this.peek();
      if (v.type !== "word" || (v.text !== "ipv4" && v.text !== "ipv6")) break;
      outer.push(this.ipHeader(direction));
    }
    const base = { line: dirTok.line, column: dirTok.column, direction, outer, ip: this.ipInfo(direction) };
    const t = this.peek();
    if (t.type === "word") {
      switch (t.text) {
        case "icmp":
          return this.icmp(base);
        case "udp":
          return this.udp(base);
        case "gre":
        case "mpls":
          this.fail(t, "PD_UNSUPPORTED", `${t.text} encapsulation (${t.text} ...:) is not supported`);
          break;
        case "sctp":
        case "udplite":
          this.fail(t, "PD_UNSUPPORTED", `${t.text} packets are not supported`);
          break;
        default:
          break;
      }
    }
    return this.tcp(base);
  }

  /** `ipv4 [info] SRC > DST:` or `ipv6 [info] SRC > DST:`, an explicit outer IP header. */
  private ipHeader(direction: PdDirection): PdIpHeader {
    const v = this.next();
    const version = v.text === "ipv4" ? 4 : 6;
    const ip = this.ipInfo(direction);
    const kind = v.text === "ipv4" ? "ipv4" : "ipv6";
    const address = (which: string): string => {
      if (this.peek().type !== kind)
        this.expected(`expected the ${which} ${kind === "ipv4" ? "IPv4" : "IPv6"} address after ${v.text}`);
      return this.next().text;
    };
    const src = address("source");
    this.expectPunct(">", `expected '>' between the ${v.text} addresses`);
    const dst = address("destination");
    this.expectPunct(":", `expected ':' after the ${v.text} header`);
    return { version, ip, src, dst };
  }

  /** `[noecn]`, `[ect0]`, `(tos 0x10)`, `[flowlabel 0x1, ttl 64]`, or nothing. */
  private ipInfo(direction: PdDirection): PdIpInfo | undefined {
    if (!this.isPunct("[") && !this.isPunct("(")) return undefined;
    const open = this.next();
    const close = open.text === "[" ? "]" : ")";
    let ecn: PdEcn | undefined;
    let tos: number | undefined;
    let flowLabel: number | undefined;
    let ttl: number | undefined;
    let dscp: number | string | undefined;
    for (;;) {
      const t = this.peek();
      if (t.type !== "word")
        this.expected("expected an IP annotation (noecn, ect0, ect1, ce, ect01, tos, ttl, ...)");
      this.next();
      if (ECN_NAMES.has(t.text) || t.text === "ecn") {
        const name = t.text === "ecn" ? this.next() : t;
        if (!ECN_NAMES.has(name.text)) this.fail(name, "PD_EXPECTED", `unknown ECN codepoint '${name.text}'`);
        if (name.text === "ect01" && direction !== "outbound") {
          this.fail(name, "PD_OUTBOUND_ONLY", "[ect01] can only be used with outbound packets");
        }
        ecn = name.text as PdEcn;
      } else if (t.text === "tos" || t.text === "class") {
        tos = this.uint({ max: U8, what: t.text });
      } else if (t.text === "flowlabel") {
        flowLabel = this.uint({ max: U20, what: "flowlabel" });
      } else if (t.text === "ttl" || t.text === "hlim") {
        ttl = this.uint({ max: U8, what: t.text });
      } else if (t.text === "dscp") {
        dscp = this.peek().type === "word" ? this.next().text : this.uint({ max: 0x3f, what: "dscp" });
      } else {
        this.fail(t, "PD_EXPECTED", `unknown IP annotation '${t.text}'`);
      }
      if (this.isPunct(",")) {
        this.next();
        continue;
      }
      this.expectPunct(close, `expected ',' or '${close}' in the IP annotation`);
      return { ecn, tos, flowLabel, ttl, dscp };
    }
  }

  private ports(): { src: number; dst: number } | undefined {
    if (this.peek().type !== "int" || !this.isPunct(">", 1)) return undefined;
    const src = this.uint({ max: U16, what: "source port" });
    this.next();
    const dst = this.uint({ max: U16, what: "destination port" });
    return { src, dst };
  }

  private tcp(base: PdPacketBase): PdTcpPacket {
    const ports = this.ports();
    const flags = this.flags();
    const seq = this.seq();
    let ack: number | undefined;
    let win: number | undefined;
    let urg: number | undefined;
    if (this.isWord("ack")) {
      this.next();
      ack = this.uint({ max: U32, what: "ack number" });
    }
    if (this.isWord("win")) {
      this.next();
      win = this.uint({ max: U16, what: "window" });
    }
    if (this.isWord("urg")) {
      this.next();
      urg = this.uint({ max: U16, what: "urgent pointer" });
    }
    const options = this.isPunct("<") ? this.tcpOptions(base.direction) : [];
    const udpEncaps = this.udpEncaps();
    return { ...base, protocol: "tcp", ports, flags, seq, ack, win, urg, options, udpEncaps };
  }

  /** `/udp(src > dst)` after a TCP segment or quoted sequence range, or nothing. */
  private udpEncaps(): PdUdpEncaps | undefined {
    if (!this.isPunct("/")) return undefined;
    this.next();
    this.expectWord("udp", "expected 'udp' after '/' (TCP over UDP: /udp(src > dst))");
    this.expectPunct("(", "expected '(' and the UDP ports after /udp");
    const src = this.uint({ max: U16, what: "UDP source port" });
    this.expectPunct(">", "expected '>' between the UDP ports");
    const dst = this.uint({ max: U16, what: "UDP destination port" });
    this.expectPunct(")", "expected ')' after the UDP ports");
    return { src, dst };
  }

  /** `S`, `S.`, `.`, `F.`, `SEW`, `-` (none). */
  private flags(): PdTcpFlags {
    const t = this.peek();
    let text: string;
    if (t.type === "word") {
      this.next();
      text = t.text;
      if (this.isPunct(".")) {
        this.next();
        text += ".";
      }
    } else if (t.type === "punct" && (t.text === "." || t.text === "-")) {
      this.next();
      text = t.text === "." ? "." : "";
    } else {
      return this.expected("expected TCP flags (like S, S., ., F., R, P.)");
    }
    let bits = 0;
    for (const ch of text) {
      const bit = TCP_FLAG_LETTERS[ch];
      if (bit === undefined) {
        this.fail(
          t,
          "PD_BAD_FLAGS",
          `unknown TCP flag '${ch}' in '${text}' (known: F S R P U E W and . for ACK)`,
        );
      }
      bits |= bit;
    }
    return { text, bits };
  }

  /** `start:end(len)`, `start:end(len)!` or `...(len)`. */
  private seq(): PdTcpSeq {
    if (this.peek().type === "ellipsis") {
      this.next();
      this.expectPunct("(", "expected '(' and the payload length after '...'");
      const len = this.uint({ max: U16, what: "payload length" });
      this.expectPunct(")", "expected ')' after the payload length");
      return { kind: "any", len };
    }
    const first = this.peek();
    if (first.type !== "int") this.expected("expected a sequence range start:end(length)");
    const start = this.uint({ max: U32, what: "start sequence number" });
    this.expectPunct(":", "expected ':' in the sequence range start:end(length)");
    const end = this.uint({ max: U32, what: "end sequence number" });
    this.expectPunct("(", "expected '(' and the payload length after the sequence range");
    const len = this.uint({ max: U16, what: "payload length" });
    this.expectPunct(")", "expected ')' after the payload length");
    if (end !== start + len) {
      this.fail(
        first,
        "PD_SEQ_INCONSISTENT",
        `inconsistent sequence range ${start}:${end}(${len}): end must be start + length`,
      );
    }
    const absolute = this.isPunct("!");
    if (absolute) this.next();
    return { kind: "range", start, end, len, absolute };
  }

  private tcpOptions(direction: PdDirection): readonly PdTcpOption[] | "any" {
    const open = this.next();
    if (this.peek().type === "ellipsis") {
      this.next();
      this.expectPunct(">", "expected '>' after '<...'");
      if (direction !== "outbound") {
        this.fail(open, "PD_OUTBOUND_ONLY", "<...> for TCP options can only be used with outbound packets");
      }
      return "any";
    }
    const list: PdTcpOption[] = [];
    for (;;) {
      list.push(this.tcpOption());
      if (this.isPunct(",")) {
        this.next();
        continue;
      }
      this.expectPunct(">", "expected ',' or '>' in the TCP option list");
      return list;
    }
  }

  private tcpOption(): PdTcpOption {
    const t = this.peek();
    if (t.type !== "word")
      this.expected("expected a TCP option (mss, nop, wscale, sackOK, sack, TS, eol, ...)");
    this.next();
    const at = { line: t.line, column: t.column };
    switch (t.text) {
      case "nop":
        return { kind: "nop", ...at };
      case "eol":
        return { kind: "eol", ...at };
      case "sackOK":
        return { kind: "sackOK", ...at };
      case "mss":
        return { kind: "mss", ...at, value: this.uint({ max: U16, what: "mss value" }) };
      case "wscale":
        return { kind: "wscale", ...at, value: this.uint({ max: U8, what: "window scale shift count" }) };
      case "sack": {
        const blocks: PdSackBlock[] = [];
        do {
          const left = this.uint({ max: U32, what: "SACK left edge" });
          this.expectPunct(":", "expected ':' in the SACK block left:right");
          const right = this.uint({ max: U32, what: "SACK right edge" });
          blocks.push({ left, right });
        } while (this.peek().type === "int");
        return { kind: "sack", ...at, blocks };
      }
      case "TS": {
        this.expectWord("val", "expected 'val' after TS");
        let val: number | undefined;
        if (this.peek().type === "ellipsis") this.next();
        else val = this.uint({ max: U32, what: "TS val" });
        this.expectWord("ecr", "expected 'ecr' after the TS value");
        const ecr = this.uint({ max: U32, what: "TS ecr" });
        const ecrAbsolute = this.isPunct("!");
        if (ecrAbsolute) this.next();
        return { kind: "timestamp", ...at, val, ecr, ecrAbsolute };
      }
      case "md5": {
        const d = this.peek();
        if (d.type !== "word" && d.type !== "int") this.expected("expected a hex digest after md5");
        this.next();
        return { kind: "md5", ...at, digest: d.text };
      }
      case "FO":
      case "FOEXP": {
        // packetdrill's hex_blob is a WORD or INTEGER: hex digits, or a symbol its command line
        // defines (-D TFO_COOKIE=...). A word that is not all hex digits is such a symbol.
        const c = this.peek();
        let cookie = "";
        if (c.type === "word" || (c.type === "int" && !c.hex)) {
          this.next();
          cookie = c.text;
        }
        const symbolic = /^[A-Za-z_][A-Za-z0-9_]*$/.test(cookie) && !/^[0-9a-fA-F]+$/.test(cookie);
        if (!symbolic && !/^([0-9a-fA-F]{2})*$/.test(cookie)) {
          this.fail(c, "PD_EXPECTED", `TCP fast open cookie '${cookie}' is not an even-length hex string`);
        }
        return { kind: "fastopen", ...at, cookie, symbolic, experimental: t.text === "FOEXP" };
      }
      default:
        return this.fail(t, "PD_UNKNOWN_TCP_OPTION", `unknown TCP option '${t.text}'`);
    }
  }

  private icmp(base: PdPacketBase): PdIcmpPacket {
    this.next(); // icmp
    const type = this.peek();
    if (type.type !== "word") this.expected("expected an ICMP type (unreachable, time_exceeded, ...)");
    this.next();
    let code: string | undefined;
    if (this.peek().type === "word" && !this.isWord("mtu") && !this.isWord("id")) code = this.next().text;
    let mtu: number | undefined;
    if (this.isWord("mtu")) {
      this.next();
      mtu = this.uint({ max: U32, what: "ICMP mtu" });
    }
    let id: number | undefined;
    if (this.isWord("id")) {
      this.next();
      id = this.uint({ max: U16, what: "ICMP echo id" });
    }
    let echoed: PdIcmpEchoed | undefined;
    if (this.isPunct("[")) {
      this.next();
      const t = this.peek();
      if (t.type === "word" && (t.text === "udp" || t.text === "raw")) {
        this.next();
        this.expectPunct("(", `expected '(' and a length after ${t.text}`);
        const len = this.uint({ max: U16, what: "payload length" });
        this.expectPunct(")", "expected ')' after the payload length");
        echoed = { protocol: t.text, len };
      } else if (t.type === "word" && (t.text === "sctp" || t.text === "udplite")) {
        this.fail(t, "PD_UNSUPPORTED", `ICMP quoting ${t.text} is not supported`);
      } else {
        const seq = this.seq();
        echoed = { protocol: "tcp", seq, udpEncaps: this.udpEncaps() };
      }
      this.expectPunct("]", "expected ']' after the quoted packet");
    }
    return { ...base, protocol: "icmp", type: type.text, code, mtu, id, echoed };
  }

  private udp(base: PdPacketBase): PdUdpPacket {
    this.next(); // udp
    const ports = this.ports();
    this.expectPunct("(", "expected '(' and the payload length after udp");
    const len = this.uint({ max: U16, what: "UDP payload length" });
    this.expectPunct(")", "expected ')' after the payload length");
    return { ...base, protocol: "udp", ports, len };
  }
}

/** How a token reads in an error message. */
function describe(t: Token): string {
  switch (t.type) {
    case "eof":
      return "end of file";
    case "string":
      return `string "${shorten(t.text)}"`;
    case "backquote":
      return "a backquoted command";
    case "code":
      return "a %{ code }% snippet";
    case "option":
      return `option --${t.text}`;
    case "directive":
      return `#${t.text}`;
    case "ellipsis":
      return "'...'";
    case "ipv4":
      return `IPv4 address ${t.text}`;
    case "ipv6":
      return `IPv6 address ${t.text}`;
    case "int":
    case "float":
    case "word":
    case "punct":
      return `'${shorten(t.text)}'`;
  }
}

/** Text safe for a one-line message: control characters escaped, at most 40 characters. */
function shorten(text: string): string {
  let oneLine = "";
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    oneLine += code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, "0")}` : ch;
  }
  return oneLine.length > 40 ? `${oneLine.slice(0, 37)}...` : oneLine;
}
