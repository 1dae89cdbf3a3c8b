// The software offload target against a scripted fake host and a peer: one test per MUST rule of
// the chimney spec that concerns the target (named with the rule id), covering every exit of the
// delivery algorithm (spec 14.6). The ledger is quiescent after every test.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration } from "../../src/time/instant.js";
import { Seq } from "../../src/wire/seq.js";
import { nblArray } from "../../src/nbl/chain.js";
import { decodeFrame, emitTcpPacket } from "../../src/wire/packet.js";
import { mac } from "../../src/wire/ethernet.js";
import { TcpFlag, type TcpRepr } from "../../src/wire/tcp-repr.js";
import type { TcpOffloadState } from "../../src/chimney/state.js";
import {
  type MiniportOffloadContext,
  newBlock,
  type NeighborBlock,
  type PathBlock,
  type TcpBlock,
  treeBlocks,
} from "../../src/chimney/block-list.js";
import {
  advance,
  at,
  HOST_IP,
  HOST_PORT,
  offloaded,
  PEER_IP,
  PEER_PORT,
  pattern,
  pump,
  tcpRef,
  terminate,
  type World,
  trackWorlds,
  freeChain,
  upload,
} from "../support/target-testing.js";

const track = trackWorlds();

const count = (w: World, prefix: string): number => w.host.log.filter((l) => l.startsWith(prefix)).length;

