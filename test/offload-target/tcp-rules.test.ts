// TCP-level chimney rules on *offloaded* connections, through the software target: blind-reset
// mitigation (NS-3, BR-0), modular arithmetic across the 2^32 wrap (NR-1), SACK capability
// (CFG-4), 802.1Q and MAC filtering (VL-1, NB-1, NB-3), contexts (CTX-1), IPv4 options (NS-5),
// persist state at upload (PS-2), timestamps across offload cycles (TS-1), sender SWS (SW-1),
// cached state (ST-2), keepalive updates (UP-5), reachability (NR-2), FIN-WAIT-2 expiry (FW2-3),
// urgent BufferedData (IO-24, NS-7) and RSS queue moves (RS-2). The ledger is quiescent after
// every test.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, type Instant } from "../../src/time/instant.js";
import { Seq } from "../../src/wire/seq.js";
import { tcpConfig } from "../../src/tcp/config.js";
import { TcpConnection } from "../../src/tcp/connection.js";
import { internetChecksum } from "../../src/wire/checksum.js";
import { decodeFrame, emitTcpPacket } from "../../src/wire/packet.js";
import { mac, MAC_BROADCAST, type MacAddr, type VlanTag } from "../../src/wire/ethernet.js";
import { TcpFlag, type TcpRepr } from "../../src/wire/tcp-repr.js";
import { newBlock, type NeighborBlock, type TcpBlock } from "../../src/chimney/block-list.js";
import type { TcpCachedState, TcpDelegatedState, TcpOffloadState } from "../../src/chimney/state.js";
import {
  offloadStateFromSnapshot,
  sendDataViews,
  snapshotFromOffloadState,
} from "../../src/chimney/tcp-state.js";
import {
  advance,
  at,
  buildTree,
  HOST_IP,
  HOST_MAC,
  HOST_PORT,
  NEIGHBOR_HANDLE,
  offloaded,
  type OffloadedOpts,
  PEER_IP,
  PEER_MAC,
  PEER_PORT,
  pattern,
  pump,
  TCP_HANDLE,
  tcpRef,
  terminate,
  type World,
  trackWorlds,
  freeChain,
} from "../support/target-testing.js";
import { RssReceiveQueues } from "../../src/offload-target/rss.js";
import { receiveFilter } from "../../src/offload-target/tcp-rules.js";

const track = trackWorlds();

function world(opts: OffloadedOpts = {}): World {
  return track(offloaded(opts));
}

/** The target's engine for the world's connection. */
function eng(w: World): TcpConnection {
  const e = w.target.engineOf(w.ctx);
  assert.ok(e !== undefined, "connection is offloaded");
  return e;
}

/** A segment from the peer with explicit fields (the peer engine's numbers as defaults). */
function rawSeg(w: World, over: Partial<TcpRepr>): Uint8Array {
  return w.peer.raw(over);
}

/** Delivers one frame to the target and collects what it transmits (not given to the peer). */
function inject(w: World, frame: Uint8Array): TcpRepr[] {
  const now = at(w.now);
  w.target.handleFrame(now, frame);
  w.target.process(now);
  return drainTarget(w, now);
}

function drainTarget(w: World, now: Instant): TcpRepr[] {
  const out: TcpRepr[] = [];
  for (let f = w.target.pollTransmit(now); f !== undefined; f = w.target.pollTransmit(now)) {
    const t = decodeFrame(f).transport;
    if (t?.kind === "tcp") out.push(t.tcp);
  }
  return out;
}

/** Peer frame with custom Ethernet addressing / tagging. */
function peerFrame(
  w: World,
  over: Partial<TcpRepr>,
  eth: { dst?: MacAddr | undefined; vlan?: VlanTag | undefined },
): Uint8Array {
  const s = w.peer.engine.status();
  return emitTcpPacket({
    ip: { src: PEER_IP, dst: HOST_IP },
    tcp: {
      srcPort: PEER_PORT,
      dstPort: HOST_PORT,
      seq: s.sndNxt,
      ack: s.rcvNxt,
      flags: TcpFlag.ACK | TcpFlag.PSH,
      window: 0xffff,
      urgent: 0,
      mss: undefined,
      windowScale: undefined,
      sackPermitted: false,
      sack: [],
      timestamps: undefined,
      unknownOptions: [],
      payload: new Uint8Array(0),
      ...over,
    },
    ethernet: { src: PEER_MAC, dst: eth.dst ?? HOST_MAC, vlan: eth.vlan },
  });
}

/** Posts a large request so received data reaches the host's stream. */
function postBig(w: World, n = 1 << 16): void {
  w.host.post(w.ctx, n, { noPush: false });
}

/** Terminates, frees the returned send data; returns the block. */
function upload(w: World): TcpBlock {
  const b = terminate(w);
  freeChain(w, b.netBufferListChain);
  return b;
}

// ---------------------------------------------------------------------------------------------

