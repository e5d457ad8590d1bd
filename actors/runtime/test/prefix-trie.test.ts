// PrefixTrie against a brute-force reference (a map of every prefix, longest match by trying each
// length): random IPv4 and IPv6 prefixes, inserts, exact gets, removals and bulk updates.
import { describe, expect, it } from 'vitest'
import { parseIP } from '@flowbus/bus-schemas'
import { IPV4_INDEX_16, MAX_PREFIX_MATCHES, PrefixTrie, type PrefixTrieIndex, clearHostBits, formatPrefix, parsePrefix } from '../src/prefix-trie.js'

/** Deterministic generator (mulberry32) so failures reproduce. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const keyOf = (address: Uint8Array, length: number): string => {
  const a = address.slice(0, 16)
  clearHostBits(a, length)
  return `${Buffer.from(a).toString('hex')}/${length}`
}

class Reference {
  readonly map = new Map<string, number>()
  insert(address: Uint8Array, length: number, value: number): number | undefined {
    const k = keyOf(address, length)
    const previous = this.map.get(k)
    this.map.set(k, value)
    return previous
  }
  remove(address: Uint8Array, length: number): number | undefined {
    const k = keyOf(address, length)
    const previous = this.map.get(k)
    this.map.delete(k)
    return previous
  }
  matches(address: Uint8Array): [number, number][] {
    const out: [number, number][] = []
    for (let length = 0; length <= 128; length++) {
      const v = this.map.get(keyOf(address, length))
      if (v !== undefined) out.push([length, v])
    }
    return out
  }
}

/** Random prefix: IPv4 (mapped, lengths 96..128) or IPv6 below 2001:db8::/29, biased to share bits. */
const randomPrefix = (next: () => number, ipv4: boolean): [Uint8Array, number] => {
  const a = new Uint8Array(16)
  if (ipv4) {
    a[10] = 0xff
    a[11] = 0xff
    // Few first octets so prefixes nest and share paths.
    a[12] = 10 + Math.floor(next() * 4)
    for (let i = 13; i < 16; i++) a[i] = Math.floor(next() * (i === 13 ? 8 : 256))
    return [a, 96 + Math.floor(next() * 33)]
  }
  a.set([0x20, 0x01, 0x0d, 0xb8 + Math.floor(next() * 4)])
  for (let i = 4; i < 16; i++) a[i] = i < 8 ? Math.floor(next() * 4) : Math.floor(next() * 256)
  return [a, Math.floor(next() * 129)]
}

const randomAddressNear = (next: () => number, prefixes: [Uint8Array, number][]): Uint8Array => {
  const [base] = prefixes[Math.floor(next() * prefixes.length)]!
  const a = base.slice()
  // Flip a few low bits so some addresses fall outside the prefix.
  for (let i = 0; i < 2; i++) {
    const bit = 96 + Math.floor(next() * 32)
    if (next() < 0.5) a[bit >> 3]! ^= 1 << (7 - (bit & 7))
  }
  return a
}

const check = (trie: PrefixTrie<number>, ref: Reference, probes: Uint8Array[]): void => {
  const out = new Array<number | undefined>(MAX_PREFIX_MATCHES)
  // All probes in one buffer, as FlowBatch address columns are.
  const column = new Uint8Array(16 * probes.length + 16)
  probes.forEach((p, i) => column.set(p, 16 + 16 * i))
  for (let i = 0; i < probes.length; i++) {
    const expected = ref.matches(probes[i]!)
    const value = trie.lookup(column, 16 + 16 * i)
    if (expected.length === 0) {
      expect(value).toBeUndefined()
      expect(trie.lastMatchLength).toBe(-1)
    } else {
      const [length, v] = expected[expected.length - 1]!
      expect([trie.lastMatchLength, value]).toEqual([length, v])
    }
    const n = trie.matches(column, 16 + 16 * i, out)
    const got: [number, number][] = []
    for (let j = 0; j < n; j++) got.push([trie.matchLengths[j]!, out[j]!])
    expect(got).toEqual(expected)
  }
  // The same answers in lanes, with every other address left out of the first group.
  const values = new Array<number | undefined>(16)
  const lengths = new Int32Array(16)
  for (let i = 0; i < probes.length; i += 16) {
    const lanes = i === 0 ? 0x5555 : 0xffff
    trie.lookupLanes(column, 16 + 16 * i, probes.length - i, lanes, values, lengths)
    for (let l = 0; l < Math.min(16, probes.length - i); l++) {
      if (((lanes >>> l) & 1) === 0) continue
      const expected = ref.matches(probes[i + l]!)
      const [length, v] = expected.length === 0 ? [-1, undefined] : expected[expected.length - 1]!
      expect([lengths[l], values[l]]).toEqual([length, v])
    }
  }
  expect(trie.size).toBe(ref.map.size)
  const listed = new Map<string, number>()
  for (const [address, length, value] of trie.entries()) listed.set(keyOf(address, length), value)
  expect(listed).toEqual(ref.map)
}

// First levels other than the default IPv4 /16s: deeper IPv4, IPv6 global unicast, and one whose
// entries straddle two 32-bit words of the address.
const indexes: [string, PrefixTrieIndex | undefined][] = [
  ['the default index', undefined],
  ['an IPv4 /20 index', { ...IPV4_INDEX_16, bits: 20 }],
  ['a 2000::/3 index to /23', { base: parseIP('2000::'), baseLength: 3, bits: 20 }],
  ['a 2001:db8::/29 index to /37', { base: parseIP('2001:db8::'), baseLength: 29, bits: 8 }],
]

