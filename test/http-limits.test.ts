// The HTTP server `chimney serve` runs (Node's http over our sockets) has header, request and
// idle timeouts and a connection cap. Without them a slowloris client that dribbles a header
// and idle connections were kept forever. Run over the simulator: the clients are our sockets
// on host a, the server on host b. The header and request timeouts are Node's own, on real time,
// so a short header timeout is used and the test waits in real time; the idle timeout runs on the
// sockets' clock, which is virtual here and races ahead while the test waits in real time, so
// it is off (0) where it is not under test.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSimNetwork, type Socket } from "../src/index.js";
import { serveHttpOn } from "../src/live/http-app.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

void test("slowloris is dropped within the header timeout; a full request is served; the connection cap holds", async () => {
  const simNet = createSimNetwork({ seed: 21 });
  const [a, b] = simNet.hosts;
  const capped: string[] = [];
  const server = b.createServer();
  serveHttpOn(server, {
    headersTimeoutMs: 300,
    checkIntervalMs: 50,
    idleTimeoutMs: 0,
    maxConnections: 3,
    onLimit: (m) => capped.push(m),
  });
  server.listen(80);
  try {
    // A slowloris client: a request line and one header, then a byte now and then, never the end.
    const slow = a.connect({ host: "b", port: 80 });
    let slowClosedAfter: number | undefined;
    const t0 = performance.now();
    slow.on("close", () => (slowClosedAfter = performance.now() - t0));
    slow.on("error", () => undefined);
    slow.write("GET /bytes/10 HTTP/1.1\r\nHost: b\r\n");
    const drip = setInterval(() => {
      if (!slow.destroyed) slow.write("X-a: b\r\n");
    }, 50);
    // A legitimate request meanwhile.
    const ok = a.connect({ host: "b", port: 80 });
    let answer = "";
    ok.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    ok.write("GET /bytes/10 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n");
    for (let i = 0; i < 60 && slowClosedAfter === undefined; i++) await sleep(50);
    clearInterval(drip);
    assert.ok(slowClosedAfter !== undefined, "seed 21: the slowloris connection was closed");
    assert.ok(
      slowClosedAfter >= 250,
      `seed 21: closed after ${slowClosedAfter.toFixed(0)} ms, not before the timeout`,
    );
    await simNet.runUntil(() => answer.includes("\r\n\r\n") && answer.length > 10);
    assert.match(answer, /^HTTP\/1\.1 200 /, "seed 21: the full request was served");
    // The cap: three idle connections fill it; a fourth is closed at once, and said so.
    const idle: Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = a.connect({ host: "b", port: 80 });
      s.on("error", () => undefined);
      idle.push(s);
      await simNet.runUntil(() => !s.connecting);
    }
    const fourth = idle[3];
    assert.ok(fourth !== undefined);
    await simNet.runUntil(() => fourth.destroyed || fourth.readableEnded);
    assert.deepEqual(capped, ["connection cap of 3 reached: new connections are closed"]);
    for (const s of idle.slice(0, 3)) assert.equal(s.destroyed, false, "seed 21: those under the cap stay");
    for (const s of idle) s.destroy();
    ok.destroy();
  } finally {
    simNet.stop();
  }
});

void test("an idle connection is closed after the idle timeout (virtual time here), not before", async () => {
  const simNet = createSimNetwork({ seed: 22 });
  const [a, b] = simNet.hosts;
  const server = b.createServer();
  serveHttpOn(server, { idleTimeoutMs: 2000 });
  server.listen(80);
  try {
    const s = a.connect({ host: "b", port: 80 });
    s.on("error", () => undefined);
    let closedAtMs: number | undefined;
    s.on("close", () => (closedAtMs = simNet.nowMs));
    await simNet.runUntil(() => !s.connecting);
    const opened = simNet.nowMs;
    await simNet.run(opened + 1500);
    assert.equal(closedAtMs, undefined, "seed 22: still open before the timeout");
    await simNet.runUntil(() => closedAtMs !== undefined, { timeoutMs: 10_000 });
    assert.ok(closedAtMs !== undefined && closedAtMs - opened >= 2000, `seed 22: closed at ${closedAtMs} ms`);
  } finally {
    simNet.stop();
  }
});
