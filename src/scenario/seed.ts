/**
 * The seed scenario, the chimney's reason to exist in one run: a client and a server exchange
 * data; the server's connection is offloaded; more data arrives while the server's application
 * reads nothing, so the target holds it undelivered; the host terminates the offload; the data
 * comes back as BufferedData, is copied into the host's receive buffer, delivered to the
 * application in order and ahead of anything received later, and its NBLs go back to the target.
 *
 * `runSeedScenario` returns a structured timeline (byte counts and sequence numbers) and the
 * verification: the streams each application read and the streams the peers wrote (the CLI
 * hashes them) and the list of checks, the one source of every verdict (the timeline's last step,
 * `ok` and the CLI's lines all read it).
 *
 * The held bytes must fit the target's receive window (the TCP receive buffer, `seedHeldMax`):
 * beyond it the client cannot send them all while the server reads nothing, so they could not
 * all be held at the upload.
 */
import type { OffloadLogEntry } from "../host/offload-manager.js";
import { DEFAULT_SCENARIO_PORT } from "./schema.js";
import type { HostConn, StackEvent } from "../host/stack.js";
import { tcpConfig } from "../tcp/config.js";
import { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { buildChimneyWorld } from "../sim/chimney-world.js";
import type { FaultProfile } from "../sim/link.js";

/** Parameters of the seed scenario (all optional). */
export interface SeedScenarioOptions {
  readonly seed?: number | undefined;
  /** Client -> server bytes before the offload, while offloaded (held by the target), after the upload. */
  readonly before?: number | undefined;
  readonly held?: number | undefined;
  readonly after?: number | undefined;
  /** Server -> client bytes before the offload. */
  readonly reply?: number | undefined;
  readonly profile?: FaultProfile | undefined;
}

/** One step of the timeline. */
export interface SeedStep {
  readonly atUs: number;
  /** "app", "chimney" (a manager step of the server) or "check". */
  readonly kind: "app" | "chimney" | "check";
  readonly step: string;
  readonly detail: string;
}

/** One verification of the run. */
export interface SeedCheck {
  /** Stable identifier. */
  readonly id: "client-stream" | "server-stream" | "buffered-data" | "ahead-of-newer" | "ledgers";
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The most bytes the target can hold undelivered: its receive window, the TCP receive buffer. */
export function seedHeldMax(): number {
  return tcpConfig().recvBufferSize;
}

/** What the scenario returns. */
export interface SeedScenarioResult {
  readonly seed: number;
  readonly timeline: readonly SeedStep[];
  /** What the server application read, and what the client wrote. */
  readonly serverRead: Uint8Array;
  readonly clientWrote: Uint8Array;
  /** What the client application read, and what the server wrote. */
  readonly clientRead: Uint8Array;
  readonly serverWrote: Uint8Array;
  /** Bytes the target held undelivered and returned as BufferedData at the upload. */
  readonly bufferedDataBytes: number;
  /** The server read every held byte after the upload before any byte sent after it. */
  readonly deliveredAheadOfNewer: boolean;
  /** Retransmissions by the client, and by the server's engine after the upload (no storm). */
  readonly clientRetransmits: number;
  readonly serverRetransmitsAfterUpload: number;
  readonly streamsMatch: boolean;
  readonly ledgersQuiescent: boolean;
  /** Every verification; `ok` is true exactly when all of them hold. */
  readonly checks: readonly SeedCheck[];
  readonly ok: boolean;
}

/** The byte at offset `i` of the client's (dir 0) or server's (dir 1) stream. */
function pattern(dir: number, i: number): number {
  return (i * 13 + (i >>> 9) + dir * 71) & 0xff;
}

function fill(dir: number, from: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = pattern(dir, from + i);
  return out;
}

/** Runs the seed scenario. */
export function runSeedScenario(opts: SeedScenarioOptions = {}): SeedScenarioResult {
  const seed = opts.seed ?? 1;
  const before = opts.before ?? 20_000;
  const held = opts.held ?? 30_000;
  const heldMax = seedHeldMax();
  if (!(Number.isSafeInteger(held) && held >= 1 && held <= heldMax))
    throw new UsageError(
      `held must be an integer in 1..${heldMax} (the target's receive window), got ${held}`,
    );
  const after = opts.after ?? 5_000;
  const reply = opts.reply ?? 10_000;
  const total = before + held + after;
  const w = buildChimneyWorld({
    seed,
    profile: opts.profile ?? { delayUs: 1000 },
    a: { offload: false },
    b: {},
  });
  const timeline: SeedStep[] = [];
  const at = () => w.sched.now as number;
  const server = w.b;
  const client = w.a;
  const mgr = server.manager;
  const target = server.target;
  if (mgr === undefined || target === undefined) throw new Error("the server needs an offload target");
  let seen = 0;
  /** Moves the server manager's new steps into the timeline, so the order is causal. */
  const sync = () => {
    for (; seen < mgr.log.length; seen++) {
      const e = mgr.log[seen];
      if (e !== undefined) timeline.push(chimneyStep(e));
    }
  };
  const note = (kind: SeedStep["kind"], step: string, detail: string) => {
    sync();
    timeline.push({ atUs: at(), kind, step, detail });
  };
  const serverKnobs = mgr.knobs;

  const serverReadChunks: Uint8Array[] = [];
  const clientReadChunks: Uint8Array[] = [];
  let serverRead = 0;
  let clientRead = 0;
  let clientSent = 0;
  let serverSent = 0;
  let serverConn: HostConn | undefined;
  let clientConn: HostConn | undefined;
  let serverReading = true;
  let phase: "exchange" | "held" | "after" | "done" = "exchange";
  const sendUpTo = (who: "client" | "server", limit: number) => {
    const conn = who === "client" ? clientConn : serverConn;
    const stack = who === "client" ? client.stack : server.stack;
    if (conn === undefined) return;
    for (;;) {
      const sent = who === "client" ? clientSent : serverSent;
      if (sent >= limit) return;
      const n = stack.send(
        w.sched.now,
        conn,
        fill(who === "client" ? 0 : 1, sent, Math.min(8192, limit - sent)),
      );
      if (n === 0) return;
      if (who === "client") clientSent += n;
      else serverSent += n;
    }
  };
  const drain = (who: "client" | "server") => {
    const conn = who === "client" ? clientConn : serverConn;
    const stack = who === "client" ? client.stack : server.stack;
    if (conn === undefined) return;
    for (let d = stack.recv(w.sched.now, conn); d !== undefined; d = stack.recv(w.sched.now, conn)) {
      if (who === "client") {
        clientReadChunks.push(d.slice());
        clientRead += d.length;
      } else {
        serverReadChunks.push(d.slice());
        serverRead += d.length;
      }
    }
  };
  const clientLimit = () => (phase === "exchange" ? before : phase === "held" ? before + held : total);
  server.onEvent((ev: StackEvent) => {
    if (ev.kind === "accept") {
      serverConn = server.stack.accept(ev.listener);
      note("app", "accept", `server accepted ${serverConn?.toString() ?? "?"}`);
      sendUpTo("server", reply);
      return;
    }
    const e = ev.event;
    if (e.kind === "readable" && serverReading) drain("server");
    if (e.kind === "writable") sendUpTo("server", reply);
    if (e.kind === "peer-fin") {
      drain("server");
      note("app", "server-eof", `server read ${serverRead} bytes in all`);
      if (serverConn !== undefined) server.stack.close(w.sched.now, serverConn);
    }
  });
  client.onEvent((ev: StackEvent) => {
    if (ev.kind !== "conn") return;
    const e = ev.event;
    if (e.kind === "connected") {
      clientConn = ev.conn;
      note("app", "connected", `client ${ev.conn.toString()}`);
      sendUpTo("client", clientLimit());
    }
    if (e.kind === "writable") sendUpTo("client", clientLimit());
    if (e.kind === "readable" || e.kind === "peer-fin") drain("client");
  });

  server.stack.listen(DEFAULT_SCENARIO_PORT);
  client.stack.connect(Instant.ZERO, Uint8Array.of(192, 0, 2, 2), DEFAULT_SCENARIO_PORT);
  client.node.pump();
  // 1. Exchange: the client sends `before`, the server replies `reply`; both read everything.
  w.run(at() + 200_000);
  note("check", "exchanged", `server read ${serverRead}/${before}, client read ${clientRead}/${reply}`);
  // 2. Offload the server's connection.
  if (serverConn === undefined) throw new Error("no connection");
  const sc = serverConn;
  server.node.pump(); // brings the stack's clock to now
  mgr.offload(sc);
  server.node.pump();
  w.run(at() + 10_000);
  note("check", "offloaded", `server connection is ${sc.phase}; target runs ${target.connectionCount}`);
  // 3. The server application stops reading: the target holds what arrives.
  serverReading = false;
  mgr.knobs = { ...serverKnobs, queueLimit: 0 };
  phase = "held";
  sendUpTo("client", clientLimit());
  client.node.pump();
  w.run(at() + 200_000);
  // The server's host refused everything since the offload: the rest is at the target.
  const heldAtTarget = clientSent - serverRead;
  note("check", "held", `target holds ${heldAtTarget} bytes undelivered; server read ${serverRead}`);
  // 4. The host terminates the offload: BufferedData comes back.
  server.node.pump();
  mgr.terminate(sc);
  server.node.pump();
  w.run(at() + 10_000);
  note("check", "uploaded", `server connection is ${sc.phase}; readable ${server.stack.readable(sc)} bytes`);
  // 5. Newer data after the upload; the application reads again.
  const readAtUpload = serverRead;
  serverReading = true;
  mgr.knobs = serverKnobs;
  phase = "after";
  drain("server");
  const aheadOk = serverRead - readAtUpload >= heldAtTarget && serverRead <= before + held;
  note(
    "app",
    "read-buffered",
    `server read ${serverRead - readAtUpload} bytes of BufferedData before any newer byte`,
  );
  sendUpTo("client", clientLimit());
  client.node.pump();
  w.run(at() + 200_000);
  phase = "done";
  if (clientConn !== undefined) client.stack.close(w.sched.now, clientConn);
  client.node.pump();
  const idle = w.run(at() + 600_000_000);

  const cat = (chunks: Uint8Array[], n: number) => {
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  };
  const serverBytes = cat(serverReadChunks, serverRead);
  const clientBytes = cat(clientReadChunks, clientRead);
  const clientWrote = fill(0, 0, clientSent);
  const serverWrote = fill(1, 0, serverSent);
  const eq = (x: Uint8Array, y: Uint8Array) => x.length === y.length && x.every((v, i) => v === y[i]);
  const clientStreamOk = eq(serverBytes, clientWrote) && clientSent === total;
  const serverStreamOk = eq(clientBytes, serverWrote) && serverSent === reply;
  const streamsMatch = clientStreamOk && serverStreamOk;
  let quiescent = true;
  try {
    server.ledger?.assertQuiescent();
  } catch {
    quiescent = false;
  }
  const checks: SeedCheck[] = [
    {
      id: "client-stream",
      name: "client -> server stream",
      ok: clientStreamOk,
      detail: `${clientSent} of ${total} bytes written, ${serverRead} read`,
    },
    {
      id: "server-stream",
      name: "server -> client stream",
      ok: serverStreamOk,
      detail: `${serverSent} of ${reply} bytes written, ${clientRead} read`,
    },
    {
      id: "buffered-data",
      name: "BufferedData came back",
      ok: mgr.stats.bufferedDataIn > 0,
      detail: `${mgr.stats.bufferedDataIn} bytes returned in the delegated state`,
    },
    {
      id: "ahead-of-newer",
      name: "delivered ahead of newer data",
      ok: aheadOk,
      detail: "every held byte was read before any byte received after the upload",
    },
    {
      id: "ledgers",
      name: "ledgers quiescent",
      ok: quiescent,
      detail: "every NBL is back with its owner; none leaked",
    },
  ];
  const ok = checks.every((c) => c.ok);
  const failed = checks.filter((c) => !c.ok).map((c) => c.name);
  note(
    "check",
    "verified",
    `${ok ? `all ${checks.length} checks hold` : `FAILED: ${failed.join(", ")}`}; idle ${idle}`,
  );
  return {
    seed,
    timeline,
    serverRead: serverBytes,
    clientWrote,
    clientRead: clientBytes,
    serverWrote,
    bufferedDataBytes: mgr.stats.bufferedDataIn,
    deliveredAheadOfNewer: aheadOk,
    clientRetransmits: clientConn?.tcp?.stats.retransmits ?? 0,
    serverRetransmitsAfterUpload: sc.tcp?.stats.retransmits ?? 0,
    streamsMatch,
    ledgersQuiescent: quiescent,
    checks,
    ok,
  };
}

function chimneyStep(e: OffloadLogEntry): SeedStep {
  return { atUs: e.at, kind: "chimney", step: e.op, detail: e.detail };
}
