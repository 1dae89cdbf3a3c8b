/**
 * Moving an established TCP connection out of and into the Linux kernel with TCP_REPAIR
 * (native/repair.c). `exportKernelTcp(fd)` freezes a kernel socket in repair mode and reads its
 * whole state (sequence numbers, both queues, options, windows, timestamp clock, TCP_INFO);
 * `importKernelTcp(state)` builds a new, connected kernel socket from that record without a
 * packet on the wire; `closeSilently(fd)` closes a socket in repair mode (no FIN, no RST).
 *
 * Needs CAP_NET_ADMIN in the socket's network namespace. Only ESTABLISHED sockets move (FIN
 * states need a forged FIN; TIME_WAIT, SYN_RECV and LISTEN cannot be restored). The kernel takes
 * no cwnd, ssthresh, RTT, RTO, timers, SACK scoreboard, ECN state or TsRecent: an imported socket
 * starts with cwnd 10 and the initial RTO, and its sent-but-unacknowledged data waits for that
 * RTO before it is sent again. `state.info` (TCP_INFO) keeps what the kernel knew, for the other
 * direction.
 *
 * Every failed system call throws `RepairError` (code `ERR_REPAIR`) naming the call and errno.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { StackError } from "../util/errors.js";
import type {
  KernelTcpExport,
  KernelTcpInfo,
  KernelTcpRecord,
  RepairWindow,
  SocketAddress,
} from "./kernel-state.js";
import { NativeAddonMissingError } from "./native.js";

export type { KernelTcpExport, KernelTcpInfo, KernelTcpRecord, RepairWindow, SocketAddress };

/** A repair call failed (or the socket cannot be moved); `errnoName`/`errno` say why. */
export class RepairError extends StackError {
  readonly code = "ERR_REPAIR";
  /** The failing call, e.g. `setsockopt(TCP_REPAIR_WINDOW)`. */
  readonly call: string;
  /** The errno number (0 when the refusal is ours, not the kernel's). */
  readonly errno: number = 0;
  /** The errno name, e.g. `EINVAL`. */
  readonly errnoName: string;
  constructor(call: string, errno: number, errnoName: string, message: string, options?: ErrorOptions) {
    super(`${call}: ${errnoName}: ${message}`, options);
    this.call = call;
    this.errno = errno;
    this.errnoName = errnoName;
  }
}

// Linux include/uapi/linux/tcp.h and asm-generic/socket.h, sockios.h.
const IPPROTO_TCP = 6;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const TCP_MAXSEG = 2;
const TCP_REPAIR = 19;
const TCP_REPAIR_QUEUE = 20;
const TCP_QUEUE_SEQ = 21;
const TCP_TIMESTAMP = 24;
const TCP_REPAIR_ON = 1;
/** Off; the kernel sends a window probe. */
const TCP_REPAIR_OFF = 0;
/** Off without the window probe that 0 sends. */
const TCP_REPAIR_OFF_NO_WP = -1;
const TCP_NO_QUEUE = 0;
const TCP_RECV_QUEUE = 1;
const TCP_SEND_QUEUE = 2;
const TCPOPT_MAXSEG = 2;
const TCPOPT_WINDOW = 3;
const TCPOPT_SACK_PERM = 4;
const TCPOPT_TIMESTAMP = 8;
const TCPI_OPT_TIMESTAMPS = 1;
const TCPI_OPT_SACK = 2;
const TCPI_OPT_WSCALE = 4;
const SIOCINQ = 0x541b;
const SIOCOUTQ = 0x5411;
const SIOCOUTQNSD = 0x894b;
/** TCP_INFO's tcpi_state for ESTABLISHED. */
export const TCP_ESTABLISHED = 1;

