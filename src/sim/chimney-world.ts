/**
 * A two-host chimney world for scenarios and tests: host "a" (192.0.2.1 / 2001:db8::1) and host
 * "b" (.2 / ::2) on one simulated Ethernet segment, each optionally with an offload manager and
 * the software offload target (src/offload-target), and one ledger per host. Applications are callbacks on socket events;
 * the world runs on virtual time and is a pure function of its seed.
 *
 * A host's `observe` option sees the chimney calls between its manager and its target (the two
 * interfaces of src/chimney/contract.ts) with their arguments, just before each call runs: the
 * scenario runner uses it to learn which connection an NBL belongs to. Without it nothing is
 * interposed.
 */
import { segmentHost } from "./segment-host.js";
import {
  acceptAllKnobs,
  type OffloadManager,
  type OffloadPolicy,
  type ReceiveKnobs,
} from "../host/offload-manager.js";
import { HostStack, type StackEvent } from "../host/stack.js";
import type { BufferLedger } from "../nbl/ledger.js";
import { tcpConfig, type TcpConfig } from "../tcp/config.js";
import { Instant } from "../time/instant.js";
import { mac } from "../wire/ethernet.js";
import { buildDuplexLink, type FaultProfile, type LinkTapOptions } from "./link.js";
import { type ChimneyCallObserver, createChimney, type NicTarget } from "../node/chimney-node.js";
import { SimHost } from "./host-node.js";
import { Prng } from "./prng.js";
import type { SoftwareTargetOptions } from "../offload-target/software-target.js";
import { Scheduler } from "./scheduler.js";

/** How to build one host of the world. */
export interface WorldHostOptions {
  /** Give the host an offload target (default true). */
  readonly offload?: boolean | undefined;
  readonly policy?: OffloadPolicy | undefined;
  /** Receive knobs; default accept-all. */
  readonly knobs?: ((rng: Prng) => ReceiveKnobs) | undefined;
  /** Further options of the host's SoftwareTarget (push timer, operation delay, ...). */
  readonly target?: Partial<Omit<SoftwareTargetOptions, "host" | "ledger" | "mac">> | undefined;
  /** Resource limits of the SoftwareTarget (e.g. `{ tcp: 0 }` to make initiates fail). */
  readonly limits?: SoftwareTargetOptions["limits"];
  /** Sees chimney calls (manager -> target and target -> manager) before they run; must not call back. */
  readonly observe?: ChimneyCallObserver | undefined;
}

/** How to build the world. */
export interface WorldOptions {
  readonly seed: number;
  /** Faults from a to b (and from b to a unless `reverse` is given); delay defaults to 1 ms. */
  readonly profile?: FaultProfile | undefined;
  /** Faults from b to a, when they differ from `profile`; delay defaults to 1 ms. */
  readonly reverse?: FaultProfile | undefined;
  readonly tcp?: Partial<TcpConfig> | undefined;
  readonly a?: WorldHostOptions | undefined;
  readonly b?: WorldHostOptions | undefined;
  readonly tap?: LinkTapOptions | undefined;
}

/** One host of the world, with its parts. */
export interface WorldHost {
  readonly node: SimHost;
  readonly stack: HostStack;
  readonly manager: OffloadManager | undefined;
  readonly target: NicTarget | undefined;
  readonly ledger: BufferLedger | undefined;
  /** Replaces the host's event handler. */
  onEvent(fn: (ev: StackEvent) => void): void;
}

/** The world. */
export interface ChimneyWorld {
  readonly sched: Scheduler;
  readonly a: WorldHost;
  readonly b: WorldHost;
  /** Runs until `untilUs` (virtual microseconds) or until idle; returns true if it went idle. */
  run(untilUs: number, maxEvents?: number): boolean;
  /** The current virtual time. */
  readonly now: Instant;
}

/** Builds a world. */
export function buildChimneyWorld(o: WorldOptions): ChimneyWorld {
  const sched = new Scheduler();
  const root = new Prng(o.seed);
  const linkRng = root.fork();
  const tcp = tcpConfig({ ...o.tcp });
  const mk = (name: string, n: number, opts: WorldHostOptions | undefined): WorldHost => {
    const hostMac = mac(`02:00:00:00:00:0${n}`);
    const stack = segmentHost(n, { tcp, random: root.fork() });
    const knobRng = root.fork();
    if (opts?.offload === false) {
      const node = new SimHost(name, stack, sched);
      return {
        node,
        stack,
        manager: undefined,
        target: undefined,
        ledger: undefined,
        onEvent: (fn) => {
          node.onEvent = fn;
        },
      };
    }
    const knobs = opts?.knobs?.(knobRng) ?? acceptAllKnobs({ nextU32: () => knobRng.nextU32() });
    const { manager, target, ledger } = createChimney(stack, {
      mac: hostMac,
      policy: opts?.policy,
      knobs,
      target: { ...opts?.target, limits: opts?.limits ?? opts?.target?.limits },
      observe: opts?.observe,
    });
    const node = new SimHost(name, stack, sched, { manager, target, ledger });
    return {
      node,
      stack,
      manager,
      target,
      ledger,
      onEvent: (fn) => {
        node.onEvent = fn;
      },
    };
  };
  const a = mk("a", 1, o.a);
  const b = mk("b", 2, o.b);
  const link = buildDuplexLink(a.node.port(0), b.node.port(0), {
    scheduler: sched,
    prng: linkRng,
    profile: { delayUs: 1000, ...o.profile, mtu: 1500, linkHeaderBytes: 14 },
    ...(o.reverse === undefined
      ? {}
      : { reverse: { delayUs: 1000, ...o.reverse, mtu: 1500, linkHeaderBytes: 14 } }),
    ...o.tap,
  });
  a.node.attach(0, link.aToB);
  b.node.attach(0, link.bToA);
  return {
    sched,
    a,
    b,
    get now() {
      return sched.now;
    },
    run(untilUs: number, maxEvents = 10_000_000): boolean {
      const limit = Instant.fromMicros(untilUs);
      for (let n = 0; n < maxEvents; n++) {
        const next = sched.nextAt();
        if (next === undefined) return true;
        if (next > limit) return false;
        sched.step();
      }
      return false;
    },
  };
}
