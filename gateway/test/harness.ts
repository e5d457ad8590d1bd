// Runs the gateway as production does, with the orchestrator (migrations) and the
// clickhouse-writer (inserts) in one process on the embedded engine and a bus the test also
// publishes to; flows go through the writer, so the aggregated tables are filled its way.
import { FlowBatch, flowsEnriched, flowsLive, parseIP } from '@flowbus/bus-schemas'
import { clickhouseWriter } from '@flowbus/clickhouse-writer'
import { orchestrator } from '@flowbus/orchestrator'
import {
  type BusService,
  type ClickHouseConfig,
  type ResolvedConfig,
  SharedSections,
  type Transport,
  aggregatedTables,
  dictionaryDefinitions,
  tableDefinitions,
  viewDefinitions,
  configSchema,
  connectTransport,
  makeBus,
  makeMetrics,
  openClickHouse,
  runActors,
} from '@flowbus/runtime'
import { Effect, Fiber, Schema } from 'effect'
import { gateway, gatewayAddresses } from '../src/index.js'

export type Client = Awaited<ReturnType<typeof openClickHouse>>

/** One generated flow: the columns the tests group, filter and sum by. */
export interface TestFlow {
  time: number
  samplingRate: number
  exporter: string
  exporterName: string
  srcAddr: string
  dstAddr: string
  srcAS: number
  dstAS: number
  inIf: number
  outIf: number
  inIfName: string
  outIfName: string
  inIfSpeed: number
  outIfSpeed: number
  inIfBoundary: number
  proto: number
  srcPort: number
  dstPort: number
  bytes: number
  packets: number
  srcCountry: string
  dstCountry: string
}

/** Deterministic pseudo-random numbers (mulberry32). */
export const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Start of the generated data: a day boundary, far enough in the past to be "history". */
export const T0 = Date.UTC(2026, 9, 1) / 1000

const asPool = [64500, 64501, 64502, 64503, 64504, 64505, 64506, 64507, 64508, 64509, 64510, 64511, 15169, 13335, 3356]
const countries = ['FR', 'US', 'DE', 'JP', 'BR']

/** `count` flows over `hours` hours from T0, skewed so the top values are clear. */
export const generateFlows = (count: number, hours: number, seed = 7): TestFlow[] => {
  const next = random(seed)
  const pick = <T>(values: readonly T[]) => values[Math.floor(next() ** 2 * values.length)]!
  const flows: TestFlow[] = []
  for (let i = 0; i < count; i++) {
    const exporter = next() < 0.6 ? 1 : 2
    const inIf = 1 + Math.floor(next() * 3)
    const outIf = 10 + Math.floor(next() * 2)
    const packets = 1 + Math.floor(next() * 20)
    flows.push({
      time: T0 + Math.floor(next() * hours * 3600),
      samplingRate: next() < 0.5 ? 1 : 10,
      exporter: `192.0.2.${exporter}`,
      exporterName: `edge${exporter}`,
      srcAddr: `198.51.${100 + Math.floor(next() * 2)}.${Math.floor(next() * 8)}`,
      dstAddr: `203.0.113.${Math.floor(next() * 6)}`,
      srcAS: pick(asPool),
      dstAS: pick([...asPool].reverse()),
      inIf,
      outIf,
      inIfName: `Gi0/${inIf}`,
      outIfName: `Te0/${outIf}`,
      inIfSpeed: inIf === 1 ? 10_000 : 1_000,
      outIfSpeed: 10_000,
      inIfBoundary: inIf === 1 ? 1 : 2,
      proto: next() < 0.7 ? 6 : 17,
      srcPort: 1024 + Math.floor(next() * 5),
      dstPort: pick([443, 80, 53, 22, 8080, 25]),
      bytes: packets * (40 + Math.floor(next() * 1400)),
      packets,
      srcCountry: pick(countries),
      dstCountry: pick([...countries].reverse()),
    })
  }
  return flows
}

const ipv4 = (text: string) => parseIP(text)

/** The flows as FlowBatches of at most `size` rows, as the enricher publishes them. */
export const toBatches = (flows: readonly TestFlow[], size = 5000): FlowBatch[] => {
  const batches: FlowBatch[] = []
  for (let start = 0; start < flows.length; start += size) {
    const part = flows.slice(start, start + size)
    const batch = new FlowBatch(part.length)
    for (const f of part) {
      const r = batch.appendRow()
      batch.u32('TimeReceived')[r] = f.time
      batch.u32('SamplingRate')[r] = f.samplingRate
      batch.setIP('ExporterAddress', r, ipv4(f.exporter))
      batch.setString('ExporterName', r, f.exporterName)
      batch.setIP('SrcAddr', r, ipv4(f.srcAddr))
      batch.setIP('DstAddr', r, ipv4(f.dstAddr))
      batch.u32('SrcAS')[r] = f.srcAS
      batch.u32('DstAS')[r] = f.dstAS
      batch.u32('InIf')[r] = f.inIf
      batch.u32('OutIf')[r] = f.outIf
      batch.setString('InIfName', r, f.inIfName)
      batch.setString('OutIfName', r, f.outIfName)
      batch.u32('InIfSpeed')[r] = f.inIfSpeed
      batch.u32('OutIfSpeed')[r] = f.outIfSpeed
      batch.u8('InIfBoundary')[r] = f.inIfBoundary
      batch.u8('Proto')[r] = f.proto
      batch.u16('SrcPort')[r] = f.srcPort
      batch.u16('DstPort')[r] = f.dstPort
      batch.u64('Bytes')[r] = f.bytes
      batch.u64('Packets')[r] = f.packets
      batch.setString('SrcCountry', r, f.srcCountry)
      batch.setString('DstCountry', r, f.dstCountry)
    }
    batches.push(batch)
  }
  return batches
}

