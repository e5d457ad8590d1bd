// Sampled packet headers (sFlow sampled header records, IPFIX dataLinkFrameSection) parsed into
// one FlowBatch row: Ethernet, 802.1Q/QinQ, MPLS, IPv4, IPv6 with extension headers, TCP/UDP/ICMP.
//
// Outer headers are reported, as Akvorado does by default: the first IP header of the frame gives
// the addresses and protocol, and tunnels carried over IP (GRE, IP-in-IP, IPv6-in-IPv4, SRv6,
// VXLAN) are not opened, so the flow is the tunnel's (Proto 47, 4, 41 or UDP to port 4789).
// MPLS is not a tunnel in that sense: the label stack fills MPLSLabels and the parser goes on into
// the IPv4/IPv6 payload (guessed from its first nibble, as routers do) or, after a pseudowire
// control word (first nibble 0, RFC 4385), into an Ethernet-over-MPLS frame. Where a frame holds
// a field twice (MACs of an EoMPLS inner frame, a QinQ inner tag), the outermost value is kept.
// The first IP header's own length (IPv4 total length, IPv6 payload length + 40) is handed back
// through FrameFacts: callers count a sampled packet's Bytes at layer 3, as NetFlow/IPFIX octet
// counters do, and fall back to the frame length only when the header does not reach it.
import type { FlowBatch } from '@flowbus/bus-schemas'
import { copyIPv4Mapped, copyIPv6, readMAC, readU16, readU32 } from './bytes.js'
import { FlowColumnArrays } from './columns.js'

/** What the frame starts with: sFlow header protocols 1 (Ethernet), 11 (IPv4), 12 (IPv6), 13 (MPLS). */
export type FirstLayer = 'ethernet' | 'ipv4' | 'ipv6' | 'mpls'

/** How far parseFrame got. Anything but Complete is counted by the caller as 'bad-frame'. */
export const FrameStatus = {
  /** Every header the parser knows was read (an unknown EtherType or protocol simply ends it). */
  Complete: 0,
  /** The bytes end inside a header: the fields before it are kept. */
  Truncated: 1,
  /** A header contradicts itself (IP version, header length): the fields before it are kept. */
  Malformed: 2,
} as const
export type FrameStatus = (typeof FrameStatus)[keyof typeof FrameStatus]

export const ETHERTYPE_IPV4 = 0x0800
export const ETHERTYPE_IPV6 = 0x86dd
const ETHERTYPE_VLAN = 0x8100
const ETHERTYPE_QINQ = 0x88a8
const ETHERTYPE_QINQ_OLD = 0x9100
const ETHERTYPE_MPLS = 0x8847
const ETHERTYPE_MPLS_MULTICAST = 0x8848
/** Not an EtherType (they are 16 bits): marks "an Ethernet header comes next". */
const ETHERNET = 0x10000

const PROTO_ICMP = 1
const PROTO_TCP = 6
const PROTO_UDP = 17
const PROTO_ICMPV6 = 58
const PROTO_SCTP = 132
const PROTO_UDPLITE = 136

/** Extension headers walked past; beyond this many the rest is not searched for a transport header. */
const MAX_IPV6_EXTENSIONS = 16

const shared = new FlowColumnArrays()

/** What parseFrame learnt beyond the row's columns; one object may be reused across calls. */
export interface FrameFacts {
  /** Length of the first IP packet (IPv4 total length, IPv6 payload length + 40); 0 when the bytes do not reach it. */
  ipLength: number
}

/**
 * Parses the headers in bytes[start, end) and fills row `row` of `flows`: EType, SrcMAC/DstMAC,
 * SrcVlan (only if the row has none yet, so an sFlow extended switch record keeps precedence),
 * MPLSLabels, SrcAddr/DstAddr, Proto, IPTTL, IPTos, IPFragmentID/Offset, IPv6FlowLabel,
 * SrcPort/DstPort, TCPFlags, ICMPv4/ICMPv6 type and code; `facts.ipLength` when given. Never reads
 * outside [start, end) nor past bytes.length; never throws on any content.
 */
export function parseFrame(
  bytes: Uint8Array,
  start: number,
  end: number,
  flows: FlowBatch,
  row: number,
  firstLayer: FirstLayer,
  facts?: FrameFacts,
): FrameStatus {
  return parseFrameInto(bytes, start, end, shared.bind(flows), row, firstLayer, facts)
}

