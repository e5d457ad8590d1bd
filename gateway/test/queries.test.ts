// The gateway against the embedded engine, with flows stored through the orchestrator's schema
// and the writer: every query type and unit, table selection, bidirectional and previous-period
// series, filters, and SQL-injection attempts through every string argument, each answer
// checked against sums computed here from the generated flows.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, tempDir } from '../../test/src/harness/process.js'
import { dimensionText, expectClose, expectSeries, expectedSeries, unitValue, type UnitName } from './expected.js'
import { type Client, type Pipeline, T0, type TestFlow, generateFlows, graphql, ok, scalar, startPipeline, waitSchema, waitStored } from './harness.js'
import { openClickHouse } from '@flowbus/runtime'
import { akvoradoFilters } from '../src/filter-language.js'
import { makeDimensionCatalogue } from '../src/query/dimensions.js'
import { makeQueryEngine } from '../src/query/engine.js'
import { type QueryOptions, makeQueryRunner } from '../src/query/runner.js'
import { getIntrospectionQuery } from 'graphql'

let dir: string
let pipeline: Pipeline
let client: Client
let url: string
const historical: TestFlow[] = generateFlows(20_000, 48)
// A few flows of the last hour (but not the last 10 minutes) for the home widgets and completion.
const recentStart = Math.floor(Date.now() / 1000) - 2400
const recent: TestFlow[] = generateFlows(300, 0.5, 99).map((f) => ({ ...f, time: f.time - T0 + recentStart }))
const flows: TestFlow[] = [...historical, ...recent]
const DB = 'gw'
const DAY = 86_400
const iso = (seconds: number) => new Date(seconds * 1000).toISOString()

beforeAll(async () => {
  dir = await tempDir('gateway-queries')
  pipeline = await startPipeline({
    http: { listen: '127.0.0.1:0' },
    log: { level: 'warning' },
    bus: { transport: 'memory' },
    // The data is dated October 2026: keep it whatever the retention would say.
    clickhouse: { path: join(dir, 'db'), database: DB, retention: { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 } },
    // An unreachable second process: health must name it and still answer.
    gateway: { listen: '127.0.0.1:0', limits: { maxConcurrentQueries: 16 }, metricsURLs: ['http://127.0.0.1:9/metrics'] },
    orchestrator: { asNames: { '64500': 'Example Transit' } },
  })
  url = pipeline.url
  client = await openClickHouse(pipeline.clickhouse)
  await waitSchema(client, pipeline.clickhouse)
  await pipeline.store(flows)
  await waitStored(client, DB, flows.length)
})

afterAll(async () => {
  await client?.close()
  await pipeline?.stop()
  if (dir) await removeDir(dir)
})

const TIMESERIES = `query ($range: TimeRange!, $points: Int, $dimensions: [String!], $filter: String, $limit: Int, $topBy: TopBy, $unit: Unit,
    $bidirectional: Boolean, $previousPeriod: Boolean, $v4: Int) {
  timeseries(range: $range, points: $points, dimensions: $dimensions, filter: $filter, limit: $limit, topBy: $topBy, unit: $unit,
      bidirectional: $bidirectional, previousPeriod: $previousPeriod, ipv4PrefixLength: $v4) {
    start end step times unit graphType dimensions previousOffset
    table { name resolution reason }
    series { dimensions name axis other values stats { min max avg last p95 total } }
    previous { values axis }
  }
}`

interface SeriesData {
  start: string
  end: string
  step: number
  times: string[]
  table: { name: string; resolution: number }
  series: { dimensions: string[]; axis: number; other: boolean; values: number[]; stats: Record<string, number> }[]
  previous: { values: number[]; axis: number } | null
  previousOffset: number | null
}

const timeseries = async (variables: Record<string, unknown>) => (await ok<{ timeseries: SeriesData }>(url, TIMESERIES, variables)).timeseries

const day1 = { start: iso(T0), end: iso(T0 + DAY) }

