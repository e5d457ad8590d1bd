// The insert encoders against the real engine: a batch of every column type goes in through
// Native, RowBinary, TabSeparated and JSONCompactEachRow and comes back with the exact values.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ClickHouseSection, allStorageColumns, openClickHouse } from '@flowbus/runtime'
import { Schema } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, tempDir } from '../../../test/src/harness/process.js'
import { sampleFlowBatch } from '../../../bus-schemas/test/fixtures/sample-flows.js'
import { NativeEncoder } from '../src/encode/native.js'
import { type InsertColumn, UnsupportedColumn, planColumns } from '../src/encode/plan.js'
import { encodeRows } from '../src/encode/rows.js'
import { comparableColumns, everyColumnBatch, expectedRow } from './every-column.js'

type Client = Awaited<ReturnType<typeof openClickHouse>>

const columns: InsertColumn[] = allStorageColumns.map((c) => ({ name: c.name, type: c.type, source: c.name }))
const ddl = (table: string) =>
  `CREATE TABLE ${table} (${columns.map((c) => `\`${c.name}\` ${c.type}`).join(', ')}) ENGINE = MergeTree ORDER BY TimeReceived`

let dir: string
let client: Client

const query = async <T>(sql: string): Promise<T[]> => (await client.query({ query: sql, format: 'JSONEachRow' })).json<T>()

/** Inserts an encoded payload the way the embedded writer does: staged in a file the engine reads. */
const insertFile = async (table: string, format: string, body: Uint8Array) => {
  const file = join(dir, `${table}.${format}`)
  await writeFile(file, body)
  const structure = format === 'Native' ? '' : `, '${columns.map((c) => `${c.name} ${c.type}`).join(', ').replace(/'/g, "\\'")}'`
  await client.command({ query: `INSERT INTO ${table} SELECT * FROM file('${file}', ${format}${structure})` })
}

beforeAll(async () => {
  dir = await tempDir('writer-encode')
  client = await openClickHouse(Schema.decodeUnknownSync(ClickHouseSection)({ path: join(dir, 'db') }))
})

afterAll(async () => {
  await client?.close()
  await removeDir(dir)
})

describe('insert encoders', () => {
  const plans = planColumns(columns)
  const batch = everyColumnBatch(211)

  for (const format of ['Native', 'RowBinary', 'TabSeparated', 'JSONCompactEachRow'] as const) {
    it(`${format}: every column type comes back exactly`, async () => {
      const table = `t_${format}`
      await client.command({ query: ddl(table) })
      const body = format === 'Native' ? new NativeEncoder(plans).encode(batch) : encodeRows(batch, plans, format)
      await insertFile(table, format, body)
      const rows = await query<Record<string, unknown>>(
        `SELECT ${comparableColumns(columns)} FROM ${table} ORDER BY TimeReceived SETTINGS output_format_json_quote_64bit_integers = 0`,
      )
      expect(rows).toHaveLength(batch.count)
      for (let r = 0; r < batch.count; r++) expect(rows[r], `row ${r}`).toEqual(expectedRow(batch, r, columns.map((c) => c.name)))
    })
  }

  it('absent columns arrive as zero, empty and ::', async () => {
    await client.command({ query: ddl('t_absent') })
    const sample = sampleFlowBatch(50, 2)
    await insertFile('t_absent', 'Native', new NativeEncoder(plans).encode(sample))
    const [row] = await query<Record<string, unknown>>(
      `SELECT toString(SrcAddrNAT) AS nat, MPLSLabels, InVrfName, toUnixTimestamp64Milli(FlowStartTime) AS start FROM t_absent LIMIT 1 SETTINGS output_format_json_quote_64bit_integers = 0`,
    )
    expect(row).toEqual({ nat: '::', MPLSLabels: [], InVrfName: '', start: 0 })
  })

  it('refuses a column type it cannot produce, naming the column', () => {
    expect(() => planColumns([{ name: 'SrcAddr', type: 'String', source: 'SrcAddr' }])).toThrow(UnsupportedColumn)
    expect(() => planColumns([{ name: 'X', type: 'Nullable(UInt8)', source: 'Proto' }])).toThrow(/column X/)
  })
})
