// Query latency benchmark: synthetic flows generated inside the embedded engine (INSERT … SELECT
// over numbers() with rand functions) day by day, each day's aggregated rows summed from the finer
// table (1 min from raw, 5 min from 1 min, 1 h from 5 min), then the GraphQL endpoint asked the
// UI's typical questions.
// Run: npm run bench -- query   (FLOWBUS_BENCH_LARGE=1 adds 100M flows; BENCH_QUERY_ROUNDS, BENCH_QUERY_SIZES,
// BENCH_QUERY_DATA=<dir> keeps the generated flows there and reuses them on the next run, as long
// as the schema's DDL is the same)
// Prints "bench query.<case>.<flows>.<p50|p95|cpu_p50> <ms> ms" (wall time, and the CPU time of the
// process, engine included); progress, table sizes and load average on stderr.
import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import {
  type ClickHouseConfig,
  aggregatedOrderBy,
  aggregatedTables,
  configSchema,
  FLOWS_TABLE,
  ident,
  openClickHouse,
  renderCreateTable,
  signatureComment,
  sqlString,
  tableDefinitions,
} from '@flowbus/runtime'
import { Schema } from 'effect'
import { removeDir, tempDir } from '../../test/src/harness/process.js'
import { GatewayConfig } from '../src/config.js'
import { akvoradoFilters } from '../src/filter-language.js'
import { LiveHub } from '../src/live.js'
import { makeDimensionCatalogue } from '../src/query/dimensions.js'
import { makeQueryEngine } from '../src/query/engine.js'
import { makeQueryRunner } from '../src/query/runner.js'
import { createGatewayServer } from '../src/server.js'

const ROUNDS = Number(process.env.BENCH_QUERY_ROUNDS ?? 15)
const SIZES = (process.env.BENCH_QUERY_SIZES ?? (process.env.FLOWBUS_BENCH_LARGE === '1' ? '10000000,100000000' : '10000000')).split(',').map(Number)
const DAY = 86_400
const DAYS = 7

const kept = process.env.BENCH_QUERY_DATA
const dir = kept ? resolve(kept) : await tempDir('bench-query')
const settingsFor = (database: string) =>
  (
    Schema.decodeUnknownSync(configSchema([]))({
      clickhouse: { path: join(dir, 'db'), database, retention: { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 } },
    }) as { clickhouse: ClickHouseConfig }
  ).clickhouse
const client = await openClickHouse(settingsFor('bench'))

const command = (query: string) => client.command({ query, clickhouse_settings: {} })
const scalar = async (query: string): Promise<string> => {
  const rows = await (await client.query({ query, format: 'JSONEachRow' })).json<{ v: string }>()
  return String(rows[0]?.v ?? '')
}
const progress = (text: string) => console.error(`# ${text}`)
const label = (size: number) => (size >= 1e6 ? `${size / 1e6}M` : String(size))
const loadAverage = () => loadavg().map((l) => l.toFixed(1)).join(' ')

/** Columns the generator fills; every other column keeps its default. */
const generatedColumns = new Set(
  'TimeReceived SamplingRate ExporterAddress ExporterName InIf OutIf InIfName OutIfName InIfSpeed OutIfSpeed InIfBoundary OutIfBoundary SrcAS DstAS SrcAddr DstAddr Proto SrcPort DstPort Bytes Packets SrcCountry DstCountry EType'.split(' '),
)

/**
 * Generated key columns of the aggregated tables that vary independently; every other one is
 * constant or follows from SrcAS and DstAS in generatorSelect (keep the two in step).
 */
const independentColumns = new Set(['TimeReceived', 'SrcAS', 'DstAS', 'Proto'])

/**
 * One day's flows: 4 exporters, source ASes skewed over 500 (the first carries ~13 % of flows),
 * destination ASes over 50, interfaces and countries following from the ASes, IPv4 /16s,
 * destination ports 70 % from 8 services (skewed), 30 % ephemeral (answers to clients).
 */