/** The addon's functions (see the comment at the top of native/repair.c). */
export interface RepairAddon {
  socket(family: 4 | 6): number;
  bind(fd: number, address: string, port: number): void;
  connect(fd: number, address: string, port: number): void;
  listen(fd: number, backlog: number): void;
  accept(fd: number): number;
  localAddress(fd: number): SocketAddress;
  remoteAddress(fd: number): SocketAddress;
  setNonBlocking(fd: number, on: boolean): void;
  setInt(fd: number, level: number, name: number, value: number): void;
  getInt(fd: number, level: number, name: number): number;
  setRepairOptions(fd: number, codes: readonly number[], values: readonly number[]): void;
  getRepairWindow(fd: number): RepairWindow;
  setRepairWindow(
    fd: number,
    sndWl1: number,
    sndWnd: number,
    maxWindow: number,
    rcvWnd: number,
    rcvWup: number,
  ): void;
  tcpInfo(fd: number): KernelTcpInfo;
  ioctlInt(fd: number, request: number): number;
  peek(fd: number, length: number): Buffer;
  peekInto(fd: number, buffer: Uint8Array): number;
  send(fd: number, data: Uint8Array, offset: number): number;
  close(fd: number): void;
  /** `socket(family)` inside the network namespace `nsFd` refers to (native/steer.c). */
  socketIn(nsFd: number, family: 4 | 6): number;
  /** Adds the u32 filter `pref` at `outer`'s clsact ingress that redirects one IPv4 TCP
   * connection's packets (remote -> local) to `tap`, inside namespace `nsFd` (native/steer.c). */
  tcSteer(
    nsFd: number,
    outer: string,
    tap: string,
    pref: number,
    localAddress: string,
    localPort: number,
    remoteAddress: string,
    remotePort: number,
  ): void;
  /** Deletes `outer`'s ingress filter `pref` inside namespace `nsFd`. */
  tcUnsteer(nsFd: number, outer: string, pref: number): void;
  /** An IPv4 raw socket (whole packets) inside namespace `nsFd`. */
  rawSocketIn(nsFd: number): number;
  /** Sends the IPv4 packet as it is, to its destination (native/steer.c). */
  sendIp(fd: number, packet: Uint8Array): void;
  /**
   * A non-blocking TUN device made inside namespace `nsFd` as packetdrill makes its tun0 (bare
   * IP packets behind a virtio_net_hdr, checksum and TSO offloads on; native/pdk.c): read and
   * write it with `readTun` / `writeTun`.
   */
  tunIn(nsFd: number, name: string): number;
  /** One ppoll over `fds` with `events`; the revents of each (timeoutUs < 0: no timeout). */
  waitFds(fds: readonly number[], events: readonly number[], timeoutUs: number): number[];
  /** One read(2) of up to `max` bytes; null when nothing is ready. */
  readFd(fd: number, max: number): Buffer | null;
  /** One write(2). */
  writeFd(fd: number, data: Buffer): number;
  /** One packet of a `tunIn` device (its checksum completed when left partial); null when none is ready. */
  readTun(fd: number, max: number): Buffer | null;
  /** One IP packet into a `tunIn` device; `gsoSize` > 0 marks a GRO'd TCPv4 packet of that MSS. */
  writeTun(fd: number, data: Buffer, gsoSize: number): number;
  /** send(2) of `length` bytes from a NULL buffer (a script's `NULL`: the kernel's EFAULT throws). */
  sendNull(fd: number, length: number, flags: number): number;
  /** recv(2) of `length` bytes into a NULL buffer (the same). */
  recvNull(fd: number, length: number, flags: number): number;
  /** epoll_create1(EPOLL_CLOEXEC). */
  epollCreate(): number;
  /** epoll_ctl(2): `data` is what `epollWait` reports for `fd`. */
  epollCtl(epfd: number, op: number, fd: number, events: number, data: number): void;
  /** One epoll_wait(2) of at most `max` (1..64) events that does not wait: [events, data, ...]. */
  epollWait(epfd: number, max: number): number[];
  /** One recv(2) with `flags` (EAGAIN throws). */
  recvFlags(fd: number, length: number, flags: number): Buffer;
  /** One send(2) with `flags` | MSG_NOSIGNAL (EAGAIN throws). */
  sendFlags(fd: number, data: Buffer, flags: number): number;
  /**
   * One sendmsg(2) of an iovec whose elements have `lengths` (zeros, each element in memory of
   * its own, as packetdrill's), with `flags` | MSG_NOSIGNAL (EAGAIN throws; more than 1024
   * entries throw EMSGSIZE, as the kernel answers).
   */
  sendIov(fd: number, lengths: readonly number[], flags: number): number;
  shutdown(fd: number, how: number): void;
  /** setsockopt(2) with any option value. */
  setBytes(fd: number, level: number, name: number, value: Buffer): void;
  /** getsockopt(2) of up to `length` bytes (at most 4096). */
  getBytes(fd: number, level: number, name: number, length: number): Buffer;
}

