/** What crosses between `worker/storm` (storm.bench.ts) and its peer thread (storm-peer.ts). */
import type { TcpConfig } from "../src/tcp/config.js";

/** Host thread -> peer. */
export type PeerRequest =
  | { readonly k: "frames"; readonly frames: readonly Uint8Array[] }
  | { readonly k: "listen"; readonly id: number; readonly ports: readonly number[]; readonly max: number }
  | { readonly k: "accepted"; readonly id: number }
  | { readonly k: "write"; readonly id: number; readonly keys: readonly number[]; readonly bytes: number }
  | { readonly k: "acked"; readonly id: number; readonly keys: readonly number[] };

/** Peer -> host thread. */
export type PeerReply =
  | { readonly k: "frames"; readonly frames: readonly Uint8Array[] }
  | { readonly k: "reply"; readonly id: number; readonly value: number | boolean };

/** What the peer starts with. */
export interface PeerInit {
  readonly seed: number;
  readonly tcp: Partial<TcpConfig>;
  readonly hosts: Readonly<Record<string, string>>;
}

/** A connection's key on both sides: the client's port, then the server's. */
export const peerKey = (client: number | undefined, server: number | undefined): number =>
  (client ?? 0) * 65536 + (server ?? 0);

/**
 * A transmit function that batches frames per turn of the event loop and posts each batch with
 * `post` (one message per turn, not per frame).
 */
export function batchedTransmit(
  post: (frames: Uint8Array[]) => void,
): (ifIndex: number, frame: Uint8Array) => void {
  let out: Uint8Array[] = [];
  let scheduled = false;
  return (_i, f) => {
    out.push(f);
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      const frames = out;
      out = [];
      post(frames);
    });
  };
}