const generatorSelect = (dayStart: number, offset: number, count: number) => `
  SELECT
    toDateTime(${dayStart} + rand(1) % ${DAY}) AS TimeReceived,
    1000 AS SamplingRate,
    -- Source ASes skewed (a few carry most traffic), destination ASes ours; what a router
    -- sees follows from them, as on a real edge: exporter and output interface from the
    -- destination, input interface from the source, countries from both.
    64500 + toUInt32(pow(rand(4) / 4294967295, 3) * 500) AS SrcAS,
    65000 + toUInt32(pow(rand(5) / 4294967295, 2) * 50) AS DstAS,
    toIPv6(concat('::ffff:192.0.2.', toString(1 + DstAS % 4))) AS ExporterAddress,
    concat('edge', toString(1 + DstAS % 4)) AS ExporterName,
    1 + SrcAS % 16 AS InIf, 17 + DstAS % 8 AS OutIf,
    concat('Gi0/', toString(InIf)) AS InIfName, concat('Te0/', toString(OutIf)) AS OutIfName,
    10000 AS InIfSpeed, 100000 AS OutIfSpeed,
    1 AS InIfBoundary, 2 AS OutIfBoundary,
    toIPv6(IPv4NumToString(toUInt32(3325256704 + rand(6) % 65536))) AS SrcAddr,
    toIPv6(IPv4NumToString(toUInt32(3405803776 + rand(7) % 65536))) AS DstAddr,
    if(rand(13) % 10 < 3, 1024 + rand(14) % 64512,
      [443, 80, 53, 22, 25, 8080, 3389, 123][1 + toUInt32(pow(rand(10) / 4294967295, 2) * 8)]) AS DstPort,
    if(DstPort IN (53, 123), 17, 6) AS Proto,
    1024 + rand(9) % 60000 AS SrcPort,
    40 + rand(11) % 1460 AS Bytes, 1 + rand(12) % 10 AS Packets,
    ['FR', 'US', 'DE', 'JP', 'BR', 'GB', 'IN'][1 + SrcAS % 7] AS SrcCountry, 'FR' AS DstCountry,
    2048 AS EType
  FROM numbers(${offset}, ${count})`

interface TableSize {
  readonly table: string
  readonly rows: number
  readonly parts: number
  readonly bytes: string
}

const tableSizes = async (database: string): Promise<TableSize[]> =>
  (
    await (
      await client.query({
        query: `SELECT table, sum(rows) AS rows, count() AS parts, formatReadableSize(sum(bytes_on_disk)) AS bytes FROM system.parts
                WHERE database = {db:String} AND active AND startsWith(table, 'flows') GROUP BY table ORDER BY table`,
        query_params: { db: database },
        format: 'JSONEachRow',
      })
    ).json<{ table: string; rows: string; parts: string; bytes: string }>()
  ).map((r) => ({ table: r.table, rows: Number(r.rows), parts: Number(r.parts), bytes: r.bytes }))

/**
 * Every aggregated table holds the raw flows' sums per hour and key (all the generated keys,
 * the derived ones too) over the last 6 hours: a wrong dependency in independentColumns fails
 * the run here. (Not the whole range: grouping raw flows by every key costs ~2 µs a flow.)
 */
