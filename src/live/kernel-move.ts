/**
 * Moving a live connection between our host stack and the Linux kernel of the namespace that
 * owns its address, all from this process and synchronously (no helper process, no record
 * serialized): the kernel socket is created inside the namespace by the repair addon
 * (`socketIn`, setns for one call), the steering rule is added and removed over rtnetlink
 * (steering.ts), and the kernel socket is used here as `new net.Socket({ fd })`.
 *
 * `moveToKernel`: freeze our connection (`handOffToKernel`), import its record into a kernel
 * socket still in repair mode, remove the steering, then leave repair mode with a window probe
 * (the peer answers with an ACK at once, so data we had in flight is not resent after the
 * kernel's initial RTO when the peer's ACKs were dropped during the move).
 *
 * `moveFromKernel`: what Node still buffers for writing goes into the kernel first (its send
 * buffer grows to take it; asynchronous), then, in one synchronous step: reserve the 4-tuple,
 * steer it to our stack, take what Node read ahead of the application (`readableLength`),
 * freeze and export the kernel socket, adopt it (the read-ahead bytes first) and close the
 * kernel socket silently. If our stack refuses the record, the kernel socket leaves repair mode
 * with its state intact, the steering goes, and the read-ahead bytes go back into the stream.
 *
 * `LOST_TO_KERNEL` / `LOST_FROM_KERNEL` name what each direction cannot carry
 * (src/device/kernel-state.ts has the details).
 */
