/**
 * The target's NBL pools (spec digest 3.4). INIT-3: two pools made at initialization, one for
 * chimney receive indications (`NdisTcpOffloadReceiveHandler`, and BufferedData handed up at
 * terminate) and one for non-offload indications (`NdisMIndicateReceiveNetBufferLists`).
 * INIT-4: every NBL taken from a pool carries exactly one NB (checked on every allocation).
 * RI-5: chimney receive indications use their own pool, never the non-offload one.
 * (In this model the non-offload path hands frames up as bytes, `OffloadHost.indicateReceive`,
 * so the non-offload pool exists for the INIT-3 shape but allocates nothing yet.)
 *
 * The pools allocate through the shared `BufferLedger`, owned by the target; an NBL stays counted
 * as outstanding from `alloc` until `release` (when it came back, RR-1) so the adapter can refuse
 * to close while any is out (RR-3 / TM-22).
 */
import type { BufferLedger } from "../nbl/ledger.js";
import { mdlChain, type NetBufferList, netBuffer } from "../nbl/nbl.js";
import { assert } from "../util/errors.js";

/** Which pool (INIT-3). */
export type NblPoolKind = "chimney-receive" | "non-offload-receive";

/** One NBL pool of the target. */
export class NblPool {
  /** Which indications this pool serves. */
  readonly kind: NblPoolKind;
  readonly #ledger: BufferLedger;
  readonly #out = new Set<NetBufferList>();
  /** NBLs handed out since creation. */
  allocated = 0;

  constructor(kind: NblPoolKind, ledger: BufferLedger) {
    this.kind = kind;
    this.#ledger = ledger;
  }

  /**
   * An NBL owned by the target with exactly one NB over `chunks` (one MDL per non-empty chunk,
   * zero-copy). INIT-4 is asserted on the NBL the ledger built.
   */
  alloc(chunks: readonly Uint8Array[], op: string): NetBufferList {
    const nbl = this.#ledger.alloc("target", [netBuffer(mdlChain(chunks.filter((x) => x.length > 0)))], op);
    const nbs = this.#ledger.view(nbl, "target", op).length;
    assert(nbs === 1, () => `INIT-4: NBL #${nbl.id} from the ${this.kind} pool carries ${nbs} NBs`);
    this.#out.add(nbl);
    this.allocated++;
    return nbl;
  }

  /** The NBL is back (returned, refused or freed); false if it was not from this pool. */
  release(nbl: NetBufferList): boolean {
    return this.#out.delete(nbl);
  }

  /** Whether `nbl` is out of this pool. */
  has(nbl: NetBufferList): boolean {
    return this.#out.has(nbl);
  }

  /** NBLs from this pool not yet back. */
  get outstanding(): number {
    return this.#out.size;
  }
}
