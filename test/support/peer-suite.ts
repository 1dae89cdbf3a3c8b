/**
 * The peer test suites for tests that read them. `peerSuiteOrSkip(t, "freebsd")` returns the
 * suite's folder (found by `src/conformance/peer-suite.ts`: `$CHIMNEY_PEER_SUITE`, else
 * `../shared/peer-tests` beside the repository). When it is missing the test is skipped with a
 * visible message naming what is missing and how to provide it, so a fresh clone passes its
 * own tests; with `CHIMNEY_REQUIRE_PEER_SUITE=1` (CI) the absence fails the test instead.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import {
  findPeerSuite,
  PEER_SUITE_HINT,
  type PeerSuiteName,
  peerSuiteRequired,
  REQUIRE_PEER_SUITE_ENV,
} from "../../src/conformance/peer-suite.js";

/** The suite's folder, or undefined after skipping `t` (or failing it, when required). */
export function peerSuiteOrSkip(t: TestContext, name: PeerSuiteName): string | undefined {
  const r = findPeerSuite(name);
  if (r.found) return r.dir;
  if (peerSuiteRequired()) {
    assert.fail(`${PEER_SUITE_HINT} (${r.reason}; ${REQUIRE_PEER_SUITE_ENV}=1 makes this a failure)`);
  }
  t.skip(`${PEER_SUITE_HINT} (${r.reason})`);
  return undefined;
}
