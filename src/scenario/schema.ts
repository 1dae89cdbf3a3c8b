/**
 * Scenario files: the typed form of a scenario and its validator. A scenario describes the two
 * hosts of the chimney world (which have offload targets, their limits and receive knobs), the
 * link's faults per direction, TCP options, the traffic (connections, bytes each way, how each
 * application reads) and a schedule of chimney operations at virtual times.
 *
 * `validateScenario` takes the parsed document (JSON or YAML, already turned into plain values)
 * and returns the scenario or the first problem, as a field path (`traffic[0].bytes`) and what
 * was expected and found. It never throws on input. The schema is written out here as code
 * rather than with a schema library: the messages are exact and the types come for free.
 */
import { tcpConfig } from "../tcp/config.js";
import { ConfigError, err, ok, type Result } from "../util/errors.js";

/**
 * How much work a scenario may ask for. A scenario file is input: one that passes every field's
 * check can still ask for absurd work (a flap every microsecond, millions of steps, a gigabyte a
 * byte at a time), so the totals are bounded too, each with its own message.
 */
export const SCENARIO_LIMITS = {
  /** Schedule entries. */
  scheduleSteps: 10_000,
  /** Connections, all `count`s summed. */
  connections: 10_000,
  /** Bytes of one direction of one connection. */
  bytesPerDirection: 2 ** 30,
  /** Bytes of every connection and direction together. */
  totalBytes: 2 ** 32,
  /** The smallest application write. */
  minChunk: 64,
  /** The shortest flap period, ms of virtual time. */
  minFlapMs: 1,
  /** Offload / terminate toggles of all flaps together. */
  flapToggles: 100_000,
} as const;

/** Which host of the world: `a` (192.0.2.1) or `b` (192.0.2.2). */
export type HostName = "a" | "b";

/** Resource limits of a host's offload target (see the software target's `TargetLimits`). */
export interface ScenarioLimits {
  readonly tcp?: number | undefined;
  readonly path?: number | undefined;
  readonly neighbor?: number | undefined;
  readonly bufferBytes?: number | undefined;
  readonly maxPathMtu?: number | undefined;
  readonly maxRcvWnd?: number | undefined;
}

/** How the host's manager consumes received data of offloaded connections (its receive knobs). */
export interface ScenarioReceive {
  readonly acceptAll?: number | undefined;
  readonly acceptPrefix?: number | undefined;
  readonly refuse?: number | undefined;
  readonly post?: number | undefined;
  readonly postSizes?: readonly number[] | undefined;
  readonly nonPush?: number | undefined;
  readonly prefill?: number | undefined;
  readonly zeroByte?: number | undefined;
  readonly queueLimit?: number | undefined;
}

/** One host of the scenario. */
export interface ScenarioHost {
  /** Has an offload target (default: true for `b`, false for `a`). */
  readonly offload: boolean;
  readonly limits: ScenarioLimits;
  readonly receive: ScenarioReceive;
  /** Offload established connections on the manager's own once they moved this many bytes. */
  readonly autoOffloadAfterBytes?: number | undefined;
  /** Preferred bytes per indication (RcvIndicationSize). */
  readonly rcvIndicationSize?: number | undefined;
}

/** Faults of one link direction (the simulator's `FaultProfile` fields). */
export interface ScenarioFaults {
  readonly delayUs?: number | undefined;
  readonly jitterUs?: number | undefined;
  readonly jitterReorders?: boolean | undefined;
  readonly loss?: number | undefined;
  readonly burstLoss?:
    | {
        readonly p: number;
        readonly r: number;
        readonly lossGood?: number | undefined;
        readonly lossBad?: number | undefined;
      }
    | undefined;
  readonly duplicate?: number | undefined;
  readonly reorder?:
    | {
        readonly rate: number;
        readonly holdFrames?: number | undefined;
        readonly holdUs?: number | undefined;
      }
    | undefined;
  readonly corrupt?: number | undefined;
  readonly rateBps?: number | undefined;
  readonly queueBytes?: number | undefined;
  readonly queueFrames?: number | undefined;
}

