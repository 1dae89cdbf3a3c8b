import assert from "node:assert/strict";
import { test } from "node:test";
import { TcpFlag } from "../../wire/tcp-repr.js";
import type { PdEvent, PdPacket, PdScript } from "./ast.js";
import { allEvents, optionValue, selectEvents, structField } from "./ast.js";
import { parsePacketdrill } from "./parser.js";

function parse(src: string): PdScript {
  const r = parsePacketdrill(src, { file: "t.pkt" });
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
}

function only(src: string): PdEvent {
  const s = parse(src);
  assert.equal(s.body.length, 1, "expected exactly one statement");
  const e = s.body[0]!;
  assert.ok(e.kind !== "conditional");
  return e;
}

function packet(src: string): PdPacket {
  const e = only(src);
  assert.ok(e.kind === "packet", `not a packet: ${e.kind}`);
  return e.packet;
}

const POS_KEYS = new Set(["line", "column", "nameLine", "nameColumn"]);
/** The value with every source position removed, for comparing structure only. */
function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([k]) => !POS_KEYS.has(k))
        .map(([k, x]) => [k, strip(x)]),
    );
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Script level

void test("options, with and without values, before the events", () => {
  const s = parse('--ip_version=ipv4\n--tolerance_usecs=25000\n--verbose\n--define="x y"\n0 close(3) = 0\n');
  assert.deepEqual(s.options, [
    { kind: "option", line: 1, column: 1, name: "ip_version", value: "ipv4" },
    { kind: "option", line: 2, column: 1, name: "tolerance_usecs", value: "25000" },
    { kind: "option", line: 3, column: 1, name: "verbose", value: undefined },
    { kind: "option", line: 4, column: 1, name: "define", value: "x y" },
  ]);
  assert.equal(optionValue(s, "tolerance_usecs"), "25000");
  assert.equal(optionValue(s, "mtu"), undefined);
  assert.equal(s.body.length, 1);
});

void test("an empty script, or one with only comments, has no events", () => {
  for (const src of ["", "// nothing\n/* here */\n"]) {
    const s = parse(src);
    assert.deepEqual(s.body, []);
    assert.deepEqual(s.options, []);
  }
});

void test("untimed init and cleanup commands", () => {
  const s = parse("`echo init`\n0 close(3) = 0\n`echo done`\n");
  assert.deepEqual(s.initCommand, { kind: "untimed-command", line: 1, column: 1, command: "echo init" });
  assert.deepEqual(s.cleanupCommand, { kind: "untimed-command", line: 3, column: 1, command: "echo done" });
  assert.equal(s.body.length, 1);
});

// ---------------------------------------------------------------------------------------------
// Time

void test("event times: absolute, relative, spaced relative, any, ranges", () => {
  const times = [
    ["0 `a`", { kind: "absolute", usecs: 0 }],
    ["0.100 `a`", { kind: "absolute", usecs: 100_000 }],
    ["12 `a`", { kind: "absolute", usecs: 12_000_000 }],
    ["+0.1 `a`", { kind: "relative", usecs: 100_000 }],
    ["+ 0.000001 `a`", { kind: "relative", usecs: 1 }],
    ["+.5 `a`", { kind: "relative", usecs: 500_000 }],
    ["* > S 0:0(0)", { kind: "any" }],
    ["0.1~0.2 > S 0:0(0)", { kind: "absolute-range", usecs: 100_000, endUsecs: 200_000 }],
    ["+0.1~+0.25 > S 0:0(0)", { kind: "relative-range", usecs: 100_000, endUsecs: 250_000 }],
  ] as const;
  for (const [src, time] of times) assert.deepEqual(only(src).time, time, src);
});

void test("decimal seconds convert to microseconds exactly (no float rounding)", () => {
  // 0.000003 * 1e6 is 2.9999999999999996 in floating point.
  assert.deepEqual(only("0.000003 `a`").time, { kind: "absolute", usecs: 3 });
  assert.deepEqual(only("4.1 `a`").time, { kind: "absolute", usecs: 4_100_000 });
});

