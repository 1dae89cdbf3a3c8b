/**
 * The two sides of the chimney, as interfaces (spec digest 2.2, 6, 13, 14, 16):
 *
 * - `OffloadTarget`: what the host stack calls on the offload target, i.e. the miniport's
 *   chimney handlers (`MiniportInitiateOffload`, `MiniportTcpOffloadSend`, ...).
 * - `OffloadHost`: what the target calls back, i.e. the NDIS completion and indication
 *   functions that end in the host stack (`NdisMInitiateOffloadComplete`,
 *   `NdisTcpOffloadReceiveHandler`, `NdisTcpOffloadEventHandler`, ...).
 *
 * Theory of operation. State operations (initiate, terminate, update, invalidate, query) only
 * record their block list and return (OP-1); the target completes each later, from its own
 * processing step, by calling the matching `...Complete` with the same root (BL-3), after
 * writing a status into every block (BL-1). Data calls (send, receive, disconnect, forward)
 * return `NDIS_STATUS_PENDING` (SD-1, RQ-1, DC-1, FW-3) and complete later. NBLs cross only
 * through the `BufferLedger` (src/nbl/ledger.ts) with the call's name as the operation:
 * whoever passes an NBL in a call transfers it; whoever completes or returns it transfers it
 * back. `tcpOffloadReceiveIndicate` is the one synchronous upcall: its return value tells the
 * target how much of the indication the application consumed (spec 14.4).
 *
 * Re-entrancy is allowed where the WDK allows it: the host may post receive requests from
 * inside `tcpOffloadReceiveComplete` (C-9), so a target must finish its bookkeeping before it
 * calls out and must not nest completions (C-8).
 */
import type { NetBufferList } from "../nbl/nbl.js";
import type { MiniportOffloadContext, NdisOffloadHandle, OffloadBlockList } from "./block-list.js";
import type { NdisStatus, OffloadStatusIndication } from "./status.js";
import type { TcpConnectionOffloadCapabilities } from "./capabilities.js";

/** TCP_DISCONNECT_GRACEFUL_CLOSE / TCP_DISCONNECT_ABORTIVE_CLOSE. */
export type DisconnectFlags = "graceful" | "abortive";

/** TCP_UPLOAD_REASON (spec 16.4). */
export type TcpUploadReason =
  | "LowActivity"
  | "HighDropRate"
  | "SmallIO"
  | "NoBufferPreposting"
  | "ReceivedUrgentData"
  | "HighFragmentation"
  | "HighOutOfOrderPackets"
  | "TimeoutExpiration"
  | "InvalidState"
  | "UploadRequested"
  | "HardwareFailure";

/** EV-1: the host must upload for these reasons; the others are advice it may ignore. */
export const MANDATORY_UPLOAD_REASONS: readonly TcpUploadReason[] = [
  "ReceivedUrgentData",
  "TimeoutExpiration",
  "InvalidState",
  "UploadRequested",
  "HardwareFailure",
];

/** The per-connection events of `NdisTcpOffloadEventHandler` (spec 16.3; EV-0: these four only). */
export type TcpOffloadEvent =
  | { readonly type: "TcpIndicateSendBacklogChange"; readonly sendBacklog: number }
  | { readonly type: "TcpIndicateDisconnect" }
  | { readonly type: "TcpIndicateRetrieve"; readonly reason: TcpUploadReason }
  | { readonly type: "TcpIndicateAbort" };

/**
 * What `NdisTcpOffloadReceiveHandler` returns (spec 14.4). `NDIS_STATUS_PENDING` is this model's
 * one addition, for a host on another thread: the answer comes later (`SoftwareTarget.
 * indicationAnswered`), and until it does the indication is in flight: the NBL is the host's,
 * and the connection's receive path is as busy as during the call (RC-1, TM-10).
 */
export interface ReceiveIndicateResult {
  readonly status:
    | "NDIS_STATUS_SUCCESS"
    | "NDIS_STATUS_OFFLOAD_DATA_NOT_ACCEPTED"
    | "NDIS_STATUS_OFFLOAD_DATA_PARTIALLY_ACCEPTED"
    | "NDIS_STATUS_PENDING";
  /** Bytes the application consumed: all of them on success, none or a prefix otherwise. */
  readonly bytesConsumed: number;
}

/** The answer of a host that answers later (see `ReceiveIndicateResult`). */
export const INDICATION_PENDING: ReceiveIndicateResult = Object.freeze({
  status: "NDIS_STATUS_PENDING",
  bytesConsumed: 0,
});

/** A final answer to an indication (not `NDIS_STATUS_PENDING`). */
export type IndicationAnswer = ReceiveIndicateResult & {
  readonly status: Exclude<ReceiveIndicateResult["status"], "NDIS_STATUS_PENDING">;
};

