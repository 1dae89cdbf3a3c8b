// State-machine unit tests in the smoltcp fixture style: segment templates spread with
// overrides, fixtures chained by state, `expectOnly` drains everything so extra segments fail,
// `checkInvariants()` after each step, ISS values chosen so sequence numbers wrap.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { type TcpConfig, tcpConfig } from "./config.js";
import { type ConnEvent, replyToUnexpected, TcpConnection } from "./connection.js";
import { Seq, type SeqNum } from "../wire/seq.js";
import { UsageError } from "../util/errors.js";

const LOCAL_PORT = 80;
const REMOTE_PORT = 49500;
const LOCAL_ISS = Seq.of(0xffff_fffa); // our data wraps after 5 bytes
const REMOTE_ISS = Seq.of(0xffff_fff0); // the peer's wraps after 15
const { ACK, SYN, FIN, RST, PSH } = TcpFlag;

const L = (n: number): SeqNum => Seq.add(LOCAL_ISS, n);
const R = (n: number): SeqNum => Seq.add(REMOTE_ISS, n);
const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));
const bytes = (n: number, fill = 0x61): Uint8Array => new Uint8Array(n).fill(fill);

/** A segment from the peer. Tests override only the fields they are about. */
const FROM_PEER: TcpRepr = {
  srcPort: REMOTE_PORT,
  dstPort: LOCAL_PORT,
  seq: R(1),
  ack: L(1),
  flags: ACK,
  window: 1024,
  urgent: 0,
  mss: undefined,
  windowScale: undefined,
  sackPermitted: false,
  sack: [],
  timestamps: undefined,
  unknownOptions: [],
  payload: new Uint8Array(0),
};
/** A segment we expect the connection to emit. */
const TO_PEER: TcpRepr = {
  ...FROM_PEER,
  srcPort: LOCAL_PORT,
  dstPort: REMOTE_PORT,
  seq: L(1),
  ack: R(1),
  window: 64,
};

/** Plain RFC 9293 configuration: no options, no delayed ACK, small buffers. */
const BASE = tcpConfig({
  // RFC 5681 / 6582 arithmetic (halving) is what these tests assert; CUBIC, the default, has
  // its own tests (cubic.test.ts).
  congestionControl: "newreno",
  windowScaling: false,
  timestamps: false,
  sack: false,
  delayedAck: Duration.ZERO,
  recvBufferSize: 64,
  sendBufferSize: 256,
  initialCwndSegments: 4,
});
const PARAMS = { localPort: LOCAL_PORT, remotePort: REMOTE_PORT, iss: LOCAL_ISS, tsOffset: 1000 };

/** Drains pollTransmit and compares the whole list, so an extra segment fails too. */
function expectOnly(c: TcpConnection, now: Instant, want: TcpRepr[]): void {
  const got: TcpRepr[] = [];
  for (let s = c.pollTransmit(now); s !== undefined; s = c.pollTransmit(now)) {
    got.push(s);
    assert.ok(got.length < 1000, "runaway pollTransmit");
  }
  assert.deepEqual(got, want);
  c.checkInvariants();
}

/** Drains pollTransmit, returning the segments without judging them. */
function drainTx(c: TcpConnection, now: Instant): TcpRepr[] {
  const got: TcpRepr[] = [];
  for (let s = c.pollTransmit(now); s !== undefined; s = c.pollTransmit(now)) got.push(s);
  c.checkInvariants();
  return got;
}

function events(c: TcpConnection): ConnEvent[] {
  const out: ConnEvent[] = [];
  for (let e = c.pollEvent(); e !== undefined; e = c.pollEvent()) out.push(e);
  return out;
}

function recv(c: TcpConnection, now: Instant, seg: Partial<TcpRepr>): void {
  c.handleSegment(now, { ...FROM_PEER, ...seg });
  c.checkInvariants();
}

/** Fires every timer due at `now`. */
function tick(c: TcpConnection, now: Instant): void {
  const t = c.pollTimeout();
  if (t !== undefined && t <= now) c.handleTimeout(now);
  c.checkInvariants();
}

// ----- fixtures, chained by state -----

function synSent(cfg: TcpConfig = BASE): TcpConnection {
  const c = TcpConnection.connect(cfg, PARAMS, at(0));
  expectOnly(c, at(0), [{ ...TO_PEER, flags: SYN, seq: LOCAL_ISS, ack: Seq.of(0), mss: 1460 }]);
  assert.equal(c.state, "SYN-SENT");
  return c;
}

function synReceived(cfg: TcpConfig = BASE): TcpConnection {
  const c = TcpConnection.accept(
    cfg,
    PARAMS,
    { ...FROM_PEER, flags: SYN, seq: REMOTE_ISS, ack: Seq.of(0), mss: 1460 },
    at(0),
  );
  expectOnly(c, at(0), [
    {
      ...TO_PEER,
      flags: SYN | ACK,
      seq: LOCAL_ISS,
      mss: cfg.mss,
      window: Math.min(cfg.recvBufferSize, 0xffff),
    },
  ]);
  assert.equal(c.state, "SYN-RECEIVED");
  return c;
}

function established(cfg: TcpConfig = BASE): TcpConnection {
  const c = synReceived(cfg);
  recv(c, at(1), {});
  expectOnly(c, at(1), []);
  assert.equal(c.state, "ESTABLISHED");
  assert.deepEqual(events(c), [{ kind: "connected" }, { kind: "writable", space: cfg.sendBufferSize }]);
  return c;
}

function finWait1(): TcpConnection {
  const c = established();
  assert.equal(c.close(), undefined);
  expectOnly(c, at(2), [{ ...TO_PEER, flags: FIN | ACK }]);
  assert.equal(c.state, "FIN-WAIT-1");
  return c;
}

function finWait2(): TcpConnection {
  const c = finWait1();
  recv(c, at(3), { ack: L(2) });
  expectOnly(c, at(3), []);
  assert.equal(c.state, "FIN-WAIT-2");
  return c;
}

function closeWait(): TcpConnection {
  const c = established();
  recv(c, at(2), { flags: FIN | ACK });
  expectOnly(c, at(2), [{ ...TO_PEER, ack: R(2) }]);
  assert.equal(c.state, "CLOSE-WAIT");
  assert.deepEqual(events(c), [{ kind: "peer-fin" }]);
  return c;
}

function lastAck(): TcpConnection {
  const c = closeWait();
  c.close();
  expectOnly(c, at(3), [{ ...TO_PEER, flags: FIN | ACK, ack: R(2) }]);
  assert.equal(c.state, "LAST-ACK");
  return c;
}

function timeWait(): TcpConnection {
  const c = finWait2();
  recv(c, at(4), { flags: FIN | ACK, ack: L(2) });
  expectOnly(c, at(4), [{ ...TO_PEER, seq: L(2), ack: R(2) }]);
  assert.equal(c.state, "TIME-WAIT");
  return c;
}

// ----- tests -----

void describe("CLOSED: replyToUnexpected (RFC 9293 3.10.7.1)", () => {
  void test("a SYN draws RST+ACK acknowledging it", () => {
    const r = replyToUnexpected({ ...FROM_PEER, flags: SYN, seq: REMOTE_ISS, ack: Seq.of(0) });
    assert.deepEqual(r, { ...TO_PEER, flags: RST | ACK, seq: Seq.of(0), ack: R(1), window: 0 });
  });
  void test("an ACK draws a RST with SEQ = SEG.ACK", () => {
    const r = replyToUnexpected({ ...FROM_PEER, ack: L(77), payload: bytes(3) });
    assert.deepEqual(r, { ...TO_PEER, flags: RST, seq: L(77), ack: Seq.of(0), window: 0 });
  });
  void test("a RST draws nothing", () => {
    assert.equal(replyToUnexpected({ ...FROM_PEER, flags: RST }), undefined);
  });
  void test("a data segment without ACK: ACK field covers data and FIN", () => {
    const r = replyToUnexpected({ ...FROM_PEER, flags: FIN, payload: bytes(5) });
    assert.equal(r?.ack, R(7));
  });
});

