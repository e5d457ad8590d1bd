// The poller's bookkeeping with a hand-driven clock: coalescing, cache hits, refresh and expiry,
// the breaker's closed/open/half-open cycle, reloads from the bus state, and agent selection.
import { parseIP } from '@flowbus/bus-schemas'
import { Schema } from 'effect'
import { describe, expect, it } from 'vitest'
import { AgentTable } from '../src/agents.js'
import { CircuitBreaker } from '../src/breaker.js'
import { MetadataCache } from '../src/cache.js'
import { SnmpPollerConfig } from '../src/config.js'
import type { PolledInterface, PollPlan, PollResult } from '../src/poll.js'

const A = parseIP('192.0.2.1')
const B = parseIP('192.0.2.2')
const agents = new AgentTable([{ subnet: '192.0.2.0/24', version: '2c', communities: ['public'], port: 161 }])
const options = { refreshAfter: 60_000, expireAfter: 300_000, maxInterfacesPerPoll: 3, breaker: { failures: 2, openFor: 10_000, maxOpenFor: 25_000 } }

const makeCache = () => {
  const clock = { now: 1_000_000 }
  const cache = new MetadataCache(agents, options, () => clock.now)
  // What a worker does: record the result, publish (nothing here), release the exporter.
  const finish = (key: string, plan: PollPlan, result: PollResult) => ({ ...cache.complete(key, plan, result), reschedule: cache.release(key) })
  return { clock, cache, finish }
}

const eth = (name: string, alias = ''): PolledInterface => ({ ifName: name, ifDescr: `${name} descr`, ifAlias: alias, ifHighSpeed: 10_000 })
const success = (interfaces: [number, PolledInterface | undefined][], sysName = 'edge1'): PollResult => ({
  ok: true,
  sysName,
  interfaces: new Map(interfaces),
  community: 0,
  requests: 1,
  timeouts: 0,
})
const timeout: PollResult = { ok: false, reason: 'timeout', message: 'no answer', requests: 1, timeouts: 1 }

