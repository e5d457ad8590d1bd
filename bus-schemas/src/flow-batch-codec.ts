// Hand-written codec between FlowBatch and the standard protobuf encoding of flowbus.v1.FlowBatch.
// Columns travel as little-endian `bytes` arrays at the narrowest width their values allow, or as one value.

import { FlowBatch, isList, type ColumnData, type ListData } from './flow-batch.js'
import { FLOW_BATCH_COUNT_FIELD, FLOW_BATCH_STRINGS_FIELD, flowColumns, type FlowColumnKind } from './flow-columns.js'
import type { Codec } from './subject.js'
import {
  HOST_LITTLE_ENDIAN,
  WIRE_LEN,
  WIRE_VARINT,
  WireReader,
  readLittleEndian,
  readUtf8,
  tagOf,
  utf8Length,
  varintSize,
  writeLittleEndian,
  writeUtf8,
  writeVarint,
} from './wire.js'

export const FLOW_BATCH_TYPE = 'flowbus.v1.FlowBatch'

/** Decoding refuses larger counts: a tiny message claiming billions of all-zero flows is an attack, not a batch. */
export const MAX_FLOWS_PER_BATCH = 1 << 20

type FixedKind = Exclude<FlowColumnKind, 'u32list' | 'u32x3list'>

/**
 * Bytes per flow a column may use on the wire, narrowest first. The reader finds the width as
 * payload length ÷ count; integers are little-endian, IPs 4 (IPv4) or 16 bytes in network order,
 * MACs 6 bytes in network order. An IP column with an IPv4-flows bitmap mixes 4 and 16 bytes.
 */
export const FLOW_WIRE_WIDTHS: Readonly<Record<FixedKind, readonly number[]>> = {
  u8: [1],
  u16: [1, 2],
  u32: [1, 2, 4],
  string: [1, 2, 4],
  u64: [1, 2, 4, 8],
  mac: [6],
  ip: [4, 16],
}
/** Widths of list values and list counts. */
export const FLOW_LIST_WIRE_WIDTHS: readonly number[] = [1, 2, 4]

/**
 * A column whose flows all hold the same value is written as that one value, but only in batches
 * of more than this many flows: then `n × width` can never equal a single value's width, so a
 * reader tells the two forms apart by length alone.
 */
export const SINGLE_VALUE_MIN_FLOWS = 9

/** Bytes per flow in memory (64-bit values as Float64Array, IPs as 16 bytes). */
const memoryWidth: Record<FixedKind, number> = { u8: 1, u16: 2, u32: 4, string: 4, u64: 8, mac: 8, ip: 16 }

const TWO_32 = 4294967296
/** Exact (a power of two): multiplying beats dividing in the hot loop. */
const INV_TWO_32 = 1 / TWO_32
/** `::ffff:` as the third 32-bit word of an IPv4-mapped address, in host byte order. */
const MAPPED_WORD = new Uint32Array(Uint8Array.of(0, 0, 0xff, 0xff).buffer)[0]!

/** Reused buffers stay below this size; a bigger batch gets fresh ones, freed with it. */
const POOLED_BYTES_LIMIT = 1 << 22

/** A buffer of at least `bytes` from slot `index` of a pool (the codec is synchronous: no sharing). */
function pooledBuffer(pool: ArrayBuffer[], index: number, bytes: number): ArrayBuffer {
  const kept = pool[index]
  if (kept !== undefined && kept.byteLength >= bytes) return kept
  const buffer = new ArrayBuffer(2 * bytes <= POOLED_BYTES_LIMIT ? 2 * bytes : bytes)
  if (buffer.byteLength <= POOLED_BYTES_LIMIT) pool[index] = buffer
  return buffer
}

/** Aligned scratch for narrowing and widening copies; valid until the next call. */
const scratchPool: ArrayBuffer[] = []
const scratchBuffer = (bytes: number): ArrayBuffer => pooledBuffer(scratchPool, 0, bytes)

type IntArray = Uint8Array | Uint16Array | Uint32Array
type NumberArray = IntArray | Float64Array

const bytesOf = (a: NumberArray, length: number): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, length)

/** Narrowest integer width holding v. */
const widthFor = (v: number): number => (v < 0x100 ? 1 : v < 0x10000 ? 2 : v < TWO_32 ? 4 : 8)

