import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Seq } from "./seq.js";
import { hex } from "./hex.js";
import { ip } from "./ip-addr.js";
import { decodeFrame, decodeIpPacket, emitIcmpv4Packet, emitIcmpv6Packet } from "./packet.js";
import { formatArp, formatPacket, formatTcp, formatTcpFlags, formatTcpOptions } from "./pretty.js";
import { LINUX_SAMPLES } from "./samples.js";
import { TcpFlag, type TcpRepr } from "./tcp-repr.js";

const SYN_ACK: TcpRepr = {
  srcPort: 80,
  dstPort: 49152,
  seq: Seq.of(100),
  ack: Seq.of(1),
  flags: TcpFlag.SYN | TcpFlag.ACK,
  window: 65535,
  urgent: 0,
  mss: 1460,
  windowScale: 7,
  sackPermitted: true,
  sack: [],
  timestamps: { tsVal: 1, tsEcr: 0 },
  unknownOptions: [],
  payload: new Uint8Array(0),
};

void describe("TCP lines", () => {
  void test("the reference line", () => {
    assert.equal(
      formatTcp(ip("192.0.2.1"), ip("192.0.2.2"), SYN_ACK),
      "192.0.2.1.80 > 192.0.2.2.49152: Flags [S.], seq 100, ack 1, win 65535, " +
        "options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0",
    );
  });

  void test("data, FIN, RST, URG, no flags; IPv6 addresses; SACK blocks", () => {
    const data = {
      ...SYN_ACK,
      flags: TcpFlag.PSH | TcpFlag.ACK,
      payload: new Uint8Array(10),
      mss: undefined,
      windowScale: undefined,
      sackPermitted: false,
      timestamps: undefined,
    };
    assert.equal(
      formatTcp(ip("2001:db8::1"), ip("2001:db8::2"), { ...data, seq: Seq.of(0xfffffffa) }),
      "2001:db8::1.80 > 2001:db8::2.49152: Flags [P.], seq 4294967290:4, ack 1, win 65535, length 10",
    );
    const sack = {
      ...data,
      flags: TcpFlag.ACK,
      payload: new Uint8Array(0),
      sack: [
        { left: Seq.of(5), right: Seq.of(9) },
        { left: Seq.of(11), right: Seq.of(12) },
      ],
    };
    assert.equal(
      formatTcp(ip("192.0.2.1"), ip("192.0.2.2"), sack),
      "192.0.2.1.80 > 192.0.2.2.49152: Flags [.], ack 1, win 65535, options [nop,nop,sack 2 {5:9}{11:12}], length 0",
    );
    assert.equal(
      formatTcp(ip("192.0.2.1"), ip("192.0.2.2"), {
        ...sack,
        sack: [],
        flags: TcpFlag.URG | TcpFlag.RST,
        urgent: 3,
      }),
      "192.0.2.1.80 > 192.0.2.2.49152: Flags [RU], seq 100, win 65535, urg 3, length 0",
    );
    assert.equal(formatTcpFlags(0), "none");
    assert.equal(formatTcpFlags(0xff), "FSRP.UEW");
  });

  void test("raw options: EOL, unknown kinds, broken lengths", () => {
    assert.equal(formatTcpOptions(hex("01 1e04abcd 00 0000")), "nop,opt-30:abcd,eol");
    assert.equal(formatTcpOptions(hex("0203 05")), "opt-2:05 [bad length]");
    assert.equal(formatTcpOptions(hex("0101 08")), "nop,nop,[bad opt]");
  });
});

