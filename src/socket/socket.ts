/**
 * `Socket`: a `stream.Duplex` over one connection of a `HostStack`, behaving like `net.Socket`
 * where applications (and Node's own `http`) rely on it.
 *
 * Theory of operation
 * - Writing: `_write` hands the chunk to the stack without copying (`HostStack.send` keeps a
 *   reference, so callers must not modify a Buffer after writing it, exactly as with
 *   `net.Socket`). When the TCP send buffer takes only part of it, the rest waits for the
 *   stack's `writable` event and the write callback waits with it; the Writable's own buffer
 *   then grows past `writableHighWaterMark`, so `write()` returns false and `'drain'` follows
 *   once the stack has taken everything.
 * - Reading: `_read` sets `#reading`; `#pull` moves in-order chunks from the stack to `push()`
 *   (zero-copy views of received segments) until `push` returns false. Unread data then stays
 *   in the TCP receive buffer, whose window closes; the next `_read` pulls again and the stack
 *   reopens the window. The peer's FIN becomes `push(null)` once every byte before it is read.
 * - `end()` (via `_final`) sends our FIN after the queued data; reading continues (half-close).
 *   With `allowHalfOpen: false` (the default) the Duplex ends our side after the peer's.
 * - `destroy()`: if our FIN is queued and nothing is left unread the connection is left to
 *   finish on its own (LAST-ACK, TIME-WAIT); otherwise it is reset (RST), and always when
 *   destroyed with an error or through `resetAndDestroy()`.
 * - Errors come from the stack's `closed` event: ECONNREFUSED / ETIMEDOUT (or an ICMP error:
 *   EHOSTUNREACH / ENETUNREACH, RFC 1122 4.2.3.9) while connecting,
 *   ECONNRESET / ETIMEDOUT afterwards. A reset that arrives after the peer's FIN is reported as
 *   EPIPE on the next write (Linux reports EPIPE for a reset in CLOSE-WAIT).
 * - Idle timeout (`setTimeout`) runs on the driver's clock: virtual in the simulator.
 */
import type * as net from "node:net";
import { Duplex, type DuplexOptions } from "node:stream";
import type { HostConn } from "../host/stack.js";
import type { TcpConnection } from "../tcp/connection.js";
import type { ConnEvent, TcpErrorCode } from "../tcp/types.js";
import { Duration, Instant } from "../time/instant.js";
import type { IpAddr } from "../wire/ip-addr.js";
import { ipToString } from "../wire/ip-addr.js";
import type { DriverTimer, StackDriver } from "./driver.js";
import { UsageError } from "../util/errors.js";
import { type NetError, type NetErrorCode, netError } from "./errors.js";

/** What a `Socket` needs from the `NetStack` that made it. */
export interface SocketHost {
  readonly driver: StackDriver;
  /** Routes the connection's events to `socket`. */
  register(conn: HostConn, socket: Socket): void;
  /** An IP address for `host` (a literal or a configured name), or an error code. */
  resolve(host: string): IpAddr | NetErrorCode;
}

/** Options of a socket (the subset of `net.SocketConstructorOpts` that applies). */
export interface SocketOptions {
  /** Keep our side open after the peer's FIN (default false: end it too). */
  readonly allowHalfOpen?: boolean | undefined;
  readonly readableHighWaterMark?: number | undefined;
  readonly writableHighWaterMark?: number | undefined;
}

/** Where to connect (the subset of `net.TcpNetConnectOpts` that applies). */
export interface ConnectOptions extends SocketOptions {
  readonly port: number;
  /** An IP literal or a name the `NetStack` knows (default `localhost`). */
  readonly host?: string | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly noDelay?: boolean | undefined;
  readonly keepAlive?: boolean | undefined;
  readonly keepAliveInitialDelay?: number | undefined;
  /** Idle timeout in milliseconds, as `setTimeout`. */
  readonly timeout?: number | undefined;
}

