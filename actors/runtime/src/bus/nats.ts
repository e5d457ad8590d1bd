// The NATS bus transport: JetStream streams for durable sharded subjects (consumer groups over
// per-shard durable pull consumers), core NATS for request/reply and broadcast, NATS KV for state.
//
// Stream publishes, pulls and acks go through a lean protocol connection of our own (nats-wire.ts)
// that does not copy payloads the way nats.js does; nats.js keeps everything else.
//
// Consumer groups: JetStream (2.9) has no partition assignment of its own, so each (group, shard)
// gets one durable pull consumer `<group>_<shard>` filtered on `<base>.<shard>`, and the members of a
// group agree through the `flowbus_groups` KV bucket on which member pulls which shard (see
// nats-group.ts). One puller per shard keeps the shard's order; the member's in-flight budget sizes
// each pull request in messages and bytes (nats-pull.ts, nats-budget.ts).

import { hostname } from 'node:os'
import {
  connect,
  headers as natsHeaders,
  nuid,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type Msg,
  type NatsConnection,
  type Subscription as NatsSubscription,
} from '@nats-io/transport-node'
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  JetStreamApiError,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'
import { InFlightBudget } from './nats-budget.js'
import { GroupMembership } from './nats-group.js'
import { NatsKvStore } from './nats-kv.js'
import { StreamPublisher } from './nats-publish.js'
import { ShardPuller } from './nats-pull.js'
import { NatsWire } from './nats-wire.js'
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

export interface NatsTransportOptions {
  /** Server URLs, e.g. `nats://127.0.0.1:4222` (a single URL may be given as a string). */
  readonly servers: readonly string[] | string
  /** Connection name shown by the server (monitoring, logs). */
  readonly name?: string
  readonly user?: string
  readonly pass?: string
  readonly token?: string
  /** Largest payload we accept; the server's max_payload (minus room for headers) caps it anyway. */
  readonly maxMessageBytes?: number
  /** Initial connection timeout (ms); default 5000. Later disconnections reconnect forever. */
  readonly connectTimeoutMs?: number
  /** How often a consumer-group member refreshes its heartbeat (ms); default 1000. */
  readonly groupHeartbeatMs?: number
  /** A member whose heartbeat is older than this is dead and its shards move (ms); default 4000. */
  readonly groupMemberTimeoutMs?: number
  /** KV bucket holding group membership and shard claims; default `flowbus_groups`. */
  readonly groupsBucket?: string
  /** Queue group that responders of one subject share; default `flowbus`. */
  readonly serveQueue?: string
}

/** Header carrying the partition key of a stream message. */
export const KEY_HEADER = 'Flowbus-Key'
/** Header of a reply whose responder failed: the request throws with this text. */
export const ERROR_HEADER = 'Flowbus-Error'
/** Room kept under the server's max_payload for our headers (key, user headers). */
const HEADER_ROOM_BYTES = 1024
/** Room for subject and ack reply subject when sizing a pull for the largest message. */
const PULL_ENVELOPE_BYTES = 1024
/** How long a publish waits for the stream's acknowledgement (nats.js JetStream default). */
const PUBACK_TIMEOUT_MS = 5_000
/** Partition keys whose encoded headers are kept for reuse (exporters: a few hundred at most). */
const KEY_HEADERS_CACHED = 4096

export async function createNatsTransport(options: NatsTransportOptions): Promise<Transport> {
  const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers]
  if (servers.length === 0) throw new Error('NATS transport needs at least one server URL (servers is empty)')
  let nc: NatsConnection
  try {
    nc = await connect({
      servers,
      name: options.name,
      user: options.user,
      pass: options.pass,
      token: options.token,
      timeout: options.connectTimeoutMs ?? 5_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      // nats.js otherwise builds two Error objects (stack capture through async frames) for every
      // request, JetStream publishes included: over a tenth of the transport's CPU at full rate.
      // Our errors name the subject and operation, which is what a failed publish needs.
      noAsyncTraces: true,
    })
  } catch (error) {
    throw new Error(`cannot connect to NATS at ${servers.join(', ')}: ${errorText(error)}`, { cause: error })
  }
  let jsm: JetStreamManager
  try {
    jsm = await jetstreamManager(nc)
  } catch (error) {
    await nc.close()
    throw new Error(
      `JetStream is not available on ${servers.join(', ')} (start nats-server with -js): ${errorText(error)}`,
      { cause: error },
    )
  }
  let wire: NatsWire
  try {
    wire = await NatsWire.connect({
      servers,
      // Told apart from the nats.js connection in the server's monitoring.
      name: options.name === undefined ? undefined : `${options.name} (data)`,
      user: options.user,
      pass: options.pass,
      token: options.token,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      reconnectWaitMs: 1_000,
    })
  } catch (error) {
    await nc.close()
    throw new Error(`cannot connect to NATS at ${servers.join(', ')}: ${errorText(error)}`, { cause: error })
  }
  return new NatsTransport(nc, wire, jsm, options)
}

