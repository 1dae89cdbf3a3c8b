// Deliberately broken offload targets: each mutant must make the suite's checks fail (ledger
// OwnershipError, byte-stream comparison, or a chimney rule check in the fake host), while the
// correct target passes the very same scenario. A check that cannot fail is no check.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OwnershipError } from "../src/util/errors.js";
import type { TargetMutant } from "../src/offload-target/software-target.js";
import {
  advance,
  offloaded,
  pattern,
  pump,
  RuleViolation,
  terminate,
  type World,
} from "./support/target-testing.js";

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

/** Ends a correct run: every NBL back home and freed (the leak check). */
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

/** (a) and (b): refused data is still buffered at the target when the host uploads. */
function uploadWithBufferedData(mutant: TargetMutant | undefined): void {
  const w = offloaded({ target: { testMutant: mutant } });
  w.host.indicatePolicy = () => 0;
  w.peer.engine.send(pattern(700, 50));
  pump(w);
  w.host.indicatePolicy = (n) => n;
  const b = terminate(w);
  if (b.netBufferListChain !== null) w.ledger.free(b.netBufferListChain, "host");
  checkStream(w, pattern(700, 50));
  finish(w, false);
}

/** (a'): refused data, then a FIN exchange: the connection is CLOSED when the host uploads. */
function uploadClosedWithBufferedData(mutant: TargetMutant | undefined): void {
  const w = offloaded({ target: { testMutant: mutant } });
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
}

/** (g): an ACK is owed when the host uploads (TM-11). */
function uploadOwingAck(mutant: TargetMutant | undefined): void {
  const w = offloaded({ target: { testMutant: mutant } });
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
}

/**
 * (c): data handed over at offload must come before anything received later (IO-23). (h): the
 * target copies it during the initiate call (IO-19): the ledger's loan is revocable, so a target
 * that kept views reads poison.
 */
function handedOverThenNew(mutant: TargetMutant | undefined): void {
  const w = offloaded({ buffered: 2000, target: { testMutant: mutant }, poisonLoans: true });
  w.peer.engine.send(pattern(1000, 51));
  advance(w, 100);
  w.host.post(w.ctx, 3000);
  pump(w);
  checkStream(w, concat(pattern(2000, 1), pattern(1000, 51)));
  finish(w);
}

/** (d): refused data, then more data with no request posted in between (RI-3). */
function refusedThenMore(mutant: TargetMutant | undefined): void {
  const w = offloaded({ target: { testMutant: mutant } });
  w.host.indicatePolicy = () => 0;
  w.peer.engine.send(pattern(300, 52));
  pump(w);
  w.peer.engine.send(pattern(300, 53));
  advance(w, 100);
  w.host.post(w.ctx, 600);
  pump(w);
  checkStream(w, concat(pattern(300, 52), pattern(300, 53)));
  finish(w);
}

/** (e): one posted request, filled once. */
function postThenFill(mutant: TargetMutant | undefined): void {
  const w = offloaded({ target: { testMutant: mutant } });
  w.host.post(w.ctx, 100);
  w.peer.engine.send(pattern(100, 54));
  pump(w);
  checkStream(w, pattern(100, 54));
  finish(w);
}

interface Case {
  readonly mutant: TargetMutant;
  readonly run: (m: TargetMutant | undefined) => void;
  readonly caughtBy: (e: unknown) => boolean;
  readonly what: string;
}

const CASES: Case[] = [
  {
    mutant: "drop-buffered-at-terminate",
    run: uploadWithBufferedData,
    caughtBy: (e) => e instanceof assert.AssertionError && e.message.startsWith("byte stream differs"),
    what: "(a) dropping BufferedData at terminate fails the byte-stream comparison",
  },
  {
    mutant: "drop-buffered-at-terminate",
    run: uploadClosedWithBufferedData,
    caughtBy: (e) => e instanceof assert.AssertionError && e.message.startsWith("byte stream differs"),
    what: "(a') dropping BufferedData at the terminate of a FIN-closed connection fails the byte-stream comparison",
  },
  {
    mutant: "wire-after-terminate",
    run: uploadOwingAck,
    caughtBy: (e) => e instanceof RuleViolation && e.rule === "TM-11",
    what: "(g) sending the owed ACK only after the terminate completed breaks TM-11",
  },
  {
    mutant: "write-after-return",
    run: uploadWithBufferedData,
    caughtBy: (e) => e instanceof OwnershipError && e.reason === "use-after-transfer",
    what: "(b) writing BufferedData after handing it up is an OwnershipError",
  },
  {
    mutant: "buffered-after-newer",
    run: handedOverThenNew,
    caughtBy: (e) =>
      e instanceof assert.AssertionError && e.message.startsWith("byte stream differs at offset 0"),
    what: "(c) delivering BufferedData after newer data fails the byte-stream comparison",
  },
  {
    mutant: "keep-lent-views",
    run: handedOverThenNew,
    caughtBy: (e) =>
      e instanceof assert.AssertionError && e.message.startsWith("byte stream differs at offset 0"),
    what: "(h) IO-19: keeping views of the BufferedData lent at initiate reads poison once the loan ends: the byte-stream comparison fails",
  },
  {
    mutant: "reindicate-refused",
    run: refusedThenMore,
    caughtBy: (e) => e instanceof RuleViolation && e.rule === "RI-3",
    what: "(d) re-indicating refused data before a request is posted breaks RI-3",
  },
  {
    mutant: "double-complete",
    run: postThenFill,
    caughtBy: (e) => e instanceof RuleViolation && e.rule === "RQ-3" && e.message.includes("twice"),
    what: "(e) completing a posted receive twice is caught by the host's FIFO check",
  },
];

void describe("mutant targets are caught", () => {
  for (const c of CASES) {
    void test(c.what, () => {
      c.run(undefined); // the correct target passes the same scenario
      let caught: unknown;
      try {
        c.run(c.mutant);
      } catch (e) {
        caught = e;
      }
      assert.ok(caught !== undefined, `mutant ${c.mutant} was not caught`);
      assert.ok(
        c.caughtBy(caught),
        `mutant ${c.mutant} caught by the wrong check: ${caught instanceof Error ? caught.message : typeof caught}`,
      );
    });
  }
});
