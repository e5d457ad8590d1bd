// The in-process bus transport: the embedded default when every actor runs in one process. It keeps
// the same contract as NATS and Kafka (groups, acks, redelivery, backpressure) without encoding or copying.
/**
 * Behaviour, where the contract leaves a choice:
 *
 * - **One bus, many clients.** `createMemoryBus()` holds the streams, buckets and subjects;
 *   `bus.connect()` returns a Transport client on it. Closing a client closes what that client
 *   opened (subscriptions gracefully, responders, listeners, watches), never the bus.
 *   `createMemoryTransport()` is a bus with one client.
 * - **Zero-copy.** Published bytes, KV values, requests and broadcasts are handed to consumers as
 *   the same Uint8Array. Publishers must not reuse or mutate a buffer after handing it over, and
 *   consumers must not mutate what they receive (other groups and listeners see the same bytes).
 * - **Size limit.** `maxMessageBytes` (default 1 MiB, the NATS server default, so what fits here
 *   fits there) applies to publish, request, reply, broadcast and KV values; larger payloads
 *   throw TransportMessageTooLarge naming the subject.
 * - **Streams** must be provisioned first (as on NATS), then keep per-shard ordered logs. A new
 *   consumer group starts at the oldest retained message; groups are durable: a group keeps its
 *   position after its last member leaves, and a later member resumes from there.
 * - **Retention and publisher backpressure.** A stream holds at most `min(spec.maxBytes,
 *   maxStreamBytes)` bytes (default 64 MiB) and `maxStreamMessages` messages (default 100 000).
 *   Messages older than `spec.maxAgeSeconds` are dropped whether acked or not. When a publish
 *   does not fit, the oldest messages that every group has acked are dropped; if that is not
 *   enough, publish waits until groups ack enough (publishes are admitted strictly in order). A
 *   stream without any group behaves as a plain capped log: oldest first, never blocking. So a
 *   stalled group (or one whose members all left) eventually stalls its publishers instead of
 *   losing data or growing memory: the typed layer decides how long it may wait.
 * - **Consumers.** Shard s of a group belongs to live member s mod n (in join order), recomputed
 *   when a member joins or leaves. A shard's handler calls are sequential; a shard moving to a
 *   new member waits for the running call to return. Each member has at most `maxInFlight`
 *   deliveries and `maxInFlightBytes` bytes unacked (one message is always allowed when nothing
 *   is in flight, so an oversized message cannot wedge a shard). Unacked deliveries come back
 *   after `ackWaitMs`, after `nak(delayMs)`, or at once to the new owner when a member closes;
 *   `deliveryCount` counts every delivery. A late ack from a superseded delivery still counts.
 * - **Request/reply** goes round-robin over the responders of a subject; no responder →
 *   TransportNoResponders, no reply within the timeout → TransportTimeout. A responder that
 *   throws fails the request with that error's message.
 * - **Broadcast** reaches the listeners registered when it is called, each on a microtask.
 */
import { MemoryBucket } from './memory-kv.js'
import { MemoryStream, type StreamLimits } from './memory-stream.js'
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

export interface MemoryTransportOptions {
  /** Largest payload accepted, in bytes (default 1 MiB). */
  readonly maxMessageBytes?: number
  /** Cap of every stream in bytes, lowered by a stream's own maxBytes (default 64 MiB). */
  readonly maxStreamBytes?: number
  /** Cap of every stream in messages (default 100 000). */
  readonly maxStreamMessages?: number
}

const DEFAULTS = {
  maxMessageBytes: 1024 * 1024,
  maxStreamBytes: 64 * 1024 * 1024,
  maxStreamMessages: 100_000,
}

type Responder = (request: Uint8Array) => Promise<Uint8Array>
type Listener = (data: Uint8Array) => void

const positive = (name: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < 1) {
    throw new RangeError(`memory transport option ${name} must be a positive number, got ${value}`)
  }
  return value
}

/** The shared state of one in-process bus. */
export class MemoryBus {
  readonly maxMessageBytes: number
  private readonly limits: StreamLimits
  private readonly streams = new Map<string, MemoryStream>()
  private readonly buckets = new Map<string, MemoryBucket>()
  private readonly responders = new Map<string, { list: Responder[]; next: number }>()
  private readonly listeners = new Map<string, Set<Listener>>()

