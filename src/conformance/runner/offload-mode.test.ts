import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DUT_MAC, frameIp, GATEWAY_MAC, unframeIp } from "./device.js";
import { runScript } from "./dut.js";

/** A passive open, data both ways, then a close into TIME-WAIT; socket queries on the way. */
const DATA_SCRIPT = `--ip_version=ipv4
--tolerance_usecs=75000
 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.10 < S  0:0(0) win 32767 <mss 1460,sackOK,eol,eol>
+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+0.10 < .  1:1(0) ack 1 win 32767
+0.00 accept(3, ..., ...) = 4
+0.00 %{ assert tcpi_state == TCPI_ESTABLISHED }%
+0.00 \`sockstat -4 -P tcp -p 8080 -s | grep -c ESTABLISHED | grep 1\`
+0.00 write(4, ..., 1000) = 1000
+0.00 > P. 1:1001(1000) ack 1 win 65535
+0.10 < P. 1:501(500) ack 1001 win 32767
+0.00 read(4, ..., 1000) = 500
+0.00 close(4) = 0
+0.00 > F. 1001:1001(0) ack 501 win 65535
+0.10 < F. 501:501(0) ack 1002 win 32767
+0.00 > . 1002:1002(0) ack 502 win 65535
+0.00 \`sockstat -4 -P tcp -p 8080 -s | grep -c TIME_WAIT | grep 1\`
`;

/** An active open, then a RST at `seq` (script-relative); `errno` is what SO_ERROR must say. */
function rstScript(insecure: boolean, seq: number, errno: string): string {
  return `--ip_version=ipv6
--tolerance_usecs=75000
 0.00 \`sysctl -w net.inet.tcp.insecure_rst=${insecure ? 1 : 0}\`
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0.00 > S 0:0(0) win 65535 <mss 1440,nop,wscale 6,sackOK,TS val 100 ecr 0>
+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1440,sackOK,eol,eol>
+0.00 > . 1:1(0) ack 1 win 65535
+0.10 < R ${seq}:${seq}(0) win 32767
+0.00 getsockopt(3, SOL_SOCKET, SO_ERROR, [${errno}], [4]) = 0
`;
}

