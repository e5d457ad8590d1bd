// Bus provisioning by the orchestrator at start, on a real nats-server: every catalogue stream
// exists afterwards with the configured shards, without anyone running `flowbus provision`.
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { BusLive, BusSection, ClickHouseSection, HealthLive, HttpServerLive, MetricsLive, SharedSectionsLive, actorLayer } from '@flowbus/runtime'
import { Effect, Exit, Layer, LogLevel, Logger, Schema, Scope } from 'effect'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NatsServer, ensureNatsServer, startNats } from '../../../test/src/harness/nats.js'
import { freePort, skipReason } from '../../../test/src/harness/process.js'
import { OrchestratorConfig, orchestrator } from '../src/index.js'

const natsSkip = await skipReason('nats-server', ensureNatsServer)

describe.skipIf(natsSkip !== undefined)('orchestrator provisioning on NATS', () => {
  let server: NatsServer
  beforeAll(async () => {
    server = await startNats()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('creates the catalogue streams at start', async () => {
    const bus = Schema.decodeUnknownSync(BusSection)({ transport: 'nats', partitions: 3, nats: { servers: [server.url] } })
    // No ClickHouse here: migrations fail and retry quietly, provisioning does not wait for them.
    const clickhouse = Schema.decodeUnknownSync(ClickHouseSection)({ mode: 'server', url: `http://127.0.0.1:${await freePort()}` })
    const kernel = Layer.mergeAll(BusLive(bus), HttpServerLive({ listen: '' }), SharedSectionsLive({ bus, clickhouse })).pipe(
      Layer.provideMerge(Layer.merge(MetricsLive, HealthLive)),
    )
    const scope = await Effect.runPromise(Scope.make())
    const nc = await connect({ servers: server.url })
    try {
      await Effect.runPromise(
        Layer.buildWithScope(Layer.provideMerge(actorLayer(orchestrator, Schema.decodeUnknownSync(OrchestratorConfig)({})), kernel), scope).pipe(
          Logger.withMinimumLogLevel(LogLevel.None),
        ),
      )
      const jsm = await jetstreamManager(nc)
      const names = async () => {
        const found: string[] = []
        for await (const s of jsm.streams.list()) found.push(s.config.name)
        return found
      }
      while (!(await names()).includes('KV_flowbus_metadata_interfaces_v1')) await new Promise((resolve) => setTimeout(resolve, 100))
      const enriched = await jsm.streams.info('FLOWBUS_FLOWS_ENRICHED_V1')
      expect(enriched.config.subjects).toEqual(['flows.enriched.v1.*'])
      expect(await names()).toEqual(expect.arrayContaining(['FLOWBUS_FLOWS_RAW_V1', 'FLOWBUS_DEADLETTER_FLOWS_ENRICHED_V1', 'FLOWBUS_COUNTERS_INTERFACES_V1']))
    } finally {
      await nc.close()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
