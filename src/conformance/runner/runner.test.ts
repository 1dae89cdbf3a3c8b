import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chooseDefines, runScript } from "./dut.js";
import {
  applyingToKernel,
  checkKnownFailures,
  normaliseFailure,
  parseKnownFailures,
} from "./known-failures.js";
import { applySysctl, defaultSettings } from "./policy.js";
import { runPyAsserts } from "./pycode.js";
import { formatByFolder, summarize, type Verdict } from "./run.js";
import { parsePacketdrill } from "../packetdrill/index.js";

/** A passive open and close, written the way the FreeBSD suite writes its scripts. */
const LISTEN_SCRIPT = `--ip_version=ipv4
--tolerance_usecs=75000
 0.00 \`sysctl -w net.inet.tcp.rfc1323=1\`
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.00 %{ assert tcpi_state == TCPI_LISTEN }%
+0.10 < S  0:0(0) win 32767 <mss 1460,sackOK,eol,eol>
+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+0.00 \`sockstat -4 -P tcp -p 8080 -s | grep -c SYN_RCVD | grep 1\`
+0.10 < .  1:1(0) ack 1 win 32767
+0.00 accept(3, ..., ...) = 4
+0.00 %{ assert tcpi_state == TCPI_ESTABLISHED }%
+0.00 close(4) = 0
+0.00 > F. 1:1(0) ack 1 win 65535
+0.10 < F. 1:1(0) ack 2 win 32767
+0.00 > . 2:2(0) ack 2 win 65535
+0.00 close(3) = 0
`;

void describe("runScript", () => {
  void test("a correct script passes", () => {
    const r = runScript(LISTEN_SCRIPT, { file: "listen.pkt" });
    assert.equal(r.message, undefined);
    assert.equal(r.passed, true);
  });

  void test("a wrong expectation fails with one line naming file, line, expected and got", () => {
    const bad = LISTEN_SCRIPT.replace("> S. 0:0(0) ack 1 win", "> S. 0:0(0) ack 7 win");
    const r = runScript(bad, { file: "listen.pkt" });
    assert.equal(r.passed, false);
    assert.match(
      r.message ?? "",
      /^listen\.pkt:10: expected > S\. 0:0\(0\) ack 7 .* got .*Flags \[S\.\].*ack want 7 got 1/,
    );
    assert.ok(!(r.message ?? "").includes("\n"));
  });

  void test("an errno is compared only when the script names one, as packetdrill does", () => {
    const script = (result: string): string =>
      `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 accept(3, ..., ...) = ${result}\n`;
    assert.equal(runScript(script("-1"), { file: "e.pkt" }).message, undefined, "= -1 takes any errno");
    assert.equal(runScript(script("-1 EINVAL"), { file: "e.pkt" }).message, undefined);
    const wrong = runScript(script("-1 EBADF"), { file: "e.pkt" });
    assert.match(wrong.message ?? "", /^e\.pkt:2: expected accept\(\) = -1 EBADF got -1 EINVAL$/);
  });

  void test("an unexpected extra packet fails the next comparison", () => {
    const bad = LISTEN_SCRIPT.replace(
      "+0.00 > . 2:2(0) ack 2 win 65535\n",
      "+0.00 > F. 2:2(0) ack 2 win 65535\n",
    );
    const r = runScript(bad, { file: "x.pkt" });
    assert.equal(r.passed, false);
    assert.match(r.message ?? "", /^x\.pkt:18: /);
  });

  void test("a wrong system call result and a wrong tcpi_state fail", () => {
    const r1 = runScript(LISTEN_SCRIPT.replace("listen(3, 1) = 0", "listen(3, 1) = -1"), {
      file: "a.pkt",
    });
    assert.match(r1.message ?? "", /expected listen\(\) = -1 got 0/);
    // A descriptor a call creates is named by the script (as packetdrill maps script descriptors
    // to live ones): accept() = 5 makes 5 the accepted socket, and close(4) then fails.
    const r3 = runScript(LISTEN_SCRIPT.replace("accept(3, ..., ...) = 4", "accept(3, ..., ...) = 5"), {
      file: "c.pkt",
    });
    assert.match(r3.message ?? "", /c\.pkt:15: close: fd 4 is not open/);
    const r2 = runScript(LISTEN_SCRIPT.replace("== TCPI_LISTEN", "== TCPI_CLOSED"), { file: "b.pkt" });
    assert.match(r2.message ?? "", /b\.pkt:8: .*tcpi_state=1/);
  });

  void test("SO_RCVBUF reads as set until the handshake completes, then as FreeBSD rounds it to the MSS", () => {
    // 65536 as set; the stack holds 65700 (45 segments of 1460), as FreeBSD once connected.
    const before = (v: number): string =>
      LISTEN_SCRIPT.replace(
        "+0.00 listen(3, 1) = 0",
        `+0.00 listen(3, 1) = 0\n+0.00 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [${v}], [4]) = 0`,
      );
    const after = (v: number): string =>
      LISTEN_SCRIPT.replace(
        "+0.00 close(4) = 0",
        `+0.00 getsockopt(4, SOL_SOCKET, SO_RCVBUF, [${v}], [4]) = 0\n+0.00 close(4) = 0`,
      );
    for (const [script, passes] of [
      [before(65536), true],
      [before(65700), false],
      [before(65600), false],
      [after(65700), true],
      [after(65536), false],
    ] as const) {
      const r = runScript(script, { file: "r.pkt" });
      assert.equal(r.passed, passes, r.message ?? script);
      if (!passes) assert.match(r.message ?? "", /expected getsockopt SO_RCVBUF = \d+ got (65536|65700)/);
    }
  });

  void test("timing outside the tolerance fails", () => {
    const r = runScript(LISTEN_SCRIPT.replace("+0.00 > S. 0:0(0)", "+0.50 > S. 0:0(0)"), { file: "t.pkt" });
    assert.match(r.message ?? "", /\(timing\)$/);
  });

  void test("a capture is kept when asked for", () => {
    const r = runScript(LISTEN_SCRIPT, { file: "c.pkt", capture: true });
    assert.equal(r.frames.filter((f) => f.direction === "in").length, 3);
    assert.equal(r.frames.filter((f) => f.direction === "out").length, 3);
  });
});

