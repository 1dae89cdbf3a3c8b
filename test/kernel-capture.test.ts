// Test vectors from real packets: the Linux kernel's own TCP traffic (IPv4 and IPv6, with ARP
// and neighbor discovery) is captured in a pair of namespaces this test creates, and our
// decoding of every frame is checked field by field against tshark's decoding of the same file.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ipToString } from "../src/wire/ip-addr.js";
import { ChecksumCapabilities } from "../src/wire/checksum.js";
import { macToString } from "../src/wire/ethernet.js";
import { type DecodedPacket, decodeFrame } from "../src/wire/packet.js";
import { TcpFlag } from "../src/wire/tcp-repr.js";
import { captureKernelTraffic, tsharkFields } from "./support/capture.js";
import { readPcapFile } from "./support/pcap-file.js";
import { rmSync } from "node:fs";
import { dirname } from "node:path";

/** tshark field -> what our decoding says, as tshark prints it ("" when absent). */
const FIELDS: [string, (p: DecodedPacket) => string][] = [
  ["eth.src", (p) => (p.ethernet ? macToString(p.ethernet.src) : "")],
  ["eth.dst", (p) => (p.ethernet ? macToString(p.ethernet.dst) : "")],
  ["arp.opcode", (p) => (p.network?.kind === "arp" ? String(opcode(p.network.arp.operation)) : "")],
  [
    "arp.src.proto_ipv4",
    (p) => (p.network?.kind === "arp" ? ipToString(p.network.arp.senderProtocolAddr) : ""),
  ],
  [
    "arp.dst.proto_ipv4",
    (p) => (p.network?.kind === "arp" ? ipToString(p.network.arp.targetProtocolAddr) : ""),
  ],
  ["ip.src", (p) => (p.network?.kind === "ipv4" ? ipToString(p.network.ipv4.src) : "")],
  ["ip.dst", (p) => (p.network?.kind === "ipv4" ? ipToString(p.network.ipv4.dst) : "")],
  ["ip.ttl", (p) => (p.network?.kind === "ipv4" ? String(p.network.ipv4.ttl) : "")],
  ["ip.id", (p) => (p.network?.kind === "ipv4" ? hex(p.network.ipv4.ident, 4) : "")],
  ["ip.flags.df", (p) => (p.network?.kind === "ipv4" ? (p.network.ipv4.dontFragment ? "1" : "0") : "")],
  ["ipv6.src", (p) => (p.network?.kind === "ipv6" ? ipToString(p.network.ipv6.src) : "")],
  ["ipv6.dst", (p) => (p.network?.kind === "ipv6" ? ipToString(p.network.ipv6.dst) : "")],
  ["ipv6.hlim", (p) => (p.network?.kind === "ipv6" ? String(p.network.ipv6.hopLimit) : "")],
  ["ipv6.flow", (p) => (p.network?.kind === "ipv6" ? hex(p.network.ipv6.flowLabel, 6) : "")],
  ["tcp.srcport", (p) => tcp(p, (t) => String(t.srcPort))],
  ["tcp.dstport", (p) => tcp(p, (t) => String(t.dstPort))],
  ["tcp.seq_raw", (p) => tcp(p, (t) => String(t.seq))],
  ["tcp.ack_raw", (p) => tcp(p, (t) => String(t.ack))],
  ["tcp.flags", (p) => tcp(p, (t) => hex(t.flags, 4))],
  ["tcp.window_size_value", (p) => tcp(p, (t) => String(t.window))],
  ["tcp.len", (p) => tcp(p, (t) => String(t.payload.length))],
  ["tcp.options.mss_val", (p) => tcp(p, (t) => (t.mss === undefined ? "" : String(t.mss)))],
  [
    "tcp.options.wscale.shift",
    (p) => tcp(p, (t) => (t.windowScale === undefined ? "" : String(t.windowScale))),
  ],
  ["tcp.options.sack_perm", (p) => tcp(p, (t) => (t.sackPermitted ? "0402" : ""))],
  ["tcp.options.timestamp.tsval", (p) => tcp(p, (t) => (t.timestamps ? String(t.timestamps.tsVal) : ""))],
  ["tcp.options.timestamp.tsecr", (p) => tcp(p, (t) => (t.timestamps ? String(t.timestamps.tsEcr) : ""))],
  ["tcp.options.sack_le", (p) => tcp(p, (t) => t.sack.map((b) => String(b.left)).join(","))],
  ["icmpv6.type", (p) => (p.transport?.kind === "icmpv6" ? String(icmpv6Type(p)) : "")],
  ["icmpv6.nd.ns.target_address", (p) => nd(p, "neighbor-solicitation")],
  ["icmpv6.nd.na.target_address", (p) => nd(p, "neighbor-advertisement")],
];

