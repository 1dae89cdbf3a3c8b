// Misuse of the stack's public entry points gets a typed error (ERR_USAGE) and loses nothing: a
// string handed to `send` once took 5 bytes and then wrecked every later step ("c.subarray is not
// a function"); a null connection or time crashed deep inside. Each bad call must throw at the
// door, before any state changes, and the connection must keep carrying data afterwards.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { HostConn, HostStack } from "../src/host/stack.js";
import { UsageError } from "../src/util/errors.js";
import { chimneyPair, connectPair, PAIR_NOW, settle } from "./support/chimney-pair.js";

/** `fn` throws a UsageError (stable code ERR_USAGE). */
function throwsUsage(fn: () => unknown, what: string): void {
  assert.throws(fn, (e: unknown) => e instanceof UsageError && e.code === "ERR_USAGE", what);
}

void test("bad arguments to the stack's entry points are ERR_USAGE and the connection keeps working", () => {
  const p = chimneyPair();
  const [pair] = connectPair(p, 1);
  assert.ok(pair !== undefined);
  const [, peer] = pair;
  const b: HostStack = p.b;
  const bad = (v: unknown) => v as never;
  throwsUsage(() => b.send(PAIR_NOW, peer, bad("hello")), "send(string)");
  throwsUsage(() => b.send(PAIR_NOW, peer, bad(null)), "send(null)");
  throwsUsage(() => b.send(PAIR_NOW, bad(null), new Uint8Array(1)), "send on null");
  throwsUsage(() => b.send(bad(undefined), peer, new Uint8Array(1)), "send at no time");
  throwsUsage(() => b.recv(PAIR_NOW, peer, -1), "recv(-1)");
  throwsUsage(() => b.recv(PAIR_NOW, bad({})), "recv on a plain object");
  throwsUsage(() => b.close(PAIR_NOW, bad(null)), "close(null)");
  throwsUsage(() => b.abort(PAIR_NOW, bad("c1")), "abort(string)");
  throwsUsage(() => b.configure(PAIR_NOW, peer, bad(null)), "configure without a function");
  throwsUsage(() => b.handleFrame(PAIR_NOW, 0, bad("frame")), "handleFrame(string)");
  throwsUsage(() => b.connect(PAIR_NOW, bad("192.0.2.1"), 80), "connect to a string");
  throwsUsage(() => b.listen(bad("80")), "listen on a string port");
  throwsUsage(() => b.accept(bad(null)), "accept(null)");
  // Nothing was taken: the stream still starts at its first byte and arrives whole.
  const data = Uint8Array.from({ length: 20_000 }, (_, i) => (i * 7 + 3) & 0xff);
  let sent = 0;
  for (let i = 0; sent < data.length && i < 1000; i++) {
    sent += b.send(PAIR_NOW, peer, data.subarray(sent));
    settle(p);
  }
  assert.equal(sent, data.length);
  const c: HostConn = pair[0];
  const got: number[] = [];
  for (let d = p.a.recv(PAIR_NOW, c); d !== undefined; d = p.a.recv(PAIR_NOW, c)) got.push(...d);
  assert.deepEqual(Uint8Array.from(got), data);
});
