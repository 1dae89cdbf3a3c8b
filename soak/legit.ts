/**
 * The soak's legitimate traffic: the kernel's curl, run in the namespace, downloads
 * `/bytes/<n>` and uploads a file to `/echo`. The body comes back on curl's standard output and is
 * hashed here: a download must match both its `x-sha256` header and the pattern's digest
 * computed locally, an upload the digest of the file sent. The time is curl's own `time_total`
 * (process start-up of `ip netns exec` and curl is not part of it).
 *
 * curl's `--write-out` line follows the body on standard output (the last bytes are held back
 * from the digest until the end shows where the body stops), and the response headers go to a
 * file: Node's child pipes are sockets, which curl cannot open by name (`-D /dev/stderr`).
 */
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { patternSha256 } from "../src/live/http-app.js";
import type { TapNamespace } from "../src/live/netns.js";

/** One transfer's outcome. */
export interface Transfer {
  readonly kind: "download" | "upload";
  readonly url: string;
  readonly bytes: number;
  /** curl's time_total, seconds (NaN when curl gave none). */
  readonly seconds: number;
  /** Undefined when the bytes are right; else what went wrong. */
  readonly problem: string | undefined;
  /** True when the problem is wrong bytes (as opposed to a failed transfer). */
  readonly mismatch: boolean;
}

const TIMING = /\nCURLTIME ([\d.]+) (\d+) (\d+)\n$/;
/** Bytes held back from the digest: more than the `--write-out` line. */
const TAIL = 256;

interface CurlResult {
  readonly code: number | null;
  /** Digest and length of the body (standard output without the write-out line). */
  readonly sha: string;
  readonly count: number;
  /** The write-out line's fields, or NaN / 0 when there was none. */
  readonly seconds: number;
  readonly status: number;
  readonly stderr: string;
}

/**
 * Runs curl in the namespace with `args`, hashing what it writes to stdout. It is the
 * namespace's child: removing the namespace kills it.
 */
function curl(ns: TapNamespace, args: readonly string[], timeoutMs: number): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = ns.spawn(
      "curl",
      [
        "-sS",
        "--max-time",
        String(Math.ceil(timeoutMs / 1000)),
        "-o",
        "-",
        "-w",
        "\nCURLTIME %{time_total} %{size_download} %{http_code}\n",
        ...args,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const out = child.stdout;
    const err = child.stderr;
    if (out === null || err === null) throw new Error("curl has no output pipes");
    const h = createHash("sha256");
    let count = 0;
    let tail = Buffer.alloc(0);
    let stderr = "";
    out.on("data", (d: Buffer) => {
      const all = tail.length === 0 ? d : Buffer.concat([tail, d]);
      const cut = Math.max(0, all.length - TAIL);
      h.update(all.subarray(0, cut));
      count += cut;
      tail = Buffer.from(all.subarray(cut));
    });
    err.on("data", (d: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += d.toString("latin1");
    });
    // A curl that outlives its own --max-time (a hung namespace) is killed.
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs + 5000);
    child.on("close", (code) => {
      clearTimeout(timer);
      const text = tail.toString("latin1");
      const at = text.lastIndexOf("\nCURLTIME ");
      const m = at < 0 ? null : TIMING.exec(text.slice(at));
      const body = m === null ? tail : tail.subarray(0, at);
      h.update(body);
      count += body.length;
      resolve({
        code,
        sha: h.digest("hex"),
        count,
        seconds: m === null ? Number.NaN : Number(m[1]),
        status: m === null ? 0 : Number(m[3]),
        stderr,
      });
    });
  });
}

function failure(r: CurlResult): string | undefined {
  if (r.code === 0) return undefined;
  const line = r.stderr.split("\n").find((l) => l.startsWith("curl:")) ?? `exit ${r.code ?? "by a signal"}`;
  return `curl failed (${line.trim()})`;
}

/**
 * Downloads `/bytes/<n>` from `base` (e.g. `http://192.0.2.2:80`); the response headers go
 * through `headerFile` (removed afterwards).
 */
export async function download(
  ns: TapNamespace,
  base: string,
  n: number,
  headerFile: string,
  timeoutMs: number,
): Promise<Transfer> {
  const url = `${base}/bytes/${n}`;
  const r = await curl(ns, ["-g", "-D", headerFile, url], timeoutMs);
  let headers = "";
  try {
    headers = readFileSync(headerFile, "latin1");
  } catch {
    // no headers: the checks below say so
  }
  rmSync(headerFile, { force: true });
  const base_ = { kind: "download" as const, url, bytes: r.count, seconds: r.seconds };
  const failed = failure(r);
  if (failed !== undefined) return { ...base_, problem: failed, mismatch: false };
  if (r.status !== 200) return { ...base_, problem: `HTTP status ${r.status}`, mismatch: false };
  const header = /^x-sha256: ([0-9a-f]{64})\r?$/im.exec(headers)?.[1];
  const want = patternSha256(n);
  if (r.count !== n || r.sha !== want || header !== want) {
    return {
      ...base_,
      problem: `bytes differ: got ${r.count} bytes with sha256 ${r.sha}, x-sha256 ${header ?? "missing"}, pattern ${want}`,
      mismatch: true,
    };
  }
  return { ...base_, problem: undefined, mismatch: false };
}

/** Uploads `file` (of `n` bytes, digest `sha`) to `/echo` at `base`; the echo must be the same bytes. */
export async function upload(
  ns: TapNamespace,
  base: string,
  file: string,
  n: number,
  sha: string,
  timeoutMs: number,
): Promise<Transfer> {
  const url = `${base}/echo`;
  const r = await curl(
    ns,
    ["-g", "-H", "content-type: application/octet-stream", "--data-binary", `@${file}`, url],
    timeoutMs,
  );
  const base_ = { kind: "upload" as const, url, bytes: r.count, seconds: r.seconds };
  const failed = failure(r);
  if (failed !== undefined) return { ...base_, problem: failed, mismatch: false };
  if (r.status !== 200) return { ...base_, problem: `HTTP status ${r.status}`, mismatch: false };
  if (r.count !== n || r.sha !== sha) {
    return {
      ...base_,
      problem: `echo differs: sent ${n} bytes with sha256 ${sha}, got ${r.count} with ${r.sha}`,
      mismatch: true,
    };
  }
  return { ...base_, problem: undefined, mismatch: false };
}
