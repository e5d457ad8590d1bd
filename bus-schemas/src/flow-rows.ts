// FlowBatch → JSON-friendly rows keyed by the Akvorado column names (decode CLI, JSON export, live view).
// IPs print as text (dotted quad for IPv4-mapped, RFC 5952 IPv6), MACs as aa:bb:cc:dd:ee:ff.

import type { FlowBatch } from './flow-batch.js'
import { flowColumns, type FlowColumnName } from './flow-columns.js'
import { formatIP, formatMAC } from './ip.js'

/** One flow as a plain object: numbers, strings, number arrays; large communities as [asn, l1, l2] triples. */
export type FlowRow = Partial<Record<FlowColumnName, number | string | number[] | number[][]>>

export interface FlowRowsOptions {
  /** Include absent columns too (as 0, '', '::' or []), giving every row the full column set. Default: present columns only. */
  readonly allColumns?: boolean
}

export function flowBatchToRows(batch: FlowBatch, options: FlowRowsOptions = {}): FlowRow[] {
  const columns = options.allColumns ? flowColumns : flowColumns.filter((c) => batch.has(c.name))
  const rows: FlowRow[] = []
  for (let r = 0; r < batch.count; r++) {
    const row: FlowRow = {}
    for (const c of columns) {
      const name = c.name as never
      switch (c.kind) {
        case 'ip':
          row[c.name] = formatIP(batch.getIP(name, r))
          break
        case 'mac':
          row[c.name] = formatMAC(batch.getNumber(name, r))
          break
        case 'string':
          row[c.name] = batch.getString(name, r)
          break
        case 'u32list':
          row[c.name] = Array.from(batch.getList(name, r))
          break
        case 'u32x3list': {
          const values = batch.getList(name, r)
          const triples: number[][] = []
          for (let i = 0; i + 2 < values.length; i += 3) triples.push([values[i]!, values[i + 1]!, values[i + 2]!])
          row[c.name] = triples
          break
        }
        default:
          row[c.name] = batch.getNumber(name, r)
      }
    }
    rows.push(row)
  }
  return rows
}
