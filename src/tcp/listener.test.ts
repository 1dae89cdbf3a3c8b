// Listener: SYN queue, accept backlog, SYN cookies under flood (RFC 9293 3.10.7.2, RFC 4987),
// and RFC 6528 ISNs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";
import { initialSeq, keyedHash32 } from "./isn.js";
import { type ListenerTransmit, TcpListener } from "./listener.js";
import { Seq } from "../wire/seq.js";

const { ACK, SYN, RST } = TcpFlag;
const KEY = { k0: 0x01234567, k1: 0x89abcdef };
const LOCAL = Uint8Array.of(192, 0, 2, 1);
const peer = (n: number): Uint8Array => Uint8Array.of(192, 0, 2, 10 + (n & 0x7f));
const at = (ms: number): Instant => Instant.fromMicros(ms * 1000);
const CFG = tcpConfig({ delayedAck: Duration.ZERO });

const SYN_SEG: TcpRepr = {
  srcPort: 40000,
  dstPort: 80,
  seq: Seq.of(0xffff_ff00),
  ack: Seq.of(0),
  flags: SYN,
  window: 65535,
  urgent: 0,
  mss: 1460,
  windowScale: 7,
  sackPermitted: true,
  sack: [],
  timestamps: { tsVal: 777, tsEcr: 0 },
  unknownOptions: [],
  payload: new Uint8Array(0),
};

function drainL(l: TcpListener, now: Instant): ListenerTransmit[] {
  const out: ListenerTransmit[] = [];
  for (let t = l.pollTransmit(now); t !== undefined; t = l.pollTransmit(now)) out.push(t);
  return out;
}

/** Completes a handshake against the listener with a client engine; returns both ends. */
function handshake(
  l: TcpListener,
  n: number,
  now: Instant,
): { client: TcpConnection; replies: ListenerTransmit[] } {
  const client = TcpConnection.connect(
    CFG,
    { localPort: 40000 + n, remotePort: 80, iss: Seq.of(1000 * n), tsOffset: 5 },
    now,
  );
  const syn = client.pollTransmit(now);
  assert.ok(syn !== undefined);
  l.handleSegment(now, LOCAL, peer(n), syn);
  const replies = drainL(l, now);
  for (const r of replies) client.handleSegment(now, r.seg);
  const ack = client.pollTransmit(now);
  if (ack !== undefined) l.handleSegment(now, LOCAL, peer(n), ack);
  return { client, replies };
}

