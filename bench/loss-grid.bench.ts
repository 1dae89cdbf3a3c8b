/**
 * The smoltcp loss grid (its tests/netsim.rs, published in its snapshot): one flow of 10 MiB,
 * 50 ms each way (RTT 100 ms), no bandwidth limit, every frame lost independently with the given
 * probability in both directions, socket buffers of 32 KiB on both ends; goodput is the bytes
 * read over the virtual time from the connect to the last byte. Their grid runs without
 * congestion control: its test builds smoltcp's default features, which include neither
 * `socket-tcp-reno` nor `socket-tcp-cubic`, so the socket's controller is `NoControl` and a loss
 * never shrinks its window (RFC 5681 3.2 requires ours to). We run the same grid in our
 * simulator (CUBIC, the default, NewReno, and CUBIC with RACK-TLP) and print our goodput beside theirs. Deterministic:
 * a pure function of the seeds.
 */
import type { TcpConfig } from "../src/tcp/config.js";
import { Duration } from "../src/time/instant.js";
import { runBulk } from "../test/support/bulk-transfer.js";
import { goal } from "./goal.js";

const TOPIC = "tcp";
const BYTES = 10 * 1024 * 1024;
const BUFFER = 32 * 1024;
const SEEDS = [1, 2, 3];
/** smoltcp's goodputs (B/s) for the 32768-byte row of its grid. */
const SMOLTCP: readonly (readonly [number, number])[] = [
  [0, 322_945],
  [0.01, 219_671],
  [0.1, 37_775],
  [0.3, 1_156],
];
/** The default first (CUBIC with PRR and HyStart++), then NewReno, then CUBIC with RACK-TLP. */
const VARIANTS: readonly (readonly [string, Partial<TcpConfig>])[] = [
  ["cubic", {}],
  ["newreno", { congestionControl: "newreno" }],
  ["cubic+rack", { rack: true }],
];

/** Our goodput (B/s) over the seeds for one cell of the grid. */
function goodput(tcp: Partial<TcpConfig>, loss: number): number {
  let bytes = 0;
  let us = 0;
  for (const seed of SEEDS) {
    const o = runBulk({
      seed,
      bytes: BYTES,
      profile: { delayUs: 50_000, loss },
      // smoltcp's socket never gives up on a segment (no timeout set): neither do we here.
      tcp: { ...tcp, recvBufferSize: BUFFER, sendBufferSize: BUFFER, maxRetransmissions: 255 },
      limitUs: 1_000_000 * 1e6, // 30% loss both ways takes hours of virtual time
    });
    if (o.received !== BYTES)
      throw new Error(`loss-grid: loss ${loss}, seed ${seed}: ${o.received} of ${BYTES} bytes`);
    bytes += o.received;
    us += o.elapsedUs;
  }
  return (bytes / us) * 1e6;
}

export function run(filter: RegExp | undefined): Promise<void> {
  if (filter !== undefined && !filter.test(`${TOPIC}/loss-grid`)) return Promise.resolve();
  console.log(
    `${TOPIC}/loss-grid: ${BYTES >> 20} MiB one way, RTT 100 ms, buffers ${BUFFER >> 10} KiB, loss both ways, seeds ${SEEDS.join(",")}`,
  );
  // At 0% loss the flight is the window: a sender that avoids silly windows (RFC 9293
  // 3.8.6.2.1, MUST-38) sends only full segments into it, 22 of 1448 bytes (with timestamps) per
  // 100 ms; smoltcp fills the last 912 bytes with a smaller segment.
  const full = Math.floor(BUFFER / 1448) * 1448;
  console.log(
    `  0% loss ceiling with sender SWS avoidance: ${full} B per 100 ms = ${(full * 10).toLocaleString("en-US")} B/s (${((full * 10) / 322_945).toFixed(3)}x smoltcp)`,
  );
  for (const [loss, theirs] of SMOLTCP) {
    const ours: string[] = [];
    let best = 0;
    for (const [name, tcp] of VARIANTS) {
      const bps = goodput(tcp, loss);
      if (name === "cubic") best = bps; // the default
      ours.push(`${name} ${Math.round(bps).toLocaleString("en-US")} B/s (${(bps / theirs).toFixed(2)}x)`);
    }
    const pct = `${(loss * 100).toFixed(0)}pct`;
    const ok = loss === 0 ? best >= theirs : best > theirs;
    goal(
      TOPIC,
      `loss-grid-${pct}`,
      `${ours.join(", ")} vs smoltcp ${theirs.toLocaleString("en-US")} B/s`,
      loss === 0
        ? ">= 1.0x smoltcp (default congestion control)"
        : "> 1.0x smoltcp (default congestion control)",
      ok,
    );
  }
  // smoltcp caps its RTO at 10 s (RTTE_MAX_RTO); ours is Linux's 120 s (RFC 6298 2.5 allows a
  // cap of 60 s or more). Under 30% loss both ways the transfer is a chain of timeouts, so the
  // cap decides: the same row with smoltcp's cap, for comparison.
  const capped = goodput({ maxRto: Duration.fromSeconds(10) }, 0.3);
  console.log(
    `${TOPIC}/loss-grid-30pct with smoltcp's 10 s RTO cap: cubic ${Math.round(capped).toLocaleString("en-US")} B/s (${(capped / 1_156).toFixed(2)}x smoltcp)`,
  );
  return Promise.resolve();
}
