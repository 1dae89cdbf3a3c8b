// Two host stacks over the simulator: every byte each application reads is exactly the byte
// the other wrote, for many seeds and fault profiles. Failures name the seed to replay.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FaultProfile } from "../src/sim/link.js";
import { runPair, type PairRun } from "./support/sim-pair.js";

function check(run: PairRun): void {
  const o = runPair(run);
  const label = `seed ${run.seed} profile ${JSON.stringify(run.profile)} family ${run.family ?? 4}`;
  assert.equal(o.mismatchAt, undefined, `${label}: ${o.mismatchAt}`);
  assert.equal(o.receivedByB, run.bytesAtoB, `${label}: b read ${o.receivedByB} of ${run.bytesAtoB}`);
  assert.equal(o.receivedByA, run.bytesBtoA, `${label}: a read ${o.receivedByA} of ${run.bytesBtoA}`);
  assert.equal(o.closedA, "fin", `${label}: a closed by ${o.closedA}`);
  assert.equal(o.closedB, "fin", `${label}: b closed by ${o.closedB}`);
  assert.ok(o.idle, `${label}: the run did not go idle (timers left after both sides closed)`);
}

void describe("two host stacks over a clean link", () => {
  void test("IPv4: ARP resolves, the handshake completes, 1 MB each way arrives intact", () => {
    check({ seed: 1, bytesAtoB: 1 << 20, bytesBtoA: 1 << 20, profile: { delayUs: 500 } });
  });
  void test("IPv6: neighbor discovery resolves, 1 MB each way arrives intact", () => {
    check({ seed: 2, bytesAtoB: 1 << 20, bytesBtoA: 1 << 20, profile: { delayUs: 500 }, family: 6 });
  });
});

const PROFILES: [string, FaultProfile, Partial<PairRun>][] = [
  ["loss 2%", { delayUs: 2000, loss: 0.02 }, {}],
  ["loss 10%", { delayUs: 1000, loss: 0.1 }, {}],
  ["reorder", { delayUs: 1000, reorder: { rate: 0.05, holdFrames: 3 } }, {}],
  ["duplicate", { delayUs: 1000, duplicate: 0.05 }, {}],
  ["corrupt", { delayUs: 1000, corrupt: 0.02 }, {}],
  ["jitter", { delayUs: 1000, jitterUs: 3000, jitterReorders: true }, {}],
  ["mss 536 (IPv4, MTU 576)", { delayUs: 1000, loss: 0.02 }, { mtu: 576, family: 4 }],
  ["tiny windows", { delayUs: 1000, loss: 0.01 }, { tcp: { recvBufferSize: 4096, sendBufferSize: 4096 } }],
];

void describe("two host stacks over faulty links (seeded)", () => {
  for (const [name, profile, extra] of PROFILES) {
    void test(`${name}: streams identical for 10 seeds`, () => {
      for (let seed = 100; seed < 110; seed++) {
        check({
          seed,
          bytesAtoB: 100_000,
          bytesBtoA: 60_000,
          profile,
          family: seed % 2 === 0 ? 4 : 6,
          ...extra,
        });
      }
    });
  }
});

void describe("two host stacks: many seeded cases", () => {
  void test("1,200 seeds across every fault profile: streams identical, clean close", () => {
    for (let seed = 1000; seed < 2200; seed++) {
      const [, profile, extra] = PROFILES[seed % PROFILES.length]!;
      check({
        seed,
        bytesAtoB: 12_000 + (seed % 7) * 1000,
        bytesBtoA: 6_000,
        profile,
        family: seed % 3 === 0 ? 6 : 4,
        chunk: 1000 + (seed % 5) * 700,
        ...extra,
      });
    }
  });
});
