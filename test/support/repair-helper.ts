/**
 * One end of the kernel hand-off acceptance test, run inside a network namespace with
 * `ip netns exec <ns> node repair-helper.js <role> <args>`. It prints one JSON line per event on
 * stdout and waits for one-word commands on stdin, so the test decides when each step happens.
 *
 * peer <port> <preBytes> <postBytes>: listens, sends `preBytes` and waits until the host has
 *   acknowledged them (without reading anything); on `resume` sends `postBytes`, reads to the end.
 * host <address> <port> <preBytes> <postBytes> <peerPreBytes> <record|snapshot>: connects with large buffers, waits
 *   until the peer's `peerPreBytes` sit unread in its receive queue; on `write` writes `preBytes`;
 *   on `move` exports the socket, closes it silently, imports it into a new socket; then reads
 *   everything and writes `postBytes`. With `snapshot` the exported record is translated to our
 *   engine's snapshot and back (src/device/kernel-state.ts) before the import.
 * Both end with a `done` event carrying the length and sha256 of what they sent and received.
 * race <port>: one connection over loopback whose client has bytes it could not send (the
 *   server reads nothing, its window is shut); while the client is exported, right after the
 *   count of never-sent bytes, the server reads and its window update makes the client transmit
 *   for real. Prints a `race` event: what the record says was sent, and what reached the server.
 * refusals <port>: one connection over loopback, exported and imported wrongly on purpose; prints
 *   a `refusals` event with what each wrong import did, then imports it rightly and checks that
 *   the connection still carries data both ways (a `done` event).
 */
import net from "node:net";
import { createInterface } from "node:readline";
import { kernelFromSnapshot, snapshotFromKernel } from "../../src/device/kernel-state.js";
import {
  closeSilently,
  exportKernelTcp,
  importKernelTcp,
  kernelQueues,
  loadRepairAddon,
  RepairError,
  SOCKOPT,
} from "../../src/device/repair.js";
import type { TcpSnapshotCached } from "../../src/tcp/types.js";
import { Duration } from "../../src/time/instant.js";
import { emit, exchange } from "./helper-io.js";
import { payload } from "./live.js";

/** Deterministic bytes, different per `tag`, so reordering changes the hash. */
function bytes(tag: number, length: number): Buffer {
  return payload(length, 0x9e3779b9 ^ tag);
}

/** Our side's cached state for the snapshot round trip (the kernel record has none of it). */
const CACHED: TcpSnapshotCached = {
  initialRcvWnd: 65535,
  sendBufferSize: 1 << 20,
  noDelay: false,
  keepAlive: false,
  keepAliveIdle: Duration.fromSeconds(7200),
  keepAliveInterval: Duration.fromSeconds(75),
  keepAliveProbes: 9,
  maxRetransmissions: 15,
  userTimeout: undefined,
  effectiveMss: 1460,
};