import type net from "node:net";
import {
  exportKernelTcp,
  importKernelTcp,
  leaveRepair,
  loadRepairAddon,
  type RepairAddon,
  RepairError,
  repairCall,
  SOCKOPT,
} from "../device/repair.js";
import type { HostConn, HostStack } from "../host/stack.js";
import type { TcpSnapshot } from "../tcp/types.js";
import type { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { internetChecksum, ipv4PseudoHeaderSum } from "../wire/checksum.js";
import { ip, ipToString } from "../wire/ip-addr.js";
import { adoptFromKernel } from "./adopt.js";
import { openNetns, type Steering, steerConnection } from "./steering.js";
import { handOffToKernel } from "./terminate.js";
import type { KernelTcpRecord } from "../device/kernel-state.js";
import { closeSync } from "node:fs";

/** What our engine keeps and the kernel cannot take (TCP_REPAIR has no way in). */
export const LOST_TO_KERNEL: readonly string[] = [
  "cwnd/ssthresh",
  "SRTT/RTTVAR/RTO",
  "timers",
  "SACK scoreboard",
  "TS.Recent",
];
/** What the kernel keeps and does not export (TCP_INFO carries cwnd, ssthresh, SRTT, RTO). */
export const LOST_FROM_KERNEL: readonly string[] = ["timers", "SACK scoreboard", "TS.Recent", "ISS/IRS"];

/** The namespace side of a move: the namespace that owns the address, its devices. */
export interface KernelSide {
  /** The namespace's name (`ip netns`). */
  readonly ns: string;
  /** Its device toward the peer (carries the address); our stack's TAP device. */
  readonly outer: string;
  readonly tap: string;
  /** Steering rule number for the moves (2..65535; one connection at a time per number). */
  readonly pref: number;
}

/** Where our stack's time comes from and how its output is pushed out (a `RealTimeDriver`). */
export interface StackClock {
  now(): Instant;
  flush(): void;
}

const since = (t: number): number => performance.now() - t;

/**
 * Milliseconds the timestamp clock is moved ahead at a move into the kernel, beyond the time the
 * move took (our stack stamps a segment with the time it is made).
 */
export const TS_MARGIN_MS = 10;

/**
 * The same margin at a move out of the kernel. The kernel stamps a pure ACK with its pacing
 * departure time (`tcp_wstamp_ns`), which runs ahead of the clock `TCP_TIMESTAMP` reads by what
 * it sent last over its pacing rate: measured 12 and 56 ms ahead on a veth. Our first flight
 * below the peer's TS.Recent is dropped whole by its PAWS, and the data then waits for a
 * retransmission timeout (3 s in a `chimney handoff` run). A jump ahead costs nothing; what a
 * larger lead still leaves, our engine heals on the peer's first echo (`tsClockCatchUps`).
 */
export const KERNEL_TS_LEAD_MS = 250;

/**
 * `record` with its timestamp clock advanced by the milliseconds since `since` (when the clock
 * was read: the move's freeze) plus `marginMs`. The new owner's first TSval must not be below
 * the last one the old owner sent: the peer's PAWS drops such segments (a move that took 49 ms
 * left the clock 42 ms behind, and the peer dropped every segment for that long). A jump ahead
 * is harmless.
 */
function continueClock<R extends KernelTcpRecord>(record: R, since: number, marginMs: number): R {
  if (!record.timestamps) return record;
  const ahead = Math.ceil(performance.now() - since) + marginMs;
  return { ...record, timestamp: (record.timestamp + ahead) >>> 0 };
}

/** What `moveToKernel` returns; the caller owns `fd` (wrap it: `new net.Socket({ fd })`). */
export interface ToKernelMove {
  readonly fd: number;
  readonly record: KernelTcpRecord;
  readonly snapshot: TcpSnapshot;
  /** Milliseconds: hand-off (freeze and export of our engine), kernel import, unsteer, total. */
  readonly timings: {
    readonly freezeMs: number;
    readonly importMs: number;
    readonly unsteerMs: number;
    readonly totalMs: number;
  };
}

/**
 * The kernel refused a connection moving into it (`importKernelTcp` failed); `conn` is the same
 * connection adopted back by our stack from its snapshot, its packets still steered to us.
 */
export class MoveRefusedError extends RepairError {
  readonly conn: HostConn;
  constructor(refusal: RepairError, conn: HostConn) {
    super(refusal.call, refusal.errno, refusal.errnoName, `the kernel refused the move; ${refusal.message}`, {
      cause: refusal,
    });
    this.conn = conn;
  }
}

/**
 * Moves `c` (a connection of `stack`, its packets steered to our stack by `steering`) into a
 * kernel socket of `side.ns`. Synchronous. Frames of the connection that still reach our device
 * (the peer's ACKs for data in flight at the move) belong to the kernel socket now: hand them on
 * with `new KernelForwarder(side, move.record)` and `LiveHost.divert(forwarder.take)`, or the
 * kernel, missing those ACKs, sends nothing more until its initial RTO (1 s; the window probe
 * does not always draw an answer: the peer rate-limits answers to out-of-window segments without
 * data). Call `stack.releaseHandOff(c)` later, once the frames our stack had queued are read
 * (until then they are dropped silently, not answered).
 * Throws `UsageError` when `c` is not an ESTABLISHED connection on our stack (it stays ours),
 * `MoveRefusedError` when the kernel refuses the record (the connection is adopted back: the
 * error's `conn`).
 */
export function moveToKernel(
  side: KernelSide,
  stack: HostStack,
  c: HostConn,
  clock: StackClock,
  steering: Steering,
  opts: {
    /** Leave repair mode with a window probe (default true; false only to measure its effect). */
    readonly probe?: boolean;
    readonly addon?: RepairAddon;
  } = {},
): ToKernelMove {
  const addon = opts.addon ?? loadRepairAddon();
  // Refused before anything happens: the kernel takes no FIN (handOffToKernel would refuse
  // one only once the connection left our stack).
  if (c.phase !== "host" || c.tcp?.state !== "ESTABLISHED")
    throw new UsageError(
      `moveToKernel: ${c.toString()} is ${c.phase === "host" ? (c.tcp?.state ?? "closed") : c.phase}; only ESTABLISHED connections of our stack move into the kernel`,
    );
  const t0 = performance.now();
  const { record, snapshot } = handOffToKernel(stack, c, clock.now());
  clock.flush(); // what the engine owed goes out now
  const freezeMs = since(t0);
  const t1 = performance.now();
  let nsFd: number | undefined;
  let fd: number;
  try {
    nsFd = openNetns(side.ns);
    fd = importKernelTcp(continueClock(record, t0, TS_MARGIN_MS), { netns: nsFd, keepRepair: true }, addon);
  } catch (e) {
    if (!(e instanceof RepairError)) throw e;
    const back = stack.adopt(clock.now(), snapshot, { localAddr: c.localAddr, remoteAddr: c.remoteAddr });
    clock.flush();
    throw new MoveRefusedError(e, back);
  } finally {
    if (nsFd !== undefined) closeSync(nsFd);
  }
  const importMs = since(t1);
  const t2 = performance.now();
  steering.remove();
  leaveRepair(fd, opts.probe ?? true, addon);
  const unsteerMs = since(t2);
  return { fd, record, snapshot, timings: { freezeMs, importMs, unsteerMs, totalMs: since(t0) } };
}

/** What `moveFromKernel` returns. */
export interface FromKernelMove {
  readonly conn: HostConn;
  readonly record: KernelTcpRecord;
  readonly snapshot: TcpSnapshot;
  /** The steering that sends the connection's packets to our stack (`moveToKernel` removes it). */
  readonly steering: Steering;
  /** Bytes Node had read ahead of the application (now the first bytes our application reads). */
  readonly readAhead: number;
  /** Bytes Node held for writing at the call (they went through the kernel's send queue). */
  readonly writeBehind: number;
  /**
   * Milliseconds: Node's pending writes into the kernel (before the move proper), then the
   * synchronous move: steer, freeze (read-ahead and export), import (adopt), total (of the move).
   */
  readonly timings: {
    readonly drainMs: number;
    readonly steerMs: number;
    readonly freezeMs: number;
    readonly importMs: number;
    readonly totalMs: number;
  };
}

function socketFd(sock: net.Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0)
    throw new UsageError("moveFromKernel: the socket has no open descriptor (not connected, or closed)");
  return fd;
}