// ---------------------------------------------------------------------------------------------
// System calls

void test("socket(..., SOCK_STREAM, IPPROTO_TCP) = 3, with every position", () => {
  assert.deepEqual(only("+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3"), {
    kind: "syscall",
    line: 1,
    column: 1,
    time: { kind: "relative", usecs: 0 },
    endUsecs: undefined,
    name: "socket",
    nameLine: 1,
    nameColumn: 7,
    args: [
      { kind: "ellipsis", line: 1, column: 14 },
      { kind: "word", line: 1, column: 19, name: "SOCK_STREAM" },
      { kind: "word", line: 1, column: 32, name: "IPPROTO_TCP" },
    ],
    result: { kind: "int", line: 1, column: 47, value: 3, hex: false },
    errno: undefined,
    note: undefined,
  });
});

void test("connect with an errno and its description", () => {
  const e = only("+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)");
  assert.deepEqual(strip(e), {
    kind: "syscall",
    time: { kind: "relative", usecs: 0 },
    endUsecs: undefined,
    name: "connect",
    args: [{ kind: "int", value: 3, hex: false }, { kind: "ellipsis" }, { kind: "ellipsis" }],
    result: { kind: "int", value: -1, hex: false },
    errno: "EINPROGRESS",
    note: "Operation now in progress",
  });
});

void test("fcntl: a hex result with a note, and flags or-ed together", () => {
  const get = only("+0.00 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)");
  assert.ok(get.kind === "syscall");
  assert.deepEqual(strip(get.result), { kind: "int", value: 2, hex: true });
  assert.equal(get.errno, undefined);
  assert.equal(get.note, "flags O_RDWR");
  const set = only("+0.00 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK | O_APPEND) = 0");
  assert.ok(set.kind === "syscall");
  assert.deepEqual(strip(set.args[2]), {
    kind: "binary",
    op: "|",
    left: {
      kind: "binary",
      op: "|",
      left: { kind: "word", name: "O_RDWR" },
      right: { kind: "word", name: "O_NONBLOCK" },
    },
    right: { kind: "word", name: "O_APPEND" },
  });
});

void test("setsockopt with a struct literal; structField finds a member", () => {
  const e = only("0 setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0");
  assert.ok(e.kind === "syscall");
  const lin = e.args[3]!;
  assert.deepEqual(strip(lin), {
    kind: "struct",
    items: [
      { kind: "assign", name: "l_onoff", nameArgs: undefined, value: { kind: "int", value: 1, hex: false } },
      { kind: "assign", name: "l_linger", nameArgs: undefined, value: { kind: "int", value: 0, hex: false } },
    ],
  });
  assert.deepEqual(strip(structField(lin, "l_linger")), { kind: "int", value: 0, hex: false });
  assert.equal(structField(lin, "nope"), undefined);
});

void test("getsockopt with pointer-to-value lists and an errno name inside", () => {
  const e = only("+0.10 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0");
  assert.ok(e.kind === "syscall");
  assert.deepEqual(strip(e.args.slice(3)), [
    { kind: "list", items: [{ kind: "word", name: "ECONNRESET" }] },
    { kind: "list", items: [{ kind: "int", value: 4, hex: false }] },
  ]);
});

void test("nested arrays, structs, calls, strings and the msghdr-style name(args)=value", () => {
  const e = only("0 sendmsg(3, {msg_name(...)=..., msg_iov(1)=[{..., 10}], msg_flags=0}, 0) = 10");
  assert.ok(e.kind === "syscall");
  assert.deepEqual(strip(e.args[1]), {
    kind: "struct",
    items: [
      { kind: "assign", name: "msg_name", nameArgs: [{ kind: "ellipsis" }], value: { kind: "ellipsis" } },
      {
        kind: "assign",
        name: "msg_iov",
        nameArgs: [{ kind: "int", value: 1, hex: false }],
        value: {
          kind: "list",
          items: [{ kind: "struct", items: [{ kind: "ellipsis" }, { kind: "int", value: 10, hex: false }] }],
        },
      },
      {
        kind: "assign",
        name: "msg_flags",
        nameArgs: undefined,
        value: { kind: "int", value: 0, hex: false },
      },
    ],
  });
});

