/**
 * Test support for the software offload target (used by src/offload-target tests and the mutant tests):
 * a scripted fake host that records every upcall and checks ledger ownership and the chimney
 * rules a host can observe, a peer (a real TCP engine behind frames built with src/wire/packet.ts,
 * plus raw segment injection), and builders for offload trees made from a real handshake.
 */
import assert from "node:assert/strict";
import { afterEach } from "node:test";
import { Duration, Instant } from "../../src/time/instant.js";
import { tcpConfig, type TcpConfig } from "../../src/tcp/config.js";
import { TcpConnection } from "../../src/tcp/connection.js";
import { Seq, type SeqNum } from "../../src/wire/seq.js";
import { BufferLedger } from "../../src/nbl/ledger.js";
import { mdlChain, netBuffer, type NetBufferList } from "../../src/nbl/nbl.js";
import { copyOut, nblArray } from "../../src/nbl/chain.js";
import { decodeFrame, emitTcpPacket } from "../../src/wire/packet.js";
import { mac } from "../../src/wire/ethernet.js";
import { type IpAddr, ip } from "../../src/wire/ip-addr.js";
import { TcpFlag, type TcpRepr } from "../../src/wire/tcp-repr.js";
import {
  type MiniportOffloadContext,
  type NdisOffloadHandle,
  type NeighborBlock,
  newBlock,
  type OffloadBlockList,
  type PathBlock,
  type TcpBlock,
  treeBlocks,
} from "../../src/chimney/block-list.js";
import {
  INDICATION_PENDING,
  type IndicationAnswer,
  type OffloadHost,
  type ReceiveIndicateResult,
  type TcpOffloadEvent,
} from "../../src/chimney/contract.js";
import type { TcpOffloadState } from "../../src/chimney/state.js";
import type { OffloadStatusIndication } from "../../src/chimney/status.js";
import { offloadStateFromSnapshot } from "../../src/chimney/tcp-state.js";
import { SoftwareTarget, type SoftwareTargetOptions } from "../../src/offload-target/software-target.js";

export const HOST_MAC = mac("02:00:00:00:00:01");
export const PEER_MAC = mac("02:00:00:00:00:02");
export const HOST_IP = ip("192.0.2.1");
export const PEER_IP = ip("192.0.2.2");
export const HOST_IP6 = ip("2001:db8::1");
export const PEER_IP6 = ip("2001:db8::2");
export const HOST_PORT = 40000;
export const PEER_PORT = 80;
export const TCP_HANDLE = 7 as NdisOffloadHandle;
export const NEIGHBOR_HANDLE = 3 as NdisOffloadHandle;

/** A chimney rule the fake host saw broken. The message starts with the rule id. */
export class RuleViolation extends Error {
  readonly rule: string;
  constructor(rule: string, msg: string) {
    super(`${rule}: ${msg}`);
    this.rule = rule;
  }
}

export const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));

/** Deterministic bytes. */
export function pattern(n: number, salt: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 13 + salt * 101 + (i >>> 7)) & 0xff;
  return out;
}

/** How the fake application answers an indication: consume all, none, or a prefix. */
export type IndicatePolicy = (bytes: number) => number;

interface Posted {
  readonly nbl: NetBufferList;
  readonly buf: Uint8Array;
}

