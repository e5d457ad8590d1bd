// The storage definition: every flow column stored with a type fitting its FlowBatch kind, the
// column selection from config, the DDL, the generated docs page and `flowbus schema`.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { flowColumns } from '@flowbus/bus-schemas'
import { Schema } from 'effect'
import { describe, expect, it } from 'vitest'
import {
  ClickHouseSection,
  ConfigError,
  aggregatedOrderBy,
  aggregatedTableDefinition,
  aggregatedTables,
  aggregatedView,
  allStorageColumns,
  columnsMarkdown,
  configSchema,
  flowsTable,
  loadConfig,
  optionalGroups,
  renderCreateTable,
  storageColumn,
  storageColumns,
  typesOfKind,
} from '../src/index.js'

const root = join(import.meta.dirname, '..', '..', '..')
const section = (value: unknown) => Schema.decodeUnknownSync(ClickHouseSection)(value)

describe('storage definition', () => {
  it('gives every flow column a ClickHouse type that fits its FlowBatch kind', () => {
    for (const flow of flowColumns) {
      const stored = storageColumn(flow.name)
      expect(stored, `${flow.name} has no storage definition`).toBeDefined()
      expect(
        typesOfKind[flow.kind].some((pattern) => pattern.test(stored!.type)),
        `${flow.name} (${flow.kind}) stored as ${stored!.type}`,
      ).toBe(true)
    }
    expect(allStorageColumns.map((c) => c.name)).toEqual(flowColumns.map((c) => c.name))
  })

  it('stores addresses as IPv6, names as LowCardinality, boundaries as enums and times as DateTime', () => {
    expect(storageColumn('SrcAddr')!.type).toBe('IPv6')
    expect(storageColumn('ExporterName')!.type).toBe('LowCardinality(String)')
    expect(storageColumn('InIfBoundary')!.type).toMatch(/^Enum8\('undefined' = 0, 'external' = 1, 'internal' = 2\)$/)
    expect(storageColumn('TimeReceived')!.type).toBe('DateTime')
    expect(storageColumn('FlowStartTime')!.type).toBe('DateTime64(3)')
    expect(storageColumn('SrcMAC')!.type).toBe('UInt64')
    expect(storageColumn('DstLargeCommunities')!.type).toBe('Array(Tuple(UInt32, UInt32, UInt32))')
  })

  it('leaves optional groups out by default and takes groups or single columns from config', () => {
    const names = (config: unknown) => storageColumns(section(config)).map((c) => c.name as string)
    const defaults = names({})
    for (const column of allStorageColumns) expect(defaults.includes(column.name)).toBe(column.group === undefined)
    const l2 = names({ columns: { enable: ['l2', 'FlowStartTime'] } })
    expect(l2).toEqual(expect.arrayContaining(['SrcVlan', 'DstVlan', 'SrcMAC', 'DstMAC', 'FlowStartTime']))
    expect(l2).not.toContain('FlowEndTime')
    const fewer = names({ columns: { enable: ['nat'], disable: ['NextHop', 'SrcPortNAT'] } })
    expect(fewer).toContain('SrcAddrNAT')
    expect(fewer).not.toContain('NextHop')
    expect(fewer).not.toContain('SrcPortNAT')
  })

  it('refuses unknown groups and columns and required columns in config, naming them', () => {
    const schema = configSchema([])
    const env = { FLOWBUS_CLICKHOUSE__COLUMNS__ENABLE: '[l2, nosuch]', FLOWBUS_CLICKHOUSE__COLUMNS__DISABLE: '[Bytes]' }
    expect(() => loadConfig(schema, { env })).toThrow(ConfigError)
    try {
      loadConfig(schema, { env })
    } catch (error) {
      expect((error as Error).message).toContain('"nosuch" is neither an optional group')
      expect((error as Error).message).toContain('"Bytes" cannot be disabled')
    }
    expect(Object.keys(optionalGroups)).toContain('mpls')
  })

  it('renders a raw table with codecs, skipping indexes, TTL and deduplication window', () => {
    const config = section({ retention: { flows: '3d' } })
    const ddl = renderCreateTable(config, flowsTable(config))
    expect(ddl).toContain('`TimeReceived` DateTime CODEC(T64, LZ4)')
    expect(ddl).toContain('INDEX `idx_SrcAddr` `SrcAddr` TYPE bloom_filter(0.01) GRANULARITY 4')
    expect(ddl).toContain('TTL TimeReceived + toIntervalSecond(259200)')
    expect(ddl).toMatch(/non_replicated_deduplication_window = \d+/)
    expect(ddl).toContain('PARTITION BY toYYYYMMDD(TimeReceived)')
    expect(renderCreateTable(section({ retention: { flows: 0 } }), flowsTable(section({ retention: { flows: 0 } })))).not.toContain('TTL')
    const noInterfaces = section({ columns: { disable: ['InIf', 'OutIf'] } })
    expect(renderCreateTable(noInterfaces, flowsTable(noInterfaces))).toContain('ORDER BY (toStartOfFiveMinutes(TimeReceived), ExporterAddress)\n')
  })

  it('keeps only aggregated columns in the summed tables, every non-summed column in their key', () => {
    const config = section({})
    for (const table of aggregatedTables) {
      const definition = aggregatedTableDefinition(config, table)
      const names = definition.columns.map((c) => c.name)
      expect(names).not.toContain('SrcAddr')
      expect(names).toContain('Flows')
      expect(definition.engine).toContain('SummingMergeTree((Bytes, Packets, Flows))')
      expect([...definition.orderBy, 'Bytes', 'Packets', 'Flows'].sort()).toEqual([...names].sort())
      expect(aggregatedView(config, table).select).toContain(`toIntervalSecond(${table.resolutionSeconds})`)
    }
    expect(aggregatedOrderBy(config).slice(0, 2)).toEqual(['TimeReceived', 'ExporterAddress'])
  })

  it('renders a projection per configured dimension on each aggregated table, the ports one on flows', () => {
    const config = section({ projections: ['SrcAS', 'DstCountry'] })
    for (const table of aggregatedTables) {
      const ddl = renderCreateTable(config, aggregatedTableDefinition(config, table))
      expect(ddl).toContain(
        'PROJECTION `by_SrcAS` (SELECT TimeReceived, `SrcAS`, sum(Bytes * SamplingRate), sum((Bytes + 18 * Packets) * SamplingRate), sum(Packets * SamplingRate), sum(Flows) GROUP BY TimeReceived, `SrcAS`)',
      )
      expect(ddl).toContain('PROJECTION `by_DstCountry`')
      expect(ddl).not.toContain('by_DstAS')
      expect(ddl).toContain("deduplicate_merge_projection_mode = 'rebuild'")
      expect(ddl).toContain('`ExporterName` String,')
    }
    expect(renderCreateTable(config, flowsTable(config))).toContain('PROJECTION `ports_1h` (SELECT toStartOfHour(TimeReceived), DstPort, Proto,')
    expect(renderCreateTable(config, flowsTable(config))).toContain('`ExporterName` LowCardinality(String),')
    expect(section({}).projections).toEqual(['SrcAS', 'DstAS', 'ExporterName', 'SrcCountry', 'DstCountry'])
    expect(() => section({ projections: ['DstPort'] })).toThrow(/"DstPort" is not a dimension of the aggregated tables/)
    expect(() => section({ projections: ['SrcASN'] })).toThrow(/"SrcASN" is not a flow column/)
  })

  it('keeps docs/columns.md equal to the generated page', () => {
    // If this fails after a schema change, regenerate: npx flowbus schema --markdown > docs/columns.md
    expect(readFileSync(join(root, 'docs/columns.md'), 'utf8')).toBe(columnsMarkdown())
  })
})

