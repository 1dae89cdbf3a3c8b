// The kernel hand-off's foundation, kernel to kernel: a connection between two network
// namespaces is frozen on the host side with TCP_REPAIR (1 MB unread in its receive queue, data
// in flight and data never sent in its send queue), exported, closed silently and imported into a
// new socket; then both ends read the rest. Every byte arrives exactly once and in order (sha256
// of both streams) and neither namespace sends an RST. Needs root and the repair addon.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { events, tcpCounters } from "./support/helper-events.js";
import { kernelTestSkip } from "./support/kernel-topology.js";
import { createNsPair, exited, ip, type NsHost, type NsPair } from "./support/netns.js";
import type { KernelTcpRecord, RepairAddon } from "../src/device/repair.js";
import { KernelForwarder } from "../src/live/kernel-move.js";
import { ip as ip4 } from "../src/wire/ip-addr.js";
import { emitTcpPacket } from "../src/wire/packet.js";
import { Seq } from "../src/wire/seq.js";
import { TcpFlag } from "../src/wire/tcp-repr.js";

const skip = kernelTestSkip();
const HELPER = join(dirname(fileURLToPath(import.meta.url)), "support", "repair-helper.js");
const PORT = 5071;
const PEER_PRE = 1 << 20;
const PEER_POST = 256 * 1024;
const HOST_PRE = 128 * 1024;
const HOST_POST = 256 * 1024;

function tc(host: NsHost, ...args: string[]): void {
  execFileSync("ip", ["netns", "exec", host.ns, "tc", ...args], { stdio: ["ignore", "ignore", "pipe"] });
}

