// Pair tests: two engines wired through an in-test lossy, reordering link in virtual time.
// Bytes read must equal bytes written, both ways, for many seeds (RFC 9293 end to end).
import assert from "node:assert/strict";
import { Session } from "node:inspector/promises";
import { describe, test } from "node:test";
import { Instant } from "../time/instant.js";
import { MinHeap } from "../util/heap.js";
import type { TcpRepr } from "../wire/tcp-repr.js";
import { type TcpConfig, tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";
import type { TcpSnapshot } from "./types.js";
import { Seq } from "../wire/seq.js";

/** mulberry32: a tiny seeded PRNG for the link. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LinkOpts {
  loss: number;
  reorder: number;
  delayUs: number;
  jitterUs: number;
  /** Probability that a segment is delivered twice. */
  dup?: number;
}

interface Flight {
  at: number;
  order: number;
  toB: boolean;
  seg: TcpRepr;
}

/** Deterministic byte pattern: byte i of stream `s`. */
function patternByte(s: number, i: number): number {
  return (i * 31 + s * 7 + (i >>> 8)) & 0xff;
}

export interface PairResult {
  a: TcpConnection;
  b: TcpConnection;
  gotAtA: number;
  gotAtB: number;
  now: number;
  steps: number;
  migrated: boolean;
}

export interface PairOpts {
  seed: number;
  bytesAtoB: number;
  bytesBtoA: number;
  cfgA: TcpConfig;
  cfgB: TcpConfig;
  link: LinkOpts;
  chunk: number;
  /** At this many bytes received by B, export B and import it into a fresh engine. */
  migrateBAt?: number;
  /** Migrate into B's own engine (`hibernate`, then `reimport`) instead of a fresh one. */
  migrateInPlace?: boolean;
  maxSteps?: number;
  /** Close both sides once done. */
  close?: boolean;
  /** Called with the sender after every step and before each segment it receives. */
  onStep?: (a: TcpConnection, now: Instant) => void;
}

