// Number and time formatting shared by the pages: rates with SI prefixes in the chosen unit,
// percentages, and times in the browser's zone.

export type Unit = 'BPS_L3' | 'BPS_L2' | 'PPS' | 'FLOWS' | 'IN_IF_PERCENT' | 'OUT_IF_PERCENT'

export const units: { value: Unit; label: string; suffix: string }[] = [
  { value: 'BPS_L3', label: 'L3 bps', suffix: 'bps' },
  { value: 'BPS_L2', label: 'L2 bps', suffix: 'bps' },
  { value: 'PPS', label: 'pps', suffix: 'pps' },
  { value: 'FLOWS', label: 'flows/s', suffix: 'flows/s' },
  { value: 'IN_IF_PERCENT', label: '% of in-interface', suffix: '%' },
  { value: 'OUT_IF_PERCENT', label: '% of out-interface', suffix: '%' },
]

const prefixes = ['', 'k', 'M', 'G', 'T', 'P']

/** 1234567 → "1.23 M" (space before the unit suffix the caller adds). */
export function si(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return '–'
  const sign = value < 0 ? '-' : ''
  let v = Math.abs(value)
  let i = 0
  while (v >= 1000 && i < prefixes.length - 1) {
    v /= 1000
    i++
  }
  const text = v === 0 ? '0' : v >= 100 ? v.toFixed(0) : v.toPrecision(digits).replace(/\.?0+$/, '')
  return `${sign}${text}${prefixes[i] ? ` ${prefixes[i]}` : ''}`
}

export function rate(value: number, unit: Unit): string {
  const suffix = units.find((u) => u.value === unit)?.suffix ?? ''
  if (suffix === '%') return `${value.toFixed(value < 10 ? 2 : 1)} %`
  const text = si(value)
  return text.includes(' ') ? `${text}${suffix}` : `${text} ${suffix}`
}

const protocols: Record<string, string> = { '1': 'ICMP', '2': 'IGMP', '6': 'TCP', '17': 'UDP', '41': 'IPv6', '47': 'GRE', '50': 'ESP', '51': 'AH', '58': 'ICMPv6', '89': 'OSPF', '103': 'PIM', '112': 'VRRP', '132': 'SCTP' }

/** "6" → "TCP (6)": the gateway prints protocol numbers, people read names. */
export const protocolName = (number: string) => (protocols[number] ? `${protocols[number]} (${number})` : number)

/** A series total (value × seconds): "394 Mbits", "1.2 Gpackets". */
export function total(value: number, unit: Unit): string {
  const word = unit === 'PPS' ? 'packets' : unit === 'FLOWS' ? 'flows' : unit.endsWith('PERCENT') ? '%·s' : 'bits'
  const text = si(value)
  return text.includes(' ') ? `${text}${word}` : `${text} ${word}`
}

export const percent = (value: number) => `${value.toFixed(value < 10 ? 1 : 0)} %`

export const time = (value: string | number | Date) =>
  new Date(typeof value === 'number' ? value * 1000 : value).toLocaleString(undefined, { hour12: false })

export const shortTime = (value: Date) => value.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hour12: false })

/** An axis label for a time, with the date once the graph spans more than a day. */
export const axisTime = (value: Date, spanMs: number) =>
  spanMs <= 1.5 * 86_400_000
    ? shortTime(value)
    : spanMs <= 4 * 86_400_000
      ? `${value.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${shortTime(value)}`
      : value.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
