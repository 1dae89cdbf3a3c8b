// ECN (RFC 3168) through the host stack: a connection that negotiated ECN sends its data ECT(0)
// on the wire, and stays where its ECN state can live: the offload manager keeps it on the host
// (chimney's delegated state has no ECN fields) and the kernel hand-off refuses it (TCP_REPAIR
// restores no ECN state). Without ECN the same connection offloads.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { kernelFromSnapshot } from "../src/device/kernel-state.js";
import { createSimNetwork } from "../src/socket/sim-network.js";
import type { Socket } from "../src/socket/socket.js";
import type { EcnMode } from "../src/tcp/config.js";
import { UsageError } from "../src/util/errors.js";
import { decodeFrame } from "../src/wire/packet.js";

const SEED = 0xec4;

async function connected(ecn: EcnMode) {
  const ectData: number[] = [];
  const net = createSimNetwork({
    seed: SEED,
    hosts: ["a", "b"],
    tcp: { ecn },
    offload: { a: {}, b: {} },
    tap: {
      onFrame: (_now, _dir, frame) => {
        const p = decodeFrame(frame);
        const n = p.network;
        if (n?.kind === "ipv4" && p.transport?.kind === "tcp" && p.transport.tcp.payload.length > 0)
          ectData.push(n.ipv4.ecn);
      },
    },
  });
  const accepted: Socket[] = [];
  const server = net.host("b").net.createServer((s) => accepted.push(s));
  server.listen({ port: 80 });
  const c = net.host("a").net.connect({ host: "b", port: 80 });
  await net.runUntil(() => !c.connecting && accepted.length === 1);
  const got: Buffer[] = [];
  accepted[0]?.on("data", (d: Buffer) => got.push(d));
  c.write(Buffer.alloc(5000, 7));
  await net.runUntil(() => got.reduce((n, b) => n + b.length, 0) === 5000);
  return { net, ectData };
}

void describe("ECN through the host (RFC 3168)", () => {
  void test("a negotiated connection sends ECT(0) data, stays on the host when offered to the target, and the kernel refuses it", async () => {
    const { net, ectData } = await connected("on");
    try {
      assert.ok(ectData.length > 0, `seed ${SEED}: data went out`);
      assert.ok(
        ectData.every((e) => e === 2),
        `seed ${SEED}: every data segment ECT(0): ${ectData.join(",")}`,
      );
      for (const name of ["a", "b"]) {
        const h = net.host(name);
        const [conn] = [...h.stack.connections()];
        assert.ok(conn?.tcp !== undefined && conn.tcp.ecnNegotiated, `seed ${SEED}: ${name} negotiated ECN`);
        assert.equal(
          h.offload?.manager.offload(conn),
          false,
          `seed ${SEED}: ${name}'s ECN connection is not offloaded`,
        );
        h.flush();
        assert.equal(conn.phase, "host");
        const snap = conn.tcp.exportState(h.stack.now);
        assert.ok(snap.delegated.ecn !== undefined);
        assert.throws(
          () =>
            kernelFromSnapshot(snap, {
              family: 4,
              localAddress: "192.0.2.1",
              remoteAddress: "192.0.2.2",
            }),
          (e: unknown) => e instanceof UsageError && /ECN/.test(e.message),
        );
      }
    } finally {
      net.stop();
    }
  });

  void test("without ECN (passive on both sides) nothing is ECT and the connection offloads", async () => {
    const { net, ectData } = await connected("passive");
    try {
      assert.ok(ectData.length > 0 && ectData.every((e) => e === 0), `seed ${SEED}: ${ectData.join(",")}`);
      const h = net.host("a");
      const [conn] = [...h.stack.connections()];
      assert.ok(conn !== undefined && conn.tcp?.ecnNegotiated === false);
      assert.equal(h.offload?.manager.offload(conn), true, `seed ${SEED}: offered to the target`);
      await net.runUntil(() => conn.phase === "offloaded");
    } finally {
      net.stop();
    }
  });
});
