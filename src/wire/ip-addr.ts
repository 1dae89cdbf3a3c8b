/**
 * IP addresses as the stack carries them: a 4-byte (IPv4) or 16-byte (IPv6) `Uint8Array` that
 * nobody mutates after construction. Parsing and printing to text live here too.
 */
import { err, ok, type Result, UsageError } from "../util/errors.js";

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address. Treat as immutable. */
export type IpAddr = Uint8Array;

/** 4 or 6. */
export function ipVersion(a: IpAddr): 4 | 6 {
  return a.length === 4 ? 4 : 6;
}

export function ipEquals(a: IpAddr, b: IpAddr): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Text form: dotted quad, or RFC 5952 canonical IPv6 (lower case, longest zero run as ::). */
export function ipToString(a: IpAddr): string {
  if (a.length === 4) return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((a[i] ?? 0) << 8) | (a[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** Parses dotted-quad IPv4 or IPv6 text (with `::`, and an embedded IPv4 tail). */
export function parseIp(text: string): Result<IpAddr, string> {
  if (text.includes(":")) return parseIpv6(text);
  const parts = text.split(".");
  if (parts.length !== 4) return err(`not an IP address: ${JSON.stringify(text)}`);
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] ?? "";
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return err(`not an IP address: ${JSON.stringify(text)}`);
    out[i] = Number(p);
  }
  return ok(out);
}

function parseIpv6(text: string): Result<IpAddr, string> {
  const bad = err(`not an IPv6 address: ${JSON.stringify(text)}`);
  const halves = text.split("::");
  if (halves.length > 2) return bad;
  const words = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? "";
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIp(p);
        if (!v4.ok || v4.value.length !== 4) return undefined;
        const b = v4.value;
        out.push(((b[0] ?? 0) << 8) | (b[1] ?? 0), ((b[2] ?? 0) << 8) | (b[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const head = words(halves[0] ?? "");
  const tail = halves.length === 2 ? words(halves[1] ?? "") : [];
  if (head === undefined || tail === undefined) return bad;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return bad;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return ok(out);
}

/** Parses or throws: for constants in code and tests, never for input. */
export function ip(text: string): IpAddr {
  const r = parseIp(text);
  if (!r.ok) throw new UsageError(r.error);
  return r.value;
}

/** A compact string key for maps (unique per address; v4 and v6 never collide). */
export function ipKey(a: IpAddr): string {
  // One char per byte, with the bytes written out: spreading a typed array into `fromCharCode`
  // allocates an iterator and an array per call, and this runs on every demux.
  const c = String.fromCharCode;
  if (a.length === 4) return c(a[0] ?? 0, a[1] ?? 0, a[2] ?? 0, a[3] ?? 0);
  if (a.length !== 16) return c(...a);
  return c(
    a[0] ?? 0,
    a[1] ?? 0,
    a[2] ?? 0,
    a[3] ?? 0,
    a[4] ?? 0,
    a[5] ?? 0,
    a[6] ?? 0,
    a[7] ?? 0,
    a[8] ?? 0,
    a[9] ?? 0,
    a[10] ?? 0,
    a[11] ?? 0,
    a[12] ?? 0,
    a[13] ?? 0,
    a[14] ?? 0,
    a[15] ?? 0,
  );
}

/** True when the first `prefixLen` bits of `a` and `prefix` agree (and both are one family). */
export function ipInPrefix(a: IpAddr, prefix: IpAddr, prefixLen: number): boolean {
  if (a.length !== prefix.length) return false;
  const whole = prefixLen >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== prefix[i]) return false;
  const rest = prefixLen & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[whole] ?? 0) & mask) === ((prefix[whole] ?? 0) & mask);
}
