/**
 * `npm run soak -- --minutes N [--seed S] [--flap MS] [--rss-bound MIB] [--phases a,b]`: the
 * server of `chimney serve` (startServer, in this process, so its tables can be read directly)
 * under attack over the real wire, with legitimate traffic checked byte for byte, while every
 * served connection is offloaded and terminated every `--flap` ms. It runs the worker target
 * once serve has one, the inline one until then. Linux and root only.
 *
 * After a warm-up, phases of equal length: a baseline without attack, then each attack alone
 * (SYN flood, ARP/ND flood, forged ICMP too-big, slowloris, malformed frames), then all at once
 * (`--phases` picks some; the baseline always runs). Each attack phase opens with a quiet lead-in
 * (`LEAD_IN` of its time) whose downloads are its own unattacked baseline. Raw attack frames are made here (attacks.ts) and
 * written onto the TAP link from inside the kernel's namespace (injector.ts, soak/inject.py);
 * slowloris is a Node child in the namespace (slowloris.ts). Legitimate traffic is the kernel's
 * curl (legit.ts): downloads from /bytes/ and uploads to /echo, one after the other, IPv4 and
 * IPv6 in turn, for the whole of every phase.
 *
 * It samples the tables (tables.ts), RSS and heap every 250 ms (printing a line every few
 * seconds) and fails on: a byte mismatch or a failed legitimate transfer; a crash (the server
 * fails, an exception, a helper dies); a table over its cap; RSS growth past the bound; a phase's
 * median download time under attack over 3x its lead-in's median; a slowloris connection held past the
 * header timeout (plus the server's check interval and 1 s); a connection left 10 s after the
 * last client (half-open ones of the SYN flood and TIME-WAIT aside); and an attack that did not land
 * (so a broken injector cannot pass for a robust server). The last lines are
 * `goal soak/<name>: <measured> (target <target>) OK|BELOW`, then the verdict with the seed.
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type RunningServer, startServer } from "../src/cli/commands/serve.js";
import type { HostConn } from "../src/host/stack.js";
import { DEFAULT_HTTP_LIMITS } from "../src/live/http-app.js";
import { ipSync, LIVE_ADDRS } from "../src/live/netns.js";
import { Prng } from "../src/sim/prng.js";
import { mac } from "../src/wire/ethernet.js";
import { ip } from "../src/wire/ip-addr.js";
import {
  type AttackLink,
  type AttackName,
  type FrameMaker,
  icmpTooBig,
  malformed,
  neighborFlood,
  synFlood,
} from "./attacks.js";
import { Injector } from "./injector.js";
import { download, type Transfer, upload } from "./legit.js";
import { Slowloris, type SlowlorisReport } from "./slowloris-driver.js";
import { capsOf, type Sample, sample, TABLES, type TableName, targetEngineOf } from "./tables.js";

const PORT = 80;
/** Frames per second of each raw attack (while it runs; all four together in the last phase). */
const RATES: Record<AttackName, number> = {
  "syn-flood": 3000,
  "neighbor-flood": 3000,
  "icmp-too-big": 2000,
  malformed: 2000,
};
const SLOWLORIS_SOCKETS = 64;
const SLOWLORIS_DRIBBLE_MS = 500;
/** The soak's HTTP limits: a short header timeout, so slowloris is dropped within a phase. */
const HEADERS_TIMEOUT_MS = 2000;
const CHECK_INTERVAL_MS = 250;
/** Slack for the event loop and the link on top of timeout + check interval. */
const DROP_SLACK_MS = 1000;
const DOWNLOAD_BYTES = 16 << 20;
const UPLOAD_BYTES = 4 << 20;
const TRANSFER_TIMEOUT_MS = 30_000;
const MAX_SLOWDOWN = 3;
/**
 * Each attack phase opens with this share of its time without attack: the downloads then are the
 * phase's own unattacked baseline, measured minutes later than the first one on a long run (the
 * machine's load from other work drifts; a ratio to one early baseline would measure the drift).
 */
const LEAD_IN = 0.25;
const SAMPLE_MS = 250;
/**
 * After the last phase every client is gone: within this time (ms) every connection must be gone
 * too, except half-open ones of the SYN flood (their SYN-ACKs time out on their own) and TIME-WAIT.
 */
const DRAIN_MS = 10_000;
/** Each phase lasts at least this (ms): the slowloris check needs a few header timeouts. */
const MIN_PHASE_MS = 8000;

type PhaseName = "baseline" | AttackName | "slowloris" | "all";