void describe("initiate offload (spec 7)", () => {
  void test("OP-1 / BL-3: initiate completes only from process, with the same root", () => {
    const w = track(offloaded({ complete: false }));
    assert.equal(w.host.completed.length, 0);
    assert.equal(w.target.hasWork(), true);
    assert.equal(w.target.pollAt(at(w.now)), at(w.now));
    w.target.process(at(w.now));
    assert.equal(w.host.completed.length, 1);
    assert.equal(w.host.completed[0]?.root, w.root);
    assert.equal(w.target.hasWork(), false);
    w.ctx = w.tcpBlock.miniportOffloadContext?.context as MiniportOffloadContext; // written on success
    upload(w);
  });

  void test("BL-1 / OP-2 / CTX-3: every block gets a status, slots are written on success", () => {
    const w = track(offloaded());
    for (const b of treeBlocks(w.root)) {
      assert.equal(b.status, "NDIS_STATUS_SUCCESS");
      assert.notEqual(b.miniportOffloadContext?.context, null);
    }
    upload(w);
  });

  void test("TR-8 / IO-9 / IO-11 / 7.4: the failure-case tree gets the documented statuses", () => {
    const w = track(offloaded({ initiate: false, target: { limits: { tcp: 1, maxPathMtu: 1500 } } }));
    const base = w.tcpBlock;
    const tcpAt = (port: number): TcpBlock =>
      newBlock<TcpBlock>({
        layer: "tcp",
        stateType: "TcpOffloadState",
        miniportOffloadContext: { context: null },
        ndisOffloadHandle: base.ndisOffloadHandle,
        constState: { ...(base.constState as NonNullable<TcpBlock["constState"]>), localPort: port },
        cachedState: base.cachedState,
        delegatedState: {
          ...(base.delegatedState as NonNullable<TcpBlock["delegatedState"]>),
          sendDataHead: null,
          sendDataTail: null,
          bufferedData: null,
        },
      });
    const t1 = tcpAt(5001);
    const t2 = tcpAt(5002);
    t1.nextBlock = t2;
    const t3 = tcpAt(5003);
    const path = (mtu: number, dep: TcpBlock): PathBlock =>
      newBlock<PathBlock>({
        layer: "path",
        stateType: "Ip4OffloadState",
        miniportOffloadContext: { context: null },
        ndisOffloadHandle: undefined,
        constState: { sourceAddress: HOST_IP, destinationAddress: PEER_IP },
        cachedState: { pathMtu: mtu },
        delegatedState: { headerOnly: true },
        dependentBlockList: dep,
      });
    const p1 = path(1500, t1);
    const p2 = path(9000, t3); // PA-2: larger than supported
    p1.nextBlock = p2;
    const n1 = w.root as NeighborBlock;
    n1.dependentBlockList = p1;
    w.target.initiateOffload(n1);
    w.target.process(at(w.now));
    assert.deepEqual(
      [n1, p1, t1, t2, p2, t3].map((b) => b.status),
      [
        "NDIS_STATUS_OFFLOAD_PARTIAL_SUCCESS",
        "NDIS_STATUS_OFFLOAD_PARTIAL_SUCCESS",
        "NDIS_STATUS_SUCCESS",
        "NDIS_STATUS_OFFLOAD_TCP_ENTRIES",
        "NDIS_STATUS_OFFLOAD_PATH_MTU",
        "NDIS_STATUS_FAILURE",
      ],
    );
    assert.equal(t2.miniportOffloadContext?.context, null); // CTX-3: not written on failure
    assert.equal(t3.miniportOffloadContext?.context, null);
    w.ctx = t1.miniportOffloadContext?.context as MiniportOffloadContext;
    upload(w);
    freeChain(w, base.netBufferListChain);
  });

  void test("IO-12: when the root fails nothing else is attempted", () => {
    const w = track(offloaded({ complete: false, target: { limits: { neighbor: 0 } } }));
    w.target.process(at(w.now));
    const [n, p, t] = treeBlocks(w.root);
    assert.equal(n?.status, "NDIS_STATUS_OFFLOAD_NEIGHBOR_ENTRIES");
    assert.equal(p?.status, "NDIS_STATUS_FAILURE");
    assert.equal(t?.status, "NDIS_STATUS_FAILURE");
    assert.equal(w.target.connectionCount, 0);
  });

  void test("NB-2: a non-zero DlSourceAddress without configurable MACs fails the neighbor", () => {
    const w = track(offloaded({ initiate: false, target: { configurableMacs: false } }));
    (w.root as NeighborBlock).constState = { dlSourceAddress: mac("02:aa:00:00:00:01"), vlanId: 0 };
    w.host.initiate(w.root);
    w.target.process(at(w.now));
    assert.equal(w.root.status, "NDIS_STATUS_OFFLOAD_HW_ADDRESS_ENTRIES");
  });

  void test("VL-2: a neighbor VLAN that matches no interface VLAN fails with VLAN_MISMATCH", () => {
    const w = track(offloaded({ initiate: false, target: { interfaceVlans: [10, 20] } }));
    (w.root as NeighborBlock).constState = { dlSourceAddress: new Uint8Array(6), vlanId: 30 };
    w.host.initiate(w.root);
    w.target.process(at(w.now));
    assert.equal(w.root.status, "NDIS_STATUS_OFFLOAD_VLAN_MISMATCH");
  });

  void test("TR-4 / TR-5 / TR-6: a placeholder root and a linker add a connection to an offloaded path", () => {
    const w = track(offloaded());
    const pathCtx = w.root.dependentBlockList?.miniportOffloadContext?.context ?? null;
    const base = w.tcpBlock;
    const t = newBlock<TcpBlock>({
      layer: "tcp",
      stateType: "TcpOffloadState",
      miniportOffloadContext: { context: null },
      ndisOffloadHandle: base.ndisOffloadHandle,
      constState: { ...(base.constState as NonNullable<TcpBlock["constState"]>), localPort: 6000 },
      cachedState: base.cachedState,
      delegatedState: {
        ...(base.delegatedState as NonNullable<TcpBlock["delegatedState"]>),
        sendDataHead: null,
        sendDataTail: null,
        bufferedData: null,
      },
    });
    const linker = newBlock<PathBlock>({
      layer: "path",
      stateType: "Ip4OffloadState",
      miniportOffloadContext: { context: pathCtx },
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
      dependentBlockList: t,
    });
    const placeholder = newBlock<NeighborBlock>({
      layer: "neighbor",
      stateType: "NeighborOffloadState",
      miniportOffloadContext: null,
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
      dependentBlockList: linker,
    });
    w.target.initiateOffload(placeholder);
    w.target.process(at(w.now));
    assert.deepEqual(
      [placeholder.status, linker.status, t.status],
      ["NDIS_STATUS_SUCCESS", "NDIS_STATUS_SUCCESS", "NDIS_STATUS_SUCCESS"],
    );
    assert.equal(w.target.connectionCount, 2);
    const second = t.miniportOffloadContext?.context as MiniportOffloadContext;
    const b2 = tcpRef(second);
    w.target.terminateOffload(b2);
    w.target.process(at(w.now));
    assert.equal(b2.status, "NDIS_STATUS_SUCCESS");
    upload(w);
  });

  void test("IO-1 / IO-19 / IO-21: buffered data is copied before the offload completes", () => {
    // The host lends BufferedData only during the initiate call and frees it at completion;
    // the bytes still reach the application afterwards, so the target copied them.
    const w = track(offloaded({ buffered: 3000 }));
    assert.equal(w.tcpBlock.status, "NDIS_STATUS_SUCCESS");
    w.host.post(w.ctx, 3000);
    pump(w);
    assert.deepEqual(w.host.stream, [...pattern(3000, 1)]);
    upload(w);
  });

  void test("IO-20 / IO-10: no memory for the BufferedData copy fails the block; the host keeps its send data", () => {
    const w = track(
      offloaded({ buffered: 3000, unacked: 500, complete: false, target: { limits: { bufferBytes: 100 } } }),
    );
    const chain = w.tcpBlock.netBufferListChain;
    assert.ok(chain !== null);
    const status = chain.status;
    w.target.process(at(w.now));
    assert.equal(w.tcpBlock.status, "NDIS_STATUS_FAILURE");
    assert.equal(w.ledger.ownerOf(chain), "host");
    assert.equal(chain.status, status); // IO-10: untouched
    assert.equal(w.host.sendCompleted.length, 0);
    freeChain(w, chain);
    const bd = w.tcpBlock.delegatedState?.bufferedData ?? null;
    if (bd !== null) w.ledger.free(bd, "host");
  });

  void test("IO-22 / IO-23: handed-over data waits for a request and precedes newer data", () => {
    const w = track(offloaded({ buffered: 2000 }));
    w.peer.engine.send(pattern(1000, 9));
    pump(w);
    assert.equal(count(w, "indicate "), 0);
    w.host.post(w.ctx, 3000);
    pump(w);
    assert.deepEqual(w.host.stream, [...pattern(2000, 1), ...pattern(1000, 9)]);
    upload(w);
  });

  void test("IO-13 / IO-14 / IO-15 / IO-17: handed-over send data is sent and completed when ACKed", () => {
    const w = track(offloaded({ unacked: 3000 }));
    advance(w, 1500); // the retransmission timer handed over resends it
    assert.deepEqual(w.peer.read, [...pattern(3000, 2)]);
    assert.equal(w.host.sendCompleted.length, 1);
    assert.equal(w.host.sendCompleted[0]?.status, "NDIS_STATUS_SUCCESS");
    assert.equal(w.host.sendCompleted[0]?.bytesTransferred, 3000);
    upload(w);
  });
});

