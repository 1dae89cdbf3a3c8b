/**
 * What an offload target can do and how the host configures it (spec digest 3.3):
 * `NDIS_TCP_CONNECTION_OFFLOAD` (the capabilities a target reports, read by the host through
 * OID_TCP_CONNECTION_OFFLOAD_HARDWARE_CAPABILITIES) and `NDIS_TCP_CONNECTION_OFFLOAD_PARAMETERS`
 * (the host's tick-valued settings, set through OID_TCP_CONNECTION_OFFLOAD_PARAMETERS).
 *
 * Ticks. The host counts its parameters in its own ticks (`TicksPerSecond`: 10, 100 or 1000);
 * a target keeps timers at its own resolution. CFG-6: a tick value from the host is scaled to the
 * target's resolution with `scaleTicks`, rounding up so that a timer never fires before the host
 * asked (a 150 ms push timer on a 100 ms clock runs 2 target ticks, not 1).
 */
import { Duration } from "../time/instant.js";
import { UsageError } from "../util/errors.js";

/** The only chimney type defined for use (`NdisTcpChimneyOffload` = 1; others reserved, INIT-2). */
export const NDIS_TCP_CHIMNEY_OFFLOAD = 1;

/** NDIS_ENCAPSULATION_* values a chimney-capable driver must report (at least one). */
export type OffloadEncapsulation =
  | "NDIS_ENCAPSULATION_IEEE_802_3"
  | "NDIS_ENCAPSULATION_IEEE_LLC_SNAP_ROUTED";

/** NDIS_TCP_CONNECTION_OFFLOAD: the chimney capabilities of a target (spec 3.3). */
export interface TcpConnectionOffloadCapabilities {
  /** Without one of these the chimney capability is not recognised. */
  readonly encapsulation: readonly OffloadEncapsulation[];
  readonly supportIPv4: boolean;
  readonly supportIPv6: boolean;
  readonly supportIPv6ExtensionHeaders: boolean;
  readonly supportSack: boolean;
  /** Most connections offloaded at once, IPv4 and IPv6 together. */
  readonly tcpConnectionOffloadCapacity: number;
}

/** The capabilities of the software target when nothing is restricted. */
export const FULL_CAPABILITIES: TcpConnectionOffloadCapabilities = Object.freeze({
  encapsulation: Object.freeze(["NDIS_ENCAPSULATION_IEEE_802_3"] as const),
  supportIPv4: true,
  supportIPv6: true,
  supportIPv6ExtensionHeaders: false,
  supportSack: true,
  tcpConnectionOffloadCapacity: 1 << 20,
});

/**
 * A complete, frozen capability record from `FULL_CAPABILITIES` and `over`. Throws `UsageError`
 * when the record cannot describe a chimney target: CFG-2 (IPv4, IPv6 or both must be
 * supported), no encapsulation, or a capacity that is not a non-negative integer.
 */
export function capabilities(
  over: Partial<TcpConnectionOffloadCapabilities> = {},
): TcpConnectionOffloadCapabilities {
  const c: TcpConnectionOffloadCapabilities = { ...FULL_CAPABILITIES, ...over };
  if (!c.supportIPv4 && !c.supportIPv6)
    throw new UsageError("CFG-2: a chimney target supports IPv4, IPv6 or both");
  if (c.encapsulation.length === 0)
    throw new UsageError("a chimney target reports an IEEE 802.3 or LLC/SNAP-routed encapsulation");
  if (!Number.isSafeInteger(c.tcpConnectionOffloadCapacity) || c.tcpConnectionOffloadCapacity < 0)
    throw new UsageError(`bad TcpConnectionOffloadCapacity ${c.tcpConnectionOffloadCapacity}`);
  return Object.freeze({ ...c, encapsulation: Object.freeze([...c.encapsulation]) });
}

/** Whether `caps` lets the host offload a connection of IP version `v`. */
export function supportsFamily(caps: TcpConnectionOffloadCapabilities, v: 4 | 6): boolean {
  return v === 4 ? caps.supportIPv4 : caps.supportIPv6;
}

/** The IP families `before` supported that `after` no longer does (CFG-1: upload those first). */
export function droppedFamilies(
  before: TcpConnectionOffloadCapabilities,
  after: TcpConnectionOffloadCapabilities,
): (4 | 6)[] {
  const out: (4 | 6)[] = [];
  if (before.supportIPv4 && !after.supportIPv4) out.push(4);
  if (before.supportIPv6 && !after.supportIPv6) out.push(6);
  return out;
}

/** NDIS_TCP_CONNECTION_OFFLOAD_PARAMETERS: the host's settings, tick values in host ticks. */
export interface TcpConnectionOffloadParameters {
  /** Host ticks per second: 10, 100 or 1000 (default 1000, one tick = 1 ms). */
  readonly ticksPerSecond: number;
  readonly tcpAckFrequency: number;
  readonly tcpDelayedAckTicks: number;
  readonly tcpMaximumRetransmissions: number;
  readonly tcpDoubtReachabilityRetransmissions: number;
  readonly tcpSwsPreventionTicks: number;
  readonly tcpDuplicateAckThreshold: number;
  /** Push timer: ticks from the first byte placed in a posted buffer to its completion. */
  readonly tcpPushTicks: number;
  /** Inactivity after which a neighbor is stale (spec 16.5). */
  readonly nceStaleTicks: number;
}

/** The host tick rates the documentation allows. */
export const HOST_TICK_RATES: readonly number[] = [10, 100, 1000];

/** Default parameters (1000 ticks per second; the software target's historic defaults). */
export function offloadParameters(
  over: Partial<TcpConnectionOffloadParameters> = {},
): TcpConnectionOffloadParameters {
  const p: TcpConnectionOffloadParameters = {
    ticksPerSecond: 1000,
    tcpAckFrequency: 2,
    tcpDelayedAckTicks: 200,
    tcpMaximumRetransmissions: 5,
    tcpDoubtReachabilityRetransmissions: 3,
    tcpSwsPreventionTicks: 1000,
    tcpDuplicateAckThreshold: 3,
    tcpPushTicks: 500,
    nceStaleTicks: 30_000,
    ...over,
  };
  if (!HOST_TICK_RATES.includes(p.ticksPerSecond))
    throw new UsageError(`TicksPerSecond ${p.ticksPerSecond} is not one of ${HOST_TICK_RATES.join(", ")}`);
  for (const [k, v] of Object.entries(p))
    if (!Number.isSafeInteger(v) || v < 0) throw new UsageError(`bad offload parameter ${k} = ${String(v)}`);
  return Object.freeze(p);
}

/**
 * CFG-6: `ticks` at `fromTicksPerSecond` expressed in ticks of a `toTicksPerSecond` clock,
 * rounded up (a timer never fires earlier than asked). Integer arithmetic only.
 */
export function scaleTicks(ticks: number, fromTicksPerSecond: number, toTicksPerSecond: number): number {
  if (!Number.isSafeInteger(ticks) || ticks < 0) throw new UsageError(`bad tick count ${ticks}`);
  if (fromTicksPerSecond <= 0 || toTicksPerSecond <= 0) throw new UsageError("ticks per second must be > 0");
  const num = ticks * toTicksPerSecond;
  return Math.floor((num + fromTicksPerSecond - 1) / fromTicksPerSecond);
}

/** The duration of `ticks` ticks of a `ticksPerSecond` clock. */
export function ticksToDuration(ticks: number, ticksPerSecond: number): Duration {
  return Duration.fromMicros(Math.round((ticks * 1_000_000) / ticksPerSecond));
}
