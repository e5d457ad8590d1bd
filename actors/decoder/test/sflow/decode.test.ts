// The sFlow v5 decoder on hand-built datagrams: the datagram header, each sample and record type,
// precedence between records, discard reasons, counter samples, and errors that never throw.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FlowBatch, flowBatchToRows, formatIP, type NumericColumn } from '@flowbus/bus-schemas'
import { readPcapUdpAll } from '@flowbus/runtime'
import { describe, expect, it } from 'vitest'
import { discardStatus } from '../../src/sflow/index.js'
import { bytes, ethernet, ipv4Header, ipv6Header, tcpHeader, udpHeader, vlanTag } from '../packet/build.js'
import {
  counterSample,
  datagram,
  expandedFlowSample,
  flowSample,
  genericInterface,
  ipv6Bytes,
  sampledHeader,
  xdr,
  type GenericInterfaceCounters,
} from './builder.js'
import { seededRandom } from './random.js'
import { decode, recordingSink } from './sink.js'
import { akvoradoTestdata } from '../../../../test/src/harness/testdata.js'

// The first 128 bytes of a 1518-byte frame on the wire (1514 bytes and the FCS): an IPv4 packet of 1496 bytes.
const tcpFrame = bytes(
  ethernet(
    '00:11:22:33:44:55',
    '66:77:88:99:aa:bb',
    0x8100,
    vlanTag(
      10,
      0x0800,
      ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, ttl: 60, tos: 0x10, id: 77 }, [...tcpHeader(443, 50000, 0x18), ...new Array<number>(1456).fill(0)]),
    ),
  ),
).subarray(0, 128)

const switchRecord = (srcVlan: number, dstVlan: number) => ({ format: 1001, body: xdr().u32(srcVlan).u32(0).u32(dstVlan).u32(0) })
const routerRecord = (nextHop: string, srcMask: number, dstMask: number) => ({
  format: 1002,
  body: xdr().address(nextHop).u32(srcMask).u32(dstMask),
})
const gatewayRecord = (nextHop: string, routerAS: number, srcAS: number, peerAS: number, segments: number[][], communities: number[]) => {
  const body = xdr().address(nextHop).u32(routerAS).u32(srcAS).u32(peerAS).u32(segments.length)
  for (const s of segments) {
    body.u32(2).u32(s.length)
    for (const as of s) body.u32(as)
  }
  body.u32(communities.length)
  for (const c of communities) body.u32(c)
  body.u32(100)
  return { format: 1003, body }
}

const num = (flows: FlowBatch, col: NumericColumn, row = 0): number => flows.getNumber(col, row)
const ip = (flows: FlowBatch, col: 'SrcAddr' | 'DstAddr' | 'NextHop' | 'ExporterAddress', row = 0): string => formatIP(flows.getIP(col, row))

describe('decodeSflow: datagram header', () => {
  it('returns agent, sub-agent, sequence number and uptime (IPv4 agent)', () => {
    const { header, sink } = decode(datagram([], { agent: '203.0.113.9', subAgentId: 7, sequenceNumber: 4242, uptime: 99 }))
    expect(sink.errors).toEqual([])
    expect(formatIP(header!.agentAddress)).toBe('203.0.113.9')
    expect(header).toMatchObject({ subAgentId: 7, sequenceNumber: 4242, uptime: 99, samples: 0, flowSamples: 0, counterSamples: 0 })
  })

  it('reads an IPv6 agent address', () => {
    const { header } = decode(datagram([], { agent: '2001:db8::5' }))
    expect(formatIP(header!.agentAddress)).toBe('2001:db8::5')
  })

  it('refuses another version and counts it', () => {
    const payload = datagram([])
    payload[3] = 4
    const { header, sink } = decode(payload)
    expect(header).toBeUndefined()
    expect(sink.errors.map((e) => e.reason)).toEqual(['bad-version'])
  })

  it('counts a header cut short as truncated', () => {
    const payload = datagram([], { agent: '2001:db8::5' })
    for (let cut = 0; cut < payload.length; cut++) {
      const { header, sink } = decode(payload.subarray(0, cut))
      expect(header).toBeUndefined()
      expect(sink.errors.map((e) => e.reason)).toEqual(['truncated'])
    }
  })

  it('refuses an unknown agent address type', () => {
    const payload = datagram([])
    payload[7] = 3
    const { header, sink } = decode(payload)
    expect(header).toBeUndefined()
    expect(sink.errors.map((e) => e.reason)).toEqual(['bad-record'])
  })
})

