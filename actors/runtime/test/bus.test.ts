// The typed Bus layer over the in-process transport: typing, shard choice, dead letters,
// retries, typed errors for requests and oversize messages, state buckets and counters.
import type { BroadcastSubject, Codec, RequestSubject, StateBucket, StreamSubject } from '@flowbus/bus-schemas'
import { Effect, Exit, Layer, ManagedRuntime, Schema, Scope } from 'effect'
import { afterEach, describe, expect, it } from 'vitest'
import {
  Bus,
  BusLive,
  type BusConfig,
  BusSection,
  Metrics,
  MetricsLive,
  deadLetterHeaders,
  type Delivery,
  type Transport,
} from '../src/index.js'
import { createMemoryTransport } from '../src/bus/memory.js'

interface Reading {
  readonly sensor: string
  readonly value: number
}

/** JSON codec for tests; rejects anything that is not a Reading. */
const readingCodec: Codec<Reading> = {
  typeName: 'test.Reading',
  encode: (value) => new TextEncoder().encode(JSON.stringify(value)),
  decode: (bytes) => {
    const value = JSON.parse(new TextDecoder().decode(bytes)) as Reading
    if (typeof value.sensor !== 'string' || typeof value.value !== 'number') throw new Error('not a Reading')
    return value
  },
}

let serial = 0
const stream = (): StreamSubject<Reading> => ({
  kind: 'stream',
  name: `test.readings${++serial}`,
  version: 1,
  description: 'test readings',
  codec: readingCodec,
  partitionKey: 'sensor',
  retention: 'flows',
})

const config = (overrides: Record<string, unknown> = {}): BusConfig =>
  Schema.decodeUnknownSync(BusSection)({ partitions: 4, consumer: { maxDeliveries: 3 }, ...overrides })

let runtime: ManagedRuntime.ManagedRuntime<Bus | Metrics, unknown> | undefined
let transport: Transport

const start = (overrides: Record<string, unknown> = {}) => {
  transport = createMemoryTransport({ maxMessageBytes: 4096 })
  runtime = ManagedRuntime.make(BusLive(config(overrides), transport).pipe(Layer.provideMerge(MetricsLive)))
  return runtime
}

afterEach(async () => {
  await runtime?.dispose()
  await transport?.close()
  runtime = undefined
})

