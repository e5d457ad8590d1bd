// The Kafka bus transport (kafkajs): streams are topics whose partitions are the shards,
// consumer groups share them, and offsets are committed only after the work was acked.
//
// How each part of the transport contract maps onto Kafka:
// - Streams: one topic per stream (`StreamSpec.kafkaTopic`), partitions = shards, retention.ms
//   and retention.bytes (Kafka counts bytes per partition) from the spec. Provisioning only
//   ever adds partitions and rewrites the configs it owns, keeping any an operator set.
// - Publish: idempotent producers ("lanes", default 2, each owning a share of the partitions),
//   acks=all, to the partition the typed layer chose. Each lane sends one request at a time,
//   batching whatever queued up meanwhile, which keeps order per partition exact (see
//   kafka-producer.ts). The write path speaks the Kafka protocol itself (kafka-wire-producer.ts):
//   kafkajs copied every payload byte several times and checksummed it byte by byte, which
//   capped publishing near 50 MB/s of CPU; now payloads go to the socket uncopied and the
//   CRC-32C runs in WebAssembly (kafka-crc32c.ts). Consumers, groups and admin stay on kafkajs.
// - Consume: a consumer group per (group, topic) — `<group>--<topic>` — because kafkajs's
//   assignors hand out the leader's topics to every member, so a group shared by consumers of
//   different topics would silently starve some. See kafka-consumer.ts for acks, naks and
//   backpressure.
// - Request/reply: Kafka is a log, not an RPC system, so this is the classic pattern built on
//   it. Requests go to the topic `<topic of subject>-requests`, read by the consumer group
//   `flowbus-serve-<that topic>` so responders share the load (the topic has
//   `requestPartitions` partitions, default 4: that many responders can be busy at once).
//   Each transport instance that sends requests owns a reply topic
//   `flowbus-replies-<instance id>` (created on first request, deleted on close; a crashed
//   process leaves it behind, small and expiring) and matches replies by a correlation id
//   header. Requests carry their deadline (wall clock: keep hosts in NTP sync); responders
//   skip the ones already expired, e.g. queued while no responder ran.
//   No responders: Kafka cannot tell whether anybody will read a message, but the responder
//   group can be asked for its members. A request to a group without members fails with
//   TransportNoResponders; a responder that crashed stays a member until its session times
//   out, and requests meanwhile end in TransportTimeout. Responders commit as they read, so
//   a responder crash loses the requests it held (their callers time out and may retry).
// - Broadcast: one topic per subject, one partition, short retention. Each listener is a
//   consumer in its own throwaway group that starts at the end offset as of listen() and is
//   deleted on close, so listeners get what is published while they listen, nothing older.
// - Key/value: a compacted topic per bucket, replayed into memory (see kafka-kv.ts).

import { randomBytes, randomUUID } from 'node:crypto'
import kafkajs, { type Admin, type Consumer, type Kafka, type LogEntry } from 'kafkajs'
import { decodeHeaders, startGroupConsumer } from './kafka-consumer.js'
import { openKvStore } from './kafka-kv.js'
import { asBuffer, RecordSender } from './kafka-producer.js'
import { WireProducer, type BrokerAddress } from './kafka-wire-producer.js'
import {
  describeError,
  kafkaTopicForSubject,
  RECORD_OVERHEAD_BYTES,
  reconcileTopics,
  retentionConfigs,
  topicEndOffsets,
  type TopicSettings,
} from './kafka-topics.js'
import {
  TransportMessageTooLarge,
  TransportNoResponders,
  TransportTimeout,
  type BucketSpec,
  type Closeable,
  type ConsumeOptions,
  type DeliveryHandler,
  type KvStore,
  type StreamSpec,
  type Subscription,
  type Transport,
} from './transport.js'

export { kafkaTopicForSubject } from './kafka-topics.js'

