/**
 * `createSimNetwork`: the common simulator set-up in one call. Two hosts on one simulated
 * Ethernet link, each with `net`-style sockets, any of them optionally with an offload manager
 * and the software offload target, all on one seeded virtual clock inside Node's event loop.
 *
 * Theory of operation
 * - It only assembles existing pieces: a `SimDriver` (the loop that runs virtual time; see
 *   driver.ts), one `HostStack` per host run by a `SimHost` (src/sim/host-node.ts over src/node; with
 *   an `OffloadManager` and a `SoftwareTarget` when the host offloads), a `buildDuplexLink`
 *   between them, and a `NetStack` per host.
 * - Addresses: the i-th host (in `hosts` order) is 192.0.2.(i+1)/24 and 2001:db8::(i+1)/64, MAC
 *   02:00:00:00:00:0(i+1); every host resolves the host names to their IPv4 addresses.
 * - Determinism: one `Prng(seed)` is forked in a fixed order (the link, then per host its stack
 *   and its receive knobs), so a run is a pure function of the seed and what the application
 *   does. Print `seed` (or `label`) in failures.
 * - Time: `run(untilMs)` resolves at that virtual time; `runUntil(predicate)` checks the
 *   predicate every `stepMs` of virtual time. The simulation does not pause while the
 *   application awaits: as on a real network, it keeps running alongside the callbacks.
 */
import { segmentHost } from "../sim/segment-host.js";
import { acceptAllKnobs, type OffloadManager, type OffloadPolicy } from "../host/offload-manager.js";
import { type HostConn, HostStack } from "../host/stack.js";
import type { BufferLedger } from "../nbl/ledger.js";
import { createChimney } from "../node/chimney-node.js";
import { buildDuplexLink, type DuplexLink, type FaultProfile, type LinkTapOptions } from "../sim/link.js";
import { SimHost } from "../sim/host-node.js";
import { Prng } from "../sim/prng.js";
import type { SoftwareTarget, SoftwareTargetOptions } from "../offload-target/software-target.js";
import { tcpConfig, type TcpConfig } from "../tcp/config.js";
import { Instant } from "../time/instant.js";
import { ConfigError, StackError, UsageError } from "../util/errors.js";
import { mac } from "../wire/ethernet.js";
import { SimDriver, type SimStackDriver } from "./driver.js";
import { NetStack } from "./net-stack.js";
import { Socket } from "./socket.js";

/**
 * The link between the two hosts, the same both ways (`reverse` overrides the b-to-a direction).
 * Times are milliseconds of virtual time; everything is optional (default: 1 ms, clean).
 */
export interface SimLinkOptions
  extends Omit<FaultProfile, "delayUs" | "jitterUs" | "rateBps" | "mtu" | "linkHeaderBytes"> {
  /** One-way delay, ms (default 1). */
  readonly delayMs?: number | undefined;
  /** Random extra delay, uniform in [0, jitterMs] ms. */
  readonly jitterMs?: number | undefined;
  /** Bottleneck line rate, bits per second (default: unlimited). */
  readonly bandwidthBps?: number | undefined;
  /** The link MTU (default 1500); also the hosts' interface MTU. */
  readonly mtu?: number | undefined;
  /** The b-to-a direction, when it differs (same fields; `mtu` is the link's). */
  readonly reverse?: Omit<SimLinkOptions, "reverse" | "mtu"> | undefined;
}

/** How a host offloads (only the software target exists). */
export interface SimOffloadOptions {
  /** The offload target (default `software`: src/offload-target's `SoftwareTarget`). */
  readonly target?: "software" | undefined;
  /** The manager's policy (which connections it may offload). */
  readonly policy?: OffloadPolicy | undefined;
  /** Further `SoftwareTarget` options (operation delay, push timer, limits, ...). */
  readonly targetOptions?:
    | Partial<Omit<SoftwareTargetOptions, "host" | "ledger" | "mac" | "tcpConfig">>
    | undefined;
}

/** Options of `createSimNetwork`. */
export interface SimNetworkOptions {
  /** The seed of everything random (default 1). */
  readonly seed?: number | undefined;
  /** The two hosts' names (default `["a", "b"]`): the link joins the first to the second. */
  readonly hosts?: readonly [string, string] | undefined;
  /** The link between them. */
  readonly link?: SimLinkOptions | undefined;
  /** Hosts that get an offload manager and target: `{ a: {} }` or `{ a: { target: "software" } }`. */
  readonly offload?: Readonly<Record<string, SimOffloadOptions | true>> | undefined;
  /** TCP configuration of every host. */
  readonly tcp?: Partial<TcpConfig> | undefined;
  /** Capture or trace the link (a `PcapWriter`, a per-frame callback, drops). */
  readonly tap?: LinkTapOptions | undefined;
}

