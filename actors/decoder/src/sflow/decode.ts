// sFlow v5 datagrams (sflow_version_5.txt) decoded into FlowBatch rows, one per flow sample, and
// generic interface counters, one per counter sample. Pure: bytes in, sink out, never throws.
//
// Precedence inside one flow sample, whatever the record order: a sampled header record gives the
// packet fields; sampled Ethernet/IPv4/IPv6 records fill them only when the sample has no sampled
// header. The extended switch record's VLANs win over a VLAN tag in the header. The extended router
// record's next hop (the IP next hop, the NextHop column's meaning) wins over the extended
// gateway's BGP next hop, which is used only without a router record.
// DstAS is the last AS of the gateway's AS path, or the router's own AS when the path is empty.
// Each flow sample is one packet: Packets 1, SamplingRate the sample's, and Bytes the IP packet's
// length (layer 3, as NetFlow/IPFIX octet counters count, so sFlow and NetFlow exporters add up
// alike): the IPv4 total length or IPv6 payload length + 40 of the sampled header's first IP
// header, else a sampled IPv4/IPv6 record's length, else the frame length less the 4-byte FCS of
// an Ethernet frame (a sampled header whose `stripped` is at least 4, or an Ethernet record: sFlow
// counts the FCS in both). The agent's own interface (0x3FFFFFFF) and "multiple interfaces" give
// InIf/OutIf 0; a discarded packet gets OutIf 0 and a dropped ForwardingStatus mapped from its
// reason (forwarding.ts), every other packet 64.
import type { InterfaceCounters } from '@flowbus/bus-schemas'
import { copyIPv4Mapped, copyIPv6, readMAC, readU32, readU64 } from '../packet/bytes.js'
import { FlowColumnArrays } from '../packet/columns.js'
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, type FrameFacts, FrameStatus, parseFrameInto } from '../packet/frame.js'
import type { Datagram, DecodeSink } from '../protocol.js'
import { FORWARDED, discardStatus } from './forwarding.js'

/** What a datagram's header says, for the caller to count sequence gaps per agent and sub-agent. */
export interface SflowDatagramHeader {
  /** Agent address, 16 bytes (IPv4 as IPv4-mapped IPv6; all zero when the agent sent type 0, unknown). */
  readonly agentAddress: Uint8Array
  readonly subAgentId: number
  /** Datagram sequence number, incremented by the agent per datagram of this sub-agent. */
  readonly sequenceNumber: number
  /** Agent uptime, milliseconds. */
  readonly uptime: number
  /** Samples the header announces. */
  readonly samples: number
  /** Flow samples decoded into rows of the sink's batch. */
  readonly flowSamples: number
  /** Counter samples whose generic interface counters went to the sink. */
  readonly counterSamples: number
}

const SFLOW_VERSION = 5

const SAMPLE_FLOW = 1
const SAMPLE_COUNTERS = 2
const SAMPLE_FLOW_EXPANDED = 3
const SAMPLE_COUNTERS_EXPANDED = 4

const RECORD_SAMPLED_HEADER = 1
const RECORD_SAMPLED_ETHERNET = 2
const RECORD_SAMPLED_IPV4 = 3
const RECORD_SAMPLED_IPV6 = 4
const RECORD_EXTENDED_SWITCH = 1001
const RECORD_EXTENDED_ROUTER = 1002
const RECORD_EXTENDED_GATEWAY = 1003

const COUNTERS_GENERIC_INTERFACE = 1
const GENERIC_INTERFACE_LENGTH = 88

/** Interface value meaning "the agent itself" (packets to or from the device). */
const LOCAL_INTERFACE = 0x3fffffff

/** Smallest possible flow sample (compact form, no record), to bound the rows one datagram can add. */
const MIN_FLOW_SAMPLE = 8 + 32

const columns = new FlowColumnArrays()
const frameFacts: FrameFacts = { ipLength: 0 }

/** Ethernet frame check sequence: sFlow frame lengths count it, layer-3 Bytes do not. */
const ETHERNET_FCS = 4

/**
 * Decodes one sFlow v5 datagram: flow samples (compact and expanded) into rows of sink.flows,
 * generic interface counters of counter samples into sink.counters. Returns the datagram header,
 * or undefined when the header itself cannot be read (the error is counted). A bad sample or
 * record is counted and skipped; the datagram's other samples still decode.
 */
