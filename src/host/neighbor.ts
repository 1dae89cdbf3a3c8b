/**
 * The neighbor cache: IP address -> link-layer address, for ARP (IPv4) and Neighbor Discovery
 * (IPv6) alike, with RFC 4861 section 7.3 reachability states. This is the chimney's NEIGHBOR
 * state (spec digest 4.4, 16.5): `mac` is the cached `DlDestinationAddress`, and
 * `confirmedAt` is the host's last forward-reachability confirmation, from which the cached
 * `HostReachabilityDelta` is computed.
 *
 * Theory of operation. `resolve(now, ip)` returns the MAC when the entry is usable
 * (REACHABLE, STALE, DELAY, PROBE); otherwise it creates an INCOMPLETE entry and queues a
 * multicast solicitation. Packets waiting for resolution are held per entry (bounded; the oldest
 * is dropped, RFC 4861 7.2.2). Replies come in through `confirm` (solicited: REACHABLE;
 * unsolicited with a new address: STALE). Using a STALE entry moves it to DELAY; if no upper-layer
 * confirmation (`confirmReachable`, e.g. TCP forward progress) arrives within the delay, it goes to
 * PROBE and unicast probes are sent; after `maxProbes` unanswered the entry is removed and its
 * queued packets are dropped. Output is polled: `pollSolicit`, `pollRelease` (packets now
 * sendable), `pollChange` (MAC changed or neighbor lost: offloaded connections must follow).
 */
import { type Duration, Instant } from "../time/instant.js";
import { type IpAddr, ipKey } from "../wire/ip-addr.js";
import { type MacAddr, macEquals } from "../wire/ethernet.js";

/** RFC 4861 section 7.3.2 states. */
export type NeighborState = "INCOMPLETE" | "REACHABLE" | "STALE" | "DELAY" | "PROBE";

/** Timing and bounds (RFC 4861 section 10 defaults, scaled to microseconds). */
export interface NeighborConfig {
  readonly reachableTime: Duration;
  readonly retransTimer: Duration;
  readonly delayFirstProbe: Duration;
  readonly maxMulticastSolicit: number;
  readonly maxUnicastSolicit: number;
  /** Packets held per INCOMPLETE entry. */
  readonly queueLimit: number;
}

/** RFC 4861 defaults: REACHABLE_TIME 30 s, RETRANS_TIMER 1 s, DELAY_FIRST_PROBE_TIME 5 s, 3 solicits. */
export const DEFAULT_NEIGHBOR_CONFIG: NeighborConfig = {
  reachableTime: 30_000_000 as Duration,
  retransTimer: 1_000_000 as Duration,
  delayFirstProbe: 5_000_000 as Duration,
  maxMulticastSolicit: 3,
  maxUnicastSolicit: 3,
  queueLimit: 3,
};

/** One neighbor. */
export interface NeighborEntry {
  readonly ip: IpAddr;
  readonly ifIndex: number;
  mac: MacAddr | undefined;
  state: NeighborState;
  /** Last forward-reachability confirmation (the basis of HostReachabilityDelta). */
  confirmedAt: Instant;
  /** Next timer deadline for this entry, if any. */
  deadline: Instant | undefined;
  probesSent: number;
  readonly queue: Uint8Array[];
}

/** A solicitation to send: multicast (ARP broadcast / solicited-node NS) or unicast to `mac`. */
export interface Solicit {
  readonly ifIndex: number;
  readonly ip: IpAddr;
  readonly unicastTo: MacAddr | undefined;
}

/** A packet queued during resolution that can now be sent to `mac`. */
export interface Release {
  readonly ifIndex: number;
  readonly ip: IpAddr;
  readonly mac: MacAddr;
  readonly packet: Uint8Array;
}

/** The neighbor's link-layer address changed, or it was lost (`mac` undefined). */
export interface NeighborChange {
  readonly ifIndex: number;
  readonly ip: IpAddr;
  readonly mac: MacAddr | undefined;
}

/** Counters. */
export interface NeighborStats {
  queueDrops: number;
  resolutionFailures: number;
}

/** The cache for all interfaces of a host. */
export class NeighborCache {
  readonly #entries = new Map<string, NeighborEntry>();
  readonly #cfg: NeighborConfig;
  readonly #solicits: Solicit[] = [];
  readonly #releases: Release[] = [];
  readonly #changes: NeighborChange[] = [];
  readonly stats: NeighborStats = { queueDrops: 0, resolutionFailures: 0 };

  constructor(cfg: NeighborConfig = DEFAULT_NEIGHBOR_CONFIG) {
    this.#cfg = cfg;
  }

  /** The entry for `ip` on `ifIndex`, if any. */
  get(ifIndex: number, ip: IpAddr): NeighborEntry | undefined {
    return this.#entries.get(key(ifIndex, ip));
  }

  /** Every entry (for the offload manager's neighbor state and for tools). */
  entries(): IterableIterator<NeighborEntry> {
    return this.#entries.values();
  }

