// The mutant catalogue (issue #17): hand-written source patches of the compiled target, each
// breaking one chimney rule, and the test, named with that rule, that must kill it.
// test/chimney-mutants.test.ts applies each to a hard-linked copy of dist, runs that test there
// and expects it to fail (and to pass on the unpatched tree). A `find` is exact compiled text
// (dist/src, as tsc writes it) that must occur exactly once; when the source around it changes,
// the entry fails loudly and is to be rewritten, not dropped.
import type { Mutant } from "../support/mutants.js";

const CHECKS = "offload-target/contract-checks.test.js";

/** The live-connection terminate's BufferedData line (state-operations.js). */
const LIVE_BUFFERED = "const chunks = snap.delegated.bufferedData;";
/** The closed-connection terminate's BufferedData line (state-operations.js). */
const CLOSED_BUFFERED = "const chunks = engine.exportState(now).delegated.bufferedData;";

/** Writes a byte of the BufferedData chain the terminate has handed up (state-operations.js). */
const WRITE_HANDED_UP = `delegated = delegatedStateFromEngine(snap.delegated, {`;

export const MUTANTS: readonly Mutant[] = [
  // -- Moved out of the target's source (they were `SoftwareTargetOptions.testMutant`) --------
  {
    id: "drop-buffered-at-terminate",
    rule: "TM-19",
    file: "offload-target/state-operations.js",
    find: LIVE_BUFFERED,
    replace: "const chunks = [];",
    test: { file: CHECKS, name: "TM-19 / TM-20 / TM-21: data the host refused is returned at the upload" },
    caughtBy: "byte stream differs",
    why: "the terminate of a live connection returns no BufferedData: the refused bytes are lost",
  },
  {
    id: "drop-buffered-at-terminate-closed",
    rule: "TM-19",
    file: "offload-target/state-operations.js",
    find: CLOSED_BUFFERED,
    replace: "const chunks = [];",
    test: {
      file: CHECKS,
      name: "TM-19 / TM-20: a connection closed by a FIN exchange returns the refused data",
    },
    caughtBy: "byte stream differs",
    why: "the terminate of a FIN-closed connection returns no BufferedData: the refused bytes are lost",
  },
  {
    id: "write-after-return",
    rule: "TM-21",
    file: "offload-target/state-operations.js",
    find: WRITE_HANDED_UP,
    replace: `if (buffered !== null) forEachSegment(t.ledger.view(buffered, "target", "mutant: write after return"), 0, 1, (x, st) => { x[st] = 0; });
        ${WRITE_HANDED_UP}`,
    test: { file: CHECKS, name: "TM-19 / TM-20 / TM-21: data the host refused is returned at the upload" },
    caughtBy: "use-after-transfer",
    why: "the target writes into BufferedData after handing it up (the NBLs are the host's)",
  },
  {
    id: "write-after-return-worker",
    rule: "TM-21",
    file: "offload-target/state-operations.js",
    find: WRITE_HANDED_UP,
    replace: `if (buffered !== null) forEachSegment(t.ledger.view(buffered, "target", "mutant: write after return"), 0, 1, (x, st) => { x[st] = 0; });
        ${WRITE_HANDED_UP}`,
    test: { file: "worker-ownership.test.js", name: "TM-21 / TM-25: a terminate while data flows" },
    caughtBy: "OwnershipError (use-after-transfer): in the target's worker",
    why: "the same write, by a target on its own thread: caught on the worker, raised on the host",
  },
  {
    id: "indicate-after-terminate",
    rule: "TM-25",
    file: "offload-target/state-operations.js",
    find: "t.host.terminateOffloadComplete(root);",
    replace: `t.host.terminateOffloadComplete(root);
    forEachInTree(root, (b) => {
        if (b.layer !== "tcp" || b.ndisOffloadHandle === undefined) return;
        const nbl = t.recvPool.alloc([new Uint8Array(1)], "mutant: stale indication");
        t.ledger.transfer(nbl, "target", "host", "mutant: stale indication");
        t.host.tcpOffloadReceiveIndicate(b.ndisOffloadHandle, nbl, "NDIS_STATUS_SUCCESS");
    });`,
    test: { file: "worker-ownership.test.js", name: "TM-21 / TM-25: a terminate while data flows" },
    caughtBy: "OwnershipError (indicate-after-terminate): in the target's worker",
    why: "the target indicates on a connection whose terminate has completed (it is the host's again)",
  },
  {
    id: "wire-after-terminate",
    rule: "TM-11",
    file: "offload-target/state-operations.js",
    find: "terminateConn(t, now, c, b);",
    replace: `const mark = t.wireFrames.length;
            terminateConn(t, now, c, b);
            (t.mutantLate ??= []).push(...t.wireFrames.splice(mark));`,
    also: [
      {
        find: "t.host.terminateOffloadComplete(root);",
        replace: `t.host.terminateOffloadComplete(root);
    for (const f of t.mutantLate ?? []) t.wireFrames.push(f);
    t.mutantLate = [];`,
      },
    ],
    test: { file: CHECKS, name: "TM-11: the ACK owed at the upload is on the wire" },
    caughtBy: "TM-11",
    why: "the frames a terminate sends (the owed ACK) are queued only after its completion",
  },
  {
    id: "buffered-after-newer",
    rule: "IO-23",
    file: "offload-target/state-operations.js",
    find: "const full = copy === undefined || copy.length === 0",
    replace: "const full = true",
    also: [
      {
        find: "known: engine.readable,",
        replace: "known: engine.readable + (copy?.length ?? 0),",
      },
      {
        find: "path.conns.add(c);",
        replace: `c.mutantLate = copy !== undefined && copy.length > 0 ? copy : undefined;
    path.conns.add(c);`,
      },
      {
        file: "offload-target/receive.js",
        find: "return c.engine.readable;",
        replace: "return c.engine.readable + (c.mutantLate?.length ?? 0);",
      },
      {
        file: "offload-target/receive.js",
        find: "const got = c.engine.recvInto(bytes.subarray(s, e));",
        replace: `let got = c.engine.recvInto(bytes.subarray(s, e));
            if (s + got < e && c.mutantLate !== undefined) {
                const n = Math.min(c.mutantLate.length, e - s - got);
                bytes.set(c.mutantLate.subarray(0, n), s + got);
                got += n;
                c.mutantLate = n === c.mutantLate.length ? undefined : c.mutantLate.subarray(n);
            }`,
      },
    ],
    test: { file: CHECKS, name: "IO-19 / IO-23: data handed over at offload" },
    caughtBy: "byte stream differs at offset 0",
    why: "handed-over BufferedData is kept beside the receive buffer and placed after what arrived later",
  },
  {
    id: "keep-lent-views",
    rule: "IO-19",
    file: "offload-target/state-operations.js",
    find: "t.copies.set(b, copyOfChain(view, n));",
    replace: "t.copies.set(b, Object.assign(new Uint8Array(n), { keptView: view }));",
    also: [
      {
        find: `const copy = t.copies.get(b);
    if (copy === "no-memory")`,
        replace: `const kept = t.copies.get(b);
    const copy = kept?.keptView === undefined ? kept : copyOfChain(kept.keptView, kept.length);
    if (copy === "no-memory")`,
      },
    ],
    test: { file: CHECKS, name: "IO-19 / IO-23: data handed over at offload" },
    caughtBy: "byte stream differs at offset 0",
    why: "the target keeps views of the lent BufferedData and copies them at the completion, after the loan",
  },
  {
    id: "reindicate-refused",
    rule: "RI-3",
    file: "offload-target/receive.js",
    find: "else if (c.known > 0 || c.refused)",
    replace: "else if (false)",
    also: [{ find: "if (c.busy || c.refused)", replace: "if (c.busy)" }],
    test: { file: CHECKS, name: "RI-3: refused data, then more data with no request posted" },
    caughtBy: "RI-3: refused data indicated again",
    why: "refused data is indicated again before the host posts a request",
  },
  {
    id: "double-complete",
    rule: "RQ-3",
    file: "offload-target/receive.js",
    find: "t.host.tcpOffloadReceiveComplete(head);",
    replace: "t.host.tcpOffloadReceiveComplete(head);\n        t.host.tcpOffloadReceiveComplete(head);",
    test: { file: CHECKS, name: "RQ-3: a posted request is filled and completed once" },
    caughtBy: "completed twice",
    why: "a posted receive request is completed twice",
  },
];
