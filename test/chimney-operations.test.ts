// End-to-end tests of each chimney operation the host's offload manager runs against the
// software offload target (src/offload-target): initiate (with host-buffered receive data and unacknowledged
// send data), terminate (BufferedData back, in order), a terminate storm of a neighbor, updates
// (path MTU, keep-alive), invalidate -> upload, query, a failed initiate, reachability queries,
// aborts, the automatic policy and UPLOAD_ALL. Every test ends with quiescent ledgers.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { type NeighborBlock, newBlock } from "../src/chimney/block-list.js";
import type { HostConn, StackEvent } from "../src/host/stack.js";
import { buildChimneyWorld, type ChimneyWorld, type WorldOptions } from "../src/sim/chimney-world.js";
import { loadScenarioFile } from "../src/cli/commands/run.js";
import { repoRoot } from "../src/conformance/peer-suite.js";
import { runScenario } from "../src/scenario/run.js";
import { SEND_BACKLOG_MAX, SEND_BACKLOG_MIN } from "../src/offload-target/software-target.js";
import { Duration, Instant } from "../src/time/instant.js";
import { decodeFrame } from "../src/wire/packet.js";
import { ip } from "../src/wire/ip-addr.js";
import { fillPattern, patternByte } from "./support/sim-pair.js";

const REPO = repoRoot();

const A = ip("192.0.2.1");
const B = ip("192.0.2.2");

/** An application endpoint that records what it reads and checks it against the peer's pattern. */
class Endpoint {
  conn: HostConn | undefined;
  conns: HostConn[] = [];
  read = 0;
  reading = true;
  closed: string | undefined;
  mismatch: string | undefined;
  readonly dir: number = 0;
  readonly w: ChimneyWorld;
  readonly which: "a" | "b";
  constructor(w: ChimneyWorld, which: "a" | "b", dir: number) {
    this.w = w;
    this.which = which;
    this.dir = dir;
    w[which].onEvent((ev) => {
      this.#on(ev);
    });
  }
  get host() {
    return this.w[this.which];
  }
  #on(ev: StackEvent): void {
    if (ev.kind === "accept") {
      for (
        let c = this.host.stack.accept(ev.listener);
        c !== undefined;
        c = this.host.stack.accept(ev.listener)
      ) {
        this.conn ??= c;
        this.conns.push(c);
      }
      return;
    }
    const e = ev.event;
    if (e.kind === "connected") {
      this.conn ??= ev.conn;
      if (!this.conns.includes(ev.conn)) this.conns.push(ev.conn);
    }
    if ((e.kind === "readable" || e.kind === "peer-fin") && this.reading && ev.conn === this.conn)
      this.drain();
    if (e.kind === "closed" && ev.conn === this.conn) {
      this.drain();
      this.closed = e.error ?? e.reason;
    }
  }
  drain(): void {
    const c = this.conn;
    if (c === undefined) return;
    for (
      let d = this.host.stack.recv(this.w.now, c);
      d !== undefined;
      d = this.host.stack.recv(this.w.now, c)
    ) {
      for (let i = 0; i < d.length; i++) {
        if (d[i] !== patternByte(1 - this.dir, this.read + i) && this.mismatch === undefined) {
          this.mismatch = `${this.which} byte ${this.read + i}`;
        }
      }
      this.read += d.length;
    }
  }
  sent = 0;
  send(n: number): void {
    const c = this.conn;
    assert.ok(c !== undefined);
    const taken = this.host.stack.send(this.w.now, c, fillPattern(this.dir, this.sent, new Uint8Array(n)));
    assert.equal(taken, n, "the send buffer took everything");
    this.sent += n;
    this.host.node.pump();
  }
}

/** A world with a client `a` (no target unless asked) and a server `b` with a target, connected. */
function setup(opts: Partial<WorldOptions> = {}) {
  const w = world({ seed: 7, a: { offload: false }, ...opts });
  const client = new Endpoint(w, "a", 0);
  const server = new Endpoint(w, "b", 1);
  w.b.stack.listen(80);
  w.a.stack.connect(Instant.ZERO, B, 80);
  w.a.node.pump();
  w.run(50_000);
  assert.ok(client.conn !== undefined && server.conn !== undefined, "connected");
  return { w, client, server };
}

/** A world (offload-capable hosts use the software target). */
function world(o: WorldOptions): ChimneyWorld {
  return buildChimneyWorld(o);
}

