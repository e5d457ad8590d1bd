// The address cache GeoIP and networks share (one slot per address holding both answers):
// colliding addresses, one stage's answers going stale without the other's, stamps wrapping.
import { join } from 'node:path'
import { formatIP, parseIP } from '@flowbus/bus-schemas'
import { afterAll, describe, expect, it } from 'vitest'
import { akvoradoTestdata } from '../../../../test/src/harness/testdata.js'
import { prng } from '../../../../bus-schemas/test/fixtures/sample-flows.js'
import { GeoIPStage } from '../../src/geoip/stage.js'
import { AddressCache, SLOT_WORDS } from '../../src/networks/address-cache.js'
import { NetworkStage } from '../../src/networks/stage.js'
import { type NetworkTable, parseNetworks } from '../../src/networks/table.js'
import { EnrichContext } from '../../src/stages.js'
import { addressBatches } from '../flows.js'

const geoFile = (name: string): string => join(akvoradoTestdata, 'geoip', name)
const stages: GeoIPStage[] = []
afterAll(() => stages.forEach((s) => s.close()))

/** Addresses the test databases and networks know, repeated often, and anything else. */
function addresses(seed: number, count: number): Uint8Array[] {
  const rand = prng(seed)
  const random = (n: number): number => Math.floor(rand() * n)
  const known = ['81.2.69', '89.160.20', '216.160.83', '175.16.199', '2.125.160', '10.1.2', '10.200.0']
  const pool: Uint8Array[] = []
  return Array.from({ length: count }, () => {
    if (pool.length > 0 && random(2) === 0) return pool[random(pool.length)]!
    const kind = random(10)
    const a =
      kind === 0
        ? parseIP(`2a02:ff00::${random(65536).toString(16)}`)
        : kind < 6
          ? parseIP(`${known[random(known.length)]}.${random(256)}`)
          : parseIP(`${1 + random(222)}.${random(256)}.${random(256)}.${random(256)}`)
    if (pool.length < 500) pool.push(a)
    return a
  })
}

/** Runs geoip then networks (the actor's order) over the batches and lists rows whose columns differ from plain lookups. */
function check(geoip: GeoIPStage, networks: NetworkStage, table: NetworkTable, list: Uint8Array[]): string[] {
  const wrong: string[] = []
  for (const unaligned of [false, true]) {
    for (const batch of addressBatches(list, 200, unaligned)) {
      const context = new EnrichContext()
      context.reset(batch.count)
      geoip.apply(batch, batch.count, context)
      networks.apply(batch, batch.count, context)
      for (let r = 0; r < batch.count; r++) {
        for (const side of ['Src', 'Dst'] as const) {
          const address = batch.getIP(`${side}Addr`, r)
          const g = geoip.lookup(address)
          const n = table.lookup(address)
          const geoAS = side === 'Src' ? context.geoipSrcAS[r] : context.geoipDstAS[r]
          const netAS = side === 'Src' ? context.networkSrcAS[r] : context.networkDstAS[r]
          // A network's country overrides GeoIP's where it sets one.
          const got = `${batch.getString(`${side}Country`, r)}|${batch.getString(`${side}GeoCity`, r)}|${geoAS}|${batch.getString(`${side}NetName`, r)}|${netAS}`
          const expected = `${n?.country || g?.country || ''}|${g?.city ?? ''}|${g?.asn ?? 0}|${n?.name ?? ''}|${n?.asn ?? 0}`
          if (got !== expected && wrong.length < 5) wrong.push(`${formatIP(address)}: ${got}, expected ${expected}`)
        }
      }
    }
  }
  return wrong
}

describe('shared address cache', () => {
  const tableA = parseNetworks({ '10.1.2.0/24': { name: 'a-lan', asn: 64501 }, '81.2.69.0/24': { name: 'a-office', country: 'FR' } }, 'a')
  const tableB = parseNetworks({ '10.1.2.0/24': { name: 'b-lan', asn: 64502 }, '10.200.0.0/16': 'b-dc' }, 'b')

  it('gives each stage its own answer when every slot is fought over by many addresses', () => {
    // 8 slots for thousands of addresses: nearly every row replaces the previous address of its slot.
    const cache = new AddressCache(3)
    const geoip = GeoIPStage.open({ geoDatabases: [geoFile('GeoLite2-City-Test.mmdb')], asnDatabases: [geoFile('GeoLite2-ASN-Test.mmdb')], pollInterval: 0, cache })
    stages.push(geoip)
    const networks = new NetworkStage(tableA, cache)
    expect(check(geoip, networks, tableA, addresses(11, 20_000))).toEqual([])
  })

  it('forgets one stage’s answers when its data changes and keeps the other’s right', () => {
    const cache = new AddressCache(10)
    const geoip = GeoIPStage.open({ geoDatabases: [geoFile('GeoLite2-City-Test.mmdb')], asnDatabases: [geoFile('GeoLite2-ASN-Test.mmdb')], pollInterval: 0, cache })
    stages.push(geoip)
    const networks = new NetworkStage(tableA, cache)
    const list = addresses(12, 4000)
    expect(check(geoip, networks, tableA, list)).toEqual([])
    // The same addresses again, now all cached: the new table must answer, GeoIP's answers stay valid.
    networks.replace(tableB)
    expect(check(geoip, networks, tableB, list)).toEqual([])
    networks.replace(tableA)
    expect(check(geoip, networks, tableA, list)).toEqual([])
  })

  it('zeroes every part’s stamp when a slot takes another address, and forgets all stamps when one wraps', () => {
    const cache = new AddressCache(2)
    const first = cache.part(4)
    const second = cache.part(1)
    expect(second.at).toBe(first.at + 5)
    expect(() => cache.part(SLOT_WORDS)).toThrow(/no room/)
    const column = new Uint8Array(32)
    column.set(parseIP('192.0.2.1'), 0)
    column.set(parseIP('192.0.2.2'), 16)
    const located = new Int32Array(2)
    cache.locate(undefined, column, 1, located)
    const k = located[0]!
    cache.claim(k, undefined, column, 0)
    cache.slots[k + first.at] = first.stamp
    cache.slots[k + second.at] = second.stamp
    cache.claim(k, undefined, column, 0)
    expect([cache.slots[k + first.at], cache.slots[k + second.at]]).toEqual([first.stamp, second.stamp])
    // Another address put in the same slot (the caller's offset is where it goes).
    cache.claim(k, undefined, column, 1)
    expect([cache.slots[k + first.at], cache.slots[k + second.at]]).toEqual([0, 0])
    // An answer stamped 1 long ago must not come back valid when the stamp wraps to 1.
    cache.slots[k + first.at] = 1
    first.stamp = 0xffffffff
    first.invalidate()
    expect(first.stamp).toBe(1)
    expect(cache.slots[k + first.at]).toBe(0)
    second.invalidate()
    expect(second.stamp).toBe(2)
  })
})
