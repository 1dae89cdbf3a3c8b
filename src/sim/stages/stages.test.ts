import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Instant } from "../../time/instant.js";
import { parsePcap, PcapLinkType, PcapWriter } from "../../wire/pcap.js";
import { CollectingSink } from "../frame-sink.js";
import { Prng } from "../prng.js";
import { Scheduler } from "../scheduler.js";
import { CorruptStage } from "./corrupt.js";
import { DelayStage, JitterStage } from "./delay.js";
import { DuplicateStage } from "./duplicate.js";
import { GilbertElliottStage, LossStage } from "./loss.js";
import { MtuStage } from "./mtu.js";
import { RateLimitStage } from "./rate-limit.js";
import { MAC_ZERO } from "../../wire/ethernet.js";
import { ip } from "../../wire/ip-addr.js";
import { decodeFrame, emitTcpPacket } from "../../wire/packet.js";
import { BLANK_TCP, TcpFlag } from "../../wire/tcp-repr.js";
import { ReorderStage } from "./reorder.js";
import { PcapTapStage, TraceStage } from "./tap.js";

const t = (us: number): Instant => Instant.fromMicros(us);

/** A frame of `len` bytes whose first four bytes carry `id` and the rest a pattern. */
function frame(id: number, len = 64): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (i * 7 + id) & 0xff;
  new DataView(f.buffer).setUint32(0, id);
  return f;
}
const idOf = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset).getUint32(0);
const ids = (sink: CollectingSink): number[] => sink.frames.map((c) => idOf(c.frame));

/** Sends `n` frames, one every `gapUs`, through `stage` under `sched`, and runs to idle. */
function pump(
  sched: Scheduler,
  stage: { deliver(now: Instant, f: Uint8Array): void },
  n: number,
  gapUs = 10,
  len = 64,
): void {
  for (let i = 0; i < n; i++) {
    sched.at(t(i * gapUs), `tx ${i}`, () => {
      stage.deliver(sched.now, frame(i, len));
    });
  }
  assert.ok(sched.runUntilIdle(100 * n + 100), "scenario did not go idle");
}

void describe("DelayStage", () => {
  void test("delivers every frame exactly delayUs later, in order", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const stage = new DelayStage(sink, sched, { delayUs: 5000 });
    pump(sched, stage, 50, 10);
    assert.deepEqual(ids(sink), [...Array(50).keys()]);
    sink.frames.forEach((c, i) => {
      assert.equal(c.at, i * 10 + 5000);
    });
    assert.deepEqual(stage.stats, { received: 50, forwarded: 50, dropped: 0 });
  });

  void test("a bad config is a ConfigError", () => {
    assert.throws(() => new DelayStage(new CollectingSink(), new Scheduler(), { delayUs: -1 }), {
      code: "ERR_CONFIG",
    });
    assert.throws(() => new DelayStage(new CollectingSink(), new Scheduler(), { delayUs: 0.5 }), {
      code: "ERR_CONFIG",
    });
  });
});

void describe("JitterStage", () => {
  void test("order-keeping jitter adds at most jitterUs and never reorders", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const stage = new JitterStage(sink, sched, new Prng(1), { jitterUs: 1000 });
    pump(sched, stage, 500, 10);
    assert.deepEqual(ids(sink), [...Array(500).keys()]);
    let spread = 0;
    sink.frames.forEach((c, i) => {
      const extra = c.at - i * 10;
      assert.ok(extra >= 0, `frame ${i} early`);
      spread = Math.max(spread, extra);
    });
    assert.ok(spread <= 1000 + 500 * 10, "extra delay is bounded");
    assert.ok(stage.stats.extraUs > 0);
  });

  void test("reordering jitter keeps each delay in [0, jitterUs] and does reorder", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const stage = new JitterStage(sink, sched, new Prng(1), { jitterUs: 1000, reorder: true });
    pump(sched, stage, 500, 10);
    const got = ids(sink);
    assert.deepEqual(
      [...got].sort((a, b) => a - b),
      [...Array(500).keys()],
    );
    let inversions = 0;
    for (let i = 1; i < got.length; i++) if (got[i]! < got[i - 1]!) inversions++;
    assert.ok(inversions > 50, `only ${inversions} inversions`);
    for (const c of sink.frames) {
      const extra = c.at - idOf(c.frame) * 10;
      assert.ok(extra >= 0 && extra <= 1000, `extra ${extra}`);
    }
  });
});

