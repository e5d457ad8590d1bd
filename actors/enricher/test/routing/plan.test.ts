// planLookups packs each exporter's distinct addresses once: checked against a plain Map of the
// addresses' text over IPv4 and IPv6 rows with many repeats (the pack's own table grows several times).
import { formatIP, parseIP } from '@flowbus/bus-schemas'
import { describe, expect, it } from 'vitest'
import { prng } from '../../../../bus-schemas/test/fixtures/sample-flows.js'
import { planLookups } from '../../src/routing/lookup.js'
import { decodedBatch } from '../flows.js'

describe('routing lookup plan', () => {
  it('packs each distinct address once and points every row at it', () => {
    const rand = prng(7)
    const rows = 6000
    const batch = decodedBatch('192.0.2.1', 1, rows)
    const address = (): string =>
      rand() < 0.3
        ? `2001:db8:${Math.floor(rand() * 40).toString(16)}::${Math.floor(rand() * 30).toString(16)}`
        : `198.51.${Math.floor(rand() * 12)}.${Math.floor(rand() * 256)}`
    const dst = batch.view('DstAddr')!
    const src = batch.view('SrcAddr')!
    for (let r = 0; r < rows; r++) {
      dst.set(parseIP(address()), r * 16)
      src.set(parseIP(address()), r * 16)
    }

    const [plan, ...others] = planLookups(batch, rows, parseIP('192.0.2.1'), true)
    expect(others).toHaveLength(0)
    const packed = plan!.request.addresses
    const at = (i: number) => formatIP(packed.subarray(i * 16, i * 16 + 16))
    const expected = new Set<string>()
    for (let r = 0; r < rows; r++) {
      expected.add(formatIP(dst.subarray(r * 16, r * 16 + 16)))
      expected.add(formatIP(src.subarray(r * 16, r * 16 + 16)))
    }
    expect(plan!.count).toBe(expected.size)
    expect(packed.length).toBe(expected.size * 16)
    expect(new Set(Array.from({ length: plan!.count }, (_, i) => at(i))).size).toBe(expected.size)
    for (let r = 0; r < rows; r++) {
      expect(at(plan!.dstIndex[r]!)).toBe(formatIP(dst.subarray(r * 16, r * 16 + 16)))
      expect(at(plan!.srcIndex[r]!)).toBe(formatIP(src.subarray(r * 16, r * 16 + 16)))
    }
  })

  it('makes one plan per exporter, each with its own rows', () => {
    const batch = decodedBatch('192.0.2.1', 1, 10)
    const exporters = batch.view('ExporterAddress')!
    for (let r = 5; r < 10; r++) exporters.set(parseIP('192.0.2.2'), r * 16)
    const plans = planLookups(batch, 10, parseIP('192.0.2.1'), false)
    expect(plans.map((p) => formatIP(p.request.exporterAddress))).toEqual(['192.0.2.1', '192.0.2.2'])
    expect([...plans[0]!.dstIndex].map((i) => i >= 0)).toEqual([...Array(5).fill(true), ...Array(5).fill(false)])
    expect([...plans[1]!.dstIndex].map((i) => i >= 0)).toEqual([...Array(5).fill(false), ...Array(5).fill(true)])
    expect([...plans[0]!.srcIndex].every((i) => i === -1)).toBe(true)
  })
})
