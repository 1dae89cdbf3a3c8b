// The chimney over the live link: the real Linux kernel (in a namespace, behind a TAP device) is
// the peer; our stack runs with a SoftwareTarget in front of it (the target is the NIC), on this
// thread ("inline") and on a worker thread ("worker", src/worker). 64 MB go each way while the
// connection is offloaded, terminated every 20 ms and offloaded again at once; sha256 must match
// on the receiving side, and at the end every NBL is home (every ledger quiescent).
// The host consumes offloaded data with a seeded mix of accepts, partial accepts, refusals and
// posted receives, so terminates find data buffered at the target.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import type { ReceiveKnobs } from "../src/host/offload-manager.js";
import type { HostConn } from "../src/host/stack.js";
import { startLiveChimneyHost } from "../src/live/chimney-host.js";
import { type LiveHost, startLiveWorkerHost } from "../src/live/live-host.js";
import { RssWorkerTargets } from "../src/worker/rss-targets.js";
import type { OffloadManager } from "../src/host/offload-manager.js";
import type { BufferLedger } from "../src/nbl/ledger.js";
import { killTree, LIVE_ADDRS } from "../src/live/netns.js";
import type { Prng } from "../src/sim/prng.js";
import type { Socket } from "../src/socket/index.js";
import { payload, sha256, sinkUpload, sourceDownload } from "./support/live.js";
import { waitForOutput } from "./support/netns.js";

const N = 64 * 1024 * 1024;
const SEED = 23;
const PORT = 9100;
const CYCLE_MS = 20;

function mixedKnobs(random: Prng): ReceiveKnobs {
  return {
    random: { nextU32: () => random.nextU32() },
    acceptAll: 6,
    acceptPrefix: 2,
    refuse: 2,
    post: 0.3,
    postSizes: [4096, 65536, 262144],
    nonPush: 0.3,
    prefill: 0.3,
    zeroByte: 0.5,
    queueLimit: 4 << 20,
  };
}

/** A live host with a chimney, whichever thread its target runs on. */
interface ChimneyHost {
  readonly host: LiveHost;
  readonly manager: OffloadManager;
  readonly ledger: BufferLedger;
  /** NBLs the target lent up that the host has not returned yet. */
  outstandingReturns(): number;
  /** Checks the target's side is quiescent too (the worker's ledger). */
  auditTarget(): Promise<void>;
  close(): Promise<void>;
}

async function startChimneyHost(target: "inline" | "worker" | "2 workers"): Promise<ChimneyHost> {
  if (target === "inline") {
    const h = startLiveChimneyHost({ tag: "chim", seed: SEED, knobs: mixedKnobs });
    return {
      host: h,
      manager: h.manager,
      ledger: h.ledger,
      outstandingReturns: () => h.target.outstandingReturns,
      auditTarget: () => Promise.resolve(),
      close: () => Promise.resolve(h.close()),
    };
  }
  const workers = target === "worker" ? 1 : 2;
  const h = await startLiveWorkerHost({ tag: "chimw", seed: SEED, knobs: mixedKnobs, workers });
  const w = h.chimney.target;
  return {
    host: h,
    manager: h.chimney.manager,
    ledger: h.chimney.ledger,
    outstandingReturns: () => w.outstanding.heldFromTarget + w.outstanding.atTarget,
    auditTarget: async () => {
      const a = await w.audit();
      assert.equal(a.leak, undefined, `${h.label}: the worker's ledger: ${a.leak}`);
      // The wire goes to the target first: the worker reads and writes the device itself.
      assert.ok(
        a.wireIn > 0 && a.wireOut > 0,
        `${h.label}: the worker moved ${a.wireIn} / ${a.wireOut} frames`,
      );
      assert.equal(h.stats().framesIn, 0, `${h.label}: frames were read on the host thread`);
      if (w instanceof RssWorkerTargets) {
        // Each worker reads and writes a queue of its own: the connections were spread, and
        // the kernel sent each one's frames to the queue its worker writes.
        const per = await Promise.all(w.parts.map((p) => p.audit()));
        assert.ok(
          per.every((x) => x.wireIn > 1000 && x.wireOut > 100),
          `${h.label}: frames per worker in ${per.map((x) => x.wireIn).join("/")}, out ${per.map((x) => x.wireOut).join("/")}`,
        );
      }
    },
    close: async () => {
      h.close();
      await w.close();
    },
  };
}

/**
 * Terminates the socket's connection every `CYCLE_MS` while it is offloaded, and offloads it
 * again as soon as it is back on the host. Returns a stop function and the cycle counts.
 */
function churn(
  ch: ChimneyHost,
  sock: Socket,
): { stop: () => void; counts: { offloads: number; terminates: number } } {
  const counts = { offloads: 0, terminates: 0 };
  let stopped = false;
  const conn = (): HostConn | undefined => sock.connection;
  const tryOffload = (): void => {
    if (stopped) return;
    const c = conn();
    if (c === undefined) return;
    if (c.phase === "host") {
      if (ch.manager.offload(c)) {
        counts.offloads++;
        ch.host.driver.flush();
      }
      return;
    }
    if (c.phase === "terminating") setTimeout(tryOffload, 1);
  };
  const tick = setInterval(() => {
    const c = conn();
    if (c === undefined) return;
    if (c.phase === "offloaded" && ch.manager.terminate(c, "live churn")) {
      counts.terminates++;
      ch.host.driver.flush();
      setTimeout(tryOffload, 1);
    } else if (c.phase === "host") {
      tryOffload();
    }
  }, CYCLE_MS);
  return {
    stop: () => {
      stopped = true;
      clearInterval(tick);
    },
    counts,
  };
}

