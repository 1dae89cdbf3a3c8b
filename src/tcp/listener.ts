/**
 * A listening socket (RFC 9293 3.10.7.2, LISTEN state): turns SYNs into connections through a
 * bounded SYN queue, hands ESTABLISHED ones to a bounded accept queue, and answers SYNs with
 * stateless SYN cookies once the SYN queue is full (RFC 4987 3.6), so a SYN flood costs no
 * memory. Sans-I/O like the connection: `handleSegment` / `handleTimeout` in, `poll*` out.
 *
 * Established connections are capped too (`maxEstablished`): the listener counts every
 * connection it produced until its owner `release`s it, and at the cap it stops completing
 * handshakes (new SYNs and final ACKs are dropped, as with a full accept queue), so a flood of
 * completed handshakes cannot grow memory without bound; the peers retransmit and get in once
 * connections close.
 *
 * Cookie layout (the ISS of the SYN-ACK): 5 bits of a 64-second counter, 3 bits of an MSS table
 * index, 24 bits of a keyed hash of the 4-tuple, counter and the peer's ISN. When the SYN
 * carried timestamps, the low 5 bits of our TSval carry window scale and SACK-permitted (as
 * Linux does); without timestamps, a cookie connection has neither option.
 */
import { Instant } from "../time/instant.js";
import { ConfigError, UsageError } from "../util/errors.js";
import { ipToString, type IpAddr } from "../wire/ip-addr.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import type { TcpConfig } from "./config.js";
import { type PeerSyn, peerSynOf, replyToUnexpected, TcpConnection } from "./connection.js";
import { type HashKey, initialSeq, keyedHash32, timestampOffset, tupleWords } from "./isn.js";
import { Seq, type SeqNum } from "../wire/seq.js";

/** Listener limits. */
export interface ListenerOptions {
  /** Half-open connections kept (SYN-RECEIVED). */
  readonly synQueueSize: number;
  /** Established connections waiting for `accept()`. */
  readonly acceptBacklog: number;
  /** "auto": cookies once the SYN queue is full; "always"; "never" (drop instead). */
  readonly synCookies: "auto" | "always" | "never";
  /**
   * Connections this listener produced that may be alive at once: in the accept queue, or
   * accepted and not yet `release`d. At the cap, SYNs and the ACKs that would complete a
   * handshake (a half-open child's or a cookie's) are dropped, so peers retransmit later.
   */
  readonly maxEstablished: number;
}

/**
 * Default cap on a listener's live established connections. An idle connection of the host
 * stack costs about 2.5 KiB of heap (its engine and table entry; buffers hold memory only
 * while they hold data), so 16,384 idle ones take about 40 MiB. A server that closes first
 * keeps each connection in TIME-WAIT for 2 MSL (60 s by default), and those count too: 16,384
 * still leaves room for over 250 such connections a second. Linux's accept backlog cap
 * (somaxconn) is 4,096; this counts accepted connections as well, so it is larger.
 */
export const DEFAULT_MAX_ESTABLISHED = 16_384;

/** Defaults (Linux-like). */
export const DEFAULT_LISTENER_OPTIONS: ListenerOptions = Object.freeze({
  synQueueSize: 256,
  acceptBacklog: 128,
  synCookies: "auto",
  maxEstablished: DEFAULT_MAX_ESTABLISHED,
});

/** A connection ready for the application, with its addresses. */
export interface AcceptedConnection {
  readonly conn: TcpConnection;
  readonly local: IpAddr;
  readonly remote: IpAddr;
}

/** A segment the listener (or one of its half-open children) wants sent. */
export interface ListenerTransmit {
  readonly seg: TcpRepr;
  readonly local: IpAddr;
  readonly remote: IpAddr;
}

/** Listener counters. */
export interface ListenerStats {
  synsIn: number;
  synCookiesSent: number;
  synCookiesAccepted: number;
  synCookiesRejected: number;
  synDrops: number;
  acceptOverflows: number;
  /** SYNs and handshake-completing ACKs dropped because `maxEstablished` was reached. */
  establishedCapDrops: number;
  resetsOut: number;
}

interface Child {
  readonly conn: TcpConnection;
  readonly local: IpAddr;
  readonly remote: IpAddr;
}