/** parseFrame for callers that keep their own bound FlowColumnArrays (the sFlow decoder). */
export function parseFrameInto(
  b: Uint8Array,
  start: number,
  end: number,
  c: FlowColumnArrays,
  row: number,
  firstLayer: FirstLayer,
  facts?: FrameFacts,
): FrameStatus {
  if (facts !== undefined) facts.ipLength = 0
  if (end > b.length) end = b.length
  let o = start
  let type =
    firstLayer === 'ethernet'
      ? ETHERNET
      : firstLayer === 'ipv4'
        ? ETHERTYPE_IPV4
        : firstLayer === 'ipv6'
          ? ETHERTYPE_IPV6
          : ETHERTYPE_MPLS
  let sawEthernet = false
  let sawVlan = false
  // Link layers: every pass consumes at least 4 bytes, so the loop ends.
  for (;;) {
    if (type === ETHERNET) {
      if (o + 14 > end) return FrameStatus.Truncated
      if (!sawEthernet) {
        sawEthernet = true
        c.dstMAC[row] = readMAC(b, o)
        c.srcMAC[row] = readMAC(b, o + 6)
      }
      type = readU16(b, o + 12)
      o += 14
    } else if (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD) {
      if (o + 4 > end) return FrameStatus.Truncated
      if (!sawVlan) {
        sawVlan = true
        const srcVlan = c.srcVlan
        if (srcVlan[row] === 0) srcVlan[row] = readU16(b, o) & 0x0fff
      }
      type = readU16(b, o + 2)
      o += 4
    } else if (type === ETHERTYPE_MPLS || type === ETHERTYPE_MPLS_MULTICAST) {
      for (;;) {
        if (o + 4 > end) {
          c.etype[row] = type
          return FrameStatus.Truncated
        }
        const entry = readU32(b, o)
        c.batch.pushList('MPLSLabels', row, entry >>> 12)
        o += 4
        if ((entry & 0x100) !== 0) break
      }
      if (o >= end) {
        c.etype[row] = type
        return FrameStatus.Truncated
      }
      const nibble = b[o]! >> 4
      if (nibble === 4) type = ETHERTYPE_IPV4
      else if (nibble === 6) type = ETHERTYPE_IPV6
      else if (nibble === 0) {
        // Pseudowire control word, then the emulated Ethernet frame.
        if (o + 4 > end) {
          c.etype[row] = type
          return FrameStatus.Truncated
        }
        o += 4
        type = ETHERNET
      } else {
        // An associated channel (nibble 1) or a payload we cannot tell: the labels are what we know.
        c.etype[row] = type
        return FrameStatus.Complete
      }
    } else break
  }
  c.etype[row] = type
  if (type === ETHERTYPE_IPV4) {
    if (facts !== undefined && o + 4 <= end && b[o]! >> 4 === 4) {
      // A total length below the header's own is a lie (or TSO's 0): the frame length is all we know.
      const total = readU16(b, o + 2)
      if (total >= (b[o]! & 0x0f) * 4 && total >= 20) facts.ipLength = total
    }
    return parseIPv4(b, o, end, c, row)
  }
  if (type === ETHERTYPE_IPV6) {
    if (facts !== undefined && o + 7 <= end && b[o]! >> 4 === 6) {
      // Payload length 0 with a hop-by-hop header is a jumbogram (RFC 2675): its length is elsewhere.
      const payload = readU16(b, o + 4)
      if (payload !== 0 || b[o + 6] !== 0) facts.ipLength = payload + 40
    }
    return parseIPv6(b, o, end, c, row)
  }
  return FrameStatus.Complete
}

