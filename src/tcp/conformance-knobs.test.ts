// The knobs and behaviours the FreeBSD conformance suite needed, each against the engine alone:
// TIME-WAIT (RFC 1337, tcp_twcheck), old SYNs, separate RFC 5961 switches, SYN+FIN dropping,
// SYNs without options, the SYN retransmission schedule (slop, option dropping, establishment
// timeout), data on SYN and SYN-ACK, the MSS option after a PMTU change, and acceptance up to
// the free buffer space.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { type TcpConfig, tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";
import { Seq, type SeqNum } from "../wire/seq.js";

const { ACK, SYN, FIN, RST } = TcpFlag;
const LOCAL_ISS = Seq.of(1000);
const REMOTE_ISS = Seq.of(5000);
const L = (n: number): SeqNum => Seq.add(LOCAL_ISS, n);
const R = (n: number): SeqNum => Seq.add(REMOTE_ISS, n);
const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));
const bytes = (n: number, fill = 0x61): Uint8Array => new Uint8Array(n).fill(fill);
const PARAMS = { localPort: 80, remotePort: 49500, iss: LOCAL_ISS, tsOffset: 0 };

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
  recvBufferSize: 1000,
  sendBufferSize: 1024,
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

/** SYN-SENT, the SYN drained. */
function synSent(cfg: TcpConfig = BASE): TcpConnection {
  const c = TcpConnection.connect(cfg, PARAMS, at(0));
  assert.equal(drainTx(c, at(0)).length, 1);
  return c;
}

/** ESTABLISHED by active open. */
function established(cfg: TcpConfig = BASE): TcpConnection {
  const c = synSent(cfg);
  recv(c, at(1), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1), mss: 1460, window: 60000 });
  assert.equal(c.state, "ESTABLISHED");
  drainTx(c, at(1));
  return c;
}

/** TIME-WAIT by active close: RCV.NXT = R(2), SND.NXT = L(2). */
function timeWait(cfg: TcpConfig = BASE): TcpConnection {
  const c = established(cfg);
  c.close();
  drainTx(c, at(2));
  recv(c, at(3), { flags: FIN | ACK, ack: L(2) });
  assert.equal(c.state, "TIME-WAIT");
  assert.equal(drainTx(c, at(3)).length, 1);
  return c;
}

void describe("TIME-WAIT (RFC 1337; FreeBSD tcp_twcheck)", () => {
  void test("an in-window RST is ignored", () => {
    const c = timeWait();
    recv(c, at(4), { flags: RST, seq: R(2) });
    assert.equal(c.state, "TIME-WAIT");
    assert.deepEqual(drainTx(c, at(4)), []);
  });
  void test("a segment without ACK is dropped silently, even an old FIN", () => {
    const c = timeWait();
    recv(c, at(4), { flags: FIN, seq: R(1) });
    assert.deepEqual(drainTx(c, at(4)), []);
    assert.equal(c.state, "TIME-WAIT");
  });
  void test("an in-window segment that is not the duplicate ACK draws an ACK", () => {
    const c = timeWait();
    recv(c, at(4), { seq: R(2), ack: L(2) }); // the plain duplicate ACK: nothing
    assert.deepEqual(drainTx(c, at(4)), []);
    recv(c, at(5), { seq: R(3), ack: L(2) });
    const out = drainTx(c, at(5));
    assert.equal(out.length, 1);
    assert.equal(out[0]?.ack, R(2));
  });
  void test("an in-window SYN with RFC 5961 SYN checks off still resets; an old one is only ACKed", () => {
    const cfg = tcpConfig({ ...BASE, rfc5961Syn: false });
    const c = timeWait(cfg);
    recv(c, at(4), { flags: SYN | FIN, seq: R(1) }); // the SYN lies left of RCV.NXT
    const ack = drainTx(c, at(4));
    assert.deepEqual(
      ack.map((s) => [s.flags, s.ack]),
      [[ACK, R(2)]],
    );
    assert.equal(c.state, "TIME-WAIT");
    recv(c, at(5), { flags: SYN, seq: R(10) });
    assert.equal(drainTx(c, at(5))[0]?.flags, RST | ACK);
    assert.equal(c.state, "CLOSED");
  });
});

