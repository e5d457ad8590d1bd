// Query latency benchmark: synthetic flows generated inside the embedded engine (INSERT … SELECT
// over numbers() with rand functions), the aggregated tables filled from them with the sums their
// SummingMergeTree keeps, then the gateway's GraphQL endpoint asked the UI's typical questions.
// Run: npm run bench -- query   (FLOWBUS_BENCH_LARGE=1 adds 100M flows; BENCH_QUERY_ROUNDS, BENCH_QUERY_SIZES)
// Prints "bench query.<case>.<flows> <ms> ms" for p50 and p95.
import { join } from 'node:path'
import {
  type ClickHouseConfig,
  aggregatedOrderBy,
  aggregatedTables,
  configSchema,
  ident,
  openClickHouse,
  renderCreateTable,
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
const now = Math.floor(Date.now() / 1000 / 3600) * 3600

const dir = await tempDir('bench-query')
const raw = Schema.decodeUnknownSync(configSchema([]))({
  clickhouse: { path: join(dir, 'db'), database: 'bench', retention: { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 } },
}) as { clickhouse: ClickHouseConfig }
const clickhouse = raw.clickhouse
const client = await openClickHouse(clickhouse)
const db = ident(clickhouse.database)

const command = (query: string) => client.command({ query, clickhouse_settings: {} })

/** Columns the generator fills; every other column keeps its default. */
const generatedColumns = new Set(
  'TimeReceived SamplingRate ExporterAddress ExporterName InIf OutIf InIfName OutIfName InIfSpeed OutIfSpeed InIfBoundary OutIfBoundary SrcAS DstAS SrcAddr DstAddr Proto SrcPort DstPort Bytes Packets SrcCountry DstCountry EType'.split(' '),
)

/**
 * Flows over the 7 days before `now`: 4 exporters, source ASes skewed over 500, destination
 * ASes over 50, interfaces and countries following from the ASes, ports skewed, IPv4 /16s.
 */
const generate = async (count: number) => {
  const start = performance.now()
  await command(`CREATE DATABASE IF NOT EXISTS ${db}`)
  for (const table of tableDefinitions(clickhouse)) {
    await command(`DROP TABLE IF EXISTS ${db}.${ident(table.name)}`)
    await command(renderCreateTable(clickhouse, table))
  }
  // Chunks keep the engine's memory bounded.
  const chunk = 10_000_000
  for (let offset = 0; offset < count; offset += chunk) {
    const n = Math.min(chunk, count - offset)
    await command(`
      INSERT INTO ${db}.flows (${[...generatedColumns].join(', ')})
      SELECT ${[...generatedColumns].join(', ')} FROM (
      SELECT
        toDateTime(${now} - (rand(1) % ${7 * DAY})) AS TimeReceived,
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
        [443, 80, 53, 22, 25, 8080, 3389, 123][1 + toUInt32(pow(rand(10) / 4294967295, 2) * 8)] AS DstPort,
        if(DstPort IN (53, 123), 17, 6) AS Proto,
        1024 + rand(9) % 60000 AS SrcPort,
        40 + rand(11) % 1460 AS Bytes, 1 + rand(12) % 10 AS Packets,
        ['FR', 'US', 'DE', 'JP', 'BR', 'GB', 'IN'][1 + SrcAS % 7] AS SrcCountry, 'FR' AS DstCountry,
        2048 AS EType
      FROM numbers(${offset}, ${n}))`)
  }
  const rawSeconds = (performance.now() - start) / 1000
  console.error(`# ${count} raw flows inserted in ${rawSeconds.toFixed(1)} s`)
  // The aggregated tables hold per-interval sums of their key columns, as SummingMergeTree keeps
  // them once merged. Only the columns generated above vary; the other key columns hold their
  // default in every raw row, so leaving them out of the GROUP BY (and the insert) gives the same
  // rows at a fraction of the cost.
  const keys = aggregatedOrderBy(clickhouse).filter((k) => generatedColumns.has(k)).map(ident)
  for (const table of aggregatedTables) {
    const select = keys.map((k) => (k === '`TimeReceived`' ? `toStartOfInterval(TimeReceived, toIntervalSecond(${table.resolutionSeconds})) AS TimeReceived` : k))
    await command(`INSERT INTO ${db}.${ident(table.name)} (${keys.join(', ')}, Bytes, Packets, Flows)
      SELECT ${select.join(', ')}, sum(Bytes), sum(Packets), count() FROM ${db}.flows GROUP BY ${keys.join(', ')}`)
    console.error(`# ${table.name} filled after ${((performance.now() - start) / 1000).toFixed(1)} s`)
  }
  const rows = await (await client.query({ query: `SELECT table, sum(rows) AS rows FROM system.parts WHERE database = 'bench' AND active GROUP BY table ORDER BY table`, format: 'JSONEachRow' })).json<{ table: string; rows: string }>()
  console.error(`# ${count} flows generated in ${rawSeconds.toFixed(1)} s, aggregated in ${((performance.now() - start) / 1000 - rawSeconds).toFixed(1)} s: ${rows.map((r) => `${r.table} ${r.rows}`).join(', ')}`)
}

const config = Schema.decodeUnknownSync(GatewayConfig)({ listen: '127.0.0.1:0', limits: { maxConcurrentQueries: 64, queryTimeout: '120s' } })
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
const iso = (s: number) => new Date(s * 1000).toISOString()

const cases: Record<string, { query: string; variables: Record<string, unknown> }> = {
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
}

const ask = async (query: string, variables: Record<string, unknown>) => {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) })
  const body = (await response.json()) as { errors?: unknown[]; data?: Record<string, { table?: { name: string } }> }
  if (body.errors) throw new Error(JSON.stringify(body.errors))
  return body.data
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

try {
  for (const size of SIZES) {
    await generate(size)
    const label = size >= 1e6 ? `${size / 1e6}M` : String(size)
    for (const [name, { query, variables }] of Object.entries(cases)) {
      const first = await ask(query, variables) // warms caches, shows the table
      const times: number[] = []
      for (let i = 0; i < ROUNDS; i++) {
        const started = performance.now()
        await ask(query, variables)
        times.push(performance.now() - started)
      }
      times.sort((a, b) => a - b)
      const table = Object.values(first ?? {})[0]?.table?.name ?? 'flows'
      console.error(`# ${name} on ${label} flows reads ${table}`)
      console.log(`bench query.${name}.${label}.p50 ${quantile(times, 0.5).toFixed(1)} ms`)
      console.log(`bench query.${name}.${label}.p95 ${quantile(times, 0.95).toFixed(1)} ms`)
    }
  }
} finally {
  await server.close()
  await client.close()
  await removeDir(dir)
}
