/**
 * Kernel hand-off (needs root and the repair addon; skipped with a line otherwise). One idle
 * connection between a peer namespace and the host namespace whose kernel owns our address
 * (src/live/peer-ns.ts), moved in this process between the kernel and our host stack
 * (src/live/kernel-move.ts):
 * - Latency of a move (freeze, export, import, steering) with 0 B, 64 KiB and 1 MiB queued
 *   (received, not read by the application), each direction, as a ratio to a kernel-to-kernel
 *   move through our binding in the same run (export, silent close, import: no steering). Medians.
 * - The stall the peer sees after a move: from the end of the move to the arrival at the peer of
 *   the first byte the application writes after it, with nothing in flight at the move (target:
 *   under 2x the RTT the peer's kernel measures; the move itself is the latency above, and on a
 *   veth pair even a kernel-to-kernel move takes about 2x RTT, so the figure from the move's start
 *   is printed beside it), and with 64 KiB just written and unacknowledged at the move (from the
 *   move's start, minus the time the same writes take without a move). Into the kernel, data in
 *   flight waits for the kernel's initial RTO (1 s) unless an ACK comes. The peer's ACKs that
 *   reach our device after the move go on to the kernel socket (`KernelForwarder`, as a handoff
 *   session does), and `moveToKernel` leaves repair mode with a window probe; the figure without
 *   the probe is printed beside it. (The probe alone does not do: it carries no data, so the
 *   peer answers it at most once per 500 ms, net.ipv4.tcp_invalid_ratelimit.)
 */
import { once } from "node:events";
import { closeSync, existsSync } from "node:fs";
import type net from "node:net";
import {
  exportKernelTcp,
  importKernelTcp,
  kernelQueues,
  loadRepairAddon,
  repairAddonPath,
} from "../src/device/repair.js";
import type { HostConn } from "../src/host/stack.js";
import { KernelForwarder, type KernelSide, moveFromKernel, moveToKernel } from "../src/live/kernel-move.js";
import { type LiveHost, startLiveHost } from "../src/live/live-host.js";
import {
  connectIn,
  joinPeerNamespace,
  kernelSocket,
  listenIn,
  OURS,
  OUTER,
  PEER,
  type PeerTopology,
} from "../src/live/peer-ns.js";
import { openNetns, type Steering } from "../src/live/steering.js";
import { goal } from "./goal.js";

const TOPIC = "handoff";
const ROUNDS = 7;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const ms = (x: number): string => `${x.toFixed(2)} ms`;

/** The connection and where it is. */
interface Conn {
  host: LiveHost;
  topo: PeerTopology;
  side: KernelSide;
  peer: net.Socket;
  /** Bytes the peer received, and when each batch came. */
  atPeer: { bytes: number; last: number };
  kernel: net.Socket | undefined;
  ours: { conn: HostConn; steering: Steering } | undefined;
  /** Hands frames that still reach our device after a move into the kernel on to its socket. */
  forwarder: KernelForwarder | undefined;
}

async function open(): Promise<Conn> {
  const host = startLiveHost({
    tag: "hbench",
    offload: "off",
    kernelAddresses: false,
    tcp: { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 },
  });
  const topo = joinPeerNamespace(host, "hbench");
  const server = await listenIn(topo.peerNs, PEER, 5090);
  const accepted = once(server, "connection") as Promise<[net.Socket]>;
  // Paused from the start: the application reads nothing, what the peer sends stays queued.
  const kernel = connectIn(
    topo.hostNs,
    { address: OURS, port: 0 },
    { address: PEER, port: 5090 },
    { paused: true },
  );
  const [peer] = await accepted;
  server.close();
  const atPeer = { bytes: 0, last: 0 };
  peer.on("data", (d: Buffer) => {
    atPeer.bytes += d.length;
    atPeer.last = performance.now();
  });
  return {
    host,
    topo,
    side: { ns: topo.hostNs, outer: OUTER, tap: topo.tap, pref: 10 },
    peer,
    atPeer,
    kernel,
    ours: undefined,
    forwarder: undefined,
  };
}

function kernelFd(s: net.Socket): number {
  return (s as unknown as { _handle: { fd: number } })._handle.fd;
}

/** Throws unless a move carried `want` unread bytes (when given). */
function carried(what: string, got: number, want: number | undefined): void {
  if (want !== undefined && got !== want) throw new Error(`${what} carried ${got} unread bytes, not ${want}`);
}

async function toUs(c: Conn, want?: number): Promise<number> {
  const sock = c.kernel;
  if (sock === undefined) throw new Error("not on the kernel");
  unforward(c);
  const m = await moveFromKernel(c.side, c.host.stack, c.host.driver, sock);
  carried("from-kernel", m.record.recvQueue.length, want);
  if (process.env["CHIMNEY_BENCH_VERBOSE"] !== undefined)
    console.log(`  from-kernel ${m.record.recvQueue.length} B: ${JSON.stringify(m.timings)}`);
  c.kernel = undefined;
  c.ours = { conn: m.conn, steering: m.steering };
  return m.timings.totalMs;
}