void describe("separate RFC 5961 switches", () => {
  void test("rfc5961Rst=false: an in-window RST resets at once; SYNs still draw challenge ACKs", () => {
    const cfg = tcpConfig({ ...BASE, rfc5961Rst: false });
    const a = established(cfg);
    recv(a, at(5), { flags: SYN, seq: R(10) });
    assert.equal(a.state, "ESTABLISHED");
    assert.equal(a.stats.challengeAcks, 1);
    recv(a, at(6), { flags: RST, seq: R(10) });
    assert.equal(a.state, "CLOSED");
    assert.equal(a.error, "ECONNRESET");
  });
  void test("rfc5961Syn=false: an in-window SYN resets; RSTs still draw challenge ACKs", () => {
    const cfg = tcpConfig({ ...BASE, rfc5961Syn: false });
    const a = established(cfg);
    recv(a, at(5), { flags: RST, seq: R(10) });
    assert.equal(a.state, "ESTABLISHED");
    assert.equal(a.stats.challengeAcks, 1);
    recv(a, at(6), { flags: SYN, seq: R(10) });
    assert.equal(a.state, "CLOSED");
  });
});

void describe("SYN-SENT: SYN+FIN, data on SYN and SYN-ACK (RFC 9293 3.10.7.3)", () => {
  void test("dropSynFin drops a SYN+FIN; without it the SYN is taken (simultaneous open)", () => {
    const c = synSent(tcpConfig({ ...BASE, dropSynFin: true }));
    recv(c, at(1), { flags: SYN | FIN, seq: REMOTE_ISS, ack: Seq.of(0) });
    assert.equal(c.state, "SYN-SENT");
    assert.deepEqual(drainTx(c, at(1)), []);
    const d = synSent(tcpConfig({ ...BASE, dropSynFin: false }));
    recv(d, at(1), { flags: SYN | FIN, seq: REMOTE_ISS, ack: Seq.of(0) });
    assert.equal(d.state, "SYN-RECEIVED");
  });
  void test("data on a SYN-ACK is acknowledged and readable", () => {
    const c = synSent();
    recv(c, at(1), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1), payload: bytes(3, 7) });
    assert.equal(c.state, "ESTABLISHED");
    const out = drainTx(c, at(1));
    assert.equal(out.length, 1);
    assert.equal(out[0]?.ack, R(4));
    assert.deepEqual([...(c.recv() ?? [])], [7, 7, 7]);
  });
  void test("data on a SYN is held, not acknowledged, and readable once ESTABLISHED", () => {
    const c = synSent(tcpConfig({ ...BASE, dropSynFin: false }));
    recv(c, at(1), { flags: SYN | FIN, seq: REMOTE_ISS, ack: Seq.of(0), payload: bytes(3, 9) });
    assert.equal(c.state, "SYN-RECEIVED");
    const synAck = drainTx(c, at(1));
    assert.equal(synAck[0]?.ack, R(1), "the SYN-ACK acknowledges the SYN only");
    assert.equal(c.readable, 0);
    recv(c, at(2), { seq: R(4), ack: L(1) });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.readable, 3);
    assert.equal(c.rcvNxt, R(4));
    assert.deepEqual([...(c.recv() ?? [])], [9, 9, 9]);
  });
});

