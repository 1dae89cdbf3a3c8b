/**
 * The chimney command. Parsing is commander's; each command lives in src/cli/commands/.
 * `chimney` with no command runs the demo. This module only exports `program()` and `main()`;
 * the executable is bin.ts, which runs `main` however it is invoked (a package bin runs through
 * a symlink named `chimney`, so the entry must not guess from its own file name).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { decodeCaptureFile, STDIO_SINK } from "./commands/decode.js";
import { handoff } from "./commands/handoff.js";
import { conformanceCommand } from "./commands/conformance.js";
import { runDemo } from "./commands/demo.js";
import { runWorkerDemo } from "./commands/demo-worker.js";
import { renderReport } from "./commands/report.js";
import { runScenarioCommand } from "./commands/run.js";
import { DEFAULT_SERVE_TARGET, flapProblem, isTcpPort, SERVE_TARGETS, serve } from "./commands/serve.js";
import type { TapOffload } from "../device/tap.js";
import { CliUsageError, EXIT, reportError } from "./errors.js";
import { exitQuietlyOnClosedStdout } from "./output.js";
import { packageVersion } from "./package.js";

function probability(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError("must be a number in [0, 1]");
  return n;
}

function nonNegative(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && Number.isFinite(n))) throw new InvalidArgumentError("must be a non-negative number");
  return n;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`must be a positive integer up to ${Number.MAX_SAFE_INTEGER}`);
  return n;
}

function flapMs(v: string): number {
  const n = Number(v);
  const problem = v.trim() === "" ? "must be a number" : flapProblem(n);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return n;
}

function tcpPort(v: string): number {
  const n = Number(v);
  if (!isTcpPort(n)) throw new InvalidArgumentError("must be a port number in 1..65535");
  return n;
}

/** Builds the program; exported for tests. */
export function program(): Command {
  const p = new Command("chimney")
    .description(
      "TCP Chimney Offload: a host TCP/IP stack, a software offload target, and the terminate path that loses no byte",
    )
    .version(packageVersion(), "-V, --version", "print the version of chimney")
    .option("--verbose", "print details of errors (accepted anywhere on the line)")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  p.command("demo")
    .description("run the main job on the embedded simulator: offload, buffer, terminate, verify")
    .option("--seed <n>", "simulation seed", positiveInt, 1)
    .option("--held <bytes>", "bytes the target holds undelivered when the host terminates", positiveInt)
    .addOption(
      new Option(
        "--target <where>",
        "where the offload target runs: inline (the simulator, deterministic) or worker (its own thread, real time)",
      )
        .choices(["inline", "worker"])
        .default("inline"),
    )
    .action(async (opts: { seed: number; held?: number; target: "inline" | "worker" }) => {
      if (opts.target === "worker" && opts.held !== undefined)
        throw new CliUsageError("--held applies to the simulator (--target inline) only");
      const out =
        opts.target === "worker"
          ? await runWorkerDemo({ seed: opts.seed, color: process.stdout.isTTY })
          : runDemo({ seed: opts.seed, held: opts.held, color: process.stdout.isTTY });
      for (const line of out.lines) process.stdout.write(`${line}\n`);
      if (!out.ok) process.exitCode = EXIT.FAILED;
    });

  p.command("decode")
    .description("print tcpdump-style one-liners of a capture file (ours, the kernel's or Wireshark's)")
    .argument("<file>", "a pcap or pcapng file (Ethernet or raw IP links)")
    .option("-c, --count <n>", "stop after n packets", positiveInt)
    .option("--absolute", "absolute timestamps instead of relative to the first packet")
    .option("--verify-checksums", "verify checksums and flag bad ones")
    .action(async (file: string, opts: { count?: number; absolute?: boolean; verifyChecksums?: boolean }) => {
      await decodeCaptureFile(file, opts, STDIO_SINK);
    });

  p.command("report")
    .description("render a timeline JSON file (from a run) as one self-contained, zoomable HTML page")
    .argument("<timeline>", "a timeline JSON file, as chimney run --timeline writes")
    .requiredOption("-o, --output <file>", "the HTML file to write")
    .action((file: string, opts: { output: string }) => {
      const n = renderReport(file, opts.output);
      process.stdout.write(`wrote ${opts.output} (${n} bytes)\n`);
    });

  p.command("run")
    .description("run a scenario file (YAML or JSON) on the simulator and verify it")
    .argument("<scenario>", "a scenario file, e.g. scenarios/seed.yaml")
    .option("--seed <n>", "simulation seed (printed first, for replay)", positiveInt, 1)
    .option("--pcap <file>", "capture every frame into a classic pcap file")
    .option("--trace <file>", "write tcpdump-style lines with virtual timestamps")
    .option("--report <file>", "write the timeline as one self-contained HTML page")
    .option("--timeline <file>", "write the timeline as JSON (render it later with chimney report)")
    .option("--json", "print the verdict, checks, counters and seed as JSON on stdout")
    .action(
      (
        file: string,
        opts: {
          seed: number;
          pcap?: string;
          trace?: string;
          report?: string;
          timeline?: string;
          json?: boolean;
        },
      ) => {
        process.exitCode = runScenarioCommand(file, {
          ...opts,
          progress: process.stderr.isTTY,
          color: process.stdout.isTTY && opts.json !== true,
        });
      },
    );

  p.command("conformance")
    .description("run a packetdrill suite against our stack and compare with the known-failures list")
    .argument(
      "[dir]",
      "the suite (default $CHIMNEY_PEER_SUITE/freebsd-tcp-testsuite, else ../shared/peer-tests/freebsd-tcp-testsuite beside the repository)",
    )
    .option("--pcap <dir>", "write a pcap of every failing script under this directory")
    .option("--filter <regex>", "only scripts whose path matches this regular expression")
    .option(
      "--folder <name...>",
      "only scripts under these top-level folders (default: every folder of the FreeBSD suite)",
    )
    .option("--seed <n>", "seed of each script's stack", positiveInt, 1)
    .option(
      "--offload",
      "offloaded mode: each connection runs on the software offload target once established",
    )
    .option(
      "--offload-delay <us>",
      "with --offload: microseconds the target takes to complete a state operation (default 0)",
      positiveInt,
    )
    .option("--profile <name>", "whose environment the scripts were written for: freebsd (default) or linux")
    .option(
      "--against <dut>",
      "the device under test: stack (default, ours on virtual time), kernel (the running Linux kernel on real time; --profile linux, root; DIR may be one script), or both (the differential report: each script on the kernel and on our stack, and where only one passes, the other's first difference)",
    )
    .option(
      "--by-folder",
      "print the per-folder table with the scripts that did not pass split by the kind of their first failure",
    )
    .action(
      (
        dir: string | undefined,
        opts: {
          pcap?: string;
          filter?: string;
          folder?: string[];
          seed: number;
          offload?: boolean;
          offloadDelay?: number;
          byFolder?: boolean;
          profile?: string;
          against?: string;
        },
      ) => {
        process.exitCode = conformanceCommand(dir, opts);
      },
    );

  p.command("serve")
    .description(
      "serve HTTP on our stack to the real Linux kernel through a TAP device in a new network namespace (needs root)",
    )
    .option("-p, --port <n>", "TCP port (1..65535)", tcpPort, 80)
    .option("--seed <n>", "seed of the stack and the fault stages", positiveInt, 1)
    .option("--loss <p>", "frame loss probability, each direction", probability)
    .option("--delay <ms>", "added one-way delay in ms, each direction", nonNegative)
    .option("--jitter <ms>", "random extra delay up to ms, each direction", nonNegative)
    .option("--reorder <p>", "probability a frame is held back 3 frames, each direction", probability)
    .option("--pcap <file>", "capture the frames at our side into a classic pcap file")
    .addOption(
      new Option(
        "--tap-offload <mode>",
        "TAP offloads: tso (64 KiB segments both ways), gso (ours merged only), off (wire-sized frames)",
      )
        .choices(["tso", "gso", "off"])
        .default("tso"),
    )
    .addOption(
      new Option(
        "--target <kind>",
        "where served connections run: worker (the software offload target on its own thread, owning the TAP link; each connection is offloaded once accepted), inline (the same target in this thread), none (no chimney: the stack alone)",
      )
        .choices(SERVE_TARGETS)
        .default(DEFAULT_SERVE_TARGET),
    )
    .option(
      "--flap <ms>",
      "every ms milliseconds, terminate each offloaded served connection and offload each one on the host (needs a target)",
      flapMs,
    )
    .option(
      "--workers <n>",
      "with --target worker: target threads, connections spread across them by RSS (default: the cores but one, at least 1)",
      positiveInt,
    )
    .action(
      (opts: {
        port: number;
        seed: number;
        loss?: number;
        delay?: number;
        jitter?: number;
        reorder?: number;
        pcap?: string;
        tapOffload: TapOffload;
        target: string;
        flap?: number;
        workers?: number;
      }) =>
        serve({
          port: opts.port,
          seed: opts.seed,
          loss: opts.loss,
          delayMs: opts.delay,
          jitterMs: opts.jitter,
          reorder: opts.reorder,
          pcap: opts.pcap,
          offload: opts.tapOffload,
          target: opts.target,
          flapMs: opts.flap,
          workers: opts.workers,
        }),
    );
  p.command("handoff")
    .description(
      "move one live TCP connection kernel -> our stack -> offload target -> kernel while a peer streams both ways, and verify it (needs root)",
    )
    .option("--moves <n>", "round trips (1..50)", positiveInt, 1)
    .option("--bytes <n>", "bytes each way (1 MiB .. 4 GiB)", positiveInt, 64 << 20)
    .option("--seed <n>", "seed of the streams and of our stack", positiveInt, 1)
    .option("--json", "print the moves, digests and RST counts as JSON")
    .action(async (opts: { moves: number; bytes: number; seed: number; json?: boolean }) => {
      process.exitCode = await handoff(opts);
    });
  return p;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  exitQuietlyOnClosedStdout();
  const p = program();
  const verbose = argv.includes("--verbose");
  // --verbose is read here, wherever it stands; it is not passed on.
  const rest = argv.filter((a) => a !== "--verbose");
  // No command word (only options such as --seed 3): the demo is the main job.
  const words = rest.filter((a, i) => !a.startsWith("-") && !(rest[i - 1] ?? "").startsWith("--"));
  const help = ["--help", "-h", "--version", "-V"].some((o) => rest.includes(o));
  const args = words.length === 0 && !help ? ["demo", ...rest] : rest;
  try {
    await p.parseAsync(args, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one-line message (or the help text).
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    return reportError(e, verbose);
  }
}
