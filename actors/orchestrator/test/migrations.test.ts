// Migrations on the real embedded engine: a fresh database, a second run that changes nothing,
// a database holding flows upgraded in place when optional columns and retention change, and
// one created before the projections upgraded to the current types, codecs and projections.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClickHouseClient } from '@clickhouse/client'
import { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import {
  ClickHouseSection,
  type ClickHouseConfig,
  PROJECTION_MERGE_SETTING,
  type TableDefinition,
  deduplicatedInsertSettings,
  existingColumns,
  insertStatement,
  openClickHouse,
  queryRows,
  renderCreateTable,
  renderCreateView,
  tableDefinitions,
  viewDefinitions,
} from '@flowbus/runtime'
import { Schema } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeDictionaryData, runMigrations, showCreateAll } from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'flowbus-migrations-'))
const section = (value: object): ClickHouseConfig => Schema.decodeUnknownSync(ClickHouseSection)({ path: join(dir, 'engine'), ...value })
const options = { dictionarySource: { kind: 'table' } as const, dictionaryData: makeDictionaryData({ asNames: { '64512': 'lab' } }) }

let client: ClickHouseClient
beforeAll(async () => {
  client = await openClickHouse(section({}))
})
afterAll(async () => {
  await client?.close()
  rmSync(dir, { recursive: true, force: true })
})

// Recent times: rows older than a table's TTL may be dropped as soon as they are inserted.
const now = Math.floor(Date.now() / 1000)
const count = async (query: string) => Number((await queryRows<{ n: string }>(client, query))[0]!.n)

describe('migrations on a fresh database', () => {
  const config = section({ database: 'fresh' })

  it('create every table, view and dictionary, then find nothing to do', async () => {
    const steps: string[] = []
    const first = await runMigrations(client, config, { ...options, progress: (step) => steps.push(step) })
    expect(first.changed.length).toBe(first.steps)
    expect(steps).toContain('table flows')
    const before = await showCreateAll(client, 'fresh')
    expect([...before.keys()]).toEqual(
      expect.arrayContaining(['flows', 'flows_1m0s', 'flows_5m0s', 'flows_1h0m0s', 'flows_1m0s_consumer', 'exporters', 'interfaces', 'interface_counters', 'protocols', 'asns', 'icmp', 'services']),
    )
    const second = await runMigrations(client, config, options)
    expect(second.changed).toEqual([])
    expect(await showCreateAll(client, 'fresh')).toEqual(before)
    const names = await queryRows<{ proto: string; as: string; svc: string; icmp: string; lab: string }>(
      client,
      `SELECT dictGet('fresh.protocols', 'name', toUInt64(17)) AS proto, dictGet('fresh.asns', 'name', toUInt64(13335)) AS as,
              dictGet('fresh.services', 'name', (toUInt8(6), toUInt16(22))) AS svc,
              dictGet('fresh.icmp', 'name', (toUInt8(58), toUInt8(128), toUInt8(0))) AS icmp,
              dictGet('fresh.asns', 'name', toUInt64(64512)) AS lab`,
    )
    expect(names).toEqual([{ proto: 'UDP', as: 'Cloudflare, Inc.', svc: 'ssh', icmp: 'echo-request', lab: 'lab' }])
  })
})

