/**
 * State trees packed for the crossing: a `TreeDesc` as one array of numbers and a short list of
 * the values that are not numbers (strings, shared buffers, addresses), so that `postMessage`
 * clones two objects per tree instead of a dozen per block.
 *
 * Why: the structured clone of a terminate storm's completions (per connection: a block, its
 * three states of ~30 named fields each, the BufferedData's NBL and NB descriptors) cost the
 * host ~6 us per connection to read and the worker ~6 us to write, and its garbage was a third
 * of the host's collections. Here the field names never cross: each layer's states are written
 * in the order of a fixed schema (below), each field as a tag and a value.
 *
 * Anything the schemas do not describe (a state object with a field they do not name, a layer
 * without a schema, an object that is not plain data) crosses as it is, in the value list, by
 * the structured clone: packing never loses a field, only speed.
 *
 * The sending side packs straight from its block list (`packBlocks`); `packTree` packs the
 * descriptors `encodeTree` makes, and defines what `packBlocks` must produce.
 */
import type { OffloadBlockList, OffloadLayer } from "../chimney/block-list.js";
import type {
  NeighborCachedState,
  NeighborConstState,
  NeighborDelegatedState,
  PathCachedState,
  PathConstState,
  PathDelegatedState,
  TcpCachedState,
  TcpConstState,
  TcpDelegatedState,
} from "../chimney/state.js";
import type { NblId } from "../nbl/nbl.js";
import { InvariantViolation } from "../util/errors.js";
import type {
  BlockDesc,
  CrossingDelegatedState,
  NbDesc,
  NblDesc,
  NblHome,
  NblRef,
  TreeDesc,
  TreeEncoder,
} from "./protocol.js";
import { NO_BLOCKS } from "./protocol.js";

/** A tree as it crosses: its blocks in pre-order as numbers (`nums`), other values in `refs`. */
export interface PackedTree {
  /** Blocks in the tree, dependents included (what the worker paces its slices by). */
  readonly blocks: number;
  readonly nums: Float64Array;
  readonly refs: readonly unknown[];
}

// Value tags: a value is its tag, then (for some tags) one number.
const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
/** A number: the next slot. */
const T_NUMBER = 4;
/** A string: the next slot is its index in `refs` (each string listed once per tree). */
const T_STRING = 5;
/** Any other value, structured-cloned: the next slot is its index in `refs`. */
const T_CLONED = 6;
/** An `NblRef`: the next two slots are its home (0 host, 1 worker) and id. */
const T_NBLREF = 7;
/** An object of a schema: the next slot is the schema's index, then its fields, in order. */
const T_SCHEMA = 8;

/** The field names of `T`, every one of them (the compiler rejects a list that misses one). */
function fieldsOf<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    k: K &
      ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { missing: Exclude<keyof T, K[number]> }),
  ): readonly string[] => k;
}

/**
 * The schemas: per layer, the fields of its const, cached and delegated states, in the order
 * they are written. A schema's index in `SCHEMAS` is what crosses.
 */
