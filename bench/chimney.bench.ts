/**
 * Chimney benchmarks (hand timing, wall clock): terminate-offload latency and the terminate storm.
 *
 * Terminate latency: one offloaded connection with 0, 64 KiB, 1 MiB or 16 MiB received,
 * acknowledged and not delivered (the peer sends while the connection is offloaded; the segments
 * reach the target, which acknowledges them and holds them because the host's receive knobs
 * refuse every indication and post nothing), timed from `manager.terminate(c)` to the connection
 * running on the host again with the BufferedData copied into the host's receive buffer and the
 * BufferedData NBLs returned to the target. The driver loop is the one a NIC driver runs (target
 * `process`, stack output into the target, target output); the clock does not move. Each sample
 * re-offloads the same connection (untimed) and the application reads the bytes afterwards
 * (untimed). Each case first runs a few unmeasured rounds (`warmRounds`: optimized code, a filled
 * receive pool, as the copy baselines are warmed); the first round's time is shown apart
 * ("first us"). Reported as a fixed cost (the 0-byte case) plus a per-byte cost from the largest
 * case, by median and by minimum (the machine is shared: the minimum is the least disturbed
 * sample), and the per-byte cost as a ratio to `Uint8Array.prototype.set` of the same bytes
 * measured in the same run.
 *
 * What BufferedData looks like: the target compacts the data a connection holds into 64 KiB
 * chunks of its own pool as it arrives (`SoftwareTargetOptions.compactHeldData`, as a NIC keeps
 * payload in its receive pages), so the chain is one MDL per 64 KiB plus the segments received
 * since the last whole chunk. That copy is paid on the receive side, where real traffic pays it:
 * `receive/held ... compaction on|off` times the peer sending the bytes until they are held at
 * the target, with and without it.
 *
 * Where the copy lands: the host copies BufferedData into chunks of its receive pool
 * (`OffloadManager.recvPool`, 64 KiB chunks), memory that already exists and was written before,
 * one `set` per MDL (two where an MDL straddles chunks). A chunk goes back to the pool when the application consumes its bytes by
 * copy; a zero-copy `recv` view takes the chunk out of the pool (the application may keep the
 * view), so the next terminate copies into fresh memory. The main cases read by copy (a POSIX
 * `read` into the application's own buffer); `terminate/latency 16MiB, app reads views` shows the
 * other way. The first (unmeasured) round of a size starts with an empty pool (fresh memory).
 *
 * The `set` baseline therefore copies into pre-existing memory too: source and destination in
 * one buffer written before, 64-byte aligned relative to each other and not 4 KiB-aliased
 * (memcpy's fast case; on this machine `set` is up to 20x slower when the destination sits 8-63
 * bytes past the source modulo 4 KiB), so the ratio is not flattered. A second baseline
 * allocates the destination first (`new Uint8Array(n)` + `set`), which a copy into fresh memory
 * pays (shown for reference).
 *
 * What each copy baseline measures: `copy/set ... warm` repeats one copy whose source and
 * destination (32 MiB for the 16 MiB case) mostly stay in this machine's L3 cache between
 * repetitions: the fastest a `set` of those bytes gets, a floor the terminate cannot reach, since
 * the receive phase before it streams the data through the caches. `copy/set ... held -> pool
 * (same state, interleaved)` copies the same bytes from the same memory in the same state: in
 * the largest latency case every other round, after the same receive phase, times `set` copies
 * of the views the target holds (`SoftwareTarget.heldDataOf`, the memory the terminate's
 * BufferedData shows) into the receive pool chunks the terminate would fill, instead of the
 * terminate (which then runs untimed): what the terminate's one copy costs there, so the ratio
 * to it is the overhead of everything that is not the copy. `copy/alloc+set` and `copy/set per
 * 1448 B segment` are references (fresh destination memory; one `set` per segment-sized MDL).
 * The verdict line shows the ratio to the warm and to the same-state baseline.
 *
 * Terminate storm: 10,000 offloaded connections (one neighbor, one path), each with 1 KiB
 * buffered at the target, uploaded in one tree (`terminateNeighbor`: neighbor -> path -> every
 * TCP block), wall time (and process CPU time, GC helper threads included) from the call until
 * every connection is back on the host and every NBL returned. Memory per offloaded connection:
 * deltas of the JS heap and of array buffer memory (where payload bytes live) after a full GC
 * (`--expose-gc`; `npm run bench` sets it), per connection.
 *
 * The peer is a plain host stack; frames move synchronously (no link, no scheduler).
 */