describe('migrations on a database holding flows', () => {
  const base = section({ database: 'upgrade' })

  const insertFlows = async (columns: Record<string, unknown>, rows: number, token: string) => {
    const values = Array.from({ length: rows }, (_, i) => ({
      TimeReceived: now - i,
      SamplingRate: 100,
      ExporterAddress: '::ffff:192.0.2.1',
      ExporterName: 'edge1',
      SrcAddr: `::ffff:198.51.100.${i % 250}`,
      InIf: 10,
      OutIf: 20,
      InIfName: 'et-0/0/1',
      SrcAS: 64500,
      Bytes: 1000,
      Packets: 2,
      ...columns,
    }))
    const result = await client.exec({
      query: insertStatement(base, 'flows', { format: 'JSONEachRow', settings: deduplicatedInsertSettings(token) }),
      values: Readable.from([Buffer.from(values.map((v) => JSON.stringify(v)).join('\n'))], { objectMode: false }),
    })
    result.stream.resume()
    await finished(result.stream)
  }

  it('adds optional columns in place, keeps the rows and feeds the new columns to the aggregates', async () => {
    await runMigrations(client, base, options)
    await insertFlows({}, 100, 'before-upgrade')
    const sums = `SELECT sum(Bytes) AS n FROM upgrade.flows_1m0s`
    expect(await count(sums)).toBe(100_000)

    const upgraded = section({ database: 'upgrade', columns: { enable: ['l2', 'vrf'] }, retention: { flows: '30d' } })
    const report = await runMigrations(client, upgraded, options)
    const changed = new Map(report.changed.map((c) => [c.step, c.actions.join('; ')]))
    expect(changed.get('table flows')).toMatch(/added SrcVlan, DstVlan, SrcMAC, DstMAC, InVrf, OutVrf, InVrfName, OutVrfName; TTL set to/)
    expect(changed.get('table flows_1m0s')).toMatch(/added SrcVlan, DstVlan, InVrf, OutVrf, InVrfName, OutVrfName/)
    expect(changed.get('view flows_1m0s_consumer')).toBe('replaced')
    expect(changed.has('table exporters')).toBe(false)

    expect(await count('SELECT count() AS n FROM upgrade.flows')).toBe(100)
    expect(await count(sums)).toBe(100_000)
    const columns = await existingColumns(client, 'upgrade', 'flows_1h0m0s')
    expect(columns.get('InVrfName')).toBe('String')
    const [table] = await queryRows<{ sorting_key: string; create_table_query: string }>(
      client,
      "SELECT sorting_key, create_table_query FROM system.tables WHERE database = 'upgrade' AND name = 'flows_1m0s'",
    )
    expect(table!.sorting_key).toMatch(/, SrcVlan, DstVlan, InVrf, OutVrf, InVrfName, OutVrfName$/)
    const [raw] = await queryRows<{ create_table_query: string }>(
      client,
      "SELECT create_table_query FROM system.tables WHERE database = 'upgrade' AND name = 'flows'",
    )
    expect(raw!.create_table_query).toContain('TTL TimeReceived + toIntervalSecond(2592000)')

    await insertFlows({ SrcVlan: 42, InVrfName: 'blue', SrcMAC: 0x0200_0000_0001 }, 10, 'after-upgrade')
    expect(await count("SELECT sum(Bytes) AS n FROM upgrade.flows_5m0s WHERE SrcVlan = 42 AND InVrfName = 'blue'")).toBe(10_000)
    expect(await count('SELECT sum(Flows) AS n FROM upgrade.flows_1h0m0s')).toBe(110)
    expect(await count("SELECT count() AS n FROM upgrade.flows WHERE SrcMAC = 0x020000000001")).toBe(10)

    const before = await showCreateAll(client, 'upgrade')
    expect((await runMigrations(client, upgraded, options)).changed).toEqual([])
    expect(await showCreateAll(client, 'upgrade')).toEqual(before)
  })

  it('fills exporters and interfaces from flows', async () => {
    const exporters = await queryRows<{ ExporterAddress: string; ExporterName: string }>(
      client,
      'SELECT ExporterAddress, ExporterName FROM upgrade.exporters FINAL',
    )
    expect(exporters).toEqual([{ ExporterAddress: '::ffff:192.0.2.1', ExporterName: 'edge1' }])
    const interfaces = await queryRows<{ IfIndex: number; IfName: string }>(
      client,
      'SELECT IfIndex, IfName FROM upgrade.interfaces FINAL ORDER BY IfIndex',
    )
    expect(interfaces).toEqual([
      { IfIndex: 10, IfName: 'et-0/0/1' },
      { IfIndex: 20, IfName: '' },
    ])
  })
})