/** MSS values a cookie can encode (3 bits). */
const COOKIE_MSS = [536, 1024, 1220, 1400, 1440, 1460, 4312, 8960] as const;
const COOKIE_PERIOD_US = 64_000_000;
/** Bound on stateless replies (SYN cookies, RSTs) waiting for `pollTransmit`. */
export const MAX_PENDING_REPLIES = 1024;
/** Cookies stay valid for this many periods after the current one. */
const COOKIE_MAX_AGE = 2;

/** One listening port. */
export class TcpListener {
  /** The port this listener accepts on. */
  readonly localPort: number = 0;
  readonly #cfg: TcpConfig;
  readonly #opts: ListenerOptions;
  readonly #key: HashKey;
  readonly #syn = new Map<string, Child>();
  readonly #acceptQ: AcceptedConnection[] = [];
  readonly #out: ListenerTransmit[] = [];
  /** Children that may have output. */
  readonly #dirty = new Set<string>();
  /** Counters. */
  readonly stats: ListenerStats = {
    synsIn: 0,
    synCookiesSent: 0,
    synCookiesAccepted: 0,
    synCookiesRejected: 0,
    synDrops: 0,
    acceptOverflows: 0,
    establishedCapDrops: 0,
    resetsOut: 0,
  };
  /** Connections produced and not yet released (accept queue included). */
  #established = 0;

  constructor(cfg: TcpConfig, localPort: number, key: HashKey, opts: Partial<ListenerOptions> = {}) {
    this.#cfg = cfg;
    this.localPort = localPort;
    this.#key = key;
    this.#opts = { ...DEFAULT_LISTENER_OPTIONS, ...opts };
    const cap = this.#opts.maxEstablished;
    if (!(cap === Infinity || (Number.isSafeInteger(cap) && cap >= 1)))
      throw new ConfigError(`maxEstablished = ${cap} must be a positive integer`);
  }

  /** Connections this listener produced that were not released yet (accept queue included). */
  get establishedCount(): number {
    return this.#established;
  }

  /**
   * The owner of a connection this listener produced says it is gone (closed and freed), or
   * takes over its accounting: room for another under `maxEstablished`.
   */
  release(): void {
    if (this.#established === 0) throw new UsageError("release: no established connection to release");
    this.#established--;
  }

  #atCap(): boolean {
    return this.#established >= this.#opts.maxEstablished;
  }

  /** Half-open connections held. */
  get synQueueLength(): number {
    return this.#syn.size;
  }

  /** Connections waiting for `accept()`. */
  get acceptQueueLength(): number {
    return this.#acceptQ.length;
  }

  /**
   * The next established connection, oldest first. Its pending output (an ACK owed for data
   * that came with the handshake) and events (`connected`, ...) are still in it: drain it.
   */
  accept(): AcceptedConnection | undefined {
    return this.#acceptQ.shift();
  }