void describe("TcpListener", () => {
  void test("SYN -> SYN-ACK -> ACK -> accept (RFC 9293 3.10.7.2)", () => {
    const l = new TcpListener(CFG, 80, KEY);
    const { client, replies } = handshake(l, 1, at(1));
    assert.equal(replies.length, 1);
    assert.equal(replies[0]?.seg.flags, SYN | ACK);
    assert.equal(client.state, "ESTABLISHED");
    const a = l.accept();
    assert.ok(a !== undefined);
    assert.equal(a.conn.state, "ESTABLISHED");
    assert.deepEqual(a.remote, peer(1));
    assert.equal(l.synQueueLength, 0);
    assert.equal(a.conn.timestampsEnabled, true);
    assert.equal(a.conn.sackEnabled, true);
  });

  void test("a bare ACK or data to the listener draws a RST; a RST is ignored", () => {
    const l = new TcpListener(CFG, 80, KEY, { synCookies: "never" });
    l.handleSegment(at(1), LOCAL, peer(1), { ...SYN_SEG, flags: ACK, ack: Seq.of(5) });
    const [r] = drainL(l, at(1));
    assert.equal(r?.seg.flags, RST);
    assert.equal(r?.seg.seq, Seq.of(5));
    l.handleSegment(at(1), LOCAL, peer(1), { ...SYN_SEG, flags: RST });
    assert.equal(drainL(l, at(1)).length, 0);
  });

  void test("the SYN queue is bounded; beyond it SYN cookies keep the memory flat (RFC 4987 3.6)", () => {
    const l = new TcpListener(CFG, 80, KEY, { synQueueSize: 8 });
    for (let i = 0; i < 5000; i++) {
      l.handleSegment(at(1), LOCAL, peer(i), {
        ...SYN_SEG,
        srcPort: 1024 + (i % 60000),
        seq: Seq.of(i * 7919),
      });
    }
    assert.equal(l.synQueueLength, 8);
    const out = drainL(l, at(1));
    // Undrained stateless replies are bounded too: 8 SYN-ACKs from children + 1024 cookies.
    assert.equal(out.length, 8 + 1024);
    assert.equal(l.stats.synCookiesSent, 1024);
    // An owner that drains as it goes gets every SYN answered.
    const l2 = new TcpListener(CFG, 80, KEY, { synQueueSize: 8 });
    let answered = 0;
    for (let i = 0; i < 5000; i++) {
      l2.handleSegment(at(1), LOCAL, peer(i), {
        ...SYN_SEG,
        srcPort: 1024 + (i % 60000),
        seq: Seq.of(i * 7919),
      });
      answered += drainL(l2, at(1)).length;
    }
    assert.equal(answered, 5000);
    assert.equal(l2.synQueueLength, 8);
  });

  void test("a valid cookie ACK creates an ESTABLISHED connection with the encoded options", () => {
    const l = new TcpListener(CFG, 80, KEY, { synCookies: "always" });
    const { client } = handshake(l, 3, at(10));
    assert.equal(l.synQueueLength, 0);
    assert.equal(l.stats.synCookiesAccepted, 1);
    const a = l.accept();
    assert.ok(a !== undefined);
    assert.equal(a.conn.state, "ESTABLISHED");
    assert.equal(client.state, "ESTABLISHED");
    assert.equal(a.conn.sackEnabled, true);
    assert.equal(a.conn.timestampsEnabled, true);
    assert.deepEqual(
      a.conn.windowScales,
      client.windowScales.rcv === 0
        ? { snd: 0, rcv: 0 }
        : { snd: client.windowScales.rcv, rcv: client.windowScales.snd },
    );
    // Data flows both ways over the cookie connection.
    client.send(Uint8Array.of(1, 2, 3));
    const seg = client.pollTransmit(at(11));
    assert.ok(seg !== undefined);
    a.conn.handleSegment(at(11), seg);
    assert.equal(a.conn.readable, 3);
    a.conn.checkInvariants();
  });

  void test("a forged or stale cookie is rejected with a RST", () => {
    const l = new TcpListener(CFG, 80, KEY, { synCookies: "always" });
    l.handleSegment(at(1), LOCAL, peer(1), SYN_SEG);
    const [synAck] = drainL(l, at(1));
    assert.ok(synAck !== undefined);
    const ack: TcpRepr = {
      ...SYN_SEG,
      flags: ACK,
      seq: Seq.add(SYN_SEG.seq, 1),
      ack: Seq.add(synAck.seg.seq, 2),
      timestamps: undefined,
    };
    l.handleSegment(at(2), LOCAL, peer(1), ack);
    assert.equal(l.stats.synCookiesRejected, 1);
    assert.equal(drainL(l, at(2))[0]?.seg.flags, RST);
    // The right cookie, but 4 periods (256 s) later.
    l.handleSegment(at(256_000 + 1), LOCAL, peer(1), { ...ack, ack: Seq.add(synAck.seg.seq, 1) });
    assert.equal(l.stats.synCookiesRejected, 2);
    assert.equal(l.acceptQueueLength, 0);
  });

  void test("the accept backlog bounds established connections; further SYNs are dropped", () => {
    const l = new TcpListener(CFG, 80, KEY, { acceptBacklog: 2 });
    for (let i = 1; i <= 3; i++) handshake(l, i, at(1));
    assert.equal(l.acceptQueueLength, 2);
    assert.ok(l.stats.synDrops >= 1);
  });

  void test("maxEstablished: at the cap SYNs are dropped until a connection is released", () => {
    const l = new TcpListener(CFG, 80, KEY, { maxEstablished: 2 });
    assert.equal(handshake(l, 1, at(1)).client.state, "ESTABLISHED");
    assert.equal(handshake(l, 2, at(1)).client.state, "ESTABLISHED");
    assert.ok(l.accept() !== undefined);
    assert.equal(l.establishedCount, 2, "an accepted connection still counts");
    const third = handshake(l, 3, at(2));
    assert.deepEqual(third.replies, [], "the SYN at the cap got no answer");
    assert.equal(third.client.state, "SYN-SENT");
    assert.equal(l.synQueueLength, 0, "and left no state");
    assert.equal(l.stats.establishedCapDrops, 1);
    l.release();
    assert.equal(l.establishedCount, 1);
    assert.equal(handshake(l, 4, at(3)).client.state, "ESTABLISHED");
    assert.equal(l.establishedCount, 2);
    assert.equal(l.acceptQueueLength, 2);
    l.release();
    l.release();
    assert.throws(() => l.release(), /no established connection/);
    assert.throws(() => new TcpListener(CFG, 80, KEY, { maxEstablished: 0 }), /maxEstablished/);
  });

  void test("maxEstablished: a half-open child's final ACK is dropped at the cap, then completes", () => {
    const l = new TcpListener(CFG, 80, KEY, { maxEstablished: 1 });
    const client = TcpConnection.connect(
      CFG,
      { localPort: 41000, remotePort: 80, iss: Seq.of(123), tsOffset: 5 },
      at(1),
    );
    l.handleSegment(at(1), LOCAL, peer(9), client.pollTransmit(at(1))!);
    for (const r of drainL(l, at(1))) client.handleSegment(at(1), r.seg);
    const ack = client.pollTransmit(at(1));
    assert.ok(ack !== undefined && ack.flags === ACK);
    assert.equal(handshake(l, 1, at(1)).client.state, "ESTABLISHED"); // takes the only room
    l.handleSegment(at(2), LOCAL, peer(9), ack);
    assert.equal(l.synQueueLength, 1, "the child stays half-open");
    assert.equal(l.acceptQueueLength, 1);
    assert.equal(l.stats.establishedCapDrops, 1);
    assert.deepEqual(drainL(l, at(2)), [], "no RST: the peer is only held back");
    l.release();
    l.handleSegment(at(3), LOCAL, peer(9), ack); // the peer's retransmission
    assert.equal(l.synQueueLength, 0);
    assert.equal(l.acceptQueueLength, 2);
    assert.equal(l.establishedCount, 1);
  });

  void test("maxEstablished: a valid cookie ACK is dropped (not reset) at the cap", () => {
    const l = new TcpListener(CFG, 80, KEY, { synCookies: "always", maxEstablished: 1 });
    // The second client's SYN gets its cookie while there is room; the first takes the room.
    const second = TcpConnection.connect(
      CFG,
      { localPort: 41000, remotePort: 80, iss: Seq.of(4567), tsOffset: 5 },
      at(1),
    );
    l.handleSegment(at(1), LOCAL, peer(2), second.pollTransmit(at(1))!);
    const cookie = drainL(l, at(1));
    assert.equal(cookie.length, 1, "the cookie SYN-ACK went out (no state)");
    for (const r of cookie) second.handleSegment(at(1), r.seg);
    assert.equal(second.state, "ESTABLISHED", "the peer thinks it is connected");
    const ack = second.pollTransmit(at(1));
    assert.ok(ack !== undefined);
    assert.equal(handshake(l, 1, at(1)).client.state, "ESTABLISHED");
    l.handleSegment(at(1), LOCAL, peer(2), ack);
    assert.equal(l.acceptQueueLength, 1);
    assert.equal(l.stats.establishedCapDrops, 1);
    assert.equal(l.stats.resetsOut, 0);
    assert.deepEqual(drainL(l, at(1)), [], "dropped, not reset");
    l.release();
    // The peer retransmits (here: sends data); the cookie is still good.
    assert.equal(second.send(Uint8Array.of(1, 2, 3)), 3);
    const data = second.pollTransmit(at(2));
    assert.ok(data !== undefined && data.payload.length === 3);
    l.handleSegment(at(2), LOCAL, peer(2), data);
    assert.equal(l.acceptQueueLength, 2);
    assert.equal(l.stats.synCookiesAccepted, 2);
  });

  void test("a half-open child retransmits its SYN-ACK and is forgotten after synRetries", () => {
    const l = new TcpListener(tcpConfig({ synRetries: 1 }), 80, KEY);
    l.handleSegment(at(0), LOCAL, peer(1), SYN_SEG);
    assert.equal(drainL(l, at(0)).length, 1);
    assert.equal(l.pollTimeout(), at(1000));
    l.handleTimeout(at(1000));
    assert.equal(drainL(l, at(1000))[0]?.seg.flags, SYN | ACK);
    l.handleTimeout(at(3000));
    assert.equal(l.synQueueLength, 0);
  });
});

