// The packet matcher's numbers, as packetdrill maps them: the peer's sequence numbers count from
// its first SYN, ours from the SYN we send (less the script's number in that SYN); fast open
// cookies written as a symbol take the value the command line defines.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type PdPacket, type PdTcpPacket, parsePacketdrill, selectEvents } from "../packetdrill/index.js";
import { Seq } from "../../wire/seq.js";
import { BLANK_TCP, TcpFlag, type TcpRepr } from "../../wire/tcp-repr.js";
import { decodeIpPacket, type DecodedPacket, emitTcpPacket } from "../../wire/packet.js";
import { ip } from "../../wire/ip-addr.js";
import { coalesceRun, inboundEcn, PacketMatcher } from "./matcher.js";
import type { LenientRuleName } from "./policy.js";

/** The TCP packets of a script, in order. */
function packets(text: string): PdTcpPacket[] {
  const r = parsePacketdrill(text);
  assert.ok(r.ok, r.ok ? "" : String(r.error));
  const out: PdTcpPacket[] = [];
  for (const ev of selectEvents(r.value)) {
    if (ev.kind !== "packet") continue;
    const p: PdPacket = ev.packet;
    assert.equal(p.protocol, "tcp");
    out.push(p);
  }
  return out;
}

function matcher(defines?: ReadonlyMap<string, string>): PacketMatcher {
  return new PacketMatcher({
    strict: true,
    rules: new Set<LenientRuleName>(),
    unsupported: (f) => {
      throw new Error(`unsupported: ${f}`);
    },
    defines,
  });
}

function sent(over: Partial<TcpRepr>): TcpRepr {
  return { ...BLANK_TCP, srcPort: 8080, dstPort: 47321, flags: TcpFlag.ACK, window: 65535, ...over };
}

void test("the peer's numbers count from its first SYN, ours from the SYN we send; a later SYN is absolute", () => {
  const [syn, synAck, ack, data, ourAck, lateSyn] = packets(`
0 < S 999000:999040(40) win 32792 <mss 1460>
+0 > S. 1234:1234(0) ack 999041 <mss 1460>
+0 < . 41:41(0) ack 1 win 100
+0 < P. 41:141(100) ack 1 win 100
+0 > . 1:1(0) ack 141
+0 < S 5000:5000(0) win 100
`) as [PdTcpPacket, PdTcpPacket, PdTcpPacket, PdTcpPacket, PdTcpPacket, PdTcpPacket];
  const m = matcher();
  assert.equal(m.inboundTcp(syn).seq, Seq.of(999000));
  // The kernel picked ISN 70000 for its SYN-ACK, which the script writes as 1234.
  assert.deepEqual(
    m.compareTcp(
      synAck,
      sent({ flags: TcpFlag.SYN | TcpFlag.ACK, seq: Seq.of(70_000), ack: Seq.of(999_041), mss: 1460 }),
    ),
    [],
  );
  const a = m.inboundTcp(ack);
  assert.equal(a.seq, Seq.of(999_041), "41 counts from the peer's ISN");
  assert.equal(a.ack, Seq.of(70_001), "ack 1 counts from our live ISN, not from 70000 - 1234");
  assert.equal(m.inboundTcp(data).seq, Seq.of(999_041));
  assert.deepEqual(m.compareTcp(ourAck, sent({ seq: Seq.of(70_001), ack: Seq.of(999_141) })), []);
  assert.deepEqual(m.compareTcp(ourAck, sent({ seq: Seq.of(70_001), ack: Seq.of(999_140) })), [
    "ack want 141 got 140",
  ]);
  assert.equal(m.inboundTcp(lateSyn).seq, Seq.of(5000), "a SYN is absolute and keeps the peer's ISN");
  assert.equal(m.inboundTcp(data).seq, Seq.of(999_041));
});

