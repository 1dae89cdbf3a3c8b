// An offload and a terminate in the middle of an HTTP response: the server host has the
// software offload target; while the client is reading a 4 MiB response, the server's
// connection is offloaded (after 1 MiB) and taken back (after 2 MiB). Neither http nor the
// sockets notice, and every byte arrives in order. Run: node dist/examples/http-offload-mid-response.js
import { createHash } from "node:crypto";
import * as http from "node:http";
import { createSimNetwork, type Socket } from "chimney";

const simNet = createSimNetwork({
  seed: 7,
  link: { delayMs: 1, bandwidthBps: 200_000_000 },
  offload: { b: { target: "software" } },
});
const [a, b] = simNet.hosts;
const chimney = b.offload!; // b was given an offload target

const body = Buffer.alloc(4 << 20);
for (let i = 0; i < body.length; i++) body[i] = (i * 31) >>> 3;
let serverSocket: Socket | undefined;
const web = http.createServer((_req, res) => res.end(body));
b.createServer((socket) => {
  serverSocket = socket;
  web.emit("connection", socket);
}).listen(80);

const phases: string[] = [];
const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
  const opts = { host: "b", port: 80, path: "/" };
  http.get({ ...opts, createConnection: () => a.connect(opts) }, resolve).on("error", reject);
});
const hash = createHash("sha256");
let received = 0;
for await (const chunk of res) {
  hash.update(chunk as Buffer);
  received += (chunk as Buffer).length;
  if (received >= 1 << 20 && phases.length === 0 && chimney.offload(serverSocket!)) {
    phases.push(`offloaded at ${received >> 20} MiB`);
  }
  if (received >= 2 << 20 && phases.length === 1 && chimney.terminate(serverSocket!)) {
    phases.push(`terminated at ${received >> 20} MiB`);
  }
}
await simNet.idle();
const same = hash.digest("hex") === createHash("sha256").update(body).digest("hex");
console.log(phases.join(", "));
console.log(`received ${received} of ${body.length} bytes, identical: ${same}`);
console.log(`connections still offloaded: ${chimney.manager.offloadedCount}`);
chimney.ledger.assertQuiescent(); // every buffer is back with its owner
console.log("ledger quiescent");
simNet.stop();
