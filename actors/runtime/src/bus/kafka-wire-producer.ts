// An idempotent Kafka producer speaking the wire protocol itself (Produce v3, record batch v2,
// acks=all): encodes record batches around the payloads without copying them, and retries.
//
// Idempotence, as Kafka defines it: the producer gets an id from the broker (InitProducerId)
// and numbers the records of each partition; the broker drops a batch whose numbers it already
// has. The caller (a lane of kafka-producer.ts) sends one request at a time, so a retry always
// resends the very batch the broker saw last, with the same numbers: a retry after a lost
// answer cannot duplicate or reorder. When the numbering is lost (the broker forgot the id, or
// a batch failed for good and may or may not have been written) the producer takes a new id
// and starts again from 0, which is what the broker expects of a new producer; at worst the
// batch of unknown fate is written twice (at-least-once).

import { crc32cFinish, crc32cUpdate, CRC32C_START } from './kafka-crc32c.js'
import { WireConnection, WireReader } from './kafka-wire.js'

export interface OutgoingRecord {
  readonly topic: string
  readonly partition: number
  readonly key: Buffer | null
  /** null is a tombstone (a deleted key on a compacted topic). */
  readonly value: Buffer | null
  readonly headers?: Readonly<Record<string, string>>
}

/** Where one topic-partition's records of a write ended up. */
export interface PartitionOutcome {
  readonly topic: string
  readonly partition: number
  /** Offset of the first record; -1 when the broker did not say (a retried batch it already had). */
  readonly baseOffset: number
  /** Set when this partition's records could not be written. */
  readonly error?: Error
}

/** Appends records, in order per partition, and reports per partition. */
export interface BatchWriter {
  write(records: readonly OutgoingRecord[]): Promise<PartitionOutcome[]>
}

export interface BrokerAddress {
  readonly nodeId: number
  readonly host: string
  readonly port: number
}

export interface WireProducerSettings {
  readonly clientId: string
  /** Leader of every partition of a topic; called again (fresh) after a leadership error. */
  readonly leaders: (topic: string, refresh: boolean) => Promise<ReadonlyMap<number, BrokerAddress>>
  /** Any broker, to ask for a producer id. */
  readonly anyBroker: () => Promise<BrokerAddress>
  readonly connectTimeoutMs: number
  /** How long the broker may wait for the in-sync replicas (Produce timeout). */
  readonly ackTimeoutMs: number
  readonly retries: number
  readonly initialRetryMs: number
  readonly maxRetryMs: number
}

/** Kafka error codes the producer acts on; others fail the partition's records. */
const ERRORS: Readonly<Record<number, string>> = {
  2: 'CORRUPT_MESSAGE',
  3: 'UNKNOWN_TOPIC_OR_PARTITION',
  5: 'LEADER_NOT_AVAILABLE',
  6: 'NOT_LEADER_OR_FOLLOWER',
  7: 'REQUEST_TIMED_OUT',
  10: 'MESSAGE_TOO_LARGE',
  13: 'NETWORK_EXCEPTION',
  14: 'COORDINATOR_LOAD_IN_PROGRESS',
  15: 'COORDINATOR_NOT_AVAILABLE',
  16: 'NOT_COORDINATOR',
  19: 'NOT_ENOUGH_REPLICAS',
  20: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  29: 'TOPIC_AUTHORIZATION_FAILED',
  45: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
  46: 'DUPLICATE_SEQUENCE_NUMBER',
  47: 'INVALID_PRODUCER_EPOCH',
  56: 'KAFKA_STORAGE_ERROR',
  59: 'UNKNOWN_PRODUCER_ID',
  74: 'FENCED_LEADER_EPOCH',
  75: 'UNKNOWN_LEADER_EPOCH',
  87: 'INVALID_RECORD',
}
const RETRIABLE = new Set([3, 5, 6, 7, 13, 14, 15, 16, 19, 20, 56, 74, 75])
const LEADERSHIP = new Set([3, 5, 6, 74, 75])
/** The broker lost track of this producer's numbering: start over with a new id. */
const RENUMBER = new Set([45, 47, 59])
const DUPLICATE_SEQUENCE = 46

export class KafkaProduceError extends Error {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly code: number,
  ) {
    super(`kafka refused records for ${topic} partition ${partition}: ${ERRORS[code] ?? 'error'} (code ${code})`)
    this.name = 'KafkaProduceError'
  }
}

const API_PRODUCE = 0
const API_INIT_PRODUCER_ID = 22
const SEQUENCE_WRAP = 2 ** 31

interface Identity {
  readonly id: bigint
  readonly epoch: number
}

/** One partition's share of a write, with the numbering it was (or will be) sent with. */
interface PartitionWork {
  readonly topic: string
  readonly partition: number
  readonly records: OutgoingRecord[]
  outcome?: PartitionOutcome
}