void describe("NS-3 / BR-0: blind in-window attack mitigation on an offloaded connection", () => {
  for (const insecure of [false, true]) {
    void test(`challenge ACKs for RST, SYN and bad ACKs${insecure ? " (host config with RFC 5961 off)" : ""}`, () => {
      const target = insecure
        ? {
            tcpConfig: tcpConfig({
              rfc5961: false,
              rfc5961Rst: false,
              rfc5961Syn: false,
              sendBufferSize: 2 ** 30,
            }),
          }
        : {};
      const w = world({ target });
      pump(w);
      const e = eng(w);
      const rcvNxt = e.rcvNxt;
      const sndNxt = e.sndNxt;
      const isChallenge = (s: TcpRepr): boolean =>
        (s.flags & TcpFlag.ACK) !== 0 &&
        (s.flags & (TcpFlag.RST | TcpFlag.SYN)) === 0 &&
        s.payload.length === 0 &&
        s.seq === sndNxt &&
        s.ack === rcvNxt;

      // RST in window but not at RCV.NXT: one challenge ACK, no abort (RFC 5961 3.2).
      let out = inject(w, rawSeg(w, { flags: TcpFlag.RST, seq: Seq.add(rcvNxt, 100), ack: Seq.of(0) }));
      assert.equal(out.length, 1, "one challenge ACK for an in-window RST");
      assert.ok(isChallenge(out[0] as TcpRepr));
      assert.equal(e.state, "ESTABLISHED");
      assert.equal(w.host.events.length, 0, "no TcpIndicateAbort");

      // SYN in window, not at RCV.NXT: challenge ACK, no upload (RFC 5961 4.2).
      out = inject(w, rawSeg(w, { flags: TcpFlag.SYN, seq: Seq.add(rcvNxt, 10), ack: Seq.of(0) }));
      assert.equal(out.length, 1, "one challenge ACK for an in-window SYN");
      assert.ok(isChallenge(out[0] as TcpRepr));
      // SYN outside the window: an ACK as well.
      out = inject(w, rawSeg(w, { flags: TcpFlag.SYN, seq: Seq.add(rcvNxt, 1 << 30), ack: Seq.of(0) }));
      assert.equal(out.length, 1, "an ACK for an out-of-window SYN");
      assert.ok(isChallenge(out[0] as TcpRepr));
      assert.equal(e.state, "ESTABLISHED");
      assert.equal(w.host.events.length, 0, "no upload request for an out-of-order SYN");

      // ACK older than SND.UNA - MAX.SND.WND, with data: discarded, challenge ACK (5961 5.2).
      const old = Seq.sub(e.sndUna, 0x7fff_0000);
      out = inject(w, rawSeg(w, { ack: old, payload: pattern(50, 3) }));
      assert.equal(out.length, 1, "challenge ACK for an unacceptable ACK");
      assert.ok(isChallenge(out[0] as TcpRepr));
      assert.equal(e.readable, 0, "its data was discarded");
      assert.equal(e.rcvNxt, rcvNxt);

      // The exact RST still resets (the mitigation does not block a genuine one).
      inject(w, rawSeg(w, { flags: TcpFlag.RST, seq: rcvNxt, ack: Seq.of(0) }));
      assert.deepEqual(
        w.host.events.map((x) => x.type),
        ["TcpIndicateAbort"],
      );
      upload(w);
    });
  }
});

void describe("NR-1: modular arithmetic across the 2^32 wrap while offloaded", () => {
  void test("data both ways and out-of-order reassembly cross the sequence and timestamp wrap", () => {
    const w = world({
      hostIss: 0xffff_ff00,
      peerIss: 0xffff_fe00,
      hostTsOffset: 0xffff_ffff - 103,
      peerTsOffset: 0xffff_ffff - 101,
    });
    const e = eng(w);
    assert.ok(e.sndNxt > 0xffff_0000 && e.rcvNxt > 0xffff_0000, "both directions start below the wrap");
    // Host -> peer: 6000 bytes cross the send-side wrap.
    const out = pattern(6000, 11);
    w.host.send(w.ctx, out);
    advance(w, 300);
    assert.deepEqual(Uint8Array.from(w.peer.read), out);
    assert.ok(e.sndUna < 0x1_0000, "SND.UNA wrapped");
    assert.equal(w.host.sendCompleted.length, 1);
    assert.equal(w.host.sendCompleted[0]?.status, "NDIS_STATUS_SUCCESS");
    // Peer -> host: the second segment (past the wrap) arrives first.
    postBig(w);
    const r = e.rcvNxt;
    const a = pattern(600, 12);
    const b = pattern(700, 13);
    const segB = rawSeg(w, { seq: Seq.add(r, 600), payload: b, flags: TcpFlag.ACK | TcpFlag.PSH });
    const segA = rawSeg(w, { seq: r, payload: a, flags: TcpFlag.ACK });
    w.peer.deliverIn = false;
    inject(w, segB);
    assert.equal(e.rcvNxt, r, "out of order: held");
    inject(w, segA);
    assert.equal(e.rcvNxt, Seq.add(r, 1300));
    assert.ok(e.rcvNxt < 0x1_0000, "RCV.NXT wrapped");
    // The peer's own engine has not sent these; only the host's stream matters here.
    advance(w, 600);
    assert.deepEqual(Uint8Array.from(w.host.stream), Uint8Array.from([...a, ...b]));
    // Timestamps wrapped on the wire too, and PAWS accepted the peer's wrapped TSvals.
    const tsvals = w.peer.seen.flatMap((s) => (s.timestamps === undefined ? [] : [s.timestamps.tsVal]));
    assert.ok(tsvals.some((t) => t < 0x1000) && tsvals.some((t) => t > 0xffff_0000), "TSval crossed 2^32");
    const u = upload(w);
    assert.ok(u.delegatedState !== undefined);
  });
});

void describe("CFG-4: SupportSack", () => {
  const cases = [
    { supportSack: true, how: "option", target: { supportSack: true } },
    { supportSack: false, how: "option", target: { supportSack: false } },
    { supportSack: false, how: "capabilities", target: { capabilities: { supportSack: false } } },
  ] as const;
  for (const { supportSack, how, target } of cases) {
    void test(`SupportSack=${String(supportSack)} (${how}): SACK generated/consumed only when supported`, () => {
      const w = world({ target });
      pump(w);
      const e = eng(w);
      assert.equal(e.sackEnabled, supportSack, "the engine's SACK follows the capability");
      // Generate: an out-of-order segment draws a duplicate ACK with (or without) a SACK block.
      const r = e.rcvNxt;
      w.peer.deliverIn = false;
      const out = inject(w, rawSeg(w, { seq: Seq.add(r, 1000), payload: pattern(100, 4) }));
      const dup = out.find((s) => s.ack === r);
      assert.ok(dup !== undefined, "a duplicate ACK went out");
      assert.equal(dup.sack.length > 0, supportSack, "SACK block in the duplicate ACK");
      if (supportSack) assert.deepEqual(dup.sack[0], { left: Seq.add(r, 1000), right: Seq.add(r, 1100) });
      // Consume / ignore: two duplicate ACKs whose SACK blocks cover four later segments.
      w.host.send(w.ctx, pattern(6 * e.mss, 5)); // six full segments
      const sent = drainTarget(w, at(w.now)).filter((s) => s.payload.length > 0);
      assert.equal(sent.length, 6);
      const s1 = sent[0] as TcpRepr;
      const s3 = sent[2] as TcpRepr;
      const s6 = sent[5] as TcpRepr;
      const sackBlock = { left: s3.seq, right: Seq.add(s6.seq, s6.payload.length) };
      const dupAck = (): TcpRepr[] =>
        inject(w, rawSeg(w, { seq: Seq.add(r, 0), ack: s1.seq, sack: [sackBlock] }));
      const out2 = [...dupAck(), ...dupAck()];
      const rtx = out2.filter((s) => s.payload.length > 0);
      // With SACK consumed, RFC 6675 loss detection deems s1 lost (more than DupThresh - 1
      // segments SACKed above it); without it the option is ignored and two duplicate ACKs are
      // not enough for a fast retransmit.
      assert.equal(rtx[0]?.seq, supportSack ? s1.seq : undefined, "SACK consumed only with SupportSack");
      assert.equal(e.sndUna, s1.seq);
      // The rest of a segment with a SACK option is processed: its cumulative ACK counts.
      inject(w, rawSeg(w, { seq: Seq.add(r, 0), ack: s3.seq, sack: [sackBlock] }));
      assert.equal(e.sndUna, s3.seq, "the cumulative ACK was processed");
      upload(w);
    });
  }
});