void test("fast open cookies: a symbol takes its defined value, FOEXP carries the 0xF989 magic, an undefined symbol is unsupported", () => {
  const [foSyn, expSyn, synAck] = packets(`
0 < S 0:10(10) win 32792 <mss 1460,FO TFO_COOKIE,nop,nop>
+0 < S 0:10(10) win 32792 <mss 1460,FOEXP abcd,nop,nop>
+0 > S. 0:0(0) ack 1 <mss 1460,FO TFO_COOKIE,nop,nop>
`) as [PdTcpPacket, PdTcpPacket, PdTcpPacket];
  const m = matcher(new Map([["TFO_COOKIE", "3021b9d889017eeb"]]));
  const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
  assert.deepEqual(
    m.inboundTcp(foSyn).unknownOptions.map((o) => [o.kind, hex(o.data)]),
    [[34, "3021b9d889017eeb"]],
  );
  assert.deepEqual(
    m.inboundTcp(expSyn).unknownOptions.map((o) => [o.kind, hex(o.data)]),
    [[254, "f989abcd"]],
  );
  const cookie = Uint8Array.from(Buffer.from("3021b9d889017eeb", "hex"));
  const g = sent({ flags: TcpFlag.SYN | TcpFlag.ACK, ack: Seq.of(1), mss: 1460 });
  assert.deepEqual(m.compareTcp(synAck, { ...g, unknownOptions: [{ kind: 34, data: cookie }] }), []);
  assert.deepEqual(m.compareTcp(synAck, g), ["FO want 3021b9d889017eeb got none"]);
  assert.throws(() => matcher().inboundTcp(foSyn), /unsupported: fast-open/);
});

void test("window-size-policy: another non-zero window passes only within the receive buffer, at the shift both SYNs offered", () => {
  const [syn, synAck, ack, ourAck] = packets(`
0 < S 0:0(0) win 32792 <mss 1460,wscale 7>
+0 > S. 0:0(0) ack 1 win 65535 <mss 1460,wscale 2>
+0 < . 1:1(0) ack 1 win 257
+0 > . 1:1(0) ack 1 win 250
`) as [PdTcpPacket, PdTcpPacket, PdTcpPacket, PdTcpPacket];
  const rules = new Set<LenientRuleName>();
  const m = new PacketMatcher({
    strict: false,
    rules,
    unsupported: (f) => {
      throw new Error(`unsupported: ${f}`);
    },
    receiveBuffer: () => 1000,
  });
  m.inboundTcp(syn);
  const ours = sent({
    flags: TcpFlag.SYN | TcpFlag.ACK,
    seq: Seq.of(9),
    ack: Seq.of(1),
    mss: 1460,
    windowScale: 2,
  });
  // A SYN-ACK's window is not scaled: at most min(65535, buffer).
  assert.deepEqual(m.compareTcp(synAck, { ...ours, window: 1000 }), []);
  assert.deepEqual(m.compareTcp(synAck, { ...ours, window: 1001 }), [
    "win want 65535 got 1001, beyond the receive buffer (at most 1000)",
  ]);
  m.inboundTcp(ack);
  // Later windows are scaled by 4: 250 * 4 = 1000 fits, 251 does not; zero stays zero.
  assert.deepEqual(m.compareTcp(ourAck, sent({ seq: Seq.of(10), ack: Seq.of(1), window: 200 })), []);
  assert.deepEqual(m.compareTcp(ourAck, sent({ seq: Seq.of(10), ack: Seq.of(1), window: 251 })), [
    "win want 250 got 251, beyond the receive buffer (at most 250)",
  ]);
  assert.deepEqual(m.compareTcp(ourAck, sent({ seq: Seq.of(10), ack: Seq.of(1), window: 0 })), [
    "win want 250 got 0",
  ]);
  assert.ok(rules.has("window-size-policy"));
  // Without the peer's offer there is no scaling: 1000 is the limit of the field itself.
  const [plainSyn] = packets("0 < S 0:0(0) win 32792 <mss 1460>\n") as [PdTcpPacket];
  m.newConnection();
  m.inboundTcp(plainSyn);
  m.compareTcp(synAck, { ...ours, window: 1000 });
  assert.deepEqual(m.compareTcp(ourAck, sent({ seq: Seq.of(10), ack: Seq.of(1), window: 1000 })), []);
  assert.equal(m.compareTcp(ourAck, sent({ seq: Seq.of(10), ack: Seq.of(1), window: 1001 })).length, 1);
});

