// Socket behaviour that needs the simulator (a link that drops everything, virtual time for
// minutes-long timeouts, a look inside the TCP engine) and the real-time driver.
import assert from "node:assert/strict";
import { setImmediate as immediate } from "node:timers";
import { describe, test } from "node:test";
import { HostStack } from "../src/host/stack.js";
import { Prng } from "../src/sim/prng.js";
import { RealTimeDriver } from "../src/socket/driver.js";
import { NetStack } from "../src/socket/net-stack.js";
import type { Socket } from "../src/socket/socket.js";
import { tcpConfig } from "../src/tcp/config.js";
import { mac } from "../src/wire/ethernet.js";
import { ip } from "../src/wire/ip-addr.js";
import { socketSim, type SocketSim } from "./support/socket-sim.js";

const SEED = 21;

async function withSim(body: (sim: SocketSim) => Promise<void>, seed = SEED): Promise<void> {
  const sim = socketSim({ seed });
  try {
    await body(sim);
  } finally {
    sim.stop();
  }
}

function errorOf(
  s: Socket,
): Promise<{ code: string | undefined; syscall: string | undefined; hadError: boolean }> {
  return new Promise((resolve) => {
    let e: (Error & { code?: string; syscall?: string }) | undefined;
    s.on("error", (err: Error & { code?: string; syscall?: string }) => (e = err));
    s.on("close", (hadError: boolean) => resolve({ code: e?.code, syscall: e?.syscall, hadError }));
  });
}

async function listenB(sim: SocketSim, onConn: (s: Socket) => void = () => undefined): Promise<number> {
  const server = sim.b.createServer(onConn);
  await new Promise<void>((r) => server.listen(0, r));
  return server.address()?.port ?? 0;
}

void describe("sockets over the simulator: timeouts and failures", () => {
  void test("ETIMEDOUT when data is never acknowledged (retransmission limit)", () =>
    withSim(async (sim) => {
      const port = await listenB(sim, (s) => s.resume());
      const c = sim.a.connect({ port, host: "b" });
      await new Promise((r) => c.once("connect", r));
      const t0 = sim.sim.now;
      sim.blackhole = true;
      c.write(Buffer.alloc(10_000, 7));
      const r = await errorOf(c);
      assert.deepEqual(r, { code: "ETIMEDOUT", syscall: "read", hadError: true });
      const secs = (sim.sim.now - t0) / 1e6;
      assert.ok(secs > 60, `gave up after ${secs} s of virtual time`);
      assert.ok(sim.blackholed > 10, `only ${sim.blackholed} frames were dropped`);
    }));

  void test("ETIMEDOUT through keep-alive on an idle connection whose peer vanished", () =>
    withSim(async (sim) => {
      const port = await listenB(sim);
      const c = sim.a.connect({ port, host: "b" });
      await new Promise((r) => c.once("connect", r));
      c.setKeepAlive(true, 1000);
      const snap = c.connection?.tcp?.exportState(sim.sim.now);
      assert.equal(snap?.cachedState.keepAlive, true);
      assert.equal(snap.cachedState.keepAliveIdle, 1_000_000);
      sim.blackhole = true;
      const r = await errorOf(c);
      assert.deepEqual(r, { code: "ETIMEDOUT", syscall: "read", hadError: true });
      assert.ok((c.connection?.tcp?.stats.keepAliveProbes ?? 0) > 1, "no keep-alive probes were sent");
    }));

  void test("connect ETIMEDOUT when SYNs get no answer", () =>
    withSim(async (sim) => {
      const port = await listenB(sim);
      sim.blackhole = true;
      const c = sim.a.connect({ port, host: "b" });
      assert.deepEqual(await errorOf(c), { code: "ETIMEDOUT", syscall: "connect", hadError: true });
    }));

  void test("ENETUNREACH without a route, ENOTFOUND for an unknown name", () =>
    withSim(async (sim) => {
      const c1 = sim.a.connect({ port: 80, host: "198.51.100.7" });
      assert.deepEqual(await errorOf(c1), { code: "ENETUNREACH", syscall: "connect", hadError: true });
      const c2 = sim.a.connect({ port: 80, host: "nowhere.example" });
      assert.deepEqual(await errorOf(c2), { code: "ENOTFOUND", syscall: "getaddrinfo", hadError: true });
    }));

  void test("destroy() without end() resets the connection: the peer sees ECONNRESET", () =>
    withSim(async (sim) => {
      let peer:
        | Promise<{ code: string | undefined; syscall: string | undefined; hadError: boolean }>
        | undefined;
      const port = await listenB(sim, (s) => {
        peer = errorOf(s);
        s.resume();
      });
      const c = sim.a.connect({ port, host: "b" });
      await new Promise((r) => c.once("connect", r));
      c.write("abc");
      c.destroy();
      assert.deepEqual(await errorOf(c), { code: undefined, syscall: undefined, hadError: false });
      await sim.sim.idle();
      assert.ok(peer !== undefined);
      assert.deepEqual(await peer, { code: "ECONNRESET", syscall: "read", hadError: true });
    }));
});

