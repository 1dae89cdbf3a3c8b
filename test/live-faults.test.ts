// The live link with faults from our own stages in both directions (the kernel in the
// namespace has no netem): 2% loss, 2% reordering (held 3 frames or 5 ms) and 1 ms added
// delay, each way. Both roles, both families (IPv4 for the kernel-client role with IPv6 for
// ours, then the reverse). The kernel sends 64 MB; our stack sends 16 MB, because our
// engine's sender recovers from this loss rate at only about 11 Mbit/s (the kernel's at about
// 290), which would make 64 MB take almost a minute per transfer.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { patternSha256 } from "../src/live/http-app.js";
import type { LiveHost } from "../src/live/live-host.js";
import { killTree, LIVE_ADDRS } from "../src/live/netns.js";
import type { FaultProfile } from "../src/sim/link.js";
import {
  downloadFromKernel,
  liveHttpHost,
  payload,
  runChild,
  sha256,
  startKernelServer,
  uploadToKernel,
} from "./support/live.js";

const N = 64 * 1024 * 1024;
/** What our stack sends under faults (see the header). */
const N_OURS = 16 * 1024 * 1024;
const SEED = 2026;
const PORT = 9000;
const FAULTS: FaultProfile = {
  loss: 0.02,
  reorder: { rate: 0.02, holdFrames: 3, holdUs: 5000 },
  delayUs: 1000,
};

void describe("live link with 2% loss, reordering and delay in both directions", () => {
  let host: LiveHost;
  let server: ChildProcess;
  let dir: string;
  before(async () => {
    const h = await liveHttpHost({ tag: "fault", seed: SEED, toKernel: FAULTS, fromKernel: FAULTS });
    host = h.host;
    server = await startKernelServer(host, PORT);
    dir = mkdtempSync(join(tmpdir(), "chimney-live-"));
  });
  after(() => {
    killTree(server);
    host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rate = (secs: number, n = N): string => `${((n * 8) / secs / 1e6).toFixed(0)} Mbit/s`;

  for (const [family, ours, kernel] of [
    ["IPv4", LIVE_ADDRS.ours4, LIVE_ADDRS.kernel6],
    ["IPv6", `[${LIVE_ADDRS.ours6}]`, LIVE_ADDRS.kernel4],
  ] as const) {
    void test(`curl over ${family}: 16 MB down and 64 MB up`, async () => {
      let t0 = performance.now();
      const down = await runChild(
        host.netns.spawn("bash", [
          "-c",
          `set -o pipefail; curl -sS -g --fail http://${ours}/bytes/${N_OURS} | sha256sum`,
        ]),
        240_000,
      );
      assert.equal(down.code, 0, `${host.label}: curl: ${down.stderr}`);
      assert.equal(down.stdout.split(" ")[0], patternSha256(N_OURS), `${host.label}: download digest`);
      console.log(`# faults: curl ${family} download ${rate((performance.now() - t0) / 1000, N_OURS)}`);
      const body = payload(N, SEED);
      const file = join(dir, `up-${family}`);
      writeFileSync(file, body);
      t0 = performance.now();
      const up = await runChild(
        host.netns.spawn("curl", ["-sS", "-g", "--fail", "--data-binary", `@${file}`, `http://${ours}/sink`]),
        240_000,
      );
      assert.equal(up.code, 0, `${host.label}: curl: ${up.stderr}`);
      assert.equal(up.stdout.trim(), `${N} ${sha256(body)}`, `${host.label}: upload digest`);
      console.log(`# faults: curl ${family} upload ${rate((performance.now() - t0) / 1000)}`);
    });

    const kfam = kernel.includes(":") ? "IPv6" : "IPv4";
    void test(`our client over ${kfam}: 16 MB to the kernel and 64 MB back`, async () => {
      const data = payload(N_OURS, SEED + 1);
      let t0 = performance.now();
      const reply = await uploadToKernel(host, kernel, PORT, data);
      assert.equal(reply, `${N_OURS} ${sha256(data)}`, `${host.label}: kernel's digest`);
      console.log(`# faults: ours->kernel ${kfam} ${rate((performance.now() - t0) / 1000, N_OURS)}`);
      t0 = performance.now();
      const got = await downloadFromKernel(host, kernel, PORT, N, SEED + 2);
      assert.equal(got.count, N, `${host.label}: bytes received`);
      assert.equal(got.sha, sha256(payload(N, SEED + 2)), `${host.label}: digest`);
      console.log(`# faults: kernel->ours ${kfam} ${rate((performance.now() - t0) / 1000)}`);
    });
  }

  void test("the stages really dropped, held and delayed frames in both directions", () => {
    const f = host.stats().faults;
    for (const dir of ["ours>kernel", "kernel>ours"]) {
      const chain = f[dir];
      assert.ok(chain !== undefined, `${host.label}: no ${dir} chain`);
      const loss = chain["loss"]?.dropped ?? 0;
      const held = (chain["reorder"] as { held?: number } | undefined)?.held ?? 0;
      const delayed = chain["delay"]?.forwarded ?? 0;
      assert.ok(loss > 100, `${host.label}: ${dir} loss dropped only ${loss}`);
      assert.ok(held > 100, `${host.label}: ${dir} reorder held only ${held}`);
      assert.ok(delayed > 1000, `${host.label}: ${dir} delay forwarded only ${delayed}`);
    }
  });
});