interface Phase {
  readonly name: PhaseName;
  readonly attacks: readonly AttackName[];
  readonly slowloris: boolean;
}

const ALL_RAW: readonly AttackName[] = ["syn-flood", "neighbor-flood", "icmp-too-big", "malformed"];
const PHASES: readonly Phase[] = [
  { name: "baseline", attacks: [], slowloris: false },
  { name: "syn-flood", attacks: ["syn-flood"], slowloris: false },
  { name: "neighbor-flood", attacks: ["neighbor-flood"], slowloris: false },
  { name: "icmp-too-big", attacks: ["icmp-too-big"], slowloris: false },
  { name: "slowloris", attacks: [], slowloris: true },
  { name: "malformed", attacks: ["malformed"], slowloris: false },
  { name: "all", attacks: ALL_RAW, slowloris: true },
];

/** What happened in one phase. */
interface PhaseResult {
  readonly name: PhaseName;
  /** Download times (ms) under the phase's attack (the baseline: without attack). */
  downloads: number[];
  /** Download times (ms) in the phase's quiet lead-in (empty for the baseline). */
  quiet: number[];
  /** True while the phase's attacks run (the lead-in is over). */
  attacking: boolean;
  uploads: number;
  peaks: Record<TableName, number>;
  rssPeak: number;
  heapPeak: number;
  framesMade: number;
  /** Stack counters over the phase. */
  cookies: number;
  tooBigDropped: number;
  malformedDropped: number;
  slowloris: SlowlorisReport | undefined;
}

interface Options {
  readonly minutes: number;
  readonly seed: number;
  readonly flapMs: number;
  readonly rssBoundMiB: number;
  /** The phases to run (the baseline always runs first). */
  readonly phases: readonly Phase[];
}

class Usage extends Error {}

function options(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      minutes: { type: "string", default: "1" },
      seed: { type: "string" },
      flap: { type: "string", default: "10" },
      "rss-bound": { type: "string", default: "256" },
      phases: { type: "string" },
    },
    strict: true,
  });
  const num = (name: string, v: string, ok: (n: number) => boolean, what: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !ok(n)) throw new Usage(`--${name} ${v}: ${what}`);
    return n;
  };
  const names = values.phases?.split(",").map((n) => n.trim()) ?? PHASES.map((p) => p.name);
  const unknown = names.filter((n) => !PHASES.some((p) => p.name === n));
  if (unknown.length > 0)
    throw new Usage(
      `--phases: unknown phase ${unknown.join(", ")} (phases: ${PHASES.map((p) => p.name).join(", ")})`,
    );
  const phases = PHASES.filter((p) => p.name === "baseline" || names.includes(p.name));
  return {
    phases,
    minutes: num(
      "minutes",
      values.minutes,
      (n) => Number.isFinite(n) && n * 60_000 >= phases.length * MIN_PHASE_MS,
      `must be a number of minutes, at least ${((phases.length * MIN_PHASE_MS) / 60_000).toFixed(2)} (${phases.length} phases of at least ${MIN_PHASE_MS / 1000} s)`,
    ),
    seed:
      values.seed === undefined
        ? randomInt(1, 2 ** 31)
        : num("seed", values.seed, (n) => Number.isSafeInteger(n) && n > 0, "must be a positive integer"),
    flapMs: num(
      "flap",
      values.flap,
      (n) => Number.isFinite(n) && n >= 1,
      "must be a number of milliseconds, at least 1",
    ),
    rssBoundMiB: num(
      "rss-bound",
      values["rss-bound"],
      (n) => Number.isFinite(n) && n > 0,
      "must be a positive number of MiB",
    ),
  };
}

const MiB = 1 << 20;
const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

function emptyPeaks(): Record<TableName, number> {
  return Object.fromEntries(TABLES.map((t) => [t, 0])) as Record<TableName, number>;
}

/** The soak run: state shared by the phases, the sampler and the report. */
class Soak {
  readonly o: Options;
  readonly failures: string[] = [];
  readonly results: PhaseResult[] = [];
  readonly server: RunningServer;
  readonly caps: Record<TableName, number>;
  /** How the connection table's cap is made up. */
  readonly capNote: string;
  readonly injector: Injector;
  readonly makers: Record<AttackName, FrameMaker>;
  readonly uploadFile: string;
  readonly uploadSha: string;
  readonly tmp: string;
  readonly start = performance.now();
  current: PhaseResult | undefined;
  slowloris: Slowloris | undefined;
  lastSample: Sample | undefined;
  /** RSS at the end of the baseline: what growth is measured from. */
  rssReference: number | undefined;
  rssPeakAfter = 0;
  mismatches = 0;
  transferFailures = 0;
  crashes = 0;
  lastDownload: number | undefined;
  /** Connections left after the drain wait, described. */
  leftovers: string[] | undefined;
  readonly #liveConns: { at: number; list: HostConn[] } = { at: 0, list: [] };

