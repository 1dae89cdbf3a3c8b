/**
 * The worker thread of a `WorkerTarget` (target-proxy.ts): a `SoftwareTarget` with its own loop,
 * clock and timers, and `RemoteHost`, the host as the target sees it from here.
 *
 * Theory of operation
 * - Each batch from the host is applied in order (frames into the target, the host's calls on
 *   the target), then the loop runs the target until it has nothing due (`process`, its frames,
 *   its expired timers), posts everything the target produced as one batch, and arms one timer
 *   for the target's next deadline.
 * - `RemoteHost` implements the host contract: every upcall appends a record. The two
 *   synchronous upcalls post the batch and wait (`Atomics.wait`) for the host thread's answer,
 *   as a NIC's receive DPC waits on the host stack's receive handler.
 * - NBLs: a host NBL arriving here gets a mirror in this thread's ledger (home "host", moved to
 *   the target as the host would have), freed when the target hands it back; the target's own
 *   NBLs going up are kept by id until the host returns them (`ret`).
 * - Memory: frames from the wire and the target's held data are in shared memory, so what the
 *   target indicates crosses by reference.
 */
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import { forEachInTree, type OffloadBlockList } from "../chimney/block-list.js";
import {
  INDICATION_PENDING,
  type IndicationAnswer,
  type OffloadHost,
  type ReceiveIndicateResult,
  type TcpOffloadEvent,
} from "../chimney/contract.js";
import type { NdisOffloadHandle } from "../chimney/block-list.js";
import type { OffloadStatusIndication } from "../chimney/status.js";
import { mapNbls } from "../nbl/chain.js";
import { BufferLedger } from "../nbl/ledger.js";
import type { NblId, NetBufferList } from "../nbl/nbl.js";
import { SoftwareTarget } from "../offload-target/software-target.js";
import { type TapDevice, tapOn } from "../device/tap.js";
import { Instant } from "../time/instant.js";
import { InvariantViolation, OwnershipError } from "../util/errors.js";
import { IntMap } from "../util/int-map.js";
import {
  type Batch,
  type TreeDesc,
  callStateOp,
  CELL_BELL_DOWN,
  CELL_BELL_UP,
  CELL_STOP,
  CELL_STOPPED,
  Doorbell,
  DATA_CALL_OP,
  DATA_COMPLETE_OP,
  type DataCall,
  decodeNb,
  decodeTree,
  type DownRecord,
  errorRecord,
  nblDesc,
  MdlEncoder,
  type NblDesc,
  SharedSlab,
  STATE_COMPLETE_OP,
  STATE_OP,
  type StateOp,
  type TreeEncoder,
  type UpRecord,
  type WorkerReady,
} from "./protocol.js";
import type { WorkerTargetInit } from "./target-proxy.js";
import { packBlocks, unpackTree } from "./tree-pack.js";

/** Rounds of the loop after which a target that still has work is taken for a livelock. */
const MAX_ROUNDS = 1_000_000;

/**
 * Blocks of state operations in one batch after which the worker answers what it has done so
 * far (a storm's terminate trees carry hundreds of connections each).
 */
const PIPELINE_BLOCKS = 64;

/** How long the worker polls for the host's next batch after one with a state operation (ms). */
const SPIN_AFTER_OP_MS = 0.1;

/** How long the worker spins on the answer cell before it sleeps (a wake-up costs ~20 us). */
const SPIN_ITERATIONS = 2000;

/** The host as the target sees it from the worker: upcalls become records. */
class RemoteHost implements OffloadHost {
  readonly #w: WorkerLoop;
  constructor(w: WorkerLoop) {
    this.#w = w;
  }

