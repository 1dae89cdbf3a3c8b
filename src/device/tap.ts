/**
 * A TAP device as seen from our process: Ethernet frames in and out of /dev/net/tun.
 *
 * Two attachments, chosen by measurement (bench/live.bench.ts prints both):
 * - `addon` (default): the fd is non-blocking and polled on Node's event loop by the addon,
 *   which reads every frame that is ready (up to `readBatch`) per wake-up and hands them to
 *   JavaScript in one call; writes go out as one addon call per batch.
 * - `fs`: the fd is blocking and read with `fs.read` on libuv's thread pool, one frame per
 *   round trip; writes with `fs.writeSync`, one per frame. Kept as the baseline.
 * Both open the device with the addon, since TUNSETIFF is an ioctl that JavaScript cannot make.
 */
import { read, writeSync } from "node:fs";
import { loadTapAddon, type NativeReader } from "./native.js";
import { UsageError } from "../util/errors.js";

/** How frames cross between the TAP fd and JavaScript. */
export type TapMode = "addon" | "fs";

/**
 * Offloads of the device (addon mode only; `fs` mode is always `off`):
 * - `off`: plain Ethernet frames both ways, each at most the MTU.
 * - `gso`: frames carry a virtio-net header (IFF_VNET_HDR). Our side merges runs of contiguous
 *   TCP segments of one connection into one GSO frame per write (checksums computed in full);
 *   the kernel receives it as one large segment, as if its GRO had merged the run. What the
 *   kernel sends us is unchanged.
 * - `tso`: `gso`, and the kernel may also send us TCP segments of up to 64 KiB (TSO, cut at the
 *   MSS it would use on a wire) with checksums left partial; the addon completes the checksum,
 *   so our stack sees one large valid segment, as after GRO. A capture on the kernel side then
 *   shows the kernel's outgoing segments with partial checksums, as on any NIC with offloads.
 */
export type TapOffload = "off" | "gso" | "tso";

/**
 * Receives a batch of frames (each a view of its own; the receiver may keep them: their memory
 * is never reused). `verified[i]` is 1 when the device verified frame i's IP and TCP checksums
 * (receive checksum offload; the addon does it as it reads), 0 when the receiver must; the
 * array is reused for the next batch.
 */
export type FramesHandler = (frames: Uint8Array[], verified: Uint8Array) => void;

/** Makes the memory frames are read into (`TapDevice.start`): a worker thread gives shared memory. */
export type FrameMemory = (bytes: number) => Uint8Array;

/** Bytes of one landing slab the addon reads frames into (a fresh one when it runs low). */
const SLAB_BYTES = 2 << 20;

/** Counters of a TAP device. */
export interface TapStats {
  /** Frames read from the kernel. */
  framesIn: number;
  /** Reader wake-ups that delivered frames (framesIn / batchesIn = mean batch). */
  batchesIn: number;
  /** Frames written to the kernel (as the stack made them, before GSO merging). */
  framesOut: number;
  /** Write calls on the fd (framesOut - writesOut frames were merged into GSO frames). */
  writesOut: number;
  /** GSO frames written (each a run of at least two segments). */
  gsoOut: number;
  /** TSO frames the kernel handed us (each one segment of more than one MSS). */
  tsoIn: number;
  /** Frames whose IP and TCP checksums the addon verified as it read them (receive checksum offload). */
  verifiedIn: number;
  /** Checksums the kernel left partial that the addon completed. */
  checksumsCompleted: number;
  /** Frames not written because the fd would block. */
  writeDrops: number;
}

/** An open TAP device. */
export interface TapDevice {
  /** The interface name the kernel gave it. */
  readonly name: string;
  /** The attachment in use. */
  readonly mode: TapMode;
  /** The offloads in use. */
  readonly offload: TapOffload;
  /** Live counters. */
  readonly stats: Readonly<TapStats>;
  /** What another thread needs to read and write this device (`tapOn`). */
  readonly handle: TapHandle;
  /** A handle per queue (the first is `handle`); one unless opened with `queues`. */
  readonly queues: readonly TapHandle[];
  /**
   * Starts delivering frames to `onFrames` (once). `onError` hears a fatal read error. `memory`
   * makes the slabs frames land in (default: plain memory).
   */
  start(onFrames: FramesHandler, onError?: (code: string) => void, memory?: FrameMemory): void;
  /** Writes frames to the kernel; returns how many were accepted. */
  write(frames: readonly Uint8Array[]): number;
  /** Stops reading and closes the fd (the kernel deletes a non-persistent device). */
  close(): void;
}

/** Options of `openTap`. */
export interface OpenTapOptions {
  /** Attachment (default `addon`). */
  readonly mode?: TapMode | undefined;
  /** Frames read per wake-up at most (addon mode; default 256). */
  readonly readBatch?: number | undefined;
  /** Offloads (addon mode; default `off`). */
  readonly offload?: TapOffload | undefined;
  /**
   * Queues (addon mode; default 1). With more, the device is multi-queue: `queues` has a handle
   * per queue for a reader of its own (a target worker each), and the kernel hands each flow's
   * frames to the queue that last wrote one of its frames.
   */
  readonly queues?: number | undefined;
}

