// Retention and publisher backpressure of the memory bus: a full stream drops only what every
// group acked, makes publishers wait otherwise, and never blocks when no group reads it.
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { createMemoryBus } from '../src/bus/memory.js'
import type { Delivery, StreamSpec } from '../src/bus/transport.js'

const utf8 = new TextEncoder()
const text = (d: Uint8Array) => new TextDecoder().decode(d)

const spec = (base: string, overrides: Partial<StreamSpec> = {}): StreamSpec => ({
  base,
  natsStream: base.toUpperCase().replace(/\./g, '_'),
  kafkaTopic: base.replace(/\./g, '-'),
  partitions: 2,
  replicas: 1,
  maxAgeSeconds: 0,
  maxBytes: 0,
  ...overrides,
})

const options = (group: string) => ({ group, maxInFlight: 1000, maxInFlightBytes: 1 << 30, ackWaitMs: 60_000 })

/** Lets pending setImmediate rounds and microtasks run: a logical "nothing else can happen now". */
const settle = async (rounds = 5) => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

const waitFor = async (what: string, condition: () => boolean) => {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

describe('memory stream retention and backpressure', () => {
  it('makes publishers wait while the stream is full of unacked messages, in publish order', async () => {
    const bus = createMemoryBus({ maxStreamMessages: 10 })
    const t = bus.connect()
    const stream = spec('retention.wait.v1')
    await t.provision([stream], [])
    const held: Delivery[] = []
    const got: string[] = []
    const sub = await t.consume(stream, options('slow'), async (d) => {
      held.push(d)
      got.push(text(d.data))
    })

    const published: string[] = []
    const publishes = Array.from({ length: 25 }, (_, i) =>
      t.publish(stream, 0, 'k', utf8.encode(`m${i}`)).then(() => published.push(`m${i}`)),
    )
    await waitFor('10 deliveries', () => held.length === 10)
    await settle()
    expect(published).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`))
    expect(bus.streamStats(stream)).toEqual({ messages: 10, bytes: 10 * 2, waitingPublishes: 15 })

    // Each ack frees one slot: the oldest waiting publish goes in, still in order.
    await held.shift()!.ack()
    await settle()
    expect(published.at(-1)).toBe('m10')
    expect(bus.streamStats(stream).waitingPublishes).toBe(14)

    const ackAll = async () => {
      while (held.length > 0) await held.shift()!.ack()
    }
    while (published.length < 25) {
      await ackAll()
      await settle()
    }
    await Promise.all(publishes)
    await waitFor('all 25 deliveries', () => got.length === 25)
    await ackAll()
    expect(got).toEqual(Array.from({ length: 25 }, (_, i) => `m${i}`))
    expect(published).toEqual(got)
    await sub.close()
    await t.close()
  })

  it('bounds the stream by bytes too, counting payload bytes', async () => {
    const bus = createMemoryBus({ maxStreamBytes: 10_000 })
    const t = bus.connect()
    const stream = spec('retention.bytes.v1')
    await t.provision([stream], [])
    const held: Delivery[] = []
    await t.consume(stream, options('slow'), async (d) => {
      held.push(d)
    })
    let stored = 0
    for (let i = 0; i < 5; i++) void t.publish(stream, i % 2, 'k', new Uint8Array(3_000)).then(() => stored++)
    await settle()
    expect(stored).toBe(3)
    expect(bus.streamStats(stream)).toMatchObject({ messages: 3, bytes: 9_000, waitingPublishes: 2 })
    await waitFor('3 deliveries', () => held.length === 3)
    for (const d of held.splice(0)) await d.ack()
    await settle()
    expect(stored).toBe(5)
    await t.close()
  })

  it('applies the lower of the stream spec maxBytes and the bus cap', async () => {
    const bus = createMemoryBus({ maxStreamBytes: 1 << 20 })
    const t = bus.connect()
    const stream = spec('retention.specbytes.v1', { maxBytes: 2_500 })
    await t.provision([stream], [])
    await t.consume(stream, options('slow'), async () => {})
    let stored = 0
    for (let i = 0; i < 4; i++) void t.publish(stream, 0, 'k', new Uint8Array(1_000)).then(() => stored++)
    await settle()
    expect(stored).toBe(2)
    await t.close()
  })

  it('drops messages every group acked to make room, and keeps them until room is needed', async () => {
    const bus = createMemoryBus({ maxStreamMessages: 10 })
    const t = bus.connect()
    const stream = spec('retention.acked.v1')
    await t.provision([stream], [])
    const got: string[] = []
    const sub = await t.consume(stream, options('fast'), async (d) => {
      got.push(text(d.data))
      await d.ack()
    })
    for (let i = 0; i < 6; i++) await t.publish(stream, 0, 'k', utf8.encode(`a${i}`))
    await waitFor('6 deliveries', () => got.length === 6)
    expect(bus.streamStats(stream).messages).toBe(6) // acked, but nothing needed the room yet

    // A group created now starts at the oldest retained message and replays them.
    const replay: string[] = []
    await t.consume(stream, options('late'), async (d) => {
      replay.push(text(d.data))
      await d.ack()
    })
    await waitFor('replay', () => replay.length === 6)
    expect(replay).toEqual(got)

    for (let i = 0; i < 30; i++) await t.publish(stream, i % 2, 'k', utf8.encode(`b${i}`))
    await waitFor('36 deliveries', () => got.length === 36 && replay.length === 36)
    expect(bus.streamStats(stream)).toMatchObject({ messages: 10, waitingPublishes: 0 })
    await sub.close()
    await t.close()
  })

  it('never blocks a stream nobody consumes: it keeps the newest messages', async () => {
    const bus = createMemoryBus({ maxStreamMessages: 10 })
    const t = bus.connect()
    const stream = spec('retention.nogroup.v1', { partitions: 1 })
    await t.provision([stream], [])
    for (let i = 0; i < 50; i++) await t.publish(stream, 0, 'k', utf8.encode(`m${i}`))
    expect(bus.streamStats(stream)).toMatchObject({ messages: 10, waitingPublishes: 0 })

    const got: string[] = []
    await t.consume(stream, options('late'), async (d) => {
      got.push(text(d.data))
      await d.ack()
    })
    await waitFor('the 10 retained', () => got.length === 10)
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `m${40 + i}`))
    await t.close()
  })

  it('drops messages older than maxAgeSeconds, acked or not', async () => {
    const bus = createMemoryBus()
    const t = bus.connect()
    const stream = spec('retention.age.v1', { maxAgeSeconds: 1, partitions: 1 })
    await t.provision([stream], [])
    await t.publish(stream, 0, 'k', utf8.encode('old'))
    await sleep(1_100)
    await t.publish(stream, 0, 'k', utf8.encode('new'))
    expect(bus.streamStats(stream).messages).toBe(1)
    const got: string[] = []
    await t.consume(stream, options('late'), async (d) => {
      got.push(text(d.data))
      await d.ack()
    })
    await waitFor('one delivery', () => got.length === 1)
    await settle()
    expect(got).toEqual(['new'])
    await t.close()
  })

  it('keeps a slow consumer bounded: deliveries wait in the stream, not in the consumer', async () => {
    const bus = createMemoryBus({ maxStreamMessages: 50 })
    const t = bus.connect()
    const stream = spec('retention.slow.v1')
    await t.provision([stream], [])
    const held: Delivery[] = []
    let released = false
    let total = 0
    await t.consume(stream, { ...options('slow'), maxInFlight: 3 }, async (d) => {
      total++
      if (released) await d.ack()
      else held.push(d)
    })
    const publishes = Array.from({ length: 200 }, (_, i) => t.publish(stream, i % 2, 'k', utf8.encode(`m${i}`)))
    await waitFor('3 held', () => held.length === 3)
    await settle(20)
    expect(held.length).toBe(3)
    expect(bus.streamStats(stream)).toMatchObject({ messages: 50, waitingPublishes: 150 })

    // Releasing the consumer lets everything through.
    released = true
    for (const d of held.splice(0)) await d.ack()
    await Promise.all(publishes)
    await waitFor('all 200 delivered', () => total === 200)
    expect(bus.streamStats(stream).waitingPublishes).toBe(0)
    await t.close()
  })
})
