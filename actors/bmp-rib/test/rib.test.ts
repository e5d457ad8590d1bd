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

  it('answers as a brute-force reference through random announcements, withdrawals, flushes and peer drops', () => {
    // Many peers on a few routers, ADD-PATH ids and prefixes nested around and below /24s, so
    // prefixes hold more routes than a block and /24s are covered, split and uncovered in turn.
    const { rib } = setup()
    let seed = 11
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const routers = ['192.0.2.1', '192.0.2.2', '192.0.2.3']
    const hops = ['10.255.0.1', '10.255.0.2', '10.255.0.3']
    const pool = [
      '10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/23', '10.1.2.0/24', '10.1.3.0/24', '10.1.2.0/25', '10.1.2.128/26',
      '10.1.2.7/32', '10.1.3.64/27', '10.2.0.0/15', '10.3.0.0/24', '10.3.0.0/28', '0.0.0.0/0', '10.1.2.0/26',
      '2001:db8::/32', '2001:db8:1::/48', '2001:db8:1:2::/64', '::/0', '2001:db8::/48', '2001:db8:2::/48', '2001:db8:2:3::/56',
    ]
    type Peer = { id: number; router: number; neighbor: string; up: boolean }
    type Route = { peer: Peer; pathId: number; prefix: string; path: string; hop: string }
    const peers: Peer[] = []
    const routes = new Map<string, Route>()
    const addPeer = () => {
      const router = random(routers.length)
      const neighbor = `10.0.0.${1 + random(4)}`
      const id = rib.addPeer({ key: `${peers.length}`, routerAddress: parseIP(routers[router]!), address: parseIP(neighbor), asn: 65000, peerType: 0, postPolicy: true })
      peers.push({ id, router, neighbor, up: true })
    }
    for (let i = 0; i < 7; i++) addPeer()
    // An address is looked up among its own family's prefixes (::/0 does not cover IPv4).
    const covers = (prefix: string, address: string): boolean => {
      if (prefix.includes(':') !== address.includes(':')) return false
      const p = parsePrefix(prefix)
      const a = parseIP(address)
      for (let bit = 0; bit < p.prefixLength; bit++) if (((a[bit >> 3]! ^ p.address[bit >> 3]!) >> (7 - (bit & 7))) & 1) return false
      return true
    }
    const ip4Order = (a: string, b: string) => {
      const x = parseIP(a)
      const y = parseIP(b)
      for (let i = 0; i < 16; i++) if (x[i] !== y[i]) return x[i]! - y[i]!
      return 0
    }
    // Peer order of the documented rule: live first, lowest neighbor, lowest router, newest.
    const rank = (a: Peer, b: Peer) => Number(b.up) - Number(a.up) || ip4Order(a.neighbor, b.neighbor) || ip4Order(routers[a.router]!, routers[b.router]!) || b.id - a.id
    const expected = (exporter: number, address: string, hop: string | undefined): string => {
      const candidates = [...routes.values()].filter((r) => covers(r.prefix, address))
      const lengthOf = (r: Route) => parsePrefix(r.prefix).prefixLength
      const pick = (accept: (r: Route) => boolean, preferHop: boolean): Route | undefined => {
        const accepted = candidates.filter(accept)
        if (accepted.length === 0) return undefined
        const longest = Math.max(...accepted.map(lengthOf))
        const onLongest = accepted.filter((r) => lengthOf(r) === longest)
        onLongest.sort((a, b) => (preferHop ? Number(b.hop === hop) - Number(a.hop === hop) : 0) || rank(a.peer, b.peer) || a.pathId - b.pathId)
        return onLongest[0]
      }
      const chosen =
        pick((r) => r.peer.router === exporter, hop !== undefined) ??
        (hop !== undefined ? pick((r) => r.hop === hop, true) : undefined) ??
        pick(() => true, false)
      if (!chosen) return '-'
      const length = parsePrefix(chosen.prefix).prefixLength - (chosen.prefix.includes(':') ? 0 : 96)
      return `${chosen.peer.id}#${chosen.pathId} ${chosen.path}/${length}`
    }
    const check = () => {
      const addresses = Array.from({ length: 40 }, (_, i) =>
        i % 5 === 4 ? `2001:db8:${random(3)}:${random(4)}::${random(9)}` : `10.${random(4)}.${random(4)}.${random(256)}`,
      )
      for (const exporter of [0, 1, 2, 3]) {
        for (const withHops of [false, true]) {
          const flowHops = addresses.map(() => (withHops && random(3) > 0 ? hops[random(3)]! : undefined))
          const packed = new Uint8Array(16 * addresses.length)
          addresses.forEach((a, i) => packed.set(parseIP(a), 16 * i))
          const hopBytes = new Uint8Array(16 * addresses.length)
          flowHops.forEach((h, i) => h && hopBytes.set(parseIP(h), 16 * i))
          const chosen = new Int32Array(addresses.length)
          const lengths = new Uint8Array(addresses.length)
          rib.lookup(parseIP(routers[exporter] ?? '203.0.113.1'), packed, addresses.length, withHops ? hopBytes : undefined, chosen, lengths)
          const answers = [...chosen].map((slot, i) => {
            if (slot < 0) return '-'
            const r = rib.route(slot, lengths[i]!)
            const peer = peers.find((p) => rib.peer(p.id) === r.peer)!
            return `${peer.id}#${r.pathId} ${r.attributes.asPath.join(' ')}/${r.prefixLength}`
          })
          expect(answers, `exporter ${routers[exporter] ?? 'none'}, hops ${withHops}`).toEqual(addresses.map((a, i) => expected(exporter, a, flowHops[i])))
        }
      }
      expect(rib.size).toBe(routes.size)
      const prefixes = new Set([...routes.values()].map((r) => r.prefix))
      expect(rib.prefixCount.ipv4 + rib.prefixCount.ipv6).toBe(prefixes.size)
    }
    let serial = 0
    for (let step = 0; step < 400; step++) {
      const op = random(100)
      const peer = peers[random(peers.length)]!
      if (op < 55) {
        const chosen = [...new Set(Array.from({ length: 1 + random(4) }, () => pool[random(pool.length)]!))]
        const family = chosen[0]!.includes(':')
        const same = chosen.filter((p) => p.includes(':') === family)
        const pathId = random(4) === 0 ? random(3) : 0
        const hop = hops[random(3)]!
        const path = [65000 + peer.id, ++serial]
        rib.announce(peer.id, prefixList(same, same.map(() => pathId)), rib.attributes.intern(path, [], [], parseIP(hop)))
        for (const prefix of same) routes.set(`${peer.id}|${pathId}|${prefix}`, { peer, pathId, prefix, path: path.join(' '), hop })
      } else if (op < 80) {
        const prefix = pool[random(pool.length)]!
        const pathId = random(3) === 0 ? random(3) : 0
        const had = routes.delete(`${peer.id}|${pathId}|${prefix}`)
        expect(rib.withdraw(peer.id, prefixList([prefix], [pathId]))).toBe(had ? 1 : 0)
      } else if (op < 88) {
        const family = random(2) === 0 ? 'ipv4' : 'ipv6'
        const mine = [...routes.entries()].filter(([, r]) => r.peer === peer && r.prefix.includes(':') === (family === 'ipv6'))
        mine.forEach(([key]) => routes.delete(key))
        expect(rib.flush(peer.id, family)).toBe(mine.length)
      } else if (op < 94) {
        const mine = [...routes.entries()].filter(([, r]) => r.peer === peer)
        mine.forEach(([key]) => routes.delete(key))
        expect(rib.removePeer(peer.id)).toBe(mine.length)
        peers.splice(peers.indexOf(peer), 1)
        addPeer()
      } else {
        peer.up = !peer.up
        rib.setPeerUp(peer.id, peer.up)
      }
      if (step % 10 === 9) check()
    }
    check()
    for (const peer of [...peers]) rib.removePeer(peer.id)
    expect([rib.size, rib.prefixCount, rib.attributes.sets.size]).toEqual([0, { ipv4: 0, ipv6: 0 }, 0])
  })

  it('finds IPv6 /48s through their table while many come and go (colliding, moved on removal, grown)', () => {
    const { rib, peer, announce, lookup } = setup()
    const a = peer('192.0.2.1', '10.0.0.1')
    let seed = 5
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const held = new Set<number>()
    const site = (n: number) => `2001:db8:${n.toString(16)}::/48`
    for (let step = 0; step < 3000; step++) {
      const n = random(600)
      if (random(3) > 0) {
        announce(a, [site(n)], [65001, n], '10.0.0.1')
        held.add(n)
      } else {
        expect(rib.withdraw(a, prefixList([site(n)]))).toBe(held.delete(n) ? 1 : 0)
      }
    }
    // A /32 under them all answers where no /48 is held.
    announce(a, ['2001:db8::/32'], [65001, 1], '10.0.0.1')
    const numbers = Array.from({ length: 600 }, (_, n) => n)
    expect(lookup('192.0.2.9', numbers.map((n) => `2001:db8:${n.toString(16)}::1`))).toEqual(
      numbers.map((n) => (held.has(n) ? `65001 ${n}/48 via 192.0.2.1` : '65001 1/32 via 192.0.2.1')),
    )
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
