// Engine snapshot <-> chimney TcpOffloadState: field mapping, derivations, NBL ownership, and the
// end-to-end property that a connection migrated through the chimney state continues with exactly
// the same segments on the wire as an un-migrated twin.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { tcpConfig } from "../tcp/config.js";
import { TcpConnection } from "../tcp/connection.js";
import { Seq } from "../wire/seq.js";
import type { TcpState } from "../tcp/types.js";
import type { TcpRepr } from "../wire/tcp-repr.js";
import { BufferLedger } from "../nbl/ledger.js";
import { nblArray } from "../nbl/chain.js";
import {
  blankSnapshot,
  cachedStateFromEngine,
  copyBufferedData,
  deriveRto,
  fromOffloadConnectionState,
  importOffloadState,
  isImportableState,
  nblChainOf,
  nblRange,
  offloadStateFromSnapshot,
  releaseSnapshotData,
  sendDataViews,
  snapshotFromOffloadState,
  toOffloadConnectionState,
} from "./tcp-state.js";
import { OFFLOADABLE_STATES, type TcpDelegatedState } from "./state.js";

const CFG = tcpConfig({ delayedAck: Duration.fromMillis(40) });
const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));

let ledger = new BufferLedger();
afterEach(() => {
  const done = ledger;
  ledger = new BufferLedger();
  done.assertQuiescent();
});

/** Deterministic bytes. */
function pattern(n: number, salt: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + salt * 7 + (i >>> 8)) & 0xff;
  return out;
}

function fmt(dir: string, s: TcpRepr): string {
  let sum = 0;
  for (const b of s.payload) sum = (sum * 33 + b) >>> 0;
  const ts = s.timestamps === undefined ? "-" : `${s.timestamps.tsVal}/${s.timestamps.tsEcr}`;
  const sack = s.sack.map((b) => `${b.left}-${b.right}`).join(",");
  return `${dir} f=${s.flags.toString(16)} seq=${s.seq} ack=${s.ack} w=${s.window} len=${s.payload.length} sum=${sum} ts=${ts} sack=${sack}`;
}

interface World {
  a: TcpConnection;
  p: TcpConnection;
  now: number;
  trace: string[];
  /** Segments A sent that the "link" still holds (delivered to P on `deliver`). */
  toP: TcpRepr[];
  toA: TcpRepr[];
  readByA: number[];
  readByP: number[];
}

function drain(w: World): void {
  const now = at(w.now);
  for (let s = w.a.pollTransmit(now); s !== undefined; s = w.a.pollTransmit(now)) {
    w.trace.push(fmt("A>", s));
    w.toP.push(s);
  }
  for (let s = w.p.pollTransmit(now); s !== undefined; s = w.p.pollTransmit(now)) {
    w.trace.push(fmt("P>", s));
    w.toA.push(s);
  }
}

function deliver(w: World, toP: number, toA: number): void {
  const now = at(w.now);
  for (const s of w.toP.splice(0, toP)) w.p.handleSegment(now, s);
  for (const s of w.toA.splice(0, toA)) w.a.handleSegment(now, s);
  drain(w);
}

function tick(w: World, ms: number): void {
  w.now += ms;
  const now = at(w.now);
  for (const c of [w.a, w.p]) {
    const t = c.pollTimeout();
    if (t !== undefined && t <= now) c.handleTimeout(now);
  }
  drain(w);
}

function readAll(w: World): void {
  for (let b = w.a.recv(); b !== undefined; b = w.a.recv()) for (const x of b) w.readByA.push(x);
  for (let b = w.p.recv(); b !== undefined; b = w.p.recv()) for (const x of b) w.readByP.push(x);
  drain(w);
}

/** A connection A <-> P, established by a real handshake. */
function establish(): World {
  const a = TcpConnection.connect(
    CFG,
    { localPort: 40000, remotePort: 80, iss: Seq.of(0xffff_f000), tsOffset: 7 },
    at(0),
  );
  const w: World = { a, p: a, now: 0, trace: [], toP: [], toA: [], readByA: [], readByP: [] };
  const syn = a.pollTransmit(at(0));
  assert.ok(syn !== undefined);
  w.p = TcpConnection.accept(
    CFG,
    { localPort: 80, remotePort: 40000, iss: Seq.of(123_456), tsOffset: 99 },
    syn,
    at(1),
  );
  w.now = 1;
  drain(w);
  tick(w, 1);
  deliver(w, 0, 1);
  tick(w, 1);
  deliver(w, 1, 0);
  assert.equal(w.a.state, "ESTABLISHED");
  assert.equal(w.p.state, "ESTABLISHED");
  return w;
}

