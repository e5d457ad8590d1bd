// `flowbus schema`: the flow columns ClickHouse stores under the configuration (type, FlowBatch
// kind, role, optional group), as a table, as JSON, or as the DDL the orchestrator runs.
import {
  type ClickHouseConfig,
  aggregatedTables,
  columnsMarkdown,
  dictionaryDefinitions,
  dictionaryTable,
  optionalGroups,
  renderCreateDictionary,
  renderCreateTable,
  renderCreateView,
  storageColumns,
  tableDefinitions,
  viewDefinitions,
} from '@flowbus/runtime'
import { type Command, configFlagHelp, resolveConfig } from '../command.js'

const help = `Prints the flow columns stored in ClickHouse with this configuration: the shared
clickhouse section's columns.enable / columns.disable decide which optional groups are in.
Columns marked "raw" are only in the raw flows table; the others are also in the aggregated
tables (${aggregatedTables.map((t) => t.name).join(', ')}).

Options:
${configFlagHelp}
  --json          one JSON array: name, type, kind (FlowBatch column), dimension, filterable,
                  aggregated, group
  --ddl           the CREATE statements the orchestrator runs on a fresh database
  --markdown      the columns page of the documentation (docs/columns.md)

Optional groups:
${Object.entries(optionalGroups)
  .map(([name, doc]) => `  ${name.padEnd(8)} ${doc}`)
  .join('\n')}`

const yes = (flag: boolean, text: string) => (flag ? text : '')

export const schemaCommand: Command = {
  summary: 'print the flow columns stored in ClickHouse',
  usage: 'flowbus schema [--config FILE] [--json | --ddl | --markdown]',
  help,
  run: async (args, context) => {
    if (args.flags.has('markdown')) {
      context.stdout(columnsMarkdown())
      return 0
    }
    const config = resolveConfig(args, context).clickhouse as ClickHouseConfig
    const columns = storageColumns(config)
    if (args.flags.has('json')) {
      const rows = columns.map((c) => ({
        name: c.name,
        type: c.type,
        kind: c.flow.kind,
        dimension: c.dimension,
        filterable: c.filterable,
        aggregated: c.aggregated,
        group: c.group ?? null,
      }))
      context.stdout(`${JSON.stringify(rows, null, 2)}\n`)
      return 0
    }
    if (args.flags.has('ddl')) {
      const statements = [
        `CREATE DATABASE IF NOT EXISTS \`${config.database}\``,
        ...tableDefinitions(config).map((t) => renderCreateTable(config, t)),
        ...viewDefinitions(config).map((v) => renderCreateView(config, v)),
        ...dictionaryDefinitions.flatMap((d) => [
          renderCreateTable(config, dictionaryTable(d)),
          renderCreateDictionary(config, d, { kind: 'table' }),
        ]),
      ]
      context.stdout(`${statements.join(';\n\n')};\n`)
      return 0
    }
    const table = columns.map((c) => [
      c.name,
      c.type,
      c.flow.kind,
      [yes(c.dimension, 'dimension'), yes(c.filterable, 'filter'), c.aggregated ? '' : 'raw'].filter(Boolean).join(','),
      c.group ?? '',
    ])
    const header = ['column', 'ClickHouse type', 'kind', 'role', 'group']
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)))
    const line = (cells: readonly string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()
    context.stdout(`${[line(header), ...table.map(line)].join('\n')}\n${columns.length} columns stored in ${config.database}.flows\n`)
    return 0
  },
}
