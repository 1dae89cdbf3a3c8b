/**
 * The Linux kernel as the device under test: runs one packetdrill script against the running
 * kernel, on real time, as packetdrill itself does (`--against kernel`). Theory of operation:
 * - Each script gets a network namespace of its own (`chimney-pdk-<pid>-<n>`, removed when the
 *   script ends, also on failure or exit) holding a TUN device `tun0` (bare IP packets, as
 *   packetdrill's) with packetdrill's addresses: local 192.168.0.1/16 on tun0, the remote
 *   192.0.2.1 reached through the gateway 192.168.0.2. IPv6 is off in the namespace, so that
 *   the kernel sends nothing of its own (router solicitations) on tun0.
 * - The script's system calls run on kernel sockets of that namespace, made in this process
 *   (the repair addon's `socketIn`; native/pdk.c for what Node cannot call). Every kernel socket
 *   is non-blocking; a call the script makes blocking waits for readiness here, and a call with
 *   a time range (`0...0.2 accept(...)`) blocks while the script's next events run, as on
 *   packetdrill's syscall thread.
 * - Time is real: the clock starts at the first event that is not a shell command; inbound
 *   packets are written into tun0 at their script times, and the kernel's packets are read from
 *   tun0 (timestamped as they are read) and compared with the script's by the shared matcher
 *   (`matcher.ts`, strict: the kernel is what the scripts describe). A packet must come within
 *   the tolerance of its time (`--tolerance_usecs`, 4 ms by default) and `lateSlackUsecs` more
 *   on the late side, for a busy machine (timers run on jiffies).
 * - tun0 is set up as packetdrill's (native/pdk.c): TSO and checksum offloads on. A burst the
 *   kernel still sends in pieces is aggregated as packetdrill does (`coalesceRun`).
 * - Shell commands run inside the namespace (`ip netns exec`), the script's init command first
 *   (`runEvents`); the google scripts' helpers (`defaults.sh`, `set_sysctls.py`) are replaced by
 *   the settings they make. The namespace starts with packetdrill's Linux defaults
 *   (`LINUX_DEFAULTS_SH`).
 * - `%{ }%` snippets are evaluated over the socket under test's `tcp_info` (`linuxTcpInfo`,
 *   with the names packetdrill gives its Python); `epoll_*` and `poll` run on the kernel's own
 *   descriptors, without waiting, retried until their timeout; a `NULL` buffer goes to the
 *   kernel as NULL.
 * - What this runner cannot do (IPv6 scripts, ICMP injection, some calls) classifies the script
 *   "unsupported: <what>", never a runner crash.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync } from "node:fs";
import { loadRepairAddon, type RepairAddon } from "../../device/repair.js";
import { registerCleanup } from "../../live/cleanup.js";
import { openNetns } from "../../live/steering.js";
import { StackError } from "../../util/errors.js";
import { ip } from "../../wire/ip-addr.js";
import { decodeIpPacket, emitTcpPacket } from "../../wire/packet.js";
import { formatPacket } from "../../wire/pretty.js";
import type { TcpRepr } from "../../wire/tcp-repr.js";
import {
  type PdEvent,
  type PdExpr,
  type PdPacket,
  type PdScript,
  type PdSyscallEvent,
  optionValue,
  parsePacketdrill,
  printExpr,
  printPacket,
  runEvents,
} from "../packetdrill/index.js";
import type { FailureKind, ScriptResult } from "./dut.js";
import { coalesceRun, eventWindow, inboundEcn, PACKETDRILL_DEFAULTS, PacketMatcher } from "./matcher.js";
import { commandLines, detectUnsupported, setSysctlsArgs, sysctlAssignments } from "./features.js";
import type { LenientRuleName } from "./policy.js";
import { LINUX_DEFAULTS_SH, LINUX_PROFILE } from "./profile.js";
import {
  ArgShapeError,
  bracketed,
  epollEvent,
  iovLengths,
  isNull,
  linger,
  msgHdr,
  pollFds,
  totalLength,
} from "./syscall-args.js";
import { runPyAsserts } from "./pycode.js";
import { LINUX_PY_SYMBOLS, linuxTcpInfo, TCP_INFO, TCP_INFO_BYTES } from "./tcp-info.js";
import { fastOpenClient, KERNEL_TFO_SYSCTLS, LINUX_DEFINES } from "./harness.js";
import { LEVELS, OPTIONS } from "./linux-sockopts.js";

/** Why kernel mode cannot run here, or undefined when it can (Linux, root, the addon built). */
export function kernelModeUnavailable(): string | undefined {
  if (process.platform !== "linux") return "the kernel mode needs Linux";
  if (process.getuid?.() !== 0) return "the kernel mode needs root (network namespaces, a TUN device)";
  try {
    loadRepairAddon();
  } catch (e) {
    return `the kernel mode needs the repair addon: ${(e as Error).message}`;
  }
  return undefined;
}

/** Kernel mode cannot run here (see `kernelModeUnavailable`). */
export class KernelModeUnavailableError extends StackError {
  readonly code = "ERR_KERNEL_MODE";
}

/** Options of `runScriptOnKernel`. */
export interface KernelScriptOptions {
  /** The name used in messages (a path relative to the suite). */
  readonly file: string;
  /** The script's folder, where its shell commands run (relative helper paths). */
  readonly dir?: string | undefined;
  /** How late past the tolerance a packet may still come (default 25 ms: a busy machine). */
  readonly lateSlackUsecs?: number | undefined;
}

const F_GETFL = 3;
const F_SETFL = 4;
const O_RDWR = 2;
const POLLIN = 0x1;
const POLLOUT = 0x4;
/** A blocked call is retried this often (µs) while the script waits. */
const RETRY_USECS = 1000;
/** The longest a call the script made blocking waits without a time range (µs). */
const MAX_BLOCK_USECS = 30_000_000;

/** Thrown inside a run to stop it at the first failure. */
class KernelScriptFailure extends Error {
  readonly kind: FailureKind;
  constructor(message: string, kind: FailureKind) {
    super(message);
    this.kind = kind;
  }
}

