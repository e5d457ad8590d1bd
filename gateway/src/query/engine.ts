// Turns the GraphQL questions (time series, top-N, sankey, last flows, exporters) into
// parameterised ClickHouse queries on the right table, and shapes the answers: missing points
// filled with zero, the rest of the top-N as "Other", per-series statistics.
import { type ClickHouseConfig, EXPORTERS_TABLE, FLOWS_TABLE, INTERFACES_TABLE, type StorageColumn, FLOWS_PROJECTION_KEYS, storageColumns, unitSums } from '@flowbus/runtime'
import { type FlowBatch, type FlowColumnName, formatIP, formatMAC, isIPv4Mapped } from '@flowbus/bus-schemas'
import type { CompiledFilter, FilterLanguage } from '../filter-language.js'
import { swapColumnName } from '../filter/index.js'
import { type Dimension, type DimensionCatalogue, type Truncation, dimensionExpression, dimensionKey, dimensionText } from './dimensions.js'
import { QueryInputError } from './errors.js'
import type { QueryOptions, QueryRunner } from './runner.js'
import { type TableChoice, alignStep, chooseTable } from './tables.js'

export type Unit = 'BPS_L3' | 'BPS_L2' | 'PPS' | 'FLOWS' | 'IN_IF_PERCENT' | 'OUT_IF_PERCENT'
export type TopBy = 'AVG' | 'MAX' | 'LAST'
export type GraphType = 'STACKED' | 'STACKED_100' | 'LINES' | 'GRID'

/** Unix seconds, end exclusive. */
export interface Range {
  readonly start: number
  readonly end: number
}

export interface Limits {
  readonly maxPoints: number
  readonly maxRangeSeconds: number
  readonly maxLimit: number
}

export interface GroupedInput {
  readonly range: Range
  readonly filter: string
  readonly dimensions: readonly string[]
  readonly truncation: Truncation
  readonly unit: Unit
  readonly limit: number
}

export interface TimeseriesInput extends GroupedInput {
  readonly points: number
  readonly topBy: TopBy
  readonly bidirectional: boolean
  readonly previousPeriod: boolean
  readonly graphType: GraphType
}

export interface SeriesStats {
  readonly min: number
  readonly max: number
  readonly avg: number
  readonly last: number
  readonly p95: number
  /** Sum of value × step: bits, packets or flows over the range (percent-seconds for % units). */
  readonly total: number
}

export interface Series {
  readonly dimensions: readonly string[]
  readonly name: string
  /** 1: flows as asked; 2: the reverse direction (values negative); 3: the previous period. */
  readonly axis: number
  readonly other: boolean
  readonly values: readonly number[]
  readonly stats: SeriesStats
}

export interface Timeseries {
  readonly start: number
  readonly end: number
  readonly step: number
  readonly times: readonly number[]
  readonly unit: Unit
  readonly graphType: GraphType
  readonly table: TableChoice
  readonly dimensions: readonly string[]
  readonly series: readonly Series[]
  /** The same range one period earlier (previousOffset seconds), total of all flows, on this range's times. */
  readonly previous: Series | null
  readonly previousOffset: number | null
}

export interface TopRow {
  readonly dimensions: readonly string[]
  readonly name: string
  /** Average rate over the range in the unit (bits/s, packets/s, flows/s or %). */
  readonly value: number
  /** value × range seconds. */
  readonly total: number
  /** Share of everything matching the filter, 0-100. */
  readonly percent: number
}

export interface TopN {
  readonly start: number
  readonly end: number
  readonly unit: Unit
  readonly table: TableChoice
  readonly dimensions: readonly string[]
  readonly rows: readonly TopRow[]
  readonly other: TopRow | null
  readonly all: TopRow
}

export interface SankeyLink {
  readonly source: string
  readonly target: string
  readonly value: number
}

export interface Sankey {
  readonly start: number
  readonly end: number
  readonly unit: Unit
  readonly table: TableChoice
  readonly dimensions: readonly string[]
  readonly rows: readonly TopRow[]
  readonly nodes: readonly string[]
  readonly links: readonly SankeyLink[]
}

export type OrderBy = 'TIME_DESC' | 'TIME_ASC' | 'BYTES_DESC' | 'PACKETS_DESC'

const OTHER = 'Other'
const TOTAL = 'Total'

/**
 * Seconds back for the previous-period overlay: the shortest calendar period covering the range.
 * Ranges a little over a period (a "last day" rounded outwards to whole steps) still compare
 * with that period, not with the next one up.
 */
export const previousPeriodOffset = (rangeSeconds: number): number => {
  for (const period of [3600, 86_400, 7 * 86_400, 30 * 86_400]) if (rangeSeconds <= period * 1.1) return period
  return 365 * 86_400
}

/** Nearest-rank percentile of values (0 for none). */
export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1]!
}

