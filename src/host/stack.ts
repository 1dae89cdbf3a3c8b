/**
 * The host stack: interfaces, ARP and IPv6 neighbor discovery, IPv4/IPv6, ICMP, path MTU and
 * the TCP connection table, around the shared TCP engine. Sans-I/O like everything in the
 * core: frames come in through `handleFrame(now, ifIndex, frame)`, deadlines through
 * `handleTimeout(now)`; frames go out through `pollTransmit(now)`, socket-level events through
 * `pollEvent()`, and `pollTimeout()` says when to call back.
 *
 * Theory of operation
 * - Every connection is a `HostConn`: its 4-tuple, its route (interface, next hop, path MTU),
 *   and, while it lives on the host, its `TcpConnection`. The table maps the 4-tuple to it.
 *   Listeners map (local address or any, port) to a `HostListener` with bounded SYN and accept
 *   queues.
 * - User calls (`send`, `recv`, `close`, ...) go through the stack so it knows which
 *   connections have output: a call marks the connection *dirty*; `pollTransmit` drains dirty
 *   connections' segments into frames, `pollEvent` their events.
 * - Timers: each connection's deadline is kept in one min-heap with lazy deletion (an entry is
 *   live only while it equals the connection's current deadline), so a timeout costs
 *   O(log n) whatever the number of connections.
 * - Frames to a neighbor whose link address is unknown wait in the neighbor cache (bounded)
 *   with the destination MAC left blank, and are patched and released when it resolves.
 * - Bad input is dropped and counted in `stats` (never thrown): undecodable frames, bad
 *   checksums, packets for other hosts, fragments (not reassembled), unknown protocols.
 *
 * Size: one class, because the connection table, the timer heap, the output queue and the
 *   neighbor and path caches are one piece of state that every inbound frame and every socket
 *   call touches; the TCP engine, the caches and the offload manager already live elsewhere.
 *   Splitting the class further would pass that state around, not reduce it.
 */
