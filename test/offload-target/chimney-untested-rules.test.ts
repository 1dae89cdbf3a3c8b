// The chimney rules that the software target implements but no other test names (spec digest
// 3, 4, 7-11, 13-17): invalidation marks, terminate in any state, upload-in-progress completions,
// partial send failures, forwarding, delivery, acknowledgement, non-standard traffic, probes and
// the FIN_WAIT_2 timeout. One test per rule (or pair of rules), named with its id. The ledger is
// quiescent after every test.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration } from "../../src/time/instant.js";
import { Seq } from "../../src/wire/seq.js";
import { internetChecksum } from "../../src/wire/checksum.js";
import { decodeFrame } from "../../src/wire/packet.js";
import { TcpFlag } from "../../src/wire/tcp-repr.js";
import {
  type MiniportOffloadContext,
  type NdisOffloadHandle,
  newBlock,
  type PathBlock,
  type TcpBlock,
} from "../../src/chimney/block-list.js";
import { ip } from "../../src/wire/ip-addr.js";
import {
  advance,
  at,
  HOST_IP,
  offloaded,
  PEER_IP,
  pattern,
  pump,
  tcpRef,
  type World,
  trackWorlds,
  upload,
} from "../support/target-testing.js";

const track = trackWorlds();

const ETH = 14;

/** Recomputes the IPv4 header checksum of an Ethernet frame in place. */
function fixIpv4Checksum(frame: Uint8Array): void {
  const ihl = ((frame[ETH] ?? 0) & 0x0f) * 4;
  frame[ETH + 10] = 0;
  frame[ETH + 11] = 0;
  const sum = internetChecksum(frame, ETH, ETH + ihl);
  frame[ETH + 10] = sum >> 8;
  frame[ETH + 11] = sum & 0xff;
}

/** The same frame with 4 bytes of IPv4 options (NOP, NOP, NOP, EOL). */
function withIpv4Options(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length + 4);
  out.set(frame.subarray(0, ETH + 20), 0);
  out.set([1, 1, 1, 0], ETH + 20);
  out.set(frame.subarray(ETH + 20), ETH + 24);
  out[ETH] = 0x46;
  const total = (((out[ETH + 2] ?? 0) << 8) | (out[ETH + 3] ?? 0)) + 4;
  out[ETH + 2] = total >> 8;
  out[ETH + 3] = total & 0xff;
  fixIpv4Checksum(out);
  return out;
}

/** The same frame as the first fragment of a larger datagram (MF set, offset 0). */
function asFirstFragment(frame: Uint8Array): Uint8Array {
  const out = frame.slice();
  out[ETH + 6] = ((out[ETH + 6] ?? 0) & 0x1f) | 0x20;
  fixIpv4Checksum(out);
  return out;
}

/** Drives the connection into a named state; returns the world (host accepts all indications). */
type StateSetup = (w: World) => void;
const STATES: Record<string, StateSetup> = {
  "ESTABLISHED with I/O outstanding": (w) => {
    w.peer.deliverIn = false;
    w.host.send(w.ctx, pattern(300, 1));
    w.host.post(w.ctx, 100);
    pump(w);
  },
  "FIN-WAIT-2": (w) => {
    w.host.disconnect(w.ctx, "graceful");
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "FIN-WAIT-2");
  },
  "CLOSE-WAIT": (w) => {
    w.peer.engine.close();
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "CLOSE-WAIT");
  },
  "TIME-WAIT": (w) => {
    w.host.disconnect(w.ctx, "graceful");
    pump(w);
    w.peer.engine.close();
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "TIME-WAIT");
  },
  "aborted by an RST": (w) => {
    const s = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, flags: TcpFlag.RST }));
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateAbort" }]);
  },
  "upload requested": (w) => {
    const s = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, flags: TcpFlag.SYN }));
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "UploadRequested" }]);
  },
  invalidated: (w) => {
    const inv = tcpRef(w.ctx);
    w.target.invalidateOffload(inv);
    w.target.process(at(w.now));
    assert.equal(inv.status, "NDIS_STATUS_SUCCESS");
  },
};

