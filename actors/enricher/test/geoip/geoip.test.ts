// GeoIP: lookups in Akvorado's test databases (MaxMind GeoLite2 and IPinfo layouts) checked
// against known answers and against mmdb-lib itself, the embedded data, the batch stage, and
// reloading when a database file is replaced.
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FlowBatch, formatIP, parseIP } from '@flowbus/bus-schemas'
import { Reader } from 'mmdb-lib'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { akvoradoTestdata } from '../../../../test/src/harness/testdata.js'
import { ASNRanges } from '../../src/geoip/asn-ranges.js'
import { GeoDatabase, geoRecordOf } from '../../src/geoip/database.js'
import { GeoIPStage, type GeoIPEvent } from '../../src/geoip/stage.js'
import { EnrichContext } from '../../src/stages.js'
import { prng } from '../../../../bus-schemas/test/fixtures/sample-flows.js'
import { addressBatches } from '../flows.js'

const dir = join(akvoradoTestdata, 'geoip')
const file = (name: string): string => join(dir, name)
const stages: GeoIPStage[] = []
afterAll(() => stages.forEach((s) => s.close()))
const open = (...args: Parameters<typeof GeoIPStage.open>): GeoIPStage => {
  const stage = GeoIPStage.open(...args)
  stages.push(stage)
  return stage
}

describe('GeoIP databases', () => {
  const stage = open({
    geoDatabases: [file('GeoLite2-City-Test.mmdb'), file('ip_geolocation_sample.mmdb')],
    asnDatabases: [file('GeoLite2-ASN-Test.mmdb'), file('ip_country_asn_sample.mmdb')],
    pollInterval: 0,
  })

  it.each([
    // MaxMind City layout (country, subdivision, city), IPv4 and IPv6.
    ['81.2.69.142', { country: 'GB', state: 'England', city: 'London', asn: 0 }],
    ['89.160.20.112', { country: 'SE', state: 'Östergötland County', city: 'Linköping', asn: 29518, asName: 'Bredband2 AB' }],
    ['2a02:ff00::1', { country: 'IT', state: '', city: '' }],
    // IPinfo geolocation layout (country, region, city as strings) overrides nothing it lacks.
    ['1.0.0.1', { country: 'AU', state: 'Queensland', city: 'Brisbane', asn: 15169, asName: 'Google Inc.' }],
    // MaxMind ASN layout alone.
    ['1.128.0.1', { country: '', asn: 1221, asName: 'Telstra Pty Ltd' }],
    // IPinfo country+ASN layout ("AS32787" strings).
    ['2.19.4.136', { country: 'SG', asn: 32787, asName: 'Akamai Technologies, Inc.' }],
  ])('%s', (ip, expected) => {
    expect(stage.lookup(parseIP(ip))).toMatchObject(expected)
  })

  it('knows nothing of documentation addresses', () => {
    expect(stage.lookup(parseIP('192.0.2.1'))).toBeUndefined()
    expect(stage.lookup(parseIP('2001:db8::1'))).toBeUndefined()
  })

  it.each(['GeoLite2-City-Test.mmdb', 'GeoLite2-Country-Test.mmdb', 'GeoLite2-ASN-Test.mmdb', 'ip_country_asn_sample.mmdb', 'ip_geolocation_sample.mmdb'])(
    '%s answers as mmdb-lib does, for every address tried',
    (name) => {
      const bytes = readFileSync(file(name))
      const db = new GeoDatabase(bytes, name)
      const reader = new Reader(bytes)
      // Addresses around every network the reference finds among a sweep, IPv4 and IPv6.
      const addresses: Uint8Array[] = []
      for (let a = 1; a < 224; a++) for (let b = 0; b < 256; b += 3) addresses.push(parseIP(`${a}.${b}.${(a * 7 + b) & 255}.${(a * b) & 255}`))
      for (const p of ['2001:218::', '2001:220::', '2001:230::', '2001:240::', '2001:250::', '2001:252::', '2001:254::', '2001:256::', '2001:258::', '2001:480::', '2a02:cf40::', '2a02:ec00::', '2a02:ff00::']) {
        for (let i = 0; i < 16; i++) addresses.push(parseIP(`${p}${i.toString(16)}:1`))
      }
      let found = 0
      const mismatches: string[] = []
      for (const address of addresses) {
        const expected = reader.get(formatIP(address))
        const got = db.lookup(address, 0)
        const want = expected === null ? undefined : JSON.stringify({ ...geoRecordOf(expected), generation: 0 })
        const have = got === undefined ? undefined : JSON.stringify({ ...got, generation: 0 })
        if (expected !== null) found++
        if (want !== have) mismatches.push(`${formatIP(address)}: ${have} instead of ${want}`)
      }
      expect(mismatches).toEqual([])
      expect(found).toBeGreaterThan(0)
    },
  )

  it('names a file that is not a MaxMind database, or missing', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'flowbus-geoip-'))
    try {
      writeFileSync(join(tmp, 'bad.mmdb'), 'not a database')
      expect(() => open({ geoDatabases: [join(tmp, 'bad.mmdb')], embedded: false })).toThrow(`GeoIP database ${join(tmp, 'bad.mmdb')} is not a MaxMind database`)
      expect(() => open({ asnDatabases: [join(tmp, 'none.mmdb')], embedded: false })).toThrow(`GeoIP database ${join(tmp, 'none.mmdb')} does not exist`)
      expect(open({ asnDatabases: [join(tmp, 'none.mmdb')], embedded: false, optional: true, pollInterval: 0 }).sources).toEqual([])
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  })
})