const checkAggregates = async (clickhouse: ClickHouseConfig, keys: readonly string[], end: number) => {
  const db = ident(clickhouse.database)
  const started = performance.now()
  const digest = (table: string, flows: string) =>
    scalar(`SELECT toString(groupBitXor(cityHash64(h, ${keys.map(ident).join(', ')}, b, p, f))) AS v FROM (
      SELECT toStartOfHour(TimeReceived) AS h, ${keys.map(ident).join(', ')}, sum(Bytes) AS b, sum(Packets) AS p, ${flows} AS f
      FROM ${db}.${ident(table)} WHERE TimeReceived >= toDateTime(${end - 6 * 3600}) AND TimeReceived < toDateTime(${end}) GROUP BY ALL)`)
  const expected = await digest(FLOWS_TABLE, 'count()')
  for (const table of aggregatedTables) {
    const got = await digest(table.name, 'sum(Flows)')
    if (got !== expected) throw new Error(`bench: ${table.name} does not hold the sums of the raw flows per hour and key (digest ${got}, raw ${expected})`)
  }
  progress(`aggregated tables checked against the raw flows in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

/**
 * Flows of the 7 days before the hour started, in database `clickhouse.database`, generated day
 * by day, each day's aggregated rows summed into the aggregated tables right after it (bounded
 * memory, one progress line per step). Kept data (BENCH_QUERY_DATA) of the same count is reused.
 * Returns the end of the generated range (Unix seconds): the questions end there.
 */
const generate = async (clickhouse: ClickHouseConfig, count: number): Promise<number> => {
  const db = ident(clickhouse.database)
  // Data generated under another schema (types, codecs, projections) is generated again.
  const schema = signatureComment(tableDefinitions(clickhouse).map((t) => renderCreateTable(clickhouse, t)).join('\n'))
  const marker = `${db}.\`bench_loaded\``
  const kept = existsSync(join(dir, 'db'))
    ? await scalar(`SELECT toString(now) AS v FROM ${marker} WHERE count = ${count} AND schema = ${sqlString(schema)}`).catch(() => '')
    : ''
  const flowTables = [FLOWS_TABLE, ...aggregatedTables.map((t) => t.name)]
  if (kept !== '') {
    // Merges are stopped per process: without this, a reused database starts merging its
    // parts as the questions run, and their CPU counts as the questions' (measured: 3 times).
    for (const table of flowTables) await command(`SYSTEM STOP MERGES ${db}.${ident(table)}`)
    progress(`${label(count)} flows reused from ${dir}`)
    return Number(kept)
  }
  const now = Math.floor(Date.now() / 1000 / 3600) * 3600
  const first = now - DAYS * DAY
  await command(`DROP DATABASE IF EXISTS ${db}`)
  await command(`CREATE DATABASE ${db}`)
  for (const table of tableDefinitions(clickhouse)) await command(renderCreateTable(clickhouse, table))
  // Parts stay as inserted: background merges would compete with the load and the queries for
  // the 2 cores (aggregated rows are summed already, so merging them would not remove any).
  for (const table of flowTables) await command(`SYSTEM STOP MERGES ${db}.${ident(table)}`)

  // The aggregated tables' keys the generator varies; the other key columns hold their default
  // in every row, so leaving them out of the insert gives the same rows. Of those, only the
  // independent ones are grouped: the others follow from them (any() is their value), and
  // grouping by ~20 columns, several LowCardinality, cost 5 times more. checkAggregates() verifies.
  const keys = aggregatedOrderBy(clickhouse).filter((k) => generatedColumns.has(k))
  const grouped = keys.filter((k) => independentColumns.has(k)).map(ident)
  const columns = [...generatedColumns].join(', ')
  const spent = { raw: 0, aggregated: new Map<string, number>() }
  const started = performance.now()
  const chunk = 5_000_000
  for (let day = 0; day < DAYS; day++) {
    const dayStart = first + day * DAY
    const dayCount = Math.floor((count * (day + 1)) / DAYS) - Math.floor((count * day) / DAYS)
    const dayOffset = Math.floor((count * day) / DAYS)
    // Chunks keep the engine's memory bounded.
    let t = performance.now()
    for (let offset = 0; offset < dayCount; offset += chunk) {
      const n = Math.min(chunk, dayCount - offset)
      await command(`INSERT INTO ${db}.${ident(FLOWS_TABLE)} (${columns}) SELECT ${columns} FROM (${generatorSelect(dayStart, dayOffset + offset, n)})`)
    }
    spent.raw += (performance.now() - t) / 1000
    // Each table summed from the next finer one over this day: the 5 min and 1 h tables read
    // already summed rows instead of the raw flows again. The rows are summed by the GROUP BY,
    // so the engine's own summing of each inserted block (optimize_on_insert) is skipped: over
    // the ~40 key columns, most LowCardinality, it costs ~10 µs per row.
    let source = FLOWS_TABLE
    for (const table of aggregatedTables) {
      t = performance.now()
      const counted = source === FLOWS_TABLE ? 'sum(Bytes), sum(Packets), count()' : 'sum(Bytes), sum(Packets), sum(Flows)'
      const select = keys.map((k) =>
        k === 'TimeReceived'
          ? `toStartOfInterval(TimeReceived, toIntervalSecond(${table.resolutionSeconds})) AS t`
          : independentColumns.has(k)
            ? ident(k)
            : `any(${ident(k)})`,
      )
      await command(`INSERT INTO ${db}.${ident(table.name)} (${keys.map(ident).join(', ')}, Bytes, Packets, Flows)
        SELECT ${select.join(', ')}, ${counted} FROM ${db}.${ident(source)}
        WHERE TimeReceived >= toDateTime(${dayStart}) AND TimeReceived < toDateTime(${dayStart + DAY})
        GROUP BY ${grouped.map((k) => (k === '`TimeReceived`' ? 't' : k)).join(', ')}
        SETTINGS optimize_on_insert = 0`)
      spent.aggregated.set(table.name, (spent.aggregated.get(table.name) ?? 0) + (performance.now() - t) / 1000)
      source = table.name
    }
    progress(
      `${label(count)}: day ${day + 1}/${DAYS} loaded (${dayCount} flows) after ${((performance.now() - started) / 1000).toFixed(0)} s, load average ${loadAverage()}`,
    )
  }
  const sizes = await tableSizes(clickhouse.database)
  progress(
    `${label(count)} flows: raw insert ${spent.raw.toFixed(1)} s, ${[...spent.aggregated].map(([t, s]) => `${t} ${s.toFixed(1)} s`).join(', ')}; ` +
      sizes.map((s) => `${s.table} ${s.rows} rows ${s.parts} parts ${s.bytes}`).join(', '),
  )
  await checkAggregates(clickhouse, keys.filter((k) => k !== 'TimeReceived'), now)
  await command(`CREATE TABLE ${marker} (now UInt32, count UInt64, schema String) ENGINE = MergeTree ORDER BY now`)
  await command(`INSERT INTO ${marker} VALUES (${now}, ${count}, ${sqlString(schema)})`)
  return now
}

const config = Schema.decodeUnknownSync(GatewayConfig)({ listen: '127.0.0.1:0', limits: { maxConcurrentQueries: 64, queryTimeout: '120s' } })
const iso = (s: number) => new Date(s * 1000).toISOString()

/** The UI's typical questions over data ending at `now`. */
const cases = (now: number): Record<string, { query: string; variables: Record<string, unknown> }> => ({
  timeseries24h: {
    query: `query ($r: TimeRange!) { timeseries(range: $r, dimensions: ["SrcAS"], limit: 10) { table { name } series { name values } } }`,
    variables: { r: { start: iso(now - DAY), end: iso(now) } },
  },
  topn7d: {
    query: `query ($r: TimeRange!) { topN(range: $r, dimensions: ["DstPort"], limit: 10) { table { name } rows { name value } } }`,
    variables: { r: { start: iso(now - 7 * DAY), end: iso(now) } },
  },
  sankey6h: {
    query: `query ($r: TimeRange!) { sankey(range: $r, dimensions: ["SrcAS", "InIfName"], limit: 10) { table { name } links { source target value } } }`,
    variables: { r: { start: iso(now - 6 * 3600), end: iso(now) } },
  },
  lastflows: {
    query: `query ($r: TimeRange!) { flows(filter: "DstPort = 443 AND SrcAS = 64501", range: $r, limit: 100) }`,
    variables: { r: { start: iso(now - DAY), end: iso(now) } },
  },
})

/** A gateway over one database, asking through its GraphQL endpoint as the UI does. */
const gateway = async (clickhouse: ClickHouseConfig) => {
  const runner = makeQueryRunner(client, { database: clickhouse.database, timeoutMs: config.limits.queryTimeout, maxConcurrentPerUser: 64, server: false })
  const engine = makeQueryEngine(runner, makeDimensionCatalogue(clickhouse), {
    clickhouse,
    filters: akvoradoFilters,
    limits: { maxPoints: config.limits.maxPoints, maxRangeSeconds: config.limits.maxRange / 1000, maxLimit: config.limits.maxLimit },
  })
  const server = createGatewayServer({
    config,
    dependencies: { engine, filters: akvoradoFilters, hub: new LiveHub(), health: async () => { throw new Error('not benchmarked') }, saved: undefined, live: { queueLength: 1, maxFlowsPerEvent: 1 } },
  })
  const { port } = await server.listen('127.0.0.1', 0)
  const url = `http://127.0.0.1:${port}/graphql`
  const ask = async (query: string, variables: Record<string, unknown>) => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) })
    const body = (await response.json()) as { errors?: unknown[]; data?: Record<string, { table?: { name: string } }> }
    if (body.errors) throw new Error(JSON.stringify(body.errors))
    return body.data
  }
  return { ask, close: () => server.close() }
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

