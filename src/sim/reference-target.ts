/**
 * A small software offload target for the simulator: the NIC side of the chimney, good enough to
 * run the host's offload manager end to end (the full target is src/target). It runs each
 * offloaded connection on the shared TCP engine, imported from the delegated state.
 *
 * Theory of operation
 * - Sans-I/O, like the host: frames from the wire enter `handleFrame(now, frame)`; a frame that
 *   belongs to an offloaded connection (not being terminated) goes to its engine, every other
 *   frame goes up with `indicateReceive` (TM-23, TM-25). The host's own frames enter through
 *   `sendFrame`. Everything leaves through `pollTransmit(now)`; timers through
 *   `pollTimeout`/`handleTimeout`.
 * - Calls from the host only record their work (OP-1, SD-1, RQ-1, DC-1, FW-3) except that an
 *   initiate copies BufferedData during the call (IO-19, the host lends it). `process(now)` does
 *   the work and makes every completion and indication, so no upcall nests inside a host call.
 * - Send: NBLs feed the engine as views (IO-16); ACK progress advances their NBs and completes
 *   them, in order, with SUCCESS (spec 13.5). Receive: the delivery algorithm of spec 14.6 in
 *   simplified form: posted requests first (FIFO, push mode completes when the data runs out,
 *   non-push when full), then indications of the engine's first readable chunk; refused data
 *   stays in the engine until the host posts (RI-3). A zero-byte post completes at once.
 * - Terminate: posted requests complete with UPLOAD_IN_PROGRESS (with the bytes placed),
 *   unacknowledged send NBLs go back in NetBufferListChain in order (TM-14, TM-15), undelivered
 *   receive data goes up as BufferedData in target-owned NBLs (TM-19, TM-21).
 */
import {
  type MiniportOffloadContext,
  type NdisOffloadHandle,
  type OffloadBlockList,
  treeBlocks,
  visitTree,
} from "../chimney/block-list.js";
import type { DisconnectFlags, OffloadHost, OffloadTarget } from "../chimney/contract.js";
import { BACKLOG_UNSUPPORTED, type TcpCachedState, type TcpConstState } from "../chimney/state.js";
import { delegatedStateFromEngine, snapshotFromOffloadState } from "../chimney/tcp-state.js";
import { advance, chainLength, fromArrays, linkNbls, nblArray, segments, toBytes } from "../nbl/chain.js";
import type { BufferLedger } from "../nbl/ledger.js";
import type { NetBufferList } from "../nbl/nbl.js";
import type { TcpConfig } from "../tcp/config.js";
import { TcpConnection } from "../tcp/connection.js";
import { Instant } from "../time/instant.js";
import { assert } from "../util/errors.js";
import { ChecksumCapabilities } from "../wire/checksum.js";
import type { MacAddr } from "../wire/ethernet.js";
import { type IpAddr, ipKey } from "../wire/ip-addr.js";
import { decodeFrame, emitTcpPacket } from "../wire/packet.js";
import { parseTcp, TcpView } from "../wire/tcp.js";
import type { TcpRepr } from "../wire/tcp-repr.js";

/** A target that is also the NIC: what the simulator glue drives. */
export interface NicTarget extends OffloadTarget {
  /** A frame from the wire. */
  handleFrame(now: Instant, frame: Uint8Array): void;
  /** A frame the host stack sends (NdisSendNetBufferLists on the non-offload path). */
  sendFrame(frame: Uint8Array): void;
  /** Runs recorded work: completions, indications, events. */
  process(now: Instant): void;
  /** The next frame for the wire. */
  pollTransmit(now: Instant): Uint8Array | undefined;
  pollTimeout(): Instant | undefined;
  handleTimeout(now: Instant): void;
  /** Offloaded connections. */
  readonly connectionCount: number;
  /** When the driver should call in next (`now` when `process` has work); else `pollTimeout`. */
  pollAt?(now: Instant): Instant | undefined;
}

/** Options of the reference target. */
export interface ReferenceTargetOptions {
  readonly ledger: BufferLedger;
  readonly tcp: TcpConfig;
  /** The interface MAC (used when a neighbor's DlSourceAddress is zero, NB-1). */
  readonly mac: MacAddr;
  readonly checksum?: ChecksumCapabilities | undefined;
  /** Decides whether a new TCP object is accepted (tests inject failures); default all. */
  readonly acceptTcp?: ((localPort: number, remotePort: number) => boolean) | undefined;
  /** How long state operations take before they complete (default 0: at the next `process`). */
  readonly operationDelayUs?: number | undefined;
}

interface NeighborCtx {
  mac: MacAddr;
  invalid: boolean;
  readonly handle: NdisOffloadHandle | undefined;
}

interface PathCtx {
  readonly src: IpAddr;
  readonly dst: IpAddr;
  pmtu: number;
  neighbor: NeighborCtx;
}