void describe("LossStage", () => {
  void test("drops about `rate` of the frames and forwards the rest untouched", () => {
    const sink = new CollectingSink();
    const stage = new LossStage(sink, new Prng(11), { rate: 0.1 });
    const n = 20_000;
    const sent = Array.from({ length: n }, (_, i) => frame(i, 8));
    for (const f of sent) stage.deliver(t(0), f);
    const { received, forwarded, dropped } = stage.stats;
    assert.equal(received, n);
    assert.equal(forwarded + dropped, n);
    assert.equal(sink.frames.length, forwarded);
    const sigma = Math.sqrt(n * 0.1 * 0.9);
    assert.ok(Math.abs(dropped - n * 0.1) < 5 * sigma, `dropped ${dropped} of ${n}`);
    for (const c of sink.frames) assert.equal(c.frame, sent[idOf(c.frame)], "forwarded as the same object");
  });

  void test("rates 0 and 1 are exact; out-of-range rates are refused", () => {
    const none = new LossStage(new CollectingSink(), new Prng(1), { rate: 0 });
    const all = new LossStage(new CollectingSink(), new Prng(1), { rate: 1 });
    for (let i = 0; i < 1000; i++) {
      none.deliver(t(0), frame(i));
      all.deliver(t(0), frame(i));
    }
    assert.equal(none.stats.dropped, 0);
    assert.equal(all.stats.dropped, 1000);
    assert.throws(() => new LossStage(new CollectingSink(), new Prng(1), { rate: 1.2 }), {
      code: "ERR_CONFIG",
    });
  });
});

void describe("GilbertElliottStage", () => {
  void test("loses p/(p+r) of the frames in bursts of mean length about 1/r", () => {
    const sink = new CollectingSink();
    const p = 0.05;
    const r = 0.25;
    const stage = new GilbertElliottStage(sink, new Prng(5), { p, r });
    const n = 40_000;
    const lost: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const before = stage.stats.dropped;
      stage.deliver(t(0), frame(i, 8));
      lost.push(stage.stats.dropped > before);
    }
    const rate = stage.stats.dropped / n;
    assert.ok(Math.abs(rate - p / (p + r)) < 0.02, `loss rate ${rate}`);
    const bursts: number[] = [];
    let run = 0;
    for (const l of lost) {
      if (l) run++;
      else if (run > 0) {
        bursts.push(run);
        run = 0;
      }
    }
    const mean = bursts.reduce((a, b) => a + b, 0) / bursts.length;
    assert.ok(Math.abs(mean - 1 / r) < 0.5, `mean burst ${mean}`);
    assert.equal(stage.stats.badFrames, stage.stats.dropped, "lossBad 1, lossGood 0: drops only in Bad");
    assert.equal(stage.stats.bursts, bursts.length + (run > 0 ? 1 : 0));
    // A Bernoulli loss of the same rate has mean run length 1/(1-rate), about 1.2: clearly shorter.
    assert.ok(mean > 2 / (1 - rate));
  });
});

void describe("DuplicateStage", () => {
  void test("rate 1 doubles every frame with a separate copy", () => {
    const sink = new CollectingSink();
    const stage = new DuplicateStage(sink, new Prng(3), { rate: 1 });
    const sent = Array.from({ length: 100 }, (_, i) => frame(i));
    for (const f of sent) stage.deliver(t(7), f);
    assert.equal(sink.frames.length, 200);
    assert.deepEqual(stage.stats, { received: 100, forwarded: 200, dropped: 0, duplicated: 100 });
    for (let i = 0; i < 100; i++) {
      const a = sink.frames[2 * i]!;
      const b = sink.frames[2 * i + 1]!;
      assert.equal(a.frame, sent[i]);
      assert.notEqual(b.frame, sent[i], "the duplicate is a copy");
      assert.deepEqual(b.frame, sent[i]);
      assert.equal(b.at, 7);
    }
  });

  void test("rate 0.3 duplicates about 30%", () => {
    const stage = new DuplicateStage(new CollectingSink(), new Prng(3), { rate: 0.3 });
    for (let i = 0; i < 10_000; i++) stage.deliver(t(0), frame(i, 8));
    assert.ok(Math.abs(stage.stats.duplicated - 3000) < 250, `${stage.stats.duplicated}`);
    assert.equal(stage.stats.forwarded, 10_000 + stage.stats.duplicated);
  });
});

