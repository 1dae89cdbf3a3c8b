/**
 * Helpers for the live tests (test/live-*.test.ts): a live host with an HTTP server on it,
 * running children in the namespace to completion, and deterministic payloads.
 */
import { createHash } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Server, Socket } from "../../src/socket/index.js";
import { serveHttpOn } from "../../src/live/http-app.js";
import { killTree } from "../../src/live/netns.js";
import { waitForOutput } from "./netns.js";
import { type LiveHost, type LiveHostOptions, startLiveHost } from "../../src/live/live-host.js";
import { xorshiftFill } from "../../src/live/handoff-streams.js";

/** sha256 hex of `b`. */
export const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** What a finished child printed. */
export interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Collects a child's output and resolves when it exits; kills it after `timeoutMs`. */
export function runChild(child: ChildProcess, timeoutMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      killTree(child);
      reject(new Error(`child timed out after ${timeoutMs} ms; stderr: ${stderr.slice(-800)}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A live host serving the live HTTP app on `port` (both address families). */
export async function liveHttpHost(
  options: LiveHostOptions,
  port = 80,
): Promise<{ host: LiveHost; server: Server; accepted: () => number }> {
  const host = startLiveHost(options);
  try {
    const server = host.net.createServer();
    let accepted = 0;
    server.on("connection", () => accepted++);
    serveHttpOn(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, resolve);
    });
    return { host, server, accepted: () => accepted };
  } catch (e) {
    host.close();
    throw e;
  }
}

/** `n` deterministic pseudo-random bytes (xorshift32 from `seed`). */
export function payload(n: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(n / 4));
  xorshiftFill(words, seed >>> 0 || 1);
  return Buffer.from(words.buffer, 0, n);
}

/** Starts the kernel-side server (live-kernel-server.js) in the host's namespace on `port`. */
export async function startKernelServer(
  host: LiveHost,
  port: number,
  congestion?: string,
): Promise<ChildProcess> {
  const script = fileURLToPath(new URL("./live-kernel-server.js", import.meta.url));
  const args = congestion === undefined ? [script, String(port)] : [script, String(port), congestion];
  const child = host.netns.spawn(process.execPath, args);
  await waitForOutput(child, /listening \d+/);
  return child;
}

/** Sends `data` to the kernel server's sink through our stack; resolves with its reply line. */
export function uploadToKernel(host: LiveHost, addr: string, port: number, data: Buffer): Promise<string> {
  return sinkUpload(host.net.connect({ host: addr, port, allowHalfOpen: true }), data);
}

/**
 * Sends `data` to the kernel server's sink over `s` (connected with `allowHalfOpen`), respecting
 * back-pressure; resolves with the server's reply line (byte count and sha256).
 */
export function sinkUpload(s: Socket, data: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    let reply = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => (reply += d));
    s.on("end", () => resolve(reply.trim()));
    s.on("error", reject);
    s.write("sink\n");
    const CHUNK = 1 << 16;
    let off = 0;
    const pump = (): void => {
      while (off < data.length) {
        const chunk = data.subarray(off, Math.min(data.length, off + CHUNK));
        off += chunk.length;
        if (!s.write(chunk)) {
          s.once("drain", pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
}

/** Asks the kernel server for `payload(n, seed)` through our stack; resolves with count and sha256. */
export function downloadFromKernel(
  host: LiveHost,
  addr: string,
  port: number,
  n: number,
  seed: number,
): Promise<{ count: number; sha: string }> {
  return sourceDownload(host.net.connect({ host: addr, port }), n, seed);
}

/** Asks the kernel server for `payload(n, seed)` over `s`; resolves with count and sha256. */
export function sourceDownload(s: Socket, n: number, seed: number): Promise<{ count: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    let count = 0;
    s.on("data", (d: Buffer) => {
      count += d.length;
      h.update(d);
    });
    s.on("end", () => resolve({ count, sha: h.digest("hex") }));
    s.on("error", reject);
    s.write(`source ${n} ${seed}\n`);
  });
}
