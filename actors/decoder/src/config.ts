// The decoder's configuration section: its consumer group, output message size, the optional
// per-exporter rate limit, template state on the bus, and the bounds of data held for templates.
import { Duration } from '@flowbus/runtime'
import { Schema } from 'effect'

const positiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())

export const DecoderConfig = Schema.Struct({
  group: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => 'decoder' }).annotations({
    description: 'consumer group on flows.raw: decoder processes with the same group share the exporters',
  }),
  maxFlowsPerMessage: Schema.optionalWith(positiveInt.pipe(Schema.lessThanOrEqualTo(100_000)), { default: () => 2000 }).annotations({
    description: 'a flows.decoded message is closed once it holds this many flows (≈ 90 bytes each on the wire)',
  }),
  rateLimit: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.nonNegative()), { default: () => 0 }).annotations({
    description:
      'per-exporter limit in flows/s; above it a fraction of flows is kept and their SamplingRate scaled so totals stay right. 0 disables it',
  }),
  templateState: Schema.optionalWith(Schema.Boolean, { default: () => true }).annotations({
    description:
      'share NetFlow v9/IPFIX templates and options data (sampling rates, interface and VRF names) through the templates and exporter.options buckets of the bus, so a restarted or added decoder decodes data without waiting for the exporter to resend them',
  }),
  holdMaxAge: Schema.optionalWith(Duration, { default: () => 30_000 }).annotations({
    description: 'data arriving before its template is held this long, then counted as missing-template and dropped',
  }),
  holdMaxDataSets: Schema.optionalWith(positiveInt, { default: () => 1000 }).annotations({
    description: 'data sets held for templates at most, all exporters together; beyond, new data is counted as missing-template',
  }),
})

export type DecoderConfig = Schema.Schema.Type<typeof DecoderConfig>
