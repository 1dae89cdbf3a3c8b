/**
 * The Internet checksum (RFC 1071): partial sums that combine without copying, the IPv4 and
 * IPv6 pseudo-headers (RFC 9293 section 3.1, RFC 8200 section 8.1), incremental update
 * (RFC 1624) and the checksum capability flags an interface or offload target advertises.
 *
 * Vocabulary: a *sum* is the folded 16-bit one's-complement sum of some bytes (0..0xffff,
 * never the complement); a *checksum* is the complement of a sum, the value written to the
 * wire. Sums of consecutive ranges combine with `addSums` as long as every range but the last
 * has an even length (RFC 1071 section 2(B)); a range that starts at an odd position of the
 * checksummed data must be byte-swapped first (`swapSum`, RFC 1071 section 2(A)).
 *
 * Speed: ranges of `WASM_MIN_BYTES` or more are copied into a small WebAssembly SIMD module that
 * adds eight 16-bit words per instruction (about 15-20 GB/s, including the copy); shorter ranges,
 * and every range on a runtime without WebAssembly SIMD, take the JavaScript loops below. Both
 * give the same result; the tests hold both to a naive reference.
 */
import type { IpAddr } from "./ip-addr.js";

// ---------------------------------------------------------------------------------------------
// Sums

/**
 * The folded one's-complement sum of `bytes[start, end)` read as big-endian 16-bit words, an odd
 * last byte padded with zero (RFC 1071). Returns 0..0xffff; 0 only when every byte is zero.
 */
export function sumBytes(bytes: Uint8Array, start = 0, end: number = bytes.length): number {
  if (end - start >= WASM_MIN_BYTES) {
    const wasm = simd();
    if (wasm !== undefined) return wasmSum(wasm, bytes, start, end);
  }
  return sumBytesJs(bytes, start, end);
}

/** `sumBytes` using only JavaScript (the fallback path; exported for tests and benchmarks). */
export function sumBytesJs(bytes: Uint8Array, start = 0, end: number = bytes.length): number {
  const len = end - start;
  if (len >= JS_DATAVIEW_MIN_BYTES) return sumBytesDataView(bytes, start, end);
  // Even-position bytes are high halves of words, odd-position bytes low halves; each byte is at
  // most 255, so these integer accumulators cannot overflow for short ranges. Indices stay in
  // [start, end), within the array, so the `!` reads are defined.
  let hi = 0;
  let lo = 0;
  let i = start;
  const end4 = start + (len & ~3);
  for (; i < end4; i += 4) {
    hi += bytes[i]! + bytes[i + 2]!;
    lo += bytes[i + 1]! + bytes[i + 3]!;
  }
  for (; i + 1 < end; i += 2) {
    hi += bytes[i]!;
    lo += bytes[i + 1]!;
  }
  if (i < end) hi += bytes[i]!;
  return fold(hi * 256 + lo);
}

/** One's-complement addition of two sums (0..0xffff each). */
export function addSums(a: number, b: number): number {
  const s = a + b;
  return (s & 0xffff) + (s >>> 16);
}

/** The sum of the same bytes read with the other byte parity (RFC 1071 section 2(A)). */
export function swapSum(sum: number): number {
  return ((sum & 0xff) << 8) | (sum >>> 8);
}

/** The checksum to write for data whose sum is `sum`: its complement. */
export function checksumOfSum(sum: number): number {
  return ~sum & 0xffff;
}

/**
 * The checksum of `bytes[start, end)` plus an optional partial `initial` sum (a pseudo-header):
 * the value to store in a checksum field that was zero while summing.
 */
export function internetChecksum(
  bytes: Uint8Array,
  start = 0,
  end: number = bytes.length,
  initial = 0,
): number {
  return checksumOfSum(addSums(sumBytes(bytes, start, end), initial));
}

/**
 * True when data that includes its checksum field verifies: its sum plus `initial` (a
 * pseudo-header sum) is 0xffff, the one's-complement "negative zero" (RFC 1071 section 1).
 */