  constructor(o: Options, server: RunningServer, tmp: string) {
    this.o = o;
    this.server = server;
    this.tmp = tmp;
    const stack = server.host.stack;
    // TIME-WAIT (2 MSL) and closing connections on our side: at most every connection the
    // clients can open in 2 MSL plus 10 s of closing, at the rate they can open them (the
    // slowloris attacker reopens each socket at most once per header timeout; curl one at a time).
    const closeWindowS = (2 * stack.tcpConfig.msl) / 1_000_000 + 10;
    const perSecond = (SLOWLORIS_SOCKETS * 1000) / HEADERS_TIMEOUT_MS + 20;
    const closing = Math.ceil(closeWindowS * perSecond);
    this.caps = capsOf(server, {
      maxConnections: DEFAULT_HTTP_LIMITS.maxConnections,
      closingAllowance: closing,
    });
    this.capNote = `connections: per listener its SYN queue and accept queue, ${DEFAULT_HTTP_LIMITS.maxConnections} open (the HTTP cap), and ${closing} closing (${closeWindowS} s of 2 MSL and closing at ${perSecond} new connections/s: ${SLOWLORIS_SOCKETS} slowloris sockets per header timeout, 20 for the rest)`;
    // The kernel interface's MAC, as `ip -j link` reports it (set-up: nothing flows yet).
    const kernelMac = mac(
      (
        JSON.parse(ipSync("-n", server.host.netns.ns, "-j", "link", "show", server.host.netns.tap.name)) as {
          address: string;
        }[]
      )[0]?.address ?? "02:00:00:00:00:01",
    );
    const link: AttackLink = {
      ourMac: stack.interfaceConfig(0).mac,
      ours4: ip(LIVE_ADDRS.ours4),
      ours6: ip(LIVE_ADDRS.ours6),
      kernel4: ip(LIVE_ADDRS.kernel4),
      kernel6: ip(LIVE_ADDRS.kernel6),
      kernelMac,
      port: PORT,
    };
    this.makers = {
      "syn-flood": synFlood(link),
      "neighbor-flood": neighborFlood(link),
      "icmp-too-big": icmpTooBig(link, () => this.#served()),
      malformed: malformed(link),
    };
    const root = new Prng(o.seed);
    const script = fileURLToPath(new URL("../../soak/inject.py", import.meta.url));
    this.injector = new Injector(server.host.netns, script, root.fork(), (why) => this.crash(why));
    const data = randomBytes(UPLOAD_BYTES);
    this.uploadFile = join(tmp, "upload.bin");
    writeFileSync(this.uploadFile, data);
    this.uploadSha = createHash("sha256").update(data).digest("hex");
  }

  /** Our served connections, for quoting in forged ICMP (refreshed every 100 ms). */
  #served(): HostConn[] {
    const now = performance.now();
    if (now - this.#liveConns.at > 100) {
      this.#liveConns.at = now;
      this.#liveConns.list = [...this.server.host.stack.connections()].filter((c) => c.localPort === PORT);
    }
    return this.#liveConns.list;
  }

  elapsed(): string {
    return `${((performance.now() - this.start) / 1000).toFixed(1).padStart(6)}s`;
  }

  fail(why: string): void {
    this.failures.push(why);
    process.stdout.write(`soak: FAIL ${why}\n`);
  }

  crash(why: string): void {
    this.crashes++;
    this.fail(`crash: ${why}`);
  }

  /** Takes a sample, checks it against the caps and folds it into the phase's peaks. */
  takeSample(): Sample {
    const s = sample(this.server);
    this.lastSample = s;
    const p = this.current;
    for (const t of TABLES) {
      if (p !== undefined) p.peaks[t] = Math.max(p.peaks[t], s.tables[t]);
      if (s.tables[t] > this.caps[t] && !this.failures.some((f) => f.startsWith(`table ${t} `)))
        this.fail(`table ${t} at ${s.tables[t]}, over its cap of ${this.caps[t]} (phase ${p?.name ?? "-"})`);
    }
    if (p !== undefined) {
      p.rssPeak = Math.max(p.rssPeak, s.rss);
      p.heapPeak = Math.max(p.heapPeak, s.heapUsed);
    }
    if (this.rssReference !== undefined) this.rssPeakAfter = Math.max(this.rssPeakAfter, s.rss);
    return s;
  }

