/**
 * The TAP addon (native/tap.c), loaded on first use. Only Node-side code (src/device, for src/live and the worker target) loads it;
 * the core never does. The package's `install` script builds it when python3, make and g++ are
 * there and skips it otherwise (native/build.sh): the package works without it, and only opening
 * a TAP device (the live link) throws `NativeAddonMissingError`, which says how to build it.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { StackError } from "../util/errors.js";

/** The live link needs the TAP addon (the kernel hand-off the repair addon), and it was not built (see `message` for how to build it). */
export class NativeAddonMissingError extends StackError {
  readonly code = "ERR_NATIVE_ADDON_MISSING";
  /** Where the addon was looked for. */
  readonly path: string;
  /** `needs`: who needs which addon (the live link, the TAP addon by default). */
  constructor(path: string, needs = "the live link needs the TAP addon") {
    super(
      `${needs}, which was not built (${path} is missing): ` +
        "run `npm run build:native` (or `sh native/build.sh`) in the chimney package; it needs python3, make and g++",
    );
    this.path = path;
  }
}

/**
 * Called once per reader wake-up with `n` frames read back to back into the landing slab from
 * `start` on: frame i ends at `ends[i] & 0x7fffffff` (bit 31: its IP and TCP checksums were
 * verified good in the addon). Returning a Uint8Array makes it the landing slab from the next
 * frame on (it must have `maxFrameBytes` free); the addon never writes a frame's bytes again.
 */
export type NativeFramesCallback = (
  start: number,
  n: number,
  error: string | undefined,
) => Uint8Array | undefined;

/** An opaque reader handle of the addon. */
export type NativeReader = object & { readonly __nativeReader?: never };

/** The addon's functions (see the comment at the top of native/tap.c). */
export interface TapAddon {
  /**
   * Opens /dev/net/tun as TAP device `name` (IFF_TAP | IFF_NO_PI); returns the fd, the name and
   * whether frames carry a virtio-net header. `offload` 0: plain frames; 1: IFF_VNET_HDR (we may
   * write GSO frames); 2: also TUNSETOFFLOAD(CSUM | TSO4 | TSO6) (the kernel may hand us
   * checksum-partial and TSO frames).
   */
  open(
    name: string,
    nonBlocking: boolean,
    offload: 0 | 1 | 2,
    multiQueue?: boolean,
  ): { readonly fd: number; readonly name: string; readonly vnetHdr: boolean };
  /** The room one read needs in a landing slab (a 64 KiB IP packet in an Ethernet frame, and spare). */
  readonly maxFrameBytes: number;
  /**
   * Polls `fd` on Node's event loop and reads up to `maxFrames` frames per wake-up, straight into
   * `slab` (no copy: a slab over a SharedArrayBuffer lands frames in shared memory). With
   * `vnetHdr` the addon consumes the header and completes partial checksums. `counters` (2
   * elements, kept by the reader): [0] += TSO frames read, [1] += partial checksums completed.
   * `ends` (at least `maxFrames` elements, kept by the reader) is where `cb` finds the frames.
   */
  startReader(
    fd: number,
    maxFrames: number,
    vnetHdr: boolean,
    counters: Float64Array,
    cb: NativeFramesCallback,
    slab: Uint8Array,
    ends: Uint32Array,
  ): NativeReader;
  /** The addon's receive checksum check on one frame: true when its IP and TCP checksums verify. */
  tcpChecksumOk(frame: Uint8Array): boolean;
  /** Stops a reader. */
  stopReader(reader: NativeReader): void;
  /**
   * Writes the frames; returns how many were written (stops at EAGAIN). Without `vnetHdr` one
   * write(2) per frame; with it, runs of contiguous segments of one connection leave as one GSO
   * frame each (see native/tap.c). `counters` (2 elements): [0] += write calls made, [1] += GSO
   * frames among them.
   */
  writeFrames(fd: number, frames: readonly Uint8Array[], vnetHdr: boolean, counters: Float64Array): number;
  /** Closes `fd`. */
  close(fd: number): void;
}

let cached: TapAddon | undefined;

/** Where the addon is looked for: native/build/Release under the package root. */
export function addonPath(): string {
  // dist/src/device/native.js -> package root is three levels up.
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
  return join(root, "native", "build", "Release", "chimney_tap.node");
}

/**
 * Loads the addon from `path` (default `addonPath()`, cached); throws `NativeAddonMissingError`
 * if it is not there.
 */
export function loadTapAddon(path?: string): TapAddon {
  if (path === undefined && cached !== undefined) return cached;
  const file = path ?? addonPath();
  if (!existsSync(file)) throw new NativeAddonMissingError(file);
  const require = createRequire(import.meta.url);
  const addon = require(file) as TapAddon;
  if (path === undefined) cached = addon;
  return addon;
}
