// The acceptance round trip: within one transfer of 256 MiB each way, the connection
// moves 20 times between the Linux kernel and our host stack (kernel -> ours -> kernel ...,
// src/live/handoff-session.ts), every move mid-transfer both ways. Every byte arrives once and
// in order (sha256 both ways) and nobody sends an RST. Needs root and the repair addon.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HandoffSession } from "../src/live/handoff-session.js";
import { assertHandoffClean, rstWatch } from "./support/handoff-checks.js";
import { kernelTestSkip } from "./support/kernel-topology.js";

const skip = kernelTestSkip();
const TOTAL = 256 << 20;
const MOVES = 20;

void describe("20 moves within one 256 MiB transfer", { skip }, () => {
  void test("kernel <-> our stack 20 times: sha256 both ways, no RST", async (t) => {
    const seed = Number(process.env["CHIMNEY_SEED"] ?? 1);
    const rsts = rstWatch(); // counted as frames pass: a 256 MiB capture would not fit
    const s = await HandoffSession.open({
      tag: "k20",
      seed,
      peerBytes: TOTAL,
      hostBytes: TOTAL,
      capture: rsts.capture,
    });
    try {
      for (let i = 0; i < MOVES; i++) {
        // Spread over the first 40% of the transfer: the streams run on while a move starts, at
        // over 100 MB/s each way, and a move into our stack can take half a second on a busy
        // machine. Spread over 80%, both streams had ended before the last moves in 2 of 5 full
        // runs on one such day.
        const f = (i + 1) / (2 * (MOVES + 5));
        await s.until(
          `${i + 1}/${2 * (MOVES + 5)} of both streams`,
          () => {
            const r = s.received;
            return r.atPeer >= f * TOTAL && r.atHost >= f * TOTAL;
          },
          120_000,
        );
        await s.moveTo(i % 2 === 0 ? "host" : "kernel");
      }
      const r = await s.finish(300_000);
      const drops = s.releaseHandOffs();
      const summary = r.moves.map((m) => ({
        n: m.n,
        to: m.to,
        progress: m.progress,
        carried: m.carried,
        ms: Math.round(m.timings.totalMs),
      }));
      const facts = JSON.stringify({
        label: s.host.label,
        seed,
        drops,
        forwarded: s.forwarded,
        moves: summary,
      });
      t.diagnostic(facts);
      assert.equal(r.moves.length, MOVES, facts);
      assert.equal(s.place, "kernel", facts);
      // Node's own buffers moved too: bytes it had read ahead of the application, and writes
      // it still held, at one move out of the kernel or another.
      const outs = r.moves.filter((m) => m.from === "kernel");
      assert.ok(
        outs.some((m) => (m.carried.readAhead ?? 0) > 0),
        `Node's read-ahead moved: ${facts}`,
      );
      assert.ok(
        outs.some((m) => (m.carried.writeBehind ?? 0) > 0),
        `Node's pending writes moved: ${facts}`,
      );
      assertHandoffClean(s, r, { total: TOTAL, drops, rsts: rsts.count(), silentCloses: MOVES / 2 }, facts);
    } finally {
      s.close();
    }
  });
});
