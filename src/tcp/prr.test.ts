// RFC 6937 proportional rate reduction: one segment lost out of a flight of 20; SACKs arrive one
// segment at a time. With PRR the sender keeps sending in proportion (ssthresh / RecoverFS, a
// half for NewReno) from the first ACKs of recovery; without it (RFC 6675 alone) it stays silent
// until pipe falls below cwnd = ssthresh, then sends a segment per ACK.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { Seq, type SeqNum } from "../wire/seq.js";
import { BLANK_TCP, TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";

const MSS = 1000;
const ISS = Seq.of(100_000);
const IRS = Seq.of(9_000);
const at = (ms: number): Instant => Instant.fromMicros(ms * 1000);
const L = (n: number): SeqNum => Seq.add(ISS, n);

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

/** A sender with 20 segments in flight and 40 more queued; returns it and the data segments sent. */
function sender(prr: boolean): TcpConnection {
  const cfg = tcpConfig({
    prr,
    mss: MSS,
    timestamps: false,
    windowScaling: false,
    initialCwndSegments: 20,
    delayedAck: Duration.ZERO,
    tailLossProbe: false,
  });
  const c = TcpConnection.connect(cfg, { localPort: 5000, remotePort: 80, iss: ISS, tsOffset: 0 }, at(0));
  c.pollTransmit(at(0)); // SYN
  c.handleSegment(at(10), {
    ...ackSeg(L(1)),
    seq: IRS,
    flags: TcpFlag.SYN | TcpFlag.ACK,
    mss: MSS,
    sackPermitted: true,
  });
  c.send(new Uint8Array(60 * MSS).fill(1), { push: false });
  return c;
}

function sent(c: TcpConnection, now: Instant): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let s = c.pollTransmit(now); s !== undefined; s = c.pollTransmit(now))
    if (s.payload.length > 0) out.push(s);
  return out;
}

/** Segment 1 is lost; SACKs for 2..n arrive one by one. New segments sent after each ACK. */
function recovery(prr: boolean): { perAck: number[]; rtx: number } {
  const c = sender(prr);
  const first = sent(c, at(10));
  assert.equal(first.length, 20, "the first flight: 20 segments");
  const perAck: number[] = [];
  let rtx = 0;
  for (let k = 2; k <= 16; k++) {
    c.handleSegment(at(20 + k), ackSeg(L(1), [{ left: L(1 + MSS), right: L(1 + k * MSS) }]));
    const out = sent(c, at(20 + k));
    rtx += out.filter((s) => s.seq === L(1)).length;
    perAck.push(out.filter((s) => Seq.ge(s.seq, L(1 + 20 * MSS))).length);
  }
  c.checkInvariants();
  return { perAck, rtx };
}

void describe("PRR (RFC 6937)", () => {
  void test("RFC 6937 3: with PRR new data keeps flowing from the start of recovery, at about half the delivery rate", () => {
    const withPrr = recovery(true);
    const without = recovery(false);
    assert.equal(withPrr.rtx, 1, "the lost segment is resent once");
    assert.equal(without.rtx, 1);
    // The third SACK starts recovery (index 2 = the ACK for segment 4).
    const early = (r: { perAck: number[] }) => r.perAck.slice(2, 8).reduce((a, b) => a + b, 0);
    assert.ok(
      early(withPrr) >= 2,
      `PRR sends during the first ACKs of recovery: ${withPrr.perAck.join(",")}`,
    );
    assert.equal(early(without), 0, `RFC 6675 alone waits for pipe < cwnd: ${without.perAck.join(",")}`);
    // Over the recovery, PRR sends about ssthresh / RecoverFS = 1/2 of what is delivered.
    const total = withPrr.perAck.slice(2).reduce((a, b) => a + b, 0);
    const delivered = 16 - 3;
    assert.ok(
      Math.abs(total - delivered / 2) <= 2,
      `PRR sent ${total} new segments for ${delivered} delivered`,
    );
    // Never a burst: at most two segments (the retransmission aside) per ACK.
    assert.ok(
      withPrr.perAck.every((n) => n <= 2),
      withPrr.perAck.join(","),
    );
  });
});
