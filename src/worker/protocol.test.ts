// Block trees as they cross between the threads (protocol.ts): a storm's tree of thousands of
// sibling blocks crosses as arrays, in the same shape, packed (tree-pack.ts), through the
// structured clone and back.
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
import { mdlChain, netBuffer } from "../nbl/nbl.js";
import {
  copyBack,
  decodeNb,
  decodeTree,
  encodeTree,
  forEachDesc,
  MdlEncoder,
  SharedSlab,
} from "./protocol.js";
import { packTree, unpackTree } from "./tree-pack.js";

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
  const packed = structuredClone(packTree(encodeTree(root, NO_NBLS_OUT))); // what postMessage does to it
  assert.equal(packed.blocks, 20_001);
  const desc = unpackTree(packed);
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

void test("an NB crosses as shared windows: buffers listed once, plain memory copied once, bytes intact both ways", () => {
  const a = new Uint8Array(new SharedArrayBuffer(64));
  const b = new Uint8Array(new SharedArrayBuffer(64));
  a.forEach((_, i) => (a[i] = i));
  b.forEach((_, i) => (b[i] = 100 + i));
  const plain = Uint8Array.of(7, 8, 9);
  const views = [a.subarray(0, 10), a.subarray(20, 30), b.subarray(5, 9), plain, a.subarray(40, 41)];
  const nb = netBuffer(mdlChain(views), 2, 22);
  const enc = new MdlEncoder(new SharedSlab().alloc);
  const d = structuredClone(enc.nb(nb)); // what postMessage does to it
  assert.equal(enc.copied, 3, "only the plain bytes are copied");
  assert.equal(d.bufs.length, 3, "a, b and the slab the plain bytes went to, each once");
  assert.equal(d.mdls.length, 15);
  const back = decodeNb(d);
  assert.equal(back.dataOffset, 2);
  assert.equal(back.dataLength, 22);
  const got: number[][] = [];
  for (let m = back.mdlChain; m !== null; m = m.next) got.push([...m.view]);
  assert.deepEqual(
    got,
    views.map((v) => [...v]),
  );
  // The views share the sender's memory: a write on one side shows on the other.
  const first = back.mdlChain;
  assert.ok(first !== null);
  first.view[0] = 250;
  assert.equal(a[0], 250);
  // copyBack writes what lies in the copy into the plain original, and leaves shared ones be.
  let m = back.mdlChain;
  for (let i = 0; i < 3 && m !== null; i++) m = m.next;
  assert.ok(m !== null);
  m.view.set([1, 2, 3]);
  copyBack(d, nb);
  assert.deepEqual([...plain], [1, 2, 3]);
});
