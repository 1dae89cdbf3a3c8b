/**
 * Reading a `Timeline` back from JSON (what `chimney run --timeline` writes). Parse, don't
 * validate: the input is `unknown`, the output a fresh `Timeline` or the first place where the
 * shape is wrong, named by its path (`segments[3].atUs`) and what was expected there. Never
 * throws on input.
 *
 * JSON has no `undefined`: an optional `connection` may be missing or `null`, and both become
 * `undefined`. Unknown extra fields are ignored.
 */
import { err, ok, type Result } from "../util/errors.js";
import type {
  AppRead,
  NblHandoff,
  Narration,
  PhaseSpan,
  Placement,
  Timeline,
  TimelineConnection,
  WireSegment,
} from "./timeline.js";

/** Where and why a value is not a `Timeline`. */
export interface TimelineShapeError {
  readonly code: "not-a-timeline";
  /** JSON path of the offending value, e.g. `segments[3].atUs` (empty for the root). */
  readonly path: string;
  /** What belongs there, e.g. `a finite number`. */
  readonly expected: string;
  /** What was found, e.g. `a string`. */
  readonly found: string;
}

/** One line: `segments[3].atUs: expected a finite number, found a string`. */
export function describeShapeError(e: TimelineShapeError): string {
  return `${e.path === "" ? "(root)" : e.path}: expected ${e.expected}, found ${e.found}`;
}

const PLACEMENTS: readonly Placement[] = ["host", "offloading", "offloaded", "terminating", "time-wait"];

/** Thrown inside this module only, caught by `parseTimeline`. */
class Bad extends Error {
  readonly error: TimelineShapeError;
  constructor(path: string, expected: string, value: unknown) {
    super(`${path}: expected ${expected}`);
    this.error = { code: "not-a-timeline", path, expected, found: kind(value) };
  }
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number") return Number.isFinite(v) ? `the number ${v}` : "a non-finite number";
  if (typeof v === "string") return v.length > 20 ? "a string" : `the string ${JSON.stringify(v)}`;
  if (typeof v === "object") return "an object";
  return `a ${typeof v}`;
}

type Obj = Readonly<Record<string, unknown>>;

function obj(v: unknown, path: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Bad(path, "an object", v);
  return v as Obj;
}

function at(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function num(o: Obj, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Bad(at(path, key), "a finite number", v);
  return v;
}

function count(o: Obj, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
    throw new Bad(at(path, key), "a non-negative integer", v);
  return v;
}

function str(o: Obj, key: string, path: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new Bad(at(path, key), "a string", v);
  return v;
}

function bool(o: Obj, key: string, path: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw new Bad(at(path, key), "true or false", v);
  return v;
}

function optStr(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new Bad(at(path, key), "a string, null or nothing", v);
  return v;
}

function list<T>(o: Obj, key: string, path: string, each: (item: Obj, path: string) => T): T[] {
  const v = o[key];
  const p = at(path, key);
  if (!Array.isArray(v)) throw new Bad(p, "an array", v);
  const out: T[] = [];
  for (let i = 0; i < v.length; i++) {
    const ip = `${p}[${i}]`;
    out.push(each(obj(v[i] as unknown, ip), ip));
  }
  return out;
}

function phase(o: Obj, path: string): PhaseSpan {
  const placement = o["placement"];
  if (typeof placement !== "string" || !(PLACEMENTS as readonly string[]).includes(placement))
    throw new Bad(at(path, "placement"), `one of ${PLACEMENTS.join(", ")}`, placement);
  const fromUs = num(o, "fromUs", path);
  const toUs = num(o, "toUs", path);
  if (toUs < fromUs) throw new Bad(at(path, "toUs"), `a time not before fromUs (${fromUs})`, toUs);
  return { placement: placement as Placement, fromUs, toUs };
}

function connection(o: Obj, path: string): TimelineConnection {
  return { id: str(o, "id", path), label: str(o, "label", path), phases: list(o, "phases", path, phase) };
}

function segment(o: Obj, path: string): WireSegment {
  return {
    atUs: num(o, "atUs", path),
    direction: str(o, "direction", path),
    connection: optStr(o, "connection", path),
    summary: str(o, "summary", path),
    bytes: count(o, "bytes", path),
    dropped: bool(o, "dropped", path),
  };
}

function handoff(o: Obj, path: string): NblHandoff {
  return {
    atUs: num(o, "atUs", path),
    nbl: num(o, "nbl", path),
    op: str(o, "op", path),
    from: str(o, "from", path),
    to: str(o, "to", path),
    bytes: count(o, "bytes", path),
    connection: optStr(o, "connection", path),
  };
}

function read(o: Obj, path: string): AppRead {
  return {
    atUs: num(o, "atUs", path),
    connection: str(o, "connection", path),
    side: str(o, "side", path),
    offset: count(o, "offset", path),
    bytes: count(o, "bytes", path),
  };
}

function narration(o: Obj, path: string): Narration {
  return {
    atUs: num(o, "atUs", path),
    connection: optStr(o, "connection", path),
    text: str(o, "text", path),
  };
}

/** Reads a `Timeline` out of parsed JSON, or names the first field that is not what it should be. */
export function parseTimeline(value: unknown): Result<Timeline, TimelineShapeError> {
  try {
    const root = obj(value, "");
    const v = obj(root["verdict"], "verdict");
    return ok({
      title: str(root, "title", ""),
      scenario: str(root, "scenario", ""),
      seed: num(root, "seed", ""),
      verdict: {
        passed: bool(v, "passed", "verdict"),
        checks: list(v, "checks", "verdict", (c, p) => ({
          name: str(c, "name", p),
          ok: bool(c, "ok", p),
          detail: str(c, "detail", p),
        })),
      },
      endUs: num(root, "endUs", ""),
      connections: list(root, "connections", "", connection),
      segments: list(root, "segments", "", segment),
      nbls: list(root, "nbls", "", handoff),
      reads: list(root, "reads", "", read),
      narration: list(root, "narration", "", narration),
    });
  } catch (e) {
    if (e instanceof Bad) return err(e.error);
    throw e;
  }
}
