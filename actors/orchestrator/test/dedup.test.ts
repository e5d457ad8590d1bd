// Insert deduplication on the real engine: a batch retried with the same insert_deduplication_token
// is stored once in flows, in every aggregated table and in the counters table; different tokens
// are different batches, even with identical rows.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClickHouseClient } from '@clickhouse/client'
import { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { ClickHouseSection, aggregatedTables, deduplicatedInsertSettings, insertStatement, openClickHouse, queryRows } from '@flowbus/runtime'
import { Schema } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeDictionaryData, runMigrations } from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'flowbus-dedup-'))
const config = Schema.decodeUnknownSync(ClickHouseSection)({ path: join(dir, 'engine'), database: 'dedup' })
const now = Math.floor(Date.now() / 1000)

let client: ClickHouseClient
beforeAll(async () => {
  client = await openClickHouse(config)
  await runMigrations(client, config, { dictionarySource: { kind: 'table' }, dictionaryData: makeDictionaryData({ asNames: {} }) })
})
afterAll(async () => {
  await client?.close()
  rmSync(dir, { recursive: true, force: true })
})

const flows = (rows: number, bytes: number) =>
  Array.from({ length: rows }, (_, i) => ({ TimeReceived: now, ExporterAddress: '::ffff:192.0.2.7', SrcAS: 64500 + (i % 3), Bytes: bytes, Packets: 1 }))

// What the writer does: the same statement on every attempt of one bus batch, settings in the SQL.
const insert = async (values: object[], token: string | undefined, table = 'flows') => {
  const result = await client.exec({
    query: insertStatement(config, table, { format: 'JSONEachRow', settings: token === undefined ? {} : deduplicatedInsertSettings(token) }),
    values: Readable.from([Buffer.from(values.map((v) => JSON.stringify(v)).join('\n'))], { objectMode: false }),
  })
  result.stream.resume()
  await finished(result.stream)
}

const total = async (table: string, column: string) =>
  Number((await queryRows<{ n: string }>(client, `SELECT sum(${column}) AS n FROM dedup.${table}`))[0]!.n)

describe('insert deduplication tokens', () => {
  it('store a retried flow batch once, in flows and in every aggregated table', async () => {
    await insert(flows(50, 100), 'stream-1/shard-0/seq-41')
    await insert(flows(50, 100), 'stream-1/shard-0/seq-41')
    expect(await total('flows', 'Bytes')).toBe(5000)
    for (const table of aggregatedTables) {
      expect(await total(table.name, 'Bytes')).toBe(5000)
      expect(await total(table.name, 'Flows')).toBe(50)
    }
  })

  it('keep batches with different tokens, even identical ones, and their aggregates', async () => {
    await insert(flows(50, 100), 'stream-1/shard-0/seq-42')
    // A different raw batch whose per-minute sums equal the first one's.
    await insert(flows(25, 200), 'stream-1/shard-0/seq-43')
    expect(await total('flows', 'Bytes')).toBe(15_000)
    for (const table of aggregatedTables) {
      expect(await total(table.name, 'Bytes')).toBe(15_000)
      expect(await total(table.name, 'Flows')).toBe(125)
    }
  })

  it('store a retried counters batch once', async () => {
    const samples = [{ ExporterAddress: '::ffff:192.0.2.7', TimeReceived: now, IfIndex: 3, InOctets: 123456, OutOctets: 654321 }]
    await insert(samples, 'counters/shard-0/seq-1', 'interface_counters')
    await insert(samples, 'counters/shard-0/seq-1', 'interface_counters')
    await insert(samples, 'counters/shard-0/seq-2', 'interface_counters')
    expect(await total('interface_counters', 'InOctets')).toBe(2 * 123456)
  })

  it('leave no token behind: a later insert without one is stored', async () => {
    // chDB applies a request's clickhouse_settings with SET, which would outlive the request.
    await insert([{ ExporterAddress: '::1', TimeReceived: now, IfIndex: 9, InOctets: 1 }], undefined, 'interface_counters')
    expect(await total('interface_counters', 'InOctets')).toBe(2 * 123456 + 1)
  })
})