/** How one column (or one list's counts) goes on the wire; decided by the size pass. */
interface Plan {
  /** Bytes per value. */
  width: number
  /** One value stands for every flow. */
  single: boolean
  /** Payload length. */
  bytes: number
  /** IP columns mixing IPv4 and IPv6: the length of the IPv4-flows bitmap, else 0. */
  bitmapBytes: number
  /** IP columns: the payload when it is not the column itself (IPv4 addresses, mixed). */
  payload?: Uint8Array
  /** IP columns mixing IPv4 and IPv6: the IPv4-flows bitmap. */
  bitmap?: Uint8Array
}

/** OR of every word: the OR of values has the same top bit as their max. Unrolled: V8 does not vectorise. */
function orWords(w: Uint32Array, length: number): number {
  let a = 0
  let b = 0
  let c = 0
  let d = 0
  let i = 0
  for (; i + 3 < length; i += 4) {
    a |= w[i]!
    b |= w[i + 1]!
    c |= w[i + 2]!
    d |= w[i + 3]!
  }
  for (; i < length; i++) a |= w[i]!
  return (a | b | c | d) >>> 0
}

/**
 * Whether the first n values of `width` bytes in a are all equal, i.e. the bytes equal themselves
 * shifted by one value. A look at the second value settles most varying columns; the rest is a
 * native compare (memcmp), several times faster than a typed-array loop in JS.
 */
function allEqual(a: NumberArray, n: number, width: number): boolean {
  if (n < 2) return true
  const bytes = new Uint8Array(a.buffer, a.byteOffset, n * width)
  for (let i = 0; i < width; i++) if (bytes[width + i] !== bytes[i]) return false
  if (typeof Buffer === 'function') return Buffer.compare(bytes.subarray(width), bytes.subarray(0, (n - 1) * width)) === 0
  for (let i = 2 * width; i < n * width; i++) if (bytes[i] !== bytes[i - width]) return false
  return true
}

/**
 * Width and form of n integers: one value when all are equal; else the narrowest width holding
 * the OR of the values (same top bit as their max), scanned as 32-bit words (4 u8 or 2 u16
 * values at a time, and one array type in the hot loop). `knownWidth` (string indexes: from the
 * table size; u8: 1) skips the OR.
 */
function planIntegers(a: IntArray, n: number, maxWidth: number, knownWidth = 0): Plan {
  const size = a.BYTES_PER_ELEMENT
  if (allEqual(a, n, size)) {
    const width = knownWidth || Math.min(maxWidth, widthFor(a[0]!))
    const single = n >= SINGLE_VALUE_MIN_FLOWS
    return { width, single, bytes: single ? width : n * width, bitmapBytes: 0 }
  }
  let width = knownWidth
  if (width === 0) {
    const words = (a.byteOffset & 3) === 0 ? (n * size) >> 2 : 0
    const o = orWords(new Uint32Array(a.buffer, a.byteOffset, words), words)
    // Fold the lanes of the word OR into one value's OR, then add the values past the last word.
    let or = size === 1 ? (o | (o >>> 8) | (o >>> 16) | (o >>> 24)) & 0xff : size === 2 ? (o | (o >>> 16)) & 0xffff : o
    for (let r = (words * 4) / size; r < n; r++) or |= a[r]!
    width = Math.min(maxWidth, widthFor(or >>> 0))
  }
  return { width, single: false, bytes: n * width, bitmapBytes: 0 }
}

/** Same for float64-held integers: u64 by their max, MACs always 6 bytes. */
function planFloats(a: Float64Array, n: number, kind: 'u64' | 'mac'): Plan {
  if (allEqual(a, n, 8)) {
    const width = kind === 'mac' ? 6 : widthFor(a[0]!)
    const single = n >= SINGLE_VALUE_MIN_FLOWS
    return { width, single, bytes: single ? width : n * width, bitmapBytes: 0 }
  }
  let width = 6
  if (kind === 'u64') {
    let max = 0
    for (let r = 0; r < n; r++) max = Math.max(max, a[r]!)
    width = widthFor(max)
  }
  return { width, single: false, bytes: n * width, bitmapBytes: 0 }
}

/** Per IP column, a reusable buffer for its packed addresses and bitmap (encoding is synchronous). */
const addressBuffers: ArrayBuffer[] = []

/**
 * IP columns: one address when all are equal; else 4 bytes per flow when every address is
 * IPv4-mapped, 16 when none is, and a mix plus a bitmap when that is smaller than 16 per flow.
 * The mixed and IPv4 payloads are packed here, in one branch-free pass, so writing is a copy.
 */
