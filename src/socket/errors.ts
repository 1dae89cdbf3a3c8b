/**
 * Socket errors as Node reports them: an `Error` whose `code` is the POSIX name users test for
 * (`ECONNRESET`, `ECONNREFUSED`, ...), with Node's negative `errno`, the `syscall` that failed,
 * and the peer's `address` and `port` when known. The message reads like Node's
 * (`connect ECONNREFUSED 192.0.2.2:80`).
 */
import { constants } from "node:os";

/** The error codes the socket layer produces. */
export type NetErrorCode =
  | "ECONNRESET"
  | "ECONNREFUSED"
  | "ETIMEDOUT"
  | "EPIPE"
  | "EADDRINUSE"
  | "EADDRNOTAVAIL"
  | "ENETUNREACH"
  | "EHOSTUNREACH"
  | "EINVAL"
  | "ENOTFOUND";

/** The system call Node would name for the failure. */
export type NetSyscall = "connect" | "read" | "write" | "listen" | "getaddrinfo";

/** A socket error shaped like the ones `node:net` emits. */
export interface NetError extends Error {
  readonly code: NetErrorCode;
  readonly errno: number;
  readonly syscall: NetSyscall;
  readonly address?: string;
  readonly port?: number;
}

/** Builds a `NetError`; `address`/`port` are appended to the message as Node does. */
export function netError(code: NetErrorCode, syscall: NetSyscall, address?: string, port?: number): NetError {
  const where = address === undefined ? "" : port === undefined ? ` ${address}` : ` ${address}:${port}`;
  const e = new Error(`${syscall} ${code}${where}`) as Error & Record<string, unknown>;
  e["code"] = code;
  // Node reports libuv's negative errno; getaddrinfo failures use UV_EAI_NONAME (-3008).
  e["errno"] = code === "ENOTFOUND" ? -3008 : -(constants.errno[code] ?? 0);
  e["syscall"] = syscall;
  if (address !== undefined) e["address"] = address;
  if (port !== undefined) e["port"] = port;
  return e as unknown as NetError;
}

/** True when `e` is an `Error` carrying `code`. */
export function hasCode(e: unknown, code: string): boolean {
  return e instanceof Error && (e as Error & { code?: unknown }).code === code;
}
