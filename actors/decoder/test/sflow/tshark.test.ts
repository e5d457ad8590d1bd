// The sFlow decoder against tshark: every capture under flow-decoder-sflow/, and generated
// datagrams mixing every sample and record type we decode (sampled frames taken from the real
// captures under flow-decoder/), compared field by field with tshark's dissection.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FlowBatch, formatIP, ipv4ToMapped, type IpColumn, type NumericColumn } from '@flowbus/bus-schemas'
import { readPcapUdpAll, writePcap } from '@flowbus/runtime'
import { removeDir, tempDir } from '@flowbus/test/harness'
import { describe, expect, it } from 'vitest'
import { decodeSflow, discardStatus } from '../../src/sflow/index.js'
import { bytes, ethernet, icmpHeader, ipv4Header, ipv6Extension, ipv6Fragment, ipv6Header, mplsStack, tcpHeader, udpHeader, vlanTag } from '../packet/build.js'
import { readPcapFrames } from '../packet/frames.js'
import {
  counterSample,
  datagram,
  expandedFlowSample,
  flowSample,
  genericInterface,
  ipv6Bytes,
  sampledHeader,
  xdr,
  type Xdr,
} from './builder.js'
import { seededRandom } from './random.js'
import { recordingSink } from './sink.js'
import { after, all, expectedFrameColumns, expectedIPLength, findTshark, first, splitAt, tsharkPackets, type Token } from './tshark.js'
import { akvoradoTestdata } from '../../../../test/src/harness/testdata.js'

const SFLOW_DIR = join(akvoradoTestdata, 'flow-decoder-sflow')
const FRAME_DIR = join(akvoradoTestdata, 'flow-decoder')
const captures = readdirSync(SFLOW_DIR).filter((f) => f.endsWith('.pcap')).sort()
const tshark = await findTshark()

type Expected = Record<string, number | string | number[]>
const LOCAL = 0x3fffffff
const IP_COLUMNS = new Set(['SrcAddr', 'DstAddr', 'NextHop'])
const LIST_COLUMNS = new Set(['MPLSLabels', 'DstASPath', 'DstCommunities'])

const num = (tokens: readonly Token[], field: string): number | undefined => {
  const v = first(tokens, field)
  return v === undefined ? undefined : Number(v)
}

