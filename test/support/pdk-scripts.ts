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