const until = async (check: () => boolean, what: string, ms = 10_000) => {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('typed Bus', () => {
  it('delivers typed values, same key same shard, in order', async () => {
    const rt = start()
    const subject = stream()
    const seen: Array<{ sensor: string; value: number; shard: number }> = []
    const scope = await rt.runPromise(Scope.make())
    await rt.runPromise(
      Effect.gen(function* () {
        const bus = yield* Bus
        yield* bus.subscribe(subject, { group: 'g' }, (m) =>
          Effect.sync(() => seen.push({ ...m.value, shard: m.shard })),
        )
      }).pipe(Scope.extend(scope)),
    )
    await rt.runPromise(
      Effect.gen(function* () {
        const bus = yield* Bus
        for (let i = 0; i < 200; i++) yield* bus.publish(subject, `s${i % 10}`, { sensor: `s${i % 10}`, value: i })
      }),
    )
    await until(() => seen.length === 200, '200 deliveries')
    for (let k = 0; k < 10; k++) {
      const mine = seen.filter((s) => s.sensor === `s${k}`)
      expect(mine.map((s) => s.value)).toEqual([...Array(20).keys()].map((i) => i * 10 + k))
      expect(new Set(mine.map((s) => s.shard)).size).toBe(1)
    }
    await rt.runPromise(Scope.close(scope, Exit.void))
    const metrics = await rt.runPromise(Metrics)
    const acked = await metrics.bus.acked.get()
    expect(acked.values.find((v) => v.labels.subject === `${subject.name}.v1`)?.value).toBe(200)
  })

  it('moves an undecodable message to the dead-letter stream with its reason and goes on', async () => {
    const rt = start()
    const subject = stream()
    const good: Reading[] = []
    const dead: Delivery[] = []
    const deadSpec = {
      base: `deadletter.${subject.name}.v1`,
      natsStream: 'x',
      kafkaTopic: 'x',
      partitions: 1,
      replicas: 1,
      maxAgeSeconds: 0,
      maxBytes: 0,
    }
    const scope = await rt.runPromise(Scope.make())
    await rt.runPromise(
      Effect.gen(function* () {
        const bus = yield* Bus
        yield* bus.subscribe(subject, { group: 'g' }, (m) => Effect.sync(() => good.push(m.value)))
      }).pipe(Scope.extend(scope)),
    )
    const spec = { ...deadSpec, base: `${subject.name}.v1` }
    await transport.publish(spec, 0, 'k', new TextEncoder().encode('{"not":"a reading"}'))
    await rt.runPromise(Effect.flatMap(Bus, (bus) => bus.publish(subject, 'k', { sensor: 'k', value: 1 })))
    await transport.consume(deadSpec, { group: 'inspect', maxInFlight: 10, maxInFlightBytes: 1e6, ackWaitMs: 30_000 }, async (d) => {
      dead.push(d)
      await d.ack()
    })
    await until(() => good.length === 1 && dead.length === 1, 'one good and one dead letter')
    expect(dead[0]!.headers[deadLetterHeaders.reason]).toMatch(/malformed test\.Reading.*not a Reading/)
    expect(dead[0]!.headers[deadLetterHeaders.subject]).toBe(`${subject.name}.v1`)
    expect(new TextDecoder().decode(dead[0]!.data)).toBe('{"not":"a reading"}')
    await rt.runPromise(Scope.close(scope, Exit.void))
  })

  it('retries a failing handler, then dead-letters it after maxDeliveries', async () => {
    const rt = start()
    const subject = stream()
    const attempts: number[] = []
    const scope = await rt.runPromise(Scope.make())
    await rt.runPromise(
      Effect.gen(function* () {
        const bus = yield* Bus
        yield* bus.subscribe(subject, { group: 'g' }, (m) => {
          attempts.push(m.deliveryCount)
          return m.value.value === 13 ? Effect.fail(new Error('unlucky')) : Effect.void
        })
        yield* bus.publish(subject, 'k', { sensor: 'k', value: 13 })
      }).pipe(Scope.extend(scope)),
    )
    const metrics = await rt.runPromise(Metrics)
    const deadLettered = async () =>
      (await metrics.bus.deadLettered.get()).values.find((v) => v.labels.reason === 'failed')?.value ?? 0
    const deadline = Date.now() + 15_000
    while ((await deadLettered()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(await deadLettered()).toBe(1)
    expect(attempts).toEqual([1, 2, 3])
    const nacked = (await metrics.bus.nacked.get()).values.find((v) => v.labels.subject === `${subject.name}.v1`)?.value
    expect(nacked).toBe(2)
    await rt.runPromise(Scope.close(scope, Exit.void))
  })

  it('refuses an oversized message with a typed error naming the subject', async () => {
    const rt = start()
    const subject = stream()
    const exit = await rt.runPromiseExit(
      Effect.flatMap(Bus, (bus) => bus.publish(subject, 'k', { sensor: 'x'.repeat(5000), value: 1 })),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    const error = Exit.isFailure(exit) ? (exit.cause as any).error : undefined
    expect(error._tag).toBe('MessageTooLarge')
    expect(error.message).toContain(subject.name)
    expect(error.message).toContain('4096')
  })

  it('answers typed requests and reports timeouts and missing responders as typed errors', async () => {
    const rt = start()
    const lookup: RequestSubject<Reading, Reading> = {
      kind: 'request',
      name: `test.double${++serial}`,
      version: 1,
      description: 'doubles a reading',
      request: readingCodec,
      response: readingCodec,
    }
    const none = await rt.runPromiseExit(Effect.flatMap(Bus, (bus) => bus.request(lookup, { sensor: 'a', value: 2 }, 500)))
    expect(Exit.isFailure(none) && (none.cause as any).error._tag).toBe('NoResponders')
    const scope = await rt.runPromise(Scope.make())
    await rt.runPromise(
      Effect.flatMap(Bus, (bus) =>
        bus.serve(lookup, (r) =>
          r.value < 0 ? Effect.never : Effect.succeed({ sensor: r.sensor, value: r.value * 2 }),
        ),
      ).pipe(Scope.extend(scope)),
    )
    const answer = await rt.runPromise(Effect.flatMap(Bus, (bus) => bus.request(lookup, { sensor: 'a', value: 21 })))
    expect(answer).toEqual({ sensor: 'a', value: 42 })
    const slow = await rt.runPromiseExit(Effect.flatMap(Bus, (bus) => bus.request(lookup, { sensor: 'a', value: -1 }, 200)))
    expect(Exit.isFailure(slow) && (slow.cause as any).error._tag).toBe('RequestTimeout')
    await rt.runPromise(Scope.close(scope, Exit.void))
  })

  it('keeps typed state and reports changes to watchers', async () => {
    const rt = start()
    const bucket: StateBucket<Reading> = {
      kind: 'state',
      name: `test.state${++serial}`,
      version: 1,
      description: 'last reading per sensor',
      codec: readingCodec,
    }
    const changes: Array<[string, Reading | undefined]> = []
    const scope = await rt.runPromise(Scope.make())
    await rt.runPromise(
      Effect.gen(function* () {
        const store = yield* (yield* Bus).state(bucket)
        yield* store.put('a', { sensor: 'a', value: 1 })
        yield* store.watch((key, value) => changes.push([key, value]))
        yield* store.put('b', { sensor: 'b', value: 2 })
        yield* store.delete('a')
        expect(yield* store.get('b')).toEqual({ sensor: 'b', value: 2 })
        expect(yield* store.get('a')).toBeUndefined()
        expect(yield* store.keys).toEqual(['b'])
      }).pipe(Scope.extend(scope)),
    )
    await until(() => changes.length === 3, 'three changes')
    expect(changes).toEqual([
      ['a', { sensor: 'a', value: 1 }],
      ['b', { sensor: 'b', value: 2 }],
      ['a', undefined],
    ])
    await rt.runPromise(Scope.close(scope, Exit.void))
  })

  it('fans broadcast values out to every listener', async () => {
    const rt = start()
    const live: BroadcastSubject<Reading> = {
      kind: 'broadcast',
      name: `test.live${++serial}`,
      version: 1,
      description: 'live readings',
      codec: readingCodec,
    }
    const a: number[] = []
    const b: number[] = []
    const scope = await rt.runPromise(Scope.make())
    await rt.runPromise(
      Effect.gen(function* () {
        const bus = yield* Bus
        yield* bus.listen(live, (r) => a.push(r.value))
        yield* bus.listen(live, (r) => b.push(r.value))
        for (let i = 0; i < 5; i++) yield* bus.broadcast(live, { sensor: 's', value: i })
      }).pipe(Scope.extend(scope)),
    )
    await until(() => a.length === 5 && b.length === 5, 'both listeners')
    expect(a).toEqual([0, 1, 2, 3, 4])
    expect(b).toEqual(a)
    await rt.runPromise(Scope.close(scope, Exit.void))
  })
})