/** What one flow sample tshark dissected should give as a flowbus row. */
function expectedFlowRow(sample: readonly Token[]): Expected {
  const records = splitAt(sample, 'sflow_245.flow_record_format')
  const head = sample.slice(0, sample.length - records.reduce((n, r) => n + r.length, 0))
  const e: Expected = { SamplingRate: num(head, 'sflow.flow_sample.sampling_rate')!, Packets: 1 }
  let inFormat = num(head, 'sflow.flow_sample.input_interface_format')
  let inValue = num(head, 'sflow.flow_sample.input_interface_value')
  if (inFormat === undefined) {
    const word = num(head, 'sflow.flow_sample.input_interface')!
    inFormat = word >>> 30
    inValue = word & LOCAL
  }
  const outFormat = num(head, 'sflow.flow_sample.output_interface_format') ?? num(head, 'sflow.flow_sample.output_interface.format')!
  const outValue = num(head, 'sflow.flow_sample.output_interface_value')!
  e.InIf = inFormat === 0 && inValue !== LOCAL ? inValue! : 0
  e.OutIf = outFormat === 0 && outValue !== LOCAL ? outValue : 0
  e.ForwardingStatus = outFormat === 1 ? discardStatus(outValue) : 64
  const format = (r: readonly Token[]): number => num(r, 'sflow_245.flow_record_format')!
  const header = records.find((r) => format(r) === 1)
  if (header) {
    // Bytes: the IP packet's length, else the frame's without the FCS the agent stripped (Ethernet).
    const frameLength = num(header, 'sflow_245.header.frame_length')!
    const ethernetFCS = num(header, 'sflow_245.header_protocol') === 1 && num(header, 'sflow_245.header.payload_stripped')! >= 4
    const i = header.findIndex((t) => 'field' in t && t.field === 'sflow_245.header')
    const frame = header.slice(i + 1)
    e.Bytes = expectedIPLength(frame) ?? (ethernetFCS ? frameLength - 4 : frameLength)
    Object.assign(e, expectedFrameColumns(frame))
  } else {
    for (const r of records) {
      if (format(r) === 2) {
        // The Ethernet record's length counts the FCS; an IPv4/IPv6 record's length wins over it.
        e.Bytes ??= num(r, 'sflow_245.ethernet.length')! - 4
        e.SrcMAC = parseInt(first(r, 'sflow_245.ethernet.source_mac_address')!.replace(/:/g, ''), 16)
        e.DstMAC = parseInt(first(r, 'sflow_245.ethernet.destination_mac_address')!.replace(/:/g, ''), 16)
        e.EType = num(r, 'sflow_245.ethernet.packet_type')!
      } else if (format(r) === 3 || format(r) === 4) {
        const v6 = format(r) === 4
        e.Bytes = num(r, 'sflow_245.ip.length')!
        e.SrcAddr = first(r, v6 ? 'sflow_245.ipv6_src' : 'sflow_245.ipv4_src')!
        e.DstAddr = first(r, v6 ? 'sflow_245.ipv6_dst' : 'sflow_245.ipv4_dst')!
        e.Proto = num(r, 'sflow.ip_protocol')!
        e.SrcPort = num(r, 'sflow_245.ip.source_port')!
        e.DstPort = num(r, 'sflow.ip.destination_port')!
        e.EType = v6 ? 0x86dd : 0x0800
      }
    }
  }
  for (const r of records) {
    switch (format(r)) {
      case 1001: {
        const src = num(r, 'sflow_245.vlan.in')!
        const dst = num(r, 'sflow_245.vlan.out')!
        if (src !== 0) e.SrcVlan = src
        if (dst !== 0) e.DstVlan = dst
        break
      }
      case 1002:
        e.NextHop = first(r, 'sflow_245.nexthop') ?? first(r, 'sflow_245.nexthop.v6')!
        e.SrcNetMask = num(r, 'sflow_245.nexthop.src_mask')!
        e.DstNetMask = num(r, 'sflow_245.nexthop.dst_mask')!
        break
      case 1003: {
        if (!records.some((x) => format(x) === 1002)) e.NextHop = first(r, 'sflow_245.nexthop') ?? first(r, 'sflow_245.nexthop.v6')!
        e.SrcAS = num(r, 'sflow_245.srcAS')!
        // tshark names communities sflow_245.dstAS too: they are the values after communityEntries.
        const split = r.findIndex((t) => 'field' in t && t.field === 'sflow_245.communityEntries')
        const path = all(r.slice(0, split), 'sflow_245.dstAS').map(Number)
        e.DstASPath = path
        e.DstCommunities = all(r.slice(split), 'sflow_245.dstAS').map(Number)
        e.DstAS = path.at(-1) ?? num(r, 'sflow_245.as')!
        break
      }
    }
  }
  return e
}

function actualRow(batch: FlowBatch, row: number, keys: readonly string[]): Expected {
  const out: Expected = {}
  for (const key of keys) {
    if (IP_COLUMNS.has(key)) out[key] = formatIP(batch.getIP(key as IpColumn, row))
    else if (LIST_COLUMNS.has(key)) out[key] = [...batch.getList(key as 'MPLSLabels', row)]
    else out[key] = batch.getNumber(key as NumericColumn, row)
  }
  return out
}

