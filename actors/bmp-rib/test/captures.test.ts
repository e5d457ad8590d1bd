// The collector against Akvorado's real BMP captures (a Juniper vMX session, TCP reassembled from
// the pcaps): peers, prefixes, AS paths, communities, ADD-PATH, End-of-RIB, skipped families,
// lookups with the preference rule; then mutated captures, which must close only their session.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type RouteInfo, formatIP, parseIP } from '@flowbus/bus-schemas'
import { formatPrefix, readPcapTcpStreams } from '@flowbus/runtime'
import { describe, expect, it } from 'vitest'
import { akvoradoTestdata } from '../../../test/src/harness/testdata.js'
import { BmpCollector, BmpSessionError, bmpMessageLength, decodeBmpMessage, LookupAnswerer } from '../src/index.js'

const DIR = join(akvoradoTestdata, 'routing-provider-bmp')
const ROUTER = parseIP('203.0.113.0')

/** The router's byte stream in one capture (one TCP direction each). */
const stream = (name: string): Uint8Array => {
  const streams = readPcapTcpStreams(readFileSync(join(DIR, name)), name)
  expect(streams.length).toBe(1)
  expect(streams[0]!.complete).toBe(true)
  return streams[0]!.payload
}

const messageTypes = (bytes: Uint8Array): string[] => {
  const out: string[] = []
  for (let o = 0; o < bytes.length; ) {
    const length = bmpMessageLength(bytes, o, bytes.length)
    out.push(decodeBmpMessage(bytes.subarray(o, o + length)).type)
    o += length
  }
  return out
}

const community = (v: number): string => `${v >>> 16}:${v & 0xffff}`

/** The RIB as text lines: prefix, neighbor, AS path, communities, large communities, next hop. */
const ribLines = (collector: BmpCollector): string[] => {
  const rib = collector.rib
  const lines: string[] = []
  for (const family of ['ipv4', 'ipv6'] as const) {
    for (const { address, prefixLength } of rib.prefixes(family)) {
      for (const r of rib.routesOf(address, prefixLength)) {
        const a = r.attributes
        const large: string[] = []
        for (let i = 0; i < a.largeCommunities.length; i += 3) large.push(a.largeCommunities.slice(i, i + 3).join(':'))
        lines.push(
          [
            formatPrefix(address, prefixLength),
            formatIP(rib.peer(r.peer)!.address),
            a.asPath.join(' '),
            a.communities.map(community).join(' '),
            large.join(' '),
            a.nextHop ? formatIP(a.nextHop) : '-',
          ].join(' | '),
        )
      }
    }
  }
  return lines.sort()
}

const CAPTURES = [
  'bmp-init.pcap',
  'bmp-peers-up.pcap',
  'bmp-reach.pcap',
  'bmp-eor.pcap',
  'bmp-unreach.pcap',
  'bmp-reach-unknown-family.pcap',
  'bmp-reach-vpls.pcap',
  'bmp-peer-up.pcap',
  'bmp-peer-down.pcap',
  'bmp-terminate.pcap',
]

