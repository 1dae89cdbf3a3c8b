/**
 * Reads a capture file piecewise: classic pcap (pcap.ts) or pcapng (Wireshark's default format,
 * draft-ietf-opsawg-pcapng), fed as chunks of any size, so a file of any length is read in
 * constant memory. Bytes only; file I/O belongs to the caller.
 *
 * pcapng is a sequence of blocks (type, total length, body, total length again). A Section
 * Header Block (SHB) opens each section and fixes its byte order (the byte-order magic); the
 * Interface Description Blocks (IDB) of a section are numbered from 0 and give each interface its
 * link type, snaplen and timestamp unit (`if_tsresol`: 10^-n or 2^-n seconds, default
 * microseconds; `if_tsoffset` adds seconds). Packets come in Enhanced Packet Blocks (EPB: an
 * interface, a 64-bit timestamp, captured and original length), Simple Packet Blocks (SPB:
 * interface 0, no timestamp) and the obsolete Packet Blocks; other blocks are skipped.
 *
 * Problems are reported as a tcpdump reader would and never thrown: a file that starts like no
 * capture is `fatal` before any packet; a bad record whose extent is still known (a pcapng block
 * with a sound total length, a pcap record with a bad timestamp) is reported and reading goes on;
 * a bad length loses the framing of everything after it, so reading stops there (`fatal`); bytes
 * left over when the input ends are `truncated`.
 */
import {
  isPcapMagic,
  PCAP_FILE_HEADER_LEN,
  PCAP_RECORD_HEADER_LEN,
  type PcapHeader,
  parsePcapHeader,
  readPcapRecordHeader,
} from "./pcap.js";

/** Block type of the pcapng Section Header Block (also the file's magic number). */
export const PCAPNG_SHB = 0x0a0d0d0a;
/** The SHB's byte-order magic, as written in the writer's byte order. */
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** Block types this reader interprets. */
export const PcapngBlock = {
  SHB: PCAPNG_SHB,
  IDB: 1,
  PACKET_OBSOLETE: 2,
  SPB: 3,
  EPB: 6,
} as const;
/** The largest block the reader accepts (Wireshark's limit): a bigger length is garbage. */
export const PCAPNG_MAX_BLOCK = 16 * 1024 * 1024;

/** One packet, whichever the format. */
export interface CapturePacket {
  /** 1-based number of the packet in the file (as tshark counts). */
  readonly number: number;
  /** File offset of the record or block. */
  readonly offset: number;
  /** Interface (pcapng; 0 in classic pcap). */
  readonly interfaceId: number;
  /** LINKTYPE_* of the packet's interface. */
  readonly linkType: number;
  /** Microseconds since the epoch, or undefined where the format gives none (SPB). */
  readonly time: number | undefined;
  /** Length on the wire. */
  readonly origLen: number;
  /** The captured bytes: a view into the pushed chunk, valid until that chunk is reused. */
  readonly data: Uint8Array;
}

/** What can go wrong. */
export type CaptureProblemCode =
  /** Neither a pcap nor a pcapng magic number at the start. */
  | "not-a-capture"
  /** A classic pcap file header the pcap reader refuses (version, link type). */
  | "bad-file-header"
  /** A pcapng SHB with an unknown byte-order magic or major version. */
  | "bad-section-header"
  /** A pcapng block length that is not a multiple of 4, too small, too big or not repeated. */
  | "bad-block-length"
  /** A pcap record length above its original length or the snaplen. */
  | "bad-record-length"
  /** A pcap timestamp fraction out of range (the packet is still read). */
  | "bad-timestamp"
  /** A pcapng packet block naming an interface no IDB described (skipped). */
  | "unknown-interface"
  /** A pcapng packet or interface block whose fields do not fit in it (skipped). */
  | "bad-block"
  /** The input ended inside a header, record or block. */
  | "truncated";

/** A problem at a file offset. `fatal`: nothing after it is read. */
export interface CaptureProblem {
  readonly code: CaptureProblemCode;
  readonly offset: number;
  readonly detail: string;
  readonly fatal: boolean;
}

/** What `push` and `end` produce, in file order. */
export type CaptureItem =
  | { readonly kind: "packet"; readonly packet: CapturePacket }
  | { readonly kind: "problem"; readonly problem: CaptureProblem };

/** An interface of the current pcapng section. */
interface PcapngInterface {
  readonly linkType: number;
  readonly snaplen: number;
  /** Timestamp units per second. */
  readonly unitsPerSecond: bigint;
  /** Seconds added to every timestamp (`if_tsoffset`). */
  readonly offsetSeconds: bigint;
}

/** The timestamp unit an `if_tsresol` byte gives: 10^-n, or 2^-n with the top bit set. */
export function tsresolUnitsPerSecond(b: number): bigint {
  return (b & 0x80) === 0 ? 10n ** BigInt(b) : 1n << BigInt(b & 0x7f);
}

