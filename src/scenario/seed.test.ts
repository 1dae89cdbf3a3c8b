// The seed scenario's verdict has one source: its checks. The held size is bounded by the target's
// receive window, and a size at that bound still verifies.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../util/errors.js";
import { runSeedScenario, seedHeldMax } from "./seed.js";

void describe("seed scenario (seed 5)", () => {
  void test("held beyond the target's receive window is a UsageError naming the maximum", () => {
    const max = seedHeldMax();
    for (const held of [0, max + 1, 100_000_000, 1.5]) {
      assert.throws(
        () => runSeedScenario({ seed: 5, held }),
        (e: unknown) => e instanceof UsageError && e.code === "ERR_USAGE" && e.message.includes(String(max)),
        `held ${held}`,
      );
    }
  });
  void test("held at the maximum verifies, and the timeline's verdict is the checks' verdict", () => {
    const r = runSeedScenario({ seed: 5, held: seedHeldMax() });
    assert.ok(
      r.ok,
      `seed 5: ${r.checks
        .filter((c) => !c.ok)
        .map((c) => c.name)
        .join(", ")}`,
    );
    assert.equal(
      r.ok,
      r.checks.every((c) => c.ok),
    );
    assert.equal(r.bufferedDataBytes, seedHeldMax());
    const last = r.timeline[r.timeline.length - 1];
    assert.equal(last?.step, "verified");
    assert.match(last.detail, new RegExp(`^all ${r.checks.length} checks hold;`));
  });
});
