// The translation between the kernel's TCP_REPAIR record and our engine's snapshot
// (src/device/kernel-state.ts), as properties over random records: sequence numbers anywhere in
// the 2^32 space (wrapping inside the queues), the sent/unsent split of the send queue, FINs the
// kernel record cannot carry, and a timestamp clock that never goes backwards. fast-check prints
// the seed and the counterexample of a failure.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { type KernelTcpExport, kernelFromSnapshot, snapshotFromKernel } from "../src/device/kernel-state.js";
import { importKernelTcp, millisecondClock, RepairError, type RepairAddon } from "../src/device/repair.js";
import { tcpConfig } from "../src/tcp/config.js";
import { TcpConnection } from "../src/tcp/connection.js";
import type { TcpSnapshot, TcpSnapshotCached } from "../src/tcp/types.js";
import { Duration, Instant } from "../src/time/instant.js";
import { UsageError } from "../src/util/errors.js";
import { Seq } from "../src/wire/seq.js";
import { TcpFlag } from "../src/wire/tcp-repr.js";

const RUNS = 300;
const AT = { family: 4 as const, localAddress: "192.0.2.1", remoteAddress: "192.0.2.2" };
const CACHED: TcpSnapshotCached = {
  initialRcvWnd: 65535,
  sendBufferSize: 1 << 20,
  noDelay: false,
  keepAlive: false,
  keepAliveIdle: Duration.fromSeconds(7200),
  keepAliveInterval: Duration.fromSeconds(75),
  keepAliveProbes: 9,
  maxRetransmissions: 15,
  userTimeout: undefined,
  effectiveMss: 1460,
};

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
/** Sequence numbers near the wrap point half the time. */
const seq = fc.oneof(u32, fc.integer({ min: 0xffff_f000, max: 0xffff_ffff }));

const kernelExport: fc.Arbitrary<KernelTcpExport> = fc
  .record({
    rcvNxt: seq,
    sndUna: seq,
    recvQueue: fc.uint8Array({ maxLength: 3000 }),
    sendQueue: fc.uint8Array({ maxLength: 3000 }),
    unsentPart: fc.double({ min: 0, max: 1, noNaN: true }),
    mss: fc.integer({ min: 536, max: 9000 }),
    sack: fc.boolean(),
    timestamps: fc.boolean(),
    windowScale: fc.option(
      fc.record({ snd: fc.integer({ min: 0, max: 14 }), rcv: fc.integer({ min: 0, max: 14 }) }),
      {
        nil: undefined,
      },
    ),
    timestamp: u32,
    wl1Back: fc.integer({ min: 0, max: 100_000 }),
    sndWnd: fc.integer({ min: 0, max: 1 << 24 }),
    maxExtra: fc.integer({ min: 0, max: 1 << 20 }),
    rcvWnd: fc.integer({ min: 0, max: 1 << 24 }),
    wupBack: fc.integer({ min: 0, max: 70_000 }),
    cwnd: fc.integer({ min: 1, max: 1000 }),
    ssthresh: fc.oneof(fc.constant(0x7fff_ffff), fc.integer({ min: 2, max: 1000 })),
    rtt: fc.integer({ min: 0, max: 2_000_000 }),
    rto: fc.integer({ min: 200_000, max: 120_000_000 }),
  })
  .map((r) => {
    const unsent = Math.floor(r.unsentPart * r.sendQueue.length);
    return {
      family: 4,
      local: { address: AT.localAddress, port: 40000 },
      remote: { address: AT.remoteAddress, port: 80 },
      rcvNxt: r.rcvNxt,
      recvQueue: r.recvQueue,
      sndUna: r.sndUna,
      sendQueue: r.sendQueue,
      unsent,
      mss: r.mss,
      sack: r.sack,
      timestamps: r.timestamps,
      windowScale:
        r.windowScale === undefined ? undefined : { snd: r.windowScale.snd, rcv: r.windowScale.rcv },
      timestamp: r.timestamp,
      window: {
        sndWl1: (r.rcvNxt - r.wl1Back) >>> 0,
        sndWnd: r.sndWnd,
        maxWindow: r.sndWnd + r.maxExtra,
        rcvWnd: r.rcvWnd,
        rcvWup: (r.rcvNxt - r.wupBack) >>> 0,
      },
      rcvbuf: 1 << 20,
      sndbuf: 1 << 20,
      info: {
        state: 1,
        options: 0,
        sndWscale: r.windowScale?.snd ?? 0,
        rcvWscale: r.windowScale?.rcv ?? 0,
        rto: r.rto,
        ato: 40_000,
        sndMss: r.mss - (r.timestamps ? 12 : 0),
        rcvMss: 536,
        unacked: 0,
        retransmits: 0,
        lost: 0,
        rtt: r.rtt,
        rttvar: Math.floor(r.rtt / 2),
        sndSsthresh: r.ssthresh,
        sndCwnd: r.cwnd,
        advmss: 1448,
        rcvSpace: 65535,
        bytesSent: 0,
        bytesRetrans: 0,
      },
    } satisfies KernelTcpExport;
  });

