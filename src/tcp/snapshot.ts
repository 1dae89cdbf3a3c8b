/**
 * The engine's connection snapshot (Chimney 4.6: const / cached / delegated state, types in
 * types.ts): which states may be exported and imported, how clocks and timers cross from one
 * engine to another, and the frozen record itself. `TcpConnection.exportState` and
 * `TcpConnection.importState` copy the TCB variables to and from the record and use these.
 *
 * Theory of operation
 * - Export is allowed in the offloadable states (Chimney ST-9: ESTABLISHED, FIN-WAIT-1,
 *   FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK) plus TIME-WAIT, and in CLOSED so an owner can
 *   report the final state of a connection that was reset or timed out. A CLOSED snapshot
 *   cannot be imported.
 * - Time: the two engines' clocks have unrelated origins, so a snapshot carries no instant.
 *   Every timer is its remaining time (`undefined` = not running) and restarts from it on the
 *   importer's clock; TS.Recent carries its age, TotalRT the time spent retransmitting, and
 *   the timestamp clock its value (Chimney 17.9 TsTime), from which the importer derives its
 *   own offset so TSvals continue without a jump. Keep-alive idleness continues from the
 *   exporter's: the importer's timer fires after the remaining delta.
 * - One delegated timer (Chimney 17.1) carries the retransmit, persist or close timer: the
 *   close timer in FIN-WAIT-2 and TIME-WAIT, the persist timer when nothing is in flight and
 *   the window is closed, else the retransmit timer. A snapshot with data outstanding but no
 *   timer (allowed by Chimney's -1) gets a fresh RTO, and TIME-WAIT without one a fresh 2*MSL,
 *   so an imported connection never stalls.
 * - Data: the send queue from SND.UNA and the received, undelivered bytes travel as the
 *   engine's own chunks (zero-copy, frozen lists). Out-of-order data, owed-ACK details other
 *   than `ackPending`, the SACK scoreboard, the undo state and the timed RTT segment do not
 *   travel: the peer retransmits what was not acknowledged, and the importer starts safe.
 *
 * Pure functions without state of their own.
 */
