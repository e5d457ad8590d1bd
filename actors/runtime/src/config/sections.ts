// The configuration sections every flowbus process shares: the bus, the HTTP endpoint for
// metrics and health, logging and ClickHouse. Actor sections are added by each actor's definition.
import { Context, Layer, Schema } from 'effect'
import { DEFAULT_PROJECTED_DIMENSIONS, columnSelectionProblems, optionalGroups, projectionProblems } from '../storage/schema.js'
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

const day = 86_400_000

export const ClickHouseSection = Schema.Struct({
  mode: Schema.optionalWith(Schema.Literal('embedded', 'server'), { default: () => 'embedded' as const }).annotations({
    description: 'embedded: the chDB engine inside this process (one per process); server: a ClickHouse server over HTTP(S)',
  }),
  path: Schema.optionalWith(Schema.String, { default: () => './data/clickhouse' }).annotations({
    description: 'embedded mode: data directory of the in-process engine',
  }),
  url: Schema.optionalWith(Schema.String, { default: () => 'http://127.0.0.1:8123' }).annotations({
    description: 'server mode: HTTP interface of the ClickHouse server (https:// for TLS)',
  }),
  username: Schema.optionalWith(Schema.String, { default: () => 'default' }),
  password: Schema.optional(Schema.String),
  database: Schema.optionalWith(Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/)), { default: () => 'flowbus' }).annotations({
    description: 'database holding the flowbus tables (letters, digits and _)',
  }),
  tls: withDefaults(
    Schema.Struct({
      ca: Schema.optional(Schema.String).annotations({ description: 'PEM file of the CA that signed the server certificate (else the system CAs and NODE_EXTRA_CA_CERTS)' }),
      cert: Schema.optional(Schema.String).annotations({ description: 'PEM client certificate file, for mutual TLS (with key)' }),
      key: Schema.optional(Schema.String).annotations({ description: 'PEM client private key file, for mutual TLS (with cert)' }),
    }),
  ).annotations({ description: 'server mode with an https:// url' }),
  requestTimeout: Schema.optionalWith(Duration, { default: () => 60_000 }).annotations({
    description: 'a ClickHouse request (query, insert, migration step) taking longer fails and is retried by its caller',
  }),
  columns: withDefaults(
    Schema.Struct({
      enable: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }).annotations({
        description: `optional column groups (${Object.keys(optionalGroups).join(', ')}) or single optional columns to store`,
      }),
      disable: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }).annotations({
        description: 'columns or groups not to store (see docs/columns.md)',
      }),
    }).pipe(
      Schema.filter((selection) => {
        const problems = columnSelectionProblems(selection)
        return problems.length === 0 ? true : problems.join('; ')
      }),
    ),
  ).annotations({ description: 'which flow columns are stored; the orchestrator migrates tables in place when this changes' }),
  projections: Schema.optionalWith(
    Schema.Array(Schema.String).pipe(
      Schema.filter((names) => {
        const problems = projectionProblems(names)
        return problems.length === 0 ? true : problems.join('; ')
      }),
    ),
    { default: () => [...DEFAULT_PROJECTED_DIMENSIONS] },
  ).annotations({
    description:
      'dimensions the aggregated tables also sum per interval in a projection each: fast series and top-N by one of them; each costs insert work (docs/storage.md)',
  }),
  retention: withDefaults(
    Schema.Struct({
      flows: Schema.optionalWith(Duration, { default: () => 15 * day }).annotations({ description: 'raw flows; 0 keeps them forever' }),
      flows1m: Schema.optionalWith(Duration, { default: () => 7 * day }).annotations({ description: 'flows_1m0s (1-minute sums)' }),
      flows5m: Schema.optionalWith(Duration, { default: () => 90 * day }).annotations({ description: 'flows_5m0s (5-minute sums)' }),
      flows1h: Schema.optionalWith(Duration, { default: () => 730 * day }).annotations({ description: 'flows_1h0m0s (1-hour sums)' }),
      counters: Schema.optionalWith(Duration, { default: () => 90 * day }).annotations({ description: 'interface counter samples' }),
    }),
  ).annotations({ description: 'how long each table keeps rows (ClickHouse TTL, whole days are cheapest)' }),
})
export type ClickHouseConfig = Schema.Schema.Type<typeof ClickHouseSection>

/** The shared sections, each defaulted when absent. */
export const sharedSections = {
  bus: withDefaults(BusSection),
  http: withDefaults(HttpSection),
  log: withDefaults(LogSection),
  clickhouse: withDefaults(ClickHouseSection),
}

export { withDefaults }

/** The resolved shared sections, for actors that need more than their own section (storage, provisioning). */
export interface SharedConfig {
  readonly bus: BusConfig
  readonly clickhouse: ClickHouseConfig
}

/** Provided by the process running the actors (see process.ts) so actors can read the shared sections. */
export class SharedSections extends Context.Tag('flowbus/SharedSections')<SharedSections, SharedConfig>() {}

/** The SharedSections service from a resolved configuration, for the process running actors. */
export const SharedSectionsLive = (config: SharedConfig): Layer.Layer<SharedSections> =>
  Layer.succeed(SharedSections, { bus: config.bus, clickhouse: config.clickhouse })
