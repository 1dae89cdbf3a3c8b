/**
 * Classic libpcap capture format (the `.pcap` of tcpdump and Wireshark; draft-ietf-opsawg-pcap),
 * as bytes only: the writer produces `Uint8Array` chunks and the reader parses a `Uint8Array`.
 * File I/O belongs to the caller.
 *
 * Layout: a 24-byte file header (magic, version 2.4, reserved zone/sigfigs, snaplen, link
 * type), then per packet a 16-byte record header (seconds, fraction, captured length, original
 * length) followed by the captured bytes. All header integers are in the writer's byte order,
 * which the magic number reveals. The writer emits microsecond files; the reader also accepts
 * the nanosecond magic and either byte order.
 */
import type { Instant } from "../time/instant.js";
import { err, ok, type Result, UsageError } from "../util/errors.js";

/** Link-layer header types this module reads (the LINKTYPE_* registry numbers). */
export const PcapLinkType = {
  /** LINKTYPE_ETHERNET: frames start with an Ethernet II header. */
  ETHERNET: 1,
  /** LINKTYPE_RAW: packets start with an IPv4 or IPv6 header. */
  RAW: 101,
  /** LINKTYPE_IPV4: IPv4 packets only. */
  IPV4: 228,
  /** LINKTYPE_IPV6: IPv6 packets only. */
  IPV6: 229,
} as const;

/** A link type the reader accepts. */
export type PcapLinkTypeNumber = (typeof PcapLinkType)[keyof typeof PcapLinkType];

/** Magic number of microsecond-resolution files. */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
/** Magic number of nanosecond-resolution files. */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** Length of the file header. */
export const PCAP_FILE_HEADER_LEN = 24;
/** Length of each record header. */
export const PCAP_RECORD_HEADER_LEN = 16;
/** The writer's default snapshot length (what tcpdump and Wireshark use today). */
export const PCAP_DEFAULT_SNAPLEN = 262144;

/** Options for `PcapWriter`. */
export interface PcapWriterOptions {
  /** Link type of every record: Ethernet (1) or raw IP (101); 228/229 are allowed too. */
  readonly linkType: PcapLinkTypeNumber;
  /** Longer frames are truncated to this many bytes (default 262144; 65535 is the old value). */
  readonly snaplen?: number | undefined;
  /** Byte order of the header integers (default little-endian, as on x86 hosts). */
  readonly byteOrder?: "little" | "big" | undefined;
}

/**
 * Builds a capture in memory, one chunk per record (the first chunk is the file header). Use
 * `toBytes()` for the whole file, or `takeChunks()` to stream it out piecewise.
 */
export class PcapWriter {
  readonly linkType: PcapLinkTypeNumber;
  readonly snaplen: number = 0;
  readonly littleEndian: boolean;
  #chunks: Uint8Array[] = [];
  #records = 0;
  #bytes = 0;

  constructor(options: PcapWriterOptions) {
    const snaplen = options.snaplen ?? PCAP_DEFAULT_SNAPLEN;
    if (!(Number.isInteger(snaplen) && snaplen > 0 && snaplen <= 0x7fffffff)) {
      throw new UsageError(`pcap snaplen must be a positive integer, got ${snaplen}`);
    }
    const linkType: number = options.linkType; // callers may cast; check at run time
    if (!isKnownLinkType(linkType)) throw new UsageError(`unsupported pcap link type ${linkType}`);
    this.linkType = options.linkType;
    this.snaplen = snaplen;
    this.littleEndian = (options.byteOrder ?? "little") === "little";
    this.#push(emitPcapFileHeader(this.linkType, this.snaplen, this.littleEndian));
  }

  /** Records written so far. */
  get recordCount(): number {
    return this.#records;
  }

  /** Total bytes of the file so far, header included (also those already taken). */
  get byteLength(): number {
    return this.#bytes;
  }

  /**
   * Appends one record stamped `time` (virtual microseconds since the epoch of the capture).
   * The frame's bytes are copied, so the caller may reuse or mutate the frame afterwards.
   */
  append(time: Instant, frame: Uint8Array): void {
    this.#push(emitPcapRecord(time, frame, this.snaplen, this.littleEndian));
    this.#records++;
  }

  /** Removes and returns the chunks produced since the last call (in order). */
  takeChunks(): Uint8Array[] {
    const out = this.#chunks;
    this.#chunks = [];
    return out;
  }