describe('decodeSflow: flow samples', () => {
  it('decodes a flow sample with a sampled Ethernet header', () => {
    const { sink, header } = decode(datagram([flowSample([sampledHeader(1, 1518, tcpFrame)], { samplingRate: 4096, input: 12, output: 34 })]))
    expect(sink.errors).toEqual([])
    expect(header!.flowSamples).toBe(1)
    const f = sink.flows
    expect(f.count).toBe(1)
    const [row] = flowBatchToRows(f)
    expect(row).toMatchObject({
      TimeReceived: 1_700_000_000,
      ExporterAddress: '192.0.2.200',
      SamplingRate: 4096,
      InIf: 12,
      OutIf: 34,
      ForwardingStatus: 64,
      Bytes: 1496,
      Packets: 1,
      EType: 0x0800,
      SrcAddr: '10.0.0.1',
      DstAddr: '10.0.0.2',
      Proto: 6,
      SrcPort: 443,
      DstPort: 50000,
      TCPFlags: 0x18,
      IPTTL: 60,
      IPTos: 0x10,
      IPFragmentID: 77,
      SrcVlan: 10,
      SrcMAC: '66:77:88:99:aa:bb',
      DstMAC: '00:11:22:33:44:55',
    })
    expect(f.has('FlowDirection')).toBe(false)
  })

  it('decodes an expanded flow sample with 32-bit interface indexes', () => {
    const { sink } = decode(datagram([expandedFlowSample([sampledHeader(1, 100, tcpFrame)], { samplingRate: 512, inValue: 0x7fff0001, outValue: 0x40000002 })]))
    expect(sink.errors).toEqual([])
    expect(num(sink.flows, 'SamplingRate')).toBe(512)
    expect(num(sink.flows, 'InIf')).toBe(0x7fff0001)
    expect(num(sink.flows, 'OutIf')).toBe(0x40000002)
    expect(num(sink.flows, 'ForwardingStatus')).toBe(64)
  })

  it('maps the local interface to 0, multiple interfaces to OutIf 0 and discards to a dropped status', () => {
    const samples = [
      flowSample([], { input: 0x3fffffff, output: 0x3fffffff }),
      flowSample([], { input: 5, output: (2 << 30) | 7 }),
      flowSample([], { input: 5, output: (1 << 30) | 258 }),
      flowSample([], { input: 5, output: (1 << 30) | 256 }),
      expandedFlowSample([], { outFormat: 1, outValue: 257 }),
      expandedFlowSample([], { inValue: 0x3fffffff, outFormat: 2, outValue: 3 }),
    ]
    const { sink } = decode(datagram(samples))
    expect(sink.errors).toEqual([])
    const f = sink.flows
    const rows = [0, 1, 2, 3, 4, 5].map((r) => [num(f, 'InIf', r), num(f, 'OutIf', r), num(f, 'ForwardingStatus', r)])
    expect(rows).toEqual([
      [0, 0, 64],
      [5, 0, 64],
      [5, 0, 129],
      [5, 0, 128],
      [70000, 0, 137],
      [0, 0, 64],
    ])
  })

  it('maps discard reasons as documented', () => {
    expect([0, 1, 3, 4, 9, 13, 256, 257, 258, 259, 260, 261, 262, 999].map(discardStatus)).toEqual([
      131, 132, 141, 133, 129, 129, 128, 137, 129, 128, 139, 138, 133, 128,
    ])
  })

  it('decodes sampled IPv4 and IPv6 records when there is no sampled header', () => {
    const v4 = {
      format: 3,
      body: xdr().u32(1400).u32(17).opaque([198, 51, 100, 1]).opaque([198, 51, 100, 2]).u32(5353).u32(53).u32(0).u32(0x28),
    }
    const v6 = {
      format: 4,
      body: xdr().u32(900).u32(6).opaque(ipv6Bytes('2001:db8::a')).opaque(ipv6Bytes('2001:db8::b')).u32(22).u32(60000).u32(0x11).u32(3),
    }
    const { sink } = decode(datagram([flowSample([v4]), flowSample([v6])]))
    expect(sink.errors).toEqual([])
    const f = sink.flows
    expect([ip(f, 'SrcAddr', 0), ip(f, 'DstAddr', 0), num(f, 'Proto', 0), num(f, 'SrcPort', 0), num(f, 'DstPort', 0)]).toEqual([
      '198.51.100.1',
      '198.51.100.2',
      17,
      5353,
      53,
    ])
    expect([num(f, 'Bytes', 0), num(f, 'EType', 0), num(f, 'IPTos', 0)]).toEqual([1400, 0x0800, 0x28])
    expect([ip(f, 'SrcAddr', 1), ip(f, 'DstAddr', 1), num(f, 'Proto', 1), num(f, 'TCPFlags', 1)]).toEqual(['2001:db8::a', '2001:db8::b', 6, 0x11])
    expect([num(f, 'Bytes', 1), num(f, 'EType', 1), num(f, 'IPTos', 1)]).toEqual([900, 0x86dd, 3])
  })

  it('decodes a sampled Ethernet record', () => {
    const eth = { format: 2, body: xdr().u32(1518).opaque([0, 0x53, 0, 1, 2, 3, 0, 0]).opaque([0, 0x53, 0, 4, 5, 6, 0, 0]).u32(0x86dd) }
    const { sink } = decode(datagram([flowSample([eth])]))
    expect(sink.errors).toEqual([])
    expect([num(sink.flows, 'SrcMAC'), num(sink.flows, 'DstMAC'), num(sink.flows, 'EType'), num(sink.flows, 'Bytes')]).toEqual([
      0x005300010203, 0x005300040506, 0x86dd, 1514,
    ])
  })

  it('counts Bytes at layer 3: the IP length, else the frame without its FCS', () => {
    const arp = bytes(ethernet('00:11:22:33:44:55', '66:77:88:99:aa:bb', 0x0806, new Array<number>(28).fill(0)))
    const v6 = bytes(ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 17 }, [...udpHeader(3, 4), ...new Array<number>(992).fill(0)])).subarray(0, 64)
    const v4 = bytes(ipv4Header({ src: '10.9.9.9', dst: '10.8.8.8', proto: 17 }, [...udpHeader(1, 2), ...new Array<number>(92).fill(0)])).subarray(0, 40)
    const samples = [
      sampledHeader(1, 1518, tcpFrame), // IPv4 total length
      sampledHeader(12, 1040, v6), // IPv6 payload length + 40
      sampledHeader(11, 120, v4), // a header starting at IPv4
      sampledHeader(1, 64, arp), // not IP: the frame less the FCS the agent stripped
      sampledHeader(1, 64, arp, 0), // the agent says it stripped nothing: the frame length as reported
      sampledHeader(1, 1518, tcpFrame.subarray(0, 20)), // cut before the IPv4 total length
      sampledHeader(7, 60, bytes([0xff, 0x03, 0, 0x21])), // PPP: not parsed, no FCS rule
    ].map((record) => flowSample([record]))
    const { sink } = decode(datagram(samples))
    expect(sink.errors.map((e) => e.reason)).toEqual(['bad-frame'])
    expect(Array.from({ length: 7 }, (_, row) => num(sink.flows, 'Bytes', row))).toEqual([1496, 1040, 120, 60, 64, 1514, 60])
  })

  it('counts a sampled IPv4/IPv6 record\'s IP length over a sampled Ethernet record\'s frame, in any order', () => {
    const v4 = { format: 3, body: xdr().u32(1400).u32(17).opaque([1, 1, 1, 1]).opaque([2, 2, 2, 2]).u32(1).u32(2).u32(0).u32(0) }
    const eth = { format: 2, body: xdr().u32(1422).opaque([1, 1, 1, 1, 1, 1, 0, 0]).opaque([2, 2, 2, 2, 2, 2, 0, 0]).u32(0x0800) }
    const { sink } = decode(datagram([flowSample([v4, eth]), flowSample([eth, v4])]))
    expect(sink.errors).toEqual([])
    expect([num(sink.flows, 'Bytes', 0), num(sink.flows, 'Bytes', 1)]).toEqual([1400, 1400])
  })

  it('prefers the sampled header over sampled IPv4/Ethernet records, in any order', () => {
    const v4 = { format: 3, body: xdr().u32(1).u32(17).opaque([1, 1, 1, 1]).opaque([2, 2, 2, 2]).u32(1).u32(2).u32(0).u32(0) }
    const eth = { format: 2, body: xdr().u32(1).opaque([1, 1, 1, 1, 1, 1, 0, 0]).opaque([2, 2, 2, 2, 2, 2, 0, 0]).u32(0x0806) }
    for (const records of [
      [v4, eth, sampledHeader(1, 1518, tcpFrame)],
      [sampledHeader(1, 1518, tcpFrame), eth, v4],
    ]) {
      const { sink } = decode(datagram([flowSample(records)]))
      const f = sink.flows
      expect([ip(f, 'SrcAddr'), num(f, 'Proto'), num(f, 'SrcPort'), num(f, 'EType'), num(f, 'Bytes'), num(f, 'SrcMAC')]).toEqual([
        '10.0.0.1', 6, 443, 0x0800, 1496, 0x66778899aabb,
      ])
    }
  })

  it('takes VLANs from the extended switch record over the header tag, in any order', () => {
    for (const records of [
      [switchRecord(200, 300), sampledHeader(1, 1514, tcpFrame)],
      [sampledHeader(1, 1514, tcpFrame), switchRecord(200, 300)],
    ]) {
      const { sink } = decode(datagram([flowSample(records)]))
      expect([num(sink.flows, 'SrcVlan'), num(sink.flows, 'DstVlan')]).toEqual([200, 300])
    }
    const { sink } = decode(datagram([flowSample([switchRecord(0, 0), sampledHeader(1, 1514, tcpFrame)])]))
    expect(num(sink.flows, 'SrcVlan')).toBe(10)
  })

  it('decodes the extended router record (IPv4 and IPv6 next hops, masks)', () => {
    const { sink } = decode(datagram([flowSample([routerRecord('192.0.2.254', 24, 16)]), flowSample([routerRecord('2001:db8::fe', 48, 64)])]))
    expect(sink.errors).toEqual([])
    const f = sink.flows
    expect([ip(f, 'NextHop', 0), num(f, 'SrcNetMask', 0), num(f, 'DstNetMask', 0)]).toEqual(['192.0.2.254', 24, 16])
    expect([ip(f, 'NextHop', 1), num(f, 'SrcNetMask', 1), num(f, 'DstNetMask', 1)]).toEqual(['2001:db8::fe', 48, 64])
  })

  it('decodes the extended gateway record: AS path, communities, AS numbers', () => {
    const gateway = gatewayRecord('203.0.113.1', 65000, 64512, 65001, [[65001, 3356], [174, 2906]], [((65000 << 16) | 100) >>> 0, 0xffffff01])
    const { sink } = decode(datagram([flowSample([gateway]), flowSample([gatewayRecord('203.0.113.1', 65000, 0, 0, [], [])])]))
    expect(sink.errors).toEqual([])
    const f = sink.flows
    expect([...f.getList('DstASPath', 0)]).toEqual([65001, 3356, 174, 2906])
    expect([...f.getList('DstCommunities', 0)]).toEqual([((65000 << 16) | 100) >>> 0, 0xffffff01])
    expect([num(f, 'SrcAS', 0), num(f, 'DstAS', 0), ip(f, 'NextHop', 0)]).toEqual([64512, 2906, '203.0.113.1'])
    // An empty path: the destination is in the router's own AS.
    expect([num(f, 'DstAS', 1), f.getList('DstASPath', 1).length]).toEqual([65000, 0])
  })

  it("keeps the router record's next hop over the gateway's, in any order", () => {
    const gateway = gatewayRecord('203.0.113.1', 65000, 1, 2, [[3]], [])
    const router = routerRecord('192.0.2.254', 24, 24)
    const { sink } = decode(datagram([flowSample([gateway, router]), flowSample([router, gateway])]))
    expect([ip(sink.flows, 'NextHop', 0), ip(sink.flows, 'NextHop', 1)]).toEqual(['192.0.2.254', '192.0.2.254'])
  })

  it('parses sampled headers that start at IPv4, IPv6 or MPLS', () => {
    const v4 = bytes(ipv4Header({ src: '10.9.9.9', dst: '10.8.8.8', proto: 17 }, udpHeader(1, 2)))
    const v6 = bytes(ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 17 }, udpHeader(3, 4)))
    const mpls = bytes([0, 0x10, 0x11, 0x40, ...v4])
    const { sink } = decode(datagram([flowSample([sampledHeader(11, 48, v4)]), flowSample([sampledHeader(12, 68, v6)]), flowSample([sampledHeader(13, 52, mpls)])]))
    expect(sink.errors).toEqual([])
    const f = sink.flows
    expect([ip(f, 'SrcAddr', 0), num(f, 'DstPort', 0), ip(f, 'SrcAddr', 1), num(f, 'DstPort', 1), ip(f, 'SrcAddr', 2)]).toEqual([
      '10.9.9.9', 2, '2001:db8::1', 4, '10.9.9.9',
    ])
    expect([...f.getList('MPLSLabels', 2)]).toEqual([257])
  })

  it('skips unknown records, samples and header protocols without an error', () => {
    const unknownRecord = { format: (9 << 12) | 1, body: xdr().u32(1).u32(2) }
    const ppp = sampledHeader(7, 60, bytes([0xff, 0x03, 0, 0x21]))
    const samples = [{ format: (4413 << 12) | 5, body: xdr().u32(1) }, flowSample([unknownRecord, ppp, switchRecord(5, 6)])]
    const { sink, header } = decode(datagram(samples))
    expect(sink.errors).toEqual([])
    expect(header!.flowSamples).toBe(1)
    expect([num(sink.flows, 'SrcVlan'), num(sink.flows, 'Bytes')]).toEqual([5, 60])
  })
})