describe('timeseries', () => {
  it('gives the top source ASes per hour from flows_1h0m0s, the rest as Other, with statistics', async () => {
    const result = await timeseries({ range: day1, points: 24, dimensions: ['SrcAS'], limit: 5 })
    expect(result.table.name).toBe('flows_1h0m0s')
    expect(result.step).toBe(3600)
    expect(result.times).toHaveLength(24)
    expect(result.times[0]).toBe(iso(T0))
    const expected = expectedSeries(flows, { start: T0, end: T0 + DAY, step: 3600, dimensions: [dimensionText.SrcAS!], unit: 'BPS_L3', limit: 5 })
    expectSeries(result.series, expected.series)
    expect(result.series.at(-1)!.other).toBe(true)
    const first = result.series[0]!
    const values = expected.series[0]!.values
    expectClose(first.stats.max!, Math.max(...values), 'max')
    expectClose(first.stats.min!, Math.min(...values), 'min')
    expectClose(first.stats.avg!, values.reduce((a, b) => a + b, 0) / values.length, 'avg')
    expectClose(first.stats.last!, values.at(-1)!, 'last')
    expectClose(first.stats.p95!, [...values].sort((a, b) => a - b)[Math.ceil(0.95 * values.length) - 1]!, 'p95')
    expectClose(first.stats.total!, values.reduce((a, b) => a + b, 0) * 3600, 'total')
  })

  it('picks flows_5m0s and flows_1m0s for finer steps, and the sums agree', async () => {
    const five = await timeseries({ range: day1, points: 96, dimensions: ['ExporterName'], limit: 5 })
    expect(five.table.name).toBe('flows_5m0s')
    expect(five.step).toBe(900)
    expectSeries(five.series, expectedSeries(flows, { start: T0, end: T0 + DAY, step: 900, dimensions: [dimensionText.ExporterName!], unit: 'BPS_L3', limit: 5 }).series)
    const range = { start: iso(T0 + 3600), end: iso(T0 + 7200) }
    const one = await timeseries({ range, points: 60, dimensions: ['InIfName'], limit: 2 })
    expect(one.table.name).toBe('flows_1m0s')
    expect(one.step).toBe(60)
    expectSeries(one.series, expectedSeries(flows, { start: T0 + 3600, end: T0 + 7200, step: 60, dimensions: [dimensionText.InIfName!], unit: 'BPS_L3', limit: 2 }).series)
  })

  it('reads raw flows for a raw-only dimension or filter column, and for steps under a minute', async () => {
    const ports = await timeseries({ range: day1, points: 24, dimensions: ['DstPort'], limit: 3 })
    expect(ports.table.name).toBe('flows')
    expect(ports.table.resolution).toBe(1)
    expectSeries(ports.series, expectedSeries(flows, { start: T0, end: T0 + DAY, step: 3600, dimensions: [dimensionText.DstPort!], unit: 'BPS_L3', limit: 3 }).series)
    const filtered = await timeseries({ range: day1, points: 24, dimensions: ['SrcAS'], limit: 3, filter: 'DstPort = 443' })
    expect(filtered.table.name).toBe('flows')
    expectSeries(
      filtered.series,
      expectedSeries(flows, { start: T0, end: T0 + DAY, step: 3600, dimensions: [dimensionText.SrcAS!], unit: 'BPS_L3', limit: 3, filter: (f) => f.dstPort === 443 }).series,
    )
    const fine = await timeseries({ range: { start: iso(T0), end: iso(T0 + 600) }, points: 60, limit: 3 })
    expect(fine.table.name).toBe('flows')
    expect(fine.step).toBe(10)
  })

  for (const unit of ['BPS_L2', 'PPS', 'FLOWS', 'IN_IF_PERCENT'] as UnitName[]) {
    it(`computes ${unit}`, async () => {
      const result = await timeseries({ range: day1, points: 24, dimensions: ['InIfName'], limit: 2, unit })
      expectSeries(result.series, expectedSeries(flows, { start: T0, end: T0 + DAY, step: 3600, dimensions: [dimensionText.InIfName!], unit, limit: 2 }).series)
    })
  }

  it('ranks by the highest point (MAX) and by the last point (LAST)', async () => {
    for (const topBy of ['MAX', 'LAST'] as const) {
      const result = await timeseries({ range: day1, points: 24, dimensions: ['SrcAS', 'Proto'], limit: 4, topBy })
      expectSeries(
        result.series,
        expectedSeries(flows, { start: T0, end: T0 + DAY, step: 3600, dimensions: [dimensionText.SrcAS!, dimensionText.Proto!], unit: 'BPS_L3', limit: 4, topBy }).series,
      )
    }
  })

  it('filters with the filter language', async () => {
    const result = await timeseries({ range: day1, points: 24, dimensions: ['SrcAS'], limit: 3, filter: 'Proto = 17 AND ExporterName = "edge2" AND InIfBoundary = external' })
    expect(result.table.name).toBe('flows_1h0m0s')
    const filter = (f: TestFlow) => f.proto === 17 && f.exporterName === 'edge2' && f.inIfBoundary === 1
    expectSeries(result.series, expectedSeries(flows, { start: T0, end: T0 + DAY, step: 3600, dimensions: [dimensionText.SrcAS!], unit: 'BPS_L3', limit: 3, filter }).series)
  })

  it('adds the reverse direction as negative series grouped by the swapped dimensions', async () => {
    const filter = 'SrcCountry = "FR"'
    const result = await timeseries({ range: day1, points: 24, dimensions: ['SrcAS', 'InIfName'], limit: 3, filter, bidirectional: true })
    const direct = expectedSeries(flows, {
      start: T0, end: T0 + DAY, step: 3600, dimensions: [dimensionText.SrcAS!, dimensionText.InIfName!], unit: 'BPS_L3', limit: 3, filter: (f) => f.srcCountry === 'FR',
    })
    const reverse = expectedSeries(flows, {
      start: T0, end: T0 + DAY, step: 3600, dimensions: [dimensionText.DstAS!, dimensionText.OutIfName!], unit: 'BPS_L3', limit: 3, filter: (f) => f.dstCountry === 'FR', top: direct.top,
    })
    const axis1 = result.series.filter((s) => s.axis === 1)
    const axis2 = result.series.filter((s) => s.axis === 2)
    expectSeries(axis1, direct.series)
    expectSeries(axis2, reverse.series, -1)
  })

  it('overlays the previous period (one day back for a day)', async () => {
    const day2 = { start: iso(T0 + DAY), end: iso(T0 + 2 * DAY) }
    const result = await timeseries({ range: day2, points: 24, previousPeriod: true })
    expect(result.previousOffset).toBe(DAY)
    expect(result.previous!.axis).toBe(3)
    const previous = expectedSeries(flows, { start: T0, end: T0 + DAY, step: 3600, dimensions: [], unit: 'BPS_L3', limit: 1 })
    result.previous!.values.forEach((v, i) => expectClose(v, previous.series[0]!.values[i]!, `previous[${i}]`))
    const current = expectedSeries(flows, { start: T0 + DAY, end: T0 + 2 * DAY, step: 3600, dimensions: [], unit: 'BPS_L3', limit: 1 })
    expectSeries(result.series, current.series)
    expect(result.series[0]!.dimensions).toEqual([])
  })

  it('fills hours without flows with zeros', async () => {
    const result = await timeseries({ range: { start: iso(T0 + DAY), end: iso(T0 + 3 * DAY) }, points: 48, dimensions: ['SrcAS'], limit: 2 })
    expect(result.times).toHaveLength(48)
    for (const s of result.series) expect(s.values.slice(24).every((v) => v === 0)).toBe(true)
  })

  it('truncates addresses to a prefix length', async () => {
    const result = await timeseries({ range: day1, points: 24, dimensions: ['SrcAddr'], limit: 5, v4: 24 })
    expect(result.table.name).toBe('flows')
    const prefix = (f: TestFlow) => `${f.srcAddr.split('.').slice(0, 3).join('.')}.0`
    expectSeries(result.series, expectedSeries(flows, { start: T0, end: T0 + DAY, step: 3600, dimensions: [prefix], unit: 'BPS_L3', limit: 5 }).series)
    expect(result.series.map((s) => s.dimensions[0])).toEqual(['198.51.100.0', '198.51.101.0'].filter((p) => result.series.some((s) => s.dimensions[0] === p)))
  })
})

