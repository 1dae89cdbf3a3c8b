/**
 * The scenario runner: plays a validated scenario on the two-host chimney world, as a pure
 * function of (scenario, seed), and verifies it. It sets up the applications (each connection's
 * client and server write a known pattern and check every byte they read against it), runs the
 * schedule of chimney operations at their virtual times, collects a `Timeline` (where each
 * connection lived over time, the frames on the wire, NBL hand-offs, application reads and a
 * narration) and returns the checks: byte streams identical to what was written, every
 * connection finished, ledgers quiescent, and the scenario's own expectations.
 *
 * Every event of a connection carries the scenario's id of it (`c1`, `bulk#3`): segments both
 * ways by their port pair, reads, the managers' log steps by the host connection, and NBL
 * hand-offs by the chimney call that carried the NBL (nbl-owners.ts). Its lane's placement is
 * that of its end on an offloading host, then "time-wait" while an end waits out 2·MSL.
 *
 * `runScenario` plays one `ScenarioRun`: its constructor builds the world and taps its frames and
 * NBL hand-offs into the timeline; then its steps run in order: the applications (stack events to
 * connection ends), the connections (listens, connects, delayed writes, paced reads), the
 * schedule (chimney operations at their times), the run (the world stepped until the traffic is
 * done or the scenario's duration ends) and the checks (verdict, counters, timeline).
 *
 * No I/O: pcap capture and trace lines go to the caller through options.
 */
import { acceptAllKnobs, type OffloadStats, type ReceiveKnobs } from "../host/offload-manager.js";
import type { HostConn, StackEvent } from "../host/stack.js";
import type { LedgerHandoff } from "../nbl/ledger.js";
import type {
  AppRead,
  Narration,
  NblHandoff,
  PhaseSpan,
  Placement,
  Timeline,
  TimelineConnection,
  WireSegment,
} from "../report/timeline.js";
import {
  buildChimneyWorld,
  type ChimneyWorld,
  type WorldHost,
  type WorldHostOptions,
} from "../sim/chimney-world.js";
import type { FaultProfile } from "../sim/link.js";
import { tcpConfig } from "../tcp/config.js";
import { Duration, Instant } from "../time/instant.js";
import { mac as parseMacText } from "../wire/ethernet.js";
import type { IpAddr } from "../wire/ip-addr.js";
import { decodeFrame } from "../wire/packet.js";
import type { PcapWriter } from "../wire/pcap.js";
import { formatPacket } from "../wire/pretty.js";
import { NblOwners } from "./nbl-owners.js";
import {
  type HostName,
  type ReadMode,
  type Scenario,
  type ScenarioConnection,
  type ScenarioFaults,
  type ScenarioHost,
  STAT_NAMES,
  type ScheduleStep,
  type WritePhase,
} from "./schema.js";

/** Options of `runScenario`. */
export interface RunScenarioOptions {
  /** Capture every frame (as sent) into this writer. */
  readonly pcap?: PcapWriter | undefined;
  /** Receives a tcpdump-style line, with its virtual timestamp, per frame. */
  readonly onTrace?: ((line: string) => void) | undefined;
  /** Called now and then with the bytes read so far and in all, and the virtual time (µs). */
  readonly onProgress?: ((bytesRead: number, bytesTotal: number, nowUs: number) => void) | undefined;
  /** What the timeline calls the scenario (e.g. its file name); default the scenario's name. */
  readonly label?: string | undefined;
  /** Most entries kept per timeline list (segments, NBLs, reads, narration); default 20000. */
  readonly timelineLimit?: number | undefined;
}

/** One verification. */
export interface ScenarioCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** What a run produced. */
export interface ScenarioResult {
  readonly scenario: string;
  readonly seed: number;
  readonly passed: boolean;
  readonly checks: readonly ScenarioCheck[];
  /** Manager counters summed over hosts, plus run counters (`events`, `endUs`, `frames`, `linkDropped`). */
  readonly counters: Readonly<Record<string, number>>;
  readonly timeline: Timeline;
}

/** The byte at offset `i` of stream `stream` (each connection direction has its own). */
export function patternByte(stream: number, i: number): number {
  return (i * 13 + (i >>> 9) + stream * 71 + (stream >>> 8) * 7) & 0xff;
}

function fill(stream: number, from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = patternByte(stream, from + i);
  return out;
}

