// Filters users save and share, kept in ClickHouse beside the flows (a small ReplacingMergeTree
// the gateway creates): a deletion is a newer row marked deleted, read back with FINAL.
import { randomUUID } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
import { QueryInputError } from './query/errors.js'
import type { QueryOptions, QueryRunner } from './query/runner.js'

export const SAVED_FILTERS_TABLE = 'gateway_saved_filters'

export interface SavedFilter {
  id: string
  owner: string
  description: string
  filter: string
  shared: boolean
}

export interface SavedFilters {
  readonly list: (user: string, options: QueryOptions) => Promise<SavedFilter[]>
  readonly save: (user: string, input: { description: string; filter: string; shared: boolean }) => Promise<SavedFilter>
  readonly delete: (user: string, id: string) => Promise<boolean>
}

export const savedFiltersDDL = (database: string): string =>
  `CREATE TABLE IF NOT EXISTS \`${database}\`.\`${SAVED_FILTERS_TABLE}\` (
    id String, owner String, description String, filter String, shared UInt8, deleted UInt8, updated DateTime64(3)
  ) ENGINE = ReplacingMergeTree(updated) ORDER BY (owner, id)`

export const makeSavedFilters = (client: ClickHouseClient, runner: QueryRunner, database: string): SavedFilters => {
  const table = `\`${database}\`.\`${SAVED_FILTERS_TABLE}\``
  let created: Promise<unknown> | undefined
  const ensure = () => (created ??= client.command({ query: savedFiltersDDL(database) }).catch((e) => ((created = undefined), Promise.reject(e))))
  const write = async (row: SavedFilter & { deleted: number }) => {
    await ensure()
    // Parameters, not text: descriptions and filters are user input.
    await client.command({
      query: `INSERT INTO ${table} SELECT {id:String}, {owner:String}, {description:String}, {filter:String}, {shared:UInt8}, {deleted:UInt8}, now64(3)`,
      query_params: { ...row, shared: row.shared ? 1 : 0 },
    })
  }
  const find = async (user: string, id: string): Promise<SavedFilter | undefined> => {
    const rows = await runner.rows<Omit<SavedFilter, 'shared'> & { shared: number }>(
      `SELECT id, owner, description, filter, shared FROM ${table} FINAL WHERE owner = {owner:String} AND id = {id:String} AND deleted = 0`,
      { owner: user, id },
      { user, purpose: 'savedFilters' },
    )
    return rows[0] ? { ...rows[0], shared: Boolean(rows[0].shared) } : undefined
  }
  return {
    list: async (user, options) => {
      await ensure()
      const rows = await runner.rows<Omit<SavedFilter, 'shared'> & { shared: number }>(
        `SELECT id, owner, description, filter, shared FROM ${table} FINAL WHERE deleted = 0 AND (owner = {owner:String} OR shared = 1) ORDER BY owner = {owner:String} DESC, description, id`,
        { owner: user },
        options,
      )
      return rows.map((r) => ({ ...r, shared: Boolean(r.shared) }))
    },
    save: async (user, input) => {
      if (input.description.length > 200 || input.filter.length > 10_000) {
        throw new QueryInputError('a saved filter has at most 200 characters of description and 10000 of filter', 'BAD_ARGUMENT')
      }
      const saved: SavedFilter = { id: randomUUID(), owner: user, description: input.description, filter: input.filter, shared: input.shared }
      await write({ ...saved, deleted: 0 })
      return saved
    },
    delete: async (user, id) => {
      await ensure()
      const existing = await find(user, id)
      if (!existing) return false
      await write({ ...existing, deleted: 1 })
      return true
    },
  }
}
