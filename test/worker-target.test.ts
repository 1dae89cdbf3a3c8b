// The offload target on its own thread (src/worker): the differential property over real
// threads. Host A (target on a worker) and host B (host-only) exchange seeded byte patterns both
// ways over a real-time in-process link while A's connection runs on the host only, offloaded
// from the start, or offloaded and terminated at seeded random moments, so indications,
// completions and terminates cross in flight in an order that differs from run to run. Every
// stream must equal the pattern byte for byte, and every run must end with the host's ledger,
// the proxy and the worker's ledger quiescent. Failures print the seed (WORKER_SEED changes it).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HostConn } from "../src/host/stack.js";
import { Prng } from "../src/sim/prng.js";
import type { Socket } from "../src/socket/socket.js";
import { knobsFor, type KnobProfile } from "./support/offload-pair.js";
import { PAIR_B, startWorkerPair, type WorkerPair } from "./support/worker-pair.js";
import { startRealTimePair } from "../src/socket/realtime-pair.js";
import { RssWorkerTargets } from "../src/worker/rss-targets.js";
import { refuseAllKnobs } from "../src/host/offload-policy.js";
import { HELD_CHUNK_BYTES } from "../src/offload-target/software-target.js";
import type { WorkerAudit } from "../src/worker/protocol.js";

const SEED = Number(process.env["WORKER_SEED"] ?? 0x7a29);

/** The pattern byte at offset `i` of stream `s`. */
function patternByte(s: number, i: number): number {
  return (Math.imul(i, 2654435761) ^ Math.imul(i >>> 8, 40503) ^ s) & 0xff;
}

function patternChunk(s: number, from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = patternByte(s, from + i);
  return out;
}

/** Writes `total` pattern bytes with backpressure, then ends the socket. */
function writePattern(sock: Socket, s: number, total: number, chunk: number): void {
  let at = 0;
  const pump = (): void => {
    while (at < total) {
      const n = Math.min(chunk, total - at);
      const ok = sock.write(patternChunk(s, at, n));
      at += n;
      if (!ok) {
        sock.once("drain", pump);
        return;
      }
    }
    sock.end();
  };
  pump();
}

/** Bytes the application received that lie in shared memory (handed over without a copy). */
let sharedBytes = 0;

/** Checks every byte read against the pattern; resolves with the count at 'end'. */
function readPattern(sock: Socket, s: number, label: string, countShared = false): Promise<number> {
  return new Promise((resolve, reject) => {
    let at = 0;
    sock.on("data", (d: Uint8Array) => {
      if (countShared && d.buffer instanceof SharedArrayBuffer) sharedBytes += d.length;
      for (let i = 0; i < d.length; i++) {
        if (d[i] !== patternByte(s, at + i)) {
          reject(new Error(`${label}: byte ${at + i} is ${d[i]}, the pattern has ${patternByte(s, at + i)}`));
          sock.destroy();
          return;
        }
      }
      at += d.length;
    });
    sock.on("end", () => resolve(at));
    sock.on("error", reject);
  });
}

/** Uploads what is still offloaded, waits until every NBL is home, and checks both ledgers. */
async function quiesce(pair: WorkerPair, label: string): Promise<WorkerAudit> {
  const m = pair.chimney.manager;
  for (const c of [...pair.a.stack.connections()]) if (c.phase === "offloaded") m.terminate(c, "end");
  pair.a.driver.flush();
  const quietBy = Date.now() + 10_000;
  while (m.offloadedCount > 0 || pair.chimney.target.outstanding.heldFromTarget > 0) {
    if (Date.now() > quietBy) assert.fail(`${label}: still ${m.offloadedCount} offloaded after 10 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
  // Terminates that crossed leave their path and neighbor offloaded with no connection: the
  // upload of everything takes them along, on every worker's copy.
  m.terminateAll();
  pair.a.driver.flush();
  while (m.objects().neighbors.length > 0 || m.objects().paths.length > 0) {
    if (Date.now() > quietBy) assert.fail(`${label}: neighbors and paths still offloaded after 10 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 20));
  const audit = await pair.chimney.target.audit();
  assert.equal(audit.leak, undefined, `${label}: the worker's ledger: ${audit.leak}`);
  assert.equal(audit.live, 0, `${label}: ${audit.live} NBLs live in the worker's ledger`);
  assert.deepEqual(
    [audit.connections, audit.handles, audit.neighbors, audit.paths],
    [0, 0, 0, 0],
    `${label}: connections, live handles, neighbors, paths left at the target(s)`,
  );
  assert.deepEqual(pair.chimney.target.outstanding, { atTarget: 0, heldFromTarget: 0 }, label);
  pair.chimney.ledger.assertQuiescent();
  return audit;
}

