/**
 * Loss recovery in the simulator: goodput in virtual time of a one-way bulk transfer between
 * two host stacks over faulty links (the live fault test's profile and its parts), with the
 * reordering defences (adaptive DupThresh, D-SACK, undo) on and off, with CUBIC in place of
 * NewReno (RFC 9438), and with CUBIC + PRR + RACK-TLP (RFC 9438, 6937, 8985), next to the Mathis et al.
 * bound for the loss rate. Also the wall-clock time the simulation took. Deterministic: the same
 * seeds give the same goodput on any machine.
 */
import type { FaultProfile } from "../src/sim/link.js";
import type { TcpConfig } from "../src/tcp/config.js";
import { runBulk } from "../test/support/bulk-transfer.js";
import { goal } from "./goal.js";

const MSS = 1448;
const SEEDS = [1, 2, 3, 4];
const BYTES = 4 << 20;
const REORDER = { rate: 0.02, holdFrames: 3, holdUs: 5000 } as const;
const PROFILES: readonly (readonly [string, FaultProfile])[] = [
  ["loss 2%", { loss: 0.02, delayUs: 1000 }],
  ["reorder 2%", { reorder: REORDER, delayUs: 1000 }],
  ["loss 2% + reorder 2%", { loss: 0.02, reorder: REORDER, delayUs: 1000 }],
];
/** The variant the issue compares with the old default (NewReno, defences on: the first). */
const MODERN = "CUBIC + PRR + RACK-TLP";
const NEWRENO = { congestionControl: "newreno" } as const;
const VARIANTS: readonly (readonly [string, Partial<TcpConfig>])[] = [
  ["NewReno, defences on", NEWRENO],
  [
    "NewReno plain (DupThresh 3, no D-SACK, no undo)",
    { ...NEWRENO, maxReordering: 3, dsack: false, undoSpurious: false },
  ],
  ["CUBIC (the default), defences on", {}],
  [MODERN, { congestionControl: "cubic", prr: true, rack: true }],
];

/** The profiles it compares them on, by the names `goal` prints. */
const COMPARED: Readonly<Record<string, string>> = {
  "loss 2%": "recovery-loss2",
  "loss 2% + reorder 2%": "recovery-loss2-reorder2",
};

/** Runs the recovery cases whose names match `filter` (all when undefined). */
export function run(filter: RegExp | undefined): Promise<void> {
  if (filter !== undefined && !filter.test("recovery/goodput")) return Promise.resolve();
  console.log(
    `recovery/goodput: ${BYTES >> 20} MiB one way, 1 ms delay each way, faults both ways, seeds ${SEEDS.join(",")}`,
  );
  console.log(
    "  profile               variant                                          Mbit/s  Mathis  fast rtx  undos  wall ms",
  );
  const goodput = new Map<string, number>();
  for (const [pname, profile] of PROFILES) {
    const loss = profile.loss ?? 0;
    const mathis = loss > 0 ? ((MSS * 8) / 0.002) * (1.22 / Math.sqrt(loss)) : Number.NaN;
    for (const [vname, tcp] of VARIANTS) {
      let bits = 0;
      let us = 0;
      let fr = 0;
      let undos = 0;
      const t0 = performance.now();
      for (const seed of SEEDS) {
        const o = runBulk({ seed, bytes: BYTES, profile, tcp });
        bits += o.received * 8;
        us += o.elapsedUs;
        fr += o.sender.fastRetransmits;
        undos += o.sender.spuriousUndos;
      }
      const wall = performance.now() - t0;
      goodput.set(`${pname}|${vname}`, bits / us);
      const mbps = (bits / us).toFixed(1);
      const m = Number.isNaN(mathis) ? "-" : (mathis / 1e6).toFixed(1);
      console.log(
        `  ${pname.padEnd(21)} ${vname.padEnd(48)} ${mbps.padStart(6)}  ${m.padStart(6)}  ${String(fr).padStart(8)}  ${String(undos).padStart(5)}  ${wall.toFixed(0).padStart(7)}`,
      );
    }
  }
  for (const [pname, name] of Object.entries(COMPARED)) {
    const modern = goodput.get(`${pname}|${MODERN}`) ?? Number.NaN;
    const today = goodput.get(`${pname}|${VARIANTS[0]?.[0] ?? ""}`) ?? Number.NaN;
    const ratio = modern / today;
    goal(
      "tcp",
      name,
      `${ratio.toFixed(2)}x goodput, ${MODERN} ${modern.toFixed(1)} vs NewReno ${today.toFixed(1)} Mbit/s`,
      ">= 1.0x",
      ratio >= 1,
    );
  }
  return Promise.resolve();
}