/** Runs a transfer; checks each received byte against the pattern. */
export function runPair(o: PairOpts): PairResult {
  const rnd = prng(o.seed);
  const flights = new MinHeap<Flight>((x, y) => x.at < y.at || (x.at === y.at && x.order < y.order));
  let order = 0;
  let now = 0;
  const a = TcpConnection.connect(
    o.cfgA,
    { localPort: 1000, remotePort: 80, iss: Seq.of(0xffff_0000 + o.seed), tsOffset: 12345 },
    Instant.ZERO,
  );
  let b: TcpConnection | undefined;
  let sentA = 0;
  let sentB = 0;
  let gotAtA = 0;
  let gotAtB = 0;
  let migrated = false;
  const tmp = new Uint8Array(65536);
  const makeChunk = (s: number, from: number, n: number): Uint8Array => {
    const c = new Uint8Array(n);
    for (let i = 0; i < n; i++) c[i] = patternByte(s, from + i);
    return c;
  };
  const put = (toB: boolean, seg: TcpRepr): void => {
    if (rnd() < o.link.loss) return;
    let delay = o.link.delayUs + Math.floor(rnd() * o.link.jitterUs);
    if (rnd() < o.link.reorder) delay += o.link.delayUs * 2;
    flights.push({ at: now + delay, order: order++, toB, seg });
    if (o.link.dup !== undefined && rnd() < o.link.dup)
      flights.push({ at: now + delay + 100, order: order++, toB, seg });
  };
  const pump = (c: TcpConnection, toB: boolean): void => {
    const t = Instant.fromMicros(now);
    for (let s = c.pollTransmit(t); s !== undefined; s = c.pollTransmit(t)) put(toB, s);
    while (c.pollEvent() !== undefined);
  };
  const app = (): void => {
    // Writers.
    while (sentA < o.bytesAtoB && a.sendSpace > 0 && a.state !== "CLOSED") {
      const n = Math.min(o.chunk, o.bytesAtoB - sentA, a.sendSpace);
      const r = a.send(makeChunk(0, sentA, n));
      if (typeof r !== "number" || r === 0) break;
      sentA += r;
    }
    if (b !== undefined) {
      while (sentB < o.bytesBtoA && b.sendSpace > 0 && b.state !== "CLOSED") {
        const n = Math.min(o.chunk, o.bytesBtoA - sentB, b.sendSpace);
        const r = b.send(makeChunk(1, sentB, n));
        if (typeof r !== "number" || r === 0) break;
        sentB += r;
      }
    }
    // Readers.
    for (let n = a.recvInto(tmp); n > 0; n = a.recvInto(tmp)) {
      for (let i = 0; i < n; i++)
        if (tmp[i] !== patternByte(1, gotAtA + i)) assert.fail(`A byte ${gotAtA + i}`);
      gotAtA += n;
    }
    if (b !== undefined) {
      for (let c = b.recv(); c !== undefined; c = b.recv()) {
        for (let i = 0; i < c.length; i++)
          if (c[i] !== patternByte(0, gotAtB + i)) assert.fail(`B byte ${gotAtB + i}`);
        gotAtB += c.length;
      }
    }
    if (o.close === true) {
      if (sentA === o.bytesAtoB && (a.state === "ESTABLISHED" || a.state === "CLOSE-WAIT")) a.close();
      if (b !== undefined && sentB === o.bytesBtoA && (b.state === "ESTABLISHED" || b.state === "CLOSE-WAIT"))
        b.close();
    }
  };
  const maxSteps = o.maxSteps ?? 2_000_000;
  let steps = 0;
  for (; steps < maxSteps; steps++) {
    const t = Instant.fromMicros(now);
    app();
    pump(a, true);
    if (b !== undefined) pump(b, false);
    a.checkInvariants();
    b?.checkInvariants();
    if (
      o.migrateBAt !== undefined &&
      !migrated &&
      b !== undefined &&
      gotAtB >= o.migrateBAt &&
      MIGRATABLE.has(b.state)
    ) {
      // Chimney offload: snapshot, then continue on a fresh engine whose clock is elsewhere.
      const snap = b.exportState(t);
      if (o.migrateInPlace === true) {
        b.hibernate();
        b.reimport(snap, t, o.cfgB);
      } else b = TcpConnection.importState(snap, t, o.cfgB);
      migrated = true;
      pump(b, false);
    }
    const done =
      gotAtA === o.bytesBtoA &&
      gotAtB === o.bytesAtoB &&
      (o.close !== true || (closedOrTw(a) && b !== undefined && closedOrTw(b)));
    if (done) break;
    // Next event.
    let next = flights.peek()?.at ?? Infinity;
    const ta = a.pollTimeout();
    if (ta !== undefined) next = Math.min(next, ta);
    const tb = b?.pollTimeout();
    if (tb !== undefined) next = Math.min(next, tb);
    if (next === Infinity) break;
    now = Math.max(now, next);
    const tn = Instant.fromMicros(now);
    // Deliver every due segment in (time, order).
    for (let f = flights.peek(); f !== undefined && f.at <= now; f = flights.peek()) {
      flights.pop();
      if (f.toB) {
        if (b === undefined)
          b = TcpConnection.accept(
            o.cfgB,
            { localPort: 80, remotePort: 1000, iss: Seq.of(0xfffff000 - o.seed), tsOffset: 999 },
            f.seg,
            tn,
          );
        else b.handleSegment(tn, f.seg);
      } else {
        o.onStep?.(a, tn);
        a.handleSegment(tn, f.seg);
      }
    }
    if (ta !== undefined && ta <= now) a.handleTimeout(tn);
    if (b !== undefined && tb !== undefined && tb <= now) b.handleTimeout(tn);
    o.onStep?.(a, tn);
  }
  assert.ok(b !== undefined, "server never created");
  return { a, b, gotAtA, gotAtB, now, steps, migrated };
}

const MIGRATABLE = new Set(["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK"]);

function closedOrTw(c: TcpConnection): boolean {
  return c.state === "CLOSED" || c.state === "TIME-WAIT";
}

const LAN: LinkOpts = { loss: 0, reorder: 0, delayUs: 500, jitterUs: 0 };

