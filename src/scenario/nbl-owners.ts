/**
 * Which connection each NBL of one host belongs to, for the timeline's lanes.
 *
 * Theory of operation. The ledger reports hand-offs by NBL id only, but every NBL crosses the
 * chimney inside a call that names its connection, and an NBL id is never reused (src/nbl), so
 * one sighting in such a call places every hand-off of that NBL. The calls are watched through
 * the world's `ChimneyCallObserver`:
 *
 * - state operations and their completions carry block lists; a TCP block names its connection
 *   by the ports of its const state (initiate) and always by its context slot and handle, which
 *   are learned from the first block that had the ports. Its NBL chain (send data) and its
 *   delegated state's BufferedData belong to that connection;
 * - send, receive, disconnect and forward name the target's context, learned from the slot once
 *   the target wrote it (InitiateOffloadComplete; a context the target reuses later is learned
 *   again by the next initiate);
 * - receive indications name the handle.
 *
 * Completions and returns carry NBLs already seen, so they need nothing. The owner is looked up
 * when the run ends (an indication's hand-off happens just before the call that names it).
 */
import { forEachInTree, type OffloadBlockList, type OffloadContextSlot } from "../chimney/block-list.js";
import type { NetBufferList } from "../nbl/nbl.js";
import type { ChimneyCallObserver } from "../node/chimney-node.js";

/** Learns the connection of NBLs from the chimney calls of one host. */
export class NblOwners {
  readonly #byNbl = new Map<number, string>();
  readonly #bySlot = new WeakMap<OffloadContextSlot, string>();
  readonly #byHandle = new Map<number, string>();
  readonly #byContext = new Map<number, string>();
  /** The connection id of a TCP connection by its two ports (either order), if it is known. */
  readonly #byPorts: (localPort: number, remotePort: number) => string | undefined;

  constructor(byPorts: (localPort: number, remotePort: number) => string | undefined) {
    this.#byPorts = byPorts;
  }

  /** The connection `nbl` was seen with, if any. */
  connectionOf(nbl: number): string | undefined {
    return this.#byNbl.get(nbl);
  }

  /** The observer to give the host's world options. */
  observer(): ChimneyCallObserver {
    const blocks = (root: OffloadBlockList) => {
      this.#blocks(root);
    };
    const byContext = (context: number, nbl: NetBufferList) => {
      this.#chain(this.#byContext.get(context), nbl);
    };
    return {
      toTarget: {
        initiateOffload: blocks,
        terminateOffload: blocks,
        updateOffload: blocks,
        invalidateOffload: blocks,
        queryOffload: blocks,
        tcpOffloadSend: byContext,
        tcpOffloadReceive: byContext,
        tcpOffloadDisconnect: byContext,
        tcpOffloadForward: byContext,
      },
      toHost: {
        initiateOffloadComplete: blocks,
        terminateOffloadComplete: blocks,
        updateOffloadComplete: blocks,
        invalidateOffloadComplete: blocks,
        queryOffloadComplete: blocks,
        tcpOffloadReceiveIndicate: (handle, nbl) => {
          this.#chain(this.#byHandle.get(handle), nbl);
        },
      },
    };
  }

  #blocks(root: OffloadBlockList): void {
    forEachInTree(root, (b) => {
      if (b.layer !== "tcp") return;
      const slot = b.miniportOffloadContext;
      const conn =
        (b.constState === undefined
          ? undefined
          : this.#byPorts(b.constState.localPort, b.constState.remotePort)) ??
        (slot === null ? undefined : this.#bySlot.get(slot)) ??
        (b.ndisOffloadHandle === undefined ? undefined : this.#byHandle.get(b.ndisOffloadHandle));
      if (conn === undefined) return;
      if (slot !== null) {
        this.#bySlot.set(slot, conn);
        if (slot.context !== null) this.#byContext.set(slot.context, conn);
      }
      if (b.ndisOffloadHandle !== undefined) this.#byHandle.set(b.ndisOffloadHandle, conn);
      this.#chain(conn, b.netBufferListChain);
      this.#chain(conn, b.delegatedState?.sendDataHead ?? null);
      this.#chain(conn, b.delegatedState?.bufferedData ?? null);
    });
  }

  #chain(conn: string | undefined, first: NetBufferList | null): void {
    if (conn === undefined) return;
    for (let n = first; n !== null; n = n.next) this.#byNbl.set(n.id, conn);
  }
}
