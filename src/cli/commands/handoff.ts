/**
 * `chimney handoff`: one TCP connection moves live between the Linux kernel, our host stack and
 * our offload target while a peer streams data both ways (src/live/handoff-session.ts). Each
 * round trip is kernel -> our stack -> offload target -> our stack -> kernel; the moves are
 * spread evenly over the transfer. Prints a timeline (where the connection went, the bytes each
 * move carried, how long it took, the stall each side saw after it, what state it lost), then
 * sha256 of both streams and the RSTs each party sent. Exit 0 when both streams arrived intact
 * and nobody sent an RST, 1 otherwise, 2 for bad arguments or a machine that cannot run it
 * (not Linux, not root, no repair addon).
 *
 * Its two namespaces (`chimney-handoff-<pid>-<n>` and `chimney-handoffp-<pid>-<n>`) go when it
 * ends, also on Ctrl-C (cleanup.ts); those left by a run killed outright go at the next run.
 */
import { existsSync } from "node:fs";
import { repairAddonPath } from "../../device/repair.js";
import { HandoffSession, type MoveRecord, type Place } from "../../live/handoff-session.js";
import { removeStaleNamespaces } from "../../live/netns.js";
import { tcpCounters } from "../../live/peer-ns.js";
import { CliUsageError, EXIT } from "../errors.js";

const TAG = "handoff";
/** The most round trips `--moves` takes. */
export const MAX_HANDOFF_MOVES = 50;
/** The smallest and largest `--bytes` (each direction). */
export const MIN_HANDOFF_BYTES = 1 << 20;
export const MAX_HANDOFF_BYTES = 4 * 2 ** 30;

export interface HandoffOptions {
  /** Bytes each way. */
  readonly bytes: number;
  /** Round trips (kernel -> ours -> target -> ours -> kernel). */
  readonly moves: number;
  readonly seed: number;
  /** Print the result as JSON instead of the timeline. */
  readonly json?: boolean | undefined;
}

/** Throws `CliUsageError` for bad arguments, or a machine that cannot run the command. */
export function checkHandoff(o: HandoffOptions): void {
  if (!(Number.isSafeInteger(o.moves) && o.moves >= 1 && o.moves <= MAX_HANDOFF_MOVES))
    throw new CliUsageError(`--moves ${o.moves}: must be an integer from 1 to ${MAX_HANDOFF_MOVES}`);
  if (!(Number.isSafeInteger(o.bytes) && o.bytes >= MIN_HANDOFF_BYTES && o.bytes <= MAX_HANDOFF_BYTES))
    throw new CliUsageError(`--bytes ${o.bytes}: must be from ${MIN_HANDOFF_BYTES} to ${MAX_HANDOFF_BYTES}`);
  if (process.platform !== "linux")
    throw new CliUsageError("handoff needs Linux (TCP_REPAIR, network namespaces)");
  if (process.getuid?.() !== 0)
    throw new CliUsageError("handoff needs root (it creates network namespaces and uses TCP_REPAIR)");
  if (!existsSync(repairAddonPath()))
    throw new CliUsageError("handoff needs the repair addon (native/build.sh): it is not built");
}

const mb = (n: number): string =>
  n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
const msText = (x: number | undefined): string => (x === undefined ? "-" : `${x.toFixed(1)} ms`);

/** One timeline line of a move. */
export function moveLine(m: MoveRecord): string {
  const c = m.carried;
  return [
    `${m.atMs.toFixed(0).padStart(7)} ms`,
    `${m.from} -> ${m.to}`.padEnd(17),
    `unread ${mb(c.unread)}, in flight ${mb(c.inFlight)}, unsent ${mb(c.unsent)}`.padEnd(50),
    `took ${msText(m.timings.totalMs)}`.padEnd(14),
    `stall: peer ${msText(m.stallAtPeerMs)}, us ${msText(m.stallAtHostMs)}`.padEnd(34),
    `lost: ${m.lost.join(", ")}`,
  ].join("  ");
}

/** Runs the command; returns the exit code. */
export async function handoff(
  o: HandoffOptions,
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<number> {
  checkHandoff(o);
  for (const tag of [TAG, `${TAG}p`])
    for (const ns of removeStaleNamespaces(tag)) out(`removed namespace ${ns} left by a stopped handoff`);
  const s = await HandoffSession.open({
    tag: TAG,
    seed: o.seed,
    chimney: true,
    peerBytes: o.bytes,
    hostBytes: o.bytes,
  });
  try {
    if (o.json !== true)
      out(
        `chimney handoff: ${o.moves} round trip${o.moves === 1 ? "" : "s"} kernel -> our stack -> offload target -> kernel, ${mb(o.bytes)} each way, seed ${o.seed} (namespaces ${s.topo.hostNs}, ${s.topo.peerNs})`,
      );
    const plan: Place[] = [];
    for (let i = 0; i < o.moves; i++) plan.push("host", "target", "kernel");
    for (const [i, to] of plan.entries()) {
      const f = (i + 1) / (plan.length + 1);
      await s.until(`${(f * 100).toFixed(0)}% of both streams`, () => {
        const r = s.received;
        return r.atPeer >= f * o.bytes && r.atHost >= f * o.bytes;
      });
      await s.moveTo(to);
    }
    const r = await s.finish();
    const drops = s.releaseHandOffs();
    const host = tcpCounters(s.topo.hostNs);
    const peer = tcpCounters(s.topo.peerNs);
    const rsts = {
      ours: s.host.stack.stats.rstsSent,
      hostKernel: host["OutRsts"] ?? Number.NaN,
      peer: peer["OutRsts"] ?? Number.NaN,
      peerResets: peer["EstabResets"] ?? Number.NaN,
    };
    const noRst = rsts.ours === 0 && rsts.hostKernel === 0 && rsts.peer === 0 && rsts.peerResets === 0;
    const ok = r.ok && noRst;
    if (o.json === true) out(JSON.stringify({ ...r, rsts, droppedAfterHandOff: drops, ok, seed: o.seed }));
    else {
      for (const m of r.moves) out(moveLine(m));
      for (const [name, d] of [
        ["peer -> us", r.peerToHost],
        ["us -> peer", r.hostToPeer],
      ] as const)
        out(
          `${name}: ${d.bytes} bytes, sha256 ${d.received} ${d.received === d.sent ? "matches what was sent" : `DIFFERS from what was sent (${d.sent})`}`,
        );
      out(
        `RSTs: ${noRst ? "none" : "SOME"} (our stack ${rsts.ours}, host kernel ${rsts.hostKernel}, peer ${rsts.peer}, peer connection resets ${rsts.peerResets}); our stack dropped ${drops} segments of the 4-tuple after handing it to the kernel (the peer sent them again)`,
      );
      out(ok ? "handoff: OK" : `handoff: FAILED (seed ${o.seed})`);
    }
    return ok ? EXIT.OK : EXIT.FAILED;
  } finally {
    s.close();
  }
}