  initiateOffloadComplete(b: OffloadBlockList): void {
    this.#w.opDone("initiate", b);
  }
  terminateOffloadComplete(b: OffloadBlockList): void {
    this.#w.opDone("terminate", b);
  }
  updateOffloadComplete(b: OffloadBlockList): void {
    this.#w.opDone("update", b);
  }
  invalidateOffloadComplete(b: OffloadBlockList): void {
    this.#w.opDone("invalidate", b);
  }
  queryOffloadComplete(b: OffloadBlockList): void {
    this.#w.opDone("query", b);
  }
  tcpOffloadSendComplete(nbl: NetBufferList): void {
    this.#w.dataDone("send", nbl);
  }
  tcpOffloadReceiveComplete(nbl: NetBufferList): void {
    this.#w.dataDone("recv", nbl);
  }
  tcpOffloadDisconnectComplete(nbl: NetBufferList): void {
    this.#w.dataDone("disc", nbl);
  }
  tcpOffloadForwardComplete(nbl: NetBufferList): void {
    this.#w.dataDone("fwd", nbl);
  }
  tcpOffloadReceiveIndicate(handle: NdisOffloadHandle, nbl: NetBufferList): ReceiveIndicateResult {
    return this.#w.indicate(handle, nbl);
  }
  tcpOffloadEvent(handle: NdisOffloadHandle, event: TcpOffloadEvent): void {
    this.#w.push({ k: "event", handle, event });
  }
  neighborReachabilityQuery(blockList: OffloadBlockList): number {
    return this.#w.reach(blockList);
  }
  indicateStatus(status: OffloadStatusIndication): void {
    this.#w.status(status);
  }
  indicateReceive(frame: Uint8Array): void {
    this.#w.push({ k: "up", frame: this.#w.shared(frame) });
  }
}

/** Thrown out of a synchronous upcall when the host closes instead of answering. */
class WorkerStopping extends Error {}

/** The worker's loop around its target. */
class WorkerLoop {
  readonly ledger = new BufferLedger();
  readonly target: SoftwareTarget;
  /** Where batches go up (the host thread polls it after a state operation). */
  readonly #upPort: MessagePort;
  readonly #cell: Int32Array;
  readonly #bellUp: Doorbell;
  /** Rung by the host after each batch it posts (polled while spinning after an operation). */
  readonly bellDown: Doorbell;
  readonly #slab = new SharedSlab();
  readonly #enc = new MdlEncoder(this.#slab.alloc);
  readonly #origin = performance.now();
  #last = Instant.ZERO;
  #out: UpRecord[] = [];
  /** The TAP device, when the worker owns the wire (frames never cross to the host thread). */
  readonly #tap: TapDevice | undefined;
  #txq: Uint8Array[] = [];
  #wireIn = 0;
  #wireOut = 0;
  #stopped = false;
  /** Wire frames taken in (reported up, so the host can bound what is in flight). */
  #framesIn = 0;
  #framesReported = 0;
  #seq = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt: Instant | undefined;
  /** Mirrors of host NBLs the target holds: mirror -> the host's id. */
  readonly #hostId = new Map<NetBufferList, NblId>();
  /** The target's NBLs the host holds, by id. */
  readonly #up = IntMap.sequential<NetBufferList>();
  /** BufferedData the host lent to an initiate (gone after the call) -> the host's id. */
  readonly #lentHost = new WeakMap<NetBufferList, NblId>();
  /**
   * Handles of the connections the target holds: from the initiate's call until its terminate
   * completes (or the initiate fails). An indication on any other handle is one after the
   * terminate. (A set of terminated handles instead grew by one per connection ever uploaded.)
   */
  readonly #live = IntMap.sequential<true>();
  /** State trees in flight: the worker's tree -> the host's operation id. */
  readonly #ops = new Map<OffloadBlockList, number>();

