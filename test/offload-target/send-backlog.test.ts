/**
 * EV-4 / ST-4 / ST-7: the target's preferred send backlog (TcpIndicateSendBacklogChange), its
 * throttle, and the SendBacklogSize a query reports.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../../src/time/instant.js";
import {
  backlogChangeDue,
  preferredSendBacklog,
  SEND_BACKLOG_INTERVAL,
  SEND_BACKLOG_MAX,
  SEND_BACKLOG_MIN,
} from "../../src/offload-target/software-target.js";
import {
  advance,
  at,
  offloaded,
  pattern,
  pump,
  tcpRef,
  type World,
  trackWorlds,
  upload,
} from "../support/target-testing.js";

const track = trackWorlds();

/** Uploads the connection and frees what the host got back. */
function uploadAndFree(w: World): void {
  upload(w);
  w.host.freeCompleted();
}

function querySendBacklog(w: World): number | undefined {
  const q = tcpRef(w.ctx);
  w.target.queryOffload(q);
  w.target.process(at(w.now));
  assert.equal(q.status, "NDIS_STATUS_SUCCESS");
  return q.delegatedState?.sendBacklogSize;
}

void describe("EV-4: the preferred send backlog and its throttle", () => {
  void test("EV-4: twice min(cwnd, peer window), clamped, and not collapsed by a zero window", () => {
    assert.equal(preferredSendBacklog(14_600, 65_535, 1460), SEND_BACKLOG_MIN);
    assert.equal(preferredSendBacklog(400_000, 1_000_000, 1460), 800_000);
    assert.equal(preferredSendBacklog(400_000, 100_000, 1460), 200_000);
    assert.equal(preferredSendBacklog(400_000, 0, 1460), SEND_BACKLOG_MIN);
    assert.equal(preferredSendBacklog(1 << 30, 1 << 30, 1460), SEND_BACKLOG_MAX);
  });

  void test("EV-4: throttled by time and by size of change", () => {
    const t0 = Instant.fromMicros(1_000_000);
    const soon = Instant.add(t0, Duration.fromMillis(10));
    const later = Instant.add(t0, SEND_BACKLOG_INTERVAL);
    assert.equal(backlogChangeDue(undefined, Instant.ZERO, 100_000, t0, SEND_BACKLOG_INTERVAL), true);
    assert.equal(backlogChangeDue(100_000, t0, 400_000, soon, SEND_BACKLOG_INTERVAL), false); // too often
    assert.equal(backlogChangeDue(100_000, t0, 120_000, later, SEND_BACKLOG_INTERVAL), false); // too small
    assert.equal(backlogChangeDue(100_000, t0, 125_000, later, SEND_BACKLOG_INTERVAL), true);
    assert.equal(backlogChangeDue(100_000, t0, 75_000, later, SEND_BACKLOG_INTERVAL), true);
  });

  void test("EV-4 / ST-4: indicated once at offload; a query reports the same SendBacklogSize", () => {
    const w = track(offloaded());
    pump(w);
    assert.equal(w.host.backlogEvents.length, 1);
    const first = w.host.backlogEvents[0];
    assert.ok(first !== undefined);
    const e = w.target.engineOf(w.ctx);
    assert.ok(e !== undefined);
    assert.equal(first.sendBacklog, preferredSendBacklog(e.cwnd, e.sndWnd, e.mss));
    assert.equal(querySendBacklog(w), first.sendBacklog);
    // Nothing changed: no second indication, however long it idles.
    advance(w, 2000, 100);
    assert.equal(w.host.backlogEvents.length, 1);
    uploadAndFree(w);
  });

  void test("EV-4: a bulk send grows the backlog with few, spaced, large-step indications", () => {
    const w = track(offloaded());
    for (let i = 0; i < 64; i++) w.host.send(w.ctx, pattern(16_384, i));
    const ticks = 100;
    for (let i = 0; i < ticks; i++) advance(w, 5, 5);
    assert.equal(w.host.sendCompleted.length, 64, "all sends completed");
    const values = w.host.backlogEvents.map((b) => b.sendBacklog);
    assert.ok(values.length >= 2, `the backlog grew: ${values.join(",")}`);
    // Throttle: each change is at least a quarter of the last value.
    for (let i = 1; i < values.length; i++) {
      const prev = values[i - 1] as number;
      const cur = values[i] as number;
      assert.ok(Math.abs(cur - prev) * 4 >= prev, `step ${prev} -> ${cur}`);
    }
    // Not a storm: far fewer indications than send completions and than 5 ms ticks.
    assert.ok(values.length * 4 <= ticks, `${values.length} indications in ${ticks} ticks`);
    const last = values[values.length - 1];
    assert.equal(querySendBacklog(w), last, "ST-4: the query reports the last indicated value");
    uploadAndFree(w);
  });

  void test("EV-4: a recheck pending when the host closes does not leave a deadline due for ever", () => {
    // A change too soon to indicate files a recheck; the host's disconnect then takes the
    // connection out of ESTABLISHED, and the recheck must go with it (`advance` checks that no
    // deadline is still due after handleTimeout: a driver would spin at 0 ms on it).
    let rechecks = 0;
    for (let salt = 0; salt < 8 && rechecks === 0; salt++) {
      const w = track(offloaded());
      for (let i = 0; i < 64; i++) w.host.send(w.ctx, pattern(16_384, salt * 64 + i));
      for (let i = 0; i < 200; i++) {
        advance(w, 1, 1);
        const d = w.target.pollTimeout();
        const e = w.target.engineOf(w.ctx);
        // The engine's own timers are further out than the 200 ms throttle: a deadline inside it
        // is the recheck.
        if (d !== undefined && e !== undefined && e.pollTimeout() !== d) break;
      }
      const d = w.target.pollTimeout();
      const e = w.target.engineOf(w.ctx);
      if (d === undefined || e === undefined || e.pollTimeout() === d) {
        uploadAndFree(w);
        continue;
      }
      rechecks++;
      w.host.disconnect(w.ctx, "graceful");
      pump(w);
      advance(w, (3 * SEND_BACKLOG_INTERVAL) / 1000, 5);
      uploadAndFree(w);
    }
    assert.ok(rechecks > 0, "a recheck was pending at the disconnect");
  });

  void test("ST-7 / ST-4: with the feature off nothing is indicated and the query says 0xFFFFFFFF", () => {
    const w = track(offloaded({ target: { sendBacklog: false } }));
    for (let i = 0; i < 8; i++) w.host.send(w.ctx, pattern(16_384, i));
    advance(w, 500, 5);
    assert.equal(w.host.backlogEvents.length, 0);
    assert.equal(querySendBacklog(w), 0xffff_ffff);
    uploadAndFree(w);
  });
});
