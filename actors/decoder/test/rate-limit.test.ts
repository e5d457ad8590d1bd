// The per-exporter rate limit: kept flows stay under the limit and carry the dropped flows'
// weight, so Bytes × SamplingRate totals stay right.
import { describe, expect, it } from 'vitest'
import { FlowRateLimiter, scaleSamplingRate } from '../src/rate-limit.js'

/** A deterministic pseudo-random sequence (xorshift32), so the test is repeatable. */
const random = (seed: number) => () => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 0x1_0000_0000
}

describe('FlowRateLimiter', () => {
  it('keeps everything at or under the limit', () => {
    const limiter = new FlowRateLimiter(100)
    for (let i = 0; i < 100; i++) expect(limiter.admit('e', 1000)).toBe(1)
    for (let i = 0; i < 100; i++) expect(limiter.admit('e', 1001)).toBe(1)
  })

  it('is off at 0', () => {
    expect(new FlowRateLimiter(0).enabled).toBe(false)
    expect(new FlowRateLimiter(1).enabled).toBe(true)
  })

  it('keeps about the limit per second and keeps Bytes × SamplingRate totals within a few %', () => {
    const limit = 1000
    const limiter = new FlowRateLimiter(limit)
    const next = random(12345)
    for (const rate of [5000, 1500, 20_000]) {
      let trueTotal = 0
      let keptTotal = 0
      let keptFlows = 0
      let weights = 0
      const seconds = [2000, 2001, 2002]
      for (const [w, second] of seconds.entries()) {
        for (let i = 0; i < rate; i++) {
          // Flow sizes spread over three orders of magnitude, sampling rates 1 or 100.
          const bytes = Math.floor(40 + next() ** 3 * 150_000)
          const samplingRate = next() < 0.5 ? 1 : 100
          trueTotal += bytes * samplingRate
          const multiplier = limiter.admit(`exporter-${rate}`, second + rate)
          if (multiplier === 0) continue
          weights += multiplier
          keptTotal += bytes * scaleSamplingRate(samplingRate, multiplier)
          // From the second window on, the estimate comes from a full previous window.
          if (w > 0) keptFlows++
        }
      }
      expect(keptFlows / (seconds.length - 1)).toBeLessThanOrEqual(limit * 1.01)
      expect(keptFlows / (seconds.length - 1)).toBeGreaterThan(limit * 0.9)
      // Every flow is accounted for once, except those carried past the last kept flow.
      expect(weights).toBeGreaterThan(rate * seconds.length - rate / limit - 1)
      expect(weights).toBeLessThanOrEqual(rate * seconds.length)
      expect(Math.abs(keptTotal - trueTotal) / trueTotal).toBeLessThan(0.05)
    }
  })

  it('keeps totals right within a single second, even for a burst', () => {
    const limiter = new FlowRateLimiter(500)
    const next = random(99)
    let trueTotal = 0
    let keptTotal = 0
    let kept = 0
    for (let i = 0; i < 10_000; i++) {
      const bytes = Math.floor(64 + next() * 1436)
      trueTotal += bytes * 10
      const m = limiter.admit('burst', 7)
      if (m > 0) {
        kept++
        keptTotal += bytes * scaleSamplingRate(10, m)
      }
    }
    expect(kept).toBeLessThan(10_000 / 5)
    expect(Math.abs(keptTotal - trueTotal) / trueTotal).toBeLessThan(0.05)
  })

  it('carries dropped flows into the next kept one, across windows', () => {
    const limiter = new FlowRateLimiter(1)
    expect(limiter.admit('e', 1)).toBe(1)
    // Second flow in the same second: rate 2 > 1, credit 0.5: dropped.
    expect(limiter.admit('e', 1)).toBe(0)
    // Next second: the previous window saw 2 flows; credit reaches 1 here, carrying the drop.
    expect(limiter.admit('e', 2)).toBe(2)
  })

  it('treats exporters separately', () => {
    const limiter = new FlowRateLimiter(1)
    expect(limiter.admit('a', 1)).toBe(1)
    expect(limiter.admit('b', 1)).toBe(1)
    expect(limiter.admit('a', 1)).toBe(0)
  })

  it('scales unknown (0) sampling rates as 1 and saturates at 32 bits', () => {
    expect(scaleSamplingRate(0, 3)).toBe(3)
    expect(scaleSamplingRate(1000, 3)).toBe(3000)
    expect(scaleSamplingRate(0xffff_ffff, 2)).toBe(0xffff_ffff)
  })
})
