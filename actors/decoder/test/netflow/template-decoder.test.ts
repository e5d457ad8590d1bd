// NetFlow v9 / IPFIX template decoding on hand-built datagrams: every mapped element, variable
// length, enterprise fields, withdrawal, biflows, options joins, held data, limits, bad input.
import { FlowProtocol, type TemplateRecord } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { TemplateDecoder, type TemplateChange, type TemplateDecoderOptions } from '../../src/netflow/index.js'
import {
  bytes,
  concat,
  datagram,
  EXPORTER,
  type Field,
  ipfix,
  ipfixOptionsTemplate,
  set,
  template,
  TestSink,
  utf8,
  v9,
  v9OptionsTemplate,
  seededRandom,
} from './packets.js'

function decoderWith(options: Partial<TemplateDecoderOptions> = {}): { decoder: TemplateDecoder; late: TestSink; changes: TemplateChange[] } {
  const late = new TestSink()
  const changes: TemplateChange[] = []
  const decoder = new TemplateDecoder({ lateSink: () => late, onTemplate: (c) => changes.push(c), ...options })
  return { decoder, late, changes }
}

const V4_FIELDS: Field[] = [
  [8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [5, 1], [6, 1], [1, 4], [2, 4], [10, 4], [14, 4], [9, 1], [13, 1],
  [15, 4], [16, 4], [17, 4], [22, 4], [21, 4], [61, 1], [89, 1], [58, 2], [59, 2], [56, 6], [80, 6], [192, 1],
  [54, 4], [88, 2], [234, 4], [235, 4],
]

function v4Record(): Uint8Array {
  return bytes()
    .ip('10.0.0.1').ip('192.0.2.7').u16(443).u16(51000).u8(6).u8(0x28).u8(0x1b).u32(150000).u32(120).u32(3).u32(4)
    .u8(24).u8(16).ip('10.0.0.254').u32(64500).u32(4200000000).u32(3_590_000).u32(3_599_000).u8(1).u8(0x42)
    .u16(0x1064).u16(200).mac('00:11:22:33:44:55').mac('66:77:88:99:aa:bb').u8(63).u32(777).u16(185).u32(5).u32(6)
    .build()
}

describe('NetFlow v9', () => {
  it('decodes every mapped element of a template', () => {
    const { decoder, changes } = decoderWith()
    const sink = new TestSink()
    const header = decoder.decode(datagram(v9([set(0, template(256, V4_FIELDS)), set(256, v4Record())], { sourceId: 7, sequence: 41 })), sink)
    expect(sink.errors).toEqual([])
    expect(header).toMatchObject({ protocol: FlowProtocol.NETFLOW_V9, sequenceNumber: 41, observationDomainId: 7, dataRecords: 1, headerCount: 2 })
    expect(changes.map((c) => [c.kind, c.record.templateId, c.record.fields.length])).toEqual([['learnt', 256, V4_FIELDS.length]])
    expect(sink.rows()).toEqual([
      expect.objectContaining({
        TimeReceived: 1_700_000_100,
        ExporterAddress: '192.0.2.1',
        SrcAddr: '10.0.0.1',
        DstAddr: '192.0.2.7',
        SrcPort: 443,
        DstPort: 51000,
        Proto: 6,
        IPTos: 0x28,
        TCPFlags: 0x1b,
        Bytes: 150000,
        Packets: 120,
        InIf: 3,
        OutIf: 4,
        SrcNetMask: 24,
        DstNetMask: 16,
        NextHop: '10.0.0.254',
        SrcAS: 64500,
        DstAS: 4200000000,
        // unix secs 1.7e9, uptime 3 600 000 ms: first 10 s and last 1 s before export.
        FlowStartTime: 1_700_000_000_000 - 10_000,
        FlowEndTime: 1_700_000_000_000 - 1_000,
        FlowDirection: 2,
        ForwardingStatus: 0x42,
        SrcVlan: 0x064,
        DstVlan: 200,
        SrcMAC: '00:11:22:33:44:55',
        DstMAC: '66:77:88:99:aa:bb',
        IPTTL: 63,
        IPFragmentID: 777,
        IPFragmentOffset: 185,
        InVrf: 5,
        OutVrf: 6,
        EType: 0x0800,
        SamplingRate: 0,
      }),
    ])
  })

  it('takes sampling rates from sampler options and joins them on the flow sampler id', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const options = set(1, v9OptionsTemplate(300, [[1, 4]], [[48, 1], [34, 4]]), true)
    const optionsData = set(300, concat(bytes().u32(0).u8(1).u32(100).build(), bytes().u32(0).u8(2).u32(1000).build()), true)
    const tmpl = set(0, template(256, [[8, 4], [12, 4], [1, 4], [48, 1]]))
    const data = set(256, concat(bytes().ip('10.0.0.1').ip('10.0.0.2').u32(10).u8(2).build(), bytes().ip('10.0.0.3').ip('10.0.0.4').u32(20).u8(1).build()))
    decoder.decode(datagram(v9([options, optionsData, tmpl, data])), sink)
    expect(sink.errors).toEqual([])
    expect(sink.rows().map((r) => [r.SrcAddr, r.SamplingRate])).toEqual([
      ['10.0.0.1', 1000],
      ['10.0.0.3', 100],
    ])
  })

  it('accepts the zero-length System scope Cisco sends and applies its rate to the domain', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const options = set(1, v9OptionsTemplate(257, [[1, 0]], [[35, 1], [34, 4]]), true)
    const optionsData = set(257, bytes().u8(2).u32(512).build(), true)
    const data = set(256, bytes().ip('10.0.0.1').u32(1).build())
    decoder.decode(datagram(v9([options, optionsData, set(0, template(256, [[8, 4], [1, 4]])), data])), sink)
    expect(sink.errors).toEqual([])
    expect(sink.rows().map((r) => r.SamplingRate)).toEqual([512])
  })

  it('joins interface names (v9 Interface scope) onto the flows', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const options = set(1, v9OptionsTemplate(300, [[2, 4]], [[82, 16], [83, 32]]))
    const name = (s: string, n: number): number[] => [...utf8(s), ...new Array<number>(n - s.length).fill(0)]
    const optionsData = set(300, concat(bytes().u32(3).raw(name('xe-0/0/1', 16)).raw(name('transit A', 32)).build()))
    const data = set(256, bytes().u32(3).u32(9).u32(1).build())
    decoder.decode(datagram(v9([options, optionsData, set(0, template(256, [[10, 4], [14, 4], [1, 4]])), data])), sink)
    expect(sink.errors).toEqual([])
    expect(sink.rows()).toEqual([expect.objectContaining({ InIf: 3, InIfName: 'xe-0/0/1', InIfDescription: 'transit A', OutIf: 9, OutIfName: '' })])
  })

  it('keeps templates per source id and per exporter port', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    decoder.decode(datagram(v9([set(0, template(256, [[8, 4]]))], { sourceId: 1 })), sink)
    decoder.decode(datagram(v9([set(256, bytes().ip('10.0.0.1').build())], { sourceId: 2 })), sink)
    decoder.decode(datagram(v9([set(256, bytes().ip('10.0.0.2').build())], { sourceId: 1 }), { port: 9999 }), sink)
    expect(sink.flows.count).toBe(0)
    decoder.decode(datagram(v9([set(256, bytes().ip('10.0.0.3').build())], { sourceId: 1 })), sink)
    expect(sink.rows().map((r) => r.SrcAddr)).toEqual(['10.0.0.3'])
    expect(decoder.heldCount).toBe(2)
  })

  it('counts firewall initiator octets and packets when there are no delta counters', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    decoder.decode(datagram(v9([set(0, template(256, [[8, 4], [231, 4], [232, 4], [298, 4], [299, 4]])), set(256, bytes().ip('10.0.0.1').u32(1000).u32(5000).u32(10).u32(20).build())])), sink)
    expect(sink.rows().map((r) => [r.Bytes, r.Packets])).toEqual([[1000, 10]])
  })

  it('reads ICMP type and code from the destination port when no ICMP element is sent', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const data = set(256, concat(bytes().u8(1).u16(0x0303).build(), bytes().u8(58).u16(0x8000).build(), bytes().u8(6).u16(443).build()))
    decoder.decode(datagram(v9([set(0, template(256, [[4, 1], [11, 2]])), data])), sink)
    expect(sink.rows().map((r) => [r.ICMPv4Type, r.ICMPv4Code, r.ICMPv6Type, r.ICMPv6Code])).toEqual([
      [3, 3, 0, 0],
      [0, 0, 128, 0],
      [0, 0, 0, 0],
    ])
  })
})

