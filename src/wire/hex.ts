/**
 * Hex text and bytes, for test vectors, traces and the CLI's decode command. Whitespace,
 * colons and a `0x` prefix in the input are ignored, so tcpdump/Wireshark hex dumps paste in.
 */
import { err, ok, type Result, UsageError } from "../util/errors.js";

/** Lower-case hex of the bytes, no separators. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Parses hex text into fresh bytes; an odd digit count or a non-hex character is an error. */
export function parseHex(text: string): Result<Uint8Array, string> {
  const clean = text.replace(/^0x/i, "").replace(/[\s:]/g, "");
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) return err("not an even run of hex digits");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return ok(out);
}

/** Parses or throws `UsageError`: for constants in code and tests, never for input. */
export function hex(text: string): Uint8Array {
  const r = parseHex(text);
  if (!r.ok) throw new UsageError(r.error);
  return r.value;
}
