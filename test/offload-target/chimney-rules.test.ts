// The software target's registration, capabilities, pause / resume, hardware-failure procedure,
// re-entrancy, pools, close and statistics (spec digest 3, 11.9, 12, 14.4, 16.6, 18.1): one test
// per rule, named with its id. The ledger is quiescent after every test.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration } from "../../src/time/instant.js";
import { Seq } from "../../src/wire/seq.js";
import { InvariantViolation, UsageError } from "../../src/util/errors.js";
import {
  assertStatusWritten,
  type MiniportOffloadContext,
  newBlock,
  type TcpBlock,
} from "../../src/chimney/block-list.js";
import { capabilities, offloadParameters, scaleTicks } from "../../src/chimney/capabilities.js";
import { ChimneyRegistry } from "../../src/chimney/registration.js";
import type { NetBufferList } from "../../src/nbl/nbl.js";
import { emitTcpPacket } from "../../src/wire/packet.js";
import { ip } from "../../src/wire/ip-addr.js";
import { TcpFlag } from "../../src/wire/tcp-repr.js";
import {
  advance,
  at,
  HOST_IP,
  HOST_MAC,
  HOST_PORT,
  offloaded,
  PEER_IP,
  PEER_MAC,
  pattern,
  pump,
  tcpRef,
  terminate,
  type World,
  trackWorlds,
  freeChain,
  upload,
} from "../support/target-testing.js";
import { TargetBusyError } from "../../src/offload-target/software-target.js";

const track = trackWorlds();

/** The peer sends `n` bytes through its engine; the host accepts every indication. */
function peerSends(w: World, n: number, salt: number): void {
  w.peer.engine.send(pattern(n, salt));
  pump(w);
}

void describe("registration (spec 3.1, 3.2)", () => {
  void test("INIT-1 / INIT-2: two handler tables, then NdisMGetOffloadHandlers once for the TCP chimney", () => {
    const w = track(offloaded({ initiate: false }));
    const reg = new ChimneyRegistry(w.host);
    assert.equal(reg.complete, false);
    assert.throws(() => reg.offloadTarget(), UsageError);
    w.target.initialize(reg);
    assert.deepEqual(reg.calls, [
      "NdisSetOptionalHandlers(generic)",
      "NdisSetOptionalHandlers(tcp)",
      "NdisMGetOffloadHandlers(1)",
    ]);
    assert.equal(reg.complete, true);
    assert.notEqual(w.target.offloadHandlers, undefined);
    assert.throws(() => {
      w.target.initialize(reg);
    }, UsageError);
    // INIT-2: only NdisTcpChimneyOffload is defined.
    assert.equal(reg.getOffloadHandlers(0).status, "STATUS_NOT_SUPPORTED");
    assert.equal(reg.getOffloadHandlers(2).status, "STATUS_NOT_SUPPORTED");
    // The host reaches the target through the registered handlers only.
    reg.offloadTarget().initiateOffload(w.root);
    w.target.process(at(w.now));
    assert.equal(w.tcpBlock.status, "NDIS_STATUS_SUCCESS");
    w.ctx = w.tcpBlock.miniportOffloadContext?.context as MiniportOffloadContext;
    upload(w);
  });

  void test("INIT-1: a second table of one kind, or an OffloadType other than the TCP chimney, is refused", () => {
    const w = track(offloaded({ initiate: false }));
    const reg = new ChimneyRegistry(w.host);
    w.target.initialize(reg);
    const tcp = {
      kind: "tcp" as const,
      offloadType: 2,
      tcpOffloadSendHandler: () => "NDIS_STATUS_PENDING" as const,
      tcpOffloadReceiveHandler: () => "NDIS_STATUS_PENDING" as const,
      tcpOffloadDisconnectHandler: () => "NDIS_STATUS_PENDING" as const,
      tcpOffloadForwardHandler: () => "NDIS_STATUS_PENDING" as const,
      tcpOffloadReceiveReturnHandler: () => "NDIS_STATUS_SUCCESS" as const,
    };
    assert.throws(() => new ChimneyRegistry(w.host).setOptionalHandlers(tcp), /INIT-1/);
    assert.throws(() => reg.setOptionalHandlers({ ...tcp, offloadType: 1 }), /INIT-1/);
  });
});

