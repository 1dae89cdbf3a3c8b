// net.Socket behaviour, one test body run twice: against node:net on 127.0.0.1 (the reference)
// and against our NetStack over the simulator. Event orders are compared with fixed lists that
// both implementations must produce.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { kernelEnv, recordEvents, simEnv, type SocketEnv, type SocketLike } from "./support/socket-env.js";

const SEED = 11;

const ENVS: [string, () => SocketEnv][] = [
  ["node:net", kernelEnv],
  [`sim (seed ${SEED})`, () => simEnv(SEED)],
];

async function withEnv(make: () => SocketEnv, body: (env: SocketEnv) => Promise<void>): Promise<void> {
  const env = make();
  try {
    await body(env);
  } finally {
    env.stop();
  }
}

function closed(s: SocketLike): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed && s.closed) resolve();
    else s.once("close", () => resolve());
  });
}

function bytes(n: number, salt: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + salt + (i >>> 9)) & 0xff;
  return b;
}

for (const [label, make] of ENVS) {
  void describe(`socket semantics: ${label}`, () => {
    void test("connect, data both ways, then end/close in net's order", () =>
      withEnv(make, async (env) => {
        const log: string[] = [];
        let serverGot = "";
        const { port } = await env.listen((s) => {
          recordEvents(s, log, "s:");
          s.setEncoding("utf8");
          s.on("data", (d: string) => {
            serverGot += d;
          });
          s.on("end", () => {
            s.write(`pong:${serverGot}`);
          });
        });
        const c = env.connect(port);
        recordEvents(c, log, "c:");
        assert.equal(c.connecting, true);
        assert.equal(c.pending, true);
        assert.equal(c.readyState, "opening");
        let clientGot = "";
        c.setEncoding("utf8");
        c.on("data", (d: string) => {
          clientGot += d;
        });
        c.once("connect", () => {
          assert.equal(c.readyState, "open");
          assert.equal(c.pending, false);
          assert.equal(c.remoteAddress, env.serverHost);
          assert.equal(c.remotePort, port);
          assert.equal(c.remoteFamily, "IPv4");
          c.write("ping");
          c.end();
          assert.equal(c.readyState, "readOnly");
        });
        await closed(c);
        await new Promise((r) => setImmediate(r));
        assert.equal(serverGot, "ping");
        assert.equal(clientGot, "pong:ping");
        assert.equal(c.bytesRead, 9);
        assert.equal(c.bytesWritten, 4);
        assert.equal(c.readyState, "closed");
        const client = log.filter((e) => e.startsWith("c:"));
        assert.deepEqual(client, ["c:connect", "c:ready", "c:finish", "c:end", "c:close:false"]);
        const server = log.filter((e) => e.startsWith("s:"));
        assert.deepEqual(server.slice(0, 2), ["s:end", "s:finish"]);
      }));

    void test("ECONNREFUSED when nothing listens", () =>
      withEnv(make, async (env) => {
        const { server, port } = await env.listen(() => undefined);
        await new Promise<void>((r) => {
          server.close(() => r());
        });
        const log: string[] = [];
        const c = env.connect(port);
        recordEvents(c, log);
        await closed(c);
        assert.deepEqual(log, ["error:ECONNREFUSED", "close:true"]);
      }));

    void test("EADDRINUSE when the port is taken", () =>
      withEnv(make, async (env) => {
        const { port } = await env.listen(() => undefined);
        assert.equal(await env.tryListen(port), "EADDRINUSE");
      }));

    void test("ECONNRESET when the peer aborts", () =>
      withEnv(make, async (env) => {
        const { port } = await env.listen((s) => {
          s.once("data", () => s.resetAndDestroy());
        });
        const log: string[] = [];
        const c = env.connect(port);
        recordEvents(c, log);
        c.on("connect", () => c.write("hello"));
        c.resume();
        await closed(c);
        assert.deepEqual(log, ["connect", "ready", "error:ECONNRESET", "close:true"]);
      }));

    void test("half-close: end() then still receive a large reply", () =>
      withEnv(make, async (env) => {
        const reply = bytes(300_000, 3);
        const { port } = await env.listen(
          (s) => {
            let n = 0;
            s.on("data", (d: Buffer) => (n += d.length));
            s.on("end", () => {
              assert.equal(n, 5);
              s.end(reply);
            });
          },
          { allowHalfOpen: true },
        );
        const c = env.connect(port, { allowHalfOpen: true });
        const chunks: Buffer[] = [];
        const log: string[] = [];
        recordEvents(c, log);
        c.on("data", (d: Buffer) => chunks.push(d));
        c.on("connect", () => c.end("hello"));
        await closed(c);
        assert.ok(Buffer.concat(chunks).equals(reply), "reply differs");
        assert.deepEqual(log, ["connect", "ready", "finish", "end", "close:false"]);
      }));

    void test("backpressure: a paused reader makes write() return false, then 'drain' after resume", () =>
      withEnv(make, async (env) => {
        let serverSock: SocketLike | undefined;
        let received = 0;
        const { port } = await env.listen(
          (s) => {
            serverSock = s;
            s.on("data", (d: Buffer) => (received += d.length));
          },
          { pauseOnConnect: true },
        );
        const c = env.connect(port);
        await new Promise((r) => c.once("connect", r));
        const chunk = bytes(65536, 1);
        let written = 0;
        let stalled = false;
        // Write until a write() returns false and no 'drain' follows within 100 ms: then the
        // paused reader, not a momentarily full buffer, is what holds the writer back.
        // (Linux loopback buffers can hold several MB; the cap is far beyond that.)
        while (!stalled && written < 256 << 20) {
          written += chunk.length;
          if (c.write(chunk)) {
            if (written % (1 << 20) === 0) await env.sleep(1);
            continue;
          }
          const drainedSoon = await Promise.race([
            new Promise<boolean>((r) => c.once("drain", () => r(true))),
            env.sleep(100).then(() => false),
          ]);
          stalled = !drainedSoon;
        }
        assert.ok(stalled, "write() never stalled");
        assert.equal(received, 0, "the paused reader received data");
        if ("sim" in env) {
          // The receiver's window is closed (less than one segment left).
          const conn = [...(env as ReturnType<typeof simEnv>).sim.hostB.stack.connections()][0];
          assert.ok(conn?.tcp !== undefined);
          assert.ok(conn.tcp.rcvWnd < 1460, `receive window still ${conn.tcp.rcvWnd}`);
        }
        const drained = new Promise((r) => c.once("drain", r));
        assert.ok(serverSock !== undefined);
        serverSock.resume();
        await drained;
        c.end();
        await new Promise((r) => serverSock?.once("end", r));
        assert.equal(received, written);
      }));

    void test("setTimeout emits 'timeout' after the idle time, and the socket stays open", () =>
      withEnv(make, async (env) => {
        const { port } = await env.listen(() => undefined);
        const c = env.connect(port);
        await new Promise((r) => c.once("connect", r));
        const t0 = env.nowMs();
        await new Promise<void>((r) => {
          c.setTimeout(80, r);
        });
        const idle = env.nowMs() - t0;
        assert.ok(idle >= 79, `timeout after ${idle} ms`);
        assert.ok(idle < 1000, `timeout after ${idle} ms`);
        assert.equal(c.destroyed, false);
        assert.equal(c.readyState, "open");
        c.setTimeout(0);
        c.destroy();
        await closed(c);
      }));

    void test("EPIPE: writing after the peer ended a non-half-open socket", () =>
      withEnv(make, async (env) => {
        const { port } = await env.listen((s) => {
          s.end();
          s.resume();
        });
        const c = env.connect(port);
        c.resume();
        const log: string[] = [];
        recordEvents(c, log);
        let writeError: string | undefined;
        c.once("end", () => {
          c.end();
          c.write("late", (e) => (writeError = (e as (Error & { code?: string }) | null)?.code));
        });
        await closed(c);
        assert.deepEqual(log, ["connect", "ready", "end", "error:EPIPE", "close:true"]);
        assert.equal(writeError, "EPIPE");
      }));

    void test("EPIPE: writing after the peer reset a half-closed connection", () =>
      withEnv(make, async (env) => {
        let serverSock: SocketLike | undefined;
        const { port } = await env.listen(
          (s) => {
            serverSock = s;
            s.end();
          },
          { allowHalfOpen: true },
        );
        const c = env.connect(port, { allowHalfOpen: true });
        c.resume();
        await new Promise((r) => c.once("end", r));
        assert.ok(serverSock !== undefined);
        serverSock.resetAndDestroy();
        await env.sleep(20);
        const log: string[] = [];
        recordEvents(c, log);
        c.write("late");
        await closed(c);
        assert.deepEqual(log, ["error:EPIPE", "close:true"]);
      }));
  });
}
