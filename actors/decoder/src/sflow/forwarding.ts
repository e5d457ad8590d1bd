// sFlow discard reasons (flow sample output interface, format 1) mapped to the IPFIX
// forwardingStatus (IE 89, RFC 7270) codes that the ForwardingStatus column holds.

/** Forwarded, reason unknown: every sampled packet that was not discarded. */
export const FORWARDED = 64
/** Dropped, reason unknown. */
export const DROPPED_UNKNOWN = 128

/**
 * The ForwardingStatus of a packet discarded for sFlow reason `reason` (sFlow v5: 0-255 the ICMP
 * destination-unreachable codes, 256 unknown, 257 TTL exceeded, 258 ACL, 259 no buffer space,
 * 260 RED, 261 traffic shaping/rate limiting, 262 packet too big). The mapping:
 *
 * | sFlow reason | ForwardingStatus |
 * |---|---|
 * | 0 net unreachable, 5 source route failed, 6 network unknown, 11 net unreachable for TOS | 131 unroutable |
 * | 1 host unreachable, 7 host unknown, 12 host unreachable for TOS | 132 adjacency (no neighbour to deliver to) |
 * | 2 protocol unreachable, 3 port unreachable | 141 for us (addressed to the router, nobody listening) |
 * | 4 fragmentation needed and DF set, 262 packet too big | 133 fragmentation and DF set |
 * | 9, 10, 13 administratively prohibited, 258 ACL | 129 ACL deny |
 * | 257 TTL exceeded | 137 bad TTL |
 * | 260 RED | 139 WRED |
 * | 261 traffic shaping / rate limiting | 138 policer |
 * | 256 unknown, 259 no buffer space, anything else | 128 unknown |
 */
export function discardStatus(reason: number): number {
  switch (reason) {
    case 0:
    case 5:
    case 6:
    case 11:
      return 131
    case 1:
    case 7:
    case 12:
      return 132
    case 2:
    case 3:
      return 141
    case 4:
    case 262:
      return 133
    case 9:
    case 10:
    case 13:
    case 258:
      return 129
    case 257:
      return 137
    case 260:
      return 139
    case 261:
      return 138
    default:
      return DROPPED_UNKNOWN
  }
}
