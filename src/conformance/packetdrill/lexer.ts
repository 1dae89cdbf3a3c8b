/**
 * The packetdrill tokenizer. It follows packetdrill's flex rules where they matter for the
 * scripts in use (longest match, so `1.00...6.00` is FLOAT ELLIPSIS FLOAT and `4a` is a word)
 * and adds `#` directives at the start of a line (`#ifdef FreeBSD`, `#endif`).
 *
 * Any other non-blank character becomes a one-character `punct` token, as in packetdrill; the
 * parser decides whether it is allowed there. So the only lexical errors are unterminated
 * strings, commands, snippets and comments, and malformed directives.
 */
import { PacketdrillParseError } from "./errors.js";

/** Token kinds. */
export type TokenType =
  | "int"
  | "float"
  | "word"
  | "string"
  | "backquote"
  | "code"
  | "option"
  | "directive"
  | "ellipsis"
  | "ipv4"
  | "ipv6"
  | "punct"
  | "eof";

/** One token. `start`/`end` are offsets into the source (end exclusive). */
export interface Token {
  readonly type: TokenType;
  /**
   * int/float/word/ipv4/ipv6/punct: the characters; string/backquote: the text between the quotes;
   * code: the snippet with spaces and tabs trimmed; option/directive: the name.
   */
  readonly text: string;
  /** The value of an int token (0 for others). */
  readonly value: number;
  /** True for a `0x` int. */
  readonly hex: boolean;
  /** option: the value after `=`; directive: its argument. Undefined otherwise. */
  readonly extra: string | undefined;
  readonly line: number;
  readonly column: number;
  readonly start: number;
  readonly end: number;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";
const isWordChar = (c: string | undefined): boolean =>
  c !== undefined &&
  ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c === "_");
const isBlank = (c: string | undefined): boolean =>
  c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\f" || c === "\v";

/** packetdrill's ipv4_addr. */
const IPV4_ADDR = /[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/y;
/**
 * packetdrill's ipv6_addr alternatives (v0..v12 in lexer.l). flex takes the longest match, so
 * each is tried and the longest wins. All but the eight-group form need `::`, so sequence
 * ranges like `1:1001` and SACK blocks stay numbers.
 */
const IPV6_ADDR: readonly RegExp[] = (() => {
  const seg = "[0-9a-fA-F]{1,4}";
  const v4 = "[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+";
  return [
    "::",
    `(?:${seg}:){7}${seg}`,
    `(?:${seg}:){1,7}:`,
    `(?:${seg}:){1,6}:${seg}`,
    `(?:${seg}:){1,5}(?::${seg}){1,2}`,
    `(?:${seg}:){1,4}(?::${seg}){1,3}`,
    `(?:${seg}:){1,3}(?::${seg}){1,4}`,
    `(?:${seg}:){1,2}(?::${seg}){1,5}`,
    `${seg}:(?::${seg}){1,6}`,
    `:(?::${seg}){1,7}`,
    `::ffff:${v4}`,
    `::ffff:0{1,4}:${v4}`,
    `(?:${seg}:){1,4}:${v4}`,
  ].map((re) => new RegExp(re, "y"));
})();

/** Length of the longest match of `res` at `at` in `src` (0 when none matches). */
function longestMatch(res: readonly RegExp[], src: string, at: number): number {
  let best = 0;
  for (const re of res) {
    re.lastIndex = at;
    const m = re.exec(src);
    if (m !== null && m[0].length > best) best = m[0].length;
  }
  return best;
}

/** Maps offsets to 1-based line and column. */
export class LineMap {
  private readonly starts: number[] = [0];

  constructor(src: string) {
    for (let i = 0; i < src.length; i++) if (src.charCodeAt(i) === 10) this.starts.push(i + 1);
  }

  /** Line and column of `offset`. */
  at(offset: number): { line: number; column: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - this.starts[lo]! + 1 };
  }
}

