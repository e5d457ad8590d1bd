// How each stored column is produced from a FlowBatch: the ClickHouse type parsed into a value
// layout, paired with the FlowBatch column it reads. Pure: the insert encoders share this plan.
import { flowColumn, type FlowColumnKind, type FlowColumnName } from '@flowbus/bus-schemas'

/** One column of the target table and where its values come from. */
export interface InsertColumn {
  /** ClickHouse column name. */
  readonly name: string
  /** ClickHouse type as written in the DDL, e.g. `LowCardinality(String)`, `Array(UInt32)`. */
  readonly type: string
  /** FlowBatch column holding the values. */
  readonly source: FlowColumnName
}

/** The binary layout of one scalar value. */
export type Scalar =
  | { readonly k: 'uint'; readonly bytes: 1 | 2 | 4 | 8 }
  | { readonly k: 'int'; readonly bytes: 1 | 2 | 4 | 8 }
  | { readonly k: 'uint128' }
  | { readonly k: 'float64' }
  | { readonly k: 'ipv6' }
  | { readonly k: 'ipv4' }
  | { readonly k: 'string' }
  | { readonly k: 'fixed'; readonly n: number }
  /** DateTime64(p): Int64 ticks; the FlowBatch value is scaled by `scale`. */
  | { readonly k: 'datetime64'; readonly scale: number; readonly precision: number }

export type Layout =
  | Scalar
  | { readonly k: 'array'; readonly of: Scalar }
  /** Array(Tuple(a, b, c)): each element is `width` consecutive list values. */
  | { readonly k: 'arrayTuple'; readonly of: readonly Scalar[] }

export interface ColumnPlan {
  readonly name: string
  /**
   * Type sent in a Native block: the declared type without LowCardinality, and enums as their
   * unsigned number, so the server converts them and refuses a value the enum does not name.
   */
  readonly nativeType: string
  readonly layout: Layout
  readonly source: FlowColumnName
  readonly sourceKind: FlowColumnKind
}

/** A column definition the encoders cannot serve; names the column and what is wrong. */
export class UnsupportedColumn extends Error {
  constructor(column: string, type: string, why: string) {
    super(`column ${column} (${type}): ${why}`)
    this.name = 'UnsupportedColumn'
  }
}

const stripLowCardinality = (type: string): string => {
  let out = type
  for (;;) {
    const next = out.replace(/LowCardinality\(([^()]*(?:\([^()]*\))?[^()]*)\)/, '$1')
    if (next === out) return out
    out = next
  }
}

/** Splits `a, b(c, d), e` at top-level commas. */
const splitTop = (s: string): string[] => {
  const parts: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === '(') depth++
    else if (c === ')') depth--
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i).trim())
      start = i + 1
    }
  }
  parts.push(s.slice(start).trim())
  return parts
}

const inner = (type: string, wrapper: string): string | undefined =>
  type.startsWith(`${wrapper}(`) && type.endsWith(')') ? type.slice(wrapper.length + 1, -1).trim() : undefined

function parseScalar(type: string, sourceKind: FlowColumnKind, column: string): Scalar {
  const t = type.trim()
  switch (t) {
    case 'UInt8':
    case 'Bool':
      return { k: 'uint', bytes: 1 }
    case 'UInt16':
      return { k: 'uint', bytes: 2 }
    case 'UInt32':
    case 'DateTime':
      return { k: 'uint', bytes: 4 }
    case 'UInt64':
      return { k: 'uint', bytes: 8 }
    case 'Int8':
      return { k: 'int', bytes: 1 }
    case 'Int16':
      return { k: 'int', bytes: 2 }
    case 'Int32':
      return { k: 'int', bytes: 4 }
    case 'Int64':
      return { k: 'int', bytes: 8 }
    case 'UInt128':
      return { k: 'uint128' }
    case 'Float64':
      return { k: 'float64' }
    case 'IPv6':
      return { k: 'ipv6' }
    case 'IPv4':
      return { k: 'ipv4' }
    case 'String':
      return { k: 'string' }
  }
  if (t.startsWith('DateTime(')) return { k: 'uint', bytes: 4 }
  if (t.startsWith('Enum8(')) return { k: 'uint', bytes: 1 }
  if (t.startsWith('Enum16(')) return { k: 'uint', bytes: 2 }
  const fixed = /^FixedString\((\d+)\)$/.exec(t)
  if (fixed) return { k: 'fixed', n: Number(fixed[1]) }
  const dt64 = /^DateTime64\((\d)(?:\s*,.*)?\)$/.exec(t)
  if (dt64) {
    // FlowBatch times: u32 columns are seconds, u64 ones milliseconds (FlowStartTime/FlowEndTime).
    const precision = Number(dt64[1])
    const sourceDigits = sourceKind === 'u64' ? 3 : 0
    return { k: 'datetime64', scale: 10 ** (precision - sourceDigits), precision }
  }
  throw new UnsupportedColumn(column, type, 'type not supported by the insert encoders')
}

const compatible = (layout: Layout, kind: FlowColumnKind): boolean => {
  switch (kind) {
    case 'u32list':
      return layout.k === 'array' && layout.of.k !== 'string' && layout.of.k !== 'ipv6'
    case 'u32x3list':
      return (layout.k === 'arrayTuple' && layout.of.length === 3) || (layout.k === 'array' && layout.of.k === 'uint128')
    case 'ip':
      return layout.k === 'ipv6' || layout.k === 'ipv4'
    case 'string':
      return layout.k === 'string' || layout.k === 'fixed'
    default:
      return layout.k !== 'array' && layout.k !== 'arrayTuple' && layout.k !== 'ipv6' && layout.k !== 'ipv4' && layout.k !== 'string' && layout.k !== 'fixed'
  }
}

/** Parses the column types once; throws UnsupportedColumn naming the first column it cannot encode. */
export function planColumns(columns: readonly InsertColumn[]): ColumnPlan[] {
  return columns.map((column) => {
    const spec = flowColumn(column.source)
    if (!spec) throw new UnsupportedColumn(column.name, column.type, `unknown FlowBatch column ${column.source}`)
    const declared = stripLowCardinality(column.type.trim())
    const nativeType = declared.startsWith('Enum8(') ? 'UInt8' : declared.startsWith('Enum16(') ? 'UInt16' : declared
    if (/Nullable\(/.test(nativeType)) throw new UnsupportedColumn(column.name, column.type, 'Nullable columns are not produced from flows')
    const array = inner(nativeType, 'Array')
    let layout: Layout
    if (array !== undefined) {
      const tuple = inner(array, 'Tuple')
      layout =
        tuple !== undefined
          ? { k: 'arrayTuple', of: splitTop(tuple).map((t) => parseScalar(t.replace(/^\w+\s+(?=[A-Z])/, ''), 'u32', column.name)) }
          : { k: 'array', of: parseScalar(array, 'u32', column.name) }
    } else layout = parseScalar(declared, spec.kind, column.name)
    if (!compatible(layout, spec.kind)) {
      throw new UnsupportedColumn(column.name, column.type, `cannot hold the ${spec.kind} values of FlowBatch column ${column.source}`)
    }
    return { name: column.name, nativeType, layout, source: column.source, sourceKind: spec.kind }
  })
}
