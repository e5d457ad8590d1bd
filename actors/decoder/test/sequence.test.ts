// Sequence gaps per export stream: loss counted forward, late datagrams and restarts apart.
import { describe, expect, it } from 'vitest'
import { SequenceTracker } from '../src/sequence.js'

describe('SequenceTracker', () => {
  it('counts nothing for a stream in order, whatever the units per datagram', () => {
    const t = new SequenceTracker()
    expect(t.observe('a', 100, 30)).toEqual({ lost: 0, reordered: false, reset: false })
    expect(t.observe('a', 130, 30).lost).toBe(0)
    expect(t.observe('a', 160, 1).lost).toBe(0)
    expect(t.observe('a', 161, 5).lost).toBe(0)
  })

  it('counts the units missing between two datagrams', () => {
    const t = new SequenceTracker()
    t.observe('v5', 0, 30)
    // Two v5 datagrams of 30 flows lost: flow_sequence jumps from 30 to 90.
    expect(t.observe('v5', 90, 30).lost).toBe(60)
    expect(t.observe('v5', 120, 30).lost).toBe(0)
  })

  it('keeps streams apart', () => {
    const t = new SequenceTracker()
    t.observe('a', 10, 1)
    t.observe('b', 500, 1)
    expect(t.observe('a', 11, 1).lost).toBe(0)
    expect(t.observe('b', 503, 1).lost).toBe(2)
    expect(t.streams).toBe(2)
  })

  it('wraps around 2^32 without a gap or a reset', () => {
    const t = new SequenceTracker()
    t.observe('a', 0xffff_fffe, 1)
    expect(t.observe('a', 0xffff_ffff, 1)).toEqual({ lost: 0, reordered: false, reset: false })
    expect(t.observe('a', 0, 1)).toEqual({ lost: 0, reordered: false, reset: false })
    expect(t.observe('a', 3, 1).lost).toBe(2)
  })

  it('calls a late or repeated datagram reordered, without moving the expectation back', () => {
    const t = new SequenceTracker()
    t.observe('a', 1, 1)
    expect(t.observe('a', 3, 1).lost).toBe(1)
    expect(t.observe('a', 2, 1)).toEqual({ lost: 0, reordered: true, reset: false })
    expect(t.observe('a', 3, 1).reordered).toBe(true)
    expect(t.observe('a', 4, 1)).toEqual({ lost: 0, reordered: false, reset: false })
  })

  it('treats a jump far back or far ahead as an exporter restart, not loss', () => {
    const t = new SequenceTracker({ reorderWindow: 100, maxGap: 1000 })
    t.observe('a', 50_000, 1)
    expect(t.observe('a', 0, 1)).toEqual({ lost: 0, reordered: false, reset: true })
    expect(t.observe('a', 1, 1).lost).toBe(0)
    expect(t.observe('a', 5000, 1)).toEqual({ lost: 0, reordered: false, reset: true })
    expect(t.observe('a', 5001, 1).lost).toBe(0)
    expect(t.observe('a', 5900, 1).lost).toBe(898)
  })

  it('forgets the oldest stream beyond its bound, which then starts over without a gap', () => {
    const t = new SequenceTracker({ maxStreams: 2 })
    t.observe('a', 1, 1)
    t.observe('b', 1, 1)
    t.observe('c', 1, 1)
    expect(t.streams).toBe(2)
    expect(t.observe('a', 100, 1).lost).toBe(0)
    expect(t.observe('c', 2, 1).lost).toBe(0)
  })
})
