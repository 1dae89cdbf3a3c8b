import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ip, ipEquals, ipKey } from "./ip-addr.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 500 });

const addr = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }),
  fc.uint8Array({ minLength: 16, maxLength: 16 }),
);

void describe(`ipKey (fast-check seed ${SEED}; FC_SEED=random to vary)`, () => {
  void test("one char per byte, in order", () => {
    assert.equal(ipKey(ip("192.0.2.1")), "\u00c0\u0000\u0002\u0001");
    const v6 = ip("2001:db8::ff");
    assert.equal(ipKey(v6).length, 16);
    const key = ipKey(v6);
    assert.deepEqual(
      Array.from({ length: key.length }, (_, k) => key.charCodeAt(k)),
      [...v6],
    );
  });

  void test("equal keys exactly for equal addresses (v4 and v6 never collide)", () => {
    fc.assert(
      fc.property(addr, addr, (a, b) => (ipKey(a) === ipKey(b)) === ipEquals(a, b)),
      { seed: SEED },
    );
    assert.notEqual(ipKey(ip("0.0.0.0")), ipKey(ip("::")));
  });

  void test("the same key for a copy of an address", () => {
    fc.assert(
      fc.property(addr, (a) => ipKey(a) === ipKey(a.slice())),
      { seed: SEED },
    );
  });
});