interface SyscallResult {
  readonly value: number;
  readonly errno: string | undefined;
}

interface KSock {
  /** The kernel's descriptor (always non-blocking). */
  readonly fd: number;
  /** The script set O_NONBLOCK. */
  nonblock: boolean;
}

/** A packet the kernel sent, as read from tun0. */
class Queued {
  /** Script time (µs) it was read at. */
  readonly time: number = 0;
  readonly tcp: TcpRepr;
  readonly decoded: ReturnType<typeof decodeIpPacket>;
  #text: string | undefined;

  constructor(time: number, tcp: TcpRepr, decoded: ReturnType<typeof decodeIpPacket>) {
    this.time = time;
    this.tcp = tcp;
    this.decoded = decoded;
  }

  /**
   * The packet in tcpdump's words, for a failure message: made when first asked for, not when
   * read (formatting took longer than the kernel takes to answer, and the time between the
   * kernel's packet and the script's answer is an RTT sample the kernel paces by).
   */
  get text(): string {
    this.#text ??= formatPacket(this.decoded);
    return this.#text;
  }
}

let serial = 0;

/** The errno name of an addon error (its `code`), or rethrows what is not one. */
function errnoOf(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code;
  throw e;
}

/** What a failed child process said on stderr (or the error's message). */
function stderrOf(e: unknown): string {
  const err = (e as { stderr?: unknown }).stderr;
  if (typeof err === "string") return err.trim();
  if (err instanceof Uint8Array) return Buffer.from(err).toString("utf8").trim();
  return e instanceof Error ? e.message : "";
}

/** True for a dotted IPv4 address. */
function isIpv4(v: string | undefined): v is string {
  return v !== undefined && /^\d{1,3}(?:\.\d{1,3}){3}$/.test(v);
}

function secs(usecs: number): string {
  return `${(usecs / 1e6).toFixed(6)}s`;
}

/**
 * Parses and runs one script against the kernel. Never throws for a script problem (it becomes
 * a failed result); throws `KernelModeUnavailableError` when the kernel mode cannot run here.
 */
export function runScriptOnKernel(text: string, options: KernelScriptOptions): ScriptResult {
  const why = kernelModeUnavailable();
  if (why !== undefined) throw new KernelModeUnavailableError(why);
  const parsed = parsePacketdrill(text, { file: options.file });
  if (!parsed.ok) return result(options.file, parsed.error.message, "parse", undefined, [], []);
  return new KernelRun(parsed.value, options).run();
}

function result(
  file: string,
  message: string | undefined,
  failure: FailureKind | undefined,
  unsupported: string | undefined,
  rules: readonly LenientRuleName[],
  defines: readonly string[],
): ScriptResult {
  return {
    file,
    passed: message === undefined,
    message,
    failure,
    unsupported,
    rulesUsed: rules,
    unmapped: [],
    frames: [],
    defines,
    offload: undefined,
  };
}

class KernelRun {
  readonly #script: PdScript;
  readonly #opts: KernelScriptOptions;
  readonly #addon: RepairAddon = loadRepairAddon();
  readonly #ns = `chimney-pdk-${process.pid}-${++serial}`;
  readonly #tolerance: number = 0;
  readonly #slack: number = 0;
  readonly #rules = new Set<LenientRuleName>();
  readonly #match: PacketMatcher;
  readonly #socks = new Map<number, KSock>();
  /** The socket `%{ }%` snippets read (packetdrill's socket under test: the latest made or accepted). */
  #underTest: number | undefined;
  /** Kernel sockets whose script number a newer socket took (still open; closed at teardown). */
  readonly #shadowed: number[] = [];
  /** listen() calls so far (each passive connection after the first gets a fresh remote port). */
  #listens = 0;
  /** Names the snippets assigned so far (one Python run in packetdrill). */
  readonly #pyGlobals: Record<string, number> = {};
  readonly #out: Queued[] = [];
  #nsFd = -1;
  /** The congestion control module new sockets get (see `#sysctls`). */
  #cc: string | undefined;
  #tun = -1;
  /** hrtime (µs) of script time 0; undefined until the clock starts. */
  #t0: number | undefined;
  /** Script time (µs) of the last event, the base of relative times. */
  #last = 0;
  #relBase: number | undefined;
  #line = 0;
  #unsupportedWhat: string | undefined;
  #blocked:
    | { readonly ev: PdSyscallEvent; readonly end: number; readonly attempt: () => SyscallResult | undefined }
    | undefined;