export const resolveConfig = (raw: object): ResolvedConfig =>
  Schema.decodeUnknownSync(configSchema([orchestrator, clickhouseWriter, gateway]))(raw) as ResolvedConfig

export interface Pipeline {
  readonly url: string
  /** The process's /metrics, /healthz endpoint. */
  readonly metricsURL: string
  readonly config: ResolvedConfig
  readonly clickhouse: ClickHouseConfig
  readonly bus: BusService
  readonly transport: Transport
  /** Publishes flows on flows.enriched (the writer stores them). */
  readonly store: (flows: readonly TestFlow[]) => Promise<void>
  /** Publishes flows on the live fan-out (flows.live). */
  readonly live: (flows: readonly TestFlow[]) => Promise<void>
  readonly stop: () => Promise<void>
}

/** Starts orchestrator, writer and gateway on `transport` (memory when absent); resolves once they run. */
export async function startPipeline(raw: Record<string, unknown>, transport?: Transport): Promise<Pipeline> {
  const config = resolveConfig(raw)
  const bus_ = transport ?? (await connectTransport(config.bus))
  const bus = makeBus(bus_, config.bus, makeMetrics())
  let ready!: (port: number) => void
  const started = new Promise<number>((resolve) => (ready = resolve))
  const fiber = Effect.runFork(
    runAll(config, bus_, (port) => ready(port)).pipe(
      Effect.provideService(SharedSections, { bus: config.bus, clickhouse: config.clickhouse as ClickHouseConfig }),
    ),
  )
  const httpPort = await Promise.race([
    started,
    Effect.runPromise(Fiber.join(fiber)).then(() => {
      throw new Error('the pipeline stopped before it was ready')
    }),
  ])
  const listen = (config.gateway as { listen: string }).listen
  const address = gatewayAddresses.get(listen)
  if (!address) throw new Error(`the gateway did not record its address for ${listen}`)
  return {
    url: `http://127.0.0.1:${address.port}/graphql`,
    metricsURL: `http://127.0.0.1:${httpPort}/metrics`,
    config,
    clickhouse: config.clickhouse as ClickHouseConfig,
    bus,
    transport: bus_,
    store: async (flows) => {
      for (const [i, batch] of toBatches(flows).entries()) await Effect.runPromise(bus.publish(flowsEnriched, `batch-${i}`, batch))
    },
    live: async (flows) => {
      for (const batch of toBatches(flows, 100)) await Effect.runPromise(bus.broadcast(flowsLive, batch))
    },
    stop: () => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined),
  }
}

const runAll = (config: ResolvedConfig, transport: Transport, onReady: (httpPort: number) => void) =>
  runActors({ actors: [orchestrator, clickhouseWriter, gateway], config, transport, onReady: (endpoint) => onReady(endpoint.address?.port ?? 0) })

/** Polls until check() holds (tests never assert on timing, only on an eventual state). */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (error) {
      last = error
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
}

export const scalar = async (client: Client, query: string): Promise<number> => {
  const rows = await (await client.query({ query: `${query} SETTINGS output_format_json_quote_64bit_integers = 0`, format: 'JSONEachRow' })).json<Record<string, unknown>>()
  return Number(Object.values(rows[0] ?? { v: 0 })[0])
}

/**
 * Waits until the orchestrator created every table, view and dictionary of the configuration.
 * The writer only waits for `flows` itself: flows inserted before the views exist would never
 * reach the aggregated tables.
 */
export async function waitSchema(client: Client, config: ClickHouseConfig): Promise<void> {
  const wanted = [
    ...tableDefinitions(config).map((t) => t.name),
    ...viewDefinitions(config).map((v) => v.name),
    ...dictionaryDefinitions.map((d) => d.name),
  ]
  await eventually(async () => {
    const rows = await (
      await client.query({ query: 'SELECT name FROM system.tables WHERE database = {db:String}', query_params: { db: config.database }, format: 'JSONEachRow' })
    ).json<{ name: string }>()
    const present = new Set(rows.map((r) => r.name))
    return wanted.every((name) => present.has(name))
  }, `the schema of ${config.database}`)
}

/** Waits until every flow is in `flows` and summed in each aggregated table. */
export async function waitStored(client: Client, database: string, count: number): Promise<void> {
  await eventually(async () => (await scalar(client, `SELECT count() FROM ${database}.flows`)) === count, `${count} flows stored`)
  for (const { name } of aggregatedTables) {
    await eventually(async () => (await scalar(client, `SELECT sum(Flows) FROM ${database}.${name}`)) === count, `${name} holding ${count} flows`)
  }
}

export interface GraphQLResponse<T = Record<string, any>> {
  data?: T
  errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[]
}

/** POSTs a GraphQL request. */
export async function graphql<T = Record<string, any>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  })
  return (await response.json()) as GraphQLResponse<T>
}

/** The data of a request that must succeed (its errors in the failure message). */
export async function ok<T = Record<string, any>>(url: string, query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<T> {
  const result = await graphql<T>(url, query, variables, headers)
  if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`)
  return result.data
}