void describe("sockets over the simulator: addresses, options, servers", () => {
  void test("IPv6: families and addresses on both ends", () =>
    withSim(async (sim) => {
      let accepted: Socket | undefined;
      const port = await listenB(sim, (s) => (accepted = s));
      const c = sim.a.connect({ port, host: "2001:db8::2" });
      await new Promise((r) => c.once("connect", r));
      assert.equal(c.remoteFamily, "IPv6");
      assert.equal(c.remoteAddress, "2001:db8::2");
      assert.deepEqual(c.address(), { address: "2001:db8::1", family: "IPv6", port: c.localPort });
      await sim.sim.idle();
      assert.ok(accepted !== undefined);
      assert.equal(accepted.remoteAddress, "2001:db8::1");
      assert.equal(accepted.remotePort, c.localPort);
      assert.equal(accepted.localPort, port);
      c.destroy();
    }));

  void test("setNoDelay and setKeepAlive reach the TCP engine", () =>
    withSim(async (sim) => {
      const port = await listenB(sim);
      const c = sim.a.connect({ port, host: "b", noDelay: true });
      await new Promise((r) => c.once("connect", r));
      const state = () => c.connection?.tcp?.exportState(sim.sim.now).cachedState;
      assert.equal(state()?.noDelay, true);
      c.setNoDelay(false);
      assert.equal(state()?.noDelay, false);
      c.setKeepAlive(true, 30_000);
      assert.equal(state()?.keepAlive, true);
      assert.equal(state()?.keepAliveIdle, 30_000_000);
      c.setKeepAlive(false);
      assert.equal(state()?.keepAlive, false);
      c.destroy();
    }));

  void test("server.close(): no new connections, 'close' after the last socket closes", () =>
    withSim(async (sim) => {
      const accepted: Socket[] = [];
      const server = sim.b.createServer((s) => {
        accepted.push(s);
        s.resume();
      });
      await new Promise<void>((r) => server.listen(8080, "192.0.2.2", r));
      assert.deepEqual(server.address(), { address: "192.0.2.2", family: "IPv4", port: 8080 });
      const c = sim.a.connect(8080, "b");
      await new Promise((r) => c.once("connect", r));
      await sim.sim.idle();
      assert.equal(accepted.length, 1);
      const log: string[] = [];
      server.on("close", () => log.push("server close"));
      server.close(() => log.push("close cb"));
      assert.equal(server.listening, false);
      assert.equal(server.address(), null);
      const refused = sim.a.connect(8080, "b");
      assert.equal((await errorOf(refused)).code, "ECONNREFUSED");
      assert.deepEqual(log, [], "closed while a connection was open");
      c.end();
      c.resume();
      await new Promise((r) => c.once("close", r));
      await sim.sim.idle();
      assert.deepEqual(log, ["close cb", "server close"]);
    }));

  void test("a run is a pure function of its seed: same virtual finish time", async () => {
    const run = async (seed: number): Promise<number> => {
      const sim = socketSim({ seed, profile: { delayUs: 700, loss: 0.03 } });
      try {
        const port = await listenB(sim, (s) => s.pipe(s));
        const c = sim.a.connect({ port, host: "b" });
        let n = 0;
        c.on("data", (d: Buffer) => (n += d.length));
        c.end(Buffer.alloc(300_000, 1));
        await new Promise((r) => c.once("close", r));
        assert.equal(n, 300_000, `seed ${seed}`);
        return sim.sim.now;
      } finally {
        sim.stop();
      }
    };
    const a = await run(3);
    const b = await run(3);
    const c = await run(4);
    assert.equal(a, b);
    assert.notEqual(a, c);
  });
});

void describe("RealTimeDriver", () => {
  void test("two stacks back to back on real time: echo 200 kB", async () => {
    const mk = (n: number, seed: number) =>
      new HostStack({
        interfaces: [
          {
            name: "eth0",
            link: "ethernet",
            mac: mac(`02:00:00:00:00:0${n}`),
            mtu: 1500,
            addresses: [{ addr: ip(`192.0.2.${n}`), prefixLen: 24 }],
          },
        ],
        tcp: tcpConfig(),
        random: new Prng(seed),
      });
    // Frames cross on the next event-loop turn, like a wire with (almost) no latency.
    const peers: RealTimeDriver[] = [];
    const wire = (to: number) => ({
      transmit: (_ifIndex: number, frame: Uint8Array) =>
        immediate(() => {
          peers[to]?.receive(0, frame);
        }),
    });
    const da = new RealTimeDriver(mk(1, 1), wire(1));
    const db = new RealTimeDriver(mk(2, 2), wire(0));
    peers.push(da, db);
    try {
      const a = new NetStack(da);
      const b = new NetStack(db);
      const server = b.createServer((s) => s.pipe(s));
      await new Promise<void>((r) => server.listen(7, r));
      const body = Buffer.alloc(200_000);
      for (let i = 0; i < body.length; i++) body[i] = (i * 13) & 0xff;
      const c = a.connect(7, "192.0.2.2");
      const parts: Buffer[] = [];
      c.on("data", (d: Buffer) => parts.push(d));
      c.end(body);
      await new Promise((r) => c.once("close", r));
      assert.ok(Buffer.concat(parts).equals(body));
      assert.ok(da.now() > 0);
    } finally {
      da.stop();
      db.stop();
    }
  });
});
