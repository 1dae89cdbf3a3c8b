/**
 * Puts the soak's attack frames on the wire: a python3 helper (soak/inject.py) in the kernel's
 * namespace writes them onto the TAP interface with a packet socket, so they reach our stack
 * exactly as frames from an attacker on the link would. Frames are made here (attacks.ts) at a
 * fixed rate per attack, every `TICK_MS`, and piped to the helper length-prefixed. When the
 * helper falls behind (its pipe holds more than `MAX_BACKLOG` bytes) frames are not made at all
 * and counted as `skipped`, so a slow helper never grows our memory.
 */
import type { ChildProcess } from "node:child_process";
import type { TapNamespace } from "../src/live/netns.js";
import type { Prng } from "../src/sim/prng.js";
import type { AttackName, FrameMaker } from "./attacks.js";

const TICK_MS = 10;
const MAX_BACKLOG = 1 << 20;

interface Flood {
  readonly make: FrameMaker;
  readonly rate: number;
  carry: number;
}

/** What the helper reported when its input ended. */
export interface InjectReport {
  readonly sent: number;
  readonly errors: number;
  readonly lastError: string;
}

/** The packet writer in the namespace and the floods it carries. */
export class Injector {
  readonly #child: ChildProcess;
  readonly #rnd: Prng;
  readonly #floods = new Map<AttackName, Flood>();
  readonly #timer: NodeJS.Timeout;
  #last = performance.now();
  #out = "";
  #closing = false;
  /** Frames made and piped, per attack. */
  readonly made: Record<AttackName, number> = {
    "syn-flood": 0,
    "neighbor-flood": 0,
    "icmp-too-big": 0,
    malformed: 0,
  };
  /** Frames not made because the helper was behind. */
  skipped = 0;

  /**
   * Starts `python3 <script> <tap interface>` in the namespace. `onExit` hears an exit that was
   * not asked for (a crash of the helper).
   */
  constructor(netns: TapNamespace, script: string, rnd: Prng, onExit: (why: string) => void) {
    this.#rnd = rnd;
    this.#child = netns.spawn("python3", [script, netns.tap.name]);
    let err = "";
    this.#child.stdout?.on("data", (d: Buffer) => (this.#out += d.toString()));
    this.#child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    this.#child.stdin?.on("error", () => undefined); // EPIPE after a crash: reported by onExit
    this.#child.on("exit", (code, signal) => {
      if (!this.#closing) onExit(`the packet writer exited (${signal ?? code}): ${err.trim().slice(-300)}`);
    });
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Starts (or restarts at a new rate) an attack of `rate` frames per second. */
  start(name: AttackName, make: FrameMaker, rate: number): void {
    this.#floods.set(name, { make, rate, carry: 0 });
  }

  /** Stops an attack. */
  stop(name: AttackName): void {
    this.#floods.delete(name);
  }

  /** Stops every attack. */
  stopAll(): void {
    this.#floods.clear();
  }

  #tick(): void {
    const now = performance.now();
    // After a stall, no burst: at most five ticks' worth.
    const elapsed = Math.min(now - this.#last, 5 * TICK_MS) / 1000;
    this.#last = now;
    const stdin = this.#child.stdin;
    if (stdin === null || this.#floods.size === 0) return;
    const frames: Uint8Array[] = [];
    let bytes = 0;
    for (const [name, f] of this.#floods) {
      f.carry += f.rate * elapsed;
      const n = Math.floor(f.carry);
      f.carry -= n;
      if (stdin.writableLength > MAX_BACKLOG) {
        this.skipped += n;
        continue;
      }
      for (let i = 0; i < n; i++) {
        const frame = f.make(this.#rnd);
        frames.push(frame);
        bytes += 4 + frame.length;
      }
      this.made[name] += n;
    }
    if (frames.length === 0) return;
    const buf = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const f of frames) {
      buf.writeUInt32BE(f.length, at);
      buf.set(f, at + 4);
      at += 4 + f.length;
    }
    stdin.write(buf);
  }

  /** Stops the floods, ends the helper's input and waits for its report. */
  close(): Promise<InjectReport> {
    clearInterval(this.#timer);
    this.#floods.clear();
    this.#closing = true;
    const child = this.#child;
    return new Promise((resolve) => {
      const done = (): void => {
        const line = this.#out.trim().split("\n").pop() ?? "";
        try {
          resolve(JSON.parse(line) as InjectReport);
        } catch {
          resolve({ sent: 0, errors: 0, lastError: `no report (${line.slice(0, 100)})` });
        }
      };
      if (child.exitCode !== null || child.signalCode !== null) {
        done();
        return;
      }
      child.once("close", done);
      child.stdin?.end();
      setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
    });
  }
}
