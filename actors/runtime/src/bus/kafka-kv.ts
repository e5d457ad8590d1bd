// A key/value bucket on a compacted Kafka topic: the latest record per key is the value, a
// tombstone (null value) deletes it. Each open store replays the topic into a Map and follows it.
//
// Consistency: put/delete resolve once the write is visible in this store (read-your-writes),
// and get/keys/watch first catch up with the topic's end offset as of the call, so a value
// another process put before the call is seen too. That costs one ListOffsets round trip per
// read; actors that read often should watch() and keep their own view.

import type { Admin, Consumer, Kafka } from 'kafkajs'
import { asBuffer, type RecordSender } from './kafka-producer.js'
import { topicEndOffsets } from './kafka-topics.js'
import { TransportMessageTooLarge, type Closeable, type KvEntry, type KvStore } from './transport.js'

export interface KvStoreSettings {
  readonly kafka: Kafka
  readonly admin: () => Promise<Admin>
  readonly sender: RecordSender
  readonly topic: string
  /** Unique consumer group of this store: it reads everything and commits nothing. */
  readonly groupId: string
  readonly maxMessageBytes: number
  readonly sessionTimeoutMs: number
  readonly heartbeatIntervalMs: number
  readonly maxWaitMs: number
  readonly maxBytesPerPartition: number
  /** How long a read waits to catch up before answering from what it has. */
  readonly syncTimeoutMs: number
  readonly onError: (error: unknown, context: string) => void
}

interface Waiter {
  readonly targets: ReadonlyMap<number, number>
  readonly resolve: () => void
}

/** The partition every write goes to: one partition keeps one order for all keys. */
const WRITE_PARTITION = 0

export async function openKvStore(settings: KvStoreSettings): Promise<KvStore & Closeable> {
  const store = new CompactedTopicStore(settings)
  await store.open()
  return store
}

class CompactedTopicStore implements KvStore, Closeable {
  private readonly entries = new Map<string, Uint8Array>()
  /** Next offset to read, per partition. */
  private readonly positions = new Map<number, number>()
  /** End offsets a read once waited for in vain (records at the end removed by compaction). */
  private readonly unreachable = new Map<number, number>()
  private waiters: Waiter[] = []
  private readonly watchers = new Set<(entry: KvEntry) => void>()
  private readonly consumer: Consumer
  private closed: Promise<void> | undefined

  constructor(private readonly settings: KvStoreSettings) {
    this.consumer = settings.kafka.consumer({
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      maxWaitTimeInMs: settings.maxWaitMs,
      maxBytesPerPartition: settings.maxBytesPerPartition,
      maxBytes: Math.max(10 * 1024 * 1024, settings.maxBytesPerPartition),
      allowAutoTopicCreation: false,
    })
  }

  async open(): Promise<void> {
    const { consumer, settings } = this
    // Batches made only of records compaction removed still move the position forward.
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      if (event.payload.topic === settings.topic) this.advance(event.payload.partition, Number(event.payload.lastOffset) + 1)
    })
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: [settings.topic], fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const key = message.key?.toString('utf8') ?? ''
          const value = message.value
          if (value === null) {
            const had = this.entries.delete(key)
            if (had) this.notify({ key, value: undefined })
          } else {
            const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
            this.entries.set(key, bytes)
            this.notify({ key, value: bytes })
          }
          this.advance(partition, Number(message.offset) + 1)
        },
      })
      await this.sync()
    } catch (error) {
      await consumer.disconnect().catch(() => undefined)
      throw error
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    await this.sync()
    return this.entries.get(key)
  }

  async keys(): Promise<string[]> {
    await this.sync()
    return [...this.entries.keys()]
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    if (value.length > this.settings.maxMessageBytes) {
      throw new TransportMessageTooLarge(`${this.settings.topic} key ${key}`, value.length, this.settings.maxMessageBytes)
    }
    await this.write(key, asBuffer(value))
  }

  async delete(key: string): Promise<void> {
    await this.write(key, null)
  }

  async watch(handler: (entry: KvEntry) => void): Promise<Closeable> {
    await this.sync()
    // Snapshot and registration happen in one synchronous step: no change falls in between.
    for (const [key, value] of this.entries) this.call(handler, { key, value })
    this.watchers.add(handler)
    return {
      close: async () => {
        this.watchers.delete(handler)
      },
    }
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.watchers.clear()
      for (const waiter of this.waiters.splice(0)) waiter.resolve()
      await this.consumer.disconnect()
      const admin = await this.settings.admin().catch(() => undefined)
      await admin?.deleteGroups([this.settings.groupId]).catch(() => undefined)
    })()
    return this.closed
  }

  private async write(key: string, value: Buffer | null): Promise<void> {
    if (this.closed) throw new Error(`key/value store on ${this.settings.topic} is closed`)
    const offset = await this.settings.sender.send({
      topic: this.settings.topic,
      partition: WRITE_PARTITION,
      key: Buffer.from(key, 'utf8'),
      value,
    })
    if (offset >= 0) await this.waitFor(new Map([[WRITE_PARTITION, offset + 1]]))
    else await this.sync()
  }

  /** Waits until this store has read everything the topic held when sync was called. */
  private async sync(): Promise<void> {
    const admin = await this.settings.admin()
    await this.waitFor(await topicEndOffsets(admin, this.settings.topic))
  }

  private waitFor(targets: ReadonlyMap<number, number>): Promise<void> {
    if (this.reached(targets) || this.closed) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        // Kafka's end offset can sit past the last record left after compaction; remember it
        // so later reads do not wait for a record that will never come.
        for (const [partition, target] of targets) {
          if ((this.positions.get(partition) ?? 0) < target) this.unreachable.set(partition, target)
        }
        this.waiters = this.waiters.filter((w) => w !== waiter)
        resolve()
      }, this.settings.syncTimeoutMs)
      const waiter: Waiter = {
        targets,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
      this.waiters.push(waiter)
    })
  }

  private reached(targets: ReadonlyMap<number, number>): boolean {
    for (const [partition, target] of targets) {
      if ((this.positions.get(partition) ?? 0) >= target) continue
      if (this.unreachable.get(partition) === target) continue
      return false
    }
    return true
  }

  private advance(partition: number, next: number): void {
    if (next <= (this.positions.get(partition) ?? 0)) return
    this.positions.set(partition, next)
    if (this.waiters.length === 0) return
    const still: Waiter[] = []
    for (const waiter of this.waiters) {
      if (this.reached(waiter.targets)) waiter.resolve()
      else still.push(waiter)
    }
    this.waiters = still
  }

  private notify(entry: KvEntry): void {
    for (const watcher of this.watchers) this.call(watcher, entry)
  }

  private call(handler: (entry: KvEntry) => void, entry: KvEntry): void {
    try {
      handler(entry)
    } catch (error) {
      this.settings.onError(error, `watcher of ${this.settings.topic}`)
    }
  }
}
