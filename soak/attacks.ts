/**
 * The soak's raw attack frames, made with our own wire encoders (src/wire) from a seeded stream,
 * as an on-link attacker in the kernel's namespace would put them on the TAP link:
 * - `synFlood`: SYNs to the served port from random sources (on-link IPv4 and IPv6 addresses,
 *   the kernel's own address with random ports, off-link addresses), a few to closed ports;
 * - `neighborFlood`: ARP requests from random senders (most for our address, some for other
 *   hosts) and IPv6 neighbor solicitations for our address from random sources;
 * - `icmpTooBig`: forged ICMPv4 fragmentation-needed and ICMPv6 packet-too-big quoting random
 *   flows, and the live flows of our stack with sequence numbers an off-path attacker guesses;
 * - `malformed`: valid frames of every kind with random bytes changed, cut short or garbage.
 * The attacker's addresses never include the kernel's or ours as a sender of ARP / ND (that would
 * be spoofing the neighbors themselves, a different attack).
 */
import type { HostConn } from "../src/host/stack.js";
import type { Prng } from "../src/sim/prng.js";
import { MAC_BROADCAST, type MacAddr } from "../src/wire/ethernet.js";
import { solicitedNodeMulticast } from "../src/wire/icmpv6.js";
import { type IpAddr, ip } from "../src/wire/ip-addr.js";
import { emitArpFrame, emitIcmpv4Packet, emitIcmpv6Packet, emitTcpPacket } from "../src/wire/packet.js";
import { Seq } from "../src/wire/seq.js";
import { TcpFlag, type TcpRepr } from "../src/wire/tcp-repr.js";

/** The link as the attacker sees it. */
export interface AttackLink {
  /** Our stack's MAC (frames are sent to it). */
  readonly ourMac: MacAddr;
  readonly ours4: IpAddr;
  readonly ours6: IpAddr;
  readonly kernel4: IpAddr;
  readonly kernel6: IpAddr;
  /** The kernel interface's MAC (a source of some frames). */
  readonly kernelMac: MacAddr;
  /** The served port. */
  readonly port: number;
}

/** Makes one attack frame per call. */
export type FrameMaker = (rnd: Prng) => Uint8Array;

/** The attacks, by name. */
export type AttackName = "syn-flood" | "neighbor-flood" | "icmp-too-big" | "malformed";

function randomMac(r: Prng): MacAddr {
  const m = new Uint8Array(6);
  for (let i = 0; i < 6; i++) m[i] = r.nextU32() & 0xff;
  m[0] = ((m[0] ?? 0) & 0xfe) | 0x02; // unicast, locally administered
  return m;
}

/** An on-link IPv4 source: 192.0.2.3 .. 192.0.2.254 (not the kernel's .1, not our .2). */
function onLink4(r: Prng): IpAddr {
  return Uint8Array.of(192, 0, 2, r.between(3, 254));
}

/** An off-link IPv4 address in 10.0.0.0/8. */
function offLink4(r: Prng): IpAddr {
  return Uint8Array.of(10, r.below(256), r.below(256), r.between(1, 254));
}

/** An on-link IPv6 source: 2001:db8::/64 with a random interface identifier (not ::1, ::2). */
function onLink6(r: Prng): IpAddr {
  const a = ip("2001:db8::");
  for (let i = 8; i < 16; i++) a[i] = r.nextU32() & 0xff;
  a[8] = (a[8] ?? 0) | 0x01; // never ::1 or ::2
  return a;
}

function tcp(fields: Partial<TcpRepr> & Pick<TcpRepr, "srcPort" | "dstPort" | "flags">): TcpRepr {
  return {
    seq: Seq.of(0),
    ack: Seq.of(0),
    window: 65535,
    urgent: 0,
    mss: undefined,
    windowScale: undefined,
    sackPermitted: false,
    sack: [],
    timestamps: undefined,
    unknownOptions: [],
    payload: new Uint8Array(0),
    ...fields,
  };
}

/** A SYN with the options a real client sends. */
function syn(r: Prng, dstPort: number): TcpRepr {
  return tcp({
    srcPort: r.between(1024, 65535),
    dstPort,
    flags: TcpFlag.SYN,
    seq: Seq.of(r.nextU32()),
    mss: 1460,
    windowScale: 7,
    sackPermitted: true,
    timestamps: { tsVal: r.nextU32(), tsEcr: 0 },
  });
}