export class WireProducer implements BatchWriter {
  private identity: Promise<Identity> | undefined
  /** The identity the sequences below belong to. */
  private current: Identity | undefined
  /** Next sequence number per topic-partition, for the current identity. */
  private sequences = new Map<string, number>()
  private readonly connections = new Map<string, WireConnection>()
  private closed = false

  constructor(private readonly settings: WireProducerSettings) {}

  /** Gets a producer id now, so a broker that cannot be reached shows at start-up. */
  async connect(): Promise<void> {
    await this.currentIdentity()
  }

  close(): void {
    this.closed = true
    for (const connection of this.connections.values()) connection.close()
    this.connections.clear()
  }

  async write(records: readonly OutgoingRecord[]): Promise<PartitionOutcome[]> {
    const work = new Map<string, PartitionWork>()
    for (const record of records) {
      const key = `${record.topic}\u0000${record.partition}`
      let entry = work.get(key)
      if (!entry) {
        entry = { topic: record.topic, partition: record.partition, records: [] }
        work.set(key, entry)
      }
      entry.records.push(record)
    }
    let open = [...work.values()]
    let refresh = false
    let delay = this.settings.initialRetryMs
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error('kafka producer is closed')
      const identity = await this.currentIdentity()
      const failures = await this.attempt(open, identity, refresh)
      open = failures.filter((f) => f.retry).map((f) => f.work)
      if (failures.some((f) => f.renumber)) this.renumber(identity)
      if (open.length === 0) break
      if (attempt >= this.settings.retries) {
        for (const entry of open) {
          const last = failures.find((f) => f.work === entry)?.error
          const error = new Error(
            `kafka: could not write to ${entry.topic} partition ${entry.partition} in ${attempt + 1} attempts: ${last?.message ?? 'unknown error'}`,
            { cause: last },
          )
          entry.outcome = { topic: entry.topic, partition: entry.partition, baseOffset: -1, error }
        }
        // These records may or may not be stored: their numbering is no longer known.
        this.renumber(identity)
        break
      }
      refresh = failures.some((f) => f.leadership)
      await new Promise((resolve) => setTimeout(resolve, delay))
      delay = Math.min(this.settings.maxRetryMs, delay * 2)
    }
    return [...work.values()].map((entry) => entry.outcome!)
  }

  /** One round: a request per leader, all at once. Returns what did not succeed. */
  private async attempt(
    open: PartitionWork[],
    identity: Identity,
    refresh: boolean,
  ): Promise<Array<{ work: PartitionWork; retry: boolean; renumber: boolean; leadership: boolean; error: Error }>> {
    const failures: Array<{ work: PartitionWork; retry: boolean; renumber: boolean; leadership: boolean; error: Error }> = []
    const byLeader = new Map<string, { broker: BrokerAddress; work: PartitionWork[] }>()
    // One metadata look-up per topic and round, however many of its partitions are open.
    const lookups = new Map<string, Promise<ReadonlyMap<number, BrokerAddress>>>()
    for (const entry of open) {
      let broker: BrokerAddress | undefined
      try {
        let lookup = lookups.get(entry.topic)
        if (!lookup) lookups.set(entry.topic, (lookup = this.settings.leaders(entry.topic, refresh)))
        broker = (await lookup).get(entry.partition)
      } catch (error) {
        failures.push({ work: entry, retry: true, renumber: false, leadership: true, error: asError(error) })
        continue
      }
      if (!broker) {
        const error = new KafkaProduceError(entry.topic, entry.partition, 3)
        failures.push({ work: entry, retry: true, renumber: false, leadership: true, error })
        continue
      }
      const key = `${broker.host}:${broker.port}`
      let group = byLeader.get(key)
      if (!group) byLeader.set(key, (group = { broker, work: [] }))
      group.work.push(entry)
    }
    await Promise.all(
      [...byLeader.values()].map(async ({ broker, work }) => {
        let answers: Map<string, { code: number; baseOffset: number }>
        try {
          answers = await this.produce(broker, work, identity)
        } catch (error) {
          // The request's fate is unknown: resend it as it was; the broker drops what it has.
          for (const entry of work) failures.push({ work: entry, retry: true, renumber: false, leadership: true, error: asError(error) })
          return
        }
        for (const entry of work) {
          const key = `${entry.topic}\u0000${entry.partition}`
          const answer = answers.get(key)
          const code = answer?.code ?? 13
          if (code === 0 || code === DUPLICATE_SEQUENCE) {
            const sent = this.sequences.get(key) ?? 0
            this.sequences.set(key, (sent + entry.records.length) % SEQUENCE_WRAP)
            entry.outcome = { topic: entry.topic, partition: entry.partition, baseOffset: code === 0 ? answer!.baseOffset : -1 }
            continue
          }
          const error = new KafkaProduceError(entry.topic, entry.partition, code)
          const renumber = RENUMBER.has(code)
          const retry = renumber || RETRIABLE.has(code)
          if (!retry) entry.outcome = { topic: entry.topic, partition: entry.partition, baseOffset: -1, error }
          failures.push({ work: entry, retry, renumber, leadership: LEADERSHIP.has(code), error })
        }
      }),
    )
    return failures
  }

  private async produce(broker: BrokerAddress, work: PartitionWork[], identity: Identity): Promise<Map<string, { code: number; baseOffset: number }>> {
    const chunks: Buffer[] = []
    const head = Buffer.allocUnsafe(12)
    head.writeInt16BE(-1, 0) // transactional id: none
    head.writeInt16BE(-1, 2) // acks=all
    head.writeInt32BE(this.settings.ackTimeoutMs, 4)
    const byTopic = new Map<string, PartitionWork[]>()
    for (const entry of work) {
      const list = byTopic.get(entry.topic)
      if (list) list.push(entry)
      else byTopic.set(entry.topic, [entry])
    }
    head.writeInt32BE(byTopic.size, 8)
    chunks.push(head)
    for (const [topic, entries] of byTopic) {
      const name = Buffer.from(topic, 'utf8')
      const topicHead = Buffer.allocUnsafe(2 + name.length + 4)
      topicHead.writeInt16BE(name.length, 0)
      name.copy(topicHead, 2)
      topicHead.writeInt32BE(entries.length, 2 + name.length)
      chunks.push(topicHead)
      for (const entry of entries) {
        const sequence = this.sequences.get(`${topic}\u0000${entry.partition}`) ?? 0
        const batch = encodeRecordBatch(entry.records, identity, sequence)
        const partitionHead = Buffer.allocUnsafe(8)
        partitionHead.writeInt32BE(entry.partition, 0)
        partitionHead.writeInt32BE(batch.size, 4)
        chunks.push(partitionHead, ...batch.chunks)
      }
    }
    const body = await this.connection(broker).request(API_PRODUCE, 3, chunks)
    const reader = new WireReader(body)
    const answers = new Map<string, { code: number; baseOffset: number }>()
    for (let topics = reader.int32(); topics > 0; topics--) {
      const topic = reader.string()
      for (let partitions = reader.int32(); partitions > 0; partitions--) {
        const partition = reader.int32()
        const code = reader.int16()
        const baseOffset = reader.int64()
        reader.int64() // log append time
        answers.set(`${topic}\u0000${partition}`, { code, baseOffset })
      }
    }
    return answers
  }

  private currentIdentity(): Promise<Identity> {
    if (!this.identity) {
      const identity = this.initProducerId().then((fresh) => {
        this.current = fresh
        this.sequences = new Map()
        return fresh
      })
      this.identity = identity
      identity.catch(() => {
        if (this.identity === identity) this.identity = undefined
      })
    }
    return this.identity
  }

  /** Forget the numbering of this identity: the next write asks for a new producer id. */
  private renumber(identity: Identity): void {
    if (this.current !== identity) return
    this.current = undefined
    this.identity = undefined
    this.sequences = new Map()
  }

  private async initProducerId(): Promise<Identity> {
    let delay = this.settings.initialRetryMs
    for (let attempt = 0; ; attempt++) {
      let code: number
      let error: Error
      try {
        const broker = await this.settings.anyBroker()
        const request = Buffer.allocUnsafe(6)
        request.writeInt16BE(-1, 0) // no transactional id: an idempotent producer
        request.writeInt32BE(60_000, 2)
        const reader = new WireReader(await this.connection(broker).request(API_INIT_PRODUCER_ID, 0, [request]))
        reader.int32() // throttle time
        code = reader.int16()
        const id = BigInt(reader.int64())
        const epoch = reader.int16()
        if (code === 0) return { id, epoch }
        error = new Error(`kafka refused a producer id: ${ERRORS[code] ?? 'error'} (code ${code})`)
      } catch (caught) {
        code = 13
        error = asError(caught)
      }
      if (!RETRIABLE.has(code) || attempt >= this.settings.retries || this.closed) throw error
      await new Promise((resolve) => setTimeout(resolve, delay))
      delay = Math.min(this.settings.maxRetryMs, delay * 2)
    }
  }

  private connection(broker: BrokerAddress): WireConnection {
    const key = `${broker.host}:${broker.port}`
    let connection = this.connections.get(key)
    if (!connection || connection.closed) {
      if (this.closed) throw new Error('kafka producer is closed')
      connection = new WireConnection({
        host: broker.host,
        port: broker.port,
        clientId: this.settings.clientId,
        connectTimeoutMs: this.settings.connectTimeoutMs,
        requestTimeoutMs: this.settings.ackTimeoutMs + 5_000,
      })
      this.connections.set(key, connection)
    }
    return connection
  }
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)))

