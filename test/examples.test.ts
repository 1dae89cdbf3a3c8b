// The documented example runs and says what docs/api.md says it says.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), "..", "examples", "offload-terminate.js");

void test("examples/offload-terminate: all 64 KiB come back as BufferedData and are read in order", () => {
  const r = spawnSync(process.execPath, [EXAMPLE], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split("\n"), [
    "offloaded: offloaded, application has read 0 chunks",
    "back on the host: 65536 bytes came back as BufferedData",
    "read 65536 of 65536 bytes, identical: true",
    "ledger quiescent",
  ]);
});
