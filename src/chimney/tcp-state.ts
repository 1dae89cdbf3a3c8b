/**
 * Conversions between the TCP engine's snapshot (`TcpSnapshot`, src/tcp/types.ts) and the
 * chimney's `TcpOffloadState` (const / cached / delegated, src/chimney/state.ts), in both
 * directions, plus the state-name mapping.
 *
 * Engine -> chimney (`offloadStateFromSnapshot`): every chimney field is copied or renamed; the
 * send data becomes one NBL per engine chunk (SendDataHead..SendDataTail, zero-copy: the NBs
 * describe the engine's own chunks), and the buffered receive data likewise (BufferedData,
 * zero-copy). The NBLs are allocated through the ledger for the party that builds the state.
 *
 * Chimney -> engine (`snapshotFromOffloadState`): the delegated structure lacks several engine
 * variables, which are derived (each derivation is documented in the DERIVED comment below). The send data is taken zero-copy as views of the MDL pieces of
 * SendDataHead..SendDataTail; the buffered data is copied once into one fresh array (spec TM-20:
 * the receiver "copies it into its own buffer"; IO-19 for the target at initiate).
 */
import { Duration } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { Seq, type SeqNum } from "../wire/seq.js";
import type { TcpConfig } from "../tcp/config.js";
import type {
  TcpSnapshot,
  TcpSnapshotCached,
  TcpSnapshotConst,
  TcpSnapshotDelegated,
  TcpState,
} from "../tcp/types.js";
import type { BufferLedger, Owner } from "../nbl/ledger.js";
import type { NetBufferList } from "../nbl/nbl.js";
import { mdlChain, netBuffer } from "../nbl/nbl.js";
import { type BufferChain, chainLength, copyOut, linkNbls, segments } from "../nbl/chain.js";
import type {
  TcpCachedState,
  TcpConstState,
  TcpDelegatedState,
  TcpOffloadConnectionState,
  TcpOffloadState,
} from "./state.js";
import { OFFLOADABLE_STATES } from "./state.js";

// ---------------------------------------------------------------------------------------------
// State names

const TO_OFFLOAD: Readonly<Record<TcpState, TcpOffloadConnectionState>> = {
  CLOSED: "TcpConnectionClosed",
  LISTEN: "TcpConnectionListen",
  "SYN-SENT": "TcpConnectionSynSent",
  "SYN-RECEIVED": "TcpConnectionSynRcvd",
  ESTABLISHED: "TcpConnectionEstablished",
  "FIN-WAIT-1": "TcpConnectionFinWait1",
  "FIN-WAIT-2": "TcpConnectionFinWait2",
  "CLOSE-WAIT": "TcpConnectionCloseWait",
  CLOSING: "TcpConnectionClosing",
  "LAST-ACK": "TcpConnectionLastAck",
  "TIME-WAIT": "TcpConnectionTimeWait",
};

const FROM_OFFLOAD: Readonly<Record<TcpOffloadConnectionState, TcpState>> = {
  TcpConnectionClosed: "CLOSED",
  TcpConnectionListen: "LISTEN",
  TcpConnectionSynSent: "SYN-SENT",
  TcpConnectionSynRcvd: "SYN-RECEIVED",
  TcpConnectionEstablished: "ESTABLISHED",
  TcpConnectionFinWait1: "FIN-WAIT-1",
  TcpConnectionFinWait2: "FIN-WAIT-2",
  TcpConnectionCloseWait: "CLOSE-WAIT",
  TcpConnectionClosing: "CLOSING",
  TcpConnectionLastAck: "LAST-ACK",
  TcpConnectionTimeWait: "TIME-WAIT",
};

/** The chimney name of an RFC 9293 state (spec 4.7), e.g. `FIN-WAIT-1` -> `TcpConnectionFinWait1`. */
export function toOffloadConnectionState(s: TcpState): TcpOffloadConnectionState {
  return TO_OFFLOAD[s];
}

/** The RFC 9293 state of a chimney state name (inverse of `toOffloadConnectionState`). */
export function fromOffloadConnectionState(s: TcpOffloadConnectionState): TcpState {
  return FROM_OFFLOAD[s];
}