describe('topN, sankey, flows', () => {
  it('gives the top destination ports over a day with totals and Other', async () => {
    const data = await ok<{ topN: any }>(
      url,
      `query ($range: TimeRange!) { topN(range: $range, dimensions: ["DstPort"], limit: 3, unit: PPS) {
        table { name } rows { dimensions value total percent } other { dimensions total } all { total value } } }`,
      { range: day1 },
    )
    const totals = new Map<string, number>()
    let all = 0
    for (const f of flows) {
      if (f.time < T0 || f.time >= T0 + DAY) continue
      const v = unitValue('PPS', f)
      totals.set(String(f.dstPort), (totals.get(String(f.dstPort)) ?? 0) + v)
      all += v
    }
    const top = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3)
    expect(data.topN.table.name).toBe('flows')
    expect(data.topN.rows.map((r: any) => r.dimensions[0])).toEqual(top.map((t) => t[0]))
    data.topN.rows.forEach((r: any, i: number) => {
      expectClose(r.total, top[i]![1], 'total')
      expectClose(r.value, top[i]![1] / DAY, 'value')
      expectClose(r.percent, (100 * top[i]![1]) / all, 'percent')
    })
    expectClose(data.topN.all.total, all, 'all')
    expectClose(data.topN.other.total, all - top.reduce((s, t) => s + t[1], 0), 'other')
    expect(data.topN.other.dimensions).toEqual(['Other'])
  })

  it('uses an aggregated table for aggregated dimensions over a week-like range', async () => {
    const data = await ok<{ topN: any }>(
      url,
      `query ($range: TimeRange!) { topN(range: $range, dimensions: ["SrcAS"], limit: 5) { table { name } rows { dimensions total } } }`,
      { range: { start: iso(T0), end: iso(T0 + 2 * DAY) } },
    )
    expect(data.topN.table.name).toBe('flows_1h0m0s')
    const totals = new Map<string, number>()
    for (const f of historical) totals.set(String(f.srcAS), (totals.get(String(f.srcAS)) ?? 0) + unitValue('BPS_L3', f))
    const top = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5)
    expect(data.topN.rows.map((r: any) => r.dimensions[0])).toEqual(top.map((t) => t[0]))
    data.topN.rows.forEach((r: any, i: number) => expectClose(r.total, top[i]![1], 'total'))
  })

  it('counts the whole hours starting in the range for raw top-Ns, from the hourly projection for ports', async () => {
    // Captures the SQL the engine sends, to ask ClickHouse how it would read it.
    const runner = makeQueryRunner(client, { database: DB, timeoutMs: 60_000, maxConcurrentPerUser: 4, server: false })
    const sent: { sql: string; params: Record<string, unknown> }[] = []
    const capturing = { ...runner, rows: <T>(sql: string, params: Record<string, unknown>, o: QueryOptions) => (sent.push({ sql, params }), runner.rows<T>(sql, params, o)) }
    const engine = makeQueryEngine(capturing, makeDimensionCatalogue(pipeline.clickhouse), {
      clickhouse: pipeline.clickhouse,
      filters: akvoradoFilters,
      limits: { maxPoints: 2000, maxRangeSeconds: 400 * DAY, maxLimit: 1000 },
    })
    const plan = async (statement: { sql: string; params: Record<string, unknown> }) =>
      (await (await client.query({ query: `EXPLAIN projections = 1 ${statement.sql}`, query_params: statement.params, format: 'JSONEachRow' })).json<{ explain: string }>())
        .map((r) => r.explain)
        .join('\n')
    // Half an hour into the first hour: the hours starting in the range are T0+1h … T0+1d+1h.
    const range = { start: T0 + 1800, end: T0 + DAY + 1800 }
    const base = { range, filter: '', truncation: { ipv4PrefixLength: 32, ipv6PrefixLength: 128 }, unit: 'BPS_L3' as const, limit: 4 }
    const options = { user: 'test', purpose: 'test' }
    for (const [dimension, projection] of [['DstPort', true], ['SrcPort', false]] as const) {
      sent.length = 0
      const answer = await engine.topN({ ...base, dimensions: [dimension] }, options)
      const totals = new Map<string, number>()
      for (const f of flows) {
        if (f.time < T0 + 3600 || f.time >= T0 + DAY + 3600) continue
        const key = String(dimension === 'DstPort' ? f.dstPort : f.srcPort)
        totals.set(key, (totals.get(key) ?? 0) + unitValue('BPS_L3', f))
      }
      const top = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 4)
      expect(answer.rows.map((r) => r.dimensions[0])).toEqual(top.map((t) => t[0]))
      answer.rows.forEach((r, i) => expectClose(r.total, top[i]![1], `${dimension} total`))
      expectClose(answer.all.total, [...totals.values()].reduce((a, b) => a + b, 0), `${dimension} all`)
      expect(sent).toHaveLength(1)
      if (projection) expect(await plan(sent[0]!)).toContain('ReadFromMergeTree (ports_1h)')
      else {
        // Plain times: the primary key prunes, and no function runs per row.
        expect(sent[0]!.sql).not.toContain('toStartOfHour')
        expect(await plan(sent[0]!)).not.toContain('ports_1h')
      }
    }
  })

  it('builds a sankey of two dimensions, each with its own top and Other', async () => {
    const data = await ok<{ sankey: any }>(
      url,
      `query ($range: TimeRange!) { sankey(range: $range, dimensions: ["SrcCountry", "Proto"], limit: 3) {
        table { name } rows { dimensions total } nodes links { source target value } } }`,
      { range: day1 },
    )
    const inRange = flows.filter((f) => f.time >= T0 && f.time < T0 + DAY)
    const topOf = (key: (f: TestFlow) => string) => {
      const totals = new Map<string, number>()
      for (const f of inRange) totals.set(key(f), (totals.get(key(f)) ?? 0) + unitValue('BPS_L3', f))
      return new Set([...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 3).map((e) => e[0]))
    }
    const tops = [topOf(dimensionText.SrcCountry!), topOf(dimensionText.Proto!)]
    const expected = new Map<string, number>()
    for (const f of inRange) {
      const dims = [dimensionText.SrcCountry!(f), dimensionText.Proto!(f)].map((v, i) => (tops[i]!.has(v) ? v : 'Other'))
      expected.set(JSON.stringify(dims), (expected.get(JSON.stringify(dims)) ?? 0) + unitValue('BPS_L3', f))
    }
    expect(data.sankey.rows).toHaveLength(expected.size)
    for (const r of data.sankey.rows) expectClose(r.total, expected.get(JSON.stringify(r.dimensions))!, JSON.stringify(r.dimensions))
    expect(data.sankey.nodes).toContain(`FR (SrcCountry)`)
    const linkSum = data.sankey.links.reduce((s: number, l: any) => s + l.value, 0)
    expectClose(linkSum, [...expected.values()].reduce((a, b) => a + b, 0) / DAY, 'links')
  })

  it('refuses a sankey of one dimension', async () => {
    const result = await graphql(url, `query ($range: TimeRange!) { sankey(range: $range, dimensions: ["SrcAS"]) { nodes } }`, { range: day1 })
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_ARGUMENT')
  })

  it('lists the last flows matching a filter, newest first, with addresses as text', async () => {
    const data = await ok<{ flows: Record<string, any>[] }>(url, `{ flows(filter: "DstPort = 22 AND SrcAS = 64500", limit: 7) }`)
    const expected = flows
      .filter((f) => f.dstPort === 22 && f.srcAS === 64500)
      .sort((a, b) => b.time - a.time)
      .slice(0, 7)
    expect(data.flows.map((f) => f.TimeReceived)).toEqual(expected.map((f) => f.time))
    expect(data.flows[0]!.SrcAddr).toMatch(/^198\.51\.10[01]\.\d$/)
    expect(data.flows[0]!.ExporterAddress).toMatch(/^192\.0\.2\.[12]$/)
    expect(data.flows.every((f) => f.DstPort === 22 && f.SrcAS === 64500)).toBe(true)
    const bytes = await ok<{ flows: Record<string, any>[] }>(url, `{ flows(limit: 3, orderBy: BYTES_DESC) }`)
    expect(bytes.flows.map((f) => f.Bytes)).toEqual(flows.map((f) => f.bytes).sort((a, b) => b - a).slice(0, 3))
  })
})