class NatsTransport implements Transport {
  readonly name = 'nats' as const
  readonly maxMessageBytes: number
  private readonly js: JetStreamClient
  private readonly publisher: StreamPublisher
  /** Header blocks of plain publishes (key only) by key: building them is most of a publish's own work. */
  private readonly keyHeaders = new Map<string, HeaderBlock>()
  private readonly kvm: Kvm
  private readonly serverMaxPayload: number
  private readonly buckets = new Map<string, Promise<KV>>()
  private readonly open = new Set<Closeable>()
  private closed = false

  constructor(
    private readonly nc: NatsConnection,
    private readonly wire: NatsWire,
    private readonly jsm: JetStreamManager,
    private readonly options: NatsTransportOptions,
  ) {
    this.js = jetstream(nc)
    this.publisher = new StreamPublisher(wire, PUBACK_TIMEOUT_MS)
    this.kvm = new Kvm(this.js)
    this.serverMaxPayload = nc.info?.max_payload ?? 1024 * 1024
    this.maxMessageBytes = Math.min(options.maxMessageBytes ?? Infinity, this.serverMaxPayload - HEADER_ROOM_BYTES)
  }

  async provision(streams: readonly StreamSpec[], buckets: readonly BucketSpec[]): Promise<void> {
    for (const stream of streams) await this.provisionStream(stream)
    for (const bucket of buckets) await this.provisionBucket(bucket)
  }

  private async provisionStream(spec: StreamSpec): Promise<void> {
    validateStream(spec)
    const config: Partial<StreamConfig> & { name: string } = {
      name: spec.natsStream,
      subjects: [`${spec.base}.*`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: spec.maxAgeSeconds > 0 ? Math.round(spec.maxAgeSeconds * 1e9) : 0,
      // The server refuses a duplicate window (default 2 min) longer than max_age.
      duplicate_window: Math.round(Math.min(120, spec.maxAgeSeconds > 0 ? spec.maxAgeSeconds : 120) * 1e9),
      max_bytes: spec.maxBytes > 0 ? spec.maxBytes : -1,
      num_replicas: spec.replicas,
    }
    const { name, storage: _storage, retention: _retention, ...changeable } = config
    try {
      if (await this.streamExists(name)) await this.jsm.streams.update(name, changeable)
      else await this.jsm.streams.add(config)
    } catch (error) {
      // Another process may have created it between our check and our add: update instead.
      if (!(await this.streamExists(name))) throw provisionError(spec.natsStream, error)
      try {
        await this.jsm.streams.update(name, changeable)
      } catch (retryError) {
        throw provisionError(spec.natsStream, retryError)
      }
    }
  }

  private async streamExists(name: string): Promise<boolean> {
    try {
      await this.jsm.streams.info(name)
      return true
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === 10059) return false
      throw error
    }
  }

  private async provisionBucket(spec: BucketSpec): Promise<void> {
    const kv = await this.bucket(spec)
    const status = await kv.status()
    if (status.replicas !== spec.replicas) {
      await this.jsm.streams.update(status.streamInfo.config.name, { num_replicas: spec.replicas })
    }
  }

  private bucket(spec: Pick<BucketSpec, 'natsBucket' | 'replicas'>): Promise<KV> {
    let kv = this.buckets.get(spec.natsBucket)
    if (!kv) {
      kv = this.kvm.create(spec.natsBucket, { history: 1, replicas: spec.replicas, storage: StorageType.File })
      kv.catch(() => this.buckets.delete(spec.natsBucket))
      this.buckets.set(spec.natsBucket, kv)
    }
    return kv.catch((error: unknown) => {
      throw new Error(`cannot open NATS KV bucket ${spec.natsBucket}: ${errorText(error)}`, { cause: error })
    })
  }

