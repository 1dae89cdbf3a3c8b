// TCP Fast Open, the client side (RFC 7413): the cookie cache's rules, and the engine's fast
// open SYN (option, data), the SYN-ACK that takes or refuses the data, and what it reports.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { Seq, type SeqNum } from "../wire/seq.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";
import {
  FAST_OPEN_OPTION,
  FastOpenCache,
  type FastOpenOutcome,
  type FastOpenRequest,
  validFastOpenCookie,
} from "./fast-open.js";

const { ACK, SYN, PSH } = TcpFlag;
const ISS = Seq.of(0xffff_fff0);
const IRS = Seq.of(7000);
const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));
const L = (n: number): SeqNum => Seq.add(ISS, n);
const cookie = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i + 1);
const hex = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b).toString("hex");

const CFG = tcpConfig({ windowScaling: false, timestamps: false, sack: false, delayedAck: Duration.ZERO });

function open(fastOpen: FastOpenRequest | undefined, data: number): TcpConnection {
  const c = TcpConnection.connect(
    CFG,
    { localPort: 5000, remotePort: 80, iss: ISS, tsOffset: 0, fastOpen },
    at(0),
  );
  if (data > 0) assert.equal(c.send(new Uint8Array(data).fill(0x61), { push: true }), data);
  return c;
}

function synAck(ack: SeqNum, option: Uint8Array | undefined): TcpRepr {
  return {
    srcPort: 80,
    dstPort: 5000,
    seq: IRS,
    ack,
    flags: SYN | ACK,
    window: 65535,
    urgent: 0,
    mss: 1000,
    windowScale: undefined,
    sackPermitted: false,
    sack: [],
    timestamps: undefined,
    unknownOptions: option === undefined ? [] : [{ kind: FAST_OPEN_OPTION, data: option }],
    payload: new Uint8Array(0),
  };
}

const fastOpenOption = (s: TcpRepr): string | undefined =>
  hex(s.unknownOptions.find((o) => o.kind === FAST_OPEN_OPTION)?.data);

void describe("TCP Fast Open client (RFC 7413)", () => {
  void test("a cookie request: the SYN carries an empty option and no data; the data follows the handshake", () => {
    const c = open({ cookie: undefined, maxData: 0 }, 100);
    const syn = c.pollTransmit(at(0));
    assert.ok(syn !== undefined);
    assert.equal(fastOpenOption(syn), "");
    assert.equal(syn.payload.length, 0);
    c.handleSegment(at(10), synAck(L(1), cookie(8)));
    const data = c.pollTransmit(at(10));
    assert.equal(data?.seq, L(1));
    assert.equal(data?.payload.length, 100);
    c.checkInvariants();
    assert.deepEqual(
      { ...c.fastOpenOutcome(), cookie: hex(c.fastOpenOutcome()?.cookie) },
      { sentCookie: false, synData: 0, synDataAcked: true, cookie: hex(cookie(8)), peerMss: 1000 },
    );
  });

  void test("with a cookie the SYN carries it and the data; a SYN-ACK that takes the data leaves only an ACK to send", () => {
    const c = open({ cookie: cookie(4), maxData: 1460 }, 100);
    const syn = c.pollTransmit(at(0));
    assert.ok(syn !== undefined);
    assert.equal(syn.flags, SYN);
    assert.equal(fastOpenOption(syn), "01020304");
    assert.equal(syn.payload.length, 100);
    c.handleSegment(at(10), synAck(L(101), undefined));
    c.checkInvariants();
    const ack = c.pollTransmit(at(10));
    assert.deepEqual([ack?.flags, ack?.seq, ack?.payload.length], [ACK, L(101), 0]);
    assert.equal(c.pollTransmit(at(10)), undefined, "nothing is sent again");
    assert.equal(c.status().sndUna, L(101));
    // The application hears of the data the SYN-ACK took, as of any acknowledged data.
    const events = [];
    for (let ev = c.pollEvent(); ev !== undefined; ev = c.pollEvent())
      events.push(ev.kind === "acked" ? `acked ${ev.bytes}` : ev.kind);
    assert.ok(events.includes("acked 100") && events.includes("writable"), events.join(", "));
    assert.equal(c.fastOpenOutcome()?.synDataAcked, true);
    assert.equal(c.fastOpenOutcome()?.sentCookie, true);
  });

  void test("a SYN-ACK that acknowledges only the SYN gets the data again at once, not after a timeout", () => {
    const c = open({ cookie: cookie(8), maxData: 1460 }, 100);
    assert.equal(c.pollTransmit(at(0))?.payload.length, 100);
    c.handleSegment(at(10), synAck(L(1), cookie(4)));
    c.checkInvariants();
    const again = c.pollTransmit(at(10));
    assert.deepEqual([again?.flags, again?.seq, again?.payload.length], [ACK | PSH, L(1), 100]);
    assert.equal(c.fastOpenOutcome()?.synDataAcked, false);
    assert.equal(hex(c.fastOpenOutcome()?.cookie), "01020304");
  });

  void test("the SYN's data stops at the cookie's MSS; a retransmitted SYN carries none", () => {
    const c = open({ cookie: cookie(4), maxData: 40 }, 100);
    assert.equal(c.pollTransmit(at(0))?.payload.length, 40);
    const t = c.pollTimeout();
    assert.ok(t !== undefined);
    c.handleTimeout(t);
    const rtx = c.pollTransmit(t);
    assert.deepEqual([rtx?.flags, rtx?.payload.length, fastOpenOption(rtx as TcpRepr)], [SYN, 0, "01020304"]);
    // The first SYN's data arrived after all: its ACK is acceptable.
    c.handleSegment(Instant.add(t, Duration.fromMillis(1)), synAck(L(41), undefined));
    c.checkInvariants();
    assert.equal(c.status().sndUna, L(41));
    assert.equal(c.pollTransmit(Instant.add(t, Duration.fromMillis(1)))?.payload.length, 60);
  });

  void test("a bad fast open request is a usage error before anything is sent", () => {
    assert.throws(
      () => open({ cookie: cookie(4), maxData: -1 }, 0),
      /maxData must be a non-negative integer, not -1/,
    );
    assert.throws(() => open({ cookie: cookie(5), maxData: 100 }, 0), /4 to 16 bytes, an even number, not 5/);
  });

  void test("a connection without fast open sends no option and reports nothing", () => {
    const c = open(undefined, 100);
    const syn = c.pollTransmit(at(0));
    assert.deepEqual([syn?.unknownOptions.length, syn?.payload.length], [0, 0]);
    c.handleSegment(at(10), synAck(L(1), cookie(4)));
    assert.equal(c.fastOpenOutcome(), undefined);
  });
});

