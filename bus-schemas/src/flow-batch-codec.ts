// Hand-written codec between FlowBatch and the standard protobuf encoding of flowbus.v1.FlowBatch.
// Columns move as whole typed-array copies (packed fixed32/fixed64 are little-endian arrays on the wire).

import { FlowBatch, isList, type ColumnData, type ListData } from './flow-batch.js'
import { FLOW_BATCH_COUNT_FIELD, FLOW_BATCH_STRINGS_FIELD, flowColumns, type FlowColumnKind } from './flow-columns.js'
import type { Codec } from './subject.js'
import {
  HOST_LITTLE_ENDIAN,
  WIRE_I32,
  WIRE_I64,
  WIRE_LEN,
  WIRE_VARINT,
  WireReader,
  readUtf8,
  tagOf,
  utf8Length,
  varintSize,
  writeUtf8,
  writeVarint,
} from './wire.js'

export const FLOW_BATCH_TYPE = 'flowbus.v1.FlowBatch'

/** Decoding refuses larger counts: a tiny message claiming billions of all-zero flows is an attack, not a batch. */
export const MAX_FLOWS_PER_BATCH = 1 << 20

/** Bytes per flow of a fixed-width kind, on the wire and in memory (64-bit values as Float64Array). */
const wireWidth: Record<FlowColumnKind, number> = {
  u8: 1,
  u16: 2,
  u32: 4,
  string: 4,
  u64: 8,
  mac: 8,
  ip: 16,
  u32list: 0,
  u32x3list: 0,
}

const TWO_32 = 4294967296
/** Exact (a power of two): multiplying beats dividing in the hot loop. */
const INV_TWO_32 = 1 / TWO_32
let scratch = new Uint32Array(8192)

const bytesOf = (a: Uint16Array | Uint32Array, n: number): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, n)

/**
 * Fills `counts` with each flow's number of list elements (triples for u32x3list; flows past the
 * last list set have none) and returns the size of their packed varint encoding.
 */
function listCounts(list: ListData, n: number, divisor: number, counts: Uint32Array): number {
  const rows = Math.min(list.rows, n)
  const offsets = list.offsets
  let bytes = n - rows
  let previous = offsets[0]!
  for (let r = 0; r < rows; r++) {
    const next = offsets[r + 1]!
    const c = divisor === 1 ? next - previous : ((next - previous) / divisor) | 0
    previous = next
    counts[r] = c
    bytes += c < 0x80 ? 1 : varintSize(c)
  }
  return bytes
}

function writeVarints(out: Uint8Array, pos: number, values: Uint32Array): number {
  for (let r = 0; r < values.length; r++) {
    const v = values[r]!
    if (v < 0x80) out[pos++] = v
    else pos = writeVarint(out, pos, v)
  }
  return pos
}

