// HyStart++ (RFC 9406) as a state machine: rounds, the delay test, CSS, the spurious-exit
// resume and the end of CSS after CSS_ROUNDS rounds.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Seq, type SeqNum } from "../wire/seq.js";
import { CSS_ROUNDS, HyStartPlusPlus, MIN_RTT_THRESH_US, N_RTT_SAMPLE } from "./hystart.js";

/** Drives `rounds` rounds of `perRound` ACKs, each with `rtt(round)`; returns the phases seen. */
function drive(
  h: HyStartPlusPlus,
  rtt: (round: number) => number,
  rounds: number,
  perRound = N_RTT_SAMPLE + 2,
) {
  const phases: string[] = [];
  let acked = 0;
  for (let r = 0; r < rounds; r++) {
    const end: SeqNum = Seq.of(1000 + (acked + perRound) * 100);
    let last = "";
    for (let i = 0; i < perRound; i++) {
      acked++;
      // The first ACK of a round passes the end recorded at the last one.
      const phase = h.onAck(Seq.of(1000 + acked * 100 + (i === 0 ? 1 : 0)), end, rtt(r));
      // Congestion avoidance is said once, at the round boundary: the engine stops asking then.
      if (last !== "congestion-avoidance") last = phase;
    }
    phases.push(last);
  }
  return phases;
}

void describe("HyStart++ (RFC 9406)", () => {
  void test("RFC 9406 4.3: a steady RTT keeps slow start", () => {
    const h = new HyStartPlusPlus();
    assert.deepEqual(
      drive(h, () => 20_000, 6),
      Array(6).fill("slow-start"),
    );
    assert.equal(h.exits, 0);
  });

  void test("RFC 9406 4.3: a round minimum past the last one's by RttThresh ends slow start for CSS, and CSS_ROUNDS later congestion avoidance", () => {
    const h = new HyStartPlusPlus();
    // 20 ms, then 20 ms + 4 ms (the threshold floor: 20 ms / 8 = 2.5 ms < 4 ms).
    const phases = drive(h, (r) => (r < 2 ? 20_000 : 20_000 + MIN_RTT_THRESH_US), 2 + CSS_ROUNDS + 1);
    assert.deepEqual(phases.slice(0, 3), ["slow-start", "slow-start", "css"]);
    assert.equal(h.exits, 1);
    assert.ok(phases.includes("congestion-avoidance"), phases.join(","));
    assert.equal(phases.indexOf("congestion-avoidance"), 2 + CSS_ROUNDS);
  });

  void test("RFC 9406 4.3: a rise below the threshold is not an exit", () => {
    const h = new HyStartPlusPlus();
    const phases = drive(h, (r) => (r < 2 ? 20_000 : 20_000 + MIN_RTT_THRESH_US - 1), 5);
    assert.deepEqual(phases, Array(5).fill("slow-start"));
  });

  void test("RFC 9406 4.3: in CSS a round under the baseline means the exit was spurious: slow start resumes", () => {
    const h = new HyStartPlusPlus();
    const phases = drive(h, (r) => (r === 2 ? 30_000 : r < 2 ? 20_000 : 21_000), 4);
    assert.deepEqual(phases, ["slow-start", "slow-start", "css", "slow-start"]);
    assert.equal(h.resumes, 1);
  });

  void test("fewer than N_RTT_SAMPLE samples in a round never end slow start", () => {
    const h = new HyStartPlusPlus();
    const phases = drive(h, (r) => (r < 2 ? 20_000 : 60_000), 4, N_RTT_SAMPLE - 1);
    assert.deepEqual(phases, Array(4).fill("slow-start"));
  });
});