  async publish(
    stream: StreamSpec,
    shard: number,
    key: string,
    data: Uint8Array,
    headers?: Readonly<Record<string, string>>,
  ): Promise<void> {
    if (!Number.isInteger(shard) || shard < 0 || shard >= stream.partitions) {
      throw new RangeError(`shard ${shard} is outside 0..${stream.partitions - 1} of stream ${stream.base}`)
    }
    const subject = `${stream.base}.${shard}`
    if (data.length > this.maxMessageBytes) {
      throw new TransportMessageTooLarge(subject, data.length, this.maxMessageBytes)
    }
    const header = this.headerBlock(subject, key, headers)
    if (data.length + header.bytes > this.serverMaxPayload) {
      throw new TransportMessageTooLarge(subject, data.length + header.bytes, this.serverMaxPayload)
    }
    try {
      await this.publisher.publish(subject, data, header.text, header.bytes)
    } catch (error) {
      if (isNoResponders(error)) {
        throw new Error(`no JetStream stream stores ${subject}: provision stream ${stream.natsStream} first`, {
          cause: error,
        })
      }
      throw error
    }
  }

  /** The header block carrying the key and the caller's headers. */
  private headerBlock(subject: string, key: string, extra: Readonly<Record<string, string>> | undefined): HeaderBlock {
    const plain = extra === undefined || Object.keys(extra).length === 0
    if (plain) {
      const cached = this.keyHeaders.get(key)
      if (cached) return cached
    }
    let text = 'NATS/1.0\r\n'
    const add = (name: string, value: string): void => {
      if (!/^[!-9;-~]+$/.test(name)) {
        throw new Error(`header name ${JSON.stringify(name)} on ${subject} must be printable ASCII without spaces or colons`)
      }
      if (/[\r\n]/.test(value)) throw new Error(`header ${name} on ${subject} must not contain line breaks: ${JSON.stringify(value)}`)
      text += `${name}: ${value}\r\n`
    }
    add(KEY_HEADER, key)
    for (const [name, value] of Object.entries(extra ?? {})) add(name, value)
    text += '\r\n'
    const block = { text, bytes: Buffer.byteLength(text) }
    if (plain) {
      if (this.keyHeaders.size >= KEY_HEADERS_CACHED) this.keyHeaders.clear()
      this.keyHeaders.set(key, block)
    }
    return block
  }