/** How an application reads: as soon as data is there, not before a time, or N bytes per tick. */
export type ReadMode =
  | { readonly mode: "eager" }
  | { readonly mode: "paused"; readonly untilMs: number }
  | { readonly mode: "rate"; readonly bytesPerTick: number; readonly tickMs: number };

/**
 * The port of a connection that names none. Scenario traffic is a byte pattern, not an
 * application protocol, so its port is one no Wireshark dissector claims (80, 443 or 8080 would
 * have tshark parse the pattern as HTTP or TLS and flag every segment of a capture).
 */
export const DEFAULT_SCENARIO_PORT = 7001;

/** A connection (or `count` alike) of the traffic. */
export interface ScenarioConnection {
  readonly id: string;
  /** The host that connects; the other one listens. */
  readonly client: HostName;
  /** Default `DEFAULT_SCENARIO_PORT`. */
  readonly port: number;
  readonly family: "ipv4" | "ipv6";
  readonly count: number;
  readonly startMs: number;
  /** Bytes the client writes, and the server writes. */
  readonly clientBytes: number;
  readonly serverBytes: number;
  /** Bytes per `send` call. */
  readonly chunk: number;
  /** When each application starts writing (default: as soon as it is connected). */
  readonly clientWriteFromMs: number;
  readonly serverWriteFromMs: number;
  /**
   * The client's writes in phases: from `atMs` on it may write `bytes` more (phases in time order;
   * `clientBytes` is their sum). One phase of `clientBytes` at `clientWriteFromMs` when not given.
   */
  readonly clientWrites: readonly WritePhase[];
  readonly clientRead: ReadMode;
  readonly serverRead: ReadMode;
}

/** One phase of an application's writes. */
export interface WritePhase {
  readonly atMs: number;
  readonly bytes: number;
}

/** The chimney operations a schedule can run. */
export const SCHEDULE_OPS = [
  "offload",
  "terminate",
  "invalidate",
  "query",
  "flap",
  "update-keepalive",
  "update-pmtu",
  "terminate-neighbor",
  "invalidate-neighbor",
  "neighbor-mac",
  "neighbor-remove",
] as const;

/** One of `SCHEDULE_OPS`. */
export type ScheduleOpName = (typeof SCHEDULE_OPS)[number];

/** One step of the schedule. */
export interface ScheduleStep {
  readonly atMs: number;
  readonly op: ScheduleOpName;
  /** The host whose manager runs it (default `b`). */
  readonly host: HostName;
  /** A connection id (all of its `count`), or `*` for every connection (default `*`). */
  readonly conn: string;
  /** `flap`: toggle every `everyMs` until `untilMs`. */
  readonly everyMs?: number | undefined;
  readonly untilMs?: number | undefined;
  /** `update-pmtu`: the new path MTU toward the peer. */
  readonly mtu?: number | undefined;
  /** `neighbor-mac`: the peer's new MAC as the host sees it (`peer` = its real one). */
  readonly mac?: string | undefined;
  /** `update-keepalive`: the keep-alive settings to push. */
  readonly keepAlive?:
    | {
        readonly enabled: boolean;
        readonly timeoutMs?: number | undefined;
        readonly intervalMs?: number | undefined;
        readonly probes?: number | undefined;
      }
    | undefined;
}

/** The manager counters a scenario may put bounds on (the manager's `OffloadStats`). */
export const STAT_NAMES = [
  "initiates",
  "initiateSuccesses",
  "initiateFailures",
  "terminates",
  "updates",
  "invalidates",
  "queries",
  "sends",
  "sendBytesCompleted",
  "indications",
  "indicatedBytesAccepted",
  "refusals",
  "posts",
  "zeroBytePosts",
  "postedBytesCompleted",
  "forwards",
  "heldSegments",
  "bufferedDataIn",
  "bufferedDataOut",
  "reachabilityQueries",
  "uploadsBufferedBothSides",
  "prefilledPosts",
] as const;