void describe("handed-over send data in the retransmission range (spec 7.6)", () => {
  /** The host's state with SndNxt moved back to SndUna and SndMax to SndUna + `sent`. */
  const rewound =
    (sent: number) =>
    (s: TcpOffloadState): TcpOffloadState => ({
      ...s,
      delegatedState: {
        ...s.delegatedState,
        sndNxt: s.delegatedState.sndUna,
        sndMax: Seq.add(s.delegatedState.sndUna, sent),
      },
    });
  const firstData = (w: World): TcpRepr | undefined => w.peer.seen.find((x) => x.payload.length > 0);

  void test("IO-14: handed-over data between SndNxt and SndMax goes out before data sent after the offload", () => {
    const w = track(offloaded({ unacked: 3000, editState: rewound(3000) }));
    const una = w.tcpBlock.delegatedState?.sndUna;
    w.host.send(w.ctx, pattern(500, 47));
    advance(w, 100); // well before any retransmission timer
    assert.equal(firstData(w)?.seq, una);
    assert.deepEqual(w.peer.read, [...pattern(3000, 2), ...pattern(500, 47)]);
    upload(w);
  });

  void test("IO-15: handed-over data beyond SndMax goes out after the SndNxt..SndMax range", () => {
    const w = track(offloaded({ unacked: 3000, editState: rewound(1000) }));
    const una = w.tcpBlock.delegatedState?.sndUna;
    advance(w, 100);
    assert.equal(firstData(w)?.seq, una);
    assert.deepEqual(w.peer.read, [...pattern(3000, 2)]);
    upload(w);
  });
});

void describe("send path (spec 13.4, 13.5)", () => {
  void test("SD-1 / SD-2 / SD-3 / SD-6: sends pend, go out FIFO and complete in order", () => {
    const w = track(offloaded());
    const a = pattern(1000, 3);
    const b = pattern(2000, 4);
    const c = pattern(10, 5);
    const nbls = w.host.send(w.ctx, a, b);
    w.host.send(w.ctx, c);
    advance(w, 200);
    assert.deepEqual(w.peer.read, [...a, ...b, ...c]);
    assert.deepEqual(
      w.host.sendCompleted.map((n) => n.id),
      [...nbls.map((n) => n.id), w.host.sendCompleted[2]?.id],
    );
    assert.deepEqual(
      w.host.sendCompleted.map((n) => n.bytesTransferred),
      [1000, 2000, 10],
    );
    upload(w);
  });

  void test("13.5: a send completes only when ACKed, and its NB is advanced by the bytes", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    const [n] = w.host.send(w.ctx, pattern(500, 6));
    pump(w);
    assert.equal(w.host.sendCompleted.length, 0);
    w.peer.deliverIn = true;
    advance(w, 1500);
    assert.equal(w.host.sendCompleted[0], n);
    assert.equal(n?.status, "NDIS_STATUS_SUCCESS");
    const view = w.ledger.view(n, "host", "test");
    assert.equal(view[0]?.dataLength, 0);
    assert.equal(view[0]?.dataOffset, 500);
    upload(w);
  });

  void test("SD-8 / SD-9: IPv4 identification from 0x8000-0xFFFF and DF set", () => {
    const w = track(offloaded());
    w.host.send(w.ctx, pattern(5000, 7));
    pump(w);
    assert.ok(w.peer.ipIdents.length >= 4);
    for (const id of w.peer.ipIdents) assert.ok(id >= 0x8000 && id <= 0xffff, `ident ${id}`);
    assert.ok(w.peer.dfBits.every((x) => x));
    upload(w);
  });
});