void describe("state operations (spec 4, 7-11)", () => {
  void test("IV-2: invalidating a TCP object marks it: it sends nothing, not even ACKs, until uploaded", () => {
    const w = track(offloaded());
    const inv = tcpRef(w.ctx);
    w.target.invalidateOffload(inv);
    w.target.process(at(w.now));
    assert.equal(inv.status, "NDIS_STATUS_SUCCESS");
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "InvalidState" }]);
    // New data from the peer: an unmarked connection would acknowledge it (RI-4).
    const before = w.peer.seen.length;
    w.peer.engine.send(pattern(200, 2));
    pump(w);
    advance(w, 300);
    assert.equal(w.peer.seen.length, before, "the invalidated connection stays silent");
    upload(w);
  });

  void test("TM-3 / ST-10: query and terminate complete with SUCCESS whatever the connection's state", () => {
    for (const [name, setup] of Object.entries(STATES)) {
      const w = track(offloaded());
      setup(w);
      const q = tcpRef(w.ctx);
      w.target.queryOffload(q);
      w.target.process(at(w.now));
      assert.equal(q.status, "NDIS_STATUS_SUCCESS", `query in ${name}`);
      const b = upload(w);
      assert.equal(b.status, "NDIS_STATUS_SUCCESS", `terminate in ${name}`);
      assert.ok(b.delegatedState !== undefined, `delegated state returned in ${name}`);
      assert.equal(w.target.connectionCount, 0, name);
    }
  });

  void test("IO-8: query, update, invalidate and terminate write only SUCCESS or FAILURE", () => {
    const w = track(offloaded());
    const ca = w.tcpBlock.cachedState as NonNullable<TcpBlock["cachedState"]>;
    const blocks: TcpBlock[] = [];
    for (const ctx of [999 as MiniportOffloadContext, w.ctx]) {
      const q = tcpRef(ctx);
      w.target.queryOffload(q);
      const u = tcpRef(ctx, { stateType: "TcpOffloadCachedState", cachedState: ca });
      w.target.updateOffload(u);
      const i = tcpRef(ctx);
      w.target.invalidateOffload(i);
      const t = tcpRef(ctx);
      w.target.terminateOffload(t);
      w.target.process(at(w.now));
      blocks.push(q, u, i, t);
    }
    const statuses = blocks.map((b) => b.status);
    for (const s of statuses)
      assert.ok(s === "NDIS_STATUS_SUCCESS" || s === "NDIS_STATUS_FAILURE", String(s));
    assert.deepEqual(statuses.slice(0, 4), Array<string>(4).fill("NDIS_STATUS_FAILURE"), "unknown context");
    assert.deepEqual(statuses.slice(4), Array<string>(4).fill("NDIS_STATUS_SUCCESS"), "offloaded connection");
    const t = blocks[7] as TcpBlock;
    if (t.netBufferListChain !== null) w.ledger.free(t.netBufferListChain, "host");
  });

  void test("TM-12: the push timer stops at terminate; nothing fires at its deadline afterwards", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    w.host.post(w.ctx, 1000); // push mode
    const s = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: s.sndNxt, payload: pattern(100, 3) })); // no PSH
    advance(w, 100); // the delayed ACK goes out; only the push timer is left
    const pushAt = w.target.pollTimeout();
    assert.ok(pushAt !== undefined, "the push timer runs for the partly filled request");
    assert.equal(w.host.recvCompleted.length, 0);
    upload(w);
    assert.equal(
      w.host.recvCompleted[0]?.bytesTransferred,
      100,
      "the partial request completes at terminate",
    );
    assert.equal(w.target.pollTimeout(), undefined, "no timer left");
    const upcalls = w.host.log.length;
    w.now = (pushAt - at(0)) / 1000 + 1;
    w.target.handleTimeout(at(w.now));
    assert.equal(w.host.log.length, upcalls, "no upcall at the old push deadline");
  });

  void test("TM-28: after an UploadRequested request new sends, receives, disconnects and forwards complete with UPLOAD_IN_PROGRESS", () => {
    const w = track(offloaded());
    const s = w.peer.engine.status();
    const frame = w.peer.raw({ seq: s.sndNxt, flags: TcpFlag.ACK | TcpFlag.PSH, payload: pattern(30, 4) });
    STATES["upload requested"]?.(w);
    w.host.send(w.ctx, pattern(50, 5));
    w.host.post(w.ctx, 50);
    const d = w.host.disconnect(w.ctx, "graceful");
    const f = w.host.forward(w.ctx, frame.slice(ETH + 20));
    w.target.process(at(w.now));
    assert.equal(w.host.sendCompleted[0]?.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    assert.equal(w.host.recvCompleted[0]?.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    assert.equal(d.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    assert.equal(w.host.fwdCompleted[0], f);
    assert.equal(f.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    assert.equal(w.host.stream.length, 0, "the forwarded data was not processed");
    upload(w);
  });
});

void describe("data path (spec 13, 14)", () => {
  void test("SC-1 / SC-2: a failed send list carries one partial NBL; the later ones fail with nothing sent", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false;
    const nbls = w.host.send(w.ctx, pattern(1000, 6), pattern(1000, 7), pattern(1000, 8));
    pump(w);
    const e = w.target.engineOf(w.ctx);
    assert.ok(e !== undefined);
    const una = e.sndUna;
    // The peer acknowledges the first NBL and half of the second, then resets.
    const ps = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: ps.sndNxt, ack: Seq.add(una, 1500) }));
    pump(w);
    assert.deepEqual(
      w.host.sendCompleted.map((n) => n.status),
      ["NDIS_STATUS_SUCCESS"],
    );
    const seen = w.peer.seen.length;
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: ps.sndNxt, flags: TcpFlag.RST }));
    pump(w);
    advance(w, 2000);
    const failed = w.host.sendCompleted.slice(1);
    assert.deepEqual(failed, nbls.slice(1));
    assert.deepEqual(
      failed.map((n) => [n.status, n.bytesTransferred]),
      [
        ["NDIS_STATUS_REQUEST_ABORTED", 500],
        ["NDIS_STATUS_REQUEST_ABORTED", 0],
      ],
    );
    assert.equal(failed.filter((n) => n.bytesTransferred > 0).length, 1, "SC-1: at most one partial NBL");
    const payloadAfter = w.peer.seen.slice(seen).filter((sg) => sg.payload.length > 0);
    assert.equal(payloadAfter.length, 0, "SC-2: no more data of the failed NBLs is sent");
    upload(w);
  });

  void test("FW-4: forwarded NBLs are queued while the target owns them and processed by process()", () => {
    const w = track(offloaded());
    const s = w.peer.engine.status();
    const frame = w.peer.raw({ seq: s.sndNxt, flags: TcpFlag.ACK | TcpFlag.PSH, payload: pattern(40, 9) });
    w.peer.deliverIn = false;
    const a = w.host.forward(w.ctx, frame.slice(ETH + 20));
    assert.equal(w.host.fwdCompleted.length, 0, "queued, not completed in the call");
    assert.equal(w.host.stream.length, 0, "not yet processed");
    w.target.process(at(w.now));
    assert.deepEqual(w.host.fwdCompleted, [a]);
    assert.equal(a.status, "NDIS_STATUS_SUCCESS");
    assert.deepEqual(w.host.stream, [...pattern(40, 9)]);
    upload(w);
  });

  void test("FW-2: a forwarded NB starts at the TCP header (options included) and is read as one segment", () => {
    const w = track(offloaded());
    w.peer.engine.send(pattern(40, 10));
    const seg = w.peer.engine.pollTransmit(at(w.now));
    assert.ok(seg?.timestamps !== undefined, "the peer's segment carries the timestamp option");
    const segment = w.peer.frameOf(seg).slice(ETH + 20);
    assert.equal(segment[12], (32 / 4) << 4, "a 32-byte TCP header");
    w.peer.deliverIn = false;
    const n = w.host.forward(w.ctx, segment);
    w.target.process(at(w.now));
    assert.equal(n.status, "NDIS_STATUS_SUCCESS");
    assert.deepEqual(w.host.stream, [...pattern(40, 10)], "the payload follows the options");
    upload(w);
  });

  void test("FW-4: a forwarded segment is not taken for an old duplicate (PAWS) when a later retransmission went ahead of it", () => {
    const w = track(offloaded());
    w.peer.engine.send(pattern(40, 12));
    const first = w.peer.engine.pollTransmit(at(w.now));
    const ts = first?.timestamps;
    assert.ok(first !== undefined && ts !== undefined, "the peer's segment carries the timestamp option");
    const data = pattern(80, 13);
    // The host held the bytes at seq+40 (TSval +50) while the peer's retransmission of the bytes
    // before them (TSval +100) reached the target directly, first.
    w.target.handleFrame(
      at(w.now),
      w.peer.raw({
        seq: first.seq,
        flags: TcpFlag.ACK,
        payload: data.subarray(0, 40),
        timestamps: { tsVal: ts.tsVal + 100, tsEcr: ts.tsEcr },
      }),
    );
    const held = w.peer.raw({
      seq: Seq.add(first.seq, 40),
      flags: TcpFlag.ACK | TcpFlag.PSH,
      payload: data.subarray(40),
      timestamps: { tsVal: ts.tsVal + 50, tsEcr: ts.tsEcr },
    });
    const n = w.host.forward(w.ctx, held.slice(ETH + 20));
    w.target.process(at(w.now));
    assert.equal(n.status, "NDIS_STATUS_SUCCESS");
    assert.deepEqual(
      w.host.stream,
      [...data],
      "the forwarded bytes were taken, after the retransmitted ones",
    );
    w.peer.deliverIn = false; // the peer's engine never sent these bytes: keep its state out of it
    upload(w);
  });

  void test("RX-1: with a request posted, data goes into it, never through an indication", () => {
    const w = track(offloaded());
    w.host.post(w.ctx, 300);
    w.peer.engine.send(pattern(300, 11));
    pump(w);
    assert.equal(w.host.recvCompleted[0]?.bytesTransferred, 300);
    assert.equal(w.host.log.filter((l) => l.startsWith("indicate ")).length, 0);
    assert.deepEqual(w.host.stream, [...pattern(300, 11)]);
    upload(w);
  });

  void test("RQ-2: a posted request is one NB whose MDL chain is filled across its pieces, in order", () => {
    const w = track(offloaded());
    const buf = w.host.post(w.ctx, 300, { mdlSizes: [7, 100, 1] });
    w.peer.engine.send(pattern(300, 17));
    pump(w);
    const done = w.host.recvCompleted[0];
    assert.equal(done?.bytesTransferred, 300);
    assert.deepEqual(buf, pattern(300, 17), "every MDL piece holds its part of the stream");
    upload(w);
  });

  void test("RI-4: received data is acknowledged although the host refused its indication", () => {
    const w = track(offloaded());
    w.host.indicatePolicy = () => 0;
    const before = w.peer.engine.status().sndUna;
    w.peer.engine.send(pattern(500, 12));
    pump(w);
    advance(w, 100); // past the 40 ms delayed-ACK timer
    assert.ok(w.host.log.includes("indicate 500 took 0"), w.host.log.join(", "));
    assert.equal(w.host.stream.length, 0, "nothing delivered");
    assert.equal(w.peer.engine.status().sndUna, Seq.add(before, 500), "all 500 bytes acknowledged");
    upload(w);
  });

  void test("IO-16: the target transmits from the host's send buffers, without a copy", () => {
    const w = track(offloaded());
    w.peer.deliverIn = false; // nothing is acknowledged: the data is retransmitted
    const data = pattern(200, 18);
    w.host.send(w.ctx, data);
    pump(w);
    const first = w.peer.seen.filter((s) => s.payload.length > 0);
    assert.equal(first.length, 1);
    assert.deepEqual(first[0]?.payload, pattern(200, 18));
    // Only to observe the sharing: the bytes change under the target (a real host must not).
    data.fill(0xee);
    advance(w, 3000);
    const again = w.peer.seen.filter((s) => s.payload.length > 0).slice(1);
    assert.ok(again.length > 0, "retransmitted");
    assert.deepEqual(again[0]?.payload, new Uint8Array(200).fill(0xee), "read from the host's buffer");
    w.peer.deliverIn = true;
    upload(w);
  });

  void test("SD-7: large sends go out as DF segments within the path MTU, never as IP fragments", () => {
    const w = track(offloaded());
    w.host.send(w.ctx, pattern(20_000, 13));
    const now = at(w.now);
    w.target.process(now);
    let frames = 0;
    for (let f = w.target.pollTransmit(now); f !== undefined; f = w.target.pollTransmit(now)) {
      const pkt = decodeFrame(f);
      assert.equal(pkt.network?.kind, "ipv4");
      if (pkt.network?.kind !== "ipv4") continue;
      const h = pkt.network.ipv4;
      assert.equal(h.dontFragment, true);
      assert.equal(h.moreFragments, false);
      assert.equal(h.fragmentOffset, 0);
      assert.equal(pkt.transport?.kind, "tcp");
      assert.ok(f.length - ETH <= 1500, `IP datagram of ${f.length - ETH} bytes`);
      frames++;
      if (pkt.transport?.kind === "tcp") w.peer.engine.handleSegment(now, pkt.transport.tcp);
    }
    assert.ok(frames >= 2, `${frames} frames`);
    advance(w, 500);
    assert.deepEqual(Uint8Array.from(w.peer.read), pattern(20_000, 13));
    upload(w);
  });
});

