// The timeline of every shipped scenario, as the report lays it out: one lane per connection,
// and every event of a connection (segments both ways, reads, the manager's operations, NBL
// hand-offs) carries that lane's id, so nothing of a known connection lands in "Other traffic".
// The active span (the report's default view) covers the connections' traffic and leaves out
// the idle tail (TIME-WAIT, neighbor refreshes), which a "time-wait" band shows instead.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadScenarioFile } from "../src/cli/commands/run.js";
import { activeSpan, type Timeline } from "../src/report/timeline.js";
import { runScenario } from "../src/scenario/run.js";
import type { Scenario } from "../src/scenario/schema.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("package.json not found above the test");
    dir = up;
  }
  return dir;
}

const SCENARIOS = join(repoRoot(), "scenarios");
const shipped = readdirSync(SCENARIOS)
  .filter((f) => f.endsWith(".yaml") || f.endsWith(".json"))
  .sort();
const SEED = 1;

/** The connection ids a scenario declares (`id`, or `id#k` for a group), with the sides that read. */
function declared(s: Scenario): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const c of s.connections) {
    const readers = [...(c.serverBytes > 0 ? ["client"] : []), ...(c.clientBytes > 0 ? ["server"] : [])];
    for (let k = 0; k < c.count; k++) out.set(c.count === 1 ? c.id : `${c.id}#${k}`, readers);
  }
  return out;
}

/** The port pair of a TCP segment's one-liner (`... 192.0.2.1.49152 > 192.0.2.2.80: Flags ...`). */
function ports(summary: string): string | undefined {
  const m = /\.(\d+) > \S+\.(\d+): Flags \[/.exec(summary);
  return m === null ? undefined : [Number(m[1]), Number(m[2])].sort((p, q) => p - q).join("|");
}

/** Per lane, what the report counts (the same grouping: a known id, or "Other traffic"). */
function laneContents(t: Timeline) {
  const ids = new Set(t.connections.map((c) => c.id));
  const lanes = new Map<string, { aToB: number; bToA: number; nbls: number; sides: Set<string> }>();
  for (const id of ids) lanes.set(id, { aToB: 0, bToA: 0, nbls: 0, sides: new Set() });
  const lane = (c: string | undefined) => (c === undefined ? undefined : lanes.get(c));
  const other = { tcpSegments: [] as string[], nbls: [] as string[], reads: 0 };
  for (const s of t.segments) {
    const l = lane(s.connection);
    if (l === undefined) {
      if (ports(s.summary) !== undefined) other.tcpSegments.push(s.summary);
    } else if (s.direction === "a>b") l.aToB++;
    else l.bToA++;
  }
  for (const h of t.nbls) {
    const l = lane(h.connection);
    if (l === undefined) other.nbls.push(`NBL #${h.nbl} ${h.op}`);
    else l.nbls++;
  }
  for (const r of t.reads) {
    const l = lane(r.connection);
    if (l === undefined) other.reads++;
    else l.sides.add(r.side);
  }
  return { lanes, other };
}

void describe(`shipped scenarios' timelines, one lane per connection (seed ${SEED})`, () => {
  for (const file of shipped) {
    void test(`scenarios/${file}: each lane holds its connection's segments, reads and NBL hand-offs`, () => {
      const s = loadScenarioFile(join(SCENARIOS, file));
      const r = runScenario(s, SEED);
      const t = r.timeline;
      const where = `scenarios/${file} seed ${SEED}`;
      assert.ok(r.passed, `${where}: the run itself failed`);
      const readers = declared(s);
      const ids = [...readers.keys()];
      assert.deepEqual(
        t.connections.map((c) => c.id),
        ids,
        `${where}: one lane per declared connection`,
      );

      const { lanes, other } = laneContents(t);
      assert.deepEqual(other.tcpSegments.slice(0, 3), [], `${where}: TCP segments in "Other traffic"`);
      assert.deepEqual(other.nbls.slice(0, 3), [], `${where}: NBL hand-offs in "Other traffic"`);
      assert.equal(other.reads, 0, `${where}: reads in "Other traffic"`);

      // Each lane's segments are its own: one port pair per lane, no pair shared by two lanes.
      const pairOf = new Map<string, string>();
      for (const seg of t.segments) {
        const p = ports(seg.summary);
        if (p === undefined || seg.connection === undefined) continue;
        const seen = pairOf.get(seg.connection) ?? p;
        assert.equal(p, seen, `${where}: lane ${seg.connection} holds ${seg.summary}`);
        pairOf.set(seg.connection, p);
      }
      assert.equal(new Set(pairOf.values()).size, ids.length, `${where}: lanes share a port pair`);

      let offloadedLanes = 0;
      for (const c of t.connections) {
        const l = lanes.get(c.id);
        assert.ok(l !== undefined);
        assert.ok(l.aToB > 0 && l.bToA > 0, `${where}: lane ${c.id} has ${l.aToB} / ${l.bToA} segments`);
        assert.deepEqual([...l.sides].sort(), readers.get(c.id), `${where}: lane ${c.id} reads`);
        if (c.phases.some((p) => p.placement === "offloaded")) {
          offloadedLanes++;
          assert.ok(l.nbls > 0, `${where}: lane ${c.id} was offloaded but holds no NBL hand-off`);
        }
      }
      if ((r.counters["initiates"] ?? 0) > 0)
        assert.ok(offloadedLanes > 0, `${where}: initiates happened but no lane shows an offloaded span`);

      // The default view: every segment of a connection inside it, the idle tail (TIME-WAIT,
      // neighbor refreshes) outside; the client closes first, so each lane ends in TIME-WAIT.
      const active = activeSpan(t);
      for (const seg of t.segments)
        if (seg.connection !== undefined)
          assert.ok(seg.atUs >= active.fromUs && seg.atUs <= active.toUs, `${where}: ${seg.atUs} µs outside`);
      assert.ok(
        active.toUs - active.fromUs < t.endUs / 10,
        `${where}: active span ${active.fromUs}..${active.toUs} of a ${t.endUs} µs run`,
      );
      for (const c of t.connections) {
        const wait = c.phases.find((p) => p.placement === "time-wait");
        assert.ok(wait !== undefined && wait.toUs - wait.fromUs > 50_000_000, `${where}: ${c.id} TIME-WAIT`);
      }

      // The manager's per-connection steps name the lane too.
      for (const n of t.narration) {
        if (
          /^[ab]: (InitiateOffload|InitiateOffloadComplete|TerminateOffloadComplete|ReceiveIndicate)\b/.test(
            n.text,
          )
        )
          assert.ok(n.connection !== undefined && ids.includes(n.connection), `${where}: "${n.text}"`);
      }
    });
  }
});
