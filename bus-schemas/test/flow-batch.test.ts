// The in-memory FlowBatch: growth, string interning, list ordering, reuse and row copies.

import { describe, expect, it } from 'vitest'
import { decodeFlowBatch, encodeFlowBatch } from '../src/flow-batch-codec.js'
import { FlowBatch, splitHalves } from '../src/flow-batch.js'
import { flowColumn, flowColumns } from '../src/flow-columns.js'
import { flowBatchToRows } from '../src/flow-rows.js'
import { formatIP, parseIP } from '../src/ip.js'
import { sampleFlowBatch } from './fixtures/sample-flows.js'

describe('column list', () => {
  it('has unique names and field numbers, in field order, counts only for lists, IPv4 bitmaps only for IPs', () => {
    const fields = flowColumns.flatMap((c) => (c.countsField === undefined ? [c.field] : [c.field, c.countsField]))
    const bitmaps = flowColumns.flatMap((c) => (c.ipv4FlowsField === undefined ? [] : [c.ipv4FlowsField]))
    const all = [...fields, ...bitmaps]
    expect(new Set(all).size).toBe(all.length)
    expect(new Set(flowColumns.map((c) => c.name)).size).toBe(flowColumns.length)
    // Columns (with their counts) in field order, and so are the bitmaps.
    expect([...fields].sort((a, b) => a - b)).toEqual(fields)
    expect([...bitmaps].sort((a, b) => a - b)).toEqual(bitmaps)
    expect(Math.min(...all)).toBeGreaterThanOrEqual(16)
    for (const c of flowColumns) {
      expect(c.countsField !== undefined, c.name).toBe(c.kind === 'u32list' || c.kind === 'u32x3list')
      expect(c.ipv4FlowsField !== undefined, c.name).toBe(c.kind === 'ip')
      expect(c.doc.length, c.name).toBeGreaterThan(5)
    }
    expect(flowColumn('SrcAS')?.kind).toBe('u32')
    expect(flowColumn('NoSuchColumn')).toBeUndefined()
  })

  it('covers the Akvorado columns the design names', () => {
    const required = `TimeReceived SamplingRate ExporterAddress ExporterName ExporterGroup ExporterRole ExporterSite
      ExporterRegion ExporterTenant SrcAddr DstAddr SrcNetMask DstNetMask NextHop SrcAS DstAS SrcNetName DstNetName
      SrcNetRole DstNetRole SrcNetSite DstNetSite SrcNetRegion DstNetRegion SrcNetTenant DstNetTenant SrcCountry
      DstCountry SrcGeoCity DstGeoCity SrcGeoState DstGeoState DstASPath DstCommunities DstLargeCommunities InIf OutIf
      InIfName OutIfName InIfDescription OutIfDescription InIfSpeed OutIfSpeed InIfConnectivity OutIfConnectivity
      InIfProvider OutIfProvider InIfBoundary OutIfBoundary EType Proto SrcPort DstPort Bytes Packets ForwardingStatus
      SrcVlan DstVlan SrcMAC DstMAC IPTTL IPTos IPFragmentID IPFragmentOffset IPv6FlowLabel TCPFlags ICMPv4Type
      ICMPv4Code ICMPv6Type ICMPv6Code MPLSLabels SrcAddrNAT DstAddrNAT SrcPortNAT DstPortNAT`.split(/\s+/)
    const names = new Set<string>(flowColumns.map((c) => c.name))
    expect(required.filter((n) => !names.has(n))).toEqual([])
  })
})

