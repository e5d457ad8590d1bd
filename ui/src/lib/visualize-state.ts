// The visualize page's whole state as URL query parameters, so a link reproduces the view.
// Format version 1 (`v=1`); a later format keeps reading v1 links (docs/console.md).
import type { Unit } from './format.js'

export const STATE_VERSION = 1

export type GraphType = 'STACKED' | 'STACKED_100' | 'LINES' | 'GRID' | 'SANKEY'
export type TopBy = 'AVG' | 'MAX' | 'LAST'

/** A range relative to now (`preset`) or two absolute instants. */
export type Range = { preset: string } | { start: Date; end: Date }

export interface VisualizeState {
  dimensions: string[]
  limit: number
  topBy: TopBy
  range: Range
  unit: Unit
  graphType: GraphType
  filter: string
  bidirectional: boolean
  previousPeriod: boolean
}

export const presets: { value: string; label: string; seconds: number }[] = [
  { value: '15m', label: 'last 15 minutes', seconds: 900 },
  { value: '1h', label: 'last hour', seconds: 3600 },
  { value: '6h', label: 'last 6 hours', seconds: 6 * 3600 },
  { value: '24h', label: 'last day', seconds: 86_400 },
  { value: '7d', label: 'last week', seconds: 7 * 86_400 },
  { value: '30d', label: 'last 30 days', seconds: 30 * 86_400 },
]

export const defaults: VisualizeState = {
  dimensions: ['SrcAS'],
  limit: 10,
  topBy: 'AVG',
  range: { preset: '6h' },
  unit: 'BPS_L3',
  graphType: 'STACKED',
  filter: '',
  bidirectional: false,
  previousPeriod: false,
}

const graphTypes: GraphType[] = ['STACKED', 'STACKED_100', 'LINES', 'GRID', 'SANKEY']
const topBys: TopBy[] = ['AVG', 'MAX', 'LAST']
const unitValues: Unit[] = ['BPS_L3', 'BPS_L2', 'PPS', 'FLOWS', 'IN_IF_PERCENT', 'OUT_IF_PERCENT']

/** The absolute instants of a range (presets end now, rounded down to the minute so reloads agree). */
export function resolveRange(range: Range, now = Date.now()): { start: Date; end: Date } {
  if ('start' in range) return range
  const seconds = presets.find((p) => p.value === range.preset)?.seconds ?? 6 * 3600
  const end = Math.floor(now / 60_000) * 60_000 + 60_000
  return { start: new Date(end - seconds * 1000), end: new Date(end) }
}

const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z')

export function encodeState(state: VisualizeState): URLSearchParams {
  const p = new URLSearchParams()
  p.set('v', String(STATE_VERSION))
  p.set('dims', state.dimensions.join(','))
  p.set('limit', String(state.limit))
  p.set('top', state.topBy)
  if ('preset' in state.range) p.set('range', state.range.preset)
  else {
    p.set('start', iso(state.range.start))
    p.set('end', iso(state.range.end))
  }
  p.set('unit', state.unit)
  p.set('graph', state.graphType)
  if (state.filter) p.set('filter', state.filter)
  if (state.bidirectional) p.set('bidi', '1')
  if (state.previousPeriod) p.set('prev', '1')
  return p
}

export class StateError extends Error {}

/** Reads a state from the URL; missing keys take defaults, bad values are reported, not guessed. */
export function decodeState(params: URLSearchParams): { state: VisualizeState; problems: string[] } {
  const problems: string[] = []
  const version = params.get('v')
  if (version !== null && version !== String(STATE_VERSION)) {
    problems.push(`this link uses state format v${version}; this console reads v${STATE_VERSION}: defaults shown`)
    return { state: { ...defaults }, problems }
  }
  const pick = <T extends string>(key: string, allowed: readonly T[], fallback: T): T => {
    const value = params.get(key)
    if (value === null) return fallback
    if ((allowed as readonly string[]).includes(value)) return value as T
    problems.push(`${key}=${value} is not one of ${allowed.join(', ')}`)
    return fallback
  }
  const dims = params.get('dims')
  const limitText = params.get('limit')
  let limit = defaults.limit
  if (limitText !== null) {
    const n = Number(limitText)
    if (Number.isInteger(n) && n >= 1 && n <= 50) limit = n
    else problems.push(`limit=${limitText} is not a whole number from 1 to 50`)
  }
  let range: Range = defaults.range
  const start = params.get('start')
  const end = params.get('end')
  if (start && end) {
    const s = new Date(start)
    const e = new Date(end)
    if (Number.isNaN(s.getTime()) || Number.isNaN(e.getTime()) || e <= s) problems.push(`start=${start} end=${end} is not a time range`)
    else range = { start: s, end: e }
  } else if (params.get('range')) {
    range = { preset: pick('range', presets.map((p) => p.value), '6h') }
  }
  return {
    state: {
      dimensions: dims === null ? defaults.dimensions : dims.split(',').filter(Boolean),
      limit,
      topBy: pick('top', topBys, defaults.topBy),
      range,
      unit: pick('unit', unitValues, defaults.unit),
      graphType: pick('graph', graphTypes, defaults.graphType),
      filter: params.get('filter') ?? '',
      bidirectional: params.get('bidi') === '1',
      previousPeriod: params.get('prev') === '1',
    },
    problems,
  }
}