/** Migrates A through the chimney state, as host -> target -> host would (ledger included). */
function migrate(w: World): void {
  const snap = w.a.exportState(at(w.now));
  const state = offloadStateFromSnapshot(snap, { ledger, owner: "host", op: "InitiateOffload" });
  const send = state.delegatedState.sendDataHead;
  const buffered = state.delegatedState.bufferedData;
  if (send !== null) ledger.transfer(send, "host", "target", "InitiateOffload");
  const opts = { cfg: CFG, pathMtu: 1500, ipVersion: 4 } as const;
  const load = (): ReturnType<typeof importOffloadState> =>
    importOffloadState(state, ledger, "target", "InitiateOffload", opts);
  const imported =
    buffered === null ? load() : ledger.lend(buffered, "host", "target", "InitiateOffload", load);
  w.a = TcpConnection.importState(imported, at(w.now), CFG);
  w.a.checkInvariants();
  // The engine keeps views of the send bytes, not the NBLs: release the descriptors.
  if (send !== null) ledger.free(send, "target");
  if (buffered !== null) ledger.free(buffered, "host");
}

/** A scripted exchange; `migrateAt` = the step at which A is migrated (undefined = twin). */
function scenario(migrateAt: number | undefined, closeEarly: boolean): World {
  const w = establish();
  const steps: (() => void)[] = [
    // P sends 3000 bytes; A's application does not read yet (buffered data at migration).
    () => {
      w.p.send(pattern(3000, 1));
      drain(w);
      deliver(w, 0, 10);
      tick(w, 50); // delayed ACK fires: no ACK owed afterwards
      deliver(w, 10, 0);
    },
    // A sends 5000 bytes; only the first two segments reach P.
    () => {
      w.a.send(pattern(5000, 2));
      if (closeEarly) w.a.close();
      drain(w);
      deliver(w, 2, 0);
      tick(w, 50);
    },
    // The rest arrives; P's ACKs come back.
    () => {
      deliver(w, 10, 10);
      tick(w, 50);
      deliver(w, 10, 10);
    },
    // A reads, P sends more, both sides read.
    () => {
      readAll(w);
      w.p.send(pattern(2000, 3));
      drain(w);
      deliver(w, 10, 10);
      tick(w, 50);
      deliver(w, 10, 10);
      readAll(w);
    },
    // A segment from A is lost: A's retransmission timer recovers it.
    () => {
      w.a.send(pattern(700, 4));
      drain(w);
      w.toP.splice(0, 1);
      for (let i = 0; i < 40; i++) {
        tick(w, 50);
        deliver(w, 10, 10);
      }
      readAll(w);
    },
    // Both close.
    () => {
      if (!closeEarly) w.a.close();
      w.p.close();
      drain(w);
      for (let i = 0; i < 10; i++) {
        tick(w, 50);
        deliver(w, 10, 10);
      }
      readAll(w);
    },
  ];
  steps.forEach((step, i) => {
    if (i === migrateAt) migrate(w);
    step();
  });
  return w;
}

/** Every RFC 9293 state, in the RFC's order. */
const ALL_STATES: readonly TcpState[] = [
  "CLOSED",
  "LISTEN",
  "SYN-SENT",
  "SYN-RECEIVED",
  "ESTABLISHED",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
  "TIME-WAIT",
];

