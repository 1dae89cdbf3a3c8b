// HostStack.handOff: a connection leaves our stack for another TCP implementation (the kernel)
// with its snapshot, and without a segment of its own; until releaseHandOff its 4-tuple is
// silent (segments dropped, no RST); misuse throws UsageError. Two stacks over a direct IP link.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type HostConn, HostStack } from "../src/host/stack.js";
import { Prng } from "../src/sim/prng.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Duration, Instant } from "../src/time/instant.js";
import { type IpAddr, ip } from "../src/wire/ip-addr.js";
import { decodeIpPacket } from "../src/wire/packet.js";
import { TcpFlag } from "../src/wire/tcp-repr.js";
import { Seq } from "../src/wire/seq.js";
import { handOffToKernel, recordFromJson, recordToJson } from "../src/live/terminate.js";
import { steerConnection } from "../src/live/steering.js";
import { adoptFromKernel } from "../src/live/adopt.js";
import { type KernelTcpInfo, kernelFromSnapshot } from "../src/device/kernel-state.js";
import type { RepairAddon } from "../src/device/repair.js";
import { MoveRefusedError, moveToKernel, withoutTimestamp } from "../src/live/kernel-move.js";
import { internetChecksum, ipv4PseudoHeaderSum, verifyChecksum } from "../src/wire/checksum.js";

const A = ip("192.0.2.2");
const B = ip("192.0.2.1");

function stack(addr: IpAddr, seed: number): HostStack {
  return new HostStack({
    interfaces: [
      { name: "tun0", link: "ip", mac: new Uint8Array(6), mtu: 1500, addresses: [{ addr, prefixLen: 24 }] },
    ],
    tcp: tcpConfig({}),
    random: new Prng(seed),
  });
}

/** TCP flags of every frame `from` sends now, each handed to `to` (unless `to` is undefined). */
function pass(from: HostStack, to: HostStack | undefined, now: Instant): number[] {
  const flags: number[] = [];
  for (let f = from.pollTransmit(now); f !== undefined; f = from.pollTransmit(now)) {
    const p = decodeIpPacket(f.frame);
    if (p.transport?.kind === "tcp") flags.push(p.transport.tcp.flags);
    to?.handleFrame(now, 0, f.frame);
  }
  return flags;
}

function settle(a: HostStack, b: HostStack, now: Instant): void {
  for (let i = 0; i < 100; i++) {
    if (pass(a, b, now).length + pass(b, a, now).length === 0) return;
  }
  throw new Error("the stacks did not settle");
}

const bytes = (n: number, k: number) => Uint8Array.from({ length: n }, (_, i) => (i * k + 7) & 0xff);
const concat = (chunks: readonly Uint8Array[]) => Buffer.concat(chunks.map((c) => Buffer.from(c)));

function pair(): { a: HostStack; b: HostStack; ca: HostConn; cb: HostConn; now: Instant } {
  const a = stack(A, 1);
  const b = stack(B, 2);
  const now = Instant.fromMillis(1);
  const l = b.listen(80);
  const ca = a.connect(now, B, 80, { localPort: 40000 });
  settle(a, b, now);
  while (b.pollEvent() !== undefined) {
    // the accept event; accept() below takes the connection
  }
  const cb = b.accept(l);
  assert.ok(cb !== undefined, "accepted");
  return { a, b, ca, cb, now };
}

/** A TCP_INFO as the kernel would report it for a quiet connection (times in microseconds). */
const INFO: KernelTcpInfo = {
  state: 1,
  options: 0,
  sndWscale: 0,
  rcvWscale: 0,
  rto: 200_000,
  ato: 40_000,
  sndMss: 1460,
  rcvMss: 1460,
  unacked: 0,
  retransmits: 0,
  lost: 0,
  rtt: 1000,
  rttvar: 500,
  sndSsthresh: 0x7fff_ffff,
  sndCwnd: 10,
  advmss: 1460,
  rcvSpace: 65535,
  bytesSent: 0,
  bytesRetrans: 0,
};

