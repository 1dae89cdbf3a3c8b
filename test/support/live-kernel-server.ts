/**
 * A kernel-side TCP server for the live tests, run inside the namespace with
 * `ip netns exec <ns> node dist/test/support/live-kernel-server.js <port>`:
 * the client sends one line `sink\n` or `source <n> <seed>\n`.
 * - `sink`: the server reads to end of stream, then answers `<count> <sha256>\n` and ends;
 * - `source n seed`: the server sends `payload(n, seed)` and ends.
 * Listens on `::` (both families) and prints `listening <port>` once ready. With a third
 * argument, every accepted socket runs that congestion control (`setsockopt(TCP_CONGESTION)`
 * through the repair addon: a namespace may refuse the sysctl for a module its allowed list
 * lacks, while a socket of a root process may still choose it).
 */
import { createHash } from "node:crypto";
import * as net from "node:net";
import { loadRepairAddon } from "../../src/device/repair.js";
import { payload } from "./live.js";

const port = Number(process.argv[2] ?? 9000);
const congestion = process.argv[3];
/** IPPROTO_TCP and TCP_CONGESTION (linux/tcp.h). */
const IPPROTO_TCP = 6;
const TCP_CONGESTION = 13;

const server = net.createServer({ allowHalfOpen: true }, (sock) => {
  if (congestion !== undefined) {
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (fd === undefined || fd < 0)
      throw new Error("live-kernel-server: no file descriptor to set TCP_CONGESTION on");
    loadRepairAddon().setBytes(fd, IPPROTO_TCP, TCP_CONGESTION, Buffer.from(congestion));
  }
  let head = Buffer.alloc(0);
  let mode: "head" | "sink" = "head";
  const h = createHash("sha256");
  let count = 0;
  sock.on("data", (d: Buffer) => {
    if (mode === "sink") {
      count += d.length;
      h.update(d);
      return;
    }
    head = Buffer.concat([head, d]);
    const nl = head.indexOf(10);
    if (nl < 0) return;
    const line = head.subarray(0, nl).toString();
    const rest = head.subarray(nl + 1);
    const words = line.split(" ");
    if (words[0] === "sink") {
      mode = "sink";
      count += rest.length;
      h.update(rest);
    } else if (words[0] === "source") {
      sock.end(payload(Number(words[1]), Number(words[2])));
    } else {
      sock.destroy();
    }
  });
  sock.on("end", () => {
    if (mode === "sink") sock.end(`${count} ${h.digest("hex")}\n`);
  });
  sock.on("error", () => undefined);
});
server.listen(port, "::", () => {
  process.stdout.write(`listening ${port}\n`);
});
