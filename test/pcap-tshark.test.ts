// Wireshark must read our captures: every frame, nothing malformed, no bad checksum. The
// traffic is a generated TCP conversation (IPv4 and IPv6, Ethernet and raw IP) that crosses a
// simulated link with a pcap tap. tshark is required: the test fails, not skips, without it.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { buildDuplexLink } from "../src/sim/link.js";
import { Prng } from "../src/sim/prng.js";
import { Scheduler } from "../src/sim/scheduler.js";
import { Seq } from "../src/wire/seq.js";
import { Instant } from "../src/time/instant.js";
import { internetChecksum, pseudoHeaderSum } from "../src/wire/checksum.js";
import { type IpAddr, parseIp } from "../src/wire/ip-addr.js";
import { type PcapLinkTypeNumber, PcapLinkType, PcapWriter, parsePcap } from "../src/wire/pcap.js";
import { emitTcpPacket } from "../src/wire/packet.js";
import { TcpFlag, type TcpRepr } from "../src/wire/tcp-repr.js";
import { readPcapFile, type TempCaptureDir, tempCaptureDir, writePcapFile } from "./support/pcap-file.js";

const TSHARK = "/usr/bin/tshark";

const ip = (text: string): IpAddr => {
  const r = parseIp(text);
  assert.ok(r.ok, text);
  return r.value;
};
const MAC_A = Uint8Array.of(0x02, 0, 0, 0, 0, 0x0a);
const MAC_B = Uint8Array.of(0x02, 0, 0, 0, 0, 0x0b);

/** What we put on the wire, to compare with what tshark reports. */
interface Sent {
  readonly src: string;
  readonly srcPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly len: number;
}

const TEMPLATE: TcpRepr = {
  srcPort: 0,
  dstPort: 0,
  seq: Seq.of(0),
  ack: Seq.of(0),
  flags: TcpFlag.ACK,
  window: 64240,
  urgent: 0,
  mss: undefined,
  windowScale: undefined,
  sackPermitted: false,
  sack: [],
  timestamps: undefined,
  unknownOptions: [],
  payload: new Uint8Array(0),
};

/** One TCP/IP packet (an Ethernet frame when `ethernet`), built by the project's emitter. */
function buildFrame(src: IpAddr, dst: IpAddr, tcp: TcpRepr, ethernet: boolean): Uint8Array {
  const fromA = src[src.length - 1] === 1;
  return emitTcpPacket({
    ip: { src, dst, ident: (tcp.seq ^ tcp.srcPort) & 0xffff, flowLabel: 0x12345 },
    tcp,
    ethernet: ethernet ? { src: fromA ? MAC_A : MAC_B, dst: fromA ? MAC_B : MAC_A } : undefined,
  });
}

/**
 * A whole conversation per address family (handshake with options, data both ways, a SACK,
 * FIN exchange), sent through a simulated link that taps every frame into a pcap.
 */
