// The decoder actor: consumes flows.raw as a consumer group, decodes every datagram, publishes
// flows.decoded and counters.interfaces, shares NetFlow v9/IPFIX templates through the templates bucket.
import {
  type ExporterOptionsRecord,
  FlowBatch,
  splitHalves,
  FlowProtocol,
  type TemplateRecord,
  countersInterfaces,
  exporterOptions,
  exporterStateKey,
  flowsDecoded,
  flowsRaw,
  templateStateKey,
  templates,
} from '@flowbus/bus-schemas'
import { ActorContext, Bus, type BusError, type BusService, type MessageTooLarge, Metrics, type StateStore, defineActor } from '@flowbus/runtime'
import { Effect, Runtime, Schedule } from 'effect'
import { DecoderConfig } from './config.js'
import type { DecodedOutput } from './dispatch.js'
import { type DecoderMetrics, makeDecoderMetrics, metricsObserver } from './metrics.js'
import type { OptionsSnapshot } from './netflow/index.js'
import { createDecoder } from './protocols.js'

/** What identifies a template's content: a refresh with the same fields is not written again. */
export const templateFingerprint = (t: TemplateRecord): string =>
  `${t.options ? 1 : 0}/${t.scopeFieldCount}/${t.fields.map((f) => `${f.enterpriseNumber}:${f.type}:${f.length}`).join(',')}`

/**
 * Templates between the protocol decoders and the bucket: what was learnt from packets waits here
 * until the handler of the raw batch that carried it stores it (before acknowledging the batch);
 * what the bucket holds is remembered so our own writes coming back through the watch are not
 * loaded again, and a deletion can name the template to forget.
 */
class TemplateSync {
  readonly known = new Map<string, { fingerprint: string; record: TemplateRecord }>()
  readonly pendingPuts = new Map<string, TemplateRecord>()
  readonly pendingDeletes = new Set<string>()

  /** The template decoder reports new, changed and periodically re-announced templates only. */
  learnt(record: TemplateRecord): void {
    const key = templateStateKey(record)
    this.pendingDeletes.delete(key)
    this.pendingPuts.set(key, record)
  }

  withdrawn(record: TemplateRecord): void {
    const key = templateStateKey(record)
    this.pendingPuts.delete(key)
    this.pendingDeletes.add(key)
  }
}

/** Key in exporter.options: `<exporter>.<port>.<protocol>.<observation domain>`, like templates' without the id. */
export const optionsStateKey = (o: Pick<ExporterOptionsRecord, 'exporterAddress' | 'exporterPort' | 'protocol' | 'observationDomainId'>): string =>
  `${exporterStateKey(o.exporterAddress)}.${o.exporterPort}.${o.protocol}.${o.observationDomainId}`

export const optionsRecord = (s: OptionsSnapshot, nowMs: number): ExporterOptionsRecord => ({
  exporterAddress: s.exporterAddress,
  exporterPort: s.exporterPort,
  protocol: s.protocol,
  observationDomainId: s.observationDomainId,
  samplingRate: s.samplingRate,
  samplers: s.samplers.map(([id, rate]) => ({ id, rate })),
  interfaces: s.interfaces.map(([ifIndex, name, description]) => ({ ifIndex, name, description })),
  vrfs: s.vrfNames.map(([vrfId, name]) => ({ vrfId, name })),
  systemInitUnixMs: s.sysInitMs,
  updatedUnixMs: nowMs,
})

export const optionsSnapshot = (r: ExporterOptionsRecord): OptionsSnapshot => ({
  exporterAddress: r.exporterAddress,
  exporterPort: r.exporterPort,
  protocol: r.protocol,
  observationDomainId: r.observationDomainId,
  samplingRate: r.samplingRate,
  samplers: r.samplers.map((x) => [Number(x.id), x.rate]),
  interfaces: r.interfaces.map((x) => [x.ifIndex, x.name, x.description]),
  vrfNames: r.vrfs.map((x) => [x.vrfId, x.name]),
  sysInitMs: Number(r.systemInitUnixMs),
})

/** What identifies options data's content: the same data arriving again is not written again. */
const optionsFingerprint = (s: OptionsSnapshot): string => JSON.stringify([s.samplingRate, s.samplers, s.interfaces, s.vrfNames, s.sysInitMs])