void describe("capabilities and parameters (spec 3.3)", () => {
  void test("CFG-2: a target supports IPv4, IPv6 or both, never neither", () => {
    assert.throws(() => capabilities({ supportIPv4: false, supportIPv6: false }), /CFG-2/);
    assert.equal(capabilities({ supportIPv4: false }).supportIPv6, true);
    assert.throws(() => capabilities({ encapsulation: [] }), UsageError);
  });

  void test("CFG-2: the target offloads and runs connections of both families", () => {
    for (const family of [4, 6] as const) {
      const w = track(offloaded({ family }));
      assert.equal(w.tcpBlock.status, "NDIS_STATUS_SUCCESS", `IPv${family}`);
      peerSends(w, 3000, family);
      assert.deepEqual(w.host.stream, [...pattern(3000, family)], `IPv${family} data`);
      w.host.send(w.ctx, pattern(2000, 7));
      advance(w, 300);
      assert.deepEqual(w.peer.read, [...pattern(2000, 7)], `IPv${family} send`);
      upload(w);
    }
  });

  void test("CFG-2: an IPv4-only target refuses an IPv6 path (and an IPv6-only target an IPv4 one)", () => {
    const cases = [
      { family: 6 as const, caps: { supportIPv6: false } },
      { family: 4 as const, caps: { supportIPv4: false } },
    ];
    for (const { family, caps } of cases) {
      const w = track(offloaded({ family, complete: false, target: { capabilities: caps } }));
      w.target.process(at(w.now));
      assert.equal(w.tcpBlock.miniportOffloadContext?.context, null, `IPv${family}`);
      assert.notEqual(w.tcpBlock.status, "NDIS_STATUS_SUCCESS");
      assert.equal(w.target.connectionCount, 0);
      // The neighbor made it; the host would terminate it.
      const n = w.root.miniportOffloadContext?.context;
      assert.notEqual(n, null);
    }
  });

  void test("TcpConnectionOffloadCapacity bounds the offloaded connections (NDIS_STATUS_OFFLOAD_TCP_ENTRIES)", () => {
    const w = track(
      offloaded({ complete: false, target: { capabilities: { tcpConnectionOffloadCapacity: 0 } } }),
    );
    w.target.process(at(w.now));
    assert.equal(w.tcpBlock.status, "NDIS_STATUS_OFFLOAD_TCP_ENTRIES");
  });

  void test("CFG-6: tick values scale from the host's TicksPerSecond to the target's resolution, rounding up", () => {
    assert.equal(scaleTicks(150, 1000, 10), 2); // 150 ms on a 100 ms clock: 2 ticks, never early
    assert.equal(scaleTicks(20, 100, 1000), 200);
    assert.equal(scaleTicks(1, 1000, 10), 1);
    assert.equal(scaleTicks(0, 10, 1000), 0);
    assert.throws(() => offloadParameters({ ticksPerSecond: 60 }), UsageError);
  });

  void test("CFG-6: TcpPushTicks at a host TicksPerSecond unlike the target's drives the push timer", () => {
    const runs = [
      // host 100 ticks/s, 20 ticks = 200 ms; target clock 1000 ticks/s
      { hostTps: 100, ticks: 20, targetTps: 1000, silentFor: 190, firesBy: 220 },
      // host 1000 ticks/s, 150 ticks = 150 ms; target clock 10 ticks/s: rounds up to 200 ms
      { hostTps: 1000, ticks: 150, targetTps: 10, silentFor: 190, firesBy: 220 },
      // host 1000 ticks/s, 20 ticks = 20 ms on a 1000 ticks/s target
      { hostTps: 1000, ticks: 20, targetTps: 1000, silentFor: 10, firesBy: 40 },
    ];
    for (const r of runs) {
      const w = track(offloaded({ target: { timerTicksPerSecond: r.targetTps } }));
      w.target.setOffloadParameters(offloadParameters({ ticksPerSecond: r.hostTps, tcpPushTicks: r.ticks }));
      w.peer.deliverIn = false;
      w.host.post(w.ctx, 1000);
      const s = w.peer.engine.status();
      w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, payload: pattern(100, 3) }));
      advance(w, r.silentFor);
      assert.equal(w.host.recvCompleted.length, 0, `${JSON.stringify(r)}: fired early`);
      advance(w, r.firesBy - r.silentFor);
      assert.equal(w.host.recvCompleted[0]?.bytesTransferred, 100, `${JSON.stringify(r)}: did not fire`);
      upload(w);
    }
  });
});

