// The runner's system-call vocabulary on small inline scripts: every call packetdrill implements
// that means something for our socket layer, the socket options with their errno behaviour,
// msghdr / iovec / pollfd / epoll_event syntax, and the two profiles.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runScript, type ScriptResult } from "./dut.js";
import type { ProfileName } from "./profile.js";

/** An established passive connection on fd 4 (listener fd 3 closed), FreeBSD style. */
const OPEN = `--tolerance_usecs=10000
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.00 < S  0:0(0) win 65535 <mss 1460,sackOK,eol,eol>
+0.00 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>
+0.01 < .  1:1(0) ack 1 win 65535
+0.00 accept(3, ..., ...) = 4
+0.00 close(3) = 0
`;

function run(body: string, profile: ProfileName = "freebsd", head = OPEN): ScriptResult {
  return runScript(`${head}${body}`, { file: "t.pkt", profile });
}

function passes(body: string, profile: ProfileName = "freebsd", head = OPEN): void {
  const r = run(body, profile, head);
  assert.equal(r.message, undefined);
  assert.equal(r.passed, true);
}

function failsWith(
  body: string,
  re: RegExp,
  kind: ScriptResult["failure"],
  profile: ProfileName = "freebsd",
): void {
  const r = run(body, profile);
  assert.equal(r.passed, false, `expected a failure matching ${String(re)}`);
  assert.match(r.message ?? "", re);
  assert.equal(r.failure, kind);
}

void describe("receiving", () => {
  const data = `+0.00 < P. 1:101(100) ack 1 win 65535
+0.10 > . 1:1(0) ack 101 win 65535
`;
  void test("recv with MSG_PEEK leaves the bytes; recv, read, readv, recvfrom and recvmsg take them", () => {
    passes(`${data}+0 recv(4, ..., 1000, MSG_PEEK) = 100
+0 recv(4, ..., 1000, MSG_PEEK) = 100
+0 ioctl(4, FIONREAD, [100]) = 0
+0 recv(4, ..., 10, 0) = 10
+0 read(4, ..., 20) = 20
+0 readv(4, [{..., 5}, {iov_base=..., iov_len=5}], 2) = 10
+0 recvfrom(4, ..., 30, 0, ..., ...) = 30
+0 recvmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 100}], msg_flags=0}, 0) = 30
+0 ioctl(4, FIONREAD, [0]) = 0
`);
  });

  void test("a wrong peek count, a wrong FIONREAD and a NULL buffer are caught", () => {
    failsWith(`${data}+0 recv(4, ..., 1000, MSG_PEEK) = 99\n`, /expected recv\(\) = 99 got 100/, "syscall");
    failsWith(
      `${data}+0 ioctl(4, FIONREAD, [7]) = 0\n`,
      /expected ioctl FIONREAD = \[7\] got \[100\]/,
      "syscall",
    );
    passes(`${data}+0 read(4, NULL, 100) = -1 EFAULT (Bad address)\n`);
  });

  void test("a non-blocking read with nothing there is EWOULDBLOCK; MSG_DONTWAIT does the same per call", () => {
    passes(`+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 fcntl(4, F_GETFL) = 0x6 (flags O_RDWR|O_NONBLOCK)
+0 read(4, ..., 100) = -1 EAGAIN (Resource temporarily unavailable)
`);
    passes("+0 recv(4, ..., 100, MSG_DONTWAIT) = -1 EWOULDBLOCK\n");
  });

  void test("a msghdr whose msg_iov count disagrees with its entries is a runner error", () => {
    failsWith(
      "+0 recvmsg(4, {msg_name(...)=..., msg_iov(2)=[{..., 100}], msg_flags=0}, 0) = 0\n",
      /msg_iov\(2\) lists 1 entries/,
      "runner",
    );
  });
});