void describe("VL-1 / NB-1 / NB-3: 802.1Q, source MAC and receive MAC of offloaded connections", () => {
  const OWN = mac("02:00:00:00:00:99");
  const OTHER = mac("02:00:00:00:00:77");

  /** Frames the target sends for the connection, decoded with their Ethernet headers. */
  function wireFrames(w: World): ReturnType<typeof decodeFrame>[] {
    const now = at(w.now);
    const out: ReturnType<typeof decodeFrame>[] = [];
    for (let f = w.target.pollTransmit(now); f !== undefined; f = w.target.pollTransmit(now))
      out.push(decodeFrame(f));
    return out;
  }

  void test("VL-1: VLAN 0 accepts untagged, priority-tagged and tagged frames; sends untagged", () => {
    const w = world();
    pump(w);
    postBig(w);
    const e = eng(w);
    w.peer.deliverIn = false;
    let seq = e.rcvNxt;
    for (const vlan of [
      undefined,
      { id: 0, priority: 3, dropEligible: false },
      { id: 42, priority: 0, dropEligible: false },
    ]) {
      const data = pattern(100, 20 + (vlan?.id ?? 1));
      w.target.handleFrame(at(w.now), peerFrame(w, { seq, payload: data }, { vlan }));
      seq = Seq.add(seq, 100);
      assert.equal(e.rcvNxt, seq, `accepted with tag ${JSON.stringify(vlan)}`);
    }
    w.host.send(w.ctx, pattern(10, 1));
    const frames = wireFrames(w);
    assert.ok(frames.length > 0);
    for (const f of frames) assert.equal(f.ethernet?.vlan, undefined, "VLAN 0, priority 0: no tag");
    upload(w);
  });

  void test("VL-1: a non-zero VLAN id tags every frame and accepts only that VLAN", () => {
    const w = world({
      neighborConst: { dlSourceAddress: new Uint8Array(6), vlanId: 42 },
      target: { interfaceVlans: [42] },
      editState: (s) => ({ ...s, cachedState: { ...s.cachedState, userPriority: 5 } }),
    });
    const e = eng(w);
    w.peer.deliverIn = false;
    const r = e.rcvNxt;
    // Untagged and wrong-VLAN frames are dropped (not processed, not sent up).
    const up0 = w.host.upFrames.length;
    w.target.handleFrame(at(w.now), peerFrame(w, { seq: r, payload: pattern(10, 1) }, {}));
    w.target.handleFrame(
      at(w.now),
      peerFrame(
        w,
        { seq: r, payload: pattern(10, 1) },
        { vlan: { id: 43, priority: 0, dropEligible: false } },
      ),
    );
    assert.equal(e.rcvNxt, r, "untagged / VLAN 43 dropped");
    assert.equal(w.host.upFrames.length, up0);
    w.target.handleFrame(
      at(w.now),
      peerFrame(
        w,
        { seq: r, payload: pattern(10, 1) },
        { vlan: { id: 42, priority: 0, dropEligible: false } },
      ),
    );
    assert.equal(e.rcvNxt, Seq.add(r, 10), "VLAN 42 accepted");
    w.host.send(w.ctx, pattern(10, 2));
    const frames = wireFrames(w);
    assert.ok(frames.length > 0);
    for (const f of frames) assert.deepEqual(f.ethernet?.vlan, { id: 42, priority: 5, dropEligible: false });
    upload(w);
  });

  void test("NB-1 / NB-3: DlSourceAddress is the frames' source MAC and the receive MAC", () => {
    const w = world({ neighborConst: { dlSourceAddress: OWN, vlanId: 0 } });
    const e = eng(w);
    w.peer.deliverIn = false;
    w.host.send(w.ctx, pattern(10, 3));
    const frames = wireFrames(w);
    assert.ok(frames.length > 0);
    for (const f of frames) assert.deepEqual(f.ethernet?.src, OWN, "NB-1: stamped with DlSourceAddress");
    const r = e.rcvNxt;
    // NB-3: traffic on the configured MAC (and group addresses) is the connection's.
    w.target.handleFrame(at(w.now), peerFrame(w, { seq: r, payload: pattern(10, 1) }, { dst: OWN }));
    assert.equal(e.rcvNxt, Seq.add(r, 10));
    w.target.handleFrame(
      at(w.now),
      peerFrame(w, { seq: Seq.add(r, 10), payload: pattern(10, 2) }, { dst: MAC_BROADCAST }),
    );
    assert.equal(e.rcvNxt, Seq.add(r, 20));
    // A unicast frame for another MAC is not: it goes up the non-offload path.
    const up0 = w.host.upFrames.length;
    w.target.handleFrame(
      at(w.now),
      peerFrame(w, { seq: Seq.add(r, 20), payload: pattern(10, 3) }, { dst: OTHER }),
    );
    assert.equal(e.rcvNxt, Seq.add(r, 20));
    assert.equal(w.host.upFrames.length, up0 + 1);
    upload(w);
  });

  void test("NB-1 / NB-3: with DlSourceAddress zero the interface MAC is used both ways", () => {
    const w = world();
    const e = eng(w);
    w.peer.deliverIn = false;
    w.host.send(w.ctx, pattern(10, 3));
    for (const f of wireFrames(w)) assert.deepEqual(f.ethernet?.src, HOST_MAC);
    const r = e.rcvNxt;
    w.target.handleFrame(at(w.now), peerFrame(w, { seq: r, payload: pattern(10, 1) }, { dst: HOST_MAC }));
    assert.equal(e.rcvNxt, Seq.add(r, 10));
    assert.equal(
      receiveFilter(
        decodeFrame(peerFrame(w, {}, { dst: OWN })).ethernet,
        { dlSourceAddress: new Uint8Array(6), vlanId: 0 },
        HOST_MAC,
      ),
      "up",
    );
    upload(w);
  });
});

