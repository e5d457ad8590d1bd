// The RIB alone: the lookup preference rules across routers, next hops and prefix lengths, peers
// going down, ADD-PATH path ids, and attribute interning freed when the last route goes.
import { formatIP, parseIP } from '@flowbus/bus-schemas'
import { parsePrefix } from '@flowbus/runtime'
import { describe, expect, it } from 'vitest'
import type { PrefixList } from '../src/bgp/update.js'
import { Rib } from '../src/rib/rib.js'

const prefixList = (prefixes: string[], pathIds?: number[]): PrefixList => {
  const parsed = prefixes.map(parsePrefix)
  const family = prefixes[0]!.includes(':') ? 'ipv6' : 'ipv4'
  const addresses = new Uint8Array(16 * parsed.length)
  parsed.forEach((p, i) => addresses.set(p.address, 16 * i))
  return {
    family,
    count: parsed.length,
    addresses,
    lengths: Uint8Array.from(parsed.map((p) => p.prefixLength)),
    pathIds: pathIds ? Uint32Array.from(pathIds) : undefined,
  }
}

const setup = () => {
  const rib = new Rib()
  const peer = (router: string, neighbor: string) =>
    rib.addPeer({ key: `${router}|${neighbor}`, routerAddress: parseIP(router), address: parseIP(neighbor), asn: 65000, peerType: 0, postPolicy: true })
  const announce = (peerId: number, prefixes: string[], path: number[], nextHop: string, pathIds?: number[]) =>
    rib.announce(peerId, prefixList(prefixes, pathIds), rib.attributes.intern(path, [], [], parseIP(nextHop)))
  const lookup = (exporter: string, addresses: string[], nextHops?: string[]) => {
    const packed = new Uint8Array(16 * addresses.length)
    addresses.forEach((a, i) => packed.set(parseIP(a), 16 * i))
    const hops = nextHops ? new Uint8Array(16 * addresses.length) : undefined
    nextHops?.forEach((h, i) => hops!.set(parseIP(h), 16 * i))
    const chosen = new Int32Array(addresses.length)
    const lengths = new Uint8Array(addresses.length)
    rib.lookup(parseIP(exporter), packed, addresses.length, hops, chosen, lengths)
    return [...chosen].map((slot, i) => {
      if (slot < 0) return '-'
      const r = rib.route(slot, lengths[i]!)
      return `${r.attributes.asPath.join(' ')}/${r.prefixLength} via ${formatIP(r.peer.routerAddress)}`
    })
  }
  return { rib, peer, announce, lookup }
}