/**
 * Publishes one exporter's flow batch; a batch over the bus's message limit (flows with long
 * lists, or `maxFlowsPerMessage` set too high for the broker) is split in halves until it fits.
 */
const publishFlows = (bus: BusService, exporter: string, batch: FlowBatch): Effect.Effect<number, BusError | MessageTooLarge> =>
  bus.publish(flowsDecoded, exporter, batch).pipe(
    Effect.as(1),
    Effect.catchTag('MessageTooLarge', (error) => {
      if (batch.count < 2) return Effect.fail(error)
      const [first, second] = splitHalves(batch)
      return Effect.zipWith(publishFlows(bus, exporter, first), publishFlows(bus, exporter, second), (a, b) => a + b)
    }),
  )

const publishOutput = (bus: BusService, output: DecodedOutput, count: (kind: string, n: number) => void) =>
  Effect.gen(function* () {
    for (const { exporter, batch } of output.flows) {
      const messages = yield* publishFlows(bus, exporter, batch)
      count('flows', batch.count)
      count('batches', messages)
    }
    for (const { exporter, counters } of output.counters) {
      yield* bus.publish(countersInterfaces, exporter, { counters })
      count('counter-samples', counters.length)
    }
  })

const storeTemplates = (store: StateStore<TemplateRecord>, sync: TemplateSync, metrics: DecoderMetrics) =>
  Effect.gen(function* () {
    for (const [key, record] of [...sync.pendingPuts]) {
      // Known before the write, so its echo through the watch is recognised as ours.
      sync.known.set(key, { fingerprint: templateFingerprint(record), record })
      yield* store.put(key, record).pipe(
        Effect.tapError(() =>
          Effect.sync(() => {
            sync.known.delete(key)
            metrics.templatesStored.inc({ outcome: 'failed' })
          }),
        ),
      )
      sync.pendingPuts.delete(key)
      metrics.templatesStored.inc({ outcome: 'stored' })
    }
    for (const key of [...sync.pendingDeletes]) {
      yield* store.delete(key).pipe(Effect.tapError(() => Effect.sync(() => metrics.templatesStored.inc({ outcome: 'failed' }))))
      sync.pendingDeletes.delete(key)
      sync.known.delete(key)
      metrics.templatesStored.inc({ outcome: 'deleted' })
    }
  })

/**
 * Writes the options data that changed in the last raw batch; `known` holds the content of every
 * key as last written or loaded, so repeats (exporters resend options data every few seconds to
 * minutes) and our own writes coming back through the watch are skipped.
 */
const storeOptions = (store: StateStore<ExporterOptionsRecord>, changed: readonly OptionsSnapshot[], known: Map<string, string>, metrics: DecoderMetrics) =>
  Effect.gen(function* () {
    for (const snapshot of changed) {
      const record = optionsRecord(snapshot, Date.now())
      const key = optionsStateKey(record)
      const fingerprint = optionsFingerprint(snapshot)
      if (known.get(key) === fingerprint) continue
      known.set(key, fingerprint)
      yield* store.put(key, record).pipe(
        Effect.tapError(() =>
          Effect.sync(() => {
            known.delete(key)
            metrics.optionsStored.inc({ outcome: 'failed' })
          }),
        ),
      )
      metrics.optionsStored.inc({ outcome: 'stored' })
    }
  })