const counters: GenericInterfaceCounters = {
  ifIndex: 17,
  ifType: 6,
  ifSpeed: 100_000_000_000,
  ifDirection: 1,
  ifStatus: 3,
  inOctets: 2 ** 40 + 5,
  inUnicastPackets: 1000,
  inMulticastPackets: 20,
  inBroadcastPackets: 3,
  inDiscards: 4,
  inErrors: 5,
  inUnknownProtocols: 6,
  outOctets: 2 ** 33,
  outUnicastPackets: 2000,
  outMulticastPackets: 30,
  outBroadcastPackets: 7,
  outDiscards: 8,
  outErrors: 9,
  promiscuousMode: 0,
}

describe('decodeSflow: counter samples', () => {
  it('decodes generic interface counters of compact and expanded counter samples, skipping other records', () => {
    const ethernetCounters = { format: 2, body: xdr().u32(1).u32(2).u32(3).u32(4).u32(5).u32(6).u32(7).u32(8).u32(9).u32(10).u32(11).u32(12).u32(13) }
    const samples = [counterSample([ethernetCounters, genericInterface(counters)], false, 77), counterSample([genericInterface({ ...counters, ifIndex: 18 })], true, 78)]
    const { sink, header } = decode(datagram(samples, { agent: '198.51.100.7', subAgentId: 3 }))
    expect(sink.errors).toEqual([])
    expect(header!.counterSamples).toBe(2)
    expect(sink.flows.count).toBe(0)
    expect(sink.counters).toHaveLength(2)
    const [first, second] = sink.counters
    expect(first).toMatchObject({ ...counters, subAgentId: 3, sequenceNumber: 77, timeReceived: 1_700_000_000 })
    expect(formatIP(first!.agentAddress)).toBe('198.51.100.7')
    expect(formatIP(first!.exporterAddress)).toBe('192.0.2.200')
    expect(second).toMatchObject({ ifIndex: 18, sequenceNumber: 78 })
  })

  it('counts a generic interface record too short for its fields', () => {
    const short = { format: 1, body: xdr().u32(1).u32(2) }
    const { sink } = decode(datagram([counterSample([short]), flowSample([])]))
    expect(sink.errors.map((e) => e.reason)).toEqual(['bad-record'])
    expect(sink.counters).toHaveLength(0)
    expect(sink.flows.count).toBe(1)
  })
})

