// The demo-exporter actor: runs the simulation on a clock and sends each exporter's datagrams
// from its own address, answers SNMP for its interfaces and keeps a BMP session to the collector.
import { createSocket, type Socket } from 'node:dgram'
import { ActorContext, Metrics, defineActor } from '@flowbus/runtime'
import { Effect, Runtime } from 'effect'
import { BmpSession, type BmpSessionState } from './bmp-session.js'
import { DemoExporterConfig, configProblem, splitHostPort } from './config.js'
import { bmpSessionMessages, bmpTermination } from './encode/bmp.js'
import { makeDemoExporterMetrics } from './metrics.js'
import { DemoSimulation } from './simulation.js'
import { type DemoSnmpAgent, startSnmpAgent } from './snmp-agent.js'

const STATE_VALUE: Readonly<Record<BmpSessionState, number>> = { down: 0, stopped: 0, connecting: 1, up: 2 }

const bindUdp = (address: string, name: string): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', sendBufferSize: 4 << 20 })
    socket.once('error', (error) => reject(new Error(`demo-exporter: exporter ${name} cannot send from ${address}: ${error.message}`)))
    socket.bind(0, address, () => {
      socket.removeAllListeners('error')
      resolve(socket)
    })
  })

export const demoExporterActor = defineActor({
  name: 'demo-exporter',
  description: 'Simulated provider network for demos and tests: NetFlow v9/IPFIX/sFlow exporters with SNMP agents and BMP sessions',
  config: DemoExporterConfig,
  consumes: [],
  produces: [],
  enabledByDefault: false,
  start: (config) =>
    Effect.gen(function* () {
      const problem = configProblem(config)
      if (problem !== undefined) return yield* Effect.fail(new Error(problem))
      const metrics = makeDemoExporterMetrics((yield* Metrics).registry)
      const actor = yield* ActorContext
      const runtime = yield* Effect.runtime<never>()
      const log = (effect: Effect.Effect<void>) => Runtime.runFork(runtime)(effect)
      const simulation = new DemoSimulation(config, Date.now())
      const network = simulation.network

      // SNMP agents first: a poller asking early gets its answers.
      if (config.snmp.enabled) {
        for (const exporter of config.exporters) {
          yield* Effect.acquireRelease(
            Effect.tryPromise({
              try: () =>
                startSnmpAgent(exporter, config.snmp.port, config.snmp.community, {
                  answered: (name) => metrics.snmpAnswered.inc({ exporter: name }),
                  failed: (name, reason) => {
                    metrics.snmpErrors.inc({ exporter: name, reason })
                    actor.error(`snmp-${reason}`)
                  },
                }),
              catch: (error) => error as Error,
            }),
            (agent: DemoSnmpAgent) => Effect.promise(() => agent.close()),
          )
        }
      }

      if (config.bmp.enabled) {
        const { host, port } = splitHostPort(config.bmp.collector)
        for (const exporter of network.exporters) {
          const name = exporter.config.name
          const session = new BmpSession({
            name,
            localAddress: exporter.config.address,
            host,
            port,
            reconnectDelayMs: config.bmp.reconnectDelay,
            messages: () =>
              bmpSessionMessages(
                { name, description: `flowbus demo router ${name}`, address: exporter.address, asn: config.localAS },
                exporter.peers,
                Date.now(),
              ),
            termination: bmpTermination,
            onState: (state, detail) => {
              metrics.bmpState.set({ exporter: name }, STATE_VALUE[state])
              if (state === 'up') {
                metrics.bmpSessions.inc({ exporter: name })
                log(Effect.logInfo(`BMP session of ${name} up to ${config.bmp.collector}`))
              } else if (state === 'down') {
                log(Effect.logDebug(`BMP session of ${name} down${detail ? `: ${detail}` : ''}; retrying in ${config.bmp.reconnectDelay} ms`))
              }
            },
          })
          yield* Effect.acquireRelease(
            Effect.sync(() => session.start()),
            () => Effect.promise(() => session.stop()),
          )
        }
      }

      const sockets: Socket[] = []
      for (const exporter of network.exporters) {
        const socket = yield* Effect.acquireRelease(
          Effect.tryPromise({ try: () => bindUdp(exporter.config.address, exporter.config.name), catch: (error) => error as Error }),
          (s) => Effect.sync(() => s.close()),
        )
        sockets.push(socket)
      }
      const flowTarget = splitHostPort(config.flowTarget)
      const sflowTarget = splitHostPort(config.sflowTarget)

      const tick = () => {
        const outputs = simulation.tick(Date.now())
        outputs.forEach((out, i) => {
          const socket = sockets[i]!
          const name = out.exporter.config.name
          const target = out.protocol === 'sflow-v5' ? sflowTarget : flowTarget
          for (const datagram of out.datagrams) {
            socket.send(datagram, target.port, target.host, (error) => {
              if (error) {
                metrics.sendErrors.inc({ exporter: name })
                actor.error('send')
              }
            })
          }
          const labels = { exporter: name, protocol: out.protocol }
          metrics.flows.inc(labels, out.flows)
          metrics.packets.inc(labels, out.packets)
          metrics.bytes.inc(labels, out.bytes)
          metrics.datagrams.inc(labels, out.datagrams.length)
          actor.emitted('flows', out.flows)
        })
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => setInterval(tick, config.tick)),
        (timer) => Effect.sync(() => clearInterval(timer)),
      )
      yield* Effect.logInfo(
        `${network.exporters.length} demo exporters (${network.exporters.map((e) => `${e.config.name} ${e.config.address} ${e.config.protocol}`).join(', ')}) sending ${config.rate} flows/s at peak to ${config.flowTarget} (NetFlow/IPFIX) and ${config.sflowTarget} (sFlow)` +
          (config.snmp.enabled ? `, SNMP on port ${config.snmp.port}` : '') +
          (config.bmp.enabled ? `, BMP to ${config.bmp.collector}` : ''),
      )
    }),
})
