// The host's offload manager against the software target for the adapter-wide rules: capabilities
// (CFG-1, CFG-2, CFG-5), pause / resume / upload-all (spec 16.6, C-13) and the hardware-failure
// procedure (spec 11.9, QY-3). Every test ends with quiescent ledgers and every byte delivered
// (or, after a hardware failure, an ECONNRESET).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HostConn, StackEvent } from "../src/host/stack.js";
import { buildChimneyWorld, type ChimneyWorld, type WorldOptions } from "../src/sim/chimney-world.js";
import { SoftwareTarget } from "../src/offload-target/software-target.js";
import { Duration, Instant } from "../src/time/instant.js";
import { ip } from "../src/wire/ip-addr.js";
import { fillPattern, patternByte } from "./support/sim-pair.js";

const B4 = ip("192.0.2.2");
const B6 = ip("2001:db8::2");

/** An application endpoint that checks what it reads against the peer's pattern. */
class Endpoint {
  conn: HostConn | undefined;
  read = 0;
  sent = 0;
  closed: string | undefined;
  mismatch: string | undefined;
  readonly w: ChimneyWorld;
  readonly which: "a" | "b";
  readonly dir: number = 0;
  constructor(w: ChimneyWorld, which: "a" | "b", dir: number) {
    this.w = w;
    this.which = which;
    this.dir = dir;
    w[which].onEvent((ev) => {
      this.#on(ev);
    });
  }
  #on(ev: StackEvent): void {
    const stack = this.w[this.which].stack;
    if (ev.kind === "accept") {
      for (let c = stack.accept(ev.listener); c !== undefined; c = stack.accept(ev.listener)) this.conn ??= c;
      return;
    }
    const e = ev.event;
    if (e.kind === "connected") this.conn ??= ev.conn;
    if ((e.kind === "readable" || e.kind === "peer-fin") && ev.conn === this.conn) this.drain();
    if (e.kind === "closed" && ev.conn === this.conn) {
      this.drain();
      this.closed = e.error ?? e.reason;
    }
  }
  drain(): void {
    const c = this.conn;
    if (c === undefined) return;
    const stack = this.w[this.which].stack;
    for (let d = stack.recv(this.w.now, c); d !== undefined; d = stack.recv(this.w.now, c)) {
      for (let i = 0; i < d.length; i++) {
        if (d[i] !== patternByte(1 - this.dir, this.read + i) && this.mismatch === undefined)
          this.mismatch = `${this.which} byte ${this.read + i}`;
      }
      this.read += d.length;
    }
  }
  send(n: number): void {
    const c = this.conn;
    assert.ok(c !== undefined);
    const h = this.w[this.which];
    const taken = h.stack.send(this.w.now, c, fillPattern(this.dir, this.sent, new Uint8Array(n)));
    assert.equal(taken, n);
    this.sent += n;
    h.node.pump();
  }
}

interface Setup {
  readonly w: ChimneyWorld;
  readonly client: Endpoint;
  readonly server: Endpoint;
}

/** Client `a` (no target) connects to server `b` (software target) over IPv4 or IPv6. */
function setup(family: 4 | 6, opts: Partial<WorldOptions> = {}): Setup {
  const w = buildChimneyWorld({ seed: 11, a: { offload: false }, ...opts });
  const client = new Endpoint(w, "a", 0);
  const server = new Endpoint(w, "b", 1);
  w.b.stack.listen(80);
  w.a.stack.connect(Instant.ZERO, family === 4 ? B4 : B6, 80);
  w.a.node.pump();
  w.run(50_000);
  assert.ok(client.conn !== undefined && server.conn !== undefined, "connected");
  return { w, client, server };
}

/** A second client connection of `family` on the same world; returns both ends. */
function another(s: Setup, family: 4 | 6): { client: HostConn; server: HostConn } {
  const before = new Set([...s.w.b.stack.connections()]);
  const client = s.w.a.stack.connect(s.w.now, family === 4 ? B4 : B6, 80);
  s.w.a.node.pump();
  s.w.run(s.w.now + 20_000);
  const server = [...s.w.b.stack.connections()].find((c) => !before.has(c));
  assert.ok(server !== undefined);
  return { client, server };
}