describe('decodeSflow: bad input', () => {
  const rich = (): Uint8Array =>
    datagram([
      flowSample([switchRecord(1, 2), sampledHeader(1, 1514, tcpFrame), routerRecord('192.0.2.254', 24, 16), gatewayRecord('203.0.113.1', 65000, 1, 2, [[3, 4]], [5, 6])]),
      counterSample([genericInterface(counters)]),
      expandedFlowSample([sampledHeader(12, 68, bytes(ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 17 }, udpHeader(3, 4))))]),
    ])

  it('keeps the samples before a sample whose length runs past the end', () => {
    const full = rich()
    const { sink } = decode(full.subarray(0, full.length - 10))
    expect(sink.errors.map((e) => e.reason)).toEqual(['truncated'])
    expect(sink.flows.count).toBe(1)
    expect(sink.counters).toHaveLength(1)
  })

  it("decodes the other samples when one record's length lies", () => {
    const bad = flowSample([sampledHeader(1, 1514, tcpFrame)])
    const payload = datagram([bad, flowSample([switchRecord(9, 9)])])
    // The sampled header record's length field: datagram header 28, sample header 8, flow sample fields 32, record format 4.
    const at = 28 + 8 + 32 + 4
    payload.set([0x7f, 0xff, 0xff, 0xf0], at)
    const { sink } = decode(payload)
    expect(sink.errors.map((e) => e.reason)).toEqual(['bad-record'])
    expect(sink.flows.count).toBe(2)
    expect(num(sink.flows, 'SrcVlan', 1)).toBe(9)
  })

  it('counts a sampled header that claims more bytes than its record holds, and parses what is there', () => {
    const record = { format: 1, body: xdr().u32(1).u32(1514).u32(0).u32(1000).opaque(tcpFrame) }
    const { sink } = decode(datagram([flowSample([record])]))
    expect(sink.errors.map((e) => e.reason)).toEqual(['bad-record'])
    expect(ip(sink.flows, 'SrcAddr')).toBe('10.0.0.1')
  })

  it('counts a sampled header cut inside a header as bad-frame and keeps the fields before', () => {
    const { sink } = decode(datagram([flowSample([sampledHeader(1, 1518, tcpFrame.subarray(0, 30))])]))
    expect(sink.errors.map((e) => e.reason)).toEqual(['bad-frame'])
    // The IPv4 total length is within the first 30 bytes: Bytes is the IP packet's.
    expect([num(sink.flows, 'SrcVlan'), num(sink.flows, 'Bytes')]).toEqual([10, 1496])
  })

  it('does not trust sample and record counts', () => {
    const payload = datagram([flowSample([])])
    payload.set([0xff, 0xff, 0xff, 0xff], 24) // samples
    payload.set([0xff, 0xff, 0xff, 0xff], 28 + 8 + 28) // records of the flow sample
    const sink = recordingSink()
    const capacity = sink.flows.capacity
    decode(payload, sink)
    expect(sink.flows.count).toBe(1)
    expect(sink.flows.capacity).toBe(capacity)
    expect(sink.errors.map((e) => e.reason)).toEqual(['bad-record', 'truncated'])
  })

  it('never throws on a datagram cut at any byte or with flipped bits, and counts an error for every cut', () => {
    const full = rich()
    for (let cut = 0; cut < full.length; cut++) {
      const sink = recordingSink()
      expect(() => decode(full.slice(0, cut), sink)).not.toThrow()
      expect(sink.errors.length).toBeGreaterThan(0)
    }
    const next = seededRandom(987654321)
    const sink = recordingSink()
    for (let i = 0; i < 5000; i++) {
      const payload = full.slice()
      for (let flips = 1 + next(8); flips > 0; flips--) payload[next(payload.length)]! ^= 1 << next(8)
      decode(payload, sink)
      if (sink.flows.count > 1000) sink.flows.clear()
    }
  })
})

