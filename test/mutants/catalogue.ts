// The mutant catalogue (issue #17): hand-written source patches of the compiled target, each
// breaking one chimney rule, and the test, named with that rule, that must kill it.
// test/chimney-mutants.test.ts applies each to a hard-linked copy of dist, runs that test there
// and expects it to fail (and to pass on the unpatched tree). A `find` is exact compiled text
// (dist/src, as tsc writes it) that must occur exactly once; when the source around it changes,
// the entry fails loudly and is to be rewritten, not dropped.
//
// Every MUST rule with an id starting TM-, RR-, RI-, RC-, DA-, IO- or C- (docs/spec-rules.md) is
// broken by at least one entry here or listed in NO_MUTANT with the reason no source patch can
// break it; the runner checks this, so the catalogue cannot shrink silently. Some rules share a
// patch because one piece of code enforces both (IO-6 / C-10, IO-14 / IO-15): each still has its
// own entry and its own test.
import type { Mutant, NoMutant } from "../support/mutants.js";

const CHECKS = "test/offload-target/contract-checks.test.js";
const SOFTWARE = "test/offload-target/software-target.test.js";
const RULES = "test/offload-target/chimney-rules.test.js";
const UNTESTED = "test/offload-target/chimney-untested-rules.test.js";
const TCP_RULES = "test/offload-target/tcp-rules.test.js";

/** The live-connection terminate's BufferedData line (state-operations.js). */
const LIVE_BUFFERED = "const chunks = exported.bufferedData;";
/** The closed-connection terminate's BufferedData line (state-operations.js). */
const CLOSED_BUFFERED = "const chunks = engine.exportDelegated(now).bufferedData;";

/** Writes a byte of the BufferedData chain the terminate has handed up (state-operations.js). */
const WRITE_HANDED_UP = `delegated = delegatedStateFromEngine(exported, {`;

/**
 * Runs the connections an initiate created (and lets them indicate) before its completion call
 * instead of after it returned: one patch, seen by IO-6 and by C-10 (state-operations.js).
 */