void describe("pause, resume, upload-all (spec 16.6)", () => {
  void test("C-13 / CFG-5: an initiate in flight at the pause is accepted and completed; resume reports new capabilities", () => {
    const w = track(offloaded({ complete: false }));
    w.target.pause();
    assert.deepEqual(w.host.statuses, ["NDIS_STATUS_OFFLOAD_PAUSE"]);
    assert.equal(w.target.paused, true);
    assert.throws(() => {
      w.target.pause();
    }, UsageError);
    w.target.process(at(w.now)); // C-13: the in-flight initiate is processed
    assert.equal(w.tcpBlock.status, "NDIS_STATUS_SUCCESS");
    w.ctx = w.tcpBlock.miniportOffloadContext?.context as MiniportOffloadContext;
    // Offloaded connections keep running while paused.
    peerSends(w, 500, 4);
    assert.equal(w.host.stream.length, 500);
    assert.equal(w.target.connectionOffloadCapabilities().supportIPv6, true);
    w.target.resume({ supportIPv6: false });
    assert.deepEqual(w.host.statuses, ["NDIS_STATUS_OFFLOAD_PAUSE", "NDIS_STATUS_OFFLOAD_RESUME"]);
    assert.equal(w.target.connectionOffloadCapabilities().supportIPv6, false);
    // CFG-5: capabilities change only through pause / resume.
    assert.throws(() => {
      w.target.resume({ supportIPv6: true });
    }, /CFG-5/);
    w.target.requestUploadAll();
    assert.equal(w.host.statuses[2], "NDIS_STATUS_UPLOAD_ALL");
    upload(w);
  });
});

void describe("initiate calls around a pause (spec 16.6)", () => {
  void test("C-13: an initiate call that reaches the target after it paused offload is accepted, queued and completed", () => {
    const w = track(offloaded({ initiate: false }));
    w.target.pause();
    w.host.initiate(w.root);
    assert.equal(w.tcpBlock.status, undefined, "queued: completed later, by process");
    w.target.process(at(w.now));
    assert.equal(w.tcpBlock.status, "NDIS_STATUS_SUCCESS");
    w.ctx = w.tcpBlock.miniportOffloadContext?.context as MiniportOffloadContext;
    upload(w);
  });
});

