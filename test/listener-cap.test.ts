// A listener's cap on established connections (`maxEstablished`): a client that completes far
// more handshakes than the cap and holds them idle must not grow the server's connection table
// past the cap. At the cap the server stops completing handshakes (SYNs and final ACKs are
// dropped, counted in `dropEstablishedCap`), as with a full accept queue; once connections are
// freed (reset at once, or after TIME-WAIT for a graceful close) waiting clients get in, and
// data flows on the accepted connections throughout. Run over the simulator, through the
// `net`-style `server.listen({ maxEstablished })`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createSimNetwork, type HostListener, type Socket } from "../src/index.js";

const SEED = 31;
const CAP = 64;
const CLIENTS = 500;
const LATE = 20;
const GREETING = 10_000;
const REPLY = 5_000;
/** The stack's default SYN queue: half-open connections are bounded by it, not by the cap. */
const SYN_QUEUE = 256;

void test(`maxEstablished ${CAP}: ${CLIENTS} idle clients never grow the server past the cap`, async () => {
  const net = createSimNetwork({ seed: SEED });
  const why = (s: string): string => `${net.label}: ${s}`;
  const [a, b] = net.hosts;
  const server = b.createServer();
  const accepted: Socket[] = [];
  const received = new Map<Socket, number>();
  let listener: HostListener | undefined;
  let maxEstablished = 0;
  let maxTable = 0;
  /** Checks the bounds; called on every accept and at every step of virtual time. */
  const sample = (): void => {
    const origin = [...b.stack.connections()].filter((c) => c.origin !== undefined);
    if (listener !== undefined) assert.equal(listener.established, origin.length, why("the count is exact"));
    maxEstablished = Math.max(maxEstablished, origin.length);
    maxTable = Math.max(maxTable, b.stack.connectionCount);
    assert.ok(origin.length <= CAP, why(`${origin.length} live connections, over the cap ${CAP}`));
    assert.ok(
      b.stack.connectionCount <= CAP + SYN_QUEUE,
      why(`the table holds ${b.stack.connectionCount} connections`),
    );
  };
  server.on("connection", (s: Socket) => {
    s.on("error", () => undefined);
    accepted.push(s);
    received.set(s, 0);
    s.on("data", (d: Buffer) => received.set(s, (received.get(s) ?? 0) + d.length));
    s.write(new Uint8Array(GREETING).fill(0x5a));
    for (const c of b.stack.connections()) if (c.origin !== undefined) listener = c.origin;
    sample();
  });
  server.listen({ port: 80, maxEstablished: CAP });
  const stats = b.stack.stats;
  try {
    // Clients answer the greeting with a reply, and close when the server closes.
    const clients: Socket[] = [];
    const greeted = new Map<Socket, number>();
    const open = (): Socket => {
      const s = a.connect({ host: "b", port: 80 });
      s.on("error", () => undefined);
      greeted.set(s, 0);
      s.on("data", (d: Buffer) => {
        const n = (greeted.get(s) ?? 0) + d.length;
        greeted.set(s, n);
        if (n === GREETING) s.write(new Uint8Array(REPLY).fill(0xa5));
      });
      s.on("end", () => s.end());
      clients.push(s);
      return s;
    };
    for (let i = 0; i < CLIENTS; i++) open();
    await net.runUntil(
      () => {
        sample();
        return net.nowMs >= 3000;
      },
      { stepMs: 1 },
    );
    assert.equal(accepted.length, CAP, why("exactly the cap's worth were accepted"));
    assert.equal(maxEstablished, CAP);
    assert.ok(listener !== undefined && listener.maxEstablished === CAP, why("the option reached the stack"));
    assert.ok(
      stats.dropEstablishedCap >= CLIENTS - CAP,
      why(`${stats.dropEstablishedCap} handshakes refused, fewer than the ${CLIENTS - CAP} turned away`),
    );
    // Data flowed both ways on every accepted connection, and only on those.
    const full = clients.filter((s) => greeted.get(s) === GREETING);
    assert.equal(full.length, CAP, why("every accepted connection got its greeting"));
    assert.equal(
      clients.filter((s) => (greeted.get(s) ?? 0) > 0).length,
      CAP,
      why("no other client got a byte"),
    );
    assert.deepEqual(
      accepted.map((s) => received.get(s)),
      accepted.map(() => REPLY),
      why("every accepted connection got its reply"),
    );

    // Late clients: their SYNs are dropped while the cap holds; they keep retrying.
    const dropsBefore = stats.dropEstablishedCap;
    const late: Socket[] = [];
    for (let i = 0; i < LATE; i++) late.push(open());
    await net.runUntil(
      () => {
        sample();
        return net.nowMs >= 6000;
      },
      { stepMs: 1 },
    );
    assert.equal(accepted.length, CAP, why("nobody got in while the cap held"));
    assert.ok(
      late.every((s) => s.connecting),
      why("the late clients are still trying (SYN-SENT)"),
    );
    assert.ok(
      stats.dropEstablishedCap >= dropsBefore + LATE,
      why(`the refused count grew by ${stats.dropEstablishedCap - dropsBefore}, not by every late SYN`),
    );

    // Room comes back: 16 resets free their slots at once, and waiting clients take them.
    for (const s of accepted.slice(0, 16)) s.resetAndDestroy();
    await net.runUntil(
      () => {
        sample();
        return accepted.length === CAP + 16;
      },
      { stepMs: 1, timeoutMs: 20_000 },
    );
    // A graceful close keeps the connection in TIME-WAIT (2 MSL, 60 s) and in the count until it
    // is freed.
    const before = accepted.length;
    for (const s of accepted.slice(16, 24)) s.end();
    const closedAt = net.nowMs;
    await net.runUntil(
      () => {
        sample();
        return listener !== undefined && listener.established < CAP;
      },
      { stepMs: 10, timeoutMs: 120_000 },
    );
    const freedAfter = net.nowMs - closedAt;
    assert.ok(freedAfter >= 60_000, why(`TIME-WAIT slots came back after ${freedAfter} ms, before 2 MSL`));
    assert.ok(accepted.length <= before + 8, why("no slot went to anyone while TIME-WAIT held it"));
    // Fresh clients now get in at once (their SYNs are the only ones knocking).
    const fresh: Socket[] = [];
    for (let i = 0; i < 4; i++) fresh.push(open());
    await net.runUntil(
      () => {
        sample();
        return fresh.every((s) => greeted.get(s) === GREETING);
      },
      { stepMs: 1, timeoutMs: 1000 },
    );
    // Every connection the server accepted after the cap was reached got its greeting, and all
    // of them answered.
    await net.runUntil(
      () => {
        sample();
        return accepted.every((s, i) => i < 24 || received.get(s) === REPLY);
      },
      { stepMs: 1, timeoutMs: 1000 },
    );
    assert.ok(accepted.length >= CAP + 16 + 4, why(`${accepted.length} accepted in all`));

    // The half-open connections held back by the cap give up (6 SYN-ACK retransmissions):
    // what is left is the cap's worth of established connections, and nothing else.
    await net.runUntil(
      () => {
        sample();
        return net.nowMs >= closedAt + 200_000;
      },
      { stepMs: 100, timeoutMs: 300_000 },
    );
    assert.ok(listener !== undefined);
    assert.equal(
      b.stack.connectionCount,
      listener.established,
      why("no half-open connection is left: only counted ones"),
    );
    assert.ok(maxTable <= CAP + SYN_QUEUE, why(`the table peaked at ${maxTable}`));
    assert.equal(maxEstablished, CAP, why("the cap was reached and never passed"));
  } finally {
    net.stop();
  }
});
