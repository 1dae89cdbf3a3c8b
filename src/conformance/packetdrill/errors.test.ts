import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { PdErrorCode } from "./errors.js";
import { PacketdrillParseError } from "./errors.js";
import { parsePacketdrill } from "./parser.js";

/** Parses `src` as `file`, expecting failure, and returns the error. */
function failure(src: string, file = "rcv-ack-listen.pkt"): PacketdrillParseError {
  const r = parsePacketdrill(src, { file });
  assert.ok(!r.ok, `expected a parse error for: ${src}`);
  assert.ok(r.error instanceof PacketdrillParseError);
  return r.error;
}

void test("the message is file:line:column: detail, on one line", () => {
  const src = "--ip_version=ipv4\n\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ... = 0\n";
  const e = failure(src);
  assert.equal(e.code, "PD_EXPECTED");
  assert.equal(e.file, "rcv-ack-listen.pkt");
  assert.equal(e.line, 4);
  assert.equal(e.column, 21);
  assert.equal(e.message, "rcv-ack-listen.pkt:4:21: expected ')' after arguments, found '='");
  assert.equal(e.detail, "expected ')' after arguments, found '='");
  assert.ok(!e.message.includes("\n"));
  assert.equal(e.name, "PacketdrillParseError");
});

/** [source, code, line, column, a fragment of the detail]. */
const CASES: readonly (readonly [string, PdErrorCode, number, number, string])[] = [
  // Lexical
  ["0 `sysctl -w x=1\n", "PD_UNTERMINATED", 1, 3, "unterminated backquoted command"],
  ['0 write(3, "abc, 3) = 3\n', "PD_UNTERMINATED", 1, 12, "unterminated string"],
  ["0 %{ assert 1\n", "PD_UNTERMINATED", 1, 3, "%{"],
  ["/* open\n0 close(3) = 0\n", "PD_UNTERMINATED", 1, 1, "comment"],
  ["0 close(3) = 0 (no end\n", "PD_UNTERMINATED", 1, 16, "note"],
  ["0 close(3) @ 0\n", "PD_BAD_CHAR", 1, 12, "unexpected character '@'"],
  // Structure
  ["close(3) = 0\n", "PD_EXPECTED", 1, 1, "expected an event time"],
  ["0 close(3) = 0\n--verbose\n", "PD_MISPLACED_OPTION", 2, 1, "--verbose must come before the first event"],
  ["0 close(3) = 0 EBADF junk\n", "PD_EXPECTED", 1, 22, "expected the next event after the system call"],
  ["0 > S 0:0(0) win 10 bogus\n", "PD_EXPECTED", 1, 21, "after the packet"],
  ["0\n", "PD_EXPECTED", 2, 1, "expected a packet, system call, command or code snippet"],
  ["0 close 3\n", "PD_EXPECTED", 1, 9, "expected '(' after system call name 'close'"],
  [
    "0 close(3)\n+1 close(4) = 0\n",
    "PD_EXPECTED",
    2,
    1,
    "expected '=' and the expected result after close(...)",
  ],
  ["0 setsockopt(3, {a=1, b=2) = 0\n", "PD_EXPECTED", 1, 26, "expected '}' to close the struct"],
  ["0 getsockopt(3, [4) = 0\n", "PD_EXPECTED", 1, 19, "expected ']' to close the list"],
  ["0 f(3, ) = 0\n", "PD_EXPECTED", 1, 8, "expected an expression"],
  ["0 close(3) = 0\n`a`\n0 close(3) = 0\n", "PD_EXPECTED", 2, 1, "a command without a time"],
  // Time
  ["-1 close(3) = 0\n", "PD_BAD_TIME", 1, 1, "negative time -1"],
  ["0.2~0.1 > S 0:0(0)\n", "PD_BAD_TIME", 1, 4, "time range is backwards"],
  [" 6.00...1.00 connect(3, ..., ...) = 0\n", "PD_BAD_TIME", 1, 6, "ends before it starts"],
  ["0x10 close(3) = 0\n", "PD_EXPECTED", 1, 1, "expected a time in seconds"],
  ["+0.1~0.2 > S 0:0(0)\n", "PD_EXPECTED", 1, 6, "expected '+' after '~'"],
  // Outbound-only constructs
  ["* < S 0:0(0) win 100\n", "PD_OUTBOUND_ONLY", 1, 1, "event time * can only be used with outbound packets"],
  [
    "0.1~0.2 close(3) = 0\n",
    "PD_OUTBOUND_ONLY",
    1,
    1,
    "an event time range can only be used with outbound packets",
  ],
  ["0 < S 0:0(0) win 100 <...>\n", "PD_OUTBOUND_ONLY", 1, 22, "<...> for TCP options"],
  ["0 <[ect01] . 1:1(0) ack 1 win 1\n", "PD_OUTBOUND_ONLY", 1, 5, "[ect01]"],
  // TCP fields
  ["0 < S 0:10(0) win 100\n", "PD_SEQ_INCONSISTENT", 1, 7, "inconsistent sequence range 0:10(0)"],
  ["0 < S 0:0(0) win 65536\n", "PD_OUT_OF_RANGE", 1, 18, "window 65536 out of range (0..65535)"],
  ["0 < S 4294967296:4294967296(0) win 1\n", "PD_OUT_OF_RANGE", 1, 7, "start sequence number"],
  ["0 < S 0:0(0) win 1 <mss 70000>\n", "PD_OUT_OF_RANGE", 1, 25, "mss value 70000"],
  ["0 < S 0:0(0) win 1 <wscale 256>\n", "PD_OUT_OF_RANGE", 1, 28, "window scale shift count"],
  ["0 < . 1:1(0) ack -1 win 1\n", "PD_OUT_OF_RANGE", 1, 18, "ack number -1"],
  ["0 < SX 0:0(0) win 1\n", "PD_BAD_FLAGS", 1, 5, "unknown TCP flag 'X' in 'SX'"],
  ["0 < S 0:0(0) win 1 <mss 1460,bogus 3>\n", "PD_UNKNOWN_TCP_OPTION", 1, 30, "unknown TCP option 'bogus'"],
  ["0 < S 0:0(0) win 1 <mss 1460 nop>\n", "PD_EXPECTED", 1, 30, "expected ',' or '>' in the TCP option list"],
  ["0 < S 0:0(0) win 1 <TS 1 ecr 2>\n", "PD_EXPECTED", 1, 24, "expected 'val' after TS"],
  ["0 < S 0:0 win 1\n", "PD_EXPECTED", 1, 11, "expected '(' and the payload length"],
  ["0 < S win 1\n", "PD_EXPECTED", 1, 7, "expected a sequence range"],
  ["0 < 1:1(0) win 1\n", "PD_EXPECTED", 1, 5, "expected TCP flags"],
  ["0 < [bogus] . 1:1(0)\n", "PD_EXPECTED", 1, 6, "unknown IP annotation 'bogus'"],
  [
    "0 < icmp unreachable port_unreachable [1:1(0)\n",
    "PD_EXPECTED",
    2,
    1,
    "expected ']' after the quoted packet",
  ],
  ["0 < gre: ipv4 192.0.2.1 > 192.0.2.2: . 1:1(0)\n", "PD_UNSUPPORTED", 1, 5, "gre encapsulation"],
  [
    "0 < ipv4 2001:db8::1 > 192.0.2.2: . 1:1(0)\n",
    "PD_EXPECTED",
    1,
    10,
    "expected the source IPv4 address after ipv4, found IPv6 address 2001:db8::1",
  ],
  ["0 < ipv6 ::1 ::2: . 1:1(0)\n", "PD_EXPECTED", 1, 14, "expected '>' between the ipv6 addresses"],
  ["0 < ipv4 192.0.2.1 > 192.0.2.2 . 1:1(0)\n", "PD_EXPECTED", 1, 32, "expected ':' after the ipv4 header"],
  // TCP over UDP
  ["0 > . 1:1(0) ack 1/tcp(1 > 2)\n", "PD_EXPECTED", 1, 20, "expected 'udp' after '/'"],
  ["0 > . 1:1(0) ack 1/udp(70000 > 2)\n", "PD_OUT_OF_RANGE", 1, 24, "UDP source port 70000 out of range"],
  ["0 > . 1:1(0) ack 1/udp(1 2)\n", "PD_EXPECTED", 1, 26, "expected '>' between the UDP ports"],
  ["0 < S 0:0(0) win 1 <FO abc>\n", "PD_EXPECTED", 1, 24, "not an even-length hex string"],
  // Directives
  ["#endif\n", "PD_DIRECTIVE", 1, 1, "#endif without #ifdef"],
  ["#ifdef FreeBSD\n0 close(3) = 0\n", "PD_DIRECTIVE", 1, 1, "#ifdef without matching #endif"],
  ["#include foo\n", "PD_DIRECTIVE", 1, 1, "unknown directive #include"],
  ["#ifdef\n#endif\n", "PD_DIRECTIVE", 1, 1, "#ifdef needs a symbol"],
  ["#ifdef A\n--verbose\n#endif\n", "PD_MISPLACED_OPTION", 2, 1, "--verbose"],
  ["0 > S 0:0(0)\n#ifdef A\n", "PD_DIRECTIVE", 2, 1, "without matching #endif"],
];

