/**
 * The offload state records of the chimney (spec digest 4.3-4.7): NEIGHBOR, PATH and TCP state,
 * each as const / cached / delegated parts with every field of the WDK structures, camelCased.
 *
 * Ownership of the three classes (spec 4.2): *const* never changes while offloaded; *cached* is
 * owned by the host and changes on the target only through UpdateOffload; *delegated* is owned
 * by whoever runs the object, and crosses the chimney as a frozen snapshot at InitiateOffload
 * (host -> target) and TerminateOffload or QueryOffload (target -> host). The only mutable things
 * that cross are NBL chains (`sendData*`, `bufferedData`), and those cross through the ledger.
 *
 * Units: the WDK counts time in host ticks (`TicksPerSecond`); this model uses integer
 * microseconds (`Duration`) everywhere, so no tick conversion can lose precision. Where the WDK
 * exchanges a value scaled (SRtt x8, RttVar x4) the record holds the unscaled value and says so.
 * "Not running" timers, -1 in the WDK, are `undefined`.
 */
import type { Duration } from "../time/instant.js";
import type { SeqNum } from "../wire/seq.js";
import type { NetBufferList } from "../nbl/nbl.js";
import type { IpAddr } from "../wire/ip-addr.js";
import type { MacAddr } from "../wire/ethernet.js";

// ---------------------------------------------------------------------------------------------
// NEIGHBOR (spec 4.4)

/** NEIGHBOR_OFFLOAD_STATE_CONST. */
export interface NeighborConstState {
  /** Source MAC for frames via this neighbor; all-zero = use the interface's MAC (NB-1, NB-2). */
  readonly dlSourceAddress: MacAddr;
  /** 802.1Q VLAN id; 0 = not significant. */
  readonly vlanId: number;
}

/** NEIGHBOR_OFFLOAD_STATE_CACHED. */
export interface NeighborCachedState {
  /** The next hop's MAC (DlDestinationAddress); updated after ARP/ND changes. */
  readonly dlDestinationAddress: MacAddr;
  /** HostReachabilityDelta: now - HRD = when the host last confirmed forward reachability. */
  readonly hostReachabilityDelta: Duration;
}

/** NEIGHBOR_OFFLOAD_STATE_DELEGATED. */
export interface NeighborDelegatedState {
  /** NicReachabilityDelta: now - NRD = when the target last saw forward progress (NR-2). */
  readonly nicReachabilityDelta: Duration;
}

/** A whole neighbor object as offloaded (NeighborOffloadState: const, cached, delegated). */
export interface NeighborOffloadState {
  readonly constState: NeighborConstState;
  readonly cachedState: NeighborCachedState;
  readonly delegatedState: NeighborDelegatedState;
}

// ---------------------------------------------------------------------------------------------
// PATH (spec 4.5)

/** PATH_OFFLOAD_STATE_CONST. */
export interface PathConstState {
  readonly sourceAddress: IpAddr;
  readonly destinationAddress: IpAddr;
}

/** PATH_OFFLOAD_STATE_CACHED. */
export interface PathCachedState {
  readonly pathMtu: number;
}

/** PATH_OFFLOAD_STATE_DELEGATED has only its header: no delegated path variables exist. */
export interface PathDelegatedState {
  /** Always true: the structure is its header alone (spec 4.5, ST-8a). */
  readonly headerOnly: true;
}

/** A whole path object. */
export interface PathOffloadState {
  readonly constState: PathConstState;
  readonly cachedState: PathCachedState;
  readonly delegatedState: PathDelegatedState;
}

// ---------------------------------------------------------------------------------------------
// TCP (spec 4.6, 4.7)

/** TCP_OFFLOAD_CONNECTION_STATE (spec 4.7), in the WDK's names. */
export type TcpOffloadConnectionState =
  | "TcpConnectionClosed"
  | "TcpConnectionListen"
  | "TcpConnectionSynSent"
  | "TcpConnectionSynRcvd"
  | "TcpConnectionEstablished"
  | "TcpConnectionFinWait1"
  | "TcpConnectionFinWait2"
  | "TcpConnectionCloseWait"
  | "TcpConnectionClosing"
  | "TcpConnectionLastAck"
  | "TcpConnectionTimeWait";

/** ST-9: the states in which the host may offload a connection. */
export const OFFLOADABLE_STATES: readonly TcpOffloadConnectionState[] = [
  "TcpConnectionEstablished",
  "TcpConnectionFinWait1",
  "TcpConnectionFinWait2",
  "TcpConnectionCloseWait",
  "TcpConnectionClosing",
  "TcpConnectionLastAck",
];

