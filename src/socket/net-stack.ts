/**
 * `NetStack`: the `node:net`-shaped face of one host (`createServer`, `connect`,
 * `createConnection`), and its `Server`. It installs itself as its driver's event handler and
 * routes each stack event to the socket or server it belongs to.
 *
 * Names: `connect({ host })` takes IP literals, plus the names given in `options.hosts`
 * (there is no DNS); anything else fails with ENOTFOUND, asynchronously, as net does.
 */
import { EventEmitter } from "node:events";
import type { HostConn, HostListener, StackEvent } from "../host/stack.js";
import { type IpAddr, ipToString, parseIp } from "../wire/ip-addr.js";
import type { StackDriver } from "./driver.js";
import { type NetError, type NetErrorCode, netError } from "./errors.js";
import { type ConnectOptions, Socket, type SocketAddress, type SocketHost, socketErrno } from "./socket.js";
import { IntMap } from "../util/int-map.js";

/** Options of `new NetStack`. */
export interface NetStackOptions {
  /** Host names and the addresses they stand for (a static hosts file). */
  readonly hosts?: Readonly<Record<string, string>> | undefined;
  /** First port tried for `listen(0)` (default 20000; ports count up from it). */
  readonly firstAutoPort?: number | undefined;
}

/** Options of `createServer` (the subset of `net.ServerOpts` that applies). */
export interface ServerOptions {
  /** Accepted sockets keep their side open after the peer's FIN (default false). */
  readonly allowHalfOpen?: boolean | undefined;
  /** Accepted sockets start paused (default false). */
  readonly pauseOnConnect?: boolean | undefined;
  /** Set TCP_NODELAY on accepted sockets (default false). */
  readonly noDelay?: boolean | undefined;
  /** Enable keep-alive on accepted sockets (default false). */
  readonly keepAlive?: boolean | undefined;
  /** Idle time before the first keep-alive probe, ms. */
  readonly keepAliveInitialDelay?: number | undefined;
}

/** `server.listen` options. */
export interface ListenOptions {
  readonly port?: number | undefined;
  readonly host?: string | undefined;
  readonly backlog?: number | undefined;
  /**
   * Most live connections the listener may have at once (accepted or waiting to be, and not
   * yet freed); past it, handshakes wait, as with a full backlog. Default
   * `DEFAULT_MAX_ESTABLISHED` (16,384). Not in `net`, whose `server.maxConnections` closes
   * connections after accepting them instead.
   */
  readonly maxEstablished?: number | undefined;
}

/** Default accept queue of `server.listen` (Node's). */
export const DEFAULT_SERVER_BACKLOG = 511;

/** One host's sockets and servers, run by a `StackDriver`. */
export class NetStack {
  /** The driver running this host's stack. */
  readonly driver: StackDriver;
  readonly #hosts: ReadonlyMap<string, IpAddr>;
  /** By connection id. */
  readonly #sockets = IntMap.sequential<Socket>();
  readonly #servers = new Map<HostListener, Server>();
  #nextAutoPort: number = 0;
  readonly #socketHost: SocketHost;

