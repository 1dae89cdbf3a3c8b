// Terminating a connection of OUR stack into the Linux kernel, live and mid-transfer. Topology:
// a peer namespace (plain kernel sockets) joined by veth to a host namespace whose kernel owns
// the address our stack uses (192.0.2.2, with our MAC on the veth); our stack runs on a TAP
// device in the host namespace. `tc` sends every frame our stack writes out through the veth,
// a copy of ARP to our stack, and the one connection's packets (u32 on the 4-tuple) to our
// stack instead of the host kernel. Both directions stream; our application reads the first
// 256 KiB and then nothing, so over 1 MiB waits unread in our engine. The move: our stack hands
// the connection off (snapshot, no segment of its own), kernel-state.ts translates it into a
// kernel record, a helper in the host namespace imports it with TCP_REPAIR, the steering rule
// goes, and the kernel socket's application reads the rest and writes the rest. Every byte
// arrives exactly once and in order (sha256 both ways) and nobody sends or receives an RST.
// Needs root and the repair addon.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startLiveHost, type LiveHost } from "../src/live/live-host.js";
import { handOffToKernel, recordToJson } from "../src/live/terminate.js";
import { steerConnection, type Steering } from "../src/live/steering.js";
import { Seq } from "../src/wire/seq.js";
import { ip } from "../src/wire/ip-addr.js";
import { events, tcpCounters } from "./support/helper-events.js";
import {
  joinPeerNamespace,
  kernelTestSkip,
  OURS,
  OUTER,
  PEER,
  type PeerTopology,
  rstFrames,
  sha256,
} from "./support/kernel-topology.js";
import { payload } from "./support/live.js";
import { exited } from "./support/netns.js";

const skip = kernelTestSkip();
const HELPER = join(dirname(fileURLToPath(import.meta.url)), "support", "terminate-helper.js");
const PORT = 5072;
const LOCAL_PORT = 40123;
const PEER_BYTES = 4 << 20;
const HOST_BYTES = 16 << 20;
const READ_FIRST = 256 * 1024;
const UNREAD_AT_MOVE = (1 << 20) + 256 * 1024;
/** Our application's writes: this much per tick, so our direction is mid-transfer at the move. */
const WRITE_CHUNK = 32 * 1024;
const PEER_SEED = 11;
const HOST_SEED = 12;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

