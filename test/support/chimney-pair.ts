// Two hosts wired back to back at one fixed instant, for tests that move data through the chimney
// without a clock: host A (192.0.2.1) with an offload manager and a SoftwareTarget in front of it
// (frames between A and the wire pass the target: both are src/node chimney nodes), and a plain
// host B (192.0.2.2) as the peer.
import { segmentHost } from "../../src/sim/segment-host.js";
import assert from "node:assert/strict";
import {
  acceptAllKnobs,
  type OffloadManager,
  type OffloadPolicy,
  type ReceiveKnobs,
} from "../../src/host/offload-manager.js";
import { type HostConn, HostStack, type StackEvent } from "../../src/host/stack.js";
import type { BufferLedger } from "../../src/nbl/ledger.js";
import { ChimneyNode, createChimney } from "../../src/node/chimney-node.js";
import { Prng } from "../../src/sim/prng.js";
import type { SoftwareTarget, SoftwareTargetOptions } from "../../src/offload-target/software-target.js";
import { tcpConfig, type TcpConfig } from "../../src/tcp/config.js";
import { Instant } from "../../src/time/instant.js";
import { ChecksumCapabilities } from "../../src/wire/checksum.js";
import { mac } from "../../src/wire/ethernet.js";
import { ip } from "../../src/wire/ip-addr.js";

/** The one instant a pair runs at. */
export const PAIR_NOW = Instant.ZERO;

/** Host A behind its target, and the peer B. */
export interface ChimneyPair {
  readonly a: HostStack;
  readonly b: HostStack;
  readonly manager: OffloadManager;
  readonly target: SoftwareTarget;
  readonly ledger: BufferLedger;
  /** A behind its target, as the node every driver runs. */
  readonly nodeA: ChimneyNode;
  /** B, a plain host. */
  readonly nodeB: ChimneyNode;
  /** Frames from the target toward B not yet delivered (`driveHost` queues, `settle` delivers). */
  readonly toPeer: Uint8Array[];
  /** A's socket-level events (set by the test). */
  onA: (ev: StackEvent) => void;
  /** B's socket-level events (set by the test). */
  onB: (ev: StackEvent) => void;
}

/** How to build a pair. */
export interface ChimneyPairOptions {
  readonly tcp?: Partial<TcpConfig> | undefined;
  readonly policy?: OffloadPolicy | undefined;
  /** How A's manager consumes received data (default: accepts everything). */
  readonly knobs?: ReceiveKnobs | undefined;
  /** Further SoftwareTarget options. */
  readonly target?: Partial<Omit<SoftwareTargetOptions, "host" | "ledger" | "mac" | "tcpConfig">> | undefined;
  /** Both hosts' SYN queue limit (for many connections at once). */
  readonly synQueueLimit?: number | undefined;
  /** The link MTU (default 1500). */
  readonly mtu?: number | undefined;
}

/** Receive knobs that refuse every indication and post nothing: data stays at the target. */
export function refuseAll(): ReceiveKnobs {
  return { ...acceptAllKnobs({ nextU32: () => 0 }), acceptAll: 0, refuse: 1, queueLimit: 0 };
}

/** Builds a pair. */
export function chimneyPair(o: ChimneyPairOptions = {}): ChimneyPair {
  const tcp = tcpConfig({ ...o.tcp });
  const stack = (n: number) =>
    segmentHost(n, {
      tcp,
      random: new Prng(n),
      mtu: o.mtu,
      ipv6: false,
      checksum: ChecksumCapabilities.NONE,
      synQueueLimit: o.synQueueLimit,
    });
  const a = stack(1);
  const b = stack(2);
  const chimney = createChimney(a, {
    mac: mac("02:00:00:00:00:01"),
    policy: o.policy,
    knobs: o.knobs,
    target: o.target,
  });
  const clock = () => PAIR_NOW;
  const nodeA = new ChimneyNode(
    a,
    clock,
    { transmit: (_ifIndex, f) => pair.toPeer.push(f), event: (e) => pair.onA(e) },
    chimney,
  );
  const nodeB = new ChimneyNode(b, clock, {
    transmit: (_ifIndex, f) => {
      nodeA.input(0, f);
    },
    event: (e) => pair.onB(e),
  });
  const pair: ChimneyPair = {
    a,
    b,
    ...chimney,
    nodeA,
    nodeB,
    toPeer: [],
    onA: () => undefined,
    onB: () => undefined,
  };
  return pair;
}

