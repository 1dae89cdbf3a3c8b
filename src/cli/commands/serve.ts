/**
 * `chimney serve`: our stack on a TAP device whose kernel side sits in a fresh network
 * namespace, serving HTTP (Node's `http` over our sockets): `POST /echo`, `GET /bytes/<n>`
 * (with an `x-sha256` header) and `POST /sink`. Prints the `ip netns exec` lines to try it;
 * Ctrl-C (or SIGTERM) stops it and removes the namespace. Needs root. Arguments are all checked
 * before the namespace exists; any later error removes it again before the command fails.
 *
 * `--target` puts a chimney in front of the stack (`inline`: the offload manager and the
 * software target in this thread; frames from the kernel enter the target first) or none.
 * With a target every served connection is offloaded once accepted, and `--flap <ms>` hands
 * each one back and forth every `ms` milliseconds (offload, terminate, offload, ...).
 *
 * `startServer` is the server part, reusable: it returns the running live host, so a caller in
 * the same process (the soak, soak/main.ts) can look at its tables while it serves.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import type * as http from "node:http";
import type { HostConn } from "../../host/stack.js";
import { type HttpLimits, serveHttpOn } from "../../live/http-app.js";
import {
  type FrameCapture,
  type LiveHost,
  type LiveHostOptions,
  startLiveHost,
  startLiveWorkerHost,
} from "../../live/live-host.js";
import { LIVE_ADDRS, removeStaleNamespaces } from "../../live/netns.js";
import type { TapOffload } from "../../device/tap.js";
import type { FaultProfile } from "../../sim/link.js";
import type { Server } from "../../socket/index.js";
import { PcapLinkType, PcapWriter } from "../../wire/pcap.js";
import { Instant } from "../../time/instant.js";
import { CliUsageError } from "../errors.js";
import { defaultWorkerCount } from "../../worker/rss-targets.js";
import { checkOutputFile } from "../output.js";

/** The tag in the names of serve's namespaces (`chimney-serve-<pid>-<n>`, see netns.ts). */
const SERVE_TAG = "serve";

/**
 * Where offloaded connections run (`--target`): `inline`, the software target in this thread,
 * in front of the stack; `none`, no chimney (the stack alone on the TAP device).
 */
export const SERVE_TARGETS = ["worker", "inline", "none"] as const;

/** A `--target` value. */
export type ServeTarget = (typeof SERVE_TARGETS)[number];

/** `--target` when not given. */
export const DEFAULT_SERVE_TARGET: ServeTarget = "worker";

/** The most target workers `--workers` takes. */
export const MAX_WORKERS = 64;

/** The shortest `--flap` period (ms). */
export const MIN_FLAP_MS = 1;

/** The longest `--flap` period (ms): one day. */
export const MAX_FLAP_MS = 86_400_000;

/** True when `s` names a target. */
export function isServeTarget(s: string): s is ServeTarget {
  return (SERVE_TARGETS as readonly string[]).includes(s);
}

/** What `startLiveHost` is given for a target (one case per target). */
function chimneyOf(target: ServeTarget): LiveHostOptions["chimney"] {
  switch (target) {
    case "worker": // the target on its own thread (startLiveWorkerHost)
    case "inline":
      return {};
    case "none":
      return undefined;
  }
}

/** Options of `serve`. */
export interface ServeOptions {
  readonly port: number;
  readonly seed: number;
  readonly loss?: number | undefined;
  readonly delayMs?: number | undefined;
  readonly jitterMs?: number | undefined;
  readonly reorder?: number | undefined;
  readonly pcap?: string | undefined;
  /**
   * TAP offloads (default `tso`: the kernel hands us segments of up to 64 KiB and takes our
   * runs as GSO frames; with faults it becomes `gso`). `off` gives wire-sized frames both ways.
   */
  readonly offload?: TapOffload | undefined;
  /** The chimney in front of the stack (a `ServeTarget`; checked; default `DEFAULT_SERVE_TARGET`). */
  readonly target?: string | undefined;
  /** Offload / terminate every served connection every this many ms (needs a target). */
  readonly flapMs?: number | undefined;
  /**
   * Target workers with `--target worker` (default: the cores but one, at least 1). One owns
   * the TAP link; several are fed by this thread, connections spread by RSS.
   */
  readonly workers?: number | undefined;
  /** Limits of the HTTP server (default `DEFAULT_HTTP_LIMITS`). */
  readonly http?: Omit<HttpLimits, "onLimit"> | undefined;
  /** Part of the namespace's name (default `serve`). */
  readonly tag?: string | undefined;
}

