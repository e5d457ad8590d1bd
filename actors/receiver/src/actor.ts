// The receiver actor: UDP sockets feed the batcher in the socket callbacks, a timer closes partial
// messages, and publisher fibers drain bounded queues into flows.raw so the socket loop never waits.
import { hostname } from 'node:os'
import { flowsRaw } from '@flowbus/bus-schemas'
import { ActorContext, Bus, defineActor, Metrics, shardOf } from '@flowbus/runtime'
import { Effect, Fiber, Queue, Runtime, Schedule } from 'effect'
import { PacketBatcher, type ClosedBatch } from './batcher.js'
import { ReceiverConfig } from './config.js'
import { makeReceiverMetrics } from './metrics.js'
import { readUdpDrops } from './proc-net-udp.js'
import { closeSockets, openSockets, type BoundSocket } from './sockets.js'

/** Exporters silent this long are forgotten by the batcher (their metric series stay). */
const EXPORTER_IDLE_MS = 10 * 60_000
/** Longest wait at shutdown for queued messages to reach the bus. */
const DRAIN_TIMEOUT_MS = 10_000
/** A repeated warning (backlog, publish failures) is logged at most this often. */
const WARN_INTERVAL_MS = 10_000

/** Where the receiver of this process listens, once started (tests and the bench use port 0). */
export interface ReceiverEndpoint {
  readonly listener: string
  readonly address: string
  readonly port: number
  readonly family: 4 | 6
  readonly receiveBuffer: number
}

const endpoints: ReceiverEndpoint[] = []

/** The sockets the receiver of this process has bound (empty when it is not running). */
export const receiverEndpoints = (): readonly ReceiverEndpoint[] => [...endpoints]