const bytesOf = (chunks: readonly Uint8Array[]): Buffer => Buffer.concat(chunks.map((c) => Buffer.from(c)));

void describe("kernel record <-> engine snapshot", () => {
  void test("kernel -> snapshot -> kernel keeps sequence numbers, queues, split, options, clock, windows", () => {
    fc.assert(
      fc.property(kernelExport, (k) => {
        const snap = snapshotFromKernel(k, CACHED);
        const d = snap.delegated;
        // The snapshot's own arithmetic: SND.NXT - SND.UNA is the sent part, modulo 2^32.
        assert.equal(Seq.diff(d.sndNxt, d.sndUna), k.sendQueue.length - k.unsent);
        assert.equal(d.sndMax, d.sndNxt);
        assert.equal(d.rcvNxt, k.rcvNxt);
        assert.deepEqual(bytesOf(d.sendData), Buffer.from(k.sendQueue));
        assert.deepEqual(bytesOf(d.bufferedData), Buffer.from(k.recvQueue));
        assert.equal(d.tsTime, k.timestamp, "our clock continues from the kernel's");
        assert.equal(d.cwnd, k.info.sndCwnd * k.info.sndMss);
        const back = kernelFromSnapshot(snap, AT);
        assert.equal(back.rcvNxt, k.rcvNxt);
        assert.equal(back.sndUna, k.sndUna);
        assert.deepEqual(Buffer.from(back.recvQueue), Buffer.from(k.recvQueue));
        assert.deepEqual(Buffer.from(back.sendQueue), Buffer.from(k.sendQueue));
        assert.equal(back.unsent, k.unsent);
        assert.equal(back.mss, k.mss);
        assert.equal(back.sack, k.sack);
        assert.equal(back.timestamps, k.timestamps);
        assert.deepEqual(back.windowScale, k.windowScale);
        assert.equal(back.timestamp, k.timestamp, "the kernel's clock continues where it was");
        assert.equal(back.fin, undefined);
        assert.deepEqual(back.local, k.local);
        assert.deepEqual(back.remote, k.remote);
        const w = back.window;
        assert.equal(w.sndWl1, k.window.sndWl1);
        assert.equal(w.sndWnd, k.window.sndWnd);
        assert.equal(w.maxWindow, k.window.maxWindow);
        // The advertised right edge survives (RCV.WUP moves up to RCV.NXT), unless it was
        // already behind RCV.NXT: then the window is 0, never negative.
        const edge = Seq.add(Seq.of(k.window.rcvWup), k.window.rcvWnd);
        assert.equal(w.rcvWup, k.rcvNxt);
        if (Seq.ge(edge, Seq.of(k.rcvNxt))) assert.equal(Seq.add(Seq.of(w.rcvWup), w.rcvWnd), edge);
        else assert.equal(w.rcvWnd, 0);
      }),
      { numRuns: RUNS },
    );
  });

  void test("the snapshot of a kernel record imports into our engine and holds its invariants", () => {
    const cfg = tcpConfig({ sendBufferSize: 1 << 20 });
    fc.assert(
      fc.property(kernelExport, (k) => {
        const c = TcpConnection.importState(snapshotFromKernel(k, CACHED), Instant.fromMillis(5), cfg);
        c.checkInvariants();
        assert.equal(c.state, "ESTABLISHED");
        assert.equal(c.readable, k.recvQueue.length);
        assert.equal(c.sndUna, k.sndUna);
      }),
      { numRuns: RUNS },
    );
  });

  void test("TS.Recent unknown after the import: the peer's first timestamp is taken, whatever its value", () => {
    // The importer's clock may be younger than the 24-day PAWS limit the snapshot's stale age
    // stands for: a TSval "before" TS.Recent = 0 (2^31 and above) must not be dropped as old.
    const cfg = tcpConfig({ sendBufferSize: 1 << 20 });
    fc.assert(
      fc.property(kernelExport, u32, (k0, tsVal) => {
        // An open receive window, so the data is acceptable whatever the arbitrary window was.
        const k = { ...k0, timestamps: true, window: { ...k0.window, rcvWup: k0.rcvNxt, rcvWnd: 65535 } };
        const now = Instant.fromMillis(5);
        const c = TcpConnection.importState(snapshotFromKernel(k, CACHED), now, cfg);
        const data = new Uint8Array(10).fill(7);
        c.handleSegment(now, {
          srcPort: k.remote.port,
          dstPort: k.local.port,
          seq: Seq.of(k.rcvNxt),
          ack: Seq.of(k.sndUna),
          flags: TcpFlag.ACK | TcpFlag.PSH,
          window: 65535,
          urgent: 0,
          mss: undefined,
          windowScale: undefined,
          sackPermitted: false,
          sack: [],
          timestamps: { tsVal, tsEcr: k.timestamp },
          unknownOptions: [],
          payload: data,
        });
        assert.equal(c.stats.dropsPaws, 0);
        assert.equal(c.readable, k.recvQueue.length + data.length);
        // Taken: a later, older TSval is now dropped by PAWS.
        const before = c.stats.dropsPaws;
        c.handleSegment(now, {
          srcPort: k.remote.port,
          dstPort: k.local.port,
          seq: Seq.add(Seq.of(k.rcvNxt), data.length),
          ack: Seq.of(k.sndUna),
          flags: TcpFlag.ACK,
          window: 65535,
          urgent: 0,
          mss: undefined,
          windowScale: undefined,
          sackPermitted: false,
          sack: [],
          timestamps: { tsVal: (tsVal - 1000) >>> 0, tsEcr: k.timestamp },
          unknownOptions: [],
          payload: data,
        });
        assert.equal(c.stats.dropsPaws, before + 1);
      }),
      { numRuns: RUNS },
    );
  });

  void test("snapshot -> kernel: FINs leave the sequence numbers, the split and the windows legal for the kernel", () => {
    fc.assert(
      fc.property(
        kernelExport,
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (k, finReceived, finQueued, finSent) => {
          const base = snapshotFromKernel(k, CACHED);
          const d = base.delegated;
          const sentFin = finQueued && finSent && k.unsent === 0;
          // Our engine counts a received FIN in RCV.NXT, and a sent FIN in SND.MAX.
          const snap: TcpSnapshot = {
            ...base,
            delegated: {
              ...d,
              state: finReceived
                ? finQueued
                  ? "LAST-ACK"
                  : "CLOSE-WAIT"
                : finQueued
                  ? "FIN-WAIT-1"
                  : "ESTABLISHED",
              finReceived,
              finQueued,
              rcvNxt: finReceived ? Seq.add(d.rcvNxt, 1) : d.rcvNxt,
              rcvAdv: finReceived ? Seq.add(d.rcvAdv, 1) : d.rcvAdv,
              sndMax: sentFin ? Seq.add(d.sndMax, 1) : d.sndMax,
              sndNxt: sentFin ? Seq.add(d.sndNxt, 1) : d.sndNxt,
            },
          };
          const r = kernelFromSnapshot(snap, AT);
          assert.equal(r.rcvNxt, k.rcvNxt, "the kernel's RCV.NXT does not count the FIN");
          assert.equal(
            r.sendQueue.length - r.unsent,
            k.sendQueue.length - k.unsent,
            "the sent part excludes our FIN",
          );
          assert.deepEqual(
            r.fin,
            finReceived || finQueued ? { received: finReceived, queued: finQueued } : undefined,
          );
          // The kernel's TCP_REPAIR_WINDOW rules (net/ipv4/tcp.c tcp_repair_set_window).
          assert.ok(r.window.maxWindow >= r.window.sndWnd);
          assert.ok(Seq.le(Seq.of(r.window.rcvWup), Seq.of(r.rcvNxt)));
          assert.ok(r.window.rcvWnd >= 0);
          assert.ok(Seq.le(Seq.of(r.window.sndWl1), Seq.add(Seq.of(r.rcvNxt), r.window.rcvWnd)));
          assert.equal(r.timestamp, d.tsTime, "TSvals continue from ours: the peer's PAWS accepts them");
        },
      ),
      { numRuns: RUNS },
    );
  });

  void test("states and records the kernel cannot take are refused with typed errors", () => {
    const k = fc.sample(kernelExport, { numRuns: 1, seed: 42 })[0];
    assert.ok(k !== undefined);
    const snap = snapshotFromKernel(k, CACHED);
    for (const state of ["TIME-WAIT", "SYN-SENT", "SYN-RECEIVED", "CLOSED", "LISTEN"] as const) {
      assert.throws(
        () => kernelFromSnapshot({ ...snap, delegated: { ...snap.delegated, state } }, AT),
        (e: unknown) => e instanceof UsageError && e.code === "ERR_USAGE",
        state,
      );
    }
    const beyond = {
      ...snap,
      delegated: { ...snap.delegated, sndMax: Seq.add(snap.delegated.sndUna, k.sendQueue.length + 1) },
    };
    assert.throws(
      () => kernelFromSnapshot(beyond, AT),
      (e: unknown) => e instanceof UsageError,
    );
    assert.throws(
      () => snapshotFromKernel({ ...k, unsent: k.sendQueue.length + 1 }, CACHED),
      (e: unknown) => e instanceof UsageError && e.code === "ERR_USAGE",
    );
    // importKernelTcp refuses a record with a FIN before it makes any system call.
    const untouchable = new Proxy({} as RepairAddon, {
      get: () => {
        throw new Error("no system call expected");
      },
    });
    const withFin = kernelFromSnapshot(
      {
        ...snap,
        delegated: {
          ...snap.delegated,
          state: "CLOSE-WAIT",
          finReceived: true,
          rcvNxt: Seq.add(snap.delegated.rcvNxt, 1),
        },
      },
      AT,
    );
    assert.throws(
      () => importKernelTcp(withFin, {}, untouchable),
      (e: unknown) =>
        e instanceof RepairError &&
        e.code === "ERR_REPAIR" &&
        e.errnoName === "EOPNOTSUPP" &&
        e.call === "importKernelTcp",
    );
  });
});

