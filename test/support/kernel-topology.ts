/**
 * The two-namespace topology of the kernel hand-off tests (test/kernel-terminate.test.ts,
 * test/kernel-adopt.test.ts): a peer namespace (plain kernel sockets, 192.0.2.1) joined by veth
 * to the live host's namespace, whose kernel owns our stack's address (192.0.2.2, with our MAC
 * on its veth); our stack runs on the TAP there, joined to the veth with `shareDevice`
 * (src/live/steering.ts). Also the RST count of captured frames, sha256, and why a kernel
 * hand-off test cannot run here.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { repairAddonPath } from "../../src/device/repair.js";
import { LIVE_OUR_MAC, type LiveHost } from "../../src/live/live-host.js";
import { ipSync, LIVE_ADDRS } from "../../src/live/netns.js";
import { shareDevice } from "../../src/live/steering.js";

export const PEER = LIVE_ADDRS.kernel4; // 192.0.2.1, in the peer namespace
export const OURS = LIVE_ADDRS.ours4; // 192.0.2.2: our stack's, and the host namespace kernel's
/** The host namespace's device toward the peer (carries OURS and our MAC). */
export const OUTER = "veth-h";

export interface PeerTopology {
  readonly hostNs: string;
  readonly peerNs: string;
  readonly tap: string;
  /** Deletes the peer namespace (the veth goes with it). Idempotent. */
  remove(): void;
}

/** Builds the peer namespace `<host ns with -tag- replaced by -tagp->` and joins it to `host`. */
export function joinPeerNamespace(host: LiveHost, tag: string): PeerTopology {
  const hostNs = host.netns.ns;
  const tap = host.netns.tap.name;
  const peerNs = hostNs.replace(`-${tag}-`, `-${tag}p-`);
  ipSync("netns", "add", peerNs);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    try {
      ipSync("netns", "del", peerNs);
    } catch {
      // already gone
    }
  };
  try {
    ipSync("link", "add", OUTER, "netns", hostNs, "type", "veth", "peer", "name", "veth-p", "netns", peerNs);
    ipSync("-n", hostNs, "link", "set", OUTER, "address", LIVE_OUR_MAC);
    ipSync("-n", hostNs, "addr", "add", `${OURS}/24`, "dev", OUTER);
    ipSync("-n", peerNs, "addr", "add", `${PEER}/24`, "dev", "veth-p");
    for (const [ns, dev] of [
      [hostNs, OUTER],
      [peerNs, "veth-p"],
      [peerNs, "lo"],
    ] as const)
      ipSync("-n", ns, "link", "set", dev, "up");
    shareDevice(hostNs, OUTER, tap);
  } catch (e) {
    remove();
    throw e;
  }
  return { hostNs, peerNs, tap, remove };
}

/** RST segments among Ethernet/IPv4 frames (TCP ones; at least their first 54 bytes). */
export function rstCount(frames: readonly Uint8Array[]): number {
  let n = 0;
  for (const f of frames) {
    if (f.length < 14 + 20 + 20 || f[12] !== 0x08 || f[13] !== 0x00 || f[14 + 9] !== 6) continue;
    const ihl = ((f[14] ?? 0) & 0x0f) * 4;
    if (((f[14 + ihl + 13] ?? 0) & 0x04) !== 0) n++;
  }
  return n;
}

export const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Why the kernel hand-off tests cannot run here (root and the repair addon), or false. */
export function kernelTestSkip(): string | false {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, CAP_NET_ADMIN, a TAP device)";
  if (!existsSync(repairAddonPath())) return "the repair addon is not built (npm run build:native)";
  return false;
}
