// Regression test for a host-side chimney bug found by the FreeBSD suite in offloaded mode
// (`chimney conformance --offload`), e.g. state-event-engine/rcv-syn-closing/
// rcv-syn-closing-right-edge-secure-ipv4.pkt: a FIN retransmitted early, its timer armed from a
// stale time.
//
// The target's upcalls (NdisMIndicateReceiveNetBufferLists for a frame on the non-offload path,
// completions) carry no time: the host takes its own clock, the stack's latest `now`. When the
// stack has been idle (its connections offloaded, no timer) that time is arbitrarily old, so
// timers armed and timestamps taken for an indicated frame were wrong. The fix is the drivers'
// contract: before driving the target at `now`, a driver brings the host there
// (`HostStack.advanceTo`). This test holds the simulator's driver (SimChimneyHost) to it; the
// live driver and the conformance runner's device do the same.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OffloadManager } from "../src/host/offload-manager.js";
import { HostStack } from "../src/host/stack.js";
import { BufferLedger } from "../src/nbl/ledger.js";
import { CollectingSink } from "../src/sim/frame-sink.js";
import { SimChimneyHost } from "../src/sim/offload-node.js";
import { Prng } from "../src/sim/prng.js";
import { Scheduler } from "../src/sim/scheduler.js";
import { SoftwareTarget } from "../src/target/software-target.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Seq } from "../src/tcp/seq.js";
import { Instant } from "../src/time/instant.js";
import { mac } from "../src/wire/ethernet.js";
import { ip } from "../src/wire/ip-addr.js";
import { decodeFrame, emitTcpPacket } from "../src/wire/packet.js";
import { TcpFlag } from "../src/wire/tcp-repr.js";

const OUR_MAC = mac("02:00:00:00:0e:01");
const PEER_MAC = mac("02:00:00:00:0e:02");
const OURS = ip("192.0.2.1");
const PEER = ip("192.0.2.2");

function host(): HostStack {
  const s = new HostStack({
    interfaces: [
      { name: "eth0", link: "ethernet", mac: OUR_MAC, mtu: 1500, addresses: [{ addr: OURS, prefixLen: 24 }] },
    ],
    tcp: tcpConfig({}),
    random: new Prng(7),
  });
  s.neighbors.confirm(Instant.ZERO, 0, PEER, PEER_MAC, true, true);
  return s;
}

/** A segment from the peer (port 80) to our port `port`. */
function fromPeer(port: number, seq: number, ack: number, flags: number): Uint8Array {
  return emitTcpPacket({
    ip: { src: PEER, dst: OURS },
    ethernet: { src: PEER_MAC, dst: OUR_MAC },
    tcp: {
      srcPort: 80,
      dstPort: port,
      seq: Seq.of(seq),
      ack: Seq.of(ack),
      flags,
      window: 65535,
      urgent: 0,
      mss: (flags & TcpFlag.SYN) !== 0 ? 1460 : undefined,
      windowScale: undefined,
      sackPermitted: false,
      sack: [],
      timestamps: undefined,
      unknownOptions: [],
      payload: new Uint8Array(0),
    },
  });
}

/** One host, driven as the runner and the simulator drive it: frames in, frames out. */
interface Driven {
  readonly stack: HostStack;
  input(at: Instant, frame: Uint8Array): void;
  /** Frames sent, drained at `at`. */
  output(at: Instant): Uint8Array[];
}

function plainHost(): Driven {
  const stack = host();
  return {
    stack,
    input: (at, frame) => {
      stack.handleFrame(at, 0, frame);
    },
    output: (at) => {
      const out: Uint8Array[] = [];
      for (let f = stack.pollTransmit(at); f !== undefined; f = stack.pollTransmit(at)) out.push(f.frame);
      return out;
    },
  };
}

/** The same host behind a target, driven by the simulator's glue (frames enter the target). */
function chimneyHost(): Driven {
  const stack = host();
  const ledger = new BufferLedger();
  const manager = new OffloadManager(stack, ledger);
  const target = new SoftwareTarget({ host: manager, ledger, mac: OUR_MAC, tcpConfig: stack.tcpConfig });
  manager.attachTarget(target);
  const sched = new Scheduler();
  const node = new SimChimneyHost("a", stack, sched, { manager, target });
  const wire = new CollectingSink();
  node.attach(0, wire);
  const runTo = (at: Instant): void => {
    sched.at(at, "test clock", () => undefined);
    sched.runUntil(at);
  };
  return {
    stack,
    input: (at, frame) => {
      sched.at(at, "frame from the peer", () => node.port().deliver(sched.now, frame));
      runTo(at);
    },
    output: (at) => {
      runTo(at);
      node.pump(); // after the test's own calls on the stack
      return wire.frames.splice(0).map((f) => f.frame);
    },
  };
}

/**
 * Connect, handshake, close, the peer's ACK of our FIN, and after a long quiet FIN-WAIT-2 the
 * peer's FIN: returns the TIME-WAIT deadline (2 MSL from when that FIN arrived).
 */
function timeWaitDeadline(h: Driven): Instant | undefined {
  const t = (s: number) => Instant.fromMicros(Math.round(s * 1e6));
  const c = h.stack.connect(t(0), PEER, 80);
  const syn = h.output(t(0))[0];
  assert.ok(syn !== undefined);
  const seg = decodeFrame(syn).transport;
  assert.ok(seg?.kind === "tcp");
  const iss = seg.tcp.seq;
  h.input(t(0.1), fromPeer(c.localPort, 5000, Seq.add(iss, 1), TcpFlag.SYN | TcpFlag.ACK));
  h.output(t(0.1));
  assert.equal(c.tcp?.state, "ESTABLISHED");
  h.stack.close(t(0.1), c);
  h.output(t(0.1));
  h.input(t(0.2), fromPeer(c.localPort, 5001, Seq.add(iss, 2), TcpFlag.ACK));
  h.output(t(0.2));
  assert.equal(c.tcp?.state, "FIN-WAIT-2");
  h.input(t(30), fromPeer(c.localPort, 5001, Seq.add(iss, 2), TcpFlag.FIN | TcpFlag.ACK));
  h.output(t(30));
  assert.equal(c.tcp?.state, "TIME-WAIT");
  h.stack.pollTimeout(); // flushes, so the connection's deadline is current
  return c.deadline;
}

void test("rcv-syn-closing-right-edge-secure (offloaded): a frame indicated up by the target is processed at its arrival time", () => {
  const want = timeWaitDeadline(plainHost());
  assert.ok(want !== undefined && want > Instant.fromMicros(30_000_000), "2 MSL from the FIN's arrival");
  // The same host behind the target, not offloaded: every frame is indicated up.
  const got = timeWaitDeadline(chimneyHost());
  assert.equal(got, want, "the FIN was processed at the stack's stale clock (0.2 s), not at 30 s");
});
