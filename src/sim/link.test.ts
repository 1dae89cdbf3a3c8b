import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Instant } from "../time/instant.js";
import { parsePcap, PcapLinkType, PcapWriter } from "../wire/pcap.js";
import { CollectingSink } from "./frame-sink.js";
import { buildDuplexLink, buildLinkChain, type FaultProfile } from "./link.js";
import { Prng } from "./prng.js";
import { Scheduler } from "./scheduler.js";

const t = (us: number): Instant => Instant.fromMicros(us);
function frame(id: number, len = 64): Uint8Array {
  const f = new Uint8Array(len);
  new DataView(f.buffer).setUint32(0, id);
  return f;
}
const idOf = (f: Uint8Array): number => new DataView(f.buffer, f.byteOffset).getUint32(0);

const EVERYTHING: FaultProfile = {
  delayUs: 2000,
  jitterUs: 300,
  loss: 0.05,
  burstLoss: { p: 0.01, r: 0.5 },
  duplicate: 0.02,
  reorder: { rate: 0.05, holdFrames: 2, holdUs: 1000 },
  corrupt: { rate: 0.03, skipBytes: 4 },
  rateBps: 100_000_000,
  mtu: 1500,
};

void describe("buildLinkChain", () => {
  void test("a clean profile inserts no stage: frames pass synchronously as the same object", () => {
    const sink = new CollectingSink();
    const chain = buildLinkChain(sink, {
      scheduler: new Scheduler(),
      prng: new Prng(1),
      profile: {},
      direction: "a>b",
    });
    assert.equal(chain.stages.length, 0);
    const f = frame(1);
    chain.deliver(t(3), f);
    assert.equal(sink.frames[0]?.frame, f);
    assert.equal(sink.frames[0]?.at, 3);
    // Zero rates count as "not configured" too.
    const zero = buildLinkChain(sink, {
      scheduler: new Scheduler(),
      prng: new Prng(1),
      profile: {
        loss: 0,
        duplicate: 0,
        corrupt: 0,
        delayUs: 0,
        jitterUs: 0,
        reorder: { rate: 0, holdFrames: 1 },
      },
      direction: "a>b",
    });
    assert.equal(zero.stages.length, 0);
  });

  void test("a full profile builds every stage in the documented order", () => {
    const writer = new PcapWriter({ linkType: PcapLinkType.RAW });
    const chain = buildLinkChain(new CollectingSink(), {
      scheduler: new Scheduler(),
      prng: new Prng(1),
      profile: EVERYTHING,
      direction: "a>b",
      pcap: writer,
      onFrame: () => {},
    });
    assert.deepEqual(
      chain.stages.map((s) => s.kind),
      [
        "pcap",
        "mtu",
        "rate",
        "loss",
        "burst-loss",
        "duplicate",
        "corrupt",
        "reorder",
        "delay",
        "jitter",
        "trace",
      ],
    );
    const rxTap = buildLinkChain(new CollectingSink(), {
      scheduler: new Scheduler(),
      prng: new Prng(1),
      profile: { delayUs: 1 },
      direction: "a>b",
      pcap: writer,
      pcapAt: "rx",
      onFrame: () => {},
      traceAt: "tx",
    });
    assert.deepEqual(
      rxTap.stages.map((s) => s.kind),
      ["trace", "delay", "pcap"],
    );
  });

  void test("stats() is a snapshot keyed by stage kind", () => {
    const sched = new Scheduler();
    const chain = buildLinkChain(new CollectingSink(), {
      scheduler: sched,
      prng: new Prng(1),
      profile: { loss: 0.5, delayUs: 10 },
      direction: "x",
    });
    for (let i = 0; i < 100; i++) chain.deliver(t(0), frame(i));
    const before = chain.stats();
    assert.ok(sched.runUntilIdle(1000));
    const after = chain.stats();
    assert.equal(before["delay"]?.forwarded, 0);
    assert.equal(after["delay"]?.forwarded, after["loss"]?.forwarded);
    assert.equal((after["loss"]?.dropped ?? 0) + (after["loss"]?.forwarded ?? 0), 100);
  });

  void test("enabling a stage never shifts the random stream of another", () => {
    // Loss comes before duplicate and corrupt, so with its own stream it drops the same frames
    // whether or not they are enabled.
    const survivors = (profile: FaultProfile): number[] => {
      const sink = new CollectingSink();
      const chain = buildLinkChain(sink, {
        scheduler: new Scheduler(),
        prng: new Prng(77),
        profile,
        direction: "d",
      });
      for (let i = 0; i < 2000; i++) chain.deliver(t(0), frame(i, 32));
      return [...new Set(sink.frames.map((c) => idOf(c.frame)))];
    };
    const plain = survivors({ loss: 0.2 });
    assert.deepEqual(survivors({ loss: 0.2, duplicate: 0.3, corrupt: { rate: 0.5, skipBytes: 4 } }), plain);
    assert.notDeepEqual(
      survivors({ loss: 0.2, burstLoss: { p: 0.1, r: 0.5 } }),
      plain,
      "sanity: faults do matter",
    );
  });
});

