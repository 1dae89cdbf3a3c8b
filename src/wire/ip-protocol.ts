/**
 * IP protocol numbers (the IPv4 protocol field and the IPv6 next-header field share one
 * registry, IANA "Assigned Internet Protocol Numbers"), as an open enum: the names this stack
 * knows plus `number`, so an unknown value survives decoding, printing and re-encoding.
 */

/** Known protocol names; any other value stays a number (0..255). */
export type IpProtocolName =
  | "hop-by-hop"
  | "icmp"
  | "tcp"
  | "udp"
  | "ipv6-route"
  | "ipv6-frag"
  | "esp"
  | "ah"
  | "icmpv6"
  | "ipv6-nonxt"
  | "ipv6-opts";

/** An IP protocol number: a known name, or the raw number when unknown. */
export type IpProtocol = IpProtocolName | number;

/** The number of every known name. */
export const IP_PROTOCOL_NUMBERS: { readonly [K in IpProtocolName]: number } = {
  "hop-by-hop": 0,
  icmp: 1,
  tcp: 6,
  udp: 17,
  "ipv6-route": 43,
  "ipv6-frag": 44,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  "ipv6-nonxt": 59,
  "ipv6-opts": 60,
};

const BY_NUMBER: IpProtocol[] = [];
for (let n = 0; n < 256; n++) BY_NUMBER.push(n);
for (const [name, n] of Object.entries(IP_PROTOCOL_NUMBERS)) BY_NUMBER[n] = name as IpProtocolName; // keys of the table above

/** The canonical form of a protocol number: its name when known, else the number itself. */
export function ipProtocolFromNumber(n: number): IpProtocol {
  return BY_NUMBER[n & 0xff] ?? n;
}

/** The wire value of a protocol. */
export function ipProtocolToNumber(p: IpProtocol): number {
  return typeof p === "number" ? p : IP_PROTOCOL_NUMBERS[p];
}
