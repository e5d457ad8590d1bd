// The orchestrator actor on the shared HTTP endpoint: CSV files that ClickHouse (chDB) loads as
// dictionary sources over loopback HTTP, the .proto files, init.sh run by sh, and migrations done
// in the background with dictionaries reading the live endpoint.
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { ClickHouseClient } from '@clickhouse/client'
import {
  BusLive,
  BusSection,
  ClickHouseSection,
  HealthLive,
  HttpServer,
  HttpServerLive,
  MetricsLive,
  SharedSectionsLive,
  actorLayer,
  awaitSchema,
  dictionaryDefinitions,
  openClickHouse,
  queryRows,
} from '@flowbus/runtime'
import { Context, Effect, Exit, Layer, LogLevel, Logger, Schema, Scope } from 'effect'
import { freePort } from '../../../test/src/harness/process.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OrchestratorConfig, orchestrator, parseCsvLine } from '../src/index.js'

const dir = mkdtempSync(join(tmpdir(), 'flowbus-endpoints-'))
const clickhouse = Schema.decodeUnknownSync(ClickHouseSection)({ path: join(dir, 'engine'), database: 'served' })
const bus = Schema.decodeUnknownSync(BusSection)({})


let base: string
let scope: Scope.CloseableScope
let client: ClickHouseClient
let context: Context.Context<HttpServer>

beforeAll(async () => {
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  const config = Schema.decodeUnknownSync(OrchestratorConfig)({ dictionaryURL: base, asNames: { '64512': 'lab, "north"' } })
  const kernel = Layer.mergeAll(BusLive(bus), HttpServerLive({ listen: `127.0.0.1:${port}` }), SharedSectionsLive({ bus, clickhouse })).pipe(
    Layer.provideMerge(Layer.merge(MetricsLive, HealthLive)),
  )
  scope = await Effect.runPromise(Scope.make())
  context = await Effect.runPromise(
    Layer.buildWithScope(Layer.provideMerge(actorLayer(orchestrator, config), kernel), scope).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)),
  )
  expect(Context.get(context, HttpServer).address?.port).toBe(port)
  client = await openClickHouse(clickhouse)
})

afterAll(async () => {
  await client?.close()
  if (scope) await Effect.runPromise(Scope.close(scope, Exit.void))
  rmSync(dir, { recursive: true, force: true })
})

const get = async (name: string) => {
  const response = await fetch(`${base}/api/v0/clickhouse/${name}`)
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() }
}

describe('orchestrator endpoints', () => {
  it.each(dictionaryDefinitions.map((d) => [d.name, d] as const))('serve %s.csv as CSVWithNames that chDB reads', async (name, dictionary) => {
    const { status, type, text } = await get(`${name}.csv`)
    expect(status).toBe(200)
    expect(type).toContain('text/csv')
    const lines = text.trimEnd().split('\n')
    expect(parseCsvLine(lines[0]!)).toEqual(dictionary.columns.map((c) => c.name))
    for (const line of lines.slice(1)) expect(parseCsvLine(line)).toHaveLength(dictionary.columns.length)
    const structure = dictionary.columns.map((c) => `${c.name} ${c.type}`).join(', ')
    const [row] = await queryRows<{ n: string }>(
      client,
      `SELECT count() AS n FROM url({url:String}, 'CSVWithNames', {structure:String})`,
      { url: `${base}/api/v0/clickhouse/${name}.csv`, structure },
    )
    expect(Number(row!.n)).toBe(lines.length - 1)
  })

  it('serves AS names from the shipped list with overrides, quoted where needed', async () => {
    const { text } = await get('asns.csv')
    expect(text.split('\n').length).toBeGreaterThan(50_000)
    expect(text).toContain('\n64512,"lab, ""north"""\n')
    expect(text).toContain('\n15169,Google LLC\n')
  })

  it('serves the flow and counters .proto files and a 404 naming what exists', async () => {
    const proto = await get('flow_batch.proto')
    expect(proto.status).toBe(200)
    expect(proto.text).toBe(readFileSync(join(import.meta.dirname, '../../../bus-schemas/proto/flowbus/v1/flow_batch.proto'), 'utf8'))
    expect((await get('counters.proto')).text).toContain('message InterfaceCounters')
    const missing = await get('nope.csv')
    expect(missing.status).toBe(404)
    expect(missing.text).toContain('available: init.sh, protocols.csv')
  })

  it('serves an init.sh that fetches every file with sh and curl or wget', async () => {
    const { status, text } = await get('init.sh')
    expect(status).toBe(200)
    const schemas = join(dir, 'format_schemas')
    const files = join(dir, 'user_files')
    // Asynchronously: the endpoint answering the script lives in this process.
    const { stdout } = await promisify(execFile)('sh', ['-c', text], {
      env: { ...process.env, CLICKHOUSE_FORMAT_SCHEMAS: schemas, CLICKHOUSE_USER_FILES: files },
    })
    expect(stdout).toContain('fetched 2 schemas')
    expect(readFileSync(join(schemas, 'flowbus', 'flow_batch.proto'), 'utf8')).toContain('message FlowBatch')
    expect(readFileSync(join(files, 'flowbus', 'protocols.csv'), 'utf8')).toBe((await get('protocols.csv')).text)
  })

  it('migrates in the background; dictionaries then load from the endpoint over HTTP', async () => {
    await Effect.runPromise(awaitSchema(client, clickhouse, { interval: '100 millis' }))
    // The last step creates the last dictionary: wait for it too.
    for (;;) {
      const rows = await queryRows(client, "SELECT name FROM system.dictionaries WHERE database = 'served'")
      if (rows.length === dictionaryDefinitions.length) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const [create] = await queryRows<{ statement: string }>(client, 'SHOW CREATE DICTIONARY served.asns')
    expect(create!.statement).toContain(`SOURCE(HTTP(URL '${base}/api/v0/clickhouse/asns.csv' FORMAT 'CSVWithNames'))`)
    const [names] = await queryRows<{ lab: string; proto: string; icmp: string }>(
      client,
      `SELECT dictGet('served.asns', 'name', toUInt64(64512)) AS lab, dictGet('served.protocols', 'name', toUInt64(6)) AS proto,
              dictGet('served.icmp', 'name', (toUInt8(1), toUInt8(0), toUInt8(0))) AS icmp`,
    )
    expect(names).toEqual({ lab: 'lab, "north"', proto: 'TCP', icmp: 'echo-reply' })
  })
})

describe('shared HTTP endpoint', () => {
  it('keeps /metrics, /healthz and /readyz and refuses a route overlapping one in use', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('flowbus_')
    const overlaps = (prefix: string) =>
      Effect.runPromise(Effect.scoped(Effect.flatMap(HttpServer, (server) => server.route(prefix, () => undefined))).pipe(Effect.provide(context), Effect.flip))
    expect((await overlaps('/metrics')).message).toBe('HTTP route /metrics overlaps /metrics, already served')
    expect((await overlaps('/api/v0/')).message).toBe('HTTP route /api/v0/ overlaps /api/v0/clickhouse/, already served')
  })
})