void describe("state names", () => {
  void test("ST-9: an engine connection is offloadable from ESTABLISHED through LAST-ACK only", () => {
    const offloadable = ALL_STATES.filter((s) => OFFLOADABLE_STATES.includes(toOffloadConnectionState(s)));
    assert.deepEqual(
      offloadable,
      ALL_STATES.slice(ALL_STATES.indexOf("ESTABLISHED"), ALL_STATES.indexOf("TIME-WAIT")),
    );
    assert.equal(isImportableState(toOffloadConnectionState("TIME-WAIT")), true, "imported, never offloaded");
  });

  void test("every RFC 9293 state maps to its chimney name and back", () => {
    const names = new Set(ALL_STATES.map(toOffloadConnectionState));
    assert.equal(names.size, ALL_STATES.length);
    for (const s of ALL_STATES) assert.equal(fromOffloadConnectionState(toOffloadConnectionState(s)), s);
    assert.equal(toOffloadConnectionState("FIN-WAIT-1"), "TcpConnectionFinWait1");
    assert.equal(toOffloadConnectionState("SYN-RECEIVED"), "TcpConnectionSynRcvd");
    assert.equal(isImportableState("TcpConnectionSynRcvd"), false);
    assert.equal(isImportableState("TcpConnectionClosing"), true);
  });
});

