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

/**
 * The layers, lowest first. A source file may import its own folder and any folder of a lower
 * layer, never one of its own layer or above (so no cycle between folders can form). Folders of
 * one layer are peers that do not know each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["util"],
  ["time"],
  ["wire"],
  ["storage"],
  ["tcp"],
  ["nbl"],
  ["chimney"],
  ["host", "offload-target"],
  ["node"],
  ["device"],
  ["worker"],
  ["sim"],
  ["report"],
  ["scenario"],
  ["socket"],
  ["live"],
  ["conformance"], // its kernel mode makes namespaces with live's cleanup and steering helpers
  ["cli"],
];

/** The `src/<folder>` names that `text` (the source of `file`) imports relatively. */
function importedFolders(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/from\s+["'](\.[^"']*)["']/g)) {
    const target = join(file, "..", m[1] ?? "");
    const rel = target.split(/[\\/]/);
    const at = rel.indexOf("src");
    const folder = at >= 0 ? rel[at + 1] : undefined;
    if (folder !== undefined) out.push(folder);
  }
  return out;
}

void test("every source folder imports only its own layer's folder and the layers below", () => {
  const rank = new Map<string, number>();
  LAYERS.forEach((folders, i) => {
    for (const f of folders) rank.set(f, i);
  });
  const folders = readdirSync("src", { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
  assert.deepEqual(
    folders.filter((f) => !rank.has(f)),
    [],
    "every folder of src/ has a place in LAYERS",
  );
  const problems: string[] = [];
  for (const folder of folders) {
    const mine = rank.get(folder) ?? -1;
    for (const file of sources(join("src", folder))) {
      for (const to of importedFolders(file, code(readFileSync(file, "utf8")))) {
        if (to === folder) continue;
        const theirs = rank.get(to);
        if (theirs === undefined || theirs >= mine) problems.push(`${file} imports src/${to}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

void test("the layer check resolves relative imports to folders, ignoring comments", () => {
  const planted =
    '// from "../cli/main.js"\nimport { Seq } from "../tcp/seq.js";\nimport { x } from "./y.js";';
  assert.deepEqual(importedFolders(join("src", "wire", "x.ts"), code(planted)), ["tcp", "wire"]);
  assert.deepEqual(importedFolders(join("src", "conformance", "runner", "d.ts"), 'from "../../node/n.js"'), [
    "node",
  ]);
});

/** Lines a source file may have before its header must say why it is larger. */
const MAX_LINES = 1200;

void test(`no source file is over ${MAX_LINES} lines without a reason in its header`, () => {
  const problems: string[] = [];
  for (const file of sources("src")) {
    const text = readFileSync(file, "utf8");
    const lines = text.split("\n").length;
    const header = /^\/\*\*[\s\S]*?\*\//.exec(text)?.[0] ?? "";
    if (lines > MAX_LINES && !/\bSize\b:/.test(header)) problems.push(`${file}: ${lines} lines`);
  }
  assert.deepEqual(problems, []);
});

void test("unit tests beside the source stand alone: none imports test/support", () => {
  const tests = readdirSync("src", { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => join("src", f));
  assert.ok(tests.length > 10, `expected unit tests under src/, found ${tests.length}`);
  const problems = tests.filter((f) => /from\s+["'][./]*test\/support\//.test(readFileSync(f, "utf8")));
  assert.deepEqual(problems, []);
});
