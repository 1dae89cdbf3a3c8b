/**
 * Bulk transfer between two host stacks over a lossless in-memory link, in wall-clock time,
 * against Node's kernel TCP over loopback measured in the same run (the ratio is the figure).
 * Frames move between the stacks synchronously (no scheduler, no copies beyond the stacks' own);
 * checksums are off, as on the kernel's loopback device, and on in one MTU 1500 case (as on the
 * live TAP link). Also: CPU time per GB and memory per idle established connection.
 */
import { createConnection, createServer, type AddressInfo } from "node:net";
import { HostStack, type HostConn, type StackEvent } from "../src/host/stack.js";
import { Prng } from "../src/sim/prng.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Duration, Instant } from "../src/time/instant.js";
import { ChecksumCapabilities } from "../src/wire/checksum.js";
import { mac } from "../src/wire/ethernet.js";
import { ip } from "../src/wire/ip-addr.js";

function host(n: number, mtu: number, seed: number, checksums = false): HostStack {
  return new HostStack({
    interfaces: [
      {
        name: "eth0",
        link: "ethernet",
        mac: mac(`02:00:00:00:00:0${n}`),
        // The kernel's loopback MTU is 65536, but an IPv4 packet is at most 65535 bytes.
        mtu: Math.min(mtu, 65535),
        addresses: [{ addr: ip(`192.0.2.${n}`), prefixLen: 24 }],
        checksum: checksums ? ChecksumCapabilities.ALL : ChecksumCapabilities.NONE,
      },
    ],
    tcp: tcpConfig({
      mss: Math.min(mtu, 65535) - 40,
      sendBufferSize: 4 << 20,
      recvBufferSize: 4 << 20,
      delayedAck: Duration.ZERO,
    }),
    random: new Prng(seed),
  });
}

/** Moves `bytes` from a to b; returns wall-clock seconds and CPU seconds. */
function stackTransfer(mtu: number, bytes: number, checksums = false): { seconds: number; cpu: number } {
  const a = host(1, mtu, 1, checksums);
  const b = host(2, mtu, 2, checksums);
  let now = Instant.ZERO;
  const chunk = new Uint8Array(256 * 1024);
  let sent = 0;
  let received = 0;
  let server: HostConn | undefined;
  b.listen(80);
  const write = () => {
    while (sent < bytes) {
      const n = a.send(now, client, chunk.subarray(0, Math.min(chunk.length, bytes - sent)));
      if (n === 0) break;
      sent += n;
    }
  };
  const read = () => {
    if (server === undefined) return;
    for (let d = b.recv(now, server); d !== undefined; d = b.recv(now, server)) received += d.length;
  };
  const onA = (ev: StackEvent) => {
    if (ev.kind === "conn" && (ev.event.kind === "connected" || ev.event.kind === "writable")) write();
  };
  const onB = (ev: StackEvent) => {
    if (ev.kind === "accept") server = b.accept(ev.listener);
    else if (ev.kind === "conn" && ev.event.kind === "readable") read();
  };
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const client = a.connect(now, ip("192.0.2.2"), 80);
  for (let spins = 0; received < bytes; spins++) {
    let moved = false;
    for (let f = a.pollTransmit(now); f !== undefined; f = a.pollTransmit(now)) {
      b.handleFrame(now, 0, f.frame);
      moved = true;
    }
    for (let e = a.pollEvent(); e !== undefined; e = a.pollEvent()) onA(e);
    for (let f = b.pollTransmit(now); f !== undefined; f = b.pollTransmit(now)) {
      a.handleFrame(now, 0, f.frame);
      moved = true;
    }
    for (let e = b.pollEvent(); e !== undefined; e = b.pollEvent()) onB(e);
    if (!moved) {
      // Idle: let virtual time reach the next deadline (delayed ACK, persist, ...).
      const t = Instant.earliest(a.pollTimeout(), b.pollTimeout());
      if (t === undefined) throw new Error(`stalled after ${received} of ${bytes} bytes`);
      now = t > now ? t : Instant.fromMicros(now + 1);
      a.handleTimeout(now);
      b.handleTimeout(now);
    }
    if (spins > 50_000_000) throw new Error("no progress");
  }

  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cu = process.cpuUsage(c0);
  return { seconds, cpu: (cu.user + cu.system) / 1e6 };
}