void describe("delivery algorithm (spec 14.6, DA-1, RX-2)", () => {
  void test("E1.2 -> A1/A2: a posted request is filled and completed (RQ-1, RQ-3 FIFO)", () => {
    const w = track(offloaded());
    w.host.post(w.ctx, 100);
    w.host.post(w.ctx, 100);
    w.peer.engine.send(pattern(200, 8));
    pump(w);
    assert.deepEqual(
      w.host.recvCompleted.map((n) => n.bytesTransferred),
      [100, 100],
    );
    assert.deepEqual(w.host.stream, [...pattern(200, 8)]);
    upload(w);
  });

  void test("E1.3 -> B2 / B3 success / B4: unrequested data is indicated and returned later (RR-1, TM-22)", () => {
    const w = track(offloaded());
    w.peer.engine.send(pattern(500, 9));
    pump(w);
    // RI-1 / CTX-5: the checking host rejects an indication NBL that is part of a list, or one
    // that does not carry the handle of a completed offload.
    assert.equal(count(w, "indicate 500 took 500"), 1);
    assert.equal(w.target.outstandingReturns, 1);
    w.host.returnIndicated();
    assert.equal(w.target.outstandingReturns, 0);
    assert.deepEqual(w.host.stream, [...pattern(500, 9)]);
    upload(w);
  });

  void test("RI-3 / B6 / E1.3: refused data is not indicated again until a request is posted", () => {
    const w = track(offloaded());
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(500, 10));
    pump(w);
    w.peer.engine.send(pattern(500, 11));
    advance(w, 200);
    // Both arrived (and were acknowledged); the refused bytes stay in the engine, keeping the
    // window closed by them until they are delivered.
    assert.equal(w.target.engineOf(w.ctx)?.readable, 1000);
    assert.equal(count(w, "indicate "), 1);
    w.host.post(w.ctx, 1000);
    pump(w);
    assert.deepEqual(w.host.stream, [...pattern(500, 10), ...pattern(500, 11)]);
    assert.equal(w.host.recvCompleted[0]?.bytesTransferred, 1000);
    upload(w);
  });

  for (const moderation of [false, true]) {
    void test(`receive moderation ${moderation ? "on: a batch of segments is one indication, from process" : "off: each segment is indicated as it arrives"}`, () => {
      const w = track(offloaded({ target: { receiveModeration: moderation } }));
      w.peer.engine.send(pattern(4000, 21));
      const now = at(w.now);
      let frames = 0;
      for (let s = w.peer.engine.pollTransmit(now); s !== undefined; s = w.peer.engine.pollTransmit(now)) {
        w.target.handleFrame(now, w.peer.frameOf(s));
        frames++;
      }
      assert.ok(frames >= 2, `${frames} segments`);
      assert.equal(count(w, "indicate"), moderation ? 0 : frames, "indications made by handleFrame");
      w.target.process(now);
      assert.equal(count(w, "indicate"), moderation ? 1 : frames);
      pump(w);
      assert.deepEqual(w.host.stream, [...pattern(4000, 21)]);
      upload(w);
    });
  }

  void test("RI-3 / DA-4 / spec 20-25: a zero-byte request re-enables indications: the run that completes it goes on to indicate", () => {
    const w = track(offloaded());
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(300, 12));
    pump(w);
    w.host.indicatePolicy = (n) => n;
    w.host.post(w.ctx, 0);
    pump(w);
    assert.equal(w.host.recvCompleted[0]?.bytesTransferred, 0);
    assert.equal(count(w, "indicate 300 took 300"), 1);
    assert.deepEqual(w.host.stream, [...pattern(300, 12)]);
    upload(w);
  });

  void test("14.4 / spec 20-26: a partially accepted indication keeps the remainder for a request", () => {
    const w = track(offloaded());
    w.host.indicatePolicy = (n) => Math.min(n, 100);
    w.peer.engine.send(pattern(500, 13));
    pump(w);
    w.host.post(w.ctx, 1000);
    pump(w);
    assert.deepEqual(w.host.stream, [...pattern(500, 13)]);
    assert.equal(w.host.recvCompleted[0]?.bytesTransferred, 400);
    upload(w);
  });

  void test("RQ-6 / A6: a non-push request completes only when full", () => {
    const w = track(offloaded());
    w.host.post(w.ctx, 1000, { noPush: true });
    w.peer.engine.send(pattern(600, 14));
    pump(w);
    advance(w, 1000);
    assert.equal(w.host.recvCompleted.length, 0);
    w.peer.engine.send(pattern(400, 15));
    pump(w);
    assert.equal(w.host.recvCompleted[0]?.bytesTransferred, 1000);
    upload(w);
  });

  void test("A7: PSH completes a partially filled push-mode request at once", () => {
    const w = track(offloaded());
    w.host.post(w.ctx, 1000);
    w.peer.engine.send(pattern(100, 16)); // the engine sets PSH on the segment that empties its queue
    pump(w);
    assert.equal(w.host.recvCompleted[0]?.bytesTransferred, 100);
    upload(w);
  });

  void test("PT-1 / PT-2 / E3 / P2: the push timer completes a partial request and restarts on new data", () => {
    const w = track(offloaded({ target: { pushTimeout: Duration.fromMillis(500) } }));
    w.peer.deliverIn = false;
    w.host.post(w.ctx, 1000);
    const s = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, payload: pattern(100, 17) }));
    advance(w, 300);
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: Seq.add(s.sndNxt, 100), payload: pattern(100, 18) }));
    advance(w, 400); // 700 ms after the first byte, 400 after the restart
    assert.equal(w.host.recvCompleted.length, 0);
    advance(w, 150);
    assert.equal(w.host.recvCompleted[0]?.bytesTransferred, 200);
    upload(w);
  });

  void test("P1: a push timer with no partial request does nothing", () => {
    const w = track(offloaded({ target: { pushTimeout: Duration.fromMillis(100) } }));
    w.peer.deliverIn = false;
    w.host.post(w.ctx, 1000, { noPush: true });
    const s = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, payload: pattern(100, 19) }));
    advance(w, 500);
    assert.equal(w.host.recvCompleted.length, 0);
    upload(w);
  });

  void test("C-8 / C-9 / RC-1 / DA-2 / DA-4 / C-12 / B5: a request posted inside a completion is served after it returns", () => {
    const w = track(offloaded());
    let posted = false;
    w.host.onReceiveComplete = () => {
      if (posted) return;
      posted = true;
      w.host.post(w.ctx, 1000);
      assert.equal(w.host.recvCompleted.length, 1); // nothing nested
    };
    w.host.post(w.ctx, 100);
    w.peer.engine.send(pattern(300, 20));
    pump(w);
    assert.deepEqual(w.host.stream, [...pattern(300, 20)]);
    assert.deepEqual(
      w.host.recvCompleted.map((n) => n.bytesTransferred),
      [100, 200],
    );
    upload(w);
  });

  void test("C-9: a zero-byte request posted inside a receive completion is completed after that call returned", () => {
    const w = track(offloaded());
    let inside: number | undefined;
    w.host.onReceiveComplete = () => {
      if (inside !== undefined) return;
      inside = w.host.recvCompleted.length;
      w.host.post(w.ctx, 0);
      assert.equal(w.host.recvCompleted.length, inside, "nothing completed from within the completion");
    };
    w.host.post(w.ctx, 100);
    w.peer.engine.send(pattern(100, 22));
    pump(w);
    assert.deepEqual(w.host.stream, [...pattern(100, 22)]);
    assert.deepEqual(
      w.host.recvCompleted.map((n) => n.bytesTransferred),
      [100, 0],
    );
    upload(w);
  });

  void test("C-12: a zero-byte request posted inside an indication is served by the same delivery run once the indication returned", () => {
    const w = track(offloaded());
    let posted = false;
    w.host.indicatePolicy = (n) => {
      if (!posted) {
        posted = true;
        w.host.post(w.ctx, 0);
        assert.equal(w.host.recvCompleted.length, 0, "nothing completed from within the indication");
      }
      return n;
    };
    w.peer.engine.send(pattern(200, 23));
    pump(w);
    assert.equal(count(w, "indicate 200 took 200"), 1);
    assert.deepEqual(
      w.host.recvCompleted.map((n) => n.bytesTransferred),
      [0],
    );
    upload(w);
  });

  void test("14.5: RcvIndicationSize bounds each indication", () => {
    const w = track(offloaded({ rcvIndicationSize: 100 }));
    w.peer.engine.send(pattern(350, 21));
    pump(w);
    assert.deepEqual(
      w.host.log.filter((l) => l.startsWith("indicate ")),
      ["indicate 100 took 100", "indicate 100 took 100", "indicate 100 took 100", "indicate 50 took 50"],
    );
    upload(w);
  });
});