/** SYNs from random sources; 1 in 16 to a closed port. */
export function synFlood(link: AttackLink): FrameMaker {
  return (r) => {
    const port = r.below(16) === 0 ? r.between(1, 65535) : link.port;
    const kind = r.below(8);
    const v6 = r.below(2) === 0;
    const spoofKernel = kind === 0; // the kernel's address, random ports: it answers our SYN-ACKs with RSTs
    const offLink = kind === 1 && !v6; // no route back: dropped by us
    const src = v6
      ? spoofKernel
        ? link.kernel6
        : onLink6(r)
      : spoofKernel
        ? link.kernel4
        : offLink
          ? offLink4(r)
          : onLink4(r);
    return emitTcpPacket({
      ip: { src, dst: v6 ? link.ours6 : link.ours4, ttl: 64, ident: r.below(65536) },
      tcp: syn(r, port),
      ethernet: { src: spoofKernel ? link.kernelMac : randomMac(r), dst: link.ourMac },
    });
  };
}

/** ARP requests (3 in 4 for our address) and neighbor solicitations for our address, random senders. */
export function neighborFlood(link: AttackLink): FrameMaker {
  return (r) => {
    const mac = randomMac(r);
    if (r.below(2) === 0) {
      const forUs = r.below(4) !== 0;
      return emitArpFrame({
        ethernet: { src: mac, dst: MAC_BROADCAST },
        arp: {
          operation: "request",
          senderHardwareAddr: mac,
          senderProtocolAddr: r.below(2) === 0 ? offLink4(r) : onLink4(r),
          targetHardwareAddr: new Uint8Array(6),
          targetProtocolAddr: forUs ? link.ours4 : onLink4(r),
        },
      });
    }
    const multicast = r.below(2) === 0;
    const dst = multicast ? solicitedNodeMulticast(link.ours6) : link.ours6;
    const dstMac = multicast
      ? Uint8Array.of(0x33, 0x33, 0xff, dst[13] ?? 0, dst[14] ?? 0, dst[15] ?? 0)
      : link.ourMac;
    return emitIcmpv6Packet({
      ip: { src: onLink6(r), dst, ttl: 255 },
      icmp: { type: "neighbor-solicitation", target: link.ours6, sourceLinkAddr: mac, otherOptions: [] },
      ethernet: { src: mac, dst: dstMac },
    });
  };
}

/** The quoted start of a TCP packet we would have sent: IP header and the first 8 TCP bytes. */
function quote(src: IpAddr, dst: IpAddr, srcPort: number, dstPort: number, seq: number): Uint8Array {
  const pkt = emitTcpPacket({
    ip: { src, dst, ttl: 64 },
    tcp: tcp({ srcPort, dstPort, flags: TcpFlag.ACK, seq: Seq.of(seq), payload: new Uint8Array(1400) }),
  });
  return pkt.slice(0, (src.length === 4 ? 20 : 40) + 8);
}

/**
 * Forged too-big messages. Half quote a random flow from our address to a random destination;
 * half quote one of our live connections (`live()`, the stack's table) with a random sequence
 * number, which an off-path attacker cannot know. The reported MTU is random (68 .. 1400).
 */
export function icmpTooBig(link: AttackLink, live: () => readonly HostConn[]): FrameMaker {
  return (r) => {
    const conns = live();
    const real = conns.length > 0 && r.below(2) === 0 ? conns[r.below(conns.length)] : undefined;
    const v6 = real !== undefined ? real.remoteAddr.length === 16 : r.below(2) === 0;
    const mtu = r.between(68, 1400);
    const q =
      real !== undefined
        ? quote(real.localAddr, real.remoteAddr, real.localPort, real.remotePort, r.nextU32())
        : v6
          ? quote(link.ours6, onLink6(r), link.port, r.between(1024, 65535), r.nextU32())
          : quote(
              link.ours4,
              r.below(2) === 0 ? offLink4(r) : onLink4(r),
              link.port,
              r.between(1024, 65535),
              r.nextU32(),
            );
    const mac = randomMac(r);
    if (v6) {
      return emitIcmpv6Packet({
        ip: { src: r.below(2) === 0 ? link.kernel6 : onLink6(r), dst: link.ours6, ttl: 64 },
        icmp: { type: "packet-too-big", mtu: Math.max(mtu, 1280 - r.below(400)), quoted: q },
        ethernet: { src: mac, dst: link.ourMac },
      });
    }
    return emitIcmpv4Packet({
      ip: { src: r.below(2) === 0 ? link.kernel4 : onLink4(r), dst: link.ours4, ttl: 64 },
      icmp: { type: "dst-unreachable", code: "frag-needed", nextHopMtu: mtu, quoted: q },
      ethernet: { src: mac, dst: link.ourMac },
    });
  };
}

