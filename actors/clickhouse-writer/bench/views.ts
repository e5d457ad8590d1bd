// Materialized-view cost benchmark: the same Native inserts into `flows` with no view, each view
// of the schema alone, and all of them, so the aggregated tables' cost per flow is measured per view.
// Run: npm run bench -- views   (prints "bench views.<case> <value> <unit>"; BENCH_VIEWS_PROJECTIONS below)
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type ClickHouseConfig,
  type TableDefinition,
  type ViewDefinition,
  ident,
  openClickHouse,
  renderCreateTable,
  renderCreateView,
  storageColumns,
  tableDefinitions,
  viewDefinitions,
} from '@flowbus/runtime'
import { sampleFlowBatch } from '../../../bus-schemas/test/fixtures/sample-flows.js'
import { removeDir, tempDir } from '../../../test/src/harness/process.js'
import { NativeEncoder } from '../src/encode/native.js'
import { planColumns } from '../src/encode/plan.js'
import { embeddedInserter } from '../src/inserter.js'
import { blockHash } from '../src/writer.js'
import { resolveWriterConfig } from '../test/harness.js'

const ROWS = Number(process.env.BENCH_VIEWS_ROWS ?? 20_000)
const ROUNDS = Number(process.env.BENCH_VIEWS_ROUNDS ?? 6)
const ONLY = process.env.BENCH_VIEWS_ONLY?.split(',')
const keepForever = { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 }

const dir = await tempDir('bench-views')
const client = await openClickHouse(resolveWriterConfig({ clickhouse: { path: join(dir, 'db'), retention: keepForever } }).clickhouse as ClickHouseConfig)
const columns = storageColumns({ columns: { enable: [], disable: [] } }).map((c) => ({ name: c.name, type: c.type, source: c.name }))
const native = new NativeEncoder(planColumns(columns))
const inserter = embeddedInserter(client, join(dir, 'spool'))
// BENCH_VIEWS_MESSAGES=N: each insert is N Native blocks one after the other, as the writer sends
// a group of N bus messages (ROWS/N flows each), instead of one block of ROWS flows.
const MESSAGES = Number(process.env.BENCH_VIEWS_MESSAGES ?? 1)
const blocks = Array.from({ length: ROUNDS + 1 }, (_, i) => {
  const parts = Array.from({ length: MESSAGES }, (_, m) => {
    const batch = sampleFlowBatch(Math.floor(ROWS / MESSAGES), (i + 1) * 1000 + m)
    batch.u32('TimeReceived').fill(1_760_000_000 + i * 7, 0, batch.count)
    return native.encode(batch)
  })
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
})

// BENCH_VIEWS_SETTINGS replaces the writer's insert settings, e.g. "insert_deduplicate = 0".
const SETTINGS = process.env.BENCH_VIEWS_SETTINGS
const insertWith = async (table: string, block: Uint8Array, settings: string) => {
  const file = join(dir, 'block.native')
  await writeFile(file, block)
  const list = native.columns.map((c) => ident(c.name)).join(', ')
  const structure = native.columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ').replace(/'/g, "\\'")
  await client.command({ query: `INSERT INTO ${table} (${list}) SETTINGS ${settings} SELECT ${list} FROM file('${file}', Native, '${structure}')` })
}

// BENCH_VIEWS_VARIANT=nogroup: aggregated views without GROUP BY (the engine sums at merge).
const VARIANT = process.env.BENCH_VIEWS_VARIANT ?? ''
const TABLE_SETTINGS = (process.env.BENCH_VIEWS_TABLE_SETTINGS ?? '').split(';').filter(Boolean)
const variant = (view: ViewDefinition): ViewDefinition => {
  if (VARIANT.includes('nogroup') && /^flows_/.test(view.name)) {
    const select = view.select
      .replace(/sum\((Bytes|Packets)\)/g, '$1')
      .replace(/count\(\) AS Flows/, 'toUInt64(1) AS Flows')
      .replace(/\nGROUP BY .*$/s, '')
    return { ...view, select }
  }
  // BENCH_VIEWS_VARIANT=limitby: exporters fed with the first row of each exporter in the block.
  if (VARIANT.includes('limitby') && view.name === 'exporters_consumer') {
    const names = ['ExporterName', 'ExporterGroup', 'ExporterRole', 'ExporterSite', 'ExporterRegion', 'ExporterTenant']
    return { ...view, select: `SELECT TimeReceived, ExporterAddress, ${names.join(', ')} FROM ${/FROM (\S+)/.exec(view.select)![1]} LIMIT 1 BY ExporterAddress` }
  }
  return view
}