void describe("CTX-1: a distinct context per offloaded object, holding its NdisOffloadHandle", () => {
  void test("contexts are distinct; events carry the TCP handle, queries the neighbor handle", () => {
    const w = world({ target: { nceStale: Duration.fromMillis(100) } });
    const root = w.root as NeighborBlock;
    const path = root.dependentBlockList;
    assert.ok(path !== null);
    const ctxs = [root.miniportOffloadContext?.context, path.miniportOffloadContext?.context, w.ctx];
    assert.ok(ctxs.every((c) => typeof c === "number"));
    assert.equal(new Set(ctxs).size, 3, "three objects, three contexts");
    // The reachability query (NR-3) carries the neighbor's handle from its context.
    w.host.hrd = 0;
    advance(w, 500, 50);
    w.host.send(w.ctx, pattern(10, 1));
    pump(w);
    assert.ok(w.host.queryBlocks.length > 0);
    for (const b of w.host.queryBlocks) assert.equal(b.ndisOffloadHandle, NEIGHBOR_HANDLE);
    // An event carries the TCP handle.
    const inv = tcpRef(w.ctx);
    w.target.invalidateOffload(inv);
    w.target.process(at(w.now));
    assert.ok(w.host.eventHandles.length > 0);
    for (const h of w.host.eventHandles) assert.equal(h, TCP_HANDLE);
    upload(w);
  });
});

void describe("NS-5: IPv4 options go up the non-offload path", () => {
  void test("a segment of an offloaded connection with IPv4 options is indicated, not processed", () => {
    const w = world();
    pump(w);
    const e = eng(w);
    const r = e.rcvNxt;
    const plain = rawSeg(w, { seq: r, payload: pattern(20, 9) });
    const withOpts = addIpv4Options(plain);
    assert.equal(decodeFrame(withOpts).error, undefined, "the frame with options decodes");
    const up0 = w.host.upFrames.length;
    inject(w, withOpts);
    assert.equal(e.rcvNxt, r, "not processed on the offloaded connection");
    assert.equal(w.host.upFrames.length, up0 + 1);
    assert.equal(w.host.upFrames[up0], withOpts);
    upload(w);
  });
});

/** The same frame with 4 bytes of IPv4 options (NOP, NOP, NOP, EOL) inserted. */
function addIpv4Options(frame: Uint8Array): Uint8Array {
  const ETH = 14;
  const out = new Uint8Array(frame.length + 4);
  out.set(frame.subarray(0, ETH + 20), 0);
  out.set([1, 1, 1, 0], ETH + 20);
  out.set(frame.subarray(ETH + 20), ETH + 24);
  out[ETH] = 0x46; // version 4, IHL 6
  const total = ((out[ETH + 2] ?? 0) << 8) | (out[ETH + 3] ?? 0);
  out[ETH + 2] = ((total + 4) >> 8) & 0xff;
  out[ETH + 3] = (total + 4) & 0xff;
  out[ETH + 10] = 0;
  out[ETH + 11] = 0;
  const sum = internetChecksum(out, ETH, ETH + 24);
  out[ETH + 10] = sum >> 8;
  out[ETH + 11] = sum & 0xff;
  return out;
}

/** The host's engine after an upload: the terminate's delegated state with the original const/cached. */
function hostImport(
  w: World,
  b: TcpBlock,
  hostNow: Instant,
  buffered: readonly Uint8Array[] = [],
  over: Partial<TcpDelegatedState> = {},
): TcpConnection {
  const d0 = b.delegatedState;
  const k = w.tcpBlock.constState;
  const ca = w.tcpBlock.cachedState;
  assert.ok(d0 !== undefined && k !== undefined && ca !== undefined);
  const d: TcpDelegatedState = { ...d0, ...over };
  const state: TcpOffloadState = { constState: k, cachedState: ca, delegatedState: d };
  const send = sendDataViews(d, w.ledger, "host", "test import");
  const snap = snapshotFromOffloadState(state, send, buffered, { cfg: w.cfg, pathMtu: 1500, ipVersion: 4 });
  return TcpConnection.importState(snap, hostNow, w.cfg);
}

/** Offloads a host engine again to the world's target (the same tree shape). */
function reoffload(w: World, h: TcpConnection, hostNow: Instant): void {
  const state = offloadStateFromSnapshot(h.exportState(hostNow), {
    ledger: w.ledger,
    owner: "host",
    op: "InitiateOffload",
    rcvIndicationSize: 0,
  });
  const { root, tcp } = buildTree(state);
  w.host.initiate(root);
  w.target.process(at(w.now));
  const ctx = tcp.miniportOffloadContext?.context;
  assert.ok(ctx != null, `re-offload failed: ${String(tcp.status)}`);
  w.ctx = ctx;
  w.root = root;
  w.tcpBlock = tcp;
}

/** Sets the peer's advertised window (bytes, rounded down to the scale) with a raw ACK. */
function peerWindow(w: World, bytes: number): number {
  const e = eng(w);
  const shift = e.windowScales.snd;
  const field = Math.max(bytes === 0 ? 0 : 1, Math.floor(bytes / 2 ** shift));
  inject(w, rawSeg(w, { window: field }));
  assert.equal(e.sndWnd, field * 2 ** shift);
  return e.sndWnd;
}