import { cpus, loadavg } from "node:os";
import { RECV_CHUNK_BYTES } from "../src/host/offload-manager.js";
import type { HostConn } from "../src/host/stack.js";
import { ChunkFiller, ChunkPool } from "../src/storage/chunk-pool.js";
import { HELD_CHUNK_BYTES } from "../src/offload-target/software-target.js";
import { RecvBuffer } from "../src/storage/recv-buffer.js";
import { Duration } from "../src/time/instant.js";
import { ip } from "../src/wire/ip-addr.js";
import {
  type ChimneyPair,
  chimneyPair,
  connectPair,
  driveHost,
  PAIR_NOW,
  refuseAll,
  settle,
} from "../test/support/chimney-pair.js";

/** Targets from the project brief. */
const TARGET_PER_BYTE_VS_COPY = 1.5;
const TARGET_FIXED_US = 50;
const TARGET_STORM_MS = 1000;

const BIGGEST = 16 << 20;
const SIZES = [0, 64 << 10, 1 << 20, BIGGEST] as const;
const STORM_CONNS = 10_000;
const STORM_BYTES_PER_CONN = 1024;

/** Defeats dead-code elimination. */
let sink = 0;

/** The host under test (stack + offload manager + software target) and a plain peer. */
type Pair = ChimneyPair;

const NOW = PAIR_NOW;

function pair(recvBufferSize: number, compactHeldData = true): Pair {
  return chimneyPair({
    tcp: { sendBufferSize: 32 << 20, recvBufferSize, delayedAck: Duration.ZERO },
    knobs: refuseAll(),
    target: { compactHeldData },
    synQueueLimit: 1 << 20,
    mtu: 9000,
  });
}

/**
 * The peer sends `bytes` on each of `peerConns` and everything settles. Host A does not read, so
 * the bytes end up received and acknowledged, in A's receive buffers or, for offloaded
 * connections, at the target (the host refuses every indication and posts nothing).
 */
function fill(p: Pair, peerConns: readonly HostConn[], bytes: number): void {
  if (bytes === 0) return;
  const pending = new Map<HostConn, number>();
  const write = (c: HostConn) => {
    let left = pending.get(c) ?? 0;
    while (left > 0) {
      const n = p.b.send(NOW, c, PATTERN.subarray(0, Math.min(left, PATTERN.length)));
      if (n === 0) break;
      left -= n;
    }
    pending.set(c, left);
  };
  p.onB = (ev) => {
    if (ev.kind === "conn" && ev.event.kind === "writable") write(ev.conn);
  };
  for (const c of peerConns) {
    pending.set(c, bytes);
    write(c);
  }
  settle(p);
  p.onB = () => undefined;
  for (const left of pending.values()) if (left > 0) throw new Error(`the peer could not send ${left} bytes`);
}

/** How the application reads: copies into its own buffer, or takes zero-copy views. */
type ReadBy = "copy" | "view";

/** The application's read buffer (reused, as a POSIX `read` into a fixed buffer). */
const APP_BUF = new Uint8Array(64 << 10);

/** Reads everything host A holds for `c` (so the next round starts empty); returns the count. */
function drain(p: Pair, c: HostConn, readBy: ReadBy): number {
  let n = 0;
  if (readBy === "view") {
    for (let d = p.a.recv(NOW, c); d !== undefined; d = p.a.recv(NOW, c)) n += d.length;
  } else {
    // The stack has no copying read of its own: the engine's `recvInto`, run through
    // `configure` so the stack sends the window update as after `recv`.
    p.a.configure(NOW, c, (tcp) => {
      for (let k = tcp.recvInto(APP_BUF); k > 0; k = tcp.recvInto(APP_BUF)) n += k;
    });
  }
  settle(p);
  return n;
}

