/**
 * `chimney demo --target worker`: the seed scenario's story on real time and real threads. The
 * server's host has its offload target on a worker thread (src/worker); the client's host runs on
 * this thread; an in-process link joins them. The client sends 20,000 bytes, the server's
 * connection is offloaded at 20 ms, the client sends 30,000 more which the host refuses so the
 * target holds them, the host terminates at 300 ms, the held bytes come back as BufferedData
 * across the threads and are delivered ahead of the 5,000 newer bytes sent at 350 ms. The checks
 * are the scenario's, plus both ledgers (host thread and worker) quiescent at the end. The seed
 * fixes the bytes; the threads make each run's timing its own.
 */
import { refuseAllKnobs } from "../../host/offload-policy.js";
import type { HostConn } from "../../host/stack.js";
import { PAIR_A, startRealTimePair } from "../../socket/realtime-pair.js";
import type { Socket } from "../../socket/socket.js";
import type { WorkerChimney } from "../../worker/target-proxy.js";
import type { DemoOutput } from "./demo.js";

const PORT = 7001;
const PHASES = [
  { atMs: 0, bytes: 20_000 },
  { atMs: 50, bytes: 30_000 },
  { atMs: 350, bytes: 5_000 },
] as const;
const SERVER_BYTES = 10_000;
const OFFLOAD_MS = 20;
const TERMINATE_MS = 300;

/** `n` bytes of stream `s` from offset `from` (seeded). */
function bytesOf(seed: number, s: number, from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.imul(from + i, 2654435761) ^ Math.imul(seed, 40503) ^ s) & 0xff;
  return out;
}

const sleepUntil = (t0: number, ms: number): Promise<void> =>
  new Promise((r) => setTimeout(r, Math.max(0, t0 + ms - performance.now())));

