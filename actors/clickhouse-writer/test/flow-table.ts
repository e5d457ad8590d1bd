// A stand-in flows table for encoder tests and the storage benchmark: every FlowBatch column with
// the ClickHouse types a flows schema uses (LowCardinality strings, IPv6, enums, arrays, DateTime).
import { flowColumns, type FlowColumnSpec } from '@flowbus/bus-schemas'
import type { InsertColumn } from '../src/encode/plan.js'

const boundary = "Enum8('undefined' = 0, 'external' = 1, 'internal' = 2)"

const typeOf = (c: FlowColumnSpec): string => {
  switch (c.name) {
    case 'TimeReceived':
      return 'DateTime'
    case 'FlowStartTime':
    case 'FlowEndTime':
      return 'DateTime64(3)'
    case 'InIfBoundary':
    case 'OutIfBoundary':
      return boundary
    case 'ExporterAddress':
      return 'IPv6'
    case 'SrcCountry':
    case 'DstCountry':
      return 'LowCardinality(String)'
    case 'DstLargeCommunities':
      return 'Array(UInt128)'
  }
  switch (c.kind) {
    case 'u8':
      return 'UInt8'
    case 'u16':
      return 'UInt16'
    case 'u32':
      return 'UInt32'
    case 'u64':
    case 'mac':
      return 'UInt64'
    case 'ip':
      return 'IPv6'
    case 'string':
      return 'LowCardinality(String)'
    case 'u32list':
      return 'Array(UInt32)'
    case 'u32x3list':
      return 'Array(Tuple(UInt32, UInt32, UInt32))'
  }
}

/** Every flow column, typed as a flows table would type it. */
export const testFlowColumns: InsertColumn[] = flowColumns.map((c) => ({ name: c.name, type: typeOf(c), source: c.name }))

export const testFlowTableDDL = (table: string, columns: readonly InsertColumn[] = testFlowColumns, settings = ''): string =>
  `CREATE TABLE IF NOT EXISTS ${table} (${columns.map((c) => `\`${c.name}\` ${c.type}`).join(', ')}) ` +
  `ENGINE = MergeTree PARTITION BY toYYYYMMDD(TimeReceived) ORDER BY (TimeReceived, ExporterAddress, InIfName, OutIfName)` +
  (settings ? ` SETTINGS ${settings}` : '')
