// Enricher shards as separate processes on Kafka (consumer group): 2 shards, a third joins, one
// is SIGKILLed; every flow enriched, duplicates byte-identical, metadata never crosses exporters.
import { describe, it } from 'vitest'
import { type KafkaBroker, kafkaUnavailable, startKafka } from '../src/harness/kafka.js'
import { serviceOrSkip } from '../src/harness/process.js'
import { shardingScenario } from './sharding.js'

const skip = await kafkaUnavailable()

describe.skipIf(skip !== undefined)('enricher shards on Kafka', () => {
  const kafka = serviceOrSkip<KafkaBroker>('kafka', () => startKafka())

  it('scale 2 → 3 then lose one to SIGKILL: every flow enriched exactly once after deduplication', { timeout: 300_000 }, async () => {
    await shardingScenario({ bus: { transport: 'kafka', partitions: 8, kafka: { brokers: kafka.get().brokers } } })
  })
})