export interface KafkaTransportOptions {
  /** Bootstrap brokers as host:port. */
  readonly brokers: readonly string[]
  readonly clientId?: string
  /** Largest payload accepted (default 1 MiB); topics are created to hold it with key and headers. */
  readonly maxMessageBytes?: number
  /** A consumer that stops heartbeating loses its partitions after this long (default 10 s). */
  readonly sessionTimeoutMs?: number
  readonly heartbeatIntervalMs?: number
  /** How long a rebalance waits for members to rejoin (default 30 s). */
  readonly rebalanceTimeoutMs?: number
  /** Longest a fetch waits for data (default 250 ms); also the resume delay after a pause. */
  readonly maxWaitMs?: number
  /** Longest an ack waits before it is committed with the acks around it (default 100 ms). */
  readonly commitIntervalMs?: number
  /** Partitions of request topics: how many responders of one subject can share the load (default 4). */
  readonly requestPartitions?: number
  /**
   * Producers sending in parallel, each owning a share of the partitions (default 2): more
   * produce requests on the wire at once, while each partition still has one at a time.
   */
  readonly producerLanes?: number
  /** Retention of request, reply and broadcast topics (default 10 minutes). */
  readonly ephemeralRetentionMs?: number
  /** Longest a key/value read waits to catch up with the topic (default 10 s). */
  readonly kvSyncTimeoutMs?: number
  readonly connectionTimeoutMs?: number
  /** kafkajs's own log, written to stderr (default: nothing; the transport reports through onError). */
  readonly logLevel?: 'nothing' | 'error' | 'warn' | 'info' | 'debug'
  /** Errors no caller can receive (a failed commit, a throwing listener); default: one line on stderr. */
  readonly onError?: (error: unknown, context: string) => void
}

// kafkajs is CommonJS and Node's ESM loader sees only some of its named exports.
const { Kafka: KafkaClient, logLevel } = kafkajs

const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
/** Room left in a partition's record batch for the batch header (61 bytes) and more. */
const BATCH_FRAMING_BYTES = 1024
const CORRELATION_HEADER = 'flowbus-correlation-id'
const REPLY_TO_HEADER = 'flowbus-reply-to'
const DEADLINE_HEADER = 'flowbus-deadline'
/** Requests a responder works on at once, beyond which it stops reading. */
const RESPONDER_CONCURRENCY = 64
/** A responder group seen with members is trusted for this long without asking again. */
const RESPONDERS_CACHE_MS = 1_000

const LOG_LEVELS = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
} as const

export async function createKafkaTransport(options: KafkaTransportOptions): Promise<Transport> {
  if (options.brokers.length === 0) throw new Error('kafka transport: brokers is empty; give at least one host:port')
  const transport = new KafkaTransport(options)
  await transport.connect()
  return transport
}

interface ReplyChannel {
  readonly topic: string
  readonly groupId: string
  readonly consumer: Consumer
  readonly pending: Map<string, (reply: Uint8Array) => void>
}

class KafkaTransport implements Transport {
  readonly name = 'kafka' as const
  readonly maxMessageBytes: number
  private readonly kafka: Kafka
  private readonly producers: WireProducer[]
  /** Partition leaders per topic, for the producers; refreshed after a leadership error. */
  private readonly leaderCache = new Map<string, Promise<ReadonlyMap<number, BrokerAddress>>>()
  private readonly sender: RecordSender
  private readonly instanceId = randomBytes(6).toString('hex')
  private adminClient: Promise<Admin> | undefined
  private readonly ensured = new Map<string, Promise<void>>()
  private readonly partitionCounts = new Map<string, Promise<number>>()
  private readonly respondersSeen = new Map<string, number>()
  private readonly stores = new Map<string, Promise<KvStore & Closeable>>()
  private readonly open = new Set<Closeable>()
  private replyChannel: Promise<ReplyChannel> | undefined
  private ephemeralReplicas: Promise<number> | undefined
  private requestCounter = 0
  private listenerCounter = 0
  private closing: Promise<void> | undefined
  private readonly onError: (error: unknown, context: string) => void
  private readonly sessionTimeoutMs: number
  private readonly heartbeatIntervalMs: number
  private readonly rebalanceTimeoutMs: number
  private readonly maxWaitMs: number
  private readonly maxBytesPerPartition: number