try {
  for (const size of SIZES) {
    const clickhouse = settingsFor(`bench_${label(size)}`)
    const now = await generate(clickhouse, size)
    const { ask, close } = await gateway(clickhouse)
    try {
      for (const [name, { query, variables }] of Object.entries(cases(now))) {
        const answer = await ask(query, variables) // warms caches, shows the table
        const times: number[] = []
        // CPU seconds of this process (the engine runs in it) per question: on a shared machine
        // wall time mostly measures the others' load.
        const cpu: number[] = []
        for (let i = 0; i < ROUNDS; i++) {
          const started = performance.now()
          const usage = process.cpuUsage()
          await ask(query, variables)
          times.push(performance.now() - started)
          const spent = process.cpuUsage(usage)
          cpu.push((spent.user + spent.system) / 1000)
        }
        times.sort((a, b) => a - b)
        cpu.sort((a, b) => a - b)
        const table = Object.values(answer ?? {})[0]?.table?.name ?? 'flows'
        progress(`${name} on ${label(size)} flows reads ${table}, load average ${loadAverage()}`)
        console.log(`bench query.${name}.${label(size)}.p50 ${quantile(times, 0.5).toFixed(1)} ms`)
        console.log(`bench query.${name}.${label(size)}.p95 ${quantile(times, 0.95).toFixed(1)} ms`)
        console.log(`bench query.${name}.${label(size)}.cpu_p50 ${quantile(cpu, 0.5).toFixed(1)} ms`)
      }
    } finally {
      await close()
    }
  }
} finally {
  await client.close()
  if (!kept) await removeDir(dir)
}