// --- record batch v2 ------------------------------------------------------------------------

/** Bytes of the batch header before the records: baseOffset .. recordCount. */
const BATCH_HEADER_BYTES = 61
/** Offset of the attributes field, where the checksum starts. */
const CRC_START = 21
/** Payloads at least this big go to the socket as they are; smaller ones are copied into the framing. */
const ZERO_COPY_BYTES = 4096

/**
 * A record batch as chunks to write in order: framing in a few small buffers, large values as
 * the caller's own buffers (checksummed, never copied).
 */
export function encodeRecordBatch(
  records: readonly OutgoingRecord[],
  identity: { readonly id: bigint; readonly epoch: number },
  baseSequence: number,
  now = Date.now(),
): { chunks: Buffer[]; size: number } {
  const chunks: Buffer[] = []
  const frame = new FrameWriter(chunks)
  const header = Buffer.alloc(BATCH_HEADER_BYTES)
  chunks.push(header)
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const headers = record.headers ? Object.entries(record.headers).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const) : []
    let headerBytes = varintSize(headers.length)
    for (const [k, v] of headers) headerBytes += varintSize(k.length) + k.length + varintSize(v.length) + v.length
    const keyLength = record.key ? record.key.length : -1
    const valueLength = record.value ? record.value.length : -1
    const bodyBytes =
      1 + // attributes
      1 + // timestamp delta: 0
      varintSize(i) +
      varintSize(keyLength) +
      Math.max(0, keyLength) +
      varintSize(valueLength) +
      Math.max(0, valueLength) +
      headerBytes
    frame.varint(bodyBytes)
    frame.byte(0)
    frame.varint(0)
    frame.varint(i)
    frame.varint(keyLength)
    if (record.key) frame.bytes(record.key)
    frame.varint(valueLength)
    if (record.value) frame.bytes(record.value)
    frame.varint(headers.length)
    for (const [k, v] of headers) {
      frame.varint(k.length)
      frame.bytes(k)
      frame.varint(v.length)
      frame.bytes(v)
    }
  }
  frame.flush()
  let size = 0
  for (const chunk of chunks) size += chunk.length
  header.writeBigInt64BE(0n, 0) // base offset: the broker assigns it
  header.writeInt32BE(size - 12, 8) // length of what follows this field
  header.writeInt32BE(-1, 12) // partition leader epoch: the broker's business
  header.writeInt8(2, 16) // magic
  header.writeInt16BE(0, 21) // attributes: no compression, create time, not transactional
  header.writeInt32BE(records.length - 1, 23) // last offset delta
  header.writeBigInt64BE(BigInt(now), 27)
  header.writeBigInt64BE(BigInt(now), 35)
  header.writeBigInt64BE(identity.id, 43)
  header.writeInt16BE(identity.epoch, 51)
  header.writeInt32BE(baseSequence, 53)
  header.writeInt32BE(records.length, 57)
  let crc = crc32cUpdate(CRC32C_START, header.subarray(CRC_START))
  for (let i = 1; i < chunks.length; i++) crc = crc32cUpdate(crc, chunks[i]!)
  header.writeUInt32BE(crc32cFinish(crc), 17)
  return { chunks, size }
}

