// `chimney report TIMELINE.json -o FILE.html`: renders a saved run, and says in one line what is
// wrong with a file that is not one. `chimney run --timeline` writes what it reads.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseTimeline } from "../src/report/parse.js";
import { sampleTimeline } from "./support/sample-timeline.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli", "bin.js");
const SCENARIOS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "scenarios");
const dir = mkdtempSync(join(tmpdir(), "chimney-report-cli-"));

function run(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

void describe("chimney report", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  void test("renders a timeline file into one HTML page and exits 0", () => {
    const input = join(dir, "run.json");
    const output = join(dir, "run.html");
    const t = sampleTimeline({ segments: 200, seed: 7 });
    writeFileSync(input, JSON.stringify(t));
    const r = run("report", input, "-o", output);
    assert.equal(r.code, 0, r.stderr);
    const html = readFileSync(output, "utf8");
    assert.match(r.stdout, new RegExp(`wrote .*run\\.html \\(${Buffer.byteLength(html)} bytes\\)`));
    assert.match(html, /seed <b id="seed">7<\/b>/);
    assert.match(html, /data-connection="c3"/);
  });

  void test("a missing, non-JSON or wrongly shaped file is one line naming the problem, exit 2", () => {
    const notJson = join(dir, "bad.json");
    writeFileSync(notJson, "{ this is not json");
    const wrong = join(dir, "wrong.json");
    const t = JSON.parse(JSON.stringify(sampleTimeline({ segments: 10 }))) as {
      segments: { atUs: unknown }[];
    };
    t.segments[3]!.atUs = "soon";
    writeFileSync(wrong, JSON.stringify(t));
    const out = join(dir, "never.html");
    const cases: [string, RegExp][] = [
      [join(dir, "missing.json"), /^chimney: .*missing\.json: cannot read \(ENOENT\)\n$/],
      [notJson, /^chimney: .*bad\.json: not JSON \(.+\)\n$/],
      [
        wrong,
        /^chimney: .*wrong\.json: not a timeline: segments\[3\]\.atUs: expected a finite number, found the string "soon"\n$/,
      ],
    ];
    for (const [file, message] of cases) {
      const r = run("report", file, "-o", out);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
    const noOut = run("report", wrong);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /--output/);
  });

  void test("run --timeline writes the JSON that report renders into the page run --report writes", () => {
    const seed = 2;
    const json = join(dir, "seed-run.json");
    const direct = join(dir, "seed-run-direct.html");
    const later = join(dir, "seed-run-later.html");
    const scenario = join(SCENARIOS, "seed.yaml");
    const r = run("run", scenario, "--seed", String(seed), "--timeline", json, "--report", direct);
    assert.equal(r.code, 0, `chimney run seed.yaml --seed ${seed}: ${r.stderr}`);
    const parsed = parseTimeline(JSON.parse(readFileSync(json, "utf8")));
    assert.ok(parsed.ok, "the file is a timeline");
    assert.equal(parsed.value.seed, seed);
    assert.deepEqual(
      parsed.value.connections.map((c) => c.id),
      ["c1"],
    );
    assert.ok(parsed.value.nbls.length > 0 && parsed.value.nbls.every((n) => n.connection === "c1"));
    const rep = run("report", json, "-o", later);
    assert.equal(rep.code, 0, rep.stderr);
    assert.equal(readFileSync(later, "utf8"), readFileSync(direct, "utf8"), "the same page either way");
  });

  void test("run --timeline to a path that cannot be written is one line, exit 2", () => {
    const r = run("run", join(SCENARIOS, "seed.yaml"), "--timeline", join(dir, "no-such-dir", "t.json"));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^chimney: .*no-such-dir\/t\.json: cannot write \(ENOENT\)\n$/);
  });
});
