/**
 * Captures real kernel TCP traffic for codec tests: two namespaces joined by veth, tshark
 * writing a classic pcap on one end, and the kernel-peer script moving data over IPv4 and IPv6.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createNsPair, exited, waitForOutput } from "./netns.js";

const PEER = join(fileURLToPath(new URL(".", import.meta.url)), "kernel-peer.js");

/** Runs an echo exchange of `bytes` over IPv4 and IPv6 between two kernels; returns the pcap path. */
export async function captureKernelTraffic(bytes: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "chimney-cap-"));
  const file = join(dir, "kernel.pcap");
  const pair = createNsPair("cap");
  try {
    const server = pair.spawnIn(pair.b, process.execPath, [PEER, "server", "::", "5001"]);
    const tshark = pair.spawnIn(pair.a, "tshark", ["-i", pair.a.dev, "-F", "pcap", "-w", file, "-q"]);
    try {
      await waitForOutput(server, /listening/);
      await waitForOutput(tshark, /Capturing on/);
      for (const addr of [pair.b.ip4, pair.b.ip6]) {
        const client = pair.spawnIn(pair.a, process.execPath, [PEER, "client", addr, "5001", String(bytes)]);
        const line = await waitForOutput(client, /ok \d+ \d+ [0-9a-f]+|error .*/);
        if (!line.startsWith("ok")) throw new Error(`kernel client failed: ${line}`);
        await exited(client);
      }
      // Let the final ACKs and FINs reach the capture before stopping it.
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      tshark.kill("SIGINT");
      server.kill("SIGTERM");
      await exited(tshark);
      await exited(server);
    }
  } finally {
    pair.close();
  }
  return file;
}

/** `tshark -r file -T fields -e ...` as rows of strings, one row per frame. */
export function tsharkFields(
  file: string,
  fields: readonly string[],
  extra: readonly string[] = [],
): string[][] {
  const args = ["-r", file, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"];
  for (const f of fields) args.push("-e", f);
  const out = execFileSync("tshark", [...args, ...extra], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  return out
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split("|"));
}
