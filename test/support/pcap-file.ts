/**
 * Node-side helpers for pcap files: the core's `PcapWriter` produces bytes, these put them on
 * disk (whole, or streamed as the simulation runs) and read them back.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type PcapCapture, type PcapWriter, parsePcap } from "../../src/wire/pcap.js";

/** Writes a whole capture: a writer's current bytes (it is not drained) or raw bytes. */
export function writePcapFile(path: string, capture: PcapWriter | Uint8Array): void {
  writeFileSync(path, capture instanceof Uint8Array ? capture : capture.toBytes());
}

/** Reads and parses a capture file; throws an Error carrying the decode code and offset. */
export function readPcapFile(path: string): PcapCapture {
  const r = parsePcap(new Uint8Array(readFileSync(path)));
  if (!r.ok) throw new Error(`${path}: ${r.error.code} at offset ${r.error.offset}`);
  return r.value;
}

/**
 * Streams a writer to a file: each `flush()` appends the chunks produced since the last one, so
 * a long run never holds the whole capture in memory. Call `close()` at the end.
 */
export class PcapFileStream {
  readonly path: string;
  readonly #writer: PcapWriter;
  #fd: number | undefined;

  constructor(path: string, writer: PcapWriter) {
    this.path = path;
    this.#writer = writer;
    this.#fd = openSync(path, "w");
    this.flush();
  }

  /** Appends everything the writer produced since the last flush. */
  flush(): void {
    if (this.#fd === undefined) throw new Error(`${this.path}: stream closed`);
    for (const chunk of this.#writer.takeChunks()) writeSync(this.#fd, chunk);
  }

  /** Flushes and closes the file. */
  close(): void {
    if (this.#fd === undefined) return;
    this.flush();
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** A fresh temporary directory for captures, with a path builder and a cleanup. */
export interface TempCaptureDir {
  readonly dir: string;
  /** A path inside the directory. */
  file(name: string): string;
  /** Removes the directory and everything in it. */
  cleanup(): void;
}

/** Makes a temporary directory under the OS temp dir (removed by `cleanup`). */
export function tempCaptureDir(prefix = "chimney-pcap-"): TempCaptureDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    file: (name) => join(dir, name),
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
