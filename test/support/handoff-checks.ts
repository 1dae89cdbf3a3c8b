/**
 * The checks the live hand-off session tests (test/kernel-move.test.ts, kernel-target,
 * kernel-roundtrip) end with, and an RST count of the frames crossing our side of the link.
 */
import assert from "node:assert/strict";
import type { HandoffResult, HandoffSession } from "../../src/live/handoff-session.js";
import { tcpCounters } from "../../src/live/peer-ns.js";
import { rstCount } from "./kernel-topology.js";

/** Counts RSTs as frames pass (a `capture` for `HandoffSession.open`; nothing is kept). */
export function rstWatch(): { readonly capture: (f: Uint8Array) => void; count(): number } {
  let n = 0;
  return {
    capture: (f) => {
      if (f.length >= 34 && f[23] === 6) n += rstCount([f]);
    },
    count: () => n,
  };
}

/**
 * Every move mid-transfer both ways; both streams of `total` bytes whole and in order (sha256);
 * no segment of the connection dropped by our stack (`drops`: the frames reaching our device
 * after a move into the kernel go on to it); no RST from anyone (our stack, the frames on our
 * side, either kernel), the peer's connection never reset, and exactly `silentCloses` resets
 * counted by the host namespace's kernel (one per silent close of an exported socket, which
 * sends nothing).
 */
export function assertHandoffClean(
  s: HandoffSession,
  r: HandoffResult,
  o: { readonly total: number; readonly drops: number; readonly rsts: number; readonly silentCloses: number },
  facts: string,
): void {
  for (const m of r.moves)
    assert.ok(
      m.progress.atPeer < o.total && m.progress.atHost < o.total,
      `move ${m.n} mid-transfer both ways (progress ${JSON.stringify(m.progress)} of ${o.total}): ${facts}`,
    );
  assert.equal(o.drops, 0, facts);
  assert.equal(r.peerToHost.bytes, o.total, facts);
  assert.equal(r.hostToPeer.bytes, o.total, facts);
  assert.equal(r.peerToHost.received, r.peerToHost.sent, `peer to us: ${facts}`);
  assert.equal(r.hostToPeer.received, r.hostToPeer.sent, `us to peer: ${facts}`);
  const hostTcp = tcpCounters(s.topo.hostNs);
  const peerTcp = tcpCounters(s.topo.peerNs);
  const ours = s.host.stack.stats.rstsSent;
  const counters = JSON.stringify({ hostTcp, peerTcp, ours, rsts: o.rsts, label: s.host.label });
  assert.equal(ours, 0, `no RST from our stack: ${counters}`);
  assert.equal(o.rsts, 0, `no RST crossed our side of the link: ${counters}`);
  assert.equal(hostTcp["OutRsts"], 0, counters);
  assert.equal(peerTcp["OutRsts"], 0, counters);
  assert.equal(peerTcp["EstabResets"], 0, `the peer's connection was never reset: ${counters}`);
  assert.equal(hostTcp["EstabResets"], o.silentCloses, `the silent closes only: ${counters}`);
}
