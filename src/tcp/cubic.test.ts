// CUBIC (RFC 9438) against the RFC's own formulas: K and W_cubic (4.2), the Reno-friendly
// region (4.3), the concave and convex regions (4.4, 4.5), beta (4.6) and fast convergence
// (4.7). The engine's use of it is tested in pair.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Instant } from "../time/instant.js";
import { ConfigError } from "../util/errors.js";
import { tcpConfig } from "./config.js";
import { CUBIC_ALPHA, CUBIC_BETA, CUBIC_C, Cubic, cubicK, wCubic } from "./cubic.js";

const SMSS = 1000;
const at = (sec: number): Instant => Instant.fromMicros(Math.round(sec * 1e6));

/** One window of ACKs per RTT, a segment each, from `t0` for `secs`: cwnd (segments) per RTT. */
function grow(c: Cubic, cwndSegs: number, t0: number, secs: number, rtt: number): number[] {
  let cwnd = cwndSegs * SMSS;
  const trace: number[] = [];
  for (let t = t0; t < t0 + secs; t += rtt) {
    const n = Math.floor(cwnd / SMSS);
    for (let i = 0; i < n; i++) cwnd = c.onAck(at(t + (rtt * i) / n), cwnd, SMSS, SMSS, rtt);
    trace.push(cwnd / SMSS);
  }
  return trace;
}

void describe("CUBIC (RFC 9438)", () => {
  void test("4.1, 4.3: the constants: C = 0.4, beta = 0.7, alpha = 3(1 - beta)/(1 + beta)", () => {
    assert.equal(CUBIC_C, 0.4);
    assert.equal(CUBIC_BETA, 0.7);
    assert.ok(Math.abs(CUBIC_ALPHA - 0.9 / 1.7) < 1e-12);
  });

  void test("4.2: K = cbrt((W_max - cwnd_epoch) / C), and W_cubic(K) = W_max, W_cubic(0) = cwnd_epoch", () => {
    const k = cubicK(100, 70);
    assert.ok(Math.abs(k - Math.cbrt(30 / 0.4)) < 1e-12);
    assert.ok(Math.abs(wCubic(k, k, 100) - 100) < 1e-9);
    assert.ok(Math.abs(wCubic(0, k, 100) - 70) < 1e-9);
    assert.equal(cubicK(50, 80), 0, "no way back to W_max when the epoch starts above it");
  });

  void test("4.6, 4.7: a congestion event gives ssthresh = 0.7 cwnd; W_max with fast convergence", () => {
    const c = new Cubic();
    assert.equal(c.onCongestion(100 * SMSS, SMSS), 70 * SMSS);
    assert.equal(c.wMax, 100);
    // Below the last W_max: the flow releases bandwidth, W_max = cwnd (1 + beta) / 2.
    assert.equal(c.onCongestion(80 * SMSS, SMSS), 56 * SMSS);
    assert.ok(Math.abs((c.wMax ?? 0) - 68) < 1e-9);
    assert.equal(c.onCongestion(2 * SMSS, SMSS), 2 * SMSS, "never below two segments");
  });

  void test("4.4, 4.5: concave up to W_max near t = K, then convex beyond it", () => {
    const c = new Cubic();
    c.onCongestion(200 * SMSS, SMSS);
    const rtt = 0.05;
    const trace = grow(c, 140, 10, 14, rtt);
    const k = c.k;
    assert.ok(Math.abs(k - Math.cbrt(60 / 0.4)) < 1e-9, `K ${k}`);
    // At t = K the window is back near W_max (the target runs one RTT ahead).
    const atK = trace[Math.round(k / rtt)] ?? 0;
    assert.ok(atK > 190 && atK < 215, `cwnd ${atK.toFixed(1)} at K = ${k.toFixed(2)} s`);
    // Growth per RTT shrinks toward K (concave) and grows after it (convex).
    const step = (i: number): number => (trace[i + 1] ?? 0) - (trace[i] ?? 0);
    const early = Math.round((0.2 * k) / rtt);
    const nearK = Math.round((0.9 * k) / rtt);
    const late = Math.round((1.6 * k) / rtt);
    assert.ok(step(early) > step(nearK), `concave: ${step(early).toFixed(2)} then ${step(nearK).toFixed(2)}`);
    assert.ok(step(late) > step(nearK), `convex: ${step(late).toFixed(2)} after ${step(nearK).toFixed(2)}`);
    // Never more than 1.5 cwnd per RTT (the target's clamp).
    for (let i = 0; i + 1 < trace.length; i++)
      assert.ok((trace[i + 1] ?? 0) <= 1.5 * (trace[i] ?? 0) + 1e-9, `RTT ${i}`);
  });

  void test("4.3: with a small W_max and a short RTT the window follows the Reno-friendly estimate", () => {
    const c = new Cubic();
    c.onCongestion(10 * SMSS, SMSS);
    const rtt = 0.01;
    const trace = grow(c, 7, 0, 1, rtt);
    const last = trace.at(-1) ?? 0;
    // W_cubic(1 s) is still below W_max (K is about 1.96 s); Reno adds at most a segment per RTT.
    const cubicAt1s = wCubic(1, c.k, 10);
    assert.ok(cubicAt1s < 10, `W_cubic(1 s) ${cubicAt1s}`);
    assert.ok(
      last > 5 * cubicAt1s,
      `cwnd ${last.toFixed(1)} does not follow W_est past W_cubic ${cubicAt1s.toFixed(1)}`,
    );
    assert.ok(
      last <= 7 + trace.length + 1,
      `cwnd ${last.toFixed(1)} grew faster than Reno over ${trace.length} RTTs`,
    );
    assert.ok(
      trace.every((x, i) => i === 0 || x >= (trace[i - 1] ?? 0)),
      "never shrinks",
    );
  });

  void test("congestionControl takes newreno or cubic; anything else is a ConfigError", () => {
    assert.equal(tcpConfig({}).congestionControl, "cubic"); // the default, as Linux's
    assert.equal(tcpConfig({ congestionControl: "newreno" }).congestionControl, "newreno");
    assert.equal(tcpConfig({ congestionControl: "cubic" }).congestionControl, "cubic");
    assert.throws(
      () => tcpConfig({ congestionControl: "bbr" as never }),
      (e: unknown) => e instanceof ConfigError && e.message.includes("newreno, cubic"),
    );
  });

  void test("without a congestion event the epoch starts with W_max = cwnd (after an import)", () => {
    const c = new Cubic();
    const trace = grow(c, 50, 0, 2, 0.1);
    assert.equal(c.k, 0);
    assert.ok((trace.at(-1) ?? 0) > 50, "the window grows (convex from the start)");
  });
});
