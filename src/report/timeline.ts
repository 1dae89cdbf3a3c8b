/**
 * The timeline of a simulated run, as data: what the report renders and `chimney run --timeline`
 * writes as JSON. The simulator's scenario runner fills it in; nothing here knows how. Every
 * event of a connection names it by the id of its `TimelineConnection` (its lane); `activeSpan`
 * is the stretch of the run with activity, the report's default view.
 */

/**
 * Where a connection lives at a moment. `time-wait`: on the host, an end waiting out 2·MSL
 * after the close (idle; the report's default view leaves it out).
 */
export type Placement = "host" | "offloading" | "offloaded" | "terminating" | "time-wait";

/** One stretch of a connection's life in one place. */
export interface PhaseSpan {
  readonly placement: Placement;
  readonly fromUs: number;
  /** Exclusive end; the run's end for the last span. */
  readonly toUs: number;
}

/** A connection and where it lived over time. */
export interface TimelineConnection {
  readonly id: string;
  /** e.g. `192.0.2.1:49152 > 192.0.2.2:80`. */
  readonly label: string;
  readonly phases: readonly PhaseSpan[];
}

/** A frame on the wire. */
export interface WireSegment {
  readonly atUs: number;
  /** Direction label of the link, e.g. `a>b`. */
  readonly direction: string;
  /** The connection it belongs to, when it is a TCP segment of one. */
  readonly connection: string | undefined;
  /** tcpdump-style one-liner. */
  readonly summary: string;
  readonly bytes: number;
  /** A link stage dropped it (loss, burst loss, MTU, bottleneck tail drop). */
  readonly dropped: boolean;
}

/** An NBL changing hands through the ledger. */
export interface NblHandoff {
  readonly atUs: number;
  readonly nbl: number;
  /** The chimney call, e.g. `NdisMTerminateOffloadComplete (BufferedData)`. */
  readonly op: string;
  readonly from: string;
  readonly to: string;
  readonly bytes: number;
  readonly connection: string | undefined;
}

/** The application read bytes. */
export interface AppRead {
  readonly atUs: number;
  readonly connection: string;
  /** Which end read (`client` or `server`). */
  readonly side: string;
  /** Stream offset of the first byte read. */
  readonly offset: number;
  readonly bytes: number;
}

/** A narrated step, e.g. "target holds 96 KiB undelivered (seq 1001..99305)". */
export interface Narration {
  readonly atUs: number;
  readonly connection: string | undefined;
  readonly text: string;
}

/** A whole run. */
export interface Timeline {
  readonly title: string;
  readonly scenario: string;
  readonly seed: number;
  /** Passed when every verification held. */
  readonly verdict: {
    readonly passed: boolean;
    readonly checks: readonly { readonly name: string; readonly ok: boolean; readonly detail: string }[];
  };
  readonly endUs: number;
  readonly connections: readonly TimelineConnection[];
  readonly segments: readonly WireSegment[];
  readonly nbls: readonly NblHandoff[];
  readonly reads: readonly AppRead[];
  readonly narration: readonly Narration[];
}

/** A stretch of virtual time, `[fromUs, toUs]`. */
export interface TimeSpan {
  readonly fromUs: number;
  readonly toUs: number;
}

/**
 * The part of a run worth seeing first (the report's default view): from its first event
 * (segment, NBL hand-off, read or narration step) to the last event that belongs to one of its
 * connections. What comes after is idle housekeeping (neighbor refreshes, TIME-WAIT running
 * out), which would otherwise squeeze the activity into the first percent of the axis. Without
 * any connection event, the last event of any kind ends it; without any event, the whole run.
 */
export function activeSpan(t: Timeline): TimeSpan {
  const ids = new Set(t.connections.map((c) => c.id));
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  let lastOfConnection = Number.NEGATIVE_INFINITY;
  const see = (atUs: number, connection: string | undefined) => {
    if (atUs < first) first = atUs;
    if (atUs > last) last = atUs;
    if (connection !== undefined && ids.has(connection) && atUs > lastOfConnection) lastOfConnection = atUs;
  };
  for (const s of t.segments) see(s.atUs, s.connection);
  for (const h of t.nbls) see(h.atUs, h.connection);
  for (const r of t.reads) see(r.atUs, r.connection);
  for (const n of t.narration) see(n.atUs, n.connection);
  if (first === Number.POSITIVE_INFINITY) return { fromUs: 0, toUs: t.endUs };
  return { fromUs: first, toUs: lastOfConnection >= first ? lastOfConnection : last };
}