import { Duration, Instant } from "../time/instant.js";
import { assert, ConfigError, StackError, UsageError } from "../util/errors.js";
import { MinHeap } from "../util/heap.js";
import type { ArpRepr } from "../wire/arp.js";
import { ChecksumCapabilities, rxVerified } from "../wire/checksum.js";
import {
  isBroadcastMac,
  MAC_BROADCAST,
  MAC_ZERO,
  type MacAddr,
  macEquals,
  ipv6MulticastMac,
} from "../wire/ethernet.js";
import { parseIcmpQuote } from "../wire/icmp-quote.js";
import type { Icmpv4Repr } from "../wire/icmpv4.js";
import { type Icmpv6Repr, solicitedNodeMulticast } from "../wire/icmpv6.js";
import { type IpAddr, ipEquals, ipInPrefix, ipKey, ipToString } from "../wire/ip-addr.js";
import type { Ipv4Repr } from "../wire/ipv4.js";
import type { Ipv6Repr } from "../wire/ipv6.js";
import {
  type DecodedPacket,
  decodeFrame,
  decodeIpPacket,
  decodeReassembled,
  emitArpFrame,
  emitIcmpv4Packet,
  emitIcmpv6Packet,
  emitTcpPacket,
  type EthernetSpec,
  type TcpPacketSpec,
} from "../wire/packet.js";
import { ECN_CE, ECN_ECT0, TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import type { TcpConfig } from "../tcp/config.js";
import { type ConnEvent, peerSynOf, replyToUnexpected, TcpConnection } from "../tcp/connection.js";
import { type HashKey, initialSeq, timestampOffset } from "../tcp/isn.js";
import { DEFAULT_MAX_ESTABLISHED, TcpListener } from "../tcp/listener.js";
import { FastOpenCache } from "../tcp/fast-open.js";
import type { IcmpErrorCode, TcpSnapshot, TcpState } from "../tcp/types.js";
import type { SeqNum } from "../wire/seq.js";
import { DEFAULT_NEIGHBOR_CONFIG, NeighborCache, type NeighborConfig } from "./neighbor.js";
import {
  type Fragment,
  FragmentReassembler,
  REASSEMBLY_TIMEOUT_V4_US,
  REASSEMBLY_TIMEOUT_V6_US,
  type ReassemblyStats,
} from "./ip-reassembly.js";
import { PathMtuCache } from "./path.js";
import { type NextHop, RouteTable } from "./route.js";

/** The randomness a host needs (ISN keys, timestamp offsets, ephemeral ports): a seeded stream. */
export interface RandomSource {
  nextU32(): number;
}

/** One address of an interface. */
export interface IfAddress {
  readonly addr: IpAddr;
  readonly prefixLen: number;
}

/** An interface. `link: "ethernet"` resolves neighbors; `"ip"` (a TUN-like link) sends bare IP. */
export interface InterfaceConfig {
  readonly name: string;
  readonly link: "ethernet" | "ip";
  readonly mac: MacAddr;
  readonly mtu: number;
  readonly addresses: readonly IfAddress[];
  /** What software computes and verifies; a simulated link that cannot corrupt may say NONE. */
  readonly checksum?: ChecksumCapabilities | undefined;
}

/** A static route (on-link routes for each interface address are added automatically). */
export interface StaticRoute {
  readonly prefix: IpAddr;
  readonly prefixLen: number;
  readonly gateway: IpAddr | undefined;
  readonly ifIndex: number;
  readonly metric?: number | undefined;
}

/** Everything a host is made of. */
export interface HostConfig {
  readonly interfaces: readonly InterfaceConfig[];
  readonly routes?: readonly StaticRoute[] | undefined;
  readonly tcp: TcpConfig;
  readonly random: RandomSource;
  /** Inclusive ephemeral port range (default 49152..65535, RFC 6335). */
  readonly ephemeralPorts?: readonly [number, number] | undefined;
  readonly neighbor?: NeighborConfig | undefined;
  /** How long a learned path MTU is kept (default 10 minutes, RFC 1191 6.3). */
  readonly pmtuAgeing?: Duration | undefined;
  /**
   * Most destinations with a learned path MTU (default 1024, `DEFAULT_PMTU_CACHE_SIZE`); when
   * full, learning another evicts the one learned longest ago.
   */
  readonly pmtuCacheSize?: number | undefined;
  /** IPv4 TTL / IPv6 hop limit of our packets (default 64). */
  readonly ttl?: number | undefined;
  /** Bound on half-open connections per listener (default 256). */
  readonly synQueueLimit?: number | undefined;
  /**
   * Whether an ICMP hard error may abort a connection in SYN-SENT (RFC 1122 4.2.3.9, RFC 5461;
   * default true). When false every ICMP error is soft.
   */
  readonly icmpMayAbort?: boolean | undefined;
}

/** Options of `HostStack.listen`. */
export interface HostListenOptions {
  /**
   * Most live connections born of the listener (default `DEFAULT_MAX_ESTABLISHED`, 16,384;
   * `Infinity` for no cap). See `HostListener.maxEstablished`.
   */
  readonly maxEstablished?: number | undefined;
}

/** Socket-level error codes, as Node and POSIX spell them. */
export type SocketErrorCode = "EADDRINUSE" | "EADDRNOTAVAIL" | "ENETUNREACH" | "EINVAL";

/** A socket call that cannot be carried out (address in use, no route, ...). */
export class SocketError extends StackError {
  readonly code = "ERR_SOCKET";
  readonly errno: SocketErrorCode;
  constructor(errno: SocketErrorCode, message: string) {
    super(`${errno}: ${message}`);
    this.errno = errno;
  }
}

/**
 * Where a connection lives; the chimney's offload manager moves it between these. "host": the
 * host engine runs it. "offloading": an InitiateOffload is in flight (no I/O to the target, IO-3;
 * segments are held, IO-4). "offloaded": the target runs it. "terminating": a TerminateOffload is
 * in flight (segments indicated up are held for the host, TM-24).
 */
export type ConnPhase = "host" | "offloading" | "offloaded" | "terminating";

/**
 * What the stack asks of an offload manager for connections that are not on the host (phase
 * other than "host"). Installed with `HostStack.attachOffload`; every method is called only
 * for such connections.
 */
export interface OffloadHooks {
  /** `HostStack.send` for a connection off the host: returns the bytes taken. */
  send(now: Instant, c: HostConn, data: Uint8Array): number;
  /** `HostStack.recv`. */
  recv(now: Instant, c: HostConn, max: number | undefined): Uint8Array | undefined;
  /** Bytes `recv` can return now. */
  readable(c: HostConn): number;
  /** `HostStack.close`. */
  close(now: Instant, c: HostConn): void;
  /** `HostStack.abort`. */
  abort(now: Instant, c: HostConn): void;
  /** `HostStack.configure`. */
  configure(now: Instant, c: HostConn, change: (tcp: TcpConnection) => void): void;
  /** A TCP segment arrived through the host for a connection off the host. */
  segment(now: Instant, c: HostConn, seg: TcpRepr, src: IpAddr, dst: IpAddr): void;
  /** The path MTU toward the connection's peer changed (ICMP, spec 9.1). */
  pathMtuChanged(now: Instant, c: HostConn, pmtu: number): void;
  /** Called at the start of every `pollTransmit`/`pollEvent`/`pollTimeout`: deferred work. */
  flush(now: Instant): void;
  /** The manager's earliest deadline, if any. */
  pollTimeout(): Instant | undefined;
  /** Runs the manager's deadlines at or before `now`. */
  handleTimeout(now: Instant): void;
}

/** A connection of this host. The TCP engine is `tcp` while the connection lives on the host. */
export class HostConn {
  readonly id: number = 0;
  readonly localAddr: IpAddr;
  readonly localPort: number = 0;
  readonly remoteAddr: IpAddr;
  readonly remotePort: number = 0;
  readonly ifIndex: number = 0;
  readonly nextHop: IpAddr;
  /** The listener that accepted it, until it has been handed to the application. */
  listener: HostListener | undefined;
  /**
   * The listener whose established cap this connection counts against: set when a passive
   * open completes its handshake, kept until the connection leaves the table.
   */
  origin: HostListener | undefined = undefined;
  tcp: TcpConnection | undefined;
  phase: ConnPhase = "host";
  /** The deadline currently in the timer heap (lazy deletion compares against it). */
  deadline: Instant | undefined = undefined;
  /**
   * NS-4: the last ICMP error (quoted sequence number and meaning) that arrived while the
   * connection was off the host; the engine gets it when the connection comes back.
   */
  offloadedIcmp: { readonly seq: SeqNum; readonly code: IcmpErrorCode } | undefined = undefined;
  dirty = false;
  connected = false;
  /** Set once the application owns it (connect, or accept delivered). */
  announced = false;
  readonly key: string;
  /** What every segment's packet shares (addresses, TTL, link header), made on first send. */
  emitSpec: Omit<TcpPacketSpec, "tcp"> | undefined = undefined;
  /** `emitSpec`'s IP header marked ECT(0), for the new data of an ECN connection (RFC 3168). */
  emitIpEct: TcpPacketSpec["ip"] | undefined = undefined;

  constructor(
    id: number,
    local: IpAddr,
    localPort: number,
    remote: IpAddr,
    remotePort: number,
    hop: NextHop,
    key: string,
  ) {
    this.id = id;
    this.localAddr = local;
    this.localPort = localPort;
    this.remoteAddr = remote;
    this.remotePort = remotePort;
    this.ifIndex = hop.ifIndex;
    this.nextHop = hop.via;
    this.key = key;
    this.listener = undefined;
    this.tcp = undefined;
  }

  /** The engine, which must be here (the connection is not offloaded). */
  get engine(): TcpConnection {
    const t = this.tcp;
    if (t === undefined) throw new UsageError(`connection ${this.id} is ${this.phase}: no host TCP engine`);
    return t;
  }

  /** `addr:port > addr:port`, for traces and errors. */
  toString(): string {
    return `${fmtEndpoint(this.localAddr, this.localPort)} > ${fmtEndpoint(this.remoteAddr, this.remotePort)}`;
  }
}

/** A listening socket. */
export class HostListener {
  readonly id: number = 0;
  readonly addr: IpAddr | undefined;
  readonly port: number = 0;
  readonly backlog: number = 0;
  /**
   * Most connections born of this listener alive at once: past the handshake (waiting for
   * `accept`, accepted, closing, in TIME-WAIT) and still in the stack's table, offloaded ones
   * included. At the cap, SYNs and handshake-completing ACKs are dropped (`dropEstablishedCap`),
   * as with a full accept queue: peers retransmit and get in once connections are freed.
   */
  readonly maxEstablished: number = 0;
  /** Connections born of this listener that count against `maxEstablished` now. */
  established = 0;
  /** Connections in SYN-RECEIVED. */
  readonly pending = new Set<HostConn>();
  /** Established connections not yet accepted by the application. */
  readonly ready: HostConn[] = [];
  /**
   * Answers SYNs statelessly with SYN cookies once `pending` is full (RFC 4987 3.6), and turns
   * a valid cookie ACK back into a connection, so a SYN flood costs no memory.
   */
  readonly cookies: TcpListener;
  closed = false;

  constructor(
    id: number,
    addr: IpAddr | undefined,
    port: number,
    backlog: number,
    maxEstablished: number,
    cookies: TcpListener,
  ) {
    this.id = id;
    this.addr = addr;
    this.port = port;
    this.backlog = backlog;
    this.maxEstablished = maxEstablished;
    this.cookies = cookies;
  }

  /** True when no further connection may complete its handshake. */
  get atCap(): boolean {
    return this.established >= this.maxEstablished;
  }
}

/** What the application learns from `pollEvent()`. */
export type StackEvent =
  | { readonly kind: "accept"; readonly listener: HostListener; readonly conn: HostConn }
  | { readonly kind: "conn"; readonly conn: HostConn; readonly event: ConnEvent };

/** A frame to put on an interface. */
export interface OutFrame {
  readonly ifIndex: number;
  readonly frame: Uint8Array;
}

/** Drop and traffic counters of the host (per reason, so tests can tell drops apart). */
export interface HostStats {
  framesIn: number;
  framesOut: number;
  dropMalformed: number;
  dropBadChecksum: number;
  dropNotForUs: number;
  /**
   * Fragments discarded by reassembly (an overlap, RFC 5722; a malformed one; an IPv6
   * fragment header that does not end its chain). The rest is in `HostStack.reassemblyStats`.
   */
  dropFragment: number;
  dropUnknownProtocol: number;
  dropNoRoute: number;
  dropSynQueueFull: number;
  dropAcceptQueueFull: number;
  /**
   * SYNs and handshake-completing ACKs (a half-open connection's, a SYN cookie's) dropped
   * because their listener had `maxEstablished` connections alive.
   */
  dropEstablishedCap: number;
  rstsSent: number;
  icmpIn: number;
  icmpOut: number;
  /**
   * ICMP "fragmentation needed" / "packet too big" messages ignored: they quote no live TCP
   * connection of ours, or a sequence number outside its [SND.UNA, SND.MAX) (RFC 5927 4.1).
   */
  dropIcmpTooBig: number;
  arpIn: number;
  ndIn: number;
}

interface Iface {
  readonly index: number;
  readonly cfg: InterfaceConfig;
  readonly caps: ChecksumCapabilities;
  /** `caps` for frames whose IP and TCP checksums the device verified. */
  readonly rxCaps: ChecksumCapabilities;
  readonly ethernet: boolean;
}

interface TimerEntry {
  readonly at: Instant;
  readonly conn: HostConn;
}

const IPV4_HEADER = 20;
const IPV6_HEADER = 40;
const TCP_HEADER = 20;
const ETHERNET_HEADER = 14;
const DEFAULT_TTL = 64;
/** Default bound on half-open connections per listener (`HostConfig.synQueueLimit`). */
export const DEFAULT_SYN_QUEUE_LIMIT = 256;
/** Default accept queue of `HostStack.listen` (`backlog`). */
export const DEFAULT_ACCEPT_BACKLOG = 128;
/** Default ephemeral port range (`HostConfig.ephemeralPorts`, RFC 6335). */
export const DEFAULT_EPHEMERAL_PORTS: readonly [number, number] = Object.freeze([49152, 65535] as const);
/** Default lifetime of a learned path MTU (`HostConfig.pmtuAgeing`, RFC 1191 6.3). */
export const DEFAULT_PMTU_AGEING = Duration.fromSeconds(600);
const NEIGHBOR_TIMER_ID = -1;
/** States a connection may leave the host in through `handOff`. */
const HAND_OFF_STATES: ReadonlySet<TcpState> = new Set<TcpState>([
  "ESTABLISHED",
  "FIN-WAIT-1",
  "FIN-WAIT-2",
  "CLOSE-WAIT",
  "CLOSING",
  "LAST-ACK",
]);

/** A host: interfaces, neighbor cache, routes, path MTUs, TCP connections and listeners. */
export class HostStack {
  readonly stats: HostStats = {
    framesIn: 0,
    framesOut: 0,
    dropMalformed: 0,
    dropBadChecksum: 0,
    dropNotForUs: 0,
    dropFragment: 0,
    dropUnknownProtocol: 0,
    dropNoRoute: 0,
    dropSynQueueFull: 0,
    dropAcceptQueueFull: 0,
    dropEstablishedCap: 0,
    rstsSent: 0,
    icmpIn: 0,
    icmpOut: 0,
    dropIcmpTooBig: 0,
    arpIn: 0,
    ndIn: 0,
  };
  readonly neighbors: NeighborCache;
  /** Client TCP Fast Open: the cookies servers gave, by server address (RFC 7413). */
  readonly fastOpen = new FastOpenCache();
  readonly routes = new RouteTable();
  readonly paths: PathMtuCache;
  readonly tcpConfig: TcpConfig;
  /** Whether an ICMP hard error may abort a connection in SYN-SENT (see `HostConfig`). */
  icmpMayAbort: boolean;

  readonly #ifaces: Iface[];
  readonly #random: RandomSource;
  /** The RFC 6528 secret behind ISNs, timestamp offsets and SYN cookies. */
  readonly #isnKey: HashKey;
  readonly #ttl: number = 0;
  readonly #ephemeral: readonly [number, number];
  #offload: OffloadHooks | undefined;
  readonly #synQueueLimit: number = 0;
  readonly #conns = new Map<string, HostConn>();
  /**
   * The connection the latest segment was for: a one-entry cache in front of `#conns`, which a
   * bulk transfer hits for nearly every segment (no key string built). Cleared on removal.
   */
  #lastConn: HostConn | undefined = undefined;
  /** IP reassembly (RFC 791 3.2; RFC 8200 4.5 gives IPv6 60 s), bounded in memory. */
  readonly #reasm4 = new FragmentReassembler({ timeoutUs: REASSEMBLY_TIMEOUT_V4_US });
  readonly #reasm6 = new FragmentReassembler({ timeoutUs: REASSEMBLY_TIMEOUT_V6_US });
  readonly #listeners = new Map<string, HostListener>();
  /**
   * 4-tuples handed to another TCP implementation (`handOff`), with the count of their
   * segments dropped without an answer since; removed by `releaseHandOff`.
   */
  readonly #handedOff = new Map<string, { dropped: number }>();
  readonly #out: OutFrame[] = [];
  #outHead = 0;
  readonly #events: StackEvent[] = [];
  #eventHead = 0;
  #dirty: HostConn[] = [];
  readonly #timers = new MinHeap<TimerEntry>((a, b) => a.at < b.at);
  #nextId = 1;
  #now: Instant = Instant.ZERO;

  constructor(cfg: HostConfig) {
    if (cfg.interfaces.length === 0) throw new ConfigError("a host needs at least one interface");
    this.tcpConfig = cfg.tcp;
    this.#random = cfg.random;
    this.#isnKey = { k0: cfg.random.nextU32(), k1: cfg.random.nextU32() };
    this.#ttl = cfg.ttl ?? DEFAULT_TTL;
    this.#ephemeral = cfg.ephemeralPorts ?? DEFAULT_EPHEMERAL_PORTS;
    if (this.#ephemeral[0] < 1 || this.#ephemeral[1] > 65535 || this.#ephemeral[0] > this.#ephemeral[1]) {
      throw new ConfigError(`bad ephemeral port range ${this.#ephemeral[0]}..${this.#ephemeral[1]}`);
    }
    this.#synQueueLimit = cfg.synQueueLimit ?? DEFAULT_SYN_QUEUE_LIMIT;
    this.icmpMayAbort = cfg.icmpMayAbort ?? true;
    this.neighbors = new NeighborCache(cfg.neighbor ?? DEFAULT_NEIGHBOR_CONFIG);
    this.paths = new PathMtuCache(cfg.pmtuAgeing ?? DEFAULT_PMTU_AGEING, cfg.pmtuCacheSize);
    this.#ifaces = cfg.interfaces.map((c, index) => {
      if (c.mtu < 1280 && c.addresses.some((a) => a.addr.length === 16)) {
        throw new ConfigError(`${c.name}: IPv6 needs an MTU of at least 1280`);
      }
      if (c.mtu < 576) throw new ConfigError(`${c.name}: MTU ${c.mtu} is below 576`);
      const caps = c.checksum ?? ChecksumCapabilities.ALL;
      return { index, cfg: c, caps, rxCaps: rxVerified(caps), ethernet: c.link === "ethernet" };
    });
    for (const iface of this.#ifaces) {
      for (const a of iface.cfg.addresses) {
        this.routes.add({
          prefix: a.addr,
          prefixLen: a.prefixLen,
          gateway: undefined,
          ifIndex: iface.index,
          metric: 0,
        });
      }
    }
    for (const r of cfg.routes ?? []) {
      if (this.#ifaces[r.ifIndex] === undefined)
        throw new ConfigError(`route via unknown interface ${r.ifIndex}`);
      this.routes.add({ ...r, metric: r.metric ?? 10 });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Socket-level calls

  /**
   * Starts listening on `port` (and `addr`, or every address when undefined), with an accept
   * queue of `backlog` and at most `opts.maxEstablished` live connections (default
   * `DEFAULT_MAX_ESTABLISHED`).
   */
  listen(
    port: number,
    addr?: IpAddr,
    backlog = DEFAULT_ACCEPT_BACKLOG,
    opts: HostListenOptions = {},
  ): HostListener {
    checkPort(port);
    if (addr !== undefined) checkAddr("listen", addr);
    if (!Number.isInteger(backlog))
      throw new UsageError(`listen: backlog must be an integer, not ${show(backlog)}`);
    const maxEstablished = opts.maxEstablished ?? DEFAULT_MAX_ESTABLISHED;
    if (!(maxEstablished === Infinity || (Number.isSafeInteger(maxEstablished) && maxEstablished >= 1)))
      throw new UsageError(
        `listen: maxEstablished must be a positive integer or Infinity, not ${show(maxEstablished)}`,
      );
    if (addr !== undefined && !this.isLocalAddress(addr)) {
      throw new SocketError("EADDRNOTAVAIL", `${ipToString(addr)} is not an address of this host`);
    }
    const key = listenerKey(addr, port);
    if (this.#listeners.has(key)) throw new SocketError("EADDRINUSE", `port ${port} is already listening`);
    // The cookie engine hands every connection it completes straight to us (`#drainCookies`,
    // which releases it there): the cap is counted here, on the HostListener.
    const cookies = new TcpListener(this.tcpConfig, port, this.#isnKey, {
      synQueueSize: 0,
      acceptBacklog: Math.max(1, backlog),
      synCookies: "always",
      maxEstablished: Infinity,
    });
    const l = new HostListener(this.#nextId++, addr, port, Math.max(1, backlog), maxEstablished, cookies);
    this.#listeners.set(key, l);
    return l;
  }

  /** Stops a listener: pending and unaccepted connections are reset. */
  closeListener(now: Instant, l: HostListener): void {
    this.#advance(now);
    checkListener("closeListener", l);
    if (l.closed) return;
    l.closed = true;
    this.#listeners.delete(listenerKey(l.addr, l.port));
    for (const c of [...l.pending, ...l.ready]) {
      c.listener = undefined;
      c.tcp?.abort();
      this.#touch(c);
    }
    l.pending.clear();
    l.ready.length = 0;
  }

  /** The next established connection of `l` not yet handed out, if any. */
  accept(l: HostListener): HostConn | undefined {
    checkListener("accept", l);
    const c = l.ready.shift();
    if (c !== undefined) c.listener = undefined;
    return c;
  }

  /** Opens a connection (active open). Throws `SocketError` when there is no route or port. */
  connect(
    now: Instant,
    remote: IpAddr,
    remotePort: number,
    opts: {
      readonly localAddr?: IpAddr | undefined;
      readonly localPort?: number | undefined;
      /**
       * TCP Fast Open (RFC 7413): the SYN carries the server's cookie from `fastOpen` and the
       * data sent before the first poll, or asks for a cookie. Send the data right after this
       * call, before the stack transmits.
       */
      readonly fastOpen?: boolean | undefined;
    } = {},
  ): HostConn {
    this.#advance(now);
    checkAddr("connect", remote);
    checkPort(remotePort);
    if (opts.localAddr !== undefined) checkAddr("connect", opts.localAddr);
    if (opts.localPort !== undefined) checkPort(opts.localPort);
    const hop = this.routes.lookup(remote);
    if (hop === undefined) throw new SocketError("ENETUNREACH", `no route to ${ipToString(remote)}`);
    const local = opts.localAddr ?? this.#sourceAddress(hop.ifIndex, remote);
    if (local === undefined) {
      throw new SocketError(
        "EADDRNOTAVAIL",
        `no ${remote.length === 4 ? "IPv4" : "IPv6"} address on the route`,
      );
    }
    let port = opts.localPort;
    if (port === undefined) port = this.#ephemeralPort(local, remote, remotePort);
    else if (this.#conns.has(connKey(local, port, remote, remotePort))) {
      throw new SocketError(
        "EADDRINUSE",
        `${fmtEndpoint(local, port)} is in use toward ${fmtEndpoint(remote, remotePort)}`,
      );
    }
    const c = this.#newConn(local, port, remote, remotePort, hop);
    const fastOpen = opts.fastOpen === true ? this.fastOpen.request(ipKey(remote), now) : undefined;
    c.tcp = TcpConnection.connect(this.tcpConfig, { ...this.#openParams(c, now), fastOpen }, now);
    c.announced = true;
    this.#touch(c);
    return c;
  }

  /** Queues `data` (zero-copy) and returns how many bytes were taken (0 when the buffer is full). */
  send(now: Instant, c: HostConn, data: Uint8Array): number {
    this.#advance(now);
    checkConn("send", c);
    checkBytes("send", data);
    if (c.phase !== "host") return this.#hooks(c).send(now, c, data);
    const r = c.engine.send(data);
    this.#touch(c);
    if (typeof r === "number") return r;
    throw new UsageError(`send on ${c.toString()}: ${r}`);
  }

  /** Takes up to `max` in-order bytes (a view when possible), reopening the window. */
  recv(now: Instant, c: HostConn, max?: number): Uint8Array | undefined {
    this.#advance(now);
    checkConn("recv", c);
    if (max !== undefined && !(Number.isInteger(max) && max >= 0))
      throw new UsageError(`recv: max must be a non-negative integer, not ${show(max)}`);
    if (c.phase !== "host") return this.#hooks(c).recv(now, c, max);
    const d = c.engine.recv(max);
    if (d !== undefined) this.#touch(c);
    return d;
  }

  /** Graceful close of our direction (FIN after queued data). */
  close(now: Instant, c: HostConn): void {
    this.#advance(now);
    checkConn("close", c);
    if (c.phase !== "host") {
      this.#hooks(c).close(now, c);
      return;
    }
    c.engine.close();
    this.#touch(c);
  }

  /** Abortive close (RST). */
  abort(now: Instant, c: HostConn): void {
    this.#advance(now);
    checkConn("abort", c);
    if (c.phase !== "host") {
      this.#hooks(c).abort(now, c);
      return;
    }
    c.tcp?.abort();
    this.#touch(c);
  }

  /** Applies an option change that may produce output or move timers. */
  configure(now: Instant, c: HostConn, change: (tcp: TcpConnection) => void): void {
    this.#advance(now);
    checkConn("configure", c);
    if (typeof change !== "function")
      throw new UsageError(`configure: change must be a function, not ${show(change)}`);
    if (c.phase !== "host") {
      this.#hooks(c).configure(now, c, change);
      return;
    }
    change(c.engine);
    this.#touch(c);
  }

  /** Bytes `recv` can return now, wherever the connection lives. */
  readable(c: HostConn): number {
    if (c.phase !== "host") return this.#hooks(c).readable(c);
    return c.tcp?.readable ?? 0;
  }

  // -------------------------------------------------------------------------------------------
  // The offload manager's access (spec 12.1: the host half of the chimney)

  /** Installs the offload manager's hooks (once). */
  attachOffload(hooks: OffloadHooks): void {
    if (this.#offload !== undefined) throw new UsageError("an offload manager is already attached");
    this.#offload = hooks;
  }

  /** The stack's current time (the latest `now` it was given). */
  get now(): Instant {
    return this.#now;
  }

  /**
   * Brings the stack's clock to `now`, running the timers due by then. A driver calls this
   * before it drives an offload target at `now`: the target's upcalls (a frame indicated up the
   * non-offload path, a completion) carry no time, so the host takes its own, which must not be
   * stale. Earlier times are ignored.
   */
  advanceTo(now: Instant): void {
    if (now > this.#now) this.handleTimeout(now);
  }

  /** IPv4 TTL / IPv6 hop limit of this host's packets. */
  get ttl(): number {
    return this.#ttl;
  }

  /** The configuration of interface `ifIndex`. */
  interfaceConfig(ifIndex: number): InterfaceConfig {
    const i = this.#ifaces[ifIndex];
    if (i === undefined) throw new UsageError(`no interface ${ifIndex}`);
    return i.cfg;
  }

  /** The current path MTU toward `c`'s peer. */
  pathMtuOf(c: HostConn): number {
    return this.#pathMtu(c.remoteAddr, c.ifIndex);
  }

  /**
   * Takes the engine away from `c` (the offload manager exported it): the connection stays in
   * the table under `phase`, with no timer and no output of its own.
   */
  releaseEngine(c: HostConn, phase: Exclude<ConnPhase, "host">): TcpConnection | undefined {
    const t = c.tcp;
    c.tcp = undefined;
    c.deadline = undefined;
    c.phase = phase;
    return t;
  }

  /** Gives `c` an engine again (an upload, or a failed offload): it runs on the host from now. */
  adoptEngine(c: HostConn, tcp: TcpConnection): void {
    c.tcp = tcp;
    c.phase = "host";
    this.#touch(c);
  }

  /** Sets the phase of a connection off the host (offloading/offloaded/terminating). */
  setPhase(c: HostConn, phase: Exclude<ConnPhase, "host">): void {
    assert(c.tcp === undefined, "a connection with a host engine is on the host");
    c.phase = phase;
  }

  /** A socket-level event of a connection off the host, queued like the engine's own. */
  deliverEvent(c: HostConn, ev: ConnEvent): void {
    this.#onConnEvent(c, ev);
  }

  /**
   * Drops a connection off the host from the table (it closed while offloaded). Its phase stays,
   * so `recv` still reads what the manager holds for it.
   */
  forget(c: HostConn): void {
    this.#remove(c);
  }

  /**
   * Hands `c` to another TCP implementation for good (the Linux kernel, through TCP_REPAIR):
   * segments and an ACK the engine owes go out first and its events reach the application,
   * then its snapshot is taken and the connection leaves the table without a segment of its
   * own (no FIN, no RST). Until `releaseHandOff`, segments for its 4-tuple are dropped without
   * an answer: the peer's packets may still reach this stack while they are steered elsewhere.
   * Throws `UsageError` if `c` is not on the host or not in a synchronized state the receiver
   * can take (ESTABLISHED, FIN-WAIT-1/2, CLOSE-WAIT, CLOSING, LAST-ACK).
   */
  handOff(now: Instant, c: HostConn): TcpSnapshot {
    this.#advance(now);
    checkConn("handOff", c);
    if (c.phase !== "host" || c.tcp === undefined)
      throw new UsageError(`handOff: connection ${c.id} is ${c.phase}, not on the host`);
    if (this.#conns.get(c.key) !== c) throw new UsageError(`handOff: connection ${c.id} is not in the table`);
    const tcp = c.tcp;
    for (let seg = tcp.pollTransmit(now); seg !== undefined; seg = tcp.pollTransmit(now)) {
      this.#sendSegment(now, c, seg);
    }
    const owed = tcp.flushAck(now);
    if (owed !== undefined) this.#sendSegment(now, c, owed);
    for (let ev = tcp.pollEvent(); ev !== undefined; ev = tcp.pollEvent()) this.#onConnEvent(c, ev);
    if (!HAND_OFF_STATES.has(tcp.state)) {
      this.#touch(c); // it stays here: its timers are re-armed at the next flush
      throw new UsageError(`handOff: connection ${c.id} is ${tcp.state}, which cannot be handed off`);
    }
    const snap = tcp.exportState(now);
    c.tcp = undefined;
    this.#remove(c);
    this.#handedOff.set(c.key, { dropped: 0 });
    return snap;
  }

  /**
   * Ends the silence `handOff` left for `c`'s 4-tuple (its segments draw a RST again, as for
   * any unknown connection) and returns how many of its segments were dropped meanwhile.
   * Throws `UsageError` if `c` was not handed off or was released already.
   */
  releaseHandOff(c: HostConn): number {
    const h = this.#handedOff.get(c.key);
    if (h === undefined) throw new UsageError(`releaseHandOff: connection ${c.id} is not handed off`);
    this.#handedOff.delete(c.key);
    return h.dropped;
  }

  /**
   * Silences a 4-tuple ahead of `adopt` (the mirror of `handOff`): while another TCP
   * implementation (the Linux kernel) gives the connection up, its segments steered here are
   * dropped without an answer instead of drawing a RST. `adopt` of the 4-tuple ends the silence.
   * Throws `UsageError` if a connection of this stack holds the 4-tuple.
   */
  reserveForAdoption(local: IpAddr, localPort: number, remote: IpAddr, remotePort: number): void {
    checkAddr("reserveForAdoption", local);
    checkAddr("reserveForAdoption", remote);
    checkPort(localPort);
    checkPort(remotePort);
    const key = connKey(local, localPort, remote, remotePort);
    if (this.#conns.has(key))
      throw new UsageError(`reserveForAdoption: ${fmtEndpoint(local, localPort)} is in use`);
    if (!this.#handedOff.has(key)) this.#handedOff.set(key, { dropped: 0 });
  }

  /**
   * Makes a connection of this stack from `snap`, the state of a connection another TCP
   * implementation ran (the Linux kernel, through TCP_REPAIR; the mirror of `handOff`): its
   * buffered data is what the application reads first, its send data what the engine sends
   * (the part already sent is probed with a tail loss probe, after 2 SRTT or 10 ms without an
   * SRTT, and resent once its RTO expires). The connection is established
   * and the application's from now, as after `connect`. Ends a silence `reserveForAdoption` or
   * `handOff` left for the 4-tuple. Throws `UsageError` for a snapshot in a state that cannot
   * move or addresses of two families, `SocketError` if a connection holds the 4-tuple
   * (EADDRINUSE), the local address is not ours (EADDRNOTAVAIL) or there is no route (ENETUNREACH).
   */
  adopt(
    now: Instant,
    snap: TcpSnapshot,
    at: { readonly localAddr: IpAddr; readonly remoteAddr: IpAddr },
  ): HostConn {
    this.#advance(now);
    checkAddr("adopt", at.localAddr);
    checkAddr("adopt", at.remoteAddr);
    if (at.localAddr.length !== at.remoteAddr.length)
      throw new UsageError("adopt: the local and remote addresses are of two families");
    if (!HAND_OFF_STATES.has(snap.delegated.state))
      throw new UsageError(`adopt: a connection in ${snap.delegated.state} cannot be adopted`);
    const { localPort, remotePort } = snap.constState;
    checkPort(localPort);
    checkPort(remotePort);
    if (!this.isLocalAddress(at.localAddr))
      throw new SocketError(
        "EADDRNOTAVAIL",
        `adopt: ${ipToString(at.localAddr)} is not an address of this host`,
      );
    const key = connKey(at.localAddr, localPort, at.remoteAddr, remotePort);
    if (this.#conns.has(key))
      throw new SocketError("EADDRINUSE", `adopt: ${fmtEndpoint(at.localAddr, localPort)} is in use`);
    const hop = this.routes.lookup(at.remoteAddr);
    if (hop === undefined)
      throw new SocketError("ENETUNREACH", `adopt: no route to ${ipToString(at.remoteAddr)}`);
    const tcp = TcpConnection.importState(snap, now, this.tcpConfig);
    tcp.probeTail(now); // the ACKs of what the other implementation had in flight may be lost
    const c = this.#newConn(at.localAddr, localPort, at.remoteAddr, remotePort, hop);
    c.tcp = tcp;
    c.announced = true;
    c.connected = true;
    this.#handedOff.delete(key);
    this.#touch(c);
    return c;
  }

  /** Segments for handed-off `c`'s 4-tuple dropped so far (0 if it is not handed off). */
  handedOffDrops(c: HostConn): number {
    return this.#handedOff.get(c.key)?.dropped ?? 0;
  }

  /** Marks `c` as having output or events (after a user call made through the engine directly). */
  touch(c: HostConn): void {
    this.#touch(c);
  }

  /** Sends one segment of `c` now (the offload manager drains an engine before exporting it). */
  sendSegmentFor(c: HostConn, seg: TcpRepr): void {
    this.#sendSegment(this.#now, c, seg);
  }

  /** Processes a TCP segment on `c`'s host engine (segments held during an upload, TM-24). */
  deliverSegment(now: Instant, c: HostConn, seg: TcpRepr): void {
    this.#advance(now);
    c.engine.handleSegment(now, seg, true); // held: PAWS does not apply (see handleSegment)
    this.#touch(c);
  }

  /** Number of connections in the table (any state). */
  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Every connection in the table. */
  connections(): IterableIterator<HostConn> {
    return this.#conns.values();
  }

  /** Every open listener. */
  listeners(): IterableIterator<HostListener> {
    return this.#listeners.values();
  }

  /** Bound on each listener's half-open connections (`HostConfig.synQueueLimit`). */
  get synQueueLimit(): number {
    return this.#synQueueLimit;
  }

  /** True when `addr` is one of this host's addresses. */
  isLocalAddress(addr: IpAddr): boolean {
    return this.#ifaceOfAddress(addr) !== undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Input

  /**
   * A frame arrived on interface `ifIndex` (an Ethernet frame, or a bare IP packet on an IP
   * link). `verified`: the device verified its IP header and TCP checksums (receive checksum
   * offload), so the stack does not.
   */
  handleFrame(now: Instant, ifIndex: number, frame: Uint8Array, verified = false): void {
    this.#advance(now);
    checkBytes("handleFrame", frame);
    const iface = this.#ifaces[ifIndex];
    if (iface === undefined) throw new UsageError(`no interface ${ifIndex}`);
    this.stats.framesIn++;
    const caps = verified ? iface.rxCaps : iface.caps;
    const p = iface.ethernet ? decodeFrame(frame, caps) : decodeIpPacket(frame, caps);
    if (p.error !== undefined) {
      if (p.error.code === "bad-checksum") this.stats.dropBadChecksum++;
      else this.stats.dropMalformed++;
      return;
    }
    if (p.ethernet !== undefined) {
      const dst = p.ethernet.dst;
      if (!macEquals(dst, iface.cfg.mac) && !isBroadcastMac(dst) && (dst[0] ?? 0) !== 0x33) {
        this.stats.dropNotForUs++;
        return;
      }
    }
    const net = p.network;
    if (net === undefined) {
      this.stats.dropMalformed++;
      return;
    }
    switch (net.kind) {
      case "arp":
        this.#onArp(now, iface, net.arp);
        return;
      case "ipv4":
        if (!this.#isOurs(net.ipv4.dst, iface)) {
          this.stats.dropNotForUs++;
          return;
        }
        this.#onTransport(now, iface, net.ipv4.src, net.ipv4.dst, p, net.ipv4.ecn === ECN_CE);
        return;
      case "ipv6":
        if (!this.#isOurs(net.ipv6.dst, iface) && (net.ipv6.dst[0] ?? 0) !== 0xff) {
          this.stats.dropNotForUs++;
          return;
        }
        this.#onTransport(now, iface, net.ipv6.src, net.ipv6.dst, p, net.ipv6.ecn === ECN_CE);
        return;
      case "other":
        this.stats.dropUnknownProtocol++;
        return;
    }
  }

  /** Runs every deadline at or before `now`. */
  handleTimeout(now: Instant): void {
    this.#advance(now);
    for (let top = this.#timers.peek(); top !== undefined && top.at <= now; top = this.#timers.peek()) {
      this.#timers.pop();
      const c = top.conn;
      if (c.deadline !== top.at) continue; // superseded entry (lazy deletion)
      c.deadline = undefined;
      c.tcp?.handleTimeout(now);
      this.#touch(c);
    }
    const ot = this.#offload?.pollTimeout();
    if (ot !== undefined && ot <= now) this.#offload?.handleTimeout(now);
    const nt = this.neighbors.pollTimeout();
    if (nt !== undefined && nt <= now) this.neighbors.handleTimeout(now);
    const pt = this.paths.pollTimeout();
    if (pt !== undefined && pt <= now) this.paths.handleTimeout(now, (dst) => this.#linkMtuToward(dst));
  }

  // -------------------------------------------------------------------------------------------
  // Output

  /** The next frame to send, or undefined when there is none. */
  pollTransmit(now: Instant): OutFrame | undefined {
    this.#advance(now);
    if (this.#outHead >= this.#out.length) this.#flush(now);
    const f = this.#out[this.#outHead];
    if (f === undefined) return undefined;
    this.#outHead++;
    if (this.#outHead === this.#out.length) {
      this.#out.length = 0;
      this.#outHead = 0;
    }
    this.stats.framesOut++;
    return f;
  }

  /** The next socket-level event, or undefined. Call after draining `pollTransmit`. */
  pollEvent(): StackEvent | undefined {
    if (this.#eventHead >= this.#events.length) this.#flush(this.#now);
    return this.#takeEvent();
  }

  /**
   * The next event a connection that changed has raised, without building its segments or
   * flushing anything else. A driver that hands these to the application before it drains
   * `pollTransmit` (ChimneyNode.settle) has the ACKs advertise the window the application's
   * reads opened.
   */
  pollConnEvent(): StackEvent | undefined {
    if (this.#eventHead >= this.#events.length) this.#collectEvents();
    return this.#takeEvent();
  }

  #takeEvent(): StackEvent | undefined {
    const e = this.#events[this.#eventHead];
    if (e === undefined) return undefined;
    this.#eventHead++;
    if (this.#eventHead === this.#events.length) {
      this.#events.length = 0;
      this.#eventHead = 0;
    }
    return e;
  }

  /** The earliest deadline of any connection, neighbor or path entry. */
  pollTimeout(): Instant | undefined {
    if (this.#dirty.length > 0) this.#flush(this.#now);
    this.#offload?.flush(this.#now);
    if (this.#dirty.length > 0) this.#flush(this.#now);
    let t = this.neighbors.pollTimeout();
    t = Instant.earliest(t, this.paths.pollTimeout());
    t = Instant.earliest(t, this.#offload?.pollTimeout());
    for (let top = this.#timers.peek(); top !== undefined; top = this.#timers.peek()) {
      if (top.conn.deadline === top.at) return Instant.earliest(t, top.at);
      this.#timers.pop(); // stale
    }
    return t;
  }

  // -------------------------------------------------------------------------------------------
  // Internals: connections

  #hooks(c: HostConn): OffloadHooks {
    const h = this.#offload;
    if (h === undefined)
      throw new UsageError(`connection ${c.id} is ${c.phase} but no offload manager is attached`);
    return h;
  }

  #advance(now: Instant): void {
    if (typeof now !== "number" || Number.isNaN(now))
      throw new UsageError(`time must be an Instant (microseconds), not ${show(now)}`);
    if (now < this.#now) throw new UsageError(`time went backwards: ${now} < ${this.#now}`);
    this.#now = now;
  }

  #touch(c: HostConn): void {
    if (!c.dirty) {
      c.dirty = true;
      this.#dirty.push(c);
    }
  }

  /** The events of the connections that changed; they stay dirty for `#flush` (their segments). */
  #collectEvents(): void {
    for (const c of this.#dirty) {
      const tcp = c.tcp;
      if (tcp === undefined) continue;
      for (let ev = tcp.pollEvent(); ev !== undefined; ev = tcp.pollEvent()) this.#onConnEvent(c, ev);
    }
  }

  /** Drains dirty connections: segments into frames, events into the event queue, timers. */
  #flush(now: Instant): void {
    this.#offload?.flush(now);
    this.#drainNeighbors(now);
    while (this.#dirty.length > 0) {
      const batch = this.#dirty;
      this.#dirty = [];
      for (const c of batch) {
        c.dirty = false;
        const tcp = c.tcp;
        if (tcp === undefined) continue;
        const icmp = c.offloadedIcmp;
        if (icmp !== undefined) {
          c.offloadedIcmp = undefined;
          tcp.handleIcmpError(now, icmp.seq, icmp.code, false); // NS-4: recorded while offloaded
        }
        // The next hop is resolved once per batch: its entry cannot change between segments.
        let mac: MacAddr | undefined = undefined;
        for (let seg = tcp.pollTransmit(now); seg !== undefined; seg = tcp.pollTransmit(now)) {
          mac = this.#sendSegment(now, c, seg, mac);
        }
        const d = tcp.pollTimeout();
        if (d !== c.deadline) {
          c.deadline = d;
          if (d !== undefined) this.#timers.push({ at: d, conn: c });
        }
        for (let ev = tcp.pollEvent(); ev !== undefined; ev = tcp.pollEvent()) this.#onConnEvent(c, ev);
        if (tcp.state === "CLOSED") this.#remove(c);
      }
    }
    this.#drainNeighbors(now);
  }

  #onConnEvent(c: HostConn, ev: ConnEvent): void {
    if (ev.kind === "connected") {
      c.connected = true;
      const fo = c.tcp?.fastOpenOutcome();
      if (fo !== undefined) this.fastOpen.update(ipKey(c.remoteAddr), fo, this.#now);
    }
    const l = c.listener;
    if (l !== undefined && !c.announced) {
      // Passive open: the application hears of the connection once it is established.
      if (ev.kind === "connected") {
        l.pending.delete(c);
        if (l.ready.length >= l.backlog) {
          this.stats.dropAcceptQueueFull++;
          c.tcp?.abort();
          this.#touch(c);
          return;
        }
        l.ready.push(c);
        c.announced = true;
        this.#events.push({ kind: "accept", listener: l, conn: c });
      } else if (ev.kind === "closed") {
        l.pending.delete(c);
      }
      return;
    }
    if (c.announced) this.#events.push({ kind: "conn", conn: c, event: ev });
  }

  #remove(c: HostConn): void {
    if (this.#conns.get(c.key) === c) this.#conns.delete(c.key);
    if (this.#lastConn === c) this.#lastConn = undefined;
    c.listener?.pending.delete(c);
    c.deadline = undefined;
    this.#uncount(c);
  }

  /** `c` left the table: its listener gets its room back (once). */
  #uncount(c: HostConn): void {
    const o = c.origin;
    if (o !== undefined) {
      c.origin = undefined;
      o.established--;
    }
  }

  #newConn(local: IpAddr, localPort: number, remote: IpAddr, remotePort: number, hop: NextHop): HostConn {
    const key = connKey(local, localPort, remote, remotePort);
    const old = this.#conns.get(key);
    if (old !== undefined) this.#uncount(old); // replaced in the table: it counts no more
    const c = new HostConn(this.#nextId++, local, localPort, remote, remotePort, hop, key);
    this.#conns.set(key, c);
    this.#lastConn = undefined; // it may hold a connection this one replaces in the table
    return c;
  }

  #openParams(c: HostConn, now: Instant) {
    const mtu = this.#pathMtu(c.remoteAddr, c.ifIndex);
    const k = this.#isnKey;
    return {
      localPort: c.localPort,
      remotePort: c.remotePort,
      // RFC 6528: a keyed hash of the 4-tuple plus a 4-microsecond clock.
      iss: initialSeq(k, c.localAddr, c.localPort, c.remoteAddr, c.remotePort, now),
      tsOffset: timestampOffset(k, c.localAddr, c.localPort, c.remoteAddr, c.remotePort),
      pathMss: mtu - (c.remoteAddr.length === 4 ? IPV4_HEADER : IPV6_HEADER) - TCP_HEADER,
    };
  }

  #ephemeralPort(local: IpAddr, remote: IpAddr, remotePort: number): number {
    const [lo, hi] = this.#ephemeral;
    const n = hi - lo + 1;
    const start = this.#random.nextU32() % n;
    for (let i = 0; i < n; i++) {
      const port = lo + ((start + i) % n);
      if (
        !this.#conns.has(connKey(local, port, remote, remotePort)) &&
        !this.#listeners.has(listenerKey(undefined, port))
      ) {
        return port;
      }
    }
    throw new SocketError(
      "EADDRNOTAVAIL",
      `no free ephemeral port toward ${fmtEndpoint(remote, remotePort)}`,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Internals: input

  /** `ce`: the IP header carried the CE mark (RFC 3168 5), for the TCP engine. */
  #onTransport(now: Instant, iface: Iface, src: IpAddr, dst: IpAddr, p: DecodedPacket, ce: boolean): void {
    const t = p.transport;
    if (t === undefined) {
      this.stats.dropMalformed++;
      return;
    }
    switch (t.kind) {
      case "tcp":
        if (dst[0] === 0xff) {
          this.stats.dropNotForUs++;
          return;
        }
        this.#onTcp(now, src, dst, t.tcp, ce);
        return;
      case "icmpv4":
        this.stats.icmpIn++;
        this.#onIcmpv4(now, src, dst, t.icmp);
        return;
      case "icmpv6":
        this.stats.icmpIn++;
        this.#onIcmpv6(now, iface, src, dst, t.icmp);
        return;
      case "fragment": {
        // RFC 791 3.2 / RFC 8200 4.5: the datagram goes up once it is whole.
        const whole = this.#reassemble(now, p, t.payload);
        if (whole !== undefined) this.#onTransport(now, iface, src, dst, whole, ce);
        return;
      }
      case "other":
        this.stats.dropUnknownProtocol++;
        return;
    }
  }

  /**
   * One fragment into reassembly (src/host/ip-reassembly.ts); the decoded datagram when it
   * completed one. A fragment the reassembler discards (overlap, malformed), and an IPv6
   * fragment whose header is not the last of its chain, count in `dropFragment`.
   */
  #reassemble(now: Instant, p: DecodedPacket, data: Uint8Array): DecodedPacket | undefined {
    const n = p.network;
    let r: FragmentReassembler;
    let ip: Ipv4Repr | Ipv6Repr;
    let frag: Omit<Fragment, "data">;
    if (n?.kind === "ipv4") {
      ip = n.ipv4;
      r = this.#reasm4;
      const key = `${ipKey(ip.src)}|${ipKey(ip.dst)}|${String(ip.protocol)}|${ip.ident}`;
      frag = { key, offset: ip.fragmentOffset, more: ip.moreFragments };
    } else if (n?.kind === "ipv6") {
      ip = n.ipv6;
      const f = ip.fragment;
      // Only a fragment header that ends the chain: headers after it would belong to the
      // reassembled datagram, which the first fragment's decode has already walked past.
      if (f === undefined || ip.extHeaders.at(-1)?.type !== "ipv6-frag") {
        this.stats.dropFragment++;
        return undefined;
      }
      r = this.#reasm6;
      frag = { key: `${ipKey(ip.src)}|${ipKey(ip.dst)}|${f.ident}`, offset: f.offset, more: f.moreFragments };
    } else {
      return undefined;
    }
    const discarded = r.stats.overlaps + r.stats.malformed;
    const out = r.add(now, { ...frag, data });
    if (r.stats.overlaps + r.stats.malformed !== discarded) this.stats.dropFragment++;
    return out === undefined ? undefined : decodeReassembled(p.ethernet, n, ip, ip.protocol, out);
  }

  /** Counters of IP reassembly, IPv4 and IPv6 added up. */
  get reassemblyStats(): ReassemblyStats {
    const a = this.#reasm4.stats;
    const b = this.#reasm6.stats;
    return {
      fragmentsIn: a.fragmentsIn + b.fragmentsIn,
      reassembled: a.reassembled + b.reassembled,
      duplicates: a.duplicates + b.duplicates,
      overlaps: a.overlaps + b.overlaps,
      malformed: a.malformed + b.malformed,
      timeouts: a.timeouts + b.timeouts,
      evicted: a.evicted + b.evicted,
    };
  }

  /** The connection of a segment from `remote` to `local`, if any. */
  #lookup(local: IpAddr, localPort: number, remote: IpAddr, remotePort: number): HostConn | undefined {
    const last = this.#lastConn;
    if (
      last !== undefined &&
      last.localPort === localPort &&
      last.remotePort === remotePort &&
      ipEquals(last.remoteAddr, remote) &&
      ipEquals(last.localAddr, local)
    ) {
      return last;
    }
    const c = this.#conns.get(connKey(local, localPort, remote, remotePort));
    if (c !== undefined) this.#lastConn = c;
    return c;
  }

  #onTcp(now: Instant, src: IpAddr, dst: IpAddr, seg: TcpRepr, ce = false): void {
    const c = this.#lookup(dst, seg.dstPort, src, seg.srcPort);
    if (c !== undefined && c.tcp !== undefined) {
      const l = c.listener;
      if (l !== undefined && c.origin === undefined) {
        // A half-open passive connection: count it against its listener's cap as soon as the
        // handshake completes, and drop the completing ACK while the cap is reached.
        if (this.#capDrops(l, c.tcp, seg)) return;
        c.tcp.handleSegment(now, seg, false, ce);
        if (c.tcp.state !== "SYN-RECEIVED" && c.tcp.state !== "CLOSED") this.#count(l, c);
      } else {
        c.tcp.handleSegment(now, seg, false, ce);
      }
      this.#touch(c);
      return;
    }
    if (c !== undefined && c.phase !== "host") {
      this.#hooks(c).segment(now, c, seg, src, dst);
      return;
    }
    const l =
      this.#listeners.get(listenerKey(dst, seg.dstPort)) ??
      this.#listeners.get(listenerKey(undefined, seg.dstPort));
    if (l !== undefined) {
      this.#onListen(now, l, src, dst, seg);
      return;
    }
    if (this.#handedOff.size > 0) {
      const h = this.#handedOff.get(connKey(dst, seg.dstPort, src, seg.srcPort));
      if (h !== undefined) {
        h.dropped++; // another stack owns this connection now: no answer from here
        return;
      }
    }
    // RFC 9293 3.10.7.1 (CLOSED) and 3.10.7.2 (LISTEN, an ACK or other non-SYN): answer with a RST.
    const rst = replyToUnexpected(seg);
    if (rst !== undefined) {
      this.stats.rstsSent++;
      this.#sendIp(now, src, dst, rst, undefined);
    }
  }

  /**
   * True (and counted) when `seg` would complete `tcp`'s handshake while `l` is at its cap: it
   * is dropped as Linux drops the final ACK when the accept queue is full. The connection
   * retransmits its SYN-ACK, the peer its ACK, until there is room or the connection gives up.
   */
  #capDrops(l: HostListener, tcp: TcpConnection, seg: TcpRepr): boolean {
    if (
      !l.atCap ||
      tcp.state !== "SYN-RECEIVED" ||
      (seg.flags & (TcpFlag.ACK | TcpFlag.RST | TcpFlag.SYN)) !== TcpFlag.ACK
    )
      return false;
    this.stats.dropEstablishedCap++;
    return true;
  }

  /** `c` completed its handshake on `l`: it counts against `l.maxEstablished` until freed. */
  #count(l: HostListener, c: HostConn): void {
    c.origin = l;
    l.established++;
  }

  /** RFC 9293 3.10.7.2: a segment to a listening port that matched no connection. */
  #onListen(now: Instant, l: HostListener, src: IpAddr, dst: IpAddr, seg: TcpRepr): void {
    const f = seg.flags;
    if (f & TcpFlag.RST) return; // first: an incoming RST is ignored
    if (f & TcpFlag.ACK) {
      // second: an ACK is bad unless it completes a SYN cookie; the cookie engine answers a
      // bad one with <SEQ=SEG.ACK><CTL=RST>.
      l.cookies.handleSegment(now, dst, src, seg);
      this.#drainCookies(now, l);
      return;
    }
    if (!(f & TcpFlag.SYN)) return; // fourth: other text or control without SYN or ACK is dropped
    if (f & TcpFlag.FIN && this.tcpConfig.dropSynFin) return; // SYN+FIN dropped by policy (a scan pattern)
    if (l.ready.length >= l.backlog) {
      this.stats.dropAcceptQueueFull++; // as Linux: SYNs wait while the accept queue is full
      return;
    }
    if (l.atCap) {
      this.stats.dropEstablishedCap++; // likewise while the established cap is reached
      return;
    }
    if (l.pending.size >= this.#synQueueLimit) {
      // Bounded: past the SYN queue, answer statelessly with a cookie (no state kept).
      this.stats.dropSynQueueFull++;
      l.cookies.handleSegment(now, dst, src, seg);
      this.#drainCookies(now, l);
      return;
    }
    this.#onListenSyn(now, l, src, dst, seg);
  }

  /** Sends the cookie engine's replies and adopts connections it completed. */
  #drainCookies(now: Instant, l: HostListener): void {
    for (let t = l.cookies.pollTransmit(now); t !== undefined; t = l.cookies.pollTransmit(now)) {
      if (t.seg.flags & TcpFlag.RST) this.stats.rstsSent++;
      this.#sendIp(now, t.remote, t.local, t.seg, undefined);
    }
    for (let a = l.cookies.accept(); a !== undefined; a = l.cookies.accept()) {
      l.cookies.release(); // the engine forgets it: its cap is counted on `l`
      if (l.atCap) {
        // Forgetting the connection drops the cookie's ACK, with anything it owed in reply:
        // the peer retransmits, and the cookie is still good while it is fresh.
        this.stats.dropEstablishedCap++;
        continue;
      }
      const hop = this.routes.lookup(a.remote);
      if (hop === undefined) {
        this.stats.dropNoRoute++;
        continue;
      }
      const c = this.#newConn(a.local, l.port, a.remote, a.conn.remotePort, hop);
      c.listener = l;
      c.tcp = a.conn;
      l.pending.add(c);
      this.#count(l, c);
      this.#touch(c); // its `connected` event moves it to the accept queue
    }
  }

  #onListenSyn(now: Instant, l: HostListener, src: IpAddr, dst: IpAddr, seg: TcpRepr): void {
    const hop = this.routes.lookup(src);
    if (hop === undefined) {
      this.stats.dropNoRoute++;
      return;
    }
    const c = this.#newConn(dst, seg.dstPort, src, seg.srcPort, hop);
    c.listener = l;
    c.tcp = TcpConnection.accept(this.tcpConfig, this.#openParams(c, now), peerSynOf(seg), now);
    l.pending.add(c);
    this.#touch(c);
  }

  #onArp(now: Instant, iface: Iface, arp: ArpRepr): void {
    this.stats.arpIn++;
    if (!iface.ethernet) return;
    const forUs = this.#hasAddress(iface, arp.targetProtocolAddr);
    const sender = arp.senderProtocolAddr;
    if (sender.every((b) => b === 0)) {
      // RFC 5227 probe: no sender address to learn.
    } else if (arp.operation === "reply") {
      this.neighbors.confirm(now, iface.index, sender, arp.senderHardwareAddr, true, false);
    } else {
      // RFC 826 merge: any request updates an existing entry for its sender; only the target
      // creates one (then replies), so requests for other hosts cannot fill the cache.
      this.neighbors.confirm(now, iface.index, sender, arp.senderHardwareAddr, false, forUs);
    }
    if (arp.operation === "request" && forUs) {
      this.#out.push({
        ifIndex: iface.index,
        frame: emitArpFrame({
          ethernet: { src: iface.cfg.mac, dst: arp.senderHardwareAddr },
          arp: {
            operation: "reply",
            senderHardwareAddr: iface.cfg.mac,
            senderProtocolAddr: arp.targetProtocolAddr,
            targetHardwareAddr: arp.senderHardwareAddr,
            targetProtocolAddr: arp.senderProtocolAddr,
          },
        }),
      });
    }
    this.#drainNeighbors(now);
  }

  #onIcmpv4(now: Instant, src: IpAddr, dst: IpAddr, icmp: Icmpv4Repr): void {
    switch (icmp.type) {
      case "echo-request":
        this.#sendIcmpv4(now, src, dst, { ...icmp, type: "echo-reply" });
        return;
      case "dst-unreachable": {
        if (icmp.code !== "frag-needed") {
          this.#onIcmpError(now, icmp.quoted, icmpv4Error(icmp));
          return;
        }
        // RFC 1191: an MTU of 0 comes from an old router; fall back to the IPv4 minimum.
        this.#onTooBig(now, icmp.quoted, icmp.nextHopMtu ?? 0);
        return;
      }
      case "time-exceeded":
        this.#onIcmpError(now, icmp.quoted, icmpv4Error(icmp));
        return;
      default:
        return;
    }
  }

  /**
   * An ICMP error about one of our TCP connections (RFC 1122 4.2.3.9, RFC 5461): finds the
   * connection by the quoted 4-tuple and hands it the quoted sequence number, which it checks
   * against [SND.UNA, SND.MAX) (RFC 5927 4.1). `meaning` undefined: the message is ignored.
   */
  #onIcmpError(now: Instant, quoted: Uint8Array, meaning: IcmpErrorMeaning | undefined): void {
    if (meaning === undefined) return;
    const q = this.#quotedConn(quoted);
    if (q === undefined) return;
    const { conn: c, seq: tcpSeq } = q;
    if (c.tcp === undefined) {
      // NS-4: the target indicates ICMP on the non-offload path and the host acts for the
      // offloaded connection. It is synchronized, so the error is soft (RFC 1122 4.2.3.9,
      // RFC 5461): recorded, and handed to the engine on upload, where the quoted sequence
      // number is checked against [SND.UNA, SND.MAX) (a stale one is dropped, RFC 5927).
      // Path-MTU messages go through `#onTooBig`: an update of the offloaded path (spec 9.1).
      c.offloadedIcmp = { seq: tcpSeq, code: meaning.code };
      return;
    }
    const hard = meaning.hard && this.icmpMayAbort;
    if (c.tcp.handleIcmpError(now, tcpSeq, meaning.code, hard)) this.#touch(c);
  }

  /** The connection of ours an ICMP error quotes (TCP 4-tuple), with the quoted sequence number. */
  #quotedConn(quoted: Uint8Array): { readonly conn: HostConn; readonly seq: SeqNum } | undefined {
    const q = parseIcmpQuote(quoted);
    if (!q.ok) return undefined;
    const { protocol, src, dst, srcPort, dstPort, tcpSeq } = q.value;
    if (protocol !== "tcp" || srcPort === undefined || dstPort === undefined || tcpSeq === undefined)
      return undefined;
    const conn = this.#conns.get(connKey(src, srcPort, dst, dstPort));
    return conn === undefined ? undefined : { conn, seq: tcpSeq };
  }

  #onIcmpv6(now: Instant, iface: Iface, src: IpAddr, dst: IpAddr, icmp: Icmpv6Repr): void {
    switch (icmp.type) {
      case "neighbor-solicitation": {
        this.stats.ndIn++;
        if (!this.#hasAddress(iface, icmp.target)) return;
        const unspecified = src.every((b) => b === 0);
        if (icmp.sourceLinkAddr !== undefined && !unspecified) {
          this.neighbors.confirm(now, iface.index, src, icmp.sourceLinkAddr, false, true);
        }
        // RFC 4861 7.2.4: answer with a solicited NA carrying our link-layer address.
        const to = unspecified ? ALL_NODES : src;
        const reply: Icmpv6Repr = {
          type: "neighbor-advertisement",
          router: false,
          solicited: !unspecified,
          override: true,
          target: icmp.target,
          targetLinkAddr: iface.cfg.mac,
          otherOptions: [],
        };
        this.#sendIcmpv6(
          now,
          iface,
          to,
          icmp.target,
          reply,
          icmp.sourceLinkAddr ?? (unspecified ? ipv6MulticastMac(ALL_NODES) : undefined),
        );
        return;
      }
      case "neighbor-advertisement":
        this.stats.ndIn++;
        if (icmp.targetLinkAddr !== undefined) {
          this.neighbors.confirm(now, iface.index, icmp.target, icmp.targetLinkAddr, icmp.solicited, false);
        }
        this.#drainNeighbors(now);
        return;
      case "echo-request":
        this.#sendIcmpv6(now, iface, src, dst, { ...icmp, type: "echo-reply" }, undefined);
        return;
      case "packet-too-big":
        this.#onTooBig(now, icmp.quoted, icmp.mtu);
        return;
      case "dst-unreachable":
      case "time-exceeded":
      case "parameter-problem":
        this.#onIcmpError(now, icmp.quoted, icmpv6Error(icmp));
        return;
      default:
        return;
    }
  }

  /**
   * ICMP "fragmentation needed" / "packet too big" (RFC 1191, RFC 8201). As for other ICMP
   * errors (and as Linux does), the message counts only when it quotes a live TCP connection
   * of ours with a sequence number in [SND.UNA, SND.MAX) (RFC 5927 4.1): a forged one, quoting
   * any destination, would otherwise lower its PMTU and fill the path cache. An offloaded
   * connection's send window lives on the target, so for it the quoted 4-tuple must match.
   * Anything else is dropped and counted in `stats.dropIcmpTooBig`.
   */
  #onTooBig(now: Instant, quoted: Uint8Array, mtu: number): void {
    const q = this.#quotedConn(quoted);
    if (q === undefined || (q.conn.tcp !== undefined && !q.conn.tcp.icmpQuoteInWindow(q.seq))) {
      this.stats.dropIcmpTooBig++;
      return;
    }
    const dst = q.conn.remoteAddr;
    const linkMtu = this.#linkMtuToward(dst);
    if (!this.paths.handleTooBig(now, dst, mtu, linkMtu)) return;
    const pmtu = this.paths.pmtu(dst, linkMtu);
    // setPathMtu takes the IP and base TCP header bytes, as the initial path MSS does.
    const hdr = (dst.length === 4 ? IPV4_HEADER : IPV6_HEADER) + TCP_HEADER;
    for (const c of this.#conns.values()) {
      if (c.tcp !== undefined && ipEquals(c.remoteAddr, dst)) {
        c.tcp.setPathMtu(pmtu, hdr);
        this.#touch(c);
      } else if (c.phase !== "host" && ipEquals(c.remoteAddr, dst)) {
        this.#hooks(c).pathMtuChanged(now, c, pmtu);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals: output

  /**
   * Sends one segment of `c`. `mac`: the next hop's address, already resolved at `now` for an
   * earlier segment of this batch. Returns the address used, if the frame went out.
   */
  #sendSegment(now: Instant, c: HostConn, seg: TcpRepr, mac?: MacAddr): MacAddr | undefined {
    const iface = this.#ifaces[c.ifIndex];
    assert(iface !== undefined, "route to a missing interface");
    // The per-connection part of the packet spec is built once (this runs per segment).
    let spec = c.emitSpec;
    if (spec === undefined) {
      spec = {
        ip: { src: c.localAddr, dst: c.remoteAddr, ttl: this.#ttl },
        ethernet: iface.ethernet ? { src: iface.cfg.mac, dst: MAC_ZERO } : undefined,
        checksum: iface.caps,
      };
      c.emitSpec = spec;
    }
    // RFC 3168: the engine marks the new data of an ECN connection ECT(0) (the only mark it sets).
    const ip = seg.ecn === ECN_ECT0 ? (c.emitIpEct ??= { ...spec.ip, ecn: ECN_ECT0 }) : spec.ip;
    const frame = emitTcpPacket({ ip, tcp: seg, ethernet: spec.ethernet, checksum: spec.checksum });
    if (mac !== undefined && iface.ethernet) {
      frame.set(mac, 0);
      this.#out.push({ ifIndex: iface.index, frame });
      return mac;
    }
    return this.#queueFrame(now, iface, c.nextHop, frame);
  }

  /** Wraps a TCP segment in IP (and Ethernet) and queues or holds it. */
  #sendIp(now: Instant, dst: IpAddr, src: IpAddr, seg: TcpRepr, c: HostConn | undefined): void {
    const hop = c !== undefined ? { ifIndex: c.ifIndex, via: c.nextHop } : this.routes.lookup(dst);
    if (hop === undefined) {
      this.stats.dropNoRoute++;
      return;
    }
    const iface = this.#ifaces[hop.ifIndex];
    assert(iface !== undefined, "route to a missing interface");
    const frame = emitTcpPacket({
      ip: { src, dst, ttl: this.#ttl },
      tcp: seg,
      ethernet: iface.ethernet ? { src: iface.cfg.mac, dst: MAC_ZERO } : undefined,
      checksum: iface.caps,
    });
    this.#queueFrame(now, iface, hop.via, frame);
  }

  #sendIcmpv4(now: Instant, dst: IpAddr, src: IpAddr, icmp: Icmpv4Repr): void {
    const hop = this.routes.lookup(dst);
    const iface = hop === undefined ? undefined : this.#ifaces[hop.ifIndex];
    if (hop === undefined || iface === undefined) {
      this.stats.dropNoRoute++;
      return;
    }
    this.stats.icmpOut++;
    const frame = emitIcmpv4Packet({
      ip: { src, dst, ttl: this.#ttl },
      icmp,
      ethernet: iface.ethernet ? { src: iface.cfg.mac, dst: MAC_ZERO } : undefined,
      checksum: iface.caps,
    });
    this.#queueFrame(now, iface, hop.via, frame);
  }

  #sendIcmpv6(
    now: Instant,
    iface: Iface,
    dst: IpAddr,
    src: IpAddr,
    icmp: Icmpv6Repr,
    dstMac: MacAddr | undefined,
  ): void {
    this.stats.icmpOut++;
    const eth: EthernetSpec | undefined = iface.ethernet
      ? { src: iface.cfg.mac, dst: dstMac ?? MAC_ZERO }
      : undefined;
    const frame = emitIcmpv6Packet({ ip: { src, dst, ttl: 255 }, icmp, ethernet: eth, checksum: iface.caps });
    if (dstMac !== undefined || !iface.ethernet) {
      this.#out.push({ ifIndex: iface.index, frame });
      return;
    }
    const hop = this.routes.lookup(dst);
    this.#queueFrame(now, iface, hop?.via ?? dst, frame);
  }

  /** Fills in the destination MAC (resolving the neighbor) or queues the frame until it resolves. */
  #queueFrame(now: Instant, iface: Iface, via: IpAddr, frame: Uint8Array): MacAddr | undefined {
    if (!iface.ethernet) {
      this.#out.push({ ifIndex: iface.index, frame });
      return undefined;
    }
    const mac = this.neighbors.resolve(now, iface.index, via, frame);
    if (mac !== undefined) {
      frame.set(mac, 0);
      this.#out.push({ ifIndex: iface.index, frame });
    }
    this.#drainNeighbors(now);
    return mac;
  }

  /** Sends the neighbor cache's solicitations and releases frames that waited for an address. */
  #drainNeighbors(now: Instant): void {
    for (let r = this.neighbors.pollRelease(); r !== undefined; r = this.neighbors.pollRelease()) {
      r.packet.set(r.mac, 0);
      this.#out.push({ ifIndex: r.ifIndex, frame: r.packet });
    }
    for (let s = this.neighbors.pollSolicit(); s !== undefined; s = this.neighbors.pollSolicit()) {
      const iface = this.#ifaces[s.ifIndex];
      if (iface === undefined) continue;
      const src = this.#sourceAddress(s.ifIndex, s.ip);
      if (src === undefined) continue;
      if (s.ip.length === 4) {
        this.#out.push({
          ifIndex: s.ifIndex,
          frame: emitArpFrame({
            ethernet: { src: iface.cfg.mac, dst: s.unicastTo ?? MAC_BROADCAST },
            arp: {
              operation: "request",
              senderHardwareAddr: iface.cfg.mac,
              senderProtocolAddr: src,
              targetHardwareAddr: MAC_ZERO,
              targetProtocolAddr: s.ip,
            },
          }),
        });
      } else {
        const group = s.unicastTo === undefined ? solicitedNodeMulticast(s.ip) : s.ip;
        this.#sendIcmpv6(
          now,
          iface,
          group,
          src,
          { type: "neighbor-solicitation", target: s.ip, sourceLinkAddr: iface.cfg.mac, otherOptions: [] },
          s.unicastTo ?? ipv6MulticastMac(group),
        );
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals: addresses

  #sourceAddress(ifIndex: number, toward: IpAddr): IpAddr | undefined {
    const iface = this.#ifaces[ifIndex];
    if (iface === undefined) return undefined;
    let fallback: IpAddr | undefined;
    for (const a of iface.cfg.addresses) {
      if (a.addr.length !== toward.length) continue;
      if (ipInPrefix(toward, a.addr, a.prefixLen)) return a.addr;
      fallback ??= a.addr;
    }
    return fallback;
  }

  #hasAddress(iface: Iface, addr: IpAddr): boolean {
    return iface.cfg.addresses.some((a) => ipEquals(a.addr, addr));
  }

  #isOurs(addr: IpAddr, iface: Iface): boolean {
    return this.#hasAddress(iface, addr) || this.#ifaceOfAddress(addr) !== undefined;
  }

  #ifaceOfAddress(addr: IpAddr): Iface | undefined {
    return this.#ifaces.find((i) => this.#hasAddress(i, addr));
  }

  #linkMtuToward(dst: IpAddr): number {
    const hop = this.routes.lookup(dst);
    return (hop === undefined ? undefined : this.#ifaces[hop.ifIndex]?.cfg.mtu) ?? 1500;
  }

  #pathMtu(dst: IpAddr, ifIndex: number): number {
    const linkMtu = this.#ifaces[ifIndex]?.cfg.mtu ?? 1500;
    return this.paths.pmtu(dst, linkMtu);
  }
}

