// The report's pure parts: escaping, the embedded JSON, the page's static structure, units, and
// reading a Timeline back from JSON with errors that name the field.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  escapeHtml,
  formatBytes,
  formatMicros,
  jsonForScript,
  renderTimelineHtml,
} from "../../src/report/html.js";
import { describeShapeError, parseTimeline } from "../../src/report/parse.js";
import { sampleTimeline } from "../support/sample-timeline.js";
import { activeSpan, type Timeline } from "../../src/report/timeline.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 200 });
process.stdout.write(`# fast-check seed ${SEED}\n`);

/** The JSON embedded in a rendered page, parsed back. */
function embedded(html: string): unknown {
  const m = /<script type="application\/json" id="timeline-data">([^<]*)<\/script>/.exec(html);
  assert.ok(m !== null, "no timeline-data element");
  return JSON.parse(m[1]!);
}

/** What a timeline looks like after a trip through JSON (undefined fields vanish). */
function viaJson(t: Timeline): unknown {
  return JSON.parse(JSON.stringify(t));
}

void describe("escaping", () => {
  void test("escapeHtml turns every markup character into an entity", () => {
    assert.equal(
      escapeHtml(`<a href="x" title='y'>&</a>`),
      "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        const e = escapeHtml(s);
        assert.ok(!/[<>"']/.test(e));
        const back: Record<string, string> = {
          "&lt;": "<",
          "&gt;": ">",
          "&quot;": '"',
          "&#39;": "'",
          "&amp;": "&",
        };
        assert.equal(
          e.replace(/&lt;|&gt;|&quot;|&#39;|&amp;/g, (m) => back[m] ?? m),
          s,
        );
      }),
    );
  });
  void test("jsonForScript has no '<' and parses back to the same value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (v, s) => {
        for (const x of [v, s, { s: `</script>${s}<!--` }]) {
          const j = jsonForScript(x);
          assert.ok(!j.includes("<"), j);
          assert.ok(!j.includes("\u2028") && !j.includes("\u2029"));
          assert.deepEqual(JSON.parse(j), JSON.parse(JSON.stringify(x)));
        }
      }),
    );
  });
});

void describe("units", () => {
  void test("times and bytes read with their unit", () => {
    assert.equal(formatMicros(0), "0 µs");
    assert.equal(formatMicros(850), "850 µs");
    assert.equal(formatMicros(40_125), "40.125 ms");
    assert.equal(formatMicros(10_000), "10 ms");
    assert.equal(formatMicros(2_500_000), "2.5 s");
    assert.equal(formatBytes(512), "512 B");
    assert.equal(formatBytes(96 * 1024), "96 KiB");
    assert.equal(formatBytes(1.5 * 1024 * 1024), "1.5 MiB");
  });
});

void describe("activeSpan", () => {
  /** The sample run followed by a minute of idle tail: a neighbor refresh and TIME-WAIT. */
  function withIdleTail(): Timeline {
    const t = sampleTimeline();
    const endUs = 60_050_000;
    return {
      ...t,
      endUs,
      connections: t.connections.map((c) => ({
        ...c,
        phases: [...c.phases, { placement: "time-wait" as const, fromUs: t.endUs, toUs: endUs }],
      })),
      segments: [
        ...t.segments,
        {
          atUs: 5_000_000,
          direction: "b>a",
          connection: undefined,
          summary: "ARP",
          bytes: 42,
          dropped: false,
        },
      ],
      narration: [...t.narration, { atUs: 5_000_100, connection: undefined, text: "neighbor refreshed" }],
    };
  }
  void test("runs from the first event to the last event of a connection, not into the idle tail", () => {
    const t = withIdleTail();
    const a = activeSpan(t);
    const times = (xs: readonly { atUs: number; connection?: string | undefined }[], known: boolean) =>
      xs.filter((x) => !known || x.connection !== undefined).map((x) => x.atUs);
    const all = [t.segments, t.nbls, t.reads, t.narration].flatMap((xs) => times(xs, false));
    const ofConnections = [t.segments, t.nbls, t.reads, t.narration].flatMap((xs) => times(xs, true));
    assert.equal(a.fromUs, Math.min(...all));
    assert.equal(a.toUs, Math.max(...ofConnections));
    assert.ok(a.toUs < 50_000, `active span ends at ${a.toUs}`);
    const html = renderTimelineHtml(t);
    assert.match(html, new RegExp(`id="range" [^>]*data-from-us="${a.fromUs}" data-to-us="${a.toUs}"`));
    assert.match(html, new RegExp(`"active":\\{"fromUs":${a.fromUs},"toUs":${a.toUs}\\}`));
  });
  void test("without connection events it ends at the last event; without events it is the whole run", () => {
    const t = sampleTimeline({ segments: 10 });
    const bare: Timeline = {
      ...t,
      connections: [],
      nbls: [],
      reads: [],
      narration: [],
      segments: t.segments.map((s) => ({ ...s, connection: undefined })),
    };
    assert.deepEqual(activeSpan(bare), {
      fromUs: Math.min(...bare.segments.map((s) => s.atUs)),
      toUs: Math.max(...bare.segments.map((s) => s.atUs)),
    });
    assert.deepEqual(activeSpan({ ...bare, segments: [], endUs: 1234 }), { fromUs: 0, toUs: 1234 });
  });
});

