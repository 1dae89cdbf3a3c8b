/**
 * `chimney serve`: our stack on a TAP device whose kernel side sits in a fresh network
 * namespace, serving HTTP (Node's `http` over our sockets): `POST /echo`, `GET /bytes/<n>`
 * (with an `x-sha256` header) and `POST /sink`. Prints the `ip netns exec` lines to try it;
 * Ctrl-C (or SIGTERM) stops it and removes the namespace. Needs root. Arguments are all checked
 * before the namespace exists; any later error removes it again before the command fails.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { serveHttpOn } from "../../live/http-app.js";
import { type FrameCapture, startLiveHost } from "../../live/live-host.js";
import { LIVE_ADDRS, removeStaleNamespaces } from "../../live/netns.js";
import type { TapOffload } from "../../device/tap.js";
import type { FaultProfile } from "../../sim/link.js";
import { PcapLinkType, PcapWriter } from "../../wire/pcap.js";
import { Instant } from "../../time/instant.js";
import { CliUsageError } from "../errors.js";
import { checkOutputFile } from "../output.js";

/** The tag in the names of serve's namespaces (`chimney-serve-<pid>-<n>`, see netns.ts). */
const SERVE_TAG = "serve";

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
  if (o.pcap !== undefined) checkOutputFile(o.pcap, "--pcap");
  if (process.platform !== "linux") throw new CliUsageError("serve needs Linux (TAP devices)");
  if (process.getuid?.() !== 0) throw new CliUsageError("serve needs root (it creates a network namespace)");
}

/** The error a failed write of the capture becomes: one line naming the file. */
function pcapWriteError(path: string, e: unknown): CliUsageError {
  return new CliUsageError(`${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
}

/**
 * Runs the server until SIGINT/SIGTERM; resolves after the namespace is gone. Every argument is
 * checked before anything is created; an error once the namespace exists (the capture file
 * cannot be written, ...) removes it before the error propagates. Namespaces left by a `serve`
 * that was killed outright are removed first.
 */
export async function serve(o: ServeOptions): Promise<void> {
  checkServeOptions(o);
  const faults = faultProfileOf(o);
  let pcapFd: number | undefined;
  if (o.pcap !== undefined) {
    try {
      pcapFd = openSync(o.pcap, "w");
    } catch (e) {
      throw pcapWriteError(o.pcap, e);
    }
  }
  for (const ns of removeStaleNamespaces(SERVE_TAG))
    process.stderr.write(`chimney serve: removed namespace ${ns} left by a stopped serve\n`);
  // The first failure of the capture (or of the server) ends the run; `failed` wakes the wait.
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const fail = (error: unknown): void => {
    failure ??= { error };
    wake?.();
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
  const host = startLiveHost({
    tag: SERVE_TAG,
    seed: o.seed,
    toKernel: faults,
    fromKernel: faults,
    capture,
    offload: o.offload ?? "tso",
  });
  const ns = host.netns.ns;
  const onSignal = (): void => {
    wake?.();
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
    serveHttpOn(server, { onLimit: (m) => process.stderr.write(`chimney serve: ${m}\n`) });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(o.port, resolve);
    });
    server.on("error", fail);
    const port = o.port === 80 ? "" : `:${o.port}`;
    const lines = [
      `chimney serve: our stack is ${LIVE_ADDRS.ours4} and ${LIVE_ADDRS.ours6} on port ${o.port}; the kernel is ${LIVE_ADDRS.kernel4} / ${LIVE_ADDRS.kernel6} in namespace ${ns}`,
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
    process.stdout.write(`${lines.join("\n")}\n`);
    if (failure === undefined) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      });
    }
    if (failure !== undefined) throw failure.error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    host.close();
    if (pcapFd !== undefined) closeSync(pcapFd);
  }
  const s = host.stats();
  process.stdout.write(
    `\nstopped: ${s.framesIn} frames in (${s.batchesIn} reads), ${s.framesOut} out${pcap === undefined ? "" : `, ${pcap.recordCount} captured`}; namespace ${ns} removed\n`,
  );
}
