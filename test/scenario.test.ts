// Scenario files and the runner: every shipped scenario passes with two seeds, runs are a pure
// function of (scenario, seed), the validator names the field and what it expected, and the
// timeline records placements, wire segments, NBL hand-offs and reads.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { loadScenarioFile, parseScenarioText, resultJson } from "../src/cli/commands/run.js";
import { CliUsageError } from "../src/cli/errors.js";
import { BufferLedger } from "../src/nbl/ledger.js";
import { netBufferOf } from "../src/nbl/nbl.js";
import { patternByte, runScenario, tcpDefaults } from "../src/scenario/run.js";
import { formatScenarioError, type Scenario, validateScenario } from "../src/scenario/schema.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("package.json not found above the test");
    dir = up;
  }
  return dir;
}

const ROOT = repoRoot();
const SCENARIOS = join(ROOT, "scenarios");
const shipped = readdirSync(SCENARIOS)
  .filter((f) => f.endsWith(".yaml") || f.endsWith(".json"))
  .sort();

void test("the required scenarios ship", () => {
  for (const f of [
    "seed.yaml",
    "partial-posted-receives.yaml",
    "initiate-host-buffered.yaml",
    "terminate-storm.yaml",
    "lossy-flapping.yaml",
  ]) {
    assert.ok(shipped.includes(f), `scenarios/${f} is missing`);
  }
});

for (const file of shipped) {
  void test(`scenarios/${file} passes with seeds 1 and 2`, () => {
    const s = loadScenarioFile(join(SCENARIOS, file));
    for (const seed of [1, 2]) {
      const r = runScenario(s, seed);
      const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      assert.deepEqual(failed, [], `scenarios/${file} seed ${seed}`);
      assert.ok(r.passed);
      assert.ok(r.checks.length >= 3, "streams, completion and ledger checks ran");
    }
  });
}

void test("the same seed gives the same result; the timeline is deterministic too", () => {
  const s = loadScenarioFile(join(SCENARIOS, "lossy-flapping.yaml"));
  const a = runScenario(s, 7);
  const b = runScenario(s, 7);
  assert.equal(JSON.stringify(resultJson("x", a)), JSON.stringify(resultJson("x", b)));
  assert.equal(JSON.stringify(a.timeline), JSON.stringify(b.timeline));
  const c = runScenario(s, 8);
  assert.notEqual(JSON.stringify(a.timeline.segments), JSON.stringify(c.timeline.segments), "seeds matter");
});

void test("segments the link drops are marked dropped in the timeline, one for each drop", () => {
  const s = loadScenarioFile(join(SCENARIOS, "lossy-flapping.yaml"));
  const r = runScenario(s, 3);
  const t = r.timeline;
  const marked = t.segments.filter((x) => x.dropped);
  assert.equal(t.segments.length, r.counters["frames"], "the whole run fits the timeline");
  assert.ok(marked.length > 0, "a 2% loss link drops some of its segments");
  assert.equal(marked.length, r.counters["linkDropped"], "every drop marks exactly one segment");
  assert.ok(marked.length < t.segments.length / 10, "and only the dropped ones");
});

void test("a scenario with different faults each way gives the b->a direction its own profile", () => {
  const base = loadScenarioFile(join(SCENARIOS, "lossy-flapping.yaml"));
  // No random loss, and a bottleneck queue deep enough that slow start (by bytes, RFC 3465)
  // cannot overflow it: every b>a drop would then come from the wrong profile.
  const clean = { ...base.link.aToB, loss: 0, queueBytes: 1 << 20 };
  const s: Scenario = { ...base, link: { aToB: base.link.aToB, bToA: clean } };
  const t = runScenario(s, 3).timeline;
  const dropped = (dir: string) => t.segments.filter((x) => x.direction === dir && x.dropped).length;
  assert.ok(dropped("a>b") > 0);
  assert.equal(dropped("b>a"), 0, "the reverse profile has no loss");
});

