/**
 * The timeline report: one self-contained HTML file (inline CSS, inline script, canvas drawing, no
 * network) that shows a run as lanes, one per connection, on a shared zoomable time axis.
 *
 * Theory of operation. Everything that is text (title, checks, labels, narration) is rendered
 * here, on the server side, as escaped HTML, so the page reads even before its script runs. The
 * whole `Timeline` also goes into the page as JSON inside `<script type="application/json">`
 * (every `<` escaped, so no `</script>` can end it early). The page's script indexes that data
 * per lane and track (sorted time arrays), and draws each track on its own canvas for the visible
 * window `[fromUs, toUs)`. When a track has more items in view than pixels can show, it draws one
 * bar per pixel column (count, drops, owners) instead of one mark per item, so 50k segments cost
 * one pass per frame. Hover hit-tests by binary search on the time arrays. The visible window is
 * published as `data-from-us` / `data-to-us` on the `#range` element.
 *
 * The page opens on the run's active span (`activeSpan`: first event to the last event of a
 * connection, with a small margin), which "Fit" returns to; "Whole run" and zooming out reach the
 * idle tail (a TIME-WAIT of 60 s after 400 ms of traffic), shown as a "time-wait" band.
 *
 * This module is pure: a `Timeline` in, a string out.
 */
import { activeSpan, type Placement, type Timeline } from "./timeline.js";

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => {
    switch (c) {
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      case '"':
        return "&quot;";
      default:
        return "&#39;";
    }
  });
}

/**
 * JSON that is safe inside a `<script>` element: `<` (hence `</script` and `<!--`), and the line
 * separators U+2028/U+2029 are written as `\u` escapes, which `JSON.parse` reads back unchanged.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** A time in microseconds with a readable unit: `850 µs`, `40.125 ms`, `2.5 s`. */
export function formatMicros(us: number): string {
  const a = Math.abs(us);
  if (a < 1000) return `${trim(us.toFixed(a < 10 && us % 1 !== 0 ? 1 : 0))} µs`;
  if (a < 1_000_000) return `${trim((us / 1000).toFixed(3))} ms`;
  return `${trim((us / 1_000_000).toFixed(6))} s`;
}