void test("each kind of bad input gives its code, position and a clear message", () => {
  for (const [src, code, line, column, fragment] of CASES) {
    const e = failure(src, "x.pkt");
    const got = `${e.code} ${e.line}:${e.column} ${e.detail}`;
    assert.equal(e.code, code, `${JSON.stringify(src)} -> ${got}`);
    assert.equal(e.line, line, `${JSON.stringify(src)} -> ${got}`);
    assert.equal(e.column, column, `${JSON.stringify(src)} -> ${got}`);
    assert.ok(e.detail.includes(fragment), `${JSON.stringify(src)} -> ${got}; wanted "${fragment}"`);
    assert.equal(e.message, `x.pkt:${line}:${column}: ${e.detail}`);
  }
});

void test("the default file name is <script>", () => {
  const r = parsePacketdrill("0 close(");
  assert.ok(!r.ok);
  assert.ok(r.error.message.startsWith("<script>:1:9: "), r.error.message);
});

// ---------------------------------------------------------------------------------------------
// Totality: arbitrary input gives a value or a PacketdrillParseError, never an exception.

const SEED = Number(process.env["FC_SEED"] ?? 0x5eed);

/** Fragments of real scripts, so random input reaches deep into the grammar. */
const FRAGMENTS = [
  "0",
  "+0.1",
  "*",
  "~",
  "...",
  " ",
  "\n",
  "<",
  ">",
  "S.",
  ".",
  "F.",
  "0:0(0)",
  "1:11(10)",
  "ack 1",
  "win 65535",
  "<mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>",
  "<...>",
  "[noecn]",
  "icmp unreachable port_unreachable [1:1(0)]",
  "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
  "connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)",
  "{l_onoff=1, l_linger=0}",
  "[",
  "]",
  "(",
  ")",
  "{",
  "}",
  ",",
  "=",
  "|",
  "`sysctl -w a=1`",
  "%{ x }%",
  "#ifdef FreeBSD\n",
  "#else\n",
  "#endif\n",
  "--ip_version=ipv4\n",
  "//c\n",
  "/*",
  "*/",
  '"s"',
  "0x1f",
  "-1",
  "!",
];

void test("the parser is total: random input never throws (fast-check, fixed seed)", () => {
  const arb = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 30 }).map((a) => a.join(" ")),
  );
  fc.assert(
    fc.property(arb, (src) => {
      const r = parsePacketdrill(src, { file: "f.pkt" });
      if (r.ok) return;
      assert.ok(r.error instanceof PacketdrillParseError);
      const lines = src.split("\n").length;
      assert.ok(r.error.line >= 1 && r.error.line <= lines, `line ${r.error.line} of ${lines}`);
      assert.ok(r.error.column >= 1, `column ${r.error.column}`);
      assert.ok(r.error.message.startsWith(`f.pkt:${r.error.line}:${r.error.column}: `));
      assert.ok(!r.error.detail.includes("\n"), "message is one line");
    }),
    { seed: SEED, numRuns: 2000 },
  );
});