export function decodeSflow(d: Datagram, sink: DecodeSink): SflowDatagramHeader | undefined {
  const b = d.payload
  const end = b.length
  if (end < 8) {
    sink.error('truncated', `sFlow datagram of ${end} bytes`)
    return undefined
  }
  const version = readU32(b, 0)
  if (version !== SFLOW_VERSION) {
    sink.error('bad-version', `sFlow version ${version}`)
    return undefined
  }
  const agentAddress = new Uint8Array(16)
  const agentType = readU32(b, 4)
  let o = 8
  if (agentType === 1) {
    if (o + 4 > end) return truncatedHeader(sink, end)
    copyIPv4Mapped(agentAddress, 0, b, o)
    o += 4
  } else if (agentType === 2) {
    if (o + 16 > end) return truncatedHeader(sink, end)
    copyIPv6(agentAddress, 0, b, o)
    o += 16
  } else if (agentType !== 0) {
    sink.error('bad-record', `sFlow agent address type ${agentType}`)
    return undefined
  }
  if (o + 16 > end) return truncatedHeader(sink, end)
  const subAgentId = readU32(b, o)
  const sequenceNumber = readU32(b, o + 4)
  const uptime = readU32(b, o + 8)
  const samples = readU32(b, o + 12)
  o += 16

  const flows = sink.flows
  flows.reserve(Math.min(samples, Math.floor((end - o) / MIN_FLOW_SAMPLE)))
  const c = columns.bind(flows)
  let flowSamples = 0
  let counterSamples = 0
  for (let i = 0; i < samples; i++) {
    if (o + 8 > end) {
      sink.error('truncated', `sFlow datagram ends before sample ${i + 1} of ${samples}`)
      break
    }
    const format = readU32(b, o)
    const length = readU32(b, o + 4)
    o += 8
    if (length > end - o) {
      sink.error('truncated', `sFlow sample ${i + 1} of ${length} bytes goes past the datagram's end`)
      break
    }
    const sampleEnd = o + length
    switch (format) {
      case SAMPLE_FLOW:
      case SAMPLE_FLOW_EXPANDED:
        if (decodeFlowSample(b, o, sampleEnd, format === SAMPLE_FLOW_EXPANDED, d, c, sink)) flowSamples++
        break
      case SAMPLE_COUNTERS:
      case SAMPLE_COUNTERS_EXPANDED:
        counterSamples += decodeCounterSample(
          b,
          o,
          sampleEnd,
          format === SAMPLE_COUNTERS_EXPANDED,
          d,
          agentAddress,
          subAgentId,
          sink,
        )
        break
      default:
      // Other enterprises' samples: skipped, their length says where the next one starts.
    }
    o = sampleEnd
  }
  return { agentAddress, subAgentId, sequenceNumber, uptime, samples, flowSamples, counterSamples }
}

function truncatedHeader(sink: DecodeSink, end: number): undefined {
  sink.error('truncated', `sFlow datagram header cut at ${end} bytes`)
  return undefined
}

