// The typed Bus service: actors publish and consume catalogue subjects, never raw bytes.
// It encodes and decodes messages, picks shards from partition keys, provisions streams on
// first use, dead-letters what cannot be processed, and counts everything.
import {
  type BroadcastSubject,
  type Codec,
  type RequestSubject,
  type StateBucket,
  type StreamSubject,
  natsPlainSubject,
} from '@flowbus/bus-schemas'
import { Context, Effect, Exit, Layer, Runtime, type Scope } from 'effect'
import type { BusConfig } from '../config/sections.js'
import { Metrics, type MetricsService } from '../metrics.js'
import { BusError, MalformedMessage, MessageTooLarge, NoResponders, RequestTimeout } from './errors.js'
import { bucketSpecFor, deadLetterSpecFor, streamSpecFor } from './provisioning.js'
import { shardOf } from './sharding.js'
import {
  type BucketSpec,
  type Delivery,
  type StreamSpec,
  type Transport,
  TransportMessageTooLarge,
  TransportNoResponders,
  TransportTimeout,
} from './transport.js'

/** A decoded message handed to a subscriber. */
export interface BusMessage<T> {
  readonly value: T
  readonly key: string
  readonly shard: number
  /** 1 on first delivery; higher when redelivered. */
  readonly deliveryCount: number
  /**
   * Stable position of the message in its shard (JetStream stream sequence, Kafka offset, memory
   * log index): the same on every redelivery, increasing with publication order within a shard.
   * Undefined when the transport cannot tell.
   */
  readonly position?: number | undefined
  /** Size of the encoded message, for byte accounting. */
  readonly size: number
  /** Acknowledge: the work is durable. In "auto" mode the Bus acks when the handler succeeds. */
  readonly ack: Effect.Effect<void>
  /** Hand the message back for redelivery. */
  readonly nak: (delayMs?: number) => Effect.Effect<void>
}

export interface SubscribeOptions {
  /** Consumer group: members share the shards; each message is handled by one member. */
  readonly group: string
  /**
   * "auto" (default): ack when the handler succeeds, nak with backoff when it fails.
   * "manual": the handler acks or naks itself, e.g. once a batch of messages is stored.
   */
  readonly ack?: 'auto' | 'manual'
  readonly maxInFlight?: number
  readonly maxInFlightBytes?: number
  readonly ackWaitMs?: number
}

/** A typed view of a key/value bucket. */
export interface StateStore<T> {
  readonly get: (key: string) => Effect.Effect<T | undefined, BusError | MalformedMessage>
  readonly put: (key: string, value: T) => Effect.Effect<void, BusError | MessageTooLarge>
  readonly delete: (key: string) => Effect.Effect<void, BusError>
  readonly keys: Effect.Effect<string[], BusError>
  /** Current entries first, then changes (undefined value: deleted), until the scope closes. */
  readonly watch: (
    handler: (key: string, value: T | undefined) => void,
  ) => Effect.Effect<void, BusError, Scope.Scope>
}

export interface BusService {
  readonly transportName: Transport['name']
  readonly publish: <T>(
    subject: StreamSubject<T>,
    key: string,
    value: T,
    headers?: Readonly<Record<string, string>>,
  ) => Effect.Effect<void, BusError | MessageTooLarge>
  /** Joins the group; messages flow to handler until the enclosing scope closes (then drains). */
  readonly subscribe: <T, E, R>(
    subject: StreamSubject<T>,
    options: SubscribeOptions,
    handler: (message: BusMessage<T>) => Effect.Effect<void, E, R>,
  ) => Effect.Effect<void, BusError, Scope.Scope | R>
  readonly request: <Req, Res>(
    subject: RequestSubject<Req, Res>,
    request: Req,
    timeoutMs?: number,
  ) => Effect.Effect<Res, BusError | RequestTimeout | NoResponders | MessageTooLarge | MalformedMessage>
  readonly serve: <Req, Res, E, R>(
    subject: RequestSubject<Req, Res>,
    handler: (request: Req) => Effect.Effect<Res, E, R>,
  ) => Effect.Effect<void, BusError, Scope.Scope | R>
  readonly broadcast: <T>(subject: BroadcastSubject<T>, value: T) => Effect.Effect<void, BusError | MessageTooLarge>
  readonly listen: <T>(
    subject: BroadcastSubject<T>,
    handler: (value: T) => void,
  ) => Effect.Effect<void, BusError, Scope.Scope>
  readonly state: <T>(bucket: StateBucket<T>) => Effect.Effect<StateStore<T>, BusError>
}

export class Bus extends Context.Tag('flowbus/Bus')<Bus, BusService>() {}