interface SendItem {
  readonly nbl: NetBufferList;
  /** Bytes not yet acknowledged. */
  left: number;
  acked: number;
}

interface Posted {
  readonly nbl: NetBufferList;
  /** Bytes placed by the target so far. */
  filled: number;
}

interface ConnCtx {
  readonly key: string;
  readonly path: PathCtx;
  readonly handle: NdisOffloadHandle;
  readonly constState: TcpConstState;
  cached: TcpCachedState;
  engine: TcpConnection;
  readonly sends: SendItem[];
  /** Send bytes the engine has not taken yet (its buffer was full). */
  readonly overflow: Uint8Array[];
  readonly posted: Posted[];
  refused: boolean;
  peerFin: boolean;
  disconnectIndicated: boolean;
  disconnect: { readonly nbl: NetBufferList; readonly flags: DisconnectFlags } | undefined;
  aborted: boolean;
  retrieveAsked: boolean;
  terminating: boolean;
}

type Work = (
  | {
      readonly kind: "initiate" | "terminate" | "update" | "invalidate" | "query";
      readonly root: OffloadBlockList;
    }
  | { readonly kind: "forward"; readonly ctx: MiniportOffloadContext; readonly nbl: NetBufferList }
) & { readyAt: Instant };

/** The simulator's reference offload target. */
export class ReferenceTarget implements NicTarget {
  readonly #host: OffloadHost;
  readonly #ledger: BufferLedger;
  readonly #cfg: TcpConfig;
  readonly #mac: MacAddr;
  readonly #caps: ChecksumCapabilities;
  readonly #accept: (l: number, r: number) => boolean;
  readonly #delay: number;
  readonly #neighbors = new Map<number, NeighborCtx>();
  readonly #paths = new Map<number, PathCtx>();
  readonly #conns = new Map<number, ConnCtx>();
  readonly #byKey = new Map<string, ConnCtx>();
  /** BufferedData copied during initiate calls, by the TCP block it came with. */
  readonly #bufferedCopies = new Map<OffloadBlockList, Uint8Array[]>();
  #work: Work[] = [];
  readonly #out: Uint8Array[] = [];
  #nextCtx = 1;
  #now: Instant = Instant.ZERO;
  #processing = false;
  /** Counters for tests. */
  readonly stats = { framesToEngine: 0, framesUp: 0, indications: 0, completions: 0, terminates: 0 };

  constructor(host: OffloadHost, opts: ReferenceTargetOptions) {
    this.#host = host;
    this.#ledger = opts.ledger;
    this.#cfg = opts.tcp;
    this.#mac = opts.mac;
    this.#caps = opts.checksum ?? ChecksumCapabilities.ALL;
    this.#accept = opts.acceptTcp ?? (() => true);
    this.#delay = opts.operationDelayUs ?? 0;
  }

  #later(): Instant {
    return Instant.fromMicros(this.#now + this.#delay);
  }

