// Upload storm (a small one of the chimney bench's terminate storm): many offloaded connections
// with data buffered at the target come back in one TerminateOffload tree, every byte readable on
// the host, every NBL returned, one log entry per connection whose detail text is formatted on
// first read; and imported engines, which share an empty out-of-order queue until their first
// out-of-order segment, keep their queues apart.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { tcpConfig } from "../src/tcp/config.js";
import { TcpConnection } from "../src/tcp/connection.js";
import { Seq } from "../src/wire/seq.js";
import type { TcpSnapshot } from "../src/tcp/types.js";
import { Duration, Instant } from "../src/time/instant.js";
import { TcpFlag, type TcpRepr } from "../src/wire/tcp-repr.js";
import { ip } from "../src/wire/ip-addr.js";
import { type OffloadBlockList, treeBlocks } from "../src/chimney/block-list.js";
import { TERMINATE_BATCH } from "../src/host/offload-manager.js";
import { blankSnapshot } from "../src/chimney/tcp-state.js";
import { type ChimneyPair, chimneyPair, connectPair, refuseAll, settle } from "./support/chimney-pair.js";

const NOW = Instant.ZERO;
const CONNS = 200;
const BYTES_EACH = 700;

function world(): ChimneyPair {
  return chimneyPair({ tcp: { delayedAck: Duration.ZERO }, knobs: refuseAll(), synQueueLimit: 1 << 16 });
}

/** The peer's bytes on connection `i` (distinct per connection, so a mix-up shows). */
function payload(i: number): Uint8Array {
  return new Uint8Array(BYTES_EACH).map((_, k) => (i * 7 + k) & 0xff);
}

void describe("upload storm", () => {
  void test(`${CONNS} offloaded connections with buffered data come back in one tree`, () => {
    const w = world();
    const conns = connectPair(w, CONNS);
    for (const [c] of conns) assert.ok(w.manager.offload(c));
    settle(w);
    for (const [c] of conns) assert.equal(c.phase, "offloaded");
    conns.forEach(([, peer], i) => {
      assert.equal(w.b.send(NOW, peer, payload(i)), BYTES_EACH);
    });
    settle(w);
    const logBefore = w.manager.log.length;
    const trees: OffloadBlockList[] = [];
    const terminate = w.target.terminateOffload.bind(w.target);
    w.target.terminateOffload = (root) => {
      trees.push(root);
      terminate(root);
    };

    assert.equal(w.manager.terminateNeighbor(0, ip("192.0.2.2")), CONNS);
    settle(w);
    // The manager drops what the target wrote into its tree once it has read it: a storm's
    // blocks are old by their completion, and states and NBLs left in them would live on until
    // the next full garbage collection.
    assert.equal(trees.length, 1, "one TerminateOffload tree");
    const blocks = treeBlocks(trees[0] as OffloadBlockList);
    assert.equal(blocks.filter((b) => b.layer === "tcp").length, CONNS);
    for (const b of blocks) {
      assert.equal(b.status, "NDIS_STATUS_SUCCESS", "the completion's status stays readable");
      assert.equal(b.delegatedState, undefined, `${b.layer} block: delegated state dropped`);
      assert.equal(b.constState, undefined, `${b.layer} block: const state dropped`);
      assert.equal(b.cachedState, undefined, `${b.layer} block: cached state dropped`);
      assert.equal(b.netBufferListChain, null, `${b.layer} block: NBL chain dropped`);
    }
    assert.ok(
      conns.every(([c]) => c.phase === "host"),
      "every connection is back on the host",
    );
    assert.equal(w.target.outstandingReturns, 0, "every BufferedData NBL came back to the target");

    // Every byte is on the host, in order, on the right connection.
    conns.forEach(([c], i) => {
      assert.equal(w.a.readable(c), BYTES_EACH);
      const got: Uint8Array[] = [];
      for (let d = w.a.recv(NOW, c); d !== undefined; d = w.a.recv(NOW, c)) got.push(d.slice());
      assert.deepEqual(Buffer.concat(got), Buffer.from(payload(i)));
    });
    settle(w);
    w.ledger.assertQuiescent();

    // One TerminateOffloadComplete entry per connection, its detail read from the entry.
    const entries = w.manager.log.slice(logBefore).filter((e) => e.op === "TerminateOffloadComplete");
    assert.equal(entries.length, CONNS);
    const byId = new Map(conns.map(([c]) => [c.id, c]));
    for (const e of entries) {
      const c = e.conn === undefined ? undefined : byId.get(e.conn);
      assert.ok(c?.tcp !== undefined, `entry of connection ${String(e.conn)} is on the host`);
      const tcp = c.tcp;
      const want =
        `TcpConnectionEstablished sndUna=${tcp.sndUna} sndNxt=${tcp.sndNxt} sndMax=${tcp.sndNxt} ` +
        `rcvNxt=${tcp.rcvNxt} sendData=0B bufferedData=${BYTES_EACH}B`;
      assert.equal(e.detail, want);
      assert.equal(e.detail, want, "the same text on every read");
      assert.equal(e.at, NOW);
      assert.deepEqual(JSON.parse(JSON.stringify(e)), {
        at: NOW,
        conn: e.conn,
        op: "TerminateOffloadComplete",
        detail: want,
      });
    }
  });
});