export const seriesStats = (values: readonly number[], step: number): SeriesStats => {
  if (values.length === 0) return { min: 0, max: 0, avg: 0, last: 0, p95: 0, total: 0 }
  let min = Infinity
  let max = -Infinity
  let sum = 0
  for (const v of values) {
    min = Math.min(min, v)
    max = Math.max(max, v)
    sum += v
  }
  return { min, max, avg: sum / values.length, last: values[values.length - 1]!, p95: percentile(values, 95), total: sum * step }
}

/**
 * The SQL of a unit's aggregate: summed over the rows of a group (divide by seconds for a rate).
 * The sums are the storage's unitSums, which its aggregate projections hold: written otherwise,
 * ClickHouse would read every row instead of the projection.
 */
const unitAggregate = (unit: Unit, aggregated: boolean): string => {
  switch (unit) {
    case 'BPS_L3':
      return `${unitSums.bytes} * 8`
    case 'BPS_L2':
      // 18 bytes of Ethernet header and FCS per packet, as Akvorado counts L2.
      return `${unitSums.l2Bytes} * 8`
    case 'PPS':
      return unitSums.packets
    case 'FLOWS':
      return aggregated ? 'sum(Flows)' : 'count()'
    case 'IN_IF_PERCENT':
    case 'OUT_IF_PERCENT': {
      const speed = unit === 'IN_IF_PERCENT' ? 'InIfSpeed' : 'OutIfSpeed'
      // Speeds are in Mbps; 0 (unknown) contributes nothing rather than dividing by zero.
      return `sum(if(${speed} = 0, 0, (Bytes + 18 * Packets) * SamplingRate * 8 * 100 / (${speed} * 1000000)))`
    }
  }
}

const unitColumns = (unit: Unit): string[] =>
  unit === 'IN_IF_PERCENT' ? ['InIfSpeed'] : unit === 'OUT_IF_PERCENT' ? ['OutIfSpeed'] : []

const reverseUnit = (unit: Unit): Unit => (unit === 'IN_IF_PERCENT' ? 'OUT_IF_PERCENT' : unit === 'OUT_IF_PERCENT' ? 'IN_IF_PERCENT' : unit)

const seriesName = (dimensions: readonly string[]): string => (dimensions.length === 0 ? TOTAL : dimensions.join(', '))

export interface QueryEngine {
  readonly dimensions: DimensionCatalogue
  readonly timeseries: (input: TimeseriesInput, options: QueryOptions) => Promise<Timeseries>
  readonly topN: (input: GroupedInput, options: QueryOptions) => Promise<TopN>
  readonly sankey: (input: GroupedInput, options: QueryOptions) => Promise<Sankey>
  readonly flows: (input: { range: Range | null; filter: string; limit: number; orderBy: OrderBy }, options: QueryOptions) => Promise<Record<string, unknown>[]>
  readonly exporters: (options: QueryOptions) => Promise<ExporterRow[]>
  readonly flowRate: (seconds: number, options: QueryOptions) => Promise<number>
  readonly values: (column: string, prefix: string, limit: number, options: QueryOptions) => Promise<{ value: string; name: string }[]>
  /**
   * Rows of a live batch matching a filter, evaluated by ClickHouse over the batch's rows passed
   * as a query parameter (nothing stored): the same semantics as stored queries. Undefined for
   * an empty filter (every row matches).
   */
  readonly liveSelector: (filter: string, options: QueryOptions) => ((batch: FlowBatch) => Promise<number[]>) | undefined
}

export interface InterfaceRow {
  readonly index: number
  readonly name: string
  readonly description: string
  readonly speed: number
  readonly connectivity: string
  readonly provider: string
  readonly boundary: string
  readonly lastSeen: number
}

export interface ExporterRow {
  readonly address: string
  readonly name: string
  readonly group: string
  readonly role: string
  readonly site: string
  readonly region: string
  readonly tenant: string
  readonly lastSeen: number
  readonly interfaces: InterfaceRow[]
}

export interface EngineSettings {
  readonly clickhouse: Pick<ClickHouseConfig, 'retention' | 'columns' | 'database'>
  readonly limits: Limits
  readonly filters: FilterLanguage
  readonly now?: () => number
}

const timeCondition = 'TimeReceived >= toDateTime({g_start:UInt32}) AND TimeReceived < toDateTime({g_end:UInt32})'

/** The address text of an IPv6 column, IPv4-mapped ones as dotted quads. */
const addressText = (column: string) => `replaceRegexpOne(IPv6NumToString(\`${column}\`), '^::ffff:', '')`

const enumLabels: Record<string, readonly string[]> = {
  InIfBoundary: ['undefined', 'external', 'internal'],
  OutIfBoundary: ['undefined', 'external', 'internal'],
  FlowDirection: ['undefined', 'ingress', 'egress'],
}

