// The node loop hands a connection's events to the application before it builds the
// connection's segments (src/node/chimney-node.ts, "Settle"): a receiver that reads on
// `readable` has its ACK advertise the window the read opened. Built the other way round, every
// ACK of a bulk transfer into a 32 KiB buffer advertised one segment less (31,320), and the
// sender's flight shrank with it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TcpFlag } from "../src/wire/tcp-repr.js";
import { decodeFrame } from "../src/wire/packet.js";
import { runBulk } from "./support/bulk-transfer.js";

const BUFFER = 32 * 1024;

void test("a receiver that reads on readable advertises its whole buffer in every ACK of a bulk transfer", () => {
  const windows = new Map<number, number>();
  let acks = 0;
  const o = runBulk({
    seed: 7,
    bytes: 1 << 20,
    profile: { delayUs: 50_000 },
    tcp: { recvBufferSize: BUFFER, sendBufferSize: BUFFER, windowScaling: false },
    onFrame: (_now, from, frame) => {
      const t = decodeFrame(frame).transport;
      if (from !== "b" || t?.kind !== "tcp") return;
      const seg = t.tcp;
      if (seg.payload.length > 0 || seg.flags & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) return;
      acks++;
      windows.set(seg.window, (windows.get(seg.window) ?? 0) + 1);
    },
  });
  assert.equal(o.received, 1 << 20, "seed 7: every byte read");
  assert.ok(acks > 100, `seed 7: ${acks} ACKs seen`);
  // All but the last one or two (the transfer's tail, read a moment later) show the whole buffer.
  const full = windows.get(BUFFER) ?? 0;
  assert.ok(acks - full <= 2, `seed 7: windows advertised ${JSON.stringify([...windows])}`);
});
