/**
 * TCP Fast Open, the client side (RFC 7413): the option, and the cache of the cookies servers
 * gave us.
 *
 * A client socket that asks for fast open (`TCP_FASTOPEN`, then `sendto` with data) sends its
 * SYN with the Fast Open option: with the server's cookie and the first data when the cache
 * holds one, empty (a cookie request) when it holds nothing, not at all when the server failed
 * fast open recently. What the SYN-ACK says updates the cache (`FastOpenCache.update`).
 */
import { Duration, Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";

/** The Fast Open option's kind (RFC 7413 4.1.1). */
export const FAST_OPEN_OPTION = 34;
/** Cookie lengths a server may give (RFC 7413 4.1.1: 4 to 16 bytes; an even number, as TFO servers make them). */
export const FAST_OPEN_MIN_COOKIE = 4;
export const FAST_OPEN_MAX_COOKIE = 16;

/** Whether `cookie` is one a client keeps: 4 to 16 bytes, an even number of them. */
export function validFastOpenCookie(cookie: Uint8Array): boolean {
  return (
    cookie.length >= FAST_OPEN_MIN_COOKIE && cookie.length <= FAST_OPEN_MAX_COOKIE && cookie.length % 2 === 0
  );
}

/** What a client's SYN carries: a cookie and up to `maxData` bytes, or a cookie request. */
export interface FastOpenRequest {
  /** The server's cookie, or `undefined` for a cookie request (an empty option, no data). */
  readonly cookie: Uint8Array | undefined;
  /** Most data bytes the SYN may carry (the server's MSS from when the cookie came). */
  readonly maxData: number;
}

/** What the SYN-ACK answered to a fast open SYN. */
export interface FastOpenOutcome {
  /** The SYN carried a cookie (not a cookie request). */
  readonly sentCookie: boolean;
  /** Data bytes the SYN carried, and whether the SYN-ACK acknowledged all of them. */
  readonly synData: number;
  readonly synDataAcked: boolean;
  /** The cookie in the SYN-ACK's Fast Open option, if it had one (maybe of a bad length). */
  readonly cookie: Uint8Array | undefined;
  /** The server's MSS (for the data of the next SYN). */
  readonly peerMss: number;
}

interface Entry {
  cookie: Uint8Array | undefined;
  mss: number;
  /** Fast open is off toward this server until then (it failed it). */
  disabledUntil: Instant | undefined;
}

/** A SYN that asks for a cookie (shared: it carries nothing of its own). */
const COOKIE_REQUEST: FastOpenRequest = Object.freeze({ cookie: undefined, maxData: 0 });

/** Defaults of `FastOpenCache`. */
export const FAST_OPEN_CACHE_ENTRIES = 1024;
/** How long a server that failed fast open is left alone (FreeBSD's path_disable_time: 60 s). */
export const FAST_OPEN_DISABLE_US = 60_000_000;

/**
 * The client's cookies by server address, at most `capacity` servers (the oldest entry goes
 * first). `enabled` false: no fast open at all, and nothing is kept.
 */
export class FastOpenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #capacity: number = 0;
  readonly #disableFor: Duration = 0 as Duration;
  #enabled = true;

  constructor(capacity = FAST_OPEN_CACHE_ENTRIES, disableFor = Duration.fromMicros(FAST_OPEN_DISABLE_US)) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new UsageError(`the fast open cache needs room for one server at least, not ${capacity}`);
    this.#capacity = capacity;
    this.#disableFor = disableFor;
  }

  /** Client fast open on or off; turning it off forgets every cookie. */
  get enabled(): boolean {
    return this.#enabled;
  }
  set enabled(on: boolean) {
    this.#enabled = on;
    if (!on) this.#entries.clear();
  }

  /** Servers held. */
  get size(): number {
    return this.#entries.size;
  }

  /** What a fast open SYN toward `server` carries now, or `undefined` for a plain SYN. */
  request(server: string, now: Instant): FastOpenRequest | undefined {
    if (!this.#enabled) return undefined;
    const e = this.#entries.get(server);
    if (e === undefined) return COOKIE_REQUEST;
    if (e.disabledUntil !== undefined) {
      if (now < e.disabledUntil) return undefined;
      this.#entries.delete(server);
      return COOKIE_REQUEST;
    }
    return e.cookie === undefined ? COOKIE_REQUEST : { cookie: e.cookie, maxData: e.mss };
  }

  /**
   * Takes in a SYN-ACK's answer. A valid cookie replaces what was kept. Otherwise: a cookie
   * request that got none, or a cookie whose data the server refused without giving a valid
   * new one, turns fast open off toward the server for a while (RFC 7413 4.1.3); a cookie the
   * server accepted stays.
   */
  update(server: string, o: FastOpenOutcome, now: Instant): void {
    if (!this.#enabled) return;
    if (o.cookie !== undefined && validFastOpenCookie(o.cookie)) {
      this.#put(server, { cookie: o.cookie.slice(), mss: o.peerMss, disabledUntil: undefined });
      return;
    }
    if (o.sentCookie && o.synDataAcked) return;
    this.#put(server, {
      cookie: undefined,
      mss: o.peerMss,
      disabledUntil: Instant.add(now, this.#disableFor),
    });
  }

  #put(server: string, e: Entry): void {
    this.#entries.delete(server);
    if (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(server, e);
  }
}
