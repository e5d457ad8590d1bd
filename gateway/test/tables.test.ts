// Table selection alone: the coarsest aggregated table that fits the step, covers the start
// within its retention and holds every column read; raw flows otherwise.
import { describe, expect, it } from 'vitest'
import { alignStep, chooseTable } from '../src/query/tables.js'

const day = 86_400_000
const retention = { flows: 15 * day, flows1m: 7 * day, flows5m: 90 * day, flows1h: 730 * day, counters: 0 }
const aggregated = (column: string) => !['SrcPort', 'DstPort', 'SrcAddr', 'DstAddr'].includes(column)
const now = 1_800_000_000
const choose = (start: number, step: number, columns: string[] = ['SrcAS']) =>
  chooseTable({ retention }, aggregated, { start, end: now, step, columns, nowSeconds: now }).table

describe('table selection', () => {
  it('takes the coarsest table whose resolution fits the step', () => {
    expect(choose(now - 86_400, 3600)).toBe('flows_1h0m0s')
    expect(choose(now - 86_400, 3599)).toBe('flows_5m0s')
    expect(choose(now - 86_400, 299)).toBe('flows_1m0s')
    expect(choose(now - 3600, 59)).toBe('flows')
  })

  it('skips a table whose retention no longer covers the start', () => {
    // 10 days back: flows_1m0s (7 days) is gone, flows_5m0s (90 days) still has it.
    expect(choose(now - 10 * 86_400, 60)).toBe('flows')
    expect(choose(now - 10 * 86_400, 300)).toBe('flows_5m0s')
    expect(choose(now - 100 * 86_400, 300)).toBe('flows')
    expect(choose(now - 100 * 86_400, 3600)).toBe('flows_1h0m0s')
  })

  it('reads raw flows when a column is not aggregated, and says why', () => {
    const choice = chooseTable({ retention }, aggregated, { start: now - 86_400, end: now, step: 3600, columns: ['SrcAS', 'DstPort'], nowSeconds: now })
    expect(choice).toMatchObject({ table: 'flows', resolution: 1, aggregated: false })
    expect(choice.reason).toContain('DstPort')
  })

  it('rounds the step up to a whole number of the resolution', () => {
    expect(alignStep(432, 300)).toBe(600)
    expect(alignStep(10, 60)).toBe(60)
    expect(alignStep(7, 1)).toBe(7)
  })
})