/** One of `STAT_NAMES`. */
export type StatName = (typeof STAT_NAMES)[number];

/** What the scenario itself expects, beyond the checks every run makes. */
export interface ScenarioExpect {
  /** At least this many bytes came back as BufferedData at terminates (all hosts). */
  readonly bufferedDataBytesAtLeast?: number | undefined;
  /** Lower and upper bounds on manager counters, summed over hosts. */
  readonly atLeast: Readonly<Partial<Record<StatName, number>>>;
  readonly atMost: Readonly<Partial<Record<StatName, number>>>;
}

/** A validated scenario. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Virtual time the traffic may take before the run counts as stuck. */
  readonly durationMs: number;
  readonly hosts: { readonly a: ScenarioHost; readonly b: ScenarioHost };
  readonly link: { readonly aToB: ScenarioFaults; readonly bToA: ScenarioFaults };
  /** Overrides of the TCP defaults (the engine's `TcpConfig` fields: numbers and booleans). */
  readonly tcp: Readonly<Record<string, number | boolean>>;
  readonly connections: readonly ScenarioConnection[];
  readonly schedule: readonly ScheduleStep[];
  readonly expect: ScenarioExpect;
}

/** Where a scenario is wrong: a field path (`connections[0].clientBytes`) and the message. */
export interface ScenarioError {
  readonly path: string;
  readonly message: string;
}

/** One line: `path: message` (the CLI puts the file name in front). */
export function formatScenarioError(e: ScenarioError): string {
  return e.path === "" ? e.message : `${e.path}: ${e.message}`;
}

/** Options of `validateScenario`. */
export interface ValidateOptions {
  /** The TCP defaults: which `tcp` keys exist and their types (numbers or booleans). */
  readonly tcpDefaults?: Readonly<Record<string, unknown>> | undefined;
}

// ---------------------------------------------------------------------------------------------
// The validator: each reader takes (value, path) and throws `Bad` (caught in validateScenario).

class Bad extends Error {
  readonly error: ScenarioError;
  constructor(path: string, message: string) {
    super(message);
    this.error = { path, message };
  }
}

type Obj = Readonly<Record<string, unknown>>;