void test("TCP over UDP, fast open and TCP-MD5 classify the script as unsupported, before it runs", () => {
  const inbound = runScript(
    LISTEN_SCRIPT.replace(
      "+0.10 < S  0:0(0) win 32767 <mss 1460,sackOK,eol,eol>",
      "+0.10 < S  0:0(0) win 32767 <mss 1460,sackOK,eol,eol>/udp(1 > 9811)",
    ),
    { file: "u.pkt" },
  );
  assert.equal(inbound.passed, false);
  assert.equal(inbound.failure, "unsupported");
  assert.equal(inbound.unsupported, "tcp-over-udp");
  assert.match(inbound.message ?? "", /^u\.pkt:9: unsupported: tcp-over-udp \(TCP over UDP/);
  const cookie = runScript(
    LISTEN_SCRIPT.replace("<mss 1460,sackOK,eol,eol>", "<mss 1460,sackOK,FO TFO_COOKIE>"),
    { file: "w.pkt" },
  );
  assert.equal(cookie.unsupported, "fast-open");
  // A fast open server is missing; the client side is ours (its sysctl is a knob).
  const sysctl = runScript(
    LISTEN_SCRIPT.replace("rfc1323=1", "rfc1323=1`\n+0 `sysctl -w net.inet.tcp.fastopen.server_enable=1"),
    { file: "f.pkt" },
  );
  assert.equal(sysctl.unsupported, "fast-open");
  for (const v of [0, 1]) {
    const client = runScript(
      LISTEN_SCRIPT.replace(
        "rfc1323=1",
        `rfc1323=1\`\n+0 \`sysctl -w net.inet.tcp.fastopen.client_enable=${v}`,
      ),
      { file: "g.pkt" },
    );
    assert.equal(client.passed, true, `fastopen.client_enable=${v}: ${client.message ?? ""}`);
  }
  const server = runScript(
    LISTEN_SCRIPT.replace(
      "+0.00 listen(3, 1) = 0",
      "+0.00 setsockopt(3, IPPROTO_TCP, TCP_FASTOPEN, [1], 4) = 0\n+0.00 listen(3, 1) = 0",
    ),
    { file: "h.pkt" },
  );
  assert.equal(server.unsupported, "fast-open", server.message);
  const md5 = runScript(`--tcp_md5_secret=secret\n${LISTEN_SCRIPT}`, { file: "m.pkt" });
  assert.equal(md5.unsupported, "tcp-md5");
  // A script that does not parse is looked at as text; its parse error stays in the message.
  const broken = runScript("s// x\n0 sendto(3, ..., 10, MSG_FASTOPEN, ..., ...) = 10\n", {
    file: "b.pkt",
  });
  assert.equal(broken.failure, "unsupported");
  assert.match(
    broken.message ?? "",
    /unsupported: fast-open .*does not parse either: .*expected an event time/,
  );
  const garbage = runScript("s// x\n", { file: "c.pkt" });
  assert.equal(garbage.failure, "parse");
  // TCP_FASTOPEN alone is a fast open client, which we are: the parse error is the failure.
  const client = runScript("s// x\n0 setsockopt(3, IPPROTO_TCP, TCP_FASTOPEN, [1], 4) = 0\n", {
    file: "d.pkt",
  });
  assert.equal(client.failure, "parse");
});

void test("the by-folder table splits what did not pass by the kind of its first failure", () => {
  const results = [
    runScript(LISTEN_SCRIPT, { file: "a/one.pkt" }),
    runScript(LISTEN_SCRIPT.replace("ack 1 win 65535", "ack 9 win 65535"), { file: "a/two.pkt" }),
    runScript(`--udp_encapsulation=tcp\n${LISTEN_SCRIPT}`, { file: "b/three.pkt" }),
    runScript(LISTEN_SCRIPT.replace("listen(3, 1)", "frobnicate(3, 1)"), { file: "b/four.pkt" }),
  ].map((r) => {
    const verdict: Verdict = r.passed ? "pass" : r.failure === "unsupported" ? "unsupported" : "fail";
    return { ...r, verdict, pcap: undefined };
  });
  const run = summarize(results, 0);
  assert.deepEqual(
    run.folders.map((f) => [f.folder, f.total, f.pass, f.unsupported, f.byKind]),
    [
      ["a", 2, 1, 0, { packet: 1 }],
      ["b", 2, 0, 1, { unsupported: 1, runner: 1 }],
    ],
  );
  const text = formatByFolder(run);
  const lines = text.split("\n");
  assert.match(lines[0] ?? "", /^folder\s+scripts\s+pass\s+known\s+x-unsupported\s+x-runner\s+x-packet/);
  assert.match(lines[1] ?? "", /^a\s+2\s+1\s+0\s+0\s+0\s+1\s+.*50\.0$/);
  assert.match(lines[3] ?? "", /^all\s+4\s+1\s+0\s+1\s+1\s+1\s+.*25\.0$/);
  assert.match(text, /^unsupported: tcp-over-udp 1$/m);
});

void test("STANDARD branches are chosen over FreeBSD ones", () => {
  const text =
    "0 close(3) = 0\n#ifdef STANDARD\n+0 close(4) = 0\n#endif\n#ifdef FreeBSD\n+0 close(5) = 0\n#endif\n";
  const s = parsePacketdrill(text, { file: "d.pkt" });
  assert.ok(s.ok);
  assert.deepEqual(chooseDefines(s.value), ["STANDARD"]);
  const only = parsePacketdrill("0 close(3) = 0\n#ifdef FreeBSD\n+0 close(5) = 0\n#endif\n", {
    file: "e.pkt",
  });
  assert.ok(only.ok);
  assert.deepEqual(chooseDefines(only.value), ["FreeBSD"]);
});

void test("sysctls map onto TcpConfig; unknown ones are errors; unhonoured values are recorded", () => {
  const s = defaultSettings();
  assert.equal(applySysctl(s, "net.inet.tcp.insecure_rst", "1"), undefined);
  assert.equal(s.tcp.rfc5961Rst, false, "RST checks off");
  assert.equal(s.tcp.rfc5961Syn, undefined, "SYN checks untouched");
  assert.equal(s.tcp.rfc5961, undefined, "ACK checks untouched");
  assert.equal(applySysctl(s, "net.inet.tcp.insecure_syn", "1"), undefined);
  assert.equal(s.tcp.rfc5961Syn, false);
  assert.equal(applySysctl(s, "net.inet.tcp.drop_synfin", "1"), undefined);
  assert.equal(s.tcp.dropSynFin, true);
  assert.equal(applySysctl(s, "net.inet.tcp.rexmit_slop", "300"), undefined);
  assert.equal(s.tcp.rtoSlop, 300_000);
  assert.equal(applySysctl(s, "net.inet.tcp.keepinit", "5000"), undefined);
  assert.equal(s.tcp.connectTimeout, 5_000_000);
  assert.equal(applySysctl(s, "net.inet.tcp.rexmit_drop_options", "1"), undefined);
  assert.equal(s.tcp.synRetransmitDropOptions, true);
  assert.equal(applySysctl(s, "net.inet.tcp.rfc1323", "0"), undefined);
  assert.equal(s.tcp.timestamps, false);
  assert.equal(s.tcp.windowScaling, false);
  // RFC 3168: 1 asks for ECN and accepts it, 2 (the default) accepts it only, 0 is off.
  assert.equal(applySysctl(s, "net.inet.tcp.ecn.enable", "1"), undefined);
  assert.equal(s.tcp.ecn, "on");
  assert.equal(applySysctl(s, "net.inet.tcp.ecn.enable", "0"), undefined);
  assert.equal(s.tcp.ecn, "off");
  assert.equal(applySysctl(s, "net.inet.tcp.ecn.enable", "2"), undefined);
  assert.equal(s.tcp.ecn, "passive");
  assert.equal(applySysctl(s, "net.inet.tcp.ecn.maxretries", "0"), undefined);
  assert.equal(s.tcp.ecnSynRetries, 0);
  assert.equal(applySysctl(s, "net.inet.tcp.ecn.enable", "3"), undefined);
  assert.equal(s.tcp.ecn, "passive", "an unknown mode changes nothing");
  assert.equal(applySysctl(s, "net.inet.tcp.blackhole", "2"), undefined);
  assert.deepEqual(s.unmapped, ["net.inet.tcp.ecn.enable=3", "net.inet.tcp.blackhole=2"]);
  assert.match(applySysctl(s, "net.inet.tcp.nonsense", "1") ?? "", /unknown sysctl/);
});

void test("python asserts: simple forms evaluate, failures say why", () => {
  assert.deepEqual(runPyAsserts("assert tcpi_state == TCPI_SYN_SENT", { tcpi_state: 2 }), {
    ok: true,
    value: undefined,
  });
  assert.equal(runPyAsserts("assert tcpi_options & TCPI_OPT_SACK != 0", { tcpi_options: 2 }).ok, true);
  assert.equal(runPyAsserts("assert tcpi_options & TCPI_OPT_SACK != 0", { tcpi_options: 1 }).ok, false);
  const r = runPyAsserts("assert tcpi_state == TCPI_LISTEN", { tcpi_state: 4 });
  assert.ok(!r.ok && r.error.text.includes("tcpi_state=4"));
  assert.equal(runPyAsserts("import os", {}).ok, false);
  // Messages after a comma, chained comparisons, arithmetic, continuation lines.
  assert.equal(runPyAsserts("assert 990 <= tcpi_rtt <= 1010, tcpi_rtt", { tcpi_rtt: 1000 }).ok, true);
  assert.equal(runPyAsserts("assert 990 <= tcpi_rtt <= 1010, tcpi_rtt", { tcpi_rtt: 1011 }).ok, false);
  assert.equal(
    runPyAsserts("assert tcpi_snd_cwnd * 2 - 1 == 19;\\\n assert 1 < 2", { tcpi_snd_cwnd: 10 }).ok,
    true,
  );
  // Assignments persist for the next snippets through `globals`.
  const g: Record<string, number> = {};
  assert.equal(runPyAsserts("TCP_INFINITE_SSTHRESH = 0x7fffffff", {}, g).ok, true);
  assert.equal(
    runPyAsserts("assert tcpi_snd_ssthresh == TCP_INFINITE_SSTHRESH", { tcpi_snd_ssthresh: 0x7fffffff }, g)
      .ok,
    true,
  );
  // A name not in scope says which.
  const u = runPyAsserts("assert tcpi_busy_time == 0", {});
  assert.ok(!u.ok && u.error.unknownName === "tcpi_busy_time");
});

void test("known failures: reasons and expected failures are required; new, passing and changed failures are all reported", () => {
  assert.equal(parseKnownFailures("a.pkt\n").ok, false, "no reason");
  assert.equal(parseKnownFailures("a.pkt  # why\n").ok, false, "no expected failure");
  assert.equal(parseKnownFailures("a.pkt  # why\n= 3: x\n").ok, false, "the = line must be indented");
  assert.equal(parseKnownFailures("a.pkt  # why\n  = 3: x\na.pkt  # again\n  = 3: x\n").ok, false, "twice");
  const k = parseKnownFailures(
    "# comment\na.pkt  # why\n  = 12: expected > S. 0:0(0) ack 1 got … [flags want S.]\nb.pkt # why too\n  = 1: x\nc.pkt # gone\n  = 2: y\ne.pkt # moved\n  = 4: old\nf.pkt # now unsupported\n  = 1: z\ng.pkt # sometimes: real time\n  = 1: w\n",
  );
  assert.ok(k.ok, k.ok ? "" : k.error);
  assert.equal(k.value.get("a.pkt")?.expect, "12: expected > S. 0:0(0) ack 1 got … [flags want S.]");
  const check = checkKnownFailures(
    new Map([
      [
        "a.pkt",
        {
          passed: false,
          message:
            "a.pkt:12: expected > S. 0:0(0) ack 1 got 192.168.0.1.8080 > 192.0.2.1.47321: Flags [S.], seq 123, ack 7, win 65535, length 0 [flags want S.]",
        },
      ],
      ["b.pkt", { passed: true }],
      ["d.pkt", { passed: false, message: "d.pkt:1: x" }],
      ["e.pkt", { passed: false, message: "e.pkt:9: new" }],
      ["f.pkt", { passed: false, message: "f.pkt:1: unsupported: x", unsupported: true }],
      ["g.pkt", { passed: true }],
    ]),
    k.value,
  );
  assert.deepEqual(check, {
    newFailures: ["d.pkt"],
    unexpectedPasses: ["b.pkt"],
    passedSometimes: ["g.pkt"],
    changed: [{ path: "e.pkt", expected: "4: old", got: "9: new" }],
    stale: ["c.pkt", "f.pkt"],
  });
  assert.equal(k.value.get("g.pkt")?.referenceFails, false);
});

void test("known failures: 'packetdrill too:' scripts leave the kernel's figure, whatever they did this time", () => {
  const k = parseKnownFailures(
    "a.pkt # packetdrill too: line 3; why\n  = 3: x\nb.pkt # sometimes: packetdrill too: line 4; why\n  = 4: y\n" +
      "c.pkt # sometimes: real time\n  = 5: z\nd.pkt # why (not packetdrill too:)\n  = 6: w\n",
  );
  assert.ok(k.ok, k.ok ? "" : k.error);
  assert.deepEqual(
    ["a.pkt", "b.pkt", "c.pkt", "d.pkt"].map((f) => k.value.get(f)?.referenceFails),
    [true, true, false, false],
  );
  const results = [
    { file: "a.pkt", verdict: "known-failure" },
    { file: "b.pkt", verdict: "pass" },
    { file: "c.pkt", verdict: "pass" },
    { file: "d.pkt", verdict: "known-failure" },
    { file: "e.pkt", verdict: "pass" },
    { file: "f.pkt", verdict: "unsupported" },
    { file: "g.pkt", verdict: "unexpected-pass" },
  ];
  assert.deepEqual(applyingToKernel(results, k.value), { applicable: 4, passed: 3, excluded: 2 });
  // The normal form keeps the line, what was expected and the differences, not our packet.
  assert.equal(
    normaliseFailure("x.pkt:5: expected > . 1:1(0) ack 4 win 65535 at 0.010000 got nothing by 0.020000"),
    "5: expected > . 1:1(0) ack 4 win 65535 at 0.010000 got nothing by 0.020000",
  );
  assert.equal(
    normaliseFailure(
      "x.pkt:52: expected > S. 0:0(0) ack 1 win 65535 <mss 1460> at 1.100000 got 192.168.0.1.8080 > 192.0.2.1.47321: Flags [S.], seq 9, ack 1, win 65535, options [mss 1460], length 0 at 0.100000 (timing)",
    ),
    "52: expected > S. 0:0(0) ack 1 win 65535 <mss 1460> at 1.100000 got … at 0.100000 (timing)",
  );
});