  constructor(driver: StackDriver, options: NetStackOptions = {}) {
    this.driver = driver;
    const hosts = new Map<string, IpAddr>();
    for (const [name, text] of Object.entries(options.hosts ?? {})) {
      const a = parseIp(text);
      if (!a.ok) throw new TypeError(`hosts: ${name}: ${a.error}`);
      hosts.set(name.toLowerCase(), a.value);
    }
    this.#hosts = hosts;
    this.#nextAutoPort = options.firstAutoPort ?? 20000;
    this.#socketHost = {
      driver,
      register: (conn, socket) => this.#sockets.set(conn.id, socket),
      resolve: (host) => this.resolve(host),
    };
    driver.setEventHandler((ev) => {
      this.#onEvent(ev);
    });
  }

  /** Creates a server; `connectionListener` is added as a `'connection'` listener. */
  createServer(connectionListener?: (socket: Socket) => void): Server;
  createServer(options: ServerOptions, connectionListener?: (socket: Socket) => void): Server;
  createServer(a?: ServerOptions | ((socket: Socket) => void), b?: (socket: Socket) => void): Server {
    const options = typeof a === "function" ? {} : (a ?? {});
    const listener = typeof a === "function" ? a : b;
    const s = new Server(this, options);
    if (listener !== undefined) s.on("connection", listener);
    return s;
  }

  /** Opens a connection, like `net.connect`. `cb` is a `'connect'` listener. */
  connect(options: ConnectOptions, cb?: () => void): Socket;
  connect(port: number, host?: string, cb?: () => void): Socket;
  connect(port: number, cb: () => void): Socket;
  connect(a: ConnectOptions | number, b?: string | (() => void), c?: () => void): Socket {
    let opts: ConnectOptions;
    let cb: (() => void) | undefined;
    if (typeof a === "number") {
      opts = typeof b === "string" ? { port: a, host: b } : { port: a };
      cb = typeof b === "function" ? b : c;
    } else {
      opts = a;
      cb = typeof b === "function" ? b : undefined;
    }
    const s = new Socket(this.#socketHost, opts);
    return s.connect(opts, cb);
  }

  /** Same as `connect` (net's alias). */
  createConnection(options: ConnectOptions, cb?: () => void): Socket {
    return this.connect(options, cb);
  }

  /** The address for `host`: an IP literal or a configured name; otherwise ENOTFOUND. */
  resolve(host: string): IpAddr | NetErrorCode {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    const lit = parseIp(bare);
    if (lit.ok) return lit.value;
    return this.#hosts.get(bare.toLowerCase()) ?? "ENOTFOUND";
  }

  /** Number of connections this NetStack routes events for (open sockets and orphans). */
  get trackedConnections(): number {
    return this.#sockets.size;
  }

  /** Internal: a server started listening on `l`. */
  _addListener(l: HostListener, s: Server): void {
    this.#servers.set(l, s);
  }

  /** Internal: a server stopped listening on `l`. */
  _removeListener(l: HostListener): void {
    this.#servers.delete(l);
  }

  /** Internal: a port for `listen(0)`. */
  _autoPort(): number {
    const p = this.#nextAutoPort;
    this.#nextAutoPort = p >= 32767 ? 20000 : p + 1;
    return p;
  }

  /** Internal: wraps an accepted connection. */
  _accepted(conn: HostConn, options: ServerOptions): Socket {
    return new Socket(this.#socketHost, { allowHalfOpen: options.allowHalfOpen }, conn);
  }

  #onEvent(ev: StackEvent): void {
    if (ev.kind === "accept") {
      const server = this.#servers.get(ev.listener);
      for (
        let c = this.driver.stack.accept(ev.listener);
        c !== undefined;
        c = this.driver.stack.accept(ev.listener)
      ) {
        if (server === undefined) {
          this.driver.stack.abort(this.driver.now(), c);
          continue;
        }
        server._onAccept(c);
      }
      return;
    }
    const s = this.#sockets.get(ev.conn.id);
    if (ev.event.kind === "closed") this.#sockets.delete(ev.conn.id);
    s?._onConnEvent(ev.event);
  }
}

/**
 * The events of a `Server` and their arguments. `on`, `once`, `off`, `emit` and friends accept
 * these names only, and type each listener's arguments (a misspelled name does not compile).
 */
export interface ServerEvents {
  listening: [];
  connection: [socket: Socket];
  close: [];
  error: [error: Error];
}

/** A listener of `Server` event `E`. */
export type ServerListener<E extends keyof ServerEvents> = (...args: ServerEvents[E]) => void;

/** A listening socket, like `net.Server`: events `listening`, `connection`, `close`, `error`. */
export class Server extends EventEmitter {
  readonly #net: NetStack;
  readonly #options: ServerOptions;
  #listener: HostListener | undefined;
  #address: SocketAddress | undefined;
  #closing = false;
  readonly #sockets = new Set<Socket>();
  #closeCallbacks: ((err?: Error) => void)[] = [];

  /** Internal: use `NetStack.createServer`. */
  constructor(net: NetStack, options: ServerOptions = {}) {
    super();
    this.#net = net;
    this.#options = options;
  }

  override on<E extends keyof ServerEvents>(event: E, listener: ServerListener<E>): this {
    return super.on(event, listener);
  }

  override once<E extends keyof ServerEvents>(event: E, listener: ServerListener<E>): this {
    return super.once(event, listener);
  }

  override addListener<E extends keyof ServerEvents>(event: E, listener: ServerListener<E>): this {
    return super.addListener(event, listener);
  }

  override prependListener<E extends keyof ServerEvents>(event: E, listener: ServerListener<E>): this {
    return super.prependListener(event, listener);
  }

  override prependOnceListener<E extends keyof ServerEvents>(event: E, listener: ServerListener<E>): this {
    return super.prependOnceListener(event, listener);
  }

  override off<E extends keyof ServerEvents>(event: E, listener: ServerListener<E>): this {
    return super.off(event, listener);
  }

  override removeListener<E extends keyof ServerEvents>(event: E, listener: ServerListener<E>): this {
    return super.removeListener(event, listener);
  }

  override emit<E extends keyof ServerEvents>(event: E, ...args: ServerEvents[E]): boolean {
    return super.emit(event, ...args);
  }

  /** True while listening. */
  get listening(): boolean {
    return this.#listener !== undefined;
  }

