/**
 * The far end of `worker/storm` (storm.bench.ts) on a thread of its own: a host-only stack with
 * servers that accept the storm's connections, write 1 KiB on each when told, and say when the
 * target has acknowledged it. Frames cross to the host thread by `postMessage`.
 *
 * Why a thread: on the host's thread, the peer's 100,000 connections doubled the heap the host's
 * collector walks at every scavenge (a cost per heap page, in a storm of 45 scavenges), which a
 * host facing a real network does not carry.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { TcpConnection } from "../src/tcp/connection.js";
import { segmentHost } from "../src/sim/segment-host.js";
import { Prng } from "../src/sim/prng.js";
import { RealTimeDriver } from "../src/socket/driver.js";
import { NetStack } from "../src/socket/net-stack.js";
import type { Socket } from "../src/socket/socket.js";
import { tcpConfig } from "../src/tcp/config.js";
import {
  batchedTransmit,
  type PeerInit,
  type PeerReply,
  type PeerRequest,
  peerKey,
} from "./storm-protocol.js";

const port = parentPort;
if (port === null) throw new Error("storm-peer.js runs only as a worker thread");
const init = workerData as PeerInit;
const stack = segmentHost(2, { tcp: tcpConfig(init.tcp), random: new Prng(init.seed) });
const driver = new RealTimeDriver(stack, {
  transmit: batchedTransmit((frames) => port.postMessage({ k: "frames", frames } satisfies PeerReply)),
});
const net = new NetStack(driver, { hosts: init.hosts });
const peers = new Map<number, Socket>();
let engines: Map<number, TcpConnection> | undefined;

const reply = (id: number, value: number | boolean): void => {
  port.postMessage({ k: "reply", id, value } satisfies PeerReply);
};

port.on("message", (m: PeerRequest) => {
  switch (m.k) {
    case "frames":
      driver.receiveBatch(0, m.frames);
      return;
    case "listen": {
      let left = m.ports.length;
      for (const p of m.ports) {
        const server = net.createServer((s) => {
          peers.set(peerKey(s.remotePort, s.localPort), s);
        });
        server.listen({ port: p, backlog: 4096, maxEstablished: m.max }, () => {
          if (--left === 0) reply(m.id, true);
        });
      }
      return;
    }
    case "accepted":
      reply(m.id, peers.size);
      return;
    case "write": {
      const data = new Uint8Array(m.bytes).fill(5);
      for (const k of m.keys) peers.get(k)?.write(data);
      driver.flush();
      reply(m.id, true);
      return;
    }
    case "acked": {
      engines ??= new Map(
        [...stack.connections()].map((c) => [peerKey(c.remotePort, c.localPort), c.engine]),
      );
      let all = true;
      for (const k of m.keys) {
        const e = engines.get(k);
        if (e === undefined || e.sndUna !== e.status().sndMax) {
          all = false;
          break;
        }
      }
      reply(m.id, all);
      return;
    }
  }
});
