// Slow start by bytes (RFC 3465 Appropriate Byte Counting), the receiver's ACK policy when a
// driver hands the engine a batch of segments before it polls (RFC 5681 4.2), and the
// FIN-WAIT-2 timer restarted by acceptable segments (Chimney FW2-2).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Duration, Instant } from "../../src/time/instant.js";
import { TcpFlag, type TcpRepr } from "../../src/wire/tcp-repr.js";
import { type TcpConfig, tcpConfig } from "../../src/tcp/config.js";
import { TcpConnection } from "../../src/tcp/connection.js";
import { at, tcpScript } from "../support/tcp-script.js";
import { Seq } from "../../src/wire/seq.js";

const { ACK, SYN, FIN } = TcpFlag;
const LOCAL_ISS = Seq.of(0xffff_ff00); // the data wraps the sequence space
const REMOTE_ISS = Seq.of(0xffff_fe00);
const { L, R, FROM_PEER } = tcpScript(LOCAL_ISS, REMOTE_ISS);
const SEG = 100;
const SEED = 3465;

const BASE: Partial<TcpConfig> = {
  windowScaling: false,
  timestamps: false,
  sack: true,
  sendBufferSize: 1 << 16,
  recvBufferSize: 60000,
  initialCwndSegments: 10,
  tailLossProbe: false,
  undoSpurious: false,
};

/** ESTABLISHED (passive open) with SACK and 100-byte segments. */
function established(over: Partial<TcpConfig> = {}): TcpConnection {
  const c = TcpConnection.accept(
    tcpConfig({ ...BASE, ...over }),
    { localPort: 80, remotePort: 49500, iss: LOCAL_ISS, tsOffset: 0 },
    { ...FROM_PEER, flags: SYN, seq: REMOTE_ISS, ack: Seq.of(0), mss: SEG, sackPermitted: true },
    at(0),
  );
  c.pollTransmit(at(0));
  c.handleSegment(at(10), FROM_PEER);
  assert.equal(c.state, "ESTABLISHED");
  return c;
}

function drain(c: TcpConnection, now: Instant): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let s = c.pollTransmit(now); s !== undefined; s = c.pollTransmit(now)) {
    out.push(s);
    assert.ok(out.length < 10_000, "runaway pollTransmit");
  }
  c.checkInvariants();
  return out;
}

/** A data segment from the peer carrying its bytes [from, from + n). */
const data = (from: number, n = SEG): TcpRepr => ({
  ...FROM_PEER,
  seq: R(from),
  payload: new Uint8Array(n).fill(0x61),
});

/** ACK numbers as peer stream offsets, with SACK blocks the same way. */
const acks = (segs: TcpRepr[]): string[] =>
  segs.map((s) => {
    const blocks = s.sack.map((b) => `${Seq.delta(b.left, REMOTE_ISS)}-${Seq.delta(b.right, REMOTE_ISS)}`);
    return `${Seq.delta(s.ack, REMOTE_ISS)}${blocks.length > 0 ? ` [${blocks.join(" ")}]` : ""}`;
  });

