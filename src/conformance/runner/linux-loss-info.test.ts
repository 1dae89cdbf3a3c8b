// The Linux profile's loss accounting in TCP_INFO on our stack: RACK (tcp_recovery = 1 by
// default) finds the hole below a SACKed segment one reordering window after RACK.rtt, and
// tcpi_ca_state / tcpi_lost / tcpi_sacked / tcpi_retrans count it as Linux counts segments.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runScript } from "./dut.js";

const HEAD = `+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.00 < S  0:0(0) win 65535 <mss 1000,sackOK,eol,eol>
+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+0.01 < .  1:1(0) ack 1 win 65535
+0.00 accept(3, ..., ...) = 4
+0.00 write(4, ..., 10000) = 10000
+0.00 > P. 1:10001(10000) ack 1
`;

function run(body: string, recovery: string): ReturnType<typeof runScript> {
  const sysctl = `--tolerance_usecs=4000\n+0 \`sysctl -q net.ipv4.tcp_recovery=${recovery}\`\n`;
  return runScript(`${sysctl}${HEAD}${body}`, { file: "loss-info.pkt", profile: "linux" });
}

// Segment 8 (7001:8001) is SACKed 15 ms after the flight left (before the tail loss probe's
// 2 SRTT): segments 1..7 were sent before it, so RACK deems them lost once RACK.rtt (15 ms) plus
// the reordering window (a quarter of the 10 ms handshake RTT) has passed, and fast recovery
// resends the first.
const SACK_ONE = `+0.015 < . 1:1(0) ack 1 win 65535 <sack 7001:8001,nop,nop>
+0.0025 > . 1:1001(1000) ack 1
+0.00 %{
assert tcpi_ca_state == TCP_CA_Recovery, tcpi_ca_state
assert tcpi_lost == 7, tcpi_lost
assert tcpi_sacked == 1, tcpi_sacked
assert tcpi_retrans == 1, tcpi_retrans
}%
+0.00 < . 1:1(0) ack 10001 win 65535
+0.00 %{
assert tcpi_ca_state == TCP_CA_Open, tcpi_ca_state
assert tcpi_lost == 0, tcpi_lost
assert tcpi_sacked == 0, tcpi_sacked
}%
`;

void test("Linux profile, RFC 8985: a SACK above a hole resends it a reordering window after RACK.rtt, counted in tcpi_lost / tcpi_sacked / tcpi_retrans", () => {
  const r = run(SACK_ONE, "1");
  assert.equal(r.message, undefined);
  assert.equal(r.passed, true);
});

void test("Linux profile with tcp_recovery = 0: one SACKed segment is not enough (DupThresh), so the script fails where RACK would resend", () => {
  const r = run(SACK_ONE, "0");
  assert.equal(r.passed, false);
  assert.match(r.message ?? "", /1:1001\(1000\)/);
});