describe('BMP captures', () => {
  it('frames every capture into whole BMP messages of the expected types', () => {
    expect(Object.fromEntries(CAPTURES.map((c) => [c, messageTypes(stream(c))]))).toEqual({
      'bmp-init.pcap': ['initiation'],
      'bmp-peers-up.pcap': ['peer-up', 'statistics-report', 'peer-up', 'statistics-report', 'peer-up', 'statistics-report', 'peer-up'],
      'bmp-reach.pcap': Array(17).fill('route-monitoring'),
      'bmp-eor.pcap': ['statistics-report', ...Array(8).fill('route-monitoring')],
      'bmp-unreach.pcap': Array(8).fill('route-monitoring'),
      'bmp-reach-unknown-family.pcap': ['route-monitoring'],
      'bmp-reach-vpls.pcap': ['route-monitoring'],
      'bmp-peer-up.pcap': ['peer-up'],
      'bmp-peer-down.pcap': ['statistics-report', 'peer-down'],
      'bmp-terminate.pcap': ['termination'],
    })
    const init = decodeBmpMessage(stream('bmp-init.pcap'))
    expect(init.type === 'initiation' && init.sysName).toBe('vMX')
  })

  it('builds the RIB of the session: peers, prefixes, AS paths, communities, next hops (checked with tshark)', () => {
    const collector = new BmpCollector({ graceMs: 0 })
    const session = collector.openSession(ROUTER)
    for (const c of ['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-reach.pcap']) session.feed(stream(c))
    const peers = collector.rib.peerIds().map((id) => collector.rib.peer(id)!)
    expect(peers.map((p) => [formatIP(p.address), p.asn, p.up])).toEqual([
      ['192.0.2.1', 65011, true],
      ['192.0.2.5', 65500, true],
      ['2001:db8::3', 65013, true],
      ['2001:db8::7', 65017, true],
    ])
    expect(ribLines(collector)).toEqual([
      '192.0.2.0/31 | 192.0.2.1 | 65011 |  |  | 192.0.2.1',
      '192.0.2.6/31 | 2001:db8::7 | 65017 |  |  | 192.0.2.7',
      '198.51.100.0/25 | 192.0.2.1 | 65011 65011 174 1299 64476 | 65011:10 65011:20 |  | 192.0.2.1',
      '198.51.100.128/25 | 192.0.2.1 | 65011 65011 174 29447 396919 | 65011:12 |  | 192.0.2.1',
      '2001:db8:1::/64 | 2001:db8::3 | 65013 65013 174 174 174 | 65013:10 65013:20 |  | 2001:db8::3',
      '2001:db8:1::/64 | 2001:db8::7 | 65017 65013 174 174 174 | 65017:10 65017:20 | 65017:300:4 | 2001:db8::7',
      '2001:db8:2::/64 | 2001:db8::3 | 65013 65013 1299 1299 1299 12322 | 65013:30 |  | 2001:db8::3',
      '2001:db8:2::/64 | 2001:db8::7 | 65017 65017 1299 1299 1299 12322 | 65017:30 | 65017:400:2 | 2001:db8::7',
      '2001:db8::2/127 | 2001:db8::3 | 65013 |  |  | 2001:db8::3',
      '2001:db8::6/127 | 2001:db8::7 | 65017 |  |  | 2001:db8::7',
    ])
    // Interned next hops: 192.0.2.1, 192.0.2.7 (2001:db8::7's IPv4 route), 2001:db8::3, 2001:db8::7.
    expect(collector.rib.attributes.nextHops.size).toBe(4)
    // 1/128, 2/128 (VPN) and 25/70 (EVPN) announcements are skipped and counted.
    expect(Object.fromEntries(collector.tally.skippedFamilies)).toEqual({ '1/128': 5, '2/128': 1, '25/70': 1 })
    expect(collector.tally.errors.size).toBe(0)

    // Lookups: the exporter is the BMP router; 2001:db8:1::/64 has two peers' routes.
    const answerer = new LookupAnswerer(collector.rib)
    const addresses = new Uint8Array(16 * 4)
    ;['2001:db8:1::42', '198.51.100.200', '10.0.0.1', '2001:db8:2::1'].forEach((a, i) => addresses.set(parseIP(a), 16 * i))
    const describe = (r: RouteInfo) => (r.found ? `${r.asPath.join(' ')}/${r.prefixLength}` : '-')
    const lookup = (exporter: string, nextHops = new Uint8Array(0)) => {
      const perAddress = answerer.answer({ exporterAddress: parseIP(exporter), addresses, nextHops, sharedRoutes: false }).routes.map(describe)
      // The shared form names each distinct route once and gives the same route per address.
      const shared = answerer.answer({ exporterAddress: parseIP(exporter), addresses, nextHops, sharedRoutes: true })
      expect(shared.routes).toEqual([])
      expect(shared.routeIndex.map((i) => (i === 0 ? '-' : describe(shared.distinctRoutes[i - 1]!)))).toEqual(perAddress)
      return perAddress
    }
    // Lowest neighbor address among equal candidates.
    expect(lookup('203.0.113.0')).toEqual(['65013 65013 174 174 174/64', '65011 65011 174 29447 396919/25', '-', '65013 65013 1299 1299 1299 12322/64'])
    // The flow's next hop picks the route through it.
    const hops = new Uint8Array(16 * 4)
    hops.set(parseIP('2001:db8::7'), 0)
    expect(lookup('192.0.2.99', hops)).toEqual(['65017 65013 174 174 174/64', '65011 65011 174 29447 396919/25', '-', '65013 65013 1299 1299 1299 12322/64'])
    const route = answerer.answer({ exporterAddress: ROUTER, addresses: addresses.subarray(16, 32), nextHops: new Uint8Array(0), sharedRoutes: false }).routes[0]!
    expect(route).toMatchObject({ found: true, asn: 396919, communities: [65011 * 65536 + 12], prefixLength: 25 })
    expect(formatIP(route.nextHop)).toBe('192.0.2.1')
  })

  it('follows End-of-RIB, withdrawals (ADD-PATH too), skipped families, peer down and termination', () => {
    const collector = new BmpCollector({ graceMs: 0 })
    const session = collector.openSession(ROUTER)
    for (const c of ['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-reach.pcap', 'bmp-eor.pcap']) session.feed(stream(c))
    expect(Object.fromEntries(collector.tally.endOfRib)).toEqual({ ipv4: 3, ipv6: 2, '1/128': 1, '2/128': 1, '25/70': 1 })
    expect(collector.rib.size).toBe(10)
    session.feed(stream('bmp-unreach.pcap'))
    // Every route announced is withdrawn (192.0.2.4/31 of the ADD-PATH peer 192.0.2.5 was never there).
    expect([collector.rib.size, collector.tally.withdrawn, collector.rib.prefixCount]).toEqual([0, 10, { ipv4: 0, ipv6: 0 }])
    expect(collector.rib.attributes.sets.size).toBe(0)
    expect(collector.rib.attributes.paths.size).toBe(0)
    const skippedBefore = new Map(collector.tally.skippedFamilies)
    session.feed(stream('bmp-reach-unknown-family.pcap'))
    session.feed(stream('bmp-reach-vpls.pcap'))
    expect(collector.tally.skippedFamilies.get('57/65')).toBe((skippedBefore.get('57/65') ?? 0) + 1)
    expect(collector.tally.skippedFamilies.get('25/65')).toBe((skippedBefore.get('25/65') ?? 0) + 1)
    expect(collector.rib.size).toBe(0)
    session.feed(stream('bmp-peer-down.pcap'))
    expect(collector.rib.peerIds().map((id) => formatIP(collector.rib.peer(id)!.address))).toEqual(['192.0.2.5', '2001:db8::3', '2001:db8::7'])
    expect(() => session.feed(stream('bmp-terminate.pcap'))).toThrow(BmpSessionError)
    expect(collector.tally.errors.get('terminated')).toBe(1)
    expect([collector.sessions.size, collector.rib.peerIds().length]).toEqual([0, 0])
  })

  it('keeps a closed session\'s routes for the grace time, and flushes stale routes at a reconnected peer\'s End-of-RIB', () => {
    const timers: { fn: () => void; cancelled: boolean }[] = []
    const collector = new BmpCollector({
      graceMs: 60_000,
      schedule: (_ms, fn) => {
        const t = { fn, cancelled: false }
        timers.push(t)
        return () => (t.cancelled = true)
      },
    })
    const first = collector.openSession(ROUTER)
    for (const c of ['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-reach.pcap']) first.feed(stream(c))
    first.close()
    expect(collector.rib.size).toBe(10)
    expect(collector.rib.peerIds().every((id) => !collector.rib.peer(id)!.up)).toBe(true)
    // The router comes back, announces only part of its table (no 198.51.100.0/25 this time) then End-of-RIB.
    const second = collector.openSession(ROUTER)
    for (const c of ['bmp-init.pcap', 'bmp-peers-up.pcap']) second.feed(stream(c))
    const reach = stream('bmp-reach.pcap')
    second.feed(reach.subarray(0, firstMessagesLength(reach, 2)))
    second.feed(stream('bmp-eor.pcap'))
    const lines = ribLines(collector)
    expect(lines.filter((l) => l.startsWith('198.51.100'))).toEqual(['198.51.100.128/25 | 192.0.2.1 | 65011 65011 174 29447 396919 | 65011:12 |  | 192.0.2.1'])
    // Only the new incarnation of 192.0.2.1 holds IPv4 routes; the old one is gone.
    const holders = collector.rib.peerIds().map((id) => collector.rib.peer(id)!).filter((p) => p.routes.ipv4 > 0)
    expect(holders.map((p) => [formatIP(p.address), p.up])).toEqual([['192.0.2.1', true]])
    // Grace timers of the old incarnations: firing them removes what is left of them, not the new routes.
    for (const t of timers) if (!t.cancelled) t.fn()
    expect(collector.rib.peerIds().every((id) => collector.rib.peer(id)!.up)).toBe(true)
    expect(ribLines(collector).filter((l) => l.startsWith('198.51.100'))).toHaveLength(1)
  })
})

