// State trees packed for the crossing (tree-pack.ts): whatever a tree holds comes back equal
// after pack -> structured clone -> unpack, the schema'd states as numbers, anything else whole.
// fast-check with a fixed seed (printed on failure); FC_SEED=random explores.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { BlockDesc, NbDesc, NblDesc, TreeDesc } from "./protocol.js";
import { packTree, unpackTree } from "./tree-pack.js";

const seedEnv = process.env["FC_SEED"];
const SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x7ee9ac);

/** What a tree looks like after crossing: pack, clone (postMessage), unpack. */
function cross(t: TreeDesc): TreeDesc {
  return unpackTree(structuredClone(packTree(t)));
}

/**
 * `t` with every NB's MDL words as a plain array: they arrive as one (the numbers crossed in
 * the packed tree already), where the structured clone keeps the sender's typed array.
 */
function plainMdls(t: TreeDesc): TreeDesc {
  const nbls = (l: readonly NblDesc[] | null): NblDesc[] | null =>
    l === null
      ? null
      : l.map((d) => ({ ...d, nbs: d.nbs.map((nb) => ({ ...nb, mdls: Array.from(nb.mdls) })) }));
  return t.map((b) => ({
    ...b,
    chain: nbls(b.chain),
    buffered: nbls(b.buffered),
    dependents: plainMdls(b.dependents),
  }));
}

const SAB = [new SharedArrayBuffer(64), new SharedArrayBuffer(128)];

function tcpDelegated(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    state: "TcpConnectionEstablished",
    rcvNxt: 3_000_000_000, // above 2^31: not a small integer
    rcvWnd: 65_535,
    sndUna: 17,
    sndNxt: 17,
    sndMax: 17,
    sndWnd: 64_000,
    maxSndWnd: 64_000,
    sendWL1: 5,
    cWnd: 14_600,
    ssThresh: 2 ** 30,
    sRtt: undefined,
    rttVar: undefined,
    tsRecent: 4_294_967_295,
    tsRecentAge: 0,
    tsTime: 12.5,
    totalRt: 0,
    dupAckCount: 0,
    sndWndProbeCount: 0,
    keepAliveProbeCount: 0,
    keepAliveTimeoutDelta: 7_200_000_000,
    retransmitCount: 0,
    retransmitTimeoutDelta: undefined,
    sendDataHead: { home: "h", id: 4 },
    sendDataTail: { home: "h", id: 5 },
    sendBacklogSize: undefined,
    bufferedData: { home: "w", id: 9 },
    bufferedDataUrgent: true,
    receiveBacklogSize: undefined,
    ...over,
  };
}

function nbl(home: "h" | "w", id: number, nbs: NbDesc[]): NblDesc {
  return {
    home,
    id: id as NblDesc["id"],
    back: home === "h",
    status: "NDIS_STATUS_SUCCESS",
    bytesTransferred: 1024,
    receiveNoPush: true,
    receiveBytesTransferred: 3,
    nbs,
  };
}

function block(o: Partial<BlockDesc> & Pick<BlockDesc, "layer">): BlockDesc {
  return {
    stateType: "TcpOffloadDelegatedState",
    status: undefined,
    slot: null,
    handle: undefined,
    constState: undefined,
    cachedState: undefined,
    delegatedState: undefined,
    chain: null,
    buffered: null,
    dependents: [],
    ...o,
  };
}

void test("a terminate's tree comes back equal: states, NBL descriptors, shared buffers, slots", () => {
  const nb: NbDesc = {
    bufs: [SAB[0] as SharedArrayBuffer],
    mdls: Uint32Array.of(0, 8, 16),
    dataOffset: 2,
    dataLength: 14,
  };
  const nb2: NbDesc = {
    bufs: [SAB[1] as SharedArrayBuffer, SAB[0] as SharedArrayBuffer],
    mdls: Uint32Array.of(0, 0, 100, 1, 40, 4),
    dataOffset: 0,
    dataLength: 104,
  };
  const tcp = block({
    layer: "tcp",
    status: "NDIS_STATUS_SUCCESS",
    slot: { context: 77 as never },
    handle: 1234 as never,
    constState: {
      timestampEnabled: true,
      sackEnabled: false,
      windowScalingEnabled: true,
      remotePort: 80,
      localPort: 50_000,
      sndWindScale: 7,
      rcvWindScale: 14,
      remoteMss: 1460,
      hashValue: 0xdeadbeef,
    },
    delegatedState: tcpDelegated(),
    chain: [nbl("h", 4, [nb]), nbl("h", 5, [nb2])],
    buffered: [nbl("w", 9, [nb2])],
  });
  const path = block({
    layer: "path",
    stateType: "Ip4OffloadState",
    slot: { context: null },
    constState: { sourceAddress: Uint8Array.of(10, 0, 0, 1), destinationAddress: Uint8Array.of(10, 0, 0, 2) },
    cachedState: { pathMtu: 1500 },
    delegatedState: { headerOnly: true },
    dependents: [tcp, block({ layer: "tcp", slot: { context: 78 as never } })],
  });
  const tree: TreeDesc = [
    block({ layer: "neighbor", stateType: "NeighborOffloadState", dependents: [path] }),
  ];
  const back = cross(tree);
  assert.deepStrictEqual(back, plainMdls(tree));
  assert.ok(
    Array.isArray(back[0]?.dependents[0]?.dependents[0]?.buffered?.[0]?.nbs[0]?.mdls),
    "words arrive as an array",
  );
  // Shared buffers stay shared: the NB's views are over the sender's memory.
  const b = back[0]?.dependents[0]?.dependents[0]?.buffered?.[0]?.nbs[0]?.bufs[0];
  assert.ok(b instanceof SharedArrayBuffer);
  new Uint8Array(b)[3] = 42;
  assert.equal(new Uint8Array(SAB[1] as SharedArrayBuffer)[3], 42);
  assert.equal(packTree(tree).blocks, 4);
});

