// Interface counter samples (sFlow counters) as rows of the counters table: few rows per
// message, so they go as JSONEachRow through the same client, one insert per bus message.
import { formatIP, type InterfaceCounters, type InterfaceCountersBatch, isIPv4Mapped } from '@flowbus/bus-schemas'
import { counterColumns } from '@flowbus/runtime'
import { createHash } from 'node:crypto'

/** ClickHouse IPv6 text: IPv4-mapped addresses keep their ::ffff: prefix. */
const ipv6Text = (bytes: Uint8Array): string =>
  bytes.length !== 16 ? '::' : isIPv4Mapped(bytes) ? `::ffff:${formatIP(bytes)}` : formatIP(bytes)

/** One row per counter sample, keyed by the counters table's column names. */
export const counterRows = (batch: InterfaceCountersBatch): Record<string, number | string>[] =>
  batch.counters.map((sample) => {
    const row: Record<string, number | string> = {}
    for (const column of counterColumns) {
      const value = sample[column.field as keyof InterfaceCounters]
      row[column.name] = value instanceof Uint8Array ? ipv6Text(value) : Number(value ?? 0)
    }
    return row
  })

/** Deduplication token of a counters message: a hash of its rows. */
export const countersToken = (rows: readonly object[]): string =>
  createHash('md5').update('counters').update(JSON.stringify(rows)).digest('hex')
