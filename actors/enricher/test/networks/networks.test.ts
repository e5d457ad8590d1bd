// Network attributes by subnet: validation of entries (errors name the prefix), longest prefix
// wins with inheritance, IPv4 and IPv6, columns written in place, atomic replacement.
import { readFileSync } from 'node:fs'
import { FlowBatch, parseIP } from '@flowbus/bus-schemas'
import { Schema } from 'effect'
import { describe, expect, it } from 'vitest'
import { NetworkStage } from '../../src/networks/stage.js'
import { NetworkEntryError, NetworksConfig, parseNetworks } from '../../src/networks/table.js'
import { EnrichContext } from '../../src/stages.js'
import { prng } from '../../../../bus-schemas/test/fixtures/sample-flows.js'
import { addressBatches } from '../flows.js'

const fixture = JSON.parse(readFileSync(new URL('../fixtures/networks.json', import.meta.url), 'utf8')) as Record<string, unknown>

function batchOf(pairs: [src: string, dst: string][]): FlowBatch {
  const batch = new FlowBatch(pairs.length)
  for (const [src, dst] of pairs) {
    const r = batch.appendRow()
    batch.setIP('SrcAddr', r, parseIP(src))
    batch.setIP('DstAddr', r, parseIP(dst))
  }
  return batch
}

function enrich(stage: NetworkStage, batch: FlowBatch): EnrichContext {
  const context = new EnrichContext()
  context.reset(batch.count)
  stage.apply(batch, batch.count, context)
  return context
}

