/**
 * The worker of `worker/transport` (worker.bench.ts): echoes what the host thread sends, over
 * `postMessage` or over a single-producer / single-consumer ring in shared memory per direction.
 */
import { parentPort, workerData } from "node:worker_threads";
import { SpscRing } from "./spsc-ring.js";

const port = parentPort;
if (port === null) throw new Error("transport-worker.js runs only as a worker thread");
const init = workerData as { readonly down: SharedArrayBuffer; readonly up: SharedArrayBuffer };
const down = new SpscRing(init.down);
const up = new SpscRing(init.up);

port.on("message", (m: { readonly k: "echo"; readonly n: number } | { readonly k: "ring" }) => {
  if (m.k === "echo") {
    port.postMessage(m); // postMessage: echo the batch as it came
    return;
  }
  // Ring mode: echo every record until a negative one, sleeping on the ring when it is empty.
  const rec = new Int32Array(4);
  for (;;) {
    down.waitForData();
    while (down.pop(rec)) {
      if ((rec[0] ?? 0) < 0) return;
      up.push(rec);
    }
    up.notify();
  }
});