  constructor(private readonly options: KafkaTransportOptions) {
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    this.onError = options.onError ?? reportToStderr
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.max(100, Math.min(1_000, Math.floor(this.sessionTimeoutMs / 5)))
    this.rebalanceTimeoutMs = options.rebalanceTimeoutMs ?? 30_000
    this.maxWaitMs = options.maxWaitMs ?? 250
    this.maxBytesPerPartition = Math.max(1024 * 1024, this.maxMessageBytes + RECORD_OVERHEAD_BYTES)
    const level = LOG_LEVELS[options.logLevel ?? 'nothing']
    this.kafka = new KafkaClient({
      clientId: options.clientId ?? 'flowbus',
      brokers: [...options.brokers],
      connectionTimeout: options.connectionTimeoutMs ?? 3_000,
      retry: { initialRetryTime: 100, maxRetryTime: 5_000, retries: 8 },
      logLevel: level,
      logCreator: () => (entry: LogEntry) => {
        if (entry.level > level) return
        const { message, ...extra } = entry.log
        process.stderr.write(`kafkajs ${entry.namespace}: ${message} ${JSON.stringify(extra)}\n`)
      },
    })
    // Retries are bounded (an idempotent producer could retry forever, which would hang a
    // publish while the cluster is down); the broker still drops duplicates of a retried batch.
    const lanes = options.producerLanes ?? 2
    if (!Number.isInteger(lanes) || lanes < 1) throw new RangeError(`kafka transport: producerLanes must be a positive integer, got ${lanes}`)
    this.producers = Array.from(
      { length: lanes },
      () =>
        new WireProducer({
          clientId: options.clientId ?? 'flowbus',
          leaders: (topic, refresh) => this.leaders(topic, refresh),
          anyBroker: () => this.anyBroker(),
          connectTimeoutMs: options.connectionTimeoutMs ?? 3_000,
          ackTimeoutMs: 30_000,
          retries: 10,
          initialRetryMs: 100,
          maxRetryMs: 5_000,
        }),
    )
    this.sender = new RecordSender(this.producers, { maxPartitionBytes: this.maxMessageBytes + RECORD_OVERHEAD_BYTES - BATCH_FRAMING_BYTES })
  }

  async connect(): Promise<void> {
    try {
      await this.admin()
      await Promise.all(this.producers.map((producer) => producer.connect()))
    } catch (error) {
      for (const producer of this.producers) producer.close()
      const admin = await this.adminClient?.catch(() => undefined)
      await admin?.disconnect().catch(() => undefined)
      throw new Error(`kafka transport: cannot connect to ${this.options.brokers.join(',')}: ${describeError(error)}`)
    }
  }

  // --- streams ----------------------------------------------------------------------------

  async provision(streams: readonly StreamSpec[], buckets: readonly BucketSpec[]): Promise<void> {
    const topics: TopicSettings[] = [
      ...streams.map((stream) => ({
        topic: stream.kafkaTopic,
        partitions: stream.partitions,
        replicas: stream.replicas,
        configs: {
          'cleanup.policy': 'delete',
          ...retentionConfigs(stream.maxAgeSeconds, stream.maxBytes, stream.partitions),
          'max.message.bytes': String(this.maxMessageBytes + RECORD_OVERHEAD_BYTES),
        },
      })),
      ...buckets.map((bucket) => this.bucketTopic(bucket)),
    ]
    await reconcileTopics(await this.admin(), topics)
  }

  async publish(
    stream: StreamSpec,
    shard: number,
    key: string,
    data: Uint8Array,
    headers?: Readonly<Record<string, string>>,
  ): Promise<void> {
    this.checkSize(stream.kafkaTopic, data)
    if (!Number.isInteger(shard) || shard < 0 || shard >= stream.partitions) {
      throw new RangeError(`shard ${shard} is out of range for ${stream.kafkaTopic} (0..${stream.partitions - 1})`)
    }
    await this.sender.send({
      topic: stream.kafkaTopic,
      partition: shard,
      key: Buffer.from(key, 'utf8'),
      value: asBuffer(data),
      ...(headers ? { headers } : {}),
    })
  }

