// The packetdrill runner against the running Linux kernel (src/conformance/runner/kernel.ts):
// a handful of google/packetdrill scripts (read from the peer suite, never copied) must pass,
// and a deliberately wrong script must fail with its first difference. Needs root and the
// repair addon (skipped visibly otherwise); the google scripts need the peer suite (skipped
// with a message when absent). Real time: a few seconds.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { kernelModeUnavailable, runScriptOnKernel } from "../src/conformance/runner/kernel.js";
import { loadRepairAddon } from "../src/device/repair.js";
import { initAndCode, NOTSENT_LOWAT_UINT, UNKNOWN_QDISC, WRONG } from "./support/pdk-scripts.js";
import { peerSuiteOrSkip } from "./support/peer-suite.js";

const skip = kernelModeUnavailable() ?? false;

/**
 * Scripts of gtests/net/tcp that the kernel passes: handshakes, blocking calls, SACK recovery,
 * close; an init command with set_sysctls.py (a continued line) and `%{ }%` snippets over
 * tcp_info (slow-start-after-idle); snippets that define their own names (hystart); NULL
 * buffers the kernel answers with EFAULT (syscall-invalid-buf-ptr); epoll (epoll_in_edge) and
 * poll (notsent-lowat-sysctl) on the kernel's own descriptors; a fast open server with the
 * harness's cookie (basic-rw) and a `= -1` without an errno (reset-after-accept); a second
 * passive connection with its own remote port, sequence numbers relative to a SYN at 999000,
 * and a script descriptor reused (pure-syn-data); --local_ip/--remote_ip with the script's own
 * fast open key (opt34/simple1); a burst the kernel sends in pieces, the first with PSH, taken
 * with the last piece's flags as packetdrill aggregates it (sendmsg_msg_more, prr-ss-ack-below-
 * snd_una-cubic); an iovec sent as one, so that with MSG_ZEROCOPY each entry is a fragment
 * (maxfrags); recvmsg on the error queue, which never waits (closed).
 */
const SCRIPTS = [
  "blocking/blocking-accept.pkt",
  "blocking/blocking-connect.pkt",
  "close/close-on-syn-sent.pkt",
  "fast_retransmit/fr-4pkt-sack.pkt",
  "shutdown/shutdown-wr-close.pkt",
  "slow_start/slow-start-after-idle.pkt",
  "cubic/cubic-hystart-delay-rtt-jumps-upward.pkt",
  "syscall_bad_arg/syscall-invalid-buf-ptr.pkt",
  "epoll/epoll_in_edge.pkt",
  "notsent_lowat/notsent-lowat-sysctl.pkt",
  "fastopen/server/basic-rw.pkt",
  "fastopen/server/reset-after-accept.pkt",
  "fastopen/server/pure-syn-data.pkt",
  "fastopen/server/opt34/simple1.pkt",
  "nagle/sendmsg_msg_more.pkt",
  "fast_recovery/prr-ss-ack-below-snd_una-cubic.pkt",
  "zerocopy/maxfrags.pkt",
  "zerocopy/closed.pkt",
];

void describe("packetdrill scripts against the Linux kernel", { skip }, () => {
  void test("google scripts pass", (t) => {
    const suite = peerSuiteOrSkip(t, "google");
    if (suite === undefined) return;
    const base = join(suite, "gtests", "net", "tcp");
    for (const rel of SCRIPTS) {
      const path = join(base, rel);
      assert.ok(existsSync(path), `${rel} is in the suite`);
      const r = runScriptOnKernel(readFileSync(path, "utf8"), { file: rel, dir: dirname(path) });
      assert.equal(r.message, undefined, `${rel} passes`);
      assert.equal(r.passed, true);
    }
  });

  void test("a wrong script fails at its first difference", () => {
    const r = runScriptOnKernel(WRONG, { file: "wrong.pkt" });
    assert.equal(r.passed, false);
    assert.equal(r.failure, "packet");
    const left = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    assert.ok(!left.includes(`chimney-pdk-${process.pid}-`), `the run's namespaces are removed: ${left}`);
    assert.match(
      r.message ?? "",
      /^wrong\.pkt:8: expected > S\. 0:0\(0\) ack 1 .*wscale 5.* got .*\[wscale want 5 got 8\]$/,
    );
  });

  void test("the init command runs first, and %{ }% snippets assert on the socket's tcp_info", () => {
    const good = runScriptOnKernel(initAndCode(false), { file: "init.pkt" });
    assert.equal(good.message, undefined, "timestamps off by the init command; cwnd 10, established");
    assert.equal(good.passed, true);
    const bad = runScriptOnKernel(initAndCode(true), { file: "init.pkt" });
    assert.equal(bad.failure, "assert");
    assert.match(
      bad.message ?? "",
      /^init\.pkt:\d+: expected %\{ .* \}% got 'assert tcpi_snd_cwnd == 99' failed \(tcpi_snd_cwnd=10\)$/,
    );
  });

  void test("an int option compares as a C int; a qdisc the kernel lacks makes the script unsupported", () => {
    const lowat = runScriptOnKernel(NOTSENT_LOWAT_UINT, { file: "lowat.pkt" });
    assert.equal(lowat.message, undefined, "4294967295 in the script is the kernel's -1");
    const q = runScriptOnKernel(UNKNOWN_QDISC, { file: "q.pkt" });
    assert.equal(q.failure, "unsupported");
    assert.match(q.message ?? "", /unsupported: the nosuchqdisc qdisc/);
  });

  void test("poll on a descriptor the script never opened reports POLLNVAL, as poll(2) does", () => {
    const script = (revents: string): string =>
      `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 poll([{fd=9, events=POLLIN, revents=${revents}}], 1, 0) = 1\n`;
    const good = runScriptOnKernel(script("POLLNVAL"), { file: "nval.pkt" });
    assert.equal(good.message, undefined);
    assert.equal(good.passed, true);
    const bad = runScriptOnKernel(script("0"), { file: "nval.pkt" });
    assert.equal(bad.failure, "syscall");
    assert.match(bad.message ?? "", /expected poll\(\) revents of fd 9 = 0x0 got 0x20/);
  });

  void test("sendIov: a vector longer than the kernel takes is EMSGSIZE, a descriptor that is no socket ENOTSOCK", () => {
    // (Sending a real iovec is zerocopy/maxfrags above: each entry a fragment of its own.)
    const addon = loadRepairAddon();
    const code = (want: string) => (e: unknown) => (e as { code?: string }).code === want;
    assert.throws(() => addon.sendIov(0, new Array<number>(1025).fill(1), 0), code("EMSGSIZE"));
    const fd = openSync("/dev/null", "w");
    try {
      assert.throws(() => addon.sendIov(fd, [1, 2, 3], 0), code("ENOTSOCK"));
    } finally {
      closeSync(fd);
    }
  });

  void test("a script the kernel mode cannot run is unsupported, not a crash", () => {
    const r = runScriptOnKernel("--ip_version=ipv6\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", {
      file: "v6.pkt",
    });
    assert.equal(r.failure, "unsupported");
    assert.match(r.message ?? "", /unsupported: ip_version ipv6/);
  });
});