const commands: string[] = [];
let waiter: ((c: string) => void) | undefined;
createInterface({ input: process.stdin }).on("line", (line) => {
  const c = line.trim();
  if (waiter !== undefined) {
    const w = waiter;
    waiter = undefined;
    w(c);
  } else commands.push(c);
});
function command(expected: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (c: string) =>
      c === expected ? resolve() : reject(new Error(`expected ${expected}, got ${c}`));
    const queued = commands.shift();
    if (queued !== undefined) check(queued);
    else waiter = check;
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function peer(port: number, preBytes: number, postBytes: number): Promise<void> {
  const addon = loadRepairAddon();
  const server = net.createServer({ pauseOnConnect: true });
  const conn = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  await new Promise<void>((resolve) => server.listen(port, "0.0.0.0", resolve));
  emit("listening");
  const sock = await conn;
  server.close();
  const pre = bytes(1, preBytes);
  sock.write(pre);
  const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
  await until(
    "the host to acknowledge the peer's data",
    () => {
      return sock.writableLength === 0 && kernelQueues(fd, addon).queued === 0;
    },
    20_000,
  );
  emit("sent", { bytes: preBytes });
  await command("resume");
  const result = await exchange(sock, bytes(2, postBytes), [pre]);
  emit("done", result);
  sock.destroy();
}

async function host(
  address: string,
  port: number,
  preBytes: number,
  postBytes: number,
  peerPreBytes: number,
  via: string,
): Promise<void> {
  const addon = loadRepairAddon();
  const fd = addon.socket(4);
  addon.setInt(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_RCVBUFFORCE, 4 << 20);
  addon.setInt(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_SNDBUFFORCE, 1 << 20);
  addon.connect(fd, address, port);
  emit("connected");
  await until(
    "the peer's data in the receive queue",
    () => kernelQueues(fd, addon).unread >= peerPreBytes,
    20_000,
  );
  emit("received", kernelQueues(fd, addon));
  await command("write");
  addon.setNonBlocking(fd, true);
  const pre = bytes(3, preBytes);
  let off = 0;
  while (off < pre.length) {
    const n = addon.send(fd, pre, off);
    if (n === 0) throw new Error(`the kernel took ${off} of ${pre.length} bytes`);
    off += n;
  }
  // Let the kernel send what its windows allow.
  let last = -1;
  await until("the send queue to settle", () => {
    const now = kernelQueues(fd, addon).unsent;
    const still = now === last;
    last = now;
    return still;
  });
  emit("written", kernelQueues(fd, addon));
  await command("move");
  const t0 = process.hrtime.bigint();
  const state = exportKernelTcp(fd, addon);
  closeSilently(fd, addon);
  // "snapshot": the record goes through our engine's snapshot and back before the import.
  const record =
    via === "snapshot"
      ? kernelFromSnapshot(snapshotFromKernel(state, CACHED), {
          family: state.family,
          localAddress: state.local.address,
          remoteAddress: state.remote.address,
        })
      : state;
  const nfd = importKernelTcp(record, {}, addon);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  emit("moved", {
    ms,
    unread: state.recvQueue.length,
    sendQueue: state.sendQueue.length,
    unsent: state.unsent,
    mss: state.mss,
    sack: state.sack,
    timestamps: state.timestamps,
    windowScale: state.windowScale,
    window: state.window,
    imported: kernelQueues(nfd, addon),
    // The segment size the kernel sends with (mss_cache), before and after the move.
    sndMss: { before: state.info.sndMss, after: addon.tcpInfo(nfd).sndMss },
  });
  const sock = new net.Socket({ fd: nfd, readable: true, writable: true });
  const result = await exchange(sock, bytes(4, postBytes), [pre]);
  emit("done", result);
  sock.destroy();
}

/** What a call threw: the RepairError's fields, or `ok`. */
function outcome(f: () => unknown): Record<string, unknown> {
  try {
    const r = f();
    return { ok: true, result: r };
  } catch (e) {
    if (e instanceof RepairError) return { ok: false, code: e.code, call: e.call, errnoName: e.errnoName };
    return { ok: false, message: String(e) };
  }
}

/** Reads `n` bytes from a net.Socket. */
function readBytes(sock: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (d: Buffer) => {
      parts.push(d);
      have += d.length;
      if (have >= n) {
        sock.off("data", onData);
        resolve(Buffer.concat(parts));
      }
    };
    sock.on("data", onData);
    sock.once("error", reject);
  });
}

async function race(port: number): Promise<void> {
  const addon = loadRepairAddon();
  const listener = addon.socket(4);
  addon.setInt(listener, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_REUSEADDR, 1);
  addon.setInt(listener, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_RCVBUFFORCE, 32 << 10); // inherited: a small window
  addon.bind(listener, "127.0.0.1", port);
  addon.listen(listener, 4);
  const client = addon.socket(4);
  addon.setInt(client, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_SNDBUFFORCE, 4 << 20);
  addon.connect(client, "127.0.0.1", port);
  const server = addon.accept(listener);
  addon.setNonBlocking(client, true);
  addon.setNonBlocking(server, true);
  const data = bytes(8, 2 << 20);
  let written = 0;
  for (let n = 1; n > 0 && written < data.length; written += n) {
    try {
      n = addon.send(client, data.subarray(written), 0);
    } catch (e) {
      if (e instanceof RepairError && e.errnoName === "EAGAIN") break;
      throw e;
    }
  }
  // The server's window shuts with bytes left unsent, and everything sent is acknowledged.
  let last = -1;
  await until("the client's queues to hold still with bytes unsent", () => {
    const q = kernelQueues(client, addon);
    const still = q.unsent > 0 && q.queued === q.unsent && q.unsent === last;
    last = q.unsent;
    return still;
  });
  let received = 0;
  const drain = (): void => {
    for (let b = addon.readFd(server, 1 << 20); b !== null && b.length > 0; b = addon.readFd(server, 1 << 20))
      received += b.length;
  };
  let leftDuring = 0;
  const state = exportKernelTcp(client, addon, {
    afterUnsentCount: () => {
      const before = addon.tcpInfo(client).bytesSent;
      // One read opens the window by a little: the client transmits, although in repair mode.
      received += addon.readFd(server, 16 << 10)?.length ?? 0;
      const by = performance.now() + 500;
      while (addon.tcpInfo(client).bytesSent === before && performance.now() < by) {
        // the window update travels through loopback's softirq; wait for its effect
      }
      leftDuring = addon.tcpInfo(client).bytesSent - before;
    },
  });
  // Still exported (repair mode, send queue selected): the server reads all it got, and its
  // window updates must make the client transmit nothing more.
  await sleep(50);
  drain();
  await sleep(50);
  drain();
  closeSilently(client, addon);
  emit("race", {
    written,
    queued: state.sendQueue.length,
    unsent: state.unsent,
    sentEnd: written - state.unsent,
    received,
    leftDuring,
  });
  addon.close(server);
  addon.close(listener);
}

