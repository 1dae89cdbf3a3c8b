/**
 * A kernel-TCP peer for tests, run inside a namespace with `node kernel-peer.js ...`:
 *   server <addr> <port>            echo server; prints "listening" when ready
 *   client <addr> <port> <bytes>    sends <bytes> of a fixed pattern, half-closes, reads the echo,
 *                                   prints "ok <sent> <received> <sha256-of-received>"
 */
import { createHash } from "node:crypto";
import { createConnection, createServer } from "node:net";

/** The byte pattern both sides can regenerate: i * 31 + (i >> 8) mod 256. */
export function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

function main(argv: string[]): void {
  const [mode, addr, portText, bytesText] = argv;
  const port = Number(portText);
  if (mode === "server" && addr !== undefined) {
    const server = createServer((sock) => {
      sock.pipe(sock);
      sock.on("error", () => sock.destroy());
    });
    server.listen(port, addr, () => console.log("listening"));
    return;
  }
  if (mode === "client" && addr !== undefined) {
    const n = Number(bytesText ?? "0");
    const hash = createHash("sha256");
    let received = 0;
    const sock = createConnection({ host: addr, port }, () => {
      sock.end(pattern(n));
    });
    sock.on("data", (d: Buffer) => {
      received += d.length;
      hash.update(d);
    });
    sock.on("end", () => {
      console.log(`ok ${n} ${received} ${hash.digest("hex")}`);
    });
    sock.on("error", (e) => {
      console.error(`error ${e.message}`);
      process.exitCode = 1;
    });
    return;
  }
  console.error("usage: kernel-peer server <addr> <port> | client <addr> <port> <bytes>");
  process.exitCode = 2;
}

if (process.argv[1]?.endsWith("kernel-peer.js")) main(process.argv.slice(2));
