// ClickHouse migrations: idempotent steps that each read the current state from system tables
// and act only on a difference, so running them again, or after a config change, is safe.
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import type { ClickHouseClient } from '@clickhouse/client'
import {
  type ClickHouseConfig,
  type DictionaryDefinition,
  type DictionarySource,
  type ExistingObject,
  type TableDefinition,
  type ViewDefinition,
  columnDefinition,
  dictionaryDefinitions,
  dictionaryTable,
  dictionaryTableName,
  existingColumns,
  existingObjects,
  ident,
  insertStatement,
  projectionClause,
  queryRows,
  renderCreateDictionary,
  renderCreateTable,
  renderCreateView,
  signatureComment,
  sqlString,
  tableDefinitions,
  viewDefinitions,
} from '@flowbus/runtime'
import type { DictionaryData, DictionaryName } from './dictionaries.js'

export interface MigrationOptions {
  readonly dictionarySource: DictionarySource
  readonly dictionaryData: DictionaryData
  /** Called with each step's name and what it did ("current" when nothing). */
  readonly progress?: (step: string, outcome: string) => void
}

/** What one run did: the steps that changed something, with what they did. */
export interface MigrationReport {
  readonly changed: readonly { readonly step: string; readonly actions: readonly string[] }[]
  readonly steps: number
}

export interface MigrationStep {
  readonly name: string
  /** Reads the state, applies what is missing, and says what it did (empty: already current). */
  readonly run: () => Promise<string[]>
}

const q = (database: string, name: string) => `${ident(database)}.${ident(name)}`

/** The TTL expression of a CREATE TABLE as system.tables renders it, '' when none. */
const currentTtl = (createQuery: string): string => /\sTTL\s+(.+?)(?:\s+SETTINGS\s|\s+COMMENT\s|$)/.exec(createQuery)?.[1]?.trim() ?? ''

/**
 * Whether two codec clauses are the same up to spacing and case, and the width system.columns
 * adds to Delta-like codecs written without one (Delta → Delta(4) on a UInt32).
 */
const sameCodec = (a: string, b: string): boolean => {
  const normal = (codec: string) => codec.replace(/\s+/g, '').toUpperCase().replace(/\b(DELTA|DOUBLEDELTA|GORILLA)\(\d+\)/g, '$1')
  return normal(a) === normal(b)
}

/** Projections this schema names (ddl.ts): by_<dimension> and <columns>_1h. */
const isOurProjection = (name: string): boolean => /^by_[A-Za-z]+$|^[a-z_]+_1h$/.test(name)

