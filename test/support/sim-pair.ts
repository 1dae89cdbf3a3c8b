/**
 * Two host stacks on one simulated Ethernet segment, and a bulk application that sends a
 * known pattern each way and checks every byte read. The run is a pure function of its
 * parameters; failures print the seed.
 */
import { segmentHost } from "../../src/sim/segment-host.js";
import { HostStack, type HostConn, type StackEvent } from "../../src/host/stack.js";
import { buildDuplexLink, type FaultProfile } from "../../src/sim/link.js";
import { SimHost } from "../../src/sim/host-node.js";
import { Prng } from "../../src/sim/prng.js";
import { Scheduler } from "../../src/sim/scheduler.js";
import { tcpConfig, type TcpConfig } from "../../src/tcp/config.js";
import { Instant } from "../../src/time/instant.js";
import { ip } from "../../src/wire/ip-addr.js";

/** The byte at stream offset `i` of direction `dir` (0: a->b, 1: b->a). */
export function patternByte(dir: number, i: number): number {
  return (i * 31 + (i >>> 8) + dir * 101) & 0xff;
}

/** Fills `out` with the pattern starting at stream offset `from`. */
export function fillPattern(dir: number, from: number, out: Uint8Array): Uint8Array {
  for (let i = 0; i < out.length; i++) out[i] = patternByte(dir, from + i);
  return out;
}

/**
 * Writes direction `dir`'s pattern from stream offset `sent` toward `total` in `chunk`-byte
 * writes until done or the stack takes less than offered; returns the new offset.
 */
export function sendPattern(
  stack: HostStack,
  now: Instant,
  conn: HostConn,
  dir: number,
  sent: number,
  total: number,
  chunk: number,
): number {
  let at = sent;
  while (at < total) {
    const n = Math.min(chunk, total - at);
    const taken = stack.send(now, conn, fillPattern(dir, at, new Uint8Array(n)));
    at += taken;
    if (taken < n) break;
  }
  return at;
}

/** Where `d`, read at stream offset `base`, first differs from direction `dir`'s pattern, or undefined. */
export function patternMismatch(who: string, dir: number, base: number, d: Uint8Array): string | undefined {
  for (let i = 0; i < d.length; i++) {
    if (d[i] !== patternByte(dir, base + i)) {
      return `${who} read byte ${base + i}: got ${d[i]}, want ${patternByte(dir, base + i)}`;
    }
  }
  return undefined;
}

/** Parameters of one run. */
export interface PairRun {
  readonly seed: number;
  readonly bytesAtoB: number;
  readonly bytesBtoA: number;
  readonly profile: FaultProfile;
  readonly family?: 4 | 6 | undefined;
  readonly tcp?: Partial<TcpConfig> | undefined;
  readonly mtu?: number | undefined;
  /** Bytes per application write. */
  readonly chunk?: number | undefined;
  /** Virtual-time budget in microseconds. */
  readonly limitUs?: number | undefined;
}

/** What happened. */
export interface PairOutcome {
  readonly seed: number;
  readonly receivedByA: number;
  readonly receivedByB: number;
  readonly mismatchAt: string | undefined;
  readonly closedA: string | undefined;
  readonly closedB: string | undefined;
  readonly endUs: number;
  readonly retransmits: number;
  readonly idle: boolean;
}

/** Runs one bulk exchange. */
export function runPair(p: PairRun): PairOutcome {
  const sched = new Scheduler();
  const root = new Prng(p.seed);
  const linkRng = root.fork();
  const mtu = p.mtu ?? 1500;
  const tcp = tcpConfig({ ...p.tcp });
  const mk = (name: string, n: number, rng: Prng) =>
    new SimHost(name, segmentHost(n, { tcp, random: rng, mtu }), sched);
  const a = mk("a", 1, root.fork());
  const b = mk("b", 2, root.fork());
  const link = buildDuplexLink(a.port(0), b.port(0), {
    scheduler: sched,
    prng: linkRng,
    profile: { ...p.profile, mtu, linkHeaderBytes: 14 },
  });
  a.attach(0, link.aToB);
  b.attach(0, link.bToA);

  const chunk = p.chunk ?? 16384;
  let mismatch: string | undefined;
  const got = [0, 0];
  const closed: (string | undefined)[] = [undefined, undefined];

  /** One endpoint's application: writes its pattern, reads and checks the other's. */
  const app = (node: SimHost, dir: number, total: number) => {
    let sent = 0;
    let finished = false;
    return {
      write(conn: HostConn) {
        const now = sched.now;
        sent = sendPattern(node.stack, now, conn, dir, sent, total, chunk);
        if (sent === total && !finished) {
          finished = true;
          node.stack.close(now, conn);
        }
      },
      read(conn: HostConn) {
        const other = 1 - dir;
        for (
          let d = node.stack.recv(sched.now, conn);
          d !== undefined;
          d = node.stack.recv(sched.now, conn)
        ) {
          const base = got[dir]!;
          mismatch ??= patternMismatch(node.name, other, base, d);
          got[dir] = base + d.length;
        }
      },
    };
  };
  const appA = app(a, 0, p.bytesAtoB);
  const appB = app(b, 1, p.bytesBtoA);
  const handler = (node: SimHost, which: number, theApp: ReturnType<typeof app>) => (ev: StackEvent) => {
    if (ev.kind === "accept") {
      const conn = node.stack.accept(ev.listener);
      if (conn !== undefined) theApp.write(conn);
      return;
    }
    const e = ev.event;
    switch (e.kind) {
      case "connected":
      case "writable":
        theApp.write(ev.conn);
        break;
      case "readable":
      case "peer-fin":
        theApp.read(ev.conn);
        break;
      case "closed":
        closed[which] = e.error ?? e.reason;
        break;
      case "acked":
        break;
    }
  };
  a.onEvent = handler(a, 0, appA);
  b.onEvent = handler(b, 1, appB);

  const family = p.family ?? 4;
  b.stack.listen(80);
  a.stack.connect(Instant.ZERO, family === 4 ? ip("192.0.2.2") : ip("2001:db8::2"), 80);
  a.pump();
  const limit = Instant.fromMicros(p.limitUs ?? 600_000_000);
  let idle = false;
  for (let n = 0; n < 50_000_000; n++) {
    const next = sched.nextAt();
    if (next === undefined) {
      idle = true;
      break;
    }
    if (next > limit) break;
    sched.step();
  }
  const rtx = [...a.stack.connections(), ...b.stack.connections()].reduce(
    (s, c) => s + (c.tcp?.stats.retransmits ?? 0),
    0,
  );
  return {
    seed: p.seed,
    receivedByA: got[0]!,
    receivedByB: got[1]!,
    mismatchAt: mismatch,
    closedA: closed[0],
    closedB: closed[1],
    endUs: sched.now,
    retransmits: rtx,
    idle,
  };
}
