/**
 * The child side of the kernel hand-off tests' helper processes (repair-helper.ts,
 * terminate-helper.ts): events to the test as JSON lines, and the end of a stream both ways.
 */
import { createHash } from "node:crypto";
import type net from "node:net";

/** One event for the test (helper-events.ts reads them). */
export function emit(ev: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ ev, ...fields })}\n`);
}

/**
 * Reads `sock` to its end while writing `data` (with back-pressure) and ending it; resolves with
 * the length and sha256 of what was read, and of `sentBefore` followed by `data`.
 */
export function exchange(
  sock: net.Socket,
  data: Buffer,
  sentBefore: readonly Buffer[] = [],
): Promise<Record<string, unknown>> {
  const recv = createHash("sha256");
  const sent = createHash("sha256");
  let recvLen = 0;
  let sentLen = 0;
  for (const b of [...sentBefore, data]) {
    sent.update(b);
    sentLen += b.length;
  }
  return new Promise((resolve, reject) => {
    let ended = false;
    let finished = false;
    const done = () => {
      if (ended && finished) {
        resolve({ recvLen, recvSha: recv.digest("hex"), sentLen, sentSha: sent.digest("hex") });
      }
    };
    sock.on("data", (d: Buffer) => {
      recv.update(d);
      recvLen += d.length;
    });
    sock.on("end", () => {
      ended = true;
      done();
    });
    sock.on("error", reject);
    sock.end(data, () => {
      finished = true;
      done();
    });
    sock.resume();
  });
}
