/**
 * The HTTP application `chimney serve` runs on our stack (Node's own `http`, unchanged, over
 * our sockets):
 * - `POST /echo` answers with the request body (streamed back as it arrives);
 * - `GET /bytes/<n>` answers with n bytes of `patternBytes`, with `x-sha256` (hex) of them;
 * - `POST /sink` reads the body and answers with its length and sha256 (for uploads);
 * - anything else: 404.
 */
import { createHash } from "node:crypto";
import * as http from "node:http";
import type { Server, Socket } from "../socket/index.js";

/** Largest `/bytes/<n>` served (1 GiB). */
export const MAX_PATTERN_BYTES = 1 << 30;

const CHUNK = 1 << 16;

const BASE = (() => {
  const b = Buffer.allocUnsafe(CHUNK);
  for (let k = 0; k < CHUNK; k++) b[k] = (k ^ (k >>> 8)) & 255;
  return b;
})();

/** The byte every byte of 64 KiB block `block` is XORed with. */
function blockTag(block: number): number {
  return Math.imul(block + 1, 2654435761 | 0) >>> 24;
}

/**
 * Bytes [offset, offset + n) of the known pattern: byte i is `((i ^ (i >>> 8)) & 255) ^ t` for
 * i within its 64 KiB block, where t depends on the block number, so a misplaced block changes
 * the digest.
 */
export function patternBytes(offset: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let k = 0;
  while (k < n) {
    const i = offset + k;
    const inBlock = i % CHUNK;
    const len = Math.min(CHUNK - inBlock, n - k);
    const tag = blockTag(Math.floor(i / CHUNK));
    BASE.copy(out, k, inBlock, inBlock + len);
    for (let j = k; j < k + len; j++) out[j] = (out[j] ?? 0) ^ tag;
    k += len;
  }
  return out;
}

const shaCache = new Map<number, string>();

/** sha256 (hex) of the first `n` pattern bytes (cached per n). */
export function patternSha256(n: number): string {
  const hit = shaCache.get(n);
  if (hit !== undefined) return hit;
  const h = createHash("sha256");
  for (let off = 0; off < n; off += CHUNK) h.update(patternBytes(off, Math.min(CHUNK, n - off)));
  const hex = h.digest("hex");
  shaCache.set(n, hex);
  return hex;
}

/** Writes `n` pattern bytes to `w` in 64 KiB chunks, honouring backpressure, then ends it. */
export function writePattern(w: http.ServerResponse, n: number): void {
  let off = 0;
  const pump = (): void => {
    while (off < n) {
      const len = Math.min(CHUNK, n - off);
      const chunk = patternBytes(off, len);
      off += len;
      if (!w.write(chunk)) {
        w.once("drain", pump);
        return;
      }
    }
    w.end();
  };
  pump();
}

/** The request handler. */
export function liveHttpHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? "/";
  const bytes = /^\/bytes\/(\d+)$/.exec(url);
  if (req.method === "GET" && bytes !== null) {
    const n = Number(bytes[1]);
    if (!Number.isSafeInteger(n) || n > MAX_PATTERN_BYTES) {
      res.writeHead(400, { "content-type": "text/plain" }).end(`at most ${MAX_PATTERN_BYTES} bytes\n`);
      return;
    }
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": String(n),
      "x-sha256": patternSha256(n),
    });
    writePattern(res, n);
    return;
  }
  if (req.method === "POST" && url === "/echo") {
    const headers: http.OutgoingHttpHeaders = { "content-type": "application/octet-stream" };
    const len = req.headers["content-length"];
    if (len !== undefined) headers["content-length"] = len;
    res.writeHead(200, headers);
    req.pipe(res);
    return;
  }
  if (req.method === "POST" && url === "/sink") {
    const h = createHash("sha256");
    let count = 0;
    req.on("data", (d: Buffer) => {
      count += d.length;
      h.update(d);
    });
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/plain" }).end(`${count} ${h.digest("hex")}\n`);
    });
    return;
  }
  res.writeHead(404, { "content-type": "text/plain" }).end("not found: try GET /bytes/<n> or POST /echo\n");
}

/**
 * What `serveHttpOn` lets a client take. Node's own header and request timeouts run only on a
 * server that `listen()`ed, and this one is fed sockets instead, so it is started the way `listen`
 * starts it (its connection tracking); the idle timeout is Node's `server.timeout`, and the
 * connection cap is counted here.
 */
export interface HttpLimits {
  /** A request's headers must be complete within this (ms; slowloris). Default 10 s. */
  readonly headersTimeoutMs?: number | undefined;
  /** A whole request must arrive within this (ms). Default 60 s. */
  readonly requestTimeoutMs?: number | undefined;
  /** A connection with no traffic for this long is closed (ms; 0: never). Default 30 s. */
  readonly idleTimeoutMs?: number | undefined;
  /** Open connections at most; more are closed at once. Default 1024. */
  readonly maxConnections?: number | undefined;
  /** How often the header and request timeouts are checked (ms). Default 1 s. */
  readonly checkIntervalMs?: number | undefined;
  /** Told once each time the connection cap is reached (until the count falls below it). */
  readonly onLimit?: ((message: string) => void) | undefined;
}

/** The defaults of `HttpLimits`. */
export const DEFAULT_HTTP_LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 30_000,
  maxConnections: 1024,
  checkIntervalMs: 1000,
} as const;

/** An `http.Server` fed with our sockets from `server` (which must already be listening or about to). */
export function serveHttpOn(server: Server, limits: HttpLimits = {}): http.Server {
  const pick = (k: keyof typeof DEFAULT_HTTP_LIMITS): number => limits[k] ?? DEFAULT_HTTP_LIMITS[k];
  const l = {
    headersTimeoutMs: pick("headersTimeoutMs"),
    requestTimeoutMs: pick("requestTimeoutMs"),
    idleTimeoutMs: pick("idleTimeoutMs"),
    maxConnections: pick("maxConnections"),
    checkIntervalMs: pick("checkIntervalMs"),
  };
  const httpServer = http.createServer(
    {
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      connectionsCheckingInterval: l.checkIntervalMs,
    },
    liveHttpHandler,
  );
  httpServer.timeout = l.idleTimeoutMs;
  if (l.idleTimeoutMs > 0) httpServer.keepAliveTimeout = Math.min(5000, l.idleTimeoutMs);
  // What listen() does before it accepts: start tracking connections, so the header and request
  // timeouts run (their timer is unref'd and stops with close()).
  httpServer.emit("listening");
  let open = 0;
  let capped = false;
  server.on("connection", (sock: Socket) => {
    if (open >= l.maxConnections) {
      if (!capped) {
        capped = true;
        limits.onLimit?.(`connection cap of ${l.maxConnections} reached: new connections are closed`);
      }
      sock.destroy();
      return;
    }
    open++;
    sock.once("close", () => {
      open--;
      if (open < l.maxConnections) capped = false;
    });
    httpServer.emit("connection", sock);
  });
  server.once("close", () => httpServer.close());
  return httpServer;
}
