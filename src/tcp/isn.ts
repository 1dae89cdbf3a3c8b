/**
 * Initial sequence numbers per RFC 6528 and the keyed hash behind them and behind SYN cookies.
 * The core may not use node:crypto, so the hash is HalfSipHash-2-4 (the 32-bit SipHash
 * variant) written out on 32-bit words. The secret key and the clock are arguments.
 */
import type { Instant } from "../time/instant.js";
import type { IpAddr } from "../wire/ip-addr.js";
import { Seq, type SeqNum } from "../wire/seq.js";

/** A 64-bit secret as two 32-bit words; draw it once from the stack's PRNG. */
export interface HashKey {
  readonly k0: number;
  readonly k1: number;
}

const rotl = (x: number, b: number): number => ((x << b) | (x >>> (32 - b))) >>> 0;

/**
 * HalfSipHash-2-4 over a list of 32-bit words (each taken as four little-endian bytes), with a
 * 32-bit result; it matches the reference implementation's 32-bit test vectors (key bytes
 * 00..07 as k0 = 0x03020100, k1 = 0x07060504).
 */
export function keyedHash32(key: HashKey, words: readonly number[]): number {
  let v0 = key.k0 >>> 0;
  let v1 = key.k1 >>> 0;
  let v2 = (0x6c796765 ^ key.k0) >>> 0;
  let v3 = (0x74656462 ^ key.k1) >>> 0;
  const round = (): void => {
    v0 = (v0 + v1) >>> 0;
    v1 = rotl(v1, 5) ^ v0;
    v0 = rotl(v0, 16);
    v2 = (v2 + v3) >>> 0;
    v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) >>> 0;
    v3 = rotl(v3, 7) ^ v0;
    v2 = (v2 + v1) >>> 0;
    v1 = rotl(v1, 13) ^ v2;
    v2 = rotl(v2, 16);
  };
  for (const w of words) {
    const m = w >>> 0;
    v3 = (v3 ^ m) >>> 0;
    round();
    round();
    v0 = (v0 ^ m) >>> 0;
  }
  const b = ((words.length * 4) << 24) >>> 0; // final block: the message length, no tail bytes
  v3 = (v3 ^ b) >>> 0;
  round();
  round();
  v0 = (v0 ^ b) >>> 0;
  v2 = (v2 ^ 0xff) >>> 0;
  round();
  round();
  round();
  round();
  return (v1 ^ v3) >>> 0;
}

/** The 4-tuple as hash input words: addresses as 32-bit words, then both ports. */
export function tupleWords(local: IpAddr, localPort: number, remote: IpAddr, remotePort: number): number[] {
  const out: number[] = [];
  const add = (a: Uint8Array): void => {
    for (let i = 0; i < a.length; i += 4)
      out.push(((a[i] ?? 0) << 24) | ((a[i + 1] ?? 0) << 16) | ((a[i + 2] ?? 0) << 8) | (a[i + 3] ?? 0));
  };
  add(local);
  add(remote);
  out.push(((localPort & 0xffff) << 16) | (remotePort & 0xffff));
  return out;
}

/**
 * RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is a
 * clock ticking every 4 microseconds (so ISNs of successive incarnations of a 4-tuple grow).
 */
export function initialSeq(
  key: HashKey,
  local: IpAddr,
  localPort: number,
  remote: IpAddr,
  remotePort: number,
  now: Instant,
): SeqNum {
  const m = Math.floor(now / 4);
  return Seq.of(m + keyedHash32(key, tupleWords(local, localPort, remote, remotePort)));
}

/** A per-connection timestamp offset (RFC 7323 5.4), stable for the 4-tuple and key. */
export function timestampOffset(
  key: HashKey,
  local: IpAddr,
  localPort: number,
  remote: IpAddr,
  remotePort: number,
): number {
  const w = tupleWords(local, localPort, remote, remotePort);
  w.push(0x74730000); // domain separation from the ISN hash
  return keyedHash32(key, w);
}
