// The host guarantees of the chimney spec that the offload manager keeps (spec digest 5, 8-10,
// 13): invalidated objects are terminated (IV-8) and never updated (UP-9), queries of one object
// may overlap (QY-4), receive requests may be posted while others are outstanding and from inside
// a receive completion (RQ-5), and a placeholder block carries no state (TR-3). Host-side tests
// run the manager against the software target in the simulated world; the ledgers are quiescent
// at the end of each.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type NeighborBlock, newBlock } from "../src/chimney/block-list.js";
import type { HostConn } from "../src/host/stack.js";
import { buildChimneyWorld, type ChimneyWorld, type WorldHostOptions } from "../src/sim/chimney-world.js";
import { Duration, Instant } from "../src/time/instant.js";
import { mac } from "../src/wire/ethernet.js";
import { ip } from "../src/wire/ip-addr.js";
import { at, offloaded, pattern, pump, terminate } from "./support/target-testing.js";
import { chimneyPair, connectPair, settle } from "./support/chimney-pair.js";

/** The seed of every simulated world here (named in the suite title, so a failure can be replayed). */
const SEED = 11;

const A = ip("192.0.2.1");
const B = ip("192.0.2.2");

interface Pair {
  readonly w: ChimneyWorld;
  readonly client: HostConn;
  readonly server: HostConn;
}

/** A client `a` without a target and a server `b` with one, connected; the server offloaded. */
function offloadedPair(b: WorldHostOptions = {}): Pair {
  const w = buildChimneyWorld({ seed: SEED, a: { offload: false }, b });
  let server: HostConn | undefined;
  let client: HostConn | undefined;
  w.b.onEvent((ev) => {
    if (ev.kind === "accept") server ??= w.b.stack.accept(ev.listener);
  });
  w.a.onEvent((ev) => {
    if (ev.kind !== "accept" && ev.event.kind === "connected") client ??= ev.conn;
  });
  w.b.stack.listen(80);
  w.a.stack.connect(Instant.ZERO, B, 80);
  w.a.node.pump();
  w.run(50_000);
  assert.ok(client !== undefined && server !== undefined, "connected");
  const m = w.b.manager;
  assert.ok(m !== undefined);
  assert.ok(m.offload(server));
  w.b.node.pump();
  w.run(w.now + 20_000);
  assert.equal(m.phaseOf(server), "offloaded");
  return { w, client, server };
}

/** Closes both ends, runs the world idle and checks the ledgers. */
function finish(p: Pair): void {
  p.w.a.stack.close(p.w.now, p.client);
  p.w.b.stack.close(p.w.now, p.server);
  p.w.a.node.pump();
  p.w.b.node.pump();
  assert.ok(p.w.run(p.w.now + 600_000_000), "the world went idle");
  p.w.a.ledger?.assertQuiescent();
  p.w.b.ledger?.assertQuiescent();
}

function ops(p: Pair): string[] {
  return (p.w.b.manager?.log ?? []).map((e) => `${e.op} ${e.detail}`);
}

