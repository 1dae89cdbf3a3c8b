// The soak (soak/main.ts) for one minute, as CI runs it: serve with the chimney under a SYN
// flood, an ARP/ND flood, forged ICMP too-big messages, slowloris and malformed frames, one at a
// time and then all at once, with curl transfers checked byte for byte while connections flap.
// Every goal line must say OK and the run must exit 0. Needs Linux and root (a namespace and a
// TAP device), python3 (the packet writer) and curl; skipped visibly otherwise.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { waitForOutput } from "./support/netns.js";

const SOAK = join(fileURLToPath(new URL(".", import.meta.url)), "..", "soak", "main.js");

function missing(): string | undefined {
  if (process.platform !== "linux") return "the soak needs Linux (TAP devices, network namespaces)";
  if (process.getuid?.() !== 0) return "the soak needs root (it creates a network namespace)";
  for (const tool of ["python3", "curl", "ip"]) {
    if (spawnSync(tool, ["-V"], { stdio: "ignore" }).error !== undefined) return `the soak needs ${tool}`;
  }
  return undefined;
}

const skip = missing();

void test("npm run soak -- --minutes 1: every goal OK", {
  skip: skip ?? false,
  timeout: 240_000,
}, async () => {
  const child = spawn(process.execPath, [SOAK, "--minutes", "1"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  const lines = out.split("\n");
  const goals = lines.filter((l) => l.startsWith("goal soak/"));
  for (const g of goals) console.log(`# ${g}`);
  const seed = /seed (\d+)/.exec(out)?.[1];
  assert.equal(code, 0, `the soak failed (seed ${seed}):\n${out.slice(-6000)}`);
  assert.ok(goals.length >= 20, `goal lines: ${goals.length}\n${out.slice(-3000)}`);
  assert.deepEqual(
    goals.filter((g) => !g.endsWith(" OK")),
    [],
  );
  assert.match(out, /\nsoak OK \(seed \d+\)\n/);
  // Its namespace is gone.
  const ns = /namespace (chimney-soak-\d+-\d+)/.exec(out)?.[1];
  assert.ok(ns !== undefined, "the soak names its namespace");
  assert.ok(!spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.includes(ns), `${ns} removed`);
});

/** True while `pid` runs (a zombie, dead but not yet reaped, does not count). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

void test("the soak stopped with SIGINT removes its namespace and every helper in it", {
  skip: skip ?? false,
  timeout: 120_000,
}, async () => {
  const child = spawn(process.execPath, [SOAK, "--minutes", "0.3", "--phases", "all"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  try {
    await waitForOutput(child, /phase all: /, 60_000);
    const ns = /namespace (chimney-soak-\d+-\d+)/.exec(out)?.[1];
    assert.ok(ns !== undefined, out);
    // Everything running in the namespace: the packet writer, the slowloris attacker, curl. On
    // a loaded machine they start over a few seconds: look until at least two run.
    const helpers = (): number[] =>
      spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" })
        .stdout.split("\n")
        .filter((l) => l.trim() !== "")
        .map(Number);
    let pids = helpers();
    for (let i = 0; i < 100 && pids.length < 2; i++) {
      await sleep(100);
      pids = helpers();
    }
    assert.ok(pids.length >= 2, `helpers in ${ns}: ${pids.join(" ")}`);
    child.kill("SIGINT");
    assert.equal(await closed, 130, out.slice(-2000));
    assert.match(out, /soak: interrupted by SIGINT \(seed \d+\); namespace and helpers removed/);
    assert.ok(!spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.includes(ns), `${ns} removed`);
    // SIGKILL takes effect asynchronously: give the helpers a moment to go.
    for (let i = 0; i < 150 && pids.some((p) => alive(p)); i++) await sleep(100);
    assert.deepEqual(
      pids.filter((p) => alive(p)),
      [],
      "no helper outlives the soak",
    );
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});
