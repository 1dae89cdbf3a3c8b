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

/**
 * Where an NBL of a pool is, marked on the NBL itself (`allocatorReserved`): out of the pool
 * with the target, or lent up to the host until `MiniportTcpOffloadReceiveReturn`. A storm hands
 * up an NBL per connection; a set of them grew to about 100,000 entries, and its inserts,
 * deletes and rehashes took a quarter of the target thread's time.
 */
class PoolMark {
  readonly pool: NblPool;
  readonly lent: boolean;
  constructor(pool: NblPool, lent: boolean) {
    this.pool = pool;
    this.lent = lent;
  }
}

/** `chunks` without its empty ones (itself when it has none: most lists are one chunk). */
function nonEmpty(chunks: readonly Uint8Array[]): readonly Uint8Array[] {
  for (const x of chunks) if (x.length === 0) return chunks.filter((y) => y.length > 0);
  return chunks;
}

/** One NBL pool of the target. */
export class NblPool {
  /** Which indications this pool serves. */
  readonly kind: NblPoolKind;
  readonly #ledger: BufferLedger;
  readonly #outMark = new PoolMark(this, false);
  readonly #lentMark = new PoolMark(this, true);
  #out = 0;
  #lent = 0;
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
    // The NB is made here for this NBL alone: the ledger takes it as it is (no copy).
    const nbl = this.#ledger.allocOwn("target", [netBuffer(mdlChain(nonEmpty(chunks)))], op);
    const nbs = this.#ledger.view(nbl, "target", op).length;
    assert(nbs === 1, () => `INIT-4: NBL #${nbl.id} from the ${this.kind} pool carries ${nbs} NBs`);
    nbl.allocatorReserved = this.#outMark;
    this.#out++;
    this.allocated++;
    return nbl;
  }

  /** `nbl`, out of this pool, is now the host's until it is returned (`takeBack`). */
  lend(nbl: NetBufferList): void {
    assert(
      nbl.allocatorReserved === this.#outMark,
      () => `NBL #${nbl.id} lent up twice, or not from the ${this.kind} pool`,
    );
    nbl.allocatorReserved = this.#lentMark;
    this.#lent++;
  }

  /** The NBL is back (returned, refused or freed); false if it was not out of this pool. */
  release(nbl: NetBufferList): boolean {
    const m = nbl.allocatorReserved;
    if (m !== this.#outMark && m !== this.#lentMark) return false;
    if (m === this.#lentMark) this.#lent--;
    this.#out--;
    nbl.allocatorReserved = undefined;
    return true;
  }

  /** The host returned `nbl` (RR-1): false, and nothing changes, unless it was lent up from here. */
  takeBack(nbl: NetBufferList): boolean {
    return nbl.allocatorReserved === this.#lentMark && this.release(nbl);
  }

  /** Whether `nbl` is out of this pool. */
  has(nbl: NetBufferList): boolean {
    const m = nbl.allocatorReserved;
    return m === this.#outMark || m === this.#lentMark;
  }

  /** NBLs from this pool not yet back. */
  get outstanding(): number {
    return this.#out;
  }

  /** NBLs from this pool lent up to the host and not yet returned. */
  get lent(): number {
    return this.#lent;
  }
}