  /**
   * The MAC to send to `ip` now, or undefined; in that case `packet` (if given) is queued and a
   * solicitation is scheduled. A STALE entry is used and moves to DELAY (RFC 4861 7.3.3).
   */
  resolve(now: Instant, ifIndex: number, ip: IpAddr, packet?: Uint8Array): MacAddr | undefined {
    const k = key(ifIndex, ip);
    let e = this.#entries.get(k);
    if (e === undefined) {
      e = {
        ip,
        ifIndex,
        mac: undefined,
        state: "INCOMPLETE",
        confirmedAt: now,
        deadline: Instant.add(now, this.#cfg.retransTimer),
        probesSent: 1,
        queue: [],
      };
      this.#entries.set(k, e);
      this.#solicits.push({ ifIndex, ip, unicastTo: undefined });
    }
    if (e.state === "INCOMPLETE" || e.mac === undefined) {
      if (packet !== undefined) {
        if (e.queue.length >= this.#cfg.queueLimit) {
          e.queue.shift();
          this.stats.queueDrops++;
        }
        e.queue.push(packet);
      }
      return undefined;
    }
    if (e.state === "REACHABLE" && now - e.confirmedAt >= this.#cfg.reachableTime) e.state = "STALE";
    if (e.state === "STALE") {
      e.state = "DELAY";
      e.deadline = Instant.add(now, this.#cfg.delayFirstProbe);
    }
    return e.mac;
  }

  /**
   * A link-layer address for `ip` was learned. `solicited`: an ARP reply or an NA with the S
   * flag, which confirms reachability; otherwise (a request from the neighbor, an unsolicited
   * NA) the entry becomes STALE if the address is new (RFC 4861 7.2.5, 7.2.3). Creates the entry
   * when `create` (the neighbor talked to us), as ARP and ND both allow.
   */
  confirm(now: Instant, ifIndex: number, ip: IpAddr, mac: MacAddr, solicited: boolean, create = true): void {
    const k = key(ifIndex, ip);
    let e = this.#entries.get(k);
    if (e === undefined) {
      if (!create) return;
      e = {
        ip,
        ifIndex,
        mac: undefined,
        state: "STALE",
        confirmedAt: now,
        deadline: undefined,
        probesSent: 0,
        queue: [],
      };
      this.#entries.set(k, e);
    }
    const changed = e.mac === undefined || !macEquals(e.mac, mac);
    const wasKnown = e.mac !== undefined;
    e.mac = mac;
    if (solicited) {
      e.state = "REACHABLE";
      e.confirmedAt = now;
      e.deadline = undefined;
      e.probesSent = 0;
    } else if (changed || e.state === "INCOMPLETE") {
      e.state = "STALE";
      e.deadline = undefined;
    }
    if (changed && wasKnown) this.#changes.push({ ifIndex, ip, mac });
    for (const packet of e.queue) this.#releases.push({ ifIndex, ip, mac, packet });
    e.queue.length = 0;
  }

  /** An upper layer saw forward progress with `ip` (RFC 4861 7.3.1): the entry is REACHABLE again. */
  confirmReachable(now: Instant, ifIndex: number, ip: IpAddr): void {
    const e = this.#entries.get(key(ifIndex, ip));
    if (e === undefined || e.mac === undefined) return;
    e.state = "REACHABLE";
    e.confirmedAt = now;
    e.deadline = undefined;
    e.probesSent = 0;
  }

  /** Removes an entry (administratively, or on invalidation); reports it lost. */
  remove(ifIndex: number, ip: IpAddr): boolean {
    const k = key(ifIndex, ip);
    const e = this.#entries.get(k);
    if (e === undefined) return false;
    this.#entries.delete(k);
    this.stats.queueDrops += e.queue.length;
    this.#changes.push({ ifIndex, ip, mac: undefined });
    return true;
  }

  /** Runs the per-entry timers: retransmit solicitations, DELAY -> PROBE, give up. */
  handleTimeout(now: Instant): void {
    for (const [k, e] of this.#entries) {
      if (e.deadline === undefined || e.deadline > now) continue;
      switch (e.state) {
        case "INCOMPLETE":
          if (e.probesSent >= this.#cfg.maxMulticastSolicit) {
            this.#fail(k, e);
          } else {
            e.probesSent++;
            e.deadline = Instant.add(now, this.#cfg.retransTimer);
            this.#solicits.push({ ifIndex: e.ifIndex, ip: e.ip, unicastTo: undefined });
          }
          break;
        case "DELAY":
          e.state = "PROBE";
          e.probesSent = 1;
          e.deadline = Instant.add(now, this.#cfg.retransTimer);
          this.#solicits.push({ ifIndex: e.ifIndex, ip: e.ip, unicastTo: e.mac });
          break;
        case "PROBE":
          if (e.probesSent >= this.#cfg.maxUnicastSolicit) {
            this.#fail(k, e);
          } else {
            e.probesSent++;
            e.deadline = Instant.add(now, this.#cfg.retransTimer);
            this.#solicits.push({ ifIndex: e.ifIndex, ip: e.ip, unicastTo: e.mac });
          }
          break;
        case "REACHABLE":
        case "STALE":
          e.deadline = undefined;
          break;
      }
    }
  }

  /** The earliest entry deadline. */
  pollTimeout(): Instant | undefined {
    let t: Instant | undefined;
    for (const e of this.#entries.values()) t = Instant.earliest(t, e.deadline);
    return t;
  }

  /** Solicitations to send (the stack builds the ARP request or NS). */
  pollSolicit(): Solicit | undefined {
    return this.#solicits.shift();
  }

  /** Packets that waited for resolution and can be sent now, in arrival order. */
  pollRelease(): Release | undefined {
    return this.#releases.shift();
  }

  /** Address changes and losses, for offloaded connections through this neighbor. */
  pollChange(): NeighborChange | undefined {
    return this.#changes.shift();
  }

  #fail(k: string, e: NeighborEntry): void {
    this.#entries.delete(k);
    this.stats.resolutionFailures++;
    this.stats.queueDrops += e.queue.length;
    if (e.mac !== undefined) this.#changes.push({ ifIndex: e.ifIndex, ip: e.ip, mac: undefined });
  }
}

function key(ifIndex: number, ip: IpAddr): string {
  return `${ifIndex}/${ipKey(ip)}`;
}