/** How a value reads in a message: `"lots"`, `-1`, `a list`, `an object`, `null`. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
    case "boolean":
      return String(v);
    case "object":
      return "an object";
    case "undefined":
      return "nothing";
    default:
      return typeof v;
  }
}

function expected(path: string, what: string, found: unknown): never {
  throw new Bad(path, `expected ${what}, found ${describeValue(found)}`);
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function object(v: unknown, path: string, keys: readonly string[], required: readonly string[] = []): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) expected(path, "an object", v);
  const o = v as Obj;
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) {
      throw new Bad(join(path, k), `unknown field (expected one of: ${keys.join(", ")})`);
    }
  }
  for (const k of required) {
    if (o[k] === undefined) throw new Bad(join(path, k), "missing (required)");
  }
  return o;
}

function optObject(
  o: Obj,
  key: string,
  path: string,
  keys: readonly string[],
  required: readonly string[] = [],
): Obj {
  const v = o[key];
  return v === undefined ? {} : object(v, join(path, key), keys, required);
}

function num(
  o: Obj,
  key: string,
  path: string,
  kind: "int" | "number" | "prob",
  min = 0,
  max = Number.POSITIVE_INFINITY,
): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  const p = join(path, key);
  const what =
    kind === "prob"
      ? "a probability in [0, 1]"
      : kind === "int"
        ? min === 0
          ? "a non-negative integer"
          : min === 1 && max === Number.POSITIVE_INFINITY
            ? "a positive integer"
            : `an integer in [${min}, ${max}]`
        : min === 0
          ? "a non-negative number"
          : `a number >= ${min}`;
  if (typeof v !== "number" || !Number.isFinite(v)) expected(p, what, v);
  if (kind === "int" && !Number.isSafeInteger(v)) expected(p, what, v);
  const hi = kind === "prob" ? 1 : max;
  if (v < min || v > hi) expected(p, what, v);
  return v;
}

function bool(o: Obj, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") expected(join(path, key), "true or false", v);
  return v;
}

function str(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") expected(join(path, key), "a string", v);
  return v;
}

function oneOf<T extends string>(o: Obj, key: string, path: string, options: readonly T[]): T | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !(options as readonly string[]).includes(v)) {
    expected(join(path, key), `one of ${options.map((x) => JSON.stringify(x)).join(", ")}`, v);
  }
  return v as T;
}

function list(o: Obj, key: string, path: string): readonly unknown[] {
  const v = o[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) expected(join(path, key), "a list", v);
  return v as readonly unknown[];
}

// ---------------------------------------------------------------------------------------------

const LIMIT_KEYS = ["tcp", "path", "neighbor", "bufferBytes", "maxPathMtu", "maxRcvWnd"] as const;
const RECEIVE_KEYS = [
  "acceptAll",
  "acceptPrefix",
  "refuse",
  "post",
  "postSizes",
  "nonPush",
  "prefill",
  "zeroByte",
  "queueLimit",
] as const;

function host(o: Obj, key: HostName, path: string): ScenarioHost {
  const h = optObject(o, key, path, [
    "offload",
    "limits",
    "receive",
    "autoOffloadAfterBytes",
    "rcvIndicationSize",
  ]);
  const p = join(path, key);
  const lim = optObject(h, "limits", p, LIMIT_KEYS);
  const limits: Record<string, number> = {};
  for (const k of LIMIT_KEYS) {
    const n = num(lim, k, join(p, "limits"), "int");
    if (n !== undefined) limits[k] = n;
  }
  const rp = join(p, "receive");
  const rec = optObject(h, "receive", p, RECEIVE_KEYS);
  const receive: Record<string, unknown> = {};
  for (const k of ["acceptAll", "acceptPrefix", "refuse"] as const) {
    const n = num(rec, k, rp, "number");
    if (n !== undefined) receive[k] = n;
  }
  for (const k of ["post", "nonPush", "prefill", "zeroByte"] as const) {
    const n = num(rec, k, rp, "prob");
    if (n !== undefined) receive[k] = n;
  }
  const q = num(rec, "queueLimit", rp, "int");
  if (q !== undefined) receive["queueLimit"] = q;
  const sizes = list(rec, "postSizes", rp);
  if (rec["postSizes"] !== undefined) {
    if (sizes.length === 0) expected(join(rp, "postSizes"), "a non-empty list of positive integers", sizes);
    receive["postSizes"] = sizes.map((s, i) => {
      if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 1) {
        expected(`${join(rp, "postSizes")}[${i}]`, "a positive integer", s);
      }
      return s;
    });
  }
  return {
    offload: bool(h, "offload", p) ?? key === "b",
    limits,
    receive: receive,
    autoOffloadAfterBytes: num(h, "autoOffloadAfterBytes", p, "int"),
    rcvIndicationSize: num(h, "rcvIndicationSize", p, "int"),
  };
}

const FAULT_KEYS = [
  "delayUs",
  "jitterUs",
  "jitterReorders",
  "loss",
  "burstLoss",
  "duplicate",
  "reorder",
  "corrupt",
  "rateBps",
  "queueBytes",
  "queueFrames",
] as const;

function faults(v: Obj, p: string): ScenarioFaults {
  const out: Record<string, unknown> = {};
  for (const k of ["delayUs", "jitterUs", "queueBytes", "queueFrames"] as const) {
    const n = num(v, k, p, "int");
    if (n !== undefined) out[k] = n;
  }
  const rate = num(v, "rateBps", p, "int", 1);
  if (rate !== undefined) out["rateBps"] = rate;
  for (const k of ["loss", "duplicate", "corrupt"] as const) {
    const n = num(v, k, p, "prob");
    if (n !== undefined) out[k] = n;
  }
  const jr = bool(v, "jitterReorders", p);
  if (jr !== undefined) out["jitterReorders"] = jr;
  if (v["burstLoss"] !== undefined) {
    const bp = join(p, "burstLoss");
    const b = object(v["burstLoss"], bp, ["p", "r", "lossGood", "lossBad"], ["p", "r"]);
    out["burstLoss"] = {
      p: num(b, "p", bp, "prob"),
      r: num(b, "r", bp, "prob"),
      lossGood: num(b, "lossGood", bp, "prob"),
      lossBad: num(b, "lossBad", bp, "prob"),
    };
  }
  if (v["reorder"] !== undefined) {
    const rp = join(p, "reorder");
    const r = object(v["reorder"], rp, ["rate", "holdFrames", "holdUs"], ["rate"]);
    out["reorder"] = {
      rate: num(r, "rate", rp, "prob"),
      holdFrames: num(r, "holdFrames", rp, "int", 1),
      holdUs: num(r, "holdUs", rp, "int"),
    };
  }
  return out;
}

function link(o: Obj): Scenario["link"] {
  const l = optObject(o, "link", "", [...FAULT_KEYS, "aToB", "bToA"]);
  const both = faults(
    Object.fromEntries(Object.entries(l).filter(([k]) => k !== "aToB" && k !== "bToA")),
    "link",
  );
  const aToB = faults(optObject(l, "aToB", "link", FAULT_KEYS), "link.aToB");
  const bToA = faults(optObject(l, "bToA", "link", FAULT_KEYS), "link.bToA");
  return { aToB: { ...both, ...aToB }, bToA: { ...both, ...bToA } };
}

function tcp(
  o: Obj,
  defaults: Readonly<Record<string, unknown>> | undefined,
): Record<string, number | boolean> {
  const t = o["tcp"];
  if (t === undefined) return {};
  const keys =
    defaults === undefined
      ? undefined
      : Object.keys(defaults).filter(
          (k) => typeof defaults[k] === "number" || typeof defaults[k] === "boolean",
        );
  const obj = keys === undefined ? object(t, "tcp", Object.keys(t as object)) : object(t, "tcp", keys);
  const out: Record<string, number | boolean> = {};
  for (const [k, v] of Object.entries(obj)) {
    const want = defaults?.[k];
    if (typeof want === "boolean") {
      if (typeof v !== "boolean") expected(`tcp.${k}`, "true or false", v);
      out[k] = v;
    } else {
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
        expected(`tcp.${k}`, "a non-negative integer", v);
      }
      out[k] = v;
    }
  }
  return out;
}

function readMode(o: Obj, key: string, path: string): ReadMode {
  const v = o[key];
  const p = join(path, key);
  if (v === undefined || v === "eager") return { mode: "eager" };
  if (typeof v === "string") expected(p, `"eager", {pausedUntilMs} or {bytesPerTick, tickMs}`, v);
  const r = object(v, p, ["pausedUntilMs", "bytesPerTick", "tickMs"]);
  if (r["pausedUntilMs"] !== undefined) {
    if (r["bytesPerTick"] !== undefined || r["tickMs"] !== undefined) {
      throw new Bad(p, "expected either pausedUntilMs or bytesPerTick with tickMs, found both");
    }
    return { mode: "paused", untilMs: num(r, "pausedUntilMs", p, "number") ?? 0 };
  }
  if (r["bytesPerTick"] === undefined) throw new Bad(join(p, "bytesPerTick"), "missing (required)");
  if (r["tickMs"] === undefined) throw new Bad(join(p, "tickMs"), "missing (required)");
  return {
    mode: "rate",
    bytesPerTick: num(r, "bytesPerTick", p, "int", 1) ?? 1,
    tickMs: num(r, "tickMs", p, "number", 0.001) ?? 1,
  };
}

const CONN_KEYS = [
  "id",
  "client",
  "port",
  "family",
  "count",
  "startMs",
  "clientBytes",
  "serverBytes",
  "chunk",
  "clientWriteFromMs",
  "clientWrites",
  "serverWriteFromMs",
  "clientRead",
  "serverRead",
] as const;

function connection(v: unknown, i: number): ScenarioConnection {
  const p = `connections[${i}]`;
  const c = object(v, p, CONN_KEYS, hasWritePhases(v) ? [] : ["clientBytes"]);
  const id = str(c, "id", p) ?? `c${i}`;
  if (!/^[A-Za-z0-9_.-]+$/.test(id))
    expected(join(p, "id"), "a name of letters, digits, '_', '.' or '-'", id);
  const phases = writePhases(c, p);
  return {
    id,
    client: oneOf(c, "client", p, ["a", "b"] as const) ?? "a",
    port: num(c, "port", p, "int", 1, 65535) ?? DEFAULT_SCENARIO_PORT,
    family: oneOf(c, "family", p, ["ipv4", "ipv6"] as const) ?? "ipv4",
    count: num(c, "count", p, "int", 1, 1000) ?? 1,
    startMs: num(c, "startMs", p, "number") ?? 0,
    clientBytes: phases.reduce((n, w) => n + w.bytes, 0),
    serverBytes: num(c, "serverBytes", p, "int", 0, SCENARIO_LIMITS.bytesPerDirection) ?? 0,
    chunk: num(c, "chunk", p, "int", SCENARIO_LIMITS.minChunk) ?? 8192,
    clientWriteFromMs: phases[0]?.atMs ?? 0,
    clientWrites: phases,
    serverWriteFromMs: num(c, "serverWriteFromMs", p, "number") ?? 0,
    clientRead: readMode(c, "clientRead", p),
    serverRead: readMode(c, "serverRead", p),
  };
}

/** True when the connection document gives its client's writes as phases. */
function hasWritePhases(v: unknown): boolean {
  return v !== null && typeof v === "object" && "clientWrites" in v;
}

