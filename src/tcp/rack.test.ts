// RACK (RFC 8985): the transmit log and its rules on their own, then in the engine: a loss found
// by time with fewer than DupThresh segments SACKed, a lost retransmission found without a
// timeout, reordering tolerated once seen, and an imported connection's flight.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { Seq, type SeqNum } from "../wire/seq.js";
import { BLANK_TCP, TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { ConfigError } from "../util/errors.js";
import { tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";
import { MIN_RTT_WINDOW_US, Rack, REO_WND_PERSIST } from "./rack.js";

const MS = 1000; // us
const SEG = 1000; // bytes

/** A log with `n` segments of SEG bytes, segment k sent at k ms; min_RTT 10 ms. */
function sentLog(n: number): Rack {
  const r = new Rack();
  for (let k = 0; k < n; k++) r.onSend(k * SEG, (k + 1) * SEG, k * MS, false);
  r.noteRtt(0, 10 * MS);
  return r;
}

void test("tcpConfig: rack, prr, hystart and every other switch must be booleans (ConfigError)", () => {
  assert.equal(tcpConfig({}).rack, false);
  assert.equal(tcpConfig({ rack: true }).rack, true);
  for (const k of ["rack", "prr", "hystart", "sack"] as const)
    assert.throws(
      () => tcpConfig({ [k]: "false" as never }),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`${k} = "false" is not a boolean`),
    );
});

void describe("RACK transmit log (RFC 8985 6)", () => {
  void test("RFC 8985 6.2 step 5: what left before the latest delivery is lost once RACK.rtt + reo_wnd passed; the rest waits on the timer", () => {
    const r = sentLog(4);
    // Segment 3 (sent at 3 ms) is SACKed at 13 ms: RACK.rtt = 10 ms.
    r.onAck(0, [3 * SEG, 4 * SEG], 13 * MS);
    const reo = r.reoWnd(false, false, 10 * MS);
    assert.equal(reo, 2.5 * MS, "reo_wnd = min_RTT / 4 (no reordering seen, fewer than DupThresh SACKed)");
    const wait = r.detectLoss(13 * MS, reo);
    // Segment 0: 0 + 10 + 2.5 <= 13: lost. Segment 1: 1 + 12.5 - 13 = 0.5 ms; segment 2: 1.5 ms.
    assert.equal(r.lost, SEG, "segment 0 is lost");
    assert.equal(wait, 1.5 * MS, "the timer covers the latest of the others");
    assert.equal(r.pipe, 2 * SEG, "pipe: segments 1 and 2 (3 is delivered, 0 lost)");
    // At 14.5 ms both have waited long enough.
    assert.equal(r.detectLoss(14.5 * MS, reo), 0);
    assert.equal(r.lost, 3 * SEG);
    assert.equal(r.nextLost(1460), SEG);
    assert.equal(r.nextStart, 0, "the lowest lost range goes first");
  });

  void test("RFC 8985 6.2 step 5: nothing sent after the latest delivery is lost, however old", () => {
    const r = sentLog(4);
    r.onAck(SEG, [], 11 * MS); // segment 0 delivered at 11 ms
    assert.equal(r.detectLoss(500 * MS, 0), 0);
    assert.equal(r.lost, 0, "segments 1..3 left after segment 0: no evidence against them");
  });

  void test("RFC 8985 6.2 step 4: reo_wnd is 0 in recovery or with DupThresh SACKed until reordering is seen, then min_RTT / 4, at most SRTT", () => {
    const r = sentLog(6);
    assert.equal(r.reoWnd(true, false, 10 * MS), 0, "in recovery");
    assert.equal(r.reoWnd(false, true, 10 * MS), 0, "DupThresh segments SACKed");
    assert.equal(r.reoWnd(false, false, 10 * MS), 2.5 * MS);
    // Step 3: segment 1 arrives after segment 2 was SACKed, never retransmitted: reordering.
    r.onAck(0, [2 * SEG, 3 * SEG], 12 * MS);
    assert.equal(r.reorderingSeen, false);
    r.onAck(3 * SEG, [], 13 * MS);
    assert.equal(r.reorderingSeen, true, "a delivery below RACK.fack that was not retransmitted");
    assert.equal(r.reoWnd(true, true, 10 * MS), 2.5 * MS, "once seen, recovery no longer zeroes it");
    assert.equal(r.reoWnd(true, true, 2 * MS), 2 * MS, "capped by SRTT");
  });

  void test("RFC 8985 6.2 step 1: min_RTT is windowed: after the path got slower for MIN_RTT_WINDOW_US, reo_wnd follows the new RTT", () => {
    const r = new Rack();
    r.noteRtt(0, 10 * MS);
    assert.equal(r.reoWnd(false, false, 100 * MS), 2.5 * MS);
    // The path now takes 40 ms; within the window the 10 ms sample still rules.
    const step = 10_000 * MS;
    let t = 0;
    for (; t < MIN_RTT_WINDOW_US; t += step) r.noteRtt(t + step, 40 * MS);
    assert.equal(r.reoWnd(false, false, 100 * MS), 2.5 * MS, "within the window");
    r.noteRtt(t + 2 * step, 40 * MS);
    assert.equal(r.reoWnd(false, false, 100 * MS), 10 * MS, "a window later: min_RTT 40 ms");
  });

  void test("RFC 8985 6.2 step 4: a D-SACK round widens reo_wnd; 16 recoveries without one bring it back", () => {
    const r = sentLog(6);
    r.onAck(0, [2 * SEG, 3 * SEG], 12 * MS);
    r.onAck(3 * SEG, [], 13 * MS); // reordering seen
    r.onDsack(6 * SEG);
    assert.equal(r.reoWnd(false, false, 100 * MS), 5 * MS, "multiplier 2");
    r.onDsack(6 * SEG);
    assert.equal(r.reoWnd(false, false, 100 * MS), 5 * MS, "one raise per round");
    r.onUna(6 * SEG); // SND.UNA passed the round's SND.NXT
    r.onDsack(9 * SEG);
    assert.equal(r.reoWnd(false, false, 100 * MS), 7.5 * MS, "a new round raises it again");
    for (let i = 1; i < REO_WND_PERSIST; i++) r.onRecoveryEnd();
    assert.equal(r.reoWnd(false, false, 100 * MS), 7.5 * MS, "still raised after 15 recoveries");
    r.onRecoveryEnd();
    assert.equal(r.reoWnd(false, false, 100 * MS), 2.5 * MS, "back to 1 after the 16th");
  });

  void test("RFC 8985 6.2 step 2: a retransmission acknowledged sooner than min_RTT is ambiguous and does not move RACK.xmit_ts", () => {
    const r = sentLog(3);
    r.onSend(0, SEG, 20 * MS, true); // segment 0 resent at 20 ms
    // At 21 ms the cumulative ACK covers it: 1 ms < min_RTT, so it was the original's ACK.
    r.onAck(SEG, [], 21 * MS);
    assert.equal(r.detectLoss(100 * MS, 0), 0);
    assert.equal(r.lost, 0, "no segment is judged by the ambiguous delivery");
    // Segment 2 SACKed: RACK.xmit_ts = 2 ms; segment 1 (sent 1 ms) is lost once 1 + 19 passed.
    r.onAck(SEG, [2 * SEG, 3 * SEG], 21 * MS);
    assert.equal(r.detectLoss(21 * MS, 0), 0);
    assert.equal(r.lost, SEG);
  });

  void test("RFC 8985 6.2: a lost retransmission is found when data sent after it is delivered", () => {
    const r = sentLog(4);
    r.onAck(0, [SEG, 4 * SEG], 13 * MS);
    r.detectLoss(13 * MS, 0);
    assert.equal(r.lost, SEG);
    r.onSend(0, SEG, 14 * MS, true); // the retransmission
    assert.equal(r.lost, 0, "resent: no longer lost");
    assert.equal(r.pipe, SEG, "the retransmission is in flight");
    r.onSend(4 * SEG, 5 * SEG, 15 * MS, false); // new data after it
    r.onAck(0, [SEG, 5 * SEG], 25 * MS); // the new data arrives, the retransmission does not
    assert.equal(r.detectLoss(25 * MS, 0), 0);
    assert.equal(r.lost, SEG, "the retransmission is lost too");
    assert.equal(r.nextLost(1460), SEG);
    assert.equal(r.nextStart, 0);
  });

  void test("transmissions of one instant are ordered by when they left, not by sequence", () => {
    const r = new Rack();
    r.noteRtt(0, 10 * MS);
    r.onSend(0, SEG, 0, false);
    r.onSend(SEG, 2 * SEG, 0, false);
    r.onSend(5 * SEG, 6 * SEG, 20 * MS, false); // new data, then in the same microsecond...
    r.onSend(0, SEG, 20 * MS, true); // ...segment 0 again
    r.onAck(0, [5 * SEG, 6 * SEG], 30 * MS);
    r.detectLoss(30 * MS, 0);
    assert.equal(r.lost, SEG, "segment 1 is lost; the retransmission left after the delivered segment");
    assert.equal(r.nextLost(1460), SEG);
    assert.equal(r.nextStart, SEG);
  });

  void test("RFC 8985 6.3: at a timeout SND.UNA's segment and what left RACK.rtt + reo_wnd ago are lost; a discarded scoreboard restarts the log", () => {
    const r = sentLog(4);
    r.onAck(0, [2 * SEG, 3 * SEG], 12 * MS); // RACK.rtt = 10 ms
    r.onSend(4 * SEG, 5 * SEG, 30 * MS, false);
    r.onTimeout(35 * MS, 0, 0, false, 5 * SEG);
    // Segments 0, 1 and 3 (sent at 0, 1, 3 ms) are lost; segment 4 (30 ms) may still arrive.
    assert.equal(r.lost, 3 * SEG);
    assert.equal(r.pipe, SEG);
    r.onTimeout(40 * MS, 0, 0, true, 5 * SEG);
    assert.equal(r.outstanding, 5 * SEG, "the SACKed segment is outstanding again");
    assert.equal(r.lost, 5 * SEG);
  });

  void test("seed: an imported flight counts as one transmission at the import, in sequence order", () => {
    const r = new Rack();
    r.seed(100 * SEG, 110 * SEG, 50 * MS);
    assert.equal(r.outstanding, 10 * SEG);
    assert.equal(r.pipe, 10 * SEG);
    r.noteRtt(55 * MS, 5 * MS);
    r.onAck(100 * SEG, [105 * SEG, 106 * SEG], 56 * MS);
    // Below the SACKed segment: lost once RACK.rtt + reo_wnd passed; above it: no evidence.
    assert.equal(r.detectLoss(56 * MS, 1 * MS), 1 * MS);
    assert.equal(r.lost, 0);
    assert.equal(r.detectLoss(57 * MS, 1 * MS), 0);
    assert.equal(r.lost, 5 * SEG);
    assert.equal(r.pipe, 4 * SEG);
  });
});

// ---------------------------------------------------------------------------------------------
// In the engine

const ISS = Seq.of(100_000);
const IRS = Seq.of(9_000);
const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));
const L = (n: number): SeqNum => Seq.add(ISS, n);
/** The first byte of data segment k (0-based). */
const S = (k: number): SeqNum => L(1 + k * SEG);

