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
 */
import { createHash } from "node:crypto";
import net from "node:net";
import { createInterface } from "node:readline";
import { importKernelTcp, kernelQueues, loadRepairAddon } from "../../src/device/repair.js";
import { recordFromJson } from "../../src/live/terminate.js";
import { payload } from "./live.js";

function emit(ev: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ ev, ...fields })}\n`);
}

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

/** Reads `sock` to its end while writing `data` (with back-pressure) and ending. */
function exchange(sock: net.Socket, data: Buffer): Promise<Record<string, unknown>> {
  const recv = createHash("sha256");
  let recvLen = 0;
  return new Promise((resolve, reject) => {
    let ended = false;
    let finished = false;
    const done = () => {
      if (ended && finished) {
        resolve({
          recvLen,
          recvSha: recv.digest("hex"),
          sentLen: data.length,
          sentSha: createHash("sha256").update(data).digest("hex"),
        });
      }
    };
    sock.on("data", (d: Buffer) => {
      recv.update(d);
      recvLen += d.length;
    });
    sock.on("end", () => {
      ended = true;
      done();
    });
    sock.on("error", reject);
    sock.end(data, () => {
      finished = true;
      done();
    });
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

const [role, ...args] = process.argv.slice(2);
const num = (i: number): number => Number(args[i]);
const main =
  role === "peer"
    ? peer(num(0), num(1), num(2))
    : role === "kernel"
      ? kernel(num(0), num(1))
      : Promise.reject(new Error(`unknown role ${role}`));
main.then(
  () => process.exit(0),
  (e: unknown) => {
    const x = e as { code?: unknown; call?: unknown; errnoName?: unknown };
    emit("error", { message: String(e), code: x.code, call: x.call, errnoName: x.errnoName });
    process.exit(1);
  },
);