void test("an optional field that is absent arrives as undefined; a field outside the schema keeps the whole state as it was", () => {
  const absent = tcpDelegated();
  delete absent["bufferedDataUrgent"];
  const extra = { ...tcpDelegated(), somethingNew: [1, 2, 3] };
  const notPlain = Object.assign(Object.create({ inherited: 1 }) as object, tcpDelegated());
  const tree: TreeDesc = [
    block({ layer: "tcp", delegatedState: absent }),
    block({ layer: "tcp", delegatedState: extra }),
    block({ layer: "tcp", delegatedState: notPlain }),
    block({ layer: "mystery" as never, delegatedState: { anything: "goes" } }),
  ];
  const back = cross(tree);
  assert.deepStrictEqual(back[0]?.delegatedState, { ...absent, bufferedDataUrgent: undefined });
  assert.deepStrictEqual(back[1]?.delegatedState, extra);
  assert.deepStrictEqual(back[2]?.delegatedState, { ...tcpDelegated() }); // cloned: own fields
  assert.deepStrictEqual(back[3]?.delegatedState, { anything: "goes" });
});

void test("a packed tree that ends early, or has numbers left over, is an error, not a wrong tree", () => {
  const p = packTree([block({ layer: "tcp", delegatedState: tcpDelegated() })]);
  assert.throws(() => unpackTree({ ...p, nums: p.nums.subarray(0, p.nums.length - 3) }), /ended early/);
  const longer = new Float64Array(p.nums.length + 1);
  longer.set(p.nums);
  assert.throws(() => unpackTree({ ...p, nums: longer }), /left over/);
  // A count larger than the numbers left, or negative, sizes no list: an error.
  const huge = Float64Array.from(p.nums);
  huge[0] = 1e9; // the root list's block count
  assert.throws(() => unpackTree({ ...p, nums: huge }), /ended early/);
  const negative = Float64Array.from(p.nums);
  negative[0] = -2;
  assert.throws(() => unpackTree({ ...p, nums: negative }), /bad count -2/);
});

// Any value a state field can hold, and some it should not.
const value = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
  fc.double({ noNaN: false }).filter((x) => !Object.is(x, -0)),
  fc.constantFrom("TcpConnectionEstablished", "TcpConnectionFinWait1", ""),
  fc.string(),
  fc.record({ home: fc.constantFrom("h", "w"), id: fc.nat() }),
  fc.uint8Array({ maxLength: 6 }),
);

const tcpDelegatedArb = fc
  .dictionary(fc.constantFrom(...Object.keys(tcpDelegated())), value, { minKeys: 0 })
  .map((over) => tcpDelegated(over));

const nbArb: fc.Arbitrary<NbDesc> = fc
  .array(fc.tuple(fc.nat(1), fc.nat(64), fc.nat(64)), { maxLength: 4 })
  .chain((mdls) =>
    fc.record({
      bufs: fc.constant(SAB),
      mdls: fc.constant(Uint32Array.from(mdls.flat())),
      dataOffset: fc.nat(64),
      dataLength: fc.nat(4096),
    }),
  );

const nblArb: fc.Arbitrary<NblDesc> = fc.record({
  home: fc.constantFrom("h" as const, "w" as const),
  id: fc.nat().map((x) => x as NblDesc["id"]),
  back: fc.boolean(),
  status: fc.constantFrom("NDIS_STATUS_SUCCESS" as const, "NDIS_STATUS_UPLOAD_IN_PROGRESS" as const),
  bytesTransferred: fc.nat(),
  receiveNoPush: fc.boolean(),
  receiveBytesTransferred: fc.nat(),
  nbs: fc.array(nbArb, { maxLength: 3 }),
});

/** A block with dependents up to `depth` levels below it. */
function blockArb(depth: number): fc.Arbitrary<BlockDesc> {
  return fc.record({
    stateType: fc.constantFrom("TcpOffloadDelegatedState", "Ip4OffloadState", "NeighborOffloadState"),
    layer: fc.constantFrom("tcp" as const, "path" as const, "neighbor" as const),
    status: fc.option(fc.constantFrom("NDIS_STATUS_SUCCESS", "NDIS_STATUS_FAILURE"), {
      nil: undefined,
    }),
    slot: fc.option(fc.record({ context: fc.option(fc.integer(), { nil: null }) }), { nil: null }),
    handle: fc.option(fc.nat(), { nil: undefined }),
    constState: fc.option(fc.record({ remotePort: fc.nat(65_535), localPort: fc.nat(65_535) }), {
      nil: undefined,
    }),
    cachedState: fc.option(fc.dictionary(fc.string(), value, { maxKeys: 4 }), { nil: undefined }),
    delegatedState: fc.option(tcpDelegatedArb, { nil: undefined }),
    chain: fc.option(fc.array(nblArb, { maxLength: 3 }), { nil: null }),
    buffered: fc.option(fc.array(nblArb, { maxLength: 3 }), { nil: null }),
    dependents: depth === 0 ? fc.constant([]) : fc.array(blockArb(depth - 1), { maxLength: 2 }),
  }) as fc.Arbitrary<BlockDesc>;
}

void test("property: any tree crosses equal to what the structured clone alone would give", () => {
  fc.assert(
    fc.property(fc.array(blockArb(2), { minLength: 1, maxLength: 3 }), (tree) => {
      // The reference is the structured clone of the tree itself: what crossed before packing.
      // Packing never loses a field and never changes a value's type.
      assert.deepStrictEqual(cross(tree), plainMdls(structuredClone(tree)));
    }),
    { seed: SEED, numRuns: 300 },
  );
});
