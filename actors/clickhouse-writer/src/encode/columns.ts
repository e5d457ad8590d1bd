// Column values of a FlowBatch in the shapes every insert encoder needs: fixed-width little-endian
// arrays of the target width, the string table as UTF-8, lists as offsets and values. Pure.
import type { FlowBatch, ListData } from '@flowbus/bus-schemas'
import type { ColumnPlan, Scalar } from './plan.js'

const utf8 = new TextEncoder()
const TWO32 = 4294967296

/** Bytes a scalar takes in binary formats; 0 for variable-length strings. */
export const scalarBytes = (s: Scalar): number => {
  switch (s.k) {
    case 'uint':
    case 'int':
      return s.bytes
    case 'uint128':
    case 'ipv6':
      return 16
    case 'float64':
    case 'datetime64':
      return 8
    case 'ipv4':
      return 4
    case 'fixed':
      return s.n
    case 'string':
      return 0
  }
}

type NumberArray = Uint8Array | Uint16Array | Uint32Array | Float64Array

/** A column's numbers (absent: undefined, every value 0). */
export const numbersOf = (batch: FlowBatch, plan: ColumnPlan): NumberArray | undefined =>
  batch.view(plan.source as never) as NumberArray | undefined

/** A column's list data (absent: undefined, every list empty). */
export const listOf = (batch: FlowBatch, plan: ColumnPlan): ListData | undefined =>
  batch.view(plan.source as never) as ListData | undefined

/** A column's 16-byte addresses (absent: undefined, every address `::`). */
export const addressesOf = (batch: FlowBatch, plan: ColumnPlan): Uint8Array | undefined =>
  batch.view(plan.source as never) as Uint8Array | undefined

/** The batch's string table as UTF-8 bytes, index-aligned with `batch.strings`. */
export const utf8Table = (batch: FlowBatch): Uint8Array[] => batch.strings.map((s) => utf8.encode(s))

/**
 * Writes `count` numbers as little-endian values of the scalar's width into `out` at `offset`.
 * `values` may be undefined (all zero, `out` assumed zeroed) and may be narrower or wider than
 * the target; a typed array already of the target layout is copied with one memcpy.
 */
export function writeNumbers(out: Uint8Array, offset: number, values: NumberArray | undefined, count: number, s: Scalar, base = 0): void {
  if (values === undefined) return
  const bytes = scalarBytes(s)
  if (
    (s.k === 'uint' || s.k === 'int') &&
    !(values instanceof Float64Array) &&
    values.BYTES_PER_ELEMENT === bytes
  ) {
    out.set(new Uint8Array(values.buffer, values.byteOffset + base * bytes, count * bytes), offset)
    return
  }
  const aligned = new ArrayBuffer(count * bytes + 8)
  switch (s.k) {
    case 'uint':
    case 'int':
      if (bytes === 1) new Uint8Array(aligned, 0, count).set(values.subarray(base, base + count))
      else if (bytes === 2) new Uint16Array(aligned, 0, count).set(values.subarray(base, base + count))
      else if (bytes === 4) new Uint32Array(aligned, 0, count).set(values.subarray(base, base + count))
      else {
        const words = new Uint32Array(aligned, 0, count * 2)
        for (let i = 0; i < count; i++) {
          const v = values[base + i]!
          words[2 * i] = v >>> 0
          words[2 * i + 1] = (v / TWO32) >>> 0
        }
      }
      break
    case 'uint128': {
      const words = new Uint32Array(aligned, 0, count * 4)
      for (let i = 0; i < count; i++) {
        const v = values[base + i]!
        words[4 * i] = v >>> 0
        words[4 * i + 1] = (v / TWO32) >>> 0
      }
      break
    }
    case 'float64':
      new Float64Array(aligned, 0, count).set(values.subarray(base, base + count))
      break
    case 'datetime64': {
      const words = new Uint32Array(aligned, 0, count * 2)
      for (let i = 0; i < count; i++) {
        const v = values[base + i]! * s.scale
        words[2 * i] = v >>> 0
        words[2 * i + 1] = (v / TWO32) >>> 0
      }
      break
    }
    default:
      throw new Error(`writeNumbers: ${s.k} is not numeric`)
  }
  out.set(new Uint8Array(aligned, 0, count * bytes), offset)
}

/** Length of the LEB128 varint ClickHouse uses for string lengths and RowBinary array sizes. */
export const varintLength = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5)

export function writeVarint(out: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  out[pos++] = v
  return pos
}

/** The string table with each entry's varint length prefix, as ClickHouse binary Strings. */
export const binaryStringTable = (table: readonly Uint8Array[]): Uint8Array[] =>
  table.map((bytes) => {
    const out = new Uint8Array(varintLength(bytes.length) + bytes.length)
    out.set(bytes, writeVarint(out, 0, bytes.length))
    return out
  })
