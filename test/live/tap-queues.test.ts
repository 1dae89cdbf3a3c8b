// A multi-queue TAP device (`openTap` with `queues`): one fd per queue, each a reader of its
// own, and bad queue counts refused before any device exists. Steering of each flow to its
// worker's queue is proven end to end in live-chimney (2 target workers).
// Needs root (a TAP device), like every live test.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { MAX_TAP_QUEUES, openTap } from "../../src/device/tap.js";

void describe("multi-queue TAP device", () => {
  void test("queue counts outside 1..MAX_TAP_QUEUES, or with the fs mode, are ERR_USAGE before a device exists", () => {
    for (const queues of [0, -1, 1.5, MAX_TAP_QUEUES + 1, Number.NaN])
      assert.throws(
        () => openTap(`chq${process.pid}`.slice(0, 15), { queues }),
        (e: unknown) => (e as { code?: string }).code === "ERR_USAGE",
        `queues ${queues}`,
      );
    assert.throws(
      () => openTap(`chq${process.pid}`.slice(0, 15), { queues: 2, mode: "fs" }),
      (e: unknown) => (e as { code?: string }).code === "ERR_USAGE",
    );
  });

  void test("three queues: an fd each, the kernel's device is multi-queue, and closing removes it", () => {
    const name = `chq${process.pid}`.slice(0, 15);
    const tap = openTap(name, { queues: 3 });
    try {
      assert.equal(tap.queues.length, 3);
      assert.equal(new Set(tap.queues.map((q) => q.fd)).size, 3, "an fd per queue");
      assert.equal(tap.queues[0]?.fd, tap.handle.fd);
      assert.ok(tap.queues.every((q) => q.name === tap.name));
      // The kernel lists a transmit queue per attached fd.
      const queues = execFileSync("ls", [`/sys/class/net/${tap.name}/queues`], { encoding: "utf8" })
        .split("\n")
        .filter((l) => l.startsWith("tx-"));
      assert.equal(queues.length, 3, `kernel queues: ${queues.join(" ")}`);
    } finally {
      tap.close();
    }
    assert.throws(
      () => execFileSync("ip", ["link", "show", name], { stdio: "ignore" }),
      "the device is gone",
    );
  });
});