/** States the engine can import a connection in (ST-9's offloadable states plus TIME-WAIT). */
export function isImportableState(s: TcpOffloadConnectionState): boolean {
  return IMPORTABLE.has(s);
}

const IMPORTABLE: ReadonlySet<TcpOffloadConnectionState> = new Set<TcpOffloadConnectionState>([
  ...OFFLOADABLE_STATES,
  "TcpConnectionTimeWait",
]);

/** States in which our FIN is queued or sent (the application closed): FIN-WAIT-1 onwards. */
const FIN_SENT: ReadonlySet<TcpState> = new Set<TcpState>([
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
]);

/** States in which the peer's FIN was received (RCV.NXT counts it). */
const FIN_RECEIVED: ReadonlySet<TcpState> = new Set<TcpState>([
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
]);

// ---------------------------------------------------------------------------------------------
// Engine -> chimney

/** Cached values the engine does not hold (the host's socket options), with defaults. */
export interface CachedExtras {
  /** Preferred bytes per receive indication (spec 14.5); default 0 = unspecified. */
  readonly rcvIndicationSize?: number | undefined;
  /** IPv6 flow label; default 0. */
  readonly flowLabel?: number | undefined;
  /** IPv4 TTL / IPv6 hop limit; default 64. */
  readonly ttlOrHopLimit?: number | undefined;
  /** IPv4 TOS / IPv6 traffic class; default 0. */
  readonly tosOrTrafficClass?: number | undefined;
  /** 802.1p priority; default 0. */
  readonly userPriority?: number | undefined;
}

/** TCP_OFFLOAD_STATE_CONST of an engine connection; `hashValue` is the RSS hash (default 0). */
export function constStateFromEngine(k: TcpSnapshotConst, hashValue = 0): TcpConstState {
  return {
    timestampEnabled: k.timestampsEnabled,
    sackEnabled: k.sackEnabled,
    windowScalingEnabled: k.windowScalingEnabled,
    remotePort: k.remotePort,
    localPort: k.localPort,
    sndWindScale: k.sndWindScale,
    rcvWindScale: k.rcvWindScale,
    remoteMss: k.remoteMss,
    hashValue,
  };
}

/**
 * TCP_OFFLOAD_STATE_CACHED of an engine connection. Nagle = !noDelay; KaTimeout = the idle
 * time; MaxRT = the engine's user timeout (undefined: the retransmission count governs). The
 * three one-shot flags (KEEP_ALIVE_RESTART, MAX_RT_RESTART, UPDATE_RCV_WND) are false.
 */
export function cachedStateFromEngine(ca: TcpSnapshotCached, extras: CachedExtras = {}): TcpCachedState {
  return {
    keepAliveEnabled: ca.keepAlive,
    naglingEnabled: !ca.noDelay,
    keepAliveRestart: false,
    maxRtRestart: false,
    updateRcvWnd: false,
    initialRcvWnd: ca.initialRcvWnd,
    rcvIndicationSize: extras.rcvIndicationSize ?? 0,
    kaProbeCount: ca.keepAliveProbes,
    kaTimeout: ca.keepAliveIdle,
    kaInterval: ca.keepAliveInterval,
    maxRt: ca.userTimeout,
    flowLabel: extras.flowLabel ?? 0,
    ttlOrHopLimit: extras.ttlOrHopLimit ?? 64,
    tosOrTrafficClass: extras.tosOrTrafficClass ?? 0,
    userPriority: extras.userPriority ?? 0,
  };
}

/** The NBL fields of a delegated structure (initiate / terminate: SendDataHead..Tail, BufferedData). */
export interface DelegatedBuffers {
  readonly sendDataHead: NetBufferList | null;
  readonly sendDataTail: NetBufferList | null;
  readonly bufferedData: NetBufferList | null;
}

/**
 * TCP_OFFLOAD_STATE_DELEGATED of an engine snapshot with the given NBL fields. RcvWnd =
 * RCV.ADV - RCV.NXT; the engine's SND.WL2, RTO, recovery point, finQueued/finReceived and
 * unreported-ACK count have no chimney field and are dropped (re-derived on import). Its ECN
 * state has none either, and is never dropped: the manager does not offload an ECN connection.
 * The backlog fields are undefined (they are query-only).
 */
