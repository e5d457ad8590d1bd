// The snmp-poller actor: listens to enrichers' metadata.requests, polls the exporters' agents
// (coalesced per exporter, bounded concurrency, a breaker per exporter) and writes the answers to
// the metadata.exporters and metadata.interfaces buckets, which it reloads from when restarted.
import {
  type ExporterInfo,
  type InterfaceInfo,
  interfaceStateKey,
  metadataExporters,
  metadataInterfaces,
  metadataRequests,
} from '@flowbus/bus-schemas'
import { ActorContext, Bus, type BusError, Metrics, type StateStore, defineActor } from '@flowbus/runtime'
import { Effect, Queue, Schedule } from 'effect'
import { AgentTable } from './agents.js'
import { type Completion, MetadataCache } from './cache.js'
import { SnmpPollerConfig, configProblem } from './config.js'
import { makeSnmpPollerMetrics, observeCache } from './metrics.js'
import { type SnmpClient, netSnmpClient } from './net-snmp.js'
import { type PollPlan, type PollResult, pollExporter } from './poll.js'

/** How often the cache is checked for refreshes, expiries and half-open breakers. */
const HOUSEKEEPING_MS = 1_000
/** Bucket reads in flight while reloading at start. */
const RELOAD_CONCURRENCY = 16

/** Reads every entry of a bucket; entries that vanish or cannot be decoded are skipped (the latter counted). */
const readAll = <T>(store: StateStore<T>, malformed: () => void): Effect.Effect<T[], BusError> =>
  Effect.flatMap(store.keys, (keys) =>
    Effect.forEach(
      keys,
      (key) =>
        store.get(key).pipe(
          Effect.catchTag('MalformedMessage', () =>
            Effect.sync(() => {
              malformed()
              return undefined
            }),
          ),
        ),
      { concurrency: RELOAD_CONCURRENCY },
    ),
  ).pipe(Effect.map((values) => values.filter((v): v is T => v !== undefined)))

