// The differential's classification and report, from results made here (the kernel runs are
// in test/cli-conformance-kernel.test.ts, root only).
import assert from "node:assert/strict";
import { test } from "node:test";
import { compareResults, differentialTotals, formatDifferential } from "./differential.js";
import type { ScriptResult } from "./dut.js";

function result(file: string, how: "pass" | "fail" | "unsupported", message?: string): ScriptResult {
  return {
    file,
    passed: how === "pass",
    message: how === "pass" ? undefined : message,
    rulesUsed: [],
    unmapped: [],
    frames: [],
    defines: [],
    offload: undefined,
    failure: how === "pass" ? undefined : how === "unsupported" ? "unsupported" : "packet",
    unsupported: how === "unsupported" ? message : undefined,
  };
}

void test("where one side passes, the other's first failure is the first difference; totals per class", () => {
  const rows = [
    compareResults("a.pkt", result("a.pkt", "pass"), result("a.pkt", "pass")),
    compareResults(
      "b.pkt",
      result("b.pkt", "pass"),
      result("b.pkt", "fail", "b.pkt:9: expected > . got nothing"),
    ),
    compareResults(
      "c.pkt",
      result("c.pkt", "fail", "c.pkt:3: expected > S. got S."),
      result("c.pkt", "pass"),
    ),
    compareResults("d.pkt", result("d.pkt", "fail", "d.pkt:1: x"), result("d.pkt", "fail", "d.pkt:2: y")),
    compareResults("e.pkt", result("e.pkt", "pass"), result("e.pkt", "unsupported", "SO_ZEROCOPY")),
  ];
  assert.equal(rows[0]?.firstDifference, undefined);
  assert.deepEqual(rows[1]?.firstDifference, { side: "ours", message: "b.pkt:9: expected > . got nothing" });
  assert.deepEqual(rows[2]?.firstDifference, { side: "linux", message: "c.pkt:3: expected > S. got S." });
  assert.equal(rows[3]?.firstDifference, undefined);
  assert.deepEqual(rows[4]?.firstDifference, { side: "ours", message: "unsupported: SO_ZEROCOPY" });
  assert.deepEqual(differentialTotals(rows), {
    scripts: 5,
    bothPass: 1,
    linuxOnly: 2,
    oursOnly: 1,
    bothFail: 1,
    unsupported: 1,
  });
  const text = formatDifferential(rows);
  assert.match(
    text,
    /^linux=pass +ours=fail +b\.pkt\n {4}first difference \(ours\): b\.pkt:9: expected > \. got nothing$/m,
  );
  assert.match(text, /^linux=fail +ours=fail +d\.pkt\n {4}linux: d\.pkt:1: x\n {4}ours: +d\.pkt:2: y$/m);
  assert.match(
    text,
    /^differential: 5 scripts; both pass 1, only Linux passes 2, only ours passes 1, both fail 1; 1 unsupported on one side or both$/m,
  );
});