/** Decodes one flow sample into a new row; false when the sample is too short to make one. */
function decodeFlowSample(
  b: Uint8Array,
  o: number,
  end: number,
  expanded: boolean,
  d: Datagram,
  c: FlowColumnArrays,
  sink: DecodeSink,
): boolean {
  let samplingRate: number, inFormat: number, inValue: number, outFormat: number, outValue: number
  if (expanded) {
    if (o + 44 > end) {
      sink.error('bad-record', `sFlow expanded flow sample of ${end - o} bytes`)
      return false
    }
    samplingRate = readU32(b, o + 12)
    inFormat = readU32(b, o + 24)
    inValue = readU32(b, o + 28)
    outFormat = readU32(b, o + 32)
    outValue = readU32(b, o + 36)
    o += 40
  } else {
    if (o + 32 > end) {
      sink.error('bad-record', `sFlow flow sample of ${end - o} bytes`)
      return false
    }
    samplingRate = readU32(b, o + 8)
    const input = readU32(b, o + 20)
    const output = readU32(b, o + 24)
    inFormat = input >>> 30
    inValue = input & 0x3fffffff
    outFormat = output >>> 30
    outValue = output & 0x3fffffff
    o += 28
  }
  const records = readU32(b, o)
  o += 4

  const batch = c.batch
  const row = batch.appendRow()
  // Rows were reserved for the datagram, so this keeps the arrays; it guards the bound's arithmetic.
  c.bind(batch)
  c.timeReceived[row] = d.timeReceived
  const exporter = c.exporterAddress
  const at = row * 16
  for (let i = 0; i < 16; i++) exporter[at + i] = d.exporterAddress[i]!
  c.samplingRate[row] = samplingRate
  c.packets[row] = 1
  if (inFormat === 0 && inValue !== LOCAL_INTERFACE) c.inIf[row] = inValue
  if (outFormat === 0) {
    if (outValue !== LOCAL_INTERFACE) c.outIf[row] = outValue
    c.forwardingStatus[row] = FORWARDED
  } else if (outFormat === 1) {
    c.forwardingStatus[row] = discardStatus(outValue)
  } else if (outFormat === 2) {
    // Sent to several interfaces: no single OutIf.
    c.forwardingStatus[row] = FORWARDED
  }

  let sawHeader = false
  let sawIP = false
  let sawRouter = false
  for (let i = 0; i < records; i++) {
    if (o + 8 > end) {
      sink.error('bad-record', `sFlow flow sample ends before record ${i + 1} of ${records}`)
      break
    }
    const format = readU32(b, o)
    const length = readU32(b, o + 4)
    o += 8
    if (length > end - o) {
      sink.error('bad-record', `sFlow flow record ${format} of ${length} bytes goes past its sample's end`)
      break
    }
    const recordEnd = o + length
    switch (format) {
      case RECORD_SAMPLED_HEADER:
        sawHeader = true
        sampledHeader(b, o, recordEnd, c, row, sink)
        break
      case RECORD_SAMPLED_ETHERNET:
        if (o + 24 > recordEnd) sink.error('bad-record', `sFlow sampled Ethernet record of ${length} bytes`)
        else if (!sawHeader) {
          if (!sawIP) c.bytes[row] = withoutFCS(readU32(b, o))
          c.srcMAC[row] = readMAC(b, o + 4)
          c.dstMAC[row] = readMAC(b, o + 12)
          c.etype[row] = readU32(b, o + 20) & 0xffff
        }
        break
      case RECORD_SAMPLED_IPV4:
      case RECORD_SAMPLED_IPV6: {
        const v6 = format === RECORD_SAMPLED_IPV6
        if (o + (v6 ? 56 : 32) > recordEnd) sink.error('bad-record', `sFlow sampled ${v6 ? 'IPv6' : 'IPv4'} record of ${length} bytes`)
        else if (!sawHeader) {
          sawIP = true
          sampledIP(b, o, v6, c, row)
        }
        break
      }
      case RECORD_EXTENDED_SWITCH:
        if (o + 16 > recordEnd) sink.error('bad-record', `sFlow extended switch record of ${length} bytes`)
        else {
          const srcVlan = readU32(b, o) & 0x0fff
          const dstVlan = readU32(b, o + 8) & 0x0fff
          if (srcVlan !== 0) c.srcVlan[row] = srcVlan
          if (dstVlan !== 0) c.dstVlan[row] = dstVlan
        }
        break
      case RECORD_EXTENDED_ROUTER:
        if (extendedRouter(b, o, recordEnd, c, row)) sawRouter = true
        else sink.error('bad-record', `sFlow extended router record of ${length} bytes`)
        break
      case RECORD_EXTENDED_GATEWAY:
        if (!extendedGateway(b, o, recordEnd, c, row, sawRouter)) {
          sink.error('bad-record', `sFlow extended gateway record of ${length} bytes does not hold its lists`)
        }
        break
      default:
      // Records we do not use (and other enterprises' records) are skipped by their length.
    }
    o = recordEnd
  }
  return true
}