describe('migrations on a database created by the schema before projections', () => {
  const config = section({ database: 'legacy' })

  // The tables as the schema created them before: LowCardinality names in the aggregated
  // tables, DoubleDelta times in the raw one, no projections.
  const legacy = (table: TableDefinition): TableDefinition => ({
    ...table,
    projections: [],
    columns: table.columns.map((c) => {
      const type = table.name.startsWith('flows_') && c.type === 'String' ? 'LowCardinality(String)' : c.type
      return { ...c, type, codec: c.name === 'TimeReceived' && table.name === 'flows' ? 'CODEC(DoubleDelta, LZ4)' : c.codec }
    }),
    engine: table.engine.replace(`, ${PROJECTION_MERGE_SETTING}`, ''),
  })

  it('alters types and codecs, adds the projections, keeps the rows, then finds nothing to do', async () => {
    await client.command({ query: 'CREATE DATABASE legacy' })
    for (const table of tableDefinitions(config)) await client.command({ query: renderCreateTable(config, legacy(table)) })
    for (const view of viewDefinitions(config)) await client.command({ query: renderCreateView(config, view) })
    const flows = Array.from({ length: 300 }, (_, i) => ({
      TimeReceived: now - i * 20,
      SamplingRate: 10,
      ExporterAddress: '::ffff:192.0.2.1',
      ExporterName: `edge${i % 3}`,
      SrcAS: 64500 + (i % 7),
      DstPort: [443, 80, 53][i % 3],
      Proto: 6,
      Bytes: 100,
      Packets: 1,
    }))
    const insert = await client.exec({
      query: insertStatement(config, 'flows', { format: 'JSONEachRow', settings: deduplicatedInsertSettings('legacy-1') }),
      values: Readable.from([Buffer.from(flows.map((f) => JSON.stringify(f)).join('\n'))], { objectMode: false }),
    })
    insert.stream.resume()
    await finished(insert.stream)
    const totals = "SELECT toString(((SELECT count() FROM legacy.flows), (SELECT sum(Bytes) FROM legacy.flows_1m0s), (SELECT sum(Flows) FROM legacy.flows_1h0m0s))) AS n"
    const before = (await queryRows<{ n: string }>(client, totals))[0]!.n

    const report = await runMigrations(client, config, options)
    const changed = new Map(report.changed.map((c) => [c.step, c.actions.join('; ')]))
    expect(changed.get('table flows')).toBe('altered TimeReceived to DateTime CODEC(T64, LZ4); projected ports_1h')
    expect(changed.get('table flows_5m0s')).toMatch(/^altered ExporterName to String, .*InIfName to String, .*; projected and materialized by_SrcAS, by_DstAS, by_ExporterName, by_SrcCountry, by_DstCountry$/)
    expect((await queryRows<{ n: string }>(client, totals))[0]!.n).toBe(before)
    expect((await existingColumns(client, 'legacy', 'flows_1h0m0s')).get('ExporterName')).toBe('String')

    // The old parts got the projection (materialized) and the gateway's kind of query reads it.
    const parts = await queryRows<{ name: string; rows: string }>(
      client,
      "SELECT name, toString(sum(rows)) AS rows FROM system.projection_parts WHERE database = 'legacy' AND table = 'flows_1m0s' AND active AND name = 'by_SrcAS' GROUP BY name",
    )
    expect(parts).toEqual([{ name: 'by_SrcAS', rows: expect.any(String) }])
    const plan = async () =>
      (
        await queryRows<{ explain: string }>(
          client,
          'EXPLAIN projections = 1 SELECT SrcAS, sum(Bytes * SamplingRate) * 8 AS v FROM legacy.flows_1m0s WHERE TimeReceived >= now() - 3600 GROUP BY SrcAS',
        )
      )
        .map((r) => r.explain)
        .join('\n')
    expect(await plan()).toContain('ReadFromMergeTree (by_SrcAS)')
    const bySrcAS = 'SELECT toString(groupArray((SrcAS, v))) AS n FROM (SELECT SrcAS, sum(Bytes * SamplingRate) AS v FROM legacy.flows_1m0s GROUP BY SrcAS ORDER BY SrcAS)'
    const raw = 'SELECT toString(groupArray((SrcAS, v))) AS n FROM (SELECT SrcAS, sum(Bytes * SamplingRate) AS v FROM legacy.flows GROUP BY SrcAS ORDER BY SrcAS)'
    expect((await queryRows<{ n: string }>(client, bySrcAS))[0]!.n).toBe((await queryRows<{ n: string }>(client, raw))[0]!.n)
    // The same keys again, then a merge: SummingMergeTree sums the rows and rebuilds the projection.
    const again = await client.exec({
      query: insertStatement(config, 'flows', { format: 'JSONEachRow', settings: deduplicatedInsertSettings('legacy-2') }),
      values: Readable.from([Buffer.from(flows.map((f) => JSON.stringify(f)).join('\n'))], { objectMode: false }),
    })
    again.stream.resume()
    await finished(again.stream)
    await client.command({ query: 'OPTIMIZE TABLE legacy.flows_1m0s FINAL' })
    // One part per daily partition (the flows may straddle midnight).
    expect(await count("SELECT count() - uniqExact(partition) AS n FROM system.parts WHERE database = 'legacy' AND table = 'flows_1m0s' AND active")).toBe(0)
    expect(await count('SELECT sum(Bytes) AS n FROM legacy.flows_1m0s')).toBe(60_000)
    expect((await queryRows<{ n: string }>(client, bySrcAS))[0]!.n).toBe((await queryRows<{ n: string }>(client, raw))[0]!.n)
    expect(await plan()).toContain('ReadFromMergeTree (by_SrcAS)')

    const schema = await showCreateAll(client, 'legacy')
    expect((await runMigrations(client, config, options)).changed).toEqual([])
    expect(await showCreateAll(client, 'legacy')).toEqual(schema)
  })

  it('drops the projections of dimensions no longer configured', async () => {
    const fewer = section({ database: 'legacy', projections: ['SrcAS'] })
    const report = await runMigrations(client, fewer, options)
    expect(new Map(report.changed.map((c) => [c.step, c.actions.join('; ')])).get('table flows_1h0m0s')).toBe(
      'dropped projections by_DstAS, by_ExporterName, by_SrcCountry, by_DstCountry',
    )
    expect((await runMigrations(client, fewer, options)).changed).toEqual([])
  })
})