void describe("terminates one by one", () => {
  void test("at most terminateCallsInFlight TerminateOffload calls are out; the rest go as completions come", () => {
    const WINDOW = 2;
    const w = chimneyPair({
      tcp: { delayedAck: Duration.ZERO },
      knobs: refuseAll(),
      synQueueLimit: 1 << 16,
      policy: { terminateCallsInFlight: WINDOW },
    });
    const conns = connectPair(w, CONNS);
    for (const [c] of conns) assert.ok(w.manager.offload(c));
    settle(w);
    conns.forEach(([, peer], i) => {
      assert.equal(w.b.send(NOW, peer, payload(i)), BYTES_EACH);
    });
    settle(w);
    // The target takes each call but completes it only when the test lets it.
    const held: OffloadBlockList[] = [];
    const terminate = w.target.terminateOffload.bind(w.target);
    w.target.terminateOffload = (root) => {
      held.push(root);
    };
    let calls = 0;
    let mostOut = 0;
    for (const [c] of conns) assert.ok(w.manager.terminate(c, "test"));
    for (let round = 0; round < 1000 && (held.length > 0 || calls === 0); round++) {
      settle(w);
      mostOut = Math.max(mostOut, held.length);
      const root = held.shift();
      if (root === undefined) break;
      calls++;
      terminate(root);
    }
    settle(w);
    assert.equal(mostOut, WINDOW, "never more calls out than the window, and the window is used");
    assert.equal(calls, Math.ceil(CONNS / TERMINATE_BATCH), "the connections go TERMINATE_BATCH to a call");
    assert.ok(
      conns.every(([c]) => c.phase === "host"),
      "every connection is back on the host",
    );
    conns.forEach(([c], i) => {
      const got: Uint8Array[] = [];
      for (let d = w.a.recv(NOW, c); d !== undefined; d = w.a.recv(NOW, c)) got.push(d.slice());
      assert.deepEqual(Buffer.concat(got), Buffer.from(payload(i)));
    });
    settle(w);
    w.ledger.assertQuiescent();
  });

  void test("terminateCallsInFlight must be a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN])
      assert.throws(
        () => chimneyPair({ policy: { terminateCallsInFlight: bad } }),
        (e: Error) => e.name === "UsageError",
      );
  });
});