void describe("kernel hand-off: TCP_REPAIR export and import, kernel to kernel", { skip }, () => {
  for (const via of ["record", "snapshot"] as const) {
    const how = via === "record" ? "" : " (the record through our engine's snapshot and back)";
    void test(`1 MB unread, data in flight and unsent: every byte once, in order, no RST${how}`, async (t) => {
      let pair: NsPair | undefined;
      const children: ChildProcess[] = [];
      try {
        pair = createNsPair("repair");
        const { a: hostNs, b: peerNs } = pair;
        // An initial window of 64 segments: the host's first flight fills the peer's 64 KiB window.
        ip("-n", hostNs.ns, "route", "add", `${peerNs.ip4}/32`, "dev", hostNs.dev, "initcwnd", "64");
        const peer = pair.spawnIn(peerNs, process.execPath, [
          HELPER,
          "peer",
          `${PORT}`,
          `${PEER_PRE}`,
          `${PEER_POST}`,
        ]);
        children.push(peer);
        const peerEv = events(peer, "peer");
        await peerEv("listening");
        const host = pair.spawnIn(hostNs, process.execPath, [
          HELPER,
          "host",
          peerNs.ip4,
          `${PORT}`,
          `${HOST_PRE}`,
          `${HOST_POST}`,
          `${PEER_PRE}`,
          via,
        ]);
        children.push(host);
        const hostEv = events(host, "host");
        await hostEv("connected");
        await peerEv("sent");
        const received = await hostEv("received");
        assert.equal(received["unread"], PEER_PRE, "the host has the peer's 1 MB unread");
        // From now on the peer's kernel never sees the host's segments: what the host sends stays
        // unacknowledged (in flight) and the rest of its queue stays unsent.
        // (No gact or netem here: the filter redirects them to a veth that is down, which drops them.)
        ip("-n", peerNs.ns, "link", "add", "hold0", "type", "veth", "peer", "name", "hold1");
        tc(peerNs, "qdisc", "add", "dev", peerNs.dev, "clsact");
        tc(
          peerNs,
          ...["filter", "add", "dev", peerNs.dev, "ingress", "protocol", "ip", "u32"],
          ...[
            "match",
            "ip",
            "protocol",
            "6",
            "0xff",
            "action",
            "mirred",
            "egress",
            "redirect",
            "dev",
            "hold0",
          ],
        );
        host.stdin?.write("write\n");
        const written = await hostEv("written");
        host.stdin?.write("move\n");
        const moved = await hostEv("moved");
        const sendQueue = Number(moved["sendQueue"]);
        const unsent = Number(moved["unsent"]);
        const facts = JSON.stringify({ written, moved });
        t.diagnostic(facts);
        assert.equal(moved["unread"], PEER_PRE, `the export read the whole receive queue: ${facts}`);
        assert.equal(sendQueue, HOST_PRE, `the export read the whole send queue: ${facts}`);
        assert.ok(sendQueue - unsent >= 60 * 1024, `about 64 KB in flight: ${facts}`);
        assert.ok(unsent >= 60 * 1024, `about 64 KB never sent: ${facts}`);
        assert.deepEqual(
          moved["imported"],
          { unread: PEER_PRE, queued: HOST_PRE, unsent },
          `the imported socket holds the same queues: ${facts}`,
        );
        const sndMss = moved["sndMss"] as { before: number; after: number };
        assert.ok(sndMss.before > 1000, `precondition: full-sized segments before the move: ${facts}`);
        assert.equal(
          sndMss.after,
          sndMss.before,
          `the imported socket sends segments of the same size: ${facts}`,
        );
        tc(peerNs, "qdisc", "del", "dev", peerNs.dev, "clsact");
        peer.stdin?.write("resume\n");
        const [hostDone, peerDone] = await Promise.all([hostEv("done", 30_000), peerEv("done", 30_000)]);
        assert.equal(hostDone["recvLen"], PEER_PRE + PEER_POST);
        assert.equal(peerDone["recvLen"], HOST_PRE + HOST_POST);
        assert.equal(hostDone["recvSha"], peerDone["sentSha"], "peer to host: every byte once, in order");
        assert.equal(peerDone["recvSha"], hostDone["sentSha"], "host to peer: every byte once, in order");
        await Promise.all([exited(host), exited(peer)]);
        const hostTcp = tcpCounters(hostNs);
        const peerTcp = tcpCounters(peerNs);
        assert.equal(hostTcp["OutRsts"], 0, `no RST from the host namespace: ${JSON.stringify(hostTcp)}`);
        assert.equal(peerTcp["OutRsts"], 0, `no RST from the peer namespace: ${JSON.stringify(peerTcp)}`);
        assert.equal(peerTcp["AttemptFails"], 0);
        // Closing a socket in repair mode goes straight from ESTABLISHED to CLOSE, which the
        // kernel counts as an EstabReset (without sending anything): exactly the one silent close.
        assert.equal(hostTcp["EstabResets"], 1, `only the silent close: ${JSON.stringify(hostTcp)}`);
        assert.equal(peerTcp["EstabResets"], 0, `the connection was never reset: ${JSON.stringify(peerTcp)}`);
      } finally {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
        pair?.close();
      }
    });
  }

  void test("bytes the socket transmits while it is exported count as sent: the peer never holds bytes the record calls unsent", async (t) => {
    let pair: NsPair | undefined;
    let child: ChildProcess | undefined;
    try {
      pair = createNsPair("race");
      child = pair.spawnIn(pair.a, process.execPath, [HELPER, "race", `${PORT}`]);
      const r = await events(child, "race")("race");
      t.diagnostic(JSON.stringify(r));
      const facts = JSON.stringify(r);
      const n = (k: string): number => r[k] as number;
      assert.ok(n("leftDuring") > 0, `precondition: the client transmitted during the export: ${facts}`);
      assert.ok(n("queued") > n("received"), `precondition: the client still held bytes: ${facts}`);
      // Had the record called those bytes unsent, the peer's ACK for them would lie beyond the
      // new owner's SND.NXT: dropped, and the connection stalls for good.
      assert.ok(n("received") <= n("sentEnd"), `the peer has bytes the record calls unsent: ${facts}`);
      assert.equal(await exited(child), 0);
    } finally {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      pair?.close();
    }
  });

  void test("wrong records are refused with RepairError, and the right one still imports", async (t) => {
    let pair: NsPair | undefined;
    let child: ChildProcess | undefined;
    try {
      pair = createNsPair("refuse");
      child = pair.spawnIn(pair.a, process.execPath, [HELPER, "refusals", `${PORT}`]);
      const ev = events(child, "refusals");
      const r = await ev("refusals");
      t.diagnostic(JSON.stringify(r));
      const facts = JSON.stringify(r);
      const state = r["state"] as { rcvNxt: number; window: { rcvWup: number } };
      assert.equal(
        state.window.rcvWup,
        state.rcvNxt,
        `precondition: RCV.WUP = RCV.NXT after the ACKs: ${facts}`,
      );
      const refused = (name: string, call: string, errnoName: string) =>
        assert.deepEqual(r[name], { ok: false, code: "ERR_REPAIR", call, errnoName }, `${name}: ${facts}`);
      refused("listener", "setsockopt(TCP_REPAIR)", "EPERM");
      refused("whileExportedOpen", "connect", "EADDRNOTAVAIL");
      refused("maxWindowBelowSndWnd", "setsockopt(TCP_REPAIR_WINDOW)", "EINVAL");
      refused("rcvNxtMinusOne", "setsockopt(TCP_REPAIR_WINDOW)", "EINVAL");
      refused("unsentBeyondQueue", "importKernelTcp", "EINVAL");
      // RCV.NXT one too far is not a window the kernel can tell from a right one: it imports.
      assert.deepEqual(r["rcvNxtPlusOne"], { ok: true, result: "imported" }, facts);
      const done = await ev("done");
      assert.deepEqual(done, { ev: "done", clientIntact: true, serverIntact: true });
      assert.equal(await exited(child), 0);
    } finally {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      pair?.close();
    }
  });
});

