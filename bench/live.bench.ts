/**
 * Live link throughput (needs root; skipped with a reason otherwise): our stack <-> the Linux
 * kernel through a TAP device, both directions, with each TAP attachment (the addon's batched
 * reads and writes with the `tso` offloads and with none, and plain `fs.read`/`fs.writeSync`
 * one frame per call), printed beside
 * kernel <-> kernel TCP through a veth pair between two namespaces, measured in the same run
 * (the ratio is the figure). The kernel side is a Node `net` server in the namespace
 * (test/support/live-kernel-server.ts). Downloads are timed from the request (as the ratio
 * uses) and also from the first byte: the server builds the whole payload before it sends,
 * which the first figure counts and the second does not.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpus, loadavg } from "node:os";
import type { TapMode, TapOffload } from "../src/device/tap.js";
import { startLiveHost } from "../src/live/live-host.js";
import { killTree, LIVE_ADDRS } from "../src/live/netns.js";
import { createNsPair, waitForOutput } from "../test/support/netns.js";
import type { LiveHost } from "../src/live/live-host.js";
import type { FaultProfile } from "../src/sim/link.js";
import {
  downloadFromKernel,
  payload,
  sha256,
  startKernelServer,
  uploadToKernel,
} from "../test/support/live.js";
import { goal } from "./goal.js";

const MB = 1024 * 1024;
const PORT = 9000;

interface Row {
  readonly path: string;
  readonly direction: string;
  readonly mbits: number;
  /** Downloads: Mbit/s from the first byte received. */
  readonly firstByte?: number | undefined;
  /** Our process's CPU time (user + system) per GB moved, seconds: less sensitive to load. */
  readonly cpuPerGb?: number | undefined;
}

/** CPU seconds per GB for `bytes` moved since `since` (a `process.cpuUsage()` reading). */
function cpuPerGb(since: NodeJS.CpuUsage, bytes: number): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6 / (bytes / 1e9);
}

/**
 * Downloads `payload(n, seed)` from the kernel server and checks its digest (`want`, computed
 * beforehand); Mbit/s from the request and from the first byte, and our CPU s/GB.
 */
function download(
  host: LiveHost,
  n: number,
  seed: number,
  want: string,
): Promise<{ readonly mbits: number; readonly firstByte: number; readonly cpu: number }> {
  return new Promise((resolve, reject) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let t1 = 0;
    let count = 0;
    const h = createHash("sha256");
    const s = host.net.connect({ host: LIVE_ADDRS.kernel4, port: PORT });
    s.on("data", (d: Buffer) => {
      if (count === 0) t1 = performance.now();
      count += d.length;
      h.update(d);
    });
    s.on("end", () => {
      const t = performance.now();
      const cpu = cpuPerGb(c0, n);
      if (count !== n || h.digest("hex") !== want) {
        reject(
          new Error(`download of seed ${seed}: ${count} of ${n} bytes or a wrong digest (${host.label})`),
        );
        return;
      }
      resolve({
        mbits: (n * 8) / ((t - t0) / 1000) / 1e6,
        firstByte: (n * 8) / ((t - t1) / 1000) / 1e6,
        cpu,
      });
    });
    s.on("error", reject);
    s.write(`source ${n} ${seed}\n`);
  });
}

async function ours(mode: TapMode, offload: TapOffload, bytes: number): Promise<Row[]> {
  const host = startLiveHost({ tag: "bench", mode, offload });
  try {
    const server = await startKernelServer(host, PORT);
    const data = payload(bytes, 1);
    const want = sha256(payload(bytes, 2));
    // Warm-up: connection setup, JIT.
    await uploadToKernel(host, LIVE_ADDRS.kernel4, PORT, data.subarray(0, 4 * MB));
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await uploadToKernel(host, LIVE_ADDRS.kernel4, PORT, data);
    const up = (bytes * 8) / ((performance.now() - t0) / 1000) / 1e6;
    const upCpu = cpuPerGb(c0, bytes);
    const down = await download(host, bytes, 2, want);
    const s = host.stats();
    killTree(server);
    const batch = (s.framesIn / Math.max(1, s.batchesIn)).toFixed(1);
    const merged = (s.framesOut / Math.max(1, s.writesOut)).toFixed(1);
    const path = `ours (${mode}, offload ${offload}, ${batch} frames/read, ${merged} segments/write)`;
    return [
      { path, direction: "ours -> kernel", mbits: up, cpuPerGb: upCpu },
      { path, direction: "kernel -> ours", mbits: down.mbits, firstByte: down.firstByte, cpuPerGb: down.cpu },
    ];
  } finally {
    host.close();
  }
}

const CLIENT = `
const net = require("node:net");
const [host, port, n] = process.argv.slice(1);
const t0 = performance.now();
let t1 = 0;
let got = 0;
const s = net.connect({ host, port: Number(port) }, () => s.write("source " + n + " 3\\n"));
s.on("data", (d) => { if (got === 0) t1 = performance.now(); got += d.length; });
s.on("end", () => {
  const t = performance.now();
  console.log("mbits " + (got * 8) / ((t - t0) / 1000) / 1e6 + " " + (got * 8) / ((t - t1) / 1000) / 1e6);
});
`;

