/** `chimney decode FILE.pcap`: tcpdump-style one-liners of a capture (ours or the kernel's). */
import { readFileSync } from "node:fs";
import { ChecksumCapabilities } from "../../wire/checksum.js";
import { parsePcap } from "../../wire/pcap.js";
import { decodeFrame, decodeIpPacket } from "../../wire/packet.js";
import { formatPacket } from "../../wire/pretty.js";
import { CliUsageError } from "../errors.js";

/** Options of `decode`. */
export interface DecodeOptions {
  /** Print at most this many packets. */
  readonly count?: number | undefined;
  /** Timestamps relative to the first packet (default) or absolute. */
  readonly absolute?: boolean | undefined;
  /**
   * Verify checksums and flag bad ones (off by default, as in tcpdump: captures taken on the
   * sending host carry partial checksums that the NIC completes later).
   */
  readonly verifyChecksums?: boolean | undefined;
}

/** Decodes a capture file into lines (no trailing newline). Throws `CliUsageError` on a bad file. */
export function decodeCapture(path: string, options: DecodeOptions = {}): string[] {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new CliUsageError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const r = parsePcap(bytes);
  if (!r.ok)
    throw new CliUsageError(`${path}: not a classic pcap file (${r.error.code} at byte ${r.error.offset})`);
  const { header, records } = r.value;
  const ethernet = header.linkType === 1;
  const lines: string[] = [];
  const first = records[0]?.time ?? 0;
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  const caps = options.verifyChecksums === true ? ChecksumCapabilities.ALL : ChecksumCapabilities.NONE;
  for (const rec of records) {
    if (lines.length >= limit) break;
    const us = options.absolute === true ? rec.time : rec.time - first;
    const stamp = `${Math.floor(us / 1_000_000)}.${String(us % 1_000_000).padStart(6, "0")}`;
    const p = ethernet ? decodeFrame(rec.data, caps) : decodeIpPacket(rec.data, caps);
    lines.push(`${stamp} ${formatPacket(p)}`);
  }
  return lines;
}