void test("poll, bind with calls, string concatenation, empty argument lists", () => {
  const s = parse(
    "0 poll([{fd=3, events=POLLIN | POLLOUT, revents=0}], 1, 0) = 1\n" +
      '+0 bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16) = 0\n' +
      '+0 write (3, "abc" "def"..., 6) = 6\n' +
      "+0 getpid() = 100\n",
  );
  const [poll, bind, write, getpid] = allEvents(s);
  assert.ok(poll?.kind === "syscall" && bind?.kind === "syscall" && write?.kind === "syscall");
  assert.ok(getpid?.kind === "syscall");
  assert.deepEqual(strip(poll.args[0]), {
    kind: "list",
    items: [
      {
        kind: "struct",
        items: [
          { kind: "assign", name: "fd", nameArgs: undefined, value: { kind: "int", value: 3, hex: false } },
          {
            kind: "assign",
            name: "events",
            nameArgs: undefined,
            value: {
              kind: "binary",
              op: "|",
              left: { kind: "word", name: "POLLIN" },
              right: { kind: "word", name: "POLLOUT" },
            },
          },
          {
            kind: "assign",
            name: "revents",
            nameArgs: undefined,
            value: { kind: "int", value: 0, hex: false },
          },
        ],
      },
    ],
  });
  assert.deepEqual(strip(structField(bind.args[1]!, "sin_port")), {
    kind: "call",
    name: "htons",
    args: [{ kind: "int", value: 8080, hex: false }],
  });
  assert.deepEqual(strip(structField(bind.args[1]!, "sin_addr")), {
    kind: "call",
    name: "inet_addr",
    args: [{ kind: "string", value: "192.0.2.1", truncated: false }],
  });
  assert.equal(write.name, "write");
  assert.deepEqual(strip(write.args[1]), { kind: "string", value: "abcdef", truncated: true });
  assert.deepEqual(getpid.args, []);
});

void test("a blocking system call: start...end", () => {
  const e = only(" 1.00...6.00 connect(3, ..., ...) = -1 ETIMEDOUT (Operation timed out)");
  assert.ok(e.kind === "syscall");
  assert.deepEqual(e.time, { kind: "absolute", usecs: 1_000_000 });
  assert.equal(e.endUsecs, 6_000_000);
  assert.equal(e.errno, "ETIMEDOUT");
  assert.equal(e.note, "Operation timed out");
});

void test("read returning an errno without the result being special", () => {
  const e = only("+0.00 read(3, ..., 1000) = -1 EWOULDBLOCK (Operation would block)");
  assert.ok(e.kind === "syscall");
  assert.equal(e.name, "read");
  assert.equal(e.errno, "EWOULDBLOCK");
});

// ---------------------------------------------------------------------------------------------
// Commands and code

void test("backquoted shell commands and code snippets", () => {
  const s = parse("0.00 `sysctl -w net.inet.tcp.rfc1323=1`\n+0.00 %{ assert tcpi_state == TCPI_LISTEN }%\n");
  assert.deepEqual(s.body, [
    {
      kind: "command",
      line: 1,
      column: 1,
      time: { kind: "absolute", usecs: 0 },
      command: "sysctl -w net.inet.tcp.rfc1323=1",
    },
    {
      kind: "code",
      line: 2,
      column: 1,
      time: { kind: "relative", usecs: 0 },
      code: "assert tcpi_state == TCPI_LISTEN",
    },
  ]);
});

// ---------------------------------------------------------------------------------------------
// TCP packets

