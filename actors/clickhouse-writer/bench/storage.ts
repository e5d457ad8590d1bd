// Storage benchmark: FlowBatch → chDB through each insert path (encode + insert, and the engine
// alone on a pre-built payload), the writer end to end from the memory bus, and bytes per flow.
// Run: npm run bench -- storage   (prints "bench storage.<case> <value> <unit>")
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { type FlowBatch, flowBatchToRows, flowsEnriched } from '@flowbus/bus-schemas'
import {
  type ClickHouseConfig,
  connectTransport,
  flowsTable,
  ident,
  makeBus,
  makeMetrics,
  openClickHouse,
  renderCreateTable,
  storageColumns,
} from '@flowbus/runtime'
import { Effect } from 'effect'
import { sampleFlowBatch } from '../../../bus-schemas/test/fixtures/sample-flows.js'
import { removeDir, tempDir } from '../../../test/src/harness/process.js'
import { NativeEncoder } from '../src/encode/native.js'
import { planColumns } from '../src/encode/plan.js'
import { encodeRows } from '../src/encode/rows.js'
import { blockHash } from '../src/writer.js'
import { embeddedInserter } from '../src/inserter.js'
import { createSchema, resolveWriterConfig, scalar, startWriter } from '../test/harness.js'

const ROWS = Number(process.env.BENCH_STORAGE_ROWS ?? 50_000)
const ROUNDS = Number(process.env.BENCH_STORAGE_ROUNDS ?? 4)
const E2E_MESSAGES = Number(process.env.BENCH_STORAGE_MESSAGES ?? 300)
// Flows per bus message in the end-to-end case: 2000 is what the enricher sends today.
const E2E_FLOWS = Number(process.env.BENCH_STORAGE_MESSAGE_FLOWS ?? 2000)
// The writer's grouping in the end-to-end case (unset: the writer's defaults; batchRows 1: one insert per message).
const E2E_BATCH_ROWS = process.env.BENCH_STORAGE_BATCH_ROWS
const E2E_BATCH_TIME = process.env.BENCH_STORAGE_BATCH_TIME
// Blocks of 100 000 flows in the engine-schema case.
const SCHEMA_BLOCKS = Number(process.env.BENCH_STORAGE_SCHEMA_BLOCKS ?? 20)
const keepForever = { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 }

const print = (name: string, value: number, unit: string) => console.log(`bench storage.${name} ${Math.round(value)} ${unit}`)