void describe("SYN-SENT (RFC 9293 3.10.7.3)", () => {
  void test("SYN-ACK completes the handshake; data queued before is sent", () => {
    const c = synSent();
    assert.equal(c.send(bytes(3)), 3);
    recv(c, at(10), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1), mss: 1000 });
    assert.equal(c.state, "ESTABLISHED");
    expectOnly(c, at(10), [{ ...TO_PEER, flags: ACK | PSH, payload: bytes(3) }]);
    assert.equal(c.mss, 1000);
    assert.equal(events(c)[0]?.kind, "connected");
    assert.equal(c.srtt, Duration.fromMillis(10));
  });
  void test("data right behind the SYN-ACK fits the window our SYN offered (RFC 7323 2.2)", () => {
    const c = synSent();
    recv(c, at(1), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1) });
    recv(c, at(1), { payload: bytes(10) }); // before our ACK went out
    assert.equal(c.readable, 10);
    expectOnly(c, at(1), [{ ...TO_PEER, ack: R(11), window: 54 }]);
  });
  void test("an unacceptable ACK draws <SEQ=SEG.ACK><CTL=RST>", () => {
    const c = synSent();
    recv(c, at(1), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(5) });
    expectOnly(c, at(1), [{ ...TO_PEER, flags: RST, seq: L(5), ack: Seq.of(0), window: 0 }]);
    assert.equal(c.state, "SYN-SENT");
  });
  void test("RST with an acceptable ACK: connection refused", () => {
    const c = synSent();
    recv(c, at(1), { flags: RST | ACK, seq: Seq.of(0), ack: L(1) });
    assert.equal(c.state, "CLOSED");
    assert.deepEqual(events(c), [{ kind: "closed", reason: "refused", error: "ECONNREFUSED" }]);
    expectOnly(c, at(1), []);
  });
  void test("RST without ACK is ignored (RFC 5961 3.2)", () => {
    const c = synSent();
    recv(c, at(1), { flags: RST, seq: REMOTE_ISS });
    assert.equal(c.state, "SYN-SENT");
    expectOnly(c, at(1), []);
  });
  void test("RST with a bad ACK is dropped silently", () => {
    const c = synSent();
    recv(c, at(1), { flags: RST | ACK, ack: L(9) });
    assert.equal(c.state, "SYN-SENT");
    expectOnly(c, at(1), []);
  });
  void test("simultaneous open: SYN -> SYN-RECEIVED, SYN-ACK on ISS, then ESTABLISHED (figure 8)", () => {
    const c = synSent();
    recv(c, at(1), { flags: SYN, seq: REMOTE_ISS, ack: Seq.of(0) });
    assert.equal(c.state, "SYN-RECEIVED");
    expectOnly(c, at(1), [{ ...TO_PEER, flags: SYN | ACK, seq: LOCAL_ISS, mss: 1460 }]);
    recv(c, at(2), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1) });
    // The peer's SYN-ACK repeats its SYN (not acceptable: left of RCV.NXT): ACK it.
    expectOnly(c, at(2), [TO_PEER]);
    recv(c, at(2), {});
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(events(c)[0]?.kind, "connected");
  });
  void test("the SYN is retransmitted with exponential backoff, then ETIMEDOUT (RFC 6298 5.5)", () => {
    const c = synSent(tcpConfig({ ...BASE, synRetries: 2 }));
    assert.equal(c.pollTimeout(), at(1000));
    tick(c, at(1000));
    expectOnly(c, at(1000), [{ ...TO_PEER, flags: SYN, seq: LOCAL_ISS, ack: Seq.of(0), mss: 1460 }]);
    assert.equal(c.pollTimeout(), at(3000));
    tick(c, at(3000));
    assert.equal(drainTx(c, at(3000)).length, 1);
    assert.equal(c.pollTimeout(), at(7000));
    tick(c, at(7000));
    assert.equal(c.state, "CLOSED");
    assert.deepEqual(events(c), [{ kind: "closed", reason: "timeout", error: "ETIMEDOUT" }]);
    assert.equal(c.stats.retransmits, 2);
  });
  void test("after a retransmitted SYN the RTO starts at 3 s (RFC 6298 5.7)", () => {
    const c = synSent();
    tick(c, at(1000));
    drainTx(c, at(1000));
    recv(c, at(1100), { flags: SYN | ACK, seq: REMOTE_ISS, ack: L(1) });
    assert.equal(c.srtt, undefined); // Karn: no sample from a retransmitted SYN
    assert.equal(c.rto, Duration.fromSeconds(3));
  });
  void test("a SYN without MSS option means 536 for IPv4, or the owner's default (IPv6: 1220)", () => {
    const c4 = TcpConnection.accept(BASE, PARAMS, { ...FROM_PEER, flags: SYN, seq: REMOTE_ISS }, at(0));
    assert.equal(c4.mss, 536);
    const c6 = TcpConnection.accept(
      BASE,
      { ...PARAMS, defaultPeerMss: 1220 },
      { ...FROM_PEER, flags: SYN, seq: REMOTE_ISS },
      at(0),
    );
    assert.equal(c6.mss, 1220);
  });
  void test("close in SYN-SENT deletes the TCB without a segment (3.10.4)", () => {
    const c = synSent();
    assert.equal(c.close(), undefined);
    assert.equal(c.state, "CLOSED");
    expectOnly(c, at(1), []);
    assert.equal(c.close(), "connection-does-not-exist");
    assert.equal(c.send(bytes(1)), "connection-does-not-exist");
  });
  void test("options are offered in the SYN and used only if the SYN-ACK has them (RFC 7323, 2018)", () => {
    const cfg = tcpConfig({
      ...BASE,
      windowScaling: true,
      timestamps: true,
      sack: true,
      recvBufferSize: 1 << 20,
    });
    const c = TcpConnection.connect(cfg, PARAMS, at(0));
    const [syn] = drainTx(c, at(0));
    assert.equal(syn?.windowScale, 5);
    assert.equal(syn?.sackPermitted, true);
    assert.deepEqual(syn?.timestamps, { tsVal: 1000, tsEcr: 0 });
    assert.equal(syn?.window, 0xffff);
    recv(c, at(5), { flags: SYN | ACK, seq: REMOTE_ISS, windowScale: 2, window: 1000, mss: 1460 });
    assert.equal(c.timestampsEnabled, false);
    assert.equal(c.sackEnabled, false);
    assert.deepEqual(c.windowScales, { snd: 2, rcv: 5 });
    assert.equal(c.sndWnd, 1000); // the SYN-ACK window is never scaled (RFC 7323 2.2)
    const [ack] = drainTx(c, at(5));
    assert.equal(ack?.timestamps, undefined);
    assert.equal(ack?.window, 1 << 15);
  });
  void test("window scale shift above 14 is clamped to 14 (RFC 7323 2.3)", () => {
    const cfg = tcpConfig({ ...BASE, windowScaling: true });
    const c = TcpConnection.connect(cfg, PARAMS, at(0));
    drainTx(c, at(0));
    recv(c, at(1), { flags: SYN | ACK, seq: REMOTE_ISS, windowScale: 20 });
    assert.equal(c.windowScales.snd, 14);
  });
});

void describe("SYN-RECEIVED (RFC 9293 3.10.7.4)", () => {
  void test("a retransmitted SYN draws the SYN-ACK again", () => {
    const c = synReceived();
    recv(c, at(1), { flags: SYN, seq: REMOTE_ISS, ack: Seq.of(0), mss: 1460 });
    expectOnly(c, at(1), [{ ...TO_PEER, flags: SYN | ACK, seq: LOCAL_ISS, mss: 1460 }]);
    assert.equal(c.stats.retransmits, 1);
  });
  void test("an unacceptable ACK draws a RST", () => {
    const c = synReceived();
    recv(c, at(1), { ack: L(10) });
    expectOnly(c, at(1), [{ ...TO_PEER, flags: RST, seq: L(10), ack: Seq.of(0), window: 0 }]);
    assert.equal(c.state, "SYN-RECEIVED");
  });
  void test("a RST closes a passively opened connection", () => {
    const c = synReceived();
    recv(c, at(1), { flags: RST });
    assert.equal(c.state, "CLOSED");
    assert.equal(events(c).at(-1)?.kind, "closed");
  });
  void test("the SYN-ACK is retransmitted on timeout", () => {
    const c = synReceived();
    tick(c, at(1000));
    expectOnly(c, at(1000), [{ ...TO_PEER, flags: SYN | ACK, seq: LOCAL_ISS, mss: 1460 }]);
  });
  void test("close before the ACK: FIN follows once ESTABLISHED (3.10.4)", () => {
    const c = synReceived();
    assert.equal(c.close(), undefined);
    expectOnly(c, at(1), []);
    recv(c, at(1), {});
    assert.equal(c.state, "FIN-WAIT-1");
    expectOnly(c, at(1), [{ ...TO_PEER, flags: FIN | ACK }]);
  });
  void test("data on the third segment is accepted", () => {
    const c = synReceived();
    recv(c, at(1), { payload: bytes(4) });
    assert.equal(c.state, "ESTABLISHED");
    expectOnly(c, at(1), [{ ...TO_PEER, ack: R(5), window: 60 }]);
    assert.equal(c.readable, 4);
  });
});

