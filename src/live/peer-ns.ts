/**
 * The two-namespace topology of a kernel hand-off: a peer namespace (plain kernel sockets,
 * 192.0.2.1) joined by veth to the live host's namespace, whose kernel owns our stack's address
 * (192.0.2.2, with our MAC on its veth); our stack runs on the TAP there, joined to the veth with
 * `shareDevice` (steering.ts). The peer namespace is removed by `remove()`, and also on exit or
 * SIGINT/SIGTERM (cleanup.ts).
 *
 * Kernel sockets of either namespace are made here, in this process (the repair addon creates
 * them inside the namespace): `listenIn` gives a `net.Server`, `connectIn` a connected
 * `net.Socket`. Needs root and the repair addon.
 */
import { execFileSync } from "node:child_process";
import { closeSync } from "node:fs";
import net from "node:net";
import { loadRepairAddon, type RepairAddon, repairCall, SOCKOPT } from "../device/repair.js";
import { registerCleanup } from "./cleanup.js";
import { LIVE_OUR_MAC, type LiveHost } from "./live-host.js";
import { ipSync, LIVE_ADDRS } from "./netns.js";
import { openNetns, shareDevice } from "./steering.js";

/** The peer's address, in the peer namespace. */
export const PEER = LIVE_ADDRS.kernel4;
/** Our stack's address, and the host namespace kernel's. */
export const OURS = LIVE_ADDRS.ours4;
/** The host namespace's device toward the peer (carries OURS and our MAC). */
export const OUTER = "veth-h";

export interface PeerTopology {
  readonly hostNs: string;
  readonly peerNs: string;
  readonly tap: string;
  /** Deletes the peer namespace (the veth goes with it). Idempotent. */
  remove(): void;
}

/** Builds the peer namespace `<host ns with -tag- replaced by -tagp->` and joins it to `host`. */
export function joinPeerNamespace(host: LiveHost, tag: string): PeerTopology {
  const hostNs = host.netns.ns;
  const tap = host.netns.tap.name;
  const peerNs = hostNs.replace(`-${tag}-`, `-${tag}p-`);
  ipSync("netns", "add", peerNs);
  const cleanup = registerCleanup(`netns ${peerNs}`, () => {
    try {
      ipSync("netns", "del", peerNs);
    } catch {
      // already gone
    }
  });
  const remove = () => cleanup.release();
  try {
    ipSync("link", "add", OUTER, "netns", hostNs, "type", "veth", "peer", "name", "veth-p", "netns", peerNs);
    ipSync("-n", hostNs, "link", "set", OUTER, "address", LIVE_OUR_MAC);
    ipSync("-n", hostNs, "addr", "add", `${OURS}/24`, "dev", OUTER);
    ipSync("-n", peerNs, "addr", "add", `${PEER}/24`, "dev", "veth-p");
    for (const [ns, dev] of [
      [hostNs, OUTER],
      [peerNs, "veth-p"],
      [peerNs, "lo"],
    ] as const)
      ipSync("-n", ns, "link", "set", dev, "up");
    shareDevice(hostNs, OUTER, tap);
  } catch (e) {
    remove();
    throw e;
  }
  return { hostNs, peerNs, tap, remove };
}

/** A kernel TCP socket of namespace `ns` (IPv4), made in this process. */
function socketIn(ns: string, addon: RepairAddon): number {
  const nsFd = openNetns(ns);
  try {
    return repairCall("socket", () => addon.socketIn(nsFd, 4));
  } finally {
    closeSync(nsFd);
  }
}

/** A `net.Server` listening on `address:port` inside namespace `ns`. */
export async function listenIn(
  ns: string,
  address: string,
  port: number,
  addon: RepairAddon = loadRepairAddon(),
): Promise<net.Server> {
  const fd = socketIn(ns, addon);
  try {
    repairCall("setsockopt(SO_REUSEADDR)", () =>
      addon.setInt(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_REUSEADDR, 1),
    );
    repairCall("bind", () => addon.bind(fd, address, port));
    repairCall("listen", () => addon.listen(fd, 16));
    repairCall("fcntl(O_NONBLOCK)", () => addon.setNonBlocking(fd, true));
  } catch (e) {
    addon.close(fd);
    throw e;
  }
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

/**
 * A `net.Socket` connected from `local` (port 0: any) to `remote` inside namespace `ns`. The
 * connect blocks this thread until the handshake completes: the far end must be a kernel socket
 * (its kernel answers the SYN without this thread), not our stack.
 */
export function connectIn(
  ns: string,
  local: { readonly address: string; readonly port: number },
  remote: { readonly address: string; readonly port: number },
  opts: {
    /** Node reads nothing from the socket until the application asks (no read-ahead). */
    readonly paused?: boolean;
    readonly addon?: RepairAddon;
  } = {},
): net.Socket {
  const addon = opts.addon ?? loadRepairAddon();
  const fd = socketIn(ns, addon);
  try {
    repairCall("setsockopt(SO_REUSEADDR)", () =>
      addon.setInt(fd, SOCKOPT.SOL_SOCKET, SOCKOPT.SO_REUSEADDR, 1),
    );
    repairCall("bind", () => addon.bind(fd, local.address, local.port));
    repairCall("connect", () => addon.connect(fd, remote.address, remote.port));
    repairCall("fcntl(O_NONBLOCK)", () => addon.setNonBlocking(fd, true));
  } catch (e) {
    addon.close(fd);
    throw e;
  }
  return kernelSocket(fd, opts.paused === true);
}

/**
 * `new net.Socket({ fd })` for a connected kernel socket; `paused`: Node does not start reading
 * (its `pauseOnCreate`, the option behind `net.Server`'s `pauseOnConnect`).
 */
export function kernelSocket(fd: number, paused = false): net.Socket {
  const o = { fd, readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: paused };
  return new net.Socket(o);
}

/** The TCP counters of /proc/net/snmp inside namespace `ns` (OutRsts, EstabResets, ...). */
export function tcpCounters(ns: string): Record<string, number> {
  const text = execFileSync("ip", ["netns", "exec", ns, "cat", "/proc/net/snmp"], { encoding: "utf8" });
  const lines = text.split("\n").filter((l) => l.startsWith("Tcp:"));
  const names = (lines[0] ?? "").split(/\s+/).slice(1);
  const values = (lines[1] ?? "").split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? Number.NaN]));
}
