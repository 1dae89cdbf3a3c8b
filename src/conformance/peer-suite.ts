/**
 * Where the peer test suites live. They are test data written by others and are not part of the
 * repository: FreeBSD's TCP test suite (freebsd-net/tcp-testsuite, packetdrill scripts written
 * for FreeBSD) and google/packetdrill's own test scripts (written for Linux). Both sit in one
 * "peer-tests" folder:
 *
 *     peer-tests/freebsd-tcp-testsuite/   state-event-engine/, snd-syn/, rcv-icmp/, ...
 *     peer-tests/google-packetdrill/      gtests/net/tcp/, gtests/net/packetdrill/tests/
 *
 * That folder is `$CHIMNEY_PEER_SUITE` when the variable is set (non-empty), else
 * `../shared/peer-tests` beside the repository root. Nothing here reads the scripts; callers get
 * the paths, or the reason the suite is missing with a hint on how to provide it. The CLI
 * (`chimney conformance`) and every test that reads the suite go through `findPeerSuite`.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The environment variable naming the peer-tests folder. */
export const PEER_SUITE_ENV = "CHIMNEY_PEER_SUITE";

/** When this variable is `1`, tests treat a missing peer suite as a failure, not a skip. */
export const REQUIRE_PEER_SUITE_ENV = "CHIMNEY_REQUIRE_PEER_SUITE";

/** Where the FreeBSD suite comes from (the scripts the conformance run replays). */
export const FREEBSD_SUITE_ORIGIN =
  "freebsd-net/tcp-testsuite, commit 04b8c73fc5081fe3792f1bed9168c9b22aaedddb";

/** The sub-folders of a peer-tests folder, one per suite. */
export const PEER_SUITE_FOLDERS = {
  freebsd: "freebsd-tcp-testsuite",
  google: "google-packetdrill",
} as const;

/** Which suite: FreeBSD's tcp-testsuite or google/packetdrill's scripts. */
export type PeerSuiteName = keyof typeof PEER_SUITE_FOLDERS;

/** The one-line advice shown when a suite is missing. */
export const PEER_SUITE_HINT =
  "peer suite not found: set CHIMNEY_PEER_SUITE or put ../shared/peer-tests beside the repository";

/** The repository root: the nearest folder above this module that holds a package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("package.json not found above src/conformance/peer-suite");
    dir = up;
  }
  return dir;
}

/**
 * The peer-tests folder to look in: `$CHIMNEY_PEER_SUITE` (resolved against the working
 * directory) when set and non-empty, else `../shared/peer-tests` beside the repository.
 */
export function peerTestsDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[PEER_SUITE_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return resolve(fromEnv);
  return join(repoRoot(), "..", "shared", "peer-tests");
}

/** Where `peerTestsDir` came from, for messages. */
function source(env: NodeJS.ProcessEnv): string {
  const fromEnv = env[PEER_SUITE_ENV];
  return fromEnv !== undefined && fromEnv !== "" ? `$${PEER_SUITE_ENV}` : "the default beside the repository";
}

/** A suite that was found, or why not. */
export type PeerSuiteLookup =
  | { readonly found: true; readonly dir: string }
  | {
      readonly found: false;
      /** The folder that was looked for. */
      readonly dir: string;
      /** One line: what is missing and where it was looked for. */
      readonly reason: string;
    };

/** Looks for one suite (`freebsd` or `google`) in the peer-tests folder. */
export function findPeerSuite(name: PeerSuiteName, env: NodeJS.ProcessEnv = process.env): PeerSuiteLookup {
  const dir = join(peerTestsDir(env), PEER_SUITE_FOLDERS[name]);
  if (existsSync(dir) && statSync(dir).isDirectory()) return { found: true, dir };
  return {
    found: false,
    dir,
    reason: `${PEER_SUITE_FOLDERS[name]} not found at ${dir} (from ${source(env)})`,
  };
}

/** True when `CHIMNEY_REQUIRE_PEER_SUITE=1`: a missing suite must fail the tests. */
export function peerSuiteRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[REQUIRE_PEER_SUITE_ENV] === "1";
}