  #push(w: Work): void {
    this.#work.push(w);
  }

  /** Offloaded connections. */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Undelivered receive bytes held for a connection (for tests: data the host has not taken). */
  heldBytes(localPort: number): number {
    for (const c of this.#conns.values()) if (c.constState.localPort === localPort) return c.engine.readable;
    return 0;
  }

  // -------------------------------------------------------------------------------------------
  // OffloadTarget: state operations record and return (OP-1)

  initiateOffload(root: OffloadBlockList): void {
    // IO-19: copy lent BufferedData before returning.
    for (const b of treeBlocks(root)) {
      if (b.layer === "tcp" && b.delegatedState?.bufferedData != null) {
        const chain = b.delegatedState.bufferedData;
        this.#bufferedCopies.set(b, [toBytes(this.#ledger.view(chain, "target", "MiniportInitiateOffload"))]);
      }
    }
    this.#push({ kind: "initiate", root, readyAt: this.#later() });
  }
  terminateOffload(root: OffloadBlockList): void {
    for (const b of treeBlocks(root)) {
      const c = b.layer === "tcp" ? this.#connOf(b) : undefined;
      if (c !== undefined) c.terminating = true; // TM-23: from now on segments go up
    }
    this.#push({ kind: "terminate", root, readyAt: this.#later() });
  }
  updateOffload(root: OffloadBlockList): void {
    this.#push({ kind: "update", root, readyAt: this.#later() });
  }
  invalidateOffload(root: OffloadBlockList): void {
    this.#push({ kind: "invalidate", root, readyAt: this.#later() });
  }
  queryOffload(root: OffloadBlockList): void {
    this.#push({ kind: "query", root, readyAt: this.#later() });
  }

  tcpOffloadSend(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const c = this.#conns.get(context);
    assert(c !== undefined, `send on unknown context ${context}`);
    const nbls = nblArray(nbl);
    for (const n of nbls) n.next = null; // view each NBL alone
    for (const n of nbls) {
      const view = this.#ledger.view(n, "target", "MiniportTcpOffloadSend");
      const len = chainLength(view);
      c.sends.push({ nbl: n, left: len, acked: 0 });
      for (const v of segments(view, 0, len)) c.overflow.push(v);
    }
    if (c.aborted) this.#completeSends(c, "NDIS_STATUS_REQUEST_ABORTED");
    return "NDIS_STATUS_PENDING";
  }

  tcpOffloadReceive(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    const c = this.#conns.get(context);
    assert(c !== undefined, `receive post on unknown context ${context}`);
    for (const n of nblArray(nbl)) {
      c.posted.push({ nbl: n, filled: 0 });
    }
    for (const n of nblArray(nbl)) n.next = null;
    return "NDIS_STATUS_PENDING";
  }

  tcpOffloadReceiveReturn(nbl: NetBufferList): "NDIS_STATUS_SUCCESS" {
    for (const n of nblArray(nbl)) {
      n.next = null;
      this.#ledger.free(n, "target", "MiniportTcpOffloadReceiveReturn");
    }
    return "NDIS_STATUS_SUCCESS";
  }

  tcpOffloadDisconnect(
    context: MiniportOffloadContext,
    nbl: NetBufferList,
    flags: DisconnectFlags,
  ): "NDIS_STATUS_PENDING" {
    const c = this.#conns.get(context);
    assert(c !== undefined, `disconnect on unknown context ${context}`);
    c.disconnect = { nbl, flags };
    if (flags === "abortive") {
      c.aborted = true;
      c.engine.abort(); // DC-4
      this.#completeSends(c, "NDIS_STATUS_REQUEST_ABORTED"); // DC-5
    }
    return "NDIS_STATUS_PENDING";
  }

  tcpOffloadForward(context: MiniportOffloadContext, nbl: NetBufferList): "NDIS_STATUS_PENDING" {
    this.#push({ kind: "forward", ctx: context, nbl, readyAt: this.#now });
    return "NDIS_STATUS_PENDING";
  }

  // -------------------------------------------------------------------------------------------
  // NIC side

  handleFrame(now: Instant, frame: Uint8Array): void {
    this.#now = now;
    const p = decodeFrame(frame, this.#caps);
    const t = p.transport;
    const net = p.network;
    if (
      p.error === undefined &&
      t?.kind === "tcp" &&
      net !== undefined &&
      (net.kind === "ipv4" || net.kind === "ipv6")
    ) {
      const ip = net.kind === "ipv4" ? net.ipv4 : net.ipv6;
      const c = this.#byKey.get(connKey(ip.dst, t.tcp.dstPort, ip.src, t.tcp.srcPort));
      if (c !== undefined && !c.terminating) {
        this.stats.framesToEngine++;
        c.engine.handleSegment(now, t.tcp);
        this.process(now);
        return;
      }
    }
    this.stats.framesUp++;
    this.#host.indicateReceive(frame);
  }

  sendFrame(frame: Uint8Array): void {
    this.#out.push(frame);
  }

  pollTransmit(now: Instant): Uint8Array | undefined {
    this.#now = now;
    if (this.#out.length === 0) this.process(now);
    return this.#out.shift();
  }

  pollTimeout(): Instant | undefined {
    let t: Instant | undefined = this.#work[0]?.readyAt;
    for (const c of this.#conns.values()) if (!c.terminating) t = Instant.earliest(t, c.engine.pollTimeout());
    return t;
  }

  handleTimeout(now: Instant): void {
    this.#now = now;
    for (const c of this.#conns.values()) {
      if (c.terminating) continue;
      const d = c.engine.pollTimeout();
      if (d !== undefined && d <= now) c.engine.handleTimeout(now);
    }
    this.process(now);
  }

  process(now: Instant): void {
    this.#now = now;
    if (this.#processing) return;
    this.#processing = true;
    try {
      for (let round = 0; round < 100; round++) {
        // Work runs in order; an operation not yet due holds back everything after it.
        const due = this.#work.findIndex((w) => w.readyAt > now);
        const work = due < 0 ? this.#work : this.#work.slice(0, due);
        this.#work = due < 0 ? [] : this.#work.slice(due);
        for (const w of work) this.#do(w);
        for (const c of [...this.#conns.values()]) this.#step(c);
        if (this.#work.length === 0 || this.#work.every((w) => w.readyAt > now)) break;
      }
    } finally {
      this.#processing = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Work

  #do(w: Work): void {
    switch (w.kind) {
      case "initiate":
        this.#initiate(w.root);
        return;
      case "terminate":
        this.#terminate(w.root);
        return;
      case "update":
        this.#update(w.root);
        return;
      case "invalidate":
        this.#invalidate(w.root);
        return;
      case "query":
        this.#query(w.root);
        return;
      case "forward": {
        const c = this.#conns.get(w.ctx);
        for (const n of nblArray(w.nbl)) {
          if (c === undefined || c.terminating) n.status = "NDIS_STATUS_UPLOAD_IN_PROGRESS";
          else if (c.aborted) n.status = "NDIS_STATUS_REQUEST_ABORTED";
          else {
            const bytes = toBytes(this.#ledger.view(n, "target", "MiniportTcpOffloadForward"));
            const v = TcpView.checked(bytes);
            const seg = v.ok ? parseTcp(v.value, { src: c.path.dst, dst: c.path.src }) : undefined;
            if (seg?.ok === true) c.engine.handleSegment(this.#now, seg.value);
            n.status = "NDIS_STATUS_SUCCESS";
          }
        }
        this.#ledger.return(w.nbl, "target", "NdisTcpOffloadForwardComplete");
        this.#host.tcpOffloadForwardComplete(w.nbl);
        return;
      }
    }
  }

  #initiate(root: OffloadBlockList): void {
    visitTree(
      root,
      (b) => {
        const slot = b.miniportOffloadContext;
        if (slot === null) {
          b.status = "NDIS_STATUS_SUCCESS"; // placeholder (TR-4)
          return true;
        }
        if (slot.context !== null) {
          b.status = "NDIS_STATUS_SUCCESS"; // linker
          return true;
        }
        const ctx = this.#nextCtx++ as MiniportOffloadContext;
        if (b.layer === "neighbor") {
          const cs = b.cachedState;
          if (cs === undefined) return fail(b);
          this.#neighbors.set(ctx, {
            mac: cs.dlDestinationAddress,
            invalid: false,
            handle: b.ndisOffloadHandle,
          });
        } else if (b.layer === "path") {
          const parent = this.#parentNeighbor(root, b);
          const k = b.constState;
          if (k === undefined || b.cachedState === undefined || parent === undefined) return fail(b);
          this.#paths.set(ctx, {
            src: k.sourceAddress,
            dst: k.destinationAddress,
            pmtu: b.cachedState.pathMtu,
            neighbor: parent,
          });
        } else {
          const path = this.#parentPath(root, b);
          const k = b.constState;
          const ca = b.cachedState;
          const d = b.delegatedState;
          const h = b.ndisOffloadHandle;
          if (path === undefined || k === undefined || ca === undefined || d === undefined || h === undefined)
            return fail(b);
          if (!this.#accept(k.localPort, k.remotePort)) return fail(b);
          const sends: SendItem[] = [];
          const sendData: Uint8Array[] = [];
          const initNbls = nblArray(b.netBufferListChain);
          for (const n of initNbls) n.next = null; // view each NBL alone
          for (const n of initNbls) {
            const view = this.#ledger.view(n, "target", "MiniportInitiateOffload");
            const len = chainLength(view);
            sends.push({ nbl: n, left: len, acked: 0 });
            for (const s of segments(view, 0, len)) sendData.push(s);
          }
          const snap = snapshotFromOffloadState(
            { constState: k, cachedState: ca, delegatedState: d },
            sendData,
            this.#bufferedCopies.get(b) ?? [],
            { cfg: this.#cfg, pathMtu: path.pmtu, ipVersion: path.dst.length === 4 ? 4 : 6 },
          );
          this.#bufferedCopies.delete(b);
          const engine = TcpConnection.importState(snap, this.#now, this.#cfg);
          const c: ConnCtx = {
            key: connKey(path.src, k.localPort, path.dst, k.remotePort),
            path,
            handle: h,
            constState: k,
            cached: ca,
            engine,
            sends,
            overflow: [],
            posted: [],
            refused: false,
            peerFin:
              d.state === "TcpConnectionCloseWait" ||
              d.state === "TcpConnectionLastAck" ||
              d.state === "TcpConnectionClosing",
            // A FIN received before the offload was the host's to report.
            disconnectIndicated:
              d.state === "TcpConnectionCloseWait" ||
              d.state === "TcpConnectionLastAck" ||
              d.state === "TcpConnectionClosing",
            disconnect: undefined,
            aborted: false,
            retrieveAsked: false,
            terminating: false,
          };
          this.#conns.set(ctx, c);
          this.#byKey.set(c.key, c);
        }
        slot.context = ctx; // CTX-3
        b.status = "NDIS_STATUS_SUCCESS";
        return true;
      },
      (b) => {
        b.status = "NDIS_STATUS_FAILURE";
      },
      true,
    );
    // A parent whose dependents failed reports partial success (spec 7.4).
    for (const b of treeBlocks(root)) {
      if (b.status !== "NDIS_STATUS_SUCCESS" || b.dependentBlockList === null) continue;
      for (let d: OffloadBlockList | null = b.dependentBlockList; d !== null; d = d.nextBlock) {
        if (d.status !== "NDIS_STATUS_SUCCESS" && d.status !== "NDIS_STATUS_OFFLOAD_PARTIAL_SUCCESS") {
          b.status = "NDIS_STATUS_OFFLOAD_PARTIAL_SUCCESS";
        }
      }
    }
    // Failed TCP blocks: the send data is the host's again, untouched (IO-10).
    for (const b of treeBlocks(root)) {
      if (b.layer === "tcp" && b.status !== "NDIS_STATUS_SUCCESS" && b.netBufferListChain !== null) {
        this.#ledger.return(
          linkNbls(nblArray(b.netBufferListChain)) as NetBufferList,
          "target",
          "MiniportInitiateOffload failed",
        );
      }
      if (b.layer === "tcp") this.#bufferedCopies.delete(b);
    }
    this.#host.initiateOffloadComplete(root);
  }

  #terminate(root: OffloadBlockList): void {
    this.stats.terminates++;
    for (const b of treeBlocks(root)) {
      const slot = b.miniportOffloadContext;
      if (slot === null || slot.context === null) {
        b.status = "NDIS_STATUS_SUCCESS";
        continue;
      }
      const ctx = slot.context;
      if (b.layer === "neighbor") {
        this.#neighbors.delete(ctx);
        b.delegatedState = { nicReachabilityDelta: 0 as never };
      } else if (b.layer === "path") {
        this.#paths.delete(ctx);
        b.delegatedState = { headerOnly: true };
      } else {
        const c = this.#conns.get(ctx);
        if (c === undefined) {
          b.status = "NDIS_STATUS_FAILURE";
          continue;
        }
        this.#uploadTcp(c, b);
        this.#conns.delete(ctx);
        this.#byKey.delete(c.key);
      }
      b.status = "NDIS_STATUS_SUCCESS";
    }
    this.#host.terminateOffloadComplete(root);
  }

  #uploadTcp(c: ConnCtx, b: OffloadBlockList): void {
    assert(b.layer === "tcp", "a TCP block");
    const now = this.#now;
    this.#drainEngine(c); // TM-11: owed segments out, events in
    // Posted receives complete with UPLOAD_IN_PROGRESS and the bytes placed (spec 11.5).
    this.#completePosted(c, c.posted.length, "NDIS_STATUS_UPLOAD_IN_PROGRESS");
    if (c.disconnect !== undefined) {
      const nbl = c.disconnect.nbl;
      c.disconnect = undefined;
      nbl.status = "NDIS_STATUS_UPLOAD_IN_PROGRESS";
      this.#ledger.return(nbl, "target", "NdisTcpOffloadDisconnectComplete");
      this.#host.tcpOffloadDisconnectComplete(nbl);
    }
    const state = c.engine.state;
    const exportable =
      state !== "CLOSED" && state !== "LISTEN" && state !== "SYN-SENT" && state !== "SYN-RECEIVED";
    // Unacknowledged send NBLs go back in order (TM-14..TM-16).
    const back = c.sends.splice(0).map((s) => s.nbl);
    const chain = linkNbls(back);
    if (chain !== null) this.#ledger.return(chain, "target", "MiniportTerminateOffload");
    b.netBufferListChain = chain; // BL-2: null when nothing goes back
    if (!exportable) {
      b.delegatedState = {
        ...emptyDelegated(),
        sendDataHead: chain,
        sendDataTail: back[back.length - 1] ?? null,
      };
      return;
    }
    const snap = c.engine.exportState(now);
    const buffered = snap.delegated.bufferedData;
    let bufChain: NetBufferList | null = null;
    if (buffered.length > 0) {
      // Target-owned NBLs over copies: they outlive the connection (TM-21).
      bufChain = linkNbls(
        buffered.map((x) => this.#ledger.alloc("target", fromArrays([x.slice()]), "BufferedData")),
      );
      this.#ledger.transfer(bufChain as NetBufferList, "target", "host", "MiniportTerminateOffload");
    }
    b.delegatedState = {
      ...delegatedStateFromEngine(snap.delegated, {
        sendDataHead: chain,
        sendDataTail: back[back.length - 1] ?? null,
        bufferedData: bufChain,
      }),
    };
  }

  #update(root: OffloadBlockList): void {
    for (const b of treeBlocks(root)) {
      const ctx = b.miniportOffloadContext?.context ?? null;
      b.status = "NDIS_STATUS_SUCCESS";
      if (ctx === null) continue;
      if (b.layer === "neighbor") {
        const n = this.#neighbors.get(ctx);
        if (n !== undefined && b.cachedState !== undefined) n.mac = b.cachedState.dlDestinationAddress;
      } else if (b.layer === "path") {
        const p = this.#paths.get(ctx);
        if (p !== undefined && b.cachedState !== undefined) {
          p.pmtu = b.cachedState.pathMtu;
          const hdr = p.dst.length === 4 ? 40 : 60;
          for (const c of this.#conns.values()) if (c.path === p) c.engine.setPathMtu(p.pmtu, hdr);
        }
      } else {
        const c = this.#conns.get(ctx);
        const ca = b.cachedState;
        if (c === undefined || ca === undefined) {
          b.status = "NDIS_STATUS_FAILURE";
          continue;
        }
        c.cached = ca;
        c.engine.setNoDelay(!ca.naglingEnabled);
        c.engine.setKeepAlive(this.#now, ca.keepAliveEnabled, ca.kaTimeout, ca.kaInterval, ca.kaProbeCount);
      }
    }
    this.#host.updateOffloadComplete(root);
  }

  #invalidate(root: OffloadBlockList): void {
    for (const b of treeBlocks(root)) {
      b.status = "NDIS_STATUS_SUCCESS";
      const ctx = b.miniportOffloadContext?.context ?? null;
      if (ctx === null) continue;
      if (b.layer === "neighbor") {
        const n = this.#neighbors.get(ctx);
        if (n !== undefined) n.invalid = true;
      }
      for (const c of this.#conns.values()) {
        const hit =
          (b.layer === "tcp" && this.#conns.get(ctx) === c) ||
          (b.layer === "path" && this.#paths.get(ctx) === c.path) ||
          (b.layer === "neighbor" && this.#neighbors.get(ctx) === c.path.neighbor);
        if (hit) this.#askRetrieve(c, "InvalidState"); // IV-4
      }
    }
    this.#host.invalidateOffloadComplete(root);
  }

  #query(root: OffloadBlockList): void {
    for (const b of treeBlocks(root)) {
      b.status = "NDIS_STATUS_SUCCESS";
      const ctx = b.miniportOffloadContext?.context ?? null;
      if (ctx === null || b.layer !== "tcp") continue;
      const c = this.#conns.get(ctx);
      const st = c?.engine.state;
      if (c === undefined || st === "CLOSED") {
        b.status = "NDIS_STATUS_FAILURE";
        continue;
      }
      const snap = c.engine.exportState(this.#now);
      b.delegatedState = {
        ...delegatedStateFromEngine(snap.delegated, {
          sendDataHead: null,
          sendDataTail: null,
          bufferedData: null,
        }),
        sendBacklogSize: BACKLOG_UNSUPPORTED,
        receiveBacklogSize: c.engine.readable,
      };
    }
    this.#host.queryOffloadComplete(root);
  }

  // -------------------------------------------------------------------------------------------
  // Per-connection step: output, events, sends, delivery

  #step(c: ConnCtx): void {
    if (c.terminating) return;
    this.#feed(c);
    this.#drainEngine(c);
    this.#deliver(c);
    this.#drainEngine(c);
    // Graceful disconnect: FIN after the data; completes once our FIN is acknowledged (DC-8).
    const st = c.engine.state;
    if (c.disconnect?.flags === "graceful" && c.overflow.length === 0) {
      if (st === "ESTABLISHED" || st === "CLOSE-WAIT") {
        c.engine.close();
        this.#drainEngine(c);
      } else if (st === "FIN-WAIT-2" || st === "TIME-WAIT" || st === "CLOSED") {
        const nbl = c.disconnect.nbl;
        c.disconnect = undefined;
        nbl.status = c.aborted ? "NDIS_STATUS_REQUEST_ABORTED" : "NDIS_STATUS_SUCCESS";
        this.#ledger.return(nbl, "target", "NdisTcpOffloadDisconnectComplete");
        this.#host.tcpOffloadDisconnectComplete(nbl);
      }
    } else if (c.disconnect?.flags === "abortive") {
      const nbl = c.disconnect.nbl;
      c.disconnect = undefined;
      nbl.status = "NDIS_STATUS_SUCCESS";
      this.#ledger.return(nbl, "target", "NdisTcpOffloadDisconnectComplete");
      this.#host.tcpOffloadDisconnectComplete(nbl);
    }
    // Peer FIN: indicate once everything before it was delivered (FN-1).
    if (
      c.peerFin &&
      !c.disconnectIndicated &&
      c.engine.readable === 0 &&
      c.posted.every((p) => p.filled === 0)
    ) {
      c.disconnectIndicated = true;
      this.#host.tcpOffloadEvent(c.handle, { type: "TcpIndicateDisconnect" });
    }
    if (c.disconnectIndicated) this.#completePostedWith(c, "NDIS_STATUS_INVALID_STATE"); // FN-2
    if (st === "TIME-WAIT") this.#askRetrieve(c, "UploadRequested"); // EV-3
  }

  #feed(c: ConnCtx): void {
    while (c.overflow.length > 0) {
      const v = c.overflow[0] as Uint8Array; // length > 0
      const r = c.engine.send(v);
      if (typeof r !== "number" || r === 0) break;
      if (r === v.length) c.overflow.shift();
      else c.overflow[0] = v.subarray(r);
    }
  }

  #drainEngine(c: ConnCtx): void {
    const now = this.#now;
    const e = c.engine;
    for (let seg = e.pollTransmit(now); seg !== undefined; seg = e.pollTransmit(now)) this.#emit(c, seg);
    for (let ev = e.pollEvent(); ev !== undefined; ev = e.pollEvent()) {
      switch (ev.kind) {
        case "acked":
          this.#onAcked(c, ev.bytes);
          break;
        case "peer-fin":
          c.peerFin = true;
          break;
        case "closed":
          if (ev.reason === "reset" && !c.aborted) {
            c.aborted = true;
            this.#completeSends(c, "NDIS_STATUS_REQUEST_ABORTED"); // RST-1
            this.#completePosted(c, c.posted.length, "NDIS_STATUS_REQUEST_ABORTED");
            this.#host.tcpOffloadEvent(c.handle, { type: "TcpIndicateAbort" });
          } else if (ev.reason === "timeout") {
            this.#askRetrieve(c, "TimeoutExpiration");
          } else if (ev.reason === "fin") {
            this.#askRetrieve(c, "UploadRequested"); // done: let the host finish it
          }
          break;
        case "connected":
        case "writable":
        case "readable":
          break;
      }
    }
  }

  #onAcked(c: ConnCtx, bytes: number): void {
    let left = bytes;
    const done: NetBufferList[] = [];
    while (left > 0 && c.sends.length > 0) {
      const s = c.sends[0] as SendItem; // length > 0
      const k = Math.min(left, s.left);
      advance(this.#ledger.view(s.nbl, "target", "NdisTcpOffloadSendComplete"), k);
      s.left -= k;
      s.acked += k;
      left -= k;
      if (s.left === 0) {
        c.sends.shift();
        s.nbl.status = "NDIS_STATUS_SUCCESS";
        s.nbl.bytesTransferred = s.acked;
        done.push(s.nbl);
      }
    }
    if (done.length > 0) {
      const chain = linkNbls(done) as NetBufferList;
      this.#ledger.return(chain, "target", "NdisTcpOffloadSendComplete");
      this.stats.completions += done.length;
      this.#host.tcpOffloadSendComplete(chain);
    }
  }

  #completeSends(c: ConnCtx, status: "NDIS_STATUS_REQUEST_ABORTED" | "NDIS_STATUS_UPLOAD_IN_PROGRESS"): void {
    const all = c.sends.splice(0);
    c.overflow.length = 0;
    if (all.length === 0) return;
    for (const s of all) {
      s.nbl.status = status;
      s.nbl.bytesTransferred = s.acked;
    }
    const chain = linkNbls(all.map((s) => s.nbl)) as NetBufferList;
    this.#ledger.return(chain, "target", "NdisTcpOffloadSendComplete");
    this.#host.tcpOffloadSendComplete(chain);
  }

  /** The delivery algorithm (spec 14.6), simplified: posted requests first, then indications. */
  #deliver(c: ConnCtx): void {
    const e = c.engine;
    for (let guard = 0; guard < 10_000; guard++) {
      const head = c.posted[0];
      if (head !== undefined) {
        const nb = this.#ledger.view(head.nbl, "target", "MiniportTcpOffloadReceive");
        const cap = chainLength(nb); // the NB is the free part (host bytes precede it)
        if (cap <= 0) {
          this.#completePosted(c, 1, "NDIS_STATUS_SUCCESS"); // zero-byte post: re-enable indications (RI-3)
          c.refused = false;
          continue;
        }
        if (e.readable === 0) {
          // Push mode: a partially filled request completes when the data runs out (PSH).
          if (head.filled > 0 && !head.nbl.receiveNoPush) this.#completePosted(c, 1, "NDIS_STATUS_SUCCESS");
          else if (head.filled > 0 && c.peerFin) this.#completePosted(c, 1, "NDIS_STATUS_SUCCESS");
          return;
        }
        const buf = (nb[0]?.currentMdl?.view ?? new Uint8Array(0)).subarray(
          (nb[0]?.currentMdlOffset ?? 0) + head.filled,
        );
        const n = e.recvInto(buf.subarray(0, cap - head.filled));
        head.filled += n;
        c.refused = false;
        if (head.filled === cap) this.#completePosted(c, 1, "NDIS_STATUS_SUCCESS");
        continue;
      }
      if (e.readable === 0 || c.refused || c.aborted) return;
      const chunk = e.peek();
      if (chunk === undefined) return;
      const size =
        c.cached.rcvIndicationSize > 0 ? Math.min(chunk.length, c.cached.rcvIndicationSize) : chunk.length;
      const nbl = this.#ledger.alloc(
        "target",
        fromArrays([chunk.slice(0, size)]),
        "NdisTcpOffloadReceiveHandler",
      );
      this.#ledger.transfer(nbl, "target", "host", "NdisTcpOffloadReceiveHandler");
      this.stats.indications++;
      const r = this.#host.tcpOffloadReceiveIndicate(c.handle, nbl, "NDIS_STATUS_SUCCESS");
      if (r.bytesConsumed > 0) e.recv(r.bytesConsumed);
      if (r.status !== "NDIS_STATUS_SUCCESS") {
        this.#ledger.free(nbl, "target", "indication refused");
        c.refused = true; // RI-3: wait for a post
        return;
      }
    }
  }

  #completePosted(
    c: ConnCtx,
    count: number,
    status: "NDIS_STATUS_SUCCESS" | "NDIS_STATUS_UPLOAD_IN_PROGRESS" | "NDIS_STATUS_REQUEST_ABORTED",
  ): void {
    const done = c.posted.splice(0, count);
    if (done.length === 0) return;
    for (const p of done) {
      p.nbl.status = status;
      p.nbl.bytesTransferred = p.filled;
    }
    const chain = linkNbls(done.map((p) => p.nbl)) as NetBufferList;
    this.#ledger.return(chain, "target", "NdisTcpOffloadReceiveComplete");
    this.stats.completions += done.length;
    this.#host.tcpOffloadReceiveComplete(chain);
  }

  #completePostedWith(c: ConnCtx, status: "NDIS_STATUS_INVALID_STATE"): void {
    const done = c.posted.splice(0);
    if (done.length === 0) return;
    for (const p of done) {
      p.nbl.status = status;
      p.nbl.bytesTransferred = p.filled;
    }
    const chain = linkNbls(done.map((p) => p.nbl)) as NetBufferList;
    this.#ledger.return(chain, "target", "NdisTcpOffloadReceiveComplete");
    this.#host.tcpOffloadReceiveComplete(chain);
  }

  #askRetrieve(c: ConnCtx, reason: "InvalidState" | "UploadRequested" | "TimeoutExpiration"): void {
    if (c.retrieveAsked) return;
    c.retrieveAsked = true;
    this.#host.tcpOffloadEvent(c.handle, { type: "TcpIndicateRetrieve", reason });
  }

  #emit(c: ConnCtx, seg: TcpRepr): void {
    if (c.path.neighbor.invalid) return; // IV-3: no sending on invalidated state
    this.#out.push(
      emitTcpPacket({
        ip: { src: c.path.src, dst: c.path.dst, ttl: c.cached.ttlOrHopLimit },
        tcp: seg,
        ethernet: { src: this.#mac, dst: c.path.neighbor.mac },
        checksum: this.#caps,
      }),
    );
  }

  #connOf(b: OffloadBlockList): ConnCtx | undefined {
    const ctx = b.miniportOffloadContext?.context ?? null;
    return ctx === null ? undefined : this.#conns.get(ctx);
  }

  #parentNeighbor(root: OffloadBlockList, b: OffloadBlockList): NeighborCtx | undefined {
    const parent = findParent(root, b);
    const ctx = parent?.miniportOffloadContext?.context ?? null;
    return ctx === null ? undefined : this.#neighbors.get(ctx);
  }

  #parentPath(root: OffloadBlockList, b: OffloadBlockList): PathCtx | undefined {
    const parent = findParent(root, b);
    const ctx = parent?.miniportOffloadContext?.context ?? null;
    return ctx === null ? undefined : this.#paths.get(ctx);
  }
}