/** Waits until Node has written everything it holds for `sock` into the kernel. */
async function drainWrites(
  sock: net.Socket,
  fd: number,
  addon: RepairAddon,
  timeoutMs: number,
): Promise<void> {
  while (sock.writableCorked > 0) sock.uncork(); // corked writes were written: they go too
  if (sock.writableLength === 0) return;
  // The kernel's send buffer grows to take it all now (the kernel reports twice what is set).
  const queued = addon.ioctlInt(fd, 0x5411); // SIOCOUTQ
  const want = queued + sock.writableLength + 65536;
  addon.setInt(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_SNDBUFFORCE, want);
  const due = Date.now() + timeoutMs;
  while (sock.writableLength > 0) {
    if (Date.now() > due)
      throw new UsageError(
        `moveFromKernel: Node still holds ${sock.writableLength} bytes to write after ${timeoutMs} ms`,
      );
    await new Promise<void>((r) => setImmediate(r));
  }
}

/**
 * Moves the kernel socket behind `sock` (connected, in `side.ns`, its application no longer
 * writing) into `stack`. Node's buffered bytes move too: its pending writes first enter the
 * kernel (asynchronously, up to `drainTimeoutMs`, default 2 s), its read-ahead becomes the first
 * bytes our application reads (pause the socket before the call: what it reads meanwhile stays
 * there; its 'data' listeners are removed, and given back if the move fails). `sock` is
 * destroyed (silently: no FIN, no RST).
 * Throws `UsageError` if the socket is not open, Node's writes do not drain, or the 4-tuple is
 * ours already; `RepairError` if the kernel refuses the export; our stack's errors if it refuses
 * the record: in all of these the kernel socket keeps the connection.
 */
