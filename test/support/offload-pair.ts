/**
 * Two hosts over the simulator, each optionally with an offload target, running the bulk
 * pattern exchange of sim-pair.ts while a schedule offloads and uploads the connection. The run
 * is a pure function of its parameters; `describeRun` prints everything needed to replay it.
 */
import { segmentHost } from "../../src/sim/segment-host.js";
import {
  acceptAllKnobs,
  type OffloadPolicy,
  type OffloadStats,
  type ReceiveKnobs,
} from "../../src/host/offload-manager.js";
import { type HostConn, type StackEvent } from "../../src/host/stack.js";
import type { OffloadManager } from "../../src/host/offload-manager.js";
import { BufferLedger } from "../../src/nbl/ledger.js";
import { buildDuplexLink, type FaultProfile } from "../../src/sim/link.js";
import { createChimney } from "../../src/node/chimney-node.js";
import { SimHost } from "../../src/sim/host-node.js";
import { Prng } from "../../src/sim/prng.js";
import { Scheduler, type SchedulerChooser } from "../../src/sim/scheduler.js";
import { tcpConfig, type TcpConfig } from "../../src/tcp/config.js";
import { Duration, Instant } from "../../src/time/instant.js";
import { mac } from "../../src/wire/ethernet.js";
import { ip } from "../../src/wire/ip-addr.js";
import { asyncChimney } from "./async-boundary.js";
import { patternMismatch, sendPattern } from "./sim-pair.js";

/** How the hosts consume indications: a named profile of `ReceiveKnobs`. */
export type KnobProfile = "accept-all" | "mixed" | "refuse-heavy" | "posting";

/** One run. `toggles` are virtual times (us) at which the chosen sides offload or upload. */
export interface OffloadRun {
  readonly seed: number;
  readonly bytesAtoB: number;
  readonly bytesBtoA: number;
  readonly profile: FaultProfile;
  /** Which hosts have a target. */
  readonly sides: "none" | "a" | "b" | "both";
  /** Offload right after establishment. */
  readonly offloadAtStart: boolean;
  /** Times (us after start) at which each offload-capable side flips (offload <-> upload). */
  readonly toggles: readonly number[];
  readonly knobs: KnobProfile;
  readonly family?: 4 | 6 | undefined;
  readonly tcp?: Partial<TcpConfig> | undefined;
  readonly chunk?: number | undefined;
  /** The application reads only every so often (us), leaving data buffered; 0 = at once. */
  readonly lazyReadUs?: number | undefined;
  readonly limitUs?: number | undefined;
  /** How long the targets take to complete state operations (us); default 0. */
  readonly opDelayUs?: number | undefined;
  /**
   * The host and its target talk through queues, one delivery per scheduler event, as with the
   * worker target (test/support/async-boundary.ts); default: direct calls.
   */
  readonly asyncBoundary?: boolean | undefined;
  /**
   * Times (us after start) at which each side whose connection is offloaded pushes changed
   * cached state (UpdateOffload: Nagle switched), and at which it invalidates it
   * (InvalidateOffload). Labelled `update` and `invalidate` for the explorer.
   */
  readonly updates?: readonly number[] | undefined;
  readonly invalidates?: readonly number[] | undefined;
  /** Orders events due at the same instant (the explorer); default FIFO. Not part of the replay line. */
  readonly choose?: SchedulerChooser | undefined;
}

/** What happened. */
export interface OffloadOutcome {
  readonly receivedByA: number;
  readonly receivedByB: number;
  readonly mismatchAt: string | undefined;
  readonly closedA: string | undefined;
  readonly closedB: string | undefined;
  readonly idle: boolean;
  readonly leak: string | undefined;
  readonly offloads: number;
  readonly uploads: number;
  readonly bufferedDataIn: number;
  readonly refusals: number;
  readonly posts: number;
  readonly log: string;
  readonly error: string | undefined;
  /** Both managers' counters, summed. */
  readonly stats: Readonly<Record<keyof OffloadStats, number>>;
}

/** The replay line for a failure message. */
export function describeRun(r: OffloadRun): string {
  return `replay: ${JSON.stringify({ ...r, choose: undefined })}`;
}

