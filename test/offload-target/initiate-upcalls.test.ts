// IO-7 (spec digest 7.3): while any initiate offload is in progress (from MiniportInitiateOffload
// until NdisMInitiateOffloadComplete has returned) the target makes no upcall for its other
// connections: receive indications and TCP events are held back and follow the completion, in
// the order they arose. The target takes 100 ms per state operation here, so the second
// initiate (a neighbor) stays in progress while the peer talks on the offloaded connection.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type NeighborBlock, newBlock } from "../../src/chimney/block-list.js";
import type { NdisOffloadHandle } from "../../src/chimney/block-list.js";
import { Duration } from "../../src/time/instant.js";
import { mac } from "../../src/wire/ethernet.js";
import { TcpFlag } from "../../src/wire/tcp-repr.js";
import { at, offloaded, pattern, pump, tcpRef, terminate, type World } from "../support/target-testing.js";

/** A connection offloaded to a target whose state operations take 100 ms. */
function slowTarget(): World {
  const w = offloaded({ target: { operationDelay: Duration.fromMillis(100) } });
  assert.notEqual(w.ctx, 0, "the first offload completed");
  return w;
}

/** Starts offloading another neighbor; it stays in progress until `process` at +100 ms. */
function initiateNeighbor(w: World): NeighborBlock {
  const b = newBlock<NeighborBlock>({
    layer: "neighbor",
    stateType: "NeighborOffloadState",
    miniportOffloadContext: { context: null },
    ndisOffloadHandle: 99 as NdisOffloadHandle,
    constState: { dlSourceAddress: new Uint8Array(6), vlanId: 0 },
    cachedState: { dlDestinationAddress: mac("02:00:00:00:00:33"), hostReachabilityDelta: Duration.ZERO },
    delegatedState: { nicReachabilityDelta: Duration.ZERO },
  });
  w.host.initiate(b);
  return b;
}

/** The upcalls in `log` (indications, events, state completions), without requests and returns. */
function upcalls(log: readonly string[]): string[] {
  return log.filter((l) => /^(indicate |event |initiate-complete|recv-complete)/.test(l));
}

function finish(w: World): void {
  const b = terminate(w);
  if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
  w.host.returnIndicated();
  w.host.freeCompleted();
  w.ledger.assertQuiescent();
}

void test("IO-7: data and the FIN arriving during an initiate are indicated after its completion, in order", () => {
  const w = slowTarget();
  const from = w.host.log.length;
  const backlog = w.host.backlogEvents.length;
  const nb = initiateNeighbor(w);
  const data = pattern(300, 5);
  w.peer.engine.send(data);
  w.peer.engine.close();
  pump(w); // the target processes the segments (and acknowledges them, RI-4) ...
  w.now += 50;
  pump(w);
  assert.equal(nb.status, undefined, "the initiate is still in progress");
  assert.equal(w.peer.engine.status().sndUna, w.peer.engine.status().sndMax, "data and FIN acknowledged");
  // ... but indicates nothing while the initiate is in progress.
  assert.deepEqual(upcalls(w.host.log.slice(from)), []);
  assert.deepEqual(w.host.events, []);
  assert.equal(w.host.backlogEvents.length, backlog);
  assert.deepEqual(w.host.stream, []);
  w.now += 50;
  w.target.process(at(w.now));
  assert.equal(nb.status, "NDIS_STATUS_SUCCESS");
  // Everything held follows the completion, in order: the data, then the FIN.
  assert.deepEqual(upcalls(w.host.log.slice(from)), [
    "initiate-complete",
    "indicate 300 took 300",
    "event TcpIndicateDisconnect",
  ]);
  assert.deepEqual(w.host.stream, [...data]);
  finish(w);
});

void test("IO-7: an abort arising during an initiate is indicated after its completion", () => {
  const w = slowTarget();
  const from = w.host.log.length;
  const nb = initiateNeighbor(w);
  w.target.handleFrame(at(w.now), w.peer.raw({ flags: TcpFlag.RST | TcpFlag.ACK }));
  w.now += 60;
  pump(w);
  assert.equal(w.target.engineOf(w.ctx)?.state, "CLOSED", "the reset was processed");
  assert.deepEqual(upcalls(w.host.log.slice(from)), []);
  w.now += 40;
  w.target.process(at(w.now));
  assert.equal(nb.status, "NDIS_STATUS_SUCCESS");
  assert.deepEqual(upcalls(w.host.log.slice(from)), ["initiate-complete", "event TcpIndicateAbort"]);
  finish(w);
});

void test("TM-27: a send after the target decided to request an upload, before the request is indicated, completes with UPLOAD_IN_PROGRESS", () => {
  const w = slowTarget();
  const from = w.host.log.length;
  const nb = initiateNeighbor(w);
  // Decided; the TcpIndicateRetrieve is held back while the initiate is in progress (IO-7).
  assert.equal(w.target.requestUpload(w.ctx, "LowActivity"), true);
  assert.deepEqual(w.host.events, []);
  const [n] = w.host.send(w.ctx, pattern(100, 8));
  assert.equal(n?.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
  assert.equal(n?.bytesTransferred, 0);
  assert.deepEqual(w.host.sendCompleted, [n]);
  pump(w);
  assert.deepEqual(w.peer.read, [], "nothing of the send went out");
  w.now += 100;
  w.target.process(at(w.now));
  assert.equal(nb.status, "NDIS_STATUS_SUCCESS");
  assert.deepEqual(upcalls(w.host.log.slice(from)), [
    "initiate-complete",
    "event TcpIndicateRetrieve LowActivity",
  ]);
  finish(w);
});

void test("IO-7: with no initiate in progress the same data is indicated at once", () => {
  const w = slowTarget();
  const from = w.host.log.length;
  const data = pattern(300, 6);
  w.peer.engine.send(data);
  pump(w);
  assert.deepEqual(upcalls(w.host.log.slice(from)), ["indicate 300 took 300"]);
  finish(w);
});

void test("IO-7: a request posted during an initiate is filled and completed; nothing is indicated", () => {
  const w = slowTarget();
  const from = w.host.log.length;
  initiateNeighbor(w);
  const data = pattern(200, 7);
  w.peer.engine.send(data);
  pump(w);
  w.host.post(w.ctx, 200); // NdisTcpOffloadReceiveComplete is not an upcall IO-7 names
  assert.deepEqual(upcalls(w.host.log.slice(from)), [
    "recv-complete #" + String(w.host.recvCompleted[0]?.id) + " NDIS_STATUS_SUCCESS 200",
  ]);
  w.now += 100;
  w.target.process(at(w.now));
  assert.deepEqual(upcalls(w.host.log.slice(from)).slice(1), ["initiate-complete"]);
  assert.deepEqual(w.host.stream, [...data]);
  finish(w);
});

void test("IO-7: an event held for a connection whose terminate arrives meanwhile is dropped", () => {
  const w = slowTarget();
  const from = w.host.log.length;
  initiateNeighbor(w);
  w.target.handleFrame(at(w.now), w.peer.raw({ flags: TcpFlag.RST | TcpFlag.ACK }));
  const b = tcpRef(w.ctx);
  w.target.terminateOffload(b); // recorded after the initiate: completes after it
  w.now += 100;
  w.target.process(at(w.now));
  assert.equal(b.status, "NDIS_STATUS_SUCCESS");
  assert.deepEqual(upcalls(w.host.log.slice(from)), ["initiate-complete"]);
  assert.deepEqual(w.host.events, []);
  if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
  w.host.returnIndicated();
  w.host.freeCompleted();
  w.ledger.assertQuiescent();
});