void describe("operations in flight (spec 12)", () => {
  void test("C-3: two queries of one connection may overlap; both complete with current values", () => {
    const w = track(offloaded());
    const q1 = tcpRef(w.ctx);
    const q2 = tcpRef(w.ctx);
    w.target.queryOffload(q1);
    peerSends(w, 300, 5); // (the pump processes q1 after this data)
    w.target.queryOffload(q2);
    w.target.process(at(w.now));
    assert.equal(q1.status, "NDIS_STATUS_SUCCESS");
    assert.equal(q2.status, "NDIS_STATUS_SUCCESS");
    assert.equal(q2.delegatedState?.rcvNxt, w.target.engineOf(w.ctx)?.rcvNxt);
    upload(w);
  });

  void test("C-2: initiates of different connections may be outstanding at once", () => {
    const w = track(offloaded({ complete: false }));
    const w2 = track(offloaded({ initiate: false }));
    // The second tree (its own neighbor, path and connection on another port) into the same target.
    const second = w2.root;
    const tcp2 = w2.tcpBlock;
    if (tcp2.constState !== undefined) tcp2.constState = { ...tcp2.constState, localPort: HOST_PORT + 7 };
    w.host.initiate(second);
    assert.equal(w.host.completed.length, 0);
    w.target.process(at(w.now));
    assert.equal(w.tcpBlock.status, "NDIS_STATUS_SUCCESS");
    assert.equal(tcp2.status, "NDIS_STATUS_SUCCESS");
    assert.equal(w.target.connectionCount, 2);
    w.ctx = w.tcpBlock.miniportOffloadContext?.context as MiniportOffloadContext;
    upload(w);
    const b = tcpRef(tcp2.miniportOffloadContext?.context as MiniportOffloadContext);
    w.target.terminateOffload(b);
    w.target.process(at(w.now));
    freeChain(w, b.netBufferListChain);
  });

  void test("SD-10: paused with UPLOAD_ALL requested, a send completes with UPLOAD_IN_PROGRESS (never PAUSED)", () => {
    const w = track(offloaded());
    w.target.pause();
    w.target.requestUploadAll();
    const b = tcpRef(w.ctx);
    w.target.terminateOffload(b); // the host starts uploading
    w.host.send(w.ctx, pattern(100, 1));
    assert.deepEqual(
      w.host.sendCompleted.map((n) => n.status),
      ["NDIS_STATUS_UPLOAD_IN_PROGRESS"],
    );
    w.target.process(at(w.now));
    freeChain(w, b.netBufferListChain);
  });
});

void describe("hardware failure (spec 11.9)", () => {
  /** An offloaded connection with a send in flight and a posted request, its hardware corrupt. */
  function broken(): { w: World; sent: NetBufferList[] } {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    const sent = w.host.send(w.ctx, pattern(1000, 5));
    w.host.post(w.ctx, 4096);
    pump(w);
    w.target.injectFault({ kind: "corrupt-hardware-state", context: w.ctx });
    return { w, sent };
  }

  function checkSteps4And5(w: World, sent: NetBufferList[]): void {
    const b = terminate(w);
    // Step 4: every outstanding send and receive completes with REQUEST_ABORTED; step 5.
    assert.equal(b.status, "NDIS_STATUS_FAILURE");
    assert.equal(b.netBufferListChain, null);
    assert.equal(b.delegatedState, undefined);
    assert.deepEqual(
      w.host.sendCompleted.map((n) => n.status),
      sent.map(() => "NDIS_STATUS_REQUEST_ABORTED"),
    );
    assert.deepEqual(
      w.host.recvCompleted.map((n) => n.status),
      ["NDIS_STATUS_REQUEST_ABORTED"],
    );
    assert.equal(w.target.connectionCount, 0);
    const last = w.host.log[w.host.log.length - 1];
    assert.equal(last, "terminate-complete");
  }

  void test("QY-3: a query finding corrupt state completes with FAILURE, then Retrieve(HardwareFailure), then Abort", () => {
    const { w, sent } = broken();
    const q = tcpRef(w.ctx);
    w.target.queryOffload(q);
    w.target.process(at(w.now));
    assert.equal(q.status, "NDIS_STATUS_FAILURE"); // step 1
    const tail = w.host.log.slice(w.host.log.indexOf("query-complete"));
    assert.deepEqual(tail, [
      "query-complete",
      "event TcpIndicateRetrieve HardwareFailure",
      "event TcpIndicateAbort",
    ]);
    // New I/O is refused from now on.
    w.host.send(w.ctx, pattern(10, 1));
    assert.equal(w.host.sendCompleted.at(-1)?.status, "NDIS_STATUS_REQUEST_ABORTED");
    checkSteps4And5(w, [...sent, ...w.host.sendCompleted.slice(-1)]);
  });

  void test("IV-7: an invalidate finding corrupt state runs the same procedure (no InvalidState request)", () => {
    const { w, sent } = broken();
    const b = tcpRef(w.ctx);
    w.target.invalidateOffload(b);
    w.target.process(at(w.now));
    assert.equal(b.status, "NDIS_STATUS_FAILURE");
    assert.deepEqual(
      w.host.events.map((e) => (e.type === "TcpIndicateRetrieve" ? e.reason : e.type)),
      ["HardwareFailure", "TcpIndicateAbort"],
    );
    checkSteps4And5(w, sent);
  });

  void test("spec 11.9: a terminate that finds corrupt state completes with FAILURE and aborts the I/O", () => {
    const { w, sent } = broken();
    checkSteps4And5(w, sent);
    assert.equal(w.host.events.length, 0); // the connection is no longer offloaded: no event
  });
});