void describe("slow start by bytes (RFC 3465 ABC)", () => {
  for (const [limit, grown] of [
    [1, 1],
    [2, 2],
    [0, 10],
  ] as const) {
    void test(`a stretch ACK of 10 segments grows cwnd by ${grown} SMSS with L = ${limit === 0 ? "no limit" : limit}`, () => {
      const c = established({ abcLimit: limit });
      c.send(new Uint8Array(40 * SEG));
      assert.equal(drain(c, at(20)).length, 10, "IW = 10 segments");
      assert.equal(c.cwnd, 10 * SEG);
      c.handleSegment(at(21), { ...FROM_PEER, ack: L(1 + 10 * SEG) });
      assert.equal(c.cwnd, (10 + grown) * SEG);
    });
  }
  void test("per-segment ACKs still grow cwnd by one SMSS each (L does not matter below it)", () => {
    const c = established();
    c.send(new Uint8Array(40 * SEG));
    drain(c, at(20));
    for (let i = 1; i <= 4; i++) c.handleSegment(at(21), { ...FROM_PEER, ack: L(1 + i * SEG) });
    assert.equal(c.cwnd, 14 * SEG);
  });
  void test("resending after a timeout counts at most 1 SMSS per ACK (RFC 3465 2.3)", () => {
    const c = established({ abcLimit: 4 });
    c.send(new Uint8Array(40 * SEG));
    drain(c, at(20));
    const rto = c.pollTimeout();
    assert.ok(rto !== undefined);
    c.handleTimeout(rto);
    assert.equal(c.cwnd, SEG);
    assert.equal(drain(c, rto).length, 1, "go-back-N: one segment");
    // The late ACK of the whole first flight, while SND.NXT is still behind SND.MAX.
    c.handleSegment(Instant.add(rto, Duration.fromMillis(1)), { ...FROM_PEER, ack: L(1 + 10 * SEG) });
    assert.equal(c.cwnd, 2 * SEG);
  });

  void test("RACK starts no fast recovery inside a timeout's loss episode: the ACKs of the resends only grow cwnd (RFC 6582 4, RFC 8985 6.3)", () => {
    const c = established({ rack: true, sendBufferSize: 1 << 20 });
    c.send(new Uint8Array(20 * SEG));
    drain(c, at(20));
    let t = 20;
    for (let i = 0; i < 2; i++) {
      t = Math.ceil((c.pollTimeout() ?? at(t)) / 1000);
      c.handleTimeout(at(t));
      drain(c, at(t));
    }
    assert.equal(c.stats.timeouts, 2);
    const ssthresh = c.ssthresh;
    let acked = 0;
    for (const segs of [1, 2, 2]) {
      t += 1;
      const before = c.cwnd;
      acked += segs * SEG;
      c.handleSegment(at(t), { ...FROM_PEER, ack: L(1 + acked) });
      assert.ok(c.cwnd >= before, `cwnd ${before} -> ${c.cwnd} at ${acked} bytes acked (t ${t} ms)`);
      drain(c, at(t));
    }
    assert.equal(c.ssthresh, ssthresh, "no second reduction");
    assert.equal(c.stats.fastRetransmits, 0);
  });
  void test("property: no ACK grows cwnd beyond min(acked, L * SMSS) in slow start or 1 SMSS in congestion avoidance, nor cuts it (RACK on or off; after a timeout RACK starts no second reduction, RFC 6582 4)", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("ack" as const), segs: fc.integer({ min: 1, max: 40 }) }),
      fc.record({ kind: fc.constant("timeout" as const) }),
      fc.record({ kind: fc.constant("send" as const), segs: fc.integer({ min: 1, max: 60 }) }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 2, 3),
        fc.boolean(),
        fc.array(op, { minLength: 1, maxLength: 60 }),
        (limit, rack, ops) => {
          const c = established({ abcLimit: limit, sendBufferSize: 1 << 20, rack });
          let t = 20;
          c.send(new Uint8Array(20 * SEG));
          drain(c, at(t));
          let acked = 0; // peer stream: bytes of ours acknowledged so far
          for (const o of ops) {
            t += 1;
            if (o.kind === "send") c.send(new Uint8Array(o.segs * SEG));
            else if (o.kind === "timeout") {
              const when = c.pollTimeout();
              if (when !== undefined && when > at(t)) t = Math.ceil(when / 1000);
              c.handleTimeout(at(t));
              if (c.state !== "ESTABLISHED") return;
            } else {
              const sent = Seq.delta(c.sndNxt, L(1));
              const upTo = Math.min(sent, acked + o.segs * SEG);
              if (upTo <= acked) continue;
              const before = { cwnd: c.cwnd, ssthresh: c.ssthresh };
              c.handleSegment(at(t), { ...FROM_PEER, ack: L(1 + upTo) });
              const grew = c.cwnd - before.cwnd;
              const n = upTo - acked;
              acked = upTo;
              const bound = before.cwnd < before.ssthresh ? Math.min(n, limit === 0 ? n : limit * SEG) : SEG;
              assert.ok(
                grew >= 0 && grew <= bound,
                `cwnd ${before.cwnd} -> ${c.cwnd} on ${n} bytes acked, L ${limit}, RACK ${String(rack)}`,
              );
            }
            assert.ok(c.cwnd >= SEG, `cwnd ${c.cwnd} below one segment`);
            drain(c, at(t));
          }
        },
      ),
      { seed: SEED, numRuns: 300, endOnFailure: true },
    );
  });
});

