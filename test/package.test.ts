// The package as a user gets it: `npm pack`, then `npm install <tarball>` into a fresh project
// on a machine without python3/make/g++ (the TAP addon is skipped with one line), offline from
// the npm cache that `npm ci` filled. Then the installed `chimney` command runs, a consumer
// written against "chimney", "chimney/sim", "chimney/live" and "chimney/conformance"
// type-checks under moduleResolution node16 and bundler, and the compiled consumer runs.
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { barePath } from "./support/bare-path.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const NODE_TYPES = join(ROOT, "node_modules", "@types");
/** npm's own entry point (the one running `npm test`, else the one beside this node). */
const NPM =
  process.env["npm_execpath"] ??
  join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "bin", "npm-cli.js");

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], options: SpawnSyncOptions = {}): Run {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000, ...options });
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const CONSUMER = `
import type * as net from "node:net";
import { createSimNetwork, HostStack, OffloadManager, type Socket, StackError } from "chimney";
import { Prng, Scheduler, createSimNetwork as createSimFromSim } from "chimney/sim";
import { LIVE_ADDRS, NativeAddonMissingError, startLiveHost } from "chimney/live";
import { parseKnownFailures, runConformance } from "chimney/conformance";

const nodeSocket = (s: net.Socket): string => s.remoteAddress ?? "?";

const simNet = createSimNetwork({
  seed: 7,
  link: { delayMs: 2, loss: 0.01, bandwidthBps: 50_000_000 },
  offload: { a: { target: "software" } },
});
const [a, b] = simNet.hosts;
const server = b.createServer((s) => {
  const ours: Socket = s;
  nodeSocket(ours);
  s.on("data", (d: Buffer) => s.write(d));
  s.on("end", () => s.end());
});
// @ts-expect-error: a misspelled event name does not compile
server.on("conection", () => undefined);
server.listen(7);
const c = a.connect({ host: "b", port: 7 });
let echoed = 0;
c.on("data", (d: Buffer) => (echoed += d.length));
await new Promise<void>((r) => c.once("connect", () => r()));
const offloaded = a.offload?.offload(c) ?? false;
c.write(Buffer.alloc(100_000, 1));
await simNet.runUntil(() => echoed >= 30_000);
const terminated = a.offload?.terminate(c) ?? false;
await simNet.runUntil(() => echoed === 100_000);
c.end();
await simNet.idle();
simNet.stop();
console.log(\`echo \${echoed} offloaded \${offloaded} terminated \${terminated} at \${nodeSocket(c)}\`);
console.log(\`same factory \${createSimFromSim === createSimNetwork}\`);
console.log(\`pieces \${[HostStack, OffloadManager, Scheduler, Prng, runConformance, parseKnownFailures].every((f) => typeof f === "function")}\`);
try {
  startLiveHost();
  console.log("live started");
} catch (e) {
  const code = e instanceof NativeAddonMissingError && e instanceof StackError ? e.code : String(e);
  console.log(\`live \${code} \${LIVE_ADDRS.kernel4}\`);
}
`;

function tsconfig(resolution: "node16" | "bundler"): object {
  return {
    compilerOptions: {
      target: "ES2022",
      module: resolution === "node16" ? "node16" : "esnext",
      moduleResolution: resolution,
      strict: true,
      skipLibCheck: true,
      typeRoots: [NODE_TYPES],
      types: ["node"],
      outDir: "out",
      ...(resolution === "bundler" ? { noEmit: true } : {}),
    },
    files: ["consumer.ts"],
  };
}

void describe("the packed package, installed into a fresh project", { timeout: 120_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "chimney-package-"));
  const app = join(work, "app");
  const bare = barePath();
  let install: Run | undefined;
  after(() => {
    rmSync(work, { recursive: true, force: true });
    bare.remove();
  });

  before(() => {
    // The package, and its dependencies packed from our node_modules: installing them together
    // needs no registry (npm ci cached tarballs, not the registry's package documents).
    const deps = Object.keys(
      (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: object }).dependencies,
    );
    const pack = run(
      process.execPath,
      [
        NPM,
        "pack",
        "--ignore-scripts",
        "--json",
        "--pack-destination",
        work,
        ".",
        ...deps.map((d) => join(ROOT, "node_modules", d)),
      ],
      { cwd: ROOT },
    );
    assert.equal(pack.code, 0, pack.stderr);
    const packed = JSON.parse(pack.stdout) as { name: string; filename: string; files: { path: string }[] }[];
    const info = packed.find((p) => p.name === "chimney");
    assert.ok(info !== undefined, pack.stdout);
    const stray = info.files
      .map((f) => f.path)
      .filter((p) => /\.test\.|\.map$|^dist\/(test|bench)\//.test(p));
    assert.deepEqual(stray, [], "no tests, benches or source maps in the tarball");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    install = run(
      process.execPath,
      [
        NPM,
        "install",
        ...packed.map((p) => join(work, p.filename)),
        "--offline",
        "--no-audit",
        "--no-fund",
        "--foreground-scripts",
      ],
      { cwd: app, env: { ...process.env, PATH: bare.dir } },
    );
  });

  void test("installs without python3/make/g++: the addon is skipped with one line", () => {
    assert.ok(install !== undefined);
    assert.equal(install.code, 0, install.stderr + install.stdout);
    const lines = install.stdout.split("\n").filter((l) => l.startsWith("chimney: native TAP addon"));
    assert.equal(lines.length, 1, install.stdout);
    assert.match(lines[0] ?? "", /missing python3 make g\+\+; skipped/);
    assert.ok(!existsSync(join(app, "node_modules", "chimney", "native", "build")));
  });

  void test("node_modules/.bin/chimney --help and demo print and exit 0", () => {
    const bin = join(app, "node_modules", ".bin", "chimney");
    const help = run(bin, ["--help"], { cwd: app });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: chimney /m);
    assert.match(help.stdout, /demo/);
    const demo = run(bin, ["demo"], { cwd: app });
    assert.equal(demo.code, 0, demo.stderr);
    assert.match(demo.stdout, /seed 1/);
    assert.match(demo.stdout, /verified: no byte lost, duplicated or reordered/);
    const bad = run(bin, ["demo", "--seed", "x"], { cwd: app });
    assert.equal(bad.code, 2, "bad input exits 2");
  });

  void test("a consumer type-checks under node16 and bundler resolution, and runs", () => {
    writeFileSync(join(app, "consumer.ts"), CONSUMER);
    for (const resolution of ["bundler", "node16"] as const) {
      writeFileSync(join(app, "tsconfig.json"), JSON.stringify(tsconfig(resolution)));
      const tsc = run(process.execPath, [TSC, "-p", "tsconfig.json"], { cwd: app });
      assert.equal(tsc.code, 0, `${resolution}: ${tsc.stdout}${tsc.stderr}`);
    }
    const out = run(process.execPath, [join(app, "out", "consumer.js")], { cwd: app });
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(out.stdout.trimEnd().split("\n"), [
      "echo 100000 offloaded true terminated true at 192.0.2.2",
      "same factory true",
      "pieces true",
      "live ERR_NATIVE_ADDON_MISSING 192.0.2.1",
    ]);
    const installed = JSON.parse(
      readFileSync(join(app, "node_modules", "chimney", "package.json"), "utf8"),
    ) as {
      version: string;
    };
    assert.ok(installed.version.length > 0);
  });
});
