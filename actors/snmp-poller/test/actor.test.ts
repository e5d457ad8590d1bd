// The snmp-poller actor through a real bus (in-process, and NATS JetStream KV via the harness) and
// a real snmpd: a metadata request makes bucket entries appear that match snmpget, a dead agent is
// broken off without delaying the live one, and a restarted poller reloads from the buckets.
import { setTimeout as sleep } from 'node:timers/promises'
import { type ExporterInfo, type InterfaceInfo, exporterStateKey, interfaceStateKey, metadataExporters, metadataInterfaces, metadataRequests, parseIP } from '@flowbus/bus-schemas'
import {
  type BusService,
  type HttpEndpoint,
  type ResolvedConfig,
  type StateStore,
  type Transport,
  configSchema,
  connectTransport,
  loadConfig,
  makeBus,
  makeMetrics,
  runActors,
} from '@flowbus/runtime'
import { Effect, Fiber } from 'effect'
import { afterEach, describe, expect, it } from 'vitest'
import { metricSample } from '../../../test/src/harness/metrics.js'
import { type NatsServer, startNats } from '../../../test/src/harness/nats.js'
import { serviceOrSkip } from '../../../test/src/harness/process.js'
import { type ReferenceValue, type Snmpd, freeUdpPort, startSnmpd } from '../../../test/src/harness/snmpd.js'
// The in-process transport is not part of the runtime's public surface; tests reach for it.
import { createMemoryBus } from '../../runtime/src/bus/memory.js'
import { snmpPollerActor } from '../src/actor.js'
import { OID, pollOids } from '../src/poll.js'
import { waitFor as harnessWaitFor } from '../../../test/src/harness/process.js'

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const waitFor = (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000) =>
  harnessWaitFor(what, condition, timeoutMs, 20)

const GOOD = parseIP('127.0.0.1')
// Also on loopback, polled at a port nobody listens on: every request times out.
const DEAD = parseIP('127.0.0.2')

const agent = serviceOrSkip<Snmpd>('snmpd', () => startSnmpd({ communities: ['flowbus-ro'] }))