  /**
   * Starts listening: `listen(port[, host][, backlog][, cb])` or `listen({ port, host,
   * backlog, maxEstablished }[, cb])`. Port 0 or no port picks a free one. `'listening'` (and `cb`) follow on
   * the next tick; EADDRINUSE and friends arrive as `'error'`.
   */
  listen(...args: unknown[]): this {
    let port = 0;
    let host: string | undefined;
    let backlog = DEFAULT_SERVER_BACKLOG;
    let maxEstablished: number | undefined;
    let cb: (() => void) | undefined;
    const first = args[0];
    let rest: unknown[];
    if (typeof first === "object" && first !== null) {
      const o = first as ListenOptions;
      port = o.port ?? 0;
      host = o.host;
      backlog = o.backlog ?? backlog;
      maxEstablished = o.maxEstablished;
      rest = args.slice(1);
    } else {
      if (typeof first === "number" || typeof first === "string") port = Number(first);
      rest = args.slice(first === undefined || typeof first === "function" ? 0 : 1);
      if (typeof rest[0] === "string") host = rest.shift() as string;
      if (typeof rest[0] === "number") backlog = rest.shift() as number;
    }
    if (typeof rest[0] === "function") cb = rest[0] as () => void;
    if (cb !== undefined) this.once("listening", cb);
    const fail = (e: NetError): this => {
      process.nextTick(() => this.emit("error", e));
      return this;
    };
    if (this.#listener !== undefined)
      throw new Error("ERR_SERVER_ALREADY_LISTEN: listen method has been called more than once");
    let addr: IpAddr | undefined;
    if (host !== undefined && host !== "0.0.0.0" && host !== "::") {
      const a = this.#net.resolve(host);
      if (typeof a === "string") return fail(netError(a, "getaddrinfo", host));
      addr = a;
    }
    const stack = this.#net.driver.stack;
    const tries = port === 0 ? 12768 : 1;
    for (let i = 0; i < tries; i++) {
      const p = port === 0 ? this.#net._autoPort() : port;
      try {
        this.#listener = stack.listen(p, addr, backlog, { maxEstablished });
        break;
      } catch (e) {
        const code = socketErrno(e) ?? "EINVAL";
        if (code === "EADDRINUSE" && port === 0) continue;
        return fail(netError(code, "listen", host ?? "::", p));
      }
    }
    const l = this.#listener;
    if (l === undefined) return fail(netError("EADDRINUSE", "listen", host ?? "::", 0));
    this.#net._addListener(l, this);
    this.#address = {
      address: addr === undefined ? (host ?? "::") : ipToString(addr),
      family:
        addr === undefined ? (host === "0.0.0.0" ? "IPv4" : "IPv6") : addr.length === 4 ? "IPv4" : "IPv6",
      port: l.port,
    };
    process.nextTick(() => this.emit("listening"));
    return this;
  }

  /** Where the server listens, or null when it does not. */
  address(): SocketAddress | null {
    return this.#listener === undefined ? null : (this.#address ?? null);
  }

  /**
   * Stops accepting connections. `'close'` (and `cb`) follow once every accepted socket has
   * closed; `cb` gets ERR_SERVER_NOT_RUNNING when the server was not listening.
   */
  close(cb?: (err?: Error) => void): this {
    const l = this.#listener;
    if (l === undefined) {
      if (cb !== undefined) {
        const e = Object.assign(new Error("Server is not running."), { code: "ERR_SERVER_NOT_RUNNING" });
        process.nextTick(() => {
          cb(e);
        });
      }
      return this;
    }
    if (cb !== undefined) this.#closeCallbacks.push(cb);
    this.#listener = undefined;
    this.#closing = true;
    this.#net._removeListener(l);
    const d = this.#net.driver;
    d.stack.closeListener(d.now(), l);
    d.flush();
    this.#maybeClosed();
    return this;
  }

  /** Calls `cb(null, count)` with the number of open accepted sockets. */
  getConnections(cb: (err: Error | null, count: number) => void): this {
    const n = this.#sockets.size;
    process.nextTick(() => {
      cb(null, n);
    });
    return this;
  }

  /** Does nothing (the driver decides what keeps the process alive). */
  ref(): this {
    return this;
  }

  /** Does nothing (the driver decides what keeps the process alive). */
  unref(): this {
    return this;
  }

  /** Internal: the stack accepted `conn` on this server's listener. */
  _onAccept(conn: HostConn): void {
    const o = this.#options;
    const s = this.#net._accepted(conn, o);
    s.server = this;
    this.#sockets.add(s);
    s.once("close", () => {
      this.#sockets.delete(s);
      this.#maybeClosed();
    });
    if (o.noDelay === true) s.setNoDelay(true);
    if (o.keepAlive === true) s.setKeepAlive(true, o.keepAliveInitialDelay ?? 0);
    if (o.pauseOnConnect === true) s.pause();
    this.emit("connection", s);
  }

  #maybeClosed(): void {
    if (!this.#closing || this.#sockets.size > 0) return;
    this.#closing = false;
    const cbs = this.#closeCallbacks;
    this.#closeCallbacks = [];
    process.nextTick(() => {
      for (const cb of cbs) cb();
      this.emit("close");
    });
  }
}
