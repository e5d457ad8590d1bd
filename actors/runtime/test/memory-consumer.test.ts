// Consumer groups of the memory bus: shard assignment and handover, sequential handling across a
// handover, redelivery rules (throwing handlers, late acks, stale naks) and zero-copy delivery.
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { createMemoryBus } from '../src/bus/memory.js'
import type { ConsumeOptions, Delivery, StreamSpec } from '../src/bus/transport.js'

const utf8 = new TextEncoder()
const text = (d: Uint8Array) => new TextDecoder().decode(d)

const spec = (base: string, partitions = 4): StreamSpec => ({
  base,
  natsStream: base.toUpperCase().replace(/\./g, '_'),
  kafkaTopic: base.replace(/\./g, '-'),
  partitions,
  replicas: 1,
  maxAgeSeconds: 0,
  maxBytes: 0,
})

const options = (group: string, overrides: Partial<ConsumeOptions> = {}): ConsumeOptions => ({
  group,
  maxInFlight: 100,
  maxInFlightBytes: 1 << 20,
  ackWaitMs: 60_000,
  ...overrides,
})

const waitFor = async (what: string, condition: () => boolean) => {
  const deadline = Date.now() + 10_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

const settle = async (rounds = 5) => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

const setup = async (base: string, partitions = 4) => {
  const bus = createMemoryBus()
  const t = bus.connect()
  const stream = spec(base, partitions)
  await t.provision([stream], [])
  return { bus, t, stream }
}

describe('memory consumer groups', () => {
  it('assigns shard s to member s mod n and rebalances on join and close', async () => {
    const { t, stream } = await setup('groups.assign.v1')
    const noop = async (d: Delivery) => d.ack()
    const a = await t.consume(stream, options('g'), noop)
    expect(a.assignedShards()).toEqual([0, 1, 2, 3])
    const b = await t.consume(stream, options('g'), noop)
    expect([a.assignedShards(), b.assignedShards()]).toEqual([
      [0, 2],
      [1, 3],
    ])
    const c = await t.consume(stream, options('g'), noop)
    expect([a.assignedShards(), b.assignedShards(), c.assignedShards()]).toEqual([[0, 3], [1], [2]])
    // Another group on the same stream is independent.
    const other = await t.consume(stream, options('other'), noop)
    expect(other.assignedShards()).toEqual([0, 1, 2, 3])
    await b.close()
    expect([a.assignedShards(), b.assignedShards(), c.assignedShards()]).toEqual([[0, 2], [], [1, 3]])
    await a.close()
    await c.close()
    await b.close() // closing twice is harmless
    await other.close()
    await t.close()
  })

  it('keeps a shard sequential across a handover: the new owner waits for the running handler', async () => {
    const { t, stream } = await setup('groups.handover.v1', 2)
    const events: string[] = []
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    await t.consume(stream, options('g'), async (d) => {
      const m = text(d.data)
      events.push(`a:start:${m}`)
      if (m === 'first') await gate
      events.push(`a:end:${m}`)
      await d.ack()
    })
    await t.publish(stream, 1, 'k', utf8.encode('first'))
    await waitFor('a to start', () => events.includes('a:start:first'))

    // b joins and becomes the owner of shard 1 while a's handler still runs on it.
    const b = await t.consume(stream, options('g'), async (d) => {
      events.push(`b:${text(d.data)}`)
      await d.ack()
    })
    expect(b.assignedShards()).toEqual([1])
    await t.publish(stream, 1, 'k', utf8.encode('second'))
    await settle(10)
    expect(events).toEqual(['a:start:first'])
    release()
    await waitFor('b to get the second message', () => events.includes('b:second'))
    expect(events).toEqual(['a:start:first', 'a:end:first', 'b:second'])
    await t.close()
  })

  it('redelivers the message of a handler that throws', async () => {
    const { t, stream } = await setup('groups.throw.v1', 1)
    const counts: number[] = []
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.message)
    process.on('warning', onWarning)
    await t.consume(stream, options('g'), async (d) => {
      counts.push(d.deliveryCount)
      if (d.deliveryCount === 1) throw new Error('enricher lookup failed')
      await d.ack()
    })
    await t.publish(stream, 0, 'k', utf8.encode('x'))
    await waitFor('the redelivery', () => counts.length === 2)
    await waitFor('the warning', () => warnings.length > 0)
    process.off('warning', onWarning)
    expect(counts).toEqual([1, 2])
    expect(warnings[0]).toMatch(/handler of group g threw on shard 0: Error: enricher lookup failed/)
    await t.close()
  })

  it('honours a late ack from a superseded delivery and ignores its stale nak', async () => {
    const { t, stream } = await setup('groups.late.v1', 1)
    const deliveries: Delivery[] = []
    await t.consume(stream, options('g', { ackWaitMs: 100 }), async (d) => {
      deliveries.push(d)
      if (text(d.data) === 'marker') await d.ack()
    })
    await t.publish(stream, 0, 'k', utf8.encode('x'))
    await waitFor('the ack-wait redelivery', () => deliveries.length === 2)
    const [first, second] = deliveries as [Delivery, Delivery]
    expect([first.deliveryCount, second.deliveryCount]).toEqual([1, 2])
    await first.ack() // the slow holder finished after all: the work is durable
    await second.nak() // superseded: must not bring the message back
    await t.publish(stream, 0, 'k', utf8.encode('marker'))
    // A due redelivery is served before fresh messages, so had x come back it would precede the marker.
    await waitFor('the marker', () => deliveries.some((d) => text(d.data) === 'marker'))
    expect(deliveries.map((d) => text(d.data))).toEqual(['x', 'x', 'marker'])
    await t.close()
  })

  it('hands consumers the very bytes the publisher stored (zero-copy)', async () => {
    const { t, stream } = await setup('groups.zerocopy.v1', 1)
    const payload = utf8.encode('batch of flows')
    const received: Uint8Array[] = []
    await t.consume(stream, options('a'), async (d) => {
      received.push(d.data)
      await d.ack()
    })
    await t.consume(stream, options('b'), async (d) => {
      received.push(d.data)
      await d.ack()
    })
    await t.publish(stream, 0, 'k', payload)
    await waitFor('both groups', () => received.length === 2)
    expect(received[0]).toBe(payload)
    expect(received[1]).toBe(payload)
    await t.close()
  })

  it('lets one message larger than maxInFlightBytes through rather than wedging the shard', async () => {
    const { t, stream } = await setup('groups.big.v1', 1)
    const got: number[] = []
    await t.consume(stream, options('g', { maxInFlightBytes: 100 }), async (d) => {
      got.push(d.data.byteLength)
      await d.ack()
    })
    await t.publish(stream, 0, 'k', new Uint8Array(5_000))
    await t.publish(stream, 0, 'k', new Uint8Array(50))
    await waitFor('both messages', () => got.length === 2)
    expect(got).toEqual([5_000, 50])
    await t.close()
  })

  it('names the bad input: unprovisioned stream, shard out of range, options, shrinking', async () => {
    const { t, stream } = await setup('groups.errors.v1', 4)
    await expect(t.publish(spec('nowhere.v1'), 0, 'k', utf8.encode('x'))).rejects.toThrow(
      /stream nowhere.v1 is not provisioned on the memory bus/,
    )
    await expect(t.publish(stream, 4, 'k', utf8.encode('x'))).rejects.toThrow(
      /shard 4 is out of range for stream groups.errors.v1 \(0..3\)/,
    )
    await expect(t.consume(stream, options('g', { maxInFlight: 0 }), async () => {})).rejects.toThrow(
      /consume on groups.errors.v1: maxInFlight must be an integer ≥ 1, got 0/,
    )
    await expect(t.consume(stream, options(''), async () => {})).rejects.toThrow(/group must be a non-empty name/)
    await expect(t.provision([spec('groups.errors.v1', 2)], [])).rejects.toThrow(/cannot shrink to 2/)
    // Growing is allowed and new shards are consumed at once.
    await t.provision([spec('groups.errors.v1', 6)], [])
    const got: number[] = []
    const sub = await t.consume(stream, options('g'), async (d) => {
      got.push(d.shard)
      await d.ack()
    })
    expect(sub.assignedShards()).toEqual([0, 1, 2, 3, 4, 5])
    await t.publish(stream, 5, 'k', utf8.encode('x'))
    await waitFor('shard 5', () => got.includes(5))
    await t.close()
  })
})
