// Enricher shards as separate processes on NATS JetStream: 2 shards, a third joins, one is
// SIGKILLed; every flow enriched, duplicates byte-identical, metadata never crosses exporters.
import { describe, it } from 'vitest'
import { ensureNatsServer, startNats, type NatsServer } from '../src/harness/nats.js'
import { serviceOrSkip, skipReason } from '../src/harness/process.js'
import { shardingScenario } from './sharding.js'

const skip = await skipReason('nats-server', ensureNatsServer)

describe.skipIf(skip !== undefined)('enricher shards on NATS', () => {
  const nats = serviceOrSkip<NatsServer>('nats-server', () => startNats())

  it('scale 2 → 3 then lose one to SIGKILL: every flow enriched exactly once after deduplication', { timeout: 300_000 }, async () => {
    await shardingScenario({ bus: { transport: 'nats', partitions: 8, nats: { servers: [nats.get().url] } } })
  })
})
