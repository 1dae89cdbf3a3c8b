// Parses every script of both peer suites (FreeBSD's tcp-testsuite and google/packetdrill's
// scripts, found by src/conformance/peer-suite.ts: $CHIMNEY_PEER_SUITE or ../shared/peer-tests),
// checks that each prints back to the same tree, and checks facts about a few of them. The
// scripts are read, never copied or changed. Without the suites these tests skip visibly (fail
// with CHIMNEY_REQUIRE_PEER_SUITE=1).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { type TestContext, test } from "node:test";
import { peerSuiteOrSkip } from "../support/peer-suite.js";
import type { PeerSuiteName } from "../../src/conformance/peer-suite.js";
import type { PdEvent, PdScript } from "../../src/conformance/packetdrill/ast.js";
import { allEvents, optionValue, selectEvents } from "../../src/conformance/packetdrill/ast.js";
import { parsePacketdrill } from "../../src/conformance/packetdrill/parser.js";
import { printScript } from "../../src/conformance/packetdrill/print.js";

/** Relative paths of every .pkt file under `dir`, sorted. */
function scriptPaths(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".pkt"))
    .map((f) => f.split("\\").join("/"))
    .sort();
}

/** The folder a script is counted under: the top folder (FreeBSD), or `tcp/sack` (google). */
function folderOf(suite: PeerSuiteName, rel: string): string {
  const parts = rel.split("/");
  return suite === "freebsd" ? parts[0]! : parts.slice(2, 4).join("/");
}

/** Scripts per folder each suite holds (see ../shared/peer-tests/README.md). */
const EXPECTED_FOLDERS: Readonly<Record<PeerSuiteName, Readonly<Record<string, number>>>> = {
  freebsd: {
    "fast-open": 116,
    "rcv-data-segments": 217,
    "rcv-icmp": 12,
    "snd-syn": 30,
    snippets: 36,
    "socket-api": 22,
    "state-event-engine": 614,
    "tcp-over-udp": 56,
  },
  google: {
    "packetdrill/tests": 5,
    "tcp/blocking": 4,
    "tcp/close": 3,
    "tcp/cubic": 6,
    "tcp/cwnd_moderation": 2,
    "tcp/ecn": 1,
    "tcp/eor": 4,
    "tcp/epoll": 4,
    "tcp/fast_recovery": 4,
    "tcp/fast_retransmit": 4,
    "tcp/fastopen": 64,
    "tcp/gro": 1,
    "tcp/inq": 2,
    "tcp/ioctl": 1,
    "tcp/limited_transmit": 2,
    "tcp/md5": 1,
    "tcp/mss": 3,
    "tcp/mtu_probe": 2,
    "tcp/nagle": 3,
    "tcp/notsent_lowat": 3,
    "tcp/sack": 4,
    "tcp/sendfile": 1,
    "tcp/shutdown": 6,
    "tcp/slow_start": 10,
    "tcp/splice": 1,
    "tcp/syscall_bad_arg": 3,
    "tcp/tcp_info": 3,
    "tcp/timestamping": 3,
    "tcp/ts_recent": 3,
    "tcp/user_timeout": 2,
    "tcp/validate": 1,
    "tcp/zerocopy": 11,
  },
};

/**
 * Scripts of the peer suites that are not valid packetdrill, with the error our parser (like
 * packetdrill's own parser.y, whose script must start with an option, a command or an event
 * time) gives at the exact spot. Upstream's file opens with `s//`: a stray `s` before the
 * licence comment.
 */
const INVALID_UPSTREAM: Readonly<Record<string, string>> = {
  "freebsd:fast-open/client/client-handle-cookie-update-of-length-17.pkt":
    "client-handle-cookie-update-of-length-17.pkt:1:1: expected an event time (like 0.100, +0.1 or *), found 's'",
};

function load(dir: string, rel: string): PdScript {
  const r = parsePacketdrill(readFileSync(join(dir, rel), "utf8"), { file: basename(rel) });
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
}

/** A test that runs `body` on a suite's folder, or skips visibly when the suite is missing. */
function suiteTest(title: string, suite: PeerSuiteName, body: (dir: string, t: TestContext) => void): void {
  void test(title, (t) => {
    const dir = peerSuiteOrSkip(t, suite);
    if (dir !== undefined) body(dir, t);
  });
}

