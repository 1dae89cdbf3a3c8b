// Receive compaction at the target: data an offloaded connection holds (the host refuses every
// indication and posts nothing) is copied into whole chunks of the target's pool as it arrives;
// at terminate the BufferedData carries those chunks, the host reads every byte in order, the
// chunks come back to the target's pool with the NBLs and are reused, and the ledger ends
// quiescent. Data the host takes promptly is never copied.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { acceptAllKnobs, type ReceiveKnobs } from "../src/host/offload-manager.js";
import { HELD_CHUNK_BYTES } from "../src/offload-target/software-target.js";
import { Duration } from "../src/time/instant.js";
import { tcpConfig } from "../src/tcp/config.js";
import { advance, at, offloaded, pattern, type World } from "./support/target-testing.js";
import {
  offloadConn,
  type PairConn,
  pairConn,
  peerSends,
  readByCopy,
  refuseAll,
  uploadConn,
} from "./support/chimney-pair.js";

function world(knobs: ReceiveKnobs, compactHeldData: boolean): PairConn {
  return pairConn({
    tcp: { recvBufferSize: 1 << 20, sendBufferSize: 1 << 20, delayedAck: Duration.ZERO },
    knobs,
    target: { compactHeldData },
  });
}

void describe("held receive data compaction at the target", () => {
  void test("held data is compacted into whole chunks once; BufferedData brings it up in order; chunks are reused", () => {
    const w = world(refuseAll(), true);
    let read = 0;
    for (let round = 0; round < 3; round++) {
      offloadConn(w);
      peerSends(w, 300_000);
      const st = w.target.heldPoolStats;
      assert.ok(st !== undefined);
      // 300,000 bytes = 4 whole chunks; the remainder stays as segment views.
      assert.equal(st.allocated + st.reused, 4 * (round + 1), `round ${round}: 4 chunks filled`);
      assert.equal(st.allocated, 4, `round ${round}: chunks allocated once, then reused`);
      uploadConn(w);
      assert.equal(w.a.readable(w.c), w.sent - read);
      read = readByCopy(w, read);
      assert.equal(read, w.sent);
    }
    w.ledger.assertQuiescent();
  });
  void test("without compaction the same bytes arrive and no chunk is used", () => {
    const w = world(refuseAll(), false);
    offloadConn(w);
    peerSends(w, 300_000);
    assert.equal(w.target.heldPoolStats, undefined);
    uploadConn(w);
    assert.equal(readByCopy(w, 0), w.sent);
    w.ledger.assertQuiescent();
  });
  void test("data the host takes promptly is never copied into chunks", () => {
    const w = world(acceptAllKnobs({ nextU32: () => 0 }), true);
    offloadConn(w);
    peerSends(w, 4 * HELD_CHUNK_BYTES);
    const st = w.target.heldPoolStats;
    assert.equal(st?.allocated, 0);
    assert.equal(st.reused, 0);
    uploadConn(w);
    assert.equal(readByCopy(w, 0), w.sent);
    w.ledger.assertQuiescent();
  });
});

// With a host on another thread, an indication is answered later (NDIS_STATUS_PENDING now):
// what arrives meanwhile waits in the receive buffer as views of the frames, and the answer
// usually takes it. It is compacted only when the host leaves it at the target.
void describe("held receive data compaction with indications in flight", () => {
  function inFlightWorld(take: (n: number) => number): World {
    const w = offloaded({
      cfg: tcpConfig({ delayedAck: Duration.ZERO, recvBufferSize: 1 << 20, sendBufferSize: 1 << 22 }),
      target: { receiveModeration: true },
    });
    w.host.answerLater = true;
    w.host.indicatePolicy = take;
    // 8 chunks' worth arrives while the first indication waits for its answer.
    w.peer.engine.send(pattern(8 * HELD_CHUNK_BYTES, 3));
    for (let i = 0; i < 40; i++) advance(w, 1, 1);
    return w;
  }

  void test("data that arrives while the host's answer is in flight is not copied when the host takes it", () => {
    const w = inFlightWorld((n) => n);
    const sent = 8 * HELD_CHUNK_BYTES;
    for (let i = 0; i < 200 && w.host.stream.length < sent; i++) {
      w.host.answerIndications(at(w.now));
      advance(w, 1, 1);
    }
    assert.equal(w.host.stream.length, sent, "the host took every byte");
    assert.deepEqual(w.host.stream, [...pattern(sent, 3)]);
    const st = w.target.heldPoolStats;
    assert.equal((st?.allocated ?? 0) + (st?.reused ?? 0), 0, "chunks filled by compaction");
  });

  void test("what the host's late answer leaves at the target is compacted then", () => {
    const w = inFlightWorld(() => 0);
    assert.ok(w.host.answerIndications(at(w.now)) >= 1, "an indication was in flight");
    const st = w.target.heldPoolStats;
    assert.ok(
      (st?.allocated ?? 0) >= 4,
      `only ${st?.allocated} chunks compacted after the host refused ${8 * HELD_CHUNK_BYTES} B`,
    );
  });
});
