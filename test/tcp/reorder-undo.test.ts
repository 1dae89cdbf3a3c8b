// Reordering defences, segment by segment: D-SACK generation on the receiver (RFC 2883), the
// sender's adaptive DupThresh, and undo of spurious fast recoveries and timeouts by D-SACK
// (RFC 3708) or timestamps (RFC 3522 detection, RFC 4015 response).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../../src/time/instant.js";
import { type SackBlock, TcpFlag, type TcpRepr, type TcpTimestamps } from "../../src/wire/tcp-repr.js";
import { type TcpConfig, tcpConfig } from "../../src/tcp/config.js";
import { TcpConnection } from "../../src/tcp/connection.js";
import { at, tcpScript } from "../support/tcp-script.js";
import { Seq } from "../../src/wire/seq.js";

const { SYN } = TcpFlag;
const LOCAL_ISS = Seq.of(0xffff_ff00); // the data wraps the sequence space
const REMOTE_ISS = Seq.of(7000);
const { L, R, FROM_PEER } = tcpScript(LOCAL_ISS, REMOTE_ISS);
const SEG = 100;

const BASE: Partial<TcpConfig> = {
  // NewReno's halving: the windows asserted before and after an undo are its own.
  congestionControl: "newreno",
  windowScaling: false,
  sack: true,
  delayedAck: Duration.ZERO,
  sendBufferSize: 1 << 16,
  initialCwndSegments: 10,
  minRto: Duration.fromMillis(200),
  tailLossProbe: false,
  // RFC 6675's recovery (cwnd = ssthresh at once): the windows asserted here are its own;
  // PRR (on by default) paces the same recovery differently (src/tcp/prr.test.ts).
  prr: false,
};

/** ESTABLISHED with SACK (and timestamps if `ts`), 100-byte segments. Our TSval is the time in ms. */
function established(over: Partial<TcpConfig> = {}, ts = false): TcpConnection {
  const cfg = tcpConfig({ ...BASE, timestamps: ts, ...over });
  const c = TcpConnection.accept(
    cfg,
    { localPort: 80, remotePort: 49500, iss: LOCAL_ISS, tsOffset: 0 },
    {
      ...FROM_PEER,
      flags: SYN,
      seq: REMOTE_ISS,
      ack: Seq.of(0),
      mss: ts ? SEG + 12 : SEG, // 100-byte payloads either way
      sackPermitted: true,
      timestamps: ts ? { tsVal: 1, tsEcr: 0 } : undefined,
    },
    at(0),
  );
  c.pollTransmit(at(0));
  c.handleSegment(at(10), { ...FROM_PEER, timestamps: ts ? { tsVal: 2, tsEcr: 0 } : undefined });
  assert.equal(c.state, "ESTABLISHED");
  assert.equal(c.sackEnabled, true);
  assert.equal(c.timestampsEnabled, ts);
  return c;
}

function drain(c: TcpConnection, now: Instant): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let s = c.pollTransmit(now); s !== undefined; s = c.pollTransmit(now)) out.push(s);
  c.checkInvariants();
  return out;
}

/** Data segments as [first byte, length] in send-stream bytes (byte 1 = first data byte). */
const spans = (segs: TcpRepr[]): [number, number][] =>
  segs.filter((s) => s.payload.length > 0).map((s) => [Seq.delta(s.seq, LOCAL_ISS), s.payload.length]);

/** The peer acknowledges up to our byte `upTo` with SACK blocks (and TSecr `ecr` if given). */
function ack(
  c: TcpConnection,
  now: Instant,
  upTo: number,
  sack: [number, number][] = [],
  ecr?: number,
): void {
  const blocks: SackBlock[] = sack.map(([l, r]) => ({ left: L(l), right: L(r) }));
  const timestamps: TcpTimestamps | undefined = ecr === undefined ? undefined : { tsVal: 3, tsEcr: ecr };
  c.handleSegment(now, { ...FROM_PEER, ack: L(upTo), sack: blocks, timestamps });
  c.checkInvariants();
}

/** A data segment from the peer carrying its bytes [from, from + n). */
const data = (from: number, n: number): TcpRepr => ({
  ...FROM_PEER,
  seq: R(from),
  payload: new Uint8Array(n).fill(0x61),
});

const blocks = (seg: TcpRepr | undefined): [number, number][] =>
  (seg?.sack ?? []).map((b) => [Seq.delta(b.left, REMOTE_ISS), Seq.delta(b.right, REMOTE_ISS)]);

