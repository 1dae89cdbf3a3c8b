/**
 * Registration of a chimney offload target, our analogue of the NDIS calls of spec digest 3.1-3.2.
 *
 * - INIT-1: from `MiniportSetOptions` the target calls `NdisSetOptionalHandlers` twice: once with
 *   its generic handler table (initiate, terminate, update, invalidate, query) and once with its
 *   TCP handler table (send, receive, disconnect, forward, receive-return; OffloadType
 *   `NdisTcpChimneyOffload`, the only legal value).
 * - INIT-2: from `MiniportInitializeEx` it calls `NdisMGetOffloadHandlers` once per supported
 *   chimney type; only `NdisTcpChimneyOffload` (1) is defined, anything else is
 *   STATUS_NOT_SUPPORTED. The answer is the table of NDIS entry points the target calls
 *   (event, receive indication and the four data completions).
 *
 * `ChimneyRegistry` is the NDIS side: it checks both rules, and once both tables are registered
 * `offloadTarget()` routes the host's calls through the registered handlers only (the host never
 * reaches a handler the target did not register).
 */
import { UsageError } from "../util/errors.js";
import { NDIS_TCP_CHIMNEY_OFFLOAD } from "./capabilities.js";
import type { OffloadHost, OffloadTarget } from "./contract.js";

/** NDIS_PROVIDER_CHIMNEY_OFFLOAD_GENERIC_CHARACTERISTICS. */
export interface ProviderChimneyGenericCharacteristics {
  readonly kind: "generic";
  readonly initiateOffloadHandler: OffloadTarget["initiateOffload"];
  readonly terminateOffloadHandler: OffloadTarget["terminateOffload"];
  readonly updateOffloadHandler: OffloadTarget["updateOffload"];
  readonly invalidateOffloadHandler: OffloadTarget["invalidateOffload"];
  readonly queryOffloadHandler: OffloadTarget["queryOffload"];
}

/** NDIS_PROVIDER_CHIMNEY_OFFLOAD_TCP_CHARACTERISTICS. */
export interface ProviderChimneyTcpCharacteristics {
  readonly kind: "tcp";
  /** `NdisTcpChimneyOffload`, the only legal value. */
  readonly offloadType: number;
  readonly tcpOffloadSendHandler: OffloadTarget["tcpOffloadSend"];
  readonly tcpOffloadReceiveHandler: OffloadTarget["tcpOffloadReceive"];
  readonly tcpOffloadDisconnectHandler: OffloadTarget["tcpOffloadDisconnect"];
  readonly tcpOffloadForwardHandler: OffloadTarget["tcpOffloadForward"];
  readonly tcpOffloadReceiveReturnHandler: OffloadTarget["tcpOffloadReceiveReturn"];
}

/** What `NdisSetOptionalHandlers` accepts for a chimney. */
export type ProviderChimneyCharacteristics =
  | ProviderChimneyGenericCharacteristics
  | ProviderChimneyTcpCharacteristics;

/** NDIS_TCP_OFFLOAD_EVENT_HANDLERS: the NDIS entry points a target gets at initialization. */
export type TcpOffloadEventHandlers = Pick<
  OffloadHost,
  | "tcpOffloadEvent"
  | "tcpOffloadReceiveIndicate"
  | "tcpOffloadSendComplete"
  | "tcpOffloadReceiveComplete"
  | "tcpOffloadDisconnectComplete"
  | "tcpOffloadForwardComplete"
>;

/** The answer of `NdisMGetOffloadHandlers`. */
export type GetOffloadHandlersResult =
  | { readonly status: "STATUS_SUCCESS"; readonly handlers: TcpOffloadEventHandlers }
  | { readonly status: "STATUS_NOT_SUPPORTED" };

/** The NDIS calls a miniport makes to register as a chimney offload target. */
export interface MiniportChimneyNdis {
  /** NdisSetOptionalHandlers (from MiniportSetOptions). */
  setOptionalHandlers(chars: ProviderChimneyCharacteristics): "NDIS_STATUS_SUCCESS";
  /** NdisMGetOffloadHandlers (from MiniportInitializeEx). */
  getOffloadHandlers(chimneyType: number): GetOffloadHandlersResult;
}

