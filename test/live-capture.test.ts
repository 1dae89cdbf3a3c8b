// What Linux and our stack agree on, seen by tshark on the kernel side of the TAP device
// (inside the namespace, classic pcap): window scaling, SACK-permitted and timestamps in both
// SYNs, and no malformed frame or bad checksum. Then 200 concurrent connections from the
// kernel side (curl --parallel) all complete.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { patternSha256 } from "../src/live/http-app.js";
import type { LiveHost } from "../src/live/live-host.js";
import { killTree, LIVE_ADDRS } from "../src/live/netns.js";
import { exited, waitForOutput } from "./support/netns.js";
import { liveHttpHost, runChild } from "./support/live.js";

const SEED = 77;

/** Runs tshark on a file with checksum validation on; returns its fields output. */
function tsharkFields(file: string, filter: string, fields: readonly string[]): string[] {
  const out = execFileSync(
    "tshark",
    [
      "-r",
      file,
      "-o",
      "tcp.check_checksum:TRUE",
      "-o",
      "ip.check_checksum:TRUE",
      "-Y",
      filter,
      "-T",
      "fields",
      ...fields.flatMap((f) => ["-e", f]),
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  return out.split("\n").filter((l) => l.length > 0);
}

void describe("live link seen by tshark; 200 concurrent connections", () => {
  let host: LiveHost;
  let accepted: () => number;
  let dir: string;
  before(async () => {
    // Wire-sized frames: this test is about what Linux negotiates on a 1500-byte link, and
    // tshark checks every frame's checksum (src/live/tap-offload.test.ts captures with tso).
    const h = await liveHttpHost({ tag: "cap", seed: SEED, offload: "off" });
    host = h.host;
    accepted = h.accepted;
    dir = mkdtempSync(join(tmpdir(), "chimney-live-"));
  });
  after(() => {
    host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  void test("tshark: options negotiated with Linux, no malformed frames, no bad checksums", async () => {
    const file = join(dir, "kernel-side.pcap");
    const tshark = host.netns.spawn("tshark", ["-i", host.netns.tap.name, "-F", "pcap", "-w", file]);
    await waitForOutput(tshark, /Capturing on/);
    // dumpcap reports before its first packet is queued; give it a moment.
    await new Promise((r) => setTimeout(r, 700));
    for (const addr of [LIVE_ADDRS.ours4, `[${LIVE_ADDRS.ours6}]`]) {
      const r = await runChild(
        host.netns.spawn("bash", [
          "-c",
          `set -o pipefail; curl -sS -g --fail http://${addr}/bytes/1000000 | sha256sum`,
        ]),
        30_000,
      );
      assert.equal(r.code, 0, `${host.label}: curl: ${r.stderr}`);
      assert.equal(r.stdout.split(" ")[0], patternSha256(1_000_000), `${host.label}: digest`);
    }
    await new Promise((r) => setTimeout(r, 300));
    killTree(tshark, "SIGINT");
    await exited(tshark);
    const label = `${host.label}, capture ${file}`;
    const all = tsharkFields(file, "tcp", ["frame.number"]);
    assert.ok(all.length > 1000, `${label}: only ${all.length} TCP frames captured`);
    const syns = tsharkFields(file, "tcp.flags.syn == 1", [
      "ip.src",
      "ipv6.src",
      "tcp.flags.ack",
      "tcp.options.wscale.shift",
      "tcp.options.sack_perm",
      "tcp.options.timestamp.tsval",
    ]);
    assert.equal(syns.length, 4, `${label}: SYNs: ${syns.join(" | ")}`);
    for (const line of syns) {
      const [v4, v6, , wscale, sackPerm, tsval] = line.split("\t");
      const from = v4 !== "" ? v4 : v6;
      assert.notEqual(wscale ?? "", "", `${label}: no window scale in SYN from ${from}`);
      assert.notEqual(sackPerm ?? "", "", `${label}: no SACK-permitted in SYN from ${from}`);
      assert.notEqual(tsval ?? "", "", `${label}: no timestamps in SYN from ${from}`);
    }
    const ours = syns.filter((l) => l.includes(LIVE_ADDRS.ours4) || l.includes(LIVE_ADDRS.ours6));
    assert.equal(ours.length, 2, `${label}: our SYN-ACKs: ${syns.join(" | ")}`);
    const bad = tsharkFields(
      file,
      "_ws.malformed || _ws.expert.severity >= error || tcp.checksum.status == 0 || ip.checksum.status == 0",
      ["frame.number", "_ws.expert.message"],
    );
    assert.deepEqual(bad, [], `${label}: malformed or bad-checksum frames`);
    assert.equal(host.stack.stats.dropBadChecksum, 0, `${label}: our stack saw bad checksums`);
    assert.equal(host.stack.stats.dropMalformed, 0, `${label}: our stack saw malformed frames`);
  });

  void test("200 concurrent connections from the kernel side all complete", async () => {
    const before = accepted();
    const urls = Array.from(
      { length: 200 },
      (_, i) => `http://${i % 2 === 0 ? LIVE_ADDRS.ours4 : `[${LIVE_ADDRS.ours6}]`}/bytes/${65536 + i}`,
    );
    const r = await runChild(
      host.netns.spawn("curl", [
        "-sS",
        "-g",
        "--fail",
        "--parallel",
        "--parallel-immediate",
        "--parallel-max",
        "200",
        "-H",
        "Connection: close",
        ...urls.flatMap((u) => ["-o", "/dev/null", "-w", "%{http_code} %{size_download}\\n", u]),
      ]),
      60_000,
    );
    assert.equal(r.code, 0, `${host.label}: curl: ${r.stderr}`);
    const lines = r.stdout.split("\n").filter((l) => l.length > 0);
    assert.equal(lines.length, 200, `${host.label}: ${lines.length} transfers reported`);
    const sizes = lines
      .map((l) => l.split(" "))
      .filter(([code]) => code === "200")
      .map(([, size]) => Number(size));
    assert.equal(sizes.length, 200, `${host.label}: not every response was 200: ${r.stdout.slice(0, 400)}`);
    const want = Array.from({ length: 200 }, (_, i) => 65536 + i).sort((a, b) => a - b);
    assert.deepEqual(
      sizes.sort((a, b) => a - b),
      want,
      `${host.label}: sizes`,
    );
    assert.ok(accepted() - before >= 200, `${host.label}: accepted ${accepted() - before}`);
  });
});
