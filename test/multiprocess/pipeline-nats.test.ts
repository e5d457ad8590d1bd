// The compose topology as separate processes on NATS JetStream: flows reach ClickHouse enriched
// from SNMP, GeoIP and BMP, and SIGKILLing the decoder, an enricher shard or the writer loses none.
import { describe, it } from 'vitest'
import { type NatsServer, ensureNatsServer, startNats } from '../src/harness/nats.js'
import { serviceOrSkip, skipReason } from '../src/harness/process.js'
import { pipelineScenario } from './pipeline.js'

const skip = await skipReason('nats-server', ensureNatsServer)

describe.skipIf(skip !== undefined)('multi-process topology on NATS JetStream', () => {
  const nats = serviceOrSkip<NatsServer>('nats-server', () => startNats())

  it('stores every flow enriched across processes; crashes of decoder, enricher shard and writer lose none', { timeout: 240_000 }, async () => {
    await pipelineScenario({ transport: 'nats', partitions: 4, nats: { servers: [nats.get().url] } })
  })
})