  printSample(s: Sample, cpuPct: number): void {
    const t = s.tables;
    const states = Object.entries(s.states)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(", ");
    const f = this.server.flaps;
    process.stdout.write(
      `${this.elapsed()} ${(this.current?.name ?? "-").padEnd(14)} rss ${mib(s.rss)} heap ${mib(s.heapUsed)} cpu ${cpuPct.toFixed(0)}% | neighbors ${t.neighbors} (kernel ${s.kernelNeighbors}, ${s.neighborTableFull} refused) timers ${t["neighbor-timers"]} path-mtu ${t["path-mtu"]} conns ${t.connections}${states === "" ? "" : ` (${states})`} synq ${t["syn-queue"]} acceptq ${t["accept-queue"]} offloaded ${t.offloaded} | download ${this.lastDownload === undefined ? "-" : secs(this.lastDownload)} | flaps ${f.offloads}/${f.terminates}${f.waiting === 0 ? "" : ` (${f.waiting} terminates waiting)`}\n`,
    );
  }

  record(t: Transfer): void {
    const p = this.current;
    if (t.problem !== undefined) {
      if (t.mismatch) this.mismatches++;
      else this.transferFailures++;
      this.fail(`${t.kind} ${t.url} in phase ${p?.name ?? "warm-up"}: ${t.problem}`);
      return;
    }
    if (p === undefined) return;
    if (t.kind === "download") {
      (p.attacking || p.name === "baseline" ? p.downloads : p.quiet).push(t.seconds * 1000);
      this.lastDownload = t.seconds * 1000;
    } else p.uploads++;
  }

  /**
   * Transfers before the baseline, checked but not timed: the first ones run code that is not
   * optimized yet and fill the pools, which would make the baseline slow and every ratio lenient.
   */
  async warmUp(): Promise<void> {
    const ns = this.server.host.netns;
    for (const base of [`http://${LIVE_ADDRS.ours4}:${PORT}`, `http://[${LIVE_ADDRS.ours6}]:${PORT}`]) {
      this.record(
        await download(ns, base, DOWNLOAD_BYTES, join(this.tmp, "headers.txt"), TRANSFER_TIMEOUT_MS),
      );
      this.record(await upload(ns, base, this.uploadFile, UPLOAD_BYTES, this.uploadSha, TRANSFER_TIMEOUT_MS));
    }
  }