/** A fake host: the NDIS side of the chimney as the target sees it. */
export class FakeHost implements OffloadHost {
  readonly ledger: BufferLedger;
  target: SoftwareTarget | undefined;
  /** Every upcall, in order, as a short line. */
  readonly log: string[] = [];
  /** The application's received byte stream (completions and consumed indications, in order). */
  readonly stream: number[] = [];
  /** Root trees completed, by operation. */
  readonly completed: { op: string; root: OffloadBlockList }[] = [];
  /** Every TCP event except TcpIndicateSendBacklogChange (those go to `backlogEvents`). */
  readonly events: TcpOffloadEvent[] = [];
  /** EV-4: each TcpIndicateSendBacklogChange, with its handle and the target's time. */
  readonly backlogEvents: { readonly handle: NdisOffloadHandle; readonly sendBacklog: number }[] = [];
  /** The NdisOffloadHandle of each event, in order (CTX-1). */
  readonly eventHandles: NdisOffloadHandle[] = [];
  /** The NdisOffloadHandle of each receive indication, in order (CTX-5). */
  readonly indicateHandles: NdisOffloadHandle[] = [];
  /** The status passed into each receive indication, in order (RI-2). */
  readonly indicateStatuses: string[] = [];
  /** The block of each neighbor reachability query, in order. */
  readonly queryBlocks: OffloadBlockList[] = [];
  readonly upFrames: Uint8Array[] = [];
  readonly statuses: OffloadStatusIndication[] = [];
  readonly sendCompleted: NetBufferList[] = [];
  readonly recvCompleted: NetBufferList[] = [];
  readonly discCompleted: NetBufferList[] = [];
  readonly fwdCompleted: NetBufferList[] = [];
  /** Indicated NBLs the host holds (returned by `returnIndicated`). */
  readonly held: NetBufferList[] = [];
  /** The BufferedData bytes copied out of terminate completions (TM-20). */
  readonly uploadedBuffered: number[] = [];
  /**
   * TM-11: for each terminate completion, the TCP segments the target had already queued for
   * the wire (not yet taken by `pollTransmit`) when the completion arrived. Segments taken
   * before are in the peer's `seen`.
   */
  readonly queuedAtTerminate: TcpRepr[][] = [];
  /**
   * TM-21 / TM-22: when set, the BufferedData NBLs of a terminate stay with the host after the
   * completion (copied, not yet returned) until `returnBuffered`; otherwise they go back inside
   * the completion call.
   */
  keepBuffered = false;
  /** BufferedData NBLs the host keeps (with `keepBuffered`). */
  readonly heldBuffered: NetBufferList[] = [];
  indicatePolicy: IndicatePolicy = (n) => n;
  hrd = 0;
  reachabilityQueries = 0;
  #posted: Posted[] = [];
  #depth = 0;
  #refusedSincePost = false;
  #initiating = new Set<OffloadBlockList>();
  #activeHandles = new Set<NdisOffloadHandle>();
  /** When set, every received upcall is also checked against these calls' ordering. */
  autoReturn = true;
  /**
   * When set, indications are answered later (`answerIndications`), with NDIS_STATUS_PENDING
   * now, as a host on another thread answers (the worker target's proxy).
   */
  answerLater = false;
  #unanswered: { readonly nbl: NetBufferList; readonly res: IndicationAnswer }[] = [];

  constructor(ledger: BufferLedger) {
    this.ledger = ledger;
  }

  // --- calls the host makes (with the ledger operations the contract assigns to the caller)

  initiate(root: OffloadBlockList): void {
    for (const b of treeBlocks(root)) {
      if (b.netBufferListChain !== null)
        this.ledger.transfer(b.netBufferListChain, "host", "target", "MiniportInitiateOffload");
    }
    this.#initiating.add(root);
    let lent: NetBufferList | null = null;
    for (const b of treeBlocks(root))
      if (b.layer === "tcp" && b.delegatedState !== undefined) lent ??= b.delegatedState.bufferedData;
    const call = (): void => this.#t().initiateOffload(root);
    // BufferedData is lent for the duration of the call (IO-19: the target copies it).
    if (lent === null) call();
    else this.ledger.lend(lent, "host", "target", "MiniportInitiateOffload", call);
  }

  /** Posts one receive request of `size` bytes; returns its buffer (filled by the target). */
  post(
    ctx: MiniportOffloadContext,
    size: number,
    opts: { noPush?: boolean; prefilled?: number; mdlSizes?: readonly number[] } = {},
  ): Uint8Array {
    const buf = new Uint8Array(size);
    // One NB (RQ-2); `mdlSizes` splits the buffer into an MDL chain (the rest is the last MDL).
    const pieces: Uint8Array[] = [];
    let off = 0;
    for (const n of opts.mdlSizes ?? []) {
      pieces.push(buf.subarray(off, off + n));
      off += n;
    }
    pieces.push(buf.subarray(off));
    const nbl = this.ledger.alloc("host", [netBuffer(mdlChain(pieces))], "post");
    nbl.receiveNoPush = opts.noPush ?? false;
    nbl.receiveBytesTransferred = opts.prefilled ?? 0;
    this.#posted.push({ nbl, buf });
    this.#refusedSincePost = false;
    this.ledger.transfer(nbl, "host", "target", "MiniportTcpOffloadReceive");
    this.log.push(`post ${size}${opts.noPush === true ? " nopush" : ""}`);
    this.#t().tcpOffloadReceive(ctx, nbl);
    return buf;
  }