  async consume(stream: StreamSpec, options: ConsumeOptions, handler: DeliveryHandler): Promise<Subscription> {
    validateConsume(stream, options)
    if (!(await this.streamExists(stream.natsStream))) {
      throw new Error(
        `stream ${stream.base} (JetStream ${stream.natsStream}) is not provisioned on NATS: call provision() first`,
      )
    }
    const groupToken = keyToken(options.group)
    const groups = await this.bucket({
      natsBucket: this.options.groupsBucket ?? 'flowbus_groups',
      replicas: stream.replicas,
    })
    const budget = new InFlightBudget(options.maxInFlight, options.maxInFlightBytes)
    const pullers = new Map<number, ShardPuller>()
    const durable = (shard: number): string => `${groupToken}_${shard}`
    const ensureConsumer = async (shard: number): Promise<void> => {
      const config: Partial<ConsumerConfig> = {
        durable_name: durable(shard),
        filter_subject: `${stream.base}.${shard}`,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: Math.round(options.ackWaitMs * 1e6),
        max_ack_pending: options.maxInFlight,
        max_deliver: -1,
      }
      // Only touch an existing consumer when its settings changed: re-adding it makes nats-server
      // 2.9 reload the consumer's delivered state from its last flush, so the newest delivered
      // message would be handed out again as a first delivery.
      const existing = await this.jsm.consumers.info(stream.natsStream, durable(shard)).catch((error: unknown) => {
        if (error instanceof JetStreamApiError && error.code === 10014) return undefined
        throw error
      })
      if (!existing) {
        try {
          await this.jsm.consumers.add(stream.natsStream, config)
          return
        } catch (error) {
          // Created meanwhile by another member: fall through to compare settings.
          if (!(error instanceof JetStreamApiError)) throw error
        }
      }
      const current = existing ?? (await this.jsm.consumers.info(stream.natsStream, durable(shard)))
      if (current.config.ack_wait !== config.ack_wait || current.config.max_ack_pending !== config.max_ack_pending) {
        await this.jsm.consumers.update(stream.natsStream, durable(shard), {
          ack_wait: config.ack_wait,
          max_ack_pending: config.max_ack_pending,
        })
      }
    }
    // One pull asks for at most the budget over the stream's shard count: a pull waits on the
    // server up to its expiry holding its reservation, so sizing by the shards owned right now
    // would let the first shard started take the whole budget while the others start.
    const share = () => ({
      msgs: Math.ceil(options.maxInFlight / stream.partitions),
      bytes: Math.ceil(options.maxInFlightBytes / stream.partitions),
    })
    const membership = await GroupMembership.join({
      kv: groups,
      prefix: `${keyToken(stream.natsStream)}.${groupToken}`,
      memberId: keyToken(`${hostname()}-${process.pid}-${nuid.next()}`),
      partitions: stream.partitions,
      heartbeatMs: this.options.groupHeartbeatMs ?? 1_000,
      memberTimeoutMs: this.options.groupMemberTimeoutMs ?? 4_000,
      runner: {
        startShard: async (shard) => {
          await ensureConsumer(shard)
          const puller = new ShardPuller({
            wire: this.wire,
            apiPrefix: '$JS.API',
            stream: stream.natsStream,
            consumer: durable(shard),
            shard,
            budget,
            share,
            largestMessageBytes: this.serverMaxPayload + PULL_ENVELOPE_BYTES,
            ackWaitMs: options.ackWaitMs,
            keyHeader: KEY_HEADER,
            handler,
            recreateConsumer: () => ensureConsumer(shard),
          })
          pullers.set(shard, puller)
          puller.start()
        },
        stopShard: async (shard) => {
          const puller = pullers.get(shard)
          if (!puller) return
          await puller.stop()
          pullers.delete(shard)
        },
      },
    })
    // Resolve once this member pulls its share, so callers (and tests) can rely on the assignment.
    await membership.whenSettled(2 * (this.options.groupMemberTimeoutMs ?? 4_000) + 2_000)
    const subscription: Subscription = {
      close: async () => {
        this.open.delete(subscription)
        await membership.leave()
      },
      assignedShards: () => membership.assignedShards(),
    }
    this.open.add(subscription)
    return subscription
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (data.length > this.maxMessageBytes) throw new TransportMessageTooLarge(subject, data.length, this.maxMessageBytes)
    let reply: Msg
    try {
      reply = await this.nc.request(subject, data, { timeout: timeoutMs })
    } catch (error) {
      if (isNoResponders(error)) throw new TransportNoResponders(subject)
      if (isTimeout(error)) throw new TransportTimeout(subject, timeoutMs)
      throw error
    }
    const failure = reply.headers?.get(ERROR_HEADER)
    if (failure) throw new Error(`responder on ${subject} failed: ${failure}`)
    return reply.data
  }

  async serve(subject: string, handler: (request: Uint8Array) => Promise<Uint8Array>): Promise<Closeable> {
    const inFlight = new Set<Promise<void>>()
    const respond = async (msg: Msg): Promise<void> => {
      let response: Uint8Array
      try {
        response = await handler(msg.data)
        if (response.length > this.maxMessageBytes) {
          throw new TransportMessageTooLarge(`${subject} (reply)`, response.length, this.maxMessageBytes)
        }
      } catch (error) {
        // Tell the requester at once instead of letting it wait for its timeout.
        const h = natsHeaders()
        h.set(ERROR_HEADER, errorText(error).replace(/[\r\n]+/g, ' ').slice(0, 512))
        respondQuietly(msg, new Uint8Array(0), h)
        return
      }
      respondQuietly(msg, response)
    }
    const sub = this.nc.subscribe(subject, {
      queue: this.options.serveQueue ?? 'flowbus',
      callback: (_error, msg) => {
        const work = respond(msg)
        inFlight.add(work)
        void work.finally(() => inFlight.delete(work))
      },
    })
    // Once serve() resolves, the server knows about us: a request sent next finds a responder.
    await this.nc.flush()
    const closeable: Closeable = {
      close: async () => {
        this.open.delete(closeable)
        await leaveSubject(sub)
        await Promise.allSettled([...inFlight])
      },
    }
    this.open.add(closeable)
    return closeable
  }

