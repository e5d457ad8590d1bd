// The enricher's JSON export read by a plain NATS client that knows nothing of flowbus: one
// object per flow, keys = the column names, as `flowbus decode` prints them.
import { type FlowRow, flowsDecoded } from '@flowbus/bus-schemas'
import { type HttpEndpoint, makeBus, makeMetrics, runActors } from '@flowbus/runtime'
import { connect } from '@nats-io/transport-node'
import { Effect, Fiber } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNatsTransport } from '../../actors/runtime/src/bus/nats.js'
import { enricherActor } from '../../actors/enricher/src/actor.js'
import { decodedBatch } from '../../actors/enricher/test/flows.js'
import { resolveConfig, run, waitFor } from '../../actors/enricher/test/harness.js'
import { ensureNatsServer, startNats, type NatsServer } from '../src/harness/nats.js'
import { skipReason } from '../src/harness/process.js'

const natsSkip = await skipReason('nats-server', ensureNatsServer)

describe.skipIf(natsSkip !== undefined)('JSON export on NATS', () => {
  let nats: NatsServer
  beforeAll(async () => {
    nats = await startNats()
  })
  afterAll(async () => {
    await nats?.stop()
  })

  it('reaches a plain NATS subscriber on <subject>.v1 with the column names as keys', async () => {
    const config = resolveConfig({
      bus: { transport: 'nats', nats: { servers: [nats.url] } },
      http: { listen: '127.0.0.1:0' },
      log: { level: 'warning' },
      enricher: { geoip: { embedded: false }, export: { enabled: true, subject: 'netobserv.flows', delivery: 'broadcast' }, metadata: { exporters: [{ subnet: '192.0.2.0/24', name: 'edge1' }] } },
    })
    const external = await connect({ servers: nats.url })
    const received: FlowRow[] = []
    external.subscribe('netobserv.flows.v1', {
      callback: (_error, msg) => {
        for (const line of new TextDecoder().decode(msg.data).split('\n')) if (line) received.push(JSON.parse(line) as FlowRow)
      },
    })
    await external.flush()
    let endpoint: HttpEndpoint | undefined
    const fiber = Effect.runFork(runActors({ actors: [enricherActor], config, onReady: (e) => (endpoint = e) }))
    const transport = await createNatsTransport({ servers: [nats.url], maxMessageBytes: config.bus.maxMessageBytes })
    try {
      await waitFor(() => 'the enricher', () => endpoint !== undefined)
      const bus = makeBus(transport, config.bus, makeMetrics())
      const batch = decodedBatch('192.0.2.1', 0, 300)
      await run(bus.publish(flowsDecoded, '192.0.2.1', batch))
      await waitFor(() => `300 exported flows, got ${received.length}`, () => received.length >= 300)
      expect(received[0]).toMatchObject({ ExporterAddress: '192.0.2.1', ExporterName: 'edge1', SrcAddr: '10.0.0.0', DstAddr: '198.51.100.0', Bytes: 0, InIfName: '1' })
      expect(received.map((r) => r.Bytes)).toEqual(Array.from({ length: 300 }, (_, i) => i))
    } finally {
      await run(Fiber.interrupt(fiber))
      await transport.close()
      await external.close()
    }
  })
})
