// The byte-level contract every bus transport (memory, NATS, Kafka) implements.
// Transports move opaque bytes; encoding, typing, dead-lettering and metrics live in the
// typed Bus layer above (bus.ts), so the three transports stay small and interchangeable.

/** A durable stream as the transport sees it: names already derived from the subject catalogue. */
export interface StreamSpec {
  /** Versioned base name, e.g. `flows.decoded.v1`; shard subjects are `<base>.<shard>`. */
  readonly base: string
  /** JetStream stream name, e.g. `FLOWBUS_FLOWS_DECODED_V1`. */
  readonly natsStream: string
  /** Kafka topic, e.g. `flowbus-flows-decoded-v1`. */
  readonly kafkaTopic: string
  /** Number of shards (JetStream subjects `<base>.0..n-1`, Kafka partitions). */
  readonly partitions: number
  readonly replicas: number
  /** Messages older than this are discarded (0 = forever). */
  readonly maxAgeSeconds: number
  /** Stream size cap in bytes, oldest discarded first (0 = unlimited). */
  readonly maxBytes: number
}

/** A key/value bucket as the transport sees it. */
export interface BucketSpec {
  /** NATS KV bucket name, e.g. `flowbus_metadata_interfaces_v1`. */
  readonly natsBucket: string
  /** Kafka compacted topic, e.g. `flowbus-metadata-interfaces-v1`. */
  readonly kafkaTopic: string
  readonly replicas: number
}

/** One delivered message of a durable consumer. Exactly one of ack/nak/term must be called. */
export interface Delivery {
  readonly shard: number
  readonly key: string
  readonly data: Uint8Array
  readonly headers: Readonly<Record<string, string>>
  /** 1 on first delivery, >1 when redelivered (after nak, ack timeout or consumer death). */
  readonly deliveryCount: number
  /**
   * Where the message sits in its shard, the same on every delivery: JetStream stream sequence,
   * Kafka partition offset, memory log index. Increases with publication order within a shard
   * (JetStream sequences count the whole stream, so a shard's positions may skip numbers).
   */
  readonly position?: number
  /** The work is durable: never deliver this message again to the group. */
  ack(): Promise<void>
  /** Processing failed: deliver again later (after delayMs when the transport supports it). */
  nak(delayMs?: number): Promise<void>
}

export interface ConsumeOptions {
  /** Consumer group name: members of one group share the shards, each message goes to one member. */
  readonly group: string
  /** Upper bound on messages delivered but not yet acked by this member (backpressure). */
  readonly maxInFlight: number
  /** Upper bound on bytes delivered but not yet acked by this member. */
  readonly maxInFlightBytes: number
  /** A delivery not acked within this time is redelivered (ms). */
  readonly ackWaitMs: number
}

/**
 * Handler of a durable consumer. The transport calls it sequentially, in order, for the
 * messages of one shard; different shards may be handled concurrently. The handler acks or
 * naks the delivery itself (possibly later, e.g. once a ClickHouse insert committed).
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<void>

export interface Closeable {
  close(): Promise<void>
}

export interface Subscription extends Closeable {
  /**
   * Stop fetching, wait for handlers already called to finish (they ack what completed),
   * then leave the group so other members take the shards over. Unacked messages are redelivered.
   */
  close(): Promise<void>
  /** Shards this member currently owns (for tests and /metrics). */
  assignedShards(): readonly number[]
}

export interface KvEntry {
  readonly key: string
  /** undefined when the key was deleted. */
  readonly value: Uint8Array | undefined
}

export interface KvStore {
  get(key: string): Promise<Uint8Array | undefined>
  put(key: string, value: Uint8Array): Promise<void>
  delete(key: string): Promise<void>
  keys(): Promise<string[]>
  /** Calls handler for every current entry, then for every later change, until closed. */
  watch(handler: (entry: KvEntry) => void): Promise<Closeable>
}

/** Error a transport throws for a message over its size limit; the typed layer surfaces it. */
export class TransportMessageTooLarge extends Error {
  constructor(
    readonly subject: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`message of ${size} bytes on ${subject} exceeds the bus limit of ${limit} bytes`)
    this.name = 'TransportMessageTooLarge'
  }
}

/** Error a transport throws when a request got no reply in time. */
export class TransportTimeout extends Error {
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply on ${subject} within ${timeoutMs} ms`)
    this.name = 'TransportTimeout'
  }
}

/** Error a transport throws when a request found nobody serving the subject. */
export class TransportNoResponders extends Error {
  constructor(readonly subject: string) {
    super(`no responder is serving ${subject}`)
    this.name = 'TransportNoResponders'
  }
}

export interface Transport {
  readonly name: 'memory' | 'nats' | 'kafka'
  /** Largest message payload accepted, in bytes. */
  readonly maxMessageBytes: number

  /** Create or update streams and buckets; idempotent, safe to run from every process. */
  provision(streams: readonly StreamSpec[], buckets: readonly BucketSpec[]): Promise<void>

  /** Durably publish to one shard; resolves once the broker stored it. */
  publish(
    stream: StreamSpec,
    shard: number,
    key: string,
    data: Uint8Array,
    headers?: Readonly<Record<string, string>>,
  ): Promise<void>

  /** Join a consumer group on a stream; deliveries go to handler until the subscription closes. */
  consume(stream: StreamSpec, options: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription>

  /** Send a request and wait for one reply; throws TransportTimeout / TransportNoResponders. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>

  /** Serve requests on subject; responders sharing a subject share the load. */
  serve(subject: string, handler: (request: Uint8Array) => Promise<Uint8Array>): Promise<Closeable>

  /** Non-durable fan-out: delivered to the listeners present now, lost otherwise. */
  broadcast(subject: string, data: Uint8Array): Promise<void>
  listen(subject: string, handler: (data: Uint8Array) => void): Promise<Closeable>

  /** Open (creating if needed) a key/value bucket. */
  kv(bucket: BucketSpec): Promise<KvStore>

  /** Close connections; subscriptions should have been closed first. */
  close(): Promise<void>
}