interface Poller {
  metrics: () => Promise<string>
  stop: () => Promise<void>
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** The whole story on one bus; `connect` gives each client (test, poller runs) its own transport. */
const scenario = async (busSection: Record<string, unknown>, connect: () => Promise<Transport>) => {
  const snmpd = agent.get()
  const deadPort = await freeUdpPort()
  const resolved = loadConfig(configSchema([snmpPollerActor]), { env: {} }) as ResolvedConfig
  const busConfig = { ...resolved.bus, ...busSection } as ResolvedConfig['bus']
  const config = {
    ...resolved,
    bus: busConfig,
    http: { listen: '127.0.0.1:0' },
    'snmp-poller': {
      ...(resolved['snmp-poller'] as object),
      agents: [
        { subnet: '127.0.0.1/32', version: '2c', communities: ['flowbus-ro'], port: snmpd.port },
        { subnet: '127.0.0.2/32', version: '2c', communities: ['flowbus-ro'], port: deadPort, agentAddress: '127.0.0.1' },
      ],
      timeout: 1_500,
      retries: 0,
      concurrency: 2,
      coalesceDelay: 20,
      breaker: { failures: 2, openFor: 600_000, maxOpenFor: 600_000 },
    },
  } as ResolvedConfig

  const testTransport = await connect()
  cleanups.push(() => testTransport.close())
  const bus: BusService = makeBus(testTransport, busConfig, makeMetrics())
  const interfaces: StateStore<InterfaceInfo> = await run(bus.state(metadataInterfaces))
  const exporters: StateStore<ExporterInfo> = await run(bus.state(metadataExporters))

  const startPoller = async (): Promise<Poller> => {
    const transport = await connect()
    let endpoint: HttpEndpoint | undefined
    const fiber = Effect.runFork(runActors({ actors: [snmpPollerActor], config, transport, onReady: (e) => (endpoint = e) }))
    await waitFor(() => 'the poller to start', () => endpoint !== undefined)
    const url = `http://127.0.0.1:${endpoint!.address!.port}/metrics`
    let stopped = false
    const stop = async () => {
      if (stopped) return
      stopped = true
      await run(Fiber.interrupt(fiber))
      await transport.close()
    }
    cleanups.push(stop)
    return { metrics: async () => (await fetch(url)).text(), stop }
  }

  const request = (address: Uint8Array, ifIndexes: number[]) => run(bus.broadcast(metadataRequests, { requests: [{ exporterAddress: address, ifIndexes }] }))
  /** Broadcasts are not durable: send again until the answer shows (as enrichers do). */
  const requestUntil = async (address: Uint8Array, ifIndexes: number[], what: string, seen: () => Promise<boolean>) => {
    for (let attempt = 0; attempt < 15; attempt++) {
      await request(address, ifIndexes)
      const deadline = Date.now() + 2_000
      while (Date.now() < deadline) {
        if (await seen()) return
        await sleep(20)
      }
    }
    throw new Error(`timed out waiting for ${what}`)
  }

  const walked = await snmpd.walk({ community: 'flowbus-ro' }, '1.3.6.1.2.1.2.2.1.1')
  const ifIndexes = [...walked.values()].map((v) => (v.kind === 'number' ? v.value : -1))
  expect(ifIndexes.length).toBeGreaterThan(1)
  const firstBatch = ifIndexes.slice(0, -1)
  const last = ifIndexes[ifIndexes.length - 1]!
  const dead = { exporter: '127.0.0.2' }
  const good = { exporter: '127.0.0.1' }

  // 1. The dead exporter is asked first; the live one's answers are published while the dead
  //    one's request is still waiting for its timeout (no error counted for it yet).
  //    Two requests for the live exporter in one batch (as a shard sends them) make one GET.
  const poller = await startPoller()
  await request(DEAD, [1, 2])
  const half = Math.ceil(firstBatch.length / 2)
  await run(
    bus.broadcast(metadataRequests, {
      requests: [
        { exporterAddress: GOOD, ifIndexes: firstBatch.slice(0, half) },
        { exporterAddress: GOOD, ifIndexes: firstBatch.slice(half) },
      ],
    }),
  )
  await waitFor(
    () => 'the live exporter in the buckets',
    async () => (await run(interfaces.get(interfaceStateKey(GOOD, firstBatch[firstBatch.length - 1]!)))) !== undefined,
  )
  let text = await poller.metrics()
  expect(metricSample(text, 'flowbus_snmp_poller_successes_total', good)).toBe(1)
  expect(metricSample(text, 'flowbus_snmp_poller_requests_total', good)).toBe(1)
  expect(metricSample(text, 'flowbus_snmp_poller_errors_total', dead)).toBe(0)
  expect(metricSample(text, 'flowbus_snmp_poller_requests_total', dead)).toBe(0)

  // 2. Two timeouts open the dead exporter's breaker.
  await waitFor(
    () => 'the dead exporter breaker to open',
    async () => metricSample(await poller.metrics(), 'flowbus_snmp_poller_breaker_state', dead) === 2,
  )
  text = await poller.metrics()
  expect(metricSample(text, 'flowbus_snmp_poller_errors_total', { ...dead, reason: 'timeout' })).toBe(2)
  expect(metricSample(text, 'flowbus_snmp_poller_timeouts_total', dead)).toBe(2)
  expect(metricSample(text, 'flowbus_snmp_poller_breaker_opened_total', dead)).toBe(1)
  expect(metricSample(text, 'flowbus_snmp_poller_breaker_state', good)).toBe(0)

  // 3. While open, requests for it send nothing; the live exporter is still served.
  await request(DEAD, [3])
  await requestUntil(GOOD, [last], 'the last interface in the bucket', async () => (await run(interfaces.get(interfaceStateKey(GOOD, last)))) !== undefined)
  text = await poller.metrics()
  expect(metricSample(text, 'flowbus_snmp_poller_requests_total', dead)).toBe(2)
  expect(metricSample(text, 'flowbus_snmp_poller_successes_total', good)).toBe(2)

  // 4. What the buckets hold equals snmpget, field by field.
  const reference = await snmpd.get({ community: 'flowbus-ro' }, pollOids(ifIndexes))
  const text16 = (v: ReferenceValue | undefined) => (v?.kind === 'bytes' ? Buffer.from(v.hex, 'hex').toString('utf8') : `not a string: ${JSON.stringify(v)}`)
  const exporter = await run(exporters.get(exporterStateKey(GOOD)))
  expect(exporter).toMatchObject({ name: text16(reference.get(OID.sysName)), sysName: text16(reference.get(OID.sysName)) })
  expect(exporter!.updatedUnixMs).toBeGreaterThan(0)
  for (const ifIndex of ifIndexes) {
    const info = await run(interfaces.get(interfaceStateKey(GOOD, ifIndex)))
    const alias = text16(reference.get(`${OID.ifAlias}.${ifIndex}`))
    const speed = reference.get(`${OID.ifHighSpeed}.${ifIndex}`)
    expect({ ifIndex, name: info?.name, description: info?.description, speed: info?.speed }).toEqual({
      ifIndex,
      name: text16(reference.get(`${OID.ifName}.${ifIndex}`)),
      description: alias !== '' ? alias : text16(reference.get(`${OID.ifDescr}.${ifIndex}`)),
      speed: speed?.kind === 'number' ? speed.value : -1,
    })
  }
  expect(await run(exporters.get(exporterStateKey(DEAD)))).toBeUndefined()
  await poller.stop()

  // 5. A restarted poller reloads the buckets: the same request is answered without SNMP.
  const restarted = await startPoller()
  text = await restarted.metrics()
  expect(metricSample(text, 'flowbus_snmp_poller_loaded_total', { kind: 'interfaces' })).toBe(ifIndexes.length)
  expect(metricSample(text, 'flowbus_snmp_poller_loaded_total', { kind: 'exporters' })).toBe(1)
  expect(metricSample(text, 'flowbus_snmp_poller_cache_entries', { kind: 'interfaces' })).toBe(ifIndexes.length)
  await requestUntil(GOOD, ifIndexes, 'the request to be answered from the cache', async () =>
    metricSample(await restarted.metrics(), 'flowbus_snmp_poller_demanded_interfaces_total', { outcome: 'cached' }) >= ifIndexes.length,
  )
  text = await restarted.metrics()
  expect(metricSample(text, 'flowbus_snmp_poller_demanded_interfaces_total', { outcome: 'polled' })).toBe(0)
  expect(metricSample(text, 'flowbus_snmp_poller_requests_total')).toBe(0)
  await restarted.stop()
}

describe('snmp-poller actor', () => {
  it('on the in-process bus: publishes what snmpd answers, breaks off a dead agent, reloads after a restart', async () => {
    const memory = createMemoryBus()
    await scenario({ transport: 'memory' }, async () => memory.connect())
  }, 60_000)

  describe('on NATS', () => {
    const nats = serviceOrSkip<NatsServer>('nats-server', () => startNats())
    it('publishes to JetStream KV, breaks off a dead agent, reloads after a restart', async () => {
      const section = { transport: 'nats', nats: { servers: [nats.get().url] } }
      const resolved = loadConfig(configSchema([snmpPollerActor]), { env: {} }) as ResolvedConfig
      await scenario(section, () => connectTransport({ ...resolved.bus, ...section } as ResolvedConfig['bus']))
    }, 60_000)
  })
})