  /** Sends `chunks` as one NBL each, in one call. */
  send(ctx: MiniportOffloadContext, ...chunks: Uint8Array[]): NetBufferList[] {
    const nbls = chunks.map((c) => this.ledger.alloc("host", [netBuffer(mdlChain([c]))], "send"));
    for (let i = 0; i < nbls.length; i++) (nbls[i] as NetBufferList).next = nbls[i + 1] ?? null;
    const head = nbls[0] as NetBufferList;
    this.ledger.transfer(head, "host", "target", "MiniportTcpOffloadSend");
    this.#t().tcpOffloadSend(ctx, head);
    return nbls;
  }

  disconnect(
    ctx: MiniportOffloadContext,
    flags: "graceful" | "abortive",
    data: Uint8Array = new Uint8Array(0),
  ): NetBufferList {
    const nbl = this.ledger.alloc("host", [netBuffer(mdlChain([data]))], "disconnect");
    this.ledger.transfer(nbl, "host", "target", "MiniportTcpOffloadDisconnect");
    this.#t().tcpOffloadDisconnect(ctx, nbl, flags);
    return nbl;
  }

  forward(ctx: MiniportOffloadContext, segment: Uint8Array): NetBufferList {
    const nbl = this.ledger.alloc("host", [netBuffer(mdlChain([segment]))], "forward");
    this.ledger.transfer(nbl, "host", "target", "MiniportTcpOffloadForward");
    this.#t().tcpOffloadForward(ctx, nbl);
    return nbl;
  }

  /** Gives every held indication NBL back (MiniportTcpOffloadReceiveReturn). */
  returnIndicated(): void {
    const nbls = this.held.splice(0);
    for (let i = 0; i < nbls.length; i++) (nbls[i] as NetBufferList).next = nbls[i + 1] ?? null;
    const head = nbls[0];
    if (head === undefined) return;
    this.ledger.transfer(head, "host", "target", "MiniportTcpOffloadReceiveReturn");
    this.#t().tcpOffloadReceiveReturn(head);
  }

  /** Gives every kept BufferedData NBL back (MiniportTcpOffloadReceiveReturn, TM-20). */
  returnBuffered(): void {
    for (const bd of this.heldBuffered.splice(0)) {
      this.ledger.transfer(bd, "host", "target", "MiniportTcpOffloadReceiveReturn");
      this.#t().tcpOffloadReceiveReturn(bd);
    }
  }

  /** Frees every completed host NBL (the host's own buffers). */
  freeCompleted(): void {
    for (const list of [this.sendCompleted, this.recvCompleted, this.discCompleted, this.fwdCompleted]) {
      for (const n of list.splice(0)) {
        n.next = null;
        this.ledger.free(n, "host");
      }
    }
  }

  /** Outstanding posted requests (posted, not completed). */
  get outstandingPosts(): number {
    return this.#posted.length;
  }

  // --- OffloadHost

  initiateOffloadComplete(root: OffloadBlockList): void {
    this.#stateComplete("initiate", root);
    this.#initiating.delete(root);
    for (const b of treeBlocks(root)) {
      if (b.layer !== "tcp") continue;
      if (b.status === "NDIS_STATUS_SUCCESS") {
        if (b.ndisOffloadHandle !== undefined) this.#activeHandles.add(b.ndisOffloadHandle);
        // IO-21: the host frees its BufferedData copy.
        const bd = b.delegatedState?.bufferedData;
        if (bd != null) this.ledger.free(bd, "host");
      } else {
        const chain = b.netBufferListChain;
        if (chain !== null) {
          // IO-10: the send data is the host's again, its status untouched.
          for (const n of nblArray(chain)) this.ledger.check(n, "host", "NdisMInitiateOffloadComplete");
        }
      }
    }
  }