/** The bytes the peer sends (a fixed pattern). */
const PATTERN = new Uint8Array(1 << 20).map((_, i) => (i * 31 + 7) & 0xff);

/** Offloads `conns` and runs until every one is offloaded. */
function offloadAll(p: Pair, conns: readonly HostConn[]): void {
  for (const c of conns) {
    if (!p.manager.offload(c)) throw new Error(`could not offload ${c.toString()}`);
  }
  settle(p);
  for (const c of conns) if (c.phase !== "offloaded") throw new Error(`${c.toString()} is ${c.phase}`);
}

/** Drives host A until every connection in `conns` is on the host and no NBL is with the host. */
function untilUploaded(p: Pair, conns: readonly HostConn[]): void {
  for (let round = 0; ; round++) {
    const moved = driveHost(p);
    if (!moved && conns.every((c) => c.phase === "host") && p.target.outstandingReturns === 0) return;
    if (!moved || round > 1_000_000) throw new Error("the upload did not complete");
  }
}

interface Stats {
  readonly medianUs: number;
  readonly minUs: number;
  readonly samples: number;
  /** Receive pool use over the run (terminate latency cases only). */
  readonly pool?: string;
  /** The first, unmeasured round: cold code and an empty receive pool (terminate latency only). */
  readonly firstUs?: number;
}

function summarize(us: number[]): Stats {
  const s = [...us].sort((x, y) => x - y);
  return {
    medianUs: s[Math.floor(s.length / 2)] ?? Number.NaN,
    minUs: s[0] ?? Number.NaN,
    samples: s.length,
  };
}

/** CPU microseconds (user + system, every thread of the process: GC helpers too) since `start`. */
function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return d.user + d.system;
}

/** A terminate latency case, and the same-state copy baseline measured alongside it. */
interface LatencyResult {
  readonly terminate: Stats;
  /**
   * `set` of exactly the bytes the target holds (its held chunks, as the receive left them)
   * into the host's receive pool chunks (the ones the terminate would fill), timed in rounds
   * interleaved with the terminate rounds; undefined when not asked for or 0 bytes.
   */
  readonly sameStateCopy: Stats | undefined;
}

/**
 * The same-state copy: `set` of each of `src` (the target's held views) into `dst` (pool chunks,
 * filled in order, a `set` split where a view straddles two chunks). Returns the bytes copied.
 */
function copyViewsInto(src: readonly Uint8Array[], dst: readonly Uint8Array[]): number {
  let di = 0;
  let used = 0;
  let total = 0;
  for (const v of src) {
    let at = 0;
    while (at < v.length) {
      const d = dst[di] as Uint8Array; // the caller took enough chunks for every byte
      const n = Math.min(v.length - at, d.length - used);
      d.set(at === 0 && n === v.length ? v : v.subarray(at, at + n), used);
      used += n;
      at += n;
      if (used === d.length) {
        di++;
        used = 0;
      }
    }
    total += v.length;
  }
  return total;
}

/**
 * Terminate latency with `bytes` buffered at the target: `samples` rounds of offload, the peer
 * sends `bytes` (they arrive at the target as segments, are acknowledged and held), terminate
 * (timed), then the application reads them on the host.
 *
 * With `sameState` (and `bytes > 0`), every other round is a copy-baseline round instead: after
 * the same receive phase it times `set` copies of the views the target holds (`heldDataOf`: the
 * memory the terminate's BufferedData shows) into chunks taken from the host's receive pool (the
 * chunks the terminate would take: the pool hands out its most recently returned ones first),
 * gives the chunks back, then terminates and reads untimed, so both kinds of round start from the
 * same state: same source memory, same destination memory, same cache history.
 */
