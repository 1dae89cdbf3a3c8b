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
 * `shareDevice` runs `tc`; a connection's rule is added and removed over rtnetlink by the
 * repair addon from this process (native/steer.c: a fraction of a millisecond where a `tc`
 * process took 20-45 ms, which the peer saw as a longer stall).
 */
import { execFileSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { loadRepairAddon, type RepairAddon, RepairError, repairCall } from "../device/repair.js";
import { UsageError } from "../util/errors.js";

/**
 * An open handle on the named network namespace `ns` (`/run/netns/<ns>`, as `ip netns add`
 * makes it), for the repair addon's calls inside it. Throws `RepairError` if there is none.
 */
export function openNetns(ns: string): number {
  try {
    return openSync(`/run/netns/${ns}`, "r");
  } catch (e) {
    const x = e as { code?: unknown; errno?: unknown };
    throw new RepairError(
      `open(/run/netns/${ns})`,
      typeof x.errno === "number" ? -x.errno : 0,
      typeof x.code === "string" ? x.code : "EUNKNOWN",
      `no network namespace named ${ns}`,
      { cause: e },
    );
  }
}

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
 * namespace's kernel. `pref` (2..65535) names the rule; one rule per pref. Throws `UsageError`
 * for a bad pref, `RepairError` if the kernel refuses the rule (or there is no such device or
 * namespace), `NativeAddonMissingError` without the repair addon.
 */
export function steerConnection(
  ns: string,
  outer: string,
  tap: string,
  t: SteeredTuple,
  pref: number,
  addon: RepairAddon = loadRepairAddon(),
): Steering {
  if (!Number.isInteger(pref) || pref < 2 || pref > 65535)
    throw new UsageError(`steerConnection: pref must be an integer in 2..65535, not ${pref}`);
  const nsFd = openNetns(ns);
  try {
    repairCall("tcSteer", () =>
      addon.tcSteer(nsFd, outer, tap, pref, t.localAddress, t.localPort, t.remoteAddress, t.remotePort),
    );
  } catch (e) {
    closeSync(nsFd);
    throw e;
  }
  let removed = false;
  return {
    pref,
    remove() {
      if (removed) return;
      removed = true;
      try {
        repairCall("tcUnsteer", () => addon.tcUnsteer(nsFd, outer, pref));
      } finally {
        closeSync(nsFd);
      }
    },
  };
}
