// The Kafka transport's write path: idempotent producers ("lanes"), each owning a fixed subset
// of the partitions and sending one produce request at a time with every record queued for it.
//
// Why one request at a time per lane: an idempotent producer numbers each partition's records,
// and with several requests to one partition in flight a failed one leaves later ones out of
// sequence (the broker refuses them, and resending reorders). With one in flight, a retry is
// always the very batch the broker saw last (kafka-wire-producer.ts), so sequences, and thus
// per-partition order, stay exact. Throughput comes from elsewhere:
// - coalescing: everything that queued during a request goes into the next one (Kafka's own
//   "linger"), and a lane that was idle waits one event-loop turn before sending, so records
//   published together leave together instead of as a lone record followed by the rest;
// - request size: Kafka limits each partition's record batch (max.message.bytes), not the
//   request, so a request carries up to that much per partition, across many partitions;
// - lanes: several producers, each with its own connection, producer id and sequences, so
//   requests for different partitions overlap on the wire and in the broker. A partition
//   always maps to the same lane, so its records still go out one request at a time, in order.

import type { BatchWriter, OutgoingRecord, PartitionOutcome } from './kafka-wire-producer.js'

export type { OutgoingRecord } from './kafka-wire-producer.js'

interface Queued {
  readonly record: OutgoingRecord
  readonly size: number
  resolve(offset: number): void
  reject(error: unknown): void
}

/** A Buffer view of bytes, without copying when they already sit in an ArrayBuffer. */
export const asBuffer = (data: Uint8Array): Buffer =>
  Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)

/** One request's worth of payload bytes across all partitions: bounds memory and latency per round trip. */
const DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024

export interface RecordSenderLimits {
  /**
   * Payload bytes per partition in one request, so that no partition's record batch can
   * exceed the topic's max.message.bytes (a single larger record still goes alone).
   */
  readonly maxPartitionBytes: number
  /** Payload bytes per request over all partitions (default 16 MiB). */
  readonly maxRequestBytes?: number
}

export class RecordSender {
  private readonly lanes: Lane[]

  /** @param producers connected producers; each becomes a lane owning part of the partitions. */
  constructor(producers: BatchWriter | readonly BatchWriter[], limits: RecordSenderLimits) {
    const list: readonly BatchWriter[] = Array.isArray(producers) ? producers : [producers as BatchWriter]
    if (list.length === 0) throw new Error('RecordSender needs at least one producer')
    this.lanes = list.map((producer) => new Lane(producer, limits.maxPartitionBytes, limits.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES))
  }

  /** Resolves with the record's offset once every in-sync replica has it (acks=all). */
  send(record: OutgoingRecord): Promise<number> {
    return this.laneOf(record).send(record)
  }

  /** Resolves once everything queued so far has been answered. */
  async drained(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.drained()))
  }

  private laneOf(record: OutgoingRecord): Lane {
    if (this.lanes.length === 1) return this.lanes[0]!
    // Spread the partitions of one topic over the lanes in turn; the topic's hash only
    // staggers where different topics start.
    return this.lanes[(topicHash(record.topic) + record.partition) % this.lanes.length]!
  }
}

class Lane {
  private queue: Queued[] = []
  private sending = false
  private idle: Array<() => void> = []

  constructor(
    private readonly producer: BatchWriter,
    private readonly maxPartitionBytes: number,
    private readonly maxRequestBytes: number,
  ) {}

  send(record: OutgoingRecord): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ record, size: recordSize(record), resolve, reject })
      if (!this.sending) void this.pump()
    })
  }

  drained(): Promise<void> {
    if (!this.sending && this.queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idle.push(resolve))
  }

  private async pump(): Promise<void> {
    this.sending = true
    try {
      // Linger one turn of the event loop: sends issued in the same burst join this request.
      await new Promise((resolve) => setImmediate(resolve))
      while (this.queue.length > 0) {
        const batch = this.take()
        try {
          settle(batch, await this.producer.write(batch.map((item) => item.record)))
        } catch (error) {
          for (const item of batch) item.reject(error)
        }
      }
    } finally {
      this.sending = false
      for (const resolve of this.idle.splice(0)) resolve()
    }
  }

  /**
   * The next request: queued records in order, until one would overflow its partition's
   * batch or the request. Stopping at the first misfit (rather than skipping it) keeps the
   * records of every partition in queue order.
   */
  private take(): Queued[] {
    const perPartition = new Map<string, number>()
    let total = 0
    let count = 0
    for (const next of this.queue) {
      const key = partitionKey(next.record)
      const bytes = perPartition.get(key) ?? 0
      if (count > 0 && (bytes + next.size > this.maxPartitionBytes || total + next.size > this.maxRequestBytes)) break
      perPartition.set(key, bytes + next.size)
      total += next.size
      count++
    }
    return this.queue.splice(0, count)
  }
}

/** Bytes a record takes in a batch, framing included, so many small records respect the limit too. */
const recordSize = (record: OutgoingRecord): number => {
  let size = RECORD_FRAMING_BYTES + (record.value?.length ?? 0) + (record.key?.length ?? 0)
  if (record.headers) for (const [name, value] of Object.entries(record.headers)) size += 10 + name.length + Buffer.byteLength(value)
  return size
}

/** Upper bound of a record's framing in a v2 batch: length, attributes, deltas, varint lengths. */
const RECORD_FRAMING_BYTES = 32

const partitionKey = (record: OutgoingRecord): string => `${record.topic}\u0000${record.partition}`

const topicHash = (topic: string): number => {
  let hash = 0
  for (let i = 0; i < topic.length; i++) hash = (Math.imul(hash, 31) + topic.charCodeAt(i)) >>> 0
  return hash
}

/** Records of one topic-partition are appended in queue order from the batch's base offset. */
function settle(batch: readonly Queued[], outcomes: readonly PartitionOutcome[]): void {
  const next = new Map<string, { offset: number; error?: Error }>()
  for (const outcome of outcomes) {
    next.set(`${outcome.topic}\u0000${outcome.partition}`, { offset: outcome.baseOffset, ...(outcome.error ? { error: outcome.error } : {}) })
  }
  for (const item of batch) {
    const key = partitionKey(item.record)
    const state = next.get(key)
    if (state?.error) {
      item.reject(state.error)
      continue
    }
    if (state === undefined || state.offset < 0) {
      item.resolve(-1)
      continue
    }
    item.resolve(state.offset)
    state.offset++
  }
}
