// The orchestrator actor: provisions the bus, serves the ClickHouse initialisation endpoints,
// and migrates the ClickHouse schema in the background until it matches the configuration.
import type { ClickHouseClient } from '@clickhouse/client'
import { catalogue } from '@flowbus/bus-schemas'
import {
  ActorContext,
  type ClickHouseConfig,
  type DictionarySource,
  SharedSections,
  clickHouseError,
  clickHouseScoped,
  clickHouseSection,
  connectTransport,
  defineActor,
  describeClickHouse,
  provisionAll,
  provisioningPlan,
  serveHttpRoute,
} from '@flowbus/runtime'
import { Duration, Effect, Option, Schedule } from 'effect'
import { OrchestratorConfig } from './config.js'
import { makeDictionaryData } from './dictionaries.js'
import { API_PREFIX, clickHouseEndpoints } from './endpoints.js'
import { migrationSteps } from './migrations.js'

/** Where dictionaries read their rows under this configuration. */
export const dictionarySourceOf = (config: OrchestratorConfig, clickhouse: ClickHouseConfig): DictionarySource =>
  config.dictionaryURL !== ''
    ? { kind: 'http', baseURL: config.dictionaryURL }
    : clickhouse.mode === 'server'
      ? { kind: 'table', username: clickhouse.username, ...(clickhouse.password ? { password: clickhouse.password } : {}) }
      : { kind: 'table' }

// Streams and buckets of the whole catalogue, created or updated once (idempotent); a broker
// that is still starting gets a few attempts before the orchestrator gives up.
const provisionBus = Effect.gen(function* () {
  const shared = yield* Effect.serviceOption(SharedSections)
  if (Option.isNone(shared)) return yield* Effect.logWarning('bus provisioning skipped: this process does not pass the bus section to actors')
  const bus = shared.value.bus
  if (!bus.provision || bus.transport === 'memory') return
  const plan = provisioningPlan(catalogue, bus)
  yield* Effect.tryPromise({
    try: async () => {
      const transport = await connectTransport(bus)
      try {
        await provisionAll(transport, plan)
      } finally {
        await transport.close()
      }
    },
    catch: (cause) => new Error(`provisioning the ${bus.transport} bus: ${(cause as Error).message}`, { cause }),
  }).pipe(Effect.retry({ times: 4, schedule: Schedule.exponential('1 second') }))
  yield* Effect.logInfo(`provisioned ${plan.streams.length} streams and ${plan.buckets.length} buckets on the ${bus.transport} bus`)
})

export const orchestrator = defineActor({
  name: 'orchestrator',
  description: 'creates and migrates the ClickHouse schema, provisions the bus, serves ClickHouse init files',
  config: OrchestratorConfig,
  consumes: [],
  produces: [],
  start: (config) =>
    Effect.gen(function* () {
      const context = yield* ActorContext
      const clickhouse = yield* clickHouseSection
      const data = makeDictionaryData(config)
      yield* serveHttpRoute(API_PREFIX, clickHouseEndpoints(data))
      const migrate = (client: ClickHouseClient) =>
        Effect.gen(function* () {
          const steps = migrationSteps(client, clickhouse, {
            dictionarySource: dictionarySourceOf(config, clickhouse),
            dictionaryData: data,
          })
          const changed: string[] = []
          for (const step of steps) {
            // A request under way cannot be cancelled in the engine: stopping waits for the
            // current step only, and the next start resumes from the state it left.
            const actions = yield* Effect.tryPromise({
              try: () => step.run(),
              catch: (cause) => clickHouseError(clickhouse, `migration step "${step.name}"`, cause),
            }).pipe(Effect.uninterruptible)
            yield* Effect.logInfo(`migration ${step.name}: ${actions.length > 0 ? actions.join('; ') : 'current'}`)
            if (actions.length > 0) changed.push(`${step.name} (${actions.join('; ')})`)
          }
          yield* Effect.logInfo(
            changed.length === 0
              ? `schema of ${describeClickHouse(clickhouse)} is current (${steps.length} steps checked)`
              : `migrated ${describeClickHouse(clickhouse)}: ${changed.join(', ')}`,
          )
        }).pipe(
          Effect.tapError((error) =>
            Effect.zipRight(
              Effect.sync(() => context.error('migration')),
              Effect.logError(`${error.message}; retrying in ${Duration.format(config.migrationRetry)}`),
            ),
          ),
          Effect.retry(Schedule.spaced(config.migrationRetry)),
        )
      // Work that waits on brokers and ClickHouse runs in the background, so the actor starts
      // at once; inserting actors wait for the schema themselves (awaitSchema).
      yield* Effect.forkScoped(
        Effect.gen(function* () {
          yield* provisionBus.pipe(
            Effect.catchAll((error) => Effect.zipRight(Effect.sync(() => context.error('provisioning')), Effect.logError(error.message))),
          )
          // The client lives until migrations are done: loading the embedded engine, if this
          // process has not yet, happens here rather than in start.
          yield* Effect.scoped(Effect.flatMap(clickHouseScoped(clickhouse), migrate)).pipe(
            Effect.catchAll((error) => Effect.zipRight(Effect.sync(() => context.error('migration')), Effect.logError(error.message))),
          )
        }),
      )
    }),
})