  terminateOffloadComplete(root: OffloadBlockList): void {
    this.#stateComplete("terminate", root);
    const queued: TcpRepr[] = [];
    for (const f of this.#t().queuedFrames) {
      const tr = decodeFrame(f).transport;
      if (tr?.kind === "tcp") queued.push(tr.tcp);
    }
    this.queuedAtTerminate.push(queued);
    for (const b of treeBlocks(root)) {
      if (b.layer !== "tcp" || b.status !== "NDIS_STATUS_SUCCESS") continue;
      if (b.ndisOffloadHandle !== undefined) this.#activeHandles.delete(b.ndisOffloadHandle);
      const d = b.delegatedState;
      if (d === undefined) throw new RuleViolation("ST-5", "terminate returned no delegated state");
      const chain = b.netBufferListChain;
      if (chain !== null) {
        // TM-15: the chain starts at SendDataHead and is the host's.
        if (d.sendDataHead !== chain) throw new RuleViolation("TM-15", "NetBufferListChain != SendDataHead");
        this.ledger.check(chain, "host", "NdisMTerminateOffloadComplete");
      } else if (d.sendDataHead !== null) {
        throw new RuleViolation("TM-17", "SendDataHead without a NetBufferListChain");
      }
      const bd = d.bufferedData;
      if (bd !== null) {
        // TM-20: copy into the host's own buffer, then return the NBLs.
        const view = this.ledger.view(bd, "host", "NdisMTerminateOffloadComplete");
        let total = 0;
        for (const nb of view) total += nb.dataLength;
        const copy = new Uint8Array(total);
        copyOut(view, 0, copy, 0, total);
        for (const x of copy) this.uploadedBuffered.push(x);
        this.stream.push(...copy);
        if (this.keepBuffered) {
          this.heldBuffered.push(bd);
        } else {
          this.ledger.transfer(bd, "host", "target", "MiniportTcpOffloadReceiveReturn");
          this.#t().tcpOffloadReceiveReturn(bd);
        }
      }
    }
  }

  updateOffloadComplete(root: OffloadBlockList): void {
    this.#stateComplete("update", root);
  }

  invalidateOffloadComplete(root: OffloadBlockList): void {
    this.#stateComplete("invalidate", root);
  }

  queryOffloadComplete(root: OffloadBlockList): void {
    this.#stateComplete("query", root);
  }

  tcpOffloadSendComplete(nbl: NetBufferList): void {
    for (const n of nblArray(nbl)) {
      this.ledger.check(n, "host", "NdisTcpOffloadSendComplete");
      this.sendCompleted.push(n);
      this.log.push(`send-complete #${n.id} ${n.status} ${n.bytesTransferred}`);
    }
  }

