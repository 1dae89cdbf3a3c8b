// The real Linux kernel as the client of our stack: curl in a namespace, our HTTP server on
// the other side of a TAP device. 64 MB each way, IPv4 and IPv6, sha256 compared.
import assert from "node:assert/strict";
import { writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { patternSha256 } from "../src/live/http-app.js";
import { LIVE_ADDRS } from "../src/live/netns.js";
import { liveHttpHost, payload, runChild, sha256 } from "./support/live.js";

const MB = 1024 * 1024;
const N = 64 * MB;
const SEED = 4;

void describe("kernel curl -> our HTTP server over a TAP device", async () => {
  const { host, accepted } = await liveHttpHost({ tag: "http", seed: SEED });
  const dir = mkdtempSync(join(tmpdir(), "chimney-live-"));
  after(() => {
    host.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const label = host.label;

  for (const [family, addr] of [
    ["IPv4", LIVE_ADDRS.ours4],
    ["IPv6", `[${LIVE_ADDRS.ours6}]`],
  ] as const) {
    void test(`${family}: curl downloads 64 MB; sha256 matches`, async () => {
      const started = performance.now();
      const r = await runChild(
        host.netns.spawn("bash", [
          "-c",
          `set -o pipefail; curl -sS -g --fail -D ${dir}/h-${family} http://${addr}/bytes/${N} | sha256sum; cat ${dir}/h-${family} >&2`,
        ]),
        120_000,
      );
      const secs = (performance.now() - started) / 1000;
      assert.equal(r.code, 0, `${label}: curl failed: ${r.stderr}`);
      const got = r.stdout.split(" ")[0];
      assert.equal(got, patternSha256(N), `${label}: download digest`);
      assert.match(r.stderr, new RegExp(`x-sha256: ${patternSha256(N)}`, "i"), `${label}: header`);
      console.log(`# ${family} download ${((N * 8) / secs / 1e6).toFixed(0)} Mbit/s (${label})`);
    });

    void test(`${family}: curl uploads 64 MB; our server's sha256 matches`, async () => {
      const body = payload(N, SEED);
      const file = join(dir, `up-${family}.bin`);
      writeFileSync(file, body);
      const started = performance.now();
      const r = await runChild(
        host.netns.spawn("curl", ["-sS", "-g", "--fail", "--data-binary", `@${file}`, `http://${addr}/sink`]),
        120_000,
      );
      const secs = (performance.now() - started) / 1000;
      assert.equal(r.code, 0, `${label}: curl failed: ${r.stderr}`);
      assert.equal(r.stdout.trim(), `${N} ${sha256(body)}`, `${label}: upload digest`);
      console.log(`# ${family} upload ${((N * 8) / secs / 1e6).toFixed(0)} Mbit/s (${label})`);
    });
  }

  void test("every request was served on its own connection", () => {
    assert.ok(accepted() >= 4, `${label}: accepted ${accepted()}`);
  });
});