/** Encodes a batch as flowbus.v1.FlowBatch; only present columns and the first `count` rows are written. */
export function encodeFlowBatch(batch: FlowBatch): Uint8Array {
  const n = batch.count
  const strings = batch.strings
  // Size pass: the output is allocated once, exactly.
  const listEncodings: { counts: Uint32Array; countsBytes: number }[] = []
  let size = n > 0 ? 1 + varintSize(n) : 0
  const stringLengths = strings.length > 1 ? strings.map(utf8Length) : []
  for (const len of stringLengths) size += 1 + varintSize(len) + len
  if (n > 0) {
    flowColumns.forEach((spec, i) => {
      const data = batch.columnData(i)
      if (data === undefined) return
      if (isList(data)) {
        if (data.length === 0) return
        const counts = new Uint32Array(n)
        const countsBytes = listCounts(data, n, spec.kind === 'u32x3list' ? 3 : 1, counts)
        listEncodings[i] = { counts, countsBytes }
        const valueBytes = data.offsets[Math.min(data.rows, n)]! * 4
        size += varintSize(tagOf(spec.field, WIRE_LEN)) + varintSize(valueBytes) + valueBytes
        size += varintSize(tagOf(spec.countsField!, WIRE_LEN)) + varintSize(countsBytes) + countsBytes
      } else {
        const payload = n * wireWidth[spec.kind]
        size += varintSize(tagOf(spec.field, WIRE_LEN)) + varintSize(payload) + payload
      }
    })
  }

  const out = uninitialized(size)
  let pos = 0
  if (n > 0) {
    out[pos++] = tagOf(FLOW_BATCH_COUNT_FIELD, WIRE_VARINT)
    pos = writeVarint(out, pos, n)
  }
  stringLengths.forEach((len, i) => {
    out[pos++] = tagOf(FLOW_BATCH_STRINGS_FIELD, WIRE_LEN)
    pos = writeVarint(out, pos, len)
    pos = writeUtf8(out, pos, strings[i]!)
  })
  if (n === 0) return checkedSize(out, pos)

  const view = HOST_LITTLE_ENDIAN ? undefined : new DataView(out.buffer, out.byteOffset, out.byteLength)
  flowColumns.forEach((spec, i) => {
    const data = batch.columnData(i)
    if (data === undefined) return
    if (isList(data)) {
      if (data.length === 0) return
      const used = data.offsets[Math.min(data.rows, n)]!
      pos = writeVarint(out, pos, tagOf(spec.field, WIRE_LEN))
      pos = writeVarint(out, pos, used * 4)
      pos = writeU32s(out, pos, data.values, used, view)
      const { counts, countsBytes } = listEncodings[i]!
      pos = writeVarint(out, pos, tagOf(spec.countsField!, WIRE_LEN))
      pos = writeVarint(out, pos, countsBytes)
      pos = writeVarints(out, pos, counts)
      return
    }
    const payload = n * wireWidth[spec.kind]
    pos = writeVarint(out, pos, tagOf(spec.field, WIRE_LEN))
    pos = writeVarint(out, pos, payload)
    switch (spec.kind) {
      case 'u8':
      case 'ip':
        out.set((data as Uint8Array).subarray(0, payload), pos)
        pos += payload
        break
      case 'u16':
        if (view === undefined) out.set(bytesOf(data as Uint16Array, payload), pos)
        else for (let r = 0; r < n; r++) view.setUint16(pos + 2 * r, data[r]!, true)
        pos += payload
        break
      case 'u32':
      case 'string':
        pos = writeU32s(out, pos, data as Uint32Array, n, view)
        break
      case 'u64':
      case 'mac':
        pos = writeU64s(out, pos, data as Float64Array, n, view)
        break
    }
  })
  return checkedSize(out, pos)
}

/** The output buffer is not zero-filled, so the size pass and the write pass must agree exactly. */
function checkedSize(out: Uint8Array, written: number): Uint8Array {
  if (written !== out.length) throw new Error(`FlowBatch encoder wrote ${written} bytes into ${out.length}: size pass out of sync`)
  return out
}

function writeU32s(out: Uint8Array, pos: number, values: Uint32Array, n: number, view: DataView | undefined): number {
  if (view === undefined) out.set(bytesOf(values, n * 4), pos)
  else for (let r = 0; r < n; r++) view.setUint32(pos + 4 * r, values[r]!, true)
  return pos + n * 4
}

function writeU64s(out: Uint8Array, pos: number, values: Float64Array, n: number, view: DataView | undefined): number {
  if (view !== undefined) {
    for (let r = 0; r < n; r++) {
      const v = values[r]!
      view.setUint32(pos + 8 * r, v >>> 0, true)
      view.setUint32(pos + 8 * r + 4, (v * INV_TWO_32) >>> 0, true)
    }
    return pos + n * 8
  }
  // Build the little-endian words in an aligned scratch array, then copy once.
  if (scratch.length < 2 * n) scratch = new Uint32Array(2 * n)
  const s = scratch
  for (let r = 0; r < n; r++) {
    const v = values[r]!
    s[2 * r] = v >>> 0
    s[2 * r + 1] = (v * INV_TWO_32) >>> 0
  }
  out.set(bytesOf(s, 8 * n), pos)
  return pos + n * 8
}

