/**
 * The device under test: runs one packetdrill script against our `HostStack` in virtual time.
 *
 * Theory of operation
 * - The stack has one `link: "ip"` interface (bare IP packets, like packetdrill's tun device)
 *   with packetdrill's default addresses: local 192.168.0.1/16 and fd3d:fa7b:d17d::1/48,
 *   remote 192.0.2.1 and 2001:db8::1, reached through default routes. The stack is created
 *   lazily, when a socket first needs it (connect, listen, an inbound packet), so that the
 *   sysctls and socket options the script set before become its `TcpConfig`.
 * - Time is virtual microseconds. Absolute event times are script times; a relative time is
 *   measured from when the previous event completed (packetdrill's
 *   `adjust_relative_event_times`): for an outbound packet, the time it was actually sent.
 *   Between events, the stack's deadlines are run in order with `handleTimeout`.
 * - Inbound packets (`<`) are built with the script's numbers made absolute: sequence numbers
 *   of the remote side are used as written (its ISN is the script's), acknowledgment numbers
 *   and SACK blocks are offset by our ISN, learned from our first SYN or SYN-ACK, and TS ecr by
 *   the difference between our first TS val and the script's.
 * - Outbound packets (`>`) are compared with the next packet the stack sent, which must have
 *   left within `--tolerance_usecs` of the expected time. Packets nobody expected stay queued
 *   and fail the next comparison, as in packetdrill. Policy differences are forgiven by the
 *   named rules of `policy.ts`.
 * - System calls go to a BSD socket facade over the stack (file descriptors from 3, blocking
 *   and non-blocking sockets, SO_ERROR, SO_RCVBUF); shell commands are emulated (`sysctl -w`,
 *   `sockstat ... | grep -c STATE`, `tcpdrop -s STATE`); `%{ }%` snippets are evaluated.
 *
 * - Offload mode (`mode: "offload"`): the network side is the chimney of `device.ts` (stack,
 *   offload manager, software target as the NIC). Each connection is offered to the target once,
 *   on its `connected` / `accept` event (ST-9 keeps LISTEN, SYN states and TIME-WAIT on the
 *   host; a connection that closes comes back by the target's upload request). The facade keeps
 *   calling the stack: writes become offloaded sends, reads take what the manager was indicated,
 *   close / shutdown become disconnect requests; what the engine would say is learnt from the
 *   connection's events (end of stream, error), and its state from a QueryOffload. The result
 *   counts what the chimney did (`OffloadActivity`).
 *
 * A failure stops the script; its message is one line, `file:line: expected ... got ...`.
 *
 * Size: it is packetdrill's system-call table (every call, option and struct the scripts use,
 *   each mapped to a stack operation) plus the packet matcher; one entry per call, read as a
 *   reference rather than as a flow.
 */
import { HostStack, type HostConn, type HostListener, type StackEvent } from "../../host/stack.js";
import { fromOffloadConnectionState } from "../../chimney/tcp-state.js";
import { Prng } from "../../sim/prng.js";
import { tcpConfig, type TcpConfig } from "../../tcp/config.js";
import { Seq, type SeqNum } from "../../wire/seq.js";
import type { TcpConnection } from "../../tcp/connection.js";
import type { ConnEvent, TcpState } from "../../tcp/types.js";
import { Duration, Instant } from "../../time/instant.js";
import { StackError } from "../../util/errors.js";
import { ChecksumCapabilities } from "../../wire/checksum.js";
import { MAC_ZERO } from "../../wire/ethernet.js";
import type { Icmpv4Repr } from "../../wire/icmpv4.js";
import type { Icmpv6Repr } from "../../wire/icmpv6.js";
import { type IpAddr, ip } from "../../wire/ip-addr.js";
import { decodeIpPacket, emitIcmpv4Packet, emitIcmpv6Packet, emitTcpPacket } from "../../wire/packet.js";
import { formatPacket } from "../../wire/pretty.js";
import { type SackBlock, TcpFlag, type TcpRepr } from "../../wire/tcp-repr.js";
import {
  type PdEvent,
  type PdExpr,
  type PdIcmpPacket,
  type PdPacketEvent,
  type PdScript,
  type PdSyscallEvent,
  type PdTcpOption,
  type PdTcpPacket,
  optionValue,
  parsePacketdrill,
  printExpr,
  printPacket,
  selectEvents,
} from "../packetdrill/index.js";
import {
  type DutDevice,
  type DutMode,
  DUT_MAC,
  HostDevice,
  OffloadDevice,
  PINNED_NEIGHBOR_CONFIG,
} from "./device.js";
import { detectUnsupported, detectUnsupportedText, UNSUPPORTED_FEATURES } from "./features.js";
import { icmpNumbers } from "./icmp.js";
import { applySysctl, defaultSettings, type DutSettings, type LenientRuleName } from "./policy.js";
import { runPyAsserts } from "./pycode.js";

/** packetdrill's default addresses and ports (config.c). */
export const PACKETDRILL_DEFAULTS = {
  localV4: "192.168.0.1",
  remoteV4: "192.0.2.1",
  gatewayV4: "192.168.0.2",
  localV6: "fd3d:fa7b:d17d::1",
  remoteV6: "2001:db8::1",
  gatewayV6: "fd3d:fa7b:d17d::2",
  bindPort: 8080,
  connectPort: 8080,
  /** The remote port of connections the script opens toward a listener (any ephemeral port). */
  remotePort: 47321,
  toleranceUsecs: 4000,
  mtu: 1500,
} as const;

/** A packet that crossed the tun device, for a capture file. */
export interface CapturedFrame {
  readonly time: Instant;
  readonly direction: "in" | "out";
  /** The bare IP packet. */
  readonly bytes: Uint8Array;
}

/** The outcome of one script. */
export interface ScriptResult {
  readonly file: string;
  readonly passed: boolean;
  /** One line, `file:line: expected ... got ...`; undefined when the script passed. */
  readonly message: string | undefined;
  /** The leniency rules the script needed to pass (or used before failing). */
  readonly rulesUsed: readonly LenientRuleName[];
  /** Sysctls and socket options set to values our stack cannot honour. */
  readonly unmapped: readonly string[];
  /** Every packet in and out, in order (empty unless `capture` was asked for). */
  readonly frames: readonly CapturedFrame[];
  /** Which `#ifdef` symbols were defined. */
  readonly defines: readonly string[];
  /** What the chimney did (offload mode only; undefined in host mode or before a stack existed). */
  readonly offload: OffloadActivity | undefined;
  /** What kind of first failure stopped the script (undefined when it passed). */
  readonly failure: FailureKind | undefined;
  /** The missing feature or option the script needs, when `failure` is "unsupported". */
  readonly unsupported: string | undefined;
}

/**
 * The kinds of first failure, for reports:
 * - `unsupported`: the script needs a feature or option we do not have (`features.ts`);
 * - `runner`: the runner cannot express something the script does (a gap of ours to close);
 * - `packet`: a packet differed from the script's, or did not come;
 * - `timing`: a packet or a blocking call came outside the tolerance;
 * - `syscall`: a system call's or a shell command's result differed;
 * - `assert`: a `%{ }%` assertion failed;
 * - `stack`: the stack threw;
 * - `parse`: the script does not parse.
 */
export type FailureKind =
  | "unsupported"
  | "runner"
  | "packet"
  | "timing"
  | "syscall"
  | "assert"
  | "stack"
  | "parse";