function sampledHeader(b: Uint8Array, o: number, end: number, c: FlowColumnArrays, row: number, sink: DecodeSink): void {
  if (o + 16 > end) {
    sink.error('bad-record', `sFlow sampled header record of ${end - o} bytes`)
    return
  }
  const protocol = readU32(b, o)
  const frameLength = readU32(b, o + 4)
  // An agent that stripped 4 bytes or more from an Ethernet frame took its FCS off the header
  // but, as the spec asks, still counts it in frame_length.
  c.bytes[row] = protocol === 1 && readU32(b, o + 8) >= ETHERNET_FCS ? withoutFCS(frameLength) : frameLength
  let headerLength = readU32(b, o + 12)
  o += 16
  if (headerLength > end - o) {
    sink.error('bad-record', `sFlow sampled header of ${headerLength} bytes in a record of ${end - o + 16}`)
    headerLength = end - o
  }
  const first = protocol === 1 ? 'ethernet' : protocol === 11 ? 'ipv4' : protocol === 12 ? 'ipv6' : protocol === 13 ? 'mpls' : undefined
  // Other link types (Token Ring, FDDI, PPP…) are not parsed: the sample still counts its bytes.
  if (first === undefined) return
  const status = parseFrameInto(b, o, o + headerLength, c, row, first, frameFacts)
  if (frameFacts.ipLength > 0) c.bytes[row] = frameFacts.ipLength
  if (status !== FrameStatus.Complete) {
    sink.error('bad-frame', status === FrameStatus.Truncated ? 'sampled header cut inside a header' : 'sampled header malformed')
  }
}

const withoutFCS = (frameLength: number): number => (frameLength >= ETHERNET_FCS ? frameLength - ETHERNET_FCS : frameLength)

/** A sampled IPv4 or IPv6 record: IP packet length, protocol, addresses, ports, TCP flags, TOS (priority). */
function sampledIP(b: Uint8Array, o: number, v6: boolean, c: FlowColumnArrays, row: number): void {
  c.bytes[row] = readU32(b, o)
  c.proto[row] = readU32(b, o + 4) & 0xff
  const at = row * 16
  if (v6) {
    c.etype[row] = ETHERTYPE_IPV6
    copyIPv6(c.srcAddr, at, b, o + 8)
    copyIPv6(c.dstAddr, at, b, o + 24)
    o += 40
  } else {
    c.etype[row] = ETHERTYPE_IPV4
    copyIPv4Mapped(c.srcAddr, at, b, o + 8)
    copyIPv4Mapped(c.dstAddr, at, b, o + 12)
    o += 16
  }
  const srcPort = readU32(b, o) & 0xffff
  const dstPort = readU32(b, o + 4) & 0xffff
  const tcpFlags = readU32(b, o + 8) & 0x1ff
  if (srcPort !== 0) c.srcPort[row] = srcPort
  if (dstPort !== 0) c.dstPort[row] = dstPort
  if (tcpFlags !== 0) c.tcpFlags[row] = tcpFlags
  c.ipTos[row] = readU32(b, o + 12) & 0xff
}

/**
 * Reads an sFlow address (type 1 IPv4, 2 IPv6, 0 unknown) at o into out[at..at+16) unless out
 * is undefined; returns the offset after it, or -1 if it does not fit before end or has another type.
 */
function readAddress(b: Uint8Array, o: number, end: number, out: Uint8Array | undefined, at: number): number {
  if (o + 4 > end) return -1
  const type = readU32(b, o)
  o += 4
  if (type === 1) {
    if (o + 4 > end) return -1
    if (out !== undefined) copyIPv4Mapped(out, at, b, o)
    return o + 4
  }
  if (type === 2) {
    if (o + 16 > end) return -1
    if (out !== undefined) copyIPv6(out, at, b, o)
    return o + 16
  }
  return type === 0 ? o : -1
}

function extendedRouter(b: Uint8Array, o: number, end: number, c: FlowColumnArrays, row: number): boolean {
  o = readAddress(b, o, end, c.nextHop, row * 16)
  if (o < 0 || o + 8 > end) return false
  const srcMask = readU32(b, o)
  const dstMask = readU32(b, o + 4)
  if (srcMask <= 128) c.srcNetMask[row] = srcMask
  if (dstMask <= 128) c.dstNetMask[row] = dstMask
  return true
}

