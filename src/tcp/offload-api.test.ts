// The engine API an offload target needs (Chimney): owed ACKs (TM-11), PSH at NBL boundaries
// (SD-4), InitialRcvWnd updates (UP-2) and MAX_RT_RESTART, peek-then-consume receive,
// export after a reset, urgent data held for upload, and an RTO a snapshot can carry.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { type TcpConfig, tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";
import { Seq, type SeqNum } from "../wire/seq.js";

const { ACK, SYN, PSH, RST, URG } = TcpFlag;
const LOCAL_ISS = Seq.of(1000);
const REMOTE_ISS = Seq.of(5000);
const L = (n: number): SeqNum => Seq.add(LOCAL_ISS, n);
const R = (n: number): SeqNum => Seq.add(REMOTE_ISS, n);
const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));
const bytes = (n: number, fill = 0x61): Uint8Array => new Uint8Array(n).fill(fill);

const FROM_PEER: TcpRepr = {
  srcPort: 49500,
  dstPort: 80,
  seq: R(1),
  ack: L(1),
  flags: ACK,
  window: 4096,
  urgent: 0,
  mss: undefined,
  windowScale: undefined,
  sackPermitted: false,
  sack: [],
  timestamps: undefined,
  unknownOptions: [],
  payload: new Uint8Array(0),
};

const BASE = tcpConfig({
  windowScaling: false,
  timestamps: false,
  sack: false,
  delayedAck: Duration.ZERO,
  recvBufferSize: 64,
  sendBufferSize: 1024,
  initialCwndSegments: 10,
});

function drainTx(c: TcpConnection, now: Instant): TcpRepr[] {
  const got: TcpRepr[] = [];
  for (let s = c.pollTransmit(now); s !== undefined; s = c.pollTransmit(now)) got.push(s);
  c.checkInvariants();
  return got;
}

function recv(c: TcpConnection, now: Instant, seg: Partial<TcpRepr>): void {
  c.handleSegment(now, { ...FROM_PEER, ...seg });
  c.checkInvariants();
}

/** An ESTABLISHED passive connection whose peer advertised MSS `mss`. */
function established(cfg: TcpConfig = BASE, mss = 1460): TcpConnection {
  const c = TcpConnection.accept(
    cfg,
    { localPort: 80, remotePort: 49500, iss: LOCAL_ISS, tsOffset: 0 },
    { ...FROM_PEER, flags: SYN, seq: REMOTE_ISS, ack: Seq.of(0), mss },
    at(0),
  );
  assert.equal(drainTx(c, at(0)).length, 1); // the SYN-ACK
  recv(c, at(1), {});
  assert.equal(c.state, "ESTABLISHED");
  for (let e = c.pollEvent(); e !== undefined; e = c.pollEvent());
  return c;
}

void describe("flushAck / ackOwed (Chimney TM-11)", () => {
  void test("a delayed ACK can be seen and sent at once; then none is owed", () => {
    const c = established(tcpConfig({ ...BASE, delayedAck: Duration.fromMillis(40) }));
    assert.equal(c.ackOwed, false);
    assert.equal(c.flushAck(at(2)), undefined);
    recv(c, at(2), { payload: bytes(10) });
    assert.deepEqual(drainTx(c, at(2)), [], "the ACK is delayed");
    assert.equal(c.ackOwed, true);
    assert.equal(c.pollTimeout(), at(42));
    const ack = c.flushAck(at(3));
    assert.ok(ack !== undefined);
    assert.equal(ack.flags, ACK);
    assert.equal(ack.ack, R(11));
    assert.equal(ack.payload.length, 0);
    assert.equal(c.ackOwed, false);
    assert.equal(c.pollTimeout(), undefined, "the delayed-ACK timer stopped");
    assert.equal(c.flushAck(at(4)), undefined);
    assert.deepEqual(drainTx(c, at(50)), []);
  });
});

void describe("send with push (Chimney SD-4)", () => {
  const flagsOf = (push: boolean): number[] => {
    const c = established(BASE, 50);
    c.send(bytes(50), { push });
    c.send(bytes(100));
    const segs = drainTx(c, at(2));
    assert.deepEqual(
      segs.map((s) => s.payload.length),
      [50, 50, 50],
    );
    return segs.map((s) => s.flags & PSH);
  };
  void test("the segment ending at a pushed chunk carries PSH", () => {
    assert.deepEqual(flagsOf(true), [PSH, 0, PSH]);
  });
  void test("without push only the segment that empties the queue carries PSH", () => {
    assert.deepEqual(flagsOf(false), [0, 0, PSH]);
  });
  void test("a retransmission of the pushed segment keeps PSH", () => {
    const c = established(BASE, 50);
    c.send(bytes(50), { push: true });
    c.send(bytes(100));
    drainTx(c, at(2));
    const rto = c.pollTimeout();
    assert.ok(rto !== undefined);
    c.handleTimeout(rto);
    const [first] = drainTx(c, rto);
    assert.ok(first !== undefined);
    assert.equal(first.seq, L(1));
    assert.equal(first.flags & PSH, PSH);
  });
});