void describe("the timestamp clock handed to TCP_REPAIR", () => {
  void test("millisecondClock: even (an odd value selects microsecond TSvals), never behind, at most 1 ahead", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), (ts) => {
        const v = millisecondClock(ts);
        assert.equal(v & 1, 0, `${ts} -> ${v}`);
        assert.ok(((v - ts) | 0) >= 0 && ((v - ts) | 0) <= 1, `${ts} -> ${v}`);
      }),
    );
  });

  void test("importKernelTcp sets TCP_TIMESTAMP to an even value", () => {
    const calls: [number, number][] = [];
    const fake = new Proxy({} as RepairAddon, {
      get: (_t, k) => {
        if (k === "setInt")
          return (_fd: number, _level: number, name: number, value: number) => calls.push([name, value]);
        if (k === "socket") return () => 3;
        if (k === "send") return (_fd: number, data: Uint8Array, off: number) => data.length - off;
        return () => undefined;
      },
    });
    const k = fc.sample(kernelExport, { numRuns: 1, seed: 7 })[0];
    assert.ok(k !== undefined);
    importKernelTcp({ ...k, timestamps: true, timestamp: 0x12345677 }, {}, fake);
    const TCP_TIMESTAMP = 24;
    assert.deepEqual(
      calls.filter(([name]) => name === TCP_TIMESTAMP).map(([, v]) => v),
      [0x12345678],
    );
  });
});