void describe("FIN, RST and disconnect (spec 16)", () => {
  void test("FN-1: the disconnect indication waits until the data before the FIN is consumed", () => {
    const w = track(offloaded());
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(500, 22));
    w.peer.engine.close();
    pump(w);
    assert.equal(w.host.events.length, 0);
    w.host.post(w.ctx, 500);
    pump(w);
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateDisconnect" }]);
    const i = w.host.log.indexOf("event TcpIndicateDisconnect");
    assert.ok(i > w.host.log.findIndex((l) => l.startsWith("recv-complete")));
    upload(w);
  });

  void test("FN-2: a request posted after the disconnect indication completes with INVALID_STATE", () => {
    const w = track(offloaded());
    w.peer.engine.close();
    pump(w);
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateDisconnect" }]);
    w.host.post(w.ctx, 100);
    assert.equal(w.host.recvCompleted[0]?.status, "NDIS_STATUS_INVALID_STATE");
    upload(w);
  });

  void test("RST-1: an acceptable RST aborts; sends and receives complete with REQUEST_ABORTED", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    w.host.send(w.ctx, pattern(100, 23));
    w.host.post(w.ctx, 100);
    pump(w);
    const s = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, flags: TcpFlag.RST }));
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateAbort" }]);
    assert.equal(w.host.sendCompleted[0]?.status, "NDIS_STATUS_REQUEST_ABORTED");
    assert.equal(w.host.recvCompleted[0]?.status, "NDIS_STATUS_REQUEST_ABORTED");
    // DC-3 / FN-3: the aborted connection is still held for the host's terminate.
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
  });

  void test("DC-4 / DC-5 / DC-1: abortive disconnect aborts sends, sends one RST, completes the NBL", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    w.host.send(w.ctx, pattern(100, 24));
    pump(w);
    const d = w.host.disconnect(w.ctx, "abortive");
    assert.equal(w.host.discCompleted.length, 0); // DC-1: later
    pump(w);
    assert.equal(w.host.sendCompleted[0]?.status, "NDIS_STATUS_REQUEST_ABORTED");
    assert.equal(w.host.discCompleted[0], d);
    assert.equal(d.status, "NDIS_STATUS_SUCCESS");
    assert.equal(w.peer.seen.filter((s) => (s.flags & TcpFlag.RST) !== 0).length, 1);
    upload(w);
  });

  void test("DC-6: after an abortive disconnect nothing is processed or acknowledged", () => {
    const w = track(offloaded());
    w.host.disconnect(w.ctx, "abortive");
    pump(w);
    const before = w.peer.seen.length;
    const s = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, payload: pattern(50, 25) }));
    pump(w);
    assert.equal(w.peer.seen.length, before);
    assert.equal(count(w, "indicate "), 0);
    upload(w);
  });

  void test("DC-7 / DC-8: graceful disconnect sends its data then FIN; sends complete first", () => {
    const w = track(offloaded());
    const a = pattern(700, 26);
    const b = pattern(300, 27);
    w.host.send(w.ctx, a);
    const d = w.host.disconnect(w.ctx, "graceful", b);
    pump(w);
    assert.deepEqual(w.peer.read, [...a, ...b]);
    assert.equal(w.peer.engine.state, "CLOSE-WAIT");
    const iSend = w.host.log.findIndex((l) => l.startsWith("send-complete"));
    const iDisc = w.host.log.findIndex((l) => l.startsWith("disconnect-complete"));
    assert.ok(iSend >= 0 && iSend < iDisc);
    assert.equal(d.status, "NDIS_STATUS_SUCCESS");
    assert.equal(d.bytesTransferred, 300);
    upload(w);
  });

  void test("DC-2: a disconnect is refused only while uploading or aborted", () => {
    const w = track(offloaded());
    w.target.terminateOffload(tcpRef(w.ctx));
    const d = w.host.disconnect(w.ctx, "graceful");
    assert.equal(d.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    w.target.process(at(w.now));
    const b = w.host.completed.at(-1)?.root as TcpBlock;
    freeChain(w, b.netBufferListChain);
  });

  void test("EV-3: a connection entering TIME_WAIT asks for an upload", () => {
    const w = track(offloaded());
    w.host.disconnect(w.ctx, "graceful");
    pump(w);
    w.peer.engine.close();
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "TIME-WAIT");
    assert.ok(w.host.events.some((e) => e.type === "TcpIndicateRetrieve"));
    upload(w);
  });

  void test("LAST-ACK -> CLOSED asks for the upload with UploadRequested; the terminate reports CLOSED", () => {
    const w = track(offloaded());
    w.peer.engine.close(); // the peer's FIN: CLOSE-WAIT at the target
    pump(w);
    // EV-2: a half-closed (CLOSE-WAIT) connection is not offered for upload.
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateDisconnect" }]);
    w.host.disconnect(w.ctx, "graceful"); // our FIN: LAST-ACK until the peer ACKs it
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "CLOSED");
    assert.deepEqual(w.host.events, [
      { type: "TcpIndicateDisconnect" },
      { type: "TcpIndicateRetrieve", reason: "UploadRequested" },
    ]);
    const iDisc = w.host.log.findIndex((l) => l.startsWith("disconnect-complete"));
    assert.ok(iDisc >= 0, "the graceful disconnect completed");
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
  });

  void test("EV-0 / spec 20-17: retransmission exhaustion requests upload with TimeoutExpiration", () => {
    const w = track(offloaded({ target: { maxRetransmissions: 2 } }));
    w.peer.deliverIn = false;
    w.host.send(w.ctx, pattern(100, 28));
    advance(w, 20_000, 100);
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "TimeoutExpiration" }]);
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
    assert.equal(w.host.sendCompleted[0]?.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
  });
});

