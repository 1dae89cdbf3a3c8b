// A run is a pure function of its seed: the same seed gives the same trace, counters and
// capture; another seed gives a different trace.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { type DuplexLink, buildDuplexLink, type FaultProfile } from "../src/sim/link.js";
import { Prng } from "../src/sim/prng.js";
import { Scheduler } from "../src/sim/scheduler.js";
import { fnv1a64, TraceLog } from "../src/sim/trace.js";
import { Instant } from "../src/time/instant.js";
import { PcapLinkType, PcapWriter } from "../src/wire/pcap.js";

/** Every fault at once, with rates high enough that each fires within a few hundred frames. */
const PROFILE: FaultProfile = {
  delayUs: 5000,
  jitterUs: 800,
  jitterReorders: true,
  loss: 0.05,
  burstLoss: { p: 0.05, r: 0.4 },
  duplicate: 0.04,
  reorder: { rate: 0.05, holdFrames: 3, holdUs: 4000 },
  corrupt: { rate: 0.05, bits: 2 },
  rateBps: 10_000_000,
  queueBytes: 12_000,
  mtu: 1500,
};

interface RunResult {
  readonly digest: string;
  readonly text: string;
  readonly stats: ReturnType<DuplexLink["stats"]>;
  readonly pcap: Uint8Array;
  readonly lines: number;
}

function run(seed: number): RunResult {
  const log = new TraceLog();
  const sched = new Scheduler({ trace: (at, label) => log.record(at, "sched", label) });
  const root = new Prng(seed);
  const trafficRng = root.fork(); // forks in a fixed order: traffic first, then the link
  const writer = new PcapWriter({ linkType: PcapLinkType.RAW });
  const rx = (node: string) => ({
    deliver(now: Instant, f: Uint8Array): void {
      log.record(now, node, "rx", `len=${f.length} h=${fnv1a64(String.fromCharCode(...f))}`);
    },
  });
  const link = buildDuplexLink(rx("a"), rx("b"), {
    scheduler: sched,
    prng: root,
    profile: PROFILE,
    pcap: writer,
  });
  for (let i = 0; i < 300; i++) {
    // Sizes vary; some exceed the MTU. Content depends on the traffic stream.
    const len = 40 + trafficRng.below(1600);
    const f = new Uint8Array(len);
    for (let j = 0; j < len; j++) f[j] = trafficRng.below(256);
    const dir = i % 3 === 0 ? link.bToA : link.aToB;
    sched.at(Instant.fromMicros(i * 200), `tx ${dir.direction} ${i}`, () => {
      log.record(sched.now, dir.direction, "tx", `len=${len}`);
      dir.deliver(sched.now, f);
    });
  }
  assert.ok(sched.runUntilIdle(100_000), `seed ${seed}: scenario did not go idle`);
  return {
    digest: log.digest(),
    text: log.text(),
    stats: link.stats(),
    pcap: writer.toBytes(),
    lines: log.count,
  };
}

const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

void test("the same seed gives the same trace digest, counters and capture", () => {
  const a = run(7);
  const b = run(7);
  assert.equal(a.digest, b.digest, "seed 7");
  assert.equal(sha256(a.text), sha256(b.text));
  assert.equal(a.digest, fnv1a64(a.text));
  assert.deepEqual(a.stats, b.stats);
  assert.equal(sha256(a.pcap), sha256(b.pcap));
  assert.ok(a.lines > 600, `only ${a.lines} trace lines`);
});

void test("a different seed gives a different trace", () => {
  const a = run(7);
  const c = run(8);
  assert.notEqual(a.digest, c.digest);
  assert.notDeepEqual(a.stats, c.stats);
});

void test("every fault in the profile actually fired in the scenario", () => {
  const s = run(7).stats["a>b"]!;
  const fired = {
    mtu: s["mtu"]!.dropped,
    rateQueued: (s["rate"] as { maxBacklogBytes: number } | undefined)?.maxBacklogBytes ?? 0,
    loss: s["loss"]!.dropped,
    burstLoss: s["burst-loss"]!.dropped,
    duplicate: (s["duplicate"] as { duplicated: number } | undefined)?.duplicated ?? 0,
    corrupt: (s["corrupt"] as { corrupted: number } | undefined)?.corrupted ?? 0,
    reorder: (s["reorder"] as { held: number } | undefined)?.held ?? 0,
    jitter: (s["jitter"] as { extraUs: number } | undefined)?.extraUs ?? 0,
  };
  for (const [what, n] of Object.entries(fired))
    assert.ok(n > 0, `${what} never fired: ${JSON.stringify(fired)}`);
  assert.ok(s["rate"]!.dropped > 0, "the bottleneck queue overflowed at least once");
});
