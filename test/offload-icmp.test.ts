// ICMP for offloaded connections (NS-4): the software target does not process ICMP; it indicates
// it on the non-offload path, and the host stack acts on the offloaded connection: errors are
// recorded as soft errors (the connection is synchronized, RFC 1122 4.2.3.9 / RFC 5461) and
// reach the engine on upload; a path-MTU message becomes an update of the offloaded path.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HostConn } from "../src/host/stack.js";
import { buildChimneyWorld, type ChimneyWorld } from "../src/sim/chimney-world.js";
import { SoftwareTarget } from "../src/offload-target/software-target.js";
import { Instant } from "../src/time/instant.js";
import { mac } from "../src/wire/ethernet.js";
import type { Icmpv4Repr } from "../src/wire/icmpv4.js";
import { ip } from "../src/wire/ip-addr.js";
import { decodeFrame, emitIcmpv4Packet, emitTcpPacket } from "../src/wire/packet.js";
import { TcpFlag } from "../src/wire/tcp-repr.js";
import { Seq, type SeqNum } from "../src/wire/seq.js";

/** The seed of the simulated world (named in the suite title, so a failure can be replayed). */
const SEED = 11;

const A = ip("192.0.2.1");
const B = ip("192.0.2.2");
const MAC_A = mac("02:00:00:00:00:01");
const MAC_B = mac("02:00:00:00:00:02");

interface Setup {
  readonly w: ChimneyWorld;
  readonly server: HostConn;
  readonly client: HostConn;
  /** The last TCP frame b sent with data (for the ICMP quote). */
  readonly lastData: () => Uint8Array;
}

/** b (with a target) serves, a (no target) is the client; nobody reads. */
function setup(): Setup {
  let last: Uint8Array | undefined;
  const w = buildChimneyWorld({
    seed: SEED,
    a: { offload: false },
    tap: {
      onFrame: (_now, dir, frame) => {
        const p = decodeFrame(frame);
        if (dir === "b>a" && p.transport?.kind === "tcp" && p.transport.tcp.payload.length > 0) last = frame;
      },
    },
  });
  let server: HostConn | undefined;
  let client: HostConn | undefined;
  w.b.onEvent((ev) => {
    if (ev.kind === "accept") server ??= w.b.stack.accept(ev.listener);
  });
  w.a.onEvent((ev) => {
    if (ev.kind !== "accept" && ev.event.kind === "connected") client ??= ev.conn;
  });
  w.b.stack.listen(80);
  w.a.stack.connect(Instant.ZERO, B, 80);
  w.a.node.pump();
  w.run(50_000);
  assert.ok(server !== undefined && client !== undefined, "connected");
  return {
    w,
    server,
    client,
    lastData: () => {
      assert.ok(last !== undefined, "b sent data");
      return last;
    },
  };
}

/** A frame of `c`'s with sequence number `seq` (only its first 48 bytes matter for a quote). */
function segmentFrame(c: HostConn, seq: SeqNum): Uint8Array {
  return emitTcpPacket({
    ip: { src: c.localAddr, dst: c.remoteAddr },
    tcp: {
      srcPort: c.localPort,
      dstPort: c.remotePort,
      seq,
      ack: Seq.of(0),
      flags: TcpFlag.ACK,
      window: 0,
      urgent: 0,
      mss: undefined,
      windowScale: undefined,
      sackPermitted: false,
      sack: [],
      timestamps: undefined,
      unknownOptions: [],
      payload: new Uint8Array(100),
    },
    ethernet: { src: MAC_B, dst: MAC_A },
  });
}

function mgr(w: ChimneyWorld) {
  const m = w.b.manager;
  assert.ok(m !== undefined);
  return m;
}