describe('decodeSflow: mutated real captures', () => {
  const dir = join(akvoradoTestdata, 'flow-decoder-sflow')
  const payloads = readdirSync(dir)
    .filter((f) => f.endsWith('.pcap'))
    .sort()
    .flatMap((f) => readPcapUdpAll(new Uint8Array(readFileSync(join(dir, f))), f).records.map((r) => ({ file: f, payload: r.payload })))

  it('finds the captures', () => {
    expect(payloads.length).toBeGreaterThanOrEqual(8)
  })

  /** Bytes the datagram's samples cover (some exporters pad datagrams past their last sample). */
  function sampledLength(payload: Uint8Array): number {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
    let o = view.getUint32(4) === 2 ? 8 + 16 + 16 : 8 + 4 + 16
    for (let i = view.getUint32(o - 4); i > 0; i--) o += 8 + view.getUint32(o + 4)
    return o
  }

  it.each(payloads.map((p) => [p.file, p.payload] as const))('%s: every cut is counted, none throws', (_, payload) => {
    expect(decode(payload).sink.errors).toEqual([])
    const used = sampledLength(payload)
    for (let cut = 0; cut < payload.length; cut++) {
      const sink = recordingSink()
      expect(() => decode(payload.slice(0, cut), sink)).not.toThrow()
      expect(sink.errors.length > 0).toBe(cut < used)
    }
  })

  it.each(payloads.map((p) => [p.file, p.payload] as const))('%s: lying words and flipped bits never throw nor allocate past the datagram', (_, payload) => {
    const sink = recordingSink(new FlowBatch(64))
    // Every 32-bit word (counts and lengths among them) set to values a liar would send.
    for (let at = 0; at + 4 <= payload.length; at += 4) {
      for (const lie of [0, 1, 0x7ffffffc, 0xfffffff0, 0xffffffff]) {
        const mutated = payload.slice()
        new DataView(mutated.buffer).setUint32(at, lie)
        decode(mutated, sink)
        sink.flows.clear()
        sink.counters.length = 0
      }
    }
    const next = seededRandom(payload.length)
    for (let i = 0; i < 3000; i++) {
      const mutated = payload.slice()
      for (let flips = 1 + next(8); flips > 0; flips--) mutated[next(mutated.length)]! ^= 1 << next(8)
      decode(mutated, sink)
      sink.flows.clear()
    }
    // One datagram adds at most one row per 40 bytes: the batch never grew past that.
    expect(sink.flows.capacity).toBeLessThanOrEqual(Math.max(64, 2 * Math.ceil(payload.length / 40)))
  })
})
