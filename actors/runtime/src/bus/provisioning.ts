// How catalogue subjects map to transport streams and buckets under a bus configuration,
// and provisioning all of them at once (`flowbus provision`, the orchestrator).
import {
  type AnySubject,
  type StateBucket,
  type StreamSubject,
  deadLetterName,
  kafkaTopic,
  natsBucketName,
  natsPlainSubject,
  natsStreamName,
} from '@flowbus/bus-schemas'
import type { BusConfig } from '../config/sections.js'
import type { BucketSpec, StreamSpec, Transport } from './transport.js'

type StreamLike = Pick<StreamSubject<unknown>, 'name' | 'version' | 'retention'>

/** The stream of a subject: shards and retention from the configuration. */
export const streamSpecFor = (subject: StreamLike, config: BusConfig): StreamSpec => {
  const retention = config.retention[subject.retention]
  const named = subject as AnySubject
  return {
    base: natsPlainSubject(named),
    natsStream: natsStreamName(named),
    kafkaTopic: kafkaTopic(named),
    // Dead letters are few and read by people: one shard keeps them in arrival order.
    partitions: subject.retention === 'deadletter' ? 1 : config.partitions,
    replicas: config.replicas,
    maxAgeSeconds: Math.round(retention.maxAge / 1000),
    maxBytes: retention.maxBytes,
  }
}

/** The dead-letter stream of a stream subject: `deadletter.<name>`, same version. */
export const deadLetterSpecFor = (subject: StreamLike, config: BusConfig): StreamSpec =>
  streamSpecFor({ name: deadLetterName(subject as AnySubject), version: subject.version, retention: 'deadletter' }, config)

export const bucketSpecFor = (bucket: Pick<StateBucket<unknown>, 'name' | 'version'>, config: BusConfig): BucketSpec => ({
  natsBucket: natsBucketName(bucket as AnySubject),
  kafkaTopic: kafkaTopic(bucket as AnySubject),
  replicas: config.replicas,
})

export interface ProvisioningPlan {
  readonly streams: readonly StreamSpec[]
  readonly buckets: readonly BucketSpec[]
}

/** Every stream (with its dead-letter stream) and bucket of the given subjects. */
export const provisioningPlan = (subjects: readonly AnySubject[], config: BusConfig): ProvisioningPlan => ({
  streams: subjects.flatMap((s) => (s.kind === 'stream' ? [streamSpecFor(s, config), deadLetterSpecFor(s, config)] : [])),
  buckets: subjects.flatMap((s) => (s.kind === 'state' ? [bucketSpecFor(s, config)] : [])),
})

/** Creates or updates everything in the plan; idempotent. */
export const provisionAll = async (transport: Transport, plan: ProvisioningPlan): Promise<void> => {
  await transport.provision(plan.streams, plan.buckets)
}