void describe("pair transfer (RFC 9293 end to end)", () => {
  void test("1 MB each way, clean link, then orderly close", () => {
    const cfg = tcpConfig();
    const r = runPair({
      seed: 1,
      bytesAtoB: 1 << 20,
      bytesBtoA: 1 << 20,
      cfgA: cfg,
      cfgB: cfg,
      link: LAN,
      chunk: 10000,
      close: true,
    });
    assert.equal(r.gotAtB, 1 << 20);
    assert.equal(r.gotAtA, 1 << 20);
    assert.ok(closedOrTw(r.a) && closedOrTw(r.b));
    assert.equal(r.a.stats.retransmits, 0);
    assert.equal(r.b.stats.retransmits, 0);
  });

  void test("2 MB each way at 10% loss, MSS 536", () => {
    const cfg = tcpConfig({ mss: 536, recvBufferSize: 64 * 1024, sendBufferSize: 64 * 1024 });
    for (let seed = 100; seed < 103; seed++) {
      const link = { loss: 0.1, reorder: 0.05, delayUs: 2000, jitterUs: 500 };
      const r = runPair({
        seed,
        bytesAtoB: 2 << 20,
        bytesBtoA: 2 << 20,
        cfgA: cfg,
        cfgB: cfg,
        link,
        chunk: 50_000,
        close: true,
      });
      assert.equal(r.gotAtB, 2 << 20, `seed ${seed}`);
      assert.equal(r.gotAtA, 2 << 20, `seed ${seed}`);
    }
  });

  void test("10% loss, reordering, MSS 536, small buffers, many seeds", () => {
    const cfg = tcpConfig({ mss: 536, sendBufferSize: 8192, recvBufferSize: 4096 });
    for (let seed = 1; seed <= 12; seed++) {
      const link = { loss: 0.1, reorder: 0.1, delayUs: 1000, jitterUs: 400 };
      const r = runPair({
        seed,
        bytesAtoB: 60_000,
        bytesBtoA: 30_000,
        cfgA: cfg,
        cfgB: cfg,
        link,
        chunk: 700,
        close: true,
      });
      assert.equal(r.gotAtB, 60_000, `seed ${seed}`);
      assert.equal(r.gotAtA, 30_000, `seed ${seed}`);
    }
  });

  void test("loss without SACK or timestamps (NewReno path)", () => {
    const cfg = tcpConfig({ sack: false, timestamps: false, recvBufferSize: 64 * 1024 });
    for (let seed = 1; seed <= 6; seed++) {
      const link = { loss: 0.05, reorder: 0.05, delayUs: 2000, jitterUs: 500 };
      const r = runPair({
        seed,
        bytesAtoB: 300_000,
        bytesBtoA: 10_000,
        cfgA: cfg,
        cfgB: cfg,
        link,
        chunk: 4000,
        close: true,
      });
      assert.equal(r.gotAtB, 300_000, `seed ${seed}`);
      assert.equal(r.gotAtA, 10_000, `seed ${seed}`);
    }
  });

  void test("duplicated and reordered segments, SACK on and off", () => {
    for (const sack of [true, false]) {
      const cfg = tcpConfig({ sack, mss: 536, recvBufferSize: 8192 });
      for (let seed = 20; seed < 26; seed++) {
        const link = { loss: 0.03, reorder: 0.2, delayUs: 800, jitterUs: 800, dup: 0.2 };
        const r = runPair({
          seed,
          bytesAtoB: 80_000,
          bytesBtoA: 40_000,
          cfgA: cfg,
          cfgB: cfg,
          link,
          chunk: 3000,
          close: true,
        });
        assert.equal(r.gotAtB, 80_000, `seed ${seed}`);
        assert.equal(r.gotAtA, 40_000, `seed ${seed}`);
      }
    }
  });

  void test("tiny windows (receive buffer 100 bytes)", () => {
    const cfg = tcpConfig({ mss: 536, recvBufferSize: 100, sendBufferSize: 1000 });
    const r = runPair({
      seed: 7,
      bytesAtoB: 20_000,
      bytesBtoA: 5_000,
      cfgA: cfg,
      cfgB: cfg,
      link: { loss: 0.05, reorder: 0, delayUs: 300, jitterUs: 100 },
      chunk: 333,
      close: true,
    });
    assert.equal(r.gotAtB, 20_000);
    assert.equal(r.gotAtA, 5_000);
  });
});

void describe("determinism", () => {
  void test("the same seed gives the same run; another seed a different one", () => {
    const cfg = tcpConfig({ mss: 536, recvBufferSize: 8192 });
    const link = { loss: 0.1, reorder: 0.1, delayUs: 1000, jitterUs: 500 };
    const run = (seed: number): string => {
      const r = runPair({
        seed,
        bytesAtoB: 30_000,
        bytesBtoA: 10_000,
        cfgA: cfg,
        cfgB: cfg,
        link,
        chunk: 1000,
        close: true,
      });
      return JSON.stringify([r.now, r.steps, r.a.stats, r.b.stats]);
    };
    assert.equal(run(5), run(5));
    assert.notEqual(run(5), run(6));
  });
});