void describe("sending", () => {
  void test("send, sendto, write, writev and sendmsg queue what their lengths say", () => {
    passes(`+0 setsockopt(4, IPPROTO_TCP, TCP_NODELAY, [1], 4) = 0
+0 send(4, ..., 10, 0) = 10
+0 > P. 1:11(10) ack 1 win 65535
+0 sendto(4, ..., 20, 0, ..., ...) = 20
+0 > P. 11:31(20) ack 1 win 65535
+0 writev(4, [{..., 5}, {..., 7}], 2) = 12
+0 > P. 31:43(12) ack 1 win 65535
+0 sendmsg(4, {msg_name(...)=..., msg_iov(3)=[{..., 0}, {..., 40}, {..., 3}], msg_flags=0}, 0) = 43
+0 > P. 43:86(43) ack 1 win 65535
+0 < . 1:1(0) ack 86 win 65535
+0 ioctl(4, FIONWRITE, [0]) = 0
`);
  });

  void test("write after shutdown(SHUT_WR) is EPIPE; a send flag we lack is unsupported", () => {
    passes(`+0 shutdown(4, SHUT_WR) = 0
+0 > F. 1:1(0) ack 1 win 65535
+0 write(4, ..., 10) = -1 EPIPE (Broken pipe)
`);
    const r = run("+0 send(4, ..., 10, MSG_EOR) = 10\n");
    assert.equal(r.failure, "unsupported");
    assert.equal(r.unsupported, "MSG_EOR");
  });

  void test("sendfile sends the file the script's dd made; pipe and splice move bytes through", () => {
    passes(
      `+0 \`rm -f /tmp/f
dd bs=1 count=5 if=/dev/zero of=/tmp/f status=none\`
+0 setsockopt(4, IPPROTO_TCP, TCP_NODELAY, [1], 4) = 0
+0 open("/tmp/f", O_RDONLY) = 5
+0 sendfile(4, 5, [0], 9) = 5
+0 > P. 1:6(5) ack 1 win 65535
+0 pipe([6, 7]) = 0
+0 < P. 1:31(30) ack 1 win 65535
+0.04 > . 6:6(0) ack 31 win 65535
+0 splice(4, NULL, 7, NULL, 20, 0) = 20
+0 read(6, ..., 100) = 20
+0 open("/tmp/missing", O_RDONLY) = -1 ENOENT (No such file or directory)
`,
      "linux",
    );
  });
});