export async function moveFromKernel(
  side: KernelSide,
  stack: HostStack,
  clock: StackClock,
  sock: net.Socket,
  opts: { readonly drainTimeoutMs?: number; readonly addon?: RepairAddon } = {},
): Promise<FromKernelMove> {
  const addon = opts.addon ?? loadRepairAddon();
  const fd = socketFd(sock);
  const writeBehind = sock.writableLength;
  const td = performance.now();
  await drainWrites(sock, fd, addon, opts.drainTimeoutMs ?? 2000);
  const drainMs = since(td);
  // From here on, synchronous: no event-loop turn between the steering and the adoption.
  const t0 = performance.now();
  const local = addon.localAddress(fd);
  const remote = addon.remoteAddress(fd);
  stack.reserveForAdoption(ip(local.address), local.port, ip(remote.address), remote.port);
  const steering = steerConnection(
    side.ns,
    side.outer,
    side.tap,
    {
      localAddress: local.address,
      localPort: local.port,
      remoteAddress: remote.address,
      remotePort: remote.port,
    },
    side.pref,
    addon,
  );
  const steerMs = since(t0);
  const t1 = performance.now();
  // The application's 'data' listeners go first: `read()` would hand them what it returns.
  sock.pause();
  const listeners = sock.listeners("data") as ((chunk: Buffer) => void)[];
  sock.removeAllListeners("data");
  // If the move fails, the socket goes back to its application as it was.
  const restore = (readAhead: Buffer) => {
    if (readAhead.length > 0) sock.unshift(readAhead);
    for (const l of listeners) sock.on("data", l);
  };
  const ahead: Buffer[] = [];
  for (let b = sock.read() as Buffer | null; b !== null; b = sock.read() as Buffer | null) ahead.push(b);
  const readAhead = Buffer.concat(ahead);
  let exported: ReturnType<typeof exportKernelTcp>;
  const tExport = performance.now();
  try {
    exported = exportKernelTcp(fd, addon);
  } catch (e) {
    steering.remove();
    restore(readAhead);
    throw e;
  }
  const record: KernelTcpRecord & typeof exported = {
    ...exported,
    recvQueue: readAhead.length === 0 ? exported.recvQueue : Buffer.concat([readAhead, exported.recvQueue]),
  };
  const freezeMs = since(t1);
  const t2 = performance.now();
  let adopted: ReturnType<typeof adoptFromKernel>;
  try {
    adopted = adoptFromKernel(stack, clock.now(), continueClock(record, tExport, KERNEL_TS_LEAD_MS));
  } catch (e) {
    // The kernel keeps it: out of repair mode (no probe: nothing was lost), packets back to it.
    leaveRepair(fd, false, addon);
    steering.remove();
    restore(readAhead);
    throw e;
  }
  // Repair mode is on: closing the descriptor sends nothing. The steering stays: the 4-tuple's
  // packets are ours from now on.
  sock.destroy();
  clock.flush();
  const importMs = since(t2);
  return {
    conn: adopted.conn,
    steering,
    record,
    snapshot: adopted.snapshot,
    readAhead: readAhead.length,
    writeBehind,
    timings: { drainMs, steerMs, freezeMs, importMs, totalMs: since(t0) },
  };
}

/**
 * Hands the namespace's kernel the frames of one connection that still reach our TAP device
 * after the connection moved there (queued at the device during the move, or sent by the peer
 * before the steering went): `take(frame)` (for `LiveHost.divert`) sends the IPv4 packet of a
 * frame of `record`'s 4-tuple, peer to us, into the namespace's own stack through a raw socket,
 * and says true; other frames are not its business (false). Without it our stack drops them
 * silently (handed off) and the peer sends them again after its RTO.
 */
export class KernelForwarder {
  readonly #fd: number = 0;
  readonly #addon: RepairAddon;
  readonly #src: Uint8Array;
  readonly #dst: Uint8Array;
  readonly #sport: number = 0;
  readonly #dport: number = 0;
  #closed = false;
  #swallow = false;
  /** Packets handed to the kernel so far. */
  forwarded = 0;
  /** Packets of the connection taken and dropped after `swallow`. */
  swallowed = 0;

