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
 *
 * Bounds (a flood of spoofed senders cannot grow or slow it). The table holds at most
 * `maxEntries` (default 1024, like Linux's gc_thresh3); a new entry past the cap evicts the least
 * recently used entry that is not in use (pinned by the `inUse` predicate, e.g. an offloaded
 * connection's neighbor); when every entry is in use the new one is not created. An INCOMPLETE
 * entry with packets queued is evicted like any other (its packets are dropped): traffic toward
 * spoofed on-link senders (SYN-ACKs to a SYN flood) would otherwise fill the table with
 * resolutions that never complete, and no real neighbor could be resolved any more.
 * Entries unused for `gcStaleTime` (60 s, Linux's gc_stale_time) in REACHABLE or STALE are
 * collected once the table holds `gcThreshold` entries (Linux's gc_thresh1), a few at a time on
 * each insertion and timer run (no wake-up of its own). Timers sit in a min-heap with lazy
 * deletion, so `pollTimeout` is O(1) amortized and the heap is rebuilt when stale items dominate.
 */
import { type Duration, Instant } from "../time/instant.js";
import { type IpAddr, ipKey } from "../wire/ip-addr.js";
import { type MacAddr, macEquals } from "../wire/ethernet.js";
import { MinHeap } from "../util/heap.js";

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
  /** Hard cap on entries (Linux gc_thresh3); default `DEFAULT_NEIGHBOR_MAX_ENTRIES`. */
  readonly maxEntries?: number | undefined;
  /** Size from which unused entries are collected (Linux gc_thresh1); default 128. */
  readonly gcThreshold?: number | undefined;
  /** An unused REACHABLE / STALE entry is collectable after this (Linux gc_stale_time); default 60 s. */
  readonly gcStaleTime?: Duration | undefined;
}

/** The default cap on neighbor entries (per host, all interfaces together). */
export const DEFAULT_NEIGHBOR_MAX_ENTRIES = 1024;
/** Default size from which unused entries are collected (`NeighborConfig.gcThreshold`). */
export const DEFAULT_GC_THRESHOLD = 128;
/** Default idle time after which an unused entry is collectable (`NeighborConfig.gcStaleTime`). */
export const DEFAULT_GC_STALE_TIME = 60_000_000 as Duration;
/** Collectable entries examined per insertion or timer run. */
const GC_BATCH = 8;

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
  /** Entries evicted to make room under the cap. */
  evictions: number;
  /** Unused entries collected after gcStaleTime. */
  staleCollected: number;
  /** Entries not created because every entry was in use (an offloaded connection's neighbor). */
  tableFull: number;
  /** Timer-heap pushes and pops (for tests: the cost of `pollTimeout` and timers). */
  timerOps: number;
}

interface Entry extends NeighborEntry {
  readonly key: string;
  /** Last use for sending (resolve) or upper-layer confirmation: the LRU and gc clock. */
  usedAt: Instant;
  /** Removed from the table (its heap items are stale). */
  gone: boolean;
}

interface Timer {
  readonly at: Instant;
  readonly e: Entry;
}

const timerLess = (a: Timer, b: Timer): boolean => a.at < b.at;

/** The cache for all interfaces of a host. */
export class NeighborCache {
  /** In LRU order: the least recently used first (an entry moves to the end when used). */
  readonly #entries = new Map<string, Entry>();
  readonly #cfg: NeighborConfig;
  readonly #max: number = 0;
  readonly #gcThreshold: number = 0;
  readonly #gcStale: Duration = 0 as Duration;
  #timers = new MinHeap<Timer>(timerLess);
  readonly #solicits: Solicit[] = [];
  readonly #releases: Release[] = [];
  /** Pending changes, coalesced per neighbor (the latest wins), bounded. */
  readonly #changes = new Map<string, NeighborChange>();
  #inUse: ((ifIndex: number, ip: IpAddr) => boolean) | undefined;
  readonly stats: NeighborStats = {
    queueDrops: 0,
    resolutionFailures: 0,
    evictions: 0,
    staleCollected: 0,
    tableFull: 0,
    timerOps: 0,
  };

  constructor(cfg: NeighborConfig = DEFAULT_NEIGHBOR_CONFIG) {
    this.#cfg = cfg;
    this.#max = Math.max(1, cfg.maxEntries ?? DEFAULT_NEIGHBOR_MAX_ENTRIES);
    this.#gcThreshold = cfg.gcThreshold ?? DEFAULT_GC_THRESHOLD;
    this.#gcStale = cfg.gcStaleTime ?? DEFAULT_GC_STALE_TIME;
  }

  /** Entries currently held. */
  get size(): number {
    return this.#entries.size;
  }

  /** The cap on entries. */
  get maxEntries(): number {
    return this.#max;
  }

  /** Items in the timer heap, stale ones included (bounded by about twice the entries). */
  get timerCount(): number {
    return this.#timers.size;
  }

  /**
   * Entries for which `inUse` answers true are never evicted nor collected, and only their
   * changes are reported (the offload manager: neighbors of offloaded connections).
   */
  setInUse(inUse: ((ifIndex: number, ip: IpAddr) => boolean) | undefined): void {
    this.#inUse = inUse;
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
      e = this.#create(now, k, ifIndex, ip, "INCOMPLETE");
      if (e === undefined) {
        if (packet !== undefined) this.stats.queueDrops++;
        return undefined;
      }
      e.probesSent = 1;
      this.#arm(e, Instant.add(now, this.#cfg.retransTimer));
      this.#solicits.push({ ifIndex, ip, unicastTo: undefined });
    } else {
      this.#use(now, e);
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
      this.#arm(e, Instant.add(now, this.#cfg.delayFirstProbe));
    }
    return e.mac;
  }

  /**
   * A link-layer address for `ip` was learned. `solicited`: an ARP reply or an NA with the S
   * flag, which confirms reachability; otherwise (a request from the neighbor, an unsolicited
   * NA) the entry becomes STALE if the address is new (RFC 4861 7.2.5, 7.2.3). Creates the entry
   * when `create` (the neighbor talked to us: the caller checks that we are the target, RFC 826),
   * as ARP and ND both allow; an existing entry is updated either way.
   */
  confirm(now: Instant, ifIndex: number, ip: IpAddr, mac: MacAddr, solicited: boolean, create = true): void {
    const k = key(ifIndex, ip);
    let e = this.#entries.get(k);
    if (e === undefined) {
      if (!create) return;
      e = this.#create(now, k, ifIndex, ip, "STALE");
      if (e === undefined) return;
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
    if (changed && wasKnown) this.#change(e, mac);
    for (const packet of e.queue) this.#releases.push({ ifIndex, ip, mac, packet });
    e.queue.length = 0;
  }

  /** An upper layer saw forward progress with `ip` (RFC 4861 7.3.1): the entry is REACHABLE again. */
  confirmReachable(now: Instant, ifIndex: number, ip: IpAddr): void {
    const e = this.#entries.get(key(ifIndex, ip));
    if (e === undefined || e.mac === undefined) return;
    this.#use(now, e);
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
    this.#drop(e);
    this.stats.queueDrops += e.queue.length;
    this.#change(e, undefined, true);
    return true;
  }

  /** Runs the per-entry timers that are due: retransmit solicitations, DELAY -> PROBE, give up. */
  handleTimeout(now: Instant): void {
    for (let top = this.#timers.peek(); top !== undefined && top.at <= now; top = this.#timers.peek()) {
      this.#timers.pop();
      this.stats.timerOps++;
      const e = top.e;
      if (e.gone || e.deadline !== top.at) continue; // superseded (lazy deletion)
      e.deadline = undefined;
      switch (e.state) {
        case "INCOMPLETE":
          if (e.probesSent >= this.#cfg.maxMulticastSolicit) {
            this.#fail(e);
          } else {
            e.probesSent++;
            this.#arm(e, Instant.add(now, this.#cfg.retransTimer));
            this.#solicits.push({ ifIndex: e.ifIndex, ip: e.ip, unicastTo: undefined });
          }
          break;
        case "DELAY":
          e.state = "PROBE";
          e.probesSent = 1;
          this.#arm(e, Instant.add(now, this.#cfg.retransTimer));
          this.#solicits.push({ ifIndex: e.ifIndex, ip: e.ip, unicastTo: e.mac });
          break;
        case "PROBE":
          if (e.probesSent >= this.#cfg.maxUnicastSolicit) {
            this.#fail(e);
          } else {
            e.probesSent++;
            this.#arm(e, Instant.add(now, this.#cfg.retransTimer));
            this.#solicits.push({ ifIndex: e.ifIndex, ip: e.ip, unicastTo: e.mac });
          }
          break;
        case "REACHABLE":
        case "STALE":
          break;
      }
    }
    this.#collect(now);
  }

  /** The earliest entry deadline (O(1) amortized: stale heap items are discarded on the way). */
  pollTimeout(): Instant | undefined {
    for (let top = this.#timers.peek(); top !== undefined; top = this.#timers.peek()) {
      if (!top.e.gone && top.e.deadline === top.at) return top.at;
      this.#timers.pop();
      this.stats.timerOps++;
    }
    return undefined;
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
    for (const [k, ch] of this.#changes) {
      this.#changes.delete(k);
      return ch;
    }
    return undefined;
  }

  /** A new entry, making room under the cap; undefined when every entry is in use. */
  #create(now: Instant, k: string, ifIndex: number, ip: IpAddr, state: NeighborState): Entry | undefined {
    this.#collect(now);
    if (this.#entries.size >= this.#max && !this.#evictOne()) {
      this.stats.tableFull++;
      return undefined;
    }
    const e: Entry = {
      key: k,
      ip,
      ifIndex,
      mac: undefined,
      state,
      confirmedAt: now,
      deadline: undefined,
      probesSent: 0,
      queue: [],
      usedAt: now,
      gone: false,
    };
    this.#entries.set(k, e);
    return e;
  }

  /** Marks `e` used now and moves it to the most recently used end. */
  #use(now: Instant, e: Entry): void {
    if (e.usedAt === now) return;
    e.usedAt = now;
    this.#entries.delete(e.key);
    this.#entries.set(e.key, e);
  }

  #inUseBy(e: Entry): boolean {
    return this.#inUse?.(e.ifIndex, e.ip) ?? false;
  }

  #pinned(e: Entry): boolean {
    return e.queue.length > 0 || this.#inUseBy(e);
  }

  /**
   * Evicts the least recently used entry not in use (queued packets of an INCOMPLETE one are
   * dropped with it). An entry in use that is met on the way gets a second chance (moves to the
   * end), so repeated evictions do not rescan it.
   */
  #evictOne(): boolean {
    let budget = this.#entries.size;
    for (const e of this.#entries.values()) {
      if (budget-- <= 0) break;
      if (this.#inUseBy(e)) {
        this.#entries.delete(e.key);
        this.#entries.set(e.key, e);
        continue;
      }
      this.#drop(e);
      this.stats.evictions++;
      this.stats.queueDrops += e.queue.length;
      e.queue.length = 0;
      return true;
    }
    return false;
  }

  /** Collects a few unused REACHABLE / STALE entries at the LRU end once the table is large. */
  #collect(now: Instant): void {
    if (this.#entries.size < this.#gcThreshold) return;
    let n = 0;
    for (const e of this.#entries.values()) {
      if (n >= GC_BATCH || now - e.usedAt < this.#gcStale) break; // LRU order: the rest is newer
      n++;
      if (e.deadline !== undefined || this.#pinned(e)) continue;
      if (e.state !== "REACHABLE" && e.state !== "STALE") continue;
      this.#drop(e);
      this.stats.staleCollected++;
    }
  }

  #arm(e: Entry, at: Instant): void {
    e.deadline = at;
    this.#timers.push({ at, e });
    this.stats.timerOps++;
    if (this.#timers.size > 2 * this.#entries.size + 64) this.#rebuildTimers();
  }

  /** Drops the stale heap items (amortized: only when they outnumber the live ones). */
  #rebuildTimers(): void {
    const h = new MinHeap<Timer>(timerLess);
    for (const e of this.#entries.values()) {
      if (e.deadline !== undefined) {
        h.push({ at: e.deadline, e });
        this.stats.timerOps++;
      }
    }
    this.#timers = h;
  }

  /** Records a change; with an `inUse` predicate only for neighbors in use. */
  #change(e: Entry, mac: MacAddr | undefined, always = false): void {
    if (!always && this.#inUse !== undefined && !this.#inUse(e.ifIndex, e.ip)) return;
    this.#changes.delete(e.key);
    this.#changes.set(e.key, { ifIndex: e.ifIndex, ip: e.ip, mac });
    if (this.#changes.size > 2 * this.#max) {
      for (const k of this.#changes.keys()) {
        this.#changes.delete(k);
        break;
      }
    }
  }

  #drop(e: Entry): void {
    this.#entries.delete(e.key);
    e.gone = true;
  }

  #fail(e: Entry): void {
    this.#drop(e);
    this.stats.resolutionFailures++;
    this.stats.queueDrops += e.queue.length;
    if (e.mac !== undefined) this.#change(e, undefined, true);
  }
}

function key(ifIndex: number, ip: IpAddr): string {
  return `${ifIndex}/${ipKey(ip)}`;
}