export const receiverActor = defineActor({
  name: 'receiver',
  description: 'UDP listeners for NetFlow, IPFIX and sFlow; publishes the datagrams, batched per exporter, on flows.raw',
  config: ReceiverConfig,
  consumes: [],
  produces: [flowsRaw],
  start: (config) =>
    Effect.gen(function* () {
      const bus = yield* Bus
      const actor = yield* ActorContext
      const { registry } = yield* Metrics
      const runtime = yield* Effect.runtime<never>()
      const log = (effect: Effect.Effect<void>): void => Runtime.runSync(runtime)(effect)

      // A warning repeated by the socket loop is logged once per interval, with how many were held back.
      const rateLimitedWarning = () => {
        let last = 0
        let held = 0
        return (message: string): void => {
          const now = Date.now()
          if (now - last < WARN_INTERVAL_MS) {
            held++
            return
          }
          last = now
          log(Effect.logWarning(held > 0 ? `${message} (${held} more since the last warning)` : message))
          held = 0
        }
      }
      const warnBacklog = rateLimitedWarning()
      const warnPublish = rateLimitedWarning()
      const warnSocket = rateLimitedWarning()

      const perLane = Math.max(1, Math.ceil(config.maxQueuedMessages / config.publishers))
      const lanes = yield* Effect.forEach(Array.from({ length: config.publishers }), () => Queue.dropping<ClosedBatch>(perLane))
      let pending = 0
      let sockets: BoundSocket[] = []

      const metrics = makeReceiverMetrics(
        registry,
        async () => {
          const ports = new Map(sockets.map((s) => [s.port, s.listener]))
          const drops = await readUdpDrops(new Set(ports.keys()))
          return [...drops].map(([port, n]) => ({ listener: ports.get(port)!, port, drops: n }))
        },
        () => pending,
      )

      const batcher = new PacketBatcher({
        receiverName: (listener) => `${hostname()}/${listener}`,
        maxPackets: config.batchMaxPackets,
        maxBytes: config.batchMaxBytes,
        emit: (closed) => {
          const lane = lanes[shardOf(closed.key, lanes.length)]!
          if (Queue.unsafeOffer(lane, closed)) pending++
          else {
            actor.dropped('bus-backlog', closed.batch.packets.length)
            warnBacklog(`the bus is not keeping up: dropping flows.raw messages (queue of ${config.maxQueuedMessages} full)`)
          }
        },
      })

      const publish = (closed: ClosedBatch) => {
        const count = closed.batch.packets.length
        return bus.publish(flowsRaw, closed.key, closed.batch).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              actor.emitted('batches')
              actor.emitted('packets', count)
            }),
          ),
          Effect.catchAll((error) =>
            Effect.sync(() => {
              actor.dropped('publish-failed', count)
              warnPublish(`publishing flows.raw for exporter ${closed.key} failed, ${count} datagrams lost: ${error.message}`)
            }),
          ),
          Effect.ensuring(Effect.sync(() => pending--)),
        )
      }

      // Publishers: one fiber per lane; an exporter always maps to the same lane, so its messages stay in order.
      yield* Effect.acquireRelease(
        // Forked from an uninterruptible acquire: the loops themselves must be made interruptible.
        Effect.forEach(lanes, (lane) =>
          Effect.forkDaemon(Effect.interruptible(Effect.forever(Effect.flatMap(Queue.take(lane), publish)))),
        ),
        (fibers) =>
          Effect.gen(function* () {
            const deadline = Date.now() + DRAIN_TIMEOUT_MS
            while (pending > 0 && Date.now() < deadline) yield* Effect.sleep('5 millis')
            if (pending > 0) yield* Effect.logWarning(`stopping with ${pending} flows.raw messages not published`)
            yield* Fiber.interruptAll(fibers)
          }),
      )

      const tick = (): void => {
        batcher.flush()
        let packets = 0
        batcher.takeCounts((c) => {
          const labels = { listener: c.listener, exporter: c.exporter }
          metrics.packets.inc(labels, c.packets)
          metrics.bytes.inc(labels, c.bytes)
          packets += c.packets
          if (c.unknownProtocol > 0) {
            metrics.errors.inc({ ...labels, reason: 'unknown-protocol' }, c.unknownProtocol)
            actor.error('unknown-protocol', c.unknownProtocol)
            actor.dropped('unknown-protocol', c.unknownProtocol)
          }
        })
        if (packets > 0) actor.received('packets', packets)
      }
      yield* Effect.acquireRelease(
        Effect.forkDaemon(
          Effect.interruptible(
            Effect.all(
            [
              Effect.repeat(Effect.sync(tick), Schedule.spaced(`${config.flushInterval} millis`)),
              Effect.repeat(
                Effect.sync(() => batcher.forgetIdle(Date.now() - EXPORTER_IDLE_MS)),
                Schedule.spaced('1 minute'),
              ),
            ],
              { concurrency: 'unbounded', discard: true },
            ),
          ),
        ),
        (fiber) => Fiber.interrupt(fiber),
      )

      // Sockets last: released first, so reading stops before the last messages are flushed and drained.
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            openSockets({
              listeners: config.listeners,
              receiveBuffer: config.receiveBuffer,
              onDatagram: (listener) => {
                const exporters = batcher.exportersOf(listener)
                return (payload, address, port) => batcher.datagramOf(exporters, listener, address, port, payload, Date.now())
              },
              warn: (message) => log(Effect.logWarning(message)),
              onSocketError: (listener, error) => {
                actor.error('socket')
                warnSocket(`listener "${listener}" socket error: ${error.message}`)
              },
            }),
          catch: (error) => error,
        }),
        (bound) =>
          Effect.promise(() => closeSockets(bound)).pipe(
            Effect.zipRight(
              Effect.sync(() => {
                endpoints.length = 0
                tick()
              }),
            ),
          ),
      ).pipe(
        Effect.tap((bound) =>
          Effect.sync(() => {
            sockets = bound
            endpoints.length = 0
            for (const s of bound) {
              endpoints.push({ listener: s.listener, address: s.host, port: s.port, family: s.family, receiveBuffer: s.receiveBuffer })
              metrics.receiveBuffer.set({ listener: s.listener, address: s.configured }, s.receiveBuffer)
            }
          }),
        ),
      )
      yield* Effect.logInfo(
        `listening on ${sockets.map((s) => `${s.listener} ${s.family === 6 ? `[${s.host}]` : s.host}:${s.port}`).join(', ') || 'nothing'}`,
      )
    }),
})
