// The TAP addon is optional: the install script skips it with one line when the tools are
// missing, prints node-gyp's log only when a build fails, and never fails the install; the
// live link then throws a typed error that says how to build it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadTapAddon, NativeAddonMissingError } from "../src/device/native.js";
import { barePath } from "./support/bare-path.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BUILD = join(ROOT, "native", "build.sh");

function build(
  args: string[],
  env: NodeJS.ProcessEnv,
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync("/bin/sh", [BUILD, ...args], { encoding: "utf8", env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

void describe("native/build.sh (the install script)", () => {
  const bare = barePath();
  const bin = bare.dir;
  after(() => {
    bare.remove();
  });

  void test("--optional without python3/make/g++: exit 0 and one line naming them and the fix", () => {
    const r = build(["--optional"], { PATH: bin });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stdout);
    assert.match(lines[0] ?? "", /^chimney: native TAP addon not built: missing python3 make g\+\+; skipped/);
    assert.match(lines[0] ?? "", /npm run build:native/);
  });

  void test("without --optional (npm run build:native) the same machine fails with exit 1", () => {
    const r = build([], { PATH: bin });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /missing python3 make g\+\+/);
  });

  void test("--optional with a failing build: exit 0, node-gyp's log on stderr, one line on stdout", () => {
    const r = build(["--optional"], {
      ...process.env,
      npm_config_node_gyp: join(bin, "no-such-node-gyp.js"),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no-such-node-gyp\.js/, "the failed build's log is shown");
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stdout);
    assert.match(lines[0] ?? "", /build failed .*skipped/);
  });
});

void test("the live link without the addon throws NativeAddonMissingError naming the fix", () => {
  const missing = join(tmpdir(), "chimney-no-such-dir", "chimney_tap.node");
  assert.throws(
    () => loadTapAddon(missing),
    (e: unknown) => {
      assert.ok(e instanceof NativeAddonMissingError);
      assert.equal(e.code, "ERR_NATIVE_ADDON_MISSING");
      assert.equal(e.path, missing);
      assert.match(e.message, /npm run build:native/);
      assert.match(e.message, /sh native\/build\.sh/);
      assert.match(e.message, /python3, make and g\+\+/);
      return true;
    },
  );
});