export function terminateLatency(
  bytes: number,
  samples: number,
  warm: number,
  readBy: ReadBy = "copy",
  sameState = false,
): LatencyResult {
  const p = pair(Math.max(bytes * 2, 1 << 20));
  const [conn] = connectPair(p, 1);
  if (conn === undefined) throw new Error("no connection");
  const [c, peer] = conn;
  const pool = p.manager.recvPool;
  const all: number[] = [];
  const copies: number[] = [];
  const withCopies = sameState && bytes > 0;
  const rounds = warm + samples * (withCopies ? 2 : 1);
  for (let i = 0; i < rounds; i++) {
    offloadAll(p, [c]);
    fill(p, [peer], bytes);
    // Warm rounds terminate; then, with copies, odd rounds copy and even rounds terminate.
    if (withCopies && i >= warm && (i - warm) % 2 === 1) {
      const ctx = p.manager.contextOf(c);
      const held = ctx === undefined ? undefined : p.target.heldDataOf(ctx);
      if (held === undefined) throw new Error("the target holds nothing for the connection");
      const dst: Uint8Array[] = [];
      for (let k = 0; k < bytes; k += pool.chunkSize) dst.push(pool.take());
      const t0 = process.hrtime.bigint();
      const n = copyViewsInto(held, dst);
      const t1 = process.hrtime.bigint();
      copies.push(Number(t1 - t0) / 1000);
      if (n !== bytes) throw new Error(`the target holds ${n} of ${bytes} bytes`);
      sink ^= dst[dst.length - 1]?.[0] ?? 0;
      // Back in reverse, so the next take hands them out in the same order again.
      for (let k = dst.length - 1; k >= 0; k--) pool.give(dst[k] as Uint8Array);
      if (!p.manager.terminate(c)) throw new Error("terminate refused");
      untilUploaded(p, [c]);
    } else {
      const t0 = process.hrtime.bigint();
      if (!p.manager.terminate(c)) throw new Error("terminate refused");
      untilUploaded(p, [c]);
      const t1 = process.hrtime.bigint();
      all.push(Number(t1 - t0) / 1000);
    }
    if (p.a.readable(c) !== bytes) throw new Error(`host holds ${p.a.readable(c)} of ${bytes} bytes`);
    if (drain(p, c, readBy) !== bytes) throw new Error("the application read the wrong byte count");
  }
  p.ledger.assertQuiescent();
  const ps = pool.stats;
  return {
    terminate: {
      ...summarize(all.slice(warm)),
      firstUs: all[0] ?? Number.NaN,
      pool: `${ps.allocated} allocated, ${ps.reused} reused, ${ps.detached} detached; ${pool.retainedBytes >> 10} KiB idle`,
    },
    sameStateCopy: withCopies ? summarize(copies) : undefined,
  };
}

/**
 * The receive side of held data: the peer sends `bytes` to an offloaded connection whose host
 * takes nothing, timed until everything is acknowledged and held at the target (the whole path:
 * peer stack, frames, target engine, and the target's compaction into chunks when on). Each
 * round then terminates and reads the bytes (untimed) so the next starts empty.
 */
export function heldReceive(bytes: number, samples: number, warm: number, compact: boolean): Stats {
  const p = pair(Math.max(bytes * 2, 1 << 20), compact);
  const [conn] = connectPair(p, 1);
  if (conn === undefined) throw new Error("no connection");
  const [c, peer] = conn;
  const all: number[] = [];
  for (let i = 0; i < warm + samples; i++) {
    offloadAll(p, [c]);
    const t0 = process.hrtime.bigint();
    fill(p, [peer], bytes);
    all.push(Number(process.hrtime.bigint() - t0) / 1000);
    if (!p.manager.terminate(c)) throw new Error("terminate refused");
    untilUploaded(p, [c]);
    if (drain(p, c, "copy") !== bytes) throw new Error("the application read the wrong byte count");
  }
  p.ledger.assertQuiescent();
  const hs = p.target.heldPoolStats;
  return {
    ...summarize(all.slice(warm)),
    firstUs: all[0] ?? Number.NaN,
    pool: hs === undefined ? "off" : `${hs.allocated} allocated, ${hs.reused} reused`,
  };
}

