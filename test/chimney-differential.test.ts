// The differential property of the chimney: the same seeded bulk traffic (two hosts over the
// simulator, both directions) gives byte-identical application streams whether the connection
// runs on the host only, is offloaded right after establishment, or is offloaded and uploaded
// (once or several times) at random points: mid-indication, with indications partly accepted or
// refused, with posted receives partly filled, with data buffered on both sides, with
// out-of-order data held, after a FIN, during retransmission (loss). Every stream is checked byte
// by byte against the pattern the peer wrote (the host-only stream), every run must end idle
// with both sides closed, and each ledger must be quiescent. The offloaded runs use src/offload-target's
// SoftwareTarget, each schedule with state operations completing at once and after a delay.
// Failures print the replay line (CHIMNEY_SEED / CHIMNEY_SEEDS change the suite's seeds; CHIMNEY_SEEDS
// cannot go below the default).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FaultProfile } from "../src/sim/link.js";
import { Prng } from "../src/sim/prng.js";
import type { TcpConfig } from "../src/tcp/config.js";
import {
  describeRun,
  type KnobProfile,
  type OffloadOutcome,
  type OffloadRun,
  runOffloadPair,
} from "./support/offload-pair.js";

const SEED = Number(process.env["CHIMNEY_SEED"] ?? 0x5eed);
/**
 * Seeds per test: CHIMNEY_SEEDS, never fewer than the default (a smaller differential hides the
 * bugs it exists to find; `npm run test:deep` runs ten times as many).
 */
const DEFAULT_SEEDS = 40;
const SEEDS_PER_TEST = seedsPerTest(process.env["CHIMNEY_SEEDS"]);

function seedsPerTest(env: string | undefined): number {
  if (env === undefined) return DEFAULT_SEEDS;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < DEFAULT_SEEDS)
    throw new Error(`CHIMNEY_SEEDS=${env}: the differential runs at least ${DEFAULT_SEEDS} seeds per test`);
  return n;
}

interface Profile {
  readonly name: string;
  readonly fault: FaultProfile;
  readonly tcp: Partial<TcpConfig> | undefined;
  /** Reordering can legitimately end a closed connection with a RST (a late segment after CLOSED). */
  readonly resetOk: boolean;
}

const PROFILES: readonly Profile[] = [
  { name: "clean", fault: { delayUs: 1000 }, tcp: undefined, resetOk: false },
  { name: "loss 3%", fault: { delayUs: 1000, loss: 0.03 }, tcp: undefined, resetOk: false },
  {
    name: "reorder",
    fault: { delayUs: 1000, reorder: { rate: 0.05, holdFrames: 3 } },
    tcp: undefined,
    resetOk: true,
  },
  {
    name: "jitter + loss",
    fault: { delayUs: 1000, jitterUs: 2000, jitterReorders: true, loss: 0.01 },
    tcp: undefined,
    resetOk: true,
  },
  {
    // CUBIC (RFC 9438): its epoch does not cross the chimney; the streams must not care.
    name: "cubic + loss 3%",
    fault: { delayUs: 1000, loss: 0.03 },
    tcp: { congestionControl: "cubic" },
    resetOk: false,
  },
  {
    // ECN (RFC 3168) with CUBIC through a router that marks CE: the connections negotiate ECN,
    // so the manager keeps them on the host (no ECN in the delegated state); the streams must
    // be the same whichever way each run asked for offload.
    name: "cubic + ECN marks",
    fault: { delayUs: 1000, rateBps: 20_000_000, queueBytes: 60_000, ceMarkBytes: 15_000 },
    tcp: { congestionControl: "cubic", ecn: "on" },
    resetOk: false,
  },
  {
    // RACK-TLP (RFC 8985) with CUBIC and PRR through loss and reordering: its transmit log does
    // not cross the chimney (an importer seeds it with the flight); the streams must not care.
    name: "cubic + PRR + RACK, loss + reorder",
    fault: { delayUs: 1000, loss: 0.02, reorder: { rate: 0.03, holdFrames: 3 } },
    tcp: { congestionControl: "cubic", prr: true, rack: true },
    resetOk: true,
  },
  {
    name: "tiny windows + loss",
    fault: { delayUs: 1000, loss: 0.02 },
    tcp: { recvBufferSize: 8192, sendBufferSize: 8192 },
    resetOk: false,
  },
];
const KNOBS: readonly KnobProfile[] = ["accept-all", "mixed", "refuse-heavy", "posting"];