const SCHEMAS: readonly (readonly string[])[] = [
  fieldsOf<NeighborConstState>()(["dlSourceAddress", "vlanId"]),
  fieldsOf<NeighborCachedState>()(["dlDestinationAddress", "hostReachabilityDelta"]),
  fieldsOf<NeighborDelegatedState>()(["nicReachabilityDelta"]),
  fieldsOf<PathConstState>()(["sourceAddress", "destinationAddress"]),
  fieldsOf<PathCachedState>()(["pathMtu"]),
  fieldsOf<PathDelegatedState>()(["headerOnly"]),
  fieldsOf<TcpConstState>()([
    "timestampEnabled",
    "sackEnabled",
    "windowScalingEnabled",
    "remotePort",
    "localPort",
    "sndWindScale",
    "rcvWindScale",
    "remoteMss",
    "hashValue",
  ]),
  fieldsOf<TcpCachedState>()([
    "keepAliveEnabled",
    "naglingEnabled",
    "keepAliveRestart",
    "maxRtRestart",
    "updateRcvWnd",
    "initialRcvWnd",
    "rcvIndicationSize",
    "kaProbeCount",
    "kaTimeout",
    "kaInterval",
    "maxRt",
    "flowLabel",
    "ttlOrHopLimit",
    "tosOrTrafficClass",
    "userPriority",
  ]),
  fieldsOf<CrossingDelegatedState>()([
    "state",
    "rcvNxt",
    "rcvWnd",
    "sndUna",
    "sndNxt",
    "sndMax",
    "sndWnd",
    "maxSndWnd",
    "sendWL1",
    "cWnd",
    "ssThresh",
    "sRtt",
    "rttVar",
    "tsRecent",
    "tsRecentAge",
    "tsTime",
    "totalRt",
    "dupAckCount",
    "sndWndProbeCount",
    "keepAliveProbeCount",
    "keepAliveTimeoutDelta",
    "retransmitCount",
    "retransmitTimeoutDelta",
    "sendDataHead",
    "sendDataTail",
    "sendBacklogSize",
    "bufferedData",
    "bufferedDataUrgent",
    "receiveBacklogSize",
  ]),
];

/** The schema of each layer's const, cached and delegated state (indexes into `SCHEMAS`). */
const LAYER_SCHEMAS: Readonly<Record<OffloadLayer, readonly [number, number, number]>> = {
  neighbor: [0, 1, 2],
  path: [3, 4, 5],
  tcp: [6, 7, 8],
};

/**
 * A schema's writer and reader, generated from its field list (as protobuf-es and avsc generate
 * theirs): a field read by name from objects of one shape, and an object literal built in one
 * step, are what make packing cheaper than the structured clone; a loop over names is not.
 */
interface SchemaCodec {
  /**
   * Writes the fields of `o` (room for 3 slots per field must be there), an absent optional
   * one as undefined (`?: T | undefined`: it arrives as undefined), and returns how many of
   * them `o` has; -1 when a required one is absent (what was written is then abandoned).
   */
  readonly write: (p: Packer, o: Record<string, unknown>) => number;
  readonly read: (u: Unpacker) => Record<string, unknown>;
  /**
   * `write`, with the fields named in `NBL_FIELDS` taken from the arguments instead of `o` (the
   * TCP delegated state's NBLs, as references): the crossing state without a copy of it.
   */
  readonly writeNbls: (
    p: Packer,
    o: object,
    r0: NblRef | null,
    r1: NblRef | null,
    r2: NblRef | null,
  ) => number;
}

/** The TCP delegated state's NBL fields, in the order `writeNbls` takes their references. */
const NBL_FIELDS: readonly (keyof CrossingDelegatedState)[] = [
  "sendDataHead",
  "sendDataTail",
  "bufferedData",
];

/** Fields a state may lack (`?:` in its type): absent, they arrive as undefined. */
const OPTIONAL_FIELDS: ReadonlySet<string> = new Set([
  "bufferedDataUrgent",
] satisfies (keyof CrossingDelegatedState)[]);

function schemaCodec(fields: readonly string[]): SchemaCodec {
  const names = fields.map((f) => JSON.stringify(f));
  // A required field the object lacks cannot be written positionally: -1, and the caller
  // clones the object instead.
  const check = (f: string, name: string): string =>
    OPTIONAL_FIELDS.has(f)
      ? `if (x === undefined && !(${name} in o)) absent++;`
      : `if (x === undefined && !(${name} in o)) return -1;`;
  // The source is built from the schemas' own field names (JSON-quoted), never from input.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const write = new Function(
    "p",
    "o",
    `let absent = 0;
${fields.map((f, i) => `{ const x = o[${names[i]}]; ${check(f, names[i] as string)} p.v(x); }`).join("\n")}
return ${fields.length} - absent;`,
  ) as SchemaCodec["write"];
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const read = new Function(
    "u",
    `return {${names.map((f) => `${f}: u.value()`).join(", ")}};`,
  ) as SchemaCodec["read"];
  const field = (f: string, i: number): string => {
    const ref = NBL_FIELDS.indexOf(f as keyof CrossingDelegatedState);
    return ref >= 0
      ? `p.v(r${ref});`
      : `{ const x = o[${names[i]}]; ${check(f, names[i] as string)} p.v(x); }`;
  };
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const writeNbls = new Function(
    "p",
    "o",
    "r0",
    "r1",
    "r2",
    `let absent = 0;
${fields.map(field).join("\n")}
return ${fields.length} - absent;`,
  ) as SchemaCodec["writeNbls"];
  return { write, read, writeNbls };
}