export function verifyChecksum(
  bytes: Uint8Array,
  start = 0,
  end: number = bytes.length,
  initial = 0,
): boolean {
  return addSums(sumBytes(bytes, start, end), initial) === 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Pseudo-headers

/** The source and destination addresses that the TCP/UDP/ICMPv6 pseudo-header covers. */
export interface IpPseudoHeader {
  readonly src: IpAddr;
  readonly dst: IpAddr;
}

/**
 * Sum of the IPv4 pseudo-header (RFC 9293 section 3.1): source, destination, zero, protocol and
 * the upper-layer length (header plus data).
 */
export function ipv4PseudoHeaderSum(src: IpAddr, dst: IpAddr, protocol: number, length: number): number {
  return fold(addrWords(src) + addrWords(dst) + protocol + length);
}

/**
 * Sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination, the 32-bit
 * upper-layer packet length and the next-header value of the upper-layer protocol.
 */
export function ipv6PseudoHeaderSum(src: IpAddr, dst: IpAddr, nextHeader: number, length: number): number {
  return fold(addrWords(src) + addrWords(dst) + Math.floor(length / 65536) + (length & 0xffff) + nextHeader);
}

/** The pseudo-header sum for either family, picked by the address length (4 or 16 bytes). */
export function pseudoHeaderSum(src: IpAddr, dst: IpAddr, protocol: number, length: number): number {
  return src.length === 4
    ? ipv4PseudoHeaderSum(src, dst, protocol, length)
    : ipv6PseudoHeaderSum(src, dst, protocol, length);
}

// ---------------------------------------------------------------------------------------------
// Incremental update

/**
 * RFC 1624 equation 3: the checksum after one 16-bit word of the covered data changes from
 * `oldWord` to `newWord`, HC' = ~(~HC + ~m + m'), without touching the rest of the data.
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  return ~fold((~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** `updateChecksum16` for a 32-bit field (a sequence number, an IPv4 address) that changed. */
export function updateChecksum32(checksum: number, oldValue: number, newValue: number): number {
  return (
    ~fold(
      (~checksum & 0xffff) +
        (~(oldValue >>> 16) & 0xffff) +
        (~oldValue & 0xffff) +
        (newValue >>> 16) +
        (newValue & 0xffff),
    ) & 0xffff
  );
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/**
 * Who handles a checksum in software (smoltcp's `Checksum`): `"both"` computes on transmit and
 * verifies on receive, `"tx"` / `"rx"` only one direction, `"none"` neither (the hardware, or
 * the offload target, does it; or the link cannot corrupt, as in a simulation).
 */
export type ChecksumMode = "both" | "tx" | "rx" | "none";

/**
 * Per-protocol checksum modes of an interface. An offload target that advertises checksum
 * offload reports `"none"` for the protocols it handles, and the host stops computing them.
 */
export interface ChecksumCapabilities {
  readonly ipv4: ChecksumMode;
  readonly tcp: ChecksumMode;
  readonly icmpv4: ChecksumMode;
  readonly icmpv6: ChecksumMode;
}

/** Ready-made capability sets. */
export const ChecksumCapabilities = {
  /** Software computes and verifies every checksum (the default). */
  ALL: { ipv4: "both", tcp: "both", icmpv4: "both", icmpv6: "both" } as ChecksumCapabilities,
  /** Software touches no checksum: transmitted fields are zero and received ones are not checked. */
  NONE: { ipv4: "none", tcp: "none", icmpv4: "none", icmpv6: "none" } as ChecksumCapabilities,
} as const;

/** True when software must compute this checksum on transmit. */
export function mustCompute(mode: ChecksumMode): boolean {
  return mode === "both" || mode === "tx";
}

/** True when software must verify this checksum on receive. */
export function mustVerify(mode: ChecksumMode): boolean {
  return mode === "both" || mode === "rx";
}

/**
 * `caps` for a frame whose IPv4 header and TCP checksums the device already verified (receive
 * checksum offload, as a NIC reports in the NBL's checksum info): software verifies neither.
 */
export function rxVerified(caps: ChecksumCapabilities): ChecksumCapabilities {
  const off = (m: ChecksumMode): ChecksumMode => (m === "both" ? "tx" : m === "rx" ? "none" : m);
  return { ...caps, ipv4: off(caps.ipv4), tcp: off(caps.tcp) };
}

/** Which implementation `sumBytes` uses for long ranges on this runtime. */
export function checksumBackend(): "wasm-simd" | "js" {
  return simd() === undefined ? "js" : "wasm-simd";
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** End-around-carry fold of a non-negative integer sum below 2^53 into 0..0xffff. */
function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/** The unfolded sum of an address's 16-bit words (2 or 8 words, so below 2^20). */
function addrWords(a: IpAddr): number {
  let s = 0;
  // a.length is 4 or 16 (even), so a[i] and a[i + 1] are defined.
  for (let i = 0; i < a.length; i += 2) s += (a[i]! << 8) | a[i + 1]!;
  return s;
}

/**
 * The JavaScript path for long ranges: big-endian 32-bit reads into four double accumulators.
 * Blocks of at most 4 MiB keep each accumulator below 2^50 and their total below 2^53, where
 * doubles stop being exact integers.
 */
function sumBytesDataView(bytes: Uint8Array, start: number, end: number): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let total = 0;
  let i = start;
  while (end - i >= 16) {
    const blockEnd = i + Math.min((end - i) & ~15, 1 << 22);
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    for (; i < blockEnd; i += 16) {
      a0 += dv.getUint32(i);
      a1 += dv.getUint32(i + 4);
      a2 += dv.getUint32(i + 8);
      a3 += dv.getUint32(i + 12);
    }
    // A 32-bit word is two 16-bit words; folding the 32-bit sum is the same one's-complement sum.
    total = addSums(total, fold(a0 + a1 + a2 + a3));
  }
  return addSums(total, sumBytesJs(bytes, i, end));
}

/**
 * The JavaScript path reads bytes one by one below this length and 32-bit words through a
 * `DataView` above it (creating the view costs more than it saves on short ranges).
 */
const JS_DATAVIEW_MIN_BYTES = 512;
/** Ranges shorter than this take the JavaScript path: the copy into WebAssembly memory costs more. */
const WASM_MIN_BYTES = 256;
/** The most bytes summed per call into the module; even, so every chunk starts at even parity. */
const WASM_CHUNK = 128 * 1024;
/**
 * Where the module reads its input (bytes 0..15 receive the four 32-bit lane sums). Half a page
 * in, on purpose: the memory is page-aligned, and memcpy on some CPUs (measured on AMD EPYC)
 * runs up to 20 times slower when the destination is 8..63 bytes past the source modulo 4 KiB.
 * Heap buffers mostly sit just past a 16-byte chunk header, so a destination at 64 would hit
 * that often; at 2048 it rarely does.
 */
const WASM_DATA = 2048;
/** At most this many bytes outside the range are copied along to avoid a subarray. */
const WASM_MAX_EXTRA_COPY = 2048;

/**
 * The module, hand-assembled (WebAssembly text shown; 3 pages of memory):
 *
 *   (func (export "sum") (param $p i32) (param $end i32) (local $a v128) (local $b v128)
 *     (block (loop
 *       (br_if 1 (i32.ge_u (local.get $p) (local.get $end)))
 *       ;; four times, alternating $a and $b, at offsets 0, 16, 32, 48:
 *       (local.set $a (i32x4.add (local.get $a)
 *         (i32x4.extadd_pairwise_i16x8_u (v128.load offset=0 (local.get $p)))))
 *       (local.set $p (i32.add (local.get $p) (i32.const 64)))
 *       (br 0)))
 *     (v128.store (i32.const 0) (i32x4.add (local.get $a) (local.get $b))))
 *
 * Each lane of $a/$b gains at most 2 * 0x1fffe per 64 bytes, so a 128 KiB chunk cannot overflow
 * it. WebAssembly loads are little-endian, so the lanes hold the sum of byte-swapped words; the
 * caller swaps the folded result back (RFC 1071 section 2(B), byte-order independence).
 */
const WASM_MODULE_HEX =
  "0061736d0100000001060160027f7f00030201000503010003070d02036d656d02000373756d00000a66016401027b" +
  "02400340200020014f0d0120022000fd000400fd7ffdae01210220032000fd000410fd7ffdae01210320022000fd0004" +
  "20fd7ffdae01210220032000fd000430fd7ffdae012103200041c0006a21000c000b0b410020022003fdae01fd0b0400" +
  "0b";

/** The instantiated module: its memory as bytes, the lane results, and the summing function. */
interface SimdSummer {
  readonly mem: Uint8Array;
  readonly lanes: Uint32Array;
  readonly sum: (p: number, end: number) => void;
}

/** The few WebAssembly API members used here (the core compiles without DOM or Node types). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (
    module: object,
    imports: object,
  ) => { readonly exports: { readonly mem: { readonly buffer: ArrayBuffer }; readonly sum: unknown } };
}

let simdState: SimdSummer | null | undefined;

/** The SIMD module, instantiated on first use; `undefined` when the runtime cannot run it. */
function simd(): SimdSummer | undefined {
  if (simdState === undefined) simdState = instantiate();
  return simdState ?? undefined;
}

function instantiate(): SimdSummer | null {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined) return null;
  try {
    const bytes = new Uint8Array(WASM_MODULE_HEX.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(WASM_MODULE_HEX.slice(2 * i, 2 * i + 2), 16);
    const { exports } = new api.Instance(new api.Module(bytes), {});
    const buffer = exports.mem.buffer;
    // The export is the function declared in the module text above.
    const sum = exports.sum as (p: number, end: number) => void;
    return { mem: new Uint8Array(buffer), lanes: new Uint32Array(buffer, 0, 4), sum };
  } catch {
    // No SIMD support (or WebAssembly disabled): the JavaScript path is used instead.
    return null;
  }
}

function wasmSum(w: SimdSummer, bytes: Uint8Array, start: number, end: number): number {
  // When the range is most of `bytes`, copy all of `bytes` so the range lands 64-byte aligned at
  // or after WASM_DATA: a few extra bytes copied cost less than allocating a subarray view.
  const extra = bytes.length - (end - start);
  if (extra <= WASM_MAX_EXTRA_COPY && start <= WASM_MAX_EXTRA_COPY && bytes.length <= WASM_CHUNK) {
    const dataAt = (WASM_DATA + start + 63) & ~63; // > 16: the copied head stays clear of the lanes
    w.mem.set(bytes, dataAt - start);
    return wasmSumAt(w, dataAt, end - start);
  }
  let total = 0;
  for (let at = start; at < end; at += WASM_CHUNK) {
    const n = Math.min(WASM_CHUNK, end - at);
    w.mem.set(bytes.subarray(at, at + n), WASM_DATA);
    total = addSums(total, wasmSumAt(w, WASM_DATA, n));
  }
  return total;
}

/** Sums the `n` bytes already copied to `mem[at..]` (n <= WASM_CHUNK). */
function wasmSumAt(w: SimdSummer, at: number, n: number): number {
  const padded = (n + 63) & ~63;
  // Zero padding leaves the sum unchanged and pads an odd last byte as RFC 1071 requires.
  w.mem.fill(0, at + n, at + padded);
  w.sum(at, at + padded);
  const lanes = w.lanes;
  return swapSum(fold(lanes[0]! + lanes[1]! + lanes[2]! + lanes[3]!)); // 4 lanes exist
}