describe('IPFIX', () => {
  const V6_FIELDS: Field[] = [
    [27, 16], [28, 16], [62, 16], [29, 1], [30, 1], [31, 4], [60, 1], [152, 8], [153, 8], [139, 2], [70, 3], [71, 3],
    [72, 3], [281, 16], [282, 16], [227, 2], [228, 2], [243, 2], [254, 2], [2, 8], [1, 8],
  ]
  it('decodes IPv6 flows with absolute times, ICMPv6, MPLS and NAT elements', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const record = bytes()
      .ip('2001:db8::1').ip('2001:db8::2').ip('fe80::1').u8(48).u8(64).u32(0xfff12345).u8(6)
      .u64(1_700_000_000_123).u64(1_700_000_001_456).u16(0x8100)
      .u24((16 << 4) | 0).u24((17 << 4) | 1).u24(18 << 4)
      .ip('2001:db8:1::1').ip('2001:db8:1::2').u16(1024).u16(2048).u16(0x0abc).u16(12).u64(3).u64(2 ** 40)
      .build()
    const header = decoder.decode(datagram(ipfix([set(2, template(400, V6_FIELDS)), set(400, record)], { domain: 9, sequence: 1000 })), sink)
    expect(sink.errors).toEqual([])
    expect(header).toMatchObject({ protocol: FlowProtocol.IPFIX, sequenceNumber: 1000, observationDomainId: 9, dataRecords: 1 })
    expect(sink.rows()).toEqual([
      expect.objectContaining({
        SrcAddr: '2001:db8::1',
        DstAddr: '2001:db8::2',
        NextHop: 'fe80::1',
        SrcNetMask: 48,
        DstNetMask: 64,
        IPv6FlowLabel: 0x12345,
        EType: 0x86dd,
        FlowStartTime: 1_700_000_000_123,
        FlowEndTime: 1_700_000_001_456,
        ICMPv6Type: 0x81,
        ICMPv6Code: 0,
        // The bottom-of-stack bit of the second entry ends the stack.
        MPLSLabels: [16, 17],
        SrcAddrNAT: '2001:db8:1::1',
        DstAddrNAT: '2001:db8:1::2',
        SrcPortNAT: 1024,
        DstPortNAT: 2048,
        SrcVlan: 0xabc,
        DstVlan: 12,
        Packets: 3,
        Bytes: 2 ** 40,
      }),
    ])
  })

  it('reads variable-length fields in both length forms and skips enterprise fields', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const fields: Field[] = [[8, 4], [96, 65535], [1000, 4, 9], [12, 4], [1001, 65535, 2636], [7, 2], [82, 65535], [1, 4]]
    const long = new Array<number>(300).fill(0x41)
    const records = concat(
      bytes().ip('10.1.0.1').varlen(utf8('http')).u32(0xdeadbeef).ip('10.1.0.2').varlen([1, 2, 3]).u16(80).varlen([]).u32(10).build(),
      bytes().ip('10.1.0.3').varlen(long).u32(0).ip('10.1.0.4').varlen([9], true).u16(81).varlen(utf8('x')).u32(20).build(),
    )
    decoder.decode(datagram(ipfix([set(2, template(300, fields)), set(300, records)])), sink)
    expect(sink.errors).toEqual([])
    expect(sink.rows().map((r) => [r.SrcAddr, r.DstAddr, r.SrcPort, r.Bytes])).toEqual([
      ['10.1.0.1', '10.1.0.2', 80, 10],
      ['10.1.0.3', '10.1.0.4', 81, 20],
    ])
  })

  it('reports a variable-length field running past its set and keeps the records before it', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const records = concat(bytes().ip('10.1.0.1').varlen([1, 2]).build(), bytes().ip('10.1.0.3').u8(200).u8(1).build())
    decoder.decode(datagram(ipfix([set(2, template(300, [[8, 4], [96, 65535]])), set(300, records)])), sink)
    expect(sink.reasons()).toEqual(['bad-length'])
    expect(sink.rows().map((r) => r.SrcAddr)).toEqual(['10.1.0.1'])
  })

  it('produces a second, swapped flow for RFC 5103 reverse elements', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const fields: Field[] = [[8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [10, 4], [14, 4], [1, 8], [2, 8], [6, 1], [1, 8, 29305], [2, 8, 29305], [6, 1, 29305], [152, 8]]
    const rec = (rb: number, rp: number): Uint8Array =>
      bytes().ip('10.0.0.1').ip('10.0.0.2').u16(1234).u16(80).u8(6).u32(1).u32(2).u64(500).u64(5).u8(0x02).u64(rb).u64(rp).u8(0x12).u64(1_700_000_000_000).build()
    decoder.decode(datagram(ipfix([set(2, template(500, fields)), set(500, concat(rec(9000, 7), rec(0, 0)))])), sink)
    expect(sink.errors).toEqual([])
    const rows = sink.rows().map((r) => [r.SrcAddr, r.DstAddr, r.SrcPort, r.DstPort, r.InIf, r.OutIf, r.Bytes, r.Packets, r.TCPFlags, r.Proto, r.FlowStartTime])
    expect(rows).toEqual([
      ['10.0.0.1', '10.0.0.2', 1234, 80, 1, 2, 500, 5, 0x02, 6, 1_700_000_000_000],
      ['10.0.0.2', '10.0.0.1', 80, 1234, 2, 1, 9000, 7, 0x12, 6, 1_700_000_000_000],
      ['10.0.0.1', '10.0.0.2', 1234, 80, 1, 2, 500, 5, 0x02, 6, 1_700_000_000_000],
    ])
  })

  it('withdraws one template, then all templates, and reports each', () => {
    const { decoder, changes, late } = decoderWith({ holdMs: 1000 })
    const sink = new TestSink()
    decoder.decode(datagram(ipfix([set(2, concat(template(256, [[8, 4]]), template(257, [[12, 4]]))), set(3, ipfixOptionsTemplate(258, 1, [[302, 4], [305, 4]]))])), sink)
    expect(decoder.templateCount).toBe(3)
    decoder.decode(datagram(ipfix([set(2, bytes().u16(256).u16(0).build())])), sink)
    expect(decoder.templateCount).toBe(2)
    decoder.decode(datagram(ipfix([set(256, bytes().ip('10.0.0.1').build()), set(257, bytes().ip('10.0.0.2').build())])), sink)
    expect(sink.rows().map((r) => r.DstAddr)).toEqual(['10.0.0.2'])
    // All data templates at once (id 2); the options template stays.
    decoder.decode(datagram(ipfix([set(2, bytes().u16(2).u16(0).build())])), sink)
    expect(decoder.templateCount).toBe(1)
    expect(changes.map((c) => `${c.kind} ${c.record.templateId}`)).toEqual(['learnt 256', 'learnt 257', 'learnt 258', 'withdrawn 256', 'withdrawn 257'])
    decoder.decode(datagram(ipfix([set(3, bytes().u16(3).u16(0).build())])), sink)
    expect(decoder.templateCount).toBe(0)
    // Data for the withdrawn template is held, then expires as missing-template.
    expect(decoder.heldCount).toBe(1)
    decoder.expireHeld(1_700_000_100_000 + 5000)
    expect(late.reasons()).toEqual(['missing-template'])
    expect(sink.errors).toEqual([])
  })

  it('takes sampling from selector options (packet interval and space) joined on selectorId', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const options = set(3, ipfixOptionsTemplate(600, 1, [[302, 4], [305, 4], [306, 4]]), true)
    const optionsData = set(600, concat(bytes().u32(7).u32(1).u32(999).build(), bytes().u32(8).u32(1).u32(9).build()))
    const data = set(601, concat(bytes().ip('10.0.0.1').u32(8).build(), bytes().ip('10.0.0.2').u32(7).build(), bytes().ip('10.0.0.3').u32(5).build()))
    decoder.decode(datagram(ipfix([options, optionsData, set(2, template(601, [[8, 4], [302, 4]])), data])), sink)
    expect(sink.errors).toEqual([])
    // Unknown selector 5: the last rate the domain announced.
    expect(sink.rows().map((r) => r.SamplingRate)).toEqual([10, 1000, 10])
  })

  it('turns a sampling probability or a size out of a population into a rate', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const options = set(3, ipfixOptionsTemplate(600, 1, [[302, 4], [311, 8], [309, 4], [310, 4]]))
    const f64 = (v: number): number[] => {
      const b = new Uint8Array(8)
      new DataView(b.buffer).setFloat64(0, v)
      return [...b]
    }
    const optionsData = set(600, bytes().u32(1).raw(f64(0.001)).u32(0).u32(0).u32(2).raw(f64(0)).u32(2).u32(200).build())
    const data = set(601, bytes().ip('10.0.0.1').u32(1).ip('10.0.0.2').u32(2).build())
    decoder.decode(datagram(ipfix([options, optionsData, set(2, template(601, [[8, 4], [302, 4]])), data])), sink)
    expect(sink.errors).toEqual([])
    expect(sink.rows().map((r) => r.SamplingRate)).toEqual([1000, 100])
  })

  it('uses the sampling interval carried in the data record itself', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4], [34, 4]])), set(256, bytes().ip('10.0.0.1').u32(4096).build())])), sink)
    expect(sink.rows().map((r) => r.SamplingRate)).toEqual([4096])
  })

  it('joins interface and VRF names (variable-length strings) from options data', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const ifOptions = set(3, concat(ipfixOptionsTemplate(700, 1, [[10, 4], [82, 65535], [83, 65535]]), ipfixOptionsTemplate(701, 1, [[234, 4], [236, 65535]])), true)
    const ifData = set(700, concat(bytes().u32(11).varlen(utf8('et-0/0/0')).varlen(utf8('to core')).build(), bytes().u32(12).varlen(utf8('et-0/0/1')).varlen([]).build()), true)
    const vrfData = set(701, bytes().u32(3).varlen(utf8('customer-a')).build(), true)
    const fields: Field[] = [[8, 4], [12, 4], [10, 4], [14, 4], [234, 4], [235, 4], [1, 8, 29305], [1, 8]]
    const data = set(702, bytes().ip('10.0.0.1').ip('10.0.0.2').u32(11).u32(12).u32(3).u32(0).u64(50).u64(100).build())
    decoder.decode(datagram(ipfix([ifOptions, ifData, vrfData, set(2, template(702, fields)), data])), sink)
    expect(sink.errors).toEqual([])
    const rows = sink.rows().map((r) => [r.InIfName, r.InIfDescription, r.OutIfName, r.InVrfName, r.OutVrfName, r.Bytes])
    expect(rows).toEqual([
      ['et-0/0/0', 'to core', 'et-0/0/1', 'customer-a', '', 100],
      // The reverse flow of the biflow swaps the names with the interfaces.
      ['et-0/0/1', '', 'et-0/0/0', '', 'customer-a', 50],
    ])
  })

  it('resolves flowStartSysUpTime with the systemInitTimeMilliseconds of options data', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const options = set(3, ipfixOptionsTemplate(800, 1, [[149, 4], [160, 8]]))
    const optionsData = set(800, bytes().u32(0).u64(1_600_000_000_000).build())
    const data = set(801, bytes().ip('10.0.0.1').u32(5000).u32(9000).build())
    decoder.decode(datagram(ipfix([options, optionsData, set(2, template(801, [[8, 4], [22, 4], [21, 4]])), data])), sink)
    expect(sink.rows().map((r) => [r.FlowStartTime, r.FlowEndTime])).toEqual([[1_600_000_005_000, 1_600_000_009_000]])
  })

  it('reads seconds, NTP microsecond and delta times', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const ntp = (ms: number): Bytes => bytes().u32(Math.floor(ms / 1000) + 2208988800).u32(Math.round(((ms % 1000) / 1000) * 4294967296))
    const data = concat(
      bytes().u32(1_650_000_000).u32(1_650_000_010).build(),
      ntp(1_650_000_000_250).build(),
    )
    decoder.decode(datagram(ipfix([set(2, concat(template(900, [[150, 4], [151, 4]]), template(901, [[154, 8], [159, 4]]))), set(900, data.subarray(0, 8)), set(901, concat(data.subarray(8), bytes().u32(2_000_000).build()))], { exportTime: 1_650_000_100 })), sink)
    expect(sink.rows().map((r) => [r.FlowStartTime, r.FlowEndTime])).toEqual([
      [1_650_000_000_000, 1_650_000_010_000],
      [1_650_000_000_250, 1_650_000_100_000 - 2000],
    ])
  })
})

