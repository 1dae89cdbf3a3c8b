/**
 * What the soak measures in the running server (same process): the sizes of the stack's tables
 * that an attacker can grow, with their caps, and the process's memory.
 */
import { DEFAULT_NEIGHBOR_MAX_ENTRIES } from "../src/host/neighbor.js";
import { DEFAULT_PMTU_CACHE_SIZE } from "../src/host/path.js";
import type { RunningServer } from "../src/cli/commands/serve.js";
import { LIVE_ADDRS } from "../src/live/netns.js";
import type { LiveHost } from "../src/live/live-host.js";
import type { MiniportOffloadContext } from "../src/chimney/block-list.js";
import { SoftwareTarget } from "../src/offload-target/software-target.js";
import type { TcpConnection } from "../src/tcp/connection.js";
import { ip } from "../src/wire/ip-addr.js";

/** The tables, by name. */
export const TABLES = [
  "neighbors",
  "neighbor-timers",
  "path-mtu",
  "connections",
  "syn-queue",
  "accept-queue",
  "offloaded",
] as const;

/** A table's name. */
export type TableName = (typeof TABLES)[number];

/** One sample. */
export interface Sample {
  readonly tables: Record<TableName, number>;
  /** Connections by TCP state (host engines), plus `offloaded` ones (off the host). */
  readonly states: Record<string, number>;
  /** The kernel's neighbor entries (IPv4, IPv6): their state, or `absent`. */
  readonly kernelNeighbors: string;
  /** Neighbor entries not created because every entry was in use, so far. */
  readonly neighborTableFull: number;
  readonly rss: number;
  readonly heapUsed: number;
}

/** How long a connection may stay in TIME-WAIT or closing, in the soak's bound (seconds). */
export interface CapInputs {
  /** The HTTP server's connection cap. */
  readonly maxConnections: number;
  /**
   * Connections the soak's clients may have closed within the last 2 MSL plus closing time
   * (TIME-WAIT on our side, or FIN-WAIT / LAST-ACK): see `connectionAllowance` in main.ts.
   */
  readonly closingAllowance: number;
}

/**
 * The caps: the documented defaults for the neighbor cache (`DEFAULT_NEIGHBOR_MAX_ENTRIES`) and
 * the path-MTU cache (`DEFAULT_PMTU_CACHE_SIZE`), so a cache that stopped enforcing its cap fails
 * here; the neighbor timer heap's rebuild bound (2 x entries + 64); each listener's SYN queue
 * (`HostStack.synQueueLimit`) and accept queue (its backlog); offloaded connections at most the
 * HTTP server's connection cap (only served connections are offloaded); the connection table at
 * most every queue and open connection plus the closing allowance.
 */
export function capsOf(s: RunningServer, inputs: CapInputs): Record<TableName, number> {
  const stack = s.host.stack;
  let backlog = 0;
  let listeners = 0;
  for (const l of stack.listeners()) {
    backlog = Math.max(backlog, l.backlog);
    listeners++;
  }
  const synQueue = stack.synQueueLimit;
  return {
    neighbors: DEFAULT_NEIGHBOR_MAX_ENTRIES,
    "neighbor-timers": 2 * DEFAULT_NEIGHBOR_MAX_ENTRIES + 64,
    "path-mtu": DEFAULT_PMTU_CACHE_SIZE,
    "syn-queue": synQueue,
    "accept-queue": backlog,
    offloaded: inputs.maxConnections,
    connections: listeners * (synQueue + backlog) + inputs.maxConnections + inputs.closingAllowance,
  };
}

/** Takes a sample. */
/**
 * The target's engine of an offloaded connection, when the target runs on this thread (a worker
 * target's engines live on its thread: undefined).
 */
export function targetEngineOf(
  chimney: LiveHost["chimney"],
  ctx: MiniportOffloadContext,
): TcpConnection | undefined {
  return chimney?.target instanceof SoftwareTarget ? chimney.target.engineOf(ctx) : undefined;
}

export function sample(s: RunningServer): Sample {
  const stack = s.host.stack;
  const states: Record<string, number> = {};
  const chimney = s.host.chimney;
  for (const c of stack.connections()) {
    // Off the host: where it is and, once offloaded, the state of the target's engine.
    const ctx = c.tcp === undefined ? chimney?.manager.contextOf(c) : undefined;
    const onTarget = ctx === undefined ? undefined : targetEngineOf(chimney, ctx)?.state;
    const k = c.tcp?.state ?? (onTarget === undefined ? c.phase : `${c.phase} ${onTarget}`);
    states[k] = (states[k] ?? 0) + 1;
  }
  let synQueue = 0;
  let acceptQueue = 0;
  for (const l of stack.listeners()) {
    synQueue = Math.max(synQueue, l.pending.size);
    acceptQueue = Math.max(acceptQueue, l.ready.length);
  }
  const kernel = [LIVE_ADDRS.kernel4, LIVE_ADDRS.kernel6]
    .map((a) => stack.neighbors.get(0, ip(a))?.state ?? "absent")
    .join("/");
  const m = process.memoryUsage();
  return {
    tables: {
      neighbors: stack.neighbors.size,
      "neighbor-timers": stack.neighbors.timerCount,
      "path-mtu": stack.paths.size,
      connections: stack.connectionCount,
      "syn-queue": synQueue,
      "accept-queue": acceptQueue,
      offloaded: s.host.chimney?.manager.offloadedCount ?? 0,
    },
    states,
    kernelNeighbors: kernel,
    neighborTableFull: stack.neighbors.stats.tableFull,
    rss: m.rss,
    heapUsed: m.heapUsed,
  };
}
