/**
 * The packet matcher of the packetdrill runner, shared by both devices under test (our stack on
 * virtual time, `dut.ts`, and the Linux kernel on real time, `kernel.ts`):
 *
 * - `inboundTcp` builds a segment the script injects, its numbers made absolute: the remote
 *   side's sequence numbers as written (its ISN is the script's), acknowledgment numbers and
 *   SACK blocks offset by the local ISN, TS ecr by the local TS val minus the script's;
 * - `compareTcp` compares a segment the device sent with the one the script expects, learning
 *   the local ISN and ports from the first SYN it sees and the TS offset from the first
 *   timestamp, as packetdrill does.
 *
 * Lenient (our stack): policy differences are forgiven by the named rules of `policy.ts`, and
 * each one used is recorded. Strict (the kernel, whose behaviour the Linux scripts describe):
 * the window and the window scale shift are compared exactly too.
 */
import { Seq, type SeqNum } from "../../wire/seq.js";
import { type SackBlock, TcpFlag, type TcpRepr } from "../../wire/tcp-repr.js";
import type { DecodedPacket } from "../../wire/packet.js";
import type { PdEcn, PdEvent, PdPacket, PdTcpOption, PdTcpPacket } from "../packetdrill/index.js";
import type { UnsupportedFeature } from "./features.js";
import type { LenientRuleName } from "./policy.js";

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

/** Options of a `PacketMatcher`. */
export interface MatcherOptions {
  /** Compare the window and the window scale shift exactly (no policy leniency). */
  readonly strict: boolean;
  /** Where the rules used are recorded. */
  readonly rules: Set<LenientRuleName>;
  /** Stops the script as unsupported (throws). */
  readonly unsupported: (feature: UnsupportedFeature) => never;
  /**
   * The symbols a packetdrill command line defines (`-D TFO_COOKIE=...`): a fast open cookie
   * written as a symbol takes its value here; without one the script is unsupported.
   */
  readonly defines?: ReadonlyMap<string, string> | undefined;
  /**
   * The largest receive buffer our sockets have now (bytes): a window that differs from the
   * script's passes as policy (`window-size-policy`) only while it stays within it, at the
   * scale our SYN offered. Unbounded when not given.
   */
  readonly receiveBuffer?: (() => number) | undefined;
}

/** The magic that starts an experimental fast open option (kind 254, RFC 6994 ExID 0xF989). */
const TFO_EXP_MAGIC = [0xf9, 0x89];

/** The numbers one script's packets are relative to, and the comparison of packets. */
export class PacketMatcher {
  /**
   * Our ISN as learned from the connection's first SYN sent (the number it carried; see
   * `newConnection`); undefined until then (numbers are then absolute). As in packetdrill, our
   * sequence numbers in the script's other segments (and the ACK and SACK edges of the peer's)
   * count from it; those of a SYN count from it less the script's own number for that SYN
   * (`> S. 1234:1234(0)`: `#scriptLocalIsn`).
   */
  localIsn: SeqNum | undefined;
  #scriptLocalIsn = 0;
  /** The next SYN we send starts a connection: its number is learned as our ISN again. */
  #localIsnDue = true;
  /**
   * The peer's ISN as the script writes it: the sequence number of the connection's first SYN
   * (packetdrill learns it when a SYN opens a connection, see `newConnection`; a later SYN, into
   * TIME-WAIT say, is mapped as it is and leaves it). As in packetdrill, the sequence numbers of
   * the peer's other segments, and the ACK and SACK edges we send after our SYN, count from it
   * (`< S 999000:999040(40)` then `< . 1:1(0)`).
   */
  remoteIsn = 0;
  #remoteIsnLearned = false;

  /** What the script's numbers for our side are offset by, in a SYN or in another segment. */
  #localOffset(syn: boolean): SeqNum {
    const live = this.localIsn ?? Seq.of(0);
    return syn ? Seq.sub(live, this.#scriptLocalIsn) : live;
  }

  /**
   * A connection starts (the script called listen() or connect()): as packetdrill does for a
   * new socket under test, the next SYN each way sets the ISNs the numbers count from.
   */
  newConnection(): void {
    this.#remoteIsnLearned = false;
    this.#localIsnDue = true;
  }
  /** The local TS val minus the script's, learned from the first timestamped packet sent. */
  tsDelta: number | undefined;
  /** The connection inbound packets go to by default. */
  ports: { local: number; remote: number } | undefined;
  readonly #strict: boolean;
  readonly #rules: Set<LenientRuleName>;
  readonly #unsupported: (feature: UnsupportedFeature) => never;
  readonly #defines: ReadonlyMap<string, string>;
  readonly #receiveBuffer: (() => number) | undefined;
  /** The shift our latest SYN offered, and whether the peer's latest SYN offered one (RFC 7323 2.2). */
  #ourShift: number | undefined;
  #peerScales = false;

