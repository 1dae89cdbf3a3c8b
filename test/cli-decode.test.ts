// `chimney decode` on what users feed it: pcapng written by tshark, truncated and damaged
// captures, files that are no capture at all, and captures far bigger than it should hold.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Instant } from "../src/time/instant.js";
import { emitPcapFileHeader, emitPcapRecord, PcapLinkType } from "../src/wire/pcap.js";

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = join(DIST, "..");
const CLI = join(DIST, "src", "cli", "bin.js");
/** The module that exports `main` (bin.js runs it on import). */
const MAIN = join(DIST, "src", "cli", "main.js");
const TMP = mkdtempSync(join(tmpdir(), "chimney-cli-decode-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

function chimney(...args: string[]): { code: number; stdout: string; stderr: string; ms: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

const lines = (s: string) => s.split("\n").filter((l) => l !== "");

/** A capture of the seed scenario, in classic pcap and (converted by tshark) in pcapng. */
function captures(): { pcap: string; pcapng: string } {
  const pcap = join(TMP, "seed.pcap");
  const pcapng = join(TMP, "seed.pcapng");
  const run = chimney("run", "scenarios/seed.yaml", "--pcap", pcap);
  assert.equal(run.code, 0, run.stderr);
  const t = spawnSync("tshark", ["-r", pcap, "-w", pcapng, "-F", "pcapng"], { encoding: "utf8" });
  assert.equal(t.status, 0, t.stderr);
  return { pcap, pcapng };
}
const files = captures();

void test("decode reads the pcapng tshark writes exactly as the pcap it came from", () => {
  const a = chimney("decode", files.pcap);
  const b = chimney("decode", files.pcapng);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stderr, "");
  assert.ok(lines(a.stdout).length > 50);
  assert.equal(b.stdout, a.stdout);
  assert.equal(
    chimney("decode", files.pcapng, "--absolute").stdout,
    chimney("decode", files.pcap, "--absolute").stdout,
  );
  assert.match(b.stdout, /192\.0\.2\.1\.\d+ > 192\.0\.2\.2\.7001: Flags \[S\]/);
});

void test("a truncated capture is read up to the cut, with one warning", () => {
  const whole = chimney("decode", files.pcapng);
  for (const [name, src] of [
    ["cut.pcap", files.pcap],
    ["cut.pcapng", files.pcapng],
  ] as const) {
    const bytes = readFileSync(src);
    const file = join(TMP, name);
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const r = chimney("decode", file);
    assert.equal(r.code, 0, r.stderr);
    const got = lines(r.stdout);
    assert.ok(got.length > 10);
    assert.deepEqual(
      got,
      lines(whole.stdout).slice(0, got.length),
      "the packets before the cut, as they were",
    );
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`^chimney: warning: .*${name}: truncated at byte \\d+ .*printed the ${got.length} packets`),
    );
  }
});

void test("one bad record does not reject the capture: a warning at it, every other packet printed", () => {
  const bytes = new Uint8Array(readFileSync(files.pcapng));
  // The third Enhanced Packet Block names an interface that does not exist.
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  let epbs = 0;
  for (; off < bytes.length; off += v.getUint32(off + 4, true)) {
    if (v.getUint32(off, true) === 6 && ++epbs === 3) break;
  }
  v.setUint32(off + 8, 7, true);
  const file = join(TMP, "bad-record.pcapng");
  writeFileSync(file, bytes);
  const r = chimney("decode", file);
  assert.equal(r.code, 0, r.stderr);
  const whole = lines(chimney("decode", files.pcapng).stdout);
  assert.equal(lines(r.stdout).length, whole.length - 1);
  assert.match(
    r.stderr,
    new RegExp(`^chimney: warning: .*: unknown-interface at byte ${off + 8} .*skipped, going on\\n$`),
  );
});

void test("decode /dev/zero is exit 2, 'not a capture', at once", () => {
  const r = chimney("decode", "/dev/zero");
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^chimney: \/dev\/zero: not a capture /);
  assert.ok(r.ms < 5000, `took ${r.ms.toFixed(0)} ms`);
});

void test("a capture bigger than the memory decode may use is streamed", () => {
  // 3072 records of 64 KiB: 192 MiB of raw IP that is no valid packet (decoded quickly).
  const file = join(TMP, "huge.pcap");
  const fd = openSync(file, "w");
  const junk = new Uint8Array(65_535).fill(0x45);
  const record = emitPcapRecord(Instant.fromMicros(1), junk, 262_144, true);
  writeSync(fd, emitPcapFileHeader(PcapLinkType.RAW, 262_144, true));
  const n = 3072;
  for (let i = 0; i < n; i++) writeSync(fd, record);
  closeSync(fd);
  const size = 24 + n * record.length;
  /** The peak resident memory of a decode, measured by the decoding process itself. */
  const peak = (...extra: string[]): { rss: number; lines: number } => {
    const script = `import { main } from ${JSON.stringify(pathToFileURL(MAIN).href)};
const code = await main(${JSON.stringify(["decode", file, ...extra])});
process.stderr.write(JSON.stringify({ code, maxRssKiB: process.resourceUsage().maxRSS }));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      maxBuffer: 64 << 20,
    });
    const m = JSON.parse(r.stderr) as { code: number; maxRssKiB: number };
    assert.equal(m.code, 0);
    return { rss: m.maxRssKiB * 1024, lines: lines(r.stdout).length };
  };
  const one = peak("-c", "1");
  assert.equal(one.lines, 1);
  const all = peak();
  assert.equal(all.lines, n);
  // Reading the file whole would add its size; streaming adds only garbage not yet collected.
  const grew = all.rss - one.rss;
  assert.ok(
    grew < size / 2,
    `decoding all of a ${(size / 2 ** 20).toFixed(0)} MiB file took ${(grew / 2 ** 20).toFixed(0)} MiB more than one packet`,
  );
  rmSync(file);
});
