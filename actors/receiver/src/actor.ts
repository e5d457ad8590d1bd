// The receiver actor: socket threads read UDP and batch datagrams into encoded flows.raw messages;
// the main thread queues them and publisher fibers drain bounded queues, so the sockets never wait.
import { hostname } from 'node:os'
import { flowsRaw, preEncoded } from '@flowbus/bus-schemas'
import { ActorContext, Bus, defineActor, Metrics, shardOf } from '@flowbus/runtime'
import { Effect, Fiber, Queue, Runtime, Schedule } from 'effect'
import { ReceiverConfig, type ListenerConfig } from './config.js'
import { makeReceiverMetrics } from './metrics.js'
import { readUdpDrops } from './proc-net-udp.js'
import { startSocketThread, type SocketThread, type SocketThreadEvents } from './socket-thread.js'
import type { BoundSocketInfo, SocketThreadSetup } from './worker-protocol.js'

/** Exporters silent this long are forgotten by the batcher (their metric series stay). */
const EXPORTER_IDLE_MS = 10 * 60_000
/** Longest wait at shutdown for queued messages to reach the bus. */
const DRAIN_TIMEOUT_MS = 10_000
/** A repeated warning (backlog, publish failures) is logged at most this often. */
const WARN_INTERVAL_MS = 10_000
/** A crashed socket thread is restarted after 1 s, doubling up to this, back to 1 s once one ran a minute. */
const MAX_RESTART_DELAY_MS = 30_000

/** flows.raw as the socket threads write it: RawPacketBatch bytes, published as they are. */
const flowsRawEncoded = preEncoded(flowsRaw)

/** A message from a socket thread, waiting for the bus. */
interface QueuedBatch {
  readonly key: string
  readonly bytes: Uint8Array
  readonly packets: number
}

/** Where the receiver of this process listens, once started (tests and the bench use port 0). */
export interface ReceiverEndpoint {
  readonly listener: string
  readonly address: string
  readonly port: number
  readonly family: 4 | 6
  readonly receiveBuffer: number
}

const endpoints: ReceiverEndpoint[] = []
const runningThreads: SocketThread[] = []

/** The sockets the receiver of this process has bound (empty when it is not running). */
export const receiverEndpoints = (): readonly ReceiverEndpoint[] => [...endpoints]

/** The socket threads of the receiver of this process (tests end one abruptly to see the restart). */
export const receiverSocketThreads = (): readonly SocketThread[] => [...runningThreads]