/**
 * The client's write phases: `clientWrites` (in time order, `clientBytes` absent or their sum,
 * no `clientWriteFromMs`), else one phase of `clientBytes` at `clientWriteFromMs`.
 */
function writePhases(c: Obj, p: string): readonly WritePhase[] {
  const bytes = num(c, "clientBytes", p, "int", 0, SCENARIO_LIMITS.bytesPerDirection);
  const from = num(c, "clientWriteFromMs", p, "number");
  if (c["clientWrites"] === undefined) return [{ atMs: from ?? 0, bytes: bytes ?? 0 }];
  const wp = join(p, "clientWrites");
  if (from !== undefined) throw new Bad(wp, "clientWrites and clientWriteFromMs exclude each other");
  const raw = list(c, "clientWrites", p);
  if (raw.length === 0) expected(wp, "a non-empty list", c["clientWrites"]);
  const phases = raw.map((w, i) => {
    const ip = `${wp}[${i}]`;
    const o = object(w, ip, ["atMs", "bytes"], ["atMs", "bytes"]);
    return {
      atMs: num(o, "atMs", ip, "number") ?? 0,
      bytes: num(o, "bytes", ip, "int", 0, SCENARIO_LIMITS.bytesPerDirection) ?? 0,
    };
  });
  phases.forEach((w, i) => {
    const prev = phases[i - 1];
    if (prev !== undefined && w.atMs < prev.atMs)
      expected(`${wp}[${i}].atMs`, `a time >= ${prev.atMs}`, w.atMs);
  });
  const sum = phases.reduce((n, w) => n + w.bytes, 0);
  if (sum > SCENARIO_LIMITS.bytesPerDirection)
    throw new Bad(wp, `${sum} bytes in all; at most ${SCENARIO_LIMITS.bytesPerDirection}`);
  if (bytes !== undefined && bytes !== sum)
    throw new Bad(join(p, "clientBytes"), `${bytes} differs from the sum of clientWrites (${sum})`);
  return phases;
}