describe('network table', () => {
  const table = parseNetworks(fixture, 'networks.json')

  it('holds every entry', () => {
    expect(table.size).toBe(Object.keys(fixture).length)
  })

  it('finds the longest prefix, which inherits what it does not set', () => {
    const web = table.lookup(parseIP('192.0.2.200'))!
    expect(web.prefix).toBe('192.0.2.192/26')
    expect([web.name, web.role, web.site, web.region, web.tenant, web.country, web.city, web.asn]).toEqual([
      'docs-dmz-web', 'dmz', 'par1', 'eu-west', 'acme', 'FR', 'Paris', 64500,
    ])
    const lan = table.lookup(parseIP('192.0.2.1'))!
    expect([lan.prefix, lan.name, lan.country]).toEqual(['192.0.2.0/24', 'docs-lan', ''])
    expect(table.lookup(parseIP('198.51.100.7'))!.asn).toBe(64501)
    expect(table.lookup(parseIP('203.0.113.9'))!.country).toBe('DE')
    expect(table.lookup(parseIP('192.0.3.1'))).toBeUndefined()
  })

  it('answers IPv6 lookups', () => {
    const par = table.lookup(parseIP('2001:db8:1:ff::1'))!
    expect([par.prefix, par.name, par.site, par.region, par.asn]).toEqual(['2001:db8:1::/48', 'docs-v6-par', 'par1', 'eu-west', 64500])
    expect(table.lookup(parseIP('2001:db8:2::1'))!.name).toBe('docs-v6')
    expect(table.lookup(parseIP('2001:db9::1'))).toBeUndefined()
    // An IPv4 prefix never matches IPv6 addresses outside the mapped range.
    expect(table.lookup(parseIP('::a00:1'))).toBeUndefined()
  })

  it('takes records with a prefix field (remote sources)', () => {
    const t = parseNetworks([{ prefix: '192.0.2.0/24', name: 'a' }, { prefix: '2001:db8::/32', name: 'b', asn: 65000 }], 'remote peers')
    expect(t.lookup(parseIP('192.0.2.1'))!.name).toBe('a')
    expect(t.lookup(parseIP('2001:db8::1'))!.asn).toBe(65000)
  })

  it.each([
    [{ '192.0.2.0': 'x' }, '192.0.2.0', /must be a prefix/],
    [{ '192.0.2.0/33': 'x' }, '192.0.2.0/33', /0\.\.32/],
    [{ '300.0.0.0/8': 'x' }, '300.0.0.0/8', /invalid IP address/],
    [{ '192.0.2.0/24': { nmae: 'x' } }, '192.0.2.0/24', /unknown attribute "nmae"/],
    [{ '192.0.2.0/24': { asn: 'ASX' } }, '192.0.2.0/24', /not an AS number/],
    [{ '192.0.2.0/24': { asn: 2 ** 32 } }, '192.0.2.0/24', /not an AS number/],
    [{ '192.0.2.0/24': { country: 'France' } }, '192.0.2.0/24', /ISO 3166/],
    [{ '192.0.2.0/24': 42 }, '192.0.2.0/24', /expected a name or an object/],
    [{ '192.0.2.0/24': 'a', '192.0.2.1/24': 'b' }, '192.0.2.1/24', /listed twice/],
  ])('rejects %j naming the entry', (entries, key, reason) => {
    let error: unknown
    try {
      parseNetworks(entries as Record<string, unknown>, 'config')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(NetworkEntryError)
    expect((error as NetworkEntryError).key).toBe(key)
    expect((error as Error).message).toContain(`config: network "${key}"`)
    expect((error as Error).message).toMatch(reason)
  })

  it('rejects a record without a prefix by its position', () => {
    expect(() => parseNetworks([{ prefix: '10.0.0.0/8' }, { name: 'x' }], 'remote r')).toThrow('remote r: network "#1": a record needs a "prefix"')
  })

  it('config schema reports the bad entry', () => {
    expect(Schema.decodeUnknownSync(NetworksConfig)(fixture)).toEqual(fixture)
    expect(() => Schema.decodeUnknownSync(NetworksConfig)({ '10.0.0.0/8': 'a', '10.0.0.0/40': 'b' })).toThrow(/network "10.0.0.0\/40"/)
  })
})

describe('networks stage', () => {
  it('writes source and destination attributes in place and leaves AS numbers in the context', () => {
    const stage = new NetworkStage(parseNetworks(fixture, 'networks.json'))
    const batch = batchOf([
      ['192.0.2.200', '2001:db8:1::5'],
      ['10.1.2.3', '198.51.100.1'],
      ['8.8.8.8', '192.0.2.1'],
    ])
    // GeoIP ran before: its country stays where the network sets none.
    batch.setString('DstCountry', 2, 'US')
    const context = enrich(stage, batch)
    expect(batch.getString('SrcNetName', 0)).toBe('docs-dmz-web')
    expect(batch.getString('SrcNetSite', 0)).toBe('par1')
    expect(batch.getString('SrcCountry', 0)).toBe('FR')
    expect(batch.getString('SrcGeoCity', 0)).toBe('Paris')
    expect(batch.getString('SrcGeoState', 0)).toBe('Île-de-France')
    expect(batch.getString('DstNetName', 0)).toBe('docs-v6-par')
    expect(batch.getString('DstCountry', 0)).toBe('FR')
    expect(batch.getString('SrcNetRole', 1)).toBe('private')
    expect(batch.getString('DstNetRole', 1)).toBe('ix')
    expect(batch.getString('SrcNetName', 2)).toBe('')
    expect(batch.getString('DstNetName', 2)).toBe('docs-lan')
    expect(batch.getString('DstCountry', 2)).toBe('US')
    expect(Array.from(context.networkSrcAS.subarray(0, 3))).toEqual([64500, 0, 0])
    expect(Array.from(context.networkDstAS.subarray(0, 3))).toEqual([64500, 64501, 64500])
    expect(stage.counts()).toEqual({ hits: 5, misses: 1, replaced: 0 })
  })

  it('uses a replaced table from the next batch on', () => {
    const stage = new NetworkStage(parseNetworks({ '192.0.2.0/24': 'before' }, 'remote'))
    const first = batchOf([['192.0.2.1', '192.0.2.2']])
    enrich(stage, first)
    stage.replace(parseNetworks({ '192.0.2.0/24': 'after', '2001:db8::/32': 'v6' }, 'remote'))
    const second = batchOf([['192.0.2.1', '2001:db8::1']])
    enrich(stage, second)
    expect(first.getString('SrcNetName', 0)).toBe('before')
    expect([second.getString('SrcNetName', 0), second.getString('DstNetName', 0)]).toEqual(['after', 'v6'])
    expect(stage.counts().replaced).toBe(1)
  })

  it('adds no columns when no network sets them, and none at all without networks', () => {
    const batch = batchOf([['10.0.0.1', '10.0.0.2']])
    enrich(new NetworkStage(parseNetworks({ '10.0.0.0/8': 'lan' }, 'c')), batch)
    expect(batch.has('SrcNetName')).toBe(true)
    expect(batch.has('SrcNetTenant')).toBe(false)
    const untouched = batchOf([['10.0.0.1', '10.0.0.2']])
    enrich(new NetworkStage(), untouched)
    expect(untouched.has('SrcNetName')).toBe(false)
  })

  it('answers as a table lookup on every row, for more addresses than its cache holds, on aligned and unaligned columns', () => {
    const rand = prng(99)
    const random = (n: number): number => Math.floor(rand() * n)
    const entries: Record<string, unknown> = {}
    for (let i = 0; i < 500; i++) entries[`${10 + (i % 3)}.${i % 256}.${(i * 7) % 256}.0/24`] = { name: `n${i}`, site: i % 2 === 0 ? `s${i % 5}` : '', asn: i % 3 === 0 ? 0 : 64500 + i }
    entries['10.0.0.0/8'] = { tenant: 'big', site: 'wide' }
    entries['2001:db8::/32'] = 'v6'
    const table = parseNetworks(entries, 'test')
    const prefixes = Object.keys(entries).filter((p) => p.endsWith('/24'))
    const pool: Uint8Array[] = []
    const address = (): Uint8Array => {
      if (pool.length > 0 && random(2) === 0) return pool[random(pool.length)]!
      const kind = random(10)
      const a =
        kind === 0
          ? parseIP(`2001:db8:${random(65536).toString(16)}::${random(65536).toString(16)}`)
          : kind < 6
            ? parseIP(`${prefixes[random(prefixes.length)]!.split('.').slice(0, 3).join('.')}.${random(256)}`)
            : parseIP(`${10 + random(3)}.${random(256)}.${random(256)}.${random(256)}`)
      if (pool.length < 3000) pool.push(a)
      return a
    }
    const addresses = Array.from({ length: 300_000 }, address)
    const stage = new NetworkStage(table)
    const wrong: string[] = []
    let row = 0
    for (const unaligned of [false, true]) {
      for (const batch of addressBatches(addresses.slice(unaligned ? 150_000 : 0, unaligned ? undefined : 150_000), 500, unaligned)) {
        const context = enrich(stage, batch)
        for (let r = 0; r < batch.count; r++, row++) {
          for (const [side, as] of [['Src', context.networkSrcAS], ['Dst', context.networkDstAS]] as const) {
            const e = table.lookup(batch.getIP(`${side}Addr`, r))
            const got = `${batch.getString(`${side}NetName`, r)}|${batch.getString(`${side}NetSite`, r)}|${batch.getString(`${side}NetTenant`, r)}|${as[r]}`
            const expected = `${e?.name ?? ''}|${e?.site ?? ''}|${e?.tenant ?? ''}|${e?.asn ?? 0}`
            if (got !== expected && wrong.length < 5) wrong.push(`row ${row} ${side}: ${got}, expected ${expected}`)
          }
        }
      }
    }
    expect(wrong).toEqual([])
    const counts = stage.counts()
    expect(counts.hits! + counts.misses!).toBe(addresses.length)
  })
})