describe('two sessions of one router', () => {
  it('never write through a peer id another session replaced (and the RIB reused)', () => {
    const collector = new BmpCollector({ graceMs: 0 })
    const stale = collector.openSession(ROUTER)
    for (const c of ['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-reach.pcap']) stale.feed(stream(c))
    // The router reconnects while the old connection is still open; End-of-RIB flushes the old peers.
    const fresh = collector.openSession(ROUTER)
    for (const c of ['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-eor.pcap']) fresh.feed(stream(c))
    expect(collector.rib.size).toBe(0)
    // Another router's peers take the freed ids.
    const other = collector.openSession(parseIP('198.51.100.1'))
    for (const c of ['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-reach.pcap']) other.feed(stream(c))
    const others = ribLines(collector)
    expect(others).toHaveLength(10)
    // The old connection speaks again: its routes go to new peers of its own router, not to the other router's.
    stale.feed(stream('bmp-unreach.pcap'))
    stale.feed(stream('bmp-reach.pcap'))
    stale.feed(stream('bmp-peer-down.pcap'))
    const otherRouter = collector.rib.peerIds().filter((id) => formatIP(collector.rib.peer(id)!.routerAddress) === '198.51.100.1')
    expect(otherRouter.reduce((n, id) => n + collector.rib.peer(id)!.routes.ipv4 + collector.rib.peer(id)!.routes.ipv6, 0)).toBe(10)
    // The other router's 10, the old connection's 10 less 192.0.2.1's 3 (its peer down, grace 0).
    expect(collector.rib.size).toBe(17)
    stale.close()
    fresh.close()
    expect(ribLines(collector)).toEqual(others)
  })
})