function unforward(c: Conn): void {
  c.host.divert(undefined);
  c.forwarder?.close();
  c.forwarder = undefined;
}

function toKernel(c: Conn, probe = true, want?: number): number {
  if (c.ours === undefined) throw new Error("not on our stack");
  const m = moveToKernel(c.side, c.host.stack, c.ours.conn, c.host.driver, c.ours.steering, { probe });
  carried("to-kernel", m.record.recvQueue.length, want);
  // As a handoff session does: the peer's ACKs already on their way reach the kernel socket.
  c.forwarder = new KernelForwarder(c.side, m.record);
  c.host.divert(c.forwarder.take);
  c.ours = undefined;
  c.kernel = kernelSocket(m.fd, true);
  return m.timings.totalMs;
}

/**
 * Kernel to kernel through our binding: export, close silently, import (same namespace; no
 * steering: nothing else holds the 4-tuple). Node read nothing ahead (the socket is paused).
 */
function kernelToKernel(c: Conn, want: number): number {
  const sock = c.kernel;
  if (sock === undefined) throw new Error("not on the kernel");
  if (sock.readableLength > 0) throw new Error("Node read ahead: the queue would not all move");
  const addon = loadRepairAddon();
  const nsFd = openNetns(c.side.ns);
  try {
    const t0 = performance.now();
    const rec = exportKernelTcp(kernelFd(sock), addon);
    const t1 = performance.now();
    carried("kernel-to-kernel", rec.recvQueue.length, want);
    sock.destroy(); // in repair mode: silent
    const t2 = performance.now();
    const fd = importKernelTcp(rec, { netns: nsFd }, addon);
    const t = performance.now() - t0;
    if (process.env["CHIMNEY_BENCH_VERBOSE"] !== undefined)
      console.log(
        `  kernel-to-kernel ${rec.recvQueue.length} B: export ${ms(t1 - t0)}, close ${ms(t2 - t1)}, import ${ms(t - (t2 - t0))}`,
      );
    c.kernel = kernelSocket(fd, true);
    return t;
  } finally {
    closeSync(nsFd);
  }
}

/** Fills the application's receive queue (on the kernel) to `bytes` unread. */
async function queue(c: Conn, bytes: number): Promise<void> {
  const sock = c.kernel;
  if (sock === undefined) throw new Error("not on the kernel");
  const fd = kernelFd(sock);
  const have = () => kernelQueues(fd).unread + sock.readableLength;
  if (have() < bytes) c.peer.write(Buffer.alloc(bytes - have(), 0x5a));
  const due = Date.now() + 5000;
  while (have() < bytes) {
    if (Date.now() > due) throw new Error(`only ${have()} of ${bytes} bytes queued`);
    await sleep(1);
  }
  if (have() !== bytes) throw new Error(`${have()} bytes queued, not ${bytes}`);
}

/** Reads (discards) what the application has queued on our stack. */
function drainQueue(c: Conn): void {
  if (c.ours !== undefined) {
    const { stack, driver } = c.host;
    const conn = c.ours.conn;
    for (let b = stack.recv(driver.now(), conn); b !== undefined; b = stack.recv(driver.now(), conn));
    driver.flush();
    return;
  }
  throw new Error("drainQueue: the connection is not on our stack");
}

/** The application writes `data` wherever the connection is. */
function write(c: Conn, data: Buffer): void {
  if (c.ours !== undefined) {
    const { stack, driver } = c.host;
    if (stack.send(driver.now(), c.ours.conn, data) !== data.length)
      throw new Error("our send buffer is full");
    driver.flush();
  } else c.kernel?.write(data);
}

/** Nothing unacknowledged on the application's side. */
async function quiet(c: Conn): Promise<void> {
  const due = Date.now() + 5000;
  for (;;) {
    const k = c.kernel;
    const left =
      c.ours !== undefined
        ? (c.ours.conn.tcp?.sendQueued ?? 0)
        : k === undefined
          ? 0
          : kernelQueues(kernelFd(k)).queued + k.writableLength;
    if (left === 0) return;
    if (Date.now() > due) throw new Error(`${left} bytes still unacknowledged`);
    await sleep(1);
  }
}

/** Waits until the peer holds `total` bytes; returns when the last of them came. */
async function peerHas(c: Conn, total: number, timeoutMs = 10_000): Promise<number> {
  const due = Date.now() + timeoutMs;
  while (c.atPeer.bytes < total) {
    if (Date.now() > due) throw new Error(`the peer has ${c.atPeer.bytes} of ${total} bytes`);
    await new Promise<void>((r) => setImmediate(r));
  }
  return c.atPeer.last;
}

