// `chimney serve` as a user runs it: the printed curl lines work against our stack from the
// kernel's namespace, and Ctrl-C (SIGINT) stops it and removes the namespace. Needs root.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { exited, waitForOutput } from "./support/netns.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "bin.js");

void test("chimney serve: the printed curl commands work, and Ctrl-C removes the namespace", async () => {
  const child = spawn(
    process.execPath,
    [CLI, "serve", "--port", "8080", "--seed", "3", "--tap-offload", "gso"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  try {
    // The banner's curl lines name the namespace; "Ctrl-C stops" ends the banner.
    const banner = await waitForOutput(
      child,
      /TAP offloads: \S+[\s\S]*ip netns exec \S+ curl[\s\S]*Ctrl-C stops/,
      30_000,
    );
    const ns = /ip netns exec (\S+) curl/.exec(banner)?.[1];
    assert.ok(ns !== undefined, "the banner names the namespace");
    assert.match(banner, /TAP offloads: gso/, "the chosen TAP offload mode is in use");
    const curl = (...args: string[]) =>
      execFileSync("ip", ["netns", "exec", ns, "curl", "-sS", "--max-time", "20", ...args], {
        encoding: "utf8",
      });
    assert.equal(
      curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}", "http://192.0.2.2:8080/bytes/100000"),
      "200 100000",
    );
    assert.equal(curl("--data-binary", "hello chimney", "http://192.0.2.2:8080/echo"), "hello chimney");
    assert.equal(
      curl("-g", "-o", "/dev/null", "-w", "%{http_code}", "http://[2001:db8::2]:8080/bytes/100"),
      "200",
    );
    child.kill("SIGINT");
    await exited(child);
    const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    assert.ok(!namespaces.includes(ns), `namespace ${ns} is gone after Ctrl-C`);
  } finally {
    // On failure, stop it the way a user would, so it removes its namespace itself.
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited(child);
    }
  }
});

void test("chimney serve with a bad argument is one line and exit 2", () => {
  for (const bad of [
    ["--loss", "lots"],
    ["--tap-offload", "lro"],
  ]) {
    const r = spawnSync(process.execPath, [CLI, "serve", ...bad], { encoding: "utf8" });
    assert.equal(r.status, 2, r.stderr);
    assert.ok(r.stderr.trim().split("\n").length <= 2, r.stderr);
  }
});