describe('FlowBatch builder', () => {
  it('grows past its capacity keeping every column', () => {
    const b = new FlowBatch(2)
    for (let i = 0; i < 1000; i++) {
      const r = b.appendRow()
      b.u32('SrcAS')[r] = i
      b.setIPv4('SrcAddr', r, 0x0a000000 + i)
      b.u64('Bytes')[r] = i * 1e6
      b.setString('InIfName', r, `if${i % 7}`)
      if (i % 3 === 0) b.pushList('DstASPath', r, i)
    }
    expect(b.count).toBe(1000)
    expect(b.capacity).toBeGreaterThanOrEqual(1000)
    expect(b.getNumber('SrcAS', 999)).toBe(999)
    expect(formatIP(b.getIP('SrcAddr', 256))).toBe('10.0.1.0')
    expect(b.getNumber('Bytes', 500)).toBe(5e8)
    expect(b.getString('InIfName', 13)).toBe('if6')
    expect(b.strings.length).toBe(8) // '' + 7 names: interned once each
    expect(Array.from(b.getList('DstASPath', 999))).toEqual([999])
    expect(Array.from(b.getList('DstASPath', 998))).toEqual([])
  })

  it('appendString adds a string without a lookup; intern finds it, before or after the intern map exists', () => {
    const b = new FlowBatch(1)
    expect(b.appendString('a')).toBe(1)
    expect(b.intern('a')).toBe(1)
    expect(b.appendString('b')).toBe(2)
    expect([b.intern('b'), b.intern('c')]).toEqual([2, 3])
    expect(b.strings).toEqual(['', 'a', 'b', 'c'])
  })

  it('reserve keeps array references valid for the reserved rows', () => {
    const b = new FlowBatch(4)
    b.reserve(100)
    const srcPort = b.u16('SrcPort')
    for (let i = 0; i < 100; i++) srcPort[b.appendRow()] = 1000 + i
    expect(b.u16('SrcPort')).toBe(srcPort)
    expect(b.getNumber('SrcPort', 99)).toBe(1099)
  })

  it('fills lists in row order, allowing the last row to be extended or replaced', () => {
    const b = new FlowBatch()
    b.appendRows(4)
    b.pushList('DstASPath', 1, 10)
    b.pushList('DstASPath', 1, 11)
    b.setList('DstASPath', 3, [30])
    b.setList('DstASPath', 3, [31, 32]) // replaces the last row's list
    expect(() => b.pushList('DstASPath', 1, 12)).toThrow(/filled in row order/)
    expect(() => b.setList('DstLargeCommunities', 0, [1, 2])).toThrow(/triples/)
    expect(() => b.setList('DstASPath', 4, [1])).toThrow(/row 4 is outside the batch of 4 rows/)
    expect([0, 1, 2, 3].map((r) => Array.from(b.getList('DstASPath', r)))).toEqual([[], [10, 11], [], [31, 32]])
  })

  it('rejects rows outside the batch and unknown columns, naming them', () => {
    const b = new FlowBatch()
    b.appendRow()
    expect(() => b.setString('InIfName', 1, 'x')).toThrow('column InIfName: row 1 is outside the batch of 1 rows')
    expect(() => b.setIP('SrcAddr', 0, new Uint8Array(4))).toThrow('column SrcAddr: an address needs 16 bytes, got 4')
    expect(() => b.has('Nope' as never)).toThrow('unknown flow column "Nope"')
  })

  it('clear empties the batch for reuse without leaking old values', () => {
    const b = sampleFlowBatch(100, 1)
    const before = b.capacity
    b.clear()
    expect(b.count).toBe(0)
    expect(b.strings).toEqual([''])
    const r = b.appendRow()
    expect(b.capacity).toBe(before)
    expect(b.getNumber('SrcAS', r)).toBe(0)
    expect(b.getString('InIfName', r)).toBe('')
    expect(b.getList('DstASPath', r).length).toBe(0)
    expect(formatIP(b.getIP('SrcAddr', r))).toBe('::')
    b.setString('InIfName', r, 'xe-0/0/0')
    expect(flowBatchToRows(decodeFlowBatch(encodeFlowBatch(b)))[0]).toMatchObject({ InIfName: 'xe-0/0/0', SrcAS: 0 })
  })

  it('appendRowFrom copies every present column, re-interning strings', () => {
    const source = sampleFlowBatch(50, 9)
    const target = new FlowBatch()
    target.setString('ExporterName', target.appendRow(), 'other') // the target has its own table
    for (const r of [7, 3, 42]) target.appendRowFrom(source, r)
    const rows = flowBatchToRows(target)
    const sourceRows = flowBatchToRows(source)
    expect(rows.slice(1).map((row) => ({ ...row }))).toEqual([7, 3, 42].map((r) => sourceRows[r]))
    expect(rows[0]).toMatchObject({ ExporterName: 'other', SrcAS: 0 })
    expect(() => target.appendRowFrom(source, 50)).toThrow(/outside the source batch/)
  })

  it('appendRowsFrom copies rows column by column, in the order given, repeats included', () => {
    const source = sampleFlowBatch(300, 11)
    const target = new FlowBatch(2)
    const r0 = target.appendRow()
    target.setString('ExporterName', r0, 'other')
    target.setList('DstASPath', r0, [65000, 65001])
    const picked = [299, 0, 17, 17, 150, 3]
    target.appendRowsFrom(source, picked)
    target.appendRowsFrom(source, [])
    const rows = flowBatchToRows(target)
    const sourceRows = flowBatchToRows(source)
    expect(rows).toHaveLength(1 + picked.length)
    expect(rows.slice(1).map((row) => ({ ...row }))).toEqual(picked.map((r) => sourceRows[r]))
    expect(rows[0]).toMatchObject({ ExporterName: 'other', DstASPath: [65000, 65001] })
    // A bad row anywhere appends nothing.
    expect(() => target.appendRowsFrom(source, [1, 300])).toThrow(/row 300 is outside the source batch/)
    expect(target.count).toBe(1 + picked.length)
  })

  it('a decoded empty batch with present columns grows on append', () => {
    // Our encoder never writes a column for 0 flows, but another writer may send an empty one.
    const d = decodeFlowBatch(Uint8Array.of(0xf2, 0x01, 0x00)) // SrcAS present, zero values, count 0
    expect(d.has('SrcAS')).toBe(true)
    const r = d.appendRow()
    d.u32('SrcAS')[r] = 5
    expect(d.getNumber('SrcAS', 0)).toBe(5)
  })

  it('view returns present columns limited to count, never allocating', () => {
    const b = new FlowBatch(64)
    b.appendRows(3)
    expect(b.view('SrcAS')).toBeUndefined()
    expect(b.has('SrcAS')).toBe(false)
    b.setIP('DstAddr', 2, parseIP('2001:db8::2'))
    expect(b.view('DstAddr')!.length).toBe(48)
    expect(b.presentColumns()).toEqual(['DstAddr'])
  })
})