/** Runs both stacks' timers and traffic from `from` for `ms` milliseconds, 10 ms a step. */
function run(a: HostStack, b: HostStack, from: Instant, ms: number): Instant {
  let now = from;
  for (let t = 0; t < ms; t += 10) {
    now = Instant.add(now, Duration.fromMillis(10));
    a.handleTimeout(now);
    b.handleTimeout(now);
    settle(a, b, now);
  }
  return now;
}

void describe("HostStack.handOff", () => {
  void test("the snapshot carries unread and unacknowledged data; the 4-tuple stays silent until released", () => {
    const { a, b, ca, cb, now } = pair();
    const toA = bytes(5000, 3);
    const fromA = bytes(3000, 5);
    assert.equal(b.send(now, cb, toA), toA.length);
    settle(a, b, now); // A has 5000 bytes unread (acknowledged)
    assert.equal(a.send(now, ca, fromA), fromA.length); // not yet on the wire
    const before = a.connectionCount;
    const snap = a.handOff(now, ca);
    assert.equal(snap.delegated.state, "ESTABLISHED");
    assert.deepEqual(concat(snap.delegated.bufferedData), Buffer.from(toA), "unread data in the snapshot");
    assert.deepEqual(concat(snap.delegated.sendData), Buffer.from(fromA), "send data in the snapshot");
    assert.equal(a.connectionCount, before - 1, "the connection left the table");
    // What the engine owed went out before the snapshot (its data is sent, not lost); nothing
    // after: no FIN, no RST.
    const drained = pass(a, b, now);
    assert.ok(
      drained.every((f) => (f & (TcpFlag.FIN | TcpFlag.RST)) === 0),
      `no FIN/RST: ${drained.join(",")}`,
    );
    // The peer's segments (its data, a probe) are dropped without an answer.
    assert.equal(b.send(now, cb, bytes(100, 9)), 100);
    const sentByB = pass(b, a, now);
    assert.ok(sentByB.length > 0, "the peer sent segments");
    assert.deepEqual(pass(a, undefined, now), [], "silence toward the peer");
    assert.ok(a.handedOffDrops(ca) >= 1, "the drop was counted");
    assert.equal(a.stats.rstsSent, 0);
    assert.throws(() => a.send(now, ca, bytes(1, 1)), { code: "ERR_USAGE" });
    assert.throws(() => a.handOff(now, ca), { code: "ERR_USAGE" });
    // Released: the 4-tuple is unknown again, and a segment for it draws a RST.
    const drops = a.handedOffDrops(ca);
    assert.equal(a.releaseHandOff(ca), drops);
    assert.equal(a.handedOffDrops(ca), 0);
    assert.throws(() => a.releaseHandOff(ca), { code: "ERR_USAGE" });
    const later = Instant.fromMillis(5000);
    b.handleTimeout(later); // the peer retransmits what was never acknowledged
    assert.ok(pass(b, a, later).length > 0, "the peer retransmitted");
    const answer = pass(a, undefined, later);
    assert.ok(
      answer.some((f) => (f & TcpFlag.RST) !== 0),
      `a RST after the release: ${answer.join(",")}`,
    );
    assert.equal(a.stats.rstsSent, 1);
  });

  void test("a connection not yet synchronized is refused with UsageError", () => {
    const a = stack(A, 3);
    const now = Instant.fromMillis(1);
    const c = a.connect(now, B, 80);
    pass(a, undefined, now); // SYN sent, no answer
    assert.throws(() => a.handOff(now, c), { code: "ERR_USAGE" });
    assert.throws(() => a.releaseHandOff(c), { code: "ERR_USAGE" });
    // It stays on our stack and keeps trying: the SYN is retransmitted.
    assert.equal(a.connectionCount, 1);
    const later = Instant.fromMillis(5000);
    a.handleTimeout(later);
    const again = pass(a, undefined, later);
    assert.ok(
      again.some((f) => (f & TcpFlag.SYN) !== 0),
      `SYN retransmitted: ${again.join(",")}`,
    );
  });

  void test("handOffToKernel: the kernel record of our connection, and its JSON line round trip", () => {
    const { a, b, ca, cb, now } = pair();
    const toA = bytes(4000, 11);
    assert.equal(b.send(now, cb, toA), toA.length);
    settle(a, b, now);
    const fromA = bytes(2500, 13);
    assert.equal(a.send(now, ca, fromA), fromA.length);
    const { record, snapshot } = handOffToKernel(a, ca, now);
    assert.deepEqual(record.local, { address: "192.0.2.2", port: 40000 });
    assert.deepEqual(record.remote, { address: "192.0.2.1", port: 80 });
    assert.equal(record.family, 4);
    assert.equal(record.rcvNxt, snapshot.delegated.rcvNxt);
    assert.equal(record.sndUna, snapshot.delegated.sndUna);
    assert.deepEqual(Buffer.from(record.recvQueue), Buffer.from(toA), "unread data is the receive queue");
    assert.deepEqual(Buffer.from(record.sendQueue), Buffer.from(fromA), "send data is the send queue");
    assert.equal(record.fin, undefined);
    const line = recordToJson(record, { from: 7 });
    assert.ok(!line.includes("\n"));
    const back = recordFromJson(line);
    assert.deepEqual(back.extra, { from: 7 });
    assert.deepEqual(
      {
        ...back.record,
        recvQueue: Buffer.from(back.record.recvQueue),
        sendQueue: Buffer.from(back.record.sendQueue),
      },
      { ...record, recvQueue: Buffer.from(record.recvQueue), sendQueue: Buffer.from(record.sendQueue) },
    );
    assert.throws(() => recordFromJson(JSON.stringify({ from: 1 })), { code: "ERR_USAGE" });
  });

  void test("handOffToKernel refuses a connection whose FIN the kernel cannot take", () => {
    const { a, b, ca, cb, now } = pair();
    b.close(now, cb);
    settle(a, b, now); // the peer's FIN: CLOSE-WAIT here
    assert.throws(() => handOffToKernel(a, ca, now), { code: "ERR_USAGE" });
  });

  void test("steerConnection refuses a rule number outside 2..65535 before running tc", () => {
    const t = { localAddress: "192.0.2.2", localPort: 1, remoteAddress: "192.0.2.1", remotePort: 2 };
    for (const pref of [0, 1, 65536, 2.5])
      assert.throws(() => steerConnection("no-such-ns", "x", "y", t, pref), { code: "ERR_USAGE" });
  });
});