void describe("terminate offload (spec 11)", () => {
  void test("TM-9 / RQ-4 / TM-14..TM-16: receives complete, unacked sends return in order with SndUna mapping", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    const sent = w.host.send(w.ctx, pattern(100, 29), pattern(200, 30), pattern(300, 31));
    w.host.post(w.ctx, 100);
    pump(w);
    const b = terminate(w);
    assert.equal(w.host.recvCompleted[0]?.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    const chain = nblArray(b.netBufferListChain);
    assert.deepEqual(chain, sent);
    const d = b.delegatedState;
    assert.ok(d !== undefined);
    assert.equal(d.sendDataHead, sent[0]);
    assert.equal(d.sendDataTail, sent[2]);
    assert.equal(Seq.delta(d.sndMax, d.sndUna), 600);
    for (const n of chain) assert.equal(w.ledger.ownerOf(n), "host");
    freeChain(w, b.netBufferListChain);
  });

  void test("TM-16 / spec 20-22: a partly acknowledged NBL comes back advanced to SndUna", () => {
    const w = track(offloaded());
    const [n] = w.host.send(w.ctx, pattern(3000, 32));
    const now = at(w.now);
    const first = w.target.pollTransmit(now);
    assert.ok(first !== undefined);
    w.peer.deliverIn = false;
    pump(w); // the rest is lost
    w.peer.deliverIn = true;
    w.peer.engine.handleSegment(now, parseSeg(first));
    w.now += 50;
    const later = at(w.now);
    w.peer.engine.handleTimeout(later); // its delayed ACK
    for (let s = w.peer.engine.pollTransmit(later); s !== undefined; s = w.peer.engine.pollTransmit(later)) {
      w.target.handleFrame(later, w.peer.frameOf(s));
    }
    const b = terminate(w);
    const d = b.delegatedState;
    assert.ok(d !== undefined && n !== undefined);
    assert.equal(d.sendDataHead, n);
    const view = w.ledger.view(n, "host", "test");
    const acked = 3000 - (view[0]?.dataLength ?? 0);
    assert.ok(acked > 0 && acked < 3000);
    // SndUna is the first byte of the returned chain; SndMax lies within it (spec 7.6).
    assert.equal(Seq.delta(d.sndUna, parseSeg(first).seq), acked);
    assert.ok(Seq.delta(d.sndMax, d.sndUna) <= 3000 - acked);
    freeChain(w, b.netBufferListChain);
  });

  void test("TM-17 / BL-2: no send data returned means a null chain", () => {
    const w = track(offloaded());
    const b = upload(w);
    assert.equal(b.netBufferListChain, null);
    assert.equal(b.delegatedState?.sendDataHead, null);
  });

  void test("TM-19 / TM-20 / TM-21: undelivered data returns as BufferedData the host gives back later", () => {
    const w = track(offloaded());
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(700, 33));
    pump(w);
    upload(w);
    assert.deepEqual(w.host.uploadedBuffered, [...pattern(700, 33)]);
    assert.equal(w.target.outstandingReturns, 0);
  });

  void test("TM-19 / TM-20 / TM-21: a connection closed by a FIN exchange still returns the refused data as BufferedData", () => {
    const w = track(offloaded());
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(700, 39));
    w.peer.engine.close(); // data, then the peer's FIN: CLOSE-WAIT at the target
    pump(w);
    assert.equal(count(w, "indicate 700 took 0"), 1);
    w.host.disconnect(w.ctx, "graceful"); // our FIN: LAST-ACK, CLOSED once the peer ACKs it
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "CLOSED");
    assert.deepEqual(w.host.stream, []);
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
    // Exactly the refused bytes, in order, and the NBLs came back (TM-20).
    assert.deepEqual(w.host.uploadedBuffered, [...pattern(700, 39)]);
    assert.deepEqual(w.host.stream, [...pattern(700, 39)]);
    assert.equal(w.target.outstandingReturns, 0);
  });

  void test("TM-11: an owed ACK is on the wire when the terminate completes", () => {
    const w = track(offloaded());
    w.peer.engine.send(pattern(10, 34));
    w.host.post(w.ctx, 10);
    pump(w);
    const rcvNxt = w.target.engineOf(w.ctx)?.rcvNxt;
    assert.ok(rcvNxt !== undefined);
    const isAck = (s: TcpRepr): boolean =>
      s.ack === rcvNxt && (s.flags & TcpFlag.ACK) !== 0 && s.payload.length === 0;
    assert.equal(w.peer.seen.some(isAck), false); // delayed
    upload(w);
    // The fake host saw what was queued for the wire when the completion arrived.
    assert.equal(w.host.queuedAtTerminate.length, 1);
    assert.ok(
      w.host.queuedAtTerminate[0]?.some(isAck),
      "the owed ACK was not on the wire when the terminate completed",
    );
    pump(w);
    assert.equal(w.peer.seen.some(isAck), true);
  });

  void test("TM-23 / TM-25: segments during and after a terminate go up the non-offload path", () => {
    const w = track(offloaded());
    w.target.terminateOffload(tcpRef(w.ctx));
    w.peer.engine.send(pattern(50, 35));
    pump(w, 1);
    assert.equal(w.host.upFrames.length, 1);
    const b = w.host.completed.at(-1)?.root as TcpBlock;
    freeChain(w, b.netBufferListChain);
    w.target.handleFrame(at(w.now), w.peer.raw({ payload: pattern(5, 36) }));
    assert.equal(w.host.upFrames.length, 2);
  });

  void test("TM-26: out-of-order (SACKed-only) data is not returned", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    const s = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: Seq.add(s.sndNxt, 100), payload: pattern(50, 37) }));
    const b = upload(w);
    assert.equal(b.delegatedState?.bufferedData, null);
    assert.equal(b.delegatedState?.rcvNxt, s.sndNxt);
  });

  void test("ST-5 / ST-8: terminate fills the delegated state; idle timers are not running", () => {
    const w = track(offloaded());
    const b = upload(w);
    const d = b.delegatedState;
    assert.ok(d !== undefined);
    assert.equal(d.state, "TcpConnectionEstablished");
    assert.equal(d.retransmitTimeoutDelta, undefined);
    assert.equal(d.keepAliveTimeoutDelta, undefined);
    assert.equal(d.rcvNxt, w.peer.engine.status().sndNxt);
  });
});

