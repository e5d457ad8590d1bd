// The writer's batch ledger: every insert of bus messages is recorded in the `writer.batches`
// state bucket (shard, positions, token) before it runs and marked committed before its messages
// are acknowledged, so whichever writer gets the messages again regroups them exactly as before.
import type { WriterBatchRecord } from '@flowbus/bus-schemas'

/** The bucket operations the ledger needs (the Bus StateStore, or a Map in unit tests). */
export interface LedgerStore {
  readonly get: (key: string) => Promise<WriterBatchRecord | undefined>
  readonly put: (key: string, record: WriterBatchRecord) => Promise<void>
  readonly delete: (key: string) => Promise<void>
  readonly keys: () => Promise<string[]>
}

/** NATS KV keys take `[-/_=.a-zA-Z0-9]`; group names are free text. */
const keyToken = (text: string): string => text.replace(/[^-/_=a-zA-Z0-9]/g, '_')

export class BatchLedger {
  readonly #store: LedgerStore
  readonly #prefix: string
  readonly #stream: string
  readonly #retentionMs: number
  readonly #records = new Map<string, WriterBatchRecord>()
  /** `<shard>:<position>` → key of the record holding that message. */
  readonly #byPosition = new Map<string, string>()
  #lastPruneMs = 0

  /**
   * @param retentionMs committed records are kept this long: a message acknowledged but not yet
   * committed by the bus (Kafka commits offsets about once a second) can still come back.
   */
  constructor(store: LedgerStore, group: string, stream: string, retentionMs: number) {
    this.#store = store
    this.#prefix = `${keyToken(group)}.${keyToken(stream)}.`
    this.#stream = stream
    this.#retentionMs = retentionMs
  }

  get stream(): string {
    return this.#stream
  }

  keyOf(record: Pick<WriterBatchRecord, 'shard' | 'firstPosition'>): string {
    return `${this.#prefix}${record.shard}.${record.firstPosition}`
  }

  /** Reads the records already in the bucket (before the first message is taken). */
  async load(): Promise<void> {
    for (const key of await this.#store.keys()) {
      if (!key.startsWith(this.#prefix)) continue
      this.apply(key, await this.#store.get(key))
    }
  }

  /** A change seen in the bucket (another writer's record, or our own echoed). */
  apply(key: string, record: WriterBatchRecord | undefined): void {
    if (!key.startsWith(this.#prefix)) return
    const old = this.#records.get(key)
    if (old) for (const p of old.positions) if (this.#byPosition.get(`${old.shard}:${p}`) === key) this.#byPosition.delete(`${old.shard}:${p}`)
    if (record === undefined) {
      this.#records.delete(key)
      return
    }
    this.#records.set(key, record)
    for (const p of record.positions) this.#byPosition.set(`${record.shard}:${p}`, key)
  }

  /** The recorded batch holding the message at this position of this shard, if any. */
  find(shard: number, position: number): WriterBatchRecord | undefined {
    const key = this.#byPosition.get(`${shard}:${position}`)
    return key === undefined ? undefined : this.#records.get(key)
  }

  async put(record: WriterBatchRecord): Promise<void> {
    const key = this.keyOf(record)
    await this.#store.put(key, record)
    this.apply(key, record)
    if (record.committed) await this.#prune(record.recordedUnixMs)
  }

  async remove(record: WriterBatchRecord): Promise<void> {
    const key = this.keyOf(record)
    await this.#store.delete(key)
    this.apply(key, undefined)
  }

  /** Records held in memory (for tests and metrics). */
  get size(): number {
    return this.#records.size
  }

  // Committed records older than the retention are of no use any more; pending ones are kept
  // until their messages come back and are stored.
  async #prune(nowMs: number): Promise<void> {
    if (nowMs - this.#lastPruneMs < Math.min(10_000, this.#retentionMs)) return
    this.#lastPruneMs = nowMs
    for (const [key, record] of [...this.#records]) {
      if (record.committed && record.recordedUnixMs < nowMs - this.#retentionMs) {
        await this.#store.delete(key)
        this.apply(key, undefined)
      }
    }
  }
}
