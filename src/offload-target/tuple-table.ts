/**
 * Offloaded connections by 4-tuple, looked up without building a key: the receive path finds a
 * frame's connection from the header fields it parsed, and a terminate storm removes tens of
 * thousands of entries. A string key per lookup allocated on every received frame, and deleting
 * by string cost over a microsecond per entry in a table of 100,000 (the string's hash and bytes
 * are cold by then).
 *
 * The table maps a 30-bit hash of the tuple (an `IntMap`: no rehash as a storm drains it) to
 * the entry, or to a chain of the entries sharing that hash; a lookup compares the ports, then
 * the address bytes, of each entry in the chain.
 */
import { IntMap } from "../util/int-map.js";
import { ipEquals, type IpAddr } from "../wire/ip-addr.js";

interface Entry<T> {
  readonly local: IpAddr;
  readonly remote: IpAddr;
  readonly lport: number;
  readonly rport: number;
  readonly value: T;
  next: Entry<T> | undefined;
}

/** The last four bytes of an address as a 32-bit integer (IPv6 addresses differ there most). */
function low32(a: IpAddr): number {
  const n = a.length;
  return ((a[n - 4] ?? 0) << 24) | ((a[n - 3] ?? 0) << 16) | ((a[n - 2] ?? 0) << 8) | (a[n - 1] ?? 0) | 0;
}

/** A 30-bit hash of the tuple (murmur3's finalizer over the mixed words); exported for tests. */
export function tupleHash(local: IpAddr, remote: IpAddr, lport: number, rport: number): number {
  let h = Math.imul(low32(remote), 0x9e3779b1) ^ low32(local);
  h = Math.imul(h ^ ((lport << 16) | rport), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & 0x3fffffff;
}

/** A map from (local address, remote address, local port, remote port) to `T`. */
export class TupleTable<T> {
  readonly #buckets = new IntMap<Entry<T>>();
  #size = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  get(local: IpAddr, remote: IpAddr, lport: number, rport: number): T | undefined {
    for (let e = this.#buckets.get(tupleHash(local, remote, lport, rport)); e !== undefined; e = e.next)
      if (isTuple(e, local, remote, lport, rport)) return e.value;
    return undefined;
  }

  has(local: IpAddr, remote: IpAddr, lport: number, rport: number): boolean {
    return this.get(local, remote, lport, rport) !== undefined;
  }

  /** Adds `value` under the tuple, replacing what was there. */
  set(local: IpAddr, remote: IpAddr, lport: number, rport: number, value: T): void {
    this.setHashed(tupleHash(local, remote, lport, rport), local, remote, lport, rport, value);
  }

  /** `set`, with the tuple's `tupleHash` already at hand (`h` must be it). */
  setHashed(h: number, local: IpAddr, remote: IpAddr, lport: number, rport: number, value: T): void {
    this.#remove(h, local, remote, lport, rport);
    this.#buckets.set(h, { local, remote, lport, rport, value, next: this.#buckets.get(h) });
    this.#size++;
  }

  /** Removes the tuple's entry; false when there was none. */
  delete(local: IpAddr, remote: IpAddr, lport: number, rport: number): boolean {
    return this.#remove(tupleHash(local, remote, lport, rport), local, remote, lport, rport);
  }

  /**
   * Removes the entry holding `value` under hash `h` (the tuple's `tupleHash`), by identity: a
   * terminate storm removes 100,000 entries, and comparing addresses read cold memory each time.
   * False when there was none.
   */
  deleteValue(h: number, value: T): boolean {
    let prev: Entry<T> | undefined;
    for (let e = this.#buckets.get(h); e !== undefined; prev = e, e = e.next) {
      if (e.value !== value) continue;
      this.#unlink(h, prev, e);
      return true;
    }
    return false;
  }

  #remove(h: number, local: IpAddr, remote: IpAddr, lport: number, rport: number): boolean {
    let prev: Entry<T> | undefined;
    for (let e = this.#buckets.get(h); e !== undefined; prev = e, e = e.next) {
      if (!isTuple(e, local, remote, lport, rport)) continue;
      this.#unlink(h, prev, e);
      return true;
    }
    return false;
  }

  #unlink(h: number, prev: Entry<T> | undefined, e: Entry<T>): void {
    if (prev !== undefined) prev.next = e.next;
    else if (e.next !== undefined) this.#buckets.set(h, e.next);
    else this.#buckets.delete(h);
    this.#size--;
  }
}

/** Whether `e` is the entry of the tuple (ports first: they differ most often). */
function isTuple<T>(e: Entry<T>, local: IpAddr, remote: IpAddr, lport: number, rport: number): boolean {
  return e.lport === lport && e.rport === rport && ipEquals(e.remote, remote) && ipEquals(e.local, local);
}