void describe("SYN options and the retransmission schedule", () => {
  void test("noOptions on a passive open: a bare SYN-ACK, and nothing is negotiated", () => {
    const syn: TcpRepr = {
      ...FROM_PEER,
      flags: SYN,
      seq: REMOTE_ISS,
      ack: Seq.of(0),
      mss: 1000,
      windowScale: 6,
      sackPermitted: true,
      timestamps: { tsVal: 100, tsEcr: 0 },
    };
    const c = TcpConnection.accept(tcpConfig({ noOptions: true }), PARAMS, syn, at(0));
    const [synAck] = drainTx(c, at(0));
    assert.ok(synAck !== undefined);
    assert.equal(synAck.mss, undefined);
    assert.equal(synAck.windowScale, undefined);
    assert.equal(synAck.timestamps, undefined);
    assert.equal(synAck.sackPermitted, false);
    assert.equal(c.timestampsEnabled, false);
    assert.equal(c.sackEnabled, false);
  });
  void test("noOptions: the SYN carries no option and nothing is negotiated", () => {
    const c = TcpConnection.connect(tcpConfig({ noOptions: true }), PARAMS, at(0));
    const [syn] = drainTx(c, at(0));
    assert.ok(syn !== undefined);
    assert.equal(syn.mss, undefined);
    assert.equal(syn.windowScale, undefined);
    assert.equal(syn.timestamps, undefined);
    assert.equal(syn.sackPermitted, false);
    recv(c, at(1), {
      flags: SYN | ACK,
      seq: REMOTE_ISS,
      ack: L(1),
      sackPermitted: true,
      windowScale: 7,
      timestamps: { tsVal: 1, tsEcr: 0 },
    });
    assert.equal(c.sackEnabled, false);
    assert.equal(c.timestampsEnabled, false);
    assert.deepEqual(c.windowScales, { snd: 0, rcv: 0 });
  });
  void test("rtoSlop is added to each backed-off SYN timeout: 1 s, then 2.2 s, then 4.2 s", () => {
    const c = TcpConnection.connect(tcpConfig({ rtoSlop: Duration.fromMillis(200) }), PARAMS, at(0));
    drainTx(c, at(0));
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = c.pollTimeout();
      assert.ok(t !== undefined);
      times.push(t / 1000);
      c.handleTimeout(t);
      assert.equal(drainTx(c, t)[0]?.flags, SYN);
    }
    assert.deepEqual(times, [1000, 3200, 7400]);
  });
  void test("synRetransmitDropOptions: from the third retransmission on, only the MSS", () => {
    const c = TcpConnection.connect(tcpConfig({ synRetransmitDropOptions: true }), PARAMS, at(0));
    const syns = [...drainTx(c, at(0))];
    for (let i = 0; i < 3; i++) {
      const t = c.pollTimeout();
      assert.ok(t !== undefined);
      c.handleTimeout(t);
      syns.push(...drainTx(c, t));
    }
    assert.deepEqual(
      syns.map((s) => [s.mss, s.sackPermitted, s.timestamps !== undefined, s.windowScale !== undefined]),
      [
        [1460, true, true, true],
        [1460, true, true, true],
        [1460, true, true, true],
        [1460, false, false, false],
      ],
    );
  });
  void test("connectTimeout ends SYN-SENT with ETIMEDOUT at its deadline", () => {
    const c = TcpConnection.connect(tcpConfig({ connectTimeout: Duration.fromSeconds(5) }), PARAMS, at(0));
    drainTx(c, at(0));
    let last = 0;
    for (let i = 0; i < 10 && c.state !== "CLOSED"; i++) {
      const t = c.pollTimeout();
      assert.ok(t !== undefined);
      last = t;
      c.handleTimeout(t);
      drainTx(c, t);
    }
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
    assert.equal(last, at(5000));
  });
  void test("the SYN's MSS option stays the interface MSS after a path MTU drop (RFC 1191 3)", () => {
    const c = TcpConnection.connect(BASE, PARAMS, at(0));
    drainTx(c, at(0));
    c.setPathMtu(1234, 40);
    const t = c.pollTimeout();
    assert.ok(t !== undefined);
    c.handleTimeout(t);
    assert.equal(drainTx(c, t)[0]?.mss, 1460);
    recv(c, t, { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1), mss: 1460 });
    assert.equal(c.mss, 1194, "the send MSS follows the path");
  });
});