/** Bytes of the first n BMP messages of a stream. */
function firstMessagesLength(bytes: Uint8Array, n: number): number {
  let o = 0
  for (let i = 0; i < n; i++) o += bmpMessageLength(bytes, o, bytes.length)
  return o
}

describe('malformed BMP input', () => {
  /** Deterministic generator (mulberry32) so a failing mutation reproduces. */
  const random = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  it('closes only the session of a mutated stream, counting why, and leaves other routers\' routes intact', () => {
    const whole = Uint8Array.from(
      ['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-reach.pcap', 'bmp-eor.pcap', 'bmp-unreach.pcap', 'bmp-reach-vpls.pcap'].flatMap((c) => [...stream(c)]),
    )
    const collector = new BmpCollector({ graceMs: 0 })
    const healthy = collector.openSession(parseIP('198.51.100.1'))
    for (const c of ['bmp-init.pcap', 'bmp-peers-up.pcap', 'bmp-reach.pcap']) healthy.feed(stream(c))
    const reference = ribLines(collector)
    const next = random(7)
    let closed = 0
    const runs = 400
    for (let run = 0; run < runs; run++) {
      const bytes = whole.slice()
      const mutations = 1 + Math.floor(next() * 4)
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(next() * bytes.length)
        const kind = next()
        if (kind < 0.6) bytes[at] = Math.floor(next() * 256)
        else if (kind < 0.8) bytes[at] = bytes[at]! ^ (1 << Math.floor(next() * 8))
        else bytes.copyWithin(at, Math.min(bytes.length - 1, at + 1 + Math.floor(next() * 40)))
      }
      const session = collector.openSession(parseIP(`192.0.2.${run % 250}`))
      try {
        // Chunks of random sizes, as TCP delivers them.
        for (let o = 0; o < bytes.length; ) {
          const size = 1 + Math.floor(next() * 700)
          session.feed(bytes.subarray(o, o + size))
          o += size
        }
        session.close()
      } catch (error) {
        expect(error).toBeInstanceOf(BmpSessionError)
        expect((error as BmpSessionError).reason).not.toBe('internal-error')
        closed++
      }
      expect(collector.sessions.has(session)).toBe(false)
    }
    const errors = [...collector.tally.errors.values()].reduce((a, b) => a + b, 0)
    expect(errors).toBe(closed)
    expect(closed).toBeGreaterThan(runs / 4)
    // The healthy router's routes are exactly what they were; the mutated sessions' peers are gone (grace 0).
    expect(ribLines(collector)).toEqual(reference)
    expect(collector.sessions.size).toBe(1)
  })
})