  constructor(opts: MatcherOptions) {
    this.#strict = opts.strict;
    this.#rules = opts.rules;
    this.#unsupported = opts.unsupported;
    this.#defines = opts.defines ?? new Map();
    this.#receiveBuffer = opts.receiveBuffer;
  }

  /**
   * The largest window field a segment of ours may carry: the receive buffer at the shift in
   * force (none on a SYN, RFC 7323 2.2; none unless both SYNs offered one), rounded up.
   */
  #windowLimit(g: TcpRepr): number | undefined {
    const buf = this.#receiveBuffer?.();
    if (buf === undefined) return undefined;
    if ((g.flags & TcpFlag.SYN) !== 0) return Math.min(0xffff, buf);
    const shift = this.#peerScales ? (this.#ourShift ?? 0) : 0;
    return Math.ceil(buf / 2 ** shift);
  }

  /** A fast open option's cookie bytes: its hex, or the value of the symbol it names. */
  #cookie(o: { readonly cookie: string; readonly symbolic: boolean }): Uint8Array {
    const hex = o.symbolic ? this.#defines.get(o.cookie) : o.cookie;
    if (hex === undefined) this.#unsupported("fast-open");
    return hexBytes(hex, 0);
  }

  /** The option as it lies on the wire after kind and length (the experimental one with its magic). */
  #fastOpenData(o: {
    readonly cookie: string;
    readonly symbolic: boolean;
    readonly experimental: boolean;
  }): Uint8Array {
    const cookie = this.#cookie(o);
    return o.experimental ? Uint8Array.from([...TFO_EXP_MAGIC, ...cookie]) : cookie;
  }

  defaultPorts(): { local: number; remote: number } {
    return this.ports ?? { local: PACKETDRILL_DEFAULTS.bindPort, remote: PACKETDRILL_DEFAULTS.remotePort };
  }

  inboundTcp(p: PdTcpPacket): TcpRepr {
    if (p.udpEncaps !== undefined) this.#unsupported("tcp-over-udp");
    const ports = p.ports ?? { src: this.defaultPorts().remote, dst: this.defaultPorts().local };
    const start = p.seq.kind === "range" ? p.seq.start : 0;
    const syn = (p.flags.bits & TcpFlag.SYN) !== 0;
    const isn = this.#localOffset(syn);
    if (syn) this.#peerScales = p.options !== "any" && p.options.some((o) => o.kind === "wscale");
    if (syn && p.seq.kind === "range" && !this.#remoteIsnLearned) {
      this.remoteIsn = start;
      this.#remoteIsnLearned = true;
    }
    const absolute = syn || (p.seq.kind === "range" && p.seq.absolute);
    const seq = absolute ? Seq.of(start) : Seq.add(Seq.of(this.remoteIsn), start);
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
            if (!o.ecrAbsolute && (p.flags.bits & TcpFlag.ACK) !== 0 && this.tsDelta !== undefined) {
              ecr = (ecr + this.tsDelta) >>> 0;
            }
            ts = { tsVal: (o.val ?? 0) >>> 0, tsEcr: ecr };
            break;
          }
          case "md5":
            unknown.push({ kind: 19, data: hexBytes(o.digest, 16) });
            break;
          case "fastopen":
            unknown.push({ kind: o.experimental ? 254 : 34, data: this.#fastOpenData(o) });
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

  /** Differences between the expected packet and the one sent (empty when they match). */
  /**
   * What differs between the script's packet and the one we got. `packet`: the whole packet, so
   * its IP ECN codepoint is checked against an `[ect0]`-style annotation (none written: not
   * checked, as packetdrill does).
   */
  compareTcp(p: PdTcpPacket, g: TcpRepr, packet?: DecodedPacket): string[] {
    const diffs: string[] = [];
    const wantEcn = p.ip?.ecn;
    const ecn = packet === undefined ? undefined : ecnOf(packet);
    if (ecn !== undefined && wantEcn !== undefined && !ECN_CODEPOINTS[wantEcn].includes(ecn))
      diffs.push(`ecn want ${wantEcn} got ${ECN_NAMES[ecn] ?? String(ecn)}`);
    const flags = g.flags & 0xff;
    let seqAdjust = 0;
    if (
      flags !== p.flags.bits &&
      (flags | TcpFlag.FIN) === p.flags.bits &&
      g.payload.length === 0 &&
      p.seq.len === 0 &&
      this.localIsn !== undefined &&
      p.seq.kind === "range"
    ) {
      // A BSD stack acknowledges in CLOSING / LAST-ACK by resending its unacknowledged FIN.
      if (Seq.add(this.#localOffset(false), p.seq.start + 1) === g.seq) {
        this.#rules.add("bsd-fin-on-ack");
        seqAdjust = 1;
      }
    }
    if (flags !== p.flags.bits && seqAdjust === 0) diffs.push(`flags want ${p.flags.text || "-"}`);
    // Learn our ISN and port from the first SYN we send.
    if (this.#localIsnDue && (g.flags & TcpFlag.SYN) !== 0 && p.seq.kind === "range") {
      this.#localIsnDue = false;
      this.localIsn = g.seq;
      this.#scriptLocalIsn = p.seq.start;
      this.ports ??= { local: g.srcPort, remote: g.dstPort };
    }
    const isn = this.#localOffset((p.flags.bits & TcpFlag.SYN) !== 0);
    if (p.seq.kind === "range") {
      const want = Seq.add(p.seq.absolute ? Seq.of(p.seq.start) : Seq.add(isn, p.seq.start), seqAdjust);
      if (want !== g.seq) diffs.push(`seq want ${p.seq.start} got ${Seq.delta(g.seq, isn) >>> 0}`);
    }
    if (g.payload.length !== p.seq.len) diffs.push(`length want ${p.seq.len} got ${g.payload.length}`);
    // Our SYN's ACK is compared as it is; later ones count from the peer's ISN.
    const peer = (g.flags & TcpFlag.SYN) !== 0 ? 0 : this.remoteIsn;
    if ((p.flags.bits & TcpFlag.ACK) !== 0 && p.ack !== undefined && g.ack !== Seq.add(Seq.of(peer), p.ack)) {
      diffs.push(`ack want ${p.ack} got ${Seq.delta(g.ack, Seq.of(peer)) >>> 0}`);
    }
    if ((g.flags & TcpFlag.SYN) !== 0) this.#ourShift = g.windowScale;
    if (p.win !== undefined && p.win !== g.window) {
      const limit = this.#windowLimit(g);
      if (this.#strict) diffs.push(`win want ${p.win} got ${g.window}`);
      else if ((p.flags.bits & TcpFlag.RST) !== 0) this.#rules.add("rst-window-ignored");
      else if ((p.win === 0) !== (g.window === 0)) diffs.push(`win want ${p.win} got ${g.window}`);
      else if (limit !== undefined && g.window > limit)
        diffs.push(`win want ${p.win} got ${g.window}, beyond the receive buffer (at most ${limit})`);
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
        case "fastopen": {
          const want = this.#fastOpenData(o);
          const kind = o.experimental ? 254 : 34;
          const got = g.unknownOptions.find((u) => u.kind === kind);
          const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
          if (got === undefined) diffs.push(`FO want ${hex(want) || "request"} got none`);
          else if (hex(got.data) !== hex(want))
            diffs.push(`FO want ${hex(want) || "request"} got ${hex(got.data) || "request"}`);
          break;
        }
        case "md5":
          diffs.push(`option ${o.kind} not supported`);
      }
    }
    // A Fast Open option the script does not list is a difference too (a SYN that should be plain).
    if (!opts.some((o) => o.kind === "fastopen")) {
      const extra = g.unknownOptions.find((u) => u.kind === 34 || u.kind === 254);
      if (extra !== undefined)
        diffs.push(`FO want none got ${Buffer.from(extra.data).toString("hex") || "request"}`);
    }
    if (mss !== g.mss) diffs.push(`mss want ${mss ?? "none"} got ${g.mss ?? "none"}`);
    if ((ws === undefined) !== (g.windowScale === undefined)) {
      diffs.push(`wscale want ${ws ?? "none"} got ${g.windowScale ?? "none"}`);
    } else if (ws !== g.windowScale && this.#strict) {
      diffs.push(`wscale want ${ws} got ${g.windowScale}`);
    } else if (ws !== g.windowScale) {
      this.#rules.add("window-scale-shift-policy");
    }
    if (sackOk !== g.sackPermitted) diffs.push(`sackOK want ${sackOk ? "yes" : "no"}`);
    const gs = g.sack.map((b) => `${b.left}:${b.right}`).join(" ");
    const ws2 = sack
      .map((b) => `${(b.left + this.remoteIsn) >>> 0}:${(b.right + this.remoteIsn) >>> 0}`)
      .join(" ");
    if (gs !== ws2) diffs.push(`sack want ${ws2 || "none"} got ${gs || "none"}`);
    const gts = g.timestamps;
    if ((ts === undefined) !== (gts === undefined)) {
      diffs.push(
        `TS want ${ts === undefined ? "none" : "present"} got ${gts === undefined ? "none" : "present"}`,
      );
    } else if (ts !== undefined && gts !== undefined) {
      this.#rules.add("ts-val-unchecked");
      if (ts.val !== undefined && this.tsDelta === undefined) this.tsDelta = (gts.tsVal - ts.val) >>> 0;
      if (ts.ecr >>> 0 !== gts.tsEcr) diffs.push(`TS ecr want ${ts.ecr} got ${gts.tsEcr}`);
    }
    return diffs;
  }
}

/** RFC 3168 5 codepoints of packetdrill's ECN annotations (`ect01`: either ECT). */
const ECN_CODEPOINTS: Readonly<Record<PdEcn, readonly number[]>> = {
  noecn: [0],
  ect1: [1],
  ect0: [2],
  ce: [3],
  ect01: [1, 2],
};
const ECN_NAMES: readonly string[] = ["noecn", "ect1", "ect0", "ce"];

/** The ECN codepoint an inbound packet goes with: its annotation's; not-ECT without one. */
export function inboundEcn(p: PdPacket): number {
  const e = p.ip?.ecn;
  return e === undefined ? 0 : (ECN_CODEPOINTS[e][0] ?? 0);
}

/** The IP ECN codepoint of a decoded packet (0 without an IP header). */
function ecnOf(d: DecodedPacket): number {
  const n = d.network;
  return n?.kind === "ipv4" ? n.ipv4.ecn : n?.kind === "ipv6" ? n.ipv6.ecn : 0;
}

/**
 * TSO as the script saw it: when the script expects a longer segment than `first`, the
 * segments sent right after it that continue it (next sequence number, same ports and ACK, no
 * SYN / FIN / RST before the last) are taken as one, as packetdrill aggregates them
 * (run_packet.c, `aggregate_packets` in packet.c):
 * - the flags are the last segment's, except CWR, which is the first's: a PSH the kernel set on
 *   an early piece (a send that waited for memory pushes what it has) is not the burst's;
 * - every piece but the last is as long as the one before it (packetdrill's
 *   `verify_packet_fragments`); a run that breaks that rule stops there, and the length differs.
 * `peek` gives the next segment sent (undefined when there is none yet), `take` consumes it.
 * Records the `tso-coalescing` rule when it merged any.
 */
export function coalesceRun(
  first: TcpRepr,
  want: number,
  rules: Set<LenientRuleName>,
  peek: () => TcpRepr | undefined,
  take: () => void,
): TcpRepr {
  let len = first.payload.length;
  if (len === 0 || len >= want) return first;
  let last = first;
  while (len < want && (last.flags & (TcpFlag.FIN | TcpFlag.SYN | TcpFlag.RST)) === 0) {
    const n = peek();
    if (n === undefined) break;
    const size = n.payload.length;
    const contiguous =
      n.srcPort === first.srcPort &&
      n.dstPort === first.dstPort &&
      n.ack === first.ack &&
      n.seq === Seq.add(first.seq, len) &&
      size > 0 &&
      len + size <= want &&
      (len + size === want || size === last.payload.length);
    if (!contiguous) break;
    take();
    len += size;
    last = n;
  }
  if (last === first) return first;
  rules.add("tso-coalescing");
  const flags = (last.flags & ~TcpFlag.CWR) | (first.flags & TcpFlag.CWR);
  return { ...first, flags, payload: new Uint8Array(len) };
}

function hexBytes(hex: string, minLen: number): Uint8Array {
  const clean = hex.replace(/[^0-9a-fA-F]/g, "");
  const out = new Uint8Array(Math.max(minLen, clean.length >> 1));
  for (let i = 0; i + 1 < clean.length; i += 2) out[i >> 1] = Number.parseInt(clean.slice(i, i + 2), 16);
  return out;
}

/**
 * The window in which a script event is expected, in script microseconds, and the base the next
 * relative time counts from (`relBase`: set while a run of relative times follows a ranged event;
 * an absolute time ends it). `now` is the time of the previous event; `any` (`*`) allows
 * `anyUsecs` from it. Shared by our runner (virtual time) and the kernel runner (real time).
 */
export function eventWindow(
  time: PdEvent["time"],
  relBase: number | undefined,
  now: number,
  anyUsecs: number,
): { readonly start: number; readonly end: number; readonly relBase: number | undefined } {
  const base = relBase ?? now;
  const next = relBase === undefined ? undefined : base + ("usecs" in time ? time.usecs : 0);
  switch (time.kind) {
    case "absolute":
      return { start: time.usecs, end: time.usecs, relBase: undefined };
    case "relative":
      return { start: base + time.usecs, end: base + time.usecs, relBase: next };
    case "absolute-range":
      return { start: time.usecs, end: time.endUsecs, relBase: undefined };
    case "relative-range":
      return { start: base + time.usecs, end: base + time.endUsecs, relBase: next };
    case "any":
      return { start: now, end: now + anyUsecs, relBase };
  }
}