void describe("ISN (RFC 6528)", () => {
  void test("depends on the 4-tuple and key, and advances with the 4 us clock", () => {
    const a = initialSeq(KEY, LOCAL, 80, peer(1), 40000, at(0));
    const b = initialSeq(KEY, LOCAL, 80, peer(1), 40001, at(0));
    const c = initialSeq({ k0: 1, k1: 2 }, LOCAL, 80, peer(1), 40000, at(0));
    assert.notEqual(a, b);
    assert.notEqual(a, c);
    assert.equal(Seq.delta(initialSeq(KEY, LOCAL, 80, peer(1), 40000, at(1)), a), 250);
  });
  void test("keyedHash32 is HalfSipHash-2-4: reference vectors (key 00..07, input 00..n-1, n = 0, 4, 8)", () => {
    const k = { k0: 0x03020100, k1: 0x07060504 };
    assert.equal(keyedHash32(k, []), 0x5b9f35a9);
    assert.equal(keyedHash32(k, [0x03020100]), 0x89466e2a);
    assert.equal(keyedHash32(k, [0x03020100, 0x07060504]), 0x8f84b8d0);
  });
  void test("the keyed hash spreads single-bit input changes over about half the output bits", () => {
    let flips = 0;
    const N = 200;
    for (let i = 0; i < N; i++) {
      const h1 = keyedHash32(KEY, [i, 0]);
      const h2 = keyedHash32(KEY, [i, 1]);
      let x = (h1 ^ h2) >>> 0;
      while (x) {
        flips += x & 1;
        x >>>= 1;
      }
    }
    const mean = flips / N;
    assert.ok(mean > 14 && mean < 18, `mean flipped bits ${mean}`);
  });
});
