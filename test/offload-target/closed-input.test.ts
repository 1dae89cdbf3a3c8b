// NS-8 (spec digest 15.3): a connection that reached CLOSED and asked for its upload hands what
// arrives for it to the host through the non-offload path instead of its engine.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TcpFlag } from "../../src/wire/tcp-repr.js";
import { at, offloaded, pattern, pump, terminate } from "../support/target-testing.js";

void test("NS-8: data arriving on a CLOSED connection waiting for its upload goes up the non-offload path", () => {
  const w = offloaded();
  w.peer.engine.close(); // the peer's FIN: CLOSE-WAIT at the target
  pump(w);
  w.host.disconnect(w.ctx, "graceful"); // our FIN: LAST-ACK, CLOSED once the peer ACKs it
  pump(w);
  assert.equal(w.target.engineOf(w.ctx)?.state, "CLOSED");
  assert.ok(w.host.events.some((e) => e.type === "TcpIndicateRetrieve" && e.reason === "UploadRequested"));
  const up = w.host.upFrames.length;
  const out = w.target.stats.framesOut;
  const frame = w.peer.raw({ flags: TcpFlag.ACK | TcpFlag.PSH, payload: pattern(40, 9) });
  w.target.handleFrame(at(w.now), frame);
  assert.equal(w.host.upFrames.length, up + 1, "indicated on the non-offload path");
  assert.deepEqual(w.host.upFrames.at(-1), frame);
  // The engine did not see it: nothing (no RST, no ACK) goes out for it.
  pump(w);
  assert.equal(w.target.stats.framesOut, out);
  const b = terminate(w);
  assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
  if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
  w.host.returnIndicated();
  w.host.freeCompleted();
  w.ledger.assertQuiescent();
});
