// Types users rely on, checked by the compiler as part of the build (a regression here breaks
// `tsc -b`) and exercised at run time: the server's typed events (a misspelled name does not
// compile), and our `Socket` where Node's `net.Socket` is expected (http, a function taking one).
import assert from "node:assert/strict";
import * as http from "node:http";
import type * as net from "node:net";
import { test } from "node:test";
import { type ConnectOptions, createSimNetwork, type Server, type Socket, UsageError } from "../src/index.js";

/** A function written for Node's sockets. */
function describeNodeSocket(s: net.Socket): string {
  return `${s.remoteAddress ?? "?"}:${s.remotePort ?? "?"}`;
}

/** Compile-time checks only (never called). */
export function typeChecks(server: Server): void {
  server.on("connection", (s) => {
    const ours: Socket = s; // the listener gets our typed socket
    // It is a net.Socket where one is expected (what this file proves, so the lint rule is off).
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    describeNodeSocket(ours);
  });
  server.on("error", (e) => e.message);
  server.once("listening", () => undefined);
  // @ts-expect-error: a misspelled event name does not compile
  server.on("conection", () => undefined);
  // @ts-expect-error: the connection listener takes a socket, not a number
  server.on("connection", (n: number) => n);
  // @ts-expect-error: emit checks the arguments too
  server.emit("connection", "not a socket");
}

void test("connect: IPC paths throw UsageError; an options object with a port and an http path is TCP", () => {
  const simNet = createSimNetwork({ seed: 1 });
  try {
    const a = simNet.hosts[0];
    assert.throws(
      () => a.connect({ path: "/tmp/socket" } as unknown as ConnectOptions),
      (e: unknown) => e instanceof UsageError && e.code === "ERR_USAGE",
    );
    const s = a.connect({ port: 80, host: "b", path: "/index.html" } as ConnectOptions);
    assert.equal(s.connecting, true);
    s.destroy();
  } finally {
    simNet.stop();
  }
});

void test("our Socket is accepted by node:http as its connection, and req.socket is it (seed 1)", async () => {
  const simNet = createSimNetwork({ seed: 1 });
  try {
    const [a, b] = simNet.hosts;
    const httpServer = http.createServer((req, res) => {
      const s: net.Socket = req.socket;
      res.end(`${describeNodeSocket(s)} ${s.constructor.name}`);
    });
    const server = b.createServer((s) => {
      httpServer.emit("connection", s);
    });
    server.listen(80);
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get(
          { host: "b", port: 80, path: "/", createConnection: () => a.connect({ host: "b", port: 80 }) },
          (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (d: string) => (text += d));
            res.on("end", () => resolve(text));
          },
        )
        .on("error", reject);
    });
    assert.match(body, /^192\.0\.2\.1:\d+ Socket$/, `seed ${simNet.seed}`);
  } finally {
    simNet.stop();
  }
});