/** An ICMPv4 error from a (the peer side) about `quotedFrame`, delivered to b's target. */
function icmpToTarget(
  w: ChimneyWorld,
  icmp: (quoted: Uint8Array) => Icmpv4Repr,
  quotedFrame: Uint8Array,
): void {
  const quoted = quotedFrame.slice(14, 14 + 28); // IP header + the first 8 TCP bytes (RFC 792)
  const frame = emitIcmpv4Packet({
    ip: { src: A, dst: B },
    icmp: icmp(quoted),
    ethernet: { src: MAC_A, dst: MAC_B },
  });
  const target = w.b.target;
  assert.ok(target instanceof SoftwareTarget);
  const up0 = target.stats.framesUp;
  target.handleFrame(w.now, frame);
  assert.equal(target.stats.framesUp, up0 + 1, "NS-4: ICMP goes up the non-offload path");
  w.b.node.pump();
}

function close(s: Setup): void {
  const { w } = s;
  w.a.stack.abort(w.now, s.client);
  if (s.server.phase === "host" || s.server.phase === "offloaded") w.b.stack.abort(w.now, s.server);
  w.a.node.pump();
  w.b.node.pump();
  assert.ok(w.run(w.now + 600_000_000), "the world went idle");
  w.b.ledger?.assertQuiescent();
}

void describe(`NS-4: ICMP errors for offloaded connections reach the host stack (world seed ${SEED})`, () => {
  void test("soft and hard errors are recorded for the offloaded connection and applied on upload", () => {
    const s = setup();
    const { w, server } = s;
    assert.equal(mgr(w).offload(server), true);
    w.b.node.pump();
    w.run(w.now + 5_000);
    assert.equal(server.phase, "offloaded");
    // b (the target) sends; the ICMP errors quote that data before it is acknowledged.
    w.b.stack.send(w.now, server, new Uint8Array(3000));
    w.b.node.pump();
    const target = w.b.target;
    assert.ok(target instanceof SoftwareTarget);
    const ctx = mgr(w).contextOf(server);
    assert.ok(ctx !== undefined);
    const e = target.engineOf(ctx);
    assert.ok(e !== undefined && e.sndNxt !== e.sndUna, "data in flight at the target");
    const quotedFrame = segmentFrame(server, e.sndUna);
    icmpToTarget(
      w,
      (quoted) => ({ type: "dst-unreachable", code: "host-unreachable", nextHopMtu: undefined, quoted }),
      quotedFrame,
    );
    assert.equal(
      server.offloadedIcmp?.code,
      "EHOSTUNREACH",
      "soft error recorded for the offloaded connection",
    );
    // A hard error (port unreachable) does not abort a synchronized connection: recorded too.
    icmpToTarget(
      w,
      (quoted) => ({ type: "dst-unreachable", code: "port-unreachable", nextHopMtu: undefined, quoted }),
      quotedFrame,
    );
    assert.equal(server.offloadedIcmp?.code, "ECONNREFUSED");
    assert.equal(server.phase, "offloaded", "still offloaded, not aborted");
    // Upload while the quoted data is unacknowledged: the engine gets the recorded error.
    assert.equal(mgr(w).terminate(server), true);
    w.b.node.pump();
    assert.equal(server.phase, "host");
    assert.equal(server.offloadedIcmp, undefined, "handed to the engine");
    assert.equal(server.tcp?.softError, "ECONNREFUSED");
    w.run(w.now + 50_000);
    assert.equal(server.phase, "host", "the connection carries on");
    close(s);
  });

  void test("a path-MTU message through the target updates the offloaded path (spec 9.1)", () => {
    const s = setup();
    const { w, server } = s;
    assert.equal(mgr(w).offload(server), true);
    w.b.node.pump();
    w.run(w.now + 5_000);
    w.b.stack.send(w.now, server, new Uint8Array(3000));
    w.b.node.pump();
    w.run(w.now + 50_000);
    icmpToTarget(
      w,
      (quoted) => ({ type: "dst-unreachable", code: "frag-needed", nextHopMtu: 1280, quoted }),
      s.lastData(),
    );
    w.run(w.now + 5_000);
    const log = mgr(w)
      .log.map((e) => `${e.op} ${e.detail}`)
      .join("\n");
    assert.match(log, /UpdateOffload path 192\.0\.2\.1 pmtu=1280/);
    assert.equal(server.offloadedIcmp, undefined, "PMTU is not an error");
    close(s);
  });
});
