/**
 * Live link throughput (needs root; skipped with a reason otherwise): our stack <-> the Linux
 * kernel through a TAP device, both directions, with each TAP attachment (the addon's batched
 * reads and writes, and plain `fs.read`/`fs.writeSync` one frame per call), printed beside
 * kernel <-> kernel TCP through a veth pair between two namespaces, measured in the same run
 * (the ratio is the figure). The kernel side is a Node `net` server in the namespace
 * (test/support/live-kernel-server.ts).
 */
import { spawn } from "node:child_process";
import type { TapMode } from "../src/live/tap.js";
import { startLiveHost } from "../src/live/live-host.js";
import { killTree, LIVE_ADDRS } from "../src/live/netns.js";
import { createNsPair, waitForOutput } from "../test/support/netns.js";
import { downloadFromKernel, payload, startKernelServer, uploadToKernel } from "../test/support/live.js";

const MB = 1024 * 1024;
const PORT = 9000;

interface Row {
  readonly path: string;
  readonly direction: string;
  readonly mbits: number;
}

async function ours(mode: TapMode, bytes: number): Promise<Row[]> {
  const host = startLiveHost({ tag: "bench", mode });
  try {
    const server = await startKernelServer(host, PORT);
    const data = payload(bytes, 1);
    // Warm-up: connection setup, JIT.
    await uploadToKernel(host, LIVE_ADDRS.kernel4, PORT, data.subarray(0, 4 * MB));
    let t0 = performance.now();
    await uploadToKernel(host, LIVE_ADDRS.kernel4, PORT, data);
    const up = (bytes * 8) / ((performance.now() - t0) / 1000) / 1e6;
    t0 = performance.now();
    const got = await downloadFromKernel(host, LIVE_ADDRS.kernel4, PORT, bytes, 2);
    const down = (got.count * 8) / ((performance.now() - t0) / 1000) / 1e6;
    const s = host.stats();
    killTree(server);
    const batch = (s.framesIn / Math.max(1, s.batchesIn)).toFixed(1);
    return [
      { path: `ours (${mode}, ${batch} frames/read)`, direction: "ours -> kernel", mbits: up },
      { path: `ours (${mode}, ${batch} frames/read)`, direction: "kernel -> ours", mbits: down },
    ];
  } finally {
    host.close();
  }
}

const CLIENT = `
const net = require("node:net");
const [host, port, n] = process.argv.slice(1);
const t0 = performance.now();
let got = 0;
const s = net.connect({ host, port: Number(port) }, () => s.write("source " + n + " 3\\n"));
s.on("data", (d) => (got += d.length));
s.on("end", () => { console.log("mbits " + (got * 8) / ((performance.now() - t0) / 1000) / 1e6); });
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
    const line = await waitForOutput(client, /mbits [\d.]+/, 120_000);
    server.kill("SIGKILL");
    return { path: "kernel <-> kernel (veth)", direction: "b -> a", mbits: Number(line.split(" ")[1]) };
  } finally {
    pair.close();
  }
}

/** Runs the module (its cases share one setup, so they run when the filter matches `live`). */
export async function run(filter: RegExp | undefined): Promise<void> {
  if (filter !== undefined && !filter.test("live")) return;
  if (process.platform !== "linux" || process.getuid?.() !== 0) {
    console.log("live: skipped (needs root on Linux: it creates network namespaces and a TAP device)");
    return;
  }
  const bytes = 128 * MB;
  const rows: Row[] = [
    await kernelVeth(bytes),
    ...(await ours("addon", bytes)),
    ...(await ours("fs", bytes / 2)),
  ];
  const ref = rows[0]?.mbits ?? 1;
  console.table(
    rows.map((r) => ({
      path: r.path,
      direction: r.direction,
      "Mbit/s": Math.round(r.mbits),
      "vs kernel<->kernel": `${((r.mbits / ref) * 100).toFixed(1)}%`,
    })),
  );
}