  async consume(stream: StreamSpec, options: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription> {
    const subscription = await startGroupConsumer({
      kafka: this.kafka,
      admin: () => this.admin(),
      groupId: `${options.group}--${stream.kafkaTopic}`,
      topic: stream.kafkaTopic,
      partitions: stream.partitions,
      options,
      handler,
      sessionTimeoutMs: this.sessionTimeoutMs,
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      rebalanceTimeoutMs: this.rebalanceTimeoutMs,
      maxWaitMs: this.maxWaitMs,
      maxBytesPerPartition: this.maxBytesPerPartition,
      commitIntervalMs: this.options.commitIntervalMs ?? 100,
      onError: this.onError,
    })
    return this.track(subscription)
  }

  // --- request/reply ----------------------------------------------------------------------

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const topic = `${kafkaTopicForSubject(subject)}-requests`
    this.checkSize(topic, data)
    // Setting up the reply topic is a one-off per transport and not charged to this request.
    const channel = await this.replies()
    const started = Date.now()
    if (!(await this.hasResponders(topic))) throw new TransportNoResponders(subject)
    const partitions = await this.partitionCount(topic)
    const id = randomUUID()
    const remaining = Math.max(0, timeoutMs - (Date.now() - started))
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        channel.pending.delete(id)
        reject(new TransportTimeout(subject, timeoutMs))
      }, remaining)
      channel.pending.set(id, (reply) => {
        clearTimeout(timer)
        channel.pending.delete(id)
        resolve(reply)
      })
      this.sender
        .send({
          topic,
          partition: this.requestCounter++ % partitions,
          key: null,
          value: asBuffer(data),
          headers: {
            [CORRELATION_HEADER]: id,
            [REPLY_TO_HEADER]: channel.topic,
            [DEADLINE_HEADER]: String(started + timeoutMs),
          },
        })
        .catch((error: unknown) => {
          clearTimeout(timer)
          channel.pending.delete(id)
          reject(error)
        })
    })
  }

  async serve(subject: string, handler: (request: Uint8Array) => Promise<Uint8Array>): Promise<Closeable> {
    const topic = `${kafkaTopicForSubject(subject)}-requests`
    await this.ensureTopic(topic, this.options.requestPartitions ?? 4)
    const consumer = this.kafka.consumer({
      groupId: `flowbus-serve-${topic}`,
      sessionTimeout: this.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatIntervalMs,
      rebalanceTimeout: this.rebalanceTimeoutMs,
      maxWaitTimeInMs: this.maxWaitMs,
      maxBytesPerPartition: this.maxBytesPerPartition,
      allowAutoTopicCreation: false,
    })
    const working = new Set<Promise<void>>()
    const answer = async (request: Uint8Array, correlationId: string, replyTo: string): Promise<void> => {
      const reply = await handler(request)
      if (reply.length > this.maxMessageBytes) {
        throw new TransportMessageTooLarge(`${subject} (reply)`, reply.length, this.maxMessageBytes)
      }
      await this.sender.send({
        topic: replyTo,
        partition: 0,
        key: null,
        value: asBuffer(reply),
        headers: { [CORRELATION_HEADER]: correlationId },
      })
    }
    try {
      await consumer.connect()
      // From the beginning for a new group: requests sent just before the first responder
      // started are still answered; expired ones are skipped by their deadline.
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({
        partitionsConsumedConcurrently: this.options.requestPartitions ?? 4,
        eachMessage: async ({ message }) => {
          const headers = decodeHeaders(message.headers)
          const correlationId = headers[CORRELATION_HEADER]
          const replyTo = headers[REPLY_TO_HEADER]
          const deadline = Number(headers[DEADLINE_HEADER] ?? Number.POSITIVE_INFINITY)
          if (!correlationId || !replyTo) {
            this.onError(new Error(`request at offset ${message.offset} has no ${CORRELATION_HEADER}/${REPLY_TO_HEADER} header`), `serving ${subject}`)
            return
          }
          if (deadline < Date.now()) return
          const value = message.value ?? Buffer.alloc(0)
          const request = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
          const work = answer(request, correlationId, replyTo)
            .catch((error: unknown) => this.onError(error, `serving ${subject}`))
            .finally(() => working.delete(work))
          working.add(work)
          // Requests are answered concurrently; past the cap, stop reading until one finishes.
          while (working.size >= RESPONDER_CONCURRENCY) await Promise.race(working)
        },
      })
    } catch (error) {
      await consumer.disconnect().catch(() => undefined)
      throw error
    }
    let closed: Promise<void> | undefined
    const closeable: Closeable = {
      close: () => {
        closed ??= (async () => {
          await consumer.disconnect()
          await Promise.allSettled([...working])
          this.open.delete(closeable)
        })()
        return closed
      },
    }
    return this.track(closeable)
  }

  // --- broadcast --------------------------------------------------------------------------

  async broadcast(subject: string, data: Uint8Array): Promise<void> {
    const topic = kafkaTopicForSubject(subject)
    this.checkSize(topic, data)
    await this.ensureTopic(topic, 1)
    await this.sender.send({ topic, partition: 0, key: null, value: asBuffer(data) })
  }

  async listen(subject: string, handler: (data: Uint8Array) => void): Promise<Closeable> {
    const topic = kafkaTopicForSubject(subject)
    await this.ensureTopic(topic, 1)
    const admin = await this.admin()
    const groupId = `flowbus-listen-${this.instanceId}-${++this.listenerCounter}`
    // Where "now" is: the end of every partition as listen() is called.
    const next = await topicEndOffsets(admin, topic)
    const consumer = this.kafka.consumer({
      groupId,
      sessionTimeout: this.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatIntervalMs,
      maxWaitTimeInMs: this.maxWaitMs,
      maxBytesPerPartition: this.maxBytesPerPartition,
      allowAutoTopicCreation: false,
    })
    // The join event fires before the first fetch: seeking there makes the listener start
    // exactly at "now" (and after a restart, where it had got to).
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      for (const partition of event.payload.memberAssignment[topic] ?? []) {
        consumer.seek({ topic, partition, offset: String(next.get(partition) ?? 0) })
      }
    })
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const offset = Number(message.offset)
          if (offset < (next.get(partition) ?? 0)) return
          next.set(partition, offset + 1)
          const value = message.value ?? Buffer.alloc(0)
          try {
            handler(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
          } catch (error) {
            this.onError(error, `listener of ${subject}`)
          }
        },
      })
    } catch (error) {
      await consumer.disconnect().catch(() => undefined)
      throw error
    }
    let closed: Promise<void> | undefined
    const closeable: Closeable = {
      close: () => {
        closed ??= (async () => {
          await consumer.disconnect()
          await admin.deleteGroups([groupId]).catch(() => undefined)
          this.open.delete(closeable)
        })()
        return closed
      },
    }
    return this.track(closeable)
  }

  // --- key/value --------------------------------------------------------------------------

  kv(bucket: BucketSpec): Promise<KvStore> {
    let store = this.stores.get(bucket.kafkaTopic)
    if (!store) {
      store = (async () => {
        await reconcileTopics(await this.admin(), [this.bucketTopic(bucket)])
        return openKvStore({
          kafka: this.kafka,
          admin: () => this.admin(),
          sender: this.sender,
          topic: bucket.kafkaTopic,
          groupId: `flowbus-kv-${this.instanceId}-${bucket.kafkaTopic}`,
          maxMessageBytes: this.maxMessageBytes,
          sessionTimeoutMs: this.sessionTimeoutMs,
          heartbeatIntervalMs: this.heartbeatIntervalMs,
          maxWaitMs: this.maxWaitMs,
          maxBytesPerPartition: this.maxBytesPerPartition,
          syncTimeoutMs: this.options.kvSyncTimeoutMs ?? 10_000,
          onError: this.onError,
        })
      })()
      store.catch(() => this.stores.delete(bucket.kafkaTopic))
      this.stores.set(bucket.kafkaTopic, store)
    }
    return store
  }

  // --- lifecycle --------------------------------------------------------------------------

  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    const closes: Promise<void>[] = [...this.open].map((c) => c.close())
    for (const store of this.stores.values()) closes.push(store.then((s) => s.close()).catch(() => undefined))
    const settled = await Promise.allSettled(closes)
    for (const result of settled) if (result.status === 'rejected') this.onError(result.reason, 'closing the kafka transport')
    if (this.replyChannel) {
      const channel = await this.replyChannel.catch(() => undefined)
      if (channel) {
        await channel.consumer.disconnect().catch((error: unknown) => this.onError(error, 'closing the reply consumer'))
        const admin = await this.admin().catch(() => undefined)
        await admin?.deleteTopics({ topics: [channel.topic] }).catch((error: unknown) => this.onError(error, `deleting ${channel.topic}`))
        await admin?.deleteGroups([channel.groupId]).catch(() => undefined)
      }
    }
    await this.sender.drained()
    for (const producer of this.producers) producer.close()
    const admin = await this.adminClient?.catch(() => undefined)
    await admin?.disconnect()
  }

  // --- helpers ----------------------------------------------------------------------------

  private admin(): Promise<Admin> {
    if (!this.adminClient) {
      const admin = this.kafka.admin()
      this.adminClient = admin.connect().then(() => admin)
      this.adminClient.catch(() => {
        this.adminClient = undefined
      })
    }
    return this.adminClient
  }

  /** Leader of each partition of a topic, as the cluster metadata says. */
  private leaders(topic: string, refresh: boolean): Promise<ReadonlyMap<number, BrokerAddress>> {
    let leaders = refresh ? undefined : this.leaderCache.get(topic)
    if (!leaders) {
      leaders = (async () => {
        const admin = await this.admin()
        // One after the other: a look-up left running after the other failed could reconnect the
        // admin client after close.
        const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
        const cluster = await admin.describeCluster()
        const brokers = new Map(cluster.brokers.map((broker) => [broker.nodeId, broker]))
        const found = new Map<number, BrokerAddress>()
        for (const partition of metadata.topics[0]?.partitions ?? []) {
          const broker = brokers.get(partition.leader)
          if (broker) found.set(partition.partitionId, broker)
        }
        return found
      })()
      const cached = leaders
      cached.catch(() => {
        if (this.leaderCache.get(topic) === cached) this.leaderCache.delete(topic)
      })
      this.leaderCache.set(topic, cached)
    }
    return leaders
  }

  private async anyBroker(): Promise<BrokerAddress> {
    const cluster = await (await this.admin()).describeCluster()
    const broker = cluster.brokers[Math.floor(Math.random() * cluster.brokers.length)]
    if (!broker) throw new Error('kafka cluster lists no brokers')
    return broker
  }

  private track<C extends Closeable>(closeable: C): C {
    this.open.add(closeable)
    const close = closeable.close.bind(closeable)
    closeable.close = async () => {
      this.open.delete(closeable)
      await close()
    }
    return closeable
  }

  private checkSize(subject: string, data: Uint8Array): void {
    if (data.length > this.maxMessageBytes) throw new TransportMessageTooLarge(subject, data.length, this.maxMessageBytes)
  }

  private bucketTopic(bucket: BucketSpec): TopicSettings {
    return {
      topic: bucket.kafkaTopic,
      // One partition: a single order for all writes makes "caught up" one offset to reach.
      partitions: 1,
      replicas: bucket.replicas,
      configs: {
        'cleanup.policy': 'compact',
        'max.message.bytes': String(this.maxMessageBytes + RECORD_OVERHEAD_BYTES),
      },
    }
  }

  /** Request, reply and broadcast topics: created on demand, short-lived data. */
  private ensureTopic(topic: string, partitions: number): Promise<void> {
    let done = this.ensured.get(topic)
    if (!done) {
      done = (async () => {
        const retention = String(this.options.ephemeralRetentionMs ?? 600_000)
        await reconcileTopics(await this.admin(), [
          {
            topic,
            partitions,
            replicas: await this.replicasForEphemeral(),
            configs: {
              'cleanup.policy': 'delete',
              'retention.ms': retention,
              // Retention only drops whole segments: roll them as often as data expires.
              'segment.ms': retention,
              'max.message.bytes': String(this.maxMessageBytes + RECORD_OVERHEAD_BYTES),
            },
          },
        ])
      })()
      done.catch(() => this.ensured.delete(topic))
      this.ensured.set(topic, done)
    }
    return done
  }

  /** Up to 3 copies, as many as there are brokers: acks=all must be satisfiable. */
  private replicasForEphemeral(): Promise<number> {
    this.ephemeralReplicas ??= this.admin()
      .then((admin) => admin.describeCluster())
      .then((cluster) => Math.max(1, Math.min(3, cluster.brokers.length)))
    this.ephemeralReplicas.catch(() => {
      this.ephemeralReplicas = undefined
    })
    return this.ephemeralReplicas
  }

  private partitionCount(topic: string): Promise<number> {
    let count = this.partitionCounts.get(topic)
    if (!count) {
      count = this.admin()
        .then((admin) => admin.fetchTopicMetadata({ topics: [topic] }))
        .then((metadata) => Math.max(1, metadata.topics[0]?.partitions.length ?? 1))
      count.catch(() => this.partitionCounts.delete(topic))
      this.partitionCounts.set(topic, count)
    }
    return count
  }

  private async hasResponders(requestTopic: string): Promise<boolean> {
    const seen = this.respondersSeen.get(requestTopic)
    if (seen !== undefined && Date.now() - seen < RESPONDERS_CACHE_MS) return true
    const admin = await this.admin()
    const { groups } = await admin.describeGroups([`flowbus-serve-${requestTopic}`])
    const members = groups[0]?.members.length ?? 0
    if (members === 0) return false
    this.respondersSeen.set(requestTopic, Date.now())
    return true
  }

  private replies(): Promise<ReplyChannel> {
    if (!this.replyChannel) {
      this.replyChannel = this.openReplyChannel()
      this.replyChannel.catch(() => {
        this.replyChannel = undefined
      })
    }
    return this.replyChannel
  }

  private async openReplyChannel(): Promise<ReplyChannel> {
    const topic = `flowbus-replies-${this.instanceId}`
    const groupId = topic
    await this.ensureTopic(topic, 1)
    const pending = new Map<string, (reply: Uint8Array) => void>()
    const consumer = this.kafka.consumer({
      groupId,
      sessionTimeout: this.sessionTimeoutMs,
      heartbeatInterval: this.heartbeatIntervalMs,
      maxWaitTimeInMs: this.maxWaitMs,
      maxBytesPerPartition: this.maxBytesPerPartition,
      allowAutoTopicCreation: false,
    })
    try {
      await consumer.connect()
      // The topic is new and ours: reading from the beginning cannot miss an early reply.
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          const id = decodeHeaders(message.headers)[CORRELATION_HEADER]
          const deliver = id === undefined ? undefined : pending.get(id)
          if (!deliver) return // a reply that came after its request timed out
          const value = message.value ?? Buffer.alloc(0)
          deliver(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
        },
      })
    } catch (error) {
      await consumer.disconnect().catch(() => undefined)
      throw error
    }
    return { topic, groupId, consumer, pending }
  }
}

function reportToStderr(error: unknown, context: string): void {
  process.stderr.write(`flowbus kafka transport: ${context}: ${describeError(error)}\n`)
}