/** Every migration step of this configuration, in order. */
export const migrationSteps = (client: ClickHouseClient, config: ClickHouseConfig, options: MigrationOptions): MigrationStep[] => {
  const db = config.database
  const command = (query: string) => client.command({ query })
  let objects = new Map<string, ExistingObject>()
  const refresh = async () => {
    objects = await existingObjects(client, db)
  }

  const databaseStep: MigrationStep = {
    name: `database ${db}`,
    run: async () => {
      const found = await queryRows(client, 'SELECT name FROM system.databases WHERE name = {db:String}', { db })
      if (found.length > 0) return []
      await command(`CREATE DATABASE IF NOT EXISTS ${ident(db)}`)
      return ['created']
    },
  }

  const tableStep = (table: TableDefinition): MigrationStep => ({
    name: `table ${table.name}`,
    run: async () => {
      await refresh()
      const existing = objects.get(table.name)
      if (!existing) {
        await command(renderCreateTable(config, table))
        return ['created']
      }
      const actions: string[] = []
      const columns = await existingColumns(client, db, table.name)
      const missing = table.columns.filter((c) => !columns.has(c.name))
      if (missing.length > 0) {
        // A new column of a sorting key (aggregated tables) joins the key in the same ALTER,
        // the only way ClickHouse extends a key in place; existing rows get the default value.
        const [{ sorting_key: sortingKey = '' } = {}] = await queryRows<{ sorting_key: string }>(
          client,
          'SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = {table:String}',
          { db, table: table.name },
        )
        const newKeys = missing.filter((c) => table.orderBy.includes(c.name)).map((c) => c.name)
        const alters = missing.map((c) => `ADD COLUMN IF NOT EXISTS ${columnDefinition(c)}`)
        if (newKeys.length > 0) alters.push(`MODIFY ORDER BY (${[sortingKey, ...newKeys.map(ident)].filter(Boolean).join(', ')})`)
        await command(`ALTER TABLE ${q(db, table.name)} ${alters.join(', ')}`)
        actions.push(`added ${missing.map((c) => c.name).join(', ')}`)
      }
      // A column whose type or codec differs from the definition is altered in place: a codec
      // change applies to parts written from now on (no rewrite), a type change rewrites the
      // column in the background (a mutation; queries read either form meanwhile).
      const stored = await queryRows<{ name: string; type: string; compression_codec: string }>(
        client,
        'SELECT name, type, compression_codec FROM system.columns WHERE database = {db:String} AND table = {table:String}',
        { db, table: table.name },
      )
      const current = new Map(stored.map((c) => [c.name, c]))
      const differing = table.columns.filter((c) => {
        const found = current.get(c.name)
        return found !== undefined && (found.type !== c.type || sameCodec(found.compression_codec, c.codec ?? '') === false)
      })
      if (differing.length > 0) {
        const alters = differing.flatMap((c) => [
          `MODIFY COLUMN ${columnDefinition(c)}`,
          // MODIFY COLUMN without a codec keeps the old one.
          ...(c.codec === undefined && current.get(c.name)!.compression_codec !== '' ? [`MODIFY COLUMN ${ident(c.name)} REMOVE CODEC`] : []),
        ])
        await command(`ALTER TABLE ${q(db, table.name)} ${alters.join(', ')}`)
        actions.push(`altered ${differing.map((c) => `${c.name} to ${[c.type, c.codec].filter(Boolean).join(' ')}`).join(', ')}`)
      }
      if (table.indexes.length > 0) {
        const indexes = new Set(
          (
            await queryRows<{ name: string }>(
              client,
              'SELECT name FROM system.data_skipping_indices WHERE database = {db:String} AND table = {table:String}',
              { db, table: table.name },
            )
          ).map((r) => r.name),
        )
        const absent = table.indexes.filter((i) => !indexes.has(i.name))
        if (absent.length > 0) {
          await command(
            `ALTER TABLE ${q(db, table.name)} ${absent.map((i) => `ADD INDEX IF NOT EXISTS ${ident(i.name)} ${ident(i.column)} TYPE ${i.type} GRANULARITY 4`).join(', ')}`,
          )
          actions.push(`indexed ${absent.map((i) => i.column).join(', ')}`)
        }
      }
      const projections = table.projections ?? []
      if (projections.length > 0 || existing.createQuery.includes(' PROJECTION ')) {
        const present = new Set(
          (
            await queryRows<{ name: string }>(
              client,
              'SELECT name FROM system.projections WHERE database = {db:String} AND table = {table:String}',
              { db, table: table.name },
            )
          ).map((r) => r.name),
        )
        const absent = projections.filter((p) => !present.has(p.name))
        if (absent.length > 0) {
          if (table.projectionSetting && !existing.createQuery.includes(table.projectionSetting)) {
            await command(`ALTER TABLE ${q(db, table.name)} MODIFY SETTING ${table.projectionSetting}`)
          }
          await command(`ALTER TABLE ${q(db, table.name)} ${absent.map((p) => `ADD ${projectionClause(p)}`).join(', ')}`)
          if (table.materializeProjections) {
            await command(`ALTER TABLE ${q(db, table.name)} ${absent.map((p) => `MATERIALIZE PROJECTION ${ident(p.name)}`).join(', ')}`)
          }
          actions.push(`${table.materializeProjections ? 'projected and materialized' : 'projected'} ${absent.map((p) => p.name).join(', ')}`)
        }
        // Ours (by their names) no longer configured: each costs every insert, so they go.
        const wanted = new Set(projections.map((p) => p.name))
        const stale = [...present].filter((name) => !wanted.has(name) && isOurProjection(name))
        if (stale.length > 0) {
          await command(`ALTER TABLE ${q(db, table.name)} ${stale.map((name) => `DROP PROJECTION IF EXISTS ${ident(name)}`).join(', ')}`)
          actions.push(`dropped projections ${stale.join(', ')}`)
        }
      }
      const ttl = table.ttl.replace(/^TTL\s+/, '')
      if (currentTtl(existing.createQuery) !== ttl) {
        await command(`ALTER TABLE ${q(db, table.name)} ${ttl === '' ? 'REMOVE TTL' : `MODIFY TTL ${ttl}`}`)
        actions.push(ttl === '' ? 'TTL removed' : `TTL set to ${ttl}`)
      }
      return actions
    },
  })

  const viewStep = (view: ViewDefinition): MigrationStep => ({
    name: `view ${view.name}`,
    run: async () => {
      await refresh()
      const existing = objects.get(view.name)
      if (existing?.comment === signatureComment(view.select)) return []
      // A view cannot be altered in place: replaced, it misses inserts made in between
      // (milliseconds; the raw table keeps them).
      if (existing) await command(`DROP VIEW IF EXISTS ${q(db, view.name)}`)
      await command(renderCreateView(config, view))
      return [existing ? 'replaced' : 'created']
    },
  })

  const dictionaryDataStep = (dictionary: DictionaryDefinition): MigrationStep => ({
    name: `table ${dictionaryTableName(dictionary)} rows`,
    run: async () => {
      const text = await options.dictionaryData(dictionary.name as DictionaryName)
      const signature = signatureComment(text)
      await refresh()
      const table = dictionaryTableName(dictionary)
      if (objects.get(table)?.comment === signature) return []
      await command(`TRUNCATE TABLE IF EXISTS ${q(db, table)}`)
      // Reloading the same rows later must not be taken for a retried insert.
      const insert = await client.exec({
        query: insertStatement(config, table, { format: 'CSVWithNames', settings: { insert_deduplicate: 0 } }),
        values: Readable.from([Buffer.from(text)], { objectMode: false }),
      })
      insert.stream.resume()
      await finished(insert.stream)
      await command(`ALTER TABLE ${q(db, table)} MODIFY COMMENT ${sqlString(signature)}`)
      const rows = text.split('\n').length - 2
      if (objects.get(dictionary.name)?.engine === 'Dictionary') await command(`SYSTEM RELOAD DICTIONARY ${q(db, dictionary.name)}`)
      return [`loaded ${rows} rows (${createHash('sha256').update(text).digest('hex').slice(0, 8)})`]
    },
  })

  const dictionaryStep = (dictionary: DictionaryDefinition): MigrationStep => ({
    name: `dictionary ${dictionary.name}`,
    run: async () => {
      await refresh()
      const ddl = renderCreateDictionary(config, dictionary, options.dictionarySource)
      const signature = /COMMENT '([^']*)'$/.exec(ddl)?.[1]
      const existing = objects.get(dictionary.name)
      if (existing?.comment === signature) return []
      if (existing) await command(`DROP DICTIONARY IF EXISTS ${q(db, dictionary.name)}`)
      await command(ddl)
      return [existing ? 'replaced' : 'created']
    },
  })

  return [
    databaseStep,
    ...tableDefinitions(config).map(tableStep),
    ...viewDefinitions(config).map(viewStep),
    ...dictionaryDefinitions.flatMap((d) => [tableStep(dictionaryTable(d)), dictionaryDataStep(d), dictionaryStep(d)]),
  ]
}