/**
 * Host A's side alone until it settles: the target's recorded work, A's frames into the target
 * and A's events, the target's frames queued on `toPeer`. True if anything moved (a bench times
 * A's side with this, leaving B's work out).
 */
export function driveHost(p: ChimneyPair): boolean {
  return p.nodeA.settle();
}

/** Moves frames, events and target work between A and B until nothing moves. */
export function settle(p: ChimneyPair): void {
  for (let round = 0; round < 1_000_000; round++) {
    let moved = driveHost(p);
    for (const f of p.toPeer.splice(0)) {
      p.nodeB.input(0, f);
      moved = true;
    }
    if (p.nodeB.settle()) moved = true;
    if (!moved) return;
  }
  assert.fail("the pair did not settle");
}

/** `count` connections from B to A's port 80, as pairs (A's end, B's end). */
export function connectPair(p: ChimneyPair, count: number): [HostConn, HostConn][] {
  p.a.listen(80, undefined, 1 << 16);
  const accepted: HostConn[] = [];
  const opened: HostConn[] = [];
  const onA = p.onA;
  p.onA = (ev) => {
    if (ev.kind !== "accept") return;
    for (let c = p.a.accept(ev.listener); c !== undefined; c = p.a.accept(ev.listener)) accepted.push(c);
  };
  for (let i = 0; i < count; i++) {
    opened.push(p.b.connect(PAIR_NOW, ip("192.0.2.1"), 80));
    if (i === 0 || i % 100 === 99) settle(p);
  }
  settle(p);
  p.onA = onA;
  assert.equal(accepted.length, count, "every connection was accepted");
  return accepted.map((c, i) => [c, opened[i] as HostConn]); // i < count
}

/** A pair with one connection whose peer sends a known pattern. */
export interface PairConn extends ChimneyPair {
  /** A's end. */
  readonly c: HostConn;
  /** B's end. */
  readonly peer: HostConn;
  /** Bytes the peer has sent so far. */
  sent: number;
}

/** The peer's byte at stream offset `i`. */
export const patternAt = (i: number): number => (i * 29 + 11) & 0xff;

/** A pair with one connection from B to A, established and settled. */
export function pairConn(o: ChimneyPairOptions = {}): PairConn {
  const p = chimneyPair(o);
  const [conn] = connectPair(p, 1);
  assert.ok(conn !== undefined);
  return Object.assign(p, { c: conn[0], peer: conn[1], sent: 0 });
}

/** The peer sends `n` more bytes of the pattern. */
export function peerSends(w: PairConn, n: number): void {
  const bytes = Uint8Array.from({ length: n }, (_, k) => patternAt(w.sent + k));
  let at = 0;
  for (let i = 0; at < n && i < 10_000; i++) {
    at += w.b.send(PAIR_NOW, w.peer, bytes.subarray(at));
    settle(w);
  }
  assert.equal(at, n, "the peer sent everything");
  w.sent += n;
}

/** Offloads A's end and waits for the initiate to complete. */
export function offloadConn(w: PairConn): void {
  assert.ok(w.manager.offload(w.c));
  settle(w);
  assert.equal(w.c.phase, "offloaded");
}

/** Terminates A's end; the BufferedData NBLs must be back at the target. */
export function uploadConn(w: PairConn): void {
  assert.ok(w.manager.terminate(w.c));
  settle(w);
  assert.equal(w.c.phase, "host");
  assert.equal(w.target.outstandingReturns, 0, "BufferedData NBLs returned");
}

/** Reads everything by copy into a reused application buffer, checking the pattern from `from`. */
export function readByCopy(w: PairConn, from: number): number {
  const app = new Uint8Array(5000);
  let at = from;
  w.a.configure(PAIR_NOW, w.c, (tcp) => {
    for (let k = tcp.recvInto(app); k > 0; k = tcp.recvInto(app)) {
      for (let i = 0; i < k; i++) if (app[i] !== patternAt(at + i)) assert.fail(`byte ${at + i} differs`);
      at += k;
    }
  });
  settle(w);
  return at;
}
