// The clickhouse-writer section: consumer group, how flows are grouped into inserts, retry
// pacing. Where ClickHouse is and which columns it stores come from the shared `clickhouse` section.
import { ByteSize, Duration } from '@flowbus/runtime'
import { Schema } from 'effect'

export const WriterConfig = Schema.Struct({
  group: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => 'clickhouse-writer' }).annotations({
    description: 'consumer group: writers sharing it share the shards of flows.enriched and counters.interfaces',
  }),
  maxRows: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.between(1, 1_048_576)), { default: () => 100_000 }).annotations({
    description: "an insert is sent once a shard's pending flows reach this many rows (larger inserts make fewer parts)",
  }),
  maxDelay: Schema.optionalWith(Duration, { default: () => 2_000 }).annotations({
    description: 'an insert is sent at the latest this long after its first flow arrived',
  }),
  maxInFlight: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.positive()), { default: () => 512 }).annotations({
    description: 'bus messages held before their insert is acknowledged, at most (enough for maxRows in every owned shard)',
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