describe('schema, exporters, filters, home', () => {
  it('answers the introspection query GraphiQL sends, whatever its depth', async () => {
    const result = await graphql(url, getIntrospectionQuery())
    expect(result.errors).toBeUndefined()
    expect((result.data as any).__schema.queryType.name).toBe('Query')
  })

  it('lists dimensions with where they are stored', async () => {
    const data = await ok<{ dimensions: any[] }>(url, `{ dimensions { name type aggregated address filterable description } }`)
    const byName = new Map(data.dimensions.map((d) => [d.name, d]))
    expect(byName.get('SrcAS')).toMatchObject({ aggregated: true, address: false })
    expect(byName.get('DstPort')).toMatchObject({ aggregated: false })
    expect(byName.get('SrcAddr')).toMatchObject({ address: true, type: 'IPv6' })
  })

  it('lists exporters and their interfaces', async () => {
    const data = await ok<{ exporters: any[] }>(url, `{ exporters { address name lastSeen interfaces { index name speed boundary } } }`)
    expect(data.exporters.map((e) => [e.address, e.name])).toEqual([
      ['192.0.2.1', 'edge1'],
      ['192.0.2.2', 'edge2'],
    ])
    const edge1 = data.exporters[0]!
    expect(edge1.interfaces.map((i: any) => i.index)).toEqual([1, 2, 3, 10, 11])
    expect(edge1.interfaces[0]).toMatchObject({ name: 'Gi0/1', speed: 10_000, boundary: 'external' })
    expect(edge1.lastSeen).toBe(iso(Math.max(...flows.filter((f) => f.exporter === '192.0.2.1').map((f) => f.time))))
  })

  it('validates filters with positions', async () => {
    const data = await ok<{ good: any; bad: any }>(
      url,
      `{ good: filterValidate(filter: "DstPort = 443") { valid columns rawOnly }
         bad: filterValidate(filter: "SrcAS = AS65000 AND (") { valid problems { message offset line column expected } } }`,
    )
    expect(data.good).toEqual({ valid: true, columns: ['DstPort'], rawOnly: true })
    expect(data.bad.valid).toBe(false)
    expect(data.bad.problems[0].offset).toBe(21)
  })

  it('completes column names and values seen in ClickHouse, with their names', async () => {
    const columns = await ok<{ filterComplete: any[] }>(url, `{ filterComplete(filter: "ExporterN") { label kind from to } }`)
    expect(columns.filterComplete.map((s) => s.label)).toContain('ExporterName')
    const exporters = await ok<{ filterComplete: any[] }>(url, `{ filterComplete(filter: "ExporterName = ") { label kind insertText } }`)
    const values = exporters.filterComplete.filter((s) => s.kind === 'value')
    expect(values.map((s) => s.insertText).sort()).toEqual(['"edge1"', '"edge2"'])
    const ases = await ok<{ filterComplete: any[] }>(url, `{ filterComplete(filter: "SrcAS = 6450") { label kind detail } }`)
    const seen = new Set(recent.map((f) => String(f.srcAS)).filter((a) => a.startsWith('6450')))
    const asValues = ases.filterComplete.filter((s) => s.kind === 'value')
    expect(new Set(asValues.map((s) => s.label))).toEqual(seen)
    expect(asValues.find((s) => s.label === '64500')?.detail).toBe('Example Transit')
  })

  it('serves the home widgets', async () => {
    const data = await ok<{ home: any }>(url, `{ home { flowRate exporterCount lastFlow top(dimension: "SrcAS", limit: 3) { rows { name total } } } }`)
    expect(data.home.exporterCount).toBe(2)
    expect(data.home.lastFlow.TimeReceived).toBe(Math.max(...flows.map((f) => f.time)))
    // Nothing in the last minute: the recent flows end 10 minutes ago.
    expect(data.home.flowRate).toBe(0)
    const totals = new Map<string, number>()
    for (const f of recent) totals.set(String(f.srcAS), (totals.get(String(f.srcAS)) ?? 0) + unitValue('BPS_L3', f))
    const top = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3)
    expect(data.home.top.rows.map((r: any) => r.name)).toEqual(top.map((t) => t[0]))
    data.home.top.rows.forEach((r: any, i: number) => expectClose(r.total, top[i]![1], 'home top'))
  })
})