void test("an outbound SYN with the full option list, with every position", () => {
  assert.deepEqual(packet("+0.00 > S  0:0(0) <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>"), {
    line: 1,
    column: 7,
    direction: "outbound",
    outer: [],
    ip: undefined,
    protocol: "tcp",
    ports: undefined,
    flags: { text: "S", bits: TcpFlag.SYN },
    seq: { kind: "range", start: 0, end: 0, len: 0, absolute: false },
    ack: undefined,
    win: undefined,
    urg: undefined,
    options: [
      { kind: "mss", line: 1, column: 20, value: 1460 },
      { kind: "nop", line: 1, column: 29 },
      { kind: "wscale", line: 1, column: 33, value: 6 },
      { kind: "sackOK", line: 1, column: 42 },
      { kind: "timestamp", line: 1, column: 49, val: 100, ecr: 0, ecrAbsolute: false },
    ],
    udpEncaps: undefined,
  });
});

void test("an inbound SYN-ACK with ack, window and eol padding", () => {
  assert.deepEqual(strip(packet("+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>")), {
    direction: "inbound",
    outer: [],
    ip: undefined,
    protocol: "tcp",
    ports: undefined,
    flags: { text: "S.", bits: TcpFlag.SYN | TcpFlag.ACK },
    seq: { kind: "range", start: 0, end: 0, len: 0, absolute: false },
    ack: 1,
    win: 32767,
    urg: undefined,
    options: [{ kind: "mss", value: 1460 }, { kind: "sackOK" }, { kind: "eol" }, { kind: "eol" }],
    udpEncaps: undefined,
  });
});

void test("every flag spelling decodes to its bits", () => {
  const cases = [
    [".", TcpFlag.ACK],
    ["F.", TcpFlag.FIN | TcpFlag.ACK],
    ["R", TcpFlag.RST],
    ["R.", TcpFlag.RST | TcpFlag.ACK],
    ["P.", TcpFlag.PSH | TcpFlag.ACK],
    ["SF", TcpFlag.SYN | TcpFlag.FIN],
    ["FPU", TcpFlag.FIN | TcpFlag.PSH | TcpFlag.URG],
    ["SEW", TcpFlag.SYN | TcpFlag.ECE | TcpFlag.CWR],
    ["SE.", TcpFlag.SYN | TcpFlag.ECE | TcpFlag.ACK],
    ["-", 0],
  ] as const;
  for (const [text, bits] of cases) {
    const p = packet(`0 < ${text} 1:1(0) win 100`);
    assert.ok(p.protocol === "tcp");
    assert.deepEqual(p.flags, { text: text === "-" ? "" : text, bits }, text);
  }
});

void test("payload ranges, wildcard and absolute sequence numbers, urg, ports", () => {
  const data = packet("0 < P. 1:1001(1000) ack 1 win 65535 urg 5");
  assert.ok(data.protocol === "tcp");
  assert.deepEqual(data.seq, { kind: "range", start: 1, end: 1001, len: 1000, absolute: false });
  assert.equal(data.urg, 5);
  const any = packet("0 > S.     ...(0)     ack 65537 win 65535 <mss 1460,sackOK,eol,eol>");
  assert.ok(any.protocol === "tcp");
  assert.deepEqual(any.seq, { kind: "any", len: 0 });
  const abs = packet("0 > . 100:100(0)! ack 1");
  assert.ok(abs.protocol === "tcp");
  assert.deepEqual(abs.seq, { kind: "range", start: 100, end: 100, len: 0, absolute: true });
  assert.equal(abs.win, undefined);
  const ported = packet("0 < 8080>80 S 0:0(0) win 1000");
  assert.ok(ported.protocol === "tcp");
  assert.deepEqual(ported.ports, { src: 8080, dst: 80 });
  const top = packet("0 < R 4294967295:4294967295(0) win 0");
  assert.ok(top.protocol === "tcp");
  assert.deepEqual(top.seq, { kind: "range", start: 4294967295, end: 4294967295, len: 0, absolute: false });
});