void describe("the fast open cookie cache", () => {
  const outcome = (o: Partial<FastOpenOutcome>): FastOpenOutcome => ({
    sentCookie: false,
    synData: 0,
    synDataAcked: true,
    cookie: undefined,
    peerMss: 1460,
    ...o,
  });
  const got = (c: FastOpenCache, now = at(0)): string | undefined => {
    const r = c.request("s", now);
    return r === undefined ? "plain" : r.cookie === undefined ? "request" : hex(r.cookie);
  };

  void test("valid cookies are 4 to 16 bytes, an even number", () => {
    const valid = [...Array(40).keys()].filter((n) => validFastOpenCookie(cookie(n)));
    assert.deepEqual(valid, [4, 6, 8, 10, 12, 14, 16]);
  });

  void test("a valid cookie is kept and replaces the old one; a bad one after accepted data changes nothing", () => {
    const c = new FastOpenCache();
    assert.equal(got(c), "request");
    c.update("s", outcome({ cookie: cookie(8) }), at(0));
    assert.equal(got(c), "0102030405060708");
    assert.equal(c.request("s", at(0))?.maxData, 1460);
    c.update("s", outcome({ sentCookie: true, synData: 100, cookie: cookie(5) }), at(1));
    assert.equal(got(c), "0102030405060708", "an odd-length update is ignored");
    c.update("s", outcome({ sentCookie: true, synData: 100 }), at(1));
    assert.equal(got(c), "0102030405060708", "no option on the SYN-ACK keeps the cookie");
    c.update("s", outcome({ sentCookie: true, synData: 100, cookie: cookie(6) }), at(2));
    assert.equal(got(c), "010203040506");
  });

  void test("no valid cookie for a request, or refused data without a valid new cookie, turns fast open off for a while", () => {
    const c = new FastOpenCache(8, Duration.fromSeconds(60));
    c.update("s", outcome({ cookie: cookie(3) }), at(0));
    assert.equal(got(c, at(1)), "plain");
    assert.equal(got(c, at(60_001)), "request", "after the disable time it asks again");
    c.update("s", outcome({ cookie: cookie(4) }), at(60_001));
    c.update(
      "s",
      outcome({ sentCookie: true, synData: 100, synDataAcked: false, cookie: cookie(18) }),
      at(60_002),
    );
    assert.equal(got(c, at(60_003)), "plain");
  });

  void test("it holds at most its capacity, dropping the oldest; off means no fast open and forgets all", () => {
    const c = new FastOpenCache(2);
    for (const s of ["a", "b", "c"]) c.update(s, outcome({ cookie: cookie(4) }), at(0));
    assert.equal(c.size, 2);
    assert.equal(c.request("a", at(0))?.cookie, undefined, "the oldest went");
    assert.equal(hex(c.request("c", at(0))?.cookie), "01020304");
    c.enabled = false;
    assert.equal(c.request("c", at(0)), undefined);
    c.enabled = true;
    assert.equal(c.size, 0);
    assert.throws(() => new FastOpenCache(0), /room for one server/);
  });
});