/** The fault profile (both directions) the options describe, or undefined for a clean link. */
export function faultProfileOf(o: ServeOptions): FaultProfile | undefined {
  const p: { -readonly [K in keyof FaultProfile]: FaultProfile[K] } = {};
  if (o.loss !== undefined && o.loss > 0) p.loss = o.loss;
  if (o.delayMs !== undefined && o.delayMs > 0) p.delayUs = Math.round(o.delayMs * 1000);
  if (o.jitterMs !== undefined && o.jitterMs > 0) p.jitterUs = Math.round(o.jitterMs * 1000);
  if (o.reorder !== undefined && o.reorder > 0) p.reorder = { rate: o.reorder, holdFrames: 3, holdUs: 5000 };
  return Object.keys(p).length === 0 ? undefined : p;
}

/** True for a TCP port a server can listen on and a client can name: an integer in 1..65535. */
export function isTcpPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** The message of a `--flap` value that is not a period in [MIN_FLAP_MS, MAX_FLAP_MS], or undefined. */
export function flapProblem(ms: number): string | undefined {
  if (Number.isFinite(ms) && ms >= MIN_FLAP_MS && ms <= MAX_FLAP_MS) return undefined;
  return `must be a number of milliseconds from ${MIN_FLAP_MS} to ${MAX_FLAP_MS}`;
}

/**
 * Checks everything about the options and the machine that can be checked before anything is
 * created; throws `CliUsageError` (exit 2) on the first problem.
 */
export function checkServeOptions(o: ServeOptions): void {
  if (!isTcpPort(o.port)) throw new CliUsageError(`--port ${o.port}: must be a port number in 1..65535`);
  if (!(Number.isSafeInteger(o.seed) && o.seed > 0))
    throw new CliUsageError(`--seed ${o.seed}: must be a positive integer`);
  for (const [name, v] of [
    ["--loss", o.loss],
    ["--reorder", o.reorder],
  ] as const) {
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new CliUsageError(`${name} ${v}: must be in [0, 1]`);
  }
  for (const [name, v] of [
    ["--delay", o.delayMs],
    ["--jitter", o.jitterMs],
  ] as const) {
    if (v !== undefined && !(v >= 0 && Number.isFinite(v)))
      throw new CliUsageError(`${name} ${v}: must be a non-negative number`);
  }
  const target = o.target ?? DEFAULT_SERVE_TARGET;
  if (!isServeTarget(target))
    throw new CliUsageError(`--target ${target}: must be one of ${SERVE_TARGETS.join(", ")}`);
  if (o.flapMs !== undefined) {
    const problem = flapProblem(o.flapMs);
    if (problem !== undefined) throw new CliUsageError(`--flap ${o.flapMs}: ${problem}`);
    if (chimneyOf(target) === undefined)
      throw new CliUsageError(
        `--flap needs a target to hand connections to (--target ${target} has none; choose one of ${SERVE_TARGETS.filter((t) => chimneyOf(t) !== undefined).join(", ")})`,
      );
  }
  if (o.workers !== undefined) {
    if (!(Number.isSafeInteger(o.workers) && o.workers >= 1 && o.workers <= MAX_WORKERS))
      throw new CliUsageError(`--workers ${o.workers}: must be an integer from 1 to ${MAX_WORKERS}`);
    if (target !== "worker") throw new CliUsageError(`--workers applies to --target worker only`);
  }
  if (o.pcap !== undefined) checkOutputFile(o.pcap, "--pcap");
  if (process.platform !== "linux") throw new CliUsageError("serve needs Linux (TAP devices)");
  if (process.getuid?.() !== 0) throw new CliUsageError("serve needs root (it creates a network namespace)");
}

/** The error a failed write of the capture becomes: one line naming the file. */
function pcapWriteError(path: string, e: unknown): CliUsageError {
  return new CliUsageError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
}

/** Hand-offs `--flap` asked for (each one the manager accepted). */
export interface FlapCounts {
  /** Offloads asked for (`OffloadManager.offload` returned true), once per hand-off. */
  offloads: number;
  /** Terminates asked for (`OffloadManager.terminate` returned true), once per hand-off. */
  terminates: number;
  /**
   * Connections whose terminate was asked for and has not started yet (the manager waits for
   * outstanding operations, e.g. a disconnect), at the last tick.
   */
  waiting: number;
}

/** A running `serve`: the live host with its HTTP server on the port. */
export interface RunningServer {
  /** The live host (stack, driver, namespace; `chimney` when there is a target). */
  readonly host: LiveHost;
  /** The target in use. */
  readonly target: ServeTarget;
  /** Our listening socket. */
  readonly server: Server;
  /** The HTTP server fed from it. */
  readonly http: http.Server;
  /** The flap's counters (zero without `--flap`). */
  readonly flaps: Readonly<FlapCounts>;
  /** Offloads of newly accepted connections (with a target). */
  readonly acceptOffloads: number;
  /** What `serve` prints once it runs: addresses, faults, offloads, curl lines to try. */
  readonly banner: readonly string[];
  /** The first failure while serving (the capture cannot be written, the server fails), or undefined. */
  readonly failure: { readonly error: unknown } | undefined;
  /** Resolves (never rejects) with the first failure while serving. */
  readonly failed: Promise<unknown>;
  /** Frames captured so far (with `pcap`). */
  readonly captured: number | undefined;
  /** Stops flapping, stops the host, removes the namespace and closes the capture (idempotent). */
  close(): void;
}

