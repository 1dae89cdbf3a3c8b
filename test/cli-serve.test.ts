// `chimney serve` as a user runs it: the printed curl lines work against our stack from the
// kernel's namespace, and Ctrl-C (SIGINT) stops it and removes the namespace. Needs root.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { patternSha256 } from "../src/live/http-app.js";
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

for (const { target, mib, port, workers } of [
  { target: "inline", mib: 32, port: 8085, workers: undefined },
  { target: "worker", mib: 256, port: 8086, workers: undefined },
  { target: "worker", mib: 64, port: 8087, workers: 3 },
] as const) {
  const more = workers === undefined ? "" : ` --workers ${workers}`;
  void test(`chimney serve --target ${target}${more} --flap 5: ${mib} MiB down and ${mib} MiB up intact while the connections are handed back and forth`, async () => {
    await flapTransfers(target, mib * 1024 * 1024, port, workers);
  });
}

/**
 * `serve --target <target> --flap 5`; the kernel's curl downloads `n` bytes (`GET /bytes/n`, the
 * pattern's sha256) and uploads `n` random bytes (to `/sink` for the worker, whose answer carries
 * the sha256; through `/echo` for the inline one); the flap counters must be non-zero.
 */
async function flapTransfers(
  target: "inline" | "worker",
  N: number,
  port: number,
  workers: number | undefined,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "chimney-serve-flap-"));
  const child = spawn(
    process.execPath,
    [
      CLI,
      "serve",
      "--port",
      String(port),
      "--seed",
      "5",
      "--target",
      target,
      "--flap",
      "5",
      ...(workers === undefined ? [] : ["--workers", String(workers)]),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  try {
    const banner = await waitForOutput(
      child,
      /target: [\s\S]*ip netns exec \S+ curl[\s\S]*Ctrl-C stops/,
      30_000,
    );
    assert.match(
      banner,
      new RegExp(
        `target: ${target}${target === "worker" ? ` x${workers ?? "\\d+"}` : ""} \\(served connections are offloaded once accepted; offloaded / terminated every 5 ms\\)`,
      ),
    );
    const ns = /ip netns exec (\S+) curl/.exec(banner)?.[1];
    assert.ok(ns !== undefined, "the banner names the namespace");
    // curl runs in the namespace, asynchronously (the server is another process either way).
    const curl = (...args: string[]) =>
      new Promise<string>((resolve, reject) => {
        const c = spawn("ip", ["netns", "exec", ns, "curl", "-sS", "--max-time", "120", ...args], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        let so = "";
        let se = "";
        c.stdout.on("data", (d: Buffer) => (so += d.toString()));
        c.stderr.on("data", (d: Buffer) => (se += d.toString()));
        c.on("exit", (code) => (code === 0 ? resolve(so) : reject(new Error(`curl exit ${code}: ${se}`))));
      });
    const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
    const url = `http://192.0.2.2:${port}`;
    // Download: the body's digest is the header's and the pattern's.
    const down = join(dir, "down.bin");
    const t0 = performance.now();
    const headers = await curl("-D", "-", "-o", down, `${url}/bytes/${N}`);
    const downSecs = (performance.now() - t0) / 1000;
    const claimed = /^x-sha256: ([0-9a-f]{64})\r?$/im.exec(headers)?.[1];
    assert.equal(claimed, patternSha256(N), "x-sha256 is the pattern's digest");
    assert.equal(sha(down), patternSha256(N), "downloaded bytes");
    rmSync(down);
    // Upload: random bytes; their digest must come back.
    const up = join(dir, "up.bin");
    writeFileSync(up, randomBytes(N));
    const t1 = performance.now();
    if (target === "worker") {
      const reply = await curl("--data-binary", `@${up}`, `${url}/sink`);
      assert.match(reply, new RegExp(`\\b${sha(up)}\\b`), `the server's digest of the upload: ${reply}`);
      assert.match(reply, new RegExp(`\\b${N}\\b`), `the server's count of the upload: ${reply}`);
    } else {
      const echoed = join(dir, "echo.bin");
      await curl("--data-binary", `@${up}`, "-o", echoed, `${url}/echo`);
      assert.equal(sha(echoed), sha(up), "echoed bytes");
    }
    const upSecs = (performance.now() - t1) / 1000;
    child.kill("SIGINT");
    assert.equal(await exited(child), 0);
    const m = /flap: (\d+) offloads, (\d+) terminates \(every 5 ms; plus (\d+) offloads on accept\)/.exec(
      out,
    );
    assert.ok(m !== null, `the closing flap line: ${out}`);
    assert.ok(Number(m[1]) > 0 && Number(m[2]) > 0, `flap counters: ${m[0]}`);
    console.log(
      `# ${target}: ${N >> 20} MiB down in ${downSecs.toFixed(1)} s, up in ${upSecs.toFixed(1)} s; ${m[0]}`,
    );
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited(child);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The serve namespaces (`chimney-serve-<pid>-<n>`) of process `pid` that exist now. */
function serveNamespacesOf(pid: number | undefined): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(`chimney-serve-${pid}-`));
}

void test("chimney serve with a bad argument is one line and exit 2, before any namespace exists", () => {
  for (const bad of [
    ["--loss", "lots"],
    ["--tap-offload", "lro"],
    ["-p", "99999"],
    ["-p", "65536"],
    ["-p", "0"],
    ["--port", "-1"],
    ["--pcap", "/nonexistent-folder/ours.pcap"],
    ["--target", "gpu"],
    ["--target", ""],
    ["--flap", "0"],
    ["--flap", "0.5"],
    ["--flap", "-5"],
    ["--flap", "lots"],
    ["--flap", ""],
    ["--flap", "Infinity"],
    ["--flap", "1e12"],
    ["--target", "none", "--flap", "5"],
    ["--workers", "0"],
    ["--workers", "lots"],
    ["--workers", "65"],
    ["--target", "inline", "--workers", "2"],
  ]) {
    const r = spawnSync(process.execPath, [CLI, "serve", ...bad], { encoding: "utf8", timeout: 20_000 });
    assert.equal(r.status, 2, `${bad.join(" ")}: ${r.stderr}`);
    assert.ok(r.stderr.trim().split("\n").length <= 2, r.stderr);
    assert.match(
      r.stderr,
      bad[0] === "--pcap"
        ? /nonexistent-folder.*does not exist/
        : bad.includes("none")
          ? /--flap needs a target/
          : bad.includes("inline")
            ? /--workers applies to --target worker only/
            : /invalid|must be/,
    );
    // An unknown target lists the choices; a bad period says what a period is.
    if (bad[0] === "--target" && bad.length === 2) assert.match(r.stderr, /worker, inline, none/);
    if (bad[0] === "--flap" && bad.length === 2) assert.match(r.stderr, /milliseconds from 1 to|a number/);
    assert.deepEqual(serveNamespacesOf(r.pid), [], `${bad.join(" ")} created no namespace`);
  }
});

void test("chimney serve whose capture cannot be written removes its namespace and fails", () => {
  // /dev/full opens fine and refuses every write: the failure comes once the namespace exists.
  const r = spawnSync(process.execPath, [CLI, "serve", "-p", "8081", "--pcap", "/dev/full"], {
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, "chimney: /dev/full: cannot write (ENOSPC)\n");
  assert.deepEqual(serveNamespacesOf(r.pid), [], "the namespace is gone");
});

void test("a serve killed with SIGKILL leaves its namespace; the next serve removes it", async () => {
  const start = (port: string) =>
    spawn(process.execPath, [CLI, "serve", "-p", port], { stdio: ["ignore", "pipe", "pipe"] });
  const killed = start("8083");
  const next = { child: undefined as ReturnType<typeof start> | undefined };
  try {
    await waitForOutput(killed, /Ctrl-C stops/, 30_000);
    killed.kill("SIGKILL");
    await exited(killed);
    const stale = serveNamespacesOf(killed.pid);
    assert.equal(stale.length, 1, "SIGKILL leaves the namespace behind");
    next.child = start("8084");
    await waitForOutput(next.child, /Ctrl-C stops/, 30_000);
    assert.deepEqual(serveNamespacesOf(killed.pid), [], "the stale namespace is gone");
    assert.equal(serveNamespacesOf(next.child.pid).length, 1, "the new serve has its own");
    next.child.kill("SIGINT");
    assert.equal(await exited(next.child), 0);
    assert.deepEqual(serveNamespacesOf(next.child.pid), []);
  } finally {
    for (const c of [killed, next.child]) {
      if (c !== undefined && c.exitCode === null && c.signalCode === null) {
        c.kill("SIGTERM");
        await exited(c);
      }
    }
    // What a failed check may have left: this test's own namespaces only.
    for (const ns of [...serveNamespacesOf(killed.pid), ...serveNamespacesOf(next.child?.pid)])
      execFileSync("ip", ["netns", "del", ns]);
  }
});
