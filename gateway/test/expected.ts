// The answers the gateway should give, computed in JS from the generated flows, independently
// of the SQL: per-bucket sums, top values, units, the reverse direction.
import { expect } from 'vitest'
import type { TestFlow } from './harness.js'

export type UnitName = 'BPS_L3' | 'BPS_L2' | 'PPS' | 'FLOWS' | 'IN_IF_PERCENT' | 'OUT_IF_PERCENT'

/** A flow's contribution to the sum of a unit (divide by seconds for the rate). */
export const unitValue = (unit: UnitName, f: TestFlow): number => {
  switch (unit) {
    case 'BPS_L3':
      return f.bytes * f.samplingRate * 8
    case 'BPS_L2':
      return (f.bytes + 18 * f.packets) * f.samplingRate * 8
    case 'PPS':
      return f.packets * f.samplingRate
    case 'FLOWS':
      return 1
    case 'IN_IF_PERCENT':
      return ((f.bytes + 18 * f.packets) * f.samplingRate * 8 * 100) / (f.inIfSpeed * 1e6)
    case 'OUT_IF_PERCENT':
      return ((f.bytes + 18 * f.packets) * f.samplingRate * 8 * 100) / (f.outIfSpeed * 1e6)
  }
}

/** Dimension values of a flow as the gateway prints them. */
export const dimensionText: Record<string, (f: TestFlow) => string> = {
  SrcAS: (f) => String(f.srcAS),
  DstAS: (f) => String(f.dstAS),
  Proto: (f) => String(f.proto),
  DstPort: (f) => String(f.dstPort),
  SrcPort: (f) => String(f.srcPort),
  ExporterName: (f) => f.exporterName,
  InIfName: (f) => f.inIfName,
  OutIfName: (f) => f.outIfName,
  SrcCountry: (f) => f.srcCountry,
  DstCountry: (f) => f.dstCountry,
  SrcAddr: (f) => f.srcAddr,
  DstAddr: (f) => f.dstAddr,
  InIfBoundary: (f) => (f.inIfBoundary === 1 ? 'external' : f.inIfBoundary === 2 ? 'internal' : 'undefined'),
}

export interface ExpectedSeries {
  dimensions: string[]
  values: number[]
}

const compareKeys = (a: string[], b: string[]): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1
  return a.length - b.length
}

export interface SeriesRequest {
  start: number
  end: number
  step: number
  dimensions: ((f: TestFlow) => string)[]
  unit: UnitName
  limit: number
  topBy?: 'AVG' | 'MAX' | 'LAST'
  filter?: (f: TestFlow) => boolean
  /** Keep only these keys (the reverse direction uses the direct top). */
  top?: string[][]
}

/** Per-key values per bucket, then the top keys and Other, as the gateway should return them. */
export const expectedSeries = (flows: readonly TestFlow[], request: SeriesRequest): { top: string[][]; series: ExpectedSeries[] } => {
  const points = (request.end - request.start) / request.step
  const byKey = new Map<string, { dims: string[]; values: number[] }>()
  for (const f of flows) {
    if (f.time < request.start || f.time >= request.end) continue
    if (request.filter && !request.filter(f)) continue
    const dims = request.dimensions.map((d) => d(f))
    const key = JSON.stringify(dims)
    let entry = byKey.get(key)
    if (!entry) byKey.set(key, (entry = { dims, values: new Array<number>(points).fill(0) }))
    entry.values[Math.floor((f.time - request.start) / request.step)]! += unitValue(request.unit, f) / request.step
  }
  const score = (values: number[]) =>
    request.topBy === 'MAX' ? Math.max(...values) : request.topBy === 'LAST' ? values[values.length - 1]! : values.reduce((a, b) => a + b, 0)
  const top =
    request.top ??
    [...byKey.values()]
      .filter((e) => request.topBy !== 'LAST' || e.values[e.values.length - 1]! > 0)
      .sort((a, b) => score(b.values) - score(a.values) || compareKeys(a.dims, b.dims))
      .slice(0, request.limit)
      .map((e) => e.dims)
  const topKeys = new Set(top.map((t) => JSON.stringify(t)))
  const series: ExpectedSeries[] = top.filter((t) => byKey.has(JSON.stringify(t))).map((t) => ({ dimensions: t, values: byKey.get(JSON.stringify(t))!.values }))
  const other = new Array<number>(points).fill(0)
  let hasOther = false
  for (const [key, entry] of byKey) {
    if (topKeys.has(key)) continue
    hasOther = true
    entry.values.forEach((v, i) => (other[i]! += v))
  }
  if (hasOther && request.dimensions.length > 0) series.push({ dimensions: request.dimensions.map(() => 'Other'), values: other })
  return { top, series }
}

/** Relative closeness for sums computed in two orders (floating point). */
export const expectClose = (actual: number, expected: number, what: string): void => {
  const scale = Math.max(1e-9, Math.abs(expected))
  expect(Math.abs(actual - expected) / scale, `${what}: ${actual} vs ${expected}`).toBeLessThan(1e-9)
}

export const expectSeries = (
  actual: { dimensions: string[]; values: number[] }[],
  expected: ExpectedSeries[],
  sign = 1,
): void => {
  expect(actual.map((s) => s.dimensions)).toEqual(expected.map((s) => s.dimensions))
  actual.forEach((s, i) => {
    expect(s.values).toHaveLength(expected[i]!.values.length)
    s.values.forEach((v, j) => expectClose(v, sign * expected[i]!.values[j]!, `${s.dimensions.join(',')}[${j}]`))
  })
}