/** Runs every step in order; a failing step stops the run (the next run resumes where it is). */
export const runMigrations = async (
  client: ClickHouseClient,
  config: ClickHouseConfig,
  options: MigrationOptions,
): Promise<MigrationReport> => {
  const steps = migrationSteps(client, config, options)
  const changed: { step: string; actions: string[] }[] = []
  for (const step of steps) {
    let actions: string[]
    try {
      actions = await step.run()
    } catch (cause) {
      throw new Error(`migration step "${step.name}" failed: ${(cause as Error).message}`, { cause })
    }
    if (actions.length > 0) changed.push({ step: step.name, actions })
    options.progress?.(step.name, actions.length > 0 ? actions.join('; ') : 'current')
  }
  return { changed, steps: steps.length }
}

/** `SHOW CREATE` of every object of the database, by name: what a migration must leave unchanged when current. */
export const showCreateAll = async (client: ClickHouseClient, database: string): Promise<Map<string, string>> => {
  const objects = await existingObjects(client, database)
  const out = new Map<string, string>()
  for (const object of [...objects.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const kind = object.engine === 'Dictionary' ? 'DICTIONARY' : 'TABLE'
    const [row] = await queryRows<{ statement: string }>(client, `SHOW CREATE ${kind} ${q(database, object.name)}`)
    out.set(object.name, row?.statement ?? '')
  }
  return out
}
