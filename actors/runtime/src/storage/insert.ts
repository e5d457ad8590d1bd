// INSERT statements with their settings inside the SQL. chDB's @clickhouse/client connection
// applies `clickhouse_settings` with SET on its session, where they stay for later queries (a
// deduplication token would then drop the next batch), so storage code puts settings here.
import type { ClickHouseConfig } from '../config/sections.js'
import { ident, sqlString } from './ddl.js'

export type InsertSettings = Readonly<Record<string, string | number | boolean>>

/** `SETTINGS a = 1, b = 'x'`, or '' without settings; names are checked, values quoted. */
export const settingsClause = (settings: InsertSettings): string => {
  const entries = Object.entries(settings)
  if (entries.length === 0) return ''
  return `SETTINGS ${entries
    .map(([name, value]) => {
      if (!/^[a-z_][a-z0-9_]*$/i.test(name)) throw new Error(`"${name}" is not a ClickHouse setting name`)
      return `${name} = ${typeof value === 'string' ? sqlString(value) : typeof value === 'boolean' ? Number(value) : value}`
    })
    .join(', ')}`
}

/**
 * Settings of an idempotent insert: a batch retried with the same token (e.g. derived from the
 * bus stream, shard and sequence) is stored once, in the table and in the aggregated tables
 * its materialized views feed.
 */
export const deduplicatedInsertSettings = (token: string): InsertSettings => ({
  insert_deduplicate: 1,
  insert_deduplication_token: token,
  deduplicate_blocks_in_dependent_materialized_views: 1,
})

/** `INSERT INTO db.table [(columns)] SETTINGS … FORMAT f`, for `client.exec({ query, values })`. */
export const insertStatement = (
  config: Pick<ClickHouseConfig, 'database'>,
  table: string,
  options: { readonly format: string; readonly columns?: readonly string[]; readonly settings?: InsertSettings },
): string =>
  [
    `INSERT INTO ${ident(config.database)}.${ident(table)}`,
    options.columns ? `(${options.columns.map(ident).join(', ')})` : '',
    settingsClause(options.settings ?? {}),
    `FORMAT ${options.format}`,
  ]
    .filter(Boolean)
    .join(' ')
