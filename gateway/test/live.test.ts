// Live subscriptions fed by flows.live on a real bus (memory, then NATS): liveFlows over
// WebSocket with a filter ClickHouse evaluates, liveRates over SSE with exact sums, and a slow
// client whose bounded queue drops the oldest events and says how many.
import { join } from 'node:path'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNats } from '../../test/src/harness/nats.js'
import { removeDir, serviceOrSkip, tempDir } from '../../test/src/harness/process.js'
import { FlowBatch } from '@flowbus/bus-schemas'
import { LiveHub, subscribeLiveFlows } from '../src/live.js'
import { type Pipeline, type TestFlow, generateFlows, graphql, startPipeline, toBatches } from './harness.js'

let dir: string

beforeAll(async () => {
  dir = await tempDir('gateway-live')
})
afterAll(async () => {
  if (dir) await removeDir(dir)
})

const config = (bus: Record<string, unknown>) => ({
  http: { listen: '127.0.0.1:0' },
  log: { level: 'warning' },
  bus,
  clickhouse: { path: join(dir, 'db'), database: 'live' },
  gateway: { listen: '127.0.0.1:0' },
})

/** Reads a text/event-stream response: the data of each `next` event. */
async function* sse(url: string, query: string, variables: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<any> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal,
  })
  expect(response.headers.get('content-type')).toContain('text/event-stream')
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const event = /^event: (.*)$/m.exec(block)?.[1]
      const data = /^data: (.*)$/m.exec(block)?.[1]
      if (event === 'next' && data) yield JSON.parse(data)
      if (event === 'complete') return
    }
  }
}

const liveSuite = (name: string, bus: () => Record<string, unknown>) => {
  describe(`live subscriptions on the ${name} bus`, () => {
    let pipeline: Pipeline
    beforeAll(async () => {
      pipeline = await startPipeline(config(bus()))
    })
    afterAll(async () => {
      await pipeline?.stop()
    })

    it('streams the flows matching a filter over WebSocket, batch by batch', async () => {
      const flows = generateFlows(600, 1, 11)
      const batches = toBatches(flows, 100)
      const client = createClient({ url: pipeline.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 })
      const events = client.iterate<{ liveFlows: { flows: Record<string, any>[]; dropped: number; droppedEvents: number } }>({
        query: `subscription { liveFlows(filter: "SrcAS = 64500 AND Proto = tcp", sampleRate: 1) { flows dropped droppedEvents } }`,
      })
      try {
        // The subscription is live once the server holds it: publish only then.
        await waitSubscribed(pipeline)
        for (const [i, batch] of batches.entries()) {
          const expected = flows.slice(i * 100, i * 100 + 100).filter((f) => f.srcAS === 64500 && f.proto === 6)
          if (expected.length === 0) continue
          await publishLive(pipeline, batch)
          const next = await events.next()
          const event = (next.value as { data: { liveFlows: any } }).data.liveFlows
          expect(event.flows.map((f: any) => [f.SrcAS, f.Proto, f.TimeReceived, f.SrcAddr])).toEqual(expected.map((f) => [f.srcAS, f.proto, f.time, f.srcAddr]))
          expect(event.droppedEvents).toBe(0)
        }
      } finally {
        await events.return?.()
        await client.dispose()
      }
    })

    it('sends rates per dimension over SSE, the rest as Other', async () => {
      const flows = generateFlows(100, 1, 12)
      const controller = new AbortController()
      const stream = sse(
        pipeline.url,
        `subscription { liveRates(dimensions: ["SrcAS"], interval: 1) { time interval droppedEvents rates { dimensions bps pps flowsPerSecond } } }`,
        {},
        controller.signal,
      )
      try {
        const first = stream.next() // opens the request
        await waitSubscribed(pipeline)
        await publishLive(pipeline, toBatches(flows, 100)[0]!)
        let event = (await first).value.data.liveRates
        while (event.rates.length === 0) event = (await stream.next()).value.data.liveRates
        const sums = new Map<string, { bytes: number; flows: number }>()
        for (const f of flows) {
          const s = sums.get(String(f.srcAS)) ?? { bytes: 0, flows: 0 }
          s.bytes += f.bytes * f.samplingRate
          s.flows += 1
          sums.set(String(f.srcAS), s)
        }
        const ranked = [...sums.entries()].sort((a, b) => b[1].bytes - a[1].bytes)
        const top = ranked.slice(0, 10)
        const rest = ranked.slice(10)
        const expected = top.map(([k, v]) => ({ dimensions: [k], bps: v.bytes * 8, flowsPerSecond: v.flows }))
        if (rest.length > 0) {
          expected.push({ dimensions: ['Other'], bps: rest.reduce((a, [, v]) => a + v.bytes * 8, 0), flowsPerSecond: rest.reduce((a, [, v]) => a + v.flows, 0) })
        }
        expect(event.interval).toBe(1)
        expect(event.rates.map((r: any) => ({ dimensions: r.dimensions, bps: r.bps, flowsPerSecond: r.flowsPerSecond }))).toEqual(expected)
      } finally {
        controller.abort()
        await stream.return(undefined).catch(() => undefined)
      }
    })

    it('refuses a bad filter and a bad dimension with their codes', async () => {
      const bad = await graphql(pipeline.url, `subscription { liveFlows(filter: "SrcAS = ") { dropped } }`)
      expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_FILTER')
      const dimension = await graphql(pipeline.url, `subscription { liveRates(dimensions: ["Nope"]) { interval } }`)
      expect(dimension.errors?.[0]?.extensions?.code).toBe('UNKNOWN_DIMENSION')
    })
  })
}