describe('flowBatchToRows', () => {
  it('uses the Akvorado names and text forms', () => {
    const b = new FlowBatch()
    const r = b.appendRow()
    b.setIP('ExporterAddress', r, parseIP('2001:db8:0:0:1:0:0:1'))
    b.setIPv4('SrcAddr', r, 0xc6336401)
    b.mac('DstMAC')[r] = 0x0a0b0c0d0e0f
    b.u8('InIfBoundary')[r] = 1
    b.setList('DstCommunities', r, [(65000 << 16) | 100])
    expect(flowBatchToRows(b)).toEqual([
      {
        ExporterAddress: '2001:db8::1:0:0:1',
        SrcAddr: '198.51.100.1',
        DstCommunities: [65000 * 65536 + 100],
        InIfBoundary: 1,
        DstMAC: '0a:0b:0c:0d:0e:0f',
      },
    ])
    const all = flowBatchToRows(b, { allColumns: true })[0]!
    expect(Object.keys(all)).toEqual(flowColumns.map((c) => c.name))
    expect(all).toMatchObject({ DstAddr: '::', InIfName: '', DstASPath: [], DstLargeCommunities: [], Bytes: 0 })
  })
})

describe('splitHalves', () => {
  it('copies the first half and the second half (odd counts: the larger second), strings re-interned', () => {
    const b = new FlowBatch(5)
    for (let r = 0; r < 5; r++) {
      b.appendRow()
      b.u32('InIf')[r] = r + 1
      b.setString('ExporterName', r, `e${r}`)
    }
    const [first, second] = splitHalves(b)
    expect([first.count, second.count]).toEqual([2, 3])
    expect(Array.from(first.view('InIf')!)).toEqual([1, 2])
    expect(Array.from(second.view('InIf')!)).toEqual([3, 4, 5])
    expect(second.getString('ExporterName', 0)).toBe('e2')
  })
})
