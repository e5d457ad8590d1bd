// The writer actor on the memory bus and the real engine: every flow stored once and acknowledged,
// a redelivered group deduplicated in flows and the aggregated tables, refused rows dead-lettered
// with the reason, and nothing lost while ClickHouse refuses connections.
import { join } from 'node:path'
import { FlowBatch, countersInterfaces, flowsEnriched } from '@flowbus/bus-schemas'
import {
  type ClickHouseConfig,
  type Delivery,
  connectTransport,
  deadLetterHeaders,
  deadLetterSpecFor,
  makeBus,
  makeMetrics,
  openClickHouse,
  storageColumns,
} from '@flowbus/runtime'
import { Effect } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sampleFlowBatch } from '../../../bus-schemas/test/fixtures/sample-flows.js'
import { freePort, removeDir, tempDir } from '../../../test/src/harness/process.js'
import { NativeEncoder } from '../src/encode/native.js'
import { planColumns } from '../src/encode/plan.js'
import { embeddedInserter } from '../src/inserter.js'
import { BatchLedger } from '../src/ledger.js'
import { FlowWriter, blockHash } from '../src/writer.js'
import { createSchema, eventually, resolveWriterConfig, scalar, startWriter } from './harness.js'
import { flowsStore as storeInto, mapStore, writerDefaults } from './writer-helpers.js'

type Client = Awaited<ReturnType<typeof openClickHouse>>

let dir: string
let client: Client

const keepForever = { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 }

const rawConfig = (database: string, extra: Record<string, unknown> = {}) => ({
  http: { listen: '127.0.0.1:0' },
  log: { level: 'warning' },
  bus: { transport: 'memory', consumer: { maxDeliveries: 2 } },
  // Sample flows are dated 2025: keep them whatever the retention would say today.
  clickhouse: { path: join(dir, 'db'), database, retention: keepForever },
  'clickhouse-writer': { retryMin: '50ms', retryMax: '200ms' },
  ...extra,
})

const setup = async (database: string, extra: Record<string, unknown> = {}) => {
  const config = resolveWriterConfig(rawConfig(database, extra))
  const clickhouse = resolveWriterConfig(rawConfig(database)).clickhouse as ClickHouseConfig
  await createSchema(client, clickhouse)
  const transport = await connectTransport(config.bus)
  const bus = makeBus(transport, config.bus, makeMetrics())
  const publish = (key: string, batch: FlowBatch) => Effect.runPromise(bus.publish(flowsEnriched, key, batch))
  return { config, clickhouse, transport, bus, publish }
}

const flowsStore = (table: string, encoder: NativeEncoder) => storeInto(embeddedInserter(client, ''), table, encoder.columns)

const count = (database: string, table = 'flows', expression = 'count()') => scalar(client, `SELECT ${expression} FROM ${database}.${table}`)

beforeAll(async () => {
  dir = await tempDir('writer-actor')
  const config = resolveWriterConfig(rawConfig('flowbus')).clickhouse as ClickHouseConfig
  client = await openClickHouse(config)
})

afterAll(async () => {
  await client?.close()
  await removeDir(dir)
})

