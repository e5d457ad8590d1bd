// The configuration sections every flowbus process shares: the bus, the HTTP endpoint for
// metrics and health, and logging. Actor sections are added by each actor's definition.
import { Schema } from 'effect'
import { ByteSize, Duration } from './units.js'

/** A struct whose every key has a default, so the whole section may be omitted. */
const withDefaults = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.optionalWith(schema, { default: () => Schema.decodeUnknownSync(schema)({}) })

const Retention = Schema.Struct({
  maxAge: Schema.optionalWith(Duration, { default: () => 0 }).annotations({
    description: 'messages older than this are discarded; 0 keeps them forever',
  }),
  maxBytes: Schema.optionalWith(ByteSize, { default: () => 0 }).annotations({
    description: 'per-stream size cap, oldest messages discarded first; 0 is unlimited',
  }),
})

const retentionDefault = (maxAge: number, maxBytes: number) =>
  Schema.optionalWith(Retention, { default: () => ({ maxAge, maxBytes }) })

export const NatsSection = Schema.Struct({
  servers: Schema.optionalWith(Schema.Array(Schema.String), { default: () => ['nats://127.0.0.1:4222'] }).annotations({
    description: 'NATS server URLs',
  }),
  user: Schema.optional(Schema.String),
  pass: Schema.optional(Schema.String),
  token: Schema.optional(Schema.String),
})

export const KafkaSection = Schema.Struct({
  brokers: Schema.optionalWith(Schema.Array(Schema.String), { default: () => ['127.0.0.1:9092'] }).annotations({
    description: 'Kafka bootstrap brokers as host:port',
  }),
  clientId: Schema.optionalWith(Schema.String, { default: () => 'flowbus' }),
})

export const ConsumerSection = Schema.Struct({
  maxInFlight: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.positive()), { default: () => 64 }).annotations({
    description: 'messages delivered to one consumer and not yet acknowledged, at most',
  }),
  maxInFlightBytes: Schema.optionalWith(ByteSize, { default: () => 64 * 1024 * 1024 }).annotations({
    description: 'bytes delivered to one consumer and not yet acknowledged, at most',
  }),
  ackWait: Schema.optionalWith(Duration, { default: () => 30_000 }).annotations({
    description: 'a message not acknowledged within this time is delivered again',
  }),
  maxDeliveries: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.positive()), { default: () => 5 }).annotations({
    description: 'a message that failed this many times is moved to its dead-letter subject',
  }),
})

export const BusSection = Schema.Struct({
  transport: Schema.optionalWith(Schema.Literal('memory', 'nats', 'kafka'), { default: () => 'memory' as const }).annotations({
    description: 'memory (one process), nats (NATS JetStream) or kafka',
  }),
  partitions: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 1024)), { default: () => 8 }).annotations({
    description: 'shards per flow stream (JetStream subjects / Kafka partitions); bounds how many consumers share a stream',
  }),
  replicas: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 5)), { default: () => 1 }),
  maxMessageBytes: Schema.optionalWith(ByteSize, { default: () => 1024 * 1024 }).annotations({
    description: 'largest bus message; must not exceed the broker limit (NATS max_payload, Kafka message.max.bytes)',
  }),
  provision: Schema.optionalWith(Schema.Boolean, { default: () => true }).annotations({
    description: 'create or update streams, topics and buckets at start (idempotent)',
  }),
  retention: withDefaults(
    Schema.Struct({
      flows: retentionDefault(6 * 3_600_000, 10 * 1024 ** 3),
      metadata: retentionDefault(7 * 86_400_000, 1024 ** 3),
      deadletter: retentionDefault(7 * 86_400_000, 1024 ** 3),
    }),
  ),
  consumer: withDefaults(ConsumerSection),
  nats: withDefaults(NatsSection),
  kafka: withDefaults(KafkaSection),
})
export type BusConfig = Schema.Schema.Type<typeof BusSection>

export const HttpSection = Schema.Struct({
  listen: Schema.optionalWith(Schema.String, { default: () => '127.0.0.1:8080' }).annotations({
    description: 'host:port serving /metrics, /healthz and /readyz; an empty string disables it',
  }),
})
export type HttpConfig = Schema.Schema.Type<typeof HttpSection>

export const LogSection = Schema.Struct({
  level: Schema.optionalWith(Schema.Literal('debug', 'info', 'warning', 'error'), { default: () => 'info' as const }),
  format: Schema.optionalWith(Schema.Literal('auto', 'json', 'pretty'), { default: () => 'auto' as const }).annotations({
    description: 'auto prints JSON lines unless stderr is a terminal',
  }),
})
export type LogConfig = Schema.Schema.Type<typeof LogSection>

/** The shared sections, each defaulted when absent. */
export const sharedSections = {
  bus: withDefaults(BusSection),
  http: withDefaults(HttpSection),
  log: withDefaults(LogSection),
}

export { withDefaults }