void describe("HostStack.adopt (the reverse move: a connection another implementation ran)", () => {
  void test("a kernel record becomes our connection: unread data first, unacknowledged data resent, no RST", () => {
    const p = pair();
    const { a, b, ca, cb } = p;
    const toA = bytes(5000, 3);
    assert.equal(b.send(p.now, cb, toA), toA.length);
    const now = run(a, b, p.now, 500); // 5000 bytes unread at A, all acknowledged (delayed ACK too)
    const fromA = bytes(3000, 5);
    assert.equal(a.send(now, ca, fromA), fromA.length);
    // A stands in for the kernel: its state leaves as a kernel export would (record + TCP_INFO);
    // what it sent is lost on the way, so the adopter must resend it.
    const snap = a.handOff(now, ca);
    pass(a, undefined, now);
    const record = {
      ...kernelFromSnapshot(snap, {
        family: 4 as const,
        localAddress: "192.0.2.2",
        remoteAddress: "192.0.2.1",
      }),
      info: INFO,
    };
    assert.ok(Seq.delta(snap.delegated.sndMax, snap.delegated.sndUna) > 0, "sent, unacknowledged");
    const a2 = stack(A, 9);
    a2.reserveForAdoption(A, 40000, B, 80);
    // The peer's segments reaching the adopter before the adoption: dropped, no answer.
    const more = bytes(700, 7);
    assert.equal(b.send(now, cb, more), more.length);
    assert.ok(pass(b, a2, now).length > 0, "the peer sent");
    assert.deepEqual(pass(a2, undefined, now), [], "silence before the adoption");
    const { conn, snapshot } = adoptFromKernel(a2, now, record);
    assert.equal(snapshot.delegated.state, "ESTABLISHED");
    assert.equal(conn.connected, true);
    assert.equal(a2.connectionCount, 1);
    // The application reads the kernel's unread data first, then what came later, once each.
    const got: Uint8Array[] = [];
    let t = now;
    for (let i = 0; i < 300 && concat(got).length < toA.length + more.length; i++) {
      t = run(a2, b, t, 10);
      for (let d = a2.recv(t, conn); d !== undefined; d = a2.recv(t, conn)) got.push(d.slice());
    }
    assert.deepEqual(concat(got), Buffer.concat([Buffer.from(toA), Buffer.from(more)]));
    // Our send data (sent once by A, lost) reaches the peer, exactly once.
    const atB: Uint8Array[] = [];
    for (let i = 0; i < 300 && concat(atB).length < fromA.length; i++) {
      t = run(a2, b, t, 10);
      for (let d = b.recv(t, cb); d !== undefined; d = b.recv(t, cb)) atB.push(d.slice());
    }
    assert.deepEqual(concat(atB), Buffer.from(fromA));
    // New data both ways after the move.
    const after = bytes(4000, 17);
    assert.equal(a2.send(t, conn, after), after.length);
    t = run(a2, b, t, 100);
    const tail: Uint8Array[] = [];
    for (let d = b.recv(t, cb); d !== undefined; d = b.recv(t, cb)) tail.push(d.slice());
    assert.deepEqual(concat(tail), Buffer.from(after));
    assert.equal(a2.stats.rstsSent, 0);
    assert.equal(b.stats.rstsSent, 0);
  });

  void test("data in flight whose ACKs were lost in the hand-off: a tail loss probe after 2 SRTT brings them, not the RTO", () => {
    const p = pair();
    const { a, b, ca, cb } = p;
    const fromA = bytes(3000, 5);
    assert.equal(a.send(p.now, ca, fromA), fromA.length);
    // The peer gets every byte; its ACKs are lost with the move.
    assert.ok(pass(a, b, p.now).length > 0);
    const snap = a.handOff(p.now, ca);
    pass(a, undefined, p.now);
    assert.ok(Seq.delta(snap.delegated.sndMax, snap.delegated.sndUna) > 0, "sent, unacknowledged");
    const record = {
      ...kernelFromSnapshot(snap, {
        family: 4 as const,
        localAddress: "192.0.2.2",
        remoteAddress: "192.0.2.1",
      }),
      info: { ...INFO, rtt: 1000, rto: 1_000_000 }, // SRTT 1 ms, RTO 1 s
    };
    assert.equal(record.sack, true, "SACK was negotiated");
    const a2 = stack(A, 9);
    a2.reserveForAdoption(A, 40000, B, 80);
    pass(b, undefined, p.now);
    const { conn } = adoptFromKernel(a2, p.now, record);
    assert.deepEqual(pass(a2, b, p.now), [], "nothing due at the adoption");
    // 2 SRTT (2 ms) later the probe goes out; its answer acknowledges everything.
    const probeAt = Instant.add(p.now, Duration.fromMillis(3));
    a2.handleTimeout(probeAt);
    assert.ok(pass(a2, b, probeAt).length > 0, "a probe well before the 1 s RTO");
    // The peer's answer (at most its delayed-ACK time later) acknowledges everything.
    const answerAt = Instant.add(probeAt, Duration.fromMillis(200));
    pass(b, a2, probeAt);
    b.handleTimeout(answerAt);
    pass(b, a2, answerAt);
    assert.ok(
      conn.tcp !== undefined && Seq.delta(conn.tcp.sndUna, snap.delegated.sndMax) > 0,
      "all acknowledged",
    );
    assert.equal(conn.tcp.sndUna, conn.tcp.sndNxt, "nothing left in flight, 0.2 s after the move");
    const atB: Uint8Array[] = [];
    for (let d = b.recv(answerAt, cb); d !== undefined; d = b.recv(answerAt, cb)) atB.push(d.slice());
    assert.deepEqual(concat(atB), Buffer.from(fromA), "the peer has every byte once");
  });

  void test("data in flight and no SRTT (the kernel had no sample yet): the probe goes 10 ms after the adoption", () => {
    const p = pair();
    const { a, b, ca } = p;
    assert.equal(a.send(p.now, ca, bytes(3000, 5)), 3000);
    assert.ok(pass(a, b, p.now).length > 0);
    const snap = a.handOff(p.now, ca);
    pass(a, undefined, p.now);
    const record = {
      ...kernelFromSnapshot(snap, {
        family: 4 as const,
        localAddress: "192.0.2.2",
        remoteAddress: "192.0.2.1",
      }),
      info: { ...INFO, rtt: 0, rttvar: 0, rto: 3_000_000 }, // no sample: the RTO is 3 s
    };
    const a2 = stack(A, 9);
    a2.reserveForAdoption(A, 40000, B, 80);
    pass(b, undefined, p.now);
    const { conn } = adoptFromKernel(a2, p.now, record);
    assert.equal(conn.tcp?.srtt, undefined);
    assert.deepEqual(pass(a2, b, p.now), []);
    const before = Instant.add(p.now, Duration.fromMillis(9));
    a2.handleTimeout(before);
    assert.deepEqual(pass(a2, b, before), [], "not before 10 ms");
    const at = Instant.add(p.now, Duration.fromMillis(10));
    a2.handleTimeout(at);
    assert.ok(pass(a2, b, at).length > 0, "the probe at 10 ms");
  });

  void test("misuse: typed errors, and the 4-tuple's silence ends with the adoption", () => {
    const { a, ca, now } = pair();
    const snap = a.handOff(now, ca);
    const at = { localAddr: A, remoteAddr: B };
    const a2 = stack(A, 10);
    assert.throws(
      () => a2.adopt(now, { ...snap, delegated: { ...snap.delegated, state: "TIME-WAIT" } }, at),
      {
        code: "ERR_USAGE",
      },
    );
    assert.throws(() => a2.adopt(now, snap, { localAddr: A, remoteAddr: ip("2001:db8::1") }), {
      code: "ERR_USAGE",
    });
    assert.throws(() => a2.adopt(now, snap, { localAddr: ip("192.0.2.9"), remoteAddr: B }), {
      code: "ERR_SOCKET",
      errno: "EADDRNOTAVAIL",
    });
    assert.throws(() => a2.adopt(now, snap, { localAddr: A, remoteAddr: ip("198.51.100.1") }), {
      code: "ERR_SOCKET",
      errno: "ENETUNREACH",
    });
    const c = a2.adopt(now, snap, at);
    assert.throws(() => a2.adopt(now, snap, at), { code: "ERR_SOCKET", errno: "EADDRINUSE" });
    assert.throws(() => a2.reserveForAdoption(A, 40000, B, 80), { code: "ERR_USAGE" });
    assert.equal(a2.handedOffDrops(c), 0);
    const record = kernelFromSnapshot(snap, {
      family: 4,
      localAddress: "192.0.2.2",
      remoteAddress: "192.0.2.1",
    });
    assert.throws(() => adoptFromKernel(stack(A, 11), now, record), { code: "ERR_USAGE" });
    const huge = { ...record, info: INFO, recvQueue: new Uint8Array(a2.tcpConfig.recvBufferSize + 1) };
    assert.throws(() => adoptFromKernel(stack(A, 12), now, huge), { code: "ERR_USAGE" });
  });
});

