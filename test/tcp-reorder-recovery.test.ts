// Loss recovery under reordering, in virtual time: two host stacks over the live fault test's
// profile (test/live-faults.test.ts) in both directions: 2% loss, 2% of frames held back until
// 3 later frames passed (or 5 ms), 1 ms delay each way. Reordering must not cost congestion
// window: the sender learns the reordering (adaptive DupThresh), and D-SACK (RFC 2883, 3708)
// or timestamps (RFC 3522) undo a fast recovery that reordering triggered anyway. Goodput must
// stay above the Mathis et al. bound for the loss alone; with those mechanisms switched off
// (the engine before them) it stays well below it. Each run is a pure function of its seed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FaultProfile } from "../src/sim/link.js";
import type { TcpConfig } from "../src/tcp/config.js";
import { type BulkOutcome, runBulk } from "./support/bulk-transfer.js";

const FAULTS: FaultProfile = {
  loss: 0.02,
  reorder: { rate: 0.02, holdFrames: 3, holdUs: 5000 },
  delayUs: 1000,
};
/** Payload per segment: 1500 - 20 (IPv4) - 20 (TCP) - 12 (timestamps). */
const MSS = 1448;
/** Mathis et al. (1997) at 2% loss and the nominal 2 ms round trip, bits per second. */
const MATHIS_BPS = ((MSS * 8) / 0.002) * (1.22 / Math.sqrt(0.02));
const SEEDS = [1, 2, 3, 4];
const BYTES = 4 << 20;
/** The engine without the reordering defences: fixed DupThresh 3, no D-SACK, no undo. */
const PLAIN: Partial<TcpConfig> = { maxReordering: 3, dsack: false, undoSpurious: false };

interface Summary {
  readonly meanBps: number;
  readonly runs: readonly BulkOutcome[];
  readonly report: string;
}

function measure(tcp: Partial<TcpConfig> | undefined): Summary {
  let bits = 0;
  let us = 0;
  const runs: BulkOutcome[] = [];
  const lines: string[] = [];
  for (const seed of SEEDS) {
    const o = runBulk({ seed, bytes: BYTES, profile: FAULTS, tcp });
    assert.equal(o.received, BYTES, `seed ${seed}: the receiver read ${o.received} of ${BYTES}`);
    bits += o.received * 8;
    us += o.elapsedUs;
    runs.push(o);
    const s = o.sender;
    lines.push(
      `seed ${seed}: ${(o.goodputBps / 1e6).toFixed(1)} Mbit/s, fast retransmits ${s.fastRetransmits}, ` +
        `timeouts ${s.timeouts}, undos ${s.spuriousUndos}, reordering raised ${s.reorderingRaised}, ` +
        `D-SACKs in ${s.dsacksIn} (receiver sent ${o.receiver.dsacksOut})`,
    );
  }
  const meanBps = (bits * 1e6) / us;
  const report = `${lines.join("\n")}\nmean ${(meanBps / 1e6).toFixed(1)} Mbit/s, Mathis ${(MATHIS_BPS / 1e6).toFixed(1)} Mbit/s`;
  return { meanBps, runs, report };
}

void describe("loss recovery with 2% loss and 2% reordering both ways (virtual time)", () => {
  void test("goodput at least the Mathis bound of the loss alone, far above the plain engine", () => {
    const fixed = measure(undefined);
    const plain = measure(PLAIN);
    const report = `seeds ${SEEDS.join(", ")}\nwith defences:\n${fixed.report}\nplain:\n${plain.report}`;
    console.log(report);
    assert.ok(fixed.meanBps >= MATHIS_BPS, `goodput below the Mathis bound:\n${report}`);
    assert.ok(fixed.meanBps >= 1.25 * plain.meanBps, `the defences gain less than 25%:\n${report}`);
    const timeouts = fixed.runs.reduce((n, o) => n + o.sender.timeouts, 0);
    assert.ok(timeouts <= 1, `${timeouts} retransmission timeouts:\n${report}`);
    // Reordering was learnt in every run, and fewer fast recoveries were entered than without.
    for (const [i, o] of fixed.runs.entries()) {
      const p = plain.runs[i];
      assert.ok(p !== undefined);
      assert.ok(o.sender.reorderingRaised > 0, `seed ${SEEDS[i]}: reordering never learnt:\n${report}`);
      assert.ok(
        o.sender.fastRetransmits < p.sender.fastRetransmits,
        `seed ${SEEDS[i]}: ${o.sender.fastRetransmits} fast retransmits, plain ${p.sender.fastRetransmits}:\n${report}`,
      );
    }
  });
});