let cached: RepairAddon | undefined;

/** Where the addon is looked for: native/build/Release under the package root. */
export function repairAddonPath(): string {
  // dist/src/device/repair.js -> package root is three levels up.
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
  return join(root, "native", "build", "Release", "chimney_repair.node");
}

/** Loads the addon (cached); throws `NativeAddonMissingError` if it was not built. */
export function loadRepairAddon(path?: string): RepairAddon {
  if (path === undefined && cached !== undefined) return cached;
  const file = path ?? repairAddonPath();
  if (!existsSync(file))
    throw new NativeAddonMissingError(file, "the kernel hand-off needs the repair addon");
  const require = createRequire(import.meta.url);
  const addon = require(file) as RepairAddon;
  if (path === undefined) cached = addon;
  return addon;
}

/** Runs one addon call; a thrown errno becomes a `RepairError` (naming `call` if the addon did not). */
export function repairCall<T>(call: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof RepairError) throw e;
    const x = e as { code?: unknown; errno?: unknown; syscall?: unknown; message?: unknown };
    const errno = typeof x.errno === "number" ? x.errno : 0;
    const name = typeof x.code === "string" ? x.code : "EUNKNOWN";
    throw new RepairError(
      typeof x.syscall === "string" ? x.syscall : call,
      errno,
      name,
      typeof x.message === "string" ? x.message : String(e),
      { cause: e },
    );
  }
}

const u32 = (x: number): number => x >>> 0;

/**
 * Everything the kernel knows of one ESTABLISHED connection (see `KernelTcpRecord`), with the
 * queues as Buffers and `info`, what the kernel cannot take back. kernel-state.ts translates it
 * to and from our engine's snapshot.
 */
export interface KernelTcpState extends KernelTcpExport {
  readonly recvQueue: Buffer;
  readonly sendQueue: Buffer;
}

/** Reads all of the selected queue (`expected` bytes by the ioctl), asking one byte more. */
function peekQueue(addon: RepairAddon, fd: number, expected: number, what: string): Buffer {
  let size = expected + 1;
  for (;;) {
    // Into our own buffer: the addon's `peek` copies a second time (4 ms a MiB, not 0.2).
    const buf = Buffer.allocUnsafe(size);
    const data = buf.subarray(
      0,
      repairCall(`recv(MSG_PEEK, ${what})`, () => addon.peekInto(fd, buf)),
    );
    if (data.length < size) {
      if (data.length !== expected) {
        throw new RepairError(
          `recv(MSG_PEEK, ${what})`,
          0,
          "ESHORT",
          `the queue holds ${data.length} bytes, the ioctl said ${expected}`,
        );
      }
      return data;
    }
    size *= 2;
  }
}

/** Sends all of `data` (the kernel may take part of it per call). */
function sendAll(addon: RepairAddon, fd: number, data: Uint8Array, what: string): void {
  let off = 0;
  while (off < data.length) {
    const n = repairCall(`send(${what})`, () => addon.send(fd, data, off));
    if (n === 0) {
      throw new RepairError(
        `send(${what})`,
        11,
        "EAGAIN",
        `the kernel took ${off} of ${data.length} bytes and no more (socket buffer too small?)`,
      );
    }
    off += n;
  }
}

