// The acceptance round trip: within one transfer of 256 MiB each way, the connection
// moves 20 times between the Linux kernel and our host stack (kernel -> ours -> kernel ...,
// src/live/handoff-session.ts), every move mid-transfer both ways. Every byte arrives once and
// in order (sha256 both ways) and nobody sends an RST. Needs root and the repair addon.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HandoffSession } from "../src/live/handoff-session.js";
import { tcpCounters } from "./support/helper-events.js";
import { kernelTestSkip, rstCount } from "./support/kernel-topology.js";

const skip = kernelTestSkip();
const TOTAL = 256 << 20;
const MOVES = 20;

void describe("20 moves within one 256 MiB transfer", { skip }, () => {
  void test("kernel <-> our stack 20 times: sha256 both ways, no RST", async (t) => {
    const seed = Number(process.env["CHIMNEY_SEED"] ?? 1);
    let rsts = 0; // counted as frames pass: a 256 MiB capture would not fit
    const s = await HandoffSession.open({
      tag: "k20",
      seed,
      peerBytes: TOTAL,
      hostBytes: TOTAL,
      capture: (f) => {
        if (f.length >= 34 && f[23] === 6) rsts += rstCount([f]);
      },
    });
    try {
      for (let i = 0; i < MOVES; i++) {
        const f = (i + 1) / (MOVES + 1);
        await s.until(
          `${i + 1}/${MOVES + 1} of both streams`,
          () => {
            const r = s.received;
            return r.atPeer >= f * TOTAL && r.atHost >= f * TOTAL;
          },
          120_000,
        );
        await s.moveTo(i % 2 === 0 ? "host" : "kernel");
      }
      const r = await s.finish(300_000);
      const drops = s.releaseHandOffs();
      const summary = r.moves.map((m) => ({
        n: m.n,
        to: m.to,
        progress: m.progress,
        carried: m.carried,
        ms: Math.round(m.timings.totalMs),
      }));
      const facts = JSON.stringify({
        label: s.host.label,
        seed,
        drops,
        forwarded: s.forwarded,
        moves: summary,
      });
      t.diagnostic(facts);
      assert.equal(r.moves.length, MOVES, facts);
      assert.equal(s.place, "kernel", facts);
      for (const m of r.moves)
        assert.ok(
          m.progress.atPeer < TOTAL && m.progress.atHost < TOTAL,
          `move ${m.n} mid-transfer: ${facts}`,
        );
      assert.equal(r.peerToHost.bytes, TOTAL, facts);
      assert.equal(r.hostToPeer.bytes, TOTAL, facts);
      assert.equal(r.peerToHost.received, r.peerToHost.sent, `peer to us: ${facts}`);
      assert.equal(r.hostToPeer.received, r.hostToPeer.sent, `us to peer: ${facts}`);
      assert.equal(drops, 0, facts);
      const hostTcp = tcpCounters({ ns: s.topo.hostNs });
      const peerTcp = tcpCounters({ ns: s.topo.peerNs });
      const counters = JSON.stringify({
        hostTcp,
        peerTcp,
        ours: s.host.stack.stats.rstsSent,
        label: s.host.label,
      });
      assert.equal(s.host.stack.stats.rstsSent, 0, `no RST from our stack: ${counters}`);
      assert.equal(rsts, 0, `no RST crossed our side of the link: ${counters}`);
      assert.equal(hostTcp["OutRsts"], 0, counters);
      assert.equal(peerTcp["OutRsts"], 0, counters);
      assert.equal(peerTcp["EstabResets"], 0, `the peer's connection was never reset: ${counters}`);
      // One silent close per move out of the kernel (counted, nothing sent).
      assert.equal(hostTcp["EstabResets"], MOVES / 2, counters);
    } finally {
      s.close();
    }
  });
});
