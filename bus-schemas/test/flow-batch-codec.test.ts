// Conformance of the hand-written FlowBatch codec with protobufjs reading the .proto, both ways,
// plus forward compatibility, malformed input and a mutation fuzz loop.

import { describe, expect, it } from 'vitest'
import { decodeFlowBatch, encodeFlowBatch, MAX_FLOWS_PER_BATCH } from '../src/flow-batch-codec.js'
import { FlowBatch } from '../src/flow-batch.js'
import { flowColumns } from '../src/flow-columns.js'
import { flowBatchToRows } from '../src/flow-rows.js'
import { parseIP } from '../src/ip.js'
import { WireFormatError } from '../src/wire.js'
import { loadReferenceRoot, referenceDecode, referenceEncode, wireObject } from './fixtures/reference.js'
import { prng, randomBytes, sampleFlowBatch } from './fixtures/sample-flows.js'

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

describe('FlowBatch codec conformance with protobufjs', () => {
  const cases: [string, () => FlowBatch][] = [
    ['edge values', edgeBatch],
    ['realistic 500-flow batch (IPv4 and IPv6)', () => sampleFlowBatch(500, 3)],
    ['realistic batch from another seed', () => sampleFlowBatch(257, 8)],
    ['empty batch', () => new FlowBatch()],
    ['rows with no column', () => {
      const b = new FlowBatch()
      b.appendRows(5)
      return b
    }],
  ]

  for (const [name, make] of cases) {
    it(`fast encode → protobufjs decode: ${name}`, () => {
      const batch = make()
      const decoded = referenceDecode(root, encodeFlowBatch(batch))
      expect(decoded).toEqual(wireObject(batch))
    })

    it(`protobufjs encode → fast decode: ${name}`, () => {
      const batch = make()
      const expected = wireObject(batch)
      const decoded = decodeFlowBatch(referenceEncode(root, expected))
      expect(decoded.count).toBe(batch.count)
      expect(wireObject(decoded)).toEqual(expected)
      expect(flowBatchToRows(decoded)).toEqual(flowBatchToRows(batch))
    })

    it(`fast roundtrip keeps every value: ${name}`, () => {
      const batch = make()
      const decoded = decodeFlowBatch(encodeFlowBatch(batch))
      expect(decoded.presentColumns()).toEqual(batch.presentColumns().filter((c) => wireObject(batch)[c] !== undefined))
      expect(flowBatchToRows(decoded, { allColumns: true })).toEqual(flowBatchToRows(batch, { allColumns: true }))
    })
  }

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
    const batch = sampleFlowBatch(100, 5)
    const bytes = encodeFlowBatch(batch)
    // Shift by one byte so every packed array starts unaligned.
    const shifted = new Uint8Array(bytes.length + 1)
    shifted.set(bytes, 1)
    const d = decodeFlowBatch(shifted.subarray(1))
    shifted.fill(0)
    expect(flowBatchToRows(d)).toEqual(flowBatchToRows(batch))
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

  it('accepts fields in any order, packed arrays in pieces and unpacked elements', () => {
    // count last; SrcAS packed in two pieces; DstAS unpacked (one fixed32 tag per value);
    // Bytes unpacked fixed64; DstASPathCounts unpacked varints.
    const bytes = concat(
      [...tag2(30, 2), 4, 1, 0, 0, 0], // SrcAS piece 1: [1]
      [...tag2(31, 5), 10, 0, 0, 0, ...tag2(31, 5), 20, 0, 0, 0], // DstAS unpacked: [10, 20]
      [...tag2(30, 2), 4, 2, 0, 0, 0], // SrcAS piece 2: [2]
      [...tag2(72, 1), 5, 0, 0, 0, 1, 0, 0, 0, ...tag2(72, 1), 6, 0, 0, 0, 0, 0, 0, 0], // Bytes unpacked
      [...tag2(48, 2), 8, 100, 0, 0, 0, 200, 0, 0, 0], // DstASPath values [100, 200]
      [...tag2(49, 0), 2, ...tag2(49, 0), 0], // DstASPathCounts unpacked [2, 0]
      [0x08, 2], // count = 2, last
    )
    const d = decodeFlowBatch(bytes)
    expect(d.count).toBe(2)
    expect(Array.from(d.view('SrcAS')!)).toEqual([1, 2])
    expect(Array.from(d.view('DstAS')!)).toEqual([10, 20])
    expect(Array.from(d.view('Bytes')!)).toEqual([4294967301, 6])
    expect(Array.from(d.getList('DstASPath', 0))).toEqual([100, 200])
    expect(Array.from(d.getList('DstASPath', 1))).toEqual([])
    // protobufjs agrees on the same bytes.
    expect(referenceDecode(root, bytes)).toMatchObject({ count: 2, SrcAS: [1, 2], DstAS: [10, 20], Bytes: ['4294967301', '6'] })
  })

  it('keeps the last value of a bytes column sent twice, as protobuf does', () => {
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

  it('names the column whose length does not match count', () => {
    const b = new FlowBatch()
    b.appendRows(3)
    b.u32('SrcAS')[0] = 1
    const bytes = encodeFlowBatch(b)
    bytes[1] = 4 // count 3 → 4
    expectWireError(bytes, 'SrcAS', /12 bytes, expected 4 flows × 4 bytes = 16/)
  })

  it('rejects a string index outside the table', () => {
    const b = new FlowBatch()
    b.appendRows(2)
    b.setString('InIfName', 1, 'x')
    const bytes = encodeFlowBatch(b)
    bytes[bytes.length - 4] = 9 // index of flow 1
    expectWireError(bytes, 'InIfName', /flow 1 refers to string 9, the table has 2/)
  })

  it('rejects list counts that do not add up', () => {
    const b = new FlowBatch()
    b.appendRows(2)
    b.setList('DstASPath', 0, [1, 2])
    const bytes = encodeFlowBatch(b)
    bytes[bytes.length - 2] = 3 // counts [2, 0] → [3, 0]
    expectWireError(bytes, 'DstASPathCounts', /counts add up to 3 values, the values field has 2/)
  })

  it('rejects a huge count', () => {
    expectWireError(concat([0x08, 0xff, 0xff, 0xff, 0xff, 0x0f]), 'count', /exceeds the limit/)
    expect(MAX_FLOWS_PER_BATCH).toBeGreaterThanOrEqual(100_000)
  })

  it('rejects a wrong wire type for a known field, and a bad string table', () => {
    expectWireError(concat([0x0d, 1, 0, 0, 0]), 'count', /wire type 5, expected varint/)
    expectWireError(concat([0x12, 1, 0x61]), 'strings', /strings\[0\] must be the empty string/)
  })

  it('every truncation throws a WireFormatError or, cut between fields, decodes the leading fields', () => {
    const columns = decodeFlowBatch(good).presentColumns()
    let thrown = 0
    for (let cut = 1; cut < good.length; cut++) {
      try {
        const d = decodeFlowBatch(good.subarray(0, cut))
        expect(columns.slice(0, d.presentColumns().length), `cut at ${cut}`).toEqual(d.presentColumns())
      } catch (e) {
        expect(e, `cut at ${cut}`).toBeInstanceOf(WireFormatError)
        thrown++
      }
    }
    expect(thrown).toBeGreaterThan(good.length * 0.9)
  })

  it('fuzz: random mutations either decode or throw an Error, never hang or crash otherwise', () => {
    const rand = prng(42)
    let decoded = 0
    let rejected = 0
    for (let i = 0; i < 3000; i++) {
      const bytes = good.slice()
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
        flowBatchToRows(batch) // whatever decoded must be readable
        decoded++
      } catch (e) {
        expect(e).toBeInstanceOf(Error)
        rejected++
      }
    }
    expect(decoded + rejected).toBe(3000)
    expect(rejected).toBeGreaterThan(0)
    // Random whole buffers too.
    for (let i = 0; i < 500; i++) {
      try {
        decodeFlowBatch(randomBytes(rand, Math.floor(rand() * 300)))
      } catch (e) {
        expect(e).toBeInstanceOf(Error)
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
    const d = decodeFlowBatch(bytes)
    expect(d.presentColumns()).toEqual(flowColumns.map((c) => c.name))
    expect(flowBatchToRows(d, { allColumns: true })).toEqual(flowBatchToRows(b, { allColumns: true }))
  })
})
