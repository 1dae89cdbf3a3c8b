// `chimney run` and `chimney conformance` as a user runs them: the built CLI in a child process,
// its exit codes, its one-line errors, and the files it writes (read back by our pcap reader and
// by tshark).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { decodeFrame } from "../src/wire/packet.js";
import { parsePcap } from "../src/wire/pcap.js";
import { repoRoot } from "../src/conformance/peer-suite.js";
import { peerSuiteOrSkip } from "./support/peer-suite.js";

const ROOT = repoRoot();
const CLI = join(ROOT, "dist", "src", "cli", "bin.js");
const TMP = mkdtempSync(join(tmpdir(), "chimney-cli-run-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

function chimney(...args: string[]): { code: number; stdout: string; stderr: string } {
  return chimneyWithEnv({}, ...args);
}

/** `chimney` with extra environment variables. */
function chimneyWithEnv(
  env: Readonly<Record<string, string>>,
  ...args: string[]
): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
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

/** tshark's expert infos of severity warning and above: [group, protocol, summary] per kind. */
function expertWarnings(pcap: string): [string, string, string][] {
  const r = spawnSync("tshark", ["-r", pcap, "-q", "-z", "expert,warn"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const rows: [string, string, string][] = [];
  for (const l of lines(r.stdout)) {
    const m = /^\s+\d+\s+(\S+)\s+(\S+)\s+(.+)$/.exec(l);
    if (m !== null && m[1] !== "Group") rows.push([m[1] ?? "", m[2] ?? "", m[3] ?? ""]);
  }
  return rows;
}

void test("tshark flags nothing but TCP sequence analysis in any shipped scenario's capture, nothing at all in the seed's", () => {
  const files = readdirSync(join(ROOT, "scenarios")).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 5);
  for (const f of files) {
    const pcap = join(TMP, `${f}.pcap`);
    const r = chimney("run", join("scenarios", f), "--pcap", pcap);
    assert.equal(r.code, 0, `${f}: ${r.stderr}`);
    const rows = expertWarnings(pcap);
    // Loss, duplication and reordering make TCP's sequence analysis speak; nothing else may.
    assert.deepEqual(
      rows.filter(([group]) => group !== "Sequence"),
      [],
      `${f}: the pattern payload is not parsed as an application protocol`,
    );
    if (f === "seed.yaml")
      assert.deepEqual(rows, [], "the demo's scenario on a clean link: no warning at all");
  }
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

void test("the summary counts offloads the target completed, not initiates it refused", () => {
  const file = join(TMP, "refused.yaml");
  writeFileSync(
    file,
    [
      "name: refused",
      "description: a target that takes one connection, asked to offload two",
      "hosts:",
      "  b: { limits: { tcp: 1 } }",
      "connections:",
      "  - { id: x, port: 7777, clientBytes: 50000, clientWriteFromMs: 20 }",
      "  - { id: y, port: 7778, clientBytes: 50000, clientWriteFromMs: 20 }",
      "schedule:",
      "  - { atMs: 10, op: offload }",
      "",
    ].join("\n"),
  );
  const r = chimney("run", file, "--seed", "2");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\n {2}1 offload \(1 initiate failed\), 1 terminates, /);
  const j = JSON.parse(chimney("run", file, "--seed", "2", "--json").stdout) as {
    counters: Record<string, number>;
  };
  assert.deepEqual(
    [j.counters["initiates"], j.counters["initiateSuccesses"], j.counters["initiateFailures"]],
    [2, 1, 1],
  );
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

void test("chimney conformance without a suite: where it comes from and how to provide it, exit 2", () => {
  const missing = join(TMP, "no-peer-tests");
  const r = chimneyWithEnv({ CHIMNEY_PEER_SUITE: missing }, "conformance");
  assert.equal(r.code, 2);
  assert.deepEqual(lines(r.stderr), [
    `chimney: freebsd-tcp-testsuite not found at ${join(missing, "freebsd-tcp-testsuite")} (from $CHIMNEY_PEER_SUITE)`,
    "chimney: hint: the suite is freebsd-net/tcp-testsuite, commit 04b8c73fc5081fe3792f1bed9168c9b22aaedddb; " +
      "pass its checkout as DIR, or set CHIMNEY_PEER_SUITE to a folder holding freebsd-tcp-testsuite/ " +
      "(default ../shared/peer-tests beside the repository)",
  ]);
  assert.equal(r.stdout, "");
  const dir = chimney("conformance", join(TMP, "no-such-suite"));
  assert.equal(dir.code, 2);
  assert.match(
    dir.stderr,
    /no such directory \(a packetdrill suite checkout\)\nchimney: hint: the suite is freebsd-net/,
  );
  assert.doesNotMatch(dir.stderr + r.stderr, /ENOENT|at .*\.js:\d+/);
});

void test("chimney conformance finds the suite through CHIMNEY_PEER_SUITE", () => {
  // A one-script suite of our own: a passive open and close.
  const peer = join(TMP, "peer-tests");
  const folder = join(peer, "freebsd-tcp-testsuite", "snd-syn");
  mkdirSync(folder, { recursive: true });
  writeFileSync(
    join(folder, "listen-close-ipv4.pkt"),
    [
      "--ip_version=ipv4",
      "+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
      "+0.00 bind(3, ..., ...) = 0",
      "+0.00 listen(3, 1) = 0",
      "+0.10 < S  0:0(0) win 32767 <mss 1460,sackOK,eol,eol>",
      "+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>",
      "+0.10 < .  1:1(0) ack 1 win 32767",
      "+0.00 accept(3, ..., ...) = 4",
      "+0.00 close(4) = 0",
      "+0.00 > F. 1:1(0) ack 1 win 65535",
      "+0.10 < F. 1:1(0) ack 2 win 32767",
      "+0.00 > . 2:2(0) ack 2 win 65535",
      "+0.00 close(3) = 0",
      "",
    ].join("\n"),
  );
  const r = chimneyWithEnv({ CHIMNEY_PEER_SUITE: peer }, "conformance", "--folder", "snd-syn");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(lines(r.stdout)[1] ?? "", /^snd-syn\s+1\s+1\s+0\s+0\s+0\s+0\s+100/);
  assert.match(r.stdout, /\(1 scripts in \d+ ms\)/);
});

void test("an output path that cannot be written is one line and exit 2 before the run starts", () => {
  const aFile = join(TMP, "a-file");
  writeFileSync(aFile, "");
  const cases: [string[], RegExp][] = [
    [
      ["--pcap", join(TMP, "no-such-folder", "x.pcap")],
      /^chimney: --pcap .*x\.pcap: folder .*no-such-folder does not exist/,
    ],
    [["--report", join(aFile, "x.html")], /^chimney: --report .*x\.html: .*a-file is not a folder/],
    [["--trace", TMP], /^chimney: --trace .*: is a folder, not a file/],
  ];
  for (const [opt, want] of cases) {
    const r = chimney("run", "scenarios/lossy-flapping.yaml", ...opt);
    assert.equal(r.code, 2, `${opt.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.equal(lines(r.stderr).length, 1, r.stderr);
    assert.equal(r.stdout, "", "nothing ran");
  }
  const c = chimney("conformance", "--filter", "^rcv-icmp/", "--pcap", join(aFile, "pcaps"));
  assert.equal(c.code, 2, c.stderr);
  assert.match(c.stderr, /^chimney: --pcap .*pcaps: .*a-file is not a folder/);
  assert.equal(c.stdout, "");
});

void test("chimney conformance --filter prints the table and exits 0 on the known-failures list", (t) => {
  if (peerSuiteOrSkip(t, "freebsd") === undefined) return;
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
  assert.match(
    out[0] ?? "",
    /^folder\s+scripts\s+pass\s+fail\s+known\s+unsupported\s+unexpected-pass\s+pass%$/,
  );
  assert.match(out[1] ?? "", /^rcv-icmp\s+12\s+/);
  assert.match(r.stdout, /\(12 scripts in \d+ ms\)/);
});

void test("chimney conformance --by-folder splits by failure kind; --profile takes freebsd or linux", (t) => {
  if (peerSuiteOrSkip(t, "freebsd") === undefined) return;
  const r = chimney("conformance", "--by-folder", "--folder", "rcv-icmp", "tcp-over-udp");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const out = lines(r.stdout);
  assert.match(
    out[0] ?? "",
    /^folder\s+scripts\s+pass\s+known\s+x-unsupported\s+x-runner\s+x-packet\s+x-timing/,
  );
  assert.match(out[1] ?? "", /^rcv-icmp\s+12\s+11\s+1\s+0\s+0\s+1\s/);
  assert.match(out[2] ?? "", /^tcp-over-udp\s+56\s+0\s+0\s+56\s+0\s+0\s/);
  assert.match(r.stdout, /^all\s+68\s+11\s/m);
  assert.match(r.stdout, /^unsupported: tcp-over-udp 56$/m);
  const bad = chimney("conformance", "--profile", "solaris", "--folder", "rcv-icmp");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--profile: expected one of freebsd, linux, not solaris/);
});

void test("input that asks for absurd work is bad input (exit 2, one line), never a hang or an internal error", () => {
  const base = "name: x\ndescription: y\nconnections:\n  - { id: c, clientBytes: 1000 }\n";
  const write = (name: string, text: string): string => {
    const f = join(TMP, name);
    writeFileSync(f, text);
    return f;
  };
  // An alias "bomb": nine levels of nine aliases each, exponential when expanded.
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  let prev = "a";
  for (let i = 0; i < 8; i++) {
    bomb.push(`b${i}: &b${i} [${Array(9).fill(`*${prev}`).join(",")}]`);
    prev = `b${i}`;
  }
  const fifo = join(TMP, "fifo.yaml");
  spawnSync("mkfifo", [fifo]);
  const steps = Array.from({ length: 10_001 }, (_, i) => `  - { atMs: ${i + 1}, op: query }`).join("\n");
  const cases: [string[], RegExp][] = [
    [["run", "--seed", "1e20", "scenarios/seed.yaml"], /--seed.*positive integer/],
    [["run", write("mss0.yaml", `${base}tcp: { mss: 0 }\n`)], /tcp: mss = 0 is outside/],
    [["run", write("bomb.yaml", `${bomb.join("\n")}\n`)], /alias count/i],
    [["run", "/dev/zero"], /not a regular file/],
    [["run", fifo], /not a regular file/],
    [["run", write("big.yaml", `# ${"x".repeat(1 << 20)}\n${base}`)], /a scenario file is at most/],
    [
      [
        "run",
        write("flap.yaml", `${base}schedule:\n  - { atMs: 1, op: flap, everyMs: 0.001, untilMs: 4000 }\n`),
      ],
      /schedule\[0\]\.everyMs/,
    ],
    [
      [
        "run",
        write("toggles.yaml", `${base}schedule:\n  - { atMs: 1, op: flap, everyMs: 1, untilMs: 200000 }\n`),
      ],
      /toggle \d+ times; at most 100000/,
    ],
    [["run", write("steps.yaml", `${base}schedule:\n${steps}\n`)], /10001 steps; at most 10000/],
    [
      ["run", write("chunk.yaml", "name: x\nconnections:\n  - { id: c, clientBytes: 1000, chunk: 1 }\n")],
      /chunk/,
    ],
    [
      [
        "run",
        write("bytes.yaml", "name: x\nconnections:\n  - { id: c, count: 1000, clientBytes: 1000000000 }\n"),
      ],
      /bytes in all; at most/,
    ],
  ];
  for (const [args, want] of cases) {
    const r = chimney(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, want, args.join(" "));
    assert.doesNotMatch(r.stderr, /ERR_|at .*\.js:\d+/, `${args.join(" ")}: an internal error`);
  }
});
