// Pieces the writer's tests share: a FlowWriter store inserting the messages' blocks into a
// table, an in-memory ledger bucket, and option defaults.
import type { WriterBatchRecord } from '@flowbus/bus-schemas'
import type { BlockColumn } from '../src/encode/native.js'
import type { BlockInserter } from '../src/inserter.js'
import type { LedgerStore } from '../src/ledger.js'
import type { StoreBatch } from '../src/writer.js'

/** Inserts a group's blocks, one after the other, as one insert under the group's token. */
export const flowsStore =
  (inserter: BlockInserter, table: string, columns: readonly BlockColumn[]): StoreBatch =>
  (messages, token) =>
    inserter.insertNative(table, columns, Buffer.concat(messages.map((m) => m.block)), token)

/** The writer.batches bucket as a Map (the bus KV in the actor). */
export const mapStore = (entries: Map<string, WriterBatchRecord>): LedgerStore => ({
  get: async (key) => entries.get(key),
  put: async (key, record) => void entries.set(key, structuredClone(record)),
  delete: async (key) => void entries.delete(key),
  keys: async () => [...entries.keys()],
})

export const writerDefaults = {
  concurrency: 2,
  batchRows: 1,
  batchTimeMs: 1000,
  maxOpenMessages: 1000,
  maxOpenBytes: 1 << 30,
  retryMinMs: 10,
  retryMaxMs: 10,
}