function mgr(w: ChimneyWorld, which: "a" | "b" = "b") {
  const m = w[which].manager;
  assert.ok(m !== undefined);
  return m;
}

function finish(w: ChimneyWorld, client: Endpoint, server: Endpoint): void {
  const now = w.now;
  if (client.conn !== undefined && client.closed === undefined) w.a.stack.close(now, client.conn);
  if (server.conn !== undefined && server.closed === undefined) w.b.stack.close(now, server.conn);
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

function logOf(w: ChimneyWorld, which: "a" | "b" = "b"): string {
  return mgr(w, which)
    .log.map((e) => `${e.op} ${e.detail}`)
    .join("\n");
}

{
  void describe("against the software target", () => {
    void describe("initiate offload", () => {
      void test("host-buffered receive data is lent as BufferedData and read in order afterwards (IO-18..IO-21)", () => {
        const { w, client, server } = setup();
        server.reading = false;
        client.send(6000);
        w.run(w.now + 20_000);
        assert.equal(w.b.stack.readable(server.conn as HostConn), 6000, "held by the host engine");
        assert.ok(mgr(w).offload(server.conn as HostConn));
        w.b.node.pump();
        w.run(w.now + 5_000);
        assert.equal(server.conn?.phase, "offloaded");
        assert.equal(mgr(w).stats.bufferedDataOut, 6000);
        assert.match(logOf(w), /bufferedData=6000B tree=neighbor:new,path:new,tcp:new/);
        server.reading = true;
        client.send(3000);
        w.run(w.now + 20_000);
        server.drain();
        assert.equal(server.read, 9000);
        finish(w, client, server);
      });

      void test("unacknowledged send data goes over as NBLs in NetBufferListChain (spec 7.6)", () => {
        const { w, client, server } = setup({ a: {} });
        client.send(60_000); // the first ACKs are a round trip away
        assert.ok(mgr(w, "a").offload(client.conn as HostConn));
        w.a.node.pump();
        assert.match(logOf(w, "a"), /sendData=[1-9]\d*B/);
        w.run(w.now + 100_000);
        assert.equal(server.read, 60_000);
        finish(w, client, server);
      });

      void test("a second connection on the same path links to the offloaded path (TR-6, TM-4)", () => {
        const { w, client, server } = setup();
        w.a.stack.connect(w.now, B, 80);
        w.a.node.pump();
        w.run(w.now + 20_000);
        assert.equal(server.conns.length, 2);
        const [c1, c2] = server.conns as [HostConn, HostConn];
        mgr(w).offload(c1);
        w.b.node.pump();
        mgr(w).offload(c2);
        w.b.node.pump();
        w.run(w.now + 5_000);
        assert.match(logOf(w), /tree=path:linker,tcp:new/);
        assert.deepEqual(
          mgr(w)
            .objects()
            .paths.map((p) => p.refs),
          [2],
        );
        for (const c of server.conns) if (c !== server.conn) w.b.stack.close(w.now, c);
        for (const c of client.conns) if (c !== client.conn) w.a.stack.close(w.now, c);
        finish(w, client, server);
      });

      void test("a failed initiate leaves the connection on the host, send data untouched (IO-10)", () => {
        const { w, client, server } = setup({
          b: { limits: { tcp: 0 } },
        });
        server.send(20_000);
        assert.ok(mgr(w).offload(server.conn as HostConn));
        w.b.node.pump();
        w.run(w.now + 5_000);
        assert.equal(server.conn?.phase, "host");
        assert.equal(mgr(w).stats.initiateFailures, 1);
        assert.match(logOf(w), /InitiateOffloadComplete failed NDIS_STATUS_OFFLOAD_TCP_ENTRIES/);
        client.send(1000);
        w.run(w.now + 50_000);
        finish(w, client, server);
      });

      void test("states outside ST-9 are not offloaded", () => {
        const w = world({ seed: 3, a: { offload: false } });
        w.b.stack.listen(80);
        const c = w.a.stack.connect(Instant.ZERO, B, 80);
        assert.equal(mgr(w, "b").offload(c), false, "not the manager's connection");
        const w2 = world({ seed: 3 });
        w2.b.stack.listen(80);
        const c2 = w2.a.stack.connect(Instant.ZERO, B, 80);
        assert.equal(c2.tcp?.state, "SYN-SENT");
        assert.equal(mgr(w2, "a").offload(c2), false, "SYN-SENT is not offloadable");
      });
    });

    void describe("closing states (ST-9)", () => {
      void test("a LAST-ACK connection is offloaded; the target asks for the upload once our FIN is ACKed", () => {
        const { w, client, server } = setup();
        client.send(2000);
        w.a.stack.close(w.now, client.conn as HostConn);
        w.a.node.pump();
        w.run(w.now + 20_000);
        assert.equal(server.read, 2000);
        const sc = server.conn as HostConn;
        assert.equal(sc.tcp?.state, "CLOSE-WAIT");
        server.send(3000);
        w.b.stack.close(w.now, sc);
        assert.equal(sc.tcp?.state, "LAST-ACK");
        assert.ok(mgr(w).offload(sc), "LAST-ACK is offloadable");
        w.b.node.pump();
        w.run(w.now + 600_000_000);
        assert.equal(mgr(w).stats.initiates, 1);
        assert.match(logOf(w), /TcpIndicateRetrieve UploadRequested/);
        assert.equal(server.closed, "fin");
        assert.equal(client.closed, "fin");
        assert.equal(client.read, 3000);
        assert.match(logOf(w), /TerminateOffloadComplete TcpConnectionClosed/);
        assert.equal(w.b.target?.connectionCount, 0, "the target let go of the connection");
        w.b.ledger?.assertQuiescent();
      });
    });

    void describe("terminate offload", () => {
      void test("the seed scenario: target-held data returns as BufferedData, ahead of newer data, NBLs returned", () => {
        // scenarios/seed.yaml: 30,000 bytes held at the target, 5,000 newer bytes after the upload.
        const r = runScenario(loadScenarioFile(join(REPO, "scenarios", "seed.yaml")), 11);
        const failed = r.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
        assert.ok(r.passed, `seed 11: ${failed.join("; ")}`);
        assert.ok((r.counters["bufferedDataIn"] ?? 0) >= 30_000, "the held bytes came back as BufferedData");
        const steps = r.timeline.narration.map((n) => n.text);
        const done = steps.findIndex((t) => /TerminateOffloadComplete .*bufferedData=[1-9]\d*B/.test(t));
        const ret = steps.findIndex((t) => t.includes("MiniportTcpOffloadReceiveReturn"));
        assert.ok(done > 0 && ret > done, steps.join("\n"));
        // Byte-for-byte streams with data after the upload: the held bytes were delivered ahead.
        assert.ok(r.checks.some((c) => c.name === "byte streams identical" && c.ok));
      });

      void test("a terminate storm uploads every connection of a neighbor in one tree (C-6, TM-5)", () => {
        const { w, client, server } = setup();
        for (let i = 0; i < 15; i++) w.a.stack.connect(w.now, B, 80);
        w.a.node.pump();
        w.run(w.now + 30_000);
        assert.equal(server.conns.length, 16);
        for (const c of server.conns) {
          assert.ok(mgr(w).offload(c));
          w.b.node.pump();
        }
        w.run(w.now + 5_000);
        assert.ok(server.conns.every((c) => c.phase === "offloaded"));
        assert.deepEqual(
          mgr(w)
            .objects()
            .paths.map((p) => p.refs),
          [16],
        );
        client.send(4000);
        w.run(w.now + 10_000);
        assert.equal(mgr(w).terminateNeighbor(0, A), 16);
        w.b.node.pump();
        w.run(w.now + 5_000);
        const storms = mgr(w).log.filter((e) => e.op === "TerminateOffload");
        assert.equal(storms.length, 1);
        assert.equal(storms[0]?.detail, `storm: neighbor,path,${Array(16).fill("tcp").join(",")}`);
        assert.ok(server.conns.every((c) => c.phase === "host"));
        assert.deepEqual(mgr(w).objects(), { neighbors: [], paths: [] });
        client.send(4000);
        server.send(5000);
        w.run(w.now + 50_000);
        for (const c of server.conns) if (c !== server.conn) w.b.stack.close(w.now, c);
        for (const c of client.conns) if (c !== client.conn) w.a.stack.close(w.now, c);
        finish(w, client, server);
      });

      void test("UPLOAD_ALL from the target uploads everything and pauses offloading (spec 16.6)", () => {
        const { w, client, server } = setup();
        mgr(w).offload(server.conn as HostConn);
        w.b.node.pump();
        w.run(w.now + 5_000);
        mgr(w).indicateStatus("NDIS_STATUS_UPLOAD_ALL");
        w.b.node.pump();
        w.run(w.now + 5_000);
        assert.equal(server.conn?.phase, "host");
        const sc = server.conn;
        assert.ok(sc !== undefined);
        assert.equal(mgr(w).offload(sc), false, "paused");
        mgr(w).indicateStatus("NDIS_STATUS_OFFLOAD_RESUME");
        assert.equal(mgr(w).offload(sc), true);
        w.b.node.pump();
        finish(w, client, server);
      });
    });

    void describe("update, invalidate, query", () => {
      void test("a path MTU change from the path cache reaches the offloaded path (spec 9.1, ST-3)", () => {
        const sizes: number[] = [];
        const w = world({
          seed: 5,
          a: { offload: false },
          tap: {
            onFrame: (_now, dir, frame) => {
              const p = decodeFrame(frame);
              if (dir === "b>a" && p.transport?.kind === "tcp") sizes.push(frame.length);
            },
          },
        });
        const client = new Endpoint(w, "a", 0);
        const server = new Endpoint(w, "b", 1);
        w.b.stack.listen(80);
        w.a.stack.connect(Instant.ZERO, B, 80);
        w.a.node.pump();
        w.run(50_000);
        mgr(w).offload(server.conn as HostConn);
        w.b.node.pump();
        w.run(w.now + 5_000);
        w.b.stack.paths.handleTooBig(w.now, A, 1280, 1500);
        w.b.node.pump();
        assert.match(logOf(w), /UpdateOffload path 192\.0\.2\.1 pmtu=1280/);
        sizes.length = 0;
        server.send(30_000);
        w.run(w.now + 50_000);
        assert.ok(
          sizes.length > 10 && Math.max(...sizes) <= 1280 + 14,
          `largest frame ${Math.max(...sizes)}`,
        );
        finish(w, client, server);
      });

      void test("keep-alive turned on while offloaded becomes a cached-state update and the target probes (ST-3)", () => {
        const { w, client, server } = setup();
        mgr(w).offload(server.conn as HostConn);
        w.b.node.pump();
        w.run(w.now + 5_000);
        w.b.stack.configure(w.now, server.conn as HostConn, (tcp) => {
          tcp.setKeepAlive(w.now, true, Duration.fromSeconds(1), Duration.fromSeconds(1), 5);
        });
        w.b.node.pump();
        w.run(w.now + 5_000);
        assert.match(logOf(w), /UpdateOffload tcp cached keepAlive=true/);
        assert.equal(mgr(w).stats.updates, 1);
        const before = client.conn?.tcp?.stats.segmentsIn ?? 0;
        w.run(w.now + 3_500_000);
        const probes = (client.conn?.tcp?.stats.segmentsIn ?? 0) - before;
        assert.ok(probes >= 2, `the client saw ${probes} keep-alive probes`);
        finish(w, client, server);
      });

      void test("invalidating the neighbor makes the target ask for uploads, and the connection continues (spec 10)", () => {
        const { w, client, server } = setup();
        mgr(w).offload(server.conn as HostConn);
        w.b.node.pump();
        w.run(w.now + 5_000);
        assert.ok(mgr(w).invalidateNeighbor(0, A));
        w.b.node.pump();
        w.run(w.now + 5_000);
        assert.match(logOf(w), /TcpIndicateRetrieve InvalidState/);
        assert.equal(server.conn?.phase, "host");
        client.send(10_000);
        server.send(10_000);
        w.run(w.now + 50_000);
        finish(w, client, server);
      });

      void test("a query returns the connection's delegated state (spec 8)", () => {
        const { w, client, server } = setup();
        client.send(3000);
        w.run(w.now + 20_000);
        mgr(w).offload(server.conn as HostConn);
        w.b.node.pump();
        w.run(w.now + 5_000);
        const q = mgr(w).query(server.conn as HostConn);
        assert.ok(q !== undefined);
        w.b.node.pump();
        assert.ok(q.done);
        assert.equal(q.status, "NDIS_STATUS_SUCCESS");
        assert.equal(q.delegated?.state, "TcpConnectionEstablished");
        // ST-4: the target supports the send backlog (EV-4): the query reports its preference.
        const backlog = q.delegated?.sendBacklogSize ?? 0;
        assert.ok(backlog >= SEND_BACKLOG_MIN && backlog <= SEND_BACKLOG_MAX, `SendBacklogSize ${backlog}`);
        finish(w, client, server);
      });

      void test("a neighbor reachability query is answered from the neighbor cache (spec 16.5)", () => {
        const { w, client, server } = setup();
        mgr(w).offload(server.conn as HostConn);
        w.b.node.pump();
        w.run(w.now + 5_000);
        const n = mgr(w).objects().neighbors[0];
        assert.ok(n !== undefined);
        const block = () =>
          newBlock<NeighborBlock>({
            layer: "neighbor",
            stateType: "NeighborOffloadState",
            miniportOffloadContext: null,
            ndisOffloadHandle: n.handle,
            constState: undefined,
            cachedState: undefined,
            delegatedState: undefined,
          });
        // Learned from the peer's ARP request, the entry is STALE until forward progress confirms it.
        assert.equal(mgr(w).neighborReachabilityQuery(block()), 0, "stale: HRD 0");
        w.b.stack.neighbors.confirmReachable(w.now, 0, A);
        const confirmedAt = w.now;
        assert.ok(mgr(w).neighborReachabilityQuery(block()) > 0, "reachable: non-zero HRD");
        w.run(w.now + 1_000);
        w.b.node.pump();
        const e = w.b.stack.neighbors.get(0, A);
        assert.equal(e?.state, "REACHABLE");
        assert.equal(
          mgr(w).neighborReachabilityQuery(block()),
          Math.max(1, w.b.stack.now - confirmedAt),
          "HRD = now - last confirmation",
        );
        finish(w, client, server);
      });
    });

    void test("an offload refused for want of the peer's MAC starts resolving it: an idle connection offloads without sending a frame", () => {
      const { w, client, server } = setup();
      const c = server.conn as HostConn;
      // As after an adoption: no neighbor entry, and the connection has nothing to send.
      assert.ok(w.b.stack.neighbors.remove(0, A));
      assert.equal(mgr(w).offload(c), false, "refused: no resolved neighbor");
      assert.equal(w.b.stack.neighbors.get(0, A)?.state, "INCOMPLETE", "the refusal started resolution");
      w.b.node.pump();
      w.run(w.now + 5_000); // one round trip: the ARP request and its reply, no timer
      assert.ok(w.b.stack.neighbors.get(0, A)?.mac !== undefined, "resolved");
      assert.equal(mgr(w).offload(c), true);
      w.b.node.pump();
      w.run(w.now + 5_000);
      assert.equal(c.phase, "offloaded");
      finish(w, client, server);
    });

    void describe("sockets don't notice", () => {
      void test("abort while offloaded resets the peer; the peer's RST reaches the application as ECONNRESET", () => {
        const { w, client, server } = setup();
        mgr(w).offload(server.conn as HostConn);
        w.b.node.pump();
        w.run(w.now + 5_000);
        w.b.stack.abort(w.now, server.conn as HostConn);
        w.b.node.pump();
        w.run(w.now + 50_000);
        // DC-4: the target sends the RST before the disconnect completes.
        assert.equal(client.closed, "ECONNRESET");
        assert.equal(server.closed, "aborted");
        w.run(w.now + 600_000_000);
        w.b.ledger?.assertQuiescent();

        const s2 = setup();
        mgr(s2.w).offload(s2.server.conn as HostConn);
        s2.w.b.node.pump();
        s2.w.run(s2.w.now + 5_000);
        s2.w.a.stack.abort(s2.w.now, s2.client.conn as HostConn);
        s2.w.a.node.pump();
        s2.w.run(s2.w.now + 50_000);
        assert.equal(s2.server.closed, "ECONNRESET");
        assert.match(logOf(s2.w), /TcpIndicateAbort/);
        s2.w.run(s2.w.now + 600_000_000);
        s2.w.b.ledger?.assertQuiescent();
      });

      void test("the automatic policy offloads established connections after N bytes", () => {
        const { w, client, server } = setup({ b: { policy: { autoOffloadAfterBytes: 10_000 } } });
        client.send(20_000);
        w.run(w.now + 50_000);
        assert.equal(server.conn?.phase, "offloaded");
        client.send(20_000);
        server.send(20_000);
        w.run(w.now + 50_000);
        finish(w, client, server);
      });
    });
  });
}