/** Node's kernel TCP over loopback: one connection, `bytes` one way. */
async function kernelTransfer(bytes: number): Promise<{ seconds: number; cpu: number }> {
  return await new Promise((resolve, reject) => {
    const server = createServer((sock) => {
      let got = 0;
      sock.on("data", (d: Buffer) => {
        got += d.length;
        if (got >= bytes) {
          const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
          const cu = process.cpuUsage(c0);
          sock.destroy();
          server.close();
          resolve({ seconds, cpu: (cu.user + cu.system) / 1e6 });
        }
      });
    });
    let t0 = 0n;
    let c0 = process.cpuUsage();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as AddressInfo).port;
      const chunk = Buffer.alloc(256 * 1024);
      const sock = createConnection({ host: "127.0.0.1", port }, () => {
        t0 = process.hrtime.bigint();
        c0 = process.cpuUsage();
        let sent = 0;
        const pump = () => {
          while (sent < bytes) {
            sent += chunk.length;
            if (!sock.write(chunk)) {
              sock.once("drain", pump);
              return;
            }
          }
          sock.end();
        };
        pump();
      });
      sock.on("error", reject);
    });
  });
}

/** Heap bytes per established, idle connection (both ends counted separately). */
function idleConnectionMemory(count: number): number {
  const a = host(1, 1500, 3);
  const b = host(2, 1500, 4);
  b.listen(80, undefined, count + 1);
  const now = Instant.ZERO;
  const pump = () => {
    for (let moved = true; moved; ) {
      moved = false;
      for (let f = a.pollTransmit(now); f !== undefined; f = a.pollTransmit(now)) {
        b.handleFrame(now, 0, f.frame);
        moved = true;
      }
      while (a.pollEvent() !== undefined);
      for (let f = b.pollTransmit(now); f !== undefined; f = b.pollTransmit(now)) {
        a.handleFrame(now, 0, f.frame);
        moved = true;
      }
      for (let e = b.pollEvent(); e !== undefined; e = b.pollEvent())
        if (e.kind === "accept") b.accept(e.listener);
    }
  };
  // Resolve ARP first (packets waiting for resolution are bounded), then open in batches
  // smaller than the listener's SYN queue.
  a.connect(now, ip("192.0.2.2"), 80);
  pump();
  globalThis.gc?.();
  const before = process.memoryUsage().heapUsed;
  for (let i = 1; i < count; i++) {
    a.connect(now, ip("192.0.2.2"), 80);
    if (i % 128 === 0) pump();
  }
  pump();
  globalThis.gc?.();
  const after = process.memoryUsage().heapUsed;
  let established = 0;
  for (const c of a.connections()) if (c.tcp?.state === "ESTABLISHED") established++;
  for (const c of b.connections()) if (c.tcp?.state === "ESTABLISHED") established++;
  if (established !== 2 * count) throw new Error(`only ${established} of ${2 * count} ends established`);

  return (after - before) / (2 * count);
}

/** Runs the stack benchmarks whose names match `filter`. */
export async function run(filter: RegExp | undefined): Promise<void> {
  const want = (name: string) => filter === undefined || filter.test(name);
  const MB = 1 << 20;
  const bytes = 256 * MB;
  if (want("stack/bulk")) {
    const rows: string[][] = [];
    await kernelTransfer(16 * MB); // warm up
    const kernel = await kernelTransfer(bytes);
    const gbps = (s: number) => ((bytes * 8) / s / 1e9).toFixed(2);
    rows.push([
      "kernel loopback (node:net)",
      gbps(kernel.seconds),
      "1.00x",
      (kernel.cpu / (bytes / 1e9)).toFixed(2),
    ]);
    for (const [mtu, checksums] of [
      [65536, false],
      [1500, false],
      [1500, true],
    ] as const) {
      stackTransfer(mtu, 16 * MB, checksums); // warm up
      const r = stackTransfer(mtu, bytes, checksums);
      rows.push([
        `chimney stacks, MTU ${mtu}${checksums ? ", checksums" : ""}`,
        gbps(r.seconds),
        `${(kernel.seconds / r.seconds).toFixed(2)}x`,
        (r.cpu / (bytes / 1e9)).toFixed(2),
      ]);
    }
    console.log(`stack/bulk: ${bytes / MB} MiB one way, one connection, lossless in-memory link`);
    console.log("  case                                      Gbit/s  vs kernel  CPU s/GB");
    for (const [name, g, ratio, cpu] of rows) {
      console.log(`  ${name!.padEnd(41)} ${g!.padStart(6)}  ${ratio!.padStart(9)}  ${cpu!.padStart(8)}`);
    }
  }
  if (want("stack/idle-memory")) {
    const per = idleConnectionMemory(10_000);
    console.log(
      `stack/idle-memory: ${Math.round(per)} bytes of heap per idle established connection (10,000 pairs; target < 4096)`,
    );
  }
}