void test("the seed scenario's timeline shows placements, segments, NBL hand-offs and reads", () => {
  const r = runScenario(loadScenarioFile(join(SCENARIOS, "seed.yaml")), 1);
  const t = r.timeline;
  assert.equal(t.seed, 1);
  assert.equal(t.verdict.passed, true);
  const conn = t.connections.find((c) => c.id === "c1");
  assert.ok(conn !== undefined, "the connection has its lane");
  assert.match(conn.label, /^b: /, "its placement is the server end's, on the offload host");
  const places = conn.phases.map((p) => p.placement);
  assert.deepEqual(
    places.filter((p, i) => places.indexOf(p) === i),
    ["host", "offloading", "offloaded", "terminating", "time-wait"],
  );
  // The client closes first: its end waits out 2·MSL (60 s) until the run ends.
  const wait = conn.phases.at(-1);
  assert.ok(
    wait?.placement === "time-wait" && wait.toUs === t.endUs && wait.toUs - wait.fromUs >= 59_000_000,
  );
  for (const p of conn.phases) assert.ok(p.toUs >= p.fromUs);
  assert.ok(t.segments.length > 20);
  assert.ok(t.segments.some((s) => s.connection === "c1" && s.summary.includes("Flags [S]")));
  assert.ok(t.nbls.length > 0, "ledger hand-offs were observed");
  assert.ok(t.nbls.some((n) => n.from === "target" && n.to === "host" && n.bytes > 0));
  const serverReads = t.reads.filter((x) => x.side === "server");
  assert.equal(
    serverReads.reduce((n, x) => n + x.bytes, 0),
    55_000, // the three write phases of seed.yaml: 20,000 + 30,000 held + 5,000 newer
  );
  // Reads are contiguous: each starts where the previous ended.
  let off = 0;
  for (const x of serverReads) {
    assert.equal(x.offset, off);
    off += x.bytes;
  }
  assert.ok(t.narration.some((n) => n.text.includes("TerminateOffload")));
});

void test("a scenario whose expectation cannot hold fails with that check", () => {
  const s = loadScenarioFile(join(SCENARIOS, "seed.yaml"));
  const strict: Scenario = {
    ...s,
    expect: { ...s.expect, atLeast: { initiates: 5 }, atMost: { terminates: 0 } },
  };
  const r = runScenario(strict, 1);
  assert.equal(r.passed, false);
  assert.deepEqual(
    r.checks.filter((c) => !c.ok).map((c) => c.name),
    ["expect initiates >= 5", "expect terminates <= 0"],
  );
});

void test("a run that cannot finish in its duration fails the completion check", () => {
  const s = loadScenarioFile(join(SCENARIOS, "seed.yaml"));
  const r = runScenario({ ...s, durationMs: 100 }, 1);
  assert.equal(r.passed, false);
  assert.equal(r.checks.find((c) => c.name === "every connection finished")?.ok, false);
});

void test("per-direction faults: loss only from b to a still delivers every byte", () => {
  const s = parseScenarioText(
    [
      "name: oneway",
      "link: { bToA: { loss: 0.05 } }",
      "connections:",
      "  - { clientBytes: 30000, serverBytes: 30000 }",
      "schedule:",
      "  - { atMs: 10, op: offload }",
      "  - { atMs: 60, op: terminate }",
    ].join("\n"),
    "oneway.yaml",
  );
  assert.equal(s.link.aToB.loss, undefined);
  assert.equal(s.link.bToA.loss, 0.05);
  const r = runScenario(s, 3);
  assert.ok(r.passed, JSON.stringify(r.checks));
});