describe('health', () => {
  it('reads the writer\'s rows from this process and names sources it could not read', async () => {
    const data = await ok<{ health: any }>(url, `{ health { rowsStored busPendingMessages sources errors exporters { exporter } } }`)
    expect(data.health.rowsStored).toBe(flows.length)
    expect(data.health.sources).toEqual(['local'])
    expect(data.health.errors).toHaveLength(1)
    expect(data.health.errors[0]).toContain('http://127.0.0.1:9/metrics')
  })
})

describe('SQL injection through every string argument', () => {
  const hostile = [
    `'; DROP TABLE ${DB}.flows; --`,
    `" OR 1=1 --`,
    `\\'); SELECT * FROM system.users; --`,
    `SrcAS = 1) OR (1=1`,
    `ExporterName = "x' OR '1'='1"`,
    `ExporterName = "\\" OR 1=1 --"`,
    `/* */ 1=1 UNION ALL SELECT name FROM system.tables`,
    `ExporterName LIKE "%'; TRUNCATE TABLE ${DB}.flows; --"`,
  ]

  it('keeps every table whole and answers with a filter error or an empty match', async () => {
    for (const text of hostile) {
      for (const [query, variables] of [
        [`query ($f: String!, $r: TimeRange!) { timeseries(range: $r, filter: $f, points: 24, dimensions: ["SrcAS"], bidirectional: true, previousPeriod: true) { series { name } } }`, { f: text, r: day1 }],
        [`query ($f: String!, $r: TimeRange!) { topN(range: $r, filter: $f, dimensions: ["SrcAS"]) { rows { name } } }`, { f: text, r: day1 }],
        [`query ($f: String!, $r: TimeRange!) { sankey(range: $r, filter: $f, dimensions: ["SrcAS", "DstAS"]) { nodes } }`, { f: text, r: day1 }],
        [`query ($f: String!) { flows(filter: $f) }`, { f: text }],
        [`query ($f: String!) { filterValidate(filter: $f) { valid } }`, { f: text }],
        [`query ($f: String!) { filterComplete(filter: $f) { label } }`, { f: text }],
        [`query ($f: String!, $r: TimeRange!) { timeseries(range: $r, dimensions: [$f]) { step } }`, { f: text, r: day1 }],
        [`query ($f: String!, $r: TimeRange!) { topN(range: $r, dimensions: ["SrcAS", $f]) { all { total } } }`, { f: text, r: day1 }],
        [`query ($f: String!) { home { top(dimension: $f) { all { total } } } }`, { f: text }],
        [`mutation ($f: String!) { saveFilter(description: $f, filter: "SrcAS = 1") { id description } }`, { f: text }],
        [`mutation ($f: ID!) { deleteFilter(id: $f) }`, { f: text }],
      ] as const) {
        const result = await graphql(url, query, variables as Record<string, unknown>)
        for (const error of result.errors ?? []) {
          expect(['BAD_FILTER', 'UNKNOWN_DIMENSION', 'BAD_ARGUMENT'], `${query} with ${text}: ${error.message}`).toContain(error.extensions?.code)
        }
        const flowsData = (result.data as { flows?: Record<string, unknown>[] } | undefined)?.flows
        if (flowsData) expect(flowsData).toEqual([])
      }
    }
    expect(await scalar(client, `SELECT count() FROM ${DB}.flows`)).toBe(flows.length)
    for (const table of ['flows_1m0s', 'flows_5m0s', 'flows_1h0m0s']) expect(await scalar(client, `SELECT sum(Flows) FROM ${DB}.${table}`)).toBe(flows.length)
    // A hostile description is stored as given, not executed.
    const saved = await ok<{ savedFilters: any[] }>(url, `{ savedFilters { description filter } }`)
    expect(saved.savedFilters.map((s) => s.description).sort()).toEqual([...hostile].sort())
  })
})