/**
 * Unmeasured rounds before a latency case (as `timeUs` warms the copy baselines): the code gets
 * optimized and the receive pool filled. Fewer for the big sizes, whose rounds take milliseconds.
 */
function warmRounds(bytes: number): number {
  return bytes >= 16 << 20 ? 2 : bytes >= 1 << 20 ? 5 : bytes > 0 ? 50 : 300;
}

/** Median microseconds of `fn` over `samples` runs (after `warm` unmeasured ones). */
function timeUs(samples: number, warm: number, fn: () => void): Stats {
  for (let i = 0; i < warm; i++) fn();
  const us: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    us.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return summarize(us);
}

/** `set` of `bytes` within one buffer, placed as memcpy's fast case (see the file comment). */
function copyBaseline(bytes: number, samples: number): Stats {
  const gap = ((bytes + 4095) & ~4095) + 2048;
  const whole = new Uint8Array(gap + bytes).map((_, i) => i & 0xff);
  const src = whole.subarray(0, bytes);
  const dst = whole.subarray(gap, gap + bytes);
  return timeUs(samples, 3, () => {
    dst.set(src);
    sink ^= dst[bytes - 1] ?? 0;
  });
}

/**
 * The host's copy alone: `bytes` in 1448-byte payloads of separate 1514-byte frames (as the
 * BufferedData MDLs arrive), one `set` per payload into warm receive pool chunks through a
 * `ChunkFiller`, chunks given back after each round. The floor for a per-MDL copy.
 */
function segmentCopyBaseline(bytes: number, samples: number): Stats {
  const SEG = 1448;
  const HDR = 66;
  const frames: Uint8Array[] = [];
  for (let at = 0; at < bytes; at += SEG) {
    const n = Math.min(SEG, bytes - at);
    const f = new Uint8Array(HDR + n).map((_, i) => (at + i) & 0xff);
    frames.push(f.subarray(HDR));
  }
  const pool = new ChunkPool(RECV_CHUNK_BYTES, bytes + RECV_CHUNK_BYTES);
  return timeUs(samples, 3, () => {
    const filler = new ChunkFiller(pool, bytes);
    for (const f of frames) filler.writeView(f);
    const out = filler.finish();
    sink ^= out[out.length - 1]?.[0] ?? 0;
    for (const c of out) if (pool.owns(c)) pool.give(c);
  });
}

/**
 * Compaction alone: `bytes` in 1448-byte payloads of separate frames pushed into a receive buffer
 * with `compact` after every push (as the target runs it per segment), into warm pool chunks;
 * the buffer is emptied by `consume` after each round (chunks back to the pool).
 */
function compactionBaseline(bytes: number, samples: number): Stats {
  const SEG = 1448;
  const HDR = 66;
  const frames: Uint8Array[] = [];
  for (let at = 0; at < bytes; at += SEG) {
    const n = Math.min(SEG, bytes - at);
    frames.push(new Uint8Array(HDR + n).map((_, i) => (at + i) & 0xff).subarray(HDR));
  }
  const pool = new ChunkPool(HELD_CHUNK_BYTES, bytes + HELD_CHUNK_BYTES);
  return timeUs(samples, 3, () => {
    const buf = new RecvBuffer();
    for (const f of frames) {
      buf.push(f);
      buf.compact(pool);
    }
    sink ^= buf.peek()?.[0] ?? 0;
    buf.clear();
  });
}

/** A fresh destination, then `set` (what a copy into new host memory costs). */
function allocCopyBaseline(bytes: number, samples: number): Stats {
  const src = new Uint8Array(bytes).map((_, i) => i & 0xff);
  return timeUs(samples, 3, () => {
    const dst = new Uint8Array(bytes);
    dst.set(src);
    sink ^= dst[bytes - 1] ?? 0;
  });
}

/** Memory: JS heap bytes and array buffer (payload) bytes. */
interface Mem {
  readonly heap: number;
  readonly buffers: number;
}

/** The terminate storm's figures. */
interface StormResult {
  readonly ms: number;
  readonly cpuMs: number;
  readonly perConnUs: number;
  /** Heap per connection: both ends on their hosts, idle. */
  readonly hostPair: Mem;
  /** Heap added per connection by offloading it (idle). */
  readonly offloaded: Mem;
  /** Heap added per connection by the bytes buffered at the target. */
  readonly buffered: Mem;
}

