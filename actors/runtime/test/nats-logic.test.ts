// Pure pieces of the NATS transport, without a server: shard assignment, the in-flight budget,
// KV key escaping, names made safe for NATS, delivery counts read from ack subjects, server URLs.
import { describe, expect, it } from 'vitest'
import { BudgetAcquireAborted, InFlightBudget } from '../src/bus/nats-budget.js'
import { assignShards } from '../src/bus/nats-group.js'
import { decodeKvKey, encodeKvKey } from '../src/bus/nats-kv.js'
import { deliveryCountOf } from '../src/bus/nats-pull.js'
import { parseServer } from '../src/bus/nats-wire.js'
import { keyToken } from '../src/bus/nats.js'

describe('assignShards', () => {
  const members = (n: number) => Array.from({ length: n }, (_, i) => `host-${i}-pid${1000 + i}`)

  it('gives every shard one owner, evenly, the same answer whatever the member order', () => {
    for (const [n, partitions] of [
      [1, 4],
      [2, 4],
      [3, 16],
      [5, 12],
      [7, 3],
    ] as const) {
      const owners = assignShards(members(n), partitions)
      expect(owners).toHaveLength(partitions)
      const load = new Map<string, number>()
      for (const owner of owners) load.set(owner, (load.get(owner) ?? 0) + 1)
      for (const count of load.values()) expect(count).toBeLessThanOrEqual(Math.ceil(partitions / n))
      expect(load.size).toBe(Math.min(n, partitions))
      expect(assignShards([...members(n)].reverse(), partitions)).toEqual(owners)
    }
  })

  it('moves few shards when a member joins', () => {
    const before = assignShards(members(4), 64)
    const after = assignShards(members(5), 64)
    const moved = before.filter((owner, shard) => after[shard] !== owner).length
    // The newcomer takes about a fifth; a plain modulo would move most shards.
    expect(moved).toBeLessThan(32)
    expect(after.filter((owner) => owner === 'host-4-pid1004').length).toBeGreaterThanOrEqual(12)
  })

  it('has no owner without members', () => {
    expect(assignShards([], 4)).toEqual([])
  })
})

describe('InFlightBudget', () => {
  it('grants no more than the budget and serves waiters first come first served', async () => {
    const budget = new InFlightBudget(5, 1_000)
    const first = await budget.acquire(3, 600, 1)
    expect(first).toEqual({ msgs: 3, bytes: 600 })
    const second = await budget.acquire(10, 10_000, 1)
    expect(second).toEqual({ msgs: 2, bytes: 400 })
    const order: string[] = []
    const big = budget.acquire(1, 800, 800).then((g) => order.push(`big:${g.bytes}`))
    const small = budget.acquire(1, 10, 10).then((g) => order.push(`small:${g.bytes}`))
    budget.unreserve(3, 600) // first pull came back empty: 600 bytes free, not enough for big
    await Promise.resolve()
    expect(order).toEqual([]) // small waits behind big
    budget.unreserve(2, 400)
    await Promise.all([big, small])
    expect(order).toEqual(['big:800', 'small:10'])
  })

  it('counts held messages until settled, and lets one oversized message through when nothing is held', async () => {
    const budget = new InFlightBudget(10, 1_000)
    const grant = await budget.acquire(10, 1_000, 1)
    budget.receive(1, 300, 300)
    budget.unreserve(grant.msgs - 1, grant.bytes - 300)
    expect([budget.inFlightMsgs, budget.inFlightBytes]).toEqual([1, 300])
    let granted: number | undefined
    const oversized = budget.acquire(1, 5_000, 5_000).then((g) => (granted = g.bytes))
    await Promise.resolve()
    expect(granted).toBeUndefined()
    budget.settle(300)
    await oversized
    expect(granted).toBe(5_000)
  })

  it('rejects a waiting acquire when aborted', async () => {
    const budget = new InFlightBudget(1, 100)
    await budget.acquire(1, 100, 1)
    const abort = new AbortController()
    const waiting = budget.acquire(1, 100, 1, abort.signal)
    abort.abort()
    await expect(waiting).rejects.toBeInstanceOf(BudgetAcquireAborted)
  })
})

describe('KV key escaping', () => {
  const valid = /^[-/_=.A-Za-z0-9]+$/

  it('round-trips keys NATS would refuse into valid keys', () => {
    for (const key of ['2001:db8::1', '192.0.2.1:17', 'a..b', '.lead', 'trail.', 'eq=sign', 'sp ace', 'ünï', '😀', '*>', '=41']) {
      const encoded = encodeKvKey(key)
      expect(encoded, key).toMatch(valid)
      expect(encoded.startsWith('.') || encoded.endsWith('.') || encoded.includes('..'), encoded).toBe(false)
      expect(decodeKvKey(encoded)).toBe(key)
    }
  })

  it('leaves ordinary keys readable', () => {
    expect(encodeKvKey('exporter.192_0_2_1')).toBe('exporter.192_0_2_1')
    expect(encodeKvKey('192.0.2.1:17')).toBe('192.0.2.1=3A17')
  })

  it('refuses an empty key', () => {
    expect(() => encodeKvKey('')).toThrow(/empty/)
  })
})

describe('names and ack subjects', () => {
  it('keeps simple names and makes others safe yet distinct', () => {
    expect(keyToken('writer-1')).toBe('writer-1')
    const a = keyToken('writer.one')
    const b = keyToken('writer_one')
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(a).not.toBe(b)
    expect(keyToken('a b')).not.toBe(keyToken('a*b'))
  })

  it('reads the delivery count from both ack subject layouts', () => {
    expect(deliveryCountOf('$JS.ACK.S.c0.3.10.12.1795238582478441728.0')).toBe(3)
    expect(deliveryCountOf('$JS.ACK.hub.ACCHASH.S.c0.2.10.12.1795238582478441728.0.token')).toBe(2)
    expect(deliveryCountOf(undefined)).toBe(1)
  })
})

describe('server URLs of the data connection', () => {
  it('reads host, port and credentials the way nats.js does', () => {
    expect(parseServer('nats://127.0.0.1:4223')).toMatchObject({ host: '127.0.0.1', port: 4223 })
    expect(parseServer('10.0.0.1')).toMatchObject({ host: '10.0.0.1', port: 4222 })
    expect(parseServer('nats.example.net:5222')).toMatchObject({ host: 'nats.example.net', port: 5222 })
    expect(parseServer('nats://[::1]:4222')).toMatchObject({ host: '::1', port: 4222 })
    expect(parseServer('nats://flow%40bus:s3cr%3At@h:1')).toMatchObject({ user: 'flow@bus', pass: 's3cr:t' })
    // A user without password is a token.
    const withToken = parseServer('nats://t0ken@h')
    expect(withToken.token).toBe('t0ken')
    expect(withToken.user).toBeUndefined()
  })

  it('refuses what it cannot speak, naming the URL', () => {
    expect(() => parseServer('tls://h:4443')).toThrow(/tls:\/\/h:4443.*nats:\/\//)
    expect(() => parseServer('nats://h:notaport')).toThrow(/nats:\/\/h:notaport/)
  })
})
