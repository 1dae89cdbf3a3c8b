/**
 * The buffer ledger: the single source of truth for who owns each NET_BUFFER_LIST.
 *
 * Theory of operation. Every NBL is created by `alloc(owner, …)` and from then on has exactly one
 * owner among the parties (`Owner`) until it is `free`d. It changes hands only through named
 * operations, each of which names the NDIS call it stands for in `op` (chimney digest §13.3 and
 * STYLE §3.6):
 *
 * | Chimney call (who allocated the NBLs)                   | Ledger operation                         |
 * |---------------------------------------------------------|------------------------------------------|
 * | `MiniportTcpOffloadSend` (host)                         | `transfer(chain, "host", "target", op)`  |
 * | `NdisTcpOffloadSendComplete`                            | `return(chain, "target", op)`            |
 * | `MiniportTcpOffloadReceive`, `…Forward`, `…Disconnect`  | `transfer(chain, "host", "target", op)`  |
 * | their completions (`NdisTcpOffloadReceiveComplete`, …)  | `return(chain, "target", op)`            |
 * | `NdisTcpOffloadReceiveHandler` indication (target)      | `transfer(nbl, "target", "host", op)`    |
 * | the host refuses it (NOT_ACCEPTED / PARTIALLY_ACCEPTED) | `return(nbl, "host", op)` at once        |
 * | `MiniportTcpOffloadReceiveReturn`                       | `return(chain, "host", op)`              |
 * | initiate offload with outstanding send data (host)      | `transfer(chain, "host", "target", op)`  |
 * | `BufferedData` at initiate (host; the target copies it) | `lend(chain, "host", "target", op, use)` |
 * | terminate passing send data back                        | `return(chain, "target", op)`            |
 * | terminate passing `BufferedData` up (target)            | `transfer(chain, "target", "host", op)`  |
 *
 * Rules, each enforced by throwing `OwnershipError` with a stable `reason`:
 * - a chain moves whole or not at all: every link is checked before any link moves;
 * - only the owner may move, return, lend, free or touch (`check`/`view`) an NBL;
 * - `return` sends each NBL back to the party that allocated it (its *home*);
 * - a lent NBL belongs to the borrower only for the duration of `use`; meanwhile nobody may move
 *   or free it and the lender may not touch it; afterwards it is the lender's again;
 * - at the end of a run `assertQuiescent()` fails if any NBL is still live (the leak check).
 *
 * The NBL's data (its NET_BUFFERs) is private to this module: a party reaches the bytes only through
 * `view(chain, who, op)`, so "the target cannot touch it in between" is enforced by code.
 *
 * Cost. The ledger is on the data path (one operation per send, completion, indication and return),
 * so the common path builds no strings: `op` is a constant supplied by the caller, and the owner and a
 * bounded ring of recent history live on the NBL object itself (reached through a private field):
 * in a side-by-side prototype that was 1.7x (one NBL) to 2.7x (16 NBLs) faster per transfer than a
 * `Map` keyed by id. Messages are built only when throwing. `bench/nbl.bench.ts` measures it.
 */
import { OwnershipError, type OwnershipReason, UsageError } from "../util/errors.js";
import type { BufferChain } from "./chain.js";
import {
  cloneNetBuffer,
  mdlChain,
  mdlChainLength,
  type NblId,
  type NblStatus,
  type NetBuffer,
  type NetBufferList,
  netBuffer,
} from "./nbl.js";

/** Every party that can own an NBL, in a fixed order (for reports and tests). Add a party here. */
export const OWNERS = ["host", "target", "wire", "app"] as const;

/** A party that can own an NBL: the host stack, the offload target, the wire (a frame in flight), the application. */
export type Owner = (typeof OWNERS)[number];

