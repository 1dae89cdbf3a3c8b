// The TAP device with offloads (`tso`): our runs of segments leave as GSO frames, the kernel
// hands us TSO frames with partial checksums. Data must arrive intact both ways over IPv4 and
// IPv6; tshark on the kernel side must see our GSO frames (longer than the MTU) with valid IP
// and TCP checksums; our stack must see no bad checksum (the addon completed the partial ones).
// With a corrupting fault stage toward the kernel, corrupted segments must not be merged (that
// would recompute their checksums and hand the kernel damaged data as valid).
// Needs root (a namespace and a TAP device), like every live test.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { exited, waitForOutput } from "../support/netns.js";
import { downloadFromKernel, payload, sha256, startKernelServer, uploadToKernel } from "../support/live.js";
import { type LiveHost, startLiveHost } from "../../src/live/live-host.js";
import { killTree, LIVE_ADDRS } from "../../src/live/netns.js";

const N = 8 * 1024 * 1024;
const SEED = 5;
const PORT = 9000;

/** tshark's fields for the frames of `file` matching `filter`, checksum validation on. */
function tsharkRows(file: string, filter: string, fields: readonly string[]): string[] {
  const out = execFileSync(
    "tshark",
    [
      "-r",
      file,
      "-o",
      "tcp.check_checksum:TRUE",
      "-o",
      "ip.check_checksum:TRUE",
      // The payload is random bytes: decoded as an application protocol, a segment that happens
      // to start like one trips that dissector's warnings (seen once under load: HTTP's
      // "Trailing stray characters"). The check is about TCP/IP, so the payload stays data.
      "-d",
      `tcp.port==${PORT},data`,
      "-Y",
      filter,
      "-T",
      "fields",
      ...fields.flatMap((f) => ["-e", f]),
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 },
  );
  return out.split("\n").filter((l) => l.length > 0);
}

void describe("TAP offloads (tso): GSO frames out, TSO frames in", () => {
  let host: LiveHost;
  let server: ChildProcess;
  let tshark: ChildProcess;
  let dir: string;
  let file: string;
  before(async () => {
    host = startLiveHost({ tag: "tso", seed: SEED, offload: "tso" });
    server = await startKernelServer(host, PORT);
    dir = mkdtempSync(join(tmpdir(), "chimney-tso-"));
    file = join(dir, "kernel-side.pcap");
    tshark = host.netns.spawn("tshark", ["-i", host.netns.tap.name, "-F", "pcap", "-w", file]);
    await waitForOutput(tshark, /Capturing on/);
    // dumpcap reports before its first packet is queued; give it a moment.
    await new Promise((r) => setTimeout(r, 700));
  });
  after(() => {
    killTree(server);
    killTree(tshark);
    host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [family, addr] of [
    ["IPv4", LIVE_ADDRS.kernel4],
    ["IPv6", LIVE_ADDRS.kernel6],
  ] as const) {
    void test(`${family}: 8 MB each way, digests match`, { timeout: 30_000 }, async () => {
      const up = payload(N, SEED);
      const reply = await uploadToKernel(host, addr, PORT, up);
      assert.equal(reply, `${N} ${sha256(up)}`, `${host.label}: kernel's digest of our upload`);
      const got = await downloadFromKernel(host, addr, PORT, N, SEED + 1);
      assert.equal(got.count, N, `${host.label}: bytes received`);
      assert.equal(got.sha, sha256(payload(N, SEED + 1)), `${host.label}: digest of the download`);
    });
  }

  void test("the offloads were used; every frame we sent is valid on the kernel side", {
    timeout: 30_000,
  }, async () => {
    const s = host.stats();
    const label = `${host.label}, capture ${file}, stats ${JSON.stringify({ ...s, faults: undefined })}`;
    assert.ok(s.gsoOut > 0, `${label}: no GSO frame written`);
    assert.ok(s.writesOut < s.framesOut / 4, `${label}: segments were not merged`);
    assert.ok(s.tsoIn > 0, `${label}: the kernel sent no TSO frame`);
    assert.ok(s.checksumsCompleted > 0, `${label}: no partial checksum completed`);
    assert.equal(host.stack.stats.dropBadChecksum, 0, `${label}: our stack saw bad checksums`);
    assert.equal(host.stack.stats.dropMalformed, 0, `${label}: our stack saw malformed frames`);

    await new Promise((r) => setTimeout(r, 300));
    killTree(tshark, "SIGINT");
    await exited(tshark);
    const ours = `(ip.src == ${LIVE_ADDRS.ours4} || ipv6.src == ${LIVE_ADDRS.ours6})`;
    const big = tsharkRows(file, `${ours} && tcp && frame.len > 1514`, ["frame.number"]);
    assert.ok(big.length > 100, `${label}: only ${big.length} GSO frames from us captured`);
    const bigV6 = tsharkRows(file, `ipv6.src == ${LIVE_ADDRS.ours6} && tcp && frame.len > 1514`, [
      "frame.number",
    ]);
    assert.ok(bigV6.length > 10, `${label}: only ${bigV6.length} IPv6 GSO frames from us captured`);
    // The kernel's own TSO frames carry partial checksums on its side (as on any NIC with
    // offloads); ours must be whole.
    const bad = tsharkRows(
      file,
      `_ws.malformed || (${ours} && (_ws.expert.severity >= error || tcp.checksum.status == 0 || ip.checksum.status == 0))`,
      ["frame.number", "_ws.expert.message"],
    );
    assert.deepEqual(bad, [], `${label}: malformed or bad-checksum frames`);
  });
});

void describe("TAP offloads (tso) behind a corrupting link toward the kernel", () => {
  let host: LiveHost;
  let server: ChildProcess;
  before(async () => {
    host = startLiveHost({
      tag: "tsoc",
      seed: SEED + 10,
      offload: "tso",
      toKernel: { corrupt: { rate: 0.02, skipBytes: 14 } },
    });
    server = await startKernelServer(host, PORT);
  });
  after(() => {
    killTree(server);
    host.close();
  });

  for (const [family, addr] of [
    ["IPv4", LIVE_ADDRS.kernel4],
    ["IPv6", LIVE_ADDRS.kernel6],
  ] as const) {
    void test(`${family}: 4 MB to the kernel arrive intact`, { timeout: 60_000 }, async () => {
      const up = payload(N / 2, SEED + 2);
      const reply = await uploadToKernel(host, addr, PORT, up);
      const s = host.stats();
      const corrupted = (s.faults["ours>kernel"]?.["corrupt"] as { corrupted?: number } | undefined)
        ?.corrupted;
      const label = `${host.label}, stats ${JSON.stringify(s)}`;
      assert.equal(reply, `${N / 2} ${sha256(up)}`, `${label}: kernel's digest of our upload`);
      assert.ok((corrupted ?? 0) > 10, `${label}: the stage corrupted too few frames`);
      assert.ok(s.gsoOut > 0, `${label}: no GSO frame written`);
    });
  }
});