/** Tokenizes `src`; throws `PacketdrillParseError` (caught by the parser) on lexical errors. */
export function tokenize(src: string, file: string): Token[] {
  const lines = new LineMap(src);
  const out: Token[] = [];
  let i = 0;

  const fail = (offset: number, code: "PD_UNTERMINATED" | "PD_DIRECTIVE", detail: string): never => {
    const { line, column } = lines.at(offset);
    throw new PacketdrillParseError(code, file, line, column, detail);
  };
  const push = (
    type: TokenType,
    start: number,
    end: number,
    text: string,
    extra?: { value?: number; hex?: boolean; extra?: string },
  ): void => {
    const { line, column } = lines.at(start);
    out.push({
      type,
      text,
      value: extra?.value ?? 0,
      hex: extra?.hex ?? false,
      extra: extra?.extra,
      line,
      column,
      start,
      end,
    });
  };
  /** True when only blanks precede offset on its line. */
  const atLineStart = (offset: number): boolean => {
    for (let j = offset - 1; j >= 0; j--) {
      const c = src[j];
      if (c === "\n") return true;
      if (c !== " " && c !== "\t") return false;
    }
    return true;
  };
  /** Offset just past the closing `quote` of a quoted run starting at `start`. */
  const quoted = (start: number, quote: string, what: string): number => {
    let j = start + 1;
    while (j < src.length) {
      const c = src[j];
      if (c === "\\") j += 2;
      else if (c === quote) return j + 1;
      else j++;
    }
    return fail(start, "PD_UNTERMINATED", `unterminated ${what}`);
  };

  while (i < src.length) {
    const c = src[i]!;
    const next = src[i + 1];
    if (isBlank(c)) {
      i++;
      continue;
    }
    if (c === "/" && next === "/") {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && next === "*") {
      const close = src.indexOf("*/", i + 2);
      if (close < 0) fail(i, "PD_UNTERMINATED", "unterminated /* comment");
      i = close + 2;
      continue;
    }
    if (c === "%" && next === "{") {
      const close = src.indexOf("}%", i + 2);
      if (close < 0) fail(i, "PD_UNTERMINATED", "unterminated %{ code snippet (no closing }%)");
      const body = src
        .slice(i + 2, close)
        .replace(/^[ \t]+/, "")
        .replace(/[ \t]+$/, "");
      push("code", i, close + 2, body);
      i = close + 2;
      continue;
    }
    if (c === "#" && atLineStart(i)) {
      let end = src.indexOf("\n", i);
      if (end < 0) end = src.length;
      const raw = src.slice(i, end);
      const text = raw
        .replace(/\/\/.*$/, "")
        .replace(/\/\*.*?\*\//g, "")
        .trim();
      const m = /^#\s*([A-Za-z_]+)(?:\s+([A-Za-z0-9_]+))?$/.exec(text);
      if (m === null) fail(i, "PD_DIRECTIVE", `malformed directive '${raw.trim()}'`);
      push("directive", i, end, m![1]!, m![2] === undefined ? undefined : { extra: m![2] });
      i = end;
      continue;
    }
    if (c === "-" && next === "-" && isWordChar(src[i + 2])) {
      let j = i + 2;
      while (isWordChar(src[j])) j++;
      const name = src.slice(i + 2, j);
      let value: string | undefined;
      if (src[j] === "=") {
        j++;
        if (src[j] === '"') {
          const close = quoted(j, '"', "string");
          value = src.slice(j + 1, close - 1);
          j = close;
        } else {
          const v = j;
          while (j < src.length && !isBlank(src[j])) j++;
          value = src.slice(v, j);
        }
      }
      push("option", i, j, name, value === undefined ? undefined : { extra: value });
      i = j;
      continue;
    }
    if (isWordChar(c) || c === ":") {
      // An address wins over the word, number or ':' it starts with when it is longer (flex).
      let run = i;
      while (isWordChar(src[run])) run++;
      const v4 = longestMatch([IPV4_ADDR], src, i);
      const v6 = longestMatch(IPV6_ADDR, src, i);
      const normal = Math.max(run - i, 1);
      if (Math.max(v4, v6) > normal) {
        const len = Math.max(v4, v6);
        push(v4 >= v6 ? "ipv4" : "ipv6", i, i + len, src.slice(i, i + len));
        i += len;
        continue;
      }
    }
    if (c === "." && next === "." && src[i + 2] === ".") {
      push("ellipsis", i, i + 3, "...");
      i += 3;
      continue;
    }
    const signed = c === "-" && (isDigit(next) || (next === "." && isDigit(src[i + 2])));
    if (isDigit(c) || signed || (c === "." && isDigit(next))) {
      let j = signed ? i + 1 : i;
      const runStart = j;
      while (isWordChar(src[j])) j++;
      const run = src.slice(runStart, j);
      if (/^0[xX][0-9a-fA-F]+$/.test(run)) {
        const mag = Number.parseInt(run.slice(2), 16);
        push("int", i, j, src.slice(i, j), { value: signed ? -mag : mag, hex: true });
        i = j;
        continue;
      }
      if (/^[0-9]*$/.test(run)) {
        if (src[j] === "." && isDigit(src[j + 1])) {
          j++;
          while (isDigit(src[j])) j++;
          push("float", i, j, src.slice(i, j));
        } else {
          push("int", i, j, src.slice(i, j), { value: Number(src.slice(i, j)) });
        }
        i = j;
        continue;
      }
      if (!signed) {
        push("word", i, j, run);
        i = j;
        continue;
      }
      // "-" followed by a word that is not a number: the minus is punctuation.
    }
    if (isWordChar(c)) {
      let j = i;
      while (isWordChar(src[j])) j++;
      push("word", i, j, src.slice(i, j));
      i = j;
      continue;
    }
    if (c === '"' || c === "`") {
      const close = quoted(i, c, c === '"' ? "string" : "backquoted command");
      push(c === '"' ? "string" : "backquote", i, close, src.slice(i + 1, close - 1));
      i = close;
      continue;
    }
    // Astral characters are one punct token, not two halves of a surrogate pair.
    const width = c.charCodeAt(0) >= 0xd800 && c.charCodeAt(0) <= 0xdbff && i + 1 < src.length ? 2 : 1;
    push("punct", i, i + width, src.slice(i, i + width));
    i += width;
  }
  push("eof", src.length, src.length, "");
  return out;
}