void describe(`host guarantees (manager against the software target; world seed ${SEED})`, () => {
  void test("IV-8: invalidating a neighbor ends with every object under it terminated", () => {
    const p = offloadedPair();
    const m = p.w.b.manager;
    assert.ok(m !== undefined);
    assert.equal(m.objects().neighbors.length, 1);
    assert.ok(m.invalidateNeighbor(0, A));
    p.w.b.node.pump();
    p.w.run(p.w.now + 5_000);
    const log = ops(p).join("\n");
    assert.match(log, /TcpIndicateRetrieve InvalidState/);
    assert.match(log, /TerminateOffload/);
    assert.equal(m.phaseOf(p.server), "host");
    // The neighbor, its path and the connection are all back on the host.
    assert.deepEqual(m.objects().neighbors, []);
    assert.deepEqual(m.objects().paths, []);
    assert.equal(p.w.b.target?.connectionCount, 0);
    finish(p);
  });

  void test("IV-8: a connection offloaded after its neighbor was invalidated waits for a fresh neighbor", () => {
    // The target takes 2 ms per state operation: the invalidated neighbor stays offloaded a while.
    const p = offloadedPair({ target: { operationDelay: Duration.fromMillis(2) } });
    const m = p.w.b.manager;
    assert.ok(m !== undefined);
    // A second connection between the same hosts, on the host.
    let second: HostConn | undefined;
    let secondClient: HostConn | undefined;
    p.w.b.onEvent((ev) => {
      if (ev.kind === "accept") second ??= p.w.b.stack.accept(ev.listener);
    });
    p.w.a.onEvent((ev) => {
      if (ev.kind !== "accept" && ev.event.kind === "connected" && ev.conn !== p.client)
        secondClient ??= ev.conn;
    });
    p.w.a.stack.connect(p.w.now, B, 80);
    p.w.a.node.pump();
    p.w.run(p.w.now + 20_000);
    assert.ok(second !== undefined && secondClient !== undefined, "second connection up");
    assert.ok(m.invalidateNeighbor(0, A));
    p.w.b.node.pump();
    // Asked while the invalidated neighbor is still offloaded: it waits instead of being linked
    // to it (the target would neither send for it nor ask for its upload).
    assert.ok(m.offload(second));
    assert.equal(m.phaseOf(second), "host");
    p.w.b.node.pump();
    p.w.run(p.w.now + 50_000);
    // The first connection was uploaded with the neighbor; the second then went out on a new one.
    assert.equal(m.phaseOf(p.server), "host");
    assert.equal(m.phaseOf(second), "offloaded");
    const log = ops(p);
    const gone = log.findIndex((l) => l.startsWith("TerminateOffloadComplete"));
    const initiates = log.flatMap((l, i) => (l.startsWith("InitiateOffload ") ? [i] : []));
    assert.ok(gone >= 0 && initiates.length === 2 && (initiates[1] ?? 0) > gone, log.join("\n"));
    // It works: data both ways, then a graceful close that completes.
    p.w.a.stack.send(p.w.now, secondClient, pattern(5000, 1));
    p.w.b.stack.send(p.w.now, second, pattern(5000, 2));
    p.w.a.node.pump();
    p.w.b.node.pump();
    p.w.run(p.w.now + 50_000);
    const received = (w: typeof p.w.a, c: HostConn): number => {
      let n = 0;
      for (let d = w.stack.recv(p.w.now, c); d !== undefined && d.length > 0; d = w.stack.recv(p.w.now, c))
        n += d.length;
      return n;
    };
    assert.equal(received(p.w.b, second), 5000);
    assert.equal(received(p.w.a, secondClient), 5000);
    p.w.a.stack.close(p.w.now, secondClient);
    p.w.b.stack.close(p.w.now, second);
    finish(p);
  });

  void test("IV-8: a graceful close whose FIN the invalidate holds back does not keep the upload waiting", () => {
    const p = offloadedPair();
    const m = p.w.b.manager;
    assert.ok(m !== undefined);
    // The server closes (a graceful disconnect goes to the target) and, in the same step, its
    // neighbor is invalidated: the target stops sending (IV-3) before the FIN leaves.
    p.w.b.stack.close(p.w.now, p.server);
    assert.ok(m.invalidateNeighbor(0, A));
    p.w.b.node.pump();
    p.w.run(p.w.now + 50_000);
    const log = ops(p).join("\n");
    assert.match(log, /TcpIndicateRetrieve InvalidState/);
    assert.match(log, /DisconnectComplete NDIS_STATUS_UPLOAD_IN_PROGRESS/);
    // Uploaded all the same, and the host sent the FIN itself: the client sees the close.
    assert.equal(m.phaseOf(p.server), "host");
    assert.equal(p.client.tcp?.state, "CLOSE-WAIT", "the server's FIN reached the client");
    finish(p);
  });

  void test("IV-8: an invalidated connection is uploaded", () => {
    const p = offloadedPair();
    const m = p.w.b.manager;
    assert.ok(m !== undefined);
    assert.ok(m.invalidate(p.server));
    p.w.b.node.pump();
    p.w.run(p.w.now + 5_000);
    assert.equal(m.phaseOf(p.server), "host");
    assert.equal(p.w.b.target?.connectionCount, 0);
    finish(p);
  });

  void test("UP-9: no UpdateOffload reaches an invalidated connection", () => {
    const p = offloadedPair();
    const m = p.w.b.manager;
    assert.ok(m !== undefined);
    // An update is possible before the invalidation...
    assert.ok(m.updateTcp(p.server, () => ({ naglingEnabled: false })));
    p.w.b.node.pump();
    assert.ok(m.invalidate(p.server));
    // ...but not after it, while the connection is still offloaded.
    assert.equal(m.phaseOf(p.server), "offloaded");
    assert.equal(
      m.updateTcp(p.server, () => ({ naglingEnabled: true })),
      false,
    );
    p.w.b.node.pump();
    const log = ops(p);
    const inv = log.findIndex((l) => l.startsWith("InvalidateOffload"));
    assert.ok(inv >= 0);
    assert.deepEqual(
      log.slice(inv).filter((l) => l.startsWith("UpdateOffload")),
      [],
    );
    p.w.run(p.w.now + 5_000);
    assert.equal(m.phaseOf(p.server), "host");
    finish(p);
  });

  void test("UP-9: a neighbor MAC change while its invalidate is outstanding sends no UpdateOffload", () => {
    // The target takes 2 ms per state operation: the invalidated neighbor stays offloaded a while.
    const p = offloadedPair({ target: { operationDelay: Duration.fromMillis(2) } });
    const m = p.w.b.manager;
    assert.ok(m !== undefined);
    assert.ok(m.invalidateNeighbor(0, A));
    p.w.b.node.pump();
    assert.equal(m.objects().neighbors[0]?.phase, "offloaded");
    p.w.b.stack.neighbors.confirm(p.w.now, 0, A, mac("02:00:00:00:00:09"), true, false);
    p.w.b.node.pump();
    p.w.run(p.w.now + 20_000);
    const log = ops(p);
    const inv = log.findIndex((l) => l.startsWith("InvalidateOffload"));
    assert.ok(inv >= 0);
    assert.deepEqual(
      log.slice(inv).filter((l) => l.startsWith("UpdateOffload")),
      [],
    );
    assert.equal(m.phaseOf(p.server), "host", "IV-8: uploaded all the same");
    finish(p);
  });

  void test("QY-4: a second query of a connection while the first is outstanding; both complete", () => {
    const p = offloadedPair();
    const m = p.w.b.manager;
    assert.ok(m !== undefined);
    const q1 = m.query(p.server);
    const q2 = m.query(p.server);
    assert.ok(q1 !== undefined && q2 !== undefined, "the second query is issued while the first is out");
    assert.equal(q1.done, false);
    p.w.b.node.pump();
    assert.ok(q1.done && q2.done);
    assert.equal(q1.status, "NDIS_STATUS_SUCCESS");
    assert.equal(q2.status, "NDIS_STATUS_SUCCESS");
    assert.equal(q2.delegated?.state, "TcpConnectionEstablished");
    finish(p);
  });
});