void describe("moveToKernel refusals (no root: the kernel side fails or is never reached)", () => {
  const side = { ns: "chimney-no-such-namespace", outer: "veth-h", tap: "tap0", pref: 10 };
  const clock = (s: HostStack, now: Instant) => ({
    now: () => now,
    flush: () => void pass(s, undefined, now),
  });
  const noSteering = { pref: 10, remove: () => assert.fail("the steering must stay") };
  // An addon nothing may be called on: the refusals come first.
  const untouchable = new Proxy({} as RepairAddon, {
    get: (_t, k) => () => assert.fail(`addon.${String(k)} called`),
  });

  void test("a connection not ESTABLISHED is refused (ERR_USAGE) and stays on our stack as it was", () => {
    const a = stack(A, 21);
    const now = Instant.fromMillis(1);
    const c = a.connect(now, B, 80, { localPort: 40001 }); // SYN-SENT: B never answers
    assert.throws(() => moveToKernel(side, a, c, clock(a, now), noSteering, { addon: untouchable }), {
      code: "ERR_USAGE",
    });
    assert.equal(c.phase, "host");
    assert.equal(c.tcp?.state, "SYN-SENT");
    assert.throws(() => a.releaseHandOff(c), { code: "ERR_USAGE" }, "it was never handed off");
  });

  void test("the kernel side refusing the record: MoveRefusedError, the connection adopted back intact", () => {
    const { a, b, ca, cb, now } = pair();
    a.send(now, ca, bytes(3000, 3));
    b.send(now, cb, bytes(2000, 5));
    settle(a, b, now);
    // No namespace of that name: the import fails with a RepairError before any socket exists.
    let refused: unknown;
    try {
      moveToKernel(side, a, ca, clock(a, now), noSteering, { addon: untouchable });
    } catch (e) {
      refused = e;
    }
    assert.ok(refused instanceof MoveRefusedError, String(refused));
    assert.equal(refused.code, "ERR_REPAIR");
    const back = refused.conn;
    assert.equal(back.phase, "host");
    assert.equal(back.tcp?.state, "ESTABLISHED");
    // What B sent is still there to read, and the connection still carries data both ways.
    const got: Uint8Array[] = [];
    for (let d = a.recv(now, back); d !== undefined; d = a.recv(now, back)) got.push(d);
    assert.equal(concat(got).equals(Buffer.from(bytes(2000, 5))), true);
    a.send(now, back, bytes(500, 9));
    settle(a, b, now);
    const atB: Uint8Array[] = [];
    for (let d = b.recv(now, cb); d !== undefined; d = b.recv(now, cb)) atB.push(d);
    assert.equal(
      concat(atB).equals(Buffer.concat([Buffer.from(bytes(3000, 3)), Buffer.from(bytes(500, 9))])),
      true,
    );
    assert.equal(a.stats.rstsSent + b.stats.rstsSent, 0);
  });
});

