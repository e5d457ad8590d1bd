// Request/reply, broadcast, KV and client lifecycle of the memory bus: behaviour the contract
// suite leaves to each transport (exact round-robin, responder errors, per-client close).
import { describe, expect, it } from 'vitest'
import { createMemoryBus, createMemoryTransport } from '../src/bus/memory.js'
import { TransportMessageTooLarge, TransportNoResponders, type StreamSpec } from '../src/bus/transport.js'

const utf8 = new TextEncoder()
const text = (d: Uint8Array) => new TextDecoder().decode(d)

const stream: StreamSpec = {
  base: 'services.v1',
  natsStream: 'SERVICES_V1',
  kafkaTopic: 'services-v1',
  partitions: 1,
  replicas: 1,
  maxAgeSeconds: 0,
  maxBytes: 0,
}

describe('memory request, broadcast, KV and clients', () => {
  it('alternates strictly between responders and reports responder failures by subject', async () => {
    const t = createMemoryTransport()
    await t.serve('lookup.v1', async () => utf8.encode('a'))
    await t.serve('lookup.v1', async () => utf8.encode('b'))
    const replies: string[] = []
    for (let i = 0; i < 6; i++) replies.push(text(await t.request('lookup.v1', utf8.encode('q'), 1_000)))
    expect(replies).toEqual(['a', 'b', 'a', 'b', 'a', 'b'])

    await t.serve('broken.v1', async () => {
      throw new Error('RIB not loaded')
    })
    await expect(t.request('broken.v1', utf8.encode('q'), 1_000)).rejects.toThrow(
      /responder on broken.v1 failed: RIB not loaded/,
    )
    await expect(t.request('nobody.v1', utf8.encode('q'), 1_000)).rejects.toBeInstanceOf(TransportNoResponders)
    await t.close()
  })

  it('applies maxMessageBytes to every kind of payload', async () => {
    const bus = createMemoryBus({ maxMessageBytes: 16 })
    const t = bus.connect()
    await t.provision([stream], [{ natsBucket: 'b', kafkaTopic: 'b', replicas: 1 }])
    const big = new Uint8Array(17)
    await t.serve('echo.v1', async (r) => r)
    const rejections = await Promise.all([
      t.publish(stream, 0, 'k', big).catch((e: unknown) => e),
      t.request('echo.v1', big, 1_000).catch((e: unknown) => e),
      t.broadcast('live.v1', big).catch((e: unknown) => e),
      t.kv({ natsBucket: 'b', kafkaTopic: 'b', replicas: 1 }).then((kv) => kv.put('k', big).catch((e: unknown) => e)),
    ])
    for (const e of rejections) expect(e).toBeInstanceOf(TransportMessageTooLarge)
    expect(rejections.map((e) => (e as TransportMessageTooLarge).subject)).toEqual([
      'services.v1.0',
      'echo.v1',
      'live.v1',
      'b.k',
    ])
    expect(t.maxMessageBytes).toBe(16)
    expect(() => createMemoryBus({ maxMessageBytes: 0 })).toThrow(/maxMessageBytes must be a positive number, got 0/)
    await t.close()
  })

  it('closes only what one client opened; the bus and other clients keep working', async () => {
    const bus = createMemoryBus()
    const [a, b] = [bus.connect(), bus.connect()]
    await a.provision([stream], [])
    const heardByA: string[] = []
    const heardByB: string[] = []
    await a.listen('live.v1', (d) => heardByA.push(text(d)))
    await b.listen('live.v1', (d) => heardByB.push(text(d)))
    await a.serve('echo.v1', async () => utf8.encode('from a'))
    await b.serve('echo.v1', async () => utf8.encode('from b'))
    const subA = await a.consume(stream, { group: 'g', maxInFlight: 1, maxInFlightBytes: 1 << 20, ackWaitMs: 60_000 }, async (d) => {
      await d.ack()
    })
    const subB = await b.consume(stream, { group: 'g', maxInFlight: 1, maxInFlightBytes: 1 << 20, ackWaitMs: 60_000 }, async (d) => {
      await d.ack()
    })
    expect(subA.assignedShards()).toEqual([0])

    await a.close()
    expect(subA.assignedShards()).toEqual([])
    expect(subB.assignedShards()).toEqual([0])
    await b.broadcast('live.v1', utf8.encode('after a closed'))
    await new Promise((resolve) => setImmediate(resolve))
    expect(heardByA).toEqual([])
    expect(heardByB).toEqual(['after a closed'])
    expect(text(await b.request('echo.v1', utf8.encode('q'), 1_000))).toBe('from b')
    expect(text(await b.request('echo.v1', utf8.encode('q'), 1_000))).toBe('from b')
    await expect(a.publish(stream, 0, 'k', utf8.encode('x'))).rejects.toThrow(
      /memory transport client is closed: cannot publish to services.v1/,
    )
    await b.close()
  })

  it('shares KV buckets between clients and stops a watch on close', async () => {
    const bus = createMemoryBus()
    const [a, b] = [bus.connect(), bus.connect()]
    const spec = { natsBucket: 'flowbus_metadata_interfaces_v1', kafkaTopic: 'm', replicas: 1 }
    const kvA = await a.kv(spec)
    const kvB = await b.kv(spec)
    await kvA.put('192.0.2.1/17', utf8.encode('xe-0/0/1'))
    expect(text((await kvB.get('192.0.2.1/17'))!)).toBe('xe-0/0/1')
    const seen: string[] = []
    const watch = await kvB.watch((e) => seen.push(`${e.key}=${e.value ? text(e.value) : '∅'}`))
    await kvA.delete('192.0.2.1/17')
    await kvA.delete('192.0.2.1/17') // already gone: no event
    await watch.close()
    await kvA.put('192.0.2.1/18', utf8.encode('xe-0/0/2'))
    expect(seen).toEqual(['192.0.2.1/17=xe-0/0/1', '192.0.2.1/17=∅'])
    await a.close()
    await b.close()
  })
})
