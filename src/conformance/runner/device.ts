/**
 * The network side of the device under test: how packets from a script reach the host stack,
 * how the stack's packets come back, and how time runs. Two devices exist:
 * - `HostDevice`: the host stack alone on a TUN-like link (bare IP in and out).
 * - `OffloadDevice`: the chimney. The stack has an Ethernet interface behind a `SoftwareTarget`
 *   (the NIC) and an `OffloadManager`, wired as the simulator wires them
 *   (both are a `ChimneyNode`, src/node): packets from the script enter the target, which runs
 *   offloaded connections itself and indicates everything else up to the stack; the stack's
 *   frames leave through the target; the target's frames feed the script. The script still sees
 *   bare IP packets: inbound ones are framed (gateway MAC -> our MAC), outbound frames lose
 *   their Ethernet header. The gateway's neighbor entry is pinned (reachable for longer than
 *   any script runs), so no ARP or Neighbor Discovery traffic reaches the wire.
 *
 * Time is virtual microseconds (`Instant`); nothing here reads a clock.
 */
import { type HostConn, type HostStack, type StackEvent } from "../../host/stack.js";
import { acceptAllKnobs, type OffloadManager, type OffloadStats } from "../../host/offload-manager.js";
import type { NeighborConfig } from "../../host/neighbor.js";
import type { BufferLedger } from "../../nbl/ledger.js";
import { ChimneyNode, createChimney } from "../../node/chimney-node.js";
import type { RandomSource } from "../../host/stack.js";
import type { SoftwareTarget } from "../../offload-target/software-target.js";
import type { TcpConfig } from "../../tcp/config.js";
import { Duration, Instant } from "../../time/instant.js";
import { ETHER_TYPE_NUMBERS, ETHER_TYPE_VLAN, type MacAddr, mac } from "../../wire/ethernet.js";
import type { IpAddr } from "../../wire/ip-addr.js";

/** How the device under test runs its connections. */
export type DutMode = "host" | "offload";

/** The interface MAC of the DUT in offload mode. */
export const DUT_MAC: MacAddr = mac("02:00:00:00:0d:01");
/** The gateway's MAC in offload mode (every remote address is reached through it). */
export const GATEWAY_MAC: MacAddr = mac("02:00:00:00:0d:02");

/**
 * Neighbor timing of the DUT in offload mode: entries stay REACHABLE far longer than any script
 * runs, so the pinned gateway entry never goes STALE and is never probed.
 */
export const PINNED_NEIGHBOR_CONFIG: NeighborConfig = {
  reachableTime: Duration.fromSeconds(10_000_000),
  retransTimer: Duration.fromSeconds(1),
  delayFirstProbe: Duration.fromSeconds(10_000_000),
  maxMulticastSolicit: 3,
  maxUnicastSolicit: 3,
  queueLimit: 3,
};

/** What the DUT's network side does; `ScriptRun` drives it. */
export interface DutDevice {
  readonly stack: HostStack;
  /** A bare IP packet from the script. */
  input(now: Instant, packet: Uint8Array): void;
  /**
   * Runs everything due now: each bare IP packet sent goes to `out`, each socket-level event
   * to `onEvent` (which may call the stack and the manager back).
   */
  pump(now: Instant, out: (packet: Uint8Array) => void, onEvent: (e: StackEvent) => void): void;
  /** The earliest deadline, or undefined. */
  deadline(now: Instant): Instant | undefined;
  /** Runs the deadlines at or before `now` (call `pump` after). */
  fire(now: Instant): void;
}

/**
 * A chimney node (src/node) as a device: the script's clock is the `now` of the latest call, and
 * each `pump` points the node's output at that call's callbacks.
 */
abstract class NodeDevice implements DutDevice {
  readonly node: ChimneyNode;
  #now: Instant = Instant.ZERO;
  #out: (packet: Uint8Array) => void = () => undefined;
  #onEvent: (e: StackEvent) => void = () => undefined;

  constructor(
    stack: HostStack,
    chimney?: { readonly manager: OffloadManager; readonly target: SoftwareTarget },
  ) {
    this.node = new ChimneyNode(
      stack,
      () => this.#now,
      {
        transmit: (_ifIndex, frame) => {
          this.emit(frame, this.#out);
        },
        event: (e) => {
          this.#onEvent(e);
        },
      },
      chimney,
    );
  }

  get stack(): HostStack {
    return this.node.stack;
  }

  /** A frame the node put on the wire, as the script's packet (or dropped). */
  protected abstract emit(frame: Uint8Array, out: (packet: Uint8Array) => void): void;

  /** A packet from the script as the frame the node takes. */
  protected abstract frame(packet: Uint8Array): Uint8Array;

  /** See `DutDevice.input`. */
  input(now: Instant, packet: Uint8Array): void {
    this.#now = now;
    this.node.input(0, this.frame(packet));
  }

  /** See `DutDevice.pump`. */
  pump(now: Instant, out: (packet: Uint8Array) => void, onEvent: (e: StackEvent) => void): void {
    this.#now = now;
    this.#out = out;
    this.#onEvent = onEvent;
    this.node.settle();
  }

  /** See `DutDevice.deadline`. */
  deadline(now: Instant): Instant | undefined {
    this.#now = now;
    return this.node.deadline();
  }

  /** See `DutDevice.fire`. */
  fire(now: Instant): void {
    this.#now = now;
    this.node.fire();
  }
}

/** The host stack alone on a TUN-like interface. */
export class HostDevice extends NodeDevice {
  protected emit(frame: Uint8Array, out: (packet: Uint8Array) => void): void {
    out(frame);
  }

