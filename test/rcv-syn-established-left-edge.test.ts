// Regression test for a host-side chimney bug shown by the FreeBSD suite's
// state-event-engine/rcv-syn-established/rcv-syn-established-left-edge-*.pkt in offloaded mode
// (`chimney conformance --offload`).
//
// A SYN with SEG.SEQ = RCV.NXT reaches an offloaded connection. The target does what spec 15.2
// NS-2 asks: it requests the upload and reports the connection as TcpConnectionClosed. The
// offload manager (src/host/offload-manager.ts, `#onTcpUploaded`) then ends the connection with
// `{ kind: "closed", reason: "fin", error: undefined }`, as it does after an orderly close, so the
// application reads an end of stream (read() = 0, SO_ERROR = 0) although the peer never sent a
// FIN and the application never closed: the in-window SYN killed the connection, which RFC 9293
// 3.10.7.4 reports to the user as "connection reset" (FreeBSD: ECONNRESET). A CLOSED upload of a
// connection that had not finished both directions is an abort, not an orderly close.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runScript } from "../src/conformance/runner/dut.js";

/** Active open, then an in-order SYN (SEG.SEQ = RCV.NXT = 1); the socket must report a reset. */
const SCRIPT = `--ip_version=ipv4
--tolerance_usecs=75000
 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0.00 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>
+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>
+0.00 > . 1:1(0) ack 1 win 65535
+0.10 < S 1:1(0) win 32767 <mss 1460,sackOK,eol,eol>
+0.00 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0
+0.00 read(3, ..., 100) = 0
`;

void test("rcv-syn-established-left-edge (offloaded): an NS-2 upload in CLOSED is reported as a reset, not an orderly close", () => {
  const r = runScript(SCRIPT, { file: "rcv-syn-established-left-edge.pkt", mode: "offload" });
  // The connection did run offloaded and was uploaded by the SYN.
  assert.equal(r.offload?.offloadedConnections, 1);
  assert.equal(r.offload?.terminates, 1);
  assert.equal(r.message, undefined);
});