const ALL_NODES: IpAddr = Uint8Array.of(0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

/** What an ICMP error means for TCP: its error code, and whether it is a hard error. */
interface IcmpErrorMeaning {
  readonly code: IcmpErrorCode;
  readonly hard: boolean;
}

/**
 * ICMPv4 errors for TCP (RFC 1122 4.2.3.9, RFC 5461): protocol and port unreachable and the
 * administratively prohibited codes (9, 10, 13; RFC 1812 5.2.7.1) are hard (ECONNREFUSED), as is
 * TTL exceeded (EHOSTUNREACH, as FreeBSD with icmp_may_rst treats it); the other unreachable
 * codes are soft. Reassembly timeouts say nothing about the connection.
 */
function icmpv4Error(icmp: Icmpv4Repr): IcmpErrorMeaning | undefined {
  if (icmp.type === "time-exceeded") {
    return icmp.code === "ttl-exceeded" ? { code: "EHOSTUNREACH", hard: true } : undefined;
  }
  if (icmp.type !== "dst-unreachable") return undefined;
  switch (icmp.code) {
    case "protocol-unreachable":
    case "port-unreachable":
    case "admin-prohibited":
    case 9:
    case 10:
      return { code: "ECONNREFUSED", hard: true };
    case "frag-needed":
      return undefined;
    case "net-unreachable":
    case 6: // destination network unknown
    case 11: // network unreachable for TOS
      return { code: "ENETUNREACH", hard: false };
    default:
      return { code: "EHOSTUNREACH", hard: false };
  }
}

/**
 * ICMPv6 errors for TCP (RFC 4443, RFC 5461): port unreachable, administratively prohibited
 * and unrecognized next header (parameter problem code 1) are hard (ECONNREFUSED), as is hop
 * limit exceeded (EHOSTUNREACH); the other unreachable codes are soft; the other parameter
 * problems and reassembly timeouts are ignored.
 */
function icmpv6Error(icmp: Icmpv6Repr): IcmpErrorMeaning | undefined {
  switch (icmp.type) {
    case "dst-unreachable":
      switch (icmp.code) {
        case "port-unreachable":
        case "admin-prohibited":
          return { code: "ECONNREFUSED", hard: true };
        case "no-route":
          return { code: "ENETUNREACH", hard: false };
        default:
          return { code: "EHOSTUNREACH", hard: false };
      }
    case "time-exceeded":
      return icmp.code === "hop-limit-exceeded" ? { code: "EHOSTUNREACH", hard: true } : undefined;
    case "parameter-problem":
      return icmp.code === 1 ? { code: "ECONNREFUSED", hard: true } : undefined;
    default:
      return undefined;
  }
}

function connKey(local: IpAddr, localPort: number, remote: IpAddr, remotePort: number): string {
  return `${localPort}:${remotePort}:${ipKey(remote)}:${ipKey(local)}`;
}

function listenerKey(addr: IpAddr | undefined, port: number): string {
  return addr === undefined ? `*:${port}` : `${ipKey(addr)}:${port}`;
}

/** A short description of a bad argument for an error message. */
function show(v: unknown): string {
  switch (typeof v) {
    case "string":
      return `a string (${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}...` : v)})`;
    case "object":
      return v === null
        ? "null"
        : `a ${(v as { constructor?: { name?: string } }).constructor?.name ?? "object"}`;
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    default:
      return `${typeof v} ${String(v)}`;
  }
}

function checkBytes(op: string, data: unknown): void {
  if (!(data instanceof Uint8Array))
    throw new UsageError(`${op}: data must be a Uint8Array, not ${show(data)}`);
}

function checkConn(op: string, c: unknown): void {
  if (!(c instanceof HostConn)) throw new UsageError(`${op}: not a connection of a HostStack: ${show(c)}`);
}

function checkListener(op: string, l: unknown): void {
  if (!(l instanceof HostListener)) throw new UsageError(`${op}: not a listener of a HostStack: ${show(l)}`);
}

function checkAddr(op: string, a: unknown): void {
  if (!(a instanceof Uint8Array) || (a.length !== 4 && a.length !== 16))
    throw new UsageError(`${op}: an address is 4 or 16 bytes (a Uint8Array), not ${show(a)}`);
}

function checkPort(port: number): void {
  if (typeof port !== "number") throw new UsageError(`a port is a number, not ${show(port)}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new SocketError("EINVAL", `bad port ${port}`);
}

function fmtEndpoint(addr: IpAddr, port: number): string {
  return addr.length === 4 ? `${ipToString(addr)}:${port}` : `[${ipToString(addr)}]:${port}`;
}

export { ETHERNET_HEADER, NEIGHBOR_TIMER_ID };