void describe("socket options", () => {
  void test("TCP_MAXSEG before the stack exists sets the MSS we advertise; getsockopt reads it back", () => {
    passes(
      "",
      "linux",
      ` 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [1100], 4) = 0
+0 getsockopt(3, SOL_TCP, TCP_MAXSEG, [1100], [4]) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 32792 <mss 1300,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1100,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
+0 accept(3, ..., ...) = 4
+0 getsockopt(4, SOL_TCP, TCP_MAXSEG, [1100], [4]) = 0
`,
    );
  });

  void test("errno behaviour: wrong level, short optlen, read-only option, bad value", () => {
    passes(`+0 setsockopt(4, SOL_SOCKET, TCP_NODELAY, [1], 4) = -1 ENOPROTOOPT (Protocol not available)
+0 setsockopt(4, IPPROTO_TCP, TCP_NODELAY, [1], 2) = -1 EINVAL (Invalid argument)
+0 setsockopt(4, SOL_SOCKET, SO_ERROR, [0], 4) = -1 ENOPROTOOPT (Protocol not available)
+0 setsockopt(4, IPPROTO_TCP, TCP_KEEPIDLE, [0], 4) = -1 EINVAL (Invalid argument)
+0 getsockopt(4, SOL_SOCKET, SO_TYPE, [SOCK_STREAM], [4]) = 0
+0 getsockopt(4, SOL_SOCKET, SO_ACCEPTCONN, [0], [4]) = 0
+0 setsockopt(4, IPPROTO_TCP, TCP_CORK, [0], 4) = 0
`);
    failsWith(
      "+0 getsockopt(4, SOL_SOCKET, SO_TYPE, [2], [4]) = 0\n",
      /expected getsockopt SO_TYPE = 2 got 1/,
      "syscall",
    );
  });

  void test("TCP_CONGESTION reno / cubic switches the socket: a fast retransmit's ssthresh is half the flight, or 0.7 cwnd (RFC 5681, RFC 9438)", () => {
    // 4 segments in flight of an initial window of 10: NewReno 2920 bytes (2 segments),
    // CUBIC 0.7 x 14600 = 10220 (7).
    for (const [cc, ssthresh] of [
      ["reno", 2],
      ["cubic", 7],
    ] as const) {
      passes(`+0 setsockopt(4, IPPROTO_TCP, TCP_CONGESTION, "${cc}", 5) = 0
+0 write(4, ..., 5840) = 5840
+0 > . 1:1461(1460) ack 1
+0 > . 1461:2921(1460) ack 1
+0 > . 2921:4381(1460) ack 1
+0 > P. 4381:5841(1460) ack 1
+.01 < . 1:1(0) ack 1 win 65535 <sack 1461:2921,nop,nop>
+0 < . 1:1(0) ack 1 win 65535 <sack 1461:4381,nop,nop>
+0 < . 1:1(0) ack 1 win 65535 <sack 1461:5841,nop,nop>
+0 > . 1:1461(1460) ack 1
+0 getsockopt(4, IPPROTO_TCP, TCP_INFO, {tcpi_snd_ssthresh=${ssthresh}}, [232]) = 0
`);
    }
  });

  void test("options with no meaning for us classify the script unsupported, by option name", () => {
    for (const [line, what] of [
      ["setsockopt(4, IPPROTO_TCP, TCP_CORK, [1], 4) = 0", "TCP_CORK"],
      ["setsockopt(4, IPPROTO_IP, IP_TOS, [16], 4) = 0", "IP_TOS"],
      ["setsockopt(4, IPPROTO_TCP, TCP_RACK_PACE_ALWAYS, [1], 4) = 0", "TCP_RACK_PACE_ALWAYS"],
      ['setsockopt(4, IPPROTO_TCP, TCP_CONGESTION, "bbr", 4) = 0', "TCP_CONGESTION bbr"],
      // The option decides before its value is read: SOF_* symbols belong to the feature we lack.
      ["setsockopt(4, SOL_SOCKET, SO_TIMESTAMPING, [SOF_TIMESTAMPING_TX_SCHED], 4) = 0", "SO_TIMESTAMPING"],
    ] as const) {
      const r = run(`+0 ${line}\n`);
      assert.equal(r.failure, "unsupported", line);
      assert.equal(r.unsupported, what);
      assert.match(r.message ?? "", new RegExp(`unsupported: ${what} \\(.+\\)`));
    }
    failsWith(
      "+0 setsockopt(4, IPPROTO_TCP, TCP_FROBNICATE, [1], 4) = 0\n",
      /unknown socket option TCP_FROBNICATE/,
      "runner",
    );
  });

  void test("Linux reads an IP-level option from one byte; a TCP-level one needs four", () => {
    passes("+0 setsockopt(4, SOL_IP, IP_MTU_DISCOVER, [IP_PMTUDISC_DO], 1) = 0\n", "linux");
    passes("+0 setsockopt(4, SOL_IP, IP_MTU_DISCOVER, [IP_PMTUDISC_DO], 1) = -1 EINVAL (Invalid argument)\n");
    passes("+0 setsockopt(4, SOL_TCP, TCP_NODELAY, [1], 1) = -1 EINVAL (Invalid argument)\n", "linux");
  });

  void test("SO_LINGER {l_onoff=1, l_linger=0}: close aborts with a RST", () => {
    passes(`+0 setsockopt(4, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0
+0 close(4) = 0
+0 > R. 1:1(0) ack 1 win 0
`);
  });

  void test("SO_SNDBUF: Linux reports twice the size set, FreeBSD the size", () => {
    passes(
      `+0 setsockopt(4, SOL_SOCKET, SO_SNDBUF, [10000], 4) = 0
+0 getsockopt(4, SOL_SOCKET, SO_SNDBUF, [20000], [4]) = 0
`,
      "linux",
    );
    passes(`+0 setsockopt(4, SOL_SOCKET, SO_SNDBUF, [10000], 4) = 0
+0 getsockopt(4, SOL_SOCKET, SO_SNDBUF, [10000], [4]) = 0
`);
  });
});

void describe("blocking calls", () => {
  const LISTEN = ` 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
`;
  void test("a call with a time range blocks while the next events run, and returns within its range", () => {
    // packetdrill runs it on its own thread: the handshake comes after the accept line.
    passes(
      `+0...0.200 accept(3, ..., ...) = 4
+.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
+0...0.100 read(4, ..., 2000) = 2000
+.1 < P. 1:2001(2000) ack 1 win 257
`,
      "linux",
      LISTEN,
    );
  });

  void test("returning outside the range, or another call while one blocks, fails the script", () => {
    const late = run(
      `+0...0.100 accept(3, ..., ...) = 4
+.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
`,
      "linux",
      LISTEN,
    );
    assert.match(
      late.message ?? "",
      /:4: expected accept\(\) to return at 0\.100000 got 0\.200000 \(timing\)/,
    );
    const two = run(
      `+0...0.300 accept(3, ..., ...) = 4
+.1 close(3) = 0
`,
      "linux",
      LISTEN,
    );
    assert.match(two.message ?? "", /close\(\) while accept\(\) of line 4 still blocks/);
    const never = run("+0...1 accept(3, ..., ...) = 4\n", "linux", LISTEN);
    assert.match(never.message ?? "", /accept\(\) still blocked/);
    assert.equal(never.failure, "syscall");
  });
});

