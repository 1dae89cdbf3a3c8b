// The documented examples run and say what docs/api.md says they say, and the recipes that
// docs/api.md quotes (marked `<!-- example: examples/<name>.ts -->`) are the files, verbatim.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = join(DIST, "..");

/** Runs a compiled example; asynchronous, so a stuck example cannot block the test runner. */
function runExample(
  name: string,
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(DIST, "examples", `${name}.js`)], { timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (s: string): string[] => s.trimEnd().split("\n");

void test("examples/offload-terminate: all 64 KiB come back as BufferedData and are read in order", () => {
  const r = spawnSync(process.execPath, [join(DIST, "examples", "offload-terminate.js")], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(lines(r.stdout), [
    "offloaded: offloaded, application has read 0 chunks",
    "back on the host: 65536 bytes came back as BufferedData",
    "read 65536 of 65536 bytes, identical: true",
    "ledger quiescent",
  ]);
});

void describe("docs/api.md recipes", () => {
  const doc = readFileSync(join(ROOT, "docs", "api.md"), "utf8");

  void test("every quoted recipe is its examples/ file, verbatim", () => {
    const quoted = [...doc.matchAll(/<!-- example: (examples\/[\w-]+\.ts) -->\n```ts\n([\s\S]*?)```\n/g)];
    assert.deepEqual(
      quoted.map((m) => m[1]),
      ["examples/http-sim.ts", "examples/http-live.ts", "examples/http-offload-mid-response.ts"],
    );
    for (const [, file, code] of quoted) {
      assert.equal(code, readFileSync(join(ROOT, file ?? ""), "utf8"), `${file} differs from its quote`);
    }
  });

  /** The recipe's "It prints:" block in the doc. */
  const printed = (file: string): string[] => {
    const at = doc.indexOf(`<!-- example: examples/${file}.ts -->`);
    const m = /It prints:\n\n```\n([\s\S]*?)```/.exec(doc.slice(at));
    assert.ok(at >= 0 && m !== null, `no output block for ${file}`);
    return lines(m[1] ?? "");
  };

  void test("HTTP on the simulator (seed 42): the body arrives whole over a lossy link", async () => {
    const r = await runExample("http-sim");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), printed("http-sim"));
    assert.match(r.stdout, /lost on the way to the client: [1-9]\d* \(seed 42\)/, "the link did lose frames");
  });

  void test("offload and terminate mid-response (seed 7): every byte, in order, ledger quiescent", async () => {
    const r = await runExample("http-offload-mid-response");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), printed("http-offload-mid-response"));
  });

  void test("HTTP on a TAP device against the kernel (live): curl gets the page and 1 MiB", async () => {
    const r = await runExample("http-live");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), printed("http-live"));
  });
});
