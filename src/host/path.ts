/**
 * Path MTU per destination (RFC 1191 for IPv4, RFC 8201 for IPv6). This is the chimney's PATH
 * state: `PathMtu` is the one cached path variable the host keeps and updates after ICMP
 * "fragmentation needed" / "packet too big" (spec digest 4.5). Learned values age out back to
 * the interface MTU, as RFC 1191 section 6.3 suggests, so a path that grew again is found.
 *
 * The cache is bounded: at most `capacity` destinations are kept, and learning a new one when
 * it is full evicts the entry learned longest ago (reported as a change back to the link MTU,
 * as an expiry is). Every entry lives for the same `ageing`, so the map's insertion order (an
 * update re-inserts) is also expiry order: expiry, eviction and `pollTimeout` look at the front
 * only, never at every entry.
 */
import { type Duration, Instant } from "../time/instant.js";
import { type IpAddr, ipKey } from "../wire/ip-addr.js";

/** Lowest MTU accepted from an ICMP message: RFC 791's 68 for IPv4 (Linux clamps at 552), RFC 8200's 1280 for IPv6. */
export const MIN_PMTU_V4 = 552;
export const MIN_PMTU_V6 = 1280;

/** How many destinations the cache keeps by default (`HostConfig.pmtuCacheSize`). */
export const DEFAULT_PMTU_CACHE_SIZE = 1024;

/** One destination's learned path MTU. */
export interface PathEntry {
  readonly dst: IpAddr;
  pmtu: number;
  /** When the learned value reverts to the interface MTU. */
  expires: Instant;
  /** The link MTU toward `dst` when the value was learned: what an eviction reports. */
  linkMtu: number;
}

/** What changed, so the owner can update offloaded connections of that path. */
export interface PathChange {
  readonly dst: IpAddr;
  readonly pmtu: number;
}

/** Path MTUs learned per destination, at most `capacity` of them. */
export class PathMtuCache {
  /** In expiry order (oldest first): every update deletes and re-inserts its entry. */
  readonly #entries = new Map<string, PathEntry>();
  /**
   * Changes not yet drained, the latest per destination, in the order they happened. At most
   * twice the capacity (a learned entry and an eviction each): an owner that never drains, such
   * as a host without an offload manager, loses the oldest pending changes rather than growing.
   */
  readonly #changes = new Map<string, PathChange>();
  readonly #ageing: Duration = 0 as Duration;
  readonly #capacity: number = 0;
  /** Expiry of the newest entry: later ones never expire before it (keeps the order under a clock step back). */
  #lastExpiry: Instant = Instant.ZERO;

  /**
   * `ageing`: how long a learned PMTU is kept (RFC 1191 suggests 10 minutes). `capacity`: the
   * most destinations kept (default `DEFAULT_PMTU_CACHE_SIZE`), at least 1.
   */
  constructor(ageing: Duration, capacity: number = DEFAULT_PMTU_CACHE_SIZE) {
    this.#ageing = ageing;
    this.#capacity = Math.max(1, Math.floor(capacity));
  }

  /** The most destinations kept. */
  get capacity(): number {
    return this.#capacity;
  }

  /** How many destinations have a learned PMTU now. */
  get size(): number {
    return this.#entries.size;
  }

  /** The path MTU to `dst`: the learned value if any, else `linkMtu`. */
  pmtu(dst: IpAddr, linkMtu: number): number {
    const e = this.#entries.get(ipKey(dst));
    return e === undefined ? linkMtu : Math.min(e.pmtu, linkMtu);
  }

  /**
   * An ICMP message reports `reported` as the next-hop MTU toward `dst`. Values below the
   * family's minimum are raised to it; a value that would not lower the current PMTU is
   * ignored (RFC 1191 section 3, RFC 8201 section 4). Returns whether the PMTU changed. The
   * caller validates the message first (the stack checks it quotes a live connection).
   */
  handleTooBig(now: Instant, dst: IpAddr, reported: number, linkMtu: number): boolean {
    const floor = dst.length === 4 ? MIN_PMTU_V4 : MIN_PMTU_V6;
    const mtu = Math.max(floor, Math.min(reported, linkMtu));
    const current = this.pmtu(dst, linkMtu);
    if (mtu >= current) return false;
    const key = ipKey(dst);
    if (!this.#entries.delete(key)) {
      while (this.#entries.size >= this.#capacity) this.#evictOldest();
    }
    const fresh = Instant.add(now, this.#ageing);
    const expires = fresh > this.#lastExpiry ? fresh : this.#lastExpiry;
    this.#lastExpiry = expires;
    this.#entries.set(key, { dst, pmtu: mtu, expires, linkMtu });
    this.#change(key, { dst, pmtu: mtu });
    return true;
  }

  /** Drops expired entries (reporting each as a change back to `linkMtu`). */
  handleTimeout(now: Instant, linkMtuOf: (dst: IpAddr) => number): void {
    for (const [key, e] of this.#entries) {
      if (e.expires > now) return; // expiry order: the rest are later
      this.#entries.delete(key);
      this.#change(key, { dst: e.dst, pmtu: linkMtuOf(e.dst) });
    }
  }

  /** The earliest expiry, for the owner's timer. */
  pollTimeout(): Instant | undefined {
    for (const e of this.#entries.values()) return e.expires;
    return undefined;
  }

  /** Drains PMTU changes in the order they happened. */
  pollChange(): PathChange | undefined {
    for (const [key, ch] of this.#changes) {
      this.#changes.delete(key);
      return ch;
    }
    return undefined;
  }

  #evictOldest(): void {
    for (const [key, e] of this.#entries) {
      this.#entries.delete(key);
      this.#change(key, { dst: e.dst, pmtu: e.linkMtu });
      return;
    }
  }

  #change(key: string, ch: PathChange): void {
    this.#changes.delete(key);
    while (this.#changes.size >= 2 * this.#capacity) {
      const oldest = this.#changes.keys().next();
      if (oldest.done === true) break;
      this.#changes.delete(oldest.value);
    }
    this.#changes.set(key, ch);
  }
}