void describe("re-entrancy and in-flight upcalls (spec 11.5, 12)", () => {
  void test("TM-10: a terminate processed from inside an indication completes only after it returned", () => {
    const w = track(offloaded());
    let insideCompleted = -1;
    let b: TcpBlock | undefined;
    w.host.indicatePolicy = (n) => {
      if (b === undefined) {
        b = tcpRef(w.ctx);
        w.target.terminateOffload(b);
        w.target.process(at(w.now)); // the host tries to finish it right away
        insideCompleted = w.host.completed.filter((c) => c.op === "terminate").length;
      }
      return n;
    };
    peerSends(w, 800, 6);
    assert.equal(insideCompleted, 0);
    w.target.process(at(w.now)); // (the pump may already have run it, after the indication)
    assert.equal(w.host.completed.filter((c) => c.op === "terminate").length, 1);
    const log = w.host.log;
    assert.ok(log.findIndex((l) => l.startsWith("indicate")) < log.indexOf("terminate-complete"));
    assert.equal(b?.status, "NDIS_STATUS_SUCCESS");
    freeChain(w, b?.netBufferListChain ?? null);
  });

  void test("C-11: a send posted from inside an indication is queued, not run nested, and keeps its order", () => {
    const w = track(offloaded());
    const e = w.target.engineOf(w.ctx);
    assert.ok(e !== undefined);
    let sndMaxInside: number | undefined;
    let before: number | undefined;
    let logInside = 0;
    let queuedInside = -1;
    w.host.indicatePolicy = (n) => {
      if (before === undefined) {
        before = e.status().sndMax;
        w.host.send(w.ctx, pattern(300, 8));
        w.host.send(w.ctx, pattern(200, 9));
        sndMaxInside = e.status().sndMax;
        queuedInside = e.sendQueued;
        logInside = w.host.log.length;
      }
      return n;
    };
    w.peer.engine.send(pattern(100, 1));
    for (let i = 0; i < 3; i++) {
      const now = at(w.now);
      for (let s = w.peer.engine.pollTransmit(now); s !== undefined; s = w.peer.engine.pollTransmit(now))
        w.target.handleFrame(now, w.peer.frameOf(s));
    }
    assert.notEqual(before, undefined);
    assert.equal(sndMaxInside, before, "the send ran nested in the indication");
    assert.equal(queuedInside, 0, "the send queue was touched inside the indication");
    assert.ok(!w.host.log.slice(0, logInside).some((l) => l.startsWith("send-complete")));
    assert.equal(w.target.hasWork(), true);
    pump(w);
    advance(w, 100);
    assert.deepEqual(w.peer.read, [...pattern(300, 8), ...pattern(200, 9)]);
    assert.deepEqual(
      w.host.sendCompleted.map((x) => x.status),
      ["NDIS_STATUS_SUCCESS", "NDIS_STATUS_SUCCESS"],
    );
    upload(w);
  });

  void test("C-11: a send queued in an upcall and overtaken by a terminate completes with UPLOAD_IN_PROGRESS", () => {
    const w = track(offloaded());
    let b: TcpBlock | undefined;
    w.host.indicatePolicy = (n) => {
      if (b === undefined) {
        w.host.send(w.ctx, pattern(64, 2));
        b = tcpRef(w.ctx);
        w.target.terminateOffload(b);
      }
      return n;
    };
    peerSends(w, 100, 2);
    w.target.process(at(w.now));
    assert.equal(b?.status, "NDIS_STATUS_SUCCESS");
    assert.deepEqual(
      w.host.sendCompleted.map((x) => x.status),
      ["NDIS_STATUS_UPLOAD_IN_PROGRESS"],
    );
    freeChain(w, b?.netBufferListChain ?? null);
  });
});