/** The NDIS side of registration: records the handler tables and checks INIT-1 / INIT-2. */
export class ChimneyRegistry implements MiniportChimneyNdis {
  readonly #host: OffloadHost;
  #generic: ProviderChimneyGenericCharacteristics | undefined;
  #tcp: ProviderChimneyTcpCharacteristics | undefined;
  /** Every registration call, in order (for tests and traces). */
  readonly calls: string[] = [];

  constructor(host: OffloadHost) {
    this.#host = host;
  }

  /** INIT-1: one generic and one TCP table, each once; the TCP table's type must be the TCP chimney. */
  setOptionalHandlers(chars: ProviderChimneyCharacteristics): "NDIS_STATUS_SUCCESS" {
    this.calls.push(`NdisSetOptionalHandlers(${chars.kind})`);
    if (chars.kind === "generic") {
      if (this.#generic !== undefined)
        throw new UsageError("INIT-1: generic chimney handlers registered twice");
      this.#generic = chars;
    } else {
      if (chars.offloadType !== NDIS_TCP_CHIMNEY_OFFLOAD)
        throw new UsageError(`INIT-1: OffloadType ${chars.offloadType} is not NdisTcpChimneyOffload`);
      if (this.#tcp !== undefined) throw new UsageError("INIT-1: TCP chimney handlers registered twice");
      this.#tcp = chars;
    }
    return "NDIS_STATUS_SUCCESS";
  }

  /** INIT-2: the event handlers for the TCP chimney; any other chimney type is not supported. */
  getOffloadHandlers(chimneyType: number): GetOffloadHandlersResult {
    this.calls.push(`NdisMGetOffloadHandlers(${chimneyType})`);
    if (chimneyType !== NDIS_TCP_CHIMNEY_OFFLOAD) return { status: "STATUS_NOT_SUPPORTED" };
    const h = this.#host;
    return {
      status: "STATUS_SUCCESS",
      handlers: Object.freeze({
        tcpOffloadEvent: h.tcpOffloadEvent.bind(h),
        tcpOffloadReceiveIndicate: h.tcpOffloadReceiveIndicate.bind(h),
        tcpOffloadSendComplete: h.tcpOffloadSendComplete.bind(h),
        tcpOffloadReceiveComplete: h.tcpOffloadReceiveComplete.bind(h),
        tcpOffloadDisconnectComplete: h.tcpOffloadDisconnectComplete.bind(h),
        tcpOffloadForwardComplete: h.tcpOffloadForwardComplete.bind(h),
      }),
    };
  }

  /** Whether both handler tables are registered (chimney offload is possible through this target). */
  get complete(): boolean {
    return this.#generic !== undefined && this.#tcp !== undefined;
  }

  /**
   * The target as the host reaches it: every call goes through a registered handler. Throws
   * `UsageError` while a table is missing (NDIS does not route chimney calls to such a driver).
   */
  offloadTarget(): OffloadTarget {
    const g = this.#generic;
    const t = this.#tcp;
    if (g === undefined || t === undefined)
      throw new UsageError("INIT-1: the target has not registered both chimney handler tables");
    return {
      initiateOffload: g.initiateOffloadHandler,
      terminateOffload: g.terminateOffloadHandler,
      updateOffload: g.updateOffloadHandler,
      invalidateOffload: g.invalidateOffloadHandler,
      queryOffload: g.queryOffloadHandler,
      tcpOffloadSend: t.tcpOffloadSendHandler,
      tcpOffloadReceive: t.tcpOffloadReceiveHandler,
      tcpOffloadDisconnect: t.tcpOffloadDisconnectHandler,
      tcpOffloadForward: t.tcpOffloadForwardHandler,
      tcpOffloadReceiveReturn: t.tcpOffloadReceiveReturnHandler,
    };
  }
}
