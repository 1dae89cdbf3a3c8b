// Finding the peer test suites (src/conformance/peer-suite.ts), and what the tests that read them
// do when they are missing: each skips visibly with the hint, or fails when
// CHIMNEY_REQUIRE_PEER_SUITE=1. The test files run in child processes with the environment set.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  findPeerSuite,
  PEER_SUITE_HINT,
  peerSuiteRequired,
  peerTestsDir,
  repoRoot,
} from "../src/conformance/peer-suite.js";

const TMP = mkdtempSync(join(tmpdir(), "chimney-peer-suite-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

void test("CHIMNEY_PEER_SUITE names the peer-tests folder; each suite is a folder inside it", () => {
  const peer = join(TMP, "peer");
  mkdirSync(join(peer, "freebsd-tcp-testsuite"), { recursive: true });
  const env = { CHIMNEY_PEER_SUITE: peer };
  assert.equal(peerTestsDir(env), peer);
  assert.deepEqual(findPeerSuite("freebsd", env), { found: true, dir: join(peer, "freebsd-tcp-testsuite") });
  assert.deepEqual(findPeerSuite("google", env), {
    found: false,
    dir: join(peer, "google-packetdrill"),
    reason: `google-packetdrill not found at ${join(peer, "google-packetdrill")} (from $CHIMNEY_PEER_SUITE)`,
  });
});

void test("without CHIMNEY_PEER_SUITE (or with it empty) the suite is ../shared/peer-tests beside the repository", () => {
  const want = join(repoRoot(), "..", "shared", "peer-tests");
  assert.equal(peerTestsDir({}), want);
  assert.equal(peerTestsDir({ CHIMNEY_PEER_SUITE: "" }), want);
  assert.equal(findPeerSuite("freebsd", {}).dir, join(want, "freebsd-tcp-testsuite"));
  const missing = findPeerSuite("freebsd", { CHIMNEY_PEER_SUITE: join(TMP, "none") });
  assert.ok(!missing.found);
  assert.match(missing.reason, /from \$CHIMNEY_PEER_SUITE/);
});

void test("only CHIMNEY_REQUIRE_PEER_SUITE=1 makes a missing suite a failure", () => {
  assert.equal(peerSuiteRequired({ CHIMNEY_REQUIRE_PEER_SUITE: "1" }), true);
  assert.equal(peerSuiteRequired({ CHIMNEY_REQUIRE_PEER_SUITE: "0" }), false);
  assert.equal(peerSuiteRequired({}), false);
});

/** Every test file that reads the suite, and a name pattern choosing its tests that do. */
const SUITE_TESTS: readonly { readonly file: string; readonly pattern: string; readonly tests: number }[] = [
  { file: "dist/test/conformance/suite.test.js", pattern: ".", tests: 12 },
  { file: "dist/test/conformance.test.js", pattern: ".", tests: 2 },
  { file: "dist/test/cli-run.test.js", pattern: "exits 0 on the known-failures list", tests: 1 },
];

function runTestFile(
  file: string,
  pattern: string,
  env: Readonly<Record<string, string>>,
): { code: number; out: string } {
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  if (env["CHIMNEY_REQUIRE_PEER_SUITE"] === undefined) delete childEnv["CHIMNEY_REQUIRE_PEER_SUITE"];
  // The child is a test run of its own, not a subtest of this one.
  delete childEnv["NODE_TEST_CONTEXT"];
  const r = spawnSync(
    process.execPath,
    ["--test", "--test-reporter=tap", `--test-name-pattern=${pattern}`, file],
    { cwd: repoRoot(), encoding: "utf8", timeout: 120_000, env: childEnv },
  );
  return { code: r.status ?? -1, out: r.stdout + r.stderr };
}

for (const { file, pattern, tests } of SUITE_TESTS) {
  void test(`${file} without the peer suite: skips visibly, or fails when it is required`, () => {
    const absent = join(TMP, "absent");
    const skipped = runTestFile(file, pattern, { CHIMNEY_PEER_SUITE: absent });
    assert.equal(skipped.code, 0, skipped.out);
    const skips = skipped.out.split("\n").filter((l) => l.includes(`# SKIP ${PEER_SUITE_HINT}`));
    assert.equal(skips.length, tests, skipped.out);
    assert.ok(
      skips.every((l) => l.includes(`not found at ${absent}`)),
      skipped.out,
    );

    const required = runTestFile(file, pattern, {
      CHIMNEY_PEER_SUITE: absent,
      CHIMNEY_REQUIRE_PEER_SUITE: "1",
    });
    assert.notEqual(required.code, 0, required.out);
    assert.match(required.out, new RegExp(`# fail ${tests}\\b`), required.out);
    assert.match(required.out, /CHIMNEY_REQUIRE_PEER_SUITE=1 makes this a failure/);
  });
}
