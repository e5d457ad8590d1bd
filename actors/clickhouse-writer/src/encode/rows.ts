// FlowBatch → row formats (RowBinary, TabSeparated, JSONCompactEachRow), written byte by byte
// from the columnar arrays: one writer per column, called row after row, no per-row objects.
import type { FlowBatch, ListData } from '@flowbus/bus-schemas'
import { addressesOf, binaryStringTable, listOf, numbersOf, utf8Table, writeVarint } from './columns.js'
import type { ColumnPlan, Scalar } from './plan.js'

/** A growable output buffer. */
class Sink {
  buf: Uint8Array
  pos = 0
  constructor(size: number) {
    this.buf = new Uint8Array(Math.max(1024, size))
  }
  ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return
    const grown = new Uint8Array(Math.max(this.pos + more, this.buf.length * 2))
    grown.set(this.buf.subarray(0, this.pos))
    this.buf = grown
  }
}

type RowWriter = (sink: Sink, row: number) => void

const TWO32 = 4294967296

// ---- binary (RowBinary) ---------------------------------------------------------------------

const putLE = (b: Uint8Array, p: number, v: number, bytes: number): void => {
  switch (bytes) {
    case 1:
      b[p] = v
      return
    case 2:
      b[p] = v
      b[p + 1] = v >>> 8
      return
    case 4:
      b[p] = v
      b[p + 1] = v >>> 8
      b[p + 2] = v >>> 16
      b[p + 3] = v >>> 24
      return
    default: {
      putLE(b, p, v >>> 0, 4)
      putLE(b, p + 4, (v / TWO32) >>> 0, 4)
      for (let i = 8; i < bytes; i++) b[p + i] = 0
    }
  }
}

const binaryScalar = (s: Scalar): { bytes: number; put: (b: Uint8Array, p: number, v: number) => void } => {
  switch (s.k) {
    case 'uint':
    case 'int':
      return { bytes: s.bytes, put: (b, p, v) => putLE(b, p, v, s.bytes) }
    case 'uint128':
      return { bytes: 16, put: (b, p, v) => putLE(b, p, v, 16) }
    case 'datetime64':
      return { bytes: 8, put: (b, p, v) => putLE(b, p, v * s.scale, 8) }
    case 'float64': {
      const f = new Float64Array(1)
      const u = new Uint8Array(f.buffer)
      return {
        bytes: 8,
        put: (b, p, v) => {
          f[0] = v
          b.set(u, p)
        },
      }
    }
    default:
      throw new Error(`binaryScalar: ${s.k} is not numeric`)
  }
}

function binaryWriter(batch: FlowBatch, plan: ColumnPlan, strings: () => Uint8Array[]): RowWriter {
  const layout = plan.layout
  switch (layout.k) {
    case 'string': {
      const idx = numbersOf(batch, plan)
      const table = strings()
      if (idx === undefined)
        return (s) => {
          s.ensure(1)
          s.buf[s.pos++] = 0
        }
      return (s, r) => {
        const e = table[idx[r]!]!
        s.ensure(e.length)
        const b = s.buf
        for (let i = 0; i < e.length; i++) b[s.pos + i] = e[i]!
        s.pos += e.length
      }
    }
    case 'fixed': {
      const idx = numbersOf(batch, plan)
      const table = utf8Table(batch)
      return (s, r) => {
        s.ensure(layout.n)
        s.buf.fill(0, s.pos, s.pos + layout.n)
        if (idx !== undefined) s.buf.set(table[idx[r]!]!.subarray(0, layout.n), s.pos)
        s.pos += layout.n
      }
    }
    case 'ipv6': {
      const ips = addressesOf(batch, plan)
      return (s, r) => {
        s.ensure(16)
        const b = s.buf
        if (ips === undefined) b.fill(0, s.pos, s.pos + 16)
        else for (let i = 0, o = r * 16; i < 16; i++) b[s.pos + i] = ips[o + i]!
        s.pos += 16
      }
    }
    case 'ipv4': {
      const ips = addressesOf(batch, plan)
      return (s, r) => {
        s.ensure(4)
        const b = s.buf
        const o = r * 16
        for (let i = 0; i < 4; i++) b[s.pos + i] = ips === undefined ? 0 : ips[o + 15 - i]!
        s.pos += 4
      }
    }
    case 'array':
    case 'arrayTuple': {
      const list = listOf(batch, plan)
      const triples = layout.k === 'arrayTuple' || plan.sourceKind === 'u32x3list'
      const width = triples ? 3 : 1
      const elements = layout.k === 'arrayTuple' ? layout.of.map(binaryScalar) : undefined
      const element = layout.k === 'array' ? (layout.of.k === 'uint128' ? undefined : binaryScalar(layout.of)) : undefined
      return (s, r) => {
        const [from, to] = listRange(list, r)
        const count = (to - from) / width
        s.ensure(5 + count * 16)
        s.pos = writeVarint(s.buf, s.pos, count)
        if (list === undefined) return
        const v = list.values
        const b = s.buf
        for (let e = 0; e < count; e++) {
          const at = from + e * width
          if (elements !== undefined) {
            for (let j = 0; j < elements.length; j++) {
              elements[j]!.put(b, s.pos, v[at + j]!)
              s.pos += elements[j]!.bytes
            }
          } else if (element !== undefined) {
            element.put(b, s.pos, v[at]!)
            s.pos += element.bytes
          } else {
            putLE(b, s.pos, v[at + 2]!, 4)
            putLE(b, s.pos + 4, v[at + 1]!, 4)
            putLE(b, s.pos + 8, v[at]!, 4)
            putLE(b, s.pos + 12, 0, 4)
            s.pos += 16
          }
        }
      }
    }
    default: {
      const values = numbersOf(batch, plan)
      const { bytes, put } = binaryScalar(layout)
      return (s, r) => {
        s.ensure(bytes)
        put(s.buf, s.pos, values === undefined ? 0 : values[r]!)
        s.pos += bytes
      }
    }
  }
}