describe('embedded data', () => {
  const stage = open({ pollInterval: 0 })

  it('uses DB-IP country and ip-location-db ASN data', () => {
    expect(stage.sources).toHaveLength(2)
    expect(stage.lookup(parseIP('8.8.8.8'))).toMatchObject({ country: 'US', asn: 15169 })
    expect(stage.lookup(parseIP('1.1.1.1'))).toMatchObject({ asn: 13335, asName: 'Cloudflare, Inc.' })
    expect(stage.lookup(parseIP('2a01:e0a::1'))).toMatchObject({ country: 'FR', asn: 12322 })
    expect(stage.lookup(parseIP('10.0.0.1'))).toBeUndefined()
  })

  it('ASN ranges from CSV: bounds inclusive, quoted names, bad rows named', () => {
    const ranges = ASNRanges.fromCSV(
      'test',
      '16777216,16777471,13335,"Cloudflare, Inc."\n16778240,16779263,38803,Gtelecom Pty Ltd\n',
      '2001::,2001::ffff:ffff:ffff:ffff:ffff:ffff,6939,Hurricane Electric LLC\n2001:4:112::,2001:4:112:ffff:ffff:ffff:ffff:ffff,112,"DNS-OARC ""x"""\n',
    )
    expect(ranges.lookup(parseIP('1.0.0.0'), 0)).toMatchObject({ asn: 13335, asName: 'Cloudflare, Inc.' })
    expect(ranges.lookup(parseIP('1.0.0.255'), 0)?.asn).toBe(13335)
    expect(ranges.lookup(parseIP('1.0.1.0'), 0)).toBeUndefined()
    expect(ranges.lookup(parseIP('1.0.7.255'), 0)?.asn).toBe(38803)
    expect(ranges.lookup(parseIP('0.255.255.255'), 0)).toBeUndefined()
    expect(ranges.lookup(parseIP('2001::ffff:ffff:ffff:ffff:ffff:ffff'), 0)?.asn).toBe(6939)
    expect(ranges.lookup(parseIP('2001:1::'), 0)).toBeUndefined()
    expect(ranges.lookup(parseIP('2001:4:112:1::1'), 0)).toMatchObject({ asn: 112, asName: 'DNS-OARC "x"' })
    expect(() => ASNRanges.fromCSV('t', '1,2,AS3,x\n', '')).toThrow('t (IPv4) line 1: "AS3" is not an AS number')
    expect(() => ASNRanges.fromCSV('t', '', '2001::,2001:::1,3,x\n')).toThrow('t (IPv6) line 1: invalid IP address "2001:::1"')
  })
})

