/**
 * A network namespace holding the kernel side of our TAP device: the kernel there is the peer
 * of our stack. Addresses: kernel 192.0.2.1/24 and 2001:db8::1/64 (nodad), our stack .2 / ::2.
 * Names are unique per process and call: `chimney-<tag>-<owner pid>-<counter>`. The namespace,
 * the device and every child started with `spawn` are removed by `close()`, and also on exit or
 * SIGINT/SIGTERM (see cleanup.ts). A process killed outright (SIGKILL) cannot clean up: its
 * namespace stays behind with the dead owner's PID in its name, and `removeStaleNamespaces`
 * (which `chimney serve` runs first) deletes those of a tag.
 *
 * Our stack runs in this process's event loop, so a command that talks to it must run
 * asynchronously (`exec`, `spawn`): a synchronous child (`execFileSync("curl")`) blocks the
 * loop, our stack never answers, and both wait forever. Only set-up and teardown, when no
 * traffic must flow, run synchronously, in functions named `...Sync`.
 */
import { type ChildProcess, execFile, execFileSync, spawn, type SpawnOptions } from "node:child_process";
import { type Cleanup, registerCleanup } from "./cleanup.js";
import { openTap, type TapDevice, type TapMode, type TapOffload } from "../device/tap.js";

/**
 * Runs `ip` with arguments synchronously (set-up and teardown only: it blocks the event loop our
 * stack runs in); throws with its stderr on failure.
 */
export function ipSync(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * Kills `child` and everything in its process group (children spawned by `TapNamespace.spawn`
 * lead their own group, so a shell's grandchildren go too).
 */
export function killTree(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** The fixed addresses of the live link. */
export const LIVE_ADDRS = {
  kernel4: "192.0.2.1",
  kernel6: "2001:db8::1",
  ours4: "192.0.2.2",
  ours6: "2001:db8::2",
} as const;

/** A namespace with the kernel side of a TAP device in it. */
export interface TapNamespace {
  /** The namespace name (`ip netns exec <ns> ...`). */
  readonly ns: string;
  /** The TAP device (open in our process; its interface lives in the namespace). */
  readonly tap: TapDevice;
  /** Starts `cmd args` inside the namespace, leading its own process group; the group is killed
   * (SIGKILL) on close if still running. */
  spawn(cmd: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /**
   * Runs `cmd args` inside the namespace to completion, asynchronously (our stack keeps running
   * meanwhile); resolves with stdout, rejects with an Error carrying stderr on a non-zero exit
   * or after `timeoutMs` (default 60 s).
   */
  exec(cmd: string, args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Kills children, closes the device and deletes the namespace. Idempotent. */
  close(): void;
}

/** Options of `createTapNamespace`. */
export interface TapNamespaceOptions {
  /** Part of the namespace's name (letters, digits, dashes). */
  readonly tag?: string | undefined;
  /** How the TAP fd is read. */
  readonly mode?: TapMode | undefined;
  /** Frames per read wake-up (addon mode). */
  readonly readBatch?: number | undefined;
  /** Offloads of the TAP device (addon mode; default `off`, see `TapOffload`). */
  readonly offload?: TapOffload | undefined;
  /** Queues of the TAP device (addon mode; default 1; see `OpenTapOptions.queues`). */
  readonly queues?: number | undefined;
  /** Kernel-side MTU (default 1500). */
  readonly mtu?: number | undefined;
  /**
   * Give the kernel side of the device the peer addresses (`LIVE_ADDRS.kernel4`/`kernel6`);
   * default true. False leaves the device without addresses, for a namespace where traffic is
   * steered to and from the device with `tc` (see steering.ts).
   */
  readonly kernelAddresses?: boolean | undefined;
}

let counter = 0;

/** The name of the namespace a process with `pid` creates `n`-th under `tag`. */
export function namespaceName(tag: string, pid: number, n: number): string {
  return `chimney-${tag}-${pid}-${n}`;
}

/** True if a process with this PID exists (signal 0 checks without sending anything). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Deletes the namespaces named by `namespaceName(tag, pid, n)` whose owner `pid` is no longer
 * running (left behind by a process killed with SIGKILL). Namespaces of live processes, and any
 * other names, are left alone. Returns the names removed. Needs root.
 */
export function removeStaleNamespaces(tag: string): string[] {
  const prefix = namespaceName(tag, 0, 0).replace(/0-0$/, "");
  const removed: string[] = [];
  // `ip netns list` prints "name" or "name (id: N)" per line.
  for (const line of ipSync("netns", "list").split("\n")) {
    const name = line.split(" ")[0] ?? "";
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-\d+$/.exec(name.slice(prefix.length));
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    try {
      ipSync("netns", "del", name);
      removed.push(name);
    } catch {
      // removed meanwhile by someone else
    }
  }
  return removed;
}

/** Creates the namespace and the device, and configures the kernel side. Needs root. */
export function createTapNamespace(options: TapNamespaceOptions = {}): TapNamespace {
  const n = counter++;
  const ns = namespaceName(options.tag ?? "live", process.pid, n);
  // IFNAMSIZ is 16: "cht" + pid (up to 7 digits) + "-" + counter stays within 15.
  const devName = `cht${process.pid}-${n}`.slice(0, 15);
  const children = new Set<ChildProcess>();
  let cleanup: Cleanup | undefined;
  const tap = openTap(devName, {
    mode: options.mode,
    readBatch: options.readBatch,
    offload: options.offload ?? "off",
    queues: options.queues,
  });
  const teardown = (): void => {
    for (const c of children) killTree(c);
    children.clear();
    try {
      tap.close();
    } catch {
      // the namespace still goes
    }
    try {
      execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    } catch {
      // not created, or already gone
    }
  };
  cleanup = registerCleanup(`netns ${ns}`, teardown);
  try {
    ipSync("netns", "add", ns);
    ipSync("link", "set", tap.name, "netns", ns);
    ipSync("-n", ns, "link", "set", "lo", "up");
    ipSync("-n", ns, "link", "set", tap.name, "mtu", String(options.mtu ?? 1500));
    if (options.kernelAddresses ?? true) {
      ipSync("-n", ns, "addr", "add", `${LIVE_ADDRS.kernel4}/24`, "dev", tap.name);
      ipSync("-n", ns, "addr", "add", `${LIVE_ADDRS.kernel6}/64`, "dev", tap.name, "nodad");
    }
    ipSync("-n", ns, "link", "set", tap.name, "up");
  } catch (e) {
    cleanup.release();
    throw e;
  }
  return {
    ns,
    tap,
    spawn(cmd, args, spawnOptions = {}) {
      const child = spawn("ip", ["netns", "exec", ns, cmd, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
        ...spawnOptions,
      });
      children.add(child);
      child.once("exit", () => children.delete(child));
      return child;
    },
    exec(cmd, args, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const child = execFile(
          "ip",
          ["netns", "exec", ns, cmd, ...args],
          { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
          (error, stdout, stderr) => {
            children.delete(child);
            if (error === null) resolve(stdout);
            else
              reject(new Error(`${cmd} in ${ns} failed: ${error.message.trim()}; stderr: ${stderr.trim()}`));
          },
        );
        children.add(child);
      });
    },
    close() {
      cleanup?.release();
      cleanup = undefined;
    },
  };
}
