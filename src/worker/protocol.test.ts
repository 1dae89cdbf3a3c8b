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
import { packBlocks, packTree, unpackTree } from "./tree-pack.js";
import type { NblId, NetBufferList } from "../nbl/nbl.js";
import type { TcpBlock } from "../chimney/block-list.js";
import type { TcpDelegatedState } from "../chimney/state.js";
import fc from "fast-check";
import type { NblDesc, TreeEncoder } from "./protocol.js";

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

/** A neighbor block over `paths`, linked as siblings in their order. */
function neighborOver(paths: readonly PathBlock[]): NeighborBlock {
  paths.forEach((p, i) => {
    p.nextBlock = paths[i + 1] ?? null;
  });
  return newBlock<NeighborBlock>({
    layer: "neighbor",
    stateType: "NeighborOffloadDelegatedState",
    miniportOffloadContext: { context: -1 as MiniportOffloadContext },
    ndisOffloadHandle: undefined,
    constState: undefined,
    cachedState: undefined,
    delegatedState: undefined,
    dependentBlockList: paths[0] ?? null,
  });
}

void test("a neighbor with 20,000 sibling paths crosses and comes back in the same shape", () => {
  const root = neighborOver(Array.from({ length: 20_000 }, (_, i) => path(i)));
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

// packBlocks against its definition, packTree(encodeTree(...)): the same numbers, references and
// encoder calls for random trees (statuses, slots, states the schemas cover or not, NBL chains,
// BufferedData, NBL references, dependents).
const PACK_SEED =
  process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0xb10c5);

/** Stand-in NBLs: the encoder only follows `next` and reads `id`. */
function fakeChain(ids: readonly number[]): NetBufferList | null {
  let head: NetBufferList | null = null;
  for (let i = ids.length - 1; i >= 0; i--)
    head = { id: ids[i] as NblId, next: head } as unknown as NetBufferList;
  return head;
}

/** An encoder that logs its calls and describes each NBL by its id. */
function loggingEncoder(log: string[]): TreeEncoder {
  const desc = (n: NetBufferList): NblDesc => ({
    home: "w",
    id: n.id,
    back: false,
    status: "NDIS_STATUS_SUCCESS",
    bytesTransferred: n.id * 3,
    receiveNoPush: false,
    receiveBytesTransferred: 0,
    nbs: [],
  });
  const list = (what: string, head: NetBufferList): NblDesc[] => {
    const out: NblDesc[] = [];
    for (let n: NetBufferList | null = head; n !== null; n = n.next) out.push(desc(n));
    log.push(`${what} ${out.map((d) => d.id).join(",")}`);
    return out;
  };
  return {
    chain: (head) => list("chain", head),
    buffered: (head) => (head.id % 2 === 0 ? null : list("buffered", head)),
    ref: (n) => {
      log.push(`ref ${n.id}`);
      return { home: n.id % 2 === 0 ? "h" : "w", id: n.id };
    },
  };
}

interface TcpCase {
  readonly status: TcpBlock["status"];
  readonly slot: string;
  readonly handle: number | undefined;
  readonly state: [number, [number[], number[], number[]]] | undefined;
  readonly chain: number[];
}

function tcpState(extra: number, nbls: readonly (readonly number[])[]): TcpDelegatedState {
  const d: Record<string, unknown> = {
    state: "TcpConnectionEstablished",
    rcvNxt: 3_000_000_000,
    rcvWnd: 65_535,
    sndUna: 17,
    sndNxt: 18,
    sndMax: 19,
    sndWnd: 64_000,
    maxSndWnd: 64_000,
    sendWL1: 5,
    cWnd: 14_600,
    ssThresh: 2 ** 30,
    sRtt: undefined,
    rttVar: 7.5,
    tsRecent: 4_294_967_295,
    tsRecentAge: 0,
    tsTime: 12,
    totalRt: 0,
    dupAckCount: 0,
    sndWndProbeCount: 0,
    keepAliveProbeCount: 0,
    keepAliveTimeoutDelta: 7_200_000_000,
    retransmitCount: 0,
    retransmitTimeoutDelta: undefined,
    sendDataHead: fakeChain(nbls[0] ?? []),
    sendDataTail: fakeChain(nbls[1] ?? []),
    sendBacklogSize: undefined,
    bufferedData: fakeChain(nbls[2] ?? []),
    receiveBacklogSize: 0,
  };
  if (extra === 1) d["bufferedDataUrgent"] = false; // the optional field present
  if (extra === 2) d["somethingElse"] = "cloned whole"; // a field no schema names
  if (extra === 3) delete d["cWnd"]; // a required field missing: cloned whole
  return Object.freeze(d) as unknown as TcpDelegatedState;
}

void test("packBlocks packs what packTree(encodeTree(...)) packs, calling the encoder in the same order", () => {
  const ids = fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 3 });
  const tcpArb: fc.Arbitrary<TcpCase> = fc.record({
    status: fc.constantFrom<TcpBlock["status"]>(undefined, "NDIS_STATUS_SUCCESS", "NDIS_STATUS_FAILURE"),
    slot: fc.constantFrom("none", "new", "ctx"),
    handle: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
    state: fc.option(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.tuple(ids, ids, ids)), { nil: undefined }),
    chain: ids,
  });
  const blockOf = (o: TcpCase, i: number): TcpBlock => {
    const b = newBlock<TcpBlock>({
      layer: "tcp",
      stateType: "TcpOffloadDelegatedState",
      miniportOffloadContext:
        o.slot === "none" ? null : { context: o.slot === "new" ? null : (i as MiniportOffloadContext) },
      ndisOffloadHandle: o.handle as TcpBlock["ndisOffloadHandle"],
      constState: undefined,
      cachedState: undefined,
      delegatedState: o.state === undefined ? undefined : tcpState(o.state[0], o.state[1]),
      netBufferListChain: fakeChain(o.chain),
    });
    b.status = o.status;
    return b;
  };
  fc.assert(
    fc.property(
      fc.array(fc.array(tcpArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
      (groups) => {
        // A neighbor over paths, each path over a group of connections.
        const paths = groups.map((g, pi) => {
          const tcps = g.map((t, i) => blockOf(t, pi * 10 + i));
          tcps.forEach((b, i) => {
            b.nextBlock = tcps[i + 1] ?? null;
          });
          const p = path(pi);
          p.dependentBlockList = tcps[0] ?? null;
          return p;
        });
        const root = neighborOver(paths);
        const viaDescs: string[] = [];
        const direct: string[] = [];
        const want = packTree(encodeTree(root, loggingEncoder(viaDescs)));
        const got = packBlocks(root, loggingEncoder(direct));
        assert.deepEqual(direct, viaDescs, "the encoder's calls");
        assert.equal(got.blocks, want.blocks);
        assert.deepEqual(Array.from(got.nums), Array.from(want.nums));
        assert.deepEqual(got.refs, want.refs);
      },
    ),
    { seed: PACK_SEED, numRuns: 200 },
  );
});