void test("TCP options: sack blocks, TS with wildcard and absolute ecr, md5, fast open, <...>", () => {
  const p = packet("0 > . 1:1(0) ack 1 <nop,nop,sack 1:2 3:4,TS val ... ecr 7!,md5 00ff,FO 0102,FOEXP>");
  assert.ok(p.protocol === "tcp");
  assert.deepEqual(strip(p.options), [
    { kind: "nop" },
    { kind: "nop" },
    {
      kind: "sack",
      blocks: [
        { left: 1, right: 2 },
        { left: 3, right: 4 },
      ],
    },
    { kind: "timestamp", val: undefined, ecr: 7, ecrAbsolute: true },
    { kind: "md5", digest: "00ff" },
    { kind: "fastopen", cookie: "0102", symbolic: false, experimental: false },
    { kind: "fastopen", cookie: "", symbolic: false, experimental: true },
  ]);
  const unchecked = packet("* > S 0:0(0) win 65535 <...>");
  assert.ok(unchecked.protocol === "tcp");
  assert.equal(unchecked.options, "any");
});

void test("a fast open cookie may be a symbol the command line defines (-D TFO_COOKIE=...)", () => {
  const p = packet("0 < S 0:10(10) win 32792 <mss 1460,sackOK,nop,nop,FOEXP TFO_COOKIE>");
  assert.ok(p.protocol === "tcp" && p.options !== "any");
  assert.deepEqual(strip(p.options[4]), {
    kind: "fastopen",
    cookie: "TFO_COOKIE",
    symbolic: true,
    experimental: true,
  });
  // All hex digits is a cookie, not a symbol, even when it reads like a word.
  const hex = packet("0 < S 0:0(0) win 1 <FO abcdef12>");
  assert.ok(hex.protocol === "tcp" && hex.options !== "any");
  assert.deepEqual(strip(hex.options[0]), {
    kind: "fastopen",
    cookie: "abcdef12",
    symbolic: false,
    experimental: false,
  });
});

void test("TCP over UDP: /udp(src > dst) after a segment, glued to the window or the options", () => {
  const a = packet("+0.00 > S  0:0(0) win 65535 <mss 1452,nop,wscale 6>/udp(9811 > 1)");
  assert.ok(a.protocol === "tcp");
  assert.deepEqual(a.udpEncaps, { src: 9811, dst: 1 });
  assert.deepEqual(a.options === "any" ? [] : a.options.map((o) => o.kind), ["mss", "nop", "wscale"]);
  const b = packet("+0.10 < F.  1:1(0) ack 1 win 32767/udp(1 > 9811)");
  assert.ok(b.protocol === "tcp");
  assert.deepEqual([b.win, b.udpEncaps], [32767, { src: 1, dst: 9811 }]);
  const c = packet("+0.00 > R.    0:0(0)!      ack    2 win     0 <nop,nop,md5 valid>/udp(9811 > 1)");
  assert.ok(c.protocol === "tcp");
  assert.deepEqual(c.udpEncaps, { src: 9811, dst: 1 });
  const icmp = packet("+0.00 <icmp unreachable frag_needed mtu 1300 [1453:2905(1452)/udp(9811 > 1)]");
  assert.ok(icmp.protocol === "icmp");
  assert.deepEqual(icmp.echoed, {
    protocol: "tcp",
    seq: { kind: "range", start: 1453, end: 2905, len: 1452, absolute: false },
    udpEncaps: { src: 9811, dst: 1 },
  });
  // A comment right after the segment is still a comment, not an encapsulation.
  const d = packet("0 > . 1:1(0) ack 1 win 65535// done");
  assert.ok(d.protocol === "tcp");
  assert.equal(d.udpEncaps, undefined);
});

