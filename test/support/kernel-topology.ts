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
  return rstFrames(frames).length;
}

/**
 * The RST segments among captured Ethernet frames (IPv4), each as
 * `src:port > dst:port seq=… ack=… len=…`. A fragment after an IP datagram's first carries no
 * TCP header (its bytes at the flags' place are payload), so it is not read as one.
 */
export function rstFrames(frames: readonly Uint8Array[]): string[] {
  const out: string[] = [];
  for (const f of frames) {
    if (f.length < 14 + 20 + 20 || f[12] !== 0x08 || f[13] !== 0x00 || f[14 + 9] !== 6) continue;
    const fragOffset = (((f[14 + 6] ?? 0) & 0x1f) << 8) | (f[14 + 7] ?? 0);
    if (fragOffset !== 0) continue;
    const ihl = ((f[14] ?? 0) & 0x0f) * 4;
    const t = 14 + ihl;
    if (f.length < t + 14 || ((f[t + 13] ?? 0) & 0x04) === 0) continue;
    const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
    const addr = (at: number) => `${f[at]}.${f[at + 1]}.${f[at + 2]}.${f[at + 3]}`;
    const len = v.getUint16(14 + 2) - ihl - ((f[t + 12] ?? 0) >> 4) * 4;
    out.push(
      `${addr(14 + 12)}:${v.getUint16(t)} > ${addr(14 + 16)}:${v.getUint16(t + 2)} ` +
        `flags=0x${(f[t + 13] ?? 0).toString(16)} seq=${v.getUint32(t + 4)} ack=${v.getUint32(t + 8)} len=${len}`,
    );
  }
  return out;
}

export const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Why the kernel hand-off tests cannot run here (root and the repair addon), or false. */
export function kernelTestSkip(): string | false {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, CAP_NET_ADMIN, a TAP device)";
  if (!existsSync(repairAddonPath())) return "the repair addon is not built (npm run build:native)";
  return false;
}
