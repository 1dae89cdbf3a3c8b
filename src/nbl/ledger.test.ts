import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { OwnershipError, type OwnershipReason, StackError, UsageError } from "../util/errors.js";
import { advance, chainLength, fromArrays, linkNbls, segments, toBytes } from "./chain.js";
import { BufferLedger, OWNERS, POISON_BYTE } from "./ledger.js";
import type { NetBufferList } from "./nbl.js";

/** Runs `fn`, which must throw an `OwnershipError` with `reason`, and returns the error. */
function ownershipError(fn: () => unknown, reason: OwnershipReason): OwnershipError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof OwnershipError, `expected an OwnershipError, got ${String(e)}`);
    assert.equal(e.reason, reason, e.message);
    assert.equal(e.code, "ERR_OWNERSHIP");
    return e;
  }
  assert.fail(`expected OwnershipError(${reason}), but nothing was thrown`);
}

let ledger: BufferLedger;
beforeEach(() => {
  ledger = new BufferLedger();
});
// The leak check after every test: each test frees what it allocates.
afterEach(() => {
  ledger.assertQuiescent();
});

/** An NBL owned by `host` holding `bytes`. */
const hostNbl = (...bytes: number[]): NetBufferList =>
  ledger.alloc("host", fromArrays([Uint8Array.from(bytes)]));

void describe("alloc and view", () => {
  void test("an allocated NBL belongs to its allocator and shows its bytes without a copy", () => {
    const bytes = Uint8Array.of(1, 2, 3);
    const nbl = ledger.alloc("target", fromArrays([bytes]), "NdisAllocateNetBufferList");
    assert.equal(ledger.ownerOf(nbl), "target");
    assert.equal(ledger.outstanding("target"), 1);
    assert.equal(ledger.outstanding(), 1);
    const [view] = [...segments(ledger.view(nbl, "target", "read"))];
    assert.equal(view?.buffer, bytes.buffer, "a view, not a copy");
    assert.equal(ledger.history(nbl), "NdisAllocateNetBufferList@target");
    assert.deepEqual(
      [
        nbl.next,
        nbl.status,
        nbl.context,
        nbl.bytesTransferred,
        nbl.receiveNoPush,
        nbl.receiveBytesTransferred,
      ],
      [null, "NDIS_STATUS_SUCCESS", undefined, 0, false, 0],
    );
    ledger.free(nbl, "target");
  });

  void test("ids are distinct and increasing; alloc keeps no alias to the caller's descriptors", () => {
    const data = fromArrays([Uint8Array.of(1, 2, 3)]);
    const a = ledger.alloc("host", data);
    const b = ledger.alloc("host", data);
    assert.ok(b.id > a.id);
    advance(data, 2); // the caller's descriptors, not the NBLs'
    assert.deepEqual(Array.from(toBytes(ledger.view(a, "host", "read"))), [1, 2, 3]);
    ledger.free(linkNbls([a, b])!, "host");
  });

  void test("allocOwn takes the caller's fresh descriptors as the NBL's own, linked in order", () => {
    const nbs = [...fromArrays([Uint8Array.of(1, 2)]), ...fromArrays([Uint8Array.of(3)])].map((nb) => ({
      ...nb,
      next: null,
    }));
    assert.equal(nbs.length, 2);
    const nbl = ledger.allocOwn("target", nbs, "mirror");
    const view = ledger.view(nbl, "target", "read");
    assert.equal(view[0], nbs[0], "the descriptors themselves, no copies");
    assert.equal(nbs[0]?.next, nbs[1], "linked as alloc links them");
    assert.deepEqual(Array.from(toBytes(view)), [1, 2, 3]);
    assert.equal(ledger.history(nbl), "mirror@target");
    ledger.transfer(nbl, "target", "host", "indicate");
    assert.throws(() => ledger.view(nbl, "target", "read"), OwnershipError);
    ledger.return(nbl, "host", "return");
    ledger.free(nbl, "target");
  });

  void test("a view of a chain covers every NBL in order, and advancing it advances the NBLs", () => {
    const a = hostNbl(1, 2);
    const b = hostNbl(3, 4, 5);
    const chain = linkNbls([a, b])!;
    const data = ledger.view(chain, "host", "read");
    assert.deepEqual(Array.from(toBytes(data)), [1, 2, 3, 4, 5]);
    advance(data, 3);
    assert.equal(chainLength(ledger.view(a, "host", "read")), 2, "a's view still includes b (a chain)");
    b.next = null;
    a.next = null;
    assert.equal(chainLength(ledger.view(a, "host", "read")), 0);
    assert.deepEqual(Array.from(toBytes(ledger.view(b, "host", "read"))), [4, 5]);
    ledger.free(linkNbls([a, b])!, "host");
  });

  void test("viewOne gives one NBL's data within a chain and checks that NBL's owner only", () => {
    const a = hostNbl(1, 2);
    const b = hostNbl(3, 4, 5);
    const chain = linkNbls([a, b])!;
    assert.deepEqual(Array.from(toBytes(ledger.viewOne(b, "host", "read"))), [3, 4, 5]);
    assert.deepEqual(Array.from(toBytes(ledger.viewOne(a, "host", "read"))), [1, 2], "not b's bytes");
    assert.throws(
      () => ledger.viewOne(a, "target", "read"),
      (e: unknown) => e instanceof OwnershipError,
    );
    ledger.free(chain, "host");
    assert.throws(
      () => ledger.viewOne(a, "host", "read"),
      (e: unknown) => e instanceof OwnershipError && e.reason === "use-after-free",
    );
  });
});

