/**
 * The hosts of the simulator's one Ethernet segment: host `n` has MAC 02:00:00:00:00:0n and the
 * addresses 192.0.2.n/24 and, when the link can carry IPv6 (MTU 1280 or more, RFC 8200 section
 * 5), 2001:db8::n/64, on one interface `eth0`. Every simulated world, pair and network builds its
 * stacks here, so they all agree on the addressing.
 */
import { HostStack, type RandomSource } from "../host/stack.js";
import type { TcpConfig } from "../tcp/config.js";
import type { ChecksumCapabilities } from "../wire/checksum.js";
import { type MacAddr, mac } from "../wire/ethernet.js";
import { ip } from "../wire/ip-addr.js";

/** How to build host `n` of the segment. */
export interface SegmentHostOptions {
  readonly tcp: TcpConfig;
  readonly random: RandomSource;
  /** Link MTU (default 1500). */
  readonly mtu?: number | undefined;
  /** Give the host its IPv6 address (default: when the MTU allows it). */
  readonly ipv6?: boolean | undefined;
  /** Checksum offloads of the interface (default: the stack's). */
  readonly checksum?: ChecksumCapabilities | undefined;
  /** The SYN queue limit (default: the stack's). */
  readonly synQueueLimit?: number | undefined;
}

/** The MAC of host `n` of the segment (1..9). */
export function segmentMac(n: number): MacAddr {
  return mac(`02:00:00:00:00:0${n}`);
}

/** Host `n` (1..9) of the simulated segment. */
export function segmentHost(n: number, o: SegmentHostOptions): HostStack {
  const mtu = o.mtu ?? 1500;
  const v6 = o.ipv6 ?? mtu >= 1280;
  return new HostStack({
    interfaces: [
      {
        name: "eth0",
        link: "ethernet",
        mac: segmentMac(n),
        mtu,
        addresses: [
          { addr: ip(`192.0.2.${n}`), prefixLen: 24 },
          ...(v6 ? [{ addr: ip(`2001:db8::${n}`), prefixLen: 64 }] : []),
        ],
        ...(o.checksum === undefined ? {} : { checksum: o.checksum }),
      },
    ],
    tcp: o.tcp,
    random: o.random,
    ...(o.synQueueLimit === undefined ? {} : { synQueueLimit: o.synQueueLimit }),
  });
}
