// Sockets don't notice: Node's own http (server and client) and a plain socket echo run over our
// sockets on two hosts that each have an offload manager and the software offload target, while
// a seeded schedule offloads, terminates and re-offloads every connection every ~20 ms of
// virtual time during the transfer. The bodies' sha256 must match what was sent, and each
// socket's events (connect / data / end / close) must come in the same order as in the same run
// on host-only stacks. Failures print the seed (SOCKET_OFFLOAD_SEED changes it).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as http from "node:http";
import { describe, test } from "node:test";
import { Prng } from "../src/sim/prng.js";
import type { SimDriver } from "../src/socket/driver.js";
import type { NetStack } from "../src/socket/net-stack.js";
import { createSimNetwork } from "../src/socket/sim-network.js";
import type { Socket } from "../src/socket/socket.js";
import { Duration, Instant } from "../src/time/instant.js";

const SEED = Number(process.env["SOCKET_OFFLOAD_SEED"] ?? 0x50c0);
const SERVER = "192.0.2.2";

/** The two hosts, with or without offload targets, and the toggling schedule. */
interface Pair {
  readonly sim: SimDriver;
  readonly a: NetStack;
  readonly b: NetStack;
  /** Offloads and terminates the pair did (both hosts). */
  counts(): { offloads: number; terminates: number };
  /** Stops the toggling schedule. */
  stopToggling(): void;
  /** Both ledgers quiescent (throws otherwise). */
  assertQuiescent(): void;
  stop(): void;
}

function buildPair(seed: number, offload: boolean): Pair {
  // 100 Mbit/s, so a transfer spans many toggles of virtual time.
  const net = createSimNetwork({
    seed,
    hosts: ["a", "b"],
    link: { delayMs: 1, bandwidthBps: 100_000_000 },
    offload: offload ? { a: {}, b: {} } : {},
  });
  const sim = net.sim;
  const toggleRng = new Prng(seed + 1); // the network forks its own streams from `seed`
  const hosts = net.hosts;
  let offloads = 0;
  let terminates = 0;
  let toggling = offload;
  const toggle = (): void => {
    if (!toggling) return;
    for (const host of hosts) {
      const m = host.offload?.manager;
      if (m === undefined) continue;
      for (const c of [...host.stack.connections()]) {
        if (c.phase === "host") {
          if (m.offload(c)) offloads++;
        } else if (c.phase === "offloaded") {
          if (m.terminate(c)) terminates++;
        }
      }
      host.flush();
    }
    // Every ~20 ms of virtual time, with seeded jitter (10..30 ms).
    const next = Instant.add(sim.now, Duration.fromMicros(10_000 + toggleRng.below(20_000)));
    sim.scheduler.at(next, "offload toggle", toggle);
  };
  if (offload) sim.scheduler.at(Instant.fromMicros(5_000), "offload toggle", toggle);
  return {
    sim,
    a: hosts[0].net,
    b: hosts[1].net,
    counts: () => ({ offloads, terminates }),
    stopToggling: () => {
      toggling = false;
    },
    assertQuiescent: () => {
      for (const h of hosts) {
        assert.equal(h.offload?.manager.offloadedCount ?? 0, 0, "no connection is left offloaded");
        h.offload?.ledger.assertQuiescent();
      }
    },
    stop: () => {
      net.stop();
    },
  };
}

/** The last entry of `label`'s socket in `log`. */
function lastOf(log: readonly string[], label: string): string | undefined {
  for (let i = log.length - 1; i >= 0; i--) if (log[i]?.startsWith(`${label}:`) === true) return log[i];
  return undefined;
}

/** `n` deterministic pseudo-random bytes. */
function payload(n: number, seed: number): Buffer {
  const rng = new Prng(seed);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) out.writeUInt32LE(rng.nextU32(), i);
  return out;
}

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/**
 * Records a socket's events in order, labelled by socket; consecutive 'data' events of a socket
 * count as one entry (how bytes are chunked is timing, not contract), their bytes are hashed.
 */
