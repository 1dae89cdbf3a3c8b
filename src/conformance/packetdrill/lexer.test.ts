import assert from "node:assert/strict";
import { test } from "node:test";
import { PacketdrillParseError } from "./errors.js";
import { LineMap, tokenize } from "./lexer.js";

/** `type:text` for each token except the final eof. */
function shape(src: string): string[] {
  const toks = tokenize(src, "t.pkt");
  assert.equal(toks.at(-1)?.type, "eof");
  return toks.slice(0, -1).map((t) => `${t.type}:${t.text}`);
}

void test("a blocking time range lexes as FLOAT ELLIPSIS FLOAT (longest match)", () => {
  assert.deepEqual(shape(" 1.00...6.00 connect"), [
    "float:1.00",
    "ellipsis:...",
    "float:6.00",
    "word:connect",
  ]);
});

void test("flags, sequence ranges and options split into the tokens the grammar expects", () => {
  assert.deepEqual(shape("> S. 0:0(0) <mss 1460,sackOK>"), [
    "punct:>",
    "word:S",
    "punct:.",
    "int:0",
    "punct::",
    "int:0",
    "punct:(",
    "int:0",
    "punct:)",
    "punct:<",
    "word:mss",
    "int:1460",
    "punct:,",
    "word:sackOK",
    "punct:>",
  ]);
});

void test("IPv4 and IPv6 addresses are one token when longer than the number or word they start with", () => {
  assert.deepEqual(shape("ipv4 192.0.2.1 > 10.0.0.2: ipv6 2001:db8::1 > ::1 fe80::a:b ::ffff:1.2.3.4"), [
    "word:ipv4",
    "ipv4:192.0.2.1",
    "punct:>",
    "ipv4:10.0.0.2",
    "punct::",
    "word:ipv6",
    "ipv6:2001:db8::1",
    "punct:>",
    "ipv6:::1",
    "ipv6:fe80::a:b",
    "ipv6:::ffff:1.2.3.4",
  ]);
  // Without '::' only the eight-group form is an address: sequence ranges and SACK blocks stay numbers.
  assert.deepEqual(shape("1:1001 sack 1:2 1:2:3:4:5:6:7:8"), [
    "int:1",
    "punct::",
    "int:1001",
    "word:sack",
    "int:1",
    "punct::",
    "int:2",
    "ipv6:1:2:3:4:5:6:7:8",
  ]);
});

void test("numbers: negative, hex, fractions without a leading digit, and digit-led words", () => {
  const toks = tokenize("-1 0x02 .5 4a -x 12", "t.pkt");
  assert.deepEqual(
    toks.slice(0, -1).map((t) => [t.type, t.text, t.value, t.hex]),
    [
      ["int", "-1", -1, false],
      ["int", "0x02", 2, true],
      ["float", ".5", 0, false],
      ["word", "4a", 0, false],
      ["punct", "-", 0, false],
      ["word", "x", 0, false],
      ["int", "12", 12, false],
    ],
  );
});

void test("comments are skipped, including one glued to the end of a statement", () => {
  assert.deepEqual(shape("close(3) = 0// trailing\n/* block\n comment */ 7"), [
    "word:close",
    "punct:(",
    "int:3",
    "punct:)",
    "punct:=",
    "int:0",
    "int:7",
  ]);
});

void test("options keep their value, quoted or not", () => {
  const toks = tokenize('--ip_version=ipv4\n--verbose\n--define="a b"', "t.pkt");
  assert.deepEqual(
    toks.slice(0, -1).map((t) => [t.type, t.text, t.extra]),
    [
      ["option", "ip_version", "ipv4"],
      ["option", "verbose", undefined],
      ["option", "define", "a b"],
    ],
  );
});

void test("directives are recognised only at the start of a line", () => {
  const toks = tokenize("  #ifdef FreeBSD // why\n#endif\n", "t.pkt");
  assert.deepEqual(
    toks.slice(0, -1).map((t) => [t.type, t.text, t.extra, t.line, t.column]),
    [
      ["directive", "ifdef", "FreeBSD", 1, 3],
      ["directive", "endif", undefined, 2, 1],
    ],
  );
  assert.deepEqual(shape("0 # x"), ["int:0", "punct:#", "word:x"]);
});

void test("backquoted commands, strings and code snippets keep their contents", () => {
  const toks = tokenize('`sysctl -w a=1` "x\\"y" %{ assert x == 1 }%', "t.pkt");
  assert.deepEqual(
    toks.slice(0, -1).map((t) => [t.type, t.text]),
    [
      ["backquote", "sysctl -w a=1"],
      ["string", 'x\\"y'],
      ["code", "assert x == 1"],
    ],
  );
});

void test("tokens carry 1-based line and column, across CRLF line ends", () => {
  const toks = tokenize("0 a\r\n  +0.1 b", "t.pkt");
  assert.deepEqual(
    toks.map((t) => [t.text, t.line, t.column]),
    [
      ["0", 1, 1],
      ["a", 1, 3],
      ["+", 2, 3],
      ["0.1", 2, 4],
      ["b", 2, 8],
      ["", 2, 9],
    ],
  );
});

void test("unterminated constructs are PD_UNTERMINATED at their opening character", () => {
  for (const [src, line, column] of [
    ["0 `sysctl", 1, 3],
    ['0 f("abc', 1, 5],
    ["\n0 %{ x", 2, 3],
    ["/* never closed", 1, 1],
  ] as const) {
    assert.throws(
      () => tokenize(src, "t.pkt"),
      (e: unknown) =>
        e instanceof PacketdrillParseError &&
        e.code === "PD_UNTERMINATED" &&
        e.line === line &&
        e.column === column,
      src,
    );
  }
});

void test("a malformed directive is PD_DIRECTIVE", () => {
  assert.throws(
    () => tokenize("#ifdef a b c\n", "t.pkt"),
    (e: unknown) => e instanceof PacketdrillParseError && e.code === "PD_DIRECTIVE",
  );
});

void test("LineMap maps offsets to positions", () => {
  const m = new LineMap("ab\ncd\n\ne");
  assert.deepEqual(
    [0, 1, 2, 3, 5, 6, 7].map((o) => m.at(o)),
    [
      { line: 1, column: 1 },
      { line: 1, column: 2 },
      { line: 1, column: 3 },
      { line: 2, column: 1 },
      { line: 2, column: 3 },
      { line: 3, column: 1 },
      { line: 4, column: 1 },
    ],
  );
});
