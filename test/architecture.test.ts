// Having no I/O is a property of the source tree, so it is tested like one. The lint rules
// overlap on purpose: lint gives editor feedback, this test holds even when lint is skipped.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const PURE = [
  "src/util",
  "src/time",
  "src/wire",
  "src/storage",
  "src/tcp",
  "src/nbl",
  "src/chimney",
  "src/host",
  "src/offload-target",
  "src/node",
  "src/sim",
  "src/scenario",
  "src/report",
];
const FORBIDDEN: [RegExp, string][] = [
  [/from\s+["']node:/, "Node built-in import"],
  [/\bDate\.now\b|\bnew Date\b|\bperformance\.now\b/, "wall clock"],
  [/\bMath\.random\b/, "unseeded randomness"],
  [/\bset(Timeout|Interval|Immediate)\b|\bqueueMicrotask\b/, "real timer"],
  [/\basync\b|\bawait\b|\bPromise\b/, "asynchrony (the core is synchronous)"],
  [/\bprocess\.|\bconsole\./, "process or console"],
];
const NO_CROSS: [string, RegExp][] = [
  ["src/host", /from\s+["'][./]*offload-target\//],
  ["src/offload-target", /from\s+["'][./]*host\//],
];

function sources(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
      .map((f) => join(dir, f));
  } catch {
    return []; // directory not created yet
  }
}

/** Code only: comments may mention what the code must not do. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

void test("the core performs no I/O, reads no clock and draws no unseeded randomness", () => {
  const files = PURE.flatMap(sources);
  assert.ok(files.length >= 5, `expected core sources under src/, found ${files.length}`);
  const problems = files.flatMap((file) => {
    const text = code(readFileSync(file, "utf8"));
    return FORBIDDEN.filter(([re]) => re.test(text)).map(([, what]) => `${file}: ${what}`);
  });
  assert.deepEqual(problems, []);
});

void test("the scanner fires on planted violations and ignores them in comments", () => {
  const planted = 'import { x } from "node:fs";\nexport const t = () => Date.now() + Math.random();';
  const found = FORBIDDEN.filter(([re]) => re.test(code(planted))).map(([, what]) => what);
  assert.deepEqual(found, ["Node built-in import", "wall clock", "unseeded randomness"]);
  assert.deepEqual(
    FORBIDDEN.filter(([re]) => re.test(code("// Date.now() is not used\n/* setTimeout */"))),
    [],
  );
});

void test("host and target depend on each other only through chimney/", () => {
  const problems = NO_CROSS.flatMap(([dir, re]) =>
    sources(dir).filter((f) => re.test(readFileSync(f, "utf8"))),
  );
  assert.deepEqual(problems, []);
});
