/**
 * What packetdrill's harness gives a run of the google scripts against Linux besides the script
 * itself: the fast open settings of its `defaults.sh` and the symbols its command line defines
 * (`-D TFO_COOKIE=...`), and which scripts need what the kernel mode does not pass (a fast open
 * client's sendto() addresses).
 */
import { type PdEvent, printExpr } from "../packetdrill/index.js";

/**
 * The fast open settings of packetdrill's `defaults.sh` (gtests/net/common): server and client
 * on, with a fixed key, so the cookies its command line defines are the kernel's. Only the
 * kernel mode makes them: our stack has no fast open.
 */
export const KERNEL_TFO_SYSCTLS: readonly (readonly [string, string])[] = [
  ["net.ipv4.tcp_fastopen", String(0x70403)],
  ["net.ipv4.tcp_fastopen_key", "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"],
];

/**
 * The symbols packetdrill's harness defines for an IPv4 run of the google scripts (`-D`):
 * the fast open cookies of the key above for 192.0.2.1 -> 192.168.0.1.
 */
export const LINUX_DEFINES: ReadonlyMap<string, string> = new Map([
  ["TFO_COOKIE", "3021b9d889017eeb"],
  ["TFO_COOKIE_ZERO", "b7c12350a90dc8f5"],
]);

/**
 * The line of the first event that uses fast open as a client (MSG_FASTOPEN, TCP_FASTOPEN_CONNECT,
 * or a sendto/sendmsg with an address, which this runner does not pass), if any.
 */
export function fastOpenClient(events: readonly PdEvent[]): number | undefined {
  for (const ev of events) {
    if (ev.kind !== "syscall") continue;
    const text = ev.args.map((a) => printExpr(a)).join(" ");
    if (/\b(?:MSG_FASTOPEN|TCP_FASTOPEN_CONNECT)\b/.test(text)) return ev.line;
    if ((ev.name === "sendto" || ev.name === "sendmsg") && /\bsin_|\bmsg_name\b/.test(text)) return ev.line;
  }
  return undefined;
}