function setTcp(addon: RepairAddon, fd: number, name: number, value: number, call: string): void {
  repairCall(call, () => addon.setInt(fd, IPPROTO_TCP, name, value));
}

function getTcp(addon: RepairAddon, fd: number, name: number, call: string): number {
  return repairCall(call, () => addon.getInt(fd, IPPROTO_TCP, name));
}

/** Test seams of `exportKernelTcp`. */
export interface ExportHooks {
  /**
   * Runs right after the never-sent bytes are counted, while the socket may still transmit: a
   * test makes it transmit here (opening the peer's window), which the record must account for.
   */
  readonly afterUnsentCount?: (() => void) | undefined;
}

/**
 * Freezes `fd` (a connected kernel TCP socket) in repair mode and reads its state. The socket
 * stays in repair mode with its send queue selected, so it transmits nothing more: close it
 * with `closeSilently` once the state lives elsewhere.
 * If the socket cannot be moved, it is taken out of repair mode again and `RepairError` is
 * thrown.
 */
export function exportKernelTcp(
  fd: number,
  addon: RepairAddon = loadRepairAddon(),
  hooks: ExportHooks = {},
): KernelTcpState {
  setTcp(addon, fd, TCP_REPAIR, TCP_REPAIR_ON, "setsockopt(TCP_REPAIR)");
  try {
    const info = repairCall("getsockopt(TCP_INFO)", () => addon.tcpInfo(fd));
    if (info.state !== TCP_ESTABLISHED) {
      throw new RepairError(
        "exportKernelTcp",
        95,
        "EOPNOTSUPP",
        `only ESTABLISHED connections move (TCP_INFO state ${info.state})`,
      );
    }
    const local = repairCall("getsockname", () => addon.localAddress(fd));
    const remote = repairCall("getpeername", () => addon.remoteAddress(fd));
    // Repair mode does not stop the socket's output: until the send queue is selected, a pacing
    // timer, a TSQ completion or an ACK still in the stack transmits for real. The bytes never
    // sent are counted first, before any queue is selected: with the send queue selected, an
    // ACK processed meanwhile lets the kernel "send" more without transmitting it (repair mode's
    // way of rebuilding a sent queue), and a count read then calls bytes sent that never left;
    // their new owner waited for its RTO to send them (a 3 s stall in a live run). The count is
    // taken between two reads of the bytes really transmitted (`tcpi_bytes_sent`), retried until
    // none left in between, and what leaves after it is subtracted below.
    const unsentCount = (): { unsent: number; at: KernelTcpInfo } => {
      for (let attempt = 0; ; attempt++) {
        const at = repairCall("getsockopt(TCP_INFO)", () => addon.tcpInfo(fd));
        const unsent = repairCall("ioctl(SIOCOUTQNSD)", () => addon.ioctlInt(fd, SIOCOUTQNSD));
        const after = repairCall("getsockopt(TCP_INFO)", () => addon.tcpInfo(fd));
        if (after.bytesSent === at.bytesSent || attempt >= 10) return { unsent, at };
      }
    };
    const counted = unsentCount();
    hooks.afterUnsentCount?.();
    // Incoming segments are still processed in repair mode: read each queue until its
    // sequence number and length hold still across the read.
    const readQueue = (queue: number, ioctl: number, what: string): { seq: number; data: Buffer } => {
      setTcp(addon, fd, TCP_REPAIR_QUEUE, queue, "setsockopt(TCP_REPAIR_QUEUE)");
      for (let attempt = 0; ; attempt++) {
        const seq = u32(getTcp(addon, fd, TCP_QUEUE_SEQ, "getsockopt(TCP_QUEUE_SEQ)"));
        const len = repairCall(`ioctl(${what})`, () => addon.ioctlInt(fd, ioctl));
        const data = peekQueue(addon, fd, len, what);
        const seq2 = u32(getTcp(addon, fd, TCP_QUEUE_SEQ, "getsockopt(TCP_QUEUE_SEQ)"));
        if (seq === seq2 && data.length === repairCall(`ioctl(${what})`, () => addon.ioctlInt(fd, ioctl))) {
          return { seq, data };
        }
        if (attempt >= 10) {
          throw new RepairError("exportKernelTcp", 11, "EAGAIN", `the ${what} queue kept changing`);
        }
      }
    };
    const recv = readQueue(TCP_RECV_QUEUE, SIOCINQ, "receive queue");
    // The send queue stays selected: from here on the socket transmits nothing (it only "sends"
    // in repair mode's way) until it is closed or leaves repair mode.
    const send = readQueue(TCP_SEND_QUEUE, SIOCOUTQ, "send queue");
    // New data that really left after the count (retransmissions aside) reached the peer: it is
    // sent, or the peer's ACK for it would lie beyond the new owner's SND.NXT, which drops such
    // ACKs (RFC 9293 3.10.7.4), and with its window full of data the peer already has, the
    // connection would stall for good (a hand-off session waited for its FIN in vain).
    const frozen = repairCall("getsockopt(TCP_INFO)", () => addon.tcpInfo(fd));
    const leftSince =
      frozen.bytesSent - counted.at.bytesSent - (frozen.bytesRetrans - counted.at.bytesRetrans);
    // (ACKs since the count may have taken bytes off the queue's front, never unsent ones.)
    const unsent = Math.max(0, Math.min(counted.unsent - Math.max(0, leftSince), send.data.length));
    const timestamps = (info.options & TCPI_OPT_TIMESTAMPS) !== 0;
    return {
      family: local.address.includes(":") ? 6 : 4,
      local,
      remote,
      rcvNxt: recv.seq,
      recvQueue: recv.data,
      // TCP_QUEUE_SEQ of the send queue is write_seq, the end of everything written.
      sndUna: u32(send.seq - send.data.length),
      sendQueue: send.data,
      unsent,
      mss: getTcp(addon, fd, TCP_MAXSEG, "getsockopt(TCP_MAXSEG)"),
      sack: (info.options & TCPI_OPT_SACK) !== 0,
      timestamps,
      windowScale:
        (info.options & TCPI_OPT_WSCALE) !== 0 ? { snd: info.sndWscale, rcv: info.rcvWscale } : undefined,
      timestamp: u32(getTcp(addon, fd, TCP_TIMESTAMP, "getsockopt(TCP_TIMESTAMP)")),
      window: repairCall("getsockopt(TCP_REPAIR_WINDOW)", () => addon.getRepairWindow(fd)),
      rcvbuf: repairCall("getsockopt(SO_RCVBUF)", () => addon.getInt(fd, SOL_SOCKET, SO_RCVBUF)),
      sndbuf: repairCall("getsockopt(SO_SNDBUF)", () => addon.getInt(fd, SOL_SOCKET, SO_SNDBUF)),
      info,
    };
  } catch (e) {
    try {
      addon.setInt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
    } catch {
      // the first error is the one to report
    }
    throw e;
  }
}