/**
 * Every `ms`, each served connection (accepted on `port`, ESTABLISHED) that is on the host is
 * offloaded and each offloaded one is terminated: a connection alternates between the two. A
 * connection still offloaded after its terminate was asked for is not asked again (the manager
 * would accept the repeat and the count would grow without a hand-off); it counts as waiting.
 * Each hand-off is counted once.
 */
function startFlap(host: LiveHost, port: number, ms: number, counts: FlapCounts): () => void {
  const manager = host.chimney?.manager;
  if (manager === undefined) return () => undefined;
  const served = (c: HostConn): boolean => c.localPort === port && c.announced;
  // Only the flap offloads a connection after its accept, so one it finds offloaded with a
  // terminate asked is still waiting for that terminate to start. An offload the manager took
  // but could not start yet (its neighbor or path in flight) is asked again, counted once.
  const asked = new WeakSet<HostConn>();
  const askedOffload = new WeakSet<HostConn>();
  const tick = setInterval(() => {
    let moved = false;
    let waiting = 0;
    for (const c of [...host.stack.connections()]) {
      if (!served(c)) continue;
      if (c.phase !== "offloaded") asked.delete(c);
      if (c.phase !== "host") askedOffload.delete(c);
      if (c.phase === "host") {
        if (c.tcp?.state === "ESTABLISHED" && manager.offload(c)) {
          if (!askedOffload.has(c)) counts.offloads++;
          askedOffload.add(c);
          moved = true;
        }
      } else if (c.phase === "offloaded") {
        if (asked.has(c)) waiting++;
        else if (manager.terminate(c, "flap")) {
          asked.add(c);
          counts.terminates++;
          moved = true;
        }
      }
    }
    counts.waiting = waiting;
    if (moved) host.driver.flush();
  }, ms);
  return () => clearInterval(tick);
}

/**
 * Starts the server: checks every option first, removes namespaces left by a killed serve of the
 * same tag, creates the namespace, starts the live host (with the chimney of `target`) and the
 * HTTP server on `port`, and the flap. An error once the namespace exists removes it before the
 * error propagates. `log` hears the HTTP server's limit messages.
 */