void describe("non-standard traffic, probes and FIN_WAIT_2 (spec 3, 15, 17)", () => {
  void test("CFG-3: IPv4 options are not supported: such a datagram goes up, unprocessed", () => {
    const w = track(offloaded());
    const e = w.target.engineOf(w.ctx);
    assert.ok(e !== undefined);
    const r = e.rcvNxt;
    const frame = withIpv4Options(w.peer.raw({ seq: r, payload: pattern(20, 14) }));
    assert.equal(decodeFrame(frame).error, undefined);
    w.target.handleFrame(at(w.now), frame);
    assert.deepEqual(w.host.upFrames, [frame]);
    assert.equal(e.rcvNxt, r, "not processed on the offloaded connection");
    upload(w);
  });

  void test("NS-1: a SYN on an offloaded connection in TIME_WAIT goes up the non-offload path", () => {
    const w = track(offloaded());
    STATES["TIME-WAIT"]?.(w);
    const events = w.host.events.length;
    const seen = w.peer.seen.length;
    const syn = w.peer.raw({ seq: Seq.add(w.peer.engine.status().sndNxt, 100_000), flags: TcpFlag.SYN });
    w.target.handleFrame(at(w.now), syn);
    pump(w);
    assert.deepEqual(w.host.upFrames, [syn]);
    assert.equal(w.host.events.length, events, "no new event");
    assert.equal(w.peer.seen.length, seen, "the target did not answer it");
    upload(w);
  });

  void test("NS-6: an IP fragment of an offloaded connection goes up, not reassembled or processed", () => {
    const w = track(offloaded());
    const e = w.target.engineOf(w.ctx);
    assert.ok(e !== undefined);
    const r = e.rcvNxt;
    const frag = asFirstFragment(w.peer.raw({ seq: r, payload: pattern(64, 15) }));
    assert.equal(decodeFrame(frag).transport?.kind, "fragment");
    w.target.handleFrame(at(w.now), frag);
    pump(w);
    assert.deepEqual(w.host.upFrames, [frag]);
    assert.equal(e.rcvNxt, r);
    assert.equal(w.host.stream.length, 0);
    upload(w);
  });

  void test("PS-1: more unanswered zero-window probes than TcpMaximumRetransmissions request an upload (TimeoutExpiration)", () => {
    const w = track(offloaded({ target: { maxRetransmissions: 3 } }));
    w.peer.deliverIn = false;
    const ps = w.peer.engine.status();
    w.target.handleFrame(at(w.now), w.peer.raw({ seq: ps.sndNxt, window: 0 }));
    const seen = w.peer.seen.length;
    w.host.send(w.ctx, pattern(100, 16));
    pump(w);
    assert.equal(w.peer.seen.length, seen, "zero window: nothing sent");
    advance(w, 120_000, 50);
    const probes = w.peer.seen.slice(seen).filter((s) => !(s.flags & TcpFlag.RST));
    assert.equal(probes.length, 3, "three probes, then the target gives up");
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "TimeoutExpiration" }]);
    upload(w);
  });

  void test("FW2-1: an offloaded connection's FIN_WAIT_2 timer starts at 120 s", () => {
    const w = track(offloaded());
    w.host.disconnect(w.ctx, "graceful");
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "FIN-WAIT-2");
    const entered = w.now;
    advance(w, 119_000, 1000);
    assert.equal(w.host.events.length, 0, "still waiting after 119 s");
    assert.equal(w.target.engineOf(w.ctx)?.state, "FIN-WAIT-2");
    advance(w, entered + 121_000 - w.now, 1000);
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "TimeoutExpiration" }]);
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
  });

  void test("FW2-1: the target option sets another FIN_WAIT_2 timeout", () => {
    const w = track(offloaded({ target: { finWait2Timeout: Duration.fromSeconds(10) } }));
    w.host.disconnect(w.ctx, "graceful");
    pump(w);
    assert.equal(w.target.engineOf(w.ctx)?.state, "FIN-WAIT-2");
    advance(w, 11_000, 1000);
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "TimeoutExpiration" }]);
    upload(w);
  });
});