/** Zig-zag varint length, as record fields use. */
const varintSize = (value: number): number => {
  let v = ((value << 1) ^ (value >> 31)) >>> 0
  let size = 1
  while (v >= 0x80) {
    v >>>= 7
    size++
  }
  return size
}

/** Collects small fields into shared buffers and passes large payloads through as chunks. */
class FrameWriter {
  private buffer = Buffer.allocUnsafe(1024)
  private offset = 0
  private start = 0

  constructor(private readonly chunks: Buffer[]) {}

  byte(value: number): void {
    this.ensure(1)
    this.buffer[this.offset++] = value
  }

  varint(value: number): void {
    this.ensure(5)
    let v = ((value << 1) ^ (value >> 31)) >>> 0
    while (v >= 0x80) {
      this.buffer[this.offset++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    this.buffer[this.offset++] = v
  }

  bytes(value: Buffer): void {
    if (value.length >= ZERO_COPY_BYTES) {
      this.flush()
      this.chunks.push(value)
      return
    }
    this.ensure(value.length)
    value.copy(this.buffer, this.offset)
    this.offset += value.length
  }

  flush(): void {
    if (this.offset > this.start) this.chunks.push(this.buffer.subarray(this.start, this.offset))
    this.start = this.offset
  }

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return
    this.flush()
    this.buffer = Buffer.allocUnsafe(Math.max(1024, bytes))
    this.offset = 0
    this.start = 0
  }
}
