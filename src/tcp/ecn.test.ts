// ECN (RFC 3168) in the engine: negotiation at the handshake, ECT(0) on new data, the CE ->
// ECE -> CWR loop and the sender's once-per-window congestion response. Two engines talk
// directly; a "router" between them marks CE on ECT packets when told to.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { Seq } from "../wire/seq.js";
import { ECN_ECT0, TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { type EcnMode, tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";

const { SYN, ACK, ECE, CWR } = TcpFlag;
const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));

/** NewReno unless `extra` says otherwise: RFC 3168 6.1.2's response is its halving. */
const cfg = (ecn: EcnMode, extra: Parameters<typeof tcpConfig>[0] = {}) =>
  tcpConfig({
    ecn,
    congestionControl: "newreno",
    mss: 1000,
    delayedAck: Duration.ZERO,
    initialCwndSegments: 10,
    ...extra,
  });

/** Both ends and what crossed, with the IP ECN codepoint each segment was sent with. */
interface Pair {
  readonly client: TcpConnection;
  readonly server: TcpConnection;
  readonly sent: { from: "client" | "server"; seg: TcpRepr }[];
}

function drain(c: TcpConnection, now: Instant): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let s = c.pollTransmit(now); s !== undefined; s = c.pollTransmit(now)) out.push(s);
  return out;
}

/** Opens a connection; the server is accepted from the client's SYN. */
function open(clientMode: EcnMode, serverMode: EcnMode): Pair {
  const client = TcpConnection.connect(
    cfg(clientMode),
    { localPort: 4000, remotePort: 80, iss: Seq.of(1000), tsOffset: 0 },
    at(0),
  );
  const sent: Pair["sent"] = [];
  const [syn] = drain(client, at(0));
  assert.ok(syn !== undefined && syn.flags & SYN);
  sent.push({ from: "client", seg: syn });
  const server = TcpConnection.accept(
    cfg(serverMode),
    { localPort: 80, remotePort: 4000, iss: Seq.of(900_000), tsOffset: 0 },
    syn,
    at(1),
  );
  const pair = { client, server, sent };
  exchange(pair, at(2));
  return pair;
}

/**
 * Moves segments both ways until both ends are quiet. `ce(seg)`: the router marks that ECT
 * segment CE (a not-ECT segment is never marked, RFC 3168 5).
 */
function exchange(p: Pair, now: Instant, ce: (seg: TcpRepr) => boolean = () => false): void {
  for (let round = 0; round < 100; round++) {
    const fromClient = drain(p.client, now);
    const fromServer = drain(p.server, now);
    if (fromClient.length === 0 && fromServer.length === 0) return;
    for (const seg of fromClient) {
      p.sent.push({ from: "client", seg });
      p.server.handleSegment(now, seg, false, seg.ecn === ECN_ECT0 && ce(seg));
    }
    for (const seg of fromServer) {
      p.sent.push({ from: "server", seg });
      p.client.handleSegment(now, seg, false, seg.ecn === ECN_ECT0 && ce(seg));
    }
  }
  assert.fail("the exchange did not settle");
}

const bytes = (n: number): Uint8Array => new Uint8Array(n).fill(0x5a);