function mgr(w: ChimneyWorld) {
  const m = w.b.manager;
  assert.ok(m !== undefined);
  return m;
}

function target(w: ChimneyWorld): SoftwareTarget {
  const t = w.b.target;
  assert.ok(t instanceof SoftwareTarget);
  return t;
}

function run(w: ChimneyWorld, us: number): void {
  w.a.node.pump();
  w.b.node.pump();
  w.run(w.now + us);
}

function offloadNow(s: Setup, c: HostConn): void {
  assert.ok(mgr(s.w).offload(c), "offload accepted");
  run(s.w, 5_000);
  assert.equal(c.phase, "offloaded");
}

function finish(s: Setup, extra: HostConn[] = []): void {
  const { w, client, server } = s;
  for (const c of extra) w[c === extra[0] ? "a" : "b"].stack.close(w.now, c);
  if (client.conn !== undefined && client.closed === undefined) w.a.stack.close(w.now, client.conn);
  if (server.conn !== undefined && server.closed === undefined) w.b.stack.close(w.now, server.conn);
  w.a.node.pump();
  w.b.node.pump();
  assert.ok(w.run(w.now + 600_000_000), "the world went idle");
  assert.equal(client.mismatch, undefined);
  assert.equal(server.mismatch, undefined);
  assert.equal(client.read, server.sent, "client read everything the server sent");
  assert.equal(server.read, client.sent, "server read everything the client sent");
  w.a.ledger?.assertQuiescent();
  w.b.ledger?.assertQuiescent();
}

void describe("capabilities (spec 3.3)", () => {
  void test("CFG-2: the host reads the target's capabilities and offloads no IPv6 connection to an IPv4-only target", () => {
    const s = setup(6, { b: { target: { capabilities: { supportIPv6: false } } } });
    assert.equal(mgr(s.w).capabilities.supportIPv6, false);
    const c = s.server.conn as HostConn;
    assert.equal(mgr(s.w).offload(c), false);
    assert.equal(mgr(s.w).stats.initiates, 0, "no initiate reached the target");
    s.client.send(5000);
    s.server.send(5000);
    run(s.w, 50_000);
    assert.equal(c.phase, "host");
    finish(s);
  });

  void test("CFG-2: the host offloads both families to a dual-stack target", () => {
    for (const family of [4, 6] as const) {
      const s = setup(family);
      offloadNow(s, s.server.conn as HostConn);
      s.client.send(20_000);
      s.server.send(20_000);
      run(s.w, 100_000);
      finish(s);
    }
  });

  void test("CFG-1: disabling a family uploads every connection using it first, and only those", () => {
    const s = setup(4);
    const v6 = another(s, 6);
    offloadNow(s, s.server.conn as HostConn);
    offloadNow(s, v6.server);
    s.client.send(8000);
    assert.equal(mgr(s.w).disableFamily(4), 1);
    run(s.w, 50_000);
    assert.equal(s.server.conn?.phase, "host", "the IPv4 connection was uploaded");
    assert.equal(v6.server.phase, "offloaded", "the IPv6 connection stays");
    assert.equal(mgr(s.w).offload(s.server.conn), false, "IPv4 offload is off");
    s.client.send(8000);
    run(s.w, 50_000);
    mgr(s.w).enableFamily(4);
    offloadNow(s, s.server.conn);
    finish(s, [v6.client, v6.server]);
  });
});

