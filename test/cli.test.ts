// The chimney command: exit codes, one-line errors, and `decode` on our captures and the kernel's.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { demoHeldMax } from "../src/cli/commands/demo.js";
import { Seq } from "../src/wire/seq.js";
import { Instant } from "../src/time/instant.js";
import { mac } from "../src/wire/ethernet.js";
import { ip } from "../src/wire/ip-addr.js";
import { emitTcpPacket } from "../src/wire/packet.js";
import { PcapWriter } from "../src/wire/pcap.js";
import { TcpFlag, type TcpRepr } from "../src/wire/tcp-repr.js";
import { captureKernelTraffic } from "./support/capture.js";
import { exited } from "./support/netns.js";
import { tempCaptureDir } from "./support/pcap-file.js";

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(DIST, "src", "cli", "bin.js");

/**
 * Runs the CLI with stdout piped to a reader that closes the pipe after its first line (as
 * `| head -1` does) and returns the exit code and stderr.
 */
async function runIntoClosedPipe(
  ...args: string[]
): Promise<{ code: number | null; stderr: string; first: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const first = await new Promise<string>((resolve) => {
    let seen = "";
    child.stdout.on("data", (d: Buffer) => {
      seen += d.toString();
      const nl = seen.indexOf("\n");
      if (nl >= 0) {
        child.stdout.destroy();
        resolve(seen.slice(0, nl));
      }
    });
  });
  const code = await exited(child);
  return { code, stderr, first };
}

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
  void test("--version and -V print the version of the package the command belongs to", () => {
    const version = (
      JSON.parse(readFileSync(join(DIST, "..", "package.json"), "utf8")) as { version: string }
    ).version;
    for (const flag of ["--version", "-V"]) {
      const r = run(flag);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${version}\n`);
    }
    // Installed as a package elsewhere: the version is that package's, wherever the command runs.
    const where = mkdtempSync(join(tmpdir(), "chimney-installed-"));
    try {
      const pkg = join(where, "node_modules", "chimney");
      mkdirSync(pkg, { recursive: true });
      writeFileSync(
        join(pkg, "package.json"),
        JSON.stringify({ name: "chimney", version: "9.8.7", type: "module" }),
      );
      cpSync(join(DIST, "src"), join(pkg, "dist", "src"), { recursive: true });
      symlinkSync(join(DIST, "..", "node_modules"), join(pkg, "node_modules"));
      const r = spawnSync(process.execPath, [join(pkg, "dist", "src", "cli", "bin.js"), "--version"], {
        cwd: where,
        encoding: "utf8",
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "9.8.7\n");
    } finally {
      rmSync(where, { recursive: true, force: true });
    }
  });
  void test("a reader that closes the pipe early ends every command quietly with exit 0", async () => {
    const dir = tempCaptureDir();
    try {
      // Enough packets that decode is still writing when the reader goes away.
      const w = new PcapWriter({ linkType: 1 });
      const eth = { src: mac("02:00:00:00:00:01"), dst: mac("02:00:00:00:00:02") };
      const v4 = { src: ip("192.0.2.1"), dst: ip("192.0.2.2") };
      for (let i = 0; i < 20_000; i++)
        w.append(Instant.fromMicros(i), emitTcpPacket({ ip: v4, tcp: SEG, ethernet: eth }));
      const file = join(dir.dir, "many.pcap");
      writeFileSync(file, w.toBytes());
      for (const args of [["decode", file], ["demo"], ["run", join(DIST, "..", "scenarios", "seed.yaml")]]) {
        const r = await runIntoClosedPipe(...args);
        assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
        assert.equal(r.stderr, "", `${args.join(" ")}: nothing on stderr`);
        assert.ok(r.first.length > 0);
      }
    } finally {
      dir.cleanup();
    }
  });
  void test("the demo (chimney with no command) terminates with BufferedData and verifies, under 5 s", () => {
    const t0 = performance.now();
    const r = run();
    const ms = performance.now() - t0;
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /seed 1/);
    assert.match(r.stdout, /TerminateOffloadComplete .*bufferedData=[1-9]\d*B/);
    assert.match(r.stdout, /MiniportTcpOffloadReceiveReturn/);
    assert.match(r.stdout, /ok +ledger of b quiescent/);
    assert.match(r.stdout, /ok +byte streams identical/);
    assert.match(r.stdout, /verified: no byte lost, duplicated or reordered/);
    assert.ok(ms < 5000, `demo took ${ms.toFixed(0)} ms`);
    const other = run("--seed", "7");
    assert.equal(other.code, 0, other.stdout);
    assert.match(other.stdout, /seed 7/);
  });
  void test("demo --held beyond the target's receive window is exit 2 naming the maximum; at it, verified", () => {
    const max = demoHeldMax();
    for (const held of [max + 1, 100_000_000]) {
      const r = run("demo", "--held", String(held));
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, new RegExp(`^chimney: --held ${held}: at most ${max} bytes`));
    }
    const r = run("demo", "--held", String(max), "--seed", "3");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stdout, /FAIL|DIFFER/);
    assert.match(r.stdout, /verified: no byte lost, duplicated or reordered; all \d+ checks hold/);
    assert.match(r.stdout, /ok +expect bufferedDataBytesAtLeast +(\d+) bytes came back/);
    const back = Number(/(\d+) bytes came back/.exec(r.stdout)?.[1]);
    assert.ok(back >= max, `${back} bytes of BufferedData, held ${max}`);
  });
  void test("demo --target worker: the story across threads, BufferedData back, every ledger quiescent; --held is the simulator's", () => {
    const r = run("demo", "--target", "worker", "--seed", "5");
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /target on its own thread/);
    assert.match(r.stdout, /ok +BufferedData crossed the threads +(\d+) bytes/);
    assert.match(r.stdout, /ok +every NBL home \(both threads\)/);
    assert.match(r.stdout, /verified: no byte lost, duplicated or reordered; all 5 checks hold/);
    const bad = run("demo", "--target", "worker", "--held", "100");
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    const wrong = run("demo", "--target", "gpu");
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /inline, worker/);
  });
  void test("README, the docs and the examples say 'as root' instead of relying on sudo", () => {
    const root = join(DIST, "..");
    const docs = [
      "README.md",
      ...readdirSync(join(root, "docs"))
        .filter((f) => f.endsWith(".md"))
        .map((f) => join("docs", f)),
      ...readdirSync(join(root, "examples")).map((f) => join("examples", f)),
    ];
    for (const doc of docs) {
      const text = readFileSync(join(root, doc), "utf8");
      assert.doesNotMatch(text, /\bsudo\b/, doc);
    }
    assert.match(readFileSync(join(DIST, "..", "README.md"), "utf8"), /as root/);
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
      assert.equal(
        r.stderr,
        `chimney: ${bad}: not a capture (no pcap or pcapng magic number at the start, at byte 0)\n`,
      );
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
