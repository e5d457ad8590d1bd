// The enricher's JSON export as a Kafka topic read by a plain kafkajs consumer that knows nothing
// of flowbus: JSON lines, one object per flow keyed by the column names, message key = exporter.
import { type FlowRow, flowsDecoded } from '@flowbus/bus-schemas'
import { type HttpEndpoint, connectTransport, makeBus, makeMetrics, runActors } from '@flowbus/runtime'
import { Effect, Fiber } from 'effect'
import kafkajs from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { enricherActor } from '../../actors/enricher/src/actor.js'
import { decodedBatch } from '../../actors/enricher/test/flows.js'
import { resolveConfig, run, waitFor } from '../../actors/enricher/test/harness.js'
import { type KafkaBroker, kafkaUnavailable, startKafka } from '../src/harness/kafka.js'
import { serviceOrSkip } from '../src/harness/process.js'

const skip = await kafkaUnavailable()

describe.skipIf(skip !== undefined)('JSON export on Kafka', () => {
  const kafka = serviceOrSkip<KafkaBroker>('kafka', () => startKafka())

  it('reaches a plain Kafka consumer on flowbus-<subject>-v1, keyed by exporter', { timeout: 180_000 }, async () => {
    const brokers = kafka.get().brokers
    const config = resolveConfig({
      bus: { transport: 'kafka', partitions: 2, kafka: { brokers } },
      http: { listen: '127.0.0.1:0' },
      log: { level: 'warning' },
      enricher: { geoip: { embedded: false }, export: { enabled: true, subject: 'netobserv.flows' }, metadata: { exporters: [{ subnet: '192.0.2.0/24', name: 'edge1' }] } },
    })
    let endpoint: HttpEndpoint | undefined
    const fiber = Effect.runFork(runActors({ actors: [enricherActor], config, onReady: (e) => (endpoint = e) }))
    const transport = await connectTransport(config.bus)
    const client = new kafkajs.Kafka({ brokers, clientId: 'external', logLevel: kafkajs.logLevel.NOTHING })
    const admin = client.admin()
    const consumer = client.consumer({ groupId: 'external-json-reader' })
    try {
      await waitFor(() => 'the enricher', () => endpoint !== undefined, 60_000)
      const bus = makeBus(transport, config.bus, makeMetrics())
      await run(bus.publish(flowsDecoded, '192.0.2.1', decodedBatch('192.0.2.1', 0, 300)))
      await admin.connect()
      await waitFor(() => 'the export topic', async () => (await admin.listTopics()).includes('flowbus-netobserv-flows-v1'), 60_000)
      const received: FlowRow[] = []
      const keys = new Set<string>()
      await consumer.connect()
      await consumer.subscribe({ topic: 'flowbus-netobserv-flows-v1', fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ message }) => {
          keys.add(message.key?.toString() ?? '')
          for (const line of (message.value?.toString() ?? '').split('\n')) if (line) received.push(JSON.parse(line) as FlowRow)
        },
      })
      await waitFor(() => `300 exported flows, got ${received.length}`, () => received.length >= 300, 90_000)
      expect([...keys]).toEqual(['192.0.2.1'])
      expect(received[0]).toMatchObject({ ExporterAddress: '192.0.2.1', ExporterName: 'edge1', SrcAddr: '10.0.0.0', DstAddr: '198.51.100.0', Bytes: 0 })
      expect(received.map((r) => r.Bytes)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    } finally {
      await consumer.disconnect()
      await admin.disconnect()
      await run(Fiber.interrupt(fiber))
      await transport.close()
    }
  })
})
