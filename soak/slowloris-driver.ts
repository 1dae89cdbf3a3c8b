/**
 * Runs the slowloris attacker (slowloris.ts) as a child in the kernel's namespace and collects
 * what it reports: how long each of its connections stayed open before the server dropped it,
 * and the age of those still open when it stops.
 */
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { TapNamespace } from "../src/live/netns.js";

/** What one slowloris run saw. */
export interface SlowlorisReport {
  /** Connections the server closed: how long each had been open (ms). */
  readonly dropped: number[];
  /** Connections still open at the stop: their age (ms). */
  readonly openAtStop: number[];
  /** First response lines of dropped connections, counted. */
  readonly statuses: Map<string, number>;
  /** Connections that failed before they were established. */
  errors: number;
  /** Connections established. */
  opened: number;
}

/** A running attacker. */
export class Slowloris {
  readonly report: SlowlorisReport = {
    dropped: [],
    openAtStop: [],
    statuses: new Map(),
    errors: 0,
    opened: 0,
  };
  readonly #child: ChildProcess;
  #stopping = false;

  /**
   * Starts `node <script> <hosts> <port> <sockets> <dribbleMs>` in the namespace; `onExit` hears
   * an exit that was not asked for.
   */
  constructor(
    netns: TapNamespace,
    script: string,
    hosts: readonly string[],
    port: number,
    sockets: number,
    dribbleMs: number,
    onExit: (why: string) => void,
  ) {
    this.#child = netns.spawn(process.execPath, [
      script,
      hosts.join(","),
      String(port),
      String(sockets),
      String(dribbleMs),
    ]);
    let err = "";
    this.#child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    this.#child.stdin?.on("error", () => undefined);
    if (this.#child.stdout !== null)
      createInterface({ input: this.#child.stdout }).on("line", (l) => this.#line(l));
    this.#child.on("exit", (code, signal) => {
      if (!this.#stopping)
        onExit(`the slowloris attacker exited (${signal ?? code}): ${err.trim().slice(-300)}`);
    });
  }

  #line(l: string): void {
    let o: { ev?: string; ms?: number; status?: string; opened?: number };
    try {
      o = JSON.parse(l) as typeof o;
    } catch {
      return;
    }
    const r = this.report;
    if (o.ev === "dropped" && typeof o.ms === "number") {
      r.dropped.push(o.ms);
      const s = o.status === undefined || o.status === "" ? "(nothing)" : o.status;
      r.statuses.set(s, (r.statuses.get(s) ?? 0) + 1);
    } else if (o.ev === "open" && typeof o.ms === "number") r.openAtStop.push(o.ms);
    else if (o.ev === "error") r.errors++;
    else if (o.ev === "done" && typeof o.opened === "number") r.opened = o.opened;
  }

  /** Asks the attacker to report and exit; resolves once it has. */
  stop(): Promise<SlowlorisReport> {
    this.#stopping = true;
    const child = this.#child;
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve(this.report);
        return;
      }
      child.once("close", () => resolve(this.report));
      child.stdin?.end("stop\n");
      setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
    });
  }
}
