/**
 * A live chimney host: our `HostStack` with an `OffloadManager` and a `SoftwareTarget` in front
 * of it, on real time, attached through a TAP device to the real Linux kernel in a namespace,
 * with `NetStack` sockets on top. It is `startLiveHost` with the chimney asked for (live-host.ts
 * builds both): the target is the NIC, so frames flow kernel -> TAP -> target -> (non-offload
 * path) stack, and stack -> target (`sendFrame`) -> TAP. Offloaded connections are run by the
 * target itself; the driver settles the chimney node (src/node) on every wake-up.
 */
import type { OffloadManager, ReceiveKnobs } from "../host/offload-manager.js";
import type { BufferLedger } from "../nbl/ledger.js";
import { SoftwareTarget } from "../offload-target/software-target.js";
import type { Prng } from "../sim/prng.js";
import type { TcpConfig } from "../tcp/config.js";
import { InvariantViolation } from "../util/errors.js";
import { type LiveHost, startLiveHost } from "./live-host.js";
import type { TapMode } from "../device/tap.js";

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

/** A running live chimney host: a live host with its chimney parts at hand. */
export interface LiveChimneyHost extends LiveHost {
  /** The host half of the chimney. */
  readonly manager: OffloadManager;
  /** The NIC half of the chimney. */
  readonly target: SoftwareTarget;
  /** The buffer ledger shared by manager and target (check `assertQuiescent()` at the end). */
  readonly ledger: BufferLedger;
}

/** Creates the namespace and the TAP device, and starts stack + target on it. Needs root. */
export function startLiveChimneyHost(options: LiveChimneyHostOptions = {}): LiveChimneyHost {
  const host = startLiveHost({
    tag: options.tag,
    seed: options.seed,
    tcp: options.tcp,
    mtu: options.mtu,
    mode: options.mode,
    chimney: { knobs: options.knobs },
  });
  const chimney = host.chimney;
  if (chimney === undefined || !(chimney.target instanceof SoftwareTarget))
    throw new InvariantViolation("startLiveHost built no chimney with the software target");
  return { ...host, manager: chimney.manager, target: chimney.target, ledger: chimney.ledger };
}
