/**
 * One socket test body, two implementations: `node:net` over the kernel's loopback, and our
 * `NetStack` over the simulator. A test written against `SocketEnv` runs on both, so the
 * reference behaviour is Node's own, observed, not remembered.
 */
import * as net from "node:net";
import type { Duplex } from "node:stream";
import type { FaultProfile } from "../../src/sim/link.js";
import type { TcpConfig } from "../../src/tcp/config.js";
import { Instant } from "../../src/time/instant.js";
import { socketSim, type SocketSim } from "./socket-sim.js";

/** The part of `net.Socket` the shared tests use; both socket classes have it. */
export interface SocketLike extends Duplex {
  readonly connecting: boolean;
  readonly pending: boolean;
  readonly readyState: string;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly remoteFamily?: string | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  setTimeout(ms: number, cb?: () => void): this;
  setNoDelay(noDelay?: boolean): this;
  setKeepAlive(enable?: boolean, initialDelay?: number): this;
  resetAndDestroy(): this;
}

/** The part of `net.Server` the shared tests use. */
export interface ServerLike {
  close(cb?: (err?: Error) => void): unknown;
  once(event: "error", fn: (e: Error) => void): unknown;
  once(event: "listening", fn: () => void): unknown;
}

/** Options of a server in the shared tests. */
export interface EnvServerOptions {
  readonly allowHalfOpen?: boolean;
  readonly pauseOnConnect?: boolean;
}

/** Options of a client in the shared tests. */
export interface EnvConnectOptions {
  readonly allowHalfOpen?: boolean;
}

/** A place to run socket tests. */
export interface SocketEnv {
  readonly name: string;
  /** The server's address as clients see it. */
  readonly serverHost: string;
  /** Starts a server on `port` (0: any); resolves with its port. */
  listen(
    handler: (s: SocketLike) => void,
    opts?: EnvServerOptions,
    port?: number,
  ): Promise<{ server: ServerLike; port: number }>;
  /** Tries to listen on `port`; resolves with the error code or "ok". */
  tryListen(port: number): Promise<string>;
  connect(port: number, opts?: EnvConnectOptions): SocketLike;
  /** Milliseconds on the environment's clock (virtual in the simulator). */
  nowMs(): number;
  /** Waits `ms` on the environment's clock. */
  sleep(ms: number): Promise<void>;
  /** Ends the environment. */
  stop(): void;
}

/** `node:net` on 127.0.0.1. */
export function kernelEnv(): SocketEnv {
  const servers: net.Server[] = [];
  return {
    name: "node:net",
    serverHost: "127.0.0.1",
    listen(handler, opts = {}, port = 0) {
      const s = net.createServer(
        { allowHalfOpen: opts.allowHalfOpen ?? false, pauseOnConnect: opts.pauseOnConnect ?? false },
        (sock) => {
          handler(sock);
        },
      );
      servers.push(s);
      return new Promise((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, "127.0.0.1", () => {
          resolve({ server: s, port: (s.address() as net.AddressInfo).port });
        });
      });
    },
    tryListen(port) {
      const s = net.createServer();
      return new Promise((resolve) => {
        s.once("error", (e: Error & { code?: string }) => {
          resolve(e.code ?? "error");
        });
        s.listen(port, "127.0.0.1", () => {
          s.close();
          resolve("ok");
        });
      });
    },
    connect(port, opts = {}) {
      return net.connect({ port, host: "127.0.0.1", allowHalfOpen: opts.allowHalfOpen ?? false });
    },
    nowMs: () => performance.now(),
    sleep: (ms) =>
      new Promise((resolve) => {
        setTimeout(resolve, ms);
      }),
    stop() {
      for (const s of servers) s.close();
    },
  };
}

/** Our `NetStack` on the simulator: client on host a, servers on host b. */
export function simEnv(
  seed: number,
  profile: FaultProfile = {},
  tcp: Partial<TcpConfig> = {},
): SocketEnv & { readonly sim: SocketSim } {
  const sim = socketSim({ seed, profile, tcp });
  return {
    name: `sim seed ${seed}`,
    sim,
    serverHost: "192.0.2.2",
    listen(handler, opts = {}, port = 0) {
      const s = sim.b.createServer(
        { allowHalfOpen: opts.allowHalfOpen ?? false, pauseOnConnect: opts.pauseOnConnect ?? false },
        (sock) => {
          handler(sock);
        },
      );
      return new Promise((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, "192.0.2.2", () => {
          resolve({ server: s, port: s.address()?.port ?? 0 });
        });
      });
    },
    tryListen(port) {
      const s = sim.b.createServer();
      return new Promise((resolve) => {
        s.once("error", (e: Error & { code?: string }) => {
          resolve(e.code ?? "error");
        });
        s.listen(port, "192.0.2.2", () => {
          s.close();
          resolve("ok");
        });
      });
    },
    connect(port, opts = {}) {
      return sim.a.connect({ port, host: "192.0.2.2", allowHalfOpen: opts.allowHalfOpen ?? false });
    },
    nowMs: () => sim.sim.now / 1000,
    sleep: (ms) =>
      new Promise((resolve) => {
        sim.hostA.timer(Instant.fromMicros(sim.sim.now + Math.round(ms * 1000)), resolve);
      }),
    stop() {
      sim.stop();
    },
  };
}

/** Resolves with the first of `events` that `emitter` emits (its name), rejecting on timeout. */
export function once(emitter: Duplex, event: string): Promise<unknown[]> {
  return new Promise((resolve) => {
    emitter.once(event, (...args: unknown[]) => {
      resolve(args);
    });
  });
}

/** Records event names (and a detail) in order, for ordering assertions. */
export function recordEvents(s: SocketLike, log: string[], prefix = ""): void {
  s.on("connect", () => log.push(`${prefix}connect`));
  s.on("ready", () => log.push(`${prefix}ready`));
  s.on("end", () => log.push(`${prefix}end`));
  s.on("finish", () => log.push(`${prefix}finish`));
  s.on("error", (e: Error & { code?: string }) => log.push(`${prefix}error:${e.code ?? "?"}`));
  s.on("close", (hadError: boolean) => log.push(`${prefix}close:${hadError}`));
  s.on("timeout", () => log.push(`${prefix}timeout`));
}
