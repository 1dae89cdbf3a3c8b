// ECN end to end (RFC 3168) in the simulator: a bulk transfer through a bottleneck whose router
// marks CE above a queue threshold. With ECN the sender backs off on the marks (ECE, CWR) and the
// queue never overflows: no packet is lost, nothing is retransmitted. The same transfer without
// ECN fills the queue until the tail drops and recovers by retransmission. NewReno and CUBIC
// alike. Deterministic: a pure function of the seed, printed with every failure.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CongestionControl, EcnMode } from "../src/tcp/config.js";
import { runBulk } from "./support/bulk-transfer.js";

const SEED = 0xec5;
const BYTES = 4 * 1024 * 1024;

function transfer(ecn: EcnMode, congestionControl: CongestionControl) {
  return runBulk({
    seed: SEED,
    bytes: BYTES,
    // 20 Mbit/s, 10 ms each way: a BDP of 50 KB; the router marks above one BDP queued and holds
    // 300 KB, room for the overshoot of slow start while the first marks make their round trip.
    profile: { delayUs: 10_000, rateBps: 20_000_000, queueBytes: 300_000, ceMarkBytes: 50_000 },
    tcp: { ecn, congestionControl, recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 },
  });
}

void describe("ECN through a marking bottleneck (RFC 3168)", () => {
  for (const cc of ["newreno", "cubic"] as const) {
    void test(`RFC 3168 6.1.2: ${cc} with ECN answers the marks and loses nothing; without ECN the queue overflows`, () => {
      const withEcn = transfer("on", cc);
      const label = `seed ${SEED}, ${cc}`;
      assert.equal(withEcn.received, BYTES, `${label}: every byte arrived`);
      assert.ok(withEcn.receiver.ecnCeIn > 0, `${label}: the router marked CE`);
      assert.ok(withEcn.sender.ecnReductions > 0, `${label}: the sender reduced on ECE`);
      assert.equal(withEcn.sender.retransmits, 0, `${label}: nothing lost, nothing resent with ECN`);
      const without = transfer("off", cc);
      assert.equal(without.received, BYTES, `${label}: every byte arrived without ECN too`);
      assert.equal(without.receiver.ecnCeIn, 0);
      assert.ok(without.sender.retransmits > 0, `${label}: without ECN the tail drops cost retransmissions`);
      assert.ok(
        withEcn.goodputBps >= 0.9 * without.goodputBps,
        `${label}: ECN goodput ${withEcn.goodputBps} vs ${without.goodputBps} without`,
      );
    });
  }
});
