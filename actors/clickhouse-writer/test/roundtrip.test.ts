// A FlowBatch with every column kind, through the writer's encoder and insert, into the real
// schema with every optional column group enabled: exact values in `flows`, exact sums per
// dimension (IPv4-mapped and IPv6 exporters, enums, LowCardinality strings) in the aggregated tables.
import { join } from 'node:path'
import { flowColumns } from '@flowbus/bus-schemas'
import { type ClickHouseConfig, aggregatedOrderBy, aggregatedTables, ident, openClickHouse, optionalGroups, storageColumns } from '@flowbus/runtime'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, tempDir } from '../../../test/src/harness/process.js'
import { NativeEncoder } from '../src/encode/native.js'
import { planColumns } from '../src/encode/plan.js'
import { embeddedInserter } from '../src/inserter.js'
import { blockHash } from '../src/writer.js'
import { clickHouseIP, comparableColumns, everyColumnBatch, expectedRow } from './every-column.js'
import { createSchema, eventually, resolveWriterConfig, scalar } from './harness.js'

type Client = Awaited<ReturnType<typeof openClickHouse>>

let dir: string
let client: Client
let config: ClickHouseConfig

beforeAll(async () => {
  dir = await tempDir('writer-roundtrip')
  config = resolveWriterConfig({
    clickhouse: {
      path: join(dir, 'db'),
      database: 'roundtrip',
      columns: { enable: Object.keys(optionalGroups) },
      retention: { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 },
    },
  }).clickhouse as ClickHouseConfig
  client = await openClickHouse(config)
  await createSchema(client, config)
})

afterAll(async () => {
  await client?.close()
  await removeDir(dir)
})

describe('every column kind into the flows schema', () => {
  it('comes back exactly from flows and sums exactly in the aggregated tables', async () => {
    const columns = storageColumns(config)
    expect(columns.map((c) => c.name)).toEqual(flowColumns.map((c) => c.name))
    const encoder = new NativeEncoder(planColumns(columns.map((c) => ({ name: c.name, type: c.type, source: c.name }))))
    const batch = everyColumnBatch(211)
    const block = encoder.encode(batch)
    await embeddedInserter(client, '').insertNative('`roundtrip`.`flows`', encoder.columns, block, blockHash(block))

    const rows = await (
      await client.query({
        query: `SELECT ${comparableColumns(columns)} FROM roundtrip.flows ORDER BY TimeReceived`,
        format: 'JSONEachRow',
        clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
      })
    ).json<Record<string, unknown>>()
    expect(rows).toHaveLength(batch.count)
    for (let r = 0; r < batch.count; r++) expect(rows[r], `row ${r}`).toEqual(expectedRow(batch, r, columns.map((c) => c.name)))

    // Sums per (minute, exporter, boundaries, direction, interface name) computed here from the batch.
    const expected = new Map<string, { flows: number; bytes: number }>()
    for (let r = 0; r < batch.count; r++) {
      const key = [
        Math.floor(batch.getNumber('TimeReceived', r) / 60) * 60,
        clickHouseIP(batch.getIP('ExporterAddress', r)),
        batch.getNumber('InIfBoundary', r),
        batch.getNumber('FlowDirection', r),
        batch.getString('InIfName', r),
      ].join('|')
      const sum = expected.get(key) ?? { flows: 0, bytes: 0 }
      sum.flows += 1
      sum.bytes += batch.getNumber('Bytes', r)
      expected.set(key, sum)
    }
    const table = aggregatedTables[0]!.name
    await eventually(async () => (await scalar(client, `SELECT sum(Flows) FROM roundtrip.${table}`)) === batch.count, `${table} filled`)
    const sums = await (
      await client.query({
        query: `SELECT toUnixTimestamp(TimeReceived) AS t, toString(ExporterAddress) AS e, CAST(InIfBoundary, 'Int8') AS b,
                  CAST(FlowDirection, 'Int8') AS d, InIfName AS i, sum(Flows) AS flows, sum(Bytes) AS bytes
                FROM roundtrip.${table} GROUP BY t, e, b, d, i`,
        format: 'JSONEachRow',
        clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
      })
    ).json<{ t: number; e: string; b: number; d: number; i: string; flows: number; bytes: number }>()
    const got = new Map(sums.map((s) => [[s.t, s.e, s.b, s.d, s.i].join('|'), { flows: s.flows, bytes: s.bytes }]))
    expect(got).toEqual(expected)
    for (const { name } of aggregatedTables.slice(1)) {
      await eventually(async () => (await scalar(client, `SELECT sum(Flows) FROM roundtrip.${name}`)) === batch.count, `${name} filled`)
      expect(await scalar(client, `SELECT sum(Bytes) FROM roundtrip.${name}`)).toBe([...expected.values()].reduce((a, s) => a + s.bytes, 0))
    }
    // The same flows twice in one more message: each view sums its block, so that insert adds one
    // row per key (not two), and merges then sum the rows of both inserts into one, exactly.
    const keys = aggregatedOrderBy(config).map(ident).join(', ')
    const distinctOf = async (name: string) => scalar(client, `SELECT count() FROM (SELECT DISTINCT ${keys} FROM roundtrip.${name})`)
    const rowsBefore = new Map<string, number>()
    for (const { name } of aggregatedTables) rowsBefore.set(name, await scalar(client, `SELECT count() FROM roundtrip.${name}`))
    const twice = Buffer.concat([block, block])
    await embeddedInserter(client, '').insertNative('`roundtrip`.`flows`', encoder.columns, twice, `${blockHash(twice)}-twice`)
    const bytes = [...expected.values()].reduce((a, s) => a + s.bytes, 0)
    for (const { name } of aggregatedTables) {
      await eventually(async () => (await scalar(client, `SELECT sum(Flows) FROM roundtrip.${name}`)) === 3 * batch.count, `${name} filled again`)
      const distinct = await distinctOf(name)
      expect(await scalar(client, `SELECT count() FROM roundtrip.${name}`), name).toBe(rowsBefore.get(name)! + distinct)
      await client.command({ query: `OPTIMIZE TABLE roundtrip.${name} FINAL` })
      expect(await scalar(client, `SELECT count() FROM roundtrip.${name}`), name).toBe(distinct)
      expect(await scalar(client, `SELECT sum(Flows) FROM roundtrip.${name}`), name).toBe(3 * batch.count)
      expect(await scalar(client, `SELECT sum(Bytes) FROM roundtrip.${name}`), name).toBe(3 * bytes)
    }
  })
})