void describe("PS-2: persist state at upload", () => {
  void test("persist values are returned; the host resumes probing from them", () => {
    const w = world();
    pump(w);
    w.peer.deliverIn = false; // the peer never answers the probes
    assert.equal(peerWindow(w, 0), 0);
    w.host.send(w.ctx, pattern(2000, 6));
    assert.equal(drainTarget(w, at(w.now)).filter((s) => s.payload.length > 0).length, 0, "zero window");
    // Let the persist timer fire a few times (probes are not answered).
    const e = eng(w);
    const probes0 = w.peer.seen.length;
    advance(w, 4000, 20);
    assert.ok(w.peer.seen.length > probes0, "window probes were sent");
    assert.equal(e.sndWnd, 0);
    const b = terminate(w);
    const d = b.delegatedState;
    assert.ok(d !== undefined);
    assert.ok(d.sndWndProbeCount + d.retransmitCount > 0, "a persist round is in progress");
    assert.ok(d.retransmitTimeoutDelta !== undefined, "PS-2: a running persist timer is returned");
    assert.ok(d.retransmitTimeoutDelta > 0 && d.retransmitTimeoutDelta <= Duration.fromSeconds(60));
    // The host resumes: its timer fires after the returned delta and sends a probe.
    const hostNow = at(w.now);
    const h = hostImport(w, b, hostNow);
    const due = h.pollTimeout();
    assert.ok(due !== undefined);
    assert.equal(due - hostNow, d.retransmitTimeoutDelta, "the host's timer is the returned delta");
    // 0 -> the host's retransmit timer fires at once.
    const h0 = hostImport(w, b, hostNow, [], { retransmitTimeoutDelta: Duration.ZERO });
    const due0 = h0.pollTimeout();
    assert.ok(due0 !== undefined && due0 <= hostNow, "TimeoutDelta 0 expires immediately");
    h0.handleTimeout(hostNow);
    const probe = h0.pollTransmit(hostNow);
    assert.ok(probe !== undefined && probe.payload.length <= 1, "a window probe");
    freeChain(w, b.netBufferListChain);
  });

  void test("PS-2 / TM-F: no persist (or retransmit) timer running -> -1 (undefined)", () => {
    const w = world();
    advance(w, 200);
    const b = upload(w);
    assert.equal(b.delegatedState?.retransmitTimeoutDelta, undefined);
    assert.equal(b.delegatedState?.sndWndProbeCount, 0);
  });
});

void describe("TS-1: timestamps increase monotonically across offloads and uploads", () => {
  void test("three offload/upload cycles with different host clocks; TSval never goes back", () => {
    const w = world({ hostTsOffset: 0xffff_ffff - 400 });
    pump(w);
    const tsOnWire: number[] = [];
    let seenAt = 0;
    const takeTarget = (): void => {
      for (; seenAt < w.peer.seen.length; seenAt++) {
        const t = w.peer.seen[seenAt]?.timestamps;
        if (t !== undefined) tsOnWire.push(t.tsVal);
      }
    };
    const sent: number[] = [];
    // Host clocks relative to the target's (ms): far ahead, then behind the previous, then far ahead.
    const skews = [3_600_000, 1_000, 86_400_000];
    for (const [i, skew] of skews.entries()) {
      const a = pattern(3000, 30 + i);
      w.host.send(w.ctx, a);
      sent.push(...a);
      advance(w, 300);
      takeTarget();
      const b = terminate(w);
      const hostNow = (): Instant => at(w.now + skew);
      const h = hostImport(w, b, hostNow());
      freeChain(w, b.netBufferListChain);
      // The host runs the connection for a while on its own clock.
      const c = pattern(2000, 40 + i);
      assert.equal(h.send(c), c.length);
      sent.push(...c);
      for (let t = 0; t < 300; t += 10) {
        w.now += 10;
        const hp = h.pollTimeout();
        if (hp !== undefined && hp <= hostNow()) h.handleTimeout(hostNow());
        const pp = w.peer.engine.pollTimeout();
        if (pp !== undefined && pp <= at(w.now)) w.peer.engine.handleTimeout(at(w.now));
        for (let k = 0; k < 20; k++) {
          let moved = false;
          for (let s = h.pollTransmit(hostNow()); s !== undefined; s = h.pollTransmit(hostNow())) {
            moved = true;
            if (s.timestamps !== undefined) tsOnWire.push(s.timestamps.tsVal);
            w.peer.engine.handleSegment(at(w.now), s);
          }
          for (
            let s = w.peer.engine.pollTransmit(at(w.now));
            s !== undefined;
            s = w.peer.engine.pollTransmit(at(w.now))
          ) {
            moved = true;
            h.handleSegment(hostNow(), s);
          }
          if (!moved) break;
        }
      }
      for (let x = w.peer.engine.recv(); x !== undefined; x = w.peer.engine.recv()) w.peer.read.push(...x);
      while (h.pollEvent() !== undefined);
      assert.equal(h.sendQueued, 0, "everything acknowledged before the next offload");
      reoffload(w, h, hostNow());
    }
    w.host.send(w.ctx, pattern(500, 50));
    advance(w, 300);
    takeTarget();
    assert.deepEqual(
      w.peer.read.length,
      sent.length + 500,
      "the peer accepted every byte (PAWS never dropped)",
    );
    assert.ok(tsOnWire.length >= 12, `${tsOnWire.length} TSvals`);
    for (let i = 1; i < tsOnWire.length; i++) {
      const d = ((tsOnWire[i] as number) - (tsOnWire[i - 1] as number)) | 0;
      assert.ok(d >= 0, `TSval went back at ${i}: ${tsOnWire[i - 1]} -> ${tsOnWire[i]}`);
    }
    assert.ok(
      tsOnWire.some((t) => t < 0x1_0000_000) && tsOnWire.some((t) => t > 0xf000_0000),
      "TSval wrapped",
    );
    upload(w);
  });
});

