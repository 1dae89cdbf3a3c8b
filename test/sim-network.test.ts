// createSimNetwork: the one-call simulator set-up. A run is a pure function of the seed, the
// offload shortcuts move a live connection to the target and back, and misuse throws typed
// errors.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { ConfigError, createSimNetwork, SimTimeoutError, type Socket, UsageError } from "../src/index.js";

/** Echoes 256 KiB over a lossy link with a's connection offloaded and terminated midway. */
async function echoRun(seed: number): Promise<{ digest: string; lost: number; phases: string[] }> {
  const simNet = createSimNetwork({
    seed,
    link: { delayMs: 1, loss: 0.02, bandwidthBps: 50_000_000 },
    offload: { a: { target: "software" } },
  });
  try {
    const [a, b] = simNet.hosts;
    b.createServer((s: Socket) => s.pipe(s)).listen(7);
    const c = a.connect({ host: "b", port: 7 });
    const h = createHash("sha256");
    let got = 0;
    c.on("data", (d: Buffer) => {
      got += d.length;
      h.update(d);
    });
    await simNet.runUntil(() => !c.connecting && c.connection !== undefined);
    const phases: string[] = [];
    assert.ok(a.offload?.offload(c), `${simNet.label}: offload`);
    await simNet.runUntil(() => c.connection?.phase === "offloaded");
    phases.push(c.connection?.phase ?? "?");
    c.write(Buffer.alloc(256 * 1024, 0x5a));
    await simNet.runUntil(() => got >= 64 * 1024);
    assert.ok(a.offload?.terminate(c), `${simNet.label}: terminate`);
    await simNet.runUntil(() => got === 256 * 1024);
    phases.push(c.connection?.phase ?? "?");
    c.end();
    await simNet.idle();
    a.offload?.ledger.assertQuiescent();
    return { digest: h.digest("hex"), lost: simNet.link.aToB.stats()["loss"]?.dropped ?? 0, phases };
  } finally {
    simNet.stop();
  }
}

void describe("createSimNetwork", () => {
  void test("echo through offload and terminate on a lossy link; the same seed gives the same run", async () => {
    const want = createHash("sha256")
      .update(Buffer.alloc(256 * 1024, 0x5a))
      .digest("hex");
    const first = await echoRun(11);
    assert.equal(first.digest, want, "seed 11: echoed bytes");
    assert.deepEqual(first.phases, ["offloaded", "host"], "seed 11: phases");
    assert.ok(first.lost > 0, "seed 11: the link lost frames");
    assert.deepEqual(await echoRun(11), first, "seed 11: replay");
    const other = await echoRun(12);
    assert.equal(other.digest, want, "seed 12: echoed bytes");
  });

  void test("run(untilMs) resolves at that virtual time; runUntil times out with the seed", async () => {
    const simNet = createSimNetwork({ seed: 5 });
    try {
      await simNet.run(250);
      assert.equal(simNet.nowMs, 250);
      await assert.rejects(
        simNet.runUntil(() => false, { timeoutMs: 20 }),
        (e: unknown) =>
          e instanceof SimTimeoutError && e.code === "ERR_SIM_TIMEOUT" && /seed 5/.test(e.message),
      );
      assert.equal(simNet.nowMs, 270);
      assert.throws(() => simNet.run(-1), UsageError);
    } finally {
      simNet.stop();
    }
  });

  void test("bad options throw ConfigError; offload shortcuts need a connected socket", () => {
    assert.throws(() => createSimNetwork({ hosts: ["a", "a"] }), ConfigError);
    assert.throws(() => createSimNetwork({ offload: { c: {} } }), ConfigError);
    const simNet = createSimNetwork({ hosts: ["x", "y"], offload: { x: true } });
    try {
      assert.throws(() => simNet.host("a"), ConfigError);
      assert.equal(simNet.host("y").offload, undefined);
      const s = simNet.host("x").connect({ host: "y", port: 1 });
      assert.throws(() => simNet.host("x").offload?.offload(s), UsageError);
      s.destroy();
    } finally {
      simNet.stop();
    }
  });
});
