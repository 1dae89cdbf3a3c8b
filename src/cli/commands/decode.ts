/**
 * `chimney decode FILE`: tcpdump-style one-liners of a capture (ours, the kernel's, Wireshark's),
 * classic pcap or pcapng. The file is read in chunks through `CaptureReader`, and each chunk's
 * lines are written before the next is read, so memory stays flat whatever the file's size and a
 * reader that stops early (`| head`) stops the reading. A file that is no capture is exit 2; a
 * truncated or damaged one prints every packet it can, as tcpdump does, with a warning on
 * stderr at the first bad record (and a count of the others at the end).
 */
import { open } from "node:fs/promises";
import { type CapturePacket, type CaptureProblem, CaptureReader } from "../../wire/capture-reader.js";
import { ChecksumCapabilities } from "../../wire/checksum.js";
import { decodeFrame, decodeIpPacket } from "../../wire/packet.js";
import { PcapLinkType } from "../../wire/pcap.js";
import { formatPacket } from "../../wire/pretty.js";
import { CliUsageError } from "../errors.js";
import { isStdoutClosed } from "../output.js";

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

/** Where the lines and warnings go (the CLI: stdout and stderr). */
export interface DecodeSink {
  /** Some lines, each ending in a newline. */
  lines(text: string): void;
  /** One warning line, without the newline. */
  warn(text: string): void;
  /** True when nobody reads the lines any more (stop early). */
  closed?: () => boolean;
}

/** How a decode went. */
export interface DecodeSummary {
  readonly format: "pcap" | "pcapng";
  readonly printed: number;
  /** Problems met (the first is warned about as it happens). */
  readonly problems: number;
}

/** Bytes read per chunk. */
const CHUNK = 1 << 20;

function stampOf(us: number): string {
  return `${Math.floor(us / 1_000_000)}.${String(us % 1_000_000).padStart(6, "0")}`;
}

function describe(p: CaptureProblem): string {
  return `${p.code} at byte ${p.offset} (${p.detail})`;
}

/**
 * Decodes the capture at `path` into `sink`. Throws `CliUsageError` when the file cannot be read
 * or is no capture; warns (and goes on where it can) on damage within a capture.
 */
export async function decodeCaptureFile(
  path: string,
  options: DecodeOptions,
  sink: DecodeSink,
): Promise<DecodeSummary> {
  let file;
  try {
    file = await open(path, "r");
  } catch (e) {
    throw new CliUsageError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const reader = new CaptureReader();
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  const caps = options.verifyChecksums === true ? ChecksumCapabilities.ALL : ChecksumCapabilities.NONE;
  let first: number | undefined;
  let last = 0;
  let printed = 0;
  let problems = 0;
  const line = (p: CapturePacket): string => {
    const time = p.time ?? last; // an SPB has no timestamp: it shares the previous packet's
    last = time;
    first ??= time;
    const stamp = stampOf(options.absolute === true ? time : time - first);
    switch (p.linkType) {
      case PcapLinkType.ETHERNET:
        return `${stamp} ${formatPacket(decodeFrame(p.data, caps))}`;
      case PcapLinkType.RAW:
      case PcapLinkType.IPV4:
      case PcapLinkType.IPV6:
        return `${stamp} ${formatPacket(decodeIpPacket(p.data, caps))}`;
      default:
        return `${stamp} [link type ${p.linkType} not decoded] length ${p.origLen}`;
    }
  };
  // One buffer for every read: the lines of a chunk are made before the next read overwrites it.
  const buf = new Uint8Array(CHUNK);
  try {
    for (;;) {
      let n: number;
      try {
        ({ bytesRead: n } = await file.read(buf, 0, CHUNK, null));
      } catch (e) {
        throw new CliUsageError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
      const items = n === 0 ? reader.end() : reader.push(buf.subarray(0, n));
      const out: string[] = [];
      for (const it of items) {
        if (it.kind === "problem") {
          const p = it.problem;
          const header = ["not-a-capture", "bad-file-header", "bad-section-header"].includes(p.code);
          if (header && reader.packetCount === 0)
            throw new CliUsageError(
              `${path}: not a capture (${p.code === "not-a-capture" ? "" : `${p.code}: `}${p.detail}, at byte ${p.offset})`,
            );
          problems++;
          if (problems === 1) {
            sink.lines(out.splice(0).join(""));
            sink.warn(
              `${path}: ${describe(p)}; ${p.fatal ? `printed the ${reader.packetCount} packets before it` : "skipped, going on"}`,
            );
          }
          continue;
        }
        if (printed >= limit) break;
        out.push(`${line(it.packet)}\n`);
        printed++;
      }
      if (out.length > 0) sink.lines(out.join(""));
      if (n === 0 || reader.stopped || printed >= limit || sink.closed?.() === true) break;
    }
  } finally {
    await file.close();
  }
  if (problems > 1) sink.warn(`${path}: ${problems - 1} more bad record(s) after the first`);
  return { format: reader.format ?? "pcap", printed, problems };
}

/** The CLI's sink: lines to stdout, warnings to stderr as `chimney: warning: ...`. */
export const STDIO_SINK: DecodeSink = {
  lines: (text) => {
    if (text !== "") process.stdout.write(text);
  },
  warn: (text) => process.stderr.write(`chimney: warning: ${text}\n`),
  closed: isStdoutClosed,
};
