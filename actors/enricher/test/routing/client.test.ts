// The routing client against a real Bus request/reply (memory and NATS) with a test responder
// standing in for bmp-rib: one deduplicated request per batch, routes written per row, AS numbers
// and prefix lengths handed to the AS stage; no responder, timeouts and bad answers back off.
import { type RouteInfo, type RoutingLookupRequest, flowBatchToRows, flowsDecoded, formatIP, parseIP, routingLookup } from '@flowbus/bus-schemas'
import { type BusService, makeBus, makeMetrics } from '@flowbus/runtime'
import { Effect, Exit, Scope } from 'effect'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ensureNatsServer, startNats, type NatsServer } from '../../../../test/src/harness/nats.js'
import { skipReason } from '../../../../test/src/harness/process.js'
import { createMemoryBus } from '../../../runtime/src/bus/memory.js'
import { createNatsTransport } from '../../../runtime/src/bus/nats.js'
import { RoutingClient, busRoutingLookup } from '../../src/routing/client.js'
import { decodedBatch } from '../flows.js'
import { type EnricherHarness, makeHarness, resolveConfig, run, waitFor } from '../harness.js'

const NEXT_HOP = parseIP('203.0.113.1')

/** bmp-rib's answer for one address: 198.51.100.0/24 is routed via AS 64500 to 64501, nothing else. */
const routeFor = (address: Uint8Array): RouteInfo =>
  formatIP(address).startsWith('198.51.100.')
    ? { found: true, asn: 64501, asPath: [64500, 64501], communities: [64500 * 65536 + 100], largeCommunities: [64500, 1, 2], prefixLength: 24, nextHop: NEXT_HOP }
    : { found: false, asn: 0, asPath: [], communities: [], largeCommunities: [], prefixLength: 0, nextHop: new Uint8Array(0) }

/** The form bmp-rib answers a sharedRoutes request with: each distinct route once, an index per address (0: none). */
const sharedForm = (routes: RouteInfo[]) => {
  const distinctRoutes: RouteInfo[] = []
  const routeIndex = routes.map((route) => {
    if (!route.found) return 0
    const known = distinctRoutes.findIndex((d) => d.asn === route.asn && d.prefixLength === route.prefixLength)
    return (known >= 0 ? known : distinctRoutes.push(route) - 1) + 1
  })
  return { routes: [], distinctRoutes, routeIndex }
}

const answerRoutes = (r: RoutingLookupRequest) => {
  const routes = split(r.addresses).map(routeFor)
  return r.sharedRoutes ? sharedForm(routes) : { routes }
}

/** Serves routing.lookup on the bus until the scope closes; records the requests. */
const serveRoutes = async (bus: BusService, scope: Scope.CloseableScope, answer = (r: RoutingLookupRequest) => Effect.succeed(answerRoutes(r))) => {
  const requests: RoutingLookupRequest[] = []
  await run(
    bus
      .serve(routingLookup, (request: RoutingLookupRequest) => {
        requests.push(request)
        return answer(request)
      })
      .pipe(Scope.extend(scope)),
  )
  return requests
}

const split = (packed: Uint8Array): Uint8Array[] => Array.from({ length: packed.length / 16 }, (_, i) => packed.subarray(i * 16, i * 16 + 16))

const options = { enabled: true, timeoutMs: 2_000, backoffMinMs: 1_000, backoffMaxMs: 8_000, setNextHop: true, sources: true }

const routingScenario = async (bus: BusService) => {
  const scope = await run(Scope.make())
  try {
    const requests = await serveRoutes(bus, scope)
    const client = new RoutingClient(busRoutingLookup(bus), options)
    const batch = decodedBatch('192.0.2.1', 0, 500)
    const answer = await run(client.enrich(batch, batch.count, parseIP('192.0.2.1')))
    // One request for the batch, each distinct address once (500 sources, 200 destinations).
    expect(requests.length).toBe(1)
    expect(formatIP(requests[0]!.exporterAddress)).toBe('192.0.2.1')
    expect(requests[0]!.addresses.length / 16).toBe(700)
    expect(requests[0]!.sharedRoutes).toBe(true)
    expect(answer).toBeDefined()
    expect(answer!.applied).toEqual({ found: 500, notFound: 500 })
    const rows = flowBatchToRows(batch)
    for (const row of rows) {
      expect(row).toMatchObject({ DstASPath: [64500, 64501], DstCommunities: [64500 * 65536 + 100], DstLargeCommunities: [[64500, 1, 2]], NextHop: '203.0.113.1' })
    }
    expect(Array.from(answer!.columns.dstAS.subarray(0, 500)).every((as) => as === 64501)).toBe(true)
    expect(Array.from(answer!.columns.dstNetMask.subarray(0, 500)).every((m) => m === 24)).toBe(true)
    expect(Array.from(answer!.columns.srcAS.subarray(0, 500)).every((as) => as === 0)).toBe(true)
    expect(client.outcomes.ok).toBe(1)
  } finally {
    await run(Scope.close(scope, Exit.void))
  }
}