void describe("query, update, invalidate (spec 8-10)", () => {
  void test("QY-1 / ST-7: query reports current values and SendBacklogSize unsupported", () => {
    const w = track(offloaded({ target: { sendBacklog: false } }));
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(400, 38));
    pump(w);
    const q = tcpRef(w.ctx);
    w.target.queryOffload(q);
    w.target.process(at(w.now));
    assert.equal(q.status, "NDIS_STATUS_SUCCESS");
    assert.equal(q.delegatedState?.sendBacklogSize, 0xffff_ffff);
    assert.equal(q.delegatedState?.receiveBacklogSize, 400);
    assert.equal(q.delegatedState?.rcvNxt, w.peer.engine.status().sndNxt);
    upload(w);
  });

  void test("UP-6 / IV-7 / QY-2: unknown contexts complete with FAILURE", () => {
    const w = track(offloaded());
    for (const op of ["query", "update", "invalidate"] as const) {
      const b = tcpRef(999 as MiniportOffloadContext);
      if (op === "query") w.target.queryOffload(b);
      else if (op === "update") w.target.updateOffload(b);
      else w.target.invalidateOffload(b);
      w.target.process(at(w.now));
      assert.equal(b.status, "NDIS_STATUS_FAILURE", op);
    }
    upload(w);
  });

  void test("UP-3: a path MTU update clamps the segment size", () => {
    const w = track(offloaded());
    const pathCtx = w.root.dependentBlockList?.miniportOffloadContext?.context ?? null;
    const up = newBlock<PathBlock>({
      layer: "path",
      stateType: "Ip4OffloadCachedState",
      miniportOffloadContext: { context: pathCtx },
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: { pathMtu: 1000 },
      delegatedState: undefined,
    });
    w.target.updateOffload(up);
    w.target.process(at(w.now));
    assert.equal(up.status, "NDIS_STATUS_SUCCESS");
    w.host.send(w.ctx, pattern(5000, 39));
    pump(w);
    const max = Math.max(...w.peer.seen.map((s) => s.payload.length));
    assert.ok(max <= 960 && max > 0, `largest payload ${max}`);
    upload(w);
  });

  void test("UP-2: UPDATE_RCV_WND advertises the new window", () => {
    const w = track(offloaded());
    const ca = w.tcpBlock.cachedState as NonNullable<TcpBlock["cachedState"]>;
    const before = w.peer.seen.length;
    const up = tcpRef(w.ctx, {
      stateType: "TcpOffloadCachedState",
      cachedState: { ...ca, initialRcvWnd: ca.initialRcvWnd * 4, updateRcvWnd: true },
    });
    w.target.updateOffload(up);
    w.target.process(at(w.now));
    pump(w);
    assert.equal(up.status, "NDIS_STATUS_SUCCESS");
    assert.ok(w.peer.seen.length > before);
    assert.ok(w.peer.engine.sndWnd > ca.initialRcvWnd, `peer sees window ${w.peer.engine.sndWnd}`);
    upload(w);
  });

  void test("UP-4 / IT-1 / 9.3: re-linking a path to a new neighbor changes the next hop", () => {
    const w = track(offloaded());
    const mac2 = mac("02:00:00:00:00:99");
    const n2 = newBlock<NeighborBlock>({
      layer: "neighbor",
      stateType: "NeighborOffloadState",
      miniportOffloadContext: { context: null },
      ndisOffloadHandle: undefined,
      constState: { dlSourceAddress: new Uint8Array(6), vlanId: 0 },
      cachedState: { dlDestinationAddress: mac2, hostReachabilityDelta: Duration.ZERO },
      delegatedState: { nicReachabilityDelta: Duration.ZERO },
    });
    w.target.initiateOffload(n2);
    w.target.process(at(w.now));
    const pathRef = newBlock<PathBlock>({
      layer: "path",
      stateType: "Ip4OffloadState",
      miniportOffloadContext: { context: w.root.dependentBlockList?.miniportOffloadContext?.context ?? null },
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
    });
    const link = newBlock<NeighborBlock>({
      layer: "neighbor",
      stateType: "NeighborOffloadState",
      miniportOffloadContext: { context: n2.miniportOffloadContext?.context ?? null },
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
      dependentBlockList: pathRef,
    });
    w.target.updateOffload(link);
    w.target.process(at(w.now));
    w.host.send(w.ctx, pattern(10, 40));
    const f = w.target.pollTransmit(at(w.now));
    assert.ok(f !== undefined);
    assert.deepEqual(f.subarray(0, 6), mac2);
    pump(w);
    upload(w);
  });

  void test("IV-3 / IV-4: invalidated state stops sending and requests upload with InvalidState", () => {
    const w = track(offloaded());
    const inv = newBlock<NeighborBlock>({
      layer: "neighbor",
      stateType: "NeighborOffloadState",
      miniportOffloadContext: { context: w.root.miniportOffloadContext?.context ?? null },
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
    });
    w.target.invalidateOffload(inv);
    w.target.process(at(w.now));
    assert.equal(inv.status, "NDIS_STATUS_SUCCESS");
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "InvalidState" }]);
    const before = w.peer.seen.length;
    w.host.send(w.ctx, pattern(100, 41));
    pump(w);
    assert.equal(w.peer.seen.length, before);
    assert.equal(w.host.sendCompleted[0]?.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS"); // TM-27
    upload(w); // IV-5: the invalidated objects are still held until this terminate
  });
});

