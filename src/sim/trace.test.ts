import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Instant } from "../time/instant.js";
import { Fnv1a64, fnv1a64, TraceLog } from "./trace.js";

const seedEnv = process.env["FC_SEED"];
const FC_SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x5eed);

/** A reference FNV-1a 64 with bigint over TextEncoder bytes: slow and obviously right. */
function referenceFnv(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(text))
    h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, "0");
}

void describe("FNV-1a 64", () => {
  void test("published test vectors", () => {
    assert.equal(fnv1a64(""), "cbf29ce484222325");
    assert.equal(fnv1a64("a"), "af63dc4c8601ec8c");
    assert.equal(fnv1a64("foobar"), "85944171f73967e8");
    // UTF-8: 2- and 4-byte sequences (checked against a C implementation over the same bytes).
    assert.equal(fnv1a64("h\u00e9llo \u{1f600}"), "7f7121cbd1d0a6ad");
  });

  void test("agrees with a bigint reference on any text, including lone surrogates", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => {
        assert.equal(fnv1a64(s), referenceFnv(s));
      }),
      { seed: FC_SEED, numRuns: 500 },
    );
  });

  void test("incremental updates equal one update over the concatenation; bytes and text agree", () => {
    assert.equal(new Fnv1a64().update("foo").update("bar").hex(), fnv1a64("foobar"));
    assert.equal(
      new Fnv1a64().updateBytes(Uint8Array.of(0x66, 0x6f, 0x6f, 0x62, 0x61, 0x72)).hex(),
      fnv1a64("foobar"),
    );
  });
});

void describe("TraceLog", () => {
  void test("formats canonical lines and digests their text", () => {
    const log = new TraceLog();
    log.record(Instant.fromMicros(1500), "a", "tx", "S 1:1(0) win 65535");
    log.record(Instant.fromMicros(2000), "b", "idle");
    assert.deepEqual(log.lines, ["1500 a tx S 1:1(0) win 65535", "2000 b idle"]);
    assert.equal(log.text(), "1500 a tx S 1:1(0) win 65535\n2000 b idle\n");
    assert.equal(log.digest(), fnv1a64(log.text()));
    assert.equal(log.count, 2);
    const other = new TraceLog();
    other.record(Instant.fromMicros(1500), "a", "tx", "S 1:1(0) win 65535");
    other.record(Instant.fromMicros(2001), "b", "idle");
    assert.notEqual(other.digest(), log.digest());
  });

  void test("a bounded log keeps the newest lines but digests all of them", () => {
    const full = new TraceLog();
    const short = new TraceLog({ keepLines: 3 });
    for (let i = 0; i < 100; i++) {
      full.add(`line ${i}`);
      short.add(`line ${i}`);
    }
    assert.deepEqual(short.lines, ["line 97", "line 98", "line 99"]);
    assert.deepEqual(short.tail(2), ["line 98", "line 99"]);
    assert.equal(short.count, 100);
    assert.equal(short.digest(), full.digest());
    const none = new TraceLog({ keepLines: 0 });
    none.add("x");
    assert.deepEqual(none.lines, []);
  });

  void test("a line with a newline is refused", () => {
    assert.throws(() => new TraceLog().add("a\nb"), { code: "ERR_USAGE" });
  });
});