void describe("ESTABLISHED: receiving (RFC 9293 3.10.7.4)", () => {
  void test("in-order data is acknowledged and the window shrinks", () => {
    const c = established();
    recv(c, at(2), { payload: Uint8Array.of(1, 2, 3) });
    expectOnly(c, at(2), [{ ...TO_PEER, ack: R(4), window: 61 }]);
    assert.deepEqual(events(c), [{ kind: "readable", bytes: 3 }]);
    assert.deepEqual(c.recv(), Uint8Array.of(1, 2, 3));
  });
  void test("a segment left of RCV.NXT draws a duplicate ACK and changes nothing", () => {
    const c = established();
    recv(c, at(2), { seq: REMOTE_ISS, payload: Uint8Array.of(9) });
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.rcvNxt, R(1));
    assert.equal(c.stats.dropsOutOfWindow, 1);
  });
  void test("a segment beyond the window draws an ACK and is dropped", () => {
    const c = established();
    recv(c, at(2), { seq: R(65), payload: bytes(1) });
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.readable, 0);
  });
  void test("a segment overlapping RCV.NXT is trimmed to the new bytes", () => {
    const c = established();
    recv(c, at(2), { payload: Uint8Array.of(1, 2) });
    drainTx(c, at(2));
    recv(c, at(3), { payload: Uint8Array.of(1, 2, 3, 4) });
    expectOnly(c, at(3), [{ ...TO_PEER, ack: R(5), window: 60 }]);
    const buf = new Uint8Array(10);
    assert.equal(c.recvInto(buf), 4);
    assert.deepEqual(buf.subarray(0, 4), Uint8Array.of(1, 2, 3, 4));
  });
  void test("data past the right window edge is trimmed", () => {
    const c = established();
    recv(c, at(2), { payload: bytes(100) });
    expectOnly(c, at(2), [{ ...TO_PEER, ack: R(65), window: 0 }]);
    assert.equal(c.readable, 64);
  });
  void test("out-of-order data draws an immediate duplicate ACK; filling the hole ACKs everything (RFC 5681 4.2)", () => {
    const c = established();
    recv(c, at(2), { seq: R(4), payload: Uint8Array.of(4, 5, 6) });
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.readable, 0);
    recv(c, at(3), { payload: Uint8Array.of(1, 2, 3) });
    expectOnly(c, at(3), [{ ...TO_PEER, ack: R(7), window: 58 }]);
    const buf = new Uint8Array(6);
    assert.equal(c.recvInto(buf), 6);
    assert.deepEqual(buf, Uint8Array.of(1, 2, 3, 4, 5, 6));
  });
  void test("an out-of-order FIN is processed once the hole fills", () => {
    const c = established();
    recv(c, at(2), { seq: R(3), flags: FIN | ACK, payload: Uint8Array.of(3) });
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.state, "ESTABLISHED");
    recv(c, at(3), { payload: Uint8Array.of(1, 2) });
    expectOnly(c, at(3), [{ ...TO_PEER, ack: R(5), window: 61 }]);
    assert.equal(c.state, "CLOSE-WAIT");
  });
  void test("zero window: a segment at RCV.NXT has its ACK processed, its text dropped (3.10.7.4)", () => {
    const c = established();
    assert.equal(c.send(bytes(10)), 10);
    drainTx(c, at(2));
    recv(c, at(3), { payload: bytes(64) });
    expectOnly(c, at(3), [{ ...TO_PEER, seq: L(11), ack: R(65), window: 0 }]);
    recv(c, at(4), { seq: R(65), ack: L(11), payload: bytes(1) });
    expectOnly(c, at(4), [{ ...TO_PEER, seq: L(11), ack: R(65), window: 0 }]);
    assert.equal(c.sndUna, L(11));
    assert.equal(c.readable, 64);
  });
  void test("receiver SWS avoidance: the window reopens only by a full MSS or half the buffer (3.8.6.2.2)", () => {
    const c = established(tcpConfig({ ...BASE, recvBufferSize: 4000 }));
    recv(c, at(2), { payload: bytes(1460) });
    expectOnly(c, at(2), [{ ...TO_PEER, ack: R(1461), window: 2540 }]);
    recv(c, at(3), { seq: R(1461), payload: bytes(1460) });
    expectOnly(c, at(3), [{ ...TO_PEER, ack: R(2921), window: 1080 }]);
    c.recv(100);
    expectOnly(c, at(4), []); // 100 freed bytes: no update
    recv(c, at(5), { seq: R(2921), payload: bytes(10) });
    expectOnly(c, at(5), [{ ...TO_PEER, ack: R(2931), window: 1070 }]); // the edge did not move
    while (c.recv() !== undefined);
    // 2930 bytes freed, window 1070 < 2000: an update goes out at once.
    expectOnly(c, at(6), [{ ...TO_PEER, ack: R(2931), window: 4000 }]);
  });
  void test("duplicate ACK is sent for a segment with a bad ACK above SND.NXT", () => {
    const c = established();
    recv(c, at(2), { ack: L(50), payload: bytes(2) });
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.readable, 0);
    assert.equal(c.stats.dropsBadAck, 1);
  });
  void test("a segment without ACK is dropped", () => {
    const c = established();
    recv(c, at(2), { flags: 0, payload: bytes(2) });
    expectOnly(c, at(2), []);
    assert.equal(c.readable, 0);
  });
  void test("urgent data is delivered inline (RFC 6093)", () => {
    const c = established();
    recv(c, at(2), { flags: ACK | TcpFlag.URG, urgent: 2, payload: Uint8Array.of(7, 8, 9) });
    expectOnly(c, at(2), [{ ...TO_PEER, ack: R(4), window: 61 }]);
    assert.equal(c.readable, 3);
  });
});

