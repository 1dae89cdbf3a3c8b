// Checks the mutation-testing setup (`npm run mutate`) without running it: the run takes minutes,
// this takes milliseconds. Every option is one Stryker knows, every folder's globs find files, and
// every listed equivalent mutant still points at a line that exists.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pathToFileURL } from "node:url";

const root = join(import.meta.dirname, "..", "..");

interface Folder {
  readonly mutate: readonly string[];
  readonly tests: readonly string[];
}
interface ConfigModule {
  readonly default: Record<string, unknown> & { tap: Record<string, unknown> };
  readonly folders: Record<string, Folder>;
}
interface Equivalent {
  readonly file: string;
  readonly mutator: string;
  readonly replacement: string;
  readonly code: string;
  readonly reason: string;
}

/** The glob subset the config uses: `**` (any folders), `*` (within a name) and `{a,b}`. */
function globRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (glob.startsWith("**/", i)) {
      re += "(?:.*/)?";
      i += 2;
    } else if (c === "*") re += "[^/]*";
    else if (c === "{") re += "(?:";
    else if (c === "}") re += ")";
    else if (c === ",") re += "|";
    else re += c.replace(/[.+?^$()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The files under `dir` (relative to the root) that the patterns select ("!" excludes). */
function select(dir: string, patterns: readonly string[]): string[] {
  const files = readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }).map((f) =>
    join(dir, f).replaceAll("\\", "/"),
  );
  const take = patterns.filter((p) => !p.startsWith("!")).map(globRegExp);
  const drop = patterns.filter((p) => p.startsWith("!")).map((p) => globRegExp(p.slice(1)));
  return files.filter((f) => take.some((r) => r.test(f)) && !drop.some((r) => r.test(f)));
}

const config = (await import(pathToFileURL(join(root, "stryker.config.mjs")).href)) as ConfigModule;
const schema = JSON.parse(
  readFileSync(join(root, "node_modules/@stryker-mutator/core/schema/stryker-schema.json"), "utf8"),
) as { properties: Record<string, unknown> };
const tapSchema = JSON.parse(
  readFileSync(
    join(root, "node_modules/@stryker-mutator/tap-runner/dist/schema/tap-runner-options.json"),
    "utf8",
  ),
) as { properties: { tap: { properties: Record<string, unknown> } } };

void describe("the Stryker setup (npm run mutate)", () => {
  void test("every option is one Stryker or its tap runner knows", () => {
    const known = new Set([...Object.keys(schema.properties), "tap"]);
    const unknown = Object.keys(config.default).filter((k) => !known.has(k));
    assert.deepEqual(unknown, []);
    const tapKnown = new Set(Object.keys(tapSchema.properties.tap.properties));
    assert.deepEqual(
      Object.keys(config.default.tap).filter((k) => !tapKnown.has(k)),
      [],
    );
    assert.equal(config.default["testRunner"], "tap");
    assert.equal(config.default["coverageAnalysis"], "perTest");
    assert.equal(config.default["incremental"], true);
  });

  void test("each folder mutates source files, no tests, and runs compiled test files that exist", () => {
    assert.deepEqual(Object.keys(config.folders), ["nbl", "chimney", "offload-target", "offload-manager"]);
    for (const [name, folder] of Object.entries(config.folders)) {
      const sources = select("src", folder.mutate);
      assert.ok(sources.length > 0, `${name} mutates nothing`);
      assert.deepEqual(
        sources.filter((f) => !f.endsWith(".ts") || f.endsWith(".test.ts")),
        [],
        `${name} mutates only sources`,
      );
      for (const pattern of folder.tests) {
        assert.ok(pattern.startsWith("dist/") && pattern.endsWith(".test.js"), `${name}: ${pattern}`);
        assert.ok(select("dist", [pattern]).length > 0, `${name}: ${pattern} matches no compiled test`);
      }
    }
    assert.deepEqual(select("src", config.folders["nbl"]!.mutate), [
      "src/nbl/chain.ts",
      "src/nbl/ledger.ts",
      "src/nbl/nbl.ts",
    ]);
    assert.deepEqual(select("src", config.folders["offload-manager"]!.mutate), [
      "src/host/offload-manager.ts",
    ]);
  });

  void test("every listed equivalent mutant names a source line that exists, with a reason", () => {
    const list = JSON.parse(readFileSync(join(root, "stryker-equivalent.json"), "utf8")) as {
      mutants: Equivalent[];
    };
    const seen = new Set<string>();
    for (const e of list.mutants) {
      const where = `${e.file} ${e.mutator} -> ${e.replacement}`;
      const lines = readFileSync(join(root, e.file), "utf8")
        .split("\n")
        .map((l) => l.trim());
      assert.ok(lines.includes(e.code), `${where}: no line \`${e.code}\``);
      assert.ok(e.reason.length > 10 && !e.reason.includes("\n"), `${where}: a one-line reason`);
      const key = `${e.file}|${e.mutator}|${e.replacement}|${e.code}`;
      assert.ok(!seen.has(key), `${where}: listed twice`);
      seen.add(key);
    }
  });
});