void describe("ACK policy when segments arrive in a batch (RFC 5681 4.2)", () => {
  void test("with batchAckBytes 0, 10 in-order full-sized segments before a poll draw an ACK for every second one", () => {
    const c = established({ batchAckBytes: 0 });
    for (let i = 0; i < 10; i++) c.handleSegment(at(20), data(1 + i * SEG));
    assert.deepEqual(acks(drain(c, at(20))), ["201", "401", "601", "801", "1001"]);
    assert.equal(c.readable, 10 * SEG);
  });
  void test("with batchAckBytes 0, an odd segment at the end of a batch waits for the delayed-ACK timer", () => {
    const c = established({ batchAckBytes: 0 });
    for (let i = 0; i < 3; i++) c.handleSegment(at(20), data(1 + i * SEG));
    assert.deepEqual(acks(drain(c, at(20))), ["201"]);
    assert.equal(c.pollTimeout(), at(60));
    c.handleTimeout(at(60));
    assert.deepEqual(acks(drain(c, at(60))), ["301"]);
  });
  void test("batchAckBytes coalesces in-order ACKs into stretch ACKs of at most that many bytes", () => {
    const c = established({ batchAckBytes: 4 * SEG });
    for (let i = 0; i < 10; i++) c.handleSegment(at(20), data(1 + i * SEG));
    assert.deepEqual(acks(drain(c, at(20))), ["401", "801", "1001"]);
  });
  void test("each out-of-order segment draws its own duplicate ACK with fresh SACK blocks, the filled hole one more", () => {
    const c = established({ batchAckBytes: 1 << 16 }); // coalescing never merges these
    for (let i = 1; i < 5; i++) c.handleSegment(at(20), data(1 + i * SEG));
    c.handleSegment(at(20), data(1));
    assert.deepEqual(acks(drain(c, at(20))), [
      "1 [101-201]",
      "1 [101-301]",
      "1 [101-401]",
      "1 [101-501]",
      "501",
    ]);
  });
  void test("by default an in-order run is acknowledged once per 64 KiB, as behind GRO", () => {
    const c = established({ recvBufferSize: 1 << 20, windowScaling: true });
    const n = 1000; // 100 KB in one batch
    for (let i = 0; i < n; i++) c.handleSegment(at(20), data(1 + i * SEG));
    assert.deepEqual(acks(drain(c, at(20))), ["65601", "100001"]);
  });
  void test("a batch ending in a RST sends none of the queued ACKs", () => {
    const c = established({ batchAckBytes: 0 });
    for (let i = 0; i < 5; i++) c.handleSegment(at(20), data(1 + i * SEG));
    c.handleSegment(at(20), { ...FROM_PEER, flags: TcpFlag.RST, seq: R(1 + 5 * SEG) });
    assert.equal(c.state, "CLOSED");
    assert.deepEqual(drain(c, at(20)), []);
  });
  void test("flushAck sends one ACK covering the queued ones", () => {
    const c = established({ batchAckBytes: 0 });
    for (let i = 0; i < 6; i++) c.handleSegment(at(20), data(1 + i * SEG));
    assert.equal(c.ackOwed, true);
    const a = c.flushAck(at(20));
    assert.deepEqual(acks(a === undefined ? [] : [a]), ["601"]);
    assert.equal(c.ackOwed, false);
    assert.deepEqual(drain(c, at(20)), []);
  });

  void test("property: a batch draws the same ACKs as polling after every segment", () => {
    // Segments of a 3000-byte stretch of the peer's stream, in any order, with duplicates.
    const arb = fc.array(
      fc.record({ from: fc.integer({ min: 0, max: 29 }), segs: fc.integer({ min: 1, max: 3 }) }),
      { minLength: 1, maxLength: 60 },
    );
    fc.assert(
      fc.property(arb, (segs) => {
        const one = established({ batchAckBytes: 0 });
        const batch = established({ batchAckBytes: 0 });
        const each: TcpRepr[] = [];
        for (const s of segs) {
          const seg = data(1 + s.from * SEG, Math.min(s.segs, 30 - s.from) * SEG);
          one.handleSegment(at(20), seg);
          each.push(...drain(one, at(20)));
          batch.handleSegment(at(20), seg);
        }
        assert.deepEqual(acks(drain(batch, at(20))), acks(each));
        assert.equal(batch.readable, one.readable);
      }),
      { seed: SEED, numRuns: 200, endOnFailure: true },
    );
  });
});

void describe("FW2-2: acceptable segments restart the FIN-WAIT-2 timer", () => {
  /** FIN-WAIT-2 at 30 ms with the timer armed (60 s by default). */
  function finWait2(): TcpConnection {
    const c = established({ delayedAck: Duration.ZERO }); // no delayed-ACK deadline in the way
    assert.equal(c.close(), undefined);
    assert.deepEqual(
      drain(c, at(20)).map((s) => s.flags),
      [FIN | ACK],
    );
    c.handleSegment(at(30), { ...FROM_PEER, ack: L(2) });
    assert.equal(c.state, "FIN-WAIT-2");
    assert.equal(c.armFinWait2Timer(at(30)), true);
    assert.equal(c.pollTimeout(), at(60_030));
    return c;
  }
  void test("FW2-2: data from the peer restarts the timer; it expires a full timeout after the last segment", () => {
    const c = finWait2();
    c.handleSegment(at(40_000), { ...data(1), ack: L(2) });
    drain(c, at(40_000));
    assert.equal(c.pollTimeout(), at(100_000));
    c.handleTimeout(at(60_030)); // the old deadline: nothing happens
    assert.equal(c.state, "FIN-WAIT-2");
    // A pure ACK is acceptable too.
    c.handleSegment(at(90_000), { ...FROM_PEER, seq: R(1 + SEG), ack: L(2) });
    assert.equal(c.pollTimeout(), at(150_000));
    c.handleTimeout(at(150_000));
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
  });
  void test("FW2-2: an unacceptable segment does not restart it", () => {
    const c = finWait2();
    c.handleSegment(at(40_000), { ...data(100_000), ack: L(2) }); // far right of the window
    drain(c, at(40_000));
    assert.equal(c.pollTimeout(), at(60_030));
    c.handleTimeout(at(60_030));
    assert.equal(c.state, "CLOSED");
  });
});