  async broadcast(subject: string, data: Uint8Array): Promise<void> {
    if (data.length > this.maxMessageBytes) throw new TransportMessageTooLarge(subject, data.length, this.maxMessageBytes)
    this.nc.publish(subject, data)
  }

  async listen(subject: string, handler: (data: Uint8Array) => void): Promise<Closeable> {
    const sub = this.nc.subscribe(subject, {
      callback: (_error, msg) => {
        try {
          handler(msg.data)
        } catch {
          // A listener's failure is its own; it must not stop the subscription.
        }
      },
    })
    await this.nc.flush()
    const closeable: Closeable = {
      close: async () => {
        this.open.delete(closeable)
        await leaveSubject(sub)
      },
    }
    this.open.add(closeable)
    return closeable
  }

  async kv(bucket: BucketSpec): Promise<KvStore> {
    return new NatsKvStore(await this.bucket(bucket))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // Group members leave properly (claims given back) even when the caller forgot to close them.
    await Promise.allSettled([...this.open].map((closeable) => closeable.close()))
    // Acknowledgements of publishes already sent still arrive until the server closes its end.
    await this.wire.close()
    this.publisher.close()
    if (!this.nc.isClosed()) {
      try {
        await this.nc.drain()
      } catch {
        await this.nc.close()
      }
    }
  }
}

/**
 * Unsubscribes and waits until the server knows, handling what it routed to us meanwhile: a bare
 * unsubscribe lets the server route a request sent right after close() to us, where nats.js drops
 * it and the requester waits out its timeout although another responder serves the subject.
 */
async function leaveSubject(sub: NatsSubscription): Promise<void> {
  if (sub.isClosed()) return
  try {
    await sub.drain()
  } catch {
    // Connection closed or draining: the server forgets the subscription with it.
    try {
      if (!sub.isClosed()) sub.unsubscribe()
    } catch {
      // Already gone with the connection.
    }
  }
}

/** A message's header block (`NATS/1.0\r\n…\r\n\r\n`) and its length in bytes. */
interface HeaderBlock {
  readonly text: string
  readonly bytes: number
}

function respondQuietly(msg: Msg, data: Uint8Array, h?: ReturnType<typeof natsHeaders>): void {
  try {
    msg.respond(data, h ? { headers: h } : undefined)
  } catch {
    // Connection closing: the requester gets its timeout.
  }
}

function validateStream(spec: StreamSpec): void {
  if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
    throw new Error(`stream ${spec.base}: partitions must be a positive integer, got ${spec.partitions}`)
  }
  if (!/^[^\s*>]+$/.test(spec.base) || spec.base.startsWith('.') || spec.base.endsWith('.')) {
    throw new Error(`stream base ${JSON.stringify(spec.base)} is not a valid NATS subject`)
  }
}

function validateConsume(stream: StreamSpec, options: ConsumeOptions): void {
  validateStream(stream)
  if (options.group === '') throw new Error(`consumer group name for stream ${stream.base} must not be empty`)
  for (const field of ['maxInFlight', 'maxInFlightBytes', 'ackWaitMs'] as const) {
    const value = options[field]
    if (!Number.isFinite(value) || value < 1) {
      throw new Error(`consumer group ${options.group} on ${stream.base}: ${field} must be at least 1, got ${value}`)
    }
  }
}

/**
 * A name usable as one NATS key token and consumer name: kept as is when made of
 * `[A-Za-z0-9_-]`, otherwise cleaned and suffixed with a hash of the original so distinct
 * names stay distinct.
 */
export function keyToken(name: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(name)) return name
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193)
  return `${name.replace(/[^A-Za-z0-9_-]/g, '_')}_${(h >>> 0).toString(16).padStart(8, '0')}`
}

/** nats.js wraps the server's 503 in RequestError or JetStreamNotEnabled: look down the cause chain. */
function isNoResponders(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof NoRespondersError) return true
    if (e instanceof RequestError && e.isNoResponders()) return true
  }
  return false
}

function isTimeout(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof TimeoutError) return true
  }
  return false
}

function provisionError(stream: string, error: unknown): Error {
  return new Error(`cannot provision JetStream stream ${stream}: ${errorText(error)}`, { cause: error })
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
