// The dimensions a query may group by, taken from the deployment's stored columns, and the SQL
// expression that renders each as text. Names are checked against this list, never spliced as given.
import { type ClickHouseConfig, type StorageColumn, storageColumns } from '@flowbus/runtime'
import { QueryInputError } from './errors.js'

export interface Dimension {
  readonly name: string
  readonly column: StorageColumn
  /** Kept in the aggregated tables: false means a query grouping by it reads the raw table. */
  readonly aggregated: boolean
  /** An address column: its values may be truncated to a prefix length. */
  readonly address: boolean
}

export interface DimensionCatalogue {
  readonly dimensions: readonly Dimension[]
  readonly byName: (name: string) => Dimension | undefined
  /** The dimension called `name` (case-insensitive, as in the filter language); an error naming it and the choices otherwise. */
  readonly resolve: (name: string) => Dimension
  /** Filterable stored columns (the filter language's vocabulary). */
  readonly filterColumns: readonly StorageColumn[]
  /** Whether a column is in the aggregated tables. */
  readonly isAggregated: (column: string) => boolean
}

export const makeDimensionCatalogue = (config: Pick<ClickHouseConfig, 'columns'>): DimensionCatalogue => {
  const stored = storageColumns(config)
  const dimensions = stored
    .filter((c) => c.dimension)
    .map((column): Dimension => ({ name: column.name, column, aggregated: column.aggregated, address: column.type === 'IPv6' }))
  const byLower = new Map(dimensions.map((d) => [d.name.toLowerCase(), d]))
  const aggregated = new Set(stored.filter((c) => c.aggregated).map((c) => c.name as string))
  return {
    dimensions,
    byName: (name) => byLower.get(name.toLowerCase()),
    resolve: (name) => {
      const found = byLower.get(name.toLowerCase())
      if (found === undefined) {
        throw new QueryInputError(
          `dimension ${JSON.stringify(name.slice(0, 100))} is not a stored dimension; the dimensions query lists them (e.g. SrcAS, DstPort, ExporterName)`,
          'UNKNOWN_DIMENSION',
        )
      }
      return found
    },
    filterColumns: stored.filter((c) => c.filterable),
    isAggregated: (column) => aggregated.has(column),
  }
}

/** How IP address dimensions are truncated: prefix lengths for IPv4 and IPv6 addresses. */
export interface Truncation {
  readonly ipv4PrefixLength: number
  readonly ipv6PrefixLength: number
}

const ident = (name: string) => `\`${name}\``

// IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d) and print without the prefix.
const showAddress = (expression: string) => `replaceRegexpOne(IPv6NumToString(${expression}), '^::ffff:', '')`

/**
 * SQL of the dimension's value in its stored type: what queries group by. Grouping by the native
 * value and rendering the few groups as text afterwards (dimensionText) spares a conversion and a
 * string hash per row, and lets an aggregate projection keyed on the column answer. Only names
 * from the catalogue and integer prefix lengths (checked 0-32 and 0-128 by the caller) reach this text.
 */
export const dimensionKey = (dimension: Dimension, truncation: Truncation): string => {
  const column = ident(dimension.name)
  if (!dimension.address) return column
  const { ipv4PrefixLength: v4, ipv6PrefixLength: v6 } = truncation
  if (v4 >= 32 && v6 >= 128) return column
  const mapped = `(${column} BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'))`
  return `if(${mapped}, tupleElement(IPv6CIDRToRange(${column}, ${96 + v4}), 1), tupleElement(IPv6CIDRToRange(${column}, ${v6}), 1))`
}

/** SQL rendering `value`, an expression of the dimension's stored type (dimensionKey), as a String. */
export const dimensionText = (dimension: Dimension, value: string): string => {
  const type = dimension.column.type
  if (dimension.address) return showAddress(value)
  if (dimension.name === 'DstCommunities') {
    return `arrayStringConcat(arrayMap(c -> concat(toString(bitShiftRight(c, 16)), ':', toString(bitAnd(c, 65535))), ${value}), ' ')`
  }
  if (dimension.name === 'DstLargeCommunities') {
    return `arrayStringConcat(arrayMap(c -> concat(toString(c.1), ':', toString(c.2), ':', toString(c.3)), ${value}), ' ')`
  }
  if (type.startsWith('Array(')) return `arrayStringConcat(arrayMap(x -> toString(x), ${value}), ' ')`
  if (dimension.name === 'SrcMAC' || dimension.name === 'DstMAC') return `MACNumToString(${value})`
  return `toString(${value})`
}

/** SQL rendering the dimension's value of each row as a String. */
export const dimensionExpression = (dimension: Dimension, truncation: Truncation): string =>
  dimensionText(dimension, dimensionKey(dimension, truncation))
