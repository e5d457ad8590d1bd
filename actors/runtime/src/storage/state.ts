// What the ClickHouse database holds now (tables, columns, comments), read from system tables,
// and the wait every inserting actor does until the orchestrator's migrations created its table.
import type { ClickHouseClient } from '@clickhouse/client'
import { Duration, Effect, Schedule } from 'effect'
import type { ClickHouseConfig } from '../config/sections.js'
import { clickHouseError, type ClickHouseUnavailable, describeClickHouse } from './connection.js'
import { viewDefinitions } from './ddl.js'
import { COUNTERS_TABLE, FLOWS_TABLE, storageColumns } from './schema.js'

/** One object of the database as system.tables describes it. */
export interface ExistingObject {
  readonly name: string
  /** e.g. MergeTree, SummingMergeTree, MaterializedView, Dictionary. */
  readonly engine: string
  readonly comment: string
  readonly createQuery: string
}

/** Runs a query and returns its rows (JSONEachRow); parameters are bound server-side. */
export const queryRows = async <T>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> => {
  const result = await client.query({ query, query_params: params, format: 'JSONEachRow' })
  return (await result.json()) as T[]
}

/** Objects (tables, views, dictionaries) of the database by name; empty when it does not exist. */
export const existingObjects = async (client: ClickHouseClient, database: string): Promise<Map<string, ExistingObject>> => {
  const rows = await queryRows<{ name: string; engine: string; comment: string; create_table_query: string }>(
    client,
    'SELECT name, engine, comment, create_table_query FROM system.tables WHERE database = {database:String}',
    { database },
  )
  return new Map(rows.map((r) => [r.name, { name: r.name, engine: r.engine, comment: r.comment, createQuery: r.create_table_query }]))
}

/** Columns of a table with their types (codec left out), in table order. */
export const existingColumns = async (client: ClickHouseClient, database: string, table: string): Promise<Map<string, string>> => {
  const rows = await queryRows<{ name: string; type: string }>(
    client,
    'SELECT name, type FROM system.columns WHERE database = {database:String} AND table = {table:String} ORDER BY position',
    { database, table },
  )
  return new Map(rows.map((r) => [r.name, r.type]))
}

/**
 * Flow columns the writer would insert that the `flows` table lacks (all of them when the
 * table does not exist yet): empty once the orchestrator migrated for this configuration.
 */
export const missingFlowColumns = async (client: ClickHouseClient, config: ClickHouseConfig): Promise<string[]> => {
  const columns = await existingColumns(client, config.database, FLOWS_TABLE)
  return storageColumns(config)
    .map((c) => c.name as string)
    .filter((name) => !columns.has(name))
}

/**
 * Waits until the tables an inserting actor needs exist with every configured column, and for
 * `flows` the views it feeds: the
 * orchestrator (same process or another) creates them, and this retries every `interval`
 * until it did, logging what is still missing. ClickHouse being down counts as not yet.
 */
export const awaitSchema = (
  client: ClickHouseClient,
  config: ClickHouseConfig,
  options: { readonly interval?: Duration.DurationInput; readonly tables?: readonly ('flows' | 'counters')[] } = {},
): Effect.Effect<void> => {
  const tables = options.tables ?? ['flows']
  const check = Effect.tryPromise({
    try: async () => {
      const missing: string[] = []
      const objects = await existingObjects(client, config.database)
      if (tables.includes('flows')) {
        const columns = await missingFlowColumns(client, config)
        if (columns.length > 0) missing.push(`${FLOWS_TABLE} (${columns.length > 5 ? `${columns.length} columns` : columns.join(', ')})`)
        // Flows inserted before the materialized views exist would never reach the aggregated,
        // exporters and interfaces tables: the views are part of what an insert into flows needs.
        for (const view of viewDefinitions(config)) if (!objects.has(view.name)) missing.push(`${view.name} (view)`)
      }
      if (tables.includes('counters') && !objects.has(COUNTERS_TABLE)) missing.push(COUNTERS_TABLE)
      return missing
    },
    catch: (cause): ClickHouseUnavailable => clickHouseError(config, 'checking the schema', cause),
  }).pipe(
    Effect.flatMap((missing) =>
      missing.length === 0
        ? Effect.void
        : Effect.fail(`waiting for the orchestrator to migrate ${describeClickHouse(config)}: missing ${missing.join(', ')}`),
    ),
  )
  return check.pipe(
    Effect.tapError((reason) => Effect.logInfo(typeof reason === 'string' ? reason : reason.message)),
    Effect.retry(Schedule.spaced(options.interval ?? '2 seconds')),
    Effect.orDie,
  )
}