void describe("readiness", () => {
  void test("poll reports POLLOUT on a connected socket and POLLIN once data is there", () => {
    passes(`+0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1
+0 < P. 1:11(10) ack 1 win 65535
+0.10 > . 1:1(0) ack 11 win 65535
+0 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1
`);
    failsWith(
      "+0 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLIN}], 1, 0) = 1\n",
      /expected poll\(\) revents of fd 4 = 0x1 got 0x4/,
      "syscall",
    );
  });

  void test("epoll: level and edge triggered on Linux; not a system call on FreeBSD", () => {
    passes(
      `+0 epoll_create(1) = 5
+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN|EPOLLET, fd=4}) = 0
+0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0
+0 < P. 1:11(10) ack 1 win 65535
+0.04 > . 1:1(0) ack 11 win 65535
+0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1
+0 epoll_wait(5, {events=0, ptr=0}, 1, 0) = 0
+0 epoll_ctl(5, EPOLL_CTL_MOD, 4, {events=EPOLLIN, fd=4}) = 0
+0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1
+0 epoll_wait(5, {events=EPOLLIN, fd=4}, 1, 0) = 1
+0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLIN, fd=4}) = -1 EEXIST (File exists)
`,
      "linux",
    );
    passes("+0 epoll_create(1) = -1 ENOSYS (Function not implemented)\n");
  });
});

void describe("profiles", () => {
  void test("Linux: its O_NONBLOCK, sysctl -q, echo > /proc/sys and defaults.sh", () => {
    passes(
      `+0 \`../common/defaults.sh\`
+0 \`sysctl -q net.ipv4.tcp_keepalive_time=30 net.ipv4.tcp_keepalive_probes=3\`
+0 \`echo 7 > /proc/sys/net/ipv4/tcp_keepalive_intvl\`
 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
+0 fcntl(3, F_GETFL) = 0x802 (flags O_RDWR|O_NONBLOCK)
+0 getsockopt(3, SOL_TCP, TCP_KEEPIDLE, [30], [4]) = 0
+0 getsockopt(3, SOL_TCP, TCP_KEEPINTVL, [7], [4]) = 0
+0 getsockopt(3, SOL_TCP, TCP_KEEPCNT, [3], [4]) = 0
`,
      "linux",
      "",
    );
    // FreeBSD's sysctl does not exist on Linux.
    const r = runScript("0 `sysctl -w net.inet.tcp.delacktime=40`\n", { file: "x.pkt", profile: "linux" });
    assert.equal(r.failure, "runner");
    assert.match(r.message ?? "", /unknown sysctl net\.inet\.tcp\.delacktime/);
  });

  void test("Linux: segments sent at once that continue each other are compared as one TSO segment", () => {
    const head = ` 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <mss 1460,nop,wscale 8>
+.1 < . 1:1(0) ack 1 win 257
+0 accept(3, ..., ...) = 4
+0 write(4, ..., 3000) = 3000
`;
    const r = run("+0 > P. 1:3001(3000) ack 1\n", "linux", head);
    assert.equal(r.message, undefined);
    assert.ok(r.rulesUsed.includes("tso-coalescing"));
    // Still every byte: a longer expectation than what was sent fails on the length.
    const long = run("+0 > P. 1:4001(4000) ack 1\n", "linux", head);
    assert.match(long.message ?? "", /length want 4000 got 3000/);
    // FreeBSD's scripts see the segments one by one.
    const bsd = run("+0 > P. 1:3001(3000) ack 1\n", "freebsd", head);
    assert.match(bsd.message ?? "", /length want 3000 got 1000/);
  });

  void test("FreeBSD: keep-alive and delayed-ACK sysctls reach the stack's knobs", () => {
    passes(
      ` 0 \`sysctl -w net.inet.tcp.keepidle=15000\`
+0 \`sysctl -w net.inet.tcp.keepcnt=2\`
+0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 getsockopt(3, IPPROTO_TCP, TCP_KEEPIDLE, [15], [4]) = 0
+0 getsockopt(3, IPPROTO_TCP, TCP_KEEPCNT, [2], [4]) = 0
+0 getsockopt(3, IPPROTO_TCP, TCP_KEEPINIT, [75], [4]) = 0
+0 fcntl(3, F_GETFL) = 0x2
`,
      "freebsd",
      "",
    );
    // The delayed ACK follows net.inet.tcp.delacktime: 40 ms here, not FreeBSD's default 100.
    passes(
      `+0 < P. 1:11(10) ack 1 win 65535
+0.04 > . 1:1(0) ack 11 win 65535
`,
      "freebsd",
      `0 \`sysctl -w net.inet.tcp.delacktime=40\`\n${OPEN.replace("--tolerance_usecs=10000\n", "")}`,
    );
  });
});
