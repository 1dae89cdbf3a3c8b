/**
 * Taking a connection from the Linux kernel into our host stack (TCP_REPAIR), the host-stack
 * half: the mirror of terminate.ts. A process in the namespace that owns the connection's
 * address freezes its socket (`exportKernelTcp`, src/device/repair.ts), closes it silently and
 * passes the record on (`recordToJson`); `adoptFromKernel` translates the record into a
 * snapshot (src/device/kernel-state.ts: its receive queue becomes what our application reads
 * first, its send queue our send data) and adopts it as a connection of our stack
 * (`HostStack.adopt`).
 *
 * The order that keeps the peer from noticing (test/kernel-adopt.test.ts runs it):
 * `HostStack.reserveForAdoption` for the 4-tuple, steer its packets to our stack (steering.ts;
 * the kernel never sees them again, our stack drops them silently until the adoption), export
 * and close the kernel socket, then `adoptFromKernel`. Segments the peer sent meanwhile are lost
 * and retransmitted; our engine resends the kernel's unacknowledged data after its RTO.
 */
import { type KernelTcpExport, type KernelTcpRecord, snapshotFromKernel } from "../device/kernel-state.js";
import type { HostConn, HostStack } from "../host/stack.js";
import type { TcpConfig } from "../tcp/config.js";
import type { TcpSnapshot, TcpSnapshotCached } from "../tcp/types.js";
import type { Instant } from "../time/instant.js";
import { UsageError } from "../util/errors.js";
import { ip } from "../wire/ip-addr.js";

/** What the kernel does not carry (keep-alive, Nagle, buffer sizes), from our configuration. */
export function cachedFromConfig(cfg: TcpConfig): TcpSnapshotCached {
  return {
    initialRcvWnd: cfg.recvBufferSize,
    sendBufferSize: cfg.sendBufferSize,
    noDelay: cfg.noDelay,
    keepAlive: cfg.keepAlive,
    keepAliveIdle: cfg.keepAliveIdle,
    keepAliveInterval: cfg.keepAliveInterval,
    keepAliveProbes: cfg.keepAliveProbes,
    maxRetransmissions: cfg.maxRetransmissions,
    userTimeout: cfg.userTimeout,
    // Replaced by the kernel's send MSS (snapshotFromKernel).
    effectiveMss: 536,
  };
}

/** What `adoptFromKernel` returns: our connection, and the snapshot it was made from. */
export interface KernelAdoption {
  readonly conn: HostConn;
  readonly snapshot: TcpSnapshot;
}

/**
 * Adopts the connection the kernel exported (`record`, with its `info`) into `stack`. Throws
 * `UsageError` if the record has no `info` (a record made for the kernel, not by it) or its
 * queues are larger than our buffers can hold; `HostStack.adopt`'s errors otherwise.
 */
export function adoptFromKernel(stack: HostStack, now: Instant, record: KernelTcpRecord): KernelAdoption {
  const k = record as Partial<KernelTcpExport> & KernelTcpRecord;
  if (k.info === undefined)
    throw new UsageError("adoptFromKernel: the record has no TCP_INFO (not an export)");
  const cached = cachedFromConfig(stack.tcpConfig);
  if (record.recvQueue.length > cached.initialRcvWnd)
    throw new UsageError(
      `adoptFromKernel: ${record.recvQueue.length} unread bytes exceed our receive buffer (${cached.initialRcvWnd})`,
    );
  if (record.sendQueue.length > cached.sendBufferSize)
    throw new UsageError(
      `adoptFromKernel: ${record.sendQueue.length} bytes to send exceed our send buffer (${cached.sendBufferSize})`,
    );
  const snapshot = snapshotFromKernel(k as KernelTcpExport, cached);
  const conn = stack.adopt(now, snapshot, {
    localAddr: ip(record.local.address),
    remoteAddr: ip(record.remote.address),
  });
  return { conn, snapshot };
}