/** A valid frame of a random kind, to be damaged. */
function template(link: AttackLink, r: Prng): Uint8Array {
  const mac = randomMac(r);
  switch (r.below(6)) {
    case 0:
    case 1: {
      const v6 = r.below(2) === 0;
      const flags = [
        TcpFlag.SYN,
        TcpFlag.ACK,
        TcpFlag.ACK | TcpFlag.PSH,
        TcpFlag.RST,
        TcpFlag.FIN | TcpFlag.ACK,
      ][r.below(5)];
      return emitTcpPacket({
        ip: { src: v6 ? onLink6(r) : onLink4(r), dst: v6 ? link.ours6 : link.ours4, ttl: 64 },
        tcp: tcp({
          srcPort: r.between(1024, 65535),
          dstPort: r.below(2) === 0 ? link.port : r.between(1, 65535),
          flags: flags ?? TcpFlag.ACK,
          seq: Seq.of(r.nextU32()),
          ack: Seq.of(r.nextU32()),
          mss: r.below(2) === 0 ? 1460 : undefined,
          windowScale: r.below(2) === 0 ? 7 : undefined,
          sackPermitted: r.below(2) === 0,
          timestamps: r.below(2) === 0 ? { tsVal: r.nextU32(), tsEcr: r.nextU32() } : undefined,
          payload: new Uint8Array(r.below(200)),
        }),
        ethernet: { src: mac, dst: link.ourMac },
      });
    }
    case 2:
      return emitIcmpv4Packet({
        ip: { src: onLink4(r), dst: link.ours4 },
        icmp: {
          type: "echo-request",
          ident: r.below(65536),
          seqNo: r.below(65536),
          data: new Uint8Array(r.below(100)),
        },
        ethernet: { src: mac, dst: link.ourMac },
      });
    case 3:
      return emitIcmpv6Packet({
        ip: { src: onLink6(r), dst: link.ours6 },
        icmp: {
          type: "echo-request",
          ident: r.below(65536),
          seqNo: r.below(65536),
          data: new Uint8Array(r.below(100)),
        },
        ethernet: { src: mac, dst: link.ourMac },
      });
    case 4:
      return emitArpFrame({
        ethernet: { src: mac, dst: MAC_BROADCAST },
        arp: {
          operation: "request",
          senderHardwareAddr: mac,
          senderProtocolAddr: offLink4(r),
          targetHardwareAddr: new Uint8Array(6),
          targetProtocolAddr: link.ours4,
        },
      });
    default:
      return icmpTooBig(link, () => [])(r);
  }
}

/**
 * Damaged frames: a valid frame of a random kind with 1 to 8 random bytes changed past the
 * Ethernet addresses (header lengths, checksums, option lengths, EtherTypes), cut short, grown
 * with garbage, or a frame of random bytes after a valid Ethernet header. Never shorter than an
 * Ethernet header (a packet socket refuses those).
 */
export function malformed(link: AttackLink): FrameMaker {
  return (r) => {
    const f = template(link, r);
    switch (r.below(4)) {
      case 0: {
        const out = f.slice();
        const n = r.between(1, 8);
        for (let i = 0; i < n; i++) out[r.between(12, out.length - 1)] = r.nextU32() & 0xff;
        return out;
      }
      case 1:
        return f.slice(0, r.between(14, Math.max(14, f.length - 1)));
      case 2: {
        const out = new Uint8Array(f.length + r.between(1, 64));
        out.set(f);
        for (let i = f.length; i < out.length; i++) out[i] = r.nextU32() & 0xff;
        // the IP length fields now disagree with the frame
        return out;
      }
      default: {
        const out = new Uint8Array(r.between(14, 200));
        out.set(f.subarray(0, 12));
        const types = [0x0800, 0x86dd, 0x0806, 0x8100, r.below(65536)];
        const t = types[r.below(types.length)] ?? 0x0800;
        out[12] = t >> 8;
        out[13] = t & 0xff;
        for (let i = 14; i < out.length; i++) out[i] = r.nextU32() & 0xff;
        return out;
      }
    }
  };
}