void describe("pools and close (spec 3.4, 14.4)", () => {
  void test("INIT-3 / INIT-4 / RI-5: every indicated NBL comes from the chimney receive pool with exactly one NB", () => {
    const w = track(offloaded({ rcvIndicationSize: 700 }));
    peerSends(w, 5000, 9);
    assert.ok(w.host.held.length >= 2, `indications: ${w.host.held.length}`);
    for (const nbl of w.host.held) assert.equal(w.ledger.view(nbl, "host", "test").length, 1);
    assert.equal(w.target.poolAllocations.chimneyReceive, w.host.held.length);
    assert.deepEqual(w.host.stream, [...pattern(5000, 9)]);
    upload(w);
  });

  void test("RR-3 / TM-22: close is refused with ERR_TARGET_BUSY while indicated NBLs are out", () => {
    const w = track(offloaded());
    peerSends(w, 1000, 3);
    assert.ok(w.host.held.length > 0);
    upload(w);
    assert.throws(
      () => {
        w.target.close();
      },
      (e: unknown) => e instanceof TargetBusyError && e.code === "ERR_TARGET_BUSY" && e.outstanding > 0,
      "RR-3: close must be refused while indicated NBLs are out with the host",
    );
    w.host.returnIndicated();
    w.target.close();
    assert.throws(() => {
      w.target.initiateOffload(w.root);
    }, UsageError);
  });
});

void describe("close with BufferedData out (spec 11.7, 14.4)", () => {
  void test("RR-3 / TM-22 / TM-21: close is refused while BufferedData NBLs are out, and proceeds once they are returned", () => {
    const w = track(offloaded());
    w.host.keepBuffered = true;
    w.host.indicatePolicy = () => 0;
    peerSends(w, 600, 4);
    upload(w);
    // The refused bytes went up as BufferedData, which the host still holds; no indication is out.
    assert.deepEqual(w.host.uploadedBuffered, [...pattern(600, 4)]);
    assert.equal(w.host.heldBuffered.length, 1);
    assert.equal(w.host.held.length, 0);
    assert.equal(w.target.connectionCount, 0);
    assert.throws(
      () => {
        w.target.close();
      },
      (e: unknown) => e instanceof TargetBusyError && e.code === "ERR_TARGET_BUSY" && e.outstanding === 1,
      "TM-22: close must be refused while BufferedData NBLs are out with the host",
    );
    assert.equal(w.target.outstandingReturns, 1);
    // Still open: the refused close changed nothing, and the return is accepted after the
    // connection is gone (TM-21).
    w.host.returnBuffered();
    assert.equal(w.target.outstandingReturns, 0);
    w.target.close();
    assert.throws(() => {
      w.target.initiateOffload(w.root);
    }, UsageError);
  });
});