const CODECS: readonly SchemaCodec[] = SCHEMAS.map(schemaCodec);

/** The packer's numbers between trees (packing is synchronous: one scratch array serves all). */
let scratch = new Float64Array(4096);

/** The numbers of a tree being packed, and its other values. */
class Packer {
  nums = scratch;
  n = 0;
  readonly refs: unknown[] = [];
  readonly #strings = new Map<string, number>();
  readonly #buffers = new Map<SharedArrayBuffer, number>();
  blocks = 0;

  /** Room for `k` more numbers. */
  room(k: number): void {
    if (this.n + k <= this.nums.length) return;
    const grown = new Float64Array(Math.max(this.nums.length * 2, this.n + k));
    grown.set(this.nums.subarray(0, this.n));
    this.nums = grown;
    scratch = grown;
  }

  num(x: number): void {
    this.room(1);
    this.nums[this.n++] = x;
  }

  string(s: string): number {
    return this.#intern(this.#strings, s);
  }

  buffer(b: SharedArrayBuffer): number {
    return this.#intern(this.#buffers, b);
  }

  /** The index of `v` in `refs`, listed once per tree. */
  #intern<K>(seen: Map<K, number>, v: K): number {
    let i = seen.get(v);
    if (i === undefined) {
      i = this.refs.length;
      this.refs.push(v);
      seen.set(v, i);
    }
    return i;
  }

  /** A value with its tag, at most 3 numbers, without a room check (the caller made room). */
  v(x: unknown): void {
    const a = this.nums;
    switch (typeof x) {
      case "number":
        a[this.n++] = T_NUMBER;
        a[this.n++] = x;
        return;
      case "boolean":
        a[this.n++] = x ? T_TRUE : T_FALSE;
        return;
      case "undefined":
        a[this.n++] = T_UNDEFINED;
        return;
      case "string":
        a[this.n++] = T_STRING;
        a[this.n++] = this.string(x);
        return;
      default:
        if (x === null) a[this.n++] = T_NULL;
        else if (typeof x === "object" && isNblRef(x)) {
          a[this.n++] = T_NBLREF;
          a[this.n++] = x.home === "h" ? 0 : 1;
          a[this.n++] = x.id;
        } else {
          this.refs.push(x);
          a[this.n++] = T_CLONED;
          a[this.n++] = this.refs.length - 1;
        }
    }
  }

  value(x: unknown): void {
    this.room(3);
    this.v(x);
  }

  /** A state object by its schema, or cloned whole when the schema does not cover it. */
  state(o: unknown, schema: number | undefined): void {
    if (o === undefined || o === null || typeof o !== "object" || schema === undefined) {
      this.value(o);
      return;
    }
    if (this.#bySchema(o, schema, false, null, null, null)) return;
    this.refs.push(o); // a field the schema does not name: the object as it is
    this.nums[this.n++] = T_CLONED;
    this.nums[this.n++] = this.refs.length - 1;
  }

  /**
   * `o` as the tag and fields of `schema`, the TCP delegated state's NBL fields from `r0..r2`
   * when `nbls` (`writeNbls`); false, with nothing written, when the schema does not cover `o`.
   */
  #bySchema(
    o: object,
    schema: number,
    nbls: boolean,
    r0: NblRef | null,
    r1: NblRef | null,
    r2: NblRef | null,
  ): boolean {
    const codec = CODECS[schema] as SchemaCodec;
    this.room(2 + 3 * (SCHEMAS[schema] as readonly string[]).length);
    const at = this.n;
    this.nums[this.n++] = T_SCHEMA;
    this.nums[this.n++] = schema;
    const written =
      Object.getPrototypeOf(o) !== Object.prototype
        ? -1
        : nbls
          ? codec.writeNbls(this, o, r0, r1, r2)
          : codec.write(this, o as Record<string, unknown>);
    if (written >= 0 && written === ownFields(o)) return true;
    this.n = at;
    return false;
  }

  /**
   * A TCP delegated state as it crosses: its NBL fields as the references `e` gives, written
   * in their place (what `encodeTree` builds a copy of the state for).
   */
  delegatedTcp(d: TcpDelegatedState, e: TreeEncoder, schema: number | undefined): void {
    const head = d.sendDataHead === null ? null : e.ref(d.sendDataHead);
    const tail = d.sendDataTail === null ? null : e.ref(d.sendDataTail);
    const buffered = d.bufferedData === null ? null : e.ref(d.bufferedData);
    if (schema !== undefined && this.#bySchema(d, schema, true, head, tail, buffered)) return;
    // A field the schema does not name: the crossing copy, as `encodeTree` makes it.
    this.value({ ...d, sendDataHead: head, sendDataTail: tail, bufferedData: buffered });
  }

  /** A block's first fields (counted as a block): what both `block` and `liveBlock` start with. */
  #head(
    stateType: string,
    layer: string,
    status: unknown,
    slot: { readonly context: number | null } | null,
    handle: unknown,
  ): void {
    this.blocks++;
    this.room(12);
    const a = this.nums;
    a[this.n++] = this.string(stateType);
    a[this.n++] = this.string(layer);
    this.v(status);
    // The slot: none (a placeholder), a new offload's (no context yet), or a context.
    if (slot === null) a[this.n++] = 0;
    else if (slot.context === null) a[this.n++] = 1;
    else {
      a[this.n++] = 2;
      a[this.n++] = slot.context;
    }
    this.v(handle);
  }

  /** A block list (one level and its dependents) straight from the blocks: see `packBlocks`. */
  blockList(first: OffloadBlockList, e: TreeEncoder): void {
    let count = 0;
    for (let b: OffloadBlockList | null = first; b !== null; b = b.nextBlock) count++;
    this.num(count);
    for (let b: OffloadBlockList | null = first; b !== null; b = b.nextBlock) this.liveBlock(b, e);
  }

  /** One block as `block` packs its `encodeBlock` descriptor, the encoder's calls in its order. */
  liveBlock(b: OffloadBlockList, e: TreeEncoder): void {
    const schemas = LAYER_SCHEMAS[b.layer];
    this.#head(b.stateType, b.layer, b.status, b.miniportOffloadContext, b.ndisOffloadHandle);
    this.state(b.constState, schemas?.[0]);
    this.state(b.cachedState, schemas?.[1]);
    let buffered: NblDesc[] | null = null;
    if (b.layer === "tcp" && b.delegatedState !== undefined) {
      const d = b.delegatedState;
      if (d.bufferedData !== null) buffered = e.buffered(d.bufferedData);
      this.delegatedTcp(d, e, schemas?.[2]);
    } else this.state(b.delegatedState, schemas?.[2]);
    this.nbls(b.netBufferListChain === null ? null : e.chain(b.netBufferListChain));
    this.nbls(buffered);
    if (b.dependentBlockList === null) this.num(0);
    else this.blockList(b.dependentBlockList, e);
  }

  nbls(list: readonly NblDesc[] | null): void {
    if (list === null) {
      this.num(-1);
      return;
    }
    this.num(list.length);
    for (const d of list) {
      this.room(8);
      const a = this.nums;
      let i = this.n;
      a[i++] = d.home === "h" ? 0 : 1;
      a[i++] = d.id;
      a[i++] = d.back ? 1 : 0;
      a[i++] = this.string(d.status);
      a[i++] = d.bytesTransferred;
      a[i++] = d.receiveNoPush ? 1 : 0;
      a[i++] = d.receiveBytesTransferred;
      a[i++] = d.nbs.length;
      this.n = i;
      for (const nb of d.nbs) this.nb(nb);
    }
  }

  nb(d: NbDesc): void {
    const words = d.mdls.length;
    this.room(4 + d.bufs.length + words);
    const a = this.nums;
    let i = this.n;
    a[i++] = d.dataOffset;
    a[i++] = d.dataLength;
    a[i++] = d.bufs.length;
    for (const b of d.bufs) a[i++] = this.buffer(b);
    a[i++] = words;
    for (let k = 0; k < words; k++) a[i++] = d.mdls[k] as number;
    this.n = i;
  }

  tree(t: TreeDesc): void {
    this.num(t.length);
    for (const b of t) this.block(b);
  }

  block(b: BlockDesc): void {
    const schemas = LAYER_SCHEMAS[b.layer] as readonly [number, number, number] | undefined;
    this.#head(b.stateType, b.layer, b.status, b.slot, b.handle);
    this.state(b.constState, schemas?.[0]);
    this.state(b.cachedState, schemas?.[1]);
    this.state(b.delegatedState, schemas?.[2]);
    this.nbls(b.chain);
    this.nbls(b.buffered);
    this.tree(b.dependents);
  }
}

