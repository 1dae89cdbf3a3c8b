/**
 * Terminating a connection of our stack into the Linux kernel (TCP_REPAIR), the host-stack
 * half: `handOffToKernel` takes the connection off our stack without a segment of its own
 * (`HostStack.handOff`) and translates its snapshot into the kernel record
 * (src/device/kernel-state.ts: its receive queue is what our application has not read, its send
 * queue what the peer has not acknowledged, sent or not). `importKernelTcp`
 * (src/device/repair.ts) builds the kernel socket from the record, in the network namespace
 * that owns the connection's address; `recordToJson` / `recordFromJson` carry the record to a
 * process there as one JSON line.
 *
 * The order that keeps the peer from noticing (test/kernel-terminate.test.ts runs it): hand off
 * while the connection's packets are still steered to our stack (they are dropped silently from
 * then on), import, then remove the steering (steering.ts) so the kernel socket gets the 4-tuple,
 * then `HostStack.releaseHandOff`. Between hand-off and the end of the steering, the peer's
 * segments are lost and retransmitted; the kernel socket resends our unacknowledged data after
 * its initial RTO.
 */
import { type KernelTcpRecord, kernelFromSnapshot } from "../device/kernel-state.js";
import type { HostConn, HostStack } from "../host/stack.js";
import type { TcpSnapshot } from "../tcp/types.js";
import type { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { ipToString } from "../wire/ip-addr.js";

/** What `handOffToKernel` returns: the kernel record, and the snapshot it came from. */
export interface KernelHandOff {
  readonly record: KernelTcpRecord;
  readonly snapshot: TcpSnapshot;
}

/**
 * Takes `c` off `stack` for good (see `HostStack.handOff`) and returns its kernel record. Throws
 * `UsageError` if the connection cannot leave the host, or if the record cannot express it (a
 * FIN received or queued: TCP_REPAIR cannot restore one); in the latter case the connection is
 * already off the stack, as `HostStack.handOff` left it.
 */
export function handOffToKernel(stack: HostStack, c: HostConn, now: Instant): KernelHandOff {
  const snapshot = stack.handOff(now, c);
  const record = kernelFromSnapshot(snapshot, {
    family: c.localAddr.length === 4 ? 4 : 6,
    localAddress: ipToString(c.localAddr),
    remoteAddress: ipToString(c.remoteAddr),
  });
  if (record.fin !== undefined)
    throw new UsageError(
      `handOffToKernel: ${c.toString()} is ${snapshot.delegated.state}: a FIN cannot move`,
    );
  return { record, snapshot };
}

/** One JSON line (no newline) carrying `record` (queues in base64) and `extra` fields. */
export function recordToJson(record: KernelTcpRecord, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    ...extra,
    record: {
      ...record,
      recvQueue: Buffer.from(
        record.recvQueue.buffer,
        record.recvQueue.byteOffset,
        record.recvQueue.byteLength,
      ).toString("base64"),
      sendQueue: Buffer.from(
        record.sendQueue.buffer,
        record.sendQueue.byteOffset,
        record.sendQueue.byteLength,
      ).toString("base64"),
    },
  });
}

/** The record and extra fields of a `recordToJson` line; throws `UsageError` if it is not one. */
export function recordFromJson(line: string): { record: KernelTcpRecord; extra: Record<string, unknown> } {
  const parsed = JSON.parse(line) as Record<string, unknown>;
  const r = parsed["record"] as
    | (Record<string, unknown> & { recvQueue?: unknown; sendQueue?: unknown })
    | undefined;
  if (r === undefined || typeof r.recvQueue !== "string" || typeof r.sendQueue !== "string")
    throw new UsageError("recordFromJson: not a kernel record line");
  const extra = { ...parsed };
  delete extra["record"];
  const record = {
    ...r,
    recvQueue: Buffer.from(r.recvQueue, "base64"),
    sendQueue: Buffer.from(r.sendQueue, "base64"),
  } as unknown as KernelTcpRecord;
  return { record, extra };
}
