/**
 * Offload block lists and state trees (spec digest 5): NDIS_MINIPORT_OFFLOAD_BLOCK_LIST as the
 * offload target sees it, the OFFLOAD_STATE_TYPE codes, the placeholder / linker / new-offload
 * roles, and the depth-first / breadth-next traversal every target must use (TR-8).
 *
 * A tree has at most three layers: neighbor (bottom) -> path -> TCP (top). `nextBlock` joins
 * blocks of one layer; `dependentBlockList` goes exactly one layer up (TR-1). The host builds the
 * tree and owns it except between `MiniportXxxOffload` and the matching completion, when the
 * target owns it and writes `status` into every block (BL-1) and fills attached structures.
 */
import type { Brand } from "../util/brand.js";
import { InvariantViolation } from "../util/errors.js";
import type { NetBufferList } from "../nbl/nbl.js";
import type { NdisStatus } from "./status.js";
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
} from "./state.js";

/** OFFLOAD_STATE_TYPE (spec 5.2): which structure(s) follow a block. */
export type OffloadStateType =
  | "NeighborOffloadConstState"
  | "NeighborOffloadCachedState"
  | "NeighborOffloadDelegatedState"
  | "NeighborOffloadState"
  | "Ip4OffloadConstState"
  | "Ip4OffloadCachedState"
  | "Ip4OffloadDelegatedState"
  | "Ip4OffloadState"
  | "Ip6OffloadConstState"
  | "Ip6OffloadCachedState"
  | "Ip6OffloadDelegatedState"
  | "Ip6OffloadState"
  | "TcpOffloadConstState"
  | "TcpOffloadCachedState"
  | "TcpOffloadDelegatedState"
  | "TcpOffloadState";

/** The layer a state type belongs to (it lets the target validate links, spec 5.2). */
export type OffloadLayer = "neighbor" | "path" | "tcp";

/** The target's opaque context for an offloaded object (CTX-1, CTX-3): what it writes in the slot. */
export type MiniportOffloadContext = Brand<number, "MiniportOffloadContext">;

/** The handle the target passes back when indicating on an object (CTX-5). */
export type NdisOffloadHandle = Brand<number, "NdisOffloadHandle">;

/**
 * The host memory slot a block's `MiniportOffloadContext` points to. `context` null in an
 * initiate tree = a new object to offload; the target writes its context there on success
 * (CTX-3) and never on failure.
 */
export interface OffloadContextSlot {
  context: MiniportOffloadContext | null;
}

/** Fields every block has, whatever its layer. */
interface BlockCommon {
  /** Header.Type. */
  readonly stateType: OffloadStateType;
  /** Next block of the same layer, or null. */
  nextBlock: OffloadBlockList | null;
  /** First block of the layer above (neighbor -> path -> TCP), or null; always null on TCP blocks. */
  dependentBlockList: OffloadBlockList | null;
  /** Written by the target before completing (BL-1); undefined until then. */
  status: NdisStatus | undefined;
  /** Null = placeholder (TR-3); else the slot holding (or to receive) the target's context. */
  readonly miniportOffloadContext: OffloadContextSlot | null;
  /** Handle for indications on this object (TCP and neighbor blocks). */
  readonly ndisOffloadHandle: NdisOffloadHandle | undefined;
  /**
   * Outstanding send data (initiate: host -> target; terminate: target -> host, BL-2, TM-15);
   * null otherwise. One NB per NBL.
   */
  netBufferListChain: NetBufferList | null;
}

/** A neighbor block with the neighbor structures that follow it (which ones: `stateType`). */
export interface NeighborBlock extends BlockCommon {
  readonly layer: "neighbor";
  constState: NeighborConstState | undefined;
  cachedState: NeighborCachedState | undefined;
  delegatedState: NeighborDelegatedState | undefined;
}

/** A path block. */
export interface PathBlock extends BlockCommon {
  readonly layer: "path";
  constState: PathConstState | undefined;
  cachedState: PathCachedState | undefined;
  delegatedState: PathDelegatedState | undefined;
}