/** Ledger configuration. */
export interface LedgerOptions {
  /** How many recent operations each NBL remembers for error messages (default 16). */
  readonly historyLength?: number;
  /**
   * Revocable loans (for tests): `lend` lets the borrower see a private copy of the bytes and
   * overwrites that copy with `POISON_BYTE` when the loan ends, so a borrower that kept views
   * instead of copying (IO-19) reads garbage, and a byte-stream check catches it. Costs a copy
   * per loan. Default: on when the environment has CHIMNEY_POISON=1 (the test runner sets it).
   */
  readonly poisonLoans?: boolean | undefined;
}

/** What a revoked loan's bytes read as (`LedgerOptions.poisonLoans`). */
export const POISON_BYTE = 0xdb;

/** CHIMNEY_POISON=1 in the environment, where there is one (the core does no I/O of its own). */
function poisonFromEnvironment(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.["CHIMNEY_POISON"] === "1";
}

/** One hand-off seen by a `LedgerObserver`: an NBL moving between parties. */
export interface LedgerHandoff {
  readonly kind: "transfer" | "return" | "lend";
  readonly nbl: NblId;
  /** The chimney call, as the caller named it. */
  readonly op: string;
  readonly from: Owner;
  readonly to: Owner;
  /** Data bytes the NBL describes (the sum of its NET_BUFFERs' `DataLength`). */
  readonly bytes: number;
}

/** Called for every NBL that changes hands (reports and timelines); must not touch the ledger. */
export type LedgerObserver = (h: LedgerHandoff) => void;

/**
 * The single source of truth for buffer ownership across the chimney. Every crossing goes through
 * `transfer`, `return` or `lend`; every access through `check` or `view`; every test and run ends
 * with `assertQuiescent()`.
 */
export class BufferLedger {
  /**
   * Live records, newest first, linked through the records themselves: a set of them cost a hash
   * insert and delete per NBL, and rehashes that reallocated the whole table as a storm of
   * 100,000 lent NBLs grew and drained (with the target's other tables, a fifth of its thread).
   */
  #liveHead: Rec | undefined = undefined;
  #liveCount = 0;
  readonly #cap: number = 0;
  readonly #poisonLoans: boolean;
  #nextId = 1;
  /** Sees every transfer, return and loan when set (off by default: costs one check per link). */
  observer: LedgerObserver | undefined = undefined;

  constructor(options: LedgerOptions = {}) {
    const n = options.historyLength ?? 16;
    if (!Number.isSafeInteger(n) || n < 1)
      throw new UsageError(`historyLength must be a positive integer, not ${n}`);
    this.#cap = n * SLOTS;
    this.#poisonLoans = options.poisonLoans ?? poisonFromEnvironment();
  }

  /**
   * A new NBL owned by `owner` whose NBs describe `data` (new descriptors over the same bytes: no
   * copy; the caller's descriptors are not retained). `op` names the allocating call in the history.
   */
  alloc(owner: Owner, data: BufferChain, op = "alloc"): NetBufferList {
    // An array of the exact size (most NBLs carry one NB; one grown by push held 17 slots).
    return this.allocOwn(
      owner,
      data.map((nb) => cloneNetBuffer(nb)),
      op,
    );
  }

