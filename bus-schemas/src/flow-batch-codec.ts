// Hand-written codec between FlowBatch and the standard protobuf encoding of flowbus.v1.FlowBatch.
// Columns move as whole typed-array copies (packed fixed32/fixed64 are little-endian arrays on the wire).

import { FlowBatch, isList, type ListData } from './flow-batch.js'
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

/** Wire bytes per flow of a fixed-width kind. */
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
let scratch = new Uint32Array(8192)

const bytesOf = (a: Uint16Array | Uint32Array, n: number): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, n)

/** Per-row element counts of a list column (in triples for u32x3list), for rows < n. */
function listCount(list: ListData, row: number, divisor: number): number {
  return row < list.rows ? (list.offsets[row + 1]! - list.offsets[row]!) / divisor : 0
}

/** Encodes a batch as flowbus.v1.FlowBatch; only present columns and the first `count` rows are written. */
export function encodeFlowBatch(batch: FlowBatch): Uint8Array {
  const n = batch.count
  const strings = batch.strings
  // Size pass: the output is allocated once, exactly.
  let size = n > 0 ? 1 + varintSize(n) : 0
  const stringLengths = strings.length > 1 ? strings.map(utf8Length) : []
  for (const len of stringLengths) size += 1 + varintSize(len) + len
  if (n > 0) {
    flowColumns.forEach((spec, i) => {
      const data = batch.columnData(i)
      if (data === undefined) return
      if (isList(data)) {
        if (data.length === 0) return
        const divisor = spec.kind === 'u32x3list' ? 3 : 1
        let countsBytes = 0
        for (let r = 0; r < n; r++) countsBytes += varintSize(listCount(data, r, divisor))
        const valueBytes = data.offsets[Math.min(data.rows, n)]! * 4
        size += varintSize(tagOf(spec.field, WIRE_LEN)) + varintSize(valueBytes) + valueBytes
        size += varintSize(tagOf(spec.countsField!, WIRE_LEN)) + varintSize(countsBytes) + countsBytes
      } else {
        const payload = n * wireWidth[spec.kind]
        size += varintSize(tagOf(spec.field, WIRE_LEN)) + varintSize(payload) + payload
      }
    })
  }

  const out = new Uint8Array(size)
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
  if (n === 0) return out

  const view = HOST_LITTLE_ENDIAN ? undefined : new DataView(out.buffer, out.byteOffset, out.byteLength)
  flowColumns.forEach((spec, i) => {
    const data = batch.columnData(i)
    if (data === undefined) return
    if (isList(data)) {
      if (data.length === 0) return
      const divisor = spec.kind === 'u32x3list' ? 3 : 1
      const used = data.offsets[Math.min(data.rows, n)]!
      pos = writeVarint(out, pos, tagOf(spec.field, WIRE_LEN))
      pos = writeVarint(out, pos, used * 4)
      pos = writeU32s(out, pos, data.values, used, view)
      let countsBytes = 0
      for (let r = 0; r < n; r++) countsBytes += varintSize(listCount(data, r, divisor))
      pos = writeVarint(out, pos, tagOf(spec.countsField!, WIRE_LEN))
      pos = writeVarint(out, pos, countsBytes)
      for (let r = 0; r < n; r++) pos = writeVarint(out, pos, listCount(data, r, divisor))
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
      view.setUint32(pos + 8 * r + 4, (v / TWO_32) >>> 0, true)
    }
    return pos + n * 8
  }
  // Build the little-endian words in an aligned scratch array, then copy once.
  if (scratch.length < 2 * n) scratch = new Uint32Array(2 * n)
  const s = scratch
  for (let r = 0; r < n; r++) {
    const v = values[r]!
    s[2 * r] = v >>> 0
    s[2 * r + 1] = (v / TWO_32) >>> 0
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

  const columns: (ReturnType<FlowBatch['columnData']>)[] = new Array(flowColumns.length).fill(undefined)
  flowColumns.forEach((spec, i) => {
    const valueSegments = values[i]
    const countSegments = counts[i]
    if (valueSegments === undefined && countSegments === undefined) return
    reader.field = spec.name
    if (spec.kind === 'u32list' || spec.kind === 'u32x3list') {
      columns[i] = decodeList(reader, spec.name, spec.kind === 'u32x3list' ? 3 : 1, count, valueSegments, countSegments)
      return
    }
    const { bytes, at } = joined(buf, valueSegments!)
    const width = wireWidth[spec.kind]
    if (bytes.length !== count * width) {
      reader.fail(`${bytes.length} bytes, expected ${count} flows × ${width} bytes = ${count * width}`, at)
    }
    switch (spec.kind) {
      case 'u8':
      case 'ip':
        columns[i] = bytes.slice()
        return
      case 'u16': {
        const a = new Uint16Array(count)
        if (HOST_LITTLE_ENDIAN) new Uint8Array(a.buffer).set(bytes)
        else for (let r = 0; r < count; r++) a[r] = bytes[2 * r]! | (bytes[2 * r + 1]! << 8)
        columns[i] = a
        return
      }
      case 'u32':
      case 'string': {
        const a = readU32s(bytes, count)
        if (spec.kind === 'string') {
          const limit = strings.length
          for (let r = 0; r < count; r++) {
            if (a[r]! >= limit) reader.fail(`flow ${r} refers to string ${a[r]}, the table has ${limit}`, at)
          }
        }
        columns[i] = a
        return
      }
      case 'u64':
      case 'mac': {
        const words = readU32s(bytes, 2 * count)
        const a = new Float64Array(count)
        for (let r = 0; r < count; r++) a[r] = words[2 * r + 1]! * TWO_32 + words[2 * r]!
        columns[i] = a
        return
      }
    }
  })
  return FlowBatch.fromColumns(count, strings, columns)
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
function readU32s(bytes: Uint8Array, n: number): Uint32Array {
  const a = new Uint32Array(n)
  if (HOST_LITTLE_ENDIAN) new Uint8Array(a.buffer).set(bytes.subarray(0, 4 * n))
  else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    for (let r = 0; r < n; r++) a[r] = view.getUint32(4 * r, true)
  }
  return a
}

function decodeList(
  reader: WireReader,
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
  const offsets = new Uint32Array(count + 1)
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
    while (!counts.done) {
      if (r === count) reader.fail(`more than ${count} counts`, counts.pos)
      sum += counts.uint32() * divisor
      offsets[++r] = sum
    }
    if (r !== count) reader.fail(`${r} counts, expected one per flow (${count})`, at)
    if (sum !== total) reader.fail(`counts add up to ${sum} values, the values field has ${total}`, at)
  }
  return { offsets, values: readU32s(valueBytes.bytes, total), rows: count, length: total }
}

/** The FlowBatch codec of the subject catalogue. */
export const flowBatchCodec: Codec<FlowBatch> = {
  typeName: FLOW_BATCH_TYPE,
  encode: encodeFlowBatch,
  decode: decodeFlowBatch,
}
