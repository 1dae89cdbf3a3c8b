/**
 * TCP-level chimney rules the software target applies on top of the shared engine (spec digest
 * 3.3, 4.2, 15.2, 15.5, 17.11).
 *
 * Theory of operation
 * - The target runs the host's `TcpConnection` engine for offloaded connections, so most of the
 *   RFC behaviour (RFC 5961 challenge ACKs, sender SWS avoidance, PAWS, modular sequence
 *   arithmetic) is the engine's. What differs is policy: the target must not let a configuration
 *   switch those off (NS-3, BR-0), and it decides which SACK behaviour the engine gets from the
 *   target's own SupportSack capability (CFG-4). `offloadEngineConfig` and `offloadSackEnabled`
 *   are those two decisions.
 * - Receive filtering (VL-1, NB-3) is a pure function of the frame's Ethernet header, the
 *   neighbor's constant state and the interface MAC: `receiveFilter`.
 * - Cached state is the host's (ST-2): the target keeps a frozen copy (`frozenCached`) and
 *   replaces it only when an update arrives.
 */
import type { TcpConfig } from "../tcp/config.js";
import { tcpConfig } from "../tcp/config.js";
import { type EthernetRepr, isMulticastMac, type MacAddr, MAC_ZERO, macEquals } from "../wire/ethernet.js";
import type { NeighborConstState, TcpCachedState } from "../chimney/state.js";
import { Duration } from "../time/instant.js";

/**
 * The engine configuration for offloaded connections: the caller's, with RFC 5961 sections 3-5
 * and the spec 17.11 probing forced on. NS-3 / BR-0: an out-of-order SYN, an in-window RST that
 * is not at RCV.NXT, and an ACK outside the acceptable range all draw a (rate-limited)
 * challenge ACK and are otherwise discarded; only an exact RST resets. After a challenge ACK
 * the keep-alive timer runs for at most 5 minutes, then probes every KaInterval, at most
 * KaProbeCount times, unless an acceptable segment arrives first; when none does the engine
 * closes ("timeout") and the target asks for the upload, reporting CLOSED. A host
 * configuration that turns these off (a conformance knob such as insecure_rst) does not reach
 * the target.
 */
export function offloadEngineConfig(cfg: TcpConfig): TcpConfig {
  if (cfg.rfc5961 && cfg.rfc5961Rst !== false && cfg.rfc5961Syn !== false && cfg.blindAttackProbing)
    return cfg;
  return tcpConfig({
    ...cfg,
    rfc5961: true,
    rfc5961Rst: undefined,
    rfc5961Syn: undefined,
    blindAttackProbing: true,
  });
}

/**
 * CFG-4: whether an offloaded connection generates and consumes SACK. With SupportSack
 * advertised the connection uses SACK exactly when the host negotiated it (TCP_FLAG_SACK_ENABLED);
 * without it the engine neither sends SACK blocks nor reads them: a SACK option on a received
 * segment is ignored and the rest of the segment (ACK, window, data) is processed normally.
 */
export function offloadSackEnabled(supportSack: boolean, negotiated: boolean): boolean {
  return supportSack && negotiated;
}

/** What the target does with a frame of an offloaded connection, by its Ethernet header. */
export type FilterVerdict = "accept" | "drop" | "up";

/**
 * The MAC an offloaded connection's frames carry as source and are received on: the neighbor's
 * DlSourceAddress when it is non-zero, else the interface's MAC (NB-1, NB-3).
 */
export function configuredMac(neighbor: NeighborConstState, interfaceMac: MacAddr): MacAddr {
  return macEquals(neighbor.dlSourceAddress, MAC_ZERO) ? interfaceMac : neighbor.dlSourceAddress;
}

/**
 * Receive filtering for a frame that matched an offloaded connection's 4-tuple.
 * - VL-1 (spec 15.5): neighbor VlanId 0 accepts untagged, VLAN-0 (priority) and any tagged
 *   frame; a non-zero VlanId accepts only frames tagged with that id and drops the rest.
 * - NB-3: the connection accepts traffic on its configured MAC (`configuredMac`) and on group
 *   (multicast / broadcast) addresses. A unicast frame for another MAC is not this
 *   connection's receive traffic: it goes up the non-offload path and the host decides.
 * `eth` undefined (no Ethernet header known) accepts.
 */
export function receiveFilter(
  eth: EthernetRepr | undefined,
  neighbor: NeighborConstState,
  interfaceMac: MacAddr,
): FilterVerdict {
  if (eth === undefined) return "accept";
  if (neighbor.vlanId !== 0 && eth.vlan?.id !== neighbor.vlanId) return "drop"; // VL-1
  const dst = eth.dst;
  if (isMulticastMac(dst) || macEquals(dst, configuredMac(neighbor, interfaceMac))) return "accept"; // NB-3
  return "up";
}

/**
 * ST-2: a frozen copy of a cached state record. The target holds only such copies, so nothing
 * it does while running a connection can change a cached variable; `#doUpdate` is the one
 * place that replaces the copy (MiniportUpdateOffload).
 */
export function frozenCached<T extends object>(ca: T): Readonly<T> {
  return Object.freeze({ ...ca });
}

/** BR-0 (spec 17.11): the probe count used when the host's KaProbeCount is 0. */
export const DEFAULT_KA_PROBES = 10;
/** BR-0 (spec 17.11): the probe interval used when the host's KaInterval is 0. */
export const DEFAULT_KA_INTERVAL: Duration = Duration.fromSeconds(1);

/**
 * The keep-alive interval and probe count the engine runs with: the cached values, with 0
 * replaced by the spec 17.11 defaults (BR-0: "if KaProbeCount/KaInterval are 0, use 10 probes
 * and 1 second"), so the blind-attack probing always probes. The cached record itself keeps the
 * host's values (ST-2).
 */
export function engineKeepAlive(ca: TcpCachedState): {
  readonly interval: Duration;
  readonly probes: number;
} {
  return {
    interval: ca.kaInterval > 0 ? ca.kaInterval : DEFAULT_KA_INTERVAL,
    probes: ca.kaProbeCount > 0 ? ca.kaProbeCount : DEFAULT_KA_PROBES,
  };
}
