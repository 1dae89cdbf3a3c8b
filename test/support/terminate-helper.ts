/**
 * The kernel ends of the terminate-into-the-kernel test (test/kernel-terminate.test.ts), run
 * inside a network namespace with `ip netns exec <ns> node terminate-helper.js <role> <args>`.
 * One JSON line per event on stdout; commands on stdin.
 *
 * peer <port> <bytes> <seed>: listens; on the connection writes `payload(bytes, seed)` (with
 *   back-pressure) and ends, while reading everything; `done` carries the length and sha256 of
 *   what it sent and received.
 * kernel <bytes> <seed>: waits for one line of `recordToJson` (src/live/terminate.ts) with
 *   `from`, the number of bytes of `payload(bytes, seed)` our application had handed to its
 *   stack; imports the record (TCP_REPAIR), prints `imported` with the new socket's queues; on
 *   `go` reads to the end and writes the rest of the payload from `from`, then ends; `done`
 *   carries the length and sha256 of what it received.
 * origin <peer> <port> <localPort> <bytes> <seed> <readFirst> <unreadAt>: the kernel end that
 *   gives its connection up (test/kernel-adopt.test.ts). Connects from `localPort` to the peer,
 *   writes `payload(bytes, seed)` 32 KiB per 2 ms, reads `readFirst` bytes and then nothing;
 *   prints `full` once the kernel holds `unreadAt` unread bytes. On `export`: stops writing,
 *   writes one more chunk the kernel takes whole (so it holds unacknowledged data), takes what
 *   Node read ahead, freezes the socket (exportKernelTcp, repair mode stays on) and closes it
 *   silently; prints `exported`, a `recordToJson` line with `from` (bytes of the payload handed
 *   to the kernel) and `consumed`/`consumedSha` (what its application read); exits on `bye`.
 */
import { createHash } from "node:crypto";
import net from "node:net";
import { createInterface } from "node:readline";
import { once } from "node:events";
import { exportKernelTcp, importKernelTcp, kernelQueues, loadRepairAddon } from "../../src/device/repair.js";
import { recordFromJson, recordToJson } from "../../src/live/terminate.js";
import { emit, exchange } from "./helper-io.js";
import { payload } from "./live.js";

const lines: string[] = [];
let waiter: ((line: string) => void) | undefined;
createInterface({ input: process.stdin }).on("line", (line) => {
  if (waiter !== undefined) {
    const w = waiter;
    waiter = undefined;
    w(line);
  } else lines.push(line);
});
function nextLine(): Promise<string> {
  const l = lines.shift();
  if (l !== undefined) return Promise.resolve(l);
  return new Promise((resolve) => {
    waiter = resolve;
  });
}

async function peer(port: number, bytes: number, seed: number): Promise<void> {
  const server = net.createServer({ allowHalfOpen: true });
  const conn = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  await new Promise<void>((resolve) => server.listen(port, "0.0.0.0", resolve));
  emit("listening");
  const sock = await conn;
  server.close();
  emit("accepted", { remote: `${sock.remoteAddress}:${sock.remotePort}` });
  emit("done", await exchange(sock, payload(bytes, seed)));
  sock.destroy();
}

async function kernel(bytes: number, seed: number): Promise<void> {
  const addon = loadRepairAddon();
  emit("ready");
  const { record, extra } = recordFromJson(await nextLine());
  const from = Number(extra["from"]);
  const t0 = process.hrtime.bigint();
  const fd = importKernelTcp(record, {}, addon);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  emit("imported", { ms, queues: kernelQueues(fd, addon) });
  if ((await nextLine()) !== "go") throw new Error("expected go");
  const sock = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
  const rest = payload(bytes, seed).subarray(from);
  emit("done", await exchange(sock, rest));
  sock.destroy();
}

async function origin(
  peerAddr: string,
  port: number,
  localPort: number,
  bytes: number,
  seed: number,
  readFirst: number,
  unreadAt: number,
): Promise<void> {
  const addon = loadRepairAddon();
  const data = payload(bytes, seed);
  const sock = net.connect({ host: peerAddr, port, localPort, allowHalfOpen: true });
  await once(sock, "connect");
  const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
  const recv = createHash("sha256");
  let consumed = 0;
  let reading = true;
  const take = () => {
    for (let d = sock.read() as Buffer | null; d !== null; d = sock.read() as Buffer | null) {
      recv.update(d);
      consumed += d.length;
      if (reading && consumed >= readFirst) return;
    }
  };
  sock.on("readable", () => {
    if (reading) take();
    if (consumed >= readFirst) reading = false;
  });
  sock.on("error", (e) => emit("error", { message: String(e) }));
  let written = 0;
  const CHUNK = 32 * 1024;
  const writeChunk = () => {
    const n = Math.min(CHUNK, bytes - written);
    sock.write(data.subarray(written, written + n));
    written += n;
  };
  const writer = setInterval(() => {
    if (sock.writableLength === 0 && written < bytes) writeChunk();
  }, 2);
  emit("connected", { fd });
  for (;;) {
    const q = kernelQueues(fd, addon);
    if (!reading && q.unread >= unreadAt) {
      emit("full", { consumed, ...q });
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  if ((await nextLine()) !== "export") throw new Error("expected export");
  clearInterval(writer);
  for (;;) {
    while (sock.writableLength > 0) await once(sock, "drain");
    writeChunk();
    if (sock.writableLength === 0) break; // the kernel took it whole, in this tick
  }
  take(); // what Node read ahead of the application: the application takes it now
  const state = exportKernelTcp(fd, addon);
  // Repair mode is still on: closing the descriptor sends nothing (no FIN, no RST).
  sock.destroy();
  process.stdout.write(
    `${recordToJson(state, { ev: "exported", from: written, consumed, consumedSha: recv.digest("hex") })}\n`,
  );
  // Stays until told, so the long line is read whole before the process exits.
  if ((await nextLine()) !== "bye") throw new Error("expected bye");
}

const [role, ...args] = process.argv.slice(2);
const num = (i: number): number => Number(args[i]);
const main =
  role === "peer"
    ? peer(num(0), num(1), num(2))
    : role === "kernel"
      ? kernel(num(0), num(1))
      : role === "origin"
        ? origin(args[0] ?? "", num(1), num(2), num(3), num(4), num(5), num(6))
        : Promise.reject(new Error(`unknown role ${role}`));
main.then(
  () => process.exit(0),
  (e: unknown) => {
    const x = e as { code?: unknown; call?: unknown; errnoName?: unknown };
    emit("error", { message: String(e), code: x.code, call: x.call, errnoName: x.errnoName });
    process.exit(1);
  },
);
