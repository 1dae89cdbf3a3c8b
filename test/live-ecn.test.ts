// ECN (RFC 3168) against the Linux kernel over the live link. Our client asks for ECN; the
// kernel (net.ipv4.tcp_ecn=2, its default: it accepts) agrees in its SYN-ACK. Its download to
// us crosses our bottleneck stage, 20 Mbit/s with a CE-marking router above 50 KB queued: the
// kernel's data comes ECT(0), we echo the CE marks with ECE, the kernel answers with CWR and
// backs off (Reno in its namespace), and the 300 KB queue never overflows. The bytes' sha256
// must match. Needs root (a network namespace and a TAP device).
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, test } from "node:test";
import type { LiveHost } from "../src/live/live-host.js";
import { killTree, LIVE_ADDRS } from "../src/live/netns.js";
import { decodeFrame } from "../src/wire/packet.js";
import { TcpFlag } from "../src/wire/tcp-repr.js";
import { downloadFromKernel, liveHttpHost, payload, sha256, startKernelServer } from "./support/live.js";

const N = 16 * 1024 * 1024;
const SEED = 3168;
const PORT = 9000;
const root = process.getuid?.() === 0;

/** What crossed our side of the link, by direction. */
interface Seen {
  synAckFlags: number | undefined;
  kernelEct0: number;
  kernelCe: number;
  kernelCwr: number;
  oursEce: number;
}

void describe("live: ECN with the Linux kernel through a marking bottleneck", {
  skip: root ? false : "needs root",
}, () => {
  let host: LiveHost;
  let server: ChildProcess;
  const seen: Seen = { synAckFlags: undefined, kernelEct0: 0, kernelCe: 0, kernelCwr: 0, oursEce: 0 };
  before(async () => {
    const h = await liveHttpHost({
      tag: "ecn",
      seed: SEED,
      tcp: { ecn: "on" },
      fromKernel: { rateBps: 20_000_000, queueBytes: 300_000, ceMarkBytes: 50_000, linkHeaderBytes: 14 },
      capture: (_us, frame) => {
        const p = decodeFrame(frame);
        const n = p.network;
        const t = p.transport;
        if (n?.kind !== "ipv4" || t?.kind !== "tcp") return;
        const fromKernel = t.tcp.srcPort === PORT;
        const f = t.tcp.flags;
        if (fromKernel) {
          if (f & TcpFlag.SYN) seen.synAckFlags = f;
          if (t.tcp.payload.length > 0 && n.ipv4.ecn === 2) seen.kernelEct0++;
          if (n.ipv4.ecn === 3) seen.kernelCe++;
          if (f & TcpFlag.CWR) seen.kernelCwr++;
        } else if (f & TcpFlag.ECE && !(f & TcpFlag.SYN)) {
          seen.oursEce++;
        }
      },
    });
    host = h.host;
    // Reno answers ECE by the book; this kernel's default, BBR, does not back off on ECN (and a
    // namespace may only pick an allowed control: reno or bbr here).
    await host.netns.exec("sysctl", ["-qw", "net.ipv4.tcp_congestion_control=reno"]);
    server = await startKernelServer(host, PORT);
  });
  after(() => {
    killTree(server);
    host.close();
  });

  void test("RFC 3168: negotiated with the kernel, CE echoed with ECE, the kernel's CWR, no overflow, sha256 intact", {
    timeout: 120_000,
  }, async () => {
    const got = await downloadFromKernel(host, LIVE_ADDRS.kernel4, PORT, N, SEED);
    assert.equal(got.count, N);
    assert.equal(got.sha, sha256(payload(N, SEED)), `seed ${SEED}: the bytes are the kernel's`);
    const label = `seed ${SEED}: ${JSON.stringify(seen)}`;
    assert.equal(
      (seen.synAckFlags ?? 0) & (TcpFlag.ECE | TcpFlag.CWR),
      TcpFlag.ECE,
      `${label}: the SYN-ACK agrees`,
    );
    assert.ok(seen.kernelEct0 > 0, `${label}: the kernel's data is ECT(0)`);
    assert.ok(seen.kernelCe > 0, `${label}: our router marked CE`);
    assert.ok(seen.oursEce > 0, `${label}: we echoed ECE`);
    assert.ok(seen.kernelCwr > 0, `${label}: the kernel answered with CWR`);
    const stats = host.stats().faults["kernel>ours"]?.["rate"] as
      | { dropped: number; ceMarked?: number }
      | undefined;
    assert.ok(stats !== undefined && (stats.ceMarked ?? 0) > 0, `${label}: ${JSON.stringify(stats)}`);
    assert.equal(stats.dropped, 0, `${label}: the kernel backed off before the queue overflowed`);
  });
});