  protected frame(packet: Uint8Array): Uint8Array {
    return packet;
  }
}

/** Options of an `OffloadDevice`. */
export interface OffloadDeviceOptions {
  /** The engine configuration of the target (the stack's, as in the simulator). */
  readonly tcpConfig: TcpConfig;
  /** Randomness of the manager's receive knobs (accept-all: only used by posts, none here). */
  readonly random: RandomSource;
  /** The gateway's IP address (its neighbor entry is pinned to `GATEWAY_MAC`). */
  readonly gateway: IpAddr;
  /** How long the target takes to complete a state operation (default 0). */
  readonly operationDelay?: Duration | undefined;
}

/** The host stack with an offload manager and a software offload target (the NIC). */
export class OffloadDevice extends NodeDevice {
  readonly manager: OffloadManager;
  readonly target: SoftwareTarget;
  readonly ledger: BufferLedger;
  /** Frames the stack sent that are not IP (ARP, ...): kept off the script's wire. */
  linkFramesDropped = 0;

  constructor(stack: HostStack, o: OffloadDeviceOptions) {
    const chimney = createChimney(stack, {
      mac: DUT_MAC,
      knobs: acceptAllKnobs(o.random),
      target: { tcpConfig: o.tcpConfig, operationDelay: o.operationDelay },
    });
    super(stack, chimney);
    this.manager = chimney.manager;
    this.target = chimney.target;
    this.ledger = chimney.ledger;
    stack.neighbors.confirm(stack.now, 0, o.gateway, GATEWAY_MAC, true, true);
  }

  /** Counters of the manager (initiates, terminates, ...). */
  get stats(): Readonly<OffloadStats> {
    return this.manager.stats;
  }

  /**
   * Starts offloading `c` if it can be offloaded now (ST-9 states only). Returns whether an
   * initiate was started (or queued behind an object in flight).
   */
  offload(c: HostConn): boolean {
    return this.manager.offload(c);
  }

  /** Script packets enter the target framed for our MAC. */
  protected frame(packet: Uint8Array): Uint8Array {
    return frameIp(packet, GATEWAY_MAC, DUT_MAC);
  }

  /** The target's frames lose their Ethernet header; non-IP ones stay off the script's wire. */
  protected emit(frame: Uint8Array, out: (packet: Uint8Array) => void): void {
    const ipPacket = unframeIp(frame);
    if (ipPacket === undefined) this.linkFramesDropped++;
    else out(ipPacket);
  }
}

/** `packet` (bare IPv4 or IPv6) in an Ethernet frame from `src` to `dst`. */
export function frameIp(packet: Uint8Array, src: MacAddr, dst: MacAddr): Uint8Array {
  const v6 = (packet[0] ?? 0) >> 4 === 6;
  const type = v6 ? ETHER_TYPE_NUMBERS.ipv6 : ETHER_TYPE_NUMBERS.ipv4;
  const f = new Uint8Array(14 + packet.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(packet, 14);
  return f;
}

/**
 * The IP packet of an Ethernet frame (VLAN tag skipped, padding cut by the IP length), or
 * undefined when the frame carries something else or is too short.
 */
export function unframeIp(frame: Uint8Array): Uint8Array | undefined {
  if (frame.length < 14) return undefined;
  let at = 12;
  let type = ((frame[at] ?? 0) << 8) | (frame[at + 1] ?? 0);
  if (type === ETHER_TYPE_VLAN) {
    at += 4;
    type = ((frame[at] ?? 0) << 8) | (frame[at + 1] ?? 0);
  }
  const body = frame.subarray(at + 2);
  if (type === ETHER_TYPE_NUMBERS.ipv4 && body.length >= 20) {
    const len = ((body[2] ?? 0) << 8) | (body[3] ?? 0);
    return body.subarray(0, Math.min(len, body.length));
  }
  if (type === ETHER_TYPE_NUMBERS.ipv6 && body.length >= 40) {
    const len = 40 + (((body[4] ?? 0) << 8) | (body[5] ?? 0));
    return body.subarray(0, Math.min(len, body.length));
  }
  return undefined;
}