function planAddresses(column: Uint8Array, n: number, index: number): Plan {
  const w = alignedU32(column, 4 * n)
  if (n >= SINGLE_VALUE_MIN_FLOWS && allEqual(column, n, 16)) {
    return (w[0]! | w[1]! | (w[2]! ^ MAPPED_WORD)) === 0
      ? { width: 4, single: true, bytes: 4, bitmapBytes: 0, payload: column.subarray(12, 16) }
      : { width: 16, single: true, bytes: 16, bitmapBytes: 0 }
  }
  // Packed addresses (4 or 16 bytes each, plus 3 words of slack for the last one) and the bitmap.
  const bitmapBytes = (n + 7) >> 3
  const buffer = pooledBuffer(addressBuffers, index, 16 * n + 12 + bitmapBytes)
  const s = new Uint32Array(buffer, 0, 4 * n + 3)
  const bits = new Uint8Array(buffer, 16 * n + 12, bitmapBytes)
  let p = 0
  let byte = 0
  for (let q = 0; q < n; q++) {
    const w0 = w[4 * q]!
    const w1 = w[4 * q + 1]!
    const w2 = w[4 * q + 2]!
    const w3 = w[4 * q + 3]!
    const notMapped = w0 | w1 | (w2 ^ MAPPED_WORD)
    // Sign bit of x | -x is 1 exactly when x is not 0.
    const mapped = ((notMapped | -notMapped) >>> 31) ^ 1
    // Write all four words; a mapped address keeps only its last one, at p.
    s[p] = w0 ^ ((w0 ^ w3) & -mapped)
    s[p + 1] = w1
    s[p + 2] = w2
    s[p + 3] = w3
    p += 4 - 3 * mapped
    byte |= mapped << (q & 7)
    if ((q & 7) === 7) {
      bits[q >> 3] = byte
      byte = 0
    }
  }
  if ((n & 7) !== 0) bits[n >> 3] = byte
  const mapped = (4 * n - p) / 3
  if (mapped === n) return { width: 4, single: false, bytes: 4 * n, bitmapBytes: 0, payload: bytesOf(s, 4 * n) }
  if (mapped === 0 || 4 * p + bitmapBytes >= 16 * n) return { width: 16, single: false, bytes: 16 * n, bitmapBytes: 0 }
  return { width: 0, single: false, bytes: 4 * p, bitmapBytes, payload: bytesOf(s, 4 * p), bitmap: bits }
}

/** A Uint32Array over bytes (a view when aligned, else an aligned scratch copy). */
function alignedU32(bytes: Uint8Array, words: number): Uint32Array {
  if ((bytes.byteOffset & 3) === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, words)
  const copy = new Uint32Array(scratchBuffer(4 * words), 0, words)
  bytesOf(copy, 4 * words).set(bytes.subarray(0, 4 * words))
  return copy
}

/** A list column's plans: per-flow counts (in elements) and the values. */
interface ListPlan {
  counts: Uint32Array
  countsPlan: Plan
  /** Values used (u32s, triples flattened). */
  used: number
  valuesWidth: number
}

/** Per list column, a reusable buffer for its counts (encoding is synchronous). */
const countsBuffers: ArrayBuffer[] = []

function planList(list: ListData, n: number, divisor: number, index: number): ListPlan | undefined {
  const rows = Math.min(list.rows, n)
  const offsets = list.offsets
  const used = offsets[rows]!
  if (used === 0) return undefined
  const counts = new Uint32Array(pooledBuffer(countsBuffers, index, 4 * n), 0, n)
  let or = 0
  let previous = offsets[0]!
  if (divisor === 1) {
    for (let r = 0; r < rows; r++) {
      const next = offsets[r + 1]!
      const c = next - previous
      previous = next
      counts[r] = c
      or |= c
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const next = offsets[r + 1]!
      const c = ((next - previous) / divisor) | 0
      previous = next
      counts[r] = c
      or |= c
    }
  }
  // Flows past the last list set have none.
  counts.fill(0, rows)
  const width = widthFor(or >>> 0)
  const single = n >= SINGLE_VALUE_MIN_FLOWS && allEqual(counts, n, 4)
  const countsPlan = { width, single, bytes: single ? width : n * width, bitmapBytes: 0 }
  return { counts, countsPlan, used, valuesWidth: widthFor(orWords(list.values, used)) }
}