/**
 * One stall: optionally `inFlight` bytes written (and let out: one event-loop turn, so the
 * peer's ACKs are on their way during the move), the move, the 1 KiB marker right after.
 * Milliseconds until the peer has everything, from the move's start and from its end.
 */
async function stall(
  c: Conn,
  dir: "to-kernel" | "from-kernel" | "none",
  inFlight: number,
  probe = true,
): Promise<{ fromStart: number; fromEnd: number }> {
  await quiet(c);
  const base = c.atPeer.bytes;
  if (inFlight > 0) {
    write(c, Buffer.alloc(inFlight, 1));
    await new Promise<void>((r) => setImmediate(r));
  }
  const t0 = performance.now();
  if (dir === "to-kernel") toKernel(c, probe);
  else if (dir === "from-kernel") await toUs(c);
  const t1 = performance.now();
  write(c, Buffer.alloc(1024, 2));
  const t2 = await peerHas(c, base + inFlight + 1024);
  return { fromStart: t2 - t0, fromEnd: t2 - t1 };
}

function peerRttMs(c: Conn): number {
  return loadRepairAddon().tcpInfo(kernelFd(c.peer)).rtt / 1000;
}

export async function run(filter: RegExp | undefined): Promise<void> {
  if (filter !== undefined && !filter.test(TOPIC)) return;
  if (process.platform !== "linux" || process.getuid?.() !== 0 || !existsSync(repairAddonPath())) {
    console.log("handoff: skipped (needs root on Linux and the repair addon: npm run build:native)");
    return;
  }
  const c = await open();
  try {
    // Warm up: the first moves load code paths and the addon.
    await toUs(c);
    toKernel(c);
    for (const [name, bytes] of [
      ["0B", 0],
      ["64KiB", 64 * 1024],
      ["1MiB", 1 << 20],
    ] as const) {
      await queue(c, bytes);
      const k2k: number[] = [];
      const from: number[] = [];
      const to: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        k2k.push(kernelToKernel(c, bytes));
        from.push(await toUs(c, bytes));
        to.push(toKernel(c, true, bytes));
        await sleep(2);
      }
      const ref = median(k2k);
      const line = (dir: string, xs: number[]) =>
        goal(
          TOPIC,
          `${dir}-${name}`,
          `${ms(median(xs))} = ${(median(xs) / ref).toFixed(1)}x kernel-to-kernel (${ms(ref)})`,
          "report",
          true,
        );
      line("to-kernel", to);
      line("from-kernel", from);
      // Read the queue on our stack: a new kernel socket then starts paused, with nothing read ahead.
      await toUs(c);
      drainQueue(c);
      toKernel(c);
    }
    // Stalls. The connection is on the kernel; the moves alternate.
    const rtt = peerRttMs(c);
    type Stall = { fromStart: number; fromEnd: number };
    const runs: Record<string, Stall[]> = {
      base: [],
      idleTo: [],
      idleFrom: [],
      busyTo: [],
      busyFrom: [],
      noProbe: [],
    };
    for (let i = 0; i < ROUNDS; i++) {
      runs["base"]?.push(await stall(c, "none", 64 * 1024));
      runs["idleFrom"]?.push(await stall(c, "from-kernel", 0));
      runs["idleTo"]?.push(await stall(c, "to-kernel", 0));
      runs["busyFrom"]?.push(await stall(c, "from-kernel", 64 * 1024));
      runs["busyTo"]?.push(await stall(c, "to-kernel", 64 * 1024));
      if (i < 3) {
        await toUs(c);
        runs["noProbe"]?.push(await stall(c, "to-kernel", 64 * 1024, false));
      }
    }
    const med = (k: string, f: keyof Stall = "fromStart") => median((runs[k] ?? []).map((x) => x[f]));
    const base = med("base");
    for (const [name, k] of [
      ["stall-idle-to-kernel", "idleTo"],
      ["stall-idle-from-kernel", "idleFrom"],
    ] as const) {
      const x = med(k, "fromEnd");
      goal(
        TOPIC,
        name,
        `${ms(x)} after the move's end = ${(x / rtt).toFixed(1)}x RTT (${ms(rtt)}); ${ms(med(k))} from its start`,
        "< 2x RTT after the move",
        x < 2 * rtt,
      );
    }
    goal(
      TOPIC,
      "stall-inflight-to-kernel",
      `${ms(med("busyTo") - base)} beyond the ${ms(base)} the writes take without a move (with the window probe; without it ${ms(med("noProbe") - base)})`,
      "report",
      true,
    );
    goal(
      TOPIC,
      "stall-inflight-from-kernel",
      `${ms(med("busyFrom") - base)} beyond the ${ms(base)} the writes take without a move`,
      "report",
      true,
    );
  } finally {
    c.peer.destroy();
    c.kernel?.destroy();
    c.host.close();
    c.topo.remove();
  }
}
