// Loss recovery as a sender, in virtual time: two host stacks, 2% random loss each way and 1 ms
// delay each way. The goodput must stay above the Mathis et al. bound for Reno-style congestion
// control, MSS / RTT * 1.22 / sqrt(p), and recovery must come from SACK / fast retransmit, not
// from retransmission timeouts. Each run is a pure function of its seed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runBulk } from "./support/bulk-transfer.js";

const DELAY_US = 1000;
const LOSS = 0.02;
/** Payload per segment: 1500 - 20 (IPv4) - 20 (TCP) - 12 (timestamps). */
const MSS = 1448;
/** Nominal round trip: twice the one-way delay. */
const RTT_S = (2 * DELAY_US) / 1e6;
/** Mathis et al. (1997): the steady-state Reno throughput at random loss p, bits per second. */
const MATHIS_BPS = ((MSS * 8) / RTT_S) * (1.22 / Math.sqrt(LOSS));
const SEEDS = [1, 2, 3, 4];

void describe("loss recovery over a 2%-loss link (virtual time)", () => {
  void test("goodput at least 0.9 x the Mathis bound, almost no retransmission timeouts", () => {
    let totalBits = 0;
    let totalUs = 0;
    let timeouts = 0;
    const lines: string[] = [];
    for (const seed of SEEDS) {
      const bytes = 4 << 20;
      const o = runBulk({ seed, bytes, profile: { delayUs: DELAY_US, loss: LOSS } });
      assert.equal(o.received, bytes, `seed ${seed}: the receiver read ${o.received} of ${bytes}`);
      totalBits += o.received * 8;
      totalUs += o.elapsedUs;
      timeouts += o.sender.timeouts;
      lines.push(
        `seed ${seed}: ${(o.goodputBps / 1e6).toFixed(1)} Mbit/s, timeouts ${o.sender.timeouts}, ` +
          `fast retransmits ${o.sender.fastRetransmits}, SACK recoveries ${o.sender.sackRecoveries}, ` +
          `retransmits ${o.sender.retransmits}, duplicates at the receiver ${o.receiver.dropsOutOfWindow}`,
      );
      // Nearly every retransmission repairs a real loss: no go-back-N resend of SACKed data.
      const sent = o.sender.segmentsOut;
      assert.ok(
        o.sender.retransmits <= 2 * LOSS * sent + 20,
        `seed ${seed}: ${o.sender.retransmits} retransmissions for ${sent} segments`,
      );
    }
    const mean = (totalBits * 1e6) / totalUs;
    const report = `${lines.join("\n")}\nmean ${(mean / 1e6).toFixed(1)} Mbit/s, Mathis ${(MATHIS_BPS / 1e6).toFixed(1)} Mbit/s`;
    console.log(report);
    assert.ok(mean >= 0.9 * MATHIS_BPS, `goodput fell below 0.9 x Mathis:\n${report}`);
    assert.ok(timeouts <= 1, `${timeouts} retransmission timeouts over ${SEEDS.length} runs:\n${report}`);
  });

  void test("the lossless baseline is not limited by recovery", () => {
    const o = runBulk({ seed: 9, bytes: 4 << 20, profile: { delayUs: DELAY_US } });
    assert.equal(o.received, 4 << 20);
    assert.equal(o.sender.retransmits, 0);
    assert.equal(o.sender.timeouts, 0);
    // Far above the lossy case: a regression that stalls the sender shows here too.
    assert.ok(o.goodputBps > 5 * MATHIS_BPS, `clean link: ${(o.goodputBps / 1e6).toFixed(1)} Mbit/s`);
  });
});
