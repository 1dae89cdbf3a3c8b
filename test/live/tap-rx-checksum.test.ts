// Receive checksum offload in the TAP addon: as it reads a frame, the addon verifies the IP
// header and TCP checksums and flags the frame, and the stack then skips its own check. The flag
// must never be set on a frame our decoder would reject: checked against the decoder on random
// TCP frames (IPv4, IPv6, 802.1Q) with random damage. Live, the kernel's segments arrive flagged.
// Needs the addon; the live part needs root (a namespace and a TAP device), like every live test.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { loadTapAddon } from "../../src/device/native.js";
import { type LiveHost, startLiveHost } from "../../src/live/live-host.js";
import { killTree, LIVE_ADDRS } from "../../src/live/netns.js";
import { ip } from "../../src/wire/ip-addr.js";
import { emitTcpPacket, decodeFrame } from "../../src/wire/packet.js";
import { TcpFlag } from "../../src/wire/tcp-repr.js";
import { Seq } from "../../src/wire/seq.js";
import { downloadFromKernel, payload, sha256, startKernelServer } from "../support/live.js";

const SEED = Number(process.env["FC_SEED"] ?? 0x7c5);
const addon = loadTapAddon();

const MAC_A = new Uint8Array([0x42, 0x18, 0x7a, 0x9c, 0x47, 0x2a]);
const MAC_B = new Uint8Array([0xb6, 0x51, 0xee, 0x05, 0xe3, 0x27]);

/** A TCP frame with valid checksums: IPv4 or IPv6, with or without a VLAN tag. */
const frameArb = fc
  .record({
    v6: fc.boolean(),
    vlan: fc.boolean(),
    len: fc.integer({ min: 0, max: 3000 }),
    byte: fc.integer({ min: 0, max: 255 }),
    seq: fc.integer({ min: 0, max: 0xffffffff }),
    ts: fc.boolean(),
  })
  .map(({ v6, vlan, len, byte, seq, ts }) =>
    emitTcpPacket({
      ip: v6
        ? { src: ip("2001:db8::1"), dst: ip("2001:db8::2") }
        : { src: ip("192.0.2.1"), dst: ip("192.0.2.2"), ident: seq & 0xffff },
      tcp: {
        srcPort: 40000 + (seq % 1000),
        dstPort: 80,
        seq: Seq.of(seq >>> 0),
        ack: Seq.of(1),
        flags: TcpFlag.ACK,
        window: 512,
        urgent: 0,
        mss: undefined,
        windowScale: undefined,
        sackPermitted: false,
        sack: [],
        timestamps: ts ? { tsVal: seq, tsEcr: 7 } : undefined,
        unknownOptions: [],
        payload: new Uint8Array(len).map((_, i) => (i * 31 + byte) & 0xff),
      },
      ethernet: {
        src: MAC_A,
        dst: MAC_B,
        vlan: vlan ? { id: 7, priority: 0, dropEligible: false } : undefined,
      },
    }),
  );

/** True when our decoder takes `f` as TCP with every checksum verified good. */
function decoderAccepts(f: Uint8Array): boolean {
  const p = decodeFrame(f);
  return p.error === undefined && p.transport?.kind === "tcp";
}

void describe("TAP receive checksum offload", () => {
  void test("an intact TCP frame verifies; a damaged one is flagged only if the decoder accepts it too", () => {
    fc.assert(
      fc.property(
        frameArb,
        fc.integer({ min: 0, max: 1 << 30 }),
        fc.integer({ min: 0, max: 7 }),
        (f, at, bit) => {
          assert.equal(addon.tcpChecksumOk(f), true, "intact frame not verified");
          assert.equal(decoderAccepts(f), true);
          const bad = f.slice();
          const i = at % bad.length;
          bad[i] = (bad[i] ?? 0) ^ (1 << bit);
          if (addon.tcpChecksumOk(bad))
            assert.equal(
              decoderAccepts(bad),
              true,
              `flagged a frame the decoder rejects (byte ${i} bit ${bit})`,
            );
          // Damage to a checksummed byte or a length must be noticed: all of an IPv4 packet; of an
          // IPv6 one, all but the first word (version, traffic class, flow label) and the hop limit.
          const ipAt = f[12] === 0x81 ? 18 : 14;
          const v6 = f[ipAt - 2] === 0x86;
          const covered = i >= ipAt && !(v6 && (i < ipAt + 4 || i === ipAt + 7));
          if (covered) assert.equal(addon.tcpChecksumOk(bad), false, `byte ${i} bit ${bit} went unnoticed`);
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });

  void test("fragments, truncated frames and non-TCP frames are not flagged (the stack checks them)", () => {
    const v4 = frameArb.filter((x) => x[12] === 0x08 && x[13] === 0x00 && x.length > 60);
    for (const f of fc.sample(v4, { seed: SEED, numRuns: 20 })) {
      assert.equal(addon.tcpChecksumOk(f), true);
      const frag = f.slice();
      frag[14 + 6] = (frag[14 + 6] ?? 0) | 0x20; // MF; the header checksum now fails too
      assert.equal(addon.tcpChecksumOk(frag), false, "fragment");
      assert.equal(addon.tcpChecksumOk(f.subarray(0, f.length - 1)), false, "truncated");
      const udp = f.slice();
      udp[14 + 9] = 17;
      assert.equal(addon.tcpChecksumOk(udp), false, "UDP");
    }
    assert.equal(addon.tcpChecksumOk(new Uint8Array(10)), false, "runt");
    assert.equal(addon.tcpChecksumOk(new Uint8Array(0)), false, "empty");
  });
});

void describe("TAP receive checksum offload, live", () => {
  let host: LiveHost;
  let server: ChildProcess;
  before(async () => {
    host = startLiveHost({ tag: "rxck", seed: SEED, offload: "off" });
    server = await startKernelServer(host, 9400);
  });
  after(() => {
    killTree(server);
    host.close();
  });

  void test("the kernel's segments arrive verified and the stack drops none for a checksum", async () => {
    const before = host.netns.tap.stats.verifiedIn;
    const got = await downloadFromKernel(host, LIVE_ADDRS.kernel4, 9400, 4 << 20, 3);
    assert.equal(got.sha, sha256(payload(4 << 20, 3)));
    const s = host.netns.tap.stats;
    const verified = s.verifiedIn - before;
    assert.ok(verified >= (4 << 20) / 1500, `only ${verified} of ${s.framesIn} frames verified by the addon`);
    assert.ok(
      s.framesIn - s.verifiedIn < 50,
      `${s.framesIn - s.verifiedIn} frames left for the stack to verify`,
    );
    assert.equal(host.stack.stats.dropBadChecksum, 0);
  });
});