void describe("statistics (spec 18.1)", () => {
  /** A TCP frame for a connection that is not offloaded (host-only traffic). */
  function hostOnlyFrame(v: 4 | 6): Uint8Array {
    return emitTcpPacket({
      ip: v === 4 ? { src: PEER_IP, dst: HOST_IP } : { src: ip("2001:db8::2"), dst: ip("2001:db8::1") },
      tcp: {
        srcPort: 1234,
        dstPort: HOST_PORT + 1,
        seq: Seq.of(1),
        ack: Seq.of(0),
        flags: TcpFlag.ACK,
        window: 1000,
        urgent: 0,
        mss: undefined,
        windowScale: undefined,
        sackPermitted: false,
        sack: [],
        timestamps: undefined,
        unknownOptions: [],
        payload: pattern(500, 1),
      },
      ethernet: { src: PEER_MAC, dst: HOST_MAC },
    });
  }

  void test("SS-1: only offloaded traffic counts, and IPv4 and IPv6 are separate sets", () => {
    for (const v of [4, 6] as const) {
      const other = v === 4 ? 6 : 4;
      const w = track(offloaded({ family: v }));
      const ipOid = v === 4 ? "OID_IP4_OFFLOAD_STATS" : "OID_IP6_OFFLOAD_STATS";
      const tcpOid = v === 4 ? "OID_TCP4_OFFLOAD_STATS" : "OID_TCP6_OFFLOAD_STATS";
      const otherIp = other === 4 ? "OID_IP4_OFFLOAD_STATS" : "OID_IP6_OFFLOAD_STATS";
      const otherTcp = other === 4 ? "OID_TCP4_OFFLOAD_STATS" : "OID_TCP6_OFFLOAD_STATS";
      // Host-only traffic of both families goes up the non-offload path and does not count.
      w.target.handleFrame(at(w.now), hostOnlyFrame(4));
      w.target.handleFrame(at(w.now), hostOnlyFrame(6));
      assert.equal(w.host.upFrames.length, 2);
      assert.equal(w.target.queryStatistics(ipOid).inReceives, 0);
      assert.equal(w.target.queryStatistics(tcpOid).inSegments, 0);
      peerSends(w, 4000, v);
      w.host.send(w.ctx, pattern(3000, 1));
      pump(w);
      advance(w, 100);
      const ipS = w.target.queryStatistics(ipOid);
      const tcpS = w.target.queryStatistics(tcpOid);
      assert.ok(tcpS.inSegments >= 3, `IPv${v} inSegments ${tcpS.inSegments}`);
      assert.ok(tcpS.outSegments >= 3, `IPv${v} outSegments ${tcpS.outSegments}`);
      assert.equal(ipS.inReceives, tcpS.inSegments);
      assert.equal(ipS.outRequests, tcpS.outSegments + tcpS.retransmittedSegments);
      const hdr = v === 4 ? 40 : 60;
      assert.ok(ipS.inOctets >= 4000 + hdr * ipS.inReceives, `IPv${v} inOctets ${ipS.inOctets}`);
      assert.ok(ipS.outOctets >= 3000 + hdr * ipS.outRequests);
      assert.equal(tcpS.currentlyEstablished, 1);
      // The other family's set saw nothing.
      assert.deepEqual(
        Object.values(w.target.queryStatistics(otherIp)),
        Object.values(w.target.queryStatistics(otherIp)).map(() => 0),
      );
      assert.equal(w.target.queryStatistics(otherTcp).inSegments, 0);
      assert.equal(w.target.queryStatistics(otherTcp).currentlyEstablished, 0);
      // A set of the OID resets it.
      w.target.setStatistics(tcpOid);
      assert.equal(w.target.queryStatistics(tcpOid).inSegments, 0);
      assert.ok(w.target.queryStatistics(ipOid).inReceives > 0);
      upload(w);
    }
  });

  void test("SS-1: a retransmission counts as RetransmittedSegments, not OutSegments", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    w.host.send(w.ctx, pattern(500, 4));
    pump(w);
    const first = w.target.queryStatistics("OID_TCP4_OFFLOAD_STATS");
    advance(w, 1500, 50); // the RTO fires at least once
    const after = w.target.queryStatistics("OID_TCP4_OFFLOAD_STATS");
    assert.ok(after.retransmittedSegments > 0);
    assert.equal(after.outSegments, first.outSegments);
    w.peer.deliverIn = true;
    advance(w, 3000, 100);
    upload(w);
  });
});

void describe("state operations (spec 6)", () => {
  void test("OP-2: a completion with a block lacking its status is a bug", () => {
    const b = newBlock<TcpBlock>({
      layer: "tcp",
      stateType: "TcpOffloadState",
      miniportOffloadContext: null,
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: undefined,
      delegatedState: undefined,
    });
    assert.throws(() => {
      assertStatusWritten(b, "query");
    }, InvariantViolation);
    b.status = "NDIS_STATUS_SUCCESS";
    assertStatusWritten(b, "query");
  });

  void test("scaleTicks and Duration agree (500 host ticks at 1000/s = 500 ms)", () => {
    const w = track(offloaded());
    w.target.setOffloadParameters(offloadParameters({ tcpPushTicks: 500 }));
    assert.equal(w.target.pushTimeout, Duration.fromMillis(500));
    upload(w);
  });
});