describe('clickhouse-writer on the memory bus', () => {
  it('stores every published flow once, in flows and the aggregated tables, and acknowledges', async () => {
    const { config, transport, publish } = await setup('stored')
    const writer = await startWriter(transport, config)
    let flows = 0
    let bytes = 0
    for (let i = 0; i < 12; i++) {
      const batch = sampleFlowBatch(1500, i + 1)
      flows += batch.count
      for (const b of batch.view('Bytes')!) bytes += b
      await publish(`192.0.2.${i}`, batch)
    }
    await eventually(async () => (await count('stored')) === flows, `${flows} rows in flows`)
    expect(await count('stored', 'flows', 'sum(Bytes)')).toBe(bytes)
    // An insert's rows show in flows a moment before the views' rows: wait for those too.
    for (const table of ['flows_1m0s', 'flows_5m0s', 'flows_1h0m0s']) {
      await eventually(async () => (await count('stored', table, 'sum(Flows)')) === flows, `${flows} flows in ${table}`)
      expect(await count('stored', table, 'sum(Bytes)'), table).toBe(bytes)
    }
    const metrics = await (await fetch(`${writer.url}/metrics`)).text()
    expect(metrics).toMatch(new RegExp(`flowbus_writer_rows_total\\{table="flows"\\} ${flows}`))
    expect(metrics).toMatch(/flowbus_bus_acked_total\{subject="flows.enriched.v1",group="clickhouse-writer"\} 12/)
    expect((await fetch(`${writer.url}/readyz`)).status).toBe(200)
    await writer.stop()
    await transport.close()
  })

  it('stores interface counter samples', async () => {
    const { config, transport, bus } = await setup('counters')
    const writer = await startWriter(transport, config)
    const sample = (ifIndex: number) => ({
      exporterAddress: new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]),
      agentAddress: new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
      subAgentId: 1, timeReceived: 1_760_000_000, sequenceNumber: 42, ifIndex, ifType: 6, ifSpeed: 10_000_000_000,
      ifDirection: 1, ifStatus: 3, inOctets: 2 ** 40, inUnicastPackets: 5, inMulticastPackets: 0, inBroadcastPackets: 0,
      inDiscards: 0, inErrors: 1, inUnknownProtocols: 0, outOctets: 123, outUnicastPackets: 7, outMulticastPackets: 0,
      outBroadcastPackets: 0, outDiscards: 2, outErrors: 0, promiscuousMode: 0,
    })
    await Effect.runPromise(bus.publish(countersInterfaces, '192.0.2.1', { counters: [sample(1), sample(2)] }))
    await eventually(async () => (await count('counters', 'interface_counters')) === 2, 'two counter rows')
    const rows = await (
      await client.query({
        query: `SELECT toString(ExporterAddress) AS e, toString(AgentAddress) AS a, IfIndex, InOctets, toString(IfDirection) AS d FROM counters.interface_counters ORDER BY IfIndex`,
        format: 'JSONEachRow',
        clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
      })
    ).json()
    expect(rows).toEqual([
      { e: '::ffff:192.0.2.1', a: '2001:db8::1', IfIndex: 1, InOctets: 2 ** 40, d: 'full-duplex' },
      { e: '::ffff:192.0.2.1', a: '2001:db8::1', IfIndex: 2, InOctets: 2 ** 40, d: 'full-duplex' },
    ])
    await writer.stop()
    await transport.close()
  })

  it('stores a redelivered message once, in flows and the aggregated tables', async () => {
    const { clickhouse } = await setup('redelivered')
    const plans = planColumns(storageColumns(clickhouse).map((c) => ({ name: c.name, type: c.type, source: c.name })))
    const encoder = new NativeEncoder(plans)
    const messages = [1, 2, 3].map((seed) => {
      const block = encoder.encode(sampleFlowBatch(1000, seed))
      return { hash: blockHash(block), block, rows: 1000 }
    })
    const run = async (redelivered: typeof messages) => {
      let acks = 0
      // No ledger: every message is its own insert, its token the hash of its block.
      const writer = new FlowWriter({
        ...writerDefaults,
        store: flowsStore('`redelivered`.`flows`', encoder),
        concurrency: 2,
        events: { inserted: () => {}, retrying: () => {}, rejected: () => {}, available: () => {} },
      })
      for (const m of redelivered) await writer.accept({ ...m, arrivedMs: Date.now(), ack: async () => void acks++, nak: async () => {} })
      await writer.close()
      return acks
    }
    expect(await run(messages)).toBe(3)
    // As after a crash between the inserts and the acknowledgements, in another order and
    // with other messages around: each message is still stored once.
    const fourth = encoder.encode(sampleFlowBatch(1000, 4))
    expect(await run([messages[2]!, { hash: blockHash(fourth), block: fourth, rows: 1000 }, messages[0]!])).toBe(3)
    expect(await count('redelivered')).toBe(4000)
    await eventually(async () => (await count('redelivered', 'flows_1m0s', 'sum(Flows)')) === 4000, '4000 flows in flows_1m0s')
  })

  it('groups messages of a shard by rows, and isolates a refused message of a group', async () => {
    const { clickhouse } = await setup('batched')
    const encoder = new NativeEncoder(planColumns(storageColumns(clickhouse).map((c) => ({ name: c.name, type: c.type, source: c.name }))))
    const inserts: number[] = []
    const rejected: string[] = []
    let acks = 0
    let naks = 0
    const writer = new FlowWriter({
      ...writerDefaults,
      store: flowsStore('`batched`.`flows`', encoder),
      concurrency: 1,
      batchRows: 5000,
      batchTimeMs: 60_000,
      ledger: new BatchLedger(mapStore(new Map()), 'test', 'flows.enriched.v1', 60_000),
      events: { inserted: (rows) => void inserts.push(rows), retrying: () => {}, rejected: (reason) => void rejected.push(reason), available: () => {} },
    })
    let position = 0
    const message = (seed: number, broken = false) => {
      const batch = sampleFlowBatch(1000, seed)
      if (broken) batch.u8('OutIfBoundary')[3] = 7
      const block = encoder.encode(batch)
      return { hash: blockHash(block), block, rows: 1000, shard: 0, position: ++position, arrivedMs: Date.now(), ack: async () => void acks++, nak: async () => void naks++ }
    }
    // Five messages of 1000 rows fill a group of 5000: one insert.
    for (const seed of [31, 32, 33, 34, 35]) await writer.accept(message(seed))
    await writer.flush()
    expect(inserts).toEqual([5000])
    // A refused message in a group: the insert is split, only that one is refused.
    for (const [seed, broken] of [[36, false], [37, true], [38, false]] as const) await writer.accept(message(seed, broken))
    await writer.flush()
    expect(rejected).toHaveLength(1)
    expect(rejected[0]).toMatch(/Unexpected value 7 in enum/)
    expect({ acks, naks }).toEqual({ acks: 7, naks: 1 })
    expect(inserts).toEqual([5000, 1000, 1000])
    expect(await count('batched')).toBe(7000)
    await writer.close()
  })

  it('sends a batch ClickHouse refuses to the dead-letter subject with the reason, and stores the rest', async () => {
    const { config, transport, publish } = await setup('refused')
    const deadLetters: Delivery[] = []
    await transport.provision([deadLetterSpecFor(flowsEnriched, config.bus)], [])
    const dead = await transport.consume(
      deadLetterSpecFor(flowsEnriched, config.bus),
      { group: 'test', maxInFlight: 10, maxInFlightBytes: 1 << 24, ackWaitMs: 30_000 },
      async (delivery) => {
        deadLetters.push(delivery)
        await delivery.ack()
      },
    )
    const writer = await startWriter(transport, config)
    const bad = sampleFlowBatch(100, 7)
    bad.u8('InIfBoundary')[42] = 9 // not a value of the Enum8
    await publish('192.0.2.1', sampleFlowBatch(500, 1))
    await publish('192.0.2.1', bad)
    await publish('192.0.2.1', sampleFlowBatch(700, 2))
    await eventually(async () => deadLetters.length === 1, 'one dead letter')
    await eventually(async () => (await count('refused')) === 1200, 'the good rows stored')
    const reason = deadLetters[0]!.headers[deadLetterHeaders.reason]!
    expect(reason).toMatch(/ClickHouse refused the flows.enriched message of 192.0.2.1/)
    expect(reason).toMatch(/9|enum|Enum/)
    expect(deadLetters[0]!.data.length).toBeGreaterThan(0)
    const metrics = await (await fetch(`${writer.url}/metrics`)).text()
    expect(metrics).toMatch(/flowbus_writer_rejected_rows_total\{table="flows"\} 100/)
    await writer.stop()
    await dead.close()
    await transport.close()
  })

  it('keeps everything while ClickHouse refuses connections, reports not ready, and stores it once ClickHouse is back', async () => {
    const closedPort = await freePort()
    const down = await setup('outage', { clickhouse: { mode: 'server', url: `http://127.0.0.1:${closedPort}`, database: 'outage', retention: keepForever } })
    const writer = await startWriter(down.transport, down.config)
    let flows = 0
    for (let i = 0; i < 5; i++) {
      const batch = sampleFlowBatch(800, 20 + i)
      flows += batch.count
      await down.publish(`198.51.100.${i}`, batch)
    }
    await eventually(async () => (await fetch(`${writer.url}/metrics`).then((r) => r.text())).match(/flowbus_writer_retries_total\{table="flows"\} [3-9]/) !== null, 'retries')
    const ready = await fetch(`${writer.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(await ready.text()).toMatch(/ClickHouse/)
    await writer.stop()
    // The same bus, now with a working ClickHouse (embedded): nothing was acknowledged, nothing is lost.
    const up = resolveWriterConfig(rawConfig('outage'))
    const restarted = await startWriter(down.transport, up)
    await eventually(async () => (await count('outage')) === flows, `${flows} rows after the outage`)
    await restarted.stop()
    await down.transport.close()
  })
})
