// HTTP on the simulator: Node's own http server and client over our sockets on two simulated
// hosts, a 2 ms link with 1% loss at 100 Mbit/s, seeded. Run: node dist/examples/http-sim.js
import { createHash } from "node:crypto";
import * as http from "node:http";
import { createSimNetwork } from "chimney";

const simNet = createSimNetwork({
  seed: 42,
  hosts: ["client", "server"],
  link: { delayMs: 2, loss: 0.01, bandwidthBps: 100_000_000 },
});
const client = simNet.host("client");
const server = simNet.host("server");

const body = Buffer.alloc(1 << 20, "chimney ");
const web = http.createServer((_req, res) => res.end(body));
server.createServer((socket) => web.emit("connection", socket)).listen(80);

const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
  const opts = { host: "server", port: 80, path: "/" };
  http.get({ ...opts, createConnection: () => client.connect(opts) }, resolve).on("error", reject);
});
const hash = createHash("sha256");
for await (const chunk of res) hash.update(chunk as Buffer);
const ok = hash.digest("hex") === createHash("sha256").update(body).digest("hex");
console.log(`GET / -> ${res.statusCode}, ${res.headers["content-length"]} bytes, sha256 ok: ${ok}`);
const lost = simNet.link.bToA.stats()["loss"]?.dropped ?? 0;
console.log(`frames the link lost on the way to the client: ${lost} (${simNet.label})`);
simNet.stop();
