/**
 * Real frames captured from Linux (kernel 6.x, veth pair between two network namespaces,
 * transmit checksum offload turned off so every checksum on the wire is the kernel's own; the
 * addresses are the documentation ranges 192.0.2.0/24 and 2001:db8::/64). Tests use them as
 * known-good vectors, benchmarks as realistic input. Hex, Ethernet header included.
 *
 * A: 42:18:7a:9c:47:2a, 192.0.2.1, 2001:db8::1 (the client). B: b6:51:ee:05:e3:27,
 * 192.0.2.2, 2001:db8::2 (the server, port 47123).
 */
export const LINUX_SAMPLES = {
  /** A -> B, IPv4 SYN: MSS 1460, SACK-permitted, timestamps, window scale 10; TCP checksum 0x2345. */
  syn4:
    "b651ee05e32742187a9c472a08004500003c72c74000400643f1c0000201c0000202b45cb81353b06fe200000000a002faf0" +
    "23450000020405b40402080aa11ed4a1000000000103030a",
  /** B -> A, IPv4 SYN-ACK. */
  synAck4:
    "42187a9c472ab651ee05e32708004500003c000040004006b6b8c0000202c0000201b813b45c9ca35d2a53b06fe3a012fe88" +
    "38e20000020405b40402080a198cd35fa11ed4a10103030a",
  /** A -> B, IPv4 PSH-ACK with 5 bytes "hello" and NOP, NOP, timestamps. */
  data4:
    "b651ee05e32742187a9c472a08004500003972ca4000400643f1c0000201c0000202b45cb81353b06fe39ca35d2d8018003f" +
    "221400000101080aa11ed4a5198cd36168656c6c6f",
  /** A -> B, IPv6 SYN (flow label 0xbcc0b): MSS 1440, SACK-permitted, timestamps, window scale 10. */
  syn6:
    "b651ee05e32742187a9c472a86dd600bcc0b0028064020010db800000000000000000000000120010db80000000000000000" +
    "00000002bcfcb813413a635e00000000a002fd20ec960000020405a00402080a94395502000000000103030a",
  /** A -> B, IPv6 PSH-ACK with "hello". */
  data6:
    "b651ee05e32742187a9c472a86dd600bcc0b0025064020010db800000000000000000000000120010db80000000000000000" +
    "00000002bcfcb813413a635f8d1d975580180040389800000101080a943955038e19e91d68656c6c6f",
  /** A -> broadcast, ARP request: who has 192.0.2.2, tell 192.0.2.1. */
  arpRequest: "ffffffffffff42187a9c472a0806000108000604000142187a9c472ac0000201000000000000c0000202",
  /** B -> A, ARP reply: 192.0.2.2 is at b6:51:ee:05:e3:27. */
  arpReply: "42187a9c472ab651ee05e32708060001080006040002b651ee05e327c000020242187a9c472ac0000201",
  /** B (fe80::b451:eeff:fe05:e327) -> ff02::2, router solicitation with a source link-layer address. */
  routerSolicitation:
    "333300000002b651ee05e32786dd6000000000103afffe80000000000000b451eefffe05e327ff02000000000000000000000000" +
    "00028500702f000000000101b651ee05e327",
  /** A -> ff02::1:ff00:2, neighbor solicitation for 2001:db8::2 with a source link-layer address. */
  neighborSolicitation:
    "3333ff00000242187a9c472a86dd6000000000203aff20010db8000000000000000000000001ff0200000000000000000001" +
    "ff00000287001a490000000020010db8000000000000000000000002010142187a9c472a",
  /** B -> A, neighbor advertisement for 2001:db8::2: solicited, override, target link-layer address. */
  neighborAdvertisement:
    "42187a9c472ab651ee05e32786dd6000000000203aff20010db800000000000000000000000220010db8000000000000000000" +
    "000001880004f46000000020010db80000000000000000000000020201b651ee05e327",
  /** A -> B's link-local fe80::b451:eeff:fe05:e327, neighbor advertisement for 2001:db8::1: solicited, no options. */
  neighborAdvertisementBare:
    "b651ee05e32742187a9c472a86dd6000000000183aff20010db8000000000000000000000001fe80000000000000b451eefffe05" +
    "e327880059384000000020010db8000000000000000000000001",
} as const;
