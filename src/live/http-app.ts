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

/** An `http.Server` fed with our sockets from `server` (which must already be listening or about to). */
export function serveHttpOn(server: Server): http.Server {
  const httpServer = http.createServer(liveHttpHandler);
  server.on("connection", (sock: Socket) => {
    httpServer.emit("connection", sock);
  });
  return httpServer;
}