async function refusals(port: number): Promise<void> {
  const addon = loadRepairAddon();
  const listener = addon.socket(4);
  addon.setInt(listener, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_REUSEADDR, 1);
  addon.bind(listener, "127.0.0.1", port);
  addon.listen(listener, 4);
  const client = addon.socket(4);
  addon.connect(client, "127.0.0.1", port);
  const server = addon.accept(listener);
  const toServer = bytes(5, 1000);
  const toClient = bytes(6, 1000);
  for (const [fd, data] of [
    [client, toServer],
    [server, toClient],
  ] as const) {
    if (addon.send(fd, data, 0) !== data.length) throw new Error("short send on loopback");
  }
  await until("both directions acknowledged", () => {
    const c = kernelQueues(client, addon);
    const s = kernelQueues(server, addon);
    return c.queued === 0 && s.queued === 0 && c.unread === 1000 && s.unread === 1000;
  });
  await sleep(50); // let the delayed ACKs go, so that RCV.WUP has caught up with RCV.NXT
  const results: Record<string, unknown> = {};
  results["listener"] = outcome(() => exportKernelTcp(listener, addon));
  const state = exportKernelTcp(client, addon);
  results["state"] = { rcvNxt: state.rcvNxt, window: state.window, unread: state.recvQueue.length };
  const w = state.window;
  const tryImport = (s: typeof state): Record<string, unknown> =>
    outcome(() => {
      const fd = importKernelTcp(s, {}, addon);
      closeSilently(fd, addon);
      return "imported";
    });
  // The exported socket, still open in repair mode, holds the 4-tuple.
  results["whileExportedOpen"] = tryImport(state);
  closeSilently(client, addon);
  results["maxWindowBelowSndWnd"] = tryImport({ ...state, window: { ...w, maxWindow: w.sndWnd - 1 } });
  results["rcvNxtMinusOne"] = tryImport({ ...state, rcvNxt: (state.rcvNxt - 1) >>> 0 });
  results["rcvNxtPlusOne"] = tryImport({ ...state, rcvNxt: (state.rcvNxt + 1) >>> 0 });
  results["unsentBeyondQueue"] = tryImport({ ...state, unsent: state.sendQueue.length + 1 });
  emit("refusals", results);
  // The failed imports left nothing behind: the right one takes the 4-tuple and carries data.
  const nfd = importKernelTcp(state, {}, addon);
  addon.setNonBlocking(server, true);
  const c = new net.Socket({ fd: nfd, readable: true, writable: true });
  const s = new net.Socket({ fd: server, readable: true, writable: true });
  const more = bytes(7, 5000);
  const atClient = readBytes(c, toClient.length + more.length);
  const atServer = readBytes(s, toServer.length + more.length);
  c.write(more);
  s.write(more);
  const [gotClient, gotServer] = await Promise.all([atClient, atServer]);
  emit("done", {
    clientIntact: gotClient.equals(Buffer.concat([toClient, more])),
    serverIntact: gotServer.equals(Buffer.concat([toServer, more])),
  });
  c.destroy();
  s.destroy();
  addon.close(listener);
}

const [role, ...args] = process.argv.slice(2);
const num = (i: number): number => Number(args[i]);
const main =
  role === "peer"
    ? peer(num(0), num(1), num(2))
    : role === "host"
      ? host(args[0] ?? "", num(1), num(2), num(3), num(4), args[5] ?? "record")
      : role === "refusals"
        ? refusals(num(0))
        : role === "race"
          ? race(num(0))
          : Promise.reject(new Error(`unknown role ${role}`));
main.then(
  () => process.exit(0),
  (e: unknown) => {
    const x = e as { code?: unknown; call?: unknown; errnoName?: unknown };
    emit("error", { message: String(e), code: x.code, call: x.call, errnoName: x.errnoName });
    process.exit(1);
  },
);