function parseIPv4(b: Uint8Array, o: number, end: number, c: FlowColumnArrays, row: number): FrameStatus {
  if (o + 20 > end) return FrameStatus.Truncated
  const versionIHL = b[o]!
  if (versionIHL >> 4 !== 4) return FrameStatus.Malformed
  const headerLength = (versionIHL & 0x0f) * 4
  if (headerLength < 20) return FrameStatus.Malformed
  const proto = b[o + 9]!
  const fragmentOffset = readU16(b, o + 6) & 0x1fff
  c.ipTos[row] = b[o + 1]!
  c.ipFragmentID[row] = readU16(b, o + 4)
  c.ipFragmentOffset[row] = fragmentOffset
  c.ipTTL[row] = b[o + 8]!
  c.proto[row] = proto
  copyIPv4Mapped(c.srcAddr, row * 16, b, o + 12)
  copyIPv4Mapped(c.dstAddr, row * 16, b, o + 16)
  // Only a first fragment carries the transport header.
  if (fragmentOffset !== 0) return FrameStatus.Complete
  o += headerLength
  if (o > end) return FrameStatus.Truncated
  return parseTransport(b, o, end, c, row, proto)
}

function parseIPv6(b: Uint8Array, o: number, end: number, c: FlowColumnArrays, row: number): FrameStatus {
  if (o + 40 > end) return FrameStatus.Truncated
  const first = readU32(b, o)
  if (first >>> 28 !== 6) return FrameStatus.Malformed
  c.ipTos[row] = (first >>> 20) & 0xff
  c.ipv6FlowLabel[row] = first & 0xfffff
  c.ipTTL[row] = b[o + 7]!
  copyIPv6(c.srcAddr, row * 16, b, o + 8)
  copyIPv6(c.dstAddr, row * 16, b, o + 24)
  let next = b[o + 6]!
  o += 40
  for (let i = 0; i < MAX_IPV6_EXTENSIONS; i++) {
    let length: number
    switch (next) {
      case 0: // hop-by-hop options
      case 43: // routing
      case 60: // destination options
      case 135: // mobility
      case 139: // HIP
      case 140: // shim6
        if (o + 2 > end) {
          c.proto[row] = next
          return FrameStatus.Truncated
        }
        length = (b[o + 1]! + 1) * 8
        break
      case 51: // authentication header: length in 4-octet units, minus 2
        if (o + 2 > end) {
          c.proto[row] = next
          return FrameStatus.Truncated
        }
        length = (b[o + 1]! + 2) * 4
        break
      case 44: {
        if (o + 8 > end) {
          c.proto[row] = next
          return FrameStatus.Truncated
        }
        const fragmentOffset = readU16(b, o + 2) >> 3
        c.ipFragmentOffset[row] = fragmentOffset
        c.ipFragmentID[row] = readU32(b, o + 4)
        if (fragmentOffset !== 0) {
          c.proto[row] = b[o]!
          return FrameStatus.Complete
        }
        length = 8
        break
      }
      default:
        c.proto[row] = next
        return parseTransport(b, o, end, c, row, next)
    }
    next = b[o]!
    o += length
    if (o > end) {
      c.proto[row] = next
      return FrameStatus.Truncated
    }
  }
  c.proto[row] = next
  return FrameStatus.Complete
}

function parseTransport(
  b: Uint8Array,
  o: number,
  end: number,
  c: FlowColumnArrays,
  row: number,
  proto: number,
): FrameStatus {
  switch (proto) {
    case PROTO_TCP:
      if (o + 4 > end) return FrameStatus.Truncated
      c.srcPort[row] = readU16(b, o)
      c.dstPort[row] = readU16(b, o + 2)
      if (o + 14 > end) return FrameStatus.Truncated
      // The 8 classic flags plus NS (the low bit of the byte before), as IPFIX tcpControlBits.
      c.tcpFlags[row] = ((b[o + 12]! & 1) << 8) | b[o + 13]!
      return FrameStatus.Complete
    case PROTO_UDP:
    case PROTO_SCTP:
    case PROTO_UDPLITE:
      if (o + 4 > end) return FrameStatus.Truncated
      c.srcPort[row] = readU16(b, o)
      c.dstPort[row] = readU16(b, o + 2)
      return FrameStatus.Complete
    case PROTO_ICMP:
      if (o + 2 > end) return FrameStatus.Truncated
      c.icmpv4Type[row] = b[o]!
      c.icmpv4Code[row] = b[o + 1]!
      return FrameStatus.Complete
    case PROTO_ICMPV6:
      if (o + 2 > end) return FrameStatus.Truncated
      c.icmpv6Type[row] = b[o]!
      c.icmpv6Code[row] = b[o + 1]!
      return FrameStatus.Complete
    default:
      return FrameStatus.Complete
  }
}
