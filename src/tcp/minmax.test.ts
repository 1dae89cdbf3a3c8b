// The windowed minimum (RFC 8985 6.2 step 1: min_RTT "can adapt when migrating to significantly
// longer paths"): by property against the samples themselves, and the path that got slower.
// fast-check with a fixed seed (printed on failure); FC_SEED=random explores.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { WindowedMin } from "./minmax.js";

const seedEnv = process.env["FC_SEED"];
const SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x317);
const W = 1000;

void test("RFC 8985 6.2 step 1: the windowed min is a sample of the last window, at most the newest, at least the window's least", () => {
  const gap = fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: W / 2 }), weight: 9 },
    { arbitrary: fc.integer({ min: W / 2, max: 3 * W }), weight: 1 },
  );
  const sample = fc.record({ gap, v: fc.integer({ min: 1, max: 100 }) });
  fc.assert(
    fc.property(fc.array(sample, { minLength: 1, maxLength: 300 }), (samples) => {
      const m = new WindowedMin(W);
      const seen: { t: number; v: number }[] = [];
      let now = 0;
      for (const { gap, v } of samples) {
        now += gap;
        seen.push({ t: now, v });
        const got = m.update(now, v);
        assert.equal(got, m.value);
        const inWindow = seen.filter((s) => now - s.t <= W);
        assert.ok(
          inWindow.some((s) => s.v === got),
          `at ${now}: ${got} is no sample of the last window`,
        );
        assert.ok(got <= v, `at ${now}: ${got} above the newest sample ${v}`);
        assert.ok(got >= Math.min(...inWindow.map((s) => s.v)));
      }
    }),
    { seed: SEED, numRuns: 300 },
  );
});

void test("RFC 8985 6.2 step 1: a path that got slower keeps its old minimum for one window, then follows the new path", () => {
  const m = new WindowedMin(W);
  m.update(0, 10);
  for (let t = 50; t <= W; t += 50) assert.equal(m.update(t, 40), 10, `at ${t}: within the window`);
  let t = W;
  while (m.value === 10 && t < 4 * W) {
    t += 50;
    m.update(t, 40);
  }
  assert.equal(m.value, 40);
  assert.ok(t <= W + 50, `the old minimum outlived its window (until ${t})`);
  // A faster sample wins at once, and reset forgets everything.
  assert.equal(m.update(t + 1, 5), 5);
  m.reset();
  assert.equal(m.value, Number.POSITIVE_INFINITY);
});
