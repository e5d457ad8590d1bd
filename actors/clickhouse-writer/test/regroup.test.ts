// Grouped inserts stay exactly once across a crash: a writer that inserted groups and died before
// acknowledging, then a new writer getting the same messages back in another order and company,
// regroups them as the ledger recorded and ClickHouse skips the repeated inserts; messages of a
// committed group that come back (Kafka's offset commit lag) are acknowledged without an insert.
import { join } from 'node:path'
import type { WriterBatchRecord } from '@flowbus/bus-schemas'
import { type ClickHouseConfig, openClickHouse, storageColumns } from '@flowbus/runtime'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sampleFlowBatch } from '../../../bus-schemas/test/fixtures/sample-flows.js'
import { removeDir, tempDir } from '../../../test/src/harness/process.js'
import { NativeEncoder } from '../src/encode/native.js'
import { planColumns } from '../src/encode/plan.js'
import { embeddedInserter } from '../src/inserter.js'
import { BatchLedger } from '../src/ledger.js'
import { FlowWriter, type HeldMessage, type StoreBatch, blockHash } from '../src/writer.js'
import { createSchema, resolveWriterConfig, scalar } from './harness.js'
import { flowsStore, mapStore, writerDefaults } from './writer-helpers.js'

type Client = Awaited<ReturnType<typeof openClickHouse>>

let dir: string
let client: Client
const keepForever = { flows: 0, flows1m: 0, flows5m: 0, flows1h: 0, counters: 0 }

beforeAll(async () => {
  dir = await tempDir('writer-regroup')
  client = await openClickHouse(resolveWriterConfig({ clickhouse: { path: join(dir, 'db'), retention: keepForever } }).clickhouse as ClickHouseConfig)
})

afterAll(async () => {
  await client?.close()
  await removeDir(dir)
})