  constructor(init: WorkerTargetInit) {
    this.#upPort = init.up;
    this.#cell = new Int32Array(init.cell);
    this.#bellUp = new Doorbell(this.#cell, CELL_BELL_UP);
    this.bellDown = new Doorbell(this.#cell, CELL_BELL_DOWN);
    this.target = new SoftwareTarget({
      ...init.target,
      tcpConfig: init.tcpConfig,
      host: new RemoteHost(this),
      ledger: this.ledger,
      mac: init.mac,
      memory: (n) => new Uint8Array(new SharedArrayBuffer(n)),
      receiveModeration: init.target.receiveModeration ?? true,
      // Memory the target indicates is never recycled (the garbage collector reclaims it), so
      // the host may hand it to the application without a copy (zeroCopyIndications).
      heldPoolBytes: 0,
    });
    if (init.wire !== undefined) {
      const tap = tapOn(init.wire, false); // the host thread opened it and closes it
      this.#tap = tap;
      tap.start(
        (frames, verified) => {
          this.onWire(frames, verified);
        },
        (code) => {
          if (!this.#stopped) {
            this.#out.push(errorRecord(new InvariantViolation(`TAP read failed in the worker: ${code}`)));
            this.flush();
          }
        },
        (n) => new Uint8Array(new SharedArrayBuffer(n)),
      );
    }
  }

  /**
   * Frames the worker read from the wire into shared memory (the TAP reader lands them there:
   * no copy), with the device's checksum verdicts: into the target, then the loop.
   */
  onWire(frames: readonly Uint8Array[], verified: Uint8Array): void {
    if (this.#stopped) return;
    try {
      const now = this.now();
      const t = this.target;
      // (`shared` copies only what is not shared yet: frames of an fs-mode device.)
      for (let i = 0; i < frames.length; i++)
        t.handleFrame(now, this.shared(frames[i] as Uint8Array), verified[i] === 1);
      this.#wireIn += frames.length;
      this.run();
    } catch (e) {
      if (e instanceof WorkerStopping) return;
      this.#out.push(errorRecord(e));
      this.flush();
    }
  }

  /** Stops touching the wire (the host is about to close the device) and says so. */
  stop(): void {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#tap?.close(); // stops the reader; the fd stays the host's
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    Atomics.store(this.#cell, CELL_STOPPED, 1);
    Atomics.notify(this.#cell, CELL_STOPPED);
  }

  now(): Instant {
    const t = Instant.fromMicros(Math.floor((performance.now() - this.#origin) * 1000));
    if (t > this.#last) this.#last = t;
    return this.#last;
  }

  push(r: UpRecord): void {
    this.#out.push(r);
  }

  shared(frame: Uint8Array): Uint8Array {
    return frame.buffer instanceof SharedArrayBuffer ? frame : this.#slab.copy(frame);
  }

  flush(): void {
    if (this.#out.length === 0 && this.#framesIn === this.#framesReported) return;
    const records = this.#out;
    this.#out = [];
    this.#framesReported = this.#framesIn;
    this.#upPort.postMessage({
      records,
      connections: this.target.connectionCount,
      framesIn: this.#framesIn,
    } satisfies Batch<UpRecord>);
    this.#bellUp.ring();
  }

  // -------------------------------------------------------------------------------------------
  // From the host

  /** The last batch carried a state operation. */
  tookOp = false;

  onBatch(b: Batch<DownRecord>): void {
    if (this.#stopped) return;
    try {
      let now = this.now();
      let blocks = 0;
      this.tookOp = false;
      for (const r of b.records) {
        this.#apply(now, r);
        if (r.k !== "op") continue;
        this.tookOp = true;
        // A long batch of state operations (a terminate storm) is worked and answered in
        // slices, so the host completes the first while the rest are still being worked here.
        blocks += r.tree.blocks;
        if (blocks >= PIPELINE_BLOCKS) {
          blocks = 0;
          this.run();
          now = this.now();
        }
      }
      this.run();
    } catch (e) {
      if (e instanceof WorkerStopping) return;
      this.#out.push(errorRecord(e));
      this.flush();
    }
  }

  #apply(now: Instant, r: DownRecord): void {
    const t = this.target;
    switch (r.k) {
      case "frame":
        this.#framesIn++;
        t.handleFrame(now, r.frame);
        return;
      case "sendFrame":
        this.#framesIn++;
        t.sendFrame(r.frame);
        return;
      case "op":
        this.#op(r.op, r.id, unpackTree(r.tree));
        return;
      case "data": {
        const head = this.#arrive(r.chain, DATA_CALL_OP[r.call]);
        if (r.call === "send") t.tcpOffloadSend(r.ctx, head);
        else if (r.call === "recv") t.tcpOffloadReceive(r.ctx, head);
        else t.tcpOffloadForward(r.ctx, head);
        return;
      }
      case "disc":
        t.tcpOffloadDisconnect(r.ctx, this.#arrive(r.chain, DATA_CALL_OP.disc), r.flags);
        return;
      case "ret": {
        const nbls = r.ids.map((id) => {
          const n = this.#up.get(id);
          if (n === undefined)
            throw new OwnershipError(
              "double-return",
              id,
              `MiniportTcpOffloadReceiveReturn: NBL #${id} is not out at the host (returned already, or never indicated)`,
            );
          this.#up.delete(id);
          return n;
        });
        nbls.forEach((n, i) => {
          n.next = nbls[i + 1] ?? null;
        });
        const head = nbls[0];
        if (head === undefined) return;
        this.ledger.return(head, "host", "MiniportTcpOffloadReceiveReturn");
        t.tcpOffloadReceiveReturn(head);
        return;
      }
      case "ping":
        this.#out.push({ k: "pong", id: r.id });
        return;
      case "stop":
        this.stop();
        return;
      case "answer":
        this.#answered(now, r.id, r.status, r.bytesConsumed);
        return;
      case "audit": {
        let leak: string | undefined;
        try {
          this.ledger.assertQuiescent();
        } catch (e) {
          leak = e instanceof Error ? e.message : String(e);
        }
        this.#out.push({
          k: "audited",
          id: r.id,
          audit: {
            live: this.ledger.outstanding(),
            leak,
            hostNbls: this.#hostId.size,
            outAtHost: this.#up.size,
            connections: t.connectionCount,
            handles: this.#live.size,
            neighbors: t.objectCount.neighbors,
            paths: t.objectCount.paths,
            bytesCopied: this.#enc.copied,
            compactedChunks: (t.heldPoolStats?.allocated ?? 0) + (t.heldPoolStats?.reused ?? 0),
            wireIn: this.#wireIn,
            wireOut: this.#wireOut,
            waitedUs: this.waitedUs,
            waits: this.waits,
          },
        });
        return;
      }
    }
  }

  /** Mirrors of host NBLs arriving with a call, linked, moved to the target as the host would. */
  #arrive(chain: readonly NblDesc[], op: string): NetBufferList {
    const head = this.#mirrorChain(chain, op);
    this.ledger.transfer(head, "host", "target", op);
    return head;
  }

  #mirrorChain(chain: readonly NblDesc[], op: string): NetBufferList {
    let head: NetBufferList | null = null;
    let prev: NetBufferList | null = null;
    for (const d of chain) {
      const m = this.ledger.alloc("host", d.nbs.map(decodeNb), op);
      m.status = d.status;
      m.bytesTransferred = d.bytesTransferred;
      m.receiveNoPush = d.receiveNoPush;
      m.receiveBytesTransferred = d.receiveBytesTransferred;
      this.#hostId.set(m, d.id);
      if (prev === null) head = m;
      else prev.next = m;
      prev = m;
    }
    if (head === null) throw new InvariantViolation(`${op}: an empty chain crossed`);
    return head;
  }

  #op(op: StateOp, id: number, desc: TreeDesc): void {
    const opName = STATE_OP[op];
    const lent: NetBufferList[] = [];
    const root = this.#tree(desc, opName, lent);
    this.#ops.set(root, id);
    if (op === "initiate") {
      forEachInTree(root, (b) => {
        if (b.layer === "tcp" && b.ndisOffloadHandle !== undefined) this.#live.set(b.ndisOffloadHandle, true);
      });
    }
    const t = this.target;
    const call = (): void => {
      callStateOp(t, op, root);
    };
    // BufferedData at initiate is lent for the call only (IO-19), as the host lends it.
    const lentHead = lent[0];
    if (lentHead === undefined) {
      call();
      return;
    }
    this.ledger.lend(lentHead, "host", "target", opName, call);
    for (const n of lent) {
      this.#lentHost.set(n, this.#hostId.get(n) as NblId);
      this.#hostId.delete(n);
    }
    this.ledger.free(lentHead, "host", opName);
  }

  /** The worker's copy of a host tree: mirrors for its NBLs, slots of its own. */
  /** The worker's copy of a host tree: mirrors for its NBLs, slots of its own. */
  #tree(d: TreeDesc, op: string, lent: NetBufferList[]): OffloadBlockList {
    return decodeTree(d, {
      block: (b) => {
        const chain = b.chain !== null && b.chain.length > 0 ? this.#arrive(b.chain, op) : null;
        const byId = new Map<NblId, NetBufferList>();
        for (let n = chain; n !== null; n = n.next) byId.set(this.#hostId.get(n) as NblId, n);
        if (b.buffered !== null && b.buffered.length > 0) {
          for (let n: NetBufferList | null = this.#mirrorChain(b.buffered, op); n !== null; n = n.next) {
            lent.push(n);
            byId.set(this.#hostId.get(n) as NblId, n);
          }
        }
        return {
          chain,
          ref: (r) => {
            const n = byId.get(r.id);
            if (n === undefined)
              throw new InvariantViolation(`${op}: the delegated state names NBL #${r.id}, not in its block`);
            return n;
          },
        };
      },
    });
  }

  // -------------------------------------------------------------------------------------------
  // The loop

  run(): void {
    const t = this.target;
    let now = this.now();
    // Expired timers run once per turn, as a driver's wake-up runs them (ChimneyNode.fire): a
    // deadline still due afterwards is the next turn's, through the timer armed below, not a
    // reason to spin here.
    let fired = false;
    for (let round = 0; ; round++) {
      t.process(now);
      if (this.#tap !== undefined) {
        for (let f = t.pollTransmit(now); f !== undefined; f = t.pollTransmit(now)) this.#txq.push(f);
      } else {
        for (let f = t.pollTransmit(now); f !== undefined; f = t.pollTransmit(now))
          this.#out.push({ k: "tx", frame: this.shared(f) });
      }
      if (!t.hasWork()) {
        const tt = t.pollTimeout();
        if (fired || tt === undefined || tt > now) break;
        t.handleTimeout(now);
        fired = true;
      }
      if (round >= MAX_ROUNDS)
        throw new InvariantViolation(`the worker target did not settle in ${MAX_ROUNDS} rounds`);
      now = this.now();
    }
    if (this.#txq.length > 0 && this.#tap !== undefined && !this.#stopped) {
      const batch = this.#txq;
      this.#txq = [];
      this.#wireOut += this.#tap.write(batch); // one write call per turn of the loop
    }
    this.flush();
    if (!this.#stopped) this.#arm(t.pollAt(now));
  }

  #arm(at: Instant | undefined): void {
    if (at === this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === undefined) return;
    const ms = Math.max(0, Math.ceil((at - this.now()) / 1000));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      try {
        this.run();
      } catch (e) {
        this.#out.push(errorRecord(e));
        this.flush();
      }
    }, ms);
  }

  // -------------------------------------------------------------------------------------------
  // Upcalls (RemoteHost)

  opDone(op: StateOp, root: OffloadBlockList): void {
    const id = this.#ops.get(root);
    if (id === undefined) throw new InvariantViolation(`${op} completed a tree the host never sent`);
    this.#ops.delete(root);
    const opName = STATE_COMPLETE_OP[op];
    if (op === "terminate" || op === "initiate") {
      forEachInTree(root, (b) => {
        if (b.layer !== "tcp" || b.ndisOffloadHandle === undefined) return;
        if (op === "terminate" || b.status !== "NDIS_STATUS_SUCCESS") this.#live.delete(b.ndisOffloadHandle);
      });
    }
    const freed = new Set<NetBufferList>();
    const tree = packBlocks(root, this.#treeEncoder(opName, freed));
    // Host NBLs the target handed back die here: the host has the originals.
    for (const n of freed) {
      this.#hostId.delete(n);
      n.next = null;
      this.ledger.free(n, "host", opName);
    }
    this.#out.push({ k: "opDone", op, id, tree });
  }

  dataDone(call: DataCall | "disc", head: NetBufferList): void {
    const op = DATA_COMPLETE_OP[call];
    const chain: NblDesc[] = [];
    const done: NetBufferList[] = [];
    for (let n: NetBufferList | null = head; n !== null; n = n.next) {
      chain.push(this.#describeHost(n, op));
      done.push(n);
    }
    for (const n of done) {
      this.#hostId.delete(n);
      n.next = null;
      this.ledger.free(n, "host", op);
    }
    this.#out.push({ k: "dataDone", call, chain });
  }

  indicate(handle: NdisOffloadHandle, nbl: NetBufferList): ReceiveIndicateResult {
    const op = "NdisTcpOffloadReceiveHandler";
    if (!this.#live.has(handle)) {
      throw new OwnershipError(
        "indicate-after-terminate",
        nbl.id,
        `${op}: NBL #${nbl.id} indicated on handle ${handle}, which the target does not hold: its terminate has completed (the connection is the host's), or it was never offloaded`,
      );
    }
    // Asynchronous: the host answers with a record (`answer`); meanwhile the indication is in
    // flight and the connection's receive path waits (SoftwareTarget.indicationAnswered).
    this.#up.set(nbl.id, nbl);
    this.#out.push({ k: "indicate", handle, nbl: this.#describeOwn(nbl, op) });
    return INDICATION_PENDING;
  }

  /** The host's answer to an indication in flight. */
  #answered(now: Instant, id: NblId, status: IndicationAnswer["status"], bytesConsumed: number): void {
    const op = "NdisTcpOffloadReceiveHandler";
    const nbl = this.#up.get(id);
    if (nbl === undefined)
      throw new OwnershipError(
        "unknown-nbl",
        id,
        `${op}: an answer for NBL #${id}, which is not out at the host`,
      );
    if (status !== "NDIS_STATUS_SUCCESS") {
      // Refused (all or a suffix): the target's again at once, as the host would have made it.
      this.#up.delete(id);
      this.ledger.return(nbl, "host", op);
    }
    this.target.indicationAnswered(now, nbl, { status, bytesConsumed });
  }

  reach(blockList: OffloadBlockList): number {
    const seq = ++this.#seq;
    this.#out.push({
      k: "reach",
      seq,
      tree: packBlocks(blockList, this.#treeEncoder("NeighborReachabilityQuery", new Set())),
    });
    this.flush();
    this.#wait(seq);
    return Atomics.load(this.#cell, 2);
  }

  status(status: OffloadStatusIndication): void {
    const caps =
      status === "NDIS_STATUS_OFFLOAD_RESUME" ? this.target.connectionOffloadCapabilities() : undefined;
    this.#out.push({ k: "status", status, caps });
  }

  /** Waits until the host answered `seq`: a short spin, then sleeps. */
  #wait(seq: number): void {
    const c = this.#cell;
    const t0 = performance.now();
    try {
      this.#waitFor(c, seq);
    } finally {
      this.waitedUs += Math.round((performance.now() - t0) * 1000);
      this.waits++;
    }
  }

  /** Time spent waiting for the host's answers (us), and how many waits. */
  waitedUs = 0;
  waits = 0;

  #waitFor(c: Int32Array, seq: number): void {
    for (let i = 0; i < SPIN_ITERATIONS; i++) if (Atomics.load(c, 0) === seq) return;
    for (let v = Atomics.load(c, 0); v !== seq; v = Atomics.load(c, 0)) {
      if (Atomics.load(c, CELL_STOP) !== 0) {
        // The host is closing and will not answer: let go of the wire and unwind.
        this.stop();
        throw new WorkerStopping();
      }
      Atomics.wait(c, 0, v, 1000);
    }
  }

  /** A host NBL (a mirror) the target hands back, described with its header and windows. */
  #describeHost(n: NetBufferList, op: string): NblDesc {
    const id = this.#hostId.get(n);
    if (id === undefined)
      throw new OwnershipError("unknown-nbl", n.id, `${op}: NBL #${n.id} is not the host's`);
    return this.#describe(n, "h", id, true, op);
  }