void describe("SW-1: sender silly-window avoidance on the target's send path", () => {
  void test("held back when < MSS, short of the NBL boundary and < half the max window", () => {
    const w = world();
    pump(w);
    w.peer.deliverIn = false;
    const e = eng(w);
    const wnd = peerWindow(w, 600);
    assert.ok(wnd > 0 && wnd < e.mss, `window ${wnd} below the MSS ${e.mss}`);
    const maxWnd = e.exportState(at(w.now)).delegated.maxSndWnd;
    assert.ok(wnd < maxWnd / 2, "less than half the largest window seen");
    w.host.send(w.ctx, pattern(5000, 7)); // one NBL: the window ends short of its boundary
    const now0 = w.now;
    let first: TcpRepr | undefined;
    while (first === undefined && w.now < now0 + 5000) {
      advance(w, 10, 10);
      first = w.peer.seen.find((s) => s.payload.length > 0);
    }
    assert.ok(first !== undefined, "the SWS timer finally sends");
    assert.ok(w.now - now0 >= 150, `held back for ${w.now - now0} ms (the SWS override timer)`);
    assert.equal(first.payload.length, wnd, "on expiry: as much as the window permits");
    upload(w);
  });

  void test("not held back when the segment reaches the NBL boundary", () => {
    const w = world();
    pump(w);
    w.peer.deliverIn = false;
    const e = eng(w);
    const wnd = peerWindow(w, 600);
    w.host.send(w.ctx, pattern(Math.min(200, wnd), 8));
    const out = drainTarget(w, at(w.now)).filter((s) => s.payload.length > 0);
    assert.equal(out.length, 1, "sent at once");
    assert.ok(e.mss > 200);
    upload(w);
  });

  void test("not held back when the amount reaches half the largest window seen", () => {
    // The host hands over MaxSndWnd = 1000: a 600-byte window is more than half of it.
    const w = world({
      editState: (st) => ({ ...st, delegatedState: { ...st.delegatedState, maxSndWnd: 1000, sndWnd: 1000 } }),
    });
    w.peer.deliverIn = false;
    const e = eng(w);
    const wnd = peerWindow(w, 600);
    assert.ok(wnd < e.mss && wnd >= 500, `window ${wnd}`);
    assert.equal(e.exportState(at(w.now)).delegated.maxSndWnd, 1000);
    w.host.send(w.ctx, pattern(5000, 9));
    const out = drainTarget(w, at(w.now)).filter((s) => s.payload.length > 0);
    assert.equal(out.length, 1, "sent at once");
    assert.equal(out[0]?.payload.length, wnd);
    upload(w);
  });
});

/** Queries the connection; returns the block. */
function queryTcp(w: World): TcpBlock {
  const q = tcpRef(w.ctx);
  w.target.queryOffload(q);
  w.target.process(at(w.now));
  assert.equal(q.status, "NDIS_STATUS_SUCCESS");
  return q;
}

/** Applies a TCP cached-state update. */
function updateTcp(w: World, ca: TcpCachedState): void {
  const up = tcpRef(w.ctx, { stateType: "TcpOffloadCachedState", cachedState: ca });
  w.target.updateOffload(up);
  w.target.process(at(w.now));
  assert.equal(up.status, "NDIS_STATUS_SUCCESS");
}

function neighborRef(w: World): NeighborBlock {
  return newBlock<NeighborBlock>({
    layer: "neighbor",
    stateType: "NeighborOffloadState",
    miniportOffloadContext: { context: w.root.miniportOffloadContext?.context ?? null },
    ndisOffloadHandle: NEIGHBOR_HANDLE,
    constState: undefined,
    cachedState: undefined,
    delegatedState: undefined,
  });
}

void describe("ST-2: the target changes a cached variable only by applying an update", () => {
  void test("cached state is a frozen copy, unchanged by traffic and events, replaced by an update", () => {
    const w = world({
      editState: (s) => ({
        ...s,
        cachedState: {
          ...s.cachedState,
          keepAliveEnabled: true,
          kaTimeout: Duration.fromMillis(300),
          kaInterval: Duration.fromMillis(100),
          kaProbeCount: 3,
        },
      }),
    });
    const original = w.tcpBlock.cachedState;
    assert.ok(original !== undefined);
    const snapshot = { ...original };
    let q = queryTcp(w);
    assert.ok(Object.isFrozen(q.cachedState), "the target holds a frozen record");
    assert.notEqual(q.cachedState, original, "a copy, not the host's object");
    // The host's own record changing is not an update.
    w.tcpBlock.cachedState = { ...original, rcvIndicationSize: 999 };
    // Traffic, delivery, keepalive probes, a window change and a path MTU update.
    postBig(w);
    w.host.send(w.ctx, pattern(4000, 1));
    w.peer.engine.send(pattern(3000, 2));
    advance(w, 200);
    w.peer.deliverIn = false;
    advance(w, 600, 50); // keepalive probes go unanswered
    const pathUp = newBlock({
      layer: "path",
      stateType: "Ip4OffloadCachedState",
      miniportOffloadContext: { context: w.root.dependentBlockList?.miniportOffloadContext?.context ?? null },
      ndisOffloadHandle: undefined,
      constState: undefined,
      cachedState: { pathMtu: 1200 },
      delegatedState: undefined,
    } as const);
    w.target.updateOffload(pathUp);
    w.target.process(at(w.now));
    q = queryTcp(w);
    assert.deepEqual({ ...q.cachedState }, snapshot, "no cached TCP variable changed");
    // An update replaces it (and the one-shot flags are the host's to set).
    updateTcp(w, { ...snapshot, rcvIndicationSize: 4096, ttlOrHopLimit: 17 });
    q = queryTcp(w);
    assert.ok(Object.isFrozen(q.cachedState));
    assert.equal(q.cachedState?.rcvIndicationSize, 4096);
    assert.equal(q.cachedState?.ttlOrHopLimit, 17);
    // Neighbor and path cached state are frozen copies as well.
    const nq = neighborRef(w);
    w.target.queryOffload(nq);
    w.target.process(at(w.now));
    assert.ok(Object.isFrozen(nq.cachedState));
    w.peer.deliverIn = true;
    upload(w);
  });
});

