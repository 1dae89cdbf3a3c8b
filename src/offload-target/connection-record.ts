/**
 * The target's internal objects (IT-1): neighbors, paths and offloaded TCP connections, linked
 * downwards (TCP -> path -> neighbor), and the small pure helpers that name them.
 *
 * A connection record (`Conn`) is the offload context area of one TCP connection (CTX-1): the
 * const and cached state the host handed down (cached state changes only by an update, ST-2), the
 * shared `TcpConnection` engine holding the delegated state, and the target's own bookkeeping:
 * the send NBLs waiting for their ACK, the posted receive requests, the flags of its upcalls,
 * and its place on the scheduling lists.
 * Records are created by the initiate (state-operations.ts) and dropped by the terminate.
 */
import type { Instant } from "../time/instant.js";
import type { TcpConnection } from "../tcp/connection.js";
import type { CloseReason } from "../tcp/types.js";
import type { NetBufferList } from "../nbl/nbl.js";
import type { IpAddr } from "../wire/ip-addr.js";
import type { IntMap } from "../util/int-map.js";
import type { MiniportOffloadContext, NdisOffloadHandle, OffloadBlockList } from "../chimney/block-list.js";
import type { DisconnectFlags } from "../chimney/contract.js";
import type {
  NeighborCachedState,
  NeighborConstState,
  PathCachedState,
  PathConstState,
  TcpCachedState,
  TcpConstState,
  TcpDelegatedState,
} from "../chimney/state.js";

/** An offloaded neighbor (spec 5). */
export interface NeighborObj {
  readonly ctx: MiniportOffloadContext;
  readonly handle: NdisOffloadHandle | undefined;
  readonly constState: NeighborConstState;
  cachedState: NeighborCachedState;
  /** NIC reachability time (NRT) and host reachability time (HRT), microseconds (may be < 0). */
  nrt: number;
  hrt: number;
  readonly paths: Set<PathObj>;
  invalid: boolean;
}

/** An offloaded path (spec 5). */
export interface PathObj {
  readonly ctx: MiniportOffloadContext;
  readonly handle: NdisOffloadHandle | undefined;
  readonly constState: PathConstState;
  cachedState: PathCachedState;
  neighbor: NeighborObj;
  /** Its connections by context (an IntMap: a storm adds and drops 100,000 of them). */
  readonly conns: IntMap<Conn>;
  invalid: boolean;
}

/** A send NBL (or the disconnect NBL's data) waiting to be acknowledged, in send order. */
export interface SendEntry {
  readonly nbl: NetBufferList;
  /** Bytes of the NBL's data window not yet acknowledged. */
  left: number;
  /** Bytes acknowledged while at the target. */
  acked: number;
  /** True for the data of a graceful disconnect (completed by the disconnect completion). */
  readonly disconnect: boolean;
}

/** A request waiting in the send inbox (C-11): a send, or a disconnect posted after one. */
export type InboxItem =
  | { readonly kind: "send"; readonly nbl: NetBufferList }
  | { readonly kind: "disconnect"; readonly nbl: NetBufferList; readonly flags: DisconnectFlags };

/** A posted receive request. */
export interface RecvReq {
  readonly nbl: NetBufferList;
  /** Capacity: the NB's data length at posting. */
  readonly size: number;
  /** Bytes the target placed. */
  placed: number;
  readonly push: boolean;
}

/** Offloading until the initiate completion returned (IO-6); terminating from the terminate call. */
export type Phase = "offloading" | "offloaded" | "terminating";

/** An indication in flight (see `Conn.inFlight`): views of the engine's receive buffer, not consumed. */
export interface InFlightIndication {
  readonly nbl: NetBufferList;
  readonly total: number;
}

/** An offloaded TCP connection (CTX-1). */
export interface Conn {
  readonly ctx: MiniportOffloadContext;
  readonly handle: NdisOffloadHandle;
  /** The 4-tuple's addresses (its ports are in `constState`): the connection's `byTuple` entry. */
  readonly local: IpAddr;
  readonly remote: IpAddr;
  /** The tuple's hash in `byTuple` (`tupleHash`), kept so a removal reads no address again. */
  readonly tupleKey: number;
  readonly constState: TcpConstState;
  cachedState: TcpCachedState;
  path: PathObj;
  engine: TcpConnection;
  phase: Phase;
  readonly sends: SendEntry[];
  readonly reqs: RecvReq[];
  /** Undelivered bytes at the end of the last delivery run ("is there buffered data", E1.3). */
  known: number;
  busy: boolean;
  /**
   * An indication the host answers later (a host on another thread): what the answer needs.
   * While it is set the connection stays `busy` (RC-1) and its terminate waits (TM-10).
   */
  inFlight: InFlightIndication | undefined;
  /** A RST arrived while an indication was in flight: its completions follow the answer. */
  resetAfterAnswer: boolean;
  /** Work that arrived while `busy` (C-9): re-run the algorithm after the upcall. */
  rerunE2: boolean;
  rerunE1: boolean;
  /** PSH seen on data not yet delivered (spec 20 item 27). */
  pshPending: boolean;
  pushAt: Instant | undefined;
  /** RI-3: indicated data was refused; no indication until a request is posted. */
  refused: boolean;
  finIndicated: boolean;
  aborted: boolean;
  abortIndicated: boolean;
  uploadRequested: boolean;
  /** NS-2: report the connection as CLOSED at upload. */
  closedOnUpload: boolean;
  /** URG received: frames are queued for the non-offload path (spec 15.3). */
  urgent: boolean;
  /** IO-24 / NS-7: the handed-over BufferedData holds urgent data: nothing is delivered. */
  urgentBuffered: boolean;
  readonly urgentFrames: Uint8Array[];
  invalid: boolean;
  disconnect:
    | { readonly nbl: NetBufferList; readonly flags: DisconnectFlags; readonly bytes: number }
    | undefined;
  readonly forwards: NetBufferList[];
  /** Why the engine reached CLOSED, until `service` (connection-service.ts) acts on it. */
  closedReason: CloseReason | undefined;
  /** The deadline currently in the timer heap (lazy deletion compares against it). */
  deadline: Instant | undefined;
  /** On the dirty list: output to drain and the deadline to recompute. */
  dirty: boolean;
  /** On the data-work list: forwards or an abortive disconnect for `process`. */
  dataWork: boolean;
  /** Receive moderation: new data arrived; `process` runs the delivery algorithm once for it. */
  deliverPending: boolean;
  /** EV-4: the last TcpIndicateSendBacklogChange value (undefined: none yet) and its time. */
  backlog: number | undefined;
  backlogAt: Instant;
  /** EV-4: a change held back by the throttle's interval is looked at again then. */
  backlogRecheck: Instant | undefined;
}

/** The context a block's slot holds (CTX-3), 0 when none. */
export function ctxOf(b: OffloadBlockList): number {
  return b.miniportOffloadContext?.context ?? 0;
}

/** The chimney name of the engine's TCP state. */
export function toChimneyState(e: TcpConnection): TcpDelegatedState["state"] {
  switch (e.state) {
    case "ESTABLISHED":
      return "TcpConnectionEstablished";
    case "FIN-WAIT-1":
      return "TcpConnectionFinWait1";
    case "FIN-WAIT-2":
      return "TcpConnectionFinWait2";
    case "CLOSE-WAIT":
      return "TcpConnectionCloseWait";
    case "CLOSING":
      return "TcpConnectionClosing";
    case "LAST-ACK":
      return "TcpConnectionLastAck";
    case "TIME-WAIT":
      return "TcpConnectionTimeWait";
    default:
      return "TcpConnectionClosed";
  }
}
