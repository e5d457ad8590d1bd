// The clickhouse-writer section: consumer group, how many bus messages are held and inserted at
// once, retry pacing. Where ClickHouse is and which columns it stores come from the shared `clickhouse` section.
import { ByteSize, Duration } from '@flowbus/runtime'
import { Schema } from 'effect'

export const WriterConfig = Schema.Struct({
  group: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => 'clickhouse-writer' }).annotations({
    description: 'consumer group: writers sharing it share the shards of flows.enriched and counters.interfaces',
  }),
  concurrency: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 64)), { default: () => 2 }).annotations({
    description: 'inserts running at once, one bus message each (the engine overlaps them with encoding)',
  }),
  batchRows: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(0, 1_048_576)), { default: () => 0 }).annotations({
    description:
      '0: one insert per bus message, stored exactly once across crashes. Else messages already waiting are inserted together up to this many rows: fewer, larger inserts, but a crash may store the bus redelivery window (Kafka: about a second) twice',
  }),
  maxInFlight: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.positive()), { default: () => 32 }).annotations({
    description: 'bus messages delivered and not yet stored, at most: the queue in front of the inserts',
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