void describe("UP-5: keepalive resets with TCP_FLAG_MAX_RT_RESTART", () => {
  void test("KaProbeCount updated -> ProbeCount 0; KaTimeout updated -> TimeoutDelta restarts", () => {
    const ka = {
      keepAliveEnabled: true,
      kaTimeout: Duration.fromMillis(400),
      kaInterval: Duration.fromMillis(100),
      kaProbeCount: 20,
    };
    // The host ran keepalive too: its timer value is handed over (-1 would mean not running).
    const w = world({
      editState: (s) => ({
        ...s,
        cachedState: { ...s.cachedState, ...ka },
        delegatedState: { ...s.delegatedState, keepAliveTimeoutDelta: ka.kaTimeout },
      }),
    });
    pump(w);
    w.peer.deliverIn = false;
    advance(w, 750, 10); // idle 400 ms, then probes every 100 ms
    let d = queryTcp(w).delegatedState;
    assert.ok(d !== undefined && d.keepAliveProbeCount >= 2, `probes sent: ${d?.keepAliveProbeCount}`);
    const base = w.tcpBlock.cachedState;
    assert.ok(base !== undefined);
    updateTcp(w, { ...base, kaProbeCount: 30, maxRtRestart: true });
    d = queryTcp(w).delegatedState;
    assert.equal(d?.keepAliveProbeCount, 0, "UP-5: ProbeCount reset");
    advance(w, 650, 10);
    d = queryTcp(w).delegatedState;
    assert.ok(d !== undefined && d.keepAliveProbeCount >= 1);
    updateTcp(w, { ...base, kaProbeCount: 30, kaTimeout: Duration.fromMillis(900), maxRtRestart: true });
    d = queryTcp(w).delegatedState;
    assert.equal(
      d?.keepAliveTimeoutDelta,
      Duration.fromMillis(900),
      "UP-5: TimeoutDelta restarted from KaTimeout",
    );
    assert.equal(d?.keepAliveProbeCount, 0);
    w.peer.deliverIn = true;
    upload(w);
  });
});

void describe("NR-2: forward progress refreshes the neighbor's reachability time", () => {
  void test("NRD grows while idle, drops to 0 on new data or a new ACK, not on a duplicate", () => {
    const w = world();
    pump(w);
    const nrd = (): number => {
      const q = neighborRef(w);
      w.target.queryOffload(q);
      w.target.process(at(w.now));
      const d = q.delegatedState;
      assert.ok(d !== undefined && "nicReachabilityDelta" in d);
      return d.nicReachabilityDelta;
    };
    advance(w, 500, 50);
    const idle = nrd();
    assert.ok(idle >= Duration.fromMillis(400), `idle NRD ${idle}`);
    // In-order data from the peer: progress.
    postBig(w);
    w.peer.engine.send(pattern(100, 1));
    pump(w);
    assert.equal(nrd(), 0, "new data -> NRD 0");
    advance(w, 300, 50);
    const before = nrd();
    assert.ok(before >= Duration.fromMillis(250));
    // A duplicate of old data is no progress.
    const e = eng(w);
    inject(w, rawSeg(w, { seq: Seq.sub(e.rcvNxt, 100), payload: pattern(100, 1) }));
    assert.equal(nrd(), before, "duplicate -> NRD unchanged");
    // An ACK of data the target sent: progress.
    w.host.send(w.ctx, pattern(100, 2));
    pump(w);
    advance(w, 50, 50); // the peer's delayed ACK goes out at the end of this step
    assert.equal(nrd(), 0, "new ACK -> NRD 0");
    upload(w);
  });
});

void describe("FW2-3: FIN_WAIT_2 timer expiry", () => {
  void test("TcpIndicateRetrieve(TimeoutExpiration); the connection is reported CLOSED", () => {
    const w = world();
    pump(w);
    w.host.disconnect(w.ctx, "graceful");
    pump(w);
    assert.equal(eng(w).state, "FIN-WAIT-2");
    assert.equal(w.host.discCompleted[0]?.status, "NDIS_STATUS_SUCCESS");
    assert.equal(w.host.events.length, 0);
    advance(w, 121_000, 1000); // the peer never closes (FW2-1: the timer starts at 120 s)
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "TimeoutExpiration" }]);
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
  });
});

void describe("IO-24 / NS-7: urgent data in BufferedData handed over at offload", () => {
  const urgentState = (s: TcpOffloadState): TcpOffloadState => ({
    ...s,
    delegatedState: { ...s.delegatedState, bufferedDataUrgent: true },
  });

  void test("IO-6 / C-10 / IO-24: treated like urgent data from the wire: upload requested once the initiate completed, nothing delivered or ACKed", () => {
    const w = world({ buffered: 300, editState: urgentState });
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "ReceivedUrgentData" }]);
    w.host.post(w.ctx, 1000);
    assert.equal(w.host.stream.length, 0, "the urgent BufferedData is not delivered through the chimney");
    assert.equal(w.host.recvCompleted[0]?.status, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    // Later data from the peer is queued, not acknowledged.
    const seen0 = w.peer.seen.length;
    w.peer.engine.send(pattern(200, 2));
    pump(w);
    advance(w, 200);
    assert.equal(
      w.peer.seen.slice(seen0).filter((s) => !(s.flags & TcpFlag.RST)).length,
      0,
      "nothing more is acknowledged",
    );
    const up0 = w.host.upFrames.length;
    const b = upload(w);
    assert.equal(b.status, "NDIS_STATUS_SUCCESS");
    assert.deepEqual(Uint8Array.from(w.host.uploadedBuffered), pattern(300, 1), "returned as BufferedData");
    assert.ok(w.host.upFrames.length > up0, "what followed goes up the non-offload path");
  });

  void test("without the flag the same BufferedData is delivered normally", () => {
    const w = world({ buffered: 300 });
    assert.equal(w.host.events.length, 0);
    w.host.post(w.ctx, 1000);
    advance(w, 600); // the push timer completes the partly filled request
    assert.deepEqual(Uint8Array.from(w.host.stream), pattern(300, 1));
    upload(w);
  });
});