void describe("acceptance up to the free buffer space", () => {
  void test("a segment just beyond the advertised edge but within the buffer is taken", () => {
    // 70000 bytes of buffer, but an unscaled window field advertises at most 65535.
    const c = established(tcpConfig({ ...BASE, recvBufferSize: 70000 }));
    const edge = c.rcvWnd;
    assert.equal(edge, 65535, "an unscaled window field caps what we advertise");
    recv(c, at(5), { seq: R(1 + 65535), payload: bytes(100) });
    assert.equal(c.stats.dropsOutOfWindow, 0, "70000 bytes of space: the segment is acceptable");
    assert.equal(c.status().oooBytes, 100);
  });
  void test("a listener's SYN-RECEIVED and TIME-WAIT use the advertised window only", () => {
    const c = timeWait(tcpConfig({ ...BASE, recvBufferSize: 70000 }));
    recv(c, at(5), { seq: R(2 + 65535 + 10), ack: L(2) });
    assert.equal(c.stats.dropsOutOfWindow, 1);
  });
});

void describe("D-SACK for data already held out of order (RFC 2883 4)", () => {
  /** ESTABLISHED with SACK, 100 bytes in order read, [200, 300) held out of order. */
  function holding(): TcpConnection {
    const cfg = tcpConfig({ ...BASE, sack: true, recvBufferSize: 65536 });
    const c = TcpConnection.connect(cfg, PARAMS, at(0));
    drainTx(c, at(0));
    recv(c, at(1), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1), mss: 1460, sackPermitted: true });
    drainTx(c, at(1));
    recv(c, at(2), { seq: R(200), payload: bytes(100) });
    const acks = drainTx(c, at(2));
    assert.deepEqual(acks.at(-1)?.sack, [{ left: R(200), right: R(300) }]);
    return c;
  }

  void test("a segment overlapping queued data reports the overlap first, then the block holding it", () => {
    const c = holding();
    recv(c, at(3), { seq: R(150), payload: bytes(125) }); // [150, 275): [200, 275) is a duplicate
    const ack = drainTx(c, at(3)).at(-1);
    assert.deepEqual(ack?.sack, [
      { left: R(200), right: R(275) },
      { left: R(150), right: R(300) },
    ]);
    assert.equal(ack?.ack, R(1), "still a hole at [1, 150)");
  });

  void test("an in-order segment that covers queued data reports it below the new ACK", () => {
    const c = holding();
    recv(c, at(3), { seq: R(1), payload: bytes(399) }); // [1, 400) swallows [200, 300)
    const ack = drainTx(c, at(3)).at(-1);
    assert.equal(ack?.ack, R(400));
    assert.deepEqual(ack?.sack, [{ left: R(200), right: R(300) }]);
  });

  void test("without D-SACK, only the SACK block is sent", () => {
    const cfg = tcpConfig({ ...BASE, sack: true, dsack: false, recvBufferSize: 65536 });
    const c = TcpConnection.connect(cfg, PARAMS, at(0));
    drainTx(c, at(0));
    recv(c, at(1), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1), mss: 1460, sackPermitted: true });
    recv(c, at(2), { seq: R(200), payload: bytes(100) });
    recv(c, at(3), { seq: R(150), payload: bytes(125) });
    assert.deepEqual(drainTx(c, at(3)).at(-1)?.sack, [{ left: R(150), right: R(300) }]);
  });
});

void describe("ackEverySecondSegment", () => {
  const cfg = (on: boolean): TcpConfig =>
    tcpConfig({
      ...BASE,
      delayedAck: Duration.fromMillis(100),
      ackEverySecondSegment: on,
      recvBufferSize: 65536,
    });

  void test("on: the second small segment is acknowledged at once (BSD)", () => {
    const c = established(cfg(true));
    recv(c, at(5), { seq: R(1), payload: bytes(1) });
    assert.equal(drainTx(c, at(5)).length, 0, "the first one waits for the delayed-ACK timer");
    recv(c, at(6), { seq: R(2), payload: bytes(2) });
    assert.equal(drainTx(c, at(6)).at(-1)?.ack, R(4));
  });

  void test("off: small segments wait for two full-sized segments' worth or the timer", () => {
    const c = established(cfg(false));
    recv(c, at(5), { seq: R(1), payload: bytes(1) });
    recv(c, at(6), { seq: R(2), payload: bytes(2) });
    assert.equal(drainTx(c, at(6)).length, 0);
    const t = c.pollTimeout();
    assert.equal(t, at(105), "the delayed ACK runs from the first segment");
  });
});