/** Encodes a batch as flowbus.v1.FlowBatch; only present columns and the first `count` rows are written. */
export function encodeFlowBatch(batch: FlowBatch): Uint8Array {
  const n = batch.count
  const strings = batch.strings
  // Size pass: decides every column's form and allocates the output once, exactly.
  const plans: (Plan | ListPlan | undefined)[] = new Array(flowColumns.length)
  let size = n > 0 ? 1 + varintSize(n) : 0
  const stringLengths = strings.length > 1 ? strings.map(utf8Length) : []
  for (const len of stringLengths) size += 1 + varintSize(len) + len
  if (n > 0) {
    for (let i = 0; i < flowColumns.length; i++) {
      const data = batch.columnData(i)
      if (data === undefined) continue
      const spec = flowColumns[i]!
      if (isList(data)) {
        const plan = planList(data, n, spec.kind === 'u32x3list' ? 3 : 1, i)
        if (plan === undefined) continue
        plans[i] = plan
        size += fieldSize(spec.field, plan.used * plan.valuesWidth) + fieldSize(spec.countsField!, plan.countsPlan.bytes)
        continue
      }
      const kind = spec.kind as FixedKind
      let plan: Plan
      if (kind === 'ip') plan = planAddresses(data as Uint8Array, n, i)
      else if (kind === 'u64' || kind === 'mac') plan = planFloats(data as Float64Array, n, kind)
      else if (kind === 'string') plan = planIntegers(data as Uint32Array, n, 4, widthFor(strings.length - 1))
      else plan = planIntegers(data as IntArray, n, memoryWidth[kind], kind === 'u8' ? 1 : 0)
      plans[i] = plan
      size += fieldSize(spec.field, plan.bytes)
      if (plan.bitmapBytes > 0) size += fieldSize(spec.ipv4FlowsField!, plan.bitmapBytes)
    }
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

  for (let i = 0; i < flowColumns.length; i++) {
    const plan = plans[i]
    if (plan === undefined) continue
    const spec = flowColumns[i]!
    const data = batch.columnData(i)!
    if ('counts' in plan) {
      const list = data as ListData
      pos = writeVarint(out, pos, tagOf(spec.field, WIRE_LEN))
      pos = writeVarint(out, pos, plan.used * plan.valuesWidth)
      pos = writeIntegers(out, pos, list.values, plan.used, plan.valuesWidth)
      pos = writeVarint(out, pos, tagOf(spec.countsField!, WIRE_LEN))
      pos = writeVarint(out, pos, plan.countsPlan.bytes)
      pos = writeColumn(out, pos, 'u32', plan.counts, n, plan.countsPlan)
      continue
    }
    pos = writeVarint(out, pos, tagOf(spec.field, WIRE_LEN))
    pos = writeVarint(out, pos, plan.bytes)
    if (plan.payload !== undefined) {
      out.set(plan.payload, pos)
      pos += plan.bytes
    } else pos = writeColumn(out, pos, spec.kind as FixedKind, data as NumberArray, n, plan)
    if (plan.bitmap !== undefined) {
      pos = writeVarint(out, pos, tagOf(spec.ipv4FlowsField!, WIRE_LEN))
      pos = writeVarint(out, pos, plan.bitmapBytes)
      out.set(plan.bitmap, pos)
      pos += plan.bitmapBytes
    }
  }
  if (pos !== size) throw new Error(`FlowBatch encoder wrote ${pos} bytes into ${size}: size pass out of sync`)
  return out
}

const fieldSize = (field: number, payload: number): number => varintSize(tagOf(field, WIRE_LEN)) + varintSize(payload) + payload

function writeColumn(out: Uint8Array, pos: number, kind: FixedKind, data: NumberArray, n: number, plan: Plan): number {
  const { width, single } = plan
  const rows = single ? 1 : n
  if (kind === 'ip') {
    // 16 bytes per flow (other forms come packed in plan.payload).
    out.set((data as Uint8Array).subarray(0, 16 * rows), pos)
    return pos + 16 * rows
  }
  if (kind === 'mac') {
    const macs = data as Float64Array
    const view = new DataView(out.buffer, out.byteOffset + pos, 6 * rows)
    for (let r = 0; r < rows; r++) {
      const v = macs[r]!
      const hi = Math.floor(v * INV_TWO_32)
      // Big-endian (network order): the DataView default.
      view.setUint16(6 * r, hi)
      view.setUint32(6 * r + 2, v - hi * TWO_32)
    }
    return pos + 6 * rows
  }
  if (single) return writeLittleEndian(out, pos, data[0]!, width)
  return writeIntegers(out, pos, data, n, width)
}

/** Writes n integers as a little-endian array of `width` bytes each (values known to fit). */
function writeIntegers(out: Uint8Array, pos: number, values: NumberArray, n: number, width: number): number {
  const bytes = n * width
  if (!HOST_LITTLE_ENDIAN) {
    for (let r = 0; r < n; r++) pos = writeLittleEndian(out, pos, values[r]!, width)
    return pos
  }
  if (values instanceof Float64Array) {
    if (width === 8) writeU64s(out, pos, values, n)
    else {
      // Typed-array set converts float64 to integers several times slower than a JS loop does.
      const narrow = width === 1 ? out.subarray(pos, pos + n) : width === 2 ? new Uint16Array(scratchBuffer(bytes), 0, n) : new Uint32Array(scratchBuffer(bytes), 0, n)
      for (let r = 0; r < n; r++) narrow[r] = values[r]!
      if (width > 1) out.set(bytesOf(narrow, bytes), pos)
    }
    return pos + bytes
  }
  const source = values.subarray(0, n)
  if (width === 1) out.set(source, pos) // typed-array set converts integer types natively
  else if (source.BYTES_PER_ELEMENT === width) out.set(bytesOf(source, bytes), pos)
  else {
    const narrow = width === 2 ? new Uint16Array(scratchBuffer(bytes), 0, n) : new Uint32Array(scratchBuffer(bytes), 0, n)
    narrow.set(source)
    out.set(bytesOf(narrow, bytes), pos)
  }
  return pos + bytes
}

/** float64 → fixed64 little-endian words, built in aligned scratch then copied once. */
function writeU64s(out: Uint8Array, pos: number, values: Float64Array, n: number): void {
  const s = new Uint32Array(scratchBuffer(8 * n), 0, 2 * n)
  for (let r = 0; r < n; r++) {
    const v = values[r]!
    s[2 * r] = v >>> 0
    s[2 * r + 1] = (v * INV_TWO_32) >>> 0
  }
  out.set(bytesOf(s, 8 * n), pos)
}

/** Column and field name by field number (values, list counts and IPv4 bitmap fields), built once. */
const byField: ({ index: number; companion: boolean; name: string } | undefined)[] = []
flowColumns.forEach((spec, index) => {
  byField[spec.field] = { index, companion: false, name: spec.name }
  if (spec.countsField !== undefined) byField[spec.countsField] = { index, companion: true, name: `${spec.name}Counts` }
  if (spec.ipv4FlowsField !== undefined) byField[spec.ipv4FlowsField] = { index, companion: true, name: `${spec.name}IPv4Flows` }
})

/** Where one field's payload lies. */
interface Segment {
  start: number
  end: number
}

/**
 * A fixed-width payload's form: `width` bytes per value, `single` for one value shared by every
 * flow; `bitmap` for an IP column mixing 4- and 16-byte addresses (width 0).
 */
interface Form {
  width: number
  single: boolean
  bitmap?: Uint8Array
}

/** Set bits of each byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let c = 0
  for (let x = b; x !== 0; x >>= 1) c += x & 1
  return c
})

/** Checks an IP column with an IPv4-flows bitmap: ceil(n / 8) bytes, and 4 or 16 address bytes per flow to match. */
function mixedForm(reader: WireReader, name: string, buf: Uint8Array, n: number, addresses: Segment, bitmap: Segment): Form {
  reader.field = `${name}IPv4Flows`
  if (bitmap.end - bitmap.start !== (n + 7) >> 3) reader.fail(`${bitmap.end - bitmap.start} bytes, expected one bit per flow: ${(n + 7) >> 3} bytes for ${n} flows`, bitmap.start)
  let mapped = 0
  for (let i = bitmap.start; i < bitmap.end; i++) mapped += POPCOUNT[buf[i]!]!
  // Bits past the last flow are padding: not counted.
  if ((n & 7) !== 0) mapped -= POPCOUNT[buf[bitmap.end - 1]! >> (n & 7)]!
  reader.field = name
  const expected = 16 * n - 12 * mapped
  if (addresses.end - addresses.start !== expected) {
    reader.fail(`${addresses.end - addresses.start} bytes, expected ${mapped} IPv4 flows × 4 + ${n - mapped} others × 16 = ${expected} as ${name}IPv4Flows says`, addresses.start)
  }
  return { width: 0, single: false, bitmap: buf.subarray(bitmap.start, bitmap.end) }
}

/** Reads a payload's form from its length: n values of an allowed width first, else one value. */
function formOf(reader: WireReader, length: number, n: number, widths: readonly number[], at: number): Form {
  for (const w of widths) if (length === n * w) return { width: w, single: false }
  for (const w of widths) if (length === w) return { width: w, single: true }
  const allowed = widths.join(', ')
  return reader.fail(`${length} bytes for ${n} flows: expected ${n} × one of {${allowed}} bytes, or one value of {${allowed}} bytes`, at)
}

/**
 * Decodes flowbus.v1.FlowBatch. Accepts any valid encoding (fields in any order, a column sent
 * twice keeps the last), skips unknown fields, and throws WireFormatError naming the field and
 * offset for anything malformed. Columns are copied into fresh aligned arrays.
 */
export function decodeFlowBatch(buf: Uint8Array): FlowBatch {
  const reader = new WireReader(FLOW_BATCH_TYPE, buf)
  let count = 0
  const strings: string[] = []
  const values: (Segment | undefined)[] = []
  /** List counts and IPv4 bitmaps, by column. */
  const companions: (Segment | undefined)[] = []
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
    reader.field = target.name
    if (wireType !== WIRE_LEN) reader.fail(`wire type ${wireType}, expected length-delimited (bytes)`)
    // Every column is `bytes`: a field seen twice keeps the last value, as protobuf says.
    ;(target.companion ? companions : values)[target.index] = reader.lengthDelimited()
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

  // Read every column's form and size first, then carve all arrays out of one allocation: one
  // typed-array allocation per column used to cost more than copying the data.
  let arenaSize = 0
  const present: number[] = []
  const forms: Form[] = []
  const lists: ListForm[] = []
  for (let i = 0; i < flowColumns.length; i++) {
    if (values[i] === undefined && companions[i] === undefined) continue
    present.push(i)
    const spec = flowColumns[i]!
    reader.field = spec.name
    if (spec.kind === 'u32list' || spec.kind === 'u32x3list') {
      const list = listForm(reader, spec.name, spec.kind === 'u32x3list' ? 3 : 1, count, values[i], companions[i])
      lists[i] = list
      arenaSize += align8(4 * (count + 1)) + align8(4 * list.total)
      continue
    }
    const kind = spec.kind as FixedKind
    const bitmap = companions[i]
    const segment = values[i] ?? { start: bitmap!.start, end: bitmap!.start }
    values[i] = segment
    forms[i] =
      bitmap === undefined
        ? formOf(reader, segment.end - segment.start, count, FLOW_WIRE_WIDTHS[kind], segment.start)
        : mixedForm(reader, spec.name, buf, count, segment, bitmap)
    arenaSize += align8(count * memoryWidth[kind])
  }
  const arena = new Arena(arenaSize)
  const columns: ColumnData[] = new Array(flowColumns.length)
  for (const i of present) {
    const spec = flowColumns[i]!
    reader.field = spec.name
    const list = lists[i]
    if (list !== undefined) {
      columns[i] = decodeList(reader, arena, list, count)
      continue
    }
    const segment = values[i]!
    const bytes = buf.subarray(segment.start, segment.end)
    const form = forms[i]!
    switch (spec.kind) {
      case 'ip':
        columns[i] = readAddresses(bytes, form, arena.u8(16 * count), count)
        break
      case 'mac':
        columns[i] = readMACs(bytes, form, arena.f64(count), count)
        break
      case 'u8':
        columns[i] = readIntegers(bytes, form, arena.u8(count))
        break
      case 'u16':
        columns[i] = readIntegers(bytes, form, arena.u16(count))
        break
      case 'u32':
        columns[i] = readIntegers(bytes, form, arena.u32(count))
        break
      case 'u64':
        columns[i] = readIntegers(bytes, form, arena.f64(count))
        break
      case 'string': {
        const a = readIntegers(bytes, form, arena.u32(count))
        // Only a width whose range reaches past the table can hold a bad index; one-byte indexes
        // (the usual case) are checked four at a time on the wire bytes.
        const checked = form.width === 1 && !form.single && bytesBelow(bytes, strings.length)
        if (!checked && 2 ** (8 * form.width) > strings.length) {
          const bad = firstIndexAtLeast(form.single ? a.subarray(0, Math.min(1, count)) : a, strings.length)
          if (bad >= 0) reader.fail(`flow ${bad} refers to string ${a[bad]}, the table has ${strings.length}`, segment.start + form.width * bad)
        }
        columns[i] = a
        break
      }
    }
  }
  return FlowBatch.fromColumns(count, strings, columns)
}

const align8 = (n: number): number => (n + 7) & ~7

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

/**
 * Fills `into` (every element) from a little-endian payload of the given form; widening to the
 * memory width is a native typed-array conversion.
 */
function readIntegers<A extends NumberArray>(bytes: Uint8Array, form: Form, into: A): A {
  const { width } = form
  if (form.single) {
    into.fill(readLittleEndian(bytes, 0, width))
    return into
  }
  const n = into.length
  if (!HOST_LITTLE_ENDIAN) {
    for (let r = 0; r < n; r++) into[r] = readLittleEndian(bytes, r * width, width)
    return into
  }
  if (width === 1) into.set(bytes)
  else if (width === into.BYTES_PER_ELEMENT && width !== 8) bytesOf(into, n * width).set(bytes)
  else if (width === 8) readU64s(bytes, into as Float64Array)
  else into.set(width === 2 ? alignedU16(bytes, n) : alignedU32(bytes, n))
  return into
}

function alignedU16(bytes: Uint8Array, n: number): Uint16Array {
  if ((bytes.byteOffset & 1) === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, n)
  const copy = new Uint16Array(scratchBuffer(2 * n), 0, n)
  bytesOf(copy, 2 * n).set(bytes.subarray(0, 2 * n))
  return copy
}

/** fixed64 values into float64 (exact to 2^53), through an aligned copy of the words. */
function readU64s(bytes: Uint8Array, into: Float64Array): void {
  const n = into.length
  const words = alignedU32(bytes, 2 * n)
  for (let r = 0; r < n; r++) into[r] = words[2 * r + 1]! * TWO_32 + words[2 * r]!
}

/** IP column: 16-byte addresses copied; 4-byte IPv4 addresses expanded to IPv4-mapped. */
function readAddresses(bytes: Uint8Array, form: Form, into: Uint8Array, n: number): Uint8Array {
  if (n === 0) return into
  if (form.bitmap !== undefined) return readMixedAddresses(bytes, form.bitmap, into, n)
  if (form.single) {
    if (form.width === 16) into.set(bytes.subarray(0, 16))
    else {
      into.set(MAPPED_PREFIX)
      into.set(bytes.subarray(0, 4), 12)
    }
    repeatFirstAddress(into, n)
  } else if (form.width === 16) into.set(bytes.subarray(0, 16 * n))
  else {
    // Every flow IPv4: the shared prefix by native copies, then one word per flow.
    into.set(MAPPED_PREFIX)
    repeatFirstAddress(into, n)
    const out = new Uint32Array(into.buffer, into.byteOffset, 4 * n)
    const v4 = alignedU32(bytes, n)
    for (let r = 0; r < n; r++) out[4 * r + 3] = v4[r]!
  }
  return into
}

/** `::ffff:0.0.0.0`, the first 12 bytes every IPv4-mapped address shares. */
const MAPPED_PREFIX = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0)