const RUN_BEFORE_INITIATE_COMPLETES = `for (const c of created) c.phase = "offloaded";
    t.initiating--;
    for (const c of created) {
        if (c.urgentBuffered) {
            c.urgent = true;
            requestUpload(t, c, "ReceivedUrgentData");
        }
        service(t, now, c);
    }
    t.initiating++;
    assertStatusWritten(root, "initiate");`;

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
    test: { file: "test/worker-ownership.test.js", name: "TM-21 / TM-25: a terminate while data flows" },
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
    test: { file: "test/worker-ownership.test.js", name: "TM-21 / TM-25: a terminate while data flows" },
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
        find: "path.conns.set(c.ctx, c);",
        replace: `c.mutantLate = copy !== undefined && copy.length > 0 ? copy : undefined;
    path.conns.set(c.ctx, c);`,
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
  // -- Initiate (spec 7) ------------------------------------------------------------------
  {
    id: "alias-lent-buffered-data",
    rule: "IO-1",
    file: "offload-target/state-operations.js",
    find: "t.copies.set(b, copyOfChain(view, n));",
    replace: `const pieces = [];
        forEachSegment(view, 0, n, (bytes, s, e) => {
            pieces.push(bytes.subarray(s, e));
        });
        t.copies.set(b, Object.assign(new Uint8Array(n), { pieces }));`,
    also: [
      {
        find: "bufferedData: [copy] } };",
        replace: "bufferedData: copy.pieces ?? [copy] } };",
      },
    ],
    test: {
      file: SOFTWARE,
      name: "IO-1 / IO-19 / IO-21: buffered data is copied before the offload completes",
    },
    why: "the handed-over BufferedData is imported as views of the initiate tree's buffers, never copied",
  },
  {
    id: "upcalls-before-initiate-complete",
    rule: "IO-6",
    file: "offload-target/state-operations.js",
    find: `assertStatusWritten(root, "initiate"); // OP-2 / BL-1`,
    replace: RUN_BEFORE_INITIATE_COMPLETES,
    test: { file: TCP_RULES, name: "IO-6 / C-10 / IO-24: treated like urgent data from the wire" },
    caughtBy: "IO-6: event TcpIndicateRetrieve before the offload completed",
    why: "new connections run (and indicate) before the initiate's completion call, not after it returned",
  },
  {
    id: "connection-runs-before-completion",
    rule: "C-10",
    file: "offload-target/state-operations.js",
    find: `assertStatusWritten(root, "initiate"); // OP-2 / BL-1`,
    replace: RUN_BEFORE_INITIATE_COMPLETES,
    test: { file: TCP_RULES, name: "IO-6 / C-10 / IO-24: treated like urgent data from the wire" },
    caughtBy: "before the offload completed",
    why: "the same ordering seen as C-10: a connection indicates before the offload that created it completed",
  },
  {
    id: "skipped-block-without-status",
    rule: "IO-9",
    file: "offload-target/state-operations.js",
    find: `b.status = "NDIS_STATUS_FAILURE"; // IO-9, IO-11`,
    replace: "// IO-9 broken: no status",
    test: {
      file: SOFTWARE,
      name: "TR-8 / IO-9 / IO-11 / 7.4: the failure-case tree gets the documented statuses",
    },
    caughtBy: "OP-2: initiate completing with a block without status",
    why: "a block that was never tried (dependent of a failed one) gets no status",
  },
  {
    id: "failed-offload-touches-send-data",
    rule: "IO-10",
    file: "offload-target/state-operations.js",
    find: `t.ledger.transfer(chain, "target", "host", OP_INIT_COMPLETE);`,
    replace: `chain.status = "NDIS_STATUS_FAILURE";
        t.ledger.transfer(chain, "target", "host", OP_INIT_COMPLETE);`,
    test: { file: SOFTWARE, name: "IO-20 / IO-10: no memory for the BufferedData copy fails the block" },
    why: "a failed connection offload writes a status into the send NBLs the host still owns",
  },
  {
    id: "walk-past-failed-root",
    rule: "IO-12",
    file: "chimney/block-list.js",
    find: "if (!rootOk && stopOnRootFailure) {",
    replace: "if (false) {",
    test: { file: "src/chimney/chimney.test.js", name: "IO-12: a failed root stops the tree when asked" },
    why: "the initiate walk goes on to the root's siblings after the root failed",
  },
  {
    id: "handed-over-flight-not-retransmitted",
    rule: "IO-13",
    file: "offload-target/state-operations.js",
    find: "const engine = TcpConnection.importState(full, now, t.cfg);",
    replace:
      "const engine = TcpConnection.importState({ ...full, delegated: { ...full.delegated, retransmitDelta: Duration.fromSeconds(100000) } }, now, t.cfg);",
    test: {
      file: SOFTWARE,
      name: "IO-13 / IO-14 / IO-15 / IO-17: handed-over send data is sent and completed",
    },
    why: "the retransmission timer over handed-over unacknowledged data is pushed out of reach at import",
  },
  {
    id: "retransmission-range-skipped",
    rule: "IO-14",
    file: "offload-target/state-operations.js",
    find: "const engine = TcpConnection.importState(full, now, t.cfg);",
    replace:
      "const engine = TcpConnection.importState({ ...full, delegated: { ...full.delegated, sndNxt: full.delegated.sndMax } }, now, t.cfg);",
    test: { file: SOFTWARE, name: "IO-14: handed-over data between SndNxt and SndMax goes out before" },
    why: "the SndNxt..SndMax range is taken as sent at import: newer data goes first, the range waits for the timer",
  },
  {
    id: "unsent-data-before-retransmission-range",
    rule: "IO-15",
    file: "offload-target/state-operations.js",
    find: "const engine = TcpConnection.importState(full, now, t.cfg);",
    replace:
      "const engine = TcpConnection.importState({ ...full, delegated: { ...full.delegated, sndNxt: full.delegated.sndMax } }, now, t.cfg);",
    test: {
      file: SOFTWARE,
      name: "IO-15: handed-over data beyond SndMax goes out after the SndNxt..SndMax range",
    },
    why: "the same import seen from IO-15: the never-sent data beyond SndMax goes out before the SndNxt..SndMax range",
  },
  {
    id: "handed-over-sends-never-completed",
    rule: "IO-17",
    file: "offload-target/state-operations.js",
    find: "c.sends.push({ nbl: n, left: len, acked: 0, disconnect: false });",
    replace: "void len;",
    test: {
      file: SOFTWARE,
      name: "IO-13 / IO-14 / IO-15 / IO-17: handed-over send data is sent and completed",
    },
    why: "handed-over send NBLs are not tracked, so they are never completed when ACKed",
  },
  {
    id: "handed-over-data-indicated-unasked",
    rule: "IO-22",
    file: "offload-target/state-operations.js",
    find: "known: engine.readable,",
    replace: "known: 0,",
    test: { file: SOFTWARE, name: "IO-22 / IO-23: handed-over data waits for a request" },
    why: "handed-over data is not treated as buffered: newer data makes the target indicate it unasked",
  },
  {
    id: "urgent-buffered-data-ignored",
    rule: "IO-24",
    file: "offload-target/state-operations.js",
    find: "urgentBuffered: d.bufferedDataUrgent === true && copy !== undefined && copy.length > 0,",
    replace: "urgentBuffered: false,",
    test: { file: TCP_RULES, name: "IO-24 / NS-7: urgent data in BufferedData handed over at offload" },
    why: "urgent data among the handed-over BufferedData is delivered like ordinary data",
  },
  // -- Terminate (spec 11) ----------------------------------------------------------------
  {
    id: "posted-receives-left-at-terminate",
    rule: "TM-9",
    file: "offload-target/state-operations.js",
    find: `// TM-9: posted receives; spec 20 item 21.
    if (c.reqs.length > 0) {`,
    replace: "if (false) {",
    test: { file: SOFTWARE, name: "TM-9 / RQ-4 / TM-14..TM-16: receives complete" },
    why: "a terminate completes without completing the receive requests posted on the connection",
  },
  {
    id: "terminate-inside-upcall",
    rule: "TM-10",
    file: "offload-target/software-target.js",
    find: `if (this.#t.upcalls > 0)
            return;`,
    replace: "",
    test: { file: RULES, name: "TM-10: a terminate processed from inside an indication" },
    caughtBy: "TM-10: terminate completing inside an upcall",
    why: "process completes a terminate while the target's own indication is still in flight",
  },
  {
    id: "returned-sends-reversed",
    rule: "TM-14",
    file: "offload-target/state-operations.js",
    find: "const left = c.sends.length === 0 ? NO_SENDS : c.sends.splice(0).filter((e) => !e.disconnect);",
    replace:
      "const left = c.sends.length === 0 ? NO_SENDS : c.sends.splice(0).filter((e) => !e.disconnect).reverse();",
    test: { file: SOFTWARE, name: "TM-9 / RQ-4 / TM-14..TM-16: receives complete" },
    why: "the send NBLs handed back at terminate come in reverse order",
  },
  {
    id: "send-data-head-not-chain-head",
    rule: "TM-15",
    file: "offload-target/state-operations.js",
    find: "sendDataHead: head,",
    replace: "sendDataHead: nbls[1] ?? head,",
    test: { file: SOFTWARE, name: "TM-9 / RQ-4 / TM-14..TM-16: receives complete" },
    caughtBy: "TM-15",
    why: "the returned SendDataHead is not the first NBL of the returned chain",
  },
  {
    id: "partly-acked-nbl-not-advanced",
    rule: "TM-16",
    file: "offload-target/state-operations.js",
    find: `if (e.acked > 0)
                advance(viewOne(t.ledger, e.nbl, "target", OP_TERM_COMPLETE), e.acked);`,
    replace: "void e;",
    test: {
      file: SOFTWARE,
      name: "TM-16 / spec 20-22: a partly acknowledged NBL comes back advanced to SndUna",
    },
    why: "a partly acknowledged send NBL goes back unadvanced, so SndUna is not its first data byte",
  },
  {
    id: "empty-chain-not-null",
    rule: "TM-17",
    file: "offload-target/state-operations.js",
    find: "b.netBufferListChain = head; // BL-2 / TM-17: null when nothing is returned",
    replace: `b.netBufferListChain = head ?? (() => {
            const e = t.upPool.alloc([new Uint8Array(0)], "mutant: empty chain");
            t.ledger.transfer(e, "target", "host", "mutant: empty chain");
            return e;
        })();`,
    test: { file: SOFTWARE, name: "TM-17 / BL-2: no send data returned means a null chain" },
    caughtBy: "NetBufferListChain != SendDataHead",
    why: "a connection with no send data to hand back returns a non-NULL NetBufferListChain",
  },
  {
    id: "buffered-data-nbls-not-counted",
    rule: "TM-22",
    file: "offload-target/receive.js",
    find: `t.recvPool.lend(nbl);
    return nbl;`,
    replace: `t.recvPool.lend(nbl);
    if (final) t.recvPool.release(nbl);
    return nbl;`,
    test: { file: RULES, name: "RR-3 / TM-22 / TM-21: close is refused while BufferedData NBLs are out" },
    caughtBy: "TM-22: close must be refused while BufferedData NBLs are out",
    why: "BufferedData NBLs are not counted as out with the host, so the adapter closes under them",
  },
  {
    id: "close-with-indications-out",
    rule: "RR-3",
    file: "offload-target/software-target.js",
    find: `if (out > 0)
            throw new TargetBusyError(out);`,
    replace: "void out;",
    test: {
      file: RULES,
      name: "RR-3 / TM-22: close is refused with ERR_TARGET_BUSY while indicated NBLs are out",
    },
    caughtBy: "RR-3: close must be refused while indicated NBLs are out",
    why: "the adapter closes although indicated NBLs have not all been returned",
  },
  // -- Receive, indication, delivery (spec 14) --------------------------------------------
  {
    id: "indication-as-list",
    rule: "RI-1",
    file: "offload-target/receive.js",
    find: "const nbl = t.recvPool.alloc(chunks, OP_INDICATE); // INIT-3 / INIT-4: one NB per NBL",
    replace: `const nbl = t.recvPool.alloc(chunks, OP_INDICATE);
        nbl.next = t.recvPool.alloc([new Uint8Array(1)], OP_INDICATE);`,
    test: { file: UNTESTED, name: "RI-1 / RI-2: each receive indication passes one stand-alone NBL" },
    caughtBy: "RI-1",
    why: "an indication passes a list of two NBLs",
  },
  {
    id: "indication-status-resources",
    rule: "RI-2",
    file: "offload-target/receive.js",
    find: `t.host.tcpOffloadReceiveIndicate(c.handle, nbl, "NDIS_STATUS_SUCCESS"); // RI-2`,
    replace: `t.host.tcpOffloadReceiveIndicate(c.handle, nbl, "NDIS_STATUS_RESOURCES");`,
    test: { file: UNTESTED, name: "RI-1 / RI-2: each receive indication passes one stand-alone NBL" },
    caughtBy: "RI-2",
    why: "an indication is made with NDIS_STATUS_RESOURCES",
  },
  {
    id: "completion-not-busy",
    rule: "C-8",
    file: "offload-target/receive.js",
    find: `const was = c.busy;
    c.busy = true;`,
    replace: "const was = c.busy;",
    test: { file: SOFTWARE, name: "C-8 / C-9 / RC-1 / DA-2 / DA-4 / C-12 / B5" },
    caughtBy: "C-8",
    why: "a receive completion does not mark the connection busy, so a post inside it completes nested",
  },
  {
    id: "post-inside-completion-served-nested",
    rule: "RC-1",
    file: "offload-target/receive.js",
    find: "if (c.busy) {",
    replace: `if (c.busy && entry !== "E2") {`,
    test: { file: SOFTWARE, name: "C-8 / C-9 / RC-1 / DA-2 / DA-4 / C-12 / B5" },
    caughtBy: "C-8",
    why: "a request posted inside a receive completion is completed from within that completion",
  },
  {
    id: "delivery-ignores-busy",
    rule: "DA-2",
    file: "offload-target/receive.js",
    find: "if (c.busy) {",
    replace: "if (false) {",
    test: { file: SOFTWARE, name: "C-8 / C-9 / RC-1 / DA-2 / DA-4 / C-12 / B5" },
    caughtBy: "C-8: receive completion nested in another upcall",
    why: "the delivery algorithm's busy test is gone: every entry runs at once, also inside an upcall",
  },
  {
    id: "post-inside-completion-forgotten",
    rule: "C-9",
    file: "offload-target/receive.js",
    find: `else if (entry === "E2")
            c.rerunE2 = true;`,
    replace: "",
    test: { file: SOFTWARE, name: "C-9: a zero-byte request posted inside a receive completion" },
    why: "a request the host posts from inside a receive completion is not served once the call returned",
  },
  {
    id: "queued-runs-dropped",
    rule: "C-12",
    file: "offload-target/receive.js",
    find: `next = c.rerunE2 ? "E2" : c.rerunE1 ? "E1" : undefined;`,
    replace: "next = undefined;",
    test: { file: SOFTWARE, name: "C-12: a zero-byte request posted inside an indication" },
    why: "work that arrived during an upcall of a delivery run is dropped instead of run after it",
  },
  {
    id: "connector-a-stops-after-completion",
    rule: "DA-4",
    file: "offload-target/receive.js",
    find: "completeHead(t, c, filled); // A2, A3 (stops the push timer)",
    replace: "completeHead(t, c, filled);\n            return;",
    test: { file: SOFTWARE, name: "RI-3 / DA-4 / spec 20-25: a zero-byte request re-enables indications" },
    why: "a run stops after completing the filled requests instead of going on to A4 (more data, indicate)",
  },
  {
    id: "push-timer-outside-delivery",
    rule: "DA-1",
    file: "offload-target/receive.js",
    find: `case "E3": {`,
    replace: `case "E3": {
            return;`,
    test: { file: SOFTWARE, name: "delivery algorithm (spec 14.6, DA-1, RX-2)" },
    why: "the push timer's expiry does not run the delivery algorithm (its entry E3 does nothing)",
  },
  // -- Concurrency (spec 12) --------------------------------------------------------------
  {
    id: "send-runs-inside-upcall",
    rule: "C-11",
    file: "offload-target/software-target.js",
    find: "if (this.#t.upcalls > 0 || inbox !== undefined) {",
    replace: "if (inbox !== undefined) {",
    test: { file: RULES, name: "C-11: a send posted from inside an indication is queued, not run nested" },
    caughtBy: "the send queue was touched inside the indication",
    why: "a send posted from inside an indication works on the send queue at once, nested in the upcall",
  },
  {
    id: "initiate-refused-while-paused",
    rule: "C-13",
    file: "offload-target/software-target.js",
    find: "recordInitiate(this.#t, blockList);",
    replace: `if (this.#paused)
            throw new UsageError("MiniportInitiateOffload while paused");
        recordInitiate(this.#t, blockList);`,
    test: { file: RULES, name: "C-13: an initiate call that reaches the target after it paused offload" },
    caughtBy: "MiniportInitiateOffload while paused",
    why: "an initiate that reaches the target after it paused offload is refused",
  },
];

/**
 * MUST rules of those sections that no source patch can break, each with the reason. Empty: every
 * one of them has an entry above.
 */
export const NO_MUTANT: readonly NoMutant[] = [];