void describe("non-standard traffic and reachability (spec 15, 16.5)", () => {
  void test("15.3 / EV-1: valid urgent data requests upload and goes up after the terminate", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    const s = w.peer.engine.status();
    const before = w.peer.seen.length;
    w.target.handleFrame(
      at(w.now),
      w.peer.raw({ seq: s.sndNxt, flags: TcpFlag.ACK | TcpFlag.URG, urgent: 1, payload: pattern(10, 42) }),
    );
    pump(w);
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "ReceivedUrgentData" }]);
    assert.equal(w.peer.seen.length, before); // not acknowledged
    assert.equal(w.host.upFrames.length, 0);
    upload(w);
    assert.equal(w.host.upFrames.length, 1);
  });

  void test("NS-2 / BR-0: an in-order SYN draws a challenge ACK and uploads the connection in the CLOSED state", () => {
    const w = track(offloaded());
    const s = w.peer.engine.status();
    const before = w.peer.seen.length;
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, flags: TcpFlag.SYN }));
    pump(w);
    // BR-0 (spec 17.11): every SYN, this one too, is answered by an ACK (RFC 5961 4.2).
    const answers = w.peer.seen.slice(before);
    assert.deepEqual(
      answers.map((g) => [g.flags, g.ack, g.payload.length]),
      [[TcpFlag.ACK, s.sndNxt, 0]],
    );
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "UploadRequested" }]);
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
  });

  void test("NS-4: non-TCP frames and other connections go up the non-offload path", () => {
    const w = track(offloaded());
    const other = emitTcpPacket({
      ip: { src: PEER_IP, dst: HOST_IP },
      tcp: { ...parseSeg(w.peer.raw({})), srcPort: PEER_PORT + 1, dstPort: HOST_PORT },
      ethernet: { src: mac("02:00:00:00:00:02"), dst: mac("02:00:00:00:00:01") },
    });
    w.target.handleFrame(at(w.now), other);
    w.target.handleFrame(at(w.now), new Uint8Array(20));
    assert.equal(w.host.upFrames.length, 2);
    upload(w);
  });

  void test("FW-3 / FW-5: forwarded segments are processed and completed", () => {
    const w = track(offloaded());
    const s = w.peer.engine.status();
    const frame = w.peer.raw({ seq: s.sndNxt, flags: TcpFlag.ACK | TcpFlag.PSH, payload: pattern(40, 43) });
    const segment = frame.slice(14 + 20); // without the Ethernet and IPv4 headers
    w.peer.deliverIn = false;
    const n = w.host.forward(w.ctx, segment);
    w.target.process(at(w.now));
    assert.equal(w.host.fwdCompleted[0], n);
    assert.equal(n.status, "NDIS_STATUS_SUCCESS");
    assert.deepEqual(w.host.stream, [...pattern(40, 43)]);
    upload(w);
  });

  void test("NR-3: a neighbor stale on both sides triggers one reachability query", () => {
    const w = track(offloaded({ target: { nceStale: Duration.fromSeconds(1) } }));
    w.now += 2000;
    w.host.send(w.ctx, pattern(10, 44));
    pump(w);
    assert.equal(w.host.reachabilityQueries, 1);
    w.host.send(w.ctx, pattern(10, 45));
    pump(w);
    assert.equal(w.host.reachabilityQueries, 1); // HRD 0 -> HRT = now: no new query yet
    upload(w);
  });

  void test("IO-6 / C-10: frames for a connection still being offloaded are not indicated through the chimney", () => {
    const w = track(offloaded({ complete: false }));
    w.target.handleFrame(at(w.now), w.peer.raw({ payload: pattern(5, 46) }));
    assert.equal(w.host.upFrames.length, 1);
    assert.equal(count(w, "indicate "), 0);
    w.target.process(at(w.now));
    w.ctx = w.tcpBlock.miniportOffloadContext?.context as MiniportOffloadContext;
    upload(w);
  });
});

/** Decodes the TCP segment of an Ethernet frame (test helper). */
function parseSeg(frame: Uint8Array): TcpRepr {
  const tr = decodeFrame(frame).transport;
  if (tr?.kind !== "tcp") throw new Error("not a TCP frame");
  return tr.tcp;
}