/** Listen addresses as bound, so a restarted thread takes the same ports (port 0 included). */
function boundListener(listener: ListenerConfig, sockets: readonly BoundSocketInfo[]): ListenerConfig {
  const listen = [...new Set(sockets.filter((s) => s.listener === listener.name).map((s) => (s.family === 6 ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`)))]
  return { ...listener, listen: listen.length > 0 ? listen : listener.listen }
}

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

      // A warning repeated by the socket path is logged once per interval, with how many were held back.
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
      const lanes = yield* Effect.forEach(Array.from({ length: config.publishers }), () => Queue.dropping<QueuedBatch>(perLane))
      let pending = 0
      /** Sockets of every running thread, by listener (replaced when a thread restarts). */
      const socketsOf = new Map<string, readonly BoundSocketInfo[]>()
      const allSockets = (): BoundSocketInfo[] => [...socketsOf.values()].flat()

      const metrics = makeReceiverMetrics(
        registry,
        async () => {
          const ports = new Map(allSockets().map((s) => [s.port, s.listener]))
          const drops = await readUdpDrops(new Set(ports.keys()))
          return [...drops].map(([port, n]) => ({ listener: ports.get(port)!, port, drops: n }))
        },
        () => pending,
      )

      // A queued message pins the whole buffer the socket thread wrote it in (a batch's capacity,
      // not its length), so memory is bounded by held buffer bytes as well as by message count.
      let pendingBytes = 0
      const heldBytes = (bytes: Uint8Array): number => bytes.buffer.byteLength
      const queueBatch = (key: string, bytes: Uint8Array, packets: number): void => {
        const lane = lanes[shardOf(key, lanes.length)]!
        const held = heldBytes(bytes)
        if (pendingBytes + held <= config.maxQueuedBytes && Queue.unsafeOffer(lane, { key, bytes, packets })) {
          pending++
          pendingBytes += held
        } else {
          actor.dropped('bus-backlog', packets)
          warnBacklog(
            `the bus is not keeping up: dropping flows.raw messages (queue full: ${pending} messages, ${pendingBytes} bytes held; limits maxQueuedMessages ${config.maxQueuedMessages}, maxQueuedBytes ${config.maxQueuedBytes})`,
          )
        }
      }

      const publish = (queued: QueuedBatch) =>
        bus.publish(flowsRawEncoded, queued.key, queued.bytes).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              actor.emitted('batches')
              actor.emitted('packets', queued.packets)
            }),
          ),
          Effect.catchAll((error) =>
            Effect.sync(() => {
              actor.dropped('publish-failed', queued.packets)
              warnPublish(`publishing flows.raw for exporter ${queued.key} failed, ${queued.packets} datagrams lost: ${error.message}`)
            }),
          ),
          Effect.ensuring(
            Effect.sync(() => {
              pending--
              pendingBytes -= heldBytes(queued.bytes)
            }),
          ),
        )

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

      // What every socket thread reports; the crash handler is added per thread in `launch`.
      const events: Omit<SocketThreadEvents, 'onCrash'> = {
        onBatch: queueBatch,
        onCounts: (counts, socketErrors) => {
          let packets = 0
          for (const c of counts) {
            const labels = { listener: c.listener, exporter: c.exporter }
            metrics.packets.inc(labels, c.packets)
            metrics.bytes.inc(labels, c.bytes)
            packets += c.packets
            if (c.unknownProtocol > 0) {
              metrics.errors.inc({ ...labels, reason: 'unknown-protocol' }, c.unknownProtocol)
              actor.error('unknown-protocol', c.unknownProtocol)
              actor.dropped('unknown-protocol', c.unknownProtocol)
            }
          }
          if (packets > 0) actor.received('packets', packets)
          for (const e of socketErrors) {
            actor.error('socket')
            warnSocket(`listener "${e.listener}" socket error: ${e.message}`)
          }
        },
        onWarning: (message) => log(Effect.logWarning(message)),
      }

      const setupOf = (listener: ListenerConfig): SocketThreadSetup => ({
        listeners: [listener],
        receiveBuffer: config.receiveBuffer,
        maxPackets: config.batchMaxPackets,
        maxBytes: config.batchMaxBytes,
        flushIntervalMs: config.flushInterval,
        idleMs: EXPORTER_IDLE_MS,
        receiverNames: { [listener.name]: `${hostname()}/${listener.name}` },
      })

      const publishEndpoints = (): void => {
        endpoints.length = 0
        for (const s of allSockets()) {
          endpoints.push({ listener: s.listener, address: s.host, port: s.port, family: s.family, receiveBuffer: s.receiveBuffer })
          metrics.receiveBuffer.set({ listener: s.listener, address: s.configured }, s.receiveBuffer)
        }
      }

      // One thread per listener. A thread that dies is restarted on the ports it had, after a pause
      // that doubles while it keeps dying; the datagrams it held and its socket queues are lost.
      let stopping = false
      const threads = new Map<string, SocketThread>()
      const restartTimers = new Set<NodeJS.Timeout>()
      const scheduleRestart = (listener: ListenerConfig, attempt: number, reason: string): void => {
        actor.error('socket-thread')
        if (stopping) return
        const delay = Math.min(MAX_RESTART_DELAY_MS, 1000 * 2 ** attempt)
        log(Effect.logError(`listener "${listener.name}": ${reason}; restarting its socket thread in ${delay} ms`))
        const timer = setTimeout(() => {
          restartTimers.delete(timer)
          if (stopping) return
          launch(listener, attempt + 1).then(
            (restarted) => {
              if (stopping) void restarted.stop()
              else log(Effect.logInfo(`listener "${listener.name}": socket thread restarted`))
            },
            (failure: Error) => scheduleRestart(listener, attempt + 1, `restarting failed: ${failure.message}`),
          )
        }, delay)
        restartTimers.add(timer)
      }
      const launch = (listener: ListenerConfig, attempt: number): Promise<SocketThread> => {
        const startedAt = Date.now()
        return startSocketThread(
          setupOf(listener),
          {
            ...events,
            onCrash: (error) => {
              const thread = threads.get(listener.name)
              threads.delete(listener.name)
              if (thread) runningThreads.splice(runningThreads.indexOf(thread), 1)
              // Same ports again (port 0 included); a thread that ran a minute starts the pauses over.
              const again = boundListener(listener, socketsOf.get(listener.name) ?? [])
              scheduleRestart(again, Date.now() - startedAt > 60_000 ? 0 : attempt, error.message)
            },
          },
          `receiver-${listener.name}`,
        ).then((thread) => {
          threads.set(listener.name, thread)
          runningThreads.push(thread)
          socketsOf.set(listener.name, thread.sockets)
          publishEndpoints()
          return thread
        })
      }

      const stopThreads = async (): Promise<void> => {
        stopping = true
        for (const timer of restartTimers) clearTimeout(timer)
        restartTimers.clear()
        const all = [...threads.values()]
        threads.clear()
        runningThreads.length = 0
        await Promise.all(all.map((t) => t.stop()))
        endpoints.length = 0
      }

      // Threads last: released first, so reading stops and the last messages are queued before the drain.
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            try {
              for (const listener of config.listeners) await launch(listener, 0)
            } catch (error) {
              await stopThreads()
              throw error
            }
          },
          catch: (error) => error,
        }),
        () => Effect.promise(stopThreads),
      )
      const sockets = allSockets()
      yield* Effect.logInfo(
        `listening on ${sockets.map((s) => `${s.listener} ${s.family === 6 ? `[${s.host}]` : s.host}:${s.port}`).join(', ') || 'nothing'}`,
      )
    }),
})
