// The reverse move: a Linux kernel socket's connection moves into OUR stack, live and
// mid-transfer. Topology as in test/kernel-terminate.test.ts (test/support/kernel-topology.ts):
// a peer namespace joined by veth to the host namespace, whose kernel owns 192.0.2.2; our stack
// on a TAP there. A helper in the host namespace connects to the peer with a kernel socket; both
// directions stream; its application reads the first 256 KiB and then nothing, so over 1 MiB
// waits unread in the kernel. The move: our stack reserves the 4-tuple (silence), `tc` steers
// the connection's packets to our stack, the helper freezes the socket (TCP_REPAIR export) and
// closes it silently, and our stack adopts the record (kernel-state.ts translation,
// HostStack.adopt). Our application then reads the kernel's unread data first and the rest of
// the peer's stream, and writes the rest of its own: every byte once and in order (sha256 both
// ways), and nobody sends or receives an RST. Needs root and the repair addon.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { adoptFromKernel } from "../src/live/adopt.js";
import { startLiveHost, type LiveHost } from "../src/live/live-host.js";
import { ipSync } from "../src/live/netns.js";
import { steerConnection, type Steering } from "../src/live/steering.js";
import { recordFromJson } from "../src/live/terminate.js";
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
const PORT = 5073;
const LOCAL_PORT = 40124;
const PEER_BYTES = 8 << 20;
const HOST_BYTES = 8 << 20;
const READ_FIRST = 256 * 1024;
const UNREAD_AT_MOVE = 1 << 20;
/** Our application's writes after the move: at most this much per tick. */
const WRITE_CHUNK = 64 * 1024;
const PEER_SEED = 21;
const HOST_SEED = 22;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