void describe("engine -> chimney -> engine", () => {
  for (const closeEarly of [false, true]) {
    for (const migrateAt of [1, 2, 3, 4, 5]) {
      void test(`migrating at step ${migrateAt}${closeEarly ? " (FIN queued)" : ""} changes nothing on the wire`, () => {
        const twin = scenario(undefined, closeEarly);
        const moved = scenario(migrateAt, closeEarly);
        assert.deepEqual(moved.trace, twin.trace);
        assert.deepEqual(moved.readByA, twin.readByA);
        assert.deepEqual(moved.readByP, twin.readByP);
        assert.equal(moved.a.state, twin.a.state);
        assert.equal(twin.readByA.length, 5000);
        assert.equal(twin.readByP.length, closeEarly ? 5000 : 5700);
      });
    }
  }

  void test("fields map one to one; send data is zero-copy, buffered data is copied once", () => {
    const w = establish();
    w.p.send(pattern(3000, 1));
    drain(w);
    deliver(w, 0, 10);
    tick(w, 50);
    deliver(w, 10, 0);
    deliver(w, 0, 10);
    tick(w, 50);
    deliver(w, 10, 0);
    w.a.send(pattern(4000, 2));
    drain(w);
    const snap = w.a.exportState(at(w.now));
    const s = offloadStateFromSnapshot(snap, { ledger, owner: "host", hashValue: 0x1234, ttlOrHopLimit: 17 });
    const d = s.delegatedState;
    assert.equal(d.state, "TcpConnectionEstablished");
    assert.equal(d.sndUna, snap.delegated.sndUna);
    assert.equal(d.sndMax, snap.delegated.sndMax);
    assert.equal(d.rcvWnd, Seq.delta(snap.delegated.rcvAdv, snap.delegated.rcvNxt));
    assert.equal(s.constState.hashValue, 0x1234);
    assert.equal(s.cachedState.ttlOrHopLimit, 17);
    assert.equal(s.cachedState.naglingEnabled, !snap.cachedState.noDelay);
    assert.equal(s.constState.timestampEnabled, true);
    // Send data: one NBL per chunk, head..tail, owned by the builder, views of the engine's bytes.
    assert.ok(d.sendDataHead !== null && d.sendDataTail !== null);
    assert.equal(ledger.ownerOf(d.sendDataHead), "host");
    const views = sendDataViews(d, ledger, "host", "test");
    assert.equal(views.length, snap.delegated.sendData.length);
    views.forEach((v, i) => assert.equal(v.buffer, snap.delegated.sendData[i]?.buffer));
    // Buffered data: copied into a fresh array, same bytes.
    const copy = copyBufferedData(d, ledger, "host", "test");
    assert.deepEqual(copy, pattern(3000, 1));
    assert.notEqual(copy.buffer, snap.delegated.bufferedData[0]?.buffer);
    const back = snapshotFromOffloadState(s, views, [copy], { cfg: CFG, pathMtu: 1500, ipVersion: 4 });
    assert.equal(back.delegated.sndWl2, d.sndUna);
    assert.equal(back.delegated.rcvAdv, snap.delegated.rcvAdv);
    assert.equal(back.delegated.finQueued, false);
    assert.equal(back.delegated.finReceived, false);
    assert.equal(back.delegated.rto, snap.delegated.rto);
    assert.equal(back.cachedState.effectiveMss, 1460);
    ledger.free(d.sendDataHead, "host");
    if (d.bufferedData !== null) ledger.free(d.bufferedData, "host");
  });

  void test("FIN flags are derived from the state", () => {
    const base = establish();
    const s = offloadStateFromSnapshot(base.a.exportState(at(base.now)), { ledger, owner: "host" });
    const cases: [TcpDelegatedState["state"], boolean, boolean][] = [
      ["TcpConnectionEstablished", false, false],
      ["TcpConnectionFinWait1", true, false],
      ["TcpConnectionFinWait2", true, false],
      ["TcpConnectionCloseWait", false, true],
      ["TcpConnectionClosing", true, true],
      ["TcpConnectionLastAck", true, true],
      ["TcpConnectionTimeWait", true, true],
    ];
    for (const [state, finQ, finR] of cases) {
      const snap = snapshotFromOffloadState(
        { ...s, delegatedState: { ...s.delegatedState, state } },
        [],
        [],
        {
          cfg: CFG,
          pathMtu: 1280,
          ipVersion: 6,
        },
      );
      assert.equal(snap.delegated.finQueued, finQ, state);
      assert.equal(snap.delegated.finReceived, finR, state);
      assert.equal(snap.cachedState.effectiveMss, 1220);
    }
    assert.throws(
      () =>
        snapshotFromOffloadState(
          { ...s, delegatedState: { ...s.delegatedState, state: "TcpConnectionSynSent" } },
          [],
          [],
          { cfg: CFG, pathMtu: 1500, ipVersion: 4 },
        ),
      { code: "ERR_USAGE" },
    );
  });

  void test("a kept snapshot written again reads as a fresh one: nothing of the last state stays", () => {
    const base = establish();
    const s = offloadStateFromSnapshot(base.a.exportState(at(base.now)), { ledger, owner: "host" });
    const other = offloadStateFromSnapshot(base.p.exportState(at(base.now)), { ledger, owner: "host" });
    const fin = { ...s, delegatedState: { ...s.delegatedState, state: "TcpConnectionCloseWait" as const } };
    const kept = blankSnapshot();
    const data = [Uint8Array.of(1, 2, 3)];
    const o4 = { cfg: CFG, pathMtu: 1500, ipVersion: 4 } as const;
    const o6 = { cfg: CFG, pathMtu: 1280, ipVersion: 6, iss: Seq.of(77), irs: Seq.of(99) } as const;
    // Each state written over the last one gives what a fresh snapshot of it gives.
    for (const [st, send, buffered, o] of [
      [other, data, [], o6],
      [fin, [], data, o4],
      [s, data, data, o6],
    ] as const) {
      const again = snapshotFromOffloadState(st, send, buffered, o, kept);
      assert.equal(again, kept, "written into the kept one");
      assert.deepEqual(again, snapshotFromOffloadState(st, send, buffered, o));
    }
    releaseSnapshotData(kept);
    assert.deepEqual([kept.delegated.sendData.length, kept.delegated.bufferedData.length], [0, 0]);
    for (const st of [s, other]) {
      ledger.free(
        st.delegatedState.sendDataHead as NonNullable<typeof st.delegatedState.sendDataHead>,
        "host",
      );
      if (st.delegatedState.bufferedData !== null) ledger.free(st.delegatedState.bufferedData, "host");
    }
  });

  void test("RTO is derived from SRTT/RTTVAR and backed off per retransmission", () => {
    const base = establish();
    const d = offloadStateFromSnapshot(base.a.exportState(at(base.now)), {
      ledger,
      owner: "host",
    }).delegatedState;
    const cfg = tcpConfig({ minRto: Duration.fromMillis(200), maxRto: Duration.fromSeconds(10) });
    const none = { ...d, sRtt: undefined, rttVar: undefined, retransmitCount: 0 };
    assert.equal(deriveRto(none, cfg), cfg.initialRto);
    const some = {
      ...d,
      sRtt: Duration.fromMillis(300),
      rttVar: Duration.fromMillis(50),
      retransmitCount: 0,
    };
    assert.equal(deriveRto(some, cfg), Duration.fromMillis(500));
    assert.equal(deriveRto({ ...some, retransmitCount: 2 }, cfg), Duration.fromMillis(2000));
    assert.equal(deriveRto({ ...some, retransmitCount: 10 }, cfg), cfg.maxRto);
    const tiny = { ...d, sRtt: Duration.fromMillis(1), rttVar: Duration.ZERO, retransmitCount: 0 };
    assert.equal(deriveRto(tiny, cfg), cfg.minRto);
  });

  void test("nblRange stops at the tail and rejects a tail that is not on the chain", () => {
    const parts = [pattern(10, 1), pattern(20, 2), pattern(30, 3)];
    const head = ledger.alloc("host", []);
    const chain = offloadStateFromSnapshot(
      {
        ...establish().a.exportState(at(10)),
      },
      { ledger, owner: "host" },
    );
    assert.equal(chain.delegatedState.sendDataHead, null);
    const w = establish();
    w.a.send(parts[0] as Uint8Array);
    w.a.send(parts[1] as Uint8Array);
    w.a.send(parts[2] as Uint8Array);
    const s = offloadStateFromSnapshot(w.a.exportState(at(w.now)), { ledger, owner: "host" });
    const all = nblArray(s.delegatedState.sendDataHead);
    assert.equal(all.length, 3);
    assert.deepEqual(nblRange(all[0] ?? null, all[1] ?? null), all.slice(0, 2));
    // Each NBL contributes its own bytes once, in order.
    const views = sendDataViews(s.delegatedState, ledger, "host", "test");
    assert.deepEqual(
      views.map((v) => v.length),
      [10, 20, 30],
    );
    assert.throws(() => nblRange(all[1] ?? null, head), { code: "ERR_USAGE" });
    ledger.free(head, "host");
    if (s.delegatedState.sendDataHead !== null) ledger.free(s.delegatedState.sendDataHead, "host");
  });
});