const ADDR: Readonly<Record<HostName, { v4: IpAddr; v6: IpAddr }>> = {
  a: {
    v4: Uint8Array.of(192, 0, 2, 1),
    v6: Uint8Array.of(0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
  },
  b: {
    v4: Uint8Array.of(192, 0, 2, 2),
    v6: Uint8Array.of(0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2),
  },
};
const MACS: Readonly<Record<HostName, string>> = { a: "02:00:00:00:00:01", b: "02:00:00:00:00:02" };
const other = (h: HostName): HostName => (h === "a" ? "b" : "a");

/** One end of one connection, and what its application has done. */
interface End {
  readonly id: string;
  readonly side: "client" | "server";
  readonly host: HostName;
  /** Stream it writes; it reads the peer's. */
  readonly stream: number;
  readonly toWrite: number;
  readonly chunk: number;
  /** The application writes nothing before this virtual time. */
  readonly writeFromUs: number;
  /** Its write phases: from `atUs` on it may have written `upTo` bytes in all (time order). */
  readonly phases: readonly { readonly atUs: number; readonly upTo: number }[];
  readonly read: ReadMode;
  conn: HostConn | undefined;
  peer: End | undefined;
  written: number;
  got: number;
  /** First offset whose byte differed, if any. */
  mismatchAt: number | undefined;
  finSeen: boolean;
  eof: boolean;
  /** Bytes read after the stream had ended (after peer-fin with nothing left to read). */
  afterEof: number;
  closed: boolean;
  closedEvent: boolean;
  error: string | undefined;
  paused: boolean;
  /** Timeline placement tracking. */
  placement: Placement;
  since: number;
  readonly spans: PhaseSpan[];
  /** When its connection entered TIME-WAIT here, and left it (closed). */
  timeWaitFromUs: number | undefined;
  timeWaitToUs: number | undefined;
}

/** Runs `scenario` with `seed`; never throws on a failed verification (see `passed`). */
export function runScenario(
  scenario: Scenario,
  seed: number,
  options: RunScenarioOptions = {},
): ScenarioResult {
  return new ScenarioRun(scenario, seed, options).play();
}

/** Write phases as cumulative byte counts from virtual times on. */
function phasesOf(writes: readonly WritePhase[]): { atUs: number; upTo: number }[] {
  let upTo = 0;
  return writes.map((w) => {
    upTo += w.bytes;
    return { atUs: Math.round(w.atMs * 1000), upTo };
  });
}

/** How much of its stream `e` may have written by `nowUs`. */
function writable(e: End, nowUs: number): number {
  let limit = 0;
  for (const p of e.phases) if (p.atUs <= nowUs) limit = p.upTo;
  return limit;
}

/** The `side` end of connection `id`, writing stream number `stream`, before it connects. */
function newEnd(id: string, side: "client" | "server", spec: ScenarioConnection, stream: number): End {
  const read = side === "client" ? spec.clientRead : spec.serverRead;
  return {
    id,
    side,
    host: side === "client" ? spec.client : other(spec.client),
    stream,
    toWrite: side === "client" ? spec.clientBytes : spec.serverBytes,
    chunk: spec.chunk,
    writeFromUs: Math.round((side === "client" ? spec.clientWriteFromMs : spec.serverWriteFromMs) * 1000),
    phases:
      side === "client"
        ? phasesOf(spec.clientWrites)
        : [{ atUs: Math.round(spec.serverWriteFromMs * 1000), upTo: spec.serverBytes }],
    read,
    conn: undefined,
    peer: undefined,
    written: 0,
    got: 0,
    mismatchAt: undefined,
    finSeen: false,
    eof: false,
    afterEof: 0,
    closed: false,
    closedEvent: false,
    error: undefined,
    paused: read.mode === "paused",
    placement: "host",
    since: 0,
    spans: [],
    timeWaitFromUs: undefined,
    timeWaitToUs: undefined,
  };
}

/**
 * One run of a scenario. The constructor builds the world and taps its frames and NBL hand-offs
 * (the managers' logs are read as the run goes); `play` then takes the steps in order.
 */
class ScenarioRun {
  readonly #scenario: Scenario;
  readonly #seed: number = 0;
  readonly #options: RunScenarioOptions;
  /** Most entries kept per timeline list. */
  readonly #limit: number = 0;
  readonly #segments: WireSegment[] = [];
  readonly #nbls: NblHandoff[] = [];
  readonly #reads: AppRead[] = [];
  readonly #narration: Narration[] = [];
  /** When a list first reached the limit. */
  #truncatedAtUs: number | undefined;
  /** Every connection's client end, then its server end. */
  readonly #ends: End[] = [];
  #trafficDone = false;
  #trafficDoneUs = 0;
  /** Server ends by `localPort|remotePort|family` on each host, registered at connect time. */
  readonly #pendingAccept = new Map<string, End>();
  readonly #byConn = new Map<HostConn, End>();
  /** Connection ids by `clientPort|serverPort`. */
  readonly #portOwner = new Map<string, string>();
  readonly #nblOwners: Record<HostName, NblOwners> = {
    a: new NblOwners((p, q) => this.#connOfPorts(p, q)),
    b: new NblOwners((p, q) => this.#connOfPorts(p, q)),
  };
  /** The host of each `nbls` entry (NBL ids are per ledger, so per host). */
  readonly #nblHosts: HostName[] = [];
  #frames = 0;
  #linkDropped = 0;
  /**
   * Frames reach the dropping stages as the very objects the tx tracer saw (copies are made
   * only by the corrupt and duplicate stages, after loss), so a drop marks its segment.
   */
  readonly #segmentOf = new WeakMap<Uint8Array, number>();
  readonly #world: ChimneyWorld;
  readonly #hosts: Record<HostName, WorldHost>;
  /** How many entries of each manager's log have become narration. */
  readonly #logSeen: Record<HostName, number> = { a: 0, b: 0 };
  /** Connection ids, and ends, by `host|host connection id`. */
  readonly #connIdOnHost = new Map<string, string>();
  readonly #endOnHost = new Map<string, End>();
  /** The time (ms) of the last scheduled operation; the traffic is not done before it. */
  #lastOpMs = 0;
  /** Scheduler events run. */
  #steps = 0;
  /** The virtual time the run ended. */
  #endUs = 0;

  /** Builds the world, tapping its frames into `segments` and its ledgers' hand-offs into `nbls`. */
  constructor(scenario: Scenario, seed: number, options: RunScenarioOptions) {
    this.#scenario = scenario;
    this.#seed = seed;
    this.#options = options;
    this.#limit = options.timelineLimit ?? 20_000;
    this.#world = buildChimneyWorld({
      seed,
      profile: toProfile(scenario.link.aToB),
      ...reverseOption(scenario.link.aToB, scenario.link.bToA),
      tcp: scenario.tcp,
      a: hostOptions(scenario.hosts.a, this.#nblOwners.a),
      b: hostOptions(scenario.hosts.b, this.#nblOwners.b),
      tap: {
        pcap: options.pcap,
        pcapAt: "tx",
        onFrame: (now, direction, frame) => this.#onFrame(now, direction, frame),
        traceAt: "tx",
        onDrop: (now, direction, frame) => this.#onDrop(now, direction, frame),
      },
    });
    this.#hosts = { a: this.#world.a, b: this.#world.b };
    for (const h of ["a", "b"] as const) {
      const ledger = this.#hosts[h].ledger;
      if (ledger === undefined) continue;
      // The connection is filled in when the run ends (see nbl-owners.ts).
      ledger.observer = (x: LedgerHandoff) => this.#onHandoff(h, x);
    }
  }

  /** Takes the steps in order, once, and returns what the run produced. */
  play(): ScenarioResult {
    this.#applications();
    this.#connections();
    this.#schedule();
    this.#run();
    return this.#checks();
  }

  // ---- set-up: the timeline's taps

  /** The virtual time, in µs. */
  #nowUs(): number {
    return this.#world.sched.now;
  }

  /** Appends `item` to a timeline list unless it is full (then notes when it first was). */
  #push<T>(list: T[], item: T): void {
    if (list.length < this.#limit) list.push(item);
    else this.#truncatedAtUs ??= this.#nowUs();
  }

  /** Adds a narration line at the current time. */
  #say(text: string, connection?: string): void {
    this.#push(this.#narration, { atUs: this.#nowUs(), connection, text });
  }

  /** The connection id of a port pair, either way round. */
  #connOfPorts(p: number, q: number): string | undefined {
    return this.#portOwner.get(`${p}|${q}`) ?? this.#portOwner.get(`${q}|${p}`);
  }

  /** A frame as sent: counted, traced, and kept as a wire segment. */
  #onFrame(now: Instant, direction: string, frame: Uint8Array): void {
    const options = this.#options;
    const segments = this.#segments;
    this.#frames++;
    if (options.onTrace === undefined && segments.length >= this.#limit) return;
    const p = decodeFrame(frame);
    const summary = formatPacket(p);
    let connection: string | undefined;
    if (p.transport?.kind === "tcp")
      connection = this.#connOfPorts(p.transport.tcp.srcPort, p.transport.tcp.dstPort);
    options.onTrace?.(`${((now as number) / 1e6).toFixed(6)} ${direction} ${summary}`);
    if (segments.length < this.#limit) this.#segmentOf.set(frame, segments.length);
    this.#push(segments, {
      atUs: now,
      direction,
      connection,
      summary,
      bytes: frame.length,
      dropped: false,
    });
  }

  /** A frame the link dropped: counted, and its segment marked. */
  #onDrop(_now: Instant, _direction: string, frame: Uint8Array): void {
    this.#linkDropped++;
    const i = this.#segmentOf.get(frame);
    const seg = i === undefined ? undefined : this.#segments[i];
    if (i !== undefined && seg !== undefined) this.#segments[i] = { ...seg, dropped: true };
  }

  /** An NBL hand-off in `h`'s ledger, kept (its connection is found when the run ends). */
  #onHandoff(h: HostName, x: LedgerHandoff): void {
    this.#push(this.#nbls, {
      atUs: this.#nowUs(),
      nbl: x.nbl,
      op: `${h}: ${x.op}${x.kind === "transfer" ? "" : ` (${x.kind})`}`,
      from: x.from,
      to: x.to,
      bytes: x.bytes,
      connection: undefined,
    });
    if (this.#nblHosts.length < this.#nbls.length) this.#nblHosts.push(h);
  }

  /** The managers' logs become narration, in causal order (synced before each note and step). */
  #syncLogs(): void {
    for (const h of ["a", "b"] as const) {
      const log = this.#hosts[h].manager?.log;
      if (log === undefined) continue;
      for (; this.#logSeen[h] < log.length; this.#logSeen[h]++) {
        const e = log[this.#logSeen[h]];
        if (e === undefined) continue;
        const conn = e.conn === undefined ? undefined : this.#connIdOnHost.get(`${h}|${e.conn}`);
        const end = e.conn === undefined ? undefined : this.#endOnHost.get(`${h}|${e.conn}`);
        if (end !== undefined) {
          const p = placementAfter(e.op, e.detail);
          if (p !== undefined) setPlacement(end, p, e.at);
        }
        this.#push(this.#narration, {
          atUs: e.at,
          connection: conn,
          text: `${h}: ${e.op}${e.detail === "" ? "" : ` ${e.detail}`}`,
        });
      }
    }
  }

  // ---- the applications

  /** Hands each host's stack events to the applications of its connection ends. */
  #applications(): void {
    this.#world.a.onEvent((ev) => this.#onEvent("a", ev));
    this.#world.b.onEvent((ev) => this.#onEvent("b", ev));
  }

  /** Samples the connection's phase (catches what the manager's log does not name). */
  #recordPlacement(e: End): void {
    // A connection the upload closed (TcpConnectionClosed) keeps its last phase; it is on the host.
    if (e.conn !== undefined) setPlacement(e, e.closedEvent ? "host" : e.conn.phase, this.#nowUs());
  }

  /** Writes as much of `e`'s stream as the stack takes, then closes if it may. */
  #writeMore(e: End): void {
    const c = e.conn;
    if (c === undefined || e.closed || this.#nowUs() < e.writeFromUs) return;
    const stack = this.#hosts[e.host].stack;
    const limit = writable(e, this.#nowUs());
    while (e.written < limit) {
      const n = stack.send(
        this.#world.now,
        c,
        fill(e.stream, e.written, Math.min(e.chunk, limit - e.written)),
      );
      if (n === 0) break;
      e.written += n;
    }
    this.#maybeClose(e);
  }

  /** Closes `e` once it has written everything (a server end: once its peer's stream ended). */
  #maybeClose(e: End): void {
    const c = e.conn;
    if (c === undefined || e.closed || e.written < e.toWrite || this.#nowUs() < e.writeFromUs) return;
    // The client closes when it has written everything; the server once the client's stream ended.
    if (e.side === "server" && !e.eof) return;
    e.closed = true;
    this.#hosts[e.host].stack.close(this.#world.now, c);
  }

  /** Reads up to `max` bytes (all there are if undefined) and checks them against the pattern. */
  #readSome(e: End, max: number | undefined): void {
    const c = e.conn;
    if (c === undefined) return;
    const stack = this.#hosts[e.host].stack;
    const peer = e.peer;
    const stream = peer?.stream ?? 0;
    const start = e.got;
    let budget = max ?? Number.POSITIVE_INFINITY;
    while (budget > 0) {
      const d = stack.recv(this.#world.now, c, max === undefined ? undefined : budget);
      if (d === undefined || d.length === 0) break;
      if (e.mismatchAt === undefined) {
        for (let i = 0; i < d.length; i++) {
          if (d[i] !== patternByte(stream, e.got + i)) {
            e.mismatchAt = e.got + i;
            break;
          }
        }
      }
      e.got += d.length;
      budget -= d.length;
    }
    if (e.got > start && e.eof) e.afterEof += e.got - start;
    if (e.got > start) {
      this.#push(this.#reads, {
        atUs: this.#nowUs(),
        connection: e.id,
        side: e.side,
        offset: start,
        bytes: e.got - start,
      });
    }
    if (e.finSeen && stack.readable(c) === 0 && !e.eof) {
      e.eof = true;
      this.#maybeClose(e);
    }
  }

  /** Reads what is there, if `e`'s application is reading now. */
  #onReadable(e: End): void {
    if (e.read.mode === "eager" || (e.read.mode === "paused" && !e.paused)) this.#readSome(e, undefined);
  }

  /** A stack event of host `h`, for the application of its connection end. */
  #onEvent(h: HostName, ev: StackEvent): void {
    this.#syncLogs();
    const stack = this.#hosts[h].stack;
    if (ev.kind === "accept") {
      for (let c = stack.accept(ev.listener); c !== undefined; c = stack.accept(ev.listener)) {
        const key = `${c.localPort}|${c.remotePort}|${c.remoteAddr.length}`;
        const e = this.#pendingAccept.get(key);
        if (e === undefined) {
          this.#say(`${h}: accepted an unexpected connection ${c.toString()}`);
          continue;
        }
        this.#pendingAccept.delete(key);
        e.conn = c;
        this.#byConn.set(c, e);
        this.#connIdOnHost.set(`${h}|${c.id}`, e.id);
        this.#endOnHost.set(`${h}|${c.id}`, e);
        this.#recordPlacement(e);
        this.#writeMore(e);
        this.#onReadable(e);
      }
      return;
    }
    const e = this.#byConn.get(ev.conn);
    if (e === undefined) return;
    const x = ev.event;
    switch (x.kind) {
      case "connected":
        this.#say(`${e.side} connected ${ev.conn.toString()}`, e.id);
        this.#writeMore(e);
        break;
      case "writable":
        this.#writeMore(e);
        break;
      case "readable":
        this.#onReadable(e);
        break;
      case "peer-fin":
        e.finSeen = true;
        this.#onReadable(e);
        if (this.#hosts[e.host].stack.readable(ev.conn) === 0 && !e.eof) {
          e.eof = true;
          this.#maybeClose(e);
        }
        break;
      case "closed":
        e.closedEvent = true;
        if (e.timeWaitFromUs !== undefined) e.timeWaitToUs = this.#nowUs();
        if (x.error !== undefined) {
          e.error = x.error;
          this.#say(`${e.side} connection closed with error ${e.error}`, e.id);
        }
        break;
      default:
        break;
    }
  }

  // ---- connections

  /** Listens, makes both ends of every connection, and schedules their connects, writes and reads. */
  #connections(): void {
    const listening = new Set<string>();
    let streamNo = 0;
    for (const spec of this.#scenario.connections) {
      const server = other(spec.client);
      const lkey = `${server}|${spec.port}`;
      if (!listening.has(lkey)) {
        listening.add(lkey);
        this.#hosts[server].stack.listen(spec.port);
      }
      for (let k = 0; k < spec.count; k++) {
        const id = spec.count === 1 ? spec.id : `${spec.id}#${k}`;
        const cl = newEnd(id, "client", spec, streamNo++);
        const sv = newEnd(id, "server", spec, streamNo++);
        cl.peer = sv;
        sv.peer = cl;
        this.#ends.push(cl, sv);
        this.#at(spec.startMs, `connect ${id}`, () => this.#connect(spec, cl, sv));
        for (const e of [cl, sv]) this.#planApplication(e, spec.startMs);
      }
    }
  }

  /** Runs `fn` at virtual time `ms`. */
  #at(ms: number, label: string, fn: () => void): void {
    this.#world.sched.at(Instant.fromMicros(Math.round(ms * 1000)), label, fn);
  }

  /** The client end `cl` connects to the server end `sv`, which its host will accept. */
  #connect(spec: ScenarioConnection, cl: End, sv: End): void {
    const id = cl.id;
    const dst = spec.family === "ipv4" ? ADDR[sv.host].v4 : ADDR[sv.host].v6;
    const c = this.#hosts[spec.client].stack.connect(this.#world.now, dst, spec.port);
    cl.conn = c;
    cl.since = this.#nowUs();
    sv.since = this.#nowUs();
    this.#byConn.set(c, cl);
    this.#connIdOnHost.set(`${spec.client}|${c.id}`, id);
    this.#endOnHost.set(`${spec.client}|${c.id}`, cl);
    this.#pendingAccept.set(`${spec.port}|${c.localPort}|${dst.length}`, sv);
    this.#portOwner.set(`${c.localPort}|${spec.port}`, id);
    this.#say(`${spec.client}: connect ${c.toString()}`, id);
    this.#hosts[spec.client].node.pump();
  }

  /** Schedules `e`'s delayed first write, and its reads unless they are eager (from `startMs`). */
  #planApplication(e: End, startMs: number): void {
    const id = e.id;
    const node = this.#hosts[e.host].node;
    for (const p of e.phases) {
      if (p.atUs <= 0) continue;
      this.#at(p.atUs / 1000, `write ${id} ${e.side}`, () => {
        this.#writeMore(e);
        node.pump();
      });
    }
    const r = e.read;
    if (r.mode === "paused") {
      this.#at(r.untilMs, `resume ${id} ${e.side}`, () => {
        e.paused = false;
        this.#say(`${e.side} application starts reading`, id);
        this.#readSome(e, undefined);
        node.pump();
      });
    } else if (r.mode === "rate") {
      const tick = () => {
        if (e.conn !== undefined) {
          this.#readSome(e, r.bytesPerTick);
          node.pump();
        }
        if (!e.closedEvent && !(e.eof && this.#trafficDone))
          this.#world.sched.after(
            Duration.fromMicros(Math.max(1, Math.round(r.tickMs * 1000))),
            "read tick",
            tick,
          );
      };
      this.#at(startMs, `read ticks ${id} ${e.side}`, tick);
    }
  }

  // ---- the schedule

  /** Schedules the scenario's chimney operations at their virtual times. */
  #schedule(): void {
    for (const s of this.#scenario.schedule) {
      this.#lastOpMs = Math.max(this.#lastOpMs, s.op === "flap" ? (s.untilMs ?? s.atMs) : s.atMs);
      if (s.op === "flap") {
        const every = s.everyMs ?? 1;
        const until = s.untilMs ?? s.atMs;
        for (let t = s.atMs; t <= until + 1e-9; t += every) {
          this.#at(
            t,
            `flap ${s.conn}`,
            this.#asOperation(s, () => this.#flap(s)),
          );
        }
      } else {
        this.#at(
          s.atMs,
          `${s.op} ${s.conn}`,
          this.#asOperation(s, () => this.#operate(s)),
        );
      }
    }
  }

  /** `fn` as an operation on `s.host`: its node pumped and the logs synced before and after. */
  #asOperation(s: ScheduleStep, fn: () => void): () => void {
    const h = this.#hosts[s.host];
    return () => {
      h.node.pump();
      this.#syncLogs();
      fn();
      h.node.pump();
      this.#syncLogs();
    };
  }

  /** The connected ends on `s.host` that `s.conn` names. */
  #selectEnds(s: ScheduleStep): End[] {
    return this.#ends.filter(
      (e) =>
        e.host === s.host &&
        e.conn !== undefined &&
        (s.conn === "*" || e.id === s.conn || e.id.startsWith(`${s.conn}#`)),
    );
  }

  /** The peer's addresses of the families `host`'s connections use (IPv4 when it has none). */
  #peerIps(host: HostName): IpAddr[] {
    const fams = new Set(
      this.#ends.filter((e) => e.host === host && e.conn !== undefined).map((e) => e.conn?.remoteAddr.length),
    );
    const out: IpAddr[] = [];
    if (fams.has(4) || fams.size === 0) out.push(ADDR[other(host)].v4);
    if (fams.has(16)) out.push(ADDR[other(host)].v6);
    return out;
  }

  /** Offloads the selected connections on the host, and terminates the offloaded ones. */
  #flap(s: ScheduleStep): void {
    const mgr = this.#hosts[s.host].manager;
    if (mgr === undefined) return;
    let up = 0;
    let down = 0;
    let busy = 0;
    for (const e of this.#selectEnds(s)) {
      const c = e.conn as HostConn;
      if (c.phase === "host" && mgr.offload(c)) up++;
      else if (c.phase === "offloaded" && mgr.terminate(c, "flap")) down++;
      else busy++;
    }
    this.#say(`schedule: flap on ${s.host}: ${up} offload(s), ${down} terminate(s), ${busy} left alone`);
  }

  /** Performs the scheduled operation `s` and narrates what it did. */
  #operate(s: ScheduleStep): void {
    const h = this.#hosts[s.host];
    const mgr = h.manager;
    if (mgr === undefined) return;
    switch (s.op) {
      case "offload":
      case "terminate":
      case "invalidate":
      case "query":
      case "update-keepalive": {
        const sel = this.#selectEnds(s);
        let n = 0;
        for (const e of sel) {
          const c = e.conn as HostConn;
          let done: boolean;
          if (s.op === "offload") done = mgr.offload(c);
          else if (s.op === "terminate") done = mgr.terminate(c);
          else if (s.op === "invalidate") done = mgr.invalidate(c);
          else if (s.op === "query") done = mgr.query(c) !== undefined;
          else {
            const k = s.keepAlive;
            done = mgr.updateTcp(c, (cur) => ({
              keepAliveEnabled: k?.enabled ?? cur.keepAliveEnabled,
              keepAliveRestart: true,
              kaTimeout:
                k?.timeoutMs === undefined
                  ? cur.kaTimeout
                  : Duration.fromMicros(Math.round(k.timeoutMs * 1000)),
              kaInterval:
                k?.intervalMs === undefined
                  ? cur.kaInterval
                  : Duration.fromMicros(Math.round(k.intervalMs * 1000)),
              kaProbeCount: k?.probes ?? cur.kaProbeCount,
            }));
          }
          if (done) n++;
        }
        this.#say(`schedule: ${s.op} ${s.conn} on ${s.host}: ${n} of ${sel.length} connection(s)`);
        break;
      }
      case "update-pmtu": {
        const mtu = s.mtu ?? 1500;
        let changed = 0;
        for (const ip of this.#peerIps(s.host)) {
          if (h.stack.paths.handleTooBig(this.#world.now, ip, mtu, 1500)) changed++;
        }
        this.#say(
          `schedule: path MTU toward ${other(s.host)} set to ${mtu} on ${s.host} (${changed} path(s) changed)`,
        );
        break;
      }
      case "terminate-neighbor": {
        let n = 0;
        for (const ip of this.#peerIps(s.host)) n += mgr.terminateNeighbor(0, ip);
        this.#say(`schedule: terminate-neighbor on ${s.host}: ${n} connection(s) uploading`);
        break;
      }
      case "invalidate-neighbor": {
        let n = 0;
        for (const ip of this.#peerIps(s.host)) if (mgr.invalidateNeighbor(0, ip)) n++;
        this.#say(`schedule: invalidate-neighbor on ${s.host}: ${n} neighbor(s) invalidated`);
        break;
      }
      case "neighbor-mac": {
        const text = s.mac === "peer" || s.mac === undefined ? MACS[other(s.host)] : s.mac;
        const m = parseMacText(text);
        for (const ip of this.#peerIps(s.host))
          h.stack.neighbors.confirm(this.#world.now, 0, ip, m, true, false);
        this.#say(`schedule: ${s.host} now sees ${other(s.host)} at ${text}`);
        break;
      }
      case "neighbor-remove": {
        let n = 0;
        for (const ip of this.#peerIps(s.host)) if (h.stack.neighbors.remove(0, ip)) n++;
        this.#say(
          `schedule: ${s.host} removed ${n} neighbor entr${n === 1 ? "y" : "ies"} of ${other(s.host)}`,
        );
        break;
      }
      case "flap":
        this.#flap(s);
        break;
    }
  }

  // ---- run

  /** Runs the world until the traffic is done (plus up to 120 s for TIME-WAIT) or its duration ends. */
  #run(): void {
    const options = this.#options;
    const ends = this.#ends;
    const sched = this.#world.sched;
    const trafficEndUs = Math.round(this.#scenario.durationMs * 1000);
    const lastOpUs = Math.round(this.#lastOpMs * 1000);
    const totalBytes = ends.reduce((n, e) => n + e.toWrite, 0);
    const offloadEnds = ends.filter((e) => this.#scenario.hosts[e.host].offload);
    for (;;) {
      const next = sched.nextAt();
      if (next === undefined) break;
      if (!this.#trafficDone && (next as number) > trafficEndUs) break;
      if (this.#trafficDone && (next as number) > this.#trafficDoneUs + 120_000_000) break;
      sched.step();
      this.#steps++;
      this.#syncLogs();
      for (const e of offloadEnds) this.#recordPlacement(e);
      for (const e of ends) this.#noteTimeWait(e);
      if ((this.#steps & 1023) === 0 && options.onProgress !== undefined) {
        let got = 0;
        for (const e of ends) got += e.got;
        options.onProgress(got, totalBytes, this.#nowUs());
      }
      if (!this.#trafficDone && this.#nowUs() >= lastOpUs && this.#allDone()) {
        this.#trafficDone = true;
        this.#trafficDoneUs = this.#nowUs();
        this.#say("every byte written was read; both ends closed");
      }
      if (this.#steps > 50_000_000) break;
    }
    this.#syncLogs();
    if (!this.#trafficDone && this.#allDone()) {
      // The world went idle before the last scheduled operation's time: nothing was left to do.
      this.#trafficDone = true;
      this.#trafficDoneUs = this.#nowUs();
    }
    const endUs = this.#nowUs();
    this.#endUs = endUs;
    for (const e of ends) {
      if (e.conn === undefined) continue;
      this.#recordPlacement(e);
      e.spans.push({ placement: e.placement, fromUs: e.since, toUs: Math.max(endUs, e.since) });
    }
    options.onProgress?.(totalBytes, totalBytes, this.#nowUs());
  }

  /** Every end has written and read everything, and closed. */
  #allDone(): boolean {
    return this.#ends.every((e) => e.eof && e.closed && e.written >= e.toWrite);
  }

  /** Notes when `e` enters TIME-WAIT (only after its application closed it). */
  #noteTimeWait(e: End): void {
    if (e.closed && e.timeWaitFromUs === undefined && e.conn?.tcp?.state === "TIME-WAIT")
      e.timeWaitFromUs = this.#nowUs();
  }

  // ---- checks

  /** Verifies the run (streams, finishing, ledgers, the scenario's expectations) and builds the result. */
  #checks(): ScenarioResult {
    const scenario = this.#scenario;
    const ends = this.#ends;
    const hosts = this.#hosts;
    const checks: { name: string; ok: boolean; detail: string }[] = [];
    const streamProblems: string[] = [];
    let verifiedBytes = 0;
    for (const e of ends) {
      const peer = e.peer;
      if (peer === undefined) continue;
      if (e.afterEof > 0)
        streamProblems.push(`${e.id} ${e.side} read ${e.afterEof} bytes after the end of the stream`);
      else if (e.mismatchAt !== undefined)
        streamProblems.push(`${e.id} ${e.side} read a wrong byte at offset ${e.mismatchAt}`);
      else if (e.got !== peer.toWrite)
        streamProblems.push(`${e.id} ${e.side} read ${e.got} of ${peer.toWrite} bytes`);
      else verifiedBytes += e.got;
    }
    checks.push({
      name: "byte streams identical",
      ok: streamProblems.length === 0,
      detail:
        streamProblems.length === 0
          ? `${ends.length} streams, ${verifiedBytes} bytes read exactly as written`
          : `${streamProblems.slice(0, 3).join("; ")}${streamProblems.length > 3 ? ` (+${streamProblems.length - 3} more)` : ""}`,
    });
    const unfinished = ends.filter((e) => !(e.eof && e.closed) || e.error !== undefined);
    checks.push({
      name: "every connection finished",
      ok: this.#trafficDone && unfinished.length === 0,
      detail:
        unfinished.length === 0
          ? `${ends.length / 2} connection(s) finished by ${(this.#trafficDoneUs / 1000).toFixed(1)} ms`
          : `${unfinished
              .slice(0, 3)
              .map((e) => `${e.id} ${e.side}: ${e.error ?? (e.eof ? "not closed" : "no end of stream")}`)
              .join("; ")} (within ${scenario.durationMs} ms)`,
    });
    for (const h of ["a", "b"] as const) {
      const ledger = hosts[h].ledger;
      if (ledger === undefined) continue;
      let detail = "every NBL is back with its owner";
      let good = true;
      try {
        ledger.assertQuiescent();
      } catch (x) {
        good = false;
        detail = x instanceof Error ? (x.message.split("\n")[0] ?? "") : String(x);
      }
      checks.push({ name: `ledger of ${h} quiescent`, ok: good, detail });
    }
    const counters: Record<string, number> = {};
    for (const k of STAT_NAMES) counters[k] = 0;
    for (const h of ["a", "b"] as const) {
      const st = hosts[h].manager?.stats as Readonly<OffloadStats> | undefined;
      if (st === undefined) continue;
      for (const k of STAT_NAMES) counters[k] = (counters[k] ?? 0) + (st[k] ?? 0);
    }
    const x = scenario.expect;
    if (x.bufferedDataBytesAtLeast !== undefined) {
      const v = counters["bufferedDataIn"] ?? 0;
      checks.push({
        name: "expect bufferedDataBytesAtLeast",
        ok: v >= x.bufferedDataBytesAtLeast,
        detail: `${v} bytes came back as BufferedData (want >= ${x.bufferedDataBytesAtLeast})`,
      });
    }
    for (const [k, want] of Object.entries(x.atLeast)) {
      const v = counters[k] ?? 0;
      checks.push({ name: `expect ${k} >= ${want}`, ok: v >= want, detail: `${k} = ${v}` });
    }
    for (const [k, want] of Object.entries(x.atMost)) {
      const v = counters[k] ?? 0;
      checks.push({ name: `expect ${k} <= ${want}`, ok: v <= want, detail: `${k} = ${v}` });
    }
    counters["events"] = this.#steps;
    counters["frames"] = this.#frames;
    counters["linkDropped"] = this.#linkDropped;
    counters["endUs"] = this.#endUs;
    if (this.#truncatedAtUs !== undefined)
      this.#push(this.#narration, {
        atUs: this.#truncatedAtUs,
        connection: undefined,
        text: `timeline truncated to ${this.#limit} entries per list`,
      });
    const passed = checks.every((c) => c.ok);

    const ownedNbls = this.#nbls.map((n, i) => {
      const h = this.#nblHosts[i];
      return h === undefined ? n : { ...n, connection: this.#nblOwners[h].connectionOf(n.nbl) };
    });
    const label = this.#options.label ?? scenario.name;
    const seed = this.#seed;
    const timeline: Timeline = {
      title: `${scenario.name}: ${scenario.description}`,
      scenario: label,
      seed,
      verdict: { passed, checks },
      endUs: this.#endUs,
      connections: this.#lanes(),
      segments: this.#segments,
      nbls: ownedNbls,
      reads: this.#reads,
      narration: this.#narration.slice().sort((p, q) => p.atUs - q.atUs),
    };
    return { scenario: label, seed, passed, checks, counters, timeline };
  }

  /**
   * One lane per connection: the placement of its end on an offloading host (the server's when
   * both offload; the client's when neither does, always "host"), then its TIME-WAIT.
   */
  #lanes(): TimelineConnection[] {
    const ends = this.#ends;
    const endUs = this.#endUs;
    const connections: TimelineConnection[] = [];
    for (let i = 0; i + 1 < ends.length; i += 2) {
      const [cl, sv] = [ends[i] as End, ends[i + 1] as End];
      const shown =
        sv.conn !== undefined &&
        (this.#scenario.hosts[sv.host].offload || !this.#scenario.hosts[cl.host].offload)
          ? sv
          : cl;
      if (shown.conn === undefined) continue;
      const waits = [cl, sv].filter((e) => e.timeWaitFromUs !== undefined);
      const phases =
        waits.length === 0
          ? shown.spans
          : withTimeWait(
              shown.spans,
              Math.min(...waits.map((e) => e.timeWaitFromUs ?? endUs)),
              Math.max(...waits.map((e) => e.timeWaitToUs ?? endUs)),
            );
      connections.push({ id: shown.id, label: `${shown.host}: ${shown.conn.toString()}`, phases });
    }
    return connections;
  }
}

/** Moves `e` to placement `p` at `at`; zero-length spans are kept (same-instant steps). */
function setPlacement(e: End, p: Placement, at: number): void {
  if (p === e.placement) return;
  const from = Math.min(e.since, at);
  e.spans.push({ placement: e.placement, fromUs: from, toUs: at });
  e.placement = p;
  e.since = at;
}

/**
 * `spans` (contiguous, in time order) with their "host" stretches inside `[fromUs, toUs)` shown
 * as "time-wait": the connection is back on the host, waiting out 2·MSL.
 */
function withTimeWait(spans: readonly PhaseSpan[], fromUs: number, toUs: number): PhaseSpan[] {
  const out: PhaseSpan[] = [];
  for (const p of spans) {
    const a = Math.max(p.fromUs, fromUs);
    const b = Math.min(p.toUs, toUs);
    if (p.placement !== "host" || a >= b) {
      out.push(p);
      continue;
    }
    if (p.fromUs < a) out.push({ placement: "host", fromUs: p.fromUs, toUs: a });
    out.push({ placement: "time-wait", fromUs: a, toUs: b });
    if (b < p.toUs) out.push({ placement: "host", fromUs: b, toUs: p.toUs });
  }
  return out;
}

/** The placement a manager log step leaves its connection in, if it names one. */
function placementAfter(op: string, detail: string): Placement | undefined {
  switch (op) {
    case "InitiateOffload":
      return "offloading";
    case "InitiateOffloadComplete":
      return detail.startsWith("success") ? "offloaded" : "host";
    case "TerminateOffload":
      return "terminating";
    case "TerminateOffloadComplete":
      return "host";
    default:
      return undefined;
  }
}

function hostOptions(h: ScenarioHost, owners: NblOwners): WorldHostOptions {
  if (!h.offload) return { offload: false };
  const receive = h.receive;
  const knobs =
    Object.keys(receive).length === 0
      ? undefined
      : (rng: { nextU32(): number }): ReceiveKnobs => ({
          ...acceptAllKnobs({ nextU32: () => rng.nextU32() }),
          ...definedOnly(receive),
        });
  return {
    offload: true,
    limits: definedOnly(h.limits),
    knobs,
    policy: { autoOffloadAfterBytes: h.autoOffloadAfterBytes, rcvIndicationSize: h.rcvIndicationSize },
    observe: owners.observer(),
  };
}

/** `o` without its undefined fields (for exact optional property types). */
function definedOnly<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

function toProfile(f: ScenarioFaults): FaultProfile {
  return { delayUs: 1000, ...f };
}

function reverseOption(aToB: ScenarioFaults, bToA: ScenarioFaults): { reverse?: FaultProfile } {
  if (JSON.stringify(aToB) === JSON.stringify(bToA)) return {};
  return { reverse: toProfile(bToA) };
}

/** The TCP defaults a scenario's `tcp` section may override (for `validateScenario`). */
export function tcpDefaults(): Readonly<Record<string, unknown>> {
  return tcpConfig({}) as unknown as Readonly<Record<string, unknown>>;
}