// BENCH_VIEWS_VARIANT=hashkey: aggregated tables sorted by (time, exporter, hash of the other keys).
const tableVariant = (table: TableDefinition): TableDefinition => {
  // BENCH_VIEWS_VARIANT=null: the views' targets discard rows (the view's own query cost alone).
  if (VARIANT.includes('null') && table.name !== 'flows' && !table.name.endsWith('_data')) return { ...table, engine: 'ENGINE = Null' }
  if (!VARIANT.includes('hashkey') || !/^flows_/.test(table.name)) return table
  return {
    ...table,
    columns: [...table.columns, { name: 'DimensionsHash', type: 'UInt64' }],
    engine: table.engine.replace(/ORDER BY \(.*\)/, 'ORDER BY (TimeReceived, ExporterAddress, DimensionsHash)'),
  }
}
const hashed = (view: ViewDefinition): ViewDefinition => {
  if (!VARIANT.includes('hashkey') || !/^flows_/.test(view.name)) return view
  const keys = /GROUP BY (.*)$/s.exec(viewDefinitions({ database: 'x', columns: { enable: [], disable: [] }, retention: keepForever } as never)[0]!.select)![1]!
  const others = keys.split(', ').filter((k) => k !== '`TimeReceived`' && k !== '`ExporterAddress`')
  return { ...view, select: view.select.replace(/^SELECT /, `SELECT cityHash64(${others.join(', ')}) AS DimensionsHash, `) }
}

// BENCH_VIEWS_PROJECTIONS=SrcAS,DstAS: the aggregated tables' projections (clickhouse.projections; empty: none).
const projections = process.env.BENCH_VIEWS_PROJECTIONS === undefined ? {} : { projections: process.env.BENCH_VIEWS_PROJECTIONS.split(',').filter(Boolean) }

let databases = 0
/** Median insert time (ms) into a fresh database holding every table and the views `pick` keeps. */
const measure = async (name: string, pick: (view: string) => boolean) => {
  if (ONLY && !ONLY.includes(name)) return
  const config = resolveWriterConfig({ clickhouse: { database: `v${databases++}`, retention: keepForever, ...projections } }).clickhouse as ClickHouseConfig
  await client.command({ query: `CREATE DATABASE ${ident(config.database)}` })
  for (const table of tableDefinitions(config)) await client.command({ query: renderCreateTable(config, tableVariant(table)) })
  for (const view of viewDefinitions(config).filter((v) => pick(v.name))) await client.command({ query: renderCreateView(config, hashed(variant(view))) })
  for (const setting of TABLE_SETTINGS) {
    for (const t of tableDefinitions(config)) await client.command({ query: `ALTER TABLE ${ident(config.database)}.${ident(t.name)} MODIFY SETTING ${setting}` })
  }
  const table = `${ident(config.database)}.flows`
  const times: number[] = []
  let cpu = 0
  for (const [i, block] of blocks.entries()) {
    const started = performance.now()
    const cpuStarted = process.cpuUsage()
    if (SETTINGS) await insertWith(table, block, `${SETTINGS}, insert_deduplication_token = '${blockHash(block)}'`)
    else await inserter.insertNative(table, native.columns, block, blockHash(block))
    const used = process.cpuUsage(cpuStarted)
    if (i > 0) times.push(performance.now() - started)
    if (i > 0) cpu += (used.user + used.system) / 1000
  }
  times.sort((a, b) => a - b)
  const aggregated = await (await client.query({ query: `SELECT count() AS n FROM ${ident(config.database)}.flows_1m0s`, format: 'JSONEachRow' })).json<{ n: string }>()
  console.error(`# ${name}: flows_1m0s holds ${aggregated[0]?.n} rows for ${blocks.length * ROWS} flows`)
  const median = times[times.length >> 1]!
  // CPU time of the process (the engine runs in it) varies less than wall time on a shared machine.
  console.log(`bench views.${name} ${median.toFixed(0)} ms (${Math.round(ROWS / (median / 1000))} rows/s)`)
  console.log(`bench views.${name}-cpu ${((cpu / ROUNDS) * 1000 / ROWS).toFixed(1)} us/row`)
  await client.command({ query: `DROP DATABASE ${ident(config.database)}` })
}

await measure('none', () => false)
for (const view of viewDefinitions({ database: 'x', columns: { enable: [], disable: [] }, retention: keepForever } as never)) {
  await measure(view.name, (v) => v === view.name)
}
await measure('all', () => true)
await client.close()
await removeDir(dir)
