/**
 * packetdrill's ICMP type and code names (as the FreeBSD suite writes them) mapped to wire
 * numbers for ICMPv4 (RFC 792, RFC 1812) and ICMPv6 (RFC 4443).
 */

/** A type and code on the wire. */
export interface IcmpNumbers {
  readonly type: number;
  readonly code: number;
}

const V4_TYPES: Readonly<Record<string, number>> = {
  unreachable: 3,
  source_quench: 4,
  redirect: 5,
  time_exceeded: 11,
  parameter_problem: 12,
};

const V4_CODES: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  unreachable: {
    net_unreachable: 0,
    host_unreachable: 1,
    protocol_unreachable: 2,
    port_unreachable: 3,
    frag_needed: 4,
    source_route_failed: 5,
    net_unknown: 6,
    host_unknown: 7,
    source_host_isolated: 8,
    net_prohibited: 9,
    host_prohibited: 10,
    net_unreachable_for_tos: 11,
    host_unreachable_for_tos: 12,
    packet_filtered: 13,
    precedence_violation: 14,
    precedence_cutoff: 15,
  },
  time_exceeded: { ttl_exceeded_in_transit: 0, exceeded_frag_time: 1, frag_reass_exceeded: 1 },
  redirect: { redirect_net: 0, redirect_host: 1 },
};

const V6_TYPES: Readonly<Record<string, number>> = {
  unreachable: 1,
  packet_too_big: 2,
  time_exceeded: 3,
  parameter_problem: 4,
};

const V6_CODES: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  unreachable: {
    no_route: 0,
    admin_prohibited: 1,
    not_neighbour: 2,
    beyond_scope: 2,
    address_unreachable: 3,
    port_unreachable: 4,
  },
  time_exceeded: { exceeded_hop_limit: 0, frag_reass_exceeded: 1, exceeded_frag_time: 1 },
  parameter_problem: { header_field: 0, unknown_next_header: 1, unknown_option: 2 },
};

/**
 * The wire numbers of `type`/`code` for IP version `version`, or an error text. A code written
 * `code_N` is the number N; a missing code is 0.
 */
export function icmpNumbers(version: 4 | 6, type: string, code: string | undefined): IcmpNumbers | string {
  const types = version === 4 ? V4_TYPES : V6_TYPES;
  const t = types[type];
  if (t === undefined) return `ICMPv${version} has no type ${type}`;
  if (code === undefined) return { type: t, code: 0 };
  const m = /^code_(\d+)$/.exec(code);
  if (m?.[1] !== undefined) return { type: t, code: Number(m[1]) };
  const c = (version === 4 ? V4_CODES : V6_CODES)[type]?.[code];
  if (c === undefined) return `ICMPv${version} ${type} has no code ${code}`;
  return { type: t, code: c };
}
