// What a bus subject is: a name, a schema version and the one message type it carries.
// Every concrete name (NATS subject, JetStream stream, Kafka topic) is derived here so no
// actor or transport spells a subject by hand.

/** Turns one message type into bytes and back; decode throws on malformed input. */
export interface Codec<T> {
  /** Protobuf message name, e.g. `flowbus.v1.FlowBatch`: shown in errors and dead letters. */
  readonly typeName: string
  encode(value: T): Uint8Array
  decode(bytes: Uint8Array): T
}

/**
 * How long a stream keeps messages, chosen per class in the bus configuration:
 * `flows` (high volume, short), `metadata` (small, longer), `deadletter` (kept for inspection).
 */
export type RetentionClass = 'flows' | 'metadata' | 'deadletter'

declare const messageType: unique symbol

interface SubjectBase {
  /** Dotted base name without version, e.g. `flows.decoded`. */
  readonly name: string
  /** Schema version: a breaking change to the message bumps it and both run side by side. */
  readonly version: number
  readonly description: string
}

/** Durable, partitioned, acknowledged stream (JetStream stream / Kafka topic). */
export interface StreamSubject<T> extends SubjectBase {
  readonly kind: 'stream'
  readonly codec: Codec<T>
  /** What the partition key is, in words (e.g. "exporter address"): same key, same shard, in order. */
  readonly partitionKey: string
  readonly retention: RetentionClass
  /** Phantom: makes subjects of different message types incompatible at compile time. */
  readonly [messageType]?: T
}

/** Request/reply: one request message type, one response message type. */
export interface RequestSubject<Req, Res> extends SubjectBase {
  readonly kind: 'request'
  readonly request: Codec<Req>
  readonly response: Codec<Res>
  readonly [messageType]?: [Req, Res]
}

/** Non-durable live fan-out: every listener gets every message published while it listens. */
export interface BroadcastSubject<T> extends SubjectBase {
  readonly kind: 'broadcast'
  readonly codec: Codec<T>
  readonly [messageType]?: T
}

/** Key/value state bucket with watch (NATS KV / compacted Kafka topic). */
export interface StateBucket<T> extends SubjectBase {
  readonly kind: 'state'
  readonly codec: Codec<T>
  readonly [messageType]?: T
}

export type AnySubject =
  | StreamSubject<any>
  | RequestSubject<any, any>
  | BroadcastSubject<any>
  | StateBucket<any>

export type MessageOf<S> = S extends StreamSubject<infer T>
  ? T
  : S extends BroadcastSubject<infer T>
    ? T
    : S extends StateBucket<infer T>
      ? T
      : never

const versioned = (s: SubjectBase): string => `${s.name}.v${s.version}`

/** NATS subject of one shard of a stream: `flows.decoded.v1.3`. */
export const natsSubject = (s: SubjectBase, shard: number): string => `${versioned(s)}.${shard}`

/** NATS subject pattern matching every shard: `flows.decoded.v1.*`. */
export const natsSubjectWildcard = (s: SubjectBase): string => `${versioned(s)}.*`

/** Plain (unsharded) NATS subject for request/reply and broadcast: `routing.lookup.v1`. */
export const natsPlainSubject = (s: SubjectBase): string => versioned(s)

/** JetStream stream name: `FLOWBUS_FLOWS_DECODED_V1`. */
export const natsStreamName = (s: SubjectBase): string =>
  `FLOWBUS_${s.name.replace(/[.-]/g, '_').toUpperCase()}_V${s.version}`

/** NATS KV bucket name: `flowbus_metadata_interfaces_v1`. */
export const natsBucketName = (s: SubjectBase): string =>
  `flowbus_${s.name.replace(/[.-]/g, '_')}_v${s.version}`

/** Kafka topic: `flowbus-flows-decoded-v1`. */
export const kafkaTopic = (s: SubjectBase): string =>
  `flowbus-${s.name.replace(/\./g, '-')}-v${s.version}`

/** The dead-letter subject of a stream: `deadletter.flows.decoded`, same version. */
export const deadLetterName = (s: SubjectBase): string => `deadletter.${s.name}`

/**
 * The same stream carrying messages already encoded: for producers that write the wire bytes
 * themselves (the receiver's socket threads), so they are published without a decode/encode
 * round. Names, retention and partitioning are the subject's own; only the codec passes bytes.
 */
export const preEncoded = <T>(subject: StreamSubject<T>): StreamSubject<Uint8Array> => ({
  kind: 'stream',
  name: subject.name,
  version: subject.version,
  description: subject.description,
  partitionKey: subject.partitionKey,
  retention: subject.retention,
  codec: { typeName: subject.codec.typeName, encode: (bytes) => bytes, decode: (bytes) => bytes },
})
