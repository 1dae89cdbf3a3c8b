/**
 * Steering with `tc` inside a network namespace whose kernel owns the address our stack uses:
 * our stack sits on a TAP device in the namespace, the namespace's outer device (a veth toward
 * the peer) carries the address and our MAC. `shareDevice` sends every frame our stack writes
 * out through the outer device and a copy of every ARP frame arriving there to our stack;
 * `steerConnection` sends one TCP connection's packets (matched on the 4-tuple) to our stack
 * instead of the kernel, until `remove()` hands the 4-tuple back to the kernel.
 *
 * Built from what the kernel here offers: clsact, u32 and mirred (no gact, no netem, no
 * nftables). IPv4 only. Set-up and teardown run synchronously (they block the event loop).
 */
import { execFileSync } from "node:child_process";
import { UsageError } from "../util/errors.js";

/** Runs `tc` inside namespace `ns`; throws with its stderr on failure. */
export function tcSync(ns: string, ...args: string[]): string {
  return execFileSync("ip", ["netns", "exec", ns, "tc", ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** One TCP connection as the namespace's kernel sees it (local = the namespace's address). */
export interface SteeredTuple {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/**
 * Joins `tap` (our stack) to `outer` in namespace `ns`: frames from our stack leave through
 * `outer`; ARP arriving on `outer` reaches both the kernel and our stack. Idempotent per pair.
 */
export function shareDevice(ns: string, outer: string, tap: string): void {
  for (const dev of [outer, tap]) tcSync(ns, "qdisc", "replace", "dev", dev, "clsact");
  tcSync(
    ns,
    ...["filter", "replace", "dev", tap, "ingress", "pref", "1", "protocol", "all"],
    ...["u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", outer],
  );
  tcSync(
    ns,
    ...["filter", "replace", "dev", outer, "ingress", "pref", "1", "protocol", "arp"],
    ...["u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", tap],
  );
}

/** A steering rule in place; `remove()` hands the 4-tuple back to the namespace's kernel. */
export interface Steering {
  readonly pref: number;
  remove(): void;
}

/**
 * Sends the TCP packets of `t` arriving on `outer` to `tap` (our stack) instead of the
 * namespace's kernel. `pref` (2..65535) names the rule; one rule per pref.
 */
export function steerConnection(
  ns: string,
  outer: string,
  tap: string,
  t: SteeredTuple,
  pref: number,
): Steering {
  if (!Number.isInteger(pref) || pref < 2 || pref > 65535)
    throw new UsageError(`steerConnection: pref must be an integer in 2..65535, not ${pref}`);
  tcSync(
    ns,
    ...["filter", "add", "dev", outer, "ingress", "pref", String(pref), "protocol", "ip", "u32"],
    ...["match", "ip", "protocol", "6", "0xff"],
    ...["match", "ip", "src", `${t.remoteAddress}/32`, "match", "ip", "dst", `${t.localAddress}/32`],
    ...["match", "ip", "sport", String(t.remotePort), "0xffff"],
    ...["match", "ip", "dport", String(t.localPort), "0xffff"],
    ...["action", "mirred", "egress", "redirect", "dev", tap],
  );
  let removed = false;
  return {
    pref,
    remove() {
      if (removed) return;
      removed = true;
      tcSync(ns, "filter", "del", "dev", outer, "ingress", "pref", String(pref));
    },
  };
}
