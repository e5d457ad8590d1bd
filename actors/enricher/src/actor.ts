// The enricher actor: consumes flows.decoded in a consumer group, enriches each batch (metadata,
// routing, stages), publishes flows.enriched — one enriched message per decoded message — then
// the JSON export, and only then acknowledges; a sample goes to flows.live on the way.
import {
  FlowBatch,
  splitHalves,
  flowsDecoded,
  flowsEnriched,
  flowsLive,
  metadataExporters,
  metadataInterfaces,
  metadataRequests,
  parseIP,
  routingLookup,
} from '@flowbus/bus-schemas'
import { ActorContext, Bus, type BusError, type BusService, type MessageTooLarge, Metrics, SharedSections, defineActor } from '@flowbus/runtime'
import { Duration, Effect, Runtime, Schedule } from 'effect'
import { EnricherConfig, type RemoteSource } from './config.js'
import type { EnricherConfig as EnricherConfigType } from './config.js'
import { MetadataChain, type UnknownEntity } from './metadata/chain.js'
import { NetworkSources } from './metadata/networks.js'
import { fetchText, parseDocument, recordsToNetworks, recordsToTable } from './metadata/remote.js'
import { BucketProvider, MetadataRequests } from './metadata/snmp.js'
import { configuredDefaults, staticProvider } from './metadata/static.js'
import { TableProvider } from './metadata/table.js'
import type { MetadataProvider } from './metadata/types.js'
import { type EnricherMetrics, makeEnricherMetrics } from './metrics.js'
import { jsonExportBroadcast, jsonExportStream, jsonLines, jsonMessages } from './outputs/json-export.js'
import { LiveSampler } from './outputs/live.js'
import { ASNStage } from './asn/stage.js'
import { ClassificationStage } from './classification/stage.js'
import { type GeoIPEvent, GeoIPStage } from './geoip/stage.js'
import { AddressCache } from './networks/address-cache.js'
import { NetworkStage } from './networks/stage.js'
import { parseNetworks } from './networks/table.js'
import { EnrichPipeline } from './pipeline.js'
import { SamplingStage } from './sampling/stage.js'
import type { EnrichStage } from './stages.js'
import { RoutingClient, busRoutingLookup } from './routing/client.js'

/** The bus's message limit, from the shared bus section when the process provides it. */
const busLimit = Effect.map(Effect.serviceOption(SharedSections), (shared) => (shared._tag === 'Some' ? shared.value.bus.maxMessageBytes : 1024 * 1024))

const ZERO_ADDRESS = new Uint8Array(16)

/** The exporter address of a decoded message from its partition key (the address in text form). */
const keyAddress = (key: string): Uint8Array => {
  try {
    return parseIP(key)
  } catch {
    return ZERO_ADDRESS
  }
}

/** Publishes one enriched batch; over the bus limit it is split in halves (deterministically) until it fits. */
const publishEnriched = (bus: BusService, key: string, batch: FlowBatch): Effect.Effect<number, BusError | MessageTooLarge> =>
  bus.publish(flowsEnriched, key, batch).pipe(
    Effect.as(1),
    Effect.catchTag('MessageTooLarge', (error) => {
      if (batch.count < 2) return Effect.fail(error)
      const [first, second] = splitHalves(batch)
      return Effect.zipWith(publishEnriched(bus, key, first), publishEnriched(bus, key, second), (a, b) => a + b)
    }),
  )

const sourceName = (source: RemoteSource): string => source.name ?? source.url

