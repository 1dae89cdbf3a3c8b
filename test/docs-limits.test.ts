// docs/api.md "Stack limits" lists every bound with its default; this checks each default
// against the code's constant (and, where the constant could drift from what the code uses,
// against a live instance), and that every row of those tables is checked here, so neither
// the docs nor the code can change the other silently.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  DEFAULT_GC_STALE_TIME,
  DEFAULT_GC_THRESHOLD,
  DEFAULT_NEIGHBOR_CONFIG,
  DEFAULT_NEIGHBOR_MAX_ENTRIES,
} from "../src/host/neighbor.js";
import { acceptAllKnobs } from "../src/host/offload-policy.js";
import { DEFAULT_OFFLOAD_LOG_LIMIT, OffloadManager } from "../src/host/offload-manager.js";
import { DEFAULT_PMTU_CACHE_SIZE } from "../src/host/path.js";
import {
  DEFAULT_REASSEMBLY_BYTES,
  DEFAULT_REASSEMBLY_DATAGRAMS,
  REASSEMBLY_TIMEOUT_V4_US,
  REASSEMBLY_TIMEOUT_V6_US,
} from "../src/host/ip-reassembly.js";
import {
  DEFAULT_ACCEPT_BACKLOG,
  DEFAULT_EPHEMERAL_PORTS,
  DEFAULT_PMTU_AGEING,
  DEFAULT_SYN_QUEUE_LIMIT,
  HostStack,
} from "../src/host/stack.js";
import { DEFAULT_HTTP_LIMITS, MAX_PATTERN_BYTES } from "../src/live/http-app.js";
import { BufferLedger } from "../src/nbl/ledger.js";
import { DEFAULT_TARGET_LIMITS } from "../src/offload-target/options.js";
import { DEFAULT_RING_FRAMES } from "../src/worker/target-proxy.js";
import { Prng } from "../src/sim/prng.js";
import { DEFAULT_SERVER_BACKLOG } from "../src/socket/net-stack.js";
import { MIN_IDLE_POOL_BYTES } from "../src/storage/chunk-pool.js";
import { DEFAULT_TCP_CONFIG, tcpConfig } from "../src/tcp/config.js";
import { MAX_QUEUED_ACKS } from "../src/tcp/connection.js";
import { DEFAULT_MAX_ESTABLISHED, MAX_PENDING_REPLIES } from "../src/tcp/listener.js";
import { MAX_RTX_MARKS } from "../src/tcp/sack-scoreboard.js";
import { ip } from "../src/wire/ip-addr.js";

const ROOT = join(fileURLToPath(import.meta.url), "..", "..", "..");
const T = DEFAULT_TCP_CONFIG;

/** A count as the docs write it: 1,024. */
const n = (x: number): string => x.toLocaleString("en-US");
/** Bytes in the largest binary unit that divides them: 1 MiB. */
function bytes(x: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (u < units.length - 1 && x >= 1024 && x % 1024 === 0) {
    x /= 1024;
    u++;
  }
  return `${n(x)} ${units[u]}`;
}
/** Whole seconds of a microsecond duration. */
const sec = (us: number): number => {
  assert.equal(us % 1_000_000, 0, `${us} us is not whole seconds`);
  return us / 1_000_000;
};
const ms = (x: number): string => (x % 1000 === 0 ? `${x / 1000} s` : `${x} ms`);

/** One table row: the section (### heading), a unique part of its first cell, its default. */
interface Row {
  readonly section: string;
  readonly limit: string;
  readonly def: string;
  /** Further text its other cells must contain (numbers quoted elsewhere in the row). */
  readonly mentions?: readonly string[];
}

/** The SYN (or SYN-ACK) retransmission schedule's total: initial RTO doubling, synRetries times. */
const synGiveUp = sec(T.initialRto) * (2 ** (T.synRetries + 1) - 1);