/** Header names the Bus adds to dead letters so an operator can tell why and from where. */
export const deadLetterHeaders = {
  reason: 'flowbus-deadletter-reason',
  subject: 'flowbus-deadletter-subject',
  group: 'flowbus-deadletter-group',
  deliveries: 'flowbus-deadletter-deliveries',
} as const

const retryDelayMs = (deliveryCount: number): number => Math.min(30_000, 250 * 2 ** Math.max(0, deliveryCount - 1))

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Builds the typed service over an already-connected transport. */
export const makeBus = (transport: Transport, config: BusConfig, metrics: MetricsService): BusService => {
  const streamSpecs = new Map<string, StreamSpec>()
  const provisioned = new Map<string, Promise<void>>()

  const memoised = (key: string, make: () => StreamSpec): StreamSpec => {
    let spec = streamSpecs.get(key)
    if (!spec) streamSpecs.set(key, (spec = make()))
    return spec
  }
  const streamSpec = (subject: StreamSubject<unknown>): StreamSpec =>
    memoised(`${subject.name}.v${subject.version}`, () => streamSpecFor(subject, config))
  const deadLetterSpec = (subject: StreamSubject<unknown>): StreamSpec =>
    memoised(`deadletter:${subject.name}.v${subject.version}`, () => deadLetterSpecFor(subject, config))
  const bucketSpec = (bucket: StateBucket<unknown>): BucketSpec => bucketSpecFor(bucket, config)

  // Streams are provisioned once per process on first use; provisioning is idempotent, so
  // every process doing it is harmless and nobody has to run a setup step first.
  const ensure = (name: string, run: () => Promise<void>): Effect.Effect<void, BusError> => {
    if (!config.provision) return Effect.void
    let pending = provisioned.get(name)
    if (!pending) {
      pending = run()
      pending.catch(() => provisioned.delete(name))
      provisioned.set(name, pending)
    }
    const promise = pending
    return Effect.tryPromise({
      try: () => promise,
      catch: (cause) => new BusError({ subject: name, operation: 'provision', cause }),
    })
  }
  const ensureStream = (spec: StreamSpec) => ensure(spec.base, () => transport.provision([spec], []))

  const encode = <T>(subject: string, codec: Codec<T>, value: T): Effect.Effect<Uint8Array, MessageTooLarge | BusError> =>
    Effect.try({
      try: () => codec.encode(value),
      catch: (cause) => new BusError({ subject, operation: `encode ${codec.typeName}`, cause }),
    }).pipe(
      Effect.filterOrFail(
        (bytes) => bytes.length <= transport.maxMessageBytes,
        (bytes) => new MessageTooLarge({ subject, size: bytes.length, limit: transport.maxMessageBytes }),
      ),
    )

  const publishBytes = (
    spec: StreamSpec,
    key: string,
    data: Uint8Array,
    headers: Readonly<Record<string, string>> | undefined,
  ): Effect.Effect<void, BusError | MessageTooLarge> =>
    ensureStream(spec).pipe(
      Effect.zipRight(
        Effect.tryPromise({
          try: () => transport.publish(spec, shardOf(key, spec.partitions), key, data, headers),
          catch: (cause) =>
            cause instanceof TransportMessageTooLarge
              ? new MessageTooLarge({ subject: spec.base, size: cause.size, limit: cause.limit })
              : new BusError({ subject: spec.base, operation: 'publish', cause }),
        }),
      ),
      Effect.tap(() =>
        Effect.sync(() => {
          metrics.bus.publishedMessages.inc({ subject: spec.base })
          metrics.bus.publishedBytes.inc({ subject: spec.base }, data.length)
        }),
      ),
      Effect.tapError((error) => Effect.sync(() => metrics.bus.publishErrors.inc({ subject: spec.base, reason: error._tag }))),
    )

  const publish: BusService['publish'] = (subject, key, value, headers) =>
    Effect.flatMap(encode(natsPlainSubject(subject), subject.codec, value), (data) =>
      publishBytes(streamSpec(subject), key, data, headers),
    )

  const subscribe: BusService['subscribe'] = <T, E, R>(
    subject: StreamSubject<T>,
    options: SubscribeOptions,
    handler: (message: BusMessage<T>) => Effect.Effect<void, E, R>,
  ) =>
    Effect.gen(function* () {
      const spec = streamSpec(subject)
      const deadSpec = deadLetterSpec(subject)
      yield* ensureStream(spec)
      yield* ensureStream(deadSpec)
      const runtime = yield* Effect.runtime<R>()
      const labels = { subject: spec.base, group: options.group }
      const manual = options.ack === 'manual'

      const deadLetter = async (delivery: Delivery, reason: string): Promise<void> => {
        await transport.publish(deadSpec, 0, delivery.key, delivery.data, {
          ...delivery.headers,
          [deadLetterHeaders.reason]: reason.slice(0, 1000),
          [deadLetterHeaders.subject]: spec.base,
          [deadLetterHeaders.group]: options.group,
          [deadLetterHeaders.deliveries]: String(delivery.deliveryCount),
        })
        await delivery.ack()
        metrics.bus.deadLettered.inc({ ...labels, reason: reason.startsWith('malformed') ? 'malformed' : 'failed' })
        metrics.bus.inFlight.dec(labels)
      }

      const onDelivery = async (delivery: Delivery): Promise<void> => {
        metrics.bus.deliveredMessages.inc(labels)
        metrics.bus.deliveredBytes.inc(labels, delivery.data.length)
        metrics.bus.inFlight.inc(labels)
        let value: T
        try {
          value = subject.codec.decode(delivery.data)
        } catch (cause) {
          // A message nobody can decode would block its shard forever: park it and go on.
          const error = new MalformedMessage({ subject: spec.base, typeName: subject.codec.typeName, cause })
          await deadLetter(delivery, error.message)
          return
        }
        let settled = false
        const settle = (): boolean => {
          if (settled) return false
          settled = true
          metrics.bus.inFlight.dec(labels)
          return true
        }
        const message: BusMessage<T> = {
          value,
          key: delivery.key,
          shard: delivery.shard,
          deliveryCount: delivery.deliveryCount,
          position: delivery.position,
          size: delivery.data.length,
          ack: Effect.promise(async () => {
            if (!settle()) return
            await delivery.ack()
            metrics.bus.acked.inc(labels)
          }),
          nak: (delayMs) =>
            Effect.promise(async () => {
              if (!settle()) return
              await delivery.nak(delayMs ?? retryDelayMs(delivery.deliveryCount))
              metrics.bus.nacked.inc(labels)
            }),
        }
        const stopTimer = metrics.bus.handlerSeconds.startTimer(labels)
        const exit = await Runtime.runPromiseExit(runtime)(handler(message))
        stopTimer()
        if (Exit.isSuccess(exit)) {
          if (!manual) await Effect.runPromise(message.ack)
          return
        }
        if (settled) return
        if (delivery.deliveryCount >= config.consumer.maxDeliveries) {
          settled = true
          await deadLetter(delivery, `failed ${delivery.deliveryCount} times: ${describe(exit.cause)}`)
        } else {
          await Effect.runPromise(message.nak())
        }
      }

      const subscription = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            transport.consume(
              spec,
              {
                group: options.group,
                maxInFlight: options.maxInFlight ?? config.consumer.maxInFlight,
                maxInFlightBytes: options.maxInFlightBytes ?? config.consumer.maxInFlightBytes,
                ackWaitMs: options.ackWaitMs ?? config.consumer.ackWait,
              },
              onDelivery,
            ),
          catch: (cause) => new BusError({ subject: spec.base, operation: 'subscribe', cause }),
        }),
        (sub) => Effect.promise(() => sub.close()),
      )
      return subscription
    }).pipe(Effect.asVoid)

  const request: BusService['request'] = (subject, value, timeoutMs = 5_000) => {
    const name = natsPlainSubject(subject)
    return Effect.gen(function* () {
      const data = yield* encode(name, subject.request, value)
      const reply = yield* Effect.tryPromise({
        try: () => transport.request(name, data, timeoutMs),
        catch: (cause) =>
          cause instanceof TransportTimeout
            ? new RequestTimeout({ subject: name, timeoutMs })
            : cause instanceof TransportNoResponders
              ? new NoResponders({ subject: name })
              : cause instanceof TransportMessageTooLarge
                ? new MessageTooLarge({ subject: name, size: cause.size, limit: cause.limit })
                : new BusError({ subject: name, operation: 'request', cause }),
      })
      return yield* Effect.try({
        try: () => subject.response.decode(reply),
        catch: (cause) => new MalformedMessage({ subject: name, typeName: subject.response.typeName, cause }),
      })
    }).pipe(
      Effect.tapBoth({
        onSuccess: () => Effect.sync(() => metrics.bus.requests.inc({ subject: name, outcome: 'ok' })),
        onFailure: (error) => Effect.sync(() => metrics.bus.requests.inc({ subject: name, outcome: error._tag })),
      }),
    )
  }

  const serve: BusService['serve'] = <Req, Res, E, R>(
    subject: RequestSubject<Req, Res>,
    handler: (request: Req) => Effect.Effect<Res, E, R>,
  ) =>
    Effect.gen(function* () {
      const name = natsPlainSubject(subject)
      const runtime = yield* Effect.runtime<R>()
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            transport.serve(name, async (data) => {
              const requestValue = subject.request.decode(data)
              const response = await Runtime.runPromise(runtime)(handler(requestValue))
              return subject.response.encode(response)
            }),
          catch: (cause) => new BusError({ subject: name, operation: 'serve', cause }),
        }),
        (closeable) => Effect.promise(() => closeable.close()),
      )
    })

  const broadcast: BusService['broadcast'] = (subject, value) => {
    const name = natsPlainSubject(subject)
    return Effect.flatMap(encode(name, subject.codec, value), (data) =>
      Effect.tryPromise({
        try: () => transport.broadcast(name, data),
        catch: (cause) => new BusError({ subject: name, operation: 'broadcast', cause }),
      }),
    )
  }

  const listen: BusService['listen'] = (subject, handler) => {
    const name = natsPlainSubject(subject)
    return Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          transport.listen(name, (data) => {
            let value
            try {
              value = subject.codec.decode(data)
            } catch {
              // Live fan-out is best effort: a bad message is counted and skipped.
              metrics.bus.deadLettered.inc({ subject: name, group: 'listen', reason: 'malformed' })
              return
            }
            handler(value)
          }),
        catch: (cause) => new BusError({ subject: name, operation: 'listen', cause }),
      }),
      (closeable) => Effect.promise(() => closeable.close()),
    ).pipe(Effect.asVoid)
  }

  const state: BusService['state'] = <T>(bucket: StateBucket<T>) => {
    const spec = bucketSpec(bucket)
    const name = natsPlainSubject(bucket)
    const fail = (operation: string) => (cause: unknown) => new BusError({ subject: name, operation, cause })
    return Effect.gen(function* () {
      yield* ensure(`bucket:${spec.natsBucket}`, () => transport.provision([], [spec]))
      const kv = yield* Effect.tryPromise({ try: () => transport.kv(spec), catch: fail('open bucket') })
      const decode = (data: Uint8Array) =>
        Effect.try({
          try: () => bucket.codec.decode(data),
          catch: (cause) => new MalformedMessage({ subject: name, typeName: bucket.codec.typeName, cause }),
        })
      const store: StateStore<T> = {
        get: (key) =>
          Effect.flatMap(Effect.tryPromise({ try: () => kv.get(key), catch: fail('get') }), (data) =>
            data === undefined ? Effect.succeed(undefined) : decode(data),
          ),
        put: (key, value) =>
          Effect.flatMap(encode(name, bucket.codec, value), (data) =>
            Effect.tryPromise({ try: () => kv.put(key, data), catch: fail('put') }),
          ),
        delete: (key) => Effect.tryPromise({ try: () => kv.delete(key), catch: fail('delete') }),
        keys: Effect.tryPromise({ try: () => kv.keys(), catch: fail('keys') }),
        watch: (handler) =>
          Effect.acquireRelease(
            Effect.tryPromise({
              try: () =>
                kv.watch((entry) => {
                  if (entry.value === undefined) return handler(entry.key, undefined)
                  try {
                    handler(entry.key, bucket.codec.decode(entry.value))
                  } catch {
                    metrics.bus.deadLettered.inc({ subject: name, group: 'watch', reason: 'malformed' })
                  }
                }),
              catch: fail('watch'),
            }),
            (closeable) => Effect.promise(() => closeable.close()),
          ).pipe(Effect.asVoid),
      }
      return store
    })
  }

  return { transportName: transport.name, publish, subscribe, request, serve, broadcast, listen, state }
}