function recordEvents(s: Socket, log: string[], label: string): { hash: () => string; bytes: () => number } {
  const h = createHash("sha256");
  let bytes = 0;
  const note = (e: string): void => {
    const entry = `${label}:${e}`;
    if (e !== "data" || lastOf(log, label) !== entry) log.push(entry);
  };
  s.on("connect", () => {
    note("connect");
  });
  s.on("data", (d: Buffer) => {
    bytes += d.length;
    h.update(d);
    note("data");
  });
  s.on("end", () => {
    note("end");
  });
  s.on("error", (e: Error & { code?: string }) => {
    note(`error ${e.code ?? e.message}`);
  });
  s.on("close", () => {
    note("close");
  });
  return { hash: () => h.digest("hex"), bytes: () => bytes };
}

/** Writes `data` in `chunk`-byte views with backpressure, then ends. */
async function writeAll(w: NodeJS.WritableStream, data: Buffer, chunk: number): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (!w.write(data.subarray(off, Math.min(data.length, off + chunk)))) {
      await new Promise((r) => w.once("drain", r));
    }
  }
  w.end();
}

interface EchoResult {
  readonly events: readonly string[];
  readonly clientHash: string;
  readonly serverHash: string;
  readonly clientBytes: number;
  readonly counts: { offloads: number; terminates: number };
}

/** A plain socket echo: the client writes `n` bytes and ends; the server echoes and ends. */
async function runEcho(seed: number, offload: boolean, n: number): Promise<EchoResult> {
  const p = buildPair(seed, offload);
  const events: string[] = [];
  try {
    let serverRec: { hash: () => string } | undefined;
    const serverClosed = new Promise<void>((resolve) => {
      const server = p.b.createServer((s: Socket) => {
        serverRec = recordEvents(s, events, "server");
        s.on("data", (d: Buffer) => {
          // Echo a copy: the received view belongs to this socket's read side.
          if (!s.write(Buffer.from(d))) s.pause();
        });
        s.on("drain", () => s.resume());
        s.on("end", () => s.end());
        s.on("close", () => {
          resolve();
        });
      });
      server.listen(7);
    });
    const c = p.a.connect({ port: 7, host: SERVER });
    const clientRec = recordEvents(c, events, "client");
    const clientClosed = new Promise<void>((resolve) => c.on("close", () => resolve()));
    await new Promise((r) => c.once("connect", r));
    await writeAll(c, payload(n, seed), 16 * 1024);
    await Promise.all([clientClosed, serverClosed]);
    p.stopToggling();
    await p.sim.idle();
    p.assertQuiescent();
    return {
      events,
      clientHash: clientRec.hash(),
      serverHash: serverRec?.hash() ?? "",
      clientBytes: clientRec.bytes(),
      counts: p.counts(),
    };
  } finally {
    p.stop();
  }
}

interface HttpResult {
  readonly events: readonly string[];
  readonly uploadHash: string;
  readonly downloadHash: string;
  readonly counts: { offloads: number; terminates: number };
}