/** Fields each operation takes besides `atMs`, `op` and `host`. */
const OP_FIELDS: Readonly<Record<ScheduleOpName, readonly string[]>> = {
  offload: ["conn"],
  terminate: ["conn"],
  invalidate: ["conn"],
  query: ["conn"],
  flap: ["conn", "everyMs", "untilMs"],
  "update-keepalive": ["conn", "keepAlive"],
  "update-pmtu": ["mtu"],
  "terminate-neighbor": [],
  "invalidate-neighbor": [],
  "neighbor-mac": ["mac"],
  "neighbor-remove": [],
};

const OP_REQUIRED: Readonly<Partial<Record<ScheduleOpName, readonly string[]>>> = {
  flap: ["everyMs", "untilMs"],
  "update-keepalive": ["keepAlive"],
  "update-pmtu": ["mtu"],
  "neighbor-mac": ["mac"],
};

function step(v: unknown, i: number, conns: readonly ScenarioConnection[]): ScheduleStep {
  const p = `schedule[${i}]`;
  const head = object(v, p, Object.keys(v !== null && typeof v === "object" ? v : {}), ["atMs", "op"]);
  const op = oneOf(head, "op", p, SCHEDULE_OPS) as ScheduleOpName;
  const s = object(v, p, ["atMs", "op", "host", ...OP_FIELDS[op]], OP_REQUIRED[op] ?? []);
  const atMs = num(s, "atMs", p, "number") ?? 0;
  const conn = str(s, "conn", p) ?? "*";
  if (conn !== "*" && !conns.some((c) => c.id === conn)) {
    expected(join(p, "conn"), `"*" or a connection id (${conns.map((c) => c.id).join(", ")})`, conn);
  }
  const out: {
    -readonly [K in keyof ScheduleStep]: ScheduleStep[K];
  } = { atMs, op, host: oneOf(s, "host", p, ["a", "b"] as const) ?? "b", conn };
  if (op === "flap") {
    out.everyMs = num(s, "everyMs", p, "number", SCENARIO_LIMITS.minFlapMs);
    out.untilMs = num(s, "untilMs", p, "number");
    if ((out.untilMs ?? 0) < atMs) expected(join(p, "untilMs"), `a time >= atMs (${atMs})`, out.untilMs);
  }
  if (op === "update-pmtu") out.mtu = num(s, "mtu", p, "int", 576, 1500);
  if (op === "neighbor-mac") {
    const m = str(s, "mac", p) ?? "";
    if (m !== "peer" && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(m)) {
      expected(join(p, "mac"), `a MAC address like "02:00:00:00:00:99" or "peer"`, m);
    }
    out.mac = m;
  }
  if (op === "update-keepalive") {
    const kp = join(p, "keepAlive");
    const k = object(s["keepAlive"], kp, ["enabled", "timeoutMs", "intervalMs", "probes"], ["enabled"]);
    out["keepAlive"] = {
      enabled: bool(k, "enabled", kp) ?? false,
      timeoutMs: num(k, "timeoutMs", kp, "number"),
      intervalMs: num(k, "intervalMs", kp, "number"),
      probes: num(k, "probes", kp, "int", 1, 255),
    };
  }
  return out;
}

