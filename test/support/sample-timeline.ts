/**
 * A realistic, deterministic sample `Timeline` for the report's tests, screenshots and docs: the
 * main job (one connection offloaded at 10 ms, terminated at 40 ms with 96 KiB of BufferedData in
 * 66 NBLs handed target -> host and returned), a connection that stays on the host, and one that
 * flaps between host and target. No simulator involved: the numbers are made up but consistent.
 */
import type {
  AppRead,
  NblHandoff,
  Narration,
  PhaseSpan,
  Placement,
  Timeline,
  WireSegment,
} from "../../src/report/timeline.js";

/** Knobs of `sampleTimeline`. */
export interface SampleOptions {
  /** Total wire segments (default 2,000). */
  readonly segments?: number;
  /** Whether every check passed (default true). */
  readonly passed?: boolean;
  /** Seed printed in the header and used for the small jitter (default 42). */
  readonly seed?: number;
}

const A = "192.0.2.1";
const B = "192.0.2.2";
const BUFFERED = 96 * 1024;
const BUFFERED_NBLS = 66;

/** A small seeded generator (mulberry32), so the sample is the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function span(placement: Placement, fromUs: number, toUs: number): PhaseSpan {
  return { placement, fromUs, toUs };
}

/** Builds the sample run. */
export function sampleTimeline(options: SampleOptions = {}): Timeline {
  const total = options.segments ?? 2000;
  const seed = options.seed ?? 42;
  const passed = options.passed ?? true;
  const rand = rng(seed);
  const endUs = 50_000;
  const conns = [
    { id: "c1", label: `${A}:49152 > ${B}:80`, sport: 49152, dport: 80, share: 0.7 },
    { id: "c2", label: `${A}:49153 > ${B}:22`, sport: 49153, dport: 22, share: 0.15 },
    { id: "c3", label: `${A}:49154 > ${B}:8080`, sport: 49154, dport: 8080, share: 0.15 },
  ];
  const flaps: PhaseSpan[] = [];
  for (let t = 0, i = 0; t < endUs; i++) {
    const hostUntil = Math.min(endUs, t + 3000 + (i % 3) * 1000);
    flaps.push(span("host", t, hostUntil));
    if (hostUntil >= endUs) break;
    const off = Math.min(endUs, hostUntil + 300);
    flaps.push(span("offloading", hostUntil, off));
    const on = Math.min(endUs, off + 2500);
    flaps.push(span("offloaded", off, on));
    const term = Math.min(endUs, on + 400);
    flaps.push(span("terminating", on, term));
    t = term;
  }
  const connections = [
    {
      id: "c1",
      label: conns[0]!.label,
      phases: [
        span("host", 0, 10_000),
        span("offloading", 10_000, 10_450),
        span("offloaded", 10_450, 40_000),
        span("terminating", 40_000, 40_620),
        span("host", 40_620, endUs),
      ],
    },
    { id: "c2", label: conns[1]!.label, phases: [span("host", 0, endUs)] },
    { id: "c3", label: conns[2]!.label, phases: flaps },
  ];

  const segments: WireSegment[] = [];
  for (const c of conns) {
    const n = Math.round(total * c.share);
    let seqA = 1001;
    const seqB = 1;
    for (let i = 0; i < n; i++) {
      const atUs = Math.min(endUs - 1, Math.floor(((i + rand() * 0.8) / n) * (endUs - 200)) + 100);
      const fromA = i % 3 !== 2;
      const len = fromA ? (i % 7 === 6 ? 512 : 1448) : 0;
      const src = fromA ? `${A}.${c.sport}` : `${B}.${c.dport}`;
      const dst = fromA ? `${B}.${c.dport}` : `${A}.${c.sport}`;
      const summary = fromA
        ? `IP ${src} > ${dst}: Flags [.], seq ${seqA}:${seqA + len}, ack ${seqB}, win 502, length ${len}`
        : `IP ${src} > ${dst}: Flags [.], ack ${seqA}, win 1024, options [nop,nop,TS val ${i} ecr ${i - 1}], length 0`;
      if (fromA) seqA += len;
      segments.push({
        atUs,
        direction: fromA ? "a>b" : "b>a",
        connection: c.id,
        summary,
        bytes: 54 + len,
        dropped: rand() < 0.004,
      });
    }
  }
  segments.push({
    atUs: 20,
    direction: "a>b",
    connection: undefined,
    summary: `ARP, Request who-has ${B} tell ${A}, length 28`,
    bytes: 42,
    dropped: false,
  });
  segments.push({
    atUs: 60,
    direction: "b>a",
    connection: undefined,
    summary: `ARP, Reply ${B} is-at 02:00:00:00:00:02, length 28`,
    bytes: 42,
    dropped: false,
  });
  segments.sort((x, y) => x.atUs - y.atUs);

  const nbls: NblHandoff[] = [];
  let nblId = 1;
  // Sends while offloaded: the host hands NBLs to the target, which completes them.
  for (let t = 12_000; t < 38_000; t += 2000) {
    const id = nblId++;
    nbls.push({
      atUs: t,
      nbl: id,
      op: "MiniportTcpOffloadSend",
      from: "host",
      to: "target",
      bytes: 8192,
      connection: "c1",
    });
    nbls.push({
      atUs: t + 700,
      nbl: id,
      op: "NdisTcpOffloadSendComplete",
      from: "target",
      to: "host",
      bytes: 8192,
      connection: "c1",
    });
  }
  // Terminate: 96 KiB of BufferedData in 66 NBLs, target -> host, then returned.
  const base = Math.floor(BUFFERED / BUFFERED_NBLS);
  const first = nblId;
  for (let i = 0; i < BUFFERED_NBLS; i++) {
    const bytes = base + (i < BUFFERED % BUFFERED_NBLS ? 1 : 0);
    nbls.push({
      atUs: 40_400 + i * 3,
      nbl: nblId++,
      op: "NdisMTerminateOffloadComplete (BufferedData)",
      from: "target",
      to: "host",
      bytes,
      connection: "c1",
    });
    nbls.push({
      atUs: 41_200 + i * 12,
      nbl: first + i,
      op: "NdisReturnNetBufferLists",
      from: "host",
      to: "target",
      bytes,
      connection: "c1",
    });
  }
  nbls.sort((x, y) => x.atUs - y.atUs);

  const reads: AppRead[] = [];
  for (const c of conns) {
    let offset = 0;
    for (let t = 500; t < endUs; t += c.id === "c1" ? 900 : 2100) {
      if (c.id === "c1" && t > 10_450 && t < 40_620) continue; // offloaded: the app is not reading
      const bytes = c.id === "c1" ? 4096 : 1024;
      reads.push({ atUs: t, connection: c.id, side: "server", offset, bytes });
      offset += bytes;
    }
    if (c.id === "c1") {
      // The buffered data is delivered after the terminate.
      for (let i = 0; i < 24; i++) {
        reads.push({ atUs: 40_700 + i * 20, connection: "c1", side: "server", offset, bytes: 4096 });
        offset += 4096;
      }
    }
    let co = 0;
    for (let t = 900; t < endUs; t += 5000) {
      reads.push({ atUs: t, connection: c.id, side: "client", offset: co, bytes: 512 });
      co += 512;
    }
  }
  reads.sort((x, y) => x.atUs - y.atUs);

  const narration: Narration[] = [
    { atUs: 0, connection: undefined, text: `scenario starts: 3 connections ${A} <-> ${B}` },
    {
      atUs: 10_000,
      connection: "c1",
      text: "InitiateOffload: host hands the connection's state to the target",
    },
    { atUs: 10_450, connection: "c1", text: "InitiateOffloadComplete: the target owns the connection" },
    { atUs: 25_000, connection: "c3", text: "c3 flaps: offload, terminate, offload again (policy churn)" },
    {
      atUs: 39_990,
      connection: "c1",
      text: "target holds 96 KiB undelivered (seq 1001..99305) <BufferedData>",
    },
    { atUs: 40_000, connection: "c1", text: "TerminateOffload requested by the host" },
    {
      atUs: 40_400,
      connection: "c1",
      text: "NdisMTerminateOffloadComplete: 66 NBLs of BufferedData (96 KiB) handed target -> host",
    },
    { atUs: 40_620, connection: "c1", text: "connection back on the host; the app reads the buffered bytes" },
    { atUs: 41_980, connection: "c1", text: "all 66 NBLs returned to the target; ledger quiescent" },
    { atUs: endUs, connection: undefined, text: passed ? "verification passed" : "verification FAILED" },
  ];

  return {
    title: "Offload, buffer, terminate — no byte lost",
    scenario: "terminate-with-buffered-data",
    seed,
    verdict: {
      passed,
      checks: [
        {
          name: "bytes delivered in order",
          ok: true,
          detail: `client and server streams match (${BUFFERED + 4096 * 12} B)`,
        },
        {
          name: "ledger quiescent",
          ok: passed,
          detail: passed ? "0 NBLs live at the end" : "NBL #27 still owned by host",
        },
        { name: "no segment after RST", ok: true, detail: "" },
      ],
    },
    endUs,
    connections,
    segments,
    nbls,
    reads,
    narration,
  };
}
