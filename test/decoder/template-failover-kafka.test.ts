// Template state failover between two decoder processes on Kafka (templates in a compacted topic).
import { Kafka, logLevel } from 'kafkajs'
import { describe, it } from 'vitest'
import { kafkaUnavailable, startKafka, type KafkaBroker } from '../src/harness/kafka.js'
import { serviceOrSkip } from '../src/harness/process.js'
import { templateFailover } from './failover.js'

const unavailable = await kafkaUnavailable()

describe.skipIf(unavailable !== undefined)('decoder template failover on Kafka', () => {
  const kafka = serviceOrSkip<KafkaBroker>('kafka', () => startKafka())

  it('a new decoder process decodes data with the templates a killed one stored', { timeout: 150_000 }, async () => {
    const brokers = kafka.get().brokers
    const admin = new Kafka({ brokers, clientId: 'failover-test', logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      await templateFailover({
        busYaml: `bus:\n  transport: kafka\n  partitions: 2\n  kafka:\n    brokers: [${brokers.join(', ')}]`,
        busEnv: { FLOWBUS_BUS__TRANSPORT: 'kafka', FLOWBUS_BUS__PARTITIONS: '2', FLOWBUS_BUS__KAFKA__BROKERS: `[${brokers.join(', ')}]` },
        // The decoders' consumer group committed an offset past the template datagram.
        rawAcknowledged: async () => {
          const offsets = await admin.fetchOffsets({ groupId: 'decoder--flowbus-flows-raw-v1', topics: ['flowbus-flows-raw-v1'] })
          return offsets.some((t) => t.partitions.some((p) => Number(p.offset) >= 1))
        },
      })
    } finally {
      await admin.disconnect()
    }
  })
})
