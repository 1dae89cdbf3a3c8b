// Sequence-space helpers for the TCP engine's hand-written exchanges: our stream and the peer's
// each start at a chosen ISS (near 2^32, so the data wraps), and segments from the peer start
// from one template.
import { Seq, type SeqNum } from "../../src/wire/seq.js";
import { Instant } from "../../src/time/instant.js";
import { TcpFlag, type TcpRepr } from "../../src/wire/tcp-repr.js";

/** Virtual time `ms` milliseconds after zero. */
export const at = (ms: number): Instant => Instant.fromMicros(Math.round(ms * 1000));

/** The two streams of a scripted connection. */
export interface TcpScript {
  /** Sequence number of our send-stream byte `n` (byte 0 is L(1)). */
  readonly L: (n: number) => SeqNum;
  /** Sequence number of the peer's send-stream byte `n`. */
  readonly R: (n: number) => SeqNum;
  /** A bare ACK from the peer (port 49500 to our 80) at R(1), acking L(1); spread and override. */
  readonly FROM_PEER: TcpRepr;
}

/** The helpers for a connection with our ISS `localIss` and the peer's `remoteIss`. */
export function tcpScript(localIss: SeqNum, remoteIss: SeqNum): TcpScript {
  const L = (n: number): SeqNum => Seq.add(localIss, n);
  const R = (n: number): SeqNum => Seq.add(remoteIss, n);
  const FROM_PEER: TcpRepr = {
    srcPort: 49500,
    dstPort: 80,
    seq: R(1),
    ack: L(1),
    flags: TcpFlag.ACK,
    window: 60000,
    urgent: 0,
    mss: undefined,
    windowScale: undefined,
    sackPermitted: false,
    sack: [],
    timestamps: undefined,
    unknownOptions: [],
    payload: new Uint8Array(0),
  };
  return { L, R, FROM_PEER };
}
