// ClickHouse DDL rendered from the storage definition and the clickhouse section: the tables,
// materialized views and dictionaries the orchestrator creates. Pure functions, no I/O.
import { createHash } from 'node:crypto'
import type { ClickHouseConfig } from '../config/sections.js'
import {
  type AggregatedTable,
  COUNTERS_TABLE,
  DEFAULT_PROJECTED_DIMENSIONS,
  EXPORTERS_TABLE,
  FLOW_COUNT_COLUMN,
  FLOWS_TABLE,
  INTERFACES_TABLE,
  type StorageColumn,
  aggregatedTables,
  aggregatedViewName,
  counterColumns,
  storageColumns,
} from './schema.js'

// Projections may be left out: the default list then applies.
type Settings = Pick<ClickHouseConfig, 'database' | 'columns' | 'retention'> & Partial<Pick<ClickHouseConfig, 'projections'>>

/** A backquoted identifier (names come from our own definitions, never from users). */
export const ident = (name: string): string => `\`${name.replace(/`/g, '``')}\``

/** A single-quoted SQL string literal. */
export const sqlString = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`

const qualified = (config: Pick<ClickHouseConfig, 'database'>, name: string) => `${ident(config.database)}.${ident(name)}`

/**
 * Blocks remembered per table for insert deduplication: a batch retried with the same
 * `insert_deduplication_token` among the last this many inserts is stored once.
 */
export const DEDUPLICATION_WINDOW = 10_000

/** Comment stamped on every object we create: lets a migration see whether it is current. */
export const signatureComment = (definition: string): string =>
  `flowbus ${createHash('sha256').update(definition).digest('hex').slice(0, 16)}`

/** A column definition in a CREATE TABLE or ADD COLUMN. */
/** A table column: name, ClickHouse type and optional codec. */
export interface TableColumn {
  readonly name: string
  readonly type: string
  readonly codec?: string | undefined
}

export const columnDefinition = (column: TableColumn): string =>
  `${ident(column.name)} ${column.type}${column.codec ? ` ${column.codec}` : ''}`

const ttlClause = (column: string, ms: number): string => (ms > 0 ? `TTL ${column} + toIntervalSecond(${Math.round(ms / 1000)})` : '')

/** Data-skipping index name of a column. */
export const indexName = (column: string): string => `idx_${column}`

/** Sorting key of the raw table: time (coarse) first so ranges prune parts, then the exporter and interfaces. */
export const FLOWS_ORDER_BY = ['toStartOfFiveMinutes(TimeReceived)', 'ExporterAddress', 'InIf', 'OutIf']

/**
 * An aggregate projection: each part of the table also stores its rows summed per a coarser key,
 * and ClickHouse answers a query from it when the query's keys, filter and sums are computable
 * from it (far fewer rows to read).
 */
export interface ProjectionDefinition {
  readonly name: string
  /** The projection's SELECT … GROUP BY, without FROM. */
  readonly select: string
}

export interface TableDefinition {
  readonly name: string
  readonly columns: readonly TableColumn[]
  readonly indexes: readonly { readonly name: string; readonly column: string; readonly type: string }[]
  /** Aggregate projections (absent: none). */
  readonly projections?: readonly ProjectionDefinition[]
  /**
   * Table setting the projections need (SummingMergeTree refuses projections without a merge
   * mode), applied before a migration adds the first projection to an existing table.
   */
  readonly projectionSetting?: string
  /**
   * Whether a migration adding a projection to an existing table also builds it for the parts
   * already there (a background mutation reading them once); otherwise only new parts have it.
   */
  readonly materializeProjections?: boolean
  /** Everything after the column list: ENGINE, keys, TTL, SETTINGS. */
  readonly engine: string
  /** The TTL clause alone (empty: none), so a migration can change it in place. */
  readonly ttl: string
  /** Sorting key columns (SummingMergeTree sums every column outside it). */
  readonly orderBy: readonly string[]
}

/** A projection as CREATE TABLE and ALTER TABLE … ADD PROJECTION write it. */
export const projectionClause = (projection: ProjectionDefinition): string => `PROJECTION ${ident(projection.name)} (${projection.select})`

/**
 * The sums of every traffic unit, as the gateway's SQL writes them: a projection holding these
 * answers the gateway's bits, L2 bits and packets per second; flows are counted apart
 * (`count()` of raw flows, `sum(Flows)` of aggregated rows).
 */
export const unitSums = {
  bytes: 'sum(Bytes * SamplingRate)',
  l2Bytes: 'sum((Bytes + 18 * Packets) * SamplingRate)',
  packets: 'sum(Packets * SamplingRate)',
} as const

const projectionSums = (flows: string) => [unitSums.bytes, unitSums.l2Bytes, unitSums.packets, flows].join(', ')

/**
 * Raw-only columns summed per hour in a projection of `flows`, for the top-N of destination
 * ports over hours or days (ports stay out of the aggregated tables). Proto rides along: services
 * are (protocol, port) and filtering on it keeps the projection usable. Measured at 100M flows
 * (docs/storage.md): the 7-day top-N of ports reads ~60k rows an hour instead of every flow.
 */
export const FLOWS_PROJECTION_KEYS = ['DstPort', 'Proto'] as const

/** Projection name of an aggregated table's dimension. */
export const dimensionProjectionName = (dimension: string): string => `by_${dimension}`

/**
 * SummingMergeTree allows projections only if merges rebuild them from the merged rows ('drop'
 * would leave merged parts without them).
 */
export const PROJECTION_MERGE_SETTING = "deduplicate_merge_projection_mode = 'rebuild'"

/** Type of a flow column in the aggregated tables. */
export const aggregatedColumnType = (type: string): string =>
  // Plain String: measured 3.4 times cheaper to insert (the views) and 3.8 times cheaper to
  // merge than LowCardinality on these ~40-column sorting keys, where every row's key is compared
  // whole (docs/storage.md).
  type === 'LowCardinality(String)' ? 'String' : type

export const renderCreateTable = (config: Pick<ClickHouseConfig, 'database'>, table: TableDefinition): string =>
  [
    `CREATE TABLE IF NOT EXISTS ${qualified(config, table.name)}`,
    '(',
    [
      ...table.columns.map((c) => `  ${columnDefinition(c)}`),
      ...table.indexes.map((i) => `  INDEX ${ident(i.name)} ${ident(i.column)} TYPE ${i.type} GRANULARITY 4`),
      ...(table.projections ?? []).map((p) => `  ${projectionClause(p)}`),
    ].join(',\n'),
    ')',
    table.engine,
  ].join('\n')

/** The raw flows table under this configuration. */
export const flowsTable = (config: Settings): TableDefinition => {
  const columns = storageColumns(config)
  const ttl = ttlClause('TimeReceived', config.retention.flows)
  // A disabled interface column leaves the key (the time and the exporter are always stored).
  const stored = new Set(columns.map((c) => c.name as string))
  const orderBy = FLOWS_ORDER_BY.filter((key) => key.includes('(') || stored.has(key))
  const projected = FLOWS_PROJECTION_KEYS.every((key) => stored.has(key))
  const hour = 'toStartOfHour(TimeReceived)'
  const keys = [hour, ...FLOWS_PROJECTION_KEYS].join(', ')
  return {
    name: FLOWS_TABLE,
    columns,
    indexes: columns.flatMap((c) => (c.index ? [{ name: indexName(c.name), column: c.name, type: c.index }] : [])),
    projections: projected ? [{ name: 'ports_1h', select: `SELECT ${keys}, ${projectionSums('count()')} GROUP BY ${keys}` }] : [],
    // The largest table with the shortest retention: rewriting its history would compete with
    // the inserts for hours, and parts inserted from now on carry the projection anyway.
    materializeProjections: false,
    orderBy,
    ttl,
    engine: [
      'ENGINE = MergeTree',
      'PARTITION BY toYYYYMMDD(TimeReceived)',
      `ORDER BY (${orderBy.join(', ')})`,
      ttl,
      `SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}, ttl_only_drop_parts = 1`,
    ]
      .filter(Boolean)
      .join('\n'),
  }
}

/** Flow columns kept in the aggregated tables under this configuration. */
export const aggregatedColumns = (config: Pick<ClickHouseConfig, 'columns'>): readonly StorageColumn[] =>
  storageColumns(config).filter((c) => c.aggregated)

const summed = new Set(['Bytes', 'Packets', FLOW_COUNT_COLUMN])

/** Sorting key of an aggregated table: every column that is not summed, time and exporter first. */
export const aggregatedOrderBy = (config: Pick<ClickHouseConfig, 'columns'>): string[] =>
  aggregatedColumns(config)
    .map((c) => c.name as string)
    .filter((name) => !summed.has(name))
    .sort((a, b) => rank(a) - rank(b))

// TimeReceived and ExporterAddress lead the key; the rest keep FlowBatch order (stable sort).
const rank = (name: string): number => (name === 'TimeReceived' ? 0 : name === 'ExporterAddress' ? 1 : 2)

/**
 * Codec of the aggregated tables' sums: LZ4 rather than the raw table's ZSTD, measured on 7.2M
 * rows of flows_5m0s: sum(Bytes) 8-17 ns a row instead of 15-19, for 14 % more bytes (12.9
 * instead of 11.4 MiB); compressing is cheaper on insert and merge too.
 */
export const AGGREGATED_SUM_CODEC = 'CODEC(T64, LZ4)'

/** An aggregated flows table under this configuration. */
export const aggregatedTableDefinition = (config: Settings, table: AggregatedTable): TableDefinition => {
  const orderBy = aggregatedOrderBy(config)
  const ttl = ttlClause('TimeReceived', config.retention[table.retentionKey])
  const columns = aggregatedColumns(config)
  const stored = new Set(columns.map((c) => c.name as string))
  const projections = (config.projections ?? DEFAULT_PROJECTED_DIMENSIONS).filter((d) => stored.has(d)).map((d) => ({
    name: dimensionProjectionName(d),
    select: `SELECT TimeReceived, ${ident(d)}, ${projectionSums(`sum(${FLOW_COUNT_COLUMN})`)} GROUP BY TimeReceived, ${ident(d)}`,
  }))
  return {
    name: table.name,
    columns: [
      ...columns.map((c) => ({ name: c.name, type: aggregatedColumnType(c.type), codec: summed.has(c.name) ? AGGREGATED_SUM_CODEC : c.codec })),
      { name: FLOW_COUNT_COLUMN, type: 'UInt64', codec: AGGREGATED_SUM_CODEC },
    ],
    indexes: [],
    projections,
    projectionSetting: PROJECTION_MERGE_SETTING,
    // Kept for months or years and far smaller than the raw flows: the history is worth one pass.
    materializeProjections: true,
    orderBy,
    ttl,
    engine: [
      `ENGINE = SummingMergeTree((Bytes, Packets, ${FLOW_COUNT_COLUMN}))`,
      `PARTITION BY ${table.resolutionSeconds >= 300 ? 'toYYYYMM' : 'toYYYYMMDD'}(TimeReceived)`,
      `PRIMARY KEY (TimeReceived, ExporterAddress)`,
      `ORDER BY (${orderBy.join(', ')})`,
      ttl,
      `SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}, ttl_only_drop_parts = 1, ${PROJECTION_MERGE_SETTING}`,
    ]
      .filter(Boolean)
      .join('\n'),
  }
}

export interface ViewDefinition {
  readonly name: string
  readonly target: string
  readonly select: string
}

export const renderCreateView = (config: Pick<ClickHouseConfig, 'database'>, view: ViewDefinition): string =>
  `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(config, view.name)} TO ${qualified(config, view.target)}\n` +
  `AS ${view.select}\nCOMMENT ${sqlString(signatureComment(view.select))}`

/**
 * The view feeding an aggregated table: the finest one from `flows`, each coarser one from the
 * rows just written to the previous one (60 s divides 300 s divides 3600 s). Every view sums the
 * rows of equal keys within the inserted block, so a table writes one row per key and interval
 * instead of one per flow: writing rows (sort on ~40 key columns, compress, merge) was the costly
 * part, and real traffic repeats its keys heavily within a minute (docs/storage.md, measured).
 * SummingMergeTree still sums across blocks when it merges parts, and readers sum too.
 */
export const aggregatedView = (config: Settings, table: AggregatedTable): ViewDefinition => {
  const keys = aggregatedOrderBy(config)
  const index = aggregatedTables.findIndex((t) => t.name === table.name)
  const source = index > 0 ? aggregatedTables[index - 1]! : undefined
  // Inside the sums, the qualified name is the column, not the alias of the sum.
  const from = source === undefined ? 'flows' : 'source'
  const select = keys.map((k) =>
    k === 'TimeReceived' ? `toStartOfInterval(${from}.TimeReceived, toIntervalSecond(${table.resolutionSeconds})) AS TimeReceived` : ident(k),
  )
  const flows = source === undefined ? 'count()' : `sum(source.${ident(FLOW_COUNT_COLUMN)})`
  return {
    name: aggregatedViewName(table.name),
    target: table.name,
    select: [
      `SELECT ${[...select, `sum(${from}.Bytes) AS Bytes`, `sum(${from}.Packets) AS Packets`, `${flows} AS ${FLOW_COUNT_COLUMN}`].join(', ')}`,
      source === undefined ? `FROM ${qualified(config, FLOWS_TABLE)} AS flows` : `FROM ${qualified(config, source.name)} AS source`,
      `GROUP BY ${keys.map(ident).join(', ')}`,
    ].join('\n'),
  }
}

/** Exporters seen in flows, latest names kept (ReplacingMergeTree on TimeReceived). */
export const exportersTable = (): TableDefinition => ({
  name: EXPORTERS_TABLE,
  columns: [
    { name: 'TimeReceived', type: 'DateTime' },
    { name: 'ExporterAddress', type: 'IPv6' },
    ...['ExporterName', 'ExporterGroup', 'ExporterRole', 'ExporterSite', 'ExporterRegion', 'ExporterTenant'].map((name) => ({
      name,
      type: 'LowCardinality(String)',
    })),
  ],
  indexes: [],
  orderBy: ['ExporterAddress'],
  ttl: '',
  engine: 'ENGINE = ReplacingMergeTree(TimeReceived)\nORDER BY ExporterAddress',
})

const boundaryType = "Enum8('undefined' = 0, 'external' = 1, 'internal' = 2)"

const interfaceFields = ['Name', 'Description', 'Speed', 'Connectivity', 'Provider', 'Boundary'] as const

/** Interfaces seen in flows (input and output), latest names kept. */
export const interfacesTable = (): TableDefinition => ({
  name: INTERFACES_TABLE,
  columns: [
    { name: 'TimeReceived', type: 'DateTime' },
    { name: 'ExporterAddress', type: 'IPv6' },
    { name: 'ExporterName', type: 'LowCardinality(String)' },
    { name: 'IfIndex', type: 'UInt32' },
    { name: 'IfName', type: 'LowCardinality(String)' },
    { name: 'IfDescription', type: 'LowCardinality(String)' },
    { name: 'IfSpeed', type: 'UInt32' },
    { name: 'IfConnectivity', type: 'LowCardinality(String)' },
    { name: 'IfProvider', type: 'LowCardinality(String)' },
    { name: 'IfBoundary', type: boundaryType },
  ],
  indexes: [],
  orderBy: ['ExporterAddress', 'IfIndex'],
  ttl: '',
  engine: 'ENGINE = ReplacingMergeTree(TimeReceived)\nORDER BY (ExporterAddress, IfIndex)',
})

// Columns a view reads from `flows` may be disabled: the view then stores the type's default.
const reader = (config: Settings) => {
  const stored = new Map(storageColumns(config).map((c) => [c.name as string, c]))
  return (name: string, fallback: string): string => (stored.has(name) ? ident(name) : fallback)
}

export const exportersView = (config: Settings): ViewDefinition => {
  const read = reader(config)
  return {
    name: `${EXPORTERS_TABLE}_consumer`,
    target: EXPORTERS_TABLE,
    select: [
      // Inside the aggregates, flows.TimeReceived is the column, not the max() alias.
      'SELECT max(flows.TimeReceived) AS TimeReceived, ExporterAddress,',
      ['ExporterName', 'ExporterGroup', 'ExporterRole', 'ExporterSite', 'ExporterRegion', 'ExporterTenant']
        .map((c) => `argMax(${read(c, "''")}, flows.TimeReceived) AS ${c}`)
        .join(', '),
      `FROM ${qualified(config, FLOWS_TABLE)} AS flows`,
      'GROUP BY ExporterAddress',
    ].join('\n'),
  }
}

const interfaceDefaults: Record<(typeof interfaceFields)[number], string> = {
  Name: "''",
  Description: "''",
  Speed: 'toUInt32(0)',
  Connectivity: "''",
  Provider: "''",
  Boundary: `CAST(0 AS ${boundaryType})`,
}

export const interfacesView = (config: Settings): ViewDefinition => {
  const read = reader(config)
  // One row per side: input interface fields, then output interface fields, joined on position.
  const side = (prefix: 'In' | 'Out') =>
    `(${read(`${prefix}If`, 'toUInt32(0)')}, ${interfaceFields.map((f) => read(`${prefix}If${f}`, interfaceDefaults[f])).join(', ')})`
  return {
    name: `${INTERFACES_TABLE}_consumer`,
    target: INTERFACES_TABLE,
    select: [
      `SELECT max(flows.TimeReceived) AS TimeReceived, ExporterAddress, argMax(${read('ExporterName', "''")}, flows.TimeReceived) AS ExporterName,`,
      'interface.1 AS IfIndex,',
      interfaceFields.map((f, i) => `argMax(interface.${i + 2}, flows.TimeReceived) AS If${f}`).join(', '),
      `FROM ${qualified(config, FLOWS_TABLE)} AS flows`,
      `ARRAY JOIN [${side('In')}, ${side('Out')}] AS interface`,
      'WHERE IfIndex != 0',
      'GROUP BY ExporterAddress, IfIndex',
    ].join('\n'),
  }
}

/** sFlow interface counter samples. */
export const countersTable = (config: Pick<ClickHouseConfig, 'retention'>): TableDefinition => {
  const ttl = ttlClause('TimeReceived', config.retention.counters)
  return {
    name: COUNTERS_TABLE,
    columns: counterColumns,
    indexes: [],
    orderBy: ['ExporterAddress', 'IfIndex', 'TimeReceived'],
    ttl,
    engine: [
      'ENGINE = MergeTree',
      'PARTITION BY toYYYYMMDD(TimeReceived)',
      'ORDER BY (ExporterAddress, IfIndex, TimeReceived)',
      ttl,
      `SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}, ttl_only_drop_parts = 1`,
    ]
      .filter(Boolean)
      .join('\n'),
  }
}

/** Every table definition of a deployment, in creation order. */
export const tableDefinitions = (config: Settings): TableDefinition[] => [
  flowsTable(config),
  ...aggregatedTables.map((t) => aggregatedTableDefinition(config, t)),
  exportersTable(),
  interfacesTable(),
  countersTable(config),
]

/** Every materialized view of a deployment, each after its target table exists. */
export const viewDefinitions = (config: Settings): ViewDefinition[] => [
  ...aggregatedTables.map((t) => aggregatedView(config, t)),
  exportersView(config),
  interfacesView(config),
]

// --- dictionaries ---------------------------------------------------------------------------

/** A dictionary of names the gateway looks up with dictGet, loaded from a CSVWithNames file. */
export interface DictionaryDefinition {
  /** Dictionary name; its data table is `<name>_data`, its endpoint `/api/v0/clickhouse/<name>.csv`. */
  readonly name: string
  /** Columns, keys first, in the order of the CSV header. */
  readonly columns: readonly TableColumn[]
  readonly key: readonly string[]
}

export const dictionaryDefinitions: readonly DictionaryDefinition[] = [
  {
    name: 'protocols',
    columns: [
      { name: 'proto', type: 'UInt8' },
      { name: 'name', type: 'String' },
      { name: 'description', type: 'String' },
    ],
    key: ['proto'],
  },
  {
    name: 'asns',
    columns: [
      { name: 'asn', type: 'UInt32' },
      { name: 'name', type: 'String' },
    ],
    key: ['asn'],
  },
  {
    name: 'icmp',
    columns: [
      { name: 'proto', type: 'UInt8' },
      { name: 'type', type: 'UInt8' },
      { name: 'code', type: 'UInt8' },
      { name: 'name', type: 'String' },
    ],
    key: ['proto', 'type', 'code'],
  },
  {
    name: 'services',
    columns: [
      { name: 'proto', type: 'UInt8' },
      { name: 'port', type: 'UInt16' },
      { name: 'name', type: 'String' },
    ],
    key: ['proto', 'port'],
  },
]

/** The table a dictionary's rows are loaded into. */
export const dictionaryTableName = (dictionary: Pick<DictionaryDefinition, 'name'>): string => `${dictionary.name}_data`

export const dictionaryTable = (dictionary: DictionaryDefinition): TableDefinition => ({
  name: dictionaryTableName(dictionary),
  columns: dictionary.columns,
  indexes: [],
  orderBy: dictionary.key,
  ttl: '',
  engine: `ENGINE = MergeTree\nORDER BY (${dictionary.key.map(ident).join(', ')})`,
})

/**
 * Where a dictionary reads its rows: the table the orchestrator fills (works everywhere,
 * chDB included) or the orchestrator's CSV endpoint (a server fetching over HTTP).
 */
export type DictionarySource =
  | { readonly kind: 'table'; readonly username?: string; readonly password?: string }
  | { readonly kind: 'http'; readonly baseURL: string }

export const renderCreateDictionary = (
  config: Pick<ClickHouseConfig, 'database'>,
  dictionary: DictionaryDefinition,
  source: DictionarySource,
): string => {
  const sourceClause =
    source.kind === 'http'
      ? `SOURCE(HTTP(URL ${sqlString(`${source.baseURL.replace(/\/$/, '')}/api/v0/clickhouse/${dictionary.name}.csv`)} FORMAT 'CSVWithNames'))`
      : `SOURCE(CLICKHOUSE(DB ${sqlString(config.database)} TABLE ${sqlString(dictionaryTableName(dictionary))}${
          source.username ? ` USER ${sqlString(source.username)}` : ''
        }${source.password ? ` PASSWORD ${sqlString(source.password)}` : ''}))`
  const layout = dictionary.key.length > 1 ? 'COMPLEX_KEY_HASHED()' : 'HASHED()'
  // The signature leaves the password out: changing it must not show as a schema change.
  const shape = [dictionary.columns.map(columnDefinition).join(', '), dictionary.key.join(','), layout, source.kind, source.kind === 'http' ? source.baseURL : ''].join('|')
  return [
    `CREATE DICTIONARY IF NOT EXISTS ${qualified(config, dictionary.name)}`,
    `(${dictionary.columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ')})`,
    `PRIMARY KEY ${dictionary.key.map(ident).join(', ')}`,
    sourceClause,
    'LIFETIME(MIN 3600 MAX 7200)',
    `LAYOUT(${layout})`,
    `COMMENT ${sqlString(signatureComment(shape))}`,
  ].join('\n')
}
