// Ownership across threads: each violation is caught, with a stable OwnershipError reason, on the
// side that commits it. Host A's target runs on a worker thread (src/worker); seeded traffic
// flows from host B while the connection is offloaded, and the violation is made at a seeded
// moment: the host touching an NBL it has returned, a double return (caught on the host before it
// crosses, and by the worker when a forged one reaches it). A terminate at a seeded moment while
// data flows raises nothing on a correct target; the mutant catalogue (test/mutants/catalogue.ts)
// shows that the same run catches the target indicating after its terminate completed and the
// target writing BufferedData it has handed up, on the worker, raised on the host.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MessageChannel, Worker } from "node:worker_threads";
import type { NetBufferList } from "../src/nbl/nbl.js";
import { Prng } from "../src/sim/prng.js";
import { tcpConfig } from "../src/tcp/config.js";
import { OwnershipError } from "../src/util/errors.js";
import { mac } from "../src/wire/ethernet.js";
import { type Batch, SYNC_CELL_WORDS, type UpRecord } from "../src/worker/protocol.js";
import type { WorkerTargetInit } from "../src/worker/target-proxy.js";
import { knobsFor } from "./support/offload-pair.js";
import { PAIR_B, startWorkerPair, type WorkerPair } from "./support/worker-pair.js";

const SEED = Number(process.env["WORKER_OWNERSHIP_SEED"] ?? 0x0b1e);

/**
 * B streams to A until stopped; A's connection is offloaded once it is up. "refuse-all": A's host
 * refuses every indication and posts nothing, so what arrives stays at the target; `answers`
 * counts the indications the host has answered.
 */
