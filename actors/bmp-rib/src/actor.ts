// The bmp-rib actor: a BMP listener feeding the RIB, and the routing.lookup service answering
// the enricher's batched lookups from it.
import { routingLookup } from '@flowbus/bus-schemas'
import { ActorContext, Bus, Metrics, defineActor, formatDuration } from '@flowbus/runtime'
import { Effect, Runtime } from 'effect'
import { BmpCollector } from './bmp/collector.js'
import { BmpRibConfig } from './config.js'
import { listenBmp } from './listener.js'
import { LookupAnswerer } from './lookup.js'
import { registerBmpMetrics } from './metrics.js'

export const bmpRibActor = defineActor({
  name: 'bmp-rib',
  description: 'BMP collector (RFC 7854/9069) keeping a RIB of the routers\' BGP routes; answers routing.lookup',
  config: BmpRibConfig,
  consumes: [],
  produces: [routingLookup],
  start: (config) =>
    Effect.gen(function* () {
      const bus = yield* Bus
      const metrics = yield* Metrics
      const actor = yield* ActorContext
      const runtime = yield* Effect.runtime<never>()
      const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)
      const collector = new BmpCollector({
        graceMs: config.peerGraceTime,
        onSessionError: (router, error) => {
          actor.error(error.reason)
          log(
            error.reason === 'terminated'
              ? Effect.logInfo(error.message)
              : Effect.logWarning(`closing the BMP session from ${router}: ${error.message}`),
          )
        },
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => collector.close()))
      const answerer = new LookupAnswerer(collector.rib)
      const listener = yield* Effect.acquireRelease(
        Effect.tryPromise(() =>
          listenBmp(collector, {
            host: config.listenAddress,
            port: config.port,
            maxSessions: config.maxSessions,
            onConnection: (router, event) =>
              log(Effect.logInfo(event === 'open' ? `BMP session from ${router}` : `BMP session from ${router} closed`)),
          }),
        ),
        (l) => Effect.promise(() => l.close()),
      )
      registerBmpMetrics(metrics.registry, collector, answerer, listener.refused)
      yield* bus.serve(routingLookup, (request) =>
        Effect.sync(() => {
          const response = answerer.answer(request)
          actor.received('lookups', response.routes.length + response.routeIndex.length)
          return response
        }),
      )
      yield* Effect.logInfo(
        `BMP listening on ${config.listenAddress}:${listener.port}, peers kept ${formatDuration(config.peerGraceTime)} after going down`,
      )
    }),
})