const ROWS: readonly Row[] = [
  { section: "The host", limit: "neighbor cache entries", def: n(DEFAULT_NEIGHBOR_MAX_ENTRIES) },
  {
    section: "The host",
    limit: "neighbor cache collection",
    def: `from ${n(DEFAULT_GC_THRESHOLD)} entries, unused for ${sec(DEFAULT_GC_STALE_TIME)} s`,
  },
  {
    section: "The host",
    limit: "packets waiting for one unresolved neighbor",
    def: n(DEFAULT_NEIGHBOR_CONFIG.queueLimit),
  },
  {
    section: "The host",
    limit: "learned path MTUs",
    def: `${n(DEFAULT_PMTU_CACHE_SIZE)} destinations, each kept ${sec(DEFAULT_PMTU_AGEING) / 60} min`,
  },
  {
    section: "The host",
    limit: "local ports for `connect`",
    def: `${DEFAULT_EPHEMERAL_PORTS[0]}-${DEFAULT_EPHEMERAL_PORTS[1]}`,
  },
  {
    section: "The host",
    limit: "IP fragments in reassembly",
    def: `${bytes(DEFAULT_REASSEMBLY_BYTES)} and ${n(DEFAULT_REASSEMBLY_DATAGRAMS)} datagrams per family, for ${sec(REASSEMBLY_TIMEOUT_V4_US)} s (IPv4) or ${sec(REASSEMBLY_TIMEOUT_V6_US)} s (IPv6)`,
  },
  { section: "The host", limit: "the connection table", def: "no cap of its own" },
  { section: "Per listener", limit: "half-open connections", def: n(DEFAULT_SYN_QUEUE_LIMIT) },
  { section: "Per listener", limit: "stateless replies", def: n(MAX_PENDING_REPLIES) },
  {
    section: "Per listener",
    limit: "accept queue",
    def: `${n(DEFAULT_ACCEPT_BACKLOG)} (\`HostStack.listen\`); ${n(DEFAULT_SERVER_BACKLOG)} (\`server.listen\`, as Node)`,
  },
  { section: "Per listener", limit: "live connections born of", def: n(DEFAULT_MAX_ESTABLISHED) },
  { section: "Per connection", limit: "send buffer", def: bytes(T.sendBufferSize) },
  { section: "Per connection", limit: "receive buffer", def: bytes(T.recvBufferSize) },
  { section: "Per connection", limit: "out-of-order bytes", def: bytes(T.maxOooBytes) },
  { section: "Per connection", limit: "out-of-order ranges", def: n(T.maxOooRanges) },
  { section: "Per connection", limit: "recovery retransmissions remembered", def: n(MAX_RTX_MARKS) },
  { section: "Per connection", limit: "ACKs owed", def: n(MAX_QUEUED_ACKS) },
  { section: "Per connection", limit: "challenge ACKs", def: `${n(T.challengeAckLimit)} a second` },
  {
    section: "Per connection",
    limit: "SYN and SYN-ACK retransmissions",
    def: n(T.synRetries),
    mentions: [`about ${synGiveUp} s with the ${sec(T.initialRto)} s initial RTO`],
  },
  { section: "Per connection", limit: "retransmissions of one segment", def: n(T.maxRetransmissions) },
  {
    section: "Per connection",
    limit: "TIME-WAIT",
    def: `${2 * sec(T.msl)} s (2 MSL)`,
    mentions: [`\`msl\` (${sec(T.msl)} s)`],
  },
  { section: "Per connection", limit: "FIN-WAIT-2", def: `${sec(T.finWait2Timeout)} s` },
  {
    section: "Per connection",
    limit: "an idle established connection",
    def: T.keepAlive ? "(keep-alive is on: fix this row)" : "no limit (keep-alive is off)",
  },
  { section: "Offload", limit: "step log", def: `${n(DEFAULT_OFFLOAD_LOG_LIMIT)} entries` },
  {
    section: "Offload",
    limit: "bytes an offloaded connection holds",
    def: bytes(acceptAllKnobs(new Prng(1)).queueLimit),
  },
  {
    section: "Offload",
    limit: "host's receive pool",
    def: `the receive buffer size, at least ${bytes(MIN_IDLE_POOL_BYTES)}`,
  },
  {
    section: "Offload",
    limit: "target's held-data pool",
    def: `the receive buffer size, at least ${bytes(MIN_IDLE_POOL_BYTES)}`,
  },
  {
    section: "Offload",
    limit: "offloaded connections, paths, neighbors",
    def: (() => {
      const { tcp, path, neighbor } = DEFAULT_TARGET_LIMITS;
      assert.ok(tcp === path && path === neighbor, "one default for the three: the row says 'each'");
      return `${n(tcp)} each`;
    })(),
  },
  {
    section: "Offload",
    limit: "source IP addresses of offloaded paths",
    def: n(DEFAULT_TARGET_LIMITS.ipAddresses),
  },
  { section: "Offload", limit: "BufferedData copied", def: bytes(DEFAULT_TARGET_LIMITS.bufferBytes) },
  {
    section: "Offload",
    limit: "path MTU, initial receive window",
    def: `${DEFAULT_TARGET_LIMITS.maxPathMtu} bytes, ${bytes(DEFAULT_TARGET_LIMITS.maxRcvWnd)}`,
  },
  {
    section: "Offload",
    limit: "frames in flight to a target on its own thread",
    def: `${n(DEFAULT_RING_FRAMES)} frames`,
  },
  { section: "HTTP server", limit: "headers complete", def: ms(DEFAULT_HTTP_LIMITS.headersTimeoutMs) },
  { section: "HTTP server", limit: "a whole request", def: ms(DEFAULT_HTTP_LIMITS.requestTimeoutMs) },
  { section: "HTTP server", limit: "no traffic", def: ms(DEFAULT_HTTP_LIMITS.idleTimeoutMs) },
  { section: "HTTP server", limit: "how often", def: ms(DEFAULT_HTTP_LIMITS.checkIntervalMs) },
  { section: "HTTP server", limit: "open connections", def: n(DEFAULT_HTTP_LIMITS.maxConnections) },
  { section: "HTTP server", limit: "`GET /bytes/<n>`", def: bytes(MAX_PATTERN_BYTES) },
];

