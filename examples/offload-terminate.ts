// A runnable example of the library: two simulated hosts; host b has an offload target. The
// client sends 64 KiB; b's connection is offloaded; b's application reads nothing while the
// target holds the data; b terminates the offload; the data comes back as BufferedData and the
// application reads all of it, in order. Run: node dist/examples/offload-terminate.js
import type { HostConn } from "../src/host/stack.js";
import { buildChimneyWorld } from "../src/sim/chimney-world.js";
import { ip } from "../src/wire/ip-addr.js";

const world = buildChimneyWorld({ seed: 1, profile: { delayUs: 500 }, a: { offload: false } });
const { a: client, b: server } = world;
const manager = server.manager!; // b was built with an offload target (the default)

const data = new Uint8Array(64 * 1024).map((_, i) => (i * 7) & 0xff);
let serverConn: HostConn | undefined;
let clientConn: HostConn | undefined;
let reading = true;
const received: Uint8Array[] = [];

server.onEvent((ev) => {
  if (ev.kind === "accept") serverConn = server.stack.accept(ev.listener);
  else if (ev.event.kind === "readable" && reading && serverConn !== undefined) {
    for (let d = server.stack.recv(world.now, serverConn); d; d = server.stack.recv(world.now, serverConn)) {
      received.push(d.slice());
    }
  }
});
client.onEvent((ev) => {
  if (ev.kind === "conn" && ev.event.kind === "connected") clientConn = ev.conn;
});

server.stack.listen(80);
client.stack.connect(world.now, ip("192.0.2.2"), 80);
client.node.pump();
world.run(5_000); // 5 ms: connected

// Offload b's connection, and let its application stop reading: the target holds what arrives.
reading = false;
manager.knobs = { ...manager.knobs, queueLimit: 0 };
manager.offload(serverConn!);
server.node.pump();
world.run(world.now + 1_000);
client.stack.send(world.now, clientConn!, data); // the client sends while b is offloaded
client.node.pump();
world.run(world.now + 100_000);
console.log(`offloaded: ${serverConn!.phase}, application has read ${received.length} chunks`);

// Terminate: the target returns what it holds as BufferedData; the host delivers it in order.
reading = true;
manager.knobs = { ...manager.knobs, queueLimit: 1 << 20 };
manager.terminate(serverConn!);
server.node.pump();
world.run(world.now + 100_000);

const got = new Uint8Array(received.reduce((n, c) => n + c.length, 0));
received.reduce((at, c) => (got.set(c, at), at + c.length), 0);
const same = got.length === data.length && got.every((b, i) => b === data[i]);
console.log(
  `back on the ${serverConn!.phase}: ${manager.stats.bufferedDataIn} bytes came back as BufferedData`,
);
console.log(`read ${got.length} of ${data.length} bytes, identical: ${same}`);
server.ledger!.assertQuiescent(); // every NBL is back with its owner
console.log("ledger quiescent");