describe('RIB lookups', () => {
  it('prefers the exporter\'s router, even on a shorter prefix, then the next hop, then the longest prefix', () => {
    const { peer, announce, lookup } = setup()
    const r1 = peer('192.0.2.1', '10.0.0.1')
    const r2 = peer('192.0.2.2', '10.0.0.2')
    announce(r1, ['198.51.100.0/22'], [65001, 64501], '10.0.0.1')
    announce(r2, ['198.51.100.0/24'], [65002, 64502], '10.0.0.2')
    announce(r2, ['2001:db8::/32'], [65002, 64503], '2001:db8:ffff::2')
    const addresses = ['198.51.100.7', '198.51.101.7', '2001:db8::1', '203.0.113.1']
    // Rule 1: 192.0.2.1's own /22 beats 192.0.2.2's /24.
    expect(lookup('192.0.2.1', addresses)).toEqual(['65001 64501/22 via 192.0.2.1', '65001 64501/22 via 192.0.2.1', '65002 64503/32 via 192.0.2.2', '-'])
    // Rule 3 for an exporter without BMP: longest prefix.
    expect(lookup('192.0.2.9', addresses)).toEqual(['65002 64502/24 via 192.0.2.2', '65001 64501/22 via 192.0.2.1', '65002 64503/32 via 192.0.2.2', '-'])
    // Rule 2: the flow's next hop picks 10.0.0.1's /22 over the longer /24.
    expect(lookup('192.0.2.9', addresses.slice(0, 1), ['10.0.0.1'])).toEqual(['65001 64501/22 via 192.0.2.1'])
  })

  it('ranks live peers before peers going down, and keeps ADD-PATH paths apart', () => {
    const { rib, peer, announce, lookup } = setup()
    const low = peer('192.0.2.1', '10.0.0.1')
    const high = peer('192.0.2.1', '10.0.0.9')
    announce(low, ['198.51.100.0/24'], [65001], '10.0.0.1')
    announce(high, ['198.51.100.0/24'], [65009], '10.0.0.9', [7])
    announce(high, ['198.51.100.0/24'], [65010], '10.0.0.9', [3])
    expect(lookup('192.0.2.1', ['198.51.100.1'])).toEqual(['65001/24 via 192.0.2.1'])
    rib.setPeerUp(low, false)
    // The lower path id among the live peer's two paths.
    expect(lookup('192.0.2.1', ['198.51.100.1'])).toEqual(['65010/24 via 192.0.2.1'])
    expect(rib.routesOf(parsePrefix('198.51.100.0/24').address, 120).map((r) => r.pathId).sort()).toEqual([0, 3, 7])
    expect(rib.withdraw(high, prefixList(['198.51.100.0/24'], [3]))).toBe(1)
    expect(lookup('192.0.2.1', ['198.51.100.1'])).toEqual(['65009/24 via 192.0.2.1'])
  })

  it('answers the same after compact(), and keeps announcing, withdrawing and dropping peers', () => {
    const { rib, peer, announce, lookup } = setup()
    const peers = [peer('192.0.2.1', '10.0.0.1'), peer('192.0.2.2', '10.0.0.2'), peer('192.0.2.3', '10.0.0.3')]
    const prefixes: string[] = []
    for (let i = 0; i < 60; i++) prefixes.push(`10.${i % 7}.${(i * 37) % 256}.0/${20 + (i % 5)}`, `2001:db8:${i.toString(16)}::/${40 + (i % 9)}`)
    // Peers announce overlapping parts in turn, so a prefix's routes are spread over the slots.
    peers.forEach((p, k) => prefixes.forEach((prefix, i) => (i + k) % 3 !== 0 && announce(p, [prefix], [65000 + k, 64000 + i], `10.0.0.${k + 1}`)))
    announce(peers[0]!, ['10.1.0.0/16'], [65000, 1], '10.0.0.1', [5])
    const addresses = prefixes.map((p) => p.split('/')[0]!.replace(/\.0$/, '.9').replace(/::$/, '::9'))
    const before = ['192.0.2.1', '192.0.2.3', '203.0.113.1'].map((exporter) => lookup(exporter, addresses))
    const routes = rib.size
    expect(rib.compact()).toBe(routes)
    expect(['192.0.2.1', '192.0.2.3', '203.0.113.1'].map((exporter) => lookup(exporter, addresses))).toEqual(before)
    const first = parsePrefix(prefixes[0]!)
    const holders = () => rib.routesOf(first.address, first.prefixLength).map((r) => r.peer).sort()
    const expected = [...new Set([...holders().filter((p) => p !== peers[1]), peers[2]!])].sort()
    expect(rib.withdraw(peers[1]!, prefixList([prefixes[0]!]))).toBe(1)
    announce(peers[2]!, [prefixes[0]!], [65002, 7], '10.0.0.3')
    expect(holders()).toEqual(expected)
    const left = rib.size
    expect(rib.removePeer(peers[0]!) + rib.removePeer(peers[1]!) + rib.removePeer(peers[2]!)).toBe(left)
    expect(rib.size).toBe(0)
  })

  it('frees interned attributes with the last route using them', () => {
    const { rib, peer, announce } = setup()
    const a = peer('192.0.2.1', '10.0.0.1')
    const b = peer('192.0.2.2', '10.0.0.2')
    announce(a, ['198.51.100.0/24', '198.51.101.0/24'], [65001, 65002], '10.0.0.1')
    announce(b, ['198.51.100.0/24'], [65001, 65002], '10.0.0.1')
    announce(b, ['2001:db8::/32'], [65001, 65002], '10.0.0.1')
    expect([rib.attributes.sets.size, rib.attributes.paths.size, rib.size]).toEqual([1, 1, 4])
    // A new path for one prefix replaces that route's attributes.
    announce(a, ['198.51.101.0/24'], [65001, 65003], '10.0.0.1')
    expect([rib.attributes.sets.size, rib.attributes.paths.size, rib.size]).toEqual([2, 2, 4])
    expect(rib.removePeer(a)).toBe(2)
    expect([rib.attributes.sets.size, rib.attributes.paths.size, rib.prefixCount]).toEqual([1, 1, { ipv4: 1, ipv6: 1 }])
    expect(rib.removePeer(b)).toBe(2)
    expect([rib.attributes.sets.size, rib.attributes.paths.size, rib.attributes.nextHops.size, rib.size]).toEqual([0, 0, 0, 0])
  })
})