/** `socket.address()`: like `net.AddressInfo`. */
export interface SocketAddress {
  readonly address: string;
  readonly family: "IPv4" | "IPv6";
  readonly port: number;
}

/** `readyState` values, as `net.Socket` spells them. */
export type SocketReadyState = "opening" | "open" | "readOnly" | "writeOnly" | "closed";

type WriteCallback = (error?: Error | null) => void;

/** A TCP connection of a `NetStack` as a Node Duplex stream; see the module comment. */
export class Socket extends Duplex {
  readonly #host: SocketHost;
  #conn: HostConn | undefined;
  /** True from `connect()` until the handshake completes or fails. */
  connecting = false;
  /** Bytes read by the application side so far (pushed into the stream). */
  bytesRead = 0;
  /** The idle timeout in milliseconds, once `setTimeout` was called. */
  timeout?: number;
  /** The server that accepted this socket, if any (Node's http reads it). */
  server: unknown;
  /**
   * As `net.Socket`: the `address:port` tried by `connect` (there is no happy-eyeballs family
   * selection here, so at most one: the one connected to).
   */
  readonly autoSelectFamilyAttemptedAddresses: string[] = [];

  #established = false;
  #reading = false;
  #pulling = false;
  #eofPushed = false;
  #peerFin = false;
  #finSent = false;
  #tcpClosed = false;
  /** Set once the stack connection is no longer ours (destroyed, or reset and destroyed). */
  #detached = false;
  /** An error to report on the next write (a reset after the peer's FIN). */
  #deferred: NetError | undefined;
  #pending: { chunk: Uint8Array; cb: WriteCallback; taken: number } | undefined;
  #finalCb: WriteCallback | undefined;
  #bytesSent = 0;
  #peerEnded = false;
  #peer: { host: string; port: number } | undefined;
  // Options set before the connection exists.
  #noDelay: boolean | undefined;
  #keepAlive: { on: boolean; delayMs: number } | undefined;
  // Idle timeout.
  #idleUs = 0;
  #lastActive: Instant = Instant.ZERO;
  #idleTimer: DriverTimer | undefined;
  #idleTimerAt: Instant | undefined;

