// Node's own http, unchanged, over our sockets over the simulator: the server side is an
// http.Server fed with `emit('connection', socket)`, the client side uses `createConnection`
// (or an http.Agent whose createConnection uses our stack).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as http from "node:http";
import { describe, test } from "node:test";
import type { Socket } from "../src/socket/socket.js";
import { socketSim, type SocketSim } from "./support/socket-sim.js";

const SERVER = "192.0.2.2";

/** `n` deterministic pseudo-random bytes (xorshift32 from `seed`). */
function payload(n: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(n / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return Buffer.from(words.buffer, 0, n);
}

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** Serves `handler` with http on host b, port 80; resolves once listening. */
async function serveHttp(sim: SocketSim, handler: http.RequestListener): Promise<{ accepted: () => number }> {
  const httpServer = http.createServer(handler);
  let accepted = 0;
  const server = sim.b.createServer((sock: Socket) => {
    accepted++;
    httpServer.emit("connection", sock);
  });
  await new Promise<void>((resolve) => server.listen(80, resolve));
  return { accepted: () => accepted };
}

/** An http.Agent whose sockets come from host a's NetStack. */
class StackAgent extends http.Agent {
  constructor(sim: SocketSim, options: http.AgentOptions) {
    super(options);
    (this as unknown as { createConnection: (o: http.ClientRequestArgs) => Socket }).createConnection = (o) =>
      sim.a.connect({ port: Number(o.port ?? 80), host: o.host ?? SERVER });
  }
}

/** Writes `data` in `chunk`-byte views, honouring backpressure, then ends. */
async function writeAll(w: NodeJS.WritableStream, data: Buffer, chunk: number): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (!w.write(data.subarray(off, Math.min(data.length, off + chunk)))) {
      await new Promise((r) => w.once("drain", r));
    }
  }
  w.end();
}

function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    r.on("data", (d: Buffer) => parts.push(d));
    r.on("end", () => resolve(Buffer.concat(parts)));
    r.on("error", reject);
  });
}

void describe("node:http over NetStack over the simulator", () => {
  void test("POST 20 MB, respond 20 MB, over a 2%-loss link: sha256 equal on both sides", async () => {
    const seed = 2024;
    const sim = socketSim({ seed, profile: { delayUs: 1000, loss: 0.02 } });
    const N = 20 * 1024 * 1024;
    const upload = payload(N, seed);
    const download = payload(N, seed + 1);
    const started = performance.now();
    try {
      let serverSawHash = "";
      let serverSawBytes = 0;
      await serveHttp(sim, (req, res) => {
        const h = createHash("sha256");
        req.on("data", (d: Buffer) => {
          serverSawBytes += d.length;
          h.update(d);
        });
        req.on("end", () => {
          serverSawHash = h.digest("hex");
          res.writeHead(200, { "content-length": String(N), "content-type": "application/octet-stream" });
          void writeAll(res, download, 65536);
        });
      });
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request({
          method: "POST",
          host: SERVER,
          port: 80,
          path: "/upload",
          headers: { "content-length": String(N) },
          createConnection: () => sim.a.connect({ port: 80, host: SERVER }),
        });
        req.on("response", resolve);
        req.on("error", reject);
        void writeAll(req, upload, 65536);
      });
      const h = createHash("sha256");
      let got = 0;
      res.on("data", (d: Buffer) => {
        got += d.length;
        h.update(d);
      });
      await new Promise((r) => res.once("end", r));
      const label = `seed ${seed}`;
      assert.equal(serverSawBytes, N, `${label}: server read ${serverSawBytes}`);
      assert.equal(serverSawHash, sha(upload), `${label}: upload hash`);
      assert.equal(got, N, `${label}: client read ${got}`);
      assert.equal(h.digest("hex"), sha(download), `${label}: download hash`);
      const link = sim.link.stats();
      const lossDrops = Object.values(link).reduce((s, chain) => s + (chain["loss"]?.dropped ?? 0), 0);
      assert.ok(lossDrops > 500, `${label}: the link dropped only ${lossDrops} frames`);
      const ms = performance.now() - started;
      console.log(
        `# http 20 MB each way, 2% loss: ${ms.toFixed(0)} ms real, ${(sim.sim.now / 1e6).toFixed(2)} s virtual, ${lossDrops} frames lost`,
      );
    } finally {
      sim.stop();
    }
  });

  void test("keep-alive: several requests on one connection through an Agent", async () => {
    const sim = socketSim({ seed: 5 });
    try {
      const { accepted } = await serveHttp(sim, (req, res) => {
        res.end(`you asked for ${req.url ?? ""}`);
      });
      const agent = new StackAgent(sim, { keepAlive: true, maxSockets: 1 });
      const ports = new Set<number>();
      for (let i = 0; i < 5; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          const req = http.get({ host: SERVER, port: 80, path: `/r${i}`, agent }, (res) => {
            assert.equal(res.statusCode, 200);
            res.setEncoding("utf8");
            let s = "";
            res.on("data", (d: string) => (s += d));
            res.on("end", () => resolve(s));
          });
          req.on("socket", (s: Socket) => {
            if (s.localPort !== undefined) ports.add(s.localPort);
            else s.once("connect", () => ports.add(s.localPort ?? -1));
          });
          req.on("error", reject);
        });
        assert.equal(body, `you asked for /r${i}`);
      }
      assert.equal(accepted(), 1, "the agent opened more than one connection");
      assert.equal(ports.size, 1);
      agent.destroy();
    } finally {
      sim.stop();
    }
  });

  void test("chunked encoding both ways", async () => {
    const sim = socketSim({ seed: 6, profile: { delayUs: 300, loss: 0.01 } });
    try {
      const parts = [payload(1000, 1), payload(70_000, 2), payload(3, 3), payload(200_000, 4)];
      await serveHttp(sim, (req, res) => {
        assert.equal(req.headers["transfer-encoding"], "chunked");
        void collect(req).then((body) => {
          res.setHeader("x-request-sha", sha(body));
          for (const p of parts) res.write(p);
          res.end();
        });
      });
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request({
          method: "PUT",
          host: SERVER,
          port: 80,
          path: "/chunks",
          createConnection: () => sim.a.connect({ port: 80, host: SERVER }),
        });
        req.on("response", resolve);
        req.on("error", reject);
        for (const p of parts) req.write(p);
        req.end();
      });
      assert.equal(res.headers["transfer-encoding"], "chunked");
      const all = Buffer.concat(parts);
      assert.equal(res.headers["x-request-sha"], sha(all));
      assert.equal(sha(await collect(res)), sha(all));
    } finally {
      sim.stop();
    }
  });

  void test("echo endpoint: the request body comes back byte for byte", async () => {
    const sim = socketSim({ seed: 7, profile: { delayUs: 500, jitterUs: 200 } });
    try {
      await serveHttp(sim, (req, res) => {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        req.pipe(res);
      });
      const body = payload(777_777, 9);
      const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = http.request({
          method: "POST",
          host: SERVER,
          port: 80,
          path: "/echo",
          headers: { "content-length": String(body.length) },
          createConnection: () => sim.a.connect({ port: 80, host: SERVER }),
        });
        req.on("response", resolve);
        req.on("error", reject);
        void writeAll(req, body, 10_000);
      });
      assert.equal(res.statusCode, 200);
      const back = await collect(res);
      assert.equal(back.length, body.length);
      assert.ok(back.equals(body), "echoed body differs");
    } finally {
      sim.stop();
    }
  });
});