/** How many enumerable fields `o` has (a plain object: Object.prototype has none). */
function ownFields(o: object): number {
  let n = 0;
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  for (const _ in o) n++;
  return n;
}

function isNblRef(v: object): v is NblRef {
  const r = v as Partial<NblRef>;
  return (r.home === "h" || r.home === "w") && typeof r.id === "number" && ownFields(v) === 2;
}

/** Packs `tree` for `postMessage`. */
export function packTree(tree: TreeDesc): PackedTree {
  const p = new Packer();
  p.tree(tree);
  return { blocks: p.blocks, nums: p.nums.slice(0, p.n), refs: p.refs };
}

/**
 * Packs the tree `encodeTree(first, e)` describes, straight from the blocks: the same numbers
 * and references, the encoder called in the same order, without the descriptors of the blocks
 * or the copy of each TCP delegated state (a terminate storm's completions made ~600 bytes of
 * them per connection on the target's thread, and its calls as much on the host's).
 */
export function packBlocks(first: OffloadBlockList, e: TreeEncoder): PackedTree {
  const p = new Packer();
  p.blockList(first, e);
  return { blocks: p.blocks, nums: p.nums.slice(0, p.n), refs: p.refs };
}

/** Reads a packed tree back. */
class Unpacker {
  i = 0;
  readonly #nums: Float64Array;
  readonly #refs: readonly unknown[];

