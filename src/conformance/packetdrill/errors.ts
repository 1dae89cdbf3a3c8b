/**
 * Parse errors for packetdrill scripts. The parser never throws on input: it returns a
 * `Result` whose error is a `PacketdrillParseError` with a stable `code`, the position, and a
 * one-line message `file:line:column: detail`. Tests assert on `code`, `line` and `column`.
 */

/** Stable codes of packetdrill parse errors. */
export type PdErrorCode =
  /** A string, backquoted command, code snippet or comment is not closed. */
  | "PD_UNTERMINATED"
  /** A character that starts no token. */
  | "PD_BAD_CHAR"
  /** The grammar wanted something else here (`expected ')' after arguments`). */
  | "PD_EXPECTED"
  /** A number does not fit its field (u16 window, u32 sequence number, ...). */
  | "PD_OUT_OF_RANGE"
  /** `start:end(len)` with `end != start + len`. */
  | "PD_SEQ_INCONSISTENT"
  /** A TCP flags word with a letter other than F S R P U E W and `.`. */
  | "PD_BAD_FLAGS"
  /** An option name inside `<...>` that packetdrill does not know. */
  | "PD_UNKNOWN_TCP_OPTION"
  /** A negative time, or a time range whose end is before its start. */
  | "PD_BAD_TIME"
  /** `*`, a time range, `<...>` or `[ect01]` used on something other than an outbound packet. */
  | "PD_OUTBOUND_ONLY"
  /** A `--option` after the first event, or inside a conditional block. */
  | "PD_MISPLACED_OPTION"
  /** An unknown, unbalanced or misplaced `#` directive. */
  | "PD_DIRECTIVE"
  /** Valid packetdrill that this parser does not handle (encapsulation, SCTP, UDPLite). */
  | "PD_UNSUPPORTED";

/** A packetdrill script could not be parsed. */
export class PacketdrillParseError extends Error {
  readonly code: PdErrorCode;
  readonly file: string;
  readonly line: number = 0;
  readonly column: number = 0;
  /** The message without the `file:line:column: ` prefix. */
  readonly detail: string;

  constructor(code: PdErrorCode, file: string, line: number, column: number, detail: string) {
    super(`${file}:${line}:${column}: ${detail}`);
    this.name = "PacketdrillParseError";
    this.code = code;
    this.file = file;
    this.line = line;
    this.column = column;
    this.detail = detail;
  }
}
