/**
 * EV-4 / ST-4 host side: the offload manager keeps at most the target's preferred send backlog
 * posted for an offloaded socket (the rest waits on the host, in order), and a bulk transfer over
 * a large bandwidth-delay-product link is not slower than posting everything at once.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HostConn, StackEvent } from "../src/host/stack.js";
import { chainLength } from "../src/nbl/chain.js";
import type { NetBufferList } from "../src/nbl/nbl.js";
import { buildChimneyWorld, type ChimneyWorld } from "../src/sim/chimney-world.js";
import { SEND_BACKLOG_MIN, type SoftwareTarget } from "../src/offload-target/software-target.js";
import { Instant } from "../src/time/instant.js";
import { ip } from "../src/wire/ip-addr.js";
import { fillPattern, patternByte } from "./support/sim-pair.js";

const B = ip("192.0.2.2");

interface Outcome {
  readonly read: number;
  readonly doneUs: number | undefined;
  /** Largest unacknowledged byte count posted at the target. */
  readonly maxPosted: number;
  /** Posts that went over the backlog indicated before them. */
  readonly overBacklog: number;
  readonly backlogs: readonly number[];
  readonly mismatch: boolean;
}

/** b (offloaded) sends `total` bytes to a over a `delayUs` one-way, `rateBps` link. */
function bulk(seed: number, total: number, sendBacklog: boolean, delayUs: number, rateBps: number): Outcome {
  const w: ChimneyWorld = buildChimneyWorld({
    seed,
    profile: { delayUs, rateBps, queueBytes: 4 << 20 },
    tcp: { sendBufferSize: 4 << 20, recvBufferSize: 4 << 20 },
    a: { offload: false },
    b: { target: { sendBacklog } },
  });
  let client: HostConn | undefined;
  let server: HostConn | undefined;
  let read = 0;
  let sent = 0;
  let doneUs: number | undefined;
  let mismatch = false;
  let go = false;
  const pushMore = () => {
    if (server === undefined || !go) return;
    while (sent < total) {
      const n = Math.min(65_536, total - sent);
      const took = w.b.stack.send(w.now, server, fillPattern(1, sent, new Uint8Array(n)));
      sent += took;
      if (took < n) break;
    }
  };
  w.a.onEvent((ev: StackEvent) => {
    if (ev.kind === "accept") return;
    if (ev.event.kind === "connected") client = ev.conn;
    if (ev.conn !== client) return;
    for (let d = w.a.stack.recv(w.now, ev.conn); d !== undefined; d = w.a.stack.recv(w.now, ev.conn)) {
      for (let i = 0; i < d.length; i += 997) if (d[i] !== patternByte(1, read + i)) mismatch = true;
      read += d.length;
    }
    if (read >= total && doneUs === undefined) doneUs = w.now;
  });
  w.b.onEvent((ev: StackEvent) => {
    if (ev.kind === "accept") {
      for (let c = w.b.stack.accept(ev.listener); c !== undefined; c = w.b.stack.accept(ev.listener))
        server ??= c;
      return;
    }
    if (ev.conn === server && ev.event.kind === "writable") pushMore();
  });
  w.b.stack.listen(80);
  w.a.stack.connect(Instant.ZERO, B, 80);
  w.a.node.pump();
  w.run(1_000_000);
  assert.ok(server !== undefined && client !== undefined, "connected");

  // Watch the chimney: bytes posted, bytes completed, backlog indications.
  const target = w.b.target as SoftwareTarget;
  const mgr = w.b.manager;
  const ledger = w.b.ledger;
  assert.ok(mgr !== undefined && ledger !== undefined);
  let posted = 0;
  let maxPosted = 0;
  let overBacklog = 0;
  let backlog: number | undefined;
  const backlogs: number[] = [];
  const send = target.tcpOffloadSend.bind(target);
  target.tcpOffloadSend = (ctx, nbl) => {
    for (let n: NetBufferList | null = nbl; n !== null; n = n.next)
      posted += chainLength(ledger.view(n, "target", "test"));
    maxPosted = Math.max(maxPosted, posted);
    if (backlog !== undefined && posted > backlog) overBacklog++;
    return send(ctx, nbl);
  };
  const complete = mgr.tcpOffloadSendComplete.bind(mgr);
  mgr.tcpOffloadSendComplete = (chain) => {
    for (let n: NetBufferList | null = chain; n !== null; n = n.next) posted -= n.bytesTransferred;
    complete(chain);
  };
  const event = mgr.tcpOffloadEvent.bind(mgr);
  mgr.tcpOffloadEvent = (h, ev) => {
    if (ev.type === "TcpIndicateSendBacklogChange") {
      backlog = ev.sendBacklog;
      backlogs.push(ev.sendBacklog);
    }
    event(h, ev);
  };

  assert.ok(mgr.offload(server), "offload started");
  w.b.node.pump();
  w.run(w.now + 10_000);
  const start = w.now;
  go = true;
  pushMore();
  w.b.node.pump();
  w.run(start + 60_000_000);
  return {
    read,
    doneUs: doneUs === undefined ? undefined : doneUs - start,
    maxPosted,
    overBacklog,
    backlogs,
    mismatch,
  };
}

void describe("EV-4 / ST-4: the host keeps the preferred send backlog posted", () => {
  const total = 6 << 20;
  const delayUs = 20_000; // 40 ms round trip
  const rateBps = 100_000_000; // BDP 500 kB

  void test("EV-4 / ST-4: posted send bytes stay within the indicated backlog, and the data arrives (seed 11)", () => {
    const on = bulk(11, total, true, delayUs, rateBps);
    assert.equal(on.read, total);
    assert.equal(on.mismatch, false);
    assert.ok(on.backlogs.length >= 2, `backlog indications: ${on.backlogs.join(",")}`);
    assert.equal(on.overBacklog, 0, "no post went over the backlog");
    assert.ok(on.maxPosted > SEND_BACKLOG_MIN, `the backlog grew (max posted ${on.maxPosted})`);
    const off = bulk(11, total, false, delayUs, rateBps);
    assert.equal(off.read, total);
    assert.equal(off.backlogs.length, 0);
    // Without indications the host posts all it accepts: far more than with them.
    assert.ok(off.maxPosted > on.maxPosted, `posted ${off.maxPosted} without vs ${on.maxPosted} with`);
  });

  void test("EV-4: throughput over a large-BDP link is not worse with the send backlog (seed 12)", (t) => {
    const on = bulk(12, total, true, delayUs, rateBps);
    const off = bulk(12, total, false, delayUs, rateBps);
    assert.ok(on.doneUs !== undefined && off.doneUs !== undefined, "both finished");
    const mbps = (us: number) => ((total * 8) / us).toFixed(1);
    t.diagnostic(`with backlog ${mbps(on.doneUs)} Mbit/s, without ${mbps(off.doneUs)} Mbit/s`);
    // Virtual time, so deterministic; 2 % slack for the different segment boundaries.
    assert.ok(
      on.doneUs <= off.doneUs * 1.02,
      `with backlog ${on.doneUs} us (${mbps(on.doneUs)} Mbit/s), without ${off.doneUs} us (${mbps(off.doneUs)} Mbit/s)`,
    );
  });
});
