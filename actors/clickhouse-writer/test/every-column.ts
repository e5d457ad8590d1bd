// A FlowBatch with every flow column filled (both address families, NAT, MPLS, VRFs, large
// communities, flow times, enums at each value), and the values ClickHouse should give back.
import { FlowBatch, flowColumns, formatIP, isIPv4Mapped, parseIP } from '@flowbus/bus-schemas'

const v6 = ['2001:db8::1', '2a00:1450:4007:80a::200e', 'fe80::1', '2001:db8:85a3::8a2e:370:7334']
const v4 = ['192.0.2.1', '198.51.100.254', '10.0.0.7', '203.0.113.99']

/** `rows` flows where every column has values (row r differs from row r + 1 in every column). */
export function everyColumnBatch(rows: number): FlowBatch {
  const batch = new FlowBatch(rows)
  batch.reserve(rows)
  for (let r = 0; r < rows; r++) {
    batch.appendRow()
    for (const c of flowColumns) {
      const name = c.name as never
      switch (c.kind) {
        case 'u8':
          // Enum columns (boundaries, direction) hold 0..2.
          batch.u8(name)[r] = /Boundary|FlowDirection/.test(c.name) ? r % 3 : (r * 7 + c.field) % 256
          break
        case 'u16':
          batch.u16(name)[r] = (r * 31 + c.field * 101) % 65536
          break
        case 'u32':
          batch.u32(name)[r] = c.name === 'TimeReceived' ? 1_760_000_000 + r : (r * 1_000_003 + c.field * 7919) >>> 0
          break
        case 'u64':
          batch.u64(name)[r] = /Time$/.test(c.name) ? 1_760_000_000_123 + r * 1001 : 2 ** 40 + r * 1_000_000_007 + c.field
          break
        case 'mac':
          batch.mac(name)[r] = 0x02_00_5e_00_00_00 + r * 257 + c.field
          break
        case 'ip':
          batch.setIP(name, r, parseIP((r + c.field) % 2 === 0 ? v4[(r + c.field) % 4]! : v6[(r + c.field) % 4]!))
          break
        case 'string':
          batch.setString(name, r, r % 5 === 0 ? '' : `${c.name}-${r % 3}${r % 7 === 1 ? ' tab\there "quoted" \\ é' : ''}`)
          break
        case 'u32list':
          batch.setList(name, r, Array.from({ length: r % 4 }, (_, i) => (c.field * 1000 + r * 10 + i) >>> 0))
          break
        case 'u32x3list':
          batch.setList(name, r, r % 3 === 0 ? [] : [4_200_000_000, r, 7, 65000, 1, r + 2].slice(0, (r % 3) * 3))
          break
      }
    }
  }
  return batch
}

/** ClickHouse's text of an IPv6 value: IPv4-mapped addresses keep the ::ffff: prefix. */
export const clickHouseIP = (bytes: Uint8Array): string => (isIPv4Mapped(bytes) ? `::ffff:${formatIP(bytes)}` : formatIP(bytes))

/** Row r of the batch as the comparable SELECT of `comparableColumns` returns it. */
export function expectedRow(batch: FlowBatch, r: number, columns: readonly string[]): Record<string, unknown> {
  const row: Record<string, unknown> = {}
  for (const name of columns) {
    const spec = flowColumns.find((c) => c.name === name)!
    const col = name as never
    switch (spec.kind) {
      case 'ip':
        row[name] = clickHouseIP(batch.getIP(col, r))
        break
      case 'string':
        row[name] = batch.getString(col, r)
        break
      case 'u32list':
        row[name] = Array.from(batch.getList(col, r))
        break
      case 'u32x3list': {
        const values = Array.from(batch.getList(col, r))
        row[name] = Array.from({ length: values.length / 3 }, (_, i) => values.slice(3 * i, 3 * i + 3))
        break
      }
      default:
        row[name] = batch.getNumber(col, r)
    }
  }
  return row
}

/** A SELECT list giving every column in the forms `expectedRow` builds (numbers, text IPs). */
export const comparableColumns = (columns: readonly { name: string; type: string }[]): string =>
  columns
    .map(({ name, type }) => {
      const q = `\`${name}\``
      if (type.startsWith('DateTime64')) return `toUnixTimestamp64Milli(${q}) AS ${q}`
      if (type.startsWith('DateTime')) return `toUnixTimestamp(${q}) AS ${q}`
      if (type.startsWith('Enum')) return `CAST(${q}, 'Int16') AS ${q}`
      if (type === 'IPv6') return `toString(${q}) AS ${q}`
      return q
    })
    .join(', ')