/** The terminate storm: wall time of one `terminateNeighbor` over `count` connections, and memory. */
export function storm(count: number, bytesEach: number): StormResult {
  const heap = (): Mem => {
    // Twice: array buffers freed by one collection are released to the count by the next.
    globalThis.gc?.();
    globalThis.gc?.();
    const m = process.memoryUsage();
    return { heap: m.heapUsed, buffers: m.arrayBuffers };
  };
  const per = (a: Mem, b: Mem): Mem => ({
    heap: (b.heap - a.heap) / count,
    buffers: (b.buffers - a.buffers) / count,
  });
  const p = pair(1 << 20);
  const empty = heap();
  const conns = connectPair(p, count);
  const mine = conns.map(([a]) => a);
  const connected = heap();
  offloadAll(p, mine);
  const offloaded = heap();
  fill(
    p,
    conns.map(([, b]) => b),
    bytesEach,
  );
  const filled = heap();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const n = p.manager.terminateNeighbor(0, ip("192.0.2.2"));
  if (n !== count) throw new Error(`terminateNeighbor took ${n} of ${count} connections`);
  untilUploaded(p, mine);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpuMs = cpuSince(c0) / 1000;
  for (const c of mine) {
    if (p.a.readable(c) !== bytesEach) throw new Error(`host holds ${p.a.readable(c)} of ${bytesEach} bytes`);
  }
  settle(p);
  p.ledger.assertQuiescent();
  return {
    ms,
    cpuMs,
    perConnUs: (ms * 1000) / count,
    hostPair: per(empty, connected),
    offloaded: per(connected, offloaded),
    buffered: per(offloaded, filled),
  };
}

function label(bytes: number): string {
  if (bytes >= 1 << 20) return `${bytes / (1 << 20)}MiB`;
  if (bytes >= 1024) return `${bytes / 1024}KiB`;
  return `${bytes}B`;
}