function captureConversation(
  linkType: PcapLinkTypeNumber,
  byteOrder: "little" | "big",
): {
  bytes: Uint8Array;
  sent: Sent[];
} {
  const ethernet = linkType === PcapLinkType.ETHERNET;
  const sched = new Scheduler();
  const writer = new PcapWriter({ linkType, byteOrder });
  const sink = { deliver: () => {} };
  const link = buildDuplexLink(sink, sink, {
    scheduler: sched,
    prng: new Prng(2024),
    profile: { delayUs: 1500, jitterUs: 200, rateBps: 50_000_000 },
    pcap: writer,
  });
  const rng = new Prng(99);
  const sent: Sent[] = [];
  let at = 0;
  const families: [string, string][] = [
    ["192.0.2.1", "192.0.2.2"],
    ["2001:db8::1", "2001:db8::2"],
  ];
  for (const [aText, bText] of families) {
    const a = ip(aText);
    const b = ip(bText);
    const issA = 0xfffff000 + rng.below(0x800); // wraps during the transfer
    const issB = rng.nextU32();
    let sndA = issA;
    let sndB = issB;
    const send = (fromA: boolean, seg: Partial<TcpRepr>): void => {
      const tcp: TcpRepr = {
        ...TEMPLATE,
        srcPort: fromA ? 40000 : 8080,
        dstPort: fromA ? 8080 : 40000,
        ...seg,
      };
      const frame = buildFrame(fromA ? a : b, fromA ? b : a, tcp, ethernet);
      sent.push({
        src: fromA ? aText : bText,
        srcPort: tcp.srcPort,
        seq: tcp.seq,
        ack: tcp.ack,
        flags: tcp.flags,
        len: tcp.payload.length,
      });
      const chain = fromA ? link.aToB : link.bToA;
      sched.at(Instant.fromMicros(at), "tx", () => {
        chain.deliver(sched.now, frame);
      });
      at += 300;
    };
    const payload = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.below(256));
    send(true, {
      flags: TcpFlag.SYN,
      seq: Seq.of(sndA),
      mss: 1460,
      windowScale: 7,
      sackPermitted: true,
      timestamps: { tsVal: 1000, tsEcr: 0 },
    });
    send(false, {
      flags: TcpFlag.SYN | TcpFlag.ACK,
      seq: Seq.of(sndB),
      ack: Seq.of(sndA + 1),
      mss: 1440,
      windowScale: 9,
      sackPermitted: true,
      timestamps: { tsVal: 5000, tsEcr: 1000 },
    });
    sndA += 1;
    sndB += 1;
    send(true, { seq: Seq.of(sndA), ack: Seq.of(sndB) });
    for (const n of [100, 1448, 1448, 7, 1000]) {
      send(true, {
        flags: TcpFlag.ACK | TcpFlag.PSH,
        seq: Seq.of(sndA),
        ack: Seq.of(sndB),
        payload: payload(n),
      });
      sndA += n;
    }
    // The peer acknowledges part and SACKs a later block, then answers with data.
    send(false, {
      seq: Seq.of(sndB),
      ack: Seq.of(sndA - 1007),
      sack: [{ left: Seq.of(sndA - 1000), right: Seq.of(sndA) }],
      timestamps: { tsVal: 5010, tsEcr: 1010 },
    });
    send(false, {
      flags: TcpFlag.ACK | TcpFlag.PSH,
      seq: Seq.of(sndB),
      ack: Seq.of(sndA),
      payload: payload(512),
    });
    sndB += 512;
    send(true, { flags: TcpFlag.ACK | TcpFlag.FIN, seq: Seq.of(sndA), ack: Seq.of(sndB) });
    sndA += 1;
    send(false, { flags: TcpFlag.ACK | TcpFlag.FIN, seq: Seq.of(sndB), ack: Seq.of(sndA) });
    sndB += 1;
    send(true, { seq: Seq.of(sndA), ack: Seq.of(sndB) });
  }
  assert.ok(sched.runUntilIdle(10_000));
  return { bytes: writer.toBytes(), sent };
}

/** Runs tshark; stdout split into non-empty lines. */
function tshark(args: string[]): string[] {
  const out = execFileSync(TSHARK, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 30_000,
  });
  return out.split("\n").filter((l) => l !== "");
}
const CHECKSUMS = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"];
/** Frames Wireshark finds malformed or with a checksum it marks bad (status 0). */
const BAD_FILTER = "_ws.malformed || tcp.checksum.status == 0 || ip.checksum.status == 0";
/** Numbers of the frames matching a display filter, with checksum validation on. */
const badFrames = (file: string, filter: string): string[] =>
  tshark(["-r", file, ...CHECKSUMS, "-Y", filter, "-T", "fields", "-e", "frame.number"]);