function ackSeg(ack: SeqNum, sack: { left: SeqNum; right: SeqNum }[] = []): TcpRepr {
  return {
    ...BLANK_TCP,
    srcPort: 80,
    dstPort: 5000,
    seq: Seq.add(IRS, 1),
    ack,
    flags: TcpFlag.ACK,
    window: 65535,
    sack,
  };
}

/** A SACK sender with a 10 ms handshake RTT, 10 segments in flight (sent at 10 ms), more queued. */
function sender(rack: boolean, o: { readonly tlp?: boolean } = {}): TcpConnection {
  const cfg = tcpConfig({
    rack,
    mss: SEG,
    timestamps: false,
    windowScaling: false,
    initialCwndSegments: 10,
    delayedAck: Duration.ZERO,
    tailLossProbe: o.tlp ?? false,
  });
  const c = TcpConnection.connect(cfg, { localPort: 5000, remotePort: 80, iss: ISS, tsOffset: 0 }, at(0));
  c.pollTransmit(at(0)); // SYN
  c.handleSegment(at(10), {
    ...ackSeg(L(1)),
    seq: IRS,
    flags: TcpFlag.SYN | TcpFlag.ACK,
    mss: SEG,
    sackPermitted: true,
  });
  c.send(new Uint8Array(40 * SEG).fill(1), { push: false });
  return c;
}