  constructor(options: MemoryTransportOptions = {}) {
    this.maxMessageBytes = positive('maxMessageBytes', options.maxMessageBytes, DEFAULTS.maxMessageBytes)
    this.limits = {
      maxStreamBytes: positive('maxStreamBytes', options.maxStreamBytes, DEFAULTS.maxStreamBytes),
      maxStreamMessages: positive('maxStreamMessages', options.maxStreamMessages, DEFAULTS.maxStreamMessages),
    }
  }

  /** A new client on this bus; closing it leaves the bus and other clients running. */
  connect(): Transport {
    return new MemoryClient(this)
  }

  checkSize(subject: string, data: Uint8Array): void {
    if (data.byteLength > this.maxMessageBytes) {
      throw new TransportMessageTooLarge(subject, data.byteLength, this.maxMessageBytes)
    }
  }

  provisionStream(spec: StreamSpec): void {
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
      throw new RangeError(`stream ${spec.base}: partitions must be an integer ≥ 1, got ${spec.partitions}`)
    }
    const existing = this.streams.get(spec.base)
    if (existing) existing.update(spec)
    else this.streams.set(spec.base, new MemoryStream(spec, this.limits))
  }

  stream(spec: StreamSpec): MemoryStream {
    const stream = this.streams.get(spec.base)
    if (!stream) throw new Error(`stream ${spec.base} is not provisioned on the memory bus: call provision() first`)
    return stream
  }

  /** What a stream holds and how many publishes wait for room (for /metrics and tests). */
  streamStats(spec: StreamSpec): { messages: number; bytes: number; waitingPublishes: number } {
    return this.stream(spec).stats()
  }

  bucket(name: string): MemoryBucket {
    let bucket = this.buckets.get(name)
    if (!bucket) {
      bucket = new MemoryBucket(name)
      this.buckets.set(name, bucket)
    }
    return bucket
  }

  addResponder(subject: string, responder: Responder): () => void {
    let entry = this.responders.get(subject)
    if (!entry) {
      entry = { list: [], next: 0 }
      this.responders.set(subject, entry)
    }
    entry.list.push(responder)
    return () => {
      const list = entry.list
      const index = list.indexOf(responder)
      if (index >= 0) list.splice(index, 1)
      if (list.length === 0 && this.responders.get(subject) === entry) this.responders.delete(subject)
    }
  }

  /** The next responder of subject in turn, or undefined when nobody serves it. */
  nextResponder(subject: string): Responder | undefined {
    const entry = this.responders.get(subject)
    if (!entry || entry.list.length === 0) return undefined
    const responder = entry.list[entry.next % entry.list.length]!
    entry.next = (entry.next + 1) % entry.list.length
    return responder
  }

  addListener(subject: string, listener: Listener): () => void {
    let set = this.listeners.get(subject)
    if (!set) {
      set = new Set()
      this.listeners.set(subject, set)
    }
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.listeners.get(subject) === set) this.listeners.delete(subject)
    }
  }

  listenersOf(subject: string): Listener[] {
    return [...(this.listeners.get(subject) ?? [])]
  }
}

/** One client of a memory bus: what it opened is closed with it. */
class MemoryClient implements Transport {
  readonly name = 'memory' as const
  readonly maxMessageBytes: number
  private readonly open = new Set<Closeable>()
  private closed = false

  constructor(private readonly bus: MemoryBus) {
    this.maxMessageBytes = bus.maxMessageBytes
  }

  private ensureOpen(operation: string): void {
    if (this.closed) throw new Error(`memory transport client is closed: cannot ${operation}`)
  }

  /** Tracks a resource of this client; it forgets it once closed by its owner. */
  private own<C extends Closeable>(resource: C): C {
    const close = resource.close.bind(resource)
    const tracked = Object.assign(resource, {
      close: async () => {
        this.open.delete(tracked)
        await close()
      },
    })
    this.open.add(tracked)
    return tracked
  }

