// NetFlow v5 decoding on hand-built datagrams: every field, times from the header clock,
// sampling from the header, truncation reported with the complete records kept.
import { FlowProtocol } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { decodeNetflowV5 } from '../../src/netflow/index.js'
import { bytes, datagram, TestSink } from './packets.js'

function v5(records: Uint8Array[], count = records.length): Uint8Array {
  const b = bytes().u16(5).u16(count).u32(3_600_000).u32(1_700_000_000).u32(250_000_000).u32(4242).u8(1).u8(2).u16(0x4000 | 512)
  for (const r of records) b.raw(r)
  return b.build()
}

const record = (src: string, first: number, last: number): Uint8Array =>
  bytes()
    .ip(src).ip('192.0.2.9').ip('10.0.0.254').u16(3).u16(4).u32(12).u32(3400).u32(first).u32(last)
    .u16(53).u16(40000).u8(0).u8(0x1b).u8(17).u8(0xb8).u16(64500).u16(65001).u8(24).u8(32).u16(0)
    .build()

describe('NetFlow v5', () => {
  it('decodes every field, with times from sysUptime and unix secs/nsecs', () => {
    const sink = new TestSink()
    const header = decodeNetflowV5(datagram(v5([record('10.0.0.1', 3_590_000, 3_599_000), record('10.0.0.2', 3_600_500, 3_600_600)])), sink)
    expect(sink.errors).toEqual([])
    expect(header).toMatchObject({ protocol: FlowProtocol.NETFLOW_V5, sequenceNumber: 4242, observationDomainId: 0x0102, dataRecords: 2 })
    const base = 1_700_000_000_250
    expect(sink.rows()).toEqual([
      {
        TimeReceived: 1_700_000_100,
        SamplingRate: 512,
        ExporterAddress: '192.0.2.1',
        SrcAddr: '10.0.0.1',
        DstAddr: '192.0.2.9',
        NextHop: '10.0.0.254',
        InIf: 3,
        OutIf: 4,
        Packets: 12,
        Bytes: 3400,
        FlowStartTime: base - 10_000,
        FlowEndTime: base - 1_000,
        SrcPort: 53,
        DstPort: 40000,
        TCPFlags: 0x1b,
        Proto: 17,
        IPTos: 0xb8,
        SrcAS: 64500,
        DstAS: 65001,
        SrcNetMask: 24,
        DstNetMask: 32,
        EType: 0x0800,
      },
      // A first/last slightly ahead of the header's uptime (clock skew) stays after the base.
      expect.objectContaining({ SrcAddr: '10.0.0.2', FlowStartTime: base + 500, FlowEndTime: base + 600 }),
    ])
  })

  it('survives the 32-bit uptime wrap', () => {
    const sink = new TestSink()
    const packet = v5([record('10.0.0.1', 0xffff_f000, 0xffff_ffff)])
    new DataView(packet.buffer).setUint32(4, 1000)
    decodeNetflowV5(datagram(packet), sink)
    expect(sink.rows()[0]).toMatchObject({ FlowStartTime: 1_700_000_000_250 - 1000 - 4096, FlowEndTime: 1_700_000_000_250 - 1001 })
  })

  it('keeps complete records of a truncated datagram and reports it', () => {
    const sink = new TestSink()
    const packet = v5([record('10.0.0.1', 0, 0), record('10.0.0.2', 0, 0)], 3)
    decodeNetflowV5(datagram(packet.subarray(0, packet.length - 5)), sink)
    expect(sink.reasons()).toEqual(['truncated'])
    expect(sink.rows().map((r) => r.SrcAddr)).toEqual(['10.0.0.1'])
  })

  it('never throws on a cut at any byte, and refuses other versions', () => {
    const packet = v5([record('10.0.0.1', 0, 0)])
    for (let cut = 0; cut <= packet.length; cut++) {
      const sink = new TestSink()
      expect(() => decodeNetflowV5(datagram(packet.subarray(0, cut)), sink)).not.toThrow()
      expect(sink.errors.length).toBe(cut === packet.length ? 0 : 1)
    }
    const sink = new TestSink()
    expect(decodeNetflowV5(datagram(new Uint8Array(24).fill(9)), sink)).toBeUndefined()
    expect(sink.reasons()).toEqual(['bad-version'])
  })
})