type Bytes = ReturnType<typeof bytes>

describe('template state', () => {
  it('holds data until its template comes, then decodes it into the same sink', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    const data = set(256, bytes().ip('10.0.0.1').u32(10).build())
    decoder.decode(datagram(v9([data], { sequence: 1 })), sink)
    decoder.decode(datagram(v9([data], { sequence: 2 })), sink)
    expect(sink.flows.count).toBe(0)
    expect(decoder.heldCount).toBe(2)
    const header = decoder.decode(datagram(v9([set(0, template(256, [[8, 4], [1, 4]]))])), sink)
    // The released records belong to the earlier datagrams' sequence accounting, not this one's.
    expect(header?.dataRecords).toBe(0)
    expect(decoder.heldCount).toBe(0)
    expect(sink.rows().map((r) => [r.SrcAddr, r.Bytes])).toEqual([
      ['10.0.0.1', 10],
      ['10.0.0.1', 10],
    ])
    expect(sink.errors).toEqual([])
  })

  it('reports held data pushed out by the per-exporter bound as missing-template', () => {
    const { decoder, late } = decoderWith({ maxHeldPerExporter: 2 })
    const sink = new TestSink()
    for (let i = 0; i < 5; i++) decoder.decode(datagram(ipfix([set(300 + i, bytes().u32(i).build())])), sink)
    expect(decoder.heldCount).toBe(2)
    expect(sink.reasons()).toEqual(['missing-template', 'missing-template', 'missing-template'])
    // Another exporter has its own bound.
    decoder.decode(datagram(ipfix([set(300, bytes().u32(1).build())]), { exporter: new Uint8Array(16).fill(1) }), sink)
    expect(decoder.heldCount).toBe(3)
    expect(late.errors).toEqual([])
  })

  it('refuses to hold beyond the total bytes bound', () => {
    const { decoder } = decoderWith({ maxHeldBytes: 10 })
    const sink = new TestSink()
    decoder.decode(datagram(ipfix([set(300, bytes().u32(1).u32(2).build()), set(301, bytes().u32(1).u32(2).build())])), sink)
    expect(decoder.heldCount).toBe(1)
    expect(sink.reasons()).toEqual(['missing-template'])
  })

  it('expires held data with the receive time of later datagrams', () => {
    const { decoder, late } = decoderWith({ holdMs: 10_000 })
    const sink = new TestSink()
    decoder.decode(datagram(ipfix([set(300, bytes().u32(1).build())]), { timeReceived: 1000 }), sink)
    decoder.decode(datagram(ipfix([]), { timeReceived: 1005 }), sink)
    expect(decoder.heldCount).toBe(1)
    decoder.decode(datagram(ipfix([]), { timeReceived: 1011 }), sink)
    expect(decoder.heldCount).toBe(0)
    expect(late.reasons()).toEqual(['missing-template'])
  })

  it('loads templates another decoder learnt, decoding held data into the late sink', () => {
    const first = decoderWith()
    const sink = new TestSink()
    const fields: Field[] = [[8, 4], [96, 65535], [1, 8], [1, 8, 29305]]
    first.decoder.decode(datagram(ipfix([set(2, template(256, fields)), set(3, ipfixOptionsTemplate(257, 1, [[302, 4], [34, 4]]))], { domain: 5 })), sink)
    const records: TemplateRecord[] = first.changes.map((c) => c.record)
    expect(records.map((r) => [r.templateId, r.options, r.scopeFieldCount, r.protocol, r.observationDomainId, r.exporterPort])).toEqual([
      [256, false, 0, FlowProtocol.IPFIX, 5, 2055],
      [257, true, 1, FlowProtocol.IPFIX, 5, 2055],
    ])
    expect(records[0]!.fields[3]).toEqual({ enterpriseNumber: 29305, type: 1, length: 8 })

    const second = decoderWith()
    const data = ipfix([set(256, bytes().ip('10.0.0.9').varlen([1]).u64(5).u64(0).build())], { domain: 5 })
    second.decoder.decode(datagram(data), sink)
    expect(second.decoder.heldCount).toBe(1)
    for (const r of records) expect(second.decoder.loadTemplate(r)).toBe(true)
    expect(second.changes).toEqual([])
    expect(second.late.rows().map((r) => [r.SrcAddr, r.Bytes])).toEqual([['10.0.0.9', 5]])
    const direct = new TestSink()
    second.decoder.decode(datagram(data), direct)
    expect(direct.rows().map((r) => r.SrcAddr)).toEqual(['10.0.0.9'])
    second.decoder.removeTemplate(records[0]!)
    second.decoder.decode(datagram(data), direct)
    expect(direct.flows.count).toBe(1)
    expect(second.decoder.heldCount).toBe(1)
  })

  it('forgets a session silent longer than the idle time, reporting its templates withdrawn', () => {
    const { decoder, changes, late } = decoderWith({ sessionIdleMs: 3600_000 })
    const sink = new TestSink()
    decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4]])), set(300, bytes().u32(1).build())]), { port: 1000, timeReceived: 10_000 }), sink)
    decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4]]))]), { port: 2000, timeReceived: 12_000 }), sink)
    decoder.decode(datagram(ipfix([]), { port: 2000, timeReceived: 13_000 }), sink)
    expect(decoder.templateCount).toBe(2)
    decoder.decode(datagram(ipfix([]), { port: 2000, timeReceived: 10_000 + 3601 }), sink)
    expect(decoder.templateCount).toBe(1)
    expect(decoder.heldCount).toBe(0)
    expect(changes.map((c) => `${c.kind} ${c.record.exporterPort}`)).toEqual(['learnt 1000', 'learnt 2000', 'withdrawn 1000'])
    expect(late.reasons()).toEqual(['missing-template'])
  })

  it('forgets a session it only knows from the bus quietly, and keeps it while the bus announces it', () => {
    const exporter = decoderWith({ sessionIdleMs: 3600_000 })
    const sink = new TestSink()
    exporter.decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4]]))]), { port: 1000, timeReceived: 10_000 }), sink)
    const announced = exporter.changes[0]!.record
    const replica = decoderWith({ sessionIdleMs: 3600_000 })
    expect(replica.decoder.loadTemplate(announced)).toBe(true)
    // Another exporter's datagrams move the replica's clock: 3000 s later, then 5000 s later.
    replica.decoder.decode(datagram(ipfix([]), { port: 2000, timeReceived: 13_000 }), sink)
    // The exporter's decoder announces the template again (its refresh): the session stays.
    expect(replica.decoder.loadTemplate({ ...announced, lastSeenUnixMs: 14_000_000 })).toBe(true)
    replica.decoder.decode(datagram(ipfix([]), { port: 2000, timeReceived: 15_000 }), sink)
    expect(replica.decoder.templateCount).toBe(1)
    // No announcement for an hour: forgotten, without reporting a withdrawal it is not the judge of.
    replica.decoder.decode(datagram(ipfix([]), { port: 2000, timeReceived: 17_700 }), sink)
    expect(replica.decoder.templateCount).toBe(0)
    expect(replica.changes).toEqual([])
  })

  it('ignores a bus record older than the template it has since learnt', () => {
    const first = decoderWith()
    const sink = new TestSink()
    first.decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4]]))]), { timeReceived: 1000 }), sink)
    const old = first.changes[0]!.record
    const { decoder } = decoderWith()
    decoder.decode(datagram(ipfix([set(2, template(256, [[12, 4]]))]), { timeReceived: 2000 }), sink)
    expect(decoder.loadTemplate(old)).toBe(true)
    decoder.decode(datagram(ipfix([set(256, bytes().ip('10.0.0.1').build())]), { timeReceived: 2001 }), sink)
    expect(sink.rows()).toEqual([expect.objectContaining({ DstAddr: '10.0.0.1' })])
    expect(sink.rows()[0]).not.toHaveProperty('SrcAddr')
  })

  it('carries options data across a restart through a snapshot', () => {
    const first = decoderWith()
    const sink = new TestSink()
    const options = set(3, concat(ipfixOptionsTemplate(700, 1, [[10, 4], [82, 65535]]), ipfixOptionsTemplate(701, 1, [[302, 4], [34, 4]])))
    const data = set(702, bytes().ip('10.0.0.1').u32(4).u32(2).build())
    const tmpl = set(2, template(702, [[8, 4], [10, 4], [302, 4]]))
    first.decoder.decode(datagram(ipfix([options, set(700, bytes().u32(4).varlen(utf8('ge-0/0/4')).build()), set(701, bytes().u32(2).u32(64).build()), tmpl], { domain: 3 })), sink)
    const snapshot = structuredClone(first.decoder.optionsSnapshot())
    expect(snapshot).toEqual([
      expect.objectContaining({ exporterPort: 2055, protocol: FlowProtocol.IPFIX, observationDomainId: 3, samplingRate: 64, samplers: [[2, 64]], interfaces: [[4, 'ge-0/0/4', '']] }),
    ])
    const second = decoderWith()
    for (const r of first.changes) second.decoder.loadTemplate(r.record)
    for (const o of snapshot) expect(second.decoder.loadOptions(o)).toBe(true)
    const out = new TestSink()
    second.decoder.decode(datagram(ipfix([data], { domain: 3 })), out)
    expect(out.rows().map((r) => [r.SamplingRate, r.InIfName])).toEqual([[64, 'ge-0/0/4']])
    expect(second.decoder.loadOptions({ ...snapshot[0]!, protocol: FlowProtocol.SFLOW_V5 })).toBe(false)
    // What changed since the last call, once: the domain that got options data.
    expect(first.decoder.changedOptions()).toEqual(snapshot)
    expect(first.decoder.changedOptions()).toEqual([])
    first.decoder.decode(datagram(ipfix([data], { domain: 3 })), sink)
    expect(first.decoder.changedOptions()).toEqual([])
    // A replica's newer copy replaces what is known only when asked to.
    const newer = { ...snapshot[0]!, samplingRate: 128, samplers: [[2, 128]] as [number, number][] }
    second.decoder.loadOptions(newer)
    second.decoder.decode(datagram(ipfix([data], { domain: 3 })), out)
    second.decoder.loadOptions(newer, true)
    second.decoder.decode(datagram(ipfix([data], { domain: 3 })), out)
    expect(out.rows().map((r) => r.SamplingRate)).toEqual([64, 64, 128])
  })

  it('refuses invalid template records from the bus', () => {
    const { decoder } = decoderWith()
    const base: TemplateRecord = {
      exporterAddress: EXPORTER,
      exporterPort: 2055,
      protocol: FlowProtocol.NETFLOW_V9,
      observationDomainId: 0,
      templateId: 256,
      options: false,
      scopeFieldCount: 0,
      fields: [{ enterpriseNumber: 0, type: 8, length: 4 }],
      lastSeenUnixMs: 0,
    }
    expect(decoder.loadTemplate(base)).toBe(true)
    expect(decoder.loadTemplate({ ...base, templateId: 10 })).toBe(false)
    expect(decoder.loadTemplate({ ...base, protocol: FlowProtocol.SFLOW_V5 })).toBe(false)
    expect(decoder.loadTemplate({ ...base, fields: [] })).toBe(false)
    expect(decoder.loadTemplate({ ...base, fields: [{ enterpriseNumber: 0, type: 8, length: 65535 }] })).toBe(false)
    expect(decoder.loadTemplate({ ...base, options: true, scopeFieldCount: 2 })).toBe(false)
    expect(decoder.loadTemplate({ ...base, exporterAddress: new Uint8Array(4) })).toBe(false)
  })

  it('reports an unchanged template again only after the refresh interval', () => {
    const { decoder, changes } = decoderWith({ templateRefreshMs: 60_000 })
    const sink = new TestSink()
    const packet = ipfix([set(2, template(256, [[8, 4]]))])
    decoder.decode(datagram(packet, { timeReceived: 1000 }), sink)
    decoder.decode(datagram(packet, { timeReceived: 1030 }), sink)
    decoder.decode(datagram(packet, { timeReceived: 1061 }), sink)
    decoder.decode(datagram(ipfix([set(2, template(256, [[12, 4]]))]), { timeReceived: 1062 }), sink)
    expect(changes.map((c) => [c.record.lastSeenUnixMs, c.record.fields[0]!.type])).toEqual([
      [1_061_000, 8], // the same record object, updated in place
      [1_061_000, 8],
      [1_062_000, 12],
    ])
  })
})