/** An ESTABLISHED snapshot (SACK on, no data) whose peer's next byte is `irs + 1`. */
function snapshot(iss: number, irs: number): TcpSnapshot {
  const blank = blankSnapshot(); // the fields not given here: zero, false, undefined, empty
  return {
    constState: {
      ...blank.constState,
      localPort: 80,
      remotePort: 40000 + (iss % 1000),
      sackEnabled: true,
      remoteMss: 1460,
      iss: Seq.of(iss),
      irs: Seq.of(irs),
    },
    cachedState: {
      ...blank.cachedState,
      initialRcvWnd: 65535,
      sendBufferSize: 65536,
      keepAliveIdle: Duration.fromMicros(7_200_000_000),
      keepAliveInterval: Duration.fromMicros(75_000_000),
      keepAliveProbes: 9,
      maxRetransmissions: 15,
      effectiveMss: 1460,
    },
    delegated: {
      ...blank.delegated,
      state: "ESTABLISHED",
      rcvNxt: Seq.add(Seq.of(irs), 1),
      rcvAdv: Seq.add(Seq.of(irs), 1 + 65535),
      sndUna: Seq.add(Seq.of(iss), 1),
      sndNxt: Seq.add(Seq.of(iss), 1),
      sndMax: Seq.add(Seq.of(iss), 1),
      sndWnd: 65535,
      maxSndWnd: 65535,
      sndWl1: Seq.add(Seq.of(irs), 1),
      sndWl2: Seq.add(Seq.of(iss), 1),
      cwnd: 14600,
      ssthresh: 0x7fff_ffff,
      rto: Duration.fromMicros(1_000_000),
    },
  };
}

/** A data segment from the peer of `c` at `off` bytes past the first expected byte. */
function dataAt(c: TcpConnection, irs: number, off: number, data: Uint8Array): TcpRepr {
  return {
    srcPort: c.remotePort,
    dstPort: c.localPort,
    seq: Seq.add(Seq.of(irs), 1 + off),
    ack: c.sndUna,
    flags: TcpFlag.ACK,
    window: 65535,
    urgent: 0,
    mss: undefined,
    windowScale: undefined,
    sackPermitted: false,
    sack: [],
    timestamps: undefined,
    unknownOptions: [],
    payload: data,
  };
}

void describe("imported engines' out-of-order queues", () => {
  void test("each connection's out-of-order data is its own", () => {
    const cfg = tcpConfig({ delayedAck: Duration.ZERO });
    const irs = 0xfffffe00; // the receive sequence space wraps inside the data
    const x = TcpConnection.importState(snapshot(100, irs), NOW, cfg);
    const y = TcpConnection.importState(snapshot(200, irs), NOW, cfg);
    const early = new Uint8Array(300).fill(2);
    x.handleSegment(NOW, dataAt(x, irs, 1000, early));
    x.checkInvariants();
    y.checkInvariants();
    assert.equal(x.status().oooBytes, 300);
    assert.equal(y.status().oooBytes, 0, "another connection's queue stays empty");
    assert.equal(x.readable, 0);
    // y gets its own out-of-order bytes; x's are untouched.
    y.handleSegment(NOW, dataAt(y, irs, 500, new Uint8Array(100).fill(3)));
    assert.equal(y.status().oooBytes, 100);
    assert.equal(x.status().oooBytes, 300);
    // Filling x's hole delivers everything in order.
    x.handleSegment(NOW, dataAt(x, irs, 0, new Uint8Array(1000).fill(1)));
    x.checkInvariants();
    assert.equal(x.status().oooBytes, 0);
    assert.equal(x.readable, 1300);
    const got = new Uint8Array(1300);
    assert.equal(x.recvInto(got), 1300);
    assert.ok(got.subarray(0, 1000).every((v) => v === 1));
    assert.ok(got.subarray(1000).every((v) => v === 2));
    // A fresh import after all that starts empty.
    const z = TcpConnection.importState(snapshot(300, irs), NOW, cfg);
    assert.equal(z.status().oooBytes, 0);
    assert.equal(y.status().oooBytes, 100);
  });
});
