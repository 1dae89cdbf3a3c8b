/**
 * `chimney serve`: our stack on a TAP device whose kernel side sits in a fresh network
 * namespace, serving HTTP (Node's `http` over our sockets): `POST /echo`, `GET /bytes/<n>`
 * (with an `x-sha256` header) and `POST /sink`. Prints the `ip netns exec` lines to try it;
 * Ctrl-C (or SIGTERM) stops it and removes the namespace. Needs root.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { serveHttpOn } from "../../live/http-app.js";
import { type FrameCapture, startLiveHost } from "../../live/live-host.js";
import { LIVE_ADDRS } from "../../live/netns.js";
import type { TapOffload } from "../../live/tap.js";
import type { FaultProfile } from "../../sim/link.js";
import { PcapLinkType, PcapWriter } from "../../wire/pcap.js";
import { Instant } from "../../time/instant.js";
import { CliUsageError } from "../errors.js";

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

/** Runs the server until SIGINT/SIGTERM; resolves after the namespace is gone. */
export async function serve(o: ServeOptions): Promise<void> {
  if (process.platform !== "linux") throw new CliUsageError("serve needs Linux (TAP devices)");
  if (process.getuid?.() !== 0) throw new CliUsageError("serve needs root (it creates a network namespace)");
  const faults = faultProfileOf(o);
  let capture: FrameCapture | undefined;
  let pcapFd: number | undefined;
  let pcap: PcapWriter | undefined;
  if (o.pcap !== undefined) {
    try {
      pcapFd = openSync(o.pcap, "w");
    } catch (e) {
      throw new CliUsageError(`${o.pcap}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    const fd = pcapFd;
    const w = new PcapWriter({ linkType: PcapLinkType.ETHERNET });
    pcap = w;
    capture = (wallUs, frame) => {
      w.append(Instant.fromMicros(wallUs), frame);
      for (const c of w.takeChunks()) writeSync(fd, c);
    };
    for (const c of w.takeChunks()) writeSync(fd, c);
  }
  const host = startLiveHost({
    tag: "serve",
    seed: o.seed,
    toKernel: faults,
    fromKernel: faults,
    capture,
    offload: o.offload ?? "tso",
  });
  const server = host.net.createServer();
  serveHttpOn(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, resolve);
  });
  const ns = host.netns.ns;
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
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      host.close();
      if (pcapFd !== undefined) closeSync(pcapFd);
      const s = host.stats();
      process.stdout.write(
        `\nstopped: ${s.framesIn} frames in (${s.batchesIn} reads), ${s.framesOut} out${pcap === undefined ? "" : `, ${pcap.recordCount} captured`}; namespace ${ns} removed\n`,
      );
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
