// The clickhouse-writer actor: enriched flow batches and interface counters from the bus into
// ClickHouse, acknowledged only once ClickHouse accepted them (at least once, deduplicated inserts).
import { countersInterfaces, flowsEnriched, writerBatches } from '@flowbus/bus-schemas'
import {
  ActorContext,
  Bus,
  COUNTERS_TABLE,
  FLOWS_TABLE,
  Health,
  Metrics,
  clickHouseScoped,
  clickHouseSection,
  defineActor,
  qualifiedTable,
  storageColumns,
} from '@flowbus/runtime'
import { Effect, Option } from 'effect'
import { WriterConfig } from './config.js'
import { counterRows, countersToken } from './counters.js'
import { NativeEncoder } from './encode/native.js'
import { planColumns } from './encode/plan.js'
import { describeError, isRejectedData } from './errors.js'
import { embeddedInserter, serverInserter } from './inserter.js'
import { writerMetrics } from './metrics.js'
import { BatchLedger } from './ledger.js'
import { FlowWriter, type StoreBatch, blockHash } from './writer.js'

/** A batch the writer cannot store; the bus retries it, then moves it to the dead-letter subject. */
export class FlowsRefused extends Error {
  constructor(subject: string, key: string, reason: string) {
    super(`ClickHouse refused the ${subject} message of ${key}: ${reason}`)
    this.name = 'FlowsRefused'
  }
}

const READINESS = 'clickhouse-writer/clickhouse'