async function kernelVeth(bytes: number): Promise<Row> {
  const pair = createNsPair("bench");
  try {
    const script = new URL("../test/support/live-kernel-server.js", import.meta.url).pathname;
    const server = pair.spawnIn(pair.b, process.execPath, [script, String(PORT)]);
    await waitForOutput(server, /listening/);
    const client = spawn("ip", [
      "netns",
      "exec",
      pair.a.ns,
      process.execPath,
      "-e",
      CLIENT,
      pair.b.ip4,
      String(PORT),
      String(bytes),
    ]);
    const line = await waitForOutput(client, /mbits [\d.]+ [\d.]+/, 120_000);
    server.kill("SIGKILL");
    const [, mbits, firstByte] = line.split(" ");
    return {
      path: "kernel <-> kernel (veth)",
      direction: "b -> a",
      mbits: Number(mbits),
      firstByte: Number(firstByte),
    };
  } finally {
    pair.close();
  }
}

/** Our stages on both directions of the CUBIC comparison: 2% loss and 1 ms added delay. */
const CUBIC_FAULTS: FaultProfile = { loss: 0.02, delayUs: 1000 };
const TARGET_CUBIC_RATIO = 0.9;

/**
 * Our sender against the kernel's, both CUBIC, over the TAP link with our own stages at 2% loss
 * and 1 ms delay each way, in one run: `bytes` to the kernel's sink from our stack (CUBIC with
 * PRR, HyStart++ and RACK-TLP, as Linux runs it), then `bytes` from the kernel's server to our
 * stack (the server's sockets set TCP_CONGESTION cubic). One flow at a time: 2% random loss
 * bounds each flow (Mathis et al.), so the ratio compares the two loss responses.
 */
async function cubicVsKernel(bytes: number): Promise<void> {
  const host = startLiveHost({
    tag: "cubic",
    seed: 18,
    toKernel: CUBIC_FAULTS,
    fromKernel: CUBIC_FAULTS,
    tcp: { congestionControl: "cubic", rack: true },
  });
  try {
    const server = await startKernelServer(host, PORT, "cubic");
    try {
      const data = payload(bytes, 11);
      let t0 = performance.now();
      const reply = await uploadToKernel(host, LIVE_ADDRS.kernel4, PORT, data);
      const ours = (bytes * 8) / ((performance.now() - t0) / 1000) / 1e6;
      if (reply !== `${bytes} ${sha256(data)}`)
        throw new Error(`live cubic: the kernel's sink said ${reply}`);
      t0 = performance.now();
      const got = await downloadFromKernel(host, LIVE_ADDRS.kernel4, PORT, bytes, 12);
      const theirs = (bytes * 8) / ((performance.now() - t0) / 1000) / 1e6;
      if (got.count !== bytes || got.sha !== sha256(payload(bytes, 12)))
        throw new Error(`live cubic: ${got.count} of ${bytes} bytes from the kernel, or a wrong digest`);
      const ratio = ours / theirs;
      const f = host.stats().faults;
      const dropped = (f["ours>kernel"]?.["loss"]?.dropped ?? 0) + (f["kernel>ours"]?.["loss"]?.dropped ?? 0);
      goal(
        "tcp",
        "live-cubic-vs-kernel",
        `${ratio.toFixed(2)}x: our sender ${ours.toFixed(1)} vs the kernel's ${theirs.toFixed(1)} Mbit/s, both CUBIC, ${bytes / MB} MB each, 2% loss + 1 ms delay each way (${dropped} frames dropped)`,
        `>= ${TARGET_CUBIC_RATIO}x`,
        ratio >= TARGET_CUBIC_RATIO,
      );
    } finally {
      killTree(server);
    }
  } finally {
    host.close();
  }
}

/** Runs the module (its cases share one setup, so they run when the filter matches `live`). */
export async function run(filter: RegExp | undefined): Promise<void> {
  const cubic = filter === undefined || filter.test("tcp/live-cubic-vs-kernel");
  if (filter !== undefined && !filter.test("live") && !cubic) return;
  if (process.platform !== "linux" || process.getuid?.() !== 0) {
    console.log("live: skipped (needs root on Linux: it creates network namespaces and a TAP device)");
    return;
  }
  if (cubic) await cubicVsKernel(32 * MB);
  if (filter !== undefined && !filter.test("live")) return;
  const bytes = 128 * MB;
  const rows: Row[] = [
    await kernelVeth(bytes),
    ...(await ours("addon", "tso", bytes)),
    ...(await ours("addon", "off", bytes)),
    ...(await ours("fs", "off", bytes / 2)),
  ];
  const ref = rows[0]?.mbits ?? 1;
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
  console.log(`live: load average ${load} on ${cpus().length} cpus (other work on the machine skews Mbit/s)`);
  console.table(
    rows.map((r) => ({
      path: r.path,
      direction: r.direction,
      "Mbit/s": Math.round(r.mbits),
      "vs kernel<->kernel": `${((r.mbits / ref) * 100).toFixed(1)}%`,
      "Mbit/s from 1st byte": r.firstByte === undefined ? "" : Math.round(r.firstByte),
      "our CPU s/GB": r.cpuPerGb === undefined ? "" : r.cpuPerGb.toFixed(2),
    })),
  );
}