/** Runs the chimney cases whose names match `filter` and prints the tables and the targets. */
export async function run(filter: RegExp | undefined): Promise<void> {
  const want = (name: string) => filter === undefined || filter.test(name);
  await Promise.resolve();
  const rows: Record<string, string>[] = [];
  const row = (name: string, st: Stats, bytes: number) => {
    rows.push({
      case: name,
      "median us": st.medianUs.toFixed(1),
      "min us": st.minUs.toFixed(1),
      samples: String(st.samples),
      "ns/byte (min)": bytes === 0 ? "-" : ((st.minUs * 1000) / bytes).toFixed(3),
      "first us": st.firstUs === undefined ? "-" : st.firstUs.toFixed(1),
    });
  };
  const latency = new Map<number, Stats>();
  // The 0-byte case runs with any other size: it is the fixed cost the per-byte cost is taken from.
  const sizes = SIZES.filter((s) => want(`terminate/latency ${label(s)}`));
  if (sizes.length > 0 && !sizes.includes(0)) sizes.unshift(0);
  const big = sizes[sizes.length - 1] ?? BIGGEST;
  let sameCopy: Stats | undefined;
  for (const bytes of sizes) {
    const samples = bytes >= 16 << 20 ? 9 : bytes >= 1 << 20 ? 25 : bytes > 0 ? 200 : 1000;
    // The largest case interleaves the same-state copy baseline with its terminate rounds.
    const r = terminateLatency(bytes, samples, warmRounds(bytes), "copy", bytes === big);
    latency.set(bytes, r.terminate);
    row(`terminate/latency ${label(bytes)}`, r.terminate, bytes);
    if (r.sameStateCopy !== undefined) {
      sameCopy = r.sameStateCopy;
      row(`copy/set ${label(bytes)} held -> pool (same state, interleaved)`, sameCopy, bytes);
    }
  }
  let viewReads: Stats | undefined;
  if (want(`terminate/latency ${label(BIGGEST)}, app reads views`)) {
    viewReads = terminateLatency(BIGGEST, 9, warmRounds(BIGGEST), "view").terminate;
    row(`terminate/latency ${label(BIGGEST)}, app reads views`, viewReads, BIGGEST);
  }
  const copy = big > 0 ? copyBaseline(big, 21) : undefined;
  const allocCopy = big > 0 ? allocCopyBaseline(big, 21) : undefined;
  if (copy !== undefined) row(`copy/set ${label(big)} warm (one buffer, into existing memory)`, copy, big);
  if (allocCopy !== undefined) row(`copy/alloc+set ${label(big)} (into fresh memory)`, allocCopy, big);
  const segCopy = big > 0 ? segmentCopyBaseline(big, 21) : undefined;
  if (segCopy !== undefined)
    row(`copy/set per 1448 B segment ${label(big)} (into pool chunks)`, segCopy, big);
  const held = new Map<boolean, Stats>();
  for (const compact of [true, false]) {
    const name = `receive/held ${label(BIGGEST)} at the target, compaction ${compact ? "on" : "off"}`;
    if (!want(name)) continue;
    const st = heldReceive(BIGGEST, 5, 1, compact);
    held.set(compact, st);
    row(name, st, BIGGEST);
  }
  const compactOnly = want("receive/compact") ? compactionBaseline(BIGGEST, 21) : undefined;
  if (compactOnly !== undefined)
    row(
      `receive/compact ${label(BIGGEST)} of 1448 B segments into 64 KiB chunks (buffer alone)`,
      compactOnly,
      BIGGEST,
    );
  let stormResult: StormResult | undefined;
  if (want("terminate/storm")) {
    stormResult = storm(STORM_CONNS, STORM_BYTES_PER_CONN);
    const us = stormResult.ms * 1000;
    row(
      `terminate/storm ${STORM_CONNS} conns x ${label(STORM_BYTES_PER_CONN)}`,
      { medianUs: us, minUs: us, samples: 1 },
      0,
    );
  }
  if (rows.length === 0) {
    console.log("no chimney cases match");
    return;
  }
  printTable(rows);

  const fixed = latency.get(0);
  if (fixed !== undefined) {
    console.log(
      `terminate fixed cost (0 B): median ${fixed.medianUs.toFixed(1)} us, min ${fixed.minUs.toFixed(1)} us ` +
        `(target < ${TARGET_FIXED_US} us) ` +
        `${verdict(fixed.medianUs < TARGET_FIXED_US)} by median, ${verdict(fixed.minUs < TARGET_FIXED_US)} by min`,
    );
  }
  const largest = latency.get(big);
  if (
    big > 0 &&
    fixed !== undefined &&
    largest !== undefined &&
    copy !== undefined &&
    allocCopy !== undefined
  ) {
    // Per-byte cost: (largest - fixed) / bytes, by median and by min; compared with the copies by the same.
    for (const [measure, pick] of [
      ["median", (x: Stats) => x.medianUs],
      ["min", (x: Stats) => x.minUs],
    ] as const) {
      const perByteNs = ((pick(largest) - pick(fixed)) * 1000) / big;
      const ratio = perByteNs / ((pick(copy) * 1000) / big);
      const allocRatio = perByteNs / ((pick(allocCopy) * 1000) / big);
      const segRatio = segCopy === undefined ? Number.NaN : perByteNs / ((pick(segCopy) * 1000) / big);
      const sameRatio = sameCopy === undefined ? Number.NaN : perByteNs / ((pick(sameCopy) * 1000) / big);
      console.log(
        `terminate per-byte cost (${measure}): ${perByteNs.toFixed(3)} ns/B = ${ratio.toFixed(2)}x warm set ` +
          `(target <= ${TARGET_PER_BYTE_VS_COPY}x) ${verdict(ratio <= TARGET_PER_BYTE_VS_COPY)}; ` +
          `${sameRatio.toFixed(2)}x same-state set ${verdict(sameRatio <= TARGET_PER_BYTE_VS_COPY)}; ` +
          `${allocRatio.toFixed(2)}x alloc+set; ${segRatio.toFixed(2)}x set per segment`,
      );
    }
    for (const bytes of sizes) {
      const st = latency.get(bytes);
      if (st?.pool !== undefined && bytes > 0)
        console.log(`  receive pool, ${label(bytes)} case: ${st.pool}`);
    }
    if (viewReads?.pool !== undefined) {
      const perByteNs = ((viewReads.minUs - fixed.minUs) * 1000) / BIGGEST;
      console.log(
        `  app reads views (chunks leave the pool, so every copy lands in fresh memory): min ${perByteNs.toFixed(3)} ns/B; ` +
          `receive pool: ${viewReads.pool}`,
      );
    }
    const perByteMin = ((largest.minUs - fixed.minUs) * 1000) / big;
    for (const bytes of sizes) {
      const st = latency.get(bytes);
      if (st === undefined || bytes === 0) continue;
      const model = fixed.minUs + (perByteMin * bytes) / 1000;
      console.log(
        `  ${label(bytes)}: min ${st.minUs.toFixed(1)} us; fixed + per-byte model (min) ${model.toFixed(1)} us`,
      );
    }
  }
  const heldOn = held.get(true);
  const heldOff = held.get(false);
  if (heldOn !== undefined && heldOff !== undefined) {
    const ns = (x: number) => ((x * 1000) / BIGGEST).toFixed(3);
    console.log(
      `receive-side cost of compaction (${label(BIGGEST)} held): median ${ns(heldOn.medianUs - heldOff.medianUs)} ns/B, ` +
        `min ${ns(heldOn.minUs - heldOff.minUs)} ns/B (receive throughput on ${((BIGGEST / heldOn.minUs) * 1e-3).toFixed(2)} GB/s, ` +
        `off ${((BIGGEST / heldOff.minUs) * 1e-3).toFixed(2)} GB/s by min; target pool: ${heldOn.pool ?? "-"})`,
    );
  }
  if (compactOnly !== undefined)
    console.log(
      `compaction alone (receive buffer, per segment): min ${((compactOnly.minUs * 1000) / BIGGEST).toFixed(3)} ns/B, ` +
        `median ${((compactOnly.medianUs * 1000) / BIGGEST).toFixed(3)} ns/B`,
    );
  if (stormResult !== undefined) {
    console.log(
      `terminate storm: ${STORM_CONNS} connections in ${stormResult.ms.toFixed(0)} ms wall, ${stormResult.cpuMs.toFixed(0)} ms cpu ` +
        `(${stormResult.perConnUs.toFixed(1)} us each; target < ${TARGET_STORM_MS} ms) ${verdict(stormResult.ms < TARGET_STORM_MS)}`,
    );
    const gcNote = globalThis.gc === undefined ? " (no --expose-gc: unreliable)" : "";
    const kib = (x: Mem) =>
      `${(x.heap / 1024).toFixed(2)} KiB heap + ${(x.buffers / 1024).toFixed(2)} KiB array buffers`;
    console.log(
      `memory per offloaded connection: ${kib(stormResult.offloaded)} added by offloading an idle connection; ` +
        `${kib(stormResult.buffered)} more with ${label(STORM_BYTES_PER_CONN)} buffered at the target; ` +
        `both ends on their hosts: ${kib(stormResult.hostPair)}${gcNote}`,
    );
  }
  console.log(
    `load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")} on ${cpus().length} cpus: wall-clock figures on a busy machine are inflated (min less so)`,
  );
  if (sink === 0.5) console.log("");
}

function verdict(ok: boolean): string {
  return ok ? "OK" : "BELOW TARGET";
}

function printTable(rows: readonly Record<string, string>[]): void {
  const first = rows[0];
  if (first === undefined) return;
  const cols = Object.keys(first);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((s, i) => (i === 0 ? s.padEnd(width[i] ?? 0) : s.padStart(width[i] ?? 0))).join("  ");
  console.log(line(cols));
  console.log(line(width.map((w) => "-".repeat(w))));
  for (const r of rows) console.log(line(cols.map((c) => r[c] ?? "")));
}
