// The compose topology as separate processes on Kafka: the same scenario as on NATS.
import { describe, it } from 'vitest'
import { type KafkaBroker, kafkaUnavailable, startKafka } from '../src/harness/kafka.js'
import { serviceOrSkip } from '../src/harness/process.js'
import { pipelineScenario } from './pipeline.js'

const skip = await kafkaUnavailable()

describe.skipIf(skip !== undefined)('multi-process topology on Kafka', () => {
  const kafka = serviceOrSkip<KafkaBroker>('kafka', () => startKafka())

  it('stores every flow enriched across processes; crashes of decoder, enricher shard and writer lose none', { timeout: 240_000 }, async () => {
    await pipelineScenario({ transport: 'kafka', partitions: 4, kafka: { brokers: kafka.get().brokers } })
  })
})