/**
 * The value for `setsockopt(TCP_TIMESTAMP)` that continues a millisecond clock at `ts`: even.
 * Since Linux 6.7 the value's low bit switches the socket to microsecond TSvals
 * (`tp->tcp_usec_ts`): an odd value made the imported socket's clock tick a thousand times too
 * fast, the next owner took that clock over, and the peer's PAWS dropped every segment of an
 * owner whose clock was behind it (a live run hung for 20 s). Rounded up, never down: a TSval
 * must not go backwards.
 */
export function millisecondClock(ts: number): number {
  return ((ts >>> 0) + ((ts >>> 0) & 1)) >>> 0;
}

export interface ImportOptions {
  /** Leave the new fd non-blocking (default true: ready for `new net.Socket({ fd })`). */
  readonly nonBlocking?: boolean;
  /**
   * Create the socket inside the network namespace this fd refers to (an open
   * `/run/netns/<name>`), from this process; default: the process's own namespace.
   */
  readonly netns?: number | undefined;
  /**
   * Leave the new socket in repair mode: it sends nothing until `leaveRepair` (call that once
   * the connection's packets reach it, to send its window probe then).
   */
  readonly keepRepair?: boolean | undefined;
}

/**
 * Builds a connected kernel socket from `state` and returns its fd. Call it in the connection's
 * network namespace with the 4-tuple free: the exported socket, even in repair mode, holds it
 * until `closeSilently` (connect fails with EADDRNOTAVAIL). Follows the kernel's
 * restore order: socket and repair on, bind, queue sequence numbers, connect (no SYN), options,
 * timestamp clock, receive queue, send queue (the sent part in repair mode, the unsent part with
 * repair briefly off), windows, repair off (no window probe). On failure the new socket is closed
 * silently and `RepairError` is thrown.
 */