void describe("buildDuplexLink", () => {
  void test("each direction reaches the other end; the pcap sees both", () => {
    const sched = new Scheduler();
    const atA = new CollectingSink();
    const atB = new CollectingSink();
    const writer = new PcapWriter({ linkType: PcapLinkType.RAW });
    const lines: string[] = [];
    const link = buildDuplexLink(atA, atB, {
      scheduler: sched,
      prng: new Prng(3),
      profile: { delayUs: 100 },
      reverse: { delayUs: 300 },
      names: ["host", "peer"],
      pcap: writer,
      onFrame: (now, dir, f) => lines.push(`${now} ${dir} ${idOf(f)}`),
    });
    link.aToB.deliver(t(0), frame(1));
    link.bToA.deliver(t(0), frame(2));
    assert.ok(sched.runUntilIdle(10));
    assert.deepEqual(lines, ["100 host>peer 1", "300 peer>host 2"]);
    assert.equal(atB.frames[0]?.at, 100);
    assert.equal(atA.frames[0]?.at, 300);
    const cap = parsePcap(writer.toBytes());
    assert.ok(cap.ok);
    assert.equal(cap.value.records.length, 2);
    assert.deepEqual(Object.keys(link.stats()), ["host>peer", "peer>host"]);
  });

  void test("faults on one direction do not change the other direction's randomness", () => {
    const reverseArrivals = (forward: FaultProfile): string[] => {
      const sched = new Scheduler();
      const atA = new CollectingSink();
      const link = buildDuplexLink(atA, new CollectingSink(), {
        scheduler: sched,
        prng: new Prng(12),
        profile: forward,
        reverse: EVERYTHING,
      });
      for (let i = 0; i < 300; i++) {
        sched.at(t(i * 50), "tx", () => {
          link.aToB.deliver(sched.now, frame(i));
          link.bToA.deliver(sched.now, frame(i));
        });
      }
      assert.ok(sched.runUntilIdle(100_000));
      return atA.frames.map((c) => `${c.at}:${idOf(c.frame)}`);
    };
    const base = reverseArrivals(EVERYTHING);
    assert.deepEqual(reverseArrivals({ ...EVERYTHING, loss: 0.5, corrupt: 0.9 }), base);
    assert.deepEqual(reverseArrivals({}), base);
  });

  void test("flush releases frames held by count", () => {
    const sched = new Scheduler();
    const atB = new CollectingSink();
    const link = buildDuplexLink(new CollectingSink(), atB, {
      scheduler: sched,
      prng: new Prng(1),
      profile: { reorder: { rate: 1, holdFrames: 5 } },
    });
    link.aToB.deliver(t(0), frame(1));
    assert.equal(atB.frames.length, 0);
    link.flush(t(0));
    assert.equal(atB.frames.length, 1);
  });
});
