// Our offload target <-> the Linux kernel, live and mid-transfer: a kernel socket's connection
// is adopted by our host stack and offloaded to the software target (the chimney in front of our
// stack), then terminated back to our stack and handed into a kernel socket again; and once more
// from the kernel onto the target and back. Both directions stream throughout; every byte
// arrives once and in order (sha256 both ways) and nobody sends an RST. Needs root and the
// repair addon.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HandoffSession, type Place } from "../src/live/handoff-session.js";
import { assertHandoffClean, rstWatch } from "./support/handoff-checks.js";
import { kernelTestSkip } from "./support/kernel-topology.js";

const skip = kernelTestSkip();
const MB = 1 << 20;

void describe("offload target <-> kernel", { skip }, () => {
  void test("kernel -> target -> kernel, twice, mid-transfer: every byte once, no RST", async (t) => {
    const seed = Number(process.env["CHIMNEY_SEED"] ?? 1);
    const rsts = rstWatch();
    const total = 32 * MB;
    const s = await HandoffSession.open({
      tag: "ktgt",
      seed,
      chimney: true,
      peerBytes: total,
      hostBytes: total,
      capture: rsts.capture,
    });
    try {
      const plan: Place[] = ["target", "kernel", "target", "kernel"];
      const seen: Place[][] = [];
      for (const [i, to] of plan.entries()) {
        const f = (i + 1) / (plan.length + 1);
        await s.until(
          `${f} of both streams`,
          () => s.received.atPeer > f * total && s.received.atHost > f * total,
        );
        const moves = await s.moveTo(to);
        seen.push(moves.map((m) => m.to));
        // On the target, the manager counts it offloaded; elsewhere nothing is.
        assert.equal(s.host.chimney?.manager.offloadedCount, to === "target" ? 1 : 0, s.status());
      }
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
      // kernel -> target is adopt then offload; target -> kernel is terminate then hand-off.
      assert.deepEqual(
        seen,
        [
          ["host", "target"],
          ["host", "kernel"],
          ["host", "target"],
          ["host", "kernel"],
        ],
        facts,
      );
      assertHandoffClean(s, r, { total, drops, rsts: rsts.count(), silentCloses: 2 }, facts);
    } finally {
      s.close();
    }
  });
});