const dir = await tempDir('bench-storage')
const base = (database: string) => resolveWriterConfig({ clickhouse: { path: join(dir, 'db'), database, retention: keepForever } })
const config = base('bench').clickhouse as ClickHouseConfig
const client = await openClickHouse(config)
await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${ident(config.database)}` })

const columns = storageColumns(config).map((c) => ({ name: c.name, type: c.type, source: c.name }))
const plans = planColumns(columns)
const native = new NativeEncoder(plans)
const structure = columns.map((c) => `${ident(c.name)} ${c.type}`).join(', ').replace(/'/g, "\\'")
const list = columns.map((c) => ident(c.name)).join(', ')

// The raw flows table alone (no views): what each insert path costs in the engine itself.
let tables = 0
const freshTable = async (): Promise<string> => {
  const name = `flows_${tables++}`
  const definition = { ...flowsTable(config), name }
  await client.command({ query: renderCreateTable(config, definition) })
  return `${ident(config.database)}.${ident(name)}`
}

const batches: FlowBatch[] = Array.from({ length: ROUNDS }, (_, i) => sampleFlowBatch(ROWS, i + 1))
const warmUp = sampleFlowBatch(ROWS, 99)
const spool = join(dir, 'spool')

interface Path {
  readonly name: string
  /** Builds the payload (timed with the insert, and separately for the engine-only figure). */
  readonly encode: (batch: FlowBatch) => Uint8Array | object[]
  readonly insert: (table: string, payload: Uint8Array | object[]) => Promise<void>
}

const fileInsert = (format: string, withStructure: boolean) => async (table: string, payload: Uint8Array | object[]) => {
  const file = join(dir, `payload.${format}`)
  await writeFile(file, payload as Uint8Array)
  const from = `file('${file}', ${format}${withStructure ? `, '${structure}'` : ''})`
  await client.command({ query: `INSERT INTO ${table} (${list}) SELECT ${list} FROM ${from}` })
}

const clientInsert = (format: 'TabSeparated') => async (table: string, payload: Uint8Array | object[]) => {
  const bytes = payload as Uint8Array
  await client.insert({ table, columns: columns.map((c) => c.name) as [string, ...string[]], values: Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)], { objectMode: false }), format })
}

const paths: Path[] = [
  {
    name: 'native',
    encode: (batch) => native.encode(batch),
    // What the embedded writer does: blocks staged in a file, read with the blocks' own types.
    insert: async (table, payload) => embeddedInserter(client, spool).insertNative(table, native.columns, payload as Uint8Array, blockHash(payload as Uint8Array)),
  },
  { name: 'rowbinary', encode: (batch) => encodeRows(batch, plans, 'RowBinary'), insert: fileInsert('RowBinary', true) },
  { name: 'tsv', encode: (batch) => encodeRows(batch, plans, 'TabSeparated'), insert: fileInsert('TabSeparated', true) },
  { name: 'jsoncompacteachrow', encode: (batch) => encodeRows(batch, plans, 'JSONCompactEachRow'), insert: fileInsert('JSONCompactEachRow', true) },
  // Text through @clickhouse/client on chdb/connection: the payload becomes part of the SQL text.
  { name: 'tsv-client', encode: (batch) => encodeRows(batch, plans, 'TabSeparated'), insert: clientInsert('TabSeparated') },
  {
    // The plain way: one object per flow, serialised by @clickhouse/client.
    name: 'jsoneachrow-objects',
    encode: (batch) => flowBatchToRows(batch),
    insert: async (table, payload) => {
      await client.insert({ table, values: payload as object[], format: 'JSONEachRow', clickhouse_settings: { input_format_skip_unknown_fields: 1 } })
    },
  },
]

// BENCH_STORAGE_ONLY=e2e (or insert, size, schema) runs one part.
const only = process.env.BENCH_STORAGE_ONLY
for (const path of only && only !== 'insert' ? [] : paths) {
  const table = await freshTable()
  // One warm-up round (JIT, first part of the table), then timed rounds.
  await path.insert(table, path.encode(warmUp))
  let total = 0
  let engine = 0
  let encoding = 0
  for (const batch of batches) {
    const started = performance.now()
    const payload = path.encode(batch)
    const encoded = performance.now()
    await path.insert(table, payload)
    const done = performance.now()
    total += done - started
    encoding += encoded - started
    engine += done - encoded
  }
  const rows = ROWS * batches.length
  const stored = await scalar(client, `SELECT count() FROM ${table}`)
  if (stored !== rows * (1 + 1 / batches.length)) throw new Error(`${path.name}: ${stored} rows stored, expected ${rows + ROWS}`)
  print(`insert-${path.name}`, rows / (total / 1000), 'rows/s')
  print(`encode-${path.name}`, rows / (encoding / 1000), 'rows/s')
  print(`engine-${path.name}`, rows / (engine / 1000), 'rows/s')
}
if (!only || only === 'insert') console.error('# arrow: chdb 3.4 takes Arrow input only through registerArrowTable (Int32, Int64, Float64, Bool, String columns): no IPv6, unsigned, array or LowCardinality columns, so flows cannot use it')

// Bytes per flow on disk, after merges, in the real flows table (codecs and indexes included).
if (!only || only === 'size') {
  const table = `${ident(config.database)}.${ident('flows_size')}`
  await client.command({ query: renderCreateTable(config, { ...flowsTable(config), name: 'flows_size' }) })
  for (let i = 0; i < 10; i++) {
    const batch = sampleFlowBatch(50_000, 100 + i)
    const block = native.encode(batch)
    await embeddedInserter(client, spool).insertNative(table, native.columns, block, blockHash(block))
  }
  await client.command({ query: `OPTIMIZE TABLE ${table} FINAL` })
  const bytes = await scalar(
    client,
    `SELECT sum(bytes_on_disk) / sum(rows) FROM system.parts WHERE active AND database = '${config.database}' AND table = 'flows_size'`,
  )
  print('bytes-per-flow', bytes, 'B')
}

// The engine's ceiling for the whole schema: pre-encoded 100 000-row blocks inserted one after the
// other into flows with its views (aggregated tables, exporters, interfaces) and projections, no
// bus and no encoding in the timed part; CPU of the whole process (engine threads and merges)
// until the engine's background merges are over. What the writer can approach at best.
if (!only || only === 'schema') {
  const schema = base('schema').clickhouse as ClickHouseConfig
  await createSchema(client, schema)
  // Two distinct batches (building one takes seconds), each block one second later than the last.
  const contents = [sampleFlowBatch(100_000, 300), sampleFlowBatch(100_000, 301)]
  const blocks = Array.from({ length: SCHEMA_BLOCKS }, (_, i) => {
    const batch = contents[i % contents.length]!
    batch.u32('TimeReceived').fill(1_760_000_000 + i, 0, batch.count)
    return native.encode(batch)
  })
  const inserter = embeddedInserter(client, spool)
  const table = `${ident(schema.database)}.${ident('flows')}`
  const cpuStarted = process.cpuUsage()
  const started = performance.now()
  for (const block of blocks) await inserter.insertNative(table, native.columns, block, blockHash(block))
  const seconds = (performance.now() - started) / 1000
  for (let idle = 0; idle < 3; ) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    const merging = await scalar(client, `SELECT count() FROM system.merges WHERE database = '${schema.database}'`)
    idle = merging === 0 ? idle + 1 : 0
  }
  const cpu = process.cpuUsage(cpuStarted)
  const rows = SCHEMA_BLOCKS * 100_000
  print('engine-schema', rows / seconds, 'rows/s')
  console.log(`bench storage.engine-schema-cpu ${((cpu.user + cpu.system) / rows).toFixed(1)} us/flow`)
}

// The writer end to end: messages of E2E_FLOWS flows on the memory bus, into the full schema (flows,
// aggregated tables, views); rows committed per second from the writer's start.
if (!only || only === 'e2e') {
  const defaults = base('e2e')
  const e2e = {
    ...defaults,
    bus: { ...defaults.bus, maxMessageBytes: 64 << 20 },
    // Any free port: the default 8080 may be taken on a shared machine.
    http: { ...(defaults.http as object), listen: '127.0.0.1:0' },
    'clickhouse-writer': {
      ...(defaults['clickhouse-writer'] as object),
      ...(E2E_BATCH_ROWS === undefined ? {} : { batchRows: Number(E2E_BATCH_ROWS) }),
      ...(E2E_BATCH_TIME === undefined ? {} : { batchTime: E2E_BATCH_TIME }),
    },
  }
  const grouping = resolveWriterConfig(e2e)['clickhouse-writer'] as { batchRows: number; batchTime: number }
  print('writer-batch-rows', grouping.batchRows, 'rows')
  print('writer-batch-time', grouping.batchTime, 'ms')
  await createSchema(client, e2e.clickhouse as ClickHouseConfig)
  const transport = await connectTransport({ ...e2e.bus })
  const bus = makeBus(transport, e2e.bus, makeMetrics())
  const messages = Array.from({ length: 16 }, (_, i) => sampleFlowBatch(E2E_FLOWS, 200 + i))
  const started = performance.now()
  const cpuStarted = process.cpuUsage()
  const writer = await startWriter(transport, { ...e2e, log: { ...e2e.log, level: 'warning' } })
  // Published once the writer's group exists: a stream without a group is a capped log that
  // drops its oldest messages (64 MiB), which lost messages of 20 000 flows before.
  let published = 0
  const publishing = (async () => {
    for (let i = 0; i < E2E_MESSAGES; i++) {
      // Every message differs (a message identical to an earlier one is the same flows to the writer).
      const batch = messages[i % messages.length]!
      batch.u32('TimeReceived').fill(1_760_000_000 + i, 0, batch.count)
      await Effect.runPromise(bus.publish(flowsEnriched, `192.0.2.${i % 64}`, batch))
      published += E2E_FLOWS
    }
  })()
  const target = E2E_MESSAGES * E2E_FLOWS
  for (const deadline = Date.now() + 300_000; ; ) {
    const stored = await scalar(client, `SELECT count() FROM e2e.flows`)
    if (stored >= target) break
    if (Date.now() > deadline) throw new Error(`writer-e2e: ${stored} of ${target} rows stored after 300 s`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuStarted)
  await publishing
  const variant = `${E2E_FLOWS === 2000 ? '' : `-${E2E_FLOWS}flows`}${E2E_BATCH_ROWS === undefined ? '' : `-batch${E2E_BATCH_ROWS}`}${E2E_BATCH_TIME === undefined ? '' : `-${E2E_BATCH_TIME}`}`
  print(`writer-e2e${variant}`, target / seconds, 'rows/s')
  // CPU of the whole process (publisher, bus, writer, engine and its merges) per stored flow:
  // steadier than the rate on a shared machine; 250k rows/s on 2 cores needs under 8 µs.
  console.log(`bench storage.writer-e2e${variant}-cpu ${(((cpu.user + cpu.system) / target)).toFixed(1)} us/flow`)
  console.error(`# writer-e2e: ${published} flows in ${E2E_MESSAGES} messages, ${seconds.toFixed(1)} s`)
  await writer.stop()
  await transport.close()
}

// After a large end-to-end run the engine's background merges can hold the close (and the
// process) for minutes; the figures are printed, so the benchmark waits a bounded time.
const bounded = (work: Promise<unknown>) => Promise.race([work, new Promise((resolve) => setTimeout(resolve, 10_000).unref())])
await bounded(client.close())
await bounded(removeDir(dir))
process.exit(0)
