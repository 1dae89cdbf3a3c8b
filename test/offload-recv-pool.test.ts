// The host's receive pool at terminate (TM-20): BufferedData is copied into pool chunks, the
// application reads it in order behind what the host already held, chunks read by copy go back
// to the pool and are reused by the next terminate, chunks read as views leave the pool, and
// the ledger ends quiescent.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration } from "../src/time/instant.js";
import {
  offloadConn,
  type PairConn,
  PAIR_NOW,
  pairConn,
  patternAt,
  peerSends,
  readByCopy,
  refuseAll,
  settle,
  uploadConn,
} from "./support/chimney-pair.js";

function world(poolBytes: number): PairConn {
  return pairConn({
    tcp: { recvBufferSize: 1 << 20, sendBufferSize: 1 << 20, delayedAck: Duration.ZERO },
    policy: { recvPoolBytes: poolBytes },
    knobs: refuseAll(),
  });
}

void describe("receive pool at terminate", () => {
  void test("BufferedData lands in pool chunks, read by copy goes back, and the next upload reuses it", () => {
    const w = world(4 << 20);
    const pool = w.manager.recvPool;
    let read = 0;
    for (let round = 0; round < 3; round++) {
      offloadConn(w);
      peerSends(w, 200_000);
      uploadConn(w);
      assert.equal(w.a.readable(w.c), w.sent - read);
      read = readByCopy(w, read);
      assert.equal(read, w.sent);
      // 200,000 bytes = 3 whole 64 KiB chunks + a 3,392-byte remainder in an exact-size array.
      assert.equal(pool.stats.allocated, 3, `round ${round}: chunks allocated once`);
      assert.equal(pool.freeChunks, 3, `round ${round}: every chunk is idle again`);
    }
    assert.equal(pool.stats.reused, 6);
    w.ledger.assertQuiescent();
  });
  void test("data the host already held is read first, then BufferedData, by view; views stay intact", () => {
    const w = world(4 << 20);
    const pool = w.manager.recvPool;
    peerSends(w, 3000); // held by the host engine before the offload
    offloadConn(w);
    peerSends(w, 150_000);
    uploadConn(w);
    const views: { v: Uint8Array; at: number }[] = [];
    let at = 0;
    for (let v = w.a.recv(PAIR_NOW, w.c); v !== undefined; v = w.a.recv(PAIR_NOW, w.c)) {
      views.push({ v, at });
      at += v.length;
    }
    assert.equal(at, w.sent);
    assert.equal(pool.stats.detached, pool.stats.allocated, "every chunk read as a view left the pool");
    assert.equal(pool.freeChunks, 0);
    // Another round copies into fresh chunks: the views handed out are never overwritten.
    settle(w);
    offloadConn(w);
    peerSends(w, 150_000);
    uploadConn(w);
    assert.equal(readByCopy(w, at), w.sent);
    for (const { v, at: from } of views) {
      for (let i = 0; i < v.length; i++)
        if (v[i] !== patternAt(from + i)) assert.fail(`view byte ${from + i} changed`);
    }
    w.ledger.assertQuiescent();
  });
  void test("the pool keeps no more idle memory than its cap", () => {
    const w = world(128 << 10); // two chunks
    offloadConn(w);
    peerSends(w, 400_000);
    uploadConn(w);
    assert.equal(readByCopy(w, 0), w.sent);
    const pool = w.manager.recvPool;
    assert.equal(pool.freeChunks, 2);
    assert.ok(pool.stats.dropped >= 4, `dropped ${pool.stats.dropped}`);
    w.ledger.assertQuiescent();
  });
});