  /**
   * A copy of the chunks not yet taken, concatenated: the whole file if `takeChunks` was never
   * called.
   */
  toBytes(): Uint8Array {
    return concat(this.#chunks);
  }

  #push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }
}

/** The 24-byte file header: magic (microseconds), version 2.4, zone 0, sigfigs 0, snaplen, link. */
export function emitPcapFileHeader(linkType: number, snaplen: number, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(PCAP_FILE_HEADER_LEN);
  const v = new DataView(out.buffer);
  v.setUint32(0, PCAP_MAGIC_US, littleEndian);
  v.setUint16(4, 2, littleEndian);
  v.setUint16(6, 4, littleEndian);
  v.setInt32(8, 0, littleEndian); // thiszone: always 0 (UTC)
  v.setUint32(12, 0, littleEndian); // sigfigs: always 0
  v.setUint32(16, snaplen, littleEndian);
  v.setUint32(20, linkType, littleEndian);
  return out;
}

/**
 * One record (a copy of the frame, truncated to `snaplen`) stamped `time` in microseconds. The
 * seconds field is 32 bits, so `time` must be below 2^32 seconds.
 */
export function emitPcapRecord(
  time: Instant,
  frame: Uint8Array,
  snaplen: number,
  littleEndian: boolean,
): Uint8Array {
  const sec = Math.floor(time / 1_000_000);
  if (!(Number.isSafeInteger(time) && time >= 0 && sec <= 0xffffffff)) {
    throw new UsageError(`pcap timestamp out of range: ${time}us`);
  }
  const incl = Math.min(frame.length, snaplen);
  const out = new Uint8Array(PCAP_RECORD_HEADER_LEN + incl);
  const v = new DataView(out.buffer);
  v.setUint32(0, sec, littleEndian);
  v.setUint32(4, time - sec * 1_000_000, littleEndian);
  v.setUint32(8, incl, littleEndian);
  v.setUint32(12, frame.length, littleEndian);
  out.set(frame.subarray(0, incl), PCAP_RECORD_HEADER_LEN);
  return out;
}

/** The file header as read. */
export interface PcapHeader {
  readonly byteOrder: "little" | "big";
  /** Unit of the records' fraction field. */
  readonly precision: "us" | "ns";
  readonly versionMajor: number;
  readonly versionMinor: number;
  /** GMT-to-local correction in seconds (always 0 in practice). */
  readonly thiszone: number;
  readonly sigfigs: number;
  readonly snaplen: number;
  /** Link type (low 16 bits of the field; the FCS bits above are ignored). */
  readonly linkType: PcapLinkTypeNumber;
}

/** One packet record as read. */
export interface PcapRecord {
  /** File offset of the record header. */
  readonly offset: number;
  /** Seconds field. */
  readonly tsSec: number;
  /** Fraction field, in the header's `precision` unit. */
  readonly tsFrac: number;
  /** The timestamp in whole microseconds (nanoseconds are truncated). */
  readonly time: Instant;
  /** Length of the packet on the wire. */
  readonly origLen: number;
  /** The captured bytes (`origLen` or fewer): a view into the input. */
  readonly data: Uint8Array;
}

/** A parsed capture. */
export interface PcapCapture {
  readonly header: PcapHeader;
  readonly records: readonly PcapRecord[];
}

/** Why a capture could not be read. */
export type PcapErrorCode =
  /** Fewer than 24 bytes. */
  | "truncated-file-header"
  /** Not one of the two magic numbers in either byte order. */
  | "bad-magic"
  /** Major version other than 2. */
  | "bad-version"
  /** A link type other than Ethernet or raw IP. */
  | "unsupported-link-type"
  /** The file ends inside a record header. */
  | "truncated-record-header"
  /** The file ends inside a record's data. */
  | "truncated-record"
  /** Captured length above the original length, or above the file's limit. */
  | "bad-record-length"
  /** Fraction field of a second out of range. */
  | "bad-timestamp";

/** A read error: what and where (file offset of the offending field). */
export interface PcapDecodeError {
  readonly code: PcapErrorCode;
  readonly offset: number;
}

/** The 4 bytes at the start of `bytes` are a classic pcap magic number (either order). */
export function isPcapMagic(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, 4);
  return [v.getUint32(0, false), v.getUint32(0, true)].some(
    (m) => m === PCAP_MAGIC_US || m === PCAP_MAGIC_NS,
  );
}