/** The actor over a given SNMP client; the registered actor uses net-snmp. */
export const makeSnmpPollerActor = (client: SnmpClient) =>
  defineActor({
    name: 'snmp-poller',
    description: 'polls exporters over SNMP (v2c/v3) for sysName and interface names, descriptions and speeds, on enrichers\' requests',
    config: SnmpPollerConfig,
    consumes: [metadataRequests],
    produces: [metadataExporters, metadataInterfaces],
    start: (config) =>
      Effect.gen(function* () {
        const problem = configProblem(config)
        if (problem) return yield* Effect.fail(new Error(problem))
        const bus = yield* Bus
        const actor = yield* ActorContext
        const { registry } = yield* Metrics
        const metrics = makeSnmpPollerMetrics(registry)
        const interfaces = yield* bus.state(metadataInterfaces)
        const exporters = yield* bus.state(metadataExporters)
        const cache = new MetadataCache(new AgentTable(config.agents), {
          refreshAfter: config.refreshAfter,
          expireAfter: config.expireAfter,
          maxInterfacesPerPoll: config.maxInterfacesPerPoll,
          breaker: config.breaker,
        })
        observeCache(registry, cache)

        // A restarted poller starts from what it published before, aged by updated_unix_ms, so
        // only entries due for a refresh are polled again.
        const malformed = () => actor.error('malformed-state')
        const [storedExporters, storedInterfaces] = yield* Effect.all(
          [readAll<ExporterInfo>(exporters, malformed), readAll<InterfaceInfo>(interfaces, malformed)],
          { concurrency: 2 },
        )
        const loadedExporters = storedExporters.filter((info) => cache.loadExporter(info)).length
        const loadedInterfaces = storedInterfaces.filter((info) => cache.loadInterface(info)).length
        metrics.loaded.inc({ kind: 'exporters' }, loadedExporters)
        metrics.loaded.inc({ kind: 'interfaces' }, loadedInterfaces)
        yield* Effect.logInfo(`reloaded ${loadedExporters} exporters and ${loadedInterfaces} interfaces from the bus state`)

        const queue = yield* Effect.acquireRelease(Queue.unbounded<string>(), Queue.shutdown)
        const timers = new Set<NodeJS.Timeout>()
        yield* Effect.addFinalizer(() => Effect.sync(() => timers.forEach(clearTimeout)))
        const enqueue = (key: string, delayMs: number) => {
          if (delayMs <= 0) {
            Queue.unsafeOffer(queue, key)
            return
          }
          const timer = setTimeout(() => {
            timers.delete(timer)
            Queue.unsafeOffer(queue, key)
          }, delayMs)
          timers.add(timer)
        }

        const publish = (plan: PollPlan, key: string, done: Completion) =>
          Effect.gen(function* () {
            if (done.exporter) {
              yield* exporters.put(key, done.exporter)
              metrics.published.inc({ kind: 'exporters', operation: 'put' })
            }
            for (const info of done.put) yield* interfaces.put(interfaceStateKey(info.exporterAddress, info.ifIndex), info)
            for (const removedKey of done.removed) yield* interfaces.delete(removedKey)
            metrics.published.inc({ kind: 'interfaces', operation: 'put' }, done.put.length)
            metrics.published.inc({ kind: 'interfaces', operation: 'delete' }, done.removed.length)
            actor.emitted('interfaces', done.put.length)
          }).pipe(
            Effect.catchAll((error) =>
              Effect.gen(function* () {
                // Not published means not known: the next request for these polls again.
                cache.invalidate(key, plan.ifIndexes, true)
                actor.error('publish')
                yield* Effect.logWarning(`could not publish metadata of exporter ${key}: ${error.message}`)
              }),
            ),
          )

        const record = (exporter: string, result: PollResult, done: Completion) =>
          Effect.gen(function* () {
            metrics.requests.inc({ exporter }, result.requests)
            if (result.timeouts > 0) metrics.timeouts.inc({ exporter }, result.timeouts)
            if (result.ok) {
              metrics.successes.inc({ exporter })
              return
            }
            metrics.errors.inc({ exporter, reason: result.reason })
            actor.error(`snmp-${result.reason}`)
            if (done.opened) {
              metrics.breakerOpened.inc({ exporter })
              yield* Effect.logWarning(`exporter ${exporter}: breaker open after repeated failures (${result.reason}: ${result.message})`)
            }
          })

        const options = { timeoutMs: config.timeout, retries: config.retries, maxOidsPerRequest: config.maxOidsPerRequest }
        // Each worker polls one exporter at a time, so a slow or dead agent holds one worker at most,
        // and its breaker soon keeps it from taking any.
        const worker = Effect.gen(function* () {
          const key = yield* Queue.take(queue)
          const plan = cache.take(key)
          if (!plan) return
          const result = yield* Effect.promise(() => pollExporter(client, plan, options))
          const done = cache.complete(key, plan, result)
          yield* record(plan.exporter, result, done)
          if (result.ok) yield* publish(plan, key, done)
          if (cache.release(key)) enqueue(key, 0)
        }).pipe(Effect.forever)
        yield* Effect.forkScoped(Effect.all(Array.from({ length: config.concurrency }, () => worker), { concurrency: 'unbounded', discard: true }))

        yield* Effect.forkScoped(
          Effect.sync(() => {
            for (const key of cache.due()) enqueue(key, 0)
          }).pipe(Effect.repeat(Schedule.spaced(HOUSEKEEPING_MS))),
        )

        yield* bus.listen(metadataRequests, (batch) => {
          actor.received('requests', batch.requests.length)
          for (const request of batch.requests) {
            if (request.exporterAddress.length !== 16) {
              actor.dropped('bad-exporter-address')
              continue
            }
            // IF-MIB's InterfaceIndex is 1..2147483647; anything else cannot be asked for.
            const ifIndexes = request.ifIndexes.filter((i) => Number.isInteger(i) && i >= 1 && i <= 0x7fffffff)
            if (ifIndexes.length < request.ifIndexes.length) {
              metrics.demanded.inc({ outcome: 'invalid' }, request.ifIndexes.length - ifIndexes.length)
              actor.dropped('bad-ifindex', request.ifIndexes.length - ifIndexes.length)
            }
            const demand = cache.demand(request.exporterAddress, ifIndexes)
            if (demand.key === undefined) {
              metrics.demanded.inc({ outcome: 'no-agent' }, ifIndexes.length)
              actor.dropped('no-agent')
              continue
            }
            if (demand.cached > 0) metrics.demanded.inc({ outcome: 'cached' }, demand.cached)
            if (demand.wanted > 0) metrics.demanded.inc({ outcome: 'polled' }, demand.wanted)
            if (demand.schedule) enqueue(demand.key, config.coalesceDelay)
          }
        })
        yield* Effect.logInfo(`polling on demand with ${config.agents.length} agent subnet(s), ${config.concurrency} exporters at a time`)
      }),
  })

export const snmpPollerActor = makeSnmpPollerActor(netSnmpClient)
