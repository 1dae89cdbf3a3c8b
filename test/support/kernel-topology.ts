/**
 * For the kernel hand-off tests (test/kernel-terminate.test.ts, test/kernel-adopt.test.ts, ...):
 * the two-namespace topology (src/live/peer-ns.ts), the RST count of captured frames, sha256,
 * and why a kernel hand-off test cannot run here.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { repairAddonPath } from "../../src/device/repair.js";

export { joinPeerNamespace, OURS, OUTER, PEER, type PeerTopology } from "../../src/live/peer-ns.js";

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
