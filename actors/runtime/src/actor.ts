// What an actor is: a named config section (Effect Schema with defaults), the subjects it
// consumes and produces, and a scoped start: resources acquired in the scope are released
// in reverse order when the process stops, after intake stopped and in-flight work drained.
import type { AnySubject } from '@flowbus/bus-schemas'
import { Context, Effect, Layer, Schema, type Scope } from 'effect'
import type { Bus } from './bus/bus.js'
import { Health } from './http.js'
import { Metrics } from './metrics.js'

/** Per-actor view of the shared counters, labelled with the actor's name. */
export interface ActorContextService {
  readonly name: string
  /** Count items taken in (kind: "packets", "flows", "batches"…). */
  readonly received: (kind: string, count?: number) => void
  readonly emitted: (kind: string, count?: number) => void
  /** Count items deliberately discarded; reason says why (e.g. "unknown-exporter"). */
  readonly dropped: (reason: string, count?: number) => void
  readonly error: (kind: string, count?: number) => void
}

export class ActorContext extends Context.Tag('flowbus/ActorContext')<ActorContext, ActorContextService>() {}

/** What an actor's start may use from the kernel. */
export type ActorServices = Bus | ActorContext | Metrics

export interface ActorDefinition<Fields extends Schema.Struct.Fields = Schema.Struct.Fields> {
  readonly name: string
  readonly description: string
  /** The actor's section of the configuration file; every key should have a default. */
  readonly config: Schema.Struct<Fields>
  readonly consumes: readonly AnySubject[]
  readonly produces: readonly AnySubject[]
  /**
   * Whether `flowbus start` runs the actor when its section does not say `enabled`; false for
   * actors a production config should ask for explicitly (the demo exporter). Default true.
   */
  readonly enabledByDefault?: boolean
  /** Acquire resources and fork the actor's loops into the scope; return once started. */
  readonly start: (config: Schema.Struct.Type<Fields>) => Effect.Effect<void, unknown, Scope.Scope | ActorServices>
}

/** Declares an actor; the identity function that gives TypeScript the config type. */
export const defineActor = <Fields extends Schema.Struct.Fields>(definition: ActorDefinition<Fields>): ActorDefinition<Fields> =>
  definition

/** The actor's section schema: its own keys plus `enabled`, the whole section optional. */
export const actorSection = (actor: ActorDefinition<any>) => {
  const enabled = actor.enabledByDefault ?? true
  return Schema.optionalWith(
    Schema.Struct({
      enabled: Schema.optionalWith(Schema.Boolean, { default: () => enabled }).annotations({
        description: `run the ${actor.name} actor in \`flowbus start\`${enabled ? '' : ' (off unless enabled)'}`,
      }),
      ...actor.config.fields,
    }).annotations({ description: actor.description }),
    { default: () => ({ enabled, ...Schema.decodeUnknownSync(actor.config as unknown as Schema.Schema<object, unknown>)({}) }) },
  )
}

const makeActorContext = (name: string) =>
  Effect.map(Metrics, (metrics): ActorContextService => ({
    name,
    received: (kind, count = 1) => metrics.received.inc({ actor: name, kind }, count),
    emitted: (kind, count = 1) => metrics.emitted.inc({ actor: name, kind }, count),
    dropped: (reason, count = 1) => metrics.dropped.inc({ actor: name, reason }, count),
    error: (kind, count = 1) => metrics.errors.inc({ actor: name, kind }, count),
  }))

/**
 * The actor as a Layer: building it starts the actor, releasing it stops it. Readiness is
 * reported to /readyz, and every log line carries `actor=<name>`.
 */
export const actorLayer = <Fields extends Schema.Struct.Fields>(
  actor: ActorDefinition<Fields>,
  config: Schema.Struct.Type<Fields>,
): Layer.Layer<never, unknown, Bus | Metrics | Health> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const health = yield* Health
      health.setReady(actor.name, false, 'starting')
      const context = yield* makeActorContext(actor.name)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => health.setReady(actor.name, false, 'stopped')).pipe(Effect.zipRight(Effect.logInfo('stopped'))),
      )
      yield* actor.start(config).pipe(Effect.provideService(ActorContext, context))
      health.setReady(actor.name, true)
      yield* Effect.logInfo('started')
    }).pipe(Effect.annotateLogs('actor', actor.name)),
  )