void describe("KernelForwarder's packets: withoutTimestamp", () => {
  /** An IPv4/TCP packet with NOP NOP TS(tsval, tsecr) and `data`, its checksum right. */
  function tcpPacket(data: Uint8Array): Buffer {
    const p = Buffer.alloc(20 + 32 + data.length);
    p[0] = 0x45;
    p.writeUInt16BE(p.length, 2);
    p[8] = 64;
    p[9] = 6;
    Buffer.from(B).copy(p, 12);
    Buffer.from(A).copy(p, 16);
    p.writeUInt16BE(5072, 20);
    p.writeUInt16BE(40000, 22);
    p.writeUInt32BE(0x01020304, 24);
    p.writeUInt32BE(0x0a0b0c0d, 28);
    p[32] = 8 << 4; // 32-byte TCP header
    p[33] = 0x18;
    p.writeUInt16BE(65535, 34);
    Buffer.from([1, 1, 8, 10, 0, 0, 0x30, 0x39, 0, 0, 0x10, 0x92]).copy(p, 40);
    Buffer.from(data).copy(p, 52);
    p.writeUInt16BE(internetChecksum(p, 0, 20), 10);
    p.writeUInt16BE(internetChecksum(p, 20, p.length, ipv4PseudoHeaderSum(B, A, 6, p.length - 20)), 36);
    return p;
  }

  void test("the timestamp option becomes NOPs, the checksum still verifies, the rest is untouched", () => {
    const data = bytes(999, 7); // odd length: the checksum's padding byte counts
    const before = tcpPacket(data);
    assert.ok(verifyChecksum(before, 20, before.length, ipv4PseudoHeaderSum(B, A, 6, before.length - 20)));
    const after = withoutTimestamp(Buffer.from(before));
    assert.deepEqual([...after.subarray(40, 52)], new Array(12).fill(1));
    assert.ok(verifyChecksum(after, 20, after.length, ipv4PseudoHeaderSum(B, A, 6, after.length - 20)));
    assert.deepEqual(after.subarray(0, 36), before.subarray(0, 36));
    assert.deepEqual(after.subarray(52), before.subarray(52));
    const decoded = decodeIpPacket(after);
    assert.equal(decoded.transport?.kind, "tcp");
  });

  void test("a packet without the option is returned as it was", () => {
    const p = tcpPacket(bytes(10, 3));
    p.fill(1, 40, 52); // all NOPs already
    p.writeUInt16BE(0, 36);
    p.writeUInt16BE(internetChecksum(p, 20, p.length, ipv4PseudoHeaderSum(B, A, 6, p.length - 20)), 36);
    const copy = Buffer.from(p);
    assert.deepEqual(withoutTimestamp(p), copy);
  });
});
