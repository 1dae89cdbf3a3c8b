import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Duration, Instant } from "../time/instant.js";
import { Scheduler } from "./scheduler.js";
import { UsageError } from "../util/errors.js";

const seedEnv = process.env["FC_SEED"];
const FC_SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x5eed);
const t = (us: number): Instant => Instant.fromMicros(us);

void describe("Scheduler", () => {
  void test("runs events by time, then by insertion order, and moves now to each event", () => {
    const s = new Scheduler();
    const ran: string[] = [];
    const log = (name: string) => () => {
      ran.push(`${s.now}:${name}`);
    };
    s.at(t(30), "c", log("c"));
    s.at(t(10), "a1", log("a1"));
    s.at(t(20), "b", log("b"));
    s.at(t(10), "a2", log("a2"));
    s.at(t(10), "a3", log("a3"));
    assert.equal(s.pending, 5);
    assert.equal(s.nextAt(), 10);
    assert.ok(s.runUntilIdle(100));
    assert.deepEqual(ran, ["10:a1", "10:a2", "10:a3", "20:b", "30:c"]);
    assert.equal(s.now, 30);
    assert.equal(s.executed, 5);
    assert.equal(s.step(), false);
  });

  void test("an event scheduled for now by a running event runs after those already queued for now", () => {
    const s = new Scheduler();
    const ran: string[] = [];
    s.at(t(5), "first", () => {
      ran.push("first");
      s.at(s.now, "spawned", () => ran.push("spawned"));
      s.after(Duration.ZERO, "spawned2", () => ran.push("spawned2"));
    });
    s.at(t(5), "second", () => ran.push("second"));
    s.at(t(6), "later", () => ran.push("later"));
    assert.ok(s.runUntilIdle(100));
    assert.deepEqual(ran, ["first", "second", "spawned", "spawned2", "later"]);
  });

  void test("after() is relative to now", () => {
    const s = new Scheduler({ start: t(1000) });
    const h = s.after(Duration.fromMicros(250), "x", () => {});
    assert.equal(h.at, 1250);
    assert.equal(h.label, "x");
  });

  void test("a cancelled event never runs; cancel reports whether it did anything", () => {
    const s = new Scheduler();
    const ran: string[] = [];
    const a = s.at(t(1), "a", () => ran.push("a"));
    const b = s.at(t(2), "b", () => ran.push("b"));
    assert.equal(b.state, "pending");
    assert.equal(b.cancel(), true);
    assert.equal(b.cancel(), false);
    assert.equal(b.state, "cancelled");
    assert.equal(s.pending, 1);
    assert.ok(s.runUntilIdle(10));
    assert.deepEqual(ran, ["a"]);
    assert.equal(a.state, "fired");
    assert.equal(a.cancel(), false);
    assert.equal(s.now, 1, "a cancelled event does not move the clock");
  });

  void test("an event can cancel a later event at the same instant", () => {
    const s = new Scheduler();
    const ran: string[] = [];
    s.at(t(1), "killer", () => {
      ran.push("killer");
      victim.cancel();
    });
    const victim = s.at(t(1), "victim", () => ran.push("victim"));
    assert.ok(s.runUntilIdle(10));
    assert.deepEqual(ran, ["killer"]);
  });

  void test("cancellation is lazy but the heap stays bounded", () => {
    const s = new Scheduler();
    const handles = Array.from({ length: 10_000 }, (_, i) => s.at(t(i), `e${i}`, () => {}));
    for (let i = 0; i < handles.length; i++) if (i % 1000 !== 0) handles[i]!.cancel();
    assert.equal(s.pending, 10);
    assert.equal(s.queuedEntries, 10_000, "cancel itself does not touch the heap");
    assert.equal(s.nextAt(), 0);
    assert.ok(s.queuedEntries <= 2 * s.pending + 64, `heap holds ${s.queuedEntries} entries`);
    const seen: number[] = [];
    const s2 = new Scheduler({ trace: (at) => seen.push(at) });
    for (let i = 0; i < 200; i++) s2.at(t(i), "x", () => {}).cancel();
    s2.at(t(500), "y", () => {});
    assert.ok(s2.runUntilIdle(10));
    assert.deepEqual(seen, [500]);
  });

  void test("scheduling in the past is a usage error", () => {
    const s = new Scheduler();
    s.runUntil(t(100));
    assert.equal(s.now, 100);
    assert.throws(() => s.at(t(99), "late", () => {}), { code: "ERR_USAGE" });
    assert.throws(() => s.after(-1 as Duration, "neg", () => {}), { code: "ERR_USAGE" });
    assert.throws(() => s.at(1.5 as Instant, "frac", () => {}), { code: "ERR_USAGE" });
    assert.throws(() => s.runUntil(t(50)), { code: "ERR_USAGE" });
    assert.doesNotThrow(() => s.at(t(100), "now is fine", () => {}));
  });

  void test("runUntilIdle returns false when the budget runs out (livelock)", () => {
    const s = new Scheduler();
    const tick = (): void => {
      s.after(Duration.fromMicros(1), "tick", tick);
    };
    s.at(t(0), "tick", tick);
    assert.equal(s.runUntilIdle(1000), false);
    assert.equal(s.executed, 1000);
    assert.equal(s.pending, 1);
    // A finite chain drains within budget.
    const f = new Scheduler();
    let left = 5;
    const hop = (): void => {
      if (--left > 0) f.after(Duration.fromMicros(10), "hop", hop);
    };
    f.at(t(0), "hop", hop);
    assert.equal(f.runUntilIdle(5), true);
    assert.equal(f.now, 40);
  });

  void test("runUntil runs what is due, leaves the rest, and stops a same-instant livelock", () => {
    const s = new Scheduler();
    const ran: number[] = [];
    for (const at of [5, 10, 15, 20]) s.at(t(at), "e", () => ran.push(at));
    assert.equal(s.runUntil(t(15)), 3);
    assert.deepEqual(ran, [5, 10, 15]);
    assert.equal(s.now, 15);
    assert.equal(s.pending, 1);
    s.runUntil(t(17));
    assert.equal(s.now, 17);
    const spin = new Scheduler();
    const again = (): void => {
      spin.at(spin.now, "spin", again);
    };
    spin.at(t(1), "spin", again);
    assert.throws(() => spin.runUntil(t(2), 50), { code: "ERR_SIM_LIVELOCK" });
  });

  void test("the trace callback sees every event, before it runs", () => {
    const lines: string[] = [];
    const s = new Scheduler({ trace: (at, label) => lines.push(`${at} ${label}`) });
    s.at(t(3), "b", () => lines.push("ran b"));
    s.at(t(1), "a", () => lines.push("ran a"));
    assert.ok(s.runUntilIdle(10));
    assert.deepEqual(lines, ["1 a", "ran a", "3 b", "ran b"]);
  });

  void test("agrees with a sorted-array model under any sequence of operations", () => {
    type Op =
      | { readonly kind: "schedule"; readonly delay: number; readonly child: number | undefined }
      | { readonly kind: "cancel"; readonly pick: number }
      | { readonly kind: "step" }
      | { readonly kind: "runUntil"; readonly ahead: number };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record(
        {
          kind: fc.constant("schedule" as const),
          delay: fc.nat({ max: 20 }),
          child: fc.option(fc.nat({ max: 5 }), { nil: undefined }),
        },
        { noNullPrototype: true },
      ),
      fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }, { noNullPrototype: true }),
      fc.constant({ kind: "step" as const }),
      fc.record(
        { kind: fc.constant("runUntil" as const), ahead: fc.nat({ max: 30 }) },
        { noNullPrototype: true },
      ),
    );

    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        // The model: a plain array kept sorted by (at, order); removal is O(n) and obviously right.
        interface MEv {
          at: number;
          order: number;
          id: number;
          child: number | undefined;
        }
        let mNow = 0;
        let mOrder = 0;
        let queue: MEv[] = [];
        const mLog: string[] = [];
        const mInsert = (at: number, id: number, child: number | undefined): void => {
          queue.push({ at, order: mOrder++, id, child });
          queue.sort((x, y) => x.at - y.at || x.order - y.order);
        };
        const mStep = (): boolean => {
          const ev = queue.shift();
          if (ev === undefined) return false;
          mNow = ev.at;
          mLog.push(`${ev.at}:${ev.id}`);
          if (ev.child !== undefined) mInsert(mNow + ev.child, ev.id + 1000, undefined);
          return true;
        };

        const s = new Scheduler();
        const rLog: string[] = [];
        const handles: { id: number; cancel: () => boolean }[] = [];
        const mIds: number[] = [];
        const rSchedule = (at: number, id: number, child: number | undefined) =>
          s.at(t(at), `e${id}`, () => {
            rLog.push(`${s.now}:${id}`);
            if (child !== undefined)
              s.after(Duration.fromMicros(child), `e${id + 1000}`, () => rLog.push(`${s.now}:${id + 1000}`));
          });

        let nextId = 0;
        for (const op of ops) {
          switch (op.kind) {
            case "schedule": {
              const id = nextId++;
              const h = rSchedule(mNow + op.delay, id, op.child);
              handles.push({ id, cancel: () => h.cancel() });
              mIds.push(id);
              mInsert(mNow + op.delay, id, op.child);
              break;
            }
            case "cancel": {
              if (handles.length === 0) break;
              const h = handles[op.pick % handles.length]!;
              const wasQueued = queue.some((e) => e.id === h.id);
              queue = queue.filter((e) => e.id !== h.id);
              assert.equal(h.cancel(), wasQueued);
              break;
            }
            case "step":
              assert.equal(s.step(), mStep());
              break;
            case "runUntil": {
              const until = mNow + op.ahead;
              while (queue[0] !== undefined && queue[0].at <= until) mStep();
              mNow = until;
              s.runUntil(t(until));
              break;
            }
          }
          assert.equal(s.now, mNow);
          assert.equal(s.pending, queue.length);
          assert.equal(s.nextAt(), queue[0]?.at);
          assert.deepEqual(rLog, mLog);
        }
        assert.ok(s.runUntilIdle(10_000));
        while (mStep());
        assert.deepEqual(rLog, mLog);
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });
});

