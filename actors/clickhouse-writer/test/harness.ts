// Runs the writer actor in this process the way `flowbus actor clickhouse-writer` does (kernel,
// HTTP endpoint, shared sections), on a transport the test also publishes to; and creates the
// ClickHouse schema from the storage definitions the orchestrator migrates.
import {
  type ClickHouseConfig,
  type ResolvedConfig,
  SharedSections,
  type Transport,
  configSchema,
  ident,
  openClickHouse,
  renderCreateTable,
  renderCreateView,
  runActors,
  tableDefinitions,
  viewDefinitions,
} from '@flowbus/runtime'
import { Effect, Fiber, Schema } from 'effect'
import { clickhouseWriter } from '../src/actor.js'

type Client = Awaited<ReturnType<typeof openClickHouse>>

export const resolveWriterConfig = (raw: object): ResolvedConfig =>
  Schema.decodeUnknownSync(configSchema([clickhouseWriter]))(raw) as ResolvedConfig

export interface RunningWriter {
  readonly url: string
  readonly stop: () => Promise<void>
}

/** Starts the writer on `transport`; resolves once it is running. */
export async function startWriter(transport: Transport, config: ResolvedConfig): Promise<RunningWriter> {
  let resolveReady!: (url: string) => void
  const ready = new Promise<string>((resolve) => (resolveReady = resolve))
  const fiber = Effect.runFork(
    runActors({
      actors: [clickhouseWriter],
      config,
      transport,
      onReady: (endpoint) => resolveReady(`http://127.0.0.1:${endpoint.address?.port}`),
    }).pipe(
      Effect.provideService(SharedSections, { bus: config.bus, clickhouse: config.clickhouse as ClickHouseConfig }),
    ),
  )
  const url = await Promise.race([
    ready,
    Effect.runPromise(Fiber.join(fiber)).then(() => {
      throw new Error('the writer stopped before it was ready')
    }),
  ])
  return { url, stop: () => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined) }
}

/** Creates the database, tables and views of `config` (what the orchestrator's migrations make). */
export async function createSchema(client: Client, config: ClickHouseConfig): Promise<void> {
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${ident(config.database)}` })
  for (const table of tableDefinitions(config)) await client.command({ query: renderCreateTable(config, table) })
  for (const view of viewDefinitions(config)) await client.command({ query: renderCreateView(config, view) })
}

/** Polls until check() returns true (tests never assert on timing, only on an eventual state). */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

export const scalar = async (client: Client, query: string): Promise<number> => {
  const rows = await (await client.query({ query, format: 'JSONEachRow' })).json<Record<string, unknown>>()
  return Number(Object.values(rows[0] ?? { v: 0 })[0])
}