function sent(c: TcpConnection, now: Instant): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let s = c.pollTransmit(now); s !== undefined; s = c.pollTransmit(now))
    if (s.payload.length > 0) out.push(s);
  return out;
}

/** Runs timers due up to `until` (ms), collecting what is sent. */
function runUntil(c: TcpConnection, until: number): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let t = c.pollTimeout(); t !== undefined && t <= at(until); t = c.pollTimeout()) {
    c.handleTimeout(t);
    out.push(...sent(c, t));
  }
  return out;
}

void describe("RACK in the engine (RFC 8985)", () => {
  void test("RFC 8985 6.2: one SACKed segment above a hole is enough: the hole is resent a quarter RTT later, not after DupThresh ACKs", () => {
    for (const rack of [true, false]) {
      const c = sender(rack);
      assert.equal(sent(c, at(10)).length, 10);
      // Segment 0 is lost; segment 1 is SACKed at 20 ms (RTT 10 ms). Nothing else arrives.
      c.handleSegment(at(20), ackSeg(S(0), [{ left: S(1), right: S(2) }]));
      const now = sent(c, at(20)).filter((s) => s.seq === S(0));
      assert.equal(now.length, 0, `rack ${rack}: nothing resent at once (reo_wnd)`);
      const later = runUntil(c, 30).filter((s) => s.seq === S(0));
      if (rack) {
        assert.equal(later.length, 1, "RACK: the reordering timer finds segment 0 lost");
        assert.equal(c.stats.rackTimeouts, 1);
        assert.equal(c.stats.rackLostBytes, SEG);
        assert.equal(c.stats.fastRetransmits, 1, "and fast recovery begins");
      } else {
        assert.equal(later.length, 0, "DupThresh alone: still waiting for two more duplicate ACKs");
      }
      c.checkInvariants();
    }
  });

  void test("RFC 8985 6.2: a lost retransmission is resent when later data arrives, before the retransmission timeout", () => {
    const c = sender(true);
    sent(c, at(10));
    // Segment 0 lost; 1..3 SACKed at 20 ms: DupThresh SACKed, no reordering seen: reo_wnd 0.
    c.handleSegment(at(20), ackSeg(S(0), [{ left: S(1), right: S(4) }]));
    const first = sent(c, at(20));
    assert.equal(first.filter((s) => s.seq === S(0)).length, 1, "segment 0 resent at once");
    // The retransmission is lost as well. The rest of the first flight (4..9) arrives: sent
    // before the retransmission, it proves nothing against it; new data goes out.
    c.handleSegment(at(30), ackSeg(S(0), [{ left: S(1), right: S(10) }]));
    const more = sent(c, at(30));
    assert.equal(more.filter((s) => s.seq === S(0)).length, 0, "not yet: nothing sent after it arrived");
    const fresh = more.filter((s) => Seq.ge(s.seq, S(10)));
    assert.ok(fresh.length > 0, "new data follows the retransmission");
    // That new data arrives: it left after the retransmission, which is therefore lost.
    const high = Seq.add((fresh.at(-1) as TcpRepr).seq, SEG);
    c.handleSegment(at(40), ackSeg(S(0), [{ left: S(1), right: high }]));
    const again = sent(c, at(40)).filter((s) => s.seq === S(0));
    assert.equal(again.length, 1, "RACK resends the lost retransmission");
    assert.equal(c.stats.timeouts, 0, "without a retransmission timeout");
    c.checkInvariants();
  });

  void test("RFC 8985 6.2 step 3 and 4: once reordering is seen, a late segment within min_RTT / 4 is not resent", () => {
    const c = sender(true);
    sent(c, at(10));
    // Segment 0 arrives after 1 (reordering): seen, no loss.
    c.handleSegment(at(20), ackSeg(S(0), [{ left: S(1), right: S(2) }]));
    c.handleSegment(at(20.5), ackSeg(S(2)));
    assert.equal(sent(c, at(20.5)).filter((s) => Seq.lt(s.seq, S(2))).length, 0);
    // Later: segment 2 is late while 3..5 are SACKed (DupThresh of them); reo_wnd is now 2.5 ms.
    c.handleSegment(at(21), ackSeg(S(2), [{ left: S(3), right: S(6) }]));
    assert.equal(sent(c, at(21)).filter((s) => s.seq === S(2)).length, 0, "within reo_wnd");
    c.handleSegment(at(22), ackSeg(S(6)));
    assert.equal(runUntil(c, 40).filter((s) => s.seq === S(2)).length, 0, "it arrived: never resent");
    assert.equal(c.stats.fastRetransmits, 0);
    assert.equal(c.stats.rackLostBytes, 0);
  });

  void test("a recovery that retransmitted nothing is undone at its full ACK: the segment deemed lost was only late", () => {
    const c = sender(true);
    sent(c, at(10));
    const before = c.cwnd;
    c.handleSegment(at(20), ackSeg(S(0), [{ left: S(1), right: S(2) }]));
    // The reordering timer deems segment 0 lost and recovery begins...
    const t = c.pollTimeout() as Instant;
    c.handleTimeout(t);
    assert.equal(c.stats.fastRetransmits, 1);
    assert.ok(c.cwnd < before, "the window went down");
    // ...but segment 0 arrives before its retransmission leaves: all of the flight is ACKed.
    c.handleSegment(t, ackSeg(S(10)));
    assert.equal(c.stats.spuriousUndos, 1, "undone");
    assert.ok(c.cwnd >= before, `cwnd ${c.cwnd} back to at least ${before}`);
    c.checkInvariants();
  });

  void test("an imported connection's flight is in RACK's log: a later loss is found", () => {
    const c = sender(true);
    sent(c, at(10));
    const snap = c.exportState(at(12));
    const d = TcpConnection.importState(
      snap,
      at(12),
      tcpConfig({ rack: true, mss: SEG, tailLossProbe: false }),
    );
    d.checkInvariants();
    assert.equal(sent(d, at(12)).length, 0, "the imported flight fills the window");
    // Segments 0..9 were sent before the import: one SACKed is no evidence against the others.
    d.handleSegment(at(20), ackSeg(S(0), [{ left: S(5), right: S(6) }]));
    const resent = runUntil(d, 100).filter((s) => s.seq === S(0));
    assert.equal(resent.length, 1, "segment 0 is resent once");
    assert.equal(d.stats.timeouts, 0, "by RACK, not by the retransmission timer");
    assert.ok(d.stats.rackLostBytes >= SEG);
    d.checkInvariants();
  });
});
