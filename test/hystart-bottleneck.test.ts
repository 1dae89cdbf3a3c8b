// HyStart++ (RFC 9406) end to end in the simulator: 4 MiB through a 20 Mbit/s bottleneck with a
// 150 KB queue, 10 ms each way. Plain slow start doubles past the queue and loses a burst;
// with HyStart++ the rising RTT ends slow start first: no loss, nothing resent. NewReno and
// CUBIC alike. Deterministic: a pure function of the seed, printed with every failure.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CongestionControl } from "../src/tcp/config.js";
import { runBulk } from "./support/bulk-transfer.js";

const SEED = 0x9406;
const BYTES = 4 * 1024 * 1024;

function transfer(hystart: boolean, congestionControl: CongestionControl) {
  return runBulk({
    seed: SEED,
    bytes: BYTES,
    profile: { delayUs: 10_000, rateBps: 20_000_000, queueBytes: 150_000 },
    tcp: { hystart, congestionControl, recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 },
  });
}

void describe("HyStart++ through a bottleneck (RFC 9406)", () => {
  for (const cc of ["newreno", "cubic"] as const) {
    void test(`RFC 9406 4.3: ${cc}: the RTT rise ends slow start before the queue overflows`, () => {
      const label = `seed ${SEED}, ${cc}`;
      const plain = transfer(false, cc);
      assert.equal(plain.received, BYTES);
      assert.ok(plain.sender.retransmits > 0, `${label}: plain slow start overflows the queue`);
      const hy = transfer(true, cc);
      assert.equal(hy.received, BYTES, `${label}: every byte arrived`);
      assert.ok(hy.sender.hystartExits >= 1, `${label}: HyStart++ left slow start`);
      assert.ok(
        hy.sender.retransmits < plain.sender.retransmits,
        `${label}: ${hy.sender.retransmits} retransmissions with HyStart++, ${plain.sender.retransmits} without`,
      );
      assert.ok(
        hy.goodputBps >= 0.9 * plain.goodputBps,
        `${label}: goodput ${hy.goodputBps} vs ${plain.goodputBps}`,
      );
    });
  }
});
