// What both packetdrill runners read from a script's shell commands and snippets: the init
// command as the first event, command lines (continued lines joined), set_sysctls.py's quoted
// arguments, and Linux's struct tcp_info as the names packetdrill gives its Python.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePacketdrill, runEvents } from "../packetdrill/index.js";
import { commandLines, setSysctlsArgs, shellWords } from "./features.js";
import { LINUX_PY_SYMBOLS, linuxTcpInfo } from "./tcp-info.js";
import { runPyAsserts } from "./pycode.js";

void test("the init command is the first event, at relative time 0; the body follows under the defines", () => {
  const r = parsePacketdrill(
    "`sysctl -q net.ipv4.tcp_sack=0`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n",
  );
  assert.ok(r.ok);
  const evs = runEvents(r.value, ["Linux"]);
  assert.equal(evs.length, 2);
  assert.deepEqual(
    [evs[0]?.kind, evs[0]?.kind === "command" ? evs[0].command : undefined, evs[0]?.time],
    ["command", "sysctl -q net.ipv4.tcp_sack=0", { kind: "relative", usecs: 0 }],
  );
  assert.equal(evs[1]?.kind, "syscall");
  const none = parsePacketdrill("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n");
  assert.ok(none.ok);
  assert.equal(runEvents(none.value).length, 1);
});

void test("command lines: a backslash-newline continues a line; blank lines go", () => {
  assert.deepEqual(
    commandLines("../common/defaults.sh\n ../common/set_sysctls.py /proc/sys/a=1 \\\n\t/proc/sys/b=2\n\n"),
    ["../common/defaults.sh", "../common/set_sysctls.py /proc/sys/a=1  \t/proc/sys/b=2"],
  );
});

void test("set_sysctls.py arguments keep their quoted values whole", () => {
  assert.deepEqual(shellWords(`a "b c"  'd e'f ""`), ["a", "b c", "d ef", ""]);
  assert.deepEqual(
    setSysctlsArgs(
      '../common/set_sysctls.py /proc/sys/net/ipv4/tcp_wmem="4096 50000 4194304" /proc/sys/net/ipv4/tcp_min_tso_segs=10',
    ),
    [
      { path: "/proc/sys/net/ipv4/tcp_wmem", name: "net.ipv4.tcp_wmem", value: "4096 50000 4194304" },
      { path: "/proc/sys/net/ipv4/tcp_min_tso_segs", name: "net.ipv4.tcp_min_tso_segs", value: "10" },
    ],
  );
  assert.equal(setSysctlsArgs("set_sysctls.py /proc/sys/x=1 oops"), "oops");
  assert.equal(setSysctlsArgs("sysctl -q a=1"), undefined);
});

void test("Linux tcp_info: fields at their offsets, wscales from one byte, u64s as numbers, short buffers partial", () => {
  const raw = new Uint8Array(232);
  const v = new DataView(raw.buffer);
  v.setUint8(0, 1); // tcpi_state ESTABLISHED
  v.setUint8(1, 3); // tcpi_ca_state Recovery
  v.setUint8(5, 1 | 4); // timestamps, wscale
  v.setUint8(6, (8 << 4) | 7); // rcv_wscale 8, snd_wscale 7
  v.setUint32(16, 1000, true); // snd_mss
  v.setUint32(76, 0x7fffffff, true); // snd_ssthresh
  v.setUint32(80, 10, true); // snd_cwnd
  v.setBigUint64(184, 20_000n, true); // sndbuf_limited
  v.setUint32(192, 42, true); // delivered
  v.setUint32(228, 0xfffffff0, true); // snd_wnd, the last field this buffer holds
  const info = linuxTcpInfo(raw);
  assert.equal(info["tcpi_state"], LINUX_PY_SYMBOLS["TCP_ESTABLISHED"]);
  assert.equal(info["tcpi_ca_state"], LINUX_PY_SYMBOLS["TCP_CA_Recovery"]);
  assert.equal(info["tcpi_snd_wscale"], 7);
  assert.equal(info["tcpi_rcv_wscale"], 8);
  assert.equal(info["tcpi_snd_mss"], 1000);
  assert.equal(info["tcpi_snd_ssthresh"], 0x7fffffff);
  assert.equal(info["tcpi_snd_cwnd"], 10);
  assert.equal(info["tcpi_sndbuf_limited"], 20_000);
  assert.equal(info["tcpi_delivered"], 42);
  assert.equal(info["tcpi_snd_wnd"], 0xfffffff0);
  const short = linuxTcpInfo(raw.subarray(0, 100)); // an older kernel's shorter struct
  assert.equal(short["tcpi_snd_cwnd"], 10);
  assert.equal(short["tcpi_delivered"], undefined);
  // As a script's snippet reads them.
  const env = { ...LINUX_PY_SYMBOLS, ...info };
  assert.ok(
    runPyAsserts("assert tcpi_options & TCPI_OPT_WSCALE != 0; assert tcpi_ca_state == TCP_CA_Recovery", env)
      .ok,
  );
  assert.ok(!runPyAsserts("assert tcpi_snd_cwnd == 11", env).ok);
});