interface DocRow {
  readonly section: string;
  readonly cells: readonly string[];
  readonly line: string;
}

/** The rows of every table under "## Stack limits", with the ### heading they sit under. */
function docRows(): { rows: DocRow[]; text: string } {
  const doc = readFileSync(join(ROOT, "docs", "api.md"), "utf8");
  const start = doc.indexOf("\n## Stack limits\n");
  assert.ok(start >= 0, "docs/api.md has a Stack limits section");
  const after = doc.indexOf("\n## ", start + 1);
  const text = doc.slice(start, after < 0 ? undefined : after);
  const rows: DocRow[] = [];
  let section = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("### ")) section = line.slice(4);
    if (!line.startsWith("| ") || line.startsWith("| limit |")) continue;
    const cells = line
      .slice(2, -2)
      .split(" | ")
      .map((c) => c.trim());
    assert.equal(cells.length, 4, `a row has four cells: ${line}`);
    rows.push({ section, cells, line });
  }
  return { rows, text };
}

void describe("docs/api.md Stack limits", () => {
  const { rows, text } = docRows();

  void test("every default in the tables is the code's", () => {
    for (const r of ROWS) {
      const hits = rows.filter((d) => d.section.includes(r.section) && d.cells[0]?.includes(r.limit));
      assert.equal(hits.length, 1, `one row "${r.limit}" under "${r.section}", found ${hits.length}`);
      const d = hits[0]!;
      assert.equal(d.cells[1], r.def, `the default of "${r.limit}"`);
      for (const m of r.mentions ?? []) assert.ok(d.line.includes(m), `row "${r.limit}" says ${m}`);
    }
  });

  void test("every row of the tables is checked here", () => {
    for (const d of rows) {
      const checked = ROWS.some((r) => d.section.includes(r.section) && d.cells[0]?.includes(r.limit));
      assert.ok(checked, `row "${d.cells[0]}" under "${d.section}" has no check in this test`);
    }
    assert.equal(rows.length, ROWS.length);
  });

  void test("chimney serve's listener defaults quoted before its table are the code's", () => {
    assert.ok(
      text.includes(`(backlog ${DEFAULT_SERVER_BACKLOG}, \`maxEstablished\` ${n(DEFAULT_MAX_ESTABLISHED)})`),
      "the serve paragraph quotes the listener defaults",
    );
    assert.ok(text.includes("](cli.md#limits-on-input)"), "the CLI's input limits are linked");
    const cli = readFileSync(join(ROOT, "docs", "cli.md"), "utf8");
    assert.ok(cli.includes("\n## Limits on input\n"), "the link's target exists");
  });

  void test("the constants are what the code uses", () => {
    const stack = new HostStack({
      interfaces: [
        {
          name: "t",
          link: "ip",
          mac: new Uint8Array(6),
          mtu: 1500,
          addresses: [{ addr: ip("192.0.2.1"), prefixLen: 24 }],
        },
      ],
      tcp: tcpConfig({ recvBufferSize: 64 << 10 }),
      random: new Prng(1),
    });
    const l = stack.listen(80);
    assert.equal(l.backlog, DEFAULT_ACCEPT_BACKLOG);
    assert.equal(l.maxEstablished, DEFAULT_MAX_ESTABLISHED);
    assert.equal(stack.paths.capacity, DEFAULT_PMTU_CACHE_SIZE);
    const m = new OffloadManager(stack, new BufferLedger());
    assert.equal(m.logLimit, DEFAULT_OFFLOAD_LOG_LIMIT);
    // The step log's bound, as the table says: full, the oldest quarter goes; the newest stay in order.
    m.logLimit = 16;
    const pushed: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      m.indicateStatus("NDIS_STATUS_OFFLOAD_PAUSE"); // one log entry, no target needed
      pushed.push(m.log[m.log.length - 1]);
      assert.ok(m.log.length <= 16, `log of ${m.log.length} entries over its limit of 16`);
      if (i === 16) assert.equal(m.log.length, 13, "the 17th entry dropped the oldest quarter (4)");
    }
    assert.deepEqual(m.log, pushed.slice(-m.log.length));
    assert.ok(text.includes("the oldest quarter is dropped"), "docs/api.md says what goes");
    assert.equal(m.knobs.queueLimit, acceptAllKnobs(new Prng(1)).queueLimit);
    // A small receive buffer: the pool keeps the floor.
    assert.equal(m.recvPool.maxFree * m.recvPool.chunkSize, MIN_IDLE_POOL_BYTES);
  });
});
