/**
 * Model-based test of the BufferLedger: random call sequences run against the real ledger and
 * against a deliberately simple model (per NBL: owner, allocator, the set of parties that ever
 * held it, its bytes). After every command the two must agree on every owner and every count;
 * a refused command must change nothing and fail with the reason the model predicts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { OwnershipError, type OwnershipReason, UsageError } from "../util/errors.js";
import { fromArrays, toBytes } from "./chain.js";
import { BufferLedger, OWNERS, type Owner } from "./ledger.js";
import type { NetBufferList } from "./nbl.js";

// Fixed by default so runs are reproducible; `FC_SEED=random` explores. fast-check prints the seed
// and the counterexample (the command list) when the property fails.
const seedEnv = process.env["FC_SEED"];
const SEED = seedEnv === "random" ? Date.now() : Number(seedEnv ?? 0x1ed9e5);

/** What the model knows about one NBL. `owner` is `undefined` once freed. */
interface Entry {
  owner: Owner | undefined;
  readonly home: Owner;
  readonly held: Set<Owner>;
  readonly bytes: readonly number[];
}
interface Model {
  readonly entries: Entry[];
}
interface Real {
  readonly ledger: BufferLedger;
  readonly nbls: NetBufferList[];
}

type Kind = "access" | "transfer" | "return" | "lend" | "free";

/**
 * The model's verdict for an operation of `kind` by `who` on `links` (in chain order): "ok" or the
 * reason of the first bad link. A looping chain whose links are all fine is a "cycle".
 */
function verdict(kind: Kind, links: readonly Entry[], who: Owner, loop: boolean): OwnershipReason | "ok" {
  for (const e of links) {
    if (e.owner === undefined) return kind === "free" ? "double-free" : "use-after-free";
    if (e.owner !== who) {
      const held = e.held.has(who);
      if (kind === "return" && e.owner === e.home && held) return "double-return";
      return held ? "use-after-transfer" : "not-owner";
    }
    if (kind === "return" && e.home === who) return "double-return";
  }
  return loop ? "cycle" : "ok";
}

/** The index in `links` of the link a failure with `reason` must name. */
function firstBad(kind: Kind, links: readonly Entry[], who: Owner): number {
  return links.findIndex((e) => verdict(kind, [e], who, false) !== "ok");
}

/** Links the picked NBLs into a chain (closing a loop if asked), runs `fn`, then unlinks them. */
function withChain<T>(r: Real, picks: readonly number[], loop: boolean, fn: (head: NetBufferList) => T): T {
  const nbls = picks.map((i) => r.nbls[i]!);
  nbls.forEach((n, i) => {
    n.next = nbls[i + 1] ?? (loop ? nbls[0]! : null);
  });
  try {
    return fn(nbls[0]!);
  } finally {
    for (const n of nbls) n.next = null;
  }
}

/** Asserts `fn` throws an OwnershipError with `reason` naming the NBL with `id` (unless a cycle). */
function expectRefusal(fn: () => unknown, reason: OwnershipReason, id: number | undefined): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OwnershipError, `expected OwnershipError(${reason}), got ${String(e)}`);
    assert.equal(e.reason, reason, e.message);
    if (id !== undefined) assert.equal(e.nblId, id);
    return true;
  });
}

/** The real ledger agrees with the model on every NBL's owner and on every count. */
function agree(m: Model, r: Real): void {
  m.entries.forEach((e, i) => {
    assert.equal(r.ledger.ownerOf(r.nbls[i]!), e.owner, `owner of NBL #${r.nbls[i]!.id}`);
  });
  for (const o of OWNERS) {
    assert.equal(r.ledger.outstanding(o), m.entries.filter((e) => e.owner === o).length, `outstanding(${o})`);
  }
  assert.equal(r.ledger.outstanding(), m.entries.filter((e) => e.owner !== undefined).length);
}

/** Distinct picks, mapped onto the NBLs allocated so far. */
function resolve(m: Readonly<Model>, picks: readonly number[]): number[] {
  return [...new Set(picks.map((p) => p % m.entries.length))];
}

/**
 * A party, or "owner": whoever owns the first picked NBL (the host if it was freed). Most generated
 * calls name the owner, so that successful moves are common and the NBLs travel far.
 */
type Who = Owner | "owner";
function party(m: Readonly<Model>, picks: readonly number[], who: Who): Owner {
  return who === "owner" ? (m.entries[picks[0]!]!.owner ?? "host") : who;
}