function fail(b: OffloadBlockList): boolean {
  b.status = b.layer === "tcp" ? "NDIS_STATUS_OFFLOAD_TCP_ENTRIES" : "NDIS_STATUS_FAILURE";
  return false;
}

/** The block whose dependent chain contains `b`, if any. */
function findParent(root: OffloadBlockList, b: OffloadBlockList): OffloadBlockList | undefined {
  for (const p of treeBlocks(root)) {
    for (let d = p.dependentBlockList; d !== null; d = d.nextBlock) if (d === b) return p;
  }
  return undefined;
}

function connKey(local: IpAddr, localPort: number, remote: IpAddr, remotePort: number): string {
  return `${ipKey(local)}:${localPort}>${ipKey(remote)}:${remotePort}`;
}

function emptyDelegated() {
  return {
    state: "TcpConnectionClosed" as const,
    rcvNxt: 0 as never,
    rcvWnd: 0,
    sndUna: 0 as never,
    sndNxt: 0 as never,
    sndMax: 0 as never,
    sndWnd: 0,
    maxSndWnd: 0,
    sendWL1: 0 as never,
    cWnd: 0,
    ssThresh: 0,
    sRtt: undefined,
    rttVar: undefined,
    tsRecent: 0,
    tsRecentAge: 0 as never,
    tsTime: 0,
    totalRt: 0 as never,
    dupAckCount: 0,
    sndWndProbeCount: 0,
    keepAliveProbeCount: 0,
    keepAliveTimeoutDelta: undefined,
    retransmitCount: 0,
    retransmitTimeoutDelta: undefined,
    sendDataHead: null,
    sendDataTail: null,
    sendBacklogSize: undefined,
    bufferedData: null,
    receiveBacklogSize: undefined,
  };
}