describe('routing client on the memory bus', () => {
  const memory = createMemoryBus()
  const bus = makeBus(memory.connect(), resolveConfig({}).bus, makeMetrics())

  it('asks once per batch and writes each row its route', async () => {
    await routingScenario(bus)
  })

  it('without a responder skips, then backs off (doubling) before asking again', async () => {
    let now = 1_000_000
    const client = new RoutingClient(busRoutingLookup(bus), options, () => now)
    const batch = () => decodedBatch('192.0.2.1', 0, 10)
    expect(await run(client.enrich(batch(), 10, parseIP('192.0.2.1')))).toBeUndefined()
    expect(client.outcomes['no-responders']).toBe(1)
    expect(await run(client.enrich(batch(), 10, parseIP('192.0.2.1')))).toBeUndefined()
    expect(client.outcomes.backoff).toBe(1)
    now += 1_000
    await run(client.enrich(batch(), 10, parseIP('192.0.2.1')))
    expect(client.outcomes['no-responders']).toBe(2)
    // The pause doubled: 1 s later it still waits, 2 s later it asks again.
    now += 1_000
    await run(client.enrich(batch(), 10, parseIP('192.0.2.1')))
    expect(client.outcomes.backoff).toBe(2)
    now += 1_000
    await run(client.enrich(batch(), 10, parseIP('192.0.2.1')))
    expect(client.outcomes['no-responders']).toBe(3)
  })

  it('counts timeouts and malformed answers, leaving the batch untouched, and reads per-address answers', async () => {
    const scope = await run(Scope.make())
    try {
      let mode: 'slow' | 'short' | 'bad-index' | 'per-address' = 'slow'
      await serveRoutes(bus, scope, (r) => {
        const routes = split(r.addresses).map(routeFor)
        if (mode === 'slow') return Effect.as(Effect.sleep('300 millis'), answerRoutes(r))
        if (mode === 'short') return Effect.succeed({ routes: routes.slice(0, 1) })
        // An index past the distinct routes.
        if (mode === 'bad-index') return Effect.succeed({ ...sharedForm(routes), routeIndex: routes.map(() => 3) })
        // A responder that predates shared routes: one route per address, still understood.
        return Effect.succeed({ routes })
      })
      const client = new RoutingClient(busRoutingLookup(bus), { ...options, timeoutMs: 50, backoffMinMs: 0 })
      const batch = decodedBatch('192.0.2.1', 0, 10)
      expect(await run(client.enrich(batch, 10, parseIP('192.0.2.1')))).toBeUndefined()
      expect(client.outcomes.timeout).toBe(1)
      mode = 'short'
      expect(await run(client.enrich(batch, 10, parseIP('192.0.2.1')))).toBeUndefined()
      expect(client.outcomes.malformed).toBe(1)
      mode = 'bad-index'
      expect(await run(client.enrich(batch, 10, parseIP('192.0.2.1')))).toBeUndefined()
      expect(client.outcomes.malformed).toBe(2)
      expect(batch.has('DstASPath')).toBe(false)
      expect(batch.has('NextHop')).toBe(false)
      mode = 'per-address'
      const answer = await run(client.enrich(batch, 10, parseIP('192.0.2.1')))
      expect(answer?.applied.found).toBeGreaterThan(0)
      expect(client.outcomes.ok).toBe(1)
    } finally {
      await run(Scope.close(scope, Exit.void))
    }
  })
})

const harnesses: EnricherHarness[] = []
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close()
})

describe('routing in the running enricher', () => {
  it('gives the AS stage the routing AS numbers and prefix lengths', async () => {
    const h = await makeHarness()
    harnesses.push(h)
    const scope = await run(Scope.make())
    try {
      await serveRoutes(h.bus, scope)
      const enricher = await h.start({ asn: { asProviders: ['routing'], netProviders: ['routing'] } })
      await run(h.bus.publish(flowsDecoded, '192.0.2.1', decodedBatch('192.0.2.1', 0, 50)))
      await waitFor(() => 'enriched flows', () => h.enriched.length > 0)
      for (const row of flowBatchToRows(h.enriched[0]!.batch)) {
        expect(row).toMatchObject({ DstAS: 64501, DstNetMask: 24, SrcAS: 0, DstASPath: [64500, 64501] })
      }
      const metrics = await enricher.metrics()
      expect(metrics).toMatch(/flowbus_enricher_routing_lookups_total\{outcome="ok"\} 1/)
      // Both sides of every flow went through the AS stage; destinations found their AS by routing.
      expect(metrics).toMatch(/flowbus_enricher_stage_total\{stage="asn",outcome="as-routing"\} 50/)
    } finally {
      await run(Scope.close(scope, Exit.void))
    }
  })
})

const natsSkip = await skipReason('nats-server', ensureNatsServer)

describe.skipIf(natsSkip !== undefined)('routing client on NATS', () => {
  let nats: NatsServer
  let bus: BusService
  let close: () => Promise<void>
  beforeAll(async () => {
    nats = await startNats()
    const config = resolveConfig({ bus: { transport: 'nats', nats: { servers: [nats.url] } } })
    const transport = await createNatsTransport({ servers: [nats.url], maxMessageBytes: config.bus.maxMessageBytes })
    bus = makeBus(transport, config.bus, makeMetrics())
    close = () => transport.close()
  })
  afterAll(async () => {
    await close?.()
    await nats?.stop()
  })

  it('asks once per batch and writes each row its route', async () => {
    await routingScenario(bus)
  })
})