export function importKernelTcp(
  state: KernelTcpRecord,
  opts: ImportOptions = {},
  addon: RepairAddon = loadRepairAddon(),
): number {
  if (state.fin !== undefined && (state.fin.received || state.fin.queued)) {
    throw new RepairError(
      "importKernelTcp",
      95,
      "EOPNOTSUPP",
      "a FIN cannot be restored through TCP_REPAIR (forging it is not implemented)",
    );
  }
  if (state.unsent < 0 || state.unsent > state.sendQueue.length) {
    throw new RepairError(
      "importKernelTcp",
      22,
      "EINVAL",
      `unsent ${state.unsent} is not within the send queue's ${state.sendQueue.length} bytes`,
    );
  }
  const ns = opts.netns;
  const fd =
    ns === undefined
      ? repairCall("socket", () => addon.socket(state.family))
      : repairCall("socket", () => addon.socketIn(ns, state.family));
  try {
    setTcp(addon, fd, TCP_REPAIR, TCP_REPAIR_ON, "setsockopt(TCP_REPAIR)");
    repairCall("setsockopt(SO_REUSEADDR)", () => addon.setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1));
    // The kernel reports twice what was asked; the receive queue must fit in the new buffer.
    const rcvbuf = Math.max(state.rcvbuf, 2 * state.recvQueue.length + 65536);
    const sndbuf = Math.max(state.sndbuf, 2 * state.sendQueue.length + 65536);
    repairCall("setsockopt(SO_RCVBUFFORCE)", () =>
      addon.setInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf >>> 1),
    );
    repairCall("setsockopt(SO_SNDBUFFORCE)", () =>
      addon.setInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, sndbuf >>> 1),
    );
    repairCall("bind", () => addon.bind(fd, state.local.address, state.local.port));
    setTcp(addon, fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
    setTcp(addon, fd, TCP_QUEUE_SEQ, u32(state.rcvNxt - state.recvQueue.length), "setsockopt(TCP_QUEUE_SEQ)");
    setTcp(addon, fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
    setTcp(addon, fd, TCP_QUEUE_SEQ, u32(state.sndUna), "setsockopt(TCP_QUEUE_SEQ)");
    // The segment size the kernel sends with (mss_cache) is computed once, at connect, from the
    // MSS clamp of that moment: the TCPOPT_MAXSEG option below, set after connect, raises the
    // clamp but leaves it at the default 536 (524 with timestamps) for good. TCP_MAXSEG set now
    // is the clamp at connect (the kernel takes 88..32767 there: loopback's MSS of 65,483 is
    // cut to the most it takes).
    setTcp(addon, fd, TCP_MAXSEG, Math.max(88, Math.min(state.mss, 32767)), "setsockopt(TCP_MAXSEG)");
    repairCall("connect", () => addon.connect(fd, state.remote.address, state.remote.port));
    // Options only in ESTABLISHED and before any data is queued.
    const codes = [TCPOPT_MAXSEG];
    const values = [state.mss];
    if (state.windowScale !== undefined) {
      codes.push(TCPOPT_WINDOW);
      values.push(state.windowScale.snd | (state.windowScale.rcv << 16));
    }
    if (state.sack) {
      codes.push(TCPOPT_SACK_PERM);
      values.push(0);
    }
    if (state.timestamps) {
      codes.push(TCPOPT_TIMESTAMP);
      values.push(0);
    }
    repairCall("setsockopt(TCP_REPAIR_OPTIONS)", () => addon.setRepairOptions(fd, codes, values));
    if (state.timestamps)
      setTcp(addon, fd, TCP_TIMESTAMP, millisecondClock(state.timestamp), "setsockopt(TCP_TIMESTAMP)");
    setTcp(addon, fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
    sendAll(addon, fd, state.recvQueue, "receive queue");
    setTcp(addon, fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
    const sent = state.sendQueue.length - state.unsent;
    sendAll(addon, fd, state.sendQueue.subarray(0, sent), "send queue, sent part");
    if (state.unsent > 0) {
      // Never-sent bytes go in as ordinary writes; without the probe of TCP_REPAIR=0.
      setTcp(addon, fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP, "setsockopt(TCP_REPAIR)");
      sendAll(addon, fd, state.sendQueue.subarray(sent), "send queue, unsent part");
      setTcp(addon, fd, TCP_REPAIR, TCP_REPAIR_ON, "setsockopt(TCP_REPAIR)");
    }
    setTcp(addon, fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "setsockopt(TCP_REPAIR_QUEUE)");
    const w = state.window;
    repairCall("setsockopt(TCP_REPAIR_WINDOW)", () =>
      addon.setRepairWindow(fd, w.sndWl1, w.sndWnd, w.maxWindow, w.rcvWnd, w.rcvWup),
    );
    if (opts.keepRepair !== true)
      setTcp(addon, fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP, "setsockopt(TCP_REPAIR)");
    if (opts.nonBlocking ?? true) repairCall("fcntl(O_NONBLOCK)", () => addon.setNonBlocking(fd, true));
    return fd;
  } catch (e) {
    closeSilently(fd, addon);
    throw e;
  }
}

/**
 * Takes `fd` out of repair mode. With `probe` the kernel sends a window probe (a segment the
 * peer must answer with an ACK at once): a socket imported with data in flight learns right away
 * what the peer has received, instead of waiting for its initial RTO when ACKs were lost during
 * the move. Without it, nothing is sent.
 */
export function leaveRepair(fd: number, probe: boolean, addon: RepairAddon = loadRepairAddon()): void {
  setTcp(addon, fd, TCP_REPAIR, probe ? TCP_REPAIR_OFF : TCP_REPAIR_OFF_NO_WP, "setsockopt(TCP_REPAIR)");
}

/** Closes `fd` in repair mode: no FIN, no RST, whatever its queues hold. */
export function closeSilently(fd: number, addon: RepairAddon = loadRepairAddon()): void {
  setTcp(addon, fd, TCP_REPAIR, TCP_REPAIR_ON, "setsockopt(TCP_REPAIR)");
  repairCall("close", () => addon.close(fd));
}

/**
 * The queue sizes of a kernel socket: `unread` received bytes (SIOCINQ), `queued` bytes not yet
 * acknowledged, sent or not (SIOCOUTQ), of which `unsent` were never sent (SIOCOUTQNSD).
 */
export function kernelQueues(
  fd: number,
  addon: RepairAddon = loadRepairAddon(),
): { readonly unread: number; readonly queued: number; readonly unsent: number } {
  return {
    unread: repairCall("ioctl(SIOCINQ)", () => addon.ioctlInt(fd, SIOCINQ)),
    queued: repairCall("ioctl(SIOCOUTQ)", () => addon.ioctlInt(fd, SIOCOUTQ)),
    unsent: repairCall("ioctl(SIOCOUTQNSD)", () => addon.ioctlInt(fd, SIOCOUTQNSD)),
  };
}

/** Socket-option numbers for callers that set buffer sizes through the addon. */
export const SOCKOPT = { SOL_SOCKET, SO_RCVBUFFORCE, SO_SNDBUFFORCE, SO_REUSEADDR, IPPROTO_TCP } as const;
