// The live link with faults from our own stages in both directions (the kernel in the
// namespace has no netem): 2% loss, 2% reordering (held 3 frames or 5 ms) and 1 ms added
// delay, each way. Both roles, both families, 64 MB per transfer and direction, sha256 checked.
// Our sender is loss-based (NewReno/SACK recovery; reordering costs it no cwnd thanks to an
// adaptive DupThresh, D-SACK and undo), so 2% random loss bounds one flow by Mathis et al. at
// this link's real round trip (about 5 ms) to about 20 Mbit/s; the kernel with
// net.ipv4.tcp_congestion_control=reno gets the same, its default BBR far more (it does not back
// off on random loss). The Mathis bound is per flow, so the four transfers of each sender run
// at once: 64 MB each in about 30 s instead of two minutes one after another.
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
const SEED = 2026;
const PORT = 9000;
const FAULTS: FaultProfile = {
  loss: 0.02,
  reorder: { rate: 0.02, holdFrames: 3, holdUs: 5000 },
  delayUs: 1000,
};
const TIMEOUT_MS = 300_000;

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

  /** Runs `fn`, then logs its rate for N bytes. */
  const timed = async (what: string, fn: () => Promise<void>): Promise<void> => {
    const t0 = performance.now();
    await fn();
    const secs = (performance.now() - t0) / 1000;
    console.log(`# faults: ${what} ${((N * 8) / secs / 1e6).toFixed(0)} Mbit/s`);
  };
  // Curl talks to our server over one family while our client talks to the kernel over the other.
  const FAMILIES = [
    ["IPv4", LIVE_ADDRS.ours4, "IPv6", LIVE_ADDRS.kernel6],
    ["IPv6", `[${LIVE_ADDRS.ours6}]`, "IPv4", LIVE_ADDRS.kernel4],
  ] as const;

  void test("our stack sends 64 MB four times at once: to curl and to the kernel's server, both families", async () => {
    const jobs: Promise<void>[] = [];
    for (const [family, ours, kfam, kernel] of FAMILIES) {
      jobs.push(
        timed(`curl ${family} download`, async () => {
          const down = await runChild(
            host.netns.spawn("bash", [
              "-c",
              `set -o pipefail; curl -sS -g --fail http://${ours}/bytes/${N} | sha256sum`,
            ]),
            TIMEOUT_MS,
          );
          assert.equal(down.code, 0, `${host.label}: curl: ${down.stderr}`);
          assert.equal(down.stdout.split(" ")[0], patternSha256(N), `${host.label}: download digest`);
        }),
        timed(`ours->kernel ${kfam}`, async () => {
          const data = payload(N, SEED + (kfam === "IPv4" ? 1 : 3));
          const reply = await uploadToKernel(host, kernel, PORT, data);
          assert.equal(reply, `${N} ${sha256(data)}`, `${host.label}: kernel's digest`);
        }),
      );
    }
    await Promise.all(jobs);
  });

  void test("the kernel sends 64 MB four times at once: curl uploads and the kernel's server, both families", async () => {
    const jobs: Promise<void>[] = [];
    for (const [family, ours, kfam, kernel] of FAMILIES) {
      jobs.push(
        timed(`curl ${family} upload`, async () => {
          const body = payload(N, SEED);
          const file = join(dir, `up-${family}`);
          writeFileSync(file, body);
          const up = await runChild(
            host.netns.spawn("curl", [
              "-sS",
              "-g",
              "--fail",
              "--data-binary",
              `@${file}`,
              `http://${ours}/sink`,
            ]),
            TIMEOUT_MS,
          );
          assert.equal(up.code, 0, `${host.label}: curl: ${up.stderr}`);
          assert.equal(up.stdout.trim(), `${N} ${sha256(body)}`, `${host.label}: upload digest`);
        }),
        timed(`kernel->ours ${kfam}`, async () => {
          const seed = SEED + (kfam === "IPv4" ? 2 : 4);
          const got = await downloadFromKernel(host, kernel, PORT, N, seed);
          assert.equal(got.count, N, `${host.label}: bytes received`);
          assert.equal(got.sha, sha256(payload(N, seed)), `${host.label}: digest`);
        }),
      );
    }
    await Promise.all(jobs);
  });

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