type Cmd = fc.Command<Model, Real>;

class Alloc implements Cmd {
  readonly owner: Owner;
  readonly bytes: readonly number[];
  constructor(owner: Owner, bytes: readonly number[]) {
    this.owner = owner;
    this.bytes = bytes;
  }
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    r.nbls.push(r.ledger.alloc(this.owner, fromArrays([Uint8Array.from(this.bytes)])));
    m.entries.push({ owner: this.owner, home: this.owner, held: new Set([this.owner]), bytes: this.bytes });
    agree(m, r);
  }
  toString = (): string => `alloc@${this.owner}[${this.bytes.length}]`;
}

/** transfer / return / free / check / view by any party on any picked NBLs (live, moved or freed). */
class Op implements Cmd {
  readonly kind: "transfer" | "return" | "free" | "check" | "view";
  readonly picks: readonly number[];
  readonly who: Who;
  readonly to: Owner;
  readonly loop: boolean;
  constructor(kind: Op["kind"], picks: readonly number[], who: Who, to: Owner, loop: boolean) {
    this.kind = kind;
    this.picks = picks;
    this.who = who;
    this.to = to;
    this.loop = loop;
  }
  check = (m: Readonly<Model>): boolean => m.entries.length > 0;
  run(m: Model, r: Real): void {
    const picks = resolve(m, this.picks);
    const links = picks.map((i) => m.entries[i]!);
    const who = party(m, picks, this.who);
    const kind: Kind = this.kind === "check" || this.kind === "view" ? "access" : this.kind;
    const want = verdict(kind, links, who, this.loop);
    const bad = firstBad(kind, links, who);
    const id = bad >= 0 ? r.nbls[picks[bad]!]!.id : undefined;
    withChain(r, picks, this.loop, (head) => {
      const { ledger } = r;
      const call = (): unknown => {
        switch (this.kind) {
          case "transfer":
            return ledger.transfer(head, who, this.to, "move");
          case "return":
            return ledger.return(head, who, "give back");
          case "free":
            return ledger.free(head, who);
          case "check":
            return ledger.check(head, who, "touch");
          case "view":
            return ledger.view(head, who, "read");
        }
      };
      if (this.kind === "transfer" && who === this.to) {
        assert.throws(call, UsageError);
      } else if (want !== "ok") {
        expectRefusal(call, want, want === "cycle" ? undefined : id);
      } else {
        const result = call();
        if (this.kind === "view") {
          const got = Array.from(toBytes(result as ReturnType<BufferLedger["view"]>));
          assert.deepEqual(
            got,
            links.flatMap((e) => e.bytes),
          );
        }
        for (const e of links) {
          if (this.kind === "transfer") {
            e.owner = this.to;
            e.held.add(this.to);
          } else if (this.kind === "return") {
            e.owner = e.home;
          } else if (this.kind === "free") {
            e.owner = undefined;
          }
        }
      }
    });
    agree(m, r);
  }
  toString = (): string =>
    `${this.kind}[${this.picks.join(",")}${this.loop ? ",loop" : ""}] by ${this.who}` +
    (this.kind === "transfer" ? ` -> ${this.to}` : "");
}

/** A loan; inside it, every party's moves are refused and only the borrower may read. */
class Lend implements Cmd {
  readonly picks: readonly number[];
  readonly from: Who;
  readonly to: Owner;
  readonly fail: boolean;
  constructor(picks: readonly number[], from: Who, to: Owner, fail: boolean) {
    this.picks = picks;
    this.from = from;
    this.to = to;
    this.fail = fail;
  }
  check = (m: Readonly<Model>): boolean => m.entries.length > 0;
  run(m: Model, r: Real): void {
    const picks = resolve(m, this.picks);
    const links = picks.map((i) => m.entries[i]!);
    const from = party(m, picks, this.from);
    const want = verdict("lend", links, from, false);
    const bad = firstBad("lend", links, from);
    withChain(r, picks, false, (head) => {
      const { ledger } = r;
      const use = (): number[] => {
        for (const i of picks) assert.equal(ledger.ownerOf(r.nbls[i]!), this.to);
        const got = Array.from(toBytes(ledger.view(head, this.to, "copy")));
        assert.deepEqual(
          got,
          links.flatMap((e) => e.bytes),
        );
        expectRefusal(() => ledger.check(head, from, "lender peeks"), "on-loan", r.nbls[picks[0]!]!.id);
        for (const o of OWNERS) {
          if (o !== this.to)
            expectRefusal(() => ledger.transfer(head, this.to, o, "pass on"), "on-loan", undefined);
        }
        expectRefusal(() => ledger.free(head, this.to), "on-loan", undefined);
        expectRefusal(() => ledger.return(head, this.to, "give back"), "on-loan", undefined);
        if (this.fail) throw new RangeError("borrower failed");
        return got;
      };
      const call = () => ledger.lend(head, from, this.to, "loan", use);
      if (from === this.to) {
        assert.throws(call, UsageError);
      } else if (want !== "ok") {
        expectRefusal(call, want, r.nbls[picks[bad]!]!.id);
      } else {
        if (this.fail) assert.throws(call, RangeError);
        else call();
        for (const e of links) e.held.add(this.to);
      }
    });
    agree(m, r);
  }
  toString = (): string =>
    `lend[${this.picks.join(",")}] ${this.from} -> ${this.to}${this.fail ? " (borrower throws)" : ""}`;
}