export function delegatedStateFromEngine(d: TcpSnapshotDelegated, bufs: DelegatedBuffers): TcpDelegatedState {
  return {
    state: toOffloadConnectionState(d.state),
    rcvNxt: d.rcvNxt,
    rcvWnd: Seq.delta(d.rcvAdv, d.rcvNxt),
    sndUna: d.sndUna,
    sndNxt: d.sndNxt,
    sndMax: d.sndMax,
    sndWnd: d.sndWnd,
    maxSndWnd: d.maxSndWnd,
    sendWL1: d.sndWl1,
    cWnd: d.cwnd,
    ssThresh: d.ssthresh,
    sRtt: d.srtt,
    rttVar: d.rttVar,
    tsRecent: d.tsRecent,
    tsRecentAge: d.tsRecentAge,
    tsTime: d.tsTime,
    totalRt: d.totalRt,
    dupAckCount: d.dupAckCount,
    sndWndProbeCount: d.sndWndProbeCount,
    keepAliveProbeCount: d.keepAliveProbeCount,
    keepAliveTimeoutDelta: d.keepAliveDelta,
    retransmitCount: d.retransmitCount,
    retransmitTimeoutDelta: d.retransmitDelta,
    sendDataHead: bufs.sendDataHead,
    sendDataTail: bufs.sendDataTail,
    sendBacklogSize: undefined,
    bufferedData: bufs.bufferedData,
    receiveBacklogSize: undefined,
  };
}

/**
 * One NBL per non-empty chunk, each with one NB over the chunk (a view: no copy), linked in
 * order and owned by `owner`. Returns the head and tail, or nulls for no data.
 */
export function nblChainOf(
  chunks: readonly Uint8Array[],
  ledger: BufferLedger,
  owner: Owner,
  op: string,
): { readonly head: NetBufferList | null; readonly tail: NetBufferList | null } {
  const nbls: NetBufferList[] = [];
  for (const c of chunks) if (c.length > 0) nbls.push(ledger.alloc(owner, [netBuffer(mdlChain([c]))], op));
  const head = linkNbls(nbls);
  return { head, tail: nbls[nbls.length - 1] ?? null };
}

/** Options of `offloadStateFromSnapshot`. */
export interface ToOffloadOptions extends CachedExtras {
  /** Allocates the send-data and buffered-data NBLs. */
  readonly ledger: BufferLedger;
  /** The party building the state (the host at initiate); it owns the new NBLs. */
  readonly owner: Owner;
  /** Names the allocation in the ledger history; default "exportState". */
  readonly op?: string | undefined;
  /** TCP_OFFLOAD_STATE_CONST.HashValue; default 0. */
  readonly hashValue?: number | undefined;
}

/**
 * The chimney state of an engine snapshot, ready to follow a TCP block (spec 7.6, 7.7). The send
 * data NBLs (one per engine chunk, the first data byte = SND.UNA) are both SendDataHead..Tail
 * and the block's NetBufferListChain; BufferedData holds the undelivered received bytes, which
 * end at RCV.NXT (IO-18). Both are zero-copy views of the snapshot's chunks.
 */