void describe("offload mode", () => {
  void test("data, socket queries and the close run through the target and pass as on the host", () => {
    const host = runScript(DATA_SCRIPT, { file: "d.pkt" });
    assert.equal(host.message, undefined);
    assert.equal(host.offload, undefined, "host mode has no chimney");
    const r = runScript(DATA_SCRIPT, { file: "d.pkt", mode: "offload" });
    assert.equal(r.message, undefined);
    assert.ok(r.passed);
    const a = r.offload;
    assert.ok(a !== undefined);
    assert.equal(a.initiates, 1);
    assert.equal(a.initiateFailures, 0);
    assert.equal(a.offloadedConnections, 1);
    // TIME-WAIT is not offloadable (ST-9): the target asked for the upload.
    assert.equal(a.terminates, 1);
    assert.equal(a.stillOffloaded, 0);
    assert.equal(a.liveNbls, 0, "no NBL leaked");
    // tcpi_state and sockstat of the offloaded connection were QueryOffload requests.
    assert.equal(a.queries, 2);
  });

  void test("an operation delay opens the offloading window: state from the host, sends held (IO-3)", () => {
    const r = runScript(DATA_SCRIPT, { file: "d.pkt", mode: "offload", offloadDelayUs: 20_000 });
    assert.equal(r.message, undefined);
    assert.equal(r.offload?.offloadedConnections, 1);
    // tcpi_state and sockstat ran while the initiate was in flight: no query, the state the
    // connection left the host with.
    assert.equal(r.offload?.queries, 0);
    // Longer than the tolerance: the write waits for the initiate, so the data leaves too late.
    const late = runScript(DATA_SCRIPT, { file: "d.pkt", mode: "offload", offloadDelayUs: 100_000 });
    assert.match(
      late.message ?? "",
      /^d\.pkt:14: expected > P\. 1:1001\(1000\) .* got nothing by 0\.275000$/,
    );
    assert.equal(late.offload?.stillOffloaded, 1, "the initiate is still in flight");
  });

  void test("a wrong expectation still fails in offload mode", () => {
    const r1 = runScript(DATA_SCRIPT.replace("read(4, ..., 1000) = 500", "read(4, ..., 1000) = 400"), {
      file: "w.pkt",
      mode: "offload",
    });
    assert.match(r1.message ?? "", /^w\.pkt:16: expected read\(\) = 400 got 500$/);
    const r2 = runScript(DATA_SCRIPT.replace("> P. 1:1001(1000) ack 1", "> P. 1:1001(1000) ack 2"), {
      file: "x.pkt",
      mode: "offload",
    });
    assert.match(r2.message ?? "", /^x\.pkt:14: .*ack want 2 got 1/);
    const r3 = runScript(DATA_SCRIPT.replace("grep -c ESTABLISHED", "grep -c CLOSE_WAIT"), {
      file: "y.pkt",
      mode: "offload",
    });
    assert.match(r3.message ?? "", /^y\.pkt:12: command .* failed/);
  });

  void test("an exact RST aborts the offloaded connection (TcpIndicateAbort -> ECONNRESET)", () => {
    for (const mode of ["host", "offload"] as const) {
      const r = runScript(rstScript(false, 1, "ECONNRESET"), { file: "r.pkt", mode });
      assert.equal(r.message, undefined, mode);
    }
  });

  void test("insecure_rst does not reach an offloaded connection (NS-3 / BR-0): challenge ACK", () => {
    const script = rstScript(true, 1000, "ECONNRESET");
    const host = runScript(script, { file: "i.pkt" });
    assert.equal(host.message, undefined, "the host honours insecure_rst=1");
    const off = runScript(script, { file: "i.pkt", mode: "offload" });
    assert.equal(off.offload?.offloadedConnections, 1);
    assert.match(off.message ?? "", /^i\.pkt:11: expected getsockopt SO_ERROR = ECONNRESET got 0$/);
    // With RFC 5961 the connection lives on; the target answered with a challenge ACK.
    const secure = `${rstScript(true, 1000, "0")}+0.00 > . 1:1(0) ack 1 win 65535\n`;
    assert.equal(runScript(secure, { file: "s.pkt", mode: "offload" }).message, undefined);
  });
});

void test("frameIp / unframeIp: bare IP in and out of Ethernet, padding and VLAN tags removed", () => {
  const v4 = Uint8Array.of(0x45, 0, 0, 24, ...new Array<number>(20).fill(7));
  const f = frameIp(v4, GATEWAY_MAC, DUT_MAC);
  assert.deepEqual([...f.subarray(0, 6)], [...DUT_MAC]);
  assert.deepEqual([...f.subarray(6, 12)], [...GATEWAY_MAC]);
  assert.deepEqual([f[12], f[13]], [0x08, 0x00]);
  assert.deepEqual(unframeIp(f), v4);
  // Padded to the Ethernet minimum: the IP total length wins.
  const padded = new Uint8Array(60);
  padded.set(f);
  assert.deepEqual(unframeIp(padded), v4);
  // IPv6: payload length + 40.
  const v6 = new Uint8Array(48);
  v6[0] = 0x60;
  v6[5] = 8;
  const f6 = frameIp(v6, GATEWAY_MAC, DUT_MAC);
  assert.deepEqual([f6[12], f6[13]], [0x86, 0xdd]);
  assert.deepEqual(unframeIp(f6), v6);
  // An 802.1Q tag is skipped.
  const tagged = new Uint8Array(f.length + 4);
  tagged.set(f.subarray(0, 12));
  tagged.set([0x81, 0x00, 0x00, 0x05, 0x08, 0x00], 12);
  tagged.set(v4, 18);
  assert.deepEqual(unframeIp(tagged), v4);
  // ARP (and anything not IP) is not a packet for the script.
  const arp = new Uint8Array(42);
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(unframeIp(arp), undefined);
  assert.equal(unframeIp(new Uint8Array(10)), undefined);
});