void describe("export / import mid-transfer (Chimney 7.6, 7.7, 11.6, 11.7)", () => {
  void test("streams identical and no extra retransmissions on a clean link", () => {
    const cfg = tcpConfig();
    const base = runPair({
      seed: 3,
      bytesAtoB: 2 << 20,
      bytesBtoA: 256 << 10,
      cfgA: cfg,
      cfgB: cfg,
      link: LAN,
      chunk: 16384,
      close: true,
    });
    const moved = runPair({
      seed: 3,
      bytesAtoB: 2 << 20,
      bytesBtoA: 256 << 10,
      cfgA: cfg,
      cfgB: cfg,
      link: LAN,
      chunk: 16384,
      close: true,
      migrateBAt: 700_000,
    });
    assert.ok(moved.migrated);
    assert.equal(moved.gotAtB, 2 << 20);
    assert.equal(moved.gotAtA, 256 << 10);
    assert.equal(moved.a.stats.retransmits, 0);
    assert.equal(moved.b.stats.retransmits, 0);
    assert.equal(moved.now, base.now, "migration changed timing");
  });

  void test("with loss, the transfer completes after migration (into a fresh engine, and into the same one)", () => {
    const cfg = tcpConfig({ mss: 536, recvBufferSize: 16384 });
    for (let seed = 1; seed <= 10; seed++) {
      const r = runPair({
        migrateInPlace: seed > 5,
        seed,
        bytesAtoB: 100_000,
        bytesBtoA: 50_000,
        cfgA: cfg,
        cfgB: cfg,
        link: { loss: 0.1, reorder: 0.1, delayUs: 1000, jitterUs: 300 },
        chunk: 1000,
        close: true,
        migrateBAt: 40_000,
      });
      assert.ok(r.migrated, `seed ${seed}`);
      assert.equal(r.gotAtB, 100_000, `seed ${seed}`);
      assert.equal(r.gotAtA, 50_000, `seed ${seed}`);
    }
  });
});