void describe("tcp-state helpers the mutation run pinned down", () => {
  void test("cachedStateFromEngine: the one-shot flags are false; given extras are kept, missing ones are 0", () => {
    const ca = {
      keepAlive: true,
      noDelay: false,
      initialRcvWnd: 65535,
      keepAliveProbes: 3,
      keepAliveIdle: 7200,
      keepAliveInterval: 75,
      userTimeout: undefined,
    } as unknown as Parameters<typeof cachedStateFromEngine>[0];
    const plain = cachedStateFromEngine(ca);
    assert.deepEqual([plain.keepAliveRestart, plain.maxRtRestart, plain.updateRcvWnd], [false, false, false]);
    assert.deepEqual(
      [plain.rcvIndicationSize, plain.flowLabel, plain.tosOrTrafficClass, plain.ttlOrHopLimit],
      [0, 0, 0, 64],
    );
    const given = cachedStateFromEngine(ca, { rcvIndicationSize: 9, flowLabel: 5, tosOrTrafficClass: 7 });
    assert.deepEqual([given.rcvIndicationSize, given.flowLabel, given.tosOrTrafficClass], [9, 5, 7]);
  });

  void test("nblChainOf makes one NBL per non-empty chunk", () => {
    const ledger = new BufferLedger();
    const { head, tail } = nblChainOf(
      [Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)],
      ledger,
      "host",
      "t",
    );
    const nbls = nblArray(head);
    assert.equal(nbls.length, 2);
    assert.equal(tail, nbls[1]);
    ledger.free(head!, "host");
    ledger.assertQuiescent();
  });

  void test("deriveRto: the initial RTO without samples, doubled per retransmission up to the maximum", () => {
    const d = (sRtt: number | undefined, rttVar: number | undefined, retransmitCount: number) =>
      ({ sRtt, rttVar, retransmitCount }) as unknown as TcpDelegatedState;
    const us = (x: Duration): number => x;
    assert.equal(us(deriveRto(d(undefined, 1000, 0), CFG)), CFG.initialRto);
    assert.equal(us(deriveRto(d(100_000, undefined, 0), CFG)), CFG.initialRto);
    const base = us(deriveRto(d(300_000, 50_000, 0), CFG));
    assert.equal(us(deriveRto(d(300_000, 50_000, 1), CFG)), Math.min(CFG.maxRto, base * 2));
    assert.equal(us(deriveRto(d(300_000, 50_000, 60), CFG)), CFG.maxRto);
  });
});