/** Opens (creating) TAP device `name` (at most 15 characters). Needs CAP_NET_ADMIN. */
export function openTap(name: string, options: OpenTapOptions = {}): TapDevice {
  const mode = options.mode ?? "addon";
  const queues = options.queues ?? 1;
  if (!Number.isSafeInteger(queues) || queues < 1 || queues > MAX_TAP_QUEUES)
    throw new UsageError(`queues ${String(queues)}: must be an integer from 1 to ${MAX_TAP_QUEUES}`);
  if (queues > 1 && mode !== "addon") throw new UsageError("a multi-queue TAP device needs the addon mode");
  const addon = loadTapAddon();
  const offload: TapOffload = mode === "addon" ? (options.offload ?? "off") : "off";
  const level = offload === "off" ? 0 : offload === "gso" ? 1 : 2;
  const multi = queues > 1;
  const { fd, name: actual, vnetHdr } = addon.open(name, mode === "addon", level, multi);
  const handle: TapHandle = { fd, name: actual, vnetHdr, mode, offload, readBatch: options.readBatch };
  const more: TapHandle[] = [];
  try {
    for (let q = 1; q < queues; q++) more.push({ ...handle, fd: addon.open(actual, true, level, true).fd });
  } catch (e) {
    for (const h of more) addon.close(h.fd);
    addon.close(fd);
    throw e;
  }
  return tapOn(handle, true, more);
}

const UNVERIFIED = new Uint8Array(1);

/** Queues of one TAP device at most (the kernel allows 256; a worker each is far fewer). */
export const MAX_TAP_QUEUES = 64;

/**
 * What another thread needs to run an open TAP device (`tapOn`): the fd is the process's, so a
 * worker thread can read and write it while the opener keeps it open.
 */
export interface TapHandle {
  readonly fd: number;
  readonly name: string;
  readonly vnetHdr: boolean;
  readonly mode: TapMode;
  readonly offload: TapOffload;
  readonly readBatch?: number | undefined;
}

/**
 * A `TapDevice` over an fd opened elsewhere (`TapDevice.handle`): its reads and writes. Its
 * `close` stops the reader; it closes the fd only when `owner` (the opener's device does).
 */
export function tapOn(h: TapHandle, owner = true, moreQueues: readonly TapHandle[] = []): TapDevice {
  const { fd, name: actual, vnetHdr, mode, offload } = h;
  const addon = loadTapAddon();
  const options = { readBatch: h.readBatch };
  const stats: TapStats = {
    framesIn: 0,
    batchesIn: 0,
    framesOut: 0,
    writesOut: 0,
    gsoOut: 0,
    tsoIn: 0,
    verifiedIn: 0,
    checksumsCompleted: 0,
    writeDrops: 0,
  };
  const readCounters = new Float64Array(2);
  const writeCounters = new Float64Array(2);
  let reader: NativeReader | undefined;
  let closed = false;
  let started = false;

  const startAddon = (
    onFrames: FramesHandler,
    onError?: (code: string) => void,
    memory?: FrameMemory,
  ): void => {
    const max = Math.min(4096, Math.max(1, options.readBatch ?? 256));
    const room = addon.maxFrameBytes;
    const alloc = memory ?? ((n: number) => new Uint8Array(n));
    const ends = new Uint32Array(max);
    const verified = new Uint8Array(max);
    let slab = alloc(Math.max(SLAB_BYTES, 2 * room));
    const landed = (start: number, n: number, error: string | undefined): Uint8Array | undefined => {
      if (closed) return undefined;
      stats.tsoIn = readCounters[0] ?? 0;
      stats.checksumsCompleted = readCounters[1] ?? 0;
      let at = start;
      if (n > 0) {
        const frames: Uint8Array[] = new Array<Uint8Array>(n);
        for (let i = 0; i < n; i++) {
          const e = ends[i] ?? 0;
          const end = e & 0x7fffffff;
          frames[i] = new Uint8Array(slab.buffer, slab.byteOffset + at, end - at); // not subarray: no species lookup per frame
          verified[i] = e >>> 31;
          stats.verifiedIn += e >>> 31;
          at = end;
        }
        stats.framesIn += n;
        stats.batchesIn++;
        onFrames(frames, verified.subarray(0, n));
      }
      if (error !== undefined) onError?.(error);
      if (slab.length - at >= room) return undefined;
      slab = alloc(Math.max(SLAB_BYTES, 2 * room)); // frames keep the old one alive while used
      return slab;
    };
    reader = addon.startReader(fd, max, vnetHdr, readCounters, landed, slab, ends);
  };

  const startFs = (onFrames: FramesHandler, onError?: (code: string) => void): void => {
    const next = (): void => {
      const buf = new Uint8Array(65536);
      read(fd, buf, 0, buf.length, null, (e, n) => {
        if (closed) return;
        if (e !== null) {
          onError?.(e.code ?? "EIO");
          return;
        }
        stats.framesIn++;
        stats.batchesIn++;
        onFrames([buf.subarray(0, n)], UNVERIFIED);
        next();
      });
    };
    next();
  };

  return {
    name: actual,
    mode,
    offload,
    handle: { fd, name: actual, vnetHdr, mode, offload, readBatch: h.readBatch },
    queues: [{ fd, name: actual, vnetHdr, mode, offload, readBatch: h.readBatch }, ...moreQueues],
    stats,
    start(onFrames, onError, memory) {
      if (started) throw new Error("TAP reader already started");
      started = true;
      if (mode === "addon") startAddon(onFrames, onError, memory);
      else startFs(onFrames, onError);
    },
    write(frames) {
      if (closed || frames.length === 0) return 0;
      let n: number;
      if (mode === "addon") {
        n = addon.writeFrames(fd, frames, vnetHdr, writeCounters);
        stats.writesOut = writeCounters[0] ?? 0;
        stats.gsoOut = writeCounters[1] ?? 0;
      } else {
        n = 0;
        for (const f of frames) {
          writeSync(fd, f);
          n++;
        }
        stats.writesOut += n;
      }
      stats.framesOut += n;
      stats.writeDrops += frames.length - n;
      return n;
    },
    close() {
      if (closed) return;
      closed = true;
      if (reader !== undefined) addon.stopReader(reader);
      if (owner) {
        for (const q of moreQueues) addon.close(q.fd);
        addon.close(fd);
      }
    },
  };
}