void describe("CorruptStage", () => {
  void test("flips exactly one bit in a copy and leaves the sender's frame untouched", () => {
    const sink = new CollectingSink();
    const stage = new CorruptStage(sink, new Prng(9), { rate: 1, skipBytes: 4 });
    for (let i = 0; i < 200; i++) {
      const original = frame(i, 60);
      const pristine = original.slice();
      stage.deliver(t(0), original);
      assert.deepEqual(original, pristine, "the original must not change");
      const got = sink.frames[i]!.frame;
      assert.notEqual(got, original);
      assert.deepEqual(got.subarray(0, 4), pristine.subarray(0, 4), "skipped bytes untouched");
      assert.equal(hamming(got, pristine), 1);
    }
    assert.equal(stage.stats.corrupted, 200);
  });

  void test("bits > 1 flips up to that many bits; short frames and rate 0.2 behave", () => {
    const sink = new CollectingSink();
    const stage = new CorruptStage(sink, new Prng(9), { rate: 1, bits: 3 });
    const f = frame(1, 40);
    stage.deliver(t(0), f);
    const d = hamming(sink.frames[0]!.frame, f);
    assert.ok(d >= 1 && d <= 3 && d % 2 === 1, `distance ${d}`);
    const skip = new CorruptStage(new CollectingSink(), new Prng(9), { rate: 1, skipBytes: 14 });
    skip.deliver(t(0), frame(2, 14));
    assert.equal(skip.stats.corrupted, 0, "nothing to corrupt past the skipped header");
    const some = new CorruptStage(new CollectingSink(), new Prng(9), { rate: 0.2 });
    for (let i = 0; i < 5000; i++) some.deliver(t(0), frame(i, 20));
    assert.ok(Math.abs(some.stats.corrupted - 1000) < 150, `${some.stats.corrupted}`);
  });
});

void describe("ReorderStage", () => {
  void test("a held frame is released right after holdFrames later frames pass it", () => {
    const sink = new CollectingSink();
    const stage = new ReorderStage(sink, new Scheduler(), new Prng(21), { rate: 0.1, holdFrames: 3 });
    const n = 2000;
    for (let i = 0; i < n; i++) stage.deliver(t(0), frame(i, 8));
    stage.flush(t(0));
    const got = ids(sink);
    assert.deepEqual(
      [...got].sort((a, b) => a - b),
      [...Array(n).keys()],
      "a permutation: nothing lost",
    );
    let late = 0;
    for (let i = 1; i < got.length; i++) if (got[i]! < got[i - 1]!) late++;
    assert.ok(late > 100, `only ${late} frames arrived late`);
    const { held, releasedByCount, releasedByTime } = stage.stats;
    assert.ok(Math.abs(held - n * 0.1) < 60, `held ${held}`);
    assert.equal(releasedByTime, 0);
    assert.ok(held - releasedByCount <= 3, "only the tail is left for flush");
    assert.equal(stage.stats.forwarded, n);
    assert.equal(stage.heldCount, 0);
  });

  void test("each frame is overtaken by exactly holdFrames frames or by none", () => {
    const sink = new CollectingSink();
    const stage = new ReorderStage(sink, new Scheduler(), new Prng(4), { rate: 0.3, holdFrames: 2 });
    const n = 300;
    for (let i = 0; i < n; i++) stage.deliver(t(0), frame(i, 8));
    const flushed = stage.heldCount;
    stage.flush(t(0));
    const got = ids(sink);
    const overtakenBy = got.map((id, i) => got.slice(0, i).filter((x) => x > id).length);
    const byCount = overtakenBy.filter((k) => k === 2).length;
    const other = overtakenBy.filter((k) => k !== 0 && k !== 2).length;
    assert.equal(byCount, stage.stats.releasedByCount);
    assert.ok(other <= flushed, `${other} frames overtaken by neither 0 nor 2 (flushed ${flushed})`);
    assert.ok(byCount > 50, `only ${byCount} reordered`);
  });

  void test("a frame held by time arrives holdUs later, after frames sent behind it", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const stage = new ReorderStage(sink, sched, new Prng(8), { rate: 0.3, holdUs: 500 });
    pump(sched, stage, 300, 100);
    assert.equal(sink.frames.length, 300);
    let held = 0;
    for (const c of sink.frames) {
      const sentAt = idOf(c.frame) * 100;
      assert.ok(c.at === sentAt || c.at === sentAt + 500, `frame ${idOf(c.frame)} at ${c.at}`);
      if (c.at === sentAt + 500) held++;
    }
    assert.equal(held, stage.stats.held);
    assert.equal(stage.stats.releasedByTime, held);
    const got = ids(sink);
    assert.ok(
      got.some((id, i) => i > 0 && id < got[i - 1]!),
      "some frame was overtaken",
    );
  });

  void test("with both limits the earlier one releases, and the loser's timer is cancelled", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const stage = new ReorderStage(sink, sched, new Prng(8), { rate: 0.3, holdFrames: 2, holdUs: 250 });
    pump(sched, stage, 400, 100);
    assert.equal(sink.frames.length, 400);
    const { held, releasedByCount, releasedByTime } = stage.stats;
    assert.equal(held, releasedByCount + releasedByTime);
    assert.ok(releasedByCount > 0 && releasedByTime > 0, `${releasedByCount} / ${releasedByTime}`);
    assert.equal(sched.pending, 0);
  });

  void test("a stage with neither limit is a config error", () => {
    assert.throws(() => new ReorderStage(new CollectingSink(), new Scheduler(), new Prng(1), { rate: 0.1 }), {
      code: "ERR_CONFIG",
    });
  });
});