async function offloadedStream(
  seed: number,
  knobs: "accept-all" | "refuse-all" = "accept-all",
): Promise<{ pair: WorkerPair; stop: () => void; failed: Promise<unknown>; answers: () => number }> {
  let answers = 0;
  const pair = await startWorkerPair({
    seed,
    knobs: (rng) =>
      knobs === "accept-all"
        ? knobsFor("accept-all", rng)
        : {
            ...knobsFor("refuse-heavy", rng),
            random: {
              nextU32: () => {
                answers++;
                return rng.nextU32();
              },
            },
            acceptAll: 0,
            acceptPrefix: 0,
            refuse: 1,
            post: 0,
            terminateDuringIndication: 0,
          },
  });
  const failed = new Promise<unknown>((resolve) => {
    pair.chimney.target.onError = resolve;
  });
  let stopped = false;
  const server = pair.b.net.createServer((s) => {
    const buf = new Uint8Array(4096).fill(seed & 0xff);
    const pump = (): void => {
      while (!stopped) if (!s.write(buf)) return void s.once("drain", pump);
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(7002, r));
  const c = pair.a.net.connect({ host: PAIR_B, port: 7002 });
  c.on("data", () => undefined);
  c.on("error", () => undefined);
  await new Promise<void>((r) => c.once("connect", () => r()));
  for (const k of pair.a.stack.connections()) pair.chimney.manager.offload(k);
  pair.a.driver.flush();
  return {
    pair,
    failed,
    answers: () => answers,
    stop: () => {
      stopped = true;
    },
  };
}

/** The `k`-th NBL the host returns to the target (after the return has gone through). */
function nthReturned(pair: WorkerPair, k: number): Promise<NetBufferList> {
  const target = pair.chimney.target;
  const original = target.tcpOffloadReceiveReturn.bind(target);
  let seen = 0;
  return new Promise((resolve) => {
    target.tcpOffloadReceiveReturn = (nbl) => {
      const r = original(nbl);
      if (++seen === k) resolve(nbl);
      return r;
    };
  });
}

function withSeed<T>(seed: number, what: string, f: () => Promise<T>): Promise<T> {
  return f().catch((e: unknown) => {
    throw new Error(`${what} (seed ${seed}; WORKER_OWNERSHIP_SEED replays): ${String(e)}`, { cause: e });
  });
}

void describe("ownership across threads", () => {
  void test("the host touching an NBL it has returned: use-after-free on the host", () =>
    withSeed(SEED, "touch after return", async () => {
      const { pair, stop } = await offloadedStream(SEED);
      try {
        const k = 1 + new Prng(SEED).below(20);
        const nbl = await nthReturned(pair, k);
        assert.throws(
          () => pair.chimney.ledger.view(nbl, "host", "test: read after return"),
          (e: unknown) => e instanceof OwnershipError && e.reason === "use-after-free",
        );
      } finally {
        stop();
        await pair.close();
      }
    }));

  void test("a double return: caught on the host before it crosses (double-return)", () =>
    withSeed(SEED + 1, "double return", async () => {
      const { pair, stop } = await offloadedStream(SEED + 1);
      try {
        const k = 1 + new Prng(SEED + 1).below(20);
        const nbl = await nthReturned(pair, k);
        assert.throws(
          () => pair.chimney.target.tcpOffloadReceiveReturn(nbl),
          (e: unknown) => e instanceof OwnershipError && e.reason === "double-return",
        );
      } finally {
        stop();
        await pair.close();
      }
    }));

  void test("a forged NBL carrying the id of a mirror the host holds: refused (double-return); the real one still returns", () =>
    withSeed(SEED + 3, "forged mirror id", async () => {
      const { pair, stop } = await offloadedStream(SEED + 3);
      try {
        const target = pair.chimney.target;
        const original = target.tcpOffloadReceiveReturn.bind(target);
        const done = new Promise<void>((resolve, reject) => {
          target.tcpOffloadReceiveReturn = (nbl) => {
            target.tcpOffloadReceiveReturn = original;
            try {
              // The same public fields, the same id, but not the mirror: mirrors are found by id.
              const forged = { ...nbl, next: null } as NetBufferList;
              assert.throws(
                () => original(forged),
                (e: unknown) => e instanceof OwnershipError && e.reason === "double-return",
              );
              const r = original(nbl);
              resolve();
              return r;
            } catch (e) {
              reject(e instanceof Error ? e : new Error(String(e)));
              throw e;
            }
          };
        });
        await done;
      } finally {
        stop();
        await pair.close();
      }
    }));

  void test("a forged return reaching the worker: caught there (double-return), raised on the host", async () => {
    const { port1, port2 } = new MessageChannel();
    const init: WorkerTargetInit = {
      mac: mac("02:00:00:00:00:01"),
      tcpConfig: tcpConfig({}),
      target: {},
      cell: new SharedArrayBuffer(SYNC_CELL_WORDS * 4), // the bells ring in it: a short cell threw in the worker
      up: port2,
    };
    const w = new Worker(new URL("../src/worker/target-worker.js", import.meta.url), {
      workerData: init,
      transferList: [port2],
    });
    try {
      const got = await new Promise<UpRecord>((resolve, reject) => {
        w.on("error", reject);
        w.on("message", (m: { k?: string }) => {
          if (m.k === "ready")
            w.postMessage({ records: [{ k: "ret", ids: [1 + new Prng(SEED).below(1000)] }] });
        });
        port1.on("message", (m: Batch<UpRecord>) => {
          const r = m.records.find((x) => x.k === "error");
          if (r !== undefined) resolve(r);
        });
      });
      assert.equal(got.k, "error");
      assert.equal(got.k === "error" ? got.reason : undefined, "double-return");
    } finally {
      port1.close();
      await w.terminate();
    }
  });

  // Refused data is buffered at the target when the terminate comes, so BufferedData goes up.
  void test("TM-21 / TM-25: a terminate while data flows: no ownership error on the worker, every connection uploaded", () =>
    withSeed(SEED + 10, "terminate while data flows", async () => {
      const { pair, stop, failed, answers } = await offloadedStream(SEED + 10, "refuse-all");
      try {
        // Terminate at a seeded moment while data flows, once the host has refused data.
        const until = Date.now() + 10_000;
        while (answers() === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
        assert.ok(answers() > 0, "no indication in 10 s");
        await new Promise((r) => setTimeout(r, 5 + new Prng(SEED + 10).below(30)));
        for (const c of pair.a.stack.connections()) pair.chimney.manager.terminate(c, "test");
        pair.a.driver.flush();
        const uploaded = (async (): Promise<"uploaded" | "still offloaded"> => {
          const until = Date.now() + 10_000;
          while (pair.chimney.manager.offloadedCount > 0 && Date.now() < until)
            await new Promise((r) => setTimeout(r, 5));
          if (pair.chimney.manager.offloadedCount > 0) return "still offloaded";
          // Whatever the worker raised after its terminate completed has arrived by now.
          await new Promise((r) => setTimeout(r, 100));
          return "uploaded";
        })();
        const e = await Promise.race([failed, uploaded]);
        if (e instanceof OwnershipError) assert.fail(`OwnershipError (${e.reason}): ${e.message}`);
        if (e instanceof Error) throw e;
        assert.equal(e, "uploaded");
      } finally {
        stop();
        await pair.close();
      }
    }));
});
