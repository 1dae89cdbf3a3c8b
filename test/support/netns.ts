/**
 * Network namespaces for tests: a pair of namespaces joined by a veth link, with addresses from
 * the documentation ranges (192.0.2.0/24, 2001:db8::/64). Everything created here is removed by
 * `close()`, and also on process exit if a test dies first. Tests send traffic only inside these
 * namespaces.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";

/** Runs `ip` with arguments; throws with its stderr on failure. */
export function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

const live = new Set<string>();
let hooked = false;
function removeAll(): void {
  for (const ns of live) {
    try {
      execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** One side of a veth pair, inside its own namespace. */
export interface NsHost {
  readonly ns: string;
  readonly dev: string;
  readonly ip4: string;
  readonly ip6: string;
}

/** Two namespaces joined by veth; `a` is 192.0.2.1 / 2001:db8::1, `b` is .2 / ::2. */
export interface NsPair {
  readonly a: NsHost;
  readonly b: NsHost;
  /** Runs a command inside a namespace and returns the child (stdio piped). */
  spawnIn(host: NsHost, cmd: string, args: readonly string[]): ChildProcess;
  close(): void;
}

/** Unique per process and call, so parallel test files do not collide. */
let counter = 0;
function uniqueName(tag: string): string {
  return `chimney-${tag}-${process.pid}-${counter++}`;
}

/** Creates the pair. Requires root (CI runs as root). */
export function createNsPair(tag: string): NsPair {
  if (!hooked) {
    hooked = true;
    process.on("exit", removeAll);
  }
  const a: NsHost = { ns: uniqueName(`${tag}a`), dev: "veth-a", ip4: "192.0.2.1", ip6: "2001:db8::1" };
  const b: NsHost = { ns: uniqueName(`${tag}b`), dev: "veth-b", ip4: "192.0.2.2", ip6: "2001:db8::2" };
  for (const h of [a, b]) {
    ip("netns", "add", h.ns);
    live.add(h.ns);
  }
  try {
    ip("link", "add", a.dev, "netns", a.ns, "type", "veth", "peer", "name", b.dev, "netns", b.ns);
    for (const h of [a, b]) {
      ip("-n", h.ns, "link", "set", "lo", "up");
      ip("-n", h.ns, "addr", "add", `${h.ip4}/24`, "dev", h.dev);
      ip("-n", h.ns, "addr", "add", `${h.ip6}/64`, "dev", h.dev, "nodad");
      ip("-n", h.ns, "link", "set", h.dev, "up");
    }
  } catch (e) {
    for (const h of [a, b]) {
      try {
        ip("netns", "del", h.ns);
      } catch {
        // best effort
      }
      live.delete(h.ns);
    }
    throw e;
  }
  return {
    a,
    b,
    spawnIn(host, cmd, args) {
      return spawn("ip", ["netns", "exec", host.ns, cmd, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    },
    close() {
      for (const h of [a, b]) {
        if (!live.has(h.ns)) continue;
        try {
          ip("netns", "del", h.ns);
        } finally {
          live.delete(h.ns);
        }
      }
    },
  };
}

/** Resolves when `child` writes a line matching `re` to stdout or stderr; rejects on exit first. */
export function waitForOutput(child: ChildProcess, re: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for ${re} in output: ${seen.slice(-500)}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      seen += d.toString();
      const m = re.exec(seen);
      if (m) {
        cleanup();
        resolve(m[0]);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`process exited (${code}) before printing ${re}: ${seen.slice(-500)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", onExit);
  });
}

/** Resolves with the exit code once `child` exits. */
export function exited(child: ChildProcess): Promise<number | null> {
  // A child killed by a signal has exitCode null and signalCode set: it has exited too.
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}
