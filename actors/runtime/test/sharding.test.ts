// shardOf is the one key → shard mapping of every transport: its values must never change
// (they decide where exporters' flows land) and must spread real keys evenly.
import { describe, expect, it } from 'vitest'
import { fnv1a32, shardOf } from '../src/bus/sharding.js'

const utf8 = new TextEncoder()

describe('shardOf', () => {
  it('is FNV-1a 32-bit (published test vectors)', () => {
    expect(fnv1a32(utf8.encode(''))).toBe(0x811c9dc5)
    expect(fnv1a32(utf8.encode('a'))).toBe(0xe40c292c)
    expect(fnv1a32(utf8.encode('foobar'))).toBe(0xbf9cf968)
  })

  it('keeps known keys on known shards', () => {
    expect(shardOf('foobar', 8)).toBe(0xbf9cf968 % 8)
    expect(shardOf('::ffff:192.0.2.1', 8)).toBe(0)
    expect(shardOf('::ffff:192.0.2.1', 7)).toBe(0x8a659d50 % 7)
    expect(shardOf('a', 1)).toBe(0)
  })

  it('maps a string and its UTF-8 bytes to the same shard, non-ASCII included', () => {
    for (const key of ['exporter-1', '2001:db8::1', 'routeur-é', '路由器', '']) {
      expect(shardOf(key, 16), key).toBe(shardOf(utf8.encode(key), 16))
    }
  })

  it('spreads 1000 IPv4-mapped exporter addresses evenly over 8 shards', () => {
    const counts = new Array<number>(8).fill(0)
    for (let i = 0; i < 1000; i++) {
      const address = `::ffff:10.${(i >> 8) & 255}.${i & 255}.${(i * 7) % 250 + 1}`
      counts[shardOf(address, 8)]!++
    }
    // 125 expected per shard; a binomial spread stays well inside ±40 % for a decent hash.
    for (const count of counts) {
      expect(count).toBeGreaterThan(75)
      expect(count).toBeLessThan(175)
    }
    const chiSquare = counts.reduce((sum, c) => sum + (c - 125) ** 2 / 125, 0)
    expect(chiSquare).toBeLessThan(24.3) // p = 0.001 for 7 degrees of freedom
  })

  it('names a bad partition count', () => {
    expect(() => shardOf('x', 0)).toThrow(/partitions must be a positive integer, got 0/)
    expect(() => shardOf('x', 2.5)).toThrow(/got 2.5/)
  })
})