void describe("whole packets", () => {
  const cases: [keyof typeof LINUX_SAMPLES, string][] = [
    [
      "syn4",
      "192.0.2.1.46172 > 192.0.2.2.47123: Flags [S], seq 1404071906, win 64240, options [mss 1460,sackOK,TS val 2703152289 ecr 0,nop,wscale 10], length 0",
    ],
    [
      "data6",
      "2001:db8::1.48380 > 2001:db8::2.47123: Flags [P.], seq 1094345567:1094345572, ack 2367526741, win 64, options [nop,nop,TS val 2486785283 ecr 2384062749], length 5",
    ],
    ["arpRequest", "ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28"],
    ["arpReply", "ARP, Reply 192.0.2.2 is-at b6:51:ee:05:e3:27, length 28"],
    [
      "neighborSolicitation",
      "2001:db8::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has 2001:db8::2, source link-address 42:18:7a:9c:47:2a, length 32",
    ],
    [
      "neighborAdvertisement",
      "2001:db8::2 > 2001:db8::1: ICMP6, neighbor advertisement, tgt is 2001:db8::2, Flags [solicited, override], target link-address b6:51:ee:05:e3:27, length 32",
    ],
    [
      "routerSolicitation",
      "fe80::b451:eeff:fe05:e327 > ff02::2: ICMP6, router solicitation, source link-address b6:51:ee:05:e3:27, length 16",
    ],
  ];
  for (const [name, line] of cases) {
    void test(name, () => {
      assert.equal(formatPacket(decodeFrame(hex(LINUX_SAMPLES[name]))), line);
    });
  }

  void test("the link layer on request, and errors at the end of the line", () => {
    const f = hex(LINUX_SAMPLES.arpRequest);
    assert.equal(
      formatPacket(decodeFrame(f), { link: true }),
      "42:18:7a:9c:47:2a > ff:ff:ff:ff:ff:ff, ARP, Request who-has 192.0.2.2 tell 192.0.2.1, length 28",
    );
    const bad = Object.assign(hex(LINUX_SAMPLES.syn4), { 60: 0 });
    assert.match(
      formatPacket(decodeFrame(bad)),
      /^192\.0\.2\.1\.46172 > .* length 0 \[tcp bad-checksum at 50\]$/,
    );
    assert.equal(formatPacket(decodeFrame(new Uint8Array(5))), "undecodable [ethernet truncated at 5]");
  });

  void test("ICMP errors name the flow they quote", () => {
    const quote = hex(LINUX_SAMPLES.syn4).subarray(14, 42);
    const ptb = emitIcmpv4Packet({
      ip: { src: ip("192.0.2.254"), dst: ip("192.0.2.1") },
      icmp: { type: "dst-unreachable", code: "frag-needed", nextHopMtu: 1400, quoted: quote },
    });
    assert.equal(
      formatPacket(decodeIpPacket(ptb)),
      "192.0.2.254 > 192.0.2.1: ICMP 192.0.2.2 unreachable - need to frag (mtu 1400), length 36",
    );
    const port = emitIcmpv4Packet({
      ip: { src: ip("192.0.2.2"), dst: ip("192.0.2.1") },
      icmp: { type: "dst-unreachable", code: "port-unreachable", nextHopMtu: undefined, quoted: quote },
    });
    assert.equal(
      formatPacket(decodeIpPacket(port)),
      "192.0.2.2 > 192.0.2.1: ICMP 192.0.2.2 tcp port 47123 unreachable, length 36",
    );
    const echo = emitIcmpv4Packet({
      ip: { src: ip("192.0.2.1"), dst: ip("192.0.2.2") },
      icmp: { type: "echo-request", ident: 1, seqNo: 2, data: new Uint8Array(56) },
    });
    assert.equal(
      formatPacket(decodeIpPacket(echo)),
      "192.0.2.1 > 192.0.2.2: ICMP echo request, id 1, seq 2, length 64",
    );
    const too = emitIcmpv6Packet({
      ip: { src: ip("2001:db8::fe"), dst: ip("2001:db8::1") },
      icmp: { type: "packet-too-big", mtu: 1280, quoted: hex(LINUX_SAMPLES.syn6).subarray(14, 62) },
    });
    assert.equal(
      formatPacket(decodeIpPacket(too)),
      "2001:db8::fe > 2001:db8::1: ICMP6, packet too big, mtu 1280, length 56",
    );
  });

  void test("an ARP request with a known target hardware address shows it", () => {
    const p = decodeFrame(hex(LINUX_SAMPLES.arpReply));
    assert.ok(p.network?.kind === "arp");
    assert.equal(
      formatArp({ ...p.network.arp, operation: "request" }),
      "ARP, Request who-has 192.0.2.1 (42:18:7a:9c:47:2a) tell 192.0.2.2, length 28",
    );
  });
});