void describe("RateLimitStage", () => {
  void test("RFC 3168 5: above ceMarkBytes queued, an ECT packet leaves marked CE (checksum redone, a copy); not-ECT never is", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const stage = new RateLimitStage(sink, sched, {
      bitsPerSecond: 8_000_000,
      ceMarkBytes: 1500,
      linkHeaderBytes: 14,
    });
    const packet = (ecn: number, v6 = false): Uint8Array =>
      emitTcpPacket({
        ip: v6
          ? { src: ip("2001:db8::1"), dst: ip("2001:db8::2"), ecn }
          : { src: ip("192.0.2.1"), dst: ip("192.0.2.2"), ecn },
        tcp: { ...BLANK_TCP, srcPort: 1, dstPort: 2, flags: TcpFlag.ACK, payload: new Uint8Array(900) },
        ethernet: { src: MAC_ZERO, dst: MAC_ZERO },
      });
    const sent = [packet(2), packet(2), packet(2), packet(0), packet(1), packet(2, true), packet(3)];
    const before = sent.map((f) => f.slice());
    for (const f of sent) stage.deliver(t(0), f);
    assert.ok(sched.runUntilIdle(100));
    const got = sink.frames.map((c) => {
      const d = decodeFrame(c.frame);
      assert.equal(d.error, undefined, "every frame still decodes, checksums verified");
      const n = d.network;
      return n?.kind === "ipv4" ? n.ipv4.ecn : n?.kind === "ipv6" ? n.ipv6.ecn : -1;
    });
    // Queued before each arrival: 0, 954, 1908, ... bytes: the first two pass as sent.
    assert.deepEqual(got, [2, 2, 3, 0, 3, 3, 3]);
    assert.equal(stage.stats.ceMarked, 3);
    sent.forEach((f, i) => assert.deepEqual(f, before[i], `frame ${i} as sent is untouched`));
  });

  void test("back-to-back frames leave spaced by bytes * 8 / rate", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    // 1000 bytes at 8 Mbit/s: 1000 us each.
    const stage = new RateLimitStage(sink, sched, { bitsPerSecond: 8_000_000 });
    for (let i = 0; i < 10; i++) stage.deliver(t(0), frame(i, 1000));
    assert.ok(sched.runUntilIdle(100));
    assert.deepEqual(
      sink.frames.map((c) => c.at),
      [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000],
    );
    assert.equal(stage.stats.maxBacklogBytes, 10_000);
    assert.equal(stage.stats.backlogBytes, 0);
    assert.equal(stage.stats.bytesForwarded, 10_000);
  });

  void test("fractional microseconds do not accumulate rounding error", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    // 100 bytes at 3 Mbit/s: 800/3 = 266.67 us each; the k-th leaves at ceil(k * 800 / 3).
    const stage = new RateLimitStage(sink, sched, { bitsPerSecond: 3_000_000, queueBytes: 1e6 });
    for (let i = 0; i < 300; i++) stage.deliver(t(0), frame(i, 100));
    assert.ok(sched.runUntilIdle(1000));
    sink.frames.forEach((c, i) => {
      assert.equal(c.at, Math.ceil(((i + 1) * 800) / 3), `frame ${i}`);
    });
  });

  void test("an idle link starts serialising at once", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const stage = new RateLimitStage(sink, sched, { bitsPerSecond: 12_000_000 }); // 1500 B = 1000 us
    sched.at(t(0), "a", () => stage.deliver(sched.now, frame(0, 1500)));
    sched.at(t(500), "b", () => stage.deliver(sched.now, frame(1, 1500))); // queued behind a
    sched.at(t(5000), "c", () => stage.deliver(sched.now, frame(2, 1500))); // link idle again
    assert.ok(sched.runUntilIdle(100));
    assert.deepEqual(
      sink.frames.map((c) => c.at),
      [1000, 2000, 6000],
    );
  });

  void test("a full queue drops at the tail", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const stage = new RateLimitStage(sink, sched, { bitsPerSecond: 8_000_000, queueBytes: 3000 });
    for (let i = 0; i < 10; i++) stage.deliver(t(0), frame(i, 1000));
    assert.ok(sched.runUntilIdle(100));
    assert.deepEqual(ids(sink), [0, 1, 2]);
    assert.equal(stage.stats.dropped, 7);
    // An oversize frame still goes through an empty queue; a frame count bound works too.
    const big = new RateLimitStage(new CollectingSink(), sched, {
      bitsPerSecond: 8_000_000,
      queueBytes: 100,
    });
    big.deliver(sched.now, frame(0, 1000));
    assert.equal(big.stats.dropped, 0);
    const counted = new RateLimitStage(new CollectingSink(), sched, {
      bitsPerSecond: 8_000_000,
      queueFrames: 2,
    });
    for (let i = 0; i < 5; i++) counted.deliver(sched.now, frame(i, 10));
    assert.equal(counted.stats.dropped, 3);
  });
});