const bad: [string, string][] = [
  [
    "name: x\nconnections:\n  - clientBytes: lots\n",
    'connections[0].clientBytes: expected a non-negative integer, found "lots"',
  ],
  [
    "name: x\nfoo: 1\nconnections:\n  - clientBytes: 1\n",
    "foo: unknown field (expected one of: name, description, durationMs, hosts, link, tcp, connections, schedule, expect)",
  ],
  ["name: x\nconnections:\n  - port: 80\n", "connections[0].clientBytes: missing (required)"],
  ["connections:\n  - clientBytes: 1\n", "name: missing (required)"],
  ["name: x\nconnections: []\n", "connections: expected a non-empty list, found a list"],
  [
    "name: x\nconnections:\n  - { clientBytes: 1, port: 70000 }\n",
    "connections[0].port: expected an integer in [1, 65535], found 70000",
  ],
  [
    "name: x\nconnections:\n  - { clientBytes: 1 }\nschedule:\n  - { atMs: 5, op: terminate, conn: zz }\n",
    'schedule[0].conn: expected "*" or a connection id (c0), found "zz"',
  ],
  [
    "name: x\nconnections:\n  - { clientBytes: 1 }\nschedule:\n  - { atMs: 5, op: flap, everyMs: 1 }\n",
    "schedule[0].untilMs: missing (required)",
  ],
  [
    "name: x\nconnections:\n  - { clientBytes: 1 }\nschedule:\n  - { atMs: 5, op: offload, mtu: 1400 }\n",
    "schedule[0].mtu: unknown field (expected one of: atMs, op, host, conn)",
  ],
  [
    "name: x\nhosts: { b: { receive: { post: 2 } } }\nconnections:\n  - { clientBytes: 1 }\n",
    "hosts.b.receive.post: expected a probability in [0, 1], found 2",
  ],
  [
    "name: x\nlink: { aToB: { loss: yes } }\nconnections:\n  - { clientBytes: 1 }\n",
    'link.aToB.loss: expected a probability in [0, 1], found "yes"',
  ],
  [
    "name: x\nconnections:\n  - { clientBytes: 1, serverRead: slowly }\n",
    'connections[0].serverRead: expected "eager", {pausedUntilMs} or {bytesPerTick, tickMs}, found "slowly"',
  ],
  [
    "name: x\nhosts: { a: { offload: false } }\nconnections:\n  - { clientBytes: 1 }\nschedule:\n  - { atMs: 1, op: offload, host: a }\n",
    "schedule[0].host: host a has no offload target (hosts.a.offload is false)",
  ],
  ["name: x\ntcp: { nosuch: 1 }\nconnections:\n  - { clientBytes: 1 }\n", "tcp.nosuch: unknown field"],
  ["- 1\n- 2\n", "expected an object, found a list"],
];

for (const [text, want] of bad) {
  void test(`bad scenario: ${want.slice(0, 60)}`, () => {
    assert.throws(
      () => parseScenarioText(text, "bad.yaml"),
      (e: unknown) => {
        assert.ok(e instanceof CliUsageError);
        assert.ok(!e.message.includes("\n"), "one line");
        assert.ok(e.message.startsWith(`bad.yaml: ${want}`), e.message);
        return true;
      },
    );
  });
}

void test("YAML syntax errors name the file and the line", () => {
  assert.throws(
    () => parseScenarioText("name: x\nconnections: [\n  - clientBytes: 1\n", "s.yaml"),
    /^Error: s\.yaml: line 3, column 3: YAML syntax error: /,
  );
  assert.throws(() => parseScenarioText("{", "s.json"), /^Error: s\.json: not JSON/);
  assert.throws(
    () => loadScenarioFile(join(SCENARIOS, "no-such-file.yaml")),
    /no-such-file\.yaml: cannot read \(no such file\)/,
  );
});

void test("the validator never throws on arbitrary documents (property)", () => {
  const seed = 0x5ce7a210;
  const defaults = tcpDefaults();
  try {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.record({
            name: fc.jsonValue(),
            connections: fc.array(
              fc.dictionary(
                fc.constantFrom("clientBytes", "port", "serverRead", "count", "id"),
                fc.jsonValue(),
              ),
            ),
            schedule: fc.array(
              fc.dictionary(fc.constantFrom("atMs", "op", "conn", "mtu", "mac"), fc.jsonValue()),
            ),
          }),
        ),
        (doc) => {
          const r = validateScenario(doc, { tcpDefaults: defaults });
          if (!r.ok) assert.ok(formatScenarioError(r.error).length > 0);
        },
      ),
      { seed, numRuns: 400 },
    );
  } catch (e) {
    throw new Error(`property failed with fast-check seed ${seed}: ${String(e)}`, { cause: e });
  }
});

void test("the ledger observer sees transfers, returns and loans with their bytes; off by default", () => {
  const l = new BufferLedger();
  assert.equal(l.observer, undefined);
  const seen: string[] = [];
  l.observer = (h) => seen.push(`${h.kind} ${h.op} ${h.from}->${h.to} ${h.bytes}`);
  const n = l.alloc("host", [netBufferOf(new Uint8Array(10), new Uint8Array(5))]);
  l.transfer(n, "host", "target", "Send");
  l.return(n, "target", "SendComplete");
  l.lend(n, "host", "target", "Initiate", () => undefined);
  l.free(n, "host");
  assert.deepEqual(seen, [
    "transfer Send host->target 15",
    "return SendComplete target->host 15",
    "lend Initiate host->target 15",
  ]);
});