void describe("adopt from the kernel: a kernel socket's connection moves into our stack", { skip }, () => {
  void test("mid-transfer both ways, 1 MiB+ unread: read first, every byte once, no RST", async (t) => {
    const seed = Number(process.env["CHIMNEY_SEED"] ?? 1);
    const frames: Uint8Array[] = [];
    let host: LiveHost | undefined;
    let topo: PeerTopology | undefined;
    let steering: Steering | undefined;
    let pump: NodeJS.Timeout | undefined;
    const children: ChildProcess[] = [];
    try {
      host = startLiveHost({
        tag: "adopt",
        seed,
        offload: "off",
        kernelAddresses: false,
        tcp: { recvBufferSize: 8 << 20, sendBufferSize: 2 << 20 },
        capture: (_us, f) => {
          if (f.length >= 34 && f[23] === 6) frames.push(f.slice(0, 64));
        },
      });
      const label = host.label;
      topo = joinPeerNamespace(host, "adopt");
      const { hostNs, peerNs, tap } = topo;
      // Room in the kernel socket for over 1 MiB unread (its buffer, not its application, fills).
      // (A per-namespace sysctl: it goes with the namespace.)
      ipSync("netns", "exec", hostNs, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 3145728 6291456");

      const peer = host.netns.spawn("ip", [
        ...["netns", "exec", peerNs, process.execPath, HELPER, "peer"],
        ...[`${PORT}`, `${PEER_BYTES}`, `${PEER_SEED}`],
      ]);
      children.push(peer);
      const peerEv = events(peer, "peer");
      await peerEv("listening");
      const origin = host.netns.spawn(process.execPath, [
        ...[HELPER, "origin", PEER, `${PORT}`, `${LOCAL_PORT}`, `${HOST_BYTES}`, `${HOST_SEED}`],
        ...[`${READ_FIRST}`, `${UNREAD_AT_MOVE}`],
      ]);
      children.push(origin);
      const originEv = events(origin, "origin");
      const full = await originEv("full");

      // The move.
      const { stack, driver } = host;
      const t0 = performance.now();
      stack.reserveForAdoption(ip(OURS), LOCAL_PORT, ip(PEER), PORT);
      steering = steerConnection(
        hostNs,
        OUTER,
        tap,
        { localAddress: OURS, localPort: LOCAL_PORT, remoteAddress: PEER, remotePort: PORT },
        10,
      );
      const tSteered = performance.now();
      origin.stdin?.write("export\n");
      const exported = await originEv("exported");
      origin.stdin?.write("bye\n");
      const tExported = performance.now();
      const { record, extra } = recordFromJson(JSON.stringify(exported));
      const { conn: c, snapshot: snap } = adoptFromKernel(stack, driver.now(), record);
      driver.flush();
      const moveMs = performance.now() - t0;
      const from = Number(extra["from"]);
      const consumed = Number(extra["consumed"]);
      const d = snap.delegated;
      const facts = JSON.stringify({
        label,
        full,
        unread: record.recvQueue.length,
        sendQueue: record.sendQueue.length,
        unsent: record.unsent,
        inFlight: Seq.delta(d.sndMax, d.sndUna),
        from,
        consumed,
        moveMs,
        steps: {
          steerMs: tSteered - t0,
          exportMs: tExported - tSteered,
          adoptMs: performance.now() - tExported,
        },
      });
      t.diagnostic(facts);
      assert.equal(d.state, "ESTABLISHED", facts);
      assert.ok(record.recvQueue.length >= UNREAD_AT_MOVE, `over 1 MiB unread moves: ${facts}`);
      assert.ok(record.sendQueue.length > 0, `unacknowledged data moves: ${facts}`);
      assert.ok(consumed + record.recvQueue.length < PEER_BYTES, `the peer still sending: ${facts}`);
      assert.ok(from < HOST_BYTES, `our direction mid-transfer: ${facts}`);

      // Our application: reads everything, writes the rest of the stream from `from`, then closes.
      const peerStream = payload(PEER_BYTES, PEER_SEED);
      const hostStream = payload(HOST_BYTES, HOST_SEED);
      const readParts: Uint8Array[] = [];
      let read = 0;
      let handed = from;
      let closed = false;
      const want = PEER_BYTES - consumed;
      const due = Date.now() + 60_000;
      await new Promise<void>((resolve, reject) => {
        pump = setInterval(() => {
          try {
            if (Date.now() > due)
              throw new Error(`not done in 60 s: read ${read}/${want}, handed ${handed}, ${label}`);
            for (let b = stack.recv(driver.now(), c); b !== undefined; b = stack.recv(driver.now(), c)) {
              readParts.push(b.slice());
              read += b.length;
            }
            if (handed < HOST_BYTES)
              handed += stack.send(
                driver.now(),
                c,
                hostStream.subarray(handed, Math.min(HOST_BYTES, handed + WRITE_CHUNK)),
              );
            else if (!closed) {
              stack.close(driver.now(), c);
              closed = true;
            }
            driver.flush();
            if (closed && read >= want) {
              clearInterval(pump);
              resolve();
            }
          } catch (e) {
            clearInterval(pump);
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        }, 2);
      });
      const peerDone = await peerEv("done", 60_000);
      const done = JSON.stringify({ facts, peerDone, read });
      const got = Buffer.concat(readParts);
      // Peer to us: the kernel application's prefix, then the kernel's unread data first, then
      // the rest; each byte once.
      assert.equal(extra["consumedSha"], sha256(peerStream.subarray(0, consumed)), `the prefix: ${done}`);
      assert.equal(
        got.subarray(0, record.recvQueue.length).equals(Buffer.from(record.recvQueue)),
        true,
        `the kernel's unread data is read first: ${done}`,
      );
      assert.equal(got.length, want, done);
      assert.equal(sha256(got), sha256(peerStream.subarray(consumed)), `peer to us: ${done}`);
      // Us to peer: the kernel's part then ours.
      assert.equal(peerDone["recvLen"], HOST_BYTES, done);
      assert.equal(peerDone["recvSha"], sha256(hostStream), `us to peer: ${done}`);
      await Promise.all([exited(origin), exited(peer)]);

      const hostTcp = tcpCounters({ ns: hostNs });
      const peerTcp = tcpCounters({ ns: peerNs });
      const counters = JSON.stringify({ hostTcp, peerTcp, ourRsts: stack.stats.rstsSent, label });
      assert.equal(stack.stats.rstsSent, 0, `no RST from our stack: ${counters}`);
      assert.deepEqual(rstFrames(frames), [], `no RST crossed our side of the link: ${counters}`);
      assert.equal(hostTcp["OutRsts"], 0, `no RST from the host namespace's kernel: ${counters}`);
      assert.equal(peerTcp["OutRsts"], 0, `no RST from the peer: ${counters}`);
      assert.equal(peerTcp["EstabResets"], 0, `the peer's connection was never reset: ${counters}`);
      // The kernel counts closing an ESTABLISHED socket without a FIN exchange (the silent close
      // in repair mode) as an "established reset" although it sends nothing: exactly that one.
      assert.equal(hostTcp["EstabResets"], 1, `only the silent close of the exported socket: ${counters}`);
      assert.equal(hostTcp["CurrEstab"], 0, counters);
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