const listRange = (list: ListData | undefined, r: number): [number, number] =>
  list === undefined || r >= list.rows ? [0, 0] : [list.offsets[r]!, list.offsets[r + 1]!]

// ---- text (TabSeparated, JSONCompactEachRow) -------------------------------------------------

interface Dialect {
  readonly rowStart: number[]
  readonly separator: number
  readonly rowEnd: number[]
  /** Escaped and, for JSON, quoted form of a string. */
  readonly string: (s: string) => string
  readonly quote: boolean
  readonly tupleOpen: number
  readonly tupleClose: number
}

const tsv: Dialect = {
  rowStart: [],
  separator: 0x09,
  rowEnd: [0x0a],
  string: (s) => s.replace(/[\\\t\n\r\0]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' })[c]!),
  quote: false,
  tupleOpen: 0x28,
  tupleClose: 0x29,
}

const json: Dialect = {
  rowStart: [0x5b],
  separator: 0x2c,
  rowEnd: [0x5d, 0x0a],
  string: (s) => JSON.stringify(s),
  quote: true,
  tupleOpen: 0x5b,
  tupleClose: 0x5d,
}

/** ASCII digits of a non-negative integer below 2^53. */
const putDigits = (b: Uint8Array, p: number, v: number): number => {
  if (v < 10) {
    b[p] = 48 + v
    return p + 1
  }
  let digits = 0
  for (let x = v; x >= 1; x = Math.floor(x / 10)) digits++
  let end = p + digits
  for (let i = end - 1; i >= p; i--) {
    const q = Math.floor(v / 10)
    b[i] = 48 + (v - q * 10)
    v = q
  }
  return end
}

const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0))

/** IPv6 text ClickHouse parses: `::ffff:a.b.c.d` for IPv4-mapped, eight hex groups otherwise. */
const putIPv6Text = (b: Uint8Array, p: number, ips: Uint8Array | undefined, o: number): number => {
  if (ips === undefined) {
    b[p] = 0x3a
    b[p + 1] = 0x3a
    return p + 2
  }
  let mapped = ips[o + 10] === 0xff && ips[o + 11] === 0xff
  for (let i = 0; mapped && i < 10; i++) if (ips[o + i] !== 0) mapped = false
  if (mapped) {
    for (const c of [0x3a, 0x3a, 0x66, 0x66, 0x66, 0x66, 0x3a]) b[p++] = c
    for (let i = 12; i < 16; i++) {
      p = putDigits(b, p, ips[o + i]!)
      if (i < 15) b[p++] = 0x2e
    }
    return p
  }
  for (let g = 0; g < 8; g++) {
    const hi = ips[o + 2 * g]!
    const lo = ips[o + 2 * g + 1]!
    b[p++] = HEX[hi >> 4]!
    b[p++] = HEX[hi & 15]!
    b[p++] = HEX[lo >> 4]!
    b[p++] = HEX[lo & 15]!
    if (g < 7) b[p++] = 0x3a
  }
  return p
}

const utf8 = new TextEncoder()

function textNumberWriter(layout: Scalar): (b: Uint8Array, p: number, v: number) => number {
  // DateTime64 as integer ticks, zero-padded: the text parsers read a long digit string as
  // ticks but a short one (e.g. "0") as a malformed date.
  if (layout.k === 'datetime64') {
    const width = 10 + layout.precision
    return (b, p, v) => {
      const ticks = Math.floor(v * layout.scale)
      const end = putDigits(b, p, ticks)
      const pad = width - (end - p)
      if (pad <= 0) return end
      b.copyWithin(p + pad, p, end)
      b.fill(0x30, p, p + pad)
      return end + pad
    }
  }
  return putDigits
}

