// The bmp-rib actor against a real BGP speaker: gobgpd sends its Loc-RIB over BMP to the actor on
// loopback; routes added and withdrawn with the gobgp CLI appear and disappear in routing.lookup
// answers over the bus (in-process, and NATS), and stopping gobgpd removes them after the grace time.
import { setTimeout as sleep } from 'node:timers/promises'
import { type RouteInfo, formatIP, parseIP, routingLookup } from '@flowbus/bus-schemas'
import {
  type BusService,
  type HttpEndpoint,
  type ResolvedConfig,
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
import { type Gobgpd, ensureGobgp, startGobgpd } from '../../../test/src/harness/gobgp.js'
import { metricSample } from '../../../test/src/harness/metrics.js'
import { type NatsServer, startNats } from '../../../test/src/harness/nats.js'
import { freePort, serviceOrSkip, skipReason } from '../../../test/src/harness/process.js'
// The in-process transport is not part of the runtime's public surface; tests reach for it.
import { createMemoryBus } from '../../runtime/src/bus/memory.js'
import { bmpRibActor } from '../src/actor.js'
import { waitFor as harnessWaitFor } from '../../../test/src/harness/process.js'

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const waitFor = (what: () => string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000) =>
  harnessWaitFor(what, condition, timeoutMs, 50)

const unavailable = await skipReason('gobgpd', ensureGobgp)

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const ROUTER = '127.0.0.1'
const ADDRESSES = ['192.0.2.77', '2001:db8:10::1', '198.51.100.1']

const packed = (addresses: string[]): Uint8Array => {
  const out = new Uint8Array(16 * addresses.length)
  addresses.forEach((a, i) => out.set(parseIP(a), 16 * i))
  return out
}

/** A route as text for comparisons: origin AS, path, communities, large communities, prefix length. */
const describeRoute = (r: RouteInfo): string =>
  r.found
    ? `AS${r.asn} [${r.asPath.join(' ')}] c=${r.communities.map((c) => `${Math.floor(c / 65536)}:${c % 65536}`).join(',')} l=${r.largeCommunities.join(':')} /${r.prefixLength} nh=${r.nextHop.length === 16 ? formatIP(r.nextHop) : '-'}`
    : '-'

const scenario = async (busSection: Record<string, unknown>, connect: () => Promise<Transport>) => {
  const bmpPort = await freePort()
  const resolved = loadConfig(configSchema([bmpRibActor]), { env: {} }) as ResolvedConfig
  const busConfig = { ...resolved.bus, ...busSection } as ResolvedConfig['bus']
  const config = {
    ...resolved,
    bus: busConfig,
    http: { listen: '127.0.0.1:0' },
    'bmp-rib': { ...(resolved['bmp-rib'] as object), listenAddress: '127.0.0.1', port: bmpPort, peerGraceTime: 1_000 },
  } as ResolvedConfig

  const testTransport = await connect()
  cleanups.push(() => testTransport.close())
  const bus: BusService = makeBus(testTransport, busConfig, makeMetrics())
  const actorTransport = await connect()
  let endpoint: HttpEndpoint | undefined
  const fiber = Effect.runFork(runActors({ actors: [bmpRibActor], config, transport: actorTransport, onReady: (e) => (endpoint = e) }))
  cleanups.push(async () => {
    await run(Fiber.interrupt(fiber))
    await actorTransport.close()
  })
  await waitFor(() => 'the bmp-rib actor to start', () => endpoint !== undefined)
  const metrics = async () => (await fetch(`http://127.0.0.1:${endpoint!.address!.port}/metrics`)).text()

  const lookup = async (): Promise<string[]> => {
    const response = await run(
      bus.request(routingLookup, { exporterAddress: parseIP(ROUTER), addresses: packed(ADDRESSES), nextHops: new Uint8Array(0), sharedRoutes: true }),
    )
    // Over the bus in the shared form: each distinct route once, an index per address.
    expect(response.routeIndex).toHaveLength(ADDRESSES.length)
    return response.routeIndex.map((i) => (i === 0 ? '-' : describeRoute(response.distinctRoutes[i - 1]!)))
  }
  const lookupUntil = async (what: string, expected: string[]) => {
    let last: string[] = []
    await waitFor(
      () => `${what}: expected ${JSON.stringify(expected)}, last answer ${JSON.stringify(last)}`,
      async () => {
        last = await lookup()
        return JSON.stringify(last) === JSON.stringify(expected)
      },
    )
  }

  // The service answers (nothing found) before any router connects.
  expect(await lookup()).toEqual(['-', '-', '-'])

  const gobgpd: Gobgpd = await startGobgpd({ bmpPort, routeMonitoringPolicy: 'local-rib' })
  let gobgpdRunning = true
  cleanups.push(async () => {
    if (gobgpdRunning) await gobgpd.stop()
  })
  await gobgpd.addRoute({ prefix: '192.0.2.0/24', asPath: [65001, 65002], communities: ['65000:100'], largeCommunities: ['65000:1:2'] })
  await gobgpd.addRoute({
    prefix: '2001:db8:10::/48',
    asPath: [65001, 65003, 4200000001],
    communities: ['65000:200', '65000:201'],
    largeCommunities: ['65000:3:4', '4200000001:5:6'],
  })
  const v4 = 'AS65002 [65001 65002] c=65000:100 l=65000:1:2 /24 nh=0.0.0.0'
  const v6 = 'AS4200000001 [65001 65003 4200000001] c=65000:200,65000:201 l=65000:3:4:4200000001:5:6 /48 nh=::'
  await lookupUntil('both routes through BMP', [v4, v6, '-'])

  // A more specific route wins for the addresses it covers; its withdrawal falls back to the /24.
  await gobgpd.addRoute({ prefix: '192.0.2.64/26', asPath: [65001, 65009] })
  await lookupUntil('the /26', ['AS65009 [65001 65009] c= l= /26 nh=0.0.0.0', v6, '-'])
  await gobgpd.deleteRoute('192.0.2.64/26')
  await lookupUntil('the /26 withdrawn', [v4, v6, '-'])
  await gobgpd.deleteRoute('192.0.2.0/24')
  await lookupUntil('the IPv4 route withdrawn', ['-', v6, '-'])

  const text = await metrics()
  expect(metricSample(text, 'flowbus_bmp_sessions')).toBe(1)
  expect(metricSample(text, 'flowbus_bmp_routes', { router: ROUTER, peer: '0.0.0.0', type: 'loc-rib', family: 'ipv6' })).toBe(1)
  expect(metricSample(text, 'flowbus_bmp_messages_total', { type: 'initiation' })).toBe(1)
  expect(metricSample(text, 'flowbus_bmp_lookups_total', { outcome: 'found' })).toBeGreaterThan(0)

  // gobgpd stops: the session closes, its peer goes down and is removed after the grace time.
  await gobgpd.stop()
  gobgpdRunning = false
  await lookupUntil('the routes of the closed session removed', ['-', '-', '-'])
  const after = await metrics()
  expect(metricSample(after, 'flowbus_bmp_sessions')).toBe(0)
  expect(metricSample(after, 'flowbus_bmp_peers', { state: 'up' }) + metricSample(after, 'flowbus_bmp_peers', { state: 'down' })).toBe(0)
  expect(metricSample(after, 'flowbus_bmp_errors_total', { reason: 'internal-error' })).toBe(0)
}

describe.skipIf(unavailable !== undefined)('bmp-rib actor with gobgpd', () => {
  it('on the in-process bus: routes added and withdrawn with gobgp appear and disappear in lookups', async () => {
    const memory = createMemoryBus()
    await scenario({ transport: 'memory' }, async () => memory.connect())
  }, 90_000)

  describe('on NATS', () => {
    const nats = serviceOrSkip<NatsServer>('nats-server', () => startNats())
    it('answers routing.lookup through core NATS request/reply', async () => {
      const section = { transport: 'nats', nats: { servers: [nats.get().url] } }
      const resolved = loadConfig(configSchema([bmpRibActor]), { env: {} }) as ResolvedConfig
      await scenario(section, () => connectTransport({ ...resolved.bus, ...section } as ResolvedConfig['bus']))
    }, 90_000)
  })
})
