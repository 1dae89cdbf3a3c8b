// Block trees as they cross between the threads (protocol.ts): a storm's tree of thousands of
// sibling blocks crosses as arrays, in the same shape, through the structured clone and back.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type MiniportOffloadContext,
  newBlock,
  type NeighborBlock,
  type OffloadBlockList,
  type PathBlock,
  treeBlocks,
} from "../chimney/block-list.js";
import { decodeTree, encodeTree, forEachDesc } from "./protocol.js";

const NO_NBLS_OUT = {
  chain: () => [],
  buffered: () => null,
  ref: () => {
    throw new Error("no NBLs in this tree");
  },
};
const NO_NBLS_IN = { block: () => ({ chain: null, ref: () => null }) };

function path(i: number): PathBlock {
  return newBlock<PathBlock>({
    layer: "path",
    stateType: "Ip4OffloadDelegatedState",
    miniportOffloadContext: { context: i as MiniportOffloadContext },
    ndisOffloadHandle: undefined,
    constState: undefined,
    cachedState: undefined,
    delegatedState: undefined,
  });
}

void test("a neighbor with 20,000 sibling paths crosses and comes back in the same shape", () => {
  const paths = Array.from({ length: 20_000 }, (_, i) => path(i));
  paths.forEach((p, i) => {
    p.nextBlock = paths[i + 1] ?? null;
  });
  const root = newBlock<NeighborBlock>({
    layer: "neighbor",
    stateType: "NeighborOffloadDelegatedState",
    miniportOffloadContext: { context: -1 as MiniportOffloadContext },
    ndisOffloadHandle: undefined,
    constState: undefined,
    cachedState: undefined,
    delegatedState: undefined,
    dependentBlockList: paths[0] ?? null,
  });
  const desc = structuredClone(encodeTree(root, NO_NBLS_OUT)); // what postMessage does to it
  let count = 0;
  forEachDesc(desc, () => count++);
  assert.equal(count, 20_001);
  const back: OffloadBlockList = decodeTree(desc, NO_NBLS_IN);
  const blocks = treeBlocks(back);
  assert.equal(blocks.length, 20_001);
  assert.deepEqual(
    blocks.slice(0, 3).map((b) => [b.layer, b.miniportOffloadContext?.context]),
    [
      ["neighbor", -1],
      ["path", 0],
      ["path", 1],
    ],
  );
  assert.equal(blocks[20_000]?.miniportOffloadContext?.context, 19_999);
  assert.equal(blocks[20_000]?.nextBlock, null);
});