  async provision(streams: readonly StreamSpec[], buckets: readonly BucketSpec[]): Promise<void> {
    this.ensureOpen('provision')
    for (const spec of streams) this.bus.provisionStream(spec)
    for (const spec of buckets) this.bus.bucket(spec.natsBucket)
  }

  async publish(
    spec: StreamSpec,
    shard: number,
    key: string,
    data: Uint8Array,
    headers?: Readonly<Record<string, string>>,
  ): Promise<void> {
    this.ensureOpen(`publish to ${spec.base}`)
    const stream = this.bus.stream(spec)
    if (!Number.isInteger(shard) || shard < 0 || shard >= stream.shards.length) {
      throw new RangeError(`shard ${shard} is out of range for stream ${spec.base} (0..${stream.shards.length - 1})`)
    }
    this.bus.checkSize(`${spec.base}.${shard}`, data)
    await stream.publish(shard, key, data, headers)
  }

  async consume(spec: StreamSpec, options: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.ensureOpen(`consume from ${spec.base}`)
    const member = this.bus.stream(spec).group(options.group).join(options, handler)
    return this.own(member)
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.ensureOpen(`request on ${subject}`)
    this.bus.checkSize(subject, data)
    const responder = this.bus.nextResponder(subject)
    if (!responder) throw new TransportNoResponders(subject)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TransportTimeout(subject, timeoutMs)), timeoutMs)
    })
    const reply = (async () => {
      let response: Uint8Array
      try {
        response = await responder(data)
      } catch (error) {
        throw new Error(`responder on ${subject} failed: ${error instanceof Error ? error.message : String(error)}`, {
          cause: error,
        })
      }
      this.bus.checkSize(`${subject} (reply)`, response)
      return response
    })()
    try {
      return await Promise.race([reply, timeout])
    } finally {
      clearTimeout(timer)
      reply.catch(() => {}) // a reply that lost the race must not surface as an unhandled rejection
    }
  }

  async serve(subject: string, handler: (request: Uint8Array) => Promise<Uint8Array>): Promise<Closeable> {
    this.ensureOpen(`serve ${subject}`)
    const remove = this.bus.addResponder(subject, handler)
    return this.own({ close: async () => remove() })
  }

  async broadcast(subject: string, data: Uint8Array): Promise<void> {
    this.ensureOpen(`broadcast on ${subject}`)
    this.bus.checkSize(subject, data)
    for (const listener of this.bus.listenersOf(subject)) queueMicrotask(() => listener(data))
  }

  async listen(subject: string, handler: (data: Uint8Array) => void): Promise<Closeable> {
    this.ensureOpen(`listen on ${subject}`)
    let active = true
    const listener: Listener = (data) => {
      if (!active) return // closed after the broadcast was sent, before it arrived
      try {
        handler(data)
      } catch (error) {
        process.emitWarning(`listener on ${subject} threw: ${String(error)}`)
      }
    }
    const remove = this.bus.addListener(subject, listener)
    return this.own({
      close: async () => {
        active = false
        remove()
      },
    })
  }

  async kv(spec: BucketSpec): Promise<KvStore> {
    this.ensureOpen(`open bucket ${spec.natsBucket}`)
    const bucket = this.bus.bucket(spec.natsBucket)
    return {
      get: async (key) => bucket.get(key),
      put: async (key, value) => {
        this.ensureOpen(`put ${key} in bucket ${bucket.name}`)
        this.bus.checkSize(`${bucket.name}.${key}`, value)
        bucket.put(key, value)
      },
      delete: async (key) => {
        this.ensureOpen(`delete ${key} from bucket ${bucket.name}`)
        bucket.delete(key)
      },
      keys: async () => bucket.keys(),
      watch: async (handler) => {
        this.ensureOpen(`watch bucket ${bucket.name}`)
        return this.own(bucket.watch(handler))
      },
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.all([...this.open].map((resource) => resource.close()))
  }
}

/** A bus whose clients share streams, groups, buckets and subjects: one per process. */
export const createMemoryBus = (options?: MemoryTransportOptions): MemoryBus => new MemoryBus(options)

/** A memory transport on a bus of its own (`createMemoryBus().connect()`). */
export const createMemoryTransport = (options?: MemoryTransportOptions): Transport => new MemoryBus(options).connect()