/** The host side of the chimney on one simulated host. */
export interface SimOffload {
  /** The offload manager (every operation of the chimney; call `host.flush()` after using it directly). */
  readonly manager: OffloadManager;
  /** The host's offload target. */
  readonly target: SoftwareTarget;
  /** The host's buffer ledger (`assertQuiescent()` once every connection is back). */
  readonly ledger: BufferLedger;
  /** Offloads the socket's connection to the target; false when the manager refuses. */
  offload(socket: Socket | HostConn): boolean;
  /** Takes the socket's connection back to the host stack; false when it is not offloaded. */
  terminate(socket: Socket | HostConn): boolean;
}

/** One host of a simulated network. */
export interface SimNetworkHost {
  readonly name: string;
  /** Its IPv4 and IPv6 addresses. */
  readonly address: string;
  readonly address6: string;
  /** Its sockets: `net.createServer` / `net.connect` look-alikes. */
  readonly net: NetStack;
  /** `net.createServer` on this host. */
  readonly createServer: NetStack["createServer"];
  /** `net.connect` on this host. */
  readonly connect: NetStack["connect"];
  /** The host's TCP/IP stack. */
  readonly stack: HostStack;
  /** The driver running the stack on the virtual clock. */
  readonly driver: SimStackDriver;
  /** The chimney, when this host offloads. */
  readonly offload: SimOffload | undefined;
  /** Drains the stack's (and target's) output after calls made directly on `stack` or `manager`. */
  flush(): void;
}

/** Options of `runUntil`. */
export interface RunUntilOptions {
  /** How often (virtual ms) the predicate is checked (default 1). */
  readonly stepMs?: number | undefined;
  /** Virtual ms from now after which `runUntil` rejects with `SimTimeoutError` (default 60000). */
  readonly timeoutMs?: number | undefined;
}

/** A running simulated network; `stop()` it when done. */
export interface SimNetwork {
  readonly seed: number;
  /** "seed N", for failure messages. */
  readonly label: string;
  /** The hosts, in the order given. */
  readonly hosts: readonly [SimNetworkHost, SimNetworkHost];
  /** The link (per-direction stage counters: `link.aToB.stats()`). */
  readonly link: DuplexLink;
  /** The loop running virtual time. */
  readonly sim: SimDriver;
  /** The current virtual time, milliseconds. */
  readonly nowMs: number;
  /** The host called `name`; throws `ConfigError` for an unknown name. */
  host(name: string): SimNetworkHost;
  /** Resolves at virtual time `untilMs` (milliseconds since the start); throws `UsageError` if negative. */
  run(untilMs: number): Promise<void>;
  /** Resolves once `predicate()` holds (checked now and every `stepMs`); see `RunUntilOptions`. */
  runUntil(predicate: () => boolean, options?: RunUntilOptions): Promise<void>;
  /** Resolves once nothing is pending: every connection and timer is quiet. */
  idle(): Promise<void>;
  /** Ends the simulation: no more virtual time passes. */
  stop(): void;
}

/** `runUntil` reached its timeout; `message` names the seed. */
export class SimTimeoutError extends StackError {
  readonly code = "ERR_SIM_TIMEOUT";
}

const msToUs = (ms: number): number => Math.round(ms * 1000);

function faultProfile(o: Omit<SimLinkOptions, "reverse">, mtu: number): FaultProfile {
  return {
    delayUs: msToUs(o.delayMs ?? 1),
    jitterUs: o.jitterMs === undefined ? undefined : msToUs(o.jitterMs),
    jitterReorders: o.jitterReorders,
    loss: o.loss,
    burstLoss: o.burstLoss,
    duplicate: o.duplicate,
    reorder: o.reorder,
    corrupt: o.corrupt,
    rateBps: o.bandwidthBps,
    queueBytes: o.queueBytes,
    queueFrames: o.queueFrames,
    mtu,
    linkHeaderBytes: 14,
  };
}