  /**
   * `alloc` taking `nbs` themselves as the NBL's NET_BUFFERs (linked here), no copies: for
   * descriptors the caller has just made for this NBL and keeps no reference to (a worker's NBL
   * mirrored on the host thread, an NBL of the target's receive pool). A kept reference would
   * reach the bytes around the ledger.
   */
  allocOwn(owner: Owner, nbs: NetBuffer[], op = "alloc"): NetBufferList {
    for (let i = 1; i < nbs.length; i++) (nbs[i - 1] as NetBuffer).next = nbs[i] as NetBuffer;
    const rec = new Rec(this, this.#nextId++ as NblId, owner, nbs);
    record(rec, this.#cap, "alloc", op, "", owner);
    this.#link(rec);
    return new LedgerNbl(rec);
  }

  /**
   * Moves every NBL of `chain` from `from` to `to`, or none: each link is checked before any moves.
   * Throws `UsageError` if `from === to`.
   */
  transfer(chain: NetBufferList, from: Owner, to: Owner, op: string): void {
    if (from === to) throw new UsageError(`${op}: transfer from ${from} to itself`);
    const count = this.#verify(chain, from, "transfer", op);
    const bit = OWNER_BIT[to];
    let n: NetBufferList | null = chain;
    for (let i = 0; i < count; i++) {
      const r = recOf(n as NetBufferList) as Rec; // #verify walked exactly `count` valid links
      r.owner = to;
      r.held |= bit;
      record(r, this.#cap, "transfer", op, from, to);
      if (this.observer !== undefined) notify(this.observer, "transfer", r, op, from, to);
      n = (n as NetBufferList).next;
    }
  }

  /**
   * Gives every NBL of `chain` back to the party that allocated it, all or nothing (send completion,
   * receive return). Returning an NBL that is already home is a `double-return`.
   */
  return(chain: NetBufferList, who: Owner, op: string): void {
    const count = this.#verify(chain, who, "return", op);
    let n: NetBufferList | null = chain;
    for (let i = 0; i < count; i++) {
      const r = recOf(n as NetBufferList) as Rec; // #verify walked exactly `count` valid links
      r.owner = r.home;
      record(r, this.#cap, "return", op, who, r.home);
      if (this.observer !== undefined) notify(this.observer, "return", r, op, who, r.home);
      n = (n as NetBufferList).next;
    }
  }

  /**
   * Lends `chain` from `from` to `to` for the duration of `use()` and returns its result. Meanwhile
   * the borrower may `check`/`view` it but nobody may move or free it; afterwards (also if `use`
   * throws) it is the lender's again. The borrower copies whatever it keeps (IO-19).
   */
  lend<R>(chain: NetBufferList, from: Owner, to: Owner, op: string, use: () => R): R {
    if (from === to) throw new UsageError(`${op}: loan from ${from} to itself`);
    const count = this.#verify(chain, from, "lend", op);
    const links: Rec[] = [];
    const bit = OWNER_BIT[to];
    let n: NetBufferList | null = chain;
    for (let i = 0; i < count; i++) {
      const r = recOf(n as NetBufferList) as Rec; // #verify walked exactly `count` valid links
      r.owner = to;
      r.lender = from;
      r.held |= bit;
      record(r, this.#cap, "lend", op, from, to);
      if (this.observer !== undefined) notify(this.observer, "lend", r, op, from, to);
      links.push(r);
      n = (n as NetBufferList).next;
    }
    const revoke = this.#poisonLoans ? links.map(lendCopy) : undefined;
    try {
      return use();
    } finally {
      // Nothing can have moved a lent NBL (every move checks `lender`), so this cannot fail.
      for (const r of links) {
        r.owner = from;
        r.lender = undefined;
        record(r, this.#cap, "unlend", op, to, from);
      }
      if (revoke !== undefined) for (const f of revoke) f();
    }
  }

  /** Frees every NBL of `chain`, all or nothing; only the owner may. */
  free(chain: NetBufferList, who: Owner, op = "free"): void {
    const count = this.#verify(chain, who, "free", op);
    let n: NetBufferList | null = chain;
    for (let i = 0; i < count; i++) {
      const r = recOf(n as NetBufferList) as Rec; // #verify walked exactly `count` valid links
      r.owner = undefined;
      r.data = EMPTY;
      record(r, this.#cap, "free", op, who, "");
      this.#unlink(r);
      n = (n as NetBufferList).next;
    }
  }

  /** Throws unless `who` owns every NBL of `chain`. Call it before any read or write of an NBL. */
  check(chain: NetBufferList, who: Owner, op: string): void {
    this.#verify(chain, who, "access", op);
  }

  /**
   * The data of every NBL of `chain`, after checking that `who` owns them all: their NBs in order
   * (the live descriptors, so `advance` on the view advances the NBLs). Valid only while `who`
   * owns the chain; do not keep it across a transfer.
   */
  view(chain: NetBufferList, who: Owner, op: string): BufferChain {
    const count = this.#verify(chain, who, "access", op);
    if (count === 1) return (recOf(chain) as Rec).data; // #verify found one valid link
    const out: NetBuffer[] = [];
    let n: NetBufferList | null = chain;
    for (let i = 0; i < count; i++) {
      for (const nb of (recOf(n as NetBufferList) as Rec).data) out.push(nb); // as in `transfer`
      n = (n as NetBufferList).next;
    }
    return out;
  }

  /**
   * The NBs of `nbl` alone, not of the NBLs linked after it, after checking that `who` owns it:
   * constant time, where `view` walks (and checks) the whole chain from `nbl`.
   */
  viewOne(nbl: NetBufferList, who: Owner, op: string): BufferChain {
    const r = recOf(nbl);
    if (r === undefined || r.ledger !== this || r.owner !== who)
      throw this.#violation(nbl, r, who, "access", op);
    return r.data;
  }

  /** How many live NBLs `who` owns, or all live NBLs. Walks the live set: for checks, not the data path. */
  outstanding(who?: Owner): number {
    if (who === undefined) return this.#liveCount;
    let count = 0;
    for (let r = this.#liveHead; r !== undefined; r = r.nextLive) if (r.owner === who) count++;
    return count;
  }

  /** The current owner of `nbl`, or `undefined` if it was freed or not allocated by this ledger. */
  ownerOf(nbl: NetBufferList): Owner | undefined {
    const r = recOf(nbl);
    return r === undefined || r.ledger !== this ? undefined : r.owner;
  }

  /** `nbl`'s recent history, oldest first, e.g. `alloc@host, MiniportTcpOffloadSend host->target`. */
  history(nbl: NetBufferList): string {
    const r = recOf(nbl);
    return r === undefined || r.ledger !== this ? "(not allocated by this ledger)" : formatHistory(r);
  }

  /** The leak check: throws `OwnershipError("leak")` listing every live NBL with its owner and history. */
  assertQuiescent(): void {
    if (this.#liveCount === 0) return;
    const lines: string[] = [];
    let first = -1;
    // oldest first, as the set listed them
    const live: Rec[] = [];
    for (let r = this.#liveHead; r !== undefined; r = r.nextLive) live.push(r);
    for (const r of live.reverse()) {
      if (first < 0) first = r.id;
      const lent = r.lender === undefined ? "" : ` (lent by ${r.lender})`;
      lines.push(`#${r.id} owned by ${String(r.owner)}${lent}; history: ${formatHistory(r)}`);
    }
    throw new OwnershipError(
      "leak",
      first,
      `NBL #${first}: ${this.#liveCount} NBL(s) still live at quiescence (leak):\n  ${lines.join("\n  ")}`,
    );
  }

  #link(r: Rec): void {
    const head = this.#liveHead;
    r.nextLive = head;
    if (head !== undefined) head.prevLive = r;
    this.#liveHead = r;
    this.#liveCount++;
  }

  #unlink(r: Rec): void {
    const { prevLive, nextLive } = r;
    if (prevLive === undefined) this.#liveHead = nextLive;
    else prevLive.nextLive = nextLive;
    if (nextLive !== undefined) nextLive.prevLive = prevLive;
    r.prevLive = undefined;
    r.nextLive = undefined;
    this.#liveCount--;
  }

  /**
   * Checks every link of `chain` for an operation of kind `kind` by `who` and returns the number of
   * links. Throws on the first bad link, before anything has moved.
   */
  #verify(chain: NetBufferList, who: Owner, kind: CheckKind, op: string): number {
    // A chain of distinct live NBLs cannot be longer than the live set; a longer one loops.
    const limit = this.#liveCount;
    let count = 0;
    for (let n: NetBufferList | null = chain; n !== null; n = n.next) {
      const r = recOf(n);
      if (
        r === undefined ||
        r.ledger !== this ||
        r.owner !== who ||
        (r.lender !== undefined && kind !== "access") ||
        (kind === "return" && r.home === who) ||
        ++count > limit
      ) {
        throw this.#violation(n, r, who, kind, op);
      }
    }
    return count;
  }

  /** Builds the error for a link that failed `#verify` (the cold path: strings are built here only). */
  #violation(n: NetBufferList, r: Rec | undefined, who: Owner, kind: CheckKind, op: string): OwnershipError {
    let reason: OwnershipReason;
    let state: string;
    if (r === undefined || r.ledger !== this) {
      reason = "unknown-nbl";
      state = "this ledger did not allocate it";
    } else if (r.owner === undefined) {
      reason = kind === "free" ? "double-free" : "use-after-free";
      state = "it was freed";
    } else if (r.lender !== undefined && (kind !== "access" || who === r.lender)) {
      reason = "on-loan";
      state = `it is lent by ${r.lender} to ${r.owner}`;
    } else if (r.owner !== who) {
      const held = (r.held & OWNER_BIT[who]) !== 0;
      reason =
        kind === "return" && r.owner === r.home && held
          ? "double-return"
          : held
            ? "use-after-transfer"
            : "not-owner";
      state = `owner is ${r.owner}`;
    } else if (kind === "return" && r.home === who) {
      reason = "double-return";
      state = `it is already back with ${who}, which allocated it`;
    } else {
      reason = "cycle";
      state = "the chain's next links loop";
    }
    const id = r === undefined ? Number(n.id) : r.id;
    const hist = r === undefined || r.ledger !== this ? "(none)" : formatHistory(r);
    return new OwnershipError(
      reason,
      id,
      `NBL #${id}: ${op} by ${who}, but ${state} (${reason}); history: ${hist}`,
    );
  }
}

/** What a `#verify` is for; decides which rules apply and which reason a failure gets. */
type CheckKind = "access" | "transfer" | "return" | "lend" | "free";

/** Kinds of history entries. */
type EntryKind = "alloc" | "transfer" | "return" | "lend" | "unlend" | "free";

/** One bit per owner, for the set of parties that ever held an NBL (tells use-after-transfer from not-owner). */
const OWNER_BIT = Object.fromEntries(OWNERS.map((o, i) => [o, 1 << i])) as Readonly<Record<Owner, number>>; // one entry per owner

/** Array slots per history entry: kind, op, from, to. */
const SLOTS = 4;

/** The data of a freed NBL (its descriptors are dropped so the bytes can be collected). */
const EMPTY: BufferChain = [];

/** The ledger's private record of one NBL. */
class Rec {
  readonly ledger: BufferLedger;
  readonly id: NblId = 0 as NblId;
  /** The party that allocated it; `return` sends it here. */
  readonly home: Owner;
  /** Current owner; `undefined` once freed. */
  owner: Owner | undefined;
  /** While lent: the lender (the borrower is `owner`). */
  lender: Owner | undefined = undefined;
  /** `OWNER_BIT`s of every party that has owned it. */
  held: number = 0;
  /** Its NET_BUFFERs, linked. */
  data: BufferChain;
  /** Ring of the last entries, `SLOTS` strings each; `pos` is the oldest once full. */
  readonly hist: string[] = [];
  pos = 0;
  /** Entries ever recorded (so a message can say how many were dropped). */
  total = 0;
  /** Neighbours in the ledger's list of live records (`undefined` at the ends and once freed). */
  prevLive: Rec | undefined = undefined;
  nextLive: Rec | undefined = undefined;

  constructor(ledger: BufferLedger, id: NblId, owner: Owner, data: BufferChain) {
    this.ledger = ledger;
    this.id = id;
    this.home = owner;
    this.owner = owner;
    this.held = OWNER_BIT[owner];
    this.data = data;
  }
}

/** Module-private accessor for an NBL's record; set by `LedgerNbl`'s static block. */
let recOf: (n: NetBufferList) => Rec | undefined;

/** The only implementation of `NetBufferList`: public header fields plus the private record. */
class LedgerNbl implements NetBufferList {
  readonly id: NblId = 0 as NblId;
  next: NetBufferList | null = null;
  status: NblStatus = "NDIS_STATUS_SUCCESS";
  context: unknown = undefined;
  allocatorReserved: unknown = undefined;
  bytesTransferred = 0;
  receiveNoPush = false;
  receiveBytesTransferred = 0;
  readonly #rec: Rec;

  constructor(rec: Rec) {
    this.id = rec.id;
    this.#rec = rec;
  }

  static {
    recOf = (n) => (#rec in n ? n.#rec : undefined);
  }
}

/** Tells an observer about one hand-off of `r`. */
function notify(
  fn: LedgerObserver,
  kind: LedgerHandoff["kind"],
  r: Rec,
  op: string,
  from: Owner,
  to: Owner,
): void {
  let bytes = 0;
  for (const nb of r.data) bytes += nb.dataLength;
  fn({ kind, nbl: r.id, op, from, to, bytes });
}

/** Appends one history entry, overwriting the oldest once the ring is full. */
function record(r: Rec, cap: number, kind: EntryKind, op: string, from: string, to: string): void {
  const h = r.hist;
  if (h.length < cap) {
    h.push(kind, op, from, to);
  } else {
    const p = r.pos;
    h[p] = kind;
    h[p + 1] = op;
    h[p + 2] = from;
    h[p + 3] = to;
    r.pos = p + SLOTS === cap ? 0 : p + SLOTS;
  }
  r.total++;
}

/** Renders the ring oldest first, e.g. `alloc@host, MiniportTcpOffloadSend host->target`. */
function formatHistory(r: Rec): string {
  const h = r.hist;
  const kept = h.length / SLOTS;
  const parts: string[] = [];
  if (r.total > kept) parts.push(`(${r.total - kept} earlier)`);
  for (let i = 0; i < kept; i++) {
    const p = (r.pos + i * SLOTS) % h.length;
    const kind = h[p] as EntryKind; // p < h.length, and entries are written whole
    const op = h[p + 1] as string;
    const from = h[p + 2] as string;
    const to = h[p + 3] as string;
    parts.push(formatEntry(kind, op, from, to));
  }
  return parts.join(", ");
}

function formatEntry(kind: EntryKind, op: string, from: string, to: string): string {
  switch (kind) {
    case "alloc":
      return `${op}@${to}`;
    case "transfer":
      return `${op} ${from}->${to}`;
    case "return":
      return `${op} ${from}->${to} (return)`;
    case "lend":
      return `${op} ${from}->${to} (loan)`;
    case "unlend":
      return `${op} ${from}->${to} (end of loan)`;
    case "free":
      return op === "free" ? `free by ${from}` : `${op} by ${from} (free)`;
  }
}

/**
 * A revocable loan of `r`'s bytes: the borrower sees NBs over a private copy; the returned
 * function puts the lender's NBs back and poisons the copy.
 */
function lendCopy(r: Rec): () => void {
  const own = r.data;
  const copies: Uint8Array[] = [];
  r.data = own.map((nb) => {
    const bytes = new Uint8Array(mdlChainLength(nb.mdlChain));
    let at = 0;
    for (let m = nb.mdlChain; m !== null; m = m.next) {
      bytes.set(m.view, at);
      at += m.length;
    }
    copies.push(bytes);
    return netBuffer(mdlChain([bytes]), nb.dataOffset, nb.dataLength);
  });
  r.data.forEach((nb, i) => {
    nb.next = r.data[i + 1] ?? null;
  });
  return () => {
    r.data = own;
    for (const c of copies) c.fill(POISON_BYTE);
  };
}