void describe("ESTABLISHED: RST and SYN checks (RFC 5961)", () => {
  void test("RST at exactly RCV.NXT resets the connection", () => {
    const c = established();
    recv(c, at(2), { flags: RST });
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ECONNRESET");
    assert.deepEqual(events(c), [{ kind: "closed", reason: "reset", error: "ECONNRESET" }]);
  });
  void test("RST in window but not at RCV.NXT draws a challenge ACK (5961 3.2)", () => {
    const c = established();
    recv(c, at(2), { flags: RST, seq: R(10) });
    assert.equal(c.state, "ESTABLISHED");
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.stats.challengeAcks, 1);
  });
  void test("RST outside the window is dropped silently", () => {
    const c = established();
    recv(c, at(2), { flags: RST, seq: R(1000) });
    expectOnly(c, at(2), []);
    assert.equal(c.state, "ESTABLISHED");
  });
  void test("with RFC 5961 off, any in-window RST resets (RFC 793)", () => {
    const c = established(tcpConfig({ ...BASE, rfc5961: false }));
    recv(c, at(2), { flags: RST, seq: R(10) });
    assert.equal(c.state, "CLOSED");
  });
  void test("SYN in a synchronized state draws a challenge ACK (5961 4.2)", () => {
    const c = established();
    recv(c, at(2), { flags: SYN, seq: R(5), ack: Seq.of(0) });
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.state, "ESTABLISHED");
  });
  void test("with RFC 5961 off, an in-window SYN resets the connection", () => {
    const c = established(tcpConfig({ ...BASE, rfc5961: false }));
    recv(c, at(2), { flags: SYN, seq: R(5) });
    expectOnly(c, at(2), [{ ...TO_PEER, flags: RST | ACK, window: 0 }]);
    assert.equal(c.state, "CLOSED");
  });
  void test("an ACK older than SND.UNA - MAX.SND.WND draws a challenge ACK (5961 5.2)", () => {
    const c = established();
    recv(c, at(2), { ack: L(-5000), payload: bytes(1) });
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.readable, 0);
    assert.equal(c.stats.challengeAcks, 1);
  });
  void test("blind-attack probing: after a challenge ACK, keep-alives in 5 min, ETIMEDOUT if unanswered (Chimney 17.11)", () => {
    const cfg = tcpConfig({
      ...BASE,
      blindAttackProbing: true,
      keepAliveInterval: Duration.fromSeconds(1),
      keepAliveProbes: 2,
    });
    const c = established(cfg);
    recv(c, at(2), { flags: RST, seq: R(10) });
    expectOnly(c, at(2), [TO_PEER]);
    assert.equal(c.pollTimeout(), at(300_002));
    tick(c, at(300_002));
    expectOnly(c, at(300_002), [{ ...TO_PEER, seq: L(0) }]);
    tick(c, at(301_002));
    expectOnly(c, at(301_002), [{ ...TO_PEER, seq: L(0) }]);
    tick(c, at(302_002));
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
  });
  void test("blind-attack probing stops when an acceptable segment arrives", () => {
    const c = established(tcpConfig({ ...BASE, blindAttackProbing: true }));
    recv(c, at(2), { flags: RST, seq: R(10) });
    drainTx(c, at(2));
    recv(c, at(3), {});
    assert.equal(c.pollTimeout(), undefined);
  });
  void test("challenge ACKs are rate limited per second (5961 7)", () => {
    const c = established(tcpConfig({ ...BASE, challengeAckLimit: 2 }));
    for (let i = 0; i < 5; i++) {
      recv(c, at(2), { flags: RST, seq: R(10) });
      drainTx(c, at(2));
    }
    assert.equal(c.stats.challengeAcks, 2);
    assert.equal(c.stats.challengeAcksSuppressed, 3);
    recv(c, at(1100), { flags: RST, seq: R(10) });
    assert.equal(drainTx(c, at(1100)).length, 1);
  });
});

void describe("ESTABLISHED: sending and retransmission (RFC 9293, RFC 6298)", () => {
  void test("send is split into MSS segments within the peer's window; ACKs free the buffer", () => {
    const c = established(tcpConfig({ ...BASE, mss: 100 }));
    recv(c, at(2), { window: 250 });
    assert.equal(c.send(bytes(300)), 256);
    // The peer's window is 250: 100 + 100 + 50 go out (the last is half the max window).
    // The peer's window is 250: two full segments; the 50 bytes left in the window are less
    // than half the largest window seen (1024) and not all the data: SWS avoidance holds them.
    const segs = drainTx(c, at(2));
    assert.deepEqual(
      segs.map((s) => [s.seq, s.payload.length]),
      [
        [L(1), 100],
        [L(101), 100],
      ],
    );
    recv(c, at(3), { ack: L(201), window: 250 });
    assert.deepEqual(events(c), [
      { kind: "acked", bytes: 200 },
      { kind: "writable", space: 200 },
    ]);
    expectOnly(c, at(3), [{ ...TO_PEER, seq: L(201), flags: ACK | PSH, payload: bytes(56) }]);
  });
  void test("sender SWS avoidance: a small usable window is not used until the override timer (3.8.6.2.1)", () => {
    const c = established(tcpConfig({ ...BASE, mss: 100 }));
    recv(c, at(2), { window: 1000 });
    recv(c, at(3), { window: 30 }); // the peer's window shrank to 30; max window seen is 1000
    c.send(bytes(200));
    expectOnly(c, at(3), []); // 30 < MSS, < half the max window, not all the data
    assert.equal(c.pollTimeout(), at(203)); // the override timer (one RTO)
    tick(c, at(203));
    expectOnly(c, at(203), [{ ...TO_PEER, flags: ACK, payload: bytes(30) }]);
  });
  void test("send returns the bytes the buffer takes", () => {
    const c = established();
    assert.equal(c.send(bytes(300)), 256);
    assert.equal(c.sendSpace, 0);
    assert.equal(c.send(bytes(1)), 0);
  });
  void test("RTO: retransmit the first segment, back off, Karn's rule (RFC 6298 5)", () => {
    const c = established();
    c.send(bytes(10));
    expectOnly(c, at(2), [{ ...TO_PEER, flags: ACK | PSH, payload: bytes(10) }]);
    // The handshake's 1 ms RTT sample gave RTO = minRto = 200 ms.
    assert.equal(c.pollTimeout(), at(202));
    tick(c, at(202));
    expectOnly(c, at(202), [{ ...TO_PEER, flags: ACK | PSH, payload: bytes(10) }]);
    assert.equal(c.pollTimeout(), at(602));
    assert.equal(c.stats.retransmits, 1);
    recv(c, at(300), { ack: L(11) });
    // Karn: no RTT sample from the retransmitted segment, so the backed-off RTO stays.
    assert.equal(c.rto, Duration.fromMillis(400));
    assert.equal(c.pollTimeout(), undefined);
  });
  void test("max retransmissions -> ETIMEDOUT", () => {
    const c = established(tcpConfig({ ...BASE, maxRetransmissions: 3, maxRto: Duration.fromSeconds(4) }));
    c.send(bytes(1));
    drainTx(c, at(2));
    let t = 2;
    for (let i = 0; i < 3; i++) {
      const d = c.pollTimeout();
      assert.ok(d !== undefined);
      t = d / 1000;
      tick(c, at(t));
      assert.equal(drainTx(c, at(t)).length, 1);
    }
    assert.equal(t, 2 + 200 + 400 + 800);
    tick(c, c.pollTimeout() ?? at(0));
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
  });
  void test("RTT samples set the RTO, bounded below by minRto (RFC 6298 2)", () => {
    const c = established();
    c.send(bytes(10));
    drainTx(c, at(2));
    recv(c, at(52), { ack: L(11) });
    // First sample 1 ms (handshake): SRTT 1000, RTTVAR 500. Second 50 ms:
    // RTTVAR = (3 * 500 + 49000) / 4 = 12625, SRTT = (7 * 1000 + 50000) / 8 = 7125.
    assert.equal(c.srtt, Duration.fromMicros(7125));
    assert.equal(c.rto, Duration.fromMillis(200)); // 7125 + 4 * 12625 = 57625 < minRto
    const fast = established(tcpConfig({ ...BASE, minRto: Duration.fromMillis(1) }));
    assert.equal(fast.rto, Duration.fromMicros(3000)); // 1000 + max(G, 4 * 500)
  });
  void test("Nagle holds a small segment while data is unacknowledged (3.7.4)", () => {
    const c = established();
    c.send(bytes(5));
    assert.equal(drainTx(c, at(2)).length, 1);
    c.send(bytes(5));
    expectOnly(c, at(2), []);
    recv(c, at(3), { ack: L(6) });
    expectOnly(c, at(3), [{ ...TO_PEER, seq: L(6), flags: ACK | PSH, payload: bytes(5) }]);
  });
  void test("no-delay sends small segments at once", () => {
    const c = established();
    c.setNoDelay(true);
    c.send(bytes(5));
    c.send(bytes(5));
    assert.equal(drainTx(c, at(2)).length, 1); // both chunks coalesce into one segment
    c.send(bytes(5));
    assert.equal(drainTx(c, at(2)).length, 1);
  });
  void test("fast retransmit after three duplicate ACKs, limited transmit before (RFC 5681, 3042, 6582)", () => {
    const c = established(tcpConfig({ ...BASE, mss: 100, sendBufferSize: 2000 }));
    recv(c, at(2), { window: 2000 });
    c.send(bytes(1000));
    const first = drainTx(c, at(2));
    assert.equal(first.length, 4); // IW = 4 segments
    recv(c, at(3), { ack: L(1), window: 2000 });
    assert.equal(drainTx(c, at(3)).length, 1); // limited transmit
    recv(c, at(3), { ack: L(1), window: 2000 });
    assert.equal(drainTx(c, at(3)).length, 1); // limited transmit
    recv(c, at(3), { ack: L(1), window: 2000 });
    const rtx = drainTx(c, at(3));
    assert.equal(rtx[0]?.seq, L(1));
    assert.equal(c.stats.fastRetransmits, 1);
    assert.equal(c.ssthresh, 300);
    // A partial ACK retransmits the next hole (NewReno).
    recv(c, at(4), { ack: L(101), window: 2000 });
    assert.equal(drainTx(c, at(4))[0]?.seq, L(101));
    // The full ACK ends recovery with cwnd <= ssthresh.
    recv(c, at(5), { ack: L(601), window: 2000 });
    assert.ok(c.cwnd <= 300);
  });
  void test("setCongestionControl (TCP_CONGESTION): NewReno halves the flight, CUBIC takes 0.7 cwnd (RFC 5681 3.2, RFC 9438 4.6)", () => {
    for (const [cc, ssthresh] of [
      ["newreno", 300], // half of the 600 bytes in flight
      ["cubic", 280], // 0.7 of cwnd 400
    ] as const) {
      const c = established(tcpConfig({ ...BASE, mss: 100, sendBufferSize: 2000 }));
      c.setCongestionControl(cc);
      assert.equal(c.congestionControl, cc);
      recv(c, at(2), { window: 2000 });
      c.send(bytes(1000));
      drainTx(c, at(2));
      for (let i = 0; i < 3; i++) {
        recv(c, at(3), { ack: L(1), window: 2000 });
        drainTx(c, at(3));
      }
      assert.equal(c.stats.fastRetransmits, 1, cc);
      assert.equal(c.ssthresh, ssthresh, cc);
    }
    const c = established(BASE);
    assert.throws(
      () => c.setCongestionControl("bbr" as never),
      (e: unknown) => e instanceof UsageError && e.message.includes("newreno, cubic"),
    );
    assert.equal(c.congestionControl, "newreno", "a refused switch changes nothing");
  });
  void test("slow start grows cwnd by one MSS per ACK, congestion avoidance by one per window (RFC 5681 3.1)", () => {
    const c = established(tcpConfig({ ...BASE, mss: 100, sendBufferSize: 10000, initialCwndSegments: 2 }));
    recv(c, at(2), { window: 10000 });
    c.send(bytes(10000));
    drainTx(c, at(2));
    assert.equal(c.cwnd, 200);
    recv(c, at(3), { ack: L(101), window: 10000 });
    assert.equal(c.cwnd, 300);
  });
  void test("zero window: persist probes with backoff, then data resumes (3.8.6.1)", () => {
    const c = established();
    recv(c, at(2), { window: 0 });
    c.send(bytes(10));
    expectOnly(c, at(2), []);
    assert.equal(c.pollTimeout(), at(2 + 200));
    tick(c, at(202));
    expectOnly(c, at(202), [{ ...TO_PEER, seq: L(0) }]);
    assert.equal(c.pollTimeout(), at(202 + 400)); // backed off
    recv(c, at(210), { window: 0 });
    expectOnly(c, at(210), []);
    recv(c, at(220), { window: 20 });
    expectOnly(c, at(220), [{ ...TO_PEER, flags: ACK | PSH, payload: bytes(10) }]);
    assert.equal(c.stats.zeroWindowProbes, 1);
  });
  void test("setMss clamps the segment size (path MTU)", () => {
    const c = established(tcpConfig({ ...BASE, sendBufferSize: 4000 }));
    recv(c, at(2), { window: 4000 });
    c.setPathMtu(576, 40);
    c.setNoDelay(true);
    c.send(bytes(1200));
    const segs = drainTx(c, at(2));
    assert.deepEqual(
      segs.map((s) => s.payload.length),
      [536, 536, 128],
    );
  });
  void test("a smaller path MTU resends the segments in flight at the new size (RFC 1191)", () => {
    const c = established(tcpConfig({ ...BASE, sendBufferSize: 4000 }));
    recv(c, at(2), { window: 4000 });
    c.send(bytes(2000));
    assert.deepEqual(
      drainTx(c, at(2)).map((s) => s.payload.length),
      [1460],
    );
    const cwnd = c.cwnd;
    c.setPathMtu(576, 40);
    assert.deepEqual(
      drainTx(c, at(3)).map((s) => [s.seq, s.payload.length]),
      [
        [L(1), 536],
        [L(537), 536],
        [L(1073), 536],
      ],
    ); // the last 392 bytes are new data, held by Nagle while data is in flight
    assert.equal(c.cwnd, cwnd);
  });
  void test("send data spanning chunks is copied once; a single chunk is a view", () => {
    const c = established();
    c.setNoDelay(true);
    const a = bytes(3, 1);
    c.send(a);
    const [s1] = drainTx(c, at(2));
    assert.equal(s1?.payload.buffer, a.buffer);
    recv(c, at(3), { ack: L(4) });
    c.send(bytes(2, 2));
    c.send(bytes(2, 3));
    const [s2] = drainTx(c, at(3));
    assert.deepEqual(s2?.payload, Uint8Array.of(2, 2, 3, 3));
  });
});