/**
 * Sends 10 segments, then the peer SACKs segments 2..4 above a hole at segment 1 with three
 * duplicate ACKs: fast recovery starts and segment 1 is retransmitted at 22 ms.
 */
function spuriousRecovery(c: TcpConnection, ecr?: number): void {
  c.send(new Uint8Array(20 * SEG));
  assert.equal(spans(drain(c, at(20))).length, 10);
  ack(c, at(22), 1, [[101, 201]], ecr);
  ack(c, at(22), 1, [[101, 301]], ecr);
  ack(c, at(22), 1, [[101, 401]], ecr);
  assert.deepEqual(spans(drain(c, at(22)))[0], [1, SEG], "fast retransmit of segment 1");
  assert.equal(c.stats.fastRetransmits, 1);
  assert.equal(c.cwnd, 5 * SEG, "cwnd halved");
}

/**
 * With timestamps (our TSval is the time in ms): 10 segments sent at 20 ms, none acknowledged;
 * the retransmission timeout fires and resends segment 1 (go-back-N) with cwnd one segment.
 */
function timedOut(): { c: TcpConnection; rtoAt: Instant } {
  const c = established({}, true);
  c.send(new Uint8Array(20 * SEG));
  assert.equal(spans(drain(c, at(20))).length, 10);
  const rtoAt = c.pollTimeout();
  assert.ok(rtoAt !== undefined);
  c.handleTimeout(rtoAt);
  assert.equal(c.stats.timeouts, 1);
  assert.deepEqual(spans(drain(c, rtoAt)), [[1, SEG]], "go-back-N: segment 1 again");
  assert.equal(c.cwnd, SEG);
  return { c, rtoAt };
}

void describe("D-SACK generation (RFC 2883) as a receiver", () => {
  void test("a duplicate below RCV.NXT is reported in the first SACK block of the ACK", () => {
    const c = established();
    c.handleSegment(at(11), data(1, 100));
    drain(c, at(11));
    c.handleSegment(at(12), data(1, 100)); // the same segment again
    const out = drain(c, at(12));
    assert.equal(out.length, 1);
    assert.deepEqual(blocks(out[0]), [[1, 101]]);
    assert.equal(out[0]?.ack, R(101));
    assert.equal(c.stats.dsacksOut, 1);
    // Reported once: the next ACK carries no block.
    c.handleSegment(at(13), data(101, 100));
    assert.deepEqual(blocks(drain(c, at(13))[0]), []);
  });

  void test("a duplicate of queued out-of-order data: the D-SACK, then the block holding it", () => {
    const c = established();
    c.handleSegment(at(11), data(201, 100));
    c.handleSegment(at(11), data(301, 100));
    drain(c, at(11));
    c.handleSegment(at(12), data(201, 100));
    assert.deepEqual(blocks(drain(c, at(12))[0]), [
      [201, 301],
      [201, 401],
    ]);
  });

  void test("a segment overlapping RCV.NXT reports only the old part", () => {
    const c = established();
    c.handleSegment(at(11), data(1, 100));
    drain(c, at(11));
    c.handleSegment(at(12), data(51, 100));
    const out = drain(c, at(12));
    assert.equal(out[0]?.ack, R(151));
    assert.deepEqual(blocks(out[0]), [[51, 101]]);
  });

  void test("switched off, a duplicate draws a plain ACK", () => {
    const c = established({ dsack: false });
    c.handleSegment(at(11), data(1, 100));
    drain(c, at(11));
    c.handleSegment(at(12), data(1, 100));
    const out = drain(c, at(12));
    assert.equal(out.length, 1);
    assert.deepEqual(blocks(out[0]), []);
    assert.equal(c.stats.dsacksOut, 0);
  });
});

