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
 * - System calls go to a BSD socket facade over the stack: every call packetdrill implements
 *   that means something for a TCP socket (socket ... close, the read and write families with
 *   msghdr / iovec arguments, ioctl, get/setsockopt through the option table of `sockopts.ts`,
 *   poll, epoll, open / sendfile, pipe / splice); descriptors are named by the script, as
 *   packetdrill maps them. A call with a time range (`start...end`) blocks while the script's
 *   next events run and is checked when it returns (packetdrill's syscall thread).
 * - The profile (`profile.ts`: FreeBSD or Linux) gives the sysctl table, the defaults, the
 *   symbols' values and the policy differences. Shell commands are emulated (`sysctl`, `echo >
 *   /proc/sys/...`, `sockstat ... | grep -c STATE`, `tcpdrop -s STATE`, the google scripts'
 *   helpers); `%{ }%` snippets are evaluated (`pycode.ts`).
 * - A script that needs a feature we lack is classified "unsupported: <feature>" (`features.ts`,
 *   and the option table), never run into a runner error.
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
import { Seq } from "../../wire/seq.js";
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
import { BLANK_TCP, TcpFlag, type TcpRepr } from "../../wire/tcp-repr.js";
import {
  type PdEvent,
  type PdExpr,
  type PdIcmpPacket,
  type PdPacketEvent,
  type PdScript,
  type PdSyscallEvent,
  optionValue,
  parsePacketdrill,
  printExpr,
  printPacket,
  runEvents,
} from "../packetdrill/index.js";
import {
  type DutDevice,
  type DutMode,
  DUT_MAC,
  HostDevice,
  OffloadDevice,
  PINNED_NEIGHBOR_CONFIG,
} from "./device.js";
import {
  type DutCapabilities,
  detectUnsupported,
  detectUnsupportedText,
  commandLines,
  setSysctlsArgs,
  sysctlAssignments,
  UNSUPPORTED_FEATURES,
} from "./features.js";
import { icmpNumbers } from "./icmp.js";
import {
  type DutProfile,
  FREEBSD_PROFILE,
  LINUX_DEFAULTS_SH,
  type ProfileName,
  profileOf,
} from "./profile.js";
import { SOCKET_OPTIONS, SOCKOPT_LEVELS, type SockOpt } from "./sockopts.js";
import {
  ArgShapeError,
  bracketed,
  epollEvent,
  iovLength,
  isNull,
  type Linger,
  linger,
  msgHdr,
  pipeFds,
  pollFds,
} from "./syscall-args.js";
import { applySysctl, type DutSettings, type LenientRuleName } from "./policy.js";
import { runPyAsserts } from "./pycode.js";
import { LINUX_PY_SYMBOLS } from "./tcp-info.js";
import { coalesceRun, eventWindow, inboundEcn, PACKETDRILL_DEFAULTS, PacketMatcher } from "./matcher.js";

export { PACKETDRILL_DEFAULTS };

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
  /** Whose environment the script was written for (default `freebsd`; see `profile.ts`). */
  readonly profile?: ProfileName | undefined;
}

/**
 * The `#ifdef` symbols a script is run with: `STANDARD` (what the RFCs require) wherever the
 * script has such blocks, since we implement the RFCs, not FreeBSD; `FreeBSD` only for a
 * script whose conditionals are all FreeBSD ones (its FreeBSD branch is then the only
 * behaviour the script describes).
 */
export function chooseDefines(script: PdScript, profile: DutProfile = FREEBSD_PROFILE): string[] {
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
  if (symbols.has(profile.defineSymbol)) return [profile.defineSymbol];
  return [];
}

/** What our stack can do under `profile`: a fast open client, FreeBSD's way (TCP_FASTOPEN on the connecting socket). */
function dutCapabilities(profile: ProfileName): DutCapabilities {
  return { clientFastOpen: profile === "freebsd" };
}

/** Parses and runs one script. Never throws for a script problem: it becomes a failed result. */
export function runScript(text: string, options: RunScriptOptions): ScriptResult {
  const parsed = parsePacketdrill(text, { file: options.file });
  if (!parsed.ok) {
    // A script that does not parse but needs a missing feature is counted under that feature.
    const feature = detectUnsupportedText(text, dutCapabilities(options.profile ?? "freebsd"));
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
  cloexec: boolean;
  bound: boolean;
  listener: HostListener | undefined;
  conn: HostConn | undefined;
  /** A pending SO_ERROR, cleared when read. */
  soError: string | undefined;
  /** The connection's error was already reported through SO_ERROR or a call. */
  errorTaken: boolean;
  /** shutdown(SHUT_WR / SHUT_RD) was called. */
  shutWr: boolean;
  shutRd: boolean;
  /** SO_LINGER as set. */
  linger: Linger | undefined;
  /** Option values as set (returned by getsockopt where the stack holds no value). */
  readonly opts: Map<string, number>;
  /** Settings made once the stack existed, for the connection this socket gets. */
  readonly pending: ((tcp: TcpConnection, now: Instant) => void)[];
}

function newSock(fd: number): Sock {
  return {
    fd,
    nonblock: false,
    cloexec: false,
    bound: false,
    listener: undefined,
    conn: undefined,
    soError: undefined,
    errorTaken: false,
    shutWr: false,
    shutRd: false,
    linger: undefined,
    opts: new Map(),
    pending: [],
  };
}

/** A descriptor that is not a socket: a file `open`ed for sendfile, a pipe end, an epoll set. */
type FileObj =
  | { readonly kind: "file"; readonly size: number }
  | { readonly kind: "pipe"; readonly end: "read" | "write"; readonly bytes: { n: number } }
  | {
      readonly kind: "epoll";
      /** Per descriptor: the events asked, those already reported (edge-triggered), one-shot spent. */
      readonly interest: Map<number, { events: number; reported: number; disabled: boolean }>;
    };

/** Why a send flag has no meaning for us. */
const SEND_FLAG_REASONS = {
  MSG_ZEROCOPY: "zero-copy send (MSG_ZEROCOPY) is not implemented",
  MSG_MORE: "MSG_MORE (hold a partial segment for more data) is not implemented",
  MSG_EOR: "MSG_EOR (end of record: no coalescing across it) is not implemented",
  MSG_OOB: "sending urgent data (MSG_OOB) is not part of our socket layer",
} as const;

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
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

/** Linux's `tcpi_state` values (include/net/tcp_states.h), for the Linux profile. */
const LINUX_TCPI_STATE: Readonly<Record<TcpState, number>> = {
  ESTABLISHED: 1,
  "SYN-SENT": 2,
  "SYN-RECEIVED": 3,
  "FIN-WAIT-1": 4,
  "FIN-WAIT-2": 5,
  "TIME-WAIT": 6,
  CLOSED: 7,
  "CLOSE-WAIT": 8,
  "LAST-ACK": 9,
  LISTEN: 10,
  CLOSING: 11,
};

const MAX_WAIT_USECS = 600_000_000;

class ScriptRun {
  readonly #script: PdScript;
  readonly #opts: RunScriptOptions;
  readonly #v6: boolean;
  readonly #tolerance: number = 0;
  readonly #mtu: number = 0;
  readonly #local: IpAddr;
  readonly #remote: IpAddr;
  readonly #profile: DutProfile;
  readonly #settings: DutSettings;
  /** Descriptors that are not sockets. */
  readonly #files = new Map<number, FileObj>();
  /** The files shell commands made (`dd ... of=F`), by path: their sizes. */
  readonly #fs = new Map<string, number>();
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
  /** The script's numbers relative to ours (ISN, TS offset, ports) and the packet comparison. */
  readonly #match: PacketMatcher;
  /** The socket of the last system call (the one `%{ }%` snippets look at). */
  #lastFd: number | undefined;
  /** What `#unsupported` named. */
  #unsupportedWhat: string | undefined;
  /** The blocking call in progress (see `#block`), and when it must return (absolute µs). */
  #blocked:
    | {
        readonly ev: PdSyscallEvent;
        readonly end: number;
        readonly attempt: () => SyscallResult | undefined;
      }
    | undefined;
  /** The end of the current system call's time range (absolute µs), if it has one. */
  #callEnd: number | undefined;
  /** Names `%{ }%` snippets assigned, for the later ones. */
  readonly #pyGlobals: Record<string, number> = {};

  constructor(script: PdScript, opts: RunScriptOptions) {
    this.#script = script;
    this.#opts = opts;
    this.#profile = profileOf(opts.profile ?? "freebsd");
    this.#settings = this.#profile.defaults();
    this.#v6 = optionValue(script, "ip_version") === "ipv6";
    this.#tolerance = Number(optionValue(script, "tolerance_usecs") ?? PACKETDRILL_DEFAULTS.toleranceUsecs);
    this.#mtu = Number(optionValue(script, "mtu") ?? PACKETDRILL_DEFAULTS.mtu);
    this.#local = ip(this.#v6 ? PACKETDRILL_DEFAULTS.localV6 : PACKETDRILL_DEFAULTS.localV4);
    this.#remote = ip(this.#v6 ? PACKETDRILL_DEFAULTS.remoteV6 : PACKETDRILL_DEFAULTS.remoteV4);
    this.#match = new PacketMatcher({
      strict: false,
      rules: this.#rules,
      unsupported: (f) => this.#unsupported(f, UNSUPPORTED_FEATURES[f]),
      receiveBuffer: () => this.#largestReceiveBuffer(),
    });
  }

  /** The largest receive buffer of the stack's default and every socket's SO_RCVBUF. */
  #largestReceiveBuffer(): number {
    let most = this.#stack?.tcpConfig.recvBufferSize ?? this.#settings.tcp.recvBufferSize ?? 65536;
    for (const s of this.#socks.values()) most = Math.max(most, s.opts.get("SO_RCVBUF") ?? 0);
    return most;
  }

  run(): ScriptResult {
    const defines = chooseDefines(this.#script, this.#profile);
    let message: string | undefined;
    let failure: FailureKind | undefined;
    try {
      const events = runEvents(this.#script, defines);
      const use = detectUnsupported(this.#script, events, dutCapabilities(this.#profile.name));
      if (use !== undefined) {
        this.#line = use.line;
        this.#unsupported(use.feature, UNSUPPORTED_FEATURES[use.feature]);
      }
      for (const ev of events) {
        this.#event(ev);
        this.#resolveBlocked(false);
      }
      this.#resolveBlocked(true);
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
        // `start...end name()`: the end is absolute after an absolute start, else measured
        // from the same base as the start (packetdrill's adjust_relative_event_times).
        this.#callEnd =
          ev.endUsecs === undefined
            ? undefined
            : ev.time.kind === "relative"
              ? start - ev.time.usecs + ev.endUsecs
              : ev.endUsecs;
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
    const w = eventWindow(ev.time, this.#relBase, this.#now, MAX_WAIT_USECS);
    this.#relBase = w.relBase;
    return [w.start, w.end];
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
    // A blocked call returns as soon as what it waits for happened (a timer may end it).
    this.#resolveBlocked(false);
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
    stack.fastOpen.enabled = this.#settings.fastOpenClient;
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
        frame = emitTcpPacket({
          ip: { src: this.#remote, dst: this.#local, ecn: inboundEcn(p) },
          tcp: this.#match.inboundTcp(p),
        });
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

  #inboundIcmp(p: PdIcmpPacket): Uint8Array {
    const nums = icmpNumbers(this.#v6 ? 6 : 4, p.type, p.code);
    if (typeof nums === "string") this.#fail(nums, "runner");
    const ports = this.#match.defaultPorts();
    const isn = this.#match.localIsn ?? Seq.of(0);
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
          ...BLANK_TCP,
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
    const seg = this.#profile.tso ? this.#coalesce(t.tcp, p.seq.len) : t.tcp;
    const diffs = this.#match.compareTcp(p, seg, decoded);
    if (diffs.length > 0)
      this.#fail(`expected ${printPacket(p)} got ${gotText} [${diffs.join("; ")}]`, "packet");
  }

  /**
   * TSO as the script saw it (profiles with `tso`, see `coalesceRun`): the segments we sent at
   * the same time as `first` that continue it.
   */
  #coalesce(first: TcpRepr, want: number): TcpRepr {
    const next = (): TcpRepr | undefined => {
      const o = this.#out[0];
      if (o === undefined || o.time !== this.#now) return undefined;
      const d = decodeIpPacket(o.bytes).transport;
      return d?.kind === "tcp" ? d.tcp : undefined;
    };
    return coalesceRun(first, want, this.#rules, next, () => {
      this.#out.shift();
    });
  }

  // -------------------------------------------------------------------------------------------
  // System calls

  #syscall(ev: PdSyscallEvent): void {
    const b = this.#blocked;
    if (b !== undefined) {
      this.#fail(
        `${ev.name}() while ${b.ev.name}() of line ${b.ev.line} still blocks (packetdrill runs one blocking call at a time)`,
        "syscall",
      );
    }
    const fdArg = ev.args[0];
    if (ev.name !== "socket" && fdArg?.kind === "int") this.#lastFd = fdArg.value;
    const r = this.#dispatch(ev);
    if (r === BLOCKED) return;
    this.#checkResult(ev, r);
  }

  /**
   * A blocking call: returns what `attempt` gives now; else, for a call with a time range
   * (`start...end name(...)`), it blocks while the script's next events run, as in packetdrill
   * (which runs it on its own thread), and is resolved after each of them (`#resolveBlocked`);
   * without a range it waits for the stack's timers up to `waitUsecs`, and fails if that is not
   * enough.
   */
  #block(ev: PdSyscallEvent, attempt: () => SyscallResult | undefined, waitUsecs: number): SyscallResult {
    const r = attempt();
    if (r !== undefined) return r;
    if (this.#callEnd !== undefined) {
      this.#blocked = { ev, end: this.#callEnd, attempt };
      return BLOCKED;
    }
    const until = this.#now + waitUsecs + this.#tolerance;
    for (let d = this.#deadline(); d !== undefined && d <= until; d = this.#deadline()) {
      this.#advanceTo(d);
      const again = attempt();
      if (again !== undefined) return again;
    }
    this.#fail(`${ev.name}() would block`, "syscall");
  }

  /**
   * Completes the blocked call if it can now: checks its result and that it returned within its
   * time range. `final` (the script has no more events): runs the stack's timers up to the end
   * of its range first, and fails if it still blocks.
   */
  #resolveBlocked(final: boolean): void {
    const b = this.#blocked;
    if (b === undefined) return;
    const end = b.end + this.#tolerance;
    let r = b.attempt();
    if (r === undefined && final) {
      for (let d = this.#deadline(); r === undefined && d !== undefined && d <= end; d = this.#deadline()) {
        this.#advanceTo(d); // resolves it through #fireAt when it completes
        if (this.#blocked !== b) return;
        r = b.attempt();
      }
    }
    const line = this.#line;
    this.#line = b.ev.line;
    if (r === undefined) {
      if (final || this.#now > end)
        this.#fail(`${b.ev.name}() still blocked at ${secs(this.#now)}`, "syscall");
      this.#line = line;
      return;
    }
    this.#blocked = undefined;
    if (Math.abs(this.#now - b.end) > this.#tolerance) {
      this.#fail(
        `expected ${b.ev.name}() to return at ${secs(b.end)} got ${secs(this.#now)} (timing)`,
        "timing",
      );
    }
    this.#checkResult(b.ev, r);
    this.#line = line;
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
        const v = this.#profile.symbols[e.name];
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

  /**
   * The descriptor a call that creates one returns. As in packetdrill, the script's number is the
   * descriptor's name (packetdrill maps script descriptors to live ones and checks only that the
   * call succeeded): the expected result when it is free, else the lowest free number from 3.
   */
  #newFd(ev: PdSyscallEvent): number {
    const want = ev.result.kind === "int" ? ev.result.value : undefined;
    const free = (n: number): boolean => !this.#socks.has(n) && !this.#files.has(n);
    if (want !== undefined && want >= 3 && free(want)) return want;
    let fd = 3;
    while (!free(fd)) fd++;
    return fd;
  }

  #dispatch(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const sym = this.#profile.symbols;
    const flag = (name: string): number => sym[name] ?? 0;
    switch (ev.name) {
      case "socket": {
        const fd = this.#newFd(ev);
        this.#socks.set(fd, newSock(fd));
        this.#lastFd = fd;
        return { value: fd, errno: undefined };
      }
      case "fcntl":
        return this.#fcntl(ev);
      case "ioctl":
        return this.#ioctl(ev);
      case "setsockopt":
        return this.#setsockopt(this.#sock(ev), ev);
      case "getsockopt":
        return this.#getsockopt(this.#sock(ev), ev);
      case "bind": {
        const s = this.#sock(ev);
        if (s.bound) return { value: -1, errno: "EINVAL" };
        s.bound = true;
        return OK0;
      }
      case "listen": {
        const s = this.#sock(ev);
        if (s.conn !== undefined) return { value: -1, errno: "EINVAL" };
        if (s.listener !== undefined) return OK0;
        if ((s.opts.get("TCP_FASTOPEN") ?? 0) !== 0)
          this.#unsupported("fast-open", UNSUPPORTED_FEATURES["fast-open"]); // a fast open server
        const backlog = this.#intOf(a[1]) ?? 128;
        s.listener = this.#ensureStack().listen(PACKETDRILL_DEFAULTS.bindPort, undefined, backlog);
        this.#match.newConnection();
        return OK0;
      }
      case "accept":
        return this.#accept(this.#sock(ev), ev);
      case "connect": {
        const s = this.#sock(ev);
        if (s.listener !== undefined) return { value: -1, errno: "EINVAL" };
        if (s.conn !== undefined) return { value: -1, errno: s.conn.connected ? "EISCONN" : "EALREADY" };
        this.#match.newConnection();
        return this.#connect(s, ev);
      }
      case "read":
      case "recv":
      case "recvfrom":
      case "write":
      case "send":
      case "sendto":
        return this.#bufferCall(ev);
      case "readv":
      case "writev": {
        const len = this.#shape(() => iovLength(a[1], this.#int));
        const s = this.#sock(ev);
        return ev.name === "readv" ? this.#recv(s, len, 0, ev) : this.#send(s, len, 0, ev);
      }
      case "recvmsg":
      case "sendmsg": {
        const s = this.#sock(ev);
        const m = this.#shape(() => msgHdr(a[1], this.#int));
        const flags = this.#intOf(a[2]) ?? 0;
        if (ev.name === "recvmsg" && (flags & flag("MSG_ERRQUEUE")) !== 0 && flag("MSG_ERRQUEUE") !== 0) {
          // No error queue: nothing produces reports (SO_TIMESTAMPING, zero-copy) here.
          return { value: -1, errno: "EAGAIN" };
        }
        if (m.control.length > 0)
          this.#unsupported("msg_control", "control messages are not part of our socket layer");
        return ev.name === "recvmsg"
          ? this.#recv(s, m.length, flags, ev)
          : this.#send(s, m.length, flags, ev);
      }
      case "shutdown": {
        const s = this.#sock(ev);
        const how = this.#intOf(a[1]);
        const c = s.conn;
        if (how !== sym["SHUT_RD"] && how !== sym["SHUT_WR"] && how !== sym["SHUT_RDWR"])
          return { value: -1, errno: "EINVAL" };
        if (c === undefined) return { value: -1, errno: "ENOTCONN" };
        const stack = this.#ensureStack();
        const now = Instant.fromMicros(this.#now);
        if (how === sym["SHUT_WR"] || how === sym["SHUT_RDWR"]) {
          s.shutWr = true;
          this.#closeConn(c);
        }
        if (how === sym["SHUT_RD"] || how === sym["SHUT_RDWR"]) {
          s.shutRd = true;
          stack.configure(now, c, (t) => {
            t.shutdownRead(now);
          });
        }
        this.#drain();
        return OK0;
      }
      case "close": {
        const fd = this.#intOf(a[0]);
        if (fd !== undefined && this.#files.delete(fd)) return OK0;
        const s = this.#sock(ev);
        this.#close(s);
        this.#socks.delete(s.fd);
        return OK0;
      }
      case "poll":
        return this.#poll(ev);
      case "epoll_create":
      case "epoll_create1": {
        if (!this.#profile.epoll) return { value: -1, errno: "ENOSYS" };
        const fd = this.#newFd(ev);
        this.#files.set(fd, { kind: "epoll", interest: new Map() });
        return { value: fd, errno: undefined };
      }
      case "epoll_ctl":
        return this.#epollCtl(ev);
      case "epoll_wait":
        return this.#epollWait(ev);
      case "open": {
        const path = a[0]?.kind === "string" ? a[0].value : undefined;
        const size = path === undefined ? undefined : this.#fs.get(path);
        if (size === undefined) return { value: -1, errno: "ENOENT" };
        const fd = this.#newFd(ev);
        this.#files.set(fd, { kind: "file", size });
        return { value: fd, errno: undefined };
      }
      case "sendfile": {
        const s = this.#sock(ev);
        const inFd = this.#intOf(a[1]);
        const f = inFd === undefined ? undefined : this.#files.get(inFd);
        if (f?.kind !== "file") return { value: -1, errno: "EBADF" };
        const offset = this.#shape(() => bracketed(a[2], this.#int)) ?? 0;
        const count = this.#intOf(a[3]) ?? 0;
        return this.#send(s, Math.max(0, Math.min(count, f.size - offset)), 0, ev);
      }
      case "pipe": {
        const [r, w] = this.#shape(() => pipeFds(a[0], this.#int));
        if (this.#socks.has(r) || this.#files.has(r) || this.#socks.has(w) || this.#files.has(w))
          this.#fail(`pipe([${r}, ${w}]): a descriptor is already open`, "syscall");
        const bytes = { n: 0 };
        this.#files.set(r, { kind: "pipe", end: "read", bytes });
        this.#files.set(w, { kind: "pipe", end: "write", bytes });
        return OK0;
      }
      case "splice":
        return this.#splice(ev);
      case "cap_set":
      case "psp_rx_assoc":
      case "psp_tx_assoc":
        this.#unsupported(ev.name, UNSUPPORTED_FEATURES["system-call"]);
        break;
      default:
        this.#fail(`system call ${ev.name} is not supported`, "runner");
    }
  }

  /**
   * read / recv / recvfrom and write / send / sendto: `(fd, buf, len[, flags, ...])`, on a
   * socket or a pipe end; a NULL buffer is EFAULT.
   */
  #bufferCall(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const reading = ev.name === "read" || ev.name === "recv" || ev.name === "recvfrom";
    const fd = this.#intOf(a[0]);
    const pipe = fd === undefined ? undefined : this.#files.get(fd);
    if (isNull(a[1])) return { value: -1, errno: "EFAULT" };
    const len = this.#intOf(a[2]) ?? 0;
    if (pipe !== undefined) return reading ? this.#pipeRead(pipe, len) : this.#pipeWrite(pipe, len);
    const flags = ev.name === "read" || ev.name === "write" ? 0 : (this.#intOf(a[3]) ?? 0);
    const s = this.#sock(ev);
    return reading ? this.#recv(s, len, flags, ev) : this.#send(s, len, flags, ev);
  }

  /** Runs an argument reader, turning a shape error into the script's failure. */
  #shape<T>(read: () => T): T {
    try {
      return read();
    } catch (e) {
      if (e instanceof ArgShapeError) this.#fail(e.message, "runner");
      throw e;
    }
  }

  /** `#intOf` as a plain function, for the argument readers. */
  readonly #int = (e: PdExpr | undefined): number | undefined => this.#intOf(e);

  #fcntl(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const sym = this.#profile.symbols;
    const s = this.#sock(ev);
    const cmd = a[1]?.kind === "word" ? a[1].name : "";
    const nonblock = sym["O_NONBLOCK"] ?? 0;
    switch (cmd) {
      case "F_GETFL":
        return { value: (sym["O_RDWR"] ?? 2) | (s.nonblock ? nonblock : 0), errno: undefined };
      case "F_SETFL":
        s.nonblock = ((this.#intOf(a[2]) ?? 0) & nonblock) !== 0;
        return OK0;
      case "F_GETFD":
        return { value: s.cloexec ? 1 : 0, errno: undefined };
      case "F_SETFD":
        s.cloexec = ((this.#intOf(a[2]) ?? 0) & 1) !== 0;
        return OK0;
      default:
        this.#fail(`fcntl ${cmd} is not supported`, "runner");
    }
  }

  #ioctl(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const s = this.#sock(ev);
    const cmd = a[1]?.kind === "word" ? a[1].name : "";
    const want = this.#shape(() => bracketed(a[2], this.#int));
    let got: number;
    const c = s.conn;
    switch (cmd) {
      case "FIONREAD":
      case "SIOCINQ":
        if (s.listener !== undefined) return { value: -1, errno: "EINVAL" };
        got = c === undefined ? 0 : this.#ensureStack().readable(c);
        break;
      case "SIOCOUTQ":
      case "FIONWRITE":
        if (s.listener !== undefined) return { value: -1, errno: "EINVAL" };
        got = c?.tcp?.sendQueued ?? 0;
        break;
      case "FIONSPACE":
        got = c?.tcp?.sendSpace ?? this.#settings.tcp.sendBufferSize ?? 0;
        break;
      case "FIONBIO":
        s.nonblock = (want ?? 0) !== 0;
        return OK0;
      default:
        this.#fail(`ioctl ${cmd} is not supported`, "runner");
    }
    if (want !== undefined && want !== got)
      this.#fail(`expected ioctl ${cmd} = [${want}] got [${got}]`, "syscall");
    return OK0;
  }

  /**
   * recv / read / recvmsg: up to `max` bytes; `MSG_PEEK` leaves them, `MSG_DONTWAIT` does not
   * block. A blocking call with nothing to read runs the stack's timers until the call's end
   * time (`start...end`) for something to arrive.
   */
  #recv(s: Sock, max: number, flags: number, ev: PdSyscallEvent): SyscallResult {
    const sym = this.#profile.symbols;
    const c = s.conn;
    if (c === undefined) return { value: -1, errno: "ENOTCONN" };
    if ((flags & (sym["MSG_OOB"] ?? 1)) !== 0)
      this.#unsupported("MSG_OOB", "urgent data is delivered inline");
    const peek = (flags & (sym["MSG_PEEK"] ?? 2)) !== 0;
    const nonblock = s.nonblock || (flags & (sym["MSG_DONTWAIT"] ?? 0)) !== 0;
    if (nonblock) return this.#recvNow(s, c, max, peek) ?? { value: -1, errno: "EWOULDBLOCK" };
    return this.#block(ev, () => this.#recvNow(s, c, max, peek), 0);
  }

  /** What a receive returns now, or undefined when it would block. */
  #recvNow(s: Sock, c: HostConn, max: number, peek: boolean): SyscallResult | undefined {
    const stack = this.#ensureStack();
    const now = Instant.fromMicros(this.#now);
    const avail = stack.readable(c);
    if (avail > 0 && max > 0) {
      if (peek) return { value: Math.min(avail, max), errno: undefined };
      let got = 0;
      while (got < max && stack.readable(c) > 0) {
        const d = stack.recv(now, c, max - got);
        if (d === undefined || d.length === 0) break;
        got += d.length;
      }
      this.#drain();
      return { value: got, errno: undefined };
    }
    if (max === 0 && avail > 0) return OK0;
    const tcp = c.tcp;
    if (tcp === undefined && c.phase !== "host") {
      const info = this.#info.get(c);
      if (info?.peerFin === true) return OK0;
      if (info?.error !== undefined && !s.errorTaken) return this.#connError(s, info.error);
      if (info?.closed === true) return OK0;
      return undefined;
    }
    if (tcp === undefined || tcp.atEof || s.shutRd) return OK0;
    if (tcp.error !== undefined && !s.errorTaken) return this.#connError(s, tcp.error);
    if (tcp.state === "CLOSED") return OK0;
    return undefined;
  }

  /**
   * write / send / sendto / sendmsg / writev / sendfile: queues `n` bytes. A non-blocking socket
   * takes what fits (EWOULDBLOCK when nothing does); a blocking one runs the stack's timers until
   * the call's end time for room, and fails the script if the bytes never fit.
   */
  #send(s: Sock, n: number, flags: number, ev: PdSyscallEvent): SyscallResult {
    const sym = this.#profile.symbols;
    const c = s.conn;
    for (const f of ["MSG_ZEROCOPY", "MSG_MORE", "MSG_EOR", "MSG_OOB"] as const) {
      const bit = sym[f];
      if (bit !== undefined && (flags & bit) !== 0) this.#unsupported(f, SEND_FLAG_REASONS[f]);
    }
    if (
      c === undefined &&
      ev.name === "sendto" &&
      s.listener === undefined &&
      (s.opts.get("TCP_FASTOPEN") ?? 0) !== 0
    )
      return this.#fastOpenConnect(s, n);
    if (c === undefined) return { value: -1, errno: s.listener !== undefined ? "ENOTCONN" : "ENOTCONN" };
    if (s.shutWr) return { value: -1, errno: "EPIPE" };
    if (this.#isClosed(c)) return this.#connError(s, "EPIPE");
    const nonblock = s.nonblock || (flags & (sym["MSG_DONTWAIT"] ?? 0)) !== 0;
    const stack = this.#ensureStack();
    let taken = 0;
    const more = (): void => {
      if (taken < n && !this.#isClosed(c)) {
        taken += stack.send(Instant.fromMicros(this.#now), c, new Uint8Array(n - taken));
        this.#drain();
      }
    };
    more();
    if (nonblock)
      return taken === 0 && n > 0 ? { value: -1, errno: "EWOULDBLOCK" } : { value: taken, errno: undefined };
    // Blocking: returns once every byte is queued, or with what was taken when the connection ends.
    return this.#block(
      ev,
      () => {
        more();
        if (taken === n) return { value: taken, errno: undefined };
        if (!this.#isClosed(c)) return undefined;
        return taken > 0 ? { value: taken, errno: undefined } : this.#connError(s, "EPIPE");
      },
      0,
    );
  }

  #pipeRead(f: FileObj, max: number): SyscallResult {
    if (f.kind !== "pipe" || f.end !== "read") return { value: -1, errno: "EBADF" };
    const n = Math.min(max, f.bytes.n);
    f.bytes.n -= n;
    return { value: n, errno: undefined };
  }

  #pipeWrite(f: FileObj, n: number): SyscallResult {
    if (f.kind !== "pipe" || f.end !== "write") return { value: -1, errno: "EBADF" };
    f.bytes.n += n;
    return { value: n, errno: undefined };
  }

  /** splice(in, NULL, out, NULL, len, flags): socket to pipe, or pipe to socket. */
  #splice(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const inFd = this.#intOf(a[0]);
    const outFd = this.#intOf(a[2]);
    const len = this.#intOf(a[4]) ?? 0;
    const fin = inFd === undefined ? undefined : this.#files.get(inFd);
    const fout = outFd === undefined ? undefined : this.#files.get(outFd);
    if (fout?.kind === "pipe" && fin === undefined) {
      const s = inFd === undefined ? undefined : this.#socks.get(inFd);
      if (s === undefined) return { value: -1, errno: "EBADF" };
      const r = this.#recv(s, len, this.#profile.symbols["MSG_DONTWAIT"] ?? 0, ev);
      if (r.value > 0) this.#pipeWrite(fout, r.value);
      return r.errno === "EWOULDBLOCK" ? { value: -1, errno: "EAGAIN" } : r;
    }
    if (fin?.kind === "pipe" && fout === undefined) {
      const s = outFd === undefined ? undefined : this.#socks.get(outFd);
      if (s === undefined) return { value: -1, errno: "EBADF" };
      const n = Math.min(len, fin.bytes.n);
      const r = this.#send(s, n, 0, ev);
      if (r.value > 0) fin.bytes.n -= r.value;
      return r;
    }
    return { value: -1, errno: "EINVAL" };
  }

  /** The poll(2) events of a descriptor now. */
  #pollEvents(fd: number): number {
    const sym = this.#profile.symbols;
    const IN = (sym["POLLIN"] ?? 1) | (sym["POLLRDNORM"] ?? 0);
    const OUT = (sym["POLLOUT"] ?? 4) | (sym["POLLWRNORM"] ?? 0);
    const ERR = sym["POLLERR"] ?? 8;
    const HUP = sym["POLLHUP"] ?? 0x10;
    const f = this.#files.get(fd);
    if (f !== undefined) {
      if (f.kind === "pipe") return f.end === "read" ? (f.bytes.n > 0 ? IN : 0) : OUT;
      return f.kind === "file" ? IN | OUT : 0;
    }
    const s = this.#socks.get(fd);
    if (s === undefined) return sym["POLLNVAL"] ?? 0x20;
    if (s.listener !== undefined) return s.listener.ready.length > 0 ? IN : 0;
    const c = s.conn;
    if (c === undefined) return OUT | HUP; // an unconnected socket: writable at once, and hung up
    let ev = 0;
    const stack = this.#ensureStack();
    const tcp = c.tcp;
    const info = this.#info.get(c);
    const err = s.soError ?? (s.errorTaken ? undefined : (tcp?.error ?? info?.error));
    const closed = this.#isClosed(c);
    const eof = tcp !== undefined ? tcp.atEof : info?.peerFin === true;
    if (stack.readable(c) > 0 || eof || closed || s.shutRd) ev |= IN;
    if (err !== undefined) ev |= ERR;
    if (closed || (eof && s.shutWr)) ev |= HUP;
    if (eof && sym["POLLRDHUP"] !== undefined) ev |= sym["POLLRDHUP"];
    const space = tcp !== undefined ? tcp.sendSpace : 1;
    if ((c.connected && !s.shutWr && space > 0) || closed) ev |= OUT;
    return ev;
  }

  /** Waits (running the stack's timers, up to `timeoutMs` or the call's end) until `ready()`. */
  #waitUntil(timeoutMs: number, ready: () => boolean): void {
    if (ready() || timeoutMs === 0) return;
    const limit = timeoutMs < 0 ? this.#now + MAX_WAIT_USECS : this.#now + timeoutMs * 1000;
    const until = Math.min(limit, (this.#callEnd ?? limit) + this.#tolerance);
    for (let d = this.#deadline(); d !== undefined && d <= until; d = this.#deadline()) {
      this.#advanceTo(d);
      if (ready()) return;
    }
    if (timeoutMs > 0) this.#advanceTo(Math.min(limit, Math.max(this.#now, this.#callEnd ?? limit)));
  }

  #poll(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const fds = this.#shape(() => pollFds(a[0], this.#int));
    const timeout = this.#intOf(a[2]) ?? 0;
    const sym = this.#profile.symbols;
    const always = (sym["POLLERR"] ?? 8) | (sym["POLLHUP"] ?? 0x10) | (sym["POLLNVAL"] ?? 0x20);
    const revents = (): number[] => fds.map((p) => this.#pollEvents(p.fd) & (p.events | always));
    this.#waitUntil(timeout, () => revents().some((r) => r !== 0));
    const got = revents();
    for (const [i, p] of fds.entries()) {
      const r = got[i] ?? 0;
      if (p.revents !== undefined && p.revents !== r) {
        this.#fail(`expected poll() revents of fd ${p.fd} = ${hex(p.revents)} got ${hex(r)}`, "syscall");
      }
    }
    return { value: got.filter((r) => r !== 0).length, errno: undefined };
  }

  #epoll(ev: PdSyscallEvent): Extract<FileObj, { kind: "epoll" }> | undefined {
    const fd = this.#intOf(ev.args[0]);
    const f = fd === undefined ? undefined : this.#files.get(fd);
    return f?.kind === "epoll" ? f : undefined;
  }

  #epollCtl(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const sym = this.#profile.symbols;
    const ep = this.#epoll(ev);
    if (ep === undefined) return { value: -1, errno: "EBADF" };
    const op = this.#intOf(a[1]);
    const fd = this.#intOf(a[2]);
    if (fd === undefined || (!this.#socks.has(fd) && !this.#files.has(fd)))
      return { value: -1, errno: "EBADF" };
    const e = op === sym["EPOLL_CTL_DEL"] ? undefined : this.#shape(() => epollEvent(a[3], this.#int));
    if (op === sym["EPOLL_CTL_ADD"]) {
      if (ep.interest.has(fd)) return { value: -1, errno: "EEXIST" };
      ep.interest.set(fd, { events: e?.events ?? 0, reported: 0, disabled: false });
    } else if (op === sym["EPOLL_CTL_MOD"]) {
      if (!ep.interest.has(fd)) return { value: -1, errno: "ENOENT" };
      ep.interest.set(fd, { events: e?.events ?? 0, reported: 0, disabled: false });
    } else if (op === sym["EPOLL_CTL_DEL"]) {
      if (!ep.interest.delete(fd)) return { value: -1, errno: "ENOENT" };
    } else return { value: -1, errno: "EINVAL" };
    return OK0;
  }

  /**
   * epoll_wait: level-triggered entries report while ready; `EPOLLET` ones when a readiness bit
   * appears that was not reported before; `EPOLLONESHOT` ones once, until re-armed by MOD.
   */
  #epollWait(ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const sym = this.#profile.symbols;
    const ep = this.#epoll(ev);
    if (ep === undefined) return { value: -1, errno: "EBADF" };
    const max = this.#intOf(a[2]) ?? 1;
    const timeout = this.#intOf(a[3]) ?? 0;
    if (max <= 0) return { value: -1, errno: "EINVAL" };
    const ET = sym["EPOLLET"] ?? 0x80000000;
    const ONESHOT = sym["EPOLLONESHOT"] ?? 0x40000000;
    const always = (sym["EPOLLERR"] ?? 8) | (sym["EPOLLHUP"] ?? 0x10);
    const ready = (): { fd: number; events: number }[] => {
      const out: { fd: number; events: number }[] = [];
      for (const [fd, it] of ep.interest) {
        if (it.disabled) continue;
        const now = this.#pollEvents(fd) & ((it.events & ~(ET | ONESHOT)) | always);
        const fresh = (it.events & ET) !== 0 ? now & ~it.reported : now;
        if ((it.events & ET) !== 0) it.reported &= now; // a bit that went away may be reported again
        if (fresh !== 0) out.push({ fd, events: now });
      }
      return out;
    };
    this.#waitUntil(timeout, () => ready().length > 0);
    const got = ready().slice(0, max);
    for (const r of got) {
      const it = ep.interest.get(r.fd);
      if (it === undefined) continue;
      it.reported |= r.events;
      if ((it.events & ONESHOT) !== 0) it.disabled = true;
    }
    const want = this.#shape(() => epollEvent(a[1], this.#int));
    const first = got[0];
    if (
      first !== undefined &&
      (want.events !== first.events || (want.fd !== undefined && want.fd !== first.fd))
    ) {
      this.#fail(
        `expected epoll_wait() event {events=${hex(want.events)}, fd=${String(want.fd)}} got {events=${hex(first.events)}, fd=${first.fd}}`,
        "syscall",
      );
    }
    return { value: got.length, errno: undefined };
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
      if (s.linger !== undefined && s.linger.onoff !== 0 && s.linger.linger === 0) {
        // SO_LINGER with a zero timeout: close() aborts (RFC 9293 3.10.4), sending a RST.
        stack.abort(now, c);
      } else if (stack.readable(c) > 0) {
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

  /** The option a get/setsockopt names, checked against its level; an errno result otherwise. */
  #optionOf(ev: PdSyscallEvent): { name: string; opt: SockOpt } | SyscallResult {
    const a = ev.args;
    const levelWord = a[1]?.kind === "word" ? a[1].name : undefined;
    const name = a[2]?.kind === "word" ? a[2].name : undefined;
    if (levelWord === undefined || name === undefined)
      this.#fail(`${ev.name}: the level and the option must be names (SOL_SOCKET, TCP_NODELAY...)`, "runner");
    const level = SOCKOPT_LEVELS[levelWord];
    if (level === undefined) this.#fail(`${ev.name}: unknown level ${levelWord}`, "runner");
    const opt = SOCKET_OPTIONS[name];
    if (opt === undefined) this.#fail(`${ev.name}: unknown socket option ${name}`, "runner");
    // An option asked at another level is unknown there (both kernels say ENOPROTOOPT).
    if (opt.level !== level) return { value: -1, errno: "ENOPROTOOPT" };
    return { name, opt };
  }

  /**
   * Applies a TCP setting of a socket: into the settings the stack is built from while there is
   * no stack; to the socket's connection (live) once there is one; else kept on the socket and
   * applied to the connection it gets (connect, or accept for a listener's).
   */
  #tune(
    s: Sock,
    before: (t: DutSettings["tcp"]) => void,
    live: ((tcp: TcpConnection, now: Instant) => void) | undefined,
    what: string,
  ): void {
    if (this.#stack === undefined) {
      before(this.#settings.tcp);
      return;
    }
    if (live === undefined) {
      this.#settings.unmapped.push(`late ${what}`);
      return;
    }
    if (s.conn === undefined) {
      s.pending.push(live);
      return;
    }
    this.#applyLive(s.conn, [live], what);
  }

  #applyLive(
    c: HostConn,
    changes: readonly ((tcp: TcpConnection, now: Instant) => void)[],
    what: string,
  ): void {
    if (changes.length === 0) return;
    const stack = this.#ensureStack();
    const now = Instant.fromMicros(this.#now);
    if (c.tcp === undefined) {
      // Offloaded: the setting would travel by UpdateOffload; the facade does not model it.
      this.#settings.unmapped.push(`offloaded ${what}`);
      return;
    }
    stack.configure(now, c, (t) => {
      for (const f of changes) f(t, now);
    });
    this.#drain();
  }

  #keepAliveOf(s: Sock): boolean {
    const v = s.opts.get("SO_KEEPALIVE");
    return v !== undefined ? v !== 0 : (this.#settings.tcp.keepAlive ?? false);
  }

  #setsockopt(s: Sock, ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const o = this.#optionOf(ev);
    if ("errno" in o) return o;
    const { name, opt } = o;
    if (opt.set === false) return { value: -1, errno: "ENOPROTOOPT" };
    const len = this.#intOf(a[4]);
    if (name === "SO_LINGER") {
      if (len !== undefined && len < 8) return { value: -1, errno: "EINVAL" };
      s.linger = this.#shape(() => linger(a[3], this.#int));
      return OK0;
    }
    if (name === "TCP_CONGESTION") {
      const v = a[3]?.kind === "string" ? a[3].value : undefined;
      const cc = v === "reno" || v === "newreno" ? "newreno" : v === "cubic" ? "cubic" : undefined;
      if (cc === undefined) this.#unsupported(`TCP_CONGESTION ${String(v)}`, opt.meaning);
      else {
        this.#tune(
          s,
          (t) => (t.congestionControl = cc),
          (t) => t.setCongestionControl(cc),
          name,
        );
        return OK0;
      }
    }
    // An option we lack classifies the script before its value is read (its symbols may be
    // ones only that feature defines), except the corking ones, whose 0 is the default.
    const corking = name === "TCP_CORK" || name === "TCP_NOPUSH";
    if (opt.unsupported !== undefined && !corking) this.#unsupported(name, opt.unsupported);
    // Fast open is ours as a FreeBSD client only: Linux sets TCP_FASTOPEN on a listener.
    if (name === "TCP_FASTOPEN" && (s.listener !== undefined || this.#profile.name !== "freebsd"))
      this.#unsupported("fast-open", UNSUPPORTED_FEATURES["fast-open"]);
    const v = this.#shape(() => bracketed(a[3], this.#int));
    if (v === undefined) this.#fail(`setsockopt ${name}: the value must be an integer ([N])`, "runner");
    // Linux reads an IP-level option from one byte when optlen is below sizeof(int).
    const minLen = opt.level === "ip" && this.#profile.name === "linux" ? 1 : 4;
    if (len !== undefined && len < minLen) return { value: -1, errno: "EINVAL" };
    if (opt.unsupported !== undefined) {
      if (v !== 0) this.#unsupported(name, opt.unsupported);
      s.opts.set(name, 0);
      return OK0;
    }
    const linux = this.#profile.name === "linux";
    const secs = (x: number): Duration => Duration.fromSeconds(x);
    switch (name) {
      case "SO_KEEPALIVE":
        this.#tune(
          s,
          (t) => (t.keepAlive = v !== 0),
          (t, now) => t.setKeepAlive(now, v !== 0),
          name,
        );
        break;
      case "SO_SNDBUF":
      case "SO_RCVBUF": {
        if (v < 0) return { value: -1, errno: "EINVAL" };
        // Linux keeps twice the size asked (half of it for bookkeeping), FreeBSD the size.
        const size = Math.max(linux ? 2048 : 1, linux ? 2 * v : v);
        if (name === "SO_SNDBUF")
          this.#tune(
            s,
            (t) => (t.sendBufferSize = size),
            (t) => t.setSendBufferSize(size),
            name,
          );
        else
          this.#tune(
            s,
            (t) => (t.recvBufferSize = size),
            (t) => t.setRecvBufferSize(size),
            name,
          );
        s.opts.set(name, size);
        return OK0;
      }
      case "TCP_NODELAY":
        this.#tune(
          s,
          (t) => (t.noDelay = v !== 0),
          (t) => t.setNoDelay(v !== 0),
          name,
        );
        break;
      case "TCP_MAXSEG":
        if (v < (linux ? 88 : 1) || v > 65535) return { value: -1, errno: "EINVAL" };
        this.#tune(
          s,
          (t) => (t.mss = v),
          (t) => t.setMss(v),
          name,
        );
        break;
      case "TCP_NOOPT":
        this.#tune(s, (t) => (t.noOptions = v !== 0), undefined, name);
        break;
      case "TCP_KEEPIDLE":
      case "TCP_KEEPINTVL":
      case "TCP_KEEPCNT": {
        if (
          v < 1 ||
          (name === "TCP_KEEPCNT" && linux && v > 127) ||
          (name !== "TCP_KEEPCNT" && linux && v > 32767)
        )
          return { value: -1, errno: "EINVAL" };
        const idle = name === "TCP_KEEPIDLE" ? secs(v) : undefined;
        const intvl = name === "TCP_KEEPINTVL" ? secs(v) : undefined;
        const cnt = name === "TCP_KEEPCNT" ? v : undefined;
        const on = this.#keepAliveOf(s);
        this.#tune(
          s,
          (t) => {
            if (idle !== undefined) t.keepAliveIdle = idle;
            if (intvl !== undefined) t.keepAliveInterval = intvl;
            if (cnt !== undefined) t.keepAliveProbes = cnt;
          },
          (t, now) => t.setKeepAlive(now, on, idle, intvl, cnt),
          name,
        );
        break;
      }
      case "TCP_KEEPINIT":
        // Seconds -> connectTimeout (0 restores the sysctl's value).
        if (v < 0) return { value: -1, errno: "EINVAL" };
        this.#tune(
          s,
          (t) => (t.connectTimeout = v > 0 ? secs(v) : this.#profile.defaults().tcp.connectTimeout),
          undefined,
          name,
        );
        break;
      case "TCP_SYNCNT":
        if (v < 1 || v > 127) return { value: -1, errno: "EINVAL" };
        this.#tune(s, (t) => (t.synRetries = v), undefined, name);
        break;
      case "TCP_USER_TIMEOUT": {
        if (v < 0) return { value: -1, errno: "EINVAL" };
        const ut = v === 0 ? undefined : Duration.fromMillis(v);
        this.#tune(
          s,
          (t) => (t.userTimeout = ut),
          (t) => t.setRetransmitLimits(this.#stack?.tcpConfig.maxRetransmissions ?? 15, ut),
          name,
        );
        break;
      }
      case "TCP_LINGER2":
        if (v > 0) this.#tune(s, (t) => (t.finWait2Timeout = secs(v)), undefined, name);
        break;
      case "IP_MTU_DISCOVER":
      case "IPV6_MTU_DISCOVER": {
        const sym = this.#profile.symbols;
        if (v !== (sym["IP_PMTUDISC_DO"] ?? 2) && v !== (sym["IP_PMTUDISC_WANT"] ?? 1))
          this.#unsupported(`${name} ${v}`, "path MTU discovery is always on here (DF set)");
        break;
      }
      default:
        break; // an option with no effect on what a script observes: kept for getsockopt
    }
    s.opts.set(name, v);
    return OK0;
  }

  #getsockopt(s: Sock, ev: PdSyscallEvent): SyscallResult {
    const a = ev.args;
    const o = this.#optionOf(ev);
    if ("errno" in o) return o;
    const { name, opt } = o;
    if (opt.get === false) return { value: -1, errno: "ENOPROTOOPT" };
    if (opt.unsupported !== undefined && !(name === "TCP_CORK" || name === "TCP_NOPUSH"))
      this.#unsupported(name, opt.unsupported);
    const wantExpr = a[3];
    const want = wantExpr?.kind === "list" && wantExpr.items.length === 1 ? wantExpr.items[0] : wantExpr;
    const stackCfg = this.#stack?.tcpConfig;
    const st = this.#settings.tcp;
    const tcp = s.conn?.tcp;
    const secs = (d: Duration | undefined): number => (d === undefined ? 0 : Math.floor(d / 1_000_000));
    let got: string | number;
    switch (name) {
      case "SO_ERROR": {
        const e =
          s.soError ??
          (s.errorTaken
            ? undefined
            : (tcp?.error ?? (s.conn === undefined ? undefined : this.#info.get(s.conn)?.error)));
        s.soError = undefined;
        if (e !== undefined) s.errorTaken = true;
        got = e ?? 0;
        break;
      }
      case "SO_RCVBUF": {
        // The size as set (Linux: doubled when set), which FreeBSD reports until the peer's SYN
        // is in; then it reports the buffer it rounded up to a multiple of the connection's MSS
        // (tcp_mss: 65536 -> 65700 with MSS 1460), as our stack holds it (`#ensureStack`).
        const set = s.opts.get(name) ?? st.recvBufferSize ?? 65536;
        const mss = stackCfg?.mss ?? 1460;
        const synIn = s.conn !== undefined && (s.conn.connected || tcp?.state === "SYN-RECEIVED");
        const rounded = this.#profile.name === "freebsd" && synIn;
        got = rounded ? Math.ceil(set / mss) * mss : set;
        break;
      }
      case "SO_SNDBUF":
        got = s.opts.get(name) ?? stackCfg?.sendBufferSize ?? st.sendBufferSize ?? 32768;
        break;
      case "SO_TYPE":
        got = this.#profile.symbols["SOCK_STREAM"] ?? 1;
        break;
      case "SO_ACCEPTCONN":
        got = s.listener !== undefined ? 1 : 0;
        break;
      case "SO_KEEPALIVE":
        got = this.#keepAliveOf(s) ? 1 : 0;
        break;
      case "SO_LINGER": {
        const w =
          want === undefined || want.kind === "ellipsis"
            ? undefined
            : this.#shape(() => linger(want, this.#int));
        const l = s.linger ?? { onoff: 0, linger: 0 };
        if (w !== undefined && (w.onoff !== 0) !== (l.onoff !== 0 || w.linger !== l.linger))
          this.#fail(
            `expected getsockopt SO_LINGER = {l_onoff=${w.onoff}, l_linger=${w.linger}} got {l_onoff=${l.onoff}, l_linger=${l.linger}}`,
            "syscall",
          );
        return OK0;
      }
      case "SO_LISTENQLIMIT":
        got = s.listener?.backlog ?? 0;
        break;
      case "SO_LISTENQLEN":
        got = s.listener?.ready.length ?? 0;
        break;
      case "SO_LISTENINCQLEN":
        got = s.listener?.pending.size ?? 0;
        break;
      case "TCP_NODELAY":
        got = s.opts.get(name) ?? ((stackCfg?.noDelay ?? st.noDelay) === true ? 1 : 0);
        break;
      case "TCP_MAXSEG":
        // Connected: the send MSS. Before: what was set, else the default MSS (RFC 9293 3.7.1).
        got = tcp !== undefined && s.conn?.connected === true ? tcp.mss : (s.opts.get(name) ?? 536);
        break;
      case "TCP_KEEPIDLE":
        got = secs(stackCfg?.keepAliveIdle ?? st.keepAliveIdle);
        break;
      case "TCP_KEEPINTVL":
        got = secs(stackCfg?.keepAliveInterval ?? st.keepAliveInterval);
        break;
      case "TCP_KEEPCNT":
        got = stackCfg?.keepAliveProbes ?? st.keepAliveProbes ?? 0;
        break;
      case "TCP_KEEPINIT":
        got = secs(stackCfg?.connectTimeout ?? st.connectTimeout);
        break;
      case "TCP_SYNCNT":
        got = stackCfg?.synRetries ?? st.synRetries ?? 6;
        break;
      case "TCP_USER_TIMEOUT":
        got = Math.floor((stackCfg?.userTimeout ?? st.userTimeout ?? 0) / 1000);
        break;
      case "TCP_INFO": {
        if (want?.kind === "struct") {
          const info: Record<string, number> = {
            ...(tcp === undefined ? {} : tcpInfo(tcp)),
            tcpi_state: this.#tcpiState(
              s.conn === undefined ? (s.listener !== undefined ? "LISTEN" : "CLOSED") : this.#stateOf(s.conn),
            ),
          };
          for (const it of want.items) {
            if (it.kind !== "assign" || it.value.kind === "ellipsis") continue;
            const w = this.#intOf(it.value);
            const g = info[it.name];
            if (g === undefined)
              this.#unsupported(`TCP_INFO ${it.name}`, "a tcp_info field our facade does not fill");
            if (w !== g)
              this.#fail(`expected getsockopt TCP_INFO ${it.name} = ${String(w)} got ${g}`, "syscall");
          }
        }
        return OK0;
      }
      case "IP_MTU":
      case "IPV6_MTU":
        if (s.conn === undefined) return { value: -1, errno: "ENOTCONN" };
        got = this.#ensureStack().pathMtuOf(s.conn);
        break;
      default:
        got = s.opts.get(name) ?? 0;
    }
    if (want === undefined || want.kind === "ellipsis") return OK0;
    if (want.kind === "word" && typeof got === "string") {
      if (!sameErrno(want.name, got))
        this.#fail(`expected getsockopt ${name} = ${want.name} got ${got}`, "syscall");
      return OK0;
    }
    const w =
      want.kind === "word" && typeof got === "number" && /^E[A-Z]+$/.test(want.name)
        ? undefined
        : this.#intOf(want);
    if (w !== got)
      this.#fail(`expected getsockopt ${name} = ${printExpr(want)} got ${String(got)}`, "syscall");
    return OK0;
  }

  #accept(s: Sock, ev: PdSyscallEvent): SyscallResult {
    const l = s.listener;
    if (l === undefined) return { value: -1, errno: "EINVAL" };
    const stack = this.#ensureStack();
    const take = (): SyscallResult | undefined => {
      const c = stack.accept(l);
      return c === undefined ? undefined : this.#accepted(s, c, ev);
    };
    if (s.nonblock) return take() ?? { value: -1, errno: "EWOULDBLOCK" };
    return this.#block(ev, take, MAX_WAIT_USECS);
  }

  /** A new socket for a connection `accept` took from listening socket `s`. */
  #accepted(s: Sock, c: HostConn, ev: PdSyscallEvent): SyscallResult {
    const fd = this.#newFd(ev);
    // The accepted socket inherits the listener's options.
    const ns: Sock = { ...newSock(fd), bound: true, conn: c, linger: s.linger, opts: new Map(s.opts) };
    this.#socks.set(fd, ns);
    this.#applyLive(c, s.pending, "listener options");
    this.#lastFd = fd;
    return { value: fd, errno: undefined };
  }

  /**
   * `sendto` on an unconnected socket with TCP_FASTOPEN (FreeBSD's client fast open): connects,
   * and the data goes with the SYN when the stack holds the server's cookie (RFC 7413), after
   * the handshake otherwise. Returns at once with what was queued.
   */
  #fastOpenConnect(s: Sock, n: number): SyscallResult {
    this.#match.newConnection();
    const c = this.#open(s, true);
    const taken = n > 0 ? this.#ensureStack().send(Instant.fromMicros(this.#now), c, new Uint8Array(n)) : 0;
    this.#drain();
    return { value: taken, errno: undefined };
  }

  /**
   * Opens `s`'s connection toward the script's peer (not yet transmitting: the caller drains),
   * with the socket's options applied.
   */
  #open(s: Sock, fastOpen: boolean): HostConn {
    const c = this.#ensureStack().connect(
      Instant.fromMicros(this.#now),
      this.#remote,
      PACKETDRILL_DEFAULTS.connectPort,
      {
        localPort: s.bound ? PACKETDRILL_DEFAULTS.bindPort : undefined,
        fastOpen,
      },
    );
    s.conn = c;
    this.#applyLive(c, s.pending, "socket options");
    this.#match.ports = { local: c.localPort, remote: c.remotePort };
    return c;
  }

  #connect(s: Sock, ev: PdSyscallEvent): SyscallResult {
    const c = this.#open(s, false);
    this.#drain();
    if (s.nonblock) return { value: -1, errno: "EINPROGRESS" };
    // A blocking connect returns when the handshake completes or fails.
    const done = (): SyscallResult | undefined => {
      if (!(c.connected || c.tcp === undefined || c.tcp.state === "CLOSED")) return undefined;
      return c.connected && !this.#isClosed(c) ? OK0 : this.#connError(s, "ECONNREFUSED");
    };
    return this.#block(ev, done, MAX_WAIT_USECS);
  }

  // -------------------------------------------------------------------------------------------
  // Shell commands and code

  /**
   * A backquoted shell command. Multi-line commands run line by line. Known forms: `sysctl
   * [-w|-q] NAME=VALUE...`, `echo VALUE > /proc/sys/net/...`, Linux's `defaults.sh` and
   * `set_sysctls.py /proc/sys/...=V` helpers and their restore script, `sockstat ... | grep`,
   * `tcpdrop -s STATE`, and the file commands the sendfile scripts use (`rm -f F`, `dd ...
   * of=F`). Flushing caches (`hostcache.purgenow`, `ip tcp_metrics flush`) is a no-op: every
   * script has a fresh stack. Anything else is a runner gap.
   */
  #command(cmd: string): void {
    for (const text of commandLines(cmd)) this.#commandLine(text);
  }

  #commandLine(text: string): void {
    const sysctls = sysctlAssignments(text);
    if (sysctls.length > 0) {
      for (const a of sysctls) this.#sysctl(a.name, a.value);
      return;
    }
    const echo = /^echo\s+"?([^">]*?)"?\s*>\s*\/proc\/sys\/(\S+)$/.exec(text);
    if (echo?.[1] !== undefined && echo[2] !== undefined) {
      this.#sysctl(echo[2].split("/").join("."), echo[1]);
      return;
    }
    const set = setSysctlsArgs(text);
    if (typeof set === "string") this.#fail(`command \`${text}\`: bad argument ${set}`, "runner");
    if (set !== undefined) {
      for (const a of set) this.#sysctl(a.name, a.value);
      return;
    }
    if (/^(?:\S*\/)?defaults\.sh$/.test(text)) {
      // The google scripts' production settings (profile.ts LINUX_DEFAULTS_SH).
      for (const [name, value] of LINUX_DEFAULTS_SH) this.#sysctl(name, value);
      return;
    }
    if (/^\/tmp\/sysctl_restore_\$\{PPID\}\.sh$/.test(text)) return; // the script ends here
    if (/^ip\s+tcp_metrics\s+flush\b/.test(text)) return; // a fresh stack has no metrics
    const rm = /^(?:\/bin\/)?rm\s+-f\s+(\S+)$/.exec(text);
    if (rm?.[1] !== undefined) {
      this.#fs.delete(rm[1]);
      return;
    }
    const dd = /^(?:\/bin\/)?dd\s+(.*)$/.exec(text);
    if (dd?.[1] !== undefined) {
      const kv = new Map(dd[1].split(/\s+/).map((w) => w.split("=") as [string, string]));
      const bs = Number(kv.get("bs") ?? 512);
      const count = Number(kv.get("count") ?? 0);
      const of = kv.get("of");
      if (of === undefined || kv.get("if") !== "/dev/zero" || !Number.isSafeInteger(bs * count))
        this.#fail(`command \`${text}\` is not supported (dd if=/dev/zero of=F bs=N count=N only)`, "runner");
      this.#fs.set(of, bs * count);
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

  /** One sysctl assignment, through the profile's table. */
  #sysctl(name: string, value: string): void {
    const table = this.#profile.sysctls;
    if (this.#stack !== undefined) {
      // After the stack exists its TcpConfig is fixed: record the change, do not apply it.
      const before = JSON.stringify(this.#settings.tcp);
      const probe = {
        ...this.#settings,
        tcp: { ...this.#settings.tcp },
        unmapped: [...this.#settings.unmapped],
      };
      const e = applySysctl(probe, name, value, table);
      if (e !== undefined) this.#fail(e, "runner");
      // The host-level knobs can change on a live stack.
      this.#settings.icmpMayRst = probe.icmpMayRst;
      this.#stack.icmpMayAbort = probe.icmpMayRst;
      this.#settings.fastOpenClient = probe.fastOpenClient;
      this.#stack.fastOpen.enabled = probe.fastOpenClient;
      if (JSON.stringify(probe.tcp) !== before) this.#settings.unmapped.push(`late ${name}=${value}`);
      // Sockets created later read their defaults from the settings (getsockopt TCP_KEEP*).
      this.#settings.tcp = probe.tcp;
      return;
    }
    const e = applySysctl(this.#settings, name, value, table);
    if (e !== undefined) this.#fail(e, "runner");
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

  /** `tcpi_state` as the profile's kernel numbers it. */
  #tcpiState(state: TcpState): number {
    return (this.#profile.name === "linux" ? LINUX_TCPI_STATE : TCPI_STATE)[state];
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
    // A Linux script's Python knows Linux's names (TCP_CA_Recovery, TCP_ESTABLISHED...).
    const names = this.#profile.name === "linux" ? LINUX_PY_SYMBOLS : {};
    const env: Record<string, number> = { ...names, ...info, tcpi_state: this.#tcpiState(state) };
    const r = runPyAsserts(code, env, this.#pyGlobals);
    if (r.ok) return;
    const field = r.error.unknownName;
    if (field?.startsWith("tcpi_") === true)
      this.#unsupported(`tcp_info ${field}`, "a tcp_info field our socket facade does not fill");
    this.#fail(`expected %{ ${code} }% got ${r.error.text}`, "assert");
  }
}

interface SyscallResult {
  readonly value: number;
  readonly errno: string | undefined;
}

const OK0: SyscallResult = { value: 0, errno: undefined };

/** What a blocking call returns while it blocks (see `#block`); never compared. */
const BLOCKED: SyscallResult = { value: Number.NaN, errno: "blocked" };

/** The `tcpi_*` values of an engine's negotiated options (FreeBSD's struct tcp_info). */
function tcpInfo(tcp: TcpConnection): Record<string, number> {
  return {
    tcpi_options:
      (tcp.timestampsEnabled ? 1 : 0) |
      (tcp.sackEnabled ? 2 : 0) |
      (tcp.windowScales.rcv > 0 || tcp.windowScales.snd > 0 ? 4 : 0) |
      (tcp.ecnNegotiated ? 8 : 0),
    tcpi_snd_wscale: tcp.windowScales.snd,
    tcpi_rcv_wscale: tcp.windowScales.rcv,
    tcpi_snd_mss: tcp.mss,
    tcpi_snd_cwnd: Math.floor(tcp.cwnd / Math.max(1, tcp.mss)),
    tcpi_snd_ssthresh: Math.floor(Math.min(tcp.ssthresh, 0x7fffffff * tcp.mss) / Math.max(1, tcp.mss)),
    tcpi_rto: tcp.rto,
    tcpi_rtt: tcp.srtt ?? 0,
    tcpi_unacked: Math.max(0, Seq.delta(tcp.sndNxt, tcp.sndUna)),
    tcpi_total_retrans: tcp.stats.retransmits,
    tcpi_segs_out: tcp.stats.segmentsOut,
    tcpi_segs_in: tcp.stats.segmentsIn,
    tcpi_snd_wnd: tcp.sndWnd,
    tcpi_ca_state: CA_STATE[tcp.recoveryState],
    ...lossCounts(tcp),
  };
}

/** Linux's segment counts of the sender's loss accounting (absent where the engine keeps none). */
function lossCounts(tcp: TcpConnection): Record<string, number> {
  const a = tcp.lossAccounting;
  const segs = (bytes: number): number => Math.ceil(bytes / Math.max(1, tcp.mss));
  const out: Record<string, number> = { tcpi_sacked: segs(a.sacked), tcpi_reordering: a.reordering };
  if (a.lost !== undefined) out["tcpi_lost"] = segs(a.lost);
  if (a.retrans !== undefined) out["tcpi_retrans"] = segs(a.retrans);
  return out;
}

/** Linux's `tcpi_ca_state` values (include/net/tcp.h, enum tcp_ca_state) by the engine's `recoveryState`. */
const CA_STATE: Readonly<Record<TcpConnection["recoveryState"], number>> = {
  open: 0,
  disorder: 1,
  cwr: 2,
  recovery: 3,
  loss: 4,
};

/** The errno a `closed` event leaves on the socket: BSD reports every reset as ECONNRESET. */
function closeError(ev: ConnEvent & { kind: "closed" }): string | undefined {
  return ev.error ?? (ev.reason === "reset" ? "ECONNRESET" : undefined);
}

/**
 * packetdrill compares the errno only when the script names one (`= -1` alone takes any).
 * EAGAIN and EWOULDBLOCK are the same number on FreeBSD.
 */
function sameErrno(want: string | undefined, got: string | undefined): boolean {
  if (want === undefined) return true;
  const norm = (e: string | undefined): string | undefined => (e === "EAGAIN" ? "EWOULDBLOCK" : e);
  return norm(want) === norm(got);
}

function secs(usecs: number): string {
  return (usecs / 1_000_000).toFixed(6);
}
