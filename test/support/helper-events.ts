/**
 * For tests that run helper processes in network namespaces: the JSON-line events a helper
 * prints, awaited one kind at a time, and the TCP counters of a namespace.
 */
import type { ChildProcess } from "node:child_process";
import { tcpCounters as countersIn } from "../../src/live/peer-ns.js";

export type Event = Record<string, unknown> & { ev: string };

/** The JSON events a helper prints, awaited one kind at a time. */
export function events(
  child: ChildProcess,
  name: string,
): (ev: string, timeoutMs?: number) => Promise<Event> {
  const seen: Event[] = [];
  const waiting: { ev: string; resolve: (e: Event) => void }[] = [];
  let text = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  child.stdout?.on("data", (d: Buffer) => {
    text += d.toString();
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
      const line = text.slice(0, nl);
      text = text.slice(nl + 1);
      const e = JSON.parse(line) as Event;
      seen.push(e);
      const i = waiting.findIndex((w) => w.ev === e.ev);
      if (i >= 0) waiting.splice(i, 1)[0]?.resolve(e);
    }
  });
  return (ev, timeoutMs = 20_000) =>
    new Promise((resolve, reject) => {
      const have = seen.find((e) => e.ev === ev);
      if (have !== undefined) return resolve(have);
      const failed = seen.find((e) => e.ev === "error");
      if (failed !== undefined) return reject(new Error(`${name}: ${JSON.stringify(failed)}`));
      const timer = setTimeout(
        () =>
          reject(
            new Error(`${name}: no ${ev} in ${timeoutMs} ms; events ${JSON.stringify(seen)}; stderr ${err}`),
          ),
        timeoutMs,
      );
      const onExit = () => {
        setTimeout(() => {
          clearTimeout(timer);
          reject(new Error(`${name} exited before ${ev}: events ${JSON.stringify(seen)}; stderr ${err}`));
        }, 50);
      };
      child.once("exit", onExit);
      waiting.push({
        ev,
        resolve: (e) => {
          clearTimeout(timer);
          child.off("exit", onExit);
          resolve(e);
        },
      });
    });
}

/** TCP counters of /proc/net/snmp inside a namespace. */
export function tcpCounters(host: { readonly ns: string }): Record<string, number> {
  return countersIn(host.ns);
}