void describe("adaptive DupThresh", () => {
  /** Ten segments; the peer SACKs 3..4 above a two-segment hole, then the hole arrives late. */
  const learn = (c: TcpConnection): void => {
    c.send(new Uint8Array(40 * SEG));
    drain(c, at(20));
    ack(c, at(22), 1, [[201, 301]]);
    ack(c, at(22), 1, [[201, 401]]);
    assert.equal(c.stats.fastRetransmits, 0, "two SACKed segments are below DupThresh 3");
    ack(c, at(23), 1001);
    drain(c, at(23));
  };
  /** Then one segment is overtaken by three: the pattern that triggers DupThresh 3. */
  const overtake = (c: TcpConnection): void => {
    ack(c, at(24), 1001, [[1101, 1201]]);
    ack(c, at(24), 1001, [[1101, 1301]]);
    ack(c, at(24), 1001, [[1101, 1401]]);
    drain(c, at(24));
  };

  void test("a hole acknowledged without a retransmission raises DupThresh to its span", () => {
    const c = established();
    learn(c);
    assert.equal(c.stats.reorderingRaised, 1);
    const cwnd = c.cwnd;
    overtake(c);
    assert.equal(c.stats.fastRetransmits, 0, "three overtaking segments are reordering now");
    assert.equal(c.cwnd, cwnd, "no reduction");
    // A real loss is still repaired: a fourth SACKed segment passes the learnt DupThresh 4.
    ack(c, at(25), 1001, [[1101, 1501]]);
    assert.deepEqual(spans(drain(c, at(25)))[0], [1001, SEG]);
    assert.equal(c.stats.fastRetransmits, 1);
  });

  void test("the estimate does not travel in a snapshot: the importer starts from dupAckThreshold", () => {
    const c = established();
    learn(c);
    assert.equal(c.stats.reorderingRaised, 1);
    const d = TcpConnection.importState(
      c.exportState(at(23)),
      at(23),
      tcpConfig({ ...BASE, timestamps: false }),
    );
    overtake(d);
    assert.equal(d.stats.fastRetransmits, 1);
  });

  void test("a hole refilled by the go-back-N resend after a timeout is not reordering", () => {
    const c = established();
    c.send(new Uint8Array(10 * SEG));
    drain(c, at(20));
    // One duplicate ACK: segments 1 and 5 were lost.
    const sacks: [number, number][] = [
      [501, 1001],
      [101, 401],
    ];
    ack(c, at(22), 1, sacks);
    const rtoAt = c.pollTimeout();
    assert.ok(rtoAt !== undefined);
    c.handleTimeout(rtoAt);
    assert.deepEqual(spans(drain(c, rtoAt)), [[1, SEG]]);
    ack(c, rtoAt, 401, sacks);
    assert.deepEqual(spans(drain(c, rtoAt)), [[401, SEG]], "segment 5 resent, SACKed ones skipped");
    ack(c, rtoAt, 1001);
    assert.equal(c.stats.timeouts, 1);
    assert.equal(c.stats.reorderingRaised, 0);
  });

  void test("a SACK for never-retransmitted data below the highest SACKed byte raises DupThresh to the span (Linux tcp_check_sack_reordering)", () => {
    const c = established();
    c.send(new Uint8Array(10 * SEG));
    drain(c, at(20));
    ack(c, at(22), 1, [[701, 801]]); // segment 8 first
    assert.equal(c.lossAccounting.reordering, 3);
    ack(c, at(22), 1, [
      [301, 401],
      [701, 801],
    ]); // then segment 4, sent before it: 5 segments of reordering
    assert.equal(c.lossAccounting.reordering, 5);
    assert.equal(c.stats.reorderingRaised, 1);
    // Data already SACKed, or a block above the highest SACKed byte, teaches nothing.
    ack(c, at(22), 1, [
      [301, 401],
      [701, 901],
    ]);
    assert.equal(c.stats.reorderingRaised, 1);
    assert.equal(c.stats.fastRetransmits, 0, "three SACKed segments are below DupThresh 5");
  });

  void test("with maxReordering = DupThresh the same reordering triggers a fast retransmit", () => {
    const c = established({ maxReordering: 3 });
    learn(c);
    assert.equal(c.stats.reorderingRaised, 0);
    overtake(c);
    assert.equal(c.stats.fastRetransmits, 1);
  });
});