void describe("setInitialRcvWnd / resetTotalRt (Chimney UP-2, MAX_RT_RESTART)", () => {
  void test("a different window is advertised at once; the same one sends nothing", () => {
    const c = established();
    assert.equal(c.setInitialRcvWnd(64), false);
    assert.deepEqual(drainTx(c, at(2)), []);
    assert.equal(c.setInitialRcvWnd(200), true);
    const segs = drainTx(c, at(2));
    assert.equal(segs.length, 1);
    assert.equal(segs[0]?.window, 200);
    assert.equal(c.setInitialRcvWnd(200), false);
    assert.deepEqual(drainTx(c, at(3)), []);
  });
  void test("resetTotalRt restarts the time spent retransmitting, keeps the count", () => {
    const c = established();
    c.send(bytes(10));
    drainTx(c, at(2));
    for (let i = 0; i < 2; i++) {
      const t = c.pollTimeout();
      assert.ok(t !== undefined);
      c.handleTimeout(t);
      drainTx(c, t);
    }
    const now = at(5000);
    const before = c.exportState(now).delegated;
    assert.ok(before.totalRt > 0);
    assert.equal(before.retransmitCount, 2);
    c.resetTotalRt();
    const after = c.exportState(now).delegated;
    assert.equal(after.totalRt, 0);
    assert.equal(after.retransmitCount, 2);
  });
});

void describe("peekChunks / consume", () => {
  void test("peeked bytes keep the window closed until consumed", () => {
    const c = established();
    recv(c, at(2), { payload: bytes(20, 1) });
    recv(c, at(2), { seq: R(21), payload: bytes(20, 2) });
    const acks = drainTx(c, at(2));
    assert.equal(acks.at(-1)?.window, 24);
    const chunks = c.peekChunks();
    assert.deepEqual(
      chunks.map((x) => [x.length, x[0]]),
      [
        [20, 1],
        [20, 2],
      ],
    );
    assert.equal(c.readable, 40, "peeking consumed nothing");
    assert.deepEqual(drainTx(c, at(3)), [], "no window update from a peek");
    c.consume(30);
    assert.equal(c.readable, 10);
    assert.equal(c.recv()?.[0], 2, "the rest starts inside the second chunk");
    const upd = drainTx(c, at(4));
    assert.equal(upd.length, 1);
    assert.equal(upd[0]?.window, 64);
  });
  void test("consuming more than is readable is a usage error", () => {
    const c = established();
    recv(c, at(2), { payload: bytes(5) });
    assert.throws(() => c.consume(6), UsageError);
    assert.throws(() => c.consume(-1), UsageError);
    c.consume(5);
    assert.equal(c.readable, 0);
  });
});

void describe("exportState after the connection failed", () => {
  void test("after a RST the CLOSED state exports (and cannot be imported)", () => {
    const c = established();
    c.send(bytes(7));
    drainTx(c, at(2));
    recv(c, at(3), { flags: RST, ack: Seq.of(0) });
    assert.equal(c.state, "CLOSED");
    const snap = c.exportState(at(3));
    assert.equal(snap.delegated.state, "CLOSED");
    assert.equal(snap.delegated.sndUna, L(1));
    assert.equal(snap.delegated.rcvNxt, R(1));
    assert.throws(() => TcpConnection.importState(snap, at(3), BASE), UsageError);
  });
  void test("after a retransmission timeout gives up, CLOSED exports", () => {
    const c = established(tcpConfig({ ...BASE, maxRetransmissions: 1 }));
    c.send(bytes(7));
    drainTx(c, at(2));
    for (let i = 0; i < 3 && c.state !== "CLOSED"; i++) {
      const t = c.pollTimeout();
      assert.ok(t !== undefined);
      c.handleTimeout(t);
      drainTx(c, t);
    }
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
    assert.equal(c.exportState(at(10_000)).delegated.state, "CLOSED");
  });
});

void describe("exportDelegated (what a terminate hands back, ST-5)", () => {
  void test("is exportState's delegated part, frozen, with data queued both ways and timers running", () => {
    const c = established();
    c.send(bytes(300));
    drainTx(c, at(2));
    c.send(bytes(20, 0x62)); // queued behind the flight
    recv(c, at(3), { seq: R(1), ack: L(1), payload: bytes(40) });
    const now = at(7);
    const d = c.exportDelegated(now);
    assert.ok(Object.isFrozen(d));
    assert.ok(d.sendData.length > 0 && d.bufferedData.length > 0, "send data and received bytes queued");
    assert.ok(d.retransmitDelta !== undefined, "the retransmission timer runs");
    assert.deepEqual(d, c.exportState(now).delegated);
  });
  void test("refuses a state that cannot be exported, as exportState does", () => {
    const c = TcpConnection.connect(
      BASE,
      { localPort: 1, remotePort: 2, iss: LOCAL_ISS, tsOffset: 0 },
      at(0),
    );
    assert.throws(() => c.exportDelegated(at(0)), UsageError);
    assert.throws(() => c.exportState(at(0)), UsageError);
  });
});