void test("explicit outer IP headers: ipv4 / ipv6 SRC > DST: before the packet, nested, with annotations", () => {
  const a = packet("0 < ipv4 192.0.2.1 > 192.0.2.2: [ect0] . 1:1(0) ack 1 win 100");
  assert.deepEqual(a.outer, [{ version: 4, ip: undefined, src: "192.0.2.1", dst: "192.0.2.2" }]);
  assert.equal(a.ip?.ecn, "ect0");
  const b = packet("0 > ipv6 [hlim 3] 2001:db8::1 > 2001:db8::2: ipv4 10.0.0.1 > 10.0.0.2: S 0:0(0) <...>");
  assert.deepEqual(
    b.outer.map((h) => [h.version, h.ip?.ttl, h.src, h.dst]),
    [
      [6, 3, "2001:db8::1", "2001:db8::2"],
      [4, undefined, "10.0.0.1", "10.0.0.2"],
    ],
  );
  const c = packet("0 < ipv6 ::1 > ::ffff:192.0.2.4: icmp unreachable port_unreachable [1:1(0)]");
  assert.ok(c.protocol === "icmp");
  assert.deepEqual(c.outer, [{ version: 6, ip: undefined, src: "::1", dst: "::ffff:192.0.2.4" }]);
});

void test("option lists tolerate spaces after commas and options in any order", () => {
  const p = packet("0 < S 0:0(0) win 65535 <mss 1460,wscale 2,TS val 1 ecr 0,sackOK, eol>");
  assert.ok(p.protocol === "tcp");
  assert.deepEqual(p.options === "any" ? [] : p.options.map((o) => o.kind), [
    "mss",
    "wscale",
    "timestamp",
    "sackOK",
    "eol",
  ]);
});

void test("IP annotations: ECN codepoints with or without a space, tos, ttl, flow label", () => {
  const a = packet("+0.00 >[noecn] P. 1:11(10) ack 1");
  assert.deepEqual(a.ip, {
    ecn: "noecn",
    tos: undefined,
    flowLabel: undefined,
    ttl: undefined,
    dscp: undefined,
  });
  const b = packet("+0.01 < [ect0] . 1:1(0) ack 1 win 65535");
  assert.equal(b.ip?.ecn, "ect0");
  assert.equal(b.direction, "inbound");
  const c = packet("0 > (tos 0x10, flowlabel 0x12345) . 1:1(0) ack 1");
  assert.deepEqual(c.ip, { ecn: undefined, tos: 0x10, flowLabel: 0x12345, ttl: undefined, dscp: undefined });
  const d = packet("0 > [ect01, ttl 64] . 1:1(0) ack 1");
  assert.deepEqual(d.ip, { ecn: "ect01", tos: undefined, flowLabel: undefined, ttl: 64, dscp: undefined });
});

// ---------------------------------------------------------------------------------------------
// ICMP and UDP

void test("ICMP errors quoting a TCP segment", () => {
  assert.deepEqual(packet("+0.10 < icmp unreachable port_unreachable [1:101(100)]"), {
    line: 1,
    column: 7,
    direction: "inbound",
    outer: [],
    ip: undefined,
    protocol: "icmp",
    type: "unreachable",
    code: "port_unreachable",
    mtu: undefined,
    id: undefined,
    echoed: {
      protocol: "tcp",
      seq: { kind: "range", start: 1, end: 101, len: 100, absolute: false },
      udpEncaps: undefined,
    },
  });
});

void test("ICMP with an mtu, without a code, unspaced, and quoting UDP", () => {
  const frag = packet("0 < icmp unreachable frag_needed mtu 1000 [0:0(0)]");
  assert.ok(frag.protocol === "icmp");
  assert.equal(frag.code, "frag_needed");
  assert.equal(frag.mtu, 1000);
  const ptb = packet("0 < icmp packet_too_big mtu 1280 [1:1(0)]");
  assert.ok(ptb.protocol === "icmp");
  assert.equal(ptb.type, "packet_too_big");
  assert.equal(ptb.code, undefined);
  assert.equal(ptb.mtu, 1280);
  const sq = packet("0 <icmp source_quench [0:0(0)]");
  assert.ok(sq.protocol === "icmp");
  assert.deepEqual([sq.type, sq.code], ["source_quench", undefined]);
  const udp = packet("0 < icmp unreachable port_unreachable [udp (10)]");
  assert.ok(udp.protocol === "icmp");
  assert.deepEqual(udp.echoed, { protocol: "udp", len: 10 });
  const bare = packet("0 > icmp echo_reply id 7");
  assert.ok(bare.protocol === "icmp");
  assert.deepEqual([bare.id, bare.echoed], [7, undefined]);
});