describe('MetadataCache', () => {
  it('coalesces requests for one exporter into one poll, answers later ones from the cache', () => {
    const { cache, finish } = makeCache()
    const first = cache.demand(A, [3, 1])
    expect(first).toMatchObject({ schedule: true, wanted: 2, cached: 0 })
    expect(cache.demand(A, [2, 3])).toMatchObject({ schedule: false, wanted: 1 })
    const plan = cache.take(first.key!)!
    expect(plan.ifIndexes).toEqual([1, 2, 3])
    expect(plan.exporter).toBe('192.0.2.1')
    const done = finish(first.key!, plan, success([[1, eth('et-0/0/1', 'transit: AS64500')], [2, eth('et-0/0/2')], [3, undefined]]))
    expect(done.exporter).toMatchObject({ name: 'edge1', sysName: 'edge1', updatedUnixMs: 1_000_000 })
    expect(done.put.map((i) => [i.ifIndex, i.name, i.description, i.speed])).toEqual([
      [1, 'et-0/0/1', 'transit: AS64500', 10_000],
      [2, 'et-0/0/2', 'et-0/0/2 descr', 10_000],
    ])
    expect(done.reschedule).toBe(false)
    // Known interfaces and the one known not to exist are answered from the cache.
    expect(cache.demand(A, [1, 2, 3])).toMatchObject({ schedule: false, cached: 3, wanted: 0 })
    expect(cache.stats()).toMatchObject({ exporters: 1, interfaces: 2 })
  })

  it('a request arriving during a poll is polled right after it', () => {
    const { cache, finish } = makeCache()
    const key = cache.demand(A, [1]).key!
    const plan = cache.take(key)!
    expect(cache.demand(A, [2])).toMatchObject({ schedule: false, wanted: 1 })
    expect(finish(key, plan, success([[1, eth('a')]])).reschedule).toBe(true)
    expect(cache.take(key)!.ifIndexes).toEqual([2])
  })

  it('asks for many interfaces over several turns in the queue', () => {
    const { cache, finish } = makeCache()
    const key = cache.demand(A, [5, 4, 3, 2, 1]).key!
    const first = cache.take(key)!
    expect(first.ifIndexes).toEqual([1, 2, 3])
    expect(finish(key, first, success(first.ifIndexes.map((i) => [i, eth(`e${i}`)]))).reschedule).toBe(true)
    expect(cache.take(key)!.ifIndexes).toEqual([4, 5])
  })

  it('refreshes entries in the background before they expire, and expires them when refreshes fail', () => {
    const { cache, clock, finish } = makeCache()
    const key = cache.demand(A, [1]).key!
    finish(key, cache.take(key)!, success([[1, eth('a')]]))
    clock.now += 59_000
    expect(cache.due()).toEqual([])
    clock.now += 1_000
    expect(cache.due()).toEqual([key])
    expect(cache.take(key)!.ifIndexes).toEqual([1])
    // The refresh fails (breaker opens after two failures); the entry stays until expireAfter.
    expect(finish(key, { agent: agents.resolve(A)!, ifIndexes: [1], preferredCommunity: 0 }, timeout).reschedule).toBe(true)
    expect(finish(key, cache.take(key)!, timeout).opened).toBe(true)
    expect(cache.stats().interfaces).toBe(1)
    clock.now = 1_000_000 + 300_000
    cache.due()
    expect(cache.stats().interfaces).toBe(0)
  })

  it('opens the breaker after repeated failures, probes once when half-open, doubles the open time on a failed probe', () => {
    const { cache, clock, finish } = makeCache()
    const key = cache.demand(A, [1]).key!
    let plan = cache.take(key)!
    let done = finish(key, plan, timeout)
    expect(done).toMatchObject({ opened: false, breaker: 'closed', reschedule: true })
    plan = cache.take(key)!
    done = finish(key, plan, timeout)
    expect(done).toMatchObject({ opened: true, breaker: 'open', reschedule: false })
    // Held while open: neither requests nor housekeeping start a poll; other exporters are unaffected.
    expect(cache.demand(A, [2]).schedule).toBe(false)
    expect(cache.demand(B, [1]).schedule).toBe(true)
    expect(cache.due()).toEqual([])
    clock.now += 10_000
    expect(cache.breakers().get('192.0.2.1')).toBe('half-open')
    expect(cache.due()).toEqual([key])
    plan = cache.take(key)!
    expect(plan.ifIndexes).toEqual([1, 2])
    done = finish(key, plan, timeout)
    expect(done).toMatchObject({ opened: true, breaker: 'open' })
    clock.now += 19_999
    expect(cache.due()).toEqual([])
    clock.now += 1
    expect(cache.due()).toEqual([key])
    done = finish(key, cache.take(key)!, success([[1, eth('a')], [2, eth('b')]]))
    expect(done).toMatchObject({ breaker: 'closed', reschedule: false })
    expect(done.put).toHaveLength(2)
  })

  it('reports interfaces that disappeared so their state can be deleted', () => {
    const { cache, clock, finish } = makeCache()
    const key = cache.demand(A, [7]).key!
    finish(key, cache.take(key)!, success([[7, eth('a')]]))
    clock.now += 60_000
    cache.due()
    const done = finish(key, cache.take(key)!, success([[7, undefined]]))
    expect(done.removed).toEqual(['192.0.2.1.7'])
    expect(done.put).toEqual([])
  })

  it('reloads fresh entries from the bus state and skips expired ones', () => {
    const { cache, clock, finish } = makeCache()
    const iface = (ifIndex: number, age: number) => ({
      exporterAddress: A,
      ifIndex,
      name: `if${ifIndex}`,
      description: '',
      speed: 1000,
      provider: '',
      connectivity: '',
      boundary: 0 as const,
      updatedUnixMs: clock.now - age,
    })
    expect(cache.loadExporter({ address: A, name: 'edge1', group: '', role: '', site: '', region: '', tenant: '', sysName: 'edge1', updatedUnixMs: clock.now - 1_000 })).toBe(true)
    expect(cache.loadInterface(iface(1, 1_000))).toBe(true)
    expect(cache.loadInterface(iface(2, 70_000))).toBe(true)
    expect(cache.loadInterface(iface(3, 300_000))).toBe(false)
    expect(cache.loadInterface({ ...iface(1, 0), exporterAddress: parseIP('198.51.100.1') })).toBe(false)
    // Fresh: cached. Due for refresh (70 s old): polled. Expired: polled.
    expect(cache.demand(A, [1, 2, 3])).toMatchObject({ cached: 1, wanted: 2, schedule: true })
  })

  it('gives up demands an unreachable exporter could not serve for expireAfter', () => {
    const { cache, clock, finish } = makeCache()
    const key = cache.demand(A, [1]).key!
    finish(key, cache.take(key)!, timeout)
    finish(key, cache.take(key)!, timeout)
    for (let t = 0; t < 300_000; t += 10_000) {
      clock.now += 10_000
      for (const k of cache.due()) finish(k, cache.take(k)!, timeout)
    }
    clock.now += 1
    cache.due()
    expect(cache.breakers().has('192.0.2.1')).toBe(false)
  })
})