void describe("ESTABLISHED: delayed ACK (RFC 9293 3.8.6.3, RFC 5681 4.2)", () => {
  const cfg = tcpConfig({ ...BASE, delayedAck: Duration.fromMillis(40), recvBufferSize: 10000 });
  void test("a single segment is acknowledged after the delay", () => {
    const c = established(cfg);
    recv(c, at(2), { payload: bytes(10) });
    expectOnly(c, at(2), []);
    assert.equal(c.pollTimeout(), at(42));
    tick(c, at(42));
    expectOnly(c, at(42), [{ ...TO_PEER, ack: R(11), window: 9990 }]);
  });
  void test("every second full-sized segment is acknowledged at once", () => {
    const c = established(cfg);
    recv(c, at(2), { payload: bytes(1460) });
    expectOnly(c, at(2), []);
    recv(c, at(3), { seq: R(1461), payload: bytes(1460) });
    expectOnly(c, at(3), [{ ...TO_PEER, ack: R(2921), window: 10000 - 2920 }]);
  });
  void test("outgoing data carries the owed ACK", () => {
    const c = established(cfg);
    recv(c, at(2), { payload: bytes(10) });
    c.send(bytes(4));
    expectOnly(c, at(2), [{ ...TO_PEER, ack: R(11), window: 9990, flags: ACK | PSH, payload: bytes(4) }]);
    assert.equal(c.pollTimeout(), at(202)); // only the retransmission timer is left
  });
});

void describe("ESTABLISHED: keep-alive (RFC 9293 3.8.4)", () => {
  void test("probes after idle, at intervals, then ETIMEDOUT", () => {
    const cfg = tcpConfig({
      ...BASE,
      keepAlive: true,
      keepAliveIdle: Duration.fromSeconds(10),
      keepAliveInterval: Duration.fromSeconds(1),
      keepAliveProbes: 2,
    });
    const c = established(cfg);
    assert.equal(c.pollTimeout(), at(10_001));
    tick(c, at(10_001));
    expectOnly(c, at(10_001), [{ ...TO_PEER, seq: L(0) }]);
    tick(c, at(11_001));
    expectOnly(c, at(11_001), [{ ...TO_PEER, seq: L(0) }]);
    tick(c, at(12_001));
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
  });
  void test("an answer restarts the idle period", () => {
    const c = established();
    c.setKeepAlive(at(1), true, Duration.fromSeconds(10), Duration.fromSeconds(1), 2);
    tick(c, at(10_001));
    drainTx(c, at(10_001));
    recv(c, at(10_002), {});
    tick(c, at(11_001));
    expectOnly(c, at(11_001), []);
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.pollTimeout(), at(20_002));
  });
});