  constructor(script: PdScript, opts: KernelScriptOptions) {
    this.#script = script;
    this.#opts = opts;
    this.#tolerance = Number(optionValue(script, "tolerance_usecs") ?? PACKETDRILL_DEFAULTS.toleranceUsecs);
    this.#slack = opts.lateSlackUsecs ?? 25_000;
    this.#match = new PacketMatcher({
      strict: true,
      rules: this.#rules,
      unsupported: (f) => this.#unsupported(f),
      defines: LINUX_DEFINES,
    });
  }

  run(): ScriptResult {
    const defines = [LINUX_PROFILE.defineSymbol];
    let message: string | undefined;
    let failure: FailureKind | undefined;
    const cleanup = registerCleanup(`netns ${this.#ns}`, () => {
      this.#teardown();
    });
    try {
      this.#checkOptions();
      const events = runEvents(this.#script, defines);
      // The kernel has these features, but this runner passes no sendto() addresses or MD5
      // keys: a script that uses them is unsupported here. A fast open server (a listener with
      // TCP_FASTOPEN, cookies in the peer's SYNs) runs: the key is packetdrill's
      // (KERNEL_TFO_SYSCTLS) and so are the cookies its command line defines (LINUX_DEFINES).
      const use = detectUnsupported(this.#script, events);
      if (use !== undefined && (use.feature !== "fast-open" || fastOpenClient(events) !== undefined)) {
        this.#line = use.line;
        this.#unsupported(`${use.feature} (the kernel mode passes no sendto() address or MD5 key)`);
      }
      this.#setup();
      for (const ev of events) {
        this.#event(ev);
        this.#resolveBlocked(false);
      }
      this.#resolveBlocked(true);
    } catch (e) {
      if (!(e instanceof KernelScriptFailure)) throw e;
      message = e.message;
      failure = e.kind;
    } finally {
      cleanup.release();
    }
    const unsupported = failure === "unsupported" ? this.#unsupportedWhat : undefined;
    return result(this.#opts.file, message, failure, unsupported, [...this.#rules].sort(), defines);
  }

  #fail(text: string, kind: FailureKind): never {
    throw new KernelScriptFailure(`${this.#opts.file}:${this.#line}: ${text}`, kind);
  }

  #unsupported(what: string): never {
    this.#unsupportedWhat = what;
    this.#fail(`unsupported: ${what}`, "unsupported");
  }

  /** Command-line options the kernel mode does not honour make the script unsupported. */
  #checkOptions(): void {
    for (const o of this.#script.options) {
      this.#line = o.line;
      if (o.name === "ip_version" && o.value !== "ipv4") this.#unsupported(`ip_version ${o.value ?? ""}`);
      if (["tolerance_usecs", "ip_version", "mtu"].includes(o.name)) continue;
      if ((o.name === "local_ip" || o.name === "remote_ip") && isIpv4(o.value)) {
        if (o.name === "local_ip" && !o.value.startsWith("192.168."))
          this.#unsupported(`option --local_ip outside 192.168.0.0/16`);
        continue;
      }
      this.#unsupported(`option --${o.name}`);
    }
  }

  /** The script's local address (`--local_ip`, packetdrill's 192.168.0.1 by default). */
  get #localV4(): string {
    return optionValue(this.#script, "local_ip") ?? PACKETDRILL_DEFAULTS.localV4;
  }

  /** The script's remote address (`--remote_ip`, 192.0.2.1 by default), routed through tun0. */
  get #remoteV4(): string {
    return optionValue(this.#script, "remote_ip") ?? PACKETDRILL_DEFAULTS.remoteV4;
  }

  /** A gateway on tun0's subnet that is not the local address. */
  get #gatewayV4(): string {
    const g = PACKETDRILL_DEFAULTS.gatewayV4;
    return this.#localV4 === g ? "192.168.0.1" : g;
  }

  // -------------------------------------------------------------------------------------------
  // The namespace

  #ip(...args: string[]): void {
    try {
      execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      this.#fail(`ip ${args.join(" ")} failed: ${stderrOf(e)}`, "runner");
    }
  }

  #setup(): void {
    const d = PACKETDRILL_DEFAULTS;
    const ns = this.#ns;
    this.#ip("netns", "add", ns);
    this.#sysctls([
      ["net.ipv6.conf.all.disable_ipv6", "1"],
      ["net.ipv6.conf.default.disable_ipv6", "1"],
      ...LINUX_DEFAULTS_SH,
      ...KERNEL_TFO_SYSCTLS,
    ]);
    this.#nsFd = this.#addonCall(() => openNetns(ns));
    this.#tun = this.#addonCall(() => this.#addon.tunIn(this.#nsFd, "tun0"));
    const mtu = optionValue(this.#script, "mtu") ?? String(d.mtu);
    this.#ip("-n", ns, "link", "set", "lo", "up");
    this.#ip("-n", ns, "link", "set", "tun0", "mtu", mtu, "up");
    this.#ip("-n", ns, "addr", "add", `${this.#localV4}/16`, "dev", "tun0");
    this.#ip("-n", ns, "route", "add", "default", "via", this.#gatewayV4, "dev", "tun0");
  }

  #addonCall<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      this.#fail(`kernel mode setup: ${(e as Error).message}`, "runner");
    }
  }

  #teardown(): void {
    for (const s of this.#socks.values()) this.#closeQuietly(s.fd);
    this.#socks.clear();
    for (const fd of this.#shadowed.splice(0)) this.#closeQuietly(fd);
    if (this.#tun >= 0) this.#closeQuietly(this.#tun);
    if (this.#nsFd >= 0) closeSync(this.#nsFd);
    this.#tun = -1;
    this.#nsFd = -1;
    try {
      execFileSync("ip", ["netns", "del", this.#ns], { stdio: "ignore" });
    } catch {
      // never made, or already gone
    }
  }

  #closeQuietly(fd: number): void {
    try {
      this.#addon.close(fd);
    } catch {
      // already closed
    }
  }

  /**
   * Sets sysctls inside the namespace. The congestion control is set on each socket instead: a
   * namespace may only pick the modules of net.ipv4.tcp_allowed_congestion_control, a socket
   * (with CAP_NET_ADMIN) any module the kernel has.
   */
  #sysctls(pairs: readonly (readonly [string, string])[]): void {
    const args: string[] = [];
    for (const [k, v] of pairs) {
      if (k === "net.ipv4.tcp_congestion_control") this.#cc = v;
      else args.push(`${k}=${v}`);
    }
    if (args.length === 0) return;
    try {
      // -e: a knob this kernel lacks is skipped (as packetdrill's helpers ignore it).
      execFileSync("ip", ["netns", "exec", this.#ns, "sysctl", "-q", "-e", "-w", ...args], {
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (e) {
      const err = stderrOf(e);
      this.#fail(`sysctl ${args.join(" ")} failed: ${err}`, "syscall");
    }
  }

  // -------------------------------------------------------------------------------------------
  // Time

  /** Script time now (µs); 0 before the clock started. */
  #now(): number {
    const t = Number(process.hrtime.bigint() / 1000n);
    return this.#t0 === undefined ? 0 : t - this.#t0;
  }

  #startClock(): void {
    if (this.#t0 === undefined) this.#t0 = Number(process.hrtime.bigint() / 1000n);
  }

  /** The window of an event, in script µs (as `dut.ts`: relative to the previous event). */
  #eventWindow(ev: PdEvent): [number, number] {
    const w = eventWindow(ev.time, this.#relBase, this.#last, MAX_BLOCK_USECS);
    this.#relBase = w.relBase;
    return [w.start, w.end];
  }

  /**
   * Waits until script time `t` (or, with `untilPacket`, until a packet is queued), reading
   * what the kernel sends and retrying the blocked call meanwhile.
   */
  #waitUntil(t: number, untilPacket = false): void {
    for (;;) {
      this.#readTun();
      if (this.#blocked !== undefined) this.#resolveBlocked(false);
      if (untilPacket && this.#out.length > 0) return;
      const left = t - this.#now();
      if (left <= 0) return;
      const wait = this.#blocked === undefined ? left : Math.min(left, RETRY_USECS);
      this.#addon.waitFds([this.#tun], [POLLIN], wait);
    }
  }

  /** Queues every packet tun0 holds (IPv4 TCP; anything else is not the script's). */
  #readTun(): void {
    for (;;) {
      const b = this.#addon.readTun(this.#tun, 65536);
      if (b === null) return;
      const time = this.#now();
      let decoded: ReturnType<typeof decodeIpPacket>;
      try {
        decoded = decodeIpPacket(b);
      } catch {
        continue;
      }
      const t = decoded.transport;
      if (t?.kind !== "tcp") continue;
      this.#out.push(new Queued(time, t.tcp, decoded));
    }
  }

  // -------------------------------------------------------------------------------------------
  // Events

  #event(ev: PdEvent): void {
    this.#line = ev.line;
    if (ev.kind !== "command") this.#startClock();
    const [start, end] = this.#eventWindow(ev);
    if (ev.kind === "packet" && ev.packet.direction === "outbound") {
      this.#expectOutbound(ev.packet, start, end);
      return;
    }
    if (this.#t0 !== undefined) this.#waitUntil(start);
    // The next relative times count from when this event really ran: a late turn of ours (a
    // busy machine) moves the kernel's answers with it, as packetdrill measures them.
    this.#last = Math.max(start, this.#now());
    switch (ev.kind) {
      case "packet":
        this.#inject(ev.packet);
        return;
      case "syscall": {
        const callEnd =
          ev.endUsecs === undefined
            ? undefined
            : ev.time.kind === "relative"
              ? start - ev.time.usecs + ev.endUsecs
              : ev.endUsecs;
        this.#syscall(ev, callEnd);
        if (ev.endUsecs !== undefined) this.#relBase = start;
        return;
      }
      case "command":
        this.#command(ev.command);
        return;
      case "code":
        this.#code(ev.code);
    }
  }

  #inject(p: PdPacket): void {
    if (p.protocol !== "tcp") this.#unsupported(`inbound ${p.protocol} in the kernel mode`);
    if (p.outer.length > 0) this.#unsupported("explicit outer IP headers in the kernel mode");
    const tcp = this.#match.inboundTcp(p);
    const local = ip(this.#localV4);
    const remote = ip(this.#remoteV4);
    const bytes = emitTcpPacket({ ip: { src: remote, dst: local, ecn: inboundEcn(p) }, tcp });
    try {
      this.#addon.writeTun(this.#tun, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0);
    } catch (e) {
      this.#fail(`writing the packet into tun0 failed: ${errnoOf(e)}`, "runner");
    }
  }

  #expectOutbound(p: PdPacket, start: number, end: number): void {
    const lo = start - this.#tolerance;
    const hi = end + this.#tolerance + this.#slack;
    this.#waitUntil(hi, true);
    const got = this.#out.shift();
    if (got === undefined) {
      this.#last = Math.max(this.#last, hi);
      this.#fail(`expected ${printPacket(p)} at ${secs(start)} got nothing by ${secs(hi)}`, "packet");
    }
    this.#last = got.time;
    if (got.time < lo || got.time > hi) {
      this.#fail(
        `expected ${printPacket(p)} at ${secs(start)} got ${got.text} at ${secs(got.time)} (timing)`,
        "timing",
      );
    }
    if (p.protocol !== "tcp") this.#fail(`expected ${printPacket(p)} got ${got.text}`, "packet");
    const seg = coalesceRun(
      got.tcp,
      p.seq.len,
      this.#rules,
      () => {
        // The rest of a burst leaves right after its first segment.
        if (this.#out.length === 0) this.#waitUntil(this.#now() + 2000, true);
        return this.#out[0]?.tcp;
      },
      () => {
        this.#out.shift();
      },
    );
    const diffs = this.#match.compareTcp(p, seg, got.decoded);
    if (diffs.length > 0)
      this.#fail(`expected ${printPacket(p)} got ${got.text} [${diffs.join("; ")}]`, "packet");
  }

  // -------------------------------------------------------------------------------------------
  // Code snippets

  /**
   * A `%{ }%` snippet: the socket under test's `tcp_info` now (getsockopt TCP_INFO), as the
   * names packetdrill gives its Python (`linuxTcpInfo`), and the snippet's assertions over them
   * (`pycode.ts`). packetdrill runs the snippets after the script on the values recorded at
   * their times; a failure is the same failure, reported at its line.
   */
  #code(code: string): void {
    const s = this.#underTest === undefined ? undefined : this.#socks.get(this.#underTest);
    if (s === undefined) this.#fail("no socket to use for code", "runner");
    let raw: Buffer;
    try {
      raw = this.#addon.getBytes(s.fd, LEVELS["IPPROTO_TCP"] ?? 6, TCP_INFO, TCP_INFO_BYTES);
    } catch (e) {
      this.#fail(`getsockopt(TCP_INFO) for code failed: ${errnoOf(e)}`, "runner");
    }
    const r = runPyAsserts(code, { ...LINUX_PY_SYMBOLS, ...linuxTcpInfo(raw) }, this.#pyGlobals);
    if (r.ok) return;
    if (r.error.unknownName !== undefined)
      this.#unsupported(`python name ${r.error.unknownName} (not among the runner's tcp_info values)`);
    this.#fail(`expected %{ ${code} }% got ${r.error.text}`, "assert");
  }

  // -------------------------------------------------------------------------------------------
  // Shell commands

  #command(cmd: string): void {
    const lines: string[] = [];
    for (const line of commandLines(cmd)) {
      if (/^\/tmp\/sysctl_restore_/.test(line)) continue;
      if (/^(?:\S*\/)?defaults\.sh$/.test(line)) {
        this.#sysctls([...LINUX_DEFAULTS_SH, ...KERNEL_TFO_SYSCTLS]);
        // Its last step: a plain FIFO on tun0 (a pacing default qdisc such as fq would move
        // the kernel's packets off the scripts' times).
        lines.push("tc qdisc replace dev tun0 root pfifo");
        continue;
      }
      const assigned = sysctlAssignments(line);
      if (assigned.length > 0) {
        this.#sysctls(assigned.map((x) => [x.name, x.value] as const));
        continue;
      }
      const set = setSysctlsArgs(line);
      if (typeof set === "string") this.#fail(`command \`${line}\`: bad argument ${set}`, "runner");
      if (set !== undefined) {
        for (const a of set) lines.push(`echo "${a.value}" > ${a.path}`);
        continue;
      }
      lines.push(line);
    }
    if (lines.length === 0) return;
    const r = spawnSync("ip", ["netns", "exec", this.#ns, "sh", "-c", lines.join("\n")], {
      cwd: this.#opts.dir,
      stdio: ["ignore", "pipe", "pipe"],
      encoding: "utf8",
      env: { ...process.env, PACKETDRILL_PID: String(process.pid) },
    });
    const err = (r.stderr ?? "").trim();
    // A qdisc this kernel was built without (no fq here): the script needs what is not there.
    // The shell goes on after a failed line (as packetdrill's system() does), so this is read
    // from what the command printed, not from its status.
    if (/qdisc kind is unknown/.test(err)) {
      const kinds = [...cmd.matchAll(/\bqdisc\s+(?:add|replace|change)\s+.*?\broot\s+(\w+)/g)].map(
        (m) => m[1],
      );
      const kind = kinds.find((k) => k !== "pfifo") ?? kinds[0];
      this.#unsupported(`the ${kind ?? "requested"} qdisc (this kernel has no such qdisc)`);
    }
    if (r.error !== undefined || r.status !== 0)
      this.#fail(
        `command \`${cmd.trim()}\` failed: ${err || (r.error?.message ?? `status ${r.status}`)}`,
        "syscall",
      );
  }

  // -------------------------------------------------------------------------------------------
  // System calls

  #intOf = (e: PdExpr | undefined): number | undefined => {
    if (e === undefined) return undefined;
    switch (e.kind) {
      case "int":
        return e.value;
      case "word": {
        const v = LINUX_PROFILE.symbols[e.name] ?? LEVELS[e.name] ?? OPTIONS[e.name];
        if (v === undefined) this.#unsupported(`symbol ${e.name} in the kernel mode`);
        return v;
      }
      case "binary": {
        const l = this.#intOf(e.left);
        const r = this.#intOf(e.right);
        return l === undefined || r === undefined ? undefined : l | r;
      }
      case "list":
        return e.items.length === 1 ? this.#intOf(e.items[0]) : undefined;
      case "ellipsis":
        return undefined;
      default:
        this.#unsupported(`argument ${printExpr(e)} in the kernel mode`);
    }
  };

  #shape<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof ArgShapeError) this.#unsupported(`argument shape: ${e.message}`);
      throw e;
    }
  }

  #sock(ev: PdSyscallEvent): KSock {
    const fd = this.#intOf(ev.args[0]);
    const s = fd === undefined ? undefined : this.#socks.get(fd);
    if (s === undefined) this.#fail(`${ev.name}: fd ${String(fd)} is not open`, "syscall");
    return s;
  }

  /** The script's name for a new descriptor: its expected result, else the lowest free one. */
  #newFd(ev: PdSyscallEvent): number {
    const want = ev.result.kind === "int" ? ev.result.value : undefined;
    if (want !== undefined && want >= 3) {
      // As packetdrill maps script descriptors: the script's number names the new socket, and
      // one it named before stays open in the kernel, unreachable (closed at teardown).
      const old = this.#socks.get(want);
      if (old !== undefined) this.#shadowed.push(old.fd);
      return want;
    }
    let fd = 3;
    while (this.#socks.has(fd)) fd++;
    return fd;
  }

  #syscall(ev: PdSyscallEvent, callEnd: number | undefined): void {
    if (this.#blocked !== undefined)
      this.#fail(`${ev.name}() while ${this.#blocked.ev.name}() still blocks`, "syscall");
    const attempt = this.#dispatch(ev);
    const r = attempt();
    if (r !== undefined) {
      this.#checkResult(ev, r);
      return;
    }
    if (callEnd !== undefined) {
      this.#blocked = { ev, end: callEnd, attempt };
      return;
    }
    // Blocking without a time range: the script waits for it.
    const until = this.#now() + MAX_BLOCK_USECS;
    for (;;) {
      this.#waitUntil(Math.min(until, this.#now() + RETRY_USECS));
      const again = attempt();
      if (again !== undefined) {
        this.#checkResult(ev, again);
        return;
      }
      if (this.#now() >= until)
        this.#fail(`${ev.name}() still blocked after ${secs(MAX_BLOCK_USECS)}`, "syscall");
    }
  }

  #resolveBlocked(final: boolean): void {
    const b = this.#blocked;
    if (b === undefined) return;
    const line = this.#line;
    this.#line = b.ev.line;
    let r = b.attempt();
    if (r === undefined && final) {
      this.#blocked = undefined;
      const until = b.end + this.#tolerance + this.#slack;
      while (r === undefined && this.#now() < until) {
        this.#waitUntil(Math.min(until, this.#now() + RETRY_USECS));
        r = b.attempt();
      }
    }
    if (r === undefined) {
      if (final || this.#now() > b.end + this.#tolerance + this.#slack)
        this.#fail(`${b.ev.name}() still blocked at ${secs(this.#now())}`, "syscall");
      this.#line = line;
      return;
    }
    this.#blocked = undefined;
    const at = this.#now();
    if (at < b.end - this.#tolerance || at > b.end + this.#tolerance + this.#slack)
      this.#fail(`expected ${b.ev.name}() to return at ${secs(b.end)} got ${secs(at)} (timing)`, "timing");
    this.#checkResult(b.ev, r);
    this.#line = line;
  }

  #checkResult(ev: PdSyscallEvent, r: SyscallResult): void {
    const want = this.#intOf(ev.result);
    const gotText = r.errno === undefined ? String(r.value) : `${r.value} ${r.errno}`;
    const wantText = ev.errno === undefined ? printExpr(ev.result) : `${printExpr(ev.result)} ${ev.errno}`;
    // The errno is compared only when the script names one, as packetdrill does.
    if ((want !== undefined && want !== r.value) || (ev.errno !== undefined && ev.errno !== r.errno))
      this.#fail(`expected ${ev.name}() = ${wantText} got ${gotText}`, "syscall");
  }

  /**
   * One call on the kernel: an attempt that returns the result, or undefined while a call the
   * script made blocking would block (it is tried again).
   */
  #dispatch(ev: PdSyscallEvent): () => SyscallResult | undefined {
    const a = ev.args;
    const ok = (value: number): SyscallResult => ({ value, errno: undefined });
    /** Runs `f`; an errno becomes the result, EAGAIN on a blocking socket "would block". */
    const call =
      (s: KSock | undefined, f: () => number, block = true) =>
      (): SyscallResult | undefined => {
        try {
          return ok(f());
        } catch (e) {
          const errno = errnoOf(e);
          if (block && s !== undefined && !s.nonblock && (errno === "EAGAIN" || errno === "EINPROGRESS"))
            return undefined;
          return { value: -1, errno };
        }
      };
    const d = PACKETDRILL_DEFAULTS;
    switch (ev.name) {
      case "socket": {
        if (this.#intOf(a[0]) !== undefined && this.#intOf(a[0]) !== LINUX_PROFILE.symbols["AF_INET"])
          this.#unsupported("IPv6 sockets in the kernel mode");
        return call(undefined, () => {
          const fd = this.#addon.socketIn(this.#nsFd, 4);
          this.#addon.setNonBlocking(fd, true);
          if (this.#cc !== undefined)
            this.#addon.setBytes(
              fd,
              LEVELS["IPPROTO_TCP"] ?? 6,
              OPTIONS["TCP_CONGESTION"] ?? 13,
              Buffer.from(this.#cc),
            );
          const name = this.#newFd(ev);
          this.#socks.set(name, { fd, nonblock: false });
          this.#underTest = name;
          return name;
        });
      }
      case "bind": {
        const s = this.#sock(ev);
        return call(s, () => {
          this.#addon.bind(s.fd, this.#localV4, d.bindPort);
          return 0;
        });
      }
      case "listen": {
        const s = this.#sock(ev);
        const backlog = this.#intOf(a[1]) ?? 128;
        return call(s, () => {
          this.#addon.listen(s.fd, backlog);
          this.#match.newConnection();
          // packetdrill gives each passive connection a remote port of its own: a second
          // listener's peer must not be taken for the first connection's.
          if (this.#listens++ > 0) {
            const p = this.#match.defaultPorts();
            this.#match.ports = { local: p.local, remote: p.remote + 1 };
          }
          return 0;
        });
      }
      case "accept":
      case "accept4": {
        const s = this.#sock(ev);
        return call(s, () => {
          const fd = this.#addon.accept(s.fd);
          this.#addon.setNonBlocking(fd, true);
          const name = this.#newFd(ev);
          this.#socks.set(name, { fd, nonblock: false });
          this.#underTest = name;
          return name;
        });
      }
      case "connect":
        this.#match.newConnection();
        return this.#connect(this.#sock(ev));
      case "read":
      case "recv":
      case "recvfrom":
      case "readv":
      case "recvmsg": {
        const s = this.#sock(ev);
        const len =
          ev.name === "readv"
            ? totalLength(this.#shape(() => iovLengths(a[1], this.#intOf)))
            : ev.name === "recvmsg"
              ? this.#shape(() => msgHdr(a[1], this.#intOf)).length
              : (this.#intOf(a[2]) ?? 0);
        const flags =
          ev.name === "recv" || ev.name === "recvfrom" || ev.name === "recvmsg"
            ? (this.#intOf(ev.name === "recvmsg" ? a[2] : a[3]) ?? 0)
            : 0;
        // A NULL buffer (`read(4, NULL, 1000)`) goes to the kernel as NULL: it answers EFAULT.
        if (isNull(a[1])) return call(s, () => this.#addon.recvNull(s.fd, len, flags));
        const block = (flags & (LINUX_PROFILE.symbols["MSG_ERRQUEUE"] ?? 0)) === 0; // never waits (EAGAIN)
        return call(s, () => this.#addon.recvFlags(s.fd, len, flags).length, block);
      }
      case "write":
      case "send":
      case "sendto":
      case "writev":
      case "sendmsg":
        return this.#send(ev, this.#sock(ev));
      case "close": {
        const fd = this.#intOf(a[0]);
        const s = this.#sock(ev);
        return call(s, () => {
          this.#addon.close(s.fd);
          if (fd !== undefined) this.#socks.delete(fd);
          return 0;
        });
      }
      case "shutdown": {
        const s = this.#sock(ev);
        const how = this.#intOf(a[1]) ?? 0;
        return call(s, () => {
          this.#addon.shutdown(s.fd, how);
          return 0;
        });
      }
      case "fcntl": {
        const s = this.#sock(ev);
        const cmd = this.#intOf(a[1]);
        const nb = LINUX_PROFILE.symbols["O_NONBLOCK"] ?? 0;
        if (cmd === F_GETFL) return () => ok(O_RDWR | (s.nonblock ? nb : 0));
        if (cmd === F_SETFL) {
          const v = this.#intOf(a[2]) ?? 0;
          return () => {
            s.nonblock = (v & nb) !== 0;
            return ok(0);
          };
        }
        return this.#unsupported(`fcntl command ${printExpr(a[1] ?? ev.result)} in the kernel mode`);
      }
      case "ioctl": {
        const s = this.#sock(ev);
        const req = this.#intOf(a[1]) ?? 0;
        const want = this.#shape(() => bracketed(a[2], this.#intOf));
        return () => {
          try {
            const v = this.#addon.ioctlInt(s.fd, req);
            if (want !== undefined && v !== want)
              this.#fail(`expected ${ev.name}() to give ${want} got ${v}`, "syscall");
            return ok(0);
          } catch (e) {
            if (e instanceof KernelScriptFailure) throw e;
            return { value: -1, errno: errnoOf(e) };
          }
        };
      }
      case "setsockopt":
        return this.#setsockopt(ev, this.#sock(ev));
      case "getsockopt":
        return this.#getsockopt(ev, this.#sock(ev));
      case "epoll_create":
      case "epoll_create1":
        return call(undefined, () => {
          const fd = this.#addon.epollCreate();
          const name = this.#newFd(ev);
          this.#socks.set(name, { fd, nonblock: true });
          return name;
        });
      case "epoll_ctl": {
        const ep = this.#sock(ev);
        const op = this.#intOf(a[1]) ?? 0;
        const fd = this.#intOf(a[2]);
        const target = fd === undefined ? undefined : this.#socks.get(fd);
        if (target === undefined) return () => ({ value: -1, errno: "EBADF" });
        const e =
          op === LINUX_PROFILE.symbols["EPOLL_CTL_DEL"]
            ? undefined
            : this.#shape(() => epollEvent(a[3], this.#intOf));
        // The event's data is the script's fd: what epoll_wait reports is compared as written.
        return call(undefined, () => {
          this.#addon.epollCtl(ep.fd, op, target.fd, (e?.events ?? 0) >>> 0, e?.fd ?? fd ?? 0);
          return 0;
        });
      }
      case "epoll_wait":
        return this.#epollWait(ev, this.#sock(ev));
      case "poll":
        return this.#poll(ev);
      default:
        return this.#unsupported(`system call ${ev.name} in the kernel mode`);
    }
  }

  /**
   * A call that waits up to `timeoutMs` (negative: for ever) for `ready` to give a result: tried
   * without waiting each time the runner retries it; after the timeout, `ready`'s empty result.
   */
  #waitingCall(
    timeoutMs: number,
    ready: () => SyscallResult | undefined,
    empty: () => SyscallResult,
  ): () => SyscallResult | undefined {
    let deadline: number | undefined;
    return () => {
      const r = ready();
      if (r !== undefined) return r;
      deadline ??= timeoutMs < 0 ? Number.POSITIVE_INFINITY : this.#now() + timeoutMs * 1000;
      return this.#now() >= deadline ? empty() : undefined;
    };
  }

  /** epoll_wait on the kernel's epoll; the first event is compared with the script's. */
  #epollWait(ev: PdSyscallEvent, ep: KSock): () => SyscallResult | undefined {
    const a = ev.args;
    const max = this.#intOf(a[2]) ?? 1;
    const timeout = this.#intOf(a[3]) ?? 0;
    const want = a[1]?.kind === "ellipsis" ? undefined : this.#shape(() => epollEvent(a[1], this.#intOf));
    const check = (got: number[]): SyscallResult => {
      const events = got[0];
      if (want !== undefined && events !== undefined) {
        const fd = got[1];
        if (want.events >>> 0 !== events || (want.fd !== undefined && want.fd !== fd))
          this.#fail(
            `expected epoll_wait() event {events=0x${(want.events >>> 0).toString(16)}, fd=${String(want.fd)}} got {events=0x${events.toString(16)}, fd=${String(fd)}}`,
            "syscall",
          );
      }
      return { value: got.length / 2, errno: undefined };
    };
    return this.#waitingCall(
      timeout,
      () => {
        let got: number[];
        try {
          got = this.#addon.epollWait(ep.fd, max);
        } catch (e) {
          return { value: -1, errno: errnoOf(e) };
        }
        return got.length > 0 ? check(got) : undefined;
      },
      () => ({ value: 0, errno: undefined }),
    );
  }

  /** poll over the kernel's sockets; each revents the script wrote is compared. */
  #poll(ev: PdSyscallEvent): () => SyscallResult | undefined {
    const a = ev.args;
    const fds = this.#shape(() => pollFds(a[0], this.#intOf));
    const timeout = this.#intOf(a[2]) ?? 0;
    const kfds = fds.map((p) => this.#socks.get(p.fd)?.fd ?? -1);
    const result = (revents: readonly number[]): SyscallResult => {
      for (const [i, p] of fds.entries()) {
        const r = revents[i] ?? 0;
        if (p.revents !== undefined && p.revents !== r)
          this.#fail(
            `expected poll() revents of fd ${p.fd} = 0x${p.revents.toString(16)} got 0x${r.toString(16)}`,
            "syscall",
          );
      }
      return { value: revents.filter((r) => r !== 0).length, errno: undefined };
    };
    // A descriptor the script never opened is POLLNVAL, as poll(2) reports it; a negative one
    // is skipped (revents 0).
    const nval = LINUX_PROFILE.symbols["POLLNVAL"] ?? 0x20;
    const now = (): number[] =>
      this.#addon
        .waitFds(
          kfds,
          fds.map((p) => p.events),
          0,
        )
        .map((r, i) => (kfds[i] === -1 && (fds[i]?.fd ?? -1) >= 0 ? nval : r));
    return this.#waitingCall(
      timeout,
      () => {
        const r = now();
        return r.some((x) => x !== 0) ? result(r) : undefined;
      },
      () => result(now()),
    );
  }

  #connect(s: KSock): () => SyscallResult | undefined {
    const d = PACKETDRILL_DEFAULTS;
    let started = false;
    return () => {
      if (!started) {
        started = true;
        try {
          this.#addon.connect(s.fd, this.#remoteV4, d.connectPort);
          return { value: 0, errno: undefined };
        } catch (e) {
          const errno = errnoOf(e);
          if (errno !== "EINPROGRESS" || s.nonblock) return { value: -1, errno };
          return undefined;
        }
      }
      // A blocking connect: done when the socket is writable (or failed).
      const [re] = this.#addon.waitFds([s.fd], [POLLOUT], 0);
      if (re === undefined || re === 0) return undefined;
      const err = this.#addon.getInt(s.fd, LEVELS["SOL_SOCKET"] ?? 1, OPTIONS["SO_ERROR"] ?? 4);
      return err === 0 ? { value: 0, errno: undefined } : { value: -1, errno: errnoName(err) };
    };
  }

  #send(ev: PdSyscallEvent, s: KSock): () => SyscallResult | undefined {
    const a = ev.args;
    let len: number;
    let flags = 0;
    let iov: readonly number[] = []; // sent as an iovec (with MSG_ZEROCOPY each entry is a fragment)
    switch (ev.name) {
      case "writev":
        iov = this.#shape(() => iovLengths(a[1], this.#intOf));
        len = totalLength(iov);
        break;
      case "sendmsg": {
        const m = this.#shape(() => msgHdr(a[1], this.#intOf));
        if (m.control.length > 0) this.#unsupported("msg_control in the kernel mode");
        iov = m.lengths;
        len = m.length;
        flags = this.#intOf(a[2]) ?? 0;
        break;
      }
      default:
        len = this.#intOf(a[2]) ?? 0;
        if (ev.name !== "write") flags = this.#intOf(a[3]) ?? 0;
    }
    if (isNull(a[1])) {
      return () => {
        try {
          return { value: this.#addon.sendNull(s.fd, len, flags), errno: undefined };
        } catch (e) {
          return { value: -1, errno: errnoOf(e) };
        }
      };
    }
    const data = Buffer.alloc(len);
    let sent = 0;
    // A blocking write returns when the kernel took it all (it may block in between).
    return () => {
      for (;;) {
        try {
          const n =
            sent === 0 && iov.length > 1
              ? this.#addon.sendIov(s.fd, iov, flags)
              : this.#addon.sendFlags(s.fd, data.subarray(sent), flags);
          sent += n;
          if (s.nonblock || sent >= len || n === 0) return { value: sent, errno: undefined };
        } catch (e) {
          const errno = errnoOf(e);
          if (errno === "EAGAIN" && !s.nonblock) return undefined;
          if (sent > 0) return { value: sent, errno: undefined };
          return { value: -1, errno };
        }
      }
    };
  }

  #optNumbers(ev: PdSyscallEvent): [number, number, string] {
    const level = ev.args[1];
    const name = ev.args[2];
    const lv = level?.kind === "word" ? LEVELS[level.name] : this.#intOf(level);
    const nm = name?.kind === "word" ? OPTIONS[name.name] : this.#intOf(name);
    const text = name === undefined ? "?" : printExpr(name);
    if (lv === undefined || nm === undefined) this.#unsupported(`socket option ${text} in the kernel mode`);
    return [lv, nm, text];
  }

  #setsockopt(ev: PdSyscallEvent, s: KSock): () => SyscallResult | undefined {
    const [level, name, text] = this.#optNumbers(ev);
    const v = ev.args[3];
    let bytes: Buffer;
    if (text === "SO_LINGER") {
      const l = this.#shape(() => linger(v, this.#intOf));
      bytes = Buffer.alloc(8);
      bytes.writeInt32LE(l.onoff, 0);
      bytes.writeInt32LE(l.linger, 4);
    } else if (v?.kind === "string") {
      bytes = Buffer.from(v.value, "latin1");
    } else {
      const n = this.#shape(() => bracketed(v, this.#intOf));
      if (n === undefined)
        this.#unsupported(`setsockopt(${text}) with ${v === undefined ? "nothing" : printExpr(v)}`);
      bytes = Buffer.alloc(4);
      bytes.writeInt32LE(n | 0, 0);
    }
    return () => {
      try {
        this.#addon.setBytes(s.fd, level, name, bytes);
        return { value: 0, errno: undefined };
      } catch (e) {
        return { value: -1, errno: errnoOf(e) };
      }
    };
  }

  #getsockopt(ev: PdSyscallEvent, s: KSock): () => SyscallResult | undefined {
    const [level, name, text] = this.#optNumbers(ev);
    const v = ev.args[3];
    const want =
      v?.kind === "list" && v.items.length === 1 && v.items[0]?.kind !== "struct"
        ? this.#intOf(v)
        : undefined;
    if (v !== undefined && v.kind !== "ellipsis" && want === undefined && v.kind !== "string")
      this.#unsupported(`getsockopt(${text}) of ${printExpr(v)} in the kernel mode`);
    return () => {
      let got: Buffer;
      try {
        got = this.#addon.getBytes(s.fd, level, name, v?.kind === "string" ? 64 : 4);
      } catch (e) {
        return { value: -1, errno: errnoOf(e) };
      }
      if (v?.kind === "string") {
        const str = got.toString("latin1").replace(/\0.*$/s, "");
        if (str !== v.value)
          this.#fail(`expected getsockopt(${text}) to give "${v.value}" got "${str}"`, "syscall");
      } else if (want !== undefined) {
        const n = got.length >= 4 ? got.readInt32LE(0) : got.length === 1 ? (got[0] ?? 0) : Number.NaN;
        // packetdrill compares the option as the C int it is: 4294967295 in a script is -1.
        if (n !== (want | 0) && n !== want)
          this.#fail(`expected getsockopt(${text}) to give ${want} got ${n}`, "syscall");
      }
      return { value: 0, errno: undefined };
    };
  }
}

/** The errno name of a number (the few SO_ERROR gives a connect). */
function errnoName(n: number): string {
  const names: Readonly<Record<number, string>> = {
    104: "ECONNRESET",
    110: "ETIMEDOUT",
    111: "ECONNREFUSED",
    113: "EHOSTUNREACH",
    101: "ENETUNREACH",
  };
  return names[n] ?? `E${n}`;
}