  /** One of the target's NBLs going up (the host now owns it on this ledger). */
  #describeOwn(n: NetBufferList, op: string): NblDesc {
    return this.#describe(n, "w", n.id, false, op);
  }

  #describe(n: NetBufferList, home: "h" | "w", id: NblId, back: boolean, op: string): NblDesc {
    const owner = this.ledger.ownerOf(n);
    const nbs = this.ledger.viewOne(n, owner ?? "host", op).map((nb) => this.#enc.nb(nb));
    return nblDesc(n, home, id, back, nbs);
  }

  /** The worker's side of a tree going up: host NBLs it hands back die here, its own go up. */
  #treeEncoder(op: string, freed: Set<NetBufferList>): TreeEncoder {
    // Made once per tree, not per block.
    const sent = (n: NetBufferList): NblDesc => {
      const id = this.#hostId.get(n);
      if (id === undefined)
        throw new InvariantViolation(`${op}: NBL #${n.id} in a send chain is not the host's`);
      const back = this.ledger.ownerOf(n) === "host";
      if (back) freed.add(n);
      return this.#describe(n, "h", id, back, op);
    };
    const up = (n: NetBufferList): NblDesc => {
      this.#up.set(n.id, n);
      return this.#describeOwn(n, op);
    };
    return {
      chain: (head) => mapNbls(head, sent),
      buffered: (head) => (this.#hostId.has(head) || this.#lentHost.has(head) ? null : mapNbls(head, up)), // the host's: a reference
      ref: (n) => {
        const id = this.#hostId.get(n) ?? this.#lentHost.get(n);
        return id === undefined ? { home: "w", id: n.id } : { home: "h", id };
      },
    };
  }
}

const port = parentPort;
if (port === null) throw new InvariantViolation("target-worker.js runs only as a worker thread");
const loop = new WorkerLoop(workerData as WorkerTargetInit);
port.on("message", (b: Batch<DownRecord>) => {
  loop.onBatch(b);
  // Busy-poll after a state operation (as a NIC driver polls after an interrupt): the host
  // usually follows one with more (an offload with its terminate, a storm's next slice), and a
  // message taken while spinning saves the ~20 us wake-up of a sleeping thread. The TAP reader
  // waits meanwhile, so the window is short and opened only by control traffic.
  if (!loop.tookOp) return;
  for (let until = performance.now() + SPIN_AFTER_OP_MS; performance.now() < until; ) {
    const m = loop.bellDown.poll(port);
    if (m === undefined) continue;
    loop.onBatch(m as Batch<DownRecord>);
    if (loop.tookOp) until = performance.now() + SPIN_AFTER_OP_MS;
  }
});
port.postMessage({
  k: "ready",
  caps: loop.target.connectionOffloadCapabilities(),
} satisfies WorkerReady);