void describe("transfer", () => {
  void test("moves ownership and records the call in the history", () => {
    const nbl = hostNbl(1);
    ledger.transfer(nbl, "host", "target", "MiniportTcpOffloadSend");
    assert.equal(ledger.ownerOf(nbl), "target");
    assert.deepEqual(
      OWNERS.map((o) => ledger.outstanding(o)),
      [0, 1, 0, 0],
    );
    assert.equal(ledger.history(nbl), "alloc@host, MiniportTcpOffloadSend host->target");
    ledger.free(nbl, "target");
  });

  void test("the old owner touching it afterwards is a use-after-transfer naming the NBL and its history", () => {
    const nbl = hostNbl(1);
    ledger.transfer(nbl, "host", "target", "MiniportTcpOffloadSend");
    const e = ownershipError(() => ledger.view(nbl, "host", "copy send data"), "use-after-transfer");
    assert.equal(e.nblId, nbl.id);
    assert.ok(e instanceof StackError);
    assert.match(e.message, /^NBL #\d+: copy send data by host, but owner is target/);
    assert.match(e.message, /history: alloc@host, MiniportTcpOffloadSend host->target$/);
    ownershipError(() => ledger.check(nbl, "host", "write status"), "use-after-transfer");
    ownershipError(() => ledger.transfer(nbl, "host", "wire", "send again"), "use-after-transfer");
    ledger.free(nbl, "target");
  });

  void test("a party that never owned it is not-owner", () => {
    const nbl = hostNbl(1);
    ownershipError(() => ledger.transfer(nbl, "wire", "target", "steal"), "not-owner");
    ownershipError(() => ledger.check(nbl, "app", "peek"), "not-owner");
    ledger.free(nbl, "host");
  });

  void test("a chain moves whole or not at all: one bad link moves nothing", () => {
    const a = hostNbl(1);
    const b = hostNbl(2);
    const c = hostNbl(3);
    ledger.transfer(b, "host", "wire", "elsewhere");
    const chain = linkNbls([a, b, c])!;
    const e = ownershipError(
      () => ledger.transfer(chain, "host", "target", "MiniportTcpOffloadSend"),
      "use-after-transfer",
    );
    assert.equal(e.nblId, b.id, "the error names the bad link");
    assert.deepEqual(
      [a, b, c].map((n) => ledger.ownerOf(n)),
      ["host", "wire", "host"],
    );
    assert.equal(ledger.history(a), "alloc@host", "nothing was recorded for the good links");
    for (const n of [a, b, c]) n.next = null;
    ledger.free(linkNbls([a, c])!, "host");
    ledger.free(b, "wire");
  });

  void test("transferring to oneself is a usage error", () => {
    const nbl = hostNbl(1);
    assert.throws(() => ledger.transfer(nbl, "host", "host", "noop"), UsageError);
    ledger.free(nbl, "host");
  });

  void test("a looping chain is refused before anything moves", () => {
    const a = hostNbl(1);
    const b = hostNbl(2);
    a.next = b;
    b.next = a;
    ownershipError(() => ledger.transfer(a, "host", "target", "send"), "cycle");
    ownershipError(() => ledger.check(a, "host", "read"), "cycle");
    assert.equal(ledger.ownerOf(a), "host");
    b.next = null;
    ledger.free(a, "host");
  });
});

void describe("return", () => {
  void test("send completion returns each NBL to the party that allocated it", () => {
    const send = hostNbl(1, 2);
    ledger.transfer(send, "host", "target", "MiniportTcpOffloadSend");
    ledger.return(send, "target", "NdisTcpOffloadSendComplete");
    assert.equal(ledger.ownerOf(send), "host");
    assert.equal(
      ledger.history(send),
      "alloc@host, MiniportTcpOffloadSend host->target, NdisTcpOffloadSendComplete target->host (return)",
    );
    ledger.free(send, "host");
  });

  void test("completing the same NBL twice is a double-return, with the message the docs promise", () => {
    const send = hostNbl(1);
    ledger.transfer(send, "host", "target", "MiniportTcpOffloadSend");
    ledger.return(send, "target", "NdisTcpOffloadSendComplete");
    const e = ownershipError(
      () => ledger.return(send, "target", "NdisTcpOffloadSendComplete"),
      "double-return",
    );
    assert.equal(
      e.message,
      `NBL #${send.id}: NdisTcpOffloadSendComplete by target, but owner is host (double-return); ` +
        "history: alloc@host, MiniportTcpOffloadSend host->target, NdisTcpOffloadSendComplete target->host (return)",
    );
    ownershipError(() => ledger.return(send, "host", "return to myself"), "double-return");
    ledger.free(send, "host");
  });

  void test("a chain mixing allocators sends each link home; indications come back to the target", () => {
    const sent = hostNbl(1);
    const indicated = ledger.alloc("target", fromArrays([Uint8Array.of(9)]), "NdisAllocateNetBufferList");
    ledger.transfer(sent, "host", "wire", "transmit");
    ledger.transfer(indicated, "target", "wire", "transmit");
    ledger.return(linkNbls([sent, indicated])!, "wire", "tx done");
    assert.deepEqual([ledger.ownerOf(sent), ledger.ownerOf(indicated)], ["host", "target"]);
    sent.next = null;
    ledger.free(sent, "host");
    ledger.free(indicated, "target");
  });

  void test("a non-owner return is refused by the usual rules", () => {
    const nbl = hostNbl(1);
    ledger.transfer(nbl, "host", "target", "send");
    ownershipError(() => ledger.return(nbl, "wire", "bogus completion"), "not-owner");
    ownershipError(() => ledger.return(nbl, "host", "bogus completion"), "use-after-transfer");
    ledger.return(nbl, "target", "NdisTcpOffloadSendComplete");
    ledger.free(nbl, "host");
  });
});

void describe("lend", () => {
  void test("the borrower owns it during the call only, and the result passes through", () => {
    const buffered = hostNbl(7, 8, 9);
    const copied = ledger.lend(buffered, "host", "target", "MiniportInitiateOffload BufferedData", () => {
      assert.equal(ledger.ownerOf(buffered), "target");
      assert.equal(ledger.outstanding("target"), 1);
      return toBytes(ledger.view(buffered, "target", "copy BufferedData"));
    });
    assert.deepEqual(Array.from(copied), [7, 8, 9]);
    assert.equal(ledger.ownerOf(buffered), "host");
    assert.match(ledger.history(buffered), /host->target \(loan\), .* target->host \(end of loan\)$/);
    ledger.free(buffered, "host");
  });

  void test("a revocable loan (poisonLoans): views the borrower kept read POISON_BYTE afterwards; the lender's bytes are untouched", () => {
    for (const poisonLoans of [false, true]) {
      const l = new BufferLedger({ poisonLoans });
      const lender = new Uint8Array([1, 2, 3, 4, 5, 6]);
      const nbl = l.alloc("host", fromArrays([lender.subarray(0, 2), lender.subarray(2)]), "test");
      advance(l.view(nbl, "host", "skip"), 1); // a data window that does not start at byte 0
      const kept = l.lend(nbl, "host", "target", "loan", () => [...segments(l.view(nbl, "target", "keep"))]);
      assert.deepEqual(
        kept.flatMap((v) => Array.from(v)),
        poisonLoans ? [POISON_BYTE, POISON_BYTE, POISON_BYTE, POISON_BYTE, POISON_BYTE] : [2, 3, 4, 5, 6],
        `poisonLoans ${poisonLoans}`,
      );
      assert.deepEqual(Array.from(lender), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(Array.from(toBytes(l.view(nbl, "host", "after"))), [2, 3, 4, 5, 6]);
      l.free(nbl, "host");
    }
  });

  void test("while lent, nobody may move or free it and the lender may not touch it", () => {
    const nbl = hostNbl(1);
    ledger.lend(nbl, "host", "target", "loan", () => {
      ownershipError(() => ledger.check(nbl, "host", "lender peeks"), "on-loan");
      ownershipError(() => ledger.transfer(nbl, "target", "wire", "borrower passes it on"), "on-loan");
      ownershipError(() => ledger.return(nbl, "target", "borrower returns"), "on-loan");
      ownershipError(() => ledger.free(nbl, "target", "borrower frees"), "on-loan");
      ownershipError(() => ledger.lend(nbl, "target", "wire", "sublet", () => 0), "on-loan");
      ownershipError(() => ledger.check(nbl, "wire", "stranger peeks"), "not-owner");
    });
    assert.equal(ledger.ownerOf(nbl), "host");
    ledger.free(nbl, "host");
  });

  void test("if the borrower throws, the loan still ends and the error propagates", () => {
    const nbl = hostNbl(1);
    assert.throws(
      () =>
        ledger.lend(nbl, "host", "target", "loan", () => {
          throw new RangeError("no memory for the copy");
        }),
      RangeError,
    );
    assert.equal(ledger.ownerOf(nbl), "host");
    ledger.free(nbl, "host");
  });

  void test("only the owner may lend, and not to itself", () => {
    const nbl = hostNbl(1);
    ownershipError(() => ledger.lend(nbl, "target", "wire", "loan", () => 0), "not-owner");
    assert.throws(() => ledger.lend(nbl, "host", "host", "loan", () => 0), UsageError);
    ledger.free(nbl, "host");
  });
});

void describe("free", () => {
  void test("freeing twice is a double-free; any other use after free is a use-after-free", () => {
    const nbl = hostNbl(1);
    ledger.free(nbl, "host", "NdisFreeNetBufferList");
    assert.equal(ledger.ownerOf(nbl), undefined);
    assert.equal(ledger.outstanding(), 0);
    const e = ownershipError(() => ledger.free(nbl, "host", "NdisFreeNetBufferList"), "double-free");
    assert.match(e.message, /history: alloc@host, NdisFreeNetBufferList by host \(free\)$/);
    ownershipError(() => ledger.view(nbl, "host", "read"), "use-after-free");
    ownershipError(() => ledger.transfer(nbl, "host", "target", "send"), "use-after-free");
    ownershipError(() => ledger.return(nbl, "host", "return"), "use-after-free");
  });

  void test("only the owner may free", () => {
    const nbl = hostNbl(1);
    ledger.transfer(nbl, "host", "target", "send");
    ownershipError(() => ledger.free(nbl, "host"), "use-after-transfer");
    ledger.free(nbl, "target");
  });
});

void describe("unknown NBLs", () => {
  void test("an NBL from another ledger, or a forged one, is unknown-nbl", () => {
    const other = new BufferLedger();
    const foreign = other.alloc("host", []);
    const e = ownershipError(() => ledger.transfer(foreign, "host", "target", "send"), "unknown-nbl");
    assert.equal(e.nblId, foreign.id);
    assert.equal(ledger.ownerOf(foreign), undefined);
    assert.equal(ledger.history(foreign), "(not allocated by this ledger)");
    const forged = { ...foreign };
    ownershipError(() => other.check(forged, "host", "read"), "unknown-nbl");
    other.free(foreign, "host");
    other.assertQuiescent();
  });
});

void describe("assertQuiescent and history", () => {
  void test("the leak check lists every live NBL with its owner and history", () => {
    const a = hostNbl(1);
    const b = hostNbl(2);
    ledger.transfer(b, "host", "target", "MiniportTcpOffloadSend");
    const lent = hostNbl(3);
    const e = ledger.lend(lent, "host", "wire", "loan", () =>
      ownershipError(() => ledger.assertQuiescent(), "leak"),
    );
    assert.equal(e.nblId, a.id);
    assert.match(e.message, new RegExp(`#${a.id} owned by host; history: alloc@host`));
    assert.match(
      e.message,
      new RegExp(`#${b.id} owned by target; history: alloc@host, MiniportTcpOffloadSend`),
    );
    assert.match(e.message, new RegExp(`#${lent.id} owned by wire \\(lent by host\\)`));
    ledger.free(linkNbls([a, lent])!, "host");
    ownershipError(() => ledger.assertQuiescent(), "leak");
    ledger.free(b, "target");
    ledger.assertQuiescent();
  });

  void test("the history keeps only the last N entries and says how many it dropped", () => {
    const small = new BufferLedger({ historyLength: 3 });
    const nbl = small.alloc("host", []);
    for (let i = 0; i < 5; i++) {
      small.transfer(nbl, "host", "target", `send${i}`);
      small.return(nbl, "target", `complete${i}`);
    }
    assert.equal(
      small.history(nbl),
      "(8 earlier), complete3 target->host (return), send4 host->target, complete4 target->host (return)",
    );
    const e = ownershipError(() => small.check(nbl, "wire", "peek"), "not-owner");
    assert.match(e.message, /history: \(8 earlier\), complete3/);
    small.free(nbl, "host");
    small.assertQuiescent();
    assert.throws(() => new BufferLedger({ historyLength: 0 }), UsageError);
  });
});

void describe("details the mutation run pinned down", () => {
  void test("CHIMNEY_POISON=1 in the environment turns revocable loans on; the option overrides it", () => {
    const saved = process.env["CHIMNEY_POISON"];
    const keptAfterLoan = (l: BufferLedger): number => {
      const nbl = l.alloc("host", fromArrays([Uint8Array.of(7)]));
      const kept = l.lend(nbl, "host", "target", "loan", () => l.view(nbl, "target", "peek")[0]!);
      l.free(nbl, "host");
      return kept.currentMdl!.view[0]!;
    };
    try {
      process.env["CHIMNEY_POISON"] = "1";
      assert.equal(keptAfterLoan(new BufferLedger()), POISON_BYTE);
      assert.equal(keptAfterLoan(new BufferLedger({ poisonLoans: false })), 7);
      process.env["CHIMNEY_POISON"] = "0";
      assert.equal(keptAfterLoan(new BufferLedger()), 7);
      assert.equal(keptAfterLoan(new BufferLedger({ poisonLoans: true })), POISON_BYTE);
      delete process.env["CHIMNEY_POISON"];
      assert.equal(keptAfterLoan(new BufferLedger()), 7);
    } finally {
      if (saved === undefined) delete process.env["CHIMNEY_POISON"];
      else process.env["CHIMNEY_POISON"] = saved;
    }
  });

  void test("historyLength 1 is allowed; 0 is refused with its value in the message", () => {
    assert.throws(() => new BufferLedger({ historyLength: 0 }), {
      message: "historyLength must be a positive integer, not 0",
    });
    const one = new BufferLedger({ historyLength: 1 });
    const nbl = one.alloc("host", []);
    one.transfer(nbl, "host", "target", "send");
    assert.equal(one.history(nbl), "(1 earlier), send host->target");
    one.free(nbl, "target");
  });

  void test("alloc links its NBs in order, and so does a revocable loan's private copy", () => {
    const l = new BufferLedger({ poisonLoans: true });
    const data = [...fromArrays([Uint8Array.of(1)]), ...fromArrays([Uint8Array.of(2)])];
    const nbl = l.alloc("host", data);
    const own = l.view(nbl, "host", "read");
    assert.equal(own[0]!.next, own[1]);
    assert.equal(own[1]!.next, null);
    l.lend(nbl, "host", "target", "loan", () => {
      const lent = l.view(nbl, "target", "read");
      assert.equal(lent.length, 2);
      assert.equal(lent[0]!.next, lent[1]);
      assert.equal(lent[1]!.next, null);
      assert.deepEqual(Array.from(toBytes(lent)), [1, 2]);
    });
    l.free(nbl, "host");
  });

  void test("the observer hears transfers, returns and loans with kind, op, parties and bytes", () => {
    const seen: string[] = [];
    ledger.observer = (h) => seen.push(`${h.kind} ${h.op} ${h.from}->${h.to} ${h.bytes} #${h.nbl}`);
    const nbl = hostNbl(1, 2, 3);
    ledger.transfer(nbl, "host", "target", "send");
    ledger.return(nbl, "target", "complete");
    ledger.lend(nbl, "host", "wire", "peek", () => undefined);
    ledger.observer = undefined;
    ledger.free(nbl, "host");
    assert.deepEqual(seen, [
      `transfer send host->target 3 #${nbl.id}`,
      `return complete target->host 3 #${nbl.id}`,
      `lend peek host->wire 3 #${nbl.id}`,
    ]);
  });

  void test("errors name the call and the state: foreign NBLs, loans, transfers to oneself", () => {
    const other = new BufferLedger();
    const foreign = other.alloc("host", fromArrays([Uint8Array.of(9)]));
    const e = ownershipError(() => ledger.viewOne(foreign, "host", "read"), "unknown-nbl");
    assert.equal(
      e.message,
      `NBL #${foreign.id}: read by host, but this ledger did not allocate it (unknown-nbl); history: (none)`,
    );
    assert.equal(ledger.ownerOf(foreign), undefined);
    assert.equal(ledger.history(foreign), "(not allocated by this ledger)");
    other.free(foreign, "host");

    const nbl = hostNbl(1);
    assert.equal(ledger.ownerOf(nbl), "host");
    assert.throws(() => ledger.transfer(nbl, "host", "host", "send"), {
      message: "send: transfer from host to itself",
    });
    assert.throws(() => ledger.lend(nbl, "host", "host", "peek", () => 0), {
      message: "peek: loan from host to itself",
    });
    ledger.lend(nbl, "host", "target", "peek", () => {
      const t = ownershipError(() => ledger.transfer(nbl, "target", "wire", "send"), "on-loan");
      assert.match(t.message, /^NBL #\d+: send by target, but it is lent by host to target \(on-loan\)/);
    });
    const back = ownershipError(() => ledger.return(nbl, "host", "complete"), "double-return");
    assert.match(back.message, /complete by host, but it is already back with host, which allocated it/);
    ledger.free(nbl, "host", "TerminateComplete");
    assert.equal(
      ledger.history(nbl),
      "alloc@host, peek host->target (loan), peek target->host (end of loan), TerminateComplete by host (free)",
    );
    const freed = ownershipError(() => ledger.check(nbl, "host", "read"), "use-after-free");
    assert.match(freed.message, /read by host, but it was freed \(use-after-free\)/);
    const plain = hostNbl(2);
    ledger.free(plain, "host");
    assert.equal(ledger.history(plain), "alloc@host, free by host");
  });

  void test("the leak message counts the live NBLs and names the first", () => {
    const a = hostNbl(1);
    const b = hostNbl(2);
    const e = ownershipError(() => ledger.assertQuiescent(), "leak");
    assert.equal(
      e.message,
      `NBL #${a.id}: 2 NBL(s) still live at quiescence (leak):\n  #${a.id} owned by host; history: alloc@host\n  #${b.id} owned by host; history: alloc@host`,
    );
    ledger.free(linkNbls([a, b])!, "host");
  });

  void test("a forged NBL is unknown to viewOne, ownerOf and history; a third party's viewOne of a lent NBL is not-owner", () => {
    const nbl = hostNbl(1);
    const forged = { ...nbl };
    ownershipError(() => ledger.viewOne(forged, "host", "read"), "unknown-nbl");
    assert.equal(ledger.ownerOf(forged), undefined);
    assert.equal(ledger.history(forged), "(not allocated by this ledger)");
    ledger.lend(nbl, "host", "target", "peek", () => {
      const e = ownershipError(() => ledger.viewOne(nbl, "wire", "read"), "not-owner");
      assert.match(e.message, /read by wire, but owner is target/);
    });
    ledger.free(nbl, "host");
  });

  void test("a looping chain given back is refused as a loop, not as a double return", () => {
    const a = hostNbl(1);
    const b = hostNbl(2);
    ledger.transfer(a, "host", "target", "send");
    ledger.transfer(b, "host", "target", "send");
    linkNbls([a, b]);
    b.next = a;
    ownershipError(() => ledger.return(a, "target", "complete"), "cycle");
    b.next = null;
    ledger.return(a, "target", "complete");
    ledger.free(a, "host");
  });

  void test("a looping chain is refused naming the loop", () => {
    const a = hostNbl(1);
    const b = hostNbl(2);
    linkNbls([a, b]);
    b.next = a;
    const e = ownershipError(() => ledger.transfer(a, "host", "target", "send"), "cycle");
    assert.match(e.message, /send by host, but the chain's next links loop \(cycle\)/);
    b.next = null;
    ledger.free(a, "host");
  });
});