void describe("MtuStage", () => {
  void test("drops frames whose payload exceeds the MTU and counts them", () => {
    const sink = new CollectingSink();
    const stage = new MtuStage(sink, { mtu: 1500, linkHeaderBytes: 14 });
    for (const len of [60, 1514, 1515, 9000, 1000]) stage.deliver(t(0), frame(len, len));
    assert.deepEqual(ids(sink), [60, 1514, 1000]);
    assert.deepEqual(stage.stats, { received: 5, forwarded: 3, dropped: 2 });
    assert.throws(() => new MtuStage(sink, { mtu: 0 }), { code: "ERR_CONFIG" });
  });
});

void describe("taps", () => {
  void test("the pcap tap records every frame with its virtual time", () => {
    const sched = new Scheduler();
    const sink = new CollectingSink();
    const writer = new PcapWriter({ linkType: PcapLinkType.RAW });
    const stage = new PcapTapStage(sink, writer);
    pump(sched, stage, 5, 1_250_000, 40);
    const cap = parsePcap(writer.toBytes());
    assert.ok(cap.ok);
    assert.deepEqual(
      cap.value.records.map((r) => r.time),
      [0, 1_250_000, 2_500_000, 3_750_000, 5_000_000],
    );
    cap.value.records.forEach((r, i) => {
      assert.deepEqual(r.data, frame(i, 40));
    });
    assert.equal(sink.frames.length, 5);
    assert.equal(stage.stats.forwarded, 5);
  });

  void test("the tracer calls back with (now, direction, frame) and forwards", () => {
    const seen: string[] = [];
    const sink = new CollectingSink();
    const stage = new TraceStage(sink, {
      direction: "a>b",
      onFrame: (now, dir, f) => seen.push(`${now} ${dir} ${idOf(f)} len=${f.length}`),
    });
    stage.deliver(t(42), frame(7, 20));
    assert.deepEqual(seen, ["42 a>b 7 len=20"]);
    assert.equal(sink.frames.length, 1);
  });
});

/** Number of differing bits. */
function hamming(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    let x = a[i]! ^ b[i]!;
    while (x !== 0) {
      d += x & 1;
      x >>>= 1;
    }
  }
  return d;
}