void test("chooser: picking the oldest every time runs every event once, in FIFO order", () => {
  const ran: string[] = [];
  const widths: number[] = [];
  const s = new Scheduler({
    choose: {
      among: (l) => l.startsWith("c"),
      pick: (ready) => {
        widths.push(ready.length);
        return 0;
      },
    },
  });
  for (const l of ["c1", "c2", "x", "c3"]) s.at(Instant.fromMicros(5), l, () => ran.push(l));
  s.at(Instant.fromMicros(6), "c4", () => ran.push("c4"));
  while (s.step());
  assert.deepEqual(ran, ["c1", "c2", "x", "c3", "c4"]);
  assert.deepEqual(widths, [2], "c1 and c2 were due together; x kept c3 behind it; c4 was alone");
  assert.equal(s.pending, 0);
});

void test("chooser: it orders only the events it chooses among; its pick runs first", () => {
  const ran: string[] = [];
  const s = new Scheduler({ choose: { among: (l) => l !== "x", pick: (ready) => ready.length - 1 } });
  for (const l of ["a", "b", "c"]) s.at(Instant.fromMicros(1), l, () => ran.push(l));
  s.at(Instant.fromMicros(1), "x", () => ran.push("x"));
  while (s.step());
  assert.deepEqual(ran, ["c", "b", "a", "x"]);
});

void test("chooser: a pick outside the events due is a UsageError", () => {
  const s = new Scheduler({ choose: { among: () => true, pick: (ready) => ready.length } });
  s.at(Instant.fromMicros(1), "a", () => undefined);
  s.at(Instant.fromMicros(1), "b", () => undefined);
  assert.throws(() => s.step(), UsageError);
});