void describe("urgent data held for upload", () => {
  void test("with the hold on, a URG segment is neither processed nor acknowledged", () => {
    const c = established();
    c.setUrgentHold(true);
    const seg: TcpRepr = { ...FROM_PEER, flags: ACK | URG, urgent: 3, payload: bytes(5) };
    c.handleSegment(at(2), seg);
    assert.deepEqual(drainTx(c, at(2)), []);
    assert.equal(c.readable, 0);
    assert.equal(c.rcvNxt, R(1));
    assert.equal(c.urgentPending, true);
    assert.equal(c.takeUrgentSegment(), seg);
    assert.equal(c.urgentPending, false);
    assert.equal(c.takeUrgentSegment(), undefined);
    // Data without URG still flows.
    recv(c, at(3), { payload: bytes(4) });
    assert.equal(c.readable, 4);
  });
  void test("with the hold off, URG data is ordinary inline data", () => {
    const c = established();
    recv(c, at(2), { flags: ACK | URG, urgent: 3, payload: bytes(5) });
    assert.equal(c.readable, 5);
    assert.equal(c.urgentPending, false);
    assert.equal(drainTx(c, at(2)).at(-1)?.ack, R(6));
  });
});

void describe("the RTO a snapshot carries", () => {
  void test("RTO = (SRTT + max(G, 4 RTTVAR)) << retransmit count; Karn keeps the backoff until a sample", () => {
    const cfg = tcpConfig({ ...BASE, minRto: Duration.fromMillis(10) });
    const c = established(cfg);
    c.send(bytes(10));
    drainTx(c, at(10));
    recv(c, at(110), { ack: L(11) }); // one RTT sample of 100 ms
    const base = (d: { srtt: Duration | undefined; rttVar: Duration | undefined }): number =>
      (d.srtt ?? 0) + Math.max(1000, 4 * (d.rttVar ?? 0));
    const d0 = c.exportState(at(110)).delegated;
    assert.ok(d0.srtt !== undefined && d0.srtt > 1000, "the handshake and the data gave RTT samples");
    assert.equal(d0.rto, base(d0));
    c.send(bytes(10));
    drainTx(c, at(110));
    for (let i = 0; i < 2; i++) {
      const t = c.pollTimeout();
      assert.ok(t !== undefined);
      c.handleTimeout(t);
      drainTx(c, t);
    }
    const d2 = c.exportState(c.pollTimeout() ?? at(0)).delegated;
    assert.equal(d2.retransmitCount, 2);
    assert.equal(d2.rto, base(d2) * 4);
    recv(c, at(2000), { ack: L(21) });
    const d3 = c.exportState(at(2000)).delegated;
    assert.equal(d3.retransmitCount, 0);
    assert.equal(d3.rto, base(d3) * 4, "Karn: no sample from a retransmitted segment");
    c.send(bytes(10));
    drainTx(c, at(2000));
    recv(c, at(2050), { ack: L(31) }); // a valid sample ends the backoff
    const d4 = c.exportState(at(2050)).delegated;
    assert.equal(d4.rto, base(d4));
  });
  void test("with timestamps every ACK of new data is a sample: the backoff ends at once", () => {
    const cfg = tcpConfig({ ...BASE, timestamps: true, minRto: Duration.fromMillis(10) });
    const c = TcpConnection.accept(
      cfg,
      { localPort: 80, remotePort: 49500, iss: LOCAL_ISS, tsOffset: 0 },
      {
        ...FROM_PEER,
        flags: SYN,
        seq: REMOTE_ISS,
        ack: Seq.of(0),
        mss: 1460,
        timestamps: { tsVal: 1, tsEcr: 0 },
      },
      at(0),
    );
    const synAck = drainTx(c, at(0))[0];
    assert.ok(synAck?.timestamps !== undefined);
    recv(c, at(1), { timestamps: { tsVal: 2, tsEcr: synAck.timestamps.tsVal } });
    assert.equal(c.state, "ESTABLISHED");
    c.send(bytes(10));
    const [seg] = drainTx(c, at(10));
    assert.ok(seg?.timestamps !== undefined);
    const t = c.pollTimeout();
    assert.ok(t !== undefined);
    c.handleTimeout(t);
    const [rtx] = drainTx(c, t);
    assert.ok(rtx?.timestamps !== undefined);
    assert.equal(c.exportState(t).delegated.retransmitCount, 1);
    recv(c, Instant.add(t, Duration.fromMillis(5)), {
      ack: L(11),
      timestamps: { tsVal: 3, tsEcr: rtx.timestamps.tsVal },
    });
    const d = c.exportState(Instant.add(t, Duration.fromMillis(5))).delegated;
    assert.equal(d.retransmitCount, 0);
    const base = (d.srtt ?? 0) + Math.max(1000, 4 * (d.rttVar ?? 0));
    assert.equal(d.rto, Math.max(10_000, base));
  });
});
