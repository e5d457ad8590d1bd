// Server mode against a closed loopback port: migrations fail with an error naming the URL, and
// the orchestrator actor keeps running, counting and logging the failure while it retries.
import {
  BusLive,
  BusSection,
  ClickHouseSection,
  HealthLive,
  HttpServerLive,
  Metrics,
  MetricsLive,
  SharedSectionsLive,
  actorLayer,
  clickHouseError,
  openClickHouse,
} from '@flowbus/runtime'
import { Context, Effect, Exit, Layer, LogLevel, Logger, Schema, Scope } from 'effect'
import { describe, expect, it } from 'vitest'
import { freePort } from '../../../test/src/harness/process.js'
import { OrchestratorConfig, makeDictionaryData, orchestrator, runMigrations } from '../src/index.js'


describe('ClickHouse server refusing connections', () => {
  it('fails a migration with the URL in the message', async () => {
    const url = `http://127.0.0.1:${await freePort()}`
    const config = Schema.decodeUnknownSync(ClickHouseSection)({ mode: 'server', url, requestTimeout: '5s' })
    const client = await openClickHouse(config)
    try {
      const failure = await runMigrations(client, config, {
        dictionarySource: { kind: 'table' },
        dictionaryData: makeDictionaryData({ asNames: {} }),
      }).then(
        () => undefined,
        (cause: unknown) => clickHouseError(config, 'migrating', cause),
      )
      expect(failure?.message).toMatch(
        new RegExp(`^migrating on ClickHouse server ${url}: connection refused .*migration step "database flowbus" failed`),
      )
    } finally {
      await client.close()
    }
  })

  it('keeps the actor running and counts the failed attempts', async () => {
    const url = `http://127.0.0.1:${await freePort()}`
    const clickhouse = Schema.decodeUnknownSync(ClickHouseSection)({ mode: 'server', url, requestTimeout: '5s' })
    const bus = Schema.decodeUnknownSync(BusSection)({})
    const config = Schema.decodeUnknownSync(OrchestratorConfig)({ migrationRetry: '100ms' })
    const kernel = Layer.mergeAll(BusLive(bus), HttpServerLive({ listen: '' }), SharedSectionsLive({ bus, clickhouse })).pipe(
      Layer.provideMerge(Layer.merge(MetricsLive, HealthLive)),
    )
    const scope = await Effect.runPromise(Scope.make())
    try {
      const context = await Effect.runPromise(
        Layer.buildWithScope(Layer.provideMerge(actorLayer(orchestrator, config), kernel), scope).pipe(Logger.withMinimumLogLevel(LogLevel.None)),
      )
      const metrics = Context.get(context, Metrics)
      const failures = async () =>
        (await metrics.errors.get()).values.find((v) => v.labels.actor === 'orchestrator' && v.labels.kind === 'migration')?.value ?? 0
      while ((await failures()) < 2) await new Promise((resolve) => setTimeout(resolve, 50))
      expect(await failures()).toBeGreaterThanOrEqual(2)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
