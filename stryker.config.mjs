// @ts-check
// Mutation testing with StrykerJS (run it with `npm run mutate`; see scripts/mutate.mjs).
//
// Stryker instruments the TypeScript sources with every mutant at once (mutant schemata) in a
// sandbox copy, `tsc -b` compiles the sandbox once, and the tap runner runs each compiled test
// file with `node` (node:test prints TAP when its output is not a terminal). The active mutant is
// picked by an environment variable, so nothing is recompiled per mutant. Coverage is per test
// file: a mutant runs only the files that executed it in the dry run.
//
// Each folder lists the test files meant to pin it down: its own unit tests and the contract tests
// that name its rules. Every listed file runs once per surviving mutant it covers, so the list is
// kept short; the differential (about 11 s a file) is left out, `npm run test:deep` is its place.
// So is chimney-mutants: it patches compiled text that Stryker's instrumentation rewrites, and
// runs the scenarios of contract-checks (listed here) in child processes.

/** The folders `npm run mutate` knows, with the sources it mutates and the tests it runs. */
export const folders = {
  nbl: {
    mutate: ["src/nbl/**/*.ts", "!src/nbl/**/*.test.ts"],
    tests: ["dist/src/nbl/*.test.js", "dist/test/offload-target/contract-checks.test.js"],
  },
  chimney: {
    mutate: ["src/chimney/**/*.ts", "!src/chimney/**/*.test.ts"],
    tests: [
      "dist/src/chimney/*.test.js",
      "dist/test/chimney-operations.test.js",
      "dist/test/offload-target/{chimney-rules,chimney-untested-rules,tcp-rules,contract-checks}.test.js",
    ],
  },
  "offload-target": {
    mutate: ["src/offload-target/**/*.ts", "!src/offload-target/**/*.test.ts"],
    tests: [
      "dist/test/offload-target/*.test.js",
      "dist/test/chimney-{operations,host-guarantees,host-rules,node}.test.js",
      "dist/test/{offload-*,target-held-compaction}.test.js",
    ],
  },
  "offload-manager": {
    mutate: ["src/host/offload-manager*.ts", "!src/host/**/*.test.ts"],
    tests: [
      "dist/test/chimney-{operations,host-guarantees,host-rules}.test.js",
      "dist/test/offload-target/contract-checks.test.js",
      "dist/test/{host-handoff,offload-icmp,upload-storm}.test.js",
      // The socket layer and node over the manager, each under 2.5 s.
      "dist/test/{chimney-node,socket-offload,offload-recv-pool,offload-indicate-receive-time,send-backlog}.test.js",
    ],
  },
};

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  packageManager: "npm",
  testRunner: "tap",
  plugins: ["@stryker-mutator/tap-runner"],
  tap: {
    testFiles: Object.values(folders).flatMap((f) => f.tests),
    // Each test file runs on its own, printing TAP.
    nodeArgs: ["--test-reporter=tap", "{{testFile}}"],
    forceBail: true,
  },
  mutate: Object.values(folders).flatMap((f) => f.mutate),
  buildCommand: "tsc -b",
  // The sandbox compiles from scratch: an old dist/ is not copied in.
  // native/build comes along: tests of the hand-off (host-handoff) load the addon.
  ignorePatterns: ["/dist", "/out", "*.pcap", "*.pcapng"],
  coverageAnalysis: "perTest",
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  reporters: ["clear-text", "progress", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/mutation.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  cleanTempDir: true,
  timeoutMS: 5000,
  thresholds: { high: 90, low: 85 },
};