void describe("pause, resume, upload-all (spec 16.6)", () => {
  void test("C-13 / CFG-5: after PAUSE nothing new is offloaded; RESUME's new capabilities are used (CFG-1 uploads)", () => {
    const s = setup(4, { b: { target: { operationDelay: Duration.fromMillis(2) } } });
    const v6 = another(s, 6);
    const c4 = s.server.conn as HostConn;
    assert.ok(mgr(s.w).offload(c4)); // in flight when the pause comes
    target(s.w).pause();
    run(s.w, 10_000);
    assert.equal(c4.phase, "offloaded", "C-13: the initiate in flight was accepted and completed");
    assert.equal(mgr(s.w).offload(v6.server), false, "paused");
    s.client.send(10_000);
    s.server.send(10_000);
    run(s.w, 50_000);
    // CFG-5: the target resumes without IPv4; the host re-reads and uploads its IPv4 connection.
    target(s.w).resume({ supportIPv4: false });
    run(s.w, 20_000);
    assert.equal(mgr(s.w).capabilities.supportIPv4, false);
    assert.equal(c4.phase, "host", "CFG-1: uploaded when the capability went away");
    assert.equal(mgr(s.w).offload(c4), false);
    offloadNow(s, v6.server);
    s.client.send(10_000);
    run(s.w, 50_000);
    finish(s, [v6.client, v6.server]);
  });

  void test("UPLOAD_ALL uploads every connection, including one whose offload was in flight", () => {
    const s = setup(4, { b: { target: { operationDelay: Duration.fromMillis(3) } } });
    const v6 = another(s, 6);
    offloadNow(s, s.server.conn as HostConn);
    assert.ok(mgr(s.w).offload(v6.server)); // in flight
    target(s.w).requestUploadAll();
    run(s.w, 50_000);
    assert.equal(s.server.conn?.phase, "host");
    assert.equal(v6.server.phase, "host");
    assert.equal(mgr(s.w).offloadedCount, 0);
    assert.deepEqual(mgr(s.w).objects(), { neighbors: [], paths: [] });
    assert.equal(mgr(s.w).offload(v6.server), false, "offloading stays paused");
    target(s.w).pause();
    target(s.w).resume();
    offloadNow(s, v6.server);
    s.client.send(5000);
    run(s.w, 50_000);
    finish(s, [v6.client, v6.server]);
  });
});