/** A batch row's value of a stored column, as JSONEachRow input for its ClickHouse type. */
const liveValue = (column: StorageColumn): ((batch: FlowBatch, row: number) => unknown) => {
  const name = column.name as FlowColumnName as never
  const labels = enumLabels[column.name]
  switch (column.flow.kind) {
    case 'ip':
      return (b, r) => {
        const address = b.getIP(name, r)
        return isIPv4Mapped(address) ? `::ffff:${formatIP(address)}` : formatIP(address)
      }
    case 'string':
      return (b, r) => b.getString(name, r)
    case 'u32list':
      return (b, r) => Array.from(b.getList(name, r))
    case 'u32x3list':
      return (b, r) => {
        const values = b.getList(name, r)
        const triples: number[][] = []
        for (let i = 0; i + 2 < values.length; i += 3) triples.push([values[i]!, values[i + 1]!, values[i + 2]!])
        return triples
      }
    default:
      return labels ? (b, r) => labels[b.getNumber(name, r)] ?? 'undefined' : (b, r) => b.getNumber(name, r)
  }
}

export const makeQueryEngine = (runner: QueryRunner, catalogue: DimensionCatalogue, settings: EngineSettings): QueryEngine => {
  const { limits, filters } = settings
  const now = settings.now ?? (() => Math.floor(Date.now() / 1000))
  const db = runner.database
  const filterColumns = catalogue.filterColumns
  const stored: readonly StorageColumn[] = storageColumns(settings.clickhouse)

  const checkRange = (range: Range, what: string): void => {
    if (!Number.isFinite(range.start) || !Number.isFinite(range.end) || range.end <= range.start) {
      throw new QueryInputError(`${what}: range.end must be after range.start`, 'BAD_ARGUMENT')
    }
    if (range.end - range.start > limits.maxRangeSeconds) {
      throw new QueryInputError(
        `${what}: the range covers ${Math.round((range.end - range.start) / 3600)} h, more than gateway.limits.maxRange (${Math.round(limits.maxRangeSeconds / 3600)} h)`,
        'RANGE_TOO_LONG',
      )
    }
  }
  const checkLimit = (limit: number, what: string): void => {
    if (!Number.isInteger(limit) || limit < 1) throw new QueryInputError(`${what}: limit must be a positive integer`, 'BAD_ARGUMENT')
    if (limit > limits.maxLimit) {
      throw new QueryInputError(`${what}: limit ${limit} is above gateway.limits.maxLimit (${limits.maxLimit})`, 'LIMIT_TOO_HIGH')
    }
  }
  const checkTruncation = (t: Truncation): void => {
    if (!Number.isInteger(t.ipv4PrefixLength) || t.ipv4PrefixLength < 0 || t.ipv4PrefixLength > 32) {
      throw new QueryInputError('ipv4PrefixLength must be an integer from 0 to 32', 'BAD_ARGUMENT')
    }
    if (!Number.isInteger(t.ipv6PrefixLength) || t.ipv6PrefixLength < 0 || t.ipv6PrefixLength > 128) {
      throw new QueryInputError('ipv6PrefixLength must be an integer from 0 to 128', 'BAD_ARGUMENT')
    }
  }
  const resolveDimensions = (names: readonly string[], what: string, min = 0): Dimension[] => {
    if (names.length < min) throw new QueryInputError(`${what} needs at least ${min} dimensions`, 'BAD_ARGUMENT')
    if (names.length > 10) throw new QueryInputError(`${what}: at most 10 dimensions`, 'BAD_ARGUMENT')
    return names.map((n) => catalogue.resolve(n))
  }
  const compile = (filter: string, swap: boolean): CompiledFilter =>
    filter.trim() === '' ? { sql: '', params: {}, columns: [] } : filters.compile(filter, filterColumns, { swapDirection: swap, paramPrefix: swap ? 'r' : 'p' })

  const swapped = (dims: readonly Dimension[]): Dimension[] => dims.map((d) => catalogue.byName(swapColumnName(d.name)) ?? d)
  const where = (filter: CompiledFilter): string => (filter.sql === '' ? timeCondition : `${timeCondition} AND (${filter.sql})`)
  const from = (table: TableChoice) => `${db}.\`${table.table}\``
  // Columns of the raw table's hourly projection (the storage's FLOWS_PROJECTION_KEYS).
  const projectedKeys = new Set<string>(FLOWS_PROJECTION_KEYS)

  /** Everything a grouped query needs once the table is chosen. */
  const prepare = (input: GroupedInput, step: number, what: string, bidirectional: boolean) => {
    checkRange(input.range, what)
    checkLimit(input.limit, what)
    checkTruncation(input.truncation)
    const dims = resolveDimensions(input.dimensions, what)
    const direct = compile(input.filter, false)
    const reverse = bidirectional ? compile(input.filter, true) : undefined
    const reverseDims = swapped(dims)
    const columns = [
      ...dims.map((d) => d.name),
      ...direct.columns,
      ...unitColumns(input.unit),
      ...(bidirectional ? [...reverseDims.map((d) => d.name), ...(reverse?.columns ?? []), ...unitColumns(reverseUnit(input.unit))] : []),
    ]
    const table = chooseTable(settings.clickhouse, catalogue.isAggregated, {
      start: input.range.start,
      end: input.range.end,
      step,
      columns,
      nowSeconds: now(),
    })
    return { dims, direct, reverse, reverseDims, table }
  }

  const rows = <T>(sql: string, params: Record<string, unknown>, options: QueryOptions) => runner.rows<T>(sql, params, options)

  const timeseries: QueryEngine['timeseries'] = async (input, options) => {
    const what = 'timeseries'
    if (!Number.isInteger(input.points) || input.points < 1) throw new QueryInputError(`${what}: points must be a positive integer`, 'BAD_ARGUMENT')
    if (input.points > limits.maxPoints) {
      throw new QueryInputError(`${what}: ${input.points} points is above gateway.limits.maxPoints (${limits.maxPoints})`, 'TOO_MANY_POINTS')
    }
    const wanted = Math.max(1, Math.ceil((input.range.end - input.range.start) / input.points))
    const { dims, direct, reverse, reverseDims, table } = prepare(input, wanted, what, input.bidirectional)
    const step = alignStep(wanted, table.resolution)
    const start = Math.floor(input.range.start / step) * step
    const end = Math.ceil(input.range.end / step) * step
    const times: number[] = []
    for (let t = start; t < end; t += step) times.push(t)
    const value = unitAggregate(input.unit, table.aggregated)
    const bucket = 'intDiv(toUInt32(TimeReceived), {g_step:UInt32}) * {g_step:UInt32}'
    const directKeys = dims.map((d) => ({ key: dimensionKey(d, input.truncation), text: (v: string) => dimensionText(d, v) }))
    const textKeys = (keys: readonly { key: string; text: (v: string) => string }[]) => keys.map((k) => k.text(k.key))
    const aliases = dims.map((_, i) => `d${i}`).join(', ')
    const selectKeys = textKeys(directKeys).map((e, i) => `${e} AS d${i}`).join(', ')

    // One statement per direction, one scan each. The flows are grouped per step and key, and the
    // keys outside the top fold into Other over those grouped rows (a few per key and step), not
    // per stored row. The direct direction ranks its keys in the same statement: each key's
    // points gathered in arrays, the keys ranked over those (one row per key), Other's points
    // summed by step (a ranking subquery read the range a second time; window functions over
    // every grouped row cost more than the scan). The reverse direction keeps the direct
    // ranking, from that subquery. The series are then ordered in JS by the same ranking.
    const rankWhere = (filter: CompiledFilter) =>
      `TimeReceived >= toDateTime({g_rank_start:UInt32}) AND TimeReceived < toDateTime({g_end:UInt32})${filter.sql === '' ? '' : ` AND (${filter.sql})`}`
    const ranked =
      input.topBy === 'MAX'
        ? `SELECT ${aliases}, max(v) AS score FROM (SELECT ${bucket} AS t, ${selectKeys}, ${value} AS v FROM ${from(table)} WHERE ${rankWhere(direct)} GROUP BY t, ${aliases})
           GROUP BY ${aliases} ORDER BY score DESC, ${aliases} LIMIT {g_limit:UInt32}`
        : `SELECT ${selectKeys}, ${value} AS score FROM ${from(table)} WHERE ${rankWhere(direct)}
           GROUP BY ${aliases} ORDER BY score DESC, ${aliases} LIMIT {g_limit:UInt32}`
    const topKeys = `(SELECT ${aliases} FROM (${ranked}))`
    const rankParams = { ...direct.params, g_limit: input.limit, g_rank_start: input.topBy === 'LAST' ? end - step : start }
    // The same ranking as `ranked`, over a key's points: its score, and for LAST only keys with
    // flows in the last step compete.
    const keyScore =
      input.topBy === 'MAX' ? 'max(v)' : input.topBy === 'LAST' ? 'sumIf(v, t >= {g_rank_start:UInt32})' : 'sum(v)'
    const keyRanked = input.topBy === 'LAST' ? 'max(t >= {g_rank_start:UInt32})' : '1'
    const other = dims.map(() => OTHER)
    const series = async (
      keys: readonly { key: string; text: (v: string) => string }[],
      filter: CompiledFilter,
      unit: Unit,
      rankHere: boolean,
    ): Promise<Map<string, { dims: string[]; values: number[] }>> => {
      const columns = keys.map((_, i) => `c${i}`).join(', ')
      // Grouped by the stored values, rendered as text once grouped (a few rows per key and step).
      const grouped = `SELECT ${bucket} AS t${keys.map((e, i) => `, ${e.key} AS n${i}`).join('')}, ${unitAggregate(unit, table.aggregated)} AS v
        FROM ${from(table)} WHERE ${where(filter)} GROUP BY t${keys.map((_, i) => `, n${i}`).join('')}`
      const perStep = keys.length === 0 ? grouped : `SELECT t${keys.map((e, i) => `, ${e.text(`n${i}`)} AS c${i}`).join('')}, v FROM (${grouped})`
      const fold = (inTop: string) => keys.map((_, i) => `if(${inTop}, c${i}, {g_other:String}) AS k${i}`).join(', ')
      const outer = keys.map((_, i) => `k${i}`).join(', ')
      const sql =
        keys.length === 0
          ? `${perStep} ORDER BY t`
          : rankHere
            ? `SELECT ${fold('position <= {g_limit:UInt32} AND ranked')}, sumMap(ts, vs) AS points FROM (
                 SELECT ${columns}, ts, vs, ranked, row_number() OVER (ORDER BY ranked DESC, score DESC, ${columns}) AS position FROM (
                   SELECT ${columns}, groupArray(t) AS ts, groupArray(v) AS vs, ${keyScore} AS score, ${keyRanked} AS ranked
                   FROM (${perStep}) GROUP BY ${columns}))
               GROUP BY ${outer}`
            : `SELECT t, ${fold(`(${columns}) IN ${topKeys}`)}, sum(v) AS v FROM (${perStep}) GROUP BY t, ${outer} ORDER BY t`
      const params = { ...(keys.length > 0 ? rankParams : {}), ...filter.params, g_start: start, g_end: end, g_step: step, g_other: OTHER }
      const answer = await rows<Record<string, unknown>>(sql, params, options)
      // Rows of (t, keys, v), the ranked form's point arrays unfolded.
      const result: Record<string, unknown>[] =
        keys.length > 0 && rankHere
          ? answer.flatMap((row) => {
              const [ts, vs] = row.points as [number[], number[]]
              return ts.map((t, j) => ({ ...row, t, v: vs[j] }))
            })
          : answer
      const byKey = new Map<string, { dims: string[]; values: number[] }>()
      for (const row of result) {
        const rowDims = keys.map((_, i) => String(row[`k${i}`]))
        const key = JSON.stringify(rowDims)
        let entry = byKey.get(key)
        if (!entry) byKey.set(key, (entry = { dims: rowDims, values: new Array<number>(times.length).fill(0) }))
        const index = (Number(row.t) - start) / step
        if (index >= 0 && index < times.length) entry.values[index] = Number(row.v) / step
      }
      return byKey
    }
    const otherKey = JSON.stringify(other)
    const score = (values: readonly number[]) =>
      input.topBy === 'MAX' ? Math.max(...values) : input.topBy === 'LAST' ? values[values.length - 1]! : values.reduce((a, b) => a + b, 0)
    const compareDims = (a: readonly string[], b: readonly string[]) => {
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1
      return 0
    }
    const toSeries = (entries: { dims: string[]; values: number[] }[], axis: number, sign: number): Series[] =>
      entries.map((entry) => {
        const values = sign < 0 ? entry.values.map((v) => (v === 0 ? 0 : -v)) : entry.values
        const isOther = dims.length > 0 && JSON.stringify(entry.dims) === otherKey
        return { dimensions: entry.dims, name: seriesName(entry.dims), axis, other: isOther, values, stats: seriesStats(values, step) }
      })
    const directSeries = await series(directKeys, direct, input.unit, true)
    const topEntries = [...directSeries.entries()]
      .filter(([key]) => key !== otherKey || dims.length === 0)
      .map(([, entry]) => entry)
      .sort((a, b) => score(b.values) - score(a.values) || compareDims(a.dims, b.dims))
    const order = [...new Set([...topEntries.map((e) => JSON.stringify(e.dims)), otherKey])]
    const inOrder = (byKey: Map<string, { dims: string[]; values: number[] }>) =>
      order.flatMap((key) => (byKey.has(key) ? [byKey.get(key)!] : []))
    const result: Series[] = toSeries(inOrder(directSeries), 1, 1)
    if (input.bidirectional && reverse) {
      const reverseKeys = reverseDims.map((d) => ({ key: dimensionKey(d, input.truncation), text: (v: string) => dimensionText(d, v) }))
      result.push(...toSeries(inOrder(await series(reverseKeys, reverse, reverseUnit(input.unit), false)), 2, -1))
    }
    let previous: Series | null = null
    let previousOffset: number | null = null
    if (input.previousPeriod) {
      previousOffset = previousPeriodOffset(end - start)
      const sql = `SELECT ${bucket} AS t, ${value} AS v FROM ${from(table)} WHERE ${where(direct)} GROUP BY t ORDER BY t`
      const values = new Array<number>(times.length).fill(0)
      for (const row of await rows<{ t: number; v: number }>(sql, { ...direct.params, g_start: start - previousOffset, g_end: end - previousOffset, g_step: step }, options)) {
        const index = (Number(row.t) + previousOffset - start) / step
        if (index >= 0 && index < times.length) values[index] = Number(row.v) / step
      }
      previous = { dimensions: [], name: 'Previous period', axis: 3, other: false, values, stats: seriesStats(values, step) }
    }
    return {
      start,
      end,
      step,
      times,
      unit: input.unit,
      graphType: input.graphType,
      table,
      dimensions: dims.map((d) => d.name),
      series: result,
      previous,
      previousOffset,
    }
  }

  /** Top-N and sankey want a table fine enough that the range edges stay within ~4 % of it. */
  const summaryStep = (range: Range) => Math.max(1, Math.floor((range.end - range.start) / 24))

  /**
   * A summary's condition and parameters. On the raw table, for a range where an hourly table
   * would do (a step of an hour or more), the flows of the whole hours starting in the range, as
   * flows_1h0m0s would count them: TimeReceived from the first whole hour at or after the start
   * to the first at or after the end (UTC hours), a plain comparison the primary key and
   * partitions prune on, no function per row. When the hourly projection of `flows` has every
   * column the question reads (ports, protocol), the same hours are written on
   * toStartOfHour(TimeReceived), its key: ClickHouse then reads the projection's hourly sums.
   */
  const summaryWhere = (table: TableChoice, range: Range, filter: CompiledFilter, columns: readonly string[], unit: Unit) => {
    const plain = { sql: where(filter), params: { g_start: range.start, g_end: range.end } }
    if (table.aggregated || summaryStep(range) < 3600) return plain
    const hours = { g_start: Math.ceil(range.start / 3600) * 3600, g_end: Math.ceil(range.end / 3600) * 3600 }
    const projected = unit !== 'IN_IF_PERCENT' && unit !== 'OUT_IF_PERCENT' && [...columns, ...filter.columns].every((c) => projectedKeys.has(c))
    if (!projected) return { sql: where(filter), params: hours }
    const time = 'toStartOfHour(TimeReceived) >= toDateTime({g_start:UInt32}) AND toStartOfHour(TimeReceived) < toDateTime({g_end:UInt32})'
    return { sql: filter.sql === '' ? time : `${time} AND (${filter.sql})`, params: hours }
  }

  const row = (dims: readonly string[], volume: number, seconds: number, all: number): TopRow => ({
    dimensions: dims,
    name: seriesName(dims),
    value: volume / seconds,
    total: volume,
    percent: all === 0 ? 0 : (100 * volume) / all,
  })

  const topN: QueryEngine['topN'] = async (input, options) => {
    const what = 'topN'
    const { dims, direct, table } = prepare(input, summaryStep(input.range), what, false)
    const value = unitAggregate(input.unit, table.aggregated)
    const condition = summaryWhere(table, input.range, direct, dims.map((d) => d.name), input.unit)
    const params = { ...direct.params, ...condition.params, g_limit: input.limit }
    const seconds = input.range.end - input.range.start
    // Grouped by the stored values, rendered as text once grouped.
    const keys = dims.map((d, i) => `${dimensionKey(d, input.truncation)} AS n${i}`).join(', ')
    const texts = dims.map((d, i) => `${dimensionText(d, `n${i}`)} AS d${i}`).join(', ')
    const natives = dims.map((_, i) => `n${i}`).join(', ')
    const aliases = dims.map((_, i) => `d${i}`).join(', ')
    // One scan: the total of all groups rides along the top rows (a window over the grouped
    // rows); a second statement for it read the range twice (the raw table for raw-only dimensions).
    const grouped =
      dims.length === 0
        ? await rows<Record<string, string | number>>(`SELECT ${value} AS all FROM ${from(table)} WHERE ${condition.sql}`, params, options)
        : await rows<Record<string, string | number>>(
            `SELECT ${texts}, v, all FROM (
               SELECT ${keys}, ${value} AS v, sum(v) OVER () AS all FROM ${from(table)} WHERE ${condition.sql} GROUP BY ${natives}
             ) ORDER BY v DESC, ${aliases} LIMIT {g_limit:UInt32}`,
            params,
            options,
          )
    const all = Number(grouped[0]?.all ?? 0)
    const top = dims.length === 0 ? [] : grouped.map((r) => ({ dims: dims.map((_, i) => String(r[`d${i}`])), v: Number(r.v) }))
    const topRows = top.map((r) => row(r.dims, Number(r.v), seconds, all))
    const rest = all - topRows.reduce((s, r) => s + r.total, 0)
    return {
      start: input.range.start,
      end: input.range.end,
      unit: input.unit,
      table,
      dimensions: dims.map((d) => d.name),
      rows: topRows,
      other: dims.length > 0 && rest > 1e-9 * Math.max(1, all) ? row(dims.map(() => OTHER), rest, seconds, all) : null,
      all: row([], all, seconds, all),
    }
  }

  const sankey: QueryEngine['sankey'] = async (input, options) => {
    const what = 'sankey'
    resolveDimensions(input.dimensions, what, 2)
    const { dims, direct, table } = prepare(input, summaryStep(input.range), what, false)
    const value = unitAggregate(input.unit, table.aggregated)
    const seconds = input.range.end - input.range.start
    const condition = summaryWhere(table, input.range, direct, dims.map((d) => d.name), input.unit)
    const params: Record<string, unknown> = { ...direct.params, ...condition.params, g_limit: input.limit }
    // Each dimension keeps its own top values; the others become Other in that dimension. One
    // scan: the flows grouped by every dimension, each dimension's values ranked over those
    // grouped rows (window functions), then folded (a ranking statement per dimension read the
    // range again each).
    const expressions = dims.map((d) => dimensionExpression(d, input.truncation))
    const natives = dims.map((_, i) => `n${i}`).join(', ')
    const columns = expressions.map((_, i) => `c${i}`).join(', ')
    const aliases = expressions.map((_, i) => `k${i}`).join(', ')
    params.g_other = OTHER
    const result = await rows<Record<string, string | number>>(
      `SELECT ${expressions.map((_, i) => `if(r${i} <= {g_limit:UInt32}, c${i}, {g_other:String}) AS k${i}`).join(', ')}, sum(v) AS v FROM (
         SELECT ${columns}, v, ${expressions.map((_, i) => `dense_rank() OVER (ORDER BY s${i} DESC, c${i}) AS r${i}`).join(', ')} FROM (
           SELECT ${columns}, v, ${expressions.map((_, i) => `sum(v) OVER (PARTITION BY c${i}) AS s${i}`).join(', ')} FROM (
             SELECT ${dims.map((d, i) => `${dimensionText(d, `n${i}`)} AS c${i}`).join(', ')}, v FROM (
               SELECT ${dims.map((d, i) => `${dimensionKey(d, input.truncation)} AS n${i}`).join(', ')}, ${value} AS v
               FROM ${from(table)} WHERE ${condition.sql} GROUP BY ${natives}))))
       GROUP BY ${aliases} ORDER BY v DESC, ${aliases}`,
      params,
      options,
    )
    const all = result.reduce((s, r) => s + Number(r.v), 0)
    const sankeyRows = result.map((r) => row(expressions.map((_, i) => String(r[`k${i}`])), Number(r.v), seconds, all))
    // Nodes are "value (Dimension)" so equal values of two dimensions stay distinct.
    const node = (i: number, v: string) => `${v} (${dims[i]!.name})`
    const nodes = new Set<string>()
    const links = new Map<string, SankeyLink>()
    for (const r of sankeyRows) {
      r.dimensions.forEach((v, i) => nodes.add(node(i, v)))
      for (let i = 0; i + 1 < r.dimensions.length; i++) {
        const source = node(i, r.dimensions[i]!)
        const target = node(i + 1, r.dimensions[i + 1]!)
        const key = JSON.stringify([source, target])
        const link = links.get(key)
        links.set(key, { source, target, value: (link?.value ?? 0) + r.value })
      }
    }
    return {
      start: input.range.start,
      end: input.range.end,
      unit: input.unit,
      table,
      dimensions: dims.map((d) => d.name),
      rows: sankeyRows,
      nodes: [...nodes],
      links: [...links.values()].sort((a, b) => b.value - a.value),
    }
  }

  // Addresses and MACs as text, the time as Unix seconds: what the flows query returns.
  const flowReplacements = stored
    .filter((c) => c.type === 'IPv6')
    .map((c) => `${addressText(c.name)} AS \`${c.name}\``)
    .concat(['toUnixTimestamp(TimeReceived) AS TimeReceived'])
  const macColumns = stored.filter((c) => c.name === 'SrcMAC' || c.name === 'DstMAC').map((c) => c.name as string)
  const orderClause: Record<OrderBy, string> = {
    TIME_DESC: 'TimeReceived DESC',
    TIME_ASC: 'TimeReceived ASC',
    BYTES_DESC: 'Bytes DESC, TimeReceived DESC',
    PACKETS_DESC: 'Packets DESC, TimeReceived DESC',
  }

  const flows: QueryEngine['flows'] = async (input, options) => {
    const what = 'flows'
    checkLimit(input.limit, what)
    if (input.range) checkRange(input.range, what)
    const filter = compile(input.filter, false)
    const range = input.range ?? { start: 0, end: 2 ** 32 - 1 }
    const sql = `SELECT * REPLACE (${flowReplacements.join(', ')}) FROM ${db}.\`${FLOWS_TABLE}\` WHERE ${where(filter)}
      ORDER BY ${orderClause[input.orderBy]} LIMIT {g_limit:UInt32}`
    const result = await rows<Record<string, unknown>>(sql, { ...filter.params, g_start: range.start, g_end: range.end, g_limit: input.limit }, options)
    for (const r of result) for (const mac of macColumns) r[mac] = formatMAC(Number(r[mac]))
    return result
  }

  const exporters: QueryEngine['exporters'] = async (options) => {
    const exporterRows = await rows<Record<string, string | number>>(
      `SELECT ${addressText('ExporterAddress')} AS address, ExporterName AS name, ExporterGroup AS group, ExporterRole AS role,
         ExporterSite AS site, ExporterRegion AS region, ExporterTenant AS tenant, toUnixTimestamp(TimeReceived) AS lastSeen
       FROM ${db}.\`${EXPORTERS_TABLE}\` FINAL ORDER BY name, address`,
      {},
      options,
    )
    const interfaceRows = await rows<Record<string, string | number>>(
      `SELECT ${addressText('ExporterAddress')} AS address, IfIndex AS index, IfName AS name, IfDescription AS description, IfSpeed AS speed,
         IfConnectivity AS connectivity, IfProvider AS provider, toString(IfBoundary) AS boundary, toUnixTimestamp(TimeReceived) AS lastSeen
       FROM ${db}.\`${INTERFACES_TABLE}\` FINAL ORDER BY address, index`,
      {},
      options,
    )
    const byAddress = new Map<string, ExporterRow>()
    for (const r of exporterRows) {
      byAddress.set(String(r.address), {
        address: String(r.address),
        name: String(r.name),
        group: String(r.group),
        role: String(r.role),
        site: String(r.site),
        region: String(r.region),
        tenant: String(r.tenant),
        lastSeen: Number(r.lastSeen),
        interfaces: [],
      })
    }
    for (const r of interfaceRows) {
      byAddress.get(String(r.address))?.interfaces.push({
        index: Number(r.index),
        name: String(r.name),
        description: String(r.description),
        speed: Number(r.speed),
        connectivity: String(r.connectivity),
        provider: String(r.provider),
        boundary: String(r.boundary),
        lastSeen: Number(r.lastSeen),
      })
    }
    return [...byAddress.values()]
  }

  const flowRate: QueryEngine['flowRate'] = async (seconds, options) => {
    const end = now()
    const [result] = await rows<{ v: number }>(
      `SELECT count() AS v FROM ${db}.\`${FLOWS_TABLE}\` WHERE ${timeCondition}`,
      { g_start: end - seconds, g_end: end + 1 },
      options,
    )
    return Number(result?.v ?? 0) / seconds
  }

  // Values seen for a column in the last day, for filter completion (only catalogue columns).
  // Names beside values, from the orchestrator's dictionaries (AS names, protocols, services).
  const valueNames: Record<string, (column: string) => string> = {
    SrcAS: (c) => `dictGetOrDefault('${settings.clickhouse.database}.asns', 'name', toUInt64(${c}), '')`,
    DstAS: (c) => `dictGetOrDefault('${settings.clickhouse.database}.asns', 'name', toUInt64(${c}), '')`,
    Proto: (c) => `dictGetOrDefault('${settings.clickhouse.database}.protocols', 'name', toUInt64(${c}), '')`,
    SrcPort: (c) => `dictGetOrDefault('${settings.clickhouse.database}.services', 'name', (toUInt8(6), toUInt16(${c})), '')`,
    DstPort: (c) => `dictGetOrDefault('${settings.clickhouse.database}.services', 'name', (toUInt8(6), toUInt16(${c})), '')`,
  }

  // Values seen for a column in the last day, for filter completion (only catalogue columns).
  const values: QueryEngine['values'] = async (columnName, prefix, limit, options) => {
    const column = filterColumns.find((c) => c.name.toLowerCase() === columnName.toLowerCase())
    if (!column) return []
    const dimension: Dimension = { name: column.name, column, aggregated: column.aggregated, address: column.type === 'IPv6' }
    const expression = dimensionExpression(dimension, { ipv4PrefixLength: 32, ipv6PrefixLength: 128 })
    const end = now()
    const table = column.aggregated ? '`flows_1h0m0s`' : `\`${FLOWS_TABLE}\``
    const weight = column.aggregated ? 'sum(Flows)' : 'count()'
    // "AS645" completes AS numbers as the filter language writes them.
    const typed = /AS$/.test(column.name) ? prefix.replace(/^AS/i, '') : prefix
    const query = (withNames: boolean) =>
      rows<{ v: string; n?: string }>(
        `SELECT ${expression} AS v${withNames && valueNames[column.name] ? `, any(${valueNames[column.name]!(`\`${column.name}\``)}) AS n` : ''}
         FROM ${db}.${table} WHERE ${timeCondition} AND startsWith(v, {g_prefix:String})
         GROUP BY v ORDER BY ${weight} DESC, v LIMIT {g_limit:UInt32}`,
        { g_start: end - 86_400, g_end: end + 1, g_prefix: typed, g_limit: limit },
        options,
      )
    // Without the dictionaries (a schema still migrating), values come without names.
    const result = await query(true).catch(() => query(false))
    return result.map((r) => ({ value: r.v, name: r.n ?? '' }))
  }

  const liveSelector: QueryEngine['liveSelector'] = (filterText, options) => {
    const filter = compile(filterText, false)
    if (filter.sql === '') return undefined
    const columns = filter.columns.map((name) => stored.find((c) => c.name === name)).filter((c): c is StorageColumn => c !== undefined)
    // Structure from the schema's own names and types, never from the user.
    const structure = ['__row UInt32', ...columns.map((c) => `\`${c.name}\` ${c.type}`)].join(', ').replace(/\\/g, '\\\\').replace(/'/g, "\\'")
    const sql = `SELECT __row FROM format(JSONEachRow, '${structure}', {g_rows:String}) WHERE ${filter.sql}`
    const readers = columns.map((c) => [c.name, liveValue(c)] as const)
    return async (batch) => {
      const lines: string[] = []
      for (let r = 0; r < batch.count; r++) {
        const row: Record<string, unknown> = { __row: r }
        for (const [name, read] of readers) row[name] = read(batch, r)
        lines.push(JSON.stringify(row))
      }
      const result = await rows<{ __row: number }>(sql, { ...filter.params, g_rows: lines.join('\n') }, options)
      return result.map((r) => Number(r.__row))
    }
  }

  return { dimensions: catalogue, timeseries, topN, sankey, flows, exporters, flowRate, values, liveSelector }
}
