/** Inline packetdrill scripts of the kernel-mode tests (conformance-kernel, cli-conformance-kernel). */

/** A correct handshake, then a wrong expectation: the kernel's SYN-ACK advertises window scale 8. */
export const WRONG = `
--tolerance_usecs=10000
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 5>
`;

/**
 * The init command (the backquoted command before the first event) must run before the script:
 * it turns timestamps off, so the kernel's SYN-ACK carries none although the SYN offered them.
 * Then a `%{ }%` snippet over the accepted socket's tcp_info: `wrongCwnd` makes it fail.
 */
export function initAndCode(wrongCwnd: boolean): string {
  return `
--tolerance_usecs=10000
\`sysctl -q net.ipv4.tcp_timestamps=0 \\
   net.ipv4.tcp_sack=1\`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 1) = 0
   +0 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 8>
  +.1 < . 1:1(0) ack 1 win 257
   +0 accept(3, ..., ...) = 4
   +0 %{ assert tcpi_state == TCP_ESTABLISHED, tcpi_state }%
   +0 %{ assert tcpi_options & TCPI_OPT_TIMESTAMPS == 0; assert tcpi_snd_cwnd == ${wrongCwnd ? 99 : 10} }%
`;
}

/**
 * TCP_NOTSENT_LOWAT set to UINT_MAX reads back as the C int -1: the script writes 4294967295
 * both ways, and it must pass.
 */
export const NOTSENT_LOWAT_UINT = `
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_TCP, TCP_NOTSENT_LOWAT, [4294967295], 4) = 0
   +0 getsockopt(3, SOL_TCP, TCP_NOTSENT_LOWAT, [4294967295], [4]) = 0
`;

/** An init command asking for a qdisc no kernel has: the script is unsupported, naming it. */
export const UNKNOWN_QDISC = `
\`tc qdisc replace dev tun0 root nosuchqdisc\`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
`;
