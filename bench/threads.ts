/** CPU time by thread, from /proc (Linux), for the benches that split a window's CPU. */
import { readdirSync, readFileSync } from "node:fs";

/** CPU seconds (user + system) in a /proc stat line. */
function statCpuSeconds(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100)
}

/** CPU seconds of the calling thread (user + system), from /proc/thread-self/stat. */
export function threadCpuSeconds(): number {
  return statCpuSeconds(readFileSync("/proc/thread-self/stat", "utf8"));
}

/** CPU seconds of every thread of this process by thread id (empty where there is no /proc). */
export function threadsCpuSeconds(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.set(tid, statCpuSeconds(readFileSync(`/proc/self/task/${tid}/stat`, "utf8")));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * Where a window's CPU went: the host (main) thread, then the busiest other threads (the target
 * workers first, then the collector's helpers), in seconds.
 */
export function cpuSplit(before: Map<string, number>, after: Map<string, number>): string {
  const main = String(process.pid);
  const others: number[] = [];
  let host = 0;
  for (const [tid, s] of after) {
    const d = s - (before.get(tid) ?? 0);
    if (tid === main) host = d;
    else if (d > 0) others.push(d);
  }
  others.sort((a, b) => b - a);
  const sum = others.reduce((a, b) => a + b, 0);
  return `host thread ${host.toFixed(2)} s, other threads ${sum.toFixed(2)} s (busiest ${others
    .slice(0, 4)
    .map((x) => x.toFixed(2))
    .join(", ")})`;
}
