// The chimney command: exit codes, one-line errors, and `decode` on our captures and the kernel's.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Seq } from "../src/tcp/seq.js";
import { Instant } from "../src/time/instant.js";
import { mac } from "../src/wire/ethernet.js";
import { ip } from "../src/wire/ip-addr.js";
import { emitTcpPacket } from "../src/wire/packet.js";
import { PcapWriter } from "../src/wire/pcap.js";
import { TcpFlag, type TcpRepr } from "../src/wire/tcp-repr.js";
import { captureKernelTraffic } from "./support/capture.js";
import { tempCaptureDir } from "./support/pcap-file.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "bin.js");

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const SEG: TcpRepr = {
  srcPort: 49152,
  dstPort: 80,
  seq: Seq.of(1000),
  ack: Seq.of(0),
  flags: TcpFlag.SYN,
  window: 65535,
  urgent: 0,
  mss: 1460,
  windowScale: 7,
  sackPermitted: true,
  sack: [],
  timestamps: { tsVal: 1, tsEcr: 0 },
  unknownOptions: [],
  payload: new Uint8Array(0),
};

void describe("chimney CLI", () => {
  void test("--help lists the commands and exits 0", () => {
    const r = run("--help");
    assert.equal(r.code, 0);
    assert.match(r.stdout, /demo/);
    assert.match(r.stdout, /decode/);
  });
  void test("runs when started through a symlink named chimney, as a package's bin is", () => {
    const dir = mkdtempSync(join(tmpdir(), "chimney-bin-"));
    try {
      const link = join(dir, "chimney");
      symlinkSync(CLI, link);
      const r = spawnSync(process.execPath, [link, "--help"], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Usage: chimney /m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  void test("the demo (chimney with no command) terminates with BufferedData and verifies, under 5 s", () => {
    const t0 = performance.now();
    const r = run();
    const ms = performance.now() - t0;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /seed 1/);
    assert.match(r.stdout, /TerminateOffloadComplete: .*bufferedData=[1-9]\d*B/);
    assert.match(r.stdout, /MiniportTcpOffloadReceiveReturn/);
    assert.match(r.stdout, /ok +ledgers quiescent/);
    assert.match(r.stdout, /verified: no byte lost, duplicated or reordered/);
    assert.ok(ms < 5000, `demo took ${ms.toFixed(0)} ms`);
    const other = run("--seed", "7");
    assert.equal(other.code, 0, other.stdout);
    assert.match(other.stdout, /seed 7/);
  });
  void test("an unknown command or option is one clear line and exit 2", () => {
    for (const args of [["bogus"], ["decode"], ["demo", "--seed", "x"], ["decode", "--count", "0", "f"]]) {
      const r = run(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(r.stderr.trim().split("\n").length <= 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /error|chimney:/);
    }
  });
  void test("decode of a missing or non-pcap file names the file and exits 2", () => {
    const dir = tempCaptureDir();
    try {
      const bad = join(dir.dir, "bad.pcap");
      writeFileSync(bad, "this is not a capture file at all, just text");
      const r = run("decode", bad);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, `chimney: ${bad}: not a classic pcap file (bad-magic at byte 0)\n`);
      const m = run("decode", join(dir.dir, "missing.pcap"));
      assert.equal(m.code, 2);
      assert.match(m.stderr, /missing\.pcap: cannot read \(ENOENT\)/);
    } finally {
      dir.cleanup();
    }
  });
  void test("decode prints one tcpdump-style line per packet of our capture", () => {
    const w = new PcapWriter({ linkType: 1 });
    const eth = { src: mac("02:00:00:00:00:01"), dst: mac("02:00:00:00:00:02") };
    const v4 = { src: ip("192.0.2.1"), dst: ip("192.0.2.2") };
    const v6 = { src: ip("2001:db8::1"), dst: ip("2001:db8::2") };
    w.append(Instant.fromMicros(5), emitTcpPacket({ ip: v4, tcp: SEG, ethernet: eth }));
    const data = {
      ...SEG,
      flags: TcpFlag.ACK | TcpFlag.PSH,
      mss: undefined,
      windowScale: undefined,
      sackPermitted: false,
      payload: new Uint8Array(100),
    };
    w.append(Instant.fromMicros(1_000_005), emitTcpPacket({ ip: v6, tcp: data, ethernet: eth }));
    const dir = tempCaptureDir();
    try {
      const file = join(dir.dir, "ours.pcap");
      writeFileSync(file, w.toBytes());
      const r = run("decode", file, "--verify-checksums");
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assert.equal(lines.length, 2);
      assert.match(
        lines[0]!,
        /^0\.000000 192\.0\.2\.1\.49152 > 192\.0\.2\.2\.80: Flags \[S\], seq 1000, .*mss 1460.*wscale 7/,
      );
      assert.match(lines[1]!, /^1\.000000 2001:db8::1\.49152 > 2001:db8::2\.80: Flags \[P\.\], .*length 100/);
      assert.doesNotMatch(r.stdout, /bad-checksum/);
      const one = run("decode", file, "-c", "1");
      assert.equal(one.stdout.trimEnd().split("\n").length, 1);
    } finally {
      dir.cleanup();
    }
  });
  void test("decode reads the kernel's own capture: every frame decodes", async () => {
    const file = await captureKernelTraffic(20_000);
    try {
      const r = run("decode", file);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assert.ok(lines.length > 10);
      assert.deepEqual(
        lines.filter((l) => /undecodable|\[\w+ [a-z-]+ at \d+\]/.test(l)),
        [],
      );
      assert.ok(
        lines.some((l) => /Flags \[S\.\]/.test(l)),
        "the SYN-ACK is there",
      );
      assert.ok(
        lines.some((l) => /ARP|arp/.test(l)),
        "ARP is there",
      );
    } finally {
      rmSync(dirname(file), { recursive: true, force: true });
    }
  });
});
