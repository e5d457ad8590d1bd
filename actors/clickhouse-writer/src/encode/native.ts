// FlowBatch → one ClickHouse Native block. Native is columnar like FlowBatch, so most columns are
// one memcpy of a typed array, and string columns travel as LowCardinality: the batch's string
// table as the dictionary plus the indexes it already holds. Sizes are known up front.
import type { FlowBatch } from '@flowbus/bus-schemas'
import {
  addressesOf,
  binaryStringTable,
  listOf,
  numbersOf,
  scalarBytes,
  utf8Table,
  varintLength,
  writeNumbers,
  writeVarint,
} from './columns.js'
import type { ColumnPlan } from './plan.js'

const utf8 = new TextEncoder()

/** String columns are sent as LowCardinality(String) whatever the target: the engine converts. */
const asDictionary = (plan: ColumnPlan): boolean => plan.layout.k === 'string' && plan.sourceKind === 'string'

/** The type a column has in the block. */
const blockType = (plan: ColumnPlan): string => (asDictionary(plan) ? 'LowCardinality(String)' : plan.nativeType)

/** A column of the encoded blocks: what a reader declares to read them (e.g. file(…, Native, structure)). */
export interface BlockColumn {
  readonly name: string
  readonly type: string
}

const headerBytes = (plan: ColumnPlan): Uint8Array => {
  const name = utf8.encode(plan.name)
  const type = utf8.encode(blockType(plan))
  const out = new Uint8Array(varintLength(name.length) + name.length + varintLength(type.length) + type.length)
  let pos = writeVarint(out, 0, name.length)
  out.set(name, pos)
  pos = writeVarint(out, pos + name.length, type.length)
  out.set(type, pos)
  return out
}

/** A Native-block encoder for a fixed column plan (headers are prepared once). */
export class NativeEncoder {
  readonly #plans: readonly ColumnPlan[]
  readonly #headers: readonly Uint8Array[]
  /** The blocks' columns, in order, with the types they have in the block. */
  readonly columns: readonly BlockColumn[]

  constructor(plans: readonly ColumnPlan[]) {
    this.#plans = plans
    this.#headers = plans.map(headerBytes)
    this.columns = plans.map((p) => ({ name: p.name, type: blockType(p) }))
  }