export const decoderActor = defineActor({
  name: 'decoder',
  description: 'decodes NetFlow v5/v9, IPFIX and sFlow v5 datagrams from flows.raw into flow batches',
  config: DecoderConfig,
  consumes: [flowsRaw],
  produces: [flowsDecoded, countersInterfaces],
  start: (config) =>
    Effect.gen(function* () {
      const bus = yield* Bus
      const actor = yield* ActorContext
      const metrics = makeDecoderMetrics((yield* Metrics).registry)
      const sync = new TemplateSync()
      const { decoder, templates: templateState } = createDecoder({
        observer: metricsObserver(metrics, actor),
        maxFlowsPerBatch: config.maxFlowsPerMessage,
        rateLimit: config.rateLimit,
        holdMs: config.holdMaxAge,
        maxHeld: config.holdMaxDataSets,
        onTemplate: (change) => {
          if (change.kind === 'learnt') metrics.templatesLoaded.inc({ source: 'packet' })
          if (!config.templateState) return
          if (change.kind === 'learnt') sync.learnt(change.record)
          else sync.withdrawn(change.record)
        },
      })
      const emitted = (kind: string, n: number) => actor.emitted(kind, n)
      const updateGauges = () => {
        metrics.templates.set(templateState.templateCount)
        metrics.heldNow.set(templateState.heldCount)
      }

      const runtime = yield* Effect.runtime<never>()
      const runFork = Runtime.runFork(runtime)

      let store: StateStore<TemplateRecord> | undefined
      let optionsStore: StateStore<ExporterOptionsRecord> | undefined
      const optionsKnown = new Map<string, string>()
      if (config.templateState) {
        // Options data first, so that data released by templates loaded below gets its sampling rate.
        const optionsBucket = yield* bus.state(exporterOptions)
        optionsStore = optionsBucket
        yield* optionsBucket.watch((key, record) => {
          if (record === undefined) {
            optionsKnown.delete(key)
            return
          }
          const snapshot = optionsSnapshot(record)
          const fingerprint = optionsFingerprint(snapshot)
          if (optionsKnown.get(key) === fingerprint) return
          optionsKnown.set(key, fingerprint)
          // The bus copy is the newest the replica decoding that exporter learnt: it replaces ours.
          if (templateState.loadOptions(snapshot, true)) metrics.optionsLoaded.inc()
          else actor.error('bad-options-record')
        })
      }
      if (config.templateState) {
        const bucket = yield* bus.state(templates)
        store = bucket
        // Current entries first (so a new replica knows every template before it consumes), then
        // what other replicas learn. Data held for a template loaded here is published at once.
        yield* bucket.watch((key, record) => {
          if (record === undefined) {
            const gone = sync.known.get(key)
            sync.known.delete(key)
            if (gone !== undefined) templateState.removeTemplate(gone.record)
            updateGauges()
            return
          }
          const fingerprint = templateFingerprint(record)
          const known = sync.known.get(key)
          // Our own write coming back, or an older copy: nothing new.
          if (known?.fingerprint === fingerprint && Number(known.record.lastSeenUnixMs) >= Number(record.lastSeenUnixMs)) return
          sync.known.set(key, { fingerprint, record })
          // The same template announced again by another replica only tells the exporter is alive.
          const refresh = known?.fingerprint === fingerprint
          const output = decoder.runOutside(record.protocol, () => {
            if (templateState.loadTemplate(record)) {
              if (!refresh) metrics.templatesLoaded.inc({ source: 'bucket' })
            } else actor.error('bad-template-record')
          })
          updateGauges()
          if (output.flows.length > 0 || output.counters.length > 0) {
            runFork(
              publishOutput(bus, output, emitted).pipe(
                Effect.catchAll((error) => {
                  actor.error('late-publish')
                  return Effect.logWarning(`flows decoded from data held for template ${key} could not be published`, error)
                }),
              ),
            )
          }
        })
        yield* Effect.logInfo(`loaded ${templateState.templateCount} templates from the templates bucket`)
      }

      // Held data expires on a timer: an exporter that never sends the template gets its data
      // counted as missing-template instead of kept forever.
      yield* Effect.forkScoped(
        Effect.sync(() => {
          const now = Date.now()
          decoder.runOutside(FlowProtocol.UNKNOWN, () => templateState.expireHeld(now))
          decoder.forgetIdle(Math.floor(now / 1000))
          updateGauges()
        }).pipe(Effect.repeat(Schedule.spaced('1 second'))),
      )

      yield* bus.subscribe(flowsRaw, { group: config.group }, (message) =>
        Effect.gen(function* () {
          actor.received('batches')
          const output = decoder.decode(message.value.packets)
          updateGauges()
          // Outputs first, then the templates that came with them, then the ack (by the Bus on
          // success): a crash before the ack redelivers the batch, so nothing is lost.
          yield* publishOutput(bus, output, emitted)
          if (store !== undefined) yield* storeTemplates(store, sync, metrics)
          const changedOptions = templateState.changedOptions()
          if (optionsStore !== undefined) yield* storeOptions(optionsStore, changedOptions, optionsKnown, metrics)
        }),
      )
    }),
})