/** TCP_OFFLOAD_STATE_CONST. */
export interface TcpConstState {
  /** TCP_FLAG_TIMESTAMP_ENABLED: a timestamp option in every segment sent. */
  readonly timestampEnabled: boolean;
  /** TCP_FLAG_SACK_ENABLED. */
  readonly sackEnabled: boolean;
  /** TCP_FLAG_WINDOW_SCALING_ENABLED. */
  readonly windowScalingEnabled: boolean;
  readonly remotePort: number;
  readonly localPort: number;
  /** Shift applied to the peer's window (0..14). */
  readonly sndWindScale: number;
  /** Shift applied to the window we advertise (0..14). */
  readonly rcvWindScale: number;
  /** MSS the peer advertised at setup. */
  readonly remoteMss: number;
  /** RSS hash of the connection (spec 15.4). */
  readonly hashValue: number;
}

/** TCP_OFFLOAD_STATE_CACHED. */
export interface TcpCachedState {
  /** TCP_FLAG_KEEP_ALIVE_ENABLED. */
  readonly keepAliveEnabled: boolean;
  /** TCP_FLAG_NAGLING_ENABLED. */
  readonly naglingEnabled: boolean;
  /** TCP_FLAG_KEEP_ALIVE_RESTART: restart the keep-alive timer (update only). */
  readonly keepAliveRestart: boolean;
  /** TCP_FLAG_MAX_RT_RESTART: reset TotalRT (update only; UP-5). */
  readonly maxRtRestart: boolean;
  /** TCP_FLAG_UPDATE_RCV_WND: InitialRcvWnd changed; advertise it if it differs (UP-2). */
  readonly updateRcvWnd: boolean;
  /** Default receive window in bytes (SO_RCVBUF). */
  readonly initialRcvWnd: number;
  /** Preferred bytes per receive indication; 0 = unspecified (spec 14.5). */
  readonly rcvIndicationSize: number;
  readonly kaProbeCount: number;
  readonly kaTimeout: Duration;
  readonly kaInterval: Duration;
  /** Max time retransmitting one segment; undefined = the retransmission count governs. */
  readonly maxRt: Duration | undefined;
  /** IPv6 flow label (20 bits). */
  readonly flowLabel: number;
  readonly ttlOrHopLimit: number;
  readonly tosOrTrafficClass: number;
  /** 802.1p priority (3 bits). */
  readonly userPriority: number;
}

/** TCP_OFFLOAD_STATE_DELEGATED: every field of spec 4.6, in order. */
export interface TcpDelegatedState {
  readonly state: TcpOffloadConnectionState;
  readonly rcvNxt: SeqNum;
  /** RCV.WND in bytes. */
  readonly rcvWnd: number;
  readonly sndUna: SeqNum;
  readonly sndNxt: SeqNum;
  readonly sndMax: SeqNum;
  /** SND.WND in bytes (the peer's window, scaled). */
  readonly sndWnd: number;
  readonly maxSndWnd: number;
  readonly sendWL1: SeqNum;
  readonly cWnd: number;
  readonly ssThresh: number;
  /** Smoothed RTT (the WDK exchanges it x8); undefined before the first sample. */
  readonly sRtt: Duration | undefined;
  /** RTT variation (the WDK exchanges it x4); undefined before the first sample. */
  readonly rttVar: Duration | undefined;
  readonly tsRecent: number;
  readonly tsRecentAge: Duration;
  /** The sender's adjusted timestamp clock, in timestamp ticks (milliseconds here; spec 17.9). */
  readonly tsTime: number;
  readonly totalRt: Duration;
  readonly dupAckCount: number;
  readonly sndWndProbeCount: number;
  readonly keepAliveProbeCount: number;
  /** Time to the next keep-alive timeout; undefined = not running (ST-8). */
  readonly keepAliveTimeoutDelta: Duration | undefined;
  readonly retransmitCount: number;
  /** Time to the next retransmit (also persist / FIN-WAIT-2) timeout; undefined = not running. */
  readonly retransmitTimeoutDelta: Duration | undefined;
  /**
   * SendDataHead..SendDataTail (initiate/terminate): the NBLs of the block's NetBufferListChain
   * that carry send data; the first data byte is SndUna (spec 7.6). Null when there is none.
   */
  readonly sendDataHead: NetBufferList | null;
  readonly sendDataTail: NetBufferList | null;
  /** SendBacklogSize (query only); 0xFFFFFFFF if unsupported (ST-7). */
  readonly sendBacklogSize: number | undefined;
  /** BufferedData (initiate/terminate): received, ACKed, undelivered bytes ending at RcvNxt. */
  readonly bufferedData: NetBufferList | null;
  /**
   * Initiate only: the BufferedData contains urgent data (IO-24, NS-7). The pages do not say how
   * the target learns this (spec 20 item 39); the model is this flag. Absent = false.
   */
  readonly bufferedDataUrgent?: boolean | undefined;
  /** ReceiveBacklogSize (query only); 0xFFFFFFFF if unsupported. */
  readonly receiveBacklogSize: number | undefined;
}

/** A whole TCP object (TcpOffloadState: const, cached, delegated). */
export interface TcpOffloadState {
  readonly constState: TcpConstState;
  readonly cachedState: TcpCachedState;
  readonly delegatedState: TcpDelegatedState;
}

/** Value of "unsupported" for the query-only backlog fields (ST-7). */
export const BACKLOG_UNSUPPORTED = 0xffff_ffff;