/** Runs the story once; resolves with its lines and verdict. */
export async function runWorkerDemo(o: {
  readonly seed: number;
  readonly color?: boolean | undefined;
}): Promise<Omit<DemoOutput, "result">> {
  const paint = (code: string, s: string) => (o.color === true ? `\x1b[${code}m${s}\x1b[0m` : s);
  const pair = await startRealTimePair({
    seed: o.seed,
    target: "worker",
    knobs: (rng) => refuseAllKnobs({ nextU32: () => rng.nextU32() }),
  });
  const chimney = pair.chimney as WorkerChimney; // target "worker" builds one
  let t0 = performance.now();
  const narration: string[] = [];
  const say = (tag: "chimney" | "host   " | "app    ", text: string): void => {
    const color = tag === "chimney" ? "36" : tag === "host   " ? "35" : "33";
    narration.push(
      `${((performance.now() - t0).toFixed(3) + " ms").padStart(12)}  ${paint(color, tag)}  ${text}`,
    );
  };
  const total = PHASES.reduce((n, p) => n + p.bytes, 0);
  const checks: { name: string; ok: boolean; detail: string }[] = [];
  try {
    let serverConn: HostConn | undefined;
    const serverGot = new Promise<Uint8Array[]>((resolve, reject) => {
      const server = pair.a.net.createServer((s: Socket) => {
        serverConn = s.connection;
        const parts: Uint8Array[] = [];
        s.on("data", (d: Uint8Array) => parts.push(d));
        s.on("end", () => {
          s.end(); // the server's side closes once the client's has
          resolve(parts);
        });
        s.on("error", reject);
        s.write(bytesOf(o.seed, 2, 0, SERVER_BYTES));
      });
      server.listen(PORT);
    });
    const client = pair.b.net.connect({ host: PAIR_A, port: PORT });
    const clientGot = new Promise<Uint8Array[]>((resolve, reject) => {
      const parts: Uint8Array[] = [];
      client.on("data", (d: Uint8Array) => parts.push(d));
      client.on("end", () => resolve(parts));
      client.on("error", reject);
    });
    await new Promise<void>((r) => client.once("connect", () => r()));
    for (let i = 0; i < 1000 && serverConn === undefined; i++) await new Promise((r) => setTimeout(r, 1));
    t0 = performance.now(); // the story's clock starts with the connection
    say("app    ", "b: connected to a:7001; a's offload target runs on its own thread");
    let sent = 0;
    const write = (n: number): void => {
      client.write(bytesOf(o.seed, 1, sent, n));
      sent += n;
      say("app    ", `b: client writes ${n} bytes`);
    };
    write(PHASES[0].bytes);
    await sleepUntil(t0, OFFLOAD_MS);
    const m = chimney.manager;
    if (serverConn !== undefined && m.offload(serverConn))
      say("host   ", "schedule: offload a's connection to the worker target");
    pair.a.driver.flush();
    await sleepUntil(t0, PHASES[1].atMs);
    write(PHASES[1].bytes);
    await sleepUntil(t0, TERMINATE_MS);
    const heldRefusals = m.stats.refusals;
    say(
      "chimney",
      `a: the host refused ${heldRefusals} indication${heldRefusals === 1 ? "" : "s"}; the target holds the data`,
    );
    if (serverConn !== undefined && m.terminate(serverConn, "demo"))
      say("host   ", "schedule: terminate (upload) a's connection");
    pair.a.driver.flush();
    await sleepUntil(t0, PHASES[2].atMs);
    write(PHASES[2].bytes);
    client.end();
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("the transfer did not end within 10 s")), 10_000).unref(),
    );
    const [got, back] = await Promise.race([Promise.all([serverGot, clientGot]), deadline]);
    say(
      "chimney",
      `a: ${m.stats.bufferedDataIn} bytes came back as BufferedData and were delivered ahead of newer data`,
    );
    const join = (parts: Uint8Array[]): Uint8Array => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    };
    const same = (a: Uint8Array, b: Uint8Array): boolean =>
      a.length === b.length && a.every((x, i) => x === b[i]);
    checks.push({
      name: "client -> server stream",
      ok: same(join(got), bytesOf(o.seed, 1, 0, total)),
      detail: `${join(got).length} of ${total} bytes, in order`,
    });
    checks.push({
      name: "server -> client stream",
      ok: same(join(back), bytesOf(o.seed, 2, 0, SERVER_BYTES)),
      detail: `${join(back).length} of ${SERVER_BYTES} bytes, in order`,
    });
    checks.push({
      name: "BufferedData crossed the threads",
      ok: m.stats.bufferedDataIn >= PHASES[1].bytes,
      detail: `${m.stats.bufferedDataIn} bytes (at least ${PHASES[1].bytes})`,
    });
    checks.push({
      name: "offloaded and terminated",
      ok: m.stats.initiates >= 1 && m.stats.terminates >= 1,
      detail: `${m.stats.initiates} initiates, ${m.stats.terminates} terminates`,
    });
    await new Promise((r) => setTimeout(r, 20));
    const audit = await chimney.target.audit();
    let hostLeak: string | undefined;
    try {
      chimney.ledger.assertQuiescent();
    } catch (e) {
      hostLeak = e instanceof Error ? e.message : String(e);
    }
    checks.push({
      name: "every NBL home (both threads)",
      ok: hostLeak === undefined && audit.leak === undefined,
      detail: hostLeak ?? audit.leak ?? `host ledger and worker ledger quiescent`,
    });
  } catch (e) {
    checks.push({ name: "run", ok: false, detail: e instanceof Error ? e.message : String(e) });
  } finally {
    await pair.close();
  }
  const ok = checks.every((c) => c.ok);
  const lines = [
    `chimney demo --target worker  seed ${o.seed}  (real time, the target on its own thread: timings differ run to run)`,
    "seed: terminate with buffered data, across threads (scenarios/seed.yaml's story)",
    "",
    ...narration,
    "",
    ...checks.map(
      (c) => `  ${c.ok ? paint("32", "ok  ") : paint("31", "FAIL")}  ${c.name.padEnd(34)} ${c.detail}`,
    ),
    "",
    ok
      ? paint(
          "32",
          `verified: no byte lost, duplicated or reordered; all ${checks.length} checks hold (${(performance.now() - t0).toFixed(0)} ms wall clock)`,
        )
      : paint("31", `FAILED (seed ${o.seed}): see the checks above`),
  ];
  return { lines, ok };
}