/** Publishes one batch on flows.live. */
const publishLive = async (pipeline: Pipeline, batch: FlowBatch) => {
  const { Effect } = await import('effect')
  const { flowsLive } = await import('@flowbus/bus-schemas')
  await Effect.runPromise(pipeline.bus.broadcast(flowsLive, batch))
}

/** Waits until the gateway counts a live subscriber (its gauge on /metrics). */
const waitSubscribed = async (pipeline: Pipeline) => {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const text = await (await fetch(pipeline.metricsURL)).text()
    if (/^flowbus_gateway_live_subscribers [1-9]/m.test(text)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error('the subscription never reached the gateway')
}

liveSuite('memory', () => ({ transport: 'memory' }))

describe('NATS', () => {
  const nats = serviceOrSkip('nats-server', () => startNats())
  liveSuite('nats', () => ({ transport: 'nats', nats: { servers: [nats.get().url] } }))
})

describe('a slow subscriber', () => {
  it('keeps at most queueLength events, dropping the oldest, and reports the loss on the next event', async () => {
    const hub = new LiveHub()
    const events = subscribeLiveFlows(hub, { select: undefined, sampleRate: 1, queueLength: 4, maxFlowsPerEvent: 10 })
    const flows: TestFlow[] = generateFlows(50, 1, 13)
    for (const batch of toBatches(flows, 5)) hub.publish(batch)
    const first = (await events.next()).value!
    expect(first.droppedEvents).toBe(6)
    // The four newest batches survive, oldest first.
    expect(first.flows.map((f: Record<string, unknown>) => f.TimeReceived)).toEqual(flows.slice(30, 35).map((f) => f.time))
    for (let i = 1; i < 4; i++) expect((await events.next()).value!.droppedEvents).toBe(0)
    await events.return?.()
    expect(hub.subscribers).toBe(0)
  })

  it('samples 1 in N and caps flows per event, counting the rest as dropped', async () => {
    const hub = new LiveHub()
    const events = subscribeLiveFlows(hub, { select: undefined, sampleRate: 3, queueLength: 4, maxFlowsPerEvent: 10 })
    hub.publish(toBatches(generateFlows(60, 1, 14), 60)[0]!)
    const event = (await events.next()).value!
    expect(event.flows).toHaveLength(10)
    expect(event.dropped).toBe(50)
    await events.return?.()
  })
})