function textWriter(batch: FlowBatch, plan: ColumnPlan, dialect: Dialect, table: () => Uint8Array[]): RowWriter {
  const layout = plan.layout
  const quote = dialect.quote
  switch (layout.k) {
    case 'string':
    case 'fixed': {
      const idx = numbersOf(batch, plan)
      const entries = table()
      return (s, r) => {
        const e = entries[idx === undefined ? 0 : idx[r]!]!
        s.ensure(e.length)
        const b = s.buf
        for (let i = 0; i < e.length; i++) b[s.pos + i] = e[i]!
        s.pos += e.length
      }
    }
    case 'ipv6':
    case 'ipv4': {
      const ips = addressesOf(batch, plan)
      const v4 = layout.k === 'ipv4'
      return (s, r) => {
        s.ensure(44)
        const b = s.buf
        if (quote) b[s.pos++] = 0x22
        if (v4) {
          const o = r * 16
          for (let i = 12; i < 16; i++) {
            s.pos = putDigits(b, s.pos, ips === undefined ? 0 : ips[o + i]!)
            if (i < 15) b[s.pos++] = 0x2e
          }
        } else s.pos = putIPv6Text(b, s.pos, ips, r * 16)
        if (quote) b[s.pos++] = 0x22
      }
    }
    case 'array':
    case 'arrayTuple': {
      const list = listOf(batch, plan)
      const width = layout.k === 'arrayTuple' || plan.sourceKind === 'u32x3list' ? 3 : 1
      const big = layout.k === 'array' && layout.of.k === 'uint128'
      return (s, r) => {
        const [from, to] = listRange(list, r)
        s.ensure(2 + (to - from) * 44)
        const b = s.buf
        b[s.pos++] = 0x5b
        for (let at = from; at < to; at += width) {
          if (at > from) b[s.pos++] = 0x2c
          const v = list!.values
          if (big) {
            const digits = utf8.encode(((BigInt(v[at]!) << 64n) | (BigInt(v[at + 1]!) << 32n) | BigInt(v[at + 2]!)).toString())
            if (quote) b[s.pos++] = 0x22
            b.set(digits, s.pos)
            s.pos += digits.length
            if (quote) b[s.pos++] = 0x22
          } else if (width === 3) {
            b[s.pos++] = dialect.tupleOpen
            for (let j = 0; j < 3; j++) {
              if (j > 0) b[s.pos++] = 0x2c
              s.pos = putDigits(b, s.pos, v[at + j]!)
            }
            b[s.pos++] = dialect.tupleClose
          } else s.pos = putDigits(b, s.pos, v[at]!)
        }
        b[s.pos++] = 0x5d
      }
    }
    default: {
      const values = numbersOf(batch, plan)
      const put = textNumberWriter(layout)
      return (s, r) => {
        s.ensure(32)
        s.pos = put(s.buf, s.pos, values === undefined ? 0 : values[r]!)
      }
    }
  }
}

export type RowFormat = 'RowBinary' | 'TabSeparated' | 'JSONCompactEachRow'

/** Encodes a batch in a row format; `plans` fix the column order of the target INSERT. */
export function encodeRows(batch: FlowBatch, plans: readonly ColumnPlan[], format: RowFormat): Uint8Array {
  const n = batch.count
  const sink = new Sink(n * 200)
  let writers: RowWriter[]
  let start: number[] = []
  let separator = -1
  let end: number[] = []
  if (format === 'RowBinary') {
    let table: Uint8Array[] | undefined
    const strings = () => (table ??= binaryStringTable(utf8Table(batch)))
    writers = plans.map((p) => binaryWriter(batch, p, strings))
  } else {
    const dialect = format === 'TabSeparated' ? tsv : json
    let table: Uint8Array[] | undefined
    const strings = () => (table ??= batch.strings.map((s) => utf8.encode(dialect.string(s))))
    writers = plans.map((p) => textWriter(batch, p, dialect, strings))
    start = dialect.rowStart
    separator = dialect.separator
    end = dialect.rowEnd
  }
  const columns = writers.length
  for (let r = 0; r < n; r++) {
    sink.ensure(start.length)
    for (const c of start) sink.buf[sink.pos++] = c
    for (let c = 0; c < columns; c++) {
      if (c > 0 && separator >= 0) {
        sink.ensure(1)
        sink.buf[sink.pos++] = separator
      }
      writers[c]!(sink, r)
    }
    sink.ensure(end.length)
    for (const c of end) sink.buf[sink.pos++] = c
  }
  return sink.buf.subarray(0, sink.pos)
}