/** What the chimney did during one script (offload mode). */
export interface OffloadActivity {
  /** InitiateOffload requests made (one per connection offered). */
  readonly initiates: number;
  /** Initiates the target failed. */
  readonly initiateFailures: number;
  /**
   * Connections seen running offloaded (their initiate completed; sampled after each pump, so
   * one offloaded and uploaded again within a single event is not counted).
   */
  readonly offloadedConnections: number;
  /** TerminateOffload trees (uploads). */
  readonly terminates: number;
  /** UpdateOffload requests (socket options changed while offloaded). */
  readonly updates: number;
  /** QueryOffload requests (the socket facade asking an offloaded connection's state). */
  readonly queries: number;
  /** Connections still off the host when the script ended. */
  readonly stillOffloaded: number;
  /**
   * NBLs still live in the buffer ledger when the script ended (sends, posts and indications
   * in flight). With nothing offloaded any more it must be 0: anything else is a leak.
   */
  readonly liveNbls: number;
}

/** Options of `runScript`. */
export interface RunScriptOptions {
  /** The name used in messages (a path relative to the suite). */
  readonly file: string;
  /** Seed of the stack's randomness (ISNs, ports, timestamp offsets). */
  readonly seed?: number | undefined;
  /** Overrides applied under the script's sysctls. */
  readonly tcp?: Partial<TcpConfig> | undefined;
  /** Keep every packet for a capture file. */
  readonly capture?: boolean | undefined;
  /**
   * `"host"` (default): the host stack alone. `"offload"`: the host stack with an offload
   * manager and a software offload target; each connection is offloaded as soon as it is
   * established (see `device.ts`).
   */
  readonly mode?: DutMode | undefined;
  /**
   * Offload mode: how long the target takes to complete a state operation (initiate,
   * terminate, query...), in microseconds; default 0 (completed before the next event). A
   * delay opens the "offloading" window, in which segments are held and forwarded (IO-4).
   */
  readonly offloadDelayUs?: number | undefined;
}

/**
 * The `#ifdef` symbols a script is run with: `STANDARD` (what the RFCs require) wherever the
 * script has such blocks, since we implement the RFCs, not FreeBSD; `FreeBSD` only for a
 * script whose conditionals are all FreeBSD ones (its FreeBSD branch is then the only
 * behaviour the script describes).
 */
export function chooseDefines(script: PdScript): string[] {
  const symbols = new Set<string>();
  const walk = (items: PdScript["body"]): void => {
    for (const it of items) {
      if (it.kind === "conditional") {
        symbols.add(it.symbol);
        walk(it.then);
        walk(it.otherwise);
      }
    }
  };
  walk(script.body);
  if (symbols.has("STANDARD")) return ["STANDARD"];
  if (symbols.has("FreeBSD")) return ["FreeBSD"];
  return [];
}

/** Parses and runs one script. Never throws for a script problem: it becomes a failed result. */
export function runScript(text: string, options: RunScriptOptions): ScriptResult {
  const parsed = parsePacketdrill(text, { file: options.file });
  if (!parsed.ok) {
    // A script that does not parse but needs a missing feature is counted under that feature.
    const feature = detectUnsupportedText(text);
    return {
      file: options.file,
      passed: false,
      failure: feature === undefined ? "parse" : "unsupported",
      unsupported: feature,
      message:
        feature === undefined
          ? parsed.error.message
          : `${options.file}: unsupported: ${feature} (${UNSUPPORTED_FEATURES[feature]}); it does not parse either: ${parsed.error.message}`,
      rulesUsed: [],
      unmapped: [],
      frames: [],
      defines: [],
      offload: undefined,
    };
  }
  const run = new ScriptRun(parsed.value, options);
  return run.run();
}

/** Thrown inside a run to stop it at the first failure. */
class ScriptFailure extends Error {
  readonly kind: FailureKind;
  constructor(message: string, kind: FailureKind) {
    super(message);
    this.kind = kind;
  }
}

interface Sock {
  readonly fd: number;
  nonblock: boolean;
  bound: boolean;
  listener: HostListener | undefined;
  conn: HostConn | undefined;
  /** A pending SO_ERROR, cleared when read. */
  soError: string | undefined;
  /** The connection's error was already reported through SO_ERROR or a call. */
  errorTaken: boolean;
}

/** What the facade knows of a connection from its events (all it has while it is offloaded). */
interface ConnInfo {
  peerFin: boolean;
  closed: boolean;
  error: string | undefined;
  /** The engine's negotiated options, recorded when the connection left the host. */
  tcpi: Record<string, number> | undefined;
  /**
   * The last state known for certain: the engine's when it left the host, then each
   * QueryOffload's answer. What a connection in flight (offloading, terminating) reports.
   */
  lastState: TcpState;
}

interface OutPacket {
  readonly time: number;
  readonly bytes: Uint8Array;
}

const FREEBSD_STATE: Readonly<Record<TcpState, string>> = {
  CLOSED: "CLOSED",
  LISTEN: "LISTEN",
  "SYN-SENT": "SYN_SENT",
  "SYN-RECEIVED": "SYN_RCVD",
  ESTABLISHED: "ESTABLISHED",
  "FIN-WAIT-1": "FIN_WAIT_1",
  "FIN-WAIT-2": "FIN_WAIT_2",
  "CLOSE-WAIT": "CLOSE_WAIT",
  CLOSING: "CLOSING",
  "LAST-ACK": "LAST_ACK",
  "TIME-WAIT": "TIME_WAIT",
};

const TCPI_STATE: Readonly<Record<TcpState, number>> = {
  CLOSED: 0,
  LISTEN: 1,
  "SYN-SENT": 2,
  "SYN-RECEIVED": 3,
  ESTABLISHED: 4,
  "CLOSE-WAIT": 5,
  "FIN-WAIT-1": 6,
  CLOSING: 7,
  "LAST-ACK": 8,
  "FIN-WAIT-2": 9,
  "TIME-WAIT": 10,
};

/** FreeBSD's values of the symbols the suite's system calls use. */
const SYMBOLS = {
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_RDWR: 2,
  O_NONBLOCK: 4,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
} as const;

const SYMBOL_VALUES: Readonly<Record<string, number>> = SYMBOLS;

const MAX_WAIT_USECS = 600_000_000;

class ScriptRun {
  readonly #script: PdScript;
  readonly #opts: RunScriptOptions;
  readonly #v6: boolean;
  readonly #tolerance: number;
  readonly #mtu: number;
  readonly #local: IpAddr;
  readonly #remote: IpAddr;
  readonly #settings: DutSettings = defaultSettings();
  readonly #rules = new Set<LenientRuleName>();
  readonly #frames: CapturedFrame[] = [];
  readonly #out: OutPacket[] = [];
  readonly #socks = new Map<number, Sock>();
  #stack: HostStack | undefined;
  #device: DutDevice | undefined;
  #offload: OffloadDevice | undefined;
  /** Connections offered to the offload target (each once), with what we know of them. */
  readonly #info = new Map<HostConn, ConnInfo>();
  /** Connections seen running offloaded. */
  readonly #offloaded = new Set<HostConn>();
  #now = 0;
  /**
   * After a blocking system call with a time range, packetdrill times the following relative
   * events from the call's start (the script's own time line), not from when it returned:
   * the script time of the last event in that chain, until an absolute time ends it.
   */
  #relBase: number | undefined;
  #line = 0;
  /** Our ISN as learned from our first SYN; undefined until then (numbers are then absolute). */
  #localIsn: SeqNum | undefined;
  /** Our TS val minus the script's, learned from our first timestamped packet. */
  #tsDelta: number | undefined;
  /** The connection inbound packets go to by default. */
  #ports: { local: number; remote: number } | undefined;
  /** The socket of the last system call (the one `%{ }%` snippets look at). */
  #lastFd: number | undefined;
  /** What `#unsupported` named. */
  #unsupportedWhat: string | undefined;