/** Decodes the sFlow datagrams of a capture and checks every sample against tshark. */
async function compareWithTshark(path: string): Promise<{ flows: number; counters: number }> {
  const { records } = readPcapUdpAll(new Uint8Array(readFileSync(path)), path)
  const packets = await tsharkPackets(tshark!, path, ['-d', 'udp.port==6343,sflow'])
  expect(packets).toHaveLength(records.length)
  let flows = 0
  let counters = 0
  records.forEach((record, p) => {
    const sink = recordingSink(new FlowBatch(8))
    const header = decodeSflow({ exporterAddress: record.srcAddress, exporterPort: record.srcPort, timeReceived: 1_700_000_000, payload: record.payload }, sink)
    expect(sink.errors).toEqual([])
    const tokens = after(packets[p]!, 'sflow')
    expect(formatIP(header!.agentAddress)).toBe(first(tokens, 'sflow_245.agent') ?? first(tokens, 'sflow_245.agent.v6'))
    expect([header!.subAgentId, header!.sequenceNumber, header!.uptime, header!.samples]).toEqual(
      ['sflow_245.sub_agent_id', 'sflow_245.sequence_number', 'sflow_245.sysuptime', 'sflow_245.numsamples'].map((f) => num(tokens, f)),
    )
    const samples = splitAt(tokens, 'sflow_245.sampletype')
    const flowSamples = samples.filter((s) => [1, 3].includes(num(s, 'sflow_245.sampletype')!))
    expect(sink.flows.count).toBe(flowSamples.length)
    flowSamples.forEach((s, row) => {
      const expected = expectedFlowRow(s)
      expect({ row, ...actualRow(sink.flows, row, Object.keys(expected)) }).toEqual({ row, ...expected })
      expect(formatIP(sink.flows.getIP('ExporterAddress', row))).toBe(formatIP(record.srcAddress))
    })
    const counterRecords = samples
      .filter((s) => [2, 4].includes(num(s, 'sflow_245.sampletype')!))
      .flatMap((s) =>
        splitAt(s, 'sflow_245.counters_record_format')
          .filter((r) => num(r, 'sflow_245.counters_record_format') === 1)
          .map((r) => ({ sequenceNumber: num(s, 'sflow.counters_sample.sequence_number'), r })),
      )
    expect(sink.counters).toHaveLength(counterRecords.length)
    counterRecords.forEach(({ sequenceNumber, r }, i) => {
      const n = (f: string): number => num(r, `sflow_245.${f}`)!
      expect(sink.counters[i]).toMatchObject({
        sequenceNumber,
        ifIndex: n('ifindex'),
        ifType: n('iftype'),
        ifSpeed: n('ifspeed'),
        ifDirection: n('ifdirection'),
        ifStatus: n('ifadmin_status') | (n('ifoper_status') << 1),
        inOctets: n('ifinoct'),
        inUnicastPackets: n('ifinpkt'),
        inMulticastPackets: n('ifinmcast'),
        inBroadcastPackets: n('ifinbcast'),
        inDiscards: n('ifindisc'),
        inErrors: n('ifinerr'),
        inUnknownProtocols: n('ifinunk'),
        outOctets: n('ifoutoct'),
        outUnicastPackets: n('ifoutpkt'),
        outMulticastPackets: n('ifoutmcast'),
        outBroadcastPackets: n('ifoutbcast'),
        outDiscards: n('ifoutdisc'),
        outErrors: n('ifouterr'),
        promiscuousMode: n('ifpromisc'),
      })
    })
    flows += flowSamples.length
    counters += counterRecords.length
  })
  return { flows, counters }
}

// Generated datagrams: a deterministic mix of every sample and record type we decode.
const realFrames = readdirSync(FRAME_DIR)
  .filter((f) => f.endsWith('.pcap') && !f.startsWith('mpls-eompls')) // tshark misses their control word
  .flatMap((f) => readPcapFrames(join(FRAME_DIR, f)).frames)

const builtFrames: { protocol: number; frame: Uint8Array }[] = [
  { protocol: 1, frame: bytes(ethernet('00:11:22:33:44:55', '66:77:88:99:aa:bb', 0x88a8, vlanTag(300, 0x8100, vlanTag(42, 0x0800, ipv4Header({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, ttl: 9, tos: 0xb8, id: 99 }, tcpHeader(443, 50000, 0x1c2)))))) },
  { protocol: 1, frame: bytes(ethernet('00:11:22:33:44:55', '66:77:88:99:aa:bb', 0x86dd, ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 0, flowLabel: 0x12345 }, ipv6Extension(60, 0, ipv6Fragment(17, 0, 77, true, udpHeader(53, 33000)))))) },
  { protocol: 1, frame: bytes(ethernet('00:11:22:33:44:55', '66:77:88:99:aa:bb', 0x8847, mplsStack([24001, 3], ipv6Header({ src: '2001:db8::1', dst: '2001:db8::2', next: 58 }, icmpHeader(129, 0))))) },
  { protocol: 11, frame: bytes(ipv4Header({ src: '198.51.100.1', dst: '198.51.100.2', proto: 1, ttl: 250 }, icmpHeader(11, 1))) },
  { protocol: 12, frame: bytes(ipv6Header({ src: 'fe80::1', dst: 'ff02::1', next: 58, hopLimit: 255, trafficClass: 0xe0 }, icmpHeader(134, 0))) },
]