describe('CircuitBreaker', () => {
  it('counts consecutive failures only', () => {
    const breaker = new CircuitBreaker({ failures: 2, openFor: 100, maxOpenFor: 1000 })
    breaker.failure(0)
    breaker.success()
    expect(breaker.failure(0)).toBe(false)
    expect(breaker.failure(0)).toBe(true)
    expect(breaker.allows(99)).toBe(false)
    expect(breaker.allows(100)).toBe(true)
  })
})

describe('AgentTable', () => {
  it('picks the longest subnet, with its port, credentials and agent address', () => {
    const config = Schema.decodeUnknownSync(SnmpPollerConfig)({
      agents: [
        { subnet: '::/0', communities: ['public'] },
        { subnet: '10.0.0.0/8', communities: ['c1', 'c2'], port: 1161 },
        {
          subnet: '10.1.0.0/16',
          version: '3',
          user: { name: 'poller', authProtocol: 'sha256', authPassword: 'auth-secret', privProtocol: 'aes', privPassword: 'priv-secret' },
        },
        { subnet: '10.1.2.3/32', agentAddress: '127.0.0.1', port: 16100, communities: ['lab'] },
      ],
    })
    const table = new AgentTable(config.agents)
    expect(table.resolve(parseIP('192.0.2.1'))).toMatchObject({ address: '192.0.2.1', port: 161, credentials: { version: '2c', communities: ['public'] } })
    expect(table.resolve(parseIP('2001:db8::1'))).toMatchObject({ address: '2001:db8::1', subnet: '::/0' })
    expect(table.resolve(parseIP('10.9.9.9'))).toMatchObject({ port: 1161, credentials: { communities: ['c1', 'c2'] } })
    expect(table.resolve(parseIP('10.1.9.9'))).toMatchObject({ credentials: { version: '3', user: { name: 'poller', authProtocol: 'sha256' } } })
    expect(table.resolve(parseIP('10.1.2.3'))).toMatchObject({ address: '127.0.0.1', port: 16100 })
    expect(new AgentTable([{ subnet: '10.0.0.0/8', version: '2c', communities: ['x'], port: 161 }]).resolve(parseIP('192.0.2.1'))).toBeUndefined()
  })

  it('rejects bad agent entries with a message naming them', () => {
    expect(() => Schema.decodeUnknownSync(SnmpPollerConfig)({ agents: [{ subnet: '10.0.0.0/33' }] })).toThrow(/10\.0\.0\.0\/33/)
    expect(() => Schema.decodeUnknownSync(SnmpPollerConfig)({ agents: [{ subnet: '10.0.0.0/8', version: '3' }] })).toThrow(/needs a user/)
    expect(() =>
      Schema.decodeUnknownSync(SnmpPollerConfig)({ agents: [{ subnet: '10.0.0.0/8', version: '3', user: { name: 'u', authPassword: 'short' } }] }),
    ).toThrow(/8 characters/)
  })
})
