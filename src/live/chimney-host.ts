/**
 * A live chimney host: our `HostStack` with an `OffloadManager` and a `SoftwareTarget` in front
 * of it, on real time, attached through a TAP device to the real Linux kernel in a namespace,
 * with `NetStack` sockets on top.
 *
 * The topology is the chimney's (as `src/sim/offload-node.ts` on virtual time): the target is the
 * NIC, so frames flow kernel -> TAP -> target -> (non-offload path) stack, and stack -> target
 * (`sendFrame`) -> TAP. Offloaded connections are run by the target itself. The driver is the
 * socket layer's `RealTimeDriver` with the chimney in front of the stack: every wake-up (frames
 * read, a timer, a socket call) settles the chimney node (src/node) and re-arms one Node timer at
 * the earliest of the stack's and the target's deadlines. Frames to the TAP leave in one write at
 * the end of the current job.
 */
import { acceptAllKnobs, type OffloadManager, type ReceiveKnobs } from "../host/offload-manager.js";
import { HostStack } from "../host/stack.js";
import type { BufferLedger } from "../nbl/ledger.js";
import { createChimney } from "../node/chimney-node.js";
import { Prng } from "../sim/prng.js";
import { RealTimeDriver } from "../socket/driver.js";
import { NetStack } from "../socket/net-stack.js";
import type { SoftwareTarget } from "../offload-target/software-target.js";
import { tcpConfig, type TcpConfig } from "../tcp/config.js";
import { mac } from "../wire/ethernet.js";
import { ip } from "../wire/ip-addr.js";
import { createTapNamespace, LIVE_ADDRS, type TapNamespace } from "./netns.js";
import type { TapMode } from "./tap.js";

/** Options of `startLiveChimneyHost`. */
export interface LiveChimneyHostOptions {
  /** Part of the namespace name. */
  readonly tag?: string | undefined;
  /** Seed of the stack's randomness and of the receive knobs (default 1). */
  readonly seed?: number | undefined;
  /** TCP configuration overrides (our stack and the target's engines). */
  readonly tcp?: Partial<TcpConfig> | undefined;
  /** MTU of both sides (default 1500). */
  readonly mtu?: number | undefined;
  /** TAP attachment (default `addon`). */
  readonly mode?: TapMode | undefined;
  /** How the host consumes offloaded receive data (default: accept every indication). */
  readonly knobs?: ((random: Prng) => ReceiveKnobs) | undefined;
}

/** A running live chimney host. */
export interface LiveChimneyHost {
  /** The namespace with the kernel peer in it. */
  readonly netns: TapNamespace;
  /** The seed in use (print it in failures). */
  readonly seed: number;
  /** Our sockets. */
  readonly net: NetStack;
  /** The driver running stack and target. */
  readonly driver: RealTimeDriver;
  /** Our stack. */
  readonly stack: HostStack;
  /** The host half of the chimney. */
  readonly manager: OffloadManager;
  /** The NIC half of the chimney. */
  readonly target: SoftwareTarget;
  /** The buffer ledger shared by manager and target (check `assertQuiescent()` at the end). */
  readonly ledger: BufferLedger;
  /** A one-line description for failure messages: namespace and seed. */
  readonly label: string;
  /** Stops the driver and removes the namespace (idempotent). */
  close(): void;
}

/** Creates the namespace and the TAP device, and starts stack + target on it. Needs root. */
export function startLiveChimneyHost(options: LiveChimneyHostOptions = {}): LiveChimneyHost {
  const seed = options.seed ?? 1;
  const mtu = options.mtu ?? 1500;
  const netns = createTapNamespace({ tag: options.tag, mode: options.mode, mtu });
  try {
    return build(netns, seed, mtu, options);
  } catch (e) {
    netns.close();
    throw e;
  }
}

function build(
  netns: TapNamespace,
  seed: number,
  mtu: number,
  options: LiveChimneyHostOptions,
): LiveChimneyHost {
  const root = new Prng(seed);
  const ourMac = mac("02:00:00:00:00:02");
  const tcp = tcpConfig({ ...options.tcp });
  const stack = new HostStack({
    interfaces: [
      {
        name: "tap0",
        link: "ethernet",
        mac: ourMac,
        mtu,
        addresses: [
          { addr: ip(LIVE_ADDRS.ours4), prefixLen: 24 },
          { addr: ip(LIVE_ADDRS.ours6), prefixLen: 64 },
        ],
      },
    ],
    tcp,
    random: root.fork(),
  });
  const knobRng = root.fork();
  const knobs = options.knobs?.(knobRng) ?? acceptAllKnobs({ nextU32: () => knobRng.nextU32() });
  const { manager, target, ledger } = createChimney(stack, { mac: ourMac, knobs });

  const tap = netns.tap;
  let closed = false;
  let txq: Uint8Array[] = [];
  let txQueued = false;
  const writeOut = (): void => {
    txQueued = false;
    if (closed || txq.length === 0) return;
    const batch = txq;
    txq = [];
    tap.write(batch);
  };
  const driver = new RealTimeDriver(
    stack,
    {
      transmit(_ifIndex, frame) {
        txq.push(frame);
        if (!txQueued) {
          txQueued = true;
          queueMicrotask(writeOut);
        }
      },
    },
    { chimney: { manager, target } },
  );
  tap.start(
    (frames) => {
      if (!closed) driver.receiveBatch(0, frames);
    },
    (code) => {
      if (!closed) process.emitWarning(`TAP read failed: ${code}`);
    },
  );
  const net = new NetStack(driver, { hosts: { kernel: LIVE_ADDRS.kernel4, kernel6: LIVE_ADDRS.kernel6 } });
  return {
    netns,
    seed,
    net,
    driver,
    stack,
    manager,
    target,
    ledger,
    label: `namespace ${netns.ns}, seed ${seed}`,
    close() {
      if (closed) return;
      writeOut();
      closed = true;
      driver.stop();
      netns.close();
    },
  };
}
