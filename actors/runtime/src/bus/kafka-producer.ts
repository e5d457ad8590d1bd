// The Kafka transport's write path: one idempotent producer, fed by a queue that sends one
// produce request at a time and puts every record that arrived meanwhile into the next one.
//
// Why one request at a time: kafkajs numbers idempotent batches when it sends them and rolls the
// numbers back on failure, so concurrent requests to one partition can trip the broker's
// sequence checks; a single request in flight keeps sequences, and thus per-partition order,
// exact. Coalescing what queued up meanwhile keeps throughput (Kafka's own "linger").

import type { Producer, RecordMetadata, TopicMessages } from 'kafkajs'

export interface OutgoingRecord {
  readonly topic: string
  readonly partition: number
  readonly key: Buffer | null
  /** null is a tombstone (a deleted key on a compacted topic). */
  readonly value: Buffer | null
  readonly headers?: Readonly<Record<string, string>>
}

interface Queued {
  readonly record: OutgoingRecord
  readonly size: number
  resolve(offset: number): void
  reject(error: unknown): void
}

/** A Buffer view of bytes, without copying when they already sit in an ArrayBuffer. */
export const asBuffer = (data: Uint8Array): Buffer =>
  Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)

export class RecordSender {
  private queue: Queued[] = []
  private sending = false
  private idle: Array<() => void> = []

  /**
   * @param maxRequestBytes records per request stop at this many payload bytes, so that no
   *   partition's record batch in one request can exceed the topic's max.message.bytes.
   */
  constructor(
    private readonly producer: Producer,
    private readonly maxRequestBytes: number,
  ) {}

  /** Resolves with the record's offset once every in-sync replica has it (acks=all). */
  send(record: OutgoingRecord): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const size = (record.value?.length ?? 0) + (record.key?.length ?? 0)
      this.queue.push({ record, size, resolve, reject })
      if (!this.sending) void this.pump()
    })
  }

  /** Resolves once everything queued so far has been answered. */
  drained(): Promise<void> {
    if (!this.sending && this.queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idle.push(resolve))
  }

  private async pump(): Promise<void> {
    this.sending = true
    try {
      while (this.queue.length > 0) {
        let bytes = 0
        let count = 0
        while (count < this.queue.length) {
          const next = this.queue[count]!
          if (count > 0 && bytes + next.size > this.maxRequestBytes) break
          bytes += next.size
          count++
        }
        const batch = this.queue.splice(0, count)
        try {
          const answers = await this.producer.sendBatch({ acks: -1, topicMessages: group(batch) })
          settle(batch, answers)
        } catch (error) {
          for (const item of batch) item.reject(error)
        }
      }
    } finally {
      this.sending = false
      for (const resolve of this.idle.splice(0)) resolve()
    }
  }
}

function group(batch: readonly Queued[]): TopicMessages[] {
  const byTopic = new Map<string, TopicMessages>()
  for (const { record } of batch) {
    let entry = byTopic.get(record.topic)
    if (!entry) {
      entry = { topic: record.topic, messages: [] }
      byTopic.set(record.topic, entry)
    }
    entry.messages.push({
      partition: record.partition,
      key: record.key,
      value: record.value,
      ...(record.headers ? { headers: { ...record.headers } } : {}),
    })
  }
  return [...byTopic.values()]
}

/** Records of one topic-partition are appended in queue order from the batch's base offset. */
function settle(batch: readonly Queued[], answers: readonly RecordMetadata[]): void {
  const next = new Map<string, number>()
  for (const answer of answers) {
    const base = answer.baseOffset ?? answer.offset
    if (base !== undefined) next.set(`${answer.topicName}\u0000${answer.partition}`, Number(base))
  }
  for (const item of batch) {
    const key = `${item.record.topic}\u0000${item.record.partition}`
    const offset = next.get(key)
    if (offset === undefined) {
      item.resolve(-1)
      continue
    }
    next.set(key, offset + 1)
    item.resolve(offset)
  }
}