void describe("options in ESTABLISHED (RFC 7323, RFC 2018)", () => {
  const cfg = tcpConfig({
    ...BASE,
    windowScaling: true,
    timestamps: true,
    sack: true,
    recvBufferSize: 200_000,
    sendBufferSize: 100_000,
  });
  function optEstablished(): TcpConnection {
    const c = TcpConnection.accept(
      cfg,
      PARAMS,
      {
        ...FROM_PEER,
        flags: SYN,
        seq: REMOTE_ISS,
        ack: Seq.of(0),
        mss: 1460,
        windowScale: 3,
        sackPermitted: true,
        timestamps: { tsVal: 500, tsEcr: 0 },
      },
      at(0),
    );
    const [synAck] = drainTx(c, at(0));
    assert.equal(synAck?.windowScale, 2);
    assert.deepEqual(synAck?.timestamps, { tsVal: 1000, tsEcr: 500 });
    assert.equal(synAck?.sackPermitted, true);
    recv(c, at(1), { window: 100, timestamps: { tsVal: 501, tsEcr: 1000 } });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.sndWnd, 800); // scaled by 2^3
    assert.equal(c.mss, 1448); // 1460 - 12 bytes of timestamps
    return c;
  }
  void test("timestamps are echoed and the window field is scaled", () => {
    const c = optEstablished();
    recv(c, at(5), { payload: bytes(10), timestamps: { tsVal: 505, tsEcr: 1000 } });
    const [ack] = drainTx(c, at(5));
    assert.deepEqual(ack?.timestamps, { tsVal: 1005, tsEcr: 505 });
    assert.equal(ack?.window, Math.ceil((200_000 - 10) / 4));
  });
  // After a hand-off the peer may hold a TSval of the earlier owner's ahead of our clock (the
  // Linux kernel stamps pure ACKs with its pacing departure time): its PAWS would drop ours.
  void test("an echo ahead of our timestamp clock moves the clock up to it; one from no clock of ours does not", () => {
    const c = optEstablished();
    recv(c, at(5), { payload: bytes(10), timestamps: { tsVal: 505, tsEcr: 1050 } });
    assert.equal(c.stats.tsClockCatchUps, 1);
    const [ack] = drainTx(c, at(5));
    assert.deepEqual(ack?.timestamps, { tsVal: 1050, tsEcr: 505 });
    // The clock runs on from there, never back.
    recv(c, at(7), { payload: bytes(10), seq: R(11), timestamps: { tsVal: 507, tsEcr: 1040 } });
    assert.deepEqual(drainTx(c, at(7))[0]?.timestamps, { tsVal: 1052, tsEcr: 507 });
    // Two minutes ahead is no TSval this connection sent: ignored.
    recv(c, at(9), { payload: bytes(10), seq: R(21), timestamps: { tsVal: 509, tsEcr: 1054 + 120_000 } });
    assert.equal(c.stats.tsClockCatchUps, 1);
    assert.deepEqual(drainTx(c, at(9))[0]?.timestamps, { tsVal: 1054, tsEcr: 509 });
  });
  // RFC 7323 4.3 makes the receiver echo an earlier copy's TSval when a retransmission arrives
  // as a duplicate; RFC 6298 5 (Karn): an ambiguous ACK is no sample.
  function afterTimeout(): TcpConnection {
    const c = optEstablished();
    assert.equal(c.srtt, Duration.fromMillis(1)); // the handshake's sample
    c.send(bytes(10));
    assert.deepEqual(drainTx(c, at(2))[0]?.timestamps, { tsVal: 1002, tsEcr: 501 });
    tick(c, at(202));
    assert.deepEqual(drainTx(c, at(202))[0]?.timestamps, { tsVal: 1202, tsEcr: 501 });
    return c;
  }
  void test("after a timeout, an ACK echoing the original's TSval is no RTT sample (RFC 6298 5)", () => {
    const c = afterTimeout();
    recv(c, at(205), { ack: L(11), timestamps: { tsVal: 510, tsEcr: 1002 } });
    assert.equal(c.sndUna, L(11));
    assert.equal(c.srtt, Duration.fromMillis(1)); // not (7 * 1 + 203) / 8 ms
  });
  void test("after a timeout, an ACK echoing the retransmission's TSval is a sample (RFC 7323 4.1)", () => {
    const c = afterTimeout();
    recv(c, at(205), { ack: L(11), timestamps: { tsVal: 510, tsEcr: 1202 } });
    assert.equal(c.srtt, Duration.fromMicros(1250)); // (7 * 1 + 3) / 8 ms
  });
  void test("PAWS drops a segment with an old timestamp and ACKs it (RFC 7323 5.3)", () => {
    const c = optEstablished();
    recv(c, at(5), { payload: bytes(10), timestamps: { tsVal: 400, tsEcr: 1000 } });
    assert.equal(c.readable, 0);
    assert.equal(c.stats.dropsPaws, 1);
    assert.equal(drainTx(c, at(5)).length, 1);
  });
  void test("a segment a hand-off held is exempt from PAWS: a retransmission processed first moved TS.Recent past it", () => {
    for (const held of [false, true]) {
      const c = optEstablished();
      // The peer's retransmission of the next bytes, sent after the held segment: a newer TSval.
      recv(c, at(5), { payload: bytes(100), timestamps: { tsVal: 600, tsEcr: 1000 } });
      assert.equal(c.readable, 100);
      // The bytes after it, sent before the retransmission (older TSval) and held meanwhile.
      const seg = { ...FROM_PEER, seq: R(101), payload: bytes(100), timestamps: { tsVal: 550, tsEcr: 1000 } };
      c.handleSegment(at(6), seg, held);
      c.checkInvariants();
      assert.equal(c.readable, held ? 200 : 100, `held ${held}`);
      assert.equal(c.stats.dropsPaws, held ? 0 : 1, `held ${held}`);
    }
  });
  void test("SACK blocks report out-of-order data, most recent first (RFC 2018 4)", () => {
    const c = optEstablished();
    const ts = { tsVal: 502, tsEcr: 1000 };
    recv(c, at(5), { seq: R(101), payload: bytes(100), timestamps: ts });
    const [a1] = drainTx(c, at(5));
    assert.deepEqual(a1?.sack, [{ left: R(101), right: R(201) }]);
    recv(c, at(6), { seq: R(301), payload: bytes(100), timestamps: ts });
    const [a2] = drainTx(c, at(6));
    assert.deepEqual(a2?.sack, [
      { left: R(301), right: R(401) },
      { left: R(101), right: R(201) },
    ]);
    recv(c, at(7), { seq: R(201), payload: bytes(100), timestamps: ts });
    const [a3] = drainTx(c, at(7));
    assert.deepEqual(a3?.sack, [{ left: R(101), right: R(401) }]);
    recv(c, at(8), { payload: bytes(100), timestamps: ts });
    const [a4] = drainTx(c, at(8));
    assert.deepEqual(a4?.sack, []);
    assert.equal(a4?.ack, R(401));
  });
  void test("SACK-based recovery retransmits only the holes (RFC 6675)", () => {
    const c = optEstablished();
    recv(c, at(2), { window: 1000, timestamps: { tsVal: 502, tsEcr: 1000 } });
    c.setNoDelay(true);
    const data = bytes(10 * 1448);
    c.send(data);
    const segs = drainTx(c, at(2));
    assert.equal(segs.length, 4); // IW = 4 segments
    const s = (k: number): SeqNum => L(1 + k * 1448);
    // Segment 0 is lost; 1, 2, 3 are SACKed.
    for (let k = 2; k <= 4; k++) {
      recv(c, at(3), {
        ack: L(1),
        window: 1000,
        sack: [{ left: s(1), right: s(k) }],
        timestamps: { tsVal: 503, tsEcr: 1002 },
      });
    }
    const rtx = drainTx(c, at(3));
    assert.equal(rtx[0]?.seq, L(1));
    assert.equal(rtx[0]?.payload.length, 1448);
    assert.ok(rtx.every((x) => x.seq !== s(1) && x.seq !== s(2)));
    assert.equal(c.stats.sackRecoveries, 1);
  });
});