void describe("undo of spurious congestion responses", () => {
  void test("a D-SACK for the only retransmission undoes the fast recovery after its full ACK", () => {
    const c = established();
    spuriousRecovery(c);
    // The original segment 1 arrived late: the full ACK ends recovery, cwnd deflates.
    ack(c, at(23), 1001);
    assert.ok(c.cwnd <= 5 * SEG);
    assert.equal(c.stats.spuriousUndos, 0);
    // Then the retransmission arrives as a duplicate and the peer reports it.
    ack(c, at(24), 1001, [[1, 101]]);
    assert.equal(c.stats.dsacksIn, 1);
    assert.equal(c.stats.spuriousUndos, 1);
    assert.equal(c.cwnd, 10 * SEG, "cwnd restored");
    assert.ok(c.stats.reorderingRaised > 0, "the reordering that fooled us is learnt");
    // A second D-SACK for the same range changes nothing.
    ack(c, at(25), 1001, [[1, 101]]);
    assert.equal(c.stats.spuriousUndos, 1);
  });

  void test("no undo while a retransmission is not reported duplicate", () => {
    const c = established();
    spuriousRecovery(c);
    // Segment 1 really was lost: its retransmission fills the hole; no D-SACK follows.
    ack(c, at(23), 1001);
    ack(c, at(24), 1001, [[1101, 1201]]); // a later, unrelated SACK
    assert.equal(c.stats.spuriousUndos, 0);
    assert.ok(c.cwnd <= 5 * SEG);
  });

  void test("a full ACK that empties the flight leaves cwnd at two segments, not one", () => {
    const c = established();
    c.send(new Uint8Array(10 * SEG)); // nothing more to send
    drain(c, at(20));
    ack(c, at(22), 1, [[101, 201]]);
    ack(c, at(22), 1, [[101, 301]]);
    ack(c, at(22), 1, [[101, 401]]);
    assert.deepEqual(spans(drain(c, at(22)))[0], [1, SEG]);
    ack(c, at(23), 1001);
    assert.equal(c.cwnd, 2 * SEG);
  });

  void test("no undo when switched off", () => {
    const c = established({ undoSpurious: false });
    spuriousRecovery(c);
    ack(c, at(23), 1001);
    ack(c, at(24), 1001, [[1, 101]]);
    assert.equal(c.stats.dsacksIn, 1);
    assert.equal(c.stats.spuriousUndos, 0);
    assert.ok(c.cwnd <= 5 * SEG);
  });

  void test("Eifel: a full ACK echoing the original's timestamp undoes the recovery", () => {
    const c = established({}, true);
    spuriousRecovery(c, 2);
    // Our TSval is the time in ms: the original went out at 20, the retransmission at 22.
    ack(c, at(23), 1001, [], 20);
    assert.equal(c.stats.spuriousUndos, 1);
    assert.equal(c.cwnd, 10 * SEG);
  });

  void test("Eifel: a full ACK echoing the retransmission's timestamp keeps the reduction", () => {
    const c = established({}, true);
    spuriousRecovery(c, 2);
    ack(c, at(23), 1001, [], 22);
    assert.equal(c.stats.spuriousUndos, 0);
    assert.ok(c.cwnd <= 5 * SEG);
  });

  void test("a fast recovery begun after a timeout continues its episode: the undo restores the window from before the timeout and teaches no reordering", () => {
    const { c, rtoAt } = timedOut();
    // The peer holds 2..4 (the originals were delayed, not lost): three duplicate ACKs with
    // SACK blocks echoing the originals' TSval start a fast recovery in the loss state.
    const t = Instant.add(rtoAt, Duration.fromMillis(1));
    ack(c, t, 1, [[101, 201]], 20);
    ack(c, t, 1, [[101, 301]], 20);
    ack(c, t, 1, [[101, 401]], 20);
    drain(c, t);
    assert.equal(c.stats.fastRetransmits, 1, "a fast recovery began after the timeout");
    // The whole first window arrives; the ACK echoes the originals: the timeout was spurious.
    ack(c, Instant.add(t, Duration.fromMillis(1)), 1001, [], 20);
    assert.equal(c.stats.spuriousUndos, 1);
    assert.ok(c.cwnd >= 10 * SEG, `cwnd from before the timeout: ${c.cwnd}`);
    assert.equal(c.lossAccounting.reordering, 3, "DupThresh unchanged: a timeout proves no reordering");
  });

  for (const [echo, spurious] of [
    [20, true],
    [300, false],
  ] as const) {
    void test(`Eifel after a timeout: the first ACK echoing ${echo} ms ${spurious ? "undoes it" : "keeps it"}`, () => {
      const { c, rtoAt } = timedOut();
      const rtxMs = Math.floor(rtoAt / 1000);
      assert.ok(rtxMs > 200 && echo < rtxMs === spurious);
      // The ACK of the whole first window (the originals were only delayed).
      ack(c, Instant.add(rtoAt, Duration.fromMillis(1)), 1001, [], echo);
      assert.equal(c.stats.spuriousUndos, spurious ? 1 : 0);
      if (spurious) {
        assert.ok(c.cwnd >= 10 * SEG, `cwnd restored: ${c.cwnd}`);
        // New data resumes at once instead of resending what was in flight.
        const next = spans(drain(c, Instant.add(rtoAt, Duration.fromMillis(1))));
        assert.ok(next.length > 1 && next.every(([s]) => s >= 1001), JSON.stringify(next));
      } else {
        assert.ok(c.cwnd <= 2 * SEG, `cwnd kept small: ${c.cwnd}`);
      }
    });
  }
});