/** Fills a column of n addresses with copies of its first 16 bytes (native copies, doubling). */
function repeatFirstAddress(into: Uint8Array, n: number): void {
  for (let filled = 16; filled < 16 * n; filled *= 2) into.copyWithin(filled, 0, Math.min(filled, 16 * n - filled))
}

/**
 * Mixed IP column. Typed-array stores cost more than native copies, so the column is first
 * filled with the IPv4-mapped prefix, then an IPv4 flow needs one word and an IPv6 flow four.
 * Every entry is a whole number of words, so one aligned copy of the payload serves them all.
 */
function readMixedAddresses(bytes: Uint8Array, bitmap: Uint8Array, into: Uint8Array, n: number): Uint8Array {
  into.set(MAPPED_PREFIX)
  repeatFirstAddress(into, n)
  const out = new Uint32Array(into.buffer, into.byteOffset, 4 * n)
  const w = alignedU32(bytes, bytes.length >> 2)
  let p = 0
  for (let r = 0; r < n; r++) {
    if ((bitmap[r >> 3]! >> (r & 7)) & 1) out[4 * r + 3] = w[p++]!
    else {
      out[4 * r] = w[p]!
      out[4 * r + 1] = w[p + 1]!
      out[4 * r + 2] = w[p + 2]!
      out[4 * r + 3] = w[p + 3]!
      p += 4
    }
  }
  return into
}