describe('migrations with columns disabled', () => {
  it('create tables and views that do without them', async () => {
    const config = section({ database: 'minimal', columns: { disable: ['InIf', 'OutIf', 'InIfName', 'InIfBoundary', 'ExporterName', 'SrcAS'] } })
    await runMigrations(client, config, options)
    expect((await runMigrations(client, config, options)).changed).toEqual([])
    const columns = await existingColumns(client, 'minimal', 'flows')
    expect(columns.has('InIf')).toBe(false)
    expect(columns.has('OutIfName')).toBe(true)
    const result = await client.exec({
      query: insertStatement(config, 'flows', { format: 'JSONEachRow', settings: deduplicatedInsertSettings('minimal-1') }),
      values: Readable.from([Buffer.from(JSON.stringify({ TimeReceived: now, ExporterAddress: '::1', OutIfName: 'xe-1', Bytes: 5, Packets: 1 }))], {
        objectMode: false,
      }),
    })
    result.stream.resume()
    await finished(result.stream)
    expect(await count('SELECT sum(Bytes) AS n FROM minimal.flows_1m0s')).toBe(5)
    expect(await queryRows(client, 'SELECT ExporterAddress, ExporterName FROM minimal.exporters FINAL')).toEqual([{ ExporterAddress: '::1', ExporterName: '' }])
  })
})