void describe("CUBIC in the engine", () => {
  void test("RFC 9438 4.6: a fast retransmit leaves ssthresh at 0.7 cwnd (NewReno: half the flight); lossy transfers complete", () => {
    const ratios: Record<string, number> = {};
    for (const cc of ["newreno", "cubic"] as const) {
      const cfg = tcpConfig({ congestionControl: cc, recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
      for (let seed = 7; seed < 10; seed++) {
        // ssthresh / cwnd at the first fast retransmit, read at the moment it happens.
        let before = 0;
        let ratio = Number.NaN;
        const r = runPair({
          seed,
          bytesAtoB: 2 << 20,
          bytesBtoA: 0,
          cfgA: cfg,
          cfgB: cfg,
          link: { loss: 0.01, reorder: 0, delayUs: 5000, jitterUs: 0 },
          chunk: 64 << 10,
          close: true,
          onStep: (a) => {
            if (Number.isNaN(ratio) && a.stats.fastRetransmits > 0) ratio = a.ssthresh / before;
            before = a.cwnd;
          },
        });
        assert.equal(r.gotAtB, 2 << 20, `${cc}, seed ${seed}`);
        assert.ok(r.a.stats.fastRetransmits > 0, `${cc}, seed ${seed}: no loss recovery happened`);
        if (seed === 7) ratios[cc] = ratio;
      }
    }
    assert.ok(Math.abs((ratios["cubic"] ?? 0) - 0.7) < 0.02, `cubic: ssthresh / cwnd ${ratios["cubic"]}`);
    assert.ok((ratios["newreno"] ?? 1) <= 0.55, `newreno: ssthresh / cwnd ${ratios["newreno"]}`);
  });
});

// `reimport` must leave an engine exactly as `importState` builds one: every private field,
// down through the objects it owns. The fields are read through the inspector protocol (the
// only way to see private fields from outside), so a field added later and missed by `#init`
// fails here whatever its name.

type Shape = string | { [k: string]: Shape };
interface Remote {
  type: string;
  subtype?: string;
  value?: unknown;
  unserializableValue?: string;
  description?: string;
  className?: string;
  objectId?: string;
}

/** The fields of the object `objectId` names (own and private), as a tree of descriptions. */
async function shapeOf(s: Session, objectId: string, depth: number): Promise<Shape> {
  // privateProperties is in the protocol but not in Node's typings.
  const r = (await s.post("Runtime.getProperties", { objectId, ownProperties: true })) as {
    result: { name: string; value?: Remote }[];
    privateProperties?: { name: string; value?: Remote }[];
  };
  const out: { [k: string]: Shape } = {};
  const props = [...r.result, ...(r.privateProperties ?? [])];
  for (const p of props) {
    const v = p.value;
    if (v === undefined || v.type === "function") continue;
    if (v.type !== "object" || v.subtype === "null") {
      out[p.name] = `${v.type}:${v.unserializableValue ?? v.description ?? JSON.stringify(v.value)}`;
    } else if (v.subtype === "typedarray" || depth === 0 || v.objectId === undefined) {
      out[p.name] = `${v.className ?? "object"}:${v.description ?? ""}`;
    } else {
      out[p.name] = await shapeOf(s, v.objectId, depth - 1);
    }
  }
  return out;
}

async function engineShape(s: Session, c: TcpConnection): Promise<Shape> {
  (globalThis as { __engineProbe?: unknown }).__engineProbe = c;
  try {
    const r = await s.post("Runtime.evaluate", { expression: "globalThis.__engineProbe" });
    assert.ok(r.result.objectId !== undefined);
    return await shapeOf(s, r.result.objectId, 4);
  } finally {
    delete (globalThis as { __engineProbe?: unknown }).__engineProbe;
  }
}

/** Snapshots of the sender at points through a lossy transfer (data in flight, SACK, recovery). */
function snapshotsOf(cfg: TcpConfig, seed: number): { snap: TcpSnapshot; now: Instant }[] {
  const out: { snap: TcpSnapshot; now: Instant }[] = [];
  let step = 0;
  runPair({
    seed,
    bytesAtoB: 300_000,
    bytesBtoA: 20_000,
    cfgA: cfg,
    cfgB: cfg,
    link: { loss: 0.05, reorder: 0.05, delayUs: 1000, jitterUs: 300 },
    chunk: 7000,
    onStep: (a, now) => {
      if (++step % 97 === 0 && a.state === "ESTABLISHED") out.push({ snap: a.exportState(now), now });
    },
  });
  return out;
}

void describe("TcpConnection.reimport", () => {
  for (const cc of ["newreno", "cubic"] as const) {
    void test(`a used engine reimported, or hibernated and woken, equals importState's engine, field by field (${cc})`, async () => {
      const cfg = tcpConfig({ congestionControl: cc, mss: 1000, recvBufferSize: 32768 });
      const s = new Session();
      s.connect();
      try {
        for (const seed of [3, 4]) {
          const snaps = snapshotsOf(cfg, seed);
          assert.ok(snaps.length >= 5, `seed ${seed}: ${snaps.length} snapshots`);
          // The engine taking them has a life of its own: a whole closed transfer (other seed).
          const used = runPair({
            seed: seed + 100,
            bytesAtoB: 50_000,
            bytesBtoA: 50_000,
            cfgA: cfg,
            cfgB: cfg,
            link: { loss: 0.05, reorder: 0.05, delayUs: 1000, jitterUs: 300 },
            chunk: 3000,
            close: true,
          }).a;
          // And one put to sleep first (`hibernate`): it wakes by the short path (`#wake`).
          const sleeper = runPair({
            seed: seed + 200,
            bytesAtoB: 30_000,
            bytesBtoA: 10_000,
            cfgA: cfg,
            cfgB: cfg,
            link: { loss: 0.05, reorder: 0.05, delayUs: 1000, jitterUs: 300 },
            chunk: 3000,
          }).a;
          for (const [i, taken] of snaps.entries()) {
            const now = taken.now;
            // Every other one over a narrower path than the configuration's MSS (the SYN's MSS).
            const snap =
              i % 2 === 0
                ? taken.snap
                : { ...taken.snap, cachedState: { ...taken.snap.cachedState, effectiveMss: cfg.mss - 52 } };
            const fresh = TcpConnection.importState(snap, now, cfg);
            const want = await engineShape(s, fresh);
            used.reimport(snap, now, cfg);
            assert.deepEqual(
              await engineShape(s, used),
              want,
              `seed ${seed}, snapshot ${i}: the reimported engine differs`,
            );
            sleeper.hibernate();
            sleeper.reimport(snap, now, cfg);
            assert.deepEqual(
              await engineShape(s, sleeper),
              want,
              `seed ${seed}, snapshot ${i}: the engine woken from hibernate differs`,
            );
          }
        }
      } finally {
        s.disconnect();
      }
    });
  }

  void test("a snapshot of another connection is refused with a UsageError", () => {
    const cfg = tcpConfig();
    const [first] = snapshotsOf(cfg, 5);
    assert.ok(first !== undefined);
    const other = TcpConnection.connect(
      cfg,
      { localPort: 1, remotePort: 2, iss: first.snap.constState.iss, tsOffset: 0 },
      first.now,
    );
    assert.throws(() => other.reimport(first.snap, first.now, cfg), {
      name: "UsageError",
      message: /reimport/,
    });
  });
});
