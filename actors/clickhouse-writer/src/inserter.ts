// Sends one encoded Native block per insert to ClickHouse, deduplicated by a token. Server mode
// streams it over HTTP; embedded mode stages it in a file the in-process engine reads, because
// chDB's inline insert data is text-only (binary bytes are cut at blank lines).
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, open, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { openClickHouse } from '@flowbus/runtime'
import type { BlockColumn } from './encode/native.js'

type ClickHouseClient = Awaited<ReturnType<typeof openClickHouse>>
// The client types each setting (strings for 64-bit ones); ours are plain numbers it sends as is.
type ClickHouseSettings = NonNullable<Parameters<ClickHouseClient['exec']>[0]['clickhouse_settings']>

export interface BlockInserter {
  /**
   * Inserts Native data (one block, or blocks one after the other) into `table`; a later insert
   * with the same `token` is skipped.
   * `columns` are the block's columns with their block types: ClickHouse converts them to the
   * table's types and refuses values that do not fit (e.g. a number outside an Enum).
   */
  readonly insertNative: (table: string, columns: readonly BlockColumn[], block: Uint8Array, token: string) => Promise<void>
  /** Inserts a few rows as JSONEachRow (small tables such as interface counters). */
  readonly insertRows: (table: string, rows: readonly object[], token: string) => Promise<void>
}

const ident = (name: string): string => `\`${name.replace(/`/g, '``')}\``
const literal = (text: string): string => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`

// Settings go into the statement itself: chdb/connection turns clickhouse_settings into session
// SETs, which would leave a token behind for the next statement of the process.
//
// Views deduplicate by the token too, so an insert retried after a view failed feeds it once.
// The aggregated tables' rows are summed by background merges: summing again at insert time
// (optimize_on_insert) cost more than the raw insert, and the views run side by side.
const insertSettings = (token: string) => ({
  insert_deduplicate: 1,
  insert_deduplication_token: token,
  deduplicate_blocks_in_dependent_materialized_views: 1,
  optimize_on_insert: 0,
  parallel_view_processing: 1,
})

const settingsClause = (settings: Readonly<Record<string, string | number>>): string =>
  `SETTINGS ${Object.entries(settings)
    .map(([k, v]) => `${k} = ${typeof v === 'string' ? literal(v) : v}`)
    .join(', ')}`

/** Where embedded mode stages blocks: memory-backed /dev/shm when present. */
export const defaultSpoolDirectory = (): string => (existsSync('/dev/shm') ? '/dev/shm' : tmpdir())

export function embeddedInserter(client: ClickHouseClient, spoolDirectory: string): BlockInserter {
  const directory = join(spoolDirectory || defaultSpoolDirectory(), `flowbus-writer-${process.pid}`)
  let ready: Promise<unknown> | undefined
  return {
    insertNative: async (table, columns, block, token) => {
      ready ??= mkdir(directory, { recursive: true })
      await ready
      const file = join(directory, `${randomUUID()}.native`)
      const handle = await open(file, 'w')
      try {
        await handle.write(block)
      } finally {
        await handle.close()
      }
      const list = columns.map((c) => ident(c.name)).join(', ')
      // The structure is explicit: inferred from the target table, file() would read enums and
      // other converted columns as the table's types, skipping the checks of the conversion.
      const structure = columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ')
      try {
        await client.command({
          query: `INSERT INTO ${table} (${list}) ${settingsClause(insertSettings(token))} SELECT ${list} FROM file(${literal(file)}, Native, ${literal(structure)})`,
        })
      } finally {
        await unlink(file).catch(() => undefined)
      }
    },
    insertRows: async (table, rows, token) => {
      if (rows.length === 0) return
      const body = rows.map((row) => JSON.stringify(row)).join('\n')
      await client.command({ query: `INSERT INTO ${table} ${settingsClause(insertSettings(token))} FORMAT JSONEachRow\n${body}` })
    },
  }
}

export function serverInserter(client: ClickHouseClient): BlockInserter {
  return {
    insertNative: async (table, columns, block, token) => {
      const result = await client.exec({
        query: `INSERT INTO ${table} (${columns.map((c) => ident(c.name)).join(', ')}) FORMAT Native`,
        values: Readable.from([Buffer.from(block.buffer, block.byteOffset, block.byteLength)], { objectMode: false }),
        clickhouse_settings: insertSettings(token) as unknown as ClickHouseSettings,
      })
      // The response body is empty for an INSERT; reading it to the end frees the socket.
      for await (const _ of result.stream) void _
    },
    insertRows: async (table, rows, token) => {
      if (rows.length === 0) return
      await client.insert({
        table,
        values: rows as object[],
        format: 'JSONEachRow',
        clickhouse_settings: insertSettings(token) as unknown as ClickHouseSettings,
      })
    },
  }
}