/** Connects the configured transport. Kafka and NATS clients are only loaded when chosen. */
export const connectTransport = async (config: BusConfig): Promise<Transport> => {
  switch (config.transport) {
    case 'memory': {
      const { createMemoryTransport } = await import('./memory.js')
      return createMemoryTransport({ maxMessageBytes: config.maxMessageBytes })
    }
    case 'nats': {
      const { createNatsTransport } = await import('./nats.js')
      return createNatsTransport({ ...config.nats, servers: [...config.nats.servers], maxMessageBytes: config.maxMessageBytes })
    }
    case 'kafka': {
      const { createKafkaTransport } = await import('./kafka.js')
      return createKafkaTransport({
        ...config.kafka,
        brokers: [...config.kafka.brokers],
        maxMessageBytes: config.maxMessageBytes,
      })
    }
  }
}

/** The Bus of a process: one transport connection shared by every actor, closed last. */
export const BusLive = (config: BusConfig, transport?: Transport): Layer.Layer<Bus, BusError, Metrics> =>
  Layer.scoped(
    Bus,
    Effect.gen(function* () {
      const metrics = yield* Metrics
      const connected = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => (transport ? Promise.resolve(transport) : connectTransport(config)),
          catch: (cause) => new BusError({ subject: '*', operation: `connect (${config.transport})`, cause }),
        }),
        (t) => (transport ? Effect.void : Effect.promise(() => t.close())),
      )
      return makeBus(connected, config, metrics)
    }),
  )