void describe("rules once cited only in comments (spec 7, 9, 10, 14, 16)", () => {
  void test("PA-2: a path fails with OFFLOAD_IP_ADDRESS_ENTRIES for a source address it has no room for, and with OFFLOAD_PATH_MTU for too large an MTU", () => {
    const w = track(offloaded({ initiate: false, target: { limits: { ipAddresses: 1, maxPathMtu: 1500 } } }));
    const path = (src: string, mtu: number): PathBlock =>
      newBlock<PathBlock>({
        layer: "path",
        stateType: "Ip4OffloadState",
        miniportOffloadContext: { context: null },
        ndisOffloadHandle: undefined,
        constState: { sourceAddress: ip(src), destinationAddress: PEER_IP },
        cachedState: { pathMtu: mtu },
        delegatedState: { headerOnly: true },
        dependentBlockList: null,
      });
    const first = w.root.dependentBlockList as PathBlock; // HOST_IP, MTU 1500, with the TCP block
    assert.deepEqual(first.constState?.sourceAddress, HOST_IP);
    const otherAddress = path("192.0.2.9", 1500);
    const bigMtu = path("192.0.2.1", 1501);
    const sameAddress = path("192.0.2.1", 1500);
    first.nextBlock = otherAddress;
    otherAddress.nextBlock = bigMtu;
    bigMtu.nextBlock = sameAddress;
    w.host.initiate(w.root);
    w.target.process(at(w.now));
    assert.deepEqual(
      [first, otherAddress, bigMtu, sameAddress, w.tcpBlock].map((b) => b.status),
      [
        "NDIS_STATUS_SUCCESS",
        "NDIS_STATUS_OFFLOAD_IP_ADDRESS_ENTRIES",
        "NDIS_STATUS_OFFLOAD_PATH_MTU",
        "NDIS_STATUS_SUCCESS", // an address the target already holds needs no new entry
        "NDIS_STATUS_SUCCESS",
      ],
    );
    assert.deepEqual(w.target.objectCount, { neighbors: 1, paths: 2 });
    w.ctx = w.tcpBlock.miniportOffloadContext?.context as MiniportOffloadContext;
    upload(w);
  });

  void test("CTX-5: received-data indications and events carry the NdisOffloadHandle the host gave the connection", () => {
    const w = track(offloaded({ initiate: false }));
    const handle = 4242 as NdisOffloadHandle;
    (w.tcpBlock as { ndisOffloadHandle: NdisOffloadHandle | undefined }).ndisOffloadHandle = handle;
    w.host.initiate(w.root);
    w.target.process(at(w.now));
    w.ctx = w.tcpBlock.miniportOffloadContext?.context as MiniportOffloadContext;
    w.peer.engine.send(pattern(300, 60));
    pump(w);
    w.peer.engine.close(); // TcpIndicateDisconnect
    pump(w);
    assert.deepEqual(w.host.indicateHandles, [handle]);
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateDisconnect" }]);
    assert.deepEqual(w.host.eventHandles, [handle]);
    assert.deepEqual(w.host.stream, [...pattern(300, 60)]);
    upload(w);
  });

  void test("DC-3: after sending its FIN or its RST the target keeps the connection until the host terminates it", () => {
    const fin = track(offloaded());
    fin.host.disconnect(fin.ctx, "graceful");
    pump(fin);
    fin.peer.engine.close();
    pump(fin);
    assert.ok(
      fin.peer.seen.some((s) => (s.flags & TcpFlag.FIN) !== 0),
      "our FIN went out",
    );
    advance(fin, 300_000, 1000); // past TIME-WAIT
    assert.equal(fin.target.engineOf(fin.ctx)?.state, "CLOSED");
    assert.equal(fin.target.connectionCount, 1);
    assert.deepEqual(fin.target.objectCount, { neighbors: 1, paths: 1 });
    assert.equal(upload(fin).status, "NDIS_STATUS_SUCCESS");
    assert.equal(fin.target.connectionCount, 0);

    const rst = track(offloaded());
    rst.host.disconnect(rst.ctx, "abortive");
    pump(rst);
    assert.ok(
      rst.peer.seen.some((s) => (s.flags & TcpFlag.RST) !== 0),
      "our RST went out",
    );
    advance(rst, 300_000, 1000);
    assert.equal(rst.target.connectionCount, 1);
    const b = upload(rst);
    assert.equal(b.status, "NDIS_STATUS_SUCCESS");
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
    assert.equal(rst.target.connectionCount, 0);
  });

  void test("FN-3: after the peer's FIN or RST the connection's resources are kept until the host terminates it", () => {
    const fin = track(offloaded());
    fin.peer.engine.send(pattern(200, 61));
    fin.peer.engine.close();
    pump(fin);
    advance(fin, 300_000, 1000);
    assert.equal(fin.target.engineOf(fin.ctx)?.state, "CLOSE-WAIT");
    assert.equal(fin.target.connectionCount, 1);
    const a = upload(fin);
    assert.equal(a.status, "NDIS_STATUS_SUCCESS");
    assert.equal(a.delegatedState?.state, "TcpConnectionCloseWait");
    assert.equal(fin.target.connectionCount, 0);

    const rst = track(offloaded());
    rst.peer.deliverIn = false;
    const s = rst.peer.engine.status();
    rst.target.handleFrame(at(rst.now), rst.peer.raw({ seq: s.sndNxt, flags: TcpFlag.RST }));
    assert.deepEqual(rst.host.events, [{ type: "TcpIndicateAbort" }]);
    advance(rst, 300_000, 1000);
    assert.equal(rst.target.connectionCount, 1);
    assert.deepEqual(rst.target.objectCount, { neighbors: 1, paths: 1 });
    const b = upload(rst);
    assert.equal(b.status, "NDIS_STATUS_SUCCESS");
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
    assert.equal(rst.target.connectionCount, 0);
  });

  void test("EV-2: an optional upload reason is not indicated for a connection in FIN-WAIT-1, FIN-WAIT-2 or CLOSE-WAIT", () => {
    const retrieves = (w: World): unknown[] => w.host.events.filter((e) => e.type === "TcpIndicateRetrieve");
    const finWait1 = track(offloaded());
    finWait1.peer.deliverIn = false; // our FIN is never acknowledged
    finWait1.host.disconnect(finWait1.ctx, "graceful");
    pump(finWait1);
    const finWait2 = track(offloaded());
    finWait2.host.disconnect(finWait2.ctx, "graceful");
    pump(finWait2);
    const closeWait = track(offloaded());
    closeWait.peer.engine.close();
    pump(closeWait);
    const cases = [
      [finWait1, "FIN-WAIT-1", "LowActivity"],
      [finWait2, "FIN-WAIT-2", "SmallIO"],
      [closeWait, "CLOSE-WAIT", "HighDropRate"],
    ] as const;
    for (const [w, state, reason] of cases) {
      assert.equal(w.target.engineOf(w.ctx)?.state, state);
      assert.equal(w.target.requestUpload(w.ctx, reason), false, `${reason} in ${state}`);
      assert.deepEqual(retrieves(w), [], state);
    }
    // A mandatory reason is still indicated for a half-closed connection ...
    assert.equal(closeWait.target.requestUpload(closeWait.ctx, "UploadRequested"), true);
    assert.deepEqual(retrieves(closeWait), [{ type: "TcpIndicateRetrieve", reason: "UploadRequested" }]);
    // ... and an optional one for an established connection.
    const open = track(offloaded());
    assert.equal(open.target.requestUpload(open.ctx, "LowActivity"), true);
    assert.deepEqual(retrieves(open), [{ type: "TcpIndicateRetrieve", reason: "LowActivity" }]);
    for (const w of [finWait1, finWait2, closeWait, open]) upload(w);
  });

  void test("RI-1 / RI-2: each receive indication passes one stand-alone NBL with one NB, with status SUCCESS", () => {
    const w = track(offloaded({ rcvIndicationSize: 700 }));
    w.host.indicatePolicy = () => 0; // a refused indication is passed with SUCCESS too
    w.peer.engine.send(pattern(300, 64));
    pump(w);
    w.host.indicatePolicy = (n) => n;
    w.host.post(w.ctx, 300);
    w.peer.engine.send(pattern(5000, 63));
    pump(w);
    assert.equal(w.host.log.filter((l) => l === "indicate 300 took 0").length, 1);
    assert.ok(w.host.held.length >= 2, `indications: ${w.host.held.length}`);
    for (const nbl of w.host.held) {
      assert.equal(nbl.next, null);
      assert.equal(w.ledger.view(nbl, "host", "test").length, 1);
    }
    assert.ok(w.host.indicateStatuses.length > w.host.held.length, "a refused indication too");
    assert.ok(w.host.indicateStatuses.every((s) => s === "NDIS_STATUS_SUCCESS"));
    assert.deepEqual(w.host.stream, [...pattern(300, 64), ...pattern(5000, 63)]);
    upload(w);
  });

  void test("IV-5: an invalidated connection keeps its resources and state until the host terminates it", () => {
    const w = track(offloaded());
    w.host.indicatePolicy = () => 0;
    w.peer.engine.send(pattern(300, 62));
    pump(w); // refused: the bytes stay at the target
    const rcvNxt = w.target.engineOf(w.ctx)?.rcvNxt;
    const inv = tcpRef(w.ctx);
    w.target.invalidateOffload(inv);
    w.target.process(at(w.now));
    assert.equal(inv.status, "NDIS_STATUS_SUCCESS");
    advance(w, 300_000, 1000);
    assert.equal(w.target.connectionCount, 1);
    assert.deepEqual(w.target.objectCount, { neighbors: 1, paths: 1 });
    const b = upload(w);
    assert.equal(b.status, "NDIS_STATUS_SUCCESS");
    assert.equal(b.delegatedState?.rcvNxt, rcvNxt);
    assert.deepEqual(w.host.uploadedBuffered, [...pattern(300, 62)]);
    assert.equal(w.target.connectionCount, 0);
  });
});