void describe("KernelForwarder", { skip }, () => {
  void test("hands the connection's frames to the kernel, and after swallow() takes and drops them", () => {
    const pair = createNsPair("fwd");
    try {
      const sent: Uint8Array[] = [];
      const addon = {
        rawSocketIn: () => 1000,
        sendIp: (_fd: number, p: Uint8Array) => {
          sent.push(p);
        },
        close: () => undefined,
      } as unknown as RepairAddon;
      const record = {
        family: 4,
        local: { address: "192.0.2.2", port: 40000 },
        remote: { address: "192.0.2.1", port: 5080 },
      } as KernelTcpRecord;
      const side = { ns: pair.b.ns, outer: "veth-b", tap: "tap0", pref: 10 };
      const f = new KernelForwarder(side, record, addon);
      const frame = (srcPort: number) =>
        emitTcpPacket({
          ip: { src: ip4("192.0.2.1"), dst: ip4("192.0.2.2") },
          tcp: {
            srcPort,
            dstPort: 40000,
            seq: Seq.of(1),
            ack: Seq.of(1),
            flags: TcpFlag.ACK,
            window: 512,
            urgent: 0,
            mss: undefined,
            windowScale: undefined,
            sackPermitted: false,
            sack: [],
            timestamps: undefined,
            unknownOptions: [],
            payload: new Uint8Array(100),
          },
          ethernet: { src: new Uint8Array(6), dst: new Uint8Array(6), vlan: undefined },
        });
      assert.equal(f.take(frame(5080)), true, "the connection's frame is taken");
      assert.equal(f.take(frame(5081)), false, "another connection's frame is not");
      assert.equal(sent.length, 1);
      assert.equal(f.forwarded, 1);
      f.swallow();
      assert.equal(f.take(frame(5080)), true, "still taken (our stack must not see it either)");
      assert.equal(sent.length, 1, "but not handed to the kernel");
      assert.deepEqual([f.forwarded, f.swallowed], [1, 1]);
      f.close();
    } finally {
      pair.close();
    }
  });
});
