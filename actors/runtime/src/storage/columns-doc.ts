// docs/columns.md, generated from the storage definition so the page cannot drift from the
// tables (a test compares them; regenerate with `flowbus schema --markdown > docs/columns.md`).
import { FLOWS_ORDER_BY, dictionaryDefinitions, dictionaryTableName } from './ddl.js'
import {
  COUNTERS_TABLE,
  FLOW_COUNT_COLUMN,
  FLOWS_TABLE,
  aggregatedTables,
  allStorageColumns,
  counterColumns,
  optionalGroups,
  requiredColumns,
} from './schema.js'

const cell = (text: string) => text.replace(/\|/g, '\\|')

export const columnsMarkdown = (): string => {
  const lines = [
    '# Flow columns in ClickHouse',
    '',
    '<!-- Generated from actors/runtime/src/storage/schema.ts by `flowbus schema --markdown`: do not edit. -->',
    '',
    `Every flow column of the bus (\`FlowBatch\`, see [bus-schemas](bus-schemas.md)) and how the raw \`${FLOWS_TABLE}\` table`,
    `stores it. Columns without a group are always stored; a group is stored once listed in`,
    '`clickhouse.columns.enable` (single columns can be listed too, and `clickhouse.columns.disable`',
    `removes columns or groups, except ${[...requiredColumns].map((c) => `\`${c}\``).join(', ')}).`,
    '`flowbus schema` prints the columns of a given configuration; [storage](storage.md) explains the tables.',
    '',
    'Role: **dim** offered as a dimension, **filter** usable in filters, **agg** also kept in the',
    `aggregated tables (${aggregatedTables.map((t) => `\`${t.name}\``).join(', ')}), which add \`${FLOW_COUNT_COLUMN}\` (flows summed)`,
    'and store `LowCardinality(String)` columns as plain `String` (cheaper to sort and merge there).',
    '',
    '| column | ClickHouse type | FlowBatch kind | role | group | meaning |',
    '|---|---|---|---|---|---|',
    ...allStorageColumns.map(
      (c) =>
        `| ${c.name} | \`${cell(c.type)}\`${c.codec ? ` ${c.codec.replace('CODEC', '')}` : ''} | ${c.flow.kind} | ${[
          c.dimension ? 'dim' : '',
          c.filterable ? 'filter' : '',
          c.aggregated ? 'agg' : '',
        ]
          .filter(Boolean)
          .join(' ')} | ${c.group ?? ''} | ${cell(c.flow.doc)}${c.index ? ` (index: ${c.index})` : ''} |`,
    ),
    '',
    `Sorting key of \`${FLOWS_TABLE}\`: \`(${FLOWS_ORDER_BY.join(', ')})\`.`,
    '',
    '## Optional groups',
    '',
    '| group | columns | what |',
    '|---|---|---|',
    ...Object.entries(optionalGroups).map(
      ([group, doc]) =>
        `| ${group} | ${allStorageColumns
          .filter((c) => c.group === group)
          .map((c) => c.name)
          .join(', ')} | ${doc} |`,
    ),
    '',
    `## Interface counters (\`${COUNTERS_TABLE}\`)`,
    '',
    'sFlow counter samples from the `counters.interfaces` subject (`InterfaceCounters` message).',
    '',
    '| column | ClickHouse type | message field | meaning |',
    '|---|---|---|---|',
    ...counterColumns.map((c) => `| ${c.name} | \`${cell(c.type)}\` | ${c.field} | ${cell(c.doc)} |`),
    '',
    '## Dictionaries',
    '',
    '| dictionary | key | attributes | rows from |',
    '|---|---|---|---|',
    ...dictionaryDefinitions.map(
      (d) =>
        `| ${d.name} | ${d.key.join(', ')} | ${d.columns
          .filter((c) => !d.key.includes(c.name))
          .map((c) => c.name)
          .join(', ')} | \`${dictionaryTableName(d)}\` or \`/api/v0/clickhouse/${d.name}.csv\` |`,
    ),
    '',
  ]
  return lines.join('\n')
}