describe('GeoIP stage', () => {
  it('writes countries, states and cities and leaves AS numbers in the context', () => {
    const stage = open({ geoDatabases: [file('GeoLite2-City-Test.mmdb')], asnDatabases: [file('GeoLite2-ASN-Test.mmdb')], pollInterval: 0 })
    const pairs = [
      ['81.2.69.142', '89.160.20.112'],
      ['192.0.2.1', '2a02:ff00::1'],
      ['81.2.69.142', '1.128.0.1'],
    ]
    const batch = new FlowBatch(pairs.length)
    for (const [s, d] of pairs) {
      const r = batch.appendRow()
      batch.setIP('SrcAddr', r, parseIP(s!))
      batch.setIP('DstAddr', r, parseIP(d!))
    }
    const context = new EnrichContext()
    context.reset(batch.count)
    stage.apply(batch, batch.count, context)
    const col = (c: 'SrcCountry' | 'DstCountry' | 'SrcGeoCity' | 'DstGeoCity' | 'DstGeoState') => [0, 1, 2].map((r) => batch.getString(c, r))
    expect(col('SrcCountry')).toEqual(['GB', '', 'GB'])
    expect(col('SrcGeoCity')).toEqual(['London', '', 'London'])
    expect(col('DstCountry')).toEqual(['SE', 'IT', ''])
    expect(col('DstGeoState')).toEqual(['Östergötland County', '', ''])
    expect(Array.from(context.geoipSrcAS.subarray(0, 3))).toEqual([0, 0, 0])
    expect(Array.from(context.geoipDstAS.subarray(0, 3))).toEqual([29518, 0, 1221])
    expect(stage.counts()).toMatchObject({ hits: 5, misses: 1 })
  })

  it('answers as a lookup on every row, for more addresses than its cache holds, on aligned and unaligned columns', () => {
    const stage = open({
      geoDatabases: [file('GeoLite2-City-Test.mmdb'), file('ip_geolocation_sample.mmdb')],
      asnDatabases: [file('GeoLite2-ASN-Test.mmdb')],
      pollInterval: 0,
    })
    const rand = prng(5)
    const random = (n: number): number => Math.floor(rand() * n)
    // Networks the test databases know, and anything else.
    const known = ['81.2.69', '89.160.20', '216.160.83', '175.16.199', '2.125.160', '1.128.0', '12.81.92', '202.196.224']
    const pool: Uint8Array[] = []
    const address = (): Uint8Array => {
      if (pool.length > 0 && random(2) === 0) return pool[random(pool.length)]!
      const kind = random(10)
      const a =
        kind === 0
          ? parseIP(`2a02:ff00::${random(65536).toString(16)}`)
          : kind === 1
            ? parseIP(`2001:218:${random(65536).toString(16)}::1`)
            : kind < 6
              ? parseIP(`${known[random(known.length)]}.${random(256)}`)
              : parseIP(`${1 + random(222)}.${random(256)}.${random(256)}.${random(256)}`)
      if (pool.length < 3000) pool.push(a)
      return a
    }
    const addresses = Array.from({ length: 300_000 }, address)
    const wrong: string[] = []
    let found = 0
    for (const unaligned of [false, true]) {
      for (const batch of addressBatches(addresses.slice(unaligned ? 150_000 : 0, unaligned ? undefined : 150_000), 500, unaligned)) {
        const context = new EnrichContext()
        context.reset(batch.count)
        stage.apply(batch, batch.count, context)
        for (let r = 0; r < batch.count; r++) {
          for (const [side, as] of [['Src', context.geoipSrcAS], ['Dst', context.geoipDstAS]] as const) {
            const e = stage.lookup(batch.getIP(`${side}Addr`, r))
            if (e !== undefined) found++
            const got = `${batch.getString(`${side}Country`, r)}|${batch.getString(`${side}GeoState`, r)}|${batch.getString(`${side}GeoCity`, r)}|${as[r]}`
            const expected = `${e?.country ?? ''}|${e?.state ?? ''}|${e?.city ?? ''}|${e?.asn ?? 0}`
            if (got !== expected && wrong.length < 5) wrong.push(`${formatIP(batch.getIP(`${side}Addr`, r))}: ${got}, expected ${expected}`)
          }
        }
      }
    }
    expect(wrong).toEqual([])
    expect(found).toBeGreaterThan(10_000)
    expect(stage.counts()).toMatchObject({ hits: found, misses: addresses.length - found })
  })

  it('reloads a database replaced on disk, and keeps the old one when the new one is broken', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'flowbus-geoip-'))
    const path = join(tmp, 'geo.mmdb')
    const events: GeoIPEvent[] = []
    try {
      copyFileSync(file('GeoLite2-Country-Test.mmdb'), path)
      const stage = open({ geoDatabases: [path], asnDatabases: [], embedded: false, pollInterval: 200, onEvent: (e) => events.push(e) })
      expect(stage.lookup(parseIP('81.2.69.142'))).toMatchObject({ country: 'GB', city: '' })
      // Replaced the way download tools do: written aside, renamed over.
      copyFileSync(file('GeoLite2-City-Test.mmdb'), join(tmp, 'geo.mmdb.tmp'))
      renameSync(join(tmp, 'geo.mmdb.tmp'), path)
      await vi.waitFor(() => expect(stage.lookup(parseIP('81.2.69.142'))?.city).toBe('London'), { timeout: 20_000, interval: 50 })
      expect(events).toContainEqual({ kind: 'loaded', path, description: path })
      writeFileSync(path, 'garbage')
      await vi.waitFor(() => expect(stage.counts().reloadErrors).toBe(1), { timeout: 20_000, interval: 50 })
      expect(events.at(-1)).toMatchObject({ kind: 'reload-failed', path, error: expect.stringContaining('is not a MaxMind database') })
      expect(stage.lookup(parseIP('81.2.69.142'))?.city).toBe('London')
      stage.close()
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  })

  it('notices a file rewritten in place by polling alone', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'flowbus-geoip-'))
    const path = join(tmp, 'asn.mmdb')
    try {
      copyFileSync(file('GeoLite2-ASN-Test.mmdb'), path)
      const stage = open({ asnDatabases: [path], embedded: false, pollInterval: 100, watchEvents: false })
      expect(stage.lookup(parseIP('1.0.0.1'))?.asn).toBe(15169)
      expect(stage.lookup(parseIP('2.19.4.136'))).toBeUndefined()
      copyFileSync(file('ip_country_asn_sample.mmdb'), path)
      await vi.waitFor(() => expect(stage.lookup(parseIP('2.19.4.136'))?.asn).toBe(32787), { timeout: 20_000, interval: 50 })
      expect(stage.counts().reloads).toBe(1)
      stage.close()
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  })
})
