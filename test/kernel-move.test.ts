// A connection moves between the Linux kernel and our host stack and back, live and
// mid-transfer, all from this process (src/live/handoff-session.ts, kernel-move.ts): kernel
// sockets made inside the namespaces by the repair addon, the steering added and removed over
// rtnetlink, no helper process. Both directions stream; every byte arrives once and in order
// (sha256 both ways), nobody sends an RST, and each move takes milliseconds, not the hundreds a
// helper process and a JSON record took. Needs root and the repair addon.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HandoffSession } from "../src/live/handoff-session.js";
import { assertHandoffClean, rstWatch } from "./support/handoff-checks.js";
import { kernelTestSkip } from "./support/kernel-topology.js";

const skip = kernelTestSkip();
const MB = 1 << 20;

void describe("kernel <-> our stack, in-process moves", { skip }, () => {
  void test("kernel -> our stack -> kernel mid-transfer: every byte once, no RST, moves in ms", async (t) => {
    const seed = Number(process.env["CHIMNEY_SEED"] ?? 1);
    const rsts = rstWatch();
    const total = 24 * MB;
    const s = await HandoffSession.open({
      tag: "kmove",
      seed,
      peerBytes: total,
      hostBytes: total,
      capture: rsts.capture,
    });
    try {
      await s.until(
        "a third of both streams",
        () => s.received.atPeer > total / 3 && s.received.atHost > total / 3,
      );
      const [toUs] = await s.moveTo("host");
      await s.until(
        "two thirds",
        () => s.received.atPeer > (2 * total) / 3 && s.received.atHost > (2 * total) / 3,
      );
      const [back] = await s.moveTo("kernel");
      const r = await s.finish();
      const drops = s.releaseHandOffs();
      const facts = JSON.stringify({
        label: s.host.label,
        seed,
        moves: r.moves,
        drops,
        forwarded: s.forwarded,
      });
      t.diagnostic(facts);
      assert.deepEqual(
        [toUs?.from, toUs?.to, back?.from, back?.to],
        ["kernel", "host", "host", "kernel"],
        facts,
      );
      // Something moved each time: the receive queue or data in flight.
      for (const m of r.moves) assert.ok(m.carried.unread + m.carried.inFlight + m.carried.unsent > 0, facts);
      // Fast: the synchronous steps of each move (not the wait for Node's pending writes) take
      // milliseconds here (bench/handoff.bench.ts measures them); the bound leaves room for a
      // loaded 2-core machine (one run under a load of 6 took 154 ms) and still fails a return to
      // helper processes, which took 830-1400 ms out of the kernel.
      for (const m of r.moves) {
        const steps = Object.entries(m.timings).filter(([k]) => k !== "totalMs" && k !== "drainMs");
        const sync = steps.reduce((a, [, v]) => a + v, 0);
        assert.ok(sync < 250, `move ${m.n}: ${sync} ms in its steps ${JSON.stringify(steps)}: ${facts}`);
      }
      assertHandoffClean(s, r, { total, drops, rsts: rsts.count(), silentCloses: 1 }, facts);
    } finally {
      s.close();
    }
  });
});