void test("RFC 3168 annotations: an inbound packet goes with its codepoint; an outbound one is checked only when annotated", () => {
  const [syn, synAck, ce, ectData, plain, either] = packets(`
0 < SEW 0:0(0) win 32792 <mss 1460>
+0 > SE. 0:0(0) ack 1 <mss 1460>
+0 <[ce] P. 1:11(10) ack 1 win 100
+0 >[ect0] P. 1:11(10) ack 11
+0 > . 11:11(0) ack 11
+0 >[ect01] P. 11:21(10) ack 11
`) as [PdTcpPacket, PdTcpPacket, PdTcpPacket, PdTcpPacket, PdTcpPacket, PdTcpPacket];
  assert.equal(inboundEcn(syn), 0, "no annotation: not-ECT");
  assert.equal(inboundEcn(ce), 3);
  const m = matcher();
  m.inboundTcp(syn);
  const withEcn = (ecn: number): DecodedPacket =>
    decodeIpPacket(
      emitTcpPacket({ ip: { src: ip("192.0.2.1"), dst: ip("192.0.2.2"), ecn }, tcp: BLANK_TCP }),
    );
  assert.deepEqual(
    m.compareTcp(
      synAck,
      sent({ flags: TcpFlag.SYN | TcpFlag.ACK | TcpFlag.ECE, seq: Seq.of(7), ack: Seq.of(1), mss: 1460 }),
      withEcn(0),
    ),
    [],
  );
  m.inboundTcp(ce);
  const data = sent({
    flags: TcpFlag.PSH | TcpFlag.ACK,
    seq: Seq.of(8),
    ack: Seq.of(11),
    payload: new Uint8Array(10),
  });
  assert.deepEqual(m.compareTcp(ectData, data, withEcn(2)), []);
  assert.deepEqual(m.compareTcp(ectData, data, withEcn(0)), ["ecn want ect0 got noecn"]);
  assert.deepEqual(m.compareTcp(ectData, data, withEcn(3)), ["ecn want ect0 got ce"]);
  assert.deepEqual(
    m.compareTcp(plain, sent({ seq: Seq.of(18), ack: Seq.of(11) }), withEcn(2)),
    [],
    "not annotated: not checked",
  );
  const more = sent({
    flags: TcpFlag.PSH | TcpFlag.ACK,
    seq: Seq.of(18),
    ack: Seq.of(11),
    payload: new Uint8Array(10),
  });
  assert.deepEqual(m.compareTcp(either, more, withEcn(1)), []);
  assert.deepEqual(m.compareTcp(either, more, withEcn(2)), []);
  assert.deepEqual(m.compareTcp(either, more, withEcn(0)), ["ecn want ect01 got noecn"]);
});

/** Runs `coalesceRun` over `pieces` (the first and what follows it) for a segment of `want` bytes. */
function coalesce(
  pieces: readonly TcpRepr[],
  want: number,
): { seg: TcpRepr; taken: number; rules: string[] } {
  const rules = new Set<LenientRuleName>();
  let next = 1;
  const seg = coalesceRun(
    pieces[0] as TcpRepr,
    want,
    rules,
    () => pieces[next],
    () => {
      next++;
    },
  );
  return { seg, taken: next - 1, rules: [...rules] };
}

void test("TSO pieces merge as packetdrill aggregates them: the last piece's flags, the first's CWR, equal pieces but the last", () => {
  const seq = Seq.of(1000);
  const at = (off: number, len: number, flags: number): TcpRepr =>
    sent({ seq: Seq.add(seq, off), flags, payload: new Uint8Array(len) });
  const PA = TcpFlag.PSH | TcpFlag.ACK;
  // Linux 6.18, nagle/sendmsg_msg_more.pkt: 2000 bytes with PSH, then 1000 without; packetdrill
  // passes the script's "> . 801:3801(3000)".
  const a = coalesce([at(0, 2000, PA), at(2000, 1000, TcpFlag.ACK)], 3000);
  assert.equal(a.seg.payload.length, 3000);
  assert.equal(a.seg.flags, TcpFlag.ACK, "a PSH on the first piece is not the burst's");
  assert.deepEqual(a.rules, ["tso-coalescing"]);
  const b = coalesce([at(0, 1000, TcpFlag.ACK), at(1000, 1000, PA)], 2000);
  assert.equal(b.seg.flags, PA, "the last piece's PSH is the burst's");
  const c = coalesce([at(0, 1000, TcpFlag.ACK | TcpFlag.CWR), at(1000, 1000, TcpFlag.ACK)], 2000);
  assert.equal(c.seg.flags, TcpFlag.ACK | TcpFlag.CWR, "CWR is the first piece's");
  // A middle piece shorter than the one before it ends the run (packetdrill's fragment check).
  const d = coalesce([at(0, 2000, TcpFlag.ACK), at(2000, 1000, TcpFlag.ACK), at(3000, 1000, PA)], 4000);
  assert.equal(d.taken, 0);
  assert.equal(d.seg.payload.length, 2000);
  // No merge past a FIN, or past the length the script expects.
  const e = coalesce([at(0, 1000, TcpFlag.ACK | TcpFlag.FIN), at(1000, 1000, TcpFlag.ACK)], 2000);
  assert.equal(e.taken, 0);
  const f = coalesce([at(0, 1000, TcpFlag.ACK), at(1000, 2000, TcpFlag.ACK)], 2000);
  assert.equal(f.taken, 0);
  assert.deepEqual(f.rules, []);
});