/** Totals across the suite: each branch the brief lists must actually have run. */
const totals = new Map<string, number>();

function check(r: OffloadRun, resetOk: boolean): OffloadOutcome {
  const o = runOffloadPair(r);
  const label = `${describeRun(r)} (suite seed ${SEED})\nlast manager steps:\n${o.log}`;
  assert.equal(o.error, undefined, `${label}\n${o.error}`);
  assert.equal(o.mismatchAt, undefined, `${label}\n${o.mismatchAt}`);
  assert.equal(o.receivedByB, r.bytesAtoB, `${label}\nb read ${o.receivedByB} of ${r.bytesAtoB}`);
  assert.equal(o.receivedByA, r.bytesBtoA, `${label}\na read ${o.receivedByA} of ${r.bytesBtoA}`);
  const okClose = (c: string | undefined) => c === "fin" || (resetOk && c === "reset");
  assert.ok(okClose(o.closedA), `${label}\na closed by ${o.closedA}`);
  assert.ok(okClose(o.closedB), `${label}\nb closed by ${o.closedB}`);
  assert.ok(o.idle, `${label}\nthe run did not go idle`);
  assert.equal(o.leak, undefined, `${label}\n${o.leak}`);
  for (const [k, v] of Object.entries(o.stats)) totals.set(k, (totals.get(k) ?? 0) + v);
  return o;
}

void describe("chimney differential: host-only, offloaded, offloaded then uploaded", () => {
  let index = 0;
  for (const profile of PROFILES) {
    for (const knobs of KNOBS) {
      const base = index++;
      void test(`${profile.name}, ${knobs}: ${SEEDS_PER_TEST} seeds x 5 runs`, () => {
        const rng = new Prng(SEED + base * 1_000_003);
        for (let i = 0; i < SEEDS_PER_TEST; i++) {
          const seed = rng.nextU32();
          const common = {
            seed,
            bytesAtoB: 10_000 + rng.below(40_000),
            bytesBtoA: rng.below(30_000),
            profile: profile.fault,
            knobs,
            family: rng.chance(0.5) ? (4 as const) : (6 as const),
            tcp: profile.tcp,
            lazyReadUs: rng.chance(0.3) ? 1 + rng.below(8000) : 0,
          };
          check({ ...common, sides: "none", offloadAtStart: false, toggles: [] }, profile.resetOk);
          const toggles: number[] = [];
          let t = 0;
          for (let n = 1 + rng.below(4); n > 0; n--) {
            t += 1 + rng.below(12_000);
            toggles.push(t);
          }
          const sides = (["a", "b", "both"] as const)[rng.below(3)] ?? "both";
          const atStart = rng.chance(0.7);
          // Each offloaded schedule twice: operations completing at once, and after a delay (so
          // initiates and terminates are in flight while data moves).
          for (const opDelayUs of [0, 1 + rng.below(3000)]) {
            const r = { ...common, opDelayUs };
            check({ ...r, sides: "both", offloadAtStart: true, toggles: [] }, profile.resetOk);
            check({ ...r, sides, offloadAtStart: atStart, toggles }, profile.resetOk);
          }
        }
      });
    }
  }

  void test("the suite exercised every branch it claims to", () => {
    const need = [
      "initiates",
      "terminates",
      "bufferedDataIn",
      "bufferedDataOut",
      "refusals",
      "posts",
      "zeroBytePosts",
      "postedBytesCompleted",
      "indicatedBytesAccepted",
      "sendBytesCompleted",
      "forwards",
      "heldSegments",
    ];
    for (const k of need)
      assert.ok((totals.get(k) ?? 0) > 0, `no run exercised ${k}: ${JSON.stringify([...totals])}`);
  });
});
