// The gateway actor: opens ClickHouse the way the writer does (the process's embedded engine or
// a server), listens to the enricher's live fan-out, and serves GraphQL until the scope closes.
import { flowsLive } from '@flowbus/bus-schemas'
import { ActorContext, Bus, Metrics, clickHouseScoped, clickHouseSection, defineActor, parseListen } from '@flowbus/runtime'
import { Effect } from 'effect'
import { GatewayConfig } from './config.js'
import { akvoradoFilters } from './filter-language.js'
import { readHealth } from './health.js'
import { LiveHub } from './live.js'
import { gatewayMetrics } from './metrics.js'
import { makeDimensionCatalogue } from './query/dimensions.js'
import { makeQueryEngine } from './query/engine.js'
import { makeQueryRunner } from './query/runner.js'
import { makeSavedFilters } from './saved-filters.js'
import { createGatewayServer } from './server.js'

export const gateway = defineActor({
  name: 'gateway',
  description: 'GraphQL API over the stored flows (time series, top-N, sankey, last flows, exporters, health) and live subscriptions',
  config: GatewayConfig,
  consumes: [flowsLive],
  produces: [],
  start: (config) =>
    Effect.gen(function* () {
      if (config.auth.mode === 'tokens' && config.auth.tokens.length === 0) {
        return yield* Effect.fail(new Error('gateway.auth.mode is "tokens" but gateway.auth.tokens is empty: add tokens or choose another mode'))
      }
      const { host, port } = yield* Effect.try({
        try: () => parseListen(config.listen),
        catch: (e) => new Error(`gateway.listen: ${(e as Error).message.replace('http.listen', '')}`),
      })
      const context = yield* ActorContext
      const metrics = yield* Metrics
      const bus = yield* Bus
      const clickhouse = yield* clickHouseSection
      const client = yield* clickHouseScoped(clickhouse)
      const hub = new LiveHub()
      const own = gatewayMetrics(metrics, () => hub.subscribers)
      const runner = makeQueryRunner(
        client,
        {
          database: clickhouse.database,
          timeoutMs: config.limits.queryTimeout,
          maxConcurrentPerUser: config.limits.maxConcurrentQueries,
          server: clickhouse.mode === 'server',
        },
        {
          finished: (purpose, outcome, seconds) => {
            own.queries.inc({ purpose, outcome })
            if (outcome === 'ok') own.querySeconds.observe({ purpose }, seconds)
            if (outcome === 'error') context.error('query')
          },
        },
      )
      const catalogue = makeDimensionCatalogue(clickhouse)
      const engine = makeQueryEngine(runner, catalogue, {
        clickhouse,
        filters: akvoradoFilters,
        limits: { maxPoints: config.limits.maxPoints, maxRangeSeconds: config.limits.maxRange / 1000, maxLimit: config.limits.maxLimit },
      })
      yield* bus.listen(flowsLive, (batch) => {
        context.received('flows', batch.count)
        hub.publish(batch)
      })
      const server = createGatewayServer({
        config,
        dependencies: {
          engine,
          filters: akvoradoFilters,
          hub,
          health: () => readHealth(metrics.registry, config.metricsURLs),
          saved: makeSavedFilters(client, runner, clickhouse.database),
          live: {
            queueLength: config.live.queueLength,
            maxFlowsPerEvent: config.live.maxFlowsPerEvent,
            onDropped: (events) => {
              own.liveDroppedEvents.inc(events)
              context.dropped('slow-live-client', events)
            },
            onError: (error) => {
              context.error('live-filter')
              Effect.runFork(Effect.logWarning(`live filter: ${(error as Error)?.message ?? String(error)}`))
            },
          },
        },
        onInternalError: (error) => {
          context.error('internal')
          Effect.runFork(Effect.logError(`request failed: ${(error as Error)?.stack ?? String(error)}`))
        },
      })
      const bound = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => server.listen(host, port),
          catch: (e) => new Error(`cannot listen on gateway.listen ${config.listen}: ${(e as Error).message}`),
        }),
        () => Effect.promise(() => server.close()),
      )
      gatewayAddresses.set(config.listen, bound)
      yield* Effect.addFinalizer(() => Effect.sync(() => gatewayAddresses.delete(config.listen)))
      yield* Effect.logInfo(`GraphQL on http://${host.includes(':') ? `[${host}]` : host}:${bound.port}/graphql (${describeAuth(config)})`)
    }),
})

const describeAuth = (config: GatewayConfig): string =>
  config.auth.mode === 'off' ? 'no authentication' : config.auth.mode === 'tokens' ? `${config.auth.tokens.length} bearer tokens` : `user from the ${config.auth.userHeader} header`

/** Where each running gateway listens, by its configured listen value (port 0 resolved): for tests. */
export const gatewayAddresses = new Map<string, { host: string; port: number }>()
