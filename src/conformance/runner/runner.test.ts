import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chooseDefines, runScript } from "./dut.js";
import { checkKnownFailures, parseKnownFailures } from "./known-failures.js";
import { applySysctl, defaultSettings } from "./policy.js";
import { runPyAsserts } from "./pycode.js";
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
    const r1 = runScript(LISTEN_SCRIPT.replace("accept(3, ..., ...) = 4", "accept(3, ..., ...) = 5"), {
      file: "a.pkt",
    });
    assert.match(r1.message ?? "", /expected accept\(\) = 5 got 4/);
    const r2 = runScript(LISTEN_SCRIPT.replace("== TCPI_LISTEN", "== TCPI_CLOSED"), { file: "b.pkt" });
    assert.match(r2.message ?? "", /b\.pkt:8: .*tcpi_state=1/);
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

void test("TCP over UDP segments and symbolic fast open cookies fail the script with a clear message", () => {
  const inbound = runScript(
    LISTEN_SCRIPT.replace(
      "+0.10 < S  0:0(0) win 32767 <mss 1460,sackOK,eol,eol>",
      "+0.10 < S  0:0(0) win 32767 <mss 1460,sackOK,eol,eol>/udp(1 > 9811)",
    ),
    { file: "u.pkt" },
  );
  assert.equal(inbound.passed, false);
  assert.match(inbound.message ?? "", /^u\.pkt:9: TCP over UDP \(\/udp\(\.\.\.\)\) is not supported/);
  const outbound = runScript(
    LISTEN_SCRIPT.replace(
      "+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>",
      "+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>/udp(9811 > 1)",
    ),
    { file: "v.pkt" },
  );
  assert.equal(outbound.passed, false);
  assert.match(outbound.message ?? "", /^v\.pkt:10: .*TCP over UDP is not supported/);
  const cookie = runScript(
    LISTEN_SCRIPT.replace("<mss 1460,sackOK,eol,eol>", "<mss 1460,sackOK,FO TFO_COOKIE>"),
    { file: "w.pkt" },
  );
  assert.equal(cookie.passed, false);
  assert.match(cookie.message ?? "", /^w\.pkt:9: fast open cookie TFO_COOKIE is a symbol/);
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
  assert.equal(applySysctl(s, "net.inet.tcp.blackhole", "2"), undefined);
  assert.deepEqual(s.unmapped, ["net.inet.tcp.blackhole=2"]);
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
  assert.ok(!r.ok && r.error.includes("tcpi_state=4"));
  assert.equal(runPyAsserts("import os", {}).ok, false);
});

void test("known failures: reasons are required; new failures and unexpected passes are both reported", () => {
  assert.equal(parseKnownFailures("a.pkt\n").ok, false);
  const k = parseKnownFailures("# comment\na.pkt  # why\nb.pkt # why too\nc.pkt # gone\n");
  assert.ok(k.ok);
  const check = checkKnownFailures(
    new Map([
      ["a.pkt", false],
      ["b.pkt", true],
      ["d.pkt", false],
    ]),
    k.value,
  );
  assert.deepEqual(check, { newFailures: ["d.pkt"], unexpectedPasses: ["b.pkt"], stale: ["c.pkt"] });
});
