// Robustness: whatever a peer sends, in whatever order, with timers and user calls mixed in,
// the engine never throws and its invariants hold (RFC 9293 3.10.7: every input is judged,
// never trusted). fast-check with a fixed seed; set FC_SEED to explore.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Duration, Instant } from "../time/instant.js";
import { TcpFlag, type TcpRepr } from "../wire/tcp-repr.js";
import { tcpConfig } from "./config.js";
import { TcpConnection } from "./connection.js";
import { Seq } from "../wire/seq.js";

const SEED = Number(process.env["FC_SEED"] ?? 0xc0ffee);
const LOCAL_ISS = Seq.of(0xffff_ff00);
const REMOTE_ISS = Seq.of(0x7fff_fff0);

const BASE_SEG: TcpRepr = {
  srcPort: 2,
  dstPort: 1,
  seq: REMOTE_ISS,
  ack: LOCAL_ISS,
  flags: TcpFlag.SYN,
  window: 1000,
  urgent: 0,
  mss: 536,
  windowScale: 2,
  sackPermitted: true,
  sack: [],
  timestamps: { tsVal: 100, tsEcr: 0 },
  unknownOptions: [],
  payload: new Uint8Array(0),
};

const step = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      {
        k: fc.constant("seg" as const),
        dSeq: fc.oneof(fc.integer({ min: -2, max: 2 }), fc.integer({ min: -3000, max: 3000 })),
        dAck: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: -3000, max: 3000 })),
        flags: fc.oneof(
          { weight: 3, arbitrary: fc.constant(TcpFlag.ACK) },
          { weight: 1, arbitrary: fc.constant(TcpFlag.ACK | TcpFlag.FIN) },
          { weight: 2, arbitrary: fc.constant(TcpFlag.SYN | TcpFlag.ACK) },
          { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x3f }).map((f) => f & ~TcpFlag.RST) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x3f }) },
        ),
        len: fc.integer({ min: 0, max: 1500 }),
        window: fc.integer({ min: 0, max: 0xffff }),
        ts: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined }),
        sack: fc.array(fc.tuple(fc.integer({ min: -2000, max: 4000 }), fc.integer({ min: 0, max: 3000 })), {
          maxLength: 3,
        }),
      },
      { noNullPrototype: true },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record(
      { k: fc.constant("time" as const), ms: fc.integer({ min: 0, max: 3000 }) },
      { noNullPrototype: true },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record(
      { k: fc.constant("send" as const), n: fc.integer({ min: 0, max: 5000 }) },
      { noNullPrototype: true },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      { k: fc.constant("recv" as const), n: fc.integer({ min: 1, max: 5000 }) },
      { noNullPrototype: true },
    ),
  },
  { weight: 1, arbitrary: fc.constant({ k: "close" as const }) },
);

void describe("engine robustness (fast-check)", () => {
  for (const active of [false, true]) {
    let reachedData = 0;
    void test(`random peer segments never break the invariants (${active ? "active" : "passive"} open)`, () => {
      fc.assert(
        fc.property(fc.array(step, { maxLength: 60 }), fc.boolean(), (steps, r5961) => {
          const cfg = tcpConfig({
            mss: 536,
            recvBufferSize: 3000,
            sendBufferSize: 6000,
            rfc5961: r5961,
            keepAlive: true,
            keepAliveIdle: Duration.fromSeconds(5),
          });
          let now = 0;
          const params = { localPort: 1, remotePort: 2, iss: LOCAL_ISS, tsOffset: 7 };
          const c = active
            ? TcpConnection.connect(cfg, params, Instant.ZERO)
            : TcpConnection.accept(cfg, params, BASE_SEG, Instant.ZERO);
          const t = (): Instant => Instant.fromMicros(now);
          let i = 0;
          for (const s of steps) {
            i++;
            switch (s.k) {
              case "seg": {
                // Aim near the live sequence numbers so that many segments are acceptable.
                const seq = Seq.add(c.rcvNxt, s.dSeq);
                // Half the time acknowledge everything sent (SND.MAX), else a nearby value.
                const ack = s.dAck % 2 === 0 ? c.status().sndMax : Seq.add(c.sndUna, s.dAck);
                c.handleSegment(t(), {
                  ...BASE_SEG,
                  seq,
                  ack,
                  flags: s.flags,
                  window: s.window,
                  mss: undefined,
                  windowScale: undefined,
                  sackPermitted: false,
                  sack: s.sack.map(([l, n]) => ({
                    left: Seq.add(c.sndUna, l),
                    right: Seq.add(c.sndUna, l + n),
                  })),
                  // Mostly increasing timestamps, sometimes a little older (PAWS).
                  timestamps:
                    s.ts === undefined ? undefined : { tsVal: 100 + 4 * i + (s.ts % 10) - 6, tsEcr: 0 },
                  payload: new Uint8Array(s.len),
                });
                break;
              }
              case "time": {
                now += s.ms * 1000;
                const d = c.pollTimeout();
                if (d !== undefined && d <= now) c.handleTimeout(t());
                break;
              }
              case "send":
                c.send(new Uint8Array(s.n));
                break;
              case "recv":
                c.recv(s.n);
                break;
              case "close":
                c.close();
                break;
            }
            c.checkInvariants();
            let guard = 0;
            for (let o = c.pollTransmit(t()); o !== undefined; o = c.pollTransmit(t())) {
              assert.ok(++guard < 10_000, "pollTransmit never runs dry");
              assert.ok(o.payload.length <= 536, "segment larger than the MSS");
            }
            c.checkInvariants();
            while (c.pollEvent() !== undefined);
            if (c.readable > 0) reachedData++;
          }
        }),
        { seed: SEED, numRuns: 400 },
      );
      // The generator must reach the interesting states, or the property says little.
      assert.ok(reachedData > 20, `only ${reachedData} steps had readable data`);
    });
  }
});