/** Node's http: POST `n` bytes, the server answers with `n` other bytes. */
async function runHttp(seed: number, offload: boolean, n: number): Promise<HttpResult> {
  const p = buildPair(seed, offload);
  const events: string[] = [];
  try {
    const download = payload(n, seed + 1);
    let uploadHash = "";
    const serverSocketClosed = new Promise<void>((resolve) => {
      const httpServer = http.createServer((req, res) => {
        const h = createHash("sha256");
        req.on("data", (d: Buffer) => h.update(d));
        req.on("end", () => {
          uploadHash = h.digest("hex");
          res.writeHead(200, { "content-length": String(n), connection: "close" });
          void writeAll(res, download, 64 * 1024);
        });
      });
      const server = p.b.createServer((s: Socket) => {
        recordEvents(s, events, "server");
        s.on("close", () => {
          resolve();
        });
        httpServer.emit("connection", s);
      });
      server.listen(80);
    });
    let clientSocket: Socket | undefined;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({
        method: "POST",
        host: SERVER,
        port: 80,
        path: "/upload",
        headers: { "content-length": String(n) },
        createConnection: () => {
          const s = p.a.connect({ port: 80, host: SERVER });
          clientSocket = s;
          recordEvents(s, events, "client");
          return s;
        },
      });
      req.on("response", resolve);
      req.on("error", reject);
      void writeAll(req, payload(n, seed), 64 * 1024);
    });
    const h = createHash("sha256");
    res.on("data", (d: Buffer) => h.update(d));
    await new Promise((r) => res.once("end", r));
    const downloadHash = h.digest("hex");
    const cs = clientSocket;
    if (cs !== undefined && !cs.destroyed) await new Promise((r) => cs.once("close", r));
    await serverSocketClosed;
    p.stopToggling();
    await p.sim.idle();
    p.assertQuiescent();
    return { events, uploadHash, downloadHash, counts: p.counts() };
  } finally {
    p.stop();
  }
}

/** One socket's events, in order (sockets' events interleave by timing, which offload changes). */
function perSocket(events: readonly string[], who: string): string[] {
  return events.filter((e) => e.startsWith(`${who}:`));
}

void describe("sockets don't notice offloads (SoftwareTarget, repeated offload/terminate)", () => {
  void test("plain socket echo: bytes and event order as on host-only stacks", {
    timeout: 60_000,
  }, async () => {
    const n = 2 * 1024 * 1024;
    const label = `seed ${SEED} (SOCKET_OFFLOAD_SEED)`;
    const want = sha(payload(n, SEED));
    const base = await runEcho(SEED, false, n);
    assert.equal(base.serverHash, want, `${label}: host-only echo server hash`);
    assert.equal(base.clientHash, want, `${label}: host-only echo client hash`);
    const off = await runEcho(SEED, true, n);
    assert.equal(off.serverHash, want, `${label}: server received the client's bytes`);
    assert.equal(off.clientBytes, n, `${label}: client got ${off.clientBytes} of ${n} echoed bytes`);
    assert.equal(off.clientHash, want, `${label}: echoed bytes`);
    for (const who of ["client", "server"])
      assert.deepEqual(perSocket(off.events, who), perSocket(base.events, who), `${label}: ${who} events`);
    console.log(`# ${label}: ${JSON.stringify(off.counts)} during the transfer`);
    assert.ok(
      off.counts.offloads >= 5 && off.counts.terminates >= 5,
      `${label}: only ${JSON.stringify(off.counts)} during the transfer`,
    );
  });

  void test("node:http POST and response: sha256 and event order as on host-only stacks", {
    timeout: 60_000,
  }, async () => {
    const n = 2 * 1024 * 1024;
    const label = `seed ${SEED} (SOCKET_OFFLOAD_SEED)`;
    const up = sha(payload(n, SEED));
    const down = sha(payload(n, SEED + 1));
    const base = await runHttp(SEED, false, n);
    assert.equal(base.uploadHash, up, `${label}: host-only upload`);
    assert.equal(base.downloadHash, down, `${label}: host-only download`);
    const off = await runHttp(SEED, true, n);
    assert.equal(off.uploadHash, up, `${label}: upload hash`);
    assert.equal(off.downloadHash, down, `${label}: download hash`);
    for (const who of ["client", "server"])
      assert.deepEqual(perSocket(off.events, who), perSocket(base.events, who), `${label}: ${who} events`);
    console.log(`# ${label}: ${JSON.stringify(off.counts)} during the transfer`);
    assert.ok(
      off.counts.offloads >= 5 && off.counts.terminates >= 5,
      `${label}: only ${JSON.stringify(off.counts)} during the transfer`,
    );
  });
});
