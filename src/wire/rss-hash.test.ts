import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hex } from "./hex.js";
import { ip } from "./ip-addr.js";
import { decodeFrame, emitTcpPacket } from "./packet.js";
import { frameRssHash, rssTupleHash } from "./rss-hash.js";
import { LINUX_SAMPLES } from "./samples.js";
import type { TcpRepr } from "./tcp-repr.js";

/** The RSS verification suite (NDIS "Verifying the RSS Hash Calculation", NIC datasheets). */
const SUITE: readonly (readonly [src: string, sport: number, dst: string, dport: number, hash: number])[] = [
  ["66.9.149.187", 2794, "161.142.100.80", 1766, 0x51ccc178],
  ["199.92.111.2", 14230, "65.69.140.83", 4739, 0xc626b0ea],
  ["24.19.198.95", 12898, "12.22.207.184", 38024, 0x5c2b394a],
  ["38.27.205.30", 48228, "209.142.163.6", 2217, 0xafc7327f],
  ["153.39.163.191", 44251, "202.188.127.2", 1303, 0x10e828a2],
  ["3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766, 0x40207d3d],
  ["3ffe:501:8::260:97ff:fe40:efab", 14230, "ff02::1", 4739, 0xdde51bbf],
  ["3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, "fe80::200:f8ff:fe21:67cf", 38024, 0x02d1feef],
];

void describe("RSS hash (Toeplitz, default key)", () => {
  void test("matches the verification suite for IPv4 and IPv6 with TCP", () => {
    for (const [src, sport, dst, dport, want] of SUITE) {
      const got = rssTupleHash(ip(src), ip(dst), sport, dport);
      assert.equal(got.toString(16), want.toString(16), `${src}:${sport} -> ${dst}:${dport}`);
    }
  });

  void test("a frame hashes as its 4-tuple; anything but unfragmented TCP does not hash", () => {
    const tcp = decodeFrame(hex(LINUX_SAMPLES.syn4)).transport;
    assert.ok(tcp?.kind === "tcp");
    for (const [src, sport, dst, dport, want] of SUITE) {
      const seg: TcpRepr = { ...tcp.tcp, srcPort: sport, dstPort: dport };
      const f = emitTcpPacket({
        ip: { src: ip(src), dst: ip(dst) },
        tcp: seg,
        ethernet: { src: new Uint8Array(6), dst: new Uint8Array(6) },
      });
      assert.equal(frameRssHash(f), want, `${src}:${sport} -> ${dst}:${dport}`);
      const reply = emitTcpPacket({
        ip: { src: ip(dst), dst: ip(src) },
        tcp: { ...seg, srcPort: dport, dstPort: sport },
        ethernet: { src: new Uint8Array(6), dst: new Uint8Array(6) },
      });
      assert.equal(frameRssHash(reply, undefined, true), want, `reply of ${src}:${sport} -> ${dst}:${dport}`);
      const tagged = emitTcpPacket({
        ip: { src: ip(src), dst: ip(dst) },
        tcp: seg,
        ethernet: {
          src: new Uint8Array(6),
          dst: new Uint8Array(6),
          vlan: { id: 7, priority: 3, dropEligible: false },
        },
      });
      assert.equal(frameRssHash(tagged), want, `802.1Q: ${src}:${sport} -> ${dst}:${dport}`);
    }
    const f = emitTcpPacket({
      ip: { src: ip("192.0.2.1"), dst: ip("192.0.2.2") },
      tcp: tcp.tcp,
      ethernet: { src: new Uint8Array(6), dst: new Uint8Array(6) },
    });
    const frag = f.slice();
    frag[14 + 6] = 0x20; // more fragments
    assert.equal(frameRssHash(frag), -1);
    const udp = f.slice();
    udp[14 + 9] = 17;
    assert.equal(frameRssHash(udp), -1);
    const arp = f.slice();
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert.equal(frameRssHash(arp), -1);
    assert.equal(frameRssHash(f.subarray(0, 30)), -1, "a truncated frame");
  });
});