  constructor(p: PackedTree) {
    this.#nums = p.nums;
    this.#refs = p.refs;
  }

  /**
   * The next number, as a small integer when it is one. A number read from a Float64Array is a
   * boxed double until the optimizing compiler sees the code; stored as such into the first
   * objects of a shape, it makes that field a double field for good, and every later read of it
   * boxes again (the host's upload path ran 3x slower that way). `x | 0` gives V8 its small
   * integer. (-0 comes back as 0: no field of a state is ever -0.)
   */
  next(): number {
    if (this.i >= this.#nums.length) throw new InvariantViolation("a packed tree ended early");
    const x = this.#nums[this.i++] as number;
    const small = x | 0;
    return small === x ? small : x;
  }

  ref(): unknown {
    return this.#refs[this.next()];
  }

  value(): unknown {
    const tag = this.next();
    switch (tag) {
      case T_UNDEFINED:
        return undefined;
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_NUMBER:
        return this.next();
      case T_STRING:
      case T_CLONED:
        return this.ref();
      case T_NBLREF: {
        const home: NblHome = this.next() === 0 ? "h" : "w";
        return { home, id: this.next() as NblId } satisfies NblRef;
      }
      case T_SCHEMA: {
        const codec = CODECS[this.next()];
        if (codec === undefined) throw new InvariantViolation("a packed tree names an unknown schema");
        return codec.read(this);
      }
      default:
        throw new InvariantViolation(`a packed tree has an unknown value tag ${tag}`);
    }
  }

  /**
   * A count of items that follow, each at least one number: more than the numbers left means a
   * corrupt tree (and would size an array from garbage).
   */
  #count(n = this.next()): number {
    if (n > this.#nums.length - this.i) throw new InvariantViolation("a packed tree ended early");
    if (!(n >= 0)) throw new InvariantViolation(`a packed tree has a bad count ${n}`);
    return n;
  }

  // Lists are made at their final size: an empty list grown by `push` takes room for 16 items
  // at once, and a storm unpacks a handful of short lists per connection.
  nbls(): NblDesc[] | null {
    const listed = this.next();
    if (listed < 0) return null;
    const count = this.#count(listed);
    const out = new Array<NblDesc>(count);
    for (let k = 0; k < count; k++) {
      const home: NblHome = this.next() === 0 ? "h" : "w";
      const id = this.next() as NblId;
      const back = this.next() === 1;
      const status = this.ref() as NblDesc["status"];
      const bytesTransferred = this.next();
      const receiveNoPush = this.next() === 1;
      const receiveBytesTransferred = this.next();
      const nbCount = this.#count();
      const nbs = new Array<NbDesc>(nbCount);
      for (let j = 0; j < nbCount; j++) nbs[j] = this.nb();
      out[k] = { home, id, back, status, bytesTransferred, receiveNoPush, receiveBytesTransferred, nbs };
    }
    return out;
  }

  nb(): NbDesc {
    const dataOffset = this.next();
    const dataLength = this.next();
    const nBufs = this.#count();
    const bufs = new Array<SharedArrayBuffer>(nBufs);
    for (let k = 0; k < nBufs; k++) bufs[k] = this.ref() as SharedArrayBuffer;
    const words = this.#count();
    const mdls = new Array<number>(words);
    for (let k = 0; k < words; k++) mdls[k] = this.#nums[this.i++] as number;
    return { bufs, mdls, dataOffset, dataLength };
  }

  tree(): TreeDesc {
    const count = this.#count();
    if (count === 0) return NO_BLOCKS; // most blocks have no dependents
    const out = new Array<BlockDesc>(count);
    for (let k = 0; k < count; k++) out[k] = this.block();
    return out;
  }

  block(): BlockDesc {
    const stateType = this.ref() as BlockDesc["stateType"];
    const layer = this.ref() as BlockDesc["layer"];
    const status = this.value() as BlockDesc["status"];
    const slotTag = this.next();
    type Ctx = NonNullable<BlockDesc["slot"]>["context"];
    const slot = slotTag === 0 ? null : { context: slotTag === 1 ? null : (this.next() as Ctx) };
    const handle = this.value() as BlockDesc["handle"];
    const constState = this.value();
    const cachedState = this.value();
    const delegatedState = this.value();
    const chain = this.nbls();
    const buffered = this.nbls();
    const dependents = this.tree();
    return {
      stateType,
      layer,
      status,
      slot,
      handle,
      constState,
      cachedState,
      delegatedState,
      chain,
      buffered,
      dependents,
    };
  }
}

/** The tree `packTree` packed. */
export function unpackTree(p: PackedTree): TreeDesc {
  const u = new Unpacker(p);
  const t = u.tree();
  if (u.i !== p.nums.length) throw new InvariantViolation("a packed tree has numbers left over");
  return t;
}