void describe("RS-1 / RS-2: in-order delivery across an RSS indirection-table change (host HashValue)", () => {
  void test("the spec's example: packet 1 on the new CPU runs first, packet 0 is still delivered first", () => {
    const w = world();
    pump(w);
    postBig(w);
    const hash = w.tcpBlock.constState?.hashValue ?? 0;
    const key = (f: Uint8Array): string | undefined => {
      const p = decodeFrame(f);
      return p.transport?.kind === "tcp"
        ? `${p.transport.tcp.srcPort}-${p.transport.tcp.dstPort}`
        : undefined;
    };
    const rss = new RssReceiveQueues(4, (f) => ({ key: key(f), hash }));
    const e = eng(w);
    const r = e.rcvNxt;
    const a = pattern(500, 61);
    const b = pattern(500, 62);
    const q0 = rss.enqueue(rawSeg(w, { seq: r, payload: a }));
    const table = [0, 1, 2, 3].map((i) => (i + 2) % 4); // every entry moves
    rss.setIndirectionTable(table);
    const q1 = rss.enqueue(rawSeg(w, { seq: Seq.add(r, 500), payload: b }));
    assert.notEqual(q0, q1, "the connection moved to another queue");
    // The new queue's CPU runs first: nothing of this connection may be processed yet.
    const first = rss.drain(q1);
    assert.equal(first.length, 0, "packet 1 waits for packet 0");
    const second = rss.drain(q0);
    assert.equal(second.length, 2);
    w.peer.deliverIn = false;
    const acks: TcpRepr[] = [];
    for (const f of second) {
      const before = e.rcvNxt;
      acks.push(...inject(w, f));
      assert.ok(Seq.gt(e.rcvNxt, before), "each frame arrives in order");
    }
    assert.equal(acks.filter((s) => s.sack.length > 0).length, 0, "no out-of-order (SACKed) arrival");
    advance(w, 600);
    assert.deepEqual(Uint8Array.from(w.host.stream), Uint8Array.from([...a, ...b]));
    upload(w);
  });

  void test("queues keep per-connection order under random table changes and drain orders", () => {
    for (let seed = 1; seed <= 50; seed++) {
      let x = seed;
      const rnd = (n: number): number => {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        return (x >>> 8) % n;
      };
      const conns = 3;
      const rss = new RssReceiveQueues(4, (f) => ({ key: `c${f[0]}`, hash: (f[0] ?? 0) * 7 }));
      const next = Array.from({ length: conns }, () => 0);
      const got: number[][] = Array.from({ length: conns }, () => []);
      for (let step = 0; step < 200; step++) {
        const op = rnd(4);
        if (op === 0) rss.setIndirectionTable(Array.from({ length: 8 }, () => rnd(4)));
        else if (op === 1) {
          for (const f of rss.drain(rnd(4))) got[f[0] as number]?.push(f[1] as number);
        } else {
          const c = rnd(conns);
          rss.enqueue(Uint8Array.of(c, (next[c] as number) & 0xff));
          next[c] = (next[c] as number) + 1;
        }
      }
      for (let q = 0; q < 4; q++) for (const f of rss.drain(q)) got[f[0] as number]?.push(f[1] as number);
      for (let c = 0; c < conns; c++) {
        const want = Array.from({ length: next[c] as number }, (_, i) => i & 0xff);
        assert.deepEqual(got[c], want, `seed ${seed}: connection ${c} out of order`);
      }
    }
  });
});

void describe("BR-0: keep-alive probing after a challenge ACK (spec 17.11)", () => {
  const ka = (s: TcpOffloadState): TcpOffloadState => ({
    ...s,
    cachedState: { ...s.cachedState, kaInterval: Duration.fromSeconds(1), kaProbeCount: 3 },
  });

  void test("no acceptable segment within 5 minutes + KaProbeCount probes -> upload, reported CLOSED", () => {
    const w = world({ editState: ka });
    pump(w);
    const e = eng(w);
    inject(w, rawSeg(w, { flags: TcpFlag.RST, seq: Seq.add(e.rcvNxt, 100), ack: Seq.of(0) }));
    w.peer.deliverIn = false; // the (blind) attacker's victim never answers
    advance(w, 299_000, 1000);
    assert.equal(w.host.events.length, 0, "the 5-minute timer has not fired yet");
    const d = queryTcp(w).delegatedState;
    assert.ok(d?.keepAliveTimeoutDelta !== undefined && d.keepAliveTimeoutDelta <= Duration.fromSeconds(1));
    const seen0 = w.peer.seen.length;
    advance(w, 6_000, 100);
    assert.equal(w.peer.seen.length - seen0, 3, "KaProbeCount probes, one per KaInterval");
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "TimeoutExpiration" }]);
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
  });

  void test("an acceptable segment ends the mitigation: no probes, no upload", () => {
    const w = world({ editState: ka });
    pump(w);
    const e = eng(w);
    inject(w, rawSeg(w, { flags: TcpFlag.RST, seq: Seq.add(e.rcvNxt, 100), ack: Seq.of(0) }));
    postBig(w);
    w.peer.engine.send(pattern(10, 1)); // the real peer is alive
    pump(w);
    advance(w, 310_000, 1000);
    assert.equal(w.host.events.length, 0);
    assert.equal(e.state, "ESTABLISHED");
    upload(w);
  });
});

void describe("BR-0: KaProbeCount / KaInterval 0 use the defaults of 10 probes, 1 second", () => {
  void test("after the 5-minute timer: 10 probes 1 s apart, then the upload", () => {
    const w = world({
      editState: (s) => ({
        ...s,
        cachedState: { ...s.cachedState, kaInterval: Duration.ZERO, kaProbeCount: 0 },
      }),
    });
    pump(w);
    const e = eng(w);
    inject(w, rawSeg(w, { flags: TcpFlag.RST, seq: Seq.add(e.rcvNxt, 100), ack: Seq.of(0) }));
    w.peer.deliverIn = false;
    advance(w, 299_500, 1000);
    const seen0 = w.peer.seen.length;
    advance(w, 10_000, 100); // probes at 300 s, 301 s, ... 309 s
    assert.equal(w.peer.seen.length - seen0, 10, "ten probes, one per second");
    assert.equal(w.host.events.length, 0, "the last probe still has its interval");
    advance(w, 1_000, 100);
    assert.deepEqual(w.host.events, [{ type: "TcpIndicateRetrieve", reason: "TimeoutExpiration" }]);
    // ST-2: the cached record still holds the host's zeros.
    const ca = queryTcp(w).cachedState;
    assert.equal(ca?.kaProbeCount, 0);
    assert.equal(ca?.kaInterval, 0);
    const b = upload(w);
    assert.equal(b.delegatedState?.state, "TcpConnectionClosed");
  });
});