/** Where one field's payload lies; packed repeated fields may come in several pieces. */
interface Segment {
  start: number
  end: number
}

/** Column spec by field number (values and counts fields), built once. */
const byField: ({ index: number; counts: boolean } | undefined)[] = []
flowColumns.forEach((spec, index) => {
  byField[spec.field] = { index, counts: false }
  if (spec.countsField !== undefined) byField[spec.countsField] = { index, counts: true }
})

/**
 * Decodes flowbus.v1.FlowBatch. Accepts any valid encoding (fields in any order, packed arrays
 * split in pieces or unpacked), skips unknown fields, and throws WireFormatError naming the
 * field and offset for anything malformed. Columns are copied into fresh aligned arrays.
 */
export function decodeFlowBatch(buf: Uint8Array): FlowBatch {
  const reader = new WireReader(FLOW_BATCH_TYPE, buf)
  let count = 0
  const strings: string[] = []
  const values: Segment[][] = []
  const counts: Segment[][] = []
  let stringsAt = -1

  while (!reader.done) {
    const [field, wireType] = reader.tag()
    if (field === FLOW_BATCH_COUNT_FIELD) {
      reader.field = 'count'
      if (wireType !== WIRE_VARINT) reader.fail(`wire type ${wireType}, expected varint`)
      count = reader.uint32()
      continue
    }
    if (field === FLOW_BATCH_STRINGS_FIELD) {
      reader.field = 'strings'
      if (wireType !== WIRE_LEN) reader.fail(`wire type ${wireType}, expected length-delimited`)
      if (stringsAt < 0) stringsAt = reader.pos
      const { start, end } = reader.lengthDelimited()
      strings.push(readUtf8(buf, start, end))
      continue
    }
    const target = byField[field]
    if (target === undefined) {
      reader.field = String(field)
      reader.skip(field, wireType)
      continue
    }
    const spec = flowColumns[target.index]!
    reader.field = target.counts ? `${spec.name}Counts` : spec.name
    const at = reader.pos
    const segments = target.counts ? counts : values
    if (wireType === WIRE_LEN) {
      const segment = reader.lengthDelimited()
      // A `bytes` field seen twice keeps the last value; packed repeated fields concatenate.
      const isBytes = !target.counts && (spec.kind === 'u8' || spec.kind === 'u16' || spec.kind === 'ip')
      if (isBytes || segments[target.index] === undefined) segments[target.index] = [segment]
      else segments[target.index]!.push(segment)
      continue
    }
    // Unpacked repeated scalars: each element's bytes are the packed form of that element.
    const expected = unpackedWireType(spec.kind, target.counts)
    if (wireType !== expected) reader.fail(`wire type ${wireType}, expected ${expected === WIRE_LEN ? 'length-delimited (2)' : expected}`)
    reader.skip(field, wireType)
    ;(segments[target.index] ??= []).push({ start: at, end: reader.pos })
  }

  if (count > MAX_FLOWS_PER_BATCH) {
    reader.field = 'count'
    reader.fail(`count ${count} exceeds the limit of ${MAX_FLOWS_PER_BATCH} flows per batch`, 0)
  }
  if (strings.length === 0) strings.push('')
  else if (strings[0] !== '') {
    reader.field = 'strings'
    reader.fail(`strings[0] must be the empty string, got ${JSON.stringify(strings[0]).slice(0, 40)}`, stringsAt)
  }

  // Size every present column first, then carve them all out of one allocation: one typed-array
  // allocation per column used to cost more than copying the data.
  let arenaSize = 0
  const present: number[] = []
  for (let i = 0; i < flowColumns.length; i++) {
    if (values[i] === undefined && counts[i] === undefined) continue
    present.push(i)
    const kind = flowColumns[i]!.kind
    arenaSize += kind === 'u32list' || kind === 'u32x3list' ? align8(4 * (count + 1)) + align8(totalLength(values[i])) : align8(count * wireWidth[kind])
  }
  const arena = new Arena(arenaSize)
  const columns: ColumnData[] = new Array(flowColumns.length)
  for (const i of present) {
    const spec = flowColumns[i]!
    reader.field = spec.name
    if (spec.kind === 'u32list' || spec.kind === 'u32x3list') {
      columns[i] = decodeList(reader, arena, spec.name, spec.kind === 'u32x3list' ? 3 : 1, count, values[i], counts[i])
      continue
    }
    const { bytes, at } = joined(buf, values[i]!)
    const width = wireWidth[spec.kind]
    if (bytes.length !== count * width) {
      reader.fail(`${bytes.length} bytes, expected ${count} flows × ${width} bytes = ${count * width}`, at)
    }
    switch (spec.kind) {
      case 'u8':
      case 'ip': {
        const a = arena.u8(bytes.length)
        a.set(bytes)
        columns[i] = a
        break
      }
      case 'u16': {
        const a = arena.u16(count)
        if (HOST_LITTLE_ENDIAN) new Uint8Array(a.buffer, a.byteOffset, 2 * count).set(bytes)
        else for (let r = 0; r < count; r++) a[r] = bytes[2 * r]! | (bytes[2 * r + 1]! << 8)
        columns[i] = a
        break
      }
      case 'u32':
      case 'string': {
        const a = arena.u32(count)
        copyU32s(bytes, a)
        if (spec.kind === 'string') {
          const bad = firstIndexAtLeast(a, strings.length)
          if (bad >= 0) reader.fail(`flow ${bad} refers to string ${a[bad]}, the table has ${strings.length}`, at + 4 * bad)
        }
        columns[i] = a
        break
      }
      case 'u64':
      case 'mac':
        columns[i] = readU64s(bytes, arena.f64(count))
        break
    }
  }
  return FlowBatch.fromColumns(count, strings, columns)
}