describe('grouped inserts across a crash', () => {
  const setup = async (database: string) => {
    const config = resolveWriterConfig({ clickhouse: { database, retention: keepForever } }).clickhouse as ClickHouseConfig
    await createSchema(client, config)
    const encoder = new NativeEncoder(planColumns(storageColumns(config).map((c) => ({ name: c.name, type: c.type, source: c.name }))))
    // Ten messages of 400 flows on shard 3, at positions 101, 103, … (JetStream positions skip).
    const messages = Array.from({ length: 10 }, (_, i) => {
      const block = encoder.encode(sampleFlowBatch(400, 500 + i))
      return { hash: blockHash(block), block, rows: 400, shard: 3, position: 101 + 2 * i }
    })
    const store = flowsStore(embeddedInserter(client, ''), `\`${database}\`.\`flows\``, encoder.columns)
    return { messages, store, count: () => scalar(client, `SELECT count() FROM \`${database}\`.flows`) }
  }

  // A writer starting on the bucket's records, as the actor does (load, then take messages).
  const writerOn = async (ledgerEntries: Map<string, WriterBatchRecord>, store: StoreBatch, inserts: number[]) => {
    const ledger = new BatchLedger(mapStore(ledgerEntries), 'writers', 'flows.enriched.v1', 600_000)
    await ledger.load()
    return new FlowWriter({
      ...writerDefaults,
      store,
      concurrency: 1,
      batchRows: 1600,
      batchTimeMs: 60_000,
      ledger,
      events: { inserted: (rows) => void inserts.push(rows), retrying: () => {}, rejected: () => {}, available: () => {} },
    })
  }

  const deliver = (writer: FlowWriter, m: Omit<HeldMessage, 'arrivedMs' | 'ack' | 'nak'>, acked: number[]) =>
    writer.accept({ ...m, arrivedMs: Date.now(), ack: async () => void acked.push(m.position!), nak: async () => {} })

  it('regroups redelivered messages as recorded, so a crash between insert and acknowledgement stores nothing twice', async () => {
    const { messages, store, count } = await setup('regroup')
    const ledger = new Map<string, WriterBatchRecord>()
    // First writer: groups of four messages (1600 rows) are inserted, then it "dies" before
    // acknowledging anything (the store commits the rows, then fails, and the writer is closed).
    const firstAcks: number[] = []
    const firstInserts: number[] = []
    const crashing: StoreBatch = async (batch, token) => {
      await store(batch, token)
      throw new Error('connection lost after the insert committed')
    }
    const first = await writerOn(ledger, crashing, firstInserts)
    for (const m of messages.slice(0, 8)) await deliver(first, m, firstAcks)
    await new Promise((resolve) => setTimeout(resolve, 100))
    await first.close()
    expect(firstAcks).toEqual([])
    expect(await count()).toBe(8 * 400)
    const records = [...ledger.values()]
    expect(records.map((r) => [r.positions, r.committed])).toEqual([
      [[101, 103, 105, 107], false],
      [[109, 111, 113, 115], false],
    ])

    // Second writer, same ledger: the eight come back shuffled, with the two messages never
    // inserted in between. Without the ledger they would group differently and be stored again.
    const acks: number[] = []
    const inserts: number[] = []
    const second = await writerOn(ledger, store, inserts)
    for (const i of [5, 0, 8, 2, 7, 1, 9, 3, 6, 4]) await deliver(second, messages[i]!, acks)
    await second.close()
    expect(acks.sort((a, b) => a - b)).toEqual(messages.map((m) => m.position))
    expect(await count()).toBe(10 * 400)
    expect([...ledger.values()].every((r) => r.committed)).toBe(true)
    expect(inserts.reduce((a, b) => a + b, 0)).toBe(10 * 400)

    // Third writer: acknowledged messages come back once more (Kafka had not committed the
    // offsets yet): they are acknowledged without an insert.
    const lateAcks: number[] = []
    const lateInserts: number[] = []
    const third = await writerOn(ledger, store, lateInserts)
    for (const m of messages.slice(2, 6)) await deliver(third, m, lateAcks)
    await third.close()
    expect(lateAcks).toEqual([105, 107, 109, 111])
    expect(lateInserts).toEqual([])
    expect(await count()).toBe(10 * 400)
  })

  it('stores once a message an upstream actor published again at a new position, held or already stored', async () => {
    const { messages, store, count } = await setup('copies')
    const acks: number[] = []
    const inserts: number[] = []
    const writer = await writerOn(new Map(), store, inserts)
    // An enricher that crashed before its ack publishes the same enriched bytes again: same hash,
    // new position. One copy arrives while the original waits in an open group…
    for (const m of messages.slice(0, 2)) await deliver(writer, m, acks)
    await deliver(writer, { ...messages[1]!, position: 201 }, acks)
    for (const m of messages.slice(2, 4)) await deliver(writer, m, acks)
    await writer.flush()
    // …another after its original was stored.
    await deliver(writer, { ...messages[2]!, position: 203 }, acks)
    await writer.close()
    expect(await count()).toBe(4 * 400)
    expect(inserts.reduce((a, b) => a + b, 0)).toBe(4 * 400)
    expect(acks.sort((a, b) => a - b)).toEqual([101, 103, 105, 107, 201, 203])
  })

  it('without the ledger the same crash stores the regrouped messages twice (why the ledger exists)', async () => {
    const { messages, store, count } = await setup('noledger')
    const crashing: StoreBatch = async (batch, token) => {
      await store(batch, token)
      throw new Error('connection lost after the insert committed')
    }
    // Grouping without records: groups are formed by arrival, tokens hash the group.
    const grouped = (s: StoreBatch) =>
      new FlowWriter({
        ...writerDefaults,
        store: s,
        concurrency: 1,
        batchRows: 1600,
        batchTimeMs: 60_000,
        ledger: new BatchLedger(mapStore(new Map()), 'writers', 'flows.enriched.v1', 600_000),
        events: { inserted: () => {}, retrying: () => {}, rejected: () => {}, available: () => {} },
      })
    const first = grouped(crashing)
    for (const m of messages.slice(0, 8)) await deliver(first, m, [])
    await new Promise((resolve) => setTimeout(resolve, 100))
    await first.close()
    const second = grouped(store)
    for (const i of [5, 0, 8, 2, 7, 1, 9, 3, 6, 4]) await deliver(second, messages[i]!, [])
    await second.close()
    expect(await count()).toBeGreaterThan(10 * 400)
  })
})