  constructor(side: KernelSide, record: KernelTcpRecord, addon: RepairAddon = loadRepairAddon()) {
    if (record.family !== 4) throw new UsageError("KernelForwarder: IPv4 connections only");
    this.#addon = addon;
    this.#src = ip(record.remote.address);
    this.#dst = ip(record.local.address);
    this.#sport = record.remote.port;
    this.#dport = record.local.port;
    const nsFd = openNetns(side.ns);
    try {
      this.#fd = repairCall("socket(SOCK_RAW)", () => addon.rawSocketIn(nsFd));
    } finally {
      closeSync(nsFd);
    }
  }

  /** See the class comment. */
  readonly take = (f: Uint8Array): boolean => {
    if (this.#closed || f.length < 54 || f[12] !== 0x08 || f[13] !== 0x00 || f[23] !== 6) return false;
    for (let i = 0; i < 4; i++) if (f[26 + i] !== this.#src[i] || f[30 + i] !== this.#dst[i]) return false;
    const t = 14 + ((f[14] ?? 0) & 0x0f) * 4;
    if ((((f[t] ?? 0) << 8) | (f[t + 1] ?? 0)) !== this.#sport) return false;
    if ((((f[t + 2] ?? 0) << 8) | (f[t + 3] ?? 0)) !== this.#dport) return false;
    if (this.#swallow) {
      this.swallowed++;
      return true;
    }
    const len = ((f[16] ?? 0) << 8) | (f[17] ?? 0);
    // A copy, with its timestamp option blanked: see `withoutTimestamp`.
    const packet = withoutTimestamp(Buffer.from(f.subarray(14, 14 + Math.min(len, f.length - 14))));
    try {
      this.#addon.sendIp(this.#fd, packet);
      this.forwarded++;
    } catch {
      // dropped, as our stack would have: the peer sends it again
    }
    return true;
  };

  /**
   * From now on the connection's frames are taken and dropped, not handed on: the kernel socket
   * has every byte they carry and is closing (handed to a closed socket, each would draw an RST).
   */
  swallow(): void {
    this.#swallow = true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#addon.close(this.#fd);
  }
}

/**
 * `packet` (IPv4 + TCP, modified in place and returned) with its TCP timestamp option replaced by
 * NOPs and its checksum recomputed. A frame forwarded to the kernel after the move was sent by
 * the peer before frames that reached the kernel directly: its TSval is older than the socket's
 * TS.Recent by then, and PAWS would drop it (1,282 of 1,693 forwarded in one run). Without the
 * option no PAWS check applies; the segment's sequence numbers still place it exactly.
 */
export function withoutTimestamp(packet: Buffer): Buffer {
  const ihl = ((packet[0] ?? 0) & 0x0f) * 4;
  const tcpLen = packet.length - ihl;
  const dataOff = ((packet[ihl + 12] ?? 0) >> 4) * 4;
  if (tcpLen < 20 || dataOff < 20 || dataOff > tcpLen) return packet;
  let changed = false;
  for (let i = ihl + 20; i < ihl + dataOff; ) {
    const kind = packet[i] ?? 0;
    if (kind === 0) break; // end of options
    if (kind === 1) {
      i++;
      continue;
    }
    const optLen = packet[i + 1] ?? 0;
    if (optLen < 2 || i + optLen > ihl + dataOff) break;
    if (kind === 8) {
      packet.fill(1, i, i + optLen);
      changed = true;
    }
    i += optLen;
  }
  if (!changed) return packet;
  packet.writeUInt16BE(0, ihl + 16);
  const pseudo = ipv4PseudoHeaderSum(packet.subarray(12, 16), packet.subarray(16, 20), 6, tcpLen);
  packet.writeUInt16BE(internetChecksum(packet, ihl, packet.length, pseudo), ihl + 16);
  return packet;
}

/** `ip:port` of a connection, for timelines. */
export function connLabel(c: HostConn): string {
  return `${ipToString(c.localAddr)}:${c.localPort} <-> ${ipToString(c.remoteAddr)}:${c.remotePort}`;
}