function bounds(o: Obj, key: string): Partial<Record<StatName, number>> {
  const b = optObject(o, key, "expect", STAT_NAMES);
  const out: Partial<Record<StatName, number>> = {};
  for (const k of STAT_NAMES) {
    const n = num(b, k, `expect.${key}`, "int");
    if (n !== undefined) out[k] = n;
  }
  return out;
}

const TOP_KEYS = [
  "name",
  "description",
  "durationMs",
  "hosts",
  "link",
  "tcp",
  "connections",
  "schedule",
  "expect",
] as const;

/** Checks a parsed scenario document; the first problem is returned with its field path. */
export function validateScenario(
  doc: unknown,
  options: ValidateOptions = {},
): Result<Scenario, ScenarioError> {
  try {
    const o = object(doc, "", TOP_KEYS, ["name", "connections"]);
    const hs = optObject(o, "hosts", "", ["a", "b"]);
    const rawConns = list(o, "connections", "");
    if (rawConns.length === 0) expected("connections", "a non-empty list", o["connections"]);
    const connections = rawConns.map(connection);
    const seen = new Set<string>();
    connections.forEach((c, i) => {
      if (seen.has(c.id)) throw new Bad(`connections[${i}].id`, `duplicate id ${JSON.stringify(c.id)}`);
      seen.add(c.id);
    });
    let conns = 0;
    let bytes = 0;
    for (const c of connections) {
      conns += c.count;
      bytes += c.count * (c.clientBytes + c.serverBytes);
    }
    if (conns > SCENARIO_LIMITS.connections)
      throw new Bad("connections", `${conns} connections in all; at most ${SCENARIO_LIMITS.connections}`);
    if (bytes > SCENARIO_LIMITS.totalBytes)
      throw new Bad("connections", `${bytes} bytes in all; at most ${SCENARIO_LIMITS.totalBytes}`);
    const rawSchedule = list(o, "schedule", "");
    if (rawSchedule.length > SCENARIO_LIMITS.scheduleSteps)
      throw new Bad("schedule", `${rawSchedule.length} steps; at most ${SCENARIO_LIMITS.scheduleSteps}`);
    const schedule = rawSchedule.map((s, i) => step(s, i, connections));
    let toggles = 0;
    for (const s of schedule) {
      if (s.op === "flap") toggles += ((s.untilMs ?? s.atMs) - s.atMs) / (s.everyMs ?? 1);
    }
    if (toggles > SCENARIO_LIMITS.flapToggles)
      throw new Bad(
        "schedule",
        `the flaps toggle ${Math.ceil(toggles)} times; at most ${SCENARIO_LIMITS.flapToggles}`,
      );
    const e = optObject(o, "expect", "", ["bufferedDataBytesAtLeast", "atLeast", "atMost"]);
    const scenario: Scenario = {
      name: str(o, "name", "") ?? "",
      description: str(o, "description", "") ?? "",
      durationMs: num(o, "durationMs", "", "number", 1) ?? 10_000,
      hosts: { a: host(hs, "a", "hosts"), b: host(hs, "b", "hosts") },
      link: link(o),
      tcp: tcp(o, options.tcpDefaults),
      connections,
      schedule,
      expect: {
        bufferedDataBytesAtLeast: num(e, "bufferedDataBytesAtLeast", "expect", "int"),
        atLeast: bounds(e, "atLeast"),
        atMost: bounds(e, "atMost"),
      },
    };
    try {
      tcpConfig(scenario.tcp);
    } catch (x) {
      if (x instanceof ConfigError) throw new Bad("tcp", x.message);
      throw x;
    }
    for (const s of schedule) {
      if (!scenario.hosts[s.host].offload) {
        const i = schedule.indexOf(s);
        throw new Bad(
          `schedule[${i}].host`,
          `host ${s.host} has no offload target (hosts.${s.host}.offload is false)`,
        );
      }
    }
    return ok(scenario);
  } catch (x) {
    if (x instanceof Bad) return err(x.error);
    throw x;
  }
}
