/**
 * The shapes of packetdrill's system call arguments, read out of the parsed expressions:
 * iovec arrays (`[{..., 40}, {iov_base=..., iov_len=20}]`), msghdr structs
 * (`{msg_name(...)=..., msg_iov(2)=[...], msg_flags=0, msg_control=[...]}`), `struct linger`
 * (`{l_onoff=1, l_linger=0}`), pollfd arrays (`[{fd=4, events=POLLOUT, revents=POLLOUT}]`) and
 * epoll events (`{events=EPOLLIN|EPOLLET, fd=4}`). A shape that does not match is an
 * `ArgShapeError` with what was expected, which the runner reports as the script's failure.
 */
import type { PdExpr } from "../packetdrill/ast.js";
import { printExpr } from "../packetdrill/print.js";

/** An argument whose shape is not the one the call takes. */
export class ArgShapeError extends Error {
  readonly code = "ERR_PD_ARG_SHAPE";
}

/** Resolves a word or a number expression to an integer (the runner's symbol table). */
export type IntOf = (e: PdExpr | undefined) => number | undefined;

function fields(e: PdExpr): {
  named: Map<string, PdExpr>;
  positional: PdExpr[];
  nameArgs: Map<string, readonly PdExpr[]>;
} {
  const named = new Map<string, PdExpr>();
  const nameArgs = new Map<string, readonly PdExpr[]>();
  const positional: PdExpr[] = [];
  if (e.kind !== "struct") throw new ArgShapeError(`expected a struct {...}, found ${printExpr(e)}`);
  for (const it of e.items) {
    if (it.kind === "assign") {
      named.set(it.name, it.value);
      if (it.nameArgs !== undefined) nameArgs.set(it.name, it.nameArgs);
    } else positional.push(it);
  }
  return { named, positional, nameArgs };
}

/** True for a `NULL` buffer (packetdrill passes a null pointer: the call fails with EFAULT). */
export function isNull(e: PdExpr | undefined): boolean {
  return e?.kind === "word" && e.name === "NULL";
}

/** The total length of an iovec array; each entry is `{..., LEN}` or `{iov_base=..., iov_len=LEN}`. */
export function iovLength(e: PdExpr | undefined, intOf: IntOf): number {
  return totalLength(iovLengths(e, intOf));
}

/** The sum of an iovec's entry lengths. */
export function totalLength(lengths: readonly number[]): number {
  let total = 0;
  for (const n of lengths) total += n;
  return total;
}

/** The length of each entry of an iovec array (none for `...`). */
export function iovLengths(e: PdExpr | undefined, intOf: IntOf): number[] {
  if (e === undefined || e.kind === "ellipsis") return [];
  if (e.kind !== "list") throw new ArgShapeError(`expected an iovec array [...], found ${printExpr(e)}`);
  return e.items.map((item) => {
    const f = fields(item);
    const len = f.named.get("iov_len") ?? f.positional[1];
    const n = intOf(len);
    if (n === undefined || n < 0) throw new ArgShapeError(`iovec entry without a length: ${printExpr(item)}`);
    return n;
  });
}

/** What a msghdr says: its data length, flags and control messages. */
export interface MsgHdr {
  readonly length: number;
  /** The length of each iovec entry. */
  readonly lengths: readonly number[];
  /** The `msg_flags` expression, if written. */
  readonly flags: PdExpr | undefined;
  /** The control messages written (`msg_control=[...]`); empty when none. */
  readonly control: readonly PdExpr[];
}

/** Reads a msghdr struct. */
export function msgHdr(e: PdExpr | undefined, intOf: IntOf): MsgHdr {
  if (e === undefined) throw new ArgShapeError("expected a msghdr {...}, found nothing");
  const f = fields(e);
  const iov = f.named.get("msg_iov");
  const lengths = iovLengths(iov, intOf);
  const length = totalLength(lengths);
  const count = f.nameArgs.get("msg_iov")?.[0];
  const declared = intOf(count);
  if (iov?.kind === "list" && declared !== undefined && declared !== iov.items.length) {
    throw new ArgShapeError(`msg_iov(${declared}) lists ${iov.items.length} entries`);
  }
  const ctl = f.named.get("msg_control");
  const control = ctl?.kind === "list" ? ctl.items : [];
  return { length, lengths, flags: f.named.get("msg_flags"), control };
}

/** `struct linger`. */
export interface Linger {
  readonly onoff: number;
  readonly linger: number;
}

/** Reads `{l_onoff=1, l_linger=0}` (or `[{...}]`). */
export function linger(e: PdExpr | undefined, intOf: IntOf): Linger {
  const v = e?.kind === "list" && e.items.length === 1 ? e.items[0] : e;
  if (v === undefined) throw new ArgShapeError("expected a struct linger, found nothing");
  const f = fields(v);
  const onoff = intOf(f.named.get("l_onoff") ?? f.positional[0]);
  const secs = intOf(f.named.get("l_linger") ?? f.positional[1]);
  if (onoff === undefined || secs === undefined)
    throw new ArgShapeError(`expected {l_onoff=N, l_linger=N}, found ${printExpr(v)}`);
  return { onoff, linger: secs };
}

/** One `struct pollfd` as the script writes it. */
export interface PollFd {
  readonly fd: number;
  readonly events: number;
  /** The revents the script expects, if written. */
  readonly revents: number | undefined;
}

/** Reads a pollfd array. */
export function pollFds(e: PdExpr | undefined, intOf: IntOf): PollFd[] {
  if (e?.kind !== "list")
    throw new ArgShapeError(
      `expected a pollfd array [...], found ${e === undefined ? "nothing" : printExpr(e)}`,
    );
  return e.items.map((item) => {
    const f = fields(item);
    const fd = intOf(f.named.get("fd"));
    if (fd === undefined) throw new ArgShapeError(`pollfd without fd: ${printExpr(item)}`);
    return { fd, events: intOf(f.named.get("events")) ?? 0, revents: intOf(f.named.get("revents")) };
  });
}

/** One epoll_event as the script writes it: `{events=EPOLLIN, fd=4}` (or `ptr=0`). */
export interface EpollEvent {
  readonly events: number;
  readonly fd: number | undefined;
}

/** Reads an epoll_event (or a one-element array of them). */
export function epollEvent(e: PdExpr | undefined, intOf: IntOf): EpollEvent {
  const v = e?.kind === "list" && e.items.length === 1 ? e.items[0] : e;
  if (v === undefined) throw new ArgShapeError("expected an epoll_event {...}, found nothing");
  const f = fields(v);
  return { events: intOf(f.named.get("events")) ?? 0, fd: intOf(f.named.get("fd")) };
}

/** The integer inside `[N]` (an option value or an ioctl result), or a bare `N`. */
export function bracketed(e: PdExpr | undefined, intOf: IntOf): number | undefined {
  if (e?.kind === "list") return e.items.length === 1 ? intOf(e.items[0]) : undefined;
  return intOf(e);
}

/** The file descriptors of `pipe([5, 6])`. */
export function pipeFds(e: PdExpr | undefined, intOf: IntOf): [number, number] {
  if (e?.kind !== "list" || e.items.length !== 2)
    throw new ArgShapeError("expected pipe([READ_FD, WRITE_FD])");
  const r = intOf(e.items[0]);
  const w = intOf(e.items[1]);
  if (r === undefined || w === undefined) throw new ArgShapeError("expected pipe([READ_FD, WRITE_FD])");
  return [r, w];
}
