// The kernel running real actors: an actor defined with defineActor is started from its
// config section, reports readiness, counts its work, and on interruption stops intake and
// drains what it was handling, so a restarted process finishes the rest without loss.
import type { Codec, StreamSubject } from '@flowbus/bus-schemas'
import { Effect, Fiber, Schema } from 'effect'
import { describe, expect, it } from 'vitest'
import { ActorContext, Bus, type HttpEndpoint, configSchema, defineActor, loadConfig, runActors } from '../src/index.js'
import { createMemoryTransport } from '../src/bus/memory.js'

const numberCodec: Codec<number> = {
  typeName: 'test.Number',
  encode: (n) => new TextEncoder().encode(String(n)),
  decode: (bytes) => Number(new TextDecoder().decode(bytes)),
}
const subject = (name: string): StreamSubject<number> => ({
  kind: 'stream',
  name,
  version: 1,
  description: name,
  codec: numberCodec,
  partitionKey: 'number',
  retention: 'flows',
})
const input = subject('test.process.input')
const output = subject('test.process.output')

/** Doubles numbers from `input` into `output`, slowly, so a stop catches work in flight. */
const doubler = defineActor({
  name: 'doubler',
  description: 'test actor doubling numbers',
  config: Schema.Struct({
    delayMs: Schema.optionalWith(Schema.Number, { default: () => 5 }),
  }),
  consumes: [input],
  produces: [output],
  start: (config) =>
    Effect.gen(function* () {
      const bus = yield* Bus
      const actor = yield* ActorContext
      yield* bus.subscribe(input, { group: 'doubler', maxInFlight: 4 }, (message) =>
        Effect.gen(function* () {
          actor.received('numbers')
          yield* Effect.sleep(config.delayMs)
          yield* bus.publish(output, String(message.value), message.value * 2)
          actor.emitted('numbers')
        }),
      )
    }),
})

const until = async (check: () => boolean, what: string, ms = 20_000) => {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('actor process', () => {
  it('runs an actor from its config section, serves readiness and metrics, drains on stop', async () => {
    const transport = createMemoryTransport()
    const config = loadConfig(configSchema([doubler]), {
      env: { FLOWBUS_HTTP__LISTEN: '127.0.0.1:0', FLOWBUS_DOUBLER__DELAY_MS: '20', FLOWBUS_LOG__LEVEL: 'warning' },
    }) as any
    expect(config.doubler).toEqual({ enabled: true, delayMs: 20 })

    const doubled: number[] = []
    const outputSpec = { base: 'test.process.output.v1', natsStream: '', kafkaTopic: '', partitions: 8, replicas: 1, maxAgeSeconds: 0, maxBytes: 0 }
    const inputSpec = { ...outputSpec, base: 'test.process.input.v1' }
    await transport.provision([inputSpec, outputSpec], [])
    const collect = await transport.consume(
      outputSpec,
      { group: 'check', maxInFlight: 1000, maxInFlightBytes: 1e9, ackWaitMs: 60_000 },
      async (d) => {
        doubled.push(Number(new TextDecoder().decode(d.data)))
        await d.ack()
      },
    )

    // First run: stopped while work is in flight.
    let endpoint: HttpEndpoint | undefined
    const first = Effect.runFork(runActors({ actors: [doubler], config, transport, onReady: (e) => (endpoint = e) }))
    await until(() => endpoint !== undefined, 'readiness')
    const url = `http://127.0.0.1:${endpoint!.address!.port}`
    const ready = await (await fetch(`${url}/readyz`)).json()
    expect(ready).toMatchObject({ ready: true, components: { doubler: { ready: true } } })
    for (let i = 1; i <= 300; i++) await transport.publish(inputSpec, i % 8, String(i), numberCodec.encode(i))
    await until(() => doubled.length >= 20, 'some output')
    const metrics = await (await fetch(`${url}/metrics`)).text()
    expect(metrics).toMatch(/flowbus_actor_received_total\{actor="doubler",kind="numbers"\} \d+/)
    await Effect.runPromise(Fiber.interrupt(first))
    const afterFirst = doubled.length
    expect(afterFirst).toBeLessThan(300)

    // Second run, same bus: picks up exactly where the first stopped.
    const second = Effect.runFork(runActors({ actors: [doubler], config, transport }))
    await until(() => new Set(doubled).size === 300, 'every number doubled')
    await Effect.runPromise(Fiber.interrupt(second))
    expect([...new Set(doubled)].sort((a, b) => a - b)).toEqual([...Array(300).keys()].map((i) => (i + 1) * 2))
    // Draining acked what it finished: at most the in-flight window can be processed twice.
    expect(doubled.length - 300).toBeLessThanOrEqual(8 * 4)
    await collect.close()
    await transport.close()
  })
})