/** Parses the 24-byte file header at the start of `bytes`. */
export function parsePcapHeader(bytes: Uint8Array): Result<PcapHeader, PcapDecodeError> {
  if (bytes.length < PCAP_FILE_HEADER_LEN)
    return err({ code: "truncated-file-header", offset: bytes.length });
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicBe = v.getUint32(0, false);
  const magicLe = v.getUint32(0, true);
  let le: boolean;
  let precision: "us" | "ns";
  if (magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS) {
    le = true;
    precision = magicLe === PCAP_MAGIC_US ? "us" : "ns";
  } else if (magicBe === PCAP_MAGIC_US || magicBe === PCAP_MAGIC_NS) {
    le = false;
    precision = magicBe === PCAP_MAGIC_US ? "us" : "ns";
  } else {
    return err({ code: "bad-magic", offset: 0 });
  }
  const versionMajor = v.getUint16(4, le);
  const versionMinor = v.getUint16(6, le);
  if (versionMajor !== 2) return err({ code: "bad-version", offset: 4 });
  const snaplen = v.getUint32(16, le);
  const linkType = v.getUint32(20, le) & 0xffff;
  if (!isKnownLinkType(linkType)) return err({ code: "unsupported-link-type", offset: 20 });
  return ok({
    byteOrder: le ? "little" : "big",
    precision,
    versionMajor,
    versionMinor,
    thiszone: v.getInt32(8, le),
    sigfigs: v.getUint32(12, le),
    snaplen,
    linkType,
  });
}

/** A record header as read, checked against its file header. */
export interface PcapRecordHeader {
  readonly tsSec: number;
  readonly tsFrac: number;
  /** The timestamp in whole microseconds (nanoseconds are truncated). */
  readonly time: Instant;
  /** Captured length: the bytes that follow the record header. */
  readonly inclLen: number;
  readonly origLen: number;
}

/**
 * Reads the 16-byte record header at `off` of `bytes` (the caller made sure 16 bytes are there;
 * `off` is also the file offset errors name, shifted by `fileOffset`). A bad length loses the
 * framing of every later record; a bad timestamp does not (`bad-timestamp` comes with `header`).
 */
export function readPcapRecordHeader(
  bytes: Uint8Array,
  off: number,
  file: PcapHeader,
  fileOffset = 0,
): Result<PcapRecordHeader, PcapDecodeError & { readonly header?: PcapRecordHeader }> {
  const le = file.byteOrder === "little";
  const v = new DataView(bytes.buffer, bytes.byteOffset + off, PCAP_RECORD_HEADER_LEN);
  const tsSec = v.getUint32(0, le);
  const tsFrac = v.getUint32(4, le);
  const inclLen = v.getUint32(8, le);
  const origLen = v.getUint32(12, le);
  // Readers cap records at the larger of the file's snaplen and today's default, so a file
  // with snaplen 0 (some writers) still reads, and a garbage length cannot ask for gigabytes.
  const maxIncl = Math.max(file.snaplen, PCAP_DEFAULT_SNAPLEN);
  if (inclLen > origLen || inclLen > maxIncl)
    return err({ code: "bad-record-length", offset: fileOffset + off + 8 });
  const us = tsSec * 1_000_000 + (file.precision === "us" ? tsFrac : Math.floor(tsFrac / 1000));
  // tsSec < 2^32 so us < 2^52: a safe integer.
  const header: PcapRecordHeader = { tsSec, tsFrac, time: us as Instant, inclLen, origLen };
  const fracLimit = file.precision === "us" ? 1_000_000 : 1_000_000_000;
  if (tsFrac >= fracLimit) return err({ code: "bad-timestamp", offset: fileOffset + off + 4, header });
  return ok(header);
}

/**
 * Parses a whole capture. Never throws on input bytes: a bad or truncated file gives a
 * `PcapDecodeError`. Record data are views into `bytes`. (`CaptureReader` in capture-reader.ts
 * reads a capture piecewise, pcapng too, and goes on past what it can skip.)
 */
export function parsePcap(bytes: Uint8Array): Result<PcapCapture, PcapDecodeError> {
  const h = parsePcapHeader(bytes);
  if (!h.ok) return h;
  const header = h.value;
  const records: PcapRecord[] = [];
  let off = PCAP_FILE_HEADER_LEN;
  while (off < bytes.length) {
    if (bytes.length - off < PCAP_RECORD_HEADER_LEN)
      return err({ code: "truncated-record-header", offset: off });
    const r = readPcapRecordHeader(bytes, off, header);
    if (!r.ok) return err({ code: r.error.code, offset: r.error.offset });
    const { tsSec, tsFrac, time, inclLen, origLen } = r.value;
    const start = off + PCAP_RECORD_HEADER_LEN;
    if (bytes.length - start < inclLen) return err({ code: "truncated-record", offset: start });
    records.push({ offset: off, tsSec, tsFrac, time, origLen, data: bytes.subarray(start, start + inclLen) });
    off = start + inclLen;
  }
  return ok({ header, records });
}

/** True for the link types this module reads and writes. */
export function isKnownLinkType(t: number): t is PcapLinkTypeNumber {
  return (
    t === PcapLinkType.ETHERNET ||
    t === PcapLinkType.RAW ||
    t === PcapLinkType.IPV4 ||
    t === PcapLinkType.IPV6
  );
}

/** Concatenates chunks into one new array (a copy). */
function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
