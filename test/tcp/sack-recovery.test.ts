// SACK loss recovery as a sender, segment by segment: a lost retransmission is sent again
// without waiting for the RTO, and after an RTO the go-back-N resend skips SACKed data.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../../src/time/instant.js";
import { type SackBlock, TcpFlag, type TcpRepr } from "../../src/wire/tcp-repr.js";
import { tcpConfig } from "../../src/tcp/config.js";
import { TcpConnection } from "../../src/tcp/connection.js";
import { at, tcpScript } from "../support/tcp-script.js";
import { Seq } from "../../src/wire/seq.js";

const { SYN } = TcpFlag;
const LOCAL_ISS = Seq.of(0xffff_ff00); // the data wraps the sequence space
const REMOTE_ISS = Seq.of(7000);
const { L, R, FROM_PEER } = tcpScript(LOCAL_ISS, REMOTE_ISS);
const SEG = 100;

const CFG = tcpConfig({
  windowScaling: false,
  timestamps: false,
  sack: true,
  delayedAck: Duration.ZERO,
  sendBufferSize: 1 << 16,
  initialCwndSegments: 10,
  minRto: Duration.fromMillis(200),
});

/** ESTABLISHED with SACK, peer MSS 100 (so every segment carries 100 bytes). */
function established(cfg = CFG): TcpConnection {
  const c = TcpConnection.accept(
    cfg,
    { localPort: 80, remotePort: 49500, iss: LOCAL_ISS, tsOffset: 0 },
    { ...FROM_PEER, flags: SYN, seq: REMOTE_ISS, ack: Seq.of(0), mss: SEG, sackPermitted: true },
    at(0),
  );
  c.pollTransmit(at(0));
  c.handleSegment(at(10), { ...FROM_PEER });
  assert.equal(c.state, "ESTABLISHED");
  assert.equal(c.sackEnabled, cfg.sack);
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

function ack(c: TcpConnection, now: Instant, upTo: number, sack: [number, number][] = []): void {
  const blocks: SackBlock[] = sack.map(([l, r]) => ({ left: L(l), right: L(r) }));
  c.handleSegment(now, { ...FROM_PEER, ack: L(upTo), sack: blocks });
  c.checkInvariants();
}

void describe("SACK recovery (RFC 6675) as a sender", () => {
  void test("a lost retransmission is detected from later SACKs and sent again before any RTO", () => {
    const c = established();
    c.send(new Uint8Array(40 * SEG));
    assert.deepEqual(spans(drain(c, at(20))).length, 10, "initial window: 10 segments");
    // Segment 1 is lost; the peer SACKs 2, 3, 4 (three duplicate ACKs).
    ack(c, at(22), 1, [[101, 201]]);
    ack(c, at(22), 1, [[101, 301]]);
    ack(c, at(22), 1, [[101, 401]]);
    const first = spans(drain(c, at(22)));
    assert.deepEqual(first[0], [1, SEG], "fast retransmit of segment 1");
    assert.equal(c.stats.fastRetransmits, 1);
    // The rest of the window arrives; new data goes out by pipe.
    const sent: [number, number][] = [];
    for (let i = 5; i <= 10; i++) {
      ack(c, at(23), 1, [[101, i * SEG + 1]]);
      sent.push(...spans(drain(c, at(23))));
    }
    assert.ok(
      sent.some(([s]) => s >= 1001),
      `new data was sent during recovery: ${JSON.stringify(sent)}`,
    );
    assert.ok(!sent.some(([s]) => s === 1), "not yet deemed lost");
    // The retransmission of segment 1 was lost too: segments sent after it are SACKed.
    const again: [number, number][] = [];
    for (let k = 1; k <= 3; k++) {
      ack(c, at(24), 1, [
        [1001, 1001 + k * SEG],
        [101, 1001],
      ]);
      again.push(...spans(drain(c, at(24))));
    }
    assert.ok(
      again.some(([s, n]) => s === 1 && n === SEG),
      `segment 1 sent again: ${JSON.stringify(again)}`,
    );
    assert.equal(c.stats.timeouts, 0);
    // Its ACK ends recovery.
    ack(c, at(26), 1001 + 3 * SEG);
    assert.equal(c.sndUna, L(1001 + 3 * SEG));
  });

  void test("after an RTO the resend skips what the peer SACKed", () => {
    const c = established(tcpConfig({ ...CFG, tailLossProbe: false }));
    c.send(new Uint8Array(10 * SEG));
    drain(c, at(20));
    // Segments 1 and 2 are lost; 3..10 are SACKed by one ACK whose siblings were lost too,
    // so no fast retransmit happens and the RTO fires.
    const cfgDup = c.stats.dupAcksIn;
    ack(c, at(22), 1, [[201, 1001]]);
    assert.equal(c.stats.dupAcksIn, cfgDup + 1);
    const quick = spans(drain(c, at(22)));
    const rto = c.pollTimeout();
    assert.ok(rto !== undefined);
    c.handleTimeout(rto);
    assert.equal(c.stats.timeouts, 1);
    const resent: [number, number][] = [...quick, ...spans(drain(c, rto))];
    ack(c, Instant.add(rto, Duration.fromMillis(1)), 101, [[201, 1001]]);
    resent.push(...spans(drain(c, Instant.add(rto, Duration.fromMillis(1)))));
    ack(c, Instant.add(rto, Duration.fromMillis(2)), 201, [[201, 1001]]);
    resent.push(...spans(drain(c, Instant.add(rto, Duration.fromMillis(2)))));
    assert.equal(c.sndUna, L(201));
    // Everything from 201 on was SACKed: nothing of it is sent again.
    assert.ok(
      resent.every(([s]) => s < 201),
      `only the holes were resent: ${JSON.stringify(resent)}`,
    );
    ack(c, Instant.add(rto, Duration.fromMillis(3)), 1001);
    assert.equal(c.sndUna, L(1001));
    assert.equal(c.pollTimeout(), undefined, "all acknowledged");
  });

  void test("a tail loss probe after 2 * SRTT resends the last segment; its SACK starts recovery", () => {
    const c = established();
    c.send(new Uint8Array(10 * SEG));
    drain(c, at(20));
    // Nothing comes back: the probe fires at 2 * SRTT (the handshake's 10 ms sample), long
    // before the 200 ms RTO.
    const pto = c.pollTimeout();
    assert.equal(pto, at(40));
    c.handleTimeout(at(40));
    assert.deepEqual(spans(drain(c, at(40))), [[901, SEG]], "the last segment again");
    assert.equal(c.stats.timeouts, 0);
    assert.equal(c.pollTimeout(), at(240), "the RTO was re-armed");
    // Only the first segment was lost: the probe's ACK SACKs everything above it.
    ack(c, at(45), 1, [[101, 1001]]);
    ack(c, at(45), 1, [[101, 1001]]);
    const rtx = spans(drain(c, at(45)));
    assert.deepEqual(rtx[0], [1, SEG], "fast retransmit without an RTO");
    assert.equal(c.stats.fastRetransmits, 1);
    ack(c, at(50), 1001);
    assert.equal(c.sndUna, L(1001));
    assert.equal(c.stats.timeouts, 0);
  });

  void test("without SACK there is no probe: the RTO is the next deadline", () => {
    const c = established(tcpConfig({ ...CFG, sack: false }));
    c.send(new Uint8Array(3 * SEG));
    drain(c, at(20));
    assert.equal(c.pollTimeout(), at(220));
  });
});

/** A data segment from the peer: its bytes [from, from + len), our ACK `upTo` and SACK blocks. */
function peerData(
  c: TcpConnection,
  now: Instant,
  from: number,
  len: number,
  upTo: number,
  sack: [number, number][] = [],
): void {
  const blocks: SackBlock[] = sack.map(([l, r]) => ({ left: L(l), right: L(r) }));
  c.handleSegment(now, {
    ...FROM_PEER,
    seq: R(from),
    ack: L(upTo),
    sack: blocks,
    payload: new Uint8Array(len),
  });
  c.checkInvariants();
}

// The /echo case: the peer sends data too, and as Linux does it reports our losses in the SACK
// blocks of its data segments, with few pure duplicate ACKs. Before these rules the sender
// counted only pure duplicate ACKs, resent more than the hole and took a D-SACK of part of that
// resend as proof of a spurious recovery (raising DupThresh): every loss waited for the RTO.
void describe("SACK recovery while the peer sends data too", () => {
  void test("SACK blocks on the peer's data segments start recovery: no pure duplicate ACK needed (RFC 6675 2)", () => {
    const c = established();
    c.send(new Uint8Array(40 * SEG));
    assert.equal(spans(drain(c, at(20))).length, 10);
    // Segment 1 is lost; the peer's next three data segments SACK 2, 3, 4.
    peerData(c, at(22), 1, 50, 1, [[101, 201]]);
    peerData(c, at(22), 51, 50, 1, [[101, 301]]);
    peerData(c, at(22), 101, 50, 1, [[101, 401]]);
    const out = spans(drain(c, at(22)));
    assert.deepEqual(
      out[0],
      [1, SEG],
      `fast retransmit of segment 1, not a wait for the RTO: ${JSON.stringify(out)}`,
    );
    assert.equal(c.stats.fastRetransmits, 1);
    assert.equal(c.stats.timeouts, 0);
  });

  void test("an ACK that moves SND.UNA and SACKs three segments above the next hole starts recovery", () => {
    const c = established();
    c.send(new Uint8Array(40 * SEG));
    drain(c, at(20));
    // Segment 3 (bytes 201..300) is lost; one ACK covers 1 and 2 and SACKs 4, 5, 6.
    ack(c, at(22), 201, [[301, 601]]);
    const out = spans(drain(c, at(22)));
    assert.deepEqual(out[0], [201, SEG], `segment 3 resent at once: ${JSON.stringify(out)}`);
    assert.equal(c.stats.fastRetransmits, 1);
  });

  void test("the first retransmission stops at the next SACKed byte when the original was cut shorter", () => {
    const c = established();
    // The peer's first 100 bytes are missing, so our segments carry a SACK block and less data.
    peerData(c, at(15), 101, 100, 1);
    c.send(new Uint8Array(20 * SEG));
    const sent = spans(drain(c, at(20)));
    const p = sent[0]?.[1] ?? 0;
    assert.ok(p > 0 && p < SEG, `segments shortened by our SACK option: ${JSON.stringify(sent.slice(0, 2))}`);
    // The peer's hole fills (our segments may be full again); our first segment was lost.
    peerData(c, at(22), 1, 100, 1, [[1 + p, 1 + 2 * p]]);
    peerData(c, at(22), 201, 0, 1, [[1 + p, 1 + 3 * p]]);
    peerData(c, at(22), 201, 0, 1, [[1 + p, 1 + 4 * p]]);
    const out = spans(drain(c, at(22)));
    assert.deepEqual(
      out[0],
      [1, p],
      `only the hole is resent, none of the SACKed bytes: ${JSON.stringify(out)}`,
    );
  });

  void test("a D-SACK of part of a retransmission does not make the recovery spurious; of all of it, it does", () => {
    for (const [dsack, spurious] of [
      [[89, 101], false],
      [[1, 101], true],
    ] as const) {
      const c = established();
      c.send(new Uint8Array(10 * SEG));
      drain(c, at(20));
      ack(c, at(22), 1, [[101, 201]]);
      ack(c, at(22), 1, [[101, 301]]);
      ack(c, at(22), 1, [[101, 401]]);
      assert.deepEqual(spans(drain(c, at(22)))[0], [1, SEG]);
      // Everything arrives; the peer reports [dsack) of the retransmission as a duplicate.
      ack(c, at(24), 1001, [[...dsack]]);
      assert.equal(c.stats.dsacksIn, 1);
      const what = `D-SACK ${JSON.stringify(dsack)} of a ${SEG}-byte retransmission`;
      assert.equal(c.stats.spuriousUndos, spurious ? 1 : 0, `${what}: undo`);
      assert.equal(c.stats.reorderingRaised, spurious ? 1 : 0, `${what}: DupThresh raised`);
    }
  });
});