void describe("SACK loss recovery with two holes (RFC 6675 NextSeg and pipe)", () => {
  void test("each hole is retransmitted once, SACKed data never, then new data as pipe allows", () => {
    const cfg = tcpConfig({
      ...BASE,
      windowScaling: true,
      timestamps: true,
      sack: true,
      recvBufferSize: 200_000,
      sendBufferSize: 100_000,
      initialCwndSegments: 10,
    });
    const c = TcpConnection.accept(
      cfg,
      PARAMS,
      {
        ...FROM_PEER,
        flags: SYN,
        seq: REMOTE_ISS,
        mss: 1460,
        windowScale: 3,
        sackPermitted: true,
        timestamps: { tsVal: 500, tsEcr: 0 },
      },
      at(0),
    );
    drainTx(c, at(0));
    const ts = { tsVal: 501, tsEcr: 1000 };
    recv(c, at(1), { window: 10_000, timestamps: ts });
    c.setNoDelay(true);
    c.send(bytes(20 * 1448));
    const first = drainTx(c, at(2));
    assert.equal(first.length, 10);
    const s = (k: number): SeqNum => L(1 + k * 1448);
    // Segments 0 and 4 are lost.
    const dup = (blocks: { left: SeqNum; right: SeqNum }[]): void =>
      recv(c, at(3), { ack: L(1), window: 10_000, sack: blocks, timestamps: ts });
    dup([{ left: s(1), right: s(2) }]);
    dup([{ left: s(1), right: s(3) }]);
    dup([{ left: s(1), right: s(4) }]);
    const r1 = drainTx(c, at(3));
    assert.deepEqual(
      r1.map((x) => x.seq),
      [s(0)],
    );
    dup([
      { left: s(5), right: s(10) },
      { left: s(1), right: s(4) },
    ]);
    const r2 = drainTx(c, at(4));
    assert.equal(r2[0]?.seq, s(4)); // the second hole
    assert.ok(
      r2.slice(1).every((x) => Seq.ge(x.seq, s(10))),
      "only new data after the holes",
    );
    assert.ok(r2.length >= 2);
    assert.equal(c.stats.retransmits, 2);
    // The cumulative ACK for everything ends recovery.
    recv(c, at(5), { ack: s(10), window: 10_000, timestamps: ts });
    assert.ok(c.cwnd <= c.ssthresh + 1448);
  });
});

void describe("FIN-WAIT-1 / FIN-WAIT-2 / CLOSING / TIME-WAIT (RFC 9293 3.6)", () => {
  void test("ACK of our FIN: FIN-WAIT-2; data still arrives (half-close)", () => {
    const c = finWait2();
    recv(c, at(4), { ack: L(2), payload: bytes(3) });
    expectOnly(c, at(4), [{ ...TO_PEER, seq: L(2), ack: R(4), window: 61 }]);
    assert.equal(c.readable, 3);
    assert.equal(c.send(bytes(1)), "connection-closing");
    assert.equal(c.close(), "connection-closing");
  });
  void test("FIN+ACK in FIN-WAIT-1 goes straight to TIME-WAIT", () => {
    const c = finWait1();
    recv(c, at(3), { flags: FIN | ACK, ack: L(2) });
    expectOnly(c, at(3), [{ ...TO_PEER, seq: L(2), ack: R(2) }]);
    assert.equal(c.state, "TIME-WAIT");
  });
  void test("simultaneous close: FIN-WAIT-1 -> CLOSING -> TIME-WAIT (figure 13)", () => {
    const c = finWait1();
    recv(c, at(3), { flags: FIN | ACK, ack: L(1) });
    assert.equal(c.state, "CLOSING");
    expectOnly(c, at(3), [{ ...TO_PEER, seq: L(2), ack: R(2) }]);
    recv(c, at(4), { seq: R(2), ack: L(2) });
    assert.equal(c.state, "TIME-WAIT");
  });
  void test("TIME-WAIT lasts 2*MSL, and a retransmitted FIN restarts it", () => {
    const c = timeWait();
    assert.equal(c.pollTimeout(), at(4 + 60_000));
    recv(c, at(1000), { flags: FIN | ACK, ack: L(2) });
    expectOnly(c, at(1000), [{ ...TO_PEER, seq: L(2), ack: R(2) }]);
    assert.equal(c.pollTimeout(), at(1000 + 60_000));
    tick(c, at(61_000));
    assert.equal(c.state, "CLOSED");
    assert.deepEqual(events(c).at(-1), { kind: "closed", reason: "fin", error: undefined });
  });
  void test("the FIN is retransmitted on RTO", () => {
    const c = finWait1();
    tick(c, at(1002));
    expectOnly(c, at(1002), [{ ...TO_PEER, flags: FIN | ACK }]);
  });
  void test("after shutdownRead, in-order data is acknowledged and discarded, out-of-order data dropped", () => {
    const c = finWait2();
    c.shutdownRead(at(4));
    recv(c, at(5), { ack: L(2), seq: R(5), payload: bytes(3) });
    expectOnly(c, at(5), [{ ...TO_PEER, seq: L(2) }]);
    recv(c, at(6), { ack: L(2), payload: bytes(4) });
    expectOnly(c, at(6), [{ ...TO_PEER, seq: L(2), ack: R(5), window: 60 }]); // SWS: edge unmoved
    assert.equal(c.readable, 0);
  });
  void test("FIN-WAIT-2 timer after shutdownRead (Chimney 17.3)", () => {
    const c = finWait2();
    c.shutdownRead(at(5));
    assert.equal(c.pollTimeout(), at(5 + 60_000));
    tick(c, at(60_005));
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
  });
  void test("a new SYN with a higher sequence number may reuse a TIME-WAIT 4-tuple (RFC 6191)", () => {
    const c = timeWait();
    assert.equal(c.mayReuseForSyn({ ...FROM_PEER, flags: SYN, seq: R(100000) }), true);
    assert.equal(c.mayReuseForSyn({ ...FROM_PEER, flags: SYN, seq: R(0) }), false);
    assert.equal(c.mayReuseForSyn({ ...FROM_PEER, flags: SYN | ACK, seq: R(100000) }), false);
    assert.equal(established().mayReuseForSyn({ ...FROM_PEER, flags: SYN, seq: R(100000) }), false);
  });
  void test("RST in TIME-WAIT is ignored (RFC 1337): the 2*MSL timer still ends it", () => {
    const c = timeWait();
    recv(c, at(5), { flags: RST, seq: R(2) });
    assert.equal(c.state, "TIME-WAIT");
    assert.deepEqual(drainTx(c, at(5)), []);
    const end = c.pollTimeout();
    assert.ok(end !== undefined);
    tick(c, end);
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, undefined);
  });
});

void describe("CLOSE-WAIT / LAST-ACK (RFC 9293 3.6)", () => {
  void test("data can still be sent in CLOSE-WAIT", () => {
    const c = closeWait();
    c.send(bytes(3));
    expectOnly(c, at(3), [{ ...TO_PEER, ack: R(2), flags: ACK | PSH, payload: bytes(3) }]);
  });
  void test("close sends FIN after queued data; its ACK closes", () => {
    const c = closeWait();
    c.send(bytes(3));
    c.close();
    expectOnly(c, at(3), [{ ...TO_PEER, ack: R(2), flags: ACK | PSH | FIN, payload: bytes(3) }]);
    recv(c, at(4), { seq: R(2), ack: L(5) });
    assert.equal(c.state, "CLOSED");
    assert.deepEqual(events(c), [
      { kind: "acked", bytes: 3 },
      { kind: "closed", reason: "fin", error: undefined },
    ]);
  });
  void test("LAST-ACK ignores a partial ACK and closes on the FIN's ACK", () => {
    const c = lastAck();
    recv(c, at(4), { seq: R(2), ack: L(1) });
    assert.equal(c.state, "LAST-ACK");
    recv(c, at(5), { seq: R(2), ack: L(2) });
    assert.equal(c.state, "CLOSED");
  });
  void test("abort sends a RST and reports aborted (3.10.5)", () => {
    const c = closeWait();
    c.abort();
    expectOnly(c, at(3), [{ ...TO_PEER, flags: RST | ACK, ack: R(2), window: 0 }]);
    assert.deepEqual(events(c).at(-1), { kind: "closed", reason: "aborted", error: undefined });
  });
});