void describe("renderTimelineHtml", () => {
  const t = sampleTimeline();
  const html = renderTimelineHtml(t);
  void test("is one self-contained page: no external resource", () => {
    assert.ok(html.startsWith("<!DOCTYPE html>"));
    assert.doesNotMatch(html, /<link\b|<script[^>]+src=|@import|url\(\s*["']?https?:|src="https?:/i);
    assert.equal(html.match(/<\/script>/g)?.length, 3, "exactly the two data elements and the script end");
  });
  void test("embeds the timeline as JSON that reads back unchanged", () => {
    assert.deepEqual(embedded(html), viaJson(t));
  });
  void test("header carries seed and verdict; one lane per connection plus other traffic", () => {
    assert.match(html, /seed <b id="seed">42<\/b>/);
    assert.match(html, /<span class="badge">PASS<\/span>/);
    assert.match(renderTimelineHtml(sampleTimeline({ passed: false })), /<span class="badge">FAIL<\/span>/);
    const lanes = [...html.matchAll(/<section class="lane" data-connection="([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(lanes, ["c1", "c2", "c3", "(other-traffic)"]);
    const spans = [...html.matchAll(/class="span" data-placement="(\w+)"/g)].length;
    assert.equal(
      spans,
      t.connections.reduce((n, c) => n + c.phases.length, 0),
    );
    assert.equal(html.match(/<li><button type="button" data-at-us=/g)?.length, t.narration.length);
  });
  void test("hostile strings never become markup, in text or in the data", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        const evil = `</script><script>x(1)</script>${a}<img src=x onerror=y>`;
        const h = renderTimelineHtml({
          ...sampleTimeline({ segments: 10 }),
          title: evil,
          scenario: b,
          narration: [{ atUs: 1, connection: "c1", text: `${b}</script>` }],
        });
        assert.equal(h.match(/<script/g)?.length, 3);
        assert.equal(h.match(/<img/g), null);
        assert.ok(h.includes(escapeHtml(evil)));
        const back = embedded(h) as { title: string };
        assert.equal(back.title, evil);
      }),
      { numRuns: 50 },
    );
  });
  void test("an empty run renders", () => {
    const empty: Timeline = {
      title: "empty",
      scenario: "none",
      seed: 1,
      verdict: { passed: true, checks: [] },
      endUs: 0,
      connections: [],
      segments: [],
      nbls: [],
      reads: [],
      narration: [],
    };
    const h = renderTimelineHtml(empty);
    assert.match(h, /No connections in this run/);
    assert.match(h, /no checks recorded/);
    assert.deepEqual(embedded(h), viaJson(empty));
  });
});

void describe("parseTimeline", () => {
  void test("reads back what JSON.stringify wrote, missing connections as undefined", () => {
    const t = sampleTimeline({ segments: 300 });
    const r = parseTimeline(JSON.parse(JSON.stringify(t)));
    assert.ok(r.ok);
    assert.deepEqual(r.value, t);
  });
  void test("names the first wrong field and what belongs there", () => {
    const good = viaJson(sampleTimeline({ segments: 20 })) as Record<string, unknown>;
    const cases: [unknown, string][] = [
      [[], "(root): expected an object, found an array"],
      [{ ...good, seed: "42" }, 'seed: expected a finite number, found the string "42"'],
      [
        { ...good, verdict: { passed: "yes", checks: [] } },
        'verdict.passed: expected true or false, found the string "yes"',
      ],
      [{ ...good, connections: {} }, "connections: expected an array, found an object"],
      [
        { ...good, segments: [{ atUs: 1, direction: "a>b", summary: "x", bytes: -1, dropped: false }] },
        "segments[0].bytes: expected a non-negative integer, found the number -1",
      ],
      [
        {
          ...good,
          connections: [{ id: "c", label: "l", phases: [{ placement: "moon", fromUs: 0, toUs: 1 }] }],
        },
        'connections[0].phases[0].placement: expected one of host, offloading, offloaded, terminating, time-wait, found the string "moon"',
      ],
      [
        {
          ...good,
          connections: [{ id: "c", label: "l", phases: [{ placement: "host", fromUs: 5, toUs: 1 }] }],
        },
        "connections[0].phases[0].toUs: expected a time not before fromUs (5), found the number 1",
      ],
      [{ ...good, reads: [null] }, "reads[0]: expected an object, found null"],
      [{ ...good, narration: undefined }, "narration: expected an array, found nothing"],
    ];
    for (const [value, message] of cases) {
      const r = parseTimeline(value);
      assert.ok(!r.ok, message);
      assert.equal(r.error.code, "not-a-timeline");
      assert.equal(describeShapeError(r.error), message);
    }
  });
  void test("never throws on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = parseTimeline(v);
        assert.ok(!r.ok);
      }),
    );
  });
});