void describe("host guarantees (fake host against the target)", () => {
  void test("RQ-5: requests posted while others are outstanding and from inside a completion, in order", () => {
    const w = offloaded();
    // Two requests outstanding at once.
    w.host.post(w.ctx, 100);
    w.host.post(w.ctx, 100);
    let reentrant = 0;
    w.host.onReceiveComplete = () => {
      // C-9: a new request posted from inside NdisTcpOffloadReceiveComplete.
      if (reentrant < 2) {
        reentrant++;
        w.host.post(w.ctx, 150);
      }
    };
    const data = pattern(500, 4);
    w.peer.engine.send(data);
    pump(w);
    assert.equal(reentrant, 2);
    assert.deepEqual(w.host.stream.slice(0, 500), [...data]);
    w.host.onReceiveComplete = undefined;
    const b = terminate(w);
    if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
    w.host.returnIndicated();
    w.host.freeCompleted();
    w.ledger.assertQuiescent();
  });

  void test("TR-3: a placeholder without dependents carries no state and creates nothing", () => {
    const w = offloaded();
    const before = w.target.connectionCount;
    const placeholder = newBlock<NeighborBlock>({
      layer: "neighbor",
      stateType: "NeighborOffloadState",
      miniportOffloadContext: null,
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
    });
    w.host.initiate(placeholder);
    w.target.process(at(w.now));
    assert.equal(placeholder.status, "NDIS_STATUS_SUCCESS");
    assert.equal(placeholder.miniportOffloadContext, null, "no object, no context");
    assert.equal(w.target.connectionCount, before);
    const b = terminate(w);
    if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
    w.host.returnIndicated();
    w.host.freeCompleted();
    w.ledger.assertQuiescent();
  });
});

void describe("terminateAll takes idle objects along (C-6)", () => {
  void test("C-6: terminates that crossed leave their path with no connection; terminateAll takes it and its neighbor", () => {
    const p = chimneyPair();
    const conns = connectPair(p, 2).map(([c]) => c);
    for (const c of conns) assert.ok(p.manager.offload(c));
    settle(p);
    // Both terminates go out, in two calls, before either completes: neither sees its path's
    // last reference. (Terminates asked for in one turn go in one tree, path and all.)
    for (const c of conns) {
      assert.ok(p.manager.terminate(c, "test"));
      // The stack's transmit poll runs the manager's deferred work; the target's does not run.
      assert.equal(p.a.pollTransmit(p.nodeA.now()), undefined);
    }
    assert.deepEqual([p.manager.stats.terminates, p.manager.stats.terminateCalls], [2, 2], "two calls");
    settle(p);
    assert.equal(p.manager.offloadedCount, 0);
    const left = p.manager.objects();
    assert.deepEqual(
      left.paths.map((x) => x.refs),
      [0],
      "the path stays offloaded with no connection (each terminate saw the other's reference)",
    );
    assert.equal(p.target.objectCount.paths, 1);
    p.manager.terminateAll();
    settle(p);
    assert.deepEqual(p.manager.objects(), { neighbors: [], paths: [] });
    assert.deepEqual(p.target.objectCount, { neighbors: 0, paths: 0 });
    p.ledger.assertQuiescent();
  });
});