/** MAC column: 6 bytes per flow in network order into 48-bit numbers. */
function readMACs(bytes: Uint8Array, form: Form, into: Float64Array, n: number): Float64Array {
  const rows = form.single ? Math.min(1, n) : n
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let r = 0; r < rows; r++) into[r] = view.getUint16(6 * r) * TWO_32 + view.getUint32(6 * r + 2)
  if (form.single && n > 0) into.fill(into[0]!)
  return into
}

/**
 * Whether every byte is below limit (1 to 256), four bytes per step: in 16-bit lanes holding one
 * byte each, byte + (256 - limit) carries into bit 8 exactly when byte >= limit.
 */
function bytesBelow(bytes: Uint8Array, limit: number): boolean {
  const n = bytes.length
  const words = n >> 2
  const w = alignedU32(bytes, words)
  const k = (256 - limit) * 0x10001
  let carries = 0
  for (let i = 0; i < words; i++) {
    const x = w[i]!
    carries |= ((x & 0xff00ff) + k) | (((x >>> 8) & 0xff00ff) + k)
  }
  for (let i = 4 * words; i < n; i++) carries |= bytes[i]! >= limit ? 0x100 : 0
  return (carries & 0x1000100) === 0
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

/** A list column's counts form and its number of values, checked before the arena is sized. */
interface ListForm {
  name: string
  divisor: number
  counts: Segment | undefined
  countsForm: Form
  values: Segment | undefined
  /** u32 values (triples flattened). */
  total: number
  valuesWidth: number
}

function listForm(reader: WireReader, name: string, divisor: number, n: number, values: Segment | undefined, counts: Segment | undefined): ListForm {
  const valueBytes = values === undefined ? 0 : values.end - values.start
  let total = 0
  let countsForm: Form = { width: 1, single: false }
  if (counts === undefined) {
    if (valueBytes > 0) reader.fail(`${valueBytes} bytes of values but no ${name}Counts field`, values!.start)
  } else {
    reader.field = `${name}Counts`
    countsForm = formOf(reader, counts.end - counts.start, n, FLOW_LIST_WIRE_WIDTHS, counts.start)
    total = countsTotal(reader.buf, counts.start, countsForm, n) * divisor
    reader.field = name
  }
  let valuesWidth = 1
  if (total === 0) {
    if (valueBytes > 0) reader.fail(`${valueBytes} bytes of values, but ${name}Counts are all zero`, values!.start)
  } else {
    const width = valueBytes / total
    if (!FLOW_LIST_WIRE_WIDTHS.includes(width)) {
      reader.field = `${name}Counts`
      reader.fail(`counts add up to ${total} values, the values field has ${valueBytes} bytes (expected ${total} × 1, 2 or 4)`, counts!.start)
    }
    valuesWidth = width
  }
  return { name, divisor, counts, countsForm, values, total, valuesWidth }
}

/** Sum of the per-flow counts. */
function countsTotal(buf: Uint8Array, start: number, form: Form, n: number): number {
  if (form.single) return n * readLittleEndian(buf, start, form.width)
  let sum = 0
  if (form.width === 1) for (let r = start; r < start + n; r++) sum += buf[r]!
  else for (let r = 0; r < n; r++) sum += readLittleEndian(buf, start + r * form.width, form.width)
  return sum
}

function decodeList(reader: WireReader, arena: Arena, list: ListForm, n: number): ListData {
  const buf = reader.buf
  const { divisor, countsForm, total } = list
  const offsets = arena.u32(n + 1)
  offsets[0] = 0
  if (list.counts === undefined) offsets.fill(0)
  else {
    const start = list.counts.start
    const width = countsForm.width
    if (countsForm.single) {
      const c = readLittleEndian(buf, start, width) * divisor
      for (let r = 1; r <= n; r++) offsets[r] = r * c
    } else if (width === 1) {
      let sum = 0
      for (let r = 0; r < n; r++) offsets[r + 1] = sum += buf[start + r]! * divisor
    } else {
      let sum = 0
      for (let r = 0; r < n; r++) offsets[r + 1] = sum += readLittleEndian(buf, start + r * width, width) * divisor
    }
  }
  const valueBytes = list.values === undefined ? new Uint8Array(0) : buf.subarray(list.values.start, list.values.end)
  const values = readIntegers(valueBytes, { width: list.valuesWidth, single: false }, arena.u32(total))
  return { offsets, values, rows: n, length: total }
}

/** The FlowBatch codec of the subject catalogue. */
export const flowBatchCodec: Codec<FlowBatch> = {
  typeName: FLOW_BATCH_TYPE,
  encode: encodeFlowBatch,
  decode: decodeFlowBatch,
}