  /** Connections that should be gone once every client is (see `DRAIN_MS`). */
  #lingering(): HostConn[] {
    return [...this.server.host.stack.connections()].filter(
      (c) => c.tcp?.state !== "SYN-RECEIVED" && c.tcp?.state !== "TIME-WAIT",
    );
  }

  /** Waits up to `DRAIN_MS` for the connections of the finished clients to go; notes what stays. */
  async drain(): Promise<void> {
    const until = performance.now() + DRAIN_MS;
    while (this.#lingering().length > 0 && performance.now() < until)
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const chimney = this.server.host.chimney;
    this.leftovers = this.#lingering().map((c) => {
      const ctx = c.tcp === undefined ? chimney?.manager.contextOf(c) : undefined;
      const engine = ctx === undefined ? c.tcp : targetEngineOf(chimney, ctx);
      const log = (chimney?.manager.log ?? [])
        .filter((e) => e.conn === c.id)
        .slice(-4)
        .map((e) => `${e.op}${e.detail === "" ? "" : ` ${e.detail}`}`)
        .join("; ");
      const st = engine?.status();
      const due = engine?.pollTimeout();
      const seq =
        st === undefined
          ? ""
          : ` (snd.una ${st.sndUna} nxt ${st.sndNxt} max ${st.sndMax} wnd ${st.sndWnd}, rcv.nxt ${st.rcvNxt}, ${st.sendQueued} B queued, ${st.readable} B unread, timer ${due === undefined ? "none" : `in ${((due - this.server.host.driver.now()) / 1000).toFixed(0)} ms`})`;
      return `${c.toString()}: ${c.phase}, ${engine?.state ?? "no engine"}${seq}${log === "" ? "" : `; last steps: ${log}`}`;
    });
  }

  /** Downloads and uploads in turn, IPv4 and IPv6, until `end` (the last one may run past it). */
  async transfers(end: number): Promise<void> {
    const ns = this.server.host.netns;
    for (let i = 0; performance.now() < end && this.crashes === 0; i++) {
      const base = i % 4 < 2 ? `http://${LIVE_ADDRS.ours4}:${PORT}` : `http://[${LIVE_ADDRS.ours6}]:${PORT}`;
      this.record(
        i % 2 === 0
          ? await download(ns, base, DOWNLOAD_BYTES, join(this.tmp, "headers.txt"), TRANSFER_TIMEOUT_MS)
          : await upload(ns, base, this.uploadFile, UPLOAD_BYTES, this.uploadSha, TRANSFER_TIMEOUT_MS),
      );
    }
  }

  async runPhase(phase: Phase, ms: number): Promise<void> {
    const st = this.server.host.stack.stats;
    const before = {
      cookies: st.dropSynQueueFull,
      tooBig: st.dropIcmpTooBig,
      bad: st.dropMalformed + st.dropBadChecksum + st.dropUnknownProtocol + st.dropFragment,
      made: Object.values(this.injector.made).reduce((a, b) => a + b, 0),
    };
    const r: PhaseResult = {
      name: phase.name,
      downloads: [],
      quiet: [],
      attacking: false,
      uploads: 0,
      peaks: emptyPeaks(),
      rssPeak: 0,
      heapPeak: 0,
      framesMade: 0,
      cookies: 0,
      tooBigDropped: 0,
      malformedDropped: 0,
      slowloris: undefined,
    };
    this.current = r;
    this.results.push(r);
    const attacks = [...phase.attacks, ...(phase.slowloris ? ["slowloris"] : [])];
    const lead = attacks.length === 0 ? 0 : ms * LEAD_IN;
    process.stdout.write(
      `${this.elapsed()} phase ${phase.name}: ${attacks.length === 0 ? "no attack" : `${secs(lead)} without attack, then ${attacks.join(" + ")}`} for ${secs(ms)}\n`,
    );
    const end = performance.now() + ms;
    if (lead > 0) await this.transfers(performance.now() + lead);
    r.attacking = true;
    for (const a of phase.attacks) this.injector.start(a, this.makers[a], RATES[a]);
    if (phase.slowloris) {
      const script = fileURLToPath(new URL("./slowloris.js", import.meta.url));
      this.slowloris = new Slowloris(
        this.server.host.netns,
        script,
        [LIVE_ADDRS.ours4, LIVE_ADDRS.ours6],
        PORT,
        SLOWLORIS_SOCKETS,
        SLOWLORIS_DRIBBLE_MS,
        (why) => this.crash(why),
      );
    }
    await this.transfers(end);
    this.injector.stopAll();
    if (this.slowloris !== undefined) {
      r.slowloris = await this.slowloris.stop();
      this.slowloris = undefined;
    }
    this.takeSample();
    r.framesMade = Object.values(this.injector.made).reduce((a, b) => a + b, 0) - before.made;
    r.cookies = st.dropSynQueueFull - before.cookies;
    r.tooBigDropped = st.dropIcmpTooBig - before.tooBig;
    r.malformedDropped =
      st.dropMalformed + st.dropBadChecksum + st.dropUnknownProtocol + st.dropFragment - before.bad;
    if (phase.name === "baseline") this.rssReference = this.lastSample?.rss;
  }
}

