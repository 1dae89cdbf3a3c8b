import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../util/errors.js";
import {
  advanceNetBuffer,
  cloneNetBuffer,
  mdl,
  mdlChain,
  mdlChainLength,
  netBuffer,
  netBufferOf,
} from "./nbl.js";

void describe("mdl", () => {
  void test("wraps a window of the caller's bytes without copying", () => {
    const bytes = Uint8Array.of(1, 2, 3, 4, 5);
    const m = mdl(bytes, 1, 3);
    assert.equal(m.bytes, bytes);
    assert.deepEqual([m.offset, m.length, m.next], [1, 3, null]);
    assert.equal(mdl(bytes, 2).length, 3, "the default length runs to the end");
    assert.deepEqual(Array.from(m.view), [2, 3, 4]);
    assert.equal(m.view.buffer, bytes.buffer, "the cached view shares the bytes");
    assert.equal(mdl(bytes).view, bytes, "a whole array is its own view");
  });
  void test("rejects windows outside the bytes", () => {
    const bytes = new Uint8Array(4);
    for (const [off, len] of [
      [-1, 1],
      [0, 5],
      [3, 2],
      [1.5, 1],
    ] as const) {
      assert.throws(() => mdl(bytes, off, len), UsageError, `[${off}, +${len})`);
    }
  });
  void test("mdlChain links one MDL per array in order; mdlChainLength sums them", () => {
    const a = Uint8Array.of(1, 2);
    const b = new Uint8Array(0);
    const c = Uint8Array.of(3);
    const chain = mdlChain([a, b, c]);
    assert.equal(chain?.bytes, a);
    assert.equal(chain?.next?.bytes, b);
    assert.equal(chain?.next?.next?.bytes, c);
    assert.equal(chain?.next?.next?.next, null);
    assert.equal(chain?.view, a);
    assert.equal(mdlChainLength(chain), 3);
    assert.equal(mdlChain([]), null);
    assert.equal(mdlChainLength(null), 0);
  });
});

void describe("netBuffer", () => {
  void test("locates the current MDL for a data offset, skipping empty MDLs", () => {
    const a = Uint8Array.of(1, 2);
    const empty = new Uint8Array(0);
    const c = Uint8Array.of(3, 4, 5);
    const nb = netBuffer(mdlChain([a, empty, c]), 2, 2);
    assert.equal(nb.currentMdl?.bytes, c);
    assert.deepEqual([nb.currentMdlOffset, nb.dataOffset, nb.dataLength], [0, 2, 2]);
  });
  void test("a window at the very end has no current MDL", () => {
    const nb = netBuffer(mdlChain([Uint8Array.of(1)]), 1);
    assert.deepEqual([nb.currentMdl, nb.currentMdlOffset, nb.dataLength], [null, 0, 0]);
  });
  void test("rejects a window that does not fit the MDL chain", () => {
    const chain = mdlChain([new Uint8Array(3)]);
    assert.throws(() => netBuffer(chain, 4), UsageError);
    assert.throws(() => netBuffer(chain, 1, 3), UsageError);
    assert.throws(() => netBuffer(chain, -1), UsageError);
  });
  void test("netBufferOf covers all the given arrays", () => {
    const nb = netBufferOf(Uint8Array.of(1), Uint8Array.of(2, 3));
    assert.deepEqual([nb.dataOffset, nb.dataLength], [0, 3]);
  });
});

void describe("advanceNetBuffer (NdisAdvanceNetBufferDataStart)", () => {
  void test("moves the data start across MDLs and keeps the current-MDL invariant", () => {
    const a = Uint8Array.of(1, 2);
    const b = Uint8Array.of(3, 4, 5);
    const nb = netBufferOf(a, b);
    advanceNetBuffer(nb, 1);
    assert.deepEqual([nb.currentMdl?.bytes, nb.currentMdlOffset, nb.dataOffset, nb.dataLength], [a, 1, 1, 4]);
    advanceNetBuffer(nb, 1);
    assert.deepEqual([nb.currentMdl?.bytes, nb.currentMdlOffset, nb.dataOffset, nb.dataLength], [b, 0, 2, 3]);
    advanceNetBuffer(nb, 3);
    assert.deepEqual([nb.currentMdl, nb.currentMdlOffset, nb.dataOffset, nb.dataLength], [null, 0, 5, 0]);
  });
  void test("refuses to advance past the data or by a bad count", () => {
    const nb = netBufferOf(Uint8Array.of(1, 2));
    assert.throws(() => advanceNetBuffer(nb, 3), { message: "cannot advance a NET_BUFFER of 2 bytes by 3" });
    assert.throws(() => advanceNetBuffer(nb, -1), UsageError);
    assert.throws(() => advanceNetBuffer(nb, 0.5), UsageError);
    assert.equal(nb.dataLength, 2, "a refused advance changes nothing");
  });
  void test("cloneNetBuffer gives an independent descriptor over the same MDLs", () => {
    const nb = netBufferOf(Uint8Array.of(1, 2, 3));
    const copy = cloneNetBuffer(nb);
    advanceNetBuffer(copy, 2);
    assert.equal(nb.dataLength, 3);
    assert.equal(copy.dataLength, 1);
    assert.equal(copy.mdlChain, nb.mdlChain);
  });
});