/**
 * Race stress: `wanted` terminates at random moments during inbound bulk transfers on 32
 * connections with receives posted. Returns, per target worker, the most connections it held at once.
 */
async function raceStress(seed: number, workers: number, wanted: number): Promise<number[]> {
  const TERMINATES = wanted;
  const conns = 32;
  const label = `race stress, seed ${seed}, ${workers} worker(s)`;
  const pair = await startWorkerPair({ seed, workers, knobs: (rng) => knobsFor("mixed", rng) });
  const target = pair.chimney.target;
  const most: number[] = Array.from({ length: workers }, () => 0);
  const rng = new Prng(seed ^ 0x99);
  const m = pair.chimney.manager;
  let terminates = 0;
  let offloads = 0;
  let stop = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const server = pair.b.net.createServer((sock) => {
      // An unbounded pattern until the run has its terminates; then the end.
      let at = 0;
      const id = Number(sock.remotePort) % 256;
      const pump = (): void => {
        while (!stop) {
          const ok = sock.write(patternChunk(id, at, 8192));
          at += 8192;
          if (!ok) {
            sock.once("drain", pump);
            return;
          }
        }
        sock.end();
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(7001, r));
    const reads: Promise<number>[] = [];
    for (let i = 0; i < conns; i++) {
      const c = pair.a.net.connect({ host: PAIR_B, port: 7001 });
      await new Promise<void>((r) => c.once("connect", () => r()));
      reads.push(readPattern(c, Number(c.localPort) % 256, `${label}: connection ${i}`));
    }
    const tick = (): void => {
      for (const c of [...pair.a.stack.connections()]) {
        if (rng.below(2) === 0) continue; // each connection flips at its own random moments
        if (c.phase === "host" && m.offload(c)) offloads++;
        else if (c.phase === "offloaded" && m.terminate(c, "stress")) terminates++;
      }
      pair.a.driver.flush();
      if (target instanceof RssWorkerTargets)
        target.connectionsPerWorker.forEach((n, k) => {
          most[k] = Math.max(most[k] ?? 0, n);
        });
      if (terminates >= TERMINATES) stop = true;
      else timer = setTimeout(tick, rng.below(3));
    };
    tick();
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`${label}: not done after 240 s (${terminates} terminates)`)),
        240_000,
      ).unref(),
    );
    const got = await Promise.race([Promise.all(reads), deadline]);
    assert.ok(terminates >= TERMINATES, `${label}: ${terminates} terminates`);
    const total = got.reduce((a, b) => a + b, 0);
    assert.ok(
      got.every((n) => n > 0),
      `${label}: a connection read nothing: ${got.join(",")}`,
    );
    await quiesce(pair, label);
    const st = m.stats;
    console.log(
      `# ${label}: ${terminates} terminates, ${offloads} offloads, ${(total / 2 ** 20).toFixed(1)} MiB over ${conns} connections, ${st.postedBytesCompleted} B via posted receives, ${st.indicatedBytesAccepted} B via indications, ${st.bufferedDataIn} B of BufferedData, ${st.forwards} segments forwarded after uploads, ${pair.chimney.target.stats.rxDropped} frames dropped at the full ring`,
    );
    assert.ok(st.postedBytesCompleted > 0, `${label}: no posted receive completed`);
    assert.ok(st.bufferedDataIn > 0, `${label}: no BufferedData came up with a terminate`);
    assert.ok(st.refusals > 0, `${label}: no indication was refused`);
    if (workers === 1) most[0] = conns;
    return most;
  } catch (e) {
    throw new Error(`${label}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, { cause: e });
  } finally {
    stop = true;
    clearTimeout(timer);
    await pair.close();
  }
}

type Mode = "host-only" | "offloaded" | "toggled";

interface Outcome {
  readonly offloads: number;
  readonly terminates: number;
  readonly viaTarget: number;
}

/** One run; throws (with the seed) on any mismatch, leak or hang. */
async function run(
  seed: number,
  mode: Mode,
  knobs: KnobProfile,
  bytes: number,
  loss: number,
): Promise<Outcome> {
  const label = `seed ${seed}, ${mode}, knobs ${knobs}, ${bytes} B each way, loss ${loss}`;
  const pair = await startWorkerPair({ seed, loss, knobs: (rng) => knobsFor(knobs, rng) });
  const rng = new Prng(seed ^ 0x51);
  let offloads = 0;
  let terminates = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const m = pair.chimney.manager;
    const conns = (): HostConn[] => [...pair.a.stack.connections()];
    const flip = (c: HostConn): void => {
      if (c.phase === "host") {
        if (m.offload(c)) offloads++;
      } else if (c.phase === "offloaded") {
        if (m.terminate(c, "test")) terminates++;
      }
    };
    // Half-open both ways: each side writes all of its stream whenever the other's ends.
    const server = pair.b.net.createServer({ allowHalfOpen: true }, (s) => {
      writePattern(s, 2, bytes, 16384);
    });
    await new Promise<void>((r) => server.listen(7000, r));
    const serverGot = new Promise<number>((resolve, reject) => {
      server.on("connection", (s: Socket) => {
        readPattern(s, 1, `${label}: B's read`).then(resolve, reject);
      });
    });
    const client = pair.a.net.connect({ host: PAIR_B, port: 7000, allowHalfOpen: true });
    await new Promise<void>((r) => client.once("connect", () => r()));
    if (mode !== "host-only") {
      for (const c of conns()) flip(c);
      pair.a.driver.flush();
    }
    if (mode === "toggled") {
      const tick = (): void => {
        for (const c of conns()) flip(c);
        pair.a.driver.flush();
        timer = setTimeout(tick, 1 + rng.below(12));
      };
      timer = setTimeout(tick, 1 + rng.below(12));
    }
    const clientGot = readPattern(client, 2, `${label}: A's read`, true);
    writePattern(client, 1, bytes, 16384);
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${label}: no end after 60 s`)), 60_000).unref(),
    );
    const [got1, got2] = await Promise.race([Promise.all([serverGot, clientGot]), deadline]);
    clearTimeout(timer);
    timer = undefined;
    assert.equal(got1, bytes, `${label}: B read ${got1} of ${bytes}`);
    assert.equal(got2, bytes, `${label}: A read ${got2} of ${bytes}`);
    const audit = await quiesce(pair, label);
    const s = m.stats;
    if (mode === "offloaded") {
      // Data the host takes is indicated from frame memory: it is not compacted (copied) while
      // an indication is in flight, only when the host leaves it at the target.
      assert.ok(
        audit.compactedChunks * HELD_CHUNK_BYTES <= bytes / 10,
        `${label}: ${audit.compactedChunks} chunks of held data compacted while the host took every byte`,
      );
      // Receive moderation: one indication per batch of frames, not one per segment.
      const segments = pair.b.stack.stats.framesOut;
      assert.ok(
        pair.chimney.target.stats.indications * 4 < segments,
        `${label}: ${pair.chimney.target.stats.indications} indications for ${segments} frames from B`,
      );
    }
    return {
      offloads,
      terminates,
      viaTarget: s.indicatedBytesAccepted + s.postedBytesCompleted + s.sendBytesCompleted,
    };
  } catch (e) {
    throw new Error(
      `${label} (WORKER_SEED=${SEED} replays the suite's traffic): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
      { cause: e },
    );
  } finally {
    clearTimeout(timer);
    await pair.close();
  }
}