function generatedDatagrams(count: number): Uint8Array[] {
  const next = seededRandom(42)
  const pick = <T>(xs: readonly T[]): T => xs[next(xs.length)]!
  const address = (): string => (next(2) === 0 ? `192.0.2.${next(256)}` : `2001:db8::${next(65536).toString(16)}`)
  const records = (): { format: number; body: Xdr }[] => {
    const out: { format: number; body: Xdr }[] = []
    const choice = next(4)
    if (choice <= 1) {
      const { protocol, frame } = choice === 0 ? { protocol: 1, frame: pick(realFrames) } : pick(builtFrames)
      out.push(sampledHeader(protocol, frame.length + 4 + next(1000), frame))
    } else if (choice === 2) {
      const v6 = next(2) === 1
      const body = xdr().u32(40 + next(1400)).u32(pick([6, 17, 1]))
      if (v6) body.opaque(ipv6Bytes('2001:db8::7')).opaque(ipv6Bytes('2001:db8:1::8'))
      else body.opaque([203, 0, 113, next(256)]).opaque([198, 51, 100, next(256)])
      body.u32(1 + next(65535)).u32(1 + next(65535)).u32(0).u32(0)
      out.push({ format: v6 ? 4 : 3, body })
    } else {
      out.push({ format: 2, body: xdr().u32(64 + next(1400)).opaque([0, 0x53, 0, 0, 0, next(256), 0, 0]).opaque([0, 0x53, 0, 0, 1, next(256), 0, 0]).u32(pick([0x0800, 0x86dd, 0x0806])) })
    }
    if (next(2) === 0) out.push({ format: 1001, body: xdr().u32(next(4095)).u32(0).u32(next(4095)).u32(0) })
    if (next(2) === 0) out.push({ format: 1002, body: xdr().address(address()).u32(next(33)).u32(next(33)) })
    if (next(2) === 0) {
      const body = xdr().address(address()).u32(64500 + next(10)).u32(next(70000)).u32(next(70000))
      const segments = next(3)
      body.u32(segments)
      for (let s = 0; s < segments; s++) {
        const n = 1 + next(4)
        body.u32(1 + next(2)).u32(n)
        for (let k = 0; k < n; k++) body.u32(1 + next(400000))
      }
      const communities = next(4)
      body.u32(communities)
      for (let k = 0; k < communities; k++) body.u32((next(65536) * 65536 + next(65536)) >>> 0)
      out.push({ format: 1003, body: body.u32(100) })
    }
    // Record order varies: precedence must not depend on it.
    return next(2) === 0 ? out : out.reverse()
  }
  const iface = (): number => pick([next(100000), LOCAL, (1 << 30) | pick([0, 1, 9, 256, 257, 258, 261, 262, 300]), (2 << 30) | next(8)])
  return Array.from({ length: count }, (_, i) => {
    const samples = Array.from({ length: 1 + next(6) }, () => {
      switch (next(4)) {
        case 0:
          return flowSample(records(), { samplingRate: 1 + next(10000), input: next(4) === 0 ? LOCAL : next(30000), output: iface() })
        case 1: {
          const out = iface()
          return expandedFlowSample(records(), { samplingRate: 1 + next(10000), inValue: next(2 ** 31), outFormat: out >>> 30, outValue: out & LOCAL })
        }
        default: {
          const c = () => next(2 ** 31)
          return counterSample(
            [genericInterface({ ifIndex: c(), ifType: 6, ifSpeed: next(2 ** 20) * 1e6, ifDirection: next(5), ifStatus: next(4), inOctets: c() * 1024, inUnicastPackets: c(), inMulticastPackets: c(), inBroadcastPackets: c(), inDiscards: c(), inErrors: c(), inUnknownProtocols: c(), outOctets: c() * 4096, outUnicastPackets: c(), outMulticastPackets: c(), outBroadcastPackets: c(), outDiscards: c(), outErrors: c(), promiscuousMode: next(2) })],
            next(2) === 1,
            c(),
          )
        }
      }
    })
    return datagram(samples, { agent: address(), subAgentId: next(10), sequenceNumber: i + 1, uptime: next(2 ** 31) })
  })
}

describe.skipIf(!tshark)('decodeSflow agrees with tshark', () => {
  it.each(captures)('%s', async (file) => {
    const { flows } = await compareWithTshark(join(SFLOW_DIR, file))
    expect(flows).toBeGreaterThan(0)
  })

  it('on generated datagrams with every sample and record type', async () => {
    const dir = await tempDir('sflow')
    try {
      const path = join(dir, 'generated.pcap')
      const records = generatedDatagrams(300).map((payload, i) => ({
        timestampNs: BigInt(1_700_000_000 + i) * 1_000_000_000n,
        srcAddress: ipv4ToMapped(0xc0000201),
        srcPort: 40000,
        dstAddress: ipv4ToMapped(0xc0000202),
        dstPort: 6343,
        payload,
      }))
      writeFileSync(path, writePcap(records))
      const { flows, counters } = await compareWithTshark(path)
      expect(flows).toBeGreaterThan(300)
      expect(counters).toBeGreaterThan(200)
    } finally {
      await removeDir(dir)
    }
  })
})