/** The goals: one line each, and a failure for each one below its target. */
function goals(s: Soak): string[] {
  const lines: string[] = [];
  const goal = (name: string, measured: string, target: string, ok: boolean): void => {
    lines.push(`goal soak/${name}: ${measured} (target ${target}) ${ok ? "OK" : "BELOW"}`);
    if (!ok && !s.failures.some((f) => f.startsWith(`goal ${name}:`)))
      s.failures.push(`goal ${name}: ${measured}, target ${target}`);
  };
  for (const t of TABLES) {
    const peak = Math.max(...s.results.map((r) => r.peaks[t]));
    goal(`table-${t}`, `peak ${peak}`, `<= cap ${s.caps[t]}`, peak <= s.caps[t]);
  }
  const growth = s.rssReference === undefined ? Number.NaN : s.rssPeakAfter - s.rssReference;
  goal(
    "rss-growth",
    `${mib(growth)} (from ${mib(s.rssReference ?? 0)} after the baseline to a peak of ${mib(s.rssPeakAfter)})`,
    `<= ${s.o.rssBoundMiB} MiB`,
    growth <= s.o.rssBoundMiB * MiB,
  );
  const baseline = s.results.find((r) => r.name === "baseline");
  const base = median(baseline?.downloads ?? []);
  goal(
    "baseline-downloads",
    `${baseline?.downloads.length ?? 0} downloads, median ${secs(base)}`,
    ">= 3 downloads",
    (baseline?.downloads.length ?? 0) >= 3,
  );
  for (const r of s.results) {
    if (r.name === "baseline") continue;
    const m = median(r.downloads);
    // The phase's own lead-in is its baseline; the run's first one if the lead-in had no download.
    const own = r.quiet.length > 0;
    const ref = own ? median(r.quiet) : base;
    const ratio = m / ref;
    goal(
      `download-${r.name}`,
      `median ${secs(m)} over ${r.downloads.length} downloads = ${ratio.toFixed(2)}x the ${own ? `unattacked lead-in's ${secs(ref)} (${r.quiet.length} downloads)` : `baseline's ${secs(ref)}`}; worst ${secs(Math.max(0, ...r.downloads))}, ${(m / base).toFixed(2)}x the first baseline`,
      `<= ${MAX_SLOWDOWN}x`,
      r.downloads.length > 0 && ratio <= MAX_SLOWDOWN,
    );
  }
  const bound = HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + DROP_SLACK_MS;
  const loris = s.results.flatMap((r) => (r.slowloris === undefined ? [] : [r.slowloris]));
  const dropped = loris.flatMap((l) => l.dropped);
  const held = loris.flatMap((l) => l.openAtStop);
  const worst = Math.max(0, ...dropped, ...held);
  if (loris.length > 0)
    goal(
      "slowloris-drop",
      `${dropped.length} attackers dropped after ${dropped.length === 0 ? "-" : `${secs(Math.min(...dropped))} .. ${secs(Math.max(...dropped))}`}, ${held.length} open at the stop (oldest ${secs(Math.max(0, ...held))})`,
      `every one dropped within ${secs(bound)} (header timeout ${HEADERS_TIMEOUT_MS} ms + check ${CHECK_INTERVAL_MS} ms + ${DROP_SLACK_MS} ms)`,
      dropped.length > 0 && worst <= bound,
    );
  if (s.leftovers !== undefined)
    goal(
      "drained",
      `${s.leftovers.length} connections left ${DRAIN_MS / 1000} s after the last client${s.leftovers.length === 0 ? "" : ` (${s.leftovers.slice(0, 8).join(" | ")})`}`,
      "0, half-open and TIME-WAIT aside",
      s.leftovers.length === 0,
    );
  goal("byte-mismatches", String(s.mismatches), "0", s.mismatches === 0);
  goal("failed-transfers", String(s.transferFailures), "0", s.transferFailures === 0);
  goal("crashes", String(s.crashes), "0", s.crashes === 0);
  // The attacks landed: else a broken injector would pass for a robust server.
  const during = (a: AttackName): PhaseResult[] => s.results.filter((r) => r.name === a || r.name === "all");
  const ran = (a: AttackName | "slowloris"): boolean =>
    s.results.some((r) => r.name === a || r.name === "all");
  const cookies = during("syn-flood").reduce((n, r) => n + r.cookies, 0);
  if (ran("syn-flood"))
    goal("landed-syn-flood", `${cookies} SYNs answered with a cookie (SYN queue full)`, "> 0", cookies > 0);
  const neighPeak = Math.max(...during("neighbor-flood").map((r) => r.peaks.neighbors));
  if (ran("neighbor-flood"))
    goal(
      "landed-neighbor-flood",
      `neighbor cache peak ${neighPeak}`,
      `= cap ${s.caps.neighbors}`,
      neighPeak >= s.caps.neighbors,
    );
  const tooBig = during("icmp-too-big").reduce((n, r) => n + r.tooBigDropped, 0);
  if (ran("icmp-too-big"))
    goal("landed-icmp-too-big", `${tooBig} forged too-big messages dropped`, "> 0", tooBig > 0);
  const bad = during("malformed").reduce((n, r) => n + r.malformedDropped, 0);
  if (ran("malformed")) goal("landed-malformed", `${bad} malformed frames dropped`, "> 0", bad > 0);
  return lines;
}