void describe("tshark reads our pcap files", () => {
  let tmp: TempCaptureDir;
  before(() => {
    tmp = tempCaptureDir();
  });
  after(() => {
    tmp.cleanup();
  });

  void test("tshark is installed (required, never skipped)", () => {
    assert.ok(existsSync(TSHARK), `${TSHARK} is missing: install the tshark package`);
  });

  for (const [name, linkType, byteOrder] of [
    ["ethernet, little-endian", PcapLinkType.ETHERNET, "little"],
    ["raw IP, big-endian", PcapLinkType.RAW, "big"],
  ] as const) {
    void test(`${name}: every frame decodes to what we sent, none malformed, all checksums good`, () => {
      const { bytes, sent } = captureConversation(linkType, byteOrder);
      const file = tmp.file(`${linkType}-${byteOrder}.pcap`);
      writePcapFile(file, bytes);
      const ours = readPcapFile(file);
      assert.equal(ours.records.length, sent.length);

      const rows = tshark([
        "-r",
        file,
        ...CHECKSUMS,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-e",
        "frame.len",
        "-e",
        "frame.time_epoch",
        "-e",
        "ip.src",
        "-e",
        "ipv6.src",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.seq_raw",
        "-e",
        "tcp.ack_raw",
        "-e",
        "tcp.flags",
        "-e",
        "tcp.len",
        "-e",
        "tcp.checksum.status",
        "-e",
        "ip.checksum.status",
      ]).map((l) => l.split("|"));
      assert.equal(rows.length, ours.records.length, "tshark saw every frame");
      // The link keeps order, so frames appear in the order sent within each direction; match
      // each tshark row to the capture record in the same position.
      const bySrcAndSeq = new Map(sent.map((s) => [`${s.src} ${s.seq} ${s.flags} ${s.len}`, s]));
      rows.forEach((cols, i) => {
        const [len, epoch, ip4src, ip6src, sport, seq, ack, flags, tcpLen, tcpSum, ipSum] = cols;
        const rec = ours.records[i]!;
        assert.equal(Number(len), rec.origLen, `frame ${i + 1} length`);
        assert.equal(Math.round(Number(epoch) * 1e6), rec.time, `frame ${i + 1} time`);
        const src = ip4src !== "" ? ip4src : ip6src;
        const key = `${src} ${seq} ${Number(flags)} ${tcpLen}`;
        const s = bySrcAndSeq.get(key);
        assert.ok(s !== undefined, `frame ${i + 1}: tshark decoded ${key}, which we never sent`);
        assert.equal(Number(sport), s.srcPort);
        assert.equal(Number(ack), s.ack);
        assert.equal(tcpSum, "1", `frame ${i + 1}: TCP checksum status ${tcpSum}`);
        if (src?.includes(".")) assert.equal(ipSum, "1", `frame ${i + 1}: IP checksum status ${ipSum}`);
      });
      // One filter for all three: malformed, bad TCP checksum, bad IPv4 header checksum.
      assert.deepEqual(badFrames(file, BAD_FILTER), []);
    });
  }

  void test("the checks catch a broken capture (so the tests above can fail)", () => {
    const { bytes } = captureConversation(PcapLinkType.RAW, "little");
    const cap = parsePcap(bytes);
    assert.ok(cap.ok);
    const recs = cap.value.records;
    const tcpStart = (d: Uint8Array): number => (d[0]! >> 4 === 4 ? 20 : 40);
    // Frame numbers (1-based) to damage: a TCP checksum, an IPv4 header checksum, and a TCP
    // header whose data offset (60) runs past the segment, which needs a segment under 60 bytes.
    const badTcp = 4;
    const badIp = 6;
    const malformed = 1 + recs.findIndex((r, i) => i >= 6 && r.data.length - tcpStart(r.data) < 60);
    assert.ok(malformed > 6 && recs[badIp - 1]!.data[0]! >> 4 === 4);
    const rebuilt = new PcapWriter({ linkType: PcapLinkType.RAW });
    recs.forEach((r, i) => {
      const data = r.data.slice();
      const tcpAt = tcpStart(data);
      if (i + 1 === badTcp) data[data.length - 1]! ^= 0x01; // TCP checksum no longer matches
      if (i + 1 === badIp) data[8]! ^= 0x01; // TTL changed: IPv4 header checksum wrong
      if (i + 1 === malformed) {
        // Fix the checksum up after the change so that being malformed is the only fault.
        data[tcpAt + 12] = 0xf0;
        data.fill(0, tcpAt + 16, tcpAt + 18);
        const [src, dst] =
          tcpAt === 20 ? [data.slice(12, 16), data.slice(16, 20)] : [data.slice(8, 24), data.slice(24, 40)];
        const pseudo = pseudoHeaderSum(src, dst, 6, data.length - tcpAt);
        new DataView(data.buffer).setUint16(tcpAt + 16, internetChecksum(data, tcpAt, data.length, pseudo));
      }
      rebuilt.append(r.time, data);
    });
    const file = tmp.file("broken.pcap");
    writePcapFile(file, rebuilt);
    // Each part of BAD_FILTER catches its own kind of damage, and the whole catches all three.
    const nums = (...n: number[]): string[] => n.map(String);
    assert.deepEqual(badFrames(file, "_ws.malformed"), nums(malformed));
    assert.deepEqual(
      badFrames(file, "tcp.checksum.status == 0 || ip.checksum.status == 0"),
      nums(badTcp, badIp),
    );
    assert.deepEqual(badFrames(file, BAD_FILTER), nums(badTcp, badIp, malformed));
  });
});
