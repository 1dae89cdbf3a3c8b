// `chimney conformance --profile linux --against kernel <dir-or-file>`: one line per script and a
// total line; a failure not in known-failures-kernel.txt exits 1. Needs root and the repair addon
// (skipped visibly otherwise); the passing script is read from the google suite (skipped with a
// message when absent), the failing one is written inline into a temporary folder.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { kernelModeUnavailable } from "../src/conformance/runner/kernel.js";
import { WRONG } from "./support/pdk-scripts.js";
import { peerSuiteOrSkip } from "./support/peer-suite.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "bin.js");

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

void test("--against kernel needs --profile linux", () => {
  const r = run("conformance", "--against", "kernel", ".");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--against kernel needs --profile linux/);
  const bad = run("conformance", "--profile", "linux", "--against", "nic", ".");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--against: expected one of stack, kernel, both, not nic/);
  const both = run("conformance", "--against", "both", ".");
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--against both needs --profile linux/);
});

void describe("chimney conformance --against kernel", { skip: kernelModeUnavailable() ?? false }, () => {
  void test("one google script passes", (t) => {
    const suite = peerSuiteOrSkip(t, "google");
    if (suite === undefined) return;
    const file = join(suite, "gtests", "net", "tcp", "blocking", "blocking-accept.pkt");
    const r = run("conformance", "--profile", "linux", "--against", "kernel", file);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^pass blocking-accept\.pkt$/m);
    assert.match(
      r.stdout,
      /^total: 1 scripts, 1 pass, 0 fail, 0 known failure\(s\), 0 unsupported; 1 of 1 applicable pass \(100\.0%\)$/m,
    );
  });

  void test("a folder with a wrong script fails and says how", () => {
    const dir = mkdtempSync(join(tmpdir(), "chimney-pdk-cli-"));
    try {
      writeFileSync(join(dir, "wrong.pkt"), WRONG);
      writeFileSync(join(dir, "v6.pkt"), "--ip_version=ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n");
      const r = run("conformance", "--profile", "linux", "--against", "kernel", dir);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^FAIL wrong\.pkt: wrong\.pkt:8: expected > S\. .* \[wscale want 5 got 8\]$/m);
      assert.match(r.stdout, /^unsupported v6\.pkt: ip_version ipv6$/m);
      assert.match(
        r.stdout,
        /^total: 2 scripts, 0 pass, 1 fail, 0 known failure\(s\), 1 unsupported; 0 of 1 applicable pass \(0\.0%\)$/m,
      );
      assert.match(r.stdout, /^new failure: wrong\.pkt: /m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

void describe("chimney conformance --against both (the differential)", {
  skip: kernelModeUnavailable() ?? false,
}, () => {
  void test("per script: both outcomes, and where only Linux passes, our first difference", (t) => {
    const suite = peerSuiteOrSkip(t, "google");
    if (suite === undefined) return;
    const dir = join(suite, "gtests", "net", "tcp");
    const r = run(
      "conformance",
      "--profile",
      "linux",
      "--against",
      "both",
      "--filter",
      "^(blocking/blocking-accept|zerocopy/small)\\.pkt$",
      dir,
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^linux=pass +ours=pass +blocking\/blocking-accept\.pkt$/m);
    assert.match(
      r.stdout,
      /^linux=pass +ours=unsupported zerocopy\/small\.pkt\n {4}first difference \(ours\): unsupported: SO_ZEROCOPY$/m,
    );
    assert.match(
      r.stdout,
      /^differential: 2 scripts; both pass 1, only Linux passes 1, only ours passes 0, both fail 0; 1 unsupported on one side or both$/m,
    );
  });

  void test("a script only our stack passes (its SYN-ACK wants our window scale): Linux's first difference", () => {
    const dir = mkdtempSync(join(tmpdir(), "chimney-pdk-diff-"));
    try {
      writeFileSync(join(dir, "wrong.pkt"), WRONG);
      const r = run("conformance", "--profile", "linux", "--against", "both", dir);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^linux=fail +ours=pass +wrong\.pkt$/m);
      assert.match(
        r.stdout,
        /^ {4}first difference \(linux\): wrong\.pkt:8: expected > S\. .*\[wscale want 5 got 8\]$/m,
      );
      assert.match(
        r.stdout,
        /^differential: 1 scripts; both pass 0, only Linux passes 0, only ours passes 1, both fail 0; 0 unsupported/m,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
