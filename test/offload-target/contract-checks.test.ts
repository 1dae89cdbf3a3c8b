// The scenarios the mutant catalogue (test/mutants/catalogue.ts) relies on to catch broken targets:
// each passes on the correct target, and its check (the byte-stream comparison, the ledger's
// OwnershipError or a chimney rule check in the fake host) fails when the catalogue breaks the
// rule it names. A check that cannot fail is no check: test/chimney-mutants.test.ts shows that
// each one does.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  advance,
  offloaded,
  pattern,
  pump,
  RuleViolation,
  terminate,
  type World,
} from "../support/target-testing.js";

/** Compares the application's byte stream with the expected one (the "byte-stream check"). */
function checkStream(w: World, want: Uint8Array): void {
  const got = w.host.stream;
  const n = Math.min(got.length, want.length);
  let i = 0;
  while (i < n && got[i] === want[i]) i++;
  if (i < n || got.length !== want.length) {
    throw new assert.AssertionError({
      message: `byte stream differs at offset ${i}: got ${got.length} bytes, want ${want.length}`,
    });
  }
}

/** Ends a run: every NBL back home and freed (the leak check). */
function finish(w: World, chain = true): void {
  w.host.returnIndicated();
  if (chain) {
    const b = terminate(w);
    if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
  }
  w.host.freeCompleted();
  w.ledger.assertQuiescent();
}

const concat = (...xs: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(xs.reduce((n, x) => n + x.length, 0));
  let at = 0;
  for (const x of xs) {
    out.set(x, at);
    at += x.length;
  }
  return out;
};

void describe("contract checks of the mutant catalogue", () => {
  void test("TM-19 / TM-20 / TM-21: data the host refused is returned at the upload as BufferedData, every byte, untouched after", () => {
    const w = offloaded();
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(700, 50));
    pump(w);
    w.host.indicatePolicy = (n) => n;
    const b = terminate(w);
    if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
    checkStream(w, pattern(700, 50));
    finish(w, false);
  });

  void test("TM-19 / TM-20: a connection closed by a FIN exchange returns the refused data at the upload, every byte", () => {
    const w = offloaded();
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(700, 55));
    w.peer.engine.close();
    pump(w);
    w.host.disconnect(w.ctx, "graceful");
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "CLOSED");
    const b = terminate(w);
    if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
    checkStream(w, pattern(700, 55));
    finish(w, false);
  });

  void test("TM-11: the ACK owed at the upload is on the wire when the terminate completes", () => {
    const w = offloaded();
    w.peer.engine.send(pattern(10, 56));
    w.host.post(w.ctx, 10);
    pump(w);
    const rcvNxt = w.target.engineOf(w.ctx)?.rcvNxt;
    terminate(w);
    const queued = w.host.queuedAtTerminate[0] ?? [];
    if (!queued.some((s) => s.ack === rcvNxt && s.payload.length === 0))
      throw new RuleViolation("TM-11", "the owed ACK was not on the wire when the terminate completed");
    pump(w);
    checkStream(w, pattern(10, 56));
    finish(w, false);
  });

  // IO-19: the ledger's loan is revocable here, so a target that kept views of the lent bytes
  // instead of copying them during the initiate call reads poison.
  void test("IO-19 / IO-23: data handed over at offload is copied during the call and reaches the application before newer data", () => {
    const w = offloaded({ buffered: 2000, poisonLoans: true });
    w.peer.engine.send(pattern(1000, 51));
    advance(w, 100);
    w.host.post(w.ctx, 3000);
    pump(w);
    checkStream(w, concat(pattern(2000, 1), pattern(1000, 51)));
    finish(w);
  });

  void test("RI-3: refused data, then more data with no request posted: nothing is indicated again until the request", () => {
    const w = offloaded();
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(300, 52));
    pump(w);
    w.peer.engine.send(pattern(300, 53));
    advance(w, 100);
    w.host.post(w.ctx, 600);
    pump(w);
    checkStream(w, concat(pattern(300, 52), pattern(300, 53)));
    finish(w);
  });

  void test("RQ-3: a posted request is filled and completed once (the fake host's FIFO check)", () => {
    const w = offloaded();
    w.host.post(w.ctx, 100);
    w.peer.engine.send(pattern(100, 54));
    pump(w);
    checkStream(w, pattern(100, 54));
    assert.equal(w.host.recvCompleted.length, 1);
    finish(w);
  });
});