export const clickhouseWriter = defineActor({
  name: 'clickhouse-writer',
  description: 'stores enriched flows and interface counters in ClickHouse, acknowledging the bus once an insert committed',
  config: WriterConfig,
  consumes: [flowsEnriched, countersInterfaces],
  produces: [],
  start: (config) =>
    Effect.gen(function* () {
      const clickhouse = yield* clickHouseSection
      const bus = yield* Bus
      const context = yield* ActorContext
      const metrics = writerMetrics(yield* Metrics)
      const health = Option.getOrUndefined(yield* Effect.serviceOption(Health))
      const setAvailable = (ok: boolean, detail?: string) => health?.setReady(READINESS, ok, ok ? undefined : `ClickHouse: ${detail}`)

      const client = yield* clickHouseScoped(clickhouse)
      const inserter = clickhouse.mode === 'embedded' ? embeddedInserter(client, config.spoolDirectory) : serverInserter(client)
      const plans = planColumns(storageColumns(clickhouse).map((c) => ({ name: c.name, type: c.type, source: c.name })))
      const encoder = new NativeEncoder(plans)
      const flowsTable = qualifiedTable(clickhouse, FLOWS_TABLE)
      const countersTable = qualifiedTable(clickhouse, COUNTERS_TABLE)
      const label = { table: FLOWS_TABLE }

      // Readiness follows ClickHouse: known once a first request answered.
      setAvailable(false, 'not contacted yet')
      yield* Effect.forkScoped(
        Effect.promise(() =>
          client.ping().then((result) => setAvailable(result.success, result.success ? undefined : describeError(result.error))),
        ),
      )

      // Groups are recorded in the writer.batches bucket, shared by the writers of the group.
      const batches = yield* bus.state(writerBatches)
      const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)
      const ledger = new BatchLedger(
        {
          get: (key) => run(batches.get(key)),
          put: (key, record) => run(batches.put(key, record)),
          delete: (key) => run(batches.delete(key)),
          keys: () => run(batches.keys),
        },
        config.group,
        `${flowsEnriched.name}.v${flowsEnriched.version}`,
        config.batchRecordRetention,
      )
      yield* Effect.tryPromise({ try: () => ledger.load(), catch: (cause) => cause })
      yield* batches.watch((key, record) => ledger.apply(key, record))

      const storeFlows: StoreBatch = (messages, token) =>
        inserter.insertNative(
          flowsTable,
          encoder.columns,
          messages.length === 1 ? messages[0]!.block : Buffer.concat(messages.map((m) => m.block)),
          token,
        )

      const writer = new FlowWriter({
        store: storeFlows,
        concurrency: config.concurrency,
        batchRows: config.batchRows,
        batchTimeMs: config.batchTime,
        // Half the bus limits: the other half covers the inserts under way.
        maxOpenMessages: Math.max(1, Math.floor(config.maxInFlight / 2)),
        maxOpenBytes: Math.max(1, Math.floor(config.maxInFlightBytes / 2)),
        ledger,
        regroupWaitMs: config.regroupWait,
        retryMinMs: config.retryMin,
        retryMaxMs: config.retryMax,
        events: {
          inserted: (rows, seconds) => {
            metrics.rows.inc(label, rows)
            metrics.insertRows.observe(label, rows)
            metrics.insertSeconds.observe(label, seconds)
            context.emitted('rows', rows)
            context.emitted('inserts')
          },
          retrying: (reason, attempt, delayMs) => {
            metrics.retries.inc(label)
            context.error('insert-failed')
            if (attempt === 1 || attempt % 10 === 0) {
              Effect.runFork(Effect.logWarning(`insert into ${FLOWS_TABLE} failed (attempt ${attempt}), retrying in ${delayMs} ms: ${reason}`))
            }
          },
          rejected: (reason, rows) => {
            metrics.rejectedRows.inc(label, rows)
            context.dropped('rejected-by-clickhouse', rows)
            Effect.runFork(Effect.logError(`ClickHouse refused ${rows} flows, their bus message goes to the dead-letter subject: ${reason}`))
          },
          available: setAvailable,
          alreadyStored: (rows) => metrics.redeliveredRows.inc(label, rows),
          regroupIncomplete: (record, found) =>
            Effect.runFork(
              Effect.logWarning(
                `recorded group of ${record.messages} messages (shard ${record.shard}, positions ${record.firstPosition}-${record.lastPosition}) came back with ${found}: inserted as a new group`,
              ),
            ),
        },
      })
      metrics.pendingMessages.set(label, 0)
      const sample = () => {
        const pending = writer.pending(Date.now())
        metrics.pendingMessages.set(label, pending.messages)
        metrics.lagSeconds.set(label, pending.oldestAgeMs / 1000)
      }
      const sampler = setInterval(sample, 1000)
      yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(sampler)))

      // Subscribed before the writer's finalizer is added, so on stop the writer finishes its
      // inserts and acknowledges first, and the subscription leaves the group after.
      yield* bus.subscribe(
        flowsEnriched,
        { group: config.group, ack: 'manual', maxInFlight: config.maxInFlight, maxInFlightBytes: config.maxInFlightBytes },
        (message) =>
          Effect.suspend(() => {
            const batch = message.value
            context.received('flows', batch.count)
            context.received('batches')
            if (batch.count === 0) return message.ack
            let block: Uint8Array
            try {
              block = encoder.encode(batch)
            } catch (cause) {
              context.error('encode')
              return Effect.fail(new FlowsRefused(flowsEnriched.name, message.key, `cannot encode: ${describeError(cause)}`))
            }
            return Effect.promise(() =>
              writer.accept({
                hash: blockHash(block),
                block,
                rows: batch.count,
                size: message.size,
                shard: message.shard,
                position: message.position,
                arrivedMs: Date.now(),
                ack: () => Effect.runPromise(message.ack),
                nak: (delayMs) => Effect.runPromise(message.nak(delayMs)),
              }),
            ).pipe(
              Effect.flatMap((accepted) =>
                accepted.held ? Effect.void : Effect.fail(new FlowsRefused(flowsEnriched.name, message.key, accepted.rejected)),
              ),
            )
          }),
      )
      yield* Effect.addFinalizer(() => Effect.promise(() => writer.close()))

      // Counter samples are few: one insert per message, retried in the handler while ClickHouse is away.
      yield* bus.subscribe(countersInterfaces, { group: config.group }, (message) =>
        Effect.tryPromise({
          try: async () => {
            const rows = counterRows(message.value)
            context.received('counters', rows.length)
            const token = countersToken(rows)
            for (let attempt = 1; ; attempt++) {
              try {
                await inserter.insertRows(countersTable, rows, token)
                setAvailable(true)
                context.emitted('counters', rows.length)
                return
              } catch (error) {
                if (isRejectedData(error)) throw new FlowsRefused(countersInterfaces.name, message.key, describeError(error))
                setAvailable(false, describeError(error))
                metrics.retries.inc({ table: COUNTERS_TABLE })
                await new Promise((resolve) => setTimeout(resolve, Math.min(config.retryMax, config.retryMin * 2 ** (attempt - 1))))
              }
            }
          },
          catch: (cause) => cause,
        }),
      )
    }),
})