function summary(s: Soak): string[] {
  const base = median(s.results.find((r) => r.name === "baseline")?.downloads ?? []);
  const lines = [
    "",
    `phase           downloads  median   worst    lead-in  x lead  x base  uploads  frames   ${TABLES.map((t) => t.padStart(15)).join(" ")}  rss peak     heap peak`,
  ];
  for (const r of s.results) {
    const m = median(r.downloads);
    lines.push(
      `${r.name.padEnd(15)} ${String(r.downloads.length).padStart(9)}  ${secs(m).padStart(7)}  ${secs(Math.max(0, ...r.downloads)).padStart(7)}  ${(r.quiet.length === 0 ? "-" : secs(median(r.quiet))).padStart(7)}  ${(r.quiet.length === 0 ? "-" : (m / median(r.quiet)).toFixed(2)).padStart(6)}  ${(m / base).toFixed(2).padStart(6)}  ${String(r.uploads).padStart(7)}  ${String(r.framesMade).padStart(7)}   ${TABLES.map((t) => String(r.peaks[t]).padStart(15)).join(" ")}  ${mib(r.rssPeak).padStart(11)}  ${mib(r.heapPeak).padStart(11)}`,
    );
  }
  const at = (lines[1] ?? "").indexOf(TABLES[0].padStart(15));
  lines.push(`${"caps".padEnd(at)}${TABLES.map((t) => String(s.caps[t]).padStart(15)).join(" ")}`);
  for (const r of s.results) {
    const l = r.slowloris;
    if (l === undefined) continue;
    const statuses = [...l.statuses].map(([k, v]) => `${v} x ${k}`).join(", ");
    const hist = new Map<number, number>();
    for (const ms of l.dropped)
      hist.set(Math.floor(ms / 500) * 500, (hist.get(Math.floor(ms / 500) * 500) ?? 0) + 1);
    const h = [...hist]
      .sort((a, b) => a[0] - b[0])
      .map(([k, v]) => `${(k / 1000).toFixed(1)}s:${v}`)
      .join(" ");
    lines.push(`slowloris in ${r.name}: dropped after (500 ms bins) ${h}`);
    lines.push(
      `slowloris in ${r.name}: ${l.opened} connections, ${l.dropped.length} dropped by the server (${statuses}), ${l.openAtStop.length} open at the stop, ${l.errors} failed to connect`,
    );
  }
  return lines;
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = options(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(
      `soak: ${(e as Error).message}\nusage: npm run soak -- --minutes N [--seed S] [--flap MS] [--rss-bound MIB] [--phases a,b,...]\n`,
    );
    return 2;
  }
  if (process.platform !== "linux" || process.getuid?.() !== 0) {
    process.stderr.write("soak: needs Linux and root (it creates a network namespace and a TAP device)\n");
    return 2;
  }
  // The worker target: the offload target on its own thread, owning the TAP link.
  const target = "worker";
  const totalMs = o.minutes * 60_000;
  const phaseMs = totalMs / o.phases.length;
  process.stdout.write(
    `soak: ${o.minutes} minute(s), seed ${o.seed}, target ${target}, flap every ${o.flapMs} ms, ${o.phases.length} phases of ${secs(phaseMs)}\n`,
  );
  const tmp = mkdtempSync(join(tmpdir(), "chimney-soak-"));
  let server: RunningServer | undefined;
  let soak: Soak | undefined;
  const cleanup = (): void => {
    server?.close(); // kills the helpers (children of the namespace) and removes it
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stdout.write(`\nsoak: interrupted by ${sig} (seed ${o.seed}); namespace and helpers removed\n`);
    cleanup();
    process.exit(130);
  };
  const onCrash = (e: unknown): void => {
    if (soak !== undefined) soak.crash(e instanceof Error ? (e.stack ?? e.message) : String(e));
    else {
      process.stdout.write(`soak: FAIL crash before the run: ${String(e)} (seed ${o.seed})\n`);
      cleanup();
      process.exit(1);
    }
  };
  const onWarning = (w: Error): void => {
    if (w.message.startsWith("TAP read failed")) onCrash(w);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("uncaughtException", onCrash);
  process.on("unhandledRejection", onCrash);
  process.on("warning", onWarning);
  try {
    server = await startServer(
      {
        port: PORT,
        seed: o.seed,
        target,
        flapMs: o.flapMs,
        http: { headersTimeoutMs: HEADERS_TIMEOUT_MS, checkIntervalMs: CHECK_INTERVAL_MS },
        tag: "soak",
      },
      (line) => process.stdout.write(`soak: server: ${line}\n`),
    );
    const srv = server;
    void srv.failed.then((e) => soak?.crash(`the server failed: ${String(e)}`));
    // One request first: the kernel and our stack resolve each other before the attacks start.
    await srv.host.netns.exec("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "--max-time",
      "10",
      `http://${LIVE_ADDRS.ours4}:${PORT}/bytes/1`,
    ]);
    soak = new Soak(o, srv, tmp);
    const s = soak;
    process.stdout.write(
      [
        `soak: namespace ${srv.host.netns.ns}, TAP offloads ${srv.host.netns.tap.offload}, our stack on port ${PORT}`,
        `soak: raw attacks (frames/s, injected on the TAP link from the kernel's namespace): ${Object.entries(
          RATES,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(
            ", ",
          )}; slowloris: ${SLOWLORIS_SOCKETS} connections adding a header line every ${SLOWLORIS_DRIBBLE_MS} ms`,
        `soak: HTTP limits: headers within ${HEADERS_TIMEOUT_MS} ms (checked every ${CHECK_INTERVAL_MS} ms), ${DEFAULT_HTTP_LIMITS.maxConnections} connections`,
        `soak: legitimate traffic: curl in the namespace, ${DOWNLOAD_BYTES / MiB} MiB downloads from /bytes/ and ${UPLOAD_BYTES / MiB} MiB uploads to /echo in turn, IPv4 and IPv6, sha256 checked`,
        `soak: caps: ${TABLES.map((t) => `${t} ${s.caps[t]}`).join(", ")}; RSS growth bound ${s.o.rssBoundMiB} MiB; a phase's median download at most ${MAX_SLOWDOWN}x that of its unattacked lead-in (${LEAD_IN * 100}% of the phase)`,
        `soak: ${s.capNote}`,
        "",
      ].join("\n"),
    );
    const printEvery = Math.max(2000, Math.min(10_000, totalMs / 60));
    let lastPrint = 0;
    let cpu = process.cpuUsage();
    let cpuAt = performance.now();
    const sampler = setInterval(() => {
      const smp = s.takeSample();
      const now = performance.now();
      if (now - lastPrint >= printEvery) {
        const used = process.cpuUsage(cpu);
        const pct = ((used.user + used.system) / 1000 / (now - cpuAt)) * 100;
        cpu = process.cpuUsage();
        cpuAt = now;
        lastPrint = now;
        s.printSample(smp, pct);
      }
    }, SAMPLE_MS);
    try {
      process.stdout.write(`${s.elapsed()} warm-up: two downloads and two uploads, checked, not timed\n`);
      await s.warmUp();
      for (const phase of o.phases) {
        await s.runPhase(phase, phaseMs);
        if (s.crashes > 0) break;
      }
      if (s.crashes === 0) {
        process.stdout.write(`${s.elapsed()} drain: every client is gone; waiting for their connections\n`);
        await s.drain();
      }
    } finally {
      clearInterval(sampler);
    }
    const inj = await s.injector.close();
    const lines = [
      ...summary(s),
      `packet writer: ${inj.sent} frames sent, ${inj.errors} refused${inj.errors > 0 ? ` (${inj.lastError})` : ""}; ${s.injector.skipped} not made while it was behind`,
      `flap: ${srv.flaps.offloads} offloads, ${srv.flaps.terminates} terminates (every ${o.flapMs} ms), ${srv.acceptOffloads} offloads on accept`,
      ...(srv.host.chimney === undefined
        ? []
        : [
            `offload manager: ${srv.host.chimney.manager.stats.initiates} initiates (${srv.host.chimney.manager.stats.initiateFailures} failed), ${srv.host.chimney.manager.stats.terminates} terminates, ${srv.host.chimney.manager.stats.invalidates} invalidates (a neighbor lost, or a connection)`,
          ]),
      "",
      ...goals(s),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } catch (e) {
    if (soak === undefined) {
      process.stdout.write(
        `soak: FAIL could not start: ${e instanceof Error ? e.message : String(e)} (seed ${o.seed})\n`,
      );
      cleanup();
      return 1;
    }
    soak.crash(e instanceof Error ? (e.stack ?? e.message) : String(e));
  } finally {
    cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  const failures = soak.failures;
  if (failures.length === 0) {
    process.stdout.write(`\nsoak OK (seed ${o.seed})\n`);
    return 0;
  }
  process.stdout.write(
    `\nsoak FAILED (seed ${o.seed}): ${failures.length} failure(s)\n${failures.map((f) => `  - ${f}`).join("\n")}\n`,
  );
  return 1;
}

// Exit with the verdict even if a handle of a failed run is still open.
process.exit(await main());
