/**
 * The routing table: longest-prefix match from a destination to an interface and a next hop.
 * Small and explicit on purpose: the chimney offloads the resolved next hop as NEIGHBOR state and
 * the destination as PATH state, so the host must be able to say which connections depend on
 * which neighbor, and a route change must be visible as such.
 */
import { ConfigError } from "../util/errors.js";
import { type IpAddr, ipEquals, ipInPrefix, ipToString } from "../wire/ip-addr.js";

/** One route. `gateway` undefined means the prefix is on-link (the next hop is the destination). */
export interface Route {
  readonly prefix: IpAddr;
  readonly prefixLen: number;
  readonly gateway: IpAddr | undefined;
  readonly ifIndex: number;
  readonly metric: number;
}

/** Where a packet to a destination goes. */
export interface NextHop {
  readonly ifIndex: number;
  /** The neighbor to resolve: the gateway, or the destination itself when on-link. */
  readonly via: IpAddr;
  readonly route: Route;
}

/** Routes for both families, matched longest prefix first, then lowest metric. */
export class RouteTable {
  readonly #routes: Route[] = [];

  /** Adds a route; throws `ConfigError` on a prefix length out of range or a family mismatch. */
  add(route: Route): void {
    const bits = route.prefix.length * 8;
    if (!Number.isInteger(route.prefixLen) || route.prefixLen < 0 || route.prefixLen > bits) {
      throw new ConfigError(
        `route ${ipToString(route.prefix)}/${route.prefixLen}: prefix length out of range`,
      );
    }
    if (route.gateway !== undefined && route.gateway.length !== route.prefix.length) {
      throw new ConfigError(
        `route ${ipToString(route.prefix)}/${route.prefixLen}: gateway of another family`,
      );
    }
    this.#routes.push(route);
    this.#routes.sort((a, b) => b.prefixLen - a.prefixLen || a.metric - b.metric);
  }

  /** Removes routes equal in prefix, length and interface; returns how many. */
  remove(prefix: IpAddr, prefixLen: number, ifIndex: number): number {
    let removed = 0;
    for (let i = this.#routes.length - 1; i >= 0; i--) {
      const r = this.#routes[i];
      if (r && r.prefixLen === prefixLen && r.ifIndex === ifIndex && ipEquals(r.prefix, prefix)) {
        this.#routes.splice(i, 1);
        removed++;
      }
    }
    return removed;
  }

  /** The next hop for `dst`, or undefined when no route matches (the caller reports unreachable). */
  lookup(dst: IpAddr): NextHop | undefined {
    for (const route of this.#routes) {
      if (ipInPrefix(dst, route.prefix, route.prefixLen)) {
        return { ifIndex: route.ifIndex, via: route.gateway ?? dst, route };
      }
    }
    return undefined;
  }

  /** All routes, longest prefix first. */
  list(): readonly Route[] {
    return this.#routes;
  }
}