function tcp(p: DecodedPacket, f: (t: import("../src/wire/tcp-repr.js").TcpRepr) => string): string {
  return p.transport?.kind === "tcp" ? f(p.transport.tcp) : "";
}
function hex(n: number, digits: number): string {
  return `0x${n.toString(16).padStart(digits, "0")}`;
}
function opcode(op: string | number): number {
  return op === "request" ? 1 : op === "reply" ? 2 : Number(op);
}
function icmpv6Type(p: DecodedPacket): number {
  if (p.transport?.kind !== "icmpv6") return -1;
  const types: Record<string, number> = {
    "neighbor-solicitation": 135,
    "neighbor-advertisement": 136,
    "router-solicitation": 133,
    "router-advertisement": 134,
    "echo-request": 128,
    "echo-reply": 129,
  };
  const t = p.transport.icmp;
  return types[t.type] ?? (t.type === "other" ? t.rawType : -1);
}
function nd(p: DecodedPacket, type: string): string {
  if (p.transport?.kind !== "icmpv6") return "";
  const m = p.transport.icmp;
  return m.type === type && "target" in m ? ipToString(m.target) : "";
}

void describe("decoding the Linux kernel's own traffic agrees with tshark", () => {
  let file = "";
  before(async () => {
    file = await captureKernelTraffic(300_000);
  });
  after(() => {
    if (file !== "") rmSync(dirname(file), { recursive: true, force: true });
  });

  void test("every field of every frame matches tshark's decode", () => {
    const capture = readPcapFile(file);
    // SACK edges have no raw field: absolute sequence numbers for them (the kernel SACKs when
    // the machine is loaded enough to drop or reorder on the veth pair).
    const rows = tsharkFields(
      file,
      FIELDS.map(([f]) => f),
      ["-o", "tcp.relative_sequence_numbers:FALSE"],
    );
    assert.equal(rows.length, capture.records.length, "tshark and our reader see the same number of frames");
    assert.ok(rows.length > 40, `expected a real exchange, got ${rows.length} frames`);
    const seen = { arp: 0, ipv4: 0, ipv6: 0, syn: 0, nd: 0, ts: 0, wscale: 0, sackOk: 0 };
    capture.records.forEach((rec, i) => {
      // Checksums are left to the NIC on veth (the capture sees partial sums): fields only here.
      const p = decodeFrame(rec.data, ChecksumCapabilities.NONE);
      assert.equal(p.error, undefined, `frame ${i + 1}: ${JSON.stringify(p.error)}`);
      const row = rows[i]!;
      FIELDS.forEach(([name, ours], j) => {
        assert.equal(ours(p), row[j] ?? "", `frame ${i + 1} field ${name}`);
      });
      if (p.network?.kind === "arp") seen.arp++;
      if (p.network?.kind === "ipv4") seen.ipv4++;
      if (p.network?.kind === "ipv6") seen.ipv6++;
      if (p.transport?.kind === "icmpv6") seen.nd++;
      if (p.transport?.kind === "tcp") {
        const t = p.transport.tcp;
        if (t.flags & TcpFlag.SYN) seen.syn++;
        if (t.timestamps) seen.ts++;
        if (t.windowScale !== undefined) seen.wscale++;
        if (t.sackPermitted) seen.sackOk++;
      }
    });
    // The capture must exercise what the test claims to check.
    assert.ok(seen.arp >= 2 && seen.nd >= 2, `ARP ${seen.arp}, ND ${seen.nd}`);
    assert.ok(seen.ipv4 > 10 && seen.ipv6 > 10, `IPv4 ${seen.ipv4}, IPv6 ${seen.ipv6}`);
    assert.equal(seen.syn, 4, "two handshakes, SYN and SYN-ACK each");
    assert.equal(seen.wscale, 4);
    assert.equal(seen.sackOk, 4);
    assert.ok(seen.ts > 20);
  });

  void test("checksum verdicts agree with tshark's validation", () => {
    const capture = readPcapFile(file);
    const rows = tsharkFields(
      file,
      ["ip.checksum.status", "tcp.checksum.status", "icmpv6.checksum.status"],
      ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"],
    );
    let compared = 0;
    capture.records.forEach((rec, i) => {
      const p = decodeFrame(rec.data, ChecksumCapabilities.ALL);
      const [ipStatus, tcpStatus, icmpStatus] = rows[i]!;
      const want = (s: string | undefined) => (s === "1" ? "good" : s === "0" ? "bad" : undefined);
      if (p.network?.kind === "ipv4" && want(ipStatus) !== undefined) {
        assert.equal(p.network.checksum, want(ipStatus), `frame ${i + 1} IPv4 checksum`);
        compared++;
      }
      const t = p.transport;
      const tw = want(t?.kind === "tcp" ? tcpStatus : t?.kind === "icmpv6" ? icmpStatus : undefined);
      if (tw !== undefined) {
        const ours =
          p.error?.code === "bad-checksum" ? "bad" : t !== undefined && "checksum" in t ? t.checksum : "?";
        assert.equal(ours, tw, `frame ${i + 1} ${t?.kind} checksum`);
        compared++;
      }
    });
    assert.ok(compared > 40, `compared ${compared} checksums`);
  });
});