void describe("export / import (Chimney 4.6, 7.6, 7.7)", () => {
  void test("a snapshot carries unacked + unsent data and undelivered data, and resumes identically", () => {
    const c = established(tcpConfig({ ...BASE, mss: 100 }));
    recv(c, at(2), { payload: Uint8Array.of(1, 2, 3), window: 1000 });
    c.setNoDelay(true);
    c.send(bytes(150, 5));
    const sent = drainTx(c, at(2));
    assert.equal(sent.length, 2);
    c.send(bytes(20, 6));
    const snap = c.exportState(at(3));
    assert.ok(Object.isFrozen(snap) && Object.isFrozen(snap.delegated));
    assert.equal(snap.delegated.sndUna, L(1));
    assert.equal(snap.delegated.sndNxt, L(151));
    assert.deepEqual(
      snap.delegated.sendData.map((x) => x.length),
      [150, 20],
    );
    assert.deepEqual(snap.delegated.bufferedData, [Uint8Array.of(1, 2, 3)]);
    assert.equal(snap.delegated.retransmitDelta, Duration.fromMillis(199));
    // Import on an engine whose clock reads 500 s.
    const d = TcpConnection.importState(snap, at(500_000), BASE);
    assert.equal(d.state, "ESTABLISHED");
    assert.equal(d.pollTimeout(), at(500_199));
    assert.deepEqual(events(d), [{ kind: "readable", bytes: 3 }]);
    assert.deepEqual(d.recv(), Uint8Array.of(1, 2, 3));
    recv(d, at(500_001), { seq: R(4), ack: L(151), window: 1000 });
    const next = drainTx(d, at(500_001));
    assert.deepEqual(
      next.map((s) => [s.seq, s.payload.length]),
      [[L(151), 20]],
    );
    assert.deepEqual(events(d)[0], { kind: "acked", bytes: 150 });
  });
  void test("an owed delayed ACK crosses the export and goes out at once after import", () => {
    const cfg = tcpConfig({ ...BASE, delayedAck: Duration.fromMillis(40), recvBufferSize: 1000 });
    const c = established(cfg);
    recv(c, at(2), { payload: bytes(10) });
    expectOnly(c, at(2), []);
    const snap = c.exportState(at(3));
    assert.equal(snap.delegated.ackPending, true);
    const d = TcpConnection.importState(snap, at(3), cfg);
    expectOnly(d, at(3), [{ ...TO_PEER, ack: R(11), window: 990 }]);
  });
  void test("export is refused outside the offloadable states (Chimney ST-9)", () => {
    const c = synSent();
    assert.throws(() => c.exportState(at(1)), { code: "ERR_USAGE" });
  });
  void test("the timestamp clock continues across engines (Chimney 17.9)", () => {
    const cfg = tcpConfig({ ...BASE, timestamps: true });
    const c = TcpConnection.accept(
      cfg,
      PARAMS,
      { ...FROM_PEER, flags: SYN, seq: REMOTE_ISS, timestamps: { tsVal: 1, tsEcr: 0 } },
      at(0),
    );
    drainTx(c, at(0));
    recv(c, at(1), { timestamps: { tsVal: 2, tsEcr: 1000 } });
    const snap = c.exportState(at(100));
    const d = TcpConnection.importState(snap, at(7_000_000), cfg);
    d.send(bytes(1));
    const [seg] = drainTx(d, at(7_000_010));
    assert.deepEqual(seg?.timestamps, { tsVal: 1110, tsEcr: 2 });
  });
});

void describe("more RFC corners", () => {
  void test("simultaneous open, then RST in SYN-RECEIVED: connection refused (3.10.7.4 second)", () => {
    const c = synSent();
    recv(c, at(1), { flags: SYN, seq: REMOTE_ISS, ack: Seq.of(0) });
    drainTx(c, at(1));
    recv(c, at(2), { flags: RST });
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ECONNREFUSED");
  });
  void test("user timeout ends retransmission early (RFC 5482 / 9293 3.8.3)", () => {
    const c = established(tcpConfig({ ...BASE, userTimeout: Duration.fromMillis(500) }));
    c.send(bytes(1));
    drainTx(c, at(2));
    tick(c, at(202));
    drainTx(c, at(202));
    // Outstanding since 2 ms: the deadline 502 ms comes before the backed-off RTO (602 ms).
    assert.equal(c.pollTimeout(), at(502));
    tick(c, at(502));
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
  });
  void test("the out-of-order queue is bounded in ranges; excess segments are dropped", () => {
    const c = established(tcpConfig({ ...BASE, recvBufferSize: 1000, maxOooRanges: 2 }));
    for (const k of [10, 20, 30]) recv(c, at(2), { seq: R(k), payload: bytes(2) });
    assert.equal(c.stats.dropsOooFull, 1);
    assert.equal(c.status().oooBytes, 4);
    drainTx(c, at(2));
  });
  void test("export drops out-of-order data; the peer's retransmission fills the hole after import", () => {
    const c = established(tcpConfig({ ...BASE, recvBufferSize: 1000 }));
    recv(c, at(2), { seq: R(4), payload: Uint8Array.of(4, 5) });
    drainTx(c, at(2));
    const d = TcpConnection.importState(c.exportState(at(3)), at(3), BASE);
    assert.equal(d.status().oooBytes, 0);
    recv(d, at(4), { payload: Uint8Array.of(1, 2, 3) });
    assert.equal(d.rcvNxt, R(4));
    recv(d, at(5), { seq: R(4), payload: Uint8Array.of(4, 5) });
    assert.equal(d.readable, 5);
  });
  void test("a TIME-WAIT connection exports its remaining 2*MSL", () => {
    const c = timeWait();
    const snap = c.exportState(at(10_004));
    assert.equal(snap.delegated.retransmitDelta, Duration.fromSeconds(50));
    const d = TcpConnection.importState(snap, at(1), BASE);
    assert.equal(d.state, "TIME-WAIT");
    assert.equal(d.pollTimeout(), at(50_001));
  });
  void test("keep-alive state crosses export / import (Chimney 17.4)", () => {
    const cfg = tcpConfig({ ...BASE, keepAlive: true, keepAliveIdle: Duration.fromSeconds(10) });
    const c = established(cfg);
    const snap = c.exportState(at(4001));
    assert.equal(snap.delegated.keepAliveDelta, Duration.fromSeconds(6));
    const d = TcpConnection.importState(snap, at(0), cfg);
    assert.equal(d.pollTimeout(), at(6000));
    d.handleTimeout(at(6000));
    expectOnly(d, at(6000), [{ ...TO_PEER, seq: L(0) }]); // the probe goes out on time
  });
  void test("a larger receive buffer is advertised at once (Chimney TCP_FLAG_UPDATE_RCV_WND)", () => {
    const c = established();
    c.setRecvBufferSize(200);
    expectOnly(c, at(2), [{ ...TO_PEER, window: 200 }]);
    c.setRecvBufferSize(100);
    expectOnly(c, at(3), []);
    recv(c, at(4), { payload: bytes(10) });
    expectOnly(c, at(4), [{ ...TO_PEER, ack: R(11), window: 190 }]); // no shrinking
  });
  void test("status reports the TCB", () => {
    const c = established();
    c.send(bytes(10));
    drainTx(c, at(2));
    const s = c.status();
    assert.equal(s.state, "ESTABLISHED");
    assert.equal(s.sndNxt, L(11));
    assert.equal(s.sendQueued, 10);
    assert.equal(s.rcvWnd, 64);
  });
});

void describe("contract", () => {
  void test("time going backwards is a UsageError", () => {
    const c = established();
    assert.throws(() => c.handleTimeout(at(0)), { code: "ERR_USAGE" });
    assert.throws(() => c.pollTransmit(at(0)), { code: "ERR_USAGE" });
  });
});

void describe("persist (RFC 1122 4.2.2.17)", () => {
  void test("probing continues while the peer answers with a zero window, and fails when it goes silent", () => {
    const c = established(tcpConfig({ ...BASE, maxRetransmissions: 3, maxRto: Duration.fromSeconds(1) }));
    recv(c, at(2), { window: 0 });
    c.send(bytes(10));
    drainTx(c, at(2));
    for (let i = 0; i < 10; i++) {
      const t = c.pollTimeout();
      assert.ok(t !== undefined);
      tick(c, t);
      assert.equal(drainTx(c, t).length, 1);
      recv(c, t, { window: 0 });
    }
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.stats.zeroWindowProbes, 10);
    for (let i = 0; i < 4; i++) {
      const t = c.pollTimeout();
      assert.ok(t !== undefined);
      tick(c, t);
      drainTx(c, t);
    }
    assert.equal(c.state, "CLOSED");
    assert.equal(c.error, "ETIMEDOUT");
  });
});