  constructor(script: PdScript, opts: RunScriptOptions) {
    this.#script = script;
    this.#opts = opts;
    this.#v6 = optionValue(script, "ip_version") === "ipv6";
    this.#tolerance = Number(optionValue(script, "tolerance_usecs") ?? PACKETDRILL_DEFAULTS.toleranceUsecs);
    this.#mtu = Number(optionValue(script, "mtu") ?? PACKETDRILL_DEFAULTS.mtu);
    this.#local = ip(this.#v6 ? PACKETDRILL_DEFAULTS.localV6 : PACKETDRILL_DEFAULTS.localV4);
    this.#remote = ip(this.#v6 ? PACKETDRILL_DEFAULTS.remoteV6 : PACKETDRILL_DEFAULTS.remoteV4);
  }

  run(): ScriptResult {
    const defines = chooseDefines(this.#script);
    let message: string | undefined;
    let failure: FailureKind | undefined;
    try {
      const events = selectEvents(this.#script, defines);
      const use = detectUnsupported(this.#script, events);
      if (use !== undefined) {
        this.#line = use.line;
        this.#unsupported(use.feature, UNSUPPORTED_FEATURES[use.feature]);
      }
      for (const ev of events) this.#event(ev);
    } catch (e) {
      if (e instanceof ScriptFailure) {
        message = e.message;
        failure = e.kind;
      } else if (e instanceof StackError) {
        message = `${this.#opts.file}:${this.#line}: stack threw ${e.code}: ${e.message}`;
        failure = "stack";
      } else throw e;
    }
    return {
      failure,
      unsupported: failure === "unsupported" ? this.#unsupportedWhat : undefined,
      file: this.#opts.file,
      passed: message === undefined,
      message,
      rulesUsed: [...this.#rules].sort(),
      unmapped: [...this.#settings.unmapped],
      frames: this.#frames,
      defines,
      offload: this.#activity(),
    };
  }

  #fail(text: string, kind: FailureKind): never {
    throw new ScriptFailure(`${this.#opts.file}:${this.#line}: ${text}`, kind);
  }

  /** Stops the script as "unsupported: <what>" (a feature or an option we do not have). */
  #unsupported(what: string, reason: string): never {
    this.#unsupportedWhat = what;
    this.#fail(`unsupported: ${what} (${reason})`, "unsupported");
  }

  // -------------------------------------------------------------------------------------------
  // Events and time

  #event(ev: PdEvent): void {
    this.#line = ev.line;
    const [start, end] = this.#eventWindow(ev);
    if (ev.kind === "packet" && ev.packet.direction === "outbound") {
      this.#expectOutbound(ev, start, end);
      return;
    }
    this.#advanceTo(Math.max(start, this.#now));
    switch (ev.kind) {
      case "packet":
        this.#inject(ev);
        return;
      case "syscall":
        this.#syscall(ev);
        if (ev.endUsecs !== undefined) this.#relBase = start;
        return;
      case "command":
        this.#command(ev.command);
        return;
      case "code":
        this.#code(ev.code);
        return;
    }
  }

  /** The time window in which the event is expected, as absolute virtual microseconds. */
  #eventWindow(ev: PdEvent): [number, number] {
    const t = ev.time;
    const base = this.#relBase ?? this.#now;
    switch (t.kind) {
      case "absolute":
        this.#relBase = undefined;
        return [t.usecs, t.usecs];
      case "relative":
        if (this.#relBase !== undefined) this.#relBase = base + t.usecs;
        return [base + t.usecs, base + t.usecs];
      case "absolute-range":
        this.#relBase = undefined;
        return [t.usecs, t.endUsecs];
      case "relative-range":
        if (this.#relBase !== undefined) this.#relBase = base + t.usecs;
        return [base + t.usecs, base + t.endUsecs];
      case "any":
        return [this.#now, this.#now + MAX_WAIT_USECS];
    }
  }

  /** Runs the stack's deadlines up to `t` and moves the clock there. */
  #advanceTo(t: number): void {
    if (this.#device !== undefined) {
      this.#drain();
      for (let d = this.#deadline(); d !== undefined && d <= t; d = this.#deadline()) this.#fireAt(d);
    }
    this.#now = Math.max(this.#now, t);
  }

  /** The device's next deadline (undefined before the stack exists). */
  #deadline(): number | undefined {
    return this.#device?.deadline(Instant.fromMicros(this.#now));
  }

  /** Moves the clock to deadline `d` (never back), runs what is due and collects the output. */
  #fireAt(d: number): void {
    this.#now = Math.max(this.#now, d);
    this.#device?.fire(Instant.fromMicros(this.#now));
    this.#drain();
  }

  /** Collects what the stack sent and what it has to say to its sockets. */
  #drain(): void {
    const device = this.#device;
    if (device === undefined) return;
    const now = Instant.fromMicros(this.#now);
    device.pump(
      now,
      (bytes) => {
        this.#out.push({ time: this.#now, bytes });
        if (this.#opts.capture === true) this.#frames.push({ time: now, direction: "out", bytes });
      },
      (e) => {
        this.#onStackEvent(e);
      },
    );
    const off = this.#offload;
    if (off !== undefined) {
      for (const c of this.#info.keys()) if (c.phase === "offloaded") this.#offloaded.add(c);
    }
  }

  #onStackEvent(e: StackEvent): void {
    const off = this.#offload;
    if (off !== undefined) this.#offloadEvent(off, e);
    if (e.kind !== "conn" || e.event.kind !== "closed") return;
    // The BSD socket layer reports every reset as ECONNRESET (tcp_drop sets so_error), also in
    // CLOSING, LAST-ACK and TIME-WAIT where RFC 9293 3.10.7.4 signals nothing to the user.
    const error = closeError(e.event);
    if (error === undefined) return;
    for (const s of this.#socks.values()) {
      if (s.conn === e.conn && !s.errorTaken) s.soError = error;
    }
  }

  #ensureStack(): HostStack {
    if (this.#stack !== undefined) return this.#stack;
    // The MSS we advertise follows the tun device's MTU (RFC 9293 3.7.1), as on FreeBSD.
    const mss = Math.min(65495, Math.max(64, this.#mtu - (this.#v6 ? 60 : 40)));
    const tcp = { mss, ...this.#opts.tcp, ...this.#settings.tcp };
    // FreeBSD rounds the receive buffer up to a multiple of the MSS once connected (tcp_mss:
    // 65536 -> 65700 with MSS 1460); its window acceptance follows that buffer space.
    const rcv = tcp.recvBufferSize ?? 65536;
    tcp.recvBufferSize = Math.ceil(rcv / mss) * mss;
    const cfg = tcpConfig(tcp);
    const d = PACKETDRILL_DEFAULTS;
    const offload = this.#opts.mode === "offload";
    const stack = new HostStack({
      interfaces: [
        {
          name: "tun0",
          link: offload ? "ethernet" : "ip",
          mac: offload ? DUT_MAC : MAC_ZERO,
          mtu: this.#mtu,
          addresses: this.#v6
            ? [{ addr: ip(d.localV6), prefixLen: 48 }]
            : [{ addr: ip(d.localV4), prefixLen: 16 }],
          checksum: ChecksumCapabilities.ALL,
        },
      ],
      routes: [
        this.#v6
          ? { prefix: ip("::"), prefixLen: 0, gateway: ip(d.gatewayV6), ifIndex: 0 }
          : { prefix: ip("0.0.0.0"), prefixLen: 0, gateway: ip(d.gatewayV4), ifIndex: 0 },
      ],
      tcp: cfg,
      random: new Prng(this.#opts.seed ?? 1),
      icmpMayAbort: this.#settings.icmpMayRst,
      neighbor: offload ? PINNED_NEIGHBOR_CONFIG : undefined,
    });
    this.#stack = stack;
    if (offload) {
      this.#offload = new OffloadDevice(stack, {
        tcpConfig: cfg,
        random: new Prng((this.#opts.seed ?? 1) + 1),
        gateway: ip(this.#v6 ? d.gatewayV6 : d.gatewayV4),
        operationDelay: Duration.fromMicros(this.#opts.offloadDelayUs ?? 0),
      });
      this.#device = this.#offload;
    } else {
      this.#device = new HostDevice(stack);
    }
    return stack;
  }

  // -------------------------------------------------------------------------------------------
  // Offload mode

  /** Offers each connection to the target once it is established; tracks what events say. */
  #offloadEvent(off: OffloadDevice, e: StackEvent): void {
    const c = e.conn;
    let info = this.#info.get(c);
    if (info === undefined && (e.kind === "accept" || e.event.kind === "connected")) {
      info = {
        peerFin: false,
        closed: false,
        error: undefined,
        tcpi: c.tcp === undefined ? undefined : tcpInfo(c.tcp),
        lastState: c.tcp?.state ?? "CLOSED",
      };
      this.#info.set(c, info);
      // ST-9: an established connection (or one already past it, CLOSE-WAIT ...) can go.
      off.offload(c);
    }
    if (info === undefined || e.kind !== "conn") return;
    if (e.event.kind === "peer-fin") info.peerFin = true;
    if (e.event.kind === "closed") {
      info.closed = true;
      info.error = closeError(e.event);
    }
  }

  /** True once the connection reached CLOSED (on the host, or as its events said while away). */
  #isClosed(c: HostConn): boolean {
    if (c.tcp !== undefined) return c.tcp.state === "CLOSED";
    return c.phase === "host" || this.#info.get(c)?.closed === true;
  }

  /**
   * The connection's TCP state wherever it runs. An offloaded connection's state is the
   * target's: the facade asks for it with QueryOffload (spec 8), as a host would for netstat.
   */
  #stateOf(c: HostConn): TcpState {
    if (c.tcp !== undefined) return c.tcp.state;
    const off = this.#offload;
    const info = this.#info.get(c);
    if (off === undefined || info === undefined || this.#isClosed(c)) return "CLOSED";
    // In flight (an initiate or a terminate not completed yet): the last state known.
    if (c.phase !== "offloaded") return info.lastState;
    const q = off.manager.query(c);
    if (q === undefined) return "CLOSED"; // retired: it ended while offloaded
    this.#drain();
    if (!q.done) return info.lastState; // the target completes it later (operation delay)
    if (q.delegated === undefined)
      this.#fail(`QueryOffload of ${c.toString()} failed (${String(q.status)})`, "stack");
    info.lastState = fromOffloadConnectionState(q.delegated.state);
    return info.lastState;
  }

  #activity(): OffloadActivity | undefined {
    const off = this.#offload;
    if (off === undefined) return undefined;
    const st = off.stats;
    return {
      initiates: st.initiates,
      initiateFailures: st.initiateFailures,
      offloadedConnections: this.#offloaded.size,
      terminates: st.terminates,
      updates: st.updates,
      queries: st.queries,
      stillOffloaded: off.manager.offloadedCount,
      liveNbls: off.ledger.outstanding(),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Inbound packets

  #inject(ev: PdPacketEvent): void {
    const p = ev.packet;
    if (p.outer.length > 0)
      this.#fail("explicit outer IP headers (ipv4/ipv6 ...:) are not supported by the runner", "runner");
    let frame: Uint8Array;
    switch (p.protocol) {
      case "tcp":
        frame = emitTcpPacket({ ip: { src: this.#remote, dst: this.#local }, tcp: this.#inboundTcp(p) });
        break;
      case "icmp":
        frame = this.#inboundIcmp(p);
        break;
      case "udp":
        this.#fail("inbound UDP is not supported by the runner", "runner");
    }
    this.#ensureStack();
    if (this.#opts.capture === true) {
      this.#frames.push({ time: Instant.fromMicros(this.#now), direction: "in", bytes: frame });
    }
    this.#device?.input(Instant.fromMicros(this.#now), frame);
    this.#drain();
  }

  #defaultPorts(): { local: number; remote: number } {
    return this.#ports ?? { local: PACKETDRILL_DEFAULTS.bindPort, remote: PACKETDRILL_DEFAULTS.remotePort };
  }

  #inboundTcp(p: PdTcpPacket): TcpRepr {
    if (p.udpEncaps !== undefined) this.#unsupported("tcp-over-udp", UNSUPPORTED_FEATURES["tcp-over-udp"]);
    const ports = p.ports ?? { src: this.#defaultPorts().remote, dst: this.#defaultPorts().local };
    const isn = this.#localIsn ?? Seq.of(0);
    const seq = p.seq.kind === "range" ? Seq.of(p.seq.start) : Seq.of(0);
    const len = p.seq.len;
    let mss: number | undefined;
    let ws: number | undefined;
    let sackOk = false;
    const sack: SackBlock[] = [];
    let ts: { tsVal: number; tsEcr: number } | undefined;
    const unknown: { kind: number; data: Uint8Array }[] = [];
    if (p.options !== "any") {
      for (const o of p.options) {
        switch (o.kind) {
          case "mss":
            mss = o.value;
            break;
          case "wscale":
            ws = o.value;
            break;
          case "sackOK":
            sackOk = true;
            break;
          case "sack":
            for (const b of o.blocks) sack.push({ left: Seq.add(isn, b.left), right: Seq.add(isn, b.right) });
            break;
          case "timestamp": {
            let ecr = o.ecr;
            if (!o.ecrAbsolute && (p.flags.bits & TcpFlag.ACK) !== 0 && this.#tsDelta !== undefined) {
              ecr = (ecr + this.#tsDelta) >>> 0;
            }
            ts = { tsVal: (o.val ?? 0) >>> 0, tsEcr: ecr };
            break;
          }
          case "md5":
            unknown.push({ kind: 19, data: hexBytes(o.digest, 16) });
            break;
          case "fastopen":
            if (o.symbolic) this.#unsupported("fast-open", UNSUPPORTED_FEATURES["fast-open"]);
            unknown.push({ kind: o.experimental ? 254 : 34, data: hexBytes(o.cookie, 0) });
            break;
          case "nop":
          case "eol":
            break;
        }
      }
    }
    return {
      srcPort: ports.src,
      dstPort: ports.dst,
      seq,
      ack: p.ack === undefined ? Seq.of(0) : Seq.add(isn, p.ack),
      flags: p.flags.bits,
      window: p.win ?? 65535,
      urgent: p.urg ?? 0,
      mss,
      windowScale: ws,
      sackPermitted: sackOk,
      sack,
      timestamps: ts,
      unknownOptions: unknown,
      payload: new Uint8Array(len),
    };
  }

  #inboundIcmp(p: PdIcmpPacket): Uint8Array {
    const nums = icmpNumbers(this.#v6 ? 6 : 4, p.type, p.code);
    if (typeof nums === "string") this.#fail(nums, "runner");
    const ports = this.#defaultPorts();
    const isn = this.#localIsn ?? Seq.of(0);
    let quoted: Uint8Array = new Uint8Array(0);
    if (p.echoed !== undefined) {
      if (p.echoed.protocol !== "tcp")
        this.#fail(`ICMP quoting ${p.echoed.protocol} is not supported`, "runner");
      if (p.echoed.udpEncaps !== undefined)
        this.#unsupported("tcp-over-udp", UNSUPPORTED_FEATURES["tcp-over-udp"]);
      const seq = p.echoed.seq.kind === "range" ? p.echoed.seq.start : 0;
      const q = emitTcpPacket({
        ip: { src: this.#local, dst: this.#remote },
        tcp: {
          ...EMPTY_TCP,
          srcPort: ports.local,
          dstPort: ports.remote,
          seq: Seq.add(isn, seq),
          flags: TcpFlag.ACK,
        },
      });
      // The IP header and the first 8 bytes of TCP (ports and sequence number), as RFC 792 asks.
      quoted = q.subarray(0, (this.#v6 ? 40 : 20) + 8);
    }
    const ipSpec = { src: this.#remote, dst: this.#local };
    if (!this.#v6) {
      let icmp: Icmpv4Repr;
      if (nums.type === 3) icmp = { type: "dst-unreachable", code: nums.code, nextHopMtu: p.mtu, quoted };
      else if (nums.type === 11) icmp = { type: "time-exceeded", code: nums.code, quoted };
      else icmp = { type: "other", rawType: nums.type, code: nums.code, rest: 0, data: quoted };
      return emitIcmpv4Packet({ ip: ipSpec, icmp });
    }
    let icmp: Icmpv6Repr;
    switch (nums.type) {
      case 1:
        icmp = { type: "dst-unreachable", code: nums.code, quoted };
        break;
      case 2:
        icmp = { type: "packet-too-big", mtu: p.mtu ?? 1280, quoted };
        break;
      case 3:
        icmp = { type: "time-exceeded", code: nums.code, quoted };
        break;
      default:
        icmp = { type: "parameter-problem", code: nums.code, pointer: 0, quoted };
    }
    return emitIcmpv6Packet({ ip: ipSpec, icmp });
  }

  // -------------------------------------------------------------------------------------------
  // Outbound packets

  #expectOutbound(ev: PdPacketEvent, start: number, end: number): void {
    const p = ev.packet;
    const lo = start - this.#tolerance;
    const hi = end + this.#tolerance;
    this.#advanceTo(Math.max(this.#now, Math.min(start, hi)));
    for (
      let d = this.#deadline();
      this.#out.length === 0 && d !== undefined && d <= hi;
      d = this.#deadline()
    ) {
      this.#fireAt(d);
    }
    const got = this.#out.shift();
    if (got === undefined) {
      this.#now = Math.max(this.#now, hi);
      this.#fail(`expected ${printPacket(p)} at ${secs(start)} got nothing by ${secs(hi)}`, "packet");
    }
    this.#now = Math.max(this.#now, got.time);
    const decoded = decodeIpPacket(got.bytes);
    const gotText = formatPacket(decoded);
    if (got.time < lo || got.time > hi) {
      this.#fail(
        `expected ${printPacket(p)} at ${secs(start)} got ${gotText} at ${secs(got.time)} (timing)`,
        "timing",
      );
    }
    if (p.protocol !== "tcp")
      this.#fail(`expected ${printPacket(p)} got ${gotText} (only TCP is compared)`, "packet");
    const t = decoded.transport;
    if (t?.kind !== "tcp") this.#fail(`expected ${printPacket(p)} got ${gotText}`, "packet");
    if (p.udpEncaps !== undefined) this.#unsupported("tcp-over-udp", UNSUPPORTED_FEATURES["tcp-over-udp"]);
    const diffs = this.#compareTcp(p, t.tcp);
    if (diffs.length > 0)
      this.#fail(`expected ${printPacket(p)} got ${gotText} [${diffs.join("; ")}]`, "packet");
  }

  /** Differences between the expected packet and ours (empty when they match). */
  #compareTcp(p: PdTcpPacket, g: TcpRepr): string[] {
    const diffs: string[] = [];
    const flags = g.flags & 0xff;
    let seqAdjust = 0;
    if (
      flags !== p.flags.bits &&
      (flags | TcpFlag.FIN) === p.flags.bits &&
      g.payload.length === 0 &&
      p.seq.len === 0 &&
      this.#localIsn !== undefined &&
      p.seq.kind === "range"
    ) {
      // A BSD stack acknowledges in CLOSING / LAST-ACK by resending its unacknowledged FIN.
      const isn = this.#localIsn;
      if (Seq.add(isn, p.seq.start + 1) === g.seq) {
        this.#rules.add("bsd-fin-on-ack");
        seqAdjust = 1;
      }
    }
    if (flags !== p.flags.bits && seqAdjust === 0) diffs.push(`flags want ${p.flags.text || "-"}`);
    // Learn our ISN and port from the first SYN we send.
    if (this.#localIsn === undefined && (g.flags & TcpFlag.SYN) !== 0 && p.seq.kind === "range") {
      this.#localIsn = Seq.sub(g.seq, p.seq.start);
      this.#ports ??= { local: g.srcPort, remote: g.dstPort };
    }
    const isn = this.#localIsn ?? Seq.of(0);
    if (p.seq.kind === "range") {
      const want = Seq.add(p.seq.absolute ? Seq.of(p.seq.start) : Seq.add(isn, p.seq.start), seqAdjust);
      if (want !== g.seq) diffs.push(`seq want ${p.seq.start} got ${Seq.delta(g.seq, isn) >>> 0}`);
    }
    if (g.payload.length !== p.seq.len) diffs.push(`length want ${p.seq.len} got ${g.payload.length}`);
    if ((p.flags.bits & TcpFlag.ACK) !== 0 && p.ack !== undefined && g.ack !== Seq.of(p.ack)) {
      diffs.push(`ack want ${p.ack} got ${g.ack}`);
    }
    if (p.win !== undefined && p.win !== g.window) {
      if ((p.flags.bits & TcpFlag.RST) !== 0) this.#rules.add("rst-window-ignored");
      else if ((p.win === 0) !== (g.window === 0)) diffs.push(`win want ${p.win} got ${g.window}`);
      else this.#rules.add("window-size-policy");
    }
    if (p.options !== "any") diffs.push(...this.#compareOptions(p.options, g));
    return diffs;
  }

  #compareOptions(opts: readonly PdTcpOption[], g: TcpRepr): string[] {
    const diffs: string[] = [];
    let mss: number | undefined;
    let ws: number | undefined;
    let sackOk = false;
    let sack: readonly { left: number; right: number }[] = [];
    let ts: { val: number | undefined; ecr: number } | undefined;
    for (const o of opts) {
      switch (o.kind) {
        case "mss":
          mss = o.value;
          break;
        case "wscale":
          ws = o.value;
          break;
        case "sackOK":
          sackOk = true;
          break;
        case "sack":
          sack = o.blocks;
          break;
        case "timestamp":
          ts = { val: o.val, ecr: o.ecr };
          break;
        case "nop":
        case "eol":
          this.#rules.add("option-layout");
          break;
        case "md5":
        case "fastopen":
          diffs.push(`option ${o.kind} not supported`);
      }
    }
    if (mss !== g.mss) diffs.push(`mss want ${mss ?? "none"} got ${g.mss ?? "none"}`);
    if ((ws === undefined) !== (g.windowScale === undefined)) {
      diffs.push(`wscale want ${ws ?? "none"} got ${g.windowScale ?? "none"}`);
    } else if (ws !== g.windowScale) {
      this.#rules.add("window-scale-shift-policy");
    }
    if (sackOk !== g.sackPermitted) diffs.push(`sackOK want ${sackOk ? "yes" : "no"}`);
    const gs = g.sack.map((b) => `${b.left}:${b.right}`).join(" ");
    const ws2 = sack.map((b) => `${b.left >>> 0}:${b.right >>> 0}`).join(" ");
    if (gs !== ws2) diffs.push(`sack want ${ws2 || "none"} got ${gs || "none"}`);
    const gts = g.timestamps;
    if ((ts === undefined) !== (gts === undefined)) {
      diffs.push(
        `TS want ${ts === undefined ? "none" : "present"} got ${gts === undefined ? "none" : "present"}`,
      );
    } else if (ts !== undefined && gts !== undefined) {
      this.#rules.add("ts-val-unchecked");
      if (ts.val !== undefined && this.#tsDelta === undefined) this.#tsDelta = (gts.tsVal - ts.val) >>> 0;
      if (ts.ecr >>> 0 !== gts.tsEcr) diffs.push(`TS ecr want ${ts.ecr} got ${gts.tsEcr}`);
    }
    return diffs;
  }

  // -------------------------------------------------------------------------------------------
  // System calls

  #syscall(ev: PdSyscallEvent): void {
    const fdArg = ev.args[0];
    if (ev.name !== "socket" && fdArg?.kind === "int") this.#lastFd = fdArg.value;
    const r = this.#dispatch(ev);
    this.#checkResult(ev, r);
  }

  #checkResult(ev: PdSyscallEvent, r: SyscallResult): void {
    const want = this.#intOf(ev.result);
    const wantErrno = ev.errno;
    const gotText = r.errno === undefined ? String(r.value) : `${r.value} ${r.errno}`;
    const wantText = wantErrno === undefined ? printExpr(ev.result) : `${printExpr(ev.result)} ${wantErrno}`;
    const errnoOk = sameErrno(wantErrno, r.errno);
    if ((want !== undefined && want !== r.value) || !errnoOk) {
      this.#fail(`expected ${ev.name}() = ${wantText} got ${gotText}`, "syscall");
    }
  }

  #intOf(e: PdExpr | undefined): number | undefined {
    if (e === undefined) return undefined;
    switch (e.kind) {
      case "int":
        return e.value;
      case "word": {
        const v = SYMBOL_VALUES[e.name];
        if (v === undefined) this.#fail(`unknown symbol ${e.name}`, "runner");
        return v;
      }
      case "binary": {
        const l = this.#intOf(e.left);
        const r = this.#intOf(e.right);
        return l === undefined || r === undefined ? undefined : l | r;
      }
      case "list":
        return this.#intOf(e.items[0]);
      case "ellipsis":
        return undefined;
      default:
        this.#fail(`unsupported expression ${printExpr(e)}`, "runner");
    }
  }

  #sock(ev: PdSyscallEvent): Sock {
    const fd = this.#intOf(ev.args[0]);
    const s = fd === undefined ? undefined : this.#socks.get(fd);
    if (s === undefined) this.#fail(`${ev.name}: fd ${String(fd)} is not open`, "syscall");
    return s;
  }

  #newFd(): number {
    let fd = 3;
    while (this.#socks.has(fd)) fd++;
    return fd;
  }

  #dispatch(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    switch (ev.name) {
      case "socket": {
        const fd = this.#newFd();
        this.#socks.set(fd, {
          fd,
          nonblock: false,
          bound: false,
          listener: undefined,
          conn: undefined,
          soError: undefined,
          errorTaken: false,
        });
        this.#lastFd = fd;
        return { value: fd, errno: undefined };
      }
      case "fcntl": {
        const s = this.#sock(ev);
        const cmd = a[1]?.kind === "word" ? a[1].name : "";
        if (cmd === "F_GETFL")
          return { value: SYMBOLS.O_RDWR | (s.nonblock ? SYMBOLS.O_NONBLOCK : 0), errno: undefined };
        if (cmd === "F_SETFL") {
          s.nonblock = ((this.#intOf(a[2]) ?? 0) & SYMBOLS.O_NONBLOCK) !== 0;
          return OK0;
        }
        this.#fail(`fcntl ${cmd} is not supported`, "runner");
        break;
      }
      case "setsockopt":
        this.#sock(ev);
        return this.#setsockopt(ev);
      case "getsockopt":
        return this.#getsockopt(this.#sock(ev), ev);
      case "bind": {
        const s = this.#sock(ev);
        s.bound = true;
        return OK0;
      }
      case "listen": {
        const s = this.#sock(ev);
        const backlog = this.#intOf(a[1]) ?? 128;
        s.listener = this.#ensureStack().listen(PACKETDRILL_DEFAULTS.bindPort, undefined, backlog);
        return OK0;
      }
      case "accept":
        return this.#accept(this.#sock(ev), ev);
      case "connect":
        return this.#connect(this.#sock(ev), ev);
      case "read":
        return this.#read(this.#sock(ev), this.#intOf(a[2]) ?? 0);
      case "write": {
        const s = this.#sock(ev);
        const c = s.conn;
        if (c === undefined) return { value: -1, errno: "ENOTCONN" };
        const n = this.#intOf(a[2]) ?? 0;
        if (this.#isClosed(c)) return this.#connError(s, "EPIPE");
        const taken = this.#ensureStack().send(Instant.fromMicros(this.#now), c, new Uint8Array(n));
        this.#drain();
        return taken === 0 && n > 0
          ? { value: -1, errno: "EWOULDBLOCK" }
          : { value: taken, errno: undefined };
      }
      case "shutdown": {
        const s = this.#sock(ev);
        const how = this.#intOf(a[1]);
        const c = s.conn;
        if (c === undefined) return { value: -1, errno: "ENOTCONN" };
        const stack = this.#ensureStack();
        const now = Instant.fromMicros(this.#now);
        if (how === SYMBOLS.SHUT_WR || how === SYMBOLS.SHUT_RDWR) this.#closeConn(c);
        if (how === SYMBOLS.SHUT_RD || how === SYMBOLS.SHUT_RDWR) {
          stack.configure(now, c, (t) => {
            t.shutdownRead(now);
          });
        }
        this.#drain();
        return OK0;
      }
      case "close": {
        const s = this.#sock(ev);
        this.#close(s);
        this.#socks.delete(s.fd);
        return OK0;
      }
      default:
        this.#fail(`system call ${ev.name} is not supported`, "runner");
    }
  }

  #closeConn(c: HostConn): void {
    const tcp = c.tcp;
    const stack = this.#ensureStack();
    const now = Instant.fromMicros(this.#now);
    if (tcp === undefined) {
      // Offloaded: a graceful disconnect request to the target (spec 13.5).
      if (!this.#isClosed(c)) stack.close(now, c);
      return;
    }
    if (tcp.state === "CLOSED") return;
    if (tcp.close() === undefined) stack.configure(now, c, () => undefined);
  }

  #close(s: Sock): void {
    const stack = this.#stack;
    if (stack === undefined) return;
    const now = Instant.fromMicros(this.#now);
    if (s.listener !== undefined) stack.closeListener(now, s.listener);
    const c = s.conn;
    if (c !== undefined && !this.#isClosed(c)) {
      if (stack.readable(c) > 0) {
        // Closing with unread data aborts the connection (RFC 2525 2.17, as BSD does).
        stack.abort(now, c);
      } else {
        this.#closeConn(c);
        stack.configure(now, c, (t) => {
          t.shutdownRead(now);
        });
      }
    }
    this.#drain();
  }

  #connError(s: Sock, fallback: string): SyscallResult {
    const c = s.conn;
    const e =
      s.soError ??
      (c?.tcp !== undefined ? c.tcp.error : c === undefined ? undefined : this.#info.get(c)?.error);
    s.soError = undefined;
    s.errorTaken = true;
    return { value: -1, errno: e ?? fallback };
  }

  #setsockopt(ev: PdSyscallEvent): SyscallResult {
    const name = ev.args[2]?.kind === "word" ? ev.args[2].name : "";
    const v = this.#intOf(ev.args[3]) ?? 0;
    switch (name) {
      case "SO_REUSEADDR":
      case "SO_REUSEPORT":
        return OK0;
      case "TCP_NODELAY":
        this.#settings.tcp.noDelay = v !== 0;
        return OK0;
      case "TCP_NOOPT":
        // FreeBSD's TF_NOOPT: the SYN carries no option at all -> noOptions.
        this.#settings.tcp.noOptions = v !== 0;
        return OK0;
      case "TCP_KEEPINIT":
        // Seconds -> connectTimeout (0 restores the sysctl's value, here: none).
        this.#settings.tcp.connectTimeout = v > 0 ? Duration.fromSeconds(v) : undefined;
        return OK0;
      case "SO_RCVBUF":
        this.#settings.tcp.recvBufferSize = v;
        return OK0;
      case "SO_SNDBUF":
        this.#settings.tcp.sendBufferSize = v;
        return OK0;
      default:
        this.#fail(`setsockopt ${name} is not supported`, "runner");
    }
  }

  #getsockopt(s: Sock, ev: PdSyscallEvent): SyscallResult {
    const name = ev.args[2]?.kind === "word" ? ev.args[2].name : "";
    const wantExpr = ev.args[3];
    const want = wantExpr?.kind === "list" ? wantExpr.items[0] : wantExpr;
    let got: string | number;
    switch (name) {
      case "SO_ERROR": {
        const e = s.soError ?? (s.errorTaken ? undefined : s.conn?.tcp?.error);
        s.soError = undefined;
        if (e !== undefined) s.errorTaken = true;
        got = e ?? 0;
        break;
      }
      case "SO_RCVBUF":
        got = this.#stack?.tcpConfig.recvBufferSize ?? this.#settings.tcp.recvBufferSize ?? 65536;
        break;
      default:
        this.#fail(`getsockopt ${name} is not supported`, "runner");
    }
    if (want === undefined || want.kind === "ellipsis") return OK0;
    if (want.kind === "word" && typeof got === "string") {
      if (!sameErrno(want.name, got))
        this.#fail(`expected getsockopt ${name} = ${want.name} got ${got}`, "syscall");
      return OK0;
    }
    const w = want.kind === "word" ? undefined : this.#intOf(want);
    if (w !== got) {
      const mss = this.#stack?.tcpConfig.mss ?? 1460;
      // Before the connection exists FreeBSD reports the unrounded size; we always hold the
      // rounded one, so a value within one MSS either way is the same buffer.
      if (name === "SO_RCVBUF" && typeof got === "number" && w !== undefined && Math.abs(w - got) < mss) {
        this.#rules.add("rcvbuf-mss-rounding");
      } else {
        this.#fail(`expected getsockopt ${name} = ${printExpr(want)} got ${String(got)}`, "syscall");
      }
    }
    return OK0;
  }

  #accept(s: Sock, ev: PdSyscallEvent): SyscallResult {
    const l = s.listener;
    if (l === undefined) return { value: -1, errno: "EINVAL" };
    const stack = this.#ensureStack();
    let c = stack.accept(l);
    if (c === undefined && !s.nonblock) {
      const until = (ev.endUsecs ?? this.#now + MAX_WAIT_USECS) + this.#tolerance;
      for (let d = this.#deadline(); d !== undefined && d <= until; d = this.#deadline()) {
        this.#advanceTo(d);
        c = stack.accept(l);
        if (c !== undefined) break;
      }
    }
    if (c === undefined) {
      if (s.nonblock) return { value: -1, errno: "EWOULDBLOCK" };
      this.#fail("accept() would block forever: no connection completed", "syscall");
    }
    const fd = this.#newFd();
    this.#socks.set(fd, {
      fd,
      nonblock: false,
      bound: true,
      listener: undefined,
      conn: c,
      soError: undefined,
      errorTaken: false,
    });
    this.#lastFd = fd;
    return { value: fd, errno: undefined };
  }

  #connect(s: Sock, ev: PdSyscallEvent): SyscallResult {
    const stack = this.#ensureStack();
    const now = Instant.fromMicros(this.#now);
    const c = stack.connect(now, this.#remote, PACKETDRILL_DEFAULTS.connectPort, {
      localPort: s.bound ? PACKETDRILL_DEFAULTS.bindPort : undefined,
    });
    s.conn = c;
    this.#ports = { local: c.localPort, remote: c.remotePort };
    this.#drain();
    if (s.nonblock) return { value: -1, errno: "EINPROGRESS" };
    // A blocking connect returns when the handshake completes or fails.
    const limit = ev.endUsecs ?? this.#now + MAX_WAIT_USECS;
    const done = (): boolean => c.connected || c.tcp === undefined || c.tcp.state === "CLOSED";
    for (
      let d = this.#deadline();
      !done() && d !== undefined && d <= limit + this.#tolerance;
      d = this.#deadline()
    ) {
      this.#advanceTo(d);
    }
    if (!done()) this.#fail("blocking connect() did not complete", "syscall");
    if (ev.endUsecs !== undefined && Math.abs(this.#now - ev.endUsecs) > this.#tolerance) {
      this.#fail(
        `expected connect() to return at ${secs(ev.endUsecs)} got ${secs(this.#now)} (timing)`,
        "timing",
      );
    }
    if (c.connected && !this.#isClosed(c)) return OK0;
    return this.#connError(s, "ECONNREFUSED");
  }

  #read(s: Sock, max: number): SyscallResult {
    const c = s.conn;
    if (c === undefined) return { value: -1, errno: "ENOTCONN" };
    const stack = this.#ensureStack();
    const tcp = c.tcp;
    if (tcp === undefined && c.phase !== "host") return this.#readOffloaded(s, c, max);
    if (tcp !== undefined && tcp.readable > 0) {
      const d = stack.recv(Instant.fromMicros(this.#now), c, max);
      this.#drain();
      return { value: d?.length ?? 0, errno: undefined };
    }
    if (tcp === undefined || tcp.atEof) return { value: 0, errno: undefined };
    if (tcp.error !== undefined && !s.errorTaken) return this.#connError(s, tcp.error);
    if (tcp.state === "CLOSED") return { value: 0, errno: undefined };
    if (s.nonblock) return { value: -1, errno: "EWOULDBLOCK" };
    this.#fail("read() would block", "syscall");
  }

  /** `read` on an offloaded connection: from what the manager holds, then what events said. */
  #readOffloaded(s: Sock, c: HostConn, max: number): SyscallResult {
    const stack = this.#ensureStack();
    const now = Instant.fromMicros(this.#now);
    let got = 0;
    while (got < max && stack.readable(c) > 0) {
      const d = stack.recv(now, c, max - got);
      if (d === undefined || d.length === 0) break;
      got += d.length;
    }
    this.#drain();
    if (got > 0) return { value: got, errno: undefined };
    const info = this.#info.get(c);
    if (info?.peerFin === true) return { value: 0, errno: undefined };
    if (info?.error !== undefined && !s.errorTaken) return this.#connError(s, info.error);
    if (info?.closed === true) return { value: 0, errno: undefined };
    if (s.nonblock) return { value: -1, errno: "EWOULDBLOCK" };
    this.#fail("read() would block", "syscall");
  }

  // -------------------------------------------------------------------------------------------
  // Shell commands and code

  #command(cmd: string): void {
    const text = cmd.trim();
    const sysctl = /^sysctl\s+-w\s+([\w.]+)=(\S+)$/.exec(text);
    if (sysctl?.[1] !== undefined && sysctl[2] !== undefined) {
      if (this.#stack !== undefined) {
        // After the stack exists its TcpConfig is fixed: record the change, do not apply it.
        const before = JSON.stringify(this.#settings.tcp);
        const probe = {
          ...this.#settings,
          tcp: { ...this.#settings.tcp },
          unmapped: [...this.#settings.unmapped],
        };
        const e = applySysctl(probe, sysctl[1], sysctl[2]);
        if (e !== undefined) this.#fail(e, "runner");
        // The host-level knobs can change on a live stack.
        this.#settings.icmpMayRst = probe.icmpMayRst;
        this.#stack.icmpMayAbort = probe.icmpMayRst;
        if (JSON.stringify(probe.tcp) !== before)
          this.#settings.unmapped.push(`late ${sysctl[1]}=${sysctl[2]}`);
        return;
      }
      const e = applySysctl(this.#settings, sysctl[1], sysctl[2]);
      if (e !== undefined) this.#fail(e, "runner");
      return;
    }
    const drop = /^tcpdrop\s+-s\s+(\w+)$/.exec(text);
    if (drop?.[1] !== undefined) {
      const stack = this.#stack;
      if (stack === undefined) return;
      const now = Instant.fromMicros(this.#now);
      for (const c of [...stack.connections()]) {
        if (FREEBSD_STATE[this.#stateOf(c)] === drop[1] && !this.#isClosed(c)) stack.abort(now, c);
      }
      this.#drain();
      return;
    }
    if (text.startsWith("sockstat")) {
      const out = this.#sockstat(text);
      if (out !== undefined) this.#fail(`command \`${text}\` failed: ${out}`, "syscall");
      return;
    }
    this.#fail(`command \`${text}\` is not supported`, "runner");
  }

  /** Emulates `sockstat [-4|-6] -P tcp [-p port] -s | grep ...`; returns why it failed, if it did. */
  #sockstat(text: string): string | undefined {
    const stages = text.split("|").map((x) => x.trim());
    const head = (stages.shift() ?? "").split(/\s+/);
    let family: 4 | 6 | undefined;
    let port: number | undefined;
    for (let i = 1; i < head.length; i++) {
      const w = head[i];
      if (w === "-4") family = 4;
      else if (w === "-6") family = 6;
      else if (w === "-p") port = Number(head[++i]);
      else if (w === "-P") {
        if (head[++i] !== "tcp") return `protocol ${String(head[i])} is not supported`;
      } else if (w !== "-s") return `option ${String(w)} is not supported`;
    }
    let lines = this.#sockstatLines(family, port);
    for (const st of stages) {
      const m = /^grep\s+(-c\s+)?(\S+)$/.exec(st);
      if (m?.[2] === undefined) return `stage '${st}' is not supported`;
      const pat = m[2];
      const kept = lines.filter((l) => l.includes(pat));
      lines = m[1] !== undefined ? [String(kept.length)] : kept;
      if (m[1] === undefined && kept.length === 0) return `'${st}' matched nothing`;
    }
    return undefined;
  }

  #sockstatLines(family: 4 | 6 | undefined, port: number | undefined): string[] {
    const lines: string[] = [];
    const seen = new Set<HostConn>();
    const fam = this.#v6 ? 6 : 4;
    if (family !== undefined && family !== fam) return lines;
    const line = (state: string, lp: number, rp: number): void => {
      if (port === undefined || lp === port || rp === port)
        lines.push(`root packetdril tcp${fam} *:${lp} *:${rp} ${state}`);
    };
    for (const s of this.#socks.values()) {
      if (s.listener !== undefined) line("LISTEN", s.listener.port, 0);
      else if (s.conn !== undefined) {
        seen.add(s.conn);
        line(FREEBSD_STATE[this.#stateOf(s.conn)], s.conn.localPort, s.conn.remotePort);
      } else line("CLOSED", s.bound ? PACKETDRILL_DEFAULTS.bindPort : 0, 0);
    }
    for (const c of this.#stack?.connections() ?? []) {
      if (seen.has(c)) continue;
      line(FREEBSD_STATE[this.#stateOf(c)], c.localPort, c.remotePort);
    }
    return lines;
  }

  #code(code: string): void {
    const s = this.#lastFd === undefined ? undefined : this.#socks.get(this.#lastFd);
    let state: TcpState = "CLOSED";
    const conn = s?.conn;
    const tcp = conn?.tcp;
    if (s?.listener !== undefined) state = "LISTEN";
    else if (conn !== undefined) state = this.#stateOf(conn);
    // An offloaded connection's options are the ones it left the host with (const state).
    const info =
      tcp !== undefined ? tcpInfo(tcp) : conn === undefined ? undefined : this.#info.get(conn)?.tcpi;
    const env: Record<string, number> = { ...info, tcpi_state: TCPI_STATE[state] };
    const r = runPyAsserts(code, env);
    if (!r.ok) this.#fail(`expected %{ ${code} }% got ${r.error}`, "assert");
  }
}

interface SyscallResult {
  readonly value: number;
  readonly errno: string | undefined;
}

const OK0: SyscallResult = { value: 0, errno: undefined };

const EMPTY_TCP: TcpRepr = {
  srcPort: 0,
  dstPort: 0,
  seq: Seq.of(0),
  ack: Seq.of(0),
  flags: 0,
  window: 0,
  urgent: 0,
  mss: undefined,
  windowScale: undefined,
  sackPermitted: false,
  sack: [],
  timestamps: undefined,
  unknownOptions: [],
  payload: new Uint8Array(0),
};

/** The `tcpi_*` values of an engine's negotiated options (FreeBSD's struct tcp_info). */
function tcpInfo(tcp: TcpConnection): Record<string, number> {
  return {
    tcpi_options:
      (tcp.timestampsEnabled ? 1 : 0) |
      (tcp.sackEnabled ? 2 : 0) |
      (tcp.windowScales.rcv > 0 || tcp.windowScales.snd > 0 ? 4 : 0),
    tcpi_snd_wscale: tcp.windowScales.snd,
    tcpi_rcv_wscale: tcp.windowScales.rcv,
    tcpi_snd_mss: tcp.mss,
  };
}

/** The errno a `closed` event leaves on the socket: BSD reports every reset as ECONNRESET. */
function closeError(ev: ConnEvent & { kind: "closed" }): string | undefined {
  return ev.error ?? (ev.reason === "reset" ? "ECONNRESET" : undefined);
}

/** EAGAIN and EWOULDBLOCK are the same number on FreeBSD. */
function sameErrno(want: string | undefined, got: string | undefined): boolean {
  const norm = (e: string | undefined): string | undefined => (e === "EAGAIN" ? "EWOULDBLOCK" : e);
  return norm(want) === norm(got);
}

function secs(usecs: number): string {
  return (usecs / 1_000_000).toFixed(6);
}

function hexBytes(hex: string, minLen: number): Uint8Array {
  const clean = hex.replace(/[^0-9a-fA-F]/g, "");
  const out = new Uint8Array(Math.max(minLen, clean.length >> 1));
  for (let i = 0; i + 1 < clean.length; i += 2) out[i >> 1] = Number.parseInt(clean.slice(i, i + 2), 16);
  return out;
}