/** Fetches a remote source once and hands its content over; failures keep the last good content. */
const refreshRemote = (source: RemoteSource, apply: (text: string) => { records: number; rejected: number; problems: string[] }, metrics: EnricherMetrics) =>
  Effect.tryPromise(() => fetchText(source.url, source.timeout)).pipe(
    Effect.flatMap((text) => Effect.try(() => apply(text))),
    Effect.tap(({ records, rejected, problems }) =>
      Effect.gen(function* () {
        metrics.remoteFetches.inc({ source: sourceName(source), outcome: 'ok' })
        metrics.remoteRecords.set({ source: sourceName(source) }, records)
        if (rejected > 0) {
          metrics.remoteRejected.inc({ source: sourceName(source) }, rejected)
          yield* Effect.logWarning(`remote source ${sourceName(source)}: ${rejected} records skipped: ${problems.join('; ')}`)
        }
      }),
    ),
    Effect.catchAll((error) => {
      metrics.remoteFetches.inc({ source: sourceName(source), outcome: 'failed' })
      // Effect wraps what fetch or the parser threw: report that, not the wrapper.
      const cause = (error as { error?: unknown }).error ?? error
      // fetch says only "fetch failed"; the reason (refused, DNS, TLS…) is its cause.
      const detail = cause instanceof Error ? `${cause.message}${cause.cause instanceof Error ? `: ${cause.cause.message}` : ''}` : String(cause)
      return Effect.logWarning(`remote source ${sourceName(source)} not refreshed (the last good content stays): ${detail}`)
    }),
  )

/**
 * The stages in their fixed order: classification (needs the metadata the actor writes first),
 * sampling, geoip, networks (after geoip: a configured network's country wins), asn (reads the
 * AS numbers geoip, networks and routing left in the context).
 */
export const buildStages = (
  config: EnricherConfigType,
  onGeoIPEvent: (event: GeoIPEvent) => void = () => {},
): { stages: EnrichStage[]; networks: NetworkStage; geoip: GeoIPStage } => {
  // One answer cache for both address stages: an address's GeoIP and network answers share a cache line.
  const cache = new AddressCache()
  const networks = new NetworkStage(parseNetworks(config.networks, 'config enricher.networks'), cache)
  // Opened last: it watches its files, and must be closed by whoever builds the stages.
  const geoip = GeoIPStage.open({ ...config.geoip, onEvent: onGeoIPEvent, cache })
  const stages: EnrichStage[] = [
    new ClassificationStage(config.classification),
    new SamplingStage(config.sampling),
    geoip,
    networks,
    new ASNStage({ asProviders: config.asn.asProviders, netProviders: config.asn.netProviders }),
  ]
  return { stages, networks, geoip }
}

