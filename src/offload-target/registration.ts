/**
 * How an offload target registers with NDIS (spec digest 3.1-3.2): the target's half of
 * `MiniportSetOptions` (INIT-1) and `MiniportInitializeEx` (INIT-2). The NDIS half, which checks
 * the calls, is `ChimneyRegistry` in src/chimney/registration.ts.
 */
import { NDIS_TCP_CHIMNEY_OFFLOAD } from "../chimney/capabilities.js";
import type { OffloadTarget } from "../chimney/contract.js";
import type { MiniportChimneyNdis, TcpOffloadEventHandlers } from "../chimney/registration.js";
import { UsageError } from "../util/errors.js";

/** The chimney types a target supports (only the TCP chimney is defined). */
export const SUPPORTED_CHIMNEY_TYPES: readonly number[] = [NDIS_TCP_CHIMNEY_OFFLOAD];

/**
 * INIT-1: `NdisSetOptionalHandlers` twice, the generic handler table then the TCP handler table
 * (OffloadType NdisTcpChimneyOffload), each handler forwarding to `target`.
 */
export function setChimneyOptions(target: OffloadTarget, ndis: MiniportChimneyNdis): void {
  ndis.setOptionalHandlers({
    kind: "generic",
    initiateOffloadHandler: (b) => {
      target.initiateOffload(b);
    },
    terminateOffloadHandler: (b) => {
      target.terminateOffload(b);
    },
    updateOffloadHandler: (b) => {
      target.updateOffload(b);
    },
    invalidateOffloadHandler: (b) => {
      target.invalidateOffload(b);
    },
    queryOffloadHandler: (b) => {
      target.queryOffload(b);
    },
  });
  ndis.setOptionalHandlers({
    kind: "tcp",
    offloadType: NDIS_TCP_CHIMNEY_OFFLOAD,
    tcpOffloadSendHandler: (ctx, nbl) => target.tcpOffloadSend(ctx, nbl),
    tcpOffloadReceiveHandler: (ctx, nbl) => target.tcpOffloadReceive(ctx, nbl),
    tcpOffloadDisconnectHandler: (ctx, nbl, flags) => target.tcpOffloadDisconnect(ctx, nbl, flags),
    tcpOffloadForwardHandler: (ctx, nbl) => target.tcpOffloadForward(ctx, nbl),
    tcpOffloadReceiveReturnHandler: (nbl) => target.tcpOffloadReceiveReturn(nbl),
  });
}

/**
 * INIT-2: `NdisMGetOffloadHandlers` once per supported chimney type; the target keeps its own
 * copy of the returned table. Throws `UsageError` when NDIS does not support the TCP chimney.
 */
export function getChimneyHandlers(ndis: MiniportChimneyNdis): TcpOffloadEventHandlers {
  let tcp: TcpOffloadEventHandlers | undefined;
  for (const type of SUPPORTED_CHIMNEY_TYPES) {
    const r = ndis.getOffloadHandlers(type);
    if (r.status !== "STATUS_SUCCESS")
      throw new UsageError(`INIT-2: NdisMGetOffloadHandlers(${type}) not supported`);
    if (type === NDIS_TCP_CHIMNEY_OFFLOAD) tcp = { ...r.handlers };
  }
  if (tcp === undefined) throw new UsageError("INIT-2: no TCP chimney handlers");
  return tcp;
}
