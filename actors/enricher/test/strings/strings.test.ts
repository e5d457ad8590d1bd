// The enricher's string registry: each string added once per batch, reusing entries the batch
// came with or that others added, whenever the string was registered.
import { FlowBatch } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { BatchStrings } from '../../src/strings.js'

describe('batch strings', () => {
  it('adds a string once per batch and reuses what the batch holds', () => {
    const strings = new BatchStrings()
    const known = strings.id('known')
    const batch = new FlowBatch(1)
    batch.appendRow()
    batch.setString('InIfName', 0, 'carried')
    batch.setString('InIfDescription', 0, 'known')
    strings.prepare(batch)
    const fresh = strings.id('fresh')
    expect(strings.index(known)).toBe(2)
    expect(strings.index(fresh)).toBe(3)
    expect(strings.index(fresh)).toBe(3)
    expect(strings.index(0)).toBe(0)
    // Registered after the batch's entries were read: still found there, not added twice.
    expect(strings.index(strings.id('carried'))).toBe(1)
    // Someone else adds strings between two calls.
    batch.intern('other')
    expect(strings.index(strings.id('other'))).toBe(4)
    expect(strings.index(strings.id('last'))).toBe(5)
    expect(batch.strings).toEqual(['', 'carried', 'known', 'fresh', 'other', 'last'])
  })

  it('starts over for another batch, or the same one cleared', () => {
    const strings = new BatchStrings()
    const a = strings.id('a')
    const first = new FlowBatch(1)
    strings.prepare(first)
    expect(strings.index(a)).toBe(1)
    const second = new FlowBatch(1)
    second.intern('x')
    strings.prepare(second)
    expect(strings.index(a)).toBe(2)
    first.clear()
    strings.prepare(first)
    expect(strings.index(a)).toBe(1)
    expect([first.strings, second.strings]).toEqual([['', 'a'], ['', 'x', 'a']])
  })
})