void describe("host guarantees (spec 7.2, 9.4, 11.3, 12)", () => {
  const delayed = { b: { target: { operationDelay: Duration.fromMillis(5) } } };

  void test("C-1 / IO-2 / UP-7 / IO-4 / FW-1 / C-14: nothing targets a connection being offloaded; its segments are held, then forwarded", () => {
    const s = setup(4, delayed);
    const c = s.server.conn as HostConn;
    assert.ok(mgr(s.w).offload(c));
    assert.equal(c.phase, "offloading");
    assert.equal(mgr(s.w).offload(c), false, "IO-2: no second offload");
    assert.equal(mgr(s.w).query(c), undefined, "C-1: no query");
    assert.equal(
      mgr(s.w).updateTcp(c, () => ({ naglingEnabled: false })),
      false,
      "UP-7: no update",
    );
    const forwardsBefore = mgr(s.w).stats.forwards;
    s.client.send(3000); // reaches the host while the initiate is in flight
    s.w.run(s.w.now + 2_000);
    assert.equal(c.phase, "offloading");
    assert.ok(mgr(s.w).stats.heldSegments > 0, "IO-4: held");
    assert.equal(mgr(s.w).stats.forwards, forwardsBefore, "C-14: nothing forwarded while offloading");
    run(s.w, 20_000);
    assert.equal(c.phase, "offloaded");
    assert.ok(mgr(s.w).stats.forwards > forwardsBefore, "FW-1: forwarded after the completion");
    assert.equal(s.server.read, 3000);
    finish(s);
  });

  void test("C-4 / UP-8: at most one update per connection at a time", () => {
    const s = setup(4, delayed);
    const c = s.server.conn as HostConn;
    offloadNow(s, c);
    assert.equal(
      mgr(s.w).updateTcp(c, () => ({ naglingEnabled: false })),
      true,
    );
    assert.equal(
      mgr(s.w).updateTcp(c, () => ({ naglingEnabled: true })),
      false,
      "a second update waits",
    );
    run(s.w, 20_000);
    assert.equal(
      mgr(s.w).updateTcp(c, () => ({ naglingEnabled: true })),
      true,
    );
    run(s.w, 20_000);
    finish(s);
  });

  void test("C-5 / TM-7: a terminate waits for the outstanding query to complete", () => {
    const s = setup(4, delayed);
    const c = s.server.conn as HostConn;
    offloadNow(s, c);
    const q = mgr(s.w).query(c);
    assert.ok(q !== undefined);
    assert.ok(mgr(s.w).terminate(c));
    run(s.w, 50_000);
    assert.equal(q.done, true);
    assert.equal(c.phase, "host");
    const ops = mgr(s.w).log.map((e) => e.op);
    assert.ok(ops.indexOf("QueryOffloadComplete") < ops.lastIndexOf("TerminateOffload"), ops.join(","));
    finish(s);
  });

  void test("TM-24 / TM-8: during an upload the host processes arriving segments itself and sends nothing to the target", () => {
    const s = setup(4, delayed);
    const c = s.server.conn as HostConn;
    offloadNow(s, c);
    const forwards = mgr(s.w).stats.forwards;
    const sends = mgr(s.w).stats.sends;
    assert.ok(mgr(s.w).terminate(c));
    run(s.w, 1_000);
    assert.equal(c.phase, "terminating");
    s.client.send(4000); // arrives during the upload
    s.server.send(2000); // posted during the upload: TM-8, kept on the host
    run(s.w, 50_000);
    assert.equal(c.phase, "host");
    assert.equal(mgr(s.w).stats.forwards, forwards, "TM-24: not forwarded back");
    assert.equal(mgr(s.w).stats.sends, sends, "TM-8: no send posted after the terminate");
    finish(s);
  });

  void test("RST-2: after TcpIndicateAbort the host terminates the offload", () => {
    const s = setup(4);
    const c = s.server.conn as HostConn;
    offloadNow(s, c);
    s.w.a.stack.abort(s.w.now, s.client.conn as HostConn);
    s.client.closed = "aborted";
    run(s.w, 50_000);
    const ops = mgr(s.w).log.map((e) => `${e.op} ${e.detail}`);
    const abort = ops.findIndex((o) => o.startsWith("TcpIndicateAbort"));
    assert.ok(abort >= 0, ops.join("\n"));
    assert.ok(ops.findIndex((o, i) => i > abort && o.startsWith("TerminateOffload ")) > abort);
    assert.equal(s.server.closed, "ECONNRESET");
    assert.equal(mgr(s.w).offloadedCount, 0);
    finish(s);
  });
});

void describe("hardware failure (spec 11.9)", () => {
  void test("QY-3: a query of corrupt state ends in upload and ECONNRESET; other connections carry on", () => {
    const s = setup(4);
    const other = another(s, 4);
    const c = s.server.conn as HostConn;
    offloadNow(s, c);
    offloadNow(s, other.server);
    s.client.send(4000);
    run(s.w, 50_000);
    assert.equal(s.server.read, 4000, "data before the failure arrived");
    const ctx = mgr(s.w).contextOf(c);
    assert.ok(ctx !== undefined);
    target(s.w).injectFault({ kind: "corrupt-hardware-state", context: ctx });
    const q = mgr(s.w).query(c);
    assert.ok(q !== undefined);
    run(s.w, 50_000);
    assert.equal(q.done, true);
    assert.equal(q.status, "NDIS_STATUS_FAILURE");
    assert.equal(s.server.closed, "ECONNRESET");
    assert.equal(target(s.w).connectionCount, 1, "only the other connection is still offloaded");
    const log = mgr(s.w)
      .log.map((e) => `${e.op} ${e.detail}`)
      .join("\n");
    assert.match(log, /TcpIndicateRetrieve HardwareFailure\nTcpIndicateAbort/);
    assert.match(log, /TerminateOffloadComplete failed NDIS_STATUS_FAILURE/);
    // The failed connection is gone; the server's application reset it. The client still runs.
    s.server.conn = undefined;
    s.client.conn = undefined;
    s.w.b.ledger?.assertQuiescent();
    s.client.sent = 0;
    s.server.read = 0;
    finish(s, [other.client, other.server]);
  });
});