function trim(s: string): string {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

/** A byte count with a binary unit: `512 B`, `96 KiB`, `1.5 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${trim((n / 1024).toFixed(1))} KiB`;
  return `${trim((n / (1024 * 1024)).toFixed(2))} MiB`;
}

const PLACEMENTS: readonly { readonly key: Placement; readonly color: string; readonly text: string }[] = [
  { key: "host", color: "#0072B2", text: "#ffffff" },
  { key: "offloading", color: "#E69F00", text: "#1b1f24" },
  { key: "offloaded", color: "#009E73", text: "#ffffff" },
  { key: "terminating", color: "#D55E00", text: "#ffffff" },
  { key: "time-wait", color: "#D0D7DE", text: "#1b1f24" },
];

/** Owner colours (Okabe-Ito): `host` and `target` match the placement colours. */
const OWNER_PALETTE = ["#CC79A7", "#56B4E9", "#8C6D1F", "#6A3D9A", "#999999", "#117733"];
const SIDE_PALETTE = ["#6A3D9A", "#B15928", "#117733", "#882255"];

/** Lane id of traffic without a (known) connection; not a valid HTML-parser-hostile character. */
const OTHER_LANE = "(other-traffic)";

function ownerColors(t: Timeline): Map<string, string> {
  const owners = new Set<string>();
  for (const h of t.nbls) {
    owners.add(h.from);
    owners.add(h.to);
  }
  const m = new Map<string, string>();
  let i = 0;
  for (const o of [...owners].sort()) {
    const lower = o.toLowerCase();
    if (lower.startsWith("host")) m.set(o, "#0072B2");
    else if (lower.startsWith("target")) m.set(o, "#009E73");
    else m.set(o, OWNER_PALETTE[i++ % OWNER_PALETTE.length] ?? "#999999");
  }
  return m;
}

function sideColors(t: Timeline): Map<string, string> {
  const sides = [...new Set(t.reads.map((r) => r.side))].sort();
  return new Map(sides.map((s, i) => [s, SIDE_PALETTE[i % SIDE_PALETTE.length] ?? "#666666"]));
}

interface LaneInfo {
  readonly id: string;
  readonly label: string;
  readonly segments: number;
  readonly dropped: number;
  readonly handoffs: number;
  readonly readBytes: Map<string, number>;
  readonly placementUs: Map<Placement, number>;
  readonly hasPhases: boolean;
}

function lanes(t: Timeline): LaneInfo[] {
  const ids = new Set(t.connections.map((c) => c.id));
  const key = (c: string | undefined) => (c !== undefined && ids.has(c) ? c : OTHER_LANE);
  const info = new Map<string, LaneInfo>();
  const make = (id: string, label: string, hasPhases: boolean): LaneInfo => ({
    id,
    label,
    segments: 0,
    dropped: 0,
    handoffs: 0,
    readBytes: new Map(),
    placementUs: new Map(),
    hasPhases,
  });
  for (const c of t.connections) {
    const l = make(c.id, c.label, true);
    for (const p of c.phases)
      l.placementUs.set(p.placement, (l.placementUs.get(p.placement) ?? 0) + p.toUs - p.fromUs);
    info.set(c.id, l);
  }
  const other = make(OTHER_LANE, "Other traffic (no connection)", false);
  const mut = new Map<string, { segments: number; dropped: number; handoffs: number }>();
  const counts = (id: string) => {
    let c = mut.get(id);
    if (c === undefined) {
      c = { segments: 0, dropped: 0, handoffs: 0 };
      mut.set(id, c);
    }
    return c;
  };
  for (const s of t.segments) {
    const c = counts(key(s.connection));
    c.segments++;
    if (s.dropped) c.dropped++;
  }
  for (const h of t.nbls) counts(key(h.connection)).handoffs++;
  for (const r of t.reads) {
    const l = info.get(key(r.connection)) ?? other;
    l.readBytes.set(r.side, (l.readBytes.get(r.side) ?? 0) + r.bytes);
  }
  const out: LaneInfo[] = [];
  for (const l of [...info.values(), other]) {
    const c = mut.get(l.id) ?? { segments: 0, dropped: 0, handoffs: 0 };
    if (l === other && c.segments + c.handoffs === 0 && l.readBytes.size === 0) continue;
    out.push({ ...l, ...c });
  }
  return out;
}

function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function laneHtml(l: LaneInfo, t: Timeline, directions: readonly string[], sides: readonly string[]): string {
  const stats: string[] = [`${thousands(l.segments)} segments`];
  if (l.dropped > 0) stats.push(`${thousands(l.dropped)} dropped`);
  stats.push(`${thousands(l.handoffs)} NBL hand-offs`);
  for (const [side, b] of [...l.readBytes].sort()) stats.push(`${side} read ${formatBytes(b)}`);
  if (l.hasPhases) {
    for (const p of PLACEMENTS) {
      const us = l.placementUs.get(p.key);
      if (us !== undefined && us > 0) stats.push(`${p.key} ${formatMicros(us)}`);
    }
  }
  const e = escapeHtml;
  const conn = t.connections.find((c) => c.id === l.id);
  const spans = (conn?.phases ?? [])
    .map((p) => {
      const what = `${p.placement} from ${formatMicros(p.fromUs)} to ${formatMicros(p.toUs)}`;
      return `<div class="span" data-placement="${p.placement}" data-from-us="${p.fromUs}" data-to-us="${p.toUs}" aria-label="${e(what)}"><span>${p.placement}</span></div>`;
    })
    .join("");
  const track = (kind: string, name: string, extra: string, body: string) =>
    `<div class="track track-${kind}"><div class="track-name" title="${e(name)}">${e(name)}</div><div class="plot">${body}${extra}</div></div>`;
  const rows: string[] = [];
  if (l.hasPhases) rows.push(track("placement", "placement", "", `<div class="phases">${spans}</div>`));
  for (const d of directions)
    rows.push(
      track(
        "wire",
        `wire ${d}`,
        "",
        `<canvas data-track="wire" data-dir="${e(d)}" role="img" aria-label="${e(`segments ${d}`)}"></canvas>`,
      ),
    );
  if (l.hasPhases || l.handoffs > 0)
    rows.push(
      track(
        "nbl",
        "NBL owners",
        "",
        `<canvas data-track="nbl" role="img" aria-label="NBL hand-offs"></canvas>`,
      ),
    );
  if (sides.length > 0 && (l.hasPhases || l.readBytes.size > 0))
    rows.push(
      track(
        "reads",
        "app reads",
        "",
        `<canvas data-track="reads" role="img" aria-label="application reads, cumulative bytes"></canvas>`,
      ),
    );
  return `<section class="lane" data-connection="${e(l.id)}" aria-label="${e(l.label)}">
<h2><span class="lane-label">${e(l.label)}</span> <span class="lane-id">${l.id === OTHER_LANE ? "" : e(l.id)}</span></h2>
<p class="lane-stats">${e(stats.join(" · "))}</p>
<div class="tracks">${rows.join("\n")}</div>
</section>`;
}

function legendHtml(owners: Map<string, string>, sides: Map<string, string>): string {
  const e = escapeHtml;
  const sw = (color: string, label: string, cls = "sw") =>
    `<span class="key"><span class="${cls}" style="background:${color}"></span>${e(label)}</span>`;
  const parts = [
    `<span class="legend-group"><span class="legend-title">Placement</span>${PLACEMENTS.map((p) => sw(p.color, p.key)).join("")}</span>`,
    `<span class="legend-group"><span class="legend-title">Wire</span><span class="key"><span class="tick"></span>segment (taller = data)</span><span class="key"><span class="tick drop"></span>dropped</span><span class="key"><span class="sw agg"></span>many per pixel (zoom in)</span></span>`,
  ];
  if (owners.size > 0)
    parts.push(
      `<span class="legend-group"><span class="legend-title">NBL goes to</span>${[...owners].map(([o, c]) => sw(c, o, "sw diamond")).join("")}</span>`,
    );
  if (sides.size > 0)
    parts.push(
      `<span class="legend-group"><span class="legend-title">Bytes read</span>${[...sides].map(([s, c]) => sw(c, s, "sw line")).join("")}</span>`,
    );
  return parts.join("");
}

/** Renders a run as one self-contained HTML page (no external resources). */
export function renderTimelineHtml(t: Timeline): string {
  const e = escapeHtml;
  const owners = ownerColors(t);
  const sides = sideColors(t);
  const directions = [...new Set(t.segments.map((s) => s.direction))].sort();
  const labels = new Map(t.connections.map((c) => [c.id, c.label]));
  const dropped = t.segments.reduce((n, s) => n + (s.dropped ? 1 : 0), 0);
  const checks = t.verdict.checks
    .map(
      (c) =>
        `<li class="${c.ok ? "ok" : "bad"}"><span class="mark" aria-hidden="true">${c.ok ? "✓" : "✗"}</span> <b>${e(c.name)}</b> <span class="sr">${c.ok ? "passed" : "failed"}</span>${c.detail === "" ? "" : ` <span class="detail">${e(c.detail)}</span>`}</li>`,
    )
    .join("");
  const narration = [...t.narration]
    .map((n, i) => ({ n, i }))
    .sort((a, b) => a.n.atUs - b.n.atUs || a.i - b.i)
    .map(({ n }) => {
      const who =
        n.connection === undefined
          ? ""
          : `<span class="who">${e(labels.get(n.connection) ?? n.connection)}</span> `;
      return `<li><button type="button" data-at-us="${n.atUs}"><time>${e(formatMicros(n.atUs))}</time> ${who}<span class="text">${e(n.text)}</span></button></li>`;
    })
    .join("\n");
  const active = activeSpan(t);
  const style = {
    owners: Object.fromEntries(owners),
    sides: Object.fromEntries(sides),
    placements: Object.fromEntries(PLACEMENTS.map((p) => [p.key, p.color])),
    other: OTHER_LANE,
    active,
  };
  const verdictWord = t.verdict.passed ? "PASS" : "FAIL";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(t.title)} · seed ${e(String(t.seed))} · ${verdictWord}</title>
<style>${CSS}
${PLACEMENTS.map((p) => `.span[data-placement="${p.key}"]{background:${p.color};color:${p.text}}`).join("\n")}
</style>
</head>
<body>
<header class="top">
<div class="title">
<h1>${e(t.title)}</h1>
<p class="meta">scenario <b>${e(t.scenario)}</b> · seed <b id="seed">${e(String(t.seed))}</b> · ${e(formatMicros(t.endUs))} simulated · ${thousands(t.connections.length)} connections · ${thousands(t.segments.length)} segments${dropped > 0 ? ` (${thousands(dropped)} dropped)` : ""} · ${thousands(t.nbls.length)} NBL hand-offs</p>
</div>
<div class="verdict ${t.verdict.passed ? "pass" : "fail"}" id="verdict">
<span class="badge">${verdictWord}</span>
<ul class="checks">${checks === "" ? "<li>no checks recorded</li>" : checks}</ul>
</div>
</header>
<div class="sticky">
<div class="controls" role="toolbar" aria-label="time axis">
<button type="button" id="zoom-in" title="Zoom in (+)">Zoom in</button>
<button type="button" id="zoom-out" title="Zoom out (−)">Zoom out</button>
<button type="button" id="zoom-fit" title="Fit the active span, without the idle tail (0)">Fit</button>
<button type="button" id="zoom-all" title="Show the whole run, idle tail included (W)">Whole run</button>
<output id="range" aria-live="polite" data-from-us="${active.fromUs}" data-to-us="${active.toUs}">${e(formatMicros(active.fromUs))} – ${e(formatMicros(active.toUs))}</output>
<span class="hint">wheel: zoom at pointer · drag: pan · click a narration step to jump</span>
</div>
<div class="axis-row"><div class="track-name">time</div><div class="plot"><canvas id="axis" role="img" aria-label="time axis"></canvas></div></div>
</div>
<div class="legend">${legendHtml(owners, sides)}</div>
<main id="lanes">
${lanes(t)
  .map((l) => laneHtml(l, t, directions, [...sides.keys()]))
  .join("\n")}
${t.connections.length === 0 ? '<p class="empty">No connections in this run.</p>' : ""}
<div id="cursor" aria-hidden="true"></div><div id="marker" aria-hidden="true"></div>
</main>
<section class="narration-box">
<h2>Narration</h2>
${narration === "" ? '<p class="empty">No narration.</p>' : `<ol class="narration">${narration}</ol>`}
</section>
<div id="tip" role="tooltip" hidden></div>
<script type="application/json" id="timeline-data">${jsonForScript(t)}</script>
<script type="application/json" id="timeline-style">${jsonForScript(style)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

const CSS = `
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--panel:#f6f8fa;--name-w:132px;--pad:24px}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:#fff}
.top{display:flex;flex-wrap:wrap;gap:16px 32px;justify-content:space-between;align-items:flex-start;padding:16px var(--pad) 12px;border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:0 0 4px;font-weight:650}
.meta{margin:0;color:var(--muted)} .meta b{color:var(--ink)}
.verdict{display:flex;gap:12px;align-items:flex-start;padding:8px 12px;border-radius:8px;border:1px solid var(--line);max-width:640px}
.verdict.pass{background:#eef9f1;border-color:#8fd19e} .verdict.fail{background:#fff1f0;border-color:#f4a7a3}
.badge{font-weight:800;letter-spacing:.06em;padding:3px 10px;border-radius:6px;color:#fff}
.pass .badge{background:#1a7f37} .fail .badge{background:#cf222e}
.checks{list-style:none;margin:0;padding:0;font-size:13px}
.checks .mark{display:inline-block;width:1.1em;font-weight:800}
.checks .ok .mark{color:#1a7f37} .checks .bad .mark{color:#cf222e} .checks .bad b{color:#a40e26}
.checks .detail{color:var(--muted)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.sticky{position:sticky;top:0;z-index:5;background:rgba(255,255,255,.97);border-bottom:1px solid var(--line);padding:8px var(--pad) 0}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
button{font:inherit;font-size:13px;padding:4px 12px;border:1px solid #8c959f;border-radius:6px;background:#fff;color:var(--ink);cursor:pointer}
button:hover{background:#eef1f4} button:focus-visible{outline:2px solid #0969da;outline-offset:1px}
#range{font-variant-numeric:tabular-nums;font-weight:600;margin-left:8px}
.hint{color:var(--muted);font-size:12px;margin-left:auto}
.axis-row,.track{display:grid;grid-template-columns:var(--name-w) minmax(0,1fr)}
.axis-row canvas{height:30px}
.track-name{font-size:12px;color:var(--muted);text-align:right;padding:0 10px 0 0;align-self:center;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.plot{position:relative;min-width:0}
canvas{display:block;width:100%}
.legend{display:flex;flex-wrap:wrap;gap:6px 22px;padding:8px var(--pad);font-size:12px;color:var(--muted);border-bottom:1px solid var(--line);background:var(--panel)}
.legend-group{display:inline-flex;flex-wrap:wrap;gap:4px 10px;align-items:center}
.legend-title{font-weight:650;color:var(--ink)}
.key{display:inline-flex;align-items:center;gap:4px}
.sw{display:inline-block;width:14px;height:10px;border-radius:2px}
.sw.diamond{width:9px;height:9px;transform:rotate(45deg);border-radius:1px}
.sw.line{height:3px;width:16px}
.sw.agg{background:#57606a;opacity:.55}
.tick{display:inline-block;width:2px;height:12px;background:#24292f}
.tick.drop{background:#cf222e;width:3px}
main{position:relative;padding:4px var(--pad) 8px}
.lane{margin:10px 0;border:1px solid var(--line);border-radius:8px;padding:6px 10px 8px 0;background:#fff}
.lane h2{font-size:14px;margin:0 0 0 10px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-weight:650}
.lane-id{color:var(--muted);font-weight:400;font-size:12px}
.lane-stats{margin:0 0 4px 10px;font-size:12px;color:var(--muted)}
.tracks{display:flex;flex-direction:column;gap:2px}
.track-placement .plot{height:24px}
.phases{position:absolute;inset:0;overflow:hidden;background:var(--panel);border-radius:3px}
.span{position:absolute;top:0;bottom:0;font-size:12px;font-weight:600;line-height:24px;padding:0 6px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;border-right:1px solid #fff}
.span.narrow{padding:0}
.span.narrow span{display:none}
.track-wire canvas,.track-nbl canvas{height:24px}
.track-reads canvas{height:46px}
#cursor,#marker{position:absolute;top:0;bottom:0;width:0;pointer-events:none;display:none}
#cursor{border-left:1px dashed #57606a}
#marker{border-left:2px solid #0969da}
#tip{position:fixed;z-index:10;max-width:560px;pointer-events:none;background:#1b1f24;color:#fff;border-radius:6px;padding:6px 9px;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;white-space:pre-wrap;box-shadow:0 4px 14px rgba(0,0,0,.25)}
.narration-box{padding:4px var(--pad) 32px}
.narration-box h2{font-size:16px;margin:8px 0}
.narration{list-style:none;margin:0;padding:0;border:1px solid var(--line);border-radius:8px;overflow:hidden}
.narration li+li{border-top:1px solid var(--line)}
.narration button{display:block;width:100%;text-align:left;border:0;border-radius:0;padding:6px 12px;background:#fff;font-size:13px}
.narration button:hover,.narration button.current{background:#ddf4ff}
.narration time{display:inline-block;min-width:96px;font-variant-numeric:tabular-nums;font-weight:650;color:#0550ae}
.narration .who{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px;color:var(--muted);margin-right:4px}
.empty{color:var(--muted)}
`;

/**
 * The page's script. Plain ES2017 in a raw string: no template literals or `${` inside, so the
 * outer template leaves it untouched.
 */
const SCRIPT = String.raw`
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("timeline-data").textContent);
  var S = JSON.parse(document.getElementById("timeline-style").textContent);
  var DPR = Math.max(1, window.devicePixelRatio || 1);
  var ids = {};
  T.connections.forEach(function (c) { ids[c.id] = c; });
  function laneOf(c) { return c != null && ids[c] ? c : S.other; }

  // ---- index: per lane, per track, items sorted by time ----
  var L = {};
  function lane(id) {
    if (!L[id]) L[id] = { wire: {}, nbl: [], reads: {} };
    return L[id];
  }
  function byTime(a, b) { return a.atUs - b.atUs; }
  T.connections.forEach(function (c) { lane(c.id); });
  lane(S.other);
  T.segments.forEach(function (s) {
    var l = lane(laneOf(s.connection));
    (l.wire[s.direction] = l.wire[s.direction] || []).push(s);
  });
  T.nbls.forEach(function (h) { lane(laneOf(h.connection)).nbl.push(h); });
  T.reads.forEach(function (r) {
    var l = lane(laneOf(r.connection));
    (l.reads[r.side] = l.reads[r.side] || []).push(r);
  });
  function track(items) {
    items.sort(byTime);
    var t = new Float64Array(items.length);
    for (var i = 0; i < items.length; i++) t[i] = items[i].atUs;
    return { items: items, t: t };
  }
  Object.keys(L).forEach(function (id) {
    var l = L[id];
    Object.keys(l.wire).forEach(function (d) { l.wire[d] = track(l.wire[d]); });
    l.nbl = track(l.nbl);
    var max = 1;
    Object.keys(l.reads).forEach(function (s) {
      var tr = track(l.reads[s]);
      var cum = new Float64Array(tr.items.length), sum = 0;
      for (var i = 0; i < tr.items.length; i++) { sum += tr.items[i].bytes; cum[i] = sum; }
      tr.cum = cum;
      l.reads[s] = tr;
      if (sum > max) max = sum;
    });
    l.readMax = max;
  });

  // first index with t[i] >= x
  function lower(t, x) {
    var lo = 0, hi = t.length;
    while (lo < hi) { var m = (lo + hi) >> 1; if (t[m] < x) lo = m + 1; else hi = m; }
    return lo;
  }

  // ---- formatting ----
  function trim(s) { return s.indexOf(".") >= 0 ? s.replace(/0+$/, "").replace(/\.$/, "") : s; }
  function fmt(us, decimals) {
    var a = Math.abs(us);
    if (decimals === undefined) {
      if (a < 1000) return trim(us.toFixed(a < 10 && us % 1 !== 0 ? 1 : 0)) + " µs";
      if (a < 1e6) return trim((us / 1000).toFixed(3)) + " ms";
      return trim((us / 1e6).toFixed(6)) + " s";
    }
    return us.toFixed(decimals);
  }
  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return trim((n / 1024).toFixed(1)) + " KiB";
    return trim((n / 1048576).toFixed(2)) + " MiB";
  }

  // ---- the view ----
  var lo = 0, hi = T.endUs;
  function widen(x) { if (x < lo) lo = x; if (x > hi) hi = x; }
  T.segments.forEach(function (s) { widen(s.atUs); });
  T.nbls.forEach(function (s) { widen(s.atUs); });
  T.reads.forEach(function (s) { widen(s.atUs); });
  T.narration.forEach(function (s) { widen(s.atUs); });
  if (hi - lo < 10) hi = lo + 10;
  var FULL = hi - lo, MIN_SPAN = 2;
  // The default view: the active span with a 2% margin each side, inside the run.
  var a0 = S.active.fromUs, a1 = Math.max(S.active.toUs, S.active.fromUs + 10), margin = (a1 - a0) * 0.02;
  a0 = Math.max(lo, a0 - margin); a1 = Math.min(hi, a1 + margin);
  var v0 = a0, v1 = a1;
  function setView(a, b) {
    var span = Math.min(Math.max(b - a, MIN_SPAN), FULL * 1.5);
    var mid = (a + b) / 2;
    a = mid - span / 2; b = mid + span / 2;
    if (span <= FULL) {
      // The centre stays inside the run, so any moment of it can be centred.
      var c = Math.min(Math.max(mid, lo), hi);
      a += c - mid; b += c - mid;
    } else {
      a = lo + FULL / 2 - span / 2; b = a + span;
    }
    v0 = a; v1 = b;
    schedule();
  }
  function fit() { setView(a0, a1); }
  function whole() { setView(lo, hi); }
  function zoomAt(us, factor) { setView(us - (us - v0) * factor, us + (v1 - us) * factor); }

  // ---- geometry ----
  var axis = document.getElementById("axis");
  var main = document.getElementById("lanes");
  var W = 1;
  function width() { return Math.max(1, axis.clientWidth); }
  function X(us) { return (us - v0) / (v1 - v0) * W; }
  function U(x) { return v0 + x / W * (v1 - v0); }
  function prep(c) {
    var w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * DPR) || c.height !== Math.round(h * DPR)) {
      c.width = Math.round(w * DPR); c.height = Math.round(h * DPR);
    }
    var g = c.getContext("2d");
    g.setTransform(DPR, 0, 0, DPR, 0, 0);
    g.clearRect(0, 0, w, h);
    return { g: g, w: w, h: h };
  }

  // ---- axis ticks ----
  function ticks() {
    var span = v1 - v0, target = Math.max(2, W / 110), raw = span / target;
    var p = Math.pow(10, Math.floor(Math.log10(raw))), step = p;
    [1, 2, 5, 10].some(function (m) { step = m * p; return m * p >= raw; });
    var unit = Math.max(Math.abs(v0), Math.abs(v1)) >= 1e6 ? 1e6 : Math.max(Math.abs(v0), Math.abs(v1)) >= 1000 ? 1000 : 1;
    var name = unit === 1e6 ? " s" : unit === 1000 ? " ms" : " µs";
    var dec = Math.max(0, Math.min(6, Math.ceil(-Math.log10(step / unit) - 1e-9)));
    var out = [];
    for (var t = Math.ceil(v0 / step) * step; t <= v1; t += step) out.push({ t: t, label: fmt(t / unit, dec) + name });
    return { step: step, list: out };
  }
  function grid(g, h, tk) {
    g.strokeStyle = "#eaeef2"; g.lineWidth = 1; g.beginPath();
    tk.list.forEach(function (k) { var x = Math.round(X(k.t)) + 0.5; g.moveTo(x, 0); g.lineTo(x, h); });
    g.stroke();
  }
  function drawAxis(tk) {
    var c = prep(axis), g = c.g;
    g.strokeStyle = "#8c959f"; g.fillStyle = "#1b1f24";
    g.font = "12px system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif";
    g.textBaseline = "top"; g.textAlign = "center";
    g.beginPath(); g.moveTo(0, c.h - 0.5); g.lineTo(c.w, c.h - 0.5);
    var minor = tk.step / 5;
    for (var t = Math.ceil(v0 / minor) * minor; t <= v1; t += minor) {
      var xm = Math.round(X(t)) + 0.5; g.moveTo(xm, c.h - 4); g.lineTo(xm, c.h);
    }
    tk.list.forEach(function (k) {
      var x = Math.round(X(k.t)) + 0.5;
      g.moveTo(x, c.h - 9); g.lineTo(x, c.h);
      var tw = g.measureText(k.label).width / 2;
      g.fillText(k.label, Math.min(Math.max(x, tw), c.w - tw), 4);
    });
    g.stroke();
    // narration marks
    g.fillStyle = "#0969da";
    T.narration.forEach(function (n) {
      var x = X(n.atUs); if (x < -4 || x > c.w + 4) return;
      g.beginPath(); g.moveTo(x - 4, c.h - 8); g.lineTo(x + 4, c.h - 8); g.lineTo(x, c.h - 1); g.fill();
    });
  }

  // ---- tracks ----
  function visible(tr) {
    var pad = (v1 - v0) / W * 4;
    return [lower(tr.t, v0 - pad), lower(tr.t, v1 + pad)];
  }
  function drawWire(cv, tr, tk) {
    var c = prep(cv), g = c.g, h = c.h;
    grid(g, h, tk);
    g.fillStyle = "#d0d7de"; g.fillRect(0, h - 1, c.w, 1);
    if (!tr) return;
    var r = visible(tr), n = r[1] - r[0];
    cv.dataset.visible = String(n);
    if (n > c.w / 3) {
      cv.dataset.mode = "aggregate";
      var cols = Math.ceil(c.w), cnt = new Int32Array(cols), drop = new Int32Array(cols), max = 1;
      for (var i = r[0]; i < r[1]; i++) {
        var x = Math.floor(X(tr.t[i])); if (x < 0 || x >= cols) continue;
        cnt[x]++; if (tr.items[i].dropped) drop[x]++;
      }
      for (var k = 0; k < cols; k++) if (cnt[k] > max) max = cnt[k];
      g.fillStyle = "rgba(36,41,47,.62)";
      for (k = 0; k < cols; k++) if (cnt[k]) {
        var bh = Math.max(2, (h - 6) * (0.25 + 0.75 * Math.sqrt(cnt[k] / max)));
        g.fillRect(k, h - 1 - bh, 1, bh);
      }
      g.fillStyle = "#cf222e";
      for (k = 0; k < cols; k++) if (drop[k]) g.fillRect(k - 1, 0, 3, 5);
    } else {
      cv.dataset.mode = "each";
      for (var j = r[0]; j < r[1]; j++) {
        var s = tr.items[j], xx = Math.round(X(s.atUs)) + 0.5;
        var th = s.bytes > 100 ? h - 6 : (h - 6) * 0.45;
        if (s.dropped) {
          g.strokeStyle = "#cf222e"; g.lineWidth = 2;
          g.beginPath(); g.moveTo(xx, h - 1); g.lineTo(xx, h - 1 - th);
          g.moveTo(xx - 3, 1); g.lineTo(xx + 3, 7); g.moveTo(xx + 3, 1); g.lineTo(xx - 3, 7); g.stroke();
        } else {
          g.strokeStyle = "#24292f"; g.lineWidth = 1.5;
          g.beginPath(); g.moveTo(xx, h - 1); g.lineTo(xx, h - 1 - th); g.stroke();
        }
      }
    }
  }
  function ownerColor(o) { return S.owners[o] || "#999999"; }
  function drawNbl(cv, tr, tk) {
    var c = prep(cv), g = c.g, h = c.h;
    grid(g, h, tk);
    g.fillStyle = "#d0d7de"; g.fillRect(0, h / 2, c.w, 1);
    var r = visible(tr), n = r[1] - r[0];
    cv.dataset.visible = String(n);
    if (n > c.w / 6) {
      cv.dataset.mode = "aggregate";
      var cols = Math.ceil(c.w / 3), per = {}, tot = new Int32Array(cols), max = 1;
      for (var i = r[0]; i < r[1]; i++) {
        var x = Math.floor(X(tr.t[i]) / 3); if (x < 0 || x >= cols) continue;
        var o = tr.items[i].to;
        (per[o] = per[o] || new Int32Array(cols))[x]++; tot[x]++;
      }
      for (var k = 0; k < cols; k++) if (tot[k] > max) max = tot[k];
      for (k = 0; k < cols; k++) if (tot[k]) {
        var bh = Math.max(4, (h - 4) * (0.35 + 0.65 * Math.sqrt(tot[k] / max))), y = (h + bh) / 2;
        Object.keys(per).forEach(function (own) {
          var part = per[own][k]; if (!part) return;
          var ph = bh * part / tot[k]; y -= ph;
          g.fillStyle = ownerColor(own); g.fillRect(k * 3, y, 3, ph);
        });
      }
    } else {
      cv.dataset.mode = "each";
      for (var j = r[0]; j < r[1]; j++) {
        var it = tr.items[j], xx = X(it.atUs), m = h / 2;
        // Crowded marks (neighbours closer than a diamond) become thin bars.
        var gap = Math.min(j > 0 ? xx - X(tr.t[j - 1]) : 99, j + 1 < tr.t.length ? X(tr.t[j + 1]) - xx : 99);
        g.fillStyle = ownerColor(it.to);
        if (gap < 9) { g.fillRect(Math.round(xx) - 1, 3, 2, h - 6); continue; }
        g.beginPath(); g.moveTo(xx, m - 7); g.lineTo(xx + 5, m); g.lineTo(xx, m + 7); g.lineTo(xx - 5, m); g.closePath(); g.fill();
        g.strokeStyle = ownerColor(it.from); g.lineWidth = 1.2; g.stroke();
      }
    }
  }
  function drawReads(cv, l, tk) {
    var c = prep(cv), g = c.g, h = c.h, top = 12;
    grid(g, h, tk);
    g.fillStyle = "#d0d7de"; g.fillRect(0, h - 1, c.w, 1);
    var max = l.readMax;
    function Y(b) { return h - 1 - (h - 1 - top) * b / max; }
    Object.keys(l.reads).sort().forEach(function (side) {
      var tr = l.reads[side], color = S.sides[side] || "#666";
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      var prevY = Y(0), first = true;
      for (var x = 0; x <= c.w; x++) {
        var i = lower(tr.t, U(x) + 1e-9) - 1;
        var y = Y(i >= 0 ? tr.cum[i] : 0);
        if (first) { g.moveTo(x, y); first = false; } else { g.lineTo(x, prevY); g.lineTo(x, y); }
        prevY = y;
      }
      g.stroke();
      g.globalAlpha = 0.10; g.lineTo(c.w, h); g.lineTo(0, h); g.closePath(); g.fillStyle = color; g.fill(); g.globalAlpha = 1;
      var r = visible(tr);
      if (r[1] - r[0] < c.w / 5) {
        g.fillStyle = color;
        for (var j = r[0]; j < r[1]; j++) { g.beginPath(); g.arc(X(tr.t[j]), Y(tr.cum[j]), 2.5, 0, 7); g.fill(); }
      }
    });
    g.fillStyle = "#57606a"; g.font = "11px system-ui, sans-serif"; g.textBaseline = "top"; g.textAlign = "left";
    g.fillText(bytes(max), 4, 0);
  }

  var canvases = [];
  Array.prototype.forEach.call(document.querySelectorAll("section.lane"), function (sec) {
    var l = L[sec.getAttribute("data-connection")];
    Array.prototype.forEach.call(sec.querySelectorAll("canvas"), function (cv) {
      canvases.push({ cv: cv, lane: l, kind: cv.dataset.track, dir: cv.dataset.dir });
    });
    var spans = sec.querySelectorAll(".span");
    l.spans = Array.prototype.map.call(spans, function (el) {
      return { el: el, from: Number(el.dataset.fromUs), to: Number(el.dataset.toUs) };
    });
  });

  var rangeEl = document.getElementById("range");
  var marker = document.getElementById("marker");
  var markAt = null;
  function draw() {
    pending = false;
    W = width();
    var tk = ticks();
    drawAxis(tk);
    canvases.forEach(function (k) {
      if (k.kind === "wire") drawWire(k.cv, k.lane.wire[k.dir], tk);
      else if (k.kind === "nbl") drawNbl(k.cv, k.lane.nbl, tk);
      else if (k.kind === "reads") drawReads(k.cv, k.lane, tk);
    });
    Object.keys(L).forEach(function (id) {
      (L[id].spans || []).forEach(function (s) {
        var a = X(s.from), b = X(s.to);
        if (b < -2 || a > W + 2) { s.el.style.display = "none"; return; }
        a = Math.max(a, -2); b = Math.min(b, W + 2);
        s.el.style.display = "";
        s.el.style.left = a + "px"; s.el.style.width = Math.max(1, b - a) + "px";
        s.el.classList.toggle("narrow", b - a < 44);
      });
    });
    rangeEl.dataset.fromUs = String(Math.round(v0 * 1000) / 1000);
    rangeEl.dataset.toUs = String(Math.round(v1 * 1000) / 1000);
    rangeEl.textContent = fmt(v0) + " – " + fmt(v1) + "  (span " + fmt(v1 - v0) + ")";
    placeLine(marker, markAt);
  }
  var pending = false;
  function schedule() { if (!pending) { pending = true; requestAnimationFrame(draw); } }
  function placeLine(el, us) {
    if (us === null || us < v0 || us > v1) { el.style.display = "none"; return; }
    var mr = main.getBoundingClientRect(), ar = axis.getBoundingClientRect();
    el.style.display = "block";
    el.style.left = (ar.left - mr.left + X(us)) + "px";
  }

  // ---- tooltip and hit-testing ----
  var tip = document.getElementById("tip");
  var cursor = document.getElementById("cursor");
  function showTip(text, ev) {
    tip.textContent = text; tip.hidden = false;
    var r = tip.getBoundingClientRect();
    var x = ev.clientX + 14, y = ev.clientY + 16;
    if (x + r.width > window.innerWidth - 4) x = Math.max(4, ev.clientX - r.width - 14);
    if (y + r.height > window.innerHeight - 4) y = Math.max(4, ev.clientY - r.height - 12);
    tip.style.left = x + "px"; tip.style.top = y + "px";
  }
  function hideTip() { tip.hidden = true; }
  function near(tr, x) {
    var pad = (v1 - v0) / W * 5;
    var a = lower(tr.t, U(x) - pad), b = lower(tr.t, U(x) + pad);
    return [a, b];
  }
  function group(items, keyf) {
    var m = {}, order = [];
    items.forEach(function (it) { var k = keyf(it); if (!m[k]) { m[k] = { n: 0, b: 0 }; order.push(k); } m[k].n++; m[k].b += it.bytes; });
    return order.map(function (k) { return m[k].n + " × " + k + " (" + bytes(m[k].b) + ")"; });
  }
  function describe(k, x) {
    var at = U(x), tr, r, best, i, items;
    if (k.kind === "wire") {
      tr = k.lane.wire[k.dir]; if (!tr) return null;
      r = near(tr, x); if (r[0] === r[1]) return null;
      if (r[1] - r[0] === 1 || k.cv.dataset.mode === "each") {
        best = r[0];
        for (i = r[0]; i < r[1]; i++) if (Math.abs(tr.t[i] - at) < Math.abs(tr.t[best] - at)) best = i;
        var s = tr.items[best];
        return fmt(s.atUs) + "  " + s.direction + (s.dropped ? "  DROPPED" : "") + "  " + s.bytes + " B\n" + s.summary;
      }
      items = tr.items.slice(r[0], r[1]);
      var d = items.filter(function (s) { return s.dropped; }).length, b = 0;
      items.forEach(function (s) { b += s.bytes; });
      return items.length + " segments " + k.dir + " near " + fmt(at) + (d ? ", " + d + " dropped" : "") + ", " + bytes(b) +
        "\n" + items.slice(0, 3).map(function (s) { return s.summary; }).join("\n") + (items.length > 3 ? "\n… zoom in to see each" : "");
    }
    if (k.kind === "nbl") {
      tr = k.lane.nbl; r = near(tr, x); if (r[0] === r[1]) return null;
      items = tr.items.slice(r[0], r[1]);
      if (items.length === 1 || k.cv.dataset.mode === "each") {
        best = r[0];
        for (i = r[0]; i < r[1]; i++) if (Math.abs(tr.t[i] - at) < Math.abs(tr.t[best] - at)) best = i;
        var h = tr.items[best];
        return "NBL #" + h.nbl + "  " + fmt(h.atUs) + "\n" + h.op + "\n" + h.from + " → " + h.to + "  " + bytes(h.bytes);
      }
      var nb = items.map(function (h) { return h.nbl; });
      return items.length + " NBL hand-offs near " + fmt(at) + " (NBL #" + Math.min.apply(null, nb) + "…#" + Math.max.apply(null, nb) + ")\n" +
        group(items, function (h) { return h.from + " → " + h.to + "  " + h.op; }).join("\n");
    }
    if (k.kind === "reads") {
      var lines = [], bestR = null, bestD = (v1 - v0) / W * 5;
      Object.keys(k.lane.reads).sort().forEach(function (side) {
        var t2 = k.lane.reads[side], j = lower(t2.t, at + 1e-9) - 1;
        lines.push(side + ": " + bytes(j >= 0 ? t2.cum[j] : 0) + " read by " + fmt(at));
        var rr = near(t2, x);
        for (var q = rr[0]; q < rr[1]; q++) {
          var dd = Math.abs(t2.t[q] - at);
          if (dd <= bestD) { bestD = dd; bestR = { s: side, it: t2.items[q], cum: t2.cum[q] }; }
        }
      });
      if (bestR) lines.unshift(bestR.s + " read " + bytes(bestR.it.bytes) + " at offset " + bestR.it.offset + "  " + fmt(bestR.it.atUs) + "  (total " + bytes(bestR.cum) + ")");
      return lines.join("\n");
    }
    return null;
  }
  var drag = null;
  function onMove(ev) {
    var r = axis.getBoundingClientRect(), x = ev.clientX - r.left;
    if (drag) {
      var du = (drag.x - ev.clientX) / W * (drag.v1 - drag.v0);
      setView(drag.v0 + du, drag.v1 + du); hideTip(); return;
    }
    var mr = main.getBoundingClientRect();
    cursor.style.display = "block"; cursor.style.left = (r.left - mr.left + x) + "px";
    var el = ev.target, text = null;
    var k = canvases.find(function (c) { return c.cv === el; });
    if (k) text = describe(k, ev.clientX - el.getBoundingClientRect().left);
    else if (el.classList && (el.classList.contains("span") || (el.parentElement && el.parentElement.classList.contains("span")))) {
      var sp = el.classList.contains("span") ? el : el.parentElement;
      text = sp.dataset.placement + "  " + fmt(Number(sp.dataset.fromUs)) + " → " + fmt(Number(sp.dataset.toUs)) +
        "  (" + fmt(Number(sp.dataset.toUs) - Number(sp.dataset.fromUs)) + ")";
    }
    if (text) showTip(text, ev); else hideTip();
  }
  function plotTarget(ev) { return ev.target.closest && ev.target.closest(".plot"); }
  document.addEventListener("mousemove", function (ev) {
    if (drag || plotTarget(ev)) onMove(ev); else { hideTip(); cursor.style.display = "none"; }
  });
  document.addEventListener("mousedown", function (ev) {
    if (ev.button !== 0 || !plotTarget(ev)) return;
    drag = { x: ev.clientX, v0: v0, v1: v1 }; document.body.style.cursor = "grabbing"; ev.preventDefault();
  });
  window.addEventListener("mouseup", function () { drag = null; document.body.style.cursor = ""; });
  document.addEventListener("wheel", function (ev) {
    if (!plotTarget(ev)) return;
    ev.preventDefault();
    var r = axis.getBoundingClientRect();
    var dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
    if (Math.abs(ev.deltaX) > Math.abs(dy)) { var du = ev.deltaX / W * (v1 - v0); setView(v0 + du, v1 + du); return; }
    zoomAt(U(ev.clientX - r.left), Math.exp(Math.max(-0.5, Math.min(0.5, dy * 0.002))));
  }, { passive: false });
  document.addEventListener("dblclick", function (ev) {
    if (!plotTarget(ev)) return;
    var r = axis.getBoundingClientRect();
    zoomAt(U(ev.clientX - r.left), ev.shiftKey ? 2 : 0.5);
  });
  document.getElementById("zoom-in").addEventListener("click", function () { zoomAt((v0 + v1) / 2, 0.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { zoomAt((v0 + v1) / 2, 2); });
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("zoom-all").addEventListener("click", whole);
  document.addEventListener("keydown", function (ev) {
    if (ev.target && ev.target.tagName === "INPUT") return;
    var span = v1 - v0;
    if (ev.key === "+" || ev.key === "=") zoomAt((v0 + v1) / 2, 0.5);
    else if (ev.key === "-" || ev.key === "_") zoomAt((v0 + v1) / 2, 2);
    else if (ev.key === "0") fit();
    else if (ev.key === "w" || ev.key === "W") whole();
    else if (ev.key === "ArrowLeft") setView(v0 - span / 5, v1 - span / 5);
    else if (ev.key === "ArrowRight") setView(v0 + span / 5, v1 + span / 5);
    else return;
    ev.preventDefault();
  });
  Array.prototype.forEach.call(document.querySelectorAll(".narration button"), function (b) {
    b.addEventListener("click", function () {
      var at = Number(b.dataset.atUs), half = (v1 - v0) / 2;
      markAt = at;
      Array.prototype.forEach.call(document.querySelectorAll(".narration button.current"), function (o) { o.classList.remove("current"); });
      b.classList.add("current");
      setView(at - half, at + half);
    });
  });
  window.addEventListener("resize", schedule);
  draw();
})();
`;