function extendedGateway(
  b: Uint8Array,
  o: number,
  end: number,
  c: FlowColumnArrays,
  row: number,
  sawRouter: boolean,
): boolean {
  o = readAddress(b, o, end, sawRouter ? undefined : c.nextHop, row * 16)
  if (o < 0 || o + 16 > end) return false
  const routerAS = readU32(b, o)
  c.srcAS[row] = readU32(b, o + 4)
  // src_peer_as (o + 8) has no column.
  const segments = readU32(b, o + 12)
  o += 16
  const batch = c.batch
  let lastAS = routerAS
  for (let s = 0; s < segments; s++) {
    if (o + 8 > end) return false
    // Segment type (1 AS_SET, 2 AS_SEQUENCE) at o: both are flattened into the path, in order.
    const count = readU32(b, o + 4)
    o += 8
    if (count > (end - o) / 4) return false
    for (let k = 0; k < count; k++) {
      lastAS = readU32(b, o)
      batch.pushList('DstASPath', row, lastAS)
      o += 4
    }
  }
  c.dstAS[row] = lastAS
  if (o + 4 > end) return false
  const communities = readU32(b, o)
  o += 4
  if (communities > (end - o) / 4) return false
  for (let k = 0; k < communities; k++) {
    batch.pushList('DstCommunities', row, readU32(b, o))
    o += 4
  }
  // local_pref follows; it has no column.
  return true
}

/** Adds the generic interface counters of one counter sample to the sink; returns how many (0 or 1+). */
function decodeCounterSample(
  b: Uint8Array,
  o: number,
  end: number,
  expanded: boolean,
  d: Datagram,
  agentAddress: Uint8Array,
  subAgentId: number,
  sink: DecodeSink,
): number {
  const fixed = expanded ? 16 : 12
  if (o + fixed > end) {
    sink.error('bad-record', `sFlow counter sample of ${end - o} bytes`)
    return 0
  }
  const sequenceNumber = readU32(b, o)
  const records = readU32(b, o + fixed - 4)
  o += fixed
  let found = 0
  for (let i = 0; i < records; i++) {
    if (o + 8 > end) {
      sink.error('bad-record', `sFlow counter sample ends before record ${i + 1} of ${records}`)
      break
    }
    const format = readU32(b, o)
    const length = readU32(b, o + 4)
    o += 8
    if (length > end - o) {
      sink.error('bad-record', `sFlow counter record ${format} of ${length} bytes goes past its sample's end`)
      break
    }
    if (format === COUNTERS_GENERIC_INTERFACE) {
      if (length < GENERIC_INTERFACE_LENGTH) {
        sink.error('bad-record', `sFlow generic interface counters of ${length} bytes`)
      } else {
        sink.counters.push(genericInterface(b, o, d, agentAddress, subAgentId, sequenceNumber))
        found++
      }
    }
    o += length
  }
  return found
}

function genericInterface(
  b: Uint8Array,
  o: number,
  d: Datagram,
  agentAddress: Uint8Array,
  subAgentId: number,
  sequenceNumber: number,
): InterfaceCounters {
  return {
    exporterAddress: d.exporterAddress.slice(0, 16),
    agentAddress,
    subAgentId,
    timeReceived: d.timeReceived,
    sequenceNumber,
    ifIndex: readU32(b, o),
    ifType: readU32(b, o + 4),
    ifSpeed: readU64(b, o + 8),
    ifDirection: readU32(b, o + 16),
    ifStatus: readU32(b, o + 20),
    inOctets: readU64(b, o + 24),
    inUnicastPackets: readU32(b, o + 32),
    inMulticastPackets: readU32(b, o + 36),
    inBroadcastPackets: readU32(b, o + 40),
    inDiscards: readU32(b, o + 44),
    inErrors: readU32(b, o + 48),
    inUnknownProtocols: readU32(b, o + 52),
    outOctets: readU64(b, o + 56),
    outUnicastPackets: readU32(b, o + 64),
    outMulticastPackets: readU32(b, o + 68),
    outBroadcastPackets: readU32(b, o + 72),
    outDiscards: readU32(b, o + 76),
    outErrors: readU32(b, o + 80),
    promiscuousMode: readU32(b, o + 84),
  }
}