void test("stream patterns differ per stream", () => {
  let same = 0;
  for (let i = 0; i < 1000; i++) if (patternByte(0, i) === patternByte(1, i)) same++;
  assert.ok(same < 50);
});

void test("target resource limits: a target without TCP capacity fails the initiate; data still flows on the host", () => {
  const s = parseScenarioText(
    [
      "name: full-target",
      "hosts: { b: { limits: { tcp: 0 } } }",
      "connections:",
      "  - { clientBytes: 20000, serverBytes: 20000, clientWriteFromMs: 20, serverWriteFromMs: 20 }",
      "schedule:",
      "  - { atMs: 10, op: offload }",
      "expect:",
      "  atLeast: { initiateFailures: 1 }",
      "  atMost: { terminates: 0 }",
    ].join("\n"),
    "full.yaml",
  );
  const r = runScenario(s, 1);
  assert.ok(r.passed, JSON.stringify(r.checks));
  assert.equal(r.counters["initiates"], 1);
  assert.equal(r.counters["initiateFailures"], 1);
});

void test("per-direction faults reach the link: a slow b -> a direction delays only the replies", () => {
  const mk = (link: string) =>
    parseScenarioText(`name: d\nlink: ${link}\nconnections:\n  - { clientBytes: 10 }\n`, "d.yaml");
  const connectedAt = (link: string) =>
    runScenario(mk(link), 1).timeline.narration.find((n) => n.text.startsWith("client connected"))?.atUs;
  // ARP request a>b, reply b>a, SYN a>b, SYN-ACK b>a: two trips each way.
  assert.equal(connectedAt("{ delayUs: 1000 }"), 4000);
  assert.equal(connectedAt("{ delayUs: 1000, bToA: { delayUs: 5000 } }"), 12_000);
  assert.equal(connectedAt("{ delayUs: 1000, aToB: { delayUs: 5000 } }"), 12_000);
});

void test("the terminate storm uploads all sixteen connections at the neighbor invalidation", () => {
  const r = runScenario(loadScenarioFile(join(SCENARIOS, "terminate-storm.yaml")), 1);
  assert.ok(r.passed);
  const at = r.timeline.narration.find((n) => n.text.includes("InvalidateOffload neighbor"))?.atUs;
  assert.ok(at !== undefined);
  const uploads = r.timeline.narration.filter(
    (n) => n.atUs === at && n.text.startsWith("b: TerminateOffloadComplete"),
  );
  assert.equal(uploads.length, 16);
  assert.equal(new Set(uploads.map((n) => n.connection)).size, 16, "one per connection");
});

void test("clientWrites: phases are written from their times on; clientBytes must be their sum", () => {
  const doc = (conn: Record<string, unknown>) => ({
    name: "phases",
    connections: [{ id: "c", ...conn }],
  });
  const good = validateScenario(
    doc({
      clientWrites: [
        { atMs: 0, bytes: 1000 },
        { atMs: 30, bytes: 2000 },
      ],
    }),
    { tcpDefaults: tcpDefaults() },
  );
  assert.ok(good.ok);
  assert.equal(good.value.connections[0]?.clientBytes, 3000);
  const r = runScenario(good.value, 3);
  assert.ok(
    r.passed,
    `seed 3: ${r.checks
      .filter((c) => !c.ok)
      .map((c) => c.detail)
      .join("; ")}`,
  );
  // The second phase's first byte is read no earlier than its phase starts.
  const late = r.timeline.reads.find((x) => x.side === "server" && x.offset + x.bytes > 1000);
  assert.ok(late !== undefined && late.atUs >= 30_000, `read of byte 1000 at ${late?.atUs} us`);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ clientWrites: [], clientBytes: 0 }, /clientWrites/],
    [
      {
        clientWrites: [
          { atMs: 5, bytes: 1 },
          { atMs: 1, bytes: 1 },
        ],
      },
      /clientWrites\[1\]\.atMs/,
    ],
    [{ clientWrites: [{ atMs: 0, bytes: 1 }], clientBytes: 2 }, /differs from the sum/],
    [{ clientWrites: [{ atMs: 0, bytes: 1 }], clientWriteFromMs: 3 }, /exclude each other/],
  ];
  for (const [conn, want] of bad) {
    const v = validateScenario(doc(conn), { tcpDefaults: tcpDefaults() });
    assert.ok(!v.ok, JSON.stringify(conn));
    assert.match(formatScenarioError(v.error), want);
  }
});