export async function startServer(o: ServeOptions, log: (line: string) => void): Promise<RunningServer> {
  checkServeOptions(o);
  const target = (o.target ?? DEFAULT_SERVE_TARGET) as ServeTarget;
  const tag = o.tag ?? SERVE_TAG;
  const faults = faultProfileOf(o);
  let pcapFd: number | undefined;
  if (o.pcap !== undefined) {
    try {
      pcapFd = openSync(o.pcap, "w");
    } catch (e) {
      throw pcapWriteError(o.pcap, e);
    }
  }
  for (const ns of removeStaleNamespaces(tag)) log(`removed namespace ${ns} left by a stopped ${tag}`);
  // The first failure of the capture (or of the server) ends the run; `failed` resolves with it.
  let failure: { error: unknown } | undefined;
  let wake: (e: unknown) => void = () => undefined;
  const failed = new Promise<unknown>((resolve) => {
    wake = resolve;
  });
  const fail = (error: unknown): void => {
    if (failure !== undefined) return;
    failure = { error };
    wake(error);
  };
  let pcap: PcapWriter | undefined;
  let capture: FrameCapture | undefined;
  if (pcapFd !== undefined && o.pcap !== undefined) {
    const fd = pcapFd;
    const path = o.pcap;
    const w = new PcapWriter({ linkType: PcapLinkType.ETHERNET });
    pcap = w;
    capture = (wallUs, frame) => {
      if (failure !== undefined) return;
      w.append(Instant.fromMicros(wallUs), frame);
      try {
        for (const c of w.takeChunks()) writeSync(fd, c);
      } catch (e) {
        fail(pcapWriteError(path, e));
      }
    };
  }
  const workers = o.workers ?? defaultWorkerCount();
  let host: LiveHost;
  try {
    const live = {
      tag,
      seed: o.seed,
      toKernel: faults,
      fromKernel: faults,
      capture,
      offload: o.offload ?? "tso",
    };
    host =
      target === "worker"
        ? // one worker owns the wire unless faults or a capture need this thread; several never do
          await startLiveWorkerHost({ ...live, workers })
        : startLiveHost({ ...live, chimney: chimneyOf(target) });
  } catch (e) {
    if (pcapFd !== undefined) closeSync(pcapFd);
    throw e;
  }
  const counts: FlapCounts = { offloads: 0, terminates: 0, waiting: 0 };
  let acceptOffloads = 0;
  let stopFlap = (): void => undefined;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    stopFlap();
    host.close();
    if (pcapFd !== undefined) closeSync(pcapFd);
  };
  try {
    // The capture's file header goes out once the host runs.
    if (pcap !== undefined && pcapFd !== undefined && o.pcap !== undefined) {
      try {
        for (const c of pcap.takeChunks()) writeSync(pcapFd, c);
      } catch (e) {
        throw pcapWriteError(o.pcap, e);
      }
    }
    const server = host.net.createServer();
    // Header, request and idle timeouts and a connection cap (DEFAULT_HTTP_LIMITS).
    const httpServer = serveHttpOn(server, { ...o.http, onLimit: log });
    const manager = host.chimney?.manager;
    if (manager !== undefined) {
      // With a target, the target runs every served connection from the start.
      server.on("connection", (sock) => {
        const c = sock.connection;
        if (c !== undefined && manager.offload(c)) acceptOffloads++;
      });
    }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(o.port, resolve);
    });
    server.on("error", fail);
    if (o.flapMs !== undefined) stopFlap = startFlap(host, o.port, o.flapMs, counts);
    const ns = host.netns.ns;
    const port = o.port === 80 ? "" : `:${o.port}`;
    const banner = [
      `chimney serve: our stack is ${LIVE_ADDRS.ours4} and ${LIVE_ADDRS.ours6} on port ${o.port}; the kernel is ${LIVE_ADDRS.kernel4} / ${LIVE_ADDRS.kernel6} in namespace ${ns}`,
      target === "none"
        ? "target: none (no chimney: the stack runs every connection)"
        : `target: ${target}${target === "worker" ? ` x${workers}` : ""} (served connections are offloaded once accepted${o.flapMs === undefined ? "" : `; offloaded / terminated every ${o.flapMs} ms`})`,
      faults === undefined ? "faults: none" : `faults (both directions): ${JSON.stringify(faults)}`,
      `TAP offloads: ${host.netns.tap.offload}`,
      ...(o.pcap === undefined ? [] : [`capturing our side to ${o.pcap}`]),
      "try:",
      `  ip netns exec ${ns} curl -sS http://${LIVE_ADDRS.ours4}${port}/bytes/1000000 | sha256sum`,
      `  ip netns exec ${ns} curl -sS -D - -o /dev/null http://${LIVE_ADDRS.ours4}${port}/bytes/67108864`,
      `  ip netns exec ${ns} curl -sS -g http://[${LIVE_ADDRS.ours6}]${port}/bytes/100`,
      `  ip netns exec ${ns} curl -sS --data-binary 'hello chimney' http://${LIVE_ADDRS.ours4}${port}/echo`,
      "Ctrl-C stops the server and removes the namespace.",
    ];
    const h = host;
    return {
      host: h,
      target,
      server,
      http: httpServer,
      flaps: counts,
      get acceptOffloads() {
        return acceptOffloads;
      },
      banner,
      get failure() {
        return failure;
      },
      failed,
      get captured() {
        return pcap?.recordCount;
      },
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * Runs the server until SIGINT/SIGTERM; resolves after the namespace is gone. Every argument is
 * checked before anything is created; an error once the namespace exists (the capture file
 * cannot be written, ...) removes it before the error propagates. Namespaces left by a `serve`
 * that was killed outright are removed first.
 */
export async function serve(o: ServeOptions): Promise<void> {
  const log = (line: string): void => {
    process.stderr.write(`chimney serve: ${line}\n`);
  };
  const s = await startServer(o, log);
  const ns = s.host.netns.ns;
  let onSignal = (): void => undefined;
  try {
    process.stdout.write(`${s.banner.join("\n")}\n`);
    if (s.failure === undefined) {
      await Promise.race([
        s.failed,
        new Promise<void>((resolve) => {
          onSignal = resolve;
          process.on("SIGINT", onSignal);
          process.on("SIGTERM", onSignal);
        }),
      ]);
    }
    if (s.failure !== undefined) throw s.failure.error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    s.close();
  }
  const st = s.host.stats();
  const lines = [
    `\nstopped: ${st.framesIn} frames in (${st.batchesIn} reads), ${st.framesOut} out${s.captured === undefined ? "" : `, ${s.captured} captured`}; namespace ${ns} removed`,
  ];
  if (o.flapMs !== undefined)
    lines.push(
      `flap: ${s.flaps.offloads} offloads, ${s.flaps.terminates} terminates (every ${o.flapMs} ms; plus ${s.acceptOffloads} offloads on accept)`,
    );
  process.stdout.write(`${lines.join("\n")}\n`);
}
