// Conformance of the hand-written FlowBatch codec with protobufjs reading the .proto and the layout
// rules written out plainly (fixtures/reference.ts), both ways, for every column form (single value,
// narrow widths, IPv4 and mixed addresses, wide string indexes); plus malformed input and fuzzing.

import { describe, expect, it } from 'vitest'
import { decodeFlowBatch, encodeFlowBatch, MAX_FLOWS_PER_BATCH } from '../src/flow-batch-codec.js'
import { FlowBatch } from '../src/flow-batch.js'
import { flowColumns } from '../src/flow-columns.js'
import { flowBatchToRows } from '../src/flow-rows.js'
import { parseIP } from '../src/ip.js'
import { WireFormatError } from '../src/wire.js'
import { loadReferenceRoot, referenceDecode, referenceEncode, referenceRows, wireObject } from './fixtures/reference.js'
import { batchFromRows, prng, randomBytes, sampleFlowBatch, sampleFlowRows } from './fixtures/sample-flows.js'

const root = loadReferenceRoot()

/** A small batch touching every kind, with edge values: max integers, IPv6, unicode, lists. */
function edgeBatch(): FlowBatch {
  const b = new FlowBatch(2)
  for (let i = 0; i < 3; i++) b.appendRow()
  b.setIP('SrcAddr', 0, parseIP('192.0.2.1'))
  b.setIP('SrcAddr', 1, parseIP('2001:db8::1'))
  b.setIP('SrcAddr', 2, parseIP('::'))
  b.setIP('DstAddr', 2, parseIP('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))
  b.u32('SrcAS').set([0, 4294967295, 65000])
  b.u16('DstPort').set([0, 65535, 443])
  b.u8('Proto').set([6, 255, 0])
  b.u64('Bytes').set([0, 2 ** 53 - 1, 4294967296 + 5])
  b.u64('Packets').set([1, 4294967295, 4294967296])
  b.mac('SrcMAC').set([0, 0xffffffffffff, 0x0200_5e00_0001])
  b.setString('InIfName', 0, 'et-0/0/0')
  b.setString('InIfName', 2, 'Gi0/0/0/1 — liaison « Paris » 🚀')
  b.setString('ExporterName', 1, 'et-0/0/0') // reuses the interned entry
  b.setList('DstASPath', 0, [64500, 4294967295, 1])
  b.setList('DstASPath', 2, [3356])
  b.pushTriple('DstLargeCommunities', 1, 4200000000, 1, 2)
  b.pushTriple('DstLargeCommunities', 1, 65000, 0, 4294967295)
  b.pushList('MPLSLabels', 2, 0xfffff)
  return b
}

/** n flows whose every column holds the same value: each travels as one value (n >= 9). */
function constantBatch(n: number): FlowBatch {
  const b = new FlowBatch(4)
  for (let i = 0; i < n; i++) {
    const r = b.appendRow()
    b.u32('SamplingRate')[r] = 1024
    b.u32('InIfSpeed')[r] = 100_000
    b.u8('ForwardingStatus')[r] = 64
    b.u16('EType')[r] = 0x86dd
    b.u64('Bytes')[r] = 2 ** 40 + 3
    b.mac('DstMAC')[r] = 0x0a0b0c0d0e0f
    b.setIP('ExporterAddress', r, parseIP('192.0.2.10'))
    b.setIP('NextHop', r, parseIP('2001:db8::1'))
    b.setString('ExporterName', r, 'edge1.par')
    b.setString('ExporterTenant', r, '')
    b.setList('DstCommunities', r, [65000 * 65536 + 100, 65000 * 65536 + 200])
  }
  return b
}

/** Addresses in the three shapes: all IPv4, mixed, all IPv6 (including ones that only look mapped). */
function addressBatch(n: number): FlowBatch {
  const b = new FlowBatch()
  for (let i = 0; i < n; i++) {
    const r = b.appendRow()
    b.setIPv4('SrcAddr', r, 0x0a000000 + i)
    b.setIP('DstAddr', r, parseIP(i % 3 === 0 ? `2001:db8::${i.toString(16)}` : `198.51.100.${i & 0xff}`))
    // Not IPv4-mapped: ::fffe:…, ::1:ffff:…, and the IPv4-compatible ::a.b.c.d.
    b.setIP('NextHop', r, parseIP([`::fffe:c000:${i.toString(16)}`, `::1:ffff:c000:201`, `::c000:201`][i % 3]!))
  }
  return b
}

/** n flows with n distinct InIfNames (a table of n + 1 strings) and the same OutIfName. */
function manyStringsBatch(n: number): FlowBatch {
  const b = new FlowBatch()
  b.appendRows(n)
  for (let r = 0; r < n; r++) b.setString('InIfName', r, `if${r}`)
  for (let r = 0; r < n; r++) b.setString('OutIfName', r, 'if0')
  return b
}

describe('FlowBatch codec conformance with protobufjs and the layout rules', () => {
  const cases: [string, () => FlowBatch][] = [
    ['edge values', edgeBatch],
    ['realistic 500-flow batch (IPv4 and IPv6)', () => sampleFlowBatch(500, 3)],
    ['realistic batch from another seed (IPv6 exporter)', () => sampleFlowBatch(257, 8)],
    ['empty batch', () => new FlowBatch()],
    ['one flow', () => sampleFlowBatch(1, 5)],
    ['rows with no column', () => {
      const b = new FlowBatch()
      b.appendRows(5)
      return b
    }],
    ['constant columns (single values)', () => constantBatch(40)],
    ['constant columns in 8 flows (too few for a single value)', () => constantBatch(8)],
    ['constant columns in 9 flows', () => constantBatch(9)],
    ['IPv4, mixed and IPv6 address columns', () => addressBatch(100)],
    ['300 strings: 2-byte indexes', () => manyStringsBatch(300)],
  ]

  for (const [name, make] of cases) {
    it(`fast encode → protobufjs decode gives the canonical layout: ${name}`, () => {
      const batch = make()
      expect(referenceDecode(root, encodeFlowBatch(batch))).toEqual(wireObject(batch))
    })

    it(`fast encode → another reader (protobufjs + the documented rules): ${name}`, () => {
      const batch = make()
      expect(referenceRows(root, encodeFlowBatch(batch))).toEqual(flowBatchToRows(batch, { allColumns: true }))
    })

    for (const style of ['canonical', 'widest'] as const) {
      it(`protobufjs encode (${style} layout) → fast decode: ${name}`, () => {
        const batch = make()
        const decoded = decodeFlowBatch(referenceEncode(root, wireObject(batch, style)))
        expect(decoded.count).toBe(batch.count)
        expect(flowBatchToRows(decoded, { allColumns: true })).toEqual(flowBatchToRows(batch, { allColumns: true }))
      })
    }

    it(`fast roundtrip keeps every value and column: ${name}`, () => {
      const batch = make()
      const decoded = decodeFlowBatch(encodeFlowBatch(batch))
      expect(decoded.presentColumns()).toEqual(batch.presentColumns().filter((c) => wireObject(batch)[c] !== undefined))
      expect(flowBatchToRows(decoded, { allColumns: true })).toEqual(flowBatchToRows(batch, { allColumns: true }))
    })
  }

  it('decodes to the rows the flows were generated from (no codec involved in the expectation)', () => {
    for (const [flows, seed] of [[2000, 1], [2000, 2], [300, 7], [9, 3], [1, 4]] as const) {
      const rows = sampleFlowRows(flows, seed)
      expect(flowBatchToRows(decodeFlowBatch(encodeFlowBatch(batchFromRows(rows)))), `${flows} flows, seed ${seed}`).toEqual(rows)
    }
  })

  it('writes a constant column as one value, broadcast to every flow on decode', () => {
    const bytes = encodeFlowBatch(constantBatch(40))
    const wire = referenceDecode(root, bytes)
    expect(wire['SamplingRate']).toEqual([0x00, 0x04]) // 1024: one 2-byte value
    expect(wire['InIfSpeed']).toEqual([0xa0, 0x86, 0x01, 0x00]) // 100000 needs 4 bytes
    expect(wire['ForwardingStatus']).toEqual([64])
    expect(wire['Bytes']).toEqual([3, 0, 0, 0, 0, 1, 0, 0]) // 2^40 + 3: 8 bytes
    expect(wire['DstMAC']).toEqual([0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]) // network order
    expect(wire['ExporterAddress']).toEqual([192, 0, 2, 10]) // one IPv4 address
    expect(wire['NextHop']).toHaveLength(16) // one IPv6 address
    expect(wire['ExporterName']).toEqual([1])
    expect(wire['ExporterTenant']).toEqual([0])
    expect(wire['DstCommunitiesCounts']).toEqual([2])
    expect(wire['DstCommunities']).toHaveLength(40 * 2 * 4)
    const d = decodeFlowBatch(bytes)
    expect(Array.from(d.view('SamplingRate')!)).toEqual(new Array(40).fill(1024))
    expect(d.getString('ExporterName', 39)).toBe('edge1.par')
    expect(flowBatchToRows(d)[39]).toMatchObject({ ExporterAddress: '192.0.2.10', NextHop: '2001:db8::1', DstMAC: '0a:0b:0c:0d:0e:0f', Bytes: 2 ** 40 + 3 })
    // A single value in a one-flow batch is just that value.
    expect(referenceDecode(root, encodeFlowBatch(constantBatch(1)))['InIfSpeed']).toEqual([0xa0, 0x86, 0x01, 0x00])
  })

  it('compacts an all-IPv4 column to 4 bytes per flow, mixes IPv4 and IPv6 with a bitmap, keeps IPv6 at 16', () => {
    const wire = referenceDecode(root, encodeFlowBatch(addressBatch(100)))
    expect(wire['SrcAddr']).toHaveLength(400)
    expect((wire['SrcAddr'] as number[]).slice(0, 8)).toEqual([10, 0, 0, 0, 10, 0, 0, 1])
    expect(wire['SrcAddrIPv4Flows']).toBeUndefined()
    // Flows 0, 3, 6… are IPv6: 34 × 16 + 66 × 4 bytes; bit r of the bitmap marks IPv4 flow r.
    expect(wire['DstAddr']).toHaveLength(34 * 16 + 66 * 4)
    expect((wire['DstAddrIPv4Flows'] as number[]).slice(0, 2)).toEqual([0b10110110, 0b01101101])
    expect(wire['DstAddrIPv4Flows']).toHaveLength(13)
    expect(wire['NextHop']).toHaveLength(1600)
    expect(wire['NextHopIPv4Flows']).toBeUndefined()
    const rows = flowBatchToRows(decodeFlowBatch(encodeFlowBatch(addressBatch(100))))
    expect(rows.slice(0, 3).map((r) => [r.SrcAddr, r.DstAddr, r.NextHop])).toEqual([
      ['10.0.0.0', '2001:db8::', '::fffe:c000:0'],
      ['10.0.0.1', '198.51.100.1', '::1:ffff:c000:201'],
      ['10.0.0.2', '198.51.100.2', '::c000:201'],
    ])
  })

  it('a mixed column with one IPv4 flow in many stays at 16 bytes (the bitmap would cost more)', () => {
    const b = new FlowBatch()
    b.appendRows(200)
    for (let r = 0; r < 200; r++) b.setIP('SrcAddr', r, parseIP(`2001:db8::${r.toString(16)}`))
    b.setIPv4('SrcAddr', 7, 0xc0000201)
    const wire = referenceDecode(root, encodeFlowBatch(b))
    expect(wire['SrcAddr']).toHaveLength(3200)
    expect(wire['SrcAddrIPv4Flows']).toBeUndefined()
  })

  it('narrows string indexes to the table: 1 byte up to 256 strings, 2 up to 65536, 4 beyond', () => {
    for (const [strings, width] of [[256, 1], [257, 2], [300, 2], [65536, 2], [65537, 4]] as const) {
      const batch = manyStringsBatch(strings - 1) // plus ''
      const bytes = encodeFlowBatch(batch)
      const wire = referenceDecode(root, bytes)
      expect(batch.strings.length, `${strings} strings`).toBe(strings)
      expect(wire['InIfName'], `${strings} strings`).toHaveLength((strings - 1) * width)
      expect(wire['OutIfName'], `${strings} strings: a single index`).toEqual([1, 0, 0, 0].slice(0, width))
      const d = decodeFlowBatch(bytes)
      expect(d.getString('InIfName', strings - 2)).toBe(`if${strings - 2}`)
      expect(d.getString('OutIfName', strings - 2)).toBe('if0')
    }
  })

  it('narrows integers and list values to the widest value in the batch', () => {
    const b = new FlowBatch()
    b.appendRows(3)
    b.u32('SrcAS').set([1, 2, 255])
    b.u32('DstAS').set([1, 2, 256])
    b.u32('InIf').set([1, 2, 65536])
    b.u64('Packets').set([1, 2, 2 ** 32 - 1])
    b.u16('SrcPort').set([1, 2, 3])
    b.setList('DstASPath', 1, [1, 65535])
    b.setList('MPLSLabels', 2, Array.from({ length: 300 }, (_, i) => i))
    const wire = referenceDecode(root, encodeFlowBatch(b))
    expect([wire['SrcAS'], wire['DstAS'], wire['InIf'], wire['Packets'], wire['SrcPort']].map((v) => (v as number[]).length)).toEqual([3, 6, 12, 12, 3])
    expect(wire['DstASPath']).toHaveLength(4)
    expect(wire['DstASPathCounts']).toEqual([0, 2, 0])
    expect(wire['MPLSLabelsCounts']).toEqual([0, 0, 0, 0, 44, 1]) // 300 needs 2 bytes per count
    expect(wire['MPLSLabels']).toHaveLength(600)
  })

  it('keeps the realistic sample under 100 bytes per flow', () => {
    const bytes = [1, 2, 3, 4].reduce((sum, seed) => sum + encodeFlowBatch(sampleFlowBatch(2000, seed)).length, 0)
    expect(bytes / 8000).toBeLessThan(100)
  })

  it('decodes the edge batch to the exact values, field by field', () => {
    const d = decodeFlowBatch(encodeFlowBatch(edgeBatch()))
    const rows = flowBatchToRows(d)
    expect(rows[0]).toEqual({
      SrcAddr: '192.0.2.1',
      SrcAS: 0,
      DstASPath: [64500, 4294967295, 1],
      DstLargeCommunities: [],
      InIfName: 'et-0/0/0',
      ExporterName: '',
      DstAddr: '::',
      DstPort: 0,
      Proto: 6,
      Bytes: 0,
      Packets: 1,
      SrcMAC: '00:00:00:00:00:00',
      MPLSLabels: [],
    })
    expect(rows[1]).toMatchObject({
      SrcAddr: '2001:db8::1',
      SrcAS: 4294967295,
      Bytes: 2 ** 53 - 1,
      Packets: 4294967295,
      SrcMAC: 'ff:ff:ff:ff:ff:ff',
      ExporterName: 'et-0/0/0',
      DstLargeCommunities: [
        [4200000000, 1, 2],
        [65000, 0, 4294967295],
      ],
    })
    expect(rows[2]).toMatchObject({
      SrcAddr: '::',
      DstAddr: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      InIfName: 'Gi0/0/0/1 — liaison « Paris » 🚀',
      Bytes: 4294967301,
      Packets: 4294967296,
      MPLSLabels: [0xfffff],
      DstASPath: [3356],
    })
  })

  it('does not encode absent columns, and an absent column decodes as zero/empty', () => {
    const b = new FlowBatch()
    b.appendRows(2)
    b.u32('SrcAS')[1] = 7
    const bytes = encodeFlowBatch(b)
    const ref = referenceDecode(root, bytes)
    expect(Object.keys(ref).sort()).toEqual(['SrcAS', 'count'])
    const d = decodeFlowBatch(bytes)
    expect(d.has('DstAS')).toBe(false)
    expect(d.getNumber('DstAS', 1)).toBe(0)
    expect(d.getString('InIfName', 1)).toBe('')
    expect(d.getIP('SrcAddr', 0)).toEqual(new Uint8Array(16))
    expect(d.getList('DstASPath', 1).length).toBe(0)
    expect(d.view('SrcAS')).toEqual(new Uint32Array([0, 7]))
  })

  it('an empty batch encodes to zero bytes and decodes back empty', () => {
    const bytes = encodeFlowBatch(new FlowBatch())
    expect(bytes.length).toBe(0)
    const d = decodeFlowBatch(bytes)
    expect(d.count).toBe(0)
    expect(d.strings).toEqual([''])
  })

  it('decoded columns are aligned copies, independent of the input buffer', () => {
    for (const batch of [sampleFlowBatch(100, 5), addressBatch(50), manyStringsBatch(300)]) {
      const bytes = encodeFlowBatch(batch)
      // Shift by one byte so every payload starts unaligned.
      const shifted = new Uint8Array(bytes.length + 1)
      shifted.set(bytes, 1)
      const d = decodeFlowBatch(shifted.subarray(1))
      shifted.fill(0)
      expect(flowBatchToRows(d)).toEqual(flowBatchToRows(batch))
    }
  })

  it('encodes decoded (arena-backed) batches and sub-batches the same way', () => {
    const batch = sampleFlowBatch(300, 6)
    const bytes = encodeFlowBatch(batch)
    expect(encodeFlowBatch(decodeFlowBatch(bytes))).toEqual(bytes)
    // Capacity past count must not leak into the encoding.
    const big = new FlowBatch(4096)
    for (let r = 0; r < 300; r++) big.appendRowFrom(batch, r)
    expect(flowBatchToRows(decodeFlowBatch(encodeFlowBatch(big)))).toEqual(flowBatchToRows(batch))
  })

  it('a decoded batch can be extended and re-encoded (the enricher adds columns)', () => {
    const d = decodeFlowBatch(encodeFlowBatch(sampleFlowBatch(10, 2)))
    d.setString('SrcGeoCity', 3, 'Lyon')
    const r = d.appendRow()
    d.u32('SrcAS')[r] = 12322
    d.setString('InIfName', r, 'new-if')
    d.pushList('DstASPath', r, 3215)
    const again = decodeFlowBatch(encodeFlowBatch(d))
    expect(again.count).toBe(11)
    expect(again.getString('SrcGeoCity', 3)).toBe('Lyon')
    expect(again.getNumber('SrcAS', 10)).toBe(12322)
    expect(again.getString('InIfName', 10)).toBe('new-if')
    expect(Array.from(again.getList('DstASPath', 10))).toEqual([3215])
    expect(flowBatchToRows(again).slice(0, 10).map((row) => ({ ...row, SrcGeoCity: undefined }))).toEqual(
      flowBatchToRows(d).slice(0, 10).map((row) => ({ ...row, SrcGeoCity: undefined })),
    )
  })
})

/** Appends raw protobuf bytes (tag + payload) to a message. */
const concat = (...parts: (Uint8Array | number[])[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0))
  let pos = 0
  for (const p of parts) {
    out.set(p, pos)
    pos += p.length
  }
  return out
}

/** Two-byte tag of a field numbered 16..2047. */
const tag2 = (field: number, wire: number): number[] => [(((field << 3) | wire) & 0x7f) | 0x80, (field << 3) >> 7]
/** A `bytes` field numbered 16..2047 with a short payload. */
const bytesField = (field: number, payload: number[]): number[] => [...tag2(field, 2), payload.length, ...payload]

describe('FlowBatch decoding of other valid encodings', () => {
  it('skips unknown fields of every wire type (forward compatibility)', () => {
    const batch = sampleFlowBatch(20, 4)
    const unknown = [
      [0xf8, 0x3e, 0x96, 0x01], // field 999 varint 150
      [0x81, 0x3f, 1, 2, 3, 4, 5, 6, 7, 8], // field 1008 fixed64
      [0x8a, 0x3f, 3, 0x61, 0x62, 0x63], // field 1009 bytes "abc"
      [0x95, 0x3f, 1, 2, 3, 4], // field 1010 fixed32
      [0x9b, 0x3f, 0x08, 0x01, 0x9c, 0x3f], // field 1011 group containing field 1 varint 1
    ]
    const bytes = concat(unknown[0]!, encodeFlowBatch(batch), ...unknown.slice(1))
    expect(flowBatchToRows(decodeFlowBatch(bytes))).toEqual(flowBatchToRows(batch))
  })

  it('accepts fields in any order and every allowed width, wider than needed included', () => {
    const bytes = concat(
      bytesField(30, [1, 0, 0, 0, 2, 0, 0, 0]), // SrcAS: 2 flows × 4 bytes
      bytesField(31, [10, 0, 20, 0]), // DstAS: 2 × 2 bytes
      bytesField(72, [5, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]), // Bytes: 2 × 8 bytes
      bytesField(73, [7, 0, 0, 0]), // Packets: 2 × 2 bytes (not one 4-byte value)
      bytesField(48, [100, 0, 0, 0, 200, 0, 0, 0]), // DstASPath values: 4 bytes each
      bytesField(49, [2, 0, 0, 0]), // DstASPathCounts: 2 × 2 bytes
      bytesField(26, [198, 51, 100, 1, 198, 51, 100, 2]), // DstAddr: 2 IPv4 addresses
      [0x08, 2], // count = 2, last
    )
    const d = decodeFlowBatch(bytes)
    expect(d.count).toBe(2)
    expect(Array.from(d.view('SrcAS')!)).toEqual([1, 2])
    expect(Array.from(d.view('DstAS')!)).toEqual([10, 20])
    expect(Array.from(d.view('Bytes')!)).toEqual([4294967301, 6])
    expect(Array.from(d.view('Packets')!)).toEqual([7, 0])
    expect(Array.from(d.getList('DstASPath', 0))).toEqual([100, 200])
    expect(Array.from(d.getList('DstASPath', 1))).toEqual([])
    expect(flowBatchToRows(d).map((r) => r.DstAddr)).toEqual(['198.51.100.1', '198.51.100.2'])
    expect(referenceRows(root, bytes).map((r) => [r.SrcAS, r.DstAS, r.Bytes, r.Packets])).toEqual([
      [1, 10, 4294967301, 7],
      [2, 20, 6, 0],
    ])
  })

  it('reads a single value in a small batch when no per-flow reading fits the length', () => {
    // 3 flows: 4 bytes cannot be 3 values, so it is one u32 for all; 16 bytes one address.
    const bytes = concat([0x08, 3], bytesField(17, [0, 4, 0, 0]), bytesField(25, Array.from(parseIP('2001:db8::7'))))
    const rows = flowBatchToRows(decodeFlowBatch(bytes))
    expect(rows.map((r) => [r.SamplingRate, r.SrcAddr])).toEqual(new Array(3).fill([1024, '2001:db8::7']))
  })

  it('keeps the last value of a column sent twice, as protobuf does for bytes', () => {
    const bytes = concat([0x08, 1], [...tag2(69, 2), 1, 6], [...tag2(69, 2), 1, 17]) // Proto twice
    expect(decodeFlowBatch(bytes).getNumber('Proto', 0)).toBe(17)
    expect(referenceDecode(root, bytes)['Proto']).toEqual([17])
  })
})

describe('FlowBatch malformed input', () => {
  const good = encodeFlowBatch(sampleFlowBatch(50, 6))

  const expectWireError = (bytes: Uint8Array, field: string | RegExp, reason: RegExp): WireFormatError => {
    let caught: unknown
    try {
      decodeFlowBatch(bytes)
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(WireFormatError)
    const e = caught as WireFormatError
    expect(e.field).toMatch(field)
    expect(e.message).toMatch(reason)
    expect(e.message).toContain('flowbus.v1.FlowBatch')
    expect(e.message).toContain(`offset ${e.offset}`)
    return e
  }

  it('names the column whose length fits no form for count', () => {
    const b = new FlowBatch()
    b.appendRows(3)
    b.u32('SrcAS').set([1, 2, 300])
    const bytes = encodeFlowBatch(b)
    bytes[1] = 4 // count 3 → 4: 6 bytes are neither 4 values nor one
    expectWireError(bytes, 'SrcAS', /6 bytes for 4 flows: expected 4 × one of \{1, 2, 4\} bytes, or one value/)
    expectWireError(concat([0x08, 2], bytesField(78, [1, 2, 3, 4, 5, 6, 7])), 'SrcMAC', /7 bytes for 2 flows/)
  })

  it('rejects a string index outside the table, at every index width', () => {
    const b = new FlowBatch()
    b.appendRows(2)
    b.setString('InIfName', 1, 'x')
    const bytes = encodeFlowBatch(b)
    bytes[bytes.length - 1] = 9 // index of flow 1 (1-byte indexes)
    expectWireError(bytes, 'InIfName', /flow 1 refers to string 9, the table has 2/)
    expectWireError(concat([0x08, 2], bytesField(56, [0, 0, 2, 1])), 'InIfName', /flow 1 refers to string 258, the table has 1/)
    expectWireError(concat([0x08, 20], bytesField(56, [5])), 'InIfName', /flow 0 refers to string 5/) // single value
  })

  it('rejects list counts that do not match the values', () => {
    const b = new FlowBatch()
    b.appendRows(2)
    b.setList('DstASPath', 0, [1, 2])
    const bytes = encodeFlowBatch(b)
    bytes[bytes.length - 2] = 3 // counts [2, 0] → [3, 0]
    expectWireError(bytes, 'DstASPathCounts', /counts add up to 3 values, the values field has 2 bytes/)
    expectWireError(concat([0x08, 1], bytesField(48, [1])), 'DstASPath', /1 bytes of values but no DstASPathCounts/)
    expectWireError(concat([0x08, 1], bytesField(48, [1]), bytesField(49, [0])), 'DstASPath', /Counts are all zero/)
  })

  it('rejects a bitmap or a mixed column of the wrong size', () => {
    expectWireError(concat([0x08, 9], bytesField(97, [0xff])), 'SrcAddrIPv4Flows', /1 bytes, expected one bit per flow: 2 bytes for 9 flows/)
    // Two flows, flow 0 IPv4: 4 + 16 bytes expected, 8 sent.
    expectWireError(concat([0x08, 2], bytesField(25, [1, 2, 3, 4, 5, 6, 7, 8]), bytesField(97, [1])), 'SrcAddr', /expected 1 IPv4 flows × 4 \+ 1 others × 16 = 20/)
  })

  it('rejects a huge count', () => {
    expectWireError(concat([0x08, 0xff, 0xff, 0xff, 0xff, 0x0f]), 'count', /exceeds the limit/)
    expect(MAX_FLOWS_PER_BATCH).toBeGreaterThanOrEqual(100_000)
  })

  it('rejects a wrong wire type for a known field, and a bad string table', () => {
    expectWireError(concat([0x0d, 1, 0, 0, 0]), 'count', /wire type 5, expected varint/)
    expectWireError(concat([0x12, 1, 0x61]), 'strings', /strings\[0\] must be the empty string/)
    expectWireError(concat([...tag2(30, 5), 1, 0, 0, 0]), 'SrcAS', /wire type 5, expected length-delimited/)
  })

  it('every truncation throws a WireFormatError or, cut between fields, decodes the leading fields', () => {
    for (const message of [good, encodeFlowBatch(constantBatch(30)), encodeFlowBatch(addressBatch(40))]) {
      let thrown = 0
      for (let cut = 1; cut < message.length; cut++) {
        try {
          decodeFlowBatch(message.subarray(0, cut))
        } catch (e) {
          expect(e, `cut at ${cut}`).toBeInstanceOf(WireFormatError)
          thrown++
        }
      }
      expect(thrown).toBeGreaterThan(message.length * 0.9)
    }
  })

  it('fuzz: random mutations either decode or throw an Error, never hang or crash otherwise', () => {
    const rand = prng(42)
    let decoded = 0
    let rejected = 0
    const messages = [good, encodeFlowBatch(constantBatch(30)), encodeFlowBatch(addressBatch(40)), encodeFlowBatch(manyStringsBatch(300))]
    for (let i = 0; i < 4000; i++) {
      const bytes = messages[i % messages.length]!.slice()
      const mutations = 1 + Math.floor(rand() * 4)
      for (let m = 0; m < mutations; m++) {
        const kind = rand()
        const at = Math.floor(rand() * bytes.length)
        if (kind < 0.6) bytes[at] = Math.floor(rand() * 256)
        else if (kind < 0.8) bytes[at] = bytes[at]! ^ (1 << Math.floor(rand() * 8))
        else bytes[at] = 0xff
      }
      const input = rand() < 0.2 ? bytes.subarray(0, Math.floor(rand() * bytes.length)) : bytes
      try {
        const batch = decodeFlowBatch(input)
        // Whatever decoded must be readable, and re-encode to something that decodes the same.
        const rows = flowBatchToRows(batch)
        expect(flowBatchToRows(decodeFlowBatch(encodeFlowBatch(batch)))).toEqual(rows)
        decoded++
      } catch (e) {
        expect(e).toBeInstanceOf(WireFormatError)
        rejected++
      }
    }
    expect(decoded + rejected).toBe(4000)
    expect(rejected).toBeGreaterThan(0)
    expect(decoded).toBeGreaterThan(0)
    // Random whole buffers too.
    for (let i = 0; i < 500; i++) {
      try {
        decodeFlowBatch(randomBytes(rand, Math.floor(rand() * 300)))
      } catch (e) {
        expect(e).toBeInstanceOf(WireFormatError)
      }
    }
  })
})

describe('every column survives a roundtrip', () => {
  it('sets a distinct value in each column and reads it back through both decoders', () => {
    const b = new FlowBatch()
    b.appendRows(2)
    flowColumns.forEach((c, i) => {
      const name = c.name as never
      switch (c.kind) {
        case 'ip':
          b.setIP(name, 1, parseIP(`2001:db8::${i.toString(16)}`))
          break
        case 'string':
          b.setString(name, 1, `value of ${c.name}`)
          break
        case 'u32list':
          b.setList(name, 1, [i, i + 1])
          break
        case 'u32x3list':
          b.setList(name, 1, [i, i + 1, i + 2])
          break
        case 'u8':
          b.u8(name)[1] = i
          break
        case 'u16':
          b.u16(name)[1] = 1000 + i
          break
        case 'u32':
          b.u32(name)[1] = 100000 + i
          break
        default:
          ;(c.kind === 'mac' ? b.mac(name) : b.u64(name))[1] = 2 ** 40 + i
      }
    })
    const bytes = encodeFlowBatch(b)
    expect(referenceDecode(root, bytes)).toEqual(wireObject(b))
    expect(referenceRows(root, bytes)).toEqual(flowBatchToRows(b, { allColumns: true }))
    const d = decodeFlowBatch(bytes)
    expect(d.presentColumns()).toEqual(flowColumns.map((c) => c.name))
    expect(flowBatchToRows(d, { allColumns: true })).toEqual(flowBatchToRows(b, { allColumns: true }))
  })
})