/** Reads a capture given in chunks; see the file comment. */
export class CaptureReader {
  #pending: Uint8Array = new Uint8Array(0);
  /** File offset of `#pending[0]`. */
  #base = 0;
  /** File offset of the unit `#step` is reading. */
  #at = 0;
  #format: "pcap" | "pcapng" | undefined;
  #stopped = false;
  #packets = 0;
  #pcap: PcapHeader | undefined;
  #littleEndian = true;
  #interfaces: PcapngInterface[] = [];

  /** The format, once the first bytes are in. */
  get format(): "pcap" | "pcapng" | undefined {
    return this.#format;
  }

  /** Packets read so far. */
  get packetCount(): number {
    return this.#packets;
  }

  /** True once a fatal problem ended the reading: further input is ignored. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Feeds the next bytes of the file; returns the packets and problems they complete. The reader
   * keeps a copy of any incomplete rest, so the caller may reuse `chunk` once it has used the
   * packets returned.
   */
  push(chunk: Uint8Array): CaptureItem[] {
    if (this.#stopped) return [];
    if (this.#pending.length === 0) {
      this.#pending = chunk;
    } else {
      const joined = new Uint8Array(this.#pending.length + chunk.length);
      joined.set(this.#pending);
      joined.set(chunk, this.#pending.length);
      this.#pending = joined;
    }
    const out: CaptureItem[] = [];
    let used = 0;
    for (;;) {
      this.#at = this.#base + used;
      const n = this.#step(this.#pending.subarray(used), out);
      if (n === 0 || this.#stopped) break;
      used += n;
    }
    // The rest is copied: the caller may reuse `chunk` for its next read.
    this.#pending = this.#stopped ? new Uint8Array(0) : this.#pending.slice(used);
    this.#base += used;
    return out;
  }

  /** The input is over: reports what was left unread. */
  end(): CaptureItem[] {
    if (this.#stopped) return [];
    this.#stopped = true;
    if (this.#format === undefined && this.#pending.length < 4)
      return [this.#problem("not-a-capture", 0, "the file is shorter than any capture header", true)];
    if (this.#pending.length === 0) return [];
    const what = this.#format === undefined ? "the file header" : "a record";
    return [
      this.#problem(
        "truncated",
        this.#base,
        `the capture ends inside ${what} (${this.#pending.length} bytes left)`,
        true,
      ),
    ];
  }

  #problem(code: CaptureProblemCode, offset: number, detail: string, fatal: boolean): CaptureItem {
    if (fatal) this.#stopped = true;
    return { kind: "problem", problem: { code, offset, detail, fatal } };
  }

  #packet(p: Omit<CapturePacket, "number">): CaptureItem {
    this.#packets++;
    return { kind: "packet", packet: { ...p, number: this.#packets } };
  }

  /** Consumes one unit (header, record, block) from the start of `b`; 0 if it is not all there. */
  #step(b: Uint8Array, out: CaptureItem[]): number {
    if (this.#format === undefined) {
      if (b.length < 4) return 0;
      const v = new DataView(b.buffer, b.byteOffset, 4);
      if (v.getUint32(0, true) === PCAPNG_SHB) {
        this.#format = "pcapng";
      } else if (isPcapMagic(b)) {
        this.#format = "pcap";
      } else {
        out.push(this.#problem("not-a-capture", 0, "no pcap or pcapng magic number at the start", true));
        return 0;
      }
    }
    return this.#format === "pcap" ? this.#stepPcap(b, out) : this.#stepPcapng(b, out);
  }

  #stepPcap(b: Uint8Array, out: CaptureItem[]): number {
    if (this.#pcap === undefined) {
      if (b.length < PCAP_FILE_HEADER_LEN) return 0;
      const h = parsePcapHeader(b);
      if (!h.ok) {
        out.push(this.#problem("bad-file-header", h.error.offset, h.error.code, true));
        return 0;
      }
      this.#pcap = h.value;
      return PCAP_FILE_HEADER_LEN;
    }
    if (b.length < PCAP_RECORD_HEADER_LEN) return 0;
    const r = readPcapRecordHeader(b, 0, this.#pcap, this.#at);
    const header = r.ok ? r.value : r.error.header;
    if (header === undefined) {
      // A bad length: where the next record starts is unknown.
      const e = r.ok ? undefined : r.error;
      out.push(this.#problem("bad-record-length", e?.offset ?? this.#at, "bad-record-length", true));
      return 0;
    }
    const total = PCAP_RECORD_HEADER_LEN + header.inclLen;
    if (b.length < total) return 0;
    if (!r.ok)
      out.push(this.#problem("bad-timestamp", r.error.offset, "timestamp fraction out of range", false));
    out.push(
      this.#packet({
        offset: this.#at,
        interfaceId: 0,
        linkType: this.#pcap.linkType,
        time: header.time,
        origLen: header.origLen,
        data: b.subarray(PCAP_RECORD_HEADER_LEN, total),
      }),
    );
    return total;
  }

  #stepPcapng(b: Uint8Array, out: CaptureItem[]): number {
    if (b.length < 12) return 0;
    const at = this.#at;
    // The SHB's type reads the same in both orders; every other block's in the section's order.
    if (new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) === PCAPNG_SHB) {
      // The byte order of this section (and of this very block's length) is in the body.
      const magic = new DataView(b.buffer, b.byteOffset + 8, 4);
      if (magic.getUint32(0, true) === PCAPNG_BYTE_ORDER_MAGIC) this.#littleEndian = true;
      else if (magic.getUint32(0, false) === PCAPNG_BYTE_ORDER_MAGIC) this.#littleEndian = false;
      else {
        out.push(this.#problem("bad-section-header", at + 8, "unknown byte-order magic", true));
        return 0;
      }
      this.#interfaces = [];
    }
    const le = this.#littleEndian;
    const head = new DataView(b.buffer, b.byteOffset, 8);
    const type = head.getUint32(0, le);
    const len = head.getUint32(4, le);
    if (len < 12 || len % 4 !== 0 || len > PCAPNG_MAX_BLOCK) {
      out.push(this.#problem("bad-block-length", at + 4, `block total length ${len}`, true));
      return 0;
    }
    if (b.length < len) return 0;
    const v = new DataView(b.buffer, b.byteOffset, len);
    if (v.getUint32(len - 4, le) !== len) {
      out.push(this.#problem("bad-block-length", at + len - 4, "the trailing block length differs", true));
      return 0;
    }
    const body = (from: number) => b.subarray(from, len - 4);
    switch (type) {
      case PcapngBlock.SHB: {
        if (len < 28 || v.getUint16(12, le) !== 1) {
          out.push(this.#problem("bad-section-header", at + 12, "not a pcapng 1.x section", true));
          return 0;
        }
        return len;
      }
      case PcapngBlock.IDB: {
        if (len < 20) {
          out.push(this.#problem("bad-block", at, "interface description block too short", false));
          return len;
        }
        let unitsPerSecond = 1_000_000n;
        let offsetSeconds = 0n;
        for (const [code, value] of options(body(16), le)) {
          if (code === 9 && value.length >= 1) unitsPerSecond = tsresolUnitsPerSecond(value[0] ?? 6);
          if (code === 14 && value.length >= 8)
            offsetSeconds = new DataView(value.buffer, value.byteOffset, 8).getBigInt64(0, le);
        }
        this.#interfaces.push({
          linkType: v.getUint16(8, le),
          snaplen: v.getUint32(12, le),
          unitsPerSecond,
          offsetSeconds,
        });
        return len;
      }
      case PcapngBlock.EPB:
      case PcapngBlock.PACKET_OBSOLETE: {
        const epb = type === PcapngBlock.EPB;
        if (len < 32) {
          out.push(this.#problem("bad-block", at, "packet block too short", false));
          return len;
        }
        const ifId = epb ? v.getUint32(8, le) : v.getUint16(8, le);
        const iface = this.#interfaces[ifId];
        if (iface === undefined) {
          out.push(this.#problem("unknown-interface", at + 8, `interface ${ifId} was not described`, false));
          return len;
        }
        const caplen = v.getUint32(20, le);
        const origLen = v.getUint32(24, le);
        if (28 + caplen > len - 4) {
          out.push(
            this.#problem("bad-block", at + 20, `captured length ${caplen} overruns its block`, false),
          );
          return len;
        }
        const units = (BigInt(v.getUint32(12, le)) << 32n) | BigInt(v.getUint32(16, le));
        const us = ((units + iface.offsetSeconds * iface.unitsPerSecond) * 1_000_000n) / iface.unitsPerSecond;
        out.push(
          this.#packet({
            offset: at,
            interfaceId: ifId,
            linkType: iface.linkType,
            time: Number(us),
            origLen,
            data: b.subarray(28, 28 + caplen),
          }),
        );
        return len;
      }
      case PcapngBlock.SPB: {
        const iface = this.#interfaces[0];
        if (iface === undefined) {
          out.push(
            this.#problem("unknown-interface", at, "a simple packet block before any interface", false),
          );
          return len;
        }
        const origLen = v.getUint32(8, le);
        const room = len - 16;
        const caplen = Math.min(origLen, room, iface.snaplen === 0 ? room : iface.snaplen);
        out.push(
          this.#packet({
            offset: at,
            interfaceId: 0,
            linkType: iface.linkType,
            time: undefined,
            origLen,
            data: b.subarray(12, 12 + caplen),
          }),
        );
        return len;
      }
      default:
        return len; // name resolution, statistics, custom blocks: nothing to print
    }
  }
}

/** The options of a pcapng block body: (code, value) until opt_endofopt or the end. */
function* options(b: Uint8Array, le: boolean): Generator<[number, Uint8Array]> {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = 0;
  while (off + 4 <= b.length) {
    const code = v.getUint16(off, le);
    const n = v.getUint16(off + 2, le);
    if (code === 0 || off + 4 + n > b.length) return;
    yield [code, b.subarray(off + 4, off + 4 + n)];
    off += 4 + n + ((4 - (n % 4)) % 4);
  }
}
