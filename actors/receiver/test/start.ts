// Runs the receiver actor as the kernel does (actorLayer over a Bus on a given transport) and
// collects what it publishes on flows.raw; shared by the receiver tests and the receive benchmark.
import { flowsRaw, rawPacketBatchCodec, type RawPacketBatch } from '@flowbus/bus-schemas'
import { actorLayer, BusLive, BusSection, HealthLive, makeMetrics, Metrics, streamSpecFor, type MetricsService, type Transport } from '@flowbus/runtime'
import { Effect, Exit, Layer, Logger, LogLevel, Schema, Scope } from 'effect'
import { receiverActor } from '../src/actor.js'
import { ReceiverConfig } from '../src/config.js'

export interface PublishedBatch {
  readonly key: string
  readonly batch: RawPacketBatch
}

export interface RunningReceiver {
  readonly metrics: MetricsService
  /** Messages published on flows.raw, in delivery order. */
  readonly published: PublishedBatch[]
  /** Number of datagrams in `published`. */
  packets(): number
  /** Stops the actor (sockets closed, last messages flushed and published). */
  stop(): Promise<void>
  /** Warnings the actor logged. */
  readonly warnings: string[]
}

/** Starts the receiver with `section` as its configuration section (defaults fill the rest). */
export async function startReceiver(section: unknown, transport: Transport, bus: object = {}): Promise<RunningReceiver> {
  const config = Schema.decodeUnknownSync(ReceiverConfig)(section)
  const busConfig = Schema.decodeUnknownSync(BusSection)(bus)
  const metrics = makeMetrics()
  const published: PublishedBatch[] = []
  let packets = 0
  const spec = streamSpecFor(flowsRaw, busConfig)
  await transport.provision([spec], [])
  const consumer = await transport.consume(
    spec,
    { group: `check-${Math.random().toString(36).slice(2)}`, maxInFlight: 10_000, maxInFlightBytes: 1 << 30, ackWaitMs: 60_000 },
    async (delivery) => {
      const batch = rawPacketBatchCodec.decode(delivery.data)
      published.push({ key: delivery.key, batch })
      packets += batch.packets.length
      await delivery.ack()
    },
  )
  const warnings: string[] = []
  const capture = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === 'Warning') warnings.push(Array.isArray(message) ? message.join(' ') : String(message))
  })
  const layer = actorLayer(receiverActor, config).pipe(
    Layer.provide(Layer.mergeAll(BusLive(busConfig, transport), HealthLive)),
    Layer.provide(Layer.succeed(Metrics, metrics)),
    Layer.provide(Logger.replace(Logger.defaultLogger, capture)),
    Layer.provide(Logger.minimumLogLevel(LogLevel.Info)),
  )
  const scope = Effect.runSync(Scope.make())
  try {
    await Effect.runPromise(Layer.buildWithScope(layer, scope) as Effect.Effect<unknown, unknown>)
  } catch (error) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await consumer.close()
    throw error
  }
  let stopped = false
  return {
    metrics,
    published,
    packets: () => packets,
    warnings,
    stop: async () => {
      if (stopped) return
      stopped = true
      await Effect.runPromise(Scope.close(scope, Exit.void))
      // Deliveries of the last messages may still be on their way to the consumer.
      const deadline = Date.now() + 2000
      let seen = -1
      while (seen !== packets && Date.now() < deadline) {
        seen = packets
        await new Promise((r) => setTimeout(r, 50))
      }
      await consumer.close()
    },
  }
}

/** Resolves once `check` holds, or rejects naming `what` after `ms`. */
export async function until(check: () => boolean, what: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
