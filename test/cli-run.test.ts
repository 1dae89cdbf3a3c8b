// `chimney run` and `chimney conformance` as a user runs them: the built CLI in a child process,
// its exit codes, its one-line errors, and the files it writes (read back by our pcap reader and
// by tshark).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { decodeFrame } from "../src/wire/packet.js";
import { parsePcap } from "../src/wire/pcap.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("package.json not found above the test");
    dir = up;
  }
  return dir;
}

const ROOT = repoRoot();
const CLI = join(ROOT, "dist", "src", "cli", "bin.js");
const TMP = mkdtempSync(join(tmpdir(), "chimney-cli-run-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

function chimney(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function lines(s: string): string[] {
  return s.split("\n").filter((l) => l !== "");
}

void test("chimney run scenarios/seed.yaml verifies, prints the seed first and is quiet on stderr", () => {
  const r = chimney("run", "scenarios/seed.yaml", "--seed", "4");
  assert.equal(r.code, 0, r.stderr);
  assert.match(lines(r.stdout)[0] ?? "", /^chimney run scenarios\/seed\.yaml {2}seed 4 /);
  assert.match(r.stdout, /ok {4}byte streams identical/);
  assert.match(r.stdout, /\nverified\n/);
  assert.equal(r.stderr, "", "no progress bar or noise when stderr is not a TTY");
});

void test("--json parses and is the same for the same seed", () => {
  const a = chimney("run", "scenarios/seed.yaml", "--seed", "3", "--json");
  const b = chimney("run", "scenarios/seed.yaml", "--seed", "3", "--json");
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  const j = JSON.parse(a.stdout) as {
    seed: number;
    verdict: string;
    checks: { name: string; ok: boolean }[];
    counters: Record<string, number>;
  };
  assert.equal(j.seed, 3);
  assert.equal(j.verdict, "pass");
  assert.ok(j.checks.length >= 4 && j.checks.every((c) => c.ok));
  assert.equal(j.counters["terminates"], 1);
  assert.ok((j.counters["bufferedDataIn"] ?? 0) > 0);
  assert.match(a.stderr, /seed 3/, "the seed line goes to stderr so stdout stays JSON");
});

void test("--pcap is read back by our reader and by tshark without malformed packets", () => {
  const file = join(TMP, "lossy.pcap");
  const r = chimney("run", "scenarios/lossy-flapping.yaml", "--pcap", file);
  assert.equal(r.code, 0, r.stderr);
  const cap = parsePcap(new Uint8Array(readFileSync(file)));
  assert.ok(cap.ok, "our reader parses it");
  assert.ok(cap.value.records.length > 100);
  for (const rec of cap.value.records) assert.equal(decodeFrame(rec.data).error, undefined);
  const all = spawnSync("tshark", ["-r", file], { encoding: "utf8" });
  assert.equal(all.status, 0, all.stderr);
  assert.equal(lines(all.stdout).length, cap.value.records.length);
  const badOnes = spawnSync("tshark", ["-r", file, "-Y", "_ws.malformed || _ws.expert.severity == error"], {
    encoding: "utf8",
  });
  assert.equal(badOnes.status, 0, badOnes.stderr);
  assert.equal(badOnes.stdout, "", "tshark finds no malformed packet");
});

void test("--trace writes tcpdump-style lines with virtual timestamps; --report writes HTML with the seed", () => {
  const trace = join(TMP, "seed.txt");
  const html = join(TMP, "seed.html");
  const r = chimney("run", "scenarios/seed.yaml", "--seed", "9", "--trace", trace, "--report", html);
  assert.equal(r.code, 0, r.stderr);
  const t = lines(readFileSync(trace, "utf8"));
  assert.match(t[0] ?? "", /^0\.000000 a>b ARP, Request who-has 192\.0\.2\.2 tell 192\.0\.2\.1/);
  assert.ok(
    t.some((l) => /^\d+\.\d{6} (a>b|b>a) 192\.0\.2\.\d\.\d+ > 192\.0\.2\.\d\.\d+: Flags \[S\]/.test(l)),
  );
  const page = readFileSync(html, "utf8");
  assert.match(page, /^<!doctype html>/i);
  assert.match(page, /seed <b id="seed">9<\/b>/);
});

void test("a failed verification exits 1 and names the seed", () => {
  const file = join(TMP, "impossible.yaml");
  writeFileSync(
    file,
    "name: impossible\nconnections:\n  - { clientBytes: 1000 }\nexpect:\n  atLeast: { initiates: 3 }\n",
  );
  const r = chimney("run", file, "--seed", "5");
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL {2}expect initiates >= 3/);
  assert.match(r.stderr, /^chimney: verification failed \(seed 5\): expect initiates >= 3; replay: /);
});

const badFiles: [string, string, RegExp][] = [
  [
    "type.yaml",
    "name: x\nconnections:\n  - clientBytes: lots\n",
    /connections\[0\]\.clientBytes: expected a non-negative integer, found "lots"$/,
  ],
  [
    "unknown.yaml",
    "name: x\nhosts: { c: {} }\nconnections:\n  - clientBytes: 1\n",
    /hosts\.c: unknown field \(expected one of: a, b\)$/,
  ],
  [
    "missing.yaml",
    "name: x\nconnections:\n  - port: 80\n",
    /connections\[0\]\.clientBytes: missing \(required\)$/,
  ],
  ["syntax.yaml", "name: x\nconnections: [\n  - clientBytes: 1\n", /line 3, column 3: YAML syntax error: /],
  ["bad.json", '{"name": "x", "connections": [', /bad\.json: not JSON/],
];

for (const [name, text, want] of badFiles) {
  void test(`bad scenario file ${name}: one line naming the file and the field, exit 2`, () => {
    const file = join(TMP, name);
    writeFileSync(file, text);
    const r = chimney("run", file);
    assert.equal(r.code, 2);
    const err = lines(r.stderr);
    assert.equal(err.length, 1, r.stderr);
    assert.ok(err[0]?.startsWith(`chimney: ${file}: `), err[0]);
    assert.match(err[0] ?? "", want);
    assert.equal(r.stdout, "");
  });
}

void test("a nonexistent scenario file: one line, exit 2", () => {
  const r = chimney("run", "scenarios/nope.yaml");
  assert.equal(r.code, 2);
  assert.deepEqual(lines(r.stderr), ["chimney: scenarios/nope.yaml: cannot read (no such file)"]);
});

void test("bad arguments exit 2", () => {
  assert.equal(chimney("run").code, 2);
  assert.equal(chimney("run", "scenarios/seed.yaml", "--seed", "abc").code, 2);
  assert.equal(chimney("run", "scenarios/seed.yaml", "--bogus").code, 2);
  assert.equal(chimney("conformance", "--filter", "(").code, 2);
  assert.equal(chimney("conformance", join(TMP, "no-such-suite")).code, 2);
});

void test("chimney conformance --filter prints the table and exits 0 on the known-failures list", () => {
  const pcaps = join(TMP, "conformance-pcaps");
  const r = chimney("conformance", "--filter", "^rcv-icmp/", "--pcap", pcaps);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // Every failing script (here: the known failures) left a pcap our reader parses.
  const known = /^rcv-icmp\s+12\s+(\d+)\s+(\d+)\s+(\d+)/.exec(lines(r.stdout)[1] ?? "");
  assert.ok(known !== null);
  const failing = Number(known[2]) + Number(known[3]);
  assert.ok(failing > 0, "rcv-icmp has known failures");
  const written = readdirSync(join(pcaps, "rcv-icmp")).filter((f) => f.endsWith(".pcap"));
  assert.equal(written.length, failing);
  for (const f of written) assert.ok(parsePcap(new Uint8Array(readFileSync(join(pcaps, "rcv-icmp", f)))).ok);
  const out = lines(r.stdout);
  assert.match(out[0] ?? "", /^folder\s+scripts\s+pass\s+fail\s+known\s+unexpected-pass\s+pass%$/);
  assert.match(out[1] ?? "", /^rcv-icmp\s+12\s+/);
  assert.match(r.stdout, /\(12 scripts in \d+ ms\)/);
});
