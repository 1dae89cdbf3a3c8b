/**
 * A one-way bulk transfer between two host stacks over a simulated link, measured in virtual
 * time: how long until the receiver has read every byte, and the sender's loss-recovery
 * counters (timeouts, fast retransmits, SACK recoveries). A pure function of its parameters.
 */
import { segmentHost } from "../../src/sim/segment-host.js";
import { type HostConn, type StackEvent } from "../../src/host/stack.js";
import type { FrameSink } from "../../src/sim/frame-sink.js";
import { buildDuplexLink, type FaultProfile } from "../../src/sim/link.js";
import { SimHost } from "../../src/sim/host-node.js";
import { Prng } from "../../src/sim/prng.js";
import { Scheduler } from "../../src/sim/scheduler.js";
import { tcpConfig, type TcpConfig } from "../../src/tcp/config.js";
import { newTcpStats } from "../../src/tcp/connection.js";
import type { TcpStats } from "../../src/tcp/types.js";
import { Instant } from "../../src/time/instant.js";
import { ip } from "../../src/wire/ip-addr.js";

/** Parameters of one transfer. */
export interface BulkRun {
  readonly seed: number;
  readonly bytes: number;
  readonly profile: FaultProfile;
  readonly tcp?: Partial<TcpConfig> | undefined;
  /** Virtual-time budget in microseconds (default 120 s). */
  readonly limitUs?: number | undefined;
  /** Sees every frame as its sender puts it on the link (before the link's faults). */
  readonly onFrame?: ((now: Instant, from: "a" | "b", frame: Uint8Array) => void) | undefined;
}

/** What was measured. */
export interface BulkOutcome {
  /** Bytes the receiver read. */
  readonly received: number;
  /** Virtual time from connect to the last byte read, microseconds. */
  readonly elapsedUs: number;
  /** Goodput in bits per second of virtual time. */
  readonly goodputBps: number;
  /** The sender's counters, taken when its connection closed or at the end of the run. */
  readonly sender: Readonly<TcpStats>;
  /** The receiver's counters. */
  readonly receiver: Readonly<TcpStats>;
  /** The sender's smoothed RTT at the end, microseconds. */
  readonly srttUs: number | undefined;
}

/** Runs one transfer from host a to host b. */
export function runBulk(p: BulkRun): BulkOutcome {
  const sched = new Scheduler();
  const root = new Prng(p.seed);
  const linkRng = root.fork();
  const tcp = tcpConfig({ ...p.tcp });
  const mk = (name: string, n: number, rng: Prng) =>
    new SimHost(name, segmentHost(n, { tcp, random: rng, ipv6: false }), sched);
  const a = mk("a", 1, root.fork());
  const b = mk("b", 2, root.fork());
  const link = buildDuplexLink(a.port(0), b.port(0), {
    scheduler: sched,
    prng: linkRng,
    profile: { ...p.profile, mtu: 1500, linkHeaderBytes: 14 },
  });
  const tap = (sink: FrameSink, from: "a" | "b"): FrameSink => {
    const seen = p.onFrame;
    return seen === undefined
      ? sink
      : {
          deliver: (now, frame) => {
            seen(now, from, frame);
            sink.deliver(now, frame);
          },
        };
  };
  a.attach(0, tap(link.aToB, "a"));
  b.attach(0, tap(link.bToA, "b"));

  const chunk = 65536;
  const block = new Uint8Array(chunk).fill(0x5a);
  let sent = 0;
  let received = 0;
  let doneAt: number | undefined;
  let senderStats: TcpStats | undefined;
  let receiverStats: TcpStats | undefined;
  let srtt: number | undefined;
  let senderConn: HostConn | undefined;
  let receiverConn: HostConn | undefined;
  const snap = (c: HostConn | undefined): TcpStats | undefined =>
    c?.tcp === undefined ? undefined : { ...c.tcp.stats };

  const write = (conn: HostConn): void => {
    const now = sched.now;
    while (sent < p.bytes) {
      const n = Math.min(chunk, p.bytes - sent);
      const taken = a.stack.send(now, conn, n === chunk ? block : block.subarray(0, n));
      sent += taken;
      if (taken < n) return;
    }
    a.stack.close(now, conn);
  };
  a.onEvent = (ev: StackEvent) => {
    if (ev.kind !== "conn") return;
    senderConn = ev.conn;
    const e = ev.event;
    if (e.kind === "connected" || e.kind === "writable") {
      if (sent < p.bytes) write(ev.conn);
    } else if (e.kind === "closed") {
      senderStats ??= snap(ev.conn);
      srtt ??= ev.conn.tcp?.srtt;
    }
    const s = snap(ev.conn);
    if (s !== undefined) senderStats = s;
    if (ev.conn.tcp?.srtt !== undefined) srtt = ev.conn.tcp.srtt;
  };
  b.onEvent = (ev: StackEvent) => {
    if (ev.kind === "accept") {
      receiverConn = b.stack.accept(ev.listener);
      return;
    }
    if (ev.kind !== "conn") return;
    receiverConn = ev.conn;
    const s = snap(ev.conn);
    if (s !== undefined) receiverStats = s;
    for (let d = b.stack.recv(sched.now, ev.conn); d !== undefined; d = b.stack.recv(sched.now, ev.conn)) {
      received += d.length;
      if (received === p.bytes) doneAt = sched.now;
    }
  };

  b.stack.listen(80);
  a.stack.connect(Instant.ZERO, ip("192.0.2.2"), 80);
  a.pump();
  const limit = Instant.fromMicros(p.limitUs ?? 120_000_000);
  for (let n = 0; n < 50_000_000 && doneAt === undefined; n++) {
    const next = sched.nextAt();
    if (next === undefined || next > limit) break;
    sched.step();
  }
  senderStats = snap(senderConn) ?? senderStats;
  receiverStats = snap(receiverConn) ?? receiverStats;
  const elapsedUs = doneAt ?? sched.now;
  const empty = newTcpStats;
  return {
    received,
    elapsedUs,
    goodputBps: elapsedUs > 0 ? (received * 8 * 1_000_000) / elapsedUs : 0,
    sender: senderStats ?? empty(),
    receiver: receiverStats ?? empty(),
    srttUs: srtt ?? senderConn?.tcp?.srtt,
  };
}
