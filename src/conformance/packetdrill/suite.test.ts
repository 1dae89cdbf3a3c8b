// Parses every script of the FreeBSD TCP test suite (packetdrill) kept beside the repository in
// ../shared/peer-tests/, and checks facts about a few of them. The scripts are read, never
// copied or changed.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { PdEvent, PdScript } from "./ast.js";
import { allEvents, optionValue, selectEvents } from "./ast.js";
import { parsePacketdrill } from "./parser.js";
import { printScript } from "./print.js";

/** The repository root: the nearest ancestor of this file with package.json and src/. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "src"))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

const SUITE = join(repoRoot(), "..", "shared", "peer-tests", "freebsd-tcp-testsuite");

/** Relative paths of every .pkt file, sorted; empty when the suite is missing. */
function scriptPaths(): string[] {
  if (!existsSync(SUITE)) return [];
  return readdirSync(SUITE, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".pkt"))
    .map((f) => f.split("\\").join("/"))
    .sort();
}

function load(rel: string): PdScript {
  const r = parsePacketdrill(readFileSync(join(SUITE, rel), "utf8"), { file: basename(rel) });
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
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

void test("every .pkt file of the peer suite parses without error", (t) => {
  const paths = scriptPaths();
  const perFolder: Record<string, number> = {};
  const failures: string[] = [];
  let events = 0;
  for (const rel of paths) {
    const folder = rel.split("/")[0]!;
    perFolder[folder] = (perFolder[folder] ?? 0) + 1;
    const r = parsePacketdrill(readFileSync(join(SUITE, rel), "utf8"), { file: basename(rel) });
    if (r.ok) events += allEvents(r.value).length;
    else failures.push(`${rel}: ${r.error.message}`);
  }
  t.diagnostic(`${paths.length} scripts, ${events} events, per folder ${JSON.stringify(perFolder)}`);
  assert.ok(
    paths.length > 600,
    `expected the FreeBSD suite (692 scripts) under ${SUITE}, found ${paths.length}`,
  );
  assert.deepEqual(failures, []);
  assert.deepEqual(perFolder, { "rcv-icmp": 12, "snd-syn": 30, snippets: 36, "state-event-engine": 614 });
});

void test("every script prints back to text that parses to the same tree", () => {
  const paths = scriptPaths();
  assert.ok(paths.length > 600);
  for (const rel of paths) {
    const tree = load(rel);
    const printed = printScript(tree);
    const again = parsePacketdrill(printed, { file: rel });
    if (!again.ok) assert.fail(`${rel}: printed form does not parse: ${again.error.message}`);
    assert.deepEqual(strip(again.value), strip(tree), rel);
    assert.equal(printScript(again.value), printed, `${rel}: printing is not idempotent`);
  }
});

void test("snd-syn-with-default-options-ipv4: one outbound SYN with the default options", () => {
  const s = load("snd-syn/snd-syn-with-default-options-ipv4.pkt");
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
});

void test("snippets/established-ipv4: handshake, code assertion and close", () => {
  const s = load("snippets/established-ipv4.pkt");
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

void test("rcv-icmp-hard-error-port-unreachable-ipv6: three ICMP errors and the errors they cause", () => {
  const events = allEvents(load("rcv-icmp/rcv-icmp-hard-error-port-unreachable-ipv6.pkt"));
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
});

void test("a TIME-WAIT script with #ifdef STANDARD and #ifdef FreeBSD branches", () => {
  const s = load(
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

void test("snd-syn-rtx-keepinit-ipv4: a blocking connect from 1 s to 6 s and SYN retransmissions", () => {
  const events = allEvents(load("snd-syn/snd-syn-rtx-keepinit-ipv4.pkt"));
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
});