/** An NBL of another ledger is unknown here, whatever the operation. */
class Foreign implements Cmd {
  readonly who: Owner;
  constructor(who: Owner) {
    this.who = who;
  }
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const other = new BufferLedger();
    const nbl = other.alloc(this.who, []);
    expectRefusal(() => r.ledger.check(nbl, this.who, "touch"), "unknown-nbl", nbl.id);
    expectRefusal(() => r.ledger.free(nbl, this.who), "unknown-nbl", nbl.id);
    other.free(nbl, this.who);
    agree(m, r);
  }
  toString = (): string => `foreign by ${this.who}`;
}

/** The leak check fails exactly when the model has live NBLs, and names every one of them. */
class LeakCheck implements Cmd {
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const live = m.entries.flatMap((e, i) => (e.owner === undefined ? [] : [{ e, nbl: r.nbls[i]! }]));
    if (live.length === 0) {
      r.ledger.assertQuiescent();
      return;
    }
    assert.throws(
      () => r.ledger.assertQuiescent(),
      (err: unknown) => {
        assert.ok(err instanceof OwnershipError);
        assert.equal(err.reason, "leak");
        assert.equal(err.nblId, live[0]!.nbl.id);
        for (const { e, nbl } of live)
          assert.ok(err.message.includes(`#${nbl.id} owned by ${e.owner!}`), err.message);
        return true;
      },
    );
  }
  toString = (): string => "assertQuiescent";
}

const owner = fc.constantFrom<Owner>(...OWNERS);
const who: fc.Arbitrary<Who> = fc.oneof(
  { weight: 3, arbitrary: fc.constant("owner" as const) },
  { weight: 2, arbitrary: owner },
);
/** Mostly plain chains; sometimes the last link points back to the first. */
const loop = fc.constantFrom(false, false, false, true);
const picks = fc.oneof(fc.tuple(fc.nat()), fc.array(fc.nat(), { minLength: 1, maxLength: 3 }));
const commands = fc.commands(
  [
    fc.tuple(owner, fc.array(fc.nat({ max: 255 }), { maxLength: 4 })).map(([o, b]) => new Alloc(o, b)),
    fc
      .tuple(fc.constantFrom("transfer", "return", "free", "check", "view" as const), picks, who, owner, loop)
      .map(([k, p, w, t, l]) => new Op(k, p, w, t, l)),
    fc.tuple(picks, who, owner, fc.boolean()).map(([p, f, t, fail]) => new Lend(p, f, t, fail)),
    owner.map((o) => new Foreign(o)),
    fc.constant(new LeakCheck()),
  ],
  { maxCommands: 60, size: "+1" },
);

void test("the ledger agrees with a one-owner-per-NBL model under any call sequence", () => {
  fc.assert(
    fc.property(commands, (cmds) => {
      const setup = () => ({
        model: { entries: [] } as Model,
        real: { ledger: new BufferLedger(), nbls: [] } as Real,
      });
      let state: { model: Model; real: Real } | undefined;
      fc.modelRun(() => (state = setup()), cmds);
      // End of run: whoever the model says owns each live NBL frees it; then nothing is live.
      const { model, real } = state!;
      model.entries.forEach((e, i) => {
        if (e.owner !== undefined) real.ledger.free(real.nbls[i]!, e.owner);
      });
      real.ledger.assertQuiescent();
    }),
    { seed: SEED, numRuns: 250 },
  );
});