/** A TCP block. */
export interface TcpBlock extends BlockCommon {
  readonly layer: "tcp";
  constState: TcpConstState | undefined;
  cachedState: TcpCachedState | undefined;
  delegatedState: TcpDelegatedState | undefined;
}

/** NDIS_MINIPORT_OFFLOAD_BLOCK_LIST. */
export type OffloadBlockList = NeighborBlock | PathBlock | TcpBlock;

/** The role of a block in an initiate tree (spec 5.4). */
export type BlockRole = "placeholder" | "linker" | "new-offload";

/** Placeholder: no context slot; linker: a slot holding an existing context; new offload: an empty slot. */
export function roleOf(b: OffloadBlockList): BlockRole {
  if (b.miniportOffloadContext === null) return "placeholder";
  return b.miniportOffloadContext.context === null ? "new-offload" : "linker";
}

/** Fields of a new block: everything empty except what the caller gives. */
export function newBlock<L extends OffloadBlockList>(
  fields: Omit<L, "status" | "nextBlock" | "dependentBlockList" | "netBufferListChain"> &
    Partial<Pick<L, "nextBlock" | "dependentBlockList" | "netBufferListChain">>,
): L {
  return {
    nextBlock: null,
    dependentBlockList: null,
    netBufferListChain: null,
    ...fields,
    status: undefined,
  } as L; // every field of L is present: the caller's plus the four defaults
}

/**
 * Visits a tree depth-first / breadth-next (TR-8): a block, then its whole dependent subtree,
 * then its next sibling. `process` returns whether the block succeeded; when it did not, its
 * dependents are not visited but handed to `skip` (IO-11). Returns false as soon as the *root*
 * fails when `stopOnRootFailure` (IO-12), after handing every remaining block to `skip`.
 */
export function visitTree(
  root: OffloadBlockList,
  process: (b: OffloadBlockList) => boolean,
  skip: (b: OffloadBlockList) => void,
  stopOnRootFailure: boolean,
): void {
  const rootOk = process(root);
  if (!rootOk && stopOnRootFailure) {
    forEachInTree(root.dependentBlockList, skip);
    forEachInTree(root.nextBlock, skip);
    return;
  }
  if (root.dependentBlockList !== null) {
    if (rootOk) visitChain(root.dependentBlockList, process, skip);
    else forEachInTree(root.dependentBlockList, skip);
  }
  if (root.nextBlock !== null) visitChain(root.nextBlock, process, skip);
}

function visitChain(
  first: OffloadBlockList,
  process: (b: OffloadBlockList) => boolean,
  skip: (b: OffloadBlockList) => void,
): void {
  for (let b: OffloadBlockList | null = first; b !== null; b = b.nextBlock) {
    const ok = process(b);
    if (b.dependentBlockList !== null) {
      if (ok) visitChain(b.dependentBlockList, process, skip);
      else forEachInTree(b.dependentBlockList, skip);
    }
  }
}

/** Every block of the (sub)tree starting at `first`, in depth-first / breadth-next order. */
export function forEachInTree(first: OffloadBlockList | null, fn: (b: OffloadBlockList) => void): void {
  for (let b = first; b !== null; b = b.nextBlock) {
    fn(b);
    forEachInTree(b.dependentBlockList, fn);
  }
}

/** Every block of a tree as an array, in traversal order (for tests and traces). */
export function treeBlocks(root: OffloadBlockList): OffloadBlockList[] {
  const out: OffloadBlockList[] = [];
  forEachInTree(root, (b) => out.push(b));
  return out;
}

/**
 * OP-2 / BL-1: before a state operation completes, every block of its tree carries a status.
 * Throws `InvariantViolation` naming the operation otherwise (a bug in the completer).
 */
export function assertStatusWritten(root: OffloadBlockList, op: string): void {
  forEachInTree(root, (b) => {
    if (b.status === undefined)
      throw new InvariantViolation(`OP-2: ${op} completing with a block without status`);
  });
}