/** Builds two hosts on one simulated link; see the module comment. */
export function createSimNetwork(options: SimNetworkOptions = {}): SimNetwork {
  const seed = options.seed ?? 1;
  const names = options.hosts ?? (["a", "b"] as const);
  if ((names as readonly string[]).length !== 2 || names[0] === names[1]) {
    throw new ConfigError(
      `createSimNetwork: hosts must be two different names, got ${JSON.stringify(names)}`,
    );
  }
  for (const name of Object.keys(options.offload ?? {})) {
    if (!names.includes(name))
      throw new ConfigError(`createSimNetwork: offload names unknown host "${name}"`);
  }
  const mtu = options.link?.mtu ?? 1500;
  const sim = new SimDriver();
  const root = new Prng(seed);
  const linkRng = root.fork();
  const tcp = tcpConfig({ ...options.tcp });
  const hostsFile = { [names[0]]: "192.0.2.1", [names[1]]: "192.0.2.2" };

  const build = (name: string, n: number): { host: SimNetworkHost; node: SimHost } => {
    const hostMac = mac(`02:00:00:00:00:0${n}`);
    const stack = segmentHost(n, { tcp, random: root.fork(), mtu, ipv6: true });
    const knobRng = root.fork();
    const want = options.offload?.[name];
    let node: SimHost;
    let offload: SimOffload | undefined;
    let driver: SimStackDriver;
    const conn = (s: Socket | HostConn): HostConn => {
      const c = s instanceof Socket ? s.connection : s;
      if (c === undefined) throw new UsageError(`${name}: the socket has no connection (not connected yet)`);
      return c;
    };
    if (want === undefined) {
      node = new SimHost(name, stack, sim.scheduler);
      driver = sim.addNode(node);
    } else {
      const o = want === true ? {} : want;
      const { manager, target, ledger } = createChimney(stack, {
        mac: hostMac,
        policy: o.policy,
        knobs: acceptAllKnobs({ nextU32: () => knobRng.nextU32() }),
        target: o.targetOptions,
      });
      node = new SimHost(name, stack, sim.scheduler, { manager, target, ledger });
      const d = sim.addNode(node);
      driver = d;
      offload = {
        manager,
        target,
        ledger,
        offload: (s) => {
          const ok = manager.offload(conn(s));
          d.flush();
          return ok;
        },
        terminate: (s) => {
          const ok = manager.terminate(conn(s));
          d.flush();
          return ok;
        },
      };
    }
    const net = new NetStack(driver, { hosts: hostsFile });
    const host: SimNetworkHost = {
      name,
      address: `192.0.2.${n}`,
      address6: `2001:db8::${n}`,
      net,
      createServer: net.createServer.bind(net),
      connect: net.connect.bind(net),
      stack,
      driver,
      offload,
      flush: () => {
        driver.flush();
      },
    };
    return { host, node };
  };
  const a = build(names[0], 1);
  const b = build(names[1], 2);
  const forward = faultProfile(options.link ?? {}, mtu);
  const reverse = options.link?.reverse;
  const link = buildDuplexLink(a.node.port(0), b.node.port(0), {
    scheduler: sim.scheduler,
    prng: linkRng,
    profile: forward,
    ...(reverse === undefined ? {} : { reverse: faultProfile(reverse, mtu) }),
    ...options.tap,
  });
  a.node.attach(0, link.aToB);
  b.node.attach(0, link.bToA);
  const hosts = [a.host, b.host] as const;
  const label = `seed ${seed}`;
  const at = (ms: number): Instant => {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new UsageError(`run: bad virtual time ${ms} ms`);
    return Instant.fromMicros(msToUs(ms));
  };
  return {
    seed,
    label,
    hosts,
    link,
    sim,
    get nowMs() {
      return sim.now / 1000;
    },
    host(name) {
      const h = hosts.find((x) => x.name === name);
      if (h === undefined) throw new ConfigError(`no host "${name}" (hosts: ${names.join(", ")})`);
      return h;
    },
    run(untilMs) {
      const when = at(untilMs); // misuse throws here, not as a rejection
      return new Promise((resolve) => {
        sim.timer(when, resolve);
      });
    },
    runUntil(predicate, o = {}) {
      const step = msToUs(o.stepMs ?? 1);
      const deadline = sim.now + msToUs(o.timeoutMs ?? 60_000);
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (predicate()) {
            resolve();
            return;
          }
          if (sim.now >= deadline) {
            reject(
              new SimTimeoutError(
                `runUntil: the condition did not hold within ${o.timeoutMs ?? 60_000} ms of virtual time (${label})`,
              ),
            );
            return;
          }
          sim.timer(Instant.fromMicros(Math.min(deadline, sim.now + step)), check);
        };
        check();
      });
    },
    idle: () => sim.idle(),
    stop() {
      sim.stop();
    },
  };
}
