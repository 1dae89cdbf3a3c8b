// Several offload targets on worker threads behind the RSS dispatcher (src/worker/rss-targets.ts):
// connections spread by the hash of their 4-tuple, shared neighbor and path objects copied to
// each worker that needs them, and an update of such an object reaching every copy.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ip } from "../src/wire/ip-addr.js";
import { RssWorkerTargets } from "../src/worker/rss-targets.js";
import type { Socket } from "../src/socket/socket.js";
import { PAIR_B, startWorkerPair, type WorkerPair } from "./support/worker-pair.js";

const SEED = Number(process.env["WORKER_SEED"] ?? 0x7a29);

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const by = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > by) assert.fail(`${what} did not happen in ${ms} ms (seed ${SEED})`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The largest TCP frame from A that B took in while `fn` ran. */
async function largestFrameToB(pair: WorkerPair, fn: () => Promise<void>): Promise<number> {
  const d = pair.b.driver;
  const original = d.receiveBatch.bind(d);
  let largest = 0;
  d.receiveBatch = (ifIndex, frames) => {
    for (const f of frames) if (f[23] === 6) largest = Math.max(largest, f.length); // IPv4 TCP
    original(ifIndex, frames);
  };
  try {
    await fn();
  } finally {
    d.receiveBatch = original;
  }
  return largest;
}

void describe("target workers spread by RSS", () => {
  void test("connections land on every worker; a path MTU update reaches every worker's copy of the path", async () => {
    const pair = await startWorkerPair({ seed: SEED, workers: 3 });
    try {
      const target = pair.chimney.target;
      assert.ok(target instanceof RssWorkerTargets);
      const m = pair.chimney.manager;
      const got: number[] = [];
      const server = pair.b.net.createServer((s: Socket) => {
        const i = got.length;
        got.push(0);
        s.on("data", (d: Uint8Array) => {
          got[i] = (got[i] ?? 0) + d.length;
        });
      });
      await new Promise<void>((r) => server.listen(7300, r));
      const socks: Socket[] = [];
      for (let i = 0; i < 12; i++) {
        const c = pair.a.net.connect({ host: PAIR_B, port: 7300 });
        await new Promise<void>((r) => c.once("connect", () => r()));
        socks.push(c);
      }
      for (const c of [...pair.a.stack.connections()]) m.offload(c);
      pair.a.driver.flush();
      await until(
        () => [...pair.a.stack.connections()].every((c) => c.phase === "offloaded"),
        "all 12 offloaded",
      );
      await target.ping(); // the workers' counts are fresh
      const spread = target.connectionsPerWorker;
      assert.ok(
        spread.every((n) => n > 0),
        `connections per worker ${spread.join(", ")} (seed ${SEED})`,
      );
      const send = async (total: number): Promise<void> => {
        const before = got.reduce((a, b) => a + b, 0);
        for (const s of socks) s.write(new Uint8Array(65536).fill(1));
        await until(() => got.reduce((a, b) => a + b, 0) === before + total, "the data at B");
      };
      const before = await largestFrameToB(pair, () => send(12 * 65536));
      assert.equal(before, 1514, "full-sized frames before the update");
      // ICMP too-big for B's address: the host's path MTU drops, the manager updates the path.
      const updates = m.stats.updates;
      assert.ok(pair.a.stack.paths.handleTooBig(pair.a.stack.now, ip(PAIR_B), 1280, 1500));
      pair.a.driver.flush();
      await until(() => m.stats.updates > updates, "the path update");
      await target.ping(); // every worker applied it
      const after = await largestFrameToB(pair, () => send(12 * 65536));
      assert.ok(after <= 1280 + 14, `a ${after}-byte frame after the MTU dropped to 1280 (seed ${SEED})`);
      for (const c of [...pair.a.stack.connections()]) m.terminate(c, "end");
      pair.a.driver.flush();
      await until(() => m.offloadedCount === 0, "all terminated");
      await until(() => target.outstanding.heldFromTarget === 0, "BufferedData returned");
      const audit = await target.audit();
      assert.deepEqual([audit.connections, audit.live], [0, 0]);
      // The 12 terminates asked for in one turn went as one tree, with the path and neighbor
      // they left without dependents (C-6): no worker keeps a copy of either.
      assert.deepEqual(target.sharedObjects, { objects: 0, copies: 0 });
      assert.deepEqual([audit.neighbors, audit.paths], [0, 0]);
      pair.chimney.ledger.assertQuiescent();
    } finally {
      await pair.close();
    }
  });
});
