/**
 * The soak's slowloris attacker, a child process run in the kernel's namespace
 * (`ip netns exec <ns> node slowloris.js <hosts> <port> <sockets> <dribble-ms>`): it keeps
 * `sockets` connections open to the server (at the comma-separated `hosts` in turn), each sending a request line and then one more
 * header line every `dribble-ms`, never the blank line that ends the headers. A connection the
 * server closes is reported and replaced. On `stop` (a line on stdin) or end of stdin it reports
 * the connections still open and exits.
 *
 * Output, one JSON object per line on stdout:
 * - `{"ev":"dropped","ms":<open for>,"bytes":<received>,"status":"HTTP/1.1 408 ..."}`;
 * - `{"ev":"error","message":"..."}` for a connection that failed before it was established;
 * - `{"ev":"open","ms":<open for>}` for each connection still open at the stop;
 * - `{"ev":"done","opened":<n>}` last.
 */
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";

const [hostList = "192.0.2.2", portText = "80", countText = "32", dribbleText = "500"] =
  process.argv.slice(2);
const hosts = hostList.split(",");
const port = Number(portText);
const count = Number(countText);
const dribbleMs = Number(dribbleText);

interface Slow {
  readonly sock: Socket;
  openedAt: number | undefined;
  bytes: number;
  head: string;
  timer: NodeJS.Timeout | undefined;
}

const live = new Set<Slow>();
let stopping = false;
let opened = 0;
let started = 0;

function emit(o: object): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function open(): void {
  if (stopping) return;
  const host = hosts[started++ % hosts.length] ?? "192.0.2.2";
  const sock = connect({ host, port });
  const s: Slow = { sock, openedAt: undefined, bytes: 0, head: "", timer: undefined };
  live.add(s);
  sock.setNoDelay(true);
  sock.on("connect", () => {
    opened++;
    s.openedAt = performance.now();
    sock.write("GET /bytes/1 HTTP/1.1\r\nHost: soak\r\nUser-Agent: slowloris\r\n");
    let n = 0;
    s.timer = setInterval(() => {
      sock.write(`X-Slow-${n++}: ${"a".repeat(8)}\r\n`);
    }, dribbleMs);
  });
  sock.on("data", (d: Buffer) => {
    s.bytes += d.length;
    if (s.head.length < 64) s.head += d.toString("latin1");
  });
  sock.on("error", (e) => {
    if (s.openedAt === undefined && !stopping) emit({ ev: "error", message: e.message });
  });
  sock.on("close", () => {
    clearInterval(s.timer);
    live.delete(s);
    if (stopping) return;
    if (s.openedAt !== undefined) {
      emit({
        ev: "dropped",
        ms: Math.round(performance.now() - s.openedAt),
        bytes: s.bytes,
        status: s.head.split("\r\n")[0] ?? "",
      });
    }
    setTimeout(open, s.openedAt === undefined ? 200 : 20);
  });
}

function stop(): void {
  if (stopping) return;
  stopping = true;
  const now = performance.now();
  for (const s of live) {
    clearInterval(s.timer);
    if (s.openedAt !== undefined) emit({ ev: "open", ms: Math.round(now - s.openedAt) });
    s.sock.destroy();
  }
  emit({ ev: "done", opened });
  process.exit(0);
}

createInterface({ input: process.stdin })
  .on("line", (l) => {
    if (l.trim() === "stop") stop();
  })
  .on("close", stop);

// Connections open in a ramp, not all in one burst.
for (let i = 0; i < count; i++) setTimeout(open, i * 10);