  /** A segment for this port that matched no established connection. */
  handleSegment(now: Instant, local: IpAddr, remote: IpAddr, seg: TcpRepr): void {
    const key = tupleKey(local, remote, seg.srcPort);
    const child = this.#syn.get(key);
    if (child !== undefined) {
      if ((seg.flags & (TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.ACK && this.#atCap()) {
        // The ACK would complete the handshake: drop it. The child retransmits its SYN-ACK, the
        // peer its ACK, and the handshake completes once there is room (or the child gives up).
        this.stats.establishedCapDrops++;
        return;
      }
      child.conn.handleSegment(now, seg);
      this.#dirty.add(key);
      this.#settle(now, key, child);
      return;
    }
    const f = seg.flags;
    if (f & TcpFlag.RST) return; // RFC 9293 3.10.7.2: ignore
    if (f & TcpFlag.ACK) {
      if (!(f & TcpFlag.SYN) && this.#opts.synCookies !== "never" && this.#tryCookie(now, local, remote, seg))
        return;
      this.#reset(local, remote, seg);
      return;
    }
    if (!(f & TcpFlag.SYN)) return; // no SYN, no ACK, no RST: drop
    this.stats.synsIn++;
    if (this.#acceptQ.length >= this.#opts.acceptBacklog) {
      this.stats.synDrops++; // Linux drops SYNs while the accept queue is full
      return;
    }
    if (this.#atCap()) {
      this.stats.establishedCapDrops++; // likewise while the established cap is reached
      return;
    }
    const mode = this.#opts.synCookies;
    if (mode === "always" || (mode === "auto" && this.#syn.size >= this.#opts.synQueueSize)) {
      this.#sendCookie(now, local, remote, seg);
      return;
    }
    if (this.#syn.size >= this.#opts.synQueueSize) {
      this.stats.synDrops++;
      return;
    }
    const conn = TcpConnection.accept(this.#cfg, this.#params(now, local, remote, seg.srcPort), seg, now);
    this.#syn.set(key, { conn, local, remote });
    this.#dirty.add(key);
  }

  /** Runs the children's timers. */
  handleTimeout(now: Instant): void {
    for (const [key, child] of this.#syn) {
      const t = child.conn.pollTimeout();
      if (t !== undefined && t <= now) {
        child.conn.handleTimeout(now);
        this.#dirty.add(key);
        this.#settle(now, key, child);
      }
    }
  }

  /** The next segment to send, or `undefined`. */
  pollTransmit(now: Instant): ListenerTransmit | undefined {
    const o = this.#out.shift();
    if (o !== undefined) return o;
    for (const key of this.#dirty) {
      const child = this.#syn.get(key);
      const seg = child?.conn.pollTransmit(now);
      if (child !== undefined && seg !== undefined) return { seg, local: child.local, remote: child.remote };
      this.#dirty.delete(key);
    }
    return undefined;
  }

  /** The earliest child deadline. O(SYN queue), which is bounded. */
  pollTimeout(): Instant | undefined {
    let t: Instant | undefined;
    for (const child of this.#syn.values()) t = Instant.earliest(t, child.conn.pollTimeout());
    return t;
  }

  /** Moves an established child to the accept queue, or forgets a dead one. */
  #settle(now: Instant, key: string, child: Child): void {
    const st = child.conn.state;
    if (st === "SYN-RECEIVED") return;
    // Flush what the child still wants to send before it leaves our table.
    for (let s = child.conn.pollTransmit(now); s !== undefined; s = child.conn.pollTransmit(now)) {
      this.#out.push({ seg: s, local: child.local, remote: child.remote });
    }
    this.#syn.delete(key);
    this.#dirty.delete(key);
    if (st === "CLOSED") return;
    this.#enqueue(now, child.conn, child.local, child.remote);
  }

  #enqueue(now: Instant, conn: TcpConnection, local: IpAddr, remote: IpAddr): void {
    if (this.#acceptQ.length >= this.#opts.acceptBacklog) {
      this.stats.acceptOverflows++;
      conn.abort();
      for (let s = conn.pollTransmit(now); s !== undefined; s = conn.pollTransmit(now)) {
        this.#out.push({ seg: s, local, remote });
      }
      return;
    }
    this.#acceptQ.push({ conn, local, remote });
    this.#established++;
  }

  #params(now: Instant, local: IpAddr, remote: IpAddr, remotePort: number, iss?: SeqNum) {
    return {
      localPort: this.localPort,
      remotePort,
      iss: iss ?? initialSeq(this.#key, local, this.localPort, remote, remotePort, now),
      tsOffset: timestampOffset(this.#key, local, this.localPort, remote, remotePort),
      defaultPeerMss: local.length === 16 ? 1220 : 536, // RFC 9293 3.7.1
    };
  }

  #cookieHash(local: IpAddr, remote: IpAddr, remotePort: number, t: number, irs: SeqNum): number {
    const w = tupleWords(local, this.localPort, remote, remotePort);
    w.push(t, irs);
    return keyedHash32(this.#key, w) & 0xff_ffff;
  }

  /** Answers a SYN statelessly with a cookie SYN-ACK. */
  #sendCookie(now: Instant, local: IpAddr, remote: IpAddr, syn: TcpRepr): void {
    const t = Math.floor(now / COOKIE_PERIOD_US) & 31;
    const peerMss = syn.mss ?? 536;
    let idx = 0;
    for (let i = 0; i < COOKIE_MSS.length; i++) if ((COOKIE_MSS[i] as number) <= peerMss) idx = i;
    const cookie = Seq.of((t << 27) | (idx << 24) | this.#cookieHash(local, remote, syn.srcPort, t, syn.seq));
    const ts = syn.timestamps !== undefined && this.#cfg.timestamps;
    const rec: PeerSyn = {
      ...peerSynOf(syn),
      mss: COOKIE_MSS[idx],
      // Without timestamps there is nowhere to remember these options.
      windowScale: ts ? syn.windowScale : undefined,
      sackPermitted: ts && syn.sackPermitted,
    };
    // Build the SYN-ACK exactly as a connection would, then forget the connection.
    const tmp = TcpConnection.accept(
      this.#cfg,
      this.#params(now, local, remote, syn.srcPort, cookie),
      rec,
      now,
    );
    let synAck = tmp.pollTransmit(now);
    if (synAck === undefined) return;
    if (synAck.timestamps !== undefined) {
      const ws =
        synAck.windowScale !== undefined && rec.windowScale !== undefined
          ? Math.min(14, rec.windowScale) + 1
          : 0;
      const opts = ((synAck.sackPermitted ? 1 : 0) << 4) | ws;
      const real = synAck.timestamps.tsVal;
      let v = ((real & ~31) | opts) >>> 0;
      if (Seq.gt(Seq.of(v), Seq.of(real))) v = (v - 32) >>> 0; // never ahead of our clock
      synAck = { ...synAck, timestamps: { tsVal: v, tsEcr: synAck.timestamps.tsEcr } };
    }
    if (this.#out.length >= MAX_PENDING_REPLIES) {
      this.stats.synDrops++; // the owner is not draining: do not queue without bound
      return;
    }
    this.stats.synCookiesSent++;
    this.#out.push({ seg: synAck, local, remote });
  }

  /** Validates a cookie in a bare ACK; on success the connection goes to the accept queue. */
  #tryCookie(now: Instant, local: IpAddr, remote: IpAddr, ack: TcpRepr): boolean {
    const cookie = Seq.sub(ack.ack, 1);
    const t = cookie >>> 27;
    const age = ((Math.floor(now / COOKIE_PERIOD_US) & 31) - t) & 31;
    const irs = Seq.sub(ack.seq, 1);
    if (
      age > COOKIE_MAX_AGE ||
      (cookie & 0xff_ffff) !== this.#cookieHash(local, remote, ack.srcPort, t, irs)
    ) {
      this.stats.synCookiesRejected++;
      return false;
    }
    const idx = (cookie >>> 24) & 7;
    const ts = ack.timestamps;
    const opts = ts === undefined ? 0 : ts.tsEcr & 31;
    const syn: PeerSyn = {
      irs,
      mss: COOKIE_MSS[idx],
      windowScale: opts & 15 ? (opts & 15) - 1 : undefined,
      sackPermitted: (opts & 16) !== 0,
      tsVal: ts?.tsVal,
      window: ack.window,
    };
    if (this.#acceptQ.length >= this.#opts.acceptBacklog) {
      this.stats.acceptOverflows++;
      return true; // drop the ACK; the peer retransmits (Linux behaviour)
    }
    if (this.#atCap()) {
      this.stats.establishedCapDrops++;
      return true; // likewise at the established cap
    }
    const conn = TcpConnection.acceptEstablished(
      this.#cfg,
      this.#params(now, local, remote, ack.srcPort, cookie),
      syn,
      ack,
      now,
    );
    this.stats.synCookiesAccepted++;
    this.#enqueue(now, conn, local, remote);
    return true;
  }

  #reset(local: IpAddr, remote: IpAddr, seg: TcpRepr): void {
    const rst = replyToUnexpected(seg);
    if (rst === undefined || this.#out.length >= MAX_PENDING_REPLIES) return;
    this.stats.resetsOut++;
    this.#out.push({ seg: rst, local, remote });
  }
}

function tupleKey(local: IpAddr, remote: IpAddr, remotePort: number): string {
  return `${ipToString(remote)}|${remotePort}|${ipToString(local)}`;
}
