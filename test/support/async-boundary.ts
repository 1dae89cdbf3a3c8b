/**
 * The worker target's asynchronous boundary, in the simulator: between the host (`OffloadManager`)
 * and the target (`SoftwareTarget`), every call and upcall of the contract crosses as a scheduler
 * event instead of a direct call. Each direction is a FIFO queue, as the rings between the threads
 * are, and the explorer (test/support/explorer.ts) chooses when each queue delivers its next call,
 * against everything else due at the same instant.
 *
 * As with the worker: an indication returns NDIS_STATUS_PENDING to the target, reaches the host
 * later, and the host's answer goes back down the queue (`SoftwareTarget.indicationAnswered`).
 * The reachability query and status indications stay direct calls (the worker answers the
 * first through a shared cell; the second is raised by the host's own calls).
 */
import type { NdisOffloadHandle } from "../../src/chimney/block-list.js";
import {
  INDICATION_PENDING,
  type IndicationAnswer,
  type ReceiveIndicateResult,
} from "../../src/chimney/contract.js";
import { OffloadManager, type OffloadPolicy, type ReceiveKnobs } from "../../src/host/offload-manager.js";
import type { HostStack } from "../../src/host/stack.js";
import { BufferLedger } from "../../src/nbl/ledger.js";
import type { NetBufferList } from "../../src/nbl/nbl.js";
import type { Chimney } from "../../src/node/chimney-node.js";
import { SoftwareTarget, type SoftwareTargetOptions } from "../../src/offload-target/software-target.js";
import type { Scheduler } from "../../src/sim/scheduler.js";
import type { MacAddr } from "../../src/wire/ethernet.js";

/** Scheduler labels of the two queues' deliveries. */
export const DOWN_LABEL = "host>target call";
export const UP_LABEL = "target>host call";

/** Host -> target calls that cross later, with what they return at once. */
const DOWN: Readonly<Record<string, unknown>> = {
  initiateOffload: undefined,
  terminateOffload: undefined,
  updateOffload: undefined,
  invalidateOffload: undefined,
  queryOffload: undefined,
  tcpOffloadSend: "NDIS_STATUS_PENDING",
  tcpOffloadReceive: "NDIS_STATUS_PENDING",
  tcpOffloadForward: "NDIS_STATUS_PENDING",
  tcpOffloadDisconnect: "NDIS_STATUS_PENDING",
  tcpOffloadReceiveReturn: "NDIS_STATUS_SUCCESS",
};

/** Target -> host upcalls that cross later (the indication is handled on its own). */
const UP = new Set([
  "initiateOffloadComplete",
  "terminateOffloadComplete",
  "updateOffloadComplete",
  "invalidateOffloadComplete",
  "queryOffloadComplete",
  "tcpOffloadSendComplete",
  "tcpOffloadReceiveComplete",
  "tcpOffloadDisconnectComplete",
  "tcpOffloadForwardComplete",
  "tcpOffloadEvent",
  "indicateReceive",
]);

/** One direction: calls in order, delivered one per scheduler event. */
class Lane {
  readonly #queue: (() => void)[] = [];
  #armed = false;
  readonly sched: Scheduler;
  readonly label: string;
  readonly after: () => void;

  constructor(sched: Scheduler, label: string, after: () => void) {
    this.sched = sched;
    this.label = label;
    this.after = after;
  }

  push(call: () => void): void {
    this.#queue.push(call);
    this.#arm();
  }

  #arm(): void {
    if (this.#armed || this.#queue.length === 0) return;
    this.#armed = true;
    this.sched.at(this.sched.now, this.label, () => {
      this.#armed = false;
      const call = this.#queue.shift();
      call?.();
      this.after();
      this.#arm();
    });
  }
}

/** Methods of `o` by name (a class's prototype methods included). */
function method(o: object, name: string): (...a: unknown[]) => unknown {
  return (Reflect.get(o, name) as (...a: unknown[]) => unknown).bind(o);
}

/**
 * A chimney (manager, software target, ledger) whose two halves talk through the boundary.
 * `pump` runs the host node after each delivered call (set it once the node exists).
 */
export function asyncChimney(
  stack: HostStack,
  sched: Scheduler,
  o: {
    readonly mac: MacAddr;
    readonly policy: OffloadPolicy;
    readonly knobs: ReceiveKnobs;
    readonly target?: Partial<SoftwareTargetOptions> | undefined;
  },
): Chimney & { pump: () => void } {
  const ledger = new BufferLedger();
  const manager = new OffloadManager(stack, ledger, o.policy, o.knobs);
  // The node's pump, and the target (made after the host side it calls), once they exist.
  const box: { pump: () => void; target: SoftwareTarget | undefined } = {
    pump: () => undefined,
    target: undefined,
  };
  const down = new Lane(sched, DOWN_LABEL, () => box.pump());
  const up = new Lane(sched, UP_LABEL, () => box.pump());
  const hostSide = new Proxy(manager, {
    get(m, key) {
      const name = String(key);
      if (name === "tcpOffloadReceiveIndicate") {
        return (handle: NdisOffloadHandle, nbl: NetBufferList): ReceiveIndicateResult => {
          up.push(() => {
            const res = manager.tcpOffloadReceiveIndicate(handle, nbl);
            if (res.status === "NDIS_STATUS_PENDING")
              throw new Error("the host answered an indication with PENDING");
            const answer: IndicationAnswer = { ...res, status: res.status };
            down.push(() => box.target?.indicationAnswered(sched.now, nbl, answer));
          });
          return INDICATION_PENDING;
        };
      }
      const f = method(m, name);
      if (!UP.has(name)) return f;
      return (...args: unknown[]) => {
        up.push(() => f(...args));
      };
    },
  });
  const real = new SoftwareTarget({
    tcpConfig: stack.tcpConfig,
    ...o.target,
    host: hostSide,
    ledger,
    mac: o.mac,
  });
  box.target = real;
  const targetSide = new Proxy(real, {
    get(t, key) {
      const name = String(key);
      const v: unknown = Reflect.get(t, key);
      if (typeof v !== "function") return v;
      const f = method(t, name);
      if (!(name in DOWN)) return f;
      const immediate = DOWN[name];
      return (...args: unknown[]) => {
        down.push(() => f(...args));
        return immediate;
      };
    },
  });
  manager.attachTarget(targetSide);
  return {
    manager,
    target: real,
    ledger,
    set pump(fn: () => void) {
      box.pump = fn;
    },
    get pump() {
      return box.pump;
    },
  };
}