export function offloadStateFromSnapshot(snap: TcpSnapshot, opts: ToOffloadOptions): TcpOffloadState {
  const op = opts.op ?? "exportState";
  const send = nblChainOf(snap.delegated.sendData, opts.ledger, opts.owner, op);
  const buffered = nblChainOf(snap.delegated.bufferedData, opts.ledger, opts.owner, op);
  return {
    constState: constStateFromEngine(snap.constState, opts.hashValue ?? 0),
    cachedState: cachedStateFromEngine(snap.cachedState, opts),
    delegatedState: delegatedStateFromEngine(snap.delegated, {
      sendDataHead: send.head,
      sendDataTail: send.tail,
      bufferedData: buffered.head,
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Chimney -> engine

/** The IP + base TCP header bytes below the MSS: 40 for IPv4, 60 for IPv6. */
export function tcpIpHeaderBytes(ipVersion: 4 | 6): number {
  return ipVersion === 4 ? 40 : 60;
}

/** Options of `snapshotFromOffloadState`: what the importer knows that the structures do not carry. */
export interface FromOffloadOptions {
  /** The importer's engine configuration (RTO bounds, initial RTO). */
  readonly cfg: TcpConfig;
  /** The path's MTU (PathOffloadState.cachedState.pathMtu); the send MSS is derived from it. */
  readonly pathMtu: number;
  /** IP version of the path (the length of its addresses). */
  readonly ipVersion: 4 | 6;
  /** Send buffer limit of the new engine; default `cfg.sendBufferSize`, raised to hold the send data. */
  readonly sendBufferSize?: number | undefined;
  /** Retransmission count limit (the global TcpMaximumRetransmissions); default `cfg.maxRetransmissions`. */
  readonly maxRetransmissions?: number | undefined;
  /** Our ISS, if the importer knows it (the host does); default derived (see DERIVED above). */
  readonly iss?: SeqNum | undefined;
  /** The peer's ISS, if known; default derived. */
  readonly irs?: SeqNum | undefined;
}

/*
 * DERIVED: how the importer fills what TCP_OFFLOAD_STATE_DELEGATED does not carry (spec ST-8a):
 * - RCV.ADV = RcvNxt + RcvWnd (the right edge advertised last);
 * - SND.WL2 = SndUna (the ACK of the last window update is at least SND.UNA; RFC 9293 only
 *   compares against it, so the smallest consistent value is safe);
 * - finQueued (our FIN queued or sent) = state in FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK,
 *   TIME-WAIT; the FIN then sits right after the send data (spec 20 item 20: SndMax - 1 once sent);
 * - finReceived = state in CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT;
 * - RTO = RFC 6298 2.3 from SRTT/RTTVAR (SRTT + max(G, 4 RTTVAR), clamped to [minRto, maxRto]),
 *   or the initial RTO before the first sample, then backed off once per `Retransmit.Count`
 *   (RFC 6298 5.5), capped at maxRto;
 * - not in fast recovery (recover undefined): recovery state is not carried; DupAckCount is;
 * - ISS = SndUna - 1 and IRS = RcvNxt - 1 unless given: only the handshake states use them;
 * - effective MSS = PathMtu - IP and TCP base headers (the engine clamps to the peer's MSS);
 * - MaxRT = the engine's user timeout; the count limit comes from the options;
 * - no unreported ACK progress (the exporter's owner already completed what was ACKed).
 */

/** The engine's RTO for a delegated state (RFC 6298 2.2-2.3 and 5.5 backoff), see DERIVED above. */
export function deriveRto(d: TcpDelegatedState, cfg: TcpConfig): Duration {
  let rto: number;
  if (d.sRtt === undefined || d.rttVar === undefined) rto = cfg.initialRto;
  else rto = Math.min(cfg.maxRto, Math.max(cfg.minRto, d.sRtt + Math.max(CLOCK_G_US, 4 * d.rttVar)));
  for (let i = 0; i < d.retransmitCount && rto < cfg.maxRto; i++) rto = Math.min(cfg.maxRto, rto * 2);
  return Duration.fromMicros(rto);
}

/**
 * An engine snapshot for `TcpConnection.importState`, from chimney state and the send and
 * buffered data as byte chunks (the caller decides how they were obtained; see
 * `importOffloadState` for the NBL version). Throws `UsageError` for a state the engine cannot
 * import (Closed, Listen, SynSent, SynRcvd). Derivations: DERIVED above. Written into `into`
 * when given (see `blankSnapshot`).
 */
export function snapshotFromOffloadState(
  s: TcpOffloadState,
  sendData: readonly Uint8Array[],
  bufferedData: readonly Uint8Array[],
  opts: FromOffloadOptions,
  into: TcpSnapshot = blankSnapshot(),
): TcpSnapshot {
  const k = s.constState;
  const ca = s.cachedState;
  const d = s.delegatedState;
  if (!IMPORTABLE.has(d.state)) throw new UsageError(`cannot import a connection in ${d.state}`);
  const state = fromOffloadConnectionState(d.state);
  let sendBytes = 0;
  for (const c of sendData) sendBytes += c.length;
  const kk = into.constState as Mutable<TcpSnapshotConst>;
  kk.localPort = k.localPort;
  kk.remotePort = k.remotePort;
  kk.timestampsEnabled = k.timestampEnabled;
  kk.sackEnabled = k.sackEnabled;
  kk.windowScalingEnabled = k.windowScalingEnabled;
  kk.sndWindScale = k.sndWindScale;
  kk.rcvWindScale = k.rcvWindScale;
  kk.remoteMss = k.remoteMss;
  kk.iss = opts.iss ?? Seq.sub(d.sndUna, 1);
  kk.irs = opts.irs ?? Seq.sub(d.rcvNxt, 1);
  const cc = into.cachedState as Mutable<TcpSnapshotCached>;
  cc.initialRcvWnd = ca.initialRcvWnd;
  cc.sendBufferSize = Math.max(opts.sendBufferSize ?? opts.cfg.sendBufferSize, sendBytes);
  cc.noDelay = !ca.naglingEnabled;
  cc.keepAlive = ca.keepAliveEnabled;
  cc.keepAliveIdle = ca.kaTimeout;
  cc.keepAliveInterval = ca.kaInterval;
  cc.keepAliveProbes = ca.kaProbeCount;
  cc.maxRetransmissions = opts.maxRetransmissions ?? opts.cfg.maxRetransmissions;
  cc.userTimeout = ca.maxRt;
  cc.effectiveMss = opts.pathMtu - tcpIpHeaderBytes(opts.ipVersion);
  const dd = into.delegated as Mutable<TcpSnapshotDelegated>;
  dd.state = state;
  dd.rcvNxt = d.rcvNxt;
  dd.rcvAdv = Seq.add(d.rcvNxt, d.rcvWnd);
  dd.sndUna = d.sndUna;
  dd.sndNxt = d.sndNxt;
  dd.sndMax = d.sndMax;
  dd.sndWnd = d.sndWnd;
  dd.maxSndWnd = d.maxSndWnd;
  dd.sndWl1 = d.sendWL1;
  dd.sndWl2 = d.sndUna;
  dd.cwnd = d.cWnd;
  dd.ssthresh = d.ssThresh;
  dd.srtt = d.sRtt;
  dd.rttVar = d.rttVar;
  dd.rto = deriveRto(d, opts.cfg);
  dd.tsRecent = d.tsRecent;
  dd.tsRecentAge = d.tsRecentAge;
  dd.tsTime = d.tsTime;
  dd.dupAckCount = d.dupAckCount;
  dd.recover = undefined;
  dd.sndWndProbeCount = d.sndWndProbeCount;
  dd.keepAliveProbeCount = d.keepAliveProbeCount;
  dd.keepAliveDelta = d.keepAliveTimeoutDelta;
  dd.retransmitCount = d.retransmitCount;
  dd.retransmitDelta = d.retransmitTimeoutDelta;
  dd.totalRt = d.totalRt;
  dd.finQueued = FIN_SENT.has(state);
  dd.finReceived = FIN_RECEIVED.has(state);
  dd.sendData = sendData;
  dd.bufferedData = bufferedData;
  dd.unreportedAcked = 0;
  return into;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const NO_DATA: readonly Uint8Array[] = Object.freeze([]);

/** Lets go of the data a kept snapshot (`into`) names, once it has been read. */
export function releaseSnapshotData(snap: TcpSnapshot): void {
  const d = snap.delegated as Mutable<TcpSnapshotDelegated>;
  d.sendData = NO_DATA;
  d.bufferedData = NO_DATA;
}

/**
 * A snapshot with every field `snapshotFromOffloadState` writes, for it to write them: fresh for
 * each call by default, or one an importer keeps and passes again (`into`), which is safe when
 * the snapshot is read at once and let go, as `TcpConnection.reimport` does. A terminate storm's
 * host built 100,000 of them, 730 bytes each (doubles included), for one read each.
 */
export function blankSnapshot(): TcpSnapshot {
  const seq = 0 as SeqNum;
  const time = 0 as Duration;
  return {
    constState: {
      localPort: 0,
      remotePort: 0,
      timestampsEnabled: false,
      sackEnabled: false,
      windowScalingEnabled: false,
      sndWindScale: 0,
      rcvWindScale: 0,
      remoteMss: 0,
      iss: seq,
      irs: seq,
    },
    cachedState: {
      initialRcvWnd: 0,
      sendBufferSize: 0,
      noDelay: false,
      keepAlive: false,
      keepAliveIdle: time,
      keepAliveInterval: time,
      keepAliveProbes: 0,
      maxRetransmissions: 0,
      userTimeout: undefined,
      effectiveMss: 0,
    },
    delegated: {
      state: "CLOSED",
      rcvNxt: seq,
      rcvAdv: seq,
      sndUna: seq,
      sndNxt: seq,
      sndMax: seq,
      sndWnd: 0,
      maxSndWnd: 0,
      sndWl1: seq,
      sndWl2: seq,
      cwnd: 0,
      ssthresh: 0,
      srtt: undefined,
      rttVar: undefined,
      rto: time,
      tsRecent: 0,
      tsRecentAge: time,
      tsTime: 0,
      dupAckCount: 0,
      recover: undefined,
      sndWndProbeCount: 0,
      keepAliveProbeCount: 0,
      keepAliveDelta: undefined,
      retransmitCount: 0,
      retransmitDelta: undefined,
      totalRt: time,
      finQueued: false,
      finReceived: false,
      sendData: [],
      bufferedData: [],
      unreportedAcked: 0,
    },
  };
}

/**
 * The NBLs `head` .. `tail` (following `next`; all of them when `tail` is null). Throws `UsageError` if `tail` is not on the chain.
 */
export function nblRange(head: NetBufferList | null, tail: NetBufferList | null): NetBufferList[] {
  const out: NetBufferList[] = [];
  for (let n = head; n !== null; n = n.next) {
    out.push(n);
    if (n === tail) return out;
  }
  if (tail !== null) throw new UsageError("SendDataTail is not on the chain starting at SendDataHead");
  return out;
}

/** The NBs of one NBL of a chain (as `who`, checked by the ledger), not of the NBLs after it. */
export function viewOne(ledger: BufferLedger, nbl: NetBufferList, who: Owner, op: string): BufferChain {
  return ledger.viewOne(nbl, who, op);
}

/** The data of SendDataHead..SendDataTail as views of its MDL pieces, in order (zero-copy). */
export function sendDataViews(
  d: TcpDelegatedState,
  ledger: BufferLedger,
  who: Owner,
  op: string,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const nbl of nblRange(d.sendDataHead, d.sendDataTail)) {
    for (const piece of segments(viewOne(ledger, nbl, who, op))) out.push(piece);
  }
  return out;
}

/** BufferedData copied into one fresh array (the one copy of TM-20 / IO-19); empty for none. */
export function copyBufferedData(
  d: TcpDelegatedState,
  ledger: BufferLedger,
  who: Owner,
  op: string,
): Uint8Array {
  if (d.bufferedData === null) return new Uint8Array(0);
  const view = ledger.view(d.bufferedData, who, op);
  const out = new Uint8Array(chainLength(view));
  copyOut(view, 0, out, 0, out.length);
  return out;
}

/**
 * `snapshotFromOffloadState` reading the NBL fields through the ledger as `who`: the send data
 * zero-copy (views), the buffered data with one copy. The NBLs stay with their owner; the
 * caller completes, returns or frees them as its role requires.
 */
export function importOffloadState(
  s: TcpOffloadState,
  ledger: BufferLedger,
  who: Owner,
  op: string,
  opts: FromOffloadOptions,
): TcpSnapshot {
  const send = sendDataViews(s.delegatedState, ledger, who, op);
  const buffered = copyBufferedData(s.delegatedState, ledger, who, op);
  return snapshotFromOffloadState(s, send, buffered.length > 0 ? [buffered] : [], opts);
}

/** RFC 6298 clock granularity G in microseconds (the engine's value). */
const CLOCK_G_US = 1000;