void describe("terminate into the kernel: our stack's connection moves to a kernel socket", { skip }, () => {
  void test("mid-transfer both ways, 1 MiB+ unread: every byte once, in order, no RST", async (t) => {
    const seed = Number(process.env["CHIMNEY_SEED"] ?? 1);
    const frames: Uint8Array[] = [];
    let host: LiveHost | undefined;
    let topo: PeerTopology | undefined;
    let steering: Steering | undefined;
    let pump: NodeJS.Timeout | undefined;
    const children: ChildProcess[] = [];
    try {
      host = startLiveHost({
        tag: "term",
        seed,
        offload: "off",
        kernelAddresses: false,
        tcp: { recvBufferSize: 2 << 20, sendBufferSize: 1 << 20 },
        capture: (_us, f) => {
          if (f.length >= 34 && f[23] === 6) frames.push(f.slice(0, 64));
        },
      });
      const label = host.label;
      topo = joinPeerNamespace(host, "term");
      const { hostNs, peerNs, tap } = topo;
      steering = steerConnection(
        hostNs,
        OUTER,
        tap,
        { localAddress: OURS, localPort: LOCAL_PORT, remoteAddress: PEER, remotePort: PORT },
        10,
      );

      const peer = host.netns.spawn("ip", [
        "netns",
        "exec",
        peerNs,
        process.execPath,
        HELPER,
        "peer",
        `${PORT}`,
        `${PEER_BYTES}`,
        `${PEER_SEED}`,
      ]);
      children.push(peer);
      const peerEv = events(peer, "peer");
      await peerEv("listening");
      const kernelApp = host.netns.spawn(process.execPath, [
        HELPER,
        "kernel",
        `${HOST_BYTES}`,
        `${HOST_SEED}`,
      ]);
      children.push(kernelApp);
      const kernelEv = events(kernelApp, "kernel");
      await kernelEv("ready");

      // Our application, straight on our stack: writes WRITE_CHUNK per tick, reads READ_FIRST.
      const { stack, driver } = host;
      const peerStream = payload(PEER_BYTES, PEER_SEED);
      const hostStream = payload(HOST_BYTES, HOST_SEED);
      const c = stack.connect(driver.now(), ip(PEER), PORT, { localPort: LOCAL_PORT });
      driver.flush();
      const readParts: Uint8Array[] = [];
      let read = 0;
      let handed = 0;
      const due = Date.now() + 20_000;
      await new Promise<void>((resolve, reject) => {
        pump = setInterval(() => {
          try {
            if (Date.now() > due)
              throw new Error(`no move point in 20 s: read ${read}, handed ${handed}, ${label}`);
            if (!c.connected) return;
            for (
              let d = stack.recv(driver.now(), c, READ_FIRST - read);
              read < READ_FIRST && d !== undefined;
            ) {
              readParts.push(d.slice());
              read += d.length;
              if (read < READ_FIRST) d = stack.recv(driver.now(), c, READ_FIRST - read);
            }
            const n = stack.send(
              driver.now(),
              c,
              hostStream.subarray(handed, Math.min(HOST_BYTES, handed + WRITE_CHUNK)),
            );
            handed += n;
            driver.flush();
            if (read === READ_FIRST && stack.readable(c) >= UNREAD_AT_MOVE && handed < HOST_BYTES) {
              clearInterval(pump);
              resolve();
            }
          } catch (e) {
            clearInterval(pump);
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        }, 2);
      });

      // The move.
      const t0 = performance.now();
      const { record, snapshot: snap } = handOffToKernel(stack, c, driver.now());
      driver.flush(); // what the engine owed goes out now
      const tHandedOff = performance.now();
      kernelApp.stdin?.write(`${recordToJson(record, { from: handed })}\n`);
      const imported = await kernelEv("imported");
      const tImported = performance.now();
      steering.remove();
      const moveMs = performance.now() - t0;
      const steps = {
        handOffMs: tHandedOff - t0,
        importMs: tImported - tHandedOff,
        unsteerMs: performance.now() - tImported,
      };
      kernelApp.stdin?.write("go\n");
      const d = snap.delegated;
      const facts = JSON.stringify({
        label,
        state: d.state,
        unread: record.recvQueue.length,
        sendQueue: record.sendQueue.length,
        inFlight: Seq.delta(d.sndMax, d.sndUna),
        unsent: record.unsent,
        handed,
        read,
        moveMs,
        steps,
        imported,
      });
      t.diagnostic(facts);
      assert.equal(d.state, "ESTABLISHED", facts);
      assert.ok(record.recvQueue.length >= UNREAD_AT_MOVE, `over 1 MiB unread moves: ${facts}`);
      assert.ok(record.sendQueue.length > 0, `send data moves: ${facts}`);
      // Mid-transfer both ways: our data in flight, the peer's stream not all sent yet.
      assert.ok(Seq.delta(d.sndMax, d.sndUna) > 0, `our data in flight at the move: ${facts}`);
      assert.ok(READ_FIRST + record.recvQueue.length < PEER_BYTES, `the peer still sending: ${facts}`);
      assert.deepEqual(
        imported["queues"],
        { unread: record.recvQueue.length, queued: record.sendQueue.length, unsent: record.unsent },
        `the kernel socket holds our queues: ${facts}`,
      );

      const [kernelDone, peerDone] = await Promise.all([kernelEv("done", 60_000), peerEv("done", 60_000)]);
      const drops = stack.releaseHandOff(c);
      t.diagnostic(`segments dropped by our stack while steered after the hand-off: ${drops}`);
      const done = JSON.stringify({ facts, kernelDone, peerDone, drops });
      // Peer to us: our application's prefix, then the kernel socket's rest, each byte once.
      assert.equal(Buffer.concat(readParts).equals(peerStream.subarray(0, READ_FIRST)), true, done);
      assert.equal(kernelDone["recvLen"], PEER_BYTES - READ_FIRST, done);
      assert.equal(kernelDone["recvSha"], sha256(peerStream.subarray(READ_FIRST)), `peer to us: ${done}`);
      assert.equal(peerDone["recvLen"], HOST_BYTES, done);
      assert.equal(peerDone["recvSha"], sha256(hostStream), `us to peer: ${done}`);
      await Promise.all([exited(kernelApp), exited(peer)]);

      const hostTcp = tcpCounters({ ns: hostNs });
      const peerTcp = tcpCounters({ ns: peerNs });
      const counters = JSON.stringify({ hostTcp, peerTcp, ourRsts: stack.stats.rstsSent, label });
      assert.equal(stack.stats.rstsSent, 0, `no RST from our stack: ${counters}`);
      assert.deepEqual(rstFrames(frames), [], `no RST crossed our side of the link: ${counters}`);
      assert.equal(hostTcp["OutRsts"], 0, `no RST from the host namespace's kernel: ${counters}`);
      assert.equal(peerTcp["OutRsts"], 0, `no RST from the peer: ${counters}`);
      assert.equal(peerTcp["EstabResets"], 0, `the peer's connection was never reset: ${counters}`);
      assert.equal(hostTcp["EstabResets"], 0, `the kernel socket was never reset: ${counters}`);
    } finally {
      if (pump !== undefined) clearInterval(pump);
      for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill("SIGKILL");
      try {
        steering?.remove();
      } catch {
        // the namespace goes anyway
      }
      host?.close();
      topo?.remove();
      await sleep(0);
    }
  });
});