import { Duration, Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { Seq, type SeqNum } from "../wire/seq.js";
import type {
  TcpSnapshot,
  TcpSnapshotCached,
  TcpSnapshotConst,
  TcpSnapshotDelegated,
  TcpState,
} from "./types.js";

/** States a snapshot may be imported in (Chimney ST-9 plus TIME-WAIT). */
const IMPORTABLE: ReadonlySet<TcpState> = new Set<TcpState>([
  "ESTABLISHED",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
]);

/** States a connection may be exported in: the importable ones plus CLOSED (see the header). */
const EXPORTABLE: ReadonlySet<TcpState> = new Set<TcpState>([...IMPORTABLE, "CLOSED"]);

/** Throws UsageError unless a connection in `state` may be exported. */
export function checkExportable(state: TcpState): void {
  if (!EXPORTABLE.has(state)) throw new UsageError(`cannot export a connection in ${state}`);
}

/** Throws UsageError unless a snapshot in `state` may be imported. */
export function checkImportable(state: TcpState): void {
  if (!IMPORTABLE.has(state)) throw new UsageError(`cannot import a connection in ${state}`);
}

/** The (frozen) chunk list of a snapshot without send or buffered data. */
const NO_CHUNKS: readonly Uint8Array[] = Object.freeze([]);

/** `chunks` frozen; the shared empty list for none (most snapshots carry no send data). */
export function frozenChunks(chunks: Uint8Array[]): readonly Uint8Array[] {
  return chunks.length === 0 ? NO_CHUNKS : Object.freeze(chunks);
}

/** The snapshot record of the three parts, all frozen. */
export function frozenSnapshot(
  constState: TcpSnapshotConst,
  cachedState: TcpSnapshotCached,
  delegated: TcpSnapshotDelegated,
): TcpSnapshot {
  return Object.freeze({
    constState: Object.freeze(constState),
    cachedState: Object.freeze(cachedState),
    delegated: Object.freeze(delegated),
  });
}

/** A connection's timers and clock marks, as instants of its engine's clock. */
export interface TcbTimes {
  readonly rtxAt: Instant | undefined;
  readonly persistAt: Instant | undefined;
  readonly closeAt: Instant | undefined;
  readonly keepAliveAt: Instant | undefined;
  /** When retransmitting the current segment began (Chimney TotalRT). */
  readonly rtxStart: Instant | undefined;
  /** When TS.Recent was set. */
  readonly tsRecentAt: Instant;
}

/** The delegated fields that carry `t` as times relative to `now` (see the header). */
export function relativeTimes(
  now: Instant,
  t: TcbTimes,
): Pick<TcpSnapshotDelegated, "tsRecentAge" | "keepAliveDelta" | "retransmitDelta" | "totalRt"> {
  return {
    tsRecentAge: Duration.fromMicros(Math.max(0, now - t.tsRecentAt)),
    keepAliveDelta: remaining(t.keepAliveAt, now),
    retransmitDelta: remaining(t.closeAt ?? t.persistAt ?? t.rtxAt, now),
    totalRt: Duration.fromMicros(t.rtxStart === undefined ? 0 : Math.max(0, now - t.rtxStart)),
  };
}

/** What an importer derives from a snapshot, beyond the fields it copies. */
export interface ImportedTimes extends TcbTimes {
  /** Added to the millisecond clock to form TSval, so the exporter's TSvals continue. */
  readonly tsOffset: number;
  /** When the peer was last heard from (microseconds), or `undefined` for `now`. */
  readonly lastRecvAt: number | undefined;
  /** Sequence number of the send queue's first byte. */
  readonly sendHead: SeqNum;
  /** The snapshot is inside a fast recovery. */
  readonly inRecovery: boolean;
}

/**
 * The timers and clock marks of `snap` restarted at `now` on the importer's clock (see the
 * header). `rto` is the importer's RTO for a fresh retransmit timer; `msl` its MSL.
 */
export function importedTimes(snap: TcpSnapshot, now: Instant, rto: Duration, msl: Duration): ImportedTimes {
  const d = snap.delegated;
  const closing = d.state === "TIME-WAIT" || d.state === "FIN-WAIT-2";
  const flight = Seq.delta(d.sndNxt, d.sndUna);
  const delegatedTimer = timerAt(now, d.retransmitDelta);
  const windowClosed = flight === 0 && d.sndWnd === 0;
  let closeAt = closing ? delegatedTimer : undefined;
  const persistAt = !closing && windowClosed ? delegatedTimer : undefined;
  let rtxAt = !closing && !windowClosed ? delegatedTimer : undefined;
  if (!closing && flight > 0 && rtxAt === undefined && persistAt === undefined) rtxAt = Instant.add(now, rto);
  if (d.state === "TIME-WAIT" && closeAt === undefined)
    closeAt = Instant.add(now, Duration.fromMicros(2 * msl));
  const ka = d.keepAliveDelta;
  return {
    rtxAt,
    persistAt,
    closeAt,
    keepAliveAt: timerAt(now, d.keepAliveDelta),
    rtxStart: d.totalRt > 0 ? Instant.fromMicros(Math.max(0, now - d.totalRt)) : undefined,
    tsRecentAt: Instant.fromMicros(Math.max(0, now - d.tsRecentAge)),
    tsOffset: (d.tsTime - Math.floor(now / 1000)) >>> 0,
    lastRecvAt:
      ka !== undefined && d.keepAliveProbeCount === 0 ? now + ka - snap.cachedState.keepAliveIdle : undefined,
    // The send queue's first byte is SND.UNA, unless our FIN is already acknowledged.
    sendHead: closing ? Seq.sub(d.sndUna, 1) : d.sndUna,
    inRecovery: d.recover !== undefined && Seq.lt(d.sndUna, d.recover),
  };
}

/** The deadline `delta` after `now` (a timer restarts from its remaining time). */
function timerAt(now: Instant, delta: Duration | undefined): Instant | undefined {
  return delta === undefined ? undefined : Instant.add(now, delta);
}

/** The time left from `now` until `at`, at least zero (a timer's remaining time). */
function remaining(at: Instant | undefined, now: Instant): Duration | undefined {
  return at === undefined ? undefined : Duration.fromMicros(Math.max(0, at - now));
}