void describe("ECN (RFC 3168)", () => {
  void test("RFC 3168 6.1.1: an ECN-setup SYN and a SYN-ACK with ECE alone negotiate ECN; only new data is ECT(0)", () => {
    const p = open("on", "passive");
    const [syn, synAck] = p.sent.map((x) => x.seg);
    assert.equal((syn?.flags ?? 0) & (ECE | CWR), ECE | CWR, "the SYN asks with ECE and CWR");
    assert.equal(
      (synAck?.flags ?? 0) & (SYN | ACK | ECE | CWR),
      SYN | ACK | ECE,
      "the SYN-ACK agrees with ECE alone",
    );
    assert.ok(!syn?.ecn && !synAck?.ecn, "SYN and SYN-ACK are never ECT (6.1.1)");
    assert.ok(p.client.ecnNegotiated && p.server.ecnNegotiated);
    p.client.send(bytes(3000), { push: true });
    exchange(p, at(10));
    const data = p.sent.filter((x) => x.from === "client" && x.seg.payload.length > 0);
    assert.equal(
      data.reduce((n, d) => n + d.seg.payload.length, 0),
      3000,
    );
    for (const d of data) assert.equal(d.seg.ecn, ECN_ECT0, "new data goes out ECT(0)");
    const acks = p.sent.filter(
      (x) => x.from === "server" && x.seg.payload.length === 0 && !(x.seg.flags & SYN),
    );
    assert.ok(acks.length > 0);
    for (const a of acks) assert.ok(!a.seg.ecn, "pure ACKs are not ECT (6.1.4)");
    for (const x of p.sent)
      assert.equal(
        x.seg.flags & (ECE | CWR) && !(x.seg.flags & SYN) ? 1 : 0,
        0,
        "no ECE or CWR without congestion",
      );
    p.client.checkInvariants();
    p.server.checkInvariants();
  });

  void test("RFC 3168 6.1.1: no ECN unless one side asks and the other accepts", () => {
    for (const [client, server] of [
      ["passive", "passive"],
      ["on", "off"],
      ["off", "on"],
    ] as const) {
      const p = open(client, server);
      assert.ok(!p.client.ecnNegotiated && !p.server.ecnNegotiated, `${client} / ${server}`);
      const synAck = p.sent[1]?.seg;
      assert.equal((synAck?.flags ?? 0) & ECE, 0, `${client} / ${server}: the SYN-ACK carries no ECE`);
      p.client.send(bytes(500), { push: true });
      exchange(p, at(10));
      for (const x of p.sent) assert.ok(!x.seg.ecn, `${client} / ${server}: nothing is ECT`);
    }
  });

  void test("RFC 3168 6.1.1: a SYN-ACK with both ECE and CWR is not an ECN-setup SYN-ACK", () => {
    const c = TcpConnection.connect(
      cfg("on"),
      { localPort: 4000, remotePort: 80, iss: Seq.of(5), tsOffset: 0 },
      at(0),
    );
    const [syn] = drain(c, at(0));
    assert.ok(syn !== undefined);
    c.handleSegment(at(1), {
      ...syn,
      srcPort: 80,
      dstPort: 4000,
      seq: Seq.of(77),
      ack: Seq.add(syn.seq, 1),
      flags: SYN | ACK | ECE | CWR,
      ecn: undefined,
    });
    assert.equal(c.state, "ESTABLISHED");
    assert.equal(c.ecnNegotiated, false);
  });

  void test("RFC 3168 6.1.1.1: retransmitted SYNs ask for ECN up to ecnSynRetries times, then no more", () => {
    for (const retries of [0, 1, 2]) {
      const c = TcpConnection.connect(
        cfg("on", { ecnSynRetries: retries, initialRto: Duration.fromMillis(100) }),
        { localPort: 4000, remotePort: 80, iss: Seq.of(5), tsOffset: 0 },
        at(0),
      );
      const asked: boolean[] = [];
      let now = 0;
      for (let i = 0; i < 4; i++) {
        const [syn] = drain(c, at(now));
        assert.ok(syn !== undefined && syn.flags & SYN, `SYN ${i}`);
        asked.push((syn.flags & (ECE | CWR)) === (ECE | CWR));
        const next = c.pollTimeout();
        assert.ok(next !== undefined);
        now = next / 1000;
        c.handleTimeout(at(now));
      }
      assert.deepEqual(
        asked,
        [0, 1, 2, 3].map((i) => i <= retries),
        `ecnSynRetries ${retries}`,
      );
    }
  });

  void test("RFC 3168 6.1.3 / 6.1.2: a CE mark is echoed with ECE until CWR; the sender halves cwnd once per window and sends CWR", () => {
    const p = open("on", "passive");
    // Open cwnd a little: a first flight without congestion.
    p.client.send(bytes(5000), { push: true });
    exchange(p, at(10));
    const before = p.client.exportState(at(10)).delegated;
    const cwnd0 = before.cwnd;
    // The router marks the first data segment of the next flight CE.
    p.sent.length = 0;
    p.client.send(bytes(4000), { push: true });
    let marked = 0;
    exchange(p, at(20), (seg) => seg.payload.length > 0 && marked++ === 0);
    assert.equal(p.server.stats.ecnCeIn, 1);
    const ackEce = p.sent.filter((x) => x.from === "server" && x.seg.flags & ECE);
    assert.ok(ackEce.length >= 1, "the receiver echoes ECE");
    assert.equal(p.client.stats.ecnReductions, 1, "one reduction for the window");
    const after = p.client.exportState(at(20)).delegated;
    assert.ok(after.ssthresh < 0x7fff_ffff && after.ssthresh <= Math.max(Math.floor(cwnd0 / 2), 2000) + 1000);
    assert.ok(after.cwnd <= cwnd0, `cwnd ${after.cwnd} went down from ${cwnd0}`);
    // The first new data after the reduction carries CWR, and the receiver stops echoing after it.
    const cwr = p.sent.filter((x) => x.from === "client" && x.seg.flags & CWR);
    assert.equal(cwr.length, 1, "CWR on one segment");
    assert.ok((cwr[0]?.seg.payload.length ?? 0) > 0, "CWR goes with new data");
    const lastAck = p.sent.filter((x) => x.from === "server").at(-1);
    assert.equal((lastAck?.seg.flags ?? 0) & ECE, 0, "no ECE after the CWR");
    p.sent.length = 0;
    p.client.send(bytes(1000), { push: true });
    exchange(p, at(30));
    assert.ok(
      p.sent.every((x) => !(x.seg.flags & (ECE | CWR))),
      "no ECE or CWR once the loop closed",
    );
    // Another ECE later, in a new window: a second reduction.
    p.sent.length = 0;
    p.client.send(bytes(2000), { push: true });
    let again = 0;
    exchange(p, at(40), (seg) => seg.payload.length > 0 && again++ === 0);
    assert.equal(p.client.stats.ecnReductions, 2, "a new window, a new reduction");
    p.client.checkInvariants();
    p.server.checkInvariants();
  });

  void test("RFC 3168 6.1.2: ECEs for the same window of data reduce cwnd once", () => {
    const p = open("on", "passive");
    p.client.send(bytes(2000), { push: true });
    exchange(p, at(10));
    // Every data segment of the next flight is marked: every ACK echoes ECE.
    p.client.send(bytes(8000), { push: true });
    exchange(p, at(20), (seg) => seg.payload.length > 0);
    assert.ok(p.server.stats.ecnCeIn >= 2);
    // The segments after the first CWR are a new window: at most two reductions, never one per ACK.
    assert.ok(
      p.client.stats.ecnReductions >= 1 && p.client.stats.ecnReductions < p.server.stats.ecnCeIn,
      `${p.client.stats.ecnReductions} reductions for ${p.server.stats.ecnCeIn} CE marks`,
    );
  });

  void test("the ECN state travels in the snapshot: an imported engine goes on echoing ECE and owes CWR", () => {
    const p = open("on", "passive");
    p.client.send(bytes(1000), { push: true });
    exchange(p, at(10), (seg) => seg.payload.length > 0);
    const server = p.server.exportState(at(11));
    assert.deepEqual(server.delegated.ecn, { echoEce: true, cwrPending: false, reducedUntil: undefined });
    const client = p.client.exportState(at(11));
    assert.equal(client.delegated.ecn?.cwrPending, true);
    const again = TcpConnection.importState(server, at(12), cfg("passive"));
    assert.ok(again.ecnNegotiated);
    again.send(bytes(10), { push: true });
    const [seg] = drain(again, at(12));
    assert.ok(seg !== undefined && seg.flags & ECE, "still echoing ECE");
    assert.equal(seg.ecn, ECN_ECT0);
    const plain = p.client.exportState(at(11));
    assert.ok(
      TcpConnection.importState(plain, at(12), cfg("off")).ecnNegotiated,
      "negotiated state survives a config without ECN",
    );
  });

  void test("tcpConfig rejects an unknown ECN mode and a negative ecnSynRetries", () => {
    assert.throws(() => tcpConfig({ ecn: "maybe" as EcnMode }), /ecn = maybe/);
    assert.throws(() => tcpConfig({ ecnSynRetries: -1 }), /ecnSynRetries/);
  });
});