describe('flowbus schema', () => {
  const run = async (argv: string[], env: Record<string, string> = {}) => {
    // The command lives in the CLI package; imported here beside the definition it prints.
    const { runCli, knownActors } = await import('@flowbus/cli')
    let stdout = ''
    let stderr = ''
    const code = await runCli(argv, { actors: knownActors, env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) })
    return { code, stdout, stderr }
  }

  it('prints the effective columns as a table, optional groups from config', async () => {
    const plain = await run(['schema'])
    expect(plain.code).toBe(0)
    expect(plain.stdout).toMatch(/^column\s+ClickHouse type\s+kind\s+role\s+group$/m)
    expect(plain.stdout).toMatch(/^SrcAddr\s+IPv6\s+ip\s+dimension,filter,raw$/m)
    expect(plain.stdout).not.toMatch(/^SrcVlan/m)
    const l2 = await run(['schema'], { FLOWBUS_CLICKHOUSE__COLUMNS__ENABLE: '[l2]' })
    expect(l2.stdout).toMatch(/^SrcVlan\s+UInt16\s+u16\s+dimension,filter\s+l2$/m)
    expect(l2.stdout).toContain(`${storageColumns(section({ columns: { enable: ['l2'] } })).length} columns stored in flowbus.flows`)
  })

  it('prints JSON and the DDL, and refuses a bad column selection with exit 2', async () => {
    const json = await run(['schema', '--json'])
    const rows = JSON.parse(json.stdout) as { name: string; type: string; kind: string; aggregated: boolean; group: string | null }[]
    expect(rows.map((r) => r.name)).toEqual(storageColumns(section({})).map((c) => c.name))
    expect(rows.find((r) => r.name === 'DstASPath')).toMatchObject({ type: 'Array(UInt32)', kind: 'u32list', aggregated: false, group: null })
    const ddl = await run(['schema', '--ddl'])
    expect(ddl.stdout).toContain('CREATE TABLE IF NOT EXISTS `flowbus`.`flows`')
    expect(ddl.stdout).toContain('CREATE MATERIALIZED VIEW IF NOT EXISTS `flowbus`.`flows_1h0m0s_consumer`')
    const bad = await run(['schema'], { FLOWBUS_CLICKHOUSE__COLUMNS__ENABLE: '[SrcVLAN]' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('"SrcVLAN" is neither an optional group')
  })
})
