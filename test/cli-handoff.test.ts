// `chimney handoff` as a user runs it: one connection moves kernel -> our stack -> offload target
// -> kernel while a peer streams both ways; the timeline, the digests and the RST count are
// printed, and the namespaces go at the end, also on Ctrl-C. Without root the command is one
// line and exit 2 (run as an unprivileged user when the test runs as root).
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { kernelTestSkip } from "./support/kernel-topology.js";
import { exited, waitForOutput } from "./support/netns.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "bin.js");
const skip = kernelTestSkip();

/** The handoff namespaces (`chimney-handoff-<pid>-<n>`, `chimney-handoffp-<pid>-<n>`) of `pid`. */
function namespacesOf(pid: number | undefined): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(`chimney-handoff-${pid}-`) || n.startsWith(`chimney-handoffp-${pid}-`));
}

void describe("chimney handoff", () => {
  void test("two round trips with 16 MiB each way: every move listed, both digests match, no RST, nothing left", {
    skip,
  }, () => {
    const r = spawnSync(
      process.execPath,
      [CLI, "handoff", "--moves", "2", "--bytes", String(16 << 20), "--json"],
      {
        encoding: "utf8",
        timeout: 120_000,
      },
    );
    const facts = `exit ${r.status}, stderr ${r.stderr}, stdout ${r.stdout}`;
    assert.equal(r.status, 0, facts);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      seed: number;
      moves: { from: string; to: string; timings: { totalMs: number }; lost: string[] }[];
      peerToHost: { bytes: number; sent: string; received: string };
      hostToPeer: { bytes: number; sent: string; received: string };
      rsts: Record<string, number>;
    };
    assert.equal(out.ok, true, facts);
    const path = out.moves.map((m) => `${m.from}>${m.to}`);
    const trip = ["kernel>host", "host>target", "target>host", "host>kernel"];
    assert.deepEqual(path, [...trip, ...trip], facts);
    for (const m of out.moves) assert.ok(m.lost.length > 0 && m.timings.totalMs > 0, facts);
    for (const d of [out.peerToHost, out.hostToPeer]) {
      assert.equal(d.bytes, 16 << 20, facts);
      assert.equal(d.received, d.sent, facts);
    }
    assert.deepEqual(out.rsts, { ours: 0, hostKernel: 0, peer: 0, peerResets: 0 }, facts);
    assert.deepEqual(namespacesOf(r.pid), [], "the namespaces are gone");
  });

  void test("the timeline names every move and says OK", { skip }, () => {
    const r = spawnSync(process.execPath, [CLI, "handoff", "--bytes", String(8 << 20), "--seed", "5"], {
      encoding: "utf8",
      timeout: 120_000,
    });
    const facts = `exit ${r.status}, stderr ${r.stderr}, stdout ${r.stdout}`;
    assert.equal(r.status, 0, facts);
    for (const move of ["kernel -> host", "host -> target", "target -> host", "host -> kernel"])
      assert.match(r.stdout, new RegExp(`ms  ${move} .*unread .*took .*stall: .*lost: `), facts);
    assert.match(r.stdout, /peer -> us: 8388608 bytes, sha256 [0-9a-f]{64} matches what was sent/, facts);
    assert.match(r.stdout, /us -> peer: 8388608 bytes, sha256 [0-9a-f]{64} matches what was sent/, facts);
    assert.match(r.stdout, /RSTs: none/, facts);
    assert.match(r.stdout, /handoff: OK\n$/, facts);
  });

  void test("Ctrl-C mid-run removes both namespaces", { skip }, async () => {
    const child = spawn(process.execPath, [CLI, "handoff", "--moves", "50", "--bytes", String(2 ** 31)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      await waitForOutput(child, /namespaces chimney-handoff-\d+-\d+, chimney-handoffp-\d+-\d+/, 30_000);
      assert.equal(namespacesOf(child.pid).length, 2, "both namespaces exist while it runs");
      child.kill("SIGINT");
      const code = await Promise.race([
        exited(child),
        new Promise<string>((r) => setTimeout(() => r("still running after 30 s"), 30_000).unref()),
      ]);
      assert.equal(code, 130, "exit 128 + SIGINT");
      assert.deepEqual(namespacesOf(child.pid), [], "the namespaces are gone");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });

  void test("without root: one line and exit 2, before anything is created", () => {
    const root = process.getuid?.() === 0;
    // As root, the command runs as the unprivileged user `nobody` (uid 65534).
    const r = spawnSync(process.execPath, [CLI, "handoff"], {
      encoding: "utf8",
      timeout: 20_000,
      ...(root ? { uid: 65534, gid: 65534 } : {}),
    });
    assert.equal(r.status, 2, `stderr ${r.stderr}`);
    assert.match(r.stderr, /^chimney: handoff needs (root|Linux)/);
    assert.equal(r.stdout, "");
  });

  void test("bad arguments: one line and exit 2", () => {
    for (const bad of [
      ["--moves", "0"],
      ["--moves", "51"],
      ["--bytes", "1000"],
      ["--seed", "x"],
    ]) {
      const r = spawnSync(process.execPath, [CLI, "handoff", ...bad], { encoding: "utf8", timeout: 20_000 });
      assert.equal(r.status, 2, `${bad.join(" ")}: stderr ${r.stderr}`);
      assert.match(r.stderr, /^chimney: |error: /, `${bad.join(" ")}: ${r.stderr}`);
    }
  });
});
