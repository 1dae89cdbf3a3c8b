/**
 * A kernel-side TCP server for the live tests, run inside the namespace with
 * `ip netns exec <ns> node dist/test/support/live-kernel-server.js <port>`:
 * the client sends one line `sink\n` or `source <n> <seed>\n`.
 * - `sink`: the server reads to end of stream, then answers `<count> <sha256>\n` and ends;
 * - `source n seed`: the server sends `payload(n, seed)` and ends.
 * Listens on `::` (both families) and prints `listening <port>` once ready.
 */
import { createHash } from "node:crypto";
import * as net from "node:net";
import { payload } from "./live.js";

const port = Number(process.argv[2] ?? 9000);

const server = net.createServer({ allowHalfOpen: true }, (sock) => {
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
