/**
 * The RSS hash (Toeplitz, as NDIS receive side scaling and every RSS NIC compute it) of a TCP
 * connection's received direction: source address, destination address, source port,
 * destination port, in network byte order, hashed with a 40-byte secret key.
 *
 * The host supplies it per connection in TCP_OFFLOAD_STATE_CONST.HashValue (RS-1); a NIC with
 * several receive queues (or a software target spread over several threads) hashes each
 * received frame the same way, so a connection's frames and its offloaded state meet on the
 * same queue. `frameRssHash` reads the 4-tuple straight from an Ethernet frame without decoding
 * it (IPv4 without fragmentation, IPv6 without extension headers; anything else is not hashed).
 */
import type { IpAddr } from "./ip-addr.js";

/** The key of the RSS verification suite (NDIS and NIC datasheets): the usual default. */
export const DEFAULT_RSS_KEY: Uint8Array = Uint8Array.from([
  0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca,
  0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b,
  0xbe, 0xac, 0x01, 0xfa,
]);

/**
 * Toeplitz hash of `len` bytes of `input` from `at`: for every set bit of the input, XOR in the
 * 32 bits of the key that start at that bit. The key must be at least `len + 4` bytes long.
 */
export function toeplitz(key: Uint8Array, input: Uint8Array, at = 0, len = input.length - at): number {
  let result = 0;
  // The 32-bit window of the key at the current bit, and the next key byte to shift in.
  let window = ((key[0] ?? 0) << 24) | ((key[1] ?? 0) << 16) | ((key[2] ?? 0) << 8) | (key[3] ?? 0);
  for (let i = 0; i < len; i++) {
    const b = input[at + i] ?? 0;
    const next = key[i + 4] ?? 0;
    for (let bit = 7; bit >= 0; bit--) {
      if ((b >> bit) & 1) result ^= window;
      window = (window << 1) | ((next >> bit) & 1);
    }
  }
  return result >>> 0;
}

const tuple4 = new Uint8Array(12);
const tuple6 = new Uint8Array(36);

/** The RSS hash of a TCP 4-tuple as received: (source, destination) addresses and ports. */
export function rssTupleHash(
  src: IpAddr,
  dst: IpAddr,
  srcPort: number,
  dstPort: number,
  key: Uint8Array = DEFAULT_RSS_KEY,
): number {
  const t = src.length === 4 ? tuple4 : tuple6;
  const n = src.length;
  t.set(src, 0);
  t.set(dst, n);
  t[2 * n] = srcPort >> 8;
  t[2 * n + 1] = srcPort & 0xff;
  t[2 * n + 2] = dstPort >> 8;
  t[2 * n + 3] = dstPort & 0xff;
  return toeplitz(key, t);
}

/**
 * The RSS hash of a received Ethernet frame carrying TCP (one 802.1Q tag allowed), or -1 when
 * the frame is anything else: not IP, not TCP, an IPv4 fragment or an IPv6 header chain.
 * `reversed`: the hash of the frame's reply direction (a frame we send hashes as the frames its
 * connection receives).
 */
export function frameRssHash(frame: Uint8Array, key: Uint8Array = DEFAULT_RSS_KEY, reversed = false): number {
  let off = 12;
  let type = ((frame[off] ?? 0) << 8) | (frame[off + 1] ?? 0);
  off += 2;
  if (type === 0x8100) {
    type = ((frame[off + 2] ?? 0) << 8) | (frame[off + 3] ?? 0);
    off += 4;
  }
  if (type === 0x0800) {
    if (frame.length < off + 20) return -1;
    const ihl = ((frame[off] ?? 0) & 0x0f) * 4;
    const frag = (((frame[off + 6] ?? 0) & 0x3f) << 8) | (frame[off + 7] ?? 0); // MF + offset
    if (frame[off + 9] !== 6 || frag !== 0 || ihl < 20 || frame.length < off + ihl + 4) return -1;
    fill(tuple4, frame, off + 12, 4, off + ihl, reversed);
    return toeplitz(key, tuple4);
  }
  if (type === 0x86dd) {
    if (frame.length < off + 44 || frame[off + 6] !== 6) return -1;
    fill(tuple6, frame, off + 8, 16, off + 40, reversed);
    return toeplitz(key, tuple6);
  }
  return -1;
}

/** The hash input from a frame: addresses of `n` bytes at `addrs`, the two ports at `ports`. */
function fill(
  t: Uint8Array,
  frame: Uint8Array,
  addrs: number,
  n: number,
  ports: number,
  reversed: boolean,
): void {
  // Byte loops, no views or arrays: this runs for every frame steered to a worker.
  const a = reversed ? addrs + n : addrs;
  const b = reversed ? addrs : addrs + n;
  const p = reversed ? ports + 2 : ports;
  const q = reversed ? ports : ports + 2;
  for (let i = 0; i < n; i++) {
    t[i] = frame[a + i] ?? 0;
    t[n + i] = frame[b + i] ?? 0;
  }
  t[2 * n] = frame[p] ?? 0;
  t[2 * n + 1] = frame[p + 1] ?? 0;
  t[2 * n + 2] = frame[q] ?? 0;
  t[2 * n + 3] = frame[q + 1] ?? 0;
}