/** Packet events by direction and protocol, e.g. `{ "> tcp": 4, "< tcp": 2 }`. */
function packetCounts(events: readonly PdEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) {
    if (e.kind !== "packet") continue;
    const key = `${e.packet.direction === "inbound" ? "<" : ">"} ${e.packet.protocol}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

const count = (events: readonly PdEvent[], kind: PdEvent["kind"]): number =>
  events.filter((e) => e.kind === kind).length;

const POS_KEYS = new Set(["line", "column", "nameLine", "nameColumn"]);
function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([k]) => !POS_KEYS.has(k) && k !== "file")
        .map(([k, x]) => [k, strip(x)]),
    );
  }
  return v;
}

for (const suite of ["freebsd", "google"] as const) {
  suiteTest(`every .pkt file of the ${suite} peer suite parses without error`, suite, (dir, t) => {
    const paths = scriptPaths(dir);
    const perFolder: Record<string, number> = {};
    const failures: string[] = [];
    const invalid: Record<string, string> = {};
    let events = 0;
    for (const rel of paths) {
      const folder = folderOf(suite, rel);
      perFolder[folder] = (perFolder[folder] ?? 0) + 1;
      const r = parsePacketdrill(readFileSync(join(dir, rel), "utf8"), { file: basename(rel) });
      if (r.ok) events += allEvents(r.value).length;
      else if (INVALID_UPSTREAM[`${suite}:${rel}`] !== undefined)
        invalid[`${suite}:${rel}`] = r.error.message;
      else failures.push(`${rel}: ${r.error.message}`);
    }
    t.diagnostic(
      `${suite}: ${paths.length} scripts, ${events} events, per folder ${JSON.stringify(perFolder)}`,
    );
    assert.deepEqual(failures, []);
    assert.deepEqual(
      invalid,
      Object.fromEntries(Object.entries(INVALID_UPSTREAM).filter(([k]) => k.startsWith(`${suite}:`))),
    );
    assert.deepEqual(perFolder, EXPECTED_FOLDERS[suite]);
  });

  suiteTest(`every ${suite} script prints back to text that parses to the same tree`, suite, (dir) => {
    const paths = scriptPaths(dir).filter((rel) => INVALID_UPSTREAM[`${suite}:${rel}`] === undefined);
    assert.ok(paths.length > 100);
    for (const rel of paths) {
      const tree = load(dir, rel);
      const printed = printScript(tree);
      const again = parsePacketdrill(printed, { file: rel });
      if (!again.ok) assert.fail(`${rel}: printed form does not parse: ${again.error.message}`);
      assert.deepEqual(strip(again.value), strip(tree), rel);
      assert.equal(printScript(again.value), printed, `${rel}: printing is not idempotent`);
    }
  });
}

suiteTest(
  "snd-syn-with-default-options-ipv4: one outbound SYN with the default options",
  "freebsd",
  (dir) => {
    const s = load(dir, "snd-syn/snd-syn-with-default-options-ipv4.pkt");
    assert.equal(optionValue(s, "ip_version"), "ipv4");
    assert.equal(optionValue(s, "tolerance_usecs"), "25000");
    const events = allEvents(s);
    assert.deepEqual(packetCounts(events), { "> tcp": 1 });
    assert.equal(count(events, "command"), 11);
    assert.deepEqual(
      events.flatMap((e) => (e.kind === "syscall" ? [e.name] : [])),
      ["socket", "fcntl", "fcntl", "connect", "close"],
    );
    const syn = events.find((e) => e.kind === "packet");
    assert.ok(syn?.kind === "packet" && syn.packet.protocol === "tcp");
    assert.equal(syn.packet.flags.text, "S");
    assert.deepEqual(syn.packet.options === "any" ? [] : syn.packet.options.map((o) => o.kind), [
      "mss",
      "nop",
      "wscale",
      "sackOK",
      "timestamp",
    ]);
    assert.equal(syn.line, 55);
  },
);

suiteTest("snippets/established-ipv4: handshake, code assertion and close", "freebsd", (dir) => {
  const s = load(dir, "snippets/established-ipv4.pkt");
  const events = allEvents(s);
  assert.deepEqual(packetCounts(events), { "> tcp": 4, "< tcp": 2 });
  assert.equal(count(events, "command"), 10);
  const code = events.filter((e) => e.kind === "code");
  assert.deepEqual(
    code.map((e) => [e.line, e.kind === "code" ? e.code : ""]),
    [[57, "assert tcpi_state == TCPI_ESTABLISHED"]],
  );
  const synAck = events.find((e) => e.line === 49);
  assert.ok(synAck?.kind === "packet" && synAck.packet.protocol === "tcp");
  assert.deepEqual(
    [synAck.packet.direction, synAck.packet.flags.text, synAck.packet.ack, synAck.packet.win],
    ["inbound", "S.", 1, 32767],
  );
  assert.deepEqual(synAck.time, { kind: "relative", usecs: 100_000 });
});

suiteTest(
  "rcv-icmp-hard-error-port-unreachable-ipv6: three ICMP errors and the errors they cause",
  "freebsd",
  (dir) => {
    const events = allEvents(load(dir, "rcv-icmp/rcv-icmp-hard-error-port-unreachable-ipv6.pkt"));
    assert.deepEqual(packetCounts(events), { "> tcp": 1, "< icmp": 3 });
    const quoted = events.flatMap((e) =>
      e.kind === "packet" && e.packet.protocol === "icmp" && e.packet.echoed?.protocol === "tcp"
        ? [
            `${e.packet.type}/${e.packet.code ?? ""}@${e.packet.echoed.seq.kind === "range" ? e.packet.echoed.seq.start : -1}`,
          ]
        : [],
    );
    assert.deepEqual(quoted, [
      "unreachable/port_unreachable@4294967295",
      "unreachable/port_unreachable@1",
      "unreachable/port_unreachable@0",
    ]);
    const soError = events.flatMap((e) => {
      if (e.kind !== "syscall" || e.name !== "getsockopt") return [];
      const v = e.args[3];
      return v?.kind === "list" && v.items[0]?.kind === "word" ? [v.items[0].name] : ["0"];
    });
    assert.deepEqual(soError, ["0", "0", "ECONNREFUSED"]);
  },
);

suiteTest("a TIME-WAIT script with #ifdef STANDARD and #ifdef FreeBSD branches", "freebsd", (dir) => {
  const s = load(
    dir,
    "state-event-engine/rcv-syn-fin-time-wait/rcv-syn-fin-time-wait-using-shutdown-right-edge-secure-drop-ipv6.pkt",
  );
  assert.deepEqual(
    s.body
      .filter((i) => i.kind === "conditional")
      .map((c) => [c.kind === "conditional" ? c.symbol : "", c.line]),
    [
      ["STANDARD", 66],
      ["FreeBSD", 71],
    ],
  );
  assert.deepEqual(packetCounts(allEvents(s)), { "< tcp": 5, "> tcp": 5 });
  assert.deepEqual(packetCounts(selectEvents(s)), { "< tcp": 4, "> tcp": 3 });
  assert.deepEqual(packetCounts(selectEvents(s, ["FreeBSD"])), { "< tcp": 5, "> tcp": 4 });
  assert.deepEqual(packetCounts(selectEvents(s, ["STANDARD"])), { "< tcp": 4, "> tcp": 4 });
});

suiteTest(
  "snd-syn-rtx-keepinit-ipv4: a blocking connect from 1 s to 6 s and SYN retransmissions",
  "freebsd",
  (dir) => {
    const events = allEvents(load(dir, "snd-syn/snd-syn-rtx-keepinit-ipv4.pkt"));
    const connect = events.find((e) => e.kind === "syscall" && e.name === "connect");
    assert.ok(connect?.kind === "syscall");
    assert.deepEqual(connect.time, { kind: "absolute", usecs: 1_000_000 });
    assert.equal(connect.endUsecs, 6_000_000);
    assert.equal(connect.errno, "ETIMEDOUT");
    const tsVals = events.flatMap((e) =>
      e.kind === "packet" && e.packet.protocol === "tcp" && e.packet.options !== "any"
        ? e.packet.options.flatMap((o) => (o.kind === "timestamp" ? [o.val] : []))
        : [],
    );
    assert.deepEqual(tsVals.slice(0, 3), [100, 1100, 3300]);
  },
);

suiteTest(
  "tcp-over-udp/rcv-ack-closing-ipv4: segments in UDP, plain ones, and a port change",
  "freebsd",
  (dir) => {
    const events = allEvents(load(dir, "tcp-over-udp/rcv-ack-closing-ipv4.pkt"));
    const encaps = events.flatMap((e) =>
      e.kind === "packet" && e.packet.protocol === "tcp"
        ? [
            `${e.line} ${e.packet.udpEncaps === undefined ? "plain" : `${e.packet.udpEncaps.src}>${e.packet.udpEncaps.dst}`}`,
          ]
        : [],
    );
    assert.deepEqual(encaps, [
      "50 9811>1",
      "51 1>9811",
      "52 9811>1",
      "54 9811>1",
      "55 1>9811",
      "56 9811>1",
      "59 plain",
      "60 plain",
      "61 2>9811",
      "62 9811>2",
      "63 1>9811",
    ]);
  },
);

suiteTest("google nagle/sendmsg_msg_more: msghdr literals with msg_iov arrays", "google", (dir) => {
  const events = allEvents(load(dir, "gtests/net/tcp/nagle/sendmsg_msg_more.pkt"));
  const sendmsg = events.filter((e) => e.kind === "syscall" && e.name === "sendmsg");
  assert.ok(sendmsg.length >= 4);
  const iovLengths = sendmsg.map((e) => {
    assert.ok(e.kind === "syscall");
    const msg = e.args[1];
    assert.ok(msg?.kind === "struct");
    const iov = msg.items.find((i) => i.kind === "assign" && i.name === "msg_iov");
    assert.ok(iov?.kind === "assign" && iov.value.kind === "list");
    return iov.value.items.map((v) =>
      v.kind === "struct" && v.items[1]?.kind === "int" ? v.items[1].value : -1,
    );
  });
  assert.deepEqual(iovLengths.slice(0, 4), [[40], [100], [160], [100, 200, 195]]);
});

suiteTest("google fastopen/server/basic-rw: the cookie is the command line's TFO_COOKIE", "google", (dir) => {
  const events = allEvents(load(dir, "gtests/net/tcp/fastopen/server/basic-rw.pkt"));
  const cookies = events.flatMap((e) =>
    e.kind === "packet" && e.packet.protocol === "tcp" && e.packet.options !== "any"
      ? e.packet.options.flatMap((o) =>
          o.kind === "fastopen" ? [[o.cookie, o.symbolic, o.experimental]] : [],
        )
      : [],
  );
  assert.deepEqual(cookies, [["TFO_COOKIE", true, true]]);
});