  /** Internal: sockets are made by `NetStack.connect` and by servers. */
  constructor(host: SocketHost, options: SocketOptions = {}, conn?: HostConn) {
    const dopts: DuplexOptions = {
      allowHalfOpen: options.allowHalfOpen ?? false,
      emitClose: false, // 'close' carries hadError, emitted by _destroy as net does
      autoDestroy: true,
      decodeStrings: true,
    };
    if (options.readableHighWaterMark !== undefined)
      dopts.readableHighWaterMark = options.readableHighWaterMark;
    if (options.writableHighWaterMark !== undefined)
      dopts.writableHighWaterMark = options.writableHighWaterMark;
    super(dopts);
    this.#host = host;
    // As net: once the peer ended a non-half-open socket, writing after our own end is EPIPE.
    if (options.allowHalfOpen !== true) {
      this.on("end", () => {
        this.#peerEnded = true;
      });
    }
    if (conn !== undefined) {
      this.#conn = conn;
      this.#established = true;
      this.#peer = { host: ipToString(conn.remoteAddr), port: conn.remotePort };
      host.register(conn, this);
      this.#lastActive = host.driver.now();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Connecting

  /**
   * Starts connecting (on the next tick, as `net` does). `cb` is added as a `'connect'`
   * listener. Used by `NetStack.connect`.
   */
  /** A path (IPC: a string, or options without a port) is `net.Socket`'s too, but throws `UsageError` here. */
  connect(target: ConnectOptions | net.SocketConnectOpts | number | string, cb?: () => void): this;
  connect(port: number, host?: string, cb?: () => void): this;
  connect(
    a: ConnectOptions | net.SocketConnectOpts | number | string,
    b?: string | (() => void),
    c?: () => void,
  ): this {
    // An options object with a port is TCP even with a `path` (http passes its request path).
    if (typeof a === "string" || (typeof a === "object" && !("port" in a))) {
      throw new UsageError("IPC paths are not supported: connect to a port");
    }
    const cb = typeof b === "function" ? b : c;
    // net's TCP options read as ours: the fields both have mean the same; the rest are ignored.
    const options: ConnectOptions =
      typeof a === "number" ? { port: a, host: typeof b === "string" ? b : undefined } : a;
    if (this.#conn !== undefined || this.connecting)
      throw new Error("socket is already connected or connecting");
    if (cb !== undefined) this.once("connect", cb);
    this.connecting = true;
    if (options.noDelay === true) this.#noDelay = true;
    if (options.keepAlive === true)
      this.#keepAlive = { on: true, delayMs: options.keepAliveInitialDelay ?? 0 };
    if (options.timeout !== undefined) this.setTimeout(options.timeout);
    process.nextTick(() => {
      this.#startConnect(options);
    });
    return this;
  }

  #startConnect(o: ConnectOptions): void {
    if (this.destroyed) return;
    const hostName = o.host ?? "localhost";
    this.#peer = { host: hostName, port: o.port };
    const addr = this.#host.resolve(hostName);
    if (typeof addr === "string") {
      this.destroy(netError(addr, addr === "ENOTFOUND" ? "getaddrinfo" : "connect", hostName, o.port));
      return;
    }
    this.#peer = { host: ipToString(addr), port: o.port };
    this.autoSelectFamilyAttemptedAddresses.push(`${this.#peer.host}:${o.port}`);
    let localAddr: IpAddr | undefined;
    if (o.localAddress !== undefined) {
      const l = this.#host.resolve(o.localAddress);
      if (typeof l === "string") {
        this.destroy(netError("EADDRNOTAVAIL", "connect", o.localAddress, o.localPort));
        return;
      }
      localAddr = l;
    }
    const d = this.#host.driver;
    let conn: HostConn;
    try {
      conn = d.stack.connect(d.now(), addr, o.port, { localAddr, localPort: o.localPort });
    } catch (e) {
      const code = socketErrno(e) ?? "EINVAL";
      this.destroy(netError(code, "connect", this.#peer.host, o.port));
      return;
    }
    this.#conn = conn;
    this.#host.register(conn, this);
    this.#applyOptions();
    this.#activity();
    this.#sendPending();
    d.flush();
  }

  #applyOptions(): void {
    const noDelay = this.#noDelay;
    if (noDelay !== undefined) {
      this.#configure((tcp) => {
        tcp.setNoDelay(noDelay);
      });
    }
    const ka = this.#keepAlive;
    if (ka !== undefined) {
      this.#configure((tcp, now) => {
        tcp.setKeepAlive(now, ka.on, ka.delayMs > 0 ? Duration.fromMillis(ka.delayMs) : undefined);
      });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Stack events (called by NetStack)

  /** Internal: a stack event of this socket's connection. */
  _onConnEvent(ev: ConnEvent): void {
    if (this.#detached || this.destroyed) return;
    switch (ev.kind) {
      case "connected":
        if (this.connecting) {
          this.connecting = false;
          this.#established = true;
          this.#activity();
          this.emit("connect");
          this.emit("ready");
          const f = this.#finalCb;
          if (f !== undefined) {
            this.#finalCb = undefined;
            this._final(f);
          }
          this.#pull();
        }
        return;
      case "acked":
        return;
      case "writable":
        this.#sendPending();
        return;
      case "readable":
        this.#pull();
        return;
      case "peer-fin":
        this.#peerFin = true;
        this.#pull();
        return;
      case "closed":
        this.#onClosed(ev.error);
        return;
    }
  }

  #onClosed(error: TcpErrorCode | undefined): void {
    this.#tcpClosed = true;
    const peer = this.#peer;
    if (error === undefined) {
      // Closed cleanly (TIME-WAIT over, our FIN acknowledged) or by our own abort.
      this.#pull();
      if (this.#pending !== undefined) this.#failPending(netError("EPIPE", "write"));
      return;
    }
    if (this.connecting) {
      this.destroy(netError(error, "connect", peer?.host, peer?.port));
      return;
    }
    if (this.#peerFin) {
      const e = netError("EPIPE", "write");
      if (this.#pending !== undefined) this.#failPending(e);
      else this.#deferred = e;
      this.#pull();
      return;
    }
    this.destroy(netError(error, "read"));
  }

  #failPending(e: NetError): void {
    const p = this.#pending;
    this.#pending = undefined;
    p?.cb(e);
  }

  // -------------------------------------------------------------------------------------------
  // Duplex implementation

  /**
   * `Duplex.write`, except that writing after the peer ended a non-half-open socket (and we
   * ended too) fails with EPIPE "This socket has been ended by the other party", as net does.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | WriteCallback, cb?: WriteCallback): boolean {
    if (this.#peerEnded && this.writableEnded) {
      const done = typeof encoding === "function" ? encoding : cb;
      const e = Object.assign(new Error("This socket has been ended by the other party"), { code: "EPIPE" });
      if (done !== undefined) {
        process.nextTick(() => {
          done(e);
        });
      }
      this.destroy(e);
      return false;
    }
    if (typeof encoding === "function") return super.write(chunk, encoding);
    return encoding === undefined ? super.write(chunk, cb) : super.write(chunk, encoding, cb);
  }

  /** Internal (stream): the consumer wants data. */
  override _read(): void {
    this.#reading = true;
    this.#pull();
  }

  #pull(): void {
    const c = this.#conn;
    if (!this.#reading || this.#pulling || c === undefined || !this.#established || this.#eofPushed) return;
    const d = this.#host.driver;
    this.#pulling = true;
    let took = false;
    try {
      // A fresh `now` per call: push() may run 'data' handlers that call the stack later.
      for (let chunk = d.stack.recv(d.now(), c); chunk !== undefined; chunk = d.stack.recv(d.now(), c)) {
        took = true;
        this.bytesRead += chunk.length;
        if (!this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
          this.#reading = false;
          break;
        }
      }
      if (took) this.#activity();
      // The stack's phase-independent view: the same whether the connection runs on the host
      // or on an offload target (the peer's FIN arrives as a `peer-fin` event either way).
      if ((this.#peerFin || this.#tcpClosed) && d.stack.readable(c) === 0) {
        this.#eofPushed = true;
        this.push(null);
      }
    } finally {
      this.#pulling = false;
    }
    if (took) d.flush();
  }

  /** Internal (stream): hands `chunk` to the stack; `cb` runs once the stack took all of it. */
  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: WriteCallback): void {
    this.#pending = { chunk, cb, taken: 0 };
    if (this.#conn !== undefined) this.#sendPending();
  }

  #sendPending(): void {
    const p = this.#pending;
    const c = this.#conn;
    if (p === undefined || c === undefined) return;
    if (this.#deferred !== undefined) {
      this.#failPending(this.#deferred);
      return;
    }
    const d = this.#host.driver;
    let n: number;
    try {
      n = d.stack.send(d.now(), c, p.chunk);
    } catch {
      // The engine refused: the connection is closing or gone.
      this.#failPending(netError("EPIPE", "write"));
      return;
    }
    if (n > 0) {
      this.#bytesSent += n;
      p.taken += n;
      this.#activity();
    }
    if (n === p.chunk.length) {
      this.#pending = undefined;
      d.flush();
      p.cb();
      return;
    }
    p.chunk = p.chunk.subarray(n); // a view; the stack holds the part it took
    d.flush();
  }

  /** Internal (stream): `end()` was called and every write is done: send our FIN. */
  override _final(cb: WriteCallback): void {
    const c = this.#conn;
    if (c === undefined || !this.#established) {
      this.#finalCb = cb; // FIN after the handshake, as net does
      return;
    }
    if (this.#deferred === undefined && !this.#tcpClosed) {
      const d = this.#host.driver;
      d.stack.close(d.now(), c);
      this.#finSent = true;
      d.flush();
    }
    // Asynchronous like net's shutdown request: a destroy in the same tick suppresses 'finish'.
    process.nextTick(cb);
  }

  /** Internal (stream): releases the connection (RST unless it can finish by itself). */
  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    this.#pending = undefined;
    const c = this.#conn;
    if (c !== undefined && !this.#detached && !this.#tcpClosed) {
      const d = this.#host.driver;
      const graceful = error === null && this.#finSent && d.stack.readable(c) === 0;
      if (graceful) {
        d.stack.configure(d.now(), c, (tcp) => {
          tcp.shutdownRead(d.now());
        });
      } else {
        d.stack.abort(d.now(), c);
      }
      d.flush();
    }
    this.#detached = true;
    this.connecting = false;
    cb(error);
    process.nextTick(() => this.emit("close", error !== null));
  }

  /** Ends our side, then destroys the socket once the write side finished (as `net`). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once("finish", () => this.destroy());
  }

  /** Resets the connection (RST) and destroys the socket (`net.Socket.resetAndDestroy`). */
  resetAndDestroy(): this {
    const c = this.#conn;
    if (c !== undefined && !this.#tcpClosed && !this.#detached) {
      const d = this.#host.driver;
      d.stack.abort(d.now(), c);
      this.#detached = true;
      d.flush();
    }
    return this.destroy();
  }

  // -------------------------------------------------------------------------------------------
  // Options

  /** TCP_NODELAY on (default) or off. */
  setNoDelay(noDelay = true): this {
    this.#noDelay = noDelay;
    this.#configure((tcp) => {
      tcp.setNoDelay(noDelay);
    });
    return this;
  }

  /** Keep-alive on or off; `initialDelay` (ms) is the idle time before the first probe. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.#keepAlive = { on: enable, delayMs: initialDelay };
    this.#configure((tcp, now) => {
      tcp.setKeepAlive(now, enable, initialDelay > 0 ? Duration.fromMillis(initialDelay) : undefined);
    });
    return this;
  }

  /**
   * Emits `'timeout'` after `ms` milliseconds of inactivity (driver clock); 0 disables. The
   * socket is not closed: the application decides. `cb` becomes a one-time listener.
   */
  setTimeout(ms: number, cb?: () => void): this {
    this.timeout = ms;
    if (cb !== undefined) {
      if (ms === 0) this.removeListener("timeout", cb);
      else this.once("timeout", cb);
    }
    this.#idleUs = Math.max(0, Math.round(ms * 1000));
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    this.#idleTimerAt = undefined;
    if (this.#idleUs > 0 && !this.destroyed) {
      this.#lastActive = this.#host.driver.now();
      this.#armIdle(Instant.add(this.#lastActive, Duration.fromMicros(this.#idleUs)));
    }
    return this;
  }

  /** Does nothing: what keeps the process alive is the driver's business. */
  ref(): this {
    return this;
  }

  /** Does nothing: what keeps the process alive is the driver's business. */
  unref(): this {
    return this;
  }

  /** Applies an option change through the stack, wherever the connection runs (offloaded too). */
  #configure(f: (tcp: TcpConnection, now: Instant) => void): void {
    const c = this.#conn;
    if (c === undefined || this.#tcpClosed || this.#detached) return;
    const d = this.#host.driver;
    const now = d.now();
    d.stack.configure(now, c, (tcp) => {
      f(tcp, now);
    });
    d.flush();
  }

  #activity(): void {
    if (this.#idleUs === 0) return;
    this.#lastActive = this.#host.driver.now();
    if (this.#idleTimerAt === undefined)
      this.#armIdle(Instant.add(this.#lastActive, Duration.fromMicros(this.#idleUs)));
  }

  #armIdle(at: Instant): void {
    this.#idleTimerAt = at;
    this.#idleTimer = this.#host.driver.timer(at, () => {
      this.#idleTimer = undefined;
      this.#idleTimerAt = undefined;
      if (this.destroyed || this.#idleUs === 0) return;
      const due = Instant.add(this.#lastActive, Duration.fromMicros(this.#idleUs));
      if (due > this.#host.driver.now()) this.#armIdle(due);
      else this.emit("timeout"); // re-armed by the next activity
    });
  }

  // -------------------------------------------------------------------------------------------
  // Addresses and state

  /** The peer's address, once known. */
  get remoteAddress(): string | undefined {
    return this.#conn === undefined ? undefined : ipToString(this.#conn.remoteAddr);
  }
  /** The peer's port, once known. */
  get remotePort(): number | undefined {
    return this.#conn?.remotePort;
  }
  /** `'IPv4'` or `'IPv6'`, once known. */
  get remoteFamily(): "IPv4" | "IPv6" | undefined {
    return this.#conn === undefined ? undefined : family(this.#conn.remoteAddr);
  }

  // Our address, port and family, once bound (undefined before). Declared as optional
  // properties, as `net.Socket` declares them (so our socket is assignable to it even under
  // `exactOptionalPropertyTypes`), and defined as getters on the prototype below.
  /** Our address, once bound. */
  declare readonly localAddress?: string;
  /** Our port, once bound. */
  declare readonly localPort?: number;
  /** `'IPv4'` or `'IPv6'`, once bound. */
  declare readonly localFamily?: "IPv4" | "IPv6";

  static {
    const getters: Record<"localAddress" | "localPort" | "localFamily", (conn: HostConn) => string | number> =
      {
        localAddress: (c) => ipToString(c.localAddr),
        localPort: (c) => c.localPort,
        localFamily: (c) => family(c.localAddr),
      };
    for (const [name, get] of Object.entries(getters)) {
      Object.defineProperty(Socket.prototype, name, {
        configurable: true,
        get(this: Socket) {
          return this.#conn === undefined ? undefined : get(this.#conn);
        },
      });
    }
  }

  /** Our address, family and port (`{}` before the socket is bound, as net). */
  address(): SocketAddress | Record<string, never> {
    const c = this.#conn;
    if (c === undefined) return {};
    return { address: ipToString(c.localAddr), family: family(c.localAddr), port: c.localPort };
  }

  /** Bytes handed to the stack plus bytes still buffered for writing. */
  /** As `net.Socket` (deprecated there): the bytes buffered for writing, `writableLength`. */
  get bufferSize(): number {
    return this.writableLength;
  }

  get bytesWritten(): number {
    return this.#bytesSent + this.writableLength - (this.#pending?.taken ?? 0);
  }

  /** `opening`, `open`, `readOnly`, `writeOnly` or `closed`, as net computes it. */
  get readyState(): SocketReadyState {
    if (this.connecting) return "opening";
    if (this.readable && this.writable) return "open";
    if (this.readable && !this.writable) return "readOnly";
    if (!this.readable && this.writable) return "writeOnly";
    return "closed";
  }

  /** True until the socket is connected (as net: no connection yet, or still connecting). */
  get pending(): boolean {
    return this.#conn === undefined || this.connecting;
  }

  /** The stack connection, once it exists (for tests and diagnostics). */
  get connection(): HostConn | undefined {
    return this.#conn;
  }
}

function family(a: IpAddr): "IPv4" | "IPv6" {
  return a.length === 4 ? "IPv4" : "IPv6";
}

/** The POSIX code of a `SocketError` thrown by the stack, if `e` is one. */
export function socketErrno(e: unknown): NetErrorCode | undefined {
  if (e instanceof Error && "errno" in e && typeof e.errno === "string") {
    const code = e.errno;
    if (code === "EADDRINUSE" || code === "EADDRNOTAVAIL" || code === "ENETUNREACH" || code === "EINVAL")
      return code;
  }
  return undefined;
}