void test("UDP datagrams", () => {
  assert.deepEqual(strip(packet("0 < udp 5353>53 (100)")), {
    direction: "inbound",
    outer: [],
    ip: undefined,
    protocol: "udp",
    ports: { src: 5353, dst: 53 },
    len: 100,
  });
});

// ---------------------------------------------------------------------------------------------
// Conditionals

const COND = `0 \`a\`
#ifdef STANDARD
+0 > . 2:2(0) ack 2 win 65535
#else
+0 < . 1:1(0) ack 2 win 32767
#ifndef Quiet
+0 \`b\`
#endif
#endif
#ifdef FreeBSD
+0 \`tcpdrop -s TIME_WAIT\`
#endif
+0 close(4) = 0
`;

void test("#ifdef / #else / #ifndef / #endif build a tree with positions", () => {
  const s = parse(COND);
  assert.deepEqual(
    s.body.map((i) => [i.kind, i.line]),
    [
      ["command", 1],
      ["conditional", 2],
      ["conditional", 10],
      ["syscall", 13],
    ],
  );
  const c = s.body[1]!;
  assert.ok(c.kind === "conditional");
  assert.deepEqual([c.symbol, c.negated, c.column], ["STANDARD", false, 1]);
  assert.deepEqual(
    c.then.map((i) => i.line),
    [3],
  );
  assert.deepEqual(
    c.otherwise.map((i) => [i.kind, i.line]),
    [
      ["packet", 5],
      ["conditional", 6],
    ],
  );
  const inner = c.otherwise[1]!;
  assert.ok(inner.kind === "conditional");
  assert.deepEqual([inner.symbol, inner.negated], ["Quiet", true]);
});

void test("selectEvents resolves conditionals against the defined symbols", () => {
  const s = parse(COND);
  const lines = (defs: string[]): number[] => selectEvents(s, defs).map((e) => e.line);
  assert.deepEqual(lines([]), [1, 5, 7, 13]);
  assert.deepEqual(lines(["STANDARD"]), [1, 3, 13]);
  assert.deepEqual(lines(["FreeBSD"]), [1, 5, 7, 11, 13]);
  assert.deepEqual(lines(["FreeBSD", "Quiet"]), [1, 5, 11, 13]);
  assert.deepEqual(
    allEvents(s).map((e) => e.line),
    [1, 3, 5, 7, 11, 13],
  );
});

// ---------------------------------------------------------------------------------------------
// Layout

void test("comments anywhere, a comment glued to a statement, CRLF, no final newline", () => {
  const s = parse(
    "// header\r\n--ip_version=ipv6\r\n 0.00 close(3) = 0// glued\r\n/* multi\r\nline */ +0 `x` /* tail */\r\n+1 close(4) = 0",
  );
  assert.deepEqual(
    allEvents(s).map((e) => [e.kind, e.line, e.column]),
    [
      ["syscall", 3, 2],
      ["command", 5, 9],
      ["syscall", 6, 1],
    ],
  );
  assert.equal(optionValue(s, "ip_version"), "ipv6");
});

void test("events may span lines: the grammar is free-form like packetdrill's", () => {
  const e = only("0 > S 0:0(0)\n    win 65535\n    <mss 1460>");
  assert.ok(e.kind === "packet" && e.packet.protocol === "tcp");
  assert.equal(e.packet.win, 65535);
  assert.equal(e.packet.options === "any" ? -1 : e.packet.options[0]?.line, 3);
});
