/**
 * Path MTU per destination (RFC 1191 for IPv4, RFC 8201 for IPv6). This is the chimney's PATH
 * state: `PathMtu` is the one cached path variable the host keeps and updates after ICMP
 * "fragmentation needed" / "packet too big" (spec digest 4.5). Learned values age out back to
 * the interface MTU, as RFC 1191 section 6.3 suggests, so a path that grew again is found.
 */
import { type Duration, Instant } from "../time/instant.js";
import { type IpAddr, ipKey } from "../wire/ip-addr.js";

/** Lowest MTU accepted from an ICMP message: RFC 791's 68 for IPv4 (Linux clamps at 552), RFC 8200's 1280 for IPv6. */
export const MIN_PMTU_V4 = 552;
export const MIN_PMTU_V6 = 1280;

/** One destination's learned path MTU. */
export interface PathEntry {
  readonly dst: IpAddr;
  pmtu: number;
  /** When the learned value reverts to the interface MTU. */
  expires: Instant;
}

/** What changed, so the owner can update offloaded connections of that path. */
export interface PathChange {
  readonly dst: IpAddr;
  readonly pmtu: number;
}

/** Path MTUs learned per destination. */
export class PathMtuCache {
  readonly #entries = new Map<string, PathEntry>();
  readonly #changes: PathChange[] = [];
  readonly #ageing: Duration;

  /** `ageing`: how long a learned PMTU is kept (RFC 1191 suggests 10 minutes). */
  constructor(ageing: Duration) {
    this.#ageing = ageing;
  }

  /** The path MTU to `dst`: the learned value if any, else `linkMtu`. */
  pmtu(dst: IpAddr, linkMtu: number): number {
    const e = this.#entries.get(ipKey(dst));
    return e === undefined ? linkMtu : Math.min(e.pmtu, linkMtu);
  }

  /**
   * An ICMP message reports `reported` as the next-hop MTU toward `dst`. Values below the
   * family's minimum are raised to it; a value that would not lower the current PMTU is
   * ignored (RFC 1191 section 3, RFC 8201 section 4). Returns whether the PMTU changed.
   */
  handleTooBig(now: Instant, dst: IpAddr, reported: number, linkMtu: number): boolean {
    const floor = dst.length === 4 ? MIN_PMTU_V4 : MIN_PMTU_V6;
    const mtu = Math.max(floor, Math.min(reported, linkMtu));
    const current = this.pmtu(dst, linkMtu);
    if (mtu >= current) return false;
    this.#entries.set(ipKey(dst), { dst, pmtu: mtu, expires: Instant.add(now, this.#ageing) });
    this.#changes.push({ dst, pmtu: mtu });
    return true;
  }

  /** Drops expired entries (reporting each as a change back to `linkMtu`). */
  handleTimeout(now: Instant, linkMtuOf: (dst: IpAddr) => number): void {
    for (const [key, e] of this.#entries) {
      if (e.expires <= now) {
        this.#entries.delete(key);
        this.#changes.push({ dst: e.dst, pmtu: linkMtuOf(e.dst) });
      }
    }
  }

  /** The earliest expiry, for the owner's timer. */
  pollTimeout(): Instant | undefined {
    let t: Instant | undefined;
    for (const e of this.#entries.values()) t = Instant.earliest(t, e.expires);
    return t;
  }

  /** Drains PMTU changes in the order they happened. */
  pollChange(): PathChange | undefined {
    return this.#changes.shift();
  }
}
