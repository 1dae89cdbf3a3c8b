// Our stack as the client of the real Linux kernel: a Node net server runs inside the
// namespace (kernel TCP); our NetStack connects through the TAP device. 64 MB each way,
// IPv4 and IPv6, sha256 compared on the receiving side.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, test } from "node:test";
import type { LiveHost } from "../src/live/live-host.js";
import { startLiveHost } from "../src/live/live-host.js";
import { killTree, LIVE_ADDRS } from "../src/live/netns.js";
import { downloadFromKernel, payload, sha256, startKernelServer, uploadToKernel } from "./support/live.js";

const N = 64 * 1024 * 1024;
const SEED = 11;
const PORT = 9000;

void describe("our client -> kernel server over a TAP device", () => {
  let host: LiveHost;
  let server: ChildProcess;
  before(async () => {
    host = startLiveHost({ tag: "sock", seed: SEED });
    server = await startKernelServer(host, PORT);
  });
  after(() => {
    killTree(server);
    host.close();
  });

  for (const [family, addr] of [
    ["IPv4", LIVE_ADDRS.kernel4],
    ["IPv6", LIVE_ADDRS.kernel6],
  ] as const) {
    void test(`${family}: 64 MB to the kernel; its sha256 matches`, async () => {
      const data = payload(N, SEED);
      const t0 = performance.now();
      const reply = await uploadToKernel(host, addr, PORT, data);
      const secs = (performance.now() - t0) / 1000;
      assert.equal(reply, `${N} ${sha256(data)}`, `${host.label}: kernel's digest`);
      console.log(`# ${family} ours->kernel ${((N * 8) / secs / 1e6).toFixed(0)} Mbit/s (${host.label})`);
    });

    void test(`${family}: 64 MB from the kernel; sha256 matches`, async () => {
      const t0 = performance.now();
      const got = await downloadFromKernel(host, addr, PORT, N, SEED + 1);
      const secs = (performance.now() - t0) / 1000;
      assert.equal(got.count, N, `${host.label}: bytes received`);
      assert.equal(got.sha, sha256(payload(N, SEED + 1)), `${host.label}: digest`);
      console.log(`# ${family} kernel->ours ${((N * 8) / secs / 1e6).toFixed(0)} Mbit/s (${host.label})`);
    });
  }
});