/** The receive knobs of a profile, drawing from `rng`. */
export function knobsFor(profile: KnobProfile, rng: Prng): ReceiveKnobs {
  const random = { nextU32: () => rng.nextU32() };
  switch (profile) {
    case "accept-all":
      return acceptAllKnobs(random);
    case "mixed":
      return {
        random,
        acceptAll: 3,
        acceptPrefix: 1,
        refuse: 1,
        post: 0.3,
        postSizes: [0, 100, 1460, 4096, 20000],
        nonPush: 0.4,
        prefill: 0.5,
        zeroByte: 0.5,
        queueLimit: 64 * 1024,
        terminateDuringIndication: 0.01,
      };
    case "refuse-heavy":
      return {
        random,
        acceptAll: 1,
        acceptPrefix: 2,
        refuse: 3,
        post: 0.1,
        postSizes: [512, 3000],
        nonPush: 0.2,
        prefill: 0.3,
        zeroByte: 0.7,
        queueLimit: 8 * 1024,
        terminateDuringIndication: 0.02,
      };
    case "posting":
      return {
        random,
        acceptAll: 1,
        acceptPrefix: 0,
        refuse: 0,
        post: 1,
        postSizes: [700, 8192, 65536],
        nonPush: 0.5,
        prefill: 0.5,
        zeroByte: 0,
        queueLimit: 1 << 20,
      };
  }
}