  tcpOffloadReceiveComplete(nbl: NetBufferList): void {
    if (this.#depth > 0) throw new RuleViolation("C-8", "receive completion nested in another upcall");
    this.#depth++;
    try {
      for (const n of nblArray(nbl)) {
        const p = this.#posted[0];
        if (p === undefined || p.nbl !== n) {
          const twice = this.recvCompleted.includes(n);
          throw new RuleViolation(
            "RQ-3",
            twice ? `request #${n.id} completed twice` : `request #${n.id} completed out of FIFO order`,
          );
        }
        this.#posted.shift();
        this.ledger.check(n, "host", "NdisTcpOffloadReceiveComplete");
        for (let i = 0; i < n.bytesTransferred; i++) this.stream.push(p.buf[i] as number);
        this.recvCompleted.push(n);
        this.log.push(`recv-complete #${n.id} ${n.status} ${n.bytesTransferred}`);
      }
      this.onReceiveComplete?.();
    } finally {
      this.#depth--;
    }
  }

  /** A hook run inside each receive completion (to post re-entrantly, C-9). */
  onReceiveComplete: (() => void) | undefined;

  tcpOffloadReceiveIndicate(
    handle: NdisOffloadHandle,
    nbl: NetBufferList,
    status: "NDIS_STATUS_SUCCESS",
  ): ReceiveIndicateResult {
    if (this.#depth > 0) throw new RuleViolation("C-8", "indication nested in another upcall");
    this.indicateHandles.push(handle);
    this.indicateStatuses.push(status);
    if (!this.#activeHandles.has(handle))
      throw new RuleViolation("IO-6", "indication before the offload completed");
    if (nbl.next !== null) throw new RuleViolation("RI-1", "indication NBL is part of a list");
    if (status !== "NDIS_STATUS_SUCCESS")
      throw new RuleViolation("RI-2", `indication status ${String(status)}`);
    if (this.#refusedSincePost)
      throw new RuleViolation("RI-3", "refused data indicated again before a request was posted");
    this.#depth++;
    try {
      const view = this.ledger.view(nbl, "host", "NdisTcpOffloadReceiveHandler");
      let total = 0;
      for (const nb of view) total += nb.dataLength;
      const bytes = new Uint8Array(total);
      copyOut(view, 0, bytes, 0, total);
      const take = this.indicatePolicy(total);
      this.log.push(`indicate ${total} took ${take}`);
      for (let i = 0; i < take; i++) this.stream.push(bytes[i] as number);
      let res: IndicationAnswer;
      if (take === total) {
        this.held.push(nbl);
        res = { status: "NDIS_STATUS_SUCCESS", bytesConsumed: total };
      } else {
        this.#refusedSincePost = true;
        res =
          take === 0
            ? { status: "NDIS_STATUS_OFFLOAD_DATA_NOT_ACCEPTED", bytesConsumed: 0 }
            : { status: "NDIS_STATUS_OFFLOAD_DATA_PARTIALLY_ACCEPTED", bytesConsumed: take };
      }
      if (this.answerLater) {
        this.#unanswered.push({ nbl, res });
        return INDICATION_PENDING;
      }
      if (take < total) this.ledger.transfer(nbl, "host", "target", "NdisTcpOffloadReceiveHandler");
      return res;
    } finally {
      this.#depth--;
    }
  }

  tcpOffloadDisconnectComplete(nbl: NetBufferList): void {
    if (nbl.next !== null) throw new RuleViolation("DC-1", "disconnect completion carries more than one NBL");
    this.ledger.check(nbl, "host", "NdisTcpOffloadDisconnectComplete");
    this.discCompleted.push(nbl);
    this.log.push(`disconnect-complete ${nbl.status} ${nbl.bytesTransferred}`);
  }

  tcpOffloadForwardComplete(nbl: NetBufferList): void {
    for (const n of nblArray(nbl)) {
      this.ledger.check(n, "host", "NdisTcpOffloadForwardComplete");
      this.fwdCompleted.push(n);
      this.log.push(`forward-complete ${n.status}`);
    }
  }

  tcpOffloadEvent(handle: NdisOffloadHandle, event: TcpOffloadEvent): void {
    if (!this.#activeHandles.has(handle))
      throw new RuleViolation("IO-6", `event ${event.type} before the offload completed`);
    if (event.type === "TcpIndicateSendBacklogChange") {
      this.backlogEvents.push({ handle, sendBacklog: event.sendBacklog });
      return;
    }
    this.events.push(event);
    this.eventHandles.push(handle);
    this.log.push(`event ${event.type}${event.type === "TcpIndicateRetrieve" ? ` ${event.reason}` : ""}`);
  }

  neighborReachabilityQuery(blockList: OffloadBlockList): number {
    if (blockList.nextBlock !== null || blockList.dependentBlockList !== null) {
      throw new RuleViolation("NR-3", "reachability query with more than one block");
    }
    this.reachabilityQueries++;
    this.queryBlocks.push(blockList);
    this.log.push("reachability-query");
    return this.hrd;
  }

  indicateStatus(status: OffloadStatusIndication): void {
    this.statuses.push(status);
  }

  indicateReceive(frame: Uint8Array): void {
    this.upFrames.push(frame);
    this.log.push("indicate-receive");
  }

  #stateComplete(op: string, root: OffloadBlockList): void {
    for (const b of treeBlocks(root)) {
      if (b.status === undefined) throw new RuleViolation("BL-1", `${op}: a block has no status`);
    }
    this.completed.push({ op, root });
    this.log.push(`${op}-complete`);
  }

  /** Answers the indications in flight (`answerLater`), in order; returns how many. */
  answerIndications(now: Instant): number {
    const all = this.#unanswered;
    this.#unanswered = [];
    for (const { nbl, res } of all) {
      if (res.status !== "NDIS_STATUS_SUCCESS")
        this.ledger.transfer(nbl, "host", "target", "NdisTcpOffloadReceiveHandler");
      this.#t().indicationAnswered(now, nbl, res);
    }
    return all.length;
  }

  #t(): SoftwareTarget {
    if (this.target === undefined) throw new Error("no target attached");
    return this.target;
  }
}

// ---------------------------------------------------------------------------------------------
// The peer

/** The remote end: a real engine, reached through Ethernet frames. */
export class Peer {
  engine: TcpConnection;
  /** Frames the target sent to the peer (decoded), in order. */
  readonly seen: TcpRepr[] = [];
  readonly ipIdents: number[] = [];
  readonly dfBits: boolean[] = [];
  /** Bytes the peer's application read. */
  readonly read: number[] = [];
  /** When false, frames from the target are recorded but not delivered to the engine. */
  deliverIn = true;
  /** The peer's and the host's addresses (IPv4 by default). */
  readonly ip: IpAddr;
  readonly hostIp: IpAddr;

  constructor(engine: TcpConnection, peerIp: IpAddr = PEER_IP, hostIp: IpAddr = HOST_IP) {
    this.engine = engine;
    this.ip = peerIp;
    this.hostIp = hostIp;
  }

  frameOf(seg: TcpRepr): Uint8Array {
    return emitTcpPacket({
      ip: { src: this.ip, dst: this.hostIp },
      tcp: seg,
      ethernet: { src: PEER_MAC, dst: HOST_MAC },
    });
  }

  /** A raw segment from the peer, with the engine's current numbers as defaults. */
  raw(over: Partial<TcpRepr>): Uint8Array {
    const s = this.engine.status();
    return this.frameOf({
      srcPort: PEER_PORT,
      dstPort: HOST_PORT,
      seq: s.sndNxt,
      ack: s.rcvNxt,
      flags: TcpFlag.ACK,
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
    });
  }
}

/** A test world: ledger, fake host, target, peer and a clock. */
export interface World {
  readonly ledger: BufferLedger;
  readonly host: FakeHost;
  readonly target: SoftwareTarget;
  readonly peer: Peer;
  now: number;
  ctx: MiniportOffloadContext;
  /** The offload tree last used. */
  root: OffloadBlockList;
  tcpBlock: TcpBlock;
  readonly cfg: TcpConfig;
}

/** Moves frames both ways until quiet (or `rounds` passes). */
export function pump(w: World, rounds = 50): void {
  for (let i = 0; i < rounds; i++) {
    let moved = false;
    const now = at(w.now);
    w.target.process(now);
    for (let f = w.target.pollTransmit(now); f !== undefined; f = w.target.pollTransmit(now)) {
      moved = true;
      const pkt = decodeFrame(f);
      const tr = pkt.transport;
      if (tr?.kind !== "tcp") continue;
      w.peer.seen.push(tr.tcp);
      if (pkt.network?.kind === "ipv4") {
        w.peer.ipIdents.push(pkt.network.ipv4.ident);
        w.peer.dfBits.push(pkt.network.ipv4.dontFragment);
      }
      if (w.peer.deliverIn) w.peer.engine.handleSegment(now, tr.tcp);
    }
    for (let s = w.peer.engine.pollTransmit(now); s !== undefined; s = w.peer.engine.pollTransmit(now)) {
      moved = true;
      w.target.handleFrame(now, w.peer.frameOf(s));
    }
    for (let b = w.peer.engine.recv(); b !== undefined; b = w.peer.engine.recv()) w.peer.read.push(...b);
    if (!moved) return;
  }
}

/** Advances the clock by `ms`, firing due timers on both sides, then pumps. */
export function advance(w: World, ms: number, step = 10): void {
  const end = w.now + ms;
  while (w.now < end) {
    w.now = Math.min(end, w.now + step);
    const now = at(w.now);
    const t = w.target.pollTimeout();
    if (t !== undefined && t <= now) {
      w.target.handleTimeout(now);
      // A driver's wake-up runs the expired timers once; a deadline still due after it would
      // have the driver spin at 0 ms for ever.
      const again = w.target.pollTimeout();
      assert.ok(
        again === undefined || again > now,
        `a target deadline (${again}) still due at ${now} after handleTimeout`,
      );
    }
    const p = w.peer.engine.pollTimeout();
    if (p !== undefined && p <= now) w.peer.engine.handleTimeout(now);
    pump(w);
  }
}

/** Options of `offloaded`. */
export interface OffloadedOpts {
  /** Bytes the peer sent before the offload that the host's app has not read (BufferedData). */
  readonly buffered?: number;
  /** Bytes the host sent before the offload that are not yet acknowledged (send data). */
  readonly unacked?: number;
  readonly target?: Partial<SoftwareTargetOptions>;
  readonly rcvIndicationSize?: number;
  /** Process the initiate at once (default true). */
  readonly complete?: boolean;
  /** Close the host side before offloading (FIN-WAIT-1). */
  readonly hostClosed?: boolean;
  /** Call `initiateOffload` with the tree (default true). */
  readonly initiate?: boolean;
  /** The host's ISS (default 0xffffff00, near the 2^32 wrap) and timestamp offset (default 5). */
  readonly hostIss?: number;
  readonly hostTsOffset?: number;
  /** The peer's ISS (default 77000) and timestamp offset (default 900). */
  readonly peerIss?: number;
  readonly peerTsOffset?: number;
  /** The engine configuration of both ends before the offload (default: 40 ms delayed ACK). */
  readonly cfg?: TcpConfig;
  /** Changes the offload state (const, cached, delegated) before the tree is built. */
  readonly editState?: (s: TcpOffloadState) => TcpOffloadState;
  /** The neighbor's constant state (default: DlSourceAddress zero, VLAN 0). */
  readonly neighborConst?: NeighborBlock["constState"];
  /** IP version of the connection (default 4: 192.0.2.1 <-> .2; 6: 2001:db8::1 <-> ::2). */
  readonly family?: 4 | 6;
  /** Revocable loans in the ledger (`LedgerOptions.poisonLoans`; default: the environment's). */
  readonly poisonLoans?: boolean;
}

/**
 * A connection established by a real handshake between a host engine and the peer engine,
 * then offloaded to a fresh target through a neighbor -> path -> TCP tree.
 */
export function offloaded(opts: OffloadedOpts = {}): World {
  const cfg = opts.cfg ?? tcpConfig({ delayedAck: Duration.fromMillis(40), sendBufferSize: 1 << 22 });
  const ledger = new BufferLedger({ poisonLoans: opts.poisonLoans });
  const host = new FakeHost(ledger);
  const h = TcpConnection.connect(
    cfg,
    {
      localPort: HOST_PORT,
      remotePort: PEER_PORT,
      iss: Seq.of(opts.hostIss ?? 0xffff_ff00),
      tsOffset: opts.hostTsOffset ?? 5,
    },
    at(0),
  );
  const syn = h.pollTransmit(at(0));
  if (syn === undefined) throw new Error("no SYN");
  const p = TcpConnection.accept(
    cfg,
    {
      localPort: PEER_PORT,
      remotePort: HOST_PORT,
      iss: Seq.of(opts.peerIss ?? 77_000),
      tsOffset: opts.peerTsOffset ?? 900,
    },
    syn,
    at(0),
  );
  const v6 = opts.family === 6;
  const peer = v6 ? new Peer(p, PEER_IP6, HOST_IP6) : new Peer(p);
  // Handshake and pre-offload traffic directly between the engines.
  let t = 1;
  const shuttle = (drop = false): void => {
    for (let i = 0; i < 20; i++) {
      let moved = false;
      for (let s = h.pollTransmit(at(t)); s !== undefined; s = h.pollTransmit(at(t))) {
        moved = true;
        if (!drop) p.handleSegment(at(t), s);
      }
      for (let s = p.pollTransmit(at(t)); s !== undefined; s = p.pollTransmit(at(t))) {
        moved = true;
        h.handleSegment(at(t), s);
      }
      if (!moved) break;
    }
  };
  shuttle();
  if ((opts.buffered ?? 0) > 0) {
    p.send(pattern(opts.buffered ?? 0, 1));
    shuttle();
    // Delayed ACKs (and the Nagle-held tail they release) go out: nothing owed at offload.
    for (t = 45; t <= 95; t += 50) {
      h.handleTimeout(at(t));
      p.handleTimeout(at(t));
      shuttle();
    }
  }
  if ((opts.unacked ?? 0) > 0) {
    h.send(pattern(opts.unacked ?? 0, 2));
    shuttle(true); // sent, never reached the peer: unacknowledged at offload
  }
  if (opts.hostClosed === true) {
    h.close();
    shuttle(true);
  }
  while (p.pollEvent() !== undefined);
  const now = 100;
  const snap = h.exportState(at(now));
  const exported: TcpOffloadState = offloadStateFromSnapshot(snap, {
    ledger,
    owner: "host",
    op: "InitiateOffload",
    rcvIndicationSize: opts.rcvIndicationSize ?? 0,
  });
  const state = opts.editState?.(exported) ?? exported;
  const target = new SoftwareTarget({
    host,
    ledger,
    mac: HOST_MAC,
    tcpConfig: tcpConfig({ delayedAck: Duration.fromMillis(40), sendBufferSize: 2 ** 30 }),
    ...opts.target,
  });
  host.target = target;
  const { root, tcp } = v6
    ? buildTree(state, opts.neighborConst, HOST_IP6, PEER_IP6)
    : buildTree(state, opts.neighborConst);
  const w: World = {
    ledger,
    host,
    target,
    peer,
    now,
    ctx: 0 as MiniportOffloadContext,
    root,
    tcpBlock: tcp,
    cfg,
  };
  if (opts.initiate === false) return w;
  host.initiate(root);
  if (opts.complete ?? true) {
    target.process(at(now));
    const c = tcp.miniportOffloadContext?.context;
    if (c == null) throw new Error(`offload failed: ${String(tcp.status)}`);
    w.ctx = c;
  }
  return w;
}

/** Neighbor -> path -> TCP tree of new-offload blocks for `state`. */
export function buildTree(
  state: TcpOffloadState,
  neighborConst: NeighborBlock["constState"] = { dlSourceAddress: new Uint8Array(6), vlanId: 0 },
  hostIp: IpAddr = HOST_IP,
  peerIp: IpAddr = PEER_IP,
): { root: NeighborBlock; path: PathBlock; tcp: TcpBlock } {
  const tcp = newBlock<TcpBlock>({
    layer: "tcp",
    stateType: "TcpOffloadState",
    miniportOffloadContext: { context: null },
    ndisOffloadHandle: TCP_HANDLE,
    constState: state.constState,
    cachedState: state.cachedState,
    delegatedState: state.delegatedState,
    netBufferListChain: state.delegatedState.sendDataHead,
  });
  const path = newBlock<PathBlock>({
    layer: "path",
    stateType: hostIp.length === 4 ? "Ip4OffloadState" : "Ip6OffloadState",
    miniportOffloadContext: { context: null },
    ndisOffloadHandle: undefined,
    constState: { sourceAddress: hostIp, destinationAddress: peerIp },
    cachedState: { pathMtu: 1500 },
    delegatedState: { headerOnly: true },
    dependentBlockList: tcp,
  });
  const root = newBlock<NeighborBlock>({
    layer: "neighbor",
    stateType: "NeighborOffloadState",
    miniportOffloadContext: { context: null },
    ndisOffloadHandle: NEIGHBOR_HANDLE,
    constState: neighborConst,
    cachedState: { dlDestinationAddress: PEER_MAC, hostReachabilityDelta: Duration.ZERO },
    delegatedState: { nicReachabilityDelta: Duration.ZERO },
    dependentBlockList: path,
  });
  return { root, path, tcp };
}

/** A referencing block (for terminate / query / update / invalidate) of a TCP connection. */
export function tcpRef(ctx: MiniportOffloadContext, over: Partial<TcpBlock> = {}): TcpBlock {
  return newBlock<TcpBlock>({
    layer: "tcp",
    stateType: "TcpOffloadDelegatedState",
    miniportOffloadContext: { context: ctx },
    ndisOffloadHandle: TCP_HANDLE,
    constState: undefined,
    cachedState: undefined,
    delegatedState: undefined,
    ...over,
  });
}

/** Terminates the connection and runs the operation; returns the TCP block. */
export function terminate(w: World): TcpBlock {
  const b = tcpRef(w.ctx);
  w.target.terminateOffload(b);
  w.target.process(at(w.now));
  return b;
}

/** Frees NBLs the host got back (e.g. its own send data from a terminate). */
export function freeChain(w: World, chain: NetBufferList | null): void {
  if (chain !== null) w.ledger.free(chain, "host");
}

/** Terminates, frees the send data that came back (the host's own NBLs) and returns the block. */
export function upload(w: World): TcpBlock {
  const b = terminate(w);
  freeChain(w, b.netBufferListChain);
  return b;
}

/**
 * Registers (once, at a test module's top level) an `afterEach` that settles every world the
 * returned `track` saw during the test: the host returns what it was indicated and frees what
 * was completed, then the ledger must be quiescent (no leak).
 */
export function trackWorlds(): (w: World) => World {
  let worlds: World[] = [];
  afterEach(() => {
    const ws = worlds;
    worlds = [];
    for (const w of ws) {
      w.host.returnIndicated();
      w.host.returnBuffered();
      w.host.freeCompleted();
      w.ledger.assertQuiescent();
    }
  });
  return (w) => {
    worlds.push(w);
    return w;
  };
}

/** Sequence helper. */
export function seqAdd(s: SeqNum, n: number): SeqNum {
  return Seq.add(s, n);
}
