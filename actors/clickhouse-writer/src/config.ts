// The clickhouse-writer section: consumer group, how many bus messages are held and inserted at
// once, retry pacing. Where ClickHouse is and which columns it stores come from the shared `clickhouse` section.
import { ByteSize, Duration } from '@flowbus/runtime'
import { Schema } from 'effect'

export const WriterConfig = Schema.Struct({
  group: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => 'clickhouse-writer' }).annotations({
    description: 'consumer group: writers sharing it share the shards of flows.enriched and counters.interfaces',
  }),
  concurrency: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 64)), { default: () => 2 }).annotations({
    description: 'inserts running at once (the engine overlaps them with encoding and grouping)',
  }),
  batchRows: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(0, 4_194_304)), { default: () => 100_000 }).annotations({
    description:
      'rows per insert: messages of one shard are grouped until they hold this many rows (0 or 1: one message per insert); each group is recorded by bus positions before its insert, so it stays exactly once across crashes',
  }),
  batchTime: Schema.optionalWith(Duration, { default: () => 5_000 }).annotations({
    description:
      'longest a message waits for its group to fill before the group is inserted anyway: with groups per shard, at most one insert per shard per batchTime (each insert has a fixed cost of tens of milliseconds of CPU)',
  }),
  batchRecordRetention: Schema.optionalWith(Duration, { default: () => 600_000 }).annotations({
    description:
      'how long records of committed groups stay in the writer.batches bucket: longer than the bus may take to forget an acknowledged message (Kafka offset commits, NATS ack wait)',
  }),
  regroupWait: Schema.optionalWith(Duration, { default: () => 120_000 }).annotations({
    description:
      'how long a recorded, uncommitted group waits for all its messages to come back before what came back is inserted as a new group (only when the bus lost some of them)',
  }),
  maxInFlight: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.positive()), { default: () => 1024 }).annotations({
    description: 'bus messages delivered and not yet stored, at most: the groups being filled and the inserts under way',
  }),
  maxInFlightBytes: Schema.optionalWith(ByteSize, { default: () => 256 * 1024 * 1024 }).annotations({
    description: 'bytes of bus messages held before their insert is acknowledged, at most',
  }),
  retryMin: Schema.optionalWith(Duration, { default: () => 250 }).annotations({
    description: 'first wait before retrying an insert ClickHouse could not take (doubled each time)',
  }),
  retryMax: Schema.optionalWith(Duration, { default: () => 30_000 }).annotations({
    description: 'longest wait between insert retries',
  }),
  spoolDirectory: Schema.optionalWith(Schema.String, { default: () => '' }).annotations({
    description: 'embedded mode: where insert blocks are staged for the engine to read (default: /dev/shm, else the system temp directory)',
  }),
})
export type WriterConfig = Schema.Schema.Type<typeof WriterConfig>