void describe("the offload target on a worker thread", () => {
  void test("a real-time pair with a bad loss, seed or worker count is ERR_USAGE, before any thread starts", async () => {
    for (const bad of [
      { seed: 1, loss: 2 },
      { seed: 1, loss: -0.1 },
      { seed: 1, loss: Number.NaN },
      { seed: 1.5 },
      { seed: 1, workers: 0 },
      { seed: 1, workers: 1.5 },
    ]) {
      await assert.rejects(
        startRealTimePair(bad),
        (e: unknown) => (e as { code?: string }).code === "ERR_USAGE",
      );
    }
  });

  void test("host-only, offloaded, and toggled at random give the pattern both ways; everything ends quiescent", async () => {
    const bytes = 4 << 20;
    const host = await run(SEED, "host-only", "accept-all", bytes, 0);
    assert.equal(host.viaTarget, 0);
    sharedBytes = 0;
    const off = await run(SEED + 1, "offloaded", "accept-all", bytes, 0);
    // Zero-copy indications: what the target indicated reaches the application as views of its
    // shared memory (at least 90% of what A's application read; the rest may precede the offload).
    assert.ok(sharedBytes >= 0.9 * bytes, `only ${sharedBytes} of A's ${bytes} B received in shared memory`);
    assert.equal(off.offloads, 1);
    assert.ok(off.viaTarget >= bytes, `offloaded: only ${off.viaTarget} B through the target`);
    const tog = await run(SEED + 2, "toggled", "mixed", bytes, 0);
    assert.ok(tog.terminates >= 2, `toggled: only ${tog.terminates} terminates`);
    assert.ok(tog.viaTarget > 0, "toggled: nothing through the target");
    console.log(`# offloaded: ${JSON.stringify(off)}; toggled: ${JSON.stringify(tog)}`);
  });

  void test("BufferedData a terminate hands back reaches the application as views of the worker's memory, in order", async () => {
    const label = `BufferedData, seed ${SEED}`;
    // The host refuses every indication: what B sends stays held at the target until the terminate.
    const pair = await startWorkerPair({
      seed: SEED + 3,
      knobs: (rng) => refuseAllKnobs({ nextU32: () => rng.nextU32() }),
    });
    try {
      const m = pair.chimney.manager;
      let peer: Socket | undefined;
      const server = pair.b.net.createServer((s) => {
        peer = s;
      });
      await new Promise<void>((r) => server.listen(7002, r));
      const client = pair.a.net.connect({ host: PAIR_B, port: 7002 });
      await new Promise<void>((r) => client.once("connect", () => r()));
      const by = Date.now() + 10_000;
      while (peer === undefined) {
        assert.ok(Date.now() < by, `${label}: no accept`);
        await new Promise((r) => setTimeout(r, 2));
      }
      const conn = client.connection;
      assert.ok(conn !== undefined, label);
      assert.ok(m.offload(conn), label);
      pair.a.driver.flush();
      while (conn.phase !== "offloaded") {
        assert.ok(Date.now() < by, `${label}: not offloaded`);
        await new Promise((r) => setTimeout(r, 2));
      }
      const N = 200_000;
      peer.write(patternChunk(4, 0, N));
      pair.b.driver.flush();
      const e = (): { sndUna: number; sndMax: number } => {
        const c = [...pair.b.stack.connections()][0];
        assert.ok(c !== undefined);
        return { sndUna: c.engine.sndUna, sndMax: c.engine.status().sndMax };
      };
      while (e().sndUna !== e().sndMax) {
        assert.ok(Date.now() < by, `${label}: B's data not acknowledged`);
        await new Promise((r) => setTimeout(r, 2));
      }
      let shared = 0;
      let at = 0;
      client.on("data", (d: Uint8Array) => {
        if (d.buffer instanceof SharedArrayBuffer) shared += d.length;
        for (let i = 0; i < d.length; i++)
          assert.equal(d[i], patternByte(4, at + i), `${label}: byte ${at + i}`);
        at += d.length;
      });
      const before = m.stats.bufferedDataIn;
      assert.ok(m.terminate(conn, "test"), label);
      pair.a.driver.flush();
      while (at < N) {
        assert.ok(Date.now() < by, `${label}: read ${at} of ${N}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.equal(m.stats.bufferedDataIn - before, N, `${label}: all of it came back as BufferedData`);
      assert.equal(shared, N, `${label}: ${shared} of ${N} B read from the worker's shared memory`);
      while (pair.chimney.target.outstanding.heldFromTarget > 0) {
        assert.ok(Date.now() < by, `${label}: BufferedData NBLs not returned`);
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      await pair.close();
    }
  });

  void test("a full frame ring drops and counts, and TCP recovers every byte", async () => {
    // A ring of 4 frames toward the worker: a burst from B overflows it, as a NIC's receive ring.
    const label = `ring drops, seed ${SEED}`;
    const pair = await startWorkerPair({ seed: SEED + 5, ringFrames: 4 });
    try {
      const bytes = 1 << 20;
      const server = pair.b.net.createServer({ allowHalfOpen: true }, (s) => {
        writePattern(s, 6, bytes, 65536);
      });
      await new Promise<void>((r) => server.listen(7003, r));
      const client = pair.a.net.connect({ host: PAIR_B, port: 7003, allowHalfOpen: true });
      await new Promise<void>((r) => client.once("connect", () => r()));
      const conn = client.connection;
      assert.ok(conn !== undefined && pair.chimney.manager.offload(conn), label);
      pair.a.driver.flush();
      const got = await readPattern(client, 6, label);
      client.end();
      assert.equal(got, bytes, `${label}: A read ${got} of ${bytes}`);
      assert.ok(pair.chimney.target.stats.rxDropped > 0, `${label}: no frame dropped at a ring of 4`);
      await quiesce(pair, label);
    } finally {
      await pair.close();
    }
  });

  const TERMINATES = Number(process.env["WORKER_TERMINATES"] ?? 10_000);
  void test(`race stress: ${TERMINATES} terminates at random moments during inbound bulk transfers with receives posted`, async () => {
    await raceStress(SEED + 7, 1, TERMINATES);
  });

  void test("three workers: connections spread by RSS, the race stress across all of them", async () => {
    const perWorker = await raceStress(SEED + 8, 3, 2000);
    assert.equal(perWorker.length, 3);
    assert.ok(
      perWorker.every((n) => n > 0),
      `a worker never held a connection: most held at once ${perWorker.join(", ")}`,
    );
  });

  const RUNS = Number(process.env["WORKER_RUNS"] ?? 8);
  const KNOBS: readonly KnobProfile[] = ["accept-all", "mixed", "refuse-heavy", "posting"];
  void test(`${RUNS} toggled runs across knob profiles, with and without loss`, async () => {
    let terminates = 0;
    for (let i = 0; i < RUNS; i++) {
      const knobs = KNOBS[i % KNOBS.length] as KnobProfile;
      const loss = i % 2 === 0 ? 0 : 0.01;
      const o = await run(SEED + 100 + i, "toggled", knobs, 1 << 20, loss);
      terminates += o.terminates;
    }
    assert.ok(terminates >= RUNS, `only ${terminates} terminates in ${RUNS} runs`);
  });
});