describe('PrefixTrie', () => {
  for (const [indexName, index] of indexes)
  for (const family of ['IPv4', 'IPv6', 'mixed'] as const) {
    it(`matches a brute-force reference on random ${family} prefixes, through inserts and removals, with ${indexName}`, () => {
      const next = random(family.length * 7919)
      const trie = new PrefixTrie<number>(4, index)
      const ref = new Reference()
      const prefixes: [Uint8Array, number][] = []
      for (let i = 0; i < 3000; i++) {
        const p = randomPrefix(next, family === 'IPv4' || (family === 'mixed' && next() < 0.5))
        prefixes.push(p)
        expect(trie.insert(p[0], p[1], i)).toBe(ref.insert(p[0], p[1], i))
      }
      const probes = Array.from({ length: 2000 }, () => randomAddressNear(next, prefixes))
      check(trie, ref, probes)
      for (const [a, l] of prefixes.slice(0, 200)) expect(trie.get(a, l)).toBe(ref.map.get(keyOf(a, l)))
      // Remove two thirds (some twice), then reinsert some: nodes are reused from the free list.
      for (let i = 0; i < prefixes.length; i++) {
        if (i % 3 === 0) continue
        const [a, l] = prefixes[i]!
        expect(trie.remove(a, l)).toBe(ref.remove(a, l))
      }
      check(trie, ref, probes)
      for (let i = 0; i < 500; i++) {
        const [a, l] = prefixes[i]!
        expect(trie.insert(a, l, -i)).toBe(ref.insert(a, l, -i))
      }
      check(trie, ref, probes)
      for (const [a, l] of prefixes) ref.remove(a, l), trie.remove(a, l)
      expect(trie.size).toBe(0)
      expect(trie.nodeCount).toBe(1)
      check(trie, ref, probes.slice(0, 50))
    })
  }

  for (const [indexName, index] of indexes)
  it(`updates and removes values in bulk, pruning emptied branches, with ${indexName}`, () => {
    const next = random(42)
    const trie = new PrefixTrie<number>(1024, index)
    const ref = new Reference()
    const prefixes: [Uint8Array, number][] = []
    for (let i = 0; i < 5000; i++) {
      const p = randomPrefix(next, next() < 0.7)
      prefixes.push(p)
      trie.insert(p[0], p[1], i)
      ref.insert(p[0], p[1], i)
    }
    const removed = trie.updateAll((v) => (v % 2 === 0 ? undefined : v * 10))
    let expectedRemoved = 0
    for (const [k, v] of [...ref.map]) {
      if (v % 2 === 0) {
        ref.map.delete(k)
        expectedRemoved++
      } else ref.map.set(k, v * 10)
    }
    expect(removed).toBe(expectedRemoved)
    check(trie, ref, Array.from({ length: 1000 }, () => randomAddressNear(next, prefixes)))
    trie.updateAll(() => undefined)
    expect([trie.size, trie.nodeCount]).toEqual([0, 1])
    // Every index entry is back at the root: lookups of a refilled trie find the new prefixes.
    ref.map.clear()
    for (const [a, l] of prefixes.slice(0, 500)) trie.insert(a, l, l), ref.insert(a, l, l)
    check(trie, ref, Array.from({ length: 500 }, () => randomAddressNear(next, prefixes)))
  })

  it('holds the default route and host routes, and ignores host bits on insert', () => {
    const trie = new PrefixTrie<string>()
    trie.insert(parseIP('::'), 0, 'default')
    const p = parsePrefix('192.0.2.77/24')
    trie.insert(p.address, p.prefixLength, 'net')
    trie.insert(parseIP('192.0.2.77'), 128, 'host')
    expect(trie.lookup(parseIP('192.0.2.77'))).toBe('host')
    expect(trie.lastMatchLength).toBe(128)
    expect(trie.lookup(parseIP('192.0.2.1'))).toBe('net')
    expect(trie.lastMatchLength).toBe(120)
    expect(trie.lookup(parseIP('2001:db8::1'))).toBe('default')
    expect(trie.lastMatchLength).toBe(0)
    expect(trie.get(parseIP('192.0.2.0'), 120)).toBe('net')
    expect(trie.get(parseIP('192.0.2.0'), 119)).toBeUndefined()
    expect(trie.remove(parseIP('::'), 0)).toBe('default')
    expect(trie.lookup(parseIP('2001:db8::1'))).toBeUndefined()
    expect(() => trie.insert(parseIP('::'), 129, 'x')).toThrow(/prefix length 129/)
  })
})

describe('prefix text', () => {
  it('parses and formats IPv4 and IPv6 prefixes on the 16-byte form', () => {
    expect(parsePrefix('192.0.2.0/24')).toEqual({ address: parseIP('192.0.2.0'), prefixLength: 120 })
    expect(parsePrefix('2001:db8::1/32')).toEqual({ address: parseIP('2001:db8::'), prefixLength: 32 })
    expect(parsePrefix('10.1.2.3').prefixLength).toBe(128)
    expect(formatPrefix(parseIP('192.0.2.0'), 120)).toBe('192.0.2.0/24')
    expect(formatPrefix(parseIP('2001:db8::'), 32)).toBe('2001:db8::/32')
    expect(formatPrefix(parseIP('::'), 0)).toBe('::/0')
    expect(() => parsePrefix('192.0.2.0/33')).toThrow(/invalid prefix "192.0.2.0\/33"/)
    expect(() => parsePrefix('192.0.2/24')).toThrow(/192.0.2/)
  })
})