for (const target of ["inline", "worker"] as const)
  void describe(`the chimney over a TAP link to the kernel, target ${target}`, () => {
    let ch: ChimneyHost;
    let host: LiveHost;
    let server: ChildProcess;
    before(async () => {
      ch = await startChimneyHost(target);
      host = ch.host;
      const script = fileURLToPath(new URL("./support/live-kernel-server.js", import.meta.url));
      server = host.netns.spawn(process.execPath, [script, String(PORT)]);
      await waitForOutput(server, /listening \d+/);
    });
    after(async () => {
      killTree(server);
      await ch.close();
    });

    for (const [family, addr] of [
      ["IPv4", LIVE_ADDRS.kernel4],
      ["IPv6", LIVE_ADDRS.kernel6],
    ] as const) {
      void test(`${family}: 64 MB to the kernel while offloaded and terminated every ${CYCLE_MS} ms`, async () => {
        const data = payload(N, SEED);
        const sentBefore = ch.manager.stats.sendBytesCompleted;
        const t0 = performance.now();
        const s = host.net.connect({ host: addr, port: PORT, allowHalfOpen: true });
        const flap = churn(ch, s);
        const reply = await sinkUpload(s, data);
        flap.stop();
        const secs = (performance.now() - t0) / 1000;
        assert.equal(reply, `${N} ${sha256(data)}`, `${host.label}: kernel's digest`);
        await settle(ch);
        assert.ok(flap.counts.terminates >= 10, `${host.label}: only ${flap.counts.terminates} terminates`);
        // A real share of the bytes went through the target while offloaded (not all on the host).
        const viaTarget = ch.manager.stats.sendBytesCompleted - sentBefore;
        assert.ok(viaTarget >= N / 8, `${host.label}: only ${viaTarget} bytes sent while offloaded`);
        console.log(
          `# ${family} ours->kernel ${((N * 8) / secs / 1e6).toFixed(0)} Mbit/s, ${flap.counts.offloads} offloads, ${flap.counts.terminates} terminates, ${viaTarget} B sent while offloaded (${host.label})`,
        );
      });

      void test(`${family}: 64 MB from the kernel while offloaded and terminated every ${CYCLE_MS} ms`, async () => {
        const t0 = performance.now();
        const m = ch.manager.stats;
        const bufferedBefore = m.bufferedDataIn;
        const offloadedBefore = m.indicatedBytesAccepted + m.postedBytesCompleted;
        const s = host.net.connect({ host: addr, port: PORT });
        const flap = churn(ch, s);
        const got = await sourceDownload(s, N, SEED + 1);
        flap.stop();
        const secs = (performance.now() - t0) / 1000;
        assert.equal(got.count, N, `${host.label}: bytes received`);
        assert.equal(got.sha, sha256(payload(N, SEED + 1)), `${host.label}: digest`);
        await settle(ch);
        assert.ok(flap.counts.terminates >= 10, `${host.label}: only ${flap.counts.terminates} terminates`);
        const buffered = m.bufferedDataIn - bufferedBefore;
        const viaTarget = m.indicatedBytesAccepted + m.postedBytesCompleted - offloadedBefore;
        assert.ok(viaTarget >= N / 8, `${host.label}: only ${viaTarget} bytes received while offloaded`);
        console.log(
          `# ${family} kernel->ours ${((N * 8) / secs / 1e6).toFixed(0)} Mbit/s, ${flap.counts.offloads} offloads, ${flap.counts.terminates} terminates, ${viaTarget} B received while offloaded, ${buffered} B of BufferedData uploaded (${host.label})`,
        );
      });
    }
  });

void describe("the chimney over a multi-queue TAP link, 2 target workers owning a queue each", () => {
  let ch: ChimneyHost;
  let server: ChildProcess;
  before(async () => {
    ch = await startChimneyHost("2 workers");
    const script = fileURLToPath(new URL("./support/live-kernel-server.js", import.meta.url));
    server = ch.host.netns.spawn(process.execPath, [script, String(PORT)]);
    await waitForOutput(server, /listening \d+/);
  });
  after(async () => {
    killTree(server);
    await ch.close();
  });

  void test(`4 downloads of 16 MB from the kernel at once, offloaded and terminated every ${CYCLE_MS} ms`, async () => {
    const host = ch.host;
    const n = 16 << 20;
    const runs = [0, 1, 2, 3].map(async (i) => {
      const s = host.net.connect({ host: LIVE_ADDRS.kernel4, port: PORT });
      const flap = churn(ch, s);
      const got = await sourceDownload(s, n, SEED + 10 + i);
      flap.stop();
      assert.equal(got.count, n, `${host.label}: download ${i}: bytes received`);
      assert.equal(got.sha, sha256(payload(n, SEED + 10 + i)), `${host.label}: download ${i}: digest`);
      return flap.counts.terminates;
    });
    const terminates = await Promise.all(runs);
    assert.ok(
      terminates.every((t) => t >= 3),
      `${host.label}: terminates per download ${terminates.join(", ")}`,
    );
    await settle(ch);
  });
});

/** Uploads whatever is still offloaded, waits for the link to go quiet, and checks the ledgers. */
async function settle(ch: ChimneyHost): Promise<void> {
  const label = ch.host.label;
  for (let i = 0; i < 200; i++) {
    ch.manager.terminateAll();
    ch.host.driver.flush();
    if (ch.manager.offloadedCount === 0 && ch.outstandingReturns() === 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(ch.manager.offloadedCount, 0, `${label}: connections still offloaded`);
  assert.equal(ch.outstandingReturns(), 0, `${label}: NBLs not returned to the target`);
  ch.ledger.assertQuiescent();
  await ch.auditTarget();
}