export const enricherActor = defineActor({
  name: 'enricher',
  description: 'enriches decoded flows with exporter/interface metadata, routing, GeoIP, AS numbers, network attributes and classification',
  config: EnricherConfig,
  consumes: [flowsDecoded],
  produces: [flowsEnriched, flowsLive, metadataRequests, routingLookup],
  start: (config) =>
    Effect.gen(function* () {
      const bus = yield* Bus
      const actor = yield* ActorContext
      const registry = (yield* Metrics).registry
      const metrics = makeEnricherMetrics(registry)
      const meta = config.metadata

      // Providers in the configured priority order.
      const snmp = new BucketProvider()
      const remoteProviders = meta.remote.map((source) => ({ source, provider: new TableProvider(`remote ${sourceName(source)}`) }))
      const providers: MetadataProvider[] = meta.providers.flatMap((name): MetadataProvider[] => {
        switch (name) {
          case 'static':
            return [staticProvider(meta)]
          case 'remote':
            return remoteProviders.filter((r) => r.source.kind !== 'networks').map((r) => r.provider)
          case 'snmp':
            return [snmp]
        }
      })
      const chain = new MetadataChain(providers, configuredDefaults(meta), meta.unknown.policy)
      const runtime = yield* Effect.runtime<never>()
      const logGeoIP = (event: GeoIPEvent) =>
        Runtime.runFork(runtime)(
          event.kind === 'loaded'
            ? Effect.logInfo(`GeoIP database loaded: ${event.description}`)
            : Effect.logWarning(`GeoIP database ${event.path} not reloaded (the previous one stays): ${event.error}`),
        )
      const { stages, networks } = yield* Effect.acquireRelease(
        Effect.try({
          try: () => buildStages(config, logGeoIP),
          catch: (cause) => new Error(`enricher stages: ${cause instanceof Error ? cause.message : String(cause)}`),
        }),
        ({ geoip }) => Effect.sync(() => geoip.close()),
      )
      const networkSources = new NetworkSources(config.networks, networks)
      const pipeline = new EnrichPipeline(chain, stages)
      const removeStageTotals = metrics.addStageTotals(() => pipeline.stageTotals())
      yield* Effect.addFinalizer(() => Effect.sync(removeStageTotals))

      // Remote sources: one fetch each before consuming (so the first flows already get them), then on their schedule.
      const remoteJobs = remoteProviders.map(({ source, provider }) => {
        const apply = (text: string) => {
          const records = parseDocument(text, source.format, source.root)
          if (source.kind === 'networks') {
            const { accepted, rejected, problems } = networkSources.setRemote(sourceName(source), recordsToNetworks(records, source.fields, source.format))
            return { records: accepted, rejected, problems }
          }
          const result = recordsToTable(source.kind, records, source.fields, source.format)
          provider.replace(result.value)
          return { records: records.length - result.rejected, rejected: result.rejected, problems: result.problems }
        }
        return { source, refresh: refreshRemote(source, apply, metrics) }
      })
      yield* Effect.forEach(remoteJobs, (job) => job.refresh, { concurrency: 'unbounded', discard: true })
      for (const job of remoteJobs) {
        yield* Effect.forkScoped(Effect.repeat(Effect.delay(job.refresh, Duration.millis(job.source.interval)), Schedule.forever))
      }

      // The snmp-poller's buckets and the requests for what they lack.
      const snmpEnabled = meta.providers.includes('snmp')
      const requests = new MetadataRequests(meta.snmp.requestRepeat)
      const sendRequests = Effect.suspend(() => {
        const batch = requests.take(Date.now())
        if (batch === undefined) return Effect.void
        metrics.metadataRequests.inc({ kind: 'messages' })
        metrics.metadataRequests.inc({ kind: 'exporters' }, batch.requests.length)
        metrics.metadataRequests.inc({ kind: 'interfaces' }, batch.requests.reduce((n, r) => n + r.ifIndexes.length, 0))
        return bus.broadcast(metadataRequests, batch).pipe(
          Effect.catchAll((error) => {
            actor.error('metadata-request')
            return Effect.logWarning('metadata request not sent', error)
          }),
        )
      })
      if (snmpEnabled) {
        const exporters = yield* bus.state(metadataExporters)
        yield* exporters.watch((key, info) => {
          snmp.setExporter(key, info)
          metrics.snmpEntries.set({ bucket: 'exporters' }, snmp.exporterCount)
        })
        const interfaces = yield* bus.state(metadataInterfaces)
        yield* interfaces.watch((key, info) => {
          snmp.setInterface(key, info)
          metrics.snmpEntries.set({ bucket: 'interfaces' }, snmp.interfaceCount)
        })
        yield* Effect.forkScoped(Effect.repeat(sendRequests, Schedule.spaced(Duration.millis(meta.snmp.requestInterval))))
      }
      const onUnknown = (entity: UnknownEntity) => {
        if (snmpEnabled) requests.note(entity.address, entity.key, entity.ifIndex, Date.now())
      }

      const routing = new RoutingClient(busRoutingLookup(bus), {
        enabled: config.routing.enabled,
        timeoutMs: config.routing.timeout,
        backoffMinMs: config.routing.backoffMin,
        backoffMaxMs: config.routing.backoffMax,
        setNextHop: config.routing.setNextHop,
        sources: true,
      })
      const removeRoutingTotals = metrics.addRoutingTotals(
        () => Object.entries(routing.outcomes).map(([outcome, value]) => ({ labels: { outcome }, value })),
        () => [
          { labels: { outcome: 'found' }, value: routing.addresses.found },
          { labels: { outcome: 'not-found' }, value: routing.addresses.notFound },
        ],
      )
      yield* Effect.addFinalizer(() => Effect.sync(removeRoutingTotals))

      const live = new LiveSampler(config.live.oneIn)
      const exportStream = config.export.enabled && config.export.delivery === 'stream' ? jsonExportStream(config.export.subject) : undefined
      const exportBroadcast = config.export.enabled && config.export.delivery === 'broadcast' ? jsonExportBroadcast(config.export.subject) : undefined
      // Room for the transport's framing: the export's lines are split well under the bus limit.
      const exportMessageBytes = Math.max(1024, Math.floor((yield* busLimit) * 0.9))

      // Hold policy: a batch meeting an exporter or interface for the first time waits (bounded) for
      // the snmp-poller; each is waited for once, later batches pass at once.
      const heldOnce = new Set<string>()
      const holdFor = (batch: FlowBatch, fallback: Uint8Array) =>
        Effect.gen(function* () {
          const fresh = chain.unknownIn(batch, batch.count, fallback).filter((e) => !heldOnce.has(`${e.key}.${e.ifIndex}`))
          if (fresh.length === 0) return
          if (heldOnce.size > 100_000) heldOnce.clear()
          for (const e of fresh) {
            heldOnce.add(`${e.key}.${e.ifIndex}`)
            onUnknown(e)
          }
          yield* sendRequests
          const deadline = Date.now() + meta.unknown.holdFor
          const waiting = new Set(fresh.map((e) => `${e.key}.${e.ifIndex}`))
          while (Date.now() < deadline) {
            yield* Effect.sleep(Duration.millis(Math.min(50, Math.max(1, deadline - Date.now()))))
            const still = chain.unknownIn(batch, batch.count, fallback).filter((e) => waiting.has(`${e.key}.${e.ifIndex}`))
            if (still.length === 0) {
              metrics.held.inc({ outcome: 'resolved' })
              return
            }
          }
          metrics.held.inc({ outcome: 'timeout' })
        })

      yield* bus.subscribe(flowsDecoded, { group: config.group }, (message) =>
        Effect.gen(function* () {
          const batch = message.value
          actor.received('batches')
          actor.received('flows', batch.count)
          const fallback = keyAddress(message.key)
          if (meta.unknown.policy === 'hold') yield* holdFor(batch, fallback)
          const answer = yield* routing.enrich(batch, batch.count, fallback)
          const result = pipeline.run(batch, fallback, answer?.columns, onUnknown)
          const { unknownExporterFlows, unknownInterfaceFlows } = result.metadata
          if (unknownExporterFlows > 0) metrics.unknownFlows.inc({ entity: 'exporter', policy: meta.unknown.policy }, unknownExporterFlows)
          if (unknownInterfaceFlows > 0) metrics.unknownFlows.inc({ entity: 'interface', policy: meta.unknown.policy }, unknownInterfaceFlows)
          const drops = [
            ['unknown-metadata', result.dropped.unknownMetadata],
            ['rejected', result.dropped.rejected],
            ['no-sampling-rate', result.dropped.noSamplingRate],
            ['other', result.dropped.other],
          ] as const
          for (const [reason, n] of drops) {
            if (n === 0) continue
            metrics.droppedFlows.inc({ reason }, n)
            actor.dropped(reason, n)
          }
          const enriched = result.batch
          if (enriched.count === 0) return
          // Published before the Bus acknowledges the decoded message (when this handler succeeds).
          const messages = yield* publishEnriched(bus, message.key, enriched)
          actor.emitted('flows', enriched.count)
          actor.emitted('batches', messages)
          if (exportStream !== undefined || exportBroadcast !== undefined) {
            const parts = jsonMessages(jsonLines(enriched), exportMessageBytes)
            for (const part of parts) {
              if (exportStream !== undefined) {
                yield* bus.publish(exportStream, message.key, part).pipe(Effect.tapError(() => Effect.sync(() => metrics.exportMessages.inc({ outcome: 'failed' }))))
              } else if (exportBroadcast !== undefined) {
                const sent = yield* bus.broadcast(exportBroadcast, part).pipe(
                  Effect.as(true),
                  Effect.catchAll(() => Effect.succeed(false)),
                )
                if (!sent) {
                  metrics.exportMessages.inc({ outcome: 'failed' })
                  continue
                }
              }
              metrics.exportMessages.inc({ outcome: 'published' })
            }
          }
          const sample = live.sample(enriched)
          if (sample !== undefined) {
            yield* bus.broadcast(flowsLive, sample).pipe(
              Effect.tap(() => Effect.sync(() => metrics.liveFlows.inc(sample.count))),
              Effect.catchAll(() => Effect.sync(() => actor.error('live-broadcast'))),
            )
          }
        }),
      )
    }),
})