const align8 = (n: number): number => (n + 7) & ~7

const totalLength = (segments: Segment[] | undefined): number =>
  segments === undefined ? 0 : segments.reduce((sum, s) => sum + (s.end - s.start), 0)

/** A fresh buffer whose every byte the caller overwrites: Node skips zero-filling it. */
function uninitialized(size: number): Uint8Array {
  if (typeof Buffer === 'function') {
    const b = Buffer.allocUnsafeSlow(size)
    return new Uint8Array(b.buffer, b.byteOffset, size)
  }
  return new Uint8Array(size)
}

/** One uninitialised allocation carved into 8-byte aligned column arrays; padding is zeroed. */
class Arena {
  readonly #bytes: Uint8Array
  #offset = 0

  constructor(size: number) {
    this.#bytes = uninitialized(size)
  }

  #take(length: number): number {
    const at = this.#offset
    this.#offset += align8(length)
    this.#bytes.fill(0, at + length, this.#offset)
    return this.#bytes.byteOffset + at
  }

  u8(n: number): Uint8Array {
    return new Uint8Array(this.#bytes.buffer, this.#take(n), n)
  }
  u16(n: number): Uint16Array {
    return new Uint16Array(this.#bytes.buffer, this.#take(2 * n), n)
  }
  u32(n: number): Uint32Array {
    return new Uint32Array(this.#bytes.buffer, this.#take(4 * n), n)
  }
  f64(n: number): Float64Array {
    return new Float64Array(this.#bytes.buffer, this.#take(8 * n), n)
  }
}

/** Index of the first value >= limit, or -1. One max pass (two accumulators) settles valid input. */
function firstIndexAtLeast(a: Uint32Array, limit: number): number {
  const n = a.length
  let m0 = 0
  let m1 = 0
  let i = 0
  for (; i + 1 < n; i += 2) {
    const v = a[i]!
    const w = a[i + 1]!
    if (v > m0) m0 = v
    if (w > m1) m1 = w
  }
  if (i < n && a[i]! > m0) m0 = a[i]!
  if (m0 < limit && m1 < limit) return -1
  for (let r = 0; r < n; r++) if (a[r]! >= limit) return r
  return -1
}

/** Wire type of one element of a column sent unpacked; `bytes` columns only come length-delimited. */
function unpackedWireType(kind: FlowColumnKind, counts: boolean): number {
  if (counts) return WIRE_VARINT
  if (kind === 'u64' || kind === 'mac') return WIRE_I64
  if (kind === 'u8' || kind === 'u16' || kind === 'ip') return WIRE_LEN
  return WIRE_I32
}

/** Payload of a field, concatenating pieces when a writer split a packed array. */
function joined(buf: Uint8Array, segments: Segment[]): { bytes: Uint8Array; at: number } {
  const first = segments[0]!
  if (segments.length === 1) return { bytes: buf.subarray(first.start, first.end), at: first.start }
  const total = segments.reduce((sum, s) => sum + (s.end - s.start), 0)
  const bytes = new Uint8Array(total)
  let pos = 0
  for (const s of segments) {
    bytes.set(buf.subarray(s.start, s.end), pos)
    pos += s.end - s.start
  }
  return { bytes, at: first.start }
}

/** Copies little-endian u32s into an aligned array (the source offset may be unaligned). */
function copyU32s(bytes: Uint8Array, into: Uint32Array): Uint32Array {
  const n = into.length
  if (HOST_LITTLE_ENDIAN) new Uint8Array(into.buffer, into.byteOffset, 4 * n).set(bytes.subarray(0, 4 * n))
  else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    for (let r = 0; r < n; r++) into[r] = view.getUint32(4 * r, true)
  }
  return into
}

/** fixed64 values into float64 (exact to 2^53), through an aligned scratch copy of the words. */
function readU64s(bytes: Uint8Array, into: Float64Array): Float64Array {
  const n = into.length
  if (scratch.length < 2 * n) scratch = new Uint32Array(2 * n)
  const words = copyU32s(bytes, scratch.subarray(0, 2 * n))
  for (let r = 0; r < n; r++) into[r] = words[2 * r + 1]! * TWO_32 + words[2 * r]!
  return into
}

function decodeList(
  reader: WireReader,
  arena: Arena,
  name: string,
  divisor: number,
  count: number,
  valueSegments: Segment[] | undefined,
  countSegments: Segment[] | undefined,
): ListData {
  const buf = reader.buf
  const valueBytes = valueSegments === undefined ? { bytes: new Uint8Array(0), at: 0 } : joined(buf, valueSegments)
  if (valueBytes.bytes.length % 4 !== 0) reader.fail(`${valueBytes.bytes.length} bytes is not a whole number of fixed32 values`, valueBytes.at)
  const total = valueBytes.bytes.length / 4
  const offsets = arena.u32(count + 1)
  offsets[0] = 0
  if (countSegments === undefined) {
    if (total > 0) reader.fail(`${total} values but no ${name}Counts field`, valueBytes.at)
  } else {
    const { bytes, at } = joined(buf, countSegments)
    reader.field = `${name}Counts`
    // Read in place when there is one piece so error offsets are message offsets.
    const only = countSegments.length === 1 ? countSegments[0]! : undefined
    const counts = only ? new WireReader(reader.typeName, buf, only.start, only.end) : new WireReader(reader.typeName, bytes)
    counts.field = reader.field
    let sum = 0
    let r = 0
    const data = counts.buf
    while (counts.pos < counts.end) {
      if (r === count) reader.fail(`more than ${count} counts`, counts.pos)
      // Counts are almost always below 128: one byte, no call.
      const b = data[counts.pos]!
      let c: number
      if (b < 0x80) {
        counts.pos++
        c = b
      } else c = counts.uint32()
      sum += c * divisor
      offsets[++r] = sum
    }
    if (r !== count) reader.fail(`${r} counts, expected one per flow (${count})`, at)
    if (sum !== total) reader.fail(`counts add up to ${sum} values, the values field has ${total}`, at)
  }
  if (countSegments === undefined) offsets.fill(0)
  return { offsets, values: copyU32s(valueBytes.bytes, arena.u32(total)), rows: count, length: total }
}

/** The FlowBatch codec of the subject catalogue. */
export const flowBatchCodec: Codec<FlowBatch> = {
  typeName: FLOW_BATCH_TYPE,
  encode: encodeFlowBatch,
  decode: decodeFlowBatch,
}