  encode(batch: FlowBatch): Uint8Array {
    const n = batch.count
    const strings = this.#plans.some((p) => p.layout.k === 'string' || p.layout.k === 'fixed')
      ? binaryStringTable(utf8Table(batch))
      : []
    // Size pass: exact, so the block is written once into a zeroed buffer (absent columns stay 0).
    let size = varintLength(this.#plans.length) + varintLength(n)
    const dictionaryBytes = strings.reduce((a, s) => a + s.length, 0)
    const indexBytes = indexWidth(strings.length)
    for (let c = 0; c < this.#plans.length; c++) {
      const plan = this.#plans[c]!
      size += this.#headers[c]!.length
      const layout = plan.layout
      if (asDictionary(plan)) size += 32 + dictionaryBytes + n * indexBytes
      else if (layout.k === 'string') {
        const idx = numbersOf(batch, plan)
        if (idx === undefined) size += n
        else for (let r = 0; r < n; r++) size += strings[idx[r]!]!.length
      } else if (layout.k === 'array' || layout.k === 'arrayTuple') {
        const list = listOf(batch, plan)
        const values = list === undefined ? 0 : list.offsets[Math.min(list.rows, n)]!
        const perElement = layout.k === 'array' ? scalarBytes(layout.of) : layout.of.reduce((a, s) => a + scalarBytes(s), 0)
        const width = layout.k === 'arrayTuple' || plan.sourceKind === 'u32x3list' ? 3 : 1
        size += 8 * n + (values / width) * perElement
      } else size += n * scalarBytes(layout)
    }
    const out = new Uint8Array(size)
    let pos = writeVarint(out, 0, this.#plans.length)
    pos = writeVarint(out, pos, n)
    for (let c = 0; c < this.#plans.length; c++) {
      const plan = this.#plans[c]!
      const header = this.#headers[c]!
      out.set(header, pos)
      pos += header.length
      pos = writeColumn(out, pos, batch, plan, n, strings)
    }
    if (pos !== size) throw new Error(`Native block size mismatch: wrote ${pos} of ${size} bytes`)
    return out
  }
}

const indexWidth = (keys: number): 1 | 2 | 4 => (keys <= 0x100 ? 1 : keys <= 0x10000 ? 2 : 4)

const putU64 = (out: Uint8Array, pos: number, v: number): number => {
  out[pos] = v
  out[pos + 1] = v >>> 8
  out[pos + 2] = v >>> 16
  out[pos + 3] = v >>> 24
  return pos + 8
}

// LowCardinality in Native (ClickHouse's SerializationLowCardinality): a UInt64 keys version (1,
// shared dictionaries with additional keys), then per block the UInt64 index type with the
// "has additional keys" flag (1 << 9), the number of keys and the keys as a String column (key 0
// is the default value, ''), then the number of rows and one index per row.
const KEYS_VERSION = 1
const HAS_ADDITIONAL_KEYS = 1 << 9

function writeDictionaryColumn(out: Uint8Array, pos: number, idx: ArrayLike<number> | undefined, n: number, strings: Uint8Array[]): number {
  const width = indexWidth(strings.length)
  pos = putU64(out, pos, KEYS_VERSION)
  pos = putU64(out, pos, HAS_ADDITIONAL_KEYS | (width === 1 ? 0 : width === 2 ? 1 : 2))
  pos = putU64(out, pos, strings.length)
  for (const s of strings) {
    out.set(s, pos)
    pos += s.length
  }
  pos = putU64(out, pos, n)
  if (idx !== undefined) {
    if (width === 1) for (let r = 0; r < n; r++) out[pos + r] = idx[r]!
    else if (width === 2)
      for (let r = 0; r < n; r++) {
        const v = idx[r]!
        out[pos + 2 * r] = v
        out[pos + 2 * r + 1] = v >>> 8
      }
    else writeNumbers(out, pos, idx as Uint32Array, n, { k: 'uint', bytes: 4 })
  }
  return pos + n * width
}

function writeColumn(out: Uint8Array, pos: number, batch: FlowBatch, plan: ColumnPlan, n: number, strings: Uint8Array[]): number {
  const layout = plan.layout
  if (asDictionary(plan)) return writeDictionaryColumn(out, pos, numbersOf(batch, plan), n, strings)
  switch (layout.k) {
    case 'string': {
      const idx = numbersOf(batch, plan)
      if (idx === undefined) return pos + n
      for (let r = 0; r < n; r++) {
        const s = strings[idx[r]!]!
        if (s.length === 1) out[pos++] = s[0]!
        else {
          for (let i = 0; i < s.length; i++) out[pos + i] = s[i]!
          pos += s.length
        }
      }
      return pos
    }
    case 'fixed': {
      const idx = numbersOf(batch, plan)
      if (idx !== undefined) {
        for (let r = 0; r < n; r++) {
          const s = strings[idx[r]!]!
          // The binary table entry starts with its varint length; FixedString takes the bytes only.
          const skip = varintLength(s.length - 1)
          const len = Math.min(layout.n, s.length - skip)
          for (let i = 0; i < len; i++) out[pos + r * layout.n + i] = s[skip + i]!
        }
      }
      return pos + n * layout.n
    }
    case 'ipv6': {
      const ips = addressesOf(batch, plan)
      if (ips !== undefined) out.set(ips.subarray(0, n * 16), pos)
      return pos + n * 16
    }
    case 'ipv4': {
      const ips = addressesOf(batch, plan)
      if (ips !== undefined) {
        for (let r = 0; r < n; r++) {
          const o = r * 16
          out[pos + 4 * r] = ips[o + 15]!
          out[pos + 4 * r + 1] = ips[o + 14]!
          out[pos + 4 * r + 2] = ips[o + 13]!
          out[pos + 4 * r + 3] = ips[o + 12]!
        }
      }
      return pos + n * 4
    }
    case 'array':
    case 'arrayTuple': {
      const list = listOf(batch, plan)
      const width = layout.k === 'arrayTuple' || plan.sourceKind === 'u32x3list' ? 3 : 1
      // Offsets: UInt64 cumulative element counts, one per row.
      const offsets = new Uint32Array(2 * n)
      let total = 0
      if (list !== undefined) {
        const rows = Math.min(list.rows, n)
        for (let r = 0; r < n; r++) {
          if (r < rows) total = list.offsets[r + 1]! / width
          offsets[2 * r] = total
        }
      }
      out.set(new Uint8Array(offsets.buffer), pos)
      pos += 8 * n
      if (list === undefined || total === 0) return pos
      const values = list.values
      if (layout.k === 'array' && layout.of.k === 'uint128') {
        // Large community (asn, l1, l2) as one UInt128: asn << 64 | l1 << 32 | l2, little-endian.
        const words = new Uint32Array(total * 4)
        for (let e = 0; e < total; e++) {
          words[4 * e] = values[3 * e + 2]!
          words[4 * e + 1] = values[3 * e + 1]!
          words[4 * e + 2] = values[3 * e]!
        }
        out.set(new Uint8Array(words.buffer), pos)
        return pos + total * 16
      }
      if (layout.k === 'array') {
        writeNumbers(out, pos, values, total, layout.of)
        return pos + total * scalarBytes(layout.of)
      }
      // Tuple elements are stored as separate columns, one after the other.
      for (let j = 0; j < layout.of.length; j++) {
        const element = new Uint32Array(total)
        for (let e = 0; e < total; e++) element[e] = values[width * e + j]!
        writeNumbers(out, pos, element, total, layout.of[j]!)
        pos += total * scalarBytes(layout.of[j]!)
      }
      return pos
    }
    default: {
      writeNumbers(out, pos, numbersOf(batch, plan), n, layout)
      return pos + n * scalarBytes(layout)
    }
  }
}