/** Runs one exchange. */
export function runOffloadPair(p: OffloadRun): OffloadOutcome {
  const sched = new Scheduler({ choose: p.choose });
  const root = new Prng(p.seed);
  const linkRng = root.fork();
  const knobRng = root.fork();
  const appRng = root.fork();
  const mtu = 1500;
  const tcp = tcpConfig({ ...p.tcp });
  const policy: OffloadPolicy = {};
  const ledgers: BufferLedger[] = [];
  const mk = (name: string, n: number, rng: Prng, withTarget: boolean) => {
    const stack = segmentHost(n, { tcp, random: rng, mtu, ipv6: true });
    if (!withTarget) return new SimHost(name, stack, sched);
    if (p.asyncBoundary === true) {
      const c = asyncChimney(stack, sched, {
        mac: mac(`02:00:00:00:00:0${n}`),
        policy,
        knobs: knobsFor(p.knobs, knobRng.fork()),
        target: { operationDelay: Duration.fromMicros(p.opDelayUs ?? 0) },
      });
      ledgers.push(c.ledger);
      const node = new SimHost(name, stack, sched, c);
      c.pump = () => node.pump();
      return node;
    }
    const chimney = createChimney(stack, {
      mac: mac(`02:00:00:00:00:0${n}`),
      policy,
      knobs: knobsFor(p.knobs, knobRng.fork()),
      target: { operationDelay: Duration.fromMicros(p.opDelayUs ?? 0) },
    });
    ledgers.push(chimney.ledger);
    return new SimHost(name, stack, sched, chimney);
  };
  const a = mk("a", 1, root.fork(), p.sides === "a" || p.sides === "both");
  const b = mk("b", 2, root.fork(), p.sides === "b" || p.sides === "both");
  const link = buildDuplexLink(a.port(0), b.port(0), {
    scheduler: sched,
    prng: linkRng,
    profile: { ...p.profile, mtu, linkHeaderBytes: 14 },
  });
  a.attach(0, link.aToB);
  b.attach(0, link.bToA);

  const chunk = p.chunk ?? 16384;
  let mismatch: string | undefined;
  let error: string | undefined;
  const got = [0, 0];
  const closed: (string | undefined)[] = [undefined, undefined];
  const conns: (HostConn | undefined)[] = [undefined, undefined];
  const lazy = p.lazyReadUs ?? 0;

  const app = (node: SimHost, dir: number, total: number) => {
    let sent = 0;
    let finished = false;
    let readPending = false;
    const read = (conn: HostConn) => {
      const other = 1 - dir;
      for (let d = node.stack.recv(sched.now, conn); d !== undefined; d = node.stack.recv(sched.now, conn)) {
        const base = got[dir] ?? 0;
        mismatch ??= patternMismatch(node.name, other, base, d);
        got[dir] = base + d.length;
      }
    };
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
        if (lazy === 0 || closed[dir] !== undefined) {
          read(conn);
          return;
        }
        if (readPending) return;
        readPending = true;
        sched.after((1 + appRng.below(lazy)) as never, `${node.name} app read`, () => {
          readPending = false;
          if (closed[dir] === undefined) read(conn);
          node.pump();
        });
      },
    };
  };
  const appA = app(a, 0, p.bytesAtoB);
  const appB = app(b, 1, p.bytesBtoA);
  const handler = (node: SimHost, which: number, theApp: ReturnType<typeof app>) => (ev: StackEvent) => {
    if (ev.kind === "accept") {
      const conn = node.stack.accept(ev.listener);
      if (conn !== undefined) {
        conns[which] = conn;
        if (p.offloadAtStart) node.manager?.offload(conn);
        theApp.write(conn);
      }
      return;
    }
    const e = ev.event;
    switch (e.kind) {
      case "connected":
        conns[which] = ev.conn;
        if (p.offloadAtStart) node.manager?.offload(ev.conn);
        theApp.write(ev.conn);
        break;
      case "writable":
        theApp.write(ev.conn);
        break;
      case "readable":
      case "peer-fin":
        theApp.read(ev.conn);
        break;
      case "closed":
        if (closed[which] === undefined) {
          // Whatever is still readable was delivered before the close (as a host socket would).
          for (
            let d = node.stack.recv(sched.now, ev.conn);
            d !== undefined;
            d = node.stack.recv(sched.now, ev.conn)
          ) {
            const base = got[which] ?? 0;
            mismatch ??= patternMismatch(`${node.name} (at close)`, 1 - which, base, d);
            got[which] = base + d.length;
          }
        }
        closed[which] = e.error ?? e.reason;
        break;
      case "acked":
        break;
    }
  };
  a.onEvent = handler(a, 0, appA);
  b.onEvent = handler(b, 1, appB);

  let offloads = 0;
  let uploads = 0;
  for (const at of p.toggles) {
    sched.at(Instant.fromMicros(at), "toggle", () => {
      for (const [i, node] of [a, b].entries()) {
        const c = conns[i];
        const m = node.manager;
        if (c === undefined || m === undefined) continue;
        if (c.phase === "host") {
          if (m.offload(c)) offloads++;
        } else if (c.phase === "offloaded") {
          if (m.terminate(c)) uploads++;
        }
        node.pump();
      }
    });
  }

  const onOffloaded = (
    label: string,
    times: readonly number[],
    act: (m: OffloadManager, c: HostConn) => void,
  ) => {
    for (const at of times) {
      sched.at(Instant.fromMicros(at), label, () => {
        for (const [i, node] of [a, b].entries()) {
          const c = conns[i];
          const m = node.manager;
          if (c === undefined || m === undefined || c.phase !== "offloaded") continue;
          act(m, c);
          node.pump();
        }
      });
    }
  };
  onOffloaded("update", p.updates ?? [], (m, c) => {
    m.updateTcp(c, (cur) => ({ naglingEnabled: !cur.naglingEnabled }));
  });
  onOffloaded("invalidate", p.invalidates ?? [], (m, c) => {
    m.invalidate(c);
  });

  b.stack.listen(80);
  a.stack.connect(Instant.ZERO, (p.family ?? 4) === 4 ? ip("192.0.2.2") : ip("2001:db8::2"), 80);
  a.pump();
  const limit = Instant.fromMicros(p.limitUs ?? 600_000_000);
  let idle = false;
  try {
    for (let n = 0; n < 20_000_000; n++) {
      const next = sched.nextAt();
      if (next === undefined) {
        idle = true;
        break;
      }
      if (next > limit) break;
      sched.step();
    }
  } catch (e) {
    error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e);
  }
  let leak: string | undefined;
  for (const l of ledgers) {
    try {
      l.assertQuiescent();
    } catch (e) {
      leak = e instanceof Error ? e.message : String(e);
    }
  }
  const log = [a, b]
    .flatMap((n) =>
      (n.manager?.log ?? []).map((e) => `${n.name} ${e.at}us #${String(e.conn)} ${e.op} ${e.detail}`),
    )
    .slice(-60)
    .join("\n");
  const st = (k: "bufferedDataIn" | "refusals" | "posts") =>
    (a.manager?.stats[k] ?? 0) + (b.manager?.stats[k] ?? 0);
  return {
    receivedByA: got[0] ?? 0,
    receivedByB: got[1] ?? 0,
    mismatchAt: mismatch,
    closedA: closed[0],
    closedB: closed[1],
    idle,
    leak,
    offloads: offloads + (p.offloadAtStart ? 1 : 0),
    uploads,
    bufferedDataIn: st("bufferedDataIn"),
    refusals: st("refusals"),
    posts: st("posts"),
    log,
    error,
    stats: sumStats(a.manager?.stats, b.manager?.stats),
  };
}

function sumStats(
  x: OffloadStats | undefined,
  y: OffloadStats | undefined,
): Record<keyof OffloadStats, number> {
  const out: Partial<Record<keyof OffloadStats, number>> = {};
  for (const src of [x, y]) {
    if (src === undefined) continue;
    for (const key of Object.keys(src) as (keyof OffloadStats)[]) {
      out[key] = (out[key] ?? 0) + src[key];
    }
  }
  return out as Record<keyof OffloadStats, number>; // missing keys read as undefined; callers use ?? 0
}