describe('limits and bad input', () => {
  it('counts templates beyond the per-domain and total limits as template-limit', () => {
    const { decoder } = decoderWith({ maxTemplatesPerDomain: 3, maxTemplates: 5 })
    const sink = new TestSink()
    const templates = concat(...[256, 257, 258, 259].map((id) => template(id, [[8, 4]])))
    decoder.decode(datagram(ipfix([set(2, templates)], { domain: 1 })), sink)
    expect(sink.reasons()).toEqual(['template-limit'])
    decoder.decode(datagram(ipfix([set(2, templates)], { domain: 2 })), sink)
    expect(decoder.templateCount).toBe(5)
    expect(sink.reasons().filter((r) => r === 'template-limit')).toHaveLength(3)
    // Redefining a known template is not a new one.
    decoder.decode(datagram(ipfix([set(2, template(256, [[12, 4]]))], { domain: 1 })), sink)
    expect(sink.reasons()).toHaveLength(3)
  })

  it('bounds observation domains per exporter and exporter sessions, dropping idle ones first', () => {
    const { decoder } = decoderWith({ maxDomainsPerExporter: 2, maxExporters: 2 })
    const sink = new TestSink()
    decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4]]))], { domain: 1 })), sink)
    decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4]]))], { domain: 2 })), sink)
    decoder.decode(datagram(ipfix([], { domain: 3 })), sink)
    expect(sink.reasons()).toEqual(['template-limit'])
    decoder.decode(datagram(ipfix([set(2, bytes().u16(256).u16(0).build())], { domain: 2 })), sink)
    // Domain 2 has nothing left: it makes room for domain 3.
    decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4]])), set(256, bytes().ip('10.0.0.3').build())], { domain: 3 })), sink)
    expect(sink.rows().map((r) => r.SrcAddr)).toEqual(['10.0.0.3'])
    decoder.decode(datagram(ipfix([]), { port: 1 }), sink)
    decoder.decode(datagram(ipfix([set(2, template(256, [[8, 4]]))]), { port: 2 }), sink)
    expect(sink.reasons()).toEqual(['template-limit'])
    decoder.decode(datagram(ipfix([]), { port: 3 }), sink)
    expect(sink.reasons()).toEqual(['template-limit', 'template-limit'])
  })

  it('refuses templates with too many fields, a bad id or scope count, or empty records', () => {
    const { decoder } = decoderWith({ maxFieldsPerTemplate: 4 })
    const sink = new TestSink()
    decoder.decode(datagram(ipfix([set(2, template(256, new Array<Field>(5).fill([8, 4])))])), sink)
    decoder.decode(datagram(ipfix([set(2, template(100, [[8, 4]]))])), sink)
    decoder.decode(datagram(ipfix([set(3, ipfixOptionsTemplate(300, 0, [[8, 4]]))])), sink)
    decoder.decode(datagram(ipfix([set(2, template(301, [[8, 0], [12, 0]]))])), sink)
    expect(sink.reasons()).toEqual(['bad-template', 'bad-template', 'bad-template', 'bad-template'])
    expect(decoder.templateCount).toBe(0)
    // The set after a refused template still decodes.
    decoder.decode(datagram(ipfix([set(2, concat(template(302, new Array<Field>(5).fill([8, 4])), template(303, [[8, 4]]))), set(303, bytes().ip('1.2.3.4').build())])), sink)
    expect(sink.rows().map((r) => r.SrcAddr)).toEqual(['1.2.3.4'])
  })

  it('reports bad versions, lengths and set ids and keeps the other sets', () => {
    const { decoder } = decoderWith()
    const sink = new TestSink()
    expect(decoder.decode(datagram(new Uint8Array([0, 7, 0, 0])), sink)).toBeUndefined()
    expect(decoder.decode(datagram(new Uint8Array([0, 10, 0])), sink)).toBeUndefined()
    const good = concat(set(2, template(256, [[8, 4]])), set(256, bytes().ip('10.0.0.1').build()))
    decoder.decode(datagram(ipfix([set(17, new Uint8Array(4)), good])), sink)
    const badLength = ipfix([good, bytes().u16(256).u16(2).build()])
    decoder.decode(datagram(badLength), sink)
    const truncated = ipfix([good, set(256, bytes().ip('10.0.0.3').build())])
    decoder.decode(datagram(truncated.subarray(0, truncated.length - 2)), sink)
    const lying = ipfix([good])
    new DataView(lying.buffer).setUint16(2, 8)
    decoder.decode(datagram(lying), sink)
    expect(sink.reasons()).toEqual(['bad-version', 'truncated', 'bad-record', 'bad-length', 'truncated', 'truncated', 'bad-length'])
    expect(sink.rows().map((r) => r.SrcAddr)).toEqual(['10.0.0.1', '10.0.0.1', '10.0.0.1'])
  })

  it('compiles and runs random templates of any element, length and enterprise number', () => {
    const random = seededRandom(99)
    const lengths = [0, 1, 2, 3, 4, 5, 6, 8, 12, 16, 20, 65535]
    const pens = [0, 0, 0, 0, 29305, 29305, 9, 2636]
    for (let t = 0; t < 400; t++) {
      const { decoder, late } = decoderWith()
      const fields: Field[] = Array.from({ length: 1 + random(40) }, () => {
        const pen = pens[random(pens.length)]!
        const type = random(4) === 0 ? random(32768) : random(330)
        const length = lengths[random(lengths.length)]!
        return pen === 0 ? [type, length] : [type, length, pen]
      })
      const data = bytes()
      for (let r = 0; r < 1 + random(5); r++) {
        for (const [, length] of fields) {
          if (length === 65535) data.varlen(Array.from({ length: random(3) === 0 ? 300 : random(20) }, () => random(256)))
          else for (let k = 0; k < length; k++) data.u8(random(256))
        }
      }
      const sink = new TestSink()
      decoder.decode(datagram(ipfix([set(2, template(256, fields)), set(3, ipfixOptionsTemplate(257, 1, fields)), set(256, data.build()), set(257, data.build())])), sink)
      decoder.decode(datagram(v9([set(0, template(256, fields.map(([type, length]) => [type, length === 65535 ? 4 : length] as const)))])), sink)
      const failures = [...sink.errors, ...late.errors].filter((e) => e.detail?.startsWith('decoder failure'))
      expect(failures, JSON.stringify(fields)).toEqual([])
    }
  })

  it('never throws on any truncation or random corruption of a datagram', () => {
    const { decoder } = decoderWith({ maxHeld: 16 })
    const fields: Field[] = [[8, 4], [96, 65535], [1000, 65535, 9], [12, 4], [1, 8, 29305], [1, 8], [70, 3], [315, 65535]]
    const packet = ipfix([
      set(2, template(256, fields)),
      set(3, ipfixOptionsTemplate(257, 1, [[10, 4], [82, 65535]])),
      set(257, bytes().u32(1).varlen(utf8('ge-0')).build()),
      set(256, bytes().ip('10.0.0.1').varlen([1]).varlen([2, 3]).ip('10.0.0.2').u64(1).u64(2).u24(0x101).varlen([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]).build()),
    ])
    const random = seededRandom(7)
    for (let cut = 0; cut <= packet.length; cut++) {
      const sink = new TestSink()
      expect(() => decoder.decode(datagram(packet.slice(0, cut)), sink)).not.toThrow()
      expect(sink.errors.filter((e) => e.detail?.startsWith('decoder failure'))).toEqual([])
    }
    for (let i = 0; i < 5000; i++) {
      const mutated = packet.slice()
      for (let k = random(4); k >= 0; k--) mutated[random(mutated.length)] = random(256)
      const sink = new TestSink()
      expect(() => decoder.decode(datagram(mutated.subarray(0, random(mutated.length + 1))), sink)).not.toThrow()
      // The decoder's last-resort catch would hide a bug as 'bad-record': it must never fire.
      expect(sink.errors.filter((e) => e.detail?.startsWith('decoder failure'))).toEqual([])
    }
  })
})
