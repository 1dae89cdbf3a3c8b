// The one driver loop (src/node): it stops when nothing moves and the target has no work, even
// when a target timer is due at this very instant (that is `fire`'s job, not `settle`'s; the
// loop once spun 100,000 silent rounds on it), and a target that never settles is an error,
// not a hang.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { NicTarget } from "../src/node/chimney-node.js";
import { ChimneyNode, createChimney, MAX_SETTLE_ROUNDS } from "../src/node/chimney-node.js";
import { Prng } from "../src/sim/prng.js";
import { segmentHost, segmentMac } from "../src/sim/segment-host.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Instant } from "../src/time/instant.js";
import { InvariantViolation } from "../src/util/errors.js";

const NOW = Instant.fromMillis(5);

/**
 * The NIC side a node drives, reduced to what the loop calls: no frames, `busy()` work, a timer
 * at `timer`. It counts the rounds through `process`.
 */
function fakeNic(busy: () => boolean, timer?: Instant): { target: NicTarget; processed: () => number } {
  let n = 0;
  const nic = {
    connectionCount: 0,
    handleFrame: () => undefined,
    sendFrame: () => undefined,
    process: () => {
      n++;
    },
    pollTransmit: () => undefined,
    pollTimeout: () => timer,
    handleTimeout: () => undefined,
    hasWork: busy,
    pollAt: (now: Instant) => (busy() ? now : timer),
  };
  return { target: nic as unknown as NicTarget, processed: () => n };
}

void test("settle ends when nothing moves, though a target timer is due now; fire runs it", () => {
  const stack = segmentHost(1, { tcp: tcpConfig({}), random: new Prng(1) });
  const chimney = createChimney(stack, { mac: segmentMac(1) });
  const c = fakeNic(() => false, NOW); // a timer due exactly now, and no work
  const node = new ChimneyNode(
    stack,
    () => NOW,
    { transmit: () => undefined, event: () => undefined },
    {
      manager: chimney.manager,
      target: c.target,
    },
  );
  assert.equal(node.settle(), false, "nothing moved");
  assert.equal(c.processed(), 1, "one round: the due timer is not work for settle");
  assert.equal(node.deadline(), NOW, "the deadline says the timer is due");
});

void test("a target that always has work is an InvariantViolation after MAX_SETTLE_ROUNDS, not a hang", () => {
  const stack = segmentHost(1, { tcp: tcpConfig({}), random: new Prng(1) });
  const chimney = createChimney(stack, { mac: segmentMac(1) });
  const c = fakeNic(() => true);
  const node = new ChimneyNode(
    stack,
    () => NOW,
    { transmit: () => undefined, event: () => undefined },
    {
      manager: chimney.manager,
      target: c.target,
    },
  );
  assert.throws(() => node.settle(), InvariantViolation);
  assert.equal(c.processed(), MAX_SETTLE_ROUNDS + 1);
  assert.equal(node.settling, false, "the loop is usable again after the error");
});

void test("a call made from an event handler while settling is absorbed by the running loop", () => {
  const stack = segmentHost(1, { tcp: tcpConfig({}), random: new Prng(1) });
  let nested: boolean | undefined;
  const node: ChimneyNode = new ChimneyNode(stack, () => NOW, {
    transmit: () => {
      nested ??= node.settle(); // re-entered: absorbed, goes round again
    },
    event: () => undefined,
  });
  stack.connect(NOW, Uint8Array.of(192, 0, 2, 2), 80); // an ARP request goes out
  assert.equal(node.settle(), true);
  assert.equal(nested, false, "the nested call returned at once");
  assert.equal(node.settling, false);
});