/** The miniport side: handlers the host stack calls on the offload target. */
export interface OffloadTarget {
  /** MiniportInitiateOffload: record the tree and return; complete with initiateOffloadComplete. */
  initiateOffload(blockList: OffloadBlockList): void;
  /** MiniportTerminateOffload. */
  terminateOffload(blockList: OffloadBlockList): void;
  /** MiniportUpdateOffload. */
  updateOffload(blockList: OffloadBlockList): void;
  /** MiniportInvalidateOffload. */
  invalidateOffload(blockList: OffloadBlockList): void;
  /** MiniportQueryOffload. */
  queryOffload(blockList: OffloadBlockList): void;
  /** MiniportTcpOffloadSend: always pending (SD-1); FIFO (SD-2); never refused (SD-3). */
  tcpOffloadSend(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING";
  /** MiniportTcpOffloadReceive: post receive requests (one NB each); always pending (RQ-1). */
  tcpOffloadReceive(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING";
  /** MiniportTcpOffloadReceiveReturn: indicated (or BufferedData) NBLs come back (RR-1). */
  tcpOffloadReceiveReturn(nbl: NetBufferList): "NDIS_STATUS_SUCCESS";
  /** MiniportTcpOffloadDisconnect: one NBL with one NB; always pending (DC-1). */
  tcpOffloadDisconnect(
    context: MiniportOffloadContext,
    nbl: NetBufferList,
    flags: DisconnectFlags,
  ): "NDIS_STATUS_PENDING";
  /** MiniportTcpOffloadForward: TCP segments (one per NB, one NB per NBL); always pending (FW-3). */
  tcpOffloadForward(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING";
  /**
   * NDIS_TCP_CONNECTION_OFFLOAD (OID_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES, spec 3.3): read
   * by the host at attach and after every NDIS_STATUS_OFFLOAD_RESUME (CFG-5). A target without it
   * is taken to support everything.
   */
  connectionOffloadCapabilities?(): TcpConnectionOffloadCapabilities;
}

/** The NDIS side: completions and indications the offload target calls on the host stack. */
export interface OffloadHost {
  /** NdisMInitiateOffloadComplete, with the same root (BL-3). */
  initiateOffloadComplete(blockList: OffloadBlockList): void;
  /** NdisMTerminateOffloadComplete. */
  terminateOffloadComplete(blockList: OffloadBlockList): void;
  /** NdisMUpdateOffloadComplete. */
  updateOffloadComplete(blockList: OffloadBlockList): void;
  /** NdisMInvalidateOffloadComplete. */
  invalidateOffloadComplete(blockList: OffloadBlockList): void;
  /** NdisMQueryOffloadStateComplete. */
  queryOffloadComplete(blockList: OffloadBlockList): void;
  /** NdisTcpOffloadSendComplete: NBLs (possibly from several calls) with status and bytes set. */
  tcpOffloadSendComplete(nbl: NetBufferList): void;
  /** NdisTcpOffloadReceiveComplete: filled (or partly filled) requests, FIFO. */
  tcpOffloadReceiveComplete(nbl: NetBufferList): void;
  /**
   * NdisTcpOffloadReceiveHandler: one stand-alone NBL (RI-1), status always success (RI-2).
   * On success the host owns the NBL until it returns it; otherwise the target owns it again
   * at once (spec 14.4).
   */
  tcpOffloadReceiveIndicate(
    handle: NdisOffloadHandle,
    nbl: NetBufferList,
    status: "NDIS_STATUS_SUCCESS",
  ): ReceiveIndicateResult;
  /** NdisTcpOffloadDisconnectComplete: only the disconnect NBL (DC-1). */
  tcpOffloadDisconnectComplete(nbl: NetBufferList): void;
  /** NdisTcpOffloadForwardComplete. */
  tcpOffloadForwardComplete(nbl: NetBufferList): void;
  /** NdisTcpOffloadEventHandler. */
  tcpOffloadEvent(handle: NdisOffloadHandle, event: TcpOffloadEvent): void;
  /**
   * NdisMOffloadEventIndicate(NeighborReachabilityQuery) with a single neighbor block (NR-3);
   * the host answers synchronously with its HostReachabilityDelta in microseconds (0 = stale).
   */
  neighborReachabilityQuery(blockList: OffloadBlockList): number;
  /** NdisMIndicateStatusEx for the chimney status codes (spec 16.6). */
  indicateStatus(status: OffloadStatusIndication): void;
  /**
   * NdisMIndicateReceiveNetBufferLists: a frame the target does not handle goes up the
   * non-offload path (forwarded traffic, and segments arriving during a terminate, TM-23).
   */
  indicateReceive(frame: Uint8Array): void;
}

/** NET_BUFFER_LIST statuses a completion may write, by call (spec 13.5, 14.3, 16.1, 13.7). */
export type CompletionStatus = Extract<
  NdisStatus,
  | "NDIS_STATUS_SUCCESS"
  | "NDIS_STATUS_REQUEST_ABORTED"
  | "NDIS_STATUS_UPLOAD_IN_PROGRESS"
  | "NDIS_STATUS_INVALID_STATE"
>;
