// A connection moves between the Linux kernel and our host stack and back, live and
// mid-transfer, all from this process (src/live/handoff-session.ts, kernel-move.ts): kernel
// sockets made inside the namespaces by the repair addon, the steering added and removed over
// rtnetlink, no helper process. Both directions stream; every byte arrives once and in order
// (sha256 both ways), nobody sends an RST, and each move takes milliseconds, not the hundreds a
// helper process and a JSON record took. Needs root and the repair addon.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HandoffSession } from "../src/live/handoff-session.js";
import { tcpCounters } from "./support/helper-events.js";
import { kernelTestSkip, rstCount } from "./support/kernel-topology.js";

const skip = kernelTestSkip();
const MB = 1 << 20;

void describe("kernel <-> our stack, in-process moves", { skip }, () => {
  void test("kernel -> our stack -> kernel mid-transfer: every byte once, no RST, moves in ms", async (t) => {
    const seed = Number(process.env["CHIMNEY_SEED"] ?? 1);
    const frames: Uint8Array[] = [];
    const total = 24 * MB;
    const s = await HandoffSession.open({
      tag: "kmove",
      seed,
      peerBytes: total,
      hostBytes: total,
      capture: (f) => {
        if (f.length >= 34 && f[23] === 6) frames.push(f.slice(0, 64));
      },
    });
    try {
      await s.until(
        "a third of both streams",
        () => s.received.atPeer > total / 3 && s.received.atHost > total / 3,
      );
      const [toUs] = await s.moveTo("host");
      await s.until(
        "two thirds",
        () => s.received.atPeer > (2 * total) / 3 && s.received.atHost > (2 * total) / 3,
      );
      const [back] = await s.moveTo("kernel");
      const r = await s.finish();
      const drops = s.releaseHandOffs();
      const facts = JSON.stringify({
        label: s.host.label,
        seed,
        moves: r.moves,
        drops,
        forwarded: s.forwarded,
      });
      t.diagnostic(facts);
      assert.ok(toUs !== undefined && back !== undefined);
      // Mid-transfer: both streams were still running at each move.
      for (const m of r.moves) assert.ok(m.atMs > 0 && m.carried.unread + m.carried.inFlight > 0, facts);
      // Mid-transfer both ways at every move.
      for (const m of r.moves) assert.ok(m.progress.atPeer < total && m.progress.atHost < total, facts);
      // The frames still reaching our device after a move into the kernel go on to the kernel
      // socket (KernelForwarder): our stack drops none of them.
      assert.equal(drops, 0, facts);
      assert.equal(r.peerToHost.bytes, total, facts);
      assert.equal(r.hostToPeer.bytes, total, facts);
      assert.equal(r.peerToHost.received, r.peerToHost.sent, `peer to us: ${facts}`);
      assert.equal(r.hostToPeer.received, r.hostToPeer.sent, `us to peer: ${facts}`);
      // Fast: the synchronous steps of each move (not the wait for Node's pending writes) take
      // milliseconds; < 100 ms even on a loaded 2-core machine (helper processes took 130-1400).
      for (const m of r.moves) {
        const steps = Object.entries(m.timings).filter(([k]) => k !== "totalMs" && k !== "drainMs");
        const sync = steps.reduce((a, [, v]) => a + v, 0);
        assert.ok(sync < 100, `move ${m.n}: ${sync} ms in its steps: ${facts}`);
      }
      const hostTcp = tcpCounters({ ns: s.topo.hostNs });
      const peerTcp = tcpCounters({ ns: s.topo.peerNs });
      const counters = JSON.stringify({
        hostTcp,
        peerTcp,
        ours: s.host.stack.stats.rstsSent,
        label: s.host.label,
      });
      assert.equal(s.host.stack.stats.rstsSent, 0, `no RST from our stack: ${counters}`);
      assert.equal(rstCount(frames), 0, `no RST crossed our side of the link: ${counters}`);
      assert.equal(hostTcp["OutRsts"], 0, counters);
      assert.equal(peerTcp["OutRsts"], 0, counters);
      assert.equal(peerTcp["EstabResets"], 0, `the peer's connection was never reset: ${counters}`);
      // One silent close of the exported kernel socket (counted, nothing sent).
      assert.equal(hostTcp["EstabResets"], 1, counters);
    } finally {
      s.close();
    }
  });
});
