// Runs a set of actors in this process: one configuration, one Bus connection, one HTTP
// endpoint, and an orderly shutdown on SIGINT/SIGTERM (actors drain first, the bus closes last).
import { Effect, Exit, Fiber, Layer, Schema } from 'effect'
import { type ActorDefinition, actorLayer, actorSection } from './actor.js'
import { BusLive } from './bus/bus.js'
import type { Transport } from './bus/transport.js'
import type { BusConfig, ClickHouseConfig, HttpConfig, LogConfig } from './config/sections.js'
import { SharedSectionsLive, sharedSections } from './config/sections.js'
import { Health, HealthLive, HttpServer, HttpServerLive, type HttpEndpoint } from './http.js'
import { LoggingLive } from './log.js'
import { MetricsLive } from './metrics.js'

/** The schema of the whole configuration file for a given set of known actors. */
export const configSchema = (actors: readonly ActorDefinition<any>[]) =>
  Schema.Struct({
    ...sharedSections,
    ...Object.fromEntries(actors.map((actor) => [actor.name, actorSection(actor)] as const)),
  })

/** The resolved configuration: shared sections plus one section per actor. */
export interface ResolvedConfig {
  readonly bus: BusConfig
  readonly http: HttpConfig
  readonly log: LogConfig
  readonly clickhouse: ClickHouseConfig
  readonly [actor: string]: unknown
}

export interface RunOptions {
  readonly actors: readonly ActorDefinition<any>[]
  readonly config: ResolvedConfig
  /** Use this transport instead of connecting one from the config (tests, embedding). */
  readonly transport?: Transport
  /** Called once every actor started, with the bound HTTP address. */
  readonly onReady?: (endpoint: HttpEndpoint) => void
}

/** Starts the actors and runs until interrupted; interruption stops them in order. */
export const runActors = (options: RunOptions): Effect.Effect<void, unknown> => {
  const { config } = options
  const actorLayers = options.actors.map((actor) => actorLayer(actor, config[actor.name] as never))
  const actors = actorLayers.length > 0 ? Layer.mergeAll(Layer.empty, ...actorLayers) : Layer.empty
  const kernel = Layer.mergeAll(BusLive(config.bus, options.transport), HttpServerLive(config.http), SharedSectionsLive(config)).pipe(
    Layer.provideMerge(Layer.merge(MetricsLive, HealthLive)),
  )
  const program = Effect.gen(function* () {
    const health = yield* Health
    const http = yield* HttpServer
    // With no actor at all the process is still a valid (idle) member: ready at once.
    health.setReady('kernel', true)
    yield* Effect.logInfo(
      `flowbus running ${options.actors.map((a) => a.name).join(', ') || 'no actor'} on the ${config.bus.transport} bus`,
    )
    options.onReady?.(http)
    yield* Effect.addFinalizer(() => Effect.logInfo('shutting down: stopping intake and draining in-flight work'))
    return yield* Effect.never
  })
  return Effect.scoped(
    Layer.build(Layer.provideMerge(actors, kernel)).pipe(
      Effect.flatMap((context) => Effect.provide(program, context)),
    ),
  ).pipe(Effect.provide(LoggingLive(config.log)), Effect.annotateLogs('pid', process.pid)) as Effect.Effect<void, unknown>
}

/**
 * Runs the actors until SIGINT or SIGTERM, then shuts down gracefully and resolves with the
 * exit code: 0 after a clean stop, 1 when starting or running failed (the error is logged).
 */
export const runUntilSignal = async (options: RunOptions): Promise<number> => {
  const fiber = Effect.runFork(runActors(options))
  let signalled = false
  const stop = () => {
    signalled = true
    Effect.runFork(Fiber.interrupt(fiber))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const exit = await Effect.runPromise(Fiber.await(fiber))
  process.off('SIGINT', stop)
  process.off('SIGTERM', stop)
  if (Exit.isSuccess(exit) || (Exit.isInterrupted(exit) && signalled)) return 0
  if (Exit.isInterrupted(exit)) {
    // Nobody asked to stop: something inside interrupted the actors. Say so, with the fibers
    // involved, instead of exiting 0 as if an operator had pressed Ctrl-C.
    await Effect.runPromise(
      Effect.logError('flowbus stopped: interrupted without a signal', exit.cause).pipe(Effect.provide(LoggingLive(options.config.log))),
    )
    return 1
  }
  await Effect.runPromise(Effect.logError('flowbus stopped on an error', exit.cause).pipe(Effect.provide(LoggingLive(options.config.log))))
  return 1
}

